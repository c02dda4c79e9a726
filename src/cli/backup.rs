//! `shardkeeper ctl backup | restore | backup-status`: a node's backup API driven from the
//! command line. A backup directory holds `backup.json` (what was taken: the bucket
//! manifests and one entry per shard file), `kv` (the control state) and one
//! `shard-<id>.tar.gz` per shard.

use crate::backup::metadata::{BucketMetadataManifest, RestoredBucketMappings};
use crate::client::{Body, ClientError, Credentials, InfluxClient, Method, Response};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub(super) const BACKUP_MANIFEST: &str = "backup.json";
const KV_FILE: &str = "kv";

#[derive(Debug, thiserror::Error)]
pub(super) enum CtlBackupError {
    #[error(transparent)]
    Remote(#[from] ClientError),
    #[error("{path}: {source}")]
    File { path: PathBuf, source: io::Error },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct BackupDirManifest {
    /// RFC 3339, for incremental backups.
    pub since: Option<String>,
    pub buckets: Vec<BucketMetadataManifest>,
    pub shards: Vec<ShardFile>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ShardFile {
    #[serde(rename = "shardID")]
    pub shard_id: u64,
    pub bucket: String,
    pub file: String,
    pub bytes: u64,
}

pub(super) struct Remote {
    client: InfluxClient,
}

impl Remote {
    pub(super) fn new(url: &str, token: Option<String>) -> Result<Remote, CtlBackupError> {
        Ok(Remote {
            client: super::ctl_client(url, token.map_or(Credentials::None, Credentials::Token))?,
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        with: impl FnOnce(crate::client::RequestBuilder) -> crate::client::RequestBuilder,
    ) -> Result<Response, CtlBackupError> {
        let request = with(self.client.request(method, path));
        Ok(self.client.send(path, request).await?)
    }

    fn read_error(&self, path: &str, e: impl std::fmt::Display) -> CtlBackupError {
        CtlBackupError::Remote(ClientError::Transport {
            url: format!("{}{path}", self.client.base_url()),
            message: e.to_string(),
            timeout: false,
        })
    }

    /// An answer's whole body.
    async fn body(&self, path: &str, response: Response) -> Result<Vec<u8>, CtlBackupError> {
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.read_error(path, e))?;
        Ok(bytes.to_vec())
    }

    async fn json<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        response: Response,
    ) -> Result<T, CtlBackupError> {
        let body = self.body(path, response).await?;
        serde_json::from_slice(&body).map_err(|e| CtlBackupError::Invalid(e.to_string()))
    }
}

fn file_err(path: &Path) -> impl FnOnce(io::Error) -> CtlBackupError + '_ {
    move |source| CtlBackupError::File {
        path: path.to_owned(),
        source,
    }
}

/// Progress of one transfer: a bar (bytes, rate, ETA when the size is known) on a
/// terminal, one plain line at the end otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    began: Instant,
}

impl Progress {
    fn new(label: String, total: Option<u64>) -> Progress {
        let bar = io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(t) => ProgressBar::new(t).with_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {msg} {bytes} {bytes_per_sec}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                ),
            };
            bar.set_message(label.clone());
            bar
        });
        Progress {
            bar,
            label,
            began: Instant::now(),
        }
    }

    fn advance(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn done(self, bytes: u64) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        let secs = self.began.elapsed().as_secs_f64();
        eprintln!(
            "{}: {bytes} bytes in {secs:.1} s ({:.1} MB/s)",
            self.label,
            bytes as f64 / secs.max(1e-6) / 1e6
        );
    }
}

/// A file as a request body that advances `bar` as it is sent, read in chunks so that a
/// shard of any size is never held in memory whole.
fn upload_body(file: tokio::fs::File, bar: Option<ProgressBar>) -> Body {
    use tokio::io::AsyncReadExt;
    const CHUNK_BYTES: usize = 256 * 1024;
    let chunks = futures_util::stream::unfold(Some((file, bar)), |state| async move {
        let (mut file, bar) = state?;
        let mut buf = vec![0; CHUNK_BYTES];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                if let Some(bar) = &bar {
                    bar.inc(n as u64);
                }
                Some((Ok(bytes::Bytes::from(buf)), Some((file, bar))))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    Body::wrap_stream(chunks)
}

/// A query-string value, percent-encoded: all but RFC 3986's unreserved characters.
fn urlencode(s: &str) -> String {
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, RESERVED).to_string()
}

/// `ctl backup`: metadata, then every shard (of `bucket`, if given) into `dir`.
pub(super) async fn backup(
    remote: &Remote,
    dir: &Path,
    bucket: Option<&str>,
    since: Option<&str>,
) -> Result<(), CtlBackupError> {
    std::fs::create_dir_all(dir).map_err(file_err(dir))?;
    let path = "/api/v2/backup/metadata";
    let resp = remote.send(Method::GET, path, |r| r).await?;
    let content_type = resp
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = remote.body(path, resp).await?;
    let parts = crate::backup::multipart::read(&content_type, body.into())
        .await
        .map_err(|e| CtlBackupError::Invalid(e.to_string()))?;
    let part = |name: &str| {
        parts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
            .ok_or_else(|| CtlBackupError::Invalid(format!("metadata has no {name} part")))
    };
    let kv = part("kv")?;
    let mut buckets: Vec<BucketMetadataManifest> = serde_json::from_slice(&part("buckets")?)
        .map_err(|e| CtlBackupError::Invalid(format!("bucket manifests: {e}")))?;
    if let Some(name) = bucket {
        buckets.retain(|b| b.bucket_name == name);
        if buckets.is_empty() {
            return Err(CtlBackupError::Invalid(format!("no bucket named {name:?}")));
        }
    }
    let kv_path = dir.join(KV_FILE);
    std::fs::write(&kv_path, &kv).map_err(file_err(&kv_path))?;
    let mut shards = Vec::new();
    for b in &buckets {
        for rp in &b.retention_policies {
            for group in &rp.shard_groups {
                for shard in &group.shards {
                    let mut path = format!("/api/v2/backup/shards/{}", shard.id);
                    if let Some(since) = since {
                        path.push_str(&format!("?since={}", urlencode(since)));
                    }
                    // The archive is kept as it comes, compressed: no decoding here.
                    let mut resp = remote
                        .send(Method::GET, &path, |r| r.header("Accept-Encoding", "gzip"))
                        .await?;
                    let file = format!("shard-{}.tar.gz", shard.id);
                    let target = dir.join(&file);
                    let tmp = dir.join(format!("{file}.partial"));
                    let progress = Progress::new(format!("shard {}", shard.id), None);
                    let mut out = std::fs::File::create(&tmp).map_err(file_err(&tmp))?;
                    let mut bytes = 0u64;
                    while let Some(chunk) = resp
                        .chunk()
                        .await
                        .map_err(|e| remote.read_error(&path, e))?
                    {
                        out.write_all(&chunk).map_err(file_err(&tmp))?;
                        bytes += chunk.len() as u64;
                        progress.advance(chunk.len() as u64);
                    }
                    out.sync_all().map_err(file_err(&tmp))?;
                    std::fs::rename(&tmp, &target).map_err(file_err(&target))?;
                    progress.done(bytes);
                    shards.push(ShardFile {
                        shard_id: shard.id,
                        bucket: b.bucket_name.clone(),
                        file,
                        bytes,
                    });
                }
            }
        }
    }
    let manifest = BackupDirManifest {
        since: since.map(str::to_owned),
        buckets,
        shards,
    };
    let path = dir.join(BACKUP_MANIFEST);
    let json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| CtlBackupError::Invalid(e.to_string()))?;
    std::fs::write(&path, json).map_err(file_err(&path))?;
    println!(
        "backed up {} shards of {} buckets to {}",
        manifest.shards.len(),
        manifest.buckets.len(),
        dir.display()
    );
    Ok(())
}

/// `ctl restore`: everything (kv, then every shard under its id), or one bucket under a
/// new name (bucket metadata, then its shards under their new ids).
pub(super) async fn restore(
    remote: &mut Remote,
    dir: &Path,
    bucket: Option<&str>,
    new_bucket: Option<&str>,
) -> Result<(), CtlBackupError> {
    let path = dir.join(BACKUP_MANIFEST);
    let manifest: BackupDirManifest =
        serde_json::from_slice(&std::fs::read(&path).map_err(file_err(&path))?)
            .map_err(|e| CtlBackupError::Invalid(format!("{}: {e}", path.display())))?;
    let mut targets: Vec<(&ShardFile, u64)> = Vec::new();
    match bucket {
        None => {
            let kv_path = dir.join(KV_FILE);
            let kv = std::fs::read(&kv_path).map_err(file_err(&kv_path))?;
            let api = "/api/v2/restore/kv";
            let resp = remote.send(Method::POST, api, |r| r.body(kv)).await?;
            // The restored state may not hold the token this restore began with: go on
            // with the operator token the node minted, and show it (once) to the operator.
            let minted = remote
                .body(api, resp)
                .await
                .ok()
                .and_then(|body| serde_json::from_slice::<serde_json::Value>(&body).ok())
                .and_then(|v| v["token"].as_str().map(str::to_owned));
            if let Some(token) = minted {
                println!("operator token of the restored node: {token}");
                remote.client = remote.client.with_credentials(Credentials::Token(token));
            }
            targets.extend(manifest.shards.iter().map(|s| (s, s.shard_id)));
        }
        Some(name) => {
            let mut b = manifest
                .buckets
                .iter()
                .find(|b| b.bucket_name == name)
                .cloned()
                .ok_or_else(|| {
                    CtlBackupError::Invalid(format!("no bucket {name:?} in the backup"))
                })?;
            b.bucket_name = new_bucket.unwrap_or(name).to_owned();
            let api = "/api/v2/restore/bucketMetadata";
            let json =
                serde_json::to_vec(&b).map_err(|e| CtlBackupError::Invalid(e.to_string()))?;
            let resp = remote
                .send(Method::POST, api, |r| {
                    r.header("Content-Type", "application/json").body(json)
                })
                .await?;
            let mappings: RestoredBucketMappings = remote.json(api, resp).await?;
            for s in manifest.shards.iter().filter(|s| s.bucket == name) {
                let new_id = mappings
                    .shard_mappings
                    .iter()
                    .find(|m| m.old_id == s.shard_id)
                    .map(|m| m.new_id)
                    .ok_or_else(|| {
                        CtlBackupError::Invalid(format!("no new id for shard {}", s.shard_id))
                    })?;
                targets.push((s, new_id));
            }
        }
    }
    for (shard, id) in &targets {
        let file_path = dir.join(&shard.file);
        let file = tokio::fs::File::open(&file_path)
            .await
            .map_err(file_err(&file_path))?;
        let total = file.metadata().await.map(|m| m.len()).ok();
        let progress = Progress::new(format!("shard {} -> {id}", shard.shard_id), total);
        let api = format!("/api/v2/restore/shards/{id}");
        let body = upload_body(file, progress.bar.clone());
        let resp = remote
            .send(Method::POST, &api, |r| {
                r.header("Content-Type", "application/octet-stream")
                    .body(body)
            })
            .await?;
        remote.body(&api, resp).await?;
        progress.done(total.unwrap_or(0));
    }
    println!("restored {} shards from {}", targets.len(), dir.display());
    Ok(())
}

/// `ctl backup-status`: one line per shard with its last good backup.
pub(super) async fn status(remote: &Remote, out: &mut impl Write) -> Result<(), CtlBackupError> {
    let path = "/api/v2/backup/status";
    let resp = remote.send(Method::GET, path, |r| r).await?;
    let v: serde_json::Value = remote.json(path, resp).await?;
    let empty = Vec::new();
    for s in v["shards"].as_array().unwrap_or(&empty) {
        let last = &s["lastGoodBackup"];
        let line = if last.is_null() {
            "never backed up".to_owned()
        } else {
            format!(
                "last good backup {} ({} bytes{})",
                last["endedAt"].as_str().unwrap_or("?"),
                last["bytes"],
                last["since"]
                    .as_str()
                    .map(|s| format!(", incremental since {s}"))
                    .unwrap_or_default()
            )
        };
        let _ = writeln!(
            out,
            "shard {} {}.{}: {line}",
            s["shardID"],
            s["database"].as_str().unwrap_or(""),
            s["retentionPolicy"].as_str().unwrap_or("")
        );
    }
    for r in v["running"].as_array().unwrap_or(&empty) {
        let _ = writeln!(
            out,
            "running: {} {} {}",
            r["operation"].as_str().unwrap_or(""),
            r["subject"].as_str().unwrap_or(""),
            r["shardID"]
        );
    }
    Ok(())
}
