//! Query limits, as InfluxDB 1.x's `[coordinator]` ones: most series, points and GROUP BY
//! time windows per SELECT, and a deadline for the whole query. Each refusal carries
//! InfluxDB's own message (its `max-select-point` one spelled as 1.x spells it, so clients
//! matching it keep working).
//!
//! Beyond 1.x: a memory budget per query (`max_request_memory_mib`), charged by the
//! executor for what it holds (rows read, windows x series, fill output, the rendered
//! answer) a batch at a time, and an interruption flag, set when the client goes away or
//! the node stops, seen wherever the deadline is checked.

use super::error::QueryError;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Stored values a query reads (decodes and folds) in a second, about: the measure of
/// whether a read fits in an inline attempt's budget (`bench query`'s 8 hosts, 8,000
/// values in six column files, answer in about 0.3 ms with the request).
const INLINE_ENTRIES_PER_SECOND: f64 = 30_000_000.0;

/// What a query may use; 0 (or no deadline) is no limit.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueryLimits {
    pub max_series: usize,
    pub max_points: usize,
    pub max_buckets: usize,
    /// When the query must have finished.
    pub deadline: Option<Instant>,
    /// Set for a first attempt on the thread that received the request: past this instant
    /// the attempt gives up (`QueryError::OverBudget`) and the query starts over on the
    /// query pool.
    inline_until: Option<Instant>,
    memory: Arc<MemoryBudget>,
    interrupt: Interrupt,
}

/// Bytes a query holds, against its budget (0: none). Shared by the statement, its
/// subqueries and the threads scanning for it.
#[derive(Debug, Default)]
struct MemoryBudget {
    limit: u64,
    held: AtomicU64,
}

/// A query's own stop flag (its client went away) and the node's (it is stopping).
#[derive(Debug, Clone, Default)]
pub(crate) struct Interrupt {
    query: Arc<AtomicBool>,
    node: Arc<AtomicBool>,
}

impl Interrupt {
    /// Stops the query at its next check.
    pub(crate) fn raise(&self) {
        self.query.store(true, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub(crate) fn is_raised(&self) -> bool {
        self.raised().is_some()
    }

    fn raised(&self) -> Option<QueryError> {
        if self.node.load(Ordering::Relaxed) {
            Some(QueryError::NodeStopping)
        } else if self.query.load(Ordering::Relaxed) {
            Some(QueryError::Interrupted)
        } else {
            None
        }
    }
}

/// Bytes charged for as long as it lives (what a step holds only while it runs).
#[must_use]
pub(crate) struct Held {
    memory: Arc<MemoryBudget>,
    bytes: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.memory.held.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl QueryLimits {
    /// The limits of a query starting now; `node_stopping` is the node's own interrupt
    /// flag, raised on SIGTERM.
    pub(crate) fn starting_now(
        config: &crate::config::NodeConfig,
        node_stopping: Arc<AtomicBool>,
    ) -> QueryLimits {
        let timeout = config.query_timeout_seconds;
        QueryLimits {
            max_series: config.max_select_series,
            max_points: config.max_select_point,
            max_buckets: config.max_select_buckets,
            deadline: (timeout > 0.0)
                .then(|| Instant::now() + Duration::from_secs_f64(timeout.min(1e9))),
            inline_until: None,
            memory: Arc::new(MemoryBudget {
                limit: config.max_request_memory_mib.saturating_mul(1 << 20),
                held: AtomicU64::new(0),
            }),
            interrupt: Interrupt {
                query: Arc::default(),
                node: node_stopping,
            },
        }
    }

    /// The flag that stops this query (the one its clones share).
    /// Limits of a query with a memory budget of `mib` and nothing else, for tests.
    #[cfg(test)]
    pub(crate) fn with_budget(mib: u64) -> QueryLimits {
        let config = crate::config::NodeConfig {
            max_request_memory_mib: mib,
            ..Default::default()
        };
        QueryLimits::starting_now(&config, Arc::default())
    }

    pub(crate) fn interrupt(&self) -> Interrupt {
        self.interrupt.clone()
    }

    /// The limits of a first attempt that may work for `budget` only, with a memory budget
    /// of its own (what it charged is gone with it when it gives up); the deadline and the
    /// interruption are the query's.
    pub(crate) fn inline_attempt(&self, budget: Duration) -> QueryLimits {
        QueryLimits {
            inline_until: Some(Instant::now() + budget),
            memory: Arc::new(MemoryBudget {
                limit: self.memory.limit,
                held: AtomicU64::new(0),
            }),
            ..self.clone()
        }
    }

    /// For an attempt with a work budget: gives up at once when a read of `entries` stored
    /// values would not fit in it (about 30,000 values a millisecond are decoded and
    /// folded), rather than when the budget is spent.
    pub(crate) fn check_inline_entries(&self, entries: usize) -> Result<(), QueryError> {
        let Some(until) = self.inline_until else {
            return Ok(());
        };
        let left = until.saturating_duration_since(Instant::now());
        match entries as f64 > left.as_secs_f64() * INLINE_ENTRIES_PER_SECOND {
            true => Err(QueryError::OverBudget),
            false => Ok(()),
        }
    }

    /// Whether this is an attempt with a work budget (see [`QueryLimits::inline_attempt`]).
    pub(crate) fn is_inline_attempt(&self) -> bool {
        self.inline_until.is_some()
    }

    /// Called in the loops of a statement's work, so that a query past its deadline, or
    /// interrupted, stops there rather than running on unseen.
    pub(crate) fn check_deadline(&self) -> Result<(), QueryError> {
        if let Some(why) = self.interrupt.raised() {
            return Err(why);
        }
        if self.deadline.is_none() && self.inline_until.is_none() {
            return Ok(());
        }
        let now = Instant::now();
        if self.deadline.is_some_and(|d| now >= d) {
            return Err(QueryError::Timeout);
        }
        if self.inline_until.is_some_and(|until| now >= until) {
            return Err(QueryError::OverBudget);
        }
        Ok(())
    }

    /// Charges `bytes` the query keeps until it answers (rows of its result, say). Over
    /// the budget the query stops with an error naming the key.
    pub(crate) fn charge(&self, bytes: usize) -> Result<(), QueryError> {
        let bytes = bytes as u64;
        let memory = &self.memory;
        let held = memory.held.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if memory.limit > 0 && held > memory.limit {
            memory.held.fetch_sub(bytes, Ordering::Relaxed);
            return Err(QueryError::MemoryBudget {
                limit_mib: memory.limit >> 20,
            });
        }
        Ok(())
    }

    /// Charges `bytes` for as long as the returned guard lives (what one step of the work
    /// holds only while it runs).
    pub(crate) fn hold(&self, bytes: usize) -> Result<Held, QueryError> {
        self.charge(bytes)?;
        Ok(Held {
            memory: self.memory.clone(),
            bytes: bytes as u64,
        })
    }

    pub(crate) fn check_series(&self, n: usize) -> Result<(), QueryError> {
        if self.max_series > 0 && n > self.max_series {
            return Err(QueryError::TooManySeries {
                found: n,
                limit: self.max_series,
            });
        }
        Ok(())
    }

    pub(crate) fn check_points(&self, n: usize) -> Result<(), QueryError> {
        if self.max_points > 0 && n > self.max_points {
            return Err(QueryError::TooManyPoints {
                found: n,
                limit: self.max_points,
            });
        }
        Ok(())
    }

    /// The windows of `GROUP BY time(interval, offset)` over a range, counted as 1.x counts
    /// them: only when the range has a start, up to its end or now.
    pub(crate) fn check_buckets(
        &self,
        (start, end): (i64, i64),
        interval: i64,
        offset: i64,
        now: i64,
    ) -> Result<(), QueryError> {
        if self.max_buckets == 0 || interval <= 0 || start == i64::MIN {
            return Ok(());
        }
        // As 1.x, the window of the nanosecond before the (inclusive) end.
        let end = if end == i64::MAX { now } else { end }.saturating_sub(1);
        let window = |t: i64| t - (t - offset).rem_euclid(interval);
        let (first, last) = (window(start), window(end));
        let buckets = ((last as i128 - first as i128) / interval as i128 + 1).max(0) as u128;
        if buckets > self.max_buckets as u128 {
            return Err(QueryError::TooManyBuckets {
                found: buckets,
                limit: self.max_buckets,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inline_attempt_gives_up_on_a_read_it_cannot_finish_in_its_budget() {
        let limits = QueryLimits::with_budget(0);
        assert!(
            limits.check_inline_entries(usize::MAX).is_ok(),
            "no budget, no limit"
        );
        let attempt = limits.inline_attempt(Duration::from_secs(1));
        assert!(attempt.is_inline_attempt() && !limits.is_inline_attempt());
        assert!(attempt.check_inline_entries(1_000).is_ok());
        assert!(matches!(
            attempt.check_inline_entries(1 << 40),
            Err(QueryError::OverBudget)
        ));
        let spent = limits.inline_attempt(Duration::ZERO);
        assert!(matches!(
            spent.check_deadline(),
            Err(QueryError::OverBudget)
        ));
        assert!(limits.check_deadline().is_ok(), "the query itself goes on");
    }

    /// The text a client sees.
    fn said<T>(r: Result<T, QueryError>) -> Result<T, String> {
        r.map_err(|e| e.to_string())
    }

    #[test]
    fn a_query_past_its_deadline_stops_with_influxdbs_message() {
        let limits = QueryLimits {
            deadline: Some(Instant::now()),
            ..QueryLimits::default()
        };
        assert_eq!(
            said(limits.check_deadline()),
            Err("query-timeout limit exceeded".to_owned())
        );
        assert_eq!(said(QueryLimits::default().check_deadline()), Ok(()));
    }

    #[test]
    fn memory_past_the_budget_is_refused_and_what_is_held_is_given_back() {
        let limits = QueryLimits::with_budget(1);
        let held = limits.hold(600 << 10).expect("within the budget");
        assert!(limits.charge(600 << 10).is_err_and(|e| e
            .to_string()
            .contains("max_request_memory_mib allows (1 MiB)")));
        // The refused charge left nothing behind; the guard gives its share back.
        drop(held);
        assert_eq!(said(limits.charge(1 << 20)), Ok(()));
        assert!(limits.clone().charge(1).is_err(), "clones share one budget");
        assert_eq!(
            said(QueryLimits::with_budget(0).charge(usize::MAX >> 1)),
            Ok(()),
            "0: no limit"
        );
    }

    #[test]
    fn an_interrupted_query_stops_at_its_next_check() {
        let node = Arc::new(AtomicBool::new(false));
        let config = crate::config::NodeConfig::default();
        let limits = QueryLimits::starting_now(&config, node.clone());
        assert_eq!(said(limits.check_deadline()), Ok(()));
        limits.interrupt().raise();
        assert_eq!(
            said(limits.check_deadline()),
            Err("query interrupted".to_owned())
        );
        let other = QueryLimits::starting_now(&config, node.clone());
        node.store(true, Ordering::Relaxed);
        assert_eq!(
            said(other.check_deadline()),
            Err("query interrupted: the node is shutting down".to_owned())
        );
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
            said(limits.check_buckets(range, minute, 0, 0)),
            Err("max-select-buckets limit exceeded: (11/10)".to_owned())
        );
        assert_eq!(
            said(limits.check_buckets((0, 10 * minute - 1), minute, 0, 0)),
            Ok(())
        );
        // No start: not counted, as in 1.x.
        assert_eq!(said(limits.check_buckets((i64::MIN, 0), 1, 0, 0)), Ok(()));
    }
}
