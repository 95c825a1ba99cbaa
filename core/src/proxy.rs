//! The PROXY protocol header (versions 1 and 2, as HAProxy specifies them), which a TCP proxy
//! such as HAProxy, nginx `stream` or stunnel puts in front of a connection to say whose it is.
//! natter-server reads it on connections from its trusted proxies, so that its per-address
//! limits count the real client, not the proxy.
//!
//! [`parse`] looks at the bytes a connection has sent so far and says whether they hold a whole
//! header, need more, or are not one. It never allocates and never reads past
//! [`MAX_HEADER`] bytes.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use thiserror::Error;

/// The version 2 signature.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The version 1 start.
const V1_PREFIX: &[u8] = b"PROXY ";

/// Longest version 1 header (the specification's limit, CRLF included).
const V1_MAX: usize = 107;

/// Longest version 2 header accepted: the fixed 16 bytes and an address block with room for
/// the TLVs proxies commonly add.
pub const MAX_HEADER: usize = 16 + 512;

/// Why a PROXY header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ProxyError {
    /// A version 1 header without its CRLF within 107 bytes, or with bad fields.
    #[error("malformed PROXY v1 header")]
    V1,
    /// A version 2 header with a bad version, command, family or length.
    #[error("malformed PROXY v2 header")]
    V2,
    /// Longer than this server takes.
    #[error("PROXY header over {MAX_HEADER} bytes")]
    TooLong,
}

/// What the bytes so far are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The start of a header (or of something that could still be one): more bytes needed.
    Partial,
    /// A whole header of `len` bytes; the connection's own bytes follow it. `source`: the
    /// client's address, or `None` when the proxy speaks for itself (v2 `LOCAL`, v1 `UNKNOWN`,
    /// or a family other than TCP over IPv4/IPv6).
    Header {
        /// Bytes the header took.
        len: usize,
        /// The client's address, if it named one.
        source: Option<IpAddr>,
    },
    /// Not a PROXY header.
    NotProxy,
}

/// Whether `buf` (what a connection sent so far) starts with a PROXY header.
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyError> {
    if is_prefix_of(buf, &V2_SIGNATURE) {
        return if buf.len() < 16 {
            Ok(Parsed::Partial)
        } else {
            parse_v2(buf)
        };
    }
    if is_prefix_of(buf, V1_PREFIX) {
        return if buf.len() < V1_PREFIX.len() {
            Ok(Parsed::Partial)
        } else {
            parse_v1(buf)
        };
    }
    Ok(Parsed::NotProxy)
}

/// Whether `buf` and `sig` agree on their common length (and `buf` is not empty).
fn is_prefix_of(buf: &[u8], sig: &[u8]) -> bool {
    let n = buf.len().min(sig.len());
    n > 0 && buf[..n] == sig[..n]
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Err(ProxyError::V1)
        } else {
            Ok(Parsed::Partial)
        };
    };
    let line = core::str::from_utf8(&buf[..end]).map_err(|_| ProxyError::V1)?;
    let mut words = line.split(' ');
    let _proxy = words.next();
    let source = match words.next() {
        Some("UNKNOWN") => None,
        Some(fam @ ("TCP4" | "TCP6")) => {
            let src: IpAddr = words
                .next()
                .and_then(|w| w.parse().ok())
                .ok_or(ProxyError::V1)?;
            let dst: IpAddr = words
                .next()
                .and_then(|w| w.parse().ok())
                .ok_or(ProxyError::V1)?;
            let ports_ok = (0..2).all(|_| words.next().is_some_and(|p| p.parse::<u16>().is_ok()));
            let fam_ok = match fam {
                "TCP4" => src.is_ipv4() && dst.is_ipv4(),
                _ => src.is_ipv6() && dst.is_ipv6(),
            };
            if !ports_ok || !fam_ok || words.next().is_some() {
                return Err(ProxyError::V1);
            }
            Some(src)
        }
        _ => return Err(ProxyError::V1),
    };
    Ok(Parsed::Header {
        len: end + 2,
        source,
    })
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let ver_cmd = buf[12];
    let family = buf[13];
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if ver_cmd >> 4 != 2 || ver_cmd & 0x0f > 1 {
        return Err(ProxyError::V2);
    }
    let total = 16 + len;
    if total > MAX_HEADER {
        return Err(ProxyError::TooLong);
    }
    if buf.len() < total {
        return Ok(Parsed::Partial);
    }
    let local = ver_cmd & 0x0f == 0;
    let body = &buf[16..total];
    let source = match family {
        _ if local => None,
        // TCP over IPv4: source, destination, ports.
        0x11 => {
            let b: [u8; 4] = body
                .get(..4)
                .ok_or(ProxyError::V2)?
                .try_into()
                .map_err(|_| ProxyError::V2)?;
            if body.len() < 12 {
                return Err(ProxyError::V2);
            }
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        // TCP over IPv6.
        0x21 => {
            let b: [u8; 16] = body
                .get(..16)
                .ok_or(ProxyError::V2)?
                .try_into()
                .map_err(|_| ProxyError::V2)?;
            if body.len() < 36 {
                return Err(ProxyError::V2);
            }
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        // UNSPEC, UDP, unix sockets: the proxy speaks for itself.
        _ => None,
    };
    Ok(Parsed::Header { len: total, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | cmd);
        h.push(fam);
        h.extend_from_slice(&(body.len() as u16).to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    #[test]
    fn v1_tcp4_tcp6_unknown_and_what_follows() {
        let h = b"PROXY TCP4 192.0.2.7 198.51.100.1 51000 8000\r\nhello\n";
        assert_eq!(
            parse(h),
            Ok(Parsed::Header {
                len: 46,
                source: Some("192.0.2.7".parse().unwrap())
            })
        );
        let h = b"PROXY TCP6 2001:db8::7 2001:db8::1 51000 8000\r\n";
        assert!(matches!(
            parse(h),
            Ok(Parsed::Header {
                source: Some(IpAddr::V6(_)),
                ..
            })
        ));
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            Ok(Parsed::Header {
                len: 15,
                source: None
            })
        );
        // Cut anywhere, it asks for more.
        let h = b"PROXY TCP4 192.0.2.7 198.51.100.1 51000 8000\r\n";
        for cut in 1..h.len() - 1 {
            assert_eq!(parse(&h[..cut]), Ok(Parsed::Partial), "{cut}");
        }
    }

    #[test]
    fn v1_refuses_bad_fields_and_endless_lines() {
        for bad in [
            &b"PROXY TCP4 192.0.2.7 2001:db8::1 1 2\r\n"[..],
            b"PROXY TCP4 192.0.2.7 198.51.100.1 1\r\n",
            b"PROXY TCP4 nonsense 198.51.100.1 1 2\r\n",
            b"PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 1 99999\r\n",
        ] {
            assert_eq!(parse(bad), Err(ProxyError::V1), "{bad:?}");
        }
        assert_eq!(parse(&[b'P'; 0]), Ok(Parsed::NotProxy));
        let mut long = b"PROXY TCP4 ".to_vec();
        long.extend(std::iter::repeat_n(b'1', 200));
        assert_eq!(parse(&long), Err(ProxyError::V1));
    }

    #[test]
    fn v2_proxy_local_families_and_lengths() {
        let mut body = vec![192, 0, 2, 9, 198, 51, 100, 1, 0xc8, 0x00, 0x1f, 0x40];
        body.extend_from_slice(&[0x04, 0, 2, b'o', b'k']); // a TLV, skipped
        let h = v2(1, 0x11, &body);
        assert_eq!(
            parse(&h),
            Ok(Parsed::Header {
                len: h.len(),
                source: Some("192.0.2.9".parse().unwrap())
            })
        );
        let mut six = Vec::new();
        six.extend_from_slice(&"2001:db8::9".parse::<Ipv6Addr>().unwrap().octets());
        six.extend_from_slice(&[0; 16]);
        six.extend_from_slice(&[0; 4]);
        assert!(matches!(
            parse(&v2(1, 0x21, &six)),
            Ok(Parsed::Header {
                source: Some(IpAddr::V6(_)),
                ..
            })
        ));
        assert_eq!(
            parse(&v2(0, 0x00, &[])),
            Ok(Parsed::Header {
                len: 16,
                source: None
            }),
            "LOCAL: a health check"
        );
        for cut in 1..h.len() {
            assert_eq!(parse(&h[..cut]), Ok(Parsed::Partial), "{cut}");
        }
        assert_eq!(
            parse(&v2(1, 0x11, &[1, 2, 3])),
            Err(ProxyError::V2),
            "short address"
        );
        let mut bad_version = v2(1, 0x11, &body);
        bad_version[12] = 0x31;
        assert_eq!(parse(&bad_version), Err(ProxyError::V2));
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert_eq!(parse(&huge), Err(ProxyError::TooLong));
    }

    #[test]
    fn other_bytes_are_not_proxy() {
        assert_eq!(parse(b"\0NTR"), Ok(Parsed::NotProxy));
        assert_eq!(parse(b"hello\n"), Ok(Parsed::NotProxy));
        assert_eq!(parse(b"PROXIMITY\n"), Ok(Parsed::NotProxy));
        assert_eq!(parse(b"\r\n"), Ok(Parsed::Partial), "could still be v2");
        assert_eq!(parse(b"\r\nX"), Ok(Parsed::NotProxy));
    }
}
