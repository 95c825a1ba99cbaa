//! What natter-bridge counts, and what its `/readyz` answers (see `--metrics-listen`).
//!
//! Every metric is an atomic that the relay holds a handle to from the start: recording costs a
//! relaxed `fetch_add` or two per relayed batch, no lock and no label lookup. Labels are a small
//! fixed set (directions, reasons), never an address.

use crate::relay::End;
use natter_ops::AtomicHistogram;
use natter_ops::endpoint::{ReadyCheck, ReadyFuture};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::timeout;

/// Why a connection or a WebSocket upgrade was refused: the `reason` label of
/// `natter_bridge_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The Origin is not allowed (403).
    Origin,
    /// The bridge's own origin under an unknown Host: the DNS-rebinding guard (403).
    Host,
    /// `/ws` with an upgrade that is not a proper WebSocket handshake (400).
    Handshake,
    /// A request head that hyper could not parse, or too large (400, 431).
    BadRequest,
    /// The request head, or the whole handshake, did not finish within the handshake budget.
    Timeout,
    /// The bridge's connection cap was reached (503, before reading anything).
    Capacity,
    /// The connection cap for the peer's address was reached (503, before reading anything).
    AddressCapacity,
    /// The TLS handshake failed (not TLS, no common version or cipher, a client that does not
    /// trust the certificate and says so): closed. (One that runs out of time is `Timeout`.)
    TlsHandshake,
    /// The peer's address started too many TLS handshakes in the window: closed before the
    /// handshake.
    HandshakeRate,
}

impl Refused {
    const ALL: [Refused; 9] = [
        Refused::Origin,
        Refused::Host,
        Refused::Handshake,
        Refused::BadRequest,
        Refused::Timeout,
        Refused::Capacity,
        Refused::AddressCapacity,
        Refused::TlsHandshake,
        Refused::HandshakeRate,
    ];

    fn label(self) -> &'static str {
        match self {
            Refused::Origin => "origin",
            Refused::Host => "host",
            Refused::Handshake => "handshake",
            Refused::BadRequest => "bad_request",
            Refused::Timeout => "timeout",
            Refused::Capacity => "capacity",
            Refused::AddressCapacity => "address_capacity",
            Refused::TlsHandshake => "tls_handshake",
            Refused::HandshakeRate => "handshake_rate",
        }
    }
}

type Label = [(&'static str, &'static str); 1];

fn latency_histogram() -> AtomicHistogram {
    AtomicHistogram::new(&natter_ops::histogram::TIME_BUCKETS)
}

/// One relay direction's handles.
#[derive(Debug, Clone)]
pub(crate) struct Direction {
    /// Bytes written to the other side (natter frames with their length prefixes; WebSocket
    /// framing not counted).
    pub(crate) bytes: Counter,
    /// From the moment the bridge has a batch in hand (read from one side) to the moment the
    /// other side's socket took it.
    pub(crate) latency: AtomicHistogram,
}

/// The bridge's metrics, registered once; the relay and the accept loop hold these handles.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Arc<Registry>,
    /// Connections accepted (page, WebSocket or refused).
    pub(crate) connections: Counter,
    /// WebSockets being relayed now.
    pub(crate) sessions: Gauge,
    /// Browser to server.
    pub(crate) to_server: Direction,
    /// Server to browser.
    pub(crate) to_browser: Direction,
    refused: [Counter; Refused::ALL.len()],
    ended: [Counter; End::ALL.len()],
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut root = Registry::default();
        let r = root.sub_registry_with_prefix("natter_bridge");

        let connections = Counter::default();
        r.register(
            "connections",
            "Connections accepted (page requests, WebSockets and refused ones)",
            connections.clone(),
        );
        let sessions = Gauge::default();
        r.register(
            "websocket_sessions",
            "WebSockets being relayed to natter-server now",
            sessions.clone(),
        );

        let refused_family = Family::<Label, Counter>::default();
        r.register(
            "refused",
            "Connections and WebSocket upgrades refused, by reason",
            refused_family.clone(),
        );
        let refused = Refused::ALL.map(|why| {
            refused_family
                .get_or_create(&[("reason", why.label())])
                .clone()
        });

        let ended_family = Family::<Label, Counter>::default();
        r.register(
            "websocket_sessions_ended",
            "Relayed WebSockets that ended, by how",
            ended_family.clone(),
        );
        let ended = End::ALL.map(|end| {
            ended_family
                .get_or_create(&[("reason", end.label())])
                .clone()
        });

        let bytes = Family::<Label, Counter>::default();
        r.register_with_unit(
            "relayed",
            "Bytes relayed, by direction (natter frames with their length prefixes)",
            Unit::Bytes,
            bytes.clone(),
        );
        let latency =
            Family::<Label, AtomicHistogram, fn() -> AtomicHistogram>::new_with_constructor(
                latency_histogram,
            );
        r.register_with_unit(
            "relay_latency",
            "Time the bridge holds a batch: from reading it on one side to the other side's socket taking it",
            Unit::Seconds,
            latency.clone(),
        );
        let direction = |name: &'static str| Direction {
            bytes: bytes.get_or_create(&[("direction", name)]).clone(),
            latency: latency.get_or_create(&[("direction", name)]).clone(),
        };
        Metrics {
            connections,
            sessions,
            to_server: direction("to_server"),
            to_browser: direction("to_browser"),
            refused,
            ended,
            registry: Arc::new(root),
        }
    }

    /// The registry to serve.
    pub(crate) fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry)
    }

    pub(crate) fn refused(&self, why: Refused) {
        self.refused[why as usize].inc();
    }

    pub(crate) fn ended(&self, end: End) {
        self.ended[end as usize].inc();
    }
}

/// How long a verdict on the server (a probe, or a relayed connection's connect) stands before
/// `/readyz` probes again. A busy bridge connects all the time and never needs to probe.
const VERDICT_TTL: Duration = Duration::from_secs(5);

/// Time for a readiness probe to connect to natter-server.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What the bridge last learnt about reaching natter-server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A connection (and its TLS handshake, over TLS) worked.
    Reached,
    /// No connection: nothing listens, or it timed out.
    Unavailable,
    /// Over TLS, the server's certificate did not verify: every browser's relay fails.
    Untrusted,
    /// The server refused the bridge's secret (`ErrorKind::BridgeSecret`): every browser's
    /// relay is closed at once.
    SecretRefused,
}

impl Verdict {
    fn code(self) -> u64 {
        match self {
            Verdict::Reached => 1,
            Verdict::Unavailable => 2,
            Verdict::Untrusted => 3,
            // Two bits hold the code; 0 is free, since the time beside it is never 0.
            Verdict::SecretRefused => 0,
        }
    }

    fn of(code: u64) -> Verdict {
        match code {
            0 => Verdict::SecretRefused,
            1 => Verdict::Reached,
            3 => Verdict::Untrusted,
            _ => Verdict::Unavailable,
        }
    }
}

/// The last thing the bridge learnt about reaching natter-server, for `/readyz`.
#[derive(Debug)]
pub(crate) struct ServerHealth {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last verdict, shifted left twice, with the
    /// [`Verdict`]'s code in the low bits; 0 when there has been none.
    last: AtomicU64,
    /// One probe at a time.
    probing: tokio::sync::Mutex<()>,
}

impl ServerHealth {
    pub(crate) fn new() -> ServerHealth {
        ServerHealth {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
            probing: tokio::sync::Mutex::new(()),
        }
    }

    /// Records what a connection to the server just found.
    pub(crate) fn record(&self, verdict: Verdict) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX >> 3);
        // `+ 1` so that a verdict in the first millisecond is not mistaken for none.
        self.last
            .store(((ms + 1) << 2) | verdict.code(), Ordering::Relaxed);
    }

    /// The last verdict, if it is younger than [`VERDICT_TTL`].
    fn recent(&self) -> Option<Verdict> {
        let v = self.last.load(Ordering::Relaxed);
        if v == 0 {
            return None;
        }
        let at = Duration::from_millis((v >> 2) - 1);
        (self.epoch.elapsed().saturating_sub(at) < VERDICT_TTL).then_some(Verdict::of(v & 3))
    }

    /// Ready: the bridge is not stopping and natter-server accepts connections (a recent
    /// verdict, or a probe: a TCP connect, and over TLS (`tls`) the handshake that verifies the
    /// server's certificate, closed at once without a byte of natter's protocol sent) at one
    /// of its addresses (a cluster's nodes). A TCP connect alone would call a server whose
    /// certificate the bridge does not trust ready, while every browser is turned away.
    pub(crate) fn check(
        self: &Arc<Self>,
        servers: Vec<SocketAddr>,
        tls: Option<crate::ServerConnector>,
        stop: watch::Receiver<bool>,
    ) -> ReadyCheck {
        let health = Arc::clone(self);
        let servers = Arc::new(servers);
        let tls = Arc::new(tls);
        Arc::new(move || -> ReadyFuture {
            let health = Arc::clone(&health);
            let servers = Arc::clone(&servers);
            let tls = Arc::clone(&tls);
            let stopping = *stop.borrow();
            Box::pin(async move {
                if stopping {
                    return Err("natter-bridge is shutting down".into());
                }
                let verdict = match health.recent() {
                    Some(v) => v,
                    None => {
                        let _one = health.probing.lock().await;
                        match health.recent() {
                            Some(v) => v,
                            None => {
                                let mut verdict = Verdict::Unavailable;
                                for server in servers.iter() {
                                    match probe(*server, tls.as_ref().as_ref()).await {
                                        Verdict::Reached => {
                                            verdict = Verdict::Reached;
                                            break;
                                        }
                                        Verdict::Untrusted => verdict = Verdict::Untrusted,
                                        // A probe sends nothing: it never learns this.
                                        Verdict::Unavailable | Verdict::SecretRefused => {}
                                    }
                                }
                                health.record(verdict);
                                verdict
                            }
                        }
                    }
                };
                let at = || {
                    servers
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                match verdict {
                    Verdict::Reached => Ok(()),
                    Verdict::Unavailable => Err(format!(
                        "natter-server at {} does not accept connections",
                        at()
                    )),
                    Verdict::Untrusted => Err(format!(
                        "natter-server at {}: its TLS certificate is not trusted (--server-ca, \
                         --server-name)",
                        at()
                    )),
                    Verdict::SecretRefused => Err(format!(
                        "natter-server at {} refuses this bridge's secret (NATTER_BRIDGE_SECRET \
                         or --server-secret-file must be the server's)",
                        at()
                    )),
                }
            })
        })
    }
}

/// One probe of `server`: a TCP connect, and over TLS the handshake, each within
/// [`PROBE_TIMEOUT`]; then closed.
async fn probe(server: SocketAddr, tls: Option<&crate::ServerConnector>) -> Verdict {
    let Ok(Ok(tcp)) = timeout(PROBE_TIMEOUT, TcpStream::connect(server)).await else {
        return Verdict::Unavailable;
    };
    let Some(tls) = tls else {
        return Verdict::Reached;
    };
    match timeout(PROBE_TIMEOUT, tls.connector.connect(tls.name.clone(), tcp)).await {
        Ok(Ok(_)) => Verdict::Reached,
        Ok(Err(e)) if natter_tls::is_certificate_error(&e) => Verdict::Untrusted,
        _ => Verdict::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_set_exists_from_the_start() {
        let m = Metrics::new();
        m.refused(Refused::Host);
        m.ended(End::ServerUnavailable);
        m.to_browser.bytes.inc_by(10);
        m.to_server.latency.observe(Duration::from_micros(30));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &m.registry).unwrap();
        for why in Refused::ALL {
            let want = format!("natter_bridge_refused_total{{reason=\"{}\"}}", why.label());
            let n = if why == Refused::Host { 1 } else { 0 };
            assert!(text.contains(&format!("{want} {n}\n")), "{want} in\n{text}");
        }
        for end in End::ALL {
            let want = format!(
                "natter_bridge_websocket_sessions_ended_total{{reason=\"{}\"}}",
                end.label()
            );
            assert!(text.contains(&want), "{want} in\n{text}");
        }
        assert!(text.contains("natter_bridge_relayed_bytes_total{direction=\"to_browser\"} 10\n"));
        assert!(
            text.contains(
                "natter_bridge_relay_latency_seconds_bucket{le=\"0.00005\",direction=\"to_server\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "natter_bridge_relay_latency_seconds_count{direction=\"to_browser\"} 0\n"
            )
        );
    }

    #[tokio::test]
    async fn readiness_follows_the_server_and_shutdown() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = watch::channel(false);
        let health = Arc::new(ServerHealth::new());
        let check = health.check(vec![addr], None, stop_rx);
        assert_eq!(check().await, Ok(()), "a listening server");
        drop(listener);
        // The verdict stands for a while...
        assert_eq!(check().await, Ok(()));
        // ...a failed relay connect replaces it at once...
        health.record(Verdict::Unavailable);
        assert!(check().await.unwrap_err().contains("does not accept"));
        health.record(Verdict::Reached);
        assert_eq!(check().await, Ok(()));
        let _ = stop_tx.send(true);
        assert!(check().await.unwrap_err().contains("shutting down"));

        // With no verdict, a probe of a closed port says no.
        let health = Arc::new(ServerHealth::new());
        let (_stop_tx, stop_rx) = watch::channel(false);
        assert!(
            health.check(vec![addr], None, stop_rx.clone())()
                .await
                .is_err()
        );
        // With several addresses (a cluster's nodes), one that listens is enough.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = listener.local_addr().unwrap();
        let health = Arc::new(ServerHealth::new());
        assert_eq!(health.check(vec![addr, up], None, stop_rx)().await, Ok(()));
    }
}
