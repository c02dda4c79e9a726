//! The control state: what the control log's events fold into, as independent sub-states.
//! Each sub-state owns its kinds of event and folds only those; [`ControlState`] hands
//! every event to its owner. So a sub-state (the catalog, the backup ledger, and those to
//! come: repairs, replications, remotes) is decided on, read and tested without the others,
//! and none of them knows the others exist.
//!
//! A snapshot is one `CatalogState` message, named from when the catalog held everything:
//! the catalog's fields, `backups` (the ledger's) and `replications`.
//!
//! A kv restore (`CatalogRestored`) replaces the catalog only: the node's backup ledger,
//! remotes and replications go on, and a replication's queue resumes where it was (its
//! position is in this node's data log, which a restored kv state knows nothing of). Its encoding is the one written before
//! the control state was split, so earlier snapshots and kv backups read unchanged.

pub mod backups;
pub(crate) mod inbound;
pub(crate) mod repairs;
pub(crate) mod replications;

use crate::catalog::Catalog;
use crate::projection::{EventLog, Projection};
use crate::proto::{event, CatalogState, Event};
use backups::BackupLedger;
use inbound::InboundBatches;
use prost::Message;
use repairs::Repairs;
use replications::Replications;

/// The control log and the state folded from it.
pub type ControlLog = EventLog<ControlState>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ControlState {
    /// Databases, policies, shards, users, orgs, buckets, tokens.
    pub catalog: Catalog,
    /// Backups and restores, running and done.
    pub backups: BackupLedger,
    /// Remotes and replications, with each replication's progress.
    pub replications: Replications,
    /// Anti-entropy repairs: queued, under way, the latest outcomes.
    pub repairs: Repairs,
    /// Batches other nodes' replications delivered here, so that a resend is not applied
    /// twice.
    pub inbound: InboundBatches,
}

impl ControlState {
    /// The state a snapshot (or a kv backup) holds.
    pub fn from_state(mut state: CatalogState) -> ControlState {
        let backups = BackupLedger::from_state(state.backups.take().unwrap_or_default());
        let replications = Replications::from_state(state.replications.take().unwrap_or_default());
        let repairs = Repairs::from_state(state.repairs.take().unwrap_or_default());
        let inbound = InboundBatches::from_state(state.inbound.take().unwrap_or_default());
        ControlState {
            inbound,
            catalog: Catalog::from_state(state),
            backups,
            replications,
            repairs,
        }
    }

    pub fn to_state(&self) -> CatalogState {
        CatalogState {
            backups: Some(self.backups.to_state()),
            replications: Some(self.replications.to_state()),
            repairs: Some(self.repairs.to_state()),
            inbound: Some(self.inbound.to_state()),
            ..self.catalog.to_state()
        }
    }
}

impl Projection for ControlState {
    fn apply(&mut self, event: &Event) {
        use event::Kind;
        // A kind this build does not know decodes as none: skipped, as the proto says.
        let Some(kind) = &event.kind else {
            return;
        };
        // Every kind is named, so that a new one cannot be added without an owner.
        match kind {
            Kind::DatabaseCreated(_)
            | Kind::DatabaseDropped(_)
            | Kind::RetentionPolicyCreated(_)
            | Kind::RetentionPolicyAltered(_)
            | Kind::RetentionPolicyDropped(_)
            | Kind::ShardCreated(_)
            | Kind::ShardDropped(_)
            | Kind::UserCreated(_)
            | Kind::UserDropped(_)
            | Kind::UserPrivilegeSet(_)
            | Kind::UserAdminSet(_)
            | Kind::UserPasswordSet(_)
            | Kind::OrgCreated(_)
            | Kind::BucketCreated(_)
            | Kind::TokenCreated(_)
            | Kind::TokenDeleted(_)
            | Kind::ContinuousQueryCreated(_)
            | Kind::ContinuousQueryDropped(_)
            | Kind::ContinuousQueryRan(_)
            | Kind::SubscriptionCreated(_)
            | Kind::SubscriptionDropped(_)
            | Kind::CatalogRestored(_) => self.catalog.apply(event),
            // A bucket's replications go with it.
            Kind::BucketDeleted(_) => {
                self.catalog.apply(event);
                self.replications.apply(event);
            }
            Kind::RemoteCreated(_)
            | Kind::RemoteUpdated(_)
            | Kind::RemoteDeleted(_)
            | Kind::ReplicationCreated(_)
            | Kind::ReplicationUpdated(_)
            | Kind::ReplicationDeleted(_)
            | Kind::ReplicationDelivered(_)
            | Kind::ReplicationDropped(_)
            | Kind::ReplicationAttempt(_) => self.replications.apply(event),
            Kind::InboundBatchApplied(_) => self.inbound.apply(event),
            Kind::BackupStarted(_) | Kind::BackupFinished(_) | Kind::BackupFailed(_) => {
                self.backups.apply(event)
            }
            Kind::RepairQueued(_)
            | Kind::RepairStarted(_)
            | Kind::RepairFinished(_)
            | Kind::RepairFailed(_)
            | Kind::RepairCancelled(_) => self.repairs.apply(event),
            Kind::Blob(_) => {}
        }
    }

    fn encode_snapshot(&self) -> Vec<u8> {
        self.to_state().encode_to_vec()
    }

    fn decode_snapshot(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        Ok(ControlState::from_state(CatalogState::decode(bytes)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{BackupStarted, CatalogRestored};

    fn populated() -> ControlState {
        let mut state = ControlState::default();
        let events = state.catalog.create_database("db", None).unwrap();
        for e in &events {
            state.apply(e);
        }
        state.apply(&backups::started(BackupStarted {
            id: "op".into(),
            subject: "kv".into(),
            ..BackupStarted::default()
        }));
        state
    }

    #[test]
    fn each_event_reaches_the_sub_state_that_owns_it() {
        let state = populated();
        assert!(state.catalog.databases.contains_key("db"));
        assert!(state.backups.running.contains_key("op"));
    }

    /// The snapshot is the one message the catalog wrote when it held the ledger: its
    /// fields (the ledger's included) decode into both sub-states, and encode back the same.
    #[test]
    fn a_snapshot_is_one_catalog_state_holding_both_sub_states() {
        let state = populated();
        let bytes = state.encode_snapshot();
        let message = CatalogState::decode(bytes.as_slice()).unwrap();
        assert_eq!(message.databases.len(), 1);
        assert_eq!(message.backups.as_ref().unwrap().running.len(), 1);
        let decoded = ControlState::decode_snapshot(&bytes).unwrap();
        assert_eq!(decoded, state);
        assert_eq!(decoded.encode_snapshot(), bytes);
    }

    #[test]
    fn a_restored_catalog_keeps_the_nodes_own_ledger() {
        let mut state = populated();
        let mut restored = ControlState::default().to_state();
        restored.backups = Some(BackupLedger::default().to_state());
        state.apply(&crate::clock::stamped(event::Kind::CatalogRestored(
            CatalogRestored {
                state: Some(restored),
            },
        )));
        assert!(state.catalog.databases.is_empty());
        assert!(state.backups.running.contains_key("op"));
    }
}
