//! One connection's byte pump, in one task ([`Connection`], a hand-written future): it forwards
//! what the socket reads to the hub task, writes what the hub appends to the connection's
//! [`Outbox`] (all pieces taken at once, written with vectored writes), and reports how much was
//! written so the hub can bound what is queued.
//!
//! An idle connection holds no buffer: reads go into a stack buffer only once the socket is
//! readable, and the outbox releases its buffers whenever the connection has caught up.

use crate::hub_task::Input;
use crate::outbox::Outbox;
use crate::socket_cap::Place;
use bytes::Bytes;
use natter_core::ConnId;
use natter_core::hub::Door;
use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Sleep, sleep, timeout};
use tracing::debug;

/// Bytes read per read call. The hub holds at most one partial frame or line per connection
/// (`limits::INBOUND_MAX_BYTES`); this only sets how finely a burst is cut.
const READ_CHUNK: usize = 4096;

/// After the hub said close (or is done with the connection), how long it may take to flush what
/// is left to a peer that reads slowly.
const CLOSE_LINGER: Duration = Duration::from_secs(5);

/// After our side is closed, how long unread input is drained and dropped, so the kernel does not
/// answer it with a reset that could destroy the last error line before the peer reads it.
pub(crate) const DRAIN_AFTER_CLOSE: Duration = Duration::from_secs(1);

/// TCP keepalive probes start after this much silence. Binary clients are pinged by the hub;
/// people on `nc` cannot answer pings, so for them the kernel finds a vanished peer (a laptop
/// closed, a cable pulled) and the half-open socket stops holding a connection slot.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);

/// Between keepalive probes; the kernel gives up after a few unanswered ones.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// Small frames, latency-bound: no Nagle. Keepalive: see [`KEEPALIVE_IDLE`].
fn tune_socket(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL);
    socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive)
}

/// [`tune_socket`], with a log line if it fails (the connection is served anyway).
pub(crate) fn tune(stream: &TcpStream, peer: SocketAddr) {
    if let Err(e) = tune_socket(stream) {
        debug!(%peer, error = %e, "cannot set socket options");
    }
}

/// Serves one accepted socket until it is closed.
///
/// The hub closes the outbox when it says close, and when it has seen `Closed` after the peer
/// went: either way what it queued before is written (within [`CLOSE_LINGER`]), then FIN.
/// Input read after the hub said close is dropped, and after the FIN drained for
/// [`DRAIN_AFTER_CLOSE`], so the peer reads the last error line instead of a reset.
///
/// `door` is the listener it came in on; `permit` is the connection's place under the server's
/// socket cap, given back when it ends.
pub(crate) fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    door: Door,
    hub: mpsc::Sender<Input>,
    permit: Place,
) -> Connection {
    tune(&stream, peer);
    let outbox = Arc::new(Outbox::default());
    let first = first_bytes(&stream);
    if first.is_some() {
        // It is the connection's read in the hub's queue until the hub has taken it.
        outbox.read_sent();
    }
    let (reply_tx, reply_rx) = oneshot::channel();
    let accepted = Input::Accepted {
        peer,
        door,
        outbox: outbox.clone(),
        handshaken: false,
        first,
        reply: reply_tx,
    };
    let state = match tell_now(&hub, accepted) {
        Told::Sent => State::Accepting {
            send: None,
            reply: reply_rx,
        },
        Told::Wait(send) => State::Accepting {
            send: Some(send),
            reply: reply_rx,
        },
        Told::Gone => State::Done,
    };
    Connection {
        stream: Some(stream),
        hub,
        outbox,
        _permit: permit,
        state,
        out: Unwritten::default(),
        conn: ConnId(0),
        peer_gone: false,
        closed_sent: false,
    }
}

/// What a socket just accepted holds already, read without waiting (`None` if nothing yet, or
/// the peer closed or failed: the connection's reads find that). A client writes its first
/// bytes right after its connect, so in a storm, where accepts lag behind the kernel's
/// handshakes, they are usually there: handed over with the accept, the hub knows the dialect
/// at once, and never greets a binary client as a person because its own queue held the
/// preamble past the detection wait. A plain `recv` on the non-blocking socket: tokio's
/// `try_read` would not try before the reactor has seen the socket readable.
fn first_bytes(stream: &TcpStream) -> Option<Bytes> {
    use std::io::Read;
    let mut buf = [0u8; READ_CHUNK];
    let sock = socket2::SockRef::from(stream);
    match (&*sock).read(&mut buf) {
        Ok(n) if n > 0 => Some(Bytes::copy_from_slice(&buf[..n])),
        _ => None,
    }
}

/// One connection's task: a state machine written out by hand rather than an `async fn`, so
/// the task holds exactly these fields (an `async fn` kept the socket, the sender and the
/// permit twice, and every await's locals besides: 400 bytes against 150; tokio rounds a
/// task up to a multiple of 128 bytes, so an idle connection's task is 256 bytes, not 512).
pub(crate) struct Connection {
    /// Taken by the close sequence.
    stream: Option<TcpStream>,
    hub: mpsc::Sender<Input>,
    outbox: Arc<Outbox>,
    _permit: Place,
    state: State,
    out: Unwritten,
    conn: ConnId,
    /// The peer closed its side or the socket failed on read: nothing more to read.
    peer_gone: bool,
    /// The hub was told the connection is gone.
    closed_sent: bool,
}

/// An input waiting for room in the hub's full queue (boxed: rare, and large); false if the
/// hub task is gone.
type SlowSend = Pin<Box<dyn Future<Output = bool> + Send>>;

enum State {
    /// Waiting for the hub to take the connection (or refuse it).
    Accepting {
        send: Option<SlowSend>,
        reply: oneshot::Receiver<Option<ConnId>>,
    },
    /// Pumping bytes both ways.
    Running {
        /// Set once the outbox is closing: `out` then holds the last bytes to write.
        linger: Option<Pin<Box<Sleep>>>,
        sending: Option<SlowSend>,
    },
    /// FIN, `Closed` for the hub, a moment of draining (boxed: only a closing connection
    /// needs its timers).
    Finishing(Pin<Box<dyn Future<Output = ()> + Send>>),
    Done,
}

impl Future for Connection {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Accepting { send, reply } => {
                    if let Some(s) = send {
                        match s.as_mut().poll(cx) {
                            Poll::Pending => return Poll::Pending,
                            Poll::Ready(true) => *send = None,
                            Poll::Ready(false) => this.state = State::Done,
                        }
                        continue;
                    }
                    match Pin::new(reply).poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(Some(conn))) => {
                            this.conn = conn;
                            this.state = State::Running {
                                linger: None,
                                sending: None,
                            };
                        }
                        // Refused (or the hub task is gone): dropping the stream closes it at
                        // once.
                        Poll::Ready(_) => this.state = State::Done,
                    }
                }
                State::Running { .. } => {
                    let Poll::Ready(wrote_all) = this.poll_run(cx) else {
                        return Poll::Pending;
                    };
                    this.state = match this.stream.take() {
                        Some(stream) => State::Finishing(Box::pin(finish(
                            stream,
                            this.hub.clone(),
                            this.conn,
                            wrote_all,
                            this.peer_gone,
                            this.closed_sent,
                        ))),
                        None => State::Done,
                    };
                }
                State::Finishing(f) => {
                    let Poll::Ready(()) = f.as_mut().poll(cx) else {
                        return Poll::Pending;
                    };
                    this.state = State::Done;
                }
                State::Done => return Poll::Ready(()),
            }
        }
    }
}

impl Connection {
    /// Reads and writes until the outbox is closed and flushed (true), or a write fails or the
    /// flush runs out of time (false, with a log line).
    ///
    /// It waits for everything at once: socket readiness (whose wakers live in the socket's
    /// registration), the outbox (whose waker lives in the outbox), the close timer, and an
    /// input waiting for room in the hub's queue (which goes first, as the hub must see
    /// inputs in order).
    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let Connection {
            stream,
            hub,
            outbox,
            state,
            out,
            conn,
            peer_gone,
            closed_sent,
            ..
        } = self;
        let (Some(stream), State::Running { linger, sending }) = (stream.as_mut(), state) else {
            return Poll::Ready(false);
        };
        let conn = *conn;
        loop {
            if let Some(s) = sending {
                let Poll::Ready(sent) = s.as_mut().poll(cx) else {
                    return Poll::Pending;
                };
                *sending = None;
                // The hub task is gone (it closed the outbox): stop reading.
                *peer_gone |= !sent;
            }
            if out.is_empty() {
                if linger.is_some() {
                    return Poll::Ready(true);
                }
                if out.refill(outbox) {
                    *linger = Some(Box::pin(sleep(CLOSE_LINGER)));
                    continue;
                }
            }
            let mut r = Ready::default();
            // One read in the hub's queue at a time (see `Outbox::poll_read_turn`): a flood
            // waits in its own socket, not ahead of everyone else's input.
            if !*peer_gone && outbox.poll_read_turn(cx).is_ready() {
                r.read = ready(stream.poll_read_ready(cx), &mut r.failed);
            }
            if out.is_empty() {
                r.outbox = outbox.poll_ready(cx).is_ready();
            } else {
                r.write = ready(stream.poll_write_ready(cx), &mut r.failed);
            }
            if let Some(t) = linger.as_mut() {
                r.linger = t.as_mut().poll(cx).is_ready();
            }
            if let Some(e) = r.failed {
                debug!(%conn, error = %e, "socket failed");
                return Poll::Ready(false);
            }
            if r.linger {
                debug!(%conn, unsent = out.len(), "gave up flushing before close");
                return Poll::Ready(false);
            }
            if !(r.read || r.write || r.outbox) {
                return Poll::Pending;
            }
            if r.write {
                match out.write_to(stream) {
                    Ok(0) => {
                        debug!(%conn, "socket accepts no more bytes");
                        return Poll::Ready(false);
                    }
                    Ok(n) => match tell_now(hub, Input::Written { conn, n }) {
                        Told::Sent => {}
                        // Fails only when the hub task is gone; it closed the outbox then.
                        Told::Gone => *peer_gone = true,
                        Told::Wait(s) => {
                            *sending = Some(s);
                            // The read (if ready) waits its turn: readiness stays set.
                            continue;
                        }
                    },
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        debug!(%conn, error = %e, "write failed");
                        return Poll::Ready(false);
                    }
                }
            }
            if r.read
                && let Some(input) = read_input(
                    stream,
                    cx,
                    conn,
                    linger.is_none(),
                    peer_gone,
                    closed_sent,
                    outbox,
                )
            {
                match tell_now(hub, input) {
                    Told::Sent => {}
                    Told::Gone => *peer_gone = true,
                    Told::Wait(s) => *sending = Some(s),
                }
            }
        }
    }
}

/// One read: what to tell the hub about it, if anything (the read bytes if `forward`, i.e.
/// unless the hub said close; when the hub has not said close, `Eof` when the peer shut its
/// side and `Closed` when the socket failed).
fn read_input(
    stream: &mut TcpStream,
    cx: &mut Context<'_>,
    conn: ConnId,
    forward: bool,
    peer_gone: &mut bool,
    closed_sent: &mut bool,
    outbox: &Outbox,
) -> Option<Input> {
    match read_some(stream, cx) {
        Ok(Some(data)) if forward => {
            outbox.read_sent();
            Some(Input::Read { conn, data })
        }
        Ok(Some(_)) => None,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        gone => {
            let eof = matches!(gone, Ok(None));
            match gone {
                Err(e) => debug!(%conn, error = %e, "read failed"),
                _ => debug!(%conn, "peer closed"),
            }
            *peer_gone = true;
            if *closed_sent || outbox.is_closing() {
                return None;
            }
            if eof {
                // The peer shut its side, and may still read: the hub answers what it sent
                // (a person on nc) or closes the outbox now; `Closed` comes after the flush.
                return Some(Input::Eof { conn });
            }
            // Unless the hub said close already, it hears `Closed` now, and closes the outbox
            // once it has queued its last bytes.
            *closed_sent = true;
            Some(Input::Closed { conn })
        }
    }
}

/// After the pump: FIN, `Closed` for the hub if it has not heard, and a moment of draining.
async fn finish(
    mut stream: TcpStream,
    hub: mpsc::Sender<Input>,
    conn: ConnId,
    wrote_all: bool,
    peer_gone: bool,
    closed_sent: bool,
) {
    if wrote_all {
        // Sends FIN after the last byte.
        let _ = timeout(CLOSE_LINGER, stream.shutdown()).await;
    }
    if !closed_sent {
        // Closed for the hub (its limits count it no more), though input is drained a moment.
        if let Told::Wait(send) = tell_now(&hub, Input::Closed { conn }) {
            send.await;
        }
    }
    if !peer_gone {
        let _ = timeout(DRAIN_AFTER_CLOSE, discard(&mut stream)).await;
    }
}

/// How a `try_send` to the hub went.
enum Told {
    Sent,
    /// The hub task is gone.
    Gone,
    /// The queue is full: this sends it once there is room.
    Wait(SlowSend),
}

/// Sends to the hub task at once if its queue has room.
fn tell_now(hub: &mpsc::Sender<Input>, input: Input) -> Told {
    match hub.try_send(input) {
        Ok(()) => Told::Sent,
        Err(mpsc::error::TrySendError::Closed(_)) => Told::Gone,
        Err(mpsc::error::TrySendError::Full(input)) => {
            let hub = hub.clone();
            Told::Wait(Box::pin(async move { hub.send(input).await.is_ok() }))
        }
    }
}

/// Pieces taken from the outbox and not yet written.
#[derive(Default)]
struct Unwritten {
    /// Last to write first: the next piece is popped off the end.
    bufs: Vec<Bytes>,
    /// Bytes of the next piece already written.
    pos: usize,
}

impl Unwritten {
    /// Pieces per vectored write, at most (a piece is often every broadcast of a hub cycle).
    const MAX_SLICES: usize = 64;

    fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }

    /// Bytes left to write.
    fn len(&self) -> usize {
        self.bufs.iter().map(Bytes::len).sum::<usize>() - self.pos
    }

    /// Takes what the outbox has (this is all written); true if the outbox is closing.
    fn refill(&mut self, outbox: &Outbox) -> bool {
        self.pos = 0;
        let closing = outbox.take(&mut self.bufs);
        self.bufs.reverse();
        closing
    }

    /// One vectored write of what is left.
    fn write_to(&mut self, stream: &TcpStream) -> io::Result<usize> {
        let n = match self.bufs.as_slice() {
            [] => 0,
            [one] => stream.try_write(&one[self.pos..])?,
            many => {
                let mut slices = [IoSlice::new(&[]); Self::MAX_SLICES];
                let mut used = 0;
                for (slot, buf) in slices.iter_mut().zip(many.iter().rev()) {
                    let skip = if used == 0 { self.pos } else { 0 };
                    *slot = IoSlice::new(&buf[skip..]);
                    used += 1;
                }
                stream.try_write_vectored(&slices[..used])?
            }
        };
        self.advance(n);
        Ok(n)
    }

    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(next) = self.bufs.last() else {
                return;
            };
            let left = next.len() - self.pos;
            if n < left {
                self.pos += n;
                return;
            }
            n -= left;
            self.bufs.pop();
            self.pos = 0;
        }
    }
}

/// What woke [`Connection::poll_run`].
#[derive(Default)]
struct Ready {
    read: bool,
    write: bool,
    outbox: bool,
    linger: bool,
    failed: Option<io::Error>,
}

/// Whether a readiness poll is ready; an error (the runtime's I/O driver is gone) goes to
/// `failed`.
fn ready(p: Poll<io::Result<()>>, failed: &mut Option<io::Error>) -> bool {
    match p {
        Poll::Ready(Ok(())) => true,
        Poll::Ready(Err(e)) => {
            *failed = Some(e);
            false
        }
        Poll::Pending => false,
    }
}

/// One read, once the socket looked readable; `WouldBlock` if nothing was there. Not async, so
/// the buffer lives on the stack only while reading, never in an idle connection's future.
/// `Ok(None)` is end of stream.
///
/// It reads through `AsyncRead::poll_read`, not `try_read`: tokio forgets the socket's readiness
/// after a short read there, so the next wake-up waits for new data instead of costing a read
/// that finds nothing (the usual case: a read seldom fills the buffer).
fn read_some(stream: &mut TcpStream, cx: &mut Context<'_>) -> io::Result<Option<Bytes>> {
    let mut buf = [0u8; READ_CHUNK];
    let mut buf = ReadBuf::new(&mut buf);
    match Pin::new(stream).poll_read(cx, &mut buf) {
        Poll::Ready(read) => {
            read?;
            let data = buf.filled();
            Ok((!data.is_empty()).then(|| Bytes::copy_from_slice(data)))
        }
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

/// Reads and drops input until the peer closes or the socket fails.
async fn discard(stream: &mut TcpStream) {
    // The waker of a read that found nothing stays in the socket's registration.
    let mut read = |cx: &mut Context<'_>| match read_some(stream, cx) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        r => Poll::Ready(r),
    };
    while let Ok(Some(_)) = poll_fn(&mut read).await {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connected pair on 127.0.0.1: the client's end (keep it alive) and the accepted end.
    async fn accepted() -> (TcpStream, TcpStream, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server_side, peer) = listener.accept().await.unwrap();
        (client, server_side, peer)
    }

    #[tokio::test]
    async fn accepted_sockets_get_nodelay_and_keepalive() {
        let (_client, server_side, _) = accepted().await;
        tune_socket(&server_side).unwrap();
        assert!(server_side.nodelay().unwrap());
        let sock = socket2::SockRef::from(&server_side);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), KEEPALIVE_IDLE);
        assert_eq!(sock.tcp_keepalive_interval().unwrap(), KEEPALIVE_INTERVAL);
    }

    /// A binary client writes its preamble right after its connect; in a storm the server
    /// accepts it later, when the bytes are there: they go to the hub with the accept, so the
    /// hub knows the dialect before any detection wait can end (until issue 22's QA they waited
    /// for the connection task's first read, behind the storm's other accepts in the hub's
    /// queue, and a busy hub greeted such clients as people on nc). A connection that has said
    /// nothing yet is accepted without bytes, to be read as usual.
    #[tokio::test]
    async fn what_the_socket_holds_at_accept_goes_with_the_accept() {
        use tokio::io::AsyncWriteExt;
        let (mut client, server_side, peer) = accepted().await;
        client.write_all(b"\0NTR\0\0\0\x05hello").await.unwrap();
        // Until the kernel has the bytes on the accepted side.
        let mut peeked = [0u8; 16];
        while server_side.peek(&mut peeked).await.unwrap() < 13 {}
        let (hub_tx, mut hub_rx) = mpsc::channel(1);
        let permit = crate::socket_cap::SocketCap::new(1).acquire().await;
        let _conn = serve(server_side, peer, Door::Natter, hub_tx, permit);
        let Some(Input::Accepted { first, outbox, .. }) = hub_rx.recv().await else {
            panic!("no accept");
        };
        assert_eq!(first.as_deref(), Some(&b"\0NTR\0\0\0\x05hello"[..]));
        // That read is the connection's one read in the hub's queue until the hub takes it.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(outbox.poll_read_turn(&mut cx).is_pending());

        let (_quiet, server_side, peer) = accepted().await;
        let (hub_tx, mut hub_rx) = mpsc::channel(1);
        let permit = crate::socket_cap::SocketCap::new(1).acquire().await;
        let _conn = serve(server_side, peer, Door::Natter, hub_tx, permit);
        let Some(Input::Accepted { first, outbox, .. }) = hub_rx.recv().await else {
            panic!("no accept");
        };
        assert_eq!(first, None);
        assert!(outbox.poll_read_turn(&mut cx).is_ready());
    }

    /// What an idle connection costs in task state (its future; the kernel's socket buffers
    /// aside): no read or write buffer lives in it.
    #[tokio::test]
    async fn idle_connection_state_is_small() {
        let (_client, server_side, peer) = accepted().await;
        let (hub_tx, _hub_rx) = mpsc::channel(1);
        let permit = crate::socket_cap::SocketCap::new(1).acquire().await;
        let serve_fut = serve(server_side, peer, Door::Natter, hub_tx, permit);
        let serve_size = std::mem::size_of_val(&serve_fut);
        assert!(serve_size <= 152, "connection future is {serve_size} bytes");
        const { assert!(READ_CHUNK > 1024, "the read buffer would fit in the bound") };
    }
}
