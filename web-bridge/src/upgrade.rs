//! The WebSocket handshake on `GET /ws`: is it a proper upgrade request (tungstenite checks the
//! method, version, `Connection`/`Upgrade` headers, `Sec-WebSocket-Version: 13` and the key and
//! makes the 101 answer), and may this page use the bridge (the Origin and Host rules below).
//! Once hyper has written the 101, the connection's socket and any bytes read past the request
//! head go to the relay as a [`Rewind`] stream.

use crate::metrics::Refused;
use bytes::Bytes;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::server::create_response_with_body;
use tracing::debug;

/// Which WebSocket requests the handshake accepts, from the bridge's configuration.
pub(crate) struct OriginPolicy<'a> {
    /// The bridge serves https: its own origin is `https://` + Host, not `http://` + Host.
    pub(crate) https: bool,
    /// Origins accepted whatever the Host ([`crate::BridgeConfig::allowed_origins`]).
    pub(crate) extra_origins: &'a [String],
    /// Host names the bridge's own origin may use besides IP literals and `localhost`
    /// ([`crate::BridgeConfig::allowed_hosts`]).
    pub(crate) hosts: &'a [String],
    /// Accept a request without an Origin header.
    pub(crate) allow_missing: bool,
}

/// Why a WebSocket request was refused (HTTP 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The Origin is neither the bridge's own (`http://` + Host) nor an allowed one; or there is
    /// none and one is required.
    Origin,
    /// The Origin is `http://` + Host, but the Host is a name the bridge was not told it serves.
    /// A page whose DNS name was rebound to the bridge's address looks exactly like this.
    Host,
}

impl Refusal {
    /// The body of the 403 response.
    fn body(self) -> &'static str {
        match self {
            Refusal::Origin => "origin not allowed\n",
            Refusal::Host => "host not allowed: start natter-bridge with --allow-host NAME\n",
        }
    }
}

impl OriginPolicy<'_> {
    /// Checks a request's Origin and Host headers.
    ///
    /// A browser sets Origin and the page cannot change it, so an allowed extra origin is
    /// trusted as it is. The bridge's own origin is `http://` + Host, which a hostile page can
    /// match too by rebinding its own DNS name to the bridge's address; so it counts only when the
    /// Host is one the bridge knows it serves: an IP literal, `localhost`, or an allowed host.
    /// A missing Origin (not a browser) is decided by `allow_missing`: non-browser programs
    /// could forge any value, so refusing a missing one adds no protection against cross-site use.
    pub(crate) fn check(&self, origin: Option<&str>, host: Option<&str>) -> Result<(), Refusal> {
        let Some(origin) = origin else {
            return if self.allow_missing {
                Ok(())
            } else {
                Err(Refusal::Origin)
            };
        };
        if self
            .extra_origins
            .iter()
            .any(|e| e.eq_ignore_ascii_case(origin))
        {
            return Ok(());
        }
        let scheme = if self.https { "https://" } else { "http://" };
        let Some(host) = host.filter(|h| is_own_origin(origin, scheme, h)) else {
            return Err(Refusal::Origin);
        };
        if host_is_known(host, self.hosts) {
            Ok(())
        } else {
            Err(Refusal::Host)
        }
    }
}

/// Is `origin` exactly `scheme` + `host` (ASCII case aside)?
fn is_own_origin(origin: &str, scheme: &str, host: &str) -> bool {
    origin.len() == scheme.len() + host.len()
        && origin.is_char_boundary(scheme.len())
        && origin[..scheme.len()].eq_ignore_ascii_case(scheme)
        && origin[scheme.len()..].eq_ignore_ascii_case(host)
}

/// Is a Host header's name (its port aside) one no one else can point at the bridge: an IPv4 or
/// bracketed IPv6 literal, `localhost`, or one of `allowed`?
fn host_is_known(host: &str, allowed: &[String]) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// The answer to an upgrade request: the 101 that opens the WebSocket, or why not.
pub(crate) enum Answer {
    /// Switch protocols with these headers.
    Accept(http::Response<()>),
    /// Answer with this status and text (none for a bad handshake), then close.
    Refuse {
        status: http::StatusCode,
        body: String,
        why: Refused,
    },
}

/// Decides an upgrade request on `/ws`: first whether it is a proper WebSocket handshake (400
/// if not), then the Origin and Host rules (403).
pub(crate) fn answer<B>(
    req: &http::Request<B>,
    policy: &OriginPolicy<'_>,
    peer: SocketAddr,
) -> Answer {
    let accept = match create_response_with_body(req, || ()) {
        Ok(r) => r,
        Err(e) => {
            debug!(%peer, error = %e, "not a websocket handshake");
            // No body: WebSocket clients show none, and the log says why.
            return Answer::Refuse {
                status: http::StatusCode::BAD_REQUEST,
                body: String::new(),
                why: Refused::Handshake,
            };
        }
    };
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let (origin, host) = (header(http::header::ORIGIN), header(http::header::HOST));
    match policy.check(origin, host) {
        Ok(()) => Answer::Accept(accept),
        // Said in the log by the caller, at most every 10 s for each kind (`faults`): a page
        // can send these as fast as it likes.
        Err(refusal) => {
            let why = match refusal {
                Refusal::Origin => Refused::Origin,
                Refusal::Host => Refused::Host,
            };
            Answer::Refuse {
                status: http::StatusCode::FORBIDDEN,
                body: refusal.body().to_owned(),
                why,
            }
        }
    }
}

/// A stream that first returns bytes already read from it (what hyper read past the upgrade
/// request's head), then reads the inner stream; writes go straight through.
#[derive(Debug)]
pub(crate) struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Rewind<S> {
    /// `prefix` is copied out of (or, empty, not kept from) the buffer it is a slice of: hyper's
    /// whole read buffer, 8 KiB or more, would otherwise stay allocated for as long as the
    /// WebSocket is open.
    pub(crate) fn new(prefix: Bytes, inner: S) -> Rewind<S> {
        Rewind {
            prefix: own(&prefix),
            inner,
        }
    }
}

/// `b` in an allocation of its own size (none if empty).
fn own(b: &[u8]) -> Bytes {
    if b.is_empty() {
        Bytes::new()
    } else {
        Bytes::copy_from_slice(b)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let chunk = self.prefix.split_to(n);
            buf.put_slice(&chunk);
            if self.prefix.is_empty() {
                // Lets go of the allocation.
                self.prefix = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewind_keeps_no_part_of_the_read_buffer_it_came_from() {
        // As hyper hands it over: its read buffer, the parsed head split off, frozen.
        let after_head = |rest: &[u8]| {
            let mut buf = bytes::BytesMut::with_capacity(8192);
            buf.extend_from_slice(b"GET /ws HTTP/1.1\r\n\r\n");
            let head_len = buf.len();
            buf.extend_from_slice(rest);
            let base = buf.as_ptr() as usize;
            drop(buf.split_to(head_len));
            (buf.freeze(), base)
        };
        let inside = |b: &Bytes, base: usize| (base..base + 8192).contains(&(b.as_ptr() as usize));
        let (rest, base) = after_head(b"xy");
        assert!(inside(&rest, base));
        let r = Rewind::new(rest, ());
        assert_eq!(&r.prefix[..], b"xy");
        assert!(!inside(&r.prefix, base), "the prefix was copied out");
        let (empty, base) = after_head(b"");
        assert!(empty.is_empty() && inside(&empty, base));
        let e = Rewind::new(empty, ());
        assert!(e.prefix.is_empty() && !inside(&e.prefix, base));
    }

    fn policy<'a>(
        extras: &'a [String],
        hosts: &'a [String],
        allow_missing: bool,
    ) -> OriginPolicy<'a> {
        OriginPolicy {
            https: false,
            extra_origins: extras,
            hosts,
            allow_missing,
        }
    }

    #[test]
    fn over_https_the_own_origin_is_https_plus_host() {
        let p = OriginPolicy {
            https: true,
            ..policy(&[], &[], false)
        };
        let host = Some("localhost:8080");
        assert_eq!(p.check(Some("https://localhost:8080"), host), Ok(()));
        assert_eq!(
            p.check(Some("http://localhost:8080"), host),
            Err(Refusal::Origin),
            "a page over plain http may not use the https bridge's socket"
        );
        assert_eq!(
            p.check(Some("https://evil.example"), Some("evil.example")),
            Err(Refusal::Host)
        );
    }

    #[test]
    fn origin_rules() {
        let p = policy(&[], &[], false);
        let host = Some("127.0.0.1:8080");
        assert_eq!(p.check(Some("http://127.0.0.1:8080"), host), Ok(()));
        assert_eq!(p.check(Some("HTTP://127.0.0.1:8080"), host), Ok(()));
        for bad in [
            "http://evil.example",
            "https://127.0.0.1:8080",
            "http://127.0.0.1:8081",
            "null",
        ] {
            assert_eq!(p.check(Some(bad), host), Err(Refusal::Origin), "{bad}");
        }
        assert_eq!(
            p.check(Some("http://127.0.0.1:8080"), None),
            Err(Refusal::Origin)
        );
        let extras = vec!["https://chat.example".to_owned()];
        let p = policy(&extras, &[], false);
        assert_eq!(p.check(Some("https://chat.example"), host), Ok(()));
        // An allowed extra origin does not depend on the Host.
        assert_eq!(
            p.check(Some("https://chat.example"), Some("evil.example")),
            Ok(())
        );
        assert_eq!(p.check(None, host), Err(Refusal::Origin));
        assert_eq!(policy(&[], &[], true).check(None, host), Ok(()));
    }

    #[test]
    fn own_origin_counts_only_under_a_known_host() {
        let hosts = vec!["chat.example.org".to_owned()];
        let p = policy(&[], &hosts, true);
        let own = |h: &str| p.check(Some(&format!("http://{h}")), Some(h));
        for known in [
            "127.0.0.1:8080",
            "10.0.0.5",
            "[::1]:8080",
            "[2001:db8::1]",
            "localhost:8080",
            "LocalHost",
            "chat.example.org:8080",
            "CHAT.example.org",
        ] {
            assert_eq!(own(known), Ok(()), "{known}");
        }
        // A name whose DNS its owner controls: the shape of a DNS-rebinding attack.
        for rebound in [
            "evil.example:8080",
            "evil.example",
            "chat.example.org.evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.nip.io:8080",
            "[::1",
            "[not-an-address]:8080",
            "127.0.0.1:",
        ] {
            assert_eq!(own(rebound), Err(Refusal::Host), "{rebound}");
        }
    }

    fn upgrade(headers: &[(&str, &str)]) -> http::Request<()> {
        let mut b = http::Request::get("/ws");
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap()
    }

    const PROPER: [(&str, &str); 5] = [
        ("host", "127.0.0.1:8080"),
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn a_proper_handshake_gets_the_rfc_accept_key() {
        let p = policy(&[], &[], true);
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        match answer(&upgrade(&PROPER), &p, peer) {
            // RFC 6455 section 1.3's example key and answer.
            Answer::Accept(r) => assert_eq!(
                r.headers()["sec-websocket-accept"],
                "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
            ),
            Answer::Refuse { status, body, .. } => panic!("{status} {body}"),
        }
        let mut with_origin = PROPER.to_vec();
        with_origin.push(("origin", "http://evil.example"));
        assert!(matches!(
            answer(&upgrade(&with_origin), &p, peer),
            Answer::Refuse {
                status: http::StatusCode::FORBIDDEN,
                why: Refused::Origin,
                ..
            }
        ));
        // Without a key, or with another version: not a handshake, 400.
        for drop in ["sec-websocket-key", "sec-websocket-version", "connection"] {
            let h: Vec<_> = PROPER.iter().copied().filter(|(n, _)| *n != drop).collect();
            assert!(
                matches!(
                    answer(&upgrade(&h), &p, peer),
                    Answer::Refuse {
                        status: http::StatusCode::BAD_REQUEST,
                        why: Refused::Handshake,
                        ..
                    }
                ),
                "without {drop}"
            );
        }
    }
}
