//! The threads queries run on: a runtime of its own, one thread per core, so that a heavy
//! query never holds an HTTP worker (which must stay free to answer `/ping` and writes).
//! Queries beyond one per thread wait in its queue. The threads run at a lower CPU
//! priority: a write waiting for its acknowledgement, or a `/ping`, goes first.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub(crate) struct QueryPool {
    /// Taken on drop: the runtime is shut down without waiting for a query that ignores
    /// its interruption, so that such a query never holds the process up.
    runtime: Option<tokio::runtime::Runtime>,
    /// Raised when the node stops: every query running or queued stops at its next check.
    stopping: Arc<AtomicBool>,
    /// The queries running, for SHOW QUERIES and KILL QUERY.
    tasks: Arc<super::tasks::QueryTasks>,
}

impl QueryPool {
    pub(crate) fn new() -> std::io::Result<QueryPool> {
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
