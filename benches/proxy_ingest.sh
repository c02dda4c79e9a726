#!/usr/bin/env bash
# `bench ingest` written directly to one shardkeeper node, then through `shardkeeper proxy`
# to two circles of two nodes (every point stored by one node of each circle), in one run;
# prints both reports and the proxy's CPU seconds per million points (from /proc).
# Usage: benches/proxy_ingest.sh [POINTS] (default 1000000). Needs target/release/shardkeeper.
set -euo pipefail
points=${1:-1000000}
bin=$(cd "$(dirname "$0")/.." && pwd)/target/release/shardkeeper
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
start_node() { # name -> prints its address
    "$bin" serve --bind 127.0.0.1:0 --data-dir "$dir/$1" >"$dir/$1.out" 2>"$dir/$1.err" &
    pids+=($!)
    until grep -q listening "$dir/$1.out" 2>/dev/null; do sleep 0.05; done
    sed -n 's|.*://\([0-9.:]*\).*|\1|p' "$dir/$1.out" | head -1
}
direct=$(start_node direct)
echo "direct to one node:"
"$bin" bench ingest --url "http://$direct" --points "$points"
a1=$(start_node a1); a2=$(start_node a2); b1=$(start_node b1); b2=$(start_node b2)
cat >"$dir/proxy.json" <<JSON
{"circles": [
  {"name": "circle-1", "backends": [{"name": "a1", "url": "http://$a1"}, {"name": "a2", "url": "http://$a2"}]},
  {"name": "circle-2", "backends": [{"name": "b1", "url": "http://$b1"}, {"name": "b2", "url": "http://$b2"}]}],
 "listen_addr": "127.0.0.1:0", "data_dir": "$dir/proxy"}
JSON
"$bin" proxy --config "$dir/proxy.json" >"$dir/proxy.out" 2>"$dir/proxy.err" &
proxy_pid=$!
pids+=($proxy_pid)
until grep -q listening "$dir/proxy.out" 2>/dev/null; do sleep 0.05; done
proxy=$(sed -n 's|.*://\([0-9.:]*\).*|\1|p' "$dir/proxy.out" | head -1)
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$proxy_pid/stat"; }
before=$(cpu)
echo "through the proxy to two circles of two nodes:"
"$bin" bench ingest --url "http://$proxy" --points "$points"
acked=$(cpu)
# Until every backend has every line (the bench counts acknowledgements only).
drain_start=$(date +%s.%N)
until curl -fsS "http://$proxy/metrics" | awk '/^shardkeeper_proxy_backlog_lines/ {s += $2} END {exit s != 0}'; do sleep 0.1; done
drained=$(date +%s.%N)
after=$(cpu)
per_million() { echo "scale=2; ($1 - $before) / $ticks / ($points / 1000000)" | bc -l; }
echo "proxy CPU s per million points: $(per_million "$acked") acknowledging, $(per_million "$after") with delivery; delivery done $(echo "scale=2; $drained - $drain_start" | bc -l) s after the last acknowledgement"
