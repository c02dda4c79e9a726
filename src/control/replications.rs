//! Remotes and replications: a sub-state of the control state. It holds each remote and
//! each replication's settings, and each replication's progress through the data log (the
//! position up to which the bucket's records are delivered or dropped, what was sent and
//! dropped, how the latest attempt ended), so that a restart resumes exactly where
//! delivery stopped and the status an API answers is a fold of durable events.
//!
//! Decisions (`&self` to the events that make a change) check InfluxDB 2's rules for the
//! fields; who may ask is the caller's business (the HTTP layer), and whether the bucket
//! and organization exist is checked against the catalog the caller passes.

use crate::catalog::Catalog;
use crate::clock::stamped;
use crate::projection::Projection;
use crate::proto::{
    event, DropReason, Event, Remote, RemoteCreated, RemoteDeleted, RemoteUpdated, Replication,
    ReplicationAttempt, ReplicationCreated, ReplicationDeleted, ReplicationDelivered,
    ReplicationDropped, ReplicationProgress, ReplicationUpdated, ReplicationsState,
};
use prost::Message;
use std::collections::BTreeMap;

/// InfluxDB 2's default and smallest queue (`maxQueueSizeBytes`).
pub(crate) const DEFAULT_MAX_QUEUE_BYTES: i64 = 67_108_860;
pub(crate) const MIN_MAX_QUEUE_BYTES: i64 = 33_554_430;
/// InfluxDB 2's default `maxAgeSeconds` (a week), used when it is absent or 0, and its
/// bounds otherwise.
pub(crate) const DEFAULT_MAX_AGE_SECONDS: i64 = 604_800;
pub(crate) const MIN_MAX_AGE_SECONDS: i64 = 60;
pub(crate) const MAX_MAX_AGE_SECONDS: i64 = 5_184_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReplicationError {
    #[error("remote not found")]
    RemoteNotFound,
    #[error("replication not found")]
    ReplicationNotFound,
    #[error("organization not found")]
    OrgNotFound,
    #[error("local bucket not found")]
    BucketNotFound,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replications {
    /// By id.
    pub remotes: BTreeMap<String, Remote>,
    /// By id.
    pub replications: BTreeMap<String, ReplicationProgress>,
}

impl Projection for Replications {
    fn apply(&mut self, event: &Event) {
        use event::Kind;
        match &event.kind {
            Some(Kind::RemoteCreated(RemoteCreated { remote: Some(r) })) => {
                self.remotes.insert(r.id.clone(), r.clone());
            }
            Some(Kind::RemoteUpdated(RemoteUpdated { remote: Some(r) })) => {
                self.remotes.insert(r.id.clone(), r.clone());
                // A fixed remote (a new token, say): its stopped replications try again.
                for p in self.replications.values_mut() {
                    if p.replication.as_ref().is_some_and(|x| x.remote_id == r.id) {
                        p.stopped = false;
                    }
                }
            }
            Some(Kind::RemoteDeleted(RemoteDeleted { id })) => {
                self.remotes.remove(id);
            }
            Some(Kind::ReplicationCreated(ReplicationCreated {
                replication: Some(r),
                start_lsn,
            })) => {
                self.replications.insert(
                    r.id.clone(),
                    ReplicationProgress {
                        replication: Some(r.clone()),
                        delivered_lsn: *start_lsn,
                        ..ReplicationProgress::default()
                    },
                );
            }
            Some(Kind::ReplicationUpdated(ReplicationUpdated {
                replication: Some(r),
            })) => {
                if let Some(p) = self.replications.get_mut(&r.id) {
                    p.replication = Some(r.clone());
                    // New settings (a fixed remote, dropNonRetryableData turned on): the
                    // sender tries again.
                    p.stopped = false;
                }
            }
            Some(Kind::ReplicationDeleted(ReplicationDeleted { id })) => {
                self.replications.remove(id);
            }
            Some(Kind::BucketDeleted(b)) => {
                // A bucket's replications go with it, as in InfluxDB 2.
                self.replications.retain(|_, p| {
                    p.replication
                        .as_ref()
                        .is_none_or(|r| r.local_bucket_id != b.id)
                });
            }
            Some(Kind::ReplicationDelivered(d)) => {
                if let Some(p) = self.replications.get_mut(&d.id) {
                    p.delivered_lsn = p.delivered_lsn.max(d.upto_lsn);
                    p.sent_points += d.points;
                    p.sent_bytes += d.bytes;
                    p.latest_response_code = 204;
                    p.latest_error_message.clear();
                    p.stopped = false;
                }
            }
            Some(Kind::ReplicationDropped(d)) => {
                if let Some(p) = self.replications.get_mut(&d.id) {
                    p.delivered_lsn = p.delivered_lsn.max(d.upto_lsn);
                    p.dropped_bytes += d.bytes;
                    match d.reason() {
                        DropReason::NonRetryable => p.dropped_non_retryable_points += d.points,
                        DropReason::MaxAge => p.dropped_max_age_points += d.points,
                        DropReason::QueueFull => p.dropped_queue_full_points += d.points,
                        DropReason::Operator | DropReason::Unspecified => {
                            p.dropped_operator_points += d.points
                        }
                    }
                    if !d.message.is_empty() {
                        p.latest_error_message = d.message.clone();
                    }
                    // Dropping the batch that stopped the replication lets it go on.
                    p.stopped = false;
                }
            }
            Some(Kind::ReplicationAttempt(a)) => {
                if let Some(p) = self.replications.get_mut(&a.id) {
                    p.latest_response_code = a.response_code;
                    p.latest_error_message = a.error_message.clone();
                    p.stopped = a.stopped;
                }
            }
            _ => {}
        }
    }

    fn encode_snapshot(&self) -> Vec<u8> {
        self.to_state().encode_to_vec()
    }

    fn decode_snapshot(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        Ok(Replications::from_state(ReplicationsState::decode(bytes)?))
    }
}

/// A replication's settings as a request gives them, before defaults and checks.
#[derive(Debug, Clone, Default)]
pub struct ReplicationSpec {
    pub name: Option<String>,
    pub description: Option<String>,
    pub remote_id: Option<String>,
    pub local_bucket_id: Option<String>,
    pub remote_bucket_id: Option<String>,
    pub remote_bucket_name: Option<String>,
    pub max_queue_size_bytes: Option<i64>,
    pub max_age_seconds: Option<i64>,
    pub drop_non_retryable_data: Option<bool>,
}

/// A remote's fields as a request gives them.
#[derive(Debug, Clone, Default)]
pub struct RemoteSpec {
    pub name: Option<String>,
    pub description: Option<String>,
    pub remote_url: Option<String>,
    pub remote_api_token: Option<String>,
    pub remote_org_id: Option<String>,
    pub allow_insecure_tls: Option<bool>,
}

fn invalid(message: impl Into<String>) -> ReplicationError {
    ReplicationError::Invalid(message.into())
}

fn check_url(url: &str) -> Result<(), ReplicationError> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url
            .split_once("://")
            .is_some_and(|(_, rest)| !rest.is_empty());
    match ok {
        true => Ok(()),
        false => Err(invalid(format!(
            "remoteURL {url:?} is not an http:// or https:// URL"
        ))),
    }
}

impl Replications {
    pub fn to_state(&self) -> ReplicationsState {
        ReplicationsState {
            remotes: self.remotes.values().cloned().collect(),
            replications: self.replications.values().cloned().collect(),
        }
    }

    pub fn from_state(state: ReplicationsState) -> Replications {
        Replications {
            remotes: state
                .remotes
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect(),
            replications: state
                .replications
                .into_iter()
                .filter_map(|p| Some((p.replication.as_ref()?.id.clone(), p)))
                .collect(),
        }
    }

    /// The settings of replication `id`.
    pub fn replication(&self, id: &str) -> Option<&Replication> {
        self.replications.get(id)?.replication.as_ref()
    }

    pub fn create_remote(
        &self,
        catalog: &Catalog,
        id: String,
        org_id: &str,
        spec: RemoteSpec,
    ) -> Result<Vec<Event>, ReplicationError> {
        if org_id.is_empty() {
            return Err(invalid("orgID is required"));
        }
        if !catalog.orgs.contains_key(org_id) {
            return Err(ReplicationError::OrgNotFound);
        }
        let required = |v: Option<String>, what: &str| {
            v.filter(|s| !s.is_empty())
                .ok_or_else(|| invalid(format!("{what} is required")))
        };
        let remote = Remote {
            id,
            org_id: org_id.to_owned(),
            name: required(spec.name, "name")?,
            description: spec.description.unwrap_or_default(),
            remote_url: required(spec.remote_url, "remoteURL")?,
            remote_api_token: required(spec.remote_api_token, "remoteAPIToken")?,
            remote_org_id: spec.remote_org_id.unwrap_or_default(),
            allow_insecure_tls: spec.allow_insecure_tls.unwrap_or(false),
        };
        check_url(&remote.remote_url)?;
        self.check_remote_name(&remote)?;
        Ok(vec![stamped(event::Kind::RemoteCreated(RemoteCreated {
            remote: Some(remote),
        }))])
    }

    fn check_remote_name(&self, remote: &Remote) -> Result<(), ReplicationError> {
        let taken = self
            .remotes
            .values()
            .any(|r| r.id != remote.id && r.org_id == remote.org_id && r.name == remote.name);
        match taken {
            true => Err(ReplicationError::Conflict(format!(
                "remote with name {} already exists",
                remote.name
            ))),
            false => Ok(()),
        }
    }

    pub fn update_remote(
        &self,
        id: &str,
        spec: RemoteSpec,
    ) -> Result<Vec<Event>, ReplicationError> {
        let mut remote = self
            .remotes
            .get(id)
            .cloned()
            .ok_or(ReplicationError::RemoteNotFound)?;
        if let Some(name) = spec.name {
            if name.is_empty() {
                return Err(invalid("name must not be empty"));
            }
            remote.name = name;
        }
        if let Some(d) = spec.description {
            remote.description = d;
        }
        if let Some(url) = spec.remote_url {
            check_url(&url)?;
            remote.remote_url = url;
        }
        if let Some(token) = spec.remote_api_token {
            if token.is_empty() {
                return Err(invalid("remoteAPIToken must not be empty"));
            }
            remote.remote_api_token = token;
        }
        if let Some(org) = spec.remote_org_id {
            remote.remote_org_id = org;
        }
        if let Some(insecure) = spec.allow_insecure_tls {
            remote.allow_insecure_tls = insecure;
        }
        self.check_remote_name(&remote)?;
        Ok(vec![stamped(event::Kind::RemoteUpdated(RemoteUpdated {
            remote: Some(remote),
        }))])
    }

    /// Refused while a replication uses the remote: its queue would have nowhere to go.
    pub fn delete_remote(&self, id: &str) -> Result<Vec<Event>, ReplicationError> {
        if !self.remotes.contains_key(id) {
            return Err(ReplicationError::RemoteNotFound);
        }
        let users: Vec<&str> = self
            .replications
            .values()
            .filter_map(|p| p.replication.as_ref())
            .filter(|r| r.remote_id == id)
            .map(|r| r.name.as_str())
            .collect();
        if !users.is_empty() {
            return Err(ReplicationError::Conflict(format!(
                "cannot delete remote {id}: replications use it: {}",
                users.join(", ")
            )));
        }
        Ok(vec![stamped(event::Kind::RemoteDeleted(RemoteDeleted {
            id: id.to_owned(),
        }))])
    }

    /// A new replication from the settings of a request, InfluxDB 2's defaults filled in;
    /// checked, not yet decided (see [`Replications::create_replication`]).
    pub fn new_replication(
        &self,
        catalog: &Catalog,
        id: String,
        org_id: &str,
        spec: ReplicationSpec,
    ) -> Result<Replication, ReplicationError> {
        if org_id.is_empty() {
            return Err(invalid("orgID is required"));
        }
        if !catalog.orgs.contains_key(org_id) {
            return Err(ReplicationError::OrgNotFound);
        }
        let r = Replication {
            id,
            org_id: org_id.to_owned(),
            name: spec.name.unwrap_or_default(),
            description: spec.description.unwrap_or_default(),
            remote_id: spec.remote_id.unwrap_or_default(),
            local_bucket_id: spec.local_bucket_id.unwrap_or_default(),
            remote_bucket_id: spec.remote_bucket_id.unwrap_or_default(),
            remote_bucket_name: spec.remote_bucket_name.unwrap_or_default(),
            max_queue_size_bytes: spec.max_queue_size_bytes.unwrap_or(DEFAULT_MAX_QUEUE_BYTES),
            max_age_seconds: spec.max_age_seconds.unwrap_or(0),
            drop_non_retryable_data: spec.drop_non_retryable_data.unwrap_or(false),
        };
        self.checked(catalog, r)
    }

    /// `r` with its defaults applied, if it keeps InfluxDB 2's rules.
    fn checked(
        &self,
        catalog: &Catalog,
        mut r: Replication,
    ) -> Result<Replication, ReplicationError> {
        if r.name.is_empty() {
            return Err(invalid("name is required"));
        }
        if r.remote_id.is_empty() {
            return Err(invalid("remoteID is required"));
        }
        if r.local_bucket_id.is_empty() {
            return Err(invalid("localBucketID is required"));
        }
        if r.remote_bucket_id.is_empty() && r.remote_bucket_name.is_empty() {
            return Err(invalid(
                "one of remoteBucketID or remoteBucketName is required",
            ));
        }
        if r.max_queue_size_bytes < MIN_MAX_QUEUE_BYTES {
            return Err(invalid(format!(
                "maxQueueSize too small, must be at least {MIN_MAX_QUEUE_BYTES}"
            )));
        }
        if r.max_age_seconds == 0 {
            r.max_age_seconds = DEFAULT_MAX_AGE_SECONDS;
        }
        if !(MIN_MAX_AGE_SECONDS..=MAX_MAX_AGE_SECONDS).contains(&r.max_age_seconds) {
            return Err(invalid(format!(
                "maxAgeSeconds must be 0 (the default, {DEFAULT_MAX_AGE_SECONDS}) or between {MIN_MAX_AGE_SECONDS} and {MAX_MAX_AGE_SECONDS}, got {}",
                r.max_age_seconds
            )));
        }
        let remote = self
            .remotes
            .get(&r.remote_id)
            .ok_or_else(|| invalid(format!("remote {} not found", r.remote_id)))?;
        if remote.org_id != r.org_id {
            return Err(invalid(format!(
                "remote {} belongs to another organization",
                r.remote_id
            )));
        }
        let bucket = catalog
            .buckets
            .get(&r.local_bucket_id)
            .ok_or_else(|| invalid(format!("local bucket {} not found", r.local_bucket_id)))?;
        if bucket.org_id != r.org_id {
            return Err(invalid(format!(
                "local bucket {} belongs to another organization",
                r.local_bucket_id
            )));
        }
        let taken = self.replications.values().any(|p| {
            p.replication
                .as_ref()
                .is_some_and(|o| o.id != r.id && o.org_id == r.org_id && o.name == r.name)
        });
        if taken {
            return Err(ReplicationError::Conflict(format!(
                "replication with name {} already exists",
                r.name
            )));
        }
        Ok(r)
    }

    /// The event creating `r` (from [`Replications::new_replication`]), copying the
    /// bucket's writes after `start_lsn` of the data log.
    pub fn create_replication(
        &self,
        catalog: &Catalog,
        r: Replication,
        start_lsn: u64,
    ) -> Result<Vec<Event>, ReplicationError> {
        let r = self.checked(catalog, r)?;
        Ok(vec![stamped(event::Kind::ReplicationCreated(
            ReplicationCreated {
                replication: Some(r),
                start_lsn,
            },
        ))])
    }

    /// The replication `id` with a PATCH's fields applied, checked.
    pub fn patched(
        &self,
        catalog: &Catalog,
        id: &str,
        spec: ReplicationSpec,
    ) -> Result<Replication, ReplicationError> {
        let mut r = self
            .replication(id)
            .cloned()
            .ok_or(ReplicationError::ReplicationNotFound)?;
        if let Some(v) = spec.name {
            r.name = v;
        }
        if let Some(v) = spec.description {
            r.description = v;
        }
        if let Some(v) = spec.remote_id {
            r.remote_id = v;
        }
        // Naming the remote bucket one way forgets the other.
        if let Some(v) = spec.remote_bucket_id {
            r.remote_bucket_id = v;
            r.remote_bucket_name.clear();
        }
        if let Some(v) = spec.remote_bucket_name {
            r.remote_bucket_name = v;
            if !r.remote_bucket_name.is_empty() {
                r.remote_bucket_id.clear();
            }
        }
        if let Some(v) = spec.max_queue_size_bytes {
            r.max_queue_size_bytes = v;
        }
        if let Some(v) = spec.max_age_seconds {
            r.max_age_seconds = v;
        }
        if let Some(v) = spec.drop_non_retryable_data {
            r.drop_non_retryable_data = v;
        }
        if spec.local_bucket_id.is_some() {
            return Err(invalid("localBucketID cannot be changed"));
        }
        self.checked(catalog, r)
    }

    pub fn update_replication(
        &self,
        catalog: &Catalog,
        r: Replication,
    ) -> Result<Vec<Event>, ReplicationError> {
        if !self.replications.contains_key(&r.id) {
            return Err(ReplicationError::ReplicationNotFound);
        }
        let r = self.checked(catalog, r)?;
        Ok(vec![stamped(event::Kind::ReplicationUpdated(
            ReplicationUpdated {
                replication: Some(r),
            },
        ))])
    }

    pub fn delete_replication(&self, id: &str) -> Result<Vec<Event>, ReplicationError> {
        if !self.replications.contains_key(id) {
            return Err(ReplicationError::ReplicationNotFound);
        }
        Ok(vec![stamped(event::Kind::ReplicationDeleted(
            ReplicationDeleted { id: id.to_owned() },
        ))])
    }
}

/// A batch confirmed by the remote.
pub(crate) fn delivered(id: &str, upto_lsn: u64, points: u64, bytes: u64) -> Event {
    stamped(event::Kind::ReplicationDelivered(ReplicationDelivered {
        id: id.to_owned(),
        upto_lsn,
        points,
        bytes,
    }))
}

/// Points passed over undelivered.
pub(crate) fn dropped(
    id: &str,
    upto_lsn: u64,
    points: u64,
    bytes: u64,
    reason: DropReason,
    message: String,
) -> Event {
    stamped(event::Kind::ReplicationDropped(ReplicationDropped {
        id: id.to_owned(),
        upto_lsn,
        points,
        bytes,
        reason: reason as i32,
        message,
    }))
}

/// A failed attempt.
pub(crate) fn attempt(id: &str, response_code: i32, error_message: String, stopped: bool) -> Event {
    stamped(event::Kind::ReplicationAttempt(ReplicationAttempt {
        id: id.to_owned(),
        response_code,
        error_message,
        stopped,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::BucketDeleted;

    fn catalog() -> Catalog {
        let mut c = Catalog::default();
        for e in c.create_org("org".into(), "acme").unwrap() {
            c.apply(&e);
        }
        for e in c
            .create_bucket("bucket".into(), "org", "metrics", 0)
            .unwrap()
        {
            c.apply(&e);
        }
        c
    }

    fn remote_spec() -> RemoteSpec {
        RemoteSpec {
            name: Some("b".into()),
            remote_url: Some("http://127.0.0.1:1".into()),
            remote_api_token: Some("secret".into()),
            ..RemoteSpec::default()
        }
    }

    fn spec() -> ReplicationSpec {
        ReplicationSpec {
            name: Some("r".into()),
            remote_id: Some("remote".into()),
            local_bucket_id: Some("bucket".into()),
            remote_bucket_name: Some("copy".into()),
            ..ReplicationSpec::default()
        }
    }

    fn with_remote(c: &Catalog) -> Replications {
        let mut s = Replications::default();
        for e in s
            .create_remote(c, "remote".into(), "org", remote_spec())
            .unwrap()
        {
            s.apply(&e);
        }
        s
    }

    #[test]
    fn defaults_and_bounds_are_influxdb_2s() {
        let c = catalog();
        let s = with_remote(&c);
        let r = s.new_replication(&c, "id".into(), "org", spec()).unwrap();
        assert_eq!(r.max_queue_size_bytes, DEFAULT_MAX_QUEUE_BYTES);
        assert_eq!(r.max_age_seconds, DEFAULT_MAX_AGE_SECONDS);
        assert!(!r.drop_non_retryable_data);
        let small = ReplicationSpec {
            max_queue_size_bytes: Some(MIN_MAX_QUEUE_BYTES - 1),
            ..spec()
        };
        assert_eq!(
            s.new_replication(&c, "id".into(), "org", small),
            Err(invalid("maxQueueSize too small, must be at least 33554430"))
        );
        for age in [59, 5_184_001, -1] {
            let s2 = ReplicationSpec {
                max_age_seconds: Some(age),
                ..spec()
            };
            assert!(s.new_replication(&c, "id".into(), "org", s2).is_err());
        }
        let neither = ReplicationSpec {
            remote_bucket_name: None,
            ..spec()
        };
        assert!(s.new_replication(&c, "id".into(), "org", neither).is_err());
    }

    #[test]
    fn progress_folds_and_a_bucket_takes_its_replications_with_it() {
        let c = catalog();
        let mut s = with_remote(&c);
        let r = s.new_replication(&c, "id".into(), "org", spec()).unwrap();
        for e in s.create_replication(&c, r, 7).unwrap() {
            s.apply(&e);
        }
        assert!(s.delete_remote("remote").is_err(), "in use");
        s.apply(&attempt("id", 400, "bad".into(), true));
        assert!(s.replications["id"].stopped);
        s.apply(&dropped(
            "id",
            9,
            3,
            100,
            DropReason::Operator,
            String::new(),
        ));
        s.apply(&delivered("id", 12, 5, 200));
        let p = &s.replications["id"];
        assert_eq!(
            (p.delivered_lsn, p.sent_points, p.dropped_operator_points),
            (12, 5, 3)
        );
        assert_eq!((p.latest_response_code, p.stopped), (204, false));
        assert_eq!(Replications::from_state(s.to_state()), s);
        s.apply(&stamped(event::Kind::BucketDeleted(BucketDeleted {
            id: "bucket".into(),
        })));
        assert!(s.replications.is_empty());
        assert!(s.delete_remote("remote").is_ok());
    }
}
