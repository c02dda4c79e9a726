//! Control-state backups in InfluxDB 2's shapes: the kv snapshot, the bucket manifests
//! (`BucketMetadataManifest` of InfluxDB 2's API: buckets, their retention policies, shard
//! groups and shards), and restoring one bucket under a new name with new shard ids.

use super::BackupError;
use crate::catalog::Catalog;
use crate::control::ControlState;
use crate::projection::Projection;
use crate::proto::{
    event, BucketCreated, CatalogState, DatabaseCreated, Event, RetentionPolicyCreated,
    RetentionPolicySpec, ShardCreated, TokenCreated,
};
use crate::query::format::{parse_rfc3339, rfc3339_nanos};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BucketMetadataManifest {
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
pub(crate) struct RetentionPolicyManifest {
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
pub(crate) struct ShardGroupManifest {
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
pub(crate) struct ShardManifestEntry {
    pub id: u64,
    #[serde(default)]
    pub shard_owners: Vec<ShardOwner>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ShardOwner {
    #[serde(rename = "nodeID")]
    pub node_id: u64,
}

/// InfluxDB 2's answer to `POST /api/v2/restore/bucketMetadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RestoredBucketMappings {
    pub id: String,
    pub name: String,
    pub shard_mappings: Vec<ShardMapping>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ShardMapping {
    pub old_id: u64,
    pub new_id: u64,
}

/// The kv snapshot: the control state's snapshot (see [`crate::control`]), behind a header that
/// makes a cut, padded or damaged copy detectable before anything is replaced:
///
/// ```text
///   0          8               16                 20
///   | SKKVSNP1 | length (u64 LE) | crc (u32 LE)    | CatalogState (length bytes)
/// ```
/// `crc` is the masked crc32c of the state's bytes (as the log's records are).
pub(crate) fn kv_snapshot(control: &ControlState) -> Vec<u8> {
    let state = control.encode_snapshot();
    let mut out = Vec::with_capacity(KV_HEADER_LEN + state.len());
    out.extend_from_slice(KV_MAGIC);
    out.extend_from_slice(&(state.len() as u64).to_le_bytes());
    out.extend_from_slice(&crate::log::format::mask(crc32c::crc32c(&state)).to_le_bytes());
    out.extend_from_slice(&state);
    out
}

const KV_MAGIC: &[u8; 8] = b"SKKVSNP1";
const KV_HEADER_LEN: usize = 20;

/// The state a kv snapshot holds, if `bytes` is exactly one whose checksum matches.
pub(crate) fn decode_kv_snapshot(bytes: &[u8]) -> Result<CatalogState, BackupError> {
    use prost::Message;
    let bad = |m: String| BackupError::BadArchive(format!("not a kv snapshot: {m}"));
    if bytes.len() < KV_HEADER_LEN || &bytes[..8] != KV_MAGIC {
        return Err(bad(format!(
            "{} bytes without the snapshot header (a kv backup of this format begins with {:?})",
            bytes.len(),
            String::from_utf8_lossy(KV_MAGIC)
        )));
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let stored = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
    let state = &bytes[KV_HEADER_LEN..];
    if state.len() as u64 != len {
        return Err(bad(format!(
            "the header says {len} bytes of state, the body holds {}: cut short or padded",
            state.len()
        )));
    }
    if crate::log::format::mask(crc32c::crc32c(state)) != stored {
        return Err(bad("checksum mismatch: the snapshot is damaged".into()));
    }
    CatalogState::decode(state).map_err(|e| bad(format!("the state does not decode: {e}")))
}

/// The event replacing the control state by a kv snapshot. Refuses bytes that are not one
/// whole snapshot of this format, a state that is not consistent, and (`require_admin`,
/// when auth is on) a state with no admin user: it would lock every user out and open
/// `/api/v2/setup` to anyone.
pub(crate) fn restore_kv_event(bytes: &[u8], require_admin: bool) -> Result<Event, BackupError> {
    let mut state = decode_kv_snapshot(bytes)?;
    check_state(&state)?;
    // The restored shards are new ones: none may take the records that the data log
    // still holds of a shard of the same id.
    for db in &mut state.databases {
        for shard in &mut db.shards {
            shard.incarnation = crate::placement::new_incarnation();
        }
    }
    if require_admin && !state.users.iter().any(|u| u.admin) {
        return Err(BackupError::BadArchive(
            "the kv snapshot has no admin user: with auth enabled, restoring it would leave no one able to administer the node and reopen /api/v2/setup".into(),
        ));
    }
    Ok(crate::clock::stamped(event::Kind::CatalogRestored(
        crate::proto::CatalogRestored { state: Some(state) },
    )))
}

const HOUR: i64 = 3_600_000_000_000;
/// Longest database, retention policy or bucket name accepted from a backup.
pub(crate) const MAX_NAME_BYTES: usize = 255;

/// A name as an error message shows it: no longer than a line.
fn shown(name: &str) -> String {
    const SHOWN_CHARS: usize = 64;
    if name.chars().count() <= SHOWN_CHARS {
        format!("{name:?}")
    } else {
        let head: String = name.chars().take(SHOWN_CHARS).collect();
        format!("{head:?}... ({} bytes)", name.len())
    }
}

/// InfluxDB 1.x's rule for database and retention policy names (`meta.ValidName`: not
/// empty, `.` or `..`, no `/` or `\\`, printable), and at most [`MAX_NAME_BYTES`].
fn check_name(what: &str, name: &str) -> Result<(), BackupError> {
    let problem = if name.is_empty() {
        "is empty"
    } else if name.len() > MAX_NAME_BYTES {
        "is longer than 255 bytes"
    } else if name == "." || name == ".." {
        "is . or .."
    } else if name.contains(['/', '\\']) {
        "contains / or \\"
    } else if name.chars().any(char::is_control) {
        "contains a control character"
    } else {
        return Ok(());
    };
    Err(BackupError::BadArchive(format!(
        "{what} name {} {problem}",
        shown(name)
    )))
}

/// A bucket name: a database name (above) that InfluxDB 2 also accepts as a bucket's (no
/// leading `_`, which is kept for system buckets; no `"`, which breaks queries).
fn check_bucket_name(name: &str) -> Result<(), BackupError> {
    check_name("bucket", name)?;
    let problem = if name.starts_with('_') {
        "starts with _ (reserved for system buckets)"
    } else if name.contains('"') {
        "contains a double quote"
    } else {
        return Ok(());
    };
    Err(BackupError::BadArchive(format!(
        "bucket name {} {problem}",
        shown(name)
    )))
}

/// A retention policy's durations (ns): the policy's 0 (infinite) or at least an hour, as
/// `CREATE RETENTION POLICY` requires; its shard groups' positive.
fn check_durations(
    what: &str,
    duration: i64,
    shard_group_duration: i64,
) -> Result<(), BackupError> {
    if duration < 0 || (duration != 0 && duration < HOUR) {
        return Err(BackupError::BadArchive(format!(
            "{what}: duration {duration} ns is neither 0 (infinite) nor at least 1h"
        )));
    }
    if shard_group_duration <= 0 {
        return Err(BackupError::BadArchive(format!(
            "{what}: shard group duration {shard_group_duration} ns is not positive"
        )));
    }
    Ok(())
}

/// What the catalog always holds, checked on a restored state: valid and unique names,
/// default policies that exist, shards of known policies with their derived ids and a
/// positive interval, ids unique, privileges, buckets and tokens that refer to what
/// exists.
fn check_state(state: &CatalogState) -> Result<(), BackupError> {
    use std::collections::HashSet;
    let bad = |m: String| {
        Err(BackupError::BadArchive(format!(
            "inconsistent kv snapshot: {m}"
        )))
    };
    let mut databases = HashSet::new();
    let mut shard_ids = HashSet::new();
    for db in &state.databases {
        check_name("database", &db.name)?;
        if !databases.insert(db.name.as_str()) {
            return bad(format!("database {} appears twice", shown(&db.name)));
        }
        let mut policies = HashSet::new();
        for p in &db.policies {
            check_name("retention policy", &p.name)?;
            check_durations(
                &format!("retention policy {}.{}", db.name, p.name),
                p.duration_nanos,
                p.shard_group_duration_nanos,
            )?;
            if !policies.insert(p.name.as_str()) {
                return bad(format!(
                    "policy {} of {} appears twice",
                    shown(&p.name),
                    db.name
                ));
            }
        }
        if !db.default_policy.is_empty() && !policies.contains(db.default_policy.as_str()) {
            return bad(format!("default policy of {} does not exist", db.name));
        }
        for s in &db.shards {
            if s.database != db.name || !policies.contains(s.retention_policy.as_str()) {
                return bad(format!(
                    "shard {} is not of a policy of {}",
                    s.shard_id, db.name
                ));
            }
            if s.start_nanos >= s.end_nanos {
                return bad(format!("shard {} ends before it starts", s.shard_id));
            }
            if s.shard_id
                != crate::placement::shard_id(&db.name, &s.retention_policy, s.start_nanos)
            {
                return bad(format!("shard {} does not have its derived id", s.shard_id));
            }
            if !shard_ids.insert(s.shard_id) {
                return bad(format!("shard {} appears twice", s.shard_id));
            }
        }
    }
    let mut users = HashSet::new();
    for u in &state.users {
        if u.name.is_empty() || !users.insert(u.name.as_str()) {
            return bad(format!("user {} is empty or appears twice", shown(&u.name)));
        }
        if let Some(p) = u
            .privileges
            .iter()
            .find(|p| !databases.contains(p.database.as_str()))
        {
            return bad(format!(
                "user {} holds a privilege on unknown database {}",
                u.name,
                shown(&p.database)
            ));
        }
    }
    let mut orgs = HashSet::new();
    for o in &state.orgs {
        if o.id.is_empty() || o.name.is_empty() || !orgs.insert(o.id.as_str()) {
            return bad(format!(
                "organization {} is unnamed or appears twice",
                shown(&o.name)
            ));
        }
    }
    let mut buckets = HashSet::new();
    for b in &state.buckets {
        if b.id.is_empty() || !buckets.insert(b.id.as_str()) || !orgs.contains(b.org_id.as_str()) {
            return bad(format!(
                "bucket {} has no id, appears twice or has no organization",
                shown(&b.name)
            ));
        }
    }
    let mut tokens = HashSet::new();
    for t in &state.tokens {
        if t.id.is_empty() || !tokens.insert(t.id.as_str()) || !orgs.contains(t.org_id.as_str()) {
            return bad(format!(
                "token {} has no id, appears twice or has no organization",
                shown(&t.id)
            ));
        }
    }
    Ok(())
}

/// A new token for the operator of a restored kv snapshot, and the event that creates it.
/// InfluxDB 2 answers a kv restore with the operator token the restored store holds, so
/// that the restore can go on (and the operator get in) whatever token it began with;
/// tokens are kept here only as digests, so a new one is minted for the operator: the
/// first admin user (by name) that held a token, in that token's organization, else the
/// first admin in the first organization. None when the snapshot has no admin user or no
/// organization (a node used only through the 1.x API).
pub(crate) fn operator_token_event(state: &CatalogState) -> Option<(String, Event)> {
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
        crate::clock::stamped(event::Kind::TokenCreated(created)),
    ))
}

/// One manifest per database: its bucket's identity if it has one (a database made
/// through the 1.x API has none and is listed under its own name, with no organization).
pub(crate) fn bucket_manifests(catalog: &Catalog) -> Vec<BucketMetadataManifest> {
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
pub(crate) fn restore_bucket_events(
    catalog: &Catalog,
    manifest: &BucketMetadataManifest,
    new_bucket_id: String,
) -> Result<(Vec<Event>, RestoredBucketMappings), BackupError> {
    let name = manifest.bucket_name.as_str();
    check_bucket_name(name)?;
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
    check_bucket_policies(manifest)?;
    let spec = |p: &RetentionPolicyManifest| RetentionPolicySpec {
        name: p.name.clone(),
        duration_nanos: p.duration,
        shard_group_duration_nanos: p.shard_group_duration,
        replication: p.replica_n.max(1),
    };
    let mut events = vec![crate::clock::stamped(event::Kind::DatabaseCreated(
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
        events.push(crate::clock::stamped(event::Kind::RetentionPolicyCreated(
            RetentionPolicyCreated {
                database: name.to_owned(),
                policy: Some(spec(p)),
                make_default: false,
            },
        )));
    }
    let mut mappings = Vec::new();
    for p in &manifest.retention_policies {
        for (group, (start, end)) in p.shard_groups.iter().zip(group_intervals(p)?) {
            let new_id = crate::placement::shard_id(name, &p.name, start);
            events.push(crate::clock::stamped(event::Kind::ShardCreated(
                ShardCreated {
                    database: name.to_owned(),
                    retention_policy: p.name.clone(),
                    shard_id: new_id,
                    start_nanos: start,
                    end_nanos: end,
                    restored_from: group.shards.iter().map(|s| s.id).collect(),
                    incarnation: crate::placement::new_incarnation(),
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
            events.push(crate::clock::stamped(event::Kind::BucketCreated(
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

/// Each shard group's (start, end) in ns, in the manifest's order: valid RFC 3339 times
/// within the range of i64 nanoseconds, start before end.
fn group_intervals(p: &RetentionPolicyManifest) -> Result<Vec<(i64, i64)>, BackupError> {
    let time = |s: &str| {
        parse_rfc3339(s).ok_or_else(|| {
            BackupError::BadArchive(format!(
                "shard group time {} is not an RFC 3339 time between 1677 and 2262",
                shown(s)
            ))
        })
    };
    p.shard_groups
        .iter()
        .map(|g| {
            let (start, end) = (time(&g.start_time)?, time(&g.end_time)?);
            if start >= end {
                return Err(BackupError::BadArchive(format!(
                    "shard group {} of {} ends at or before its start",
                    g.id,
                    shown(&p.name)
                )));
            }
            Ok((start, end))
        })
        .collect()
}

/// A manifest's retention policies: valid, distinct names and durations, and shard groups
/// that are each listed once (by id), hold shards listed once in the whole manifest, and do
/// not overlap within their policy.
fn check_bucket_policies(manifest: &BucketMetadataManifest) -> Result<(), BackupError> {
    use std::collections::HashSet;
    let bad = |m: String| Err(BackupError::BadArchive(m));
    let mut names = HashSet::new();
    let (mut group_ids, mut shard_ids) = (HashSet::new(), HashSet::new());
    for p in &manifest.retention_policies {
        check_name("retention policy", &p.name)?;
        if !names.insert(p.name.as_str()) {
            return bad(format!("retention policy {} appears twice", shown(&p.name)));
        }
        check_durations(
            &format!("retention policy {}", shown(&p.name)),
            p.duration,
            p.shard_group_duration,
        )?;
        for g in &p.shard_groups {
            if !group_ids.insert(g.id) {
                return bad(format!("shard group {} appears twice", g.id));
            }
            if let Some(s) = g.shards.iter().find(|s| !shard_ids.insert(s.id)) {
                return bad(format!("shard {} appears twice", s.id));
            }
        }
        let mut intervals = group_intervals(p)?;
        intervals.sort_unstable();
        if let Some(w) = intervals.windows(2).find(|w| w[1].0 < w[0].1) {
            return bad(format!(
                "shard groups of {} overlap: one starts at {} before another ending at {}",
                shown(&p.name),
                rfc3339_nanos(w[1].0),
                rfc3339_nanos(w[0].1)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A catalog with a database, a shard, an admin with a privilege, an org, a bucket and
    /// a token: every kind of reference a kv snapshot holds.
    fn populated() -> Catalog {
        let mut c = Catalog::default();
        let run = |events: Vec<Event>, c: &mut Catalog| {
            for e in &events {
                c.apply(e);
            }
        };
        run(c.create_database("db", None).unwrap(), &mut c);
        let shard = crate::placement::ShardInfo::of_group("db", "autogen", 0, HOUR);
        run(c.create_shards(&[shard]).unwrap(), &mut c);
        run(
            c.create_user("u1".into(), "root", "hash".into(), true)
                .unwrap(),
            &mut c,
        );
        run(
            c.grant("root", "db", crate::catalog::Privilege::All)
                .unwrap(),
            &mut c,
        );
        run(c.create_org("o1".into(), "acme").unwrap(), &mut c);
        run(
            c.create_bucket("b1".into(), "o1", "metrics", 0).unwrap(),
            &mut c,
        );
        run(
            c.create_token(TokenCreated {
                id: "t1".into(),
                token_sha256: "digest".into(),
                org_id: "o1".into(),
                user_id: "u1".into(),
                description: String::new(),
                permissions: Vec::new(),
            })
            .unwrap(),
            &mut c,
        );
        c
    }

    fn kv_of(c: &Catalog) -> Vec<u8> {
        kv_snapshot(&ControlState {
            catalog: c.clone(),
            ..ControlState::default()
        })
    }

    /// The state a kv snapshot holds, changed by `edit`, framed again with a good checksum.
    fn reframed(c: &Catalog, edit: impl FnOnce(&mut CatalogState)) -> Vec<u8> {
        use prost::Message;
        let mut state = decode_kv_snapshot(&kv_of(c)).unwrap();
        edit(&mut state);
        let encoded = state.encode_to_vec();
        let mut bytes = KV_MAGIC.to_vec();
        bytes.extend_from_slice(&(encoded.len() as u64).to_le_bytes());
        let crc = crate::log::format::mask(crc32c::crc32c(&encoded));
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes.extend_from_slice(&encoded);
        bytes
    }

    #[test]
    fn a_kv_snapshot_round_trips_and_an_inconsistent_state_is_refused() {
        let c = populated();
        assert!(restore_kv_event(&kv_of(&c), true).is_ok());
        assert!(restore_kv_event(&reframed(&c, |_| {}), true).is_ok());
        type Edit = Box<dyn FnOnce(&mut CatalogState)>;
        let cases: Vec<(&str, Edit)> = vec![
            (
                "shard of an unknown policy",
                Box::new(|s| s.databases[0].shards[0].retention_policy = "nope".into()),
            ),
            (
                "shard with another id",
                Box::new(|s| s.databases[0].shards[0].shard_id += 1),
            ),
            (
                "shard ending before it starts",
                Box::new(|s| s.databases[0].shards[0].end_nanos = -1),
            ),
            (
                "unknown default policy",
                Box::new(|s| s.databases[0].default_policy = "nope".into()),
            ),
            (
                "database twice",
                Box::new(|s| {
                    let d = s.databases[0].clone();
                    s.databases.push(d)
                }),
            ),
            (
                "database named ..",
                Box::new(|s| s.databases[0].name = "..".into()),
            ),
            (
                "zero shard group duration",
                Box::new(|s| s.databases[0].policies[0].shard_group_duration_nanos = 0),
            ),
            (
                "negative duration",
                Box::new(|s| s.databases[0].policies[0].duration_nanos = -HOUR),
            ),
            (
                "privilege on an unknown database",
                Box::new(|s| s.users[0].privileges[0].database = "gone".into()),
            ),
            (
                "user twice",
                Box::new(|s| {
                    let u = s.users[0].clone();
                    s.users.push(u)
                }),
            ),
            (
                "bucket of an unknown org",
                Box::new(|s| s.buckets[0].org_id = "nope".into()),
            ),
            (
                "token of an unknown org",
                Box::new(|s| s.tokens[0].org_id = "nope".into()),
            ),
        ];
        for (what, edit) in cases {
            let err = restore_kv_event(&reframed(&c, edit), false).unwrap_err();
            assert!(matches!(err, BackupError::BadArchive(_)), "{what}: {err}");
        }
        // No admin: refused only when auth is on.
        let no_admin = reframed(&c, |s| s.users[0].admin = false);
        assert!(restore_kv_event(&no_admin, false).is_ok());
        assert!(matches!(
            restore_kv_event(&no_admin, true),
            Err(BackupError::BadArchive(m)) if m.contains("no admin user")
        ));
    }

    #[test]
    fn a_bucket_restored_under_a_new_name_gets_its_policies_and_new_shard_ids() {
        let mut c = Catalog::default();
        for e in c.create_database("db", None).unwrap() {
            c.apply(&e);
        }
        let shard =
            crate::placement::ShardInfo::of_group("db", "autogen", 0, 7 * 86_400_000_000_000);
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
        let new_id = crate::placement::shard_id("copy", "autogen", 0);
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
