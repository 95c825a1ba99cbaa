//! What natter's line mode prints for the session's events: [`render::session_lines`], plus
//! what only a printer that remembers can say right. Who is away, once per change
//! ([`AwayNews`]); a rename or a quit once, though it comes as an event in every room we share
//! with its user (nc says it once too), and our own rename only as the session's news of it;
//! and `/who` with operators marked (`@alice`), from the rooms' settings the server sends after
//! each join and change. Our own join is said once, by the notice of it (`-- you are in #rust
//! with: ...`), not again as the last event its replay brings (`[#rust] -- me joined #rust`).
//!
//! The notice of a join (with who is away there) is said below the join's replay, whose events
//! are older, as the full-screen client and the page show it: it is held while the replay
//! prints and said when the replay ends, by our own join, its last event, or by anything else
//! the server says after it (the room's settings, a live event, another room's join). Held
//! once at a time, and never for long: [`LineNews::hold_for`] tells a printer how long after
//! the join to say it ([`LineNews::flush`]) if its replay has not ended (until the forty-first session
//! it came first, and read as if the replay had been said after the join). A join we asked for
//! (the session's [`Event::Focus`] of it, or one the printer says it asked for, `--room` or
//! any room of a typed `/join`: [`LineNews::join_asked`]) is waited for until its replay's end, which the
//! server marks (our own join; in a big or quiet room, which has none, the `Crowd` after the
//! replay), however late the replay comes, within
//! [`LINE_JOIN_REPLAY_HELD`](crate::limits::LINE_JOIN_REPLAY_HELD); any other (a sign-in's
//! rooms, whose replay of what was missed has no such end) within
//! [`LINE_JOIN_HELD`](crate::limits::LINE_JOIN_HELD).

use super::away_news::AwayNews;
use super::policy::RoomPolicy;
use crate::limits::{LINE_JOIN_HELD, LINE_JOIN_REPLAY_HELD, LINE_NEWS_MAX_USERS};
use crate::render;
use crate::session::{About, Event};
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
    /// The notice of the latest join, while its replay prints.
    held: Option<Held>,
    /// Rooms a printer said it asked to join ([`LineNews::join_asked`]), until their join.
    asked: Vec<RoomName>,
}

/// The lines of a join's notice (`-- you are in ...`, `-- away here: ...`), held while its
/// replay prints: see the module docs.
#[derive(Debug)]
struct Held {
    room: RoomName,
    /// The join's seq: our join's, the replay's last event; the others are below it.
    seq: Seq,
    lines: Vec<String>,
    /// A join we asked for: its replay's end is marked (see the module docs).
    asked: bool,
}

impl Held {
    /// Whether `ev` is more of the join (its replay, who is away there, the room opening), or
    /// nothing the server said (a line we typed, queued): the notice stays held. Anything
    /// else comes after the replay, and the notice is said before it.
    fn goes_on(&self, ev: &Event) -> bool {
        match ev {
            Event::Room(e) => e.room == self.room && e.seq < self.seq,
            Event::Gap { room, .. } | Event::AwayHere { room, .. } | Event::Focus(room) => {
                *room == self.room
            }
            Event::Queued { .. } => true,
            _ => false,
        }
    }
}

impl LineNews {
    /// The lines to print for `ev` (`me`: our nick): the notice of a join held until its
    /// replay has printed, then said before the lines of what comes after it.
    pub fn lines(&mut self, ev: &Event, me: &Nick) -> Vec<String> {
        let ends_hold = self.held.as_ref().is_some_and(|h| !h.goes_on(ev));
        let mut out = if ends_hold { self.flush() } else { Vec::new() };
        let lines = self.lines_now(ev, me);
        match ev {
            Event::Joined { room, seq, .. } => {
                let asked = self.asked.iter().position(|r| r == room);
                if let Some(i) = asked {
                    self.asked.remove(i);
                }
                self.held = Some(Held {
                    room: room.clone(),
                    seq: *seq,
                    lines,
                    asked: asked.is_some(),
                });
            }
            Event::AwayHere { room, .. } => match self.held.as_mut() {
                Some(held) if held.room == *room => held.lines.extend(lines),
                _ => out.extend(lines),
            },
            Event::Focus(room) => {
                if let Some(held) = self.held.as_mut()
                    && held.room == *room
                {
                    held.asked = true;
                }
                // Shown: joined now (its `Joined` came first), or in it already (a `/join` of
                // a room we are in only shows it). No join of it is waited for.
                self.asked.retain(|r| r != room);
                out.extend(lines);
            }
            // A join refused: not waited for (its room's later join is not this one's).
            Event::Error {
                about: About::Join(room),
                ..
            } => {
                self.asked.retain(|r| r != room);
                out.extend(lines);
            }
            _ => out.extend(lines),
        }
        out
    }

    /// Whether a join's notice is held for its replay ([`LineNews::lines`]). How long after
    /// the join a printer waits for the replay's end before it says the notice anyway
    /// ([`LineNews::flush`]) is [`LineNews::hold_for`]'s, counted from the join however many
    /// events come meanwhile: a printer starts that wait at a `Joined` and drops it once
    /// nothing is held.
    pub fn holding(&self) -> bool {
        self.held.is_some()
    }

    /// The printer asked to join `room` (the rooms given at the start, and every room of a
    /// typed `/join`, which the session joins without a [`Event::Focus`] but for the last one
    /// named): its replay is waited for until its end, as a shown join's. Forgotten at its
    /// `Joined`, its refusal, or a [`Event::Focus`] of it (a room we were in already). At most
    /// [`MAX_ROOMS_PER_USER`](crate::limits::MAX_ROOMS_PER_USER) are kept.
    pub fn join_asked(&mut self, room: RoomName) {
        if !self.asked.contains(&room) && self.asked.len() < crate::limits::MAX_ROOMS_PER_USER {
            self.asked.push(room);
        }
    }

    /// How long after its join a printer says the notice held ([`LineNews::flush`]) if the
    /// replay has not ended it, however much of the replay came meanwhile: `None` when none
    /// is held. See the module docs.
    pub fn hold_for(&self) -> Option<crate::time::Millis> {
        let held = self.held.as_ref()?;
        Some(if held.asked {
            LINE_JOIN_REPLAY_HELD
        } else {
            LINE_JOIN_HELD
        })
    }

    /// The lines of a join's notice held, to be printed now (none if nothing is held).
    pub fn flush(&mut self) -> Vec<String> {
        self.held.take().map(|h| h.lines).unwrap_or_default()
    }

    /// The lines for `ev` as it comes.
    fn lines_now(&mut self, ev: &Event, me: &Nick) -> Vec<String> {
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
                "[#a] -- me joined #a",
                "[#a] -- bob joined #a",
                "-- you are in #a with: bob"
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

    /// Line mode printed the notice of a join first (`-- you are in #a with: bob`) and the
    /// join's replay, older, below it. Now the replay first, then the notice with who is away
    /// there, as the full-screen client and the page show it: said when our own join, the
    /// replay's last event, comes, or before anything the server says after the replay (a
    /// sign-in's rooms replay no join of ours), or when the printer asks (nothing came).
    #[test]
    fn a_joins_replay_prints_above_the_notice_of_the_join() {
        use crate::test_support::text;
        use crate::types::MsgId;
        let me = nick("me");
        let mut n = LineNews::default();
        let joined = |r: &str, seq| Event::Joined {
            room: room(r),
            topic: None,
            members: vec![nick("me"), nick("bob")],
            seq: Seq(seq),
        };
        let said_by_bob = |r: &str, seq, t: &str| {
            let id = MsgId(seq);
            ev(r, seq, "bob", EventKind::Say { id, text: text(t) })
        };
        let mut said = Vec::new();
        for e in [
            joined("#a", 4),
            Event::AwayHere {
                room: room("#a"),
                away: vec![(nick("bob"), text("lunch"))],
            },
            Event::Focus(room("#a")),
            said_by_bob("#a", 2, "older"),
            said_by_bob("#a", 3, "old"),
        ] {
            said.extend(n.lines(&e, &me));
        }
        assert_eq!(said, ["[#a] <bob> older", "[#a] <bob> old"]);
        assert!(n.holding());
        said.extend(n.lines(&ev("#a", 4, "me", EventKind::Join), &me));
        said.extend(n.lines(&said_by_bob("#a", 5, "live"), &me));
        assert_eq!(
            said,
            [
                "[#a] <bob> older",
                "[#a] <bob> old",
                "-- you are in #a with: bob",
                "-- away here: bob (lunch)",
                "[#a] <bob> live"
            ]
        );
        assert!(!n.holding());

        // A sign-in's rooms: what was missed, no join of ours; the next room's join, then
        // the settings the server sends after a replay, end each.
        let mut said = Vec::new();
        for e in [
            joined("#b", 7),
            said_by_bob("#b", 6, "missed"),
            joined("#c", 9),
            said_by_bob("#c", 8, "missed too"),
            Event::Policy {
                room: room("#c"),
                founder: None,
                ops: Vec::new(),
                voiced: Vec::new(),
                modes: Default::default(),
                asked: false,
            },
        ] {
            said.extend(n.lines(&e, &me));
        }
        assert_eq!(
            said,
            [
                "[#b] <bob> missed",
                "-- you are in #b with: bob",
                "[#c] <bob> missed too",
                "-- you are in #c with: bob"
            ]
        );

        // Nothing after it: said when the printer asks, once; a live line of another room
        // said after the notice.
        assert!(n.lines(&joined("#d", 2), &me).is_empty());
        assert!(n.holding());
        assert_eq!(n.flush(), ["-- you are in #d with: bob"]);
        assert!(!n.holding() && n.flush().is_empty());
        assert!(n.lines(&joined("#e", 2), &me).is_empty());
        assert_eq!(
            n.lines(&said_by_bob("#a", 6, "elsewhere"), &me),
            ["-- you are in #e with: bob", "[#a] <bob> elsewhere"]
        );
    }

    /// A join's replay that came later than [`LINE_JOIN_HELD`] printed below its notice: the
    /// printer said the notice when nothing came within it. A join we asked for is now held
    /// until its replay's end, which the server marks (our own join; in a big or quiet room
    /// the `Crowd` after the replay), within [`LINE_JOIN_REPLAY_HELD`]; a join we did not ask
    /// for (a sign-in's rooms: their replay has no such end) as briefly as before.
    #[test]
    fn a_joins_replay_asked_for_is_waited_for_until_its_end() {
        use crate::test_support::text;
        use crate::types::MsgId;
        let me = nick("me");
        let mut n = LineNews::default();
        let joined = |r: &str, seq, members: Vec<Nick>| Event::Joined {
            room: room(r),
            topic: None,
            members,
            seq: Seq(seq),
        };
        let two = || vec![nick("me"), nick("bob")];
        assert_eq!(n.hold_for(), None);
        assert!(n.lines(&joined("#a", 4, two()), &me).is_empty());
        assert_eq!(n.hold_for(), Some(LINE_JOIN_HELD), "not asked (yet)");
        assert!(n.lines(&Event::Focus(room("#a")), &me).is_empty());
        assert_eq!(n.hold_for(), Some(LINE_JOIN_REPLAY_HELD), "asked");
        assert!(LINE_JOIN_REPLAY_HELD > LINE_JOIN_HELD);
        let said = n.lines(
            &ev(
                "#a",
                3,
                "bob",
                EventKind::Say {
                    id: MsgId(3),
                    text: text("late"),
                },
            ),
            &me,
        );
        assert_eq!(said, ["[#a] <bob> late"]);
        assert_eq!(n.hold_for(), Some(LINE_JOIN_REPLAY_HELD), "still held");
        assert_eq!(
            n.lines(&ev("#a", 4, "me", EventKind::Join), &me),
            ["-- you are in #a with: bob"]
        );
        assert_eq!(n.hold_for(), None, "the replay's end said it");

        // A room given at the start: joined with no focus, asked all the same.
        n.join_asked(room("#s"));
        assert!(n.lines(&joined("#s", 2, two()), &me).is_empty());
        assert_eq!(n.hold_for(), Some(LINE_JOIN_REPLAY_HELD));
        assert_eq!(n.flush(), ["-- you are in #s with: bob"]);
        // Once: its next join (a sign-in's, say) is not.
        assert!(n.lines(&joined("#s", 5, two()), &me).is_empty());
        assert_eq!(n.hold_for(), Some(LINE_JOIN_HELD));
        n.flush();

        // A big room: no join of ours; the `Crowd` after its replay ends the hold.
        let many: Vec<Nick> = (0..crate::limits::MAX_MEMBERS_LISTED)
            .map(|i| nick(&format!("m{i}")))
            .chain([nick("me")])
            .collect();
        assert!(n.lines(&joined("#big", 900, many), &me).is_empty());
        assert!(n.lines(&Event::Focus(room("#big")), &me).is_empty());
        assert_eq!(n.hold_for(), Some(LINE_JOIN_REPLAY_HELD));
        let said = n.lines(
            &Event::Crowd {
                room: room("#big"),
                joined: 0,
                left: 0,
                members: 404,
            },
            &me,
        );
        assert!(
            said.first()
                .is_some_and(|l| l.starts_with("-- you are in #big")),
            "{said:?}"
        );
        assert_eq!(n.hold_for(), None);
    }

    /// A room asked for ([`LineNews::join_asked`]: `--room`, a room of a typed `/join`) that
    /// is never joined (the join refused: a ban, a wrong key) or was joined already (the
    /// `/join` only shows it) stayed asked, and its next join, which nobody asked for (a
    /// sign-in's rooms), was held ten times as long. The refusal, or the room shown without a
    /// join, forgets it.
    #[test]
    fn a_join_asked_for_and_refused_or_made_already_is_forgotten() {
        use crate::session::About;
        use crate::wire::ErrorKind;
        let me = nick("me");
        let mut n = LineNews::default();
        n.join_asked(room("#x"));
        n.join_asked(room("#y"));
        n.join_asked(room("#z"));
        let refused = Event::Error {
            kind: Some(ErrorKind::Banned),
            about: About::Join(room("#x")),
            text: "you are banned from #x".into(),
        };
        assert_eq!(n.lines(&refused, &me).len(), 1);
        assert!(n.lines(&Event::Focus(room("#y")), &me).is_empty());
        for (r, held) in [
            ("#x", LINE_JOIN_HELD),
            ("#y", LINE_JOIN_HELD),
            ("#z", LINE_JOIN_REPLAY_HELD),
        ] {
            let joined = Event::Joined {
                room: room(r),
                topic: None,
                members: vec![nick("me"), nick("bob")],
                seq: Seq(4),
            };
            assert!(n.lines(&joined, &me).is_empty());
            assert_eq!(n.hold_for(), Some(held), "{r}");
            assert_eq!(n.flush().len(), 1, "{r}");
        }
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
