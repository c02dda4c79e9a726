//! The catalog: databases and their retention policies, a projection of the control log.
//!
//! Rules follow InfluxDB 1.x: `CREATE DATABASE` of an existing database is not an error,
//! a new database gets the `autogen` policy (infinite duration, 7-day shard groups) unless
//! told otherwise, and the shard-group duration follows the policy's duration.

use crate::clock::stamped;
use crate::placement::ShardInfo;
use crate::projection::Projection;
pub use crate::proto::Privilege;
use crate::proto::{
    event, BucketCreated, BucketDeleted, CatalogState, DatabaseCreated, DatabaseDropped,
    DatabasePrivilege, DatabaseState, Event, OrgCreated, RetentionPolicyAltered,
    RetentionPolicyCreated, RetentionPolicyDropped, RetentionPolicySpec, ShardCreated,
    ShardDropped, TokenCreated, TokenDeleted, UserAdminSet, UserCreated, UserDropped,
    UserPasswordSet, UserPrivilegeSet,
};
use indexmap::IndexMap;
use prost::Message;
use std::collections::BTreeMap;

pub const DEFAULT_POLICY: &str = "autogen";

impl Privilege {
    /// Whether holding this privilege grants `wanted` (ALL grants both halves).
    pub fn grants(self, wanted: Privilege) -> bool {
        self == Privilege::All || self == wanted
    }

    /// The privilege as InfluxDB 1.x names it in `SHOW GRANTS` and its errors.
    pub fn influx_name(self) -> &'static str {
        match self {
            Privilege::NoPrivileges => "NO PRIVILEGES",
            Privilege::Read => "READ",
            Privilege::Write => "WRITE",
            Privilege::All => "ALL PRIVILEGES",
        }
    }
}
const HOUR: i64 = 3_600_000_000_000;
const DAY: i64 = 24 * HOUR;

/// InfluxDB's shard-group duration for a retention policy duration (0 = infinite).
pub fn shard_group_duration(policy_duration: i64) -> i64 {
    match policy_duration {
        d if d > 0 && d < 2 * DAY => HOUR,
        d if d > 0 && d <= 180 * DAY => DAY,
        _ => 7 * DAY,
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Database {
    pub default_policy: String,
    /// In creation order, as 1.x lists them.
    pub policies: IndexMap<String, RetentionPolicySpec>,
    /// Shards of every policy, in creation order.
    pub shards: Vec<ShardCreated>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    /// In creation order, as 1.x lists them.
    pub databases: IndexMap<String, Database>,
    /// By name.
    pub users: BTreeMap<String, UserCreated>,
    /// By id.
    pub orgs: BTreeMap<String, OrgCreated>,
    /// By id.
    pub buckets: BTreeMap<String, BucketCreated>,
    /// By id.
    pub tokens: BTreeMap<String, TokenCreated>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CatalogError {
    #[error("user already exists")]
    UserExists,
    #[error("user not found")]
    UserNotFound,
    #[error("organization name \"{0}\" already exists")]
    OrgExists(String),
    #[error("organization not found")]
    OrgNotFound,
    #[error("bucket with name {0} already exists")]
    BucketExists(String),
    #[error("bucket not found")]
    BucketNotFound,
    #[error("authorization not found")]
    AuthorizationNotFound,
    #[error("onboarding has already been completed")]
    AlreadySetUp,
    #[error("password is too short")]
    PasswordTooShort,
    #[error("shard id {id} of {database}.{policy} at {start} collides with another shard")]
    ShardIdCollision {
        id: u64,
        database: String,
        policy: String,
        start: i64,
    },
    #[error("database not found: {0}")]
    DatabaseNotFound(String),
    #[error("retention policy not found: {0}")]
    PolicyNotFound(String),
    #[error("retention policy already exists")]
    PolicyExists,
    #[error("retention policy duration must be at least 1h0m0s")]
    DurationTooLow,
    #[error("invalid name")]
    InvalidName,
}

pub use crate::clock::now_nanos;

/// What InfluxDB 2's setup creates: the first user (an admin), organization and bucket, and
/// the operator's token.
pub struct Setup {
    pub user_id: String,
    pub username: String,
    pub password_bcrypt: String,
    pub org_id: String,
    pub org: String,
    pub bucket_id: String,
    pub bucket: String,
    /// 0: forever.
    pub retention_nanos: i64,
    pub token_id: String,
    pub token_sha256: String,
}

/// InfluxDB 2's shortest password for a user it creates.
const MIN_PASSWORD_BYTES: usize = 8;

/// InfluxDB 2's rule for a new user's password, checked before it is hashed.
pub fn check_password(password: &str) -> Result<(), CatalogError> {
    match password.len() < MIN_PASSWORD_BYTES {
        true => Err(CatalogError::PasswordTooShort),
        false => Ok(()),
    }
}

impl Catalog {
    /// A bucket by name, or the 1.8 compatibility mapping (`db` or `db/rp`) when no bucket
    /// has that name: the database and retention policy it stands for.
    pub fn resolve_bucket(&self, name: &str) -> (String, Option<String>) {
        if let Some(b) = self.buckets.values().find(|b| b.name == name) {
            return (
                b.database.clone(),
                Some(b.retention_policy.clone()).filter(|r| !r.is_empty()),
            );
        }
        match name.split_once('/') {
            Some((db, rp)) => (db.to_owned(), Some(rp.to_owned()).filter(|r| !r.is_empty())),
            None => (name.to_owned(), None),
        }
    }

    pub fn create_user(
        &self,
        id: String,
        name: &str,
        password_bcrypt: String,
        admin: bool,
    ) -> Result<Vec<Event>, CatalogError> {
        if name.is_empty() {
            return Err(CatalogError::InvalidName);
        }
        if self.users.contains_key(name) {
            return Err(CatalogError::UserExists);
        }
        Ok(vec![stamped(event::Kind::UserCreated(UserCreated {
            id,
            name: name.into(),
            password_bcrypt,
            admin,
            privileges: Vec::new(),
        }))])
    }

    pub fn drop_user(&self, name: &str) -> Result<Vec<Event>, CatalogError> {
        if !self.users.contains_key(name) {
            return Err(CatalogError::UserNotFound);
        }
        Ok(vec![stamped(event::Kind::UserDropped(UserDropped {
            name: name.into(),
        }))])
    }

    /// `GRANT privilege ON database TO name`: the privilege replaces the one held.
    pub fn grant(
        &self,
        name: &str,
        database: &str,
        privilege: Privilege,
    ) -> Result<Vec<Event>, CatalogError> {
        self.privilege_event(name, database, privilege)
    }

    /// `REVOKE privilege ON database FROM name`, as InfluxDB 1.x narrows privileges:
    /// revoking one half of ALL leaves the other, revoking what is held leaves none, and
    /// revoking what is not held changes nothing.
    pub fn revoke(
        &self,
        name: &str,
        database: &str,
        privilege: Privilege,
    ) -> Result<Vec<Event>, CatalogError> {
        let held = self.privilege(name, database);
        let left = match (privilege, held) {
            (Privilege::All, _) => Privilege::NoPrivileges,
            (Privilege::Read, Privilege::All) => Privilege::Write,
            (Privilege::Write, Privilege::All) => Privilege::Read,
            (p, h) if p == h => Privilege::NoPrivileges,
            (_, h) => h,
        };
        self.privilege_event(name, database, left)
    }

    fn privilege_event(
        &self,
        name: &str,
        database: &str,
        privilege: Privilege,
    ) -> Result<Vec<Event>, CatalogError> {
        if !self.users.contains_key(name) {
            return Err(CatalogError::UserNotFound);
        }
        if !self.databases.contains_key(database) {
            return Err(CatalogError::DatabaseNotFound(database.into()));
        }
        Ok(vec![stamped(event::Kind::UserPrivilegeSet(
            UserPrivilegeSet {
                name: name.into(),
                database: database.into(),
                privilege: privilege.into(),
            },
        ))])
    }

    /// `GRANT ALL PRIVILEGES TO name` (true) and `REVOKE ALL PRIVILEGES FROM name` (false).
    pub fn set_admin(&self, name: &str, admin: bool) -> Result<Vec<Event>, CatalogError> {
        if !self.users.contains_key(name) {
            return Err(CatalogError::UserNotFound);
        }
        Ok(vec![stamped(event::Kind::UserAdminSet(UserAdminSet {
            name: name.into(),
            admin,
        }))])
    }

    pub fn set_password(
        &self,
        name: &str,
        password_bcrypt: String,
    ) -> Result<Vec<Event>, CatalogError> {
        if !self.users.contains_key(name) {
            return Err(CatalogError::UserNotFound);
        }
        Ok(vec![stamped(event::Kind::UserPasswordSet(
            UserPasswordSet {
                name: name.into(),
                password_bcrypt,
            },
        ))])
    }

    /// The privilege a user holds on a database (none for unknown users).
    pub fn privilege(&self, name: &str, database: &str) -> Privilege {
        self.users
            .get(name)
            .and_then(|u| u.privileges.iter().find(|p| p.database == database))
            .map_or(Privilege::NoPrivileges, |p| p.privilege())
    }

    /// A user by id (tokens and v2 objects name users by id, the 1.x API by name).
    pub fn user_by_id(&self, id: &str) -> Option<&UserCreated> {
        self.users.values().find(|u| u.id == id)
    }

    pub fn create_org(&self, id: String, name: &str) -> Result<Vec<Event>, CatalogError> {
        if name.is_empty() {
            return Err(CatalogError::InvalidName);
        }
        if self.orgs.values().any(|o| o.name == name) {
            return Err(CatalogError::OrgExists(name.into()));
        }
        Ok(vec![stamped(event::Kind::OrgCreated(OrgCreated {
            id,
            name: name.into(),
        }))])
    }

    /// A bucket is database `name` with policy `autogen` keeping data `retention_nanos`
    /// (0: forever); the database is created unless it exists.
    pub fn create_bucket(
        &self,
        id: String,
        org_id: &str,
        name: &str,
        retention_nanos: i64,
    ) -> Result<Vec<Event>, CatalogError> {
        if !self.orgs.contains_key(org_id) {
            return Err(CatalogError::OrgNotFound);
        }
        if self
            .buckets
            .values()
            .any(|b| b.name == name && b.org_id == org_id)
        {
            return Err(CatalogError::BucketExists(name.into()));
        }
        let policy = RetentionPolicySpec {
            name: DEFAULT_POLICY.into(),
            duration_nanos: retention_nanos,
            shard_group_duration_nanos: 0,
            replication: 1,
        };
        if retention_nanos != 0 && retention_nanos < HOUR {
            return Err(CatalogError::DurationTooLow);
        }
        let mut events = self.create_database(name, Some(policy))?;
        let rp = self
            .databases
            .get(name)
            .map_or(DEFAULT_POLICY.to_owned(), |d| d.default_policy.clone());
        events.push(stamped(event::Kind::BucketCreated(BucketCreated {
            id,
            org_id: org_id.into(),
            name: name.into(),
            database: name.into(),
            retention_policy: rp,
        })));
        Ok(events)
    }

    pub fn delete_bucket(&self, id: &str) -> Result<Vec<Event>, CatalogError> {
        if !self.buckets.contains_key(id) {
            return Err(CatalogError::BucketNotFound);
        }
        Ok(vec![stamped(event::Kind::BucketDeleted(BucketDeleted {
            id: id.into(),
        }))])
    }

    pub fn create_token(&self, token: TokenCreated) -> Result<Vec<Event>, CatalogError> {
        if !self.orgs.contains_key(&token.org_id) {
            return Err(CatalogError::OrgNotFound);
        }
        Ok(vec![stamped(event::Kind::TokenCreated(token))])
    }

    pub fn delete_token(&self, id: &str) -> Result<Vec<Event>, CatalogError> {
        if !self.tokens.contains_key(id) {
            return Err(CatalogError::AuthorizationNotFound);
        }
        Ok(vec![stamped(event::Kind::TokenDeleted(TokenDeleted {
            id: id.into(),
        }))])
    }

    /// Whether the initial user, org, bucket and token may still be created.
    pub fn setup_allowed(&self) -> bool {
        self.users.is_empty() && self.orgs.is_empty()
    }

    /// The events of InfluxDB 2's setup, all or none: each decided on the catalog the
    /// earlier ones make (the bucket in the new org, the token of the new user).
    pub fn setup(&self, setup: Setup) -> Result<Vec<Event>, CatalogError> {
        if !self.setup_allowed() {
            return Err(CatalogError::AlreadySetUp);
        }
        let mut next = self.clone();
        let mut events = next.create_user(
            setup.user_id.clone(),
            &setup.username,
            setup.password_bcrypt,
            true,
        )?;
        events.extend(next.create_org(setup.org_id.clone(), &setup.org)?);
        for e in &events {
            next.apply(e);
        }
        let bucket = next.create_bucket(
            setup.bucket_id,
            &setup.org_id,
            &setup.bucket,
            setup.retention_nanos,
        )?;
        for e in &bucket {
            next.apply(e);
        }
        events.extend(bucket);
        events.extend(next.create_token(TokenCreated {
            id: setup.token_id,
            token_sha256: setup.token_sha256,
            org_id: setup.org_id,
            user_id: setup.user_id,
            description: format!("{}'s Token", setup.username),
            // The operator's token: all its admin user may do.
            permissions: Vec::new(),
        })?);
        Ok(events)
    }

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

    pub fn drop_policy(&self, database: &str, name: &str) -> Result<Vec<Event>, CatalogError> {
        let db = self
            .databases
            .get(database)
            .ok_or_else(|| CatalogError::DatabaseNotFound(database.into()))?;
        if !db.policies.contains_key(name) {
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

/// One sub-state of the control state ([`crate::control`]): it folds the catalog's events
/// and passes over the others'.
impl Projection for Catalog {
    fn apply(&mut self, event: &Event) {
        use event::Kind;
        match &event.kind {
            Some(Kind::DatabaseCreated(e)) => {
                let mut db = Database::default();
                if let Some(p) = &e.default_policy {
                    db.default_policy = p.name.clone();
                    db.policies.insert(p.name.clone(), p.clone());
                }
                self.databases.entry(e.name.clone()).or_insert(db);
            }
            Some(Kind::DatabaseDropped(e)) => {
                self.databases.shift_remove(&e.name);
                for user in self.users.values_mut() {
                    user.privileges.retain(|p| p.database != e.name);
                }
            }
            Some(Kind::RetentionPolicyCreated(e)) => {
                if let (Some(db), Some(p)) = (self.databases.get_mut(&e.database), &e.policy) {
                    db.policies.insert(p.name.clone(), p.clone());
                    if e.make_default || db.default_policy.is_empty() {
                        db.default_policy = p.name.clone();
                    }
                }
            }
            Some(Kind::RetentionPolicyAltered(e)) => {
                if let Some(db) = self.databases.get_mut(&e.database) {
                    if let Some(p) = db.policies.get_mut(&e.name) {
                        if let Some(d) = e.duration_nanos {
                            p.duration_nanos = d;
                        }
                        if let Some(d) = e.shard_group_duration_nanos {
                            p.shard_group_duration_nanos = d;
                        }
                        if let Some(r) = e.replication {
                            p.replication = r;
                        }
                        if e.make_default {
                            db.default_policy = e.name.clone();
                        }
                    }
                }
            }
            Some(Kind::ShardCreated(e)) => {
                if let Some(db) = self.databases.get_mut(&e.database) {
                    if !db.shards.iter().any(|s| s.shard_id == e.shard_id) {
                        db.shards.push(e.clone());
                    }
                }
            }
            Some(Kind::ShardDropped(e)) => {
                if let Some(db) = self.databases.get_mut(&e.database) {
                    db.shards.retain(|s| s.shard_id != e.shard_id);
                }
            }
            Some(Kind::RetentionPolicyDropped(e)) => {
                if let Some(db) = self.databases.get_mut(&e.database) {
                    db.policies.shift_remove(&e.name);
                    db.shards.retain(|s| s.retention_policy != e.name);
                    if db.default_policy == e.name {
                        db.default_policy.clear();
                    }
                }
            }
            Some(Kind::UserCreated(e)) => {
                self.users.insert(e.name.clone(), e.clone());
            }
            Some(Kind::UserDropped(e)) => {
                // A dropped user's tokens go with it: a token is only ever its user's.
                if let Some(user) = self.users.remove(&e.name) {
                    self.tokens.retain(|_, t| t.user_id != user.id);
                }
            }
            Some(Kind::UserPrivilegeSet(e)) => {
                if let Some(user) = self.users.get_mut(&e.name) {
                    match user
                        .privileges
                        .iter_mut()
                        .find(|p| p.database == e.database)
                    {
                        Some(p) => p.privilege = e.privilege,
                        None => {
                            user.privileges.push(DatabasePrivilege {
                                database: e.database.clone(),
                                privilege: e.privilege,
                            });
                            user.privileges.sort_by(|a, b| a.database.cmp(&b.database));
                        }
                    }
                }
            }
            Some(Kind::UserAdminSet(e)) => {
                if let Some(user) = self.users.get_mut(&e.name) {
                    user.admin = e.admin;
                }
            }
            Some(Kind::UserPasswordSet(e)) => {
                if let Some(user) = self.users.get_mut(&e.name) {
                    user.password_bcrypt = e.password_bcrypt.clone();
                }
            }
            Some(Kind::OrgCreated(e)) => {
                self.orgs.insert(e.id.clone(), e.clone());
            }
            Some(Kind::BucketCreated(e)) => {
                self.buckets.insert(e.id.clone(), e.clone());
            }
            Some(Kind::BucketDeleted(e)) => {
                self.buckets.remove(&e.id);
            }
            Some(Kind::TokenCreated(e)) => {
                self.tokens.insert(e.id.clone(), e.clone());
            }
            Some(Kind::TokenDeleted(e)) => {
                self.tokens.remove(&e.id);
            }
            Some(Kind::CatalogRestored(e)) => {
                // The whole catalog; the ledger in the state is not the catalog's, and the
                // node's own goes on (recording this restore too).
                *self = Catalog::from_state(e.state.clone().unwrap_or_default());
            }
            _ => {}
        }
    }

    fn encode_snapshot(&self) -> Vec<u8> {
        self.to_state().encode_to_vec()
    }

    fn decode_snapshot(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        Ok(Catalog::from_state(CatalogState::decode(bytes)?))
    }
}

impl Catalog {
    /// The catalog's part of a snapshot (`backups` is the ledger's).
    pub fn to_state(&self) -> CatalogState {
        CatalogState {
            databases: self
                .databases
                .iter()
                .map(|(name, db)| DatabaseState {
                    name: name.clone(),
                    default_policy: db.default_policy.clone(),
                    policies: db.policies.values().cloned().collect(),
                    shards: db.shards.clone(),
                })
                .collect(),
            users: self.users.values().cloned().collect(),
            orgs: self.orgs.values().cloned().collect(),
            buckets: self.buckets.values().cloned().collect(),
            tokens: self.tokens.values().cloned().collect(),
            backups: None,
        }
    }

    /// The catalog a snapshot (or a kv backup) holds.
    pub fn from_state(state: CatalogState) -> Catalog {
        let databases = state
            .databases
            .into_iter()
            .map(|d| {
                let policies = d
                    .policies
                    .into_iter()
                    .map(|p| (p.name.clone(), p))
                    .collect();
                (
                    d.name,
                    Database {
                        default_policy: d.default_policy,
                        policies,
                        shards: d.shards,
                    },
                )
            })
            .collect();
        Catalog {
            databases,
            users: state
                .users
                .into_iter()
                .map(|u| (u.name.clone(), u))
                .collect(),
            orgs: state.orgs.into_iter().map(|o| (o.id.clone(), o)).collect(),
            buckets: state
                .buckets
                .into_iter()
                .map(|b| (b.id.clone(), b))
                .collect(),
            tokens: state
                .tokens
                .into_iter()
                .map(|t| (t.id.clone(), t))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, hours: i64) -> RetentionPolicySpec {
        RetentionPolicySpec {
            name: name.into(),
            duration_nanos: hours * HOUR,
            shard_group_duration_nanos: 0,
            replication: 1,
        }
    }

    /// Decides on the current state, then folds the decided events in.
    fn run(c: &mut Catalog, decide: impl FnOnce(&Catalog) -> Vec<Event>) {
        for e in &decide(c) {
            c.apply(e);
        }
    }

    #[test]
    fn databases_get_autogen_and_policies_follow_influxdb_rules() {
        let mut c = Catalog::default();
        run(&mut c, |c| c.create_database("db", None).unwrap());
        assert!(
            c.create_database("db", None).unwrap().is_empty(),
            "re-creating is a no-op"
        );
        let autogen = &c.databases["db"].policies[DEFAULT_POLICY];
        assert_eq!(
            (autogen.duration_nanos, autogen.shard_group_duration_nanos),
            (0, 7 * DAY)
        );
        run(&mut c, |c| {
            c.create_policy("db", spec("short", 24), true).unwrap()
        });
        assert_eq!(c.databases["db"].default_policy, "short");
        assert_eq!(
            c.databases["db"].policies["short"].shard_group_duration_nanos,
            HOUR
        );
        assert_eq!(
            c.create_policy("db", spec("short", 48), false),
            Err(CatalogError::PolicyExists)
        );
        assert_eq!(
            c.create_policy("nope", spec("x", 24), false),
            Err(CatalogError::DatabaseNotFound("nope".into()))
        );
        let tiny = RetentionPolicySpec {
            duration_nanos: HOUR / 2,
            ..spec("tiny", 0)
        };
        assert_eq!(
            c.create_policy("db", tiny, false),
            Err(CatalogError::DurationTooLow)
        );
        run(&mut c, |c| c.drop_policy("db", "short").unwrap());
        assert!(!c.databases["db"].policies.contains_key("short"));
        run(&mut c, |c| c.drop_database("db"));
        assert!(c.databases.is_empty());
    }

    #[test]
    fn shards_are_created_once_and_a_colliding_id_is_refused() {
        let mut c = Catalog::default();
        run(&mut c, |c| c.create_database("db", None).unwrap());
        let shard = ShardInfo::of_group("db", DEFAULT_POLICY, 0, 7 * DAY);
        run(&mut c, |c| {
            c.create_shards(std::slice::from_ref(&shard)).unwrap()
        });
        let created: Vec<ShardInfo> = c.shards().collect();
        assert!(created[0].incarnation > 0, "a new shard has an incarnation");
        let shard = ShardInfo {
            incarnation: created[0].incarnation,
            ..shard
        };
        assert_eq!(created, vec![shard.clone()]);
        assert!(
            c.create_shards(std::slice::from_ref(&shard))
                .unwrap()
                .is_empty(),
            "known: no event"
        );
        let impostor = ShardInfo {
            start: DAY,
            ..shard
        };
        assert!(matches!(
            c.create_shards(&[impostor]),
            Err(CatalogError::ShardIdCollision { .. })
        ));
    }

    #[test]
    fn setup_creates_everything_at_once_and_only_once() {
        let mut c = Catalog::default();
        let setup = || Setup {
            user_id: "u".into(),
            username: "root".into(),
            password_bcrypt: "hash".into(),
            org_id: "o".into(),
            org: "acme".into(),
            bucket_id: "b".into(),
            bucket: "metrics".into(),
            retention_nanos: 0,
            token_id: "t".into(),
            token_sha256: "digest".into(),
        };
        run(&mut c, |c| c.setup(setup()).unwrap());
        assert!(c.users["root"].admin);
        assert_eq!(c.buckets["b"].org_id, "o");
        assert!(c.databases.contains_key("metrics"));
        assert_eq!(c.tokens["t"].user_id, "u");
        assert_eq!(c.setup(setup()), Err(CatalogError::AlreadySetUp));
        assert_eq!(check_password("short"), Err(CatalogError::PasswordTooShort));
        assert_eq!(check_password("long enough"), Ok(()));
    }

    #[test]
    fn snapshot_round_trips() {
        let mut c = Catalog::default();
        run(&mut c, |c| c.create_database("a", None).unwrap());
        run(&mut c, |c| {
            c.create_policy("a", spec("week", 24 * 7), false).unwrap()
        });
        run(&mut c, |c| {
            c.create_database("b", Some(spec("year", 24 * 365)))
                .unwrap()
        });
        assert_eq!(Catalog::decode_snapshot(&c.encode_snapshot()).unwrap(), c);
    }
}
