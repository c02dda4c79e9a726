//! `shardkeeper ctl replication list | show | drop-head`: a node's replications, their
//! queues' progress, and the way out of a stopped replication (dropping the batch the
//! remote refuses for good).

use crate::client::{ClientError, Credentials, InfluxClient, Method};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::io::{IsTerminal, Write};

#[derive(Subcommand)]
pub(super) enum ReplicationCommand {
    /// Every replication of an organization (of every organization, without --org-id).
    List {
        #[arg(long, default_value = "http://127.0.0.1:8086")]
        url: String,
        #[arg(long, env = "SHARDKEEPER_TOKEN", allow_hyphen_values = true)]
        token: Option<String>,
        #[arg(long)]
        org_id: Option<String>,
    },
    /// One replication: settings, queue and the latest attempt (a bar of the queue's
    /// fill on a terminal).
    Show {
        #[arg(long, default_value = "http://127.0.0.1:8086")]
        url: String,
        #[arg(long, env = "SHARDKEEPER_TOKEN", allow_hyphen_values = true)]
        token: Option<String>,
        id: String,
    },
    /// Drops the batch at the head of the queue: what a stopped replication cannot
    /// deliver (a remote's 400, say). The points are gone from the queue, not locally.
    DropHead {
        #[arg(long, default_value = "http://127.0.0.1:8086")]
        url: String,
        #[arg(long, env = "SHARDKEEPER_TOKEN", allow_hyphen_values = true)]
        token: Option<String>,
        id: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub(super) enum CtlReplicationError {
    #[error(transparent)]
    Remote(#[from] ClientError),
    #[error("{0}")]
    Answer(String),
}

fn client(url: &str, token: Option<String>) -> Result<InfluxClient, ClientError> {
    super::ctl_client(url, token.map_or(Credentials::None, Credentials::Token))
}

async fn json(
    c: &InfluxClient,
    method: Method,
    path: &str,
    query: &[(&str, &str)],
) -> Result<Value, CtlReplicationError> {
    let request = c.request(method, path).query(query);
    let response = c.send(path, request).await?;
    let bytes = response
        .bytes()
        .await
        .map_err(|e| CtlReplicationError::Answer(format!("{path}: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| CtlReplicationError::Answer(format!("{path}: {e}")))
}

pub(super) async fn run(
    command: ReplicationCommand,
    out: &mut impl Write,
) -> Result<(), CtlReplicationError> {
    match command {
        ReplicationCommand::List { url, token, org_id } => {
            let c = client(&url, token)?;
            let orgs: Vec<String> = match org_id {
                Some(o) => vec![o],
                None => json(&c, Method::GET, "/api/v2/orgs", &[]).await?["orgs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o["id"].as_str().map(str::to_owned))
                    .collect(),
            };
            let _ = writeln!(
                out,
                "{:<16} {:<20} {:>14} {:>14} {:>6}  latest error",
                "id", "name", "queued bytes", "max bytes", "code"
            );
            for org in orgs {
                let list =
                    json(&c, Method::GET, "/api/v2/replications", &[("orgID", &org)]).await?;
                for r in list["replications"].as_array().into_iter().flatten() {
                    let _ = writeln!(
                        out,
                        "{:<16} {:<20} {:>14} {:>14} {:>6}  {}",
                        r["id"].as_str().unwrap_or(""),
                        r["name"].as_str().unwrap_or(""),
                        r["currentQueueSizeBytes"],
                        r["maxQueueSizeBytes"],
                        r["latestResponseCode"]
                            .as_i64()
                            .map_or("-".into(), |c| c.to_string()),
                        r["latestErrorMessage"].as_str().unwrap_or(""),
                    );
                }
            }
            Ok(())
        }
        ReplicationCommand::Show { url, token, id } => {
            let c = client(&url, token)?;
            let r = json(&c, Method::GET, &format!("/api/v2/replications/{id}"), &[]).await?;
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&r).unwrap_or_default()
            );
            let (queued, max) = (
                r["currentQueueSizeBytes"].as_u64().unwrap_or(0),
                r["maxQueueSizeBytes"].as_u64().unwrap_or(0),
            );
            if std::io::stdout().is_terminal() && max > 0 {
                let bar = ProgressBar::new(max);
                bar.set_style(
                    ProgressStyle::with_template("queue {bar:40} {bytes}/{total_bytes}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_position(queued.min(max));
                bar.abandon();
            }
            Ok(())
        }
        ReplicationCommand::DropHead { url, token, id } => {
            let c = client(&url, token)?;
            let path = format!("/api/v2/replications/{id}/drop-head");
            let answer = json(&c, Method::POST, &path, &[]).await?;
            let _ = writeln!(
                out,
                "dropped {} points from the head of replication {id}",
                answer["droppedPoints"]
            );
            Ok(())
        }
    }
}
