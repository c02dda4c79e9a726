//! The client (`shardkeeper::client`) against a real node, a scripted fake remote and a
//! fault-injecting proxy; and the multi-node test support itself.

mod common;
use common::fake_remote::{Answer, FakeRemote};
use common::fault_proxy::FaultProxy;
use common::nodes::Nodes;
use common::Daemon;
use shardkeeper::client::{
    ClientError, ClientOptions, Credentials, InfluxClient, Retry, WriteTarget,
};
use shardkeeper::line_protocol::Precision;
use std::time::Duration;

fn client(url: &str) -> InfluxClient {
    InfluxClient::new(url, ClientOptions::default()).expect("client")
}

fn v1(db: &str) -> WriteTarget<'_> {
    WriteTarget::V1 { db, rp: None }
}

/// The values of the first series of a query's first statement.
async fn rows(client: &InfluxClient, db: &str, q: &str) -> Vec<Vec<serde_json::Value>> {
    let answer = client.query_checked(Some(db), q).await.expect("query");
    answer.results[0]
        .series
        .first()
        .map(|s| s.values.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn writes_gzip_queries_and_pings_a_real_node() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    let client = client(&format!("http://{}", daemon.addr));

    let pong = client.ping().await.expect("ping");
    assert!(pong.version.is_some(), "{pong:?}");

    client
        .query_checked(None, "CREATE DATABASE metrics")
        .await
        .expect("create database");
    client
        .write(
            v1("metrics"),
            Precision::Seconds,
            b"cpu,host=a usage=1.5 1700000000\ncpu,host=b usage=2.5 1700000000\n",
        )
        .await
        .expect("v1 write");
    client
        .write(
            WriteTarget::V2 {
                org: "any",
                bucket: "metrics",
            },
            Precision::Milliseconds,
            b"cpu,host=c usage=3.5 1700000001000\n",
        )
        .await
        .expect("v2 write");

    let got = rows(&client, "metrics", "SELECT host, usage FROM cpu").await;
    assert_eq!(
        got,
        vec![
            serde_json::json!(["2023-11-14T22:13:20Z", "a", 1.5]),
            serde_json::json!(["2023-11-14T22:13:20Z", "b", 2.5]),
            serde_json::json!(["2023-11-14T22:13:21Z", "c", 3.5]),
        ]
        .into_iter()
        .map(|v| v.as_array().unwrap().clone())
        .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_real_nodes_refusals_come_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    let client = client(&format!("http://{}", daemon.addr));
    client
        .query_checked(None, "CREATE DATABASE metrics")
        .await
        .expect("create database");

    let e = client
        .write(v1("metrics"), Precision::Nanoseconds, b"cpu usage=\n")
        .await
        .expect_err("a line without a field value");
    assert_eq!(e.status(), Some(400), "{e}");
    assert_eq!(e.retry(), Retry::Never);
    let ClientError::Status { message, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(message.contains("unable to parse"), "{message}");

    // A statement that fails inside a 200 answer is surfaced, not read as no rows.
    let answer = client
        .query(Some("nowhere"), "SELECT * FROM cpu")
        .await
        .expect("the request itself succeeds");
    let e = answer.first_error("u").expect("the statement failed");
    assert!(e.to_string().contains("database not found"), "{e}");
    assert!(client
        .query_checked(Some("nowhere"), "SELECT * FROM cpu")
        .await
        .is_err());
}

#[tokio::test]
async fn the_fake_remote_sees_gzip_writes_and_its_503_asks_for_a_delay() {
    let remote = FakeRemote::start(vec![
        Answer::error(503, "too busy").header("Retry-After", "7"),
        Answer::error(503, "too busy"),
        Answer::error(400, "partial write: field type conflict"),
    ]);
    let client = InfluxClient::new(
        &remote.url(),
        ClientOptions {
            credentials: Credentials::Token("secret-token".into()),
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let lines = b"m,t=1 v=1 1\nm,t=2 v=2 2\n";
    let write = || {
        client.write(
            WriteTarget::V1 {
                db: "db one",
                rp: Some("week"),
            },
            Precision::Nanoseconds,
            lines,
        )
    };

    let e = write().await.expect_err("503");
    assert_eq!(e.retry(), Retry::After(Duration::from_secs(7)), "{e}");
    let e = write().await.expect_err("503 without a delay");
    assert_eq!(e.retry(), Retry::Backoff, "{e}");
    let e = write().await.expect_err("400");
    assert_eq!(e.retry(), Retry::Never);
    assert_eq!(
        e.to_string(),
        format!(
            "{}/write: HTTP 400: partial write: field type conflict",
            remote.url()
        )
    );
    write().await.expect("the script's end: 204");

    let received = remote.received();
    assert_eq!(received.len(), 4);
    for r in &received {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/write"));
        assert_eq!(r.param("db"), Some("db one"));
        assert_eq!(r.param("rp"), Some("week"));
        assert_eq!(r.header("Content-Encoding"), Some("gzip"));
        assert_eq!(r.header("Authorization"), Some("Token secret-token"));
        assert_eq!(r.body, lines);
    }
}

#[tokio::test]
async fn basic_credentials_and_v2_targets_reach_the_remote() {
    let remote = FakeRemote::start(vec![]);
    let client = InfluxClient::new(
        &remote.url(),
        ClientOptions {
            credentials: Credentials::Basic {
                user: "ann".into(),
                password: "pw".into(),
            },
            gzip_writes: false,
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let target = WriteTarget::V2 {
        org: "o",
        bucket: "b/rp",
    };
    client
        .write(target, Precision::Seconds, b"m v=1 1\n")
        .await
        .unwrap();
    let e = client
        .write(target, Precision::Hours, b"m v=1 1\n")
        .await
        .expect_err("2.x has no hours");
    assert_eq!(e.retry(), Retry::Never);

    let r = &remote.received()[0];
    assert_eq!(r.path, "/api/v2/write");
    assert_eq!(
        r.query,
        [("org", "o"), ("bucket", "b/rp"), ("precision", "s")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    assert_eq!(r.header("Authorization"), Some("Basic YW5uOnB3"));
    assert_eq!(r.header("Content-Encoding"), None);
    assert_eq!(r.body, b"m v=1 1\n");
    assert_eq!(remote.received().len(), 1, "a refused request is not sent");
}

#[tokio::test]
async fn a_write_through_the_proxy_reaches_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    let proxy = FaultProxy::start(daemon.addr);
    let client = client(&proxy.url());
    client
        .query_checked(None, "CREATE DATABASE metrics")
        .await
        .unwrap();
    client
        .write(
            v1("metrics"),
            Precision::Seconds,
            b"cpu usage=7 1700000000\n",
        )
        .await
        .unwrap();
    let got = rows(&client, "metrics", "SELECT usage FROM cpu").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0][1], 7.0);
    assert!(proxy.connections_accepted() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_is_a_retryable_transport_error() {
    let remote = FakeRemote::start(vec![Answer::never()]);
    let proxy = FaultProxy::start(remote.addr);
    let client = client(&proxy.url());
    let write = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .write(v1("db"), Precision::Nanoseconds, b"m v=1 1\n")
                .await
        }
    });
    // The request is in the remote's hands, its answer pending: now the link breaks.
    let remote_ref = &remote;
    tokio::task::block_in_place(|| remote_ref.wait_for_requests(1));
    assert_eq!(proxy.cut_live_connections(), 1);
    let e = write.await.unwrap().expect_err("the connection was cut");
    assert!(matches!(e, ClientError::Transport { .. }), "{e:?}");
    assert_eq!(e.retry(), Retry::Backoff);

    // The same client goes on once the link is back.
    client
        .write(v1("db"), Precision::Nanoseconds, b"m v=1 2\n")
        .await
        .expect("a write after the cut");
    assert_eq!(remote.received().len(), 2);
}

#[tokio::test]
async fn refused_and_stalled_connections_are_retryable_transport_errors() {
    let remote = FakeRemote::start(vec![]);
    let proxy = FaultProxy::start(remote.addr);
    let client = InfluxClient::new(
        &proxy.url(),
        ClientOptions {
            read_timeout: Duration::from_millis(300),
            ..ClientOptions::default()
        },
    )
    .unwrap();

    proxy.refuse_new_connections(true);
    let e = client.ping().await.expect_err("refused");
    assert!(matches!(e, ClientError::Transport { .. }), "{e:?}");
    assert_eq!(e.retry(), Retry::Backoff);
    assert!(remote.received().is_empty());

    proxy.refuse_new_connections(false);
    client.ping().await.expect("forwarded again");

    // Far longer than the client waits for an answer: it gives up, with a timeout.
    proxy.set_delay(Duration::from_secs(600));
    let stalled = InfluxClient::new(
        &proxy.url(),
        ClientOptions {
            read_timeout: Duration::from_millis(300),
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let e = stalled.ping().await.expect_err("stalled");
    assert!(
        matches!(e, ClientError::Transport { timeout: true, .. }),
        "{e:?}"
    );
    assert_eq!(e.retry(), Retry::Backoff);
}

#[tokio::test]
async fn nodes_start_side_by_side_each_with_its_own_config_and_data() {
    let nodes = Nodes::start(&["", "auth_enabled = true\n", ""]);
    assert_eq!(nodes.nodes.len(), 3);
    let (first, third) = (client(&nodes.url(0)), client(&nodes.url(2)));
    for c in [&first, &third] {
        c.query_checked(None, "CREATE DATABASE metrics")
            .await
            .unwrap();
    }
    first
        .write(
            v1("metrics"),
            Precision::Seconds,
            b"cpu usage=1 1700000000\n",
        )
        .await
        .unwrap();
    assert_eq!(
        rows(&first, "metrics", "SELECT usage FROM cpu").await.len(),
        1
    );
    assert!(rows(&third, "metrics", "SELECT usage FROM cpu")
        .await
        .is_empty());

    // Only the second was started with authentication (and has no admin yet).
    let e = client(&nodes.url(1))
        .query(None, "SHOW DATABASES")
        .await
        .expect_err("no credentials");
    assert_eq!(e.status(), Some(403), "{e}");
    assert!(e.to_string().contains("create admin user first"), "{e}");
    assert_eq!(e.retry(), Retry::Never);
}
