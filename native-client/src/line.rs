//! Line mode, used when stdin or stdout is not a terminal: every line read from stdin is typed
//! into the Session (chat for the room last joined, or a `/command`), each once the one before
//! it is answered (see [`DriverConfig::lockstep`]); every event is printed in the format of
//! [`natter_core::render::session_lines`], with what only a printer that remembers says right
//! (who is away as it changes, a rename or a quit once, operators marked in `/who`, a join's
//! replay above the notice of the join: [`natter_core::chat::LineNews`]); at the end of stdin
//! the client waits until the server has acknowledged everything it sent, says `/quit`, and
//! exits: with status 1 if a message was refused (not delivered), or a room it was to join, or
//! a `/nick` it typed, so that a script does not take it for said (or said under the nick it
//! asked for), and if a line could not be done (an unknown command, a usage error, a command
//! the server refused): as `make -k` or `sqlite3` without `-bail` do, every line is still
//! tried, and the status says afterwards that not all of them were done.

use crate::driver::{self, Command, DriverConfig, DriverError};
use natter_core::Nick;
use natter_core::chat::LineNews;
use natter_core::command::{Command as CommandLine, Input};
use natter_core::limits::{MAX_LINE_BYTES, MAX_ROOMS_PER_USER};
use natter_core::session::Session;
use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Why line mode ended badly.
#[derive(Debug, Error)]
pub enum LineError {
    /// The driver gave up.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// The driver task failed (a bug: it panicked).
    #[error("the connection task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The server refused a room the client was asked to join (`--room`, `/join`): what a
    /// script meant to say there went nowhere.
    #[error("could not join {room}: {why}")]
    NotJoined {
        /// The room.
        room: String,
        /// Why, as the server said.
        why: String,
    },
    /// The server refused a `/nick` the input asked for: what followed was said under the
    /// nick the client had.
    #[error("could not change the nick to {nick}: {why}")]
    NotRenamed {
        /// The nick asked for.
        nick: String,
        /// Why, as the server said.
        why: String,
    },
    /// Every line was answered, but some could not be done: a command natter does not know or
    /// could not parse, or one the server refused (`/kick` by someone who is not an
    /// operator). A script must not take them for done.
    #[error(
        "{count} line{s} of the input could not be done (the last: {last})",
        s = if *count == 1 { "" } else { "s" }
    )]
    NotDone {
        /// Lines not done.
        count: usize,
        /// Why the last one was not, as it was said.
        last: String,
    },
    /// Every line was answered, but the server refused some messages (a full disk, flood
    /// control, a muted room, an unknown nick): a script must not take them for delivered.
    #[error("the server refused {count} of the messages sent (the last: {last})")]
    Refused {
        /// Messages not delivered.
        count: usize,
        /// Why the last one was refused, as the server said.
        last: String,
    },
}

/// Runs line mode until the Session ends. Returns when it is safe to exit.
pub async fn run(session: Session, mut config: DriverConfig) -> Result<(), LineError> {
    config.lockstep = true;
    config.shows_everything = true;
    // Dropped by the stdin thread when it returns: at the end of input.
    let (input_end_tx, input_end_rx) = tokio::sync::watch::channel(());
    config.input_ended = Some(input_end_rx);
    // When the Session took the first account line typed: the account's answers after it are
    // the input's (reading it said nothing: stdin is read ahead of the Session taking it).
    let account_line = Arc::new(std::sync::OnceLock::new());
    config.account_line = Some(account_line.clone());
    let (cmd_tx, cmd_rx) = mpsc::channel(driver::COMMAND_QUEUE);
    let (ev_tx, mut ev_rx) = mpsc::channel(driver::EVENT_QUEUE);
    let mut me = session.nick().clone();
    // The rooms given to join (`--room`): their replays end as a `/join`'s do.
    let joins_asked = session.joining().to_vec();
    let driver = tokio::spawn(driver::run(session, config, cmd_rx, ev_tx));
    // The nicks the input asked for with `/nick`: a refusal of one of those is the script's
    // failure, unlike a rename nobody typed (a registered nick's owner signing in).
    let asked = AskedNicks::default();
    let asked_by_stdin = asked.clone();
    // Set once the input said `/quit` or ended (line mode then says it): the close that
    // follows is a goodbye, not a drop.
    let quit_asked = Arc::new(AtomicBool::new(false));
    let quit_by_stdin = quit_asked.clone();

    // A plain thread: a blocking read of stdin cannot be cancelled, and a tokio blocking task
    // would hold up the runtime's shutdown until the user pressed Enter. This thread simply
    // dies with the process.
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            read_stdin(
                std::io::stdin().lock(),
                &cmd_tx,
                &asked_by_stdin,
                &quit_by_stdin,
            );
            drop(input_end_tx);
        })
        .map_err(|e| tracing::error!(error = %e, "cannot start the stdin reader"))
        .ok();

    let mut out = tokio::io::stdout();
    let mut refused = Refused::default();
    let mut news = LineNews::default();
    for room in &joins_asked {
        news.join_asked(room.clone());
    }
    let mut received: u64 = 0;
    // When the notice held now began to be held (its join).
    let mut held_since: Option<tokio::time::Instant> = None;
    loop {
        // A join's notice is held for its replay: said at the replay's end, or once core's
        // wait has passed since the join, however much of the replay came meanwhile.
        let next = if let Some(held) = news.hold_for() {
            let since = *held_since.get_or_insert_with(tokio::time::Instant::now);
            let held = std::time::Duration::from_millis(held.0);
            tokio::time::timeout_at(since + held, ev_rx.recv()).await
        } else {
            Ok(ev_rx.recv().await)
        };
        let ev = match next {
            Ok(Some(ev)) => ev,
            Ok(None) => {
                let _ = write_lines(&mut out, &news.flush()).await;
                break;
            }
            Err(_) => {
                held_since = None;
                if write_lines(&mut out, &news.flush()).await.is_err() {
                    break;
                }
                continue;
            }
        };
        received += 1;
        // Every room a `/join` line names is waited for (the session shows only the last).
        for room in asked.take_joins() {
            news.join_asked(room);
        }
        let typed_account = account_line.get().is_some_and(|before| received > *before);
        let lines = closing_lines(
            &ev,
            news.lines(&ev, &me),
            quit_asked.load(Ordering::Relaxed),
        );
        // A join (a new notice held) starts the wait again; nothing held, none is running.
        if matches!(ev, natter_core::session::Event::Joined { .. }) || !news.holding() {
            held_since = None;
        }
        track_nick(&ev, &mut me);
        refused.note(&ev, &asked, typed_account);
        if write_lines(&mut out, &lines).await.is_err() {
            // stdout is gone (`natter | head -1`): nobody is listening, so leave.
            break;
        }
    }
    // Dropping the receiver tells the driver the front-end is gone (it quits).
    drop(ev_rx);
    driver.await??;
    refused.skipped(asked.skipped());
    refused.result()
}

/// The messages the server refused (each an [`natter_core::session::Event::Settled`]
/// `{ delivered: false }` after an error about it), and the last reason.
#[derive(Debug, Default)]
struct Refused {
    count: usize,
    last: Option<String>,
    /// The last room the server would not let us into, and why.
    not_joined: Option<(String, String)>,
    /// The last nick asked for with `/nick` that the server refused, and why.
    not_renamed: Option<(String, String)>,
    /// Lines of the input that could not be done, and why the last one was not.
    not_done: usize,
    last_not_done: Option<String>,
}

/// The nicks (folded) that `/nick` lines of the input asked for, how many lines were skipped
/// as too long, and the rooms `/join` lines asked for not yet handed to [`LineNews`], shared
/// by the stdin thread and the event loop.
#[derive(Debug, Default, Clone)]
struct AskedNicks(
    std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Lines skipped as too long to send.
    Arc<std::sync::atomic::AtomicUsize>,
    /// Rooms asked for by `/join` (at most [`MAX_ROOMS_PER_USER`] waiting).
    Arc<std::sync::Mutex<Vec<natter_core::RoomName>>>,
);

impl AskedNicks {
    fn ask(&self, nick: &Nick) {
        if let Ok(mut set) = self.0.lock() {
            set.insert(nick.folded());
        }
    }

    fn asked(&self, nick: &Nick) -> bool {
        self.0.lock().is_ok_and(|set| set.contains(&nick.folded()))
    }

    /// A `/join` line asks for `room`: [`LineNews::join_asked`], by the event loop.
    fn ask_join(&self, room: natter_core::RoomName) {
        if let Ok(mut rooms) = self.2.lock()
            && rooms.len() < MAX_ROOMS_PER_USER
        {
            rooms.push(room);
        }
    }

    /// The rooms asked for by `/join` lines since the last call.
    fn take_joins(&self) -> Vec<natter_core::RoomName> {
        self.2
            .lock()
            .map(|mut rooms| std::mem::take(&mut *rooms))
            .unwrap_or_default()
    }

    fn skip_line(&self) {
        self.1.fetch_add(1, Ordering::Relaxed);
    }

    fn skipped(&self) -> usize {
        self.1.load(Ordering::Relaxed)
    }
}

impl Refused {
    /// Notes `ev`; `typed_account`: the Session had taken an account line of the input
    /// (`/login`, `/register`, `/password`) before it said `ev`.
    fn note(&mut self, ev: &natter_core::session::Event, asked: &AskedNicks, typed_account: bool) {
        use natter_core::session::{About, Event};
        use natter_core::wire::ErrorKind;
        match ev {
            Event::Error {
                about: About::Message(_),
                text,
                ..
            } => self.last = Some(text.clone()),
            Event::Error {
                about: About::Join(room),
                text,
                ..
            } => self.not_joined = Some((room.to_string(), text.clone())),
            Event::Error {
                about: About::Nick(nick),
                text,
                ..
            } if asked.asked(nick) => self.not_renamed = Some((nick.to_string(), text.clone())),
            // A line typed that was not done: not understood (`kind: None`, said by the
            // session), or refused by the server. An operator's command refused names the room
            // when it has one (`/topic`); a joiner told it may not speak there (`Muted`) was
            // refused nothing.
            Event::Error {
                about: About::Input,
                text,
                ..
            }
            | Event::Error {
                about: About::Room(_),
                kind: Some(ErrorKind::NotOperator),
                text,
            } => {
                self.not_done += 1;
                self.last_not_done = Some(text.clone());
            }
            // An account line typed (`/login`, `/register`, `/password`) refused. Not one: a
            // refusal said before the Session took any such line (the remembered key at the
            // start, the password tried after it, even with the line read already), a busy
            // server's answer (the session asks again by itself), or a sign-out the server
            // made unasked.
            Event::Error {
                about: About::Account,
                kind,
                text,
            } if typed_account
                && !matches!(kind, Some(ErrorKind::Unavailable | ErrorKind::NotSignedIn)) =>
            {
                self.not_done += 1;
                self.last_not_done = Some(text.clone());
            }
            Event::Settled {
                delivered: false, ..
            } => self.count += 1,
            _ => {}
        }
    }

    /// `count` lines of the input skipped as too long to send: not done either.
    fn skipped(&mut self, count: usize) {
        if count > 0 {
            self.not_done += count;
            self.last_not_done.get_or_insert_with(|| {
                format!("skipped a line longer than {MAX_LINE_BYTES} bytes")
            });
        }
    }

    /// How line mode ends: refused messages first (they were sent), then a refused join, then
    /// a refused `/nick`, then the other lines not done.
    fn result(&self) -> Result<(), LineError> {
        if self.count > 0 {
            return Err(LineError::Refused {
                count: self.count,
                last: self
                    .last
                    .clone()
                    .unwrap_or_else(|| "no reason given".into()),
            });
        }
        if let Some((room, why)) = &self.not_joined {
            return Err(LineError::NotJoined {
                room: room.clone(),
                why: why.clone(),
            });
        }
        if let Some((nick, why)) = &self.not_renamed {
            return Err(LineError::NotRenamed {
                nick: nick.clone(),
                why: why.clone(),
            });
        }
        match (self.not_done, &self.last_not_done) {
            (0, _) | (_, None) => Ok(()),
            (count, Some(last)) => Err(LineError::NotDone {
                count,
                last: last.clone(),
            }),
        }
    }
}

/// What line mode prints for `ev` (`lines`, as the session's events are printed): the
/// close after a quit the input asked for (`/quit`, or the end of input) is `-- goodbye`, as
/// nc says it; any other close stays `-- disconnected`.
fn closing_lines(
    ev: &natter_core::session::Event,
    mut lines: Vec<String>,
    quit_asked: bool,
) -> Vec<String> {
    use natter_core::session::{ConnState, Event};
    if quit_asked && matches!(ev, Event::State(ConnState::Closed)) {
        let closed = natter_core::render::state_words(ConnState::Closed).map(|w| format!("-- {w}"));
        for l in &mut lines {
            if Some(&*l) == closed.as_ref() {
                *l = "-- goodbye".to_owned();
            }
        }
    }
    lines
}

fn track_nick(ev: &natter_core::session::Event, me: &mut Nick) {
    use natter_core::session::Event;
    match ev {
        Event::Welcome { nick, .. } | Event::Nick(nick) => *me = nick.clone(),
        _ => {}
    }
}

async fn write_lines(out: &mut tokio::io::Stdout, lines: &[String]) -> std::io::Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut text = String::new();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    out.write_all(text.as_bytes()).await?;
    out.flush().await
}

/// Reads lines and queues them as commands; returns (dropping the sender, which tells the
/// driver input has ended) at end of input or when the driver is gone.
fn read_stdin(
    mut input: impl BufRead,
    commands: &mpsc::Sender<Command>,
    asked: &AskedNicks,
    quit_asked: &AtomicBool,
) {
    let mut buf = Vec::new();
    loop {
        let line = match read_line_bounded(&mut input, MAX_LINE_BYTES, &mut buf) {
            Ok(Some(ReadLine::Line)) => String::from_utf8_lossy(&buf).into_owned(),
            Ok(Some(ReadLine::TooLong)) => {
                tell!("natter: skipped a line longer than {MAX_LINE_BYTES} bytes");
                asked.skip_line();
                continue;
            }
            Ok(None) => {
                quit_asked.store(true, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                tell!("natter: cannot read stdin: {e}");
                return;
            }
        };
        match natter_core::command::parse(&line) {
            Ok(Some(Input::Command(CommandLine::Nick(nick)))) => asked.ask(&nick),
            // Said before the line goes: its joins' answers come after.
            Ok(Some(Input::Command(
                CommandLine::Join(room) | CommandLine::JoinKey { room, .. },
            ))) => asked.ask_join(room),
            Ok(Some(Input::Command(CommandLine::JoinMany(rooms)))) => {
                rooms.into_iter().for_each(|room| asked.ask_join(room));
            }
            Ok(Some(Input::Command(CommandLine::Quit(_)))) => {
                quit_asked.store(true, Ordering::Relaxed);
            }
            _ => {}
        }
        // No conversation is open in line mode: the session's default room (the one last
        // joined) takes chat, as a script expects.
        if commands
            .blocking_send(Command::Input { line, to: None })
            .is_err()
        {
            return;
        }
    }
}

/// What [`read_line_bounded`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadLine {
    /// A line is in the buffer (without its `\n` or `\r\n`).
    Line,
    /// The line was longer than the limit and was skipped whole.
    TooLong,
}

/// Reads one line into `buf` holding at most `max` bytes of it; a longer line is consumed and
/// reported as [`ReadLine::TooLong`]. `None` at end of input.
pub fn read_line_bounded(
    input: &mut impl BufRead,
    max: usize,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<ReadLine>> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            if !any {
                return Ok(None);
            }
            break;
        }
        any = true;
        let (part, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (&chunk[..i], i + 1),
            None => (chunk, chunk.len()),
        };
        let found_newline = done > part.len();
        if buf.len() + part.len() > max {
            too_long = true;
        } else {
            buf.extend_from_slice(part);
        }
        input.consume(done);
        if found_newline {
            break;
        }
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(if too_long {
        buf.clear();
        ReadLine::TooLong
    } else {
        ReadLine::Line
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Result<String, ()>> {
        let mut r = std::io::BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(l) = read_line_bounded(&mut r, max, &mut buf).unwrap() {
            out.push(match l {
                ReadLine::Line => Ok(String::from_utf8(buf.clone()).unwrap()),
                ReadLine::TooLong => Err(()),
            });
        }
        out
    }

    #[test]
    fn a_quit_asked_for_closes_with_a_goodbye_and_a_drop_stays_disconnected() {
        use natter_core::session::{ConnState, Event};
        let closed = Event::State(ConnState::Closed);
        let printed = |quit_asked| {
            let lines = natter_core::render::session_lines(&closed, &Nick::new("me").unwrap());
            closing_lines(&closed, lines, quit_asked)
        };
        assert_eq!(printed(true), ["-- goodbye"]);
        assert_eq!(printed(false), ["-- disconnected"]);
        // Other events are printed as they are, asked or not.
        let said = vec!["-- you are now known as me".to_owned()];
        let nick = Event::Nick(Nick::new("me").unwrap());
        assert_eq!(closing_lines(&nick, said.clone(), true), said);
    }

    #[test]
    fn the_input_saying_quit_or_ending_asks_for_the_quit() {
        let read = |input: &'static [u8]| {
            let (tx, mut rx) = mpsc::channel(8);
            let quit = AtomicBool::new(false);
            read_stdin(input, &tx, &AskedNicks::default(), &quit);
            let mut typed = Vec::new();
            while let Ok(Command::Input { line, .. }) = rx.try_recv() {
                typed.push(line);
            }
            (typed, quit.load(Ordering::Relaxed))
        };
        assert_eq!(
            read(b"hi\n/quit bye\n"),
            (vec!["hi".into(), "/quit bye".into()], true)
        );
        assert_eq!(read(b"hi\n"), (vec!["hi".into()], true));
        // A closed command queue (the driver gone) is no quit the input asked for.
        let (tx, rx) = mpsc::channel(8);
        drop(rx);
        let quit = AtomicBool::new(false);
        read_stdin(&b"hi\nmore\n"[..], &tx, &AskedNicks::default(), &quit);
        assert!(!quit.load(Ordering::Relaxed));
    }

    /// A line too long to send was skipped, not done: the status says so, as for a typo.
    #[test]
    fn a_line_too_long_skipped_is_a_line_not_done() {
        let (tx, mut rx) = mpsc::channel(8);
        let asked = AskedNicks::default();
        let mut input = b"hi\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 1));
        input.extend(b"\nthere\n");
        read_stdin(&input[..], &tx, &asked, &AtomicBool::new(false));
        let mut typed = Vec::new();
        while let Ok(Command::Input { line, .. }) = rx.try_recv() {
            typed.push(line);
        }
        assert_eq!(typed, ["hi", "there"]);
        let mut r = Refused::default();
        assert!(r.result().is_ok());
        r.skipped(asked.skipped());
        assert_eq!(
            r.result().unwrap_err().to_string(),
            format!(
                "1 line of the input could not be done (the last: skipped a line longer than \
                 {MAX_LINE_BYTES} bytes)"
            )
        );
    }

    #[test]
    fn lines_are_split_and_bounded() {
        assert_eq!(
            lines(b"hi\r\nthere\n\nlast", 10),
            [
                Ok("hi".into()),
                Ok("there".into()),
                Ok("".into()),
                Ok("last".into())
            ]
        );
        assert_eq!(lines(b"0123456789ab\nok\n", 10), [Err(()), Ok("ok".into())]);
        assert_eq!(lines(b"0123456789\n", 10), [Ok("0123456789".into())]);
        assert!(lines(b"", 10).is_empty());
    }

    /// `echo done | natter --room '#ci'` whose join the server refused (invite-only, a ban, a
    /// key, full): the line was said nowhere, and the client exited 0, so a CI script took
    /// its notice for sent. A refused join makes the exit status 1, with the reason.
    #[test]
    fn a_refused_join_is_a_failure_of_the_script() {
        use natter_core::session::{About, Event};
        let mut r = Refused::default();
        let asked = AskedNicks::default();
        r.note(
            &Event::Error {
                kind: None,
                about: About::Input,
                text: "unknown command /frob (try /help)".into(),
            },
            &asked,
            false,
        );
        assert_eq!(
            r.result().unwrap_err().to_string(),
            "1 line of the input could not be done (the last: unknown command /frob (try /help))",
        );
        r.note(
            &Event::Error {
                kind: None,
                about: About::Join(natter_core::RoomName::new("#ci").unwrap()),
                text: "#ci is invite-only".into(),
            },
            &asked,
            false,
        );
        let e = r.result().unwrap_err().to_string();
        assert_eq!(
            e, "could not join #ci: #ci is invite-only",
            "said before a typo"
        );
    }

    /// `printf '/frob\n/ban\nhi\n' | natter`: every line is tried, and the status says
    /// afterwards that some were not done (a script can tell), with the last reason. A refusal
    /// the server sends about a room unasked (a joiner muted there) is not a line not done.
    #[test]
    fn lines_not_done_make_the_status_1_once_every_line_was_tried() {
        use natter_core::session::{About, Event};
        use natter_core::wire::ErrorKind;
        let asked = AskedNicks::default();
        let mut r = Refused::default();
        let lobby = natter_core::RoomName::lobby();
        r.note(
            &Event::Error {
                kind: Some(ErrorKind::Muted),
                about: About::Room(lobby.clone()),
                text: "you may not speak in #lobby".into(),
            },
            &asked,
            false,
        );
        r.note(&Event::Info("hi".into()), &asked, false);
        assert!(r.result().is_ok(), "{:?}", r.result());
        for (kind, about, text) in [
            (None, About::Input, "unknown command /frob (try /help)"),
            (
                Some(ErrorKind::NotOperator),
                About::Input,
                "you are not an operator of #lobby",
            ),
            (
                Some(ErrorKind::NotOperator),
                About::Room(lobby.clone()),
                "only an operator may change the topic of #lobby",
            ),
        ] {
            r.note(
                &Event::Error {
                    kind,
                    about,
                    text: text.into(),
                },
                &asked,
                false,
            );
        }
        assert_eq!(
            r.result().unwrap_err().to_string(),
            "3 lines of the input could not be done (the last: only an operator may change the \
             topic of #lobby)"
        );
        // A refused message says more: it was sent, and not delivered.
        r.note(
            &Event::Error {
                kind: Some(ErrorKind::Flood),
                about: About::Message(natter_core::types::MsgId(1)),
                text: "slow down".into(),
            },
            &asked,
            false,
        );
        r.note(
            &Event::Settled {
                id: natter_core::types::MsgId(1),
                delivered: false,
            },
            &asked,
            false,
        );
        assert!(matches!(
            r.result(),
            Err(LineError::Refused { count: 1, .. })
        ));
    }

    /// A `/nick` the input typed and the server refused fails the script, as a refused join
    /// does; a rename nobody typed (a registered nick's owner signing in) does not.
    #[test]
    fn a_refused_nick_typed_is_a_failure_but_one_not_typed_is_not() {
        use natter_core::session::{About, Event};
        let refusal = |n: &str| Event::Error {
            kind: None,
            about: About::Nick(Nick::new(n).unwrap()),
            text: format!("{n} is taken"),
        };
        let asked = AskedNicks::default();
        let mut r = Refused::default();
        r.note(&refusal("owner"), &asked, false);
        assert!(r.result().is_ok(), "not asked for");
        asked.ask(&Nick::new("Bob").unwrap());
        r.note(&refusal("bob"), &asked, false);
        let e = r.result().unwrap_err().to_string();
        assert_eq!(e, "could not change the nick to bob: bob is taken");
    }

    /// `printf '/login alice wrong\nhi\n' | natter`: the sign-in typed was refused (and `hi`
    /// said as a guest), a line not done; so is a `/password` or `/register` refused. A
    /// refusal before any such line was typed (the remembered key refused at the start,
    /// signed in with the password after it) is none, nor a busy server's answer (asked again
    /// by itself), nor a sign-out the server made unasked.
    #[test]
    fn an_account_line_refused_is_a_line_not_done() {
        use natter_core::session::{About, Event};
        use natter_core::wire::ErrorKind;
        let account_error = |kind, text: &str| Event::Error {
            kind: Some(kind),
            about: About::Account,
            text: text.into(),
        };
        let asked = AskedNicks::default();
        let mut r = Refused::default();
        r.note(
            &account_error(
                ErrorKind::SignInFailed,
                "could not sign in with this device's key: wrong account name or password",
            ),
            &asked,
            false,
        );
        assert!(r.result().is_ok(), "no account line taken yet");
        r.note(
            &account_error(ErrorKind::Unavailable, "the server is busy"),
            &asked,
            true,
        );
        r.note(
            &account_error(ErrorKind::NotSignedIn, "this device was signed out"),
            &asked,
            true,
        );
        assert!(r.result().is_ok(), "{:?}", r.result());
        r.note(
            &account_error(
                ErrorKind::SignInFailed,
                "could not sign in: wrong account name or password",
            ),
            &asked,
            true,
        );
        assert_eq!(
            r.result().unwrap_err().to_string(),
            "1 line of the input could not be done (the last: could not sign in: wrong account \
             name or password)"
        );
    }
}
