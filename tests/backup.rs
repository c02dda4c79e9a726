//! Backups and restores against the real binary: round trips through `ctl` and through
//! plain HTTP give identical answers, incremental backups restore on top of full ones,
//! bad archives change nothing, and a backup under write load holds every point
//! acknowledged before it began.

mod common;
use common::{backup_status, ok, query, request, tree, urlencode, Daemon, TempNode};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Small heads and segments, so shards have column files and several segments.
const CONFIG: &str = "max_head_mib = 1\n[log]\nshard_segment_mib = 1\n";

fn node() -> TempNode {
    TempNode::start(CONFIG)
}

fn write(addr: SocketAddr, db: &str, rp: &str, body: &str) {
    ok(request(
        addr,
        "POST",
        &format!("/write?db={db}&rp={rp}"),
        &[],
        body.as_bytes(),
    ));
}

const DAY: u64 = 86_400_000_000_000;
const BASE: u64 = 1_700_000_000_000_000_000;

/// Two databases, a second retention policy, every field type, several shard groups,
/// overwrites; `round` varies values and adds points.
fn load(addr: SocketAddr, round: u64) {
    if round == 0 {
        ok(query(addr, "", "CREATE DATABASE a"));
        ok(query(addr, "", "CREATE DATABASE b"));
        ok(query(
            addr,
            "",
            "CREATE RETENTION POLICY week ON a DURATION 10000d REPLICATION 1 SHARD DURATION 1d",
        ));
    }
    for batch in 0..60u64 {
        let body: String = (0..200u64)
            .map(|h| {
                let t = BASE + (round * 60 + batch) * 1_000_000_000 + h;
                format!(
                    "m,host=h{h} f={}.25,i={}i,u={}u,s=\"r{round}b{batch}\",b={} {t}\n",
                    batch + h,
                    batch * h,
                    h,
                    batch % 2 == 0
                )
            })
            .collect();
        write(addr, "a", "autogen", &body);
    }
    for day in 0..3u64 {
        let t = BASE + day * DAY + round;
        write(
            addr,
            "a",
            "week",
            &format!("w,k=x v={round}i,s=\"d{day}\" {t}\nw,k=y x=-1.5 {t}\n"),
        );
        write(
            addr,
            "b",
            "autogen",
            &format!("n,z=1 on=true,c={day}u {t}\n"),
        );
    }
    // Overwrite a point written earlier: the newer value must win after a restore too.
    write(
        addr,
        "a",
        "autogen",
        &format!("m,host=h1 f=-{round}.5,s=\"over{round}\" {}\n", BASE + 1),
    );
}

/// The answers a restore must reproduce.
fn answers(addr: SocketAddr) -> Vec<serde_json::Value> {
    common::answers_to(
        addr,
        &[
            (
                "a",
                "SELECT * FROM a.autogen.m WHERE host = 'h1' OR host = 'h199'",
            ),
            ("a", "SELECT count(*) FROM a.autogen.m"),
            (
                "a",
                "SELECT sum(i), max(f), min(u) FROM a.autogen.m GROUP BY host",
            ),
            ("a", "SELECT * FROM a.week.w"),
            ("b", "SELECT * FROM b.autogen.n"),
            ("", "SHOW SHARDS"),
            ("", "SHOW DATABASES"),
            ("a", "SHOW RETENTION POLICIES ON a"),
        ],
    )
}

/// Deletes of every kind, in both databases and both policies of `a`; `round` 1 deletes
/// some of what round 1 of [`load`] wrote (a DROP SERIES of round 0 is followed by new
/// points of that series in round 1, which must survive it).
fn delete(addr: SocketAddr, round: u64) {
    let at = |s: u64| BASE + s * 1_000_000_000;
    let statements = match round {
        0 => vec![
            (
                "a",
                format!("DELETE FROM m WHERE host = 'h3' AND time < {}", at(30)),
            ),
            ("a", "DROP SERIES FROM m WHERE host = 'h4'".to_owned()),
            ("a", "DELETE FROM w WHERE k = 'y'".to_owned()),
            ("b", "DROP MEASUREMENT n".to_owned()),
            ("b", "DROP MEASUREMENT gone".to_owned()),
        ],
        _ => vec![
            (
                "a",
                format!(
                    "DELETE FROM /^m$/ WHERE host =~ /^h5$/ AND time >= {}",
                    at(70)
                ),
            ),
            ("a", format!("DELETE WHERE time >= {}", BASE + 2 * DAY)),
        ],
    };
    if round == 0 {
        write(addr, "b", "autogen", &format!("gone,z=1 v=1i {BASE}\n"));
    }
    for (db, q) in statements {
        let r = ok(query(addr, db, &q)).json();
        assert!(r["results"][0]["error"].is_null(), "{q}: {r}");
    }
    if round == 0 {
        // A dropped measurement's fields may take new types.
        write(
            addr,
            "b",
            "autogen",
            &format!("gone,z=2 v=\"text\" {BASE}\n"),
        );
    }
}

/// What the deletes left, data and index.
fn deleted_answers(addr: SocketAddr) -> Vec<serde_json::Value> {
    common::answers_to(
        addr,
        &[
            (
                "a",
                "SELECT count(f), count(s) FROM a.autogen.m WHERE host =~ /^h[345]$/ GROUP BY host",
            ),
            ("a", "SELECT count(*) FROM a.week.w"),
            ("b", "SELECT * FROM n"),
            ("b", "SELECT * FROM gone"),
            ("a", "SHOW SERIES"),
            ("b", "SHOW SERIES"),
            ("a", "SHOW MEASUREMENTS"),
            ("a", "SHOW TAG VALUES WITH KEY = k"),
            ("b", "SHOW FIELD KEYS"),
        ],
    )
}

use common::ctl;

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// A shard's backup as the node streams it (gzip-compressed when asked).
fn shard_archive(addr: SocketAddr, id: u64, gzip: bool) -> Vec<u8> {
    let headers: &[(&str, &str)] = match gzip {
        true => &[("Accept-Encoding", "gzip")],
        false => &[],
    };
    ok(request(
        addr,
        "GET",
        &format!("/api/v2/backup/shards/{id}"),
        headers,
        b"",
    ))
    .body
}

fn shard_ids(addr: SocketAddr) -> Vec<u64> {
    let shards = ok(query(addr, "", "SHOW SHARDS")).json();
    let mut ids = Vec::new();
    for series in shards["results"][0]["series"].as_array().unwrap() {
        for row in series["values"].as_array().unwrap() {
            ids.push(row[0].as_u64().unwrap());
        }
    }
    ids
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// (shard file, entry) of every file in the archives of a `ctl backup` directory.
fn archive_files(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.ends_with(".tar.gz") {
            continue;
        }
        let tar = gunzip(&std::fs::read(&path).unwrap());
        for entry in tar::Archive::new(tar.as_slice()).entries().unwrap() {
            let entry = entry.unwrap();
            found.push((name.clone(), entry.path().unwrap().display().to_string()));
        }
    }
    found
}

fn now_rfc3339() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.%NZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn full_and_incremental_backups_restore_to_identical_answers() {
    let src = node();
    load(src.daemon.addr, 0);
    delete(src.daemon.addr, 0);
    let first = answers(src.daemon.addr);
    let first_deleted = deleted_answers(src.daemon.addr);
    // The deletes took something: h3 lost 30 points, h4 and n every one.
    assert_eq!(
        first_deleted[0]["results"][0]["series"][0]["values"][0][1],
        30
    );
    assert_eq!(
        first_deleted[0]["results"][0]["series"][1]["tags"]["host"],
        "h5"
    );
    assert!(first_deleted[2]["results"][0]["series"].is_null());
    assert_eq!(
        first_deleted[3]["results"][0]["series"][0]["values"],
        serde_json::json!([["2023-11-14T22:13:20Z", "text", "2"]])
    );
    let dirs = tempfile::tempdir().unwrap();
    let full = dirs.path().join("full");
    ctl(&[
        "backup",
        "--url",
        &url(src.daemon.addr),
        full.to_str().unwrap(),
    ]);

    // The same shards fetched as an operator's curl would.
    let mut curl_archives = Vec::new();
    for id in shard_ids(src.daemon.addr) {
        let r = ok(request(
            src.daemon.addr,
            "GET",
            &format!("/api/v2/backup/shards/{id}"),
            &[("Accept-Encoding", "gzip")],
            b"",
        ));
        assert_eq!(r.header("Content-Encoding"), Some("gzip"));
        let tar = gunzip(&r.body);
        let names: Vec<String> = tar::Archive::new(tar.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names.last().map(String::as_str), Some("manifest.json"));
        // Column files only: the head is written out before the backup streams.
        assert!(names.iter().all(|n| !n.starts_with("log/")), "{names:?}");
        curl_archives.push((id, r.body));
    }
    let has_column_files = std::fs::read_dir(src.data.join("shards"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .any(|f| f.unwrap().path().extension().is_some_and(|e| e == "col"));
    assert!(
        has_column_files,
        "the load made column files, so they are backed up too"
    );

    let since = now_rfc3339();
    load(src.daemon.addr, 1);
    delete(src.daemon.addr, 1);
    let second = answers(src.daemon.addr);
    let second_deleted = deleted_answers(src.daemon.addr);
    assert_ne!(first, second);
    assert_ne!(first_deleted, second_deleted);
    let incremental = dirs.path().join("incremental");
    ctl(&[
        "backup",
        "--url",
        &url(src.daemon.addr),
        "--since",
        &since,
        incremental.to_str().unwrap(),
    ]);
    let left_out = archive_files(&full)
        .iter()
        .filter(|f| !archive_files(&incremental).contains(f))
        .count();
    assert!(
        left_out > 0,
        "files unchanged since the full backup are left out"
    );

    // Full restore into a fresh node, then the incremental on top.
    let dst = node();
    ctl(&[
        "restore",
        "--url",
        &url(dst.daemon.addr),
        full.to_str().unwrap(),
    ]);
    assert_eq!(answers(dst.daemon.addr), first);
    assert_eq!(deleted_answers(dst.daemon.addr), first_deleted);
    ctl(&[
        "restore",
        "--url",
        &url(dst.daemon.addr),
        incremental.to_str().unwrap(),
    ]);
    assert_eq!(answers(dst.daemon.addr), second);
    assert_eq!(deleted_answers(dst.daemon.addr), second_deleted);
    // The restored shards are real shards: they take writes and survive a restart.
    let TempNode {
        root: _root,
        data,
        daemon,
    } = dst;
    assert!(daemon.stop().success());
    let daemon = Daemon::start_with_config(&data, CONFIG);
    assert_eq!(answers(daemon.addr), second);
    assert_eq!(deleted_answers(daemon.addr), second_deleted);

    // The curl archives, with the kv snapshot, restore to the first answers.
    let other = node();
    let kv = std::fs::read(full.join("kv")).unwrap();
    let restored = ok(request(
        other.daemon.addr,
        "POST",
        "/api/v2/restore/kv",
        &[],
        &kv,
    ));
    assert_eq!(
        restored.json(),
        serde_json::json!({}),
        "no operator (no admin user and organization): no token"
    );
    for (id, archive) in &curl_archives {
        ok(request(
            other.daemon.addr,
            "POST",
            &format!("/api/v2/restore/shards/{id}"),
            &[],
            archive,
        ));
    }
    assert_eq!(answers(other.daemon.addr), first);
    assert_eq!(deleted_answers(other.daemon.addr), first_deleted);

    // The source lists its last good backup per shard, in the API and in ctl.
    let status = backup_status(src.daemon.addr);
    for shard in status["shards"].as_array().unwrap() {
        assert_eq!(shard["lastGoodBackup"]["status"], "success", "{shard}");
    }
    let lines = ctl(&["backup-status", "--url", &url(src.daemon.addr)]);
    assert!(lines.contains("last good backup"), "{lines}");
    assert!(!lines.contains("never"), "{lines}");
}

#[test]
fn one_bucket_restores_under_a_new_name_with_new_shard_ids() {
    let src = node();
    load(src.daemon.addr, 0);
    let dirs = tempfile::tempdir().unwrap();
    let dir = dirs.path().join("b");
    ctl(&[
        "backup",
        "--url",
        &url(src.daemon.addr),
        "--bucket",
        "b",
        dir.to_str().unwrap(),
    ]);
    ctl(&[
        "restore",
        "--url",
        &url(src.daemon.addr),
        "--bucket",
        "b",
        "--new-bucket",
        "b2",
        dir.to_str().unwrap(),
    ]);
    let original = ok(query(src.daemon.addr, "b", "SELECT * FROM b.autogen.n")).json();
    let copy = ok(query(src.daemon.addr, "b2", "SELECT * FROM b2.autogen.n")).json();
    assert_eq!(original, copy);
    // Restoring it again under the same new name is refused: the bucket exists.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("backup.json")).unwrap()).unwrap();
    let mut bucket = manifest["buckets"][0].clone();
    bucket["bucketName"] = "b2".into();
    let r = request(
        src.daemon.addr,
        "POST",
        "/api/v2/restore/bucketMetadata",
        &[],
        bucket.to_string().as_bytes(),
    );
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["code"], "conflict");
}

#[test]
fn bad_archives_are_refused_and_change_nothing() {
    let src = node();
    load(src.daemon.addr, 0);
    let addr = src.daemon.addr;
    let id = shard_ids(addr)[0];
    let path = format!("/api/v2/restore/shards/{id}");
    let gz = shard_archive(addr, id, true);
    let plain = shard_archive(addr, id, false);
    assert_eq!(gunzip(&gz), plain);
    let before_answers = answers(addr);
    let before_files = tree(&src.data.join("shards"));

    let mut bad: Vec<(String, Vec<u8>)> = Vec::new();
    // Truncated anywhere before the tar's end-of-archive blocks (1024 zero bytes).
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |bound: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % bound as u64) as usize
    };
    for _ in 0..6 {
        let at = next(plain.len() - 1024);
        bad.push((format!("tar cut at {at}"), plain[..at].to_vec()));
        let at = next(gz.len() - 1);
        bad.push((format!("gzip cut at {at}"), gz[..at].to_vec()));
    }
    // Bit flips inside the first entry's data and anywhere in the gzip stream.
    let first_size = tar::Archive::new(plain.as_slice())
        .entries()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .size() as usize;
    for _ in 0..6 {
        let at = 512 + next(first_size);
        let mut flipped = plain.clone();
        flipped[at] ^= 1 << next(8);
        bad.push((format!("tar bit flip at {at}"), flipped));
        let at = 10 + next(gz.len() - 10);
        let mut flipped = gz.clone();
        flipped[at] ^= 1 << next(8);
        bad.push((format!("gzip bit flip at {at}"), flipped));
    }
    // A tar of unrelated files.
    let mut foreign = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(5);
    header.set_mode(0o644);
    header.set_cksum();
    foreign
        .append_data(&mut header, "etc/passwd", &b"root\n"[..])
        .unwrap();
    bad.push(("foreign tar".into(), foreign.into_inner().unwrap()));
    bad.push((
        "not a tar".into(),
        b"hello, this is not an archive".to_vec(),
    ));
    // A gzip bomb: a segment entry claiming 256 MiB of zeros, compressed to almost nothing.
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut header = tar::Header::new_ustar();
    header.set_path("log/00000000000000000001.seg").unwrap();
    header.set_size(256 << 20);
    header.set_mode(0o644);
    header.set_cksum();
    bomb.write_all(header.as_bytes()).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        bomb.write_all(&zeros).unwrap();
    }
    bad.push(("gzip bomb".into(), bomb.finish().unwrap()));

    for (what, body) in &bad {
        let r = request(addr, "POST", &path, &[], body);
        assert_eq!(
            r.status,
            400,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let error = r.json();
        assert_eq!(error["code"], "invalid", "{what}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with("invalid backup"),
            "{what}: {error}"
        );
    }
    assert_eq!(answers(addr), before_answers, "the node answers as before");
    assert_eq!(
        tree(&src.data.join("shards")),
        before_files,
        "no file changed and no staging directory is left"
    );
    // Unknown shards and bad times get InfluxDB's JSON errors.
    let r = request(addr, "POST", "/api/v2/restore/shards/12345", &[], &plain);
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (404, "not found".into())
    );
    let r = request(addr, "GET", "/api/v2/backup/shards/12345", &[], b"");
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (404, "not found".into())
    );
    let r = request(
        addr,
        "GET",
        &format!(
            "/api/v2/backup/shards/{id}?since={}",
            urlencode("yesterday")
        ),
        &[],
        b"",
    );
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (400, "invalid".into())
    );
    // And the sound archive still restores.
    ok(request(addr, "POST", &path, &[], &gz));
    assert_eq!(answers(addr), before_answers);
    let status = backup_status(addr);
    let failed = status["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["status"] == "failed" && o["operation"] == "restore")
        .count();
    assert!(failed >= bad.len().min(50), "failed restores are recorded");
}

#[test]
fn a_backup_under_write_load_holds_every_point_acknowledged_before_it() {
    let src = node();
    let addr = src.daemon.addr;
    ok(query(addr, "", "CREATE DATABASE load"));
    let acked: Arc<Mutex<Vec<(u32, u64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3u32)
        .map(|w| {
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) && seq < 20_000 {
                    let body: String = (seq..seq + 50)
                        .map(|s| {
                            format!("p,w={w} seq={s}i {}\n", BASE + s * 1_000_000 + u64::from(w))
                        })
                        .collect();
                    let r = request(addr, "POST", "/write?db=load", &[], body.as_bytes());
                    if r.status == 204 {
                        acked
                            .lock()
                            .unwrap()
                            .extend((seq..seq + 50).map(|s| (w, s)));
                    }
                    seq += 50;
                }
            })
        })
        .collect();
    // Wait (bounded by the writers' own limit) until writes are flowing.
    while acked.lock().unwrap().len() < 3_000 && writers.iter().any(|w| !w.is_finished()) {
        std::thread::yield_now();
    }
    let before: Vec<(u32, u64)> = acked.lock().unwrap().clone();
    let id = shard_ids(addr)[0];
    let archive = shard_archive(addr, id, true);
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let kv = ok(request(addr, "GET", "/api/v2/backup/kv", &[], b"")).body;

    let dst = node();
    ok(request(
        dst.daemon.addr,
        "POST",
        "/api/v2/restore/kv",
        &[],
        &kv,
    ));
    ok(request(
        dst.daemon.addr,
        "POST",
        &format!("/api/v2/restore/shards/{id}"),
        &[],
        &archive,
    ));
    let rows = ok(query(dst.daemon.addr, "load", "SELECT seq, w FROM p")).json();
    let mut restored = std::collections::HashSet::new();
    for row in rows["results"][0]["series"][0]["values"]
        .as_array()
        .unwrap()
    {
        let w: u32 = row[2].as_str().unwrap().parse().unwrap();
        restored.insert((w, row[1].as_u64().unwrap()));
    }
    let missing: Vec<_> = before.iter().filter(|p| !restored.contains(p)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged points missing, e.g. {:?}",
        missing.len(),
        before.len(),
        &missing[..missing.len().min(5)]
    );
    let total = acked.lock().unwrap().len();
    assert!(
        restored.len() <= total,
        "nothing that was never acknowledged appears"
    );
}

#[test]
fn a_backup_cut_short_by_the_node_stopping_is_listed_as_failed_after_restart() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Everything stays in the log: the shard is large enough to fill every buffer on the
    // way to a client that does not read. The data log compresses its records, so each
    // line carries 64 pseudo-random hex digits (about 10 MB of log in all).
    let config = "max_head_mib = 512\nidle_flush_seconds = 3600\n";
    let daemon = Daemon::start_with_config(&data, config);
    ok(query(daemon.addr, "", "CREATE DATABASE big"));
    let noise = |x: u64| {
        // splitmix64
        let z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for batch in 0..60u64 {
        let body: String = (0..5000u64)
            .map(|i| {
                let n = 4 * (batch * 5000 + i);
                format!(
                    "m,host=h{},rack=r{} a={i}.5,b={batch}i,c=\"{:016x}{:016x}{:016x}{:016x}\" {}\n",
                    i % 100,
                    i % 7,
                    noise(n),
                    noise(n + 1),
                    noise(n + 2),
                    noise(n + 3),
                    BASE + batch * 5000 + i
                )
            })
            .collect();
        write(daemon.addr, "big", "autogen", &body);
    }
    let id = shard_ids(daemon.addr)[0];
    // A small receive buffer, set before connecting, keeps the kernel from growing it to
    // tens of MiB (tcp_rmem's ceiling), which could swallow the whole shard.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    socket.connect(&daemon.addr.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    write!(
        stream,
        "GET /api/v2/backup/shards/{id} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut first = [0u8; 12];
    stream.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let status = backup_status(daemon.addr);
    assert_eq!(status["running"][0]["shardID"], id, "{status}");
    daemon.kill9();
    drop(stream);

    let daemon = Daemon::start_with_config(&data, config);
    let status = backup_status(daemon.addr);
    assert_eq!(status["running"], serde_json::json!([]), "{status}");
    let last = &status["recent"][0];
    assert_eq!(last["status"], "failed", "{status}");
    assert_eq!(last["reason"], "interrupted: the node stopped");
    assert!(status["shards"][0]["lastGoodBackup"].is_null());
}

#[test]
fn backups_and_restores_need_an_admin_when_auth_is_on() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let daemon = Daemon::start_with_config(&data, "auth_enabled = true\n");
    let addr = daemon.addr;
    let q = |query: &str, user: &str| {
        let credentials = if user.is_empty() {
            String::new()
        } else {
            format!("?u={user}&p=secret-password")
        };
        let body = format!("q={}", urlencode(query));
        request(
            addr,
            "POST",
            &format!("/query{credentials}"),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
    };
    ok(q(
        "CREATE USER root WITH PASSWORD 'secret-password' WITH ALL PRIVILEGES",
        "",
    ));
    ok(q(
        "CREATE USER reader WITH PASSWORD 'secret-password'",
        "root",
    ));
    for (method, path) in [
        ("GET", "/api/v2/backup/kv"),
        ("GET", "/api/v2/backup/metadata"),
        ("GET", "/api/v2/backup/status"),
        ("GET", "/api/v2/backup/shards/1"),
        ("POST", "/api/v2/restore/kv"),
        ("POST", "/api/v2/restore/bucketMetadata"),
        ("POST", "/api/v2/restore/shards/1"),
    ] {
        let r = request(addr, method, path, &[], b"");
        assert_eq!(
            (r.status, r.json()["code"].clone()),
            (401, "unauthorized".into()),
            "{path}"
        );
        let r = request(
            addr,
            method,
            &format!("{path}?u=reader&p=secret-password"),
            &[],
            b"",
        );
        assert_eq!(
            (r.status, r.json()["code"].clone()),
            (403, "forbidden".into()),
            "{path}"
        );
    }
    let r = request(
        addr,
        "GET",
        "/api/v2/backup/kv?u=root&p=secret-password",
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    assert!(!r.body.is_empty());
}

/// A shard's archive is its column files: restored into a shard that holds points of its
/// own, it adds the backup's points and keeps the shard's (a point both have keeps the
/// newer write).
#[test]
fn a_backup_restored_into_a_shard_with_points_of_its_own_adds_to_them() {
    let src = node();
    load(src.daemon.addr, 0);
    let shards = ok(query(src.daemon.addr, "", "SHOW SHARDS")).json();
    let id = shards["results"][0]["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "a")
        .flat_map(|s| s["values"].as_array().unwrap())
        .find(|row| row[2] == "autogen")
        .and_then(|row| row[0].as_u64())
        .expect("the shard of a.autogen");
    let archive = shard_archive(src.daemon.addr, id, false);
    let kv = ok(request(
        src.daemon.addr,
        "GET",
        "/api/v2/backup/kv",
        &[],
        b"",
    ))
    .body;

    // Another node knows the same shard and has written its own points to it.
    let dst = node();
    ok(request(
        dst.daemon.addr,
        "POST",
        "/api/v2/restore/kv",
        &[],
        &kv,
    ));
    load(dst.daemon.addr, 7);
    let round = |addr: SocketAddr, round: u64| {
        let q = format!("SELECT count(f) FROM a.autogen.m WHERE s =~ /^r{round}b/");
        ok(query(addr, "a", &q)).json()
    };
    let own = round(dst.daemon.addr, 7);
    let backed_up = round(src.daemon.addr, 0);
    assert_ne!(own, round(dst.daemon.addr, 0), "the points differ before");
    ok(request(
        dst.daemon.addr,
        "POST",
        &format!("/api/v2/restore/shards/{id}"),
        &[],
        &archive,
    ));
    assert_eq!(
        round(dst.daemon.addr, 7),
        own,
        "the shard's own points stay"
    );
    assert_eq!(
        round(dst.daemon.addr, 0),
        backed_up,
        "the backup's are added"
    );
}

#[test]
fn a_kv_restore_answers_with_a_new_operator_token_the_restore_goes_on_with() {
    let start = || {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let daemon = Daemon::start_with_config(&data, "auth_enabled = true\n");
        (root, daemon)
    };
    let setup = |addr: SocketAddr, user: &str| -> String {
        let body = format!(
            r#"{{"username":"{user}","password":"{user}-password","org":"acme","bucket":"metrics"}}"#
        );
        let json = [("Content-Type", "application/json")];
        let r = ok(request(
            addr,
            "POST",
            "/api/v2/setup",
            &json,
            body.as_bytes(),
        ));
        r.json()["auth"]["token"].as_str().unwrap().to_owned()
    };
    let select = |addr: SocketAddr, token: &str| {
        let auth = format!("Token {token}");
        let q = format!("/query?db=metrics&q={}", urlencode("SELECT * FROM m"));
        request(addr, "GET", &q, &[("Authorization", auth.as_str())], b"")
    };
    let (_src_root, src) = start();
    let owner = setup(src.addr, "owner");
    let auth = format!("Token {owner}");
    ok(request(
        src.addr,
        "POST",
        "/api/v2/write?org=acme&bucket=metrics",
        &[("Authorization", auth.as_str())],
        b"m,host=a v=1.5 1000000000",
    ));
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("b");
    let src_url = url(src.addr);
    ctl(&[
        "backup",
        "--url",
        &src_url,
        "--token",
        &owner,
        backup.to_str().unwrap(),
    ]);

    // A fresh node set up by someone else: its token is not in the restored state.
    let (_dst_root, dst) = start();
    let other = setup(dst.addr, "other");
    let out = ctl(&[
        "restore",
        "--url",
        &url(dst.addr),
        "--token",
        &other,
        backup.to_str().unwrap(),
    ]);
    let minted = out
        .lines()
        .find_map(|l| l.strip_prefix("operator token of the restored node: "))
        .unwrap_or_else(|| panic!("ctl restore shows the new operator token: {out}"))
        .to_owned();
    assert!(minted != owner && minted != other && minted.len() >= 32);
    // The shards were restored with it, and it, like the restored owner's token, reads them.
    let expected = ok(select(src.addr, &owner)).json();
    assert_eq!(ok(select(dst.addr, &minted)).json(), expected);
    assert_eq!(ok(select(dst.addr, &owner)).json(), expected);
    assert_eq!(
        select(dst.addr, &other).status,
        401,
        "the replaced state's token"
    );

    // Through the API: {"token": ...}, a new one each time, and it works.
    let kv = std::fs::read(backup.join("kv")).unwrap();
    let auth = format!("Token {minted}");
    let r = ok(request(
        dst.addr,
        "POST",
        "/api/v2/restore/kv",
        &[("Authorization", auth.as_str())],
        &kv,
    ))
    .json();
    let again = r["token"].as_str().unwrap();
    assert_ne!(again, minted);
    assert_eq!(ok(select(dst.addr, again)).json(), expected);
}
