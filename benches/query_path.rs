//! The query path in-process (parse, plan, scan, encode; no HTTP): `bench query`'s
//! dashboard queries on 100,000 points of `bench ingest`'s workload, flushed into column
//! files. Each query's answer is checked non-empty once before it is timed.

use criterion::{criterion_group, criterion_main, Criterion};
use shardkeeper::bench::ingest::{generate_batches, IngestOptions};
use shardkeeper::benching::QueryHarness;

fn query_path(c: &mut Criterion) {
    let opts = IngestOptions {
        points: 100_000,
        ..IngestOptions::default()
    };
    let harness = QueryHarness::open(&opts.db, &generate_batches(&opts)).expect("a node");
    let mut group = c.benchmark_group("query_path");
    for (name, q) in QueryHarness::dashboard_queries() {
        let answer = harness.query(Some(&opts.db), &q).expect(name);
        assert!(
            answer.windows(8).any(|w| w == b"\"values\""),
            "{name}: no rows in {}",
            String::from_utf8_lossy(&answer)
        );
        group.bench_function(name, |b| {
            b.iter(|| harness.query(Some(&opts.db), &q).map(|a| a.len()))
        });
    }
    group.finish();
}

criterion_group!(benches, query_path);
criterion_main!(benches);
