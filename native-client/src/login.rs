//! `--login`: where the password comes from. Never the command line (other users see it in
//! `ps`): `NATTER_PASSWORD` for scripts, else the config file's `password_file`, else a prompt
//! on the terminal without echo. The password stays in this process's memory only, for the
//! session to sign in again after a server restart.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use natter_core::Password;
use natter_core::limits::PASSWORD_MAX_BYTES;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The environment variable scripts pass the password in.
pub const PASSWORD_ENV: &str = "NATTER_PASSWORD";

/// Why no password could be had.
#[derive(Debug, Error)]
pub enum LoginError {
    /// The password file could not be read.
    #[error("cannot read the password file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The password (from wherever) is empty.
    #[error("the password from {0} is empty")]
    Empty(String),
    /// The password (from wherever) is longer than any the server takes.
    #[error("the password from {0} is longer than {PASSWORD_MAX_BYTES} bytes")]
    TooLong(String),
    /// There is no terminal to ask on, and no other source.
    #[error(
        "--login needs a password and there is no terminal to ask for it on ({0}); \
         set NATTER_PASSWORD or password_file in the config file"
    )]
    NoTerminal(std::io::Error),
    /// The terminal could not be read once asked on.
    #[error("cannot read the password from the terminal: {0}")]
    Terminal(std::io::Error),
    /// Ctrl+C at the prompt (the terminal is as it was; natter exits 130, as if by SIGINT).
    #[error("interrupted at the password prompt")]
    Interrupted,
}

/// The password for `account`: from `env` (the value of [`PASSWORD_ENV`]), else `file`, else
/// asked on the terminal.
pub fn password(
    account: &str,
    env: Option<String>,
    file: Option<&Path>,
) -> Result<Password, LoginError> {
    if let Some(p) = env {
        return checked(p, PASSWORD_ENV);
    }
    if let Some(path) = file {
        return checked(read_file(path)?, &path.display().to_string());
    }
    checked(ask(&format!("password for {account}: "))?, "the terminal")
}

/// Asks on the terminal. Echo goes off (raw mode) *before* the prompt is written: a prompt
/// written first and echo turned off after it (rpassword's order) echoes the keys typed in
/// between. Raw mode also takes Ctrl+C as a key, so the terminal is put back before natter
/// ends (rpassword raised SIGINT in its raw mode and left the shell without echo).
fn ask(prompt: &str) -> Result<String, LoginError> {
    let raw = RawMode::on().map_err(LoginError::NoTerminal)?;
    // Where crossterm reads keys from: stdin when it is the terminal, else /dev/tty.
    let mut tty = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/tty")
        .map_err(LoginError::NoTerminal)?;
    tty.write_all(prompt.as_bytes())
        .and_then(|()| tty.flush())
        .map_err(LoginError::NoTerminal)?;
    let mut line = String::new();
    let end = loop {
        let event = crossterm::event::read().map_err(LoginError::Terminal)?;
        if let Event::Key(key) = event
            && let Some(end) = edit(&mut line, key)
        {
            break end;
        }
    };
    drop(raw);
    // Raw mode wrote no newline for Enter; the next output starts on a line of its own.
    let _ = tty.write_all(b"\n").and_then(|()| tty.flush());
    match end {
        End::Enter => Ok(line),
        End::Interrupt => Err(LoginError::Interrupted),
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

/// How a password prompt ends.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Enter (or Ctrl+D on an empty line, which then is an empty password).
    Enter,
    /// Ctrl+C.
    Interrupt,
}

/// One key at the password prompt: edits `line`, or ends the prompt. A line that would pass
/// the longest password the server takes stops growing (the check after says it is too long).
fn edit(line: &mut String, key: KeyEvent) -> Option<End> {
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
            if !ctrl
                && !key.modifiers.contains(KeyModifiers::ALT)
                && line.len() <= PASSWORD_MAX_BYTES =>
        {
            line.push(c);
        }
        _ => {}
    }
    None
}

fn checked(p: String, from: &str) -> Result<Password, LoginError> {
    if p.is_empty() {
        return Err(LoginError::Empty(from.to_owned()));
    }
    if p.len() > PASSWORD_MAX_BYTES {
        return Err(LoginError::TooLong(from.to_owned()));
    }
    Ok(Password(p))
}

/// The file's first line (a password file holds one), read bounded.
fn read_file(path: &Path) -> Result<String, LoginError> {
    let err = |source| LoginError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(err)?;
    warn_if_readable_by_others(&file, path);
    let mut text = String::new();
    file.take(PASSWORD_MAX_BYTES as u64 + 3)
        .read_to_string(&mut text)
        .map_err(err)?;
    let line = text.split(['\n', '\r']).next().unwrap_or_default();
    Ok(line.to_owned())
}

fn warn_if_readable_by_others(file: &std::fs::File, path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = file.metadata()
        && meta.permissions().mode() & 0o077 != 0
    {
        tell!(
            "natter: warning: {} can be read by other users (chmod 600 it)",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    fn typed(keys: &[KeyEvent]) -> (String, Option<End>) {
        let mut line = String::new();
        for (i, k) in keys.iter().enumerate() {
            if let Some(end) = edit(&mut line, *k) {
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
        // Bounded: a held key stops one past the longest password (then called too long).
        let long = chars(&"x".repeat(PASSWORD_MAX_BYTES + 50));
        assert_eq!(typed(&long).0.len(), PASSWORD_MAX_BYTES + 1);
    }

    #[test]
    fn the_environment_comes_first_then_the_file() {
        let dir = std::env::temp_dir().join(format!("natter-login-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "from the file\n").unwrap();
        let p = password("a", Some("from env".into()), Some(&file)).unwrap();
        assert_eq!(p.0, "from env");
        let p = password("a", None, Some(&file)).unwrap();
        assert_eq!(p.0, "from the file", "the first line, without its newline");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(
            password("a", None, Some(&file)),
            Err(LoginError::Empty(_))
        ));
        std::fs::write(&file, "x".repeat(PASSWORD_MAX_BYTES + 1)).unwrap();
        assert!(matches!(
            password("a", None, Some(&file)),
            Err(LoginError::TooLong(_))
        ));
        assert!(matches!(
            password("a", None, Some(&dir.join("missing"))),
            Err(LoginError::Read { .. })
        ));
        assert!(matches!(
            password("a", Some(String::new()), None),
            Err(LoginError::Empty(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
