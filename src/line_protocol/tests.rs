use super::*;
use proptest::prelude::*;

fn parse(s: &str) -> (Vec<Point<'_>>, Vec<LineError>) {
    parse_body(s.as_bytes())
}

#[track_caller]
fn one(s: &str) -> Point<'_> {
    let (p, e) = parse(s);
    assert!(e.is_empty(), "unexpected errors for {s:?}: {e:?}");
    assert_eq!(p.len(), 1, "{s:?}");
    p.into_iter().next().unwrap()
}

#[track_caller]
fn field(s: &str) -> FieldValue {
    let p = one(s);
    assert_eq!(p.fields.len(), 1, "{s:?}");
    p.fields.into_iter().next().unwrap().1
}

#[track_caller]
fn err_with(s: &[u8], opts: &ParseOptions) -> String {
    let (p, e) = parse_body_with(s, opts);
    assert!(
        p.is_empty(),
        "expected failure for {:?}, got {p:?}",
        String::from_utf8_lossy(s)
    );
    assert_eq!(e.len(), 1, "{:?}: {e:?}", String::from_utf8_lossy(s));
    e[0].reason.clone()
}

#[track_caller]
fn err(s: &str) -> String {
    err_with(s.as_bytes(), &ParseOptions::default())
}

fn owned(tags: &[(&str, &str)]) -> Vec<(String, String)> {
    tags.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The point's tags, with those its own line gives (the oracle of the fuzz target).
fn tags(p: &Point<'_>) -> Vec<(String, String)> {
    let tags = p.tags();
    assert_eq!(tags, super::parser::reference_tags(p.line));
    tags.into_iter()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

// ---------------------------------------------------------------- basics

#[test]
fn typical_line() {
    let p = one("cpu,host=h1,region=r field1=1.5,field2=3i,f3=true,f4=\"s\" 1600000000000000000");
    assert_eq!(p.measurement, "cpu");
    assert_eq!(tags(&p), owned(&[("host", "h1"), ("region", "r")]));
    assert_eq!(
        p.fields,
        vec![
            (Cow::from("field1"), FieldValue::Float(1.5)),
            (Cow::from("field2"), FieldValue::Integer(3)),
            (Cow::from("f3"), FieldValue::Boolean(true)),
            (Cow::from("f4"), FieldValue::String("s".into())),
        ]
    );
    assert_eq!(p.timestamp, Some(1600000000000000000));
}

#[test]
fn tags_sorted() {
    let p = one("cpu,zone=z,host=h,app=a v=1");
    assert_eq!(
        tags(&p),
        owned(&[("app", "a"), ("host", "h"), ("zone", "z")])
    );
}

#[test]
fn no_tags_no_timestamp() {
    let p = one("m v=1");
    assert!(p.tags().is_empty());
    assert_eq!(p.timestamp, None);
}

// ---------------------------------------------------------------- escaping

#[test]
fn measurement_escapes() {
    assert_eq!(one("c\\ pu\\,x v=1").measurement, "c pu,x");
    assert_eq!(one("c\\ pu\\,x,t=1 v=1").measurement, "c pu,x");
    // InfluxDB's Name() also unescapes \= and \"
    assert_eq!(one("a\\=b v=1").measurement, "a=b");
    assert_eq!(one("a\\\"b v=1").measurement, "a\"b");
    // unescaped = and " are plain characters in a measurement
    assert_eq!(one("a=b\"c v=1").measurement, "a=b\"c");
    // other backslashes are kept literally
    assert_eq!(one("a\\xb v=1").measurement, "a\\xb");
    assert_eq!(one("a\\\\b v=1").measurement, "a\\\\b");
    // `\\,` : the comma is escaped by the preceding backslash byte
    assert_eq!(one("a\\\\,b v=1").measurement, "a\\,b");
    assert_eq!(one("\\ lead v=1").measurement, " lead");
}

#[test]
fn tag_escapes() {
    let p = one("cpu,ho\\ st=a\\,b\\=c\\ d v=1");
    assert_eq!(tags(&p), owned(&[("ho st", "a,b=c d")]));
    let p = one("cpu,k\\,e\\=y=v v=1");
    assert_eq!(tags(&p), owned(&[("k,e=y", "v")]));
    // literal backslashes and quotes are kept
    let p = one("cpu,k=a\\b,q=\"x\\\"y\" v=1");
    assert_eq!(tags(&p), owned(&[("k", "a\\b"), ("q", "\"x\\\"y\"")]));
}

#[test]
fn field_key_escapes() {
    let p = one("cpu f\\ 1\\,x\\=y=1");
    assert_eq!(p.fields[0].0, "f 1,x=y");
    assert_eq!(one("cpu f\\\"k=1").fields[0].0, "f\"k");
    assert_eq!(one("cpu f\"k\"=1").fields[0].0, "f\"k\"");
    assert_eq!(one("cpu f\\k=1").fields[0].0, "f\\k");
    assert_eq!(one("cpu a=1,\\ b=2").fields[1].0, " b");
}

#[test]
fn string_field_escapes() {
    assert_eq!(
        field(r#"cpu s="a \"q\" \\ b""#),
        FieldValue::String(r#"a "q" \ b"#.into())
    );
    // other backslashes kept literally
    assert_eq!(
        field(r#"cpu s="a\nb\,c""#),
        FieldValue::String(r"a\nb\,c".into())
    );
    assert_eq!(field(r#"cpu s="""#), FieldValue::String(String::new()));
    assert_eq!(
        field(r#"cpu s="x,y=z w""#),
        FieldValue::String("x,y=z w".into())
    );
    assert_eq!(
        field(r#"cpu s="ends with \\""#),
        FieldValue::String(r"ends with \".into())
    );
    assert_eq!(
        field("cpu s=\"multi\nline\""),
        FieldValue::String("multi\nline".into())
    );
    assert_eq!(
        field("cpu s=\"\u{e9}\u{4e2d}\""),
        FieldValue::String("\u{e9}\u{4e2d}".into())
    );
}

#[test]
fn string_with_newline_keeps_line_numbers() {
    let (p, e) = parse("a v=\"x\ny\"\nbad\nb v=2\n");
    assert_eq!(p.len(), 2);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, 3);
    assert_eq!(e[0].text, "bad");
}

// ---------------------------------------------------------------- numbers

#[test]
fn float_forms() {
    let cases: &[(&str, f64)] = &[
        ("1", 1.0),
        ("1.", 1.0),
        (".5", 0.5),
        ("-.5", -0.5),
        ("-1.5e10", -1.5e10),
        ("1E5", 1e5),
        ("1e+5", 1e5),
        ("1e-5", 1e-5),
        ("1.e5", 1e5),
        ("00.5", 0.5),
        ("-0", 0.0),
        ("0", 0.0),
        ("1e308", 1e308),
        ("1e-400", 0.0),
        (
            "123456789012345678901234567890",
            123456789012345678901234567890.0,
        ),
        ("-1.7976931348623157e308", f64::MIN),
    ];
    for (s, want) in cases {
        assert_eq!(field(&format!("m v={s}")), FieldValue::Float(*want), "{s}");
    }
}

#[test]
fn float_errors() {
    for (s, want) in [
        ("1e400", "invalid float"),
        ("-1e400", "invalid float"),
        ("1e", "invalid float"),
        ("1e+", "invalid float"),
        ("-e5", "invalid float"),
        (".e5", "invalid float"),
        ("1e5e5", "invalid float"),
        ("1e5.5", "invalid float"),
        (".", "invalid number"),
        ("-", "invalid number"),
        ("-.", "invalid number"),
        ("1.1.1", "invalid number"),
        ("1..", "invalid number"),
        ("NaN", "invalid number"),
        ("nan", "invalid number"),
        ("-NaN", "invalid number"),
        ("-Inf", "invalid number"),
        ("-inf", "invalid number"),
        ("1a", "invalid number"),
        ("0x10", "invalid number"),
        ("1+5", "invalid number"),
        ("1e+-5", "invalid number"),
        ("1\"", "invalid number"),
        ("Inf", "invalid boolean"),
        ("inf", "invalid boolean"),
        ("+1", "invalid boolean"),
        ("e5", "invalid boolean"),
    ] {
        assert_eq!(err(&format!("m v={s}")), want, "{s}");
    }
    let huge = "9".repeat(400);
    assert_eq!(err(&format!("m v={huge}")), "invalid float");
    assert_eq!(err(&format!("m v={huge}.5")), "invalid float");
}

#[test]
fn integers() {
    assert_eq!(field("m v=3i"), FieldValue::Integer(3));
    assert_eq!(field("m v=-3i"), FieldValue::Integer(-3));
    assert_eq!(field("m v=0i"), FieldValue::Integer(0));
    assert_eq!(field("m v=-0i"), FieldValue::Integer(0));
    assert_eq!(
        field("m v=0000000000000000000000042i"),
        FieldValue::Integer(42)
    );
    assert_eq!(
        field("m v=9223372036854775807i"),
        FieldValue::Integer(i64::MAX)
    );
    assert_eq!(
        field("m v=-9223372036854775808i"),
        FieldValue::Integer(i64::MIN)
    );
    assert_eq!(
        err("m v=9223372036854775808i"),
        "unable to parse integer 9223372036854775808: strconv.ParseInt: parsing \"9223372036854775808\": value out of range"
    );
    assert_eq!(
        err("m v=-9223372036854775809i"),
        "unable to parse integer -9223372036854775809: strconv.ParseInt: parsing \"-9223372036854775809\": value out of range"
    );
    for s in [
        "1.5i", "1.i", "1e5i", "-i", "1i5", "1ii", "1iu", "1ui", "1.0u",
    ] {
        assert_eq!(err(&format!("m v={s}")), "invalid number", "{s}");
    }
    assert_eq!(err("m v=i"), "invalid boolean");
}

#[test]
fn unsigned() {
    assert_eq!(field("m v=3u"), FieldValue::Unsigned(3));
    assert_eq!(
        field("m v=18446744073709551615u"),
        FieldValue::Unsigned(u64::MAX)
    );
    assert_eq!(
        err("m v=18446744073709551616u"),
        "unable to parse unsigned 18446744073709551616: strconv.ParseUint: parsing \"18446744073709551616\": value out of range"
    );
    assert_eq!(err("m v=-1u"), "invalid number");
    assert_eq!(err("m v=-u"), "invalid number");
    assert_eq!(err("m v=u"), "invalid boolean");
    // InfluxDB 1.6 ships with unsigned support disabled.
    let v16 = ParseOptions::influxdb_v16(Precision::Nanoseconds);
    assert_eq!(err_with(b"m v=3u", &v16), "invalid number");
}

#[test]
fn booleans() {
    for s in ["t", "T", "true", "True", "TRUE"] {
        assert_eq!(field(&format!("m v={s}")), FieldValue::Boolean(true), "{s}");
    }
    for s in ["f", "F", "false", "False", "FALSE"] {
        assert_eq!(
            field(&format!("m v={s}")),
            FieldValue::Boolean(false),
            "{s}"
        );
    }
    for s in [
        "tru", "truee", "tRUE", "TrUe", "fals", "FaLsE", "yes", "x", "abc", "t1",
    ] {
        assert_eq!(err(&format!("m v={s}")), "invalid boolean", "{s}");
    }
}

// ---------------------------------------------------------------- timestamps

#[test]
fn timestamps() {
    assert_eq!(one("m v=1 0").timestamp, Some(0));
    assert_eq!(one("m v=1 -1").timestamp, Some(-1));
    assert_eq!(one("m v=1 123   ").timestamp, Some(123));
    assert_eq!(one("m v=1    123").timestamp, Some(123));
    assert_eq!(one("m v=1 \t123").timestamp, Some(123));
    assert_eq!(one("m v=1 \t ").timestamp, None);
    assert_eq!(one("m v=1 -9223372036854775806").timestamp, Some(MIN_NANOS));
    assert_eq!(one("m v=1 9223372036854775806").timestamp, Some(MAX_NANOS));
}

#[test]
fn timestamp_errors() {
    assert_eq!(err("m v=1 12a"), "bad timestamp");
    assert_eq!(err("m v=1 1.5"), "bad timestamp");
    assert_eq!(err("m v=1 1-2"), "bad timestamp");
    assert_eq!(err("m v=1 --1"), "bad timestamp");
    assert_eq!(err("m v=1 123\t"), "bad timestamp");
    assert_eq!(err("m v=1 123 x"), "point is invalid");
    assert_eq!(err("m v=1 123 456"), "point is invalid");
    assert_eq!(
        err("m v=1 -"),
        "strconv.ParseInt: parsing \"-\": invalid syntax"
    );
    assert_eq!(
        err("m v=1 99999999999999999999"),
        "strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
    );
    assert_eq!(err("m v=1 9223372036854775807"), ERR_TIME_OUT_OF_RANGE);
    assert_eq!(err("m v=1 -9223372036854775808"), ERR_TIME_OUT_OF_RANGE);
    assert_eq!(err("m v=1 -9223372036854775807"), ERR_TIME_OUT_OF_RANGE);
    assert_eq!(
        ERR_TIME_OUT_OF_RANGE,
        format!("time outside range {} - {}", MIN_NANOS, MAX_NANOS)
    );
}

#[test]
fn a_line_with_more_fields_than_the_limit_is_refused_naming_it() {
    let opts = ParseOptions {
        max_fields: 3,
        ..Default::default()
    };
    let (p, e) = parse_body_with(b"m a=1,b=2,c=3\nm a=1,b=2,c=3,d=4\n", &opts);
    assert_eq!(p.len(), 1);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, 2);
    assert_eq!(e[0].reason, "too many fields: 4 > max_fields_per_point (3)");
    let wide = format!(
        "m {}",
        (0..100)
            .map(|i| format!("f{i}=1"))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(parse_body(wide.as_bytes()).0[0].fields.len(), 100);
}

#[test]
fn timestamp_range_depends_on_precision() {
    let s = ParseOptions {
        precision: Precision::Seconds,
        ..Default::default()
    };
    let (p, e) = parse_body_with(b"m v=1 9223372036", &s);
    assert!(e.is_empty());
    assert_eq!(p[0].timestamp, Some(9223372036)); // unscaled
    assert_eq!(err_with(b"m v=1 9223372037", &s), ERR_TIME_OUT_OF_RANGE);
    let h = ParseOptions {
        precision: Precision::Hours,
        ..Default::default()
    };
    assert_eq!(err_with(b"m v=1 2562048", &h), ERR_TIME_OUT_OF_RANGE);
    assert!(parse_body_with(b"m v=1 2562047", &h).1.is_empty());
}

#[test]
fn precision() {
    use Precision::*;
    for (s, p) in [
        ("", Nanoseconds),
        ("n", Nanoseconds),
        ("ns", Nanoseconds),
        ("u", Microseconds),
        ("us", Microseconds),
        ("\u{b5}", Microseconds),
        ("\u{3bc}", Microseconds),
        ("ms", Milliseconds),
        ("s", Seconds),
        ("m", Minutes),
        ("h", Hours),
    ] {
        assert_eq!(Precision::parse_v1(s), Some(p), "{s}");
    }
    for s in ["x", "S", "MS", "sec", "d", " n"] {
        assert_eq!(Precision::parse_v1(s), None, "{s}");
    }
    for (s, p) in [
        ("", Nanoseconds),
        ("ns", Nanoseconds),
        ("us", Microseconds),
        ("ms", Milliseconds),
        ("s", Seconds),
    ] {
        assert_eq!(Precision::parse_v2(s), Some(p), "{s}");
    }
    for s in ["n", "u", "m", "h", "x"] {
        assert_eq!(Precision::parse_v2(s), None, "{s}");
    }
    assert_eq!(Hours.to_nanos(2), Some(7_200_000_000_000));
    assert_eq!(Minutes.to_nanos(-1), Some(-60_000_000_000));
    assert_eq!(Milliseconds.to_nanos(1), Some(1_000_000));
    assert_eq!(Microseconds.to_nanos(1), Some(1_000));
    assert_eq!(Nanoseconds.to_nanos(i64::MAX), Some(i64::MAX));
    assert_eq!(Nanoseconds.to_nanos_in_range(i64::MAX), None);
    assert_eq!(Seconds.to_nanos(i64::MAX / 1000), None);
    assert_eq!(Hours.to_nanos(i64::MIN), None);
    assert_eq!(
        Precision::invalid_v1_message("x"),
        "invalid precision \"x\" (use n, u, ms, s, m or h)"
    );
    assert_eq!(
        Precision::invalid_v2_message("n"),
        "invalid precision \"n\" (use ns, us, ms or s)"
    );
}

// ---------------------------------------------------------------- lines

#[test]
fn line_handling() {
    let body = "\n\n# comment\n   # indented comment\n \t \ncpu v=1\r\n  \tcpu v=2\n\ncpu v=3";
    let (p, e) = parse(body);
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(p.len(), 3);
    assert_eq!(p[1].fields[0].1, FieldValue::Float(2.0));
    assert_eq!(parse("").0.len(), 0);
    assert_eq!(parse("\r\n\r\n").1.len(), 0);
    assert_eq!(one("cpu v=1 123\r\n").timestamp, Some(123));
    assert_eq!(
        one("cpu v=\"a\"\r").fields[0].1,
        FieldValue::String("a".into())
    );
    // leading NUL bytes are whitespace too
    assert_eq!(parse_body(b"\0\0cpu v=1").0.len(), 1);
}

#[test]
fn crlf_strict_v16() {
    let v16 = ParseOptions::influxdb_v16(Precision::Nanoseconds);
    assert_eq!(err_with(b"cpu v=1\r\n", &v16), "invalid number");
    assert_eq!(err_with(b"cpu v=1 1\r\n", &v16), "bad timestamp");
    let (_, e) = parse_body_with(b"cpu v=1\r\n", &v16);
    assert_eq!(
        e[0].influx_message(),
        "unable to parse 'cpu v=1\r': invalid number"
    );
}

#[test]
fn partial_write_and_messages() {
    let body = "cpu v=1\n  bad line\ncpu v=2\ncpu\n";
    let (p, e) = parse(body);
    assert_eq!(p.len(), 2);
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].line, 2);
    assert_eq!(e[0].text, "bad line");
    assert_eq!(e[0].reason, "invalid field format");
    assert_eq!(
        e[0].influx_message(),
        "unable to parse 'bad line': invalid field format"
    );
    assert_eq!(e[0].to_string(), e[0].influx_message());
    assert_eq!(e[1].line, 4);
    assert_eq!(
        e[1].influx_message(),
        "unable to parse 'cpu': missing fields"
    );
    assert_eq!(
        influx_batch_message(&e),
        "unable to parse 'bad line': invalid field format\nunable to parse 'cpu': missing fields"
    );
}

#[test]
fn escaped_newline_joins_lines() {
    // A backslash before a newline escapes it (InfluxDB's scanLine).
    let (p, e) = parse("a\\\nb v=1\nc v=2");
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(p[0].measurement, "a\\\nb");
    assert_eq!(p.len(), 2);
}

// ---------------------------------------------------------------- errors

#[test]
fn key_errors() {
    assert_eq!(err("cpu"), "missing fields");
    assert_eq!(err("cpu,host=a"), "missing fields");
    assert_eq!(err("cpu,host=a\\ "), "missing fields");
    assert_eq!(err(",cpu v=1"), "missing measurement");
    assert_eq!(err("cpu,"), "missing tag key");
    assert_eq!(err("cpu,=a v=1"), "missing tag key");
    assert_eq!(err("cpu, v=1"), "missing tag key");
    assert_eq!(err("cpu,a=1,,b=2 v=1"), "missing tag key");
    assert_eq!(err("cpu,host v=1"), "missing tag value");
    assert_eq!(err("cpu,host,a=b v=1"), "missing tag value");
    assert_eq!(err("cpu,host= v=1"), "missing tag value");
    assert_eq!(err("cpu,host=,x=1 v=1"), "missing tag value");
    assert_eq!(err("cpu,host"), "missing tag value");
    assert_eq!(err("cpu,host=a=b v=1"), "invalid tag format");
    assert_eq!(err("cpu,a=1,a=2 v=1"), "duplicate tags");
    assert_eq!(err("cpu,b=1,a=1,b=2 v=1"), "duplicate tags");
    assert_eq!(err("cpu,a\\ b=1,a\\ b=2 v=1"), "duplicate tags");
}

#[test]
fn field_errors() {
    assert_eq!(err("cpu "), "invalid field format");
    assert_eq!(err("cpu v"), "invalid field format");
    assert_eq!(err("cpu v=1,w"), "invalid field format");
    assert_eq!(err("cpu v=1,"), "invalid field format");
    assert_eq!(err("cpu,t=1 v"), "invalid field format");
    assert_eq!(err("cpu =1"), "missing field key");
    assert_eq!(err("cpu v=1,=2"), "missing field key");
    assert_eq!(err("cpu v="), "missing field value");
    assert_eq!(err("cpu v=,w=1"), "missing field value");
    assert_eq!(err("cpu v= 1"), "missing field value");
    assert_eq!(err("cpu v=\"abc"), "unbalanced quotes");
    assert_eq!(err("cpu v=\"abc\\\""), "unbalanced quotes");
    // a key ending in a backslash swallows its '=' in InfluxDB's field walk
    assert_eq!(err("cpu a\\\\=1"), "invalid value: field-key=a\\\\=1");
    // junk after a closing quote leaves a field without '='
    assert_eq!(err("cpu a=\"x\"=1,b"), "invalid value: field-key=b");
}

#[test]
fn duplicate_fields_last_wins() {
    let p = one("cpu a=1,b=2i,a=3");
    assert_eq!(
        p.fields,
        vec![
            (Cow::from("b"), FieldValue::Integer(2)),
            (Cow::from("a"), FieldValue::Float(3.0))
        ]
    );
    // many fields take the sort-based path
    let line = format!(
        "cpu {},k0=\"last\"",
        (0..40)
            .map(|i| format!("k{i}={i}i"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let p = one(&line);
    assert_eq!(p.fields.len(), 40);
    assert_eq!(
        p.fields.last().unwrap(),
        &(Cow::from("k0"), FieldValue::String("last".into()))
    );
}

#[test]
fn max_key_length() {
    let m = "m".repeat(65536);
    assert_eq!(
        err(&format!("{m} v=1")),
        "max key length exceeded: 65536 > 65535"
    );
    assert!(parse(&format!("{} v=1", "m".repeat(65535 - 5)))
        .1
        .is_empty());
    // key (65000) + 4 + field key (600)
    let m = "m".repeat(65000);
    let f = "f".repeat(600);
    assert_eq!(
        err(&format!("{m} {f}=1")),
        "max key length exceeded: 65604 > 65535"
    );
}

#[test]
fn invalid_utf8() {
    assert_eq!(
        err_with(b"c\xffu v=1", &ParseOptions::default()),
        "invalid UTF-8 in measurement"
    );
    assert_eq!(
        err_with(b"c,t=\xff v=1", &ParseOptions::default()),
        "invalid UTF-8 in tag value"
    );
    assert_eq!(
        err_with(b"c,\xfe=1 v=1", &ParseOptions::default()),
        "invalid UTF-8 in tag key"
    );
    assert_eq!(
        err_with(b"c \xff=1", &ParseOptions::default()),
        "invalid UTF-8 in field key"
    );
    assert_eq!(
        err_with(b"c v=\"\xc3\"", &ParseOptions::default()),
        "invalid UTF-8 in string field"
    );
    // InfluxDB's own errors win over ours
    assert_eq!(
        err_with(b"c\xff v=1 x", &ParseOptions::default()),
        "bad timestamp"
    );
    let (_, e) = parse_body(b"c\xff");
    assert_eq!(e[0].text, "c\u{fffd}");
    let p = one("cp\u{fc},h\u{f4}st=\u{e9} f\u{e9}=\"\u{df}\"");
    assert_eq!(p.measurement, "cp\u{fc}");
    assert_eq!(tags(&p), owned(&[("h\u{f4}st", "\u{e9}")]));
}

// ---------------------------------------------------------------- series key

#[test]
fn series_keys() {
    let t = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        series_key("cpu", &t(&[("host", "a"), ("region", "x")])),
        "cpu,host=a,region=x"
    );
    assert_eq!(
        series_key("cpu", &t(&[("region", "x"), ("host", "a")])),
        "cpu,host=a,region=x"
    );
    assert_eq!(series_key::<&str, &str>("cpu", &[]), "cpu");
    assert_eq!(
        series_key("c pu,x=y", &t(&[("a b", "c=d,e f")])),
        "c\\ pu\\,x=y,a\\ b=c\\=d\\,e\\ f"
    );
    assert_eq!(series_key("cpu", &t(&[("a", ""), ("b", "1")])), "cpu,b=1");
    let p = one("c\\ pu,z=1,a\\,b=x\\ y v=1");
    assert_eq!(
        series_key(&p.measurement, &p.tags()),
        "c\\ pu,a\\,b=x\\ y,z=1"
    );
}

#[test]
fn a_tag_value_starting_with_equals_is_escaped_in_the_series_key() {
    for (line, key) in [
        ("m,c== f=1", "m,c=\\="),
        ("m,d=x,c== f=1", "m,c=\\=,d=x"),
        ("m,b=y,a=x f=1", "m,a=x,b=y"),
    ] {
        let (points, errors) = parse_body(line.as_bytes());
        assert!(errors.is_empty(), "{line}: {errors:?}");
        assert_eq!(points[0].key, key, "{line}");
    }
}

#[test]
fn render_point() {
    let p = one("c\\ pu,t=a\\=b f\\,k=\"q\\\"\\\\\",i=-1i,u=2u,b=true,x=1.5 -5");
    assert_eq!(
        p.to_line_protocol(),
        "c\\ pu,t=a\\=b f\\,k=\"q\\\"\\\\\",i=-1i,u=2u,b=true,x=1.5 -5"
    );
    assert_eq!(one(&p.to_line_protocol()), p);
}

#[test]
fn fuzz_entry_smoke() {
    for s in [
        &b""[..],
        b"\xff",
        b"a",
        b"a b",
        b"a\\",
        b"\\",
        b"a b=\"",
        b"a,b=c d=1 -",
        b"\"\n\"\\",
    ] {
        fuzz_parse(s);
    }
}

#[test]
fn corpus_files_do_not_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    if let Ok(rd) = std::fs::read_dir(dir) {
        for f in rd.flatten() {
            fuzz_parse(&std::fs::read(f.path()).unwrap());
        }
    }
}

// ---------------------------------------------------------------- proptests

fn name() -> impl Strategy<Value = String> {
    // Everything except what line protocol cannot express in names
    // (backslash adjacent to specials, newlines, leading '#'/whitespace).
    "[a-zA-Z0-9_ ,=\"\u{e9}\u{4e2d}.:-]{1,8}".prop_filter("no leading #", |s| !s.starts_with('#'))
}

fn value() -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(FieldValue::Float),
        (-1e6f64..1e6).prop_map(FieldValue::Float),
        any::<i64>().prop_map(FieldValue::Integer),
        any::<u64>().prop_map(FieldValue::Unsigned),
        any::<bool>().prop_map(FieldValue::Boolean),
        "[a-z \\\\\"\n\r\t,=\u{e9}]{0,10}".prop_map(FieldValue::String),
        any::<String>().prop_map(FieldValue::String),
    ]
}

fn point() -> impl Strategy<Value = Point<'static>> {
    (
        name(),
        proptest::collection::btree_map(name(), name(), 0..4),
        proptest::collection::vec((name(), value()), 1..6),
        proptest::option::of(MIN_NANOS..=MAX_NANOS),
    )
        .prop_map(|(measurement, tags, fields, timestamp)| {
            let mut seen = std::collections::HashSet::new();
            let fields: Vec<(String, FieldValue)> = fields
                .into_iter()
                .filter(|(k, _)| seen.insert(k.clone()))
                .collect();
            let tags: Vec<(Cow<'static, str>, Cow<'static, str>)> = tags
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect();
            let fields = fields.into_iter().map(|(k, v)| (k.into(), v)).collect();
            Point::new(measurement.into(), &tags, fields, timestamp)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_bytes(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        fuzz_parse(&data);
    }

    #[test]
    fn never_panics_on_lp_alphabet(data in proptest::collection::vec(
        proptest::sample::select(b"cpu,=\\ \"\n\r\t#0123456789.-+eEiuNnaTtFfx\xff\0".to_vec()), 0..200)) {
        fuzz_parse(&data);
    }

    #[test]
    fn round_trip(points in proptest::collection::vec(point(), 1..4)) {
        let mut body = String::new();
        for p in &points {
            write_point(&mut body, p);
            body.push('\n');
        }
        let (parsed, errors) = parse_body(body.as_bytes());
        prop_assert!(errors.is_empty(), "{:?}\n{:?}", errors, body);
        prop_assert_eq!(&parsed, &points, "{:?}", body);
        let crlf = body.replace("\n", "\r\n");
        // CRLF only changes line ends outside string values; compare when
        // no string value contains a newline.
        if !points.iter().any(|p| p.fields.iter().any(|(_, v)| matches!(v, FieldValue::String(s) if s.contains('\n')))) {
            let (parsed, errors) = parse_body(crlf.as_bytes());
            prop_assert!(errors.is_empty(), "{:?}", errors);
            prop_assert_eq!(&parsed, &points);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// The SWAR fast path + resumed state machine equals InfluxDB's scanLine
    /// run from the line start.
    #[test]
    fn scan_line_fast_path_matches_reference(
        data in proptest::collection::vec(
            proptest::sample::select(b"ab =,\"\\\n\r1".to_vec()), 0..64),
        start in 0usize..64,
    ) {
        let start = start.min(data.len());
        prop_assert_eq!(
            super::parser::scan_line(&data, start),
            super::parser::scan_line_slow(&data, start, false, 0, 0)
        );
    }
}

fn lp_ish() -> impl Strategy<Value = Vec<u8>> {
    // Line-protocol-shaped fragments glued together: exercises the
    // optimistic line path against the exact splitter.
    let frag = proptest::sample::select(vec![
        &b"cpu"[..],
        b"m",
        b",",
        b"t=v",
        b" ",
        b"  ",
        b"f=1",
        b"g=2i",
        b"=",
        b"\"",
        b"s=\"a b\"",
        b"\\",
        b"\\ ",
        b"\\,",
        b"\\\"",
        b"\n",
        b"\r\n",
        b"#",
        b"\t",
        b"123",
        b"-5",
        b"x",
        b"true",
        b"1e5",
        b"\xff",
        b"u",
        b"\0",
    ]);
    proptest::collection::vec(frag, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn fast_path_matches_reference(data in lp_ish(), strip in any::<bool>(), uns in any::<bool>()) {
        let opts = ParseOptions { precision: Precision::Nanoseconds, allow_unsigned: uns, strip_cr: strip, ..ParseOptions::default() };
        prop_assert_eq!(
            parse_body_with(&data, &opts),
            super::parser::parse_body_reference(&data, &opts)
        );
    }

    #[test]
    fn fast_path_matches_reference_bytes(data in proptest::collection::vec(
        proptest::sample::select(b"cm,=\\ \"\n\r\t#019.-eiutf".to_vec()), 0..120)) {
        let opts = ParseOptions::default();
        prop_assert_eq!(parse_body_with(&data, &opts), super::parser::parse_body_reference(&data, &opts));
    }
}

#[test]
fn adversarial_inputs_parse_as_the_reference_walk_does() {
    let n = 200_000;
    let inputs: Vec<Vec<u8>> = vec![
        vec![b'"'; n],
        vec![b'\\'; n],
        vec![b'\n'; n],
        b"a b=\"\n".repeat(n / 6),
        b"a\\\n".repeat(n / 3),
        format!(
            "cpu {} 1",
            (0..20_000)
                .map(|i| format!("k{}=1", i % 7))
                .collect::<Vec<_>>()
                .join(",")
        )
        .into_bytes(),
        format!(
            "cpu,{} v=1",
            (0..5_000)
                .map(|i| format!("t{i}=x"))
                .collect::<Vec<_>>()
                .join(",")
        )
        .into_bytes(),
        format!(
            "cpu,{} v=1",
            (0..5_000)
                .rev()
                .map(|i| format!("t{i}=x"))
                .collect::<Vec<_>>()
                .join(",")
        )
        .into_bytes(),
        b"cpu v=1 1\n".repeat(n / 10),
        b"cpu v=\"\\\"\\\\\"".repeat(n / 12),
    ];
    for inp in &inputs {
        fuzz_parse(inp);
    }
    // No clock is read: a quadratic walk over these inputs takes minutes, which CI's time
    // limit catches, where a timed assertion would fail on a busy machine.
    let line = String::from_utf8(inputs[5].clone()).unwrap();
    let p = one(&line);
    assert_eq!(p.fields.len(), 7);
    assert_eq!(
        one(&String::from_utf8(inputs[7].clone()).unwrap())
            .tags()
            .len(),
        5_000
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Valid bodies with one random splice: the fast paths (optimistic line
    /// split, span reuse) must agree with the reference walk.
    #[test]
    fn fast_path_matches_reference_mutated(
        points in proptest::collection::vec(point(), 1..3),
        at in any::<proptest::sample::Index>(),
        frag in proptest::sample::select(vec![
            &b""[..], b"=", b",", b"\"", b"\\", b" ", b"\n", b"=1", b",x", b"\"=", b"\\\\", b"#", b"\r", b"i", b"u", b"e",
        ]),
    ) {
        let mut body = Vec::new();
        for p in &points {
            let mut s = String::new();
            write_point(&mut s, p);
            body.extend_from_slice(s.as_bytes());
            body.push(b'\n');
        }
        let pos = at.index(body.len() + 1);
        body.splice(pos..pos, frag.iter().copied());
        let opts = ParseOptions::default();
        prop_assert_eq!(parse_body_with(&body, &opts), super::parser::parse_body_reference(&body, &opts));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    /// The float fast path agrees bit-for-bit with the full parser.
    #[test]
    fn fast_float_is_exact(int in 0u64..10_000_000_000_000_000, frac_digits in 0usize..17, neg in any::<bool>()) {
        let mut s = int.to_string();
        if frac_digits > 0 && frac_digits < s.len() {
            s.insert(s.len() - frac_digits, '.');
        }
        if neg {
            s.insert(0, '-');
        }
        let want: f64 = s.parse().unwrap();
        prop_assert_eq!(field(&format!("m v={s}")), FieldValue::Float(want));
        if let FieldValue::Float(got) = field(&format!("m v={s}")) {
            prop_assert_eq!(got.to_bits(), want.to_bits(), "{}", s);
        }
    }
}

#[test]
fn leading_space_quirk_matches_influx() {
    // InfluxDB's splitter starts counting at the raw line start: a leading
    // space makes the `=` inside the measurement count, so the second quote
    // opens a string that runs to the end of the body.
    let body = b" t=v \"s=\"a b\"\n";
    let (p, e) = parse_body(body);
    assert!(e.is_empty());
    assert_eq!(
        p[0].fields,
        vec![(Cow::from("\"s"), FieldValue::String("a b\"".into()))]
    );
    assert_eq!(
        parse_body(body),
        super::parser::parse_body_reference(body, &ParseOptions::default())
    );
}

#[test]
fn batch_messages_quote_bounded_excerpts() {
    // A multi-byte character across the cut is left out whole, not split.
    let long = format!("cpu,host={}", "é".repeat(1000));
    let (_, e) = parse(&long);
    let message = influx_batch_message(&e);
    let quoted = message
        .strip_prefix("unable to parse '")
        .and_then(|m| m.strip_suffix("...': missing fields"))
        .expect(&message);
    assert!(quoted.len() <= MAX_QUOTED_LINE_BYTES && quoted.len() > 1000);
    assert!(long.starts_with(quoted));

    let many: String = (0..10_000).map(|i| format!("cpu{i}\n")).collect();
    let (_, e) = parse(&many);
    let message = influx_batch_message(&e);
    assert!(message.len() <= MAX_BATCH_MESSAGE_BYTES + 64);
    assert!(message.starts_with("unable to parse 'cpu0': missing fields\nunable to parse 'cpu1'"));
    let shown = message.lines().count() - 1;
    assert!(message.ends_with(&format!("\n...and {} more lines not shown", 10_000 - shown)));
}
