//! Response formats, byte for byte as a real influxd 1.6 gives them: `chunked=true` (a line
//! per `chunk_size` rows of one series, `partial` while more follow) and CSV.

mod common;
use common::influxd::SideBySide;
use common::{request, urlencode};
use std::net::SocketAddr;

const POINTS: &str = "m,h=a v=1 1\nm,h=a v=2 2\nm,h=a v=3 3\nm,h=b v=4 4\nm,h=b v=4.5 5\nn v=5 5\ns,h=x\\ y str=\"a,b\\\"c\",b=true,f=1e21,g=0.000001,i=-3i 7\n";

/// Each line of the body as JSON (a line that is not JSON stays text, so it still compares).
fn lines(addr: SocketAddr, params: &str, q: &str) -> (u16, Vec<serde_json::Value>) {
    let path = format!("/query?db=c&{params}&q={}", urlencode(q));
    let r = request(addr, "GET", &path, &[], b"");
    let text = String::from_utf8_lossy(&r.body).into_owned();
    let values = text
        .split('\n')
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or(serde_json::Value::String(l.into())))
        .collect();
    (r.status, values)
}

/// A real influxd and shardkeeper, each holding `POINTS` in database `c` (None when
/// influxd is not installed).
fn loaded() -> Option<SideBySide> {
    let both = SideBySide::start()?;
    both.create_database("c");
    for addr in both.servers() {
        let w = request(addr, "POST", "/write?db=c", &[], POINTS.as_bytes());
        assert_eq!(w.status, 204);
    }
    Some(both)
}

/// Asks both servers every case (`params`, query) and fails listing each that differs.
fn assert_same<T: PartialEq + std::fmt::Debug>(
    servers: [SocketAddr; 2],
    cases: &[(&str, &str)],
    ask: impl Fn(SocketAddr, &str, &str) -> T,
) {
    let mut differences = Vec::new();
    for (params, q) in cases {
        let [theirs, mine] = servers.map(|a| ask(a, params, q));
        if theirs != mine {
            differences.push(format!(
                "{params} {q}\n  influxd:     {theirs:?}\n  shardkeeper: {mine:?}"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn chunked_answers_are_influxdbs() {
    let Some(both) = loaded() else {
        return;
    };
    let servers = both.servers();
    let cases: &[(&str, &str)] = &[
        ("chunked=true&chunk_size=2", "SELECT * FROM m"),
        ("chunked=true&chunk_size=2", "SELECT * FROM m GROUP BY h"),
        (
            "chunked=true&chunk_size=1",
            "SELECT * FROM m GROUP BY h; SELECT * FROM n",
        ),
        (
            "chunked=true&chunk_size=2",
            "SELECT * FROM nothing; SHOW DATABASES",
        ),
        (
            "chunked=true&chunk_size=2",
            "SELECT mean(v) FROM m GROUP BY h",
        ),
        ("chunked=true", "SELECT * FROM m; SHOW MEASUREMENTS"),
        ("chunked=true&chunk_size=0", "SELECT * FROM m"),
        ("chunked=true&chunk_size=x", "SELECT * FROM m"),
        ("chunked=true&chunk_size=-3", "SELECT * FROM m"),
        ("chunked=true&chunk_size=2&epoch=s", "SELECT * FROM m"),
        ("chunked=true&chunk_size=3&pretty=true", "SELECT * FROM m"),
        ("chunked=false&chunk_size=1", "SELECT * FROM m"),
        ("chunked=1&chunk_size=1", "SELECT * FROM m"),
        ("chunked=true&chunk_size=2", "SELECT * FROM nodb..m"),
        ("chunked=true&chunk_size=2", "SELECT bad syntax FROM"),
    ];
    assert_same(servers, cases, lines);
    // The shape itself, so that the comparison cannot pass on two empty answers.
    let (_, mine) = lines(
        both.ours.addr,
        "chunked=true&chunk_size=2",
        "SELECT * FROM m GROUP BY h",
    );
    assert_eq!(mine.len(), 3);
    assert_eq!(mine[0]["results"][0]["series"][0]["partial"], true);
    assert_eq!(mine[0]["results"][0]["partial"], true);
    assert_eq!(mine[1]["results"][0]["partial"], true);
    assert_eq!(mine[2]["results"][0].get("partial"), None);
}

#[test]
fn csv_answers_are_influxdbs() {
    let Some(both) = loaded() else {
        return;
    };
    let servers = both.servers();
    let cases: &[(&str, &str)] = &[
        ("", "SELECT * FROM m"),
        ("", "SELECT * FROM m GROUP BY h"),
        ("", "SELECT * FROM s"),
        (
            "",
            "SELECT * FROM m; SELECT * FROM nothing; SELECT * FROM n",
        ),
        ("", "SELECT mean(v) FROM m GROUP BY h"),
        ("", "SELECT v FROM m GROUP BY h; SELECT * FROM s GROUP BY h"),
        ("", "SELECT v FROM n GROUP BY h"),
        ("", "SHOW DATABASES"),
        ("", "SHOW TAG KEYS"),
        ("", "SELECT * FROM nodb..m"),
        ("", "SELECT bad"),
        ("epoch=ms", "SELECT * FROM n"),
        ("chunked=true&chunk_size=2", "SELECT * FROM m"),
    ];
    assert_same(servers, cases, |a, params, q| {
        let path = format!("/query?db=c&{params}&q={}", urlencode(q));
        let r = request(a, "GET", &path, &[("Accept", "application/csv")], b"");
        let body = String::from_utf8_lossy(&r.body).into_owned();
        (r.status, r.header("Content-Type").map(str::to_owned), body)
    });
    let r = request(
        both.ours.addr,
        "GET",
        &format!("/query?db=c&q={}", urlencode("SELECT * FROM m GROUP BY h")),
        &[("Accept", "application/csv")],
        b"",
    );
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "name,tags,time,v\nm,h=a,1,1\nm,h=a,2,2\nm,h=a,3,3\nm,h=b,4,4\nm,h=b,5,4.5\n"
    );
}

/// `params=` binds `$name` as InfluxDB 1.6 binds it.
#[test]
fn bound_parameters_are_influxdbs() {
    let Some(both) = loaded() else {
        return;
    };
    let servers = both.servers();
    let cases: &[(&str, &str)] = &[
        (r#"{"h":"a"}"#, "SELECT * FROM m WHERE h = $h"),
        (r#"{"v":2}"#, "SELECT * FROM m WHERE v > $v"),
        (r#"{"v":2.5}"#, "SELECT * FROM m WHERE v > $v"),
        (
            r#"{"m":{"identifier":"m"},"n":2}"#,
            "SELECT * FROM $m LIMIT $n",
        ),
        (r#"{"r":{"regex":"^b"}}"#, "SELECT * FROM m WHERE h =~ $r"),
        (r#"{"x":{"string":"a"}}"#, "SELECT * FROM m WHERE h = $x"),
        (r#"{"x":{"number":3}}"#, "SELECT * FROM m WHERE v >= $x"),
        (r#"{"x":{"integer":3}}"#, "SELECT * FROM m WHERE v >= $x"),
        (
            r#"{"d":{"duration":"2ns"}}"#,
            "SELECT count(v) FROM m WHERE time >= 0 AND time < 6 GROUP BY time($d)",
        ),
        (r#"{}"#, "SELECT * FROM m WHERE h = $h"),
        (r#"{"x":[1]}"#, "SELECT * FROM m WHERE h = $x"),
        (r#"{"x":null}"#, "SELECT * FROM m WHERE h = $x"),
        (r#"{"x":{"bogus":1}}"#, "SELECT * FROM m WHERE h = $x"),
        (r#"{"x":{"identifier":1}}"#, "SELECT * FROM $x"),
        (r#"{"x":{"a":"b","c":"d"}}"#, "SELECT * FROM m WHERE h = $x"),
        (r#"{"x":{"integer":3.5}}"#, "SELECT * FROM m WHERE v > $x"),
        (r#"{"x":1e3}"#, "SELECT * FROM m"),
        (r#"{"x":99999999999999999999}"#, "SELECT * FROM m"),
    ];
    assert_same(servers, cases, |a, params, q| {
        let path = format!(
            "/query?db=c&params={}&q={}",
            urlencode(params),
            urlencode(q)
        );
        let r = request(a, "GET", &path, &[], b"");
        (r.status, r.json())
    });
    let r = request(
        both.ours.addr,
        "GET",
        &format!(
            "/query?db=c&params={}&q={}",
            urlencode(r#"{"h":"b"}"#),
            urlencode("SELECT count(v) FROM m WHERE h = $h")
        ),
        &[],
        b"",
    );
    assert_eq!(r.json()["results"][0]["series"][0]["values"][0][1], 2);
    // The JSON itself: refused as a whole, as InfluxDB does (its decoder's words differ).
    let bad = request(
        both.ours.addr,
        "GET",
        &format!("/query?db=c&params=nope&q={}", urlencode("SELECT * FROM m")),
        &[],
        b"",
    );
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"]
        .as_str()
        .unwrap()
        .starts_with("error parsing query parameters: "));
}

#[test]
fn floats_are_written_with_influxdbs_digits() {
    let Some(both) = SideBySide::start() else {
        return;
    };
    both.create_database("f");
    // Halfway between two shortest decimals (Go rounds them to even), and the edges of
    // plain notation.
    let points = "m v=99594695278597.625 1\nm v=70368744177664.125 2\nm v=70368744177664.375 3\n\
                  m v=-35184372088832.0625 4\nm v=0.000001 5\nm v=1e20 6\nm v=1e21 7\nm v=-0.1 8\n\
                  m v=123456.789 9\nm v=0.30000000000000004 10\n";
    for addr in both.servers() {
        let w = request(addr, "POST", "/write?db=f", &[], points.as_bytes());
        assert_eq!(w.status, 204);
    }
    let path = format!("/query?db=f&q={}", urlencode("SELECT v FROM m"));
    for (accept, tie) in [
        ("application/json", "99594695278597.62]"),
        ("application/csv", ",99594695278597.62\n"),
    ] {
        let [theirs, mine] = both.servers().map(|a| {
            let r = request(a, "GET", &path, &[("Accept", accept)], b"");
            String::from_utf8_lossy(&r.body).into_owned()
        });
        assert_eq!(mine, theirs, "{accept}");
        assert!(theirs.contains(tie), "{theirs}");
    }
}
