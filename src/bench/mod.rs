//! Benchmark commands: each measures the machine itself in the same run, so that figures
//! are read as ratios to what the hardware gives.

pub mod contention;
pub mod crash;
pub mod ingest;
pub mod log;
pub mod query;

/// The p-th percentile (0..=100) of sorted samples, nearest-rank (0 when there are none).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}
