//! The catalog's shards: created for the shard groups writes reach, dropped, and expired
//! past their retention policy.

use super::{Catalog, CatalogError};
use crate::clock::stamped;
use crate::placement::ShardInfo;
use crate::proto::{event, Event, ShardCreated, ShardDropped};

impl Catalog {
    pub fn shards(&self) -> impl Iterator<Item = ShardInfo> + '_ {
        self.databases
            .values()
            .flat_map(|db| db.shards.iter())
            .map(|s| ShardInfo {
                id: s.shard_id,
                database: s.database.clone(),
                retention_policy: s.retention_policy.clone(),
                start: s.start_nanos,
                end: s.end_nanos,
                incarnation: s.incarnation,
            })
    }

    /// Events that create the shards not known yet. A known id with another identity is a
    /// collision of the derived ids, refused rather than mixing two shards' data.
    pub fn create_shards(&self, shards: &[ShardInfo]) -> Result<Vec<Event>, CatalogError> {
        let mut events = Vec::new();
        for s in shards {
            let known = self
                .databases
                .get(&s.database)
                .and_then(|d| d.shards.iter().find(|k| k.shard_id == s.id));
            match known {
                Some(k) if k.start_nanos != s.start || k.retention_policy != s.retention_policy => {
                    return Err(CatalogError::ShardIdCollision {
                        id: s.id,
                        database: s.database.clone(),
                        policy: s.retention_policy.clone(),
                        start: s.start,
                    });
                }
                Some(_) => {}
                None => events.push(stamped(event::Kind::ShardCreated(ShardCreated {
                    database: s.database.clone(),
                    retention_policy: s.retention_policy.clone(),
                    shard_id: s.id,
                    start_nanos: s.start,
                    end_nanos: s.end,
                    restored_from: Vec::new(),
                    incarnation: crate::placement::new_incarnation(),
                }))),
            }
        }
        Ok(events)
    }

    /// Events that drop shards, e.g. those past their policy's retention.
    pub fn drop_shards(&self, shards: &[ShardInfo]) -> Vec<Event> {
        shards
            .iter()
            .map(|s| {
                stamped(event::Kind::ShardDropped(ShardDropped {
                    database: s.database.clone(),
                    retention_policy: s.retention_policy.clone(),
                    shard_id: s.id,
                }))
            })
            .collect()
    }

    /// Shards whose whole interval is older than their policy keeps, at `now`.
    pub fn expired_shards(&self, now: i64) -> Vec<ShardInfo> {
        self.shards()
            .filter(|s| {
                let policy = self
                    .databases
                    .get(&s.database)
                    .and_then(|d| d.policies.get(&s.retention_policy));
                policy.is_some_and(|p| {
                    p.duration_nanos > 0 && s.end < now.saturating_sub(p.duration_nanos)
                })
            })
            .collect()
    }
}
