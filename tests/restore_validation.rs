//! Restores refuse what is not a sound backup of what they are asked to replace, before
//! changing anything: kv snapshots that are empty, cut, padded or damaged (and, with auth
//! on, ones without an admin), bucket manifests with bad names, durations or shard groups,
//! shard archives of another shard or with no files, and bodies past the configured
//! limits. Large but sound restores (20,000 shard groups) go through.

mod common;
use common::{backup_status, ok, query, request, tree, urlencode, Daemon, Response, TempNode};
use std::io::Write;
use std::net::SocketAddr;

fn node(config: &str) -> TempNode {
    TempNode::start(config)
}

/// Asserts a v2 error answer: its status, code, and a word of its message.
fn refused(r: &Response, status: u16, code: &str, says: &str, what: &str) {
    assert_eq!(
        r.status,
        status,
        "{what}: {}",
        String::from_utf8_lossy(&r.body)
    );
    let error = r.json();
    assert_eq!(error["code"], code, "{what}: {error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(says), "{what}: {message:?} lacks {says:?}");
    assert!(message.len() < 1000, "{what}: a message of a line");
}

const ROOT: &str = "u=root&p=secret-password";

fn as_root(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    request(addr, method, &format!("{path}{sep}{ROOT}"), &[], body)
}

fn q(addr: SocketAddr, db: &str, statement: &str) -> serde_json::Value {
    let body = format!("q={}&db={db}", urlencode(statement));
    ok(request(
        addr,
        "POST",
        &format!("/query?{ROOT}"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    ))
    .json()
}

/// What a user of the node sees of its state: databases, users, points.
fn visible_state(addr: SocketAddr) -> Vec<serde_json::Value> {
    vec![
        q(addr, "", "SHOW DATABASES"),
        q(addr, "", "SHOW USERS"),
        q(addr, "a", "SELECT * FROM m"),
        q(addr, "b", "SELECT * FROM m"),
        q(addr, "", "SHOW SHARDS"),
    ]
}

fn shard_of(addr: SocketAddr, db: &str) -> u64 {
    let shards = q(addr, "", "SHOW SHARDS");
    for series in shards["results"][0]["series"].as_array().unwrap() {
        if series["name"] == db {
            return series["values"][0][0].as_u64().unwrap();
        }
    }
    panic!("no shard of {db}: {shards}")
}

/// A node with auth on, an admin and another user, two databases with points at the same
/// times (so their shards have the same start and policy).
fn loaded_node(config: &str) -> TempNode {
    // No idle flush: a head written out while a test runs would change the shard files that
    // a refused restore must leave as they were (a slow machine takes more than the default
    // 10 s between the writes and the check).
    let n = node(&format!(
        "auth_enabled = true\nidle_flush_seconds = 86400\n{config}"
    ));
    let addr = n.daemon.addr;
    ok(query(
        addr,
        "",
        "CREATE USER root WITH PASSWORD 'secret-password' WITH ALL PRIVILEGES",
    ));
    q(addr, "", "CREATE DATABASE a");
    q(addr, "", "CREATE DATABASE b");
    q(
        addr,
        "",
        "CREATE USER reader WITH PASSWORD 'reader-password'",
    );
    q(addr, "", "GRANT READ ON a TO reader");
    for db in ["a", "b"] {
        let body = format!("m,host=h v=1 1700000000000000000\nm,host=h v=2 1700000001000000000\nm,host={db} v=3 1700000002000000000");
        ok(as_root(
            addr,
            "POST",
            &format!("/write?db={db}"),
            body.as_bytes(),
        ));
    }
    n
}

fn restores_succeeded(addr: SocketAddr, subject: &str) -> usize {
    let status = ok(as_root(addr, "GET", "/api/v2/backup/status", b"")).json();
    status["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            o["operation"] == "restore" && o["subject"] == subject && o["status"] == "success"
        })
        .count()
}

#[test]
fn a_kv_restore_of_anything_but_a_whole_sound_snapshot_is_refused_and_changes_nothing() {
    let n = loaded_node("");
    let addr = n.daemon.addr;
    let kv = ok(as_root(addr, "GET", "/api/v2/backup/kv", b"")).body;
    let before = visible_state(addr);
    let files = tree(&n.data.join("shards"));

    let mut damaged = kv.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0x40;
    let mut padded = kv.clone();
    padded.push(0);
    // A state with no user at all: a sound snapshot of a node without auth.
    let open = node("");
    ok(query(open.daemon.addr, "", "CREATE DATABASE other"));
    let no_admin = ok(request(
        open.daemon.addr,
        "GET",
        "/api/v2/backup/kv",
        &[],
        b"",
    ))
    .body;
    let bodies: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty body", Vec::new(), "not a kv snapshot"),
        ("two bytes", b"{}".to_vec(), "not a kv snapshot"),
        ("cut in half", kv[..kv.len() / 2].to_vec(), "cut short"),
        (
            "last byte missing",
            kv[..kv.len() - 1].to_vec(),
            "cut short",
        ),
        ("padded", padded, "cut short or padded"),
        ("bad checksum", damaged, "checksum"),
        (
            "state without its header",
            kv[20..].to_vec(),
            "not a kv snapshot",
        ),
        ("no admin user", no_admin, "no admin user"),
    ];
    for (what, body, says) in &bodies {
        let r = as_root(addr, "POST", "/api/v2/restore/kv", body);
        refused(&r, 400, "invalid", says, what);
    }
    assert_eq!(visible_state(addr), before, "databases, users and points");
    assert_eq!(tree(&n.data.join("shards")), files, "every shard file");
    let setup = ok(request(addr, "GET", "/api/v2/setup", &[], b"")).json();
    assert_eq!(setup["allowed"], false, "setup stays closed");
    assert_eq!(restores_succeeded(addr, "kv"), 0);
    // The sound snapshot still restores.
    ok(as_root(addr, "POST", "/api/v2/restore/kv", &kv));
    assert_eq!(visible_state(addr), before);
    assert_eq!(restores_succeeded(addr, "kv"), 1);
}

/// A bucket manifest of InfluxDB 2's shape with `groups` one-hour shard groups.
fn manifest(name: &str, groups: usize) -> serde_json::Value {
    const HOUR: i64 = 3_600_000_000_000;
    let base = 1_700_000_000i64 - 1_700_000_000 % 3600;
    let time = |i: usize| {
        jiff::Timestamp::from_second(base + i as i64 * 3600)
            .expect("a time of 2023")
            .to_string()
    };
    let shard_groups: Vec<serde_json::Value> = (0..groups)
        .map(|i| {
            serde_json::json!({
                "id": 1000 + i,
                "startTime": time(i),
                "endTime": time(i + 1),
                "shards": [{"id": 5000 + i, "shardOwners": [{"nodeID": 1}]}],
            })
        })
        .collect();
    serde_json::json!({
        "organizationID": "",
        "organizationName": "",
        "bucketID": "0000000000000001",
        "bucketName": name,
        "defaultRetentionPolicy": "autogen",
        "retentionPolicies": [{
            "name": "autogen",
            "replicaN": 1,
            "duration": 0,
            "shardGroupDuration": HOUR,
            "shardGroups": shard_groups,
            "subscriptions": [],
        }],
    })
}

/// 20,000 shard groups make control events of more than a control-log segment (1 MiB):
/// they are written all the same, and replayed after a kill.
#[test]
fn a_bucket_of_20000_shard_groups_restores_and_its_events_replay_after_a_kill() {
    let n = node("");
    let addr = n.daemon.addr;
    let body = manifest("big", 20_000).to_string();
    let r = request(
        addr,
        "POST",
        "/api/v2/restore/bucketMetadata",
        &[],
        body.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let mappings = r.json()["shardMappings"].as_array().unwrap().len();
    assert_eq!(mappings, 20_000);
    let shards = ok(query(addr, "", "SHOW SHARDS")).json();
    let count: usize = shards["results"][0]["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "big")
        .map(|s| s["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(count, 20_000);
    // Shards open on first use: a restart with 20,000 of them replays the large events
    // and opens none.
    ok(query(addr, "", "CREATE DATABASE after"));
    let TempNode { root, data, daemon } = n;
    daemon.kill9();
    let daemon = Daemon::start(&data);
    let databases = ok(query(daemon.addr, "", "SHOW DATABASES")).json();
    assert_eq!(
        databases["results"][0]["series"][0]["values"],
        serde_json::json!([["big"], ["after"]])
    );
    let shards = ok(query(daemon.addr, "", "SHOW SHARDS")).json();
    let listed: usize = shards["results"][0]["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["values"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(
        listed, 20_000,
        "every shard is still known after the restart"
    );
    let status = backup_status(daemon.addr);
    assert!(
        status["recent"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["subject"] == "bucket" && o["status"] == "success"),
        "{status}"
    );
    drop(root);
}

#[test]
fn bucket_manifests_with_bad_names_durations_or_shard_groups_are_refused() {
    let n = node("");
    let addr = n.daemon.addr;
    let databases = || ok(query(addr, "", "SHOW DATABASES")).json();
    let before = databases();
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut m = manifest("fine", 3);
        edit(&mut m);
        m
    };
    fn set_rp(field: &'static str, value: serde_json::Value) -> impl Fn(&mut serde_json::Value) {
        move |m| m["retentionPolicies"][0][field] = value.clone()
    }
    let long = "x".repeat(100_000);
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "../ in the name",
            with(&|m| m["bucketName"] = "../../etc".into()),
            "contains /",
        ),
        (
            "NUL in the name",
            with(&|m| m["bucketName"] = "a\0b".into()),
            "control character",
        ),
        (
            "100,000-character name",
            with(&|m| m["bucketName"] = long.clone().into()),
            "longer than 255 bytes",
        ),
        (
            "leading underscore",
            with(&|m| m["bucketName"] = "_monitoring".into()),
            "starts with _",
        ),
        (
            "double quote",
            with(&|m| m["bucketName"] = "a\"b".into()),
            "double quote",
        ),
        (
            "empty name",
            with(&|m| m["bucketName"] = "".into()),
            "is empty",
        ),
        (
            "dot dot",
            with(&|m| m["bucketName"] = "..".into()),
            "is . or ..",
        ),
        (
            "bad policy name",
            with(&|m| {
                m["retentionPolicies"][0]["name"] = "a/b".into();
                m["defaultRetentionPolicy"] = "a/b".into();
            }),
            "contains /",
        ),
        (
            "zero shard group duration",
            with(&set_rp("shardGroupDuration", 0.into())),
            "not positive",
        ),
        (
            "negative shard group duration",
            with(&set_rp(
                "shardGroupDuration",
                (-3_600_000_000_000i64).into(),
            )),
            "not positive",
        ),
        (
            "negative duration",
            with(&set_rp("duration", (-1i64).into())),
            "neither 0",
        ),
        (
            "duration under an hour",
            with(&set_rp("duration", 1_000_000_000i64.into())),
            "neither 0",
        ),
        (
            "duplicate shard group",
            with(&|m| {
                let g = m["retentionPolicies"][0]["shardGroups"][0].clone();
                m["retentionPolicies"][0]["shardGroups"]
                    .as_array_mut()
                    .unwrap()
                    .push(g);
            }),
            "appears twice",
        ),
        (
            "duplicate shard",
            with(&|m| {
                m["retentionPolicies"][0]["shardGroups"][1]["shards"][0]["id"] = 5000.into();
            }),
            "appears twice",
        ),
        (
            "overlapping groups",
            with(&|m| {
                let g = &mut m["retentionPolicies"][0]["shardGroups"][1];
                g["endTime"] = "2090-01-01T00:00:00Z".into();
            }),
            "overlap",
        ),
        (
            "group ending before it starts",
            with(&|m| {
                let g = &mut m["retentionPolicies"][0]["shardGroups"][0];
                g["endTime"] = g["startTime"].clone();
            }),
            "ends at or before",
        ),
        (
            "time past 2262",
            with(&|m| {
                m["retentionPolicies"][0]["shardGroups"][2]["endTime"] =
                    "2263-01-01T00:00:00Z".into();
            }),
            "between 1677 and 2262",
        ),
        (
            "time before 1677",
            with(&|m| {
                m["retentionPolicies"][0]["shardGroups"][0]["startTime"] =
                    "1600-01-01T00:00:00Z".into();
            }),
            "between 1677 and 2262",
        ),
        (
            "duplicate policy",
            with(&|m| {
                let p = m["retentionPolicies"][0].clone();
                m["retentionPolicies"].as_array_mut().unwrap().push(p);
            }),
            "appears twice",
        ),
    ];
    for (what, body, says) in &cases {
        let r = request(
            addr,
            "POST",
            "/api/v2/restore/bucketMetadata",
            &[],
            body.to_string().as_bytes(),
        );
        refused(&r, 400, "invalid", says, what);
    }
    assert_eq!(databases(), before, "no database was created");
    // The manifest they were made from restores.
    let r = request(
        addr,
        "POST",
        "/api/v2/restore/bucketMetadata",
        &[],
        manifest("fine", 3).to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

/// A tar of `entries` (name, bytes) followed by a manifest naming them.
fn shard_archive(
    shard: &serde_json::Value,
    entries: &[(&str, Vec<u8>)],
    since: Option<i64>,
) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut files = Vec::new();
    let append = |tar: &mut tar::Builder<Vec<u8>>, name: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_path(name).unwrap();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append(&header, bytes).unwrap();
    };
    for (name, bytes) in entries {
        append(&mut tar, name, bytes);
        files.push(serde_json::json!({
            "name": name,
            "size": bytes.len(),
            "crc32c": crc32c::crc32c(bytes),
        }));
    }
    let mut manifest = shard.clone();
    manifest["files"] = files.into();
    manifest["since"] = since.into();
    append(&mut tar, "manifest.json", manifest.to_string().as_bytes());
    tar.into_inner().unwrap()
}

/// The manifest of a shard's own backup.
fn manifest_of(archive: &[u8]) -> serde_json::Value {
    for entry in tar::Archive::new(archive).entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some("manifest.json") {
            let mut json = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut json).unwrap();
            return serde_json::from_slice(&json).unwrap();
        }
    }
    panic!("no manifest")
}

/// Shard `id`'s backup, taken as root (its head is written out first).
fn backup_of(addr: SocketAddr, id: u64) -> Vec<u8> {
    let path = format!("/api/v2/backup/shards/{id}");
    ok(as_root(addr, "GET", &path, b"")).body
}

/// A column file of this layout whose index (zstd-compressed) is `index`, no blocks.
fn column_file_with_index(index: &[u8]) -> Vec<u8> {
    let mut file = b"SKCOLF02".to_vec();
    let offset = file.len() as u64;
    file.extend_from_slice(index);
    file.extend_from_slice(&offset.to_le_bytes());
    file.extend_from_slice(&(index.len() as u64).to_le_bytes());
    let crc = shardkeeper::log::format::mask(crc32c::crc32c(index));
    file.extend_from_slice(&crc.to_le_bytes());
    file.extend_from_slice(b"SKCOLEND");
    file
}

/// What a refused restore must leave as it was: the answers and every shard file (but the
/// anti-entropy digests' `digest.bin`, a cache of what the files hold, written after any
/// flush and rebuilt when absent).
struct Unchanged {
    state: Vec<serde_json::Value>,
    files: Vec<(String, u64)>,
}

fn shard_files(n: &TempNode) -> Vec<(String, u64)> {
    let mut files = tree(&n.data.join("shards"));
    files.retain(|(name, _)| !name.ends_with("digest.bin"));
    files
}

impl Unchanged {
    fn now(n: &TempNode) -> Unchanged {
        Unchanged {
            state: visible_state(n.daemon.addr),
            files: shard_files(n),
        }
    }

    fn check(&self, n: &TempNode) {
        assert_eq!(visible_state(n.daemon.addr), self.state);
        assert_eq!(shard_files(n), self.files);
    }
}

#[test]
fn a_shard_archive_of_another_shard_or_a_forged_one_is_refused_and_changes_nothing() {
    let n = loaded_node("");
    let addr = n.daemon.addr;
    let (a, b) = (shard_of(addr, "a"), shard_of(addr, "b"));
    assert_ne!(a, b);
    let archive_a = backup_of(addr, a);
    let archive_b = backup_of(addr, b);
    let shard_b = manifest_of(&archive_b);
    // Database a's shard restored into database b's (same policy, same start): refused.
    let unchanged = Unchanged::now(&n);
    let into_b = format!("/api/v2/restore/shards/{b}");
    let r = as_root(addr, "POST", &into_b, &archive_a);
    refused(
        &r,
        400,
        "invalid",
        "which is not shard",
        "another database's shard",
    );
    // b's own identity but no files at all: the backup of a shard that held nothing,
    // which restores nothing.
    let empty = shard_archive(&shard_b, &[], None);
    ok(as_root(addr, "POST", &into_b, &empty));
    // A manifest whose id is not the one its database, policy and start derive.
    let mut forged = shard_b.clone();
    forged["database"] = "a".into();
    let r = as_root(addr, "POST", &into_b, &shard_archive(&forged, &[], None));
    refused(
        &r,
        400,
        "invalid",
        "which is not shard",
        "an incoherent manifest",
    );
    unchanged.check(&n);
    // An incremental archive with nothing changed since is accepted and changes nothing.
    ok(as_root(
        addr,
        "POST",
        &into_b,
        &shard_archive(&shard_b, &[], Some(1)),
    ));
    unchanged.check(&n);
    // b's own archive restores.
    ok(as_root(addr, "POST", &into_b, &archive_b));
    unchanged.check(&n);

    // A bucket restored under a new name takes the archives of the shards its manifest
    // names, and no other.
    let metadata = ok(as_root(addr, "GET", "/api/v2/backup/metadata", b"")).body;
    let text = String::from_utf8_lossy(&metadata);
    let part = &text[text.find("name=\"buckets\"").unwrap()..];
    let json = &part[part.find("\r\n\r\n").unwrap() + 4..];
    let buckets: Vec<serde_json::Value> =
        serde_json::from_str(&json[..json.find("\r\n--").unwrap()]).unwrap();
    let mut bucket = buckets
        .iter()
        .find(|b| b["bucketName"] == "b")
        .unwrap()
        .clone();
    bucket["bucketName"] = "b2".into();
    let r = ok(as_root(
        addr,
        "POST",
        "/api/v2/restore/bucketMetadata",
        bucket.to_string().as_bytes(),
    ))
    .json();
    let new_id = r["shardMappings"][0]["newId"].as_u64().unwrap();
    let into_b2 = format!("/api/v2/restore/shards/{new_id}");
    let r = as_root(addr, "POST", &into_b2, &archive_a);
    refused(
        &r,
        400,
        "invalid",
        "nor one restored into it",
        "a shard the bucket did not name",
    );
    ok(as_root(addr, "POST", &into_b2, &archive_b));
    assert_eq!(
        q(addr, "b2", "SELECT * FROM m")["results"][0]["series"][0]["values"],
        q(addr, "b", "SELECT * FROM m")["results"][0]["series"][0]["values"]
    );
}

#[test]
fn restore_bodies_past_the_configured_limits_get_413_and_change_nothing() {
    let n = loaded_node("max_restore_metadata_mib = 1\nmax_restore_shard_mib = 1\n");
    let addr = n.daemon.addr;
    let big = vec![b'x'; 2 << 20];
    for path in ["/api/v2/restore/kv", "/api/v2/restore/bucketMetadata"] {
        let r = as_root(addr, "POST", path, &big);
        refused(&r, 413, "request too large", "exceeds", path);
    }
    let b = shard_of(addr, "b");
    let into_b = format!("/api/v2/restore/shards/{b}");
    let r = as_root(addr, "POST", &into_b, &big);
    refused(&r, 413, "request too large", "exceeds", "a 2 MiB archive");
    // Small as sent, but it unpacks past the limit.
    let archive_b = backup_of(addr, b);
    // The backup wrote the shard's head out as a column file first.
    let unchanged = Unchanged::now(&n);
    let shard_b = manifest_of(&archive_b);
    let column = vec![0u8; 3 << 20];
    let tar = shard_archive(&shard_b, &[("00000000000000000001.col", column)], None);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 1 << 20);
    let r = as_root(addr, "POST", &into_b, &gz);
    refused(
        &r,
        413,
        "request too large",
        "exceeds",
        "an archive unpacking to 3 MiB",
    );
    unchanged.check(&n);
}

#[test]
fn a_column_file_whose_index_unpacks_without_bound_is_refused() {
    let n = loaded_node("");
    let addr = n.daemon.addr;
    let b = shard_of(addr, "b");
    let into_b = format!("/api/v2/restore/shards/{b}");
    let archive_b = backup_of(addr, b);
    let shard_b = manifest_of(&archive_b);
    // A column file whose zstd index is a few KiB that unpacks to 512 MiB of well-formed
    // fields (empty series, field 2), so that only the bound on what it unpacks to stops
    // it: the index is decoded as it unpacks.
    let mut index = zstd::stream::write::Encoder::new(Vec::new(), 19).unwrap();
    let empty_series = [0x12u8, 0x00].repeat(1 << 19);
    for _ in 0..512 {
        index.write_all(&empty_series).unwrap();
    }
    let index = index.finish().unwrap();
    let file = column_file_with_index(&index);
    let unchanged = Unchanged::now(&n);
    let tar = shard_archive(&shard_b, &[("00000000000000000001.col", file)], None);
    let r = as_root(addr, "POST", &into_b, &tar);
    refused(&r, 400, "invalid", "unpacks to more than", "an index bomb");
    unchanged.check(&n);
}

/// A column file's index stays in memory as long as its shard is open: unpacked, it
/// counts against `max_restore_shard_mib` like the files do. A sound index of 3 MiB in a
/// file of a few KiB is refused with 413 under a 1 MiB limit, and nothing changes.
#[test]
fn a_column_file_whose_index_unpacks_past_the_restore_limit_gets_413() {
    use prost::Message;
    let n = loaded_node("max_restore_shard_mib = 1\n");
    let addr = n.daemon.addr;
    let b = shard_of(addr, "b");
    let into_b = format!("/api/v2/restore/shards/{b}");
    let archive_b = backup_of(addr, b);
    let shard_b = manifest_of(&archive_b);
    let key = format!("m,host={}", "h".repeat(3 << 20));
    let index = shardkeeper::proto::ColumnFileIndex {
        covered_lsn: 1,
        series: vec![shardkeeper::proto::ColumnSeries {
            key,
            measurement: "m".into(),
            tags: Vec::new(),
            blocks: Vec::new(),
        }],
        max_version: 0,
        tombstones: Vec::new(),
        schema: Vec::new(),
    }
    .encode_to_vec();
    let index = zstd::bulk::compress(&index, 3).unwrap();
    let file = column_file_with_index(&index);
    assert!(file.len() < 64 << 10);
    let unchanged = Unchanged::now(&n);
    let tar = shard_archive(&shard_b, &[("00000000000000000001.col", file)], None);
    let r = as_root(addr, "POST", &into_b, &tar);
    refused(
        &r,
        413,
        "request too large",
        "unpacks to more than",
        "a 3 MiB index",
    );
    unchanged.check(&n);
}
