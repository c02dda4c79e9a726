//! Anti-entropy repairs: a sub-state of the control state. The queue of shards to repair
//! (in the order they were queued), those being repaired, and the latest outcomes, each a
//! fold of durable events: so the queue and its progress survive a restart or a kill -9,
//! and a repair that was under way is taken up again from the start (its leaves applied
//! again change nothing: last write wins by the versions they carry).

use crate::clock::stamped;
use crate::placement::ShardInfo;
use crate::projection::Projection;
use crate::proto::{
    event, Event, QueuedRepair, RepairCancelled, RepairFailed, RepairFinished, RepairOutcome,
    RepairQueued, RepairStarted, RepairsState,
};
use prost::Message;
use std::collections::VecDeque;

/// Outcomes kept for `/shard-repair/status`.
pub(crate) const RECENT_KEPT: usize = 32;

/// Why a repair was queued.
pub(crate) const BY_OPERATOR: &str = "operator";
pub(crate) const MISSING: &str = "missing";
/// Queued by the node for a shard it holds quarantined (damaged) and a peer holds whole.
pub(crate) const DAMAGED: &str = "damaged";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Repairs {
    /// In the order they were queued.
    pub queued: Vec<QueuedRepair>,
    /// Started, not yet finished, failed or cancelled.
    pub processing: Vec<QueuedRepair>,
    /// Newest last.
    pub recent: VecDeque<RepairOutcome>,
}

impl Projection for Repairs {
    fn apply(&mut self, event: &Event) {
        use event::Kind;
        let at = event.at_unix_nanos;
        match &event.kind {
            Some(Kind::RepairQueued(q)) if !self.is_queued(q.shard_id) => {
                self.queued.push(QueuedRepair {
                    shard_id: q.shard_id,
                    queued_at_unix_nanos: at,
                    reason: q.reason.clone(),
                    database: q.database.clone(),
                    retention_policy: q.retention_policy.clone(),
                    start_nanos: q.start_nanos,
                    end_nanos: q.end_nanos,
                });
            }
            Some(Kind::RepairStarted(s)) => {
                let queued = match self.queued.iter().position(|q| q.shard_id == s.shard_id) {
                    Some(i) => self.queued.remove(i),
                    None => QueuedRepair {
                        shard_id: s.shard_id,
                        queued_at_unix_nanos: at,
                        reason: BY_OPERATOR.into(),
                        ..QueuedRepair::default()
                    },
                };
                if !self.is_processing(s.shard_id) {
                    self.processing.push(queued);
                }
            }
            Some(Kind::RepairFinished(f)) => {
                self.processing.retain(|p| p.shard_id != f.shard_id);
                self.remember(RepairOutcome {
                    shard_id: f.shard_id,
                    outcome: "finished".into(),
                    at_unix_nanos: at,
                    finished: Some(*f),
                    reason: String::new(),
                });
            }
            Some(Kind::RepairFailed(f)) => {
                self.processing.retain(|p| p.shard_id != f.shard_id);
                self.remember(RepairOutcome {
                    shard_id: f.shard_id,
                    outcome: "failed".into(),
                    at_unix_nanos: at,
                    finished: None,
                    reason: f.reason.clone(),
                });
            }
            Some(Kind::RepairCancelled(c)) => {
                let was = self.is_queued(c.shard_id) || self.is_processing(c.shard_id);
                self.queued.retain(|q| q.shard_id != c.shard_id);
                self.processing.retain(|q| q.shard_id != c.shard_id);
                if was {
                    self.remember(RepairOutcome {
                        shard_id: c.shard_id,
                        outcome: "cancelled".into(),
                        at_unix_nanos: at,
                        finished: None,
                        reason: String::new(),
                    });
                }
            }
            _ => {}
        }
    }

    fn encode_snapshot(&self) -> Vec<u8> {
        self.to_state().encode_to_vec()
    }

    fn decode_snapshot(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        Ok(Repairs::from_state(RepairsState::decode(bytes)?))
    }
}

impl Repairs {
    pub fn to_state(&self) -> RepairsState {
        RepairsState {
            queued: self.queued.clone(),
            processing: self.processing.clone(),
            recent: self.recent.iter().cloned().collect(),
        }
    }

    pub fn from_state(state: RepairsState) -> Repairs {
        Repairs {
            queued: state.queued,
            processing: state.processing,
            recent: state.recent.into(),
        }
    }

    pub fn is_queued(&self, shard: u64) -> bool {
        self.queued.iter().any(|q| q.shard_id == shard)
    }

    pub fn is_processing(&self, shard: u64) -> bool {
        self.processing.iter().any(|q| q.shard_id == shard)
    }

    fn remember(&mut self, outcome: RepairOutcome) {
        self.recent.push_back(outcome);
        while self.recent.len() > RECENT_KEPT {
            self.recent.pop_front();
        }
    }

    /// Queues a repair of `shard` (nothing if it is queued already).
    pub fn queue(&self, shard: u64, reason: &str) -> Vec<Event> {
        if self.is_queued(shard) {
            return Vec::new();
        }
        vec![stamped(event::Kind::RepairQueued(RepairQueued {
            shard_id: shard,
            reason: reason.to_owned(),
            ..RepairQueued::default()
        }))]
    }

    /// Queues the fetch of a shard a peer holds and the catalog here does not know
    /// (nothing if it is queued or under way already): the event carries the shard's
    /// identity, since the catalog learns of the shard only once its copy is swapped in.
    pub fn queue_missing(&self, shard: &ShardInfo) -> Vec<Event> {
        if self.is_queued(shard.id) || self.is_processing(shard.id) {
            return Vec::new();
        }
        vec![stamped(event::Kind::RepairQueued(RepairQueued {
            shard_id: shard.id,
            reason: MISSING.to_owned(),
            database: shard.database.clone(),
            retention_policy: shard.retention_policy.clone(),
            start_nanos: shard.start,
            end_nanos: shard.end,
        }))]
    }

    /// The identity of a shard queued (or under way) as missing here, as the peer listed it.
    pub fn missing_shard(&self, shard: u64) -> Option<ShardInfo> {
        let q = self
            .processing
            .iter()
            .chain(&self.queued)
            .find(|q| q.shard_id == shard && q.reason == MISSING && !q.database.is_empty())?;
        Some(ShardInfo {
            id: q.shard_id,
            incarnation: 0,
            database: q.database.clone(),
            retention_policy: q.retention_policy.clone(),
            start: q.start_nanos,
            end: q.end_nanos,
        })
    }

    /// Removes `shard` from the queue (and stops its repair if it runs); nothing if it is
    /// neither queued nor under way.
    pub fn cancel(&self, shard: u64) -> Vec<Event> {
        if !self.is_queued(shard) && !self.is_processing(shard) {
            return Vec::new();
        }
        vec![stamped(event::Kind::RepairCancelled(RepairCancelled {
            shard_id: shard,
        }))]
    }
}

pub(crate) fn started(shard: u64) -> Event {
    stamped(event::Kind::RepairStarted(RepairStarted {
        shard_id: shard,
    }))
}

pub(crate) fn finished(f: RepairFinished) -> Event {
    stamped(event::Kind::RepairFinished(f))
}

pub(crate) fn failed(shard: u64, reason: String) -> Event {
    stamped(event::Kind::RepairFailed(RepairFailed {
        shard_id: shard,
        reason,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repair_is_queued_once_started_and_finished_in_order() {
        let mut r = Repairs::default();
        for shard in [3, 5, 3, 9] {
            for e in r.queue(shard, BY_OPERATOR) {
                r.apply(&e);
            }
        }
        let ids = |v: &[QueuedRepair]| v.iter().map(|q| q.shard_id).collect::<Vec<_>>();
        assert_eq!(ids(&r.queued), [3, 5, 9]);
        r.apply(&started(3));
        r.apply(&started(9));
        assert_eq!((ids(&r.queued), ids(&r.processing)), (vec![5], vec![3, 9]));
        r.apply(&finished(RepairFinished {
            shard_id: 3,
            points_received: 10,
            ..RepairFinished::default()
        }));
        r.apply(&failed(9, "peer down".into()));
        for e in r.cancel(5) {
            r.apply(&e);
        }
        assert!(r.cancel(5).is_empty());
        assert!(r.queued.is_empty() && r.processing.is_empty());
        let outcomes: Vec<&str> = r.recent.iter().map(|o| o.outcome.as_str()).collect();
        assert_eq!(outcomes, ["finished", "failed", "cancelled"]);
        assert_eq!(Repairs::from_state(r.to_state()), r);
    }

    #[test]
    fn a_missing_shard_is_queued_once_with_its_identity_through_a_restart() {
        let info = ShardInfo {
            id: 7,
            incarnation: 0,
            database: "db".into(),
            retention_policy: "autogen".into(),
            start: 100,
            end: 200,
        };
        let mut r = Repairs::default();
        r.apply(&r.queue_missing(&info)[0].clone());
        assert!(r.queue_missing(&info).is_empty());
        r.apply(&started(7));
        // Under way (the catalog still lacks the shard): not queued again by a check.
        assert!(r.queue_missing(&info).is_empty());
        let restarted = Repairs::from_state(r.to_state());
        assert_eq!(restarted.missing_shard(7), Some(info));
        assert_eq!(restarted.missing_shard(8), None);
    }

    #[test]
    fn a_cancel_stops_a_repair_under_way() {
        let mut r = Repairs::default();
        r.apply(&r.queue(1, BY_OPERATOR)[0].clone());
        r.apply(&started(1));
        let cancel = r.cancel(1);
        assert_eq!(cancel.len(), 1);
        r.apply(&cancel[0]);
        assert!(!r.is_processing(1));
    }
}
