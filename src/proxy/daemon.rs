//! The proxy as a process (`shardkeeper proxy --config FILE`): locks its data directory,
//! opens the journal, starts each backend's delivery on a runtime of its own, serves the
//! HTTP API until SIGINT/SIGTERM, and snapshots its journal on the way out.

use super::config::{ConfigError, ProxyConfig};
use super::service::{ProxyError, ProxyService};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyDaemonError {
    #[error("config source load failed: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Lock(#[from] crate::dir_lock::LockError),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error(transparent)]
    Tls(#[from] crate::net::tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("proxy: {0}")]
    Runtime(std::io::Error),
}

/// HTTP workers: requests mostly wait on the journal or a backend.
const HTTP_WORKERS: usize = 2;
/// Threads of the deliveries' runtime.
const DELIVERY_THREADS: usize = 2;

pub(crate) fn run(config: ProxyConfig) -> Result<(), ProxyDaemonError> {
    use crate::log::fs::FileSystem;
    let data_dir = config.data_dir.clone();
    crate::log::fs::RealFs
        .create_dir_all(&data_dir)
        .map_err(|source| ProxyDaemonError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
    let _lock = crate::dir_lock::DataDirLock::acquire(&data_dir)?;
    let certificates = match config.https_enabled {
        true => Some(crate::net::tls::Certificates::load(
            &config.https_cert,
            &config.https_key,
        )?),
        false => None,
    };
    let acceptor = match &certificates {
        Some(c) => Some(c.acceptor()?),
        None => None,
    };
    let addr = config.listen_socket_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(DELIVERY_THREADS)
        .thread_name("proxy-delivery")
        .enable_all()
        .build()
        .map_err(ProxyDaemonError::Runtime)?;
    let service = Arc::new(ProxyService::open(config)?);
    service.start(runtime.handle());
    let listener =
        crate::net::listen(addr).map_err(|source| ProxyDaemonError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(ProxyDaemonError::Runtime)?;
    let scheme = match acceptor {
        Some(_) => "https",
        None => "http",
    };
    actix_web::rt::System::new().block_on(async {
        let server = super::http::server(service.clone(), listener, acceptor, HTTP_WORKERS)
            .map_err(ProxyDaemonError::Runtime)?;
        let stopper = server.handle();
        let (mut term, mut int, mut hup) = {
            use tokio::signal::unix::{signal, SignalKind};
            let install = |k| signal(k).map_err(ProxyDaemonError::Runtime);
            (
                install(SignalKind::terminate())?,
                install(SignalKind::interrupt())?,
                install(SignalKind::hangup())?,
            )
        };
        actix_web::rt::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "proxy stopping");
            stopper.stop(true).await;
        });
        actix_web::rt::spawn(async move {
            while hup.recv().await.is_some() {
                match &certificates {
                    None => tracing::info!("SIGHUP: nothing to reload (https_enabled is off)"),
                    Some(c) => match c.reload() {
                        Ok(()) => tracing::info!("SIGHUP: TLS certificate and key reloaded"),
                        Err(e) => tracing::error!(error = %e, "SIGHUP: TLS reload failed; the certificate in use stays"),
                    },
                }
            }
        });
        // One machine-readable line on stdout, so that tests and scripts find the port.
        println!("shardkeeper proxy listening on {scheme}://{bound}");
        server.await.map_err(ProxyDaemonError::Runtime)
    })?;
    let snapshot = runtime.block_on(service.snapshot());
    if let Err(e) = snapshot {
        tracing::warn!(error = %e, "final proxy journal snapshot failed");
    }
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    tracing::info!("proxy stopped");
    Ok(())
}
