//! `shardkeeper bench crash`: the kill loop users run against a node, and the proof that its
//! checks find a server that loses acknowledged points.

mod common;
use common::BIN;
use std::process::Command;

fn bench_crash(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(BIN)
        .args(["bench", "crash", "--json"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("no JSON summary ({e}): {stdout}\nstderr: {stderr}"));
    (out.status.code().unwrap_or(-1), report, stderr)
}

fn count(report: &serde_json::Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing from {report}"))
}

#[test]
fn kill_9_cycles_lose_nothing_acknowledged() {
    let (code, report, stderr) = bench_crash(&[
        "--cycles",
        "4",
        "--points-per-cycle",
        "4000",
        "--batch",
        "250",
    ]);
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert_eq!(count(&report, "cycles"), 4);
    assert!(count(&report, "acknowledged_points") >= 4 * 250, "{report}");
    for key in ["lost", "wrong", "invented", "resurrected"] {
        assert_eq!(count(&report, key), 0, "{key}: {report}");
    }
    assert!(report["restart_ms_max"].as_f64().unwrap() > 0.0, "{report}");
}

#[test]
fn sigterm_cycles_lose_nothing_acknowledged() {
    let (code, report, stderr) = bench_crash(&[
        "--cycles",
        "2",
        "--points-per-cycle",
        "2000",
        "--signal",
        "term",
    ]);
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert_eq!(report["signal"], "TERM");
    assert_eq!(count(&report, "lost"), 0, "{report}");
}

/// A server whose restart throws its data away: the loop must report the loss and fail.
#[test]
fn a_server_that_forgets_acknowledged_points_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = dir.path().join("data");
    let config = dir.path().join("forgetful.toml");
    std::fs::write(
        &config,
        format!("bind = \"127.0.0.1:{port}\"\ndata_dir = {:?}\n", data),
    )
    .unwrap();
    let pid_file = dir.path().join("pid");
    let start = format!(
        "{BIN} serve --config {} >/dev/null 2>&1 & echo $! > {}",
        config.display(),
        pid_file.display()
    );
    let restart = format!(
        "kill -9 $(cat {pid}) && while kill -0 $(cat {pid}) 2>/dev/null; do sleep 0.01; done; rm -rf {data} && {start}",
        pid = pid_file.display(),
        data = data.display(),
    );
    assert!(Command::new("sh")
        .args(["-c", &start])
        .status()
        .unwrap()
        .success());
    let url = format!("http://127.0.0.1:{port}");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    common::wait_until("the forgetful node answers /ping", || {
        std::net::TcpStream::connect(addr).is_ok()
            && common::request(addr, "GET", "/ping", &[], b"").status == 204
    });

    let (code, report, stderr) = bench_crash(&[
        "--cycles",
        "2",
        "--points-per-cycle",
        "1000",
        "--url",
        &url,
        "--restart-cmd",
        &restart,
    ]);
    let _ = Command::new("sh")
        .args(["-c", &format!("kill -9 $(cat {})", pid_file.display())])
        .status();
    assert_ne!(code, 0, "{report}\n{stderr}");
    assert!(count(&report, "lost") > 0, "{report}");
    assert!(
        !report["examples"].as_array().unwrap().is_empty(),
        "{report}"
    );
}

#[test]
#[cfg(feature = "failpoints")]
fn kills_inside_flushes_merges_backups_restores_and_snapshots_lose_nothing_acknowledged() {
    for (during, cycles) in [
        ("flush", "2"),
        ("merge", "1"),
        ("backup", "2"),
        ("restore", "2"),
        ("snapshot", "2"),
    ] {
        let (code, report, stderr) = bench_crash(&["--cycles", cycles, "--during", during]);
        assert_eq!(code, 0, "{during}: {report}\n{stderr}");
        assert_eq!(report["during"], during);
        assert_eq!(
            report["kills_during"].as_u64(),
            Some(cycles.parse().unwrap()),
            "every kill inside a {during}: {report}"
        );
        for key in ["lost", "wrong", "invented", "resurrected"] {
            assert_eq!(count(&report, key), 0, "{during}: {key}: {report}");
        }
        if during == "snapshot" {
            // The control state too: the policies each cycle created before its kill.
            assert!(count(&report, "policies_acknowledged") > 0, "{report}");
            assert_eq!(count(&report, "policies_lost"), 0, "{report}");
        }
    }
}
