//! `shardkeeper ctl proxy aside list | replay | discard`: the batches a proxy's backends
//! refused for good (400, 404), kept aside by the proxy rather than dropped: listed, sent
//! again (once the backend can take them: its database created, say), or dropped.
//!
//! `shardkeeper ctl proxy migrate-status [--job N] [--wait]`: a migration's progress
//! (rebalance, recovery, resync, clear), followed to its end with `--wait`: a progress
//! bar on a terminal, a line per change otherwise.

use crate::client::{ClientError, Credentials, InfluxClient, Method};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::time::Duration;

#[derive(Subcommand)]
pub(super) enum ProxyCommand {
    /// Batches kept aside.
    Aside {
        #[command(subcommand)]
        command: AsideCommand,
    },
    /// The latest migration (or `--job`), its measurements migrated and points copied.
    MigrateStatus {
        #[command(flatten)]
        proxy: ProxyAddress,
        #[arg(long)]
        job: Option<u64>,
        /// Follow it until it finishes (fails if measurements failed).
        #[arg(long)]
        wait: bool,
    },
}

/// How often `migrate-status --wait` asks the proxy.
const POLL_EVERY: Duration = Duration::from_secs(1);

#[derive(clap::Args)]
pub(super) struct ProxyAddress {
    #[arg(long, default_value = "http://127.0.0.1:7076")]
    url: String,
    /// The proxy's `username` (when it has one).
    #[arg(long, env = "SHARDKEEPER_PROXY_USER")]
    user: Option<String>,
    #[arg(long, env = "SHARDKEEPER_PROXY_PASSWORD")]
    password: Option<String>,
}

#[derive(Subcommand)]
pub(super) enum AsideCommand {
    /// One line per batch: id, backend, database, lines, the backend's answer.
    List {
        #[command(flatten)]
        proxy: ProxyAddress,
    },
    /// Writes batches to the proxy's journal again, each for its backend; it sends them
    /// after what it already has.
    Replay {
        #[command(flatten)]
        proxy: ProxyAddress,
        /// A batch's id, or `all`.
        id: String,
        /// With `all`: only this backend's batches.
        #[arg(long)]
        backend: Option<String>,
    },
    /// Drops batches for good.
    Discard {
        #[command(flatten)]
        proxy: ProxyAddress,
        id: String,
        #[arg(long)]
        backend: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub(super) enum CtlProxyError {
    #[error(transparent)]
    Remote(#[from] ClientError),
    #[error("{0}")]
    Answer(String),
}

fn client(proxy: &ProxyAddress) -> Result<InfluxClient, ClientError> {
    let credentials = match (&proxy.user, &proxy.password) {
        (None, None) => Credentials::None,
        (u, p) => Credentials::Basic {
            user: u.clone().unwrap_or_default(),
            password: p.clone().unwrap_or_default(),
        },
    };
    super::ctl_client(&proxy.url, credentials)
}

async fn call(
    c: &InfluxClient,
    method: Method,
    path: &str,
    query: &[(&str, &str)],
) -> Result<Value, CtlProxyError> {
    let response = c.send(path, c.request(method, path).query(query)).await?;
    let bytes = response
        .bytes()
        .await
        .map_err(|e| CtlProxyError::Answer(format!("{path}: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| CtlProxyError::Answer(format!("{path}: {e}")))
}

pub(super) async fn run(command: ProxyCommand, out: &mut impl Write) -> Result<(), CtlProxyError> {
    let command = match command {
        ProxyCommand::Aside { command } => command,
        ProxyCommand::MigrateStatus { proxy, job, wait } => {
            return migrate_status(&proxy, job, wait, out).await
        }
    };
    let write = |out: &mut dyn Write, text: String| {
        writeln!(out, "{text}").map_err(|e| CtlProxyError::Answer(e.to_string()))
    };
    match command {
        AsideCommand::List { proxy } => {
            let list = call(&client(&proxy)?, Method::GET, "/proxy/aside", &[]).await?;
            let batches = list["aside"].as_array().cloned().unwrap_or_default();
            if batches.is_empty() {
                return write(out, "no batch kept aside".into());
            }
            for b in batches {
                write(
                    out,
                    format!(
                        "{} backend={} db={} rp={} lines={} status={} {}",
                        b["id"],
                        b["backend"].as_str().unwrap_or(""),
                        b["db"].as_str().unwrap_or(""),
                        b["rp"].as_str().unwrap_or(""),
                        b["lines"],
                        b["status"],
                        b["message"].as_str().unwrap_or("")
                    ),
                )?;
            }
            Ok(())
        }
        AsideCommand::Replay { proxy, id, backend } => {
            resolve(&proxy, "/proxy/aside/replay", &id, backend, out).await
        }
        AsideCommand::Discard { proxy, id, backend } => {
            resolve(&proxy, "/proxy/aside/discard", &id, backend, out).await
        }
    }
}

async fn resolve(
    proxy: &ProxyAddress,
    path: &str,
    id: &str,
    backend: Option<String>,
    out: &mut impl Write,
) -> Result<(), CtlProxyError> {
    let mut query = vec![("id", id)];
    if let Some(b) = &backend {
        query.push(("backend", b.as_str()));
    }
    let answer = call(&client(proxy)?, Method::POST, path, &query).await?;
    let ids = answer["resolved"].as_array().cloned().unwrap_or_default();
    writeln!(out, "{} batch(es): {:?}", ids.len(), ids)
        .map_err(|e| CtlProxyError::Answer(e.to_string()))
}

/// The job `id` (or the latest) as `/proxy/migrations` gives it.
async fn migration(c: &InfluxClient, id: Option<u64>) -> Result<Value, CtlProxyError> {
    let list = call(c, Method::GET, "/proxy/migrations", &[]).await?;
    let jobs = list["migrations"].as_array().cloned().unwrap_or_default();
    let found = match id {
        Some(id) => jobs.into_iter().find(|j| j["id"].as_u64() == Some(id)),
        None => jobs.into_iter().next(),
    };
    found.ok_or_else(|| match id {
        Some(id) => CtlProxyError::Answer(format!("no migration {id}")),
        None => CtlProxyError::Answer("no migration yet".into()),
    })
}

/// One line for a job: what it is, where it stands.
fn job_line(j: &Value) -> String {
    let what = match j["kind"].as_str().unwrap_or("") {
        "recovery" => format!(
            "recovery circle {} -> {}",
            j["circle_id"], j["to_circle_id"]
        ),
        "resync" => "resync".to_owned(),
        kind => format!(
            "{kind}{} circle {}",
            j["operation"]
                .as_str()
                .map(|o| format!(" {o}"))
                .unwrap_or_default(),
            j["circle_id"]
        ),
    };
    format!(
        "job {} {what}: {}, {}/{} measurements migrated, {} failed, {} points",
        j["id"],
        j["state"].as_str().unwrap_or(""),
        j["migrated"],
        j["to_migrate"],
        j["failed"],
        j["points"]
    )
}

fn print_job(j: &Value, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "{}", job_line(j))?;
    for s in j["sources"].as_array().into_iter().flatten() {
        write!(
            out,
            "  {}: {}/{} migrated, {} failed, {} points",
            s["url"].as_str().unwrap_or(""),
            s["migrated"],
            s["to_migrate"],
            s["failed"],
            s["points"]
        )?;
        match s["skipped"].as_str() {
            Some(reason) => writeln!(out, ", passed over: {reason}")?,
            None => writeln!(out)?,
        }
        for u in s["under_way"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "    under way {}.{} rp={} up to {} ns, {} points",
                u["db"].as_str().unwrap_or(""),
                u["measurement"].as_str().unwrap_or(""),
                u["rp"].as_str().unwrap_or(""),
                u["upto_unix_nanos"],
                u["points"]
            )?;
        }
        for e in s["errors"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "    failed {}.{}: {}",
                e["db"].as_str().unwrap_or(""),
                e["measurement"].as_str().unwrap_or(""),
                e["error"].as_str().unwrap_or("")
            )?;
        }
    }
    Ok(())
}

async fn migrate_status(
    proxy: &ProxyAddress,
    id: Option<u64>,
    wait: bool,
    out: &mut impl Write,
) -> Result<(), CtlProxyError> {
    let io = |e: std::io::Error| CtlProxyError::Answer(e.to_string());
    let c = client(proxy)?;
    let mut job = migration(&c, id).await?;
    if !wait {
        return print_job(&job, out).map_err(io);
    }
    // Followed: the same job to its end, whatever starts after it.
    let id = job["id"].as_u64();
    let bar = std::io::stdout().is_terminal().then(|| {
        let bar = ProgressBar::new(job["to_migrate"].as_u64().unwrap_or(0));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} {bar:40} {pos}/{len} measurements, {msg} points, {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(format!("job {}", job["id"]));
        bar
    });
    let mut last = String::new();
    loop {
        let line = job_line(&job);
        match &bar {
            Some(bar) => {
                bar.set_length(job["to_migrate"].as_u64().unwrap_or(0));
                bar.set_position(
                    job["migrated"].as_u64().unwrap_or(0) + job["failed"].as_u64().unwrap_or(0),
                );
                bar.set_message(job["points"].to_string());
            }
            None if line != last => writeln!(out, "{line}").map_err(io)?,
            None => {}
        }
        last = line;
        if job["state"] == "finished" {
            break;
        }
        tokio::time::sleep(POLL_EVERY).await;
        job = migration(&c, id).await?;
    }
    if let Some(bar) = bar {
        bar.finish();
    }
    print_job(&job, out).map_err(io)?;
    match job["failed"].as_u64().unwrap_or(0) {
        0 => Ok(()),
        n => Err(CtlProxyError::Answer(format!(
            "{n} measurement(s) failed to migrate"
        ))),
    }
}
