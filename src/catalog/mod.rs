//! The catalog: databases and their retention policies, shards, users, and InfluxDB 2's
//! organizations, buckets and tokens; a sub-state of the control state. Each concept's
//! decisions (`&self` to the events that make the change) sit in a module of their own;
//! the fold of their events and the snapshot's shape are here.
//!
//! Rules follow InfluxDB 1.x: `CREATE DATABASE` of an existing database is not an error,
//! a new database gets the `autogen` policy (infinite duration, 7-day shard groups) unless
//! told otherwise, and the shard-group duration follows the policy's duration.

mod continuous_queries;
mod databases;
mod shards;
mod subscriptions;
mod users;
mod v2;

pub(crate) use subscriptions::{Destination, Scheme};
pub(crate) use v2::{check_password, Setup};

use crate::projection::Projection;
pub(crate) use crate::proto::Privilege;
use crate::proto::{
    event, BucketCreated, CatalogState, ContinuousQueryState, DatabasePrivilege, DatabaseState,
    Event, OrgCreated, RetentionPolicySpec, ShardCreated, SubscriptionState, TokenCreated,
    UserCreated,
};
use indexmap::IndexMap;
use prost::Message;
use std::collections::BTreeMap;

pub(crate) const DEFAULT_POLICY: &str = "autogen";

const HOUR: i64 = 3_600_000_000_000;
const DAY: i64 = 24 * HOUR;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Database {
    pub default_policy: String,
    /// In creation order, as 1.x lists them.
    pub policies: IndexMap<String, RetentionPolicySpec>,
    /// Shards of every policy, in creation order.
    pub shards: Vec<ShardCreated>,
    /// By name, in creation order, as 1.x lists them.
    pub continuous_queries: IndexMap<String, ContinuousQueryState>,
    /// Of every policy, in creation order (1.x lists them policy by policy).
    pub subscriptions: Vec<SubscriptionState>,
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
    #[error("continuous query already exists")]
    ContinuousQueryExists,
    #[error("invalid subscription URL: {0}")]
    InvalidSubscriptionUrl(String),
    #[error("subscription already exists")]
    SubscriptionExists,
    #[error("subscription not found")]
    SubscriptionNotFound,
}

pub(crate) use crate::clock::now_nanos;

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
                    // Its subscriptions go with it, as 1.x keeps them on the policy.
                    db.subscriptions.retain(|s| s.retention_policy != e.name);
                    if db.default_policy == e.name {
                        db.default_policy.clear();
                    }
                }
            }
            Some(Kind::ContinuousQueryCreated(e)) => {
                if let Some(db) = self.databases.get_mut(&e.database) {
                    db.continuous_queries
                        .entry(e.name.clone())
                        .or_insert_with(|| ContinuousQueryState {
                            name: e.name.clone(),
                            query: e.query.clone(),
                            last_run_nanos: 0,
                        });
                }
            }
            Some(Kind::ContinuousQueryDropped(e)) => {
                if let Some(db) = self.databases.get_mut(&e.database) {
                    db.continuous_queries.shift_remove(&e.name);
                }
            }
            Some(Kind::ContinuousQueryRan(e)) => {
                let cq = self
                    .databases
                    .get_mut(&e.database)
                    .and_then(|db| db.continuous_queries.get_mut(&e.name));
                if let Some(cq) = cq {
                    cq.last_run_nanos = e.last_run_nanos;
                }
            }
            Some(Kind::SubscriptionCreated(e)) => {
                if let (Some(db), Some(sub)) =
                    (self.databases.get_mut(&e.database), &e.subscription)
                {
                    let known = db
                        .subscriptions
                        .iter()
                        .any(|s| s.retention_policy == sub.retention_policy && s.name == sub.name);
                    if db.policies.contains_key(&sub.retention_policy) && !known {
                        db.subscriptions.push(sub.clone());
                    }
                }
            }
            Some(Kind::SubscriptionDropped(e)) => {
                if let Some(db) = self.databases.get_mut(&e.database) {
                    db.subscriptions.retain(|s| {
                        !(s.retention_policy == e.retention_policy && s.name == e.name)
                    });
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
                    continuous_queries: db.continuous_queries.values().cloned().collect(),
                    subscriptions: db.subscriptions.clone(),
                })
                .collect(),
            users: self.users.values().cloned().collect(),
            orgs: self.orgs.values().cloned().collect(),
            buckets: self.buckets.values().cloned().collect(),
            tokens: self.tokens.values().cloned().collect(),
            backups: None,
            replications: None,
            repairs: None,
            inbound: None,
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
                        continuous_queries: d
                            .continuous_queries
                            .into_iter()
                            .map(|cq| (cq.name.clone(), cq))
                            .collect(),
                        subscriptions: d.subscriptions,
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
    use crate::placement::ShardInfo;

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
        run(&mut c, |c| {
            c.create_continuous_query("a", "cq", "CREATE ...").unwrap()
        });
        run(&mut c, |c| c.continuous_query_ran("a", "cq", 42));
        assert_eq!(Catalog::decode_snapshot(&c.encode_snapshot()).unwrap(), c);
    }

    #[test]
    fn continuous_queries_follow_1x_rules_and_go_with_their_database() {
        let mut c = Catalog::default();
        run(&mut c, |c| c.create_database("db", None).unwrap());
        run(&mut c, |c| {
            c.create_continuous_query("db", "cq", "SELECT 1").unwrap()
        });
        assert!(
            c.create_continuous_query("db", "cq", "select 1")
                .unwrap()
                .is_empty(),
            "the same query again is no change"
        );
        assert_eq!(
            c.create_continuous_query("db", "cq", "SELECT 2"),
            Err(CatalogError::ContinuousQueryExists)
        );
        assert_eq!(
            c.create_continuous_query("nope", "cq", "SELECT 1"),
            Err(CatalogError::DatabaseNotFound("nope".into()))
        );
        run(&mut c, |c| c.continuous_query_ran("db", "cq", 7));
        assert_eq!(c.databases["db"].continuous_queries["cq"].last_run_nanos, 7);
        assert!(c.drop_continuous_query("db", "other").is_empty());
        run(&mut c, |c| c.drop_database("db"));
        run(&mut c, |c| c.create_database("db", None).unwrap());
        assert!(c.databases["db"].continuous_queries.is_empty());
        assert!(c.continuous_query_ran("db", "cq", 8).is_empty());
    }
}
