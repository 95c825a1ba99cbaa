//! The full-screen terminal UI: terminal setup and restore, and the event loop that joins
//! keyboard input, the driver's session events and a clock tick. What is on screen is
//! natter-core's chat model ([`Chat`], fed the session's events), drawn by [`draw`]; the TUI
//! keeps only view concerns: scroll positions ([`view::View`]) and the input line
//! ([`input::InputLine`]). This file routes events between them and rings the bell.
//!
//! Keys: Enter sends (to the open conversation); Up/Down history; Tab completes a nick, a
//! command at the start of the line or a room we are in ([`Chat::completions`]);
//! Left/Right/Home/End/Backspace/Delete edit (also Ctrl+A, Ctrl+E, Ctrl+U, Ctrl+W; Ctrl+Left/Right,
//! Alt+Left/Right and Alt+B/Alt+F move by word); Alt+1..9
//! picks a conversation, Ctrl+N/Ctrl+P the next/previous one; Ctrl+L redraws; PgUp/PgDn
//! scroll, and so does the mouse wheel ([`WHEEL_ROWS`] rows a notch), and either with a room's
//! top in view loads its older lines (as the model says: below the oldest it holds, one page at
//! a time); `/search` shows results in place of the conversation until Esc; Ctrl+C
//! (Ctrl+D on an empty line, or `/quit`) leaves. A paste is inserted into the input line with
//! its line breaks kept (drawn as `↵`) and sent on Enter, each line as its own message, as
//! irssi and WeeChat do; more than [`input::PASTE_ASK_LINES`] lines are asked about first
//! (Enter again sends them), more than [`input::PASTE_MAX_LINES`] are not sent, nor a paste
//! with a password command (`/login`) on one of its lines.

pub mod draw;
pub mod first_room;
pub mod input;
pub mod view;

use crate::clock;
use crate::driver::{self, Command, DriverConfig, DriverError};
use crossterm::event::{
    DisableBracketedPaste, DisableFocusChange, EnableBracketedPaste, EnableFocusChange,
    Event as TermEvent, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent,
    MouseEventKind,
};
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen};
use futures_util::StreamExt;
use input::InputLine;
use natter_core::chat::{Chat, ConvId};
use natter_core::command::Clear;
use natter_core::limits::SCROLLBACK_PAGE;
use natter_core::session::Session;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::io::{Stdout, Write};
use std::time::Duration;
use thiserror::Error;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use view::View;

/// Session events folded into the model before the next redraw (bounds one frame's work).
const EVENTS_PER_FRAME: usize = 256;

/// The terminal bell.
const BEL: &[u8] = b"\x07";

/// Rows a notch of the mouse wheel scrolls, as in irssi and WeeChat.
pub const WHEEL_ROWS: isize = 3;

/// Mouse reporting for the wheel: xterm's "normal tracking" (button presses and releases, the
/// wheel's notches among them; no motion, unlike crossterm's `EnableMouseCapture`, which asks
/// for every move of the pointer) in SGR encoding. Without it a terminal turns the wheel into
/// Up/Down arrows in the alternate screen (xterm's `alternateScroll`, on by default in most),
/// and the wheel browsed the input history. With it, a terminal selects text with Shift held
/// (Option in iTerm2) while dragging.
#[derive(Debug, Clone, Copy)]
pub struct WheelReporting(pub bool);

impl crossterm::Command for WheelReporting {
    fn write_ansi(&self, f: &mut impl std::fmt::Write) -> std::fmt::Result {
        if self.0 {
            f.write_str("\x1b[?1000h\x1b[?1006h")
        } else {
            f.write_str("\x1b[?1006l\x1b[?1000l")
        }
    }
}

/// What `/help` adds for the full-screen UI, below the commands.
const KEYS_HELP: &str = "keys: Enter sends, Up/Down input history, Tab completes a nick, a \
/command or a #room (Tab again: the next match), Ctrl+Left/Right (or Alt+B/F) move by word, Alt+1..9 or Ctrl+N/Ctrl+P switch conversations, PgUp/PgDn or the mouse wheel scroll (at the top: older \
lines; Shift+drag selects text), Esc closes search results, Ctrl+L redraws the screen, Ctrl+C (or Ctrl+D on an empty line) quits; /query nick opens a direct conversation (/part there closes it), /clear empties the open one (/clear all: every one)";

/// The keys' help when `line` asks for the whole help (`/help`, `/?`; `/help join` is about
/// one command, which the session answers).
fn keys_help(line: &str) -> Option<&'static str> {
    use natter_core::command::{self, Command as Typed, Input};
    matches!(
        command::parse(line),
        Ok(Some(Input::Command(Typed::Help(None))))
    )
    .then_some(KEYS_HELP)
}

/// What Tab completes `word` to: the model's matches (the conversations' own commands,
/// `/clear` and `/query`, first).
fn completions(chat: &Chat, word: &str, line_start: bool) -> Vec<String> {
    chat.completions(word, line_start)
}

/// How `/clear` is typed.
const CLEAR_USAGE: &str = "usage: /clear [all] (empties the open conversation on this screen, or \
every one; nothing is sent)";

/// `/help clear`'s line, as `/help` words the session's commands.
const CLEAR_HELP: &str = "/clear [all]             empty the open conversation on this screen \
(all: every one); nothing is sent";

/// `/help clear`: the session knows no `/clear` to help with. (`/help query` is the
/// conversations': [`Chat::typed`].)
fn clear_help(line: &str) -> Option<&'static str> {
    use natter_core::command::{self, CommandError};
    match command::parse(line) {
        Err(CommandError::NoHelp(name)) if name.eq_ignore_ascii_case("clear") => Some(CLEAR_HELP),
        _ => None,
    }
}

/// Lets the view follow what changed since the last frame, drawn on `drawn_on` (none yet),
/// for a frame on a screen of `size`: a view scrolled up keeps its place. Its scroll is in
/// rows of the last frame until [`View::rewrap`] counts it at the new width, so the lines that
/// came meanwhile add their rows at the last frame's width, then a resize rewraps them with
/// the rest (added at the new width, they were counted as rows of the old one: a line that
/// came with a resize moved the view by the rows its width changed).
fn keep_place(
    view: &mut View,
    chat: &mut Chat,
    drawn_on: Option<ratatui::layout::Rect>,
    size: ratatui::layout::Rect,
    tz: i32,
) {
    let counted_on = drawn_on.unwrap_or(size);
    view.follow_changes(chat, |chat, line| {
        draw::line_rows(line, chat.me(), counted_on, tz)
    });
    if counted_on.width != size.width {
        for id in view.scrolled() {
            let was = draw::conv_rows(chat, &id, counted_on, tz);
            let now = draw::conv_rows(chat, &id, size, tz);
            view.rewrap(&id, was.into_iter().zip(now));
        }
    }
}

/// How the TUI behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Ring the terminal bell on a mention of our nick or a direct message.
    pub bell: bool,
    /// Said on the first screen, before anything from the server: what natter chose for the
    /// person (the default server), and how to choose otherwise.
    pub first_note: Option<String>,
}

/// Why the TUI stopped badly.
#[derive(Debug, Error)]
pub enum TuiError {
    /// The terminal could not be set up or drawn to.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    /// The driver gave up.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// The driver task failed (a bug: it panicked).
    #[error("the connection task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// What a key asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this line (a paste's lines: each as a message, see [`input::lines_to_send`]).
    Send(String),
    /// A paste of this many messages: Enter again sends them.
    AskPaste(usize),
    /// A paste of this many lines: more than one Enter sends.
    TooManyLines(usize),
    /// A paste of several lines with a password command on one: not sent.
    PastedPassword,
    /// Switch to the `n`th room (1-based).
    Room(usize),
    /// Next (+1) or previous (-1) room.
    Step(isize),
    /// Scroll up (+) or down (-) a page.
    Page(isize),
    /// Scroll up (+) or down (-) this many rows (the mouse wheel).
    Scroll(isize),
    /// Complete the nick before the cursor.
    Complete,
    /// Close what covers the conversation (a search's results).
    Back,
    /// Draw the whole screen again (Ctrl+L): something else wrote over it.
    Redraw,
    /// Leave.
    Quit,
}

/// Applies a key to the input line; returns what else it asks for.
pub fn key_action(key: KeyEvent, input: &mut InputLine) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    match key.code {
        KeyCode::Char('c') if ctrl => return Some(Action::Quit),
        // As in a shell: the end of input on an empty line; in the middle of one, as in
        // irssi, WeeChat and readline, the character under the cursor goes.
        KeyCode::Char('d') if ctrl && input.text().is_empty() => return Some(Action::Quit),
        KeyCode::Char('d') if ctrl => input.delete(),
        KeyCode::Char('n') if ctrl => return Some(Action::Step(1)),
        KeyCode::Char('p') if ctrl => return Some(Action::Step(-1)),
        KeyCode::Char('a') if ctrl => input.home(),
        KeyCode::Char('e') if ctrl => input.end(),
        KeyCode::Char('u') if ctrl => input.clear(),
        KeyCode::Char('w') if ctrl => input.delete_word(),
        KeyCode::Char('l') if ctrl => return Some(Action::Redraw),
        KeyCode::Char(c @ '1'..='9') if alt => {
            return Some(Action::Room(usize::from(c as u8 - b'0')));
        }
        KeyCode::Char('b') if alt => input.word_left(),
        KeyCode::Char('f') if alt => input.word_right(),
        KeyCode::Char(_) if ctrl || alt => {}
        KeyCode::Char(c) => input.insert(c),
        KeyCode::Enter => {
            return match input.check() {
                input::Check::Send => input.submit().map(Action::Send),
                input::Check::Ask(n) => Some(Action::AskPaste(n)),
                input::Check::TooMany(n) => Some(Action::TooManyLines(n)),
                input::Check::Password => Some(Action::PastedPassword),
            };
        }
        KeyCode::Backspace => input.backspace(),
        KeyCode::Delete => input.delete(),
        KeyCode::Left if ctrl || alt => input.word_left(),
        KeyCode::Right if ctrl || alt => input.word_right(),
        KeyCode::Left => input.left(),
        KeyCode::Right => input.right(),
        KeyCode::Home => input.home(),
        KeyCode::End => input.end(),
        KeyCode::Up => input.history_prev(),
        KeyCode::Down => input.history_next(),
        KeyCode::PageUp => return Some(Action::Page(1)),
        KeyCode::PageDown => return Some(Action::Page(-1)),
        KeyCode::Tab => return Some(Action::Complete),
        KeyCode::Esc => return Some(Action::Back),
        _ => {}
    }
    None
}

/// What a mouse event asks for: the wheel scrolls the conversation (or a search's results);
/// a click or a drag asks nothing (selecting text is the terminal's, with Shift held).
pub fn mouse_action(mouse: MouseEvent) -> Option<Action> {
    match mouse.kind {
        MouseEventKind::ScrollUp => Some(Action::Scroll(WHEEL_ROWS)),
        MouseEventKind::ScrollDown => Some(Action::Scroll(-WHEEL_ROWS)),
        _ => None,
    }
}

/// What a terminal event asks for, applying keys and pastes to the input line (focus changes
/// are the main loop's).
pub fn event_action(ev: TermEvent, input: &mut InputLine) -> Option<Action> {
    match ev {
        TermEvent::Key(key) => key_action(key, input),
        TermEvent::Paste(text) => {
            input.paste(&text);
            None
        }
        TermEvent::Mouse(mouse) => mouse_action(mouse),
        TermEvent::FocusGained | TermEvent::FocusLost | TermEvent::Resize(..) => None,
    }
}

/// Puts the terminal back as it was. Safe to call more than once.
fn restore_terminal() {
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(
        std::io::stdout(),
        WheelReporting(false),
        DisableFocusChange,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// Restores the terminal when dropped: on return, on error and on unwinding.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn setup_terminal() -> Result<(TerminalGuard, Terminal<CrosstermBackend<Stdout>>), TuiError> {
    // Restore before the default hook prints, so a panic message is readable.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
    crossterm::terminal::enable_raw_mode()?;
    let guard = TerminalGuard;
    crossterm::execute!(
        std::io::stdout(),
        EnterAlternateScreen,
        EnableBracketedPaste,
        EnableFocusChange,
        WheelReporting(true)
    )?;
    let terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    Ok((guard, terminal))
}

/// Runs the TUI until the session ends or the user leaves.
pub async fn run(session: Session, config: DriverConfig, options: Options) -> Result<(), TuiError> {
    let (cmd_tx, cmd_rx) = mpsc::channel(driver::COMMAND_QUEUE);
    let (ev_tx, mut ev_rx) = mpsc::channel(driver::EVENT_QUEUE);
    let mut chat = Chat::new(session.nick().clone());
    if let Some(words) = &options.first_note {
        let now = read_clocks(&mut chat);
        chat.note(words.as_str(), now);
    }
    let mut view = View::new();
    let mut input = InputLine::new();
    let (guard, mut terminal) = setup_terminal()?;
    let driver = tokio::spawn(driver::run(session, config, cmd_rx, ev_tx));
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut quitting = false;
    // After `--login`: the most recently active of the account's rooms is opened, not the
    // first by name.
    let mut first_room = first_room::FirstRoom::default();
    // The screen's size at the last frame.
    let mut drawn_on: Option<ratatui::layout::Rect> = None;
    // Killed or hung up on: leave at once (the guard restores the terminal).
    let mut term = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;

    loop {
        let now = read_clocks(&mut chat);
        let tz = clock::local_offset_secs();
        if chat.poll_timeout().is_some_and(|t| t <= now) {
            chat.handle_timeout(now);
        }
        // Read markers, signed in: what the person is shown goes to the account (a full
        // command queue just leaves it for the next one).
        while let Some((room, seq)) = chat.poll_read(now) {
            if cmd_tx.try_send(Command::Read { room, seq }).is_err() {
                break;
            }
        }
        let size = terminal.size()?;
        let size = ratatui::layout::Rect::new(0, 0, size.width, size.height);
        keep_place(&mut view, &mut chat, drawn_on, size, tz);
        drawn_on = Some(size);
        if view.scroll(&chat) > 0 {
            // Not past the top (following a change may have asked for "the top"): lines put
            // there later must not make the view jump, and PgDn must move at once.
            let pane = draw::pane_on(&chat, &view, size, tz);
            view.clamp(&chat, pane.scroll);
        }
        let mut ring = false;
        while chat.poll_alert().is_some() {
            ring = true;
        }
        if ring && options.bell {
            let out = terminal.backend_mut();
            out.write_all(BEL)?;
            out.flush()?;
        }
        terminal.draw(|f| draw::draw(f, &chat, &view, &input, now, tz))?;
        tokio::select! {
            ev = ev_rx.recv() => {
                let Some(ev) = ev else { break };
                // Woken after a wait (a sleep, a clock step): stamped as of now.
                read_clocks(&mut chat);
                first_room.on_event(&ev, chat.current(), clock::now());
                chat.handle_event(&ev, clock::now());
                for _ in 1..EVENTS_PER_FRAME {
                    match ev_rx.try_recv() {
                        Ok(ev) => {
                            first_room.on_event(&ev, chat.current(), clock::now());
                            chat.handle_event(&ev, clock::now());
                        }
                        Err(_) => break,
                    }
                }
                if let Some(id) = first_room.pick(&chat, clock::now()) {
                    chat.open(&id);
                }
            }
            ev = keys.next() => {
                read_clocks(&mut chat);
                let action = match ev {
                    Some(Ok(TermEvent::FocusLost)) => {
                        chat.set_attention(false);
                        None
                    }
                    Some(Ok(TermEvent::FocusGained)) => {
                        chat.set_attention(true);
                        None
                    }
                    Some(Ok(ev)) => event_action(ev, &mut input),
                    // The terminal is gone: nothing left to show, so leave.
                    Some(Err(_)) | None => Some(Action::Quit),
                };
                // Rows to scroll up (+) or down (-): a page less a few rows of context, or the
                // wheel's.
                let page = isize::try_from(terminal.size()?.height)
                    .unwrap_or(isize::MAX)
                    .saturating_sub(4)
                    .max(1);
                let rows = match action {
                    Some(Action::Page(n)) => page * n.signum(),
                    Some(Action::Scroll(n)) => n,
                    _ => 0,
                };
                if action.as_ref().is_some_and(|a| *a != Action::Redraw) {
                    // The person is doing something where they are: theirs from now on.
                    first_room.chosen();
                }
                match action {
                    None => {}
                    Some(Action::Quit) if quitting => break,
                    Some(Action::Quit) => {
                        quitting = true;
                        if cmd_tx.try_send(Command::Quit).is_err() {
                            break;
                        }
                    }
                    Some(Action::Send(text)) => {
                        for line in input::lines_to_send(&text) {
                            send_typed(&mut chat, &cmd_tx, &line);
                        }
                    }
                    Some(Action::AskPaste(n)) => chat.note(
                        format!(
                            "this paste is {n} lines: Enter again sends them as {n} messages \
                             (Ctrl+U clears the input line)"
                        ),
                        clock::now(),
                    ),
                    Some(Action::TooManyLines(n)) => chat.note_error(
                        format!(
                            "this paste is {n} lines, more than one Enter sends (at most {}): \
                             send it in parts, or share it as a link (Ctrl+U clears the input line)",
                            input::PASTE_MAX_LINES
                        ),
                        clock::now(),
                    ),
                    Some(Action::PastedPassword) => chat.note_error(
                        "a line of this paste is a command with a password (/login, /register, \
                         /password): not sent, so that the password is not said as a message; \
                         send that command on its own line (Ctrl+U clears the input line)",
                        clock::now(),
                    ),
                    Some(Action::Room(n)) => {
                        let conv = chat.conv_number(n);
                        open(&mut chat, conv);
                    }
                    Some(Action::Step(step)) => {
                        let conv = chat.conv_after(step);
                        open(&mut chat, conv);
                    }
                    Some(Action::Page(_) | Action::Scroll(_)) => {
                        let size = terminal.size()?;
                        let size = ratatui::layout::Rect::new(0, 0, size.width, size.height);
                        if scroll_on(&mut chat, &mut view, rows, &mut drawn_on, size, tz)
                            && load_older(&mut chat, &cmd_tx)
                        {
                            view.paging(&chat);
                        }
                    }
                    Some(Action::Back) => chat.close_search(),
                    // Drawn whole on the next frame, over whatever else wrote there.
                    Some(Action::Redraw) => terminal.clear()?,
                    Some(Action::Complete) => {
                        input.complete(|word, line_start| completions(&chat, word, line_start));
                    }
                }
            }
            _ = tick.tick() => {}
            _ = term.recv() => break,
            _ = hangup.recv() => break,
            _ = tokio::signal::ctrl_c() => {
                if quitting { break; }
                quitting = true;
                let _ = cmd_tx.try_send(Command::Quit);
            }
        }
    }
    drop(terminal);
    drop(guard);
    if !quitting {
        // Left without a goodbye yet (signal, second Ctrl+C, terminal gone): say it now, so the
        // driver quits (bounded by its quit timeout) instead of waiting for acknowledgements.
        let _ = cmd_tx.try_send(Command::Quit);
    }
    drop(cmd_tx);
    drop(ev_rx);
    // The driver quits once its front-end is gone; bounded by its quit timeout.
    Ok(driver.await??)
}

/// Reads both clocks for a turn: the wall clock goes to the chat model, which stamps the lines
/// it makes with it; the monotonic `now` returned times deadlines.
fn read_clocks(chat: &mut Chat) -> natter_core::Millis {
    let now = clock::now();
    chat.set_wall_clock(clock::wall(), now);
    now
}

/// One line typed (or one line of a paste): to the session, in the open conversation; `/help`,
/// `/clear`, `/query nick` and `/part` in a direct conversation are answered here.
fn send_typed(chat: &mut Chat, commands: &mpsc::Sender<Command>, line: &str) {
    // Answered here, the keys below the commands (the session's answer would come after
    // anything noted now).
    if keys_help(line).is_some() {
        let now = clock::now();
        for l in natter_core::command::help_lines(None) {
            chat.note(l, now);
        }
        chat.note(KEYS_HELP, now);
        return;
    }
    if let Some(help) = clear_help(line) {
        chat.note(help, clock::now());
        return;
    }
    if let Some(clear) = natter_core::command::clear(line) {
        match clear {
            Clear::Usage => chat.note_error(CLEAR_USAGE, clock::now()),
            Clear::Open | Clear::All => chat.clear_view(clear == Clear::All),
        }
        return;
    }
    // `/query nick [text]`, and `/part` in a direct conversation: the conversations' (a
    // `/query nick text` opens the conversation it sends to, so says nothing of it elsewhere).
    if chat.typed(line, clock::now()) == natter_core::chat::Typed::Answered {
        return;
    }
    if let Some((room, before, limit)) = chat.history_typed(line) {
        if commands
            .try_send(Command::Older {
                room,
                before,
                limit,
            })
            .is_err()
        {
            chat.note_error(
                "the connection is busy; type /history again to load older lines",
                clock::now(),
            );
        }
        return;
    }
    if let Some(words) = chat.sent_elsewhere(line) {
        chat.note(words, clock::now());
    }
    let to = chat.target();
    let line = line.to_owned();
    if commands.try_send(Command::Input { line, to }).is_err() {
        chat.note_error(
            "typing faster than the connection can take it; line dropped",
            clock::now(),
        );
    }
}

/// Scrolls the open conversation (or a search's results over it) up (+) or down (-) by `rows`
/// on a screen of `size`. True when, scrolled up, the top of the conversation is in view: PgUp
/// or the wheel there loads a room's older lines.
fn scroll(chat: &Chat, view: &mut View, rows: isize, size: ratatui::layout::Rect, tz: i32) -> bool {
    if chat.search().is_some() {
        view.scroll_search(-rows);
        return false;
    }
    if rows <= 0 {
        view.scroll_down(chat, rows.unsigned_abs());
        return false;
    }
    view.scroll_up(chat, rows.unsigned_abs());
    let pane = draw::pane_on(chat, view, size, tz);
    // Not past the top: lines put there later must not make the view jump.
    view.clamp(chat, pane.scroll);
    pane.top
}

/// [`scroll`] by keys or the wheel on a screen of `size`, which may have changed since the last
/// frame (`drawn_on`, a resize not drawn yet): the view's scroll, in rows of that frame, is
/// first counted at the new width ([`keep_place`]), as the next frame would, so the rows
/// scrolled are rows of the screen the person sees. (Until the forty-second session they were
/// added at the new width to a scroll in rows of the old one, which the next frame then read
/// as rows of the old width: the page moved by more or less than a page.)
fn scroll_on(
    chat: &mut Chat,
    view: &mut View,
    rows: isize,
    drawn_on: &mut Option<ratatui::layout::Rect>,
    size: ratatui::layout::Rect,
    tz: i32,
) -> bool {
    keep_place(view, chat, *drawn_on, size, tz);
    *drawn_on = Some(size);
    scroll(chat, view, rows, size, tz)
}

fn open(chat: &mut Chat, conv: Option<ConvId>) {
    if let Some(conv) = conv {
        // Another conversation is what the person wants to see, not the results over it.
        chat.close_search();
        chat.open(&conv);
    }
}

/// The top of the open room is in view: asks for its older lines if the model wants them.
/// Returns whether they were asked for.
fn load_older(chat: &mut Chat, commands: &mpsc::Sender<Command>) -> bool {
    let id = chat.current().clone();
    let Some((room, before)) = chat.want_older(&id) else {
        return false;
    };
    let msg = Command::Older {
        room,
        before,
        limit: SCROLLBACK_PAGE,
    };
    if commands.try_send(msg).is_err() {
        chat.note_error(
            "the connection is busy; press PgUp again to load older lines",
            clock::now(),
        );
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::MouseButton;
    use natter_core::chat::LineKind;
    use natter_core::limits::HISTORY_LINES_DEFAULT;
    use natter_core::{Nick, RoomName, Seq};
    use view::tests::{apply, chat_in, rid, say};

    fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    /// bob's line `text` in #a, at `seq`.
    fn said(seq: u64, text: &str) -> natter_core::session::Event {
        use natter_core::wire::{EventKind, RoomEvent};
        natter_core::session::Event::Room(RoomEvent {
            room: RoomName::new("#a").unwrap(),
            seq: Seq(seq),
            at: natter_core::Millis(0),
            from: Nick::new("bob").unwrap(),
            kind: EventKind::Say {
                id: natter_core::types::MsgId(seq),
                text: natter_core::Text::new(text).unwrap(),
            },
        })
    }

    /// A line that came with a resize, scrolled up, added its rows at the new width to a
    /// scroll then read as rows of the old one: the view moved by the rows the resize changed
    /// in it. The line at the bottom of the view stays there, narrower and wider.
    #[test]
    fn a_line_that_comes_with_a_resize_leaves_a_scrolled_view_in_place() {
        use natter_core::Millis;
        let words = "some words that make this line wrap on a narrow screen and more words";
        let wide = ratatui::layout::Rect::new(0, 0, 100, 24);
        let narrow = ratatui::layout::Rect::new(0, 0, 45, 24);
        // The newest line whose first row shows.
        let bottom = |c: &Chat, v: &View, size| {
            let pane = draw::pane_on(c, v, size, 0);
            pane.rows
                .iter()
                .map(|r| r.iter().map(|(t, _)| t.as_str()).collect::<String>())
                .filter_map(|l| l.split("<bob> line ").nth(1)?.get(..3)?.parse::<u32>().ok())
                .next_back()
        };
        for (from, to) in [(wide, narrow), (narrow, wide)] {
            let mut c = chat_in(&["#a"]);
            let mut v = View::new();
            for i in 1..=40 {
                c.handle_event(&said(10 + i, &format!("line {i:03} {words}")), Millis(0));
            }
            keep_place(&mut v, &mut c, None, from, 0);
            v.scroll_up(&c, 20);
            let was = bottom(&c, &v, from).unwrap();
            assert!(was < 40, "{was}");
            let long = format!("line 041 {}", words.repeat(4));
            c.handle_event(&said(60, &long), Millis(0));
            keep_place(&mut v, &mut c, Some(from), to, 0);
            assert_eq!(
                bottom(&c, &v, to),
                Some(was),
                "{} to {}",
                from.width,
                to.width
            );
            assert!(c.poll_change().is_none());
        }
    }

    /// PgUp or PgDn read after a resize, before the frame that draws it (the key came before
    /// the terminal's resize event): the rows scrolled were counted at the new width and added
    /// to a scroll in rows of the last frame, which the next frame read as rows of the old
    /// width, so the page moved by more or less than a page. It moves by a page of the screen
    /// the person sees, as if the resize had been drawn first.
    #[test]
    fn a_page_scrolled_after_a_resize_before_its_frame_counts_rows_of_the_new_width() {
        use natter_core::Millis;
        let words = "some words that make this line wrap on a narrow screen and more words";
        let wide = ratatui::layout::Rect::new(0, 0, 100, 24);
        let narrow = ratatui::layout::Rect::new(0, 0, 45, 24);
        let scrolled_up = |size| {
            let mut c = chat_in(&["#a"]);
            let mut v = View::new();
            for i in 1..=60 {
                c.handle_event(&said(10 + i, &format!("line {i:03} {words}")), Millis(0));
            }
            keep_place(&mut v, &mut c, None, size, 0);
            v.scroll_up(&c, 30);
            (c, v)
        };
        for (from, to) in [(wide, narrow), (narrow, wide)] {
            for rows in [-6, 6] {
                // As if the resize had been drawn first: the right place.
                let (mut c, mut want) = scrolled_up(from);
                keep_place(&mut want, &mut c, Some(from), to, 0);
                scroll(&c, &mut want, rows, to, 0);
                let want = want.scroll(&c);
                // The key read first, then the next frame.
                let (mut c, mut v) = scrolled_up(from);
                let mut drawn_on = Some(from);
                scroll_on(&mut c, &mut v, rows, &mut drawn_on, to, 0);
                keep_place(&mut v, &mut c, drawn_on, to, 0);
                assert_eq!(
                    v.scroll(&c),
                    want,
                    "{rows} rows, {} to {}",
                    from.width,
                    to.width
                );
                // What it was: scrolled at the new width, then read as rows of the old one.
                let (mut c, mut v) = scrolled_up(from);
                scroll(&c, &mut v, rows, to, 0);
                keep_place(&mut v, &mut c, Some(from), to, 0);
                assert_ne!(v.scroll(&c), want, "the test tells the two apart");
            }
        }
    }

    fn mouse(kind: MouseEventKind) -> TermEvent {
        TermEvent::Mouse(MouseEvent {
            kind,
            column: 40,
            row: 10,
            modifiers: KeyModifiers::NONE,
        })
    }

    /// The wheel browsed the input history (the terminal sent it as Up/Down, mouse reporting
    /// being off): it scrolls the conversation now, a few rows a notch, as in irssi and
    /// WeeChat, and leaves the input line alone; a click asks nothing.
    #[test]
    fn the_mouse_wheel_scrolls_the_conversation_not_the_input_history() {
        let mut input = InputLine::new();
        input.paste("sent before");
        assert!(input.submit().is_some());
        let mut chat = chat_in(&["#a"]);
        let mut v = View::new();
        for i in 0..40 {
            apply(&mut chat, &mut v, &say("#a", "bob", &format!("line {i}")));
        }
        let size = ratatui::layout::Rect::new(0, 0, 100, 24);
        let shown = |v: &View| {
            let (rows, _) = draw::message_rows(&chat, v, 60, 21, 0);
            rows.iter()
                .map(|r| r.iter().map(|(t, _)| t.as_str()).collect::<String>())
                .collect::<Vec<_>>()
        };
        assert!(shown(&v).last().unwrap().ends_with("line 39"));
        let wheel = |kind, v: &mut View, input: &mut InputLine| {
            let action = event_action(mouse(kind), input);
            let Some(Action::Scroll(rows)) = action else {
                panic!("{kind:?}: {action:?}");
            };
            scroll(&chat, v, rows, size, 0)
        };
        assert!(!wheel(MouseEventKind::ScrollUp, &mut v, &mut input));
        assert_eq!(v.scroll(&chat), WHEEL_ROWS.unsigned_abs());
        assert!(shown(&v).last().unwrap().ends_with("line 36"));
        assert_eq!(input.text(), "", "the input line is left alone");
        wheel(MouseEventKind::ScrollUp, &mut v, &mut input);
        wheel(MouseEventKind::ScrollDown, &mut v, &mut input);
        assert_eq!(v.scroll(&chat), WHEEL_ROWS.unsigned_abs());
        wheel(MouseEventKind::ScrollDown, &mut v, &mut input);
        wheel(MouseEventKind::ScrollDown, &mut v, &mut input);
        assert_eq!(v.scroll(&chat), 0, "not below the newest line");
        // Up to the top, where a room's older lines are wanted.
        let mut top = false;
        for _ in 0..20 {
            top = wheel(MouseEventKind::ScrollUp, &mut v, &mut input);
        }
        assert!(top);
        assert!(shown(&v).iter().any(|r| r.ends_with("line 0")));
        // Clicks and drags are the terminal's business (selecting text, with Shift).
        for kind in [
            MouseEventKind::Down(MouseButton::Left),
            MouseEventKind::Up(MouseButton::Left),
            MouseEventKind::Drag(MouseButton::Left),
        ] {
            assert_eq!(event_action(mouse(kind), &mut input), None, "{kind:?}");
        }
        assert_eq!(input.text(), "");
        // Up is still the history's.
        key_action(key(KeyCode::Up, KeyModifiers::NONE), &mut input);
        assert_eq!(input.text(), "sent before");
    }

    /// `/clear` was an unknown command (the server's answer): it empties the open
    /// conversation here, as irssi's `/clear`, and sends nothing; `/clear all` every one.
    #[test]
    fn clear_empties_the_open_conversation_here_and_sends_nothing() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut chat = chat_in(&["#a", "#b"]);
        let mut v = View::new();
        for r in ["#a", "#b"] {
            apply(&mut chat, &mut v, &say(r, "bob", "hello"));
        }
        let lines = |chat: &Chat, r: &str| chat.conv(&rid(r)).unwrap().lines().len();
        assert!(lines(&chat, "#a") > 0 && lines(&chat, "#b") > 0);
        send_typed(&mut chat, &tx, "/clear");
        assert_eq!(lines(&chat, "#a"), 0);
        assert!(lines(&chat, "#b") > 0, "only the open one");
        assert!(rx.try_recv().is_err(), "nothing for the session");
        // What comes next shows as ever.
        apply(&mut chat, &mut v, &say("#a", "bob", "again"));
        assert_eq!(lines(&chat, "#a"), 1);
        send_typed(&mut chat, &tx, " /CLEAR all");
        assert_eq!((lines(&chat, "#a"), lines(&chat, "#b")), (0, 0));
        assert!(rx.try_recv().is_err());
        // Anything else after it says how it is typed (and clears nothing).
        apply(&mut chat, &mut v, &say("#a", "bob", "kept"));
        send_typed(&mut chat, &tx, "/clear #b");
        let last = chat.current_conv().lines().back().unwrap();
        assert_eq!(last.kind, LineKind::Error(CLEAR_USAGE.into()));
        assert_eq!(lines(&chat, "#a"), 2);
        assert_eq!(lines(&chat, "#b"), 0);
        assert!(rx.try_recv().is_err());
        // A word that only starts like it is the session's.
        send_typed(&mut chat, &tx, "/clearly");
        assert!(matches!(rx.try_recv(), Ok(Command::Input { .. })));
        // `/help clear` is answered here too (the session knew no such command).
        send_typed(&mut chat, &tx, "/help /CLEAR");
        let last = chat.current_conv().lines().back().unwrap();
        assert_eq!(last.kind, LineKind::Notice(CLEAR_HELP.into()));
        assert!(rx.try_recv().is_err());
        let usage = natter_core::command::help_lines(Some("/join"))
            .next()
            .unwrap();
        assert_eq!(
            CLEAR_HELP.find("empty"),
            usage.find("join a room"),
            "lined up as /help lines the others up"
        );
    }

    /// A direct conversation could not be closed (`/part` there said it was no room): one a
    /// `/msg` to a mistyped nick started stayed listed for good. `/part` closes it now; a
    /// `/part #room` typed there still leaves the room.
    #[test]
    fn part_in_a_direct_conversation_closes_it() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut chat = chat_in(&["#a"]);
        let bob = ConvId::direct(&Nick::new("Bob").unwrap());
        send_typed(&mut chat, &tx, "/query Bob");
        assert_eq!(chat.current(), &bob);
        send_typed(&mut chat, &tx, "/part");
        assert!(chat.conv(&bob).is_none());
        assert_eq!(chat.current(), &rid("#a"));
        let last = chat.current_conv().lines().back().unwrap();
        assert_eq!(
            last.kind,
            LineKind::Notice("closed the conversation with Bob (/query Bob opens it again)".into())
        );
        assert!(rx.try_recv().is_err(), "nothing for the session");
        send_typed(&mut chat, &tx, "/query bob");
        send_typed(&mut chat, &tx, "/part #a");
        assert!(
            matches!(rx.try_recv(), Ok(Command::Input { .. })),
            "#a is left"
        );
        assert_eq!(chat.current(), &bob);
        // In a room, /part is the session's as ever.
        chat.open(&rid("#a"));
        send_typed(&mut chat, &tx, "/part");
        assert!(matches!(rx.try_recv(), Ok(Command::Input { .. })));
    }

    /// `/query` alone was answered with `/msg`'s usage (`usage: /msg nick|#room text`), which
    /// says nothing of what `/query` does: its own usage now.
    #[test]
    fn query_alone_says_how_query_is_typed() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut chat = chat_in(&["#a"]);
        for line in ["/query", "/QUERY  "] {
            send_typed(&mut chat, &tx, line);
            let last = chat.current_conv().lines().back().unwrap();
            assert_eq!(
                last.kind,
                LineKind::Error(natter_core::command::QUERY_USAGE.into()),
                "{line:?}"
            );
            assert!(rx.try_recv().is_err(), "{line:?}: nothing for the session");
        }
        send_typed(&mut chat, &tx, "/query bob");
        assert_eq!(chat.current(), &ConvId::direct(&Nick::new("bob").unwrap()));
        assert!(rx.try_recv().is_err());
    }

    /// `/history` asked for the lines below the oldest the session had shown since the room's
    /// last join; a room left and joined again keeps its lines, so after `/part`, `/join` it
    /// brought lines the model held already and nothing moved. It asks below the oldest line
    /// the model holds, as PgUp does, for as many lines as it was told.
    #[test]
    fn history_asks_below_the_oldest_line_held_after_a_join_again() {
        use natter_core::Millis;
        use natter_core::session::Event;
        let (tx, mut rx) = mpsc::channel(8);
        let mut chat = chat_in(&["#a", "#b"]);
        chat.handle_event(&say("#a", "bob", "kept from the visit before"), Millis(0));
        chat.handle_event(
            &Event::Parted {
                room: RoomName::new("#a").unwrap(),
                kicked: false,
            },
            Millis(0),
        );
        // Our join is newer than the line kept (seq 100): the same room, not one made anew.
        chat.handle_event(
            &Event::Joined {
                room: RoomName::new("#a").unwrap(),
                topic: None,
                members: vec![Nick::new("me").unwrap(), Nick::new("bob").unwrap()],
                seq: Seq(101),
            },
            Millis(0),
        );
        assert_eq!(chat.current(), &rid("#a"));
        send_typed(&mut chat, &tx, "/history 5");
        match rx.try_recv() {
            Ok(Command::Older {
                room,
                before,
                limit,
            }) => {
                assert_eq!((room.as_str(), before, limit), ("#a", Seq(100), 5));
            }
            other => panic!("{other:?}"),
        }
        // Another room by name; the default count.
        send_typed(&mut chat, &tx, "/history #b");
        assert!(matches!(
            rx.try_recv(),
            Ok(Command::Older {
                limit: HISTORY_LINES_DEFAULT,
                ..
            })
        ));
        // A room we are not in, or one at its beginning: the session answers as ever.
        send_typed(&mut chat, &tx, "/history #nowhere");
        assert!(matches!(rx.try_recv(), Ok(Command::Input { .. })));
    }

    /// `/help query` (which `/help` points to: "/query nick opens a direct conversation")
    /// answered with `/msg`'s line, "send a direct message", which says nothing of the
    /// conversation it opens here: the conversations' own line now (core's, as the page says).
    #[test]
    fn help_query_says_what_query_does_here() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut chat = chat_in(&["#a"]);
        for line in ["/help query", "/help /QUERY", " /HELP  query "] {
            send_typed(&mut chat, &tx, line);
            let last = chat.current_conv().lines().back().unwrap();
            assert_eq!(
                last.kind,
                LineKind::Notice(natter_core::command::QUERY_HELP.into()),
                "{line:?}"
            );
            assert!(rx.try_recv().is_err(), "{line:?}: nothing for the session");
        }
        // `/help msg` (and `/help dm`) is still the session's.
        send_typed(&mut chat, &tx, "/help msg");
        assert!(matches!(rx.try_recv(), Ok(Command::Input { .. })));
    }

    /// Tab completed `/cl` to `/close`, an admin's command that empties a room, and never to
    /// `/clear`; nor `/qu` to `/query`: the TUI's own commands were not in the list.
    #[test]
    fn tab_completes_the_tuis_own_commands_too() {
        let chat = chat_in(&["#a"]);
        assert_eq!(completions(&chat, "/cl", true), ["/clear", "/close"]);
        assert_eq!(completions(&chat, "/QU", true), ["/query", "/quit"]);
        assert_eq!(completions(&chat, "/cl", false), Vec::<String>::new());
        assert_eq!(completions(&chat, "/jo", true), ["/join"]);
        let mut i = InputLine::new();
        i.paste("/cle");
        assert!(i.complete(|w, start| completions(&chat, w, start)));
        assert_eq!(i.text(), "/clear ");
    }

    /// The terminal is asked for the wheel (button presses, SGR-encoded) and nothing more:
    /// no reports of every move of the pointer; and asked to stop when the TUI leaves.
    #[test]
    fn the_terminal_reports_the_wheel_only_while_the_tui_runs() {
        let ansi = |on| {
            let mut s = String::new();
            crossterm::Command::write_ansi(&WheelReporting(on), &mut s).unwrap();
            s
        };
        assert_eq!(ansi(true), "\x1b[?1000h\x1b[?1006h");
        assert_eq!(ansi(false), "\x1b[?1006l\x1b[?1000l");
    }

    #[test]
    fn help_tells_the_keys_too() {
        for line in ["/help", "/HELP", "/?"] {
            let keys = keys_help(line).expect(line);
            for k in ["PgUp", "Esc", "Tab", "Alt+1..9", "Ctrl+C"] {
                assert!(keys.contains(k), "{k}: {keys}");
            }
        }
        assert_eq!(keys_help("help"), None);
        assert_eq!(keys_help("/help join"), None);
        assert_eq!(keys_help("/who"), None);
    }

    #[test]
    fn keys_edit_send_and_navigate() {
        let mut i = InputLine::new();
        let none = KeyModifiers::NONE;
        for c in "hi".chars() {
            assert_eq!(key_action(key(KeyCode::Char(c), none), &mut i), None);
        }
        assert_eq!(
            key_action(key(KeyCode::Enter, none), &mut i),
            Some(Action::Send("hi".into()))
        );
        assert_eq!(key_action(key(KeyCode::Enter, none), &mut i), None);
        assert_eq!(
            key_action(key(KeyCode::Char('3'), KeyModifiers::ALT), &mut i),
            Some(Action::Room(3))
        );
        assert_eq!(
            key_action(key(KeyCode::Char('n'), KeyModifiers::CONTROL), &mut i),
            Some(Action::Step(1))
        );
        assert_eq!(
            key_action(key(KeyCode::Char('c'), KeyModifiers::CONTROL), &mut i),
            Some(Action::Quit)
        );
        assert_eq!(
            key_action(key(KeyCode::Tab, none), &mut i),
            Some(Action::Complete)
        );
        assert_eq!(
            key_action(key(KeyCode::Esc, none), &mut i),
            Some(Action::Back)
        );
        assert_eq!(
            key_action(key(KeyCode::PageUp, none), &mut i),
            Some(Action::Page(1))
        );
        key_action(key(KeyCode::Up, none), &mut i);
        assert_eq!(i.text(), "hi");
        key_action(key(KeyCode::Char('x'), KeyModifiers::ALT), &mut i);
        assert_eq!(i.text(), "hi");
        key_action(key(KeyCode::Home, none), &mut i);
        key_action(key(KeyCode::Delete, none), &mut i);
        assert_eq!(i.text(), "i");
        // By word: Ctrl or Alt with Left/Right, and Alt+b/Alt+f as in readline.
        key_action(key(KeyCode::End, none), &mut i);
        i.paste(" two three");
        for (code, mods, at) in [
            (KeyCode::Left, KeyModifiers::CONTROL, 6),
            (KeyCode::Left, KeyModifiers::ALT, 2),
            (KeyCode::Right, KeyModifiers::CONTROL, 5),
            (KeyCode::Char('b'), KeyModifiers::ALT, 2),
            (KeyCode::Char('f'), KeyModifiers::ALT, 5),
            (KeyCode::Right, KeyModifiers::ALT, 11),
        ] {
            assert_eq!(key_action(key(code, mods), &mut i), None);
            assert_eq!(i.cursor(), at, "{code:?} {mods:?}");
        }
        assert_eq!(i.text(), "i two three");
        // Ctrl+L draws the screen again, as in irssi, WeeChat and a shell; the line stays.
        assert_eq!(
            key_action(key(KeyCode::Char('l'), KeyModifiers::CONTROL), &mut i),
            Some(Action::Redraw)
        );
        assert_eq!(i.text(), "i two three");
        // Ctrl+D quit whatever was typed, a half-written line lost to a key that deletes a
        // character elsewhere: it deletes one now, and quits on an empty line only.
        key_action(key(KeyCode::Home, none), &mut i);
        let ctrl_d = || key(KeyCode::Char('d'), KeyModifiers::CONTROL);
        assert_eq!(key_action(ctrl_d(), &mut i), None);
        assert_eq!(i.text(), " two three");
        i.clear();
        assert_eq!(key_action(ctrl_d(), &mut i), Some(Action::Quit));
    }
}
