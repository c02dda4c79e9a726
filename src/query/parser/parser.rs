//! Recursive-descent InfluxQL parser producing the typed AST.
//!
//! The control flow mirrors InfluxDB 1.x closely so that error messages
//! ("found X, expected Y at line L, char C") and their positions match.

use super::ast::*;
use super::lexer::{
    format_duration, is_whitespace, parse_duration, Keyword as K, Pos, Scanner, Tok, Token,
};
use std::collections::HashMap;
use std::fmt;

/// Maximum nesting of parentheses / function calls / subqueries.
pub(crate) const MAX_NESTING: usize = 256;
/// Nesting units charged per SELECT (so at most 32 nested subqueries).
pub(crate) const SUBQUERY_COST: usize = 8;
/// Maximum height of one expression tree (long `a OR b OR ...` chains count).
pub(crate) const MAX_EXPR_HEIGHT: usize = 1000;

/// A parse error, rendered exactly like InfluxDB 1.x renders its errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub(crate) struct ParseError {
    /// Free-form message; empty for "found X, expected Y" errors.
    pub message: String,
    pub found: String,
    pub expected: Vec<String>,
    /// `None` for errors InfluxDB reports without a position.
    pub pos: Option<Pos>,
}

impl ParseError {
    pub(super) fn unexpected(t: &Token, expected: &[&str]) -> ParseError {
        ParseError {
            message: String::new(),
            found: t.found(),
            expected: expected.iter().map(|s| s.to_string()).collect(),
            pos: Some(t.pos),
        }
    }

    pub(super) fn at(message: impl Into<String>, pos: Pos) -> ParseError {
        ParseError {
            message: message.into(),
            found: String::new(),
            expected: vec![],
            pos: Some(pos),
        }
    }

    pub(crate) fn plain(message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            found: String::new(),
            expected: vec![],
            pos: None,
        }
    }

    fn render(&self) -> String {
        match self.pos {
            None => self.message.clone(),
            Some(p) if !self.message.is_empty() => {
                format!(
                    "{} at line {}, char {}",
                    self.message,
                    p.line + 1,
                    p.char + 1
                )
            }
            Some(p) => format!(
                "found {}, expected {} at line {}, char {}",
                self.found,
                self.expected.join(", "),
                p.line + 1,
                p.char + 1
            ),
        }
    }

    /// The text InfluxDB's HTTP handler returns in `{"error": ...}`.
    pub(crate) fn http_message(&self) -> String {
        format!("error parsing query: {self}")
    }
}

type PResult<T> = Result<T, ParseError>;

const TOP_KEYS: &[&str] = &[
    "SELECT", "DELETE", "SHOW", "CREATE", "DROP", "EXPLAIN", "GRANT", "REVOKE", "ALTER", "SET",
    "KILL",
];
const SHOW_KEYS: &[&str] = &[
    "CONTINUOUS",
    "DATABASES",
    "DIAGNOSTICS",
    "FIELD",
    "GRANTS",
    "MEASUREMENT",
    "MEASUREMENTS",
    "QUERIES",
    "RETENTION",
    "SERIES",
    "SHARD",
    "SHARDS",
    "STATS",
    "SUBSCRIPTIONS",
    "TAG",
    "USERS",
];
const CREATE_KEYS: &[&str] = &[
    "CONTINUOUS",
    "DATABASE",
    "USER",
    "RETENTION",
    "SUBSCRIPTION",
];
const DROP_KEYS: &[&str] = &[
    "CONTINUOUS",
    "DATABASE",
    "MEASUREMENT",
    "RETENTION",
    "SERIES",
    "SHARD",
    "SUBSCRIPTION",
    "USER",
];

#[derive(Clone, Copy, PartialEq)]
enum TargetReq {
    Required,
    NotRequired,
    Subquery,
}

/// A bound parameter value (the `params` form field of `/query`), substituted
/// for `$name` at scan time exactly like InfluxDB does.  JSON mapping used by
/// InfluxDB: string -> `String`, integral number -> `Integer`, other number ->
/// `Number`, bool -> `Boolean`, `{"identifier"|"ident": s}` -> `Identifier`,
/// `{"regex": s}` -> `Regex`, `{"duration": "1h"}` -> `Duration`,
/// `{"string"|"float"|"number"|"int"|"integer": v}` -> the matching literal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ParamValue {
    Identifier(String),
    String(String),
    Regex(String),
    Number(f64),
    Integer(i64),
    Boolean(bool),
    /// Duration literal text, e.g. `"1h30m"`.
    Duration(String),
    /// A value that could not be bound; using it fails with this message.
    Error(String),
}

pub(super) struct Parser<'a> {
    sc: &'a Scanner,
    params: Option<&'a HashMap<String, ParamValue>>,
    i: usize,
    hist: Vec<usize>,
    depth: usize,
    /// The reference reader has consumed end-of-input without producing an
    /// EOF token; later EOF tokens are then reported one character further.
    eof_consumed: bool,
    eof_pos: Option<Pos>,
    /// Start indexes of the last two significant tokens, in input order.
    recent: [usize; 2],
    /// Recent raw scans as (start, token, next).  The grammar peeks by scanning and
    /// unscanning, so most tokens are scanned several times from the same index; the
    /// scanner is a pure function of that index, so a repeat is answered from here.
    memo: [Option<(usize, Token, usize)>; MEMO],
    memo_next: usize,
}

/// Raw scans remembered (an unscan goes back at most a couple of tokens).
const MEMO: usize = 4;

fn kw(t: &Token, k: K) -> bool {
    t.tok == Tok::Kw(k)
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
}

fn binop(t: Tok) -> BinaryOp {
    match t {
        Tok::Add => BinaryOp::Add,
        Tok::Sub => BinaryOp::Sub,
        Tok::Mul => BinaryOp::Mul,
        Tok::Div => BinaryOp::Div,
        Tok::Mod => BinaryOp::Mod,
        Tok::BitAnd => BinaryOp::BitAnd,
        Tok::BitOr => BinaryOp::BitOr,
        Tok::BitXor => BinaryOp::BitXor,
        Tok::And => BinaryOp::And,
        Tok::Or => BinaryOp::Or,
        Tok::Eq => BinaryOp::Eq,
        Tok::Neq => BinaryOp::Neq,
        Tok::EqRegex => BinaryOp::EqRegex,
        Tok::NeqRegex => BinaryOp::NeqRegex,
        Tok::Lt => BinaryOp::Lt,
        Tok::Lte => BinaryOp::Lte,
        Tok::Gt => BinaryOp::Gt,
        _ => BinaryOp::Gte,
    }
}

/// Height of an expression tree, not looking deeper than `cap`.
fn height(e: &Expr, cap: usize) -> usize {
    if cap == 0 {
        return 1;
    }
    match e {
        Expr::Binary(b) => 1 + height(&b.lhs, cap - 1).max(height(&b.rhs, cap - 1)),
        Expr::Paren(x) => 1 + height(x, cap - 1),
        Expr::Call(c) => 1 + c.args.iter().map(|a| height(a, cap - 1)).max().unwrap_or(0),
        _ => 1,
    }
}

fn contains_call(e: &Expr) -> bool {
    match e {
        Expr::Call(_) => true,
        Expr::Binary(b) => contains_call(&b.lhs) || contains_call(&b.rhs),
        Expr::Paren(x) => contains_call(x),
        _ => false,
    }
}

/// Inserts `op rhs` into the tree by precedence (left-associative).
fn insert(slot: &mut Expr, op: BinaryOp, rhs: Expr) {
    if let Expr::Binary(b) = slot {
        if b.op.precedence() < op.precedence() {
            return insert(&mut b.rhs, op, rhs);
        }
    }
    let lhs = std::mem::replace(slot, Expr::Boolean(false));
    *slot = Expr::binary(op, lhs, rhs);
}

/// Finds the operator InfluxDB reports in "invalid operator ... in SELECT clause".
fn invalid_field_op(e: &Expr, found: &mut Option<BinaryOp>) {
    match e {
        Expr::Binary(b) => {
            if b.op.is_comparison_or_logical() {
                *found = Some(b.op);
                return;
            }
            invalid_field_op(&b.lhs, found);
            invalid_field_op(&b.rhs, found);
        }
        Expr::Paren(x) => invalid_field_op(x, found),
        Expr::Call(c) => c.args.iter().for_each(|a| invalid_field_op(a, found)),
        _ => {}
    }
}

impl<'a> Parser<'a> {
    pub(super) fn new(sc: &'a Scanner) -> Parser<'a> {
        Parser {
            sc,
            params: None,
            i: 0,
            hist: Vec::new(),
            depth: 0,
            eof_consumed: false,
            eof_pos: None,
            recent: [0; 2],
            memo: Default::default(),
            memo_next: 0,
        }
    }

    pub(super) fn with_params(mut self, params: &'a HashMap<String, ParamValue>) -> Parser<'a> {
        self.params = Some(params);
        self
    }

    // ---- token plumbing -------------------------------------------------

    fn substitute(&self, t: &mut Token) {
        let Some(v) = self.params.and_then(|p| p.get(&t.lit[1..])) else {
            return;
        };
        let (tok, lit) = match v {
            ParamValue::Identifier(s) => (Tok::Ident, s.clone()),
            ParamValue::String(s) => (Tok::Str, s.clone()),
            ParamValue::Regex(s) => (Tok::Regex, s.clone()),
            ParamValue::Number(f) => (Tok::Number, format!("{f}")),
            ParamValue::Integer(i) => (Tok::Integer, i.to_string()),
            ParamValue::Boolean(b) => (if *b { Tok::True } else { Tok::False }, String::new()),
            ParamValue::Duration(d) => (Tok::DurationVal, d.clone()),
            // As InfluxDB's scanner, the reason stands in the token's place, so that it is
            // what an error at this position names.
            ParamValue::Error(reason) => (Tok::BoundParam, reason.clone()),
        };
        t.tok = tok;
        t.lit = lit;
    }

    fn push(&mut self, i: usize) {
        if self.hist.len() >= 64 {
            self.hist.drain(..32);
        }
        self.hist.push(i);
    }

    /// Applies the reference reader's end-of-input position rules to a token.
    fn produced(&mut self, mut t: Token, n: usize) -> Token {
        if t.tok == Tok::BoundParam {
            self.substitute(&mut t);
        }
        let len = self.sc.len();
        if t.tok == Tok::Eof {
            let end = self.sc.pos_at(len);
            let consumed = self.eof_consumed;
            t.pos = *self.eof_pos.get_or_insert(if consumed {
                Pos {
                    line: end.line,
                    char: end.char + 1,
                }
            } else {
                end
            });
        } else if n >= len {
            let last = if n > 0 { self.sc.peek(n - 1) } else { None };
            let consumes = match t.tok {
                Tok::Ws | Tok::Comment => true,
                Tok::BadString | Tok::BadRegex => last != Some('\n'),
                Tok::BadEscape => t.lit.ends_with('\0'),
                Tok::Illegal => t.lit.is_empty(),
                Tok::Ident
                | Tok::BoundParam
                | Tok::Kw(_)
                | Tok::True
                | Tok::False
                | Tok::And
                | Tok::Or => last != Some('"'),
                _ => false,
            };
            if consumes {
                self.eof_consumed = true;
            }
        }
        t
    }

    /// The scanner's token at `i`, from the memo when it was scanned there lately.
    fn raw_scan(&mut self, i: usize) -> (Token, usize) {
        for (start, t, next) in self.memo.iter().flatten() {
            if *start == i {
                return (t.clone(), *next);
            }
        }
        let (t, n) = self.sc.scan(i);
        self.memo[self.memo_next] = Some((i, t.clone(), n));
        self.memo_next = (self.memo_next + 1) % MEMO;
        (t, n)
    }

    fn scan(&mut self) -> Token {
        let (t, n) = self.raw_scan(self.i);
        self.push(self.i);
        self.i = n;
        self.produced(t, n)
    }

    fn scan_ws(&mut self) -> Token {
        let len = self.sc.len();
        loop {
            // Plain whitespace is skipped without making a token; a run reaching the end
            // consumes end-of-input, as a WS token there would (see `produced`).
            while self
                .sc
                .peek(self.i)
                .is_some_and(super::lexer::is_whitespace)
            {
                self.i += 1;
                if self.i >= len {
                    self.eof_consumed = true;
                }
            }
            let (t, n) = self.raw_scan(self.i);
            let t = self.produced(t, n);
            if matches!(t.tok, Tok::Ws | Tok::Comment) {
                self.i = n;
                continue;
            }
            if self.i > self.recent[1] {
                self.recent = [self.recent[1], self.i];
            }
            self.push(self.i);
            self.i = n;
            return t;
        }
    }

    fn unscan(&mut self) {
        if let Some(i) = self.hist.pop() {
            self.i = i;
        }
    }

    fn peek_rune(&mut self) -> Option<char> {
        let c = self.sc.peek(self.i);
        if c.is_none() {
            self.eof_consumed = true;
        }
        c
    }

    fn consume_whitespace(&mut self) {
        if self.scan().tok != Tok::Ws {
            self.unscan();
        }
    }

    /// Consumes `k` if it is the next token.
    fn accept(&mut self, k: K) -> bool {
        let t = self.scan_ws();
        if kw(&t, k) {
            true
        } else {
            self.unscan();
            false
        }
    }

    fn expect(&mut self, k: K) -> PResult<()> {
        let t = self.scan_ws();
        if kw(&t, k) {
            Ok(())
        } else {
            Err(ParseError::unexpected(&t, &[k.as_str()]))
        }
    }

    fn expect_tok(&mut self, tok: Tok) -> PResult<Token> {
        let t = self.scan_ws();
        if t.tok == tok {
            Ok(t)
        } else {
            Err(ParseError::unexpected(&t, &[tok.as_str()]))
        }
    }

    /// Optional `;`s then end of input.
    #[cfg(test)]
    pub(super) fn expect_end_of_statements(&mut self) -> PResult<()> {
        loop {
            let t = self.scan_ws();
            match t.tok {
                Tok::Eof => return Ok(()),
                Tok::Semicolon => continue,
                _ => return Err(ParseError::unexpected(&t, &[";"])),
            }
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.enter_n(1)
    }

    /// Adds `units` to the nesting budget (subqueries cost more stack than parentheses).
    fn enter_n(&mut self, units: usize) -> PResult<()> {
        self.depth += units;
        if self.depth > MAX_NESTING {
            let (t, _) = self.sc.scan(self.i);
            return Err(ParseError::at(
                format!("query nesting exceeds maximum depth of {MAX_NESTING}"),
                t.pos,
            ));
        }
        Ok(())
    }

    // ---- primitives -----------------------------------------------------

    fn parse_ident(&mut self) -> PResult<String> {
        let t = self.scan_ws();
        if t.tok != Tok::Ident {
            return Err(ParseError::unexpected(&t, &["identifier"]));
        }
        Ok(t.lit)
    }

    fn parse_ident_list(&mut self) -> PResult<Vec<String>> {
        let mut v = vec![self.parse_ident()?];
        loop {
            if self.scan_ws().tok != Tok::Comma {
                self.unscan();
                return Ok(v);
            }
            v.push(self.parse_ident()?);
        }
    }

    fn parse_string(&mut self) -> PResult<String> {
        let t = self.scan_ws();
        if t.tok != Tok::Str {
            return Err(ParseError::unexpected(&t, &["string"]));
        }
        Ok(t.lit)
    }

    fn parse_string_list(&mut self) -> PResult<Vec<String>> {
        let mut v = vec![self.parse_string()?];
        loop {
            if self.scan_ws().tok != Tok::Comma {
                self.unscan();
                return Ok(v);
            }
            v.push(self.parse_string()?);
        }
    }

    fn parse_int(&mut self, min: i64, max: i64) -> PResult<i64> {
        let t = self.scan_ws();
        if t.tok != Tok::Integer {
            return Err(ParseError::unexpected(&t, &["integer"]));
        }
        let n: i64 = t.lit.parse().map_err(|_| {
            ParseError::at(
                format!("strconv.Atoi: parsing {:?}: value out of range", t.lit),
                t.pos,
            )
        })?;
        if n < min || n > max {
            return Err(ParseError::at(
                format!("invalid value {n}: must be {min} <= n <= {max}"),
                t.pos,
            ));
        }
        Ok(n)
    }

    fn parse_u64(&mut self) -> PResult<u64> {
        let t = self.scan_ws();
        if t.tok != Tok::Integer {
            return Err(ParseError::unexpected(&t, &["integer"]));
        }
        t.lit.parse().map_err(|_| {
            ParseError::at(
                format!("strconv.ParseUint: parsing {:?}: value out of range", t.lit),
                t.pos,
            )
        })
    }

    /// Duration or INF (INF = 0).
    fn parse_duration_tok(&mut self) -> PResult<i64> {
        let t = self.scan_ws();
        match t.tok {
            Tok::Kw(K::Inf) => Ok(0),
            Tok::DurationVal => {
                parse_duration(&t.lit).map_err(|e| ParseError::at(e.to_string(), t.pos))
            }
            _ => Err(ParseError::unexpected(&t, &["duration"])),
        }
    }

    fn parse_shard_duration(&mut self) -> PResult<i64> {
        let t = self.scan_ws();
        if kw(&t, K::Inf) {
            return Err(ParseError::at(
                "invalid duration INF for shard duration",
                t.pos,
            ));
        }
        self.unscan();
        self.parse_duration_tok()
    }

    fn parse_write_limit(&mut self) -> PResult<i64> {
        let t = self.scan_ws();
        if !kw(&t, K::Limit) {
            return Err(ParseError::unexpected(&t, &["LIMIT"]));
        }
        self.parse_duration_tok()
    }

    fn parse_optional_int(&mut self, k: K) -> PResult<u64> {
        if !self.accept(k) {
            return Ok(0);
        }
        let t = self.scan_ws();
        if t.tok != Tok::Integer {
            return Err(ParseError::unexpected(&t, &["integer"]));
        }
        // Like strconv.ParseInt: out-of-range saturates.
        Ok(t.lit.parse::<i64>().unwrap_or(i64::MAX) as u64)
    }

    fn parse_on_database(&mut self) -> PResult<Option<String>> {
        if self.accept(K::On) {
            Ok(Some(self.parse_ident()?))
        } else {
            Ok(None)
        }
    }

    fn parse_from_sources(&mut self) -> PResult<Vec<Source>> {
        if self.accept(K::From) {
            self.parse_sources(false)
        } else {
            Ok(vec![])
        }
    }

    fn parse_segmented_idents(&mut self) -> PResult<Vec<String>> {
        let mut idents = vec![self.parse_ident()?];
        loop {
            if self.scan().tok != Tok::Dot {
                self.unscan();
                break;
            }
            match self.peek_rune() {
                Some('/') | Some(':') => break,
                Some('.') => {
                    idents.push(String::new());
                    continue;
                }
                _ => {}
            }
            idents.push(self.parse_ident()?);
        }
        if idents.len() > 3 {
            return Err(ParseError::at(
                format!(
                    "too many segments in {}",
                    super::display::quote_segments(&idents)
                ),
                Pos::default(),
            ));
        }
        Ok(idents)
    }

    fn parse_regex(&mut self) -> PResult<Option<Regex>> {
        if self.peek_rune().is_some_and(is_whitespace) {
            self.consume_whitespace();
        }
        match self.peek_rune() {
            Some('$') => {
                let t = self.scan();
                self.unscan();
                if t.tok != Tok::Regex {
                    return Ok(None);
                }
            }
            Some('/') => {}
            _ => return Ok(None),
        }
        let (t, n) = self.sc.scan_regex(self.i);
        self.push(self.i);
        self.i = n;
        let t = self.produced(t, n);
        // 1.x reports a regex's errors at the character before its `/`.
        let at = Pos {
            char: t.pos.char.saturating_sub(1),
            ..t.pos
        };
        match t.tok {
            // 1.x compiles the pattern here: a bad one refuses the whole query.
            Tok::Regex => match super::go_regex::check(&t.lit) {
                Ok(()) => Ok(Some(Regex { pattern: t.lit })),
                Err(message) => Err(ParseError::at(message, at)),
            },
            Tok::BadEscape => Err(ParseError::at(format!("bad escape: {}", t.lit), at)),
            Tok::BadRegex => Err(ParseError::at(format!("bad regex: {}", t.lit), at)),
            _ => Err(ParseError::unexpected(&t, &["regex"])),
        }
    }

    // ---- queries ------------------------------------------------------------

    pub(super) fn parse_query(&mut self) -> PResult<Vec<Statement>> {
        let mut stmts = Vec::new();
        let mut semi = true;
        loop {
            let t = self.scan_ws();
            match t.tok {
                Tok::Eof => return Ok(stmts),
                Tok::Semicolon => semi = true,
                _ => {
                    if !semi {
                        return Err(ParseError::unexpected(&t, &[";"]));
                    }
                    self.unscan();
                    stmts.push(self.parse_statement()?);
                    semi = false;
                }
            }
        }
    }

    pub(super) fn parse_statement(&mut self) -> PResult<Statement> {
        let t = self.scan_ws();
        let k = match t.tok {
            Tok::Kw(k) => k,
            _ => return Err(ParseError::unexpected(&t, TOP_KEYS)),
        };
        match k {
            K::Select => Ok(Statement::Select(Box::new(
                self.parse_select(TargetReq::NotRequired)?,
            ))),
            K::Delete => self.parse_delete(),
            K::Show => self.parse_show(),
            K::Create => self.parse_create(),
            K::Drop => self.parse_drop(),
            K::Explain => self.parse_explain(),
            K::Grant => self.parse_grant(),
            K::Revoke => self.parse_revoke(),
            K::Alter => {
                self.expect(K::Retention)?;
                self.expect(K::Policy)?;
                self.parse_alter_rp()
            }
            K::Set => {
                self.expect(K::Password)?;
                self.expect(K::For)?;
                let name = self.parse_ident()?;
                self.expect_tok(Tok::Eq)?;
                let password = self.parse_string()?;
                Ok(Statement::SetPassword { name, password })
            }
            K::Kill => {
                self.expect(K::Query)?;
                let id = self.parse_u64()?;
                let host = self.parse_on_database()?;
                Ok(Statement::KillQuery { id, host })
            }
            _ => Err(ParseError::unexpected(&t, TOP_KEYS)),
        }
    }

    fn parse_show(&mut self) -> PResult<Statement> {
        let t = self.scan_ws();
        let k = match t.tok {
            Tok::Kw(k) => k,
            _ => return Err(ParseError::unexpected(&t, SHOW_KEYS)),
        };
        match k {
            K::Continuous => {
                self.expect(K::Queries)?;
                Ok(Statement::ShowContinuousQueries)
            }
            K::Databases => Ok(Statement::ShowDatabases),
            K::Diagnostics => Ok(Statement::ShowDiagnostics {
                module: self.parse_optional_module()?,
            }),
            K::Stats => Ok(Statement::ShowStats {
                module: self.parse_optional_module()?,
            }),
            K::Field => {
                let t = self.scan_ws();
                if kw(&t, K::Key) {
                    self.parse_key_cardinality(CardinalityKind::FieldKey)
                } else if kw(&t, K::Keys) {
                    let database = self.parse_on_database()?;
                    let sources = self.parse_from_sources()?;
                    let order_by = self.parse_order_by()?;
                    let limit = self.parse_optional_int(K::Limit)?;
                    let offset = self.parse_optional_int(K::Offset)?;
                    Ok(Statement::ShowFieldKeys(ShowFieldKeysStatement {
                        database,
                        sources,
                        order_by,
                        limit,
                        offset,
                    }))
                } else {
                    Err(ParseError::unexpected(&t, &["KEY", "KEYS"]))
                }
            }
            K::Grants => {
                self.expect(K::For)?;
                Ok(Statement::ShowGrantsForUser {
                    name: self.parse_ident()?,
                })
            }
            K::Measurement => {
                let t = self.scan_ws();
                if kw(&t, K::Exact) {
                    self.expect(K::Cardinality)?;
                    self.parse_cardinality_tail(CardinalityKind::Measurement, true)
                } else if kw(&t, K::Cardinality) {
                    self.parse_cardinality_tail(CardinalityKind::Measurement, false)
                } else {
                    Err(ParseError::unexpected(&t, &["EXACT", "CARDINALITY"]))
                }
            }
            K::Measurements => self.parse_show_measurements(),
            K::Queries => Ok(Statement::ShowQueries),
            K::Retention => {
                self.expect(K::Policies)?;
                Ok(Statement::ShowRetentionPolicies {
                    database: self.parse_on_database()?,
                })
            }
            K::Series => {
                let exact = self.accept(K::Exact);
                if self.accept(K::Cardinality) {
                    return self.parse_cardinality_tail(CardinalityKind::Series, exact);
                }
                let database = self.parse_on_database()?;
                let sources = self.parse_from_sources()?;
                let condition = self.parse_condition()?;
                let order_by = self.parse_order_by()?;
                let limit = self.parse_optional_int(K::Limit)?;
                let offset = self.parse_optional_int(K::Offset)?;
                Ok(Statement::ShowSeries(ShowSeriesStatement {
                    database,
                    sources,
                    condition,
                    order_by,
                    limit,
                    offset,
                }))
            }
            K::Shard => {
                self.expect(K::Groups)?;
                Ok(Statement::ShowShardGroups)
            }
            K::Shards => Ok(Statement::ShowShards),
            K::Subscriptions => Ok(Statement::ShowSubscriptions),
            K::Tag => {
                let t = self.scan_ws();
                if kw(&t, K::Key) {
                    self.parse_key_cardinality(CardinalityKind::TagKey)
                } else if kw(&t, K::Keys) {
                    self.parse_show_tag_keys()
                } else if kw(&t, K::Values) {
                    self.parse_show_tag_values()
                } else {
                    Err(ParseError::unexpected(&t, &["KEY", "KEYS", "VALUES"]))
                }
            }
            K::Users => Ok(Statement::ShowUsers),
            _ => Err(ParseError::unexpected(&t, SHOW_KEYS)),
        }
    }

    fn parse_optional_module(&mut self) -> PResult<Option<String>> {
        if self.accept(K::For) {
            Ok(Some(self.parse_string()?))
        } else {
            Ok(None)
        }
    }

    /// SHOW {TAG|FIELD} KEY [EXACT] CARDINALITY ...
    fn parse_key_cardinality(&mut self, kind: CardinalityKind) -> PResult<Statement> {
        let exact = self.accept(K::Exact);
        let t = self.scan_ws();
        if !kw(&t, K::Cardinality) {
            let exp: &[&str] = if exact {
                &["CARDINALITY"]
            } else {
                &["EXACT", "CARDINALITY"]
            };
            return Err(ParseError::unexpected(&t, exp));
        }
        self.parse_cardinality_tail(kind, exact)
    }

    fn parse_cardinality_tail(&mut self, kind: CardinalityKind, exact: bool) -> PResult<Statement> {
        let database = self.parse_on_database()?;
        let sources = self.parse_from_sources()?;
        let tag_key = if kind == CardinalityKind::TagValues {
            Some(self.parse_tag_key_expr()?)
        } else {
            None
        };
        let condition = self.parse_condition()?;
        let dimensions = self.parse_dimensions()?;
        let limit = self.parse_optional_int(K::Limit)?;
        let offset = self.parse_optional_int(K::Offset)?;
        Ok(Statement::ShowCardinality(ShowCardinalityStatement {
            kind,
            exact,
            database,
            sources,
            tag_key,
            condition,
            dimensions,
            limit,
            offset,
        }))
    }

    fn parse_show_measurements(&mut self) -> PResult<Statement> {
        let mut st = ShowMeasurementsStatement::default();
        if self.accept(K::On) {
            let t = self.scan_ws();
            match t.tok {
                Tok::Ident => st.database = Some(t.lit),
                Tok::Mul => st.wildcard_database = true,
                _ => return Err(ParseError::unexpected(&t, &["identifier or *"])),
            }
            if self.scan_ws().tok == Tok::Dot {
                let t = self.scan_ws();
                match t.tok {
                    Tok::Ident => st.retention_policy = Some(t.lit),
                    Tok::Mul => st.wildcard_retention_policy = true,
                    _ => return Err(ParseError::unexpected(&t, &["identifier or *"])),
                }
            } else {
                self.unscan();
            }
        }
        if self.accept(K::With) {
            self.expect(K::Measurement)?;
            let t = self.scan_ws();
            match t.tok {
                Tok::Eq | Tok::EqRegex => match self.parse_source(false)? {
                    Source::Measurement(m) => st.source = Some(m),
                    Source::Subquery(_) => unreachable!("subqueries disabled"),
                },
                _ => return Err(ParseError::unexpected(&t, &["=", "=~"])),
            }
        }
        st.condition = self.parse_condition()?;
        st.order_by = self.parse_order_by()?;
        st.limit = self.parse_optional_int(K::Limit)?;
        st.offset = self.parse_optional_int(K::Offset)?;
        Ok(Statement::ShowMeasurements(st))
    }

    fn parse_show_tag_keys(&mut self) -> PResult<Statement> {
        let mut st = ShowTagKeysStatement {
            database: self.parse_on_database()?,
            sources: self.parse_from_sources()?,
            ..Default::default()
        };
        // No WITH KEY here: 1.x's parser refuses it (`found WITH, expected ;`).
        st.condition = self.parse_condition()?;
        st.order_by = self.parse_order_by()?;
        st.limit = self.parse_optional_int(K::Limit)?;
        st.offset = self.parse_optional_int(K::Offset)?;
        st.slimit = self.parse_optional_int(K::Slimit)?;
        st.soffset = self.parse_optional_int(K::Soffset)?;
        Ok(Statement::ShowTagKeys(st))
    }

    fn parse_show_tag_values(&mut self) -> PResult<Statement> {
        let t = self.scan_ws();
        if kw(&t, K::Exact) {
            self.expect(K::Cardinality)?;
            return self.parse_cardinality_tail(CardinalityKind::TagValues, true);
        } else if kw(&t, K::Cardinality) {
            return self.parse_cardinality_tail(CardinalityKind::TagValues, false);
        }
        self.unscan();
        let database = self.parse_on_database()?;
        let sources = self.parse_from_sources()?;
        let tag_key = self.parse_tag_key_expr()?;
        let condition = self.parse_condition()?;
        let order_by = self.parse_order_by()?;
        let limit = self.parse_optional_int(K::Limit)?;
        let offset = self.parse_optional_int(K::Offset)?;
        Ok(Statement::ShowTagValues(ShowTagValuesStatement {
            database,
            sources,
            tag_key,
            condition,
            order_by,
            limit,
            offset,
        }))
    }

    fn parse_tag_key_expr(&mut self) -> PResult<TagKeyPredicate> {
        self.expect(K::With)?;
        self.expect(K::Key)?;
        let t = self.scan_ws();
        match t.tok {
            Tok::Kw(K::In) => {
                self.expect_tok(Tok::LParen)?;
                let keys = self.parse_ident_list()?;
                self.expect_tok(Tok::RParen)?;
                Ok(TagKeyPredicate::In(keys))
            }
            Tok::Eq => Ok(TagKeyPredicate::Eq(self.parse_ident()?)),
            Tok::Neq => Ok(TagKeyPredicate::Neq(self.parse_ident()?)),
            Tok::EqRegex | Tok::NeqRegex => match self.parse_regex()? {
                Some(re) if t.tok == Tok::EqRegex => Ok(TagKeyPredicate::EqRegex(re)),
                Some(re) => Ok(TagKeyPredicate::NeqRegex(re)),
                None => {
                    let t = self.scan_ws();
                    Err(ParseError::unexpected(&t, &["regex"]))
                }
            },
            _ => Err(ParseError::unexpected(&t, &["IN", "=", "=~"])),
        }
    }

    fn parse_create(&mut self) -> PResult<Statement> {
        let t = self.scan_ws();
        let k = match t.tok {
            Tok::Kw(k) => k,
            _ => return Err(ParseError::unexpected(&t, CREATE_KEYS)),
        };
        match k {
            K::Continuous => {
                self.expect(K::Query)?;
                self.parse_create_cq()
            }
            K::Database => self.parse_create_database(),
            K::User => {
                let name = self.parse_ident()?;
                self.expect(K::With)?;
                self.expect(K::Password)?;
                let password = self.parse_string()?;
                let mut admin = false;
                if self.accept(K::With) {
                    self.expect(K::All)?;
                    self.expect(K::Privileges)?;
                    admin = true;
                }
                Ok(Statement::CreateUser {
                    name,
                    password,
                    admin,
                })
            }
            K::Retention => {
                self.expect(K::Policy)?;
                self.parse_create_rp()
            }
            K::Subscription => {
                let name = self.parse_ident()?;
                self.expect(K::On)?;
                let database = self.parse_ident()?;
                let t = self.scan();
                if t.tok != Tok::Dot {
                    return Err(ParseError::unexpected(&t, &["."]));
                }
                let retention_policy = self.parse_ident()?;
                self.expect(K::Destinations)?;
                let t = self.scan_ws();
                let mode = match t.tok {
                    Tok::Kw(K::All) => "ALL",
                    Tok::Kw(K::Any) => "ANY",
                    _ => return Err(ParseError::unexpected(&t, &["ALL", "ANY"])),
                };
                let destinations = self.parse_string_list()?;
                Ok(Statement::CreateSubscription(CreateSubscriptionStatement {
                    name,
                    database,
                    retention_policy,
                    mode: mode.to_string(),
                    destinations,
                }))
            }
            _ => Err(ParseError::unexpected(&t, CREATE_KEYS)),
        }
    }

    fn parse_create_cq(&mut self) -> PResult<Statement> {
        let name = self.parse_ident()?;
        self.expect(K::On)?;
        let database = self.parse_ident()?;
        let (mut resample_every, mut resample_for) = (None, None);
        if self.accept(K::Resample) {
            if self.accept(K::Every) {
                resample_every = Some(self.parse_plain_duration()?);
            }
            if self.accept(K::For) {
                resample_for = Some(self.parse_plain_duration()?);
            }
            if resample_every.unwrap_or(0) == 0 && resample_for.unwrap_or(0) == 0 {
                let t = self.scan_ws();
                return Err(ParseError::unexpected(&t, &["EVERY", "FOR"]));
            }
        }
        self.expect(K::Begin)?;
        self.expect(K::Select)?;
        let source = self.parse_select(TargetReq::Required)?;
        let interval = source.group_by_interval();
        let has_call = source.fields.iter().any(|f| contains_call(&f.expr));
        if has_call && !matches!(interval, Ok(d) if d != 0) {
            // Report the last token of the SELECT, as InfluxDB does.
            let (t, n) = self.sc.scan(self.recent[0]);
            let t = self.produced(t, n);
            let mut expected = vec!["GROUP BY time(...)"];
            if let Err(e) = interval {
                expected.push(e);
            }
            return Err(ParseError::unexpected(&t, &expected));
        }
        self.expect(K::End)?;
        let interval = interval.map_err(ParseError::plain)?;
        if let Some(f) = resample_for.filter(|d| *d != 0) {
            let mut need = interval;
            if let Some(e) = resample_every.filter(|e| *e != 0 && *e > interval) {
                need = e;
            }
            if need > f {
                return Err(ParseError::plain(format!(
                    "FOR duration must be >= GROUP BY time duration: must be a minimum of {}, got {}",
                    format_duration(need),
                    format_duration(f)
                )));
            }
        }
        Ok(Statement::CreateContinuousQuery(
            CreateContinuousQueryStatement {
                name,
                database,
                resample_every,
                resample_for,
                source: Box::new(source),
            },
        ))
    }

    fn parse_plain_duration(&mut self) -> PResult<i64> {
        let t = self.scan_ws();
        if t.tok != Tok::DurationVal {
            return Err(ParseError::unexpected(&t, &["duration"]));
        }
        parse_duration(&t.lit).map_err(|e| ParseError::at(e.to_string(), t.pos))
    }

    fn parse_create_database(&mut self) -> PResult<Statement> {
        let mut st = CreateDatabaseStatement {
            name: self.parse_ident()?,
            ..Default::default()
        };
        if self.accept(K::With) {
            let t = self.scan_ws();
            let ok = matches!(
                t.tok,
                Tok::Kw(K::Duration | K::Name | K::Replication | K::Shard | K::Future | K::Past)
            );
            if !ok {
                return Err(ParseError::unexpected(
                    &t,
                    &["DURATION", "NAME", "REPLICATION", "SHARD", "FUTURE", "PAST"],
                ));
            }
            self.unscan();
            st.retention_policy_create = true;
            if self.accept(K::Duration) {
                st.duration = Some(self.parse_duration_tok()?);
            }
            if self.accept(K::Replication) {
                st.replication = Some(self.parse_int(1, i32::MAX as i64)? as u32);
            }
            if self.accept(K::Shard) {
                self.expect(K::Duration)?;
                st.shard_duration = Some(self.parse_duration_tok()?);
            }
            if self.accept(K::Future) {
                st.future_limit = Some(self.parse_write_limit()?);
            }
            if self.accept(K::Past) {
                st.past_limit = Some(self.parse_write_limit()?);
            }
            if self.accept(K::Name) {
                st.rp_name = Some(self.parse_ident()?);
            }
        }
        Ok(Statement::CreateDatabase(st))
    }

    fn parse_create_rp(&mut self) -> PResult<Statement> {
        let mut st = CreateRetentionPolicyStatement {
            name: self.parse_ident()?,
            ..Default::default()
        };
        self.expect(K::On)?;
        st.database = self.parse_ident()?;
        self.expect(K::Duration)?;
        st.duration = self.parse_duration_tok()?;
        self.expect(K::Replication)?;
        st.replication = self.parse_int(1, i32::MAX as i64)? as u32;
        if self.accept(K::Shard) {
            self.expect(K::Duration)?;
            st.shard_duration = Some(self.parse_shard_duration()?);
        }
        st.default = self.accept(K::Default);
        if self.accept(K::Future) {
            st.future_limit = Some(self.parse_write_limit()?);
        }
        if self.accept(K::Past) {
            st.past_limit = Some(self.parse_write_limit()?);
        }
        Ok(Statement::CreateRetentionPolicy(st))
    }

    fn parse_alter_rp(&mut self) -> PResult<Statement> {
        let mut st = AlterRetentionPolicyStatement::default();
        let t = self.scan_ws();
        st.name = match t.tok {
            Tok::Kw(K::Default) => "default".to_string(),
            Tok::Ident => t.lit,
            _ => return Err(ParseError::unexpected(&t, &["identifier"])),
        };
        self.expect(K::On)?;
        st.database = self.parse_ident()?;
        let mut found: Vec<Tok> = Vec::new();
        loop {
            let t = self.scan_ws();
            if found.contains(&t.tok) {
                return Err(ParseError::at(
                    format!("found duplicate {} option", t.tok),
                    t.pos,
                ));
            }
            match t.tok {
                Tok::Kw(K::Duration) => st.duration = Some(self.parse_duration_tok()?),
                Tok::Kw(K::Replication) => {
                    st.replication = Some(self.parse_int(1, i32::MAX as i64)? as u32)
                }
                Tok::Kw(K::Shard) => {
                    self.expect(K::Duration)?;
                    st.shard_duration = Some(self.parse_shard_duration()?);
                }
                Tok::Kw(K::Default) => st.default = true,
                Tok::Kw(K::Future) => st.future_limit = Some(self.parse_write_limit()?),
                Tok::Kw(K::Past) => st.past_limit = Some(self.parse_write_limit()?),
                _ => {
                    if found.is_empty() {
                        return Err(ParseError::unexpected(
                            &t,
                            &[
                                "DURATION",
                                "REPLICATION",
                                "SHARD",
                                "DEFAULT",
                                "FUTURE",
                                "PAST",
                            ],
                        ));
                    }
                    self.unscan();
                    break;
                }
            }
            found.push(t.tok);
        }
        Ok(Statement::AlterRetentionPolicy(st))
    }

    fn parse_drop(&mut self) -> PResult<Statement> {
        let t = self.scan_ws();
        let k = match t.tok {
            Tok::Kw(k) => k,
            _ => return Err(ParseError::unexpected(&t, DROP_KEYS)),
        };
        match k {
            K::Continuous => {
                self.expect(K::Query)?;
                let name = self.parse_ident()?;
                self.expect(K::On)?;
                Ok(Statement::DropContinuousQuery {
                    name,
                    database: self.parse_ident()?,
                })
            }
            K::Database => Ok(Statement::DropDatabase {
                name: self.parse_ident()?,
            }),
            K::Measurement => Ok(Statement::DropMeasurement {
                name: self.parse_ident()?,
            }),
            K::Retention => {
                self.expect(K::Policy)?;
                let name = self.parse_ident()?;
                self.expect(K::On)?;
                Ok(Statement::DropRetentionPolicy {
                    name,
                    database: self.parse_ident()?,
                })
            }
            K::Series => {
                let (sources, condition) = self.parse_from_where(true)?;
                Ok(Statement::DropSeries(DropSeriesStatement {
                    sources,
                    condition,
                }))
            }
            K::Shard => Ok(Statement::DropShard {
                id: self.parse_u64()?,
            }),
            K::Subscription => {
                let name = self.parse_ident()?;
                self.expect(K::On)?;
                let database = self.parse_ident()?;
                let t = self.scan();
                if t.tok != Tok::Dot {
                    return Err(ParseError::unexpected(&t, &["."]));
                }
                let retention_policy = self.parse_ident()?;
                Ok(Statement::DropSubscription {
                    name,
                    database,
                    retention_policy,
                })
            }
            K::User => Ok(Statement::DropUser {
                name: self.parse_ident()?,
            }),
            _ => Err(ParseError::unexpected(&t, DROP_KEYS)),
        }
    }

    /// `[FROM sources] [WHERE cond]`, at least one required (DELETE, DROP SERIES).
    fn parse_from_where(&mut self, reject_rp: bool) -> PResult<(Vec<Source>, Option<Expr>)> {
        let first = self.scan_ws();
        let mut sources = Vec::new();
        if kw(&first, K::From) {
            sources = self.parse_sources(false)?;
            let mut err = None;
            for s in &sources {
                if let Source::Measurement(m) = s {
                    if m.database.is_some() {
                        err = Some("database not supported");
                    }
                    if reject_rp && m.retention_policy.is_some() {
                        err = Some("retention policy not supported");
                    }
                }
            }
            if let Some(e) = err {
                return Err(ParseError::at(e, Pos::default()));
            }
        } else {
            self.unscan();
        }
        let condition = self.parse_condition()?;
        if condition.is_none() && sources.is_empty() {
            return Err(ParseError::unexpected(&first, &["FROM", "WHERE"]));
        }
        Ok((sources, condition))
    }

    fn parse_delete(&mut self) -> PResult<Statement> {
        let (sources, condition) = self.parse_from_where(true)?;
        Ok(Statement::Delete(DeleteStatement { sources, condition }))
    }

    fn parse_explain(&mut self) -> PResult<Statement> {
        let analyze = self.accept(K::Analyze);
        self.expect(K::Select)?;
        let s = self.parse_select(TargetReq::NotRequired)?;
        Ok(Statement::Explain {
            analyze,
            statement: Box::new(s),
        })
    }

    fn parse_privilege(&mut self) -> PResult<Privilege> {
        let t = self.scan_ws();
        match t.tok {
            Tok::Kw(K::Read) => Ok(Privilege::Read),
            Tok::Kw(K::Write) => Ok(Privilege::Write),
            Tok::Kw(K::All) => {
                self.accept(K::Privileges);
                Ok(Privilege::All)
            }
            _ => Err(ParseError::unexpected(
                &t,
                &["READ", "WRITE", "ALL [PRIVILEGES]"],
            )),
        }
    }

    fn parse_grant(&mut self) -> PResult<Statement> {
        let privilege = self.parse_privilege()?;
        let t = self.scan_ws();
        if kw(&t, K::On) {
            let database = self.parse_ident()?;
            self.expect(K::To)?;
            let user = self.parse_ident()?;
            return Ok(Statement::Grant {
                privilege,
                database,
                user,
            });
        }
        if kw(&t, K::To) {
            if privilege != Privilege::All {
                return Err(ParseError::unexpected(&t, &["ON"]));
            }
            return Ok(Statement::GrantAdmin {
                user: self.parse_ident()?,
            });
        }
        if privilege == Privilege::All {
            return Err(ParseError::unexpected(&t, &["ON", "TO"]));
        }
        Err(ParseError::unexpected(&t, &["ON"]))
    }

    fn parse_revoke(&mut self) -> PResult<Statement> {
        let privilege = self.parse_privilege()?;
        let t = self.scan_ws();
        if kw(&t, K::On) {
            let database = self.parse_ident()?;
            self.expect(K::From)?;
            let user = self.parse_ident()?;
            return Ok(Statement::Revoke {
                privilege,
                database,
                user,
            });
        }
        if kw(&t, K::From) {
            if privilege != Privilege::All {
                return Err(ParseError::unexpected(&t, &["ON"]));
            }
            return Ok(Statement::RevokeAdmin {
                user: self.parse_ident()?,
            });
        }
        if privilege == Privilege::All {
            return Err(ParseError::unexpected(&t, &["ON", "FROM"]));
        }
        Err(ParseError::unexpected(&t, &["ON"]))
    }

    // ---- SELECT -------------------------------------------------------------

    fn parse_select(&mut self, tr: TargetReq) -> PResult<SelectStatement> {
        self.enter_n(SUBQUERY_COST)?;
        let r = self.parse_select_inner(tr);
        self.depth -= SUBQUERY_COST;
        r
    }

    fn parse_select_inner(&mut self, tr: TargetReq) -> PResult<SelectStatement> {
        let mut st = SelectStatement {
            fields: self.parse_fields()?,
            ..Default::default()
        };
        st.target = self.parse_target(tr)?;
        self.expect(K::From)?;
        st.sources = self.parse_sources(true)?;
        st.condition = self.parse_condition()?;
        st.dimensions = self.parse_dimensions()?;
        st.fill = self.parse_fill()?;
        st.order_by = self.parse_order_by()?;
        st.limit = self.parse_optional_int(K::Limit)?;
        st.offset = self.parse_optional_int(K::Offset)?;
        st.slimit = self.parse_optional_int(K::Slimit)?;
        st.soffset = self.parse_optional_int(K::Soffset)?;
        st.location = self.parse_location()?;
        Ok(st)
    }

    fn parse_fields(&mut self) -> PResult<Vec<Field>> {
        let mut fields = Vec::new();
        loop {
            fields.push(self.parse_field()?);
            if self.scan().tok != Tok::Comma {
                self.unscan();
                return Ok(fields);
            }
        }
    }

    fn parse_field(&mut self) -> PResult<Field> {
        let expr = match self.parse_regex()? {
            Some(re) => Expr::Regex(re),
            None => {
                let pos = self.scan_ws().pos;
                self.unscan();
                let expr = self.parse_expr()?;
                let mut bad = None;
                invalid_field_op(&expr, &mut bad);
                if let Some(op) = bad {
                    return Err(ParseError::plain(format!(
                        "invalid operator {} in SELECT clause at line {}, char {}; operator is intended for WHERE clause",
                        op.as_str(),
                        pos.line + 1,
                        pos.char + 1
                    )));
                }
                expr
            }
        };
        let alias = self.parse_alias()?;
        self.consume_whitespace();
        Ok(Field { expr, alias })
    }

    fn parse_alias(&mut self) -> PResult<Option<String>> {
        if !self.accept(K::As) {
            return Ok(None);
        }
        Ok(Some(self.parse_ident()?))
    }

    fn parse_target(&mut self, tr: TargetReq) -> PResult<Option<Target>> {
        let t = self.scan_ws();
        if !kw(&t, K::Into) {
            if tr == TargetReq::Required {
                return Err(ParseError::unexpected(&t, &["INTO"]));
            }
            self.unscan();
            return Ok(None);
        }
        let mut idents = self.parse_segmented_idents()?;
        if idents.len() < 3 && self.peek_rune() == Some(':') {
            self.expect_tok(Tok::Colon)?;
            self.expect(K::Measurement)?;
            idents.push(String::new());
        }
        let mut it = idents.into_iter();
        let (a, b, c) = (it.next(), it.next(), it.next());
        Ok(Some(match (a, b, c) {
            (Some(name), None, None) => Target {
                database: None,
                retention_policy: None,
                name,
            },
            (Some(rp), Some(name), None) => Target {
                database: None,
                retention_policy: non_empty(rp),
                name,
            },
            (Some(db), Some(rp), Some(name)) => Target {
                database: non_empty(db),
                retention_policy: non_empty(rp),
                name,
            },
            _ => unreachable!("one to three segments"),
        }))
    }

    fn parse_sources(&mut self, subqueries: bool) -> PResult<Vec<Source>> {
        let mut v = Vec::new();
        loop {
            v.push(self.parse_source(subqueries)?);
            if self.scan_ws().tok != Tok::Comma {
                self.unscan();
                return Ok(v);
            }
        }
    }

    fn parse_source(&mut self, subqueries: bool) -> PResult<Source> {
        if let Some(re) = self.parse_regex()? {
            return Ok(Source::Measurement(Measurement {
                database: None,
                retention_policy: None,
                name: MeasurementName::Regex(re),
            }));
        }
        if subqueries {
            if self.scan_ws().tok == Tok::LParen {
                self.expect(K::Select)?;
                let st = self.parse_select(TargetReq::Subquery)?;
                self.expect_tok(Tok::RParen)?;
                return Ok(Source::Subquery(Box::new(st)));
            }
            self.unscan();
        }
        let idents = self.parse_segmented_idents()?;
        let mut it = idents.into_iter();
        let (a, b, c) = (it.next(), it.next(), it.next());
        if let (Some(db), Some(rp), Some(name)) = (&a, &b, &c) {
            return Ok(Source::Measurement(Measurement {
                database: non_empty(db.clone()),
                retention_policy: non_empty(rp.clone()),
                name: MeasurementName::Name(name.clone()),
            }));
        }
        let re = self.parse_regex()?;
        let m = match (a, b, re) {
            (Some(rp), None, Some(re)) => Measurement {
                database: None,
                retention_policy: non_empty(rp),
                name: MeasurementName::Regex(re),
            },
            (Some(name), None, None) => Measurement {
                database: None,
                retention_policy: None,
                name: MeasurementName::Name(name),
            },
            (Some(db), Some(rp), Some(re)) => Measurement {
                database: non_empty(db),
                retention_policy: non_empty(rp),
                name: MeasurementName::Regex(re),
            },
            (Some(rp), Some(name), None) => Measurement {
                database: None,
                retention_policy: non_empty(rp),
                name: MeasurementName::Name(name),
            },
            _ => unreachable!("at least one segment"),
        };
        Ok(Source::Measurement(m))
    }

    fn parse_condition(&mut self) -> PResult<Option<Expr>> {
        if !self.accept(K::Where) {
            return Ok(None);
        }
        Ok(Some(self.parse_expr()?))
    }

    fn parse_dimensions(&mut self) -> PResult<Vec<Dimension>> {
        if !self.accept(K::Group) {
            return Ok(vec![]);
        }
        self.expect(K::By)?;
        let mut dims = Vec::new();
        loop {
            let expr = match self.parse_regex()? {
                Some(re) => Expr::Regex(re),
                None => {
                    let e = self.parse_expr()?;
                    self.consume_whitespace();
                    e
                }
            };
            dims.push(Dimension { expr });
            if self.scan().tok != Tok::Comma {
                self.unscan();
                return Ok(dims);
            }
        }
    }

    fn parse_fill(&mut self) -> PResult<Option<Fill>> {
        let t = self.scan_ws();
        self.unscan();
        if t.tok != Tok::Ident || !t.lit.eq_ignore_ascii_case("fill") {
            return Ok(None);
        }
        let call = match self.parse_expr()? {
            Expr::Call(c) => c,
            _ => return Err(ParseError::plain("fill must be a function call")),
        };
        if call.args.len() != 1 {
            return Err(ParseError::plain(
                "fill requires an argument, e.g.: 0, null, none, previous, linear",
            ));
        }
        let fill = match &call.args[0] {
            Expr::VarRef(v) if v.data_type.is_none() && v.name == "null" => Fill::Null,
            Expr::VarRef(v) if v.data_type.is_none() && v.name == "none" => Fill::None,
            Expr::VarRef(v) if v.data_type.is_none() && v.name == "previous" => Fill::Previous,
            Expr::VarRef(v) if v.data_type.is_none() && v.name == "linear" => Fill::Linear,
            Expr::Integer(n) => Fill::Integer(*n),
            Expr::Number(n) => Fill::Number(*n),
            _ => return Err(ParseError::plain("expected number argument in fill()")),
        };
        Ok(Some(fill))
    }

    fn parse_location(&mut self) -> PResult<Option<String>> {
        let t = self.scan_ws();
        self.unscan();
        if t.tok != Tok::Ident || !t.lit.eq_ignore_ascii_case("tz") {
            return Ok(None);
        }
        let call = match self.parse_expr()? {
            Expr::Call(c) => c,
            _ => return Err(ParseError::plain("tz must be a function call")),
        };
        if call.args.len() != 1 {
            return Err(ParseError::plain("tz requires exactly one argument"));
        }
        match &call.args[0] {
            Expr::String(s) => Ok(Some(s.clone())),
            _ => Err(ParseError::plain("expected string argument in tz()")),
        }
    }

    fn parse_order_by(&mut self) -> PResult<Vec<SortField>> {
        if !self.accept(K::Order) {
            return Ok(vec![]);
        }
        self.expect(K::By)?;
        let mut fields = Vec::new();
        let t = self.scan_ws();
        match t.tok {
            Tok::Kw(K::Asc) | Tok::Kw(K::Desc) => fields.push(SortField {
                name: String::new(),
                ascending: kw(&t, K::Asc),
            }),
            Tok::Ident => {
                self.unscan();
                let f = self.parse_sort_field()?;
                if t.lit != "time" {
                    return Err(ParseError::plain(
                        "only ORDER BY time supported at this time",
                    ));
                }
                fields.push(f);
            }
            _ => return Err(ParseError::unexpected(&t, &["identifier", "ASC", "DESC"])),
        }
        loop {
            if self.scan_ws().tok != Tok::Comma {
                self.unscan();
                break;
            }
            fields.push(self.parse_sort_field()?);
        }
        if fields.len() > 1 {
            return Err(ParseError::plain(
                "only ORDER BY time supported at this time",
            ));
        }
        Ok(fields)
    }

    fn parse_sort_field(&mut self) -> PResult<SortField> {
        let name = self.parse_ident()?;
        let t = self.scan_ws();
        let ascending = if kw(&t, K::Desc) {
            false
        } else {
            if !kw(&t, K::Asc) {
                self.unscan();
            }
            true
        };
        Ok(SortField { name, ascending })
    }

    // ---- expressions ----------------------------------------------------------

    pub(super) fn parse_expr(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = self.parse_expr_inner();
        self.depth -= 1;
        r
    }

    fn parse_expr_inner(&mut self) -> PResult<Expr> {
        let start = self.scan_ws().pos;
        self.unscan();
        let mut root = self.parse_unary()?;
        const CAP: usize = MAX_EXPR_HEIGHT + 1;
        // Upper bound on the tree height.  An insertion lands at most four
        // levels down the right spine (precedence strictly increases along
        // it), so the height grows to at most max(h + 1, 6 + height(rhs)).
        let mut bound = height(&root, CAP);
        loop {
            let t = self.scan_ws();
            if !t.tok.is_operator() {
                self.unscan();
                return Ok(root);
            }
            let op = binop(t.tok);
            let rhs = if matches!(op, BinaryOp::EqRegex | BinaryOp::NeqRegex) {
                match self.parse_regex()? {
                    Some(re) => Expr::Regex(re),
                    None => {
                        let t = self.scan_ws();
                        return Err(ParseError::unexpected(&t, &["regex"]));
                    }
                }
            } else {
                self.parse_unary()?
            };
            bound = (bound + 1).max(6 + height(&rhs, CAP));
            insert(&mut root, op, rhs);
            if bound > MAX_EXPR_HEIGHT {
                bound = height(&root, CAP);
                if bound > MAX_EXPR_HEIGHT {
                    return Err(ParseError::at(
                        format!("expression exceeds maximum height of {MAX_EXPR_HEIGHT}"),
                        start,
                    ));
                }
            }
        }
    }

    fn parse_unary(&mut self) -> PResult<Expr> {
        if self.scan_ws().tok == Tok::LParen {
            let e = self.parse_expr()?;
            let t = self.scan_ws();
            if t.tok != Tok::RParen {
                return Err(ParseError::unexpected(&t, &[")"]));
            }
            return Ok(Expr::Paren(Box::new(e)));
        }
        self.unscan();

        let t = self.scan_ws();
        match t.tok {
            Tok::Ident => {
                if self.scan().tok == Tok::LParen {
                    return self.parse_call(&t.lit);
                }
                self.unscan();
                self.unscan();
                self.parse_var_ref()
            }
            Tok::Kw(K::Distinct) => {
                let t0 = self.scan();
                match t0.tok {
                    Tok::LParen => self.parse_call("distinct"),
                    Tok::Ws => {
                        let t1 = self.scan_ws();
                        if t1.tok != Tok::Ident {
                            return Err(ParseError::unexpected(&t1, &["identifier"]));
                        }
                        Ok(Expr::Distinct(t1.lit))
                    }
                    _ => Err(ParseError::unexpected(&t0, &["(", "identifier"])),
                }
            }
            Tok::Str => Ok(Expr::String(t.lit)),
            Tok::Number => match t.lit.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Expr::Number(v)),
                _ => Err(ParseError::at("unable to parse number", t.pos)),
            },
            Tok::Integer => match t.lit.parse::<i64>() {
                Ok(v) => Ok(Expr::Integer(v)),
                Err(_) => match t.lit.parse::<u64>() {
                    Ok(v) => Ok(Expr::Unsigned(v)),
                    Err(_) => Err(ParseError::at("unable to parse integer", t.pos)),
                },
            },
            Tok::True => Ok(Expr::Boolean(true)),
            Tok::False => Ok(Expr::Boolean(false)),
            Tok::DurationVal => parse_duration(&t.lit)
                .map(Expr::Duration)
                .map_err(|e| ParseError::plain(e.to_string())),
            Tok::Mul => {
                let t0 = self.scan();
                if t0.tok != Tok::DoubleColon {
                    self.unscan();
                    return Ok(Expr::Wildcard(WildcardType::All));
                }
                let t1 = self.scan();
                match t1.tok {
                    Tok::Kw(K::Field) => Ok(Expr::Wildcard(WildcardType::Field)),
                    Tok::Kw(K::Tag) => Ok(Expr::Wildcard(WildcardType::Tag)),
                    _ => Err(ParseError::unexpected(&t1, &["field", "tag"])),
                }
            }
            Tok::Regex => Ok(Expr::Regex(Regex { pattern: t.lit })),
            Tok::BoundParam => {
                let Some(name) = t.lit.strip_prefix('$') else {
                    // A parameter that could not be bound (see `substitute`).
                    return Err(ParseError::plain(format!("missing parameter: {}", t.lit)));
                };
                if name.is_empty() {
                    return Err(ParseError::plain("empty bound parameter"));
                }
                match self.params.map(|p| p.get(name)) {
                    // No parameter map: keep the placeholder for later binding.
                    None => Ok(Expr::BoundParam(name.to_string())),
                    Some(None) => Err(ParseError::plain(format!("missing parameter: {name}"))),
                    Some(Some(ParamValue::Error(msg))) => {
                        Err(ParseError::plain(format!("missing parameter: {msg}")))
                    }
                    Some(Some(_)) => unreachable!("bound values are substituted when scanned"),
                }
            }
            Tok::Add | Tok::Sub => {
                let neg = t.tok == Tok::Sub;
                let t0 = self.scan_ws();
                match t0.tok {
                    Tok::Number | Tok::Integer | Tok::DurationVal | Tok::LParen | Tok::Ident => {
                        self.unscan();
                        let e = self.parse_unary()?;
                        Ok(match e {
                            Expr::Number(v) if neg => Expr::Number(-v),
                            Expr::Integer(v) if neg => Expr::Integer(-v),
                            Expr::Duration(v) if neg => Expr::Duration(-v),
                            Expr::Unsigned(v) if neg => {
                                if v == i64::MAX as u64 + 1 {
                                    Expr::Integer(i64::MIN)
                                } else {
                                    return Err(ParseError::plain(format!(
                                        "constant -{v} underflows int64"
                                    )));
                                }
                            }
                            e @ (Expr::VarRef(_) | Expr::Call(_) | Expr::Paren(_)) => Expr::binary(
                                BinaryOp::Mul,
                                Expr::Integer(if neg { -1 } else { 1 }),
                                e,
                            ),
                            e => e,
                        })
                    }
                    _ => Err(ParseError::unexpected(
                        &t0,
                        &["identifier", "number", "duration", "("],
                    )),
                }
            }
            _ => Err(ParseError::unexpected(
                &t,
                &["identifier", "string", "number", "bool"],
            )),
        }
    }

    fn parse_var_ref(&mut self) -> PResult<Expr> {
        let segs = self.parse_segmented_idents()?;
        let mut data_type = None;
        if self.scan().tok == Tok::DoubleColon {
            let t = self.scan();
            data_type = Some(match t.tok {
                Tok::Ident => match t.lit.to_ascii_lowercase().as_str() {
                    "float" => DataType::Float,
                    "integer" => DataType::Integer,
                    "unsigned" => DataType::Unsigned,
                    "string" => DataType::String,
                    "boolean" => DataType::Boolean,
                    _ => {
                        return Err(ParseError::unexpected(
                            &t,
                            &[
                                "float", "integer", "unsigned", "string", "boolean", "field", "tag",
                            ],
                        ))
                    }
                },
                Tok::Kw(K::Field) => DataType::AnyField,
                Tok::Kw(K::Tag) => DataType::Tag,
                _ => {
                    return Err(ParseError::unexpected(
                        &t,
                        &["float", "integer", "string", "boolean", "field", "tag"],
                    ))
                }
            });
        } else {
            self.unscan();
        }
        Ok(Expr::VarRef(VarRef {
            name: segs.join("."),
            data_type,
        }))
    }

    fn parse_call(&mut self, name: &str) -> PResult<Expr> {
        self.enter()?;
        let r = self.parse_call_inner(name);
        self.depth -= 1;
        r
    }

    fn parse_call_inner(&mut self, name: &str) -> PResult<Expr> {
        let name = name.to_lowercase();
        let mut args = Vec::new();
        match self.parse_regex()? {
            Some(re) => args.push(Expr::Regex(re)),
            None => {
                if self.scan().tok == Tok::RParen {
                    return Ok(Expr::Call(Call { name, args }));
                }
                self.unscan();
                args.push(self.parse_expr()?);
            }
        }
        loop {
            if self.scan_ws().tok != Tok::Comma {
                self.unscan();
                break;
            }
            match self.parse_regex()? {
                Some(re) => args.push(Expr::Regex(re)),
                None => args.push(self.parse_expr()?),
            }
        }
        let t = self.scan();
        if t.tok != Tok::RParen {
            return Err(ParseError::unexpected(&t, &[")"]));
        }
        Ok(Expr::Call(Call { name, args }))
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, char {}", self.line + 1, self.char + 1)
    }
}
