//! The holes a security probe found (issue 13), each as the user met it: a user without
//! privileges making itself admin through the v2 API, a dropped user's token still
//! working, wrong passwords without limit, retention values that wrap, /metrics open.

mod common;
use common::{basic, query_as, request, Daemon, Response};
use serde_json::{json, Value};
use std::net::SocketAddr;

const AUTH_ON: &str = "auth_enabled = true\n";

fn query(addr: SocketAddr, auth: &str, q: &str) -> Response {
    query_as(addr, auth, "metrics", q)
}

fn v2(addr: SocketAddr, method: &str, path: &str, auth: &str, body: &Value) -> Response {
    let body = match body {
        Value::Null => Vec::new(),
        b => b.to_string().into_bytes(),
    };
    request(
        addr,
        method,
        path,
        &[
            ("Authorization", auth),
            ("Content-Type", "application/json"),
        ],
        &body,
    )
}

fn text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

struct SetUp {
    daemon: Daemon,
    admin: String,
    org: String,
    admin_id: String,
    bucket: String,
    _dir: tempfile::TempDir,
}

/// A node with auth on, set up through /api/v2/setup (operator `owner`, org `acme`,
/// bucket `metrics`), with extra config.
fn set_up(config: &str) -> SetUp {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with_config(dir.path(), &format!("{AUTH_ON}{config}"));
    let r = request(
        daemon.addr,
        "POST",
        "/api/v2/setup",
        &[("Content-Type", "application/json")],
        br#"{"username":"owner","password":"ownerpassword","org":"acme","bucket":"metrics"}"#,
    );
    assert_eq!(r.status, 201, "{}", text(&r));
    let j = r.json();
    SetUp {
        admin: format!("Token {}", j["auth"]["token"].as_str().unwrap()),
        org: j["org"]["id"].as_str().unwrap().to_owned(),
        admin_id: j["user"]["id"].as_str().unwrap().to_owned(),
        bucket: j["bucket"]["id"].as_str().unwrap().to_owned(),
        daemon,
        _dir: dir,
    }
}

fn ok_statement(addr: SocketAddr, auth: &str, q: &str) {
    let r = query(addr, auth, q);
    assert_eq!(r.status, 200, "{q}: {}", text(&r));
    assert!(
        r.json()["results"][0].get("error").is_none(),
        "{q}: {}",
        text(&r)
    );
}

#[test]
fn a_user_without_privileges_cannot_make_itself_admin_through_the_v2_api() {
    let s = set_up("");
    let addr = s.daemon.addr;
    ok_statement(
        addr,
        &s.admin,
        "CREATE USER mallory WITH PASSWORD 'mallorypw'",
    );
    let mallory = basic("mallory", "mallorypw");

    // The probe's request: a token "for the org". It is mallory's own, with mallory's rights.
    let r = v2(
        addr,
        "POST",
        "/api/v2/authorizations",
        &mallory,
        &json!({ "orgID": s.org }),
    );
    assert_eq!(r.status, 201, "{}", text(&r));
    let minted = r.json();
    assert_eq!(minted["user"], "mallory");
    let token = format!("Token {}", minted["token"].as_str().unwrap());
    let r = query(
        addr,
        &token,
        "CREATE USER evil WITH PASSWORD 'x' WITH ALL PRIVILEGES",
    );
    assert_eq!(r.status, 403, "{}", text(&r));
    assert_eq!(query(addr, &token, "SELECT * FROM cpu").status, 403);
    assert_eq!(
        v2(addr, "GET", "/api/v2/backup/kv", &token, &Value::Null).status,
        403
    );

    // Nor a token for the admin, nor one with permissions mallory does not hold.
    let for_admin = json!({ "orgID": s.org, "userID": s.admin_id });
    let r = v2(addr, "POST", "/api/v2/authorizations", &mallory, &for_admin);
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (403, Some("forbidden")),
        "{}",
        text(&r)
    );
    let everything = json!({ "orgID": s.org, "permissions": [
        { "action": "write", "resource": { "type": "users" } },
    ]});
    let r = v2(
        addr,
        "POST",
        "/api/v2/authorizations",
        &mallory,
        &everything,
    );
    assert_eq!(r.status, 403, "{}", text(&r));
    assert_eq!(r.json()["message"], "write:users is unauthorized");

    // The admin's tokens are neither listed to mallory nor revocable by it.
    let listed = v2(
        addr,
        "GET",
        "/api/v2/authorizations",
        &mallory,
        &Value::Null,
    )
    .json();
    let users: Vec<&str> = listed["authorizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["user"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["mallory"]);
    let all = v2(
        addr,
        "GET",
        "/api/v2/authorizations",
        &s.admin,
        &Value::Null,
    )
    .json();
    let admins_token = all["authorizations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["user"] == "owner")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v2/authorizations/{admins_token}");
    assert_eq!(
        v2(addr, "DELETE", &path, &mallory, &Value::Null).status,
        404
    );
    assert_eq!(
        v2(addr, "GET", "/api/v2/buckets", &s.admin, &Value::Null).status,
        200,
        "the admin's token still works"
    );

    // No organizations or buckets made or removed, and nothing listed to it.
    let r = v2(
        addr,
        "POST",
        "/api/v2/orgs",
        &mallory,
        &json!({ "name": "mine" }),
    );
    assert_eq!((r.status, text(&r).contains("write:orgs")), (403, true));
    let bucket = json!({ "orgID": s.org, "name": "mine" });
    assert_eq!(
        v2(addr, "POST", "/api/v2/buckets", &mallory, &bucket).status,
        403
    );
    let path = format!("/api/v2/buckets/{}", s.bucket);
    assert_eq!(
        v2(addr, "DELETE", &path, &mallory, &Value::Null).status,
        404
    );
    let buckets = v2(addr, "GET", "/api/v2/buckets", &mallory, &Value::Null).json();
    assert_eq!(buckets["buckets"], json!([]));
    let orgs = v2(addr, "GET", "/api/v2/orgs", &mallory, &Value::Null).json();
    assert_eq!(orgs["orgs"], json!([]));

    // A READ grant on the bucket's database shows the bucket and its org, and lets
    // mallory make a read token for it, but neither write nor delete it.
    ok_statement(addr, &s.admin, "GRANT READ ON metrics TO mallory");
    let buckets = v2(addr, "GET", "/api/v2/buckets", &mallory, &Value::Null).json();
    assert_eq!(buckets["buckets"][0]["id"], s.bucket.as_str());
    let orgs = v2(addr, "GET", "/api/v2/orgs", &mallory, &Value::Null).json();
    assert_eq!(orgs["orgs"][0]["id"], s.org.as_str());
    assert_eq!(
        v2(addr, "DELETE", &path, &mallory, &Value::Null).status,
        403
    );
    let read_only = json!({ "orgID": s.org, "permissions": [
        { "action": "read", "resource": { "type": "buckets", "orgID": s.org, "id": s.bucket } },
    ]});
    let r = v2(addr, "POST", "/api/v2/authorizations", &mallory, &read_only);
    assert_eq!(r.status, 201, "{}", text(&r));
    assert_eq!(r.json()["permissions"], read_only["permissions"]);
    let read_token = format!("Token {}", r.json()["token"].as_str().unwrap());
    assert_eq!(query(addr, &read_token, "SELECT * FROM cpu").status, 200);
    ok_statement(addr, &s.admin, "GRANT ALL ON metrics TO mallory");
    let r = request(
        addr,
        "POST",
        "/write?db=metrics",
        &[("Authorization", &read_token)],
        b"cpu v=1",
    );
    assert_eq!(r.status, 403, "a read token does not write: {}", text(&r));
}

#[test]
fn a_dropped_users_tokens_stop_working_and_a_token_has_its_users_current_rights() {
    let s = set_up("");
    let addr = s.daemon.addr;
    ok_statement(
        addr,
        &s.admin,
        "CREATE USER boss WITH PASSWORD 'bosspw' WITH ALL PRIVILEGES",
    );
    let r = v2(
        addr,
        "POST",
        "/api/v2/authorizations",
        &basic("boss", "bosspw"),
        &json!({ "orgID": s.org }),
    );
    assert_eq!(r.status, 201, "{}", text(&r));
    let token = format!("Token {}", r.json()["token"].as_str().unwrap());
    ok_statement(addr, &token, "SHOW USERS");

    // Losing admin rights takes effect on the token at once.
    ok_statement(addr, &s.admin, "REVOKE ALL PRIVILEGES FROM boss");
    assert_eq!(query(addr, &token, "SHOW USERS").status, 403);
    ok_statement(addr, &s.admin, "GRANT ALL PRIVILEGES TO boss");
    ok_statement(addr, &token, "SHOW USERS");

    ok_statement(addr, &s.admin, "DROP USER boss");
    for q in [
        "SHOW USERS",
        "CREATE USER evil WITH PASSWORD 'x' WITH ALL PRIVILEGES",
    ] {
        let r = query(addr, &token, q);
        assert_eq!(r.status, 401, "{q}: {}", text(&r));
    }
    assert_eq!(
        v2(addr, "GET", "/api/v2/buckets", &token, &Value::Null).status,
        401
    );
    let listed = v2(
        addr,
        "GET",
        "/api/v2/authorizations",
        &s.admin,
        &Value::Null,
    )
    .json();
    assert!(
        !listed.to_string().contains("boss"),
        "the dropped user's tokens are gone: {listed}"
    );

    // A user of the same name made again is someone else: the old token stays dead.
    ok_statement(
        addr,
        &s.admin,
        "CREATE USER boss WITH PASSWORD 'bosspw' WITH ALL PRIVILEGES",
    );
    assert_eq!(query(addr, &token, "SHOW USERS").status, 401);
}

#[test]
fn wrong_passwords_past_the_limit_get_429_with_retry_after_and_a_new_password_ends_remembered_ones()
{
    let s = set_up("auth_failure_limit = 3\nauth_failure_window_seconds = 600\n");
    let addr = s.daemon.addr;
    ok_statement(addr, &s.admin, "CREATE USER ann WITH PASSWORD 'annpw'");
    ok_statement(addr, &s.admin, "CREATE USER bob WITH PASSWORD 'bobpw'");
    // ann's success is remembered before the attack begins.
    ok_statement(addr, &basic("ann", "annpw"), "SHOW DATABASES");

    let wrong = basic("ann", "guess");
    for _ in 0..3 {
        let r = query(addr, &wrong, "SHOW DATABASES");
        assert_eq!(r.status, 401, "{}", text(&r));
    }
    let r = query(addr, &wrong, "SHOW DATABASES");
    assert_eq!(r.status, 429, "{}", text(&r));
    let retry: u64 = r.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry), "Retry-After {retry}");
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .starts_with("too many failed authentication attempts"));
    let r = v2(addr, "GET", "/api/v2/buckets", &wrong, &Value::Null);
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (429, Some("too many requests"))
    );
    // The client address is over the limit too: a password never checked before waits.
    assert_eq!(
        query(addr, &basic("bob", "bobpw"), "SHOW DATABASES").status,
        429
    );
    // ann herself still gets in with her remembered password; tokens are not limited.
    ok_statement(addr, &basic("ann", "annpw"), "SHOW DATABASES");
    ok_statement(addr, &s.admin, "SHOW USERS");

    // A new password ends the remembered success of the old one at once.
    ok_statement(addr, &s.admin, "SET PASSWORD FOR ann = 'newpw'");
    let r = query(addr, &basic("ann", "annpw"), "SHOW DATABASES");
    assert_ne!(r.status, 200, "{}", text(&r));
}

#[test]
fn bucket_and_setup_retention_values_that_overflow_or_are_negative_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with_config(dir.path(), AUTH_ON);
    let json_header = [("Content-Type", "application/json")];
    for (body, message) in [
        (
            json!({"username":"o","password":"ownerpassword","org":"a","bucket":"b","retentionPeriodHrs": 9_000_000_000_000_000i64}),
            "retentionPeriodHrs 9000000000000000 is too large: at most 2562047 (about 292 years)",
        ),
        (
            json!({"username":"o","password":"ownerpassword","org":"a","bucket":"b","retentionPeriodSeconds": -1}),
            "retentionPeriodSeconds must not be negative, got -1",
        ),
    ] {
        let r = request(
            d.addr,
            "POST",
            "/api/v2/setup",
            &json_header,
            body.to_string().as_bytes(),
        );
        assert_eq!(
            (r.status, r.json()),
            (400, json!({ "code": "invalid", "message": message }))
        );
    }
    assert_eq!(
        request(d.addr, "GET", "/api/v2/setup", &[], b"").json()["allowed"],
        true,
        "nothing was half set up"
    );
    drop(d);

    let s = set_up("");
    let addr = s.daemon.addr;
    for (every, message) in [
        (
            json!(18_446_747_674i64),
            "everySeconds 18446747674 is too large: at most 9223372036 (about 292 years)",
        ),
        (
            json!(i64::MAX),
            "everySeconds 9223372036854775807 is too large: at most 9223372036 (about 292 years)",
        ),
        (json!(-3600), "everySeconds must not be negative, got -3600"),
    ] {
        let body = json!({ "orgID": s.org, "name": "wrapped",
            "retentionRules": [{ "type": "expire", "everySeconds": every }] });
        let r = v2(addr, "POST", "/api/v2/buckets", &s.admin, &body);
        assert_eq!(
            (r.status, r.json()),
            (400, json!({ "code": "invalid", "message": message }))
        );
    }
    let names = v2(addr, "GET", "/api/v2/buckets", &s.admin, &Value::Null).json();
    assert_eq!(names["buckets"].as_array().unwrap().len(), 1, "{names}");
    // The largest value that fits is kept as sent.
    let body = json!({ "orgID": s.org, "name": "long",
        "retentionRules": [{ "type": "expire", "everySeconds": 9_223_372_036i64 }] });
    let r = v2(addr, "POST", "/api/v2/buckets", &s.admin, &body);
    assert_eq!(r.status, 201, "{}", text(&r));
    assert_eq!(
        r.json()["retentionRules"][0]["everySeconds"],
        9_223_372_036i64
    );
}

#[test]
fn metrics_need_an_admins_credentials_unless_opened_by_config() {
    let s = set_up("");
    let addr = s.daemon.addr;
    let r = request(addr, "GET", "/metrics", &[], b"");
    assert_eq!(
        (r.status, r.json()),
        (
            401,
            json!({ "code": "unauthorized", "message": "unauthorized access" })
        )
    );
    ok_statement(addr, &s.admin, "CREATE USER ann WITH PASSWORD 'annpw'");
    let r = request(
        addr,
        "GET",
        "/metrics",
        &[("Authorization", &basic("ann", "annpw"))],
        b"",
    );
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (403, Some("forbidden"))
    );
    // Prometheus sends a bearer token.
    let bearer = s.admin.replace("Token ", "Bearer ");
    for auth in [&s.admin, &bearer] {
        let r = request(addr, "GET", "/metrics", &[("Authorization", auth)], b"");
        assert_eq!(r.status, 200, "{}", text(&r));
        assert!(text(&r).contains("shardkeeper_log_segments{log=\"control\"}"));
    }

    let dir = tempfile::tempdir().unwrap();
    let open = Daemon::start_with_config(dir.path(), "auth_enabled = true\nmetrics_auth = false\n");
    let r = request(open.addr, "GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200);
}
