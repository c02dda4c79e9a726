//! `shardkeeper bench log`: the file system's own figures, then the log's, in one run.

use super::{median, Latencies};
use crate::log::{Log, LogError, LogOptions, Record};
use crate::projection::EVENT_RECORD;
use crate::proto::{event, Blob, Event};
use prost::Message;
use serde::Serialize;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RAW_SYNC_WRITE: usize = 4096;
const RAW_SEQ_WRITE: usize = 1 << 20;
const CONCURRENT_APPENDERS: usize = 256;
const CONCURRENT_RECORD: usize = 1024;
const SINGLE_RECORD: usize = 128;
/// Bounds the disk a run uses, whatever the machine's speed.
const MAX_PHASE_BYTES: u64 = 2 << 30;

#[derive(Debug, Serialize)]
pub struct LogBenchReport {
    pub io_backend: String,
    /// Rounds of (file system slice, log slice) pairs; figures are medians over rounds.
    pub rounds: usize,
    pub raw_sync_latency_us_p50: f64,
    pub raw_sync_latency_us_p99: f64,
    pub raw_seq_mb_s: f64,
    pub log_single_appender_latency_us_p50: f64,
    pub log_single_appender_latency_us_p99: f64,
    pub log_256x1k_mb_s: f64,
    pub log_256x1k_records_per_commit: f64,
    /// CPU seconds per wall second of the whole process during the 256-appender slices
    /// (2.0 = both cores of a 2-core machine busy).
    pub log_256x1k_cpu_busy: f64,
    pub replay_mb_s: f64,
    pub replay_records: u64,
    /// Medians of the per-round ratios: each pairs a log slice with the file system slice
    /// measured just before it, so drift in the machine's speed cancels out.
    pub ratio_256x1k_to_raw_seq: f64,
    pub ratio_single_latency_to_raw_sync: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error(transparent)]
    Log(#[from] LogError),
}

fn io_err(what: &Path) -> impl FnOnce(std::io::Error) -> BenchError + '_ {
    move |e| BenchError::Io(what.display().to_string(), e)
}

pub fn run(dir: &Path, seconds: f64, rounds: usize) -> Result<LogBenchReport, BenchError> {
    let scratch = dir.join(format!("shardkeeper-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(io_err(&scratch))?;
    let slice = Duration::from_secs_f64(seconds);
    let result = run_in(&scratch, slice, rounds.max(1));
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn run_in(scratch: &Path, slice: Duration, rounds: usize) -> Result<LogBenchReport, BenchError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io_err(scratch))?;
    let (single_log, _) = Log::open(scratch.join("log-single"), LogOptions::default())?;
    let backend = single_log.backend().to_string();
    let log_dir = scratch.join("log-256");
    let (log, _) = Log::open(&log_dir, LogOptions::default())?;
    let log = Arc::new(log);

    let (mut sync_all, mut single_all) = (Latencies::default(), Latencies::default());
    let (mut raw_p50s, mut single_p50s, mut latency_ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut seq_rates, mut log_rates, mut rate_ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut busy_cpu, mut busy_wall) = (0.0, 0.0);
    for round in 0..rounds {
        let sync = raw_sync_latencies(&scratch.join(format!("raw-sync-{round}")), slice)?;
        let single = rt.block_on(single_appender(&single_log, slice))?;
        let (raw_p50, single_p50) = (sync.percentile(50.0), single.percentile(50.0));
        raw_p50s.push(raw_p50);
        single_p50s.push(single_p50);
        latency_ratios.push(single_p50 / raw_p50);
        sync_all.add(&sync);
        single_all.add(&single);

        let seq = raw_sequential(&scratch.join(format!("raw-seq-{round}")), slice)?;
        let (cpu0, wall0) = (cpu_seconds(), Instant::now());
        let rate = rt.block_on(concurrent_appenders(&log, slice))?;
        busy_cpu += cpu_seconds() - cpu0;
        busy_wall += wall0.elapsed().as_secs_f64();
        seq_rates.push(seq);
        log_rates.push(rate);
        rate_ratios.push(rate / seq);
    }
    let figures = log.figures();
    drop(log);
    let (replay_mb_s, replay_records) = replay(&log_dir)?;
    Ok(LogBenchReport {
        io_backend: backend,
        rounds,
        raw_sync_latency_us_p50: median(raw_p50s),
        raw_sync_latency_us_p99: sync_all.percentile(99.0),
        raw_seq_mb_s: median(seq_rates),
        log_single_appender_latency_us_p50: median(single_p50s),
        log_single_appender_latency_us_p99: single_all.percentile(99.0),
        log_256x1k_mb_s: median(log_rates),
        log_256x1k_records_per_commit: figures.records_per_commit,
        log_256x1k_cpu_busy: busy_cpu / busy_wall,
        replay_mb_s,
        replay_records,
        ratio_256x1k_to_raw_seq: median(rate_ratios),
        ratio_single_latency_to_raw_sync: median(latency_ratios),
    })
}

/// A loop of 4 KiB appending writes, each followed by fdatasync, on a new file.
fn raw_sync_latencies(path: &Path, phase: Duration) -> Result<Latencies, BenchError> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io_err(path))?;
    let block = vec![0xa5u8; RAW_SYNC_WRITE];
    let mut samples = Latencies::default();
    let start = Instant::now();
    let mut offset = 0u64;
    while start.elapsed() < phase && samples.len() < 100_000 {
        let t = Instant::now();
        file.write_all_at(&block, offset).map_err(io_err(path))?;
        file.sync_data().map_err(io_err(path))?;
        samples.record(t.elapsed().as_secs_f64() * 1e6);
        offset += RAW_SYNC_WRITE as u64;
    }
    Ok(samples)
}

/// Sequential 1 MiB writes, each followed by fdatasync: MB/s (10^6 bytes).
fn raw_sequential(path: &Path, phase: Duration) -> Result<f64, BenchError> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io_err(path))?;
    let block = vec![0x5au8; RAW_SEQ_WRITE];
    let start = Instant::now();
    let mut written = 0u64;
    while start.elapsed() < phase && written < MAX_PHASE_BYTES {
        file.write_all_at(&block, written).map_err(io_err(path))?;
        file.sync_data().map_err(io_err(path))?;
        written += RAW_SEQ_WRITE as u64;
    }
    Ok(written as f64 / 1e6 / start.elapsed().as_secs_f64())
}

fn blob_record(len: usize) -> Record {
    let event = Event {
        at_unix_nanos: 0,
        kind: Some(event::Kind::Blob(Blob {
            data: vec![0x42; len].into(),
        })),
    };
    Record::new(EVENT_RECORD, event.encode_to_vec())
}

async fn single_appender(log: &Log, slice: Duration) -> Result<Latencies, BenchError> {
    let record = blob_record(SINGLE_RECORD);
    let mut samples = Latencies::default();
    let start = Instant::now();
    while start.elapsed() < slice && samples.len() < 100_000 {
        let t = Instant::now();
        log.append(vec![record.clone()]).await?;
        samples.record(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(samples)
}

/// 256 tasks appending 1 KiB records as fast as acknowledgements come back: MB/s.
async fn concurrent_appenders(log: &Arc<Log>, slice: Duration) -> Result<f64, BenchError> {
    let bytes = Arc::new(AtomicU64::new(0));
    let record = blob_record(CONCURRENT_RECORD);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENT_APPENDERS {
        let (log, bytes, record) = (log.clone(), bytes.clone(), record.clone());
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < slice && bytes.load(Ordering::Relaxed) < MAX_PHASE_BYTES {
                let len = record.payload.len() as u64;
                log.append(vec![record.clone()]).await?;
                bytes.fetch_add(len, Ordering::Relaxed);
            }
            Ok::<(), LogError>(())
        }));
    }
    for t in tasks {
        t.await.expect("appender task")?;
    }
    Ok(bytes.load(Ordering::Relaxed) as f64 / 1e6 / start.elapsed().as_secs_f64())
}

/// Reads the whole log back, verifying every checksum and decoding every event.
fn replay(dir: &Path) -> Result<(f64, u64), BenchError> {
    let (log, _) = Log::open(dir, LogOptions::default())?;
    let bytes = log.figures().bytes;
    let start = Instant::now();
    let mut reader = log.reader(1)?;
    let mut records = 0u64;
    while let Some(r) = reader.next()? {
        let event = Event::decode(r.payload).map_err(|e| {
            BenchError::Io(format!("decode LSN {}", r.lsn), std::io::Error::other(e))
        })?;
        std::hint::black_box(event);
        records += 1;
    }
    Ok((bytes as f64 / 1e6 / start.elapsed().as_secs_f64(), records))
}

/// The payload `append_load` writes for a writer's n-th record; tests recompute it.
pub fn load_payload(writer: u32, seq: u64) -> Vec<u8> {
    let unit = format!("w{writer}s{seq};");
    unit.repeat(1 + (seq % 40) as usize).into_bytes()
}

/// Appends forever from `writers` threads, printing `lsn writer seq` per acknowledgement.
pub fn append_load(dir: &Path, writers: u32) -> Result<(), BenchError> {
    let (log, report) = Log::open(
        dir,
        LogOptions {
            segment_capacity: 1 << 20,
            ..LogOptions::default()
        },
    )?;
    eprintln!(
        "append-load: recovered {} records, io {}",
        report.records,
        log.backend()
    );
    let log = Arc::new(log);
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let log = log.clone();
            std::thread::spawn(move || -> Result<(), LogError> {
                for seq in 0.. {
                    let lsn = log.append_blocking(vec![Record::new(1, load_payload(w, seq))])?;
                    println!("{lsn} {w} {seq}");
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer thread")?;
    }
    Ok(())
}
