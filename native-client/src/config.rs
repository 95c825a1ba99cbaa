//! Settings: the config file (`config.toml` in the per-user config directory, e.g.
//! `~/.config/natter/config.toml`), the default nick, and `[natters://]HOST[:PORT]` parsing. Flags on the
//! command line override the file.
//!
//! ```toml
//! server = "chat.example.org:8000"   # or "natters://chat.example.org" for TLS (port 8443)
//! # A cluster's nodes: tried in order, the next when one fails (also "a:8000,b:8000").
//! # server = ["a.example.org:8000", "b.example.org:8000"]
//! nick = "alice"
//! rooms = ["#lobby", "#rust"]
//! bell = false   # no terminal bell on mentions and direct messages
//! password_file = "~/.config/natter/password"   # for --login without a prompt
//! remember = true   # as --remember: keep a device key for the next --login
//! ```

use crate::driver::ServerAddr;
use natter_core::Nick;
use natter_core::limits::MAX_NICK_LEN;
use serde::Deserialize;
use std::io::Read;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The port natter-server listens on by default.
pub const DEFAULT_PORT: u16 = 8000;

/// The server used when neither the command line nor the config file names one.
pub const DEFAULT_SERVER: &str = "127.0.0.1:8000";

/// A config file larger than this is refused (it holds a few short settings).
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// What the config file may say.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `HOST[:PORT]`, several comma-separated, or a list of them.
    pub server: Option<Servers>,
    /// Nick.
    pub nick: Option<String>,
    /// Rooms to join at start.
    pub rooms: Option<Vec<String>>,
    /// Ring the terminal bell on a mention or a direct message (default true).
    pub bell: Option<bool>,
    /// `--login`: read the password from this file (its first line) instead of asking. A
    /// leading `~/` is the home directory.
    pub password_file: Option<PathBuf>,
    /// `--remember`: a sign-in or registration asks for a device key, kept in a file for the
    /// next `--login` (default false).
    pub remember: Option<bool>,
}

/// The config file's `server`: one string (which may hold several addresses, comma-separated)
/// or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Servers {
    /// `"a:8000"` or `"a:8000,b:8000"`.
    One(String),
    /// `["a:8000", "b:8000"]`.
    Many(Vec<String>),
}

impl Servers {
    /// The addresses as written, each possibly comma-separated.
    pub fn items(&self) -> Vec<String> {
        match self {
            Servers::One(s) => vec![s.clone()],
            Servers::Many(v) => v.clone(),
        }
    }
}

/// Why settings could not be read.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is too large to be a config file.
    #[error("{0} is larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge(PathBuf),
    /// The file is not valid TOML of the expected shape.
    #[error("{path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// `HOST[:PORT]` did not parse.
    #[error(
        "bad server address {0:?}: expected HOST, HOST:PORT or natters://HOST[:PORT] (e.g. 127.0.0.1:8000)"
    )]
    BadServer(String),
}

/// The per-user config file's path, if the platform has a config directory.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "natter").map(|d| d.config_dir().join("config.toml"))
}

/// Reads the config file at `path`. A missing file is an empty config when `required` is false.
pub fn load(path: &Path, required: bool) -> Result<FileConfig, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(FileConfig::default());
        }
        Err(e) => return Err(read_err(e)),
    };
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge(path.to_owned()));
    }
    parse(&text).map_err(|message| ConfigError::Parse {
        path: path.to_owned(),
        message,
    })
}

/// Parses config file text.
pub fn parse(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string().trim().to_owned())
}

/// `path` with a leading `~/` made the home directory's.
pub fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_owned(),
    }
}

/// A nick made from a user name: invalid characters dropped, a leading non-letter skipped, cut
/// to the length limit. `None` when nothing usable is left.
pub fn nick_from_user(user: &str) -> Option<Nick> {
    let special = |c: char| matches!(c, '_' | '[' | ']' | '{' | '}' | '^' | '|');
    let kept: String = user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || special(*c))
        .skip_while(|c| !(c.is_ascii_alphabetic() || special(*c)))
        .take(MAX_NICK_LEN)
        .collect();
    Nick::new(&kept).ok()
}

/// The nick to use when none is given: from `$USER` (or `$USERNAME`), else `guest`.
pub fn default_nick() -> Nick {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find_map(|u| nick_from_user(&u))
        .unwrap_or_else(|| {
            // Cannot fail: "guest" is a valid nick.
            Nick::new("guest").expect("guest is a valid nick")
        })
}

/// Parses server addresses: each item one address or several comma-separated (`a,b:8001`), as
/// [`parse_server`] reads them; the order is kept and repeats are dropped. None is an error.
pub fn parse_servers<S: AsRef<str>>(items: &[S]) -> Result<Vec<ServerAddr>, ConfigError> {
    let mut out: Vec<ServerAddr> = Vec::new();
    for item in items {
        for part in item.as_ref().split(',') {
            let addr = parse_server(part)?;
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
    if out.is_empty() {
        return Err(ConfigError::BadServer(String::new()));
    }
    Ok(out)
}

/// Parses `HOST`, `HOST:PORT`, `[V6]:PORT` or a bare IPv6 address (`::1` or `[::1]`); `natters://` in front means
/// TLS (default port [`natter_tls::DEFAULT_TLS_PORT`]), `natter://` plain.
pub fn parse_server(s: &str) -> Result<ServerAddr, ConfigError> {
    let bad = || ConfigError::BadServer(s.chars().take(80).collect());
    let s = s.trim();
    let (s, tls) = if let Some(rest) = s.strip_prefix("natters://") {
        (rest.trim_end_matches('/'), true)
    } else if let Some(rest) = s.strip_prefix("natter://") {
        (rest.trim_end_matches('/'), false)
    } else {
        (s, false)
    };
    let default_port = if tls {
        natter_tls::DEFAULT_TLS_PORT
    } else {
        DEFAULT_PORT
    };
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Ok(ServerAddr {
            host: sa.ip().to_string(),
            port: sa.port(),
            tls,
        });
    }
    // A bare IPv6 address, with or without brackets (`natters://[::1]`): the default port.
    let bare = s
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(s);
    if let Ok(ip) = bare.parse::<std::net::Ipv6Addr>() {
        return Ok(ServerAddr {
            host: ip.to_string(),
            port: default_port,
            tls,
        });
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
        None => (s, default_port),
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !host_ok || port == 0 {
        return Err(bad());
    }
    Ok(ServerAddr {
        host: host.to_owned(),
        port,
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(host: &str, port: u16) -> ServerAddr {
        ServerAddr {
            host: host.into(),
            port,
            tls: false,
        }
    }

    #[test]
    fn server_addresses() {
        assert_eq!(parse_server("127.0.0.1:9").unwrap(), addr("127.0.0.1", 9));
        assert_eq!(parse_server("localhost").unwrap(), addr("localhost", 8000));
        assert_eq!(
            parse_server("chat.example:80").unwrap(),
            addr("chat.example", 80)
        );
        assert_eq!(parse_server("[::1]:7").unwrap(), addr("::1", 7));
        assert_eq!(parse_server("::1").unwrap(), addr("::1", 8000));
        let tls = |host: &str, port| ServerAddr {
            tls: true,
            ..addr(host, port)
        };
        assert_eq!(
            parse_server("natters://chat.example").unwrap(),
            tls("chat.example", 8443)
        );
        assert_eq!(parse_server("natters://[::1]:9/").unwrap(), tls("::1", 9));
        assert_eq!(parse_server("[::1]").unwrap(), addr("::1", 8000));
        assert_eq!(parse_server("natters://[::1]").unwrap(), tls("::1", 8443));
        assert_eq!(parse_server("natter://h").unwrap(), addr("h", 8000));
        for bad in [
            "",
            "host:",
            "host:99999",
            "a b",
            "host:0",
            ":80",
            "natters://",
            "https://h",
            "[::1",
            "[]",
        ] {
            assert!(parse_server(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn several_server_addresses() {
        assert_eq!(
            parse_servers(&["a:1,b", "c:3", "a:1"]).unwrap(),
            vec![addr("a", 1), addr("b", 8000), addr("c", 3)],
            "in order, repeats dropped"
        );
        assert_eq!(
            parse_servers(&["[::1]:7, natters://h"]).unwrap()[1],
            ServerAddr {
                tls: true,
                ..addr("h", 8443)
            }
        );
        for bad in [&["a,"][..], &[",a"], &["a,,b"], &[], &["a", "b:x"]] {
            assert!(parse_servers(bad).is_err(), "{bad:?} accepted");
        }
        let c = parse("server = [\"a:1\", \"b:2,c:3\"]").unwrap();
        let items = c.server.unwrap().items();
        assert_eq!(parse_servers(&items).unwrap().len(), 3);
        let c = parse("server = \"a:1,b:2\"").unwrap();
        assert_eq!(c.server, Some(Servers::One("a:1,b:2".into())));
        assert!(parse("server = 5").is_err());
    }

    #[test]
    fn nicks_from_user_names() {
        assert_eq!(nick_from_user("alice").unwrap().as_str(), "alice");
        assert_eq!(nick_from_user("john.smith").unwrap().as_str(), "johnsmith");
        assert_eq!(nick_from_user("42bob").unwrap().as_str(), "bob");
        assert_eq!(
            nick_from_user("averyveryverylongusername")
                .unwrap()
                .as_str(),
            "averyveryverylon"
        );
        assert!(nick_from_user("1234").is_none());
        assert!(nick_from_user("").is_none());
        assert!(nick_from_user("ü").is_none());
    }

    #[test]
    fn config_files() {
        let c = parse("server = \"h:1\"\nnick = \"n\"\nrooms = [\"#a\"]\nbell = false\n").unwrap();
        assert_eq!(c.bell, Some(false));
        assert_eq!(c.server, Some(Servers::One("h:1".into())));
        assert_eq!(c.nick.as_deref(), Some("n"));
        assert_eq!(c.rooms, Some(vec!["#a".to_owned()]));
        assert_eq!(parse("remember = true").unwrap().remember, Some(true));
        let c = parse("password_file = \"/run/pw\"").unwrap();
        assert_eq!(c.password_file, Some(PathBuf::from("/run/pw")));
        assert_eq!(parse("").unwrap(), FileConfig::default());
        assert!(parse("colour = 1").unwrap_err().contains("colour"));
        assert!(parse("nick = ").is_err());
    }

    #[test]
    fn missing_file_is_empty_unless_required() {
        let p = Path::new("/nonexistent/natter/config.toml");
        assert_eq!(load(p, false).unwrap(), FileConfig::default());
        assert!(matches!(load(p, true), Err(ConfigError::Read { .. })));
    }
}
