//! InfluxDB 2's objects: organizations, buckets (each a database and retention policy) and
//! tokens, and the setup that creates the first of them.

use super::{Catalog, CatalogError, DEFAULT_POLICY, HOUR};
use crate::clock::stamped;
use crate::projection::Projection;
use crate::proto::{
    event, BucketCreated, BucketDeleted, Event, OrgCreated, RetentionPolicySpec, TokenCreated,
    TokenDeleted,
};

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
pub(crate) fn check_password(password: &str) -> Result<(), CatalogError> {
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
}
