//! The backup ledger: a fold of the backup events of the control log, so that a node can
//! tell which backups and restores are running, how the recent ones ended, and when the
//! last good backup of each shard was taken.

use crate::projection::Projection;
use crate::proto::{
    event, BackupFailed, BackupFinished, BackupLedgerState, BackupOutcome, BackupStarted, Event,
};
use prost::Message;
use std::collections::{BTreeMap, VecDeque};

/// Finished operations the ledger remembers (the last good backup per shard is kept
/// whatever their number).
const RECENT_OUTCOMES: usize = 100;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackupLedger {
    /// By operation id.
    pub running: BTreeMap<String, BackupOutcome>,
    /// Oldest first.
    pub recent: VecDeque<BackupOutcome>,
    /// By shard id.
    pub last_good: BTreeMap<u64, BackupOutcome>,
}

/// One sub-state of the control state: it folds the backup events and passes over the
/// others'.
impl Projection for BackupLedger {
    fn apply(&mut self, event: &Event) {
        match &event.kind {
            Some(event::Kind::BackupStarted(started)) => {
                self.running.insert(
                    started.id.clone(),
                    BackupOutcome {
                        started: Some(started.clone()),
                        started_nanos: event.at_unix_nanos,
                        ..BackupOutcome::default()
                    },
                );
            }
            Some(event::Kind::BackupFinished(BackupFinished {
                id,
                bytes,
                duration_nanos,
            })) => {
                if let Some(mut outcome) = self.running.remove(id) {
                    outcome.ended_nanos = event.at_unix_nanos;
                    outcome.ok = true;
                    outcome.bytes = *bytes;
                    outcome.duration_nanos = *duration_nanos;
                    if let Some(s) = outcome.started.as_ref() {
                        if !s.restore && s.subject == "shard" {
                            self.last_good.insert(s.shard_id, outcome.clone());
                        }
                    }
                    self.remember(outcome);
                }
            }
            Some(event::Kind::BackupFailed(BackupFailed { id, reason })) => {
                if let Some(mut outcome) = self.running.remove(id) {
                    outcome.ended_nanos = event.at_unix_nanos;
                    outcome.reason = reason.clone();
                    outcome.duration_nanos =
                        event.at_unix_nanos.saturating_sub(outcome.started_nanos) as u64;
                    self.remember(outcome);
                }
            }
            _ => {}
        }
    }

    fn encode_snapshot(&self) -> Vec<u8> {
        self.to_state().encode_to_vec()
    }

    fn decode_snapshot(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        Ok(BackupLedger::from_state(BackupLedgerState::decode(bytes)?))
    }
}

impl BackupLedger {
    fn remember(&mut self, outcome: BackupOutcome) {
        self.recent.push_back(outcome);
        while self.recent.len() > RECENT_OUTCOMES {
            self.recent.pop_front();
        }
    }

    pub fn to_state(&self) -> BackupLedgerState {
        BackupLedgerState {
            running: self.running.values().cloned().collect(),
            recent: self.recent.iter().cloned().collect(),
            last_good: self.last_good.values().cloned().collect(),
        }
    }

    pub fn from_state(state: BackupLedgerState) -> Self {
        let id = |o: &BackupOutcome| o.started.as_ref().map(|s| s.id.clone()).unwrap_or_default();
        BackupLedger {
            running: state.running.into_iter().map(|o| (id(&o), o)).collect(),
            recent: state.recent.into(),
            last_good: state
                .last_good
                .into_iter()
                .map(|o| (o.started.as_ref().map_or(0, |s| s.shard_id), o))
                .collect(),
        }
    }
}

/// The event that starts an operation.
pub fn started(started: BackupStarted) -> Event {
    crate::clock::stamped(event::Kind::BackupStarted(started))
}

pub fn finished(id: &str, bytes: u64, duration: std::time::Duration) -> Event {
    crate::clock::stamped(event::Kind::BackupFinished(BackupFinished {
        id: id.to_owned(),
        bytes,
        duration_nanos: duration.as_nanos() as u64,
    }))
}

pub fn failed(id: &str, reason: &str) -> Event {
    crate::clock::stamped(event::Kind::BackupFailed(BackupFailed {
        id: id.to_owned(),
        reason: reason.to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard_backup(id: &str, shard: u64) -> BackupStarted {
        BackupStarted {
            id: id.into(),
            subject: "shard".into(),
            shard_id: shard,
            ..BackupStarted::default()
        }
    }

    #[test]
    fn last_good_backup_is_the_newest_finished_one_and_failures_do_not_replace_it() {
        let mut ledger = BackupLedger::default();
        ledger.apply(&started(shard_backup("a", 7)));
        assert!(ledger.running.contains_key("a"));
        ledger.apply(&finished("a", 100, std::time::Duration::from_millis(5)));
        ledger.apply(&started(shard_backup("b", 7)));
        ledger.apply(&failed("b", "client went away"));
        assert!(ledger.running.is_empty());
        let good = &ledger.last_good[&7];
        assert_eq!((good.bytes, good.ok), (100, true));
        assert_eq!(ledger.recent.len(), 2);
        assert_eq!(ledger.recent[1].reason, "client went away");
        assert_eq!(BackupLedger::from_state(ledger.to_state()), ledger);
    }

    #[test]
    fn restores_are_listed_but_are_not_backups() {
        let mut ledger = BackupLedger::default();
        ledger.apply(&started(BackupStarted {
            restore: true,
            ..shard_backup("r", 9)
        }));
        ledger.apply(&finished("r", 1, std::time::Duration::ZERO));
        assert!(ledger.last_good.is_empty());
        assert!(ledger.recent[0].ok);
    }
}
