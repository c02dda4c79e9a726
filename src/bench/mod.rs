//! Benchmark commands: each measures the machine itself in the same run, so that figures
//! are read as ratios to what the hardware gives.

pub(crate) mod contention;
pub(crate) mod crash;
mod http1;
pub mod ingest;
pub mod log;
pub(crate) mod query;
pub(crate) mod replication;
mod server_cpu;

/// Latency samples, in whatever unit the caller measures (ms or µs), as an HDR histogram:
/// percentiles to three significant digits, in memory that does not grow with the samples.
pub struct Latencies(hdrhistogram::Histogram<u64>);

/// Samples are kept in thousandths of their unit.
const LATENCY_SCALE: f64 = 1000.0;

impl Default for Latencies {
    fn default() -> Self {
        Latencies(hdrhistogram::Histogram::new(3).expect("three significant digits"))
    }
}

impl Latencies {
    pub fn record(&mut self, value: f64) {
        let scaled = (value.max(0.0) * LATENCY_SCALE).round() as u64;
        // The histogram grows to take it, up to i64::MAX / 2; past that, the most it holds.
        if self.0.record(scaled).is_err() {
            self.0.saturating_record(scaled);
        }
    }

    /// Takes in another's samples.
    pub fn add(&mut self, other: &Latencies) {
        // Both grow as needed, so adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The p-th percentile (0..=100), nearest-rank (0 when there are no samples).
    pub fn percentile(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let value = self.0.value_at_quantile(p / 100.0);
        self.0.median_equivalent(value) as f64 / LATENCY_SCALE
    }

    pub fn max(&self) -> f64 {
        self.0.median_equivalent(self.0.max()) as f64 / LATENCY_SCALE
    }
}

/// The median of a few figures (one per round), nearest-rank: the lower middle of an even
/// count (0 when there are none).
pub fn median(mut figures: Vec<f64>) -> f64 {
    figures.sort_by(f64::total_cmp);
    figures
        .get(figures.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(samples: &[f64]) -> Latencies {
        let mut latencies = Latencies::default();
        for &s in samples {
            latencies.record(s);
        }
        latencies
    }

    /// Within the histogram's three significant digits.
    fn near(got: f64, want: f64) -> bool {
        (got - want).abs() <= want * 1e-3
    }

    #[test]
    fn latency_percentiles_are_nearest_rank() {
        let s = of(&(1..=100).map(f64::from).collect::<Vec<_>>());
        assert!(near(s.percentile(50.0), 50.0), "{}", s.percentile(50.0));
        assert!(near(s.percentile(99.0), 99.0), "{}", s.percentile(99.0));
        assert!(near(s.percentile(100.0), 100.0));
        assert!(near(s.max(), 100.0));
        assert!(near(of(&[3.0]).percentile(99.0), 3.0));
        assert!(near(of(&[1.0, 2.0, 3.0]).percentile(50.0), 2.0));
        assert_eq!(of(&[]).percentile(50.0), 0.0);
        let mut both = of(&[1.0]);
        both.add(&of(&[2.0, 3.0]));
        assert_eq!(both.len(), 3);
        assert!(near(both.percentile(50.0), 2.0));
    }

    #[test]
    fn the_median_of_rounds_is_the_lower_middle() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.0);
        assert_eq!(median(Vec::new()), 0.0);
    }
}
