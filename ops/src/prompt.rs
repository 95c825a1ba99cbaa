//! A password asked on the terminal without echo, shared by `natter --login` and
//! `natter-server account add|passwd`.
//!
//! Echo goes off (crossterm's raw mode) *before* the prompt is written: a prompt written first
//! and echo turned off after it (rpassword's order) echoes the keys typed in between. Raw mode
//! also takes Ctrl+C as a key, so the terminal is put back before the caller ends, which then
//! exits 130 as if by SIGINT (rpassword raised SIGINT in its own raw mode and left the shell
//! without echo and line editing).

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::io::Write;

/// Why no line could be had from the terminal.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// There is no terminal to ask on (none controls this process, or it cannot be set).
    #[error("there is no terminal to ask on: {0}")]
    NoTerminal(std::io::Error),
    /// The terminal could not be read once asked on.
    #[error("cannot read from the terminal: {0}")]
    Terminal(std::io::Error),
    /// Ctrl+C at the prompt: the terminal is as it was; the caller exits 130.
    #[error("interrupted at the password prompt")]
    Interrupted,
}

/// The exit status of a process that stopped at the prompt on Ctrl+C (128 + SIGINT), as a
/// shell reports a process SIGINT ended.
pub const INTERRUPTED_STATUS: u8 = 130;

/// Writes `prompt` on the controlling terminal with echo off and reads one line of at most
/// `max_bytes` + 1 bytes (a held key stops there; the caller's check then calls it too long).
/// The terminal is as it was after, also on Ctrl+C and on error.
pub fn hidden(prompt: &str, max_bytes: usize) -> Result<String, PromptError> {
    let raw = RawMode::on().map_err(PromptError::NoTerminal)?;
    // Where crossterm reads keys from: stdin when it is the terminal, else /dev/tty.
    let mut tty = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/tty")
        .map_err(PromptError::NoTerminal)?;
    tty.write_all(prompt.as_bytes())
        .and_then(|()| tty.flush())
        .map_err(PromptError::NoTerminal)?;
    let mut line = String::new();
    let end = loop {
        let event = crossterm::event::read().map_err(PromptError::Terminal)?;
        if let Event::Key(key) = event
            && let Some(end) = edit(&mut line, key, max_bytes)
        {
            break end;
        }
    };
    drop(raw);
    // Raw mode wrote no newline for Enter; the next output starts on a line of its own.
    let _ = tty.write_all(b"\n").and_then(|()| tty.flush());
    match end {
        End::Enter => Ok(line),
        End::Interrupt => Err(PromptError::Interrupted),
    }
}

/// The terminal in raw mode while it lives; as it was after (also when unwinding).
struct RawMode;

impl RawMode {
    fn on() -> std::io::Result<RawMode> {
        crossterm::terminal::enable_raw_mode()?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// How a prompt ends.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Enter (or Ctrl+D on an empty line, which then is an empty password).
    Enter,
    /// Ctrl+C.
    Interrupt,
}

/// One key at the prompt: edits `line`, or ends the prompt. A line that would pass `max`
/// bytes stops growing.
fn edit(line: &mut String, key: KeyEvent, max: usize) -> Option<End> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Enter => return Some(End::Enter),
        KeyCode::Char('c') if ctrl => return Some(End::Interrupt),
        KeyCode::Char('d') if ctrl && line.is_empty() => return Some(End::Enter),
        // Ctrl+J and Ctrl+M are Enter when a terminal sends them as such.
        KeyCode::Char('j' | 'm') if ctrl => return Some(End::Enter),
        KeyCode::Char('u') if ctrl => line.clear(),
        KeyCode::Char('w') if ctrl => {
            let kept = line.trim_end().rfind(' ').map_or(0, |i| i + 1);
            line.truncate(kept);
        }
        KeyCode::Backspace => {
            line.pop();
        }
        KeyCode::Char('h') if ctrl => {
            line.pop();
        }
        KeyCode::Char(c)
            if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) && line.len() <= max =>
        {
            line.push(c);
        }
        _ => {}
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 64;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    fn typed(keys: &[KeyEvent]) -> (String, Option<End>) {
        let mut line = String::new();
        for (i, k) in keys.iter().enumerate() {
            if let Some(end) = edit(&mut line, *k, MAX) {
                assert_eq!(i, keys.len() - 1, "ended early at key {i}");
                return (line, Some(end));
            }
        }
        (line, None)
    }

    #[test]
    fn the_prompt_edits_like_a_terminal_line_and_ctrl_c_interrupts() {
        let none = KeyModifiers::NONE;
        let ctrl = KeyModifiers::CONTROL;
        let chars = |s: &str| -> Vec<KeyEvent> {
            s.chars()
                .map(|c| key(KeyCode::Char(c), KeyModifiers::NONE))
                .collect()
        };
        let mut keys = chars("hidden pass");
        keys.push(key(KeyCode::Backspace, none));
        keys.push(key(KeyCode::Char('h'), ctrl));
        keys.extend(chars("ss phrase"));
        keys.push(key(KeyCode::Char('w'), ctrl));
        keys.extend(chars("phrase!"));
        keys.push(key(KeyCode::Enter, none));
        assert_eq!(
            typed(&keys),
            ("hidden pass phrase!".into(), Some(End::Enter))
        );

        let mut keys = chars("gone");
        keys.push(key(KeyCode::Char('u'), ctrl));
        keys.extend(chars("kept"));
        keys.push(key(KeyCode::Char('d'), ctrl)); // not empty: ignored
        keys.push(key(KeyCode::Char('b'), KeyModifiers::ALT)); // not text
        keys.push(key(KeyCode::Left, none));
        keys.push(key(KeyCode::Char('j'), ctrl));
        assert_eq!(typed(&keys), ("kept".into(), Some(End::Enter)));

        let mut keys = chars("half");
        keys.push(key(KeyCode::Char('c'), ctrl));
        assert_eq!(typed(&keys).1, Some(End::Interrupt));
        assert_eq!(
            typed(&[key(KeyCode::Char('d'), ctrl)]),
            (String::new(), Some(End::Enter)),
            "Ctrl+D on an empty line: an empty password, refused after"
        );
        // Bounded: a held key stops one past the longest line asked for.
        let long = chars(&"x".repeat(MAX + 50));
        assert_eq!(typed(&long).0.len(), MAX + 1);
    }
}
