//! `GET /debug/pprof/profile`: a CPU profile, as Go's pprof handler gives one;
//! `/debug/pprof/heap` and `/debug/pprof/threads`: the process's memory and its threads, as
//! JSON figures (Go's heap and goroutine profiles have no counterpart in a Rust process).
//! `GET /debug/failpoints`: the node's fail points, where each sits and its actions now
//! (see [`crate::failpoint`]). With authentication on, an admin's to read. A build without
//! fail points answers 501 (the route is there, what it reports is not).

use super::Params;
use crate::node::Node;
use actix_web::{web, HttpRequest, HttpResponse};

pub(super) fn routes(r: &mut super::Routes) {
    use actix_web::http::Method;
    r.add(Method::GET, "/debug/failpoints", failpoints)
        .add(Method::GET, "/debug/pprof/profile", cpu_profile)
        .add(Method::GET, "/debug/pprof/heap", heap)
        .add(Method::GET, "/debug/pprof/threads", threads);
}

/// `GET /debug/pprof/heap`: the process's resident memory now and at its peak (the
/// kernel's figures) and what the allocator has committed. An admin's with authentication
/// on.
async fn heap(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    if let Err(e) = super::auth::admin_only(&node, &req, &params, "profile the node").await {
        return e.v2();
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| {
                l.strip_prefix(key)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|k| k * 1024)
    };
    let mut v = [0usize; 8];
    let [elapsed, user, system, rss, peak_rss, commit, peak_commit, faults] = &mut v;
    // SAFETY: mimalloc writes one figure through each pointer, all valid for the call.
    unsafe {
        libmimalloc_sys::mi_process_info(
            elapsed,
            user,
            system,
            rss,
            peak_rss,
            commit,
            peak_commit,
            faults,
        )
    };
    HttpResponse::Ok().json(serde_json::json!({
        "rss_bytes": kib("VmRSS:"),
        "peak_rss_bytes": kib("VmHWM:"),
        "allocator_committed_bytes": v[5],
        "allocator_peak_committed_bytes": v[6],
    }))
}

/// `GET /debug/pprof/threads`: the process's threads by name, with how many share it and
/// their CPU time (from `/proc/self/task`). An admin's with authentication on.
async fn threads(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    if let Err(e) = super::auth::admin_only(&node, &req, &params, "profile the node").await {
        return e.v2();
    }
    // SAFETY: sysconf reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut by_name: std::collections::BTreeMap<String, (u64, f64)> = Default::default();
    let tasks = std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten();
    for task in tasks {
        let path = task.path();
        let Ok(name) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        // utime and stime are the 14th and 15th fields, after the parenthesised name.
        let cpu = std::fs::read_to_string(path.join("stat"))
            .ok()
            .and_then(|stat| {
                let rest = stat.rsplit_once(')')?.1;
                let fields: Vec<&str> = rest.split_whitespace().collect();
                Some(fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?)
            })
            .unwrap_or(0.0);
        let entry = by_name.entry(name.trim_end().to_owned()).or_default();
        entry.0 += 1;
        entry.1 += cpu / ticks;
    }
    let total: u64 = by_name.values().map(|(n, _)| n).sum();
    let threads: Vec<serde_json::Value> = by_name
        .into_iter()
        .map(|(name, (count, cpu))| {
            serde_json::json!({"name": name, "count": count, "cpu_seconds": cpu})
        })
        .collect();
    HttpResponse::Ok().json(serde_json::json!({"total": total, "threads": threads}))
}

async fn failpoints(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    if let Err(e) = super::auth::admin_only(&node, &req, &params, "read fail points").await {
        return e.v2();
    }
    if !crate::failpoint::COMPILED_IN {
        let status = actix_web::http::StatusCode::NOT_IMPLEMENTED;
        return super::error::ApiError::new(status, crate::failpoint::NOT_COMPILED_IN).v2();
    }
    let points: Vec<serde_json::Value> = crate::failpoint::list()
        .into_iter()
        .map(|(name, place, actions)| {
            serde_json::json!({"name": name, "place": place, "actions": actions})
        })
        .collect();
    HttpResponse::Ok().json(serde_json::json!({
        "armed": crate::failpoint::armed(),
        "failpoints": points,
    }))
}

/// The longest CPU profile one request may ask for (Go's handler has no bound; a client
/// that forgets `seconds` gets Go's 30).
const MAX_PROFILE_SECONDS: f64 = 300.0;
const DEFAULT_PROFILE_SECONDS: f64 = 30.0;
/// Samples a second, as Go's runtime takes them.
const PROFILE_HZ: i32 = 100;

/// One profile at a time: the profiler is the process's SIGPROF handler.
static PROFILING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `GET /debug/pprof/profile?seconds=N`: a CPU profile of the whole process over N seconds
/// (fractions allowed), in pprof's gzipped protobuf, as Go's `net/http/pprof` answers it,
/// so `go tool pprof http://node:8086/debug/pprof/profile` reads it. An admin's with
/// authentication on.
async fn cpu_profile(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    use actix_web::http::StatusCode;
    use std::sync::atomic::Ordering;
    if let Err(e) = super::auth::admin_only(&node, &req, &params, "profile the node").await {
        return e.v2();
    }
    let seconds = match params.get("seconds").map(|s| s.parse::<f64>()) {
        None => DEFAULT_PROFILE_SECONDS,
        Some(Ok(s)) if s > 0.0 && s <= MAX_PROFILE_SECONDS => s,
        Some(_) => {
            let message = format!("seconds must be a number in (0, {MAX_PROFILE_SECONDS}]");
            return super::error::ApiError::bad_request(message).v2();
        }
    };
    if PROFILING.swap(true, Ordering::AcqRel) {
        let message = "a CPU profile is being taken already";
        return super::error::ApiError::new(StatusCode::CONFLICT, message).v2();
    }
    let profile = take_profile(std::time::Duration::from_secs_f64(seconds)).await;
    PROFILING.store(false, Ordering::Release);
    match profile {
        Ok(body) => HttpResponse::Ok()
            .content_type("application/octet-stream")
            .insert_header(("Content-Disposition", "attachment; filename=\"profile\""))
            .body(body),
        Err(reason) => {
            tracing::warn!(%reason, "CPU profile failed");
            super::error::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, reason).v2()
        }
    }
}

async fn take_profile(duration: std::time::Duration) -> Result<Vec<u8>, String> {
    use pprof::protos::Message;
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(PROFILE_HZ)
        // Unwinding through these from a signal handler can deadlock (pprof-rs's advice).
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| format!("cannot start the profiler: {e}"))?;
    tokio::time::sleep(duration).await;
    let report = guard
        .report()
        .build()
        .map_err(|e| format!("cannot build the profile: {e}"))?;
    drop(guard);
    let profile = report
        .pprof()
        .map_err(|e| format!("cannot encode the profile: {e}"))?;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gzip, &profile.encode_to_vec())
        .and_then(|()| gzip.finish())
        .map_err(|e| format!("cannot compress the profile: {e}"))
}
