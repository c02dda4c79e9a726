//! What a fail point costs where it sits (once per log commit, column file, merge, restore
//! and write request): unset, one relaxed load; once any fail point is set, a lookup.

use criterion::{criterion_group, criterion_main, Criterion};
use shardkeeper::failpoint;

fn failpoints(c: &mut Criterion) {
    let mut group = c.benchmark_group("failpoint");
    group.bench_function("unset", |b| {
        b.iter(|| failpoint::io_check(std::hint::black_box("log.fsync")).is_some())
    });
    // Another point set: this one is looked up and found off.
    failpoint::configure("merge.after_write=off").unwrap();
    group.bench_function("another_point_set", |b| {
        b.iter(|| failpoint::io_check(std::hint::black_box("log.fsync")).is_some())
    });
    group.finish();
}

criterion_group!(benches, failpoints);
criterion_main!(benches);
