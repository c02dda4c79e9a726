//! `/query`'s JSON encoder on a 10,000-row answer (a time, a float, an integer, a tag
//! value and a string field per row): serde_json's own formatter against the one that
//! escapes as 1.x's Go encoder does (`src/query/json.rs`), to show what the escaping costs.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shardkeeper::benching::query_json_sample;

const ROWS: usize = 10_000;

fn query_json(c: &mut Criterion) {
    let mut group = c.benchmark_group("query_json");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("serde_json_10000_rows", |b| {
        b.iter(|| query_json_sample(ROWS, false))
    });
    group.bench_function("go_escaping_10000_rows", |b| {
        b.iter(|| query_json_sample(ROWS, true))
    });
    group.finish();
}

criterion_group!(benches, query_json);
criterion_main!(benches);
