//! [`Latency`]: an HDR histogram of request latencies, in microseconds.
//!
//! A thin wrapper over [`hdrhistogram::Histogram<u64>`] with 3 significant
//! digits (every recorded value is kept to within 0.1%), auto-resizing so
//! any latency from 0 µs to hours can be recorded and two histograms can
//! always be merged. It starts small and grows with the largest value seen:
//! about 64 KiB once it has held a 100 ms latency.
//!
//! The load generator keeps one per OS thread it drives (all the green
//! threads of that thread record into it) and merges them at the end.

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Significant decimal digits kept per recorded value.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// Latencies of completed requests, in microseconds (see the module docs).
///
/// ```
/// use std::time::Duration;
/// use greenloop::lab::Latency;
///
/// let mut a = Latency::new();
/// let mut b = Latency::new();
/// for ms in 1..=50 { a.record(Duration::from_millis(ms)); }
/// for ms in 51..=100 { b.record(Duration::from_millis(ms)); }
/// a.merge(&b);
/// assert_eq!(a.count(), 100);
/// let p50 = a.percentile(50.0).as_secs_f64() * 1e3;
/// assert!((p50 - 50.0).abs() < 0.1, "{p50}");
/// ```
#[derive(Clone)]
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl fmt::Debug for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Latency")
            .field("count", &self.count())
            .field("p50", &self.percentile(50.0))
            .field("p99", &self.percentile(99.0))
            .field("max", &self.max())
            .finish()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Latency {
        // Only an out-of-range significant-digit count (> 5) is rejected.
        let hist = Histogram::new(SIGNIFICANT_DIGITS).expect("3 significant digits are valid");
        Latency { hist }
    }

    /// Records one latency, rounded down to whole microseconds.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        // Auto-resizing: only a value the histogram cannot grow to (beyond
        // ~2^63 µs) fails, and is clamped to the largest trackable one.
        // (`saturating_record` alone would clamp instead of growing.)
        if self.hist.record(micros).is_err() {
            self.hist.saturating_record(micros);
        }
    }

    /// Adds every value recorded in `other`.
    pub fn merge(&mut self, other: &Latency) {
        // Both histograms auto-resize, so `add` cannot run out of range.
        self.hist.add(&other.hist).expect("auto-resizing histograms always merge");
    }

    /// How many latencies were recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// The latency at `percentile` (0.0 to 100.0): the smallest recorded
    /// value that this share of all values does not exceed, to within the
    /// histogram's precision. Zero when empty.
    pub fn percentile(&self, percentile: f64) -> Duration {
        if self.hist.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_micros(self.hist.value_at_percentile(percentile.clamp(0.0, 100.0)))
    }

    /// The largest recorded latency (to within the histogram's precision),
    /// zero when empty.
    pub fn max(&self) -> Duration {
        if self.hist.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_micros(self.hist.max())
    }

    /// The mean latency, zero when empty.
    pub fn mean(&self) -> Duration {
        if self.hist.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(self.hist.mean() / 1e6)
    }

    /// The underlying histogram, for percentiles or exports not offered here.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1e3
    }

    #[test]
    fn empty_is_zero() {
        let l = Latency::new();
        assert!(l.is_empty());
        assert_eq!(l.percentile(50.0), Duration::ZERO);
        assert_eq!(l.max(), Duration::ZERO);
        assert_eq!(l.mean(), Duration::ZERO);
    }

    #[test]
    fn percentiles_of_a_uniform_range() {
        let mut l = Latency::new();
        for ms in 1..=1000 {
            l.record(Duration::from_millis(ms));
        }
        assert_eq!(l.count(), 1000);
        for (p, want) in [(50.0, 500.0), (90.0, 900.0), (99.0, 990.0), (100.0, 1000.0)] {
            let got = ms(l.percentile(p));
            // 3 significant digits: within 0.1% (plus the bucket's width).
            assert!((got - want).abs() <= want * 0.002, "p{p}: {got} ms, want {want} ms");
        }
        assert!((ms(l.max()) - 1000.0).abs() <= 1.0);
        assert!((ms(l.mean()) - 500.5).abs() <= 1.0);
    }

    #[test]
    fn merging_equals_recording_everything_in_one() {
        let mut parts: Vec<Latency> = (0..4).map(|_| Latency::new()).collect();
        let mut whole = Latency::new();
        for i in 0..4000u64 {
            // Spread values over 4 orders of magnitude, unevenly per part.
            let d = Duration::from_micros(1 + i * i % 100_000);
            parts[(i % 4) as usize].record(d);
            whole.record(d);
        }
        let mut merged = Latency::new();
        for part in &parts {
            merged.merge(part);
        }
        assert_eq!(merged.count(), whole.count());
        for p in [0.0, 10.0, 50.0, 90.0, 99.0, 99.9, 100.0] {
            assert_eq!(merged.percentile(p), whole.percentile(p), "p{p}");
        }
        assert_eq!(merged.max(), whole.max());
    }

    #[test]
    fn merging_a_histogram_with_larger_values_resizes() {
        let mut small = Latency::new();
        small.record(Duration::from_micros(3));
        let mut big = Latency::new();
        big.record(Duration::from_secs(3600));
        small.merge(&big);
        assert_eq!(small.count(), 2);
        assert!((small.max().as_secs_f64() - 3600.0).abs() < 3600.0 * 0.001);
        assert_eq!(small.percentile(50.0), Duration::from_micros(3));
    }

    #[test]
    fn huge_values_saturate_instead_of_failing() {
        let mut l = Latency::new();
        l.record(Duration::MAX);
        assert_eq!(l.count(), 1);
    }
}
