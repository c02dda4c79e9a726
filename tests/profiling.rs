//! `GET /debug/pprof/profile`: a CPU profile in pprof's gzipped protobuf, as Go's handler
//! answers it (what `go tool pprof` reads), taken while the node works.

mod common;

use common::{query, Daemon};
use pprof::protos::Message;
use std::io::Read;

#[test]
fn a_cpu_profile_is_gzipped_pprof_protobuf() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    assert_eq!(query(d.addr, "", "CREATE DATABASE p").status, 200);
    let addr = d.addr;
    // Work for the profile to see, for as long as it is taken (on a loaded machine a fixed
    // amount of work may be over before the profile starts).
    let profiling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let still = profiling.clone();
    let load = std::thread::spawn(move || {
        let mut i = 0;
        while still.load(std::sync::atomic::Ordering::Relaxed) && i < 100_000 {
            let lines: String = (0..200)
                .map(|j| format!("cpu,host=h{j} v={i} {}\n", i * 1000 + j))
                .collect();
            common::request(addr, "POST", "/write?db=p", &[], lines.as_bytes());
            i += 1;
        }
    });
    let r = d.request("GET", "/debug/pprof/profile?seconds=1", b"");
    profiling.store(false, std::sync::atomic::Ordering::Relaxed);
    load.join().unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_end(&mut raw)
        .expect("gzip");
    let profile = pprof::protos::Profile::decode(&raw[..]).expect("pprof protobuf");
    let strings = &profile.string_table;
    let sample_type = &profile.sample_type;
    assert!(!sample_type.is_empty(), "{profile:?}");
    assert_eq!(strings[sample_type[0].ty as usize], "samples");
    assert_eq!(strings[sample_type[1].ty as usize], "cpu");
    assert_eq!(strings[sample_type[1].unit as usize], "nanoseconds");
    assert!(
        profile.duration_nanos >= 1_000_000_000,
        "{}",
        profile.duration_nanos
    );
    assert!(!profile.sample.is_empty(), "no samples while writes ran");
    assert!(
        strings.iter().any(|s| s.contains("shardkeeper")),
        "no frame of the node's own code"
    );

    let r = d.request("GET", "/debug/pprof/profile?seconds=-1", b"");
    assert_eq!(r.status, 400);
}

#[test]
fn heap_and_thread_figures_describe_the_running_node() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let heap = d.request("GET", "/debug/pprof/heap", b"").json();
    let rss = heap["rss_bytes"].as_u64().unwrap();
    assert!(rss > 1 << 20, "{heap}");
    assert!(heap["peak_rss_bytes"].as_u64().unwrap() >= rss, "{heap}");
    assert!(
        heap["allocator_committed_bytes"].as_u64().unwrap() > 0,
        "{heap}"
    );
    let threads = d.request("GET", "/debug/pprof/threads", b"").json();
    let names: Vec<&str> = threads["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for expected in ["log-writer", "query"] {
        assert!(names.contains(&expected), "{threads}");
    }
    let counted: u64 = threads["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["count"].as_u64().unwrap())
        .sum();
    assert_eq!(threads["total"].as_u64().unwrap(), counted, "{threads}");
}
