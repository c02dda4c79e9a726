//! Writes compared with real InfluxDB 1.x: the same requests go to influxd and to
//! shardkeeper; status codes, error bodies and the stored points must be the same.
//! Deliberate differences (documented in the README) are tested against shardkeeper alone.

mod common;
use common::influxd::SideBySide;
use common::{query, request, urlencode, Daemon, Response};
use std::net::SocketAddr;

const DB: &str = "compat";

/// Every case: a write's query string and body. Timestamps are explicit so that stored
/// points can be compared.
const WRITES: &[(&str, &str)] = &[
    ("", "plain value=1 1000000000"),
    ("", "plain,host=a value=2,n=3i,s=\"text\",b=true 2000000000"),
    ("", "esc\\,m\\ x,t\\ k=v\\,1\\=2 f\\ k=\"q\\\"uote\\\\\",i=5i 3000000000"),
    ("", "quotes s=\"a=b,c d\" 3000000000"),
    ("", "bools a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE 4000000000"),
    ("", "floats a=1.,b=.5,c=1e5,d=-0,e=1E-3,f=-1.5e10 5000000000"),
    ("", "ints a=9223372036854775807i,b=-9223372036854775808i 6000000000"),
    ("", "ints a=9223372036854775808i 7000000000"),
    ("", "nan v=NaN 1000000000"),
    ("", "inf v=Inf 1000000000"),
    ("", "missing"),
    ("", "m1 v=1 1000000000\nm1\nm1 v=2 2000000000"),
    ("", "bad1\nbad2"),
    ("", "conflict value=1 1000000000"),
    ("", "conflict value=2i 2000000000"),
    ("", "conflict2 value=1 1000000000\nconflict2 value=\"s\" 2000000000\nconflict2 value=3 3000000000"),
    ("", "tt,time=x v=1 1000000000"),
    ("", "ft time=1,v=2 1000000000"),
    ("", ""),
    ("", "# just a comment\n\n"),
    ("", "# comment\ncomm v=1 1000000000\n"),
    ("", "multi v=1 1000000000\nmulti v=2 1000000000\nmulti v=3 2000000000"),
    ("", "trailing v=1 1000000000 "),
    ("", "unbalanced s=\"abc 1000000000"),
    ("", "badts v=1 12abc"),
    ("", "notag, v=1 1000000000"),
    ("&precision=s", "prec_s v=1 1"),
    ("&precision=ms", "prec_ms v=1 1500"),
    ("&precision=m", "prec_m v=1 2"),
    ("&precision=h", "prec_h v=1 3"),
    ("&precision=n", "prec_n v=1 4"),
];

fn write(addr: SocketAddr, extra: &str, body: &str) -> Response {
    request(
        addr,
        "POST",
        &format!("/write?db={DB}{extra}"),
        &[],
        body.as_bytes(),
    )
}

fn normalized(r: &Response) -> (u16, serde_json::Value) {
    let body = if r.body.is_empty() {
        serde_json::Value::Null
    } else {
        r.json()
    };
    (r.status, body)
}

#[test]
fn writes_answer_and_store_as_influxdb_does() {
    let Some(both) = SideBySide::start() else {
        return;
    };
    let servers = both.servers();
    both.create_database(DB);
    let mut differences = Vec::new();
    for (extra, body) in WRITES {
        let [theirs, mine] = servers.map(|a| normalized(&write(a, extra, body)));
        if theirs != mine {
            differences.push(format!(
                "write {extra:?} {body:?}\n  influxd:     {theirs:?}\n  shardkeeper: {mine:?}"
            ));
        }
    }
    // Unknown and missing databases.
    for path in ["/write?db=nosuchdb", "/write", "/write?db="] {
        let [theirs, mine] =
            servers.map(|a| normalized(&request(a, "POST", path, &[], b"x v=1 1")));
        if theirs != mine {
            differences.push(format!(
                "{path}\n  influxd:     {theirs:?}\n  shardkeeper: {mine:?}"
            ));
        }
    }
    // Stored points, read back per measurement.
    let measurements = query(both.influxd.addr, DB, "SHOW MEASUREMENTS").json();
    let names: Vec<String> = measurements["results"][0]["series"][0]["values"]
        .as_array()
        .expect("influxd stored measurements")
        .iter()
        .map(|v| v[0].as_str().unwrap().to_owned())
        .collect();
    assert!(names.len() > 10, "{names:?}");
    for q in ["SHOW MEASUREMENTS".to_owned()].into_iter().chain(
        names
            .iter()
            .map(|n| format!("SELECT * FROM \"{}\"", n.replace('"', "\\\""))),
    ) {
        let [theirs, mine] = servers.map(|a| normalized(&query(a, DB, &q)));
        if theirs != mine {
            differences.push(format!(
                "{q}\n  influxd:     {}\n  shardkeeper: {}",
                theirs.1, mine.1
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
    both.ours.stop();
}

#[test]
fn gzip_bodies_are_accepted_and_bad_gzip_refused_as_influxdb_does() {
    use std::io::Write;
    let Some(both) = SideBySide::start() else {
        return;
    };
    let servers = both.servers();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"gz v=1 1000000000\ngz v=2 2000000000\n")
        .unwrap();
    let gzipped = gz.finish().unwrap();
    both.create_database(DB);
    let cases: [(&[u8], &str); 2] = [(&gzipped, "ok"), (b"not gzip at all", "bad")];
    for (body, what) in cases {
        let [theirs, mine] = servers.map(|a| {
            normalized(&request(
                a,
                "POST",
                &format!("/write?db={DB}"),
                &[("Content-Encoding", "gzip")],
                body,
            ))
        });
        assert_eq!(theirs, mine, "{what} gzip");
    }
    let [theirs, mine] = servers.map(|a| normalized(&query(a, DB, "SELECT * FROM gz")));
    assert_eq!(theirs, mine);
    both.ours.stop();
}

/// A batch that gives a new field two types: 1.6 answers a partial write in a shard that
/// existed before the request, but refuses the whole batch (`field type conflict`, nothing
/// written) when the request creates the shard. shardkeeper answers the partial write in
/// both cases: whether a shard already existed is no reason to refuse valid points.
#[test]
fn a_new_fields_two_types_in_one_batch_are_a_partial_write_in_a_new_shard_too() {
    let Some(both) = SideBySide::start() else {
        return;
    };
    let [theirs, mine] = both.servers();
    both.create_database(DB);
    let partial = (
        400,
        serde_json::json!({"error": "partial write: field type conflict: input field \"c\" on measurement \"n\" is type string, already exists as type integer dropped=1"}),
    );
    // The request creates the shard (and the next one finds it).
    let batch = "n c=1i 1000000000\nn c=\"x\" 2000000000";
    assert_eq!(
        normalized(&write(theirs, "", batch)),
        (400, serde_json::json!({"error": "field type conflict"}))
    );
    assert_eq!(normalized(&write(mine, "", batch)), partial);
    for a in [theirs, mine] {
        assert_eq!(normalized(&write(a, "", batch)), partial);
    }
    both.ours.stop();
}

/// Where InfluxDB 1.6 has a known bug or limitation, shardkeeper follows later releases.
#[test]
fn deliberate_differences_from_influxdb_1_6() {
    let dir = tempfile::tempdir().unwrap();
    let ours = Daemon::start(dir.path());
    let a = ours.addr;
    query(a, "", &format!("CREATE DATABASE {DB}"));
    // Unsigned integers (1.6's build rejects the `u` suffix).
    assert_eq!(write(a, "", "u v=42u 1000000000").status, 204);
    // CRLF line endings (1.6 keeps the \r and fails the line).
    assert_eq!(
        write(a, "", "crlf v=1 1000000000\r\ncrlf v=2 2000000000\r\n").status,
        204
    );
    // precision=us means microseconds (1.6 silently treats it as nanoseconds).
    assert_eq!(write(a, "&precision=us", "us v=1 5").status, 204);
    let r = query(a, DB, "SELECT * FROM us").json();
    assert_eq!(
        r["results"][0]["series"][0]["values"][0][0],
        "1970-01-01T00:00:00.000005Z"
    );
    // An unknown precision is refused (1.6 silently uses nanoseconds).
    let r = write(a, "&precision=fortnights", "p v=1 1");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("invalid precision"));
    // An unknown retention policy is the client's mistake: 404, not 1.6's 500.
    let r = write(a, "&rp=nosuchrp", "p v=1 1");
    assert_eq!(
        (r.status, r.json()["error"].as_str().unwrap()),
        (404, "retention policy not found: nosuchrp")
    );
    let r = query(a, DB, "SELECT * FROM u").json();
    assert_eq!(r["results"][0]["series"][0]["values"][0][1], 42);
    ours.stop();
}

#[test]
fn bodies_over_the_limit_get_413_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ours = Daemon::start(dir.path());
    query(ours.addr, "", &format!("CREATE DATABASE {DB}"));
    let big = "big v=1 1000000000\n".repeat(1_400_000); // ~26.6 MB > 25 MB default
    let r = write(ours.addr, "", &big);
    assert_eq!(
        (r.status, r.json()["error"].as_str().unwrap()),
        (413, "Request Entity Too Large")
    );
    let r = common::first_result(&query(ours.addr, DB, "SELECT * FROM big"));
    assert!(r["series"].is_null(), "nothing was written: {r}");
    let _ = urlencode;
    ours.stop();
}
