//! Replications end to end: a node copying its bucket's writes to a remote over
//! `/api/v2/write`, against the scripted fake remote (what is sent, and how each kind of
//! failure is handled) and against a second node. Every wait is on a condition.

mod common;
use common::fake_remote::{self, Answer, FakeRemote};
use common::replication::{lines, received_lines, V2};
use common::{wait_until, Daemon};
use serde_json::json;

const BASE: i64 = 1_700_000_000_000_000_000;

fn node(dir: &tempfile::TempDir) -> (Daemon, V2) {
    let d = Daemon::start(dir.path());
    let v2 = V2::setup(d.addr, "metrics");
    (d, v2)
}

#[test]
fn writes_reach_the_remote_in_gzip_batches_with_its_token_and_nanosecond_precision() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, a) = node(&dir);
    let remote = FakeRemote::start(vec![]);
    let rid = a.create_remote("b", &remote.url(), "remote-secret");
    let id = a.create_replication(&rid, "copy", json!({}));
    // Seconds precision locally: the remote gets nanoseconds.
    let auth = format!("Token {}", a.token);
    let r = common::request(
        a.addr,
        "POST",
        "/api/v2/write?org=acme&bucket=metrics&precision=s",
        &[("Authorization", &auth)],
        b"cpu,host=a v=1i 1700000000\ncpu,host=b v=2i 1700000001\n",
    );
    assert_eq!(r.status, 204);
    let got = remote.wait_for_requests(1);
    let w = &got[0];
    assert_eq!(
        (w.method.as_str(), w.path.as_str()),
        ("POST", "/api/v2/write")
    );
    assert_eq!(w.header("Authorization"), Some("Token remote-secret"));
    assert_eq!(w.header("Content-Encoding"), Some("gzip"));
    assert_eq!(w.param("bucket"), Some("copy"));
    assert_eq!(w.param("org"), Some("remote-org"));
    assert_eq!(w.param("precision"), Some("ns"));
    assert_eq!(
        received_lines(&remote),
        [
            "cpu,host=a v=1i 1700000000000000000",
            "cpu,host=b v=2i 1700000001000000000"
        ]
    );
    wait_until("the delivery to be recorded", || {
        let s = a.replication(&id);
        s["latestResponseCode"] == 204 && s["currentQueueSizeBytes"] == 0
    });
    let label = format!("{{replication=\"{id}\",name=\"to-copy\"}}");
    assert_eq!(
        a.metric(&format!("shardkeeper_replication_sent_points_total{label}")),
        2.0
    );
    assert_eq!(
        a.metric(&format!("shardkeeper_replication_queue_bytes{label}")),
        0.0
    );
}

#[test]
fn a_full_batch_is_at_most_five_thousand_lines_and_every_point_arrives_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, a) = node(&dir);
    let remote = FakeRemote::start(vec![]);
    // Held until written: the first batch waits for every write.
    remote.otherwise(Some(Answer::status(503)));
    let rid = a.create_remote("b", &remote.url(), "t");
    let id = a.create_replication(&rid, "copy", json!({}));
    for chunk in 0..12u64 {
        let r = a.write(&lines("m", chunk * 1000..(chunk + 1) * 1000, BASE));
        assert_eq!(r.status, 204);
    }
    remote.otherwise(None);
    wait_until("every point to arrive", || {
        a.replication(&id)["currentQueueSizeBytes"] == 0
    });
    let writes: Vec<usize> = remote
        .received()
        .iter()
        .filter(|r| r.path == "/api/v2/write" && !r.body.is_empty())
        .map(|r| String::from_utf8_lossy(&r.body).lines().count())
        .collect();
    assert!(writes.iter().all(|&n| n <= 5000), "{writes:?}");
    let got = received_lines(&remote);
    let distinct: std::collections::BTreeSet<&String> = got.iter().collect();
    assert_eq!(distinct.len(), 12_000);
}

fn metric_label(id: &str, name: &str) -> String {
    format!("replication=\"{id}\",name=\"{name}\"")
}

#[test]
fn retry_after_and_server_errors_are_retried_until_the_batch_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, a) = node(&dir);
    let remote = FakeRemote::start(vec![
        Answer::error(429, "slow down").header("Retry-After", "1"),
        Answer::error(503, "busy").header("Retry-After", "1"),
        Answer::error(500, "oops"),
        Answer::error(502, "bad gateway"),
    ]);
    let rid = a.create_remote("b", &remote.url(), "t");
    let id = a.create_replication(&rid, "copy", json!({}));
    let written = std::time::Instant::now();
    assert_eq!(a.write(&lines("m", 0..10, BASE)).status, 204);
    wait_until("the batch to be delivered", || {
        let s = a.replication(&id);
        s["latestResponseCode"] == 204 && s["currentQueueSizeBytes"] == 0
    });
    // Each Retry-After (1 s) was waited for; then back-offs of 0.125..0.25 and 0.25..0.5 s.
    let took = written.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(2_375),
        "delivered after {took:?}"
    );
    let writes: Vec<_> = remote
        .received()
        .into_iter()
        .filter(|r| r.path == "/api/v2/write")
        .collect();
    assert_eq!(writes.len(), 5, "four failures, then the delivery");
    assert!(
        writes.iter().all(|w| w.body == writes[0].body),
        "the same batch each time"
    );
    let label = metric_label(&id, "to-copy");
    for status in [429, 503, 500, 502] {
        let sample =
            format!("shardkeeper_replication_failures_total{{{label},status=\"{status}\"}}");
        assert_eq!(a.metric(&sample), 1.0, "{sample}");
    }
    // A status of 204 is the latest attempt's: the error before it is gone.
    assert!(a.replication(&id).get("latestErrorMessage").is_none());
}

#[test]
fn a_cut_connection_and_a_refusing_remote_are_retried_until_the_batch_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, a) = node(&dir);
    let remote = FakeRemote::start(vec![Answer::never()]);
    let proxy = common::fault_proxy::FaultProxy::start(remote.addr);
    let rid = a.create_remote("b", &proxy.url(), "t");
    let id = a.create_replication(&rid, "copy", json!({}));
    assert_eq!(a.write(&lines("m", 0..10, BASE)).status, 204);
    remote.wait_for_requests(1);
    // The answer never comes; the connection is cut, and new ones refused for a while.
    proxy.refuse_new_connections(true);
    proxy.cut_live_connections();
    let label = metric_label(&id, "to-copy");
    let network = format!("shardkeeper_replication_failures_total{{{label},status=\"0\"}}");
    wait_until("a network failure to be counted and reported", || {
        a.metric(&network) >= 2.0
            && a.replication(&id)["latestErrorMessage"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
    });
    assert!(a.replication(&id).get("latestResponseCode").is_none());
    proxy.refuse_new_connections(false);
    wait_until("the batch to be delivered", || {
        a.replication(&id)["currentQueueSizeBytes"] == 0
    });
    let got = received_lines(&remote);
    let distinct: std::collections::BTreeSet<&String> = got.iter().collect();
    assert_eq!(distinct.len(), 10);
}

use common::ctl;

#[test]
fn a_batch_refused_for_good_stops_the_replication_until_an_operator_drops_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, a) = node(&dir);
    let remote = FakeRemote::start(vec![Answer::error(400, "unable to parse 'm v=': bad")]);
    let rid = a.create_remote("b", &remote.url(), "t");
    let id = a.create_replication(&rid, "copy", json!({}));
    assert_eq!(a.write(&lines("m", 0..10, BASE)).status, 204);
    wait_until("the replication to stop", || {
        let s = a.replication(&id);
        s["latestResponseCode"] == 400
            && s["latestErrorMessage"]
                .as_str()
                .is_some_and(|m| m.contains("unable to parse"))
    });
    let label = metric_label(&id, "to-copy");
    assert_eq!(
        a.metric(&format!("shardkeeper_replication_stopped{{{label}}}")),
        1.0
    );
    // The data stays queued (not dropped), visible to the operator.
    let queued = a.replication(&id)["currentQueueSizeBytes"]
        .as_u64()
        .unwrap();
    assert!(queued > 0);
    let url = format!("http://{}", a.addr);
    let listed = ctl(&["replication", "list", "--url", &url, "--token", &a.token]);
    assert!(
        listed.contains(&id) && listed.contains("unable to parse"),
        "{listed}"
    );
    let shown = ctl(&[
        "replication",
        "show",
        "--url",
        &url,
        "--token",
        &a.token,
        &id,
    ]);
    assert!(
        shown.contains(&format!("\"currentQueueSizeBytes\": {queued}")),
        "{shown}"
    );
    let dropped = ctl(&[
        "replication",
        "drop-head",
        "--url",
        &url,
        "--token",
        &a.token,
        &id,
    ]);
    assert!(dropped.contains("dropped 10 points"), "{dropped}");
    assert_eq!(a.replication(&id)["currentQueueSizeBytes"], 0);
    assert_eq!(
        a.metric(&format!(
            "shardkeeper_replication_dropped_points_total{{{label},reason=\"operator\"}}"
        )),
        10.0
    );
    // Going again: the next writes are delivered.
    assert_eq!(a.write(&lines("m", 10..15, BASE)).status, 204);
    // The refused batch was received once, then the next writes alone.
    wait_until("the next writes to arrive", || {
        received_lines(&remote).len() == 15
    });
    assert_eq!(
        received_lines(&remote)[10..],
        lines("m", 10..15, BASE).lines().collect::<Vec<_>>()
    );
    wait_until("the delivery to be recorded", || {
        a.replication(&id)["latestResponseCode"] == 204
    });
}

#[test]
fn with_drop_non_retryable_data_a_refused_batch_is_dropped_counted_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, a) = node(&dir);
    let remote = FakeRemote::start(vec![
        Answer::error(413, "request too large"),
        Answer::error(400, "partial write: field type conflict"),
    ]);
    let rid = a.create_remote("b", &remote.url(), "t");
    let id = a.create_replication(&rid, "copy", json!({"dropNonRetryableData": true}));
    let label = metric_label(&id, "to-copy");
    let dropped =
        format!("shardkeeper_replication_dropped_points_total{{{label},reason=\"non_retryable\"}}");
    assert_eq!(a.write(&lines("m", 0..4, BASE)).status, 204);
    wait_until("the first batch to be dropped", || {
        a.metric(&dropped) == 4.0
    });
    assert_eq!(a.write(&lines("m", 4..10, BASE)).status, 204);
    wait_until("the second batch to be dropped", || {
        a.metric(&dropped) == 10.0
    });
    let s = a.replication(&id);
    assert!(
        s["latestErrorMessage"]
            .as_str()
            .unwrap()
            .contains("field type conflict"),
        "{s}"
    );
    assert_eq!(s["latestResponseCode"], 400);
    assert_eq!(a.write(&lines("m", 10..13, BASE)).status, 204);
    wait_until("later writes to be delivered", || {
        a.replication(&id)["latestResponseCode"] == 204
    });
    let got = received_lines(&remote);
    assert_eq!(
        &got[got.len() - 3..],
        lines("m", 10..13, BASE).lines().collect::<Vec<_>>()
    );
    assert_eq!(a.replication(&id)["currentQueueSizeBytes"], 0);
}

#[test]
fn the_api_answers_influxdb_2s_fields_defaults_filters_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, a) = node(&dir);
    let remote = FakeRemote::start(vec![]);
    // Remotes: the token is write-only, an empty description is left out.
    let r = a.api(
        "POST",
        "/api/v2/remotes",
        Some(json!({"orgID": a.org_id, "name": "b", "remoteURL": remote.url(), "remoteAPIToken": "never-shown"})),
    );
    assert_eq!(r.status, 201);
    let created = r.json();
    let rid = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created,
        json!({"id": rid, "orgID": a.org_id, "name": "b", "remoteURL": remote.url(), "allowInsecureTLS": false})
    );
    for (body, message) in [
        (
            json!({"orgID": a.org_id, "name": "c", "remoteURL": remote.url()}),
            "remoteAPIToken is required",
        ),
        (
            json!({"orgID": a.org_id, "remoteURL": remote.url(), "remoteAPIToken": "t"}),
            "name is required",
        ),
        (
            json!({"orgID": a.org_id, "name": "c", "remoteURL": "ftp://x", "remoteAPIToken": "t"}),
            "is not an http:// or https:// URL",
        ),
    ] {
        let r = a.api("POST", "/api/v2/remotes", Some(body));
        assert_eq!(r.status, 400);
        assert_eq!(r.json()["code"], "invalid");
        assert!(
            r.json()["message"].as_str().unwrap().contains(message),
            "{}",
            r.json()
        );
    }
    let dup = a.api(
        "POST",
        "/api/v2/remotes",
        Some(json!({"orgID": a.org_id, "name": "b", "remoteURL": remote.url(), "remoteAPIToken": "t"})),
    );
    assert_eq!(
        (dup.status, dup.json()["code"].clone()),
        (409, json!("conflict"))
    );
    let list = a.api("GET", "/api/v2/remotes", None);
    assert_eq!(
        (list.status, list.json()["message"].clone()),
        (400, json!("orgID is required"))
    );
    let by = |q: &str| {
        a.api(
            "GET",
            &format!("/api/v2/remotes?orgID={}&{q}", a.org_id),
            None,
        )
        .json()["remotes"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(
        (
            by("name=b"),
            by("name=x"),
            by(&format!("remoteURL={}", common::urlencode(&remote.url())))
        ),
        (1, 0, 1)
    );
    let patched = a.api(
        "PATCH",
        &format!("/api/v2/remotes/{rid}"),
        Some(json!({"description": "B", "remoteAPIToken": "still-never-shown"})),
    );
    assert_eq!(patched.json()["description"], "B");
    assert!(!String::from_utf8_lossy(&patched.body).contains("never-shown"));
    assert_eq!(a.api("GET", "/api/v2/remotes/nothing", None).status, 404);

    // Replications: defaults, bounds, validation, filters.
    let base = json!({"orgID": a.org_id, "name": "r", "remoteID": rid, "localBucketID": a.bucket_id, "remoteBucketName": "copy"});
    let with = |extra: serde_json::Value| {
        let mut b = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (extra, message) in [
        (
            json!({"maxQueueSizeBytes": 33554429}),
            "maxQueueSize too small, must be at least 33554430",
        ),
        (json!({"maxAgeSeconds": 59}), "maxAgeSeconds"),
        (json!({"maxAgeSeconds": 5184001}), "maxAgeSeconds"),
        (
            json!({"remoteBucketName": null}),
            "one of remoteBucketID or remoteBucketName is required",
        ),
        (
            json!({"localBucketID": "0000000000000000"}),
            "local bucket 0000000000000000 not found",
        ),
        (
            json!({"remoteID": "0000000000000000"}),
            "remote 0000000000000000 not found",
        ),
        (json!({"name": ""}), "name is required"),
    ] {
        let r = a.api("POST", "/api/v2/replications", Some(with(extra.clone())));
        assert_eq!(r.status, 400, "{extra}");
        assert!(
            r.json()["message"].as_str().unwrap().contains(message),
            "{extra}: {}",
            r.json()
        );
    }
    let r = a.api("POST", "/api/v2/replications", Some(json!("not an object")));
    assert_eq!(r.status, 400);
    // validate=true: 204, nothing saved (the remote took an empty write).
    let r = a.api(
        "POST",
        "/api/v2/replications?validate=true",
        Some(base.clone()),
    );
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    let list = |q: &str| {
        a.api(
            "GET",
            &format!("/api/v2/replications?orgID={}{q}", a.org_id),
            None,
        )
        .json()["replications"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert!(list("").is_empty());
    let r = a.api("POST", "/api/v2/replications", Some(base.clone()));
    assert_eq!(r.status, 201);
    let created = r.json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created,
        json!({"id": id, "orgID": a.org_id, "name": "r", "remoteID": rid, "localBucketID": a.bucket_id,
               "remoteBucketName": "copy", "maxQueueSizeBytes": 67108860, "maxAgeSeconds": 604800,
               "dropNonRetryableData": false, "currentQueueSizeBytes": 0, "remainingBytesToBeSynced": 0})
    );
    let dup = a.api("POST", "/api/v2/replications", Some(base.clone()));
    assert_eq!(dup.status, 409);
    assert_eq!(list("&name=r").len(), 1);
    assert_eq!(list("&name=x").len(), 0);
    assert_eq!(list(&format!("&remoteID={rid}")).len(), 1);
    assert_eq!(list("&remoteID=0000000000000000").len(), 0);
    assert_eq!(list(&format!("&localBucketID={}", a.bucket_id)).len(), 1);
    assert_eq!(a.api("GET", "/api/v2/replications", None).status, 400);
    // POST /{id}/validate: an empty write to the remote bucket, with the token.
    let before = remote.received().len();
    assert_eq!(
        a.api("POST", &format!("/api/v2/replications/{id}/validate"), None)
            .status,
        204
    );
    let probe = &remote.received()[before];
    assert_eq!((probe.param("bucket"), probe.body.len()), (Some("copy"), 0));
    remote.push(vec![Answer::error(401, "unauthorized access")]);
    let r = a.api("POST", &format!("/api/v2/replications/{id}/validate"), None);
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("replication failed validation: "),
        "{}",
        r.json()
    );
    // PATCH: fields changed, bounds kept, validate=true saves nothing.
    let p = a.api(
        "PATCH",
        &format!("/api/v2/replications/{id}"),
        Some(json!({"maxAgeSeconds": 0, "description": "d", "remoteBucketID": "abc"})),
    );
    assert_eq!(p.status, 200);
    let p = p.json();
    assert_eq!(
        (
            p["maxAgeSeconds"].clone(),
            p["description"].clone(),
            p["remoteBucketID"].clone()
        ),
        (json!(604800), json!("d"), json!("abc"))
    );
    assert!(p.get("remoteBucketName").is_none());
    assert_eq!(
        a.api(
            "PATCH",
            &format!("/api/v2/replications/{id}"),
            Some(json!({"maxQueueSizeBytes": 1}))
        )
        .status,
        400
    );
    assert_eq!(
        a.api(
            "PATCH",
            &format!("/api/v2/replications/{id}?validate=true"),
            Some(json!({"name": "renamed"}))
        )
        .status,
        204
    );
    assert_eq!(a.replication(&id)["name"], "r");
    assert_eq!(
        a.api("PATCH", "/api/v2/replications/nothing", Some(json!({})))
            .status,
        404
    );
    // A remote in use is not deleted; deleting the bucket deletes its replications.
    let r = a.api("DELETE", &format!("/api/v2/remotes/{rid}"), None);
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (409, json!("conflict"))
    );
    assert_eq!(
        a.api("DELETE", &format!("/api/v2/buckets/{}", a.bucket_id), None)
            .status,
        204
    );
    assert_eq!(
        a.api("GET", &format!("/api/v2/replications/{id}"), None)
            .status,
        404
    );
    assert_eq!(
        a.api("DELETE", &format!("/api/v2/remotes/{rid}"), None)
            .status,
        204
    );
    assert_eq!(
        a.api("DELETE", &format!("/api/v2/replications/{id}"), None)
            .status,
        404
    );
}

/// A write of `n` lines that compress poorly (a pseudo-random string field each), so that
/// a queue fills with few of them.
fn incompressible(write: u64, n: u64) -> String {
    let mut x = write.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let alphabet: Vec<char> = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        .chars()
        .collect();
    let mut out = String::new();
    for i in 0..n {
        let s: String = (0..96)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                alphabet[(x % 64) as usize]
            })
            .collect();
        out.push_str(&format!("big,w=w{write} s=\"{s}\" {}\n", BASE + i as i64));
    }
    out
}

const MIN_QUEUE: u64 = 33_554_430;
const LINES_PER_WRITE: u64 = 20_000;

/// Repoints the replication's remote (a fixed remote: stopped replications go again).
fn repoint(a: &V2, remote_id: &str, url: &str) {
    let r = a.api(
        "PATCH",
        &format!("/api/v2/remotes/{remote_id}"),
        Some(json!({"remoteURL": url})),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn a_full_queue_refuses_the_local_write_with_503_naming_the_replication() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, a) = node(&dir);
    // Nothing listens there: the queue only fills.
    let rid = a.create_remote("b", "http://127.0.0.1:1", "t");
    let id = a.create_replication(&rid, "copy", json!({"maxQueueSizeBytes": MIN_QUEUE}));
    let mut accepted = 0;
    let refused = loop {
        assert!(accepted < 60, "the queue never filled");
        let r = a.write(&incompressible(accepted, LINES_PER_WRITE));
        if r.status != 204 {
            break r;
        }
        accepted += 1;
    };
    assert_eq!(
        refused.status,
        503,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    let message = refused.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("\"to-copy\"")
            && message.contains(&id)
            && message.contains("queue is full"),
        "{message}"
    );
    // Nothing of the refused write was stored; the queue holds every accepted byte.
    let queued = a.replication(&id)["currentQueueSizeBytes"]
        .as_u64()
        .unwrap();
    assert!(queued <= MIN_QUEUE && queued > MIN_QUEUE / 2, "{queued}");
    let local = |a: &V2| {
        let r = common::query(a.addr, "metrics", "SELECT count(s) FROM big");
        common::rows_of(&r)
            .first()
            .and_then(|row| row[1].as_u64())
            .unwrap_or(0)
    };
    assert_eq!(local(&a), accepted * LINES_PER_WRITE);
    // The remote comes back: everything accepted arrives, and writes are taken again.
    let remote = FakeRemote::start(vec![]);
    repoint(&a, &rid, &remote.url());
    wait_until("the queue to drain", || {
        a.replication(&id)["currentQueueSizeBytes"] == 0
    });
    let got = received_lines(&remote);
    let distinct: std::collections::BTreeSet<&String> = got.iter().collect();
    assert_eq!(distinct.len() as u64, accepted * LINES_PER_WRITE);
    assert_eq!(a.write(&incompressible(999, 10)).status, 204);
}

#[test]
fn with_drop_when_full_the_write_is_taken_and_the_oldest_queued_points_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with_config(dir.path(), "replication_drop_when_full = true\n");
    let a = V2::setup(d.addr, "metrics");
    let rid = a.create_remote("b", "http://127.0.0.1:1", "t");
    let id = a.create_replication(&rid, "copy", json!({"maxQueueSizeBytes": MIN_QUEUE}));
    let label = metric_label(&id, "to-copy");
    let dropped =
        format!("shardkeeper_replication_dropped_points_total{{{label},reason=\"queue_full\"}}");
    let writes = 30;
    for w in 0..writes {
        let r = a.write(&incompressible(w, LINES_PER_WRITE));
        assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    }
    wait_until("the oldest points to be dropped", || {
        a.metric(&dropped) > 0.0
            && a.replication(&id)["currentQueueSizeBytes"]
                .as_u64()
                .unwrap()
                <= MIN_QUEUE
    });
    let remote = FakeRemote::start(vec![]);
    repoint(&a, &rid, &remote.url());
    wait_until("the queue to drain", || {
        a.replication(&id)["currentQueueSizeBytes"] == 0
    });
    let got = received_lines(&remote);
    let distinct: std::collections::BTreeSet<&String> = got.iter().collect();
    let dropped = a.metric(&dropped) as u64;
    // Whole writes, oldest first: what arrived is exactly what was not dropped.
    assert_eq!(distinct.len() as u64 + dropped, writes * LINES_PER_WRITE);
    assert_eq!(dropped % LINES_PER_WRITE, 0);
    assert!(
        got[0].starts_with(&format!("big,w=w{} ", dropped / LINES_PER_WRITE)),
        "{}",
        &got[0][..40]
    );
}

#[test]
fn points_older_than_max_age_are_dropped_point_exactly_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, a) = node(&dir);
    let rid = a.create_remote("b", "http://127.0.0.1:1", "t");
    let id = a.create_replication(&rid, "copy", json!({"maxAgeSeconds": 60}));
    let label = metric_label(&id, "to-copy");
    let expired =
        format!("shardkeeper_replication_dropped_points_total{{{label},reason=\"max_age\"}}");
    assert_eq!(a.write(&lines("m", 0..7, BASE)).status, 204);
    // Written a minute ago by the node's clock once this holds.
    wait_until("the queued points to expire", || a.metric(&expired) == 7.0);
    assert_eq!(a.replication(&id)["currentQueueSizeBytes"], 0);
    let remote = FakeRemote::start(vec![]);
    repoint(&a, &rid, &remote.url());
    assert_eq!(a.write(&lines("m", 7..10, BASE)).status, 204);
    wait_until("the later points to arrive", || {
        received_lines(&remote).len() == 3
    });
    assert_eq!(
        received_lines(&remote),
        lines("m", 7..10, BASE).lines().collect::<Vec<_>>()
    );
    assert_eq!(a.metric(&expired), 7.0);
}

#[test]
fn two_nodes_managed_with_the_python_client_replicate_every_point() {
    if !common::python_with("influxdb_client") {
        return;
    }
    let nodes = common::nodes::Nodes::start(&["", ""]);
    let a = V2::setup(nodes[0].addr, "metrics");
    let b = V2::setup(nodes[1].addr, "copy");
    let (url_a, url_b) = (nodes.url(0), nodes.url(1));
    let out = common::run_client_script(
        "replications.py",
        &[
            &url_a,
            &a.token,
            &a.org_id,
            &a.bucket_id,
            &url_b,
            &b.token,
            &b.org_id,
        ],
        b"",
    );
    let got: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let remote = &got["remote"];
    assert_eq!(remote["name"], "node-b");
    assert_eq!(remote["remote_url"], nodes.url(1).as_str());
    assert_eq!(remote["remote_org_id"], b.org_id.as_str());
    assert!(
        !out.windows(b.token.len()).any(|w| w == b.token.as_bytes()),
        "the remote's token was answered"
    );
    assert_eq!(got["remotes"].as_array().unwrap().len(), 1);
    assert_eq!(got["remote_patched"]["description"], "node B");
    let r = &got["replication"];
    assert_eq!(
        (
            r["max_queue_size_bytes"].clone(),
            r["drop_non_retryable_data"].clone()
        ),
        (json!(67108860), json!(false))
    );
    assert_eq!(
        (
            r["remote_bucket_name"].clone(),
            r["current_queue_size_bytes"].clone()
        ),
        (json!("copy"), json!(0))
    );
    assert_eq!(got["replications"].as_array().unwrap().len(), 1);
    assert_eq!(got["replication_patched"]["drop_non_retryable_data"], true);
    let id = r["id"].as_str().unwrap();
    wait_until("B to hold every point A took", || b.count("cpu") == 1000);
    wait_until("A's queue to be empty", || {
        let s = a.replication(id);
        s["currentQueueSizeBytes"] == 0 && s["latestResponseCode"] == 204
    });
    let values = common::query(b.addr, "copy", "SELECT sum(v) FROM cpu");
    assert_eq!(
        common::rows_of(&values)[0][1],
        json!((0..1000).sum::<i64>())
    );
}

#[test]
fn the_remote_killed_and_restarted_while_the_source_takes_writes_gets_every_point() {
    let mut nodes = common::nodes::Nodes::start(&["", ""]);
    let a = V2::setup(nodes[0].addr, "metrics");
    let b = V2::setup(nodes[1].addr, "copy");
    let rid = a.create_remote("b", &nodes.url(1), &b.token);
    let id = a.create_replication(&rid, "copy", json!({}));
    let batches = 20u64;
    let b_dir = nodes[1].data_dir.clone();
    let mut b_node = Some(nodes.nodes.remove(1));
    for i in 0..batches {
        if i == 5 {
            b_node.take().unwrap().kill9();
        }
        assert_eq!(
            a.write(&lines("m", i * 500..(i + 1) * 500, BASE)).status,
            204
        );
    }
    let label = metric_label(&id, "to-copy");
    wait_until("A to notice B is gone", || {
        a.metric(&format!(
            "shardkeeper_replication_failures_total{{{label},status=\"0\"}}"
        )) > 0.0
    });
    let restarted = Daemon::start(&b_dir);
    let b = b.at(restarted.addr);
    // B's new address (port 0): a fixed remote, as an operator would repoint it.
    repoint(&a, &rid, &format!("http://{}", restarted.addr));
    wait_until("B to hold every point", || b.count("m") == batches * 500);
    wait_until("A's queue to be empty", || {
        a.replication(&id)["currentQueueSizeBytes"] == 0
    });
}

/// A killed between its remote's 204 and its record of it sends those batches again;
/// B, a shardkeeper node, recognises them by their batch header and applies none twice.
/// B sits behind a recording relay, which sees what A sends and how B answers.
#[test]
fn every_point_the_source_acknowledged_arrives_once_after_it_is_killed_during_writes() {
    let dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let b_node = Daemon::start(b_dir.path());
    let b = V2::setup(b_node.addr, "copy");
    let remote = FakeRemote::forward(b_node.addr);
    let (d, mut a) = node(&dir);
    let rid = a.create_remote("b", &remote.url(), &b.token);
    let id = a.create_replication(&rid, "copy", json!({}));
    let mut daemon = Some(d);
    let mut acknowledged: Vec<String> = Vec::new();
    let kills = 10;
    let mut next = 0u64;
    let mut crashes = Vec::new();
    for round in 0..kills {
        // Writes go on in a thread while the node is killed under them.
        let writer_a = a.clone();
        let start = next;
        let writer = std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut n = start;
            loop {
                let body = lines("k", n..n + 300, BASE);
                match writer_a.try_write(&body) {
                    Ok(r) if r.status == 204 => acked.extend(body.lines().map(str::to_owned)),
                    _ => return (acked, n),
                }
                n += 300;
            }
        });
        let target = (round + 1) * 3_000;
        // Killed while writes and deliveries are both under way.
        wait_until("writes to be replicated", || {
            received_lines(&remote).len() >= target / 2
        });
        daemon.take().unwrap().kill9();
        // What came before this crash, and what after it (until the next) is sent again.
        crashes.push(write_requests(&remote).len());
        let (acked, n) = writer.join().unwrap();
        acknowledged.extend(acked);
        next = n + 300;
        let d = Daemon::start(dir.path());
        a = a.at(d.addr);
        daemon = Some(d);
    }
    wait_until("the queue to drain after the last restart", || {
        a.replication(&id)["currentQueueSizeBytes"] == 0
    });
    let requests: Vec<fake_remote::Received> = remote
        .received()
        .into_iter()
        .filter(|r| r.path == "/api/v2/write")
        .collect();
    let lines_of = |r: &fake_remote::Received| -> Vec<String> {
        String::from_utf8_lossy(&r.body)
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let skipped = |r: &fake_remote::Received| {
        r.answer_header("X-Shardkeeper-Batch-Outcome") == Some("duplicate")
    };
    // Each line B applied (a 204 that was not a duplicate), and how many times.
    let mut applied: std::collections::HashMap<String, usize> = Default::default();
    for r in requests.iter().filter(|r| r.answered == 204 && !skipped(r)) {
        for line in lines_of(r) {
            *applied.entry(line).or_default() += 1;
        }
    }
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|l| !applied.contains_key(*l))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged points never arrived, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    // B holds what it applied: every acknowledged point (and maybe some A took as it died).
    assert_eq!(b.count("k"), applied.len() as u64);
    // B counts the batches it did not apply again; the relay saw each of its answers.
    let duplicates = requests.iter().filter(|r| skipped(r)).count();
    assert_eq!(
        b.metric("shardkeeper_replication_inbound_batches_total{outcome=\"duplicate\"}") as usize,
        duplicates
    );
    // Each crash's resent batches (any line B had already received) and batches applied
    // twice (a line B had already applied, applied again), charged to the crash before.
    let mut received_before: std::collections::HashSet<String> = Default::default();
    let mut applied_before: std::collections::HashSet<String> = Default::default();
    let mut per_crash = vec![(0usize, 0usize, 0usize, 0usize); kills];
    for (k, r) in requests.iter().enumerate() {
        let after = crashes.iter().filter(|&&c| c <= k).count();
        let batch = lines_of(r);
        let resent = batch.iter().any(|l| received_before.contains(l));
        let applied_now = r.answered == 204 && !skipped(r);
        let twice = applied_now && batch.iter().any(|l| applied_before.contains(l));
        if resent || twice {
            assert!(
                after > 0,
                "a batch received twice before any crash: {:?}",
                r.header("X-Shardkeeper-Batch")
            );
            let c = &mut per_crash[after - 1];
            c.0 += usize::from(resent);
            c.1 += usize::from(twice);
            c.2 += usize::from(skipped(r));
            c.3 += usize::from(r.answered == 409);
        }
        received_before.extend(batch.iter().cloned());
        if applied_now {
            applied_before.extend(batch);
        }
    }
    eprintln!(
        "{kills} kills: {} points acknowledged, {} requests, {} distinct points applied on B, {duplicates} batches B answered as duplicates; after each crash, (batches sent again, of them applied twice, answered 204 as duplicates, answered 409 as overlapping): {per_crash:?}",
        acknowledged.len(),
        requests.len(),
        applied.len(),
    );
    for (crash, &(_, twice, _, _)) in per_crash.iter().enumerate() {
        assert!(
            twice <= 1,
            "crash {crash}: {twice} batches applied twice on B, more than one: {per_crash:?}"
        );
    }
}

/// A batch A sent, sent again with the same headers after A restarted (as a crash
/// between B's 204 and A's record of it has it), is answered 204 and not applied again,
/// B itself restarted in between: the origin a batch names survives A's restart, and
/// B's record of it survives B's.
#[test]
fn a_batch_resent_after_a_restart_is_not_applied_twice() {
    let dir = tempfile::tempdir().unwrap();
    let remote = FakeRemote::start(vec![]);
    let (d, a) = node(&dir);
    let rid = a.create_remote("b", &remote.url(), "t");
    a.create_replication(&rid, "copy", json!({}));
    assert_eq!(a.write(&lines("m", 0..300, BASE)).status, 204);
    let first = remote.wait_for_requests(1)[0].clone();
    assert!(d.stop().success());
    let d = Daemon::start(dir.path());
    let a = a.at(d.addr);
    assert_eq!(a.write(&lines("m", 300..600, BASE)).status, 204);
    let second = remote.wait_for_requests(2)[1].clone();
    let origin = |r: &fake_remote::Received| {
        let h = r.header("X-Shardkeeper-Batch").expect("a batch header");
        h.split(';').next().unwrap().to_owned()
    };
    assert_eq!(
        origin(&first),
        origin(&second),
        "the origin survives a restart"
    );
    assert_ne!(
        first.header("X-Shardkeeper-Batch"),
        second.header("X-Shardkeeper-Batch")
    );

    let b_dir = tempfile::tempdir().unwrap();
    let b_node = Daemon::start(b_dir.path());
    let b = V2::setup(b_node.addr, "copy");
    let resend = |b: &V2| {
        let auth = format!("Token {}", b.token);
        common::request(
            b.addr,
            "POST",
            "/api/v2/write?bucket=copy&precision=ns",
            &[
                ("Authorization", &auth),
                ("Content-Encoding", "gzip"),
                (
                    "X-Shardkeeper-Batch",
                    first.header("X-Shardkeeper-Batch").unwrap(),
                ),
            ],
            &first.raw,
        )
    };
    let r = resend(&b);
    assert_eq!(r.status, 204);
    assert_eq!(r.header("X-Shardkeeper-Batch-Outcome"), None);
    assert_eq!(b.count("m"), 300);
    assert_eq!(
        b.metric("shardkeeper_replication_inbound_batches_total{outcome=\"applied\"}"),
        1.0
    );
    b_node.kill9();
    let b_node = Daemon::start(b_dir.path());
    let b = b.at(b_node.addr);
    let r = resend(&b);
    assert_eq!(r.status, 204);
    assert_eq!(r.header("X-Shardkeeper-Batch-Outcome"), Some("duplicate"));
    assert_eq!(
        b.metric("shardkeeper_replication_inbound_batches_total{outcome=\"duplicate\"}"),
        1.0
    );
    assert_eq!(
        b.metric("shardkeeper_replication_inbound_batches_total{outcome=\"applied\"}"),
        0.0
    );
    assert_eq!(b.count("m"), 300);
}

/// The batch header is read only after the write is authorized, and what it records is
/// scoped by the user who wrote: made-up headers, from a caller without the right to
/// write or from another user, never make B skip the sender's own batch.
#[test]
fn made_up_batch_headers_cannot_suppress_another_users_writes() {
    let b_dir = tempfile::tempdir().unwrap();
    let b_node = Daemon::start_with_config(b_dir.path(), "auth_enabled = true\n");
    let b = V2::setup(b_node.addr, "copy");
    let owner = format!("Token {}", b.token);
    for statement in [
        "CREATE USER mallory WITH PASSWORD 'mallorypassword' WITH ALL PRIVILEGES",
        "CREATE USER nobody WITH PASSWORD 'nobodypassword'",
    ] {
        let r = common::query_as(b.addr, &owner, "", statement);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let header = "acme.0123456789abcdef;1-10;0";
    let write = |auth: Option<&str>, m: &str| {
        let body = lines(m, 0..100, BASE);
        let mut headers = vec![("X-Shardkeeper-Batch", header)];
        if let Some(auth) = auth {
            headers.push(("Authorization", auth));
        }
        common::request(
            b.addr,
            "POST",
            "/api/v2/write?bucket=copy&precision=ns",
            &headers,
            body.as_bytes(),
        )
    };
    // Without credentials, with a wrong token, without the right to write: refused
    // before the header is looked at.
    assert_eq!(write(None, "made_up").status, 401);
    assert_eq!(write(Some("Token not-a-token"), "made_up").status, 401);
    let nobody = common::basic("nobody", "nobodypassword");
    assert_eq!(write(Some(&nobody), "made_up").status, 403);
    // Another user that may write: its batch is its own.
    let mallory = common::basic("mallory", "mallorypassword");
    let r = write(Some(&mallory), "mallorys");
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    // The sender's batch with the same header is applied.
    let r = write(Some(&owner), "senders");
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("X-Shardkeeper-Batch-Outcome"), None);
    let count = |m: &str| {
        let r = common::query_as(b.addr, &owner, "copy", &format!("SELECT count(v) FROM {m}"));
        common::rows_of(&r)
            .first()
            .and_then(|row| row[1].as_u64())
            .unwrap_or(0)
    };
    assert_eq!(count("senders"), 100);
    assert_eq!(count("made_up"), 0);
    let metric = |outcome: &str| {
        let r = common::request(b.addr, "GET", "/metrics", &[("Authorization", &owner)], b"");
        let sample =
            format!("shardkeeper_replication_inbound_batches_total{{outcome=\"{outcome}\"}} ");
        String::from_utf8_lossy(&r.body)
            .lines()
            .find_map(|l| l.strip_prefix(&sample)?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert_eq!(metric("applied"), 2.0);
    assert_eq!(metric("duplicate"), 0.0);
    // Sent again by the same user, it is a duplicate.
    let r = write(Some(&owner), "senders");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("X-Shardkeeper-Batch-Outcome"), Some("duplicate"));
    assert_eq!(metric("duplicate"), 1.0);
    // A malformed header is a client's mistake.
    let r = common::request(
        b.addr,
        "POST",
        "/api/v2/write?bucket=copy&precision=ns",
        &[
            ("Authorization", &owner),
            ("X-Shardkeeper-Batch", "nonsense"),
        ],
        lines("m", 0..1, BASE).as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
}

/// The lines of each write the remote received, in order.
fn write_requests(remote: &FakeRemote) -> Vec<Vec<String>> {
    remote
        .received()
        .iter()
        .filter(|r| r.path == "/api/v2/write")
        .map(|r| {
            String::from_utf8_lossy(&r.body)
                .lines()
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

#[test]
fn a_restart_keeps_the_data_log_segments_a_queue_needs_and_resumes_delivery() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments, and heads written out as soon as a shard is idle: without the
    // queue's hold, the data log would drop the segments holding the queued points.
    let config = "idle_flush_seconds = 1\n[log]\nshard_segment_mib = 1\n";
    let d = Daemon::start_with_config(dir.path(), config);
    let a = V2::setup(d.addr, "metrics");
    let rid = a.create_remote("b", "http://127.0.0.1:1", "t");
    let id = a.create_replication(&rid, "copy", json!({}));
    let writes = 6;
    for w in 0..writes {
        assert_eq!(a.write(&incompressible(w, 5_000)).status, 204);
    }
    wait_until("the heads to be written out", || {
        common::shard_dirs(dir.path())
            .iter()
            .any(|s| !common::files_with_extension(s, "col").is_empty())
    });
    let queued = a.replication(&id)["currentQueueSizeBytes"]
        .as_u64()
        .unwrap();
    assert!(d.stop().success());
    let d = Daemon::start_with_config(dir.path(), config);
    let a = a.at(d.addr);
    // Counted again from the data log at start-up: the same bytes.
    assert_eq!(
        a.replication(&id)["currentQueueSizeBytes"]
            .as_u64()
            .unwrap(),
        queued
    );
    let remote = FakeRemote::start(vec![]);
    repoint(&a, &rid, &remote.url());
    wait_until("the queue to drain", || {
        a.replication(&id)["currentQueueSizeBytes"] == 0
    });
    let got = received_lines(&remote);
    let distinct: std::collections::BTreeSet<&String> = got.iter().collect();
    assert_eq!(distinct.len() as u64, writes * 5_000);
}

/// The must-show "every point written to A reaches B with identical values", by the
/// `bench replication --verify` that the README's figures come from (1M points there):
/// every point read back from both nodes and compared value by value, for a live
/// replication and for a full queue drained into a fresh remote.
#[test]
fn bench_replication_verifies_every_value_on_the_remote() {
    let out = std::process::Command::new(common::BIN)
        .args([
            "bench",
            "replication",
            "--points",
            "30000",
            "--lag-seconds",
            "2",
            "--verify",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let verify = report["verify"].as_array().unwrap();
    assert_eq!(verify.len(), 2, "{report}");
    for v in verify {
        assert_eq!(v["identical"], true, "{v}");
        assert_eq!(v["points_on_source"], 30000, "{v}");
        assert_eq!(v["points_on_remote"], 30000, "{v}");
        // The workload's ten fields of every point.
        assert_eq!(v["values_compared"], 300000, "{v}");
    }
    assert!(
        report["lag"]["lag_ms_p99"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(report["drain_points_per_s"].as_f64().unwrap() > 0.0);
}

/// `replication_gzip_level`: 0 sends gzip's stored blocks (larger than the lines), the
/// default level 1 compresses; a level past 9 is refused at start-up.
#[test]
fn replication_gzip_level_sets_how_batches_are_compressed() {
    let body = lines("m", 0..1000, BASE);
    for (config, stored) in [("replication_gzip_level = 0\n", true), ("", false)] {
        let dir = tempfile::tempdir().unwrap();
        let d = Daemon::start_with_config(dir.path(), config);
        let a = V2::setup(d.addr, "metrics");
        let remote = FakeRemote::start(vec![]);
        let rid = a.create_remote("b", &remote.url(), "t");
        a.create_replication(&rid, "copy", json!({}));
        assert_eq!(a.write(&body).status, 204);
        let got = remote.wait_for_requests(1);
        assert_eq!(got[0].header("Content-Encoding"), Some("gzip"));
        assert_eq!(got[0].body, body.as_bytes(), "{config}");
        match stored {
            true => assert!(got[0].wire_bytes > body.len(), "{}", got[0].wire_bytes),
            false => assert!(got[0].wire_bytes < body.len() / 3, "{}", got[0].wire_bytes),
        }
        drop(d);
    }
    let dir = tempfile::tempdir().unwrap();
    let refused = Daemon::try_start_with(dir.path(), Some("replication_gzip_level = 10\n"));
    let message = refused.err().expect("level 10 refused");
    assert!(
        message.contains("replication_gzip_level must be 0 to 9"),
        "{message}"
    );
}

/// `replication_nice`: the senders' threads (named `replication`) run that many nice steps
/// below the node's (at most nice 19), 10 unless set; a value past 19 is refused.
#[test]
fn replication_senders_run_replication_nice_steps_below_the_node() {
    // A thread's name and nice value (field 19) from its stat.
    let nice = |stat: &str| -> Option<(String, i32)> {
        let (head, rest) = stat.rsplit_once(") ")?;
        let name = head.split_once(" (")?.1.to_owned();
        Some((name, rest.split(' ').nth(16)?.parse().ok()?))
    };
    let senders_of = |pid: u32| -> Vec<i32> {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(|t| nice(&std::fs::read_to_string(t.ok()?.path().join("stat")).ok()?))
            .filter(|(name, _)| name == "replication")
            .map(|(_, n)| n)
            .collect()
    };
    for (config, steps) in [
        ("", 10),
        ("replication_nice = 0\n", 0),
        ("replication_nice = 7\n", 7),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = Daemon::start_with_config(dir.path(), config);
        let pid = d.child.id();
        let (_, node) = nice(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap())
            .expect("the node's stat");
        let want = (node + steps).min(19);
        // A thread names itself and sets its priority once it first runs.
        wait_until(
            &format!("{config:?}: replication threads at nice {want}"),
            || {
                let senders = senders_of(pid);
                !senders.is_empty() && senders.iter().all(|&n| n == want)
            },
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let refused = Daemon::try_start_with(dir.path(), Some("replication_nice = 20\n"));
    let message = refused.err().expect("20 refused");
    assert!(
        message.contains("replication_nice must be 0 to 19"),
        "{message}"
    );
}
