//! Authentication as InfluxDB users meet it: off by default; when on, v1 `u`/`p` and Basic
//! auth, v2 tokens, InfluxDB's 401/403 answers, and secrets never stored in plain text.

mod common;
use common::{basic, request, urlencode, Daemon, Response};
use std::net::SocketAddr;

const AUTH_ON: &str = "auth_enabled = true\n";

fn q(addr: SocketAddr, query: &str, extra: &str, headers: &[(&str, &str)]) -> Response {
    let body = format!("q={}{extra}", urlencode(query));
    let mut h = vec![("Content-Type", "application/x-www-form-urlencoded")];
    h.extend_from_slice(headers);
    request(addr, "POST", "/query", &h, body.as_bytes())
}

#[test]
fn v1_users_passwords_and_privileges() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let d = Daemon::start_with_config(&data, AUTH_ON);

    // No admin yet: everything is refused except creating the first admin.
    let r = request(d.addr, "POST", "/write?db=x", &[], b"m v=1");
    assert_eq!(
        (r.status, r.error().as_str()),
        (
            403,
            "error authorizing query: create admin user first or disable authentication"
        )
    );
    let r = q(
        d.addr,
        "CREATE USER root WITH PASSWORD 'hunter2secret' WITH ALL PRIVILEGES",
        "",
        &[],
    );
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));

    // Now credentials are required, in any of InfluxDB's forms.
    let r = q(d.addr, "SHOW DATABASES", "", &[]);
    r.assert_error(401, "unable to parse authentication credentials");
    assert_eq!(
        r.header("Www-Authenticate"),
        Some("Basic realm=\"InfluxDB\"")
    );
    // `u` and `p` are read from the URL only, as InfluxDB does.
    request(
        d.addr,
        "GET",
        "/query?q=SHOW%20DATABASES&u=root&p=wrong",
        &[],
        b"",
    )
    .assert_error(401, "authorization failed");
    assert_eq!(
        request(
            d.addr,
            "GET",
            "/query?q=CREATE%20DATABASE%20app&u=root&p=hunter2secret",
            &[],
            b""
        )
        .status,
        200
    );
    let auth = basic("root", "hunter2secret");
    assert_eq!(
        q(
            d.addr,
            "CREATE USER bob WITH PASSWORD 'bobpassword'",
            "",
            &[("Authorization", &auth)]
        )
        .status,
        200
    );
    let r = request(
        d.addr,
        "POST",
        "/write?db=app&u=root&p=hunter2secret",
        &[],
        b"m v=1 1000000000",
    );
    assert_eq!(r.status, 204);

    // A user without admin rights needs a grant to write (InfluxDB 1.6.7's answers)...
    let bob = basic("bob", "bobpassword");
    let r = request(
        d.addr,
        "POST",
        "/write?db=app",
        &[("Authorization", &bob)],
        b"m v=2 2000000000",
    );
    assert_eq!(
        (r.status, r.error().as_str()),
        (
            403,
            "\"bob\" user is not authorized to write to database \"app\""
        )
    );
    request(
        d.addr,
        "POST",
        "/write?db=nodb",
        &[("Authorization", &bob)],
        b"m v=2",
    )
    .assert_error(404, "database not found: \"nodb\"");
    q(
        d.addr,
        "SELECT * FROM m",
        "&db=app",
        &[("Authorization", &bob)],
    ).assert_error(403, "error authorizing query: bob not authorized to execute statement 'SELECT * FROM m', requires READ on app");
    let r = q(
        d.addr,
        "GRANT ALL ON app TO bob",
        "",
        &[("Authorization", &auth)],
    );
    assert_eq!(r.status, 200);
    // ...then reads and writes, but cannot change the catalog.
    assert_eq!(
        request(
            d.addr,
            "POST",
            "/write?db=app",
            &[("Authorization", &bob)],
            b"m v=2 2000000000"
        )
        .status,
        204
    );
    let r = q(
        d.addr,
        "SELECT * FROM m",
        "&db=app",
        &[("Authorization", &bob)],
    );
    assert_eq!(
        r.json()["results"][0]["series"][0]["values"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let r = q(d.addr, "DROP DATABASE app", "", &[("Authorization", &bob)]);
    assert_eq!(r.status, 403);
    assert!(
        r.error().ends_with("requires admin privilege"),
        "{}",
        r.error()
    );
    let r = q(d.addr, "SHOW USERS", "", &[("Authorization", &auth)]).json();
    assert_eq!(
        r["results"][0]["series"][0]["values"],
        serde_json::json!([["bob", false], ["root", true]])
    );
    d.stop();

    // Users survive a restart; no password is anywhere on disk in plain text.
    let d = Daemon::start_with_config(&data, AUTH_ON);
    assert_eq!(
        request(
            d.addr,
            "GET",
            "/query?q=SHOW%20DATABASES&u=bob&p=bobpassword",
            &[],
            b""
        )
        .status,
        200
    );
    d.stop();
    for entry in walk(&data) {
        let bytes = std::fs::read(&entry).unwrap();
        for secret in [&b"hunter2secret"[..], b"bobpassword"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "{} holds a password",
                entry.display()
            );
        }
    }
}

/// GRANT, REVOKE, SHOW GRANTS and SET PASSWORD answer as InfluxDB 1.6.7 does (its answers
/// were taken from a real influxd), and survive a restart.
#[test]
fn grants_per_database() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::start_with_config(root.path(), AUTH_ON);
    let r = q(
        d.addr,
        "CREATE USER root WITH PASSWORD 'rootpass' WITH ALL PRIVILEGES",
        "",
        &[],
    );
    assert_eq!(r.status, 200);
    let admin = basic("root", "rootpass");
    let run = |addr: SocketAddr, query: &str| {
        q(addr, query, "", &[("Authorization", &admin)]).json()["results"][0].clone()
    };
    for s in [
        "CREATE DATABASE db1",
        "CREATE DATABASE db2",
        "CREATE USER carl WITH PASSWORD 'carlpass'",
    ] {
        assert_eq!(run(d.addr, s)["error"], serde_json::Value::Null, "{s}");
    }
    let grants = |addr| run(addr, "SHOW GRANTS FOR carl")["series"][0].clone();
    assert_eq!(
        grants(d.addr),
        serde_json::json!({"columns": ["database", "privilege"]})
    );
    assert_eq!(
        run(d.addr, "GRANT READ ON nodb TO carl")["error"],
        "database not found: nodb"
    );
    assert_eq!(
        run(d.addr, "GRANT READ ON db1 TO nobody")["error"],
        "user not found"
    );
    assert_eq!(
        run(d.addr, "SHOW GRANTS FOR nobody")["error"],
        "user not found"
    );
    run(d.addr, "GRANT READ ON db1 TO carl");
    run(d.addr, "GRANT WRITE ON db1 TO carl"); // replaces READ
    run(d.addr, "GRANT ALL ON db2 TO carl");
    run(d.addr, "REVOKE WRITE ON db2 FROM carl"); // leaves READ
    assert_eq!(
        grants(d.addr)["values"],
        serde_json::json!([["db1", "WRITE"], ["db2", "READ"]])
    );
    run(d.addr, "REVOKE READ ON db1 FROM carl"); // not held: unchanged
    run(d.addr, "REVOKE READ ON db2 FROM carl");
    assert_eq!(
        grants(d.addr)["values"],
        serde_json::json!([["db1", "WRITE"], ["db2", "NO PRIVILEGES"]])
    );
    // SHOW DATABASES lists what carl holds a privilege on.
    let carl = basic("carl", "carlpass");
    let r = q(d.addr, "SHOW DATABASES", "", &[("Authorization", &carl)]).json();
    assert_eq!(
        r["results"][0]["series"][0]["values"],
        serde_json::json!([["db1"]])
    );
    q(
        d.addr,
        "SHOW MEASUREMENTS",
        "&db=db1",
        &[("Authorization", &carl)],
    ).assert_error(403, "error authorizing query: carl not authorized to execute statement 'SHOW MEASUREMENTS', requires READ on db1");
    let w = request(
        d.addr,
        "POST",
        "/write?db=db1",
        &[("Authorization", &carl)],
        b"m v=1",
    );
    assert_eq!(w.status, 204);

    // SET PASSWORD replaces the password; GRANT ALL PRIVILEGES makes an admin.
    run(d.addr, "SET PASSWORD FOR carl = 'newpass'");
    q(d.addr, "SHOW DATABASES", "", &[("Authorization", &carl)])
        .assert_error(401, "authorization failed");
    let carl = basic("carl", "newpass");
    assert_eq!(
        q(d.addr, "SHOW DATABASES", "", &[("Authorization", &carl)]).status,
        200
    );
    run(d.addr, "GRANT ALL PRIVILEGES TO carl");
    assert_eq!(
        run(d.addr, "SHOW USERS")["series"][0]["values"],
        serde_json::json!([["carl", true], ["root", true]])
    );
    run(d.addr, "REVOKE ALL PRIVILEGES FROM carl");
    // Dropping a database drops the privileges on it.
    run(d.addr, "DROP DATABASE db2");
    d.stop();

    let d = Daemon::start_with_config(root.path(), AUTH_ON);
    assert_eq!(
        grants(d.addr)["values"],
        serde_json::json!([["db1", "WRITE"]])
    );
    assert_eq!(
        run(d.addr, "SHOW USERS")["series"][0]["values"],
        serde_json::json!([["carl", false], ["root", true]])
    );
    assert_eq!(
        q(d.addr, "SHOW DATABASES", "", &[("Authorization", &carl)]).status,
        200
    );
    d.stop();
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn v2_setup_buckets_and_tokens() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let d = Daemon::start_with_config(&data, AUTH_ON);
    let json = [("Content-Type", "application/json")];

    assert_eq!(
        request(d.addr, "GET", "/api/v2/setup", &[], b"").json()["allowed"],
        true
    );
    let setup = br#"{"username":"owner","password":"ownerpassword","org":"acme","bucket":"metrics","retentionPeriodSeconds":604800}"#;
    let r = request(d.addr, "POST", "/api/v2/setup", &json, setup);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let created = r.json();
    let token = created["auth"]["token"].as_str().unwrap().to_owned();
    let org_id = created["org"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["bucket"]["retentionRules"][0]["everySeconds"],
        604800
    );
    let r = request(d.addr, "POST", "/api/v2/setup", &json, setup);
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (422, Some("conflict"))
    );
    assert_eq!(
        request(d.addr, "GET", "/api/v2/setup", &[], b"").json()["allowed"],
        false
    );

    let bearer = format!("Token {token}");
    let auth = [("Authorization", bearer.as_str())];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let line = format!("cpu,host=a load=0.5 {now}");
    let r = request(
        d.addr,
        "POST",
        "/api/v2/write?org=acme&bucket=metrics&precision=s",
        &auth,
        line.as_bytes(),
    );
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    let r = request(
        d.addr,
        "POST",
        "/api/v2/write?org=acme&bucket=metrics",
        &[("Authorization", "Token nope")],
        b"cpu v=1",
    );
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let r = request(
        d.addr,
        "POST",
        "/api/v2/write?org=acme&bucket=metrics",
        &[],
        b"cpu v=1",
    );
    assert_eq!(r.status, 401);
    // Who is asking is settled before anything else about the request.
    assert_eq!(
        request(d.addr, "POST", "/api/v2/write", &[], b"cpu v=1").status,
        401
    );

    // The bucket is a database and policy for the 1.x API, with the same token.
    let r = q(d.addr, "SELECT * FROM cpu", "&db=metrics", &auth);
    let row = &r.json()["results"][0]["series"][0]["values"][0];
    assert_eq!(
        (&row[1], &row[2]),
        (&serde_json::json!("a"), &serde_json::json!(0.5))
    );
    // A point older than the bucket keeps is dropped, as InfluxDB does.
    let r = request(
        d.addr,
        "POST",
        "/api/v2/write?org=acme&bucket=metrics&precision=s",
        &auth,
        b"cpu,host=a load=1 1704067200",
    );
    assert_eq!(
        (r.status, r.json()["message"].as_str()),
        (
            400,
            Some("partial write: points beyond retention policy dropped=1")
        )
    );

    let body = format!(
        r#"{{"orgID":"{org_id}","name":"logs","retentionRules":[{{"type":"expire","everySeconds":86400}}]}}"#
    );
    let mut h = auth.to_vec();
    h.push(("Content-Type", "application/json"));
    let r = request(d.addr, "POST", "/api/v2/buckets", &h, body.as_bytes());
    assert_eq!(r.status, 201);
    let logs_id = r.json()["id"].as_str().unwrap().to_owned();
    let r = request(d.addr, "POST", "/api/v2/buckets", &h, body.as_bytes());
    assert_eq!(r.status, 422, "a second bucket of the same name is refused");
    let names: Vec<String> = request(d.addr, "GET", "/api/v2/buckets?org=acme", &auth, b"").json()
        ["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"logs".to_owned()) && names.contains(&"metrics".to_owned()));
    assert_eq!(
        request(
            d.addr,
            "DELETE",
            &format!("/api/v2/buckets/{logs_id}"),
            &auth,
            b""
        )
        .status,
        204
    );
    assert_eq!(
        request(
            d.addr,
            "DELETE",
            &format!("/api/v2/buckets/{logs_id}"),
            &auth,
            b""
        )
        .status,
        404
    );

    let r = request(d.addr, "POST", "/api/v2/orgs", &h, br#"{"name":"acme"}"#);
    assert_eq!(r.status, 422);
    let r = request(
        d.addr,
        "POST",
        "/api/v2/authorizations",
        &h,
        format!(r#"{{"orgID":"{org_id}","description":"ci"}}"#).as_bytes(),
    );
    assert_eq!(r.status, 201);
    let second = r.json()["token"].as_str().unwrap().to_owned();
    let listed = request(d.addr, "GET", "/api/v2/authorizations", &auth, b"").json();
    assert_eq!(listed["authorizations"].as_array().unwrap().len(), 2);
    assert!(
        !listed.to_string().contains(&token) && !listed.to_string().contains(&second),
        "tokens are shown only once"
    );
    let third = request(
        d.addr,
        "POST",
        "/api/v2/authorizations",
        &h,
        format!(r#"{{"orgID":"{org_id}"}}"#).as_bytes(),
    )
    .json();
    let third_id = third["id"].as_str().unwrap();
    assert_eq!(
        request(
            d.addr,
            "DELETE",
            &format!("/api/v2/authorizations/{third_id}"),
            &auth,
            b""
        )
        .status,
        204
    );
    assert_eq!(
        request(
            d.addr,
            "DELETE",
            &format!("/api/v2/authorizations/{third_id}"),
            &auth,
            b""
        )
        .status,
        404
    );
    let revoked = format!("Token {}", third["token"].as_str().unwrap());
    let r = request(
        d.addr,
        "GET",
        "/api/v2/buckets",
        &[("Authorization", &revoked)],
        b"",
    );
    assert_eq!(r.status, 401, "a deleted token no longer works");
    d.stop();

    // Tokens survive a restart and are not on disk in plain text.
    let d = Daemon::start_with_config(&data, AUTH_ON);
    let second_auth = format!("Token {second}");
    assert_eq!(
        request(
            d.addr,
            "GET",
            "/api/v2/buckets",
            &[("Authorization", &second_auth)],
            b""
        )
        .status,
        200
    );
    d.stop();
    for entry in walk(&data) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "{} holds a token",
            entry.display()
        );
    }
}
