//! The log's single writer: one thread, group commit.
//!
//! Appenders send [`AppendRequest`]s over a bounded channel. The writer takes what is
//! queued, frames it into one buffer and writes it with one write; one fdatasync then makes
//! every append written so far durable, and only then are they answered with their LSNs
//! and shown to readers ([`super::Shared::publish`]). While a fdatasync runs, newly queued
//! appends are already written (see [`Writer::run`]).
//!
//! Invariant (recovery relies on it): at no time are more than `max_commit_bytes` written
//! and not yet durable. An append that would exceed it waits for the fdatasync in flight;
//! an append larger than that on its own is written in pieces of `max_commit_bytes`, each
//! made durable before the next is written. So a crash can leave damaged at most the
//! `max_commit_bytes` after the last durable byte, and recovery treats nothing further
//! from it as torn (see [`super::recovery`]).
//!
//! On real files the writer thread runs a tokio-uring runtime and the commit's write and
//! fdatasync are io_uring operations; where the kernel refuses io_uring, or on the simulated
//! file system, the same loop runs on a current-thread tokio runtime with pwrite+fdatasync.

use super::format::{self, SEGMENT_HEADER_LEN};
use super::fs::{FileSystem, FsFile, SECTOR};
use super::{LogError, Lsn, Record, Shared};
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

pub(crate) struct AppendRequest {
    pub records: Vec<Record>,
    pub bytes: usize,
    pub reply: oneshot::Sender<Result<Lsn, LogError>>,
}

/// The commit path's I/O: a positioned write of a whole buffer and an fdatasync.
pub(crate) trait Sink: 'static {
    fn write_all_at(
        &self,
        buf: Vec<u8>,
        offset: u64,
    ) -> impl Future<Output = (io::Result<()>, Vec<u8>)>;
    fn sync_data(&self) -> impl Future<Output = io::Result<()>>;
}

pub(crate) trait SinkOpener {
    type Sink: Sink;
    fn open(&self, file: Box<dyn FsFile>) -> io::Result<Self::Sink>;
}

/// pwrite + fdatasync through the [`FileSystem`] trait (real or simulated files). The
/// fdatasync runs on tokio's blocking pool, so that, as with io_uring, the writer goes on
/// writing while it runs (a pool thread exits when idle: an idle log costs no thread).
pub(crate) struct BlockingOpener;
pub(crate) struct BlockingSink(Arc<dyn FsFile>);

impl BlockingSink {
    pub(super) fn new(file: Box<dyn FsFile>) -> Self {
        BlockingSink(Arc::from(file))
    }
}

impl SinkOpener for BlockingOpener {
    type Sink = BlockingSink;
    fn open(&self, file: Box<dyn FsFile>) -> io::Result<BlockingSink> {
        Ok(BlockingSink::new(file))
    }
}

impl Sink for BlockingSink {
    async fn write_all_at(&self, buf: Vec<u8>, offset: u64) -> (io::Result<()>, Vec<u8>) {
        if let Some(e) = crate::failpoint::io_check("log.write") {
            return (Err(e), buf);
        }
        (self.0.write_all_at(&buf, offset), buf)
    }
    async fn sync_data(&self) -> io::Result<()> {
        if let Some(e) = crate::failpoint::io_check("log.fsync") {
            return Err(e);
        }
        let file = self.0.clone();
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .unwrap_or_else(|e| Err(io::Error::other(format!("fdatasync task failed: {e}"))))
    }
}

/// io_uring write + fdatasync on the real file behind the handle.
pub(crate) struct UringOpener;
pub(crate) struct UringSink(tokio_uring::fs::File);

impl UringSink {
    pub(super) fn new(file: std::fs::File) -> Self {
        UringSink(tokio_uring::fs::File::from_std(file))
    }
}

impl SinkOpener for UringOpener {
    type Sink = UringSink;
    fn open(&self, file: Box<dyn FsFile>) -> io::Result<UringSink> {
        let std = file
            .try_clone_std()
            .ok_or_else(|| io::Error::other("io_uring needs a real file"))?;
        Ok(UringSink::new(std))
    }
}

impl Sink for UringSink {
    async fn write_all_at(&self, buf: Vec<u8>, offset: u64) -> (io::Result<()>, Vec<u8>) {
        if let Some(e) = crate::failpoint::io_check("log.write") {
            return (Err(e), buf);
        }
        self.0.write_all_at(buf, offset).await
    }
    async fn sync_data(&self) -> io::Result<()> {
        if let Some(e) = crate::failpoint::io_check("log.fsync") {
            return Err(e);
        }
        self.0.sync_data().await
    }
}

/// The segment being appended to.
pub(crate) struct Active<S> {
    pub base: Lsn,
    pub path: PathBuf,
    pub sink: Rc<S>,
    /// Where the next commit goes (framed, maybe not yet durable).
    pub offset: u64,
    pub next_lsn: Lsn,
    /// Bytes reserved for the segment: the log's segment capacity, or more for a segment
    /// made for one append larger than that.
    pub capacity: u64,
}

pub(crate) struct Writer<O: SinkOpener> {
    pub opener: O,
    pub fs: Arc<dyn FileSystem>,
    pub shared: Arc<Shared>,
    pub active: Active<O::Sink>,
    /// Capacity of a new segment.
    pub capacity: u64,
    pub max_commit_bytes: usize,
}

type Acks = Vec<(oneshot::Sender<Result<Lsn, LogError>>, Lsn)>;

/// Appends written to the active segment and waiting for an fdatasync.
#[derive(Default)]
struct Group {
    acks: Acks,
    records: u64,
    /// Bytes written for the group and not yet durable.
    bytes: u64,
    /// Every byte written for the group, pieces already synced included (`/metrics`).
    total_bytes: u64,
    /// Offset past the group's last record, and that record's LSN.
    end: u64,
    last_lsn: Lsn,
}

type SyncFuture = Pin<Box<dyn Future<Output = io::Result<()>>>>;

/// The one fdatasync in flight and the group it makes durable.
struct Syncing {
    sync: SyncFuture,
    group: Group,
    started: Instant,
}

/// A short wait before the next fdatasync, for appenders that were just answered.
struct Hold {
    until_appends: usize,
    deadline: Instant,
}

/// The longest an fdatasync is held back for a fuller group.
const MAX_HOLD: Duration = Duration::from_micros(1000);

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(d.into()).await;
    }
}

impl<O: SinkOpener> Writer<O> {
    /// Group commit with the device kept busy: queued appends are written as soon as they
    /// arrive, and fdatasyncs run back to back, each covering everything written before it
    /// began. So a group is whatever arrived during the previous fdatasync: small when load
    /// is light (latency of one write + one sync), large under load (throughput). What is
    /// written and not yet durable stays within `max_commit_bytes` (see the module doc).
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<AppendRequest>) {
        let mut syncing: Option<Syncing> = None;
        let mut written = Group::default();
        let mut hold: Option<Hold> = None;
        // An append that did not fit beside what is unsynced: it goes first once it fits.
        let mut waiting: Option<AppendRequest> = None;
        let mut buf = Vec::with_capacity(self.max_commit_bytes.min(8 << 20));
        loop {
            if syncing.is_none() && !written.acks.is_empty() {
                match &hold {
                    Some(h)
                        if waiting.is_none()
                            && written.acks.len() < h.until_appends
                            && Instant::now() < h.deadline => {}
                    _ => {
                        hold = None;
                        syncing = Some(self.start_sync(std::mem::take(&mut written)));
                    }
                }
            }
            let unsynced = written.bytes + syncing.as_ref().map_or(0, |s| s.group.bytes);
            if let Some(first) = waiting.take() {
                if self.fits(first.bytes, unsynced) {
                    let batch = self.gather(first, unsynced, &mut rx, &mut waiting);
                    self.write_batch(batch, &mut buf, &mut written, &mut syncing)
                        .await;
                    continue;
                }
                waiting = Some(first);
            }
            let room = (self.max_commit_bytes as u64).saturating_sub(unsynced);
            let hold_deadline = hold.as_ref().map(|h| h.deadline);
            tokio::select! {
                biased;
                res = async { syncing.as_mut().expect("guarded").sync.as_mut().await }, if syncing.is_some() => {
                    let done = syncing.take().expect("guarded");
                    let acked = done.group.acks.len();
                    let took = done.started.elapsed();
                    self.complete(res, done.group, took);
                    // The appenders just answered usually come straight back: wait a little
                    // for them so they share the next fdatasync rather than the one after
                    // (otherwise groups settle at half the appenders, alternating).
                    hold = (!written.acks.is_empty()).then(|| Hold {
                        until_appends: acked + written.acks.len(),
                        deadline: Instant::now() + took.min(MAX_HOLD),
                    });
                }
                _ = sleep_until(hold_deadline), if hold_deadline.is_some() && syncing.is_none() => {
                    hold = None;
                }
                first = rx.recv(), if waiting.is_none() && room > 0 => {
                    let Some(first) = first else { break };
                    if !self.fits(first.bytes, unsynced) {
                        waiting = Some(first);
                        continue;
                    }
                    let batch = self.gather(first, unsynced, &mut rx, &mut waiting);
                    self.write_batch(batch, &mut buf, &mut written, &mut syncing).await;
                }
            }
        }
        self.make_durable(&mut written, &mut syncing).await;
    }

    /// Whether an append of `bytes` may be written beside `unsynced` bytes: within
    /// `max_commit_bytes`, or alone when it is larger.
    fn fits(&self, bytes: usize, unsynced: u64) -> bool {
        unsynced == 0 || unsynced + bytes as u64 <= self.max_commit_bytes as u64
    }

    /// `first` and what else is queued that fits beside it; the first that does not
    /// becomes `waiting`.
    fn gather(
        &self,
        first: AppendRequest,
        unsynced: u64,
        rx: &mut mpsc::Receiver<AppendRequest>,
        waiting: &mut Option<AppendRequest>,
    ) -> Vec<AppendRequest> {
        let mut bytes = unsynced + first.bytes as u64;
        let mut batch = vec![first];
        while bytes < self.max_commit_bytes as u64 {
            match rx.try_recv() {
                Ok(req) if bytes + req.bytes as u64 <= self.max_commit_bytes as u64 => {
                    bytes += req.bytes as u64;
                    batch.push(req);
                }
                Ok(req) => {
                    *waiting = Some(req);
                    break;
                }
                Err(_) => break,
            }
        }
        batch
    }

    fn start_sync(&self, group: Group) -> Syncing {
        let sink = self.active.sink.clone();
        Syncing {
            sync: Box::pin(async move { sink.sync_data().await }),
            group,
            started: Instant::now(),
        }
    }

    /// Waits for the sync in flight, then syncs whatever else was written.
    async fn make_durable(&mut self, written: &mut Group, syncing: &mut Option<Syncing>) {
        if let Some(s) = syncing.take() {
            let res = s.sync.await;
            self.complete(res, s.group, s.started.elapsed());
        }
        if !written.acks.is_empty() {
            let s = self.start_sync(std::mem::take(written));
            let res = s.sync.await;
            self.complete(res, s.group, s.started.elapsed());
        }
    }

    /// Frames a batch and writes it to the active segment (rolling when it is full); the
    /// appends join the group waiting for the next fdatasync.
    async fn write_batch(
        &mut self,
        batch: Vec<AppendRequest>,
        buf: &mut Vec<u8>,
        written: &mut Group,
        syncing: &mut Option<Syncing>,
    ) {
        buf.clear();
        let mut start = self.active.offset;
        let mut framed = Group::default();
        let mut requests = batch.into_iter();
        while let Some(req) = requests.next() {
            if let Some(reason) = self.shared.failure() {
                let _ = req.reply.send(Err(LogError::Failed { reason }));
                continue;
            }
            let end = start + (buf.len() + req.bytes) as u64;
            if end > self.active.capacity {
                // An append is never split across segments (recovery keeps or drops a
                // segment's tail, not part of an append). One larger than a segment gets
                // room of its own: the empty active segment grows, or the next is sized
                // for it.
                let room = if start == SEGMENT_HEADER_LEN as u64 && buf.is_empty() {
                    self.grow_active(end)
                } else {
                    // Make this segment's appends durable, then roll.
                    self.write(buf, start, std::mem::take(&mut framed), written)
                        .await;
                    self.make_durable(written, syncing).await;
                    match self.shared.failure() {
                        Some(reason) => Err(LogError::Failed { reason }),
                        None => self.roll(SEGMENT_HEADER_LEN as u64 + req.bytes as u64),
                    }
                };
                if let Err(e) = room {
                    // Running out of space for a new segment loses nothing and the log stays
                    // usable; any other failure to start a segment fails the log.
                    let e = match e {
                        LogError::NoSpace { .. } | LogError::Failed { .. } => e,
                        other => LogError::Failed {
                            reason: self.shared.fail(other.to_string()),
                        },
                    };
                    for r in std::iter::once(req).chain(requests.by_ref()) {
                        let _ = r.reply.send(Err(e.for_another_caller()));
                    }
                    return;
                }
                start = self.active.offset;
            }
            for r in &req.records {
                format::encode_record(buf, r.kind, &r.payload);
            }
            self.active.next_lsn += req.records.len() as u64;
            framed.records += req.records.len() as u64;
            framed.acks.push((req.reply, self.active.next_lsn - 1));
        }
        self.write(buf, start, framed, written).await;
    }

    /// Writes framed appends at `start`; on success they join `written`, on failure the
    /// log fails and they are answered with the error.
    async fn write(
        &mut self,
        buf: &mut Vec<u8>,
        start: u64,
        mut framed: Group,
        written: &mut Group,
    ) {
        if framed.acks.is_empty() {
            return;
        }
        // One append larger than may be unsynced at once (nothing else is unsynced then):
        // its pieces but the last are made durable one by one. Pieces end on a sector
        // boundary, so no sector holds both durable bytes and bytes a crash may lose, and
        // a sector lost from a record reads as zeros all through (recovery relies on it).
        let mut at = 0;
        let mut res = Ok(());
        while res.is_ok() && buf.len() - at > self.max_commit_bytes {
            let reach = start + (at + self.max_commit_bytes) as u64;
            let piece_end = (reach / SECTOR * SECTOR - start) as usize;
            let piece = buf[at..piece_end].to_vec();
            res = match self
                .active
                .sink
                .write_all_at(piece, start + at as u64)
                .await
            {
                (Ok(()), _) => self.active.sink.sync_data().await,
                (Err(e), _) => Err(e),
            };
            at = piece_end;
        }
        buf.drain(..at.min(buf.len()));
        if res.is_ok() {
            let (r, returned) = self
                .active
                .sink
                .write_all_at(std::mem::take(buf), start + at as u64)
                .await;
            *buf = returned;
            res = r;
        }
        let end = start + (at + buf.len()) as u64;
        let last_piece = buf.len() as u64;
        buf.clear();
        match res {
            Ok(()) => {
                self.active.offset = end;
                written.acks.append(&mut framed.acks);
                written.records += framed.records;
                written.bytes += last_piece;
                written.total_bytes += end - start;
                written.end = end;
                written.last_lsn = self.active.next_lsn - 1;
            }
            Err(e) => {
                let reason = self.shared.fail(format!(
                    "write of {} failed: {e}",
                    self.active.path.display()
                ));
                for (reply, _) in framed.acks {
                    let _ = reply.send(Err(LogError::Failed {
                        reason: reason.clone(),
                    }));
                }
            }
        }
    }

    /// Publishes and acknowledges a group whose fdatasync finished; a failed fdatasync fails
    /// the log (it is never retried: the kernel may have dropped the data).
    fn complete(&mut self, res: io::Result<()>, group: Group, took: Duration) {
        let outcome = match (res, self.shared.failure()) {
            (_, Some(reason)) => Err(reason),
            (Err(e), None) => Err(self.shared.fail(format!(
                "fdatasync of {} failed: {e}",
                self.active.path.display()
            ))),
            (Ok(()), None) => Ok(()),
        };
        match outcome {
            Ok(()) => {
                self.shared
                    .publish(self.active.base, group.end, group.last_lsn, group.records);
                self.shared.commit_figures.record(took, group.total_bytes);
                for (reply, lsn) in group.acks {
                    let _ = reply.send(Ok(lsn));
                }
            }
            Err(reason) => {
                for (reply, _) in group.acks {
                    let _ = reply.send(Err(LogError::Failed {
                        reason: reason.clone(),
                    }));
                }
            }
        }
    }

    /// Reserves `len` bytes for the active segment, which holds no record yet.
    fn grow_active(&mut self, len: u64) -> Result<(), LogError> {
        let path = &self.active.path;
        self.fs
            .open(path, true)
            .and_then(|file| file.preallocate(len))
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ENOSPC) {
                    LogError::NoSpace { path: path.clone() }
                } else {
                    LogError::io("grow", path)(e)
                }
            })?;
        self.active.capacity = len;
        Ok(())
    }

    /// Seals the active segment and starts the next one at the next LSN, with room for
    /// at least `needed` bytes (header included). Every commit in the sealed segment has
    /// completed.
    fn roll(&mut self, needed: u64) -> Result<(), LogError> {
        let base = self.active.next_lsn;
        let capacity = self.capacity.max(needed);
        let (file, path) = create_segment(&*self.fs, &self.shared.dir, base, capacity)?;
        let sink = Rc::new(
            self.opener
                .open(file)
                .map_err(LogError::io("open", &path))?,
        );
        let sealed = std::mem::replace(
            &mut self.active,
            Active {
                base,
                path,
                sink,
                offset: SEGMENT_HEADER_LEN as u64,
                next_lsn: base,
                capacity,
            },
        );
        self.shared
            .seal_and_push(sealed.base, sealed.offset, base, self.active.path.clone());
        Ok(())
    }
}

/// Creates a preallocated segment whose header is durable, and makes its name durable.
pub(crate) fn create_segment(
    fs: &dyn FileSystem,
    dir: &std::path::Path,
    base: Lsn,
    capacity: u64,
) -> Result<(Box<dyn FsFile>, PathBuf), LogError> {
    let path = dir.join(format::segment_file_name(base));
    let file = fs.create_preallocated(&path, capacity).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOSPC) {
            LogError::NoSpace { path: path.clone() }
        } else {
            LogError::io("create", &path)(e)
        }
    })?;
    file.write_all_at(&format::encode_segment_header(base), 0)
        .and_then(|()| file.sync_data())
        .map_err(LogError::io("write header of", &path))?;
    fs.sync_dir(dir)
        .map_err(LogError::io("sync directory", dir))?;
    Ok((file, path))
}
