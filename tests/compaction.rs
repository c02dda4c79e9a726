//! Heads written out as column files: answers do not change, memory and the data log stay
//! bounded, and restarts read the files plus only the log after them.

mod common;
use common::{query, request, Daemon};

/// A node on a fresh data directory with `config`, and database `c` created. The temp
/// directory is returned so that it lives as long as the test.
fn node_with_database(config: &str) -> (tempfile::TempDir, std::path::PathBuf, Daemon) {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let daemon = Daemon::start_with_config(&data, config);
    assert_eq!(query(daemon.addr, "", "CREATE DATABASE c").status, 200);
    (root, data, daemon)
}

fn shard_dirs(data: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(data.join("shards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

fn count_files(dir: &std::path::Path, ext: &str) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == ext)
        })
        .count()
    })
}

#[test]
fn flushed_heads_answer_the_same_and_survive_restart() {
    let config = "max_head_mib = 1\n[log]\nshard_segment_mib = 1\n";
    let (_root, data, daemon) = node_with_database(config);
    // 200 series x 300 times, types of every kind, in batches.
    for t in 0..300u64 {
        let body: String = (0..200)
            .map(|h| {
                format!(
                    "m,host=h{h} f={}.5,i={}i,s=\"v{t}\",b={} {}\n",
                    t + h,
                    t * h,
                    t % 2 == 0,
                    (t + 1) * 1_000_000_000
                )
            })
            .collect();
        assert_eq!(
            request(daemon.addr, "POST", "/write?db=c", &[], body.as_bytes()).status,
            204
        );
    }
    // Overwrite some points after they were flushed: the newer write wins.
    let body: String = (0..200)
        .map(|h| format!("m,host=h{h} f=-1 1000000000\n"))
        .collect();
    assert_eq!(
        request(daemon.addr, "POST", "/write?db=c", &[], body.as_bytes()).status,
        204
    );

    let shard = &shard_dirs(&data)[0];
    assert!(
        count_files(shard, "col") >= 2,
        "heads were written out as column files"
    );
    let q = "SELECT * FROM m WHERE host = 'h7' OR host = 'h150'";
    let before = query(daemon.addr, "c", q).json();
    let rows = before["results"][0]["series"][0]["values"]
        .as_array()
        .unwrap();
    assert_eq!(rows.len(), 600);
    // Rows of equal time come in series-key order ("h150" sorts before "h7").
    assert_eq!(
        rows[0],
        serde_json::json!(["1970-01-01T00:00:01Z", true, -1, "h150", 0, "v0"])
    );
    assert_eq!(
        rows[599],
        serde_json::json!(["1970-01-01T00:05:00Z", false, 306.5, "h7", 2093, "v299"])
    );
    let counts = query(daemon.addr, "c", "SELECT f FROM m").json();
    assert_eq!(
        counts["results"][0]["series"][0]["values"]
            .as_array()
            .unwrap()
            .len(),
        60_000
    );
    assert!(daemon.stop().success());

    // The log keeps only what no column file covers.
    let segments = count_files(&shard.join("log"), "seg");
    assert!(
        segments <= 3,
        "covered segments were removed ({segments} left)"
    );
    let daemon = Daemon::start_with_config(&data, config);
    assert_eq!(query(daemon.addr, "c", q).json(), before);
    daemon.kill9();
    let daemon = Daemon::start_with_config(&data, config);
    assert_eq!(
        query(daemon.addr, "c", q).json(),
        before,
        "after kill -9 too"
    );
    daemon.stop();
}

#[test]
fn many_flushes_are_merged_into_few_files_without_losing_points() {
    let config = "max_head_mib = 1\n[log]\nshard_segment_mib = 1\n";
    let (_root, data, daemon) = node_with_database(config);
    for t in 0..1000u64 {
        let body: String = (0..200)
            .map(|h| format!("m,host=h{h} f={t}.25,g={h}i {}\n", (t + 1) * 1_000_000_000))
            .collect();
        assert_eq!(
            request(daemon.addr, "POST", "/write?db=c", &[], body.as_bytes()).status,
            204
        );
    }
    let shard = &shard_dirs(&data)[0];
    // Merges run on their own thread: one may still be under way when the last write is
    // acknowledged.
    let mut files = count_files(shard, "col");
    for _ in 0..200 {
        if files < 8 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        files = count_files(shard, "col");
    }
    assert!(
        (1..8).contains(&files),
        "column files are merged ({files} files)"
    );
    let check = |addr| {
        let r = query(addr, "c", "SELECT f, g FROM m WHERE host = 'h42'").json();
        let rows = r["results"][0]["series"][0]["values"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(rows.len(), 1000, "every point once");
        assert_eq!(
            rows[999],
            serde_json::json!(["1970-01-01T00:16:40Z", 999.25, 42])
        );
    };
    check(daemon.addr);
    daemon.kill9();
    let daemon = Daemon::start_with_config(&data, config);
    check(daemon.addr);
    daemon.stop();
}

#[test]
fn an_idle_shard_is_written_out_so_a_crash_has_little_to_replay() {
    let config = "idle_flush_seconds = 1\n";
    let (_root, data, daemon) = node_with_database(config);
    let body: String = (0..500)
        .map(|i| format!("m,host=h{} v={i} {}\n", i % 5, (i + 1) * 1_000_000_000))
        .collect();
    assert_eq!(
        request(daemon.addr, "POST", "/write?db=c", &[], body.as_bytes()).status,
        204
    );
    let shard = &shard_dirs(&data)[0];
    // The flush happens in the background once the shard has been idle: wait for it, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while count_files(shard, "col") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the idle shard was not flushed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    daemon.kill9();
    let daemon = Daemon::start_with_config(&data, config);
    let r = query(daemon.addr, "c", "SELECT count(v) FROM m").json();
    assert_eq!(r["results"][0]["series"][0]["values"][0][1], 500);
    daemon.stop();
}
