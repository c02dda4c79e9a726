//! Replays every fuzz corpus under `fuzz/corpus/` through the fuzz entry points, so stable
//! `cargo test` covers what the fuzzers found; plus random inputs through the same code.

use proptest::prelude::*;
use std::path::Path;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

#[test]
fn log_segment_corpus_never_panics() {
    let inputs = corpus("log_segment");
    assert!(inputs.len() >= 8, "the corpus has seeds");
    for (_name, data) in inputs {
        shardkeeper::fuzzing::log_segment(&data);
    }
}

#[test]
fn line_protocol_corpus_never_panics() {
    let inputs = corpus("line_protocol");
    assert!(inputs.len() >= 20, "the corpus has seeds");
    for (_name, data) in inputs {
        shardkeeper::fuzzing::line_protocol(&data);
    }
}

#[test]
fn influxql_corpus_never_panics() {
    let inputs = corpus("influxql");
    assert!(inputs.len() >= 40, "the corpus has seeds");
    for (_name, data) in inputs {
        shardkeeper::fuzzing::influxql(&data);
    }
}

#[test]
fn shard_archive_corpus_never_panics() {
    let inputs = corpus("shard_archive");
    assert!(inputs.len() >= 12, "the corpus has seeds");
    for (_name, data) in inputs {
        shardkeeper::fuzzing::shard_archive(&data);
    }
}

#[test]
fn entropy_wire_corpus_never_panics() {
    let inputs = corpus("entropy_wire");
    assert!(inputs.len() >= 5, "the corpus has seeds");
    for (_name, data) in inputs {
        shardkeeper::fuzzing::entropy_wire(&data);
    }
}

/// The corpus holds a valid message of each kind (regenerated from
/// `shardkeeper::fuzzing::entropy_wire_samples` when the format changes).
#[test]
fn the_entropy_wire_seeds_are_the_current_format() {
    for (name, bytes) in shardkeeper::fuzzing::entropy_wire_samples() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus/entropy_wire")
            .join(name);
        if std::env::var("SHARDKEEPER_WRITE_SEEDS").is_ok() {
            std::fs::write(&path, &bytes).unwrap();
        }
        let seed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(seed, bytes, "{name}: rerun with SHARDKEEPER_WRITE_SEEDS=1");
    }
}

#[test]
fn the_valid_shard_archive_seeds_unpack_and_the_damaged_ones_are_refused() {
    for (name, data) in corpus("shard_archive") {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join("staging");
        let result = shardkeeper::backup::archive::unpack_shard_archive(
            &shardkeeper::log::fs::RealFs,
            data.as_slice(),
            &staging,
            u64::MAX,
        );
        let valid = name.ends_with("valid-tar") || name.ends_with("valid-gzip");
        assert_eq!(result.is_ok(), valid, "{name}: {result:?}");
    }
}

#[test]
fn proxy_config_corpus_never_panics() {
    let inputs = corpus("proxy_config");
    assert!(inputs.len() >= 12, "the corpus has seeds");
    for (_name, data) in inputs {
        shardkeeper::fuzzing::proxy_config(&data);
    }
}

#[test]
fn the_shipped_proxy_json_seed_is_a_valid_config() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/proxy_config/01_shipped.json");
    let config = shardkeeper::proxy::config::ProxyConfig::load(&path).unwrap();
    assert_eq!(config.circles.len(), 2);
}

#[test]
fn proxy_lines_corpus_never_panics() {
    let inputs = corpus("proxy_lines");
    assert!(inputs.len() >= 12, "the corpus has seeds");
    for (_name, data) in inputs {
        shardkeeper::fuzzing::proxy_lines(&data);
    }
}

#[test]
fn proxy_migration_answer_corpus_never_panics() {
    let inputs = corpus("proxy_migration_answer");
    assert!(inputs.len() >= 12, "the corpus has seeds");
    for (_name, data) in inputs {
        shardkeeper::fuzzing::proxy_migration_answer(&data);
    }
}

#[test]
fn proxy_influxql_corpus_never_panics() {
    let inputs = corpus("proxy_influxql");
    assert!(inputs.len() >= 20, "the corpus has seeds");
    for (_name, data) in inputs {
        shardkeeper::fuzzing::proxy_influxql(&data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn arbitrary_bytes_as_a_segment_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..4096),
        with_valid_header in any::<bool>(),
    ) {
        // Half the inputs get past the header check, so the record decoder sees them.
        let mut segment = if with_valid_header {
            shardkeeper::log::format::encode_segment_header(1).to_vec()
        } else {
            Vec::new()
        };
        segment.extend_from_slice(&data);
        shardkeeper::fuzzing::log_segment(&segment);
    }

    #[test]
    fn arbitrary_bodies_through_the_line_protocol_parser_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        shardkeeper::fuzzing::line_protocol(&data);
    }

    #[test]
    fn damaged_shard_archives_never_panic(at in 0usize..3072, bit in 0u8..8, cut in any::<bool>()) {
        let valid = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/shard_archive/valid-tar")).unwrap();
        let mut data = valid.clone();
        let at = at % data.len();
        if cut { data.truncate(at) } else { data[at] ^= 1 << bit }
        shardkeeper::fuzzing::shard_archive(&data);
    }

    #[test]
    fn arbitrary_bytes_as_a_proxy_config_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        shardkeeper::fuzzing::proxy_config(&data);
    }

    #[test]
    fn arbitrary_json_shaped_proxy_configs_never_panic(
        text in "\\{(\"(circles|name|backends|url|hash_key|vnode_size|listen_addr)\": ?(\\[|\\{|\"[a-z:/0-9]{0,8}\"|-?[0-9]{1,12}|true|null)[\\]\\}]{0,2},? ?){0,12}\\}"
    ) {
        shardkeeper::fuzzing::proxy_config(text.as_bytes());
    }

    #[test]
    fn arbitrary_write_bodies_split_by_measurement_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        shardkeeper::fuzzing::proxy_lines(&data);
    }

    #[test]
    fn line_protocol_shaped_bodies_split_by_measurement_never_panic(
        text in "([a-z\\\\, =\"]{1,12}( [a-z]=[0-9.]{1,4}[iu]?)?( [0-9]{1,19})?\r?\n){0,20}"
    ) {
        shardkeeper::fuzzing::proxy_lines(text.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_as_a_migrations_query_answer_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        shardkeeper::fuzzing::proxy_migration_answer(&data);
    }

    #[test]
    fn query_answer_shaped_json_read_by_a_migration_never_panics(
        columns in proptest::collection::vec("(time|c[0-4]|[a-z ,=\\\\\"]{0,4})", 0..5),
        rows in proptest::collection::vec(
            proptest::collection::vec("(null|true|false|-?[0-9]{1,20}(\\.[0-9]{1,3})?(e[0-9]{1,3})?|\"[a-z \\\\\"]{0,5}\"|\\[\\]|\\{\\})", 0..6),
            0..6,
        ),
        tags in proptest::collection::btree_map("[a-z ,=]{0,3}", "[a-z ,=]{0,3}", 0..3),
        types in proptest::collection::vec("(float|integer|unsigned|string|boolean|[a-z]{0,3})", 0..5),
    ) {
        let columns = serde_json::to_string(&columns).unwrap();
        let rows: Vec<String> = rows.iter().map(|r| format!("[{}]", r.join(","))).collect();
        let keys: Vec<String> = types
            .iter()
            .enumerate()
            .map(|(i, t)| format!("[{:?},{:?}]", format!("c{i}"), t))
            .collect();
        let answer = format!(
            r#"{{"results":[{{"series":[{{"name":"m","tags":{},"columns":{columns},"values":[{}]}},{{"columns":["fieldKey","fieldType"],"values":[{}]}}]}}]}}"#,
            serde_json::to_string(&tags).unwrap(),
            rows.join(","),
            keys.join(","),
        );
        shardkeeper::fuzzing::proxy_migration_answer(answer.as_bytes());
    }

    #[test]
    fn arbitrary_queries_through_the_proxys_whitelist_never_panic(text in "\\PC{0,300}") {
        shardkeeper::fuzzing::proxy_influxql(text.as_bytes());
    }

    #[test]
    fn influxql_shaped_queries_through_the_proxys_whitelist_never_panic(
        text in "((select|show|from|into|drop|delete|create|database|measurement|series|on|[a-z]{1,4}|\"[a-z.]{0,4}\"?|'[a-z]{0,3}'?|\\.{1,3}|[(){}\\[\\];/\\\\]) ?){0,16}"
    ) {
        shardkeeper::fuzzing::proxy_influxql(text.as_bytes());
    }

    #[test]
    fn arbitrary_text_through_the_influxql_parser_never_panics(text in "\\PC{0,300}") {
        shardkeeper::fuzzing::influxql(text.as_bytes());
    }
}
