//! `--login`: where the password comes from. Never the command line (other users see it in
//! `ps`): `NATTER_PASSWORD` for scripts, else the config file's `password_file`, else a prompt
//! on the terminal without echo. The password stays in this process's memory only, for the
//! session to sign in again after a server restart.

use natter_core::Password;
use natter_core::limits::PASSWORD_MAX_BYTES;
use std::io::Read;
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

/// The password if one is at hand without asking: from `env`, else `file` (a sign-in with a
/// kept device key, which falls back to it if the server refuses the key).
pub fn password_at_hand(
    env: Option<String>,
    file: Option<&Path>,
) -> Result<Option<Password>, LoginError> {
    if let Some(p) = env {
        return checked(p, PASSWORD_ENV).map(Some);
    }
    match file {
        Some(path) => checked(read_file(path)?, &path.display().to_string()).map(Some),
        None => Ok(None),
    }
}

/// Asks on the terminal, echo off before the prompt is written; Ctrl+C gives the terminal back
/// (natter's shared prompt, [`natter_ops::prompt`]).
fn ask(prompt: &str) -> Result<String, LoginError> {
    use natter_ops::prompt::PromptError;
    natter_ops::prompt::hidden(prompt, PASSWORD_MAX_BYTES).map_err(|e| match e {
        PromptError::NoTerminal(e) => LoginError::NoTerminal(e),
        PromptError::Terminal(e) => LoginError::Terminal(e),
        PromptError::Interrupted => LoginError::Interrupted,
    })
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
