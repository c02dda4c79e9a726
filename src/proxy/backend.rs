//! One backend as the proxy sees it: its place in the circles, its clients, whether it
//! answers `/ping`, and the figures of its stream.

use super::cipher;
use super::config::{BackendConfig, ProxyConfig};
use crate::client::{ClientError, ClientOptions, Credentials, InfluxClient};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Counters of one backend's stream, read by `/health` and `/metrics`.
#[derive(Debug, Default)]
pub struct StreamFigures {
    /// Accepted for this backend and not yet delivered or kept aside.
    pub backlog_lines: AtomicU64,
    pub backlog_bytes: AtomicU64,
    /// Write records holding lines for it, not yet delivered.
    pub backlog_records: AtomicU64,
    pub delivered_lines: AtomicU64,
    pub delivered_batches: AtomicU64,
    /// Attempts that failed and will be made again.
    pub failed_attempts: AtomicU64,
    pub kept_aside_batches: AtomicU64,
    pub kept_aside_lines: AtomicU64,
    /// A batch is being sent again after a failure (influx-proxy's `rewrite`).
    pub retrying: AtomicBool,
}

impl StreamFigures {
    pub fn add_backlog(&self, lines: u64, bytes: u64, records: u64) {
        self.backlog_lines.fetch_add(lines, Ordering::Relaxed);
        self.backlog_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.backlog_records.fetch_add(records, Ordering::Relaxed);
    }

    pub fn remove_backlog(&self, lines: u64, bytes: u64, records: u64) {
        let sub = |a: &AtomicU64, n: u64| {
            let _ = a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
        };
        sub(&self.backlog_lines, lines);
        sub(&self.backlog_bytes, bytes);
        sub(&self.backlog_records, records);
    }
}

pub struct Backend {
    pub name: String,
    pub url: String,
    /// Its circle, and its index in the circle (its ring key with `hash_key = idx`).
    pub circle: usize,
    pub index: usize,
    /// Writes: bounded by `write_timeout`.
    pub writer: InfluxClient,
    /// Queries: a heavy one may rightly take long.
    pub querier: InfluxClient,
    /// What both send (a migration hands it to another backend that reads from this one).
    pub credentials: Credentials,
    /// Answered its last `/ping` (or its last request).
    active: AtomicBool,
    pub figures: StreamFigures,
    /// Woken when the backend comes back, so that its delivery does not wait out a
    /// back-off.
    pub revived: tokio::sync::Notify,
}

impl Backend {
    pub fn new(
        config: &ProxyConfig,
        backend: &BackendConfig,
        circle: usize,
        index: usize,
    ) -> Result<Backend, ClientError> {
        let credentials = match (backend.username.is_empty(), backend.password.is_empty()) {
            (true, true) => Credentials::None,
            _ if config.auth_secure => Credentials::Basic {
                user: cipher::decrypt_text(&backend.username),
                password: cipher::decrypt_text(&backend.password),
            },
            _ => Credentials::Basic {
                user: backend.username.clone(),
                password: backend.password.clone(),
            },
        };
        let timeout = Duration::from_secs(config.write_timeout);
        let writer = InfluxClient::new(
            &backend.url,
            ClientOptions {
                credentials: credentials.clone(),
                connect_timeout: timeout,
                request_timeout: Some(timeout),
                ..ClientOptions::default()
            },
        )?;
        let querier = InfluxClient::new(
            &backend.url,
            ClientOptions {
                credentials: credentials.clone(),
                connect_timeout: timeout,
                ..ClientOptions::default()
            },
        )?;
        Ok(Backend {
            name: backend.name.clone(),
            url: backend.url.clone(),
            circle,
            index,
            writer,
            querier,
            credentials,
            active: AtomicBool::new(true),
            figures: StreamFigures::default(),
            revived: tokio::sync::Notify::new(),
        })
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    pub fn set_active(&self, active: bool) {
        let was = self.active.swap(active, Ordering::Relaxed);
        if active && !was {
            tracing::info!(backend = %self.name, url = %self.url, "backend is back");
            self.revived.notify_waiters();
        } else if !active && was {
            tracing::warn!(backend = %self.name, url = %self.url, "backend is down");
        }
    }

    /// Lines waiting for this backend.
    pub fn has_backlog(&self) -> bool {
        self.figures.backlog_records.load(Ordering::Relaxed) > 0
    }

    /// Pings the backend every `every` for as long as the process runs.
    pub async fn watch(self: std::sync::Arc<Self>, every: Duration) {
        loop {
            let up = self.writer.ping().await.is_ok();
            self.set_active(up);
            tokio::time::sleep(every).await;
        }
    }
}
