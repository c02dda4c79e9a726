//! The node under systemd: the unit passes `systemd-analyze verify`, and the daemon speaks
//! the notify protocol (`Type=notify`) to a socket the test binds as systemd would.

mod common;

use common::{request, Daemon, WAIT_LIMIT};
use std::os::unix::net::UnixDatagram;
use std::process::Command;

const UNIT: &str = include_str!("../deploy/shardkeeper.service");

/// The next notification on `socket`, as its lines (`READY=1`, ...).
fn next_notice(socket: &UnixDatagram) -> Vec<String> {
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no notification within {WAIT_LIMIT:?}: {e}"));
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn ready_comes_once_ping_answers_then_the_watchdog_then_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(WAIT_LIMIT)).unwrap();
    let log = dir.path().join("node.log");
    let d = Daemon::start_logging_to(
        &dir.path().join("data"),
        // The access log shows the node's own /ping, answered before it says it is ready.
        "http_access_log = true\n",
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            // Every 0.2 s: WATCHDOG=1 at half the interval.
            ("WATCHDOG_USEC", "400000"),
        ],
        &log,
    );
    assert_eq!(next_notice(&socket), ["READY=1"]);
    // Asked at once: a READY=1 sent before the server took requests would fail here.
    assert_eq!(request(d.addr, "GET", "/ping", &[], b"").status, 204);
    let text = std::fs::read_to_string(&log).unwrap();
    let answered = text
        .find("\"GET /ping HTTP/1.1\" 204")
        .unwrap_or_else(|| panic!("the node did not ask itself for /ping:\n{text}"));
    let ready = text
        .find("telling systemd it is ready")
        .unwrap_or_else(|| panic!("readiness not logged:\n{text}"));
    assert!(answered < ready, "READY=1 before /ping answered:\n{text}");

    assert_eq!(next_notice(&socket), ["WATCHDOG=1"]);
    assert_eq!(next_notice(&socket), ["WATCHDOG=1"]);
    d.signal(libc::SIGTERM);
    // A watchdog notice may have been on its way as the signal came.
    let stopping = loop {
        let notice = next_notice(&socket);
        if notice != ["WATCHDOG=1"] {
            break notice;
        }
    };
    assert_eq!(stopping, ["STOPPING=1"]);
    assert!(d.stop().success());
}

#[test]
fn without_notify_socket_nothing_is_sent_and_the_node_serves() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("node.log");
    let d = Daemon::start_logging_to(&dir.path().join("data"), "", &[], &log);
    assert_eq!(d.request("GET", "/ping", b"").status, 204);
    assert!(d.stop().success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("systemd"), "{text}");
}

/// The unit as shipped, but for `ExecStart`'s binary (the one just built, since
/// `systemd-analyze` checks that it exists); its warnings (an unknown or misspelt key) fail
/// the test as errors do.
#[test]
fn the_unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: systemd-analyze is not installed (apt-get install systemd)");
        return;
    }
    for required in [
        "Type=notify",
        "Restart=on-failure",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/shardkeeper",
        "NoNewPrivileges=true",
        "PrivateTmp=true",
        "ProtectHome=true",
        "CapabilityBoundingSet=\n",
        "LimitMEMLOCK=",
        "LimitNOFILE=",
        "User=shardkeeper",
        "ExecStart=/usr/bin/shardkeeper serve --config /etc/shardkeeper/shardkeeper.toml\n",
    ] {
        assert!(UNIT.contains(required), "the unit lacks {required:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("shardkeeper.service");
    std::fs::write(&unit, UNIT.replace("/usr/bin/shardkeeper", common::BIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}
