//! A fixed-bucket latency histogram recorded with atomic increments only.
//!
//! Owns the `/oauth2/auth` latency distribution. prometheus-client's own `Histogram` takes a
//! lock on every observation; this one adds to one bucket and to the sum with two relaxed
//! atomic additions, so recording never waits and never allocates. A scrape reads the atomics
//! one by one: a scrape racing an observation may see its bucket without its sum, which
//! Prometheus tolerates (the next scrape is consistent again). Never resizes its buckets.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// Upper bounds of the `/oauth2/auth` latency buckets, in nanoseconds: a cookie check takes
/// tens of microseconds, a Redis read a millisecond or more.
pub const AUTH_BUCKETS_NS: &[u64] = &[
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    100_000_000,
    1_000_000_000,
];

/// A histogram with fixed upper bounds; clones share the same counts.
#[derive(Clone)]
pub struct AtomicHistogram(Arc<Inner>);

struct Inner {
    /// Upper bounds in nanoseconds, ascending.
    bounds_ns: &'static [u64],
    /// One count per bound, then the overflow (`+Inf`) bucket. Not cumulative.
    buckets: Box<[AtomicU64]>,
    /// Sum of every observation, in nanoseconds (585 years before it wraps).
    sum_ns: AtomicU64,
}

impl AtomicHistogram {
    /// A histogram with these upper bounds (nanoseconds, strictly ascending).
    pub fn new(bounds_ns: &'static [u64]) -> Self {
        debug_assert!(bounds_ns.windows(2).all(|w| w[0] < w[1]));
        let buckets = (0..=bounds_ns.len()).map(|_| AtomicU64::new(0)).collect();
        Self(Arc::new(Inner {
            bounds_ns,
            buckets,
            sum_ns: AtomicU64::new(0),
        }))
    }

    /// Records one observation: two atomic additions, no lock, no allocation.
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = self
            .0
            .bounds_ns
            .iter()
            .position(|&b| ns <= b)
            .unwrap_or(self.0.bounds_ns.len());
        self.0.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.0.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// `(upper bound in seconds, count)` per bucket, not cumulative, ending with `+Inf`.
    fn snapshot(&self) -> Vec<(f64, u64)> {
        let bounds = self.0.bounds_ns.iter().map(|&b| b as f64 / 1e9);
        bounds
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.0.buckets.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect()
    }

    /// Sum of the observations, in seconds.
    fn sum_secs(&self) -> f64 {
        self.0.sum_ns.load(Ordering::Relaxed) as f64 / 1e9
    }
}

impl fmt::Debug for AtomicHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtomicHistogram")
            .field("buckets", &self.snapshot())
            .finish()
    }
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        let buckets = self.snapshot();
        let count = buckets.iter().map(|(_, n)| n).sum();
        encoder.encode_histogram::<NoLabelSet>(self.sum_secs(), count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::prometheus_text::encode;
    use prometheus_client::registry::Registry;

    const BOUNDS: &[u64] = &[1_000, 10_000];

    fn text(h: &AtomicHistogram) -> String {
        let mut r = Registry::default();
        r.register("t", "test", h.clone());
        let mut out = String::new();
        encode(&mut out, &r).expect("encodes");
        out
    }

    #[test]
    fn each_observation_lands_in_the_first_bucket_that_holds_it() {
        let h = AtomicHistogram::new(BOUNDS);
        for ns in [0, 1_000, 1_001, 10_000, 10_001, u64::MAX] {
            h.observe(Duration::from_nanos(ns));
        }
        let counts: Vec<u64> = h.snapshot().iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, [2, 2, 2]); // ≤1µs, ≤10µs, +Inf
    }

    #[test]
    fn durations_beyond_u64_nanoseconds_count_as_overflow() {
        let h = AtomicHistogram::new(BOUNDS);
        h.observe(Duration::from_secs(u64::MAX));
        assert_eq!(h.snapshot()[2].1, 1);
    }

    #[test]
    fn encodes_cumulative_buckets_sum_and_count_in_seconds() {
        let h = AtomicHistogram::new(BOUNDS);
        h.observe(Duration::from_nanos(500));
        h.observe(Duration::from_nanos(5_000));
        h.observe(Duration::from_nanos(5_000));
        h.observe(Duration::from_millis(1));
        let out = text(&h);
        for line in [
            "# TYPE t histogram",
            "t_bucket{le=\"1e-06\"} 1",
            "t_bucket{le=\"1e-05\"} 3",
            "t_bucket{le=\"+Inf\"} 4",
            "t_sum 0.0010105",
            "t_count 4",
        ] {
            assert!(
                out.lines().any(|l| l == line),
                "{line:?} missing in:\n{out}"
            );
        }
    }

    #[test]
    fn clones_share_their_counts() {
        let h = AtomicHistogram::new(BOUNDS);
        h.clone().observe(Duration::from_nanos(1));
        assert_eq!(h.snapshot()[0].1, 1);
    }

    #[test]
    fn concurrent_observations_are_all_counted() {
        let h = AtomicHistogram::new(AUTH_BUCKETS_NS);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let h = h.clone();
                s.spawn(move || {
                    for i in 0..10_000u64 {
                        h.observe(Duration::from_micros((i * t) % 2_000));
                    }
                });
            }
        });
        let total: u64 = h.snapshot().iter().map(|(_, n)| n).sum();
        assert_eq!(total, 40_000);
    }
}
