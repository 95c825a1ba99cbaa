//! The small HTTP/1.1 side of the bridge: read one request head (bounded in size; the caller
//! bounds it in time), route it, and serve static files from the page directory.
//!
//! Every response closes the connection (`Connection: close`): the page is a handful of files,
//! so keep-alive is not worth a request loop. Paths are checked character by character before
//! they touch the file system, so `..`, `%2e`, backslashes and hidden files cannot be reached.

use bytes::{Bytes, BytesMut};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Longest request head accepted (request line and headers). Browsers send well under 2 KiB;
/// more is refused with 431 before it is buffered.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// Headers parsed per request; more is refused with 431.
const MAX_HEADERS: usize = 32;

/// Largest static file served (the wasm is a few hundred KiB; this leaves a lot of room).
const MAX_FILE: u64 = 64 * 1024 * 1024;

/// Longest request path considered (after the query string is cut).
const MAX_PATH: usize = 256;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// A WebSocket upgrade on `/ws`.
    WebSocket,
    /// A static file: `head_only` for `HEAD`.
    Static { path: String, head_only: bool },
    /// Answer with this status and close.
    Refuse(Status),
}

/// The HTTP statuses the bridge answers with itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    BadRequest,
    NotFound,
    MethodNotAllowed,
    UpgradeRequired,
    HeadTooLarge,
    Unavailable,
}

impl Status {
    fn line(self) -> &'static str {
        match self {
            Status::BadRequest => "400 Bad Request",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::UpgradeRequired => "426 Upgrade Required",
            Status::HeadTooLarge => "431 Request Header Fields Too Large",
            Status::Unavailable => "503 Service Unavailable",
        }
    }
}

/// Why no request head could be read.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// The peer closed or the socket failed before a whole head arrived: nothing to answer.
    Gone,
    /// The head was bad; answer with this status.
    Refuse(Status),
}

/// Reads until one whole request head is in `buf` (bytes after it, if any, stay there too) and
/// routes it. The caller replays `buf` to whoever reads the stream next (see [`Rewind`]).
pub(crate) async fn read_head(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
) -> Result<Route, HeadError> {
    loop {
        if let Some(route) = parse(buf)? {
            return Ok(route);
        }
        if buf.len() >= MAX_HEAD {
            return Err(HeadError::Refuse(Status::HeadTooLarge));
        }
        // Read at most up to the limit, so the buffer never grows past it.
        let mut chunk = [0u8; 2048];
        let room = (MAX_HEAD - buf.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]).await {
            Ok(0) | Err(_) => return Err(HeadError::Gone),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// `Ok(None)`: the head is not complete yet.
fn parse(buf: &[u8]) -> Result<Option<Route>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(_)) => Ok(Some(route(&req))),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::Refuse(Status::HeadTooLarge)),
        Err(_) => Err(HeadError::Refuse(Status::BadRequest)),
    }
}

fn route(req: &httparse::Request<'_, '_>) -> Route {
    // A complete parse always has method and path; be defensive anyway.
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Route::Refuse(Status::BadRequest);
    };
    let path = target.split(['?', '#']).next().unwrap_or("");
    if path == "/ws" {
        let upgrade = req.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case("upgrade")
                && std::str::from_utf8(h.value).is_ok_and(|v| {
                    v.split(',')
                        .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
                })
        });
        return match (method, upgrade) {
            ("GET", true) => Route::WebSocket,
            ("GET", false) => Route::Refuse(Status::UpgradeRequired),
            _ => Route::Refuse(Status::MethodNotAllowed),
        };
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Route::Refuse(Status::MethodNotAllowed),
    };
    Route::Static {
        path: path.to_owned(),
        head_only,
    }
}

/// Maps a request path to a file under `root`, or `None` if the path is not one the bridge
/// serves. Only `[A-Za-z0-9._-]` segments that do not start with a dot are allowed, which rules
/// out `..`, percent-encoding, backslashes, hidden files and empty segments.
pub(crate) fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    if path.len() > MAX_PATH || !path.starts_with('/') {
        return None;
    }
    let mut rel = path[1..].to_owned();
    if rel.is_empty() || rel.ends_with('/') {
        rel.push_str("index.html");
    }
    let mut out = root.to_path_buf();
    for seg in rel.split('/') {
        let ok = !seg.is_empty()
            && !seg.starts_with('.')
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return None;
        }
        out.push(seg);
    }
    Some(out)
}

/// The Content-Type for a file, by extension.
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

/// Serves one static file (or 404) and closes.
pub(crate) async fn serve_static(
    stream: &mut TcpStream,
    root: &Path,
    path: &str,
    head_only: bool,
) -> io::Result<()> {
    let Some(file_path) = resolve(root, path) else {
        return respond(stream, Status::NotFound).await;
    };
    // Symlinks inside the page directory must not lead out of it.
    let inside = match (
        tokio::fs::canonicalize(root).await,
        tokio::fs::canonicalize(&file_path).await,
    ) {
        (Ok(root), Ok(file)) => file.starts_with(root),
        _ => false,
    };
    if !inside {
        return respond(stream, Status::NotFound).await;
    }
    let mut file = match tokio::fs::File::open(&file_path).await {
        Ok(f) => f,
        Err(_) => return respond(stream, Status::NotFound).await,
    };
    let len = match file.metadata().await {
        Ok(m) if m.is_file() && m.len() <= MAX_FILE => m.len(),
        _ => return respond(stream, Status::NotFound).await,
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {len}\r\n\
         Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        content_type(&file_path)
    );
    stream.write_all(head.as_bytes()).await?;
    if !head_only {
        // `take` guards against a file that grew since the length was sent.
        tokio::io::copy(&mut (&mut file).take(len), stream).await?;
    }
    stream.shutdown().await
}

/// Answers with `status` and a one-line body, then closes.
pub(crate) async fn respond(stream: &mut TcpStream, status: Status) -> io::Result<()> {
    stream.write_all(&status_response(status)).await?;
    stream.shutdown().await
}

/// A complete response for `status` (also written without waiting, see the connection caps).
pub(crate) fn status_response(status: Status) -> Vec<u8> {
    let body = status.line();
    let extra = if status == Status::UpgradeRequired {
        "Upgrade: websocket\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 {body}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         {extra}Connection: close\r\n\r\n{body}\n",
        body.len() + 1
    )
    .into_bytes()
}

/// A stream that first returns bytes already read from it (the request head), then reads the
/// inner stream; writes go straight through. It lets the WebSocket handshake re-read the head
/// the router peeked at.
#[derive(Debug)]
pub(crate) struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Rewind<S> {
    pub(crate) fn new(prefix: Bytes, inner: S) -> Rewind<S> {
        Rewind { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let chunk = self.prefix.split_to(n);
            buf.put_slice(&chunk);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route_of(head: &str) -> Result<Option<Route>, HeadError> {
        parse(head.as_bytes())
    }

    #[test]
    fn routes_websocket_static_and_refusals() {
        let ws = "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n";
        assert_eq!(route_of(ws).unwrap(), Some(Route::WebSocket));
        let plain = "GET /ws HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(
            route_of(plain).unwrap(),
            Some(Route::Refuse(Status::UpgradeRequired))
        );
        let get = "GET /app.js?v=2 HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(
            route_of(get).unwrap(),
            Some(Route::Static {
                path: "/app.js".into(),
                head_only: false
            })
        );
        let post = "POST / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(
            route_of(post).unwrap(),
            Some(Route::Refuse(Status::MethodNotAllowed))
        );
        assert!(route_of("GET / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
        assert!(matches!(
            route_of("GARBAGE\0\r\n\r\n"),
            Err(HeadError::Refuse(Status::BadRequest))
        ));
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut head = String::from("GET / HTTP/1.1\r\n");
        for i in 0..MAX_HEADERS + 1 {
            head.push_str(&format!("X-{i}: y\r\n"));
        }
        head.push_str("\r\n");
        assert!(matches!(
            route_of(&head),
            Err(HeadError::Refuse(Status::HeadTooLarge))
        ));
    }

    #[test]
    fn paths_cannot_leave_the_root() {
        let root = Path::new("/srv/www");
        assert_eq!(resolve(root, "/"), Some(root.join("index.html")));
        assert_eq!(resolve(root, "/a/b.wasm"), Some(root.join("a/b.wasm")));
        assert_eq!(resolve(root, "/sub/"), Some(root.join("sub/index.html")));
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
            assert_eq!(resolve(root, bad), None, "{bad}");
        }
        assert_eq!(resolve(root, &format!("/{}", "a".repeat(MAX_PATH))), None);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_route_or_refuse_without_panicking(head in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse(&head);
        }

        #[test]
        fn resolved_paths_stay_under_the_root(path in "[/a-z.%\\\\_-]{0,40}") {
            let root = Path::new("/srv/www");
            if let Some(p) = resolve(root, &path) {
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
}
