//! InfluxQL scanner.
//!
//! The scanner works on a pre-decoded vector of characters and is a pure
//! function of the character index it starts at, which lets the parser
//! "unscan" simply by restoring an index.  Positions are 0-based (line, char)
//! where `char` counts Unicode scalar values since the last newline, the same
//! way InfluxDB 1.x counts them; error messages add 1 to both.

use std::fmt;

/// Position of a token (0-based line and character).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub line: u32,
    pub char: u32,
}

macro_rules! keywords {
    ($($name:ident => $text:literal),* $(,)?) => {
        /// Reserved words. Identifiers spelled like one of these must be quoted.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum Keyword { $($name),* }

        impl Keyword {
            pub(crate) const ALL: &'static [Keyword] = &[$(Keyword::$name),*];

            /// Upper-case spelling, as InfluxDB prints it in error messages.
            pub(crate) fn as_str(self) -> &'static str {
                match self { $(Keyword::$name => $text),* }
            }
        }
    };
}

keywords! {
    All => "ALL", Alter => "ALTER", Analyze => "ANALYZE", Any => "ANY", As => "AS",
    Asc => "ASC", Begin => "BEGIN", By => "BY", Cardinality => "CARDINALITY",
    Create => "CREATE", Continuous => "CONTINUOUS", Database => "DATABASE",
    Databases => "DATABASES", Default => "DEFAULT", Delete => "DELETE", Desc => "DESC",
    Destinations => "DESTINATIONS", Diagnostics => "DIAGNOSTICS", Distinct => "DISTINCT",
    Drop => "DROP", Duration => "DURATION", End => "END", Every => "EVERY", Exact => "EXACT",
    Explain => "EXPLAIN", Field => "FIELD", For => "FOR", From => "FROM", Future => "FUTURE",
    Grant => "GRANT", Grants => "GRANTS", Group => "GROUP", Groups => "GROUPS", In => "IN",
    Inf => "INF", Insert => "INSERT", Into => "INTO", Key => "KEY", Keys => "KEYS",
    Kill => "KILL", Limit => "LIMIT", Measurement => "MEASUREMENT",
    Measurements => "MEASUREMENTS", Name => "NAME", Offset => "OFFSET", On => "ON",
    Order => "ORDER", Password => "PASSWORD", Past => "PAST", Policy => "POLICY",
    Policies => "POLICIES", Privileges => "PRIVILEGES", Queries => "QUERIES",
    Query => "QUERY", Read => "READ", Replication => "REPLICATION", Resample => "RESAMPLE",
    Retention => "RETENTION", Revoke => "REVOKE", Select => "SELECT", Series => "SERIES",
    Set => "SET", Show => "SHOW", Shard => "SHARD", Shards => "SHARDS", Slimit => "SLIMIT",
    Soffset => "SOFFSET", Stats => "STATS", Subscription => "SUBSCRIPTION",
    Subscriptions => "SUBSCRIPTIONS", Tag => "TAG", To => "TO", User => "USER",
    Users => "USERS", Values => "VALUES", Where => "WHERE",
    With => "WITH", Write => "WRITE",
}

/// Token kinds produced by the scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Illegal,
    Eof,
    Ws,
    Comment,
    Ident,
    BoundParam,
    Number,
    Integer,
    DurationVal,
    Str,
    BadString,
    BadEscape,
    True,
    False,
    Regex,
    BadRegex,
    // operators
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    BitAnd,
    BitOr,
    BitXor,
    And,
    Or,
    Eq,
    Neq,
    EqRegex,
    NeqRegex,
    Lt,
    Lte,
    Gt,
    Gte,
    // punctuation
    LParen,
    RParen,
    Comma,
    Colon,
    DoubleColon,
    Semicolon,
    Dot,
    Kw(Keyword),
}

impl Tok {
    /// The name InfluxDB uses for the token when it has no literal text.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Tok::Illegal => "ILLEGAL",
            Tok::Eof => "EOF",
            Tok::Ws => "WS",
            Tok::Comment => "",
            Tok::Ident => "IDENT",
            Tok::BoundParam => "",
            Tok::Number => "NUMBER",
            Tok::Integer => "",
            Tok::DurationVal => "DURATIONVAL",
            Tok::Str => "STRING",
            Tok::BadString => "BADSTRING",
            Tok::BadEscape => "BADESCAPE",
            Tok::True => "TRUE",
            Tok::False => "FALSE",
            Tok::Regex => "REGEX",
            Tok::BadRegex => "",
            Tok::Add => "+",
            Tok::Sub => "-",
            Tok::Mul => "*",
            Tok::Div => "/",
            Tok::Mod => "%",
            Tok::BitAnd => "&",
            Tok::BitOr => "|",
            Tok::BitXor => "^",
            Tok::And => "AND",
            Tok::Or => "OR",
            Tok::Eq => "=",
            Tok::Neq => "!=",
            Tok::EqRegex => "=~",
            Tok::NeqRegex => "!~",
            Tok::Lt => "<",
            Tok::Lte => "<=",
            Tok::Gt => ">",
            Tok::Gte => ">=",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Comma => ",",
            Tok::Colon => ":",
            Tok::DoubleColon => "::",
            Tok::Semicolon => ";",
            Tok::Dot => ".",
            Tok::Kw(k) => k.as_str(),
        }
    }

    pub(crate) fn is_operator(self) -> bool {
        matches!(
            self,
            Tok::Add
                | Tok::Sub
                | Tok::Mul
                | Tok::Div
                | Tok::Mod
                | Tok::BitAnd
                | Tok::BitOr
                | Tok::BitXor
                | Tok::And
                | Tok::Or
                | Tok::Eq
                | Tok::Neq
                | Tok::EqRegex
                | Tok::NeqRegex
                | Tok::Lt
                | Tok::Lte
                | Tok::Gt
                | Tok::Gte
        )
    }
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Case-insensitive keyword lookup (including AND, OR, TRUE, FALSE).
///
/// Every identifier of every query comes through here: the words are found in a table
/// built once (upper case), the identifier upper-cased on the stack, rather than by
/// comparing it with each keyword in turn (a quarter of a short query's parse).
pub(crate) fn lookup(ident: &str) -> Tok {
    const LONGEST: usize = 13;
    static WORDS: std::sync::OnceLock<
        std::collections::HashMap<&'static str, Tok, foldhash::fast::FixedState>,
    > = std::sync::OnceLock::new();
    if ident.len() < 2 || ident.len() > LONGEST || !ident.is_ascii() {
        return Tok::Ident;
    }
    let words = WORDS.get_or_init(|| {
        let mut words: std::collections::HashMap<_, _, _> = Keyword::ALL
            .iter()
            .map(|&k| (k.as_str(), Tok::Kw(k)))
            .collect();
        for (text, tok) in [
            ("AND", Tok::And),
            ("OR", Tok::Or),
            ("TRUE", Tok::True),
            ("FALSE", Tok::False),
        ] {
            words.insert(text, tok);
        }
        words
    });
    let mut upper = [0u8; LONGEST];
    let upper = &mut upper[..ident.len()];
    upper.copy_from_slice(ident.as_bytes());
    upper.make_ascii_uppercase();
    std::str::from_utf8(upper)
        .ok()
        .and_then(|word| words.get(word))
        .copied()
        .unwrap_or(Tok::Ident)
}

/// [`lookup`] on scanned characters, so that a keyword costs no allocation.
fn lookup_chars(word: &[char]) -> Tok {
    const LONGEST: usize = 13;
    if word.len() > LONGEST || !word.iter().all(char::is_ascii) {
        return Tok::Ident;
    }
    let mut buf = [0u8; LONGEST];
    for (b, c) in buf.iter_mut().zip(word) {
        *b = *c as u8;
    }
    std::str::from_utf8(&buf[..word.len()]).map_or(Tok::Ident, lookup)
}

/// A scanned token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: Pos,
    /// Literal text (identifier name, unescaped string, digits, ...).
    pub lit: String,
}

impl Token {
    /// Text used for "found X" in error messages.
    pub(crate) fn found(&self) -> String {
        if self.lit.is_empty() {
            self.tok.as_str().to_string()
        } else {
            self.lit.clone()
        }
    }
}

pub(super) fn is_whitespace(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\n'
}
pub(super) fn is_letter(c: char) -> bool {
    c.is_ascii_alphabetic()
}
pub(super) fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}
pub(super) fn is_ident_char(c: char) -> bool {
    is_letter(c) || is_digit(c) || c == '_'
}
pub(super) fn is_ident_first_char(c: char) -> bool {
    is_letter(c) || c == '_'
}

/// Character source with precomputed positions.
#[derive(Debug, Clone)]
pub(crate) struct Scanner {
    chars: Vec<char>,
    pos: Vec<Pos>,
}

impl Scanner {
    pub(crate) fn new(text: &str) -> Scanner {
        let mut chars = Vec::with_capacity(text.len());
        let mut it = text.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                // NUL is the end-of-input marker in the reference scanner.
                '\0' => break,
                '\r' => {
                    if it.peek() == Some(&'\n') {
                        it.next();
                    }
                    chars.push('\n');
                }
                c => chars.push(c),
            }
        }
        let mut pos = Vec::with_capacity(chars.len() + 1);
        let mut cur = Pos::default();
        for &c in &chars {
            pos.push(cur);
            if c == '\n' {
                cur.line += 1;
                cur.char = 0;
            } else {
                cur.char += 1;
            }
        }
        pos.push(cur);
        Scanner { chars, pos }
    }

    pub(crate) fn len(&self) -> usize {
        self.chars.len()
    }

    /// Character at `i`, if any.
    pub(crate) fn peek(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    pub(crate) fn pos_at(&self, i: usize) -> Pos {
        self.pos[i.min(self.chars.len())]
    }

    fn tok(&self, tok: Tok, start: usize, lit: String, next: usize) -> (Token, usize) {
        (
            Token {
                tok,
                pos: self.pos_at(start),
                lit,
            },
            next,
        )
    }

    /// Scans one token starting at index `i`; returns it and the index after it.
    pub(crate) fn scan(&self, i: usize) -> (Token, usize) {
        let c = match self.peek(i) {
            None => return self.tok(Tok::Eof, i, String::new(), i),
            Some(c) => c,
        };
        if is_whitespace(c) {
            let mut j = i;
            while self.peek(j).is_some_and(is_whitespace) {
                j += 1;
            }
            let lit: String = self.chars[i..j].iter().collect();
            return self.tok(Tok::Ws, i, lit, j);
        }
        if is_letter(c) || c == '_' || c == '"' {
            return self.scan_ident(i, true);
        }
        if is_digit(c) {
            return self.scan_number(i);
        }
        let n1 = self.peek(i + 1);
        let simple = |t: Tok, len: usize| self.tok(t, i, String::new(), i + len);
        match c {
            '\'' => self.scan_string(i),
            '.' => {
                if n1.is_some_and(is_digit) {
                    self.scan_number(i)
                } else {
                    simple(Tok::Dot, 1)
                }
            }
            '$' => {
                let (t, next) = self.scan_ident(i + 1, false);
                let lit = format!("${}", t.lit);
                let kind = if t.tok == Tok::Ident {
                    Tok::BoundParam
                } else {
                    t.tok
                };
                self.tok(kind, i, lit, next)
            }
            '+' => simple(Tok::Add, 1),
            '-' => {
                if n1 == Some('-') {
                    let mut j = i + 2;
                    while let Some(c) = self.peek(j) {
                        j += 1;
                        if c == '\n' {
                            break;
                        }
                    }
                    self.tok(Tok::Comment, i, String::new(), j)
                } else {
                    simple(Tok::Sub, 1)
                }
            }
            '*' => simple(Tok::Mul, 1),
            '/' => {
                if n1 == Some('*') {
                    let mut j = i + 2;
                    loop {
                        match self.peek(j) {
                            None => return self.tok(Tok::Illegal, i, String::new(), j),
                            Some('*') if self.peek(j + 1) == Some('/') => {
                                return self.tok(Tok::Comment, i, String::new(), j + 2)
                            }
                            Some(_) => j += 1,
                        }
                    }
                }
                simple(Tok::Div, 1)
            }
            '%' => simple(Tok::Mod, 1),
            '&' => simple(Tok::BitAnd, 1),
            '|' => simple(Tok::BitOr, 1),
            '^' => simple(Tok::BitXor, 1),
            '=' => {
                if n1 == Some('~') {
                    simple(Tok::EqRegex, 2)
                } else {
                    simple(Tok::Eq, 1)
                }
            }
            '!' => match n1 {
                Some('=') => simple(Tok::Neq, 2),
                Some('~') => simple(Tok::NeqRegex, 2),
                _ => self.tok(Tok::Illegal, i, "!".to_string(), i + 1),
            },
            '>' => {
                if n1 == Some('=') {
                    simple(Tok::Gte, 2)
                } else {
                    simple(Tok::Gt, 1)
                }
            }
            '<' => match n1 {
                Some('=') => simple(Tok::Lte, 2),
                Some('>') => simple(Tok::Neq, 2),
                _ => simple(Tok::Lt, 1),
            },
            '(' => simple(Tok::LParen, 1),
            ')' => simple(Tok::RParen, 1),
            ',' => simple(Tok::Comma, 1),
            ';' => simple(Tok::Semicolon, 1),
            ':' => {
                if n1 == Some(':') {
                    simple(Tok::DoubleColon, 2)
                } else {
                    simple(Tok::Colon, 1)
                }
            }
            other => self.tok(Tok::Illegal, i, other.to_string(), i + 1),
        }
    }

    /// Bare or double-quoted identifier.  `lookup` turns keywords into keyword tokens.
    fn scan_ident(&self, i: usize, lookup_kw: bool) -> (Token, usize) {
        let mut j = i;
        while self.peek(j).is_some_and(is_ident_char) {
            j += 1;
        }
        if self.peek(j) == Some('"') {
            // A quoted part makes the whole token that part alone, as in the reference scanner.
            let (t, next) = self.scan_quoted(j);
            if t.tok != Tok::Str {
                return (t, next);
            }
            return self.tok(Tok::Ident, i, t.lit, next);
        }
        let word = &self.chars[i..j];
        if lookup_kw {
            let t = lookup_chars(word);
            if t != Tok::Ident {
                return self.tok(t, i, String::new(), j);
            }
        }
        self.tok(Tok::Ident, i, word.iter().collect(), j)
    }

    fn scan_string(&self, i: usize) -> (Token, usize) {
        self.scan_quoted(i)
    }

    /// Quoted text starting at `i` (the quote character ends it as well).
    ///
    /// Like the reference scanner, STRING and BADSTRING tokens report the
    /// position of the character *before* the opening quote.
    fn scan_quoted(&self, i: usize) -> (Token, usize) {
        let quote = self.chars[i];
        let at = |tok: Tok, lit: String, next: usize| {
            let pos = if i == 0 {
                Pos::default()
            } else {
                self.pos_at(i - 1)
            };
            (Token { tok, pos, lit }, next)
        };
        let mut j = i + 1;
        let mut buf = String::new();
        loop {
            match self.peek(j) {
                Some(c) if c == quote => return at(Tok::Str, buf, j + 1),
                None => return at(Tok::BadString, buf, j),
                Some('\n') => return at(Tok::BadString, buf, j + 1),
                Some('\\') => {
                    let esc = self.peek(j + 1);
                    match esc {
                        Some('n') => buf.push('\n'),
                        Some('\\') => buf.push('\\'),
                        Some('"') => buf.push('"'),
                        Some('\'') => buf.push('\''),
                        _ => {
                            let lit = format!("\\{}", esc.unwrap_or('\0'));
                            let next = (j + 2).min(self.len());
                            return (
                                Token {
                                    tok: Tok::BadEscape,
                                    pos: self.pos_at(j + 1),
                                    lit,
                                },
                                next,
                            );
                        }
                    }
                    j += 2;
                }
                Some(c) => {
                    buf.push(c);
                    j += 1;
                }
            }
        }
    }

    /// Regex literal `/.../` starting at `i` (which must hold '/').
    pub(crate) fn scan_regex(&self, i: usize) -> (Token, usize) {
        if self.peek(i) != Some('/') {
            return self.scan(i);
        }
        let mut j = i + 1;
        let mut buf = String::new();
        loop {
            match self.peek(j) {
                Some('/') => return self.tok(Tok::Regex, i, buf, j + 1),
                None => return self.tok(Tok::BadRegex, i, String::new(), j),
                Some('\n') => return self.tok(Tok::BadRegex, i, String::new(), j + 1),
                Some('\\') => match self.peek(j + 1) {
                    Some('/') => {
                        buf.push('/');
                        j += 2;
                    }
                    None => return self.tok(Tok::BadRegex, i, String::new(), j + 1),
                    Some(_) => {
                        buf.push('\\');
                        j += 1;
                    }
                },
                Some(c) => {
                    buf.push(c);
                    j += 1;
                }
            }
        }
    }

    fn scan_number(&self, i: usize) -> (Token, usize) {
        let mut j = i;
        let mut buf = String::new();
        while let Some(c) = self.peek(j).filter(|c| is_digit(*c)) {
            buf.push(c);
            j += 1;
        }
        let mut is_decimal = false;
        if self.peek(j) == Some('.') {
            is_decimal = true;
            j += 1;
            if self.peek(j).is_some_and(is_digit) {
                buf.push('.');
                while let Some(c) = self.peek(j).filter(|c| is_digit(*c)) {
                    buf.push(c);
                    j += 1;
                }
            }
        }
        if is_decimal {
            return self.tok(Tok::Number, i, buf, j);
        }
        let unit_char = |c: char| is_letter(c) || c == 'µ';
        if self.peek(j).is_some_and(unit_char) {
            while let Some(c) = self.peek(j).filter(|c| unit_char(*c)) {
                buf.push(c);
                j += 1;
            }
            while let Some(c) = self.peek(j).filter(|c| unit_char(*c) || is_digit(*c)) {
                buf.push(c);
                j += 1;
            }
            return self.tok(Tok::DurationVal, i, buf, j);
        }
        self.tok(Tok::Integer, i, buf, j)
    }
}

/// Error from [`parse_duration`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DurationError {
    Invalid,
    Overflow(String),
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Invalid => f.write_str("invalid duration"),
            DurationError::Overflow(m) => {
                write!(
                    f,
                    "overflowed duration {m}: choose a smaller duration or INF"
                )
            }
        }
    }
}

pub(crate) const NS_PER_US: i64 = 1_000;
pub(crate) const NS_PER_MS: i64 = 1_000_000;
pub(crate) const NS_PER_S: i64 = 1_000_000_000;
pub(crate) const NS_PER_M: i64 = 60 * NS_PER_S;
pub(crate) const NS_PER_H: i64 = 60 * NS_PER_M;
pub(crate) const NS_PER_D: i64 = 24 * NS_PER_H;
pub(crate) const NS_PER_W: i64 = 7 * NS_PER_D;

/// Parses an InfluxQL duration literal (`1h30m`, `10ms`, `5µ`, `-2d`) to nanoseconds.
pub(crate) fn parse_duration(s: &str) -> Result<i64, DurationError> {
    let a: Vec<char> = s.chars().collect();
    if s.len() < 2 {
        return Err(DurationError::Invalid);
    }
    let mut i = 0;
    let negative = a[0] == '-';
    if negative {
        i += 1;
    }
    let mut d: i64 = 0;
    while i < a.len() {
        let start = i;
        while i < a.len() && is_digit(a[i]) {
            i += 1;
        }
        if i >= a.len() || i == start {
            return Err(DurationError::Invalid);
        }
        let digits: String = a[start..i].iter().collect();
        let n: i64 = digits.parse().map_err(|_| DurationError::Invalid)?;
        let (mult, unit_len) = match a[i] {
            'n' if a.get(i + 1) == Some(&'s') => (1, 2),
            'u' | 'µ' => (NS_PER_US, 1),
            'm' if a.get(i + 1) == Some(&'s') => (NS_PER_MS, 2),
            'm' => (NS_PER_M, 1),
            's' => (NS_PER_S, 1),
            'h' => (NS_PER_H, 1),
            'd' => (NS_PER_D, 1),
            'w' => (NS_PER_W, 1),
            _ => return Err(DurationError::Invalid),
        };
        let unit: String = a[i..i + unit_len].iter().collect();
        d = n
            .checked_mul(mult)
            .and_then(|v| d.checked_add(v))
            .ok_or_else(|| DurationError::Overflow(format!("{n}{unit}")))?;
        i += unit_len;
    }
    Ok(if negative { -d } else { d })
}

/// Formats nanoseconds with the largest unit that divides it exactly.
pub(crate) fn format_duration(d: i64) -> String {
    if d == 0 {
        return "0s".to_string();
    }
    for (unit, name) in [
        (NS_PER_W, "w"),
        (NS_PER_D, "d"),
        (NS_PER_H, "h"),
        (NS_PER_M, "m"),
        (NS_PER_S, "s"),
        (NS_PER_MS, "ms"),
        (NS_PER_US, "u"),
    ] {
        if d % unit == 0 {
            return format!("{}{}", d / unit, name);
        }
    }
    format!("{d}ns")
}
