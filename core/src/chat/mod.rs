//! The chat model: what a chat UI shows, kept once for every front end. The TUI draws it, the
//! page gets it through wasm; neither keeps chat state of its own (only view concerns such as
//! scroll positions and the input line).
//!
//! It is a fold of the [`Session`](crate::session::Session)'s events ([`Chat::handle_event`]),
//! plus the few things a person does that the server never hears of (opening another
//! conversation, looking away). It holds:
//! - conversations: the rooms we are in (in join order), direct conversations, and the server's
//!   notices for when nothing else is open ([`ConvId`], [`Conv`]);
//! - which one is open ([`Chat::current`]): typed chat goes there ([`Chat::target`]); when it
//!   goes (a part), the one read before it opens, as irssi goes back to the previous window;
//! - per conversation its lines in words ([`Line`], worded by [`crate::render`]), members
//!   (sorted), topic, and unread and mention counts;
//! - the lines we typed and the server has not acknowledged ([`Outgoing`]), and whether each
//!   looks pending yet; refused ones become failed lines that say why;
//! - per room how far back its lines go ([`Scrollback`]): older lines are asked for below the
//!   oldest seq held ([`Chat::want_older`]) and put in front of the room's history when they
//!   come;
//! - per room its settings ([`RoomPolicy`]): founder, operators, voiced, modes, bans, so a UI
//!   marks members by [`Role`] and offers operators ([`Chat::am_op`]) their actions
//!   ([`Chat::member_actions`]);
//! - per room who is away, with their messages ([`AwayMembers`], [`Chat::away`]), so a UI
//!   marks them too;
//! - the search asked for last and its hits ([`Chat::search`]);
//! - the connection state, our nick, and the account we are signed in to;
//! - for a signed-in person, per room the account's read marker ([`Event::ReadUpTo`]): what is
//!   at or below it is read, here and on every other device of the account, and what the person
//!   is shown here goes back to the server ([`Chat::poll_read`], debounced).
//!
//! A front end that prints lines instead (natter's line mode) keeps no chat model; [`LineNews`]
//! remembers what it must there (who is away, once per change; a rename once; who operates; a
//! join's notice, held until its replay has printed above it).
//!
//! Front ends learn what changed from [`Chat::poll_change`] (so the page updates the DOM in
//! proportion to the changes) and what to ring or notify about from [`Chat::poll_alert`].
//! Like the session it reads no clock: `now` comes in, and [`Chat::poll_timeout`] says when a
//! waiting line starts to look pending. `now` times deadlines only; the lines the model makes
//! itself are stamped with the wall clock, which a shell whose `now` is monotonic passes in
//! with each turn ([`Chat::set_wall_clock`]): a laptop's sleep or a clock step moves the
//! stamps of the lines after it, not the deadlines.
//!
//! Built to grow: moderation notices room events worded in [`crate::render`].

mod away_news;
mod change;
mod conv;
mod line;
mod line_news;
mod mention;
mod past;
mod policy;
mod read;

pub use away_news::AwayNews;
pub use change::{Alert, Change};
pub use conv::{AwayMembers, Conv, ConvId, Members};
pub use line::{Line, LineId, LineKind, Outgoing};
pub use line_news::LineNews;
pub use mention::{mention_spans, mentions};
pub use past::{Hit, Scrollback, Search, SearchState};
pub use policy::{Role, RoomPolicy};

use crate::limits::{
    CHAT_MAX_DIRECT, CHAT_MAX_HELD, CHAT_MAX_LEFT, CHAT_MAX_READ_BEFORE, PENDING_LOOK_AFTER,
    SESSION_MAX_PENDING,
};
use crate::render;
use crate::session::{About, ChatKind, ConnState, Event, Target};
use crate::time::Millis;
use crate::types::{MsgId, Nick, RoomName, Seq, Text, sanitize};
use crate::wire::{DirectMsg, ErrorKind, EventKind, RoomEvent};
use change::Log;
use std::collections::VecDeque;

/// What is left of a typed line after [`Chat::typed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typed {
    /// Answered by the conversations (opened, closed, usage said): nothing to send.
    Answered,
    /// The line goes to the session, for the open conversation ([`Chat::target`]).
    ToSession,
}

/// The chat model. See the module docs.
#[derive(Debug)]
pub struct Chat {
    me: Nick,
    /// The account we are signed in to (counts then come from its read markers).
    account: Option<Nick>,
    conn: ConnState,
    ever_connected: bool,
    /// Shown when no other conversation is open.
    server: Conv,
    /// Rooms we are in, in join order.
    rooms: Vec<Conv>,
    /// Direct conversations, in the order they were opened.
    directs: Vec<Conv>,
    current: ConvId,
    /// The person is looking at the open conversation (the page is visible): what arrives there
    /// is read at once.
    attention: bool,
    /// Lines typed and not yet acknowledged, oldest first.
    outgoing: VecDeque<Outgoing>,
    /// The search asked for last, until the person closes it.
    search: Option<Search>,
    log: Log,
    next_line: u64,
    next_active: u64,
    /// What the server's conversation said for the person since this session's welcome (the
    /// message of the day, why the nick is not the one asked), until a room opens to show it
    /// in: the TUI and the page show rooms, not the server's conversation. At most
    /// [`CHAT_MAX_HELD`] lines.
    held: Vec<String>,
    /// Rooms left, with their lines, to show again if they are joined again; at most
    /// [`CHAT_MAX_LEFT`], the oldest left going first.
    left: VecDeque<Conv>,
    /// The rooms that were open when we left them, the person's own choice first, then each
    /// the model opened in its place and we left too: the first of them joined again is opened
    /// again, unless the person asks for another meanwhile (a `/login` leaves every room and
    /// joins them again at once: the room being read must come back, not the last one the
    /// model passed through while the rooms went). At most [`CHAT_MAX_LEFT`].
    reopen: Vec<ConvId>,
    /// The open conversation is the one the model opened when the room being read was left,
    /// and the person has not chosen another since: the newest line id then. What the model
    /// says there after it, at its end (the "you left" of a `/part #a #b`'s first room), goes
    /// with the person if that room is left too, instead of with the room's lines.
    landed: Option<LineId>,
    /// The conversations open before the open one, the most recent last (never the server's,
    /// each once): leaving the open one goes back to the most recent still there
    /// ([`Chat::landing`]). At most [`CHAT_MAX_READ_BEFORE`].
    read_before: Vec<ConvId>,
    /// Our away message while we are away (`/away`), for the status a front end shows: said
    /// once as a line, it scrolled out of sight while it still held.
    my_away: Option<Text>,
    /// The wall clock (Unix milliseconds) less `now`, as last read ([`Chat::set_wall_clock`]):
    /// what turns a `now` into the stamp of a line made here. Zero while `now` is the wall
    /// clock itself.
    wall_ahead: i128,
}

impl Chat {
    /// An empty model for a session that asked for nick `me`.
    pub fn new(me: Nick) -> Chat {
        Chat {
            me,
            account: None,
            conn: ConnState::Connecting,
            ever_connected: false,
            server: Conv::new(ConvId::Server, "natter".into()),
            rooms: Vec::new(),
            directs: Vec::new(),
            current: ConvId::Server,
            attention: true,
            outgoing: VecDeque::new(),
            search: None,
            log: Log::default(),
            next_line: 0,
            next_active: 0,
            held: Vec::new(),
            left: VecDeque::new(),
            reopen: Vec::new(),
            landed: None,
            read_before: Vec::new(),
            my_away: None,
            wall_ahead: 0,
        }
    }

    /// The wall clock read at `now`: lines made here after it (notes, answers, lines typed) are
    /// stamped `wall` plus the time since `now`. For a shell whose `now` is monotonic (it must
    /// be, for deadlines to hold when the wall clock steps): read both each turn, before the
    /// turn's calls, so a stamp is never one sleep or clock step behind. A shell that passes
    /// the wall clock as `now` need not call it. Lines from the server keep the server's time.
    pub fn set_wall_clock(&mut self, wall: Millis, now: Millis) {
        self.wall_ahead = i128::from(wall.0) - i128::from(now.0);
    }

    /// The wall-clock stamp of a line made here at `now`.
    fn stamp(&self, now: Millis) -> Millis {
        let at = (i128::from(now.0) + self.wall_ahead).clamp(0, i128::from(u64::MAX));
        Millis(u64::try_from(at).unwrap_or(u64::MAX))
    }

    // ---- reading the model ----

    /// Our away message while we are away (`/away text`; `/back` ends it).
    pub fn my_away(&self) -> Option<&Text> {
        self.my_away.as_ref()
    }

    /// Our nick.
    pub fn me(&self) -> &Nick {
        &self.me
    }

    /// The account we are signed in to, if any (a guest otherwise).
    pub fn account(&self) -> Option<&Nick> {
        self.account.as_ref()
    }

    /// A room's settings as last sent (`None`: we are not in it). Unregistered rooms have a
    /// default one (no founder, no modes).
    pub fn policy(&self, room: &RoomName) -> Option<&RoomPolicy> {
        self.conv(&ConvId::Room(room.clone())).map(|c| &c.policy)
    }

    /// Whether we may moderate `room`: our account is its founder or an operator.
    pub fn am_op(&self, room: &RoomName) -> bool {
        self.policy(room)
            .is_some_and(|p| p.is_op(self.account.as_ref()))
    }

    /// Whether our account founded `room` (only the founder makes and unmakes operators).
    pub fn am_founder(&self, room: &RoomName) -> bool {
        self.policy(room)
            .zip(self.account.as_ref())
            .is_some_and(|(p, a)| p.role(a) == Role::Founder)
    }

    /// A member's standing in `room` (see [`RoomPolicy::role`]); [`Role::Member`] when we are
    /// not in it.
    pub fn role(&self, room: &RoomName, nick: &Nick) -> Role {
        self.policy(room).map_or(Role::Member, |p| p.role(nick))
    }

    /// What a member's menu offers us to do to `nick` in `room`, in the order it lists them:
    /// each an action's name as [`command::menu_action`](crate::command::menu_action) reads it.
    /// Nothing unless we may moderate the room; an operator may kick, ban, mute and unmute
    /// anyone, and voice a member (devoice a voiced one); only the founder makes operators and
    /// unmakes them, as the server rules. The server decides: a stale view costs a refusal.
    pub fn member_actions(&self, room: &RoomName, nick: &Nick) -> Vec<&'static str> {
        if !self.am_op(room) {
            return Vec::new();
        }
        let role = self.role(room, nick);
        let mut actions = vec!["kick", "ban", "mute", "unmute"];
        match role {
            Role::Voiced => actions.push("devoice"),
            Role::Member => actions.push("voice"),
            Role::Operator | Role::Founder => {}
        }
        if self.am_founder(room) {
            match role {
                Role::Operator => actions.push("deop"),
                Role::Member | Role::Voiced => actions.push("op"),
                Role::Founder => {}
            }
        }
        actions
    }

    /// A member's away message in `room`, if they are away (`None` too when we are not in it).
    pub fn away(&self, room: &RoomName, nick: &Nick) -> Option<&Text> {
        self.conv(&ConvId::Room(room.clone()))?.away.get(nick)
    }

    /// The next read marker to tell the server, when signed in: pass it to
    /// [`Session::read`](crate::session::Session::read). A room the person is reading is told
    /// at most once per [`READ_DEBOUNCE`](crate::limits::READ_DEBOUNCE) (the rest when
    /// [`Chat::poll_timeout`] comes), and at once when they leave it. Call until `None` after
    /// every input and timeout.
    pub fn poll_read(&mut self, now: Millis) -> Option<(RoomName, Seq)> {
        if self.account.is_none() || self.conn != ConnState::Connected {
            return None;
        }
        self.rooms.iter_mut().find_map(|c| {
            let seq = c.read.tell(now)?;
            match c.id() {
                ConvId::Room(room) => Some((room.clone(), seq)),
                _ => None,
            }
        })
    }

    /// The connection state.
    pub fn conn(&self) -> ConnState {
        self.conn
    }

    /// A welcome has been seen (so a lost connection is a *re*connect).
    pub fn ever_connected(&self) -> bool {
        self.ever_connected
    }

    /// The open conversation.
    pub fn current(&self) -> &ConvId {
        &self.current
    }

    /// The open conversation's contents.
    pub fn current_conv(&self) -> &Conv {
        self.conv(&self.current).unwrap_or(&self.server)
    }

    /// A conversation, if it exists.
    pub fn conv(&self, id: &ConvId) -> Option<&Conv> {
        match id {
            ConvId::Server => Some(&self.server),
            ConvId::Room(_) => self.rooms.iter().find(|c| c.id() == id),
            ConvId::Direct(_) => self.directs.iter().find(|c| c.id() == id),
        }
    }

    /// The conversations to list: rooms in join order, then direct conversations.
    pub fn conversations(&self) -> impl Iterator<Item = &Conv> {
        self.rooms.iter().chain(&self.directs)
    }

    /// Lines typed in `id` that the server has not acknowledged, oldest first.
    pub fn outgoing(&self, id: &ConvId) -> impl Iterator<Item = &Outgoing> {
        let id = id.clone();
        self.outgoing.iter().filter(move |o| o.conv == id)
    }

    /// Where a line typed now goes: the open room or person (`None` when nothing is open; the
    /// session then uses its default room). Pass it to
    /// [`Session::handle_input_in`](crate::session::Session::handle_input_in).
    pub fn target(&self) -> Option<Target> {
        self.current.target()
    }

    /// Unread lines and, of those, mentions and direct messages, over all conversations.
    pub fn counts(&self) -> (u32, u32) {
        self.conversations().fold((0, 0), |(u, m), c| {
            (u.saturating_add(c.unread), m.saturating_add(c.mentions))
        })
    }

    /// A window title with the counts (see [`render::title`]).
    pub fn title(&self) -> String {
        let (unread, mentions) = self.counts();
        let open = (self.current != ConvId::Server).then(|| self.current_conv().label());
        render::title(open, unread, mentions)
    }

    /// The conversation `step` places after (or before, negative) the open one, wrapping.
    pub fn conv_after(&self, step: isize) -> Option<ConvId> {
        let list: Vec<&ConvId> = self.conversations().map(Conv::id).collect();
        if list.is_empty() {
            return None;
        }
        let n = list.len() as isize;
        let at = list
            .iter()
            .position(|c| **c == self.current)
            .map_or(if step > 0 { -1 } else { 0 }, |i| i as isize);
        list.get((at + step).rem_euclid(n) as usize)
            .map(|c| (*c).clone())
    }

    /// The `n`th conversation (1-based), for Alt+n.
    pub fn conv_number(&self, n: usize) -> Option<ConvId> {
        self.conversations()
            .nth(n.checked_sub(1)?)
            .map(|c| c.id().clone())
    }

    /// A member of the open room whose nick starts with `prefix` (case-insensitively), other
    /// than us: what Tab completes to.
    pub fn complete_nick(&self, prefix: &str) -> Option<&Nick> {
        self.nick_completions(prefix).into_iter().next()
    }

    /// Every member of the open room whose nick starts with `prefix` (case-insensitively),
    /// other than us, in the member list's order: what repeated Tabs cycle through.
    pub fn nick_completions(&self, prefix: &str) -> Vec<&Nick> {
        let prefix = prefix.to_ascii_lowercase();
        let me = self.me.folded();
        self.current_conv()
            .members()
            .iter()
            .filter(|n| {
                let folded = n.folded();
                folded.starts_with(&prefix) && folded != me
            })
            .collect()
    }

    /// What Tab completes `word` (the text before the cursor, back to a space) to, in the
    /// order repeated Tabs cycle through: at the start of the line a `/` word to the commands
    /// that start with it (`/jo`: `/join`), a `#` word to the rooms we are in (`#ru`:
    /// `#rust`), else to the nicks of [`Chat::nick_completions`]. Case-insensitively.
    pub fn completions(&self, word: &str, line_start: bool) -> Vec<String> {
        let prefix = word.to_ascii_lowercase();
        if word.starts_with('/') {
            if !line_start {
                return Vec::new();
            }
            // The conversations' own commands first (everyday ones, where the session's list
            // puts an admin's `/close` before `/clear`).
            return crate::command::OWN_COMMANDS
                .into_iter()
                .chain(crate::command::names())
                .filter(|n| n.starts_with(&prefix))
                .map(String::from)
                .collect();
        }
        if word.starts_with('#') {
            return self
                .rooms
                .iter()
                .filter_map(|c| match c.id() {
                    ConvId::Room(r) if r.as_str().to_ascii_lowercase().starts_with(&prefix) => {
                        Some(r.to_string())
                    }
                    _ => None,
                })
                .collect();
        }
        self.nick_completions(word)
            .into_iter()
            .map(ToString::to_string)
            .collect()
    }

    /// The next change since the last call, oldest first.
    pub fn poll_change(&mut self) -> Option<Change> {
        self.log.pop()
    }

    /// The next mention or direct message to ring or notify about.
    pub fn poll_alert(&mut self) -> Option<Alert> {
        self.log.pop_alert()
    }

    /// When [`Chat::handle_timeout`] must be called next: when a line waiting for the server
    /// starts to look pending, or a read marker may be told ([`Chat::poll_read`]).
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.conn != ConnState::Connected {
            return None;
        }
        let looks = self
            .outgoing
            .iter()
            .filter(|o| !o.looks_pending)
            .map(|o| o.since + PENDING_LOOK_AFTER);
        let reads = self
            .rooms
            .iter()
            .filter(|_| self.account.is_some())
            .filter_map(|c| c.read.due());
        looks.chain(reads).min()
    }

    // ---- what the person does ----

    /// Opens conversation `id` (it becomes where typed chat goes, and is read). False if there
    /// is no such conversation.
    pub fn open(&mut self, id: &ConvId) -> bool {
        // The person chose: a room left is not opened for them when it comes back.
        self.reopen.clear();
        self.landed = None;
        self.show(id)
    }

    /// [`Chat::open`], as the model decides it (a join, a part).
    fn show(&mut self, id: &ConvId) -> bool {
        if self.conv(id).is_none() {
            return false;
        }
        if self.current != *id {
            let left = self.current.clone();
            if let Some(c) = self.conv_mut(&left) {
                c.read.leave();
            }
            // Gone (left, closed) it is no conversation to go back to.
            if left != ConvId::Server && self.conv(&left).is_some() {
                self.read_before.retain(|r| *r != left);
                if self.read_before.len() >= CHAT_MAX_READ_BEFORE {
                    self.read_before.remove(0);
                }
                self.read_before.push(left);
            }
            self.current = id.clone();
            self.landed = None;
            self.log.push(Change::Current);
        }
        self.mark_read();
        true
    }

    /// Where the person lands when the open conversation goes: the most recent read before it
    /// that is still there, else the first room, else the server's conversation.
    fn landing(&self) -> ConvId {
        self.read_before
            .iter()
            .rev()
            .find(|r| **r != self.current && self.conv(r).is_some())
            .or_else(|| self.rooms.first().map(|c| c.id()))
            .map_or(ConvId::Server, |id| id.clone())
    }

    /// Closes direct conversation `id` (the person is done with it; a `/msg` to a mistyped
    /// nick started one): its lines go, and the next message with that person starts it again.
    /// If it was open, the one read before it opens, as after a part.
    /// False if `id` is no direct conversation we have.
    pub fn close_direct(&mut self, id: &ConvId) -> bool {
        if !matches!(id, ConvId::Direct(_)) {
            return false;
        }
        let Some(i) = self.directs.iter().position(|c| c.id() == id) else {
            return false;
        };
        self.directs.remove(i);
        self.log.push(Change::List);
        if self.current == *id {
            let next = self.landing();
            self.show(&next);
        }
        true
    }

    /// Opens the direct conversation with `peer`, starting it if there is none.
    pub fn open_direct(&mut self, peer: &Nick) {
        let id = self.direct_conv(peer);
        self.open(&id);
    }

    /// Whether the person is looking at the open conversation (a page that is visible): while
    /// not, what arrives there counts as unread too. Looking again reads it.
    pub fn set_attention(&mut self, looking: bool) {
        self.attention = looking;
        if looking {
            self.mark_read();
        }
    }

    /// A front end's own notice, shown in the open conversation.
    pub fn note(&mut self, text: impl Into<String>, now: Millis) {
        let id = self.current.clone();
        self.notice_in(&id, LineKind::Notice(text.into()), now);
    }

    /// A front end's own error, shown in the open conversation.
    pub fn note_error(&mut self, text: impl Into<String>, now: Millis) {
        let id = self.current.clone();
        self.notice_in(&id, LineKind::Error(text.into()), now);
    }

    /// A typed line, for what the conversations themselves answer (a front end with
    /// conversations calls this before giving the line to the session): `/query nick` opens
    /// the direct conversation with nick (over search results; nothing is sent), `/query nick
    /// text` opens it and leaves the line to send (the session reads it as `/msg`), `/query`
    /// alone says how it is typed (and `/help query` what it does: the session's is `/msg`'s),
    /// `/query b@d` why that is no nick, and `/part` typed in a direct conversation closes it
    /// (the session would say it is no room). Whether the line still goes to the session.
    #[must_use]
    pub fn typed(&mut self, line: &str, now: Millis) -> Typed {
        use crate::command::{self, Query};
        if command::help_query(line) {
            self.note(command::QUERY_HELP, now);
            return Typed::Answered;
        }
        if let ConvId::Direct(peer) = self.current.clone()
            && command::part_here(line)
        {
            let label = self.current_conv().label().to_owned();
            self.close_search();
            self.close_direct(&ConvId::Direct(peer));
            self.note(
                format!("closed the conversation with {label} (/query {label} opens it again)"),
                now,
            );
            return Typed::Answered;
        }
        match command::query(line) {
            None => Typed::ToSession,
            Some(Query::Usage) => {
                self.note_error(command::QUERY_USAGE, now);
                Typed::Answered
            }
            Some(Query::NotANick(why)) => {
                self.note_error(why, now);
                Typed::Answered
            }
            Some(Query::Open(nick)) => {
                self.close_search();
                self.open_direct(&nick);
                Typed::Answered
            }
            Some(Query::OpenAndSend(nick)) => {
                self.close_search();
                self.open_direct(&nick);
                Typed::ToSession
            }
        }
    }

    /// What to say in the open conversation when `line` sends a direct message that shows in
    /// another (`/msg bob hi` typed in a room): without it, Enter seemed to do nothing, as the
    /// line lands in `@bob` out of sight. Worded as line mode prints a sent direct message
    /// (`-> *bob* hi`; a `/notice bob hi`: `-> -bob- hi`). `None` for any other line, and for
    /// a `/msg` or `/notice` to the direct conversation open. A front end notes it ([`Chat::note`]) as it gives the line to the session (the
    /// TUI and the page each wrote this until the forty-first session).
    pub fn sent_elsewhere(&self, line: &str) -> Option<String> {
        use crate::command::{self, Command, Input};
        match command::parse(line) {
            Ok(Some(Input::Command(Command::Msg { to, text })))
                if self.current != ConvId::direct(&to) =>
            {
                Some(format!("-> *{to}* {text}"))
            }
            // A direct notice lands there too (`-> -bob- hi`, as line mode prints one sent).
            Ok(Some(Input::Command(Command::NoticeTo { to, text })))
                if self.current != ConvId::direct(&to) =>
            {
                Some(format!("-> -{to}- {text}"))
            }
            _ => None,
        }
    }

    /// A typed `/clear` ([`crate::command::clear`]): the open conversation's lines go, or with
    /// `all` every conversation's, the server's too, and what covers them (search results):
    /// the view is what the person cleared.
    pub fn clear_view(&mut self, all: bool) {
        let ids: Vec<ConvId> = if all {
            core::iter::once(ConvId::Server)
                .chain(self.conversations().map(|c| c.id().clone()))
                .collect()
        } else {
            vec![self.current().clone()]
        };
        self.close_search();
        for id in ids {
            self.clear(&id);
        }
    }

    /// Empties conversation `id`'s lines (IRC clients' `/clear`): only what this front end
    /// shows; nothing is sent. Scrolling up still loads a room's lines older than those
    /// ([`Chat::want_older`]), not those again. Said to a front end as [`Change::LinesTrimmed`]
    /// of every line. Returns how many went.
    pub fn clear(&mut self, id: &ConvId) -> usize {
        let Some(c) = self.conv_mut(id) else {
            return 0;
        };
        let before = c.scrollback();
        let n = c.clear();
        if c.scrollback() != before {
            self.log.push(Change::Scrollback(id.clone()));
        }
        if n > 0 {
            self.log.push(Change::LinesTrimmed {
                conv: id.clone(),
                n,
            });
        }
        n
    }

    /// A deadline from [`Chat::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.refresh_looks(now);
    }

    // ---- what the session says ----

    /// Folds in one of the session's events (driver instructions are ignored).
    pub fn handle_event(&mut self, ev: &Event, now: Millis) {
        match ev {
            Event::Connect | Event::Close => {}
            Event::State(state) => self.on_state(*state, now),
            Event::Welcome {
                nick,
                resumed,
                signing_in,
            } => {
                self.ever_connected = true;
                if !resumed {
                    // A new session: what an earlier one said before a room opened is old.
                    self.held.clear();
                    // A guest until the session signs in again.
                    self.set_account(None);
                    // The server's new user is not away (the session does not ask again).
                    self.my_away = None;
                }
                self.set_me(nick);
                self.note(
                    render::welcome_words(nick, *resumed, signing_in.as_ref()),
                    now,
                );
            }
            Event::Joined {
                room,
                topic,
                members,
                seq,
            } => self.on_joined(room, topic.as_ref(), members, *seq, now),
            Event::Focus(room) => {
                self.open(&ConvId::Room(room.clone()));
            }
            Event::Parted { room, kicked } => self.on_parted(room, *kicked, now),
            Event::Room(ev) => self.on_room_event(ev),
            Event::Direct(dm) => self.on_direct(dm, false),
            Event::DirectNotice(dm) => self.on_direct(dm, true),
            Event::Gap { room, first, last } => {
                let id = ConvId::Room(room.clone());
                let words = render::gap_words(room, *first, *last);
                let kind = LineKind::Gap {
                    first: *first,
                    last: *last,
                    words,
                };
                let line = self.make_line(self.stamp(now), None, kind);
                self.add_line(&id, line);
            }
            Event::Members {
                room,
                members,
                asked,
                as_of,
            } => {
                let id = ConvId::Room(room.clone());
                let mut counted = None;
                let mut marks = Vec::new();
                if let Some(c) = self.conv_mut(&id) {
                    // Operators marked as the member list marks them (`@alice`).
                    marks = members.iter().map(|n| c.policy.role(n).mark()).collect();
                    c.members.set(members);
                    if as_of.is_some() {
                        // The room as it is now (a resume or a rejoin): a count from before
                        // is stale, and a big room's size comes after it (`Crowd`).
                        c.listed_at = *as_of;
                        c.counted = None;
                    }
                    // Who is away comes after it (`AwayHere`), if anyone is.
                    c.away.clear();
                    c.revision += 1;
                    counted = Some(c.member_count());
                    self.log.push(Change::Members(id.clone()));
                }
                if *asked {
                    let id = self.here_or_current(id);
                    let words = render::members_words(room, members, &marks, counted);
                    self.answer_in(&id, LineKind::Notice(words), now);
                }
            }
            Event::Crowd {
                room,
                joined,
                left,
                members,
            } => {
                let id = ConvId::Room(room.clone());
                let Some(c) = self.conv_mut(&id) else {
                    return;
                };
                c.counted = Some(*members);
                c.revision += 1;
                self.log.push(Change::Members(id.clone()));
                let words = render::crowd_words(room, *joined, *left, *members);
                self.notice_in(&id, LineKind::Notice(words), now);
            }
            Event::Rooms(rooms) => {
                let words = render::rooms_words(rooms);
                let kind = LineKind::Rooms {
                    rooms: rooms.clone(),
                    words,
                };
                let id = self.current.clone();
                let line = self.make_line(self.stamp(now), None, kind);
                self.add_line(&id, line);
            }
            Event::Topic { room, topic } => {
                let id = ConvId::Room(room.clone());
                self.set_topic(&id, topic.as_ref());
                let id = self.here_or_current(id);
                let words = render::topic_words(room, topic.as_ref());
                self.answer_in(&id, LineKind::Notice(words), now);
            }
            Event::Nick(nick) => {
                self.set_me(nick);
                self.note_held(render::nick_words(nick), now);
            }
            Event::SignedIn { account, .. } => {
                self.set_account(Some(account));
                // A guest signing in leaves its rooms for the account's: said where the
                // person looks once they are back.
                self.note_held(render::signed_in_words(account), now);
            }
            Event::SignedOut => {
                self.set_account(None);
                for c in &mut self.rooms {
                    c.read = Default::default();
                }
                self.note(render::SIGNED_OUT, now);
            }
            Event::ReadUpTo { room, seq } => {
                let id = ConvId::Room(room.clone());
                if let Some(c) = self.conv_mut(&id)
                    && c.read.marker(*seq)
                {
                    self.recount(&id);
                }
            }
            Event::Policy {
                room,
                founder,
                ops,
                voiced,
                modes,
                asked,
            } => {
                let id = ConvId::Room(room.clone());
                // Shown when typed for, and once on joining (later news is a room event's line).
                let mut show = *asked;
                if let Some(c) = self.conv_mut(&id) {
                    show |= !c.policy_seen;
                    c.policy_seen = true;
                    c.policy.founder = founder.clone();
                    c.policy.ops = ops.clone();
                    c.policy.voiced = voiced.clone();
                    c.policy.modes = modes.clone();
                    // Any change may be a ban another operator set: the list is old now.
                    c.policy.bans_stale = c.policy.bans.is_some();
                    c.revision += 1;
                    self.log.push(Change::Policy(id.clone()));
                }
                if show {
                    let id = self.here_or_current(id);
                    let words = render::policy_words(room, founder.as_ref(), ops, voiced, modes);
                    self.answer_in(&id, LineKind::Notice(words), now);
                }
            }
            Event::BanList {
                room,
                bans,
                mutes,
                asked,
            } => {
                let id = ConvId::Room(room.clone());
                if let Some(c) = self.conv_mut(&id) {
                    c.policy.bans = Some(bans.clone());
                    c.policy.mutes = Some(mutes.clone());
                    c.policy.bans_stale = false;
                    c.revision += 1;
                    self.log.push(Change::Policy(id.clone()));
                }
                if *asked {
                    let id = self.here_or_current(id);
                    for words in render::ban_list_lines(room, bans, mutes) {
                        self.answer_in(&id, LineKind::Notice(words), now);
                    }
                }
            }
            Event::Invited { room, by } => self.note(render::invited_words(room, by), now),
            // Told on joining that we may not speak in a room: a fact about it, not a failure.
            Event::Error {
                kind: Some(ErrorKind::Muted),
                about: About::Room(room),
                text,
            } => {
                let id = ConvId::Room(room.clone());
                self.notice_in(&id, LineKind::Notice(sanitize(text)), now);
            }
            Event::Error { about, text, .. } => self.on_error(about, text, now),
            // The status line counts down to the next attempt: the conversation says why, once
            // for as long as it stays the same.
            Event::ConnectFailed { why, .. } => {
                for line in render::clean_lines(why) {
                    self.note(line, now);
                }
            }
            Event::Info(text) => {
                for line in render::clean_lines(text) {
                    self.hold(std::slice::from_ref(&line));
                    self.note(line, now);
                }
            }
            Event::Done(words) => {
                let id = self.current.clone();
                for line in render::clean_lines(words) {
                    self.answer_in(&id, LineKind::Notice(line), now);
                }
            }
            Event::Whois { nick, user } => {
                let id = self.current.clone();
                for line in render::whois_lines(nick, user.as_ref(), Some(&self.me)) {
                    self.answer_in(&id, LineKind::Notice(line), now);
                }
            }
            Event::Devices(devices) => {
                let id = self.current.clone();
                for line in render::devices_lines(devices) {
                    self.answer_in(&id, LineKind::Notice(line), now);
                }
            }
            Event::Away { nick, away } => {
                if nick.folded() == self.me.folded() {
                    self.my_away = away.clone();
                }
                self.on_away(nick, away.as_ref());
                self.say_away(nick, away.as_ref(), now);
            }
            Event::AwayHere { room, away } => {
                let id = ConvId::Room(room.clone());
                for (nick, text) in away {
                    self.set_away(&id, nick, Some(text));
                }
            }
            Event::Motd(lines) => self.on_motd(lines, now),
            Event::Queued { id, to, kind, text } => self.on_queued(*id, to, *kind, text, now),
            Event::Settled { id, delivered } => self.on_settled(*id, *delivered, now),
            Event::Older { room } => self.on_older(room),
            Event::Past {
                room,
                events,
                at_start,
                ..
            } => self.on_past(room, events, *at_start),
            Event::Search { room, words } => self.on_search(room.as_ref(), words),
            Event::Found {
                room,
                words,
                hits,
                more,
            } => self.on_found(room.as_ref(), words, hits, *more),
        }
    }

    fn on_state(&mut self, state: ConnState, now: Millis) {
        self.conn = state;
        self.log.push(Change::Conn);
        // The status counts the attempts; the conversation marks only where it began.
        let later_attempt = matches!(state, ConnState::Reconnecting { attempt, .. } if attempt > 1);
        if let Some(words) = render::state_words(state).filter(|_| !later_attempt) {
            self.note(words, now);
        }
        self.refresh_looks(now);
    }

    fn on_joined(
        &mut self,
        room: &RoomName,
        topic: Option<&Text>,
        members: &[Nick],
        seq: Seq,
        now: Millis,
    ) {
        let id = ConvId::Room(room.clone());
        if self.conv(&id).is_none() {
            // Left a moment ago (a `/login`'s switch) or earlier: its lines come back.
            let conv = match self.left.iter().position(|c| *c.id() == id) {
                Some(i) => self.left.remove(i).map(|mut c| {
                    c.rejoin();
                    c
                }),
                None => None,
            };
            self.rooms
                .push(conv.unwrap_or_else(|| Conv::new(id.clone(), room.to_string())));
            self.log.push(Change::List);
        }
        // Our join is newer than anything the room held: one at or below it is another room's
        // numbering.
        if self
            .conv(&id)
            .and_then(|c| c.rejoined_after)
            .is_some_and(|after| seq <= after)
        {
            self.started_over(&id, self.stamp(now));
        }
        if let Some(c) = self.conv_mut(&id) {
            c.members.set(members);
            // Who is away comes after it (`AwayHere`), if anyone is.
            c.away.clear();
            c.counted = None;
            c.topic = topic.cloned();
            c.live_after = Some(seq);
            c.listed_at = Some(seq);
            c.revision += 1;
        }
        self.log.push(Change::Members(id.clone()));
        self.log.push(Change::Topic(id.clone()));
        // Operators are not known yet: the room's `Policy` follows the join. Said each time,
        // as "you left" is: a room joined again keeps its lines, whose last may be the notice
        // of the visit before, which read as if this join had not happened.
        let mark = LineId(self.next_line + 1);
        for words in render::joined_words(room, topic, members, &[], Some(&self.me)) {
            self.answer_in(&id, LineKind::Notice(words), now);
        }
        // The replay that follows is older than this notice: it goes above it.
        if let Some(c) = self.conv_mut(&id) {
            c.join_mark = Some(mark);
        }
        let from_server = self.current == ConvId::Server;
        let reopen = self.reopen.iter().position(|r| *r == id);
        if from_server || reopen.is_some() {
            // Back in the room we were reading when we left it (a `/login` leaves every room
            // and joins them again), or the first room after none. Only rooms opened in its
            // place are let go: the one read before this one may still come back.
            if let Some(i) = reopen {
                self.reopen.truncate(i);
            }
            self.show(&id);
        }
        if from_server {
            // What was said while only the server's conversation was open (the message of the
            // day, why the nick is another) is shown where the person now looks, once.
            let held = std::mem::take(&mut self.held);
            self.show_motd(&id, &held, now);
        }
    }

    /// `nick` went away (`Some`) or came back: marked in every room they are in.
    fn on_away(&mut self, nick: &Nick, away: Option<&Text>) {
        let rooms: Vec<ConvId> = self
            .rooms
            .iter()
            .filter(|c| c.members.position(nick).is_some())
            .map(|c| c.id().clone())
            .collect();
        for id in rooms {
            self.set_away(&id, nick, away);
        }
    }

    /// Someone's away (or back) in words: ours, or a co-member's change, in the open
    /// conversation (said once while it stays the same); someone's with whom there is a direct
    /// conversation there instead, once per change: the server repeats it after each message
    /// written to them while they are away (IRC's `301`), which belongs beside those messages.
    fn say_away(&mut self, nick: &Nick, away: Option<&Text>, now: Millis) {
        let words = render::away_words(nick, away, Some(&self.me));
        let dm = ConvId::direct(nick);
        if nick.folded() != self.me.folded()
            && let Some(c) = self.conv_mut(&dm)
            && (away.is_some() || c.peer_away.is_some())
        {
            if c.peer_away.as_ref() == away {
                return;
            }
            c.peer_away = away.cloned();
            let line = self.make_line(self.stamp(now), None, LineKind::Notice(words));
            return self.add_line(&dm, line);
        }
        self.hold(std::slice::from_ref(&words));
        self.note(words, now);
    }

    /// Sets or clears the away of `nick`, a member of room `id` (nobody else is kept).
    fn set_away(&mut self, id: &ConvId, nick: &Nick, away: Option<&Text>) {
        let Some(c) = self.conv_mut(id) else {
            return;
        };
        let Some(index) = c.members.position(nick) else {
            return;
        };
        if c.away.set(nick, away) {
            c.revision += 1;
            self.log.push(Change::MemberAway {
                conv: id.clone(),
                index,
                nick: nick.clone(),
            });
        }
    }

    /// The server's message of the day: shown in the open conversation, and kept to show again
    /// in the first room that opens when that is only the server's.
    fn on_motd(&mut self, lines: &[String], now: Millis) {
        let lines: Vec<String> = lines.iter().map(|l| crate::types::sanitize(l)).collect();
        let id = self.current.clone();
        self.show_motd(&id, &lines, now);
        self.hold(&lines);
    }

    /// Keeps `lines` said in the server's conversation to show in the first room that opens
    /// (nothing while a room is open: they were said there).
    fn hold(&mut self, lines: &[String]) {
        if self.current != ConvId::Server {
            return;
        }
        let room = CHAT_MAX_HELD.saturating_sub(self.held.len());
        self.held.extend(lines.iter().take(room).cloned());
    }

    /// A notice in the open conversation, kept to show again in the first room that opens
    /// when that is only the server's.
    fn note_held(&mut self, words: String, now: Millis) {
        self.hold(std::slice::from_ref(&words));
        self.note(words, now);
    }

    /// The message of the day's lines in `id`, one by one (not through `notice_in`: an empty
    /// or repeated line is kept).
    fn show_motd(&mut self, id: &ConvId, lines: &[String], now: Millis) {
        for words in lines {
            let line = self.make_line(self.stamp(now), None, LineKind::Notice(words.clone()));
            self.add_line(id, line);
        }
    }

    /// We are out of `room`; `put_out`: not of our accord (see [`Event::Parted`]).
    fn on_parted(&mut self, room: &RoomName, put_out: bool, now: Millis) {
        let id = ConvId::Room(room.clone());
        let Some(i) = self.rooms.iter().position(|c| c.id() == &id) else {
            return;
        };
        let mut gone = self.rooms.remove(i);
        self.log.push(Change::List);
        let kicked = gone.kicked.take();
        if self.current == id {
            // Said where we land: what the model said in the room since it put us there (the
            // earlier rooms of a `/part #a #b #c`: their "you left"), not lost with it.
            let said = self
                .landed
                .take()
                .map(|mark| gone.take_said_since(mark, CHAT_MAX_HELD))
                .unwrap_or_default();
            let next = self.landing();
            self.show(&next);
            self.landed = Some(LineId(self.next_line));
            for line in said {
                let line = self.make_line(line.at, None, line.kind);
                self.add_line(&next, line);
            }
            if !self.reopen.contains(&id) && self.reopen.len() < CHAT_MAX_LEFT {
                self.reopen.push(id.clone());
            }
        }
        // Kept, to show again if the room is joined again.
        if self.left.len() >= CHAT_MAX_LEFT {
            self.left.pop_front();
        }
        self.left.push_back(gone);
        // Put out: who did it and why, where we are now (the room's lines went with it), and
        // nothing more: "you left" would say we left of our own accord. Not let back in: the
        // refusal that follows says why.
        match kicked {
            Some(words) => self.note(words, now),
            // Each time: after `/part`, `/join`, `/part`, the "you left" of the part before
            // was the last line here, and this one was not said.
            None if !put_out => {
                let here = self.current.clone();
                self.answer_in(&here, LineKind::Notice(render::parted_words(room)), now);
            }
            None => {}
        }
    }

    /// A room event as a line: chat, or the event in words; ours, or a mention of us.
    fn line_of(&mut self, ev: &RoomEvent) -> Line {
        let mine = ev.from.folded() == self.me.folded();
        let kind = match &ev.kind {
            EventKind::Say { text, .. } => LineKind::Say {
                from: ev.from.clone(),
                text: text.clone(),
            },
            EventKind::Act { text, .. } => LineKind::Act {
                from: ev.from.clone(),
                text: text.clone(),
            },
            EventKind::Notice { text, .. } => LineKind::UserNotice {
                from: ev.from.clone(),
                text: text.clone(),
            },
            _ => LineKind::Event {
                who: ev.from.clone(),
                words: render::event_words_to(ev, Some(&self.me)).unwrap_or_default(),
            },
        };
        let mention = match &kind {
            LineKind::Say { text, .. }
            | LineKind::Act { text, .. }
            | LineKind::UserNotice { text, .. } => !mine && mentions(text.as_str(), &self.me),
            _ => false,
        };
        let chat = matches!(
            kind,
            LineKind::Say { .. } | LineKind::Act { .. } | LineKind::UserNotice { .. }
        );
        let mut line = self.make_line(ev.at, Some(ev.seq), kind);
        line.mine = mine && chat;
        line.mention = mention;
        line
    }

    fn on_room_event(&mut self, ev: &RoomEvent) {
        let id = ConvId::Room(ev.room.clone());
        if self.conv(&id).is_none() || ev.kind == EventKind::Moved {
            // A member's session moving to another server shows nothing.
            return;
        }
        // Replayed by our join: older than the notice of it, so shown above it.
        let replayed = self
            .conv(&id)
            .and_then(|c| c.live_after)
            .is_some_and(|at| ev.seq <= at);
        if let Some(c) = self.conv_mut(&id) {
            c.seen = c.seen.max(Some(ev.seq));
            if !replayed {
                c.join_mark = None;
            }
        }
        if let Some(after) = self.conv_mut(&id).and_then(|c| c.rejoined_after.take()) {
            let anew = ev.seq <= after && self.conv(&id).is_some_and(|c| c.holds_other(ev));
            if anew {
                // Not the event a kept line of this seq was: the room's seqs started over
                // (made anew; our join's seq was above the old lines'). Shown from here on.
                self.started_over(&id, ev.at);
                if let Some(c) = self.conv_mut(&id) {
                    c.seen = Some(ev.seq);
                }
            } else if ev.seq <= after {
                // Shown before we left; the rest of the replay may be too.
                if let Some(c) = self.conv_mut(&id) {
                    c.rejoined_after = Some(after);
                }
                return;
            } else if ev.seq.0 > after.0 + 1 {
                let (first, last) = (Seq(after.0 + 1), Seq(ev.seq.0 - 1));
                let words = render::gap_words(&ev.room, first, last);
                let line = self.make_line(ev.at, None, LineKind::Gap { first, last, words });
                self.add_event_line(&id, line, replayed);
            }
            // The first event after what was shown is our own part, which left the room: said
            // as "you left" where we landed then, it read here, below the notice of this join,
            // as if we had left again.
            if replayed
                && matches!(ev.kind, EventKind::Part { .. })
                && ev.from.folded() == self.me.folded()
            {
                if let Some(c) = self.conv_mut(&id) {
                    c.said_unlined(ev);
                }
                return;
            }
        }
        let live = self
            .conv(&id)
            .and_then(|c| c.live_after)
            .is_none_or(|after| ev.seq > after);
        if !matches!(
            ev.kind,
            EventKind::Say { .. } | EventKind::Act { .. } | EventKind::Notice { .. }
        ) {
            let listed = self
                .conv(&id)
                .and_then(|c| c.listed_at)
                .is_none_or(|at| ev.seq > at);
            self.apply_membership(&id, &ev.from, &ev.kind, listed);
        }
        if let EventKind::Nick { new } = &ev.kind
            && live
        {
            self.follow_rename(ev, new);
        }
        let kicked = match &ev.kind {
            EventKind::Kick { target, .. } if target.folded() == self.me.folded() => {
                render::event_words_to(ev, Some(&self.me))
            }
            _ => None,
        };
        if let Some(c) = self.conv_mut(&id) {
            c.kicked = kicked;
        }
        let mut line = self.line_of(ev);
        if live && let EventKind::Nick { new } = &ev.kind {
            // Our own rename, told also by the session's `Nick` (a notice where we look),
            // before or after this event: said as that notice, once in each room, as nc says
            // it once and IRC clients say `You're now known as` in each channel.
            let ours = [&ev.from, new]
                .iter()
                .any(|n| n.folded() == self.me.folded());
            if ours {
                line.kind = LineKind::Notice(render::nick_words(new));
                line.mine = true;
                if let Some(c) = self.conv_mut(&id)
                    && c.last().is_some_and(|l| l.kind == line.kind)
                {
                    c.said_unlined(ev);
                    return;
                }
            }
        }
        let signed_in = self.account.is_some();
        let viewing = self.current == id && self.attention;
        let mut read = false;
        if let Some(c) = self.conv_mut(&id)
            && signed_in
        {
            if viewing {
                c.read.shown(ev.seq);
            }
            // Read already, here or on another device of the account.
            read = c.read.is_read(ev.seq);
        }
        let chat_text = match &line.kind {
            LineKind::Say { text, .. }
            | LineKind::Act { text, .. }
            | LineKind::UserNotice { text, .. }
                if !line.mine =>
            {
                Some(text.clone())
            }
            _ => None,
        };
        if let Some(text) = chat_text.filter(|_| !read) {
            let live = self
                .conv(&id)
                .and_then(|c| c.live_after)
                .is_none_or(|after| ev.seq > after);
            self.bump(&id, line.mention && live);
            if line.mention && live {
                self.log.alert(Alert {
                    conv: id.clone(),
                    from: ev.from.clone(),
                    room: Some(ev.room.clone()),
                    text,
                });
            }
        }
        // Our own join, the last event a join replays: the notice of the join (`you are in
        // #rust with: ...`) said it already, as nc says it once (the join of an earlier visit,
        // in older lines, is shown).
        let own_join = ev.kind == EventKind::Join
            && ev.from.folded() == self.me.folded()
            && self.conv(&id).and_then(|c| c.live_after) == Some(ev.seq);
        if !own_join {
            self.add_event_line(&id, line, replayed);
        } else if let Some(c) = self.conv_mut(&id) {
            c.said_unlined(ev);
        }
        if ev.seq == Seq(1) {
            // A room's first event: nothing is older.
            self.set_scrollback(&id, Scrollback::Start);
        }
    }

    /// What a join, part, quit, rename or topic change does to a room's members and topic.
    /// History replayed after a join runs up to the member list's snapshot (as does a
    /// resume's replay after its refresh): the list is the room as it is, and only events
    /// after it (`live`) change who is in it, or who is away (the server said who is away as
    /// of it, and a member's past part then join would lose their mark). Applying the replay
    /// too left the list right only when history is whole: a kill -9 writes no quits (IRC
    /// keeps none either, see `Boot`), so the joins it replayed of nc and IRC users gone with
    /// the restart listed them as members for good. Topics are taken from either.
    fn apply_membership(&mut self, id: &ConvId, from: &Nick, kind: &EventKind, live: bool) {
        let Some(c) = self.conv_mut(id) else {
            return;
        };
        let mut changes = Vec::new();
        if !live && !matches!(kind, EventKind::Topic { .. }) {
            return;
        }
        match kind {
            EventKind::Join => {
                if let Some(n) = c.counted.as_mut() {
                    *n = n.saturating_add(1);
                }
                if let Some(index) = c.members.add(from) {
                    changes.push(Change::MemberAdded {
                        conv: id.clone(),
                        index,
                        nick: from.clone(),
                    });
                }
            }
            EventKind::Part { .. } | EventKind::Quit { .. } => {
                if let Some(n) = c.counted.as_mut() {
                    *n = n.saturating_sub(1);
                }
                if live {
                    c.away.set(from, None);
                }
                if let Some(index) = c.members.remove(from) {
                    changes.push(Change::MemberRemoved {
                        conv: id.clone(),
                        index,
                    });
                }
            }
            EventKind::Nick { new } => {
                // A rename of someone not listed does not invent them.
                if live {
                    c.away.rename(from, new);
                }
                if let Some(index) = c.members.remove(from) {
                    changes.push(Change::MemberRemoved {
                        conv: id.clone(),
                        index,
                    });
                    if let Some(index) = c.members.add(new) {
                        changes.push(Change::MemberAdded {
                            conv: id.clone(),
                            index,
                            nick: new.clone(),
                        });
                    }
                }
            }
            EventKind::Topic { topic } => {
                c.topic = topic.clone();
                changes.push(Change::Topic(id.clone()));
            }
            EventKind::Kick { target, .. } => {
                if let Some(n) = c.counted.as_mut() {
                    *n = n.saturating_sub(1);
                }
                if live {
                    c.away.set(target, None);
                }
                if let Some(index) = c.members.remove(target) {
                    changes.push(Change::MemberRemoved {
                        conv: id.clone(),
                        index,
                    });
                }
            }
            EventKind::Say { .. }
            | EventKind::Act { .. }
            | EventKind::Notice { .. }
            | EventKind::Mode { .. }
            | EventKind::Moved => {}
        }
        if !changes.is_empty() {
            c.revision += 1;
        }
        for change in changes {
            self.log.push(change);
        }
    }

    /// A live rename of someone we have a direct conversation with: the conversation follows
    /// them (what is typed there goes to the new nick) and says so. Seen in each room both are
    /// in, it is done once: later ones find no conversation under the old nick. History
    /// replayed at a join is not followed (the nick may have been someone else's since).
    fn follow_rename(&mut self, ev: &RoomEvent, new: &Nick) {
        let (old, renamed) = (ConvId::direct(&ev.from), ConvId::direct(new));
        if self.conv(&old).is_none() {
            return;
        }
        let words = render::event_words(ev).unwrap_or_default();
        let line = self.make_line(
            ev.at,
            None,
            LineKind::Event {
                who: ev.from.clone(),
                words,
            },
        );
        if old != renamed && self.conv(&renamed).is_some() {
            // Both are open: the old one says where the person went.
            return self.add_line(&old, line);
        }
        if let Some(c) = self.conv_mut(&old) {
            c.rename(renamed.clone(), new.to_string());
        }
        for o in self.outgoing.iter_mut().filter(|o| o.conv == old) {
            o.conv = renamed.clone();
        }
        for r in self.read_before.iter_mut().filter(|r| **r == old) {
            *r = renamed.clone();
        }
        self.log.push(Change::List);
        if self.current == old {
            self.current = renamed.clone();
            self.log.push(Change::Current);
        }
        self.add_line(&renamed, line);
    }

    /// A direct message, or a direct notice (`notice`).
    fn on_direct(&mut self, dm: &DirectMsg, notice: bool) {
        let mine = dm.from.folded() == self.me.folded();
        let peer = if mine { &dm.to } else { &dm.from };
        let id = self.direct_conv(peer);
        if !mine && let Some(c) = self.conv_mut(&id) {
            // The peer's nick as they write it.
            c.set_label(dm.from.to_string());
        }
        // A direct action (`* nick action`, `DirectMsg::action`) is shown as one.
        let act = dm
            .action()
            .filter(|_| !notice)
            .and_then(|a| Text::new(a).ok());
        let kind = match act {
            Some(text) => LineKind::Act {
                from: dm.from.clone(),
                text,
            },
            None if notice => LineKind::UserNotice {
                from: dm.from.clone(),
                text: dm.text.clone(),
            },
            None => LineKind::Say {
                from: dm.from.clone(),
                text: dm.text.clone(),
            },
        };
        let mut line = self.make_line(dm.at, None, kind);
        line.mine = mine;
        line.mention = !mine;
        if !mine {
            self.bump(&id, true);
            self.log.alert(Alert {
                conv: id.clone(),
                from: dm.from.clone(),
                room: None,
                text: dm.text.clone(),
            });
        }
        self.add_line(&id, line);
    }

    fn on_error(&mut self, about: &About, text: &str, now: Millis) {
        // The session cleans what it passes on; the model is the last stop before a screen.
        let text = &sanitize(text);
        let words = render::error_words(about, text);
        let id = match about {
            About::Message(id) => {
                // Shown on the line it refused, once that settles.
                if let Some(o) = self.outgoing.iter_mut().find(|o| o.id == *id) {
                    o.refused = Some(text.to_owned());
                    return;
                }
                self.current.clone()
            }
            About::Part(room) | About::Room(room) => {
                self.here_or_current(ConvId::Room(room.clone()))
            }
            About::Older(room) if self.conv(&ConvId::Room(room.clone())).is_some() => {
                // Said where older lines would go, and asking again may work.
                return self.on_older_failed(room, text);
            }
            About::Older(_) => self.current.clone(),
            About::Search => return self.on_search_failed(text, now),
            // Not an answer to something typed: said once while it stays the same.
            About::Session => {
                return self.notice_in(&self.current.clone(), LineKind::Error(words), now);
            }
            About::Join(_) | About::Nick(_) | About::Input | About::Account => self.current.clone(),
        };
        self.answer_in(&id, LineKind::Error(words), now);
    }

    fn on_queued(&mut self, id: MsgId, to: &Target, kind: ChatKind, text: &Text, now: Millis) {
        let conv = match to {
            // A room not joined yet (typed before the first connection, for the room it will
            // join): shown waiting where it was typed, not in a conversation nobody sees.
            Target::Room(room) => self.here_or_current(ConvId::Room(room.clone())),
            Target::Nick(peer) => self.direct_conv(peer),
        };
        let (from, text) = (self.me.clone(), text.clone());
        let kind = match kind {
            ChatKind::Say => LineKind::Say { from, text },
            ChatKind::Act => LineKind::Act { from, text },
            ChatKind::Notice => LineKind::UserNotice { from, text },
        };
        let mut line = self.make_line(self.stamp(now), None, kind);
        line.mine = true;
        if self.outgoing.len() >= SESSION_MAX_PENDING
            && let Some(old) = self.outgoing.pop_front()
        {
            self.log.push(Change::Outgoing(old.conv));
        }
        self.outgoing.push_back(Outgoing {
            id,
            conv: conv.clone(),
            line,
            since: now,
            looks_pending: self.conn != ConnState::Connected,
            refused: None,
        });
        self.touch(&conv);
        self.log.push(Change::Outgoing(conv));
    }

    /// A typed line settled: delivered, its echo (which came just before) is the real line;
    /// not delivered, it stays as a failed line that says why, where it was typed, and the
    /// person is told where they are if that is elsewhere.
    fn on_settled(&mut self, id: MsgId, delivered: bool, now: Millis) {
        let Some(i) = self.outgoing.iter().position(|o| o.id == id) else {
            return;
        };
        let Some(o) = self.outgoing.remove(i) else {
            return;
        };
        self.log.push(Change::Outgoing(o.conv.clone()));
        if delivered {
            return;
        }
        let why = o.refused.unwrap_or_else(|| render::UNSENT.to_owned());
        let conv = if self.conv(&o.conv).is_some() {
            o.conv.clone()
        } else {
            self.current.clone()
        };
        let mut line = self.make_line(o.line.at, None, o.line.kind.clone());
        line.mine = true;
        line.failed = Some(why.clone());
        self.add_line(&conv, line);
        if conv != self.current
            && self.conn != ConnState::Closed
            && let (
                Some(to),
                LineKind::Say { text, .. }
                | LineKind::Act { text, .. }
                | LineKind::UserNotice { text, .. },
            ) = (o.conv.target(), &o.line.kind)
        {
            let words = render::undelivered_words(&to, text.as_str(), &why);
            self.note_error(words, now);
        }
    }

    // ---- helpers ----

    fn conv_mut(&mut self, id: &ConvId) -> Option<&mut Conv> {
        match id {
            ConvId::Server => Some(&mut self.server),
            ConvId::Room(_) => self.rooms.iter_mut().find(|c| c.id() == id),
            ConvId::Direct(_) => self.directs.iter_mut().find(|c| c.id() == id),
        }
    }

    /// `id` if it exists, else the open conversation.
    fn here_or_current(&self, id: ConvId) -> ConvId {
        if self.conv(&id).is_some() {
            id
        } else {
            self.current.clone()
        }
    }

    /// The direct conversation with `peer`, started if there is none (the stalest one goes
    /// when there are [`CHAT_MAX_DIRECT`]).
    fn direct_conv(&mut self, peer: &Nick) -> ConvId {
        let id = ConvId::direct(peer);
        if self.conv(&id).is_some() {
            return id;
        }
        if self.directs.len() >= CHAT_MAX_DIRECT {
            // The stalest one not open, preferably with nothing waiting to be sent (a line
            // still waiting in a conversation that went settles where the person is).
            let busy: Vec<ConvId> = self.outgoing.iter().map(|o| o.conv.clone()).collect();
            let stalest = self
                .directs
                .iter()
                .enumerate()
                .filter(|(_, c)| *c.id() != self.current)
                .min_by_key(|(_, c)| (busy.contains(c.id()), c.active))
                .map(|(i, _)| i);
            if let Some(i) = stalest {
                self.directs.remove(i);
            }
        }
        self.directs.push(Conv::new(id.clone(), peer.to_string()));
        self.log.push(Change::List);
        self.touch(&id);
        id
    }

    fn touch(&mut self, id: &ConvId) {
        self.next_active += 1;
        let active = self.next_active;
        if let Some(c) = self.conv_mut(id) {
            c.active = active;
        }
    }

    fn set_me(&mut self, nick: &Nick) {
        if *nick != self.me {
            self.me = nick.clone();
            self.log.push(Change::Me);
        }
    }

    fn set_topic(&mut self, id: &ConvId, topic: Option<&Text>) {
        if let Some(c) = self.conv_mut(id) {
            c.topic = topic.cloned();
            c.revision += 1;
            self.log.push(Change::Topic(id.clone()));
        }
    }

    fn make_line(&mut self, at: Millis, seq: Option<Seq>, kind: LineKind) -> Line {
        self.next_line += 1;
        Line {
            id: LineId(self.next_line),
            at,
            seq,
            kind,
            mine: false,
            mention: false,
            failed: None,
        }
    }

    fn add_line(&mut self, id: &ConvId, line: Line) {
        let line_id = line.id;
        let Some(c) = self.conv_mut(id) else {
            return;
        };
        let before = c.scrollback();
        let dropped = c.push(line);
        if c.scrollback() != before {
            // Full now, or the beginning trimmed away.
            self.log.push(Change::Scrollback(id.clone()));
        }
        if dropped > 0 {
            self.log.push(Change::LinesTrimmed {
                conv: id.clone(),
                n: dropped,
            });
        }
        self.log.push(Change::LineAdded {
            conv: id.clone(),
            id: line_id,
        });
        if matches!(id, ConvId::Direct(_)) {
            self.touch(id);
        }
    }

    /// A line of a room's event: one its join replays (`replayed`) goes above the notice of
    /// the join, while that is held ([`Conv::join_mark`]); any other at the end.
    fn add_event_line(&mut self, id: &ConvId, line: Line, replayed: bool) {
        let line_id = line.id;
        let Some(c) = self.conv_mut(id) else {
            return;
        };
        let Some(dropped) = c
            .join_mark
            .filter(|_| replayed)
            .and_then(|mark| c.insert_before(mark, line.clone()))
        else {
            return self.add_line(id, line);
        };
        if dropped > 0 {
            self.log.push(Change::Scrollback(id.clone()));
            self.log.push(Change::LinesTrimmed {
                conv: id.clone(),
                n: dropped,
            });
        }
        self.log.push(Change::LineInserted {
            conv: id.clone(),
            id: line_id,
        });
    }

    /// A room kept from an earlier visit started over (its seqs from 1 again: a memory-only
    /// room dropped when empty and made again, or any room after a restart): its kept lines
    /// are the old room's ([`Conv::made_anew`]), and a notice below them says so, above
    /// everything of the new room: its replay, and its older lines loaded by scrolling up.
    fn started_over(&mut self, id: &ConvId, at: Millis) {
        let ConvId::Room(room) = id else {
            return;
        };
        let words = render::started_over_words(room);
        let line = self.make_line(at, None, LineKind::Notice(words));
        let mark = line.id;
        let Some(c) = self.conv_mut(id) else {
            return;
        };
        c.made_anew();
        c.anew_mark = Some(mark);
        // Below the old lines: before this visit's join notice when that was said already.
        let replayed = c.join_mark.is_some();
        self.add_event_line(id, line, replayed);
    }

    /// A notice or error line; the same one right after itself (one per failed reconnect
    /// attempt) is shown once. Answers to what the person asked go through
    /// [`Chat::answer_in`] instead.
    fn notice_in(&mut self, id: &ConvId, kind: LineKind, now: Millis) {
        if self
            .conv(id)
            .and_then(Conv::last)
            .is_some_and(|l| l.kind == kind)
        {
            return;
        }
        let line = self.make_line(self.stamp(now), None, kind);
        self.add_line(id, line);
    }

    /// The answer to a question or request the person made (`/who`, `/topic`, a refused join):
    /// shown each time, even the same as the line before, so that asking again is answered.
    fn answer_in(&mut self, id: &ConvId, kind: LineKind, now: Millis) {
        let line = self.make_line(self.stamp(now), None, kind);
        self.add_line(id, line);
    }

    /// A chat line from someone else arrived in `id`: unread unless the person is reading it.
    fn bump(&mut self, id: &ConvId, mention: bool) {
        if self.current == *id && self.attention {
            return;
        }
        if let Some(c) = self.conv_mut(id) {
            c.unread = c.unread.saturating_add(1);
            if mention {
                c.mentions = c.mentions.saturating_add(1);
            }
            c.revision += 1;
            self.log.push(Change::Counts(id.clone()));
        }
    }

    fn set_account(&mut self, account: Option<&Nick>) {
        if self.account.as_ref() != account {
            self.account = account.cloned();
            self.log.push(Change::Me);
        }
    }

    /// Signed in: a room's counts are what is above its read position.
    fn recount(&mut self, id: &ConvId) {
        if self.account.is_none() {
            return;
        }
        let Some(c) = self.conv_mut(id) else {
            return;
        };
        let (unread, mentions) = c.count_above(c.read.upto());
        if (unread, mentions) != (c.unread, c.mentions) {
            c.unread = unread;
            c.mentions = mentions;
            c.revision += 1;
            self.log.push(Change::Counts(id.clone()));
        }
    }

    /// The open conversation is read (and, signed in, shown up to its newest line).
    fn mark_read(&mut self) {
        let id = self.current.clone();
        let signed_in = self.account.is_some();
        if let Some(c) = self.conv_mut(&id)
            && signed_in
            && let Some(newest) = c.newest_seq()
        {
            c.read.shown(newest);
        }
        if let Some(c) = self.conv_mut(&id)
            && (c.unread > 0 || c.mentions > 0)
        {
            c.unread = 0;
            c.mentions = 0;
            c.revision += 1;
            self.log.push(Change::Counts(id));
        }
    }

    /// Decides which waiting lines look pending: all while disconnected, and any that has
    /// waited [`PENDING_LOOK_AFTER`] for the server. Once pending-looking, a line stays so until
    /// it settles (no flicker when the connection comes back).
    fn refresh_looks(&mut self, now: Millis) {
        let connected = self.conn == ConnState::Connected;
        let mut changed = Vec::new();
        for o in &mut self.outgoing {
            let look = o.looks_pending || !connected || now.since(o.since) >= PENDING_LOOK_AFTER;
            if look != o.looks_pending {
                o.looks_pending = look;
                if !changed.contains(&o.conv) {
                    changed.push(o.conv.clone());
                }
            }
        }
        for id in changed {
            self.log.push(Change::Outgoing(id));
        }
    }
}

#[cfg(test)]
mod tests;
