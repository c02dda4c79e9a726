//! systemd's service notifications (`Type=notify`), through `sd-notify`: `READY=1` once the
//! node answers its own `/ping` (not merely once it has bound its socket: replay and the
//! first snapshot come before), `WATCHDOG=1` every half `WATCHDOG_USEC` while it still
//! answers and its logs take writes, `STOPPING=1` when a signal stops it. Without
//! `NOTIFY_SOCKET` (not under systemd) each is nothing.

use crate::client::{ClientOptions, InfluxClient, TlsOptions};
use crate::node::Node;
use sd_notify::NotifyState;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How often the node asks itself for `/ping` until it answers.
const READY_PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// One probe's bound: a node that cannot answer its own `/ping` in this long is not ready,
/// or not healthy.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

fn notify(state: NotifyState) {
    if let Err(e) = sd_notify::notify(false, &[state]) {
        tracing::warn!(error = %e, "could not notify systemd");
    }
}

/// Says `STOPPING=1`.
pub(super) fn stopping() {
    notify(NotifyState::Stopping);
}

/// Waits until the server at `addr` answers `/ping`, says `READY=1`, then keeps systemd's
/// watchdog fed while the node is healthy. Runs for the life of the server.
pub(super) async fn ready_then_watchdog(node: Arc<Node>, addr: SocketAddr, scheme: &str) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let client = match self_client(addr, scheme) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "no client for the readiness probe: not notifying systemd");
            return;
        }
    };
    while client.ping().await.is_err() {
        tokio::time::sleep(READY_PROBE_INTERVAL).await;
    }
    // Logged first, so that the line is in the log before systemd (or a test) hears.
    tracing::info!("the node answers /ping: telling systemd it is ready");
    notify(NotifyState::Ready);
    let Some(interval) = watchdog_interval() else {
        return;
    };
    let every = interval / 2;
    loop {
        tokio::time::sleep(every).await;
        let logs_ok = node.failure().is_none() && node.storage.data_log().failure().is_none();
        match client.ping().await {
            Ok(_) if logs_ok => notify(NotifyState::Watchdog),
            Ok(_) => tracing::warn!("a log refuses writes: withholding systemd's watchdog"),
            Err(e) => {
                tracing::warn!(error = %e, "no answer to /ping: withholding systemd's watchdog")
            }
        }
    }
}

/// The watchdog's interval, as systemd's `sd_watchdog_enabled` reads it: `WATCHDOG_USEC`,
/// for this process unless `WATCHDOG_PID` names another. (sd-notify's own reading wants
/// `WATCHDOG_PID` set, which systemd's does not.)
fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// A client of the node's own listener: on loopback when it listens on every address, and
/// over TLS without checking the certificate (it is the node's own, reached on loopback,
/// whatever name it was issued for).
fn self_client(addr: SocketAddr, scheme: &str) -> Result<InfluxClient, crate::client::ClientError> {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let url = format!("{scheme}://{}", SocketAddr::new(ip, addr.port()));
    InfluxClient::new(
        &url,
        ClientOptions {
            request_timeout: Some(PROBE_TIMEOUT),
            tls: TlsOptions {
                ca_certificate_pem: None,
                insecure: true,
            },
            ..ClientOptions::default()
        },
    )
}
