//! Who is away, said in lines, each change once: for a front end that prints lines (natter's
//! line mode) rather than marking a member list. It says who is away when we join a room (or
//! ask `/who`), that someone joining is away, and after a reconnect only what changed while the
//! connection was down: the refresh sends the whole list again, and what was said already is
//! not said twice. A change while connected is said by its own line
//! ([`render::session_lines`] of [`Event::Away`]); it is followed here so that a refresh does
//! not say it again.

use super::conv::Members;
use crate::render;
use crate::session::Event;
use crate::types::{Nick, RoomName, Seq, Text};
use crate::wire::EventKind;
use std::collections::{BTreeMap, BTreeSet};

/// What has been said of who is away (see the module docs). Away is a person's, not a room's:
/// a change is said once, whichever rooms we share with them. Bounded by the rooms the session
/// is in, each by its member list ([`crate::limits::CHAT_MAX_MEMBERS`]): only members of our
/// rooms are kept.
#[derive(Debug, Default)]
pub struct AwayNews {
    rooms: Vec<Room>,
    /// Who we have said is away: by folded nick, the nick as said and its message.
    said: BTreeMap<String, (Nick, Text)>,
}

#[derive(Debug)]
struct Room {
    name: RoomName,
    members: Members,
    /// The seq the member list is as of: joins and parts up to it that follow are history
    /// (in the list already).
    listed_at: Seq,
    phase: Phase,
}

/// What an `AwayHere` for a room means now.
#[derive(Debug)]
enum Phase {
    /// After a join or a `/who`: the list, said as it is.
    List,
    /// After a reconnect's refresh: who of the list came so far (folded). The list is said
    /// where it differs from what was said; a member said away whom it leaves out came back,
    /// said when the list has ended (with the next news that is not part of it).
    Refresh(BTreeSet<String>),
    /// Otherwise: someone away joining.
    Live,
}

impl AwayNews {
    /// The lines (`-- ...`) to print for `ev`, before its own ([`render::session_lines`]):
    /// `me` is not said (our own away has lines of its own).
    pub fn lines(&mut self, ev: &Event, me: &Nick) -> Vec<String> {
        let mut words = Vec::new();
        // Whatever is not more of a room's list ends it.
        for i in 0..self.rooms.len() {
            if !matches!(ev, Event::AwayHere { room, .. } if *room == self.rooms[i].name) {
                self.end_list(i, me, &mut words);
            }
        }
        match ev {
            Event::Joined {
                room, members, seq, ..
            } => {
                self.rooms.retain(|r| r.name != *room);
                let mut listed = Members::default();
                listed.set(members);
                self.rooms.push(Room {
                    name: room.clone(),
                    members: listed,
                    listed_at: *seq,
                    phase: Phase::List,
                });
                self.forget_strangers();
            }
            Event::Members {
                room,
                members,
                as_of,
                ..
            } => {
                if let Some(r) = self.room_mut(room) {
                    r.members.set(members);
                    r.phase = match as_of {
                        Some(seq) => {
                            r.listed_at = *seq;
                            Phase::Refresh(BTreeSet::new())
                        }
                        None => Phase::List,
                    };
                }
                self.forget_strangers();
            }
            Event::Parted { room, .. } => {
                self.rooms.retain(|r| r.name != *room);
                self.forget_strangers();
            }
            Event::Room(e) => self.follow(e),
            Event::Away { nick, away }
                if self
                    .rooms
                    .iter()
                    .any(|r| r.members.position(nick).is_some()) =>
            {
                self.set(nick, away.as_ref());
            }
            Event::AwayHere { room, away } => self.away_here(room, away, me, &mut words),
            _ => {}
        }
        words.into_iter().map(|w| format!("-- {w}")).collect()
    }

    fn room_mut(&mut self, room: &RoomName) -> Option<&mut Room> {
        self.rooms.iter_mut().find(|r| r.name == *room)
    }

    fn set(&mut self, nick: &Nick, away: Option<&Text>) {
        match away {
            Some(a) => {
                self.said.insert(nick.folded(), (nick.clone(), a.clone()));
            }
            None => {
                self.said.remove(&nick.folded());
            }
        }
    }

    /// Nobody is kept who is in none of our rooms (someone who comes back away is said so).
    fn forget_strangers(&mut self) {
        let rooms = &self.rooms;
        self.said
            .retain(|_, (n, _)| rooms.iter().any(|r| r.members.position(n).is_some()));
    }

    /// A live join, part or rename (history up to the member list is in it already).
    fn follow(&mut self, e: &crate::wire::RoomEvent) {
        let Some(r) = self.room_mut(&e.room).filter(|r| e.seq > r.listed_at) else {
            return;
        };
        match &e.kind {
            EventKind::Join => {
                r.members.add(&e.from);
            }
            EventKind::Part { .. } | EventKind::Quit { .. } => {
                r.members.remove(&e.from);
                self.forget_strangers();
            }
            EventKind::Kick { target, .. } => {
                r.members.remove(target);
                self.forget_strangers();
            }
            EventKind::Nick { new } => {
                if r.members.remove(&e.from).is_some() {
                    r.members.add(new);
                }
                if let Some((_, away)) = self.said.remove(&e.from.folded()) {
                    self.said.insert(new.folded(), (new.clone(), away));
                }
            }
            _ => {}
        }
    }

    fn away_here(
        &mut self,
        room: &RoomName,
        away: &[(Nick, Text)],
        me: &Nick,
        words: &mut Vec<String>,
    ) {
        let Some(i) = self.rooms.iter().position(|r| r.name == *room) else {
            return;
        };
        let r = &self.rooms[i];
        let others: Vec<(Nick, Text)> = away
            .iter()
            .filter(|(n, _)| n.folded() != me.folded() && r.members.position(n).is_some())
            .cloned()
            .collect();
        if let Phase::List = r.phase {
            words.extend(render::away_here_words(&others, Some(me)));
        } else {
            for (n, a) in &others {
                if self.said.get(&n.folded()).is_none_or(|(_, was)| was != a) {
                    words.push(render::away_words(n, Some(a), Some(me)));
                }
            }
        }
        if let Phase::Refresh(listed) = &mut self.rooms[i].phase {
            listed.extend(others.iter().map(|(n, _)| n.folded()));
        }
        for (n, a) in &others {
            self.set(n, Some(a));
        }
    }

    /// Room `i`'s list (if one was coming) has ended: after a refresh, a member it left out
    /// whom we said was away is back.
    fn end_list(&mut self, i: usize, me: &Nick, words: &mut Vec<String>) {
        let Phase::Refresh(listed) = std::mem::replace(&mut self.rooms[i].phase, Phase::Live)
        else {
            return;
        };
        let members = &self.rooms[i].members;
        let back: Vec<Nick> = self
            .said
            .iter()
            .filter(|(key, (n, _))| !listed.contains(*key) && members.position(n).is_some())
            .map(|(_, (n, _))| n.clone())
            .collect();
        for n in back {
            if n.folded() != me.folded() {
                words.push(render::away_words(&n, None, Some(me)));
            }
            self.set(&n, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Millis;
    use crate::wire::RoomEvent;

    fn nick(s: &str) -> Nick {
        Nick::new(s).unwrap()
    }

    fn room(s: &str) -> RoomName {
        RoomName::new(s).unwrap()
    }

    fn joined(r: &str, seq: u64, members: &[&str]) -> Event {
        Event::Joined {
            room: room(r),
            topic: None,
            members: members.iter().map(|m| nick(m)).collect(),
            seq: Seq(seq),
        }
    }

    fn refresh(r: &str, seq: u64, members: &[&str]) -> Event {
        Event::Members {
            room: room(r),
            members: members.iter().map(|m| nick(m)).collect(),
            asked: false,
            as_of: Some(Seq(seq)),
        }
    }

    fn here(r: &str, who: &[(&str, &str)]) -> Event {
        Event::AwayHere {
            room: room(r),
            away: who
                .iter()
                .map(|(n, a)| (nick(n), Text::new(a).unwrap()))
                .collect(),
        }
    }

    fn ev(r: &str, seq: u64, from: &str, kind: EventKind) -> Event {
        Event::Room(RoomEvent {
            room: room(r),
            seq: Seq(seq),
            at: Millis(0),
            from: nick(from),
            kind,
        })
    }

    fn say(r: &str, seq: u64, from: &str) -> Event {
        ev(
            r,
            seq,
            from,
            EventKind::Say {
                id: crate::types::MsgId(seq),
                text: Text::new("hi").unwrap(),
            },
        )
    }

    /// The away lines of each event in turn, all together.
    fn lines(news: &mut AwayNews, evs: &[Event]) -> Vec<String> {
        let me = nick("me");
        evs.iter().flat_map(|e| news.lines(e, &me)).collect()
    }

    #[test]
    fn the_list_is_said_on_joining_and_then_only_changes_even_across_refreshes() {
        let mut news = AwayNews::default();
        // Joining: the list, without us.
        let got = lines(
            &mut news,
            &[
                joined("#a", 5, &["me", "bob", "carol", "dan"]),
                here("#a", &[("bob", "lunch"), ("me", "out")]),
                here("#a", &[("carol", "brb")]),
            ],
        );
        assert_eq!(
            got,
            ["-- away here: bob (lunch)", "-- away here: carol (brb)"]
        );
        // A reconnect's refresh with nothing changed: nothing, even once the list has ended.
        let got = lines(
            &mut news,
            &[
                refresh("#a", 7, &["me", "bob", "carol", "dan"]),
                here("#a", &[("bob", "lunch"), ("carol", "brb")]),
                say("#a", 8, "dan"),
            ],
        );
        assert!(got.is_empty(), "{got:?}");
        // Changes while the connection was down: a new away, another message, and who came
        // back (said when the list has ended); someone who left is not said back.
        let got = lines(
            &mut news,
            &[
                refresh("#a", 9, &["me", "bob", "dan"]),
                here("#a", &[("bob", "dinner"), ("dan", "zzz")]),
            ],
        );
        assert_eq!(got, ["-- bob is away: dinner", "-- dan is away: zzz"]);
        let got = lines(
            &mut news,
            &[
                refresh("#a", 10, &["me", "bob", "dan"]),
                here("#a", &[("bob", "dinner")]),
                say("#a", 11, "bob"),
            ],
        );
        assert_eq!(got, ["-- dan is back"]);
        // Nobody away after a refresh (no `AwayHere` at all): whoever was is back.
        let got = lines(
            &mut news,
            &[
                refresh("#a", 12, &["me", "bob", "dan"]),
                say("#a", 13, "bob"),
            ],
        );
        assert_eq!(got, ["-- bob is back"]);
    }

    #[test]
    fn live_news_is_followed_so_a_refresh_does_not_say_it_again() {
        let mut news = AwayNews::default();
        lines(
            &mut news,
            &[joined("#a", 1, &["me", "bob"]), say("#a", 2, "bob")],
        );
        // Bob goes away while we are connected (the session's own line says so).
        let away = Event::Away {
            nick: nick("bob"),
            away: Some(Text::new("lunch").unwrap()),
        };
        assert!(lines(&mut news, &[away]).is_empty());
        let got = lines(
            &mut news,
            &[
                refresh("#a", 3, &["me", "bob"]),
                here("#a", &[("bob", "lunch")]),
                say("#a", 4, "bob"),
            ],
        );
        assert!(got.is_empty(), "{got:?}");
        // Someone away joining is said after the join; leaving forgets them.
        let got = lines(
            &mut news,
            &[
                ev("#a", 5, "carol", EventKind::Join),
                here("#a", &[("carol", "brb")]),
                ev("#a", 6, "carol", EventKind::Part { reason: None }),
                ev("#a", 7, "carol", EventKind::Join),
                here("#a", &[("carol", "brb")]),
            ],
        );
        assert_eq!(got, ["-- carol is away: brb", "-- carol is away: brb"]);
        // A rename carries the away along.
        let renamed = ev("#a", 8, "carol", EventKind::Nick { new: nick("carla") });
        let got = lines(
            &mut news,
            &[
                renamed,
                refresh("#a", 9, &["me", "bob", "carla"]),
                here("#a", &[("bob", "lunch"), ("carla", "brb")]),
                say("#a", 10, "bob"),
            ],
        );
        assert!(got.is_empty(), "{got:?}");
    }

    /// A resume's replay (a part and a join of someone away, up to the refresh's seq) is
    /// history: it neither forgets them nor says them again; a `/who` says the list again.
    #[test]
    fn a_replay_after_a_refresh_is_history_and_who_says_the_list_again() {
        let mut news = AwayNews::default();
        lines(
            &mut news,
            &[
                joined("#a", 1, &["me", "bob"]),
                here("#a", &[("bob", "lunch")]),
            ],
        );
        let got = lines(
            &mut news,
            &[
                refresh("#a", 3, &["me", "bob"]),
                here("#a", &[("bob", "lunch")]),
                ev("#a", 2, "bob", EventKind::Part { reason: None }),
                ev("#a", 3, "bob", EventKind::Join),
                refresh("#a", 3, &["me", "bob"]),
                here("#a", &[("bob", "lunch")]),
                say("#a", 4, "bob"),
            ],
        );
        assert!(got.is_empty(), "{got:?}");
        let who = Event::Members {
            room: room("#a"),
            members: vec![nick("me"), nick("bob")],
            asked: true,
            as_of: None,
        };
        let got = lines(&mut news, &[who, here("#a", &[("bob", "lunch")])]);
        assert_eq!(got, ["-- away here: bob (lunch)"]);
        // Gone from the room: nothing more is said of it.
        let got = lines(
            &mut news,
            &[
                Event::Parted {
                    room: room("#a"),
                    kicked: false,
                },
                here("#a", &[("bob", "x")]),
            ],
        );
        assert!(got.is_empty(), "{got:?}");
    }

    /// Away is a person's: a change found in the refreshes of two rooms is said once.
    #[test]
    fn a_change_is_said_once_whichever_rooms_we_share() {
        let mut news = AwayNews::default();
        let got = lines(
            &mut news,
            &[
                joined("#a", 1, &["me", "bob", "dan"]),
                here("#a", &[("bob", "lunch"), ("dan", "zzz")]),
                joined("#b", 1, &["me", "bob", "dan"]),
                here("#b", &[("bob", "lunch"), ("dan", "zzz")]),
            ],
        );
        assert_eq!(
            got,
            [
                "-- away here: bob (lunch), dan (zzz)",
                "-- away here: bob (lunch), dan (zzz)"
            ]
        );
        let got = lines(
            &mut news,
            &[
                refresh("#a", 2, &["me", "bob", "dan"]),
                here("#a", &[("bob", "dinner")]),
                refresh("#b", 2, &["me", "bob", "dan"]),
                here("#b", &[("bob", "dinner")]),
                say("#b", 3, "bob"),
            ],
        );
        assert_eq!(got, ["-- bob is away: dinner", "-- dan is back"]);
    }
}
