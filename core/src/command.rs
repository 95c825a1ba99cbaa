//! The one slash-command parser, used by the hub for text-mode (`nc`) users and by the client
//! session for the CLI and the page. A typed line is either chat for the current room or a
//! `/command`; `//text` says `/text` literally.

use crate::moderation::{ModeChange, parse_duration, reason};
use crate::types::{DeviceLabel, InvalidName, Nick, Password, RoomName, Text};
use crate::wire::{AdminAction, ModAction};
use thiserror::Error;

/// A typed line, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Chat for the current room.
    Say(Text),
    /// A command.
    Command(Command),
}

/// A slash command. Names are the protocol's words (see [`HELP`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/nick NAME`
    Nick(Nick),
    /// `/join #room`
    Join(RoomName),
    /// `/part #a,#b [reason]`: several rooms, left in that order with the same reason.
    PartMany {
        /// The rooms.
        rooms: Vec<RoomName>,
        /// Reason.
        reason: Option<Text>,
    },
    /// `/join #a #b` or `/join #a,#b`: several rooms, joined in that order (at most
    /// [`crate::limits::IRC_MAX_JOIN_TARGETS`]); the last becomes the current one.
    JoinMany(Vec<RoomName>),
    /// `/part [#room] [reason]`: the current room when none is named.
    Part {
        /// Room, or the current one.
        room: Option<RoomName>,
        /// Reason.
        reason: Option<Text>,
    },
    /// `/msg NICK text`
    Msg {
        /// Recipient.
        to: Nick,
        /// Text.
        text: Text,
    },
    /// `/msg #room text`: a line said in that room, whatever conversation is open (IRC's
    /// `PRIVMSG #room`).
    SayIn {
        /// The room.
        room: RoomName,
        /// Text.
        text: Text,
    },
    /// `/me text`
    Me(Text),
    /// `/notice #room text`: a notice to a room, a line that asks for no answer (IRC's
    /// `NOTICE`; bots never answer one).
    Notice {
        /// Where.
        room: RoomName,
        /// Text.
        text: Text,
    },
    /// `/notice nick text`: a direct notice.
    NoticeTo {
        /// Recipient.
        to: Nick,
        /// Text.
        text: Text,
    },
    /// `/who [#room]`
    Who(Option<RoomName>),
    /// `/whois nick`: what is known of someone (IRC's `WHOIS`).
    Whois(Nick),
    /// `/rooms`
    Rooms,
    /// `/topic [#room] [text]`: without text, shows the topic.
    Topic {
        /// Room, or the current one.
        room: Option<RoomName>,
        /// New topic, or `None` to show it.
        topic: Option<Text>,
    },
    /// `/topic [#room] -delete` (irssi's and WeeChat's word): clears the topic (the room, or the
    /// current one).
    ClearTopic(Option<RoomName>),
    /// `/away text`: away with that message; `/away` alone or `/back`: no longer away (IRC's
    /// `AWAY`).
    Away(Option<Text>),
    /// `/quit [reason]`
    Quit(Option<Text>),
    /// `/history [#room] [N]`: the N lines before the oldest shown (default
    /// [`crate::limits::HISTORY_LINES_DEFAULT`]).
    History {
        /// Room, or the current one.
        room: Option<RoomName>,
        /// How many lines.
        count: Option<u16>,
    },
    /// `/search [#room] words`
    Search {
        /// Only this room, or every room one is in.
        room: Option<RoomName>,
        /// The words.
        words: Text,
    },
    /// `/help [command]`: every command, or only the one named (its name as [`HELP`] writes
    /// it, `/join`; an alias typed, `/help j`, names its command).
    Help(Option<&'static str>),
    /// `/register PASSWORD`: registers the current nick as an account.
    Register(Password),
    /// `/login NICK PASSWORD`
    Login {
        /// The account.
        account: Nick,
        /// Its password.
        password: Password,
    },
    /// `/logout`
    Logout,
    /// `/devices`: the account's remembered devices.
    Devices,
    /// `/devices forget ID`: sign the remembered device `ID` out for good.
    ForgetDevice(u32),
    /// `/devices name ID LABEL`: call the remembered device `ID` `LABEL`.
    NameDevice(u32, DeviceLabel),
    /// `/password OLD NEW`
    ChangePassword {
        /// The current password (one word).
        old: Password,
        /// The new one (the rest of the line).
        new: Password,
    },
    /// `/join #room KEY`: a room with a key.
    JoinKey {
        /// Room.
        room: RoomName,
        /// Its key.
        key: Text,
    },
    /// A server admin's action (`/kill`, `/wall`, `/gban`, `/gunban`, `/gbans`, `/takeover`,
    /// `/close`).
    Admin(AdminAction),
    /// A founder's or operator's action (`/register #room`, `/op`, `/kick`, `/ban`, `/mute`,
    /// `/invite`, `/mode`...), in the named room or the current one.
    Moderate {
        /// Room, or the current one.
        room: Option<RoomName>,
        /// What.
        action: ModAction,
    },
}

/// Why a line is not a valid command. The `Display` text is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    /// `/frobnicate`
    #[error("unknown command /{0} (try /help; to say a line that starts with /, type it as //)")]
    Unknown(String),
    /// `/jion`: no such command, but one a letter from it (a typo), named for the
    /// user to type instead.
    #[error(
        "unknown command /{typed}: did you mean {meant}? (/help lists them; to say a line that \
         starts with /, type it as //)"
    )]
    Typo {
        /// What was typed, cleaned.
        typed: String,
        /// The command it is nearest (`/join`).
        meant: &'static str,
    },
    /// `/help frobnicate`: no such command to help with (until the thirty-first session it
    /// read as the unknown command `/frobnicate`, as if one had typed it).
    #[error("there is no command /{0} to help with; /help lists them all")]
    NoHelp(String),
    /// Right command, wrong arguments.
    #[error("usage: {0}")]
    Usage(&'static str),
    /// An argument failed validation.
    #[error("{0}")]
    Invalid(#[from] InvalidName),
    /// An argument that does not read (a duration, a mode); the words say why.
    #[error("{0}")]
    Bad(String),
}

/// Every command with its usage and what it does, in the order `/help` lists them.
pub const HELP: &[(&str, &str)] = &[
    (
        "/join #room [key]",
        "join a room (created if new) and make it current; several: /join #a #b",
    ),
    (
        "/part [#room] [reason]",
        "leave a room (default: the current one); several: /part #a #b",
    ),
    (
        "/msg nick|#room text",
        "send a direct message (to a room: say it there)",
    ),
    ("/me text", "an action: * you text"),
    (
        "/notice #room|nick text",
        "a notice: -you- text, a line asking for no answer",
    ),
    ("/nick name", "change your nick"),
    (
        "/away [text]",
        "say you are away (others see it); alone: back",
    ),
    ("/back", "no longer away"),
    (
        "/who [#room]",
        "a room's members (~founder, @operator, +voiced)",
    ),
    ("/whois nick", "account, away, rooms you share, idle, TLS"),
    ("/rooms", "list rooms"),
    ("/topic [#room] [text]", "show or set the topic"),
    ("/topic [#room] -delete", "clear the topic"),
    (
        "/history [#room] [N]",
        "show N earlier lines (default 20, at most 200)",
    ),
    (
        "/search [#room] words",
        "find stored lines with every word (the newest 50)",
    ),
    ("/register password", "register your nick as an account"),
    ("/login nick password", "sign in to your account"),
    ("/logout", "sign out on this connection"),
    (
        "/devices",
        "your remembered devices, where and when last used",
    ),
    (
        "/devices forget ID",
        "sign a lost laptop out; the password stays",
    ),
    (
        "/devices name ID label",
        "name a device for /devices (\"work laptop\")",
    ),
    (
        "/password old new",
        "change your account's password (an old one with spaces in \"double quotes\")",
    ),
    (
        "/register #room",
        "register a room you are in: you become its founder",
    ),
    (
        "/op [#room] nick",
        "make a signed-in member an operator (founder)",
    ),
    ("/deop [#room] nick", "take operator status away (founder)"),
    ("/voice [#room] nick", "let a member speak in a +m room"),
    ("/devoice [#room] nick", "take that away"),
    (
        "/kick [#room] nick [reason]",
        "put a member out of the room",
    ),
    (
        "/ban [#room] nick|mask [30m|2h|7d] [reason]",
        "ban (masks: account:NAME, nick:NAME, a.b.c.d/N)",
    ),
    (
        "/unban [#room] nick|mask",
        "lift a ban (a nick: what /ban nick set)",
    ),
    ("/bans [#room]", "list bans and mutes"),
    (
        "/mute [#room] nick|mask [duration]",
        "a muted member reads but does not speak",
    ),
    (
        "/unmute [#room] nick|mask",
        "lift a mute (a nick: what /mute nick set)",
    ),
    (
        "/invite nick [#room]",
        "invite someone (into a +i room: operators only)",
    ),
    (
        "/mode [#room] [+i|-i|+k key|-k|+m|-m|+t|-t|+l N|-l]",
        "show or change the room's settings",
    ),
    ("/kill nick [reason]", "server admins: disconnect someone"),
    ("/wall text", "server admins: a notice to everyone"),
    (
        "/gban nick|mask [duration] [reason]",
        "server admins: ban from the server",
    ),
    ("/gunban mask", "server admins: lift a server ban"),
    ("/gbans", "server admins: list server bans"),
    (
        "/takeover #room",
        "server admins: become the room's founder",
    ),
    (
        "/close #room [reason]",
        "server admins: empty the room and unregister it",
    ),
    ("//text", "say a line that starts with / (//etc says /etc)"),
    ("/quit [reason]", "leave"),
    ("/help [command]", "this list, or what one command does"),
];

/// `/help`'s lines as a client shows them: each usage, padded, and what it does; with a
/// command's name (`/register`), only that command's lines. A usage longer than the column is
/// followed by two spaces: with one, `/kick [#room] nick [reason] put a member out` read as
/// if `put` were an argument.
pub fn help_lines(only: Option<&str>) -> impl Iterator<Item = String> {
    HELP.iter()
        .filter(move |(usage, _)| only.is_none_or(|name| usage.split(' ').next() == Some(name)))
        .map(|(usage, what)| match usage.len() {
            ..24 => format!("{usage:<24} {what}"),
            _ => format!("{usage}  {what}"),
        })
}

/// The command a typed name means (`join`, `/j`, `LEAVE`), as [`HELP`] names it (`/join`),
/// for `/help NAME`.
fn command_named(typed: &str) -> Option<&'static str> {
    let typed = typed
        .strip_prefix('/')
        .unwrap_or(typed)
        .to_ascii_lowercase();
    let name = match typed.as_str() {
        "j" => "join",
        "leave" => "part",
        "dm" | "query" => "msg",
        "names" => "who",
        "list" => "rooms",
        "hist" => "history",
        "find" => "search",
        "exit" => "quit",
        "identify" => "login",
        "passwd" => "password",
        "?" => "help",
        other => other,
    };
    HELP.iter()
        .filter_map(|(usage, _)| usage.split(' ').next())
        .find(|u| u.strip_prefix('/') == Some(name))
}

/// The command a mistyped name is nearest (`jion`, `hlep`, `whios`, `nikc`): one letter
/// wrong, missing, extra or two swapped, the first in [`HELP`]'s order when several are. `None`
/// for anything further (two edits would name `/quit` for IRC's `/quote` and `/register` for
/// `/unregister`), and for what looks like a path (`/usr/bin`), which was meant to be said.
fn nearest_command(typed: &str) -> Option<&'static str> {
    if typed.is_empty() || typed.len() > 20 || !typed.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    names().find(|name| typo_distance(typed, name.trim_start_matches('/')) <= 1)
}

/// The edits between two short ASCII words: a letter changed, added or dropped, or two side
/// by side swapped, one each (optimal string alignment).
fn typo_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * w + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let same = usize::from(!a[i - 1].eq_ignore_ascii_case(&b[j - 1]));
                let mut v = (d[(i - 1) * w + j] + 1)
                    .min(d[i * w + j - 1] + 1)
                    .min(d[(i - 1) * w + j - 1] + same);
                if i > 1
                    && j > 1
                    && a[i - 1].eq_ignore_ascii_case(&b[j - 2])
                    && a[i - 2].eq_ignore_ascii_case(&b[j - 1])
                {
                    v = v.min(d[(i - 2) * w + j - 2] + 1);
                }
                v
            };
        }
    }
    d[a.len() * w + b.len()]
}

/// What `/clear` asks for: IRC clients' command, which a front end answers itself (nothing
/// goes to the server; the session knows no `/clear`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clear {
    /// `/clear`: the open conversation's lines go.
    Open,
    /// `/clear all` (or irssi's `/clear -all`): every conversation's.
    All,
    /// Something else after it: say how it is typed.
    Usage,
}

/// Whether `line` is `/clear` (in any case), and what it asks for; `//clear` is said, not run.
pub fn clear(line: &str) -> Option<Clear> {
    let rest = line.trim().strip_prefix('/')?;
    let (word, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !word.eq_ignore_ascii_case("clear") {
        return None;
    }
    Some(match args.trim() {
        "" => Clear::Open,
        a if a.eq_ignore_ascii_case("all") || a.eq_ignore_ascii_case("-all") => Clear::All,
        _ => Clear::Usage,
    })
}

/// The commands a front end with conversations (the TUI, the page) answers itself, which the
/// session's list ([`names`]) does not hold: Tab completes them too, before the session's.
pub const OWN_COMMANDS: [&str; 2] = ["/clear", "/query"];

/// What `/query` asks of a front end with conversations: IRC clients' way to open a
/// conversation with someone. The session alone reads `/query nick text` as `/msg` (it has no
/// conversations to open) and `/query nick` as a usage error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `/query nick`: the direct conversation with nick opens; nothing is sent.
    Open(Nick),
    /// `/query nick text`: it opens, and the line goes to the session (a `/msg nick text`).
    OpenAndSend(Nick),
    /// `/query` alone: say how it is typed ([`QUERY_USAGE`]).
    Usage,
    /// `/query b@d` (nothing after it): why the word is no nick, to say (the session would
    /// say `/msg`'s usage, a command the person did not type).
    NotANick(String),
}

/// How `/query` is typed, said when it comes alone.
pub const QUERY_USAGE: &str = "usage: /query nick [text] (opens the direct conversation with nick)";

/// Whether `line` is `/query` (in any case), and what it asks for; `//query` is said, not run.
/// A first word that is no nick with text after it (`/query #room text`, a mistyped nick) is
/// the session's to answer (a line said in the room, or why the nick is not one): `None`;
/// without text, why it is no nick ([`Query::NotANick`]).
///
/// As for the session ([`parse`]), a line with a space before its `/` is text, not `/query`
/// (read as one, ` /query bob hi` opened bob's conversation and sent it the whole line).
pub fn query(line: &str) -> Option<Query> {
    let rest = strip_leading_keys(line).trim_end().strip_prefix('/')?;
    let (word, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !word.eq_ignore_ascii_case("query") {
        return None;
    }
    let args = args.trim();
    if args.is_empty() {
        return Some(Query::Usage);
    }
    let (nick, text) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
    let nick = match Nick::new(nick) {
        Ok(nick) => nick,
        Err(e) if text.trim().is_empty() => {
            return Some(Query::NotANick(CommandError::from(e).to_string()));
        }
        Err(_) => return None,
    };
    Some(if text.trim().is_empty() {
        Query::Open(nick)
    } else {
        Query::OpenAndSend(nick)
    })
}

/// `/help query`'s line for a front end with conversations, lined up as [`help_lines`] lines
/// them: the session's `/help query` is `/msg`'s (to it `/query` is `/msg`), which says nothing
/// of the conversation `/query` opens there.
pub const QUERY_HELP: &str =
    "/query nick [text]       open the direct conversation with nick (text: say it there too)";

/// Whether `line` is `/help query` (or `/help /query`, in any case): what a front end with
/// conversations answers with [`QUERY_HELP`].
pub fn help_query(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let help = words
        .next()
        .and_then(|w| w.strip_prefix('/'))
        .is_some_and(|w| w.eq_ignore_ascii_case("help") || w == "?");
    let topic = words.next().map(|w| w.strip_prefix('/').unwrap_or(w));
    help && topic.is_some_and(|t| t.eq_ignore_ascii_case("query")) && words.next().is_none()
}

/// Whether `line` is `/part` (or `/leave`) naming no room: typed in a direct conversation, a
/// front end with conversations closes it ([`crate::chat::Chat::typed`]).
pub fn part_here(line: &str) -> bool {
    matches!(
        parse(line),
        Ok(Some(Input::Command(Command::Part { room: None, .. })))
    )
}

/// Whether a typed line carries a password (`/register`, `/login`, `/password`), which a client
/// keeps out of its input history, so that Up does not show it to whoever looks next.
pub fn carries_password(line: &str) -> bool {
    let Some(rest) = line.trim_start().strip_prefix('/') else {
        return false;
    };
    let (name, args) = word(rest);
    match name.to_ascii_lowercase().as_str() {
        "register" => !args.trim_start().starts_with('#'),
        "login" | "identify" | "password" | "passwd" => true,
        _ => false,
    }
}

/// The commands' names (`/join`, `/part`, ...), once each, in the order `/help` lists them:
/// what Tab completes a `/` at the start of the input line to.
pub fn names() -> impl Iterator<Item = &'static str> {
    HELP.iter().enumerate().filter_map(|(i, (usage, _))| {
        let name = usage.split(' ').next()?;
        let first = HELP[..i]
            .iter()
            .all(|(u, _)| u.split(' ').next() != Some(name));
        (first && !name.starts_with("//")).then_some(name)
    })
}

/// What follows the nick in the nc welcome: short, so a guest's welcome fits an 80-column
/// terminal (`/help` lists every command).
pub const HELP_LINE: &str = "Type to talk. /help lists commands; /quit leaves.";

/// A remembered device's id as `/devices` shows it: 1 to 8 hex digits.
fn device_id(id: &str) -> Option<u32> {
    if id.is_empty() || id.len() > 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(id, 16).ok()
}

fn usage(name: &str) -> &'static str {
    HELP.iter()
        .find(|(u, _)| u.split(' ').next() == Some(name))
        .map(|(u, _)| *u)
        .unwrap_or("/help")
}

/// `/password`'s old password and the rest: the first word, or what stands between double
/// quotes when it has spaces (`/register` takes a passphrase whole: `"correct horse" new`).
/// Quotes that do not close before a space are part of a one-word password.
fn old_password(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    if let Some(quoted) = s.strip_prefix('"')
        && let Some(end) = quoted
            .char_indices()
            .find(|&(i, c)| {
                c == '"'
                    && quoted[i + 1..]
                        .chars()
                        .next()
                        .is_none_or(char::is_whitespace)
            })
            .map(|(i, _)| i)
    {
        return (&quoted[..end], quoted[end + 1..].trim_start());
    }
    word(s)
}

/// Splits off the first whitespace-separated word.
fn word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

fn opt_text(s: &str) -> Result<Option<Text>, CommandError> {
    if s.trim().is_empty() {
        Ok(None)
    } else {
        Ok(Some(Text::new(s.trim_end())?))
    }
}

/// `[#room] [text]`: a first word starting with `#` is the room, the rest (if any) the text.
/// Whether `/join`'s arguments name several rooms: `#a,#b`, or words after the first that all
/// look like rooms (`/join #a #b`; `/join #a key` is a room and its key).
fn several_rooms(args: &str) -> bool {
    let mut words = args.split_whitespace();
    let first = words.next().unwrap_or("");
    let rest: Vec<&str> = words.collect();
    if rest.is_empty() {
        first.contains(',')
    } else {
        rest.iter().all(|w| w.starts_with('#'))
    }
}

/// `/join #a #b`, `/join #a,#b`: each room once, in order.
fn join_many(args: &str) -> Result<Command, CommandError> {
    let mut rooms: Vec<RoomName> = Vec::new();
    for name in args.split([' ', '\t', ',']).filter(|w| !w.is_empty()) {
        let room = RoomName::new(name)?;
        if !rooms.contains(&room) {
            rooms.push(room);
        }
    }
    if rooms.is_empty() {
        return Err(CommandError::Usage(usage("/join")));
    }
    if rooms.len() > crate::limits::IRC_MAX_JOIN_TARGETS {
        return Err(CommandError::Bad(format!(
            "at most {} rooms at once",
            crate::limits::IRC_MAX_JOIN_TARGETS
        )));
    }
    Ok(match <[RoomName; 1]>::try_from(rooms) {
        Ok([room]) => Command::Join(room),
        Err(rooms) => Command::JoinMany(rooms),
    })
}

/// What `/topic` takes to clear a topic instead of setting it (irssi's and WeeChat's word).
const CLEAR_TOPIC: &str = "-delete";

fn room_then_text(args: &str) -> Result<(Option<RoomName>, Option<Text>), CommandError> {
    match word(args) {
        (first, after) if first.starts_with('#') => {
            Ok((Some(RoomName::new(first)?), opt_text(after)?))
        }
        _ => Ok((None, opt_text(args)?)),
    }
}

/// A ban's optional duration and the reason after it. A first word that is not a duration is
/// the reason's start; one shaped like a duration that natter does not read (out of range:
/// `400d`, `0h`; or written otherwise: `1H`, `90min`, `1.5h`, `5m5m`, `-5m`, `5ms`) is refused,
/// not read as a reason: the ban would otherwise be for ever, with the time typed as its reason.
fn ban_duration(after: &str) -> Result<(Option<crate::time::Millis>, &str), CommandError> {
    let (d, why) = word(after);
    if is_forever(d) {
        return Ok((None, why));
    }
    // A time with a comma, colon or full stop after it, as people write before a reason
    // (`2w, spam`): the time still, not the reason's start (the ban for ever).
    let bare = d.trim_end_matches(TIME_STOPS);
    if bare != d && duration_shaped(bare) {
        return match parse_duration(bare) {
            Ok(t) => Ok((Some(t), why)),
            Err(e) => Err(CommandError::Bad(e.to_string())),
        };
    }
    // `2 weeks`: a number, then its unit in a word of its own. Taken for the reason, the ban
    // was for ever; refused, with the one word natter reads for it (`2 weeks, spam` too).
    let (unit, _) = word(why);
    let unit = unit.trim_end_matches(TIME_STOPS);
    let number = d.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && d.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b',');
    if number && !unit.is_empty() && duration_shaped(&format!("{d}{unit}")) {
        let typed = format!("{d} {unit}");
        let letter = match unit.to_lowercase().as_str() {
            "s" | "sec" | "secs" | "second" | "seconds" => Some('s'),
            "m" | "min" | "mins" | "minute" | "minutes" => Some('m'),
            "h" | "hr" | "hrs" | "hour" | "hours" => Some('h'),
            "d" | "day" | "days" => Some('d'),
            "w" | "week" | "weeks" => Some('w'),
            "y" | "yr" | "yrs" | "year" | "years" => Some('y'),
            _ => None,
        };
        let words = match letter.map(|l| format!("{d}{l}")) {
            Some(one) => match parse_duration(&one) {
                Ok(_) => format!("write {typed:?} as one word: {one}"),
                Err(e) => e.to_string(),
            },
            None => crate::moderation::MaskError::Duration(typed).to_string(),
        };
        return Err(CommandError::Bad(words));
    }
    match parse_duration(d) {
        Ok(d) => Ok((Some(d), why)),
        Err(e) if duration_shaped(d) => Err(CommandError::Bad(e.to_string())),
        Err(_) => Ok((None, after)),
    }
}

/// What may follow a ban's time before its reason (`2w, spam`, `2w: spam`).
const TIME_STOPS: [char; 4] = [',', ':', ';', '.'];

/// `forever` in a ban's or a mute's place for a duration: no end, as no duration at all (a
/// `/ban bob forever` took `forever` as its reason, and `/mute bob forever` was refused).
fn is_forever(word: &str) -> bool {
    word.eq_ignore_ascii_case("forever")
}

/// Whether `word` is meant as a time: numbers (a sign, a fraction) each followed by a unit,
/// in any case, as `s`, `m`, `h`, `d`, `w`, `y`, a word for one (`min`, `hours`, `days`...) or
/// a unit natter does not take (`ms`, `us`, `ns`, `mo`, `months`, ...: a `/ban bob 5ms why`
/// was for ever with the reason `5ms why` until the thirty-first session's QA).
/// `10x` or `2nd` is not: a reason may start so.
fn duration_shaped(word: &str) -> bool {
    // natter's units and words for them, then units it does not take.
    const UNITS: [&str; 26] = [
        "s", "m", "h", "d", "w", "y", "sec", "secs", "second", "seconds", "min", "mins", "minute",
        "minutes", "hr", "hrs", "hour", "hours", "day", "days", "week", "weeks", "yr", "yrs",
        "year", "years",
    ];
    const OTHER_UNITS: &str = "ms msec msecs millis millisecond milliseconds us \u{b5}s \u{3bc}s \
        usec usecs microsecond microseconds ns nsec nsecs nanosecond nanoseconds wk wks mo mos \
        mon mons month months fortnight fortnights decade decades";
    let mut rest = word.strip_prefix(['-', '+']).unwrap_or(word);
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let number = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
            .unwrap_or(rest.len());
        if number == 0 || !rest.as_bytes()[0].is_ascii_digit() {
            return false;
        }
        rest = &rest[number..];
        let unit = rest
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(rest.len());
        let unit_word = rest[..unit].to_lowercase();
        if !UNITS.contains(&unit_word.as_str())
            && !OTHER_UNITS.split_whitespace().any(|u| u == unit_word)
        {
            return false;
        }
        rest = &rest[unit..];
    }
    true
}

/// An operator's command: `[#room]` first (or, for `/invite nick #room`, last), then its words.
fn moderation(name: &str, args: &str) -> Result<Option<Input>, CommandError> {
    let use_ = || CommandError::Usage(usage(&format!("/{name}")));
    let (mut room, rest) = match word(args) {
        (r, rest) if r.starts_with('#') => (Some(RoomName::new(r)?), rest),
        _ => (None, args.trim()),
    };
    let (first, after) = word(rest);
    let nick = |s: &str| -> Result<Nick, CommandError> {
        if s.is_empty() {
            Err(use_())
        } else {
            Ok(Nick::new(s)?)
        }
    };
    let mask = |s: &str| -> Result<String, CommandError> {
        if s.is_empty() {
            Err(use_())
        } else {
            Ok(s.to_owned())
        }
    };
    let duration = |s: &str| parse_duration(s).map_err(|e| CommandError::Bad(e.to_string()));
    let action = match name {
        "op" if after.is_empty() => ModAction::Op(nick(first)?),
        "deop" if after.is_empty() => ModAction::Deop(nick(first)?),
        "voice" if after.is_empty() => ModAction::Voice(nick(first)?),
        "devoice" if after.is_empty() => ModAction::Devoice(nick(first)?),
        "kick" => ModAction::Kick {
            nick: nick(first)?,
            reason: reason(after),
        },
        "ban" => {
            let (duration, why) = ban_duration(after)?;
            ModAction::Ban {
                target: mask(first)?,
                duration,
                reason: reason(why),
            }
        }
        "unban" if after.is_empty() => ModAction::Unban {
            target: mask(first)?,
        },
        "bans" if rest.is_empty() => ModAction::Bans,
        "mute" => ModAction::Mute {
            target: mask(first)?,
            duration: match after {
                "" => None,
                d if is_forever(d) => None,
                // Read as a ban's time is (`2 weeks` told `2w`, `2w.` the time); nothing
                // may follow it.
                d => match ban_duration(d)? {
                    (Some(t), "") => Some(t),
                    _ => Some(duration(d)?),
                },
            },
        },
        "unmute" if after.is_empty() => ModAction::Unmute {
            target: mask(first)?,
        },
        "invite" => {
            // `/invite nick #room`: one word more, the room (more words are a usage error,
            // not a room name with spaces in it).
            if room.is_none() && after.starts_with('#') && !after.contains(char::is_whitespace) {
                room = Some(RoomName::new(after)?);
            } else if !after.is_empty() {
                return Err(use_());
            }
            ModAction::Invite(nick(first)?)
        }
        "mode" if first.is_empty() => ModAction::Settings,
        "mode" => {
            // One change a line: a second flag would otherwise be dropped without a word.
            let (next, _) = word(after);
            if let [b'+' | b'-', c] = next.as_bytes()
                && c.is_ascii_alphabetic()
            {
                return Err(CommandError::Bad(format!(
                    "one change at a time: /mode {first}, then /mode {next}"
                )));
            }
            // IRC's habits, said how natter takes them: `+mt` (several letters to a sign) and
            // `m` (no sign).
            if let Some((sign, letters)) = first
                .strip_prefix('+')
                .map(|l| ('+', l))
                .or_else(|| first.strip_prefix('-').map(|l| ('-', l)))
                && letters.len() > 1
                && letters.bytes().all(|b| b"imtkl".contains(&b))
            {
                let each: Vec<String> = letters
                    .chars()
                    .map(|c| format!("/mode {sign}{c}"))
                    .collect();
                return Err(CommandError::Bad(format!(
                    "one change at a time: {}",
                    each.join(", then ")
                )));
            }
            if let [c @ (b'i' | b'm' | b't' | b'k' | b'l')] = first.as_bytes() {
                let c = char::from(*c);
                return Err(CommandError::Bad(format!(
                    "a mode is set with + and unset with -: /mode +{c} or /mode -{c}"
                )));
            }
            let arg = (!after.is_empty()).then_some(after);
            ModAction::Mode(ModeChange::parse(first, arg).map_err(CommandError::Bad)?)
        }
        _ => return Err(use_()),
    };
    Ok(Some(Input::Command(Command::Moderate { room, action })))
}

/// What a search box holds, read as `/search` reads its arguments: a first word `#room` names
/// the room to search (the page's search box and `/search #rust words` mean the same).
pub fn search_box(typed: &str) -> Result<(Option<RoomName>, Text), CommandError> {
    match room_then_text(typed.trim())? {
        (room, Some(words)) => Ok((room, words)),
        (_, None) => Err(CommandError::Usage(usage("/search"))),
    }
}

/// An operator's action as a page's moderation menu names it, read with the same rules as the
/// commands: `kick` (`target` a nick, `arg` a reason), `ban` (`target` a nick or mask, `arg` a
/// duration such as `1h` or `7d`, blank for until unbanned), `unban`, `mute` (`arg` a
/// duration), `unmute`, `op`, `deop`, `voice`, `devoice`, `invite`, `mode` (`target` a flag
/// such as `+m` or `-k`, `arg` the key or limit), `settings`, `bans`. The words of an error are
/// what the page shows.
pub fn menu_action(action: &str, target: &str, arg: &str) -> Result<ModAction, CommandError> {
    let (target, arg) = (target.trim(), arg.trim());
    let nick = || Nick::new(target).map_err(CommandError::from);
    let mask = || {
        if target.is_empty() {
            Err(CommandError::Bad("whom?".to_owned()))
        } else {
            Ok(target.to_owned())
        }
    };
    let duration = || match arg {
        "" => Ok(None),
        d => parse_duration(d)
            .map(Some)
            .map_err(|e| CommandError::Bad(e.to_string())),
    };
    Ok(match action {
        "kick" => ModAction::Kick {
            nick: nick()?,
            reason: reason(arg),
        },
        "ban" => ModAction::Ban {
            target: mask()?,
            duration: duration()?,
            reason: None,
        },
        "unban" => ModAction::Unban { target: mask()? },
        "mute" => ModAction::Mute {
            target: mask()?,
            duration: duration()?,
        },
        "unmute" => ModAction::Unmute { target: mask()? },
        "op" => ModAction::Op(nick()?),
        "deop" => ModAction::Deop(nick()?),
        "voice" => ModAction::Voice(nick()?),
        "devoice" => ModAction::Devoice(nick()?),
        "invite" => ModAction::Invite(nick()?),
        "mode" => ModAction::Mode(
            ModeChange::parse(target, Some(arg).filter(|a| !a.is_empty()))
                .map_err(CommandError::Bad)?,
        ),
        "settings" => ModAction::Settings,
        "bans" => ModAction::Bans,
        other => {
            return Err(CommandError::Bad(format!(
                "{other:?} is not a moderation action"
            )));
        }
    })
}

/// What a terminal sends for keys that mean nothing on a line typed into `nc` or `telnet`, at
/// the start of the line: control characters (Ctrl+L pressed to clear the screen) and escape
/// sequences (an arrow key: `ESC [ A`, `ESC O A`). Without them, `^L/login alice secret` is the
/// command it looks like on the typist's screen, not a line said in the room.
fn strip_leading_keys(mut line: &str) -> &str {
    loop {
        let mut chars = line.chars();
        line = match (chars.next(), chars.next()) {
            // CSI: parameters and intermediates (0x20-0x3F), then one final byte (0x40-0x7E).
            (Some('\u{1b}'), Some('[')) => {
                let rest = chars.as_str();
                let body = rest
                    .find(|c: char| !('\u{20}'..='\u{3f}').contains(&c))
                    .unwrap_or(rest.len());
                match rest[body..].chars().next() {
                    Some(c) if ('\u{40}'..='\u{7e}').contains(&c) => &rest[body + 1..],
                    _ => &rest[body..],
                }
            }
            // SS3: one more character (`ESC O A`, an arrow key in application mode).
            (Some('\u{1b}'), Some('O')) => {
                let rest = chars.as_str();
                rest.char_indices().nth(1).map_or("", |(i, _)| &rest[i..])
            }
            (Some(c), _) if c.is_control() && c != '\t' => &line[c.len_utf8()..],
            _ => return line,
        };
    }
}

/// Parses a typed line. `Ok(None)` for a blank line (nothing to do).
pub fn parse(line: &str) -> Result<Option<Input>, CommandError> {
    let line = strip_leading_keys(line.trim_end_matches(['\r', '\n']));
    if line.trim().is_empty() {
        return Ok(None);
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Some(Input::Say(Text::new(line)?)));
    };
    if rest.starts_with('/') {
        return Ok(Some(Input::Say(Text::new(rest)?)));
    }
    let (name, args) = word(rest);
    let name = name.to_ascii_lowercase();
    let cmd = match name.as_str() {
        "nick" => match word(args) {
            (n, "") if !n.is_empty() => Command::Nick(Nick::new(n)?),
            _ => return Err(CommandError::Usage(usage("/nick"))),
        },
        "join" | "j" if several_rooms(args) => join_many(args)?,
        "join" | "j" => match word(args) {
            (r, "") if !r.is_empty() => Command::Join(RoomName::new(r)?),
            // `/join my room`: a newcomer's room name with a space, not `#my` with the key
            // `room` (joined without a word: a new room needs no key).
            (r, _) if !r.is_empty() && !r.starts_with('#') => {
                let dashed: Vec<&str> = args.split_whitespace().collect();
                return Err(CommandError::Bad(format!(
                    "a room name has no spaces: /join #{} (a key goes after a #room: /join #{r} KEY)",
                    dashed.join("-"),
                )));
            }
            (r, key) if !r.is_empty() && !key.contains(char::is_whitespace) => Command::JoinKey {
                room: RoomName::new(r)?,
                key: Text::new(key)?,
            },
            _ => return Err(CommandError::Usage(usage("/join"))),
        },
        "part" | "leave" => match word(args) {
            // `/part #a #b`: each room, as `/join #a #b` joins each (every word a room: a
            // reason that is only room names is not one anybody types).
            (first, rest)
                if first.starts_with('#')
                    && !rest.trim().is_empty()
                    && rest.split_whitespace().all(|w| w.starts_with('#')) =>
            {
                match join_many(args)? {
                    Command::JoinMany(rooms) => Command::PartMany {
                        rooms,
                        reason: None,
                    },
                    Command::Join(room) => Command::Part {
                        room: Some(room),
                        reason: None,
                    },
                    _ => return Err(CommandError::Usage(usage("/part"))),
                }
            }
            // `/part #a,#b [reason]`: each room, as IRC's `PART #a,#b`.
            (list, reason) if list.starts_with('#') && list.contains(',') => {
                match join_many(list)? {
                    Command::JoinMany(rooms) => Command::PartMany {
                        rooms,
                        reason: opt_text(reason)?,
                    },
                    Command::Join(room) => Command::Part {
                        room: Some(room),
                        reason: opt_text(reason)?,
                    },
                    _ => return Err(CommandError::Usage(usage("/part"))),
                }
            }
            _ => {
                let (room, reason) = room_then_text(args)?;
                Command::Part { room, reason }
            }
        },
        // `query`: IRC clients' habit (`/query bob hi`); there is no window to open here.
        "msg" | "dm" | "query" => match word(args) {
            // A room, as IRC's `PRIVMSG #room`.
            (r, text) if r.starts_with('#') && !text.trim().is_empty() => Command::SayIn {
                room: RoomName::new(r)?,
                text: Text::new(text)?,
            },
            (n, text) if !n.is_empty() && !text.trim().is_empty() => Command::Msg {
                to: Nick::new(n)?,
                text: Text::new(text)?,
            },
            _ => return Err(CommandError::Usage(usage("/msg"))),
        },
        // The target is a room when it looks like one, else a nick: as IRC's `NOTICE`.
        "notice" => match word(args) {
            (r, text) if r.starts_with('#') && !text.trim().is_empty() => Command::Notice {
                room: RoomName::new(r)?,
                text: Text::new(text)?,
            },
            (n, text) if !n.is_empty() && !text.trim().is_empty() => Command::NoticeTo {
                to: Nick::new(n)?,
                text: Text::new(text)?,
            },
            _ => return Err(CommandError::Usage(usage("/notice"))),
        },
        "me" => match opt_text(args)? {
            Some(t) => Command::Me(t),
            None => return Err(CommandError::Usage(usage("/me"))),
        },
        "who" | "names" => match word(args) {
            ("", _) => Command::Who(None),
            (r, "") => Command::Who(Some(RoomName::new(r)?)),
            _ => return Err(CommandError::Usage(usage("/who"))),
        },
        "whois" => match word(args) {
            (n, "") if !n.is_empty() => Command::Whois(Nick::new(n)?),
            _ => return Err(CommandError::Usage(usage("/whois"))),
        },
        "rooms" | "list" if args.trim().is_empty() => Command::Rooms,
        "rooms" | "list" => return Err(CommandError::Usage(usage("/rooms"))),
        "topic" => match room_then_text(args)? {
            (room, Some(t)) if t.as_str().trim() == CLEAR_TOPIC => Command::ClearTopic(room),
            (room, topic) => Command::Topic { room, topic },
        },
        "history" | "hist" => {
            let (room, rest) = match word(args) {
                (r, rest) if r.starts_with('#') => (Some(RoomName::new(r)?), rest),
                _ => (None, args),
            };
            let count = match word(rest) {
                ("", _) => None,
                // A person asking for "lots" (`/history 100000`) gets as many as one answer
                // holds, not a usage error: the server sends at most
                // [`crate::limits::HISTORY_PAGE_MAX`] at a time anyway.
                (n, "") => match n.parse::<u64>() {
                    Ok(n) if n > 0 => Some(u16::try_from(n).unwrap_or(u16::MAX)),
                    // Digits past what 64 bits hold are "lots" too.
                    Err(_) if n.bytes().all(|b| b.is_ascii_digit()) => Some(u16::MAX),
                    _ => return Err(CommandError::Usage(usage("/history"))),
                },
                _ => return Err(CommandError::Usage(usage("/history"))),
            };
            Command::History { room, count }
        }
        "search" | "find" => match room_then_text(args)? {
            (room, Some(words)) => Command::Search { room, words },
            (_, None) => return Err(CommandError::Usage(usage("/search"))),
        },
        "quit" | "exit" => Command::Quit(opt_text(args)?),
        "away" => Command::Away(opt_text(args)?),
        "back" if args.trim().is_empty() => Command::Away(None),
        "back" => return Err(CommandError::Usage(usage("/back"))),
        "register" if args.trim_start().starts_with('#') => match word(args) {
            (r, "") => Command::Moderate {
                room: Some(RoomName::new(r)?),
                action: ModAction::Register,
            },
            _ => return Err(CommandError::Usage("/register #room")),
        },
        // Passwords are taken as typed (inner spaces too), never echoed in an error.
        "register" => match args.trim() {
            "" => return Err(CommandError::Usage(usage("/register"))),
            p => Command::Register(Password(p.to_owned())),
        },
        "op" | "deop" | "voice" | "devoice" | "kick" | "ban" | "unban" | "bans" | "mute"
        | "unmute" | "invite" | "mode" => return moderation(&name, args),
        "kill" => match word(args) {
            (n, why) if !n.is_empty() => Command::Admin(AdminAction::Kill {
                nick: Nick::new(n)?,
                reason: reason(why),
            }),
            _ => return Err(CommandError::Usage(usage("/kill"))),
        },
        "wall" => match opt_text(args)? {
            Some(t) => Command::Admin(AdminAction::Wall(t)),
            None => return Err(CommandError::Usage(usage("/wall"))),
        },
        "gban" => match word(args) {
            (t, after) if !t.is_empty() => {
                let (duration, why) = ban_duration(after)?;
                Command::Admin(AdminAction::Ban {
                    target: t.to_owned(),
                    duration,
                    reason: reason(why),
                })
            }
            _ => return Err(CommandError::Usage(usage("/gban"))),
        },
        "gunban" => match word(args) {
            (t, "") if !t.is_empty() => Command::Admin(AdminAction::Unban {
                target: t.to_owned(),
            }),
            _ => return Err(CommandError::Usage(usage("/gunban"))),
        },
        "takeover" => match word(args) {
            (r, "") if !r.is_empty() => Command::Admin(AdminAction::TakeOver(RoomName::new(r)?)),
            _ => return Err(CommandError::Usage(usage("/takeover"))),
        },
        "close" => match word(args) {
            (r, why) if !r.is_empty() => Command::Admin(AdminAction::Close {
                room: RoomName::new(r)?,
                reason: reason(why),
            }),
            _ => return Err(CommandError::Usage(usage("/close"))),
        },
        "gbans" if args.trim().is_empty() => Command::Admin(AdminAction::Bans),
        "gbans" => return Err(CommandError::Usage(usage("/gbans"))),
        "login" | "identify" => match word(args) {
            (n, p) if !n.is_empty() && !p.trim().is_empty() => Command::Login {
                account: Nick::new(n)?,
                password: Password(p.trim().to_owned()),
            },
            _ => return Err(CommandError::Usage(usage("/login"))),
        },
        "devices" => match word(args) {
            ("", _) => Command::Devices,
            (forget, id) if forget.eq_ignore_ascii_case("forget") => match device_id(id.trim()) {
                Some(n) => Command::ForgetDevice(n),
                None => {
                    return Err(CommandError::Usage(
                        "/devices forget ID (8 hex digits, as /devices lists them)",
                    ));
                }
            },
            (name, rest) if name.eq_ignore_ascii_case("name") => match word(rest) {
                (id, label) if !label.trim().is_empty() => match device_id(id) {
                    Some(n) => Command::NameDevice(n, DeviceLabel::new(label)?),
                    None => {
                        return Err(CommandError::Usage(
                            "/devices name ID label (ID: 8 hex digits, as /devices lists them)",
                        ));
                    }
                },
                _ => return Err(CommandError::Usage("/devices name ID label")),
            },
            _ => return Err(CommandError::Usage("/devices [forget ID | name ID label]")),
        },
        "logout" if args.trim().is_empty() => Command::Logout,
        "logout" => return Err(CommandError::Usage(usage("/logout"))),
        "password" | "passwd" => match old_password(args) {
            (old, new) if !old.is_empty() && !new.trim().is_empty() => Command::ChangePassword {
                old: Password(old.to_owned()),
                new: Password(new.trim().to_owned()),
            },
            _ => return Err(CommandError::Usage(usage("/password"))),
        },
        "help" | "?" => match word(args) {
            ("", _) => Command::Help(None),
            (topic, "") => match command_named(topic) {
                Some(name) => Command::Help(Some(name)),
                // No such command to help with, cleaned as an unknown command is.
                None => {
                    let topic = topic.strip_prefix('/').unwrap_or(topic);
                    let name: String = topic.chars().take(20).collect();
                    return Err(CommandError::NoHelp(crate::types::sanitize(&name)));
                }
            },
            _ => return Err(CommandError::Usage(usage("/help"))),
        },
        // Echoed back to the user: cleaned, so a typed ESC never comes back raw.
        _ => {
            let typed = crate::types::sanitize(&name.chars().take(20).collect::<String>());
            return Err(match nearest_command(&name) {
                Some(meant) => CommandError::Typo { typed, meant },
                None => CommandError::Unknown(typed),
            });
        }
    };
    Ok(Some(Input::Command(cmd)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/clear` is read once for every front end: its words, in any case; `//clear` and
    /// `/clearly` are not it.
    #[test]
    fn clear_is_read_with_what_it_asks_for() {
        assert_eq!(clear("/clear"), Some(Clear::Open));
        assert_eq!(clear("  /CLEAR  "), Some(Clear::Open));
        assert_eq!(clear("/clear all"), Some(Clear::All));
        assert_eq!(clear("/clear -ALL"), Some(Clear::All));
        assert_eq!(clear("/clear #b"), Some(Clear::Usage));
        assert_eq!(clear("//clear"), None, "said, not run");
        assert_eq!(clear("/clearly"), None);
        assert_eq!(clear("clear"), None);
    }

    /// `/query` is read once for every front end with conversations: a nick opens its
    /// conversation, text after it is sent too, nothing after it says how it is typed; what
    /// names no nick is the session's.
    #[test]
    fn query_is_read_with_what_it_asks_for() {
        let bob = Nick::new("bob").unwrap();
        assert_eq!(query("/query bob"), Some(Query::Open(bob.clone())));
        assert_eq!(query("/QUERY   bob  "), Some(Query::Open(bob.clone())));
        assert_eq!(query("  /QUERY bob"), None, "text, as for the session");
        assert_eq!(query("/query bob hi there"), Some(Query::OpenAndSend(bob)));
        assert_eq!(query("/query"), Some(Query::Usage));
        assert_eq!(query("/Query   "), Some(Query::Usage));
        assert_eq!(query("/query #a hi"), None, "a line said in #a");
        assert_eq!(query("/query b@d hi"), None, "the session says why");
        assert!(matches!(query("/query b@d"), Some(Query::NotANick(w)) if w.contains("b@d")));
        assert_eq!(query("//query bob"), None, "said, not run");
        assert_eq!(query("/queryx bob"), None);
        assert_eq!(query("query bob"), None);
        // The session alone still reads it as `/msg` (what goes to it after the opening).
        assert!(matches!(cmd("/query bob hi"), Command::Msg { .. }));
        assert!(part_here("/part") && part_here("/LEAVE bye"));
        assert!(!part_here("/part #a") && !part_here("//part") && !part_here("part"));
    }

    fn cmd(s: &str) -> Command {
        match parse(s) {
            Ok(Some(Input::Command(c))) => c,
            other => panic!("{s:?} gave {other:?}"),
        }
    }
    fn t(s: &str) -> Text {
        Text::new(s).unwrap()
    }
    fn r(s: &str) -> RoomName {
        RoomName::new(s).unwrap()
    }

    /// A line meant as text that starts with `/` (a path, a smiley) is refused as an unknown
    /// command on every natter door; the refusal and `/help` say how to say it (`//`), which
    /// before the twenty-ninth session only PROTOCOL.md did.
    #[test]
    fn the_escape_for_a_leading_slash_is_told_where_people_look() {
        let refused = parse("/usr/bin is where it lives").unwrap_err().to_string();
        assert!(refused.contains("//"), "{refused}");
        assert_eq!(
            parse("///usr/bin is where it lives"),
            Ok(Some(Input::Say(t("//usr/bin is where it lives"))))
        );
        let help: Vec<String> = help_lines(None).collect();
        assert!(help.iter().any(|l| l.starts_with("//text")), "{help:?}");
        // Every usage is set off from its words by two spaces at least, long ones too.
        for ((usage, what), line) in HELP.iter().zip(&help) {
            assert!(line.starts_with(&format!("{usage}  ")), "{line}");
            assert!(line.ends_with(&format!("  {what}")), "{line}");
        }
        assert!(
            help.contains(&"/kick [#room] nick [reason]  put a member out of the room".to_owned())
        );
        assert_eq!(help_lines(Some("//text")).count(), 1);
    }

    #[test]
    fn plain_lines_are_chat() {
        assert_eq!(parse("hello\r\n"), Ok(Some(Input::Say(t("hello")))));
        assert_eq!(
            parse("//not a command"),
            Ok(Some(Input::Say(t("/not a command"))))
        );
        assert_eq!(parse("   "), Ok(None));
        assert_eq!(parse(""), Ok(None));
    }

    #[test]
    fn takeover_and_close_parse() {
        assert_eq!(
            cmd("/takeover #club"),
            Command::Admin(AdminAction::TakeOver(r("#club")))
        );
        assert_eq!(
            cmd("/close #club moved to #new"),
            Command::Admin(AdminAction::Close {
                room: r("#club"),
                reason: Some(t("moved to #new"))
            })
        );
        assert_eq!(
            cmd("/close #club"),
            Command::Admin(AdminAction::Close {
                room: r("#club"),
                reason: None
            })
        );
        assert_eq!(
            parse("/takeover"),
            Err(CommandError::Usage("/takeover #room"))
        );
        assert_eq!(
            parse("/close"),
            Err(CommandError::Usage("/close #room [reason]"))
        );
        assert!(parse("/takeover #club extra").is_err());
    }

    #[test]
    fn history_and_search_parse() {
        assert_eq!(
            cmd("/history"),
            Command::History {
                room: None,
                count: None
            }
        );
        assert_eq!(
            cmd("/history #rust 50"),
            Command::History {
                room: Some(r("#rust")),
                count: Some(50)
            }
        );
        assert_eq!(
            cmd("/history 5"),
            Command::History {
                room: None,
                count: Some(5)
            }
        );
        assert!(matches!(
            parse("/history lots"),
            Err(CommandError::Usage(_))
        ));
        assert!(matches!(parse("/history 0"), Err(CommandError::Usage(_))));
        assert!(matches!(parse("/history -3"), Err(CommandError::Usage(_))));
        assert_eq!(
            cmd("/history #rust 100000"),
            Command::History {
                room: Some(r("#rust")),
                count: Some(u16::MAX)
            },
            "more than fits is as many as the server gives, not an error"
        );
        assert_eq!(
            cmd("/history 99999999999999999999999"),
            Command::History {
                room: None,
                count: Some(u16::MAX)
            },
            "so is more than a 64-bit number holds"
        );
        assert!(matches!(parse("/history 000"), Err(CommandError::Usage(_))));
        assert_eq!(
            cmd("/search #rust borrow \"checker\" -x"),
            Command::Search {
                room: Some(r("#rust")),
                words: t("borrow \"checker\" -x")
            }
        );
        assert_eq!(
            cmd("/search NEAR(a b)"),
            Command::Search {
                room: None,
                words: t("NEAR(a b)")
            }
        );
        assert!(matches!(parse("/search"), Err(CommandError::Usage(_))));
        assert!(matches!(
            parse("/search #rust"),
            Err(CommandError::Usage(_))
        ));
    }

    #[test]
    fn every_command_parses() {
        assert_eq!(cmd("/nick bob"), Command::Nick(Nick::new("bob").unwrap()));
        assert_eq!(cmd("/join #Rust"), Command::Join(r("#rust")));
        assert_eq!(cmd("/j rust"), Command::Join(r("#rust")));
        assert_eq!(
            cmd("/part"),
            Command::Part {
                room: None,
                reason: None
            }
        );
        assert_eq!(
            cmd("/part #rust gone fishing"),
            Command::Part {
                room: Some(r("#rust")),
                reason: Some(t("gone fishing"))
            }
        );
        assert_eq!(
            cmd("/part later"),
            Command::Part {
                room: None,
                reason: Some(t("later"))
            }
        );
        assert_eq!(
            cmd("/msg bob  hi there"),
            Command::Msg {
                to: Nick::new("bob").unwrap(),
                text: t("hi there")
            }
        );
        // A room, as IRC's `PRIVMSG #room`: said there.
        assert_eq!(
            cmd("/msg #Rust hi there"),
            Command::SayIn {
                room: r("#rust"),
                text: t("hi there")
            }
        );
        assert_eq!(
            parse("/msg #rust"),
            Err(CommandError::Usage("/msg nick|#room text"))
        );
        assert_eq!(cmd("/me waves"), Command::Me(t("waves")));
        // Away as IRC's AWAY: with text away, without it (or /back) back.
        assert_eq!(
            cmd("/away  at lunch, back at 2 "),
            Command::Away(Some(t("at lunch, back at 2")))
        );
        assert_eq!(cmd("/AWAY"), Command::Away(None));
        assert_eq!(cmd("/back"), Command::Away(None));
        assert_eq!(parse("/back soon"), Err(CommandError::Usage("/back")));
        assert_eq!(cmd("/who"), Command::Who(None));
        assert_eq!(cmd("/who #rust"), Command::Who(Some(r("#rust"))));
        assert_eq!(cmd("/whois Bob"), Command::Whois(Nick::new("Bob").unwrap()));
        assert!(parse("/whois").is_err() && parse("/whois a b").is_err());
        assert_eq!(cmd("/rooms"), Command::Rooms);
        assert_eq!(
            cmd("/topic"),
            Command::Topic {
                room: None,
                topic: None
            }
        );
        assert_eq!(
            cmd("/topic Rust 2024"),
            Command::Topic {
                room: None,
                topic: Some(t("Rust 2024"))
            }
        );
        assert_eq!(
            cmd("/topic #rust new"),
            Command::Topic {
                room: Some(r("#rust")),
                topic: Some(t("new"))
            }
        );
        assert_eq!(cmd("/topic -delete"), Command::ClearTopic(None));
        assert_eq!(
            cmd("/topic #rust -delete "),
            Command::ClearTopic(Some(r("#rust")))
        );
        // Only the word alone clears: a topic that starts with it is a topic.
        assert_eq!(
            cmd("/topic -delete me"),
            Command::Topic {
                room: None,
                topic: Some(t("-delete me"))
            }
        );
        assert_eq!(cmd("/quit"), Command::Quit(None));
        assert_eq!(cmd("/QUIT bye all"), Command::Quit(Some(t("bye all"))));
        assert_eq!(cmd("/help"), Command::Help(None));
        assert_eq!(cmd("/devices"), Command::Devices);
        assert_eq!(
            cmd("/devices forget 0a0B0c0d"),
            Command::ForgetDevice(0x0a0b_0c0d)
        );
        assert_eq!(cmd("/devices FORGET ff"), Command::ForgetDevice(0xff));
        let label = |s: &str| DeviceLabel::new(s).unwrap();
        assert_eq!(
            cmd("/devices name 0a0B0c0d  work  laptop "),
            Command::NameDevice(0x0a0b_0c0d, label("work laptop"))
        );
        assert_eq!(
            cmd("/devices NAME ff natter on\u{202E}pc"),
            Command::NameDevice(0xff, label("natter on\u{FFFD}pc"))
        );
        // A label too long is refused in words, not cut.
        let max = crate::limits::MAX_DEVICE_LABEL_BYTES;
        let long = format!("/devices name ff {}", "x".repeat(max + 1));
        assert!(matches!(
            parse(&long),
            Err(CommandError::Invalid(InvalidName::LabelTooLong(n))) if n == max + 1
        ));
        for bad in [
            "/devices forget",
            "/devices forget 123456789",
            "/devices forget +1",
            "/devices forget xyz",
            "/devices list",
            "/devices name",
            "/devices name 0a0b0c0d",
            "/devices name 0a0b0c0d   ",
            "/devices name laptop 0a0b0c0d",
            "/devices name 123456789 laptop",
        ] {
            assert!(
                matches!(parse(bad), Err(CommandError::Usage(u)) if u.starts_with("/devices")),
                "{bad}"
            );
        }
        assert_eq!(cmd("/help devices"), Command::Help(Some("/devices")));
    }

    #[test]
    fn invite_with_words_after_its_room_is_a_usage_error() {
        assert_eq!(
            parse("/invite eve #r extra"),
            Err(CommandError::Usage(usage("/invite")))
        );
        assert!(matches!(
            parse("/invite eve #r"),
            Ok(Some(Input::Command(Command::Moderate {
                room: Some(_),
                ..
            })))
        ));
    }

    #[test]
    fn help_with_a_command_lists_only_that_command_and_an_unknown_one_says_so() {
        assert_eq!(cmd("/help join"), Command::Help(Some("/join")));
        assert_eq!(cmd("/help /MSG"), Command::Help(Some("/msg")));
        assert_eq!(cmd("/help j"), Command::Help(Some("/join")));
        assert_eq!(cmd("/help passwd"), Command::Help(Some("/password")));
        assert_eq!(
            parse("/help afk"),
            Err(CommandError::NoHelp("afk".to_owned()))
        );
        assert_eq!(
            parse("/help /nosuch").unwrap_err().to_string(),
            "there is no command /nosuch to help with; /help lists them all"
        );
        assert_eq!(cmd("/help away"), Command::Help(Some("/away")));
        assert_eq!(help_lines(Some("/away")).count(), 1);
        assert_eq!(
            parse("/help join part"),
            Err(CommandError::Usage("/help [command]"))
        );
        let join: Vec<String> = help_lines(Some("/join")).collect();
        assert_eq!(join.len(), 1, "{join:?}");
        assert!(join[0].starts_with("/join #room [key]"), "{join:?}");
        // Both of /register's uses.
        assert_eq!(help_lines(Some("/register")).count(), 2);
        assert_eq!(help_lines(None).count(), HELP.len());
        // Every command in the list can be asked about by name.
        for (usage, _) in HELP {
            let name = usage.split(' ').next().unwrap();
            assert_eq!(cmd(&format!("/help {name}")), Command::Help(Some(name)));
        }
    }

    #[test]
    fn keys_pressed_before_a_command_on_nc_do_not_make_it_chat() {
        // Ctrl+L (to clear the screen), an arrow key (normal and application mode), a stray
        // escape: the command is the command, not a line said in the room.
        for typed in [
            "\u{c}/login alice hunter2hunter2",
            "\u{c}\u{c}/login alice hunter2hunter2",
            "\u{1b}[A/login alice hunter2hunter2",
            "\u{1b}[1;5D/login alice hunter2hunter2",
            "\u{1b}OA/login alice hunter2hunter2",
            "\u{1b}/login alice hunter2hunter2",
        ] {
            assert!(matches!(cmd(typed), Command::Login { .. }), "{typed:?}");
        }
        assert_eq!(parse("\u{c}hello"), Ok(Some(Input::Say(t("hello")))));
        assert_eq!(parse("\u{c}"), Ok(None));
        assert_eq!(parse("\u{1b}["), Ok(None));
        assert_eq!(parse("\u{1b}O"), Ok(None));
        // Within a line, a control character is the text's (cleaned when said).
        assert!(matches!(parse("a\u{c}/who"), Ok(Some(Input::Say(_)))));
    }

    /// `/register` takes a passphrase whole (`/register correct horse`), so `/password` must
    /// be able to name it as the old one. Found by the thirty-second session's acceptance
    /// audit: the old password was the first word only, and an account registered with a
    /// space in its password could never change it from any door.
    #[test]
    fn an_old_password_with_spaces_is_given_in_double_quotes() {
        let change = |old: &str, new: &str| Command::ChangePassword {
            old: Password(old.to_owned()),
            new: Password(new.to_owned()),
        };
        assert_eq!(
            cmd("/password \"correct horse\" battery staple"),
            change("correct horse", "battery staple")
        );
        assert_eq!(
            cmd("/passwd   \"a b c d\"  new-one "),
            change("a b c d", "new-one")
        );
        // One word, as before, quotes and all when they do not close before a space.
        assert_eq!(cmd("/password old new one"), change("old", "new one"));
        assert_eq!(cmd("/password \"old new"), change("\"old", "new"));
        assert_eq!(cmd("/password o\"ld new"), change("o\"ld", "new"));
        // Quoted, with nothing new after it, or nothing between the quotes: usage.
        for line in ["/password \"correct horse\"", "/password \"\" new"] {
            assert!(
                matches!(parse(line), Err(CommandError::Usage(u)) if u.starts_with("/password")),
                "{line}"
            );
        }
    }

    #[test]
    fn lines_with_a_password_are_known_as_such() {
        for line in [
            "/register hunter2hunter2",
            "/REGISTER my pass phrase",
            "/login alice hunter2hunter2",
            "/identify alice x",
            "/password old newer-one",
            " /passwd old new",
        ] {
            assert!(carries_password(line), "{line}");
        }
        for line in [
            "/register #rust",
            "hello",
            "/join #a key",
            "//login x y",
            "/logout",
        ] {
            assert!(!carries_password(line), "{line}");
        }
    }

    #[test]
    fn a_search_box_reads_a_first_room_as_search_does() {
        let got = |typed: &str| search_box(typed).map(|(r, w)| (r, w.to_string()));
        assert_eq!(
            got("  #rust borrow checker ").unwrap(),
            (
                Some(RoomName::new("#rust").unwrap()),
                "borrow checker".to_owned()
            )
        );
        assert_eq!(
            got("borrow #rust").unwrap(),
            (None, "borrow #rust".to_owned())
        );
        let usage = CommandError::Usage("/search [#room] words");
        assert_eq!(got("#rust"), Err(usage.clone()));
        assert_eq!(got("   "), Err(usage));
        assert!(got("#bad\u{7}room words").is_err());
    }

    #[test]
    fn bad_commands_say_why() {
        // One mode change a line: a second one was dropped without a word, so `/mode +i +m`
        // set +i and left the person believing the room was moderated too.
        assert_eq!(
            parse("/mode +mt"),
            Err(CommandError::Bad(
                "one change at a time: /mode +m, then /mode +t".into()
            ))
        );
        assert_eq!(
            parse("/mode #r -imt"),
            Err(CommandError::Bad(
                "one change at a time: /mode -i, then /mode -m, then /mode -t".into()
            ))
        );
        assert_eq!(
            parse("/mode m"),
            Err(CommandError::Bad(
                "a mode is set with + and unset with -: /mode +m or /mode -m".into()
            ))
        );
        assert_eq!(
            parse("/mode +x"),
            Err(CommandError::Bad(
                "there is no mode +x; modes: +i -i +k KEY -k +m -m +t -t +l N -l".into()
            ))
        );
        for line in ["/mode +i +m", "/mode #r -t +m", "/mode -k +i"] {
            assert!(
                matches!(parse(line), Err(CommandError::Bad(ref e)) if e.contains("one change at a time")),
                "{line}: {:?}",
                parse(line)
            );
        }
        assert!(parse("/mode +k -sesame").is_ok(), "a key may start with -");
        assert_eq!(parse("/frob"), Err(CommandError::Unknown("frob".into())));
        // A typo is answered with the command it was nearly: what to type instead.
        for (typed, meant) in [
            ("/jion #rust", "/join"),
            ("/hlep", "/help"),
            ("/Whios bob", "/whois"),
            ("/nikc bob", "/nick"),
            ("/mgs bob hi", "/msg"),
            ("/regsiter pw", "/register"),
            ("/quti", "/quit"),
            ("/tpoic", "/topic"),
            ("/histroy", "/history"),
            ("/serach words", "/search"),
        ] {
            assert!(
                matches!(parse(typed), Err(CommandError::Typo { meant: m, .. }) if m == meant),
                "{typed}: {:?}",
                parse(typed)
            );
        }
        assert_eq!(
            parse("/jion #rust").unwrap_err().to_string(),
            "unknown command /jion: did you mean /join? (/help lists them; to say a line that \
             starts with /, type it as //)"
        );
        // Nothing near, or a path meant to be said: as before.
        for far in [
            "/frobnicate",
            "/usr/bin",
            "/xyzzy",
            "/ls -l",
            "/quote HELP",
            "/unregister",
        ] {
            assert!(
                matches!(parse(far), Err(CommandError::Unknown(_))),
                "{far}: {:?}",
                parse(far)
            );
        }
        // An unknown command is named in the reply, never with a raw ESC in it.
        let e = parse("/x\x1b[2J").unwrap_err().to_string();
        assert!(!e.contains('\x1b') && e.contains("x\u{FFFD}[2j"), "{e:?}");
        assert_eq!(parse("/nick"), Err(CommandError::Usage("/nick name")));
        assert_eq!(parse("/nick a b"), Err(CommandError::Usage("/nick name")));
        assert_eq!(
            parse("/msg bob"),
            Err(CommandError::Usage("/msg nick|#room text"))
        );
        assert_eq!(parse("/me"), Err(CommandError::Usage("/me text")));
        // The key a +k room needs is part of the usage `/help` and the error show.
        assert!(matches!(
            parse("/join #a b c"),
            Err(CommandError::Usage("/join #room [key]"))
        ));
        assert!(matches!(
            parse("/join #a key"),
            Ok(Some(Input::Command(Command::JoinKey { .. })))
        ));
        // A room name with a space joined the room of its first word with the rest as a key,
        // without a word (a new room needs none): `/join my room` put one in `#my`.
        for line in ["/join my room", "/j my room"] {
            let e = parse(line).unwrap_err().to_string();
            assert!(
                e.starts_with("a room name has no spaces: /join #my-room")
                    && e.contains("/join #my KEY"),
                "{line}: {e}"
            );
        }
        assert_eq!(cmd("/join rust"), Command::Join(r("#rust")));
        // IRC's `/query nick text` is a direct message.
        assert_eq!(
            cmd("/query bob hi there"),
            Command::Msg {
                to: Nick::new("bob").unwrap(),
                text: t("hi there")
            }
        );
        assert_eq!(
            parse("/query bob"),
            Err(CommandError::Usage("/msg nick|#room text"))
        );
        // Several rooms: words that all look like rooms, or a list with commas.
        let rooms = |names: &[&str]| Command::JoinMany(names.iter().map(|n| r(n)).collect());
        assert_eq!(cmd("/join #a #B"), rooms(&["#a", "#b"]));
        assert_eq!(cmd("/j #a,#b,c"), rooms(&["#a", "#b", "#c"]));
        assert_eq!(cmd("/join #a, #b #a"), rooms(&["#a", "#b"]));
        assert_eq!(cmd("/join #a,"), Command::Join(r("#a")));
        assert_eq!(
            cmd("/part #a,#B off to bed"),
            Command::PartMany {
                rooms: vec![r("#a"), r("#b")],
                reason: Some(t("off to bed"))
            }
        );
        assert_eq!(
            cmd("/part #a, bye"),
            Command::Part {
                room: Some(r("#a")),
                reason: Some(t("bye"))
            }
        );
        // Words that are all rooms are rooms, as `/join #a #b` takes them (it was #a left
        // with the reason "#b"); any other word makes the words after the room the reason.
        assert_eq!(
            cmd("/part #a #B"),
            Command::PartMany {
                rooms: vec![r("#a"), r("#b")],
                reason: None
            }
        );
        assert_eq!(
            cmd("/part #a #a"),
            Command::Part {
                room: Some(r("#a")),
                reason: None
            }
        );
        assert_eq!(
            cmd("/part #a #b is better"),
            Command::Part {
                room: Some(r("#a")),
                reason: Some(t("#b is better"))
            }
        );
        assert!(matches!(
            parse("/part #a #no!room"),
            Err(CommandError::Invalid(_))
        ));
        assert_eq!(
            parse("/join ,"),
            Err(CommandError::Usage("/join #room [key]"))
        );
        let many: Vec<String> = (0..21).map(|i| format!("#r{i}")).collect();
        assert!(matches!(
            parse(&format!("/join {}", many.join(" "))),
            Err(CommandError::Bad(e)) if e.contains("at most 20 rooms")
        ));
        assert!(matches!(
            parse("/join #a #bad!"),
            Err(CommandError::Invalid(_))
        ));
        assert!(matches!(
            parse("/ban bob 2h too loud"),
            Ok(Some(Input::Command(Command::Moderate {
                room: None,
                action: ModAction::Ban {
                    duration: Some(_),
                    reason: Some(_),
                    ..
                }
            })))
        ));
        assert!(matches!(
            parse("/mute #r bob 2x"),
            Err(CommandError::Bad(_))
        ));
        // `forever` is no end for both: a mute took none (refused), a ban took it as its reason.
        for (line, why) in [("/mute bob forever", None), ("/mute bob Forever", None)] {
            assert_eq!(
                parse(line).unwrap(),
                Some(Input::Command(Command::Moderate {
                    room: None,
                    action: ModAction::Mute {
                        target: "bob".to_owned(),
                        duration: why,
                    }
                })),
                "{line}"
            );
        }
        assert!(matches!(
            parse("/ban bob forever spam"),
            Ok(Some(Input::Command(Command::Moderate {
                room: None,
                action: ModAction::Ban {
                    duration: None,
                    reason: Some(ref r),
                    ..
                }
            }))) if r.as_str() == "spam"
        ));
        assert!(matches!(
            parse("/ban bob forever"),
            Ok(Some(Input::Command(Command::Moderate {
                room: None,
                action: ModAction::Ban {
                    duration: None,
                    reason: None,
                    ..
                }
            })))
        ));
        // Out of range is refused, not taken for a reason (a ban for ever); other words are
        // the reason.
        // So is a time written as natter does not read it (the ban was for ever, and `1H`
        // its reason).
        for line in [
            "/ban bob 400d spam",
            "/ban bob 0h",
            "/gban bob 999w",
            "/ban bob 99y",
            "/ban bob 1H spam",
            "/ban bob 90min",
            "/ban bob 2hours spam",
            "/ban bob 1.5h",
            "/ban bob 5m5m",
            "/ban bob -5m",
            "/gban bob 7D",
            "/ban bob 5ms why",
            "/ban bob 5MS",
            "/ban bob 3mo spam",
            "/ban bob 2months",
            "/ban bob 10\u{b5}s",
            "/ban bob 1ns",
            "/ban bob 2wks spam",
        ] {
            assert!(
                matches!(parse(line), Err(CommandError::Bad(ref e)) if e.contains("365")
                    || e.contains("duration")),
                "{line}: {:?}",
                parse(line)
            );
        }
        // A number and a unit in two words is a time too, refused with the word natter reads
        // (`/ban bob 2 weeks` was a ban for ever, its reason `2 weeks`, until the
        // thirty-seventh session).
        for (line, said) in [
            ("/ban bob 2 weeks", "write \"2 weeks\" as one word: 2w"),
            ("/ban bob 30 min spam", "write \"30 min\" as one word: 30m"),
            ("/gban eve 1 Day", "write \"1 Day\" as one word: 1d"),
            ("/ban bob 12 hours", "write \"12 hours\" as one word: 12h"),
            (
                "/ban bob 3 months",
                "\"3 months\" is not a duration like 30m, 12h or 7d",
            ),
        ] {
            assert_eq!(
                parse(line),
                Err(CommandError::Bad(said.to_owned())),
                "{line}"
            );
        }
        // A year is the longest ban, and `1y` says it (it was a reason, the ban for ever).
        assert!(matches!(
            parse("/ban bob 1y spam"),
            Ok(Some(Input::Command(Command::Moderate {
                action: ModAction::Ban {
                    duration: Some(crate::moderation::MAX_DURATION),
                    reason: Some(_),
                    ..
                },
                ..
            })))
        ));
        for line in [
            "/ban bob 2nd warning",
            "/ban bob 3 strikes",
            "/ban bob m8 spam",
            "/ban bob 10x spam",
            "/ban bob 3rd strike",
            "/ban bob 4th time",
            "/ban bob 2fa bypass",
        ] {
            assert!(
                matches!(
                    parse(line),
                    Ok(Some(Input::Command(Command::Moderate {
                        action: ModAction::Ban {
                            duration: None,
                            reason: Some(_),
                            ..
                        },
                        ..
                    })))
                ),
                "{line}: {:?}",
                parse(line)
            );
        }
        assert!(matches!(
            parse("/ban bob 10x spam"),
            Ok(Some(Input::Command(Command::Moderate {
                action: ModAction::Ban {
                    duration: None,
                    reason: Some(_),
                    ..
                },
                ..
            })))
        ));
        assert!(matches!(
            parse("/register #r"),
            Ok(Some(Input::Command(Command::Moderate {
                room: Some(_),
                action: ModAction::Register
            })))
        ));
        assert!(matches!(
            parse("/invite bob #r"),
            Ok(Some(Input::Command(Command::Moderate {
                room: Some(_),
                action: ModAction::Invite(_)
            })))
        ));
        let e = parse("/nick 9x").unwrap_err();
        assert!(matches!(
            e,
            CommandError::Invalid(InvalidName::NickChars(_))
        ));
        assert!(e.to_string().contains("starts with a letter"));
        assert!(
            parse("/join #bad room! now")
                .unwrap_err()
                .to_string()
                .contains("usage")
        );
        assert!(
            parse("/join #bad!")
                .unwrap_err()
                .to_string()
                .contains("room name")
        );
    }

    /// A ban's time with a comma, colon or full stop after it, as people write before a
    /// reason (`/ban bob 2w, spam`, `/ban bob 2 weeks: spam`), is a time still: it was the
    /// reason's start, and the ban for ever.
    #[test]
    fn a_bans_time_followed_by_punctuation_is_a_time() {
        let ban = |line: &str| match parse(line) {
            Ok(Some(Input::Command(Command::Moderate {
                action: ModAction::Ban {
                    duration, reason, ..
                },
                ..
            }))) => Ok((duration, reason.map(|r| r.as_str().to_owned()))),
            Err(e) => Err(e),
            other => panic!("{line}: {other:?}"),
        };
        let week = parse_duration("2w").ok();
        for (line, why) in [
            ("/ban bob 2w, spam", Some("spam")),
            ("/ban bob 2w: spam", Some("spam")),
            ("/ban bob 2w; spam", Some("spam")),
            ("/ban bob 2w.", None),
        ] {
            assert_eq!(ban(line), Ok((week, why.map(str::to_owned))), "{line}");
        }
        for (line, said) in [
            (
                "/ban bob 2 weeks, spam",
                "write \"2 weeks\" as one word: 2w",
            ),
            (
                "/ban bob 2 weeks: spam",
                "write \"2 weeks\" as one word: 2w",
            ),
            ("/ban bob 2 weeks.", "write \"2 weeks\" as one word: 2w"),
            ("/ban bob 400d, spam", "at most 365 days"),
            (
                "/ban bob 2H, spam",
                "\"2H\" is not a duration like 30m, 12h or 7d",
            ),
        ] {
            assert_eq!(ban(line), Err(CommandError::Bad(said.to_owned())), "{line}");
        }
        // A reason that only starts with a number is a reason still.
        for line in ["/ban bob 3 strikes, out", "/ban bob 2nd warning."] {
            assert!(matches!(ban(line), Ok((None, Some(_)))), "{line}");
        }
    }

    /// `/mute bob 2 weeks` is told the one word natter reads, as `/ban bob 2 weeks` is (it
    /// was told only that `2 weeks` is no duration), and a time with a full stop after it is
    /// the time; anything else after a mute's time is refused as before.
    #[test]
    fn a_mutes_time_in_two_words_is_told_the_one_word() {
        let mute = |line: &str| match parse(line) {
            Ok(Some(Input::Command(Command::Moderate {
                action: ModAction::Mute { duration, .. },
                ..
            }))) => Ok(duration),
            Err(e) => Err(e),
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(
            mute("/mute bob 2 weeks"),
            Err(CommandError::Bad(
                "write \"2 weeks\" as one word: 2w".to_owned()
            ))
        );
        assert_eq!(mute("/mute bob 2w."), Ok(parse_duration("2w").ok()));
        assert_eq!(mute("/mute bob 2w"), Ok(parse_duration("2w").ok()));
        for line in ["/mute bob 2w spam", "/mute bob spam", "/mute bob 3 strikes"] {
            assert!(matches!(mute(line), Err(CommandError::Bad(_))), "{line}");
        }
    }

    #[test]
    fn notices_go_to_a_room_or_a_nick() {
        assert_eq!(
            cmd("/notice #Rust  build is green"),
            Command::Notice {
                room: r("#rust"),
                text: t("build is green")
            }
        );
        assert_eq!(
            cmd("/NOTICE bob ping"),
            Command::NoticeTo {
                to: Nick::new("bob").unwrap(),
                text: t("ping")
            }
        );
        // `//` is not special after the target: the text is taken as typed.
        assert_eq!(
            cmd("/notice bob /not a command"),
            Command::NoticeTo {
                to: Nick::new("bob").unwrap(),
                text: t("/not a command")
            }
        );
        for line in [
            "/notice",
            "/notice bob",
            "/notice #rust",
            "/notice   #rust   ",
        ] {
            assert_eq!(
                parse(line),
                Err(CommandError::Usage("/notice #room|nick text")),
                "{line}"
            );
        }
        // A bad target says what is wrong with it.
        let e = parse("/notice #bad! hi").unwrap_err();
        assert!(matches!(e, CommandError::Invalid(_)), "{e:?}");
        assert!(e.to_string().contains("room name"), "{e}");
        let e = parse("/notice 9lives hi").unwrap_err();
        assert!(
            matches!(e, CommandError::Invalid(InvalidName::NickChars(_))),
            "{e:?}"
        );
        assert!(e.to_string().contains("starts with a letter"), "{e}");
    }

    #[test]
    fn help_covers_every_command() {
        for (u, _) in HELP {
            let name = u.split(' ').next().unwrap();
            // Every listed command is known to the parser (it may want arguments).
            assert!(!matches!(parse(name), Err(CommandError::Unknown(_))));
        }
        // What /help says of /history's N is what the server gives at most.
        let (_, history) = HELP
            .iter()
            .find(|(u, _)| u.starts_with("/history"))
            .unwrap();
        let most = format!("at most {}", crate::limits::HISTORY_PAGE_MAX);
        assert!(history.contains(&most), "{history}");
    }

    /// The page's moderation menu (www's wasm glue read it with its own copy of these rules
    /// until the thirty-first session): its actions are the commands' actions, and its refusals
    /// say why in the commands' words.
    #[test]
    fn a_menus_actions_read_as_the_commands_do() {
        use crate::moderation::ModeChange;
        use crate::time::Millis;
        let typed = |line: &str| match cmd(line) {
            Command::Moderate { action, .. } => action,
            other => panic!("{line:?} gave {other:?}"),
        };
        assert_eq!(
            menu_action("ban", " bob ", "1h").unwrap(),
            ModAction::Ban {
                target: "bob".into(),
                duration: Some(Millis(3_600_000)),
                reason: None
            }
        );
        assert_eq!(
            menu_action("ban", "account:bob", "").unwrap(),
            typed("/ban #r account:bob")
        );
        assert_eq!(
            menu_action("kick", "bob", " spam ").unwrap(),
            typed("/kick #r bob spam")
        );
        assert_eq!(
            menu_action("kick", "bob", "").unwrap(),
            ModAction::Kick {
                nick: Nick::new("bob").unwrap(),
                reason: None
            }
        );
        assert_eq!(
            menu_action("mute", "eve", "10m").unwrap(),
            typed("/mute #r eve 10m")
        );
        assert_eq!(
            menu_action("unmute", "eve", "").unwrap(),
            typed("/unmute #r eve")
        );
        assert_eq!(
            menu_action("unban", "eve", "").unwrap(),
            typed("/unban #r eve")
        );
        for op in ["op", "deop", "voice", "devoice", "invite"] {
            let line = format!("/{op} #r carol");
            assert_eq!(menu_action(op, "carol", "").unwrap(), typed(&line), "{op}");
        }
        assert_eq!(
            menu_action("mode", "+m", "").unwrap(),
            ModAction::Mode(ModeChange::Moderated(true))
        );
        assert_eq!(
            menu_action("mode", "+l", "20").unwrap(),
            ModAction::Mode(ModeChange::Limit(Some(20)))
        );
        assert_eq!(
            menu_action("mode", "+k", "sesame").unwrap(),
            typed("/mode #r +k sesame")
        );
        assert_eq!(
            menu_action("settings", "", "").unwrap(),
            ModAction::Settings
        );
        assert_eq!(menu_action("bans", "", "").unwrap(), ModAction::Bans);

        let refused = |a, t, g| menu_action(a, t, g).unwrap_err().to_string();
        assert_eq!(
            refused("kick", "", ""),
            Nick::new("").unwrap_err().to_string()
        );
        assert_eq!(refused("ban", " ", ""), "whom?");
        assert_eq!(refused("mute", "", "1h"), "whom?");
        assert_eq!(
            refused("ban", "bob", "forever"),
            parse_duration("forever").unwrap_err().to_string()
        );
        assert_eq!(
            refused("mode", "+k", ""),
            ModeChange::parse("+k", None).unwrap_err()
        );
        assert_eq!(
            refused("explode", "bob", ""),
            "\"explode\" is not a moderation action"
        );
    }
}
