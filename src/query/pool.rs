//! The threads queries run on: a runtime of its own, one thread per core, so that a heavy
//! query never holds an HTTP worker (which must stay free to answer `/ping` and writes).
//! Queries beyond one per thread wait in its queue. The threads run at a lower CPU
//! priority: a write waiting for its acknowledgement, or a `/ping`, goes first.
//!
//! A query that changes nothing is first tried on the HTTP worker that received it, for at
//! most `query_inline_budget_ms`: a dashboard's small query then costs no hand-off to a pool
//! thread and back (two wake-ups, most of its time). An attempt that runs out of budget
//! is dropped and the query starts over on the pool; after one, attempts pause for nine
//! times what it spent, so that at most a tenth of a worker's time goes to attempts
//! thrown away, whatever queries arrive.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An attempt thrown away pauses the next ones for this many times its length.
const PAUSE_PER_WASTED: u32 = 9;

pub(crate) struct QueryPool {
    /// Taken on drop: the runtime is shut down without waiting for a query that ignores
    /// its interruption, so that such a query never holds the process up.
    runtime: Option<tokio::runtime::Runtime>,
    /// Raised when the node stops: every query running or queued stops at its next check.
    stopping: Arc<AtomicBool>,
    /// The queries running, for SHOW QUERIES and KILL QUERY.
    tasks: Arc<super::tasks::QueryTasks>,
    /// How long a query may be tried on the thread that received it (zero: never).
    inline_budget: Duration,
    /// Until when (nanoseconds after `started`) no query is tried inline.
    inline_paused_until: AtomicU64,
    started: Instant,
}

impl QueryPool {
    pub(crate) fn new(inline_budget: Duration) -> std::io::Result<QueryPool> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("query")
            .on_thread_start(|| crate::priority::lower_current_thread(crate::priority::QUERY_NICE))
            .enable_all()
            .build()?;
        Ok(QueryPool {
            runtime: Some(runtime),
            stopping: Arc::default(),
            tasks: Arc::default(),
            inline_budget,
            inline_paused_until: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    /// Runs a query's work on the pool; the handle answers when it is done.
    pub(crate) fn spawn<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the pool")
            .spawn(work)
    }

    /// How long a query may now be tried on the thread that received it, if at all.
    pub(crate) fn inline_budget(&self) -> Option<Duration> {
        (!self.inline_budget.is_zero()
            && self.nanos_now() >= self.inline_paused_until.load(Ordering::Relaxed))
        .then_some(self.inline_budget)
    }

    /// An inline attempt that began at `began` was thrown away: the next ones wait.
    pub(crate) fn inline_wasted(&self, began: Instant) {
        let pause = began.elapsed().saturating_mul(PAUSE_PER_WASTED);
        let now = self.nanos_now();
        let pause = u64::try_from(pause.as_nanos()).unwrap_or(u64::MAX);
        self.inline_paused_until
            .fetch_max(now.saturating_add(pause), Ordering::Relaxed);
    }

    fn nanos_now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The flag [`QueryPool::stop_all`] raises, for each query's limits.
    pub(crate) fn stopping(&self) -> Arc<AtomicBool> {
        self.stopping.clone()
    }

    /// The queries running on the pool.
    pub(crate) fn tasks(&self) -> &Arc<super::tasks::QueryTasks> {
        &self.tasks
    }

    /// Interrupts every query, running or queued, and every later one.
    pub(crate) fn stop_all(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }
}

impl Drop for QueryPool {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
