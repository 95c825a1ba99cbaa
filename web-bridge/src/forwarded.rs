//! Who a request from an HTTP reverse proxy is for: the `X-Forwarded-For` header, read only on
//! connections from a trusted proxy ([`crate::BridgeConfig::trusted_proxies`]; nginx
//! `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for`, HAProxy `option forwardfor`,
//! Caddy, Traefik). Each proxy appends the address it got the request from, so the list's right
//! end is what the trusted proxies vouch for and its left end what the browser may have made up:
//! the client is the rightmost address that is not itself a trusted proxy.
//!
//! `Forwarded` (RFC 7239) is not read: a proxy that keeps `X-Forwarded-For` (all of the above by
//! default) passes a browser's own `Forwarded` header on untouched, so reading it too would let
//! any browser name any address.

use std::net::{IpAddr, SocketAddr};

/// The header.
pub(crate) const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// An `X-Forwarded-For` entry a trusted proxy vouches for that is not an address: the proxy is
/// set up wrong (a browser's own entries, left of the first untrusted one, are never read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("X-Forwarded-For entry {0:?} is not an IP address")]
pub(crate) struct BadForwardedFor(pub(crate) String);

/// The client a trusted proxy's request is for: the rightmost address of the `X-Forwarded-For`
/// headers (`values`, in the order they came; several headers are one list) that `trusted`
/// does not hold; if every one is trusted, the leftmost; with no entry at all, `hop` (the proxy
/// itself, or the address its PROXY header named). Entries may carry a port
/// (`203.0.113.9:4711`, `[2001:db8::1]:443`); an IPv4-mapped IPv6 address is its IPv4 one.
pub(crate) fn client<'a>(
    values: impl DoubleEndedIterator<Item = &'a [u8]>,
    hop: IpAddr,
    trusted: &[IpAddr],
) -> Result<IpAddr, BadForwardedFor> {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|t| t.to_canonical() == ip);
    let mut leftmost = None;
    for value in values.rev() {
        for entry in value.rsplit(|b| *b == b',') {
            let entry = entry.trim_ascii();
            if entry.is_empty() {
                continue;
            }
            let ip = parse(entry).ok_or_else(|| {
                BadForwardedFor(String::from_utf8_lossy(&entry[..entry.len().min(64)]).into())
            })?;
            if !is_trusted(ip) {
                return Ok(ip);
            }
            leftmost = Some(ip);
        }
    }
    Ok(leftmost.unwrap_or(hop))
}

/// One entry: an address, with or without a port (IPv6 with one in brackets).
fn parse(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?;
    let ip = text
        .parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            let inner = text.strip_prefix('[')?.strip_suffix(']')?;
            inner.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
        })?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn client_of(headers: &[&str], trusted: &[&str]) -> Result<IpAddr, BadForwardedFor> {
        let trusted: Vec<IpAddr> = trusted.iter().map(|t| ip(t)).collect();
        client(
            headers.iter().map(|h| h.as_bytes()),
            ip("10.0.0.1"),
            &trusted,
        )
    }

    #[test]
    fn the_client_is_the_rightmost_address_not_a_trusted_proxy() {
        let proxies = ["10.0.0.1", "10.0.0.2"];
        // nginx appended the browser's address to what the browser sent: what the browser sent
        // (left) is never taken.
        assert_eq!(
            client_of(&["6.6.6.6, 203.0.113.9"], &proxies),
            Ok(ip("203.0.113.9"))
        );
        // Two proxies in a row: both skipped.
        assert_eq!(
            client_of(&["6.6.6.6, 203.0.113.9, 10.0.0.2"], &proxies),
            Ok(ip("203.0.113.9"))
        );
        // Several headers are one list, in order.
        assert_eq!(
            client_of(&["6.6.6.6", "203.0.113.9,10.0.0.2"], &proxies),
            Ok(ip("203.0.113.9"))
        );
        assert_eq!(
            client_of(&["203.0.113.9", "198.51.100.4"], &proxies),
            Ok(ip("198.51.100.4"))
        );
        // Ports, brackets, IPv6, IPv4-mapped.
        assert_eq!(
            client_of(&["203.0.113.9:4711"], &proxies),
            Ok(ip("203.0.113.9"))
        );
        assert_eq!(
            client_of(&["[2001:db8::7]:443"], &proxies),
            Ok(ip("2001:db8::7"))
        );
        assert_eq!(
            client_of(&["[2001:db8::7]"], &proxies),
            Ok(ip("2001:db8::7"))
        );
        assert_eq!(
            client_of(&["::ffff:203.0.113.9"], &proxies),
            Ok(ip("203.0.113.9"))
        );
        // None, empty, or only proxies: the leftmost proxy, else the hop.
        assert_eq!(client_of(&[], &proxies), Ok(ip("10.0.0.1")));
        assert_eq!(client_of(&[" , "], &proxies), Ok(ip("10.0.0.1")));
        assert_eq!(
            client_of(&["10.0.0.2, 10.0.0.1"], &proxies),
            Ok(ip("10.0.0.2"))
        );
    }

    #[test]
    fn garbage_counts_only_where_a_trusted_proxy_vouches_for_it() {
        let proxies = ["10.0.0.1"];
        // A browser's own junk, left of the address nginx appended: never read.
        assert_eq!(
            client_of(&["unknown, <script>, 203.0.113.9"], &proxies),
            Ok(ip("203.0.113.9"))
        );
        // The rightmost entry itself: the proxy is not set up right.
        assert_eq!(
            client_of(&["203.0.113.9, unknown"], &proxies),
            Err(BadForwardedFor("unknown".into()))
        );
        assert!(client_of(&["203.0.113.9:99999"], &proxies).is_err());
        assert!(client_of(&["\u{e9}"], &proxies).is_err());
    }
}
