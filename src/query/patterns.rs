//! Regular expressions of queries, compiled once per pattern for the whole node: a
//! dashboard sends the same patterns with every refresh, and compiling one
//! (`/^host_1[0-9]$/`) cost more than reading the ten series it selects.

use super::kept::Kept;

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
    static KEPT: Kept<regex::Regex> = Kept::new(PATTERNS_KEPT);
    let kept = KEPT.get_or_make(pattern, || {
        regex::RegexBuilder::new(pattern)
            .size_limit(KEPT_PROGRAM_BYTES)
            .dfa_size_limit(KEPT_DFA_BYTES)
            .build()
    });
    // Refused within the kept bounds: compiled for this query alone, or refused as
    // `Regex::new` refuses it.
    kept.or_else(|_| regex::Regex::new(pattern))
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
