//! The HTTP side of the bridge, on hyper (HTTP/1.1, one request per connection): read and route
//! a request, serve the page's files through tower-http's `ServeDir`, and hand `/ws` upgrades to
//! the relay.
//!
//! Limits on every connection: a request head of at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`]
//! headers (else 431) that arrives within [`crate::BridgeConfig::handshake_timeout`] of the
//! connection's accept. That budget also covers the whole WebSocket handshake: the 101 must be out
//! by then too, or the connection is closed. A page request may then take [`PAGE_TIMEOUT`] in all.
//!
//! Page files: paths are checked character by character before they touch the file system (no
//! `..`, `%2e`, backslashes or hidden files), symlinks may not lead out of the page directory, and
//! only regular files up to [`MAX_FILE`] are served. `ServeDir` answers with `ETag` and
//! `Last-Modified`, honours `If-None-Match`/`If-Modified-Since` (304) and ranges, and sends the
//! `.br` or `.gz` file that `cargo xtask web` wrote beside a file when the browser accepts that
//! encoding. Every file goes out with `Cache-Control: no-cache` (the names carry no content hash,
//! so a browser revalidates, which the ETag makes a 304), `X-Content-Type-Options: nosniff`, and
//! `X-Frame-Options: DENY` with `Content-Security-Policy: frame-ancestors 'none'` (no site frames
//! the page).

use crate::faults::Fault;
use crate::forwarded::{self, X_FORWARDED_FOR};
use crate::metrics::Refused;
use crate::upgrade::{self, Answer, OriginPolicy, Rewind};
use crate::{IpSlot, Shared, Stream, relay, stopped};
use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONNECTION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, LOCATION, ORIGIN,
    UPGRADE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{Either, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::{Future, poll_fn, ready};
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout};
use tower_http::services::ServeDir;
use tower_http::services::fs::ServeFileSystemResponseBody;
use tracing::{debug, info};

/// Longest request head accepted (request line and headers; hyper's smallest read buffer).
/// Browsers send well under 2 KiB; more is refused with 431 before it is buffered.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// Headers per request; more is refused with 431.
pub(crate) const MAX_HEADERS: usize = 32;

/// Largest page file served (the wasm is a few hundred KiB; this leaves a lot of room).
pub(crate) const MAX_FILE: u64 = 64 * 1024 * 1024;

/// Longest request path considered (after the query string is cut).
const MAX_PATH: usize = 256;

/// Time for a whole page request, from the accept to the last byte of the file (the wasm is the
/// big one; this allows a slow link).
pub(crate) const PAGE_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the bridge tries to get the end of a page answer out before closing.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// A response body: a page file (`ServeDir`'s) or a short text the bridge writes itself.
pub(crate) type Body = Either<ServeFileSystemResponseBody, Full<Bytes>>;

/// The 503 written, without reading the request, to a connection over a connection cap.
pub(crate) const UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Length: 24\r\nConnection: close\r\n\r\n\
503 Service Unavailable\n";

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// A WebSocket upgrade on `/ws`.
    WebSocket,
    /// A page file (`GET` or `HEAD`).
    Page,
    /// A request on `/ws` that is not a WebSocket handshake (no `Upgrade: websocket`, or not
    /// `GET`): answered with this status, counted as a refused handshake and logged, since a
    /// reverse proxy that does not pass the Upgrade header sends every browser's this way.
    NotAnUpgrade(StatusCode),
    /// Answer with this status and close.
    Refuse(StatusCode),
}

/// Routes a request by its method, path and `Upgrade` header.
pub(crate) fn route(method: &Method, path: &str, headers: &HeaderMap) -> Route {
    if path == "/ws" {
        let upgrade = headers.get_all(UPGRADE).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
            })
        });
        return match (method, upgrade) {
            (&Method::GET, true) => Route::WebSocket,
            (&Method::GET, false) => Route::NotAnUpgrade(StatusCode::UPGRADE_REQUIRED),
            _ => Route::NotAnUpgrade(StatusCode::METHOD_NOT_ALLOWED),
        };
    }
    if method == Method::GET || method == Method::HEAD {
        Route::Page
    } else {
        Route::Refuse(StatusCode::METHOD_NOT_ALLOWED)
    }
}

/// Maps a request path to a file's path under the page directory (`/` and `dir/` stand for their
/// `index.html`), or `None` if the path is not one the bridge serves. Only `[A-Za-z0-9._-]`
/// segments that do not start with a dot are allowed, which rules out `..`, percent-encoding,
/// backslashes, hidden files and empty segments.
pub(crate) fn resolve(path: &str) -> Option<String> {
    if path.len() > MAX_PATH || !path.starts_with('/') {
        return None;
    }
    let mut rel = path[1..].to_owned();
    if rel.is_empty() || rel.ends_with('/') {
        rel.push_str("index.html");
    }
    let ok = rel.split('/').all(|seg| {
        !seg.is_empty()
            && !seg.starts_with('.')
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    });
    ok.then_some(rel)
}

/// The Content-Type for a file, by extension (text types say their charset).
pub(crate) fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

/// The page directory's file service, as `start` sets it up.
pub(crate) fn serve_dir(root: &Path, precompressed: bool) -> ServeDir {
    let dir = ServeDir::new(root)
        .append_index_html_on_directories(false)
        .redirect_to_trailing_slash(false);
    if precompressed {
        dir.precompressed_br().precompressed_gzip()
    } else {
        dir
    }
}

/// A short text answer that closes the connection, with nothing else said.
fn plain_text(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(CONNECTION, HeaderValue::from_static("close"));
    r
}

/// A short text answer that closes the connection; a refused WebSocket handshake's says what
/// the bridge would take.
fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut r = plain_text(status, body);
    let h = r.headers_mut();
    match status {
        StatusCode::UPGRADE_REQUIRED => {
            h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        }
        // Only a `/ws` handshake is answered 400 here (hyper answers bad heads itself): say
        // which WebSocket version the bridge speaks.
        StatusCode::BAD_REQUEST => {
            h.insert("sec-websocket-version", HeaderValue::from_static("13"));
        }
        _ => {}
    }
    r
}

fn status_text(status: StatusCode) -> Response<Body> {
    let line = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    text(status, line)
}

/// The answer to a plain HTTP request on the HTTPS port: a redirect to the same host and path
/// over `https://` (temporary: the operator may serve plain HTTP there again), or, without a
/// usable `Host`, a 400 that says what to do.
pub(crate) fn to_https(host: Option<&HeaderValue>, path_and_query: &str) -> Response<Body> {
    let host = host.and_then(|h| h.to_str().ok()).filter(|h| {
        h.parse::<http::uri::Authority>()
            .is_ok_and(|a| a.as_str() == *h)
    });
    let location = host.and_then(|h| {
        let url = format!("https://{h}{path_and_query}");
        url.parse::<Uri>().ok().map(|_| url)
    });
    let (status, body) = match &location {
        Some(url) => (
            StatusCode::TEMPORARY_REDIRECT,
            format!("This port speaks HTTPS: {url}\n"),
        ),
        None => (
            StatusCode::BAD_REQUEST,
            "This port speaks HTTPS: open this address with https://\n".to_owned(),
        ),
    };
    let mut r = plain_text(status, body);
    if let Some(v) = location.and_then(|url| HeaderValue::from_str(&url).ok()) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

/// Serves a page file, or 404.
async fn page(shared: &Shared, req: Request<Incoming>) -> Response<Body> {
    let root = &shared.config.www_dir;
    let Some(rel) = resolve(req.uri().path()) else {
        return status_text(StatusCode::NOT_FOUND);
    };
    let file = root.join(&rel);
    // Symlinks inside the page directory must not lead out of it.
    let inside = match (
        tokio::fs::canonicalize(root).await,
        tokio::fs::canonicalize(&file).await,
    ) {
        (Ok(root), Ok(file)) => file.starts_with(root),
        _ => false,
    };
    let served = inside
        && matches!(tokio::fs::metadata(&file).await, Ok(m) if m.is_file() && m.len() <= MAX_FILE);
    // `rel` is checked characters only, so it always makes a URI.
    let uri = Uri::try_from(format!("/{rel}"));
    let (true, Ok(uri)) = (served, uri) else {
        return status_text(StatusCode::NOT_FOUND);
    };
    // ServeDir opens the file (or its .br/.gz), and answers conditional and range requests; it
    // sees the checked path, with `/` and `dir/` already made `index.html`.
    let (mut parts, _body) = req.into_parts();
    parts.uri = uri;
    let req = Request::from_parts(parts, Empty::<Bytes>::new());
    match shared.pages.clone().try_call(req).await {
        Ok(r) => {
            let mut r = r.map(Either::Left);
            let h = r.headers_mut();
            if h.contains_key(CONTENT_TYPE) {
                h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(&file)));
            }
            h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert(CONNECTION, HeaderValue::from_static("close"));
            h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            // No other site may frame the page: framed, it signs in with the device key its
            // origin keeps, and the framing page could lay its own buttons over ours
            // (clickjacking). A `<meta>` CSP cannot say `frame-ancestors`, so it is a header.
            h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            h.insert(
                CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("frame-ancestors 'none'"),
            );
            r
        }
        Err(e) => {
            debug!(file = %file.display(), error = %e, "page file unreadable");
            status_text(if e.kind() == std::io::ErrorKind::NotFound {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            })
        }
    }
}

/// What a connection has become, as far as its request tells: the service sets it, the
/// connection's driver reads it to pick the deadline.
const PHASE_HEAD: u8 = 0;
const PHASE_ANSWER: u8 = 1;
const PHASE_UPGRADE: u8 = 2;

/// The hyper service of one connection.
struct Service {
    shared: Arc<Shared>,
    peer: SocketAddr,
    phase: Arc<AtomicU8>,
    /// Plain HTTP came to the HTTPS port: every request is sent to its `https://` address.
    plain_on_tls: bool,
    /// A trusted proxy's connection: its request's `X-Forwarded-For` names the browser.
    from_proxy: bool,
    /// The browser a trusted proxy's request named, with its place under the per-address cap
    /// (held for the connection's life).
    admitted: std::sync::Mutex<Option<(SocketAddr, IpSlot)>>,
}

impl Service {
    /// The browser `req` is for: the connection's peer, or on a trusted proxy's connection the
    /// one its `X-Forwarded-For` names, which then takes its place under the per-address cap;
    /// else the status and text of the answer that refuses it (400 for an entry the proxy
    /// vouches for that is not an address, 503 over the cap).
    fn client<B>(&self, req: &Request<B>) -> Result<SocketAddr, (StatusCode, String)> {
        if !self.from_proxy {
            return Ok(self.peer);
        }
        let values = req.headers().get_all(X_FORWARDED_FOR);
        let trusted = &self.shared.config.trusted_proxies;
        let ip = match forwarded::client(
            values.iter().map(|v| v.as_bytes()),
            self.peer.ip(),
            trusted,
        ) {
            Ok(ip) => ip,
            Err(e) => {
                info!(peer = %self.peer, error = %e, "bad X-Forwarded-For from a trusted proxy");
                self.shared.metrics.refused(Refused::BadRequest);
                return Err((StatusCode::BAD_REQUEST, format!("{e}\n")));
            }
        };
        let client = SocketAddr::new(ip, self.peer.port());
        let key = natter_core::hub::address_key(ip);
        let Some(slot) = IpSlot::take(&self.shared, key) else {
            debug!(peer = %client, via = %self.peer, "refused: too many connections from this address");
            self.shared.refused_at_cap(Refused::AddressCapacity, client);
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "503 Service Unavailable\n".to_owned(),
            ));
        };
        debug!(peer = %client, via = %self.peer, "a trusted proxy's request");
        *self.admitted.lock().unwrap_or_else(|p| p.into_inner()) = Some((client, slot));
        Ok(client)
    }
}

type ServiceFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, req: Request<Incoming>) -> ServiceFuture {
        if self.plain_on_tls {
            self.phase.store(PHASE_ANSWER, Ordering::Relaxed);
            let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
            let response = to_https(req.headers().get(HOST), path);
            debug!(peer = %self.peer, status = %response.status(), "plain HTTP on the HTTPS port");
            return Box::pin(ready(Ok(response)));
        }
        let peer = match self.client(&req) {
            Ok(peer) => peer,
            Err((status, body)) => {
                self.phase.store(PHASE_ANSWER, Ordering::Relaxed);
                return Box::pin(ready(Ok(plain_text(status, body))));
            }
        };
        match route(req.method(), req.uri().path(), req.headers()) {
            Route::WebSocket => {
                let config = &self.shared.config;
                let policy = OriginPolicy {
                    https: self.shared.tls.is_some(),
                    extra_origins: &config.allowed_origins,
                    hosts: &config.allowed_hosts,
                    allow_missing: config.allow_missing_origin,
                };
                let response = match upgrade::answer(&req, &policy, peer) {
                    Answer::Accept(r) => {
                        self.phase.store(PHASE_UPGRADE, Ordering::Relaxed);
                        r.map(|()| Either::Right(Full::default()))
                    }
                    Answer::Refuse { status, body, why } => {
                        let header = |name| {
                            req.headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("(none)")
                        };
                        match why {
                            Refused::Origin => {
                                self.shared.peer_fault(Fault::Origin, peer, header(ORIGIN));
                            }
                            Refused::Host => {
                                self.shared.peer_fault(Fault::Host, peer, header(HOST));
                            }
                            _ => self.shared.metrics.refused(why),
                        }
                        self.phase.store(PHASE_ANSWER, Ordering::Relaxed);
                        text(status, body)
                    }
                };
                Box::pin(ready(Ok(response)))
            }
            Route::Page => {
                self.phase.store(PHASE_ANSWER, Ordering::Relaxed);
                let shared = Arc::clone(&self.shared);
                Box::pin(async move { Ok(page(&shared, req).await) })
            }
            Route::NotAnUpgrade(status) => {
                self.shared
                    .peer_fault(Fault::NotAnUpgrade, peer, status.as_str());
                self.phase.store(PHASE_ANSWER, Ordering::Relaxed);
                Box::pin(ready(Ok(status_text(status))))
            }
            Route::Refuse(status) => {
                debug!(%peer, %status, "refused request");
                self.phase.store(PHASE_ANSWER, Ordering::Relaxed);
                Box::pin(ready(Ok(status_text(status))))
            }
        }
    }
}

/// Serves one accepted connection: its request is answered, or it becomes a relayed WebSocket.
/// `accepted`: when the socket was accepted (a TLS handshake may have spent part of the budget).
/// `slot`: the connection's place under the per-address cap, held to its end; `None` for a
/// trusted proxy's, whose request names the browser that takes one.
///
/// The HTTP part runs in a future of its own on the heap, given back before the relay starts:
/// hyper's connection state is large, and a relayed WebSocket lives for hours (issue 22: bridge
/// memory per idle browser).
pub(crate) async fn serve(
    tcp: Stream,
    peer: SocketAddr,
    accepted: Instant,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    plain_on_tls: bool,
    slot: Option<IpSlot>,
) {
    let Some((upgraded, tcp, read_buf, stop, admitted)) = Box::pin(http_phase(
        tcp,
        peer,
        accepted,
        Arc::clone(&shared),
        stop,
        plain_on_tls,
        slot.is_none(),
    ))
    .await
    else {
        return;
    };
    // The browser a trusted proxy's request named is the one relayed (and named to the server).
    let (peer, _slot) = match admitted {
        Some((client, held)) => (client, Some(held)),
        None => (peer, slot),
    };
    if upgraded {
        relay::run(Rewind::new(read_buf, tcp), peer, &shared, stop).await;
    } else {
        // Boxed: its drain buffer would otherwise be part of every relayed connection's task.
        Box::pin(close_gently(tcp)).await;
    }
}

/// The request: answered (false), or upgraded to a WebSocket (true), with the socket and what
/// hyper read past the head; `None` when the connection is done with.
async fn http_phase(
    tcp: Stream,
    peer: SocketAddr,
    accepted: Instant,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    plain_on_tls: bool,
    from_proxy: bool,
) -> Option<(bool, Stream, bytes::Bytes, watch::Receiver<bool>, Admitted)> {
    let budget = shared.config.handshake_timeout;
    let phase = Arc::new(AtomicU8::new(PHASE_HEAD));
    let service = Service {
        shared: Arc::clone(&shared),
        peer,
        phase: Arc::clone(&phase),
        plain_on_tls,
        from_proxy,
        admitted: std::sync::Mutex::new(None),
    };
    // One request per connection: every answer but the 101 says `Connection: close`, which makes
    // hyper close after it. (`keep_alive(false)` would add `close` to the 101's
    // `Connection: Upgrade` too, which WebSocket clients refuse.)
    let mut conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(budget)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS)
        .serve_connection(TokioIo::new(tcp), service);
    let mut deadline = accepted + budget;
    let mut stopping = false;
    // The phase is read when a deadline or the stop comes, not before the wait: the service
    // sets it while `conn` is polled, in the middle of the wait (read before it, a page answer
    // was still taken for a head: cut at the handshake budget, and dropped at once on shutdown).
    let answering = || phase.load(Ordering::Relaxed) == PHASE_ANSWER;
    // Polled without shutdown, so the socket comes back: for the relay after a 101, or to close
    // it gently after an answer.
    let done = loop {
        tokio::select! {
            r = poll_fn(|cx| conn.poll_without_shutdown(cx)) => break Some(r),
            _ = sleep_until(deadline) => {
                // An answer (a page file) may take longer than a handshake; nothing else may.
                if answering() && deadline < accepted + PAGE_TIMEOUT {
                    deadline = accepted + PAGE_TIMEOUT;
                    continue;
                }
                break None;
            }
            // On shutdown, an answer in progress goes on: it ends when it is out, or when the
            // grace period runs out (the accept loop then cuts every connection left). A head
            // still coming or a handshake is dropped at once.
            _ = stopped(&mut stop), if !stopping => {
                if answering() {
                    stopping = true;
                    continue;
                }
                return None;
            }
        }
    };
    let upgraded = match done {
        None => {
            if phase.load(Ordering::Relaxed) == PHASE_ANSWER {
                debug!(%peer, "page request timed out");
            } else {
                shared.peer_fault(Fault::Timeout, peer, "HTTP or WebSocket handshake");
            }
            return None;
        }
        Some(Err(e)) if e.is_timeout() => {
            shared.peer_fault(Fault::Timeout, peer, "request head");
            return None;
        }
        Some(Err(e)) => {
            if e.is_parse() || e.is_parse_too_large() {
                // hyper has answered 400 or 431.
                shared.peer_fault(Fault::BadRequest, peer, &e.to_string());
            } else {
                debug!(%peer, error = %e, "connection failed");
            }
            false
        }
        Some(Ok(())) => phase.load(Ordering::Relaxed) == PHASE_UPGRADE,
    };
    let parts = conn.into_parts();
    let admitted = parts
        .service
        .admitted
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    Some((
        upgraded,
        parts.io.into_inner(),
        parts.read_buf,
        stop,
        admitted,
    ))
}

/// The browser a trusted proxy's request named, with its place under the per-address cap.
type Admitted = Option<(SocketAddr, IpSlot)>;

/// Most bytes read and dropped while closing after an answer.
const CLOSE_DRAIN: usize = 64 * 1024;

/// Ends a connection after its answer with a FIN, then reads and drops what the client still
/// sends (the rest of an oversize head, a body) for a moment: closing with unread data would
/// send a reset, which can make the client lose the answer.
async fn close_gently(mut tcp: Stream) {
    let _ = timeout(CLOSE_TIMEOUT, async {
        let _ = tcp.shutdown().await;
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < CLOSE_DRAIN {
            match tcp.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route_of(method: &str, path: &str, upgrade: Option<&str>) -> Route {
        let mut headers = HeaderMap::new();
        if let Some(u) = upgrade {
            headers.insert(UPGRADE, HeaderValue::from_str(u).unwrap());
        }
        route(&method.parse().unwrap(), path, &headers)
    }

    #[test]
    fn routes_websocket_pages_and_refusals() {
        assert_eq!(route_of("GET", "/ws", Some("WebSocket")), Route::WebSocket);
        assert_eq!(
            route_of("GET", "/ws", Some("h2c, websocket")),
            Route::WebSocket
        );
        assert_eq!(
            route_of("GET", "/ws", None),
            Route::NotAnUpgrade(StatusCode::UPGRADE_REQUIRED)
        );
        assert_eq!(
            route_of("POST", "/ws", Some("websocket")),
            Route::NotAnUpgrade(StatusCode::METHOD_NOT_ALLOWED)
        );
        assert_eq!(route_of("GET", "/app.js", None), Route::Page);
        assert_eq!(route_of("HEAD", "/", None), Route::Page);
        assert_eq!(
            route_of("POST", "/", None),
            Route::Refuse(StatusCode::METHOD_NOT_ALLOWED)
        );
    }

    #[test]
    fn plain_http_on_the_https_port_is_sent_to_https() {
        let host = HeaderValue::from_static("chat.example:8080");
        let r = to_https(Some(&host), "/index.html?x=1");
        assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(
            r.headers()[LOCATION],
            "https://chat.example:8080/index.html?x=1"
        );
        // No Host, or one that is not a host (it would make the Location another URL): words.
        let odd = HeaderValue::from_static("evil.example/path@x");
        for host in [None, Some(&odd)] {
            let r = to_https(host, "/");
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
            assert!(r.headers().get(LOCATION).is_none());
        }
    }

    #[test]
    fn paths_cannot_leave_the_root() {
        assert_eq!(resolve("/").as_deref(), Some("index.html"));
        assert_eq!(resolve("/a/b.wasm").as_deref(), Some("a/b.wasm"));
        assert_eq!(resolve("/sub/").as_deref(), Some("sub/index.html"));
        for bad in [
            "/../Cargo.toml",
            "/a/../../etc/passwd",
            "/%2e%2e/x",
            "/.git/config",
            "/a//b",
            "/a\\..\\b",
            "relative",
            "",
        ] {
            assert_eq!(resolve(bad), None, "{bad}");
        }
        assert_eq!(resolve(&format!("/{}", "a".repeat(MAX_PATH))), None);
    }

    proptest::proptest! {
        #[test]
        fn resolved_paths_stay_under_the_root(path in "[/a-z.%\\\\_-]{0,40}") {
            let root = Path::new("/srv/www");
            if let Some(rel) = resolve(&path) {
                let p = root.join(&rel);
                proptest::prop_assert!(p.starts_with(root));
                for c in p.strip_prefix(root).unwrap().components() {
                    let ok = matches!(c, std::path::Component::Normal(s) if !s.to_string_lossy().starts_with('.'));
                    proptest::prop_assert!(ok, "{path:?} -> {p:?}");
                }
            }
        }
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type(Path::new("x.wasm")), "application/wasm");
        assert_eq!(
            content_type(Path::new("index.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("natter_web.js")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("x")), "application/octet-stream");
    }

    #[test]
    fn the_raw_503_is_a_whole_response() {
        let text = std::str::from_utf8(UNAVAILABLE).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }
}
