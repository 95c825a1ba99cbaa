//! Where a signed-in person has read a room up to: the account's read marker (shared by all
//! its connections, from the server's `ReadUpTo`), and what this front end has shown since.
//! Lines at or below the greater of the two are read; the model counts unread and mentions
//! above it. What is shown here is told to the server (`Read`), at most once per room per
//! [`READ_DEBOUNCE`] while the person stays, and at once when they leave the room. Guests have
//! no marker: their counts are the model's own, as before.

use crate::limits::READ_DEBOUNCE;
use crate::time::Millis;
use crate::types::Seq;

/// A room's read position. See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ReadMark {
    /// The account's marker, as the server last said.
    marker: Option<Seq>,
    /// The newest seq shown to the person here while they looked.
    shown: Option<Seq>,
    /// The last seq told to the server, and when.
    told: Option<(Seq, Millis)>,
    /// The person left the room: tell the server now, not after the debounce.
    leaving: bool,
}

impl ReadMark {
    /// Lines with seqs at or below this are read.
    pub(super) fn upto(&self) -> Option<Seq> {
        self.marker.max(self.shown)
    }

    /// Whether the line with `seq` is read.
    pub(super) fn is_read(&self, seq: Seq) -> bool {
        self.upto().is_some_and(|upto| seq <= upto)
    }

    /// The server says the account read up to `seq`; true if that moved the marker.
    pub(super) fn marker(&mut self, seq: Seq) -> bool {
        if self.marker.is_some_and(|m| m >= seq) {
            return false;
        }
        self.marker = Some(seq);
        true
    }

    /// The person was shown up to `seq` here.
    pub(super) fn shown(&mut self, seq: Seq) {
        if self.shown.is_none_or(|s| s < seq) {
            self.shown = Some(seq);
        }
    }

    /// The person left the room: what they were shown is told at once.
    pub(super) fn leave(&mut self) {
        self.leaving = self.pending().is_some();
    }

    /// What the server has not been told yet, if anything.
    fn pending(&self) -> Option<Seq> {
        let shown = self.shown?;
        let known = self.marker.max(self.told.map(|(s, _)| s));
        known.is_none_or(|k| shown > k).then_some(shown)
    }

    /// When the pending seq may be told (`Millis(0)`: now), if one is pending.
    pub(super) fn due(&self) -> Option<Millis> {
        self.pending()?;
        match self.told {
            Some((_, at)) if !self.leaving => Some(at + READ_DEBOUNCE),
            _ => Some(Millis(0)),
        }
    }

    /// The seq to tell the server at `now`, if one is due; it counts as told.
    pub(super) fn tell(&mut self, now: Millis) -> Option<Seq> {
        if self.due()? > now {
            return None;
        }
        let seq = self.pending()?;
        self.told = Some((seq, now));
        self.leaving = false;
        Some(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_is_the_greater_of_the_marker_and_what_was_shown() {
        let mut r = ReadMark::default();
        assert!(!r.is_read(Seq(1)));
        assert!(r.marker(Seq(5)));
        assert!(!r.marker(Seq(4)), "markers only move forward");
        assert!(r.is_read(Seq(5)) && !r.is_read(Seq(6)));
        r.shown(Seq(7));
        assert_eq!(r.upto(), Some(Seq(7)));
    }

    #[test]
    fn shown_lines_are_told_at_most_once_a_debounce_unless_leaving() {
        let t0 = Millis(10_000);
        let mut r = ReadMark::default();
        assert_eq!(r.tell(t0), None, "nothing shown");
        r.shown(Seq(3));
        assert_eq!(r.tell(t0), Some(Seq(3)), "the first goes at once");
        assert_eq!(r.tell(t0), None, "told");
        r.shown(Seq(4));
        assert_eq!(r.due(), Some(t0 + READ_DEBOUNCE));
        assert_eq!(r.tell(t0 + Millis(10)), None);
        assert_eq!(r.tell(t0 + READ_DEBOUNCE), Some(Seq(4)));
        r.shown(Seq(5));
        r.leave();
        assert_eq!(r.tell(t0 + READ_DEBOUNCE + Millis(1)), Some(Seq(5)));
        // Another device read further: nothing to tell.
        r.shown(Seq(6));
        r.marker(Seq(9));
        assert_eq!(r.due(), None);
    }
}
