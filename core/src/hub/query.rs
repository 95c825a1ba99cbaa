//! Questions about users and rooms beyond the protocol's own messages, asked by dialects whose
//! peers expect them (IRC's WHOIS, WHOWAS, ISON, USERHOST, WHO, LIST, LUSERS, TIME, AWAY), and
//! the away state they read: a user may be away, with a message; its co-members are told when
//! that changes (a dialect shows it or not), and who of a member list is away (`AwayHere`, after
//! a `Joined` or `Members`). Answers are [`Info`]s; only users get them. WHO, WHOIS and WHOWAS
//! show an IRC user's `USER` names, which its IRC connection keeps ([`Ident`]).

use super::dialect::Reply;
use super::{ConnKind, Hub, UserId};
use crate::limits::{
    IRC_MAX_WHO_MATCHES, MAX_AWAY_BYTES, MAX_AWAY_PER_MSG, MAX_LIST_ROOMS, MAX_MEMBERS_LISTED,
    WHOWAS_MAX_REPLIES,
};
use crate::time::Millis;
use crate::types::{ConnId, Nick, RoomName, Text};
use crate::wire::{Presence, ServerMsg, WhoisUser};
use std::collections::BTreeSet;

/// A question ([`super::dialect::Request::Query`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Query {
    /// What is known about one user.
    Whois(Nick),
    /// Which of these nicks are on (as they spell them), and whether away.
    Users(Vec<Nick>),
    /// A room's members and whether each is away.
    Who(RoomName),
    /// The user whose nick `mask` is exactly, wherever it is; else the users here whose nick,
    /// user name, host, server or real name `mask` matches (IRC's glob, `*` and `?`; `fields`
    /// may name fewer, or the account); with `ops`, only server admins. A user with IRC's mode
    /// `i` is listed only to those sharing a room with it, unless the mask is its nick
    /// exactly. At most [`IRC_MAX_WHO_MATCHES`].
    WhoMask {
        /// The mask, as the client sent it.
        mask: String,
        /// Only server admins (WHO's `o` flag).
        ops: bool,
        /// What the mask is matched against.
        fields: WhoFields,
    },
    /// The latest `count` records of users who were called `nick` (IRC's WHOWAS), newest
    /// first; at most [`WHOWAS_MAX_REPLIES`].
    Whowas {
        /// The nick.
        nick: Nick,
        /// How many (0: all).
        count: usize,
    },
    /// Rooms with members, their member counts and topics: these rooms only, unless none is
    /// named; only those `filter` admits.
    List(Vec<RoomName>, ListFilter),
    /// How many users, rooms and connections there are.
    Counts,
    /// The server's time.
    Time,
    /// The rooms the user is invited into and not in (IRC's `INVITE` with no parameters);
    /// at most [`MAX_LIST_ROOMS`].
    Invites,
    /// The message of the day (the operator's `motd`, else the dialect's own words).
    Motd,
    /// Go away with a message (`Some`), or come back (`None`). Co-members are told.
    Away(Option<Text>),
    /// Whether `nick` is away (asked after a direct message to them).
    AwayOf(Nick),
    /// Lines said in a room the user is in, in a window of its history (IRC's CHATHISTORY);
    /// at most `limit` ([`crate::limits::HISTORY_WINDOW_MAX`]).
    History {
        /// The room.
        room: RoomName,
        /// Which lines.
        window: Window,
        /// At most this many.
        limit: usize,
    },
    /// The rooms the user is in whose latest line was said between two times (either order),
    /// at most `limit`, in the order of the times (IRC's CHATHISTORY TARGETS).
    Targets {
        /// One end.
        from: Millis,
        /// The other.
        to: Millis,
        /// At most this many.
        limit: usize,
    },
}

/// A point in a room's history: a seq, or a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Point {
    /// The event with this seq (a line's msgid names it).
    Seq(crate::types::Seq),
    /// This server time.
    Time(Millis),
}

/// Which lines of a room's history a [`Query::History`] wants. Points are exclusive; lines
/// come oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Window {
    /// The newest lines (after the point, if given).
    Latest(Option<Point>),
    /// The newest lines before the point.
    Before(Point),
    /// The oldest lines after the point.
    After(Point),
    /// Half before the point, the rest from it on.
    Around(Point),
    /// Lines between two points: the first after the one given first if it is the older,
    /// else the last before it.
    Between(Point, Point),
}

/// Why a [`Query::History`] has no lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HistoryFail {
    /// The user is not in the room (or there is no such room).
    NotInRoom,
    /// The history could not be read (the store failed or is busy).
    Unavailable(String),
}

/// What one user is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Present {
    /// The nick as the user spells it.
    pub(crate) nick: Nick,
    /// The away message, if away.
    pub(crate) away: Option<Text>,
    /// In a room's list (`Who`): `@` the founder or an operator, `+` voiced, `@+` both.
    pub(crate) mark: &'static str,
    /// Its user name and real name.
    pub(crate) ident: Ident,
    /// The account it is signed in to (IRC's `330`, WHOX's `a`).
    pub(crate) account: Option<Nick>,
    /// It has a server admin's powers (signed in to an admin account, or IRC's `OPER`): IRC's
    /// `*` in WHO, `313` in WHOIS.
    pub(crate) oper: bool,
}

/// What a `WHO mask` is matched against: WHOX's match flags (`n` nick, `u` user name, `h`
/// host, `i` address, `s` server, `r` real name, `a` account), as ircu and solanum read
/// them before the `%`; none named: every field but the account (and the address, never
/// shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WhoFields(u8);

impl WhoFields {
    const NICK: u8 = 1;
    const USER: u8 = 2;
    const HOST: u8 = 4;
    const SERVER: u8 = 8;
    const REAL: u8 = 16;
    const ACCOUNT: u8 = 32;
    /// Every field but the account.
    pub(crate) const DEFAULT: WhoFields = WhoFields(
        WhoFields::NICK | WhoFields::USER | WhoFields::HOST | WhoFields::SERVER | WhoFields::REAL,
    );

    /// The match flags of a WHO's flags parameter (before its `%`); the default if it names
    /// none. `i` (the address) matches nothing: no address is shown.
    pub(crate) fn from_flags(flags: &str) -> WhoFields {
        let mut f = 0;
        let mut named = false;
        for c in flags.chars() {
            f |= match c {
                'n' => WhoFields::NICK,
                'u' => WhoFields::USER,
                'h' => WhoFields::HOST,
                's' => WhoFields::SERVER,
                'r' => WhoFields::REAL,
                'a' => WhoFields::ACCOUNT,
                'i' => 0,
                _ => continue,
            };
            named = true;
        }
        if named {
            WhoFields(f)
        } else {
            WhoFields::DEFAULT
        }
    }

    fn has(self, f: u8) -> bool {
        self.0 & f != 0
    }
}

/// A user's user name and real name, as IRC's WHO, WHOIS and WHOWAS show them (the host is
/// everyone's, `natter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ident {
    /// The nick, whatever `USER` said: the user name of every prefix (`nick!nick@natter`) and
    /// what natter reads a mask's user name as, so a ban mask a client builds from it
    /// (irssi's `*!*nick@natter` from its WHOX) bans this user and no one else.
    pub(crate) user: Box<str>,
    /// An IRC user's real name, else words saying how the user is connected.
    pub(crate) realname: Box<str>,
}

impl Ident {
    /// Of a user who is not on IRC (`how`: how it is connected, as words).
    pub(crate) fn natter(nick: &Nick, how: &str) -> Ident {
        Ident {
            user: nick.as_str().into(),
            realname: format!("natter user {how}").into(),
        }
    }

    /// Of a user who quit with no IRC connection (how it was connected is gone with it).
    pub(crate) fn gone(nick: &Nick) -> Ident {
        Ident {
            user: nick.as_str().into(),
            realname: "natter user".into(),
        }
    }

    /// Of a user on another node of the cluster: its IRC real name from its record (`irc`;
    /// the user name there is ignored, as a node before the forty-first session sent
    /// `~USER`), else words saying where it is.
    pub(crate) fn remote(nick: &Nick, irc: Option<&(Box<str>, Box<str>)>) -> Ident {
        match irc {
            Some((_, realname)) => Ident {
                user: nick.as_str().into(),
                realname: realname.clone(),
            },
            None => Ident::natter(nick, "on another natter node"),
        }
    }
}

/// Someone who was called `nick` (WHOWAS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Was {
    /// The nick given up.
    pub(crate) nick: Nick,
    /// Its user name and real name then.
    pub(crate) ident: Ident,
    /// It was signed in to its account (a signed-in user's nick is its account's name):
    /// WHOWAS's `330`.
    pub(crate) signed_in: bool,
    /// When it was given up.
    pub(crate) at: Millis,
}

/// A user as WHOIS sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Whois {
    /// Who, and whether away.
    pub(crate) user: Present,
    /// The rooms the user is in, each with its standing there (`@`, `+`, `@+` or empty).
    pub(crate) rooms: Vec<(RoomName, &'static str)>,
    /// How the user is connected; `None`: between connections, waiting for a resume, or on
    /// another node.
    pub(crate) kind: Option<ConnKind>,
    /// On another node of the cluster (known from the logs of the rooms followed here; `rooms`
    /// are the ones of those it is in).
    pub(crate) elsewhere: bool,
    /// Every connection it has here came through TLS (IRC's `671`).
    pub(crate) secure: bool,
    /// Seconds since its last message and when it signed on (Unix seconds), on any door
    /// (IRC's `317`); `None` on another node, or before it had a connection here.
    pub(crate) idle: Option<(u64, u64)>,
}

/// One room as LIST sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// The room.
    pub(crate) room: RoomName,
    /// Members, connected or waiting for resume.
    pub(crate) members: usize,
    /// Its topic.
    pub(crate) topic: Option<Text>,
}

/// Answers to [`Query`]s, and news they cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Info {
    /// About `nick`; `None`: nobody has it.
    Whois {
        /// The nick asked about.
        nick: Nick,
        /// What is known.
        user: Option<Box<Whois>>,
    },
    /// The users of a [`Query::Users`] that are on, in the order asked.
    Users(Vec<Present>),
    /// The users a [`Query::WhoMask`] matched (`more`: there were more than those listed).
    WhoMask {
        /// The mask asked about.
        mask: String,
        /// Who matched.
        matched: Vec<Present>,
        /// Some that matched were left out ([`IRC_MAX_WHO_MATCHES`]).
        more: bool,
        /// For a nick exactly: a channel of its user's the asker may see (the `352`'s
        /// channel, the user's `mark` being its standing there); else `*`.
        channel: Option<RoomName>,
    },
    /// The records of a [`Query::Whowas`], newest first (none: nobody was called that).
    Whowas {
        /// The nick asked about.
        nick: Nick,
        /// What is remembered.
        was: Vec<Was>,
    },
    /// A room's members (none if there is no such room).
    Who {
        /// The room.
        room: RoomName,
        /// Its members (at most [`MAX_MEMBERS_LISTED`]).
        members: Vec<Present>,
    },
    /// Rooms with members (at most [`MAX_LIST_ROOMS`]) of `total`.
    List {
        /// The rooms listed.
        rooms: Vec<Listed>,
        /// How many rooms have members.
        total: usize,
    },
    /// Counts.
    Counts {
        /// Users, connected or waiting for resume (in a cluster, on every node).
        users: usize,
        /// The most users there were at once since the server started (in a cluster, the most
        /// this node saw).
        peak: usize,
        /// This node's users, and the most there were at once.
        local: usize,
        local_peak: usize,
        /// Rooms.
        rooms: usize,
        /// Connections still in their handshake (IRC's "unknown connections").
        unknown: usize,
        /// Of `users`, this node's with IRC's user mode `i` (another node's are not known).
        invisible: usize,
        /// Server admins connected (signed in to an admin account, or by `OPER`).
        operators: usize,
        /// Servers: the cluster's nodes alive, or 1.
        servers: usize,
    },
    /// The server's time.
    Time(Millis),
    /// The rooms of a [`Query::Invites`], by name.
    Invites(Vec<RoomName>),
    /// The message of the day: the operator's, or `None` for the dialect's own words.
    Motd(Option<super::config::Motd>),
    /// The asker is away now (`Some`: the message, as kept) or back.
    AwayNow(Option<Text>),
    /// The asker said it is back (`/away` alone, `/back`) and was not away: nothing changed.
    /// IRC hears `305` all the same; nc and natter's clients from [`crate::wire::DONE_VERSION`]
    /// on hear [`crate::render::NOT_AWAY`], older ones [`Info::AwayNow`]`(None)`'s words.
    NotAway,
    /// A co-member went away (`Some`: the message) or came back.
    Away {
        /// Who.
        nick: Nick,
        /// The message, while away.
        away: Option<Text>,
    },
    /// A user just written to is away.
    IsAway(Present),
    /// The lines of a [`Query::History`], oldest first.
    History {
        /// The room.
        room: RoomName,
        /// The window asked for.
        window: Window,
        /// The lines, or why there are none.
        lines: Result<Vec<crate::wire::RoomEvent>, HistoryFail>,
    },
    /// The rooms of a [`Query::Targets`], each with the time of its latest line.
    Targets(Vec<(RoomName, Millis)>),
    /// A co-member (or the user itself) changed its real name (IRC's `setname`).
    SetName {
        /// Who.
        nick: Nick,
        /// The real name now.
        realname: Box<str>,
    },
    /// News ([`Info::Away`], [`Info::Account`], [`Info::SetName`]) of a nick the connection
    /// monitors (IRC's `MONITOR`) and shares no room with: IRC's `extended-monitor`.
    Monitored(Box<Info>),
    /// A co-member signed in to an account (`Some`: its name, the user's nick now) or its
    /// account is gone (IRC's account-notify).
    Account {
        /// Who.
        nick: Nick,
        /// The account, if signed in.
        account: Option<Nick>,
    },
}

impl Info {
    /// The away news in it as the protocol's message (for natter's own clients and nc users,
    /// who read it as [`ServerMsg::Away`] and [`crate::render`]'s words): one's own away
    /// (`me`), a co-member's change, a user written to who is away. `None` for any other
    /// answer.
    pub(crate) fn away_msg(&self, me: Option<&Nick>) -> Option<ServerMsg> {
        let (nick, away) = match self {
            Info::AwayNow(away) => (me?.clone(), away.clone()),
            Info::NotAway => (me?.clone(), None),
            Info::Away { nick, away } => (nick.clone(), away.clone()),
            Info::IsAway(p) => (p.nick.clone(), p.away.clone()),
            _ => return None,
        };
        Some(ServerMsg::Away { nick, away })
    }
}

/// `text` cut to [`MAX_AWAY_BYTES`] at a character boundary.
fn away_text(text: Text) -> Text {
    if text.as_str().len() <= MAX_AWAY_BYTES {
        return text;
    }
    let s = text.as_str();
    let mut end = MAX_AWAY_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Text::new(&s[..end]).unwrap_or(text)
}

impl Hub {
    /// How many users, rooms and connections there are (`LUSERS`).
    pub(super) fn counts(&mut self) -> Info {
        self.note_users_peak();
        let local = self.users.len();
        let users = local + self.remote_user_count();
        // The whole network had at least this node's users at this node's peak, whether or
        // not anyone asked then (`note_users_peak` keeps that one as users come).
        self.users_peak.1 = self.users_peak.1.max(users).max(self.users_peak.0);
        // Connections still registering: a closing one (its user gone, its last words going
        // out) is not one.
        let unknown = self
            .conns
            .values()
            .filter(|c| c.user().is_none() && !c.closing())
            .count();
        // A user with `i` on several IRC connections is one (a scan of the connections, as
        // `unknown` is).
        let invisible: BTreeSet<UserId> = self
            .conns
            .values()
            .filter(|c| match c.dialect() {
                Some(super::dialect::AnyDialect::Irc(i)) => i.invisible(),
                _ => false,
            })
            .filter_map(|c| c.user())
            .collect();
        let invisible = invisible.len();
        Info::Counts {
            users,
            peak: self.users_peak.1,
            local,
            local_peak: self.users_peak.0,
            // Rooms somebody is in (a stored room nobody is in stays in the table), here or,
            // in a cluster, on another node.
            rooms: self
                .rooms
                .values()
                .filter(|r| !r.members.is_empty())
                .count()
                + self.remote_only_rooms().len(),
            unknown,
            invisible,
            operators: self.operators_online(),
            servers: self.servers(),
        }
    }

    /// Whether `uid` has connections here and every one came through TLS (WHOIS's `671`: a
    /// claim about the user's link, so a user with one plain connection has none).
    fn all_secure(&self, uid: UserId) -> bool {
        let mut conns = self
            .user_conns(uid)
            .filter_map(|c| self.conns.get(&c))
            .peekable();
        conns.peek().is_some() && conns.all(|c| c.secure)
    }

    /// WHOIS's `317` for `uid`: seconds since its last message on any of its devices, every
    /// door (since it signed on when it sent none), and when its first device signed on (Unix
    /// seconds); `None` with no device that had a connection.
    fn idle_of(&self, uid: UserId, now: Millis) -> Option<(u64, u64)> {
        let (on, spoke) = self
            .users
            .get(&uid)?
            .devices
            .iter()
            .filter_map(|d| self.devices.get(d)?.seen.times())
            .reduce(|(o1, s1), (o2, s2)| (o1.min(o2), s1.max(s2)))?;
        Some(((now.0 / 1000).saturating_sub(spoke), on))
    }

    /// Users connected here with a server admin's powers (`LUSERS`' `252`): those signed in to
    /// an admin account and those who took one's powers by `OPER`; each once.
    fn operators_online(&self) -> usize {
        let mut ops: Vec<UserId> = self
            .config
            .accounts
            .admins
            .iter()
            .filter_map(|n| self.accounts.user_of_account(&n.folded()))
            .chain(
                self.accounts
                    .opers
                    .iter()
                    .filter(|(_, a)| self.is_admin_account(a))
                    .map(|(u, _)| *u),
            )
            .filter(|u| self.online(*u))
            .collect();
        ops.sort_unstable();
        ops.dedup();
        ops.len()
    }

    /// Keeps the most users there were at once on this node (`LUSERS`' maximum).
    pub(super) fn note_users_peak(&mut self) {
        self.users_peak.0 = self.users_peak.0.max(self.users.len());
    }

    /// Answers `q` for `conn`'s user (a connection without one gets nothing: it asked during a
    /// handshake that did not go through).
    pub(super) fn query(&mut self, conn: ConnId, q: Query, now: Millis) {
        let Some(uid) = self.user_of(conn) else {
            return;
        };
        let info = match q {
            Query::Whois(nick) => {
                let user = self.whois_of(&nick, now);
                Info::Whois { nick, user }
            }
            Query::Users(nicks) => Info::Users(
                nicks
                    .iter()
                    .filter_map(|n| self.present(n))
                    .collect::<Vec<_>>(),
            ),
            Query::Who(room) => {
                let members = self.rooms.get(&room).map_or_else(Vec::new, |r| {
                    r.members
                        .iter()
                        .filter_map(|u| self.users.get(u))
                        .map(|u| Present {
                            nick: u.nick.clone(),
                            away: self.shown_away(u),
                            mark: self.standing(&room, &u.nick),
                            ident: self.ident_of(u.id, u),
                            account: self.account_shown(u.id),
                            oper: self.is_admin_user(u.id),
                        })
                        .chain(self.remote_members(&room).map(|n| Present {
                            nick: n.clone(),
                            away: self.remote_away(n),
                            mark: "",
                            ident: self.remote_ident(n),
                            account: self.remote_account(n),
                            oper: false,
                        }))
                        .take(MAX_MEMBERS_LISTED)
                        .collect()
                });
                // In a cluster, a room only other nodes' users are in: by their records.
                let elsewhere: Vec<Present> = self
                    .remote_only_members(&room)
                    .into_iter()
                    .map(|p| Present {
                        nick: p.nick.clone(),
                        away: p.away.clone(),
                        mark: "",
                        ident: Ident::remote(&p.nick, p.irc.as_ref()),
                        account: p.account.clone(),
                        oper: false,
                    })
                    .collect();
                let members = if elsewhere.is_empty() {
                    members
                } else {
                    elsewhere
                };
                Info::Who { room, members }
            }
            Query::WhoMask { mask, ops, fields } => self.who_mask(uid, mask, ops, fields),
            Query::Whowas { nick, count } => {
                let count = if count == 0 {
                    WHOWAS_MAX_REPLIES
                } else {
                    count.min(WHOWAS_MAX_REPLIES)
                };
                let was = self.whowas.of(&nick, count);
                Info::Whowas { nick, was }
            }
            Query::List(named, filter) => {
                let mut listed = self.listed_rooms(&named);
                listed.retain(|(room, members, _)| filter.admits(room, *members));
                let total = listed.len();
                let rooms = listed
                    .into_iter()
                    .take(MAX_LIST_ROOMS)
                    .map(|(room, members, topic)| Listed {
                        room,
                        members,
                        topic,
                    })
                    .collect();
                Info::List { rooms, total }
            }
            Query::Counts => self.counts(),
            Query::Time => Info::Time(now),
            Query::Invites => Info::Invites(self.invites_of(uid, now)),
            Query::Motd => Info::Motd(self.config.motd.clone()),
            Query::Away(text) => return self.set_away(conn, uid, text.map(away_text)),
            Query::AwayOf(nick) => match self.present(&nick) {
                Some(p) if p.away.is_some() => Info::IsAway(p),
                _ => return,
            },
            Query::History {
                room,
                window,
                limit,
            } => return self.history_window(conn, uid, room, window, limit),
            Query::Targets { from, to, limit } => self.targets(uid, from, to, limit),
        };
        self.reply(conn, Reply::Info(info));
    }

    /// The rooms `uid` is invited into and not in, by name (at most [`MAX_LIST_ROOMS`]).
    fn invites_of(&self, uid: UserId, now: Millis) -> Vec<RoomName> {
        let Some(u) = self.users.get(&uid) else {
            return Vec::new();
        };
        let nick = u.nick.folded();
        let mut rooms: Vec<RoomName> = self
            .rooms
            .iter()
            .filter(|(name, r)| {
                !u.rooms.contains(name) && r.invited.iter().any(|i| i.admits(uid, &nick, now))
            })
            .map(|(name, _)| name.clone())
            .collect();
        rooms.sort_unstable();
        rooms.truncate(MAX_LIST_ROOMS);
        rooms
    }

    /// What WHOIS tells of the user called `nick`, here or (in a cluster) on another node.
    fn whois_of(&self, nick: &Nick, now: Millis) -> Option<Box<Whois>> {
        let user = self.user_named(nick).map(|(uid_of, u)| {
            Box::new(Whois {
                user: Present {
                    nick: u.nick.clone(),
                    away: self.shown_away(u),
                    mark: "",
                    ident: self.ident_of(uid_of, u),
                    account: self.account_shown(uid_of),
                    oper: self.is_admin_user(uid_of),
                },
                rooms: u
                    .rooms
                    .iter()
                    .map(|r| (r.clone(), self.standing(r, &u.nick)))
                    .collect(),
                kind: self
                    .user_conns(uid_of)
                    .find_map(|c| self.conns.get(&c).and_then(|c| c.kind())),
                elsewhere: false,
                secure: self.all_secure(uid_of),
                idle: self.idle_of(uid_of, now),
            })
        });
        let user = user.or_else(|| {
            self.remote_user(nick).map(|(nick, rooms)| {
                let away = self.remote_away(&nick);
                let account = self.remote_account(&nick);
                let rooms = rooms
                    .into_iter()
                    .map(|r| {
                        let mark = self.standing(&r, &nick);
                        (r, mark)
                    })
                    .collect();
                // An account with nothing connected is answered as its own node answers.
                let offline = self.remote_presence(&nick).is_some_and(|p| p.offline);
                Box::new(Whois {
                    user: Present {
                        ident: self.remote_ident(&nick),
                        nick,
                        away,
                        mark: "",
                        account,
                        oper: false,
                    },
                    rooms,
                    kind: None,
                    elsewhere: !offline,
                    secure: false,
                    idle: None,
                })
            })
        });
        // In a cluster, a user on another node sharing no room with this one: its
        // rooms are those its record names.
        user.or_else(|| {
            let user = self.remote_present(nick)?;
            let offline = self.remote_presence(nick).is_some_and(|p| p.offline);
            let rooms = self
                .remote_presence(nick)
                .map_or_else(Vec::new, |p| p.rooms.clone())
                .into_iter()
                .map(|r| {
                    let mark = self.standing(&r, &user.nick);
                    (r, mark)
                })
                .collect();
            Some(Box::new(Whois {
                user,
                rooms,
                kind: None,
                elsewhere: !offline,
                secure: false,
                idle: None,
            }))
        })
    }

    /// `/whois nick` of nc and natter's own clients ([`ClientMsg::Whois`]): what WHOIS tells,
    /// in one [`ServerMsg::Whois`], with only the rooms the asker shares with the user (an
    /// invite-only room the asker is not in is nobody else's business).
    pub(super) fn whois(&mut self, conn: ConnId, asker: UserId, nick: Nick, now: Millis) {
        let user = self.whois_of(&nick, now).map(|w| {
            let shared = |r: &RoomName| self.member(asker, r);
            let presence = match (w.kind, w.elsewhere) {
                (Some(_), _) => Presence::Here,
                (None, true) => Presence::Elsewhere,
                (None, false) if w.user.account.is_some() => Presence::Offline,
                (None, false) => Presence::Resuming,
            };
            // WHOIS's `317`: since its last message on any device (its sign-on when none).
            let idle = w.idle.map(|(secs, _)| Millis(secs.saturating_mul(1000)));
            WhoisUser {
                rooms: w
                    .rooms
                    .iter()
                    .map(|(r, _)| r)
                    .filter(|r| shared(r))
                    .cloned()
                    .collect(),
                nick: w.user.nick,
                account: w.user.account,
                away: w.user.away,
                idle,
                secure: w.secure,
                presence,
            }
        });
        self.reply(conn, Reply::Msg(ServerMsg::Whois { nick, user }));
    }

    fn user_named(&self, nick: &Nick) -> Option<(UserId, &super::User)> {
        let uid = self.nicks.get(&self.users, nick.folded_key().as_str())?;
        self.users.get(&uid).map(|u| (uid, u))
    }

    /// `nick`'s user, here or (in a cluster) in a followed room on another node.
    /// `u`'s away message as others are shown it: its own, or, for an account with nothing
    /// connected (always-on: it stays in its rooms), that messages to it wait for it (as
    /// ergo's auto-away: `WHO`'s `G`, `WHOIS`'s `301`); in a cluster too, where they wait as on
    /// one node (other nodes show it from its record, `Presence::shown_away`).
    pub(super) fn shown_away(&self, u: &super::User) -> Option<Text> {
        if let Some(away) = u.away() {
            return Some(away.clone());
        }
        let offline = u.devices.is_empty() && u.account().is_some();
        offline
            .then(|| Text::new(super::ops::KEPT_WORDS).ok())
            .flatten()
    }

    pub(super) fn present(&self, nick: &Nick) -> Option<Present> {
        self.user_named(nick)
            .map(|(uid, u)| Present {
                nick: u.nick.clone(),
                away: self.shown_away(u),
                mark: "",
                ident: self.ident_of(uid, u),
                account: self.account_shown(uid),
                oper: self.is_admin_user(uid),
            })
            .or_else(|| {
                self.remote_user(nick).map(|(nick, _)| {
                    let away = self.remote_away(&nick);
                    Present {
                        account: self.remote_account(&nick),
                        ident: self.remote_ident(&nick),
                        nick,
                        away,
                        mark: "",
                        oper: false,
                    }
                })
            })
            .or_else(|| self.remote_present(nick))
    }

    /// `u`'s user name and real name: its IRC connection's `USER`, else its nick and words
    /// saying how it is connected.
    pub(super) fn ident_of(&self, uid: UserId, u: &super::User) -> Ident {
        if let Some(ident) = self.irc_ident(uid) {
            return ident;
        }
        let kind = self
            .user_conns(uid)
            .find_map(|c| self.conns.get(&c).and_then(|c| c.kind()));
        let how = match kind {
            Some(ConnKind::Binary) => "on the natter client or a web page",
            Some(ConnKind::Text) => "on nc or telnet",
            Some(ConnKind::Irc) => "on IRC",
            // An account stays in its rooms with nothing connected (always-on).
            None if u.account().is_some() => "with nothing connected",
            None => "reconnecting",
        };
        Ident::natter(&u.nick, how)
    }

    /// The name of the account `uid` is signed in to, as its owner spells it.
    fn account_shown(&self, uid: UserId) -> Option<Nick> {
        self.account_of(uid).and_then(|a| self.account_name(&a))
    }

    /// The real name of `uid`'s IRC connection's `USER`, if it has one, with its nick as the
    /// user name (see [`Ident::user`]: the `USER` name is shown nowhere).
    pub(super) fn irc_ident(&self, uid: UserId) -> Option<Ident> {
        let nick = &self.users.get(&uid)?.nick;
        self.user_conns(uid)
            .find_map(|c| match self.conns.get(&c)?.dialect()? {
                super::dialect::AnyDialect::Irc(irc) => irc.ident().map(|(_, realname)| Ident {
                    user: nick.as_str().into(),
                    realname: realname.into(),
                }),
                _ => None,
            })
    }

    /// Whether `uid` set IRC's user mode `i` on a connection.
    fn invisible(&self, uid: UserId) -> bool {
        self.user_conns(uid).filter_map(|c| self.conns.get(&c)).any(
            |c| matches!(c.dialect(), Some(super::dialect::AnyDialect::Irc(i)) if i.invisible()),
        )
    }

    /// `WHO mask` for `asker`: this node's users whose nick, user name, host or real name
    /// the mask matches (`*` and `0` match everyone), in no particular order, at most
    /// [`IRC_MAX_WHO_MATCHES`]. Invisible users (`i`) show only to those sharing a room with
    /// them, or to a mask that is their nick exactly; `ops`: only server admins.
    fn who_mask(&self, asker: UserId, mask: String, ops: bool, fields: WhoFields) -> Info {
        let everyone = mask == "*" || mask == "0";
        let exact = Nick::new(&mask).ok();
        // A nick exactly: that user alone, here or on another node (a nick that is nobody's
        // is a mask like another, as solanum reads it).
        if let Some(mut p) = exact.as_ref().and_then(|n| self.present(n))
            && (!ops || p.oper)
        {
            let channel = self.who_channel(asker, &p.nick);
            if let Some(room) = &channel {
                p.mark = self.standing(room, &p.nick);
            }
            return Info::WhoMask {
                mask,
                matched: vec![p],
                more: false,
                channel,
            };
        }
        let server = self.config.irc_server_name.as_str();
        let mut matched = Vec::new();
        let mut more = false;
        let asker_rooms = self.users.get(&asker).map(|u| &u.rooms);
        for (uid, u) in &self.users {
            let is_nick = exact
                .as_ref()
                .is_some_and(|n| n.folded_key() == u.nick.folded_key());
            let ident = self.ident_of(*uid, u);
            let account = self.account_shown(*uid);
            let hit = everyone
                || (fields.has(WhoFields::NICK)
                    && (is_nick || wildcard_matches(&mask, u.nick.as_str())))
                || (fields.has(WhoFields::USER) && wildcard_matches(&mask, &ident.user))
                || (fields.has(WhoFields::HOST)
                    && wildcard_matches(&mask, crate::hub::dialect::IRC_HOST))
                || (fields.has(WhoFields::SERVER) && wildcard_matches(&mask, server))
                || (fields.has(WhoFields::REAL) && wildcard_matches(&mask, &ident.realname))
                || (fields.has(WhoFields::ACCOUNT)
                    && account
                        .as_ref()
                        .is_some_and(|a| wildcard_matches(&mask, a.as_str())));
            if !hit || (ops && !self.is_admin_user(*uid)) {
                continue;
            }
            let shares = *uid == asker
                || asker_rooms.is_some_and(|rooms| u.rooms.iter().any(|r| rooms.contains(r)));
            if !is_nick && !shares && self.invisible(*uid) {
                continue;
            }
            if matched.len() == IRC_MAX_WHO_MATCHES {
                more = true;
                break;
            }
            matched.push(Present {
                nick: u.nick.clone(),
                away: self.shown_away(u),
                mark: "",
                ident,
                account,
                oper: self.is_admin_user(*uid),
            });
        }
        Info::WhoMask {
            mask,
            matched,
            more,
            channel: None,
        }
    }

    /// The channel a `WHO nick` names for `nick`'s user, as solanum picks it: one `asker`
    /// shares with it, else (unless it has mode `i`) any of its rooms; `None` (`*`) when it is
    /// in none the asker may see. natter has no secret channels.
    fn who_channel(&self, asker: UserId, nick: &Nick) -> Option<RoomName> {
        let rooms: Vec<RoomName> = match self.user_named(nick) {
            Some((_, u)) => u.rooms.iter().cloned().collect(),
            None => self.remote_user(nick).map(|(_, r)| r).unwrap_or_default(),
        };
        let mine = self.users.get(&asker).map(|u| &u.rooms);
        let shared = rooms.iter().find(|r| mine.is_some_and(|m| m.contains(r)));
        let hidden = self
            .user_named(nick)
            .is_some_and(|(uid, _)| self.invisible(uid));
        shared
            .or_else(|| rooms.first().filter(|_| !hidden))
            .cloned()
    }

    /// Every connection of the users sharing a room with `uid` (its own aside), each once.
    pub(super) fn co_member_conns(&self, uid: UserId) -> BTreeSet<ConnId> {
        let Some(u) = self.users.get(&uid) else {
            return BTreeSet::new();
        };
        u.rooms
            .iter()
            .filter_map(|room| self.rooms.get(room))
            .flat_map(|r| r.members.iter())
            .filter(|m| **m != uid)
            .flat_map(|m| self.user_conns(*m))
            .collect()
    }

    /// Tells each connection that shares a room with `uid` (its own aside) once that the user
    /// is signed in to its account now, or no longer.
    pub(super) fn account_news(&mut self, uid: UserId) {
        let Some(u) = self.users.get(&uid) else {
            return;
        };
        let nick = u.nick.clone();
        let account = u.account().is_some().then(|| nick.clone());
        self.cluster_presence_changed(&nick);
        self.tell_co_members(uid, &Info::Account { nick, account });
    }

    /// `news` of `uid`'s (its away, account or real name), told once to each connection that
    /// shares a room with it (its own aside) and, with `extended-monitor`, to those monitoring
    /// its nick ([`Hub::monitored_news`]).
    pub(super) fn tell_co_members(&mut self, uid: UserId, news: &Info) {
        let others = self.co_member_conns(uid);
        self.monitored_news(uid, &others, news);
        for other in others {
            self.reply(other, Reply::Info(news.clone()));
        }
    }

    /// Who of the members a `Joined` or `Members` lists is away, as `AwayHere`s of at most
    /// [`MAX_AWAY_PER_MSG`] each: none when nobody is (nor for any other message).
    pub(super) fn away_here(&self, msg: &ServerMsg) -> Vec<ServerMsg> {
        let (ServerMsg::Joined { room, members, .. } | ServerMsg::Members { room, members }) = msg
        else {
            return Vec::new();
        };
        let away: Vec<(Nick, Text)> = members
            .iter()
            .filter_map(|n| {
                let away = match self.user_named(n) {
                    Some((_, u)) => self.shown_away(u),
                    // In a cluster, a member on another node, as its node says.
                    None => self.remote_away(n),
                };
                away.map(|a| (n.clone(), a))
            })
            .collect();
        away.chunks(MAX_AWAY_PER_MSG)
            .map(|some| ServerMsg::AwayHere {
                room: room.clone(),
                away: some.to_vec(),
            })
            .collect()
    }

    /// An account's user went from some device to none (`offline`: it stays in its rooms,
    /// always-on), or back: unless it set an away message of its own, each connection sharing
    /// a room with it is told it is away ([`super::ops::KEPT_WORDS`]) or back, as for an away it
    /// set ([`Hub::set_away`]; IRC's away-notify `AWAY`), so member lists follow
    /// ([`Hub::shown_away`]). In a cluster its record says so too (`Presence::offline`), and
    /// other nodes tell their members.
    pub(super) fn account_presence_changed(&mut self, uid: UserId, offline: bool) {
        let Some(u) = self.users.get(&uid) else {
            return;
        };
        let nick = u.nick.clone();
        self.cluster_presence_changed(&nick);
        let Some(u) = self.users.get(&uid) else {
            return;
        };
        if u.away().is_some() || u.account().is_none() {
            return;
        }
        let nick = u.nick.clone();
        let away = offline
            .then(|| Text::new(super::ops::KEPT_WORDS).ok())
            .flatten();
        self.tell_co_members(uid, &Info::Away { nick, away });
    }

    /// Sets or clears `uid`'s away message, tells `conn`, and, when it changed, the user's other
    /// connections (an account signed in on several doors is away on all of them: each says
    /// so as it says its own, IRC's `305`/`306`, natter's `Away` of its own nick) and each
    /// connection that shares a room with the user once.
    pub(super) fn set_away(&mut self, conn: ConnId, uid: UserId, away: Option<Text>) {
        let Some(u) = self.users.get_mut(&uid) else {
            return;
        };
        let changed = u.away() != away.as_ref();
        u.set_away(away.clone());
        let nick = u.nick.clone();
        self.cluster_presence_changed(&nick);
        let answer = match (&away, changed) {
            (None, false) => Info::NotAway,
            _ => Info::AwayNow(away.clone()),
        };
        self.reply(conn, Reply::Info(answer));
        self.note_told_away(conn, away.is_some());
        if !changed {
            return;
        }
        let own: Vec<ConnId> = self.user_conns(uid).filter(|c| *c != conn).collect();
        for other in own {
            self.reply(other, Reply::Info(Info::AwayNow(away.clone())));
            self.note_told_away(other, away.is_some());
        }
        self.tell_co_members(uid, &Info::Away { nick, away });
    }
}

/// Which rooms a `LIST` wants, beyond their names (IRC's ELIST conditions `M`, `N` and
/// `U`): the default admits every room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ListFilter {
    /// More members than this (`>N`).
    pub(crate) above: Option<usize>,
    /// Fewer members than this (`<N`).
    pub(crate) below: Option<usize>,
    /// Names matching one of these globs (`#rust*`), when there are any.
    pub(crate) masks: Vec<String>,
    /// Names matching none of these globs (`!*test*`).
    pub(crate) not: Vec<String>,
}

impl ListFilter {
    /// Whether a room called `room` with `members` members is listed.
    pub(crate) fn admits(&self, room: &RoomName, members: usize) -> bool {
        let name = room.as_str();
        self.above.is_none_or(|n| members > n)
            && self.below.is_none_or(|n| members < n)
            && (self.masks.is_empty() || self.masks.iter().any(|m| wildcard_matches(m, name)))
            && !self.not.iter().any(|m| wildcard_matches(m, name))
    }
}

/// IRC's glob: whether `pattern` (`*` any run, `?` one character, ASCII case-insensitive)
/// matches all of `text`.
pub(crate) fn wildcard_matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    // The classic two-pointer walk, backtracking to the last `*` only: linear in practice, and
    // both sides are short (a mask of at most 64 bytes, the host).
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < t.len() {
        if i < p.len() && (p[i] == b'?' || p[i].eq_ignore_ascii_case(&t[j])) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == b'*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == b'*')
}
