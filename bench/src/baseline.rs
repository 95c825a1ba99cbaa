//! The protocol-free baseline: a minimal tokio server that relays length-prefixed frames to every
//! other connection, reading nothing but the lengths. What it does per message is the floor of
//! what any chat server must do (read once, write to N sockets), so natter is measured against it.
//!
//! Each read's whole frames go out as one shared `Bytes` to every other connection's writer
//! (encode-free fan-out, batched like a real server's). When a connection is registered it gets
//! one empty frame, so a client knows it will receive everything sent from then on. A writer
//! whose queue is full is a reader too slow to keep up: it is dropped, not waited for.

use bytes::{Buf, Bytes, BytesMut};
use natter_core::limits::MAX_FRAME;
use natter_core::wire::LEN_PREFIX;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tracing::debug;

/// Chunks queued per connection before it counts as too slow (each chunk is a shared read).
const QUEUE: usize = 4096;

/// Bytes per read.
const READ_CHUNK: usize = 64 * 1024;

/// Buffers per vectored write.
const MAX_IOV: usize = 64;

type Members = Arc<Mutex<Vec<(u64, mpsc::Sender<Bytes>)>>>;

/// Accepts and relays until the listener fails.
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    let members: Members = Arc::new(Mutex::new(Vec::new()));
    let mut next_id = 0u64;
    loop {
        let (stream, peer) = listener.accept().await?;
        if let Err(e) = stream.set_nodelay(true) {
            debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        let id = next_id;
        next_id += 1;
        let (tx, rx) = mpsc::channel(QUEUE);
        // The queue is empty, so the greeting always fits.
        let _ = tx.try_send(Bytes::from_static(&[0; LEN_PREFIX]));
        lock(&members).push((id, tx));
        let (rh, wh) = stream.into_split();
        tokio::spawn(write_loop(wh, rx));
        tokio::spawn(read_loop(rh, id, members.clone()));
    }
}

fn lock(m: &Members) -> std::sync::MutexGuard<'_, Vec<(u64, mpsc::Sender<Bytes>)>> {
    // Nothing panics while holding the lock; a poisoned one is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn read_loop(rh: OwnedReadHalf, id: u64, members: Members) {
    // Holds a partial frame between reads; no allocation while the connection is idle.
    let mut buf = BytesMut::new();
    loop {
        if rh.readable().await.is_err() {
            break;
        }
        // On the stack only while reading, never in an idle connection's future.
        let mut chunk = [0u8; READ_CHUNK];
        match rh.try_read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        }
        // Whole frames only; the partial one stays for the next read.
        let mut whole = 0;
        while buf.len() - whole >= LEN_PREFIX {
            let len =
                u32::from_be_bytes([buf[whole], buf[whole + 1], buf[whole + 2], buf[whole + 3]])
                    as usize;
            if len > MAX_FRAME {
                debug!(id, len, "oversize frame; closing");
                lock(&members).retain(|(m, _)| *m != id);
                return;
            }
            if buf.len() - whole - LEN_PREFIX < len {
                break;
            }
            whole += LEN_PREFIX + len;
        }
        if whole == 0 {
            continue;
        }
        let out = buf.split_to(whole).freeze();
        if buf.is_empty() {
            buf = BytesMut::new();
        }
        lock(&members).retain(|(m, tx)| {
            *m == id
                || match tx.try_send(out.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        debug!(id = *m, "too slow; dropping");
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
        });
    }
    lock(&members).retain(|(m, _)| *m != id);
}

async fn write_loop(mut wh: OwnedWriteHalf, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(b) = rx.recv().await {
        // Per burst, so an idle connection holds no queue.
        let mut pending = vec![b];
        while pending.len() < MAX_IOV {
            match rx.try_recv() {
                Ok(b) => pending.push(b),
                Err(_) => break,
            }
        }
        while !pending.is_empty() {
            let slices: Vec<IoSlice<'_>> = pending.iter().map(|b| IoSlice::new(b)).collect();
            let n = match wh.write_vectored(&slices).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            advance(&mut pending, n);
        }
    }
    let _ = wh.shutdown().await;
}

fn advance(pending: &mut Vec<Bytes>, mut n: usize) {
    let mut done = 0;
    for b in pending.iter_mut() {
        if n >= b.len() {
            n -= b.len();
            done += 1;
        } else {
            b.advance(n);
            break;
        }
    }
    pending.drain(..done);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;
    use tokio::time::timeout;

    #[tokio::test]
    async fn relays_to_every_other_connection_after_the_greeting() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener));
        let t = Duration::from_secs(5);
        let mut a = TcpStream::connect(addr).await.unwrap();
        let mut b = TcpStream::connect(addr).await.unwrap();
        let mut greet = [9u8; 4];
        timeout(t, a.read_exact(&mut greet)).await.unwrap().unwrap();
        assert_eq!(greet, [0; 4]);
        timeout(t, b.read_exact(&mut greet)).await.unwrap().unwrap();
        // Two frames, split awkwardly across writes.
        a.write_all(&[0, 0, 0, 3, b'x', b'y']).await.unwrap();
        a.write_all(&[b'z', 0, 0, 0, 1, b'!']).await.unwrap();
        let mut got = [0u8; 12];
        timeout(t, b.read_exact(&mut got)).await.unwrap().unwrap();
        assert_eq!(&got, &[0, 0, 0, 3, b'x', b'y', b'z', 0, 0, 0, 1, b'!']);
        // Nothing came back to the sender.
        let mut one = [0u8; 1];
        assert!(
            timeout(Duration::from_millis(100), a.read(&mut one))
                .await
                .is_err()
        );
        server.abort();
    }
}
