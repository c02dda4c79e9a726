//! Query limits, as InfluxDB 1.x's `[coordinator]` ones: most series, points and GROUP BY
//! time windows per SELECT, and a deadline for the whole query. Each refusal carries
//! InfluxDB's own message (its `max-select-point` one spelled as 1.x spells it, so clients
//! matching it keep working).

use std::time::{Duration, Instant};

/// What a query may use; 0 (or no deadline) is no limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueryLimits {
    pub max_series: usize,
    pub max_points: usize,
    pub max_buckets: usize,
    /// When the query must have finished.
    pub deadline: Option<Instant>,
}

pub const TIMEOUT_MESSAGE: &str = "query-timeout limit exceeded";

impl QueryLimits {
    /// The limits of a query starting now.
    pub fn starting_now(config: &crate::config::NodeConfig) -> QueryLimits {
        let timeout = config.query_timeout_seconds;
        QueryLimits {
            max_series: config.max_select_series,
            max_points: config.max_select_point,
            max_buckets: config.max_select_buckets,
            deadline: (timeout > 0.0)
                .then(|| Instant::now() + Duration::from_secs_f64(timeout.min(1e9))),
        }
    }

    /// Called in the loops of a statement's work, so that a query past its deadline stops
    /// there rather than running on unseen.
    pub fn check_deadline(&self) -> Result<(), String> {
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(TIMEOUT_MESSAGE.into()),
            _ => Ok(()),
        }
    }

    pub fn check_series(&self, n: usize) -> Result<(), String> {
        if self.max_series > 0 && n > self.max_series {
            return Err(format!(
                "max-select-series limit exceeded: ({n}/{})",
                self.max_series
            ));
        }
        Ok(())
    }

    pub fn check_points(&self, n: usize) -> Result<(), String> {
        if self.max_points > 0 && n > self.max_points {
            return Err(format!(
                "max-select-point limit exceeed: ({n}/{})",
                self.max_points
            ));
        }
        Ok(())
    }

    /// The windows of `GROUP BY time(interval, offset)` over a range, counted as 1.x counts
    /// them: only when the range has a start, up to its end or now.
    pub fn check_buckets(
        &self,
        (start, end): (i64, i64),
        interval: i64,
        offset: i64,
        now: i64,
    ) -> Result<(), String> {
        if self.max_buckets == 0 || interval <= 0 || start == i64::MIN {
            return Ok(());
        }
        // As 1.x, the window of the nanosecond before the (inclusive) end.
        let end = if end == i64::MAX { now } else { end }.saturating_sub(1);
        let window = |t: i64| t - (t - offset).rem_euclid(interval);
        let (first, last) = (window(start), window(end));
        let buckets = ((last as i128 - first as i128) / interval as i128 + 1).max(0) as u128;
        if buckets > self.max_buckets as u128 {
            return Err(format!(
                "max-select-buckets limit exceeded: ({buckets}/{})",
                self.max_buckets
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_past_its_deadline_stops_with_influxdbs_message() {
        let limits = QueryLimits {
            deadline: Some(Instant::now()),
            ..QueryLimits::default()
        };
        assert_eq!(limits.check_deadline(), Err(TIMEOUT_MESSAGE.to_owned()));
        assert_eq!(QueryLimits::default().check_deadline(), Ok(()));
    }

    #[test]
    fn buckets_are_counted_from_the_window_of_the_start_to_that_of_the_end() {
        let limits = QueryLimits {
            max_buckets: 10,
            ..QueryLimits::default()
        };
        let minute = 60_000_000_000;
        // 00:00:30 to 00:10:29.999999999: windows 00:00 to 00:10, eleven of them.
        let range = (30_000_000_000, 11 * minute - 30_000_000_001);
        assert_eq!(
            limits.check_buckets(range, minute, 0, 0),
            Err("max-select-buckets limit exceeded: (11/10)".to_owned())
        );
        assert_eq!(
            limits.check_buckets((0, 10 * minute - 1), minute, 0, 0),
            Ok(())
        );
        // No start: not counted, as in 1.x.
        assert_eq!(limits.check_buckets((i64::MIN, 0), 1, 0, 0), Ok(()));
    }
}
