//! `shardkeeper ctl proxy aside list | replay | discard`: the batches a proxy's backends
//! refused for good (400, 404), kept aside by the proxy rather than dropped: listed, sent
//! again (once the backend can take them: its database created, say), or dropped.

use crate::client::{ClientError, Credentials, InfluxClient, Method};
use clap::Subcommand;
use serde_json::Value;
use std::io::Write;

#[derive(Subcommand)]
pub(super) enum ProxyCommand {
    /// Batches kept aside.
    Aside {
        #[command(subcommand)]
        command: AsideCommand,
    },
}

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
    let ProxyCommand::Aside { command } = command;
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
