//! Query limits configured in the daemon's config: most series, points and GROUP BY time
//! windows per SELECT, and a query timeout, each refused with InfluxDB 1.x's message
//! (series and windows compared with a real influxd given the same limits).

mod common;
use common::influxd::Influxd;
use common::{query, request, Daemon};
use std::net::SocketAddr;

const DB: &str = "lim";
const T0: i64 = 1_704_067_200_000_000_000; // 2024-01-01T00:00:00Z
const SEC: i64 = 1_000_000_000;

/// Three series of 20 points, one every 10 s.
fn load(addr: SocketAddr) {
    assert_eq!(
        query(addr, "", &format!("CREATE DATABASE {DB}")).status,
        200
    );
    let mut lines = String::new();
    for i in 0..20 {
        for host in ["a", "b", "c"] {
            lines.push_str(&format!(
                "cpu,host={host} usage={i} {}\n",
                T0 + i * 10 * SEC
            ));
        }
    }
    let r = request(
        addr,
        "POST",
        &format!("/write?db={DB}"),
        &[],
        lines.as_bytes(),
    );
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
}

/// The first statement's error, or None when it answered.
fn error_of(addr: SocketAddr, q: &str) -> Option<String> {
    let r = query(addr, DB, q);
    assert_eq!(r.status, 200, "{q}");
    r.json()["results"][0]["error"].as_str().map(str::to_owned)
}

const HOUR: &str = "time >= '2024-01-01T00:00:00Z' AND time < '2024-01-01T01:00:00Z'";

#[test]
fn selects_beyond_the_configured_limits_are_refused_with_influxdbs_messages() {
    let dir = tempfile::tempdir().unwrap();
    let ours = Daemon::start_with_config(
        dir.path(),
        "max_select_series = 2\nmax_select_point = 25\nmax_select_buckets = 10\n",
    );
    load(ours.addr);
    let cases: [(String, Option<&str>); 8] = [
        (
            "SELECT usage FROM cpu".into(),
            Some("max-select-series limit exceeded: (3/2)"),
        ),
        (
            "SELECT max(usage) FROM cpu GROUP BY host".into(),
            Some("max-select-series limit exceeded: (3/2)"),
        ),
        ("SELECT usage FROM cpu WHERE host = 'a'".into(), None),
        (
            "SELECT usage FROM cpu WHERE host = 'a' OR host = 'b'".into(),
            // 1.x's own spelling.
            Some("max-select-point limit exceeed: (40/25)"),
        ),
        (
            "SELECT usage FROM cpu WHERE host != 'c' AND usage < 12".into(),
            None,
        ),
        (
            format!("SELECT count(usage) FROM cpu WHERE host = 'a' AND {HOUR} GROUP BY time(1m)"),
            Some("max-select-buckets limit exceeded: (60/10)"),
        ),
        (
            format!("SELECT count(usage) FROM cpu WHERE host = 'a' AND {HOUR} GROUP BY time(6m)"),
            None,
        ),
        (
            // Without a start the windows are not counted, as in 1.x.
            "SELECT count(usage) FROM cpu WHERE host = 'a' AND time < '2024-01-01T00:10:00Z' GROUP BY time(1m)"
                .into(),
            None,
        ),
    ];
    for (q, expected) in &cases {
        assert_eq!(error_of(ours.addr, q).as_deref(), *expected, "{q}");
    }
    // A subquery's rows count as the outer statement's points.
    let q = "SELECT sum(u) FROM (SELECT usage AS u FROM cpu WHERE host = 'a' OR host = 'b')";
    assert_eq!(
        error_of(ours.addr, q).as_deref(),
        Some("max-select-point limit exceeed: (40/25)")
    );
    ours.stop();
}

#[test]
fn series_and_window_limits_answer_as_influxdb_does() {
    let Some(influxd) =
        Influxd::start_with("[coordinator]\n  max-select-series = 2\n  max-select-buckets = 10\n")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ours = Daemon::start_with_config(
        dir.path(),
        "max_select_series = 2\nmax_select_buckets = 10\n",
    );
    load(influxd.addr);
    load(ours.addr);
    for q in [
        "SELECT usage FROM cpu".to_owned(),
        "SELECT usage FROM cpu WHERE host = 'a' OR host = 'b'".to_owned(),
        format!("SELECT count(usage) FROM cpu WHERE host = 'a' AND {HOUR} GROUP BY time(1m)"),
        format!("SELECT count(usage) FROM cpu WHERE host = 'a' AND {HOUR} GROUP BY time(6m)"),
        format!("SELECT count(usage) FROM cpu WHERE host = 'a' AND {HOUR} GROUP BY time(7m, 3m)"),
    ] {
        let (theirs, mine) = (query(influxd.addr, DB, &q), query(ours.addr, DB, &q));
        assert_eq!(
            (theirs.status, theirs.json()),
            (mine.status, mine.json()),
            "{q}"
        );
    }
    ours.stop();
}

#[test]
fn a_query_past_its_timeout_is_stopped_with_influxdbs_message() {
    let dir = tempfile::tempdir().unwrap();
    let ours = Daemon::start(dir.path());
    load(ours.addr);
    ours.stop();
    // One nanosecond: any query outlives it.
    let ours = Daemon::start_with_config(dir.path(), "query_timeout_seconds = 0.000000001\n");
    let r = query(
        ours.addr,
        DB,
        "SELECT usage FROM cpu; SELECT count(usage) FROM cpu",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["results"],
        serde_json::json!([{"statement_id": 0, "error": "query-timeout limit exceeded"}]),
        "the statements after the timeout do not run"
    );
    // Writes are not queries: the node goes on taking them.
    let r = request(
        ours.addr,
        "POST",
        &format!("/write?db={DB}"),
        &[],
        b"cpu,host=d usage=1 0\n",
    );
    assert_eq!(r.status, 204);
    ours.stop();

    // Without a timeout (the default) the same data answers.
    let ours = Daemon::start(dir.path());
    let r = query(ours.addr, DB, "SELECT count(usage) FROM cpu");
    assert_eq!(r.json()["results"][0]["series"][0]["values"][0][1], 61);
    ours.stop();
}

/// `series` series `s=0..` of measurement `m`, each with a point every 100 µs over the
/// first millisecond after T0 (ten points).
fn load_series(addr: SocketAddr, series: usize) {
    assert_eq!(
        query(addr, "", &format!("CREATE DATABASE {DB}")).status,
        200
    );
    let mut lines = String::new();
    for s in 0..series {
        for k in 0..10 {
            lines.push_str(&format!("m,s={s} v={k} {}\n", T0 + k * 100_000));
        }
    }
    let r = request(
        addr,
        "POST",
        &format!("/write?db={DB}"),
        &[],
        lines.as_bytes(),
    );
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
}

/// The first millisecond after T0, where `load_series` wrote.
fn first_millisecond() -> String {
    format!("time >= {T0} AND time < {}", T0 + 1_000_000)
}

/// A query that is long (a window every 2 ns of a millisecond, filled, for each of the
/// series) but holds little at a time (one series' windows, and one row of each kept).
fn long_query() -> String {
    format!(
        "SELECT last(v) FROM m WHERE {} GROUP BY time(2ns), s fill(previous) LIMIT 1",
        first_millisecond()
    )
}

/// A process's figure from `/proc/<pid>/status`, in KiB.
fn proc_status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

const BUDGET_MIB: u64 = 32;
/// What the daemon itself holds besides a query's budget: its code, threads, allocator
/// arenas, shard heads and indexes (an idle node with this data measured 20-30 MiB).
const BASELINE_MIB: u64 = 64;

const BUDGET_MESSAGE: &str = "query needs more memory than max_request_memory_mib allows \
                              (32 MiB): narrow its time range or series, or use a longer \
                              GROUP BY time() interval";

#[test]
fn queries_beyond_the_memory_budget_are_refused_and_the_node_stays_within_it() {
    let dir = tempfile::tempdir().unwrap();
    let ours = Daemon::start_with_config(
        dir.path(),
        &format!("max_request_memory_mib = {BUDGET_MIB}\n"),
    );
    load_series(ours.addr, 60);
    let range = first_millisecond();
    // A million windows for each of 60 series.
    let windows_by_series = format!("SELECT count(v) FROM m WHERE {range} GROUP BY time(1ns), s");
    assert_eq!(
        error_of(ours.addr, &windows_by_series).as_deref(),
        Some(BUDGET_MESSAGE)
    );
    // Ten years of 7-minute windows, filled, for each series, inside a subquery.
    let filled = format!(
        "SELECT max(v) FROM (SELECT last(v) AS v FROM m WHERE time >= {} AND time < {} \
         GROUP BY time(7m), * fill(previous))",
        T0 - 10 * 365 * 86_400 * SEC,
        T0 + 1_000_000
    );
    assert_eq!(
        error_of(ours.addr, &filled).as_deref(),
        Some(BUDGET_MESSAGE)
    );
    // A raw answer larger than the budget.
    let many = vec!["SELECT * FROM m"; 500].join(";");
    let r = query(ours.addr, DB, &many);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let results = r.json()["results"].as_array().cloned().unwrap_or_default();
    let last = results.last().expect("a result");
    assert_eq!(last["error"].as_str(), Some(BUDGET_MESSAGE), "{last}");

    // Within the budget the same data answers in full.
    let q = format!("SELECT count(v) FROM m WHERE {range} GROUP BY time(100u), s");
    let r = query(ours.addr, DB, &q);
    let series = common::first_result(&r)["series"]
        .as_array()
        .cloned()
        .expect("series");
    assert_eq!(series.len(), 60, "{}", String::from_utf8_lossy(&r.body));
    for s in &series {
        let counts: Vec<i64> = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row[1].as_i64().unwrap())
            .collect();
        assert_eq!(counts, vec![1; 10], "{s}");
    }

    let peak_mib = proc_status_kib(ours.child.id(), "VmHWM") / 1024;
    assert!(
        peak_mib < BASELINE_MIB + BUDGET_MIB,
        "peak RSS {peak_mib} MiB, over {BASELINE_MIB} + {BUDGET_MIB} MiB"
    );
    ours.stop();
}

#[test]
fn a_group_by_time_of_no_or_negative_duration_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ours = Daemon::start(dir.path());
    load(ours.addr);
    for q in [
        "SELECT count(usage) FROM cpu GROUP BY time(0s)",
        "SELECT count(usage) FROM cpu GROUP BY time(0s, 1s)",
        "SELECT count(usage) FROM cpu GROUP BY time(-1s)",
        "SELECT count(u) FROM (SELECT usage AS u FROM cpu) GROUP BY time(0ns)",
    ] {
        assert_eq!(
            error_of(ours.addr, q).as_deref(),
            Some("time dimension must have a positive duration"),
            "{q}"
        );
    }
    ours.stop();
}

#[test]
fn the_timeout_stops_a_long_filled_query() {
    let dir = tempfile::tempdir().unwrap();
    let ours = Daemon::start_with_config(dir.path(), "query_timeout_seconds = 1\n");
    load_series(ours.addr, 200);
    assert_eq!(
        error_of(ours.addr, &long_query()).as_deref(),
        Some("query-timeout limit exceeded")
    );
    // The node is free again: a small query answers.
    let q = format!(
        "SELECT count(v) FROM m WHERE {} AND s = '7'",
        first_millisecond()
    );
    let r = query(ours.addr, DB, &q);
    assert_eq!(r.json()["results"][0]["series"][0]["values"][0][1], 10);
    ours.stop();
}

/// EXPLAIN ANALYZE runs its SELECT under the SELECT's limits: the timeout stops it, and
/// so does KILL QUERY (it is listed by SHOW QUERIES under its own text meanwhile).
#[test]
fn explain_analyze_is_stopped_by_the_timeout_and_by_kill_query() {
    let dir = tempfile::tempdir().unwrap();
    let ours = Daemon::start_with_config(dir.path(), "query_timeout_seconds = 1\n");
    load_series(ours.addr, 200);
    let analyze = format!("EXPLAIN ANALYZE {}", long_query());
    assert_eq!(
        error_of(ours.addr, &analyze).as_deref(),
        Some("query-timeout limit exceeded")
    );
    ours.stop();

    let dir = tempfile::tempdir().unwrap();
    let ours = Daemon::start(dir.path());
    load_series(ours.addr, 200);
    let addr = ours.addr;
    let running = {
        let analyze = analyze.clone();
        std::thread::spawn(move || query(addr, DB, &analyze))
    };
    let mut id = None;
    common::wait_until("SHOW QUERIES to list the EXPLAIN ANALYZE", || {
        let r = query(addr, "", "SHOW QUERIES");
        let rows = r.json()["results"][0]["series"][0]["values"].clone();
        id = rows.as_array().into_iter().flatten().find_map(|row| {
            let text = row[1].as_str()?;
            text.starts_with("EXPLAIN ANALYZE SELECT last(v)")
                .then(|| row[0].as_u64())?
        });
        id.is_some()
    });
    let id = id.expect("listed");
    let r = query(addr, "", &format!("KILL QUERY {id}"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = running.join().expect("the query's client");
    assert_eq!(
        r.json()["results"][0]["error"].as_str(),
        Some("query interrupted"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    ours.stop();
}

/// Whether one of the daemon's query threads is running (on a core or ready to).
fn a_query_thread_runs(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ...`
        stat.contains("(query")
            && stat
                .rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('R'))
    })
}

#[test]
fn ping_answers_while_two_long_queries_run() {
    let dir = tempfile::tempdir().unwrap();
    // The timeout ends the queries once the pings are done.
    let ours = Daemon::start_with_config(dir.path(), "query_timeout_seconds = 20\n");
    load_series(ours.addr, 400);
    let addr = ours.addr;
    let queries: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || query(addr, DB, &long_query())))
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut answered_while_busy = 0;
    while answered_while_busy < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "no ping answered in time"
        );
        let ping = request(addr, "GET", "/ping", &[], b"");
        let busy = queries.iter().all(|q| !q.is_finished());
        assert_eq!(ping.status, 204);
        assert!(
            busy,
            "a query finished before {} pings were answered beside it",
            5 - answered_while_busy
        );
        answered_while_busy += 1;
    }
    for q in queries {
        let r = q.join().expect("query thread");
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json()["results"][0]["error"].as_str(),
            Some("query-timeout limit exceeded")
        );
    }
    ours.stop();
}

#[test]
fn sigterm_stops_the_node_while_a_long_query_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut ours = Daemon::start_with_config(dir.path(), "shutdown_grace_seconds = 2\n");
    load_series(ours.addr, 400);
    let addr = ours.addr;
    let pid = ours.child.id();
    let long = std::thread::spawn(move || {
        // The connection may close without an answer when the node stops.
        std::panic::catch_unwind(|| query(addr, DB, &long_query())).ok()
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !a_query_thread_runs(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "the query never started"
        );
        std::thread::yield_now();
    }
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = common::wait_bounded(&mut ours.child, std::time::Duration::from_secs(60));
    assert!(status.code().is_some(), "exited by itself: {status:?}");
    if let Ok(Some(r)) = long.join() {
        let results = r.json()["results"].clone();
        assert!(
            results[0]["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("query interrupted")),
            "{results}"
        );
    }
}

#[test]
fn a_query_whose_client_hangs_up_is_stopped() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let ours = Daemon::start(dir.path());
    load_series(ours.addr, 400);
    let pid = ours.child.id();
    let body = format!("q={}&db={DB}", common::urlencode(&long_query()));
    let mut client = std::net::TcpStream::connect(ours.addr).expect("connect");
    write!(
        client,
        "POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !a_query_thread_runs(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "the query never started"
        );
        std::thread::yield_now();
    }
    drop(client);
    // A query thread that keeps running would run for minutes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while a_query_thread_runs(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "the query went on after its client left"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The node is free for the next one.
    let q = format!(
        "SELECT count(v) FROM m WHERE {} AND s = '7'",
        first_millisecond()
    );
    let r = query(ours.addr, DB, &q);
    assert_eq!(r.json()["results"][0]["series"][0]["values"][0][1], 10);
    ours.stop();
}

/// A query that changes nothing is first tried on the request's own worker; one that runs
/// out of that budget starts over on the query threads. Whichever way it runs (every
/// attempt given up at once, none tried, the default), the answers are the same, and a
/// writing statement runs once.
#[test]
fn answers_are_the_same_whether_a_query_runs_inline_or_starts_over_on_the_pool() {
    let mut answers = Vec::new();
    for config in [
        "query_inline_budget_ms = 0.000001\n",
        "query_inline_budget_ms = 0\n",
        "",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let ours = Daemon::start_with_config(dir.path(), config);
        load(ours.addr);
        let mut seen = Vec::new();
        for q in [
            "SELECT last(usage) FROM cpu WHERE host = 'b'",
            "SELECT max(usage), count(usage) FROM cpu GROUP BY time(1m), host",
            "SHOW TAG VALUES WITH KEY = host; SELECT * FROM cpu ORDER BY time DESC LIMIT 2",
            "CREATE RETENTION POLICY once ON lim DURATION 1h REPLICATION 1; SHOW RETENTION POLICIES",
        ] {
            let r = query(ours.addr, DB, q);
            assert_eq!(r.status, 200, "{config}{q}");
            seen.push(r.json());
        }
        // Run again, the policy exists: the statement fails the same way each time.
        let again = query(
            ours.addr,
            DB,
            "CREATE RETENTION POLICY once ON lim DURATION 2h REPLICATION 1",
        );
        seen.push(again.json());
        answers.push(seen);
        ours.stop();
    }
    assert!(answers[0][0]["results"][0]["series"][0]["values"][0][1] == 19);
    assert_eq!(answers[0], answers[1], "given up at once / never tried");
    assert_eq!(answers[1], answers[2], "never tried / the default");
}
