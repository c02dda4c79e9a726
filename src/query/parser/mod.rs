//! InfluxQL (InfluxDB 1.x) lexer, parser and typed AST.
//!
//! ```ignore
//! let stmts = parse_query("SELECT mean(v) FROM cpu WHERE time > now() - 1h GROUP BY time(1m)")?;
//! ```

pub mod ast;
pub mod display;
pub mod lexer;
#[allow(clippy::module_inception)]
pub mod parser;

#[cfg(test)]
mod tests;

pub use self::ast::*;
pub use self::lexer::{format_duration, parse_duration, Pos};
pub use self::parser::{ParamValue, ParseError, MAX_EXPR_HEIGHT, MAX_NESTING};

/// Parses `;`-separated InfluxQL statements.  An empty query yields an empty list.
pub fn parse_query(text: &str) -> Result<Vec<Statement>, ParseError> {
    let sc = self::lexer::Scanner::new(text);
    self::parser::Parser::new(&sc).parse_query()
}

/// Like [`parse_query`], substituting `$name` bound parameters at scan time
/// (so a parameter can stand for an identifier, regex, number, ... anywhere
/// that token is allowed).  An unknown `$name` is an error
/// ("missing parameter: name").
pub fn parse_query_with_params(
    text: &str,
    params: &std::collections::HashMap<String, ParamValue>,
) -> Result<Vec<Statement>, ParseError> {
    let sc = self::lexer::Scanner::new(text);
    self::parser::Parser::new(&sc)
        .with_params(params)
        .parse_query()
}

/// Parses exactly one statement, optionally followed by `;`.  Unlike
/// [`parse_query`], empty input is an error ("found EOF, expected SELECT, ...").
pub fn parse_statement(text: &str) -> Result<Statement, ParseError> {
    let sc = self::lexer::Scanner::new(text);
    let mut p = self::parser::Parser::new(&sc);
    let st = p.parse_statement()?;
    p.expect_end_of_statements()?;
    Ok(st)
}

/// Parses a single expression (e.g. a WHERE condition) with nothing after it.
pub fn parse_expr(text: &str) -> Result<Expr, ParseError> {
    let sc = self::lexer::Scanner::new(text);
    let mut p = self::parser::Parser::new(&sc);
    let e = p.parse_expr()?;
    p.expect_eof()?;
    Ok(e)
}

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
