//! `shardkeeper proxy` in front of two circles of two backends, shardkeeper nodes or real
//! influxd 1.x: writes land on exactly the backends influx-proxy's ring names, queries
//! answer as those backends do, `/health` and `/replica` as influx-proxy gives them, and
//! no acknowledged point is lost when a backend or the proxy itself is killed.

mod common;

use common::proxy::{owner_among, Backend, Circles, Kind, Proxy};
use common::{first_result, ok, request, rows_of, urlencode, wait_until};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DB: &str = "db1";

/// influx-proxy's `proxy.json` for `circles`, with `extra` keys over its defaults.
fn config(circles: &Circles, data: &Path, extra: Value) -> String {
    let mut c = json!({
        "circles": circles.config(),
        "listen_addr": "127.0.0.1:0",
        "data_dir": data.join("proxy-data"),
        "flush_time": 1,
        "check_interval": 1,
        "rewrite_interval": 1,
    });
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    c.to_string()
}

struct Setup {
    circles: Circles,
    proxy: Proxy,
    dir: tempfile::TempDir,
}

/// Two circles of two backends and a proxy before them, the database created through it;
/// None when `kind` is not installed.
fn setup(kind: Kind, extra: Value) -> Option<Setup> {
    let circles = Circles::start(kind, &[2, 2])?;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("proxy.json");
    let proxy = Proxy::start_with(&file, &config(&circles, dir.path(), extra));
    ok(proxy.query("", &format!("CREATE DATABASE {DB}")));
    Some(Setup {
        circles,
        proxy,
        dir,
    })
}

/// The names of the measurements a backend holds in `db`.
fn measurements(backend: &Backend, db: &str) -> BTreeSet<String> {
    rows_of(&backend.query(db, "SHOW MEASUREMENTS"))
        .iter()
        .map(|r| r[0].as_str().unwrap().to_owned())
        .collect()
}

fn count(addr_query: common::Response) -> u64 {
    rows_of(&addr_query)
        .first()
        .and_then(|r| r[1].as_u64())
        .unwrap_or(0)
}

fn writes_land_on_the_owners_and_queries_answer_as_they_do(kind: Kind) {
    let Some(s) = setup(kind, json!({})) else {
        return;
    };
    let names: Vec<String> = (0..12).map(|i| format!("m{i}")).collect();
    for (i, m) in names.iter().enumerate() {
        let lines: String = (0..5)
            .map(|t| format!("{m},host=h{} v={i}.5,n={t}i {}\n", t % 2, 1_600_000_000 + t))
            .collect();
        let r = request(
            s.proxy.addr,
            "POST",
            &format!("/write?db={DB}&precision=s"),
            &[],
            lines.as_bytes(),
        );
        assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("X-Influxdb-Version"), Some("2.4.7"));
    }
    // `rp` reaches the backends: a policy made on each of them directly (CREATE RETENTION
    // POLICY is not on influx-proxy's whitelist).
    for b in s.circles.all() {
        ok(b.query(
            DB,
            "CREATE RETENTION POLICY short ON db1 DURATION 1h REPLICATION 1",
        ));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let r = request(
        s.proxy.addr,
        "POST",
        &format!("/write?db={DB}&rp=short&precision=s"),
        &[],
        format!("inrp v=1 {now}\n").as_bytes(),
    );
    assert_eq!(r.status, 204);
    for c in 0..2 {
        let owner = &s.circles.circles[c][s.circles.owner(c, DB, "inrp")];
        wait_until("the point in retention policy short", || {
            count(owner.query(DB, "SELECT count(v) FROM db1.short.inrp")) == 1
        });
        assert_eq!(
            count(owner.query(DB, "SELECT count(v) FROM db1.autogen.inrp")),
            0
        );
    }
    // Every measurement on its owner in each circle, with every point, and nowhere else.
    for (c, backends) in s.circles.circles.iter().enumerate() {
        for (i, b) in backends.iter().enumerate() {
            let owned: BTreeSet<String> = names
                .iter()
                .chain([&"inrp".to_owned()])
                .filter(|m| s.circles.owner(c, DB, m) == i)
                .cloned()
                .collect();
            wait_until(
                &format!("circle {c} backend {i} to hold its measurements"),
                || {
                    measurements(b, DB) == owned
                        && owned
                            .iter()
                            .filter(|m| *m != "inrp")
                            .all(|m| count(b.query(DB, &format!("SELECT count(v) FROM {m}"))) == 5)
                },
            );
        }
    }
    for m in &names {
        let owner = &s.circles.circles[0][s.circles.owner(0, DB, m)];
        let q = format!("SELECT * FROM {m} GROUP BY host");
        let direct = owner.query(DB, &q);
        let through = s.proxy.query(DB, &q);
        assert_eq!(through.status, 200);
        assert_eq!(through.json(), direct.json(), "{q}");
        // Precision: the points are at the seconds written.
        assert_eq!(
            rows_of(&s.proxy.query(DB, &format!("SELECT v FROM {m} LIMIT 1")))[0][0],
            json!("2020-09-13T12:26:40Z")
        );
    }
    // SHOW without FROM: every backend of a circle, merged.
    let shown: Vec<String> = rows_of(&s.proxy.query(DB, "SHOW MEASUREMENTS"))
        .iter()
        .map(|r| r[0].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = names.clone();
    sorted.push("inrp".to_owned());
    sorted.sort();
    assert_eq!(shown, sorted);
    let fields = s.proxy.query(DB, "SHOW FIELD KEYS").json();
    // `inrp`'s field is in policy `short`, which SHOW FIELD KEYS does not look at.
    assert_eq!(fields["results"][0]["series"].as_array().unwrap().len(), 12);

    // /health as influx-proxy gives it: every backend holds only what the ring gives it.
    let health = ok(s.proxy.request("GET", "/health", b"")).json();
    assert_eq!(health.as_array().unwrap().len(), 2);
    for (c, circle) in health.as_array().unwrap().iter().enumerate() {
        assert_eq!(circle["circle"], json!(format!("circle-{}", c + 1)));
        let mut total = 0;
        for (i, b) in circle["backends"].as_array().unwrap().iter().enumerate() {
            assert_eq!(b["name"], json!(format!("influxdb-{}-{}", c + 1, i + 1)));
            assert_eq!(b["url"], json!(s.circles.circles[c][i].url()));
            assert_eq!(b["active"], json!(true));
            assert_eq!(b["backlog"], json!(false));
            assert_eq!(b["rewrite"], json!(false));
            let load = &b["load"][DB];
            assert_eq!(load["incorrect"], json!(0), "{b}");
            assert_eq!(load["inplace"], load["measurements"], "{b}");
            total += load["measurements"].as_u64().unwrap();
        }
        assert_eq!(total, 13);
    }
    let pretty = ok(s.proxy.request("GET", "/health?pretty=true", b""));
    assert!(String::from_utf8_lossy(&pretty.body).starts_with("[\n    {\n        \"backends\""));
    let replica = ok(s.proxy.request("GET", "/replica?db=db1&meas=m3", b"")).json();
    let expect: Vec<Value> = (0..2)
        .map(|c| {
            let i = s.circles.owner(c, DB, "m3");
            json!({
                "circle": format!("circle-{}", c + 1),
                "name": format!("influxdb-{}-{}", c + 1, i + 1),
                "url": s.circles.circles[c][i].url(),
            })
        })
        .collect();
    assert_eq!(replica, json!(expect));

    // DROP MEASUREMENT reaches the owner in every circle.
    ok(s.proxy.query(DB, "DROP MEASUREMENT m3"));
    for c in 0..2 {
        let owner = &s.circles.circles[c][s.circles.owner(c, DB, "m3")];
        assert!(!measurements(owner, DB).contains("m3"));
    }
    drop(s.dir);
}

#[test]
fn writes_land_on_the_owners_and_queries_answer_as_they_do_with_shardkeeper_nodes() {
    writes_land_on_the_owners_and_queries_answer_as_they_do(Kind::Shardkeeper);
}

#[test]
fn writes_land_on_the_owners_and_queries_answer_as_they_do_with_influxd() {
    writes_land_on_the_owners_and_queries_answer_as_they_do(Kind::Influxd);
}

/// Writes `batches` batches of `lines` lines over `measurements`, each point with a
/// distinct `seq`; returns the acknowledged seqs per measurement.
struct Writer {
    acked: Arc<Mutex<BTreeMap<String, BTreeSet<u64>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Writer {
    /// Writes until stopped to the address `addr` holds (the proxy may move), from seq
    /// `first` on, every `step`.
    fn start(addr: Arc<Mutex<SocketAddr>>, first: u64, step: u64) -> Writer {
        let acked = Arc::new(Mutex::new(BTreeMap::<String, BTreeSet<u64>>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (acked2, stop2) = (acked.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut seq = first;
            let mut refused = 0;
            while !stop2.load(Ordering::Relaxed) {
                let mut batch: Vec<(String, u64)> = Vec::new();
                let mut body = String::new();
                for _ in 0..50 {
                    let m = format!("load{}", seq % 6);
                    body.push_str(&format!("{m},w=w{first} seq={seq}i {}\n", 1_000_000 + seq));
                    batch.push((m, seq));
                    seq += step;
                }
                let target = *addr.lock().unwrap();
                match common::try_request(
                    target,
                    "POST",
                    &format!("/write?db={DB}&precision=s"),
                    &[],
                    body.as_bytes(),
                ) {
                    Ok(r) if r.status == 204 => {
                        let mut acked = acked2.lock().unwrap();
                        for (m, seq) in batch {
                            acked.entry(m).or_default().insert(seq);
                        }
                    }
                    _ => {
                        refused += 1;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
            refused
        });
        Writer {
            acked,
            stop,
            thread: Some(thread),
        }
    }

    fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().values().map(|s| s.len()).sum()
    }

    fn finish(mut self) -> BTreeMap<String, BTreeSet<u64>> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.take().unwrap().join();
        self.acked.lock().unwrap().clone()
    }
}

/// Waits until every acknowledged seq is on its measurement's owner in every circle.
fn every_acked_point_reaches_every_circle(
    circles: &Circles,
    acked: &BTreeMap<String, BTreeSet<u64>>,
) {
    for c in 0..circles.circles.len() {
        for (m, seqs) in acked {
            let owner = &circles.circles[c][circles.owner(c, DB, m)];
            wait_until(
                &format!("circle {c} to hold every acknowledged point of {m}"),
                || {
                    count(owner.query(DB, &format!("SELECT count(seq) FROM {m}")))
                        >= seqs.len() as u64
                },
            );
            let held: BTreeSet<u64> = rows_of(&owner.query(DB, &format!("SELECT seq FROM {m}")))
                .iter()
                .map(|r| r[1].as_u64().unwrap())
                .collect();
            let missing: Vec<&u64> = seqs.difference(&held).take(10).collect();
            assert!(
                missing.is_empty(),
                "circle {c} {m} lacks acknowledged seqs {missing:?}"
            );
        }
    }
}

fn a_killed_backend_gets_every_acknowledged_point(kind: Kind) {
    let Some(mut s) = setup(kind, json!({})) else {
        return;
    };
    let addr = Arc::new(Mutex::new(s.proxy.addr));
    let writer = Writer::start(addr, 0, 1);
    wait_until("some writes", || writer.acked_count() > 500);
    let victim = s.circles.owner(0, DB, "load0");
    s.circles.circles[0][victim].kill9();
    let before = writer.acked_count();
    wait_until("writes to go on while the backend is down", || {
        writer.acked_count() > before + 2_000
    });
    let down = ok(s.proxy.request("GET", "/health", b"")).json();
    assert_eq!(
        down[0]["backends"][victim]["active"],
        json!(false),
        "{down}"
    );
    assert_eq!(
        down[0]["backends"][victim]["backlog"],
        json!(true),
        "{down}"
    );
    s.circles.circles[0][victim].restart();
    let after = writer.acked_count();
    wait_until("writes after the restart", || {
        writer.acked_count() > after + 500
    });
    let acked = writer.finish();
    every_acked_point_reaches_every_circle(&s.circles, &acked);
    wait_until("the backlog to empty", || {
        let h = ok(s.proxy.request("GET", "/health", b"")).json();
        h[0]["backends"][victim]["backlog"] == json!(false)
    });
}

#[test]
fn a_backend_killed_while_writes_continue_gets_every_acknowledged_point_shardkeeper() {
    a_killed_backend_gets_every_acknowledged_point(Kind::Shardkeeper);
}

#[test]
fn a_backend_killed_while_writes_continue_gets_every_acknowledged_point_influxd() {
    a_killed_backend_gets_every_acknowledged_point(Kind::Influxd);
}

#[test]
fn the_proxy_killed_ten_times_under_write_load_loses_no_acknowledged_point() {
    let Some(mut s) = setup(Kind::Shardkeeper, json!({})) else {
        return;
    };
    let addr = Arc::new(Mutex::new(s.proxy.addr));
    let writers: Vec<Writer> = (0..3).map(|w| Writer::start(addr.clone(), w, 3)).collect();
    for cycle in 0..10 {
        let before: usize = writers.iter().map(Writer::acked_count).sum();
        wait_until(&format!("writes in cycle {cycle}"), || {
            writers.iter().map(Writer::acked_count).sum::<usize>() > before + 300
        });
        // A moment of the cycle of its own, so kills fall at different points of a write.
        std::thread::sleep(Duration::from_millis(37 * (cycle % 5)));
        let config = s.proxy.config.clone();
        s.proxy.kill9();
        s.proxy = Proxy::start(&config);
        *addr.lock().unwrap() = s.proxy.addr;
    }
    let acked: Vec<BTreeMap<String, BTreeSet<u64>>> =
        writers.into_iter().map(Writer::finish).collect();
    let mut all: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for a in acked {
        for (m, seqs) in a {
            all.entry(m).or_default().extend(seqs);
        }
    }
    assert!(all.values().map(|s| s.len()).sum::<usize>() > 3_000);
    every_acked_point_reaches_every_circle(&s.circles, &all);
}

#[test]
fn refused_batches_are_kept_aside_counted_and_replayed_by_ctl() {
    let Some(s) = setup(Kind::Shardkeeper, json!({})) else {
        return;
    };
    // No backend has this database: each refuses its batch (404).
    let r = s.proxy.write("later", "cpu v=1 1\nmem v=2 2\n");
    assert_eq!(r.status, 204, "acknowledged: durable in the proxy");
    wait_until("the refused batches to be kept aside", || {
        let h = ok(s.proxy.request("GET", "/health", b"")).json();
        let kept: u64 = h
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["backends"].as_array().unwrap().iter())
            .map(|b| b["kept_aside"].as_u64().unwrap())
            .sum();
        kept >= 2
    });
    let metrics = String::from_utf8(ok(s.proxy.request("GET", "/metrics", b"")).body).unwrap();
    assert!(
        metrics.contains("shardkeeper_proxy_kept_aside_batches{"),
        "{metrics}"
    );
    let url = s.proxy.url();
    let ctl = |args: &[&str]| {
        let mut all = vec!["proxy", "aside"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--url", &url]);
        common::ctl(&all)
    };
    let listed = ctl(&["list"]);
    assert!(
        listed.contains("db=later") && listed.contains("status=404"),
        "{listed}"
    );
    ok(s.proxy.query("", "CREATE DATABASE later"));
    ctl(&["replay", "all"]);
    for c in 0..2 {
        for m in ["cpu", "mem"] {
            let owner = &s.circles.circles[c][s.circles.owner(c, "later", m)];
            wait_until(&format!("{m} replayed to circle {c}"), || {
                count(owner.query("later", &format!("SELECT count(v) FROM {m}"))) == 1
            });
        }
    }
    assert_eq!(ctl(&["list"]).trim(), "no batch kept aside");
}

#[test]
fn a_full_backlog_refuses_writes_for_that_backends_measurements_only() {
    let Some(mut s) = setup(Kind::Shardkeeper, json!({ "backlog_max_mb": 1 })) else {
        return;
    };
    s.circles.circles[0][0].kill9();
    let down: Vec<String> = (0..40)
        .map(|i| format!("m{i}"))
        .filter(|m| s.circles.owner(0, DB, m) == 0)
        .take(1)
        .collect();
    let up: Vec<String> = (0..40)
        .map(|i| format!("m{i}"))
        .filter(|m| s.circles.owner(0, DB, m) == 1)
        .take(1)
        .collect();
    let (down, up) = (&down[0], &up[0]);
    let line = "x".repeat(1000);
    let body: String = (0..100)
        .map(|i| format!("{down},t={i} s=\"{line}\" {i}\n"))
        .collect();
    let mut refused = None;
    for _ in 0..50 {
        let r = s.proxy.write(DB, &body);
        if r.status != 204 {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("a full backlog refuses writes");
    assert_eq!(refused.status, 503);
    assert!(refused.json()["error"]
        .as_str()
        .unwrap()
        .contains("influxdb-1-1"));
    assert_eq!(s.proxy.write(DB, &format!("{up} v=1 1\n")).status, 204);
    s.circles.circles[0][0].restart();
    wait_until("the backlog to drain and writes to be taken again", || {
        s.proxy.write(DB, &format!("{down},t=after v=1 1\n")).status == 204
    });
}

#[test]
fn influx_proxys_refusals_and_error_texts() {
    let Some(s) = setup(Kind::Shardkeeper, json!({ "db_list": ["db1"] })) else {
        return;
    };
    let error = |r: common::Response| -> (u16, String) {
        (
            r.status,
            r.json()["error"].as_str().unwrap_or("").to_owned(),
        )
    };
    assert_eq!(
        error(s.proxy.query(DB, "SELECT * INTO x FROM cpu")),
        (400, "query forbidden".into())
    );
    assert_eq!(
        error(s.proxy.query(DB, "SHOW USERS")),
        (400, "query forbidden".into())
    );
    assert_eq!(
        error(s.proxy.query(DB, "SELECT * FROM cpu; SHOW USERS")),
        (400, "query forbidden".into())
    );
    assert_eq!(
        error(s.proxy.query("", "SELECT * FROM cpu")),
        (400, "database not found".into())
    );
    assert_eq!(
        error(s.proxy.query("other", "SELECT * FROM cpu")),
        (400, "database forbidden: other".into())
    );
    assert_eq!(
        error(s.proxy.request("GET", "/query", b"")),
        (400, "query not found".into())
    );
    assert_eq!(
        error(s.proxy.request("GET", "/write?db=db1", b"")),
        (405, "method not allow".into())
    );
    assert_eq!(
        error(s.proxy.request("POST", "/write", b"")),
        (400, "database not found".into())
    );
    assert_eq!(
        error(s.proxy.write("other", "cpu v=1")),
        (400, "database forbidden: other".into())
    );
    let gz = request(
        s.proxy.addr,
        "POST",
        "/write?db=db1",
        &[("Content-Encoding", "gzip")],
        b"not gzip",
    );
    assert_eq!(error(gz), (400, "unable to decode gzip body".into()));
    // A line that does not parse: InfluxDB's words, the others accepted.
    let (status, message) = error(s.proxy.write(DB, "cpu v=1 1\nbad\n"));
    assert_eq!(status, 400);
    assert!(
        message.starts_with("partial write: unable to parse 'bad'"),
        "{message}"
    );
    // The backend's own status and error pass through.
    let r = s.proxy.query(DB, "SELECT FROM cpu");
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("error parsing query"));
    // Several statements: each routed, their results joined.
    ok(s.proxy.write(DB, "a v=1 1\nb v=2 2\n"));
    wait_until("both measurements", || {
        let r = s.proxy.query(DB, "SELECT v FROM a; SELECT v FROM b").json();
        r["results"][1]["series"][0]["values"][0][1].as_f64() == Some(2.0)
    });
    let both = s.proxy.query(DB, "SELECT v FROM a; SELECT v FROM b").json();
    assert_eq!(both["results"][0]["statement_id"], json!(0));
    assert_eq!(both["results"][1]["statement_id"], json!(1));
    assert_eq!(
        both["results"][0]["series"][0]["values"][0][1].as_f64(),
        Some(1.0)
    );
    // The cipher.
    let e = ok(s.proxy.request("GET", "/encrypt?msg=admin", b""));
    assert_eq!(e.body, b"YgvEyuPZlDYAH8sGDkC!Ag\n");
    let d = ok(s.proxy.request(
        "GET",
        "/decrypt?key=consistentcipher&msg=YgvEyuPZlDYAH8sGDkC!Ag",
        b"",
    ));
    assert_eq!(d.body, b"admin\n");
    let bad = s
        .proxy
        .request("GET", "/decrypt?key=x&msg=YgvEyuPZlDYAH8sGDkC!Ag", b"");
    assert_eq!((bad.status, bad.body), (400, b"invalid key\n".to_vec()));
    assert_eq!(s.proxy.request("POST", "/encrypt?msg=a", b"").status, 405);
    let ping = s.proxy.request("GET", "/ping", b"");
    assert_eq!(
        (ping.status, ping.header("X-Influxdb-Version")),
        (204, Some("2.4.7"))
    );
}

#[test]
fn a_config_error_stops_the_start_with_influx_proxys_words() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("proxy.json");
    let dup = json!({"circles": [
        {"name": "a", "backends": [{"name": "x", "url": "http://127.0.0.1:1"}]},
        {"name": "b", "backends": [{"name": "x", "url": "http://127.0.0.1:2"}]}
    ]});
    std::fs::write(&file, dup.to_string()).unwrap();
    let err = Proxy::try_start(&file).err().expect("refused");
    assert!(
        err.contains("config source load failed: backend name exists: x"),
        "{err}"
    );
    let bad_key = json!({"hash_key": "crc", "circles": [
        {"name": "a", "backends": [{"name": "x", "url": "http://127.0.0.1:1"}]}
    ]});
    std::fs::write(&file, bad_key.to_string()).unwrap();
    let err = Proxy::try_start(&file).err().expect("refused");
    assert!(
        err.contains("invalid hash_key, should be idx, name or url"),
        "{err}"
    );
}

#[test]
fn the_toml_form_serves_the_same() {
    let Some(circles) = Circles::start(Kind::Shardkeeper, &[1, 1]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "listen_addr = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\
         [[circles]]\nname = \"one\"\n[[circles.backends]]\nname = \"a\"\nurl = \"{}\"\n\
         [[circles]]\nname = \"two\"\n[[circles.backends]]\nname = \"b\"\nurl = \"{}\"\n",
        dir.path().join("data").display(),
        circles.circles[0][0].url(),
        circles.circles[1][0].url(),
    );
    let proxy = Proxy::start_with(&dir.path().join("proxy.toml"), &toml);
    ok(proxy.query("", "CREATE DATABASE t"));
    ok(proxy.write("t", "cpu v=1 1"));
    for b in circles.all() {
        wait_until("the point on both circles", || {
            count(b.query("t", "SELECT count(v) FROM cpu")) == 1
        });
    }
}

/// Who may call what on a proxy with credentials: influx-proxy checks them on every
/// endpoint but `/ping`, `/encrypt` and `/decrypt`; given as `u`/`p` or Basic; with
/// `auth_secure` the config holds them encrypted (the client sends them plain).
#[test]
fn authorization_matrix_of_the_proxys_endpoints() {
    for secure in [false, true] {
        let (user, password) = match secure {
            true => (
                shardkeeper::proxy::cipher::encrypt("admin"),
                shardkeeper::proxy::cipher::encrypt("s3cret"),
            ),
            false => ("admin".to_owned(), "s3cret".to_owned()),
        };
        let Some(s) = setup_with_auth(&user, &password, secure) else {
            return;
        };
        let open = [
            ("GET", "/ping", 204),
            ("GET", "/encrypt?msg=a", 200),
            ("GET", "/decrypt?key=consistentcipher&msg=a", 200),
        ];
        let guarded = [
            ("GET", "/query?q=SHOW%20DATABASES", 200),
            ("POST", "/write?db=db1", 204),
            ("GET", "/health", 200),
            ("GET", "/replica?db=db1&meas=cpu", 200),
            ("GET", "/migrate/state", 200),
            ("GET", "/migrate/stats?circle_id=0&type=rebalance", 200),
            ("POST", "/rebalance?circle_id=0&operation=add", 202),
            ("POST", "/recovery?from_circle_id=0&to_circle_id=1", 202),
            ("POST", "/resync", 202),
            ("POST", "/clear?circle_id=0", 202),
            ("GET", "/proxy/migrations", 200),
            ("GET", "/metrics", 200),
            ("GET", "/debug/pprof/heap", 200),
            ("GET", "/debug/pprof/threads", 200),
            ("GET", "/debug/pprof/profile?seconds=0.2", 200),
            ("GET", "/proxy/aside", 200),
        ];
        let basic = common::basic("admin", "s3cret");
        let wrong = common::basic("admin", "wrong");
        for (method, path, want) in open.iter().chain(&guarded) {
            let guarded = !open.iter().any(|(_, p, _)| p == path);
            let body: &[u8] = if *path == "/write?db=db1" {
                b"cpu v=1 1"
            } else {
                b""
            };
            let none = request(s.proxy.addr, method, path, &[], body);
            let bad = request(
                s.proxy.addr,
                method,
                path,
                &[("Authorization", &wrong)],
                body,
            );
            let good = request(
                s.proxy.addr,
                method,
                path,
                &[("Authorization", &basic)],
                body,
            );
            let sep = if path.contains('?') { '&' } else { '?' };
            let with_params = format!("{path}{sep}u=admin&p={}", urlencode("s3cret"));
            let params = request(s.proxy.addr, method, &with_params, &[], body);
            let denied = if guarded { 401 } else { *want };
            assert_eq!(
                [none.status, bad.status, good.status, params.status],
                [denied, denied, *want, *want],
                "{method} {path} (auth_secure {secure})"
            );
            if guarded {
                let text = String::from_utf8_lossy(&none.body);
                assert!(text.contains("authentication failed"), "{path}: {text}");
            }
        }
    }
}

fn setup_with_auth(user: &str, password: &str, secure: bool) -> Option<Setup> {
    let circles = Circles::start(Kind::Shardkeeper, &[1, 1])?;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("proxy.json");
    let extra = json!({ "username": user, "password": password, "auth_secure": secure });
    let proxy = Proxy::start_with(&file, &config(&circles, dir.path(), extra));
    let create = format!(
        "/query?q={}&u=admin&p=s3cret",
        urlencode(&format!("CREATE DATABASE {DB}"))
    );
    ok(proxy.request("POST", &create, b""));
    Some(Setup {
        circles,
        proxy,
        dir,
    })
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn https_enabled_serves_over_tls_with_the_nodes_certificate_setup() {
    use rcgen::{CertificateParams, KeyPair};
    use shardkeeper::client::{ClientOptions, InfluxClient, TlsOptions, WriteTarget};
    let Some(circles) = Circles::start(Kind::Shardkeeper, &[1, 1]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
    let extra = json!({
        "https_enabled": true,
        "https_cert": dir.path().join("cert.pem"),
        "https_key": dir.path().join("key.pem"),
    });
    let proxy = Proxy::start_with(
        &dir.path().join("proxy.json"),
        &config(&circles, dir.path(), extra),
    );
    assert_eq!(proxy.scheme, "https");
    let url = format!("https://localhost:{}", proxy.addr.port());
    let client = InfluxClient::new(
        &url,
        ClientOptions {
            tls: TlsOptions {
                ca_certificate_pem: Some(cert.pem().into_bytes()),
                insecure: false,
            },
            ..ClientOptions::default()
        },
    )
    .unwrap();
    block_on(async {
        assert_eq!(
            client.ping().await.unwrap().version.as_deref(),
            Some("2.4.7")
        );
        client
            .query_checked(None, "CREATE DATABASE tls")
            .await
            .unwrap();
        client
            .write(
                WriteTarget::V1 {
                    db: "tls",
                    rp: None,
                },
                shardkeeper::line_protocol::Precision::Nanoseconds,
                b"cpu v=1 1\n",
            )
            .await
            .unwrap();
    });
    for b in circles.all() {
        wait_until("the point written over TLS", || {
            count(b.query("tls", "SELECT count(v) FROM cpu")) == 1
        });
    }
    // A client that does not trust the certificate is refused.
    let untrusting = InfluxClient::new(&url, ClientOptions::default()).unwrap();
    block_on(async {
        assert!(untrusting.ping().await.is_err());
    });
}

/// The latest migration as `/proxy/migrations` shows it, once it has finished.
fn finished_migration(proxy: &Proxy, id: u64) -> Value {
    let mut job = Value::Null;
    wait_until(&format!("migration {id} to finish"), || {
        let list = ok(proxy.request("GET", "/proxy/migrations", b"")).json();
        job = list["migrations"][0].clone();
        job["id"] == json!(id) && job["state"] == "finished"
    });
    job
}

/// A migration request; its answer's status and text.
fn migrate(proxy: &Proxy, path: &str, body: &[u8]) -> (u16, String) {
    let r = proxy.request("POST", path, body);
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

/// Everything a backend holds of `db`'s measurement `m` in policy `rp`, series by series,
/// and its fields' types: what a copy must reproduce.
fn contents(b: &Backend, db: &str, rp: &str, m: &str) -> (Value, Value) {
    let all = first_result(&b.query(db, &format!("SELECT * FROM {db}.{rp}.{m} GROUP BY *")));
    let types = first_result(&b.query(db, &format!("SHOW FIELD KEYS FROM {db}.{rp}.{m}")));
    (all["series"].clone(), types["series"].clone())
}

/// Measurements `r0..r{n}` of 40 points each through the proxy, with tags (one with an
/// escaped space), and fields of every type (a string with quotes), one minute apart.
fn write_varied(proxy: &Proxy, names: &[String]) {
    for m in names {
        let lines: String = (0..40)
            .map(|t| {
                format!(
                    "{m},host=h{},dc=d\\ {} f={t}.25,i={t}i,s=\"v \\\"{t}\\\"\",b={} {}\n",
                    t % 3,
                    t % 2,
                    t % 2 == 0,
                    1_600_000_000 + t * 60
                )
            })
            .collect();
        let r = request(
            proxy.addr,
            "POST",
            &format!("/write?db={DB}&precision=s"),
            &[],
            lines.as_bytes(),
        );
        assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    }
}

fn count_of(b: &Backend, m: &str) -> u64 {
    count(b.query(DB, &format!("SELECT count(f) FROM {m}")))
}

fn rebalance_moves_what_the_new_ring_places_elsewhere_and_clear_drops_the_copies(kind: Kind) {
    let Some(mut circles) = Circles::start(kind, &[2, 1]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("proxy.json");
    // A few points per window: each measurement is copied in many windows.
    let extra = json!({ "migrate_batch": 7 });
    let mut proxy = Proxy::start_with(&file, &config(&circles, dir.path(), extra.clone()));
    ok(proxy.query("", &format!("CREATE DATABASE {DB}")));
    let names: Vec<String> = (0..16).map(|i| format!("r{i}")).collect();
    write_varied(&proxy, &names);
    // One measurement in a policy of its own, which a new backend lacks too.
    for b in circles.all() {
        ok(b.query(
            DB,
            "CREATE RETENTION POLICY short ON db1 DURATION 1h REPLICATION 1",
        ));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let inrp: String = (0..30)
        .map(|t| format!("inrp,k=v f={t}.5 {}\n", now - 100 + t))
        .collect();
    let r = request(
        proxy.addr,
        "POST",
        &format!("/write?db={DB}&rp=short&precision=s"),
        &[],
        inrp.as_bytes(),
    );
    assert_eq!(r.status, 204);
    for m in &names {
        let owner = &circles.circles[0][owner_among(2, DB, m)];
        wait_until(&format!("{m} on its owner"), || count_of(owner, m) == 40);
    }
    let inrp_owner = &circles.circles[0][owner_among(2, DB, "inrp")];
    wait_until("inrp on its owner", || {
        count(inrp_owner.query(DB, "SELECT count(f) FROM db1.short.inrp")) == 30
    });
    let before: Vec<BTreeSet<String>> = circles.circles[0]
        .iter()
        .map(|b| measurements(b, DB))
        .collect();
    let mut all = names.clone();
    all.push("inrp".into());

    // A third backend, empty, joins circle 0; the proxy restarts on the new config.
    circles.circles[0].push(common::proxy::Backend::start(kind).unwrap());
    proxy.stop();
    proxy = Proxy::start_with(&file, &config(&circles, dir.path(), extra));
    assert_eq!(
        migrate(&proxy, "/rebalance?circle_id=0&operation=add", b""),
        (202, "accepted\n".to_owned())
    );
    let job = finished_migration(&proxy, 1);
    let moved: BTreeSet<&String> = all
        .iter()
        .filter(|m| owner_among(3, DB, m) != owner_among(2, DB, m))
        .collect();
    assert!(!moved.is_empty(), "the ring moves some of 17 measurements");
    assert_eq!(job["migrated"], json!(moved.len()), "{job}");
    assert_eq!(job["failed"], json!(0), "{job}");
    assert_eq!(job["to_migrate"], json!(moved.len()), "{job}");
    let stats = ok(proxy.request("GET", "/migrate/stats?circle_id=0&type=rebalance", b"")).json();
    let stats = stats.as_object().unwrap();
    assert_eq!(stats.len(), 3, "{stats:?}");
    let migrated: u64 = stats
        .values()
        .map(|s| s["migrate_count"].as_u64().unwrap())
        .sum();
    assert_eq!(migrated, moved.len() as u64);
    for s in stats.values() {
        assert_eq!(s["measurement_done"], s["measurement_total"], "{s}");
        assert_eq!(s["database_done"], s["database_total"], "{s}");
    }
    // Each measurement on its new owner as it is on its old one; the old owners as they
    // were; the new backend holds exactly what the new ring gives it.
    let new = &circles.circles[0][2];
    for m in &all {
        let rp = if m == "inrp" { "short" } else { "autogen" };
        let old = &circles.circles[0][owner_among(2, DB, m)];
        let now_owner = &circles.circles[0][owner_among(3, DB, m)];
        let copied = contents(now_owner, DB, rp, m);
        assert!(copied.0.is_array(), "{m} on its owner");
        assert_eq!(copied, contents(old, DB, rp, m), "{m}");
    }
    let owned_by_new: BTreeSet<String> = moved.iter().map(|m| (*m).clone()).collect();
    assert_eq!(measurements(new, DB), owned_by_new);
    for (i, b) in circles.circles[0][..2].iter().enumerate() {
        assert_eq!(
            measurements(b, DB),
            before[i],
            "backend {i} is left as it was"
        );
    }
    // Clear drops the copies left behind.
    assert_eq!(
        migrate(&proxy, "/clear?circle_id=0", b""),
        (202, "accepted\n".to_owned())
    );
    let job = finished_migration(&proxy, 2);
    assert_eq!(job["kind"], "clear");
    assert_eq!(job["migrated"], json!(moved.len()), "{job}");
    for (i, b) in circles.circles[0].iter().enumerate() {
        let owned: BTreeSet<String> = all
            .iter()
            .filter(|m| owner_among(3, DB, m) == i)
            .cloned()
            .collect();
        assert_eq!(measurements(b, DB), owned, "backend {i} holds what it owns");
    }
    for m in &names {
        assert_eq!(count_of(&circles.circles[0][owner_among(3, DB, m)], m), 40);
    }
    let health = ok(proxy.request("GET", "/health", b"")).json();
    for b in health[0]["backends"].as_array().unwrap() {
        assert_eq!(b["load"][DB]["incorrect"], json!(0), "{health}");
    }
    let state = ok(proxy.request("GET", "/migrate/state", b"")).json();
    assert_eq!(state["circles"][0]["is_migrating"], json!(false));
    let status = common::ctl(&["proxy", "migrate-status", "--url", &proxy.url()]);
    assert!(
        status.starts_with(&format!(
            "job 2 clear circle 0: finished, {0}/{0} measurements migrated, 0 failed",
            moved.len()
        )),
        "{status}"
    );
}

#[test]
fn rebalance_moves_what_the_new_ring_places_elsewhere_and_clear_drops_the_copies_shardkeeper() {
    rebalance_moves_what_the_new_ring_places_elsewhere_and_clear_drops_the_copies(
        Kind::Shardkeeper,
    );
}

#[test]
fn rebalance_moves_what_the_new_ring_places_elsewhere_and_clear_drops_the_copies_influxd() {
    rebalance_moves_what_the_new_ring_places_elsewhere_and_clear_drops_the_copies(Kind::Influxd);
}

fn recovery_refills_an_emptied_backend_from_the_other_circle(kind: Kind) {
    let Some(mut s) = setup(kind, json!({ "migrate_batch": 10 })) else {
        return;
    };
    let names: Vec<String> = (0..12).map(|i| format!("r{i}")).collect();
    write_varied(&s.proxy, &names);
    for c in 0..2 {
        for m in &names {
            let owner = &s.circles.circles[c][s.circles.owner(c, DB, m)];
            wait_until(&format!("{m} on circle {c}"), || count_of(owner, m) == 40);
        }
    }
    s.circles.circles[1][0].wipe();
    let victim = &s.circles.circles[1][0];
    let dbs = first_result(&victim.query("", "SHOW DATABASES"));
    assert!(
        !dbs["series"][0]["values"].to_string().contains(DB),
        "emptied: {dbs}"
    );
    let path = format!(
        "/recovery?from_circle_id=0&to_circle_id=1&backend_urls={}",
        urlencode(&victim.url())
    );
    assert_eq!(
        migrate(&s.proxy, &path, b""),
        (202, "accepted\n".to_owned())
    );
    let job = finished_migration(&s.proxy, 1);
    let owned: BTreeSet<String> = names
        .iter()
        .filter(|m| s.circles.owner(1, DB, m) == 0)
        .cloned()
        .collect();
    assert!(!owned.is_empty());
    assert_eq!(job["migrated"], json!(owned.len()), "{job}");
    assert_eq!(job["failed"], json!(0), "{job}");
    assert_eq!(measurements(victim, DB), owned);
    for m in &owned {
        let source = &s.circles.circles[0][s.circles.owner(0, DB, m)];
        assert_eq!(
            contents(victim, DB, "autogen", m),
            contents(source, DB, "autogen", m),
            "{m}"
        );
    }
    // The other backend of circle 1 was not written to.
    let other: BTreeSet<String> = names
        .iter()
        .filter(|m| s.circles.owner(1, DB, m) == 1)
        .cloned()
        .collect();
    assert_eq!(measurements(&s.circles.circles[1][1], DB), other);
    let stats = ok(s
        .proxy
        .request("GET", "/migrate/stats?circle_id=0&type=recovery", b""))
    .json();
    let (migrated, inplace) = stats
        .as_object()
        .unwrap()
        .values()
        .fold((0, 0), |(m, i), s| {
            (
                m + s["migrate_count"].as_u64().unwrap(),
                i + s["inplace_count"].as_u64().unwrap(),
            )
        });
    assert_eq!(
        (migrated, inplace),
        (owned.len() as u64, other.len() as u64)
    );
}

#[test]
fn recovery_refills_an_emptied_backend_from_the_other_circle_shardkeeper() {
    recovery_refills_an_emptied_backend_from_the_other_circle(Kind::Shardkeeper);
}

#[test]
fn recovery_refills_an_emptied_backend_from_the_other_circle_influxd() {
    recovery_refills_an_emptied_backend_from_the_other_circle(Kind::Influxd);
}

#[test]
fn resync_copies_every_measurement_to_every_other_circle() {
    let Some(s) = setup(Kind::Shardkeeper, json!({})) else {
        return;
    };
    // Points written to one circle's owner directly: the other circle lacks them.
    let m = "only_in_0";
    let owner0 = &s.circles.circles[0][s.circles.owner(0, DB, m)];
    ok(request(
        owner0.addr,
        "POST",
        &format!("/write?db={DB}"),
        &[],
        format!("{m},k=a f=1.5,i=2i 1000\n{m},k=b f=2.5,i=3i 2000\n").as_bytes(),
    ));
    assert_eq!(
        migrate(&s.proxy, "/resync", b""),
        (202, "accepted\n".to_owned())
    );
    let job = finished_migration(&s.proxy, 1);
    assert_eq!(job["failed"], json!(0), "{job}");
    let owner1 = &s.circles.circles[1][s.circles.owner(1, DB, m)];
    assert_eq!(
        contents(owner1, DB, "autogen", m),
        contents(owner0, DB, "autogen", m)
    );
    let state = ok(s.proxy.request("GET", "/migrate/state", b"")).json();
    assert_eq!(state["is_resyncing"], json!(false));
}

/// The same 100 000 points written straight to a measurement's owner in each circle,
/// then 1 000 more to circle 0's only and the first 500 deleted from circle 1's: the
/// measurement, and circle 0's and circle 1's owners (circle, index).
fn diverged_pair(s: &Setup) -> (String, (usize, usize), (usize, usize)) {
    let m = "diverged".to_owned();
    let (a, b) = (
        (0, s.circles.owner(0, DB, &m)),
        (1, s.circles.owner(1, DB, &m)),
    );
    let (owner0, owner1) = (&s.circles.circles[a.0][a.1], &s.circles.circles[b.0][b.1]);
    write_many(owner0, &m, 100_000);
    write_many(owner1, &m, 100_000);
    let extra: String = (0..1_000)
        .map(|i| format!("{m},host=h{} v={i}i,f=0.5 {}\n", i % 10, 1_500_100_000 + i))
        .collect();
    ok(request(
        owner0.addr,
        "POST",
        &format!("/write?db={DB}&precision=s"),
        &[],
        extra.as_bytes(),
    ));
    ok(owner1.query(
        DB,
        &format!("DELETE FROM {m} WHERE time < 1500000500000000000"),
    ));
    assert_eq!(
        count(owner0.query(DB, &format!("SELECT count(v) FROM {m}"))),
        101_000
    );
    assert_eq!(
        count(owner1.query(DB, &format!("SELECT count(v) FROM {m}"))),
        99_500
    );
    (m, a, b)
}

/// Between shardkeeper nodes, `path` (a resync or a recovery from circle 0 to 1) moves
/// only the cells that differ: about the 1 500 points of the difference, not 100 000;
/// then circle 1's owner holds `expected` points, as `figures` shows on both when `both`.
fn only_the_difference_moves(path: &str, expected: (u64, u64)) {
    let Some(s) = setup(Kind::Shardkeeper, json!({})) else {
        return;
    };
    let (m, a, b) = diverged_pair(&s);
    assert_eq!(migrate(&s.proxy, path, b""), (202, "accepted\n".to_owned()));
    let job = finished_migration(&s.proxy, 1);
    assert_eq!(job["failed"], json!(0), "{job}");
    let moved = job["points"].as_u64().unwrap();
    eprintln!("{path}: {moved} points moved");
    assert!((1_000..5_000).contains(&moved), "points moved: {job}");
    let (owner0, owner1) = (&s.circles.circles[a.0][a.1], &s.circles.circles[b.0][b.1]);
    let counted = |o: &Backend| count(o.query(DB, &format!("SELECT count(v) FROM {m}")));
    assert_eq!((counted(owner0), counted(owner1)), expected);
    if expected.0 == expected.1 {
        assert_eq!(figures(owner0, &m), figures(owner1, &m));
    }
}

#[test]
fn resync_between_shardkeeper_nodes_moves_only_the_difference_both_ways() {
    // The union, deletes winning over the older points they cover.
    only_the_difference_moves("/resync", (100_500, 100_500));
}

#[test]
fn recovery_between_shardkeeper_nodes_moves_only_the_difference_one_way() {
    // Circle 1's owner gains the 1 000 points it lacked and keeps its delete; circle 0's
    // is not written to.
    only_the_difference_moves(
        "/recovery?from_circle_id=0&to_circle_id=1",
        (101_000, 100_500),
    );
}

/// Writes `n` points of one measurement straight to a backend, 10 series, one second
/// apart, in bodies of 10 000 lines.
fn write_many(b: &Backend, m: &str, n: u64) {
    let mut t = 0;
    while t < n {
        let body: String = (t..(t + 10_000).min(n))
            .map(|i| {
                format!(
                    "{m},host=h{} v={i}i,f={}.5 {}\n",
                    i % 10,
                    i % 977,
                    1_500_000_000 + i
                )
            })
            .collect();
        ok(request(
            b.addr,
            "POST",
            &format!("/write?db={DB}&precision=s"),
            &[],
            body.as_bytes(),
        ));
        t += 10_000;
    }
}

/// A measurement's figures per series: what a copy of it must give back.
fn figures(b: &Backend, m: &str) -> Value {
    first_result(&b.query(
        DB,
        &format!("SELECT count(v), sum(v), sum(f), min(v), max(v) FROM {m} GROUP BY *"),
    ))["series"]
        .clone()
}

/// One circle of one backend holding a big measurement, a second (empty) backend added;
/// the proxy before them. The measurement's name is one the second backend owns.
fn one_measurement_to_move(points: u64, batch: u64) -> (Circles, Proxy, tempfile::TempDir, String) {
    let mut circles = Circles::start(Kind::Shardkeeper, &[1]).unwrap();
    let m = (0..)
        .map(|i| format!("big{i}"))
        .find(|m| owner_among(2, DB, m) == 1)
        .unwrap();
    ok(circles.circles[0][0].query("", &format!("CREATE DATABASE {DB}")));
    write_many(&circles.circles[0][0], &m, points);
    circles.circles[0].push(common::proxy::Backend::start(Kind::Shardkeeper).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let extra = json!({ "migrate_batch": batch });
    let proxy = Proxy::start_with(
        &dir.path().join("proxy.json"),
        &config(&circles, dir.path(), extra),
    );
    (circles, proxy, dir, m)
}

#[test]
fn a_migration_killed_with_the_proxy_resumes_where_it_stopped() {
    const POINTS: u64 = 120_000;
    let (circles, proxy, _dir, m) = one_measurement_to_move(POINTS, 2_000);
    assert_eq!(
        migrate(&proxy, "/rebalance?circle_id=0&operation=add", b""),
        (202, "accepted\n".to_owned())
    );
    let mut copied = 0;
    wait_until("some of the measurement copied", || {
        let j = ok(proxy.request("GET", "/proxy/migrations", b"")).json();
        copied = j["migrations"][0]["points"].as_u64().unwrap_or(0);
        copied > 0
    });
    assert!(copied < POINTS, "killed half-way, not after the end");
    let config = proxy.config.clone();
    proxy.kill9();
    let proxy = Proxy::start(&config);
    let job = finished_migration(&proxy, 1);
    assert_eq!(job["migrated"], json!(1), "{job}");
    assert_eq!(job["failed"], json!(0), "{job}");
    // Every point counted once: the resumed copy began after the last window recorded.
    assert_eq!(job["points"], json!(POINTS), "{job}");
    let (old, new) = (&circles.circles[0][0], &circles.circles[0][1]);
    assert_eq!(
        count(new.query(DB, &format!("SELECT count(v) FROM {m}"))),
        POINTS
    );
    assert_eq!(figures(new, &m), figures(old, &m));
    let ids: Vec<Value> = ok(proxy.request("GET", "/proxy/migrations", b"")).json()["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(1)], "the same job, resumed");
}

/// The proxy's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Migrating a measurement of a million points (SHARDKEEPER_MIGRATE_POINTS to change it)
/// keeps the proxy's memory to a window's worth: its peak resident memory grows by far
/// less than the measurement's size as JSON.
#[test]
fn migrating_a_big_measurement_keeps_the_proxys_memory_flat() {
    let points: u64 = std::env::var("SHARDKEEPER_MIGRATE_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let (circles, proxy, _dir, m) = one_measurement_to_move(points, 25_000);
    let before = peak_rss_kib(proxy.pid());
    let started = std::time::Instant::now();
    assert_eq!(
        migrate(&proxy, "/rebalance?circle_id=0&operation=add", b""),
        (202, "accepted\n".to_owned())
    );
    let mut job = Value::Null;
    let deadline = started + Duration::from_secs(600);
    while job["state"] != "finished" {
        assert!(
            std::time::Instant::now() < deadline,
            "migration of {points} points: {job}"
        );
        std::thread::sleep(Duration::from_millis(200));
        job = ok(proxy.request("GET", "/proxy/migrations", b"")).json()["migrations"][0].clone();
    }
    let elapsed = started.elapsed();
    let after = peak_rss_kib(proxy.pid());
    assert_eq!(job["points"], json!(points), "{job}");
    let new = &circles.circles[0][1];
    assert_eq!(
        count(new.query(DB, &format!("SELECT count(v) FROM {m}"))),
        points
    );
    // The measurement as a query answer is ~60 bytes a point.
    eprintln!(
        "migrated {points} points in {elapsed:?}: proxy VmHWM {before} KiB before, {after} KiB after"
    );
    assert!(
        after - before < 96 * 1024,
        "peak memory grew by {} KiB migrating {points} points",
        after - before
    );
}

#[test]
fn migration_requests_are_checked_with_influx_proxys_words() {
    let Some(s) = setup(Kind::Shardkeeper, json!({})) else {
        return;
    };
    let p = &s.proxy;
    let bad = |path: &str, body: &[u8], message: &str| {
        assert_eq!(
            migrate(p, path, body),
            (400, format!("{message}\n")),
            "{path}"
        );
    };
    bad(
        "/rebalance?circle_id=2&operation=add",
        b"",
        "invalid circle_id",
    );
    bad(
        "/rebalance?circle_id=0&operation=move",
        b"",
        "invalid operation",
    );
    bad(
        "/rebalance?circle_id=0&operation=rm",
        b"{",
        "invalid backends from body",
    );
    bad(
        "/recovery?from_circle_id=0&to_circle_id=0",
        b"",
        "from_circle_id and to_circle_id cannot be same",
    );
    bad("/recovery?from_circle_id=0", b"", "invalid to_circle_id");
    bad(
        "/resync?hours=-1",
        b"",
        "invalid days, hours, minutes or seconds",
    );
    bad("/clear?circle_id=0&cpus=0", b"", "invalid cpus");
    bad("/clear?circle_id=0&cpus=100000", b"", "invalid cpus");
    bad(
        "/clear?circle_id=0&ha_addrs=127.0.0.1:1",
        b"",
        "ha_addrs should contain two addrs at least",
    );
    bad(
        "/clear?circle_id=0&ha_addrs=127.0.0.1:1,nope",
        b"",
        "invalid ha_addrs",
    );
    assert_eq!(p.request("GET", "/clear?circle_id=0", b"").status, 405);
    // Busy: influx-proxy's words, 202.
    ok(p.request("POST", "/migrate/state?circle_id=1&migrating=true", b""));
    assert_eq!(
        migrate(p, "/recovery?from_circle_id=0&to_circle_id=1", b""),
        (202, "circle 0 or 1 is migrating\n".to_owned())
    );
    assert_eq!(
        migrate(p, "/resync", b""),
        (202, "circle 1 is migrating\n".to_owned())
    );
    ok(p.request("POST", "/migrate/state?circle_id=1&migrating=false", b""));
    ok(p.request("POST", "/migrate/state?resyncing=true", b""));
    assert_eq!(
        migrate(p, "/clear?circle_id=0", b""),
        (202, "proxy is resyncing\n".to_owned())
    );
    ok(p.request("POST", "/migrate/state?resyncing=false", b""));
    let list = ok(p.request("GET", "/proxy/migrations", b"")).json();
    assert_eq!(list["migrations"], json!([]), "nothing was started");
    // Stats before any migration: every backend of the circle at zero.
    let stats = ok(p.request("GET", "/migrate/stats?circle_id=1&type=clear", b"")).json();
    assert_eq!(stats.as_object().unwrap().len(), 2);
    for v in stats.as_object().unwrap().values() {
        assert_eq!(
            v,
            &json!({"database_total": 0, "database_done": 0, "measurement_total": 0,
                    "measurement_done": 0, "migrate_count": 0, "inplace_count": 0})
        );
    }
}

/// With `ha_addrs`, every proxy named is told of the migrating state as the job starts and
/// as it ends (`POST /migrate/state`), with the proxy's credentials.
#[test]
fn ha_addrs_are_told_of_the_migrating_state() {
    use common::fake_remote::FakeRemote;
    let Some(s) = setup_with_auth("admin", "s3cret", false) else {
        return;
    };
    let other = FakeRemote::start(Vec::new());
    let path = format!(
        "/clear?circle_id=1&ha_addrs={},{}&u=admin&p=s3cret",
        s.proxy.addr, other.addr
    );
    assert_eq!(
        migrate(&s.proxy, &path, b""),
        (202, "accepted\n".to_owned())
    );
    let told = other.wait_for_requests(2);
    let states: Vec<(String, Option<&str>, Option<&str>)> = told
        .iter()
        .map(|r| (r.path.clone(), r.param("circle_id"), r.param("migrating")))
        .collect();
    assert_eq!(
        states,
        vec![
            ("/migrate/state".to_owned(), Some("1"), Some("true")),
            ("/migrate/state".to_owned(), Some("1"), Some("false")),
        ]
    );
    assert!(told.iter().all(|r| r.method == "POST"));
    assert_eq!(
        told[0].header("Authorization"),
        Some(common::basic("admin", "s3cret").as_str())
    );
    // The proxy told itself too: circle 1 is not migrating once the job is done.
    let state = ok(s
        .proxy
        .request("GET", "/migrate/state?u=admin&p=s3cret", b""))
    .json();
    assert_eq!(state["circles"][1]["is_migrating"], json!(false));
}
