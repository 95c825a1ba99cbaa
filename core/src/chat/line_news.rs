//! What natter's line mode prints for the session's events: [`render::session_lines`], plus
//! what only a printer that remembers can say right. Who is away, once per change
//! ([`AwayNews`]); a rename or a quit once, though it comes as an event in every room we share
//! with its user (nc says it once too), and our own rename only as the session's news of it;
//! and `/who` with operators marked (`@alice`), from the rooms' settings the server sends after
//! each join and change. Our own join is said once, by the notice of it (`-- you are in #rust
//! with: ...`), not again as the last event its replay brings (`[#rust] -- me joined #rust`).

use super::away_news::AwayNews;
use super::policy::RoomPolicy;
use crate::limits::LINE_NEWS_MAX_USERS;
use crate::render;
use crate::session::Event;
use crate::types::{Nick, RoomName, Seq};
use crate::wire::{EventKind, RoomEvent};
use std::collections::{BTreeMap, VecDeque};

/// Line mode's memory (see the module docs). Bounded: settings per room we are in, and the
/// latest [`LINE_NEWS_MAX_USERS`] users' renames and quits.
#[derive(Debug, Default)]
pub struct LineNews {
    away: AwayNews,
    /// Each room's founder, operators and voiced members, as last sent.
    policies: BTreeMap<RoomName, RoomPolicy>,
    /// The latest renames and quits said, by the user's folded nick: what it was and the
    /// rooms it came through so far.
    said: VecDeque<(String, EventKind, Vec<RoomName>)>,
    /// Per room we joined, the seq of our join, until its replay brings it.
    joins: BTreeMap<RoomName, Seq>,
}

impl LineNews {
    /// The lines to print for `ev` (`me`: our nick).
    pub fn lines(&mut self, ev: &Event, me: &Nick) -> Vec<String> {
        let mut lines = self.away.lines(ev, me);
        match ev {
            Event::Room(e) if self.repeats(e) => return lines,
            // The replay's last event, our own join: the notice of the join said it.
            Event::Room(RoomEvent {
                room,
                seq,
                kind: EventKind::Join,
                ..
            }) if self.joins.get(room) == Some(seq) => {
                self.joins.remove(room);
                return lines;
            }
            Event::Joined { room, seq, .. } => {
                self.joins.insert(room.clone(), *seq);
            }
            // Our own rename: `-- you are now known as ...` (the session's `Nick`) says it, as
            // nc says it, before or after this event.
            Event::Room(RoomEvent {
                from,
                kind: EventKind::Nick { new },
                ..
            }) if [from, new].iter().any(|n| n.folded() == me.folded()) => return lines,
            Event::Policy {
                room,
                founder,
                ops,
                voiced,
                ..
            } => {
                let p = self.policies.entry(room.clone()).or_default();
                p.founder.clone_from(founder);
                p.ops.clone_from(ops);
                p.voiced.clone_from(voiced);
            }
            Event::Parted { room, .. } => {
                self.policies.remove(room);
                self.joins.remove(room);
            }
            Event::Members {
                room,
                members,
                asked: true,
                ..
            } => {
                let marks: Vec<&str> = match self.policies.get(room) {
                    Some(p) => members.iter().map(|n| p.role(n).mark()).collect(),
                    None => Vec::new(),
                };
                lines.push(format!(
                    "-- {}",
                    render::members_words(room, members, &marks, None)
                ));
                return lines;
            }
            _ => {}
        }
        lines.extend(render::session_lines(ev, me));
        lines
    }

    /// Whether `ev` is a rename or a quit said already through another room (the server sends
    /// one per room). The same change coming again through a room it came through is news:
    /// the user changed back and again, or came back and left again.
    fn repeats(&mut self, ev: &RoomEvent) -> bool {
        let who = ev.from.folded();
        let at = self.said.iter().position(|(n, ..)| *n == who);
        match &ev.kind {
            EventKind::Nick { .. } | EventKind::Quit { .. } => {}
            EventKind::Join => {
                // Back: its next quit is news wherever it comes through.
                if let Some(i) = at {
                    self.said.remove(i);
                }
                return false;
            }
            _ => return false,
        }
        if let Some(i) = at
            && let Some((_, kind, rooms)) = self.said.get_mut(i)
            && *kind == ev.kind
            && !rooms.contains(&ev.room)
        {
            rooms.push(ev.room.clone());
            return true;
        }
        if let Some(i) = at {
            self.said.remove(i);
        }
        if self.said.len() >= LINE_NEWS_MAX_USERS {
            self.said.pop_front();
        }
        self.said
            .push_back((who, ev.kind.clone(), vec![ev.room.clone()]));
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{nick, room};
    use crate::time::Millis;
    use crate::types::Seq;

    fn ev(r: &str, seq: u64, from: &str, kind: EventKind) -> Event {
        Event::Room(RoomEvent {
            room: room(r),
            seq: Seq(seq),
            at: Millis(0),
            from: nick(from),
            kind,
        })
    }

    fn renamed(new: &str) -> EventKind {
        EventKind::Nick { new: nick(new) }
    }

    /// Line mode printed our own join twice: `-- you are in #a with: bob`, then the replay's
    /// last event, `[#a] -- me joined #a`. Once now, by the notice; the replay's other joins,
    /// ours of an earlier visit, and a live join of ours in a room joined again are said.
    #[test]
    fn our_own_join_is_printed_once() {
        let me = nick("me");
        let mut n = LineNews::default();
        let joined = |seq| Event::Joined {
            room: room("#a"),
            topic: None,
            members: vec![nick("me"), nick("bob")],
            seq: Seq(seq),
        };
        let mut said = Vec::new();
        for ev in [
            joined(3),
            ev("#a", 1, "me", EventKind::Join),
            ev("#a", 2, "bob", EventKind::Join),
            ev("#a", 3, "me", EventKind::Join),
        ] {
            said.extend(n.lines(&ev, &me));
        }
        assert_eq!(
            said,
            [
                "-- you are in #a with: bob",
                "[#a] -- me joined #a",
                "[#a] -- bob joined #a"
            ]
        );
        assert_eq!(said.iter().filter(|l| l.contains("me joined")).count(), 1);
        // Parted, then joined again: the same once more.
        n.lines(
            &Event::Parted {
                room: room("#a"),
                kicked: false,
            },
            &me,
        );
        let mut said = n.lines(&joined(5), &me);
        said.extend(n.lines(&ev("#a", 5, "me", EventKind::Join), &me));
        assert_eq!(said, ["-- you are in #a with: bob"]);
    }

    /// Line mode printed `-- bob is now known as bobby` once per room shared with bob (three
    /// rooms: three lines), and a quit as often. Once now; changing back and again, or
    /// leaving again after coming back, is said again.
    #[test]
    fn a_rename_or_a_quit_is_said_once_whatever_rooms_we_share() {
        let me = nick("me");
        let mut n = LineNews::default();
        let mut said = Vec::new();
        for r in ["#a", "#b", "#c"] {
            said.extend(n.lines(&ev(r, 5, "bob", renamed("bobby")), &me));
        }
        assert_eq!(said, ["[#a] -- bob is now known as bobby"]);
        // Someone else's rename between two of bob's rooms does not make bob's news again.
        let mut said = Vec::new();
        said.extend(n.lines(&ev("#a", 6, "bobby", renamed("bob")), &me));
        said.extend(n.lines(&ev("#a", 7, "carol", renamed("caz")), &me));
        said.extend(n.lines(&ev("#b", 6, "bobby", renamed("bob")), &me));
        said.extend(n.lines(&ev("#c", 6, "caz", renamed("carol")), &me));
        assert_eq!(
            said,
            [
                "[#a] -- bobby is now known as bob",
                "[#a] -- carol is now known as caz",
                "[#c] -- caz is now known as carol"
            ]
        );
        // bob -> bobby again: news, even in #a where it was said before.
        let again = n.lines(&ev("#a", 8, "bob", renamed("bobby")), &me);
        assert_eq!(again, ["[#a] -- bob is now known as bobby"]);
        // A quit: once; back in #b only, and gone again: said again.
        let quit = || EventKind::Quit { reason: None };
        let mut said = Vec::new();
        for r in ["#a", "#b"] {
            said.extend(n.lines(&ev(r, 9, "dave", quit()), &me));
        }
        said.extend(n.lines(&ev("#c", 9, "dave", EventKind::Join), &me));
        said.extend(n.lines(&ev("#c", 10, "dave", quit()), &me));
        assert_eq!(
            said,
            [
                "[#a] -- dave quit",
                "[#c] -- dave joined #c",
                "[#c] -- dave quit"
            ]
        );
    }

    /// Our own rename was printed twice: `[#a] -- me is now known as you` and the session's
    /// `-- you are now known as you`. Once, as nc says it.
    #[test]
    fn our_own_rename_is_said_by_the_session_alone() {
        let mut n = LineNews::default();
        let ev = ev("#a", 3, "me", renamed("mee"));
        assert!(n.lines(&ev, &nick("me")).is_empty());
        assert!(
            n.lines(&ev, &nick("mee")).is_empty(),
            "after the session's news"
        );
        assert_eq!(
            n.lines(&Event::Nick(nick("mee")), &nick("me")),
            ["-- you are now known as mee"]
        );
    }

    /// Line mode's `/who` did not mark operators, while IRC's NAMES and the full-screen
    /// client's member list do.
    #[test]
    fn who_marks_the_founder_operators_and_voiced() {
        let me = nick("me");
        let mut n = LineNews::default();
        let policy = Event::Policy {
            room: room("#r"),
            founder: Some(nick("ann")),
            ops: vec![nick("bob")],
            voiced: vec![nick("cat")],
            modes: Default::default(),
            asked: false,
        };
        assert!(n.lines(&policy, &me).is_empty(), "settings are not said");
        let who = |r: &str| Event::Members {
            room: room(r),
            members: ["ann", "bob", "cat", "me"].map(nick).to_vec(),
            asked: true,
            as_of: None,
        };
        assert_eq!(
            n.lines(&who("#r"), &me),
            ["-- #r (4): ~ann, @bob, +cat, me"]
        );
        assert_eq!(n.lines(&who("#s"), &me), ["-- #s (4): ann, bob, cat, me"]);
        n.lines(
            &Event::Parted {
                room: room("#r"),
                kicked: false,
            },
            &me,
        );
        assert_eq!(n.lines(&who("#r"), &me), ["-- #r (4): ann, bob, cat, me"]);
    }
}
