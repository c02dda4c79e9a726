//! Who may call what, with authentication on: every route the server registers, and each
//! class of InfluxQL statement, against every kind of caller, in one table. A route
//! without a row fails the test, so a new endpoint cannot ship without deciding who may
//! call it.
//!
//! Requests whose permitted outcome would change the node name throw-away objects (a
//! spare bucket, a spare token) or are malformed, so that the admin's cell shows the
//! endpoint's validation rather than a mutation.

mod common;
use common::{basic, query_as, request, urlencode, Daemon};
use std::collections::HashMap;
use std::net::SocketAddr;

const CONFIG: &str = "auth_enabled = true\n\
                      # The wrong-password column would trip the failure limit (tests/auth_security.rs covers it).\n\
                      auth_failure_limit = 0\n";

/// The callers, in the order of the table's columns. The admin comes last, so that its
/// permitted changes to spare objects happen after every refusal was checked.
const CALLERS: [&str; 8] = [
    "no credentials",
    "wrong password",
    "revoked token",
    "dropped user's token",
    "no-privilege user",
    "READ-only user",
    "WRITE-only user",
    "admin",
];

struct Row {
    /// The route as registered (see `shardkeeper::route_table`).
    method: &'static str,
    route: &'static str,
    /// What is sent: the path with its query (placeholders in braces) and the body.
    path: &'static str,
    body: &'static str,
    /// One status per caller, in the order of [`CALLERS`].
    expect: [u16; 8],
}

const fn row(
    method: &'static str,
    route: &'static str,
    path: &'static str,
    body: &'static str,
    expect: [u16; 8],
) -> Row {
    Row {
        method,
        route,
        path,
        body,
        expect,
    }
}

/// A `POST /query` of one statement on database `metrics` (form-encoded by the runner).
const fn statement(q: &'static str, expect: [u16; 8]) -> Row {
    row("POST", "/query", q, "", expect)
}

const QUERY: &str = "/query";
/// A build without fail points answers 501 (after the same checks of who asks).
const FAILPOINTS_FOR_ADMIN: u16 = if cfg!(feature = "failpoints") {
    200
} else {
    501
};

#[rustfmt::skip]
const TABLE: &[Row] = &[
    //                                                                         none  wrong revok dropd nopriv read  write admin
    row("GET",  "/ping", "/ping", "",                                          [204,  204,  204,  204,  204,  204,  204,  204]),
    row("HEAD", "/ping", "/ping", "",                                          [204,  204,  204,  204,  204,  204,  204,  204]),
    row("GET",  "/health", "/health", "",                                      [200,  200,  200,  200,  200,  200,  200,  200]),
    row("GET",  "/metrics", "/metrics", "",                                    [401,  401,  401,  401,  403,  403,  403,  200]),
    row("GET",  "/debug/failpoints", "/debug/failpoints", "",                  [401,  401,  401,  401,  403,  403,  403,  FAILPOINTS_FOR_ADMIN]),
    row("GET",  "/debug/pprof/profile", "/debug/pprof/profile?seconds=0.05", "", [401,  401,  401,  401,  403,  403,  403,  200]),
    row("GET",  "/debug/pprof/heap", "/debug/pprof/heap", "",                  [401,  401,  401,  401,  403,  403,  403,  200]),
    row("GET",  "/debug/pprof/threads", "/debug/pprof/threads", "",            [401,  401,  401,  401,  403,  403,  403,  200]),
    row("POST", "/write", "/write?db=metrics", "cpu v=1",                      [401,  401,  401,  401,  403,  403,  204,  204]),
    row("POST", "/api/v2/write", "/api/v2/write?bucket=metrics", "cpu v=2",    [401,  401,  401,  401,  403,  403,  204,  204]),
    row("GET",  "/query", "/query?db=metrics&q=SELECT%20*%20FROM%20cpu", "",   [401,  401,  401,  401,  403,  200,  403,  200]),
    statement("SHOW DATABASES",                                                [401,  401,  401,  401,  200,  200,  200,  200]),
    statement("SELECT * FROM cpu",                                             [401,  401,  401,  401,  403,  200,  403,  200]),
    statement("EXPLAIN SELECT * FROM cpu",                                     [401,  401,  401,  401,  403,  200,  403,  200]),
    statement("EXPLAIN ANALYZE SELECT * FROM cpu",                             [401,  401,  401,  401,  403,  200,  403,  200]),
    // As the SELECT it explains: READ, and WRITE on an INTO's database (though nothing
    // is written).
    statement("EXPLAIN ANALYZE SELECT * INTO copy FROM cpu",                   [401,  401,  401,  401,  403,  403,  403,  200]),
    statement("SHOW MEASUREMENTS",                                             [401,  401,  401,  401,  403,  200,  403,  200]),
    statement("SHOW TAG VALUES WITH KEY = host",                               [401,  401,  401,  401,  403,  200,  403,  200]),
    statement("DELETE FROM cpu WHERE time < 0",                                [401,  401,  401,  401,  403,  403,  200,  200]),
    statement("DROP SERIES FROM nothing_here",                                 [401,  401,  401,  401,  403,  403,  200,  200]),
    statement("DROP MEASUREMENT nothing_here",                                 [401,  401,  401,  401,  403,  403,  403,  200]),
    statement("CREATE DATABASE matrix_scratch",                                [401,  401,  401,  401,  403,  403,  403,  200]),
    statement("SHOW USERS",                                                    [401,  401,  401,  401,  403,  403,  403,  200]),
    statement("SHOW GRANTS FOR reader",                                        [401,  401,  401,  401,  403,  403,  403,  200]),
    statement("CREATE USER matrix_x WITH PASSWORD 'p' WITH ALL PRIVILEGES",    [401,  401,  401,  401,  403,  403,  403,  200]),
    statement("GRANT ALL ON metrics TO nobody_here",                           [401,  401,  401,  401,  403,  403,  403,  200]),
    // Subscriptions are an admin's, listing them too, as in 1.x.
    statement("CREATE SUBSCRIPTION matrix_sub ON metrics.autogen DESTINATIONS ALL 'http://127.0.0.1:1'",
                                                                               [401,  401,  401,  401,  403,  403,  403,  200]),
    statement("SHOW SUBSCRIPTIONS",                                            [401,  401,  401,  401,  403,  403,  403,  200]),
    statement("DROP SUBSCRIPTION matrix_sub ON metrics.autogen",               [401,  401,  401,  401,  403,  403,  403,  200]),
    row("GET",  "/api/v2/setup", "/api/v2/setup", "",                          [200,  200,  200,  200,  200,  200,  200,  200]),
    // Set up already: refused whoever asks, before any credentials matter.
    row("POST", "/api/v2/setup", "/api/v2/setup",
        r#"{"username":"x","password":"xxxxxxxx","org":"x","bucket":"x"}"#,    [422,  422,  422,  422,  422,  422,  422,  422]),
    row("GET",  "/api/v2/orgs", "/api/v2/orgs", "",                            [401,  401,  401,  401,  200,  200,  200,  200]),
    // The organization exists: the admin's request is refused as a duplicate.
    row("POST", "/api/v2/orgs", "/api/v2/orgs", r#"{"name":"acme"}"#,          [401,  401,  401,  401,  403,  403,  403,  422]),
    row("GET",  "/api/v2/buckets", "/api/v2/buckets", "",                      [401,  401,  401,  401,  200,  200,  200,  200]),
    row("POST", "/api/v2/buckets", "/api/v2/buckets",
        r#"{"orgID":"{org}","name":"metrics"}"#,                               [401,  401,  401,  401,  403,  403,  403,  422]),
    row("POST", "/api/v2/buckets", "/api/v2/buckets",
        // A body that cannot be a bucket is refused as such, whoever sends it.
        r#"{"orgID":"{org}","name":"huge","retentionRules":[{"type":"expire","everySeconds":18446747674}]}"#,
                                                                               [401,  401,  401,  401,  400,  400,  400,  400]),
    // Seen by those who hold a grant on its database, deleted only by an admin.
    row("DELETE", "/api/v2/buckets/{id}", "/api/v2/buckets/{metrics}", "",     [401,  401,  401,  401,  404,  403,  403,  0]),
    row("DELETE", "/api/v2/buckets/{id}", "/api/v2/buckets/{spare_bucket}", "",[401,  401,  401,  401,  404,  404,  404,  204]),
    row("GET",  "/api/v2/authorizations", "/api/v2/authorizations", "",        [401,  401,  401,  401,  200,  200,  200,  200]),
    // Anyone may make a token for itself...
    row("POST", "/api/v2/authorizations", "/api/v2/authorizations",
        r#"{"orgID":"{org}"}"#,                                                [401,  401,  401,  401,  201,  201,  201,  201]),
    // ...but not for someone else, nor with permissions it does not hold.
    row("POST", "/api/v2/authorizations", "/api/v2/authorizations",
        r#"{"orgID":"{org}","userID":"{owner}"}"#,                             [401,  401,  401,  401,  403,  403,  403,  201]),
    row("POST", "/api/v2/authorizations", "/api/v2/authorizations",
        r#"{"orgID":"{org}","permissions":[{"action":"write","resource":{"type":"orgs"}}]}"#,
                                                                               [401,  401,  401,  401,  403,  403,  403,  201]),
    row("POST", "/api/v2/authorizations", "/api/v2/authorizations",
        r#"{"orgID":"{org}","permissions":[{"action":"read","resource":{"type":"buckets","orgID":"{org}","id":"{metrics}"}}]}"#,
                                                                               [401,  401,  401,  401,  403,  201,  403,  201]),
    row("DELETE", "/api/v2/authorizations/{id}", "/api/v2/authorizations/{spare_token}", "",
                                                                               [401,  401,  401,  401,  404,  404,  404,  204]),
    row("POST", "/api/v2/query", "/api/v2/query", "from(bucket: \"db\")",  [501,  501,  501,  501,  501,  501,  501,  501]),
    row("GET",  "/api/v2/backup/kv", "/api/v2/backup/kv", "",                  [401,  401,  401,  401,  403,  403,  403,  200]),
    row("GET",  "/api/v2/backup/metadata", "/api/v2/backup/metadata", "",      [401,  401,  401,  401,  403,  403,  403,  200]),
    row("GET",  "/api/v2/backup/status", "/api/v2/backup/status", "",          [401,  401,  401,  401,  403,  403,  403,  200]),
    row("GET",  "/api/v2/backup/shards/{id}", "/api/v2/backup/shards/987654", "",
                                                                               [401,  401,  401,  401,  403,  403,  403,  404]),
    row("POST", "/api/v2/restore/bucketMetadata", "/api/v2/restore/bucketMetadata", "not json",
                                                                               [401,  401,  401,  401,  403,  403,  403,  400]),
    row("POST", "/api/v2/restore/shards/{id}", "/api/v2/restore/shards/987654", "not a tar archive",
                                                                               [401,  401,  401,  401,  403,  403,  403,  404]),
    // Remotes and replications are an admin's (a remote holds another instance's token);
    // others see none of them.
    row("GET",  "/api/v2/remotes", "/api/v2/remotes?orgID={org}", "",         [401,  401,  401,  401,  200,  200,  200,  200]),
    row("POST", "/api/v2/remotes", "/api/v2/remotes",
        r#"{"orgID":"{org}","name":"matrix","remoteURL":"ftp://nowhere","remoteAPIToken":"t"}"#,
                                                                               [401,  401,  401,  401,  403,  403,  403,  400]),
    row("GET",  "/api/v2/remotes/{id}", "/api/v2/remotes/{remote}", "",        [401,  401,  401,  401,  404,  404,  404,  200]),
    row("PATCH", "/api/v2/remotes/{id}", "/api/v2/remotes/{remote}",
        r#"{"remoteURL":"ftp://nowhere"}"#,                                    [401,  401,  401,  401,  404,  404,  404,  400]),
    row("GET",  "/api/v2/replications", "/api/v2/replications?orgID={org}", "",[401,  401,  401,  401,  200,  200,  200,  200]),
    row("POST", "/api/v2/replications", "/api/v2/replications",
        r#"{"orgID":"{org}","name":"m","remoteID":"{remote}","localBucketID":"{metrics}","remoteBucketName":"x","maxQueueSizeBytes":1}"#,
                                                                               [401,  401,  401,  401,  403,  403,  403,  400]),
    row("GET",  "/api/v2/replications/{id}", "/api/v2/replications/{replication}", "",
                                                                               [401,  401,  401,  401,  404,  404,  404,  200]),
    row("PATCH", "/api/v2/replications/{id}", "/api/v2/replications/{replication}",
        r#"{"maxQueueSizeBytes":1}"#,                                          [401,  401,  401,  401,  404,  404,  404,  400]),
    // The remote does not answer: validation fails.
    row("POST", "/api/v2/replications/{id}/validate", "/api/v2/replications/{replication}/validate", "",
                                                                               [401,  401,  401,  401,  404,  404,  404,  400]),
    row("POST", "/api/v2/replications/{id}/drop-head", "/api/v2/replications/{replication}/drop-head", "",
                                                                               [401,  401,  401,  401,  404,  404,  404,  200]),
    // In use by the replication: refused.
    row("DELETE", "/api/v2/remotes/{id}", "/api/v2/remotes/{remote}", "",      [401,  401,  401,  401,  404,  404,  404,  409]),
    row("DELETE", "/api/v2/replications/{id}", "/api/v2/replications/{replication}", "",
                                                                               [401,  401,  401,  401,  404,  404,  404,  204]),
    // Anti-entropy: an admin's, the peers' endpoints too (a peer sends an admin's
    // credential); the admin's requests are malformed, or change nothing.
    row("GET",  "/shard-repair/status", "/shard-repair/status?local=true", "", [401,  401,  401,  401,  403,  403,  403,  200]),
    row("POST", "/shard-repair/repair", "/shard-repair/repair?id=x", "",       [401,  401,  401,  401,  403,  403,  403,  400]),
    row("POST", "/shard-repair/cancel-repair", "/shard-repair/cancel-repair?id=987654&local=true", "",
                                                                               [401,  401,  401,  401,  403,  403,  403,  204]),
    row("GET",  "/shard-repair/peer/shards", "/shard-repair/peer/shards", "",  [401,  401,  401,  401,  403,  403,  403,  200]),
    row("POST", "/shard-repair/peer/digests", "/shard-repair/peer/digests", "garbage",
                                                                               [401,  401,  401,  401,  403,  403,  403,  400]),
    row("POST", "/shard-repair/peer/leaves", "/shard-repair/peer/leaves", "garbage",
                                                                               [401,  401,  401,  401,  403,  403,  403,  400]),
    row("POST", "/shard-repair/peer/cells", "/shard-repair/peer/cells", "garbage",
                                                                               [401,  401,  401,  401,  403,  403,  403,  400]),
    row("POST", "/shard-repair/peer/apply", "/shard-repair/peer/apply", "garbage",
                                                                               [401,  401,  401,  401,  403,  403,  403,  400]),
    row("POST", "/shard-repair/pull", "/shard-repair/pull", "garbage",         [401,  401,  401,  401,  403,  403,  403,  400]),
    row("POST", "/shard-repair/peer/ibf", "/shard-repair/peer/ibf", "garbage",
                                                                               [401,  401,  401,  401,  403,  403,  403,  400]),
    row("POST", "/shard-repair/peer/exchange", "/shard-repair/peer/exchange", "garbage",
                                                                               [401,  401,  401,  401,  403,  403,  403,  400]),
    // Last: a kv restore that accepted its body would replace the whole control state.
    row("POST", "/api/v2/restore/kv", "/api/v2/restore/kv", "garbage",         [401,  401,  401,  401,  403,  403,  403,  400]),
];

fn admin_query(addr: SocketAddr, auth: &str, q: &str) {
    let r = query_as(addr, auth, "", q);
    assert_eq!(r.status, 200, "{q}: {}", String::from_utf8_lossy(&r.body));
    assert!(
        r.json()["results"][0].get("error").is_none(),
        "{q}: {}",
        String::from_utf8_lossy(&r.body)
    );
}

/// Creates an object through the v2 API as `auth` and returns what it answered.
fn create(addr: SocketAddr, auth: &str, path: &str, body: &str) -> serde_json::Value {
    let r = request(
        addr,
        "POST",
        path,
        &[
            ("Authorization", auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    );
    assert_eq!(
        r.status,
        201,
        "{path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

fn field(v: &serde_json::Value, name: &str) -> String {
    v[name].as_str().unwrap().to_owned()
}

#[test]
fn every_route_and_statement_class_answers_each_kind_of_caller_as_the_table_says() {
    let registered = shardkeeper::route_table();
    let missing: Vec<_> = registered
        .iter()
        .filter(|(m, p)| !TABLE.iter().any(|r| r.method == m && r.route == p))
        .collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the authorization table: {missing:?}"
    );
    let stale: Vec<_> = TABLE
        .iter()
        .filter(|r| {
            !registered
                .iter()
                .any(|(m, p)| r.method == m && r.route == p)
        })
        .map(|r| (r.method, r.route))
        .collect();
    assert!(
        stale.is_empty(),
        "rows for routes not registered: {stale:?}"
    );

    let root = tempfile::tempdir().unwrap();
    let d = Daemon::start_with_config(root.path(), CONFIG);
    let addr = d.addr;
    let setup = request(
        addr,
        "POST",
        "/api/v2/setup",
        &[("Content-Type", "application/json")],
        br#"{"username":"owner","password":"ownerpassword","org":"acme","bucket":"metrics"}"#,
    );
    assert_eq!(setup.status, 201);
    let setup = setup.json();
    let admin = format!("Token {}", setup["auth"]["token"].as_str().unwrap());
    let org = setup["org"]["id"].as_str().unwrap().to_owned();
    let owner = setup["user"]["id"].as_str().unwrap().to_owned();
    let metrics = setup["bucket"]["id"].as_str().unwrap().to_owned();

    for q in [
        "CREATE USER nobody WITH PASSWORD 'nobodypw'",
        "CREATE USER reader WITH PASSWORD 'readerpw'",
        "CREATE USER writer WITH PASSWORD 'writerpw'",
        "CREATE USER gone WITH PASSWORD 'gonepw' WITH ALL PRIVILEGES",
        "GRANT READ ON metrics TO reader",
        "GRANT WRITE ON metrics TO writer",
    ] {
        admin_query(addr, &admin, q);
    }
    let org_body = format!(r#"{{"orgID":"{org}"}}"#);
    let revoked = create(addr, &admin, "/api/v2/authorizations", &org_body);
    let r = request(
        addr,
        "DELETE",
        &format!("/api/v2/authorizations/{}", field(&revoked, "id")),
        &[("Authorization", &admin)],
        b"",
    );
    assert_eq!(r.status, 204);
    let gone = create(
        addr,
        &basic("gone", "gonepw"),
        "/api/v2/authorizations",
        &org_body,
    );
    admin_query(addr, &admin, "DROP USER gone");
    let spare_bucket = create(
        addr,
        &admin,
        "/api/v2/buckets",
        &format!(r#"{{"orgID":"{org}","name":"spare"}}"#),
    );
    let spare_token = create(
        addr,
        &admin,
        "/api/v2/authorizations",
        &format!(r#"{{"orgID":"{org}","description":"spare"}}"#),
    );
    let (spare_bucket, spare_token) = (field(&spare_bucket, "id"), field(&spare_token, "id"));
    // Nothing listens on port 1: the replication's sender only ever fails to connect.
    let remote = create(
        addr,
        &admin,
        "/api/v2/remotes",
        &format!(
            r#"{{"orgID":"{org}","name":"nowhere","remoteURL":"http://127.0.0.1:1","remoteAPIToken":"t"}}"#
        ),
    );
    let remote = field(&remote, "id");
    let replication = create(
        addr,
        &admin,
        "/api/v2/replications",
        &format!(
            r#"{{"orgID":"{org}","name":"copy","remoteID":"{remote}","localBucketID":"{metrics}","remoteBucketName":"copy"}}"#
        ),
    );
    let replication = field(&replication, "id");

    let credentials: [Option<String>; 8] = [
        None,
        Some(basic("owner", "not the password")),
        Some(format!("Token {}", field(&revoked, "token"))),
        Some(format!("Token {}", field(&gone, "token"))),
        Some(basic("nobody", "nobodypw")),
        Some(basic("reader", "readerpw")),
        Some(basic("writer", "writerpw")),
        Some(admin.clone()),
    ];
    let ids: HashMap<&str, &str> = [
        ("{org}", org.as_str()),
        ("{owner}", owner.as_str()),
        ("{metrics}", metrics.as_str()),
        ("{spare_bucket}", spare_bucket.as_str()),
        ("{spare_token}", spare_token.as_str()),
        ("{remote}", remote.as_str()),
        ("{replication}", replication.as_str()),
    ]
    .into();
    let fill = |s: &str| {
        ids.iter()
            .fold(s.to_owned(), |s, (name, id)| s.replace(name, id))
    };

    let mut wrong = Vec::new();
    for row in TABLE {
        for (column, expected) in row.expect.iter().enumerate() {
            // 0: not sent as this caller (the admin would delete the bucket that the other
            // rows use; the spare bucket's row shows an admin's delete).
            if *expected == 0 {
                continue;
            }
            let mut headers = Vec::new();
            if let Some(c) = &credentials[column] {
                headers.push(("Authorization", c.as_str()));
            }
            let (path, body) = match row.route == QUERY && row.method == "POST" {
                true => {
                    headers.push(("Content-Type", "application/x-www-form-urlencoded"));
                    let form = format!("db=metrics&q={}", urlencode(row.path));
                    (QUERY.to_owned(), form)
                }
                false => {
                    headers.push(("Content-Type", "application/json"));
                    (fill(row.path), fill(row.body))
                }
            };
            let r = request(addr, row.method, &path, &headers, body.as_bytes());
            if r.status != *expected {
                wrong.push(format!(
                    "{} {} as {}: expected {}, got {} {}",
                    row.method,
                    row.path,
                    CALLERS[column],
                    expected,
                    r.status,
                    String::from_utf8_lossy(&r.body)
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells differ from the table:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
