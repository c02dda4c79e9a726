//! The receiving side of exactly-once delivery between shardkeeper nodes: a write to
//! `/api/v2/write` that carries a sender's batch header ([`BATCH_HEADER`]) is applied once.
//!
//! A sender keeps several batches in flight; after a crash it cannot know which of them
//! arrived, so it sends them again. Here, a batch whose range is already applied for its
//! origin is answered 204 without being applied again (counted as a duplicate); one that
//! overlaps applied ranges only in part is refused with 409 and the ranges
//! ([`APPLIED_HEADER`]), so that the sender cuts it around them; any other is applied and,
//! only once its points are durable, its range recorded durably
//! ([`crate::control::inbound`], a control-log event) before the 204. A marker durable
//! before its points would lose them on a crash here; the other order at worst applies a
//! batch twice (a crash between the two), as before this existed.
//!
//! A batch being applied holds an in-progress entry: a copy of it arriving meanwhile (a
//! resend racing the original) waits for its outcome instead of applying it too.
//!
//! **Who may skip what.** The header is read only after the write's own authentication
//! and authorization, and the origin is scoped by the authenticated user and the target
//! database and policy: a marker can only ever skip a later write of the same user to
//! the same place, which that user could have left out anyway. A writer cannot suppress
//! another user's data by making up another sender's origin (it names a different key),
//! nor a write to another bucket. With authentication off, every caller is the same
//! (anonymous) user and may write, delete or drop anything already; made-up headers give
//! no power beyond that.

use crate::control::inbound::{applied, Held};
use crate::control::ControlLog;
use crate::projection::ProjectionError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, watch};

/// `X-Shardkeeper-Batch: <origin>;<first>-<last>;<confirmed>`: the sender's origin (its
/// replication, durable across restarts), the data-log positions the batch covers, and the
/// position up to which the sender has durably recorded delivery.
pub(crate) const BATCH_HEADER: &str = "X-Shardkeeper-Batch";
/// On a 409 for a batch overlapping applied ranges: `<first>-<last>,...`, those ranges.
pub(crate) const APPLIED_HEADER: &str = "X-Shardkeeper-Applied";
/// On a 204 for a batch already applied: `duplicate`.
pub(crate) const OUTCOME_HEADER: &str = "X-Shardkeeper-Batch-Outcome";
/// The longest origin accepted.
const MAX_ORIGIN_LEN: usize = 128;

/// A batch as its header names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub origin: String,
    pub first: u64,
    pub last: u64,
    pub confirmed: u64,
}

impl BatchHeader {
    pub(crate) fn render(&self) -> String {
        format!(
            "{};{}-{};{}",
            self.origin, self.first, self.last, self.confirmed
        )
    }

    /// Parses a header's value; the error says what is wrong with it.
    pub(crate) fn parse(value: &str) -> Result<BatchHeader, String> {
        let bad = || {
            format!(
                "invalid {BATCH_HEADER} {value:?}: expected <origin>;<first>-<last>;<confirmed>"
            )
        };
        let mut parts = value.trim().split(';');
        let (Some(origin), Some(range), Some(confirmed), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let (first, last) = range.split_once('-').ok_or_else(bad)?;
        let number = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
        let header = BatchHeader {
            origin: origin.trim().to_owned(),
            first: number(first)?,
            last: number(last)?,
            confirmed: number(confirmed)?,
        };
        if header.origin.is_empty()
            || header.origin.len() > MAX_ORIGIN_LEN
            || header.first > header.last
        {
            return Err(bad());
        }
        Ok(header)
    }
}

/// The ranges of a 409's [`APPLIED_HEADER`].
pub(crate) fn render_ranges(ranges: &[(u64, u64)]) -> String {
    let parts: Vec<String> = ranges.iter().map(|(f, l)| format!("{f}-{l}")).collect();
    parts.join(",")
}

/// Parses [`APPLIED_HEADER`] (None if malformed).
pub(crate) fn parse_ranges(value: &str) -> Option<Vec<(u64, u64)>> {
    value
        .split(',')
        .map(|r| {
            let (f, l) = r.trim().split_once('-')?;
            Some((f.parse().ok()?, l.parse().ok()?))
        })
        .collect()
}

/// What to do with a batch.
pub(crate) enum Admission {
    /// Applied before: answer 204, apply nothing.
    Duplicate,
    /// Overlaps these applied ranges in part: refuse (409) so that the sender cuts it.
    Overlaps(Vec<(u64, u64)>),
    /// Apply it, then [`Claim::applied`].
    Apply(Claim),
}

/// Batches received, by outcome, since start.
#[derive(Debug, Default)]
pub(crate) struct InboundFigures {
    pub applied: AtomicU64,
    pub duplicates: AtomicU64,
    pub overlaps: AtomicU64,
}

/// Batches being applied, by key: their ranges and a channel closed when they are done.
type InProgress = HashMap<String, Vec<(u64, u64, watch::Receiver<()>)>>;

pub(crate) struct InboundLedger {
    control: Arc<ControlLog>,
    in_progress: Mutex<InProgress>,
    markers: Mutex<Markers>,
    pub figures: InboundFigures,
}

/// Markers waiting for their append: one claim at a time appends all those waiting, in
/// one control-log record set (a group commit: batches arriving together share an
/// fdatasync, instead of queueing for one each).
#[derive(Default)]
struct Markers {
    events: Vec<crate::proto::Event>,
    waiting: Vec<oneshot::Sender<Result<(), String>>>,
    appending: bool,
}

impl InboundLedger {
    pub(crate) fn new(control: Arc<ControlLog>) -> Arc<InboundLedger> {
        Arc::new(InboundLedger {
            control,
            in_progress: Mutex::new(HashMap::new()),
            markers: Mutex::new(Markers::default()),
            figures: InboundFigures::default(),
        })
    }

    /// The key a batch is recorded under: who sent it and where to (see the module's
    /// comment), and its origin.
    pub(crate) fn key(user_id: &str, database: &str, policy: &str, origin: &str) -> String {
        format!("{user_id}\n{database}\n{policy}\n{origin}")
    }

    /// Decides on a batch, waiting for any copy of it being applied meanwhile.
    pub(crate) async fn admit(self: &Arc<Self>, key: String, batch: BatchHeader) -> Admission {
        loop {
            let mut waiting = {
                let mut in_progress = self.in_progress.lock().unwrap_or_else(|e| e.into_inner());
                let under_way = in_progress.get(&key).and_then(|all| {
                    all.iter()
                        .find(|(f, l, _)| *f <= batch.last && *l >= batch.first)
                        .map(|(_, _, rx)| rx.clone())
                });
                match under_way {
                    Some(rx) => rx,
                    None => {
                        // Read under the lock: a claim records its range before it lets go
                        // of its entry, so a range is always in one of the two.
                        let held = self
                            .control
                            .read_blocking(|c| c.inbound.held(&key, batch.first, batch.last));
                        match held {
                            Held::All => {
                                self.figures.duplicates.fetch_add(1, Relaxed);
                                return Admission::Duplicate;
                            }
                            Held::Part(ranges) => {
                                self.figures.overlaps.fetch_add(1, Relaxed);
                                return Admission::Overlaps(ranges);
                            }
                            Held::Nothing => {}
                        }
                        let (done, rx) = watch::channel(());
                        in_progress.entry(key.clone()).or_default().push((
                            batch.first,
                            batch.last,
                            rx,
                        ));
                        return Admission::Apply(Claim {
                            ledger: self.clone(),
                            key,
                            batch,
                            _done: done,
                        });
                    }
                }
            };
            // Closed when that claim is dropped, recorded or not.
            while waiting.changed().await.is_ok() {}
        }
    }
}

/// A batch being applied: its in-progress entry, let go when dropped.
pub(crate) struct Claim {
    ledger: Arc<InboundLedger>,
    key: String,
    batch: BatchHeader,
    /// Dropped with the claim, which wakes the copies waiting for it.
    _done: watch::Sender<()>,
}

impl Claim {
    /// Records the batch as applied: called once its points are durable. The error is
    /// the control log's.
    pub(crate) async fn applied(self) -> Result<(), String> {
        let b = &self.batch;
        let event = applied(&self.key, b.first, b.last, b.confirmed);
        let ledger = &self.ledger;
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut m = ledger.markers.lock().unwrap_or_else(|e| e.into_inner());
            m.events.push(event);
            m.waiting.push(tx);
            !std::mem::replace(&mut m.appending, true)
        };
        if lead {
            // Dropped unfinished (cancelled), it hands the lead to the next claim, which
            // appends what is left waiting.
            let _lead = Lead(&ledger.markers);
            loop {
                let (events, waiting) = {
                    let mut m = ledger.markers.lock().unwrap_or_else(|e| e.into_inner());
                    if m.events.is_empty() {
                        m.appending = false;
                        break;
                    }
                    (
                        std::mem::take(&mut m.events),
                        std::mem::take(&mut m.waiting),
                    )
                };
                let outcome = ledger
                    .control
                    .mutate(|_| Ok::<_, ProjectionError>((events, ())))
                    .await
                    .map_err(|e| e.to_string());
                for w in waiting {
                    let _ = w.send(outcome.clone());
                }
            }
        }
        rx.await
            .map_err(|_| "the marker's append was abandoned".to_owned())??;
        ledger.figures.applied.fetch_add(1, Relaxed);
        Ok(())
    }
}

struct Lead<'a>(&'a Mutex<Markers>);

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).appending = false;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut in_progress = self
            .ledger
            .in_progress
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(all) = in_progress.get_mut(&self.key) {
            all.retain(|(f, l, _)| (*f, *l) != (self.batch.first, self.batch.last));
            if all.is_empty() {
                in_progress.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_header_round_trips_and_nonsense_is_refused() {
        let h = BatchHeader {
            origin: "org.repl".into(),
            first: 5,
            last: 9,
            confirmed: 4,
        };
        assert_eq!(BatchHeader::parse(&h.render()), Ok(h));
        for bad in ["", "a;1-2", "a;2-1;0", ";1-2;0", "a;x-2;0", "a;1-2;0;7"] {
            assert!(BatchHeader::parse(bad).is_err(), "{bad}");
        }
        assert!(BatchHeader::parse(&format!("{};1-2;0", "o".repeat(200))).is_err());
        assert_eq!(
            parse_ranges(&render_ranges(&[(1, 2), (5, 9)])),
            Some(vec![(1, 2), (5, 9)])
        );
    }
}
