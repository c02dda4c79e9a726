//! Databases and their retention policies.

use super::{Catalog, CatalogError, DAY, DEFAULT_POLICY, HOUR};
use crate::clock::stamped;
use crate::proto::{
    event, DatabaseCreated, DatabaseDropped, Event, RetentionPolicyAltered, RetentionPolicyCreated,
    RetentionPolicyDropped, RetentionPolicySpec,
};

/// InfluxDB's shard-group duration for a retention policy duration (0 = infinite).
pub(crate) fn shard_group_duration(policy_duration: i64) -> i64 {
    match policy_duration {
        d if d > 0 && d < 2 * DAY => HOUR,
        d if d > 0 && d <= 180 * DAY => DAY,
        _ => 7 * DAY,
    }
}

impl Catalog {
    /// Events that create `name` (none if it exists: InfluxDB treats that as success).
    pub fn create_database(
        &self,
        name: &str,
        policy: Option<RetentionPolicySpec>,
    ) -> Result<Vec<Event>, CatalogError> {
        if name.is_empty() {
            return Err(CatalogError::InvalidName);
        }
        if self.databases.contains_key(name) {
            return Ok(Vec::new());
        }
        let mut policy = policy.unwrap_or_else(|| RetentionPolicySpec {
            name: DEFAULT_POLICY.into(),
            duration_nanos: 0,
            shard_group_duration_nanos: 0,
            replication: 1,
        });
        if policy.shard_group_duration_nanos == 0 {
            policy.shard_group_duration_nanos = shard_group_duration(policy.duration_nanos);
        }
        Ok(vec![stamped(event::Kind::DatabaseCreated(
            DatabaseCreated {
                name: name.into(),
                default_policy: Some(policy),
            },
        ))])
    }

    pub fn drop_database(&self, name: &str) -> Vec<Event> {
        if !self.databases.contains_key(name) {
            return Vec::new();
        }
        vec![stamped(event::Kind::DatabaseDropped(DatabaseDropped {
            name: name.into(),
        }))]
    }

    pub fn create_policy(
        &self,
        database: &str,
        mut policy: RetentionPolicySpec,
        make_default: bool,
    ) -> Result<Vec<Event>, CatalogError> {
        let db = self
            .databases
            .get(database)
            .ok_or_else(|| CatalogError::DatabaseNotFound(database.into()))?;
        if policy.duration_nanos != 0 && policy.duration_nanos < HOUR {
            return Err(CatalogError::DurationTooLow);
        }
        if policy.shard_group_duration_nanos == 0 {
            policy.shard_group_duration_nanos = shard_group_duration(policy.duration_nanos);
        }
        if let Some(existing) = db.policies.get(&policy.name) {
            // InfluxDB accepts re-creating an identical policy.
            let same = *existing == policy && (!make_default || db.default_policy == policy.name);
            return if same {
                Ok(Vec::new())
            } else {
                Err(CatalogError::PolicyExists)
            };
        }
        Ok(vec![stamped(event::Kind::RetentionPolicyCreated(
            RetentionPolicyCreated {
                database: database.into(),
                policy: Some(policy),
                make_default,
            },
        ))])
    }

    /// Whether `database` exists and has the policy `name`.
    pub fn has_policy(&self, database: &str, name: &str) -> bool {
        self.databases
            .get(database)
            .is_some_and(|db| db.policies.contains_key(name))
    }

    /// Dropping a policy that is not there, of a database that is not there either, is
    /// not an error, as in 1.x.
    pub fn drop_policy(&self, database: &str, name: &str) -> Result<Vec<Event>, CatalogError> {
        if !self.has_policy(database, name) {
            return Ok(Vec::new());
        }
        Ok(vec![stamped(event::Kind::RetentionPolicyDropped(
            RetentionPolicyDropped {
                database: database.into(),
                name: name.into(),
            },
        ))])
    }

    pub fn alter_policy(&self, change: RetentionPolicyAltered) -> Result<Vec<Event>, CatalogError> {
        let db = self
            .databases
            .get(&change.database)
            .ok_or_else(|| CatalogError::DatabaseNotFound(change.database.clone()))?;
        if !db.policies.contains_key(&change.name) {
            return Err(CatalogError::PolicyNotFound(change.name));
        }
        if change.duration_nanos.is_some_and(|d| d != 0 && d < HOUR) {
            return Err(CatalogError::DurationTooLow);
        }
        Ok(vec![stamped(event::Kind::RetentionPolicyAltered(change))])
    }
}
