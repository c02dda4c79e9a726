#!/usr/bin/env python3
"""Figures for the README's replication table: what one replication costs a node's
ingest, and how fast a queue drains into another node.

    benches/replication_figures.py [POINTS=1000000] [PAIRS=3]

Each pair (order flipped every pair): `bench ingest` (POINTS, 4 connections) against a
fresh node A without a replication, and against a fresh node A with one replication of
the bench's bucket to a live node B. Then, PAIRS times: A takes POINTS with its remote
down (the queue fills), the remote is repointed to a fresh B and the queue's drain is
timed (points/s delivered); and `bench ingest` of POINTS straight into a fresh B, for
the ratio. Needs the shardkeeper binary (target/release, or $SHARDKEEPER).
"""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get(
    "SHARDKEEPER",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "shardkeeper"),
)


def call(port, method, path, body=None, token=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = c.getresponse()
    data = r.read()
    return r.status, (json.loads(data) if data else None)


class Node:
    def __init__(self, root, name, bucket):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.p = subprocess.Popen(
            [BIN, "serve", "--bind", "127.0.0.1:0", "--data-dir", self.dir],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line = self.p.stdout.readline()
        self.port = int(line.split("http://")[1].split()[0].rsplit(":", 1)[1])
        self.url = f"http://127.0.0.1:{self.port}"
        status, s = call(self.port, "POST", "/api/v2/setup",
                         {"username": "owner", "password": "ownerpassword", "org": "acme", "bucket": bucket})
        assert status == 201, s
        self.token, self.org, self.bucket = s["auth"]["token"], s["org"]["id"], s["bucket"]["id"]

    def replicate_to(self, url, token):
        status, r = call(self.port, "POST", "/api/v2/remotes",
                         {"orgID": self.org, "name": "b", "remoteURL": url, "remoteAPIToken": token}, self.token)
        assert status == 201, r
        self.remote = r["id"]
        status, rep = call(self.port, "POST", "/api/v2/replications",
                           {"orgID": self.org, "name": "to-b", "remoteID": self.remote, "localBucketID": self.bucket,
                            "remoteBucketName": "copy", "maxQueueSizeBytes": 1 << 31}, self.token)
        assert status == 201, rep
        self.replication = rep["id"]

    def queued(self):
        return call(self.port, "GET", f"/api/v2/replications/{self.replication}", token=self.token)[1]["currentQueueSizeBytes"]

    def stop(self):
        self.p.kill()
        self.p.wait()


def ingest(url, points, token):
    out = subprocess.run([BIN, "bench", "ingest", "--url", url, "--points", str(points)],
                         capture_output=True, text=True, check=True, env={**os.environ, "SHARDKEEPER_TOKEN": token})
    return json.loads(out.stdout)["points_per_s"]


def main():
    points = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    without, with_one, drain, direct = [], [], [], []
    with tempfile.TemporaryDirectory() as root:
        n = 0

        def fresh(bucket):
            nonlocal n
            n += 1
            return Node(root, f"node-{n}", bucket)

        for pair in range(pairs):
            for replicated in ([False, True] if pair % 2 == 0 else [True, False]):
                a = fresh("benchmark")
                b = None
                if replicated:
                    b = fresh("copy")
                    a.replicate_to(b.url, b.token)
                (with_one if replicated else without).append(ingest(a.url, points, a.token))
                if b:
                    deadline = time.time() + 600
                    while a.queued() > 0 and time.time() < deadline:
                        time.sleep(0.05)
                    b.stop()
                a.stop()
        for _ in range(pairs):
            a = fresh("benchmark")
            a.replicate_to("http://127.0.0.1:1", "t")
            ingest(a.url, points, a.token)
            b = fresh("copy")
            started = time.time()
            status, _ = call(a.port, "PATCH", f"/api/v2/remotes/{a.remote}",
                             {"remoteURL": b.url, "remoteAPIToken": b.token}, a.token)
            assert status == 200
            while a.queued() > 0:
                time.sleep(0.02)
            drain.append(points / (time.time() - started))
            a.stop()
            b.stop()
            b2 = fresh("copy")
            direct.append(ingest(b2.url, points, b2.token))
            b2.stop()
    med = lambda xs: sorted(xs)[len(xs) // 2]
    print(json.dumps({
        "points": points,
        "ingest_without_replication": without,
        "ingest_with_one_replication": with_one,
        "ingest_ratio_median": med(with_one) / med(without),
        "drain_points_per_sec": drain,
        "direct_ingest_b": direct,
        "drain_ratio_median": med(drain) / med(direct),
    }, indent=1))


main()
