//! The log's single writer: one thread, group commit.
//!
//! Appenders send [`AppendRequest`]s over a bounded channel. The writer takes everything
//! queued (up to `max_commit_bytes`), frames it into one buffer, writes it with one write and
//! makes it durable with one fdatasync, then answers every request of the group with its
//! LSN. Only then do readers see the records ([`super::Shared::publish`]).
//!
//! On real files the writer thread runs a tokio-uring runtime and the commit's write and
//! fdatasync are io_uring operations; where the kernel refuses io_uring, or on the simulated
//! file system, the same loop runs on a current-thread tokio runtime with pwrite+fdatasync.

use super::format::{self, SEGMENT_HEADER_LEN};
use super::fs::{FileSystem, FsFile};
use super::{LogError, Lsn, Record, Shared};
use futures_util::stream::{FuturesOrdered, StreamExt};
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

pub(crate) struct AppendRequest {
    pub records: Vec<Record>,
    pub bytes: usize,
    pub reply: oneshot::Sender<Result<Lsn, LogError>>,
}

/// The commit path's I/O: a positioned write of a whole buffer and an fdatasync.
pub(crate) trait Sink: 'static {
    fn write_all_at(&self, buf: Vec<u8>, offset: u64) -> impl Future<Output = (io::Result<()>, Vec<u8>)>;
    fn sync_data(&self) -> impl Future<Output = io::Result<()>>;
}

pub(crate) trait SinkOpener {
    type Sink: Sink;
    fn open(&self, file: Box<dyn FsFile>) -> io::Result<Self::Sink>;
}

/// pwrite + fdatasync through the [`FileSystem`] trait (real or simulated files).
pub(crate) struct BlockingOpener;
pub(crate) struct BlockingSink(Box<dyn FsFile>);

impl BlockingSink {
    pub fn new(file: Box<dyn FsFile>) -> Self {
        BlockingSink(file)
    }
}

impl SinkOpener for BlockingOpener {
    type Sink = BlockingSink;
    fn open(&self, file: Box<dyn FsFile>) -> io::Result<BlockingSink> {
        Ok(BlockingSink(file))
    }
}

impl Sink for BlockingSink {
    async fn write_all_at(&self, buf: Vec<u8>, offset: u64) -> (io::Result<()>, Vec<u8>) {
        (self.0.write_all_at(&buf, offset), buf)
    }
    async fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

/// io_uring write + fdatasync on the real file behind the handle.
pub(crate) struct UringOpener;
pub(crate) struct UringSink(tokio_uring::fs::File);

impl UringSink {
    pub fn new(file: std::fs::File) -> Self {
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
        self.0.write_all_at(buf, offset).await
    }
    async fn sync_data(&self) -> io::Result<()> {
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
}

pub(crate) struct Writer<O: SinkOpener> {
    pub opener: O,
    pub fs: Arc<dyn FileSystem>,
    pub shared: Arc<Shared>,
    pub active: Active<O::Sink>,
    pub capacity: u64,
    pub max_commit_bytes: usize,
}

/// Commits that may be in flight at once. While one commit's fdatasync runs, the next
/// is written and synced, so the device never waits for appenders to come back.
const MAX_IN_FLIGHT: usize = 3;

type Acks = Vec<(oneshot::Sender<Result<Lsn, LogError>>, Lsn)>;

/// One commit: framed records at `start` of the active segment, and who to answer.
struct Commit {
    buf: Vec<u8>,
    start: u64,
    acks: Acks,
    records: u64,
}

/// A commit whose write and fdatasync have finished (or failed).
struct Completed {
    result: Result<(), (&'static str, io::Error)>,
    segment: Lsn,
    path: PathBuf,
    end: u64,
    last_lsn: Lsn,
    commit: Commit,
}

type InFlight = FuturesOrdered<Pin<Box<dyn Future<Output = Completed>>>>;

impl<O: SinkOpener> Writer<O> {
    pub async fn run(mut self, mut rx: mpsc::Receiver<AppendRequest>) {
        let mut in_flight = InFlight::new();
        let mut spare: Vec<Vec<u8>> = Vec::new();
        loop {
            tokio::select! {
                biased;
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    spare.push(self.complete(done));
                }
                first = rx.recv(), if in_flight.len() < MAX_IN_FLIGHT => {
                    let Some(first) = first else { break };
                    let mut batch = vec![first];
                    let mut bytes = batch[0].bytes;
                    while bytes < self.max_commit_bytes {
                        match rx.try_recv() {
                            Ok(req) => {
                                bytes += req.bytes;
                                batch.push(req);
                            }
                            Err(_) => break,
                        }
                    }
                    let buf = spare.pop().unwrap_or_default();
                    self.frame(batch, buf, &mut in_flight, &mut spare).await;
                }
            }
        }
        while let Some(done) = in_flight.next().await {
            self.complete(done);
        }
    }

    /// Frames a batch into commits and starts them; rolls to a new segment when needed.
    async fn frame(&mut self, batch: Vec<AppendRequest>, mut buf: Vec<u8>, in_flight: &mut InFlight, spare: &mut Vec<Vec<u8>>) {
        buf.clear();
        let mut commit = Commit { buf, start: self.active.offset, acks: Vec::new(), records: 0 };
        let mut requests = batch.into_iter();
        while let Some(req) = requests.next() {
            if let Some(reason) = self.shared.failure() {
                let _ = req.reply.send(Err(LogError::Failed { reason }));
                continue;
            }
            let end = commit.start + (commit.buf.len() + req.bytes) as u64;
            if end > self.capacity {
                // The request does not fit: finish everything in this segment, then roll.
                let start = self.start(commit, in_flight);
                while let Some(done) = in_flight.next().await {
                    spare.push(self.complete(done));
                }
                commit = Commit { buf: spare.pop().unwrap_or_default(), start, acks: Vec::new(), records: 0 };
                commit.buf.clear();
                let rolled = if self.shared.failure().is_some() { Ok(()) } else { self.roll() };
                if let Err(e) = rolled {
                    // Running out of space for a new segment loses nothing and the log stays
                    // usable; any other failure to start a segment fails the log.
                    let e = match e {
                        LogError::NoSpace { .. } => e,
                        other => LogError::Failed { reason: self.shared.fail(other.to_string()) },
                    };
                    for r in std::iter::once(req).chain(requests.by_ref()) {
                        let _ = r.reply.send(Err(e.for_another_caller()));
                    }
                    return;
                }
                if let Some(reason) = self.shared.failure() {
                    let _ = req.reply.send(Err(LogError::Failed { reason }));
                    continue;
                }
                commit.start = self.active.offset;
            }
            for r in &req.records {
                format::encode_record(&mut commit.buf, r.kind, &r.payload);
            }
            self.active.next_lsn += req.records.len() as u64;
            commit.records += req.records.len() as u64;
            commit.acks.push((req.reply, self.active.next_lsn - 1));
        }
        self.start(commit, in_flight);
    }

    /// Starts a commit's write + fdatasync; returns the offset after it.
    fn start(&mut self, commit: Commit, in_flight: &mut InFlight) -> u64 {
        if commit.acks.is_empty() {
            return self.active.offset;
        }
        let end = commit.start + commit.buf.len() as u64;
        self.active.offset = end;
        let sink = self.active.sink.clone();
        let (segment, path, last_lsn) = (self.active.base, self.active.path.clone(), self.active.next_lsn - 1);
        in_flight.push_back(Box::pin(async move {
            let mut commit = commit;
            let (res, buf) = sink.write_all_at(std::mem::take(&mut commit.buf), commit.start).await;
            commit.buf = buf;
            let result = match res {
                Ok(()) => sink.sync_data().await.map_err(|e| ("fdatasync", e)),
                Err(e) => Err(("write", e)),
            };
            Completed { result, segment, path, end, last_lsn, commit }
        }));
        end
    }

    /// Publishes and acknowledges a finished commit, in order; a failure fails the log and
    /// every commit after it. Returns the buffer for reuse.
    fn complete(&mut self, done: Completed) -> Vec<u8> {
        let Completed { result, segment, path, end, last_lsn, mut commit } = done;
        let outcome = match (result, self.shared.failure()) {
            (_, Some(reason)) => Err(reason),
            (Err((op, e)), None) => Err(self.shared.fail(format!("{op} of {} failed: {e}", path.display()))),
            (Ok(()), None) => Ok(()),
        };
        match outcome {
            Ok(()) => {
                self.shared.publish(segment, end, last_lsn, commit.records);
                for (reply, lsn) in commit.acks.drain(..) {
                    let _ = reply.send(Ok(lsn));
                }
            }
            Err(reason) => {
                for (reply, _) in commit.acks.drain(..) {
                    let _ = reply.send(Err(LogError::Failed { reason: reason.clone() }));
                }
            }
        }
        commit.buf
    }

    /// Seals the active segment and starts the next one at the next LSN. Every commit in
    /// the sealed segment has completed.
    fn roll(&mut self) -> Result<(), LogError> {
        let base = self.active.next_lsn;
        let (file, path) = create_segment(&*self.fs, &self.shared.dir, base, self.capacity)?;
        let sink = Rc::new(self.opener.open(file).map_err(LogError::io("open", &path))?);
        let sealed = std::mem::replace(
            &mut self.active,
            Active { base, path, sink, offset: SEGMENT_HEADER_LEN as u64, next_lsn: base },
        );
        self.shared.seal_and_push(sealed.base, sealed.offset, base, self.active.path.clone());
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
    fs.sync_dir(dir).map_err(LogError::io("sync directory", dir))?;
    Ok((file, path))
}
