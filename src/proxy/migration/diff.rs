//! Recovery and resync between two shardkeeper nodes: only what differs is moved.
//!
//! The destination node is asked to pull the measurement from the source
//! (`POST /shard-repair/pull`, anti-entropy's comparison of digest trees done by the node:
//! see `src/entropy/pull.rs`), with the source's URL and the credentials the proxy has
//! for it. The proxy holds no digest and parses no wire format: it reaches backends only
//! through the client. One way, source to destination (recovery's meaning); resync runs
//! every circle as the source in turn, so each pair ends with the union, the newer
//! version winning.
//!
//! A destination that is not a shardkeeper node (404), or that cannot compare with the
//! source (409: the source serves no digests to these credentials, or the destination
//! lacks a shard holding the measurement), leaves the job to the windowed copy
//! ([`super::copy`]).

use super::copy::CopyError;
use crate::client::{ClientError, Credentials, InfluxClient, Method};

pub(crate) struct Pull<'a> {
    pub destination: &'a InfluxClient,
    pub source_url: &'a str,
    pub source_credentials: &'a Credentials,
    pub db: &'a str,
    pub measurement: &'a str,
    /// Only shards ending after this (resync's `seconds`).
    pub since: Option<i64>,
}

impl Pull<'_> {
    /// The points the destination received; None when the two cannot be compared.
    pub(crate) async fn run(&self) -> Result<Option<u64>, CopyError> {
        let (username, password) = match self.source_credentials {
            Credentials::Basic { user, password } => (user.as_str(), password.as_str()),
            _ => ("", ""),
        };
        let body = serde_json::json!({
            "source": self.source_url,
            "username": username,
            "password": password,
            "db": self.db,
            "measurement": self.measurement,
            "since": self.since,
        });
        let path = "/shard-repair/pull";
        let request = self
            .destination
            .request(Method::POST, path)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        let response = match self.destination.send(path, request).await {
            Ok(r) => r,
            Err(ClientError::Status {
                status: 404 | 409,
                message,
                ..
            }) => {
                tracing::info!(db = self.db, measurement = self.measurement, source = self.source_url, reason = %message, "no digests to compare: a windowed copy instead");
                return Ok(None);
            }
            Err(e) => return Err(CopyError::Destination(e)),
        };
        let answer = |reason: String| CopyError::Answer {
            url: self.source_url.to_owned(),
            reason: format!("the destination's pull answer: {reason}"),
        };
        let bytes = response.bytes().await.map_err(|e| answer(e.to_string()))?;
        let figures: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| answer(e.to_string()))?;
        tracing::info!(db = self.db, measurement = self.measurement, source = self.source_url, %figures, "pulled what differs");
        Ok(Some(figures["points_received"].as_u64().unwrap_or(0)))
    }
}
