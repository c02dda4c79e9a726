//! Regular expressions of queries, compiled once per pattern for the whole node: a
//! dashboard sends the same patterns with every refresh, and compiling one
//! (`/^host_1[0-9]$/`) cost more than reading the ten series it selects.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// How many patterns are kept; past it the table starts over.
const PATTERNS_KEPT: usize = 64;
/// Programs kept are at most this large (a larger one is compiled for its query alone),
/// so that the table holds at most [`PATTERNS_KEPT`] times this...
const KEPT_PROGRAM_BYTES: usize = 1 << 20;
/// ...plus, per thread that ran one, a lazy DFA cache of at most this.
const KEPT_DFA_BYTES: usize = 256 << 10;

/// `pattern` compiled, from the table when it was compiled before. A pattern refused is
/// refused with the error of [`regex::Regex::new`], and a regular expression kept matches
/// what [`regex::Regex::new`]'s would.
pub(crate) fn compiled(pattern: &str) -> Result<regex::Regex, regex::Error> {
    static TABLE: OnceLock<Mutex<HashMap<String, regex::Regex>>> = OnceLock::new();
    let table = TABLE.get_or_init(Default::default);
    // The table holds compiled patterns only: a panic leaves nothing half-changed.
    let lock = || table.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(re) = lock().get(pattern) {
        return Ok(re.clone());
    }
    let kept = regex::RegexBuilder::new(pattern)
        .size_limit(KEPT_PROGRAM_BYTES)
        .dfa_size_limit(KEPT_DFA_BYTES)
        .build();
    let re = match kept {
        Ok(re) => re,
        Err(_) => return regex::Regex::new(pattern),
    };
    let mut table = lock();
    if table.len() >= PATTERNS_KEPT {
        table.clear();
    }
    table.insert(pattern.to_owned(), re.clone());
    Ok(re)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_is_compiled_once_and_matches_as_compiled_alone() {
        let first = compiled("^host_1[0-9]$").unwrap();
        let again = compiled("^host_1[0-9]$").unwrap();
        assert_eq!(first.as_str(), again.as_str());
        assert!(again.is_match("host_12") && !again.is_match("host_1"));
        // Built at run time: clippy would refuse the literal pattern.
        let unclosed = String::from("(");
        let refused = compiled(&unclosed).unwrap_err().to_string();
        assert_eq!(
            refused,
            regex::Regex::new(&unclosed).unwrap_err().to_string()
        );
        // Too large to keep: compiled for its query with the usual limits.
        let pattern = r"\w{40}";
        let limited = regex::RegexBuilder::new(pattern)
            .size_limit(KEPT_PROGRAM_BYTES)
            .build();
        assert!(limited.is_err());
        assert!(compiled(pattern).unwrap().is_match(&"a".repeat(40)));
    }
}
