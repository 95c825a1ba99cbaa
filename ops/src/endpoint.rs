//! The operations endpoint (`--metrics-listen ADDR`), for Prometheus and for health checks:
//!
//! | path | answer |
//! |------|--------|
//! | `GET /metrics` | the registry in OpenMetrics text (`application/openmetrics-text`) |
//! | `GET /healthz` | `200 ok`: the process is alive and its runtime answers |
//! | `GET /readyz` | `200 ready`, or `503 not ready: <why>` from the binary's [`ReadyCheck`] |
//!
//! It is meant for an operator's network, not the public: it has its own small limits
//! ([`MAX_CONNECTIONS`], [`HEAD_TIMEOUT`], [`CONNECTION_TIMEOUT`], an 8 KiB request head), one
//! request per connection, and refuses other methods and paths.

use crate::OpsError;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;
use tracing::{debug, info, warn};

/// Connections served at once; more are answered 503 and closed (a scraper and a probe or two
/// need a handful).
pub const MAX_CONNECTIONS: usize = 16;

/// Time for a request head to arrive.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Time for a whole connection: head, readiness check and answer.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(15);

/// Time the readiness check may take before `/readyz` says it timed out.
pub const READY_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest request head (hyper's smallest read buffer; a probe sends a few hundred bytes).
const MAX_HEAD: usize = 8 * 1024;

/// Headers per request, at most.
const MAX_HEADERS: usize = 32;

/// The OpenMetrics text content type.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What `/readyz` asks: `Ok` when ready, else why not (one short line).
pub type ReadyFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// The binary's readiness check, called once per `/readyz` request (within [`READY_TIMEOUT`]).
pub type ReadyCheck = Arc<dyn Fn() -> ReadyFuture + Send + Sync>;

/// A running endpoint; dropping it also stops it (without waiting: the closed channel ends the
/// accept loop).
#[derive(Debug)]
pub struct Endpoint {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Endpoint {
    /// Binds `listen` and serves `registry` and `ready` there; returns at once.
    pub async fn start(
        listen: SocketAddr,
        registry: Arc<Registry>,
        ready: ReadyCheck,
    ) -> Result<Endpoint, OpsError> {
        let bind_err = |source| OpsError::Bind {
            addr: listen,
            source,
        };
        let listener = TcpListener::bind(listen).await.map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        info!(listen = %local_addr, "metrics endpoint listening");
        let (stop, stop_rx) = watch::channel(false);
        let routes = Arc::new(Routes { registry, ready });
        let task = tokio::spawn(accept_loop(listener, routes, stop_rx));
        Ok(Endpoint {
            local_addr,
            stop,
            task,
        })
    }

    /// The address it listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops listening and cuts connections still open.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            warn!(error = %e, "metrics endpoint task failed");
        }
    }
}

struct Routes {
    registry: Arc<Registry>,
    ready: ReadyCheck,
}

async fn accept_loop(listener: TcpListener, routes: Arc<Routes>, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            // A closed channel (the `Endpoint` dropped) ends it too.
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            debug!(%peer, "metrics endpoint busy");
            let _ = tcp.try_write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            continue;
        };
        let routes = Arc::clone(&routes);
        tasks.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let routes = Arc::clone(&routes);
                async move { Ok::<_, std::convert::Infallible>(routes.answer(req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .max_headers(MAX_HEADERS)
                .serve_connection(TokioIo::new(tcp), service);
            match timeout(CONNECTION_TIMEOUT, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => debug!(%peer, error = %e, "metrics endpoint connection failed"),
                Err(_) => debug!(%peer, "metrics endpoint connection timed out"),
            }
            drop(slot);
        });
    }
    tasks.shutdown().await;
}

impl Routes {
    async fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed\n".into(),
            );
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        match req.uri().path() {
            "/metrics" => {
                let mut body = String::new();
                match prometheus_client::encoding::text::encode(&mut body, &self.registry) {
                    Ok(()) => {
                        let mut r = Response::new(Full::new(Bytes::from(body)));
                        r.headers_mut()
                            .insert(CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
                        r
                    }
                    Err(_) => text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "metrics could not be encoded\n".into(),
                    ),
                }
            }
            "/healthz" => text(StatusCode::OK, "ok\n".into()),
            "/readyz" => match timeout(READY_TIMEOUT, (self.ready)()).await {
                Ok(Ok(())) => text(StatusCode::OK, "ready\n".into()),
                Ok(Err(why)) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {why}\n"),
                ),
                Err(_) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: the readiness check timed out\n".into(),
                ),
            },
            _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
        }
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    const STEP: Duration = Duration::from_secs(5);

    async fn get(addr: SocketAddr, raw: &str) -> (u16, String) {
        let mut s = timeout(STEP, TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap();
        timeout(STEP, s.write_all(raw.as_bytes()))
            .await
            .unwrap()
            .unwrap();
        let mut all = Vec::new();
        timeout(STEP, s.read_to_end(&mut all))
            .await
            .unwrap()
            .unwrap();
        let all = String::from_utf8(all).unwrap();
        let status = all.split(' ').nth(1).unwrap().parse().unwrap();
        (status, all)
    }

    fn req(path: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
    }

    #[tokio::test]
    async fn serves_metrics_health_and_readiness() {
        let mut registry = Registry::default();
        let counter: Counter = Counter::default();
        registry.register("things", "Things seen", counter.clone());
        counter.inc_by(7);
        let ready = Arc::new(AtomicBool::new(false));
        let check: ReadyCheck = {
            let ready = Arc::clone(&ready);
            Arc::new(move || {
                let ok = ready.load(Ordering::Relaxed);
                Box::pin(async move { if ok { Ok(()) } else { Err("warming up".into()) } })
            })
        };
        let ep = Endpoint::start("127.0.0.1:0".parse().unwrap(), Arc::new(registry), check)
            .await
            .unwrap();
        let addr = ep.local_addr();

        let (status, all) = get(addr, &req("/metrics")).await;
        assert_eq!(status, 200, "{all}");
        assert!(all.contains("application/openmetrics-text"), "{all}");
        let body = all.split("\r\n\r\n").nth(1).unwrap();
        assert!(body.lines().any(|l| l == "things_total 7"), "{body}");
        assert!(body.ends_with("# EOF\n"), "{body}");
        // It parses as Prometheus text too (that parser predates OpenMetrics' `_total` counter
        // names, so it calls the sample untyped).
        let scrape =
            prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap();
        assert!(
            scrape.samples.iter().any(|s| s.metric == "things_total"
                && matches!(s.value, prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) if v == 7.0)),
            "{:?}",
            scrape.samples
        );

        let (status, all) = get(addr, &req("/healthz")).await;
        assert_eq!((status, all.ends_with("ok\n")), (200, true), "{all}");
        let (status, all) = get(addr, &req("/readyz")).await;
        assert_eq!(status, 503, "{all}");
        assert!(all.ends_with("not ready: warming up\n"), "{all}");
        ready.store(true, Ordering::Relaxed);
        assert_eq!(get(addr, &req("/readyz")).await.0, 200);

        assert_eq!(get(addr, &req("/other")).await.0, 404);
        let post = "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(get(addr, post).await.0, 405);
        let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
        assert_eq!(get(addr, &huge).await.0, 431);

        timeout(STEP, ep.shutdown()).await.unwrap();
        assert!(TcpStream::connect(addr).await.is_err(), "still listening");
    }

    /// An endpoint whose readiness check never answers.
    async fn stuck_endpoint() -> Endpoint {
        let check: ReadyCheck = Arc::new(|| Box::pin(std::future::pending()));
        Endpoint::start(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(Registry::default()),
            check,
        )
        .await
        .unwrap()
    }

    /// True when `s` is closed by the other side within `wait` without sending anything more.
    async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
        let mut b = [0u8; 256];
        matches!(timeout(wait, s.read(&mut b)).await, Ok(Ok(0) | Err(_)))
    }

    #[tokio::test]
    async fn connections_are_capped_and_silent_ones_cut_after_the_head_timeout() {
        // SECURITY.md: 16 connections at once (more: 503 at once), 5 s for the request head.
        let ep = stuck_endpoint().await;
        let addr = ep.local_addr();
        let t0 = tokio::time::Instant::now();
        let mut silent = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            silent.push(
                timeout(STEP, TcpStream::connect(addr))
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        // One over the cap is answered before it asks (a request sent would be unread, and
        // the close would reset the connection).
        let (status, all) = get(addr, "").await;
        assert_eq!(status, 503, "one over the cap: {all}");
        assert!(t0.elapsed() < HEAD_TIMEOUT, "at once: {:?}", t0.elapsed());
        // The silent ones are cut once the head timeout is over, not before.
        for s in &mut silent {
            assert!(
                closed_within(s, HEAD_TIMEOUT + STEP).await,
                "a silent connection stays"
            );
        }
        let waited = t0.elapsed();
        assert!(
            waited >= HEAD_TIMEOUT - Duration::from_millis(100),
            "{waited:?}"
        );
        // Their places are free again (the endpoint may take a moment to count the closes).
        let mut status = 0;
        for _ in 0..50 {
            status = get(addr, &req("/healthz")).await.0;
            if status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(status, 200);
        timeout(STEP, ep.shutdown()).await.unwrap();
    }

    #[tokio::test]
    async fn a_stuck_readiness_check_times_out_and_one_request_is_served_per_connection() {
        // SECURITY.md: 3 s for the readiness check; one request per connection.
        let ep = stuck_endpoint().await;
        let addr = ep.local_addr();
        let t0 = tokio::time::Instant::now();
        let (status, all) = get(addr, &req("/readyz")).await;
        let waited = t0.elapsed();
        assert_eq!(status, 503, "{all}");
        assert!(
            all.ends_with("not ready: the readiness check timed out\n"),
            "{all}"
        );
        assert!(
            waited >= READY_TIMEOUT - Duration::from_millis(100) && waited < READY_TIMEOUT + STEP,
            "{waited:?}"
        );
        // Two requests sent at once get one answer, then the connection closes.
        let two = format!("{}{}", req("/healthz"), req("/healthz"));
        let (status, all) = get(addr, &two).await;
        assert_eq!(status, 200, "{all}");
        assert_eq!(all.matches("HTTP/1.1 ").count(), 1, "{all}");
        timeout(STEP, ep.shutdown()).await.unwrap();
    }

    #[tokio::test]
    async fn a_client_that_does_not_take_the_answer_is_cut_after_the_connection_timeout() {
        // SECURITY.md: 15 s per connection in all. An answer of some 10 MB to a client with a
        // small receive buffer that does not read fills the socket buffers and stays unsent.
        let mut registry = Registry::default();
        for i in 0..200_000 {
            registry.register(format!("c{i}"), "h", Counter::<u64>::default());
        }
        let check: ReadyCheck = Arc::new(|| Box::pin(async { Ok(()) }));
        let ep = Endpoint::start("127.0.0.1:0".parse().unwrap(), Arc::new(registry), check)
            .await
            .unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut s = timeout(STEP, socket.connect(ep.local_addr()))
            .await
            .unwrap()
            .unwrap();
        timeout(STEP, s.write_all(req("/metrics").as_bytes()))
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(CONNECTION_TIMEOUT + Duration::from_secs(1)).await;
        // What was sent before the cut arrives, then the end: short of the whole answer.
        let mut all = Vec::new();
        let read = timeout(STEP, s.read_to_end(&mut all))
            .await
            .expect("the connection ends");
        let head_len = all
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("the head was sent")
            + 4;
        let head = String::from_utf8_lossy(&all[..head_len]).to_lowercase();
        let body_len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .expect("a content length")
            .trim()
            .parse()
            .unwrap();
        assert!(body_len > 8_000_000, "{body_len}");
        assert!(
            read.is_err() || all.len() < head_len + body_len,
            "the whole answer came after {CONNECTION_TIMEOUT:?}: {} bytes",
            all.len()
        );
        timeout(STEP, ep.shutdown()).await.unwrap();
    }
}
