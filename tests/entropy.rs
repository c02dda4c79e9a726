//! Anti-entropy across three nodes on loopback, each with the other two as peers (through
//! fault-injecting proxies, so that addresses are known before the nodes start and a
//! link can be cut): the same points to all three, then diverged (extra points on one,
//! a DELETE on another, overwritten values on the third, a shard created while a node was
//! down); the status lists exactly the diverged shards, repairs leave every node answering
//! every query identically, and consistent replicas show no shards.

mod common;
use common::fault_proxy::FaultProxy;
use common::{ok, query, request, wait_until, Daemon};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

const DAY: i64 = 86_400_000_000_000;
/// Monday 2020-09-14 00:00 UTC: shard groups (7 days) start on Mondays.
const BASE: i64 = 1_600_041_600_000_000_000;

struct Cluster {
    /// proxies[i][j]: node i's way to node j.
    proxies: Vec<Vec<Option<FaultProxy>>>,
    nodes: Vec<Option<Daemon>>,
    dirs: Vec<PathBuf>,
    configs: Vec<String>,
    _root: tempfile::TempDir,
}

impl Cluster {
    fn start(n: usize) -> Cluster {
        Cluster::start_with(n, "", 0.3)
    }

    /// `n` nodes, each with `extra` (top-level keys) in its config, checking every
    /// `interval` seconds.
    fn start_with(n: usize, extra: &str, interval: f64) -> Cluster {
        let root = tempfile::tempdir().unwrap();
        let proxies: Vec<Vec<Option<FaultProxy>>> = (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| (i != j).then(FaultProxy::start_unbound))
                    .collect()
            })
            .collect();
        let configs: Vec<String> = (0..n)
            .map(|i| {
                let peers: Vec<String> = (0..n)
                    .filter(|&j| j != i)
                    .map(|j| format!("\"{}\"", proxies[i][j].as_ref().unwrap().url()))
                    .collect();
                format!(
                    "node_id = {i}\n{extra}[anti_entropy]\npeers = [{}]\ncheck_interval_seconds = {interval}\nsettle_seconds = 1\n",
                    peers.join(", ")
                )
            })
            .collect();
        let dirs: Vec<PathBuf> = (0..n)
            .map(|i| root.path().join(format!("node-{i}")))
            .collect();
        let mut cluster = Cluster {
            proxies,
            nodes: (0..n).map(|_| None).collect(),
            dirs,
            configs,
            _root: root,
        };
        for i in 0..n {
            cluster.start_node(i);
        }
        cluster
    }

    fn start_node(&mut self, i: usize) {
        std::fs::create_dir_all(&self.dirs[i]).unwrap();
        let d = Daemon::start_with_config(&self.dirs[i], &self.configs[i]);
        for (k, row) in self.proxies.iter().enumerate() {
            if k != i {
                row[i].as_ref().unwrap().set_target(d.addr);
            }
        }
        self.nodes[i] = Some(d);
    }

    fn node(&self, i: usize) -> &Daemon {
        self.nodes[i].as_ref().expect("node running")
    }

    fn addr(&self, i: usize) -> std::net::SocketAddr {
        self.node(i).addr
    }

    fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_some())
            .collect()
    }
}

fn write(addr: std::net::SocketAddr, lines: &str) {
    ok(request(addr, "POST", "/write?db=db", &[], lines.as_bytes()));
}

fn status(addr: std::net::SocketAddr, local: bool) -> Value {
    let path = match local {
        true => "/shard-repair/status?local=true",
        false => "/shard-repair/status",
    };
    ok(request(addr, "GET", path, &[], b"")).json()
}

fn status_ids(s: &Value) -> BTreeSet<u64> {
    s["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// The id of the shard holding time `t` (from SHOW SHARDS).
fn shard_of(addr: std::net::SocketAddr, t: i64) -> u64 {
    let r = ok(query(addr, "db", "SHOW SHARDS"));
    let body = r.json();
    for s in body["results"][0]["series"].as_array().unwrap() {
        if s["name"] != "db" {
            continue;
        }
        let cols: Vec<&str> = s["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let at = |name: &str| cols.iter().position(|c| *c == name).unwrap();
        for row in s["values"].as_array().unwrap() {
            let start = row[at("start_time")].as_str().unwrap();
            let end = row[at("end_time")].as_str().unwrap();
            let start = jiff_nanos(start);
            let end = jiff_nanos(end);
            if start <= t && t < end {
                return row[at("id")].as_u64().unwrap();
            }
        }
    }
    panic!("no shard holds {t}: {body}");
}

fn jiff_nanos(rfc3339: &str) -> i64 {
    let ts: jiff::Timestamp = rfc3339.parse().unwrap();
    ts.as_nanosecond() as i64
}

/// What every node must answer alike.
const QUERIES: [&str; 4] = [
    "SELECT * FROM cpu GROUP BY *",
    "SELECT count(*) FROM cpu GROUP BY time(7d) fill(none)",
    "SELECT * FROM mem GROUP BY *",
    "SHOW SERIES",
];

fn answers(addr: std::net::SocketAddr) -> Vec<String> {
    QUERIES
        .iter()
        .map(|q| {
            let r = ok(query(addr, "db", q));
            String::from_utf8(r.body).unwrap()
        })
        .collect()
}

fn metric(addr: std::net::SocketAddr, name: &str) -> f64 {
    let text = String::from_utf8(ok(request(addr, "GET", "/metrics", &[], b"")).body).unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// Waits until every running node has run `n` more checks.
fn wait_checks(c: &Cluster, n: f64) {
    let start: Vec<(usize, f64)> = c
        .running()
        .into_iter()
        .map(|i| (i, metric(c.addr(i), "shardkeeper_entropy_checks_total")))
        .collect();
    wait_until("checks to run", || {
        start
            .iter()
            .all(|&(i, s)| metric(c.addr(i), "shardkeeper_entropy_checks_total") >= s + n)
    });
}

fn base_lines() -> String {
    let mut lines = String::new();
    for day in 0..21 {
        for h in 0..5 {
            let t = BASE + day * DAY + h * 1_000_000_000;
            lines.push_str(&format!("cpu,host=h{h} usage={}.5 {t}\n", day * 10 + h));
            lines.push_str(&format!("mem,host=h{h} free={}i {t}\n", day * 100 + h));
        }
    }
    lines
}

#[test]
fn three_replicas_find_and_repair_their_differences() {
    let mut c = Cluster::start(3);
    for i in 0..3 {
        ok(query(c.addr(i), "", "CREATE DATABASE db"));
        write(c.addr(i), &base_lines());
    }
    // Written alike: after they settle, no node sees a difference.
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    wait_checks(&c, 2.0);
    for i in 0..3 {
        assert_eq!(
            status_ids(&status(c.addr(i), true)),
            BTreeSet::new(),
            "node {i}"
        );
    }
    let first = answers(c.addr(0));
    for i in 1..3 {
        assert_eq!(answers(c.addr(i)), first, "node {i} before any divergence");
    }

    // Diverge: extra points on node 0 (week 0), a DELETE on node 1 (week 1), newer values
    // on node 2 (week 2).
    let (w0, w1, w2) = (BASE + DAY, BASE + 8 * DAY, BASE + 15 * DAY);
    write(
        c.addr(0),
        &format!(
            "cpu,host=extra usage=99 {w0}\ncpu,host=h0 usage=7 {}\n",
            w0 + 5
        ),
    );
    let delete = format!(
        "DELETE FROM cpu WHERE host = 'h1' AND time >= {} AND time < {}",
        BASE + 7 * DAY,
        BASE + 14 * DAY
    );
    ok(query(c.addr(1), "db", &delete));
    let overwritten = BASE + 15 * DAY + 2 * 1_000_000_000;
    write(c.addr(2), &format!("cpu,host=h2 usage=500 {overwritten}\n"));
    let diverged: BTreeSet<u64> = [w0, w1, w2]
        .iter()
        .map(|&t| shard_of(c.addr(0), t))
        .collect();
    assert_eq!(diverged.len(), 3);

    // Every node (merging its peers' reports) lists exactly the diverged shards.
    for i in 0..3 {
        wait_until(&format!("node {i} to list the diverged shards"), || {
            status_ids(&status(c.addr(i), false)) == diverged
        });
    }
    let s = status(c.addr(1), false);
    for row in s["shards"].as_array().unwrap() {
        assert_eq!(row["status"], "diff");
        assert_eq!(row["database"], "db");
        assert_eq!(row["retention_policy"], "autogen");
        for k in ["id", "start_time", "end_time", "expires"] {
            assert!(row[k].is_string(), "{k} is a string: {row}");
        }
    }

    // Repair each from node 0: it pulls from both peers and pushes to both.
    for id in &diverged {
        let r = request(
            c.addr(0),
            "POST",
            &format!("/shard-repair/repair?id={id}"),
            &[],
            b"",
        );
        assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    }
    wait_until("the repairs to finish", || {
        let s = status(c.addr(0), true);
        let finished: BTreeSet<u64> = s["recent_repairs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["outcome"] == "finished")
            .map(|r| r["id"].as_str().unwrap().parse().unwrap())
            .collect();
        s["queued_shards"].as_array().unwrap().is_empty()
            && s["processing_shards"].as_array().unwrap().is_empty()
            && finished == diverged
    });
    let repaired = answers(c.addr(0));
    for i in 1..3 {
        assert_eq!(answers(c.addr(i)), repaired, "node {i} after the repair");
    }
    // The extra points everywhere, the deleted range gone everywhere, the newer value
    // everywhere.
    let all = &repaired[0];
    assert!(all.contains("\"extra\""), "{all}");
    let h1_week1 = format!(
        "SELECT count(usage) FROM cpu WHERE host = 'h1' AND time >= {} AND time < {}",
        BASE + 7 * DAY,
        BASE + 14 * DAY
    );
    for i in 0..3 {
        let r = ok(query(c.addr(i), "db", &h1_week1));
        assert!(
            r.json()["results"][0]["series"].is_null(),
            "node {i}: {:?}",
            r.json()
        );
        let r = ok(query(
            c.addr(i),
            "db",
            &format!("SELECT usage FROM cpu WHERE host = 'h2' AND time = {overwritten}"),
        ));
        assert_eq!(
            r.json()["results"][0]["series"][0]["values"][0][1],
            500.0,
            "node {i}"
        );
    }
    // Consistent now: no node lists a shard.
    for i in 0..3 {
        wait_until(&format!("node {i} to list no shard"), || {
            status_ids(&status(c.addr(i), false)).is_empty()
        });
    }
    let repaired_bytes = metric(
        c.addr(0),
        "shardkeeper_entropy_bytes_total{activity=\"repair\"}",
    );
    assert!(repaired_bytes > 0.0);

    // A shard created while a node was down: filled on its return, with no call at all.
    c.nodes[2].take().unwrap().kill9();
    let w5 = BASE + 36 * DAY;
    let late: String = (0..5)
        .map(|h| format!("cpu,host=h{h} usage={h} {}\n", w5 + h))
        .collect();
    write(c.addr(0), &late);
    write(c.addr(1), &late);
    c.start_node(2);
    wait_until("node 2 to fill the shard it missed", || {
        let r = ok(query(
            c.addr(2),
            "db",
            &format!("SELECT count(usage) FROM cpu WHERE time >= {w5}"),
        ));
        r.json()["results"][0]["series"][0]["values"][0][1] == 5
    });
    // Fetched whole from a peer (a backup archive, verified before it was swapped in).
    let missed = shard_of(c.addr(0), w5);
    wait_until("the repair that fetched the shard whole to finish", || {
        fetched_whole(c.addr(2), missed)
    });
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    wait_checks(&c, 2.0);
    let everywhere = answers(c.addr(0));
    for i in 1..3 {
        assert_eq!(
            answers(c.addr(i)),
            everywhere,
            "node {i} after the missing shard"
        );
    }
    for i in 0..3 {
        wait_until(&format!("node {i} to list no shard at the end"), || {
            status_ids(&status(c.addr(i), false)).is_empty()
        });
    }
}

/// Whether `addr` finished a repair of `shard` that fetched it whole from a peer.
fn fetched_whole(addr: std::net::SocketAddr, shard: u64) -> bool {
    status(addr, true)["recent_repairs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| {
            r["id"].as_str() == Some(&shard.to_string())
                && r["outcome"] == "finished"
                && r["fetched_whole"] == true
        })
}

/// A shard whose column file was damaged on one node (quarantined there at start) is
/// fetched whole from a peer with no call, verified, and leaves quarantine: the node
/// answers every query as its peers do, and reports itself healthy.
#[test]
fn a_damaged_shard_is_fetched_whole_from_a_peer_and_leaves_quarantine() {
    let mut c = Cluster::start_with(3, "idle_flush_seconds = 1\n", 0.3);
    for i in 0..3 {
        ok(query(c.addr(i), "", "CREATE DATABASE db"));
        write(c.addr(i), &base_lines());
    }
    let shard = shard_of(c.addr(2), BASE + 8 * DAY);
    let shard_dir = c.dirs[2].join("shards").join(shard.to_string());
    wait_until("node 2's head to be written out", || {
        !common::files_with_extension(&shard_dir, "col").is_empty()
    });
    assert!(c.nodes[2].take().unwrap().stop().success());
    // A byte of the file's index (read whole when the shard opens).
    let name = common::files_with_extension(&shard_dir, "col")
        .into_iter()
        .next_back()
        .unwrap();
    let file = shard_dir.join(&name);
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() - 40;
    bytes[at] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    c.start_node(2);
    wait_until("node 2 to fetch the damaged shard whole", || {
        fetched_whole(c.addr(2), shard)
    });
    let health = ok(request(c.addr(2), "GET", "/health", &[], b"")).json();
    assert_eq!(health["status"], "pass", "{health}");
    assert_eq!(metric(c.addr(2), "shardkeeper_shards_quarantined"), 0.0);
    let expected = answers(c.addr(0));
    assert_eq!(answers(c.addr(2)), expected);
    assert_eq!(answers(c.addr(1)), expected);
}

#[test]
fn the_api_refuses_a_missing_or_malformed_id_and_ctl_prints_what_influxd_ctl_does() {
    let c = Cluster::start(2);
    for path in [
        "/shard-repair/repair",
        "/shard-repair/repair?id=x",
        "/shard-repair/cancel-repair",
        "/shard-repair/cancel-repair?id=-1",
    ] {
        let r = request(c.addr(0), "POST", path, &[], b"");
        assert_eq!(r.status, 400, "{path}");
        assert!(r.json()["error"].is_string(), "{path}");
    }
    let url = format!("http://{}", c.addr(0));
    let run = |args: &[&str]| {
        let mut all = vec!["entropy"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--url", &url]);
        common::ctl(&all)
    };
    // A repair of a shard no node holds: queued, then failed (recorded).
    assert_eq!(run(&["repair", "12345"]), "Repair Shard 12345 queued\n");
    let show = run(&["show"]);
    assert!(show.starts_with("Entropy\n"), "{show}");
    assert!(
        show.contains("ID      Database    Retention Policy    Start"),
        "{show}"
    );
    assert!(show.contains("Queued Shards: ["), "{show}");
    assert_eq!(
        run(&["kill-repair", "12345"]),
        "Shard 12345 removed from repair queue\n"
    );
    let s = status(c.addr(0), true);
    assert!(s["queued_shards"].as_array().unwrap().is_empty(), "{s}");
}

/// A partition between the two peers in the middle of a repair, then healed: the repair
/// waits, goes again and finishes; nothing is lost, nothing counted twice.
#[test]
fn a_repair_cut_by_a_partition_finishes_once_it_heals() {
    let c = Cluster::start(2);
    for i in 0..2 {
        ok(query(c.addr(i), "", "CREATE DATABASE db"));
        write(c.addr(i), &base_lines());
    }
    // Node 1 holds 10,000 points node 0 lacks, over many leaves of one shard.
    let mut extra = String::new();
    for s in 0..200 {
        for k in 0..50i64 {
            let t = BASE + 7 * DAY + k * 3 * 3_600_000_000_000 + s;
            extra.push_str(&format!("disk,dev=d{s} used={k}i {t}\n"));
        }
    }
    write(c.addr(1), &extra);
    let shard = shard_of(c.addr(1), BASE + 7 * DAY);
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    let to_1 = c.proxies[0][1].as_ref().unwrap();
    // Slow, so that the repair is under way when the link goes.
    to_1.set_delay(std::time::Duration::from_millis(40));
    let r = request(
        c.addr(0),
        "POST",
        &format!("/shard-repair/repair?id={shard}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 204);
    wait_until("the repair to be under way", || {
        status(c.addr(0), true)["processing_shards"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str() == Some(&shard.to_string()))
    });
    to_1.refuse_new_connections(true);
    to_1.cut_live_connections();
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    // Still under way (waiting for the peer), not failed.
    let s = status(c.addr(0), true);
    assert!(
        s["recent_repairs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] != "failed"),
        "{s}"
    );
    to_1.set_delay(std::time::Duration::ZERO);
    to_1.refuse_new_connections(false);
    wait_until("the repair to finish", || {
        status(c.addr(0), true)["recent_repairs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"].as_str() == Some(&shard.to_string()) && r["outcome"] == "finished")
    });
    let count = |i: usize| {
        let r = ok(query(c.addr(i), "db", "SELECT count(used) FROM disk"));
        r.json()["results"][0]["series"][0]["values"][0][1].clone()
    };
    assert_eq!(count(0), 10_000);
    assert_eq!(count(1), 10_000);
    assert_eq!(answers(c.addr(0)), answers(c.addr(1)));
    let disk = |i: usize| {
        String::from_utf8(ok(query(c.addr(i), "db", "SELECT * FROM disk GROUP BY *")).body).unwrap()
    };
    assert_eq!(disk(0), disk(1));
}

/// Whether SHOW SHARDS on `addr` lists shard `id`.
fn shard_listed(addr: std::net::SocketAddr, id: u64) -> bool {
    let body = ok(query(addr, "db", "SHOW SHARDS")).json();
    let series = body["results"][0]["series"].as_array().cloned();
    series.unwrap_or_default().iter().any(|s| {
        let cols = s["columns"].as_array().unwrap();
        let at = cols.iter().position(|c| c == "id").unwrap();
        // A database without shards: a series of columns and no values.
        let rows = s["values"].as_array().cloned().unwrap_or_default();
        rows.iter().any(|row| row[at].as_u64() == Some(id))
    })
}

/// A shard a peer holds and this node lacks becomes visible only once its verified copy
/// is swapped in. While the whole-shard fetch is held back (a slow peer), and across a
/// kill -9 in the middle of it, the node answers a query of the shard's range as it did
/// before (nothing) and lists no such shard, in SHOW SHARDS or in the repair status; a
/// write here into that range meanwhile is visible at once and kept; once the fetch goes
/// through, every point is there, the local write winning where it is the newer, and the
/// peer takes the local writes too.
#[test]
fn a_shard_fetched_whole_stays_invisible_until_its_verified_copy_is_swapped_in() {
    let mut c = Cluster::start(2);
    for i in 0..2 {
        ok(query(c.addr(i), "", "CREATE DATABASE db"));
    }
    let week = format!(
        "SELECT count(usage) FROM cpu WHERE time >= {BASE} AND time < {}",
        BASE + 7 * DAY
    );
    let count_on = |addr| {
        let r = ok(query(addr, "db", &week));
        r.json()["results"][0]["series"][0]["values"][0][1].clone()
    };
    let before = String::from_utf8(ok(query(c.addr(1), "db", &week)).body).unwrap();
    assert_eq!(count_on(c.addr(1)), Value::Null, "{before}");
    // Node 1's way to node 0 holds back whole-shard fetches; the checks pass.
    c.proxies[1][0]
        .as_ref()
        .unwrap()
        .hold_requests("GET /api/v2/backup/shards/");
    let w = BASE + 3 * DAY;
    let lines: String = (0..100i64)
        .map(|i| {
            format!(
                "cpu,host=h{} usage={i}.5 {}\n",
                i % 5,
                w + i / 5 * 1_000_000_000
            )
        })
        .collect();
    write(c.addr(0), &lines);
    let shard = shard_of(c.addr(0), w);
    let held = |c: &Cluster| c.proxies[1][0].as_ref().unwrap().requests_held();
    let invisible = |c: &Cluster, when: &str| {
        let addr = c.addr(1);
        let now = String::from_utf8(ok(query(addr, "db", &week)).body).unwrap();
        assert_eq!(now, before, "{when}: the range answers as before adoption");
        assert!(!shard_listed(addr, shard), "{when}: SHOW SHARDS lists it");
        let s = status(addr, true);
        assert!(!status_ids(&s).contains(&shard), "{when}: {s}");
    };
    wait_until("node 1 to fetch the shard it lacks", || held(&c) >= 1);
    invisible(&c, "the fetch held back");
    let s = status(c.addr(1), true);
    assert_eq!(
        s["processing_shards"],
        serde_json::json!([shard.to_string()])
    );

    // Killed in the middle of the fetch: on restart, still nothing visible, and the
    // repair (under way in the control log) fetches again.
    let held_before = held(&c);
    c.nodes[1].take().unwrap().kill9();
    c.start_node(1);
    wait_until("node 1 to fetch again after its restart", || {
        held(&c) > held_before
    });
    invisible(&c, "after a kill -9 in the middle of the fetch");

    // A write here meanwhile: one point node 0 holds, given a newer value, and a new one.
    write(
        c.addr(1),
        &format!("cpu,host=h0 usage=-1 {w}\ncpu,host=local usage=1 {w}\n"),
    );
    assert_eq!(count_on(c.addr(1)), 2);

    c.proxies[1][0].as_ref().unwrap().release();
    wait_until("the repair that fetched the shard whole to finish", || {
        fetched_whole(c.addr(1), shard)
    });
    let h0_at_w = format!("SELECT usage FROM cpu WHERE host = 'h0' AND time = {w}");
    for i in [1, 0] {
        wait_until(&format!("node {i} to hold every point"), || {
            count_on(c.addr(i)) == 101
        });
        let r = ok(query(c.addr(i), "db", &h0_at_w));
        assert_eq!(
            r.json()["results"][0]["series"][0]["values"][0][1],
            -1.0,
            "node {i}"
        );
    }
    assert_eq!(answers(c.addr(1)), answers(c.addr(0)));
}

/// The README's figures (run by hand: `cargo test --release --test entropy figures --
/// --exact --ignored --nocapture`): bytes exchanged to repair a 0.1% divergence of a 1M-point
/// shard against the shard's size on disk, for a divergence clustered in time (a lost
/// batch: every series at one time) and one scattered at random; and the time from a
/// divergence to its detection.
#[test]
#[ignore]
fn figures() {
    let c = Cluster::start(2);
    let series = 1_000i64;
    let times = 1_000i64;
    let step = 10_000_000_000i64;
    for i in 0..2 {
        ok(query(c.addr(i), "", "CREATE DATABASE db"));
    }
    let mut seed = 42u64;
    let mut rnd = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    let mut values = vec![50.0f64; series as usize];
    for t in 0..times {
        let mut batch = String::new();
        for s in 0..series {
            values[s as usize] += (rnd() % 200) as f64 / 100.0 - 1.0;
            batch.push_str(&format!(
                "cpu,host=host_{s} usage_user={:.2} {}\n",
                values[s as usize],
                BASE + t * step
            ));
        }
        for i in 0..2 {
            write(c.addr(i), &batch);
        }
    }
    let shard = shard_of(c.addr(0), BASE);
    // On disk: the shard's column files once its head is written out (idle flush).
    let shard_dir = c.dirs[1].join("shards").join(shard.to_string());
    wait_until("the shard's head to be written out", || {
        !common::files_with_extension(&shard_dir, "col").is_empty()
            && metric(c.addr(1), "shardkeeper_heads_bytes") == 0.0
    });
    let on_disk: u64 = std::fs::read_dir(&shard_dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".col"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    println!("shard {shard}: 1,000,000 points, {on_disk} bytes of column files");
    let repair = |what: &str| {
        std::thread::sleep(std::time::Duration::from_millis(1_500));
        let before = metric(
            c.addr(0),
            "shardkeeper_entropy_bytes_total{activity=\"repair\"}",
        );
        let recorded = status(c.addr(0), true)["recent_repairs"]
            .as_array()
            .unwrap()
            .len();
        let finished_before = metric(
            c.addr(0),
            "shardkeeper_entropy_repairs_total{outcome=\"finished\"}",
        );
        let started = std::time::Instant::now();
        ok(request(
            c.addr(0),
            "POST",
            &format!("/shard-repair/repair?id={shard}"),
            &[],
            b"",
        ));
        wait_until("the repair", || {
            metric(
                c.addr(0),
                "shardkeeper_entropy_repairs_total{outcome=\"finished\"}",
            ) > finished_before
        });
        let bytes = metric(
            c.addr(0),
            "shardkeeper_entropy_bytes_total{activity=\"repair\"}",
        ) - before;
        println!(
            "{what}: {bytes} bytes exchanged ({:.3}% of the shard's size on disk), {:?}",
            100.0 * bytes / on_disk as f64,
            started.elapsed(),
        );
        wait_until("the outcome to be recorded", || {
            status(c.addr(0), true)["recent_repairs"]
                .as_array()
                .unwrap()
                .len()
                > recorded
        });
        println!("  {}", status(c.addr(0), true)["recent_repairs"][0]);
        let sums = |i: usize| {
            let q = "SELECT count(usage_user), sum(usage_user) FROM cpu";
            String::from_utf8(ok(query(c.addr(i), "db", q)).body).unwrap()
        };
        assert_eq!(sums(0), sums(1));
    };
    // Clustered: node 0 takes a batch node 1 never got (1,000 points at one time).
    let mut lost = String::new();
    for s in 0..series {
        lost.push_str(&format!(
            "cpu,host=host_{s} usage_user=1 {}\n",
            BASE + times * step
        ));
    }
    write(c.addr(0), &lost);
    let diverged_at = std::time::Instant::now();
    wait_until("the divergence to be detected", || {
        status_ids(&status(c.addr(0), true)).contains(&shard)
    });
    println!(
        "detected {:?} after the divergence (settle_seconds 1, check_interval_seconds 0.3)",
        diverged_at.elapsed()
    );
    repair("a lost batch (1,000 points at one time, 0.1%)");
    // Scattered: 1,000 random points of node 0 given new values, three times: all -1
    // (the figure before values were encoded compactly, kept for comparison), values
    // like the data's (two decimals), and floats with 52 random mantissa bits.
    type NewValue = dyn Fn(&mut dyn FnMut() -> u64) -> String;
    let cases: [(&str, &NewValue); 3] = [
        ("all -1", &|_| "-1".to_owned()),
        ("two decimals, 0.00 to 99.99", &|rnd| {
            format!("{:.2}", (rnd() % 10_000) as f64 / 100.0)
        }),
        ("random mantissas, 2^-10 to 2^10", &|rnd| {
            let mantissa = ((rnd() << 31) ^ rnd()) & ((1 << 52) - 1);
            let exponent = 1023 - 10 + rnd() % 20;
            let sign = (rnd() & 1) << 63;
            f64::from_bits(sign | (exponent << 52) | mantissa).to_string()
        }),
    ];
    for (values, value) in cases {
        let mut changed = String::new();
        for _ in 0..1_000 {
            let (s, t) = (rnd() as i64 % series, rnd() as i64 % times);
            changed.push_str(&format!(
                "cpu,host=host_{s} usage_user={} {}\n",
                value(&mut rnd),
                BASE + t * step
            ));
        }
        write(c.addr(0), &changed);
        repair(&format!("1,000 points changed at random (0.1%), {values}"));
    }
}

/// CPU seconds (user and system) process `pid` has used, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command's closing parenthesis: utime and stime are the 12th and
    // 13th of them.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// The README's figure of a check's cost (run by hand: `cargo test --release --test
/// entropy figures_check_cpu -- --ignored --nocapture`): three nodes, each with the
/// other two as peers, 1,000 shards of 1,000 points alike on all three; the CPU each node
/// spends in 10 s with a check every second (its own checks, and its answers to its two
/// peers'), beside the same cluster's with no check in those 10 s.
#[test]
#[ignore]
fn figures_check_cpu() {
    let checking = check_cpu(1.0);
    let idle = check_cpu(3_600.0);
    for i in 0..3 {
        let (cpu, n, last) = checking[i];
        let (base, _, _) = idle[i];
        println!(
            "node {i}: {n} checks of 1,000 unchanged shards with two peers in 10 s: {:.0} ms of CPU ({:.0} ms with no check), {:.1} ms of CPU per check interval beyond the idle node's, the last check {:.1} ms",
            cpu * 1e3,
            base * 1e3,
            (cpu - base) * 1e3 / n,
            last / 1_000.0
        );
    }
}

/// Per node: the CPU seconds it used in 10 s, the checks it ran, and how long its last
/// check took (µs), with a check every `interval` seconds.
fn check_cpu(interval: f64) -> Vec<(f64, f64, f64)> {
    // Heads written out soon once idle: what is measured is the checks, not flushes.
    let c = Cluster::start_with(3, "idle_flush_seconds = 1\n", interval);
    let week = 7 * DAY;
    for i in 0..3 {
        ok(query(c.addr(i), "", "CREATE DATABASE db"));
        // 1,000 points a shard: 100 series at 10 times.
        for chunk in 0..100 {
            let mut lines = String::new();
            for w in chunk * 10..(chunk + 1) * 10 {
                for k in 0..10 {
                    for h in 0..100 {
                        let t = BASE + w * week + k * (week / 10) + h;
                        lines.push_str(&format!("cpu,host=h{h} usage={w}.5 {t}\n"));
                    }
                }
            }
            write(c.addr(i), &lines);
        }
    }
    let shards = ok(query(c.addr(0), "db", "SHOW SHARDS")).json()["results"][0]["series"][0]
        ["values"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(shards, 1_000);
    // Settled, written out and (when checking) compared: the first check computes every
    // new leaf.
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    wait_until("every head to be written out", || {
        (0..3).all(|i| metric(c.addr(i), "shardkeeper_heads_bytes") == 0.0)
    });
    if interval < 10.0 {
        wait_checks(&c, 3.0);
        for i in 0..3 {
            assert!(status_ids(&status(c.addr(i), true)).is_empty(), "node {i}");
        }
        // Nothing left to repair either: what is measured is checks alone.
        wait_until("no repair queued or under way", || {
            (0..3).all(|i| {
                let s = status(c.addr(i), true);
                s["queued_shards"].as_array().unwrap().is_empty()
                    && s["processing_shards"].as_array().unwrap().is_empty()
            })
        });
    } else {
        std::thread::sleep(std::time::Duration::from_secs(3));
    }
    let checks = |i: usize| metric(c.addr(i), "shardkeeper_entropy_checks_total");
    let before: Vec<(f64, f64)> = (0..3)
        .map(|i| (cpu_seconds(c.node(i).child.id()), checks(i)))
        .collect();
    // Not polled meanwhile: a node's /metrics, asked every few milliseconds, would cost
    // more than its checks. (A figure, not an assertion: a fixed span is what is wanted.)
    std::thread::sleep(std::time::Duration::from_secs(10));
    before
        .into_iter()
        .enumerate()
        .map(|(i, (cpu0, checks0))| {
            let cpu = cpu_seconds(c.node(i).child.id()) - cpu0;
            let last = metric(c.addr(i), "shardkeeper_entropy_last_check_microseconds");
            (cpu, checks(i) - checks0, last)
        })
        .collect()
}
