//! InfluxQL (InfluxDB 1.x) lexer, parser and typed AST.
//!
//! ```ignore
//! let stmts = parse_query("SELECT mean(v) FROM cpu WHERE time > now() - 1h GROUP BY time(1m)")?;
//! ```

pub(crate) mod ast;
pub(crate) mod display;
mod go_regex;
pub(crate) mod lexer;
#[allow(clippy::module_inception)]
pub(crate) mod parser;

#[cfg(test)]
mod tests;

pub(crate) use self::ast::*;
pub(crate) use self::parser::{ParamValue, ParseError};

/// Parses `;`-separated InfluxQL statements.  An empty query yields an empty list.
pub(crate) fn parse_query(text: &str) -> Result<Vec<Statement>, ParseError> {
    let sc = self::lexer::Scanner::new(text);
    self::parser::Parser::new(&sc).parse_query()
}

/// Like [`parse_query`], substituting `$name` bound parameters at scan time
/// (so a parameter can stand for an identifier, regex, number, ... anywhere
/// that token is allowed).  An unknown `$name` is an error
/// ("missing parameter: name").
pub(crate) fn parse_query_with_params(
    text: &str,
    params: &std::collections::HashMap<String, ParamValue>,
) -> Result<Vec<Statement>, ParseError> {
    let sc = self::lexer::Scanner::new(text);
    self::parser::Parser::new(&sc)
        .with_params(params)
        .parse_query()
}

#[cfg(test)]
/// Parses exactly one statement, optionally followed by `;`.  Unlike
/// [`parse_query`], empty input is an error ("found EOF, expected SELECT, ...").
pub(crate) fn parse_statement(text: &str) -> Result<Statement, ParseError> {
    let sc = self::lexer::Scanner::new(text);
    let mut p = self::parser::Parser::new(&sc);
    let st = p.parse_statement()?;
    p.expect_end_of_statements()?;
    Ok(st)
}

#[cfg(any(test, feature = "testing"))]
/// Fuzz entry point: any bytes, never panics, bounded time and stack.
pub fn fuzz_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(stmts) = parse_query(&text) {
        for s in &stmts {
            let rendered = s.to_string();
            let again = parse_query(&rendered);
            debug_assert!(
                matches!(&again, Ok(v) if v.len() == 1 && &v[0] == s),
                "round trip failed: {rendered:?} -> {again:?}"
            );
        }
    }
}
