#!/usr/bin/env bash
# Figures for the README's ingest section: influxd 1.x and shardkeeper, one after the other
# in each run, each on a fresh data directory, fed the same `bench ingest` workload.
#   benches/ingest_figures.sh [POINTS=1000000] [RUNS=3]
# Needs influxd on PATH (Debian's `influxdb`), curl, python3, and the shardkeeper binary
# (target/release, or $SHARDKEEPER). Prints a line per run: points/s, batch latency
# p50/p99, their ratio, allocated bytes on disk (`du -sB1`) right after the run and 16 s
# later (after shardkeeper's idle flush), and shardkeeper's CPU seconds and peak RSS.
set -euo pipefail
points=${1:-1000000} runs=${2:-3}
bin=${SHARDKEEPER:-$(dirname "$0")/../target/release/shardkeeper}
influx_port=19086 sk_port=29086
wait_ping() { for _ in $(seq 200); do curl -sf "127.0.0.1:$1/ping" && return; sleep 0.05; done; echo "no /ping on $1" >&2; exit 1; }
allocated() { du -sB1 "$@" | awk '{s += $1} END {print s}'; }
for run in $(seq "$runs"); do
  work=$(mktemp -d)
  cat > "$work/influxd.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:18088"
[meta]
  dir = "$work/influxd/meta"
[data]
  dir = "$work/influxd/data"
  wal-dir = "$work/influxd/wal"
  index-version = "inmem"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$influx_port"
  log-enabled = false
[monitor]
  store-enabled = false
CONF
  influxd -config "$work/influxd.conf" > "$work/influxd.log" 2>&1 &
  pid=$!
  wait_ping $influx_port
  influx=$("$bin" bench ingest --url "http://127.0.0.1:$influx_port" --points "$points")
  influx_disk=$(allocated "$work/influxd/data" "$work/influxd/wal")
  sleep 16
  influx_idle=$(allocated "$work/influxd/data" "$work/influxd/wal")
  kill $pid; wait $pid 2>/dev/null || true

  "$bin" serve --bind "127.0.0.1:$sk_port" --data-dir "$work/sk" > "$work/sk.log" 2>&1 &
  pid=$!
  wait_ping $sk_port
  cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  sk=$("$bin" bench ingest --url "http://127.0.0.1:$sk_port" --points "$points")
  cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  sk_disk=$(allocated "$work/sk")
  peak=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  sleep 16
  sk_idle=$(allocated "$work/sk")
  kill $pid; wait $pid 2>/dev/null || true
  rm -rf "$work"
  python3 - "$run" "$influx" "$sk" "$influx_disk" "$sk_disk" "$influx_idle" "$sk_idle" \
    "$((cpu1 - cpu0))" "$peak" "$(getconf CLK_TCK)" <<'PY'
import json, sys
run, i, k = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
idisk, kdisk, iidle, kidle, ticks, peak, hz = map(int, sys.argv[4:])
for r in (i, k):
    assert r["errors"] == 0, r["first_error"]
print(f"run {run}: points/s influxd {i['points_per_s']:,.0f} shardkeeper {k['points_per_s']:,.0f}"
      f" ({k['points_per_s'] / i['points_per_s']:.2f}x);"
      f" p50/p99 ms {i['batch_latency_ms_p50']:.0f}/{i['batch_latency_ms_p99']:.0f}"
      f" vs {k['batch_latency_ms_p50']:.0f}/{k['batch_latency_ms_p99']:.0f};"
      f" disk MB {idisk / 1e6:.1f} vs {kdisk / 1e6:.1f}, 16 s later {iidle / 1e6:.1f} vs {kidle / 1e6:.1f};"
      f" shardkeeper {ticks / hz:.2f} CPU-s, peak RSS {peak // 1024} MiB")
PY
done
