//! The data node as a process (`shardkeeper serve`): owns the data directory, opens the
//! node's services ([`crate::node`]), runs their background tasks, and serves the HTTP API
//! until SIGINT/SIGTERM. The one module that knows both the node and the HTTP server.

mod notify;

use crate::config::NodeConfig;
use crate::node::{Node, NodeError};
use crate::projection::ProjectionError;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

pub(crate) use crate::dir_lock::DataDirLock;

#[derive(Debug, thiserror::Error)]
pub(crate) enum DaemonError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("data directory {path}: {source}")]
    DataDir { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Lock(#[from] crate::dir_lock::LockError),
    #[error("control log: {0}")]
    ControlLog(#[from] ProjectionError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: io::Error,
    },
    #[error("http server: {0}")]
    Server(io::Error),
    #[error(transparent)]
    Tls(#[from] crate::net::tls::TlsError),
}

pub(crate) fn serve(config: NodeConfig) -> Result<(), DaemonError> {
    let data_dir = config.data_dir.clone();
    // Made durable in its parent as it is created (and so is each directory below it: the
    // control log's and the shards'): a log's records are synced, but an unsynced
    // directory entry above them can still vanish with them.
    use crate::log::fs::FileSystem;
    crate::log::fs::RealFs
        .create_dir_all(&data_dir)
        .map_err(|source| DaemonError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
    let _lock = DataDirLock::acquire(&data_dir)?;
    // Read before the node opens, so that a wrong path fails the start at once.
    let certificates = match config.https_enabled {
        true => Some(crate::net::tls::Certificates::load(
            &config.https_certificate,
            &config.https_private_key,
        )?),
        false => None,
    };
    let (node, rebuilt) = Node::open(&config)?;
    let node = Arc::new(node);
    let torn = rebuilt.recovery.torn_tail.as_ref().map_or(0, |t| t.2);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        data_dir = %data_dir.display(),
        log_io = %node.io_backend(),
        records = rebuilt.recovery.records,
        torn_bytes_dropped = torn,
        snapshot_lsn = rebuilt.snapshot_lsn.unwrap_or(0),
        replayed = rebuilt.replayed,
        "shardkeeper starting"
    );
    actix_web::rt::System::new().block_on(async move {
        if let Err(e) = node.backups.fail_interrupted().await {
            tracing::warn!(error = %e, "could not record interrupted backups");
        }
        if let Err(e) = node.replications.start_senders() {
            tracing::error!(error = %e, "could not start the replication senders");
        }
        if let Err(e) = node.entropy.start() {
            tracing::error!(error = %e, "could not start anti-entropy");
        }
        actix_web::rt::spawn(enforce_retention(node.clone()));
        actix_web::rt::spawn(flush_idle_shards(node.clone()));
        let cqs = &config.continuous_queries;
        if cqs.enabled {
            let every =
                std::time::Duration::from_secs_f64(cqs.run_interval_seconds.clamp(0.001, 1e6));
            actix_web::rt::spawn(crate::query::continuous::run_on_schedule(
                node.clone(),
                every,
            ));
        }
        let server = crate::http::server(node.clone(), certificates.clone()).map_err(|source| {
            DaemonError::Bind {
                addr: config.bind,
                source,
            }
        })?;
        let addr = server.addrs().first().copied().unwrap_or(config.bind);
        let scheme = server.scheme();
        let stopper = server.stopper();
        let signals = Signals::install().map_err(DaemonError::Server)?;
        let reloads = signal_hangup().map_err(DaemonError::Server)?;
        actix_web::rt::spawn(reload_on_hangup(reloads, certificates));
        let stopping = node.clone();
        actix_web::rt::spawn(async move {
            let name = signals.wait().await;
            notify::stopping();
            tracing::info!(signal = name, "stopping: no new requests, draining");
            // Queries answer their interruption at once rather than run out the grace.
            stopping.queries.stop_all();
            exit_after_grace(stopping.config.shutdown_grace_seconds);
            stopper.stop(true).await;
        });
        // Stdout carries one machine-readable line so that tests and scripts can find the
        // port when binding port 0.
        println!(
            "shardkeeper listening on {scheme}://{addr} (log io: {})",
            node.io_backend()
        );
        let ready = actix_web::rt::spawn(notify::ready_then_watchdog(node.clone(), addr, scheme));
        server.run().await.map_err(DaemonError::Server)?;
        ready.abort();
        // Large heads are written out, so that the next start replays little; small ones
        // stay in the data log (durable already: writing out thousands of them would make
        // stopping slow, and replaying them is quick).
        tracing::info!("stopped accepting requests; flushing large heads, writing final snapshot");
        node.storage.flush_large_heads(LARGE_HEAD_BYTES);
        let lsn = node.control.snapshot().await?;
        tracing::info!(snapshot_lsn = lsn, "shardkeeper stopped cleanly");
        Ok(())
    })
}

/// Heads at least this large are written out at a clean stop.
const LARGE_HEAD_BYTES: usize = 1 << 20;

/// Ends the process once the grace period is over, whatever still runs then: a step of a
/// request that ignores its interruption, or a final flush that cannot finish, must not
/// keep a stopped node alive. Everything acknowledged is in the logs already.
fn exit_after_grace(grace_seconds: u64) {
    let grace = std::time::Duration::from_secs(grace_seconds);
    let spawned = std::thread::Builder::new()
        .name("shutdown-watchdog".into())
        .spawn(move || {
            std::thread::sleep(grace);
            tracing::error!(
                grace_seconds,
                "still stopping after the shutdown grace period: exiting now"
            );
            std::process::exit(1);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no shutdown watchdog: the node exits when its work ends");
    }
}

/// SIGTERM and SIGINT, registered before the node says it is listening.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// SIGHUP, registered before the node says it is listening: without it a HUP (systemd's
/// `ExecReload`, a log rotator's) would end the process.
fn signal_hangup() -> io::Result<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{signal, SignalKind};
    signal(SignalKind::hangup())
}

/// Reads the TLS certificate and key again at each SIGHUP (a renewal); a failed reload
/// keeps the one in use.
async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    certificates: Option<Arc<crate::net::tls::Certificates>>,
) {
    while hangups.recv().await.is_some() {
        match &certificates {
            None => tracing::info!("SIGHUP: nothing to reload (https_enabled is off)"),
            Some(c) => match c.reload() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificate and key reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: TLS reload failed; the certificate in use stays")
                }
            },
        }
    }
}

/// Writes out the heads of shards that have gone idle (see [`Storage::flush_idle`]).
async fn flush_idle_shards(node: Arc<Node>) {
    let idle = std::time::Duration::from_secs(node.config.idle_flush_seconds.max(1));
    loop {
        tokio::time::sleep(idle / 2).await;
        let node = node.clone();
        let _ = actix_web::rt::task::spawn_blocking(move || {
            node.storage.flush_idle(idle.as_nanos() as i64)
        })
        .await;
    }
}

/// Drops shards past their retention policy's duration, as InfluxDB's retention service:
/// first the drop events (durable), then the files.
async fn enforce_retention(node: Arc<Node>) {
    let every = std::time::Duration::from_secs(node.config.retention_check_seconds.max(1));
    loop {
        tokio::time::sleep(every).await;
        let now = crate::catalog::now_nanos();
        let dropped = node
            .control
            .mutate(|c| {
                let expired = c.catalog.expired_shards(now);
                Ok::<_, ProjectionError>((c.catalog.drop_shards(&expired), expired))
            })
            .await;
        match dropped {
            Ok(expired) if !expired.is_empty() => {
                let ids: Vec<u64> = expired.iter().map(|s| s.id).collect();
                tracing::info!(shards = ?ids, "retention: dropping expired shards");
                node.storage.remove_shards(&node.control, &ids).await;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention check failed"),
        }
    }
}
