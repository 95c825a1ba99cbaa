//! Credentials for NATS: given apart ([`crate::ClusterConfig::credentials`], natter-server's
//! `--nats-user` with `--nats-password-file`, `--nats-token-file`, or `--nats-creds` (a user's
//! JWT and NKey seed), or their environment variables: out of `ps` and the shell's history), or
//! in `--cluster` addresses:
//! `nats://USER:PASSWORD@HOST:PORT` (or `nats://TOKEN@HOST:PORT`), the form nats-server's own
//! tools take. async_nats ignores a URL's user part (it authenticates with what its
//! `ConnectOptions` hold), and its DEBUG lines print the URL whole; so the credentials are taken
//! out of the addresses here and handed to `ConnectOptions`, and what the log and the errors
//! show has the secret as `***`.

/// One address's user part, if any: (before it, the user part, after its `@`).
fn split(url: &str) -> (&str, Option<&str>, &str) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => (
            &url[..start],
            Some(&url[start..start + at]),
            &url[start + at + 1..],
        ),
        None => (url, None, ""),
    }
}

/// `url` without its user part: what async_nats is given.
pub(crate) fn bare(url: &str) -> String {
    match split(url) {
        (before, Some(_), after) => format!("{before}{after}"),
        (all, None, _) => all.to_owned(),
    }
}

/// `url` (a `--cluster` address) as a log line or an error may show it: a password or a token
/// as `***`, a user name kept. An address that is not well formed is shown so too: a password
/// written with a bare `/`, `?` or `#` (not `%2F`...) ends the host part before its `@`, so
/// all before the last `@` is hidden; one with a bare `,` is cut in two there by `--cluster`,
/// and the first piece, `nats://USER:PASS`, reads as a host with a port that is no number,
/// which is hidden.
pub fn shown(url: &str) -> String {
    match split(url) {
        (before, Some(user), after) => match user.split_once(':') {
            Some((name, _)) => format!("{before}{name}:***@{after}"),
            None => format!("{before}***@{after}"),
        },
        (all, None, _) => {
            let start = all.find("://").map_or(0, |i| i + 3);
            if let Some(at) = all[start..].rfind('@') {
                return format!("{}***@{}", &all[..start], &all[start + at + 1..]);
            }
            let end = all[start..]
                .find(['/', '?', '#'])
                .map_or(all.len(), |i| start + i);
            let host = &all[start..end];
            // The port: after `]:` for an IPv6 literal, else after the first `:`.
            let colon = if host.starts_with('[') {
                host.find("]:").map(|i| i + 1)
            } else {
                host.find(':')
            };
            match colon.map(|c| start + c + 1) {
                Some(p) if !all[p..end].bytes().all(|b| b.is_ascii_digit()) => {
                    format!("{}***{}", &all[..p], &all[end..])
                }
                _ => all.to_owned(),
            }
        }
    }
}

/// The addresses as shown, comma-separated.
pub(crate) fn shown_all(urls: &[String]) -> String {
    urls.iter().map(|u| shown(u)).collect::<Vec<_>>().join(",")
}

/// Credentials for NATS: [`crate::ClusterConfig::credentials`], or those of the first address
/// with a user part. Their `Debug` shows the password or the token as `***`, as the log shows
/// the addresses.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A user and its password (`USER:PASSWORD@`, or natter-server's `--nats-user` and
    /// `--nats-password-file`).
    UserPassword(String, String),
    /// A token (`TOKEN@`, or `--nats-token-file`).
    Token(String),
    /// A credentials file's contents (`--nats-creds`: a user's JWT and NKey seed, as
    /// `nsc generate creds` writes them; NATS's decentralized auth), made by
    /// [`Credentials::creds`].
    Creds(String),
}

impl Credentials {
    /// The contents of a NATS credentials file, checked as the NATS client reads them: a user
    /// JWT and an NKey seed; else why not.
    pub fn creds(text: String) -> Result<Credentials, String> {
        async_nats::ConnectOptions::with_credentials(&text).map_err(|e| e.to_string())?;
        Ok(Credentials::Creds(text))
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::UserPassword(user, _) => f
                .debug_tuple("UserPassword")
                .field(user)
                .field(&format_args!("***"))
                .finish(),
            Credentials::Token(_) => f.debug_tuple("Token").field(&format_args!("***")).finish(),
            Credentials::Creds(_) => f.debug_tuple("Creds").field(&format_args!("***")).finish(),
        }
    }
}

/// The credentials the addresses carry (percent-decoded, as in any URL), if any.
pub(crate) fn credentials(urls: &[String]) -> Option<Credentials> {
    let user = urls.iter().find_map(|u| split(u).1)?;
    Some(match user.split_once(':') {
        Some((name, password)) => Credentials::UserPassword(decode(name), decode(password)),
        None => Credentials::Token(decode(user)),
    })
}

/// `options` with the credentials `cfg` gives apart, or else those of its addresses, if any.
pub(crate) fn with_credentials(
    options: async_nats::ConnectOptions,
    cfg: &crate::ClusterConfig,
) -> async_nats::ConnectOptions {
    match cfg
        .credentials
        .clone()
        .or_else(|| credentials(&cfg.servers))
    {
        Some(Credentials::UserPassword(user, password)) => {
            options.user_and_password(user, password)
        }
        Some(Credentials::Token(token)) => options.token(token),
        // Checked when made (`Credentials::creds`), so this does not fail; if it did, the node
        // would go without (the options hold nothing else yet), and NATS refuse it, saying so.
        Some(Credentials::Creds(text)) => options
            .credentials(&text)
            .unwrap_or_else(|_| async_nats::ConnectOptions::new()),
        None => options,
    }
}

/// The addresses without their user parts.
pub(crate) fn bare_all(urls: &[String]) -> Vec<String> {
    urls.iter().map(|u| bare(u)).collect()
}

/// `%XX` escapes decoded (a password holding `@`, `:` or `/` is written with them).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                // Two hex digits: at most 255.
                out.push(u8::try_from(h * 16 + l).unwrap_or(u8::MAX));
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(u: &[&str]) -> Vec<String> {
        u.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_password_or_token_in_an_address_is_never_shown() {
        assert_eq!(
            shown("nats://natter:N4tsPassw0rd@127.0.0.1:4222"),
            "nats://natter:***@127.0.0.1:4222"
        );
        assert_eq!(
            shown("nats://s3cr3tToken@nats1:4222"),
            "nats://***@nats1:4222"
        );
        assert_eq!(shown("user:pw@nats1:4222"), "user:***@nats1:4222");
        // An `@` in the password is escaped; one past the host part is not a user part.
        assert_eq!(shown("tls://u:p%40ss@h:4222/x@y"), "tls://u:***@h:4222/x@y");
        assert_eq!(shown("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(shown("nats://[::1]:4222"), "nats://[::1]:4222");
        assert_eq!(shown("nats://u:pw@[::1]:4222"), "nats://u:***@[::1]:4222");
        assert_eq!(shown("nats://nats1"), "nats://nats1");
        assert_eq!(shown("nats1:4222"), "nats1:4222");
        let all = shown_all(&urls(&["nats://a:pw1@n1:4222", "nats://n2:4222"]));
        assert_eq!(all, "nats://a:***@n1:4222,nats://n2:4222");
        assert!(!all.contains("pw1"), "{all}");
    }

    #[test]
    fn a_password_not_written_as_a_url_wants_is_not_shown_either() {
        // A bare `/`, `?` or `#` (base64 passwords hold `/`) ends the host part before the
        // `@`: the address has no user part to a URL parser, and it was shown whole.
        for url in [
            "nats://natter:ab/cd+ef@nats1:4222",
            "nats://natter:ab?cd@nats1:4222",
            "nats://natter:ab#cd@nats1:4222",
            "nats://ab/cd@nats1:4222",
        ] {
            let said = shown(url);
            assert_eq!(said, "nats://***@nats1:4222", "{url}");
        }
        // A bare `,`: `--cluster` splits there (`value_delimiter`), and the first piece reads
        // as a host whose port is the start of the password.
        let pieces = urls(&["nats://natter:ab", "cd@nats1:4222"]);
        let said = shown_all(&pieces);
        assert_eq!(said, "nats://natter:***,***@nats1:4222");
        assert!(!said.contains("ab"), "{said}");
        assert_eq!(shown("nats://natter:ab:cd"), "nats://natter:***");
        assert_eq!(shown("nats://[::1]:ab"), "nats://[::1]:***");
    }

    #[test]
    fn a_cluster_configs_debug_does_not_show_the_password() {
        // natter-server's `ServerConfig` holds it, and derives `Debug`: a `{config:?}` in a
        // log line or a test's panic would have printed the password.
        let cfg = crate::ClusterConfig::new(urls(&["nats://natter:pw-Secret@n1:4222"]));
        let said = format!("{cfg:?}");
        assert!(!said.contains("pw-Secret"), "{said}");
        assert!(said.contains("nats://natter:***@n1:4222"), "{said}");
        assert!(said.contains("prefix: \"natter\""), "{said}");
    }

    #[test]
    fn credentials_debug_does_not_show_the_password_or_the_token() {
        // A `{:?}` of them (a log line, a test's panic, an `assert_eq!` that fails) printed
        // the secret.
        let said = format!(
            "{:?}",
            Credentials::UserPassword("natter".into(), "pw-Secret".into())
        );
        assert!(!said.contains("pw-Secret"), "{said}");
        assert!(said.contains("natter") && said.contains("***"), "{said}");
        let said = format!("{:?}", Credentials::Token("t0ken-Secret".into()));
        assert!(!said.contains("t0ken-Secret"), "{said}");
        assert!(said.contains("***"), "{said}");
    }

    #[test]
    fn credentials_given_apart_are_not_shown_either() {
        let mut cfg = crate::ClusterConfig::new(urls(&["nats://n1:4222"]));
        cfg.credentials = Some(Credentials::UserPassword(
            "natter".into(),
            "pw-Secret".into(),
        ));
        let said = format!("{cfg:?}");
        assert!(!said.contains("pw-Secret"), "{said}");
        assert!(said.contains("natter"), "{said}");
        cfg.credentials = Some(Credentials::Token("t0ken-Secret".into()));
        let said = format!("{cfg:?}");
        assert!(!said.contains("t0ken-Secret"), "{said}");
    }

    #[test]
    fn credentials_come_from_the_addresses_and_the_addresses_go_without_them() {
        assert_eq!(
            credentials(&urls(&[
                "nats://n1:4222",
                "nats://natter:p%40ss%3Aw@n2:4222"
            ])),
            Some(Credentials::UserPassword("natter".into(), "p@ss:w".into()))
        );
        assert_eq!(
            credentials(&urls(&["nats://t0ken@n1:4222"])),
            Some(Credentials::Token("t0ken".into()))
        );
        assert_eq!(credentials(&urls(&["nats://n1:4222", "n2:4222"])), None);
        assert_eq!(
            bare_all(&urls(&[
                "nats://u:pw@n1:4222",
                "t@n2:4222",
                "nats://n3:4222"
            ])),
            urls(&["nats://n1:4222", "n2:4222", "nats://n3:4222"])
        );
    }
}
