#!/usr/bin/env python3
"""Figures for the README's many-shards table: influxd 1.x and shardkeeper, one after the
other in each run, on fresh data directories, given the same workload: a database whose
retention policy has hourly shard groups, and 10 series with one point an hour over
SHARDS hours (so SHARDS shards), written in batches of 1,000 lines.

    benches/shards_figures.py [SHARDS=2000] [RUNS=1]

Per server: the time to write the batches; threads, RSS and allocated disk after them;
the time from start to a /ping answer after a kill -9 right after the writes, and after
a clean stop; RSS after that restart. Every restart is checked to read back every point.
Needs influxd on PATH (Debian's `influxdb`) and the shardkeeper binary (target/release,
or $SHARDKEEPER).
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
    return threads, rss


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


def batches(shards):
    lines = [
        f"m,s=s{s} v={h * SERIES + s}i {START + h * HOUR + s}"
        for h in range(shards)
        for s in range(SERIES)
    ]
    for i in range(0, len(lines), 1000):
        yield "\n".join(lines[i : i + 1000]).encode()


def check_points(server, shards):
    r = query(server.port, "SELECT count(v) FROM d.hourly.m")
    got = r["series"][0]["values"][0][1]
    assert got == shards * SERIES, f"{server.name}: {got} points read back"


def measure(server, shards):
    f = {}
    server.start()
    query(server.port, "CREATE DATABASE d WITH DURATION 0s REPLICATION 1 SHARD DURATION 1h NAME hourly")
    bodies = list(batches(shards))
    start = time.monotonic()
    for body in bodies:
        status, data = call(server.port, "POST", "/write?db=d&rp=hourly", body)
        assert status == 204, data
    f["write_s"] = time.monotonic() - start
    f["threads"], f["rss"] = proc_figures(server.proc.pid)
    f["disk"] = allocated(server.data)
    server.stop(signal.SIGKILL)
    f["restart_kill9_s"] = server.start()
    check_points(server, shards)
    server.stop(signal.SIGTERM)
    f["restart_clean_s"] = server.start()
    f["threads_after"], f["rss_after"] = proc_figures(server.proc.pid)
    check_points(server, shards)
    server.stop(signal.SIGTERM)
    return f


def main():
    shards = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    for run in range(1, runs + 1):
        with tempfile.TemporaryDirectory() as work:
            i = measure(Influxd(work, 19086), shards)
            k = measure(Shardkeeper(work, 29086), shards)
        print(f"run {run}, {shards} hourly shards, {shards * SERIES} points:")
        rows = [
            ("threads after the writes", "threads", lambda v: f"{v}"),
            ("disk after the writes (MB)", "disk", lambda v: f"{v / 1e6:.1f}"),
            ("RSS after the writes (MB)", "rss", lambda v: f"{v / 1e6:.0f}"),
            ("writing the batches (s)", "write_s", lambda v: f"{v:.2f}"),
            ("restart to /ping after kill -9 (s)", "restart_kill9_s", lambda v: f"{v:.2f}"),
            ("restart to /ping after a clean stop (s)", "restart_clean_s", lambda v: f"{v:.2f}"),
            ("RSS after the restart (MB)", "rss_after", lambda v: f"{v / 1e6:.0f}"),
        ]
        print("| | influxd | shardkeeper | ratio |")
        print("|---|---|---|---|")
        for label, key, fmt in rows:
            ratio = k[key] / i[key] if i[key] else float("nan")
            print(f"| {label} | {fmt(i[key])} | {fmt(k[key])} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
