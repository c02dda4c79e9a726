//! Replay: reading a log back from its first record, verifying every checksum.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shardkeeper::log::{Log, LogOptions, Record};
use std::time::Duration;

fn replay(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (log, _) = Log::open(dir.path(), LogOptions::default()).unwrap();
    // 100k records of 1 KiB, appended in batches so that setup stays quick.
    for _ in 0..100 {
        log.append_blocking(
            (0..1000)
                .map(|i| Record::new(1, vec![i as u8; 1024]))
                .collect(),
        )
        .unwrap();
    }
    let bytes = log.figures().bytes;
    let mut group = c.benchmark_group("log_replay");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(bytes));
    group.bench_function("100k_x_1KiB", |b| {
        b.iter(|| {
            let mut reader = log.reader(1).unwrap();
            let mut n = 0u64;
            while let Some(r) = reader.next().unwrap() {
                n += r.payload.len() as u64;
            }
            n
        })
    });
    group.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
