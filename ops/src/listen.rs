//! The listening sockets of natter's doors: as tokio's `TcpListener::bind` makes them (address
//! reuse on Unix), with a larger accept backlog.

use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpSocket};

/// Connections the kernel completes and keeps for `accept`, per listener (capped by
/// `net.core.somaxconn`, 4,096 by default). tokio's `bind` asks for 1,024: in a storm of
/// thousands of connects at once the SYNs past it are dropped, and each such client waits for
/// its SYN's retransmission, 1 s and then 3 s later, however idle the process is.
pub const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with a backlog of [`LISTEN_BACKLOG`].
///
/// # Errors
/// The socket's creation, options or bind, as `TcpListener::bind` would fail.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
