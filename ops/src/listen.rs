//! The listening sockets of natter's doors: as tokio's `TcpListener::bind` makes them (address
//! reuse on Unix), with a larger accept backlog, and IPv6 listeners for IPv6 only.

use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpSocket};

/// Connections the kernel completes and keeps for `accept`, per listener (capped by
/// `net.core.somaxconn`, 4,096 by default). tokio's `bind` asks for 1,024: in a storm of
/// thousands of connects at once the SYNs past it are dropped, and each such client waits for
/// its SYN's retransmission, 1 s and then 3 s later, however idle the process is.
pub const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with a backlog of [`LISTEN_BACKLOG`].
///
/// An IPv6 address takes IPv6 connections only (`IPV6_V6ONLY`), whatever the host's default
/// (Linux's `net.ipv6.bindv6only` is 0: `[::]:8000` would also claim IPv4's port 8000), so that
/// `--listen 0.0.0.0:8000 --listen [::]:8000`, as the README has it, opens both instead of
/// failing with "Address already in use", on every host alike.
///
/// # Errors
/// The socket's creation, options or bind, as `TcpListener::bind` would fail.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    bind(addr)?.listen()
}

/// `addr` bound as [`listen`] binds it, not listening yet: a server that listens on it already
/// makes this fail at once ("Address already in use"), and a connection to it is refused, not
/// left waiting for an `accept` that may be far off. A server that needs
/// a while before it can serve (a store to open) binds first and listens once it can.
///
/// A second socket bound the same way (address reuse) may sit beside it until either listens:
/// the second [`Bound::listen`] then fails with "Address already in use".
///
/// # Errors
/// As [`listen`]'s, but for the listen itself.
pub fn bind(addr: SocketAddr) -> std::io::Result<Bound> {
    let socket = socket_for(addr)?;
    socket.bind(addr)?;
    Ok(Bound(socket))
}

/// A socket from [`bind`]: bound, not listening.
#[derive(Debug)]
pub struct Bound(TcpSocket);

impl Bound {
    /// The bound address (with the port the OS picked for port 0).
    ///
    /// # Errors
    /// As `getsockname` fails.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }

    /// Starts listening, with a backlog of [`LISTEN_BACKLOG`].
    ///
    /// # Errors
    /// As `listen` fails (another socket bound with address reuse listens on the port now).
    pub fn listen(self) -> std::io::Result<TcpListener> {
        self.0.listen(LISTEN_BACKLOG)
    }
}

/// The socket [`listen`] binds to `addr`, with its options set.
fn socket_for(addr: SocketAddr) -> std::io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        let socket = TcpSocket::new_v6()?;
        socket2::SockRef::from(&socket).set_only_v6(true)?;
        socket
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bound_socket_refuses_connections_until_it_listens() {
        let bound = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = bound.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        let refused = tokio::net::TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        let l = bound.listen().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (_, peer) = l.accept().await.unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        // A bind beside a listener fails at once.
        assert_eq!(
            bind(addr).unwrap_err().kind(),
            std::io::ErrorKind::AddrInUse
        );
    }

    #[tokio::test]
    async fn a_bound_socket_whose_port_another_listens_on_meanwhile_cannot_listen() {
        let bound = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = bound.local_addr().unwrap();
        // Address reuse lets the other listen while this one is only bound.
        let _other = listen(addr).unwrap();
        assert_eq!(
            bound.listen().unwrap_err().kind(),
            std::io::ErrorKind::AddrInUse
        );
    }

    #[tokio::test]
    async fn a_listener_accepts_on_the_port_it_was_given() {
        let l = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server, peer) = l.accept().await.unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert_eq!(server.local_addr().unwrap(), addr);
    }

    /// An IPv6 listener leaves IPv4 alone, so `[::]:P` can sit beside `0.0.0.0:P`. Checked on
    /// the socket before its bind, since Linux sets the option by itself when a socket binds a
    /// single IPv6 address, and tests bind no wildcard address.
    #[test]
    fn an_ipv6_listener_is_for_ipv6_only() {
        let socket = match socket_for("[::]:0".parse().unwrap()) {
            Ok(s) => s,
            // A host without IPv6 has nothing to check.
            Err(e) => return eprintln!("no IPv6 here ({e}); skipped"),
        };
        assert!(socket2::SockRef::from(&socket).only_v6().unwrap());
    }
}
