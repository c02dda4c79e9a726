//! The write path's CPU stages on one `bench ingest` batch (5000 TSBS-like `cpu` lines):
//! parsing, encoding the data-log record (as written today: the lines as one zstd frame;
//! as written before: the lines uncompressed, or every parsed field), decompressing it
//! again (replay), and inserting into a shard head.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shardkeeper::bench::ingest::{generate_batches, IngestOptions};
use shardkeeper::line_protocol::{parse_body_with, ParseOptions, Precision};
use shardkeeper::storage::head::Head;
use shardkeeper::storage::points_codec::{
    compress_point_lines, decompress_point_lines, encode_point_lines, encode_points_written,
    LinesRecord,
};

fn write_path(c: &mut Criterion) {
    let opts = IngestOptions {
        points: 5000,
        ..IngestOptions::default()
    };
    let body = generate_batches(&opts).remove(0);
    let parse_opts = ParseOptions::influxdb_v16(Precision::Nanoseconds);
    let (mut points, errors) = parse_body_with(&body, &parse_opts);
    assert!(errors.is_empty() && points.len() == 5000);

    let mut group = c.benchmark_group("write_path");
    group.throughput(Throughput::Elements(points.len() as u64));
    group.bench_function("parse_5000_lines", |b| {
        b.iter(|| parse_body_with(&body, &parse_opts).0.len())
    });
    group.bench_function("encode_record_5000_points", |b| {
        b.iter(|| encode_points_written(1, &points).len())
    });
    group.bench_function("encode_lines_record_5000_points", |b| {
        b.iter(|| encode_point_lines(1, &points).len())
    });
    group.bench_function("compress_lines_record_5000_points", |b| {
        b.iter(|| compress_point_lines(1, &points).plain_len())
    });
    let LinesRecord::Compressed { frame, .. } = compress_point_lines(1, &points) else {
        panic!("a 5000-line batch is compressed");
    };
    group.bench_function("decompress_lines_record_5000_points", |b| {
        b.iter(|| decompress_point_lines(&frame).map(|plain| plain.len()))
    });
    group.bench_function("head_insert_5000_points", |b| {
        // Each iteration inserts into a head that already knows the series, as in steady state.
        let mut head = Head::default();
        let mut time = 0;
        b.iter(|| {
            time += 1;
            for p in &mut points {
                p.timestamp = Some(time);
            }
            head.insert_points(&points, 1);
            head.bytes()
        })
    });
    group.finish();
}

criterion_group!(benches, write_path);
criterion_main!(benches);
