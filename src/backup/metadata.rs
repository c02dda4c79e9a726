//! Control-state backups in InfluxDB 2's shapes: the kv snapshot, the bucket manifests
//! (`BucketMetadataManifest` of InfluxDB 2's API: buckets, their retention policies, shard
//! groups and shards), and restoring one bucket under a new name with new shard ids.

use super::BackupError;
use crate::catalog::Catalog;
use crate::projection::Projection;
use crate::proto::{
    event, BucketCreated, CatalogState, DatabaseCreated, Event, RetentionPolicyCreated,
    RetentionPolicySpec, ShardCreated, TokenCreated,
};
use crate::query::format::{parse_rfc3339, rfc3339_nanos};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketMetadataManifest {
    #[serde(rename = "organizationID")]
    pub organization_id: String,
    pub organization_name: String,
    #[serde(rename = "bucketID")]
    pub bucket_id: String,
    pub bucket_name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub default_retention_policy: String,
    pub retention_policies: Vec<RetentionPolicyManifest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicyManifest {
    pub name: String,
    #[serde(rename = "replicaN")]
    pub replica_n: u32,
    /// Nanoseconds, 0: infinite.
    pub duration: i64,
    pub shard_group_duration: i64,
    pub shard_groups: Vec<ShardGroupManifest>,
    #[serde(default)]
    pub subscriptions: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardGroupManifest {
    pub id: u64,
    pub start_time: String,
    pub end_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_at: Option<String>,
    pub shards: Vec<ShardManifestEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardManifestEntry {
    pub id: u64,
    #[serde(default)]
    pub shard_owners: Vec<ShardOwner>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardOwner {
    #[serde(rename = "nodeID")]
    pub node_id: u64,
}

/// InfluxDB 2's answer to `POST /api/v2/restore/bucketMetadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoredBucketMappings {
    pub id: String,
    pub name: String,
    pub shard_mappings: Vec<ShardMapping>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardMapping {
    pub old_id: u64,
    pub new_id: u64,
}

/// The kv snapshot: the catalog projection's state, prost-encoded.
pub fn kv_snapshot(catalog: &Catalog) -> Vec<u8> {
    catalog.encode_snapshot()
}

/// The event replacing the control state by a kv snapshot; refuses bytes that are not one.
pub fn restore_kv_event(bytes: &[u8]) -> Result<Event, BackupError> {
    use prost::Message;
    let state = CatalogState::decode(bytes)
        .map_err(|e| BackupError::BadArchive(format!("kv snapshot does not decode: {e}")))?;
    Ok(crate::catalog::event(event::Kind::CatalogRestored(
        crate::proto::CatalogRestored { state: Some(state) },
    )))
}

/// A new token for the operator of a restored kv snapshot, and the event that creates it.
/// InfluxDB 2 answers a kv restore with the operator token the restored store holds, so
/// that the restore can go on (and the operator get in) whatever token it began with;
/// tokens are kept here only as digests, so a new one is minted for the operator: the
/// first admin user (by name) that held a token, in that token's organization, else the
/// first admin in the first organization. None when the snapshot has no admin user or no
/// organization (a node used only through the 1.x API).
pub fn operator_token_event(state: &CatalogState) -> Option<(String, Event)> {
    let mut admins: Vec<_> = state.users.iter().filter(|u| u.admin).collect();
    admins.sort_by(|a, b| a.name.cmp(&b.name));
    let known_org = |id: &str| state.orgs.iter().any(|o| o.id == id);
    let (user, org_id) = admins
        .iter()
        .find_map(|u| {
            state
                .tokens
                .iter()
                .find(|t| t.user_id == u.id && known_org(&t.org_id))
                .map(|t| (*u, t.org_id.clone()))
        })
        .or_else(|| {
            let org = state.orgs.iter().min_by(|a, b| a.name.cmp(&b.name))?;
            admins.first().map(|u| (*u, org.id.clone()))
        })?;
    let (token, digest) = crate::auth::new_token();
    let created = TokenCreated {
        id: crate::auth::new_id(),
        token_sha256: digest,
        org_id,
        user_id: user.id.clone(),
        description: format!("{}'s Token (minted by a kv restore)", user.name),
        permissions: Vec::new(),
    };
    Some((
        token,
        crate::catalog::event(event::Kind::TokenCreated(created)),
    ))
}

/// One manifest per database: its bucket's identity if it has one (a database made
/// through the 1.x API has none and is listed under its own name, with no organization).
pub fn bucket_manifests(catalog: &Catalog) -> Vec<BucketMetadataManifest> {
    catalog
        .databases
        .iter()
        .map(|(name, db)| {
            let bucket = catalog.buckets.values().find(|b| &b.database == name);
            let org = bucket.and_then(|b| catalog.orgs.get(&b.org_id));
            let policies = db
                .policies
                .values()
                .map(|p| RetentionPolicyManifest {
                    name: p.name.clone(),
                    replica_n: p.replication,
                    duration: p.duration_nanos,
                    shard_group_duration: p.shard_group_duration_nanos,
                    shard_groups: db
                        .shards
                        .iter()
                        .filter(|s| s.retention_policy == p.name)
                        .map(|s| ShardGroupManifest {
                            id: s.shard_id,
                            start_time: rfc3339_nanos(s.start_nanos),
                            end_time: rfc3339_nanos(s.end_nanos),
                            deleted_at: None,
                            truncated_at: None,
                            shards: vec![ShardManifestEntry {
                                id: s.shard_id,
                                shard_owners: vec![ShardOwner { node_id: 1 }],
                            }],
                        })
                        .collect(),
                    subscriptions: Vec::new(),
                })
                .collect();
            BucketMetadataManifest {
                organization_id: bucket.map(|b| b.org_id.clone()).unwrap_or_default(),
                organization_name: org.map(|o| o.name.clone()).unwrap_or_default(),
                bucket_id: bucket.map(|b| b.id.clone()).unwrap_or_default(),
                bucket_name: bucket.map_or_else(|| name.clone(), |b| b.name.clone()),
                description: None,
                default_retention_policy: db.default_policy.clone(),
                retention_policies: policies,
            }
        })
        .collect()
}

/// Events creating the bucket of `manifest` (named `manifest.bucket_name`) with its
/// retention policies and shards, under new shard ids (derived from the new database
/// name); the answer maps old ids to new ones.
pub fn restore_bucket_events(
    catalog: &Catalog,
    manifest: &BucketMetadataManifest,
    new_bucket_id: String,
) -> Result<(Vec<Event>, RestoredBucketMappings), BackupError> {
    let name = manifest.bucket_name.as_str();
    if name.is_empty() {
        return Err(BackupError::BadArchive("bucketName is empty".into()));
    }
    if catalog.databases.contains_key(name) || catalog.buckets.values().any(|b| b.name == name) {
        return Err(BackupError::Conflict(format!(
            "bucket {name:?} already exists"
        )));
    }
    let org_id = if manifest.organization_id.is_empty() && manifest.organization_name.is_empty() {
        None
    } else {
        let org = catalog
            .orgs
            .get(&manifest.organization_id)
            .or_else(|| {
                catalog
                    .orgs
                    .values()
                    .find(|o| o.name == manifest.organization_name)
            })
            .ok_or(BackupError::Catalog(
                crate::catalog::CatalogError::OrgNotFound,
            ))?;
        Some(org.id.clone())
    };
    let default = manifest
        .retention_policies
        .iter()
        .find(|p| p.name == manifest.default_retention_policy)
        .ok_or_else(|| {
            BackupError::BadArchive(format!(
                "default retention policy {:?} is not among the retention policies",
                manifest.default_retention_policy
            ))
        })?;
    let spec = |p: &RetentionPolicyManifest| RetentionPolicySpec {
        name: p.name.clone(),
        duration_nanos: p.duration,
        shard_group_duration_nanos: p.shard_group_duration,
        replication: p.replica_n.max(1),
    };
    let mut events = vec![crate::catalog::event(event::Kind::DatabaseCreated(
        DatabaseCreated {
            name: name.to_owned(),
            default_policy: Some(spec(default)),
        },
    ))];
    for p in manifest
        .retention_policies
        .iter()
        .filter(|p| p.name != default.name)
    {
        events.push(crate::catalog::event(event::Kind::RetentionPolicyCreated(
            RetentionPolicyCreated {
                database: name.to_owned(),
                policy: Some(spec(p)),
                make_default: false,
            },
        )));
    }
    let mut mappings = Vec::new();
    for p in &manifest.retention_policies {
        for group in &p.shard_groups {
            let time = |s: &str| {
                parse_rfc3339(s).ok_or_else(|| {
                    BackupError::BadArchive(format!("invalid shard group time {s:?}"))
                })
            };
            let (start, end) = (time(&group.start_time)?, time(&group.end_time)?);
            let new_id = crate::storage::shard_id(name, &p.name, start);
            events.push(crate::catalog::event(event::Kind::ShardCreated(
                ShardCreated {
                    database: name.to_owned(),
                    retention_policy: p.name.clone(),
                    shard_id: new_id,
                    start_nanos: start,
                    end_nanos: end,
                },
            )));
            for shard in &group.shards {
                mappings.push(ShardMapping {
                    old_id: shard.id,
                    new_id,
                });
            }
        }
    }
    let id = match org_id {
        Some(org_id) => {
            events.push(crate::catalog::event(event::Kind::BucketCreated(
                BucketCreated {
                    id: new_bucket_id.clone(),
                    org_id,
                    name: name.to_owned(),
                    database: name.to_owned(),
                    retention_policy: default.name.clone(),
                },
            )));
            new_bucket_id
        }
        None => String::new(),
    };
    // The events must apply cleanly: check on a copy before anything is appended.
    let mut check = catalog.clone();
    for e in &events {
        check.apply(e);
    }
    Ok((
        events,
        RestoredBucketMappings {
            id,
            name: name.to_owned(),
            shard_mappings: mappings,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_restored_under_a_new_name_gets_its_policies_and_new_shard_ids() {
        let mut c = Catalog::default();
        for e in c.create_database("db", None).unwrap() {
            c.apply(&e);
        }
        let shard = crate::storage::ShardInfo::of_group("db", "autogen", 0, 7 * 86_400_000_000_000);
        for e in c.create_shards(std::slice::from_ref(&shard)).unwrap() {
            c.apply(&e);
        }
        let mut manifest = bucket_manifests(&c).remove(0);
        assert_eq!(manifest.bucket_name, "db");
        assert_eq!(
            manifest.retention_policies[0].shard_groups[0].shards[0].id,
            shard.id
        );
        assert!(matches!(
            restore_bucket_events(&c, &manifest, "b".into()),
            Err(BackupError::Conflict(_))
        ));
        manifest.bucket_name = "copy".into();
        let (events, answer) = restore_bucket_events(&c, &manifest, "b".into()).unwrap();
        for e in &events {
            c.apply(e);
        }
        let new_id = crate::storage::shard_id("copy", "autogen", 0);
        assert_eq!(
            answer.shard_mappings,
            vec![ShardMapping {
                old_id: shard.id,
                new_id
            }]
        );
        assert!(c.shards().any(|s| s.id == new_id && s.database == "copy"));
    }
}
