//! Every size, count and rate natter enforces, in one place, each with the reason for its value.
//!
//! The shells read these too (the server's read buffer, the bridge's WebSocket frame cap), so a
//! limit is changed here and nowhere else. Runtime-tunable ones are defaults of [`crate::hub::Config`].

use crate::time::Millis;

/// Largest frame payload (after the 4-byte length prefix). Big enough for the largest legal
/// message (a say of [`MAX_TEXT_BYTES`] plus nick, room and header) with room to spare, small
/// enough that a hostile length prefix cannot make anyone allocate much.
pub const MAX_FRAME: usize = 8 * 1024;

/// Longest chat text (say, action, DM, topic, part/quit reason) in UTF-8 bytes. IRC allows ~450;
/// people paste a little more than that, nobody reads more than this in a chat line.
pub const MAX_TEXT_BYTES: usize = 2000;

/// Longest line a text (`nc`/`telnet`) client may send, before its newline. Longer lines are cut
/// here (the rest up to the newline is discarded) and the sender is told.
pub const MAX_LINE_BYTES: usize = 2048;

/// Combining marks kept on one character when text is cleaned (Vietnamese and Thai stack up to
/// three; more is "Zalgo" text drawn over the lines around it).
pub const MAX_COMBINING_RUN: usize = 4;

/// Nick length in bytes (ASCII only, see [`crate::types::Nick`]).
pub const MAX_NICK_LEN: usize = 16;

/// Room name length in bytes, including the leading `#`.
pub const MAX_ROOM_LEN: usize = 32;

/// Rooms one user may be in at once: bounds per-user state and the fan-out of a quit notice.
pub const MAX_ROOMS_PER_USER: usize = 20;

/// Rooms on one server: bounds the hub's memory (each room holds a history ring).
pub const MAX_ROOMS: usize = 10_000;

/// Room events kept per room for replay on join, resume and gap refill.
pub const HISTORY_LEN: usize = 256;

/// History bytes kept across all rooms (events and their frames). Past it, the room being
/// written to drops its oldest events, down to [`HISTORY_MIN_KEPT`]: without a server-wide
/// budget, 10,000 busy rooms of 256 events of 2 KB would pin about 10 GiB.
pub const HISTORY_BUDGET_BYTES: usize = 64 * 1024 * 1024;

/// Events a room keeps whatever the budget says, so a join still shows some context. Bounds the
/// history's worst case at the budget plus `MAX_ROOMS × HISTORY_MIN_KEPT` events.
pub const HISTORY_MIN_KEPT: usize = 8;

/// Of the history, how many events a fresh join replays (the rest is there for resume/refill).
pub const HISTORY_ON_JOIN: usize = 50;

/// Says and actions of one read delivered together (see `Hub::broadcast`): their events wait
/// for the rest of the read, this many at most, so one push per member carries them all. A
/// read of 64 KB holds up to ~1,000 short says; past this many they go in further deliveries.
pub const FANOUT_EVENTS_MAX: usize = 64;

/// Outbound queue per connection, in messages. Past this (or [`OUTBOUND_MAX_BYTES`]) room
/// traffic for that connection is skipped and later summarised by a gap marker.
pub const OUTBOUND_MAX_MSGS: usize = 1024;

/// Outbound queue per connection, in bytes (queued in the hub plus handed to the shell but not
/// yet written to the socket).
pub const OUTBOUND_MAX_BYTES: usize = 256 * 1024;

/// Outbound queues of all connections together, in bytes. Past this, room traffic for a
/// connection whose own backlog is over [`OUTBOUND_PRESSURE_FLOOR`] is skipped (a gap marker
/// follows, as at the per-connection limit): the readers furthest behind give way first, and
/// readers that keep up do not notice. Without it the outbound total is bounded only by
/// connections × [`OUTBOUND_HARD_MAX_BYTES`].
pub const OUTBOUND_TOTAL_MAX_BYTES: usize = 256 * 1024 * 1024;

/// Under [`OUTBOUND_TOTAL_MAX_BYTES`] pressure, a connection may still queue room traffic up to
/// this backlog ([`OUTBOUND_MAX_BYTES`] / 16).
pub const OUTBOUND_PRESSURE_FLOOR: usize = OUTBOUND_MAX_BYTES / 16;

/// Replies (errors, member lists, gap markers) may use this much beyond the room-traffic limit,
/// so a slow reader still hears why things go wrong. Past it the connection is closed.
pub const OUTBOUND_HARD_MAX_BYTES: usize = OUTBOUND_MAX_BYTES + 64 * 1024;

/// Bytes of undecoded input held per connection (a partial frame or line). A frame can't be
/// bigger than this anyway; a text line longer than [`MAX_LINE_BYTES`] is cut.
pub const INBOUND_MAX_BYTES: usize = MAX_FRAME + 4;

/// Flood control, a token bucket per connection: burst size.
pub const FLOOD_BURST: u32 = 10;

/// Flood control: one token refills every this many milliseconds (5 messages/s steady).
pub const FLOOD_REFILL: Millis = Millis(200);

/// Flood control: commands that arrive with the bucket empty wait in a queue this long; when it
/// is full the next one is refused with an error.
pub const FLOOD_QUEUE: usize = 20;

/// Nick changes, a token bucket per connection beside flood control's: burst size. A nick
/// change is one event in each of the user's rooms (up to [`MAX_ROOMS_PER_USER`]), so one
/// flood token each would let a guest in 20 rooms make 100 room events a second; past this a
/// change is refused with the wait in its words (IRC: `438 ERR_NICKTOOFAST`, as hybrid,
/// charybdis and UnrealIRCd answer). Only changes made count, not refused ones. Five, as
/// hybrid's `max_nick_changes`: a person settling on a nick, or a script renaming a test user a
/// few times, never meets it.
pub const NICK_BURST: u32 = 5;

/// Nick changes: one more is allowed every this many milliseconds once the burst is spent
/// (6 a minute steady). Zero turns the limit off.
pub const NICK_REFILL: Millis = Millis(10_000);

/// A connection that has sent nothing for this long gets a ping (binary) so half-open sockets
/// are found.
pub const PING_AFTER: Millis = Millis(30_000);

/// After a ping, the peer has this long to answer before it is dropped.
pub const PING_TIMEOUT: Millis = Millis(15_000);

/// How long after connecting a client has to identify itself: a binary client must have sent its
/// hello by then. Also bounds slowloris handshakes.
pub const HELLO_TIMEOUT: Millis = Millis(10_000);

/// A connection that sends nothing for this long after connecting is taken for a human on
/// `nc`/`telnet` (who waits to be greeted) and gets the text-mode welcome.
pub const TEXT_DETECT_WAIT: Millis = Millis(400);

/// While the server holds input it has not given the hub yet (a storm of connects keeps its
/// queue full), a detection wait that ends is looked at again this much later instead of
/// greeting the connection as a person: its first bytes, read in time, may be in that queue.
/// Short, as the queue moves fast; [`HELLO_TIMEOUT`] bounds how long a greeting can wait.
pub const DETECT_RECHECK: Millis = Millis(10);

/// A ban typed on IRC (`MODE #r +b`) puts out the members it holds this long after, unless a
/// `KICK` of them comes first: irssi's, WeeChat's and HexChat's `/kickban` send the ban and then
/// the kick with the operator's reason, which the room is to see, as on any IRC server. WeeChat
/// sends its second line two seconds after the first; meanwhile the held members say nothing.
pub const BAN_KICK_WAIT: Millis = Millis(3_000);

/// An invitation into a room that nobody used lapses after this long (it lapses sooner when the
/// invited user quits, as on IRC). Invitations live in memory only: a restart ends every session,
/// and with it every invitation.
pub const INVITE_LIFETIME: Millis = Millis(60 * 60 * 1000);

/// A binary user whose connection dropped keeps nick and rooms this long, waiting for a resume.
pub const RESUME_GRACE: Millis = Millis(120_000);

/// How long natter-bridge holds the server connection of a page that was left (its WebSocket
/// closed with [`crate::bridge::LEFT_THE_PAGE`]) before it quits for it: long enough for a
/// reload to come back and resume the session (its `Hello` makes the server probe the held
/// connection, and the bridge then lets go), short enough that a tab closed for good frees its
/// nick and leaves its rooms at once, as far as people can tell, rather than after
/// [`RESUME_GRACE`].
pub const LEFT_PAGE_GRACE: Millis = Millis(5_000);

/// A resume for a session still attached to another connection probes that connection (a
/// keepalive ping) and waits this long: if it answers, the session stays there and the newcomer
/// gets a fresh one; if not, the newcomer takes over. Long enough for a live peer on a slow link
/// to answer, short enough that a client whose old connection died silently is back quickly.
pub const TAKEOVER_PROBE: Millis = Millis(3_000);

/// Users detached and waiting for resume, at most: bounds memory held for the departed.
pub const MAX_DETACHED: usize = 10_000;

/// Users of one address (an IPv6 /64) waiting for a resume at once: a dropped connection keeps
/// its user (and its rooms) for the resume grace, so without a per-address cap a few addresses
/// cycling connect/join/drop would fill [`MAX_DETACHED`] and turn resume off for everyone.
pub const MAX_DETACHED_PER_IP: usize = 20;

/// Rooms one address may create per [`ROOM_CREATE_WINDOW`]: a few addresses creating rooms and
/// dropping would otherwise fill [`MAX_ROOMS`] for everyone. People rarely create more.
pub const MAX_ROOM_CREATES_PER_WINDOW: u32 = 20;

/// Rooms one account may have registered (be the founder of) at once; server admins are not
/// held to it. A registered room outlives its last member and is never reclaimed for a new
/// room, so without a cap one account joining, registering and leaving room after room would
/// fill [`MAX_ROOMS`] for everyone. (Ergo's default `max-channels-per-account` is 15.)
pub const MAX_FOUNDED_PER_ACCOUNT: usize = 20;

/// Window for [`MAX_ROOM_CREATES_PER_WINDOW`].
pub const ROOM_CREATE_WINDOW: Millis = Millis(600_000);

/// Members of one room at once: bounds a broadcast's fan-out and a member list, and keeps one
/// room from taking the whole server.
pub const MAX_ROOM_MEMBERS: usize = 5_000;

/// Above this many members a room is "quiet": joins, parts and quits are no longer announced
/// one by one (each announcement goes to every member, so a crowd arriving costs O(N²): 5,000
/// joins were 12.5 million deliveries) but summed up every [`CROWD_SUMMARY_EVERY`]. As many as
/// a member list holds ([`MAX_MEMBERS_LISTED`]): while every member fits in the list a joiner
/// is given, the joins and parts that follow keep every client's list whole (an IRC client's
/// nick list is only ever its `NAMES` plus the `JOIN`s and `PART`s it saw); past it people read
/// a count and ask for the list. A crowd still costs at most this many announcements to this
/// many members (5,000 joins: 45,000 deliveries, not 12.5 million).
pub const QUIET_ROOM_MEMBERS: usize = MAX_MEMBERS_LISTED;

/// How often a quiet room's members hear how many came and went (when any did): often enough
/// that a count looks live, rarely enough that a summary to every member is cheap.
pub const CROWD_SUMMARY_EVERY: Millis = Millis(5_000);

/// Output for at least this many connections at once is a big fan-out (a message to a big
/// room, or to many rooms at once), paced by [`FANOUT_PACE`] when another follows soon.
pub const PACED_FANOUT: usize = 1024;

/// While big fan-outs follow each other within this interval, each connection with output is
/// handed out at most once per interval, the connections taking turns (oldest output first) at an
/// even rate: a member of a busy big room gets several messages per write instead of one write
/// per message, and every member waits at most this long, not the whole fan-out's time. On a
/// loopback socket a write costs more than a member's whole share of the hub's work, so fewer
/// writes are what a busy big room saves most on (bench/README.md, "Big room, fourth pass"). The
/// first big fan-out after a quiet interval goes out at once: an idle server adds no latency. 0
/// turns pacing off.
pub const FANOUT_PACE: Millis = Millis(24);

/// While a busy big room's members take turns, a server using more than this share of the CPU
/// it may use (in thousandths) stretches [`FANOUT_PACE`], up to [`PACE_STRETCH_MAX`] times: its
/// members then wait longer, in fewer and larger writes, and the server keeps a third of its CPU
/// for everything else instead of spending it all on one room's writes (which cost more on a
/// slower or busier machine). Reported by the shell (`Hub::handle_load`); a shell that does not
/// report paces at exactly `fanout_pace_ms`.
pub const PACE_LOAD_HIGH: u32 = 650;

/// Under this share (thousandths) a stretched pace shrinks back towards [`FANOUT_PACE`].
pub const PACE_LOAD_LOW: u32 = 500;

/// The most [`FANOUT_PACE`] is stretched under load (times).
pub const PACE_STRETCH_MAX: u32 = 4;

/// A node of a cluster paces fan-outs to this many connections already (at
/// [`CLUSTER_FANOUT_PACE`] below [`PACED_FANOUT`]): its members' events come from the room's log
/// a few at a time, each batch a write to every member, where one node alone gets many members'
/// messages per batch; taking turns gives each member several per write again (measured in rooms of 200 over two nodes: the nodes' CPU per message about −20 %,
/// bench/README.md, branch `cl-perf`).
pub const CLUSTER_PACED_FANOUT: usize = 64;

/// The pace of a cluster node's fan-outs from [`CLUSTER_PACED_FANOUT`] up to [`PACED_FANOUT`]
/// (at most [`FANOUT_PACE`]): rooms of a few hundred over a few nodes are where a node's
/// members write back and forth, so they wait less. Measured in rooms of 200 over two nodes:
/// with the big rooms' 24 ms the closed-loop deliveries per second halved (bench/README.md, "Big
/// room, fourth pass").
pub const CLUSTER_FANOUT_PACE: Millis = Millis(8);

/// The wider IPv6 prefix counted on top of the /64 (with 4 × the per-address limits): one site
/// usually gets a /48, so its 65,536 /64s must not count as 65,536 addresses.
pub const IPV6_WIDE_PREFIX: u8 = 48;

/// Connections at once, in total.
pub const MAX_CONNECTIONS: usize = 20_000;

/// Connections at once from one IP address (loopback exempt by default).
pub const MAX_CONNECTIONS_PER_IP: usize = 50;

/// New connections per IP address per [`CONNECT_WINDOW`].
pub const MAX_CONNECTS_PER_WINDOW: u32 = 30;

/// Window for [`MAX_CONNECTS_PER_WINDOW`].
pub const CONNECT_WINDOW: Millis = Millis(10_000);

/// IP addresses tracked for connect-rate limiting: bounds that table under a spoofed-source flood.
pub const MAX_TRACKED_IPS: usize = 65_536;

/// Client side: messages typed but not yet acknowledged by the server, kept for resend after a
/// reconnect. Past this, typing is refused until the connection catches up.
pub const SESSION_MAX_PENDING: usize = 256;

/// Client side: reconnects made at once, without backoff, after the server greeted the client as
/// a person on `nc` (its preamble came after the detection wait: a slow link, a storm of
/// connections). Trying again is all it takes; more in a row means it is no natter server, and
/// the backoff applies. Retrying at once without limit feeds a storm.
pub const QUICK_RECONNECTS: u32 = 3;

/// Client side: reconnect backoff starts here and doubles up to [`RECONNECT_MAX`], with jitter.
pub const RECONNECT_MIN: Millis = Millis(250);

/// Client side: the longest wait between reconnect attempts.
pub const RECONNECT_MAX: Millis = Millis(15_000);

/// Client side: a ping sent on waking (the computer slept, or the network came back) has this
/// long to be answered, not [`PING_TIMEOUT`]: a link that died meanwhile is found within
/// seconds. A live one answers far sooner; one too slow is given up and resumed.
pub const WAKE_PING_TIMEOUT: Millis = Millis(4_000);

/// Client side: a server silent this long gets a ping; silent another [`PING_TIMEOUT`] and the
/// session treats the connection as dead and reconnects.
pub const CLIENT_PING_AFTER: Millis = Millis(20_000);

/// Members listed in a `who` reply or a `joined` message (300 nicks of 16 bytes plus a topic fit
/// in one frame).
pub const MAX_MEMBERS_LISTED: usize = 300;

/// Members a join's notice names (`you are in #rust with 57 others: ann, bob, ... and 47 more`):
/// up to 300 nicks on one line are not read, and `/who` lists them all. Ten fit a terminal's
/// line or two.
pub const JOINED_NAMES_SHOWN: usize = 10;

/// Users whose latest rename or quit natter's line mode remembers, to say each once although it
/// comes through every room shared with them (`chat::LineNews`): the repeats of one come
/// together, within one fan-out, so a few dozen users changing at once are more than enough.
pub const LINE_NEWS_MAX_USERS: usize = 64;

/// How many times a session asks, by signing in, whether a registration whose answer a drop
/// lost went through, each asking lost in a drop too, before it gives the question up and says
/// so (the person signs in to find out): a link that drops each time it is asked does not send
/// the password at every welcome for as long as the program runs.
pub const LOST_REGISTRATION_CHECKS: u32 = 3;

/// How long natter's line mode holds the notice of a join (`-- you are in #rust with: ...`) for
/// the join's replay, which it prints above (`chat::LineNews`), when nothing comes after the
/// replay to end it: the replay comes with the join, so this only bounds the wait.
pub const LINE_JOIN_HELD: Millis = Millis(500);

/// How long line mode holds the notice of a join it asked for (`/join`, `--room`): its replay
/// ends with our own join (a big or quiet room's with the `Crowd` that follows it), which says
/// the notice, so this bounds the wait only for a replay that never comes to its end (a server
/// that stopped answering). Until the forty-second session such a join was held
/// [`LINE_JOIN_HELD`] too, and a replay later than that printed below its notice.
pub const LINE_JOIN_REPLAY_HELD: Millis = Millis(5_000);

/// Rooms listed in a `rooms` reply (fits in one frame).
pub const MAX_ROOMS_LISTED: usize = 100;

/// Rooms listed with their topics in an IRC `LIST` answer: each is one line of at most 512
/// bytes, so the answer stays well inside [`OUTBOUND_HARD_MAX_BYTES`] (a longer one would close
/// the connection that asked as too slow).
pub const MAX_LIST_ROOMS: usize = 250;

/// Longest away message, in UTF-8 bytes (IRC's `AWAYLEN`); a longer one is cut at a character
/// boundary. An away message is repeated in every WHOIS and to every co-member.
pub const MAX_AWAY_BYTES: usize = 200;

/// Members one `AwayHere` (who in a room is away) names at most: with nicks and away messages
/// at their longest ([`MAX_NICK_LEN`], [`MAX_AWAY_BYTES`]) 32 take ~7 KB, inside a frame
/// ([`MAX_FRAME`]); a room with more away gets several.
pub const MAX_AWAY_PER_MSG: usize = 32;

/// Longest IRC line a client may send, without message tags, CR LF included (RFC 1459's 512).
/// Longer lines are refused with `417 ERR_INPUTTOOLONG`.
pub const IRC_MAX_LINE: usize = 512;

/// Longest IRC line with message tags in front (IRCv3 message-tags: 4,096 bytes of tags plus the
/// 512-byte message, CR LF and the space between, less one).
pub const IRC_MAX_TAGGED_LINE: usize = 8191;

/// Most bytes of message tags an IRC client may send in front of a line, between the `@` and
/// the space (IRCv3 message-tags: clients send at most 4,094 bytes of tag data, servers refuse
/// more with `417 ERR_INPUTTOOLONG`). A `TAGMSG`'s client-only tags are relayed to every
/// member of a room as sent, so this bounds what one line makes the server write per member.
pub const IRC_MAX_CLIENT_TAGS: usize = 4094;

/// Mode changes one IRC `MODE #room` line makes (`MODES`, in `005`): those past it are left
/// out, as solanum leaves out those past its `MODES`. Each is an operator's action of its own.
pub const IRC_MAX_MODES: usize = 8;

/// Targets one IRC `PRIVMSG`/`NOTICE`/`TAGMSG` may name (`TARGMAX`): each is a request of its own, all
/// for one flood-control token.
pub const IRC_MAX_TARGETS: usize = 4;

/// Rooms one IRC `JOIN`/`PART` line may name; more would cost one token for many requests.
pub const IRC_MAX_JOIN_TARGETS: usize = MAX_ROOMS_PER_USER;

/// Longest user name an IRC client's `USER` gives that natter keeps (IRC's `USERLEN`); a longer
/// one is cut, as IRC servers cut it. It is shown (after a `~`: no ident is checked) in WHO,
/// WHOIS and WHOWAS.
pub const IRC_MAX_USERNAME: usize = 16;

/// Longest real name an IRC client's `USER` gives, in UTF-8 bytes; a longer one is cut at a
/// character boundary. It is repeated in every WHO and WHOIS line about the user and kept in
/// WHOWAS, so it stays short (Solanum's `REALLEN` is 50).
pub const IRC_MAX_REALNAME: usize = 64;

/// The longest `label` an IRC connection remembers for a message's late refusal (a store that
/// could not write it): a few per connection are kept while it lives, and clients' labels are
/// short counters. A longer one's late refusal comes unlabeled.
pub const IRC_MAX_KEPT_LABEL: usize = 64;

/// Longest topic an IRC client sets, in UTF-8 bytes (`TOPICLEN`): about what fits in a `332`
/// to a 16-byte nick for a 32-byte channel with room to spare. A longer one is cut there at a
/// character boundary, as solanum and ergo cut it; natter's other doors set topics of up to
/// [`MAX_TEXT_BYTES`], which IRC's `332` shows cut to the line.
pub const IRC_TOPICLEN: usize = 390;

/// Users one IRC `WHO` with a mask (`WHO *`, `WHO al*`) lists at most: each is a line of up to
/// ~200 bytes, so a `WHO *` on a server of 100,000 users answers ~40 KB, not megabytes (a
/// channel's `WHO` is bounded by [`MAX_MEMBERS_LISTED`]).
pub const IRC_MAX_WHO_MATCHES: usize = 200;

/// Longest mask an IRC `WHO` matches, in bytes: longer than anything it could match (a real
/// name of [`IRC_MAX_REALNAME`] bytes) with room for `*`s. It bounds the glob's work per user
/// (the matcher may try each position of the mask against each of the text: 80 × 64 steps at
/// worst); a longer one is answered with its `315` alone.
pub const IRC_MAX_WHO_MASK: usize = 80;

/// Longest part of a name a client gave that an IRC numeric echoes back (a refused nick, channel,
/// target or mask), in bytes; the rest is cut. Every valid name, key and `WHO` mask fits
/// ([`IRC_MAX_WHO_MASK`]), and a numeric echoing three of them still fits [`IRC_MAX_LINE`]:
/// before this a 490-byte `NICK` was answered with a 568-byte `432`, a line IRC clients may refuse.
pub const IRC_MAX_ECHOED: usize = 100;

/// Most nicks one IRC connection may `MONITOR` (its `MONITOR=` in the welcome): bounds the
/// hub's lists at this many per IRC connection; a `MONITOR +` past it is `734` for the rest.
pub const IRC_MONITOR_MAX: usize = 100;

/// Records of nicks that were given up (a quit or a nick change) the hub keeps for IRC's
/// `WHOWAS`, oldest forgotten first: each is ~200 bytes at most (nick, user name, real name,
/// time), so the whole memory stays under ~100 KB however many users come and go.
pub const WHOWAS_LEN: usize = 512;

/// Records one `WHOWAS` answers at most (a count of 0 or less, or a larger one, asks for all).
pub const WHOWAS_MAX_REPLIES: usize = 32;

// ---- server side, not tunable ----

/// Connections refused at admission but not yet closed, at most; past this `accept` returns
/// `Refused::Overloaded` (telling them costs memory and time; a flood gets nothing).
pub const MAX_REFUSED_PENDING: usize = 1024;

// ---- client side (the Session) ----

/// Events queued for the driver, at most. A driver drains after every call, so this is only
/// reached by one that stopped draining; then events are counted and dropped, and the UI is told.
pub const MAX_QUEUED_EVENTS: usize = 16_384;

/// Transmits queued for the driver, at most. Past it the transport is not keeping up: it is
/// closed and the session reconnects (unacknowledged messages are resent, nothing is lost).
pub const MAX_QUEUED_TRANSMITS: usize = 1024;

/// Commands other than messages (`/nick`, `/who`, ...) typed before the welcome, kept to send
/// after it.
pub const MAX_DEFERRED: usize = 32;

/// Commands (not messages: those wait in the pending list) held back by the session's own flood
/// pacing. Covers a welcome's rejoins and parts plus deferred commands, with room for typing.
pub const MAX_PACED_COMMANDS: usize = 2 * MAX_ROOMS_PER_USER + MAX_DEFERRED + 32;

/// Gaps per room whose refill is still awaited. Older ones are forgotten (their refill events
/// are then dropped as duplicates would be), which only costs the user a refill.
pub const MAX_OPEN_GAPS: usize = 16;

/// How long a connection attempt may take, from `Event::Connect` to the server's welcome,
/// before it counts as failed (a black-holed TCP connect can hang for minutes, and something
/// that is not a natter server may accept and never answer).
pub const CONNECT_TIMEOUT: Millis = CLIENT_PING_AFTER;

/// Events in one answer to a scrollback request (`Older`) or one page read from the store.
pub const HISTORY_PAGE_MAX: usize = 200;

/// Hits in one search's answer.
pub const SEARCH_MAX_RESULTS: usize = 50;

/// Hits a search asks its store (or the rooms' rings) for: one more than it sends, so that the
/// answer can say whether older matches were left out (`FoundEnd`'s `count` past the hits sent)
/// without counting every match.
pub const SEARCH_LOOKED_FOR: usize = SEARCH_MAX_RESULTS + 1;

/// Lines `/history` shows when no number is given.
pub const HISTORY_LINES_DEFAULT: u16 = 20;

/// Client side: older lines one scroll to the top of a room (or PgUp at its top) asks for: a
/// few screens' worth, in one answer well within [`HISTORY_PAGE_MAX`].
pub const SCROLLBACK_PAGE: u16 = 100;

/// Lines one IRC `CHATHISTORY` may ask for (`CHATHISTORY=` in ISUPPORT): a scrollback page.
pub const HISTORY_WINDOW_MAX: usize = SCROLLBACK_PAGE as usize;

/// Store reads (history pages and searches) waiting for an answer, at most, across the hub:
/// past it a request is answered "busy, try again" (`Error{Unavailable}`).
pub const MAX_QUERIES_IN_FLIGHT: usize = 1024;

/// Client side: the largest flood burst a server's welcome may announce that the session believes
/// (a hostile or broken server cannot make it send in one huge burst).
pub const MAX_ANNOUNCED_BURST: u32 = 1_000;

/// Client side: the slowest flood refill a server's welcome may announce that the session
/// believes (a hostile or broken server cannot make it wait for hours between lines).
pub const MAX_ANNOUNCED_REFILL: Millis = Millis(5_000);

/// Longest server-sent detail or reason passed on to the UI, in characters.
pub const MAX_DETAIL_CHARS: usize = 500;

// ---- client side (the chat model) ----

/// Lines the chat model keeps per conversation; older ones are dropped from the client's memory,
/// not from the server's history. A screenful many times over, a few hundred KiB per room.
pub const CHAT_MAX_LINES: usize = 2000;

/// Direct conversations the chat model keeps; past it, the least recently active one goes.
pub const CHAT_MAX_DIRECT: usize = 50;

/// Members the chat model lists per room: a `who` lists at most [`MAX_MEMBERS_LISTED`]; joins
/// seen live may add some more.
pub const CHAT_MAX_MEMBERS: usize = 4 * MAX_MEMBERS_LISTED;

/// Changes the chat model logs for a front end that has not read them; past it the log becomes
/// one "redraw everything" (a front end that keeps up never gets near it).
pub const CHAT_MAX_CHANGES: usize = 4096;

/// Alerts (mentions, direct messages) kept for a front end that has not read them; the oldest
/// go first.
pub const CHAT_MAX_ALERTS: usize = 32;

/// Lines the chat model holds from the server's conversation to show in the first room that
/// opens: a message of the day ([`crate::hub::MAX_MOTD_LINES`], 20) and the session's few words
/// (why the nick is another, a sign-in's news). Past it the rest stays in the server's
/// conversation only.
pub const CHAT_MAX_HELD: usize = 32;

/// Rooms the chat model keeps the lines of after leaving them, to show again if the room is
/// joined again (a guest's `/login` leaves its rooms and joins them as the account; a `/part`
/// then `/join`): the most recently left. Up to [`CHAT_MAX_LINES`] lines each.
pub const CHAT_MAX_LEFT: usize = 8;

/// Conversations the chat model remembers having been read before the open one (most recent
/// last): leaving the open one goes back to the most recent still there, as irssi and WeeChat
/// go back to the previous window.
pub const CHAT_MAX_READ_BEFORE: usize = 8;

/// A line we typed looks pending (greyed, "sending") once it has waited this long for the
/// server's echo, or at once while disconnected: a live echo takes milliseconds, so a line
/// that is merely on its way does not flicker, and one that is stuck says so.
pub const PENDING_LOOK_AFTER: Millis = Millis(1_000);

// ---- the durable store (natter-store) ----

/// A room's read marker is told to the server at most once per this while the person reads
/// along (and at once when they leave the room): a busy room would otherwise cost a message
/// per line shown, on every device of the account.
pub const READ_DEBOUNCE: Millis = Millis(1_000);

/// Words of a search that count; the rest of a longer query is ignored. Every word is one more
/// index lookup to intersect, and nobody finds a chat line by its 33rd word.
pub const SEARCH_MAX_WORDS: usize = 32;

/// Shortest password accepted, in characters (OWASP's minimum for a password alone).
pub const PASSWORD_MIN_CHARS: usize = 8;

/// Longest password accepted, in bytes: hashing cost does not depend on it past this, and a
/// megabyte "password" is an attack, not a secret.
pub const PASSWORD_MAX_BYTES: usize = 256;

/// Password hashes (argon2id) the server computes at once; more sign-ins wait their turn, and
/// past [`MAX_WORK_QUEUED`] are refused as [`crate::wire::ErrorKind::Unavailable`].
pub const MAX_WORK_QUEUED: usize = 64;

/// Accounts, or addresses, whose failed sign-ins the hub remembers at once for throttling.
pub const MAX_THROTTLED: usize = 10_000;

/// Addresses (an IPv6 /64 as one) remembered per account as ones its owner signed in from
/// lately, whose tries at it are held by its own throttle rather than the address's: home, work,
/// a lab, a phone's carrier or two. The one signed in from longest ago goes first, so an owner
/// who roams loses only the sparing at an old place (its next sign-in there is held by the
/// address's waits, as everyone's was before). Bounded per account, and only a sign-in that
/// proved the account adds one, so the table grows with the accounts (each at most this), never
/// with what strangers send.
pub const MAX_KNOWN_ADDRESSES: usize = 8;

/// Device keys one account may hold (the oldest is revoked past this).
pub const MAX_DEVICE_KEYS: usize = 32;

/// Longest device label (`natter on laptop`, `Chromium on Linux`), in UTF-8 bytes after
/// cleaning: a name to tell an account's devices apart at a glance, one line of `/devices`
/// with the id, dates, door and address beside it. 64 bytes holds a hostname of the usual
/// length after `natter on `, and 32 labels at most (one per key, [`MAX_DEVICE_KEYS`]) keep a
/// `Devices` answer a few kilobytes.
pub const MAX_DEVICE_LABEL_BYTES: usize = 64;

/// Direct messages kept for an account with nothing connected, until it signs in again: one
/// more is refused, telling the sender to try once the account is back (a sender cannot fill
/// an account's store without bound).
pub const MAX_HELD_DIRECTS: usize = 100;

/// The default of `[accounts] kept_bytes`: bytes of direct messages kept for accounts with
/// nothing connected, all accounts together (each message counted as its text plus
/// [`HELD_DIRECT_OVERHEAD`]): past it one more is refused, so that messages to many offline
/// accounts cannot grow the server's memory without bound. 16 MiB: thousands of full inboxes
/// of ordinary messages.
pub const MAX_HELD_DIRECT_BYTES: usize = 16 << 20;

/// What a kept direct message costs besides its text (nicks, times, the list's slot), for
/// [`MAX_HELD_DIRECT_BYTES`].
pub const HELD_DIRECT_OVERHEAD: usize = 128;

/// While a connection's flood queue is full, the shell reads its socket at most once per this
/// (and again at once when a token frees a place): a flood then costs the server at most about
/// 50 reads a second per connection, each decoded and refused in words, instead of whatever the
/// sender can push. Short enough that a burst of refused messages is answered within seconds.
pub const FLOOD_READ_GAP: Millis = Millis(20);

/// After a batch fails, the next one (which writes again what the failed one held: sessions,
/// presence, accounts, the seqs it gave out) is handed out at once; after a second failure in
/// a row it waits this long, doubled for each further one up to [`STORE_RETRY_MAX`]: a full
/// disk then costs a few attempts a second, not a loop as fast as the store can fail. Lines
/// typed meanwhile go with it.
pub const STORE_RETRY_MIN: Millis = Millis(50);

/// The longest wait before the batch after a streak of failed ones (see [`STORE_RETRY_MIN`]).
pub const STORE_RETRY_MAX: Millis = Millis(1_000);
