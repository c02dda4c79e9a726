//! What the proxy reads of an InfluxQL query, as influx-proxy 2.4.7 reads it: a scan into
//! tokens, its whitelist of statements, the database and the measurement a statement
//! names, and the kind of routing it takes. Not a parser of InfluxQL: the backends parse.
//!
//! Tokens are as influx-proxy's `ScanToken` makes them: a quoted name (quotes kept, a
//! backslash-escaped quote unescaped), a `(...)`, `[...]` or `{...}` group, a run of dots,
//! or anything else up to the next blank. Deliberate differences, each where influx-proxy
//! fails a query it means to serve: tabs and line breaks separate tokens as spaces do;
//! the measurement of a `FROM` is read as the last part of its dotted name (`db.rp.m`,
//! `"db".."m"`, `rp.m`), and its database part, when given, is the database; only `FROM`
//! names the measurement of a SELECT or SHOW (`SHOW MEASUREMENTS WITH MEASUREMENT =~ ...`
//! asks every backend); several statements are each checked and routed on their own.

use std::fmt;

/// Statements influx-proxy serves besides `SELECT ... FROM` and `SHOW ... FROM`, by their
/// first two or three words.
const SUPPORTED: [&str; 13] = [
    "show measurements",
    "show series",
    "show field keys",
    "show tag keys",
    "show tag values",
    "show retention policies",
    "show stats",
    "show databases",
    "create database",
    "drop database",
    "delete from",
    "drop series from",
    "drop measurement",
];

/// influx-proxy's query errors, in its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScanError {
    WrongQuote,
    UnmatchedQuote,
    IllegalQl,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScanError::WrongQuote => "wrong quote",
            ScanError::UnmatchedQuote => "unmatched quote",
            ScanError::IllegalQl => "illegal InfluxQL",
        })
    }
}

/// One token: its text as influx-proxy gives it, and where it starts in the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub text: String,
    pub start: usize,
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// A quoted token from `start` (a quote): its end and its text with escapes removed.
fn quoted(data: &[u8], start: usize, quote: u8) -> Result<(usize, Vec<u8>), ScanError> {
    let mut text = vec![quote];
    let mut at = start + 1;
    while at < data.len() {
        match data[at] {
            b if b == quote => {
                text.push(b);
                return Ok((at + 1, text));
            }
            b'\\' => match data.get(at + 1) {
                Some(&next) if next == quote => {
                    text.push(next);
                    at += 1;
                }
                Some(_) => return Err(ScanError::WrongQuote),
                None => return Err(ScanError::UnmatchedQuote),
            },
            b => text.push(b),
        }
        at += 1;
    }
    Err(ScanError::UnmatchedQuote)
}

/// The tokens of a statement, as far as they scan: influx-proxy stops at the first token
/// that does not scan and keeps those before it.
pub(crate) fn tokens(statement: &str) -> Vec<Token> {
    let data = statement.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        while at < data.len() && is_blank(data[at]) {
            at += 1;
        }
        if at >= data.len() {
            return out;
        }
        let start = at;
        let (end, text) = match data[at] {
            q @ (b'"' | b'\'') => match quoted(data, at, q) {
                Ok(t) => t,
                Err(_) => return out,
            },
            open @ (b'(' | b'[' | b'{') => {
                let close = match open {
                    b'(' => b')',
                    b'[' => b']',
                    _ => b'}',
                };
                match memchr::memchr(close, &data[at..]) {
                    Some(i) => (at + i + 1, data[at..at + i + 1].to_vec()),
                    None => return out,
                }
            }
            b'.' => {
                let mut end = at + 1;
                while end < data.len() && data[end] == b'.' {
                    end += 1;
                }
                (end, data[at..end].to_vec())
            }
            _ => {
                let end = data[at..]
                    .iter()
                    .position(|&b| is_blank(b))
                    .map_or(data.len(), |i| at + i);
                (end, data[at..end].to_vec())
            }
        };
        out.push(Token {
            text: String::from_utf8_lossy(&text).into_owned(),
            start,
        });
        at = end;
    }
}

/// The first `n` tokens, lowercased and joined by spaces (all of them if fewer).
fn head(tokens: &[Token], n: usize) -> String {
    let n = n.min(tokens.len());
    let words: Vec<&str> = tokens[..n].iter().map(|t| t.text.as_str()).collect();
    words.join(" ").to_lowercase()
}

fn is_word(token: &Token, word: &str) -> bool {
    token.text.eq_ignore_ascii_case(word)
}

/// How a statement is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `SELECT ... FROM m` or `SHOW ... FROM m`: the backend owning the measurement, in one
    /// circle.
    Measurement {
        db: Option<String>,
        measurement: String,
    },
    /// `SHOW ...` without `FROM`: every backend of one circle, their answers merged.
    Circle { merge: Merge },
    /// `DELETE FROM m`, `DROP SERIES FROM m`, `DROP MEASUREMENT m`: the measurement's owner
    /// in every circle.
    EveryOwner {
        db: Option<String>,
        measurement: String,
    },
    /// `CREATE DATABASE`, `DROP DATABASE`: every backend of every circle.
    EveryBackend,
}

/// How the answers of a circle's backends to a `SHOW` become one (influx-proxy's
/// reducers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Merge {
    /// `SHOW MEASUREMENTS`, `SHOW SERIES`, `SHOW DATABASES`: the union of the first
    /// column's values.
    Values,
    /// `SHOW FIELD KEYS`, `SHOW TAG KEYS`, `SHOW TAG VALUES`: the series of every backend,
    /// one per measurement.
    Series,
    /// `SHOW RETENTION POLICIES`: every backend's rows (the same policy once).
    Rows,
    /// `SHOW STATS`: every backend's results.
    Results,
    /// Anything else: an empty result, as influx-proxy answers.
    Empty,
}

/// A statement influx-proxy serves, with what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    pub route: Route,
    /// `SHOW DATABASES`: needs no database.
    pub shows_databases: bool,
    /// The database named by the statement (`ON db`, `DATABASE db`, `CREATE DATABASE db`),
    /// which is the statement's database when the request's `db` is empty.
    pub named_db: Option<String>,
    /// `CREATE DATABASE db` / `DROP DATABASE db`: the database it is about, whatever the
    /// request's `db`.
    pub altered_db: Option<String>,
}

/// Why the proxy will not serve a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// influx-proxy's `query forbidden`: not on its whitelist, `SELECT ... INTO`, a SELECT
    /// without `FROM`.
    Forbidden,
    /// On the whitelist but naming nothing to route by (`DROP MEASUREMENT` alone).
    Illegal(ScanError),
}

/// influx-proxy's `CheckQuery`, then the route of the statement.
pub(crate) fn check(statement: &str) -> Result<Checked, Refusal> {
    let trimmed = statement.trim().trim_end_matches([';', ' ']);
    let tokens = tokens(trimmed);
    let first = tokens.first().ok_or(Refusal::Forbidden)?;
    let on_list = |tokens: &[Token]| {
        SUPPORTED.contains(&head(tokens, 2).as_str())
            || SUPPORTED.contains(&head(tokens, 3).as_str())
    };
    let allowed = if is_word(first, "select") {
        tokens[1..]
            .iter()
            .find(|t| is_word(t, "into") || is_word(t, "from"))
            .is_some_and(|t| is_word(t, "from"))
    } else {
        (is_word(first, "show") && tokens.iter().any(|t| is_word(t, "from"))) || on_list(&tokens)
    };
    if !allowed {
        return Err(Refusal::Forbidden);
    }
    let two = head(&tokens, 2);
    let shows_databases = two == "show databases";
    let alters = two == "create database" || two == "drop database";
    let altered_db = match alters {
        true => tokens.get(2).map(|t| database_of(&t.text)),
        false => None,
    };
    let named_db = identifier_after(&tokens, &["on", "database"]).map(|t| database_of(&t.text));
    let route = if is_word(first, "select") || is_word(first, "show") {
        match from_target(trimmed, &tokens, "from") {
            Some((db, measurement)) => Route::Measurement { db, measurement },
            None => Route::Circle {
                merge: merge_of(&tokens),
            },
        }
    } else if tokens.len() >= 3
        && matches!(
            two.as_str(),
            "delete from" | "drop measurement" | "drop series"
        )
    {
        let keyword = match two.as_str() {
            "drop measurement" => "measurement",
            _ => "from",
        };
        let (db, measurement) =
            from_target(trimmed, &tokens, keyword).ok_or(Refusal::Illegal(ScanError::IllegalQl))?;
        Route::EveryOwner { db, measurement }
    } else if alters {
        Route::EveryBackend
    } else {
        return Err(Refusal::Illegal(ScanError::IllegalQl));
    };
    Ok(Checked {
        route,
        shows_databases,
        named_db,
        altered_db,
    })
}

fn merge_of(tokens: &[Token]) -> Merge {
    match (head(tokens, 2).as_str(), head(tokens, 3).as_str()) {
        ("show measurements" | "show series" | "show databases", _) => Merge::Values,
        (_, "show field keys" | "show tag keys" | "show tag values") => Merge::Series,
        (_, "show retention policies") => Merge::Rows,
        ("show stats", _) => Merge::Results,
        _ => Merge::Empty,
    }
}

/// The token after the first of `keywords` that has one after it.
fn identifier_after<'a>(tokens: &'a [Token], keywords: &[&str]) -> Option<&'a Token> {
    tokens
        .windows(2)
        .find(|w| keywords.iter().any(|k| is_word(&w[0], k)))
        .map(|w| &w[1])
}

/// influx-proxy's `getDatabase`: a quoted name unquoted, else the part before a dot.
fn database_of(token: &str) -> String {
    if let Some(inner) = unquote(token) {
        return inner.to_owned();
    }
    match token.find('.') {
        Some(i) => token[..i].to_owned(),
        None => token.to_owned(),
    }
}

fn unquote(token: &str) -> Option<&str> {
    let b = token.as_bytes();
    match (b.first(), b.last()) {
        (Some(&q @ (b'"' | b'\'')), Some(&l)) if b.len() >= 2 && l == q => {
            Some(&token[1..token.len() - 1])
        }
        _ => None,
    }
}

/// The database (if named) and measurement of the dotted name after `keyword`: read from
/// the statement's text, where the name is whole, rather than from its tokens. A regular
/// expression (`/cpu.*/`) is its own text, as influx-proxy keys it.
fn from_target(
    statement: &str,
    tokens: &[Token],
    keyword: &str,
) -> Option<(Option<String>, String)> {
    let token = identifier_after(tokens, &[keyword])?;
    let mut at = token.start;
    // A subquery: the measurement of its FROM (nested ones as deep as anyone writes them).
    for _ in 0..MAX_SUBQUERY_DEPTH {
        if statement.as_bytes()[at] != b'(' {
            break;
        }
        let inner = &statement[at + 1..];
        let tokens = self::tokens(inner);
        at += 1 + identifier_after(&tokens, &[keyword])?.start;
    }
    let rest = &statement.as_bytes()[at..];
    if rest.first() == Some(&b'/') {
        let end = regex_end(rest)?;
        return Some((None, String::from_utf8_lossy(&rest[..end]).into_owned()));
    }
    let parts = dotted_name(rest)?;
    let measurement = parts.last()?.clone();
    if measurement.is_empty() {
        return None;
    }
    let db = match parts.len() {
        3 if !parts[0].is_empty() => Some(parts[0].clone()),
        _ => None,
    };
    Some((db, measurement))
}

/// Subqueries looked into for the measurement of a SELECT.
const MAX_SUBQUERY_DEPTH: usize = 8;

/// Where a `/regex/` at the start of `rest` ends (past its closing slash).
fn regex_end(rest: &[u8]) -> Option<usize> {
    let mut at = 1;
    while at < rest.len() {
        match rest[at] {
            b'\\' => at += 2,
            b'/' => return Some(at + 1),
            _ => at += 1,
        }
    }
    None
}

/// Up to three parts of a dotted name: each quoted (`"..."`, or `'...'` as influx-proxy
/// takes it), bare, or empty (`db..m`).
fn dotted_name(rest: &[u8]) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut at = 0;
    loop {
        let (part, end) = match rest.get(at) {
            Some(&q @ (b'"' | b'\'')) => {
                let (end, text) = quoted(rest, at, q).ok()?;
                let inner = String::from_utf8_lossy(&text[1..text.len() - 1]).into_owned();
                (inner, end)
            }
            _ => {
                let end = rest[at..]
                    .iter()
                    .position(|&b| is_blank(b) || matches!(b, b'.' | b',' | b';' | b'(' | b')'))
                    .map_or(rest.len(), |i| at + i);
                (String::from_utf8_lossy(&rest[at..end]).into_owned(), end)
            }
        };
        parts.push(part);
        if parts.len() == 3 || rest.get(end) != Some(&b'.') {
            return Some(parts);
        }
        at = end + 1;
    }
}

/// Splits a query into its statements at each `;` outside quotes.
pub(crate) fn statements(q: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quote, mut escaped) = (0, None, false);
    for (i, b) in q.bytes().enumerate() {
        match (quote, b) {
            (_, _) if escaped => escaped = false,
            (Some(_), b'\\') => escaped = true,
            (Some(open), b) if b == open => quote = None,
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b';') => {
                out.push(&q[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&q[start..]);
    out.retain(|s| !s.trim().is_empty());
    out
}

#[cfg(any(test, feature = "testing"))]
/// Fuzz entry point: any text through the scan and the checks, never a panic.
pub fn fuzz_check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for statement in statements(&text) {
        let _ = std::hint::black_box(check(statement));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(q: &str) -> Vec<String> {
        tokens(q).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn tokens_are_scanned_as_influx_proxy_scans_them() {
        assert_eq!(texts("select * from cpu"), ["select", "*", "from", "cpu"]);
        assert_eq!(
            texts(r#"select * from "c\"pu""#),
            ["select", "*", "from", "\"c\"pu\""]
        );
        assert_eq!(
            texts(r#"drop series from "telegraf".."cp u" where x"#),
            [
                "drop",
                "series",
                "from",
                "\"telegraf\"",
                "..",
                "\"cp u\"",
                "where",
                "x"
            ]
        );
        assert_eq!(texts("(select *) from x"), ["(select *)", "from", "x"]);
        // A quote with a wrong escape ends the scan where it is.
        assert_eq!(texts(r#"select * from "c\pu""#), ["select", "*", "from"]);
        assert_eq!(
            texts("select\t*\nfrom  cpu"),
            ["select", "*", "from", "cpu"]
        );
    }

    fn measurement(q: &str) -> (Option<String>, String) {
        match check(q).unwrap().route {
            Route::Measurement { db, measurement } | Route::EveryOwner { db, measurement } => {
                (db, measurement)
            }
            other => panic!("{q}: {other:?}"),
        }
    }

    #[test]
    fn the_measurement_is_the_last_part_of_the_name_after_from() {
        for (q, m) in [
            ("select * from cpu", "cpu"),
            (r#"select * from "c.pu""#, "c.pu"),
            (r#"select * from "c,pu""#, "c,pu"),
            (r#"select * from "c pu""#, "c pu"),
            (r#"select * from "c\"pu""#, "c\"pu"),
            ("select * from 'cpu'", "cpu"),
            ("select * from db.autogen.cpu", "cpu"),
            (r#"select * from db.autogen."cpu.load""#, "cpu.load"),
            (r#"select * from "d.b"."autogen"."cpu.load""#, "cpu.load"),
            ("select * from autogen.cpu where time > 0", "cpu"),
            ("SELECT mean(v) FROM cpu,mem", "cpu"),
            ("select * from /cpu.*/", "/cpu.*/"),
            (
                "SELECT mean(v) FROM (SELECT max(v) AS v FROM cpu GROUP BY host)",
                "cpu",
            ),
            (
                r#"DELETE FROM "cpu" WHERE time < '2000-01-01T00:00:00Z'"#,
                "cpu",
            ),
            ("DROP MEASUREMENT cpu;", "cpu"),
            (
                r#"DROP SERIES FROM "telegraf".."cp u" WHERE cpu = 'cpu8'"#,
                "cp u",
            ),
            ("show field keys from cpu", "cpu"),
            ("SHOW TAG VALUES FROM cpu WITH KEY = host", "cpu"),
        ] {
            assert_eq!(measurement(q).1, m, "{q}");
        }
        assert_eq!(
            measurement(r#"select * from "d.b".."cpu""#).0.as_deref(),
            Some("d.b")
        );
        assert_eq!(measurement("select * from autogen.cpu").0, None);
    }

    #[test]
    fn the_whitelist_is_influx_proxys() {
        for q in [
            "select * into x from cpu",
            "SELECT 1",
            "select now()",
            "show users",
            "show continuous queries",
            "create user x with password 'y'",
            "grant all to x",
            "drop series where host = 'a'",
            "delete where time < 0",
            "alter retention policy x on db duration 1h",
            "kill query 1",
            ";",
            "",
        ] {
            assert_eq!(check(q), Err(Refusal::Forbidden), "{q}");
        }
        for q in [
            "select * from cpu",
            "show measurements",
            "SHOW SERIES",
            "show field keys",
            "show tag keys",
            "show tag values with key = host",
            "show retention policies on db",
            "show stats",
            "show databases",
            "create database x",
            "drop database x",
            "delete from cpu",
            "drop series from cpu",
            "drop measurement cpu",
            "show shards from x",
        ] {
            assert!(check(q).is_ok(), "{q}");
        }
    }

    #[test]
    fn shows_without_from_merge_a_whole_circle() {
        let merge = |q: &str| match check(q).unwrap().route {
            Route::Circle { merge } => merge,
            other => panic!("{q}: {other:?}"),
        };
        assert_eq!(merge("show measurements"), Merge::Values);
        assert_eq!(
            merge("SHOW MEASUREMENTS WITH MEASUREMENT =~ /cpu/"),
            Merge::Values
        );
        assert_eq!(merge("show databases"), Merge::Values);
        assert_eq!(merge("show tag values with key = host"), Merge::Series);
        assert_eq!(merge("show retention policies"), Merge::Rows);
        assert_eq!(merge("show stats"), Merge::Results);
    }

    #[test]
    fn databases_are_named_as_influx_proxy_names_them() {
        let c = check(r#"CREATE DATABASE "f.oo""#).unwrap();
        assert_eq!(c.route, Route::EveryBackend);
        assert_eq!(c.altered_db.as_deref(), Some("f.oo"));
        assert_eq!(
            check("create database foo;").unwrap().altered_db.as_deref(),
            Some("foo")
        );
        assert_eq!(
            check("SHOW RETENTION POLICIES ON \"mydb\"")
                .unwrap()
                .named_db
                .as_deref(),
            Some("mydb")
        );
        assert_eq!(
            check("show measurements on mydb.autogen")
                .unwrap()
                .named_db
                .as_deref(),
            Some("mydb")
        );
        assert!(check("show databases").unwrap().shows_databases);
    }

    #[test]
    fn statements_split_at_semicolons_outside_quotes() {
        assert_eq!(
            statements("select * from a; select * from \"b;c\" ;"),
            ["select * from a", " select * from \"b;c\" "]
        );
        assert_eq!(
            statements("select 'x\\';y' from a"),
            ["select 'x\\';y' from a"]
        );
    }
}
