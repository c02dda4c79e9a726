//! What replication tests do through a node's v2 API: set the node up, create remotes and
//! replications, read their status and metrics, write lines, and read back what a remote
//! (fake or real) received.

use super::fake_remote::FakeRemote;
use super::{request, Response};
use serde_json::{json, Value};
use std::net::SocketAddr;

/// A node set up through `/api/v2/setup`: its operator token, organization and bucket.
#[derive(Debug, Clone)]
pub struct V2 {
    pub addr: SocketAddr,
    pub token: String,
    pub org_id: String,
    pub bucket_id: String,
    pub bucket: String,
}

impl V2 {
    /// Sets the node up with organization `acme` and bucket `bucket`.
    pub fn setup(addr: SocketAddr, bucket: &str) -> V2 {
        let body = json!({"username": "owner", "password": "ownerpassword", "org": "acme", "bucket": bucket});
        let r = request(
            addr,
            "POST",
            "/api/v2/setup",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        V2 {
            addr,
            token: v["auth"]["token"].as_str().unwrap().to_owned(),
            org_id: v["org"]["id"].as_str().unwrap().to_owned(),
            bucket_id: v["bucket"]["id"].as_str().unwrap().to_owned(),
            bucket: bucket.to_owned(),
        }
    }

    /// The same node after a restart (a new address, the same objects).
    pub fn at(&self, addr: SocketAddr) -> V2 {
        V2 {
            addr,
            ..self.clone()
        }
    }

    /// A request with the operator's token and a JSON body (if any).
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> Response {
        let auth = format!("Token {}", self.token);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        request(
            self.addr,
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    }

    /// Creates a remote at `url` with `remote_token`; its id.
    pub fn create_remote(&self, name: &str, url: &str, remote_token: &str) -> String {
        let r = self.api(
            "POST",
            "/api/v2/remotes",
            Some(json!({"orgID": self.org_id, "name": name, "remoteURL": url, "remoteAPIToken": remote_token, "remoteOrgID": "remote-org"})),
        );
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        r.json()["id"].as_str().unwrap().to_owned()
    }

    /// Creates a replication of the node's bucket to `remote_bucket` of `remote`, with
    /// `extra` fields merged into the request; its id.
    pub fn create_replication(&self, remote: &str, remote_bucket: &str, extra: Value) -> String {
        let mut body = json!({"orgID": self.org_id, "name": format!("to-{remote_bucket}"), "remoteID": remote, "localBucketID": self.bucket_id, "remoteBucketName": remote_bucket});
        if let Value::Object(extra) = extra {
            for (k, v) in extra {
                body[k] = v;
            }
        }
        let r = self.api("POST", "/api/v2/replications", Some(body));
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        r.json()["id"].as_str().unwrap().to_owned()
    }

    /// The replication as `GET /api/v2/replications/{id}` answers it.
    pub fn replication(&self, id: &str) -> Value {
        let r = self.api("GET", &format!("/api/v2/replications/{id}"), None);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    /// Writes line protocol to the node's bucket (nanoseconds).
    pub fn write(&self, lines: &str) -> Response {
        self.try_write(lines).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`V2::write`] to a node that may be gone (killed on purpose).
    pub fn try_write(&self, lines: &str) -> Result<Response, String> {
        let auth = format!("Token {}", self.token);
        super::try_request(
            self.addr,
            "POST",
            &format!("/api/v2/write?org=acme&bucket={}&precision=ns", self.bucket),
            &[("Authorization", &auth)],
            lines.as_bytes(),
        )
    }

    /// The value of a `/metrics` sample (its name and labels as rendered), 0 if absent.
    pub fn metric(&self, sample: &str) -> f64 {
        let r = self.api("GET", "/metrics", None);
        assert_eq!(r.status, 200);
        String::from_utf8_lossy(&r.body)
            .lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// Points of `measurement` in the node's bucket (`count(v)`).
    pub fn count(&self, measurement: &str) -> u64 {
        let r = super::query(
            self.addr,
            &self.bucket,
            &format!("SELECT count(v) FROM {measurement}"),
        );
        let rows = super::rows_of(&r);
        rows.first().and_then(|row| row[1].as_u64()).unwrap_or(0)
    }
}

/// Lines `n0..n1` of measurement `m`, one field `v` (the point's number), at nanosecond
/// times from `base`.
pub fn lines(m: &str, range: std::ops::Range<u64>, base: i64) -> String {
    range
        .map(|i| format!("{m},host=h{} v={i}i {}\n", i % 7, base + i as i64))
        .collect()
}

/// Every line the fake remote received in writes to `/api/v2/write`, in order.
pub fn received_lines(remote: &FakeRemote) -> Vec<String> {
    remote
        .received()
        .iter()
        .filter(|r| r.path == "/api/v2/write")
        .flat_map(|r| {
            String::from_utf8_lossy(&r.body)
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}
