use super::merge::alone;
use super::record::POINT_LINES_ZSTD_RECORD;
use super::*;
use crate::line_protocol::FieldValue;
use crate::log::Record;
use crate::proto::Tombstone;
use crate::storage::StorageError;
use std::path::Path;

use crate::line_protocol::parse_body;
use crate::log::fs::RealFs;
use crate::log::{Log, LogOptions};
use crate::storage::points_codec::{encode_point_lines, encode_points_written};

fn values(shard: &Shard, field: &str) -> FieldEntries {
    shard.points_for_test("cpu", field)
}

/// A field's (series key, time, value) entries, as read.
type FieldEntries = Vec<(String, i64, FieldValue)>;

/// Every series' every field, as read.
fn all_values(shard: &Shard) -> Vec<(String, FieldEntries)> {
    let mut fields: Vec<String> = shard.field_types("cpu").into_keys().collect();
    fields.sort();
    fields
        .into_iter()
        .map(|f| {
            let v = values(shard, &f);
            (f, v)
        })
        .collect()
}

fn data_log(dir: &Path) -> Arc<DataLog> {
    Shard::test_data_log(dir)
}

fn open(dir: &Path, info: ShardInfo) -> Result<Shard, StorageError> {
    Shard::open_for_test(dir, info)
}

/// Writes `records` as the shard's own log (the layout of earlier versions).
fn own_log(dir: &Path, records: Vec<Record>) {
    let (log, _) = Log::open(dir.join(OWN_LOG_DIR), LogOptions::default()).unwrap();
    log.append_blocking(records).unwrap();
}

/// A shard whose own log (an earlier layout) holds `records`, opened: they move into a
/// column file.
fn replayed(dir: &Path, records: Vec<Record>) -> Shard {
    let info = ShardInfo::of_group("db", "autogen", 0, i64::MAX / 2);
    own_log(dir, records);
    let shard = open(dir, info).unwrap();
    assert!(
        !dir.join(OWN_LOG_DIR).exists(),
        "the shard's own log is gone"
    );
    shard
}

/// The records writes log today, zstd frames of the lines, replay into exactly the head
/// that the same lines logged uncompressed (as earlier versions did) replay into.
#[test]
fn compressed_lines_records_replay_exactly() {
    use crate::bench::ingest::{generate_batches, IngestOptions};
    use crate::storage::points_codec::{compress_point_lines, LinesRecord};
    let opts = IngestOptions {
        points: 12_000,
        ..IngestOptions::default()
    };
    let bodies = generate_batches(&opts);
    let (mut plain, mut compressed) = (Vec::new(), Vec::new());
    for (i, body) in bodies.iter().enumerate() {
        let (points, errors) = parse_body(body);
        assert!(errors.is_empty());
        let version = 100 + i as u64;
        plain.push(Record::new(
            POINT_LINES_RECORD,
            encode_point_lines(version, &points),
        ));
        let LinesRecord::Compressed { frame, .. } = compress_point_lines(version, &points) else {
            panic!("a batch of {} lines is compressed", points.len());
        };
        compressed.push(Record::new(POINT_LINES_ZSTD_RECORD, frame));
    }
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let from_plain = replayed(a.path(), plain);
    let from_compressed = replayed(b.path(), compressed);
    assert_eq!(from_compressed.max_version(), 102);
    let expected = all_values(&from_plain);
    assert_eq!(expected.len(), 10);
    assert_eq!(expected[0].1.len(), 12_000);
    assert_eq!(all_values(&from_compressed), expected);
    assert_eq!(
        from_compressed.series_list(&|_| true),
        from_plain.series_list(&|_| true)
    );
}

/// A flush or merge that panics (a bug) leaves the next one free to run.
#[test]
fn a_panicking_run_does_not_keep_the_next_from_running() {
    let busy = AtomicBool::new(false);
    let panicked = std::panic::catch_unwind(|| alone(&busy, || panic!("a bug in a flush")));
    assert!(panicked.is_err());
    let mut ran = false;
    alone(&busy, || {
        ran = true;
        Ok(())
    })
    .unwrap();
    assert!(ran, "the run after a panic ran");
    // While one runs, another does nothing.
    alone(&busy, || {
        let mut nested = false;
        alone(&busy, || {
            nested = true;
            Ok(())
        })?;
        assert!(!nested);
        Ok(())
    })
    .unwrap();
}

/// A compressed record that does not decompress stops the shard's start-up with its LSN
/// (its checksum held, so it is not a torn tail but corruption).
#[test]
fn a_compressed_record_that_does_not_decompress_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let info = ShardInfo::of_group("db", "autogen", 0, i64::MAX / 2);
    own_log(
        dir.path(),
        vec![Record::new(POINT_LINES_ZSTD_RECORD, vec![1, 2, 3])],
    );
    match open(dir.path(), info) {
        Err(StorageError::CorruptRecord { lsn: 1, .. }) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a record that does not decompress was replayed"),
    }
}

/// Data directories written before lines were logged hold `PointsWritten` records:
/// both kinds replay, and a logged line's "time" field is ignored as when it was written.
#[test]
fn both_record_kinds_replay_into_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let info = ShardInfo::of_group("db", "autogen", 0, i64::MAX / 2);
    let (old, _) = parse_body(b"cpu,host=a usage=1 10\ncpu,host=a usage=2 20");
    let (mut new, _) = parse_body(b"cpu,host=b usage=3,time=1 30\ncpu,host=a usage=4 20");
    for p in &mut new {
        p.fields.retain(|(k, _)| k != "time");
    }
    own_log(
        dir.path(),
        vec![
            Record::new(POINTS_RECORD, encode_points_written(7, &old)),
            Record::new(POINT_LINES_RECORD, encode_point_lines(8, &new)),
        ],
    );
    let shard = open(dir.path(), info.clone()).unwrap();
    assert_eq!(shard.max_version(), 8);
    let key = |s: &str| s.to_owned();
    assert_eq!(
        values(&shard, "usage"),
        vec![
            (key("cpu,host=a"), 10, FieldValue::Float(1.0)),
            (key("cpu,host=a"), 20, FieldValue::Float(4.0)),
            (key("cpu,host=b"), 30, FieldValue::Float(3.0)),
        ]
    );
    assert!(values(&shard, "time").is_empty());
}

/// A request whose client goes away drops its write at any await: every record the
/// log made durable is applied all the same (the watermark reaches the log's end, so
/// flushes go on), and the head holds what a restart replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_dropped_at_any_await_is_applied_once_durable() {
    use std::future::Future;
    use std::task::{Context, Poll};
    let dir = tempfile::tempdir().unwrap();
    let info = ShardInfo::of_group("db", "autogen", 0, i64::MAX / 2);
    let shard = Arc::new(open(dir.path(), info.clone()).unwrap());
    let waker = futures_util::task::noop_waker();
    let mut abandoned = 0;
    for polls in 0..8u64 {
        let line = format!("cpu,host=h{polls} usage={polls} {polls}");
        let (points, _) = parse_body(line.as_bytes());
        let points = shard.admit(points, usize::MAX).points;
        let before = shard.log.log().durable_lsn();
        let mut write = Box::pin(shard.write(&points, 10 + polls));
        let mut finished = false;
        for _ in 0..polls {
            if let Poll::Ready(r) = write.as_mut().poll(&mut Context::from_waker(&waker)) {
                r.unwrap();
                finished = true;
                break;
            }
        }
        drop(write);
        let tombstone = Tombstone {
            version: 100 + polls,
            measurement: "none".into(),
            series_keys: Vec::new(),
            min_time: 0,
            max_time: 0,
            drop_schema: false,
        };
        let mut delete = Box::pin(shard.delete(vec![tombstone]));
        for _ in 0..polls {
            if delete
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
            {
                break;
            }
        }
        drop(delete);
        // An awaited write after them: its LSN is the log's end once it returns.
        let last_line = format!("cpu,host=last usage={polls} {polls}");
        let (last, _) = parse_body(last_line.as_bytes());
        let last = shard.admit(last, usize::MAX).points;
        shard.write(&last, 200 + polls).await.unwrap();
        let end = shard.log.log().durable_lsn();
        if !finished && end > before + 2 {
            abandoned += 1;
        }
        let taken = shard.next_seq.load(Ordering::Acquire) - 1;
        let applied = (0..10_000).any(|_| {
            let upto = shard.data.read().unwrap().watermark.upto;
            upto == taken || {
                std::thread::sleep(std::time::Duration::from_millis(1));
                false
            }
        });
        assert!(
            applied,
            "dropped after {polls} polls: the watermark stays below {taken}"
        );
    }
    assert!(abandoned > 0, "no write was dropped after it was queued");
    let live = all_values(&shard);
    // 8 awaited writes, and 7 dropped ones: the one dropped before its first poll
    // queued nothing.
    assert_eq!(live[0].1.len(), 15, "every queued write is visible");
    let released = (0..10_000).any(|_| {
        Arc::strong_count(&shard) == 1 || {
            std::thread::sleep(std::time::Duration::from_millis(1));
            false
        }
    });
    assert!(released, "a thread still holds the shard");
    drop(shard);
    let log = data_log(dir.path());
    let reopened =
        Arc::new(Shard::open_on(Arc::new(RealFs), dir.path(), info, log.clone(), 1 << 30).unwrap());
    replay_log(&log, |_| Some(reopened.clone()), |_, e| panic!("{e}")).unwrap();
    reopened.settle_replay();
    assert_eq!(all_values(&reopened), live);
}
