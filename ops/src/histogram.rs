//! A histogram of durations kept in atomics: recording one is a bucket search over a few bounds
//! and two relaxed `fetch_add`s, with no lock, so it can sit on a relay's per-batch path.
//! prometheus-client's own `Histogram` takes a mutex per observation.
//!
//! A scrape reads the buckets one by one while observations go on, so the count it reports may be
//! one or two ahead of the sum; Prometheus' rate functions do not mind.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bucket bounds for what takes from microseconds to a second (a relay, a hub batch, a store
/// commit): 10 µs to 1 s in 1-2.5-5 steps.
pub const TIME_BUCKETS: [Duration; 14] = [
    Duration::from_micros(10),
    Duration::from_micros(25),
    Duration::from_micros(50),
    Duration::from_micros(100),
    Duration::from_micros(250),
    Duration::from_micros(500),
    Duration::from_millis(1),
    Duration::from_micros(2500),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_secs(1),
];

/// A duration histogram with fixed bucket bounds; clones share the same counts.
#[derive(Debug, Clone)]
pub struct AtomicHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Upper bounds in nanoseconds, ascending.
    bounds_ns: Box<[u64]>,
    /// One count per bound, then one for everything above the last (`+Inf`).
    counts: Box<[AtomicU64]>,
    /// Sum of all observations, nanoseconds (wraps after 584 years of total latency).
    sum_ns: AtomicU64,
}

impl AtomicHistogram {
    /// A histogram with these upper bounds (sorted and deduplicated here; `+Inf` is implied).
    pub fn new(bounds: &[Duration]) -> AtomicHistogram {
        let mut bounds_ns: Vec<u64> = bounds.iter().map(|d| nanos(*d)).collect();
        bounds_ns.sort_unstable();
        bounds_ns.dedup();
        let counts = (0..=bounds_ns.len()).map(|_| AtomicU64::new(0)).collect();
        AtomicHistogram {
            inner: Arc::new(Inner {
                bounds_ns: bounds_ns.into(),
                counts,
                sum_ns: AtomicU64::new(0),
            }),
        }
    }

    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let ns = nanos(d);
        let inner = &*self.inner;
        let i = inner
            .bounds_ns
            .iter()
            .position(|&b| ns <= b)
            .unwrap_or(inner.bounds_ns.len());
        inner.counts[i].fetch_add(1, Ordering::Relaxed);
        inner.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.inner
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Sum of the observations so far.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.inner.sum_ns.load(Ordering::Relaxed))
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let inner = &*self.inner;
        // Per-bucket counts; the encoder makes them cumulative.
        let buckets: Vec<(f64, u64)> = inner
            .bounds_ns
            .iter()
            .map(|&b| b as f64 / 1e9)
            .chain(std::iter::once(f64::INFINITY))
            .zip(inner.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = inner.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn observations_land_in_their_buckets_and_encode_cumulatively() {
        let h = AtomicHistogram::new(&[
            Duration::from_millis(1),
            Duration::from_micros(100),
            Duration::from_millis(1),
        ]);
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_micros(100)); // on a bound: that bucket
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_secs(2));
        assert_eq!(h.count(), 4);
        assert_eq!(h.sum(), Duration::from_micros(2_000_650));

        let mut registry = Registry::default();
        registry.register("relay_latency_seconds", "test", h.clone());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "relay_latency_seconds_count 4",
            "relay_latency_seconds_bucket{le=\"0.0001\"} 2",
            "relay_latency_seconds_bucket{le=\"0.001\"} 3",
            "relay_latency_seconds_bucket{le=\"+Inf\"} 4",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
        let sum: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("relay_latency_seconds_sum "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 2.00065).abs() < 1e-9, "{sum}");
        // The duplicated bound became one bucket.
        assert_eq!(text.matches("le=\"0.001\"").count(), 1, "{text}");
    }

    #[test]
    fn clones_share_counts_across_threads() {
        let h = AtomicHistogram::new(&[Duration::from_millis(1)]);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        h.observe(Duration::from_micros(10));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(h.count(), 4000);
        assert_eq!(h.sum(), Duration::from_millis(40));
    }
}
