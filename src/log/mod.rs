//! The durable event log: the one thing shardkeeper keeps that cannot be rebuilt.
//!
//! A log is a directory of preallocated segment files ([`format`]) appended to by one writer
//! thread with group commit ([`writer`]): [`Log::append`] resolves only once its records are
//! durable (fdatasync done). Readers ([`LogReader`]) see records only once they are durable.
//! Opening a log recovers it ([`recovery`]). Projections keep their state in
//! [`SnapshotStore`] so that start-up replays only the tail.
//!
//! The log knows nothing of what it stores: a record is a kind byte and a payload.

mod error;
pub mod format;
pub mod fs;
mod reader;
mod recovery;
#[cfg(any(test, feature = "testing"))]
pub mod sim;
mod snapshot;
mod writer;

pub use error::LogError;
pub use reader::{LogReader, RecordRef};
pub use recovery::{for_each_record, DamagedRecord, RecoveryMode, RecoveryReport};

/// Checks a log directory written with the default options without changing it (`ctl log
/// verify`): Ok with what it holds, or the first corruption with its file and offset. A
/// torn tail is reported, not an error.
pub fn verify(fs: &dyn FileSystem, dir: &Path) -> Result<RecoveryReport, LogError> {
    recovery::recover(fs, dir, &LogOptions::default(), recovery::Access::ReadOnly).map(|r| r.report)
}
pub use snapshot::{Snapshot, SnapshotStore};

use bytes::Bytes;
use fs::{FileBytes, FileSystem, RealFs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, Weak};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot, watch};
use writer::{AppendRequest, BlockingOpener, SinkOpener, UringOpener, Writer};

/// Log sequence number: the position of a record in its log, from 1. 0 means "none".
pub type Lsn = u64;

pub const DEFAULT_SEGMENT_CAPACITY: u64 = 64 * 1024 * 1024;
pub const DEFAULT_MAX_COMMIT_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What the payload is; 0 is reserved.
    pub kind: u8,
    pub payload: Bytes,
}

impl Record {
    pub fn new(kind: u8, payload: impl Into<Bytes>) -> Self {
        Record {
            kind,
            payload: payload.into(),
        }
    }
}

/// Which I/O the writer uses for commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoMode {
    /// io_uring when the kernel allows it, otherwise pwrite + fdatasync.
    #[default]
    Auto,
    IoUring,
    Pwrite,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoBackend {
    IoUring,
    /// With the reason io_uring was not used, if it was wanted.
    Pwrite {
        fallback_reason: Option<String>,
    },
}

impl std::fmt::Display for IoBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IoBackend::IoUring => write!(f, "io_uring"),
            IoBackend::Pwrite {
                fallback_reason: None,
            } => write!(f, "pwrite+fdatasync"),
            IoBackend::Pwrite {
                fallback_reason: Some(r),
            } => {
                write!(f, "pwrite+fdatasync (io_uring unavailable: {r})")
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct LogOptions {
    pub segment_capacity: u64,
    pub io: IoMode,
    /// Appends that may wait for the writer before appenders are slowed down.
    pub queue_depth: usize,
    /// Most bytes the writer has written and not yet made durable (larger appends are
    /// written in pieces of at most this size); at least a sector ([`fs::SECTOR`]).
    /// Recovery treats damage at most this far (plus one record) from the end of the
    /// records as a torn tail, so a log must not be opened with a smaller value than it
    /// was written with.
    pub max_commit_bytes: usize,
    /// What opening does with damage at the end of the newest segment.
    pub recovery: RecoveryMode,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_capacity: DEFAULT_SEGMENT_CAPACITY,
            io: IoMode::Auto,
            queue_depth: 4096,
            max_commit_bytes: DEFAULT_MAX_COMMIT_BYTES,
            recovery: RecoveryMode::default(),
        }
    }
}

/// Counters for `/metrics`, the bench command and tests.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LogFigures {
    pub segments: usize,
    /// Bytes of records and headers in all segments (not their preallocated size).
    pub bytes: u64,
    pub oldest_lsn: Lsn,
    pub durable_lsn: Lsn,
    pub commits: u64,
    pub records_committed: u64,
    pub records_per_commit: f64,
    /// Bytes made durable by commits since start.
    pub committed_bytes: u64,
}

/// Upper bounds (seconds) of the buckets commit latencies are counted in: from a fast
/// NVMe fdatasync to a stalled disk.
pub const COMMIT_SECONDS_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A latency histogram as read: per bucket (not cumulative), its upper bound in seconds
/// and its count, bounds ascending, the last one infinite; and the sum.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LatencyFigures {
    pub buckets: Vec<(f64, u64)>,
    pub sum_seconds: f64,
}

impl LatencyFigures {
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|(_, n)| n).sum()
    }
}

/// Commit latencies and bytes, counted by the writer thread and read by `figures`
/// without a lock.
#[derive(Default)]
struct CommitFigures {
    /// Per bucket of [`COMMIT_SECONDS_BUCKETS`], not cumulative; the last one is +Inf.
    buckets: [AtomicU64; COMMIT_SECONDS_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    bytes: AtomicU64,
}

impl CommitFigures {
    fn record(&self, took: std::time::Duration, bytes: u64) {
        let seconds = took.as_secs_f64();
        let bucket = COMMIT_SECONDS_BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(COMMIT_SECONDS_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn latencies(&self) -> LatencyFigures {
        let bounds = COMMIT_SECONDS_BUCKETS.iter().copied();
        LatencyFigures {
            buckets: bounds
                .chain([f64::INFINITY])
                .zip(&self.buckets)
                .map(|(le, n)| (le, n.load(Ordering::Relaxed)))
                .collect(),
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

pub(crate) struct Segment {
    pub base: Lsn,
    pub path: PathBuf,
    pub sealed: bool,
    /// Offset past the last record: known for sealed segments.
    pub end: u64,
    map: OnceLock<FileBytes>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct DurablePoint {
    /// The last durable LSN (0: none yet).
    pub lsn: Lsn,
    /// Offset past the last durable record in the active segment.
    pub offset: u64,
}

pub(crate) struct SegmentsState {
    pub segments: Vec<Segment>,
    pub durable: DurablePoint,
}

/// What the writer, readers and the handle share.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub fs: Arc<dyn FileSystem>,
    state: RwLock<SegmentsState>,
    durable_tx: watch::Sender<Lsn>,
    failure: Mutex<Option<Arc<str>>>,
    commits: AtomicU64,
    records: AtomicU64,
    commit_figures: CommitFigures,
    readers: Mutex<Vec<Weak<AtomicU64>>>,
    /// Records recovery passed over ([`RecoveryMode::SkipDamagedRecords`]): readers do too.
    damaged: std::collections::BTreeSet<Lsn>,
}

impl Shared {
    pub(crate) fn state(&self) -> RwLockReadGuard<'_, SegmentsState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn state_mut(&self) -> std::sync::RwLockWriteGuard<'_, SegmentsState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn failure(&self) -> Option<Arc<str>> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts the log in the failed state (once); returns the reason in force.
    pub(crate) fn fail(&self, reason: String) -> Arc<str> {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if failure.is_none() {
            tracing::error!(dir = %self.dir.display(), %reason, "log failed; refusing further writes");
        }
        failure.get_or_insert_with(|| reason.into()).clone()
    }

    /// A commit is durable: readers may now see it.
    pub(crate) fn publish(&self, segment_base: Lsn, offset: u64, lsn: Lsn, records: u64) {
        {
            let mut st = self.state_mut();
            debug_assert_eq!(st.segments.last().map(|s| s.base), Some(segment_base));
            st.durable = DurablePoint { lsn, offset };
        }
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records, Ordering::Relaxed);
        self.durable_tx.send_replace(lsn);
    }

    pub(crate) fn seal_and_push(
        &self,
        sealed_base: Lsn,
        sealed_end: u64,
        base: Lsn,
        path: PathBuf,
    ) {
        let mut st = self.state_mut();
        if let Some(s) = st.segments.iter_mut().find(|s| s.base == sealed_base) {
            s.sealed = true;
            s.end = sealed_end;
        }
        st.segments.push(Segment {
            base,
            path,
            sealed: false,
            end: format::SEGMENT_HEADER_LEN as u64,
            map: OnceLock::new(),
        });
        st.durable.offset = format::SEGMENT_HEADER_LEN as u64;
    }

    pub(crate) fn map_segment(&self, seg: &Segment) -> Result<FileBytes, LogError> {
        if let Some(map) = seg.map.get() {
            return Ok(map.clone());
        }
        let map = self
            .fs
            .map(&seg.path)
            .map_err(LogError::io("map", &seg.path))?;
        Ok(seg.map.get_or_init(|| map).clone())
    }

    pub(crate) fn oldest_lsn(&self) -> Lsn {
        self.state().segments.first().map_or(1, |s| s.base)
    }

    pub(crate) fn register_reader(&self, from: Lsn) -> Arc<AtomicU64> {
        let position = Arc::new(AtomicU64::new(from));
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        readers.retain(|r| r.strong_count() > 0);
        readers.push(Arc::downgrade(&position));
        position
    }

    fn oldest_reader_position(&self) -> Lsn {
        let readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        readers
            .iter()
            .filter_map(Weak::upgrade)
            .map(|p| p.load(Ordering::Acquire))
            .min()
            .unwrap_or(Lsn::MAX)
    }
}

/// Queued records ([`Log::submit`]): resolves with the LSN of the last one once all are
/// durable, or with the error that stopped them.
#[derive(Debug)]
pub struct Appending(oneshot::Receiver<Result<Lsn, LogError>>);

impl Appending {
    /// Waits outside an async runtime.
    pub fn wait_blocking(self) -> Result<Lsn, LogError> {
        self.0.blocking_recv().map_err(|_| LogError::Closed)?
    }
}

impl std::future::Future for Appending {
    type Output = Result<Lsn, LogError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|reply| reply.map_err(|_| LogError::Closed)?)
    }
}

pub struct Log {
    shared: Arc<Shared>,
    tx: Option<mpsc::Sender<AppendRequest>>,
    writer: Option<JoinHandle<()>>,
    backend: IoBackend,
    durable_rx: watch::Receiver<Lsn>,
}

impl Log {
    /// Opens (creating if needed) the log in `dir` on real files.
    pub fn open(
        dir: impl AsRef<Path>,
        options: LogOptions,
    ) -> Result<(Log, RecoveryReport), LogError> {
        Self::open_on(Arc::new(RealFs), dir, options)
    }

    /// Opens the log on any file system; io_uring is used only on [`RealFs`].
    pub fn open_on(
        fs: Arc<dyn FileSystem>,
        dir: impl AsRef<Path>,
        options: LogOptions,
    ) -> Result<(Log, RecoveryReport), LogError> {
        let dir = dir.as_ref().to_path_buf();
        let min_capacity = (format::SEGMENT_HEADER_LEN + format::RECORD_HEADER_LEN) as u64;
        if options.segment_capacity < min_capacity {
            return Err(LogError::RecordTooLarge {
                len: 0,
                capacity: options.segment_capacity,
            });
        }
        fs.create_dir_all(&dir)
            .map_err(LogError::io("create directory", &dir))?;
        let options = LogOptions {
            max_commit_bytes: options.max_commit_bytes.max(fs::SECTOR as usize),
            ..options
        };
        let recovered = recovery::recover(&*fs, &dir, &options, recovery::Access::Repair)?;
        let mut report = recovered.report;
        let mut segments: Vec<Segment> = recovered
            .segments
            .into_iter()
            .map(|s| Segment {
                base: s.base,
                path: s.path,
                sealed: true,
                end: s.end,
                map: OnceLock::new(),
            })
            .collect();
        let (active_file, active_offset) = match segments.last_mut() {
            Some(last) => {
                last.sealed = false;
                let file = fs
                    .open(&last.path, true)
                    .map_err(LogError::io("open", &last.path))?;
                (file, last.end)
            }
            None => {
                let (file, path) = writer::create_segment(&*fs, &dir, 1, options.segment_capacity)?;
                segments.push(Segment {
                    base: 1,
                    path,
                    sealed: false,
                    end: format::SEGMENT_HEADER_LEN as u64,
                    map: OnceLock::new(),
                });
                report.segments = 1;
                report.first_lsn = 1;
                report.next_lsn = 1;
                (file, format::SEGMENT_HEADER_LEN as u64)
            }
        };
        let active = segments.last().expect("a segment exists");
        let (active_base, active_path) = (active.base, active.path.clone());
        let next_lsn = report.next_lsn;
        let (durable_tx, durable_rx) = watch::channel(next_lsn - 1);
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            fs: fs.clone(),
            state: RwLock::new(SegmentsState {
                segments,
                durable: DurablePoint {
                    lsn: next_lsn - 1,
                    offset: active_offset,
                },
            }),
            durable_tx,
            failure: Mutex::new(None),
            commits: AtomicU64::new(0),
            records: AtomicU64::new(0),
            commit_figures: CommitFigures::default(),
            readers: Mutex::new(Vec::new()),
            damaged: report.damaged.iter().map(|d| d.lsn).collect(),
        });

        let parts = WriterParts {
            fs,
            shared: shared.clone(),
            base: active_base,
            path: active_path,
            offset: active_offset,
            next_lsn,
            capacity: options.segment_capacity,
            max_commit_bytes: options.max_commit_bytes,
        };
        // io_uring needs a real file descriptor; the simulated file system has none.
        let uring_possible = active_file.try_clone_std().is_some();
        let io = options.io;
        let (tx, rx) = mpsc::channel(options.queue_depth.max(1));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<IoBackend, LogError>>();
        let writer = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                crate::priority::quicken_current_thread();
                parts.run(io, uring_possible, active_file, rx, ready_tx)
            })
            .map_err(LogError::io("spawn writer thread for", &dir))?;
        let backend = match ready_rx.recv() {
            Ok(Ok(backend)) => backend,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(LogError::Closed),
        };
        let log = Log {
            shared,
            tx: Some(tx),
            writer: Some(writer),
            backend,
            durable_rx,
        };
        Ok((log, report))
    }

    /// Appends records; resolves with the LSN of the last one once all are durable.
    ///
    /// Not cancel-safe for callers that act on durability: dropped after the records were
    /// queued, they still become durable and the caller never learns it. Such callers use
    /// [`Log::submit`].
    pub async fn append(&self, records: Vec<Record>) -> Result<Lsn, LogError> {
        self.submit(records).await?.await
    }

    /// Queues records for the writer. Once this returns, they are on their way whatever
    /// happens to the caller: the [`Appending`] tells their fate, and dropping it changes
    /// nothing. Cancelled before it returns, it has queued nothing.
    pub async fn submit(&self, records: Vec<Record>) -> Result<Appending, LogError> {
        let (req, rx) = self.request(records)?;
        let tx = self.tx.as_ref().ok_or(LogError::Closed)?;
        tx.send(req).await.map_err(|_| LogError::Closed)?;
        Ok(Appending(rx))
    }

    /// [`Log::append`] for callers outside an async runtime.
    pub fn append_blocking(&self, records: Vec<Record>) -> Result<Lsn, LogError> {
        let (req, rx) = self.request(records)?;
        let tx = self.tx.as_ref().ok_or(LogError::Closed)?;
        tx.blocking_send(req).map_err(|_| LogError::Closed)?;
        rx.blocking_recv().map_err(|_| LogError::Closed)?
    }

    #[allow(clippy::type_complexity)]
    fn request(
        &self,
        records: Vec<Record>,
    ) -> Result<(AppendRequest, oneshot::Receiver<Result<Lsn, LogError>>), LogError> {
        if let Some(reason) = self.shared.failure() {
            return Err(LogError::Failed { reason });
        }
        let bytes: usize = records
            .iter()
            .map(|r| format::encoded_record_len(r.payload.len()))
            .sum();
        // An append larger than a segment gets a segment of its own (see the writer).
        if bytes > format::MAX_APPEND_BYTES {
            return Err(LogError::RecordTooLarge {
                len: bytes,
                capacity: format::MAX_APPEND_BYTES as u64,
            });
        }
        if records.iter().any(|r| r.kind == 0) {
            return Err(LogError::ReservedKind);
        }
        let (reply, rx) = oneshot::channel();
        Ok((
            AppendRequest {
                records,
                bytes,
                reply,
            },
            rx,
        ))
    }

    /// Reads durable records from `from` on.
    pub fn reader(&self, from: Lsn) -> Result<LogReader, LogError> {
        LogReader::new(self.shared.clone(), from.max(1))
    }

    /// The last durable LSN (0 when the log is empty).
    pub fn durable_lsn(&self) -> Lsn {
        *self.durable_rx.borrow()
    }

    /// Resolves once `lsn` is durable (or the log is closed).
    pub async fn wait_durable(&self, lsn: Lsn) {
        let mut rx = self.durable_rx.clone();
        let _ = rx.wait_for(|&d| d >= lsn).await;
    }

    pub fn backend(&self) -> &IoBackend {
        &self.backend
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    pub fn file_system(&self) -> Arc<dyn FileSystem> {
        self.shared.fs.clone()
    }

    /// The reason the log refuses writes, if it does.
    pub fn failure(&self) -> Option<Arc<str>> {
        self.shared.failure()
    }

    pub fn figures(&self) -> LogFigures {
        let st = self.shared.state();
        let bytes = st
            .segments
            .iter()
            .map(|s| if s.sealed { s.end } else { st.durable.offset })
            .sum();
        let commits = self.shared.commits.load(Ordering::Relaxed);
        let records = self.shared.records.load(Ordering::Relaxed);
        LogFigures {
            segments: st.segments.len(),
            bytes,
            oldest_lsn: st.segments.first().map_or(1, |s| s.base),
            durable_lsn: st.durable.lsn,
            commits,
            records_committed: records,
            records_per_commit: if commits == 0 {
                0.0
            } else {
                records as f64 / commits as f64
            },
            committed_bytes: self.shared.commit_figures.bytes.load(Ordering::Relaxed),
        }
    }

    /// How long each commit's fdatasync took, from its start to its end, since start.
    pub fn commit_seconds(&self) -> LatencyFigures {
        self.shared.commit_figures.latencies()
    }

    /// Removes sealed segments whose records all come before `lsn` (typically the LSN of
    /// the newest snapshot) and that no open reader still needs. Returns how many.
    pub fn remove_segments_before(&self, lsn: Lsn) -> Result<usize, LogError> {
        let bound = lsn.min(self.shared.oldest_reader_position());
        let mut doomed: Vec<Segment> = {
            let mut st = self.shared.state_mut();
            let mut doomed = Vec::new();
            // A segment's records all precede `bound` when the next segment starts at or
            // before it; the active segment is never removed.
            while st.segments.len() > 1 && st.segments[1].base <= bound && st.segments[0].sealed {
                doomed.push(st.segments.remove(0));
            }
            doomed
        };
        let count = doomed.len();
        for at in 0..count {
            let path = &doomed[at].path;
            let removed = match crate::failpoint::io_check("log.segment_remove") {
                Some(e) => Err(e),
                None => self.shared.fs.remove(path),
            };
            if let Err(e) = removed {
                let e = LogError::io("remove", path)(e);
                // Listed again, so that the figures count them and a later call retries:
                // they precede every listed segment, removed only from the front.
                self.shared
                    .state_mut()
                    .segments
                    .splice(0..0, doomed.drain(at..));
                return Err(e);
            }
        }
        if count > 0 {
            self.shared
                .fs
                .sync_dir(&self.shared.dir)
                .map_err(LogError::io("sync directory", &self.shared.dir))?;
        }
        Ok(count)
    }

    /// The bytes of every segment as of now, for a backup: sealed segments up to their
    /// end, the active one up to its durable offset (bytes below it never change). Each is
    /// mapped under the segment list's lock, so a later removal of the file does not take
    /// the bytes away.
    pub fn segment_images(&self) -> Result<Vec<SegmentImage>, LogError> {
        let st = self.shared.state();
        st.segments
            .iter()
            .map(|seg| {
                let (bytes, len) = if seg.sealed {
                    (self.shared.map_segment(seg)?, seg.end)
                } else {
                    let map = self
                        .shared
                        .fs
                        .map(&seg.path)
                        .map_err(LogError::io("map", &seg.path))?;
                    (map, st.durable.offset)
                };
                Ok(SegmentImage {
                    base: seg.base,
                    path: seg.path.clone(),
                    bytes,
                    len,
                    file_mapped: self.shared.fs.maps_files(),
                })
            })
            .collect()
    }

    /// Stops the writer after it has finished every append already queued.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.tx.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A segment's bytes at one moment (see [`Log::segment_images`]).
pub struct SegmentImage {
    pub base: Lsn,
    pub path: PathBuf,
    bytes: FileBytes,
    /// Bytes of the segment that belong to the image (header and durable records).
    pub len: u64,
    /// The bytes are a shared mapping of the file (see [`FileSystem::maps_files`]).
    pub file_mapped: bool,
}

impl SegmentImage {
    pub fn bytes(&self) -> &[u8] {
        let all: &[u8] = (*self.bytes).as_ref();
        &all[..(self.len as usize).min(all.len())]
    }
}

/// Everything the writer thread needs to start.
struct WriterParts {
    fs: Arc<dyn FileSystem>,
    shared: Arc<Shared>,
    base: Lsn,
    path: PathBuf,
    offset: u64,
    next_lsn: Lsn,
    capacity: u64,
    max_commit_bytes: usize,
}

type Ready = std::sync::mpsc::Sender<Result<IoBackend, LogError>>;

impl WriterParts {
    /// The writer thread's body: io_uring if possible, pwrite otherwise.
    fn run(
        self,
        io: IoMode,
        uring_possible: bool,
        file: Box<dyn fs::FsFile>,
        rx: mpsc::Receiver<AppendRequest>,
        ready: Ready,
    ) {
        let mut fallback_reason = None;
        if io != IoMode::Pwrite && uring_possible {
            match self.start_uring(file.as_ref()) {
                Ok((rt, sink)) => {
                    let _ = ready.send(Ok(IoBackend::IoUring));
                    rt.block_on(self.writer(UringOpener, sink).run(rx));
                    return;
                }
                Err(reason) if io == IoMode::IoUring => {
                    let _ = ready.send(Err(LogError::Io {
                        op: "use io_uring for",
                        path: self.path.clone(),
                        source: std::io::Error::other(reason),
                    }));
                    return;
                }
                Err(reason) => fallback_reason = Some(reason),
            }
        }
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready.send(Err(LogError::io("start writer runtime for", &self.path)(e)));
                return;
            }
        };
        let sink = writer::BlockingSink::new(file);
        let _ = ready.send(Ok(IoBackend::Pwrite { fallback_reason }));
        rt.block_on(self.writer(BlockingOpener, sink).run(rx));
    }

    /// A tokio-uring runtime and the active segment opened on it, proven to work by one
    /// fdatasync (some sandboxes allow creating a ring but refuse its operations).
    fn start_uring(
        &self,
        file: &dyn fs::FsFile,
    ) -> Result<(tokio_uring::Runtime, writer::UringSink), String> {
        let rt = tokio_uring::Runtime::new(&tokio_uring::builder()).map_err(|e| e.to_string())?;
        let std = file.try_clone_std().ok_or("not a real file")?;
        let sink = writer::UringSink::new(std);
        // The sink's file must be created inside the runtime it is used on.
        rt.block_on(async {
            use writer::Sink;
            sink.sync_data().await
        })
        .map_err(|e| e.to_string())?;
        Ok((rt, sink))
    }

    fn writer<O: SinkOpener>(self, opener: O, sink: O::Sink) -> Writer<O> {
        Writer {
            opener,
            fs: self.fs,
            shared: self.shared,
            active: writer::Active {
                base: self.base,
                path: self.path,
                sink: std::rc::Rc::new(sink),
                offset: self.offset,
                next_lsn: self.next_lsn,
                capacity: self.capacity,
            },
            capacity: self.capacity,
            max_commit_bytes: self.max_commit_bytes,
        }
    }
}

#[cfg(any(test, feature = "testing"))]
/// Fuzz entry point: arbitrary bytes as the newest segment of a log (and as a segment
/// before another one). Verifying, opening, reading and appending must never panic.
pub fn fuzz_segment(data: &[u8]) {
    let options = LogOptions {
        segment_capacity: 64 * 1024,
        ..LogOptions::default()
    };
    for (name, next) in [
        ("00000000000000000001.seg", false),
        ("00000000000000000001.seg", true),
    ] {
        let fs = sim::SimFs::new();
        let dir = Path::new("/fuzz");
        fs.put_file(&dir.join(name), data);
        if next {
            let mut second = format::encode_segment_header(2).to_vec();
            second.resize(1024, 0);
            fs.put_file(&dir.join("00000000000000000002.seg"), &second);
        }
        let _ = verify(&fs, dir);
        let _ = for_each_record(&fs, dir, 1, |r| {
            std::hint::black_box(r);
        });
        if let Ok((log, _)) = Log::open_on(Arc::new(fs.clone()), dir, options.clone()) {
            if let Ok(mut reader) = log.reader(1) {
                while let Ok(Some(_)) = reader.next() {}
            }
            let _ = log.append_blocking(vec![Record::new(1, "after")]);
        }
    }
}
