//! The listening sockets of natter's doors: as tokio's `TcpListener::bind` makes them (address
//! reuse on Unix, once listening), with a larger accept backlog, and IPv6 listeners for IPv6
//! only; a socket bound and not yet listening is alone on its port.

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
/// The socket is alone on the port until it listens: another [`bind`] of the port (a second
/// server started meanwhile) fails at once, as any other socket's bind does. Linux lets two
/// sockets that both have address reuse (`SO_REUSEADDR`) bind one port while neither listens,
/// and checks the flag of both at each bind: so the port is bound without it, and only when
/// that fails (the connections of a server stopped a moment ago may wait on the port in
/// TIME_WAIT for a minute, which a bind without the flag counts as in use) with it, and the
/// flag is then cleared again at once. [`Bound::listen`] sets it back, for the listen's own
/// check against TIME_WAIT and for the accepted connections, which inherit it: their TIME_WAIT
/// then leaves the next start a port it can bind.
///
/// # Errors
/// As [`listen`]'s, but for the listen itself.
pub fn bind(addr: SocketAddr) -> std::io::Result<Bound> {
    let alone = socket_for(addr)?;
    match alone.bind(addr) {
        Ok(()) => return Ok(Bound(alone)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {}
        Err(e) => return Err(e),
    }
    drop(alone);
    let socket = socket_for(addr)?;
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    #[cfg(unix)]
    socket.set_reuseaddr(false)?;
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

    /// Starts listening, with a backlog of [`LISTEN_BACKLOG`], and with address reuse (see
    /// [`bind`]).
    ///
    /// # Errors
    /// As `listen` fails.
    pub fn listen(self) -> std::io::Result<TcpListener> {
        #[cfg(unix)]
        self.0.set_reuseaddr(true)?;
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
    async fn a_bound_socket_is_alone_on_its_port_until_it_listens() {
        // A second server started on the port while the first opens its store (a migration)
        // must stop at once, not after opening its own store: with address reuse on both
        // sockets Linux let it bind beside the first, and it failed only at its listen.
        let bound = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = bound.local_addr().unwrap();
        for other in [bind(addr).map(drop), listen(addr).map(drop)] {
            assert_eq!(other.unwrap_err().kind(), std::io::ErrorKind::AddrInUse);
        }
        // As std's listeners bind (with address reuse): what `cargo xtask up` checks with.
        assert_eq!(
            std::net::TcpListener::bind(addr).unwrap_err().kind(),
            std::io::ErrorKind::AddrInUse
        );
        let l = bound.listen().unwrap();
        assert_eq!(
            bind(addr).unwrap_err().kind(),
            std::io::ErrorKind::AddrInUse
        );
        drop(l);
        assert!(bind(addr).is_ok(), "free again once closed");
    }

    /// A socket bound without address reuse: how the kernel sees the port (TIME_WAIT included).
    fn bind_without_reuse(addr: SocketAddr) -> std::io::Result<socket2::Socket> {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        s.bind(&addr.into())?;
        Ok(s)
    }

    #[tokio::test]
    async fn a_port_left_in_time_wait_by_a_stopped_server_binds_again_and_alone() {
        // A restart right after a stop: the connections the server closed first wait in
        // TIME_WAIT on its port for a minute. The new server binds all the same, and is then
        // alone on the port as at any start.
        let l = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server_side, _) = l.accept().await.unwrap();
        drop(server_side);
        drop(l);
        // The client sees the server's FIN and closes too: the server's side is in TIME_WAIT.
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tokio::io::AsyncReadExt::read(&mut client, &mut buf),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(n, 0);
        drop(client);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(
            bind_without_reuse(addr).unwrap_err().kind(),
            std::io::ErrorKind::AddrInUse,
            "the port holds a connection in TIME_WAIT"
        );
        let bound = bind(addr).expect("a restart binds beside TIME_WAIT");
        assert_eq!(
            bind(addr).unwrap_err().kind(),
            std::io::ErrorKind::AddrInUse
        );
        let l = bound.listen().expect("and listens");
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = l.accept().await.unwrap();
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
