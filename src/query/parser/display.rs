//! Canonical InfluxQL rendering of the AST.  `parse(x.to_string()) == x` for
//! every tree the parser produces.

use super::ast::*;
use super::lexer::{format_duration, is_ident_char, is_ident_first_char, lookup, Tok};
use std::fmt::{self, Display, Formatter, Write};

fn escape(s: &str, quote: char, out: &mut String) {
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\\' => out.push_str("\\\\"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

/// `'text'` with InfluxQL escapes.
pub(crate) fn quote_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    escape(s, '\'', &mut out);
    out.push('\'');
    out
}

/// True if `ident` must be written in double quotes.
pub(crate) fn ident_needs_quotes(ident: &str) -> bool {
    if ident.is_empty() || lookup(ident) != Tok::Ident {
        return true;
    }
    let mut chars = ident.chars();
    !chars.next().is_some_and(is_ident_first_char) || !chars.all(is_ident_char)
}

/// Identifier, quoted only when needed.
pub(crate) fn quote_ident(ident: &str) -> String {
    if ident_needs_quotes(ident) {
        let mut out = String::with_capacity(ident.len() + 2);
        out.push('"');
        escape(ident, '"', &mut out);
        out.push('"');
        out
    } else {
        ident.to_string()
    }
}

/// Segments joined by `.` the way InfluxDB's `QuoteIdent` does (used in messages).
pub(crate) fn quote_segments(segs: &[String]) -> String {
    let mut out = String::new();
    let n = segs.len();
    for (i, s) in segs.iter().enumerate() {
        let needs = !s.is_empty() && ident_needs_quotes(s);
        let quote =
            needs || (i + 1 < n && !s.is_empty()) || ((i == 0 || i + 1 == n) && s.is_empty());
        if quote {
            out.push('"');
            escape(s, '"', &mut out);
            out.push('"');
        } else {
            out.push_str(s);
        }
        if i + 1 < n {
            out.push('.');
        }
    }
    out
}

fn fmt_number(v: f64) -> String {
    let s = format!("{v}");
    if s.contains('.') || !v.is_finite() {
        s
    } else {
        format!("{s}.0")
    }
}

impl Display for Regex {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('/')?;
        for c in self.pattern.chars() {
            if c == '/' {
                f.write_str("\\/")?;
            } else {
                f.write_char(c)?;
            }
        }
        f.write_char('/')
    }
}

impl Display for BinaryOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::VarRef(v) => {
                f.write_str(&quote_ident(&v.name))?;
                if let Some(t) = v.data_type {
                    write!(f, "::{}", t.as_str())?;
                }
                Ok(())
            }
            Expr::Call(c) => {
                if c.name == "distinct" {
                    f.write_str("distinct")?;
                } else {
                    f.write_str(&quote_ident(&c.name))?;
                }
                f.write_char('(')?;
                for (i, a) in c.args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_char(')')
            }
            Expr::Binary(b) => {
                // Unary +/- applied to a variable, call or parenthesis.
                if b.op == BinaryOp::Mul
                    && matches!(b.rhs, Expr::VarRef(_) | Expr::Call(_) | Expr::Paren(_))
                {
                    if let Expr::Integer(sign @ (1 | -1)) = b.lhs {
                        return write!(f, "{}{}", if sign < 0 { '-' } else { '+' }, b.rhs);
                    }
                }
                write!(f, "{} {} {}", b.lhs, b.op, b.rhs)
            }
            Expr::Paren(e) => write!(f, "({e})"),
            Expr::Integer(v) => write!(f, "{v}"),
            Expr::Unsigned(v) => write!(f, "{v}"),
            Expr::Number(v) => f.write_str(&fmt_number(*v)),
            Expr::String(s) => f.write_str(&quote_string(s)),
            Expr::Boolean(b) => f.write_str(if *b { "true" } else { "false" }),
            Expr::Duration(d) => f.write_str(&format_duration(*d)),
            Expr::Regex(r) => write!(f, "{r}"),
            Expr::Wildcard(WildcardType::All) => f.write_str("*"),
            Expr::Wildcard(WildcardType::Field) => f.write_str("*::field"),
            Expr::Wildcard(WildcardType::Tag) => f.write_str("*::tag"),
            Expr::Distinct(v) => write!(f, "DISTINCT {}", quote_ident(v)),
            Expr::BoundParam(n) => {
                if n.chars().all(is_ident_char) {
                    write!(f, "${n}")
                } else {
                    let mut s = String::new();
                    escape(n, '"', &mut s);
                    write!(f, "$\"{s}\"")
                }
            }
        }
    }
}

fn opt_db_rp(f: &mut Formatter<'_>, db: &Option<String>, rp: &Option<String>) -> fmt::Result {
    if let Some(db) = db {
        write!(f, "{}.", quote_ident(db))?;
    }
    if let Some(rp) = rp {
        f.write_str(&quote_ident(rp))?;
    }
    if db.is_some() || rp.is_some() {
        f.write_char('.')?;
    }
    Ok(())
}

impl Display for Measurement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        opt_db_rp(f, &self.database, &self.retention_policy)?;
        match &self.name {
            MeasurementName::Name(n) => f.write_str(&quote_ident(n)),
            MeasurementName::Regex(r) => write!(f, "{r}"),
        }
    }
}

impl Display for Source {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Source::Measurement(m) => write!(f, "{m}"),
            Source::Subquery(s) => write!(f, "({s})"),
        }
    }
}

impl Display for Target {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        opt_db_rp(f, &self.database, &self.retention_policy)?;
        if self.name.is_empty() {
            if self.database.is_none() && self.retention_policy.is_none() {
                f.write_str("\"\".")?;
            }
            f.write_str(":MEASUREMENT")
        } else {
            f.write_str(&quote_ident(&self.name))
        }
    }
}

impl Display for Field {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.expr)?;
        if let Some(a) = &self.alias {
            write!(f, " AS {}", quote_ident(a))?;
        }
        Ok(())
    }
}

impl Display for Fill {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Fill::Null => f.write_str("fill(null)"),
            Fill::None => f.write_str("fill(none)"),
            Fill::Previous => f.write_str("fill(previous)"),
            Fill::Linear => f.write_str("fill(linear)"),
            Fill::Integer(n) => write!(f, "fill({n})"),
            Fill::Number(n) => write!(f, "fill({})", fmt_number(*n)),
        }
    }
}

impl Display for TagKeyPredicate {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("WITH KEY ")?;
        match self {
            TagKeyPredicate::Eq(k) => write!(f, "= {}", quote_ident(k)),
            TagKeyPredicate::Neq(k) => write!(f, "!= {}", quote_ident(k)),
            TagKeyPredicate::EqRegex(r) => write!(f, "=~ {r}"),
            TagKeyPredicate::NeqRegex(r) => write!(f, "!~ {r}"),
            TagKeyPredicate::In(keys) => {
                f.write_str("IN (")?;
                list(f, keys.iter().map(|k| quote_ident(k)))?;
                f.write_char(')')
            }
        }
    }
}

fn list<I: Display>(f: &mut Formatter<'_>, items: impl IntoIterator<Item = I>) -> fmt::Result {
    for (i, x) in items.into_iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{x}")?;
    }
    Ok(())
}

fn on(f: &mut Formatter<'_>, db: &Option<String>) -> fmt::Result {
    if let Some(db) = db {
        write!(f, " ON {}", quote_ident(db))?;
    }
    Ok(())
}

fn from(f: &mut Formatter<'_>, sources: &[Source]) -> fmt::Result {
    if !sources.is_empty() {
        f.write_str(" FROM ")?;
        list(f, sources)?;
    }
    Ok(())
}

fn where_(f: &mut Formatter<'_>, cond: &Option<Expr>) -> fmt::Result {
    if let Some(c) = cond {
        write!(f, " WHERE {c}")?;
    }
    Ok(())
}

fn group_by(f: &mut Formatter<'_>, dims: &[Dimension]) -> fmt::Result {
    if !dims.is_empty() {
        f.write_str(" GROUP BY ")?;
        list(f, dims.iter().map(|d| &d.expr))?;
    }
    Ok(())
}

fn order_by(f: &mut Formatter<'_>, fields: &[SortField]) -> fmt::Result {
    if !fields.is_empty() {
        f.write_str(" ORDER BY ")?;
        for (i, s) in fields.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if !s.name.is_empty() {
                write!(f, "{} ", quote_ident(&s.name))?;
            }
            f.write_str(if s.ascending { "ASC" } else { "DESC" })?;
        }
    }
    Ok(())
}

fn int_opt(f: &mut Formatter<'_>, kw: &str, v: u64) -> fmt::Result {
    if v > 0 {
        write!(f, " {kw} {v}")?;
    }
    Ok(())
}

fn dur_or_inf(d: i64) -> String {
    if d == 0 {
        "INF".to_string()
    } else {
        format_duration(d)
    }
}

impl Display for SelectStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("SELECT ")?;
        list(f, &self.fields)?;
        if let Some(t) = &self.target {
            write!(f, " INTO {t}")?;
        }
        from(f, &self.sources)?;
        where_(f, &self.condition)?;
        group_by(f, &self.dimensions)?;
        if let Some(fill) = &self.fill {
            write!(f, " {fill}")?;
        }
        order_by(f, &self.order_by)?;
        int_opt(f, "LIMIT", self.limit)?;
        int_opt(f, "OFFSET", self.offset)?;
        int_opt(f, "SLIMIT", self.slimit)?;
        int_opt(f, "SOFFSET", self.soffset)?;
        if let Some(tz) = &self.location {
            write!(f, " TZ({})", quote_string(tz))?;
        }
        Ok(())
    }
}

impl Display for Statement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        use Statement as S;
        match self {
            S::Select(s) => write!(f, "{s}"),
            S::Delete(d) => {
                f.write_str("DELETE")?;
                from(f, &d.sources)?;
                where_(f, &d.condition)
            }
            S::ShowDatabases => f.write_str("SHOW DATABASES"),
            S::ShowMeasurements(s) => {
                f.write_str("SHOW MEASUREMENTS")?;
                if s.database.is_some() || s.wildcard_database {
                    f.write_str(" ON ")?;
                    match &s.database {
                        Some(db) => f.write_str(&quote_ident(db))?,
                        None => f.write_char('*')?,
                    }
                    if let Some(rp) = &s.retention_policy {
                        write!(f, ".{}", quote_ident(rp))?;
                    } else if s.wildcard_retention_policy {
                        f.write_str(".*")?;
                    }
                }
                if let Some(m) = &s.source {
                    let op = if matches!(m.name, MeasurementName::Regex(_)) {
                        "=~"
                    } else {
                        "="
                    };
                    write!(f, " WITH MEASUREMENT {op} {m}")?;
                }
                where_(f, &s.condition)?;
                order_by(f, &s.order_by)?;
                int_opt(f, "LIMIT", s.limit)?;
                int_opt(f, "OFFSET", s.offset)
            }
            S::ShowSeries(s) => {
                f.write_str("SHOW SERIES")?;
                on(f, &s.database)?;
                from(f, &s.sources)?;
                where_(f, &s.condition)?;
                order_by(f, &s.order_by)?;
                int_opt(f, "LIMIT", s.limit)?;
                int_opt(f, "OFFSET", s.offset)
            }
            S::ShowTagKeys(s) => {
                f.write_str("SHOW TAG KEYS")?;
                on(f, &s.database)?;
                from(f, &s.sources)?;
                where_(f, &s.condition)?;
                order_by(f, &s.order_by)?;
                int_opt(f, "LIMIT", s.limit)?;
                int_opt(f, "OFFSET", s.offset)?;
                int_opt(f, "SLIMIT", s.slimit)?;
                int_opt(f, "SOFFSET", s.soffset)
            }
            S::ShowTagValues(s) => {
                f.write_str("SHOW TAG VALUES")?;
                on(f, &s.database)?;
                from(f, &s.sources)?;
                write!(f, " {}", s.tag_key)?;
                where_(f, &s.condition)?;
                order_by(f, &s.order_by)?;
                int_opt(f, "LIMIT", s.limit)?;
                int_opt(f, "OFFSET", s.offset)
            }
            S::ShowFieldKeys(s) => {
                f.write_str("SHOW FIELD KEYS")?;
                on(f, &s.database)?;
                from(f, &s.sources)?;
                order_by(f, &s.order_by)?;
                int_opt(f, "LIMIT", s.limit)?;
                int_opt(f, "OFFSET", s.offset)
            }
            S::ShowCardinality(s) => {
                let what = match s.kind {
                    CardinalityKind::Series => "SERIES",
                    CardinalityKind::Measurement => "MEASUREMENT",
                    CardinalityKind::TagKey => "TAG KEY",
                    CardinalityKind::TagValues => "TAG VALUES",
                    CardinalityKind::FieldKey => "FIELD KEY",
                };
                write!(
                    f,
                    "SHOW {what} {}CARDINALITY",
                    if s.exact { "EXACT " } else { "" }
                )?;
                on(f, &s.database)?;
                from(f, &s.sources)?;
                if let Some(k) = &s.tag_key {
                    write!(f, " {k}")?;
                }
                where_(f, &s.condition)?;
                group_by(f, &s.dimensions)?;
                int_opt(f, "LIMIT", s.limit)?;
                int_opt(f, "OFFSET", s.offset)
            }
            S::ShowRetentionPolicies { database } => {
                f.write_str("SHOW RETENTION POLICIES")?;
                on(f, database)
            }
            S::ShowShards => f.write_str("SHOW SHARDS"),
            S::ShowShardGroups => f.write_str("SHOW SHARD GROUPS"),
            S::ShowUsers => f.write_str("SHOW USERS"),
            S::ShowQueries => f.write_str("SHOW QUERIES"),
            S::ShowContinuousQueries => f.write_str("SHOW CONTINUOUS QUERIES"),
            S::ShowSubscriptions => f.write_str("SHOW SUBSCRIPTIONS"),
            S::ShowGrantsForUser { name } => write!(f, "SHOW GRANTS FOR {}", quote_ident(name)),
            S::ShowDiagnostics { module } | S::ShowStats { module } => {
                let what = if matches!(self, S::ShowStats { .. }) {
                    "STATS"
                } else {
                    "DIAGNOSTICS"
                };
                write!(f, "SHOW {what}")?;
                if let Some(m) = module {
                    write!(f, " FOR {}", quote_string(m))?;
                }
                Ok(())
            }
            S::CreateDatabase(c) => {
                write!(f, "CREATE DATABASE {}", quote_ident(&c.name))?;
                if c.retention_policy_create {
                    f.write_str(" WITH")?;
                    if let Some(d) = c.duration {
                        write!(f, " DURATION {}", dur_or_inf(d))?;
                    }
                    if let Some(n) = c.replication {
                        write!(f, " REPLICATION {n}")?;
                    }
                    if let Some(d) = c.shard_duration {
                        write!(f, " SHARD DURATION {}", dur_or_inf(d))?;
                    }
                    if let Some(d) = c.future_limit {
                        write!(f, " FUTURE LIMIT {}", dur_or_inf(d))?;
                    }
                    if let Some(d) = c.past_limit {
                        write!(f, " PAST LIMIT {}", dur_or_inf(d))?;
                    }
                    if let Some(n) = &c.rp_name {
                        write!(f, " NAME {}", quote_ident(n))?;
                    }
                }
                Ok(())
            }
            S::DropDatabase { name } => write!(f, "DROP DATABASE {}", quote_ident(name)),
            S::CreateRetentionPolicy(c) => {
                write!(
                    f,
                    "CREATE RETENTION POLICY {} ON {} DURATION {} REPLICATION {}",
                    quote_ident(&c.name),
                    quote_ident(&c.database),
                    dur_or_inf(c.duration),
                    c.replication
                )?;
                if let Some(d) = c.shard_duration {
                    write!(f, " SHARD DURATION {}", format_duration(d))?;
                }
                if c.default {
                    f.write_str(" DEFAULT")?;
                }
                if let Some(d) = c.future_limit {
                    write!(f, " FUTURE LIMIT {}", dur_or_inf(d))?;
                }
                if let Some(d) = c.past_limit {
                    write!(f, " PAST LIMIT {}", dur_or_inf(d))?;
                }
                Ok(())
            }
            S::AlterRetentionPolicy(a) => {
                let name = if a.name == "default" {
                    "DEFAULT".to_string()
                } else {
                    quote_ident(&a.name)
                };
                write!(
                    f,
                    "ALTER RETENTION POLICY {} ON {}",
                    name,
                    quote_ident(&a.database)
                )?;
                if let Some(d) = a.duration {
                    write!(f, " DURATION {}", dur_or_inf(d))?;
                }
                if let Some(n) = a.replication {
                    write!(f, " REPLICATION {n}")?;
                }
                if let Some(d) = a.shard_duration {
                    write!(f, " SHARD DURATION {}", format_duration(d))?;
                }
                if a.default {
                    f.write_str(" DEFAULT")?;
                }
                if let Some(d) = a.future_limit {
                    write!(f, " FUTURE LIMIT {}", dur_or_inf(d))?;
                }
                if let Some(d) = a.past_limit {
                    write!(f, " PAST LIMIT {}", dur_or_inf(d))?;
                }
                Ok(())
            }
            S::DropRetentionPolicy { name, database } => write!(
                f,
                "DROP RETENTION POLICY {} ON {}",
                quote_ident(name),
                quote_ident(database)
            ),
            S::DropMeasurement { name } => write!(f, "DROP MEASUREMENT {}", quote_ident(name)),
            S::DropSeries(d) => {
                f.write_str("DROP SERIES")?;
                from(f, &d.sources)?;
                where_(f, &d.condition)
            }
            S::DropShard { id } => write!(f, "DROP SHARD {id}"),
            S::CreateUser {
                name,
                password,
                admin,
            } => {
                write!(
                    f,
                    "CREATE USER {} WITH PASSWORD {}",
                    quote_ident(name),
                    quote_string(password)
                )?;
                if *admin {
                    f.write_str(" WITH ALL PRIVILEGES")?;
                }
                Ok(())
            }
            S::DropUser { name } => write!(f, "DROP USER {}", quote_ident(name)),
            S::SetPassword { name, password } => {
                write!(
                    f,
                    "SET PASSWORD FOR {} = {}",
                    quote_ident(name),
                    quote_string(password)
                )
            }
            S::Grant {
                privilege,
                database,
                user,
            } => write!(
                f,
                "GRANT {} ON {} TO {}",
                privilege.as_str(),
                quote_ident(database),
                quote_ident(user)
            ),
            S::GrantAdmin { user } => write!(f, "GRANT ALL PRIVILEGES TO {}", quote_ident(user)),
            S::Revoke {
                privilege,
                database,
                user,
            } => write!(
                f,
                "REVOKE {} ON {} FROM {}",
                privilege.as_str(),
                quote_ident(database),
                quote_ident(user)
            ),
            S::RevokeAdmin { user } => {
                write!(f, "REVOKE ALL PRIVILEGES FROM {}", quote_ident(user))
            }
            S::KillQuery { id, host } => {
                write!(f, "KILL QUERY {id}")?;
                on(f, host)
            }
            S::Explain { analyze, statement } => {
                f.write_str("EXPLAIN ")?;
                if *analyze {
                    f.write_str("ANALYZE ")?;
                }
                write!(f, "{statement}")
            }
            S::CreateContinuousQuery(c) => {
                write!(
                    f,
                    "CREATE CONTINUOUS QUERY {} ON {}",
                    quote_ident(&c.name),
                    quote_ident(&c.database)
                )?;
                if c.resample_every.is_some() || c.resample_for.is_some() {
                    f.write_str(" RESAMPLE")?;
                    if let Some(d) = c.resample_every {
                        write!(f, " EVERY {}", format_duration(d))?;
                    }
                    if let Some(d) = c.resample_for {
                        write!(f, " FOR {}", format_duration(d))?;
                    }
                }
                write!(f, " BEGIN {} END", c.source)
            }
            S::DropContinuousQuery { name, database } => write!(
                f,
                "DROP CONTINUOUS QUERY {} ON {}",
                quote_ident(name),
                quote_ident(database)
            ),
            S::CreateSubscription(c) => {
                write!(
                    f,
                    "CREATE SUBSCRIPTION {} ON {}.{} DESTINATIONS {} ",
                    quote_ident(&c.name),
                    quote_ident(&c.database),
                    quote_ident(&c.retention_policy),
                    c.mode
                )?;
                list(f, c.destinations.iter().map(|d| quote_string(d)))
            }
            S::DropSubscription {
                name,
                database,
                retention_policy,
            } => write!(
                f,
                "DROP SUBSCRIPTION {} ON {}.{}",
                quote_ident(name),
                quote_ident(database),
                quote_ident(retention_policy)
            ),
        }
    }
}
