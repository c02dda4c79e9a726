//! Benchmark commands: each measures the machine itself in the same run, so that figures
//! are read as ratios to what the hardware gives.

pub mod ingest;
pub mod log;

/// The p-th percentile (0..=100) of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
