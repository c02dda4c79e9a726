#!/usr/bin/env python3
"""Figures for the README's tables of a node's cost: influxd 1.x and shardkeeper, one after
the other in each run, on fresh data directories, given the same workload.

    benches/node_figures.py shards [SHARDS=2000] [RUNS=1]
    benches/node_figures.py series [SERIES=1000000] [RUNS=1] [--shardkeeper-only]

shards: a database whose retention policy has hourly shard groups, and 10 series with one
point an hour over SHARDS hours (so SHARDS shards), written in batches of 1,000 lines.
series: SERIES series of one point each (`m,host=h<i>,region=r<i%10> v=<i>i`), in batches
of 10,000 lines on 4 connections (influxd with its in-memory index and no series limits).

Per server: the time to write the batches; threads, RSS, peak RSS and allocated disk after
them; the time from start to a /ping answer after a kill -9 right after the writes, and
after a clean stop; RSS after that restart. Every restart is checked to read back every
point. Needs influxd on PATH (Debian's `influxdb`) and the shardkeeper binary
(target/release, or $SHARDKEEPER).
"""
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

HOUR = 3_600_000_000_000
START = 1_699_999_200_000_000_000
SERIES = 10
BIN = os.environ.get(
    "SHARDKEEPER",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "shardkeeper"),
)


def call(port, method, path, body=b""):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request(method, path, body)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def query(port, q, db=""):
    status, data = call(port, "POST", "/query?" + urllib.parse.urlencode({"q": q, "db": db}))
    assert status == 200, data
    result = json.loads(data)["results"][0]
    assert "error" not in result, result
    return result


def wait_ping(port, proc):
    start = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"server on {port} exited: {proc.returncode}")
        try:
            if call(port, "GET", "/ping")[0] == 204:
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.01)


def proc_figures(pid):
    threads = len(os.listdir(f"/proc/{pid}/task"))
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f)
    rss = int(status["VmRSS"].split()[0]) * 1024
    peak = int(status["VmHWM"].split()[0]) * 1024
    return threads, rss, peak


def allocated(path):
    out = subprocess.run(["du", "-sB1", path], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


class Server:
    def __init__(self, name, work, port):
        self.name, self.work, self.port = name, work, port
        self.proc = None

    def start(self):
        log = open(os.path.join(self.work, f"{self.name}.log"), "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log)
        return wait_ping(self.port, self.proc)

    def stop(self, sig):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=600)


class Influxd(Server):
    def __init__(self, work, port):
        super().__init__("influxd", work, port)
        self.data = os.path.join(work, "influxd")
        self.conf = os.path.join(work, "influxd.conf")
        with open(self.conf, "w") as f:
            f.write(f"""reporting-disabled = true
bind-address = "127.0.0.1:{port + 2}"
[meta]
  dir = "{self.data}/meta"
[data]
  dir = "{self.data}/data"
  wal-dir = "{self.data}/wal"
  index-version = "inmem"
  query-log-enabled = false
  max-series-per-database = 0
  max-values-per-tag = 0
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[monitor]
  store-enabled = false
""")

    def command(self):
        return ["influxd", "-config", self.conf]


class Shardkeeper(Server):
    def __init__(self, work, port):
        super().__init__("shardkeeper", work, port)
        self.data = os.path.join(work, "sk")

    def command(self):
        return [BIN, "serve", "--bind", f"127.0.0.1:{self.port}", "--data-dir", self.data]


class Shards:
    """SHARDS hourly shards, 10 series each with one point."""

    def __init__(self, shards):
        self.shards = shards
        self.points = shards * SERIES
        self.connections = 1
        self.measurement = "d.hourly.m"

    def setup(self, port):
        query(port, "CREATE DATABASE d WITH DURATION 0s REPLICATION 1 SHARD DURATION 1h NAME hourly")
        self.path = "/write?db=d&rp=hourly"

    def batches(self):
        lines = [
            f"m,s=s{s} v={h * SERIES + s}i {START + h * HOUR + s}"
            for h in range(self.shards)
            for s in range(SERIES)
        ]
        return ["\n".join(lines[i : i + 1000]).encode() for i in range(0, len(lines), 1000)]


class Series:
    """SERIES series of one point each, in one shard."""

    def __init__(self, series):
        self.points = series
        self.connections = 4
        self.measurement = "d.autogen.m"

    def setup(self, port):
        query(port, "CREATE DATABASE d")
        self.path = "/write?db=d"

    def batches(self):
        out = []
        for start in range(0, self.points, 10_000):
            lines = (
                f"m,host=h{i},region=r{i % 10} v={i}i {START + i}"
                for i in range(start, min(start + 10_000, self.points))
            )
            out.append("\n".join(lines).encode())
        return out


def check_points(server, workload):
    r = query(server.port, f"SELECT count(v) FROM {workload.measurement}")
    got = r["series"][0]["values"][0][1]
    assert got == workload.points, f"{server.name}: {got} points read back"


def measure(server, workload):
    f = {}
    server.start()
    workload.setup(server.port)
    bodies = workload.batches()

    def send(body):
        status, data = call(server.port, "POST", workload.path, body)
        assert status == 204, data

    start = time.monotonic()
    with ThreadPoolExecutor(workload.connections) as pool:
        list(pool.map(send, bodies))
    f["write_s"] = time.monotonic() - start
    f["threads"], f["rss"], f["peak_rss"] = proc_figures(server.proc.pid)
    f["disk"] = allocated(server.data)
    server.stop(signal.SIGKILL)
    f["restart_kill9_s"] = server.start()
    check_points(server, workload)
    server.stop(signal.SIGTERM)
    f["restart_clean_s"] = server.start()
    f["threads_after"], f["rss_after"], _ = proc_figures(server.proc.pid)
    check_points(server, workload)
    server.stop(signal.SIGTERM)
    return f


ROWS = [
    ("threads after the writes", "threads", lambda v: f"{v}"),
    ("disk after the writes (MB)", "disk", lambda v: f"{v / 1e6:.1f}"),
    ("RSS after the writes (MB)", "rss", lambda v: f"{v / 1e6:.0f}"),
    ("peak RSS (MB)", "peak_rss", lambda v: f"{v / 1e6:.0f}"),
    ("writing the batches (s)", "write_s", lambda v: f"{v:.2f}"),
    ("restart to /ping after kill -9 (s)", "restart_kill9_s", lambda v: f"{v:.2f}"),
    ("restart to /ping after a clean stop (s)", "restart_clean_s", lambda v: f"{v:.2f}"),
    ("RSS after the restart (MB)", "rss_after", lambda v: f"{v / 1e6:.0f}"),
]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    alone = "--shardkeeper-only" in sys.argv
    kind = args[0] if args else "shards"
    n = int(args[1]) if len(args) > 1 else (2000 if kind == "shards" else 1_000_000)
    runs = int(args[2]) if len(args) > 2 else 1
    for run in range(1, runs + 1):
        workload = Shards(n) if kind == "shards" else Series(n)
        with tempfile.TemporaryDirectory() as work:
            i = None if alone else measure(Influxd(work, 19086), workload)
            k = measure(Shardkeeper(work, 29086), workload)
        print(f"run {run}, {kind} {n}, {workload.points} points:")
        if alone:
            print("| | shardkeeper |\n|---|---|")
            for label, key, fmt in ROWS:
                print(f"| {label} | {fmt(k[key])} |")
            continue
        print("| | influxd | shardkeeper | ratio |")
        print("|---|---|---|---|")
        for label, key, fmt in ROWS:
            ratio = k[key] / i[key] if i[key] else float("nan")
            print(f"| {label} | {fmt(i[key])} | {fmt(k[key])} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
