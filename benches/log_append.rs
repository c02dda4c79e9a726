//! Append throughput and latency: 1, 16 and 256 concurrent appenders, records of 128 B,
//! 1 KiB and 16 KiB, each append durable (fdatasync) before it returns.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shardkeeper::log::{Log, LogOptions, Record};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn append(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("log_append");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for appenders in [1usize, 16, 256] {
        for size in [128usize, 1024, 16 * 1024] {
            let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
            let (log, _) = Log::open(dir.path(), LogOptions::default()).unwrap();
            let log = Arc::new(log);
            let record = Record::new(1, vec![0x42u8; size]);
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("{appenders}_appenders"), size),
                &size,
                |b, _| {
                    // One iteration = one durable record; `iters` records are split across the
                    // appenders, so the figure is time per record at that concurrency.
                    b.iter_custom(|iters| {
                        rt.block_on(async {
                            let per_task = iters.div_ceil(appenders as u64);
                            let start = Instant::now();
                            let tasks: Vec<_> = (0..appenders)
                                .map(|_| {
                                    let (log, record) = (log.clone(), record.clone());
                                    tokio::spawn(async move {
                                        for _ in 0..per_task {
                                            log.append(vec![record.clone()]).await.unwrap();
                                        }
                                    })
                                })
                                .collect();
                            for t in tasks {
                                t.await.unwrap();
                            }
                            start.elapsed()
                        })
                    });
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
