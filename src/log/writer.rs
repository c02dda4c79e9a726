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
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

pub(crate) struct AppendRequest {
    pub records: Vec<Record>,
    pub bytes: usize,
    pub reply: oneshot::Sender<Result<Lsn, LogError>>,
}

/// The commit path's I/O: a positioned write of a whole buffer and an fdatasync.
pub(crate) trait Sink {
    fn write_all_at(&mut self, buf: Vec<u8>, offset: u64) -> impl Future<Output = (io::Result<()>, Vec<u8>)>;
    fn sync_data(&mut self) -> impl Future<Output = io::Result<()>>;
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
    async fn write_all_at(&mut self, buf: Vec<u8>, offset: u64) -> (io::Result<()>, Vec<u8>) {
        (self.0.write_all_at(&buf, offset), buf)
    }
    async fn sync_data(&mut self) -> io::Result<()> {
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
    async fn write_all_at(&mut self, buf: Vec<u8>, offset: u64) -> (io::Result<()>, Vec<u8>) {
        let (res, slice) = self.0.write_all_at(buf, offset).await;
        (res, slice)
    }
    async fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data().await
    }
}

/// The segment being appended to.
pub(crate) struct Active<S> {
    pub base: Lsn,
    pub path: PathBuf,
    pub sink: S,
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

/// Requests of one commit that are framed into the buffer but not yet durable.
struct Pending {
    buf: Vec<u8>,
    start: u64,
    acks: Vec<(oneshot::Sender<Result<Lsn, LogError>>, Lsn)>,
    records: u64,
}

impl<O: SinkOpener> Writer<O> {
    pub async fn run(mut self, mut rx: mpsc::Receiver<AppendRequest>) {
        let mut batch = Vec::new();
        let mut buf = Vec::with_capacity(self.max_commit_bytes.min(8 << 20));
        while let Some(first) = rx.recv().await {
            let mut bytes = first.bytes;
            batch.push(first);
            while bytes < self.max_commit_bytes {
                match rx.try_recv() {
                    Ok(req) => {
                        bytes += req.bytes;
                        batch.push(req);
                    }
                    Err(_) => break,
                }
            }
            buf = self.commit(&mut batch, buf).await;
        }
    }

    async fn commit(&mut self, batch: &mut Vec<AppendRequest>, mut buf: Vec<u8>) -> Vec<u8> {
        buf.clear();
        let mut pending = Pending { buf, start: self.active.offset, acks: Vec::new(), records: 0 };
        let mut requests = batch.drain(..);
        while let Some(req) = requests.next() {
            if let Some(reason) = self.shared.failure() {
                let _ = req.reply.send(Err(LogError::Failed { reason }));
                continue;
            }
            let end = pending.start + (pending.buf.len() + req.bytes) as u64;
            if end > self.capacity {
                // The request does not fit: make what is framed durable, then roll.
                pending = self.flush(pending).await;
                if let Err(e) = self.roll().await {
                    // Running out of space for a new segment loses nothing and the log stays
                    // usable; any other failure to start a segment fails the log.
                    let e = match e {
                        LogError::NoSpace { .. } => e,
                        other => LogError::Failed { reason: self.shared.fail(other.to_string()) },
                    };
                    for r in std::iter::once(req).chain(requests.by_ref()) {
                        let _ = r.reply.send(Err(e.for_another_caller()));
                    }
                    return pending.buf;
                }
                pending.start = self.active.offset;
            }
            for r in &req.records {
                format::encode_record(&mut pending.buf, r.kind, &r.payload);
            }
            self.active.next_lsn += req.records.len() as u64;
            pending.records += req.records.len() as u64;
            pending.acks.push((req.reply, self.active.next_lsn - 1));
        }
        self.flush(pending).await.buf
    }

    /// Writes and syncs the pending buffer, then acknowledges it; a failure fails the log.
    async fn flush(&mut self, mut pending: Pending) -> Pending {
        if pending.acks.is_empty() {
            return pending;
        }
        let len = pending.buf.len() as u64;
        let (res, buf) = self.active.sink.write_all_at(std::mem::take(&mut pending.buf), pending.start).await;
        pending.buf = buf;
        let res = match res {
            Ok(()) => self.active.sink.sync_data().await.map_err(|e| ("fdatasync", e)),
            Err(e) => Err(("write", e)),
        };
        match res {
            Ok(()) => {
                self.active.offset = pending.start + len;
                self.shared.publish(self.active.base, self.active.offset, self.active.next_lsn - 1, pending.records, len);
                for (reply, lsn) in pending.acks.drain(..) {
                    let _ = reply.send(Ok(lsn));
                }
            }
            Err((op, e)) => {
                let reason = self.shared.fail(format!("{op} of {} failed: {e}", self.active.path.display()));
                for (reply, _) in pending.acks.drain(..) {
                    let _ = reply.send(Err(LogError::Failed { reason: reason.clone() }));
                }
            }
        }
        pending.buf.clear();
        pending.start = self.active.offset;
        pending.records = 0;
        pending
    }

    /// Seals the active segment and starts the next one at the next LSN.
    async fn roll(&mut self) -> Result<(), LogError> {
        let base = self.active.next_lsn;
        let (file, path) = create_segment(&*self.fs, &self.shared.dir, base, self.capacity)?;
        let sink = self.opener.open(file).map_err(LogError::io("open", &path))?;
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
