//! 1.x's warning on a writing statement sent by `GET /query`: the statement runs, and its
//! result carries `{"level":"warning","text":"deprecated use of '<statement>' in a read
//! only context, please use a POST request instead"}`, the statement quoted as 1.x's
//! `String()` writes it after normalizing it (measurements qualified with their database
//! and policy, passwords `[REDACTED]`, durations in 1.x's two spellings). `DELETE` is the
//! one writing statement 1.x does not warn about; a statement that fails carries only its
//! error.

use super::parser::ast::{CreateDatabaseStatement, Fill, SelectStatement, Source, Statement};
use super::parser::display::quote_ident;
use super::result::Message;
use crate::catalog::Catalog;

/// The warning for `statement`, run successfully from a GET with `database` as `db=` and
/// `policy` as `rp=`; None for a statement that only reads (or that 1.x lets through
/// silently).
pub(crate) fn warning(
    catalog: &Catalog,
    statement: &Statement,
    database: Option<&str>,
    policy: Option<&str>,
) -> Option<Message> {
    let text = statement_text(catalog, statement, database, policy)?;
    Some(Message {
        level: "warning",
        text: format!(
            "deprecated use of '{text}' in a read only context, please use a POST request instead"
        ),
    })
}

/// Whether `statement` is one [`warning`] may warn about: the catalog, which the warning's
/// text needs, is read only for those (a GET's reads pass by without it).
pub(crate) fn may_warn(statement: &Statement) -> bool {
    use Statement as S;
    match statement {
        S::Select(s) => s.target.is_some(),
        S::CreateDatabase(_)
        | S::CreateRetentionPolicy(_)
        | S::AlterRetentionPolicy(_)
        | S::CreateUser { .. }
        | S::SetPassword { .. }
        | S::CreateContinuousQuery(_)
        | S::DropDatabase { .. }
        | S::DropRetentionPolicy { .. }
        | S::DropMeasurement { .. }
        | S::DropSeries(_)
        | S::DropShard { .. }
        | S::DropUser { .. }
        | S::Grant { .. }
        | S::GrantAdmin { .. }
        | S::Revoke { .. }
        | S::RevokeAdmin { .. }
        | S::DropContinuousQuery { .. }
        | S::KillQuery { .. }
        | S::CreateSubscription(_)
        | S::DropSubscription { .. } => true,
        _ => false,
    }
}

/// 1.x's `String()` of a writing statement as its executor sees it.
fn statement_text(
    catalog: &Catalog,
    statement: &Statement,
    database: Option<&str>,
    policy: Option<&str>,
) -> Option<String> {
    use Statement as S;
    let text = match statement {
        S::Select(s) => {
            s.target.as_ref()?;
            let mut s = s.clone();
            normalize(catalog, database, policy, &mut s);
            s.to_string()
        }
        S::CreateDatabase(c) => create_database(c),
        S::CreateRetentionPolicy(c) => {
            let mut text = format!(
                "CREATE RETENTION POLICY {} ON {} DURATION {} REPLICATION {}",
                quote_ident(&c.name),
                quote_ident(&c.database),
                go_format_duration(c.duration),
                c.replication
            );
            if let Some(d) = c.shard_duration.filter(|&d| d > 0) {
                text.push_str(&format!(" SHARD DURATION {}", go_format_duration(d)));
            }
            if c.default {
                text.push_str(" DEFAULT");
            }
            text
        }
        S::AlterRetentionPolicy(a) => {
            let mut text = format!(
                "ALTER RETENTION POLICY {} ON {}",
                quote_ident(&a.name),
                quote_ident(&a.database)
            );
            if let Some(d) = a.duration {
                text.push_str(&format!(" DURATION {}", go_format_duration(d)));
            }
            if let Some(n) = a.replication {
                text.push_str(&format!(" REPLICATION {n}"));
            }
            if let Some(d) = a.shard_duration {
                text.push_str(&format!(" SHARD DURATION {}", go_format_duration(d)));
            }
            if a.default {
                text.push_str(" DEFAULT");
            }
            text
        }
        S::CreateUser { name, admin, .. } => format!(
            "CREATE USER {} WITH PASSWORD [REDACTED]{}",
            quote_ident(name),
            if *admin { " WITH ALL PRIVILEGES" } else { "" }
        ),
        S::SetPassword { name, .. } => {
            format!("SET PASSWORD FOR {} = [REDACTED]", quote_ident(name))
        }
        // 1.x keeps the text it stored, normalized against the query's database.
        S::CreateContinuousQuery(c) => catalog
            .databases
            .get(&c.database)
            .and_then(|db| db.continuous_queries.get(&c.name))
            .map_or_else(|| statement.to_string(), |cq| cq.query.clone()),
        S::DropDatabase { .. }
        | S::DropRetentionPolicy { .. }
        | S::DropMeasurement { .. }
        | S::DropSeries(_)
        | S::DropShard { .. }
        | S::DropUser { .. }
        | S::Grant { .. }
        | S::GrantAdmin { .. }
        | S::Revoke { .. }
        | S::RevokeAdmin { .. }
        | S::DropContinuousQuery { .. }
        | S::KillQuery { .. }
        | S::CreateSubscription(_)
        | S::DropSubscription { .. } => statement.to_string(),
        _ => return None,
    };
    Some(text)
}

/// `CREATE DATABASE`'s String(): its durations in Go's `time.Duration` spelling, and
/// only the clauses 1.x knows.
fn create_database(c: &CreateDatabaseStatement) -> String {
    let mut text = format!("CREATE DATABASE {}", quote_ident(&c.name));
    if c.retention_policy_create {
        text.push_str(" WITH");
        if let Some(d) = c.duration {
            text.push_str(&format!(" DURATION {}", go_duration_string(d)));
        }
        if let Some(n) = c.replication {
            text.push_str(&format!(" REPLICATION {n}"));
        }
        if let Some(d) = c.shard_duration.filter(|&d| d > 0) {
            text.push_str(&format!(" SHARD DURATION {}", go_duration_string(d)));
        }
        if let Some(n) = &c.rp_name {
            text.push_str(&format!(" NAME {}", quote_ident(n)));
        }
    }
    text
}

/// A whole fill() number as 1.x's `%v` writes it (`fill(1)`, not `fill(1.0)`), in the
/// statement and its subqueries.
pub(crate) fn go_fill(s: &mut SelectStatement) {
    if let Some(Fill::Number(x)) = s.fill {
        if x.fract() == 0.0 && x.abs() < 1e15 {
            s.fill = Some(Fill::Integer(x as i64));
        }
    }
    for source in &mut s.sources {
        if let Source::Subquery(inner) = source {
            go_fill(inner);
        }
    }
}

/// 1.x's normalization before a SELECT runs: every measurement (the target's too) without
/// a database gets the query's, and without a policy the request's `rp=`, else its
/// database's default; fill() numbers as [`go_fill`] writes them.
fn normalize(
    catalog: &Catalog,
    database: Option<&str>,
    policy: Option<&str>,
    s: &mut SelectStatement,
) {
    go_fill(s);
    qualify_measurements(catalog, database, policy, s);
}

fn qualify_measurements(
    catalog: &Catalog,
    database: Option<&str>,
    policy: Option<&str>,
    s: &mut SelectStatement,
) {
    let qualify = |db: &mut Option<String>, rp: &mut Option<String>| {
        if db.is_none() {
            *db = database.filter(|d| !d.is_empty()).map(str::to_owned);
        }
        if rp.is_none() {
            *rp = match policy.filter(|p| !p.is_empty()) {
                Some(p) => Some(p.to_owned()),
                None => db
                    .as_deref()
                    .and_then(|d| catalog.databases.get(d))
                    .map(|d| d.default_policy.clone())
                    .filter(|p| !p.is_empty()),
            };
        }
    };
    if let Some(t) = &mut s.target {
        qualify(&mut t.database, &mut t.retention_policy);
    }
    for source in &mut s.sources {
        match source {
            Source::Measurement(m) => qualify(&mut m.database, &mut m.retention_policy),
            Source::Subquery(inner) => qualify_measurements(catalog, database, policy, inner),
        }
    }
}

/// influxql's `FormatDuration`: the largest unit that divides the duration, down to
/// microseconds (a remainder of nanoseconds is cut).
fn go_format_duration(d: i64) -> String {
    const UNITS: [(i64, &str); 6] = [
        (7 * 86_400_000_000_000, "w"),
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
    ];
    if d == 0 {
        return "0s".into();
    }
    for (unit, name) in UNITS {
        if d % unit == 0 {
            return format!("{}{name}", d / unit);
        }
    }
    format!("{}u", d / 1_000)
}

/// Go's `time.Duration.String()`: `1h0m0s`, `1m30s`, `1.5s`, `500ms`, `10µs`, `3ns`.
pub(crate) fn go_duration_string(d: i64) -> String {
    const SECOND: u64 = 1_000_000_000;
    let sign = if d < 0 { "-" } else { "" };
    let u = d.unsigned_abs();
    if u == 0 {
        return "0s".into();
    }
    // The value in `unit`s, with a fraction of at most `digits` digits, no trailing zeros.
    let scaled = |v: u64, digits: u32| {
        let div = 10u64.pow(digits);
        let (whole, frac) = (v / div, v % div);
        if frac == 0 {
            whole.to_string()
        } else {
            let frac = format!("{frac:0width$}", width = digits as usize);
            format!("{whole}.{}", frac.trim_end_matches('0'))
        }
    };
    if u < SECOND {
        let (digits, unit) = match u {
            0..=999 => (0, "ns"),
            1_000..=999_999 => (3, "µs"),
            _ => (6, "ms"),
        };
        return format!("{sign}{}{unit}", scaled(u, digits));
    }
    let seconds = scaled(u % (60 * SECOND), 9);
    let minutes = u / (60 * SECOND);
    let text = match (minutes / 60, minutes % 60) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    };
    format!("{sign}{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GET reads the catalog for the warning only when `may_warn` says so: every
    /// statement that warns must say so.
    #[test]
    fn every_statement_that_warns_may_warn() {
        let catalog = Catalog::default();
        let queries = [
            "SELECT v INTO m2 FROM m",
            "SELECT v FROM m",
            "CREATE DATABASE d",
            "CREATE RETENTION POLICY p ON d DURATION 1h REPLICATION 1",
            "ALTER RETENTION POLICY p ON d DURATION 2h",
            "CREATE USER u WITH PASSWORD 'x'",
            "SET PASSWORD FOR u = 'y'",
            "CREATE CONTINUOUS QUERY c ON d BEGIN SELECT mean(v) INTO m2 FROM m GROUP BY time(1h) END",
            "DROP DATABASE d",
            "DROP RETENTION POLICY p ON d",
            "DROP MEASUREMENT m",
            "DROP SERIES FROM m",
            "DROP SHARD 1",
            "DROP USER u",
            "GRANT READ ON d TO u",
            "GRANT ALL PRIVILEGES TO u",
            "REVOKE READ ON d FROM u",
            "REVOKE ALL PRIVILEGES FROM u",
            "DROP CONTINUOUS QUERY c ON d",
            "KILL QUERY 1",
            "DELETE FROM m",
            "SHOW DATABASES",
            "SHOW TAG VALUES FROM m WITH KEY = k",
            "SHOW QUERIES",
        ];
        for q in queries {
            let statement = &crate::query::parser::parse_query(q).unwrap()[0];
            let warns = warning(&catalog, statement, Some("d"), None).is_some();
            assert_eq!(may_warn(statement), warns, "{q}");
        }
    }

    #[test]
    fn durations_read_as_go_writes_them() {
        let cases = [
            (0, "0s"),
            (3, "3ns"),
            (1_500, "1.5µs"),
            (500_000_000, "500ms"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (86_400_000_000_000, "24h0m0s"),
            (3_600_000_000_001, "1h0m0.000000001s"),
        ];
        for (d, text) in cases {
            assert_eq!(go_duration_string(d), text, "{d}");
        }
        assert_eq!(go_format_duration(7 * 86_400_000_000_000), "1w");
        assert_eq!(go_format_duration(1_500), "1u");
        assert_eq!(go_format_duration(90_000_000_000), "90s");
    }
}
