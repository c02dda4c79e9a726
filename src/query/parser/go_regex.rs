//! A regex literal checked while the query is parsed, as InfluxDB 1.x compiles it there:
//! a bad one refuses the whole query (400) with Go's `regexp/syntax` words,
//! `error parsing regexp: <code>: `<fragment>``, which clients and people recognise.
//!
//! The pattern is parsed by `regex-syntax` (the `regex` crate's own front end, so a
//! pattern that passes here compiles later); its errors are put in Go's words, quoting
//! the fragment Go quotes. Go refuses two things Rust accepts, checked on the parsed
//! pattern: a repetition of a repetition (`a**`), a count above 1000 (`a{1001}`) and a
//! named group without its `P` (`(?<name>...)`).
//! Where Rust refuses what Go accepts (`x{` as a literal, `\Q...\E`), the query is still
//! refused, in Go's words for the nearest code.

use regex_syntax::ast::{self, Ast, RepetitionKind, RepetitionRange};
use regex_syntax::hir;

/// Go's largest repetition count (`regexp/syntax`'s limit in `parseRepeat`).
const MAX_REPEAT: u32 = 1000;

/// `Err` carries Go's message for the first problem of `pattern`.
pub(super) fn check(pattern: &str) -> Result<(), String> {
    let parsed = ast::parse::Parser::new()
        .parse(pattern)
        .map_err(|e| go_message(ast_code(e.kind()), fragment(pattern, &e)))?;
    go_only_refusals(pattern, &parsed)?;
    hir::translate::Translator::new()
        .translate(pattern, &parsed)
        .map_err(|e| {
            let span = e.span();
            let code = match e.kind() {
                hir::ErrorKind::InvalidUtf8 => "invalid UTF-8",
                hir::ErrorKind::UnicodePropertyNotFound
                | hir::ErrorKind::UnicodePropertyValueNotFound
                | hir::ErrorKind::UnicodePerlClassNotFound => "invalid character class range",
                _ => "invalid character class",
            };
            go_message(code, &pattern[span.start.offset..span.end.offset])
        })?;
    Ok(())
}

fn go_message(code: &str, fragment: &str) -> String {
    format!("error parsing regexp: {code}: `{fragment}`")
}

fn ast_code(kind: &ast::ErrorKind) -> &'static str {
    use ast::ErrorKind as K;
    match kind {
        K::ClassRangeInvalid | K::ClassRangeLiteral | K::UnicodeClassInvalid => {
            "invalid character class range"
        }
        K::ClassUnclosed => "missing closing ]",
        K::GroupUnclosed => "missing closing )",
        K::GroupUnopened => "unexpected )",
        K::RepetitionMissing => "missing argument to repetition operator",
        K::RepetitionCountInvalid
        | K::RepetitionCountDecimalEmpty
        | K::RepetitionCountUnclosed
        | K::DecimalEmpty
        | K::DecimalInvalid => "invalid repeat count",
        K::EscapeUnexpectedEof => "trailing backslash at end of expression",
        K::ClassEscapeInvalid
        | K::EscapeHexEmpty
        | K::EscapeHexInvalid
        | K::EscapeHexInvalidDigit
        | K::EscapeUnrecognized
        | K::UnsupportedBackreference
        | K::SpecialWordBoundaryUnclosed
        | K::SpecialWordBoundaryUnrecognized
        | K::SpecialWordOrRepetitionUnexpectedEof => "invalid escape sequence",
        K::GroupNameDuplicate { .. }
        | K::GroupNameEmpty
        | K::GroupNameInvalid
        | K::GroupNameUnexpectedEof => "invalid named capture",
        K::FlagDanglingNegation
        | K::FlagDuplicate { .. }
        | K::FlagRepeatedNegation { .. }
        | K::FlagUnexpectedEof
        | K::FlagUnrecognized
        | K::UnsupportedLookAround => "invalid or unsupported Perl syntax",
        K::NestLimitExceeded(_) => "expression nests too deeply",
        K::CaptureLimitExceeded => "expression too large",
        _ => "invalid regular expression",
    }
}

/// The text Go quotes for the error: the whole pattern for a parenthesis, the class
/// from its `[` on for an unclosed one, from the group's `(?` for flags and names, the
/// offending piece otherwise.
fn fragment<'a>(pattern: &'a str, e: &ast::Error) -> &'a str {
    use ast::ErrorKind as K;
    let (start, end) = (e.span().start.offset, e.span().end.offset);
    let group_start = || pattern[..start.min(pattern.len())].rfind("(?").unwrap_or(0);
    match e.kind() {
        K::GroupUnclosed | K::GroupUnopened => pattern,
        K::ClassUnclosed => &pattern[start.min(pattern.len())..],
        K::EscapeUnexpectedEof => "",
        // The operator, `?` (not greedy) included.
        K::RepetitionMissing => {
            let rest = &pattern[start.min(pattern.len())..];
            let op = match rest.strip_prefix('{') {
                Some(count) => count.find('}').map_or(rest.len(), |i| i + 2),
                None => rest.chars().next().map_or(0, char::len_utf8),
            };
            let op = op + usize::from(rest[op..].starts_with('?'));
            &rest[..op]
        }
        K::GroupNameUnexpectedEof => &pattern[group_start()..],
        K::FlagDanglingNegation
        | K::FlagDuplicate { .. }
        | K::FlagRepeatedNegation { .. }
        | K::FlagUnexpectedEof
        | K::FlagUnrecognized
        | K::GroupNameDuplicate { .. }
        | K::GroupNameEmpty
        | K::GroupNameInvalid => &pattern[group_start()..end.min(pattern.len())],
        _ => &pattern[start..end],
    }
}

/// What Go refuses and `regex-syntax` accepts, in the order Go meets it (left to right).
fn go_only_refusals(pattern: &str, parsed: &Ast) -> Result<(), String> {
    match parsed {
        Ast::Repetition(rep) => {
            go_only_refusals(pattern, &rep.ast)?;
            if let Ast::Repetition(inner) = &*rep.ast {
                let text = &pattern[inner.op.span.start.offset..rep.op.span.end.offset];
                return Err(go_message("invalid nested repetition operator", text));
            }
            if let RepetitionKind::Range(range) = &rep.op.kind {
                let (RepetitionRange::Exactly(n)
                | RepetitionRange::AtLeast(n)
                | RepetitionRange::Bounded(_, n)) = *range;
                if n > MAX_REPEAT {
                    let span = rep.op.span;
                    let text = pattern[span.start.offset..span.end.offset].trim_end_matches('?');
                    return Err(go_message("invalid repeat count", text));
                }
            }
            Ok(())
        }
        Ast::Group(group) => {
            // Go's parser of 1.x's day knows `(?P<name>` only.
            if let ast::GroupKind::CaptureName {
                starts_with_p: false,
                ..
            } = group.kind
            {
                let at = group.span.start.offset;
                let text = pattern.get(at..at + 3).unwrap_or("(?<");
                return Err(go_message("invalid or unsupported Perl syntax", text));
            }
            go_only_refusals(pattern, &group.ast)
        }
        Ast::Alternation(alt) => alt
            .asts
            .iter()
            .try_for_each(|a| go_only_refusals(pattern, a)),
        Ast::Concat(concat) => concat
            .asts
            .iter()
            .try_for_each(|a| go_only_refusals(pattern, a)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    /// Each message is influxd 1.6.7's for the same pattern (less its
    /// `error parsing query: ` prefix and position, which the parser adds).
    #[test]
    fn bad_patterns_are_refused_in_gos_words() {
        let mut wrong = Vec::new();
        for (pattern, go) in [
            ("(", "missing closing ): `(`"),
            ("a(b", "missing closing ): `a(b`"),
            ("a)", "unexpected ): `a)`"),
            ("[a", "missing closing ]: `[a`"),
            ("x[a", "missing closing ]: `[a`"),
            ("[z-a]", "invalid character class range: `z-a`"),
            ("a**", "invalid nested repetition operator: `**`"),
            ("*a", "missing argument to repetition operator: `*`"),
            ("a|+?", "missing argument to repetition operator: `+?`"),
            ("{2}", "missing argument to repetition operator: `{2}`"),
            ("a\\", "trailing backslash at end of expression: ``"),
            ("(?=a)", "invalid or unsupported Perl syntax: `(?=`"),
            ("(?<n>a)", "invalid or unsupported Perl syntax: `(?<`"),
            ("a{2}{3}", "invalid nested repetition operator: `{2}{3}`"),
            ("a*?*", "invalid nested repetition operator: `*?*`"),
            ("\\1", "invalid escape sequence: `\\1`"),
            ("x{2,1}", "invalid repeat count: `{2,1}`"),
            ("a{1001}", "invalid repeat count: `{1001}`"),
            ("\\8", "invalid escape sequence: `\\8`"),
            ("\\p{Foo}", "invalid character class range: `\\p{Foo}`"),
            ("(?P<n", "invalid named capture: `(?P<n`"),
            ("(?i", "invalid or unsupported Perl syntax: `(?i`"),
            ("(?z)", "invalid or unsupported Perl syntax: `(?z`"),
        ] {
            let expected = Err(format!("error parsing regexp: {go}"));
            if check(pattern) != expected {
                wrong.push(format!("{pattern}: {:?}", check(pattern)));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn good_patterns_pass() {
        for pattern in [
            "^[ab]$",
            "a*?",
            "(a*)*",
            "x{2,1000}",
            "^$|^b$",
            "(?i)cpu",
            "\\d+",
        ] {
            assert_eq!(check(pattern), Ok(()), "{pattern}");
        }
    }
}
