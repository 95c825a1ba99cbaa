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

/// The last thing the bridge learnt about reaching natter-server, for `/readyz`.
#[derive(Debug)]
pub(crate) struct ServerHealth {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last verdict, shifted left once, with the low bit set
    /// when the server was reached; 0 when there has been none.
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

    /// Records whether a connection to the server just succeeded.
    pub(crate) fn record(&self, reached: bool) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX >> 2);
        // `+ 1` so that a verdict in the first millisecond is not mistaken for none.
        self.last
            .store(((ms + 1) << 1) | u64::from(reached), Ordering::Relaxed);
    }

    /// The last verdict, if it is younger than [`VERDICT_TTL`].
    fn recent(&self) -> Option<bool> {
        let v = self.last.load(Ordering::Relaxed);
        if v == 0 {
            return None;
        }
        let at = Duration::from_millis((v >> 1) - 1);
        (self.epoch.elapsed().saturating_sub(at) < VERDICT_TTL).then_some(v & 1 == 1)
    }

    /// Ready: the bridge is not stopping and natter-server accepts connections (a recent
    /// verdict, or a probe: a TCP connect that is closed at once, without a byte sent) at one
    /// of its addresses (a cluster's nodes).
    pub(crate) fn check(
        self: &Arc<Self>,
        servers: Vec<SocketAddr>,
        stop: watch::Receiver<bool>,
    ) -> ReadyCheck {
        let health = Arc::clone(self);
        let servers = Arc::new(servers);
        Arc::new(move || -> ReadyFuture {
            let health = Arc::clone(&health);
            let servers = Arc::clone(&servers);
            let stopping = *stop.borrow();
            Box::pin(async move {
                if stopping {
                    return Err("natter-bridge is shutting down".into());
                }
                let reached = match health.recent() {
                    Some(v) => v,
                    None => {
                        let _one = health.probing.lock().await;
                        match health.recent() {
                            Some(v) => v,
                            None => {
                                let mut ok = false;
                                for server in servers.iter() {
                                    ok = matches!(
                                        timeout(PROBE_TIMEOUT, TcpStream::connect(server)).await,
                                        Ok(Ok(_))
                                    );
                                    if ok {
                                        break;
                                    }
                                }
                                health.record(ok);
                                ok
                            }
                        }
                    }
                };
                if reached {
                    Ok(())
                } else {
                    let at: Vec<String> = servers.iter().map(ToString::to_string).collect();
                    Err(format!(
                        "natter-server at {} does not accept connections",
                        at.join(", ")
                    ))
                }
            })
        })
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
        let check = health.check(vec![addr], stop_rx);
        assert_eq!(check().await, Ok(()), "a listening server");
        drop(listener);
        // The verdict stands for a while...
        assert_eq!(check().await, Ok(()));
        // ...a failed relay connect replaces it at once...
        health.record(false);
        assert!(check().await.unwrap_err().contains("does not accept"));
        health.record(true);
        assert_eq!(check().await, Ok(()));
        let _ = stop_tx.send(true);
        assert!(check().await.unwrap_err().contains("shutting down"));

        // With no verdict, a probe of a closed port says no.
        let health = Arc::new(ServerHealth::new());
        let (_stop_tx, stop_rx) = watch::channel(false);
        assert!(health.check(vec![addr], stop_rx.clone())().await.is_err());
        // With several addresses (a cluster's nodes), one that listens is enough.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = listener.local_addr().unwrap();
        let health = Arc::new(ServerHealth::new());
        assert_eq!(health.check(vec![addr, up], stop_rx)().await, Ok(()));
    }
}
