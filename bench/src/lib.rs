//! natter-bench: fan-out throughput, latency and memory of natter-server, through natter-bridge,
//! through its IRC listener (beside InspIRCd), and of a protocol-free relay baseline, measured
//! by one load generator.
//!
//! - [`load`]: the load generator (C clients in one room, closed or open loop, every delivery
//!   counted and checked);
//! - [`wire`]: what the generator sends and how it recognises a delivery, per target;
//! - [`stamp`]: the 64-byte payload that carries sender, sequence number and send time;
//! - [`baseline`]: the minimal length-prefixed relay server natter is compared with;
//! - [`idle`]: the idle workload (many connections, bytes per connection);
//! - [`procs`]: servers as pinned child processes, and what `/proc` says about them;
//! - [`report`]: medians, the table, JSON lines and the SVG plot;
//! - [`smoke`]: a seconds-long in-process run that asserts nothing was lost;
//! - [`tls`]: the certificates of TLS runs;
//! - [`handshakes`]: connections set up per second (TLS handshakes beside plain TCP);
//! - [`storm`]: N clients connecting at once into one room, time until all are in.
//! - [`under_attack`]: well-behaved clients' latency on a calm server and under the attack mix
//!   ([`attack`], run as a separate process) in one run; [`legit`] are those clients.
#![warn(missing_docs)]

pub mod attack;
pub mod baseline;
pub mod handshakes;
pub mod idle;
pub mod legit;
pub mod load;
pub mod procs;
pub mod report;
pub mod smoke;
pub mod stamp;
pub mod storm;
pub mod tls;
pub mod under_attack;
pub mod wire;

/// Which server a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// natter-server, binary protocol over TCP.
    Natter,
    /// natter-server, binary protocol over TLS (its `--tls-listen`).
    #[serde(rename = "natter-tls")]
    NatterTls,
    /// The protocol-free relay ([`baseline`]).
    Baseline,
    /// natter-server through natter-bridge, WebSocket clients.
    Bridge,
    /// natter-server's IRC listener, IRC clients (with echo-message).
    Irc,
    /// Debian's InspIRCd, the same IRC clients (with echo-message).
    Inspircd,
    /// natter-server with its store (SQLite in a fresh data directory), binary protocol.
    NatterStore,
    /// natter-server memory-only, every client registered and signed in to an account first.
    NatterAccounts,
    /// natter-server as [`Target::Natter`], with `--metrics-listen` on and `/metrics` scraped
    /// every second during the run: what operations cost the fan-out.
    NatterMetrics,
    /// natter-server with every feature on and no store (issue 22's "as features land"):
    /// memory-only, IRC and TLS listeners open, `--metrics-listen` on and scraped every second,
    /// every client registered and signed in to an account; the clients speak the binary
    /// protocol over plain TCP, as [`Target::Natter`]'s.
    NatterAll,
    /// One room spread over two natter-server nodes of a cluster (`--cluster`) and the
    /// nats-server with JetStream they share; clients alternate between the nodes, and the
    /// server CPU is the nodes' and nats-server's together (issue 23's cost of clustering).
    #[serde(rename = "natter-cluster2")]
    NatterCluster,
}

impl Target {
    /// Every target, in the order `--targets`' errors list them (and the plot draws them).
    pub const ALL: [Target; 11] = [
        Target::Natter,
        Target::NatterTls,
        Target::Baseline,
        Target::Bridge,
        Target::Irc,
        Target::Inspircd,
        Target::NatterStore,
        Target::NatterAccounts,
        Target::NatterMetrics,
        Target::NatterAll,
        Target::NatterCluster,
    ];

    /// The name used in tables, JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Target::Natter => "natter",
            Target::NatterTls => "natter-tls",
            Target::Baseline => "baseline",
            Target::Bridge => "bridge",
            Target::Irc => "irc",
            Target::Inspircd => "inspircd",
            Target::NatterStore => "natter-store",
            Target::NatterAccounts => "natter-accounts",
            Target::NatterMetrics => "natter-metrics",
            Target::NatterAll => "natter-all",
            Target::NatterCluster => "natter-cluster2",
        }
    }

    /// Whether it is natter-server spoken to in frames over TCP (with or without a feature on).
    pub fn is_natter_tcp(self) -> bool {
        matches!(
            self,
            Target::Natter
                | Target::NatterStore
                | Target::NatterAccounts
                | Target::NatterMetrics
                | Target::NatterAll
                | Target::NatterCluster
        )
    }

    /// Whether its clients register (and so sign in to) an account before the run.
    pub fn signs_in(self) -> bool {
        matches!(self, Target::NatterAccounts | Target::NatterAll)
    }

    /// Whether natter-server runs with `--metrics-listen` on, scraped every second.
    pub fn scraped(self) -> bool {
        matches!(self, Target::NatterMetrics | Target::NatterAll)
    }

    /// What its clients speak: natter-tls's are natter's clients inside TLS.
    pub fn wire(self) -> Target {
        match self {
            Target::NatterTls => Target::Natter,
            t => t,
        }
    }

    /// Whether its clients speak IRC lines (not natter frames).
    pub fn speaks_irc(self) -> bool {
        matches!(self, Target::Irc | Target::Inspircd)
    }
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Target, String> {
        Target::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Target::ALL.iter().map(|t| t.name()).collect();
                format!("unknown target {s:?} ({})", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    /// Every target's name parses back to it, and a wrong one is answered with the names, on
    /// one line (it once carried a stray backslash and a line break into `--targets`' error).
    #[test]
    fn target_names_round_trip_and_a_wrong_one_lists_them() {
        let e = "nope".parse::<Target>().unwrap_err();
        assert!(!e.contains('\\') && !e.contains('\n'), "{e}");
        for t in Target::ALL {
            assert_eq!(t.name().parse::<Target>(), Ok(t));
            assert!(e.contains(t.name()), "{e} lacks {}", t.name());
        }
    }
}
