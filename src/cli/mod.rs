//! The command line: `shardkeeper serve | ctl | bench`.

mod backup;
mod ctl;
mod entropy;
mod proxy;
mod replication;

use crate::config::{LogFormat, NodeConfig};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "shardkeeper",
    version,
    about = "A storage daemon for InfluxDB-style time-series data nodes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a data node (InfluxDB 1.x/2.x compatible HTTP API).
    Serve(ServeArgs),
    /// Run the proxy: influx-proxy 2.4.7's API in front of circles of InfluxDB 1.x
    /// backends, every acknowledged write durable in its journal first.
    Proxy(ProxyArgs),
    /// Operator commands.
    Ctl {
        #[command(subcommand)]
        command: ctl::CtlCommand,
    },
    /// Benchmarks that measure this machine and the log in one run.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Test helpers; not for operators.
    #[command(hide = true)]
    Debug {
        #[command(subcommand)]
        command: DebugCommand,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML configuration file (keys documented in deploy/shardkeeper.toml).
    #[arg(long, env = "SHARDKEEPER_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory [default: ./shardkeeper-data].
    #[arg(long, env = "SHARDKEEPER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8086].
    #[arg(long, env = "SHARDKEEPER_BIND")]
    bind: Option<SocketAddr>,
    /// A peer holding replicas of this node's shards, for anti-entropy (repeatable; added
    /// to `[anti_entropy] peers`).
    #[arg(long = "peer", value_name = "URL")]
    peers: Vec<String>,
}

#[derive(clap::Args)]
struct ProxyArgs {
    /// influx-proxy's proxy.json (or the same keys as TOML, in a file ending in .toml).
    #[arg(long, default_value = "proxy.json", env = "SHARDKEEPER_PROXY_CONFIG")]
    config: PathBuf,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Write a TSBS-like `cpu` workload (1000 hosts, 10 fields, 10 s interval) to any
    /// InfluxDB 1.x-compatible URL; prints points/s, MB/s and batch latency as JSON.
    Ingest {
        #[arg(long, default_value = "http://127.0.0.1:8086")]
        url: String,
        #[arg(long, default_value = "benchmark")]
        db: String,
        #[arg(long, default_value_t = 1_000_000)]
        points: u64,
        #[arg(long, default_value_t = 5000)]
        batch: usize,
        #[arg(long, default_value_t = 4)]
        connections: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Time the queries dashboards send on the data of `bench ingest` (1M points), against
    /// one URL or alternating with a baseline; prints median and p99 latencies as JSON.
    Query {
        #[arg(long, default_value = "http://127.0.0.1:8086")]
        url: String,
        /// A second server (e.g. influxd) holding the same data, timed in the same rounds.
        #[arg(long)]
        baseline: Option<String>,
        #[arg(long, default_value = "benchmark")]
        db: String,
        #[arg(long, default_value_t = 20)]
        rounds: usize,
        /// Milliseconds of pause before each timed request, so that it finds its server
        /// idle, as a dashboard's requests do, and not still busy after the other
        /// server's answer (0: back to back).
        #[arg(long, default_value_t = 1.0)]
        pause_ms: f64,
    },
    /// Measure /ping and a steady writer idle, then beside 32 clients sending wrong
    /// passwords and 10 sending a heavy query (on data it writes first); prints both
    /// phases' p50/p99 and their ratios as JSON.
    Contention {
        #[arg(long, default_value = "http://127.0.0.1:8086")]
        url: String,
        #[arg(long, default_value = "contention")]
        db: String,
        /// Valid admin credentials for the bench's own writes and queries (auth on).
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        password: Option<String>,
        /// Length of each phase.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Idle and loaded phases each run this many times, alternated: 6 gives 600
        /// write samples of each kind, so that a p99 is not a single slow sync.
        #[arg(long, default_value_t = 6)]
        rounds: usize,
        #[arg(long, default_value_t = 32)]
        wrong_password_clients: usize,
        #[arg(long, default_value_t = 10)]
        heavy_query_clients: usize,
    },
    /// What one replication costs ingest, how fast a full queue drains into the remote,
    /// the lag under a steady load and (--verify) that every value arrived: runs its own
    /// nodes, one phase at a time; prints one JSON object.
    Replication {
        /// Points of each ingest and of the drained queue.
        #[arg(long, default_value_t = 1_000_000)]
        points: u64,
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Length of the steady load of the lag phase.
        #[arg(long, default_value_t = 30.0)]
        lag_seconds: f64,
        /// The lag phase's load, as a fraction of the remote's direct ingest.
        #[arg(long, default_value_t = 0.5)]
        lag_load: f64,
        /// Read every point back from both nodes and compare them value by value; exits
        /// non-zero on any difference.
        #[arg(long)]
        verify: bool,
        /// Run every process on every CPU [default: A and the client on CPU 0, B on CPU 1].
        #[arg(long)]
        no_pin: bool,
        /// The replicating nodes' `replication_gzip_level` [default: the node's default, 1].
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=9))]
        gzip_level: Option<u32>,
        /// The replicating nodes' `replication_nice` [default: the node's default, 10].
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=19))]
        replication_nice: Option<u32>,
        /// Rounds of the ingest and drain phases, each the pair of runs it compares (in
        /// turn one then the other first); the figures are the rounds' medians.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Kill a node again and again while it takes writes (a random moment of each cycle),
    /// restart it, and check by value that every acknowledged point survived, that no
    /// dropped series came back and that nothing was invented. Exits non-zero on any.
    /// Starts its own node unless --url and --restart-cmd name another server.
    Crash {
        #[arg(long, default_value_t = 20)]
        cycles: usize,
        #[arg(long, default_value_t = 4)]
        connections: usize,
        #[arg(long, default_value_t = 10_000)]
        points_per_cycle: usize,
        /// Lines per write request.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Data directory of the node it starts [default: a temporary directory].
        #[arg(long, conflicts_with = "url")]
        data_dir: Option<PathBuf>,
        /// How the node it starts is stopped.
        #[arg(long, value_enum, default_value = "kill")]
        signal: crate::bench::crash::KillSignal,
        /// Another InfluxDB 1.x-compatible server to test instead (needs --restart-cmd).
        #[arg(long, requires = "restart_cmd")]
        url: Option<String>,
        /// Shell command that kills the server at --url and starts it again in the
        /// background (e.g. `pkill -KILL -x influxd; influxd -config c.conf & disown`).
        #[arg(long, requires = "url")]
        restart_cmd: Option<String>,
        /// Seed of the kill moments and drops, to repeat a run [default: random].
        #[arg(long)]
        seed: Option<u64>,
        /// Kill while this is under way (held there by a fail point), not at random.
        #[arg(long, value_enum, conflicts_with = "url")]
        during: Option<crate::bench::crash::During>,
        /// Print only the summary, as one JSON object (no progress lines).
        #[arg(long)]
        json: bool,
    },
    /// Measure the file system (4 KiB write+fdatasync, 1 MiB sequential writes) and then the
    /// log (single appender latency, 256 appenders x 1 KiB throughput, replay).
    Log {
        /// Directory on the file system to measure (a scratch subdirectory is created).
        #[arg(long)]
        dir: PathBuf,
        /// Print one JSON object (the default prints it too, pretty).
        #[arg(long)]
        json: bool,
        /// Seconds of each timed slice.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
        /// Rounds of alternating file-system and log slices.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
}

#[derive(Subcommand)]
enum DebugCommand {
    /// Append records from several threads forever, printing `lsn writer seq` for each
    /// acknowledged one (used by the kill -9 test).
    AppendLoad {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 4)]
        writers: u32,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` sets its own up once its config (log_format) is read.
    if !matches!(cli.command, Command::Serve(_)) {
        init_tracing(LogFormat::Text);
    }
    let result: Result<(), Box<dyn std::error::Error>> = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Proxy(args) => crate::proxy::config::ProxyConfig::load(&args.config)
            .map_err(crate::proxy::daemon::ProxyDaemonError::from)
            .and_then(crate::proxy::daemon::run)
            .map_err(Into::into),
        Command::Ctl { command } => return ctl::run(command),
        Command::Bench {
            command:
                BenchCommand::Log {
                    dir,
                    json,
                    seconds,
                    rounds,
                },
        } => crate::bench::log::run(&dir, seconds, rounds)
            .map(|report| {
                let text = if json {
                    serde_json::to_string(&report)
                } else {
                    serde_json::to_string_pretty(&report)
                };
                println!("{}", text.expect("report serializes"));
            })
            .map_err(Into::into),
        Command::Bench {
            command:
                BenchCommand::Ingest {
                    url,
                    db,
                    points,
                    batch,
                    connections,
                    seed,
                },
        } => {
            let options = crate::bench::ingest::IngestOptions {
                url,
                db,
                points,
                batch,
                connections,
                seed,
            };
            crate::bench::ingest::run(&options)
                .map(|report| {
                    println!(
                        "{}",
                        serde_json::to_string(&report).expect("report serializes")
                    )
                })
                .map_err(Into::into)
        }
        Command::Bench {
            command:
                BenchCommand::Query {
                    url,
                    baseline,
                    db,
                    rounds,
                    pause_ms,
                },
        } => {
            let options = crate::bench::query::QueryBenchOptions {
                url,
                baseline,
                db,
                rounds,
                pause: std::time::Duration::try_from_secs_f64(pause_ms / 1000.0)
                    .unwrap_or_default(),
            };
            crate::bench::query::run(&options)
                .map(|report| {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&report).expect("report serializes")
                    )
                })
                .map_err(Into::into)
        }
        Command::Bench {
            command:
                BenchCommand::Crash {
                    cycles,
                    connections,
                    points_per_cycle,
                    batch,
                    data_dir,
                    signal,
                    url,
                    restart_cmd,
                    seed,
                    during,
                    json,
                },
        } => {
            use crate::bench::crash::{CrashOptions, Target};
            let target = match (url, restart_cmd) {
                (Some(url), Some(restart_cmd)) => Target::External { url, restart_cmd },
                _ => Target::Own { data_dir },
            };
            let options = CrashOptions {
                target,
                cycles,
                connections,
                points_per_cycle,
                batch,
                signal,
                seed,
                during,
            };
            let mut progress = |line: &str| {
                if !json {
                    eprintln!("{line}");
                }
            };
            match crate::bench::crash::run(&options, &mut progress) {
                Ok(report) => {
                    let text = match json {
                        true => serde_json::to_string(&report),
                        false => serde_json::to_string_pretty(&report),
                    };
                    println!("{}", text.expect("report serializes"));
                    if !report.passed() {
                        return ExitCode::FAILURE;
                    }
                    Ok(())
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Bench {
            command:
                BenchCommand::Replication {
                    points,
                    connections,
                    lag_seconds,
                    lag_load,
                    verify,
                    no_pin,
                    gzip_level,
                    replication_nice,
                    rounds,
                },
        } => {
            let options = crate::bench::replication::ReplicationBenchOptions {
                points,
                connections,
                lag_seconds,
                lag_load,
                verify,
                pin: !no_pin,
                gzip_level,
                replication_nice,
                rounds,
            };
            let mut progress = |step: &str| eprintln!("bench replication: {step}");
            match crate::bench::replication::run(&options, &mut progress) {
                Ok(report) => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&report).expect("report serializes")
                    );
                    if verify && !report.verified() {
                        return ExitCode::FAILURE;
                    }
                    Ok(())
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Bench {
            command:
                BenchCommand::Contention {
                    url,
                    db,
                    user,
                    password,
                    seconds,
                    rounds,
                    wrong_password_clients,
                    heavy_query_clients,
                },
        } => {
            let options = crate::bench::contention::ContentionOptions {
                url,
                db,
                user,
                password,
                seconds,
                rounds,
                wrong_password_clients,
                heavy_query_clients,
            };
            crate::bench::contention::run(&options)
                .map(|report| {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&report).expect("report serializes")
                    )
                })
                .map_err(Into::into)
        }
        Command::Debug {
            command: DebugCommand::AppendLoad { dir, writers },
        } => crate::bench::log::append_load(&dir, writers).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shardkeeper: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The client a `ctl` command talks to a node or proxy with. A node served over HTTPS
/// with a private certificate authority is verified against the PEM file that
/// `SHARDKEEPER_CA_CERT` names (as `curl --cacert`); otherwise against the public roots
/// compiled in.
pub(crate) fn ctl_client(
    url: &str,
    credentials: crate::client::Credentials,
) -> Result<crate::client::InfluxClient, crate::client::ClientError> {
    let mut options = crate::client::ClientOptions {
        credentials,
        ..crate::client::ClientOptions::default()
    };
    if let Some(path) = std::env::var_os("SHARDKEEPER_CA_CERT") {
        let pem = std::fs::read(&path).map_err(|e| crate::client::ClientError::Request {
            url: url.to_owned(),
            reason: format!(
                "SHARDKEEPER_CA_CERT {}: {e}",
                PathBuf::from(&path).display()
            ),
        })?;
        options.tls.ca_certificate_pem = Some(pem);
    }
    crate::client::InfluxClient::new(url, options)
}

fn serve(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = NodeConfig::load(args.config.as_deref())?;
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(bind) = args.bind {
        config.bind = bind;
    }
    config.anti_entropy.peers.extend(args.peers);
    init_tracing(config.log_format);
    let armed = crate::failpoint::configure_from_env()?;
    if !armed.is_empty() {
        tracing::warn!(fail_points = ?armed, "fail points are set ({}): this node fails on purpose", crate::failpoint::ENV);
    }
    crate::daemon::serve(config)?;
    Ok(())
}

/// Log lines go to stderr: coloured only when it is a terminal (never in a file or the
/// journal), or as JSON objects for log shippers. A request's lines carry its id (the
/// `request` span's `request_id`).
fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHARDKEEPER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens are URL-safe base64, so one in 32 starts with `-`: it is still a token.
    #[test]
    fn a_token_may_start_with_a_dash() {
        for sub in ["backup", "restore"] {
            let cli = Cli::try_parse_from(["shardkeeper", "ctl", sub, "--token", "-N7X", "dir"]);
            assert!(cli.is_ok(), "ctl {sub}");
        }
        let cli = Cli::try_parse_from(["shardkeeper", "ctl", "backup-status", "--token", "-N7X"]);
        let Ok(Cli {
            command:
                Command::Ctl {
                    command: ctl::CtlCommand::BackupStatus { token, .. },
                },
        }) = cli
        else {
            panic!("ctl backup-status does not parse");
        };
        assert_eq!(token.as_deref(), Some("-N7X"));
    }
}
