//! The TLS doors: natter's own port (binary clients and people on `openssl s_client`, told
//! apart by the hub as on the plain port) or an IRC listener (port 6697 by convention), behind
//! a TLS handshake. Both present the same certificate (reloaded together on SIGHUP).
//!
//! Before the hub hears of a connection: a PROXY header is read in clear if the peer is a
//! trusted proxy, then the handshake runs, the whole bounded by the hub's hello timeout and by
//! a count of handshakes in progress per address (the named client's, behind a proxy). Only a
//! finished handshake reaches the hub, which then sees the same inputs as from a plain
//! connection: its pump here is an `async fn` (the plain port's hand-written future saves
//! memory per idle connection; a TLS connection holds rustls's buffers anyway).

use crate::hub_task::Input;
use crate::outbox::Outbox;
use crate::socket_cap::Place;
use bytes::Bytes;
use natter_core::hub::Door;
use natter_core::proxy::{self, Parsed};
use natter_tls::ServerTls;
use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep, timeout};
use tracing::{debug, info};

/// Bytes read per read call (as on the plain port).
const READ_CHUNK: usize = 4096;

/// After the hub said close, how long it may take to flush what is left (as on the plain port).
const CLOSE_LINGER: Duration = Duration::from_secs(5);

/// After our side is closed, how long unread input is drained (as on the plain port).
const DRAIN_AFTER_CLOSE: Duration = crate::conn::DRAIN_AFTER_CLOSE;

/// After the words to a peer without TLS, how much of its input is read before the close.
const REFUSAL_DRAIN_BYTES: usize = 16 * 1024;

/// While a write waits on a peer that does not read, how often it looks whether the hub has
/// closed the connection meanwhile.
const CLOSE_CHECK: Duration = Duration::from_millis(250);

/// What a TLS door needs beyond what every door has.
#[derive(Clone)]
pub(crate) struct TlsDoor {
    /// The door behind the handshake: natter's own port or IRC.
    pub(crate) door: Door,
    pub(crate) tls: Arc<ServerTls>,
    pub(crate) handshakes: Arc<Handshakes>,
    /// The hub's hello timeout: the PROXY header and the handshake together take at most this.
    pub(crate) deadline: Duration,
    pub(crate) trusted_proxies: Arc<[IpAddr]>,
    /// This door's plaintext port, if the server has one: named to a peer that came here
    /// without TLS.
    pub(crate) plain_port: Option<u16>,
}

/// Handshakes in progress per address, at most `per_ip` each.
#[derive(Debug)]
pub(crate) struct Handshakes {
    per_ip: usize,
    exempt_loopback: bool,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl Handshakes {
    pub(crate) fn new(per_ip: usize, exempt_loopback: bool) -> Handshakes {
        Handshakes {
            per_ip,
            exempt_loopback,
            open: Mutex::default(),
        }
    }

    /// A place for one handshake from `ip`, or `None` if it has `per_ip` going already.
    /// `exempt`: not counted (a trusted proxy speaking for many, as the hub does not count it).
    fn enter(self: &Arc<Self>, ip: IpAddr, exempt: bool) -> Option<HandshakeSlot> {
        let ip = ip.to_canonical();
        if exempt || (self.exempt_loopback && ip.is_loopback()) {
            return Some(HandshakeSlot { table: None, ip });
        }
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(ip).or_default();
        if *n >= self.per_ip {
            return None;
        }
        *n += 1;
        Some(HandshakeSlot {
            table: Some(self.clone()),
            ip,
        })
    }

    /// Handshakes in progress in all.
    #[cfg(test)]
    fn in_progress(&self) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.values().sum()
    }
}

/// One handshake's place in [`Handshakes`], given back on drop.
struct HandshakeSlot {
    table: Option<Arc<Handshakes>>,
    ip: IpAddr,
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let Some(t) = &self.table else { return };
        let mut open = t.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves one socket accepted on a TLS listener until it is closed.
pub(crate) async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    door: TlsDoor,
    hub: mpsc::Sender<Input>,
    _permit: Place,
) {
    crate::conn::tune(&stream, peer);
    let started = Instant::now();
    let trusted = door.trusted_proxies.contains(&peer.ip().to_canonical());
    // The address the hub and the handshake count: the proxy's client, if it named one.
    let (client, named) = if trusted {
        match timeout(door.deadline, read_proxy_header(&mut stream)).await {
            Ok(Ok(named)) => (
                named.map_or(peer, |ip| SocketAddr::new(ip, 0)),
                named.is_some(),
            ),
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "bad PROXY header before TLS");
                return;
            }
            Err(_) => {
                debug!(%peer, "no PROXY header within the hello timeout");
                // From a proxy's address, silence is a person (on the proxy's host), not a proxy.
                if let Some(words) = door.door.plaintext_on_tls(None, door.plain_port) {
                    refuse_in_clear(stream, &words).await;
                }
                return;
            }
        }
    } else {
        (peer, false)
    };
    // A handshake costs far more than a plain connect: it counts against the address's connect
    // rate before it starts (the hub decides, as for any connect), not once it is done.
    let (may, verdict) = oneshot::channel();
    let asked = Input::MayHandshake {
        ip: client.ip().to_canonical(),
        reply: may,
    };
    if hub.send(asked).await.is_err() {
        return;
    }
    match verdict.await {
        Ok(Ok(())) => {}
        Ok(Err(why)) => {
            info!(%peer, client = %client.ip(), reason = %why, "TLS handshake refused");
            return;
        }
        Err(_) => return,
    }
    let Some(slot) = door.handshakes.enter(client.ip(), trusted && !named) else {
        debug!(%peer, client = %client.ip(), "too many TLS handshakes from one address");
        return;
    };
    // A person on nc, or an IRC client with TLS off, is told so in words (the handshake's
    // alert would be binary junk on their screen).
    let left = door.deadline.saturating_sub(started.elapsed());
    let first = match timeout(left, first_byte(&stream)).await {
        Ok(Ok(Some(b))) => Some(b),
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            debug!(%peer, error = %e, "reading the first byte on a TLS port");
            return;
        }
        Err(_) => None,
    };
    if let Some(words) = door.door.plaintext_on_tls(first, door.plain_port) {
        // No handshake: its place is free for another while the words go out.
        drop(slot);
        info!(%peer, client = %client.ip(), silent = first.is_none(), "no TLS on a TLS port: told so in clear");
        refuse_in_clear(stream, &words).await;
        return;
    }
    let left = door.deadline.saturating_sub(started.elapsed());
    let tls = match timeout(left, door.tls.acceptor().accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            debug!(%peer, "TLS handshake not done within the hello timeout");
            return;
        }
    };
    drop(slot);
    let outbox = Arc::new(Outbox::default());
    let (reply, answer) = oneshot::channel();
    let accepted = Input::Accepted {
        peer: client,
        door: door.door,
        outbox: outbox.clone(),
        handshaken: true,
        // The first bytes after the handshake are read by the read loop: TLS records are
        // not read here.
        first: None,
        reply,
    };
    if hub.send(accepted).await.is_err() {
        return;
    }
    let Ok(Some(conn)) = answer.await else {
        // Refused: dropping the stream closes it.
        return;
    };
    let (rd, wr) = tokio::io::split(tls);
    let mut reader = pin!(read_loop(rd, conn, &hub, &outbox));
    let mut writer = pin!(write_loop(wr, conn, &hub, &outbox));
    tokio::select! {
        () = &mut reader => {
            // The peer is gone: the hub closes the outbox once it has queued its last bytes.
            let _ = hub.send(Input::Closed { conn }).await;
            let _ = timeout(CLOSE_LINGER + CLOSE_CHECK, writer).await;
        }
        () = &mut writer => {
            // The hub said close and what it queued is written (or given up on).
            let _ = hub.send(Input::Closed { conn }).await;
            let _ = timeout(DRAIN_AFTER_CLOSE, reader).await;
        }
    }
}

/// The peer's first byte, left in the socket for the handshake; `None` at end of stream.
async fn first_byte(stream: &TcpStream) -> io::Result<Option<u8>> {
    let mut first = [0u8; 1];
    Ok((stream.peek(&mut first).await? == 1).then_some(first[0]))
}

/// Writes `words` to a peer that did not start TLS, then closes: our side first, then, after
/// reading what the peer sent meanwhile (a close with unread input would reset the connection
/// and could take the words with it), the socket.
async fn refuse_in_clear(mut stream: TcpStream, words: &[u8]) {
    let told = async {
        stream.write_all(words).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 512];
        let mut left = REFUSAL_DRAIN_BYTES;
        while left > 0 {
            let n = stream.read(&mut sink).await?;
            if n == 0 {
                break;
            }
            left = left.saturating_sub(n);
        }
        io::Result::Ok(())
    };
    let _ = timeout(DRAIN_AFTER_CLOSE, told).await;
}

/// Reads a PROXY header in clear, exactly (the TLS handshake's bytes follow it): the client it
/// names, if any. A connection with no header is served as the proxy's own.
async fn read_proxy_header(stream: &mut TcpStream) -> io::Result<Option<IpAddr>> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if proxy::parse(&first).map_err(io::Error::other)? == Parsed::NotProxy {
        return Ok(None);
    }
    // Byte by byte, so nothing of the handshake is taken: only a trusted proxy gets here, and a
    // header is short.
    let mut buf = Vec::with_capacity(proxy::MAX_HEADER);
    loop {
        buf.push(stream.read_u8().await?);
        match proxy::parse(&buf).map_err(io::Error::other)? {
            Parsed::Partial => {}
            Parsed::Header { source, .. } => return Ok(source),
            // Cannot happen after a first byte that could start a header, but if it did, the
            // bytes would be lost: refuse rather than guess.
            Parsed::NotProxy => return Err(io::Error::other("not a PROXY header")),
        }
    }
}

/// Forwards what the peer sends to the hub until it closes or the socket fails.
async fn read_loop<S: AsyncRead>(
    mut rd: ReadHalf<S>,
    conn: natter_core::ConnId,
    hub: &mpsc::Sender<Input>,
    outbox: &Outbox,
) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        // One read in the hub's queue at a time, as on the plain port.
        poll_fn(|cx| outbox.poll_read_turn(cx)).await;
        match rd.read(&mut buf).await {
            Ok(0) => {
                debug!(%conn, "peer closed");
                return;
            }
            Ok(n) => {
                let data = Bytes::copy_from_slice(&buf[..n]);
                outbox.read_sent();
                if hub.send(Input::Read { conn, data }).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                debug!(%conn, error = %e, "read failed");
                return;
            }
        }
    }
}

/// Writes what the hub appends to the outbox, reporting each batch, until the outbox is
/// closed and flushed; then close_notify and FIN.
async fn write_loop<S: AsyncWrite>(
    mut wr: WriteHalf<S>,
    conn: natter_core::ConnId,
    hub: &mpsc::Sender<Input>,
    outbox: &Outbox,
) {
    let mut bufs: Vec<Bytes> = Vec::new();
    loop {
        poll_fn(|cx| outbox.poll_ready(cx)).await;
        let closing = outbox.take(&mut bufs);
        let n: usize = bufs.iter().map(Bytes::len).sum();
        if n > 0 {
            match write_batch(&mut wr, &bufs, outbox).await {
                Ok(()) => {}
                Err(e) => {
                    debug!(%conn, error = %e, "write failed");
                    return;
                }
            }
            if hub.send(Input::Written { conn, n }).await.is_err() {
                return;
            }
        }
        if closing {
            let _ = timeout(CLOSE_LINGER, wr.shutdown()).await;
            return;
        }
    }
}

/// Writes `bufs` and flushes; gives up [`CLOSE_LINGER`] after the hub closed the connection if
/// the peer is not reading.
async fn write_batch<S: AsyncWrite>(
    wr: &mut WriteHalf<S>,
    bufs: &[Bytes],
    outbox: &Outbox,
) -> io::Result<()> {
    let mut write = pin!(async {
        for b in bufs {
            wr.write_all(b).await?;
        }
        wr.flush().await
    });
    let mut give_up: Option<Instant> = None;
    loop {
        tokio::select! {
            r = &mut write => return r,
            () = sleep(CLOSE_CHECK) => {
                if outbox.is_closing() {
                    let at = *give_up.get_or_insert_with(|| Instant::now() + CLOSE_LINGER);
                    if Instant::now() >= at {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "gave up flushing before close"));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshakes_are_counted_per_address_and_given_back() {
        let h = Arc::new(Handshakes::new(2, true));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "::ffff:192.0.2.2".parse().unwrap();
        let s1 = h.enter(a, false).unwrap();
        let _s2 = h.enter(a, false).unwrap();
        assert!(
            h.enter(a, false).is_none(),
            "a third from one address waits its turn"
        );
        assert!(
            h.enter(a, true).is_some(),
            "a trusted proxy's own are not counted"
        );
        let _s3 = h.enter(b, false).unwrap();
        assert!(h.enter("192.0.2.2".parse().unwrap(), false).is_some());
        drop(s1);
        assert!(h.enter(a, false).is_some());
        // Loopback is exempt when the hub exempts it.
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let _l: Vec<_> = (0..5).map(|_| h.enter(lo, false).unwrap()).collect();
        assert_eq!(h.in_progress(), 2);
    }
}
