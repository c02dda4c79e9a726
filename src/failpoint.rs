//! Fail points: named places where a test, or an operator rehearsing recovery, makes the
//! node fail on purpose: an I/O error, a delay, a panic, or the process aborted.
//!
//! Set with `SHARDKEEPER_FAILPOINTS="log.fsync=return(EIO);column_file.before_rename=1*sleep(500)->off"`
//! at start-up, in the `fail` crate's syntax (`[p%][cnt*]task[(arg)]`, chained with `->`;
//! tasks `off`, `return(arg)`, `sleep(ms)`, `delay(ms)`, `panic(msg)`, `print(msg)`,
//! `pause`, `yield`). `return(abort)` aborts the process where it stands (a crash at that
//! point); `return(EIO)` and `return(ENOSPC)` fail the operation with that error.
//!
//! Unset, a fail point costs one relaxed load: nothing is looked up until some fail point
//! has been configured. Built without the cargo feature `failpoints` (on by default), a
//! fail point is nothing at all, and setting [`ENV`] stops the start.

use std::sync::atomic::{AtomicBool, Ordering};

/// The environment variable read at start-up.
pub const ENV: &str = "SHARDKEEPER_FAILPOINTS";

/// Whether this build has fail points (the cargo feature `failpoints`).
pub const COMPILED_IN: bool = cfg!(feature = "failpoints");

/// Why a build without fail points refuses them.
pub const NOT_COMPILED_IN: &str =
    "this build has no fail points (built without the cargo feature \"failpoints\")";

/// Every fail point, and where it sits.
pub const POINTS: &[(&str, &str)] = &[
    (
        "log.write",
        "before a commit's bytes are written to a log segment (control log and data log)",
    ),
    (
        "log.fsync",
        "before the fdatasync that makes a commit durable (control log and data log)",
    ),
    (
        "log.segment_remove",
        "before a log segment whose records are all covered is unlinked (control log after a \
         snapshot, data log after a flush), the segments before it already gone",
    ),
    (
        "snapshot.before_rename",
        "a control-state snapshot written and synced as `.snap.tmp`, not yet renamed into \
         place as the newest",
    ),
    (
        "column_file.before_rename",
        "a column file (of a flush or a merge) written and synced, not yet renamed into place \
         (issue 22's flush.before_rename)",
    ),
    (
        "merge.after_write",
        "a merged column file in place, the files it replaces not yet removed",
    ),
    (
        "restore.before_swap",
        "a restored shard staged and verified, not yet swapped for the live one",
    ),
    (
        "http.write",
        "a write request parsed, its points not yet appended",
    ),
];

static ARMED: AtomicBool = AtomicBool::new(false);

/// Whether any fail point was configured (then each is looked up when reached).
pub fn armed() -> bool {
    ARMED.load(Ordering::Relaxed)
}

/// Configures the fail points named in [`ENV`]; the names configured.
pub fn configure_from_env() -> Result<Vec<String>, String> {
    match std::env::var(ENV) {
        Ok(spec) => configure(&spec),
        Err(std::env::VarError::NotPresent) => Ok(Vec::new()),
        Err(e) => Err(format!("{ENV}: {e}")),
    }
}

/// Configures fail points from `name=actions;...`. An unknown name is refused, so that a
/// misspelt one does not pass silently for a point that never fires.
#[cfg(feature = "failpoints")]
pub fn configure(spec: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, actions) = part
            .split_once('=')
            .ok_or_else(|| format!("{ENV}: {part:?} is not name=actions"))?;
        let name = name.trim();
        if !POINTS.iter().any(|(n, _)| *n == name) {
            let known: Vec<&str> = POINTS.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "{ENV}: no fail point {name:?} (there are: {})",
                known.join(", ")
            ));
        }
        fail::cfg(name, actions.trim()).map_err(|e| format!("{ENV}: {name}: {e}"))?;
        names.push(name.to_owned());
    }
    if !names.is_empty() {
        ARMED.store(true, Ordering::Relaxed);
    }
    Ok(names)
}

/// Refuses any fail point: a run that asks for them must not pass for one that had them.
#[cfg(not(feature = "failpoints"))]
pub fn configure(spec: &str) -> Result<Vec<String>, String> {
    match spec.split(';').all(|part| part.trim().is_empty()) {
        true => Ok(Vec::new()),
        false => Err(format!("{ENV} is set, but {NOT_COMPILED_IN}")),
    }
}

/// Each fail point with where it sits and its actions now (`None`: off).
pub fn list() -> Vec<(&'static str, &'static str, Option<String>)> {
    #[cfg(feature = "failpoints")]
    let configured = fail::list();
    #[cfg(not(feature = "failpoints"))]
    let configured: Vec<(String, String)> = Vec::new();
    POINTS
        .iter()
        .map(|&(name, place)| {
            let actions = configured
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, a)| a.clone());
            (name, place, actions)
        })
        .collect()
}

/// What a `return(arg)` of an I/O fail point does: aborts the process for `abort`, or is
/// the error it names (EIO by default).
pub fn io_error(point: &str, arg: Option<String>) -> std::io::Error {
    match arg.as_deref() {
        Some("abort") => {
            eprintln!("fail point {point}: aborting the process");
            std::process::abort()
        }
        Some("ENOSPC") => std::io::Error::from_raw_os_error(libc::ENOSPC),
        _ => std::io::Error::other(format!(
            "fail point {point}: {}",
            std::io::Error::from_raw_os_error(libc::EIO)
        )),
    }
}

/// Reaches the fail point `point`: runs its sleep, panic or pause there, and for a
/// `return(arg)` gives the I/O error the caller fails with (see [`io_error`]).
#[cfg(feature = "failpoints")]
pub fn io_check(point: &str) -> Option<std::io::Error> {
    if !armed() {
        return None;
    }
    fail::eval(point, |arg| io_error(point, arg))
}

/// Without fail points: nothing, which the compiler removes from where it is called.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn io_check(_point: &str) -> Option<std::io::Error> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "failpoints")]
    fn an_unknown_name_or_a_bad_action_is_refused() {
        assert!(configure("log.fsnyc=return")
            .unwrap_err()
            .contains("no fail point"));
        assert!(configure("log.fsync").unwrap_err().contains("name=actions"));
        assert!(configure("log.fsync=explode(3)").is_err());
    }

    #[test]
    #[cfg(not(feature = "failpoints"))]
    fn without_fail_points_compiled_in_any_setting_is_refused() {
        assert!(configure("log.fsync=return(EIO)")
            .unwrap_err()
            .contains(NOT_COMPILED_IN));
        assert_eq!(configure(" ; "), Ok(Vec::new()));
        assert!(io_check("log.fsync").is_none());
    }
}
