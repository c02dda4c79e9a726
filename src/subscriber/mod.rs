//! Subscriptions' forwarding: 1.x's subscriber service (`services/subscriber/`). Every
//! write accepted into a database and retention policy is forwarded to the destinations of
//! that policy's subscriptions (catalog state, `crate::catalog`): to each of them (`ALL`)
//! or to one in turn (`ANY`, the next one taking a batch the chosen one failed, as 1.6's
//! balance writer does).
//!
//! Fed by the storage's write path ([`crate::storage::WriteSubscribers`]) once a write's
//! records are durable and applied, before it is answered: the write's accepted points
//! are rendered once into a [`batch::Batch`] and offered to a bounded queue per
//! destination (`write_buffer_size` batches), never waited for. A full queue drops the
//! batch for that destination and counts it, as 1.6 drops (and counts as a write
//! failure) a write its subscription's channel has no room for. So a slow or dead
//! destination costs at most its queue and `write_concurrency` sends under way, and never
//! a write's acknowledgment. Nothing is retried and nothing is kept across a restart, as in
//! 1.6: a subscription forwards what is written while it exists.
//!
//! The destinations' sends run on a thread of their own (the `subscriber` runtime). Which
//! subscriptions are active follows the catalog: a write starts those of its database and
//! policy it finds missing, and every [`RECONCILE_INTERVAL`] the whole set is made to match
//! the catalog (a dropped subscription, policy or database stops its senders, discarding
//! what they had queued).

pub(crate) mod batch;
mod destination;

use crate::catalog::{Catalog, Destination};
use crate::client::ClientError;
use crate::config::SubscriberConfig;
use crate::control::ControlLog;
use crate::line_protocol::Point;
use crate::proto::SubscriptionState;
use crate::storage::{Storage, SubscribedWrite, WriteSubscribers};
use batch::Batch;
use destination::{Job, Queue, Sender};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};

/// How often the active subscriptions are made to match the catalog.
pub(crate) const RECONCILE_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub(crate) enum SubscriberError {
    #[error("start the subscriber thread: {0}")]
    Runtime(std::io::Error),
    #[error("ca_certs {path}: {reason}")]
    CaCerts { path: String, reason: String },
    #[error(transparent)]
    Client(ClientError),
    #[error("answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("udp {host}: {source}")]
    Udp {
        host: String,
        source: std::io::Error,
    },
    #[error("the destination could not be set up: {0}")]
    Unavailable(String),
}

/// What the senders are made with (`[subscriber]`).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub http_timeout: Duration,
    pub insecure_skip_verify: bool,
    /// The PEM of `ca_certs`, read at start-up.
    pub ca_certs: Option<Vec<u8>>,
    pub write_concurrency: usize,
    pub write_buffer_size: usize,
}

/// The service's counters, in 1.6's names (`SHOW STATS FOR 'subscriber'`).
#[derive(Debug, Default)]
struct ServiceFigures {
    create_failures: AtomicU64,
    points_written: AtomicU64,
    write_failures: AtomicU64,
}

/// The figures `SHOW STATS` and `/metrics` show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Figures {
    pub create_failures: u64,
    pub points_written: u64,
    pub write_failures: u64,
    /// Per active subscription and destination, in the catalog's order of names.
    pub destinations: Vec<DestinationFigures>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DestinationFigures {
    pub database: String,
    pub retention_policy: String,
    pub name: String,
    pub mode: String,
    pub destination: String,
    pub points_written: u64,
    pub write_failures: u64,
    pub dropped_batches: u64,
    pub queued_batches: u64,
}

/// The subscriber of a node: idle when `[subscriber] enabled = false`.
pub(crate) struct Subscriber {
    inner: Arc<Inner>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        // Dropped from inside another runtime (the daemon's) at exit: not waited for.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// (database, retention policy, name).
type Key = (String, String, String);

struct Inner {
    settings: Settings,
    /// Where the senders run (None when disabled).
    handle: Option<tokio::runtime::Handle>,
    active: RwLock<HashMap<Key, Arc<Active>>>,
    figures: Arc<ServiceFigures>,
}

impl Subscriber {
    /// The node's subscriber, fed by `storage`'s writes when enabled.
    pub(crate) fn open(
        control: Arc<ControlLog>,
        storage: &Storage,
        config: &SubscriberConfig,
    ) -> Result<Subscriber, SubscriberError> {
        let ca_certs = match config.ca_certs.as_os_str().is_empty() {
            true => None,
            false => Some(read_ca_certs(&config.ca_certs)?),
        };
        let settings = Settings {
            http_timeout: config.http_timeout(),
            insecure_skip_verify: config.insecure_skip_verify,
            ca_certs,
            write_concurrency: config.write_concurrency.max(1),
            write_buffer_size: config.write_buffer_size.max(1),
        };
        let runtime = match config.enabled {
            false => None,
            true => Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("subscriber")
                    .enable_all()
                    .build()
                    .map_err(SubscriberError::Runtime)?,
            ),
        };
        let inner = Arc::new(Inner {
            settings,
            handle: runtime.as_ref().map(|r| r.handle().clone()),
            active: RwLock::new(HashMap::new()),
            figures: Arc::default(),
        });
        if let Some(rt) = &runtime {
            control.read_blocking(|c| inner.reconcile(&c.catalog));
            storage.set_subscribers(Arc::new(Feed(inner.clone())));
            let (inner, control) = (inner.clone(), control.clone());
            rt.spawn(async move {
                let mut every = tokio::time::interval(RECONCILE_INTERVAL);
                loop {
                    every.tick().await;
                    control.read(|c| inner.reconcile(&c.catalog)).await;
                }
            });
        }
        Ok(Subscriber { inner, runtime })
    }

    /// The counters, and each active destination's.
    pub(crate) fn figures(&self) -> Figures {
        let f = &self.inner.figures;
        let mut destinations = Vec::new();
        let active = self.inner.active.read().unwrap_or_else(|e| e.into_inner());
        let mut subscriptions: Vec<&Arc<Active>> = active.values().collect();
        subscriptions.sort_by(|a, b| a.key.cmp(&b.key));
        for a in subscriptions {
            for q in &a.queues {
                destinations.push(DestinationFigures {
                    database: a.key.0.clone(),
                    retention_policy: a.key.1.clone(),
                    name: a.key.2.clone(),
                    mode: a.definition.mode.clone(),
                    destination: q.url.clone(),
                    points_written: q.figures.points_written.load(Relaxed),
                    write_failures: q.figures.write_failures.load(Relaxed),
                    dropped_batches: q.figures.dropped_batches.load(Relaxed),
                    queued_batches: q.queued() as u64,
                });
            }
        }
        Figures {
            create_failures: f.create_failures.load(Relaxed),
            points_written: f.points_written.load(Relaxed),
            write_failures: f.write_failures.load(Relaxed),
            destinations,
        }
    }
}

fn read_ca_certs(path: &std::path::Path) -> Result<Vec<u8>, SubscriberError> {
    let failed = |reason: String| SubscriberError::CaCerts {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(c) if !c.is_empty() => Ok(pem),
        Ok(_) => Err(failed("no PEM certificate in it".into())),
        Err(e) => Err(failed(e.to_string())),
    }
}

impl Inner {
    /// Makes the active subscriptions those of `catalog`: stops the others, starts the
    /// missing.
    fn reconcile(&self, catalog: &Catalog) {
        let mut wanted: HashMap<Key, &SubscriptionState> = HashMap::new();
        for (db, d) in &catalog.databases {
            for s in &d.subscriptions {
                wanted.insert((db.clone(), s.retention_policy.clone(), s.name.clone()), s);
            }
        }
        let mut active = self.active.write().unwrap_or_else(|e| e.into_inner());
        active.retain(|key, a| {
            let keep = wanted.get(key).is_some_and(|s| **s == a.definition);
            if !keep {
                a.stop();
            }
            keep
        });
        for (key, s) in wanted {
            if let std::collections::hash_map::Entry::Vacant(slot) = active.entry(key) {
                if let Some(a) = self.start(slot.key().clone(), s.clone()) {
                    slot.insert(a);
                }
            }
        }
    }

    /// The active subscription `definition` of `database`.`policy`, started if missing
    /// (or if it was another of the same name).
    fn active_for(
        &self,
        database: &str,
        policy: &str,
        definition: &SubscriptionState,
    ) -> Option<Arc<Active>> {
        let key = (
            database.to_owned(),
            policy.to_owned(),
            definition.name.clone(),
        );
        {
            let active = self.active.read().unwrap_or_else(|e| e.into_inner());
            if let Some(a) = active.get(&key).filter(|a| a.definition == *definition) {
                return Some(a.clone());
            }
        }
        let mut active = self.active.write().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = active.get(&key) {
            if a.definition == *definition {
                return Some(a.clone());
            }
            a.stop();
        }
        let a = self.start(key.clone(), definition.clone())?;
        active.insert(key, a.clone());
        Some(a)
    }

    /// Starts a subscription's senders, one task per destination.
    fn start(&self, key: Key, definition: SubscriptionState) -> Option<Arc<Active>> {
        let handle = self.handle.as_ref()?;
        let mut queues = Vec::new();
        let mut receivers = Vec::new();
        for url in &definition.destinations {
            let Some(target) = Destination::parse(url) else {
                // The catalog checked it: only a state written by another build gets here.
                self.figures.create_failures.fetch_add(1, Relaxed);
                tracing::warn!(destination = %url, subscription = %key.2, "subscription destination is not a valid URL: not started");
                return None;
            };
            let (queue, rx) = Queue::new(url.clone(), target, self.settings.write_buffer_size);
            queues.push(queue);
            receivers.push(rx);
        }
        let any = definition.mode == "ANY";
        let (stopper, stopped) = watch::channel(false);
        let active = Arc::new(Active {
            key,
            definition,
            any,
            queues,
            next: AtomicUsize::new(0),
            stopper,
            stopping: AtomicBool::new(false),
            figures: self.figures.clone(),
        });
        for (index, rx) in receivers.into_iter().enumerate() {
            handle.spawn(deliver(
                active.clone(),
                index,
                rx,
                stopped.clone(),
                self.settings.clone(),
            ));
        }
        tracing::info!(database = %active.key.0, retention_policy = %active.key.1, subscription = %active.key.2, "subscription active");
        Some(active)
    }
}

/// What the storage calls.
struct Feed(Arc<Inner>);

impl WriteSubscribers for Feed {
    fn subscribed(
        &self,
        catalog: &Catalog,
        database: &str,
        retention_policy: &str,
    ) -> Option<Box<dyn SubscribedWrite>> {
        let definitions: Vec<SubscriptionState> = catalog
            .subscriptions_of(database, retention_policy)
            .cloned()
            .collect();
        if definitions.is_empty() {
            return None;
        }
        Some(Box::new(PendingWrite {
            inner: self.0.clone(),
            database: database.to_owned(),
            retention_policy: retention_policy.to_owned(),
            definitions,
        }))
    }
}

/// A write to a database and policy that has subscriptions.
struct PendingWrite {
    inner: Arc<Inner>,
    database: String,
    retention_policy: String,
    definitions: Vec<SubscriptionState>,
}

impl SubscribedWrite for PendingWrite {
    fn accepted(self: Box<Self>, points: &mut dyn Iterator<Item = &Point<'_>>) {
        let batch = Arc::new(Batch::render(points));
        if batch.points() == 0 {
            return;
        }
        for definition in &self.definitions {
            if let Some(active) =
                self.inner
                    .active_for(&self.database, &self.retention_policy, definition)
            {
                active.offer(&batch);
            }
        }
    }
}

/// One subscription's delivery of one batch: done when each destination it went to (ALL)
/// or the one that took it (ANY) is done, and counted then as 1.6's service counts a
/// write: its points written, or a write failure if any destination failed or dropped it.
pub(crate) struct Delivery {
    remaining: AtomicUsize,
    failed: AtomicBool,
    points: usize,
    figures: Arc<ServiceFigures>,
}

impl Delivery {
    fn done(&self, ok: bool) {
        if !ok {
            self.failed.store(true, Relaxed);
        }
        if self.remaining.fetch_sub(1, Relaxed) == 1 {
            match self.failed.load(Relaxed) {
                true => self.figures.write_failures.fetch_add(1, Relaxed),
                false => self
                    .figures
                    .points_written
                    .fetch_add(self.points as u64, Relaxed),
            };
        }
    }
}

/// A subscription being forwarded to: its destinations' queues.
struct Active {
    key: Key,
    definition: SubscriptionState,
    any: bool,
    queues: Vec<Queue>,
    /// The destination ANY offers the next batch to.
    next: AtomicUsize,
    stopper: watch::Sender<bool>,
    stopping: AtomicBool,
    figures: Arc<ServiceFigures>,
}

impl Active {
    fn offer(&self, batch: &Arc<Batch>) {
        let n = self.queues.len();
        if n == 0 {
            return;
        }
        let delivery = Arc::new(Delivery {
            remaining: AtomicUsize::new(if self.any { 1 } else { n }),
            failed: AtomicBool::new(false),
            points: batch.points(),
            figures: self.figures.clone(),
        });
        let job = |tried| Job {
            batch: batch.clone(),
            delivery: delivery.clone(),
            tried,
        };
        if !self.any {
            for q in &self.queues {
                if q.offer(job(1)).is_err() {
                    q.figures.dropped_batches.fetch_add(1, Relaxed);
                    delivery.done(false);
                }
            }
            return;
        }
        // One destination in turn; past a full queue to the next, as long as one has room.
        let first = self.next.fetch_add(1, Relaxed) % n;
        let taken = (0..n).any(|k| self.queues[(first + k) % n].offer(job(1)).is_ok());
        if !taken {
            self.queues[first]
                .figures
                .dropped_batches
                .fetch_add(1, Relaxed);
            delivery.done(false);
        }
    }

    /// A send to destination `index` is over: counted, and under ANY a failed batch goes
    /// to the next destination not tried yet.
    fn sent(&self, index: usize, job: Job, outcome: Result<(), SubscriberError>) {
        let queue = &self.queues[index];
        queue.figures.sent(&queue.url, job.batch.points(), &outcome);
        let n = self.queues.len();
        if outcome.is_err() && self.any && job.tried < n && !self.stopping.load(Relaxed) {
            let next = (index + 1) % n;
            let retry = Job {
                tried: job.tried + 1,
                ..job
            };
            if let Err(job) = self.queues[next].offer(retry) {
                self.queues[next]
                    .figures
                    .dropped_batches
                    .fetch_add(1, Relaxed);
                job.delivery.done(false);
            }
            return;
        }
        job.delivery.done(outcome.is_ok());
    }

    fn stop(&self) {
        self.stopping.store(true, Relaxed);
        let _ = self.stopper.send(true);
        tracing::info!(database = %self.key.0, retention_policy = %self.key.1, subscription = %self.key.2, "subscription stopped");
    }
}

/// Sends destination `index`'s batches, at most `write_concurrency` at once, until the
/// subscription stops (what is still queued then is dropped).
async fn deliver(
    active: Arc<Active>,
    index: usize,
    mut queue: mpsc::Receiver<Job>,
    mut stopped: watch::Receiver<bool>,
    settings: Settings,
) {
    let (database, policy) = (&active.key.0, &active.key.1);
    let sender = match Sender::new(&active.queues[index].target, database, policy, &settings) {
        Ok(s) => Ok(Arc::new(s)),
        Err(e) => {
            active.figures.create_failures.fetch_add(1, Relaxed);
            tracing::warn!(destination = %active.queues[index].url, error = %e, "subscription destination could not be set up: its batches fail");
            Err(e.to_string())
        }
    };
    let permits = Arc::new(Semaphore::new(settings.write_concurrency));
    while !*stopped.borrow() {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p,
            _ = stopped.changed() => return,
        };
        let Ok(permit) = permit else { return };
        let job = tokio::select! {
            job = queue.recv() => job,
            _ = stopped.changed() => return,
        };
        let Some(job) = job else { return };
        let (active, sender) = (active.clone(), sender.clone());
        tokio::spawn(async move {
            let outcome = match &sender {
                Ok(s) => s.send(&job.batch).await,
                Err(e) => Err(SubscriberError::Unavailable(e.clone())),
            };
            drop(permit);
            active.sent(index, job, outcome);
        });
    }
}
