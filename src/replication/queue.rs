//! One replication's queue as the node holds it in memory: which bucket it follows, the
//! bytes of that bucket's records it holds (admitted writes in, delivered or dropped
//! records out), and what its sender reports for `/metrics` and the status. The position
//! itself is durable in the control state; this is rebuilt from it and the data log at
//! start-up.

use crate::log::Lsn;
use crate::proto::Replication;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::Notify;

/// What a sender reports of its attempts, for `/metrics`.
#[derive(Debug, Clone, Default)]
pub(crate) struct SenderFigures {
    /// Failed attempts by HTTP status (0: no answer, a network error).
    pub failures: BTreeMap<u16, u64>,
    /// The back-off before the next attempt, in seconds (0: none).
    pub backoff_seconds: f64,
    /// The local write time (ns) of the oldest point not yet delivered (0: none queued).
    pub oldest_queued_nanos: i64,
    /// Points dropped because the queue was full (also in the control state; here for
    /// the metrics of the running node).
    pub batches_sent: u64,
}

pub(crate) struct Queue {
    pub id: String,
    settings: Mutex<Settings>,
    /// Bytes of the bucket's records after the delivered position (and of writes
    /// admitted, on their way to the data log).
    bytes: AtomicU64,
    /// The first LSN the queue still needs: past the delivered position, and past the
    /// other buckets' records the sender has read over.
    needed_from: AtomicU64,
    closed: AtomicBool,
    /// A sender runs for this queue.
    has_sender: AtomicBool,
    /// Wakes the sender: new settings, a drop-head, the queue closed.
    wake: Notify,
    pub figures: Mutex<SenderFigures>,
    /// Held while the queue's position is read and moved (by its sender, or a drop-head).
    pub cursor: tokio::sync::Mutex<()>,
}

#[derive(Debug, Clone)]
struct Settings {
    name: String,
    max_bytes: u64,
    /// The local bucket's database and retention policy (None: the bucket is gone).
    target: Option<(String, String)>,
}

impl Queue {
    pub(crate) fn new(r: &Replication, target: Option<(String, String)>, delivered: Lsn) -> Queue {
        Queue {
            id: r.id.clone(),
            settings: Mutex::new(Settings {
                name: r.name.clone(),
                max_bytes: r.max_queue_size_bytes.max(0) as u64,
                target,
            }),
            bytes: AtomicU64::new(0),
            needed_from: AtomicU64::new(delivered + 1),
            closed: AtomicBool::new(false),
            has_sender: AtomicBool::new(false),
            wake: Notify::new(),
            figures: Mutex::new(SenderFigures::default()),
            cursor: tokio::sync::Mutex::new(()),
        }
    }

    fn settings(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_settings(&self, r: &Replication, target: Option<(String, String)>) {
        let mut s = self.settings();
        s.name = r.name.clone();
        s.max_bytes = r.max_queue_size_bytes.max(0) as u64;
        s.target = target;
    }

    /// Whether the records of `database`.`policy` are this queue's.
    pub(crate) fn targets(&self, database: &str, policy: &str) -> bool {
        self.settings()
            .target
            .as_ref()
            .is_some_and(|(d, p)| d == database && p == policy)
    }

    pub(crate) fn max_bytes(&self) -> u64 {
        self.settings().max_bytes
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }

    pub(crate) fn set_bytes(&self, bytes: u64) {
        self.bytes.store(bytes, Ordering::Release);
    }

    pub(crate) fn has_room(&self, bytes: u64) -> bool {
        self.bytes() + bytes <= self.max_bytes()
    }

    /// Bytes past the queue's bound (what a queue that drops when full must drop).
    pub(crate) fn overflow(&self) -> u64 {
        self.bytes().saturating_sub(self.max_bytes())
    }

    pub(crate) fn full_message(&self, bytes: u64) -> String {
        let s = self.settings();
        format!(
            "replication {:?} ({}) queue is full: it holds {} bytes of at most {} (maxQueueSizeBytes), and this write adds {}; retry later",
            s.name,
            self.id,
            self.bytes(),
            s.max_bytes,
            bytes
        )
    }

    pub(crate) fn add(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::AcqRel);
    }

    /// Takes bytes out (delivered, dropped, or never appended); never below zero, for a
    /// write admitted before the replication existed may be delivered by it.
    pub(crate) fn remove(&self, bytes: u64) {
        let _ = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                Some(b.saturating_sub(bytes))
            });
    }

    pub(crate) fn needed_from(&self) -> Lsn {
        self.needed_from.load(Ordering::Acquire)
    }

    pub(crate) fn set_needed_from(&self, lsn: Lsn) {
        self.needed_from.fetch_max(lsn, Ordering::AcqRel);
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// True once: the caller starts the queue's sender.
    pub(crate) fn claim_sender(&self) -> bool {
        !self.has_sender.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.wake.notified().await
    }

    pub(crate) fn figures(&self) -> SenderFigures {
        self.figures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn update_figures(&self, f: impl FnOnce(&mut SenderFigures)) {
        f(&mut self.figures.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
