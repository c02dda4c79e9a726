//! Subscriptions forward the writes of a database and retention policy, as InfluxDB 1.6's
//! subscriber does: what a destination receives (compared with what a real influxd sends
//! to the same kind of receiver, byte for byte), ALL and ANY, UDP, a destination that never
//! answers (no write waits for it; its queue stays bounded, the drops counted), and the
//! subscriptions' life: across a restart, a DROP, a dropped database or policy, a kv
//! backup restored.

mod common;
use common::fake_remote::{Answer, FakeRemote, Received};
use common::influxd::Influxd;
use common::{first_result, ok, query, request, wait_until, Daemon, TempNode};
use serde_json::Value;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

fn run(addr: SocketAddr, q: &str) {
    first_result(&query(addr, "", q));
}

fn write(addr: SocketAddr, params: &str, body: &str) {
    let r = request(
        addr,
        "POST",
        &format!("/write?{params}"),
        &[],
        body.as_bytes(),
    );
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
}

fn subscribe(addr: SocketAddr, name: &str, on: &str, mode: &str, urls: &[String]) {
    let urls: Vec<String> = urls.iter().map(|u| format!("'{u}'")).collect();
    run(
        addr,
        &format!(
            "CREATE SUBSCRIPTION {name} ON {on} DESTINATIONS {mode} {}",
            urls.join(", ")
        ),
    );
}

fn bodies(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

/// The value of one `/metrics` sample (its name and labels as written), if present.
fn metric(addr: SocketAddr, sample: &str) -> Option<f64> {
    let r = ok(request(addr, "GET", "/metrics", &[], b""));
    String::from_utf8_lossy(&r.body).lines().find_map(|l| {
        l.strip_prefix(sample)
            .and_then(|v| v.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    })
}

/// A UDP receiver on loopback, and the datagrams it got.
struct UdpReceiver(UdpSocket);

impl UdpReceiver {
    fn start() -> UdpReceiver {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        s.set_read_timeout(Some(common::WAIT_LIMIT))
            .expect("timeout");
        UdpReceiver(s)
    }

    fn url(&self) -> String {
        format!("udp://{}", self.0.local_addr().expect("udp address"))
    }

    /// The next `n` datagrams (fails if they do not come within the wait limit).
    fn datagrams(&self, n: usize) -> Vec<String> {
        let mut buf = vec![0; 65536];
        (0..n)
            .map(|_| {
                let len = self.0.recv(&mut buf).expect("a datagram in time");
                String::from_utf8_lossy(&buf[..len]).into_owned()
            })
            .collect()
    }
}

#[test]
fn a_subscription_forwards_exactly_the_points_accepted_with_db_and_rp_in_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let node = Daemon::start(dir.path());
    let remote = FakeRemote::start(vec![]);
    run(node.addr, "CREATE DATABASE d");
    run(
        node.addr,
        "CREATE RETENTION POLICY r2 ON d DURATION 1d REPLICATION 1",
    );
    subscribe(node.addr, "s", "d.r2", "ALL", &[remote.url()]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Tags out of order, fields as written, seconds precision: sent sorted, as written,
    // in nanoseconds.
    write(
        node.addr,
        "db=d&rp=r2&precision=s",
        &format!("cpu,z=1,a=2 v=1.0,b=t,s=\"x y\" {now}\nmem free=2i {now}\n"),
    );
    // Not subscribed: the default policy.
    write(node.addr, "db=d", &format!("cpu v=9 {now}000000000\n"));
    // A partial write: only its accepted point goes.
    let r = request(
        node.addr,
        "POST",
        "/write?db=d&rp=r2",
        &[],
        format!("cpu v=3 {now}000000000\ncpu v=\"text\" {now}000000001\n").as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let got = remote.wait_for_requests(2);
    let t = format!("{now}000000000");
    // Sends run side by side (write_concurrency): their order is not the writes'.
    let mut got_bodies = bodies(&got);
    got_bodies.sort();
    assert_eq!(
        got_bodies,
        vec![
            format!("cpu v=3 {t}\n"),
            format!("cpu,a=2,z=1 v=1.0,b=t,s=\"x y\" {t}\nmem free=2i {t}\n"),
        ]
    );
    for r in &got {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/write"));
        assert_eq!(
            r.target, "/write?consistency=&db=d&precision=ns&rp=r2",
            "1.6's client's query"
        );
        assert_eq!(r.header("User-Agent"), Some("InfluxDBClient"));
    }
    // The write to autogen was not forwarded: a later write to r2 is the next request.
    write(node.addr, "db=d&rp=r2", &format!("last v=1 {t}\n"));
    let got = remote.wait_for_requests(3);
    assert_eq!(bodies(&got[2..]), vec![format!("last v=1 {t}\n")]);
    assert_eq!(remote.received().len(), 3);
    // Counted as 1.6 names the counters.
    let stats = first_result(&query(node.addr, "", "SHOW STATS FOR 'subscriber'"));
    let series = stats["series"].as_array().unwrap();
    assert_eq!(series[0]["values"][0], serde_json::json!([0, 4, 0]));
    assert_eq!(series[1]["tags"]["destination"], Value::from(remote.url()));
    assert_eq!(series[1]["tags"]["mode"], Value::from("ALL"));
    assert_eq!(series[1]["values"][0], serde_json::json!([4, 0]));
}

#[test]
fn all_reaches_every_destination_and_any_takes_them_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    let node = Daemon::start(dir.path());
    let (a, b) = (FakeRemote::start(vec![]), FakeRemote::start(vec![]));
    run(node.addr, "CREATE DATABASE alldb");
    run(node.addr, "CREATE DATABASE anydb");
    subscribe(node.addr, "s", "alldb.autogen", "ALL", &[a.url(), b.url()]);
    subscribe(node.addr, "s", "anydb.autogen", "ANY", &[a.url(), b.url()]);
    for i in 0..4 {
        write(node.addr, "db=alldb", &format!("m v={i} {i}\n"));
        write(node.addr, "db=anydb", &format!("m v={i} {i}\n"));
    }
    let of = |remote: &FakeRemote, db: &str| -> Vec<String> {
        let got: Vec<Received> = remote
            .received()
            .into_iter()
            .filter(|r| r.param("db") == Some(db))
            .collect();
        let mut b = bodies(&got);
        b.sort();
        b
    };
    wait_until(
        "every batch at both, and the ANY ones at one of them",
        || {
            of(&a, "alldb").len() == 4
                && of(&b, "alldb").len() == 4
                && of(&a, "anydb").len() + of(&b, "anydb").len() == 4
        },
    );
    let all: Vec<String> = (0..4).map(|i| format!("m v={i} {i}\n")).collect();
    assert_eq!((of(&a, "alldb"), of(&b, "alldb")), (all.clone(), all));
    // In turn: each destination takes every other batch.
    assert_eq!(
        (of(&a, "anydb"), of(&b, "anydb")),
        (
            vec!["m v=0 0\n".to_string(), "m v=2 2\n".to_string()],
            vec!["m v=1 1\n".to_string(), "m v=3 3\n".to_string()]
        )
    );
}

#[test]
fn any_passes_a_batch_its_destination_failed_to_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let node = Daemon::start(dir.path());
    let failing = FakeRemote::start(vec![]);
    failing.otherwise(Some(Answer::error(500, "down")));
    let good = FakeRemote::start(vec![]);
    run(node.addr, "CREATE DATABASE d");
    subscribe(
        node.addr,
        "s",
        "d.autogen",
        "ANY",
        &[failing.url(), good.url()],
    );
    for i in 0..4 {
        write(node.addr, "db=d", &format!("m v={i} {i}\n"));
    }
    let got = good.wait_for_requests(4);
    let mut got = bodies(&got);
    got.sort();
    assert_eq!(
        got,
        (0..4).map(|i| format!("m v={i} {i}\n")).collect::<Vec<_>>()
    );
    // The two batches it was offered first, each failed once.
    assert_eq!(failing.received().len(), 2);
}

#[test]
fn udp_destinations_get_a_datagram_per_point() {
    let dir = tempfile::tempdir().unwrap();
    let node = Daemon::start(dir.path());
    let udp = UdpReceiver::start();
    run(node.addr, "CREATE DATABASE d");
    subscribe(node.addr, "u", "d.autogen", "ALL", &[udp.url()]);
    write(
        node.addr,
        "db=d",
        "cpu,host=a v=1 1000\ncpu,host=b v=2,s=\"two words\" 2000\nmem v=3i 3000\n",
    );
    assert_eq!(
        udp.datagrams(3),
        vec![
            "cpu,host=a v=1 1000",
            "cpu,host=b v=2,s=\"two words\" 2000",
            "mem v=3i 3000"
        ]
    );
}

#[test]
fn a_destination_that_never_answers_delays_no_write_and_its_queue_stays_bounded() {
    let node = TempNode::start(
        "[subscriber]\nhttp_timeout_seconds = 600\nwrite_buffer_size = 2\nwrite_concurrency = 1\n",
    );
    let addr = node.daemon.addr;
    let dead = FakeRemote::start(vec![]);
    dead.otherwise(Some(Answer::never()));
    run(addr, "CREATE DATABASE d");
    subscribe(addr, "s", "d.autogen", "ALL", &[dead.url()]);
    let started = Instant::now();
    for i in 0..20 {
        write(addr, "db=d", &format!("m v={i} {i}\n"));
    }
    // Twenty acknowledgments while the destination holds its first request: none waited
    // for the 600 s it may take.
    assert!(started.elapsed() < Duration::from_secs(300));
    dead.wait_for_requests(1);
    let sample = |name: &str| {
        let labels = format!(
            "{{database=\"d\",retention_policy=\"autogen\",subscription=\"s\",destination=\"{}\"}}",
            dead.url()
        );
        metric(addr, &format!("shardkeeper_subscriber_{name}{labels}")).unwrap_or(-1.0)
    };
    let (dropped, queued) = (sample("dropped_batches_total"), sample("queued_batches"));
    // One batch under way, at most two queued, the rest dropped and counted.
    assert!(queued <= 2.0, "queued {queued}");
    assert!((17.0..=18.0).contains(&dropped), "dropped {dropped}");
    assert_eq!(dead.received().len(), 1, "one send at a time");
    let stats = first_result(&query(addr, "", "SHOW STATS FOR 'subscriber'"));
    let failures = &stats["series"][0]["values"][0][2];
    assert_eq!(
        failures.as_f64(),
        Some(dropped),
        "each drop is a write failure, as in 1.6"
    );
}

#[test]
fn a_subscription_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let remote = FakeRemote::start(vec![]);
    let node = Daemon::start(dir.path());
    run(node.addr, "CREATE DATABASE d");
    subscribe(node.addr, "s", "d.autogen", "ANY", &[remote.url()]);
    let shown = query(node.addr, "", "SHOW SUBSCRIPTIONS").json();
    node.kill9();
    let node = Daemon::start(dir.path());
    assert_eq!(query(node.addr, "", "SHOW SUBSCRIPTIONS").json(), shown);
    write(node.addr, "db=d", "m v=1 1\n");
    assert_eq!(bodies(&remote.wait_for_requests(1)), vec!["m v=1 1\n"]);
}

#[test]
fn drop_subscription_and_a_dropped_database_or_policy_stop_the_forwarding() {
    let dir = tempfile::tempdir().unwrap();
    let node = Daemon::start(dir.path());
    let (old, canary) = (FakeRemote::start(vec![]), FakeRemote::start(vec![]));
    run(node.addr, "CREATE DATABASE d");
    run(
        node.addr,
        "CREATE RETENTION POLICY r ON d DURATION 1d REPLICATION 1",
    );
    subscribe(node.addr, "gone", "d.autogen", "ALL", &[old.url()]);
    write(node.addr, "db=d", "m v=1 1\n");
    old.wait_for_requests(1);
    run(node.addr, "DROP SUBSCRIPTION gone ON d.autogen");
    // Another subscription of the same policy hears the next write: the dropped one must
    // not have.
    subscribe(node.addr, "canary", "d.autogen", "ALL", &[canary.url()]);
    write(node.addr, "db=d", "m v=2 2\n");
    canary.wait_for_requests(1);
    assert_eq!(old.received().len(), 1);

    // A dropped policy takes its subscriptions along; one of the same name created again
    // has none.
    subscribe(node.addr, "on_r", "d.r", "ALL", &[old.url()]);
    run(node.addr, "DROP RETENTION POLICY r ON d");
    run(
        node.addr,
        "CREATE RETENTION POLICY r ON d DURATION 1d REPLICATION 1",
    );
    subscribe(node.addr, "canary", "d.r", "ALL", &[canary.url()]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    write(node.addr, "db=d&rp=r", &format!("m v=3 {now}\n"));
    canary.wait_for_requests(2);
    assert_eq!(old.received().len(), 1);

    // So does a dropped database.
    run(node.addr, "DROP DATABASE d");
    let r = first_result(&query(node.addr, "", "SHOW SUBSCRIPTIONS"));
    assert!(r["series"].is_null(), "{r}");
    run(node.addr, "CREATE DATABASE d");
    subscribe(node.addr, "canary2", "d.autogen", "ALL", &[canary.url()]);
    write(node.addr, "db=d", "m v=4 4\n");
    canary.wait_for_requests(3);
    assert_eq!(old.received().len(), 1);
    assert_eq!(canary.received().len(), 3);
}

#[test]
fn a_kv_backup_carries_the_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let node = Daemon::start(dir.path());
    run(node.addr, "CREATE DATABASE d");
    subscribe(
        node.addr,
        "s",
        "d.autogen",
        "ALL",
        &["http://127.0.0.1:9".to_string()],
    );
    let shown = query(node.addr, "", "SHOW SUBSCRIPTIONS").json();
    let kv = ok(request(node.addr, "GET", "/api/v2/backup/kv", &[], b"")).body;
    run(node.addr, "DROP SUBSCRIPTION s ON d.autogen");
    ok(request(node.addr, "POST", "/api/v2/restore/kv", &[], &kv));
    assert_eq!(query(node.addr, "", "SHOW SUBSCRIPTIONS").json(), shown);
}

/// What each server's subscriptions received: influxd's and ours, each to receivers of
/// its own, the same lines written to both.
#[test]
fn destinations_receive_what_influxdb_1_6_sends_them() {
    let Some(influxd) = Influxd::start_with("[subscriber]\n  enabled = true\n") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ours = Daemon::start(dir.path());
    let servers = [influxd.addr, ours.addr];
    let remotes = [FakeRemote::start(vec![]), FakeRemote::start(vec![])];
    let udps = [UdpReceiver::start(), UdpReceiver::start()];
    for (i, addr) in servers.into_iter().enumerate() {
        run(addr, "CREATE DATABASE \"my db\"");
        run(
            addr,
            "CREATE RETENTION POLICY \"r&2\" ON \"my db\" DURATION 1d REPLICATION 1",
        );
        // Credentials, a path and a query of the destination's own.
        let http = format!(
            "http://us%20er:pa:ss@{}/pre/./fix/?u=x&db=no",
            remotes[i].addr
        );
        subscribe(
            addr,
            "s",
            "\"my db\".\"r&2\"",
            "ALL",
            &[http, udps[i].url()],
        );
    }
    // influxd starts a subscription when its meta store says so: its statistics list the
    // destinations once it has.
    wait_until("influxd's subscription to start", || {
        let r = first_result(&query(influxd.addr, "", "SHOW STATS FOR 'subscriber'"));
        r["series"].as_array().is_some_and(|s| s.len() == 3)
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let writes = [
        (
            "precision=s",
            format!(
                "cpu,z=1,a=x\\ y v=1.0,b=t,s=\"q\\\"uo te\",i=-3i {now}\n\
                 we\\,ird,t=\\=eq f\\ k=1e3 {now}\n"
            ),
        ),
        (
            "precision=ms",
            format!("mem free=2i,used=0.5 {now}123\nmem free=3i {now}456\n"),
        ),
    ];
    for addr in servers {
        for (precision, body) in &writes {
            write(addr, &format!("db=my+db&rp=r%262&{precision}"), body);
        }
        // SELECT ... INTO writes too: points not read from a line.
        run(
            addr,
            "SELECT v, i INTO \"my db\".\"r&2\".copy FROM \"my db\".\"r&2\".cpu GROUP BY *",
        );
    }
    let [theirs, ours_got] = [&remotes[0], &remotes[1]].map(|r| r.wait_for_requests(3));
    let shape = |r: &Received| {
        let mut headers: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(k, _)| {
                matches!(
                    k.to_ascii_lowercase().as_str(),
                    "authorization" | "user-agent" | "content-type" | "content-encoding"
                )
            })
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        headers.sort();
        (
            r.method.clone(),
            r.target.clone(),
            headers,
            String::from_utf8_lossy(&r.body).into_owned(),
        )
    };
    // Both send batches side by side: compared in order of their bodies.
    let sorted = |got: &[Received]| {
        let mut s: Vec<_> = got.iter().map(shape).collect();
        s.sort_by(|a, b| a.3.cmp(&b.3));
        s
    };
    assert_eq!(sorted(&theirs), sorted(&ours_got));
    assert!(
        ours_got
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).starts_with("copy,a=x\\ y,z=1 i=-3i,v=1 ")),
        "{ours_got:?}"
    );
    let [mut theirs, mut ours_got] = [&udps[0], &udps[1]].map(|u| u.datagrams(5));
    theirs.sort();
    ours_got.sort();
    assert_eq!(theirs, ours_got);
}
