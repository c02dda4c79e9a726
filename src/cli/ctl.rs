//! `shardkeeper ctl`: offline log tools, and backup commands to a running daemon.

use crate::log::fs::RealFs;
use crate::log::{self, LogError};
use crate::projection::EVENT_RECORD;
use crate::proto::Event;
use clap::Subcommand;
use prost::Message;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub(super) enum CtlCommand {
    /// Inspect a log directory offline.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Back up a running node into a directory: metadata, then one file per shard.
    Backup {
        #[arg(long, default_value = "http://127.0.0.1:8086")]
        url: String,
        /// Only this bucket (database).
        #[arg(long)]
        bucket: Option<String>,
        /// Incremental: only files changed after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, env = "SHARDKEEPER_TOKEN", allow_hyphen_values = true)]
        token: Option<String>,
        dir: PathBuf,
    },
    /// Restore a directory written by `ctl backup` into a running node: everything, or
    /// one bucket (under a new name with --new-bucket).
    Restore {
        #[arg(long, default_value = "http://127.0.0.1:8086")]
        url: String,
        #[arg(long)]
        bucket: Option<String>,
        #[arg(long, requires = "bucket")]
        new_bucket: Option<String>,
        #[arg(long, env = "SHARDKEEPER_TOKEN", allow_hyphen_values = true)]
        token: Option<String>,
        dir: PathBuf,
    },
    /// Replications: list, show one, drop the head batch of a stopped one.
    Replication {
        #[command(subcommand)]
        command: super::replication::ReplicationCommand,
    },
    /// Anti-entropy, as influxd-ctl entropy: show, repair ID, kill-repair ID.
    Entropy {
        #[command(subcommand)]
        command: super::entropy::EntropyCommand,
    },
    /// A proxy's batches kept aside (backends' refusals): list, replay, discard.
    Proxy {
        #[command(subcommand)]
        command: super::proxy::ProxyCommand,
    },
    /// List each shard's last good backup, and backups or restores running now.
    BackupStatus {
        #[arg(long, default_value = "http://127.0.0.1:8086")]
        url: String,
        #[arg(long, env = "SHARDKEEPER_TOKEN", allow_hyphen_values = true)]
        token: Option<String>,
    },
}

#[derive(Subcommand)]
pub(super) enum LogCommand {
    /// Check every record of a log directory. Exit 0: sound; 1: corrupt (file and offset
    /// printed); 2: sound but with a torn tail that the next open will truncate.
    Verify { dir: PathBuf },
    /// Print one JSON object per record.
    Dump {
        dir: PathBuf,
        #[arg(long, default_value_t = 1)]
        from: u64,
    },
}

pub(super) fn run(command: CtlCommand) -> ExitCode {
    use super::backup::{self, CtlBackupError, Remote};
    let report = |result: Result<(), CtlBackupError>| match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shardkeeper: {e}");
            ExitCode::FAILURE
        }
    };
    match command {
        CtlCommand::Backup {
            url,
            bucket,
            since,
            token,
            dir,
        } => report(crate::client::block_on(async {
            let remote = Remote::new(&url, token)?;
            backup::backup(&remote, &dir, bucket.as_deref(), since.as_deref()).await
        })),
        CtlCommand::Restore {
            url,
            bucket,
            new_bucket,
            token,
            dir,
        } => report(crate::client::block_on(async {
            let mut remote = Remote::new(&url, token)?;
            backup::restore(&mut remote, &dir, bucket.as_deref(), new_bucket.as_deref()).await
        })),
        CtlCommand::BackupStatus { url, token } => report(crate::client::block_on(async {
            let remote = Remote::new(&url, token)?;
            backup::status(&remote, &mut std::io::stdout()).await
        })),
        CtlCommand::Proxy { command } => {
            match crate::client::block_on(super::proxy::run(command, &mut std::io::stdout())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("shardkeeper: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        CtlCommand::Replication { command } => {
            match crate::client::block_on(super::replication::run(command, &mut std::io::stdout()))
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("shardkeeper: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        CtlCommand::Entropy { command } => {
            match crate::client::block_on(super::entropy::run(command, &mut std::io::stdout())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("shardkeeper: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        CtlCommand::Log {
            command: LogCommand::Verify { dir },
        } => verify(&dir),
        CtlCommand::Log {
            command: LogCommand::Dump { dir, from },
        } => match dump(&dir, from) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("shardkeeper: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn verify(dir: &Path) -> ExitCode {
    match log::verify(&RealFs, dir) {
        Ok(report) => match &report.torn_tail {
            None => {
                println!(
                    "ok: {} records in {} segments, LSN {}..{}",
                    report.records,
                    report.segments,
                    report.first_lsn,
                    report.next_lsn - 1
                );
                ExitCode::SUCCESS
            }
            Some((path, offset, bytes)) => {
                println!(
                    "torn tail: {} at byte {offset}: {bytes} bytes after the last good record (LSN {}) will be dropped on open",
                    path.display(),
                    report.next_lsn - 1
                );
                ExitCode::from(2)
            }
        },
        Err(e @ LogError::Corrupt { .. }) => {
            println!("corrupt: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("shardkeeper: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dump(dir: &Path, from: u64) -> Result<(), LogError> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_error = None;
    log::for_each_record(&RealFs, dir, from, |r| {
        let line = match (r.kind, Event::decode(r.payload)) {
            (EVENT_RECORD, Ok(event)) => {
                serde_json::json!({ "lsn": r.lsn, "kind": r.kind, "event": event })
            }
            _ => serde_json::json!({ "lsn": r.lsn, "kind": r.kind, "bytes": r.payload.len() }),
        };
        if write_error.is_none() {
            write_error = writeln!(out, "{line}").err();
        }
    })?;
    let _ = out.flush();
    Ok(())
}
