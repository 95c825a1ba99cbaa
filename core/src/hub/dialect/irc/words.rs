//! The hub's replies and room events as IRC lines: numerics for answers and refusals, and
//! `PRIVMSG`/`JOIN`/`PART`/`QUIT`/`NICK`/`TOPIC` lines from `nick!nick@natter` for what people
//! do. A text longer than one line is split into several; tags follow the client's
//! capabilities and the line running (its label or batch).

use super::caps::Cap;
use super::message::{Tags, body_len, echoed, fit, write_line};
use super::names::{self, NETWORK};
use super::numeric::*;
use super::time;
use super::{
    F_ACCOUNT, F_AWAY, F_CHGHOST, F_EXTJOIN, F_TAGS, F_TIME, Irc, Running, S_BATCH, S_LABEL,
    S_REPLAY, STATE, Whox,
};
use crate::hub::accounts::{ACCOUNT_REMOVED, REGISTERED};
use crate::hub::dialect::{Form, Joiner, Note, Reply};
use crate::hub::moderate::{ALREADY_IN, NO_BAN_ON, NOT_AN_ACCOUNT, NOT_MUTED_IN};
use crate::hub::ops::{NICK_TOO_FAST, NO_ROOM};
use crate::hub::query::{HistoryFail, Info, Present, Window};
use crate::hub::room::TopicSet;
use crate::limits::{
    HISTORY_WINDOW_MAX, IRC_MAX_JOIN_TARGETS, IRC_MAX_LINE, IRC_MAX_MODES, IRC_MAX_TARGETS,
    IRC_MAX_WHO_MATCHES, IRC_MONITOR_MAX, IRC_TOPICLEN, MAX_AWAY_BYTES, MAX_MEMBERS_LISTED,
    MAX_NICK_LEN, MAX_ROOM_LEN, MAX_ROOMS_PER_USER,
};
use crate::time::Millis;
use crate::types::{MsgId, Nick, RoomName, Text};
use crate::wire::{DirectMsg, ErrorKind, EventKind, Re, RoomEvent, ServerMsg};
use bytes::Bytes;

/// The message of the day.
const MOTD: [&str; 3] = [
    "Welcome to natter over IRC. The people here may be on the natter client, a web page, nc",
    "or IRC like you: channels are natter rooms (# then a-z 0-9 - _ .), LIST shows them.",
    "History comes with your JOIN when your client asks for server-time; CHATHISTORY asks for more.",
];

/// `ISUPPORT` tokens (`005`), at most 13 to a line.
/// The ISUPPORT tokens as the `005` lines of the welcome and of `VERSION` give them, 13 a
/// line.
pub(super) fn isupport_lines() -> Vec<Vec<String>> {
    isupport().chunks(13).map(<[String]>::to_vec).collect()
}

fn isupport() -> Vec<String> {
    vec![
        "AWAYLEN=".to_owned() + &MAX_AWAY_BYTES.to_string(),
        "CASEMAPPING=ascii".into(),
        format!("CHATHISTORY={HISTORY_WINDOW_MAX}"),
        format!("CHANLIMIT=#:{MAX_ROOMS_PER_USER}"),
        // Lists (`b` bans, `q` mutes), a key, a limit, then flags.
        "CHANMODES=bq,k,l,imnrt".into(),
        format!("CHANNELLEN={MAX_ROOM_LEN}"),
        "CHANTYPES=#".into(),
        // LIST's filters: name globs (`M`) and their negations (`N`), member counts (`U`).
        "ELIST=MNU".into(),
        format!("LINELEN={IRC_MAX_LINE}"),
        format!("MAXTARGETS={IRC_MAX_TARGETS}"),
        format!("MODES={IRC_MAX_MODES}"),
        format!("MONITOR={IRC_MONITOR_MAX}"),
        "MSGREFTYPES=msgid,timestamp".into(),
        format!("NETWORK={NETWORK}"),
        format!("NICKLEN={MAX_NICK_LEN}"),
        "PREFIX=(ov)@+".into(),
        format!(
            "TARGMAX=PRIVMSG:{IRC_MAX_TARGETS},NOTICE:{IRC_MAX_TARGETS},\
             TAGMSG:{IRC_MAX_TARGETS},JOIN:{IRC_MAX_JOIN_TARGETS},PART:{IRC_MAX_JOIN_TARGETS},NAMES:{IRC_MAX_JOIN_TARGETS},LIST:{IRC_MAX_JOIN_TARGETS},KICK:{IRC_MAX_TARGETS},WHOIS:1"
        ),
        format!("TOPICLEN={IRC_TOPICLEN}"),
        "UTF8ONLY".into(),
        "WHOX".into(),
    ]
}

/// `333 RPL_TOPICWHOTIME` after a `332`: who set `room`'s topic (`nick!user@host`, as
/// solanum, InspIRCd and ergo say it: irssi shows `Topic set by alice []` for a bare nick) and
/// when (Unix seconds), if this server knows (it does not keep it across a restart).
fn topic_who_time(l: &mut Lines<'_>, room: &RoomName, set: Option<&TopicSet>) {
    let Some(set) = set else {
        return;
    };
    let (tags, me) = (l.tags.clone(), l.me.clone());
    let secs = (set.at.0 / 1000).to_string();
    let by = names::source(&set.by);
    let params = [me.as_str(), room.as_str(), by.as_str(), secs.as_str()];
    l.from(&tags, l.server, RPL_TOPICWHOTIME, &params, false);
}

/// The server's `NOTICE #room` before a join's replay that leaves out lines said since the
/// client was last there ([`Note::Unreplayed`]): a slow reader that parts and joins again, or a
/// client back after its quit, knows more was said than it is shown, and how to ask for it.
fn unreplayed_notice(count: usize, more: bool, shown: usize) -> String {
    let count = if more {
        format!("{count} or more")
    } else {
        count.to_string()
    };
    format!(
        "*** {count} earlier message(s) said since you were last here are not replayed, only the \
         last {shown}: CHATHISTORY BEFORE asks for them"
    )
}

/// `s` cut to at most `max` bytes at a character boundary, with `…` when cut.
/// A channel's size right after joining it (a `NOTICE` from the server), when its `NAMES` is
/// cut short or its JOINs, PARTs and QUITs are `summed` up (a big room, `crowd.rs`).
fn size_notice(members: u32, summed: bool) -> String {
    let cut = members as usize > MAX_MEMBERS_LISTED;
    match (summed, cut) {
        (true, true) => format!(
            "*** {members} members here: joins, parts and quits are summed up, not shown one by \
             one; NAMES lists {MAX_MEMBERS_LISTED} of them"
        ),
        (true, false) => format!(
            "*** {members} members here: joins, parts and quits are summed up, not shown one by \
             one; NAMES lists members"
        ),
        (false, _) => {
            format!("*** {members} members here; NAMES lists {MAX_MEMBERS_LISTED} of them")
        }
    }
}

/// Lines being written for one reply or event.
struct Lines<'s> {
    /// The server's name, the source of its own lines.
    server: &'s str,
    /// The client's nick, or `*`.
    me: String,
    tags: Tags,
    out: String,
}

impl Lines<'_> {
    /// A numeric to the client, `text` last.
    /// A message of the day: its start, a `372` per line, its end.
    fn motd<'a>(&mut self, lines: impl Iterator<Item = &'a str>) {
        self.num(
            RPL_MOTDSTART,
            &[],
            &format!("- {} Message of the day -", self.server),
        );
        for line in lines {
            self.num(RPL_MOTD, &[], &format!("- {line}"));
        }
        self.num(RPL_ENDOFMOTD, &[], "End of /MOTD command.");
    }

    fn num(&mut self, code: &str, middle: &[&str], text: &str) {
        let mut params = Vec::with_capacity(middle.len() + 2);
        params.push(self.me.as_str());
        params.extend(middle.iter().map(|p| echoed(p)));
        // A numeric's text is cut to fit its line (topics, away messages: never chat).
        let room = IRC_MAX_LINE.saturating_sub(body_len(self.server, code, &params, 0));
        let text = fit(text, room);
        params.push(&text);
        write_line(&mut self.out, &self.tags, self.server, code, &params, true);
    }

    /// A numeric whose text is a space-separated list: in as many lines as the items take
    /// (none is cut), at least one.
    fn num_list<'a>(&mut self, code: &str, middle: &[&str], items: impl Iterator<Item = &'a str>) {
        self.num_joined(code, middle, items, ' ');
    }

    /// [`Self::num_list`] with the items joined by `sep` (`MONITOR`'s are by commas).
    fn num_joined<'a>(
        &mut self,
        code: &str,
        middle: &[&str],
        items: impl Iterator<Item = &'a str>,
        sep: char,
    ) {
        let mut params = Vec::with_capacity(middle.len() + 1);
        params.push(self.me.as_str());
        params.extend_from_slice(middle);
        let budget = IRC_MAX_LINE.saturating_sub(body_len(self.server, code, &params, 0));
        let mut line = String::new();
        let mut any = false;
        for item in items {
            if !line.is_empty() && line.len() + 1 + item.len() > budget {
                self.num(code, middle, &line);
                line.clear();
                any = true;
            }
            if !line.is_empty() {
                line.push(sep);
            }
            line.push_str(item);
        }
        if !line.is_empty() || !any {
            self.num(code, middle, &line);
        }
    }

    /// A line from `source`.
    fn from(&mut self, tags: &Tags, source: &str, command: &str, params: &[&str], trailing: bool) {
        write_line(&mut self.out, tags, source, command, params, trailing);
    }

    /// Text from `source` to `target`, in as many `PRIVMSG`s as it takes; an action is wrapped
    /// in CTCP ACTION in each. Parts after the first get their own msgid.
    ///
    /// A text an IRC client could have sent in one line (512 bytes as `PRIVMSG target text`)
    /// is relayed in one line, even when the sender's prefix takes it past 512 bytes, as Ergo
    /// does: cutting it would leave a stray piece of a few bytes on a line of its own (or lose
    /// them), and clients read longer lines. Only a longer text (from natter's own clients, up
    /// to 2000 bytes) is cut, into lines of at most 512 bytes with the prefix.
    fn text(
        &mut self,
        tags: &Tags,
        msgid: Option<&str>,
        source: &str,
        target: &str,
        text: &str,
        how: How,
    ) {
        let action = how == How::Act;
        let command = if how == How::Notice {
            "NOTICE"
        } else {
            "PRIVMSG"
        };
        let wrap = if action { "\x01ACTION \x01".len() } else { 0 };
        // What a client's own line `PRIVMSG target text` leaves for the text: no prefix, and
        // no colon before a text of one word.
        let one_line = IRC_MAX_LINE.saturating_sub(body_len("", command, &[target], 0) - 3 + wrap);
        // Parts after the first get their own msgid.
        let mut emit = |i: usize, piece: &str| {
            let tags = match msgid {
                Some(id) if i == 0 => tags.clone().with("msgid", id),
                Some(id) => tags.clone().with("msgid", &format!("{id}.{}", i + 1)),
                None => tags.clone(),
            };
            let body;
            let said = if action {
                body = format!("\x01ACTION {piece}\x01");
                body.as_str()
            } else {
                piece
            };
            write_line(&mut self.out, &tags, source, command, &[target, said], true);
        };
        if text.len() <= one_line {
            // The usual case: one line.
            return emit(0, text);
        }
        let budget = IRC_MAX_LINE
            .saturating_sub(body_len(source, command, &[target], 0) + wrap)
            .max(4);
        for (i, piece) in names::split(text, budget).into_iter().enumerate() {
            emit(i, piece);
        }
    }

    fn done(self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| Bytes::from(self.out))
    }
}

/// `lobby/42`: a room event's msgid.
fn event_msgid(room: &RoomName, seq: crate::types::Seq) -> String {
    format!("{}/{seq}", room.as_str().trim_start_matches('#'))
}

/// `~alice/1714564800000/3`: a relayed TAGMSG's msgid (its sender, time and the server's
/// number for it), unlike any message's: nothing keeps a TAGMSG to refer to.
fn relay_msgid(from: &Nick, at: Millis, no: u64) -> String {
    format!("~{from}/{}/{no}", at.0)
}

/// How a chat line goes out: `PRIVMSG`, a `PRIVMSG` of a CTCP `ACTION`, or `NOTICE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    Say,
    Act,
    Notice,
}

/// What IRC clients may be told of a direct message's sender beside the message.
#[derive(Debug, Clone, Copy, Default)]
struct Sender<'a> {
    /// Its client-only tags (for clients with message-tags).
    client_tags: Option<&'a str>,
    /// It is signed in: its nick is its account (for clients with account-tag).
    signed_in: bool,
}

impl<'a> Sender<'a> {
    fn new(client_tags: Option<&'a str>, signed_in: bool) -> Sender<'a> {
        Sender {
            client_tags,
            signed_in,
        }
    }
}

/// `@alice/1714564800000/7`: a direct message's msgid.
fn dm_msgid(dm: &DirectMsg) -> String {
    format!("@{}/{}/{}", dm.from, dm.at.0, dm.id.0)
}

impl Irc {
    fn lines(&self, me: Option<&Nick>) -> Lines<'_> {
        Lines {
            server: self.server.as_str(),
            me: me.or(self.named()).map_or("*", Nick::as_str).to_owned(),
            tags: self.reply_tags(),
            out: String::new(),
        }
    }

    /// Tags a message people said carries: `time` and `msgid` as the capabilities ask, and
    /// the running line's label or batch.
    fn said_tags(&self, at: Millis, base: Tags) -> Tags {
        let mut tags = base;
        if self.caps.has(Cap::ServerTime) {
            tags = tags.with("time", &time::iso(at));
        }
        tags
    }

    /// Tags of the user's own `JOIN`, `PART` or `NICK` line, made `at` (if the hub said when): the
    /// running line's label or batch, and `time` for clients with server-time.
    fn own_tags(&self, l: &Lines<'_>, at: Option<Millis>) -> Tags {
        match at {
            Some(at) => self.said_tags(at, l.tags.clone()),
            None => l.tags.clone(),
        }
    }

    fn target_of(&self, id: MsgId) -> String {
        self.running
            .as_ref()
            .and_then(|r| r.sent.iter().find(|(i, _)| *i == id))
            .map(|(_, t)| t.clone())
            .or_else(|| self.sent_late(id).map(|(t, _)| t.to_owned()))
            .unwrap_or_else(|| "*".to_owned())
    }

    /// Why the link closes when the line running is a `QUIT`: `Quit: <reason>`, or `Client
    /// Quit` without one, as solanum says it.
    fn quit_words(&self) -> Option<String> {
        let running = self.running.as_ref().filter(|r| r.verb == "QUIT")?;
        Some(running.reason.as_ref().map_or_else(
            || "Client Quit".to_owned(),
            |r| format!("Quit: {}", fit(r.as_str(), 300)),
        ))
    }

    /// The target and command of message `id`, sent by a line that has ended.
    fn sent_late(&self, id: MsgId) -> Option<(&str, &str)> {
        self.recent
            .iter()
            .rev()
            .find(|s| s.id == id)
            .map(|s| (s.target.as_str(), s.command))
    }

    /// A reply in IRC's words.
    pub(super) fn words(&self, reply: &Reply, me: Option<&Nick>) -> Option<Bytes> {
        if let Reply::Msg(ServerMsg::Event(ev)) = reply {
            // An event read from the store (what an account missed, past the ring): history,
            // as the ring's events of a join's replay are (what was said, timed).
            let form = Form(self.cap_bits() | S_REPLAY);
            return self.event_words(ev, form, false, None, &Joiner::default());
        }
        let mut l = self.lines(me);
        match reply {
            // Nothing at all for an empty one (a non-UTF-8 `NOTICE`'s).
            Reply::Own(bytes) => return (!bytes.is_empty()).then(|| bytes.clone()),
            Reply::Welcome { nick, .. } => self.welcome(&mut l, nick),
            Reply::Msg(msg) | Reply::Settings(msg) => self.msg(&mut l, msg, me),
            Reply::Direct {
                msg,
                tags,
                signed_in,
            } => match (msg, me) {
                (ServerMsg::Direct(dm), Some(me)) => {
                    let from = Sender::new(tags.as_deref(), *signed_in);
                    self.direct(&mut l, dm, me, How::Say, from);
                }
                (ServerMsg::DirectNotice(dm), Some(me)) => {
                    let from = Sender::new(tags.as_deref(), *signed_in);
                    self.direct(&mut l, dm, me, How::Notice, from);
                }
                // An invitation, from a user signed in or not (`account-tag`).
                (ServerMsg::Invited { room, by }, Some(me)) => {
                    self.invite_line(&mut l, me, room, by, *signed_in);
                }
                // Nothing else is sent this way.
                (msg, me) => self.msg(&mut l, msg, me),
            },
            // Joining a channel one is in: IRC servers say nothing.
            Reply::Rejoined(_) => {}
            // A client that never finished registering, in IRC's words (as solanum and
            // InspIRCd close it) rather than natter's ("no hello"): the hub's detail says
            // how long it had.
            Reply::Fatal {
                kind: ErrorKind::Timeout,
                detail,
            } if detail.starts_with(super::super::NO_HELLO_WITHIN) => {
                let within = detail
                    .strip_prefix(super::super::NO_HELLO_WITHIN)
                    .map_or_else(String::new, |w| format!(": no NICK and USER within {w}"));
                closing_link(&mut l, &format!("Registration timed out{within}"));
            }
            Reply::Fatal { kind, detail } => {
                // A server ban, as IRC servers close a banned client's link: 465, then ERROR.
                if *kind == ErrorKind::Banned {
                    l.num(ERR_YOUREBANNEDCREEP, &[], detail);
                }
                // A QUIT before registration closes the link this way too.
                closing_link(&mut l, &self.quit_words().unwrap_or_else(|| detail.clone()));
            }
            // As ircd-hybrid and InspIRCd close a killed client's link.
            Reply::Killed { by, reason } => {
                closing_link(&mut l, &super::super::killed_words(by, reason.as_deref()));
            }
            Reply::Note(note) => self.note(&mut l, note, me),
            Reply::Ping(token) => {
                write_line(
                    &mut l.out,
                    &Tags::none(),
                    "",
                    "PING",
                    &[&token.to_string()],
                    true,
                );
            }
            Reply::Info(info) => self.info(&mut l, info, me),
        }
        l.done()
    }

    fn welcome(&self, l: &mut Lines<'_>, nick: &Nick) {
        let version = format!("natter-{}", env!("CARGO_PKG_VERSION"));
        l.me = nick.to_string();
        l.num(
            RPL_WELCOME,
            &[],
            &format!(
                "Welcome to the {NETWORK} IRC network, {}",
                names::source(nick)
            ),
        );
        l.num(
            RPL_YOURHOST,
            &[],
            &format!("Your host is {}, running {version}", l.server),
        );
        l.num(
            RPL_CREATED,
            &[],
            "This server is natter: the same rooms for natter clients, web pages, nc and IRC",
        );
        let me = l.me.clone();
        write_line(
            &mut l.out,
            &l.tags,
            l.server,
            RPL_MYINFO,
            &[&me, l.server, &version, "iw", "bklimnoqrtv", "bkloqv"],
            false,
        );
        for tokens in isupport_lines() {
            let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
            l.num(RPL_ISUPPORT, &tokens, "are supported by this server");
        }
    }

    fn msg(&self, l: &mut Lines<'_>, msg: &ServerMsg, me: Option<&Nick>) {
        self.msg_marked(l, msg, me, &[], None, None, None);
    }

    /// `msg`, its member list (`Joined`, `Members`) with `marks` before the nicks.
    /// [`Irc::msg`], with what a [`Note::Detailed`] adds: the members' standings, who set
    /// the topic, when the room was made, and when the user's own join, part or nick change
    /// was made (its `time` tag).
    #[allow(clippy::too_many_arguments)]
    fn msg_marked(
        &self,
        l: &mut Lines<'_>,
        msg: &ServerMsg,
        me: Option<&Nick>,
        marks: &[&str],
        topic_set: Option<&TopicSet>,
        created: Option<Millis>,
        at: Option<Millis>,
    ) {
        if let ServerMsg::SignedIn { .. } = msg {
            // Its nick is the account's from now on (account-tag, extended-join).
            self.signed_in.set(true);
        }
        let me = match (me, msg) {
            (_, ServerMsg::Error { kind, re, detail }) => {
                return self.error(l, *kind, re, detail);
            }
            (_, ServerMsg::Bye { reason }) => {
                return closing_link(l, &self.quit_words().unwrap_or_else(|| reason.clone()));
            }
            (None, ServerMsg::SignedIn { account, .. }) => {
                // SASL, before registration.
                let mask = names::source(account);
                l.num(
                    RPL_LOGGEDIN,
                    &[&mask, account.as_str()],
                    &format!("You are now logged in as {account}"),
                );
                return l.num(RPL_SASLSUCCESS, &[], "SASL authentication successful");
            }
            (Some(me), _) => me,
            // Before registration (or after a quit) only refusals and goodbyes are worded.
            (None, _) => return,
        };
        let src = names::source(me);
        match msg {
            ServerMsg::Joined {
                room,
                topic,
                members,
                ..
            } => {
                let tags = self.own_tags(l, at);
                if self.caps.has(Cap::ExtendedJoin) {
                    let account = if self.signed_in.get() {
                        me.as_str()
                    } else {
                        "*"
                    };
                    let real = self.ident().map_or(me.as_str(), |(_, real)| real);
                    let params = [room.as_str(), account, real];
                    l.from(&tags, &src, "JOIN", &params, true);
                } else {
                    l.from(&tags, &src, "JOIN", &[room.as_str()], false);
                }
                if let Some(t) = topic {
                    l.num(RPL_TOPIC, &[room.as_str()], t.as_str());
                    topic_who_time(l, room, topic_set);
                }
                self.names(l, room, members, marks);
            }
            // Put out: the KICK line said it.
            ServerMsg::Parted { room } if self.kicked.as_ref() == Some(room) => {}
            ServerMsg::Parted { room } => {
                let tags = self.own_tags(l, at);
                // Closed by an admin: why, as a PART's reason (irssi and WeeChat show it).
                let closed = self
                    .closed
                    .as_ref()
                    .filter(|(r, _)| r == room)
                    .map(|(_, why)| why.as_str());
                let asked = self.running.as_ref().and_then(|r| r.reason.as_ref());
                match closed.or(asked.map(Text::as_str)) {
                    // Cut as the others read it (`fit`, below), not whole as it was typed.
                    Some(reason) => l.from(
                        &tags,
                        &src,
                        "PART",
                        &[room.as_str(), &fit(reason, 300)],
                        true,
                    ),
                    None => l.from(&tags, &src, "PART", &[room.as_str()], false),
                }
            }
            ServerMsg::Direct(dm) => self.direct(l, dm, me, How::Say, Sender::default()),
            ServerMsg::DirectNotice(dm) => self.direct(l, dm, me, How::Notice, Sender::default()),
            ServerMsg::Gap { room, first, last } => {
                let n = last.0.saturating_sub(first.0).saturating_add(1);
                let text = format!(
                    "*** {n} message(s) here were not delivered to you: your connection read too \
                     slowly"
                );
                let tags = l.tags.clone();
                l.from(&tags, l.server, "NOTICE", &[room.as_str(), &text], true);
            }
            ServerMsg::Members { room, members } => self.names(l, room, members, marks),
            ServerMsg::Topic { room, topic } => match topic {
                Some(t) => {
                    l.num(RPL_TOPIC, &[room.as_str()], t.as_str());
                    topic_who_time(l, room, topic_set);
                }
                None => l.num(RPL_NOTOPIC, &[room.as_str()], "No topic is set"),
            },
            ServerMsg::YourNick { nick } => {
                let old = self.nick.as_ref().unwrap_or(me);
                // With echo-message the room events said it already, once per channel.
                let told = self.caps.has(Cap::EchoMessage) && !self.channels.is_empty();
                if old.as_str() != nick.as_str() && !told {
                    let tags = self.own_tags(l, at);
                    l.from(&tags, &names::source(old), "NICK", &[nick.as_str()], true);
                }
            }
            // Acks, pings and the rest are for programs; room events come as room traffic.
            ServerMsg::Welcome { .. }
            | ServerMsg::Error { .. }
            | ServerMsg::Bye { .. }
            | ServerMsg::Event(_)
            | ServerMsg::Ack { .. }
            | ServerMsg::Rooms { .. }
            | ServerMsg::Ping { .. }
            | ServerMsg::Pong { .. }
            | ServerMsg::ReadUpTo { .. }
            | ServerMsg::PasswordChanged => {}
            // Only a `MODE #channel` asking for them gets the modes: a change is its MODE line.
            ServerMsg::Policy { .. } if !self.running.as_ref().is_some_and(|r| r.modes_asked) => {}
            ServerMsg::Policy {
                room,
                modes,
                founder,
                ..
            } => {
                // `n` is always on: natter rooms take no messages from outside; `r`: registered
                // (it has a founder), as the `MODE +r` line said when it was.
                let registered = if founder.is_some() { "r" } else { "" };
                let letters = format!("+n{}{registered}", &modes.letters()[1..]);
                let mut params = vec![room.as_str(), letters.as_str()];
                let limit = modes.limit.map(|n| n.to_string());
                if let Some(k) = &modes.key {
                    params.push(k.as_str());
                }
                if let Some(n) = &limit {
                    params.push(n);
                }
                let tags = l.tags.clone();
                let me_s = me.to_string();
                let mut all = vec![me_s.as_str()];
                all.extend(params);
                l.from(&tags, l.server, RPL_CHANNELMODEIS, &all, false);
                // `329 <me> <channel> <when it was made>` (Unix seconds), as irssi and WeeChat
                // ask on joining and show.
                if let Some(at) = created {
                    let at = (at.0 / 1000).to_string();
                    let params = [me_s.as_str(), room.as_str(), &at];
                    l.from(&tags, l.server, RPL_CREATIONTIME, &params, false);
                }
            }
            // `MODE #channel q`: the mutes, as solanum's quiet list.
            ServerMsg::BanList { room, mutes, .. }
                if self.running.as_ref().is_some_and(|r| r.quiets_asked) =>
            {
                for m in mutes {
                    let mask = names::mask(&m.mask);
                    let at = (m.at.0 / 1000).to_string();
                    let (tags, me) = (l.tags.clone(), me.to_string());
                    let params = [me.as_str(), room.as_str(), "q", &mask, m.by.as_str(), &at];
                    l.from(&tags, l.server, RPL_QUIETLIST, &params, false);
                }
                l.num(
                    RPL_ENDOFQUIETLIST,
                    &[room.as_str(), "q"],
                    "End of Channel Quiet List",
                );
            }
            ServerMsg::BanList { room, bans, .. } => {
                for b in bans {
                    let mask = names::mask(&b.mask);
                    // `367 <me> <channel> <mask> <setter> <set at>` (Unix seconds).
                    let at = (b.at.0 / 1000).to_string();
                    let (tags, me) = (l.tags.clone(), me.to_string());
                    let params = [me.as_str(), room.as_str(), &mask, b.by.as_str(), &at];
                    l.from(&tags, l.server, RPL_BANLIST, &params, false);
                }
                l.num(
                    RPL_ENDOFBANLIST,
                    &[room.as_str()],
                    "End of channel ban list",
                );
            }
            ServerMsg::Crowd {
                room,
                joined,
                left,
                members,
            } => {
                // A big room's JOINs, PARTs and QUITs of others are not sent one by one (each
                // would go to every member): a notice sums them up, and NAMES lists who is in,
                // as many as a member list holds.
                // Only what happened, as natter's own clients say it (`render::crowd_words`).
                let text = match (joined, left) {
                    (0, 0) => size_notice(*members, true),
                    (j, 0) => format!("*** {j} joined ({members} members)"),
                    (0, l) => format!("*** {l} left ({members} members)"),
                    (j, l) => format!("*** {j} joined, {l} left ({members} members)"),
                };
                let tags = l.tags.clone();
                l.from(&tags, l.server, "NOTICE", &[room.as_str(), &text], true);
            }
            // The hub gives IRC clients the MOTD as `Info::Motd` at registration; these are
            // the same numerics for the binary message, should one come this way.
            ServerMsg::Motd { lines } => {
                l.motd(lines.iter().map(|t| t.as_ref().map_or("", |t| t.as_str())));
            }
            // The hub gives IRC clients away news as `Info` (AWAY, 301, 305, 306), and an
            // invitation's answer as a note (341), never these; who is away in a channel they
            // learn from WHO's `G` flag.
            // An action's outcome in words, which IRC says with its own replies (or not at all).
            ServerMsg::Away { .. }
            | ServerMsg::InviteSent { .. }
            | ServerMsg::AwayHere { .. }
            // IRC asks `WHOIS`, answered by its numerics (`Info::Whois`).
            | ServerMsg::Whois { .. }
            // IRC has no way to ask for remembered devices (it remembers none).
            | ServerMsg::Devices { .. }
            | ServerMsg::Done(_) => {}
            ServerMsg::Wall { from, text } => {
                let tags = l.tags.clone();
                let words = format!("[server notice from {from}] {text}");
                l.from(&tags, l.server, "NOTICE", &[me.as_str(), &words], true);
            }
            ServerMsg::ServerBans { bans } => {
                let tags = l.tags.clone();
                for b in bans {
                    let words = format!("server ban: {}", crate::render::entry_words(b));
                    l.from(&tags, l.server, "NOTICE", &[me.as_str(), &words], true);
                }
                if bans.is_empty() {
                    l.from(
                        &tags,
                        l.server,
                        "NOTICE",
                        &[me.as_str(), "no server bans"],
                        true,
                    );
                }
            }
            ServerMsg::Invited { room, by } => self.invite_line(l, me, room, by, false),
            ServerMsg::SignedIn { account, .. } => {
                // RPL_LOGGEDIN, as after SASL.
                let mask = names::source(me);
                l.num(
                    RPL_LOGGEDIN,
                    &[&mask, account.as_str()],
                    &format!("You are now logged in as {account}"),
                );
            }
            // Scrollback is natter's request; an IRC client's history is draft/chathistory
            // (`Info::History`).
            ServerMsg::Past(_) | ServerMsg::PastEnd { .. } => {}
            // natter's `SEARCH` (no IRC client has one): each hit and the count as a server
            // NOTICE, in the words nc users read.
            ServerMsg::Found(_) | ServerMsg::FoundEnd { .. } => {
                let tags = l.tags.clone();
                for words in crate::render::reply_lines(msg, Some(me), None) {
                    let words = words.strip_prefix("-- ").unwrap_or(&words);
                    l.from(&tags, l.server, "NOTICE", &[me.as_str(), words], true);
                }
            }
        }
    }

    /// `353` lines (as many as the names take) and `366`.
    fn names(&self, l: &mut Lines<'_>, room: &RoomName, members: &[Nick], marks: &[&str]) {
        let room_s = room.as_str();
        if !members.is_empty() {
            let multi = self.caps.has(Cap::MultiPrefix);
            let userhost = self.caps.has(Cap::UserhostInNames);
            let named: Vec<String> = members
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let mark = shown_prefix(marks.get(i).copied().unwrap_or(""), multi);
                    if userhost {
                        format!("{mark}{}", names::source(n))
                    } else {
                        format!("{mark}{n}")
                    }
                })
                .collect();
            l.num_list(
                RPL_NAMREPLY,
                &["=", room_s],
                named.iter().map(String::as_str),
            );
        }
        // A member list stops at MAX_MEMBERS_LISTED: a full one may not be everyone.
        let end = if members.len() >= MAX_MEMBERS_LISTED {
            format!("End of /NAMES list (at most {MAX_MEMBERS_LISTED} names are listed)")
        } else {
            "End of /NAMES list".into()
        };
        l.num(RPL_ENDOFNAMES, &[room_s], &end);
    }

    /// `by`'s invitation of `me` to `room`, with `by`'s account for a client with account-tag
    /// when `by` is signed in (its nick is its account's name).
    fn invite_line(
        &self,
        l: &mut Lines<'_>,
        me: &Nick,
        room: &RoomName,
        by: &Nick,
        signed_in: bool,
    ) {
        let mut tags = l.tags.clone();
        if signed_in && self.caps.has(Cap::AccountTag) {
            tags = tags.with("account", by.as_str());
        }
        let params = [me.as_str(), room.as_str()];
        l.from(&tags, &names::source(by), "INVITE", &params, false);
    }

    /// A direct message or notice, with the sender's client-only tags for a client with
    /// message-tags, and its account for one with account-tag.
    fn direct(&self, l: &mut Lines<'_>, dm: &DirectMsg, me: &Nick, how: How, from: Sender<'_>) {
        let client_tags = from.client_tags;
        let own = dm.from.folded() == me.folded();
        let to_self = own && dm.to.folded() == me.folded();
        let echo = self.caps.has(Cap::EchoMessage);
        // One's own message comes back only with echo-message (a message to oneself always
        // arrives).
        if own && !to_self && !echo {
            return;
        }
        let with_tags = |base: Tags| {
            let mut tags = base;
            if let Some(t) = client_tags.filter(|_| self.caps.has(Cap::MessageTags)) {
                tags = tags.with_raw(t);
            }
            let mut tags = self.said_tags(dm.at, tags);
            // A signed-in user's nick is its account's name.
            if from.signed_in && self.caps.has(Cap::AccountTag) {
                tags = tags.with("account", dm.from.as_str());
            }
            tags
        };
        let msgid = self.caps.has(Cap::MessageTags).then(|| dm_msgid(dm));
        let source = names::source(&dm.from);
        // To oneself with echo-message, on the connection that sent it: the echo (with the
        // line's label) and the message as it arrives (without), as IRCv3 echo-message has
        // it; elsewhere the message once.
        let sent_here = self
            .running
            .as_ref()
            .is_some_and(|r| r.verb == "PRIVMSG" || r.verb == "NOTICE");
        let mut bases = vec![l.tags.clone()];
        if to_self && echo && sent_here {
            let labeled = matches!(
                self.running.as_ref().map(|r| &r.label),
                Some(super::Label::Single(_))
            );
            bases.push(if labeled {
                Tags::none()
            } else {
                l.tags.clone()
            });
        }
        // A direct action (`* nick action`, see `DirectMsg::action`) goes as IRC's; one that
        // came in a NOTICE too, as a channel's `NOTICE #a :\x01ACTION ...` is an action (until
        // the thirty-first session it reached IRC as the words `* nick action`).
        let (text, how) = match (how, dm.action()) {
            (How::Say | How::Notice, Some(act)) => (act, How::Act),
            _ => (dm.text.as_str(), how),
        };
        for base in bases {
            let tags = with_tags(base);
            l.text(&tags, msgid.as_deref(), &source, dm.to.as_str(), text, how);
        }
    }

    /// A refusal as its numeric, worded by what the running line asked.
    fn error(&self, l: &mut Lines<'_>, kind: ErrorKind, re: &Re, detail: &str) {
        // A message refused after its line ended names the command that sent it.
        let verb = match (&self.running, re) {
            (Some(r), _) => r.verb.as_str(),
            (None, Re::Msg(id)) => {
                // A store's refusal is the answer to a labeled line whose echo it replaces
                // (see `Sent::label`).
                let label = (kind == ErrorKind::NotStored)
                    .then(|| self.recent.iter().rev().find(|s| s.id == *id))
                    .flatten()
                    .and_then(|s| s.label.as_deref());
                if let Some(label) = label {
                    l.tags = Tags::none().with("label", label);
                }
                self.sent_late(*id).map_or("*", |(_, v)| v)
            }
            (None, _) => "*",
        };
        if verb == "NOTICE" {
            // No error reply to a notice (RFC 2812, 3.3.2), whatever refused it.
            return;
        }
        match (kind, re) {
            // The operator removed the account: logged out (IRCv3 SASL's `901`).
            (ErrorKind::NotSignedIn, Re::Conn) if detail == ACCOUNT_REMOVED => {
                let mask = format!("{0}!{0}@{1}", l.me, names::HOST);
                l.num(RPL_LOGGEDOUT, &[&mask], "You are now logged out");
            }
            (ErrorKind::SignInFailed | ErrorKind::Throttled | ErrorKind::Unavailable, _)
                if !self.registered() =>
            {
                l.num(
                    ERR_SASLFAIL,
                    &[],
                    &format!("SASL authentication failed: {detail}"),
                );
            }
            (ErrorKind::NickTaken, Re::Nick(n)) => {
                let why = if detail.contains(REGISTERED) {
                    "Nickname is registered to an account: sign in to it with SASL"
                } else if n.is_service() {
                    "Nickname is reserved: natter runs no services"
                } else if detail.contains(" is banned from ") {
                    detail
                } else {
                    "Nickname is already in use"
                };
                if !self.registered() {
                    // The nick given is refused: the client has none (as IRC servers say it).
                    "*".clone_into(&mut l.me);
                }
                l.num(ERR_NICKNAMEINUSE, &[n.as_str()], why);
            }
            (ErrorKind::NotInRoom, Re::Room(r)) if verb == "NAMES" => {
                l.num(RPL_ENDOFNAMES, &[r.as_str()], "End of /NAMES list");
            }
            // KICK, or MODE +o/+v, of someone who is not in the channel (the sender is).
            (ErrorKind::NotInRoom, Re::Room(r))
                if matches!(verb, "KICK" | "MODE")
                    && !detail.starts_with("you are not")
                    && !detail.starts_with(NO_ROOM) =>
            {
                // The hub's words name the nick (`kim is not in #r`): a KICK of several
                // refuses each by its own.
                let suffix = format!(" is not in {r}");
                let nick = detail
                    .strip_suffix(suffix.as_str())
                    .filter(|n| Nick::new(n).is_ok())
                    .or_else(|| self.running.as_ref().map(|r| r.target.as_str()))
                    .unwrap_or("*");
                l.num(
                    ERR_USERNOTINCHANNEL,
                    &[nick, r.as_str()],
                    "They aren't on that channel",
                );
            }
            // INVITE of someone in the channel already.
            (ErrorKind::Invalid, Re::Room(r))
                if verb == "INVITE" && detail.ends_with(&format!("{ALREADY_IN}{r}")) =>
            {
                let nick = detail.split(' ').next().unwrap_or("*");
                l.num(
                    ERR_USERONCHANNEL,
                    &[nick, r.as_str()],
                    "is already on channel",
                );
            }
            // `-b`/`-q` of a mask the list does not hold: `698 ERR_LISTMODENOTSET <channel>
            // <mask> <mode char>`, as InspIRCd and ergo answer, the mask as IRC shows it.
            (ErrorKind::Invalid, Re::Room(r)) if verb == "MODE" && not_listed(detail).is_some() => {
                let (letter, mask) = not_listed(detail).unwrap_or_default();
                let words = format!("Channel {r} list does not contain {mask}");
                l.num(ERR_LISTMODENOTSET, &[r.as_str(), &mask, letter], &words);
            }
            // `+o` of a guest: a mode parameter the server will not take, `696 <channel> o
            // <nick>`, as for any mode's bad parameter.
            (ErrorKind::Invalid, Re::Room(r))
                if verb == "MODE" && detail.ends_with(NOT_AN_ACCOUNT) =>
            {
                let nick = detail
                    .strip_suffix(NOT_AN_ACCOUNT)
                    .filter(|n| Nick::new(n).is_ok())
                    .unwrap_or("*");
                let words = format!(
                    "{nick} is not signed in to an account: only accounts can be operators (+v \
                     voices a guest)"
                );
                l.num(ERR_INVALIDMODEPARAM, &[r.as_str(), "o", nick], &words);
            }
            (ErrorKind::NotInRoom, Re::Room(r)) if detail.starts_with(NO_ROOM) => {
                l.num(ERR_NOSUCHCHANNEL, &[r.as_str()], "No such channel");
            }
            // A TAGMSG to a channel one is not in: refused as a message is.
            (ErrorKind::NotInRoom, Re::Room(r)) if verb == "TAGMSG" => {
                l.num(
                    ERR_CANNOTSENDTOCHAN,
                    &[r.as_str()],
                    "Cannot send to channel (you are not in it: JOIN first)",
                );
            }
            (ErrorKind::NotInRoom, Re::Room(r)) => {
                l.num(
                    ERR_NOTONCHANNEL,
                    &[r.as_str()],
                    "You're not on that channel",
                );
            }
            // A message to a channel that does not exist: `403`, as ergo answers (and natter
            // does for every other command); `404` is for a channel that exists without you.
            (ErrorKind::NotInRoom, Re::Msg(id)) if detail.starts_with(NO_ROOM) => {
                let target = self.target_of(*id);
                l.num(ERR_NOSUCHCHANNEL, &[&target], "No such channel");
            }
            (ErrorKind::NotInRoom, Re::Msg(id)) => {
                let target = self.target_of(*id);
                l.num(
                    ERR_CANNOTSENDTOCHAN,
                    &[&target],
                    "Cannot send to channel (you are not in it: JOIN first)",
                );
            }
            (ErrorKind::NoSuchNick, Re::Msg(id)) => {
                let target = self.target_of(*id);
                l.num(
                    ERR_NOSUCHNICK,
                    &[&target],
                    &format!("No such nick/channel: {detail}"),
                );
            }
            (ErrorKind::TooManyRooms, Re::Room(r)) => {
                l.num(ERR_TOOMANYCHANNELS, &[r.as_str()], detail);
            }
            (ErrorKind::RoomFull, Re::Room(r)) => {
                l.num(ERR_CHANNELISFULL, &[r.as_str()], "Cannot join channel (+l)");
            }
            (ErrorKind::NotOperator, Re::Room(r)) => {
                l.num(ERR_CHANOPRIVSNEEDED, &[r.as_str()], detail);
            }
            // A server ban: the connection closes after it.
            (ErrorKind::Banned, Re::Conn) => l.num(ERR_YOUREBANNEDCREEP, &[], detail),
            (ErrorKind::Banned, Re::Room(r)) => {
                l.num(
                    ERR_BANNEDFROMCHAN,
                    &[r.as_str()],
                    &format!("Cannot join channel (+b): {detail}"),
                );
            }
            (ErrorKind::InviteOnly, Re::Room(r)) => {
                l.num(
                    ERR_INVITEONLYCHAN,
                    &[r.as_str()],
                    "Cannot join channel (+i)",
                );
            }
            (ErrorKind::BadKey, Re::Room(r)) => {
                l.num(ERR_BADCHANNELKEY, &[r.as_str()], "Cannot join channel (+k)");
            }
            (ErrorKind::Muted, Re::Msg(id)) => {
                let target = self.target_of(*id);
                l.num(
                    ERR_CANNOTSENDTOCHAN,
                    &[&target],
                    &format!("Cannot send to channel ({detail})"),
                );
            }
            // An admin's action (KILL, WALLOPS) asked by someone who is not one.
            (ErrorKind::NotOperator, Re::Conn) => {
                l.num(
                    ERR_NOPRIVILEGES,
                    &[],
                    &format!("Permission Denied ({detail})"),
                );
            }
            (ErrorKind::NoSuchNick, Re::Room(_) | Re::Conn) => {
                // The hub's words name the nick (`nobody is called kim`): a KICK or MODE naming
                // several refuses each by its own; else the one the line named first.
                let named = detail
                    .strip_prefix("nobody is called ")
                    .filter(|n| Nick::new(n).is_ok())
                    .or_else(|| self.running.as_ref().map(|r| r.target.as_str()))
                    .filter(|t| !t.is_empty() && !t.contains(' '))
                    .unwrap_or("*");
                l.num(ERR_NOSUCHNICK, &[named], detail);
            }
            (ErrorKind::Flood, Re::Nick(n)) if detail.starts_with(NICK_TOO_FAST) => {
                let secs = detail[NICK_TOO_FAST.len()..]
                    .split(' ')
                    .next()
                    .unwrap_or("10");
                let words = format!("Nick change too fast. Please wait {secs} seconds.");
                l.num(ERR_NICKTOOFAST, &[n.as_str()], &words);
            }
            (ErrorKind::Flood, _) => l.num(RPL_TRYAGAIN, &[verb], detail),
            (ErrorKind::LineTooLong, _) => l.num(ERR_INPUTTOOLONG, &[], "Input line was too long"),
            _ => l.num("400", &[verb], detail),
        }
    }

    fn note(&self, l: &mut Lines<'_>, note: &Note, me: Option<&Nick>) {
        if let Note::Detailed {
            msg,
            marks,
            topic_set,
            created,
            at,
        } = note
        {
            return self.msg_marked(l, msg, me, marks, topic_set.as_ref(), *created, *at);
        }
        if let Note::KeySet { room, by, key } = note {
            let tags = l.tags.clone();
            let src = by.as_ref().map_or(l.server.to_owned(), names::source);
            let params = [room.as_str(), "+k", key.as_str()];
            return l.from(&tags, &src, "MODE", &params, false);
        }
        if let Note::Tagged {
            no,
            from,
            account,
            to,
            tags,
            at,
        } = note
        {
            // IRCv3 message-tags: a client without it gets no TAGMSG at all.
            if !self.caps.has(Cap::MessageTags) {
                return;
            }
            let tagged = |base: Tags| {
                let mut t = self.said_tags(*at, base).with_raw(tags);
                if let Some(a) = account.as_ref().filter(|_| self.caps.has(Cap::AccountTag)) {
                    t = t.with("account", a.as_str());
                }
                t.with("msgid", &relay_msgid(from, *at, *no))
            };
            let target = match to {
                crate::hub::relay::RelayTo::Room(room) => room.as_str(),
                crate::hub::relay::RelayTo::Nick(nick) => nick.as_str(),
            };
            let t = tagged(l.tags.clone());
            l.from(&t, &names::source(from), "TAGMSG", &[target], false);
            // To oneself with echo-message, on the connection that sent it: the echo and the
            // TAGMSG as it arrives, as for a PRIVMSG (see `direct`).
            let to_self = matches!(to, crate::hub::relay::RelayTo::Nick(n)
                if n.folded() == from.folded() && me.is_some_and(|m| m.folded() == n.folded()));
            let sent_here = self.running.as_ref().is_some_and(|r| r.verb == "TAGMSG");
            if to_self && sent_here && self.caps.has(Cap::EchoMessage) {
                let labeled = matches!(
                    self.running.as_ref().map(|r| &r.label),
                    Some(super::Label::Single(_))
                );
                let t = tagged(if labeled {
                    Tags::none()
                } else {
                    l.tags.clone()
                });
                l.from(&t, &names::source(from), "TAGMSG", &[target], false);
            }
            return;
        }
        if let Note::Oper(answer) = note {
            use crate::hub::dialect::OperAnswer;
            return match answer {
                OperAnswer::Granted => {
                    l.num(RPL_YOUREOPER, &[], "You are now an IRC operator");
                    if let Some(me) = me {
                        let tags = l.tags.clone();
                        l.from(
                            &tags,
                            &names::source(me),
                            "MODE",
                            &[me.as_str(), "+o"],
                            false,
                        );
                    }
                }
                OperAnswer::NotAnAdmin => l.num(ERR_NOOPERHOST, &[], "No O-lines for your host"),
                OperAnswer::WrongPassword => l.num(ERR_PASSWDMISMATCH, &[], "Password incorrect"),
                // No numeric says it (381 is for gaining the powers): a server `NOTICE`, then
                // the `-o` a client reads to keep its view of its user modes right.
                OperAnswer::Ended => {
                    let (tags, shown) = (l.tags.clone(), l.me.clone());
                    l.from(
                        &tags,
                        l.server,
                        "NOTICE",
                        &[
                            shown.as_str(),
                            "*** You are no longer an IRC operator: the admin account you named \
                             was removed, is no admin any more, or its password changed",
                        ],
                        true,
                    );
                    if let Some(me) = me {
                        l.from(
                            &tags,
                            &names::source(me),
                            "MODE",
                            &[me.as_str(), "-o"],
                            false,
                        );
                    }
                }
            };
        }
        if let Note::Wallops { from, text } = note {
            // To user mode `w`; the sender's own as its echo (which IRC servers may send).
            let own = me.is_some_and(|m| m.folded_key() == from.folded_key());
            if self.wallops() || own {
                let tags = l.tags.clone();
                l.from(
                    &tags,
                    &names::source(from),
                    "WALLOPS",
                    &[text.as_str()],
                    true,
                );
            }
            return;
        }
        if let Note::Monitor(m) = note {
            use crate::hub::dialect::MonitorNote;
            return match m {
                MonitorNote::Online(nicks) => {
                    let sources: Vec<String> = nicks.iter().map(names::source).collect();
                    l.num_joined(RPL_MONONLINE, &[], sources.iter().map(String::as_str), ',');
                }
                MonitorNote::Offline(nicks) => {
                    l.num_joined(RPL_MONOFFLINE, &[], nicks.iter().map(Nick::as_str), ',');
                }
                MonitorNote::List(nicks) => {
                    if !nicks.is_empty() {
                        l.num_joined(RPL_MONLIST, &[], nicks.iter().map(Nick::as_str), ',');
                    }
                    l.num(RPL_ENDOFMONLIST, &[], "End of MONITOR list");
                }
                MonitorNote::Full(nicks) => {
                    let max = IRC_MONITOR_MAX.to_string();
                    let over: Vec<&str> = nicks.iter().map(Nick::as_str).collect();
                    l.num(
                        ERR_MONLISTFULL,
                        &[&max, &over.join(",")],
                        "Monitor list is full.",
                    );
                }
            };
        }
        if let Note::Size {
            room,
            members,
            summed,
        } = note
        {
            let (tags, text) = (l.tags.clone(), size_notice(*members, *summed));
            return l.from(&tags, l.server, "NOTICE", &[room.as_str(), &text], true);
        }
        if let Note::Unreplayed {
            room,
            count,
            more,
            shown,
        } = note
        {
            // Before the replay's lines, to a client that is shown them (as `event_words`).
            if !self.caps.has(Cap::ServerTime) || self.caps.has(Cap::ChatHistory) {
                return;
            }
            let text = unreplayed_notice(*count, *more, *shown);
            let tags = l.tags.clone();
            return l.from(&tags, l.server, "NOTICE", &[room.as_str(), &text], true);
        }
        // Words that may hold a reason as long as natter's clients give one (an always-on
        // account's note of what put it out while it was away): cut to one IRC line, as the
        // `KICK` and `PART` lines cut theirs (until this review the note was one line of
        // over 2,000 bytes).
        if let Note::NickOnly(words) = note {
            let (tags, me) = (l.tags.clone(), l.me.clone());
            let room = IRC_MAX_LINE.saturating_sub(body_len(l.server, "NOTICE", &[&me], 0));
            return l.from(
                &tags,
                l.server,
                "NOTICE",
                &[me.as_str(), &fit(words, room)],
                true,
            );
        }
        // A `TAKEOVER` went through (IRC has no reply for it, and the room's event reaches
        // only its members): a server `NOTICE`; and one that changed nothing says so (natter's
        // own verb: silence would read as a lost line; a MODE that changes nothing stays silent,
        // as on IRC servers).
        let admin_unchanged = matches!(note, Note::Unchanged(_))
            && self.running.as_ref().is_some_and(|r| r.verb == "TAKEOVER");
        if (matches!(note, Note::AdminDone(_)) || admin_unchanged)
            && let Some(words) = note.done_words()
        {
            let (tags, me) = (l.tags.clone(), l.me.clone());
            return l.from(&tags, l.server, "NOTICE", &[me.as_str(), &words], true);
        }
        if let Note::Invited { nick, room } = note {
            let (tags, me) = (l.tags.clone(), l.me.clone());
            let params = [me.as_str(), nick.as_str(), room.as_str()];
            return l.from(&tags, l.server, RPL_INVITING, &params, false);
        }
        if let Note::InvitedBy {
            by,
            nick,
            room,
            signed_in,
        } = note
        {
            // The line the invited get (`invite_line`), as invite-notify has it.
            if self.caps.has(Cap::InviteNotify) {
                self.invite_line(l, nick, room, by, *signed_in);
            }
            return;
        }
        let Some(r) = self.replaying() else {
            return;
        };
        let tags = l.tags.clone();
        match note {
            Note::MissedStart(_) | Note::MissedEnd if self.missed_waits => {}
            Note::RecentStart(room) | Note::MissedStart(room) => l.from(
                &tags,
                l.server,
                "BATCH",
                &[&format!("+h{}", r.number), "chathistory", room.as_str()],
                false,
            ),
            Note::RecentEnd | Note::MissedEnd => l.from(
                &tags,
                l.server,
                "BATCH",
                &[&format!("-h{}", r.number)],
                false,
            ),
            Note::Help(_)
            | Note::SameNick(_)
            | Note::PastGone(_)
            | Note::NowTalkingIn(_)
            | Note::Size { .. }
            | Note::Invited { .. }
            | Note::InvitedBy { .. }
            | Note::ServerBan { .. }
            | Note::AdminDone(_)
            | Note::Unchanged(_)
            | Note::NickOnly(_)
            | Note::DoneOutside(_)
            | Note::Voiceless { .. }
            | Note::Detailed { .. }
            | Note::KeySet { .. }
            | Note::Tagged { .. }
            | Note::Oper(_)
            | Note::Monitor(_)
            | Note::Wallops { .. }
            | Note::Unreplayed { .. }
            | Note::Motd(_) => {}
        }
    }

    /// The running JOIN, or the line that completed registration (the welcome brings an
    /// account's rooms with what it missed there), when its history replay is wrapped in a
    /// `chathistory` batch (a client with draft/chathistory gets none: it asks for what it
    /// wants).
    fn replaying(&self) -> Option<&Running> {
        self.running
            .as_ref()
            .filter(|r| r.verb == "JOIN" || !self.registered())
            .filter(|_| self.replays_in_batch())
    }

    fn info(&self, l: &mut Lines<'_>, info: &Info, me: Option<&Nick>) {
        let verb = self.running.as_ref().map_or("", |r| r.verb.as_str());
        let whox = self.running.as_ref().and_then(|r| r.whox.as_ref());
        let target = self
            .running
            .as_ref()
            .map_or("*", |r| r.target.as_str())
            .to_owned();
        match info {
            Info::Whois { nick, user: None } => {
                l.num(ERR_NOSUCHNICK, &[nick.as_str()], "No such nick/channel");
                l.num(RPL_ENDOFWHOIS, &[nick.as_str()], "End of /WHOIS list");
            }
            Info::Whois { user: Some(w), .. } => {
                let n = w.user.nick.as_str();
                let ident = &w.user.ident;
                l.num(
                    RPL_WHOISUSER,
                    &[n, &ident.user, names::HOST, "*"],
                    &ident.realname,
                );
                if !w.rooms.is_empty() {
                    // `@#room`, `+#room` as NAMES marks the nick there (the highest only
                    // without multi-prefix).
                    let multi = self.caps.has(Cap::MultiPrefix);
                    let marked: Vec<String> = w
                        .rooms
                        .iter()
                        .map(|(room, mark)| format!("{}{room}", shown_prefix(mark, multi)))
                        .collect();
                    l.num_list(RPL_WHOISCHANNELS, &[n], marked.iter().map(String::as_str));
                }
                l.num(RPL_WHOISSERVER, &[n, l.server], "natter");
                if w.user.oper {
                    l.num(RPL_WHOISOPERATOR, &[n], "is an IRC operator");
                }
                if w.secure {
                    l.num(RPL_WHOISSECURE, &[n], "is using a secure connection");
                }
                if let Some(account) = &w.user.account {
                    l.num(RPL_WHOISACCOUNT, &[n, account.as_str()], "is logged in as");
                }
                if let Some(away) = &w.user.away {
                    l.num(RPL_AWAY, &[n], away.as_str());
                }
                if w.kind.is_none() && !w.elsewhere {
                    let why = if w.user.account.is_some() {
                        "is signed in nowhere now; an account stays in its rooms"
                    } else {
                        "is between connections and may resume"
                    };
                    l.num(RPL_WHOISSPECIAL, &[n], why);
                }
                if let Some((idle, signon)) = w.idle {
                    let (idle, signon) = (idle.to_string(), signon.to_string());
                    l.num(
                        RPL_WHOISIDLE,
                        &[n, &idle, &signon],
                        "seconds idle, signon time",
                    );
                }
                l.num(RPL_ENDOFWHOIS, &[n], "End of /WHOIS list");
            }
            Info::Users(users) => match verb {
                "ISON" => l.num_list(RPL_ISON, &[], users.iter().map(|p| p.nick.as_str())),
                // `MODE othernick`: someone else's modes, or nobody's (modern IRC's order).
                "MODE" if users.is_empty() => {
                    l.num(ERR_NOSUCHNICK, &[&target], "No such nick/channel");
                }
                "MODE" => l.num(ERR_USERSDONTMATCH, &[], "Can't change mode for other users"),
                "USERHOST" => {
                    let replies: Vec<String> = users
                        .iter()
                        .map(|p| {
                            let state = if p.away.is_some() { '-' } else { '+' };
                            let oper = if p.oper { "*" } else { "" };
                            format!("{0}{oper}={state}{0}@{1}", p.nick, names::HOST)
                        })
                        .collect();
                    l.num(RPL_USERHOST, &[], &replies.join(" "));
                }
                _ => {
                    for p in users {
                        who_line(l, "*", p, self.caps.has(Cap::MultiPrefix), whox);
                    }
                    l.num(RPL_ENDOFWHO, &[&target], "End of WHO list");
                }
            },
            Info::WhoMask {
                mask,
                matched,
                more,
                channel,
            } => {
                let channel = channel.as_ref().map_or("*", RoomName::as_str);
                for p in matched {
                    who_line(l, channel, p, self.caps.has(Cap::MultiPrefix), whox);
                }
                let end = if *more {
                    format!("End of WHO list (at most {IRC_MAX_WHO_MATCHES} users are listed)")
                } else {
                    "End of WHO list".into()
                };
                l.num(RPL_ENDOFWHO, &[mask], &end);
            }
            Info::Whowas { nick, was } => {
                if was.is_empty() {
                    l.num(
                        ERR_WASNOSUCHNICK,
                        &[nick.as_str()],
                        "There was no such nickname",
                    );
                }
                for w in was {
                    let n = w.nick.as_str();
                    l.num(
                        RPL_WHOWASUSER,
                        &[n, &w.ident.user, names::HOST, "*"],
                        &w.ident.realname,
                    );
                    if w.signed_in {
                        l.num(RPL_WHOISACCOUNT, &[n, n], "was logged in as");
                    }
                    let server = l.server;
                    l.num(RPL_WHOISSERVER, &[n, server], &time::human(w.at));
                }
                l.num(RPL_ENDOFWHOWAS, &[nick.as_str()], "End of WHOWAS");
            }
            Info::Who { room, members } => {
                for p in members {
                    who_line(l, room.as_str(), p, self.caps.has(Cap::MultiPrefix), whox);
                }
                let end = if members.len() >= MAX_MEMBERS_LISTED {
                    format!("End of WHO list (at most {MAX_MEMBERS_LISTED} members are listed)")
                } else {
                    "End of WHO list".into()
                };
                l.num(RPL_ENDOFWHO, &[room.as_str()], &end);
            }
            Info::List { rooms, total } => {
                l.num(RPL_LISTSTART, &["Channel"], "Users  Name");
                for r in rooms {
                    let topic = r.topic.as_ref().map_or("", Text::as_str);
                    l.num(RPL_LIST, &[r.room.as_str(), &r.members.to_string()], topic);
                }
                let end = if *total > rooms.len() {
                    format!(
                        "End of /LIST (the first {} of {total} channels)",
                        rooms.len()
                    )
                } else {
                    "End of /LIST".into()
                };
                l.num(RPL_LISTEND, &[], &end);
            }
            Info::Counts {
                users,
                peak,
                local,
                local_peak,
                rooms,
                unknown,
                invisible,
                operators,
                servers,
            } => {
                // As IRC servers count them: the visible users, then the invisible.
                let visible = users.saturating_sub(*invisible);
                l.num(
                    RPL_LUSERCLIENT,
                    &[],
                    &format!(
                        "There are {visible} users and {invisible} invisible on {servers} servers"
                    ),
                );
                l.num(RPL_LUSEROP, &[&operators.to_string()], "operator(s) online");
                if *unknown > 0 {
                    l.num(
                        RPL_LUSERUNKNOWN,
                        &[&unknown.to_string()],
                        "unknown connection(s)",
                    );
                }
                l.num(RPL_LUSERCHANNELS, &[&rooms.to_string()], "channels formed");
                l.num(
                    RPL_LUSERME,
                    &[],
                    // Clients are users (as ergo counts them): one on several connections, or
                    // on several devices of its account, is one.
                    &format!(
                        "I have {local} clients and {} servers",
                        servers.saturating_sub(1)
                    ),
                );
                l.num(
                    RPL_LOCALUSERS,
                    &[&local.to_string(), &local_peak.to_string()],
                    &format!("Current local users {local}, max {local_peak}"),
                );
                l.num(
                    RPL_GLOBALUSERS,
                    &[&users.to_string(), &peak.to_string()],
                    &format!("Current global users {users}, max {peak}"),
                );
            }
            Info::Time(now) => l.num(RPL_TIME, &[l.server], &time::human(*now)),
            // `INVITE` alone (modern.ircdocs.horse): one 336 a channel, then 337.
            Info::Invites(rooms) => {
                for r in rooms {
                    l.num(RPL_INVITELIST, &[], r.as_str());
                }
                l.num(RPL_ENDOFINVITELIST, &[], "End of /INVITE list");
            }
            Info::Motd(Some(m)) => l.motd(m.lines()),
            Info::Motd(None) => l.motd(MOTD.iter().copied()),
            Info::AwayNow(Some(_)) => {
                l.num(RPL_NOWAWAY, &[], "You have been marked as being away");
            }
            Info::AwayNow(None) | Info::NotAway => {
                l.num(RPL_UNAWAY, &[], "You are no longer marked as being away");
            }
            Info::Away { nick, away } => {
                let about_me = me.is_some_and(|m| m.folded() == nick.folded());
                if self.caps.has(Cap::AwayNotify) && !about_me {
                    let src = names::source(nick);
                    match away {
                        Some(a) => l.from(&Tags::none(), &src, "AWAY", &[a.as_str()], true),
                        None => l.from(&Tags::none(), &src, "AWAY", &[], false),
                    }
                }
            }
            Info::IsAway(p) => {
                if let Some(away) = &p.away {
                    l.num(RPL_AWAY, &[p.nick.as_str()], away.as_str());
                }
            }
            Info::History {
                room,
                window,
                lines,
            } => self.history(l, room, *window, lines),
            Info::Targets(rooms) => {
                let batch = self.caps.has(Cap::Batch);
                let id = format!("ct{}", self.lines);
                let open = l.tags.clone();
                if batch {
                    let start = format!("+{id}");
                    l.from(
                        &open,
                        l.server,
                        "BATCH",
                        &[&start, "draft/chathistory-targets"],
                        false,
                    );
                }
                let tags = if batch {
                    Tags::none().with("batch", &id)
                } else {
                    open.clone()
                };
                for (room, at) in rooms {
                    let at = time::iso(*at);
                    l.from(
                        &tags,
                        l.server,
                        "CHATHISTORY",
                        &["TARGETS", room.as_str(), &at],
                        false,
                    );
                }
                if batch {
                    l.from(&open, l.server, "BATCH", &[&format!("-{id}")], false);
                }
            }
            Info::SetName { nick, realname } => {
                if self.caps.has(Cap::SetName) {
                    let src = names::source(nick);
                    l.from(&Tags::none(), &src, "SETNAME", &[realname], true);
                }
            }
            Info::Monitored(news) => {
                if self.caps.has(Cap::ExtendedMonitor) {
                    self.info(l, news, me);
                }
            }
            Info::Account { nick, account } => {
                if self.caps.has(Cap::AccountNotify) {
                    let account = account.as_ref().map_or("*", Nick::as_str);
                    l.from(
                        &Tags::none(),
                        &names::source(nick),
                        "ACCOUNT",
                        &[account],
                        false,
                    );
                }
            }
        }
    }

    /// CHATHISTORY's answer: the lines in a `chathistory` batch (with `batch`), each with
    /// `time` and `msgid` as the capabilities ask; or `FAIL` with the reason.
    fn history(
        &self,
        l: &mut Lines<'_>,
        room: &RoomName,
        window: Window,
        lines: &Result<Vec<RoomEvent>, HistoryFail>,
    ) {
        let sub = match window {
            Window::Latest(_) => "LATEST",
            Window::Before(_) => "BEFORE",
            Window::After(_) => "AFTER",
            Window::Around(_) => "AROUND",
            Window::Between(..) => "BETWEEN",
        };
        let open = l.tags.clone();
        let events = match lines {
            Ok(events) => events,
            Err(fail) => {
                let (code, why) = match fail {
                    HistoryFail::NotInRoom => (
                        "INVALID_TARGET",
                        "You are not in that channel (JOIN it first)".to_owned(),
                    ),
                    HistoryFail::Unavailable(why) => (
                        "MESSAGE_ERROR",
                        format!("Messages could not be retrieved: {why}"),
                    ),
                };
                let params = ["CHATHISTORY", code, sub, room.as_str(), &fit(&why, 300)];
                return l.from(&open, l.server, "FAIL", &params, true);
            }
        };
        let batch = self.caps.has(Cap::Batch);
        let id = format!("ch{}", self.lines);
        if batch {
            let start = format!("+{id}");
            l.from(
                &open,
                l.server,
                "BATCH",
                &[&start, "chathistory", room.as_str()],
                false,
            );
        }
        let base = if batch {
            Tags::none().with("batch", &id)
        } else {
            open.clone()
        };
        for ev in events {
            let (text, how) = match &ev.kind {
                EventKind::Say { text, .. } => (text, How::Say),
                EventKind::Act { text, .. } => (text, How::Act),
                EventKind::Notice { text, .. } => (text, How::Notice),
                _ => continue,
            };
            let tags = self.said_tags(ev.at, base.clone());
            let msgid = self
                .caps
                .has(Cap::MessageTags)
                .then(|| event_msgid(&ev.room, ev.seq));
            let src = names::source(&ev.from);
            l.text(
                &tags,
                msgid.as_deref(),
                &src,
                room.as_str(),
                text.as_str(),
                how,
            );
        }
        if batch {
            l.from(&open, l.server, "BATCH", &[&format!("-{id}")], false);
        }
    }

    /// A room event in IRC's words, in `form` (see the form bits in the module); `signed_in`:
    /// its sender is signed in to the account of its nick; `client_tags`: a live say's
    /// client-only tags, for a form with message-tags; `joiner`: a live join's joiner as it is
    /// now.
    pub(super) fn event_words(
        &self,
        ev: &RoomEvent,
        form: Form,
        signed_in: bool,
        client_tags: Option<&str>,
        joiner: &Joiner,
    ) -> Option<Bytes> {
        if ev.kind == EventKind::Moved {
            // A member's session moved to another server of the cluster: nothing to say.
            return None;
        }
        let state = form.0 & STATE;
        let mut tags = match state {
            S_LABEL => self.reply_tags(),
            S_BATCH => self.reply_tags(),
            S_REPLAY => {
                // History only for clients that can tell it is history; only what was said
                // (old joins and parts would change their member lists).
                if form.0 & F_TIME == 0
                    || self.caps.has(Cap::ChatHistory)
                    || !matches!(
                        ev.kind,
                        EventKind::Say { .. } | EventKind::Act { .. } | EventKind::Notice { .. }
                    )
                {
                    return None;
                }
                match (self.store_batch(&ev.room), self.replaying()) {
                    (Some(n), _) => Tags::none().with("batch", &format!("s{n}")),
                    (None, Some(r)) => Tags::none().with("batch", &format!("h{}", r.number)),
                    (None, None) => self.reply_tags(),
                }
            }
            _ => Tags::none(),
        };
        // IRCv3 message-tags: client-only tags for those that have it, in front as a TAGMSG's.
        if let Some(t) = client_tags.filter(|_| form.0 & F_TAGS != 0) {
            tags = tags.with_raw(t);
        }
        if form.0 & F_TIME != 0 {
            tags = tags.with("time", &time::iso(ev.at));
        }
        if form.0 & F_ACCOUNT != 0 && signed_in {
            tags = tags.with("account", ev.from.as_str());
        }
        let msgid = (form.0 & F_TAGS != 0).then(|| event_msgid(&ev.room, ev.seq));
        let mut l = Lines {
            server: self.server.as_str(),
            me: String::new(),
            tags: Tags::none(),
            // One line in most cases: room for a tagged PRIVMSG of a short text.
            out: String::with_capacity(256),
        };
        let src = names::source(&ev.from);
        let room = ev.room.as_str();
        // Lines the server adds after the event's own carry no msgid: it names that one.
        let added = tags.clone();
        let tags = match &msgid {
            Some(id)
                if !matches!(
                    ev.kind,
                    EventKind::Say { .. } | EventKind::Act { .. } | EventKind::Notice { .. }
                ) =>
            {
                tags.with("msgid", id)
            }
            _ => tags,
        };
        match &ev.kind {
            EventKind::Say { text, .. } => {
                l.text(&tags, msgid.as_deref(), &src, room, text.as_str(), How::Say);
            }
            EventKind::Act { text, .. } => {
                l.text(&tags, msgid.as_deref(), &src, room, text.as_str(), How::Act);
            }
            EventKind::Notice { text, .. } => {
                l.text(
                    &tags,
                    msgid.as_deref(),
                    &src,
                    room,
                    text.as_str(),
                    How::Notice,
                );
            }
            EventKind::Join => {
                if form.0 & F_EXTJOIN != 0 {
                    let account = if signed_in { ev.from.as_str() } else { "*" };
                    // The joiner's real name when the hub knew it (a live join), else its nick.
                    let real = joiner.realname.as_deref().unwrap_or(ev.from.as_str());
                    let params = [room, account, real];
                    l.from(&tags, &src, "JOIN", &params, true);
                } else {
                    l.from(&tags, &src, "JOIN", &[room], false);
                }
                // An operator or voiced member joining: nick lists learn its standing as from
                // a services bot's auto-op, the server's MODE after the JOIN.
                let nick = ev.from.as_str();
                match joiner.standing {
                    "@+" => l.from(&added, l.server, "MODE", &[room, "+ov", nick, nick], false),
                    "@" => l.from(&added, l.server, "MODE", &[room, "+o", nick], false),
                    "+" => l.from(&added, l.server, "MODE", &[room, "+v", nick], false),
                    _ => {}
                }
                // IRCv3 away-notify: an AWAY after the JOIN of someone away.
                if let Some(away) = joiner.away.as_ref().filter(|_| form.0 & F_AWAY != 0) {
                    l.from(&added, &src, "AWAY", &[away.as_str()], true);
                }
            }
            EventKind::Part { reason } => match reason {
                Some(r) => l.from(&tags, &src, "PART", &[room, &fit(r.as_str(), 300)], true),
                None => l.from(&tags, &src, "PART", &[room], false),
            },
            EventKind::Quit { reason } => {
                let reason = reason
                    .as_ref()
                    .map_or("Quit".into(), |r| super::super::irc_quit_reason(r.as_str()));
                l.from(&tags, &src, "QUIT", &[&fit(&reason, 300)], true);
            }
            EventKind::Nick { new } => {
                l.from(&tags, &src, "NICK", &[new.as_str()], true);
                // The user name is the nick: it changed too (chghost).
                if form.0 & F_CHGHOST != 0 {
                    let now = format!("{new}!{}@{}", ev.from, names::HOST);
                    l.from(&added, &now, "CHGHOST", &[new.as_str(), names::HOST], false);
                }
            }
            EventKind::Topic { topic } => {
                let budget = IRC_MAX_LINE.saturating_sub(body_len(&src, "TOPIC", &[room], 0));
                let topic = topic
                    .as_ref()
                    .map_or(String::new(), |t| fit(t.as_str(), budget));
                l.from(&tags, &src, "TOPIC", &[room, &topic], true);
            }
            EventKind::Kick { target, reason } => {
                let reason = reason.as_ref().map_or(ev.from.as_str(), Text::as_str);
                l.from(
                    &tags,
                    &src,
                    "KICK",
                    &[room, target.as_str(), &fit(reason, 300)],
                    true,
                );
            }
            // The operator removed the event's account: its rights in the room are lifted, in
            // words from the server, and nick lists lose its `@` and `+` (a member still under
            // the nick is a guest now).
            EventKind::Mode { change }
                if crate::render::account_removed_words(change.as_str(), &ev.from, &ev.room)
                    .is_some() =>
            {
                let words =
                    crate::render::account_removed_words(change.as_str(), &ev.from, &ev.room)
                        .unwrap_or_default();
                let words = format!("*** {words}");
                let budget = IRC_MAX_LINE.saturating_sub(body_len(l.server, "NOTICE", &[room], 0));
                l.from(
                    &tags,
                    l.server,
                    "NOTICE",
                    &[room, &fit(&words, budget)],
                    true,
                );
                // `-r` too when it was the founder: the channel is registered no longer (as
                // `MODE #channel` says now).
                let nick = ev.from.as_str();
                let letters = if change.as_str() == crate::moderation::ACCOUNT_REMOVED_FOUNDER {
                    "-rov"
                } else {
                    "-ov"
                };
                l.from(
                    &added,
                    l.server,
                    "MODE",
                    &[room, letters, nick, nick],
                    false,
                );
            }
            // A change IRC has no mode for (an admin's take-over, `founder NAME`, or close,
            // `close: reason`) is told in words: as a MODE line its words would read as letters.
            EventKind::Mode { change } if !change.as_str().starts_with(['+', '-']) => {
                let words = format!("*** {} set {room} {}", ev.from, change.as_str());
                let budget = IRC_MAX_LINE.saturating_sub(body_len(l.server, "NOTICE", &[room], 0));
                l.from(
                    &tags,
                    l.server,
                    "NOTICE",
                    &[room, &fit(&words, budget)],
                    true,
                );
                // A new founder is an operator: nick lists learn it from a `+o`, when it is in
                // the channel (`joiner`: the hub looked); else it is opped when it joins. Until
                // the forty-first session the `+o` named a founder not there too.
                if let Some(founder) = change.as_str().strip_prefix("founder ")
                    && joiner.standing == "@"
                {
                    l.from(&added, l.server, "MODE", &[room, "+o", founder], false);
                }
            }
            // Each member gets its own `+k` line (`Note::KeySet`): the event does not hold the
            // key, and `k` always takes a parameter (CHANMODES), so `-k` has `*`.
            EventKind::Mode { change } if change.as_str() == "+k" => {}
            EventKind::Mode { change } if change.as_str() == "-k" => {
                l.from(&tags, &src, "MODE", &[room, "-k", "*"], false);
            }
            EventKind::Mode { change } => {
                let mut params = vec![room];
                let shown = names::mode_change(change.as_str());
                params.extend(shown.split(' ').filter(|w| !w.is_empty()));
                l.from(&tags, &src, "MODE", &params, false);
                // Registering a room makes its registrant the founder, an operator. (Each
                // line the server adds carries no msgid of its own: the event's names the
                // event's line alone, as a msgid names one message; until the forty-first
                // session these `MODE`s repeated it.)
                if change.as_str() == "+r" {
                    l.from(
                        &added,
                        l.server,
                        "MODE",
                        &[room, "+o", ev.from.as_str()],
                        false,
                    );
                }
            }
            EventKind::Moved => {}
        }
        l.done()
    }
}

/// The list (`b` or `q`) and the mask, as IRC shows masks, of the hub's words refusing to lift
/// a ban or mute the room does not hold.
fn not_listed(detail: &str) -> Option<(&'static str, String)> {
    let (letter, mask) = match detail.strip_prefix(NO_BAN_ON) {
        Some(rest) => ("b", rest.rsplit_once(" in ")?.0),
        None => ("q", detail.split_once(NOT_MUTED_IN)?.0),
    };
    let mask = crate::moderation::Mask::parse(mask).ok()?;
    Some((letter, names::mask(&mask)))
}

/// A member's standing (`@`, `+`, `@+` or empty) as a client is shown it: every prefix with
/// `multi-prefix`, else the highest only.
fn shown_prefix(mark: &str, multi: bool) -> &str {
    if multi {
        mark
    } else {
        &mark[..mark.len().min(1)]
    }
}

/// A `352` line for `p` in `channel`; `multi`: every prefix (multi-prefix), else the highest.
/// With WHOX's fields (`whox`), a `354` of those fields instead.
fn who_line(l: &mut Lines<'_>, channel: &str, p: &Present, multi: bool, whox: Option<&Whox>) {
    let n = p.nick.as_str();
    let away = if p.away.is_some() { "G" } else { "H" };
    let oper = if p.oper { "*" } else { "" };
    let mark = shown_prefix(p.mark, multi);
    let flags = format!("{away}{oper}{mark}");
    let flags = flags.as_str();
    let server = l.server;
    let Some(whox) = whox else {
        return l.num(
            RPL_WHOREPLY,
            &[channel, &p.ident.user, names::HOST, server, n, flags],
            &format!("0 {}", p.ident.realname),
        );
    };
    // WHOX's order, whatever the order asked; no IP is shown (`255.255.255.255`), nobody is
    // ever idle or far (`0`), and natter has no op levels (`n/a`).
    let mut params: Vec<&str> = Vec::new();
    for f in "tcuihsnfdlaor".chars().filter(|f| whox.fields.contains(*f)) {
        params.push(match f {
            't' => &whox.token,
            'c' => channel,
            'u' => &p.ident.user,
            'i' => "255.255.255.255",
            'h' => names::HOST,
            's' => server,
            'n' => n,
            'f' => flags,
            'd' | 'l' => "0",
            'a' => p.account.as_ref().map_or("0", Nick::as_str),
            'o' => "n/a",
            _ => &p.ident.realname,
        });
    }
    match params.split_last() {
        Some((last, middle)) => l.num(RPL_WHOSPCRPL, middle, last),
        // `%` alone: the token of nothing.
        None => l.num(RPL_WHOSPCRPL, &[], &whox.token),
    }
}

/// The last line of a link the server closes, as ircds word it (and IRC clients show it):
/// `ERROR :Closing Link: <host> (<why>)`, `why` cut to what a line holds.
fn closing_link(l: &mut Lines<'_>, why: &str) {
    let words = format!("Closing Link: {} ({})", names::HOST, fit(why, 400));
    write_line(&mut l.out, &Tags::none(), "", "ERROR", &[&words], true);
}
