//! The process's own figures for `/debug/pprof/` on `serve` and on `proxy`: a CPU profile
//! in pprof's gzipped protobuf (as Go's `net/http/pprof` answers it, so `go tool pprof`
//! reads it), and the process's memory and threads as JSON figures (Go's heap and goroutine
//! profiles have no counterpart in a Rust process). Of HTTP it knows only the statuses of a
//! CPU profile's answer ([`answer`]), which `serve` and `proxy` share (the proxy may not
//! reach the node's HTTP layer).

/// The longest CPU profile one request may ask for (Go's handler has no bound; a client
/// that forgets `seconds` gets Go's 30).
pub const MAX_PROFILE_SECONDS: f64 = 300.0;
pub const DEFAULT_PROFILE_SECONDS: f64 = 30.0;
/// Samples a second, as Go's runtime takes them.
const PROFILE_HZ: i32 = 100;

/// One profile at a time: the profiler is the process's SIGPROF handler.
static PROFILING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("seconds must be a number in (0, {MAX_PROFILE_SECONDS}]")]
    Seconds,
    #[error("a CPU profile is being taken already")]
    Busy,
    #[error("{0}")]
    Failed(String),
}

/// A CPU profile of the whole process over `seconds` (the request's `seconds=`, fractions
/// allowed; none: 30), gzipped pprof protobuf.
pub async fn cpu(seconds: Option<&str>) -> Result<Vec<u8>, ProfileError> {
    use std::sync::atomic::Ordering;
    let seconds = match seconds.map(|s| s.parse::<f64>()) {
        None => DEFAULT_PROFILE_SECONDS,
        Some(Ok(s)) if s > 0.0 && s <= MAX_PROFILE_SECONDS => s,
        Some(_) => return Err(ProfileError::Seconds),
    };
    if PROFILING.swap(true, Ordering::AcqRel) {
        return Err(ProfileError::Busy);
    }
    let profile = take_profile(std::time::Duration::from_secs_f64(seconds)).await;
    PROFILING.store(false, Ordering::Release);
    profile.map_err(ProfileError::Failed)
}

/// A CPU profile's answer, for `serve` and `proxy` alike: the profile as Go's handler sends
/// it, or the status a [`ProfileError`] deserves in the caller's error shape.
pub(crate) fn answer(
    profile: Result<Vec<u8>, ProfileError>,
    error: impl FnOnce(actix_web::http::StatusCode, String) -> actix_web::HttpResponse,
) -> actix_web::HttpResponse {
    use actix_web::http::StatusCode;
    match profile {
        Ok(body) => actix_web::HttpResponse::Ok()
            .content_type("application/octet-stream")
            .insert_header(("Content-Disposition", "attachment; filename=\"profile\""))
            .body(body),
        Err(e) => {
            let status = match e {
                ProfileError::Seconds => StatusCode::BAD_REQUEST,
                ProfileError::Busy => StatusCode::CONFLICT,
                ProfileError::Failed(ref reason) => {
                    tracing::warn!(%reason, "CPU profile failed");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            error(status, e.to_string())
        }
    }
}

/// The process's resident memory now and at its peak (the kernel's figures) and what the
/// allocator has committed.
pub fn heap() -> serde_json::Value {
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
    serde_json::json!({
        "rss_bytes": kib("VmRSS:"),
        "peak_rss_bytes": kib("VmHWM:"),
        "allocator_committed_bytes": v[5],
        "allocator_peak_committed_bytes": v[6],
    })
}

/// The process's threads by name, with how many share it and their CPU time (from
/// `/proc/self/task`).
pub fn threads() -> serde_json::Value {
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
    serde_json::json!({"total": total, "threads": threads})
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
