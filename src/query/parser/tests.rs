//! Tests: statement forms, error messages/positions, round trips, robustness.

use super::lexer::{format_duration, Pos};
use super::*;
use proptest::prelude::*;

fn one(q: &str) -> Statement {
    let mut v = parse_query(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    assert_eq!(v.len(), 1, "{q}");
    v.remove(0)
}

fn select(q: &str) -> SelectStatement {
    match one(q) {
        Statement::Select(s) => *s,
        other => panic!("not a select: {other:?}"),
    }
}

fn err(q: &str) -> String {
    match parse_query(q) {
        Ok(v) => panic!("expected error for {q:?}, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

fn roundtrip(q: &str) {
    let stmts = parse_query(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    for s in &stmts {
        let text = s.to_string();
        let again = parse_query(&text).unwrap_or_else(|e| panic!("reparse {text:?}: {e}"));
        assert_eq!(again.len(), 1, "{text}");
        assert_eq!(&again[0], s, "round trip of {text:?}");
        assert_eq!(again[0].to_string(), text, "display is a fixed point");
    }
}

fn m(name: &str) -> Source {
    Source::Measurement(Measurement {
        database: None,
        retention_policy: None,
        name: MeasurementName::Name(name.into()),
    })
}

/// Error messages as InfluxDB 1.x reports them (what clients show and match on).
const ERROR_CASES: &[(&str, &str)] = &[
    (
        r#""#,
        r#"found EOF, expected SELECT, DELETE, SHOW, CREATE, DROP, EXPLAIN, GRANT, REVOKE, ALTER, SET, KILL at line 1, char 1"#,
    ),
    (
        r#"SELECT"#,
        r#"found EOF, expected identifier, string, number, bool at line 1, char 8"#,
    ),
    (
        r#"blah blah"#,
        r#"found blah, expected SELECT, DELETE, SHOW, CREATE, DROP, EXPLAIN, GRANT, REVOKE, ALTER, SET, KILL at line 1, char 1"#,
    ),
    (
        r#"SELECT sensor X"#,
        r#"found X, expected FROM at line 1, char 15"#,
    ),
    (
        r#"SELECT sensor FROM "metric" WHERE X +;"#,
        r#"found ;, expected identifier, string, number, bool at line 1, char 38"#,
    ),
    (
        r#"SELECT sensor FROM readings GROUP"#,
        r#"found EOF, expected BY at line 1, char 35"#,
    ),
    (
        r#"SELECT sensor FROM readings LIMIT"#,
        r#"found EOF, expected integer at line 1, char 35"#,
    ),
    (
        r#"SELECT sensor FROM readings LIMIT 10.5"#,
        r#"found 10.5, expected integer at line 1, char 35"#,
    ),
    (
        r#"SELECT sensor FROM readings OFFSET"#,
        r#"found EOF, expected integer at line 1, char 36"#,
    ),
    (
        r#"SELECT sensor FROM readings OFFSET 10.5"#,
        r#"found 10.5, expected integer at line 1, char 36"#,
    ),
    (
        r#"SELECT sensor FROM readings ORDER"#,
        r#"found EOF, expected BY at line 1, char 35"#,
    ),
    (
        r#"SELECT sensor FROM readings ORDER BY"#,
        r#"found EOF, expected identifier, ASC, DESC at line 1, char 38"#,
    ),
    (
        r#"SELECT sensor FROM readings ORDER BY /"#,
        r#"found /, expected identifier, ASC, DESC at line 1, char 38"#,
    ),
    (
        r#"SELECT sensor FROM readings ORDER BY 1"#,
        r#"found 1, expected identifier, ASC, DESC at line 1, char 38"#,
    ),
    (
        r#"SELECT sensor FROM readings ORDER BY time ASC,"#,
        r#"found EOF, expected identifier at line 1, char 47"#,
    ),
    (
        r#"SELECT sensor FROM readings ORDER BY time, sensor"#,
        r#"only ORDER BY time supported at this time"#,
    ),
    (
        r#"SELECT sensor AS"#,
        r#"found EOF, expected identifier at line 1, char 18"#,
    ),
    (
        r#"SELECT sensor FROM 12"#,
        r#"found 12, expected identifier at line 1, char 20"#,
    ),
    (
        r#"SELECT 1000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000 FROM readings"#,
        r#"unable to parse integer at line 1, char 8"#,
    ),
    (
        r#"SELECT 10.5h FROM readings"#,
        r#"found h, expected FROM at line 1, char 12"#,
    ),
    (
        r#"SELECT distinct FROM readings"#,
        r#"found FROM, expected identifier at line 1, char 17"#,
    ),
    (
        r#"SELECT count(distinct) FROM readings"#,
        r#"found ), expected (, identifier at line 1, char 22"#,
    ),
    (
        r#"SELECT sensor from readings WHERE host =~ 'asd' LIMIT 1"#,
        r#"found asd, expected regex at line 1, char 42"#,
    ),
    (
        r#"SELECT value > 2 FROM air"#,
        r#"invalid operator > in SELECT clause at line 1, char 8; operator is intended for WHERE clause"#,
    ),
    (
        r#"SELECT value = 2 FROM air"#,
        r#"invalid operator = in SELECT clause at line 1, char 8; operator is intended for WHERE clause"#,
    ),
    (
        r#"SELECT s =~ /foo/ FROM air"#,
        r#"invalid operator =~ in SELECT clause at line 1, char 8; operator is intended for WHERE clause"#,
    ),
    (
        r#"SELECT mean(value) FROM air FILL + value"#,
        r#"fill must be a function call"#,
    ),
    (
        r#"DELETE"#,
        r#"found EOF, expected FROM, WHERE at line 1, char 8"#,
    ),
    (
        r#"DELETE FROM"#,
        r#"found EOF, expected identifier at line 1, char 13"#,
    ),
    (
        r#"DELETE FROM &foo.readings"#,
        r#"found &, expected identifier at line 1, char 13"#,
    ),
    (
        r#"DELETE FROM ^foo.readings"#,
        r#"found ^, expected identifier at line 1, char 13"#,
    ),
    (
        r#"DELETE FROM *foo.readings"#,
        r#"found *, expected identifier at line 1, char 13"#,
    ),
    (
        r#"DELETE FROM readings WHERE"#,
        r#"found EOF, expected identifier, string, number, bool at line 1, char 28"#,
    ),
    (
        r#"DELETE FROM foo..readings"#,
        r#"database not supported at line 1, char 1"#,
    ),
    (
        r#"DROP MEASUREMENT"#,
        r#"found EOF, expected identifier at line 1, char 18"#,
    ),
];

#[test]
fn error_messages_match_influxdb() {
    let mut failures = Vec::new();
    for (q, want) in ERROR_CASES {
        let parsed = if q.is_empty() {
            parse_statement(q).map(|s| vec![s])
        } else {
            parse_query(q)
        };
        let got = match parsed {
            Ok(v) => format!("OK {v:?}"),
            Err(e) => e.to_string(),
        };
        if &got != want {
            failures.push(format!("{q:?}\n   want: {want}\n    got: {got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn http_prefix() {
    let e = parse_query("SELECT").unwrap_err();
    assert_eq!(
        e.http_message(),
        "error parsing query: found EOF, expected identifier, string, number, bool at line 1, char 8"
    );
    assert_eq!(e.found, "EOF");
    assert_eq!(e.expected, vec!["identifier", "string", "number", "bool"]);
    assert_eq!(e.pos, Some(Pos { line: 0, char: 7 }));
}

#[test]
fn multiple_statements() {
    let v = parse_query("SHOW DATABASES; ;SELECT v FROM m;").unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0], Statement::ShowDatabases);
    assert!(parse_query("").unwrap().is_empty());
    assert!(parse_query(" ;; ").unwrap().is_empty());
}

#[test]
fn select_basic_fields() {
    let s = select(r#"select value, "host"::tag, u::float AS "x y", * from "cpu load""#);
    assert_eq!(s.fields.len(), 4);
    assert_eq!(s.fields[0].expr, Expr::var("value"));
    assert_eq!(
        s.fields[1].expr,
        Expr::VarRef(VarRef {
            name: "host".into(),
            data_type: Some(DataType::Tag)
        })
    );
    assert_eq!(s.fields[2].alias.as_deref(), Some("x y"));
    assert_eq!(s.fields[3].expr, Expr::Wildcard(WildcardType::All));
    assert_eq!(s.sources, vec![m("cpu load")]);
}

#[test]
fn select_precedence() {
    let s = select("SELECT a + b * c - d FROM m");
    use BinaryOp::*;
    let want = Expr::binary(
        Sub,
        Expr::binary(
            Add,
            Expr::var("a"),
            Expr::binary(Mul, Expr::var("b"), Expr::var("c")),
        ),
        Expr::var("d"),
    );
    assert_eq!(s.fields[0].expr, want);
    let s = select("SELECT a | b & c ^ d FROM m");
    let want = Expr::binary(
        BitXor,
        Expr::binary(
            BitOr,
            Expr::var("a"),
            Expr::binary(BitAnd, Expr::var("b"), Expr::var("c")),
        ),
        Expr::var("d"),
    );
    assert_eq!(s.fields[0].expr, want);
    let c = select("SELECT v FROM m WHERE a = 1 OR b = 2 AND c = 3")
        .condition
        .unwrap();
    let want = Expr::binary(
        Or,
        Expr::binary(Eq, Expr::var("a"), Expr::Integer(1)),
        Expr::binary(
            And,
            Expr::binary(Eq, Expr::var("b"), Expr::Integer(2)),
            Expr::binary(Eq, Expr::var("c"), Expr::Integer(3)),
        ),
    );
    assert_eq!(c, want);
}

#[test]
fn select_functions() {
    let s = select("SELECT derivative(mean(x), 1s), top(x, host, 3), percentile(x, 95), COUNT(DISTINCT(h)) FROM m");
    assert_eq!(
        s.fields[0].expr,
        Expr::call(
            "derivative",
            vec![
                Expr::call("mean", vec![Expr::var("x")]),
                Expr::Duration(1_000_000_000)
            ]
        )
    );
    assert_eq!(
        s.fields[1].expr,
        Expr::call(
            "top",
            vec![Expr::var("x"), Expr::var("host"), Expr::Integer(3)]
        )
    );
    assert_eq!(
        s.fields[2].expr,
        Expr::call("percentile", vec![Expr::var("x"), Expr::Integer(95)])
    );
    assert_eq!(
        s.fields[3].expr,
        Expr::call("count", vec![Expr::call("distinct", vec![Expr::var("h")])])
    );
    let s = select("SELECT DISTINCT host FROM m");
    assert_eq!(s.fields[0].expr, Expr::Distinct("host".into()));
}

#[test]
fn literals_and_durations() {
    let s = select("SELECT 1, -2, 1.5, -0.5, 'it\\'s', true, FALSE, 1h30m, 1w, 2d, 1ns, 1u, 1µ, 1ms, 9223372036854775808 FROM m");
    let e: Vec<Expr> = s.fields.into_iter().map(|f| f.expr).collect();
    assert_eq!(e[0], Expr::Integer(1));
    assert_eq!(e[1], Expr::Integer(-2));
    assert_eq!(e[2], Expr::Number(1.5));
    assert_eq!(e[3], Expr::Number(-0.5));
    assert_eq!(e[4], Expr::String("it's".into()));
    assert_eq!(e[5], Expr::Boolean(true));
    assert_eq!(e[6], Expr::Boolean(false));
    assert_eq!(e[7], Expr::Duration(5_400_000_000_000));
    assert_eq!(e[8], Expr::Duration(7 * 86_400_000_000_000));
    assert_eq!(e[9], Expr::Duration(2 * 86_400_000_000_000));
    assert_eq!(e[10], Expr::Duration(1));
    assert_eq!(e[11], Expr::Duration(1_000));
    assert_eq!(e[12], Expr::Duration(1_000));
    assert_eq!(e[13], Expr::Duration(1_000_000));
    assert_eq!(e[14], Expr::Unsigned(9_223_372_036_854_775_808));
}

#[test]
fn quoted_identifiers_and_escapes() {
    let s = select(r#"SELECT "a \"q\" \\ b", "select" FROM "db"."rp"."m\nx""#);
    assert_eq!(s.fields[0].expr, Expr::var("a \"q\" \\ b"));
    assert_eq!(s.fields[1].expr, Expr::var("select"));
    assert_eq!(
        s.sources[0],
        Source::Measurement(Measurement {
            database: Some("db".into()),
            retention_policy: Some("rp".into()),
            name: MeasurementName::Name("m\nx".into()),
        })
    );
    // Keywords are case-insensitive and must be quoted to be identifiers.
    assert!(parse_query("sElEcT v fRoM m wHeRe a = 1").is_ok());
    assert!(parse_query("SELECT v FROM limit").is_err());
    assert!(parse_query("SELECT v FROM \"limit\"").is_ok());
}

#[test]
fn sources() {
    let s = select("SELECT v FROM db..m, rp.m, /^c/, db.rp./x/, (SELECT w FROM n)");
    let names: Vec<String> = s.sources.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        names,
        vec!["db..m", "rp.m", "/^c/", "db.rp./x/", "(SELECT w FROM n)"]
    );
    match &s.sources[0] {
        Source::Measurement(mm) => {
            assert_eq!(mm.database.as_deref(), Some("db"));
            assert_eq!(mm.retention_policy, None);
        }
        _ => panic!(),
    }
    assert!(matches!(s.sources[4], Source::Subquery(_)));
}

#[test]
fn into_targets() {
    let t = select("SELECT v INTO db.rp.:MEASUREMENT FROM /.*/")
        .target
        .unwrap();
    assert_eq!(t.database.as_deref(), Some("db"));
    assert_eq!(t.retention_policy.as_deref(), Some("rp"));
    assert_eq!(t.name, "");
    let t = select("SELECT v INTO \"x\" FROM m").target.unwrap();
    assert_eq!(t.name, "x");
}

#[test]
fn where_time_and_params() {
    let c = select("SELECT v FROM m WHERE time >= '2024-01-01T00:00:00Z' AND time < now() - 1h AND host = $host AND t > 1700000000000000000")
        .condition
        .unwrap();
    let text = c.to_string();
    assert_eq!(
        text,
        "time >= '2024-01-01T00:00:00Z' AND time < now() - 1h AND host = $host AND t > 1700000000000000000"
    );
    let ops = ["=", "!=", "<>", "<", "<=", ">", ">="];
    for op in ops {
        assert!(
            parse_query(&format!("SELECT v FROM m WHERE a {op} 1")).is_ok(),
            "{op}"
        );
    }
    let c = select("SELECT v FROM m WHERE a =~ /x\\/y/ OR b !~ /z/")
        .condition
        .unwrap();
    assert_eq!(c.to_string(), "a =~ /x\\/y/ OR b !~ /z/");
    let c = select("SELECT v FROM m WHERE (a = 1 OR b = 2) AND c = 3")
        .condition
        .unwrap();
    assert!(
        matches!(c, Expr::Binary(ref b) if b.op == BinaryOp::And && matches!(b.lhs, Expr::Paren(_)))
    );
}

#[test]
fn group_by_fill_order_limit_tz() {
    let s = select("SELECT mean(v) FROM m WHERE time > now() - 1d GROUP BY time(1h, 15m), host, /^r/ fill(previous) ORDER BY time DESC LIMIT 10 OFFSET 2 SLIMIT 3 SOFFSET 4 tz('America/Chicago')");
    assert_eq!(s.dimensions.len(), 3);
    assert_eq!(
        s.group_by_time().unwrap(),
        &[
            Expr::Duration(3_600_000_000_000),
            Expr::Duration(900_000_000_000)
        ]
    );
    assert_eq!(s.fill, Some(Fill::Previous));
    assert_eq!(
        s.order_by,
        vec![SortField {
            name: "time".into(),
            ascending: false
        }]
    );
    assert_eq!((s.limit, s.offset, s.slimit, s.soffset), (10, 2, 3, 4));
    assert_eq!(s.location.as_deref(), Some("America/Chicago"));
    for (f, want) in [
        ("null", Fill::Null),
        ("none", Fill::None),
        ("linear", Fill::Linear),
        ("0", Fill::Integer(0)),
        ("-1", Fill::Integer(-1)),
        ("1.5", Fill::Number(1.5)),
    ] {
        let s = select(&format!(
            "SELECT mean(v) FROM m GROUP BY time(1m) fill({f})"
        ));
        assert_eq!(s.fill, Some(want));
    }
    assert_eq!(
        select("SELECT v FROM m GROUP BY *").dimensions[0].expr,
        Expr::Wildcard(WildcardType::All)
    );
}

#[test]
fn show_statements() {
    match one("SHOW MEASUREMENTS ON db WITH MEASUREMENT =~ /c.*/ WHERE a = 'b' LIMIT 5 OFFSET 1") {
        Statement::ShowMeasurements(s) => {
            assert_eq!(s.database.as_deref(), Some("db"));
            assert!(matches!(s.source.unwrap().name, MeasurementName::Regex(_)));
            assert!(s.condition.is_some());
            assert_eq!((s.limit, s.offset), (5, 1));
        }
        o => panic!("{o:?}"),
    }
    match one("SHOW SERIES ON db FROM cpu WHERE host = 'a' LIMIT 2") {
        Statement::ShowSeries(s) => {
            assert_eq!(s.database.as_deref(), Some("db"));
            assert_eq!(s.sources, vec![m("cpu")]);
            assert_eq!(s.limit, 2);
        }
        o => panic!("{o:?}"),
    }
    match one("SHOW TAG KEYS ON db FROM cpu WHERE x = 'y' LIMIT 1 OFFSET 1") {
        Statement::ShowTagKeys(s) => assert_eq!((s.limit, s.offset), (1, 1)),
        o => panic!("{o:?}"),
    }
    for (q, want) in [
        (
            "SHOW TAG VALUES WITH KEY = host",
            TagKeyPredicate::Eq("host".into()),
        ),
        (
            "SHOW TAG VALUES WITH KEY != host",
            TagKeyPredicate::Neq("host".into()),
        ),
        (
            "SHOW TAG VALUES WITH KEY =~ /h/",
            TagKeyPredicate::EqRegex(Regex {
                pattern: "h".into(),
            }),
        ),
        (
            "SHOW TAG VALUES WITH KEY !~ /h/",
            TagKeyPredicate::NeqRegex(Regex {
                pattern: "h".into(),
            }),
        ),
        (
            "SHOW TAG VALUES WITH KEY IN (a, \"b c\")",
            TagKeyPredicate::In(vec!["a".into(), "b c".into()]),
        ),
    ] {
        match one(q) {
            Statement::ShowTagValues(s) => assert_eq!(s.tag_key, want),
            o => panic!("{o:?}"),
        }
    }
    match one("SHOW FIELD KEYS ON db FROM cpu") {
        Statement::ShowFieldKeys(s) => assert_eq!(s.sources, vec![m("cpu")]),
        o => panic!("{o:?}"),
    }
    assert_eq!(
        one("SHOW RETENTION POLICIES ON db"),
        Statement::ShowRetentionPolicies {
            database: Some("db".into())
        }
    );
    assert_eq!(
        one("SHOW RETENTION POLICIES"),
        Statement::ShowRetentionPolicies { database: None }
    );
    assert_eq!(one("show shards"), Statement::ShowShards);
    assert_eq!(one("SHOW SHARD GROUPS"), Statement::ShowShardGroups);
    assert_eq!(one("SHOW USERS"), Statement::ShowUsers);
    assert_eq!(
        one("SHOW DIAGNOSTICS"),
        Statement::ShowDiagnostics { module: None }
    );
    assert_eq!(
        one("SHOW STATS FOR 'shard'"),
        Statement::ShowStats {
            module: Some("shard".into())
        }
    );
    for (q, kind, exact) in [
        ("SHOW SERIES CARDINALITY", CardinalityKind::Series, false),
        (
            "SHOW SERIES EXACT CARDINALITY ON db",
            CardinalityKind::Series,
            true,
        ),
        (
            "SHOW MEASUREMENT CARDINALITY",
            CardinalityKind::Measurement,
            false,
        ),
        (
            "SHOW MEASUREMENT EXACT CARDINALITY",
            CardinalityKind::Measurement,
            true,
        ),
        (
            "SHOW TAG KEY CARDINALITY FROM cpu",
            CardinalityKind::TagKey,
            false,
        ),
        (
            "SHOW TAG KEY EXACT CARDINALITY",
            CardinalityKind::TagKey,
            true,
        ),
        (
            "SHOW TAG VALUES CARDINALITY WITH KEY = host",
            CardinalityKind::TagValues,
            false,
        ),
        (
            "SHOW TAG VALUES EXACT CARDINALITY WITH KEY =~ /x/",
            CardinalityKind::TagValues,
            true,
        ),
        (
            "SHOW FIELD KEY CARDINALITY",
            CardinalityKind::FieldKey,
            false,
        ),
        (
            "SHOW FIELD KEY EXACT CARDINALITY ON db",
            CardinalityKind::FieldKey,
            true,
        ),
    ] {
        match one(q) {
            Statement::ShowCardinality(s) => {
                assert_eq!((s.kind, s.exact), (kind, exact), "{q}");
                assert_eq!(
                    s.tag_key.is_some(),
                    kind == CardinalityKind::TagValues,
                    "{q}"
                );
            }
            o => panic!("{q}: {o:?}"),
        }
        roundtrip(q);
    }
}

#[test]
fn admin_statements() {
    match one("CREATE DATABASE db WITH DURATION 30d REPLICATION 1 SHARD DURATION 1d NAME rp") {
        Statement::CreateDatabase(c) => {
            assert_eq!(c.duration, Some(30 * 86_400_000_000_000));
            assert_eq!(c.replication, Some(1));
            assert_eq!(c.shard_duration, Some(86_400_000_000_000));
            assert_eq!(c.rp_name.as_deref(), Some("rp"));
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(
        one("DROP DATABASE db"),
        Statement::DropDatabase { name: "db".into() }
    );
    match one(
        "CREATE RETENTION POLICY rp ON db DURATION 1h REPLICATION 2 SHARD DURATION 30m DEFAULT",
    ) {
        Statement::CreateRetentionPolicy(c) => {
            assert_eq!(c.duration, 3_600_000_000_000);
            assert_eq!(c.replication, 2);
            assert_eq!(c.shard_duration, Some(1_800_000_000_000));
            assert!(c.default);
        }
        o => panic!("{o:?}"),
    }
    match one("ALTER RETENTION POLICY DEFAULT ON db REPLICATION 3 DURATION INF") {
        Statement::AlterRetentionPolicy(a) => {
            assert_eq!(a.name, "default");
            assert_eq!(a.replication, Some(3));
            assert_eq!(a.duration, Some(0));
            assert!(!a.default);
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(
        one("DROP RETENTION POLICY rp ON db"),
        Statement::DropRetentionPolicy {
            name: "rp".into(),
            database: "db".into()
        }
    );
    assert_eq!(
        one("DROP MEASUREMENT cpu"),
        Statement::DropMeasurement { name: "cpu".into() }
    );
    match one("DROP SERIES FROM cpu WHERE host = 'a'") {
        Statement::DropSeries(d) => {
            assert_eq!(d.sources, vec![m("cpu")]);
            assert!(d.condition.is_some());
        }
        o => panic!("{o:?}"),
    }
    match one("DELETE WHERE time < '2020-01-01'") {
        Statement::Delete(d) => assert!(d.sources.is_empty() && d.condition.is_some()),
        o => panic!("{o:?}"),
    }
    assert_eq!(
        one("CREATE USER u WITH PASSWORD 'p' WITH ALL PRIVILEGES"),
        Statement::CreateUser {
            name: "u".into(),
            password: "p".into(),
            admin: true
        }
    );
    assert_eq!(one("DROP USER u"), Statement::DropUser { name: "u".into() });
    assert_eq!(
        one("GRANT READ ON db TO u"),
        Statement::Grant {
            privilege: Privilege::Read,
            database: "db".into(),
            user: "u".into()
        }
    );
    assert_eq!(
        one("GRANT ALL PRIVILEGES TO u"),
        Statement::GrantAdmin { user: "u".into() }
    );
    assert_eq!(
        one("REVOKE ALL ON db FROM u"),
        Statement::Revoke {
            privilege: Privilege::All,
            database: "db".into(),
            user: "u".into()
        }
    );
    assert_eq!(
        one("REVOKE ALL FROM u"),
        Statement::RevokeAdmin { user: "u".into() }
    );
    assert_eq!(
        one("SET PASSWORD FOR u = 'x'"),
        Statement::SetPassword {
            name: "u".into(),
            password: "x".into()
        }
    );
    assert_eq!(
        one("KILL QUERY 5"),
        Statement::KillQuery { id: 5, host: None }
    );
}

#[test]
fn negation_forms_roundtrip() {
    for q in [
        "SELECT -a, +b, -(a + b), -mean(x), a / -b, a - -1, a * -1 * b, -1 * a + c, a + -1 * b * c FROM m",
        "SELECT v FROM m WHERE time > now() - -1h AND x > -9223372036854775808",
        "SELECT a FROM m WHERE a = 1.0 AND b = -0.0 AND c = 0.000001 AND d = 123456789012345680000.0",
        "SELECT \"\" FROM \"\" WHERE $\"a b\" = $x AND $1 = 1",
        "SELECT v INTO \"\".\"\".\"\" FROM m",
        "SELECT v FROM m WHERE a =~ /a\\/b\\\\\\/c/",
        "SELECT f(), \"my fn\"(1), \"SUM\"(v), \"distinct\"(v) FROM m",
    ] {
        roundtrip(q);
    }
}

/// Copy of the seed corpus (`corpus/` at the scratch crate root), so the
/// round-trip test does not depend on files outside this module.
const SEEDS: &[&str] = &[
    "SELECT * FROM cpu\n",
    "SELECT value, host::tag, usage::float, \"v\"::integer FROM \"cpu load\" WHERE time > now() - 1h\n",
    "SELECT mean(value) FROM cpu WHERE time >= '2024-01-01T00:00:00Z' AND time < '2024-01-02T00:00:00Z' GROUP BY time(5m), host fill(null)\n",
    "SELECT derivative(mean(bytes), 1s) AS rate FROM net WHERE host = 'a' GROUP BY time(1m, 30s) fill(none)\n",
    "SELECT top(value, host, 3), bottom(value, 2) FROM mydb.autogen.cpu\n",
    "SELECT percentile(latency, 95) FROM db..requests WHERE time > now() - 30d GROUP BY time(1d) fill(previous)\n",
    "SELECT count(distinct(host)) FROM cpu; SELECT DISTINCT host FROM cpu\n",
    "SELECT a + b * c - d / e % f & g | h ^ i FROM m\n",
    "SELECT (a + b) * -c, -mean(x), +y FROM m\n",
    "SELECT /^cpu_/ FROM /^metrics\\./ WHERE host =~ /web-\\d+/ AND region !~ /us-.*/\n",
    "SELECT max(v) INTO downsampled.rp.:MEASUREMENT FROM /.*/ GROUP BY time(1h), *\n",
    "SELECT mean(v) INTO \"archive\".\"cpu_1h\" FROM cpu WHERE time < now() GROUP BY time(1h), /^tag/ fill(linear)\n",
    "SELECT v FROM cpu WHERE time > 1700000000000000000 AND v >= -1.5 OR v <> 3 ORDER BY time DESC LIMIT 10 OFFSET 5 SLIMIT 2 SOFFSET 1\n",
    "SELECT sum(v) FROM (SELECT max(v) AS v FROM cpu GROUP BY time(1m), host) WHERE time > now() - 1h GROUP BY time(10m) fill(0)\n",
    "SELECT mean(v) FROM cpu WHERE time > now() - 1h30m GROUP BY time(1w) fill(-2.5) tz('America/Chicago')\n",
    "SELECT v FROM cpu WHERE time > now() - 1ns AND time < now() + 1u OR time = now() - 1µ OR time = now() - 1ms\n",
    "SELECT v FROM cpu WHERE host = $host AND time > $start\n",
    "SELECT \"select\", \"a b\", \"quote\\\"d\", \"new\\nline\" FROM \"from\"\n",
    "SELECT *::field, *::tag FROM cpu WHERE true = false\n",
    "SELECT holt_winters_with_fit(first(v), 10, 4) FROM cpu WHERE time > now() - 7d GROUP BY time(1d)\n",
    "SELECT v FROM cpu, mem, db.rp./disk.*/ WHERE (host = 'a' OR host = 'b') AND NOT_A_KEYWORD != 'x'\n",
    "SELECT moving_average(v, 3), cumulative_sum(v), difference(v), non_negative_derivative(v, 10s) FROM cpu\n",
    "SELECT count(v) FROM cpu WHERE time >= '2024-01-01' GROUP BY time(12h, -1h)\n",
    "SELECT v FROM cpu ORDER BY time ASC\n",
    "SELECT 'literal', 1, 1.5, 9223372036854775808, 1h, true FROM cpu\n",
    "SHOW DATABASES\n",
    "SHOW MEASUREMENTS ON mydb WITH MEASUREMENT =~ /cpu.*/ WHERE host = 'a' LIMIT 10 OFFSET 2\n",
    "SHOW MEASUREMENTS ON *.* WITH MEASUREMENT = cpu\n",
    "SHOW SERIES ON mydb FROM cpu, mem WHERE host = 'a' LIMIT 5 OFFSET 1\n",
    "SHOW TAG KEYS ON mydb FROM cpu WHERE region = 'us' LIMIT 3 OFFSET 1\n",
    "SHOW TAG VALUES ON mydb FROM cpu WITH KEY IN (host, region) WHERE time > now() - 1h\n",
    "SHOW TAG VALUES WITH KEY =~ /ho.*/; SHOW TAG VALUES FROM cpu WITH KEY != host; SHOW TAG VALUES WITH KEY = \"host\"\n",
    "SHOW FIELD KEYS ON mydb FROM cpu\n",
    "SHOW RETENTION POLICIES ON mydb\n",
    "SHOW SHARDS; SHOW SHARD GROUPS; SHOW USERS; SHOW DIAGNOSTICS; SHOW STATS FOR 'httpd'\n",
    "SHOW SERIES CARDINALITY ON mydb FROM cpu WHERE host = 'a'; SHOW SERIES EXACT CARDINALITY\n",
    "SHOW MEASUREMENT CARDINALITY; SHOW MEASUREMENT EXACT CARDINALITY ON mydb\n",
    "SHOW TAG KEY CARDINALITY; SHOW TAG KEY EXACT CARDINALITY FROM cpu\n",
    "SHOW TAG VALUES CARDINALITY WITH KEY = host; SHOW TAG VALUES EXACT CARDINALITY FROM cpu WITH KEY =~ /h/\n",
    "SHOW FIELD KEY CARDINALITY ON mydb; SHOW FIELD KEY EXACT CARDINALITY\n",
    "CREATE DATABASE mydb WITH DURATION 30d REPLICATION 1 SHARD DURATION 1d NAME myrp\n",
    "DROP DATABASE \"my-db\"; DROP MEASUREMENT cpu; DROP SERIES FROM cpu WHERE host = 'a'\n",
    "CREATE RETENTION POLICY one_week ON mydb DURATION 1w REPLICATION 1 SHARD DURATION 1h DEFAULT\n",
    "ALTER RETENTION POLICY one_week ON mydb DURATION INF REPLICATION 2 SHARD DURATION 2h DEFAULT\n",
    "DROP RETENTION POLICY one_week ON mydb\n",
    "DELETE FROM cpu WHERE time < '2020-01-01T00:00:00Z'; DELETE WHERE host = 'x'\n",
    "CREATE USER admin WITH PASSWORD 'p@ss\\'word' WITH ALL PRIVILEGES; CREATE USER bob WITH PASSWORD 'x'\n",
    "DROP USER bob; GRANT READ ON mydb TO bob; GRANT ALL TO admin; REVOKE WRITE ON mydb FROM bob; REVOKE ALL PRIVILEGES FROM admin\n",
    "SET PASSWORD FOR bob = 'newpass'\n",
    "EXPLAIN ANALYZE SELECT count(v) FROM cpu; KILL QUERY 12 ON \"host:8086\"\n",
    "CREATE CONTINUOUS QUERY cq1 ON mydb RESAMPLE EVERY 1h FOR 2h BEGIN SELECT mean(v) INTO rp.m FROM cpu GROUP BY time(30m) END\n",
    "-- comment line\nSELECT v /* inline */, w\nFROM cpu\r\nWHERE time > now() - 5m;\n",
    "CREATE SUBSCRIPTION sub0 ON mydb.autogen DESTINATIONS ALL 'udp://h:9090', 'udp://h2:9090'; DROP SUBSCRIPTION sub0 ON mydb.autogen; SHOW SUBSCRIPTIONS; SHOW QUERIES; SHOW CONTINUOUS QUERIES; SHOW GRANTS FOR bob; DROP SHARD 7; DROP CONTINUOUS QUERY cq1 ON mydb\n",
];

#[test]
fn corpus_parses_and_roundtrips() {
    assert!(SEEDS.len() >= 50);
    let mut texts: Vec<String> = SEEDS.iter().map(|s| s.to_string()).collect();
    // Also pick up the on-disk corpus when the crate has one.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus");
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if let Ok(text) = std::fs::read_to_string(entry.path()) {
                texts.push(text);
            }
        }
    }
    for text in &texts {
        let stmts = parse_query(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert!(!stmts.is_empty(), "{text:?}");
        roundtrip(text);
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = format!(
        "SELECT {}v{} FROM m",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let e = err(&deep);
    assert!(e.contains("maximum depth"), "{e}");
    let ok = format!("SELECT {}v{} FROM m", "(".repeat(200), ")".repeat(200));
    roundtrip(&ok);
    let calls = format!(
        "SELECT {}v{} FROM m",
        "f(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert!(err(&calls).contains("maximum depth"));
    let sub = format!(
        "SELECT v FROM {}m{}",
        "(SELECT v FROM ".repeat(1_000),
        ")".repeat(1_000)
    );
    assert!(err(&sub).contains("maximum depth"));
    // Long flat chains: accepted up to the height limit, rejected past it.
    let chain = |n: usize| format!("SELECT v FROM m WHERE {}", vec!["a = 1"; n].join(" OR "));
    roundtrip(&chain(400));
    assert!(err(&chain(100_000)).contains("maximum height"));
    let mixed = format!(
        "SELECT {} FROM m",
        "a + (b * ".repeat(200) + "c" + &")".repeat(200)
    );
    let _ = parse_query(&mixed);
}

#[test]
fn display_deep_tree_on_small_stack() {
    // Display and Drop are recursive; make sure the height limit keeps them safe
    // on a 2 MiB test thread.
    let chain = format!("SELECT v FROM m WHERE {}", vec!["a = 1"; 495].join(" OR "));
    let stmts = parse_query(&chain).unwrap();
    let text = stmts[0].to_string();
    assert!(text.len() > 1000);
    let nested = format!("SELECT {}v{} FROM m", "(".repeat(240), ")".repeat(240));
    let s = parse_query(&nested).unwrap();
    let _ = s[0].to_string();
}

#[test]
fn fuzz_parse_smoke() {
    for s in [
        &b""[..],
        b"\xff\xfe",
        b"SELECT",
        b"SELECT \"",
        b"SELECT '",
        b"SELECT /",
        b"/*",
        b"--",
        b"$",
        b"SELECT * FROM m WHERE a =~ /\\",
        b"\0SELECT",
        b"SELECT 1.",
        b"SELECT .5 FROM m",
        b"SELECT v FROM a.",
        b"SELECT v INTO a.: FROM m",
        b"SELECT 99999999999999999999999999h FROM m",
    ] {
        fuzz_parse(s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,200}") {
        fuzz_parse(s.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        fuzz_parse(&b);
    }

    #[test]
    fn token_soup_never_panics_and_roundtrips(
        toks in proptest::collection::vec(proptest::sample::select(vec![
            "SELECT", "FROM", "WHERE", "GROUP", "BY", "time(1m)", "fill(0)", "ORDER", "LIMIT", "1",
            "1.5", "-", "+", "*", "/", "/x/", "=~", "=", "!=", "AND", "OR", "(", ")", ",", ";",
            "a", "\"b c\"", "'s'", "now()", "1h", "mean(", "::tag", "::field", ".", "..", "INTO",
            "SHOW", "TAG", "VALUES", "WITH", "KEY", "IN", "$p", "DISTINCT", "AS", "tz('UTC')",
            "\n", " ", "--c\n", "/*c*/", "%", "&", "|", "^", "<>", "true",
        ]), 0..40)
    ) {
        let q = toks.join(" ");
        if let Ok(stmts) = parse_query(&q) {
            for s in stmts {
                let text = s.to_string();
                let again = parse_query(&text);
                prop_assert!(matches!(&again, Ok(v) if v.len() == 1 && v[0] == s), "{} -> {} -> {:?}", q, text, again);
            }
        }
    }

    #[test]
    fn generated_selects_roundtrip(
        field in "[a-z]{1,5}",
        meas in "[a-zA-Z _]{1,8}",
        n in any::<i64>(),
        f in any::<f64>(),
        d in 0i64..(i64::MAX / 1000),
        s in "\\PC{0,12}",
    ) {
        let q = format!(
            "SELECT {}, {n} FROM {} WHERE x = {f:?} AND y = {} AND z = {}",
            display::quote_ident(&field),
            display::quote_ident(&meas),
            format_duration(d * 1000),
            display::quote_string(&s),
        );
        if f.is_finite() && !format!("{f:?}").contains('e') {
            roundtrip(&q);
        }
    }
}

#[test]
fn continuous_queries() {
    let q = "CREATE CONTINUOUS QUERY cq ON db BEGIN SELECT mean(v) INTO x FROM cpu END";
    assert_eq!(
        err(q),
        "found cpu, expected GROUP BY time(...) at line 1, char 67"
    );
    let q = "CREATE CONTINUOUS QUERY cq ON db BEGIN SELECT mean(v) INTO x FROM cpu GROUP BY time(host) END";
    assert_eq!(
        err(q),
        "found ), expected GROUP BY time(...), time dimension must have duration argument at line 1, char 89"
    );
    let q = "CREATE CONTINUOUS QUERY cq ON db RESAMPLE EVERY 2m FOR 1m BEGIN SELECT mean(v) INTO x FROM cpu GROUP BY time(1m) END";
    assert_eq!(
        err(q),
        "FOR duration must be >= GROUP BY time duration: must be a minimum of 2m, got 1m"
    );
    assert_eq!(
        err("CREATE CONTINUOUS QUERY cq ON db RESAMPLE BEGIN"),
        "found BEGIN, expected EVERY, FOR at line 1, char 43"
    );
    match one("CREATE CONTINUOUS QUERY \"c q\" ON db RESAMPLE FOR 2h BEGIN SELECT max(v) INTO db.rp.:MEASUREMENT FROM /.*/ GROUP BY time(1h), * END") {
        Statement::CreateContinuousQuery(c) => {
            assert_eq!(c.name, "c q");
            assert_eq!(c.resample_every, None);
            assert_eq!(c.resample_for, Some(7_200_000_000_000));
            assert_eq!(c.source.group_by_interval(), Ok(3_600_000_000_000));
        }
        o => panic!("{o:?}"),
    }
    roundtrip(
        "CREATE CONTINUOUS QUERY cq ON db RESAMPLE EVERY 1m BEGIN SELECT v INTO x FROM cpu END",
    );
}

#[test]
fn bound_parameters() {
    use std::collections::HashMap;
    let mut p = HashMap::new();
    p.insert("host".to_string(), ParamValue::String("web-1".into()));
    p.insert("n".to_string(), ParamValue::Integer(10));
    p.insert("f".to_string(), ParamValue::Number(2.5));
    p.insert("re".to_string(), ParamValue::Regex("^c".into()));
    p.insert("m".to_string(), ParamValue::Identifier("cpu load".into()));
    p.insert("d".to_string(), ParamValue::Duration("1h".into()));
    p.insert("b".to_string(), ParamValue::Boolean(true));
    p.insert(
        "bad".to_string(),
        ParamValue::Error("unable to bind parameter with type []interface {}".into()),
    );
    let q = "SELECT v FROM $m WHERE host = $host AND x > $f AND r =~ $re AND time > now() - $d AND ok = $b LIMIT $n";
    let v = parse_query_with_params(q, &p).unwrap();
    assert_eq!(
        v[0].to_string(),
        "SELECT v FROM \"cpu load\" WHERE host = 'web-1' AND x > 2.5 AND r =~ /^c/ AND time > now() - 1h AND ok = true LIMIT 10"
    );
    let e = parse_query_with_params("SELECT v FROM m WHERE a = $nope", &p).unwrap_err();
    assert_eq!(e.to_string(), "missing parameter: nope");
    // influxd 1.6.7's words, in an expression and where an identifier was expected.
    let e = parse_query_with_params("SELECT v FROM m WHERE a = $bad", &p).unwrap_err();
    assert_eq!(
        e.to_string(),
        "missing parameter: unable to bind parameter with type []interface {}"
    );
    let e = parse_query_with_params("SELECT v FROM $bad", &p).unwrap_err();
    assert_eq!(
        e.to_string(),
        "found unable to bind parameter with type []interface {}, expected identifier at line 1, char 15"
    );
    // Without a parameter map the placeholder is kept in the AST.
    let c = select("SELECT v FROM m WHERE a = $nope").condition.unwrap();
    assert_eq!(
        c,
        Expr::binary(
            BinaryOp::Eq,
            Expr::var("a"),
            Expr::BoundParam("nope".into())
        )
    );
}

/// Profiling driver, not a check: parses the text in `PARSE_PROFILE_QUERY` (default: a
/// dashboard query) 10,000 times, for an instruction count under callgrind:
///
/// ```text
/// PARSE_PROFILE_QUERY="SELECT ..." valgrind --tool=callgrind --collect-atstart=no \
///     --toggle-collect='*parse_profile_round*' target/release/deps/shardkeeper-HASH \
///     --ignored --exact query::parser::tests::parse_profile_driver
/// ```
#[test]
#[ignore]
fn parse_profile_driver() {
    let q = std::env::var("PARSE_PROFILE_QUERY").unwrap_or_else(|_| {
        "SELECT last(usage_user) FROM cpu WHERE hostname = 'host_7'".to_string()
    });
    let mut statements = 0;
    for _ in 0..10_000 {
        statements += parse_profile_round(std::hint::black_box(&q));
    }
    assert!(statements > 0, "{q:?} did not parse");
}

#[inline(never)]
fn parse_profile_round(q: &str) -> usize {
    parse_query(q).map(|v| v.len()).unwrap_or(0)
}
