//! `shardkeeper ctl entropy show | repair ID | kill-repair ID`: what `influxd-ctl entropy`
//! does, against a node's `/shard-repair` API.

use crate::client::{ClientError, Credentials, InfluxClient, Method};
use crate::entropy::Status;
use clap::Subcommand;
use std::io::Write;

#[derive(clap::Args, Clone)]
pub(super) struct Target {
    #[arg(long, default_value = "http://127.0.0.1:8086")]
    url: String,
    /// An admin's token (auth on).
    #[arg(long, env = "SHARDKEEPER_TOKEN", allow_hyphen_values = true)]
    token: Option<String>,
    /// An admin's user and password (auth on), instead of a token.
    #[arg(long)]
    user: Option<String>,
    #[arg(long, env = "SHARDKEEPER_PASSWORD")]
    password: Option<String>,
}

#[derive(Subcommand)]
pub(super) enum EntropyCommand {
    /// Shards that differ from their replicas on peers, and the repair queue (every
    /// peer's, merged).
    Show {
        #[command(flatten)]
        target: Target,
    },
    /// Queue a shard for repair.
    Repair {
        #[command(flatten)]
        target: Target,
        id: u64,
    },
    /// Remove a shard from the repair queue (on every peer), stopping its repair.
    KillRepair {
        #[command(flatten)]
        target: Target,
        id: u64,
    },
}

#[derive(Debug, thiserror::Error)]
pub(super) enum CtlEntropyError {
    #[error(transparent)]
    Remote(#[from] ClientError),
    #[error("{0}")]
    Answer(String),
}

fn client(t: &Target) -> Result<InfluxClient, ClientError> {
    let credentials = match (&t.token, &t.user) {
        (Some(token), _) => Credentials::Token(token.clone()),
        (None, Some(user)) => Credentials::Basic {
            user: user.clone(),
            password: t.password.clone().unwrap_or_default(),
        },
        (None, None) => Credentials::None,
    };
    super::ctl_client(&t.url, credentials)
}

pub(super) async fn run(
    command: EntropyCommand,
    out: &mut impl Write,
) -> Result<(), CtlEntropyError> {
    match command {
        EntropyCommand::Show { target } => {
            let c = client(&target)?;
            let path = "/shard-repair/status";
            let response = c.send(path, c.request(Method::GET, path)).await?;
            let bytes = response
                .bytes()
                .await
                .map_err(|e| CtlEntropyError::Answer(format!("{path}: {e}")))?;
            let status: Status = serde_json::from_slice(&bytes)
                .map_err(|e| CtlEntropyError::Answer(format!("{path}: {e}")))?;
            crate::entropy::render_show(&status, out)
                .map_err(|e| CtlEntropyError::Answer(e.to_string()))?;
            Ok(())
        }
        EntropyCommand::Repair { target, id } => {
            let c = client(&target)?;
            let path = "/shard-repair/repair";
            let id_text = id.to_string();
            let request = c
                .request(Method::POST, path)
                .query(&[("id", id_text.as_str())]);
            c.send(path, request).await?;
            let _ = writeln!(out, "Repair Shard {id} queued");
            Ok(())
        }
        EntropyCommand::KillRepair { target, id } => {
            let c = client(&target)?;
            let path = "/shard-repair/cancel-repair";
            let id_text = id.to_string();
            let request = c
                .request(Method::POST, path)
                .query(&[("id", id_text.as_str())]);
            c.send(path, request).await?;
            let _ = writeln!(out, "Shard {id} removed from repair queue");
            Ok(())
        }
    }
}
