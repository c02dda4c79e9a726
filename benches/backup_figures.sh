#!/usr/bin/env bash
# Figures for the README's backup section, from one run against a running node:
#   benches/backup_figures.sh URL SHARD_ID SHARD_DIR [DAEMON_PID]
# Streams the shard with and without gzip (median of 5, page cache dropped before each
# cold run when allowed), compares with `gzip -1` and `cat` of the same files, samples the
# daemon's resident memory during a stream, and measures write p99 with and without ten
# concurrent backup streams. Needs curl, gzip and the shardkeeper binary on PATH or in
# target/release.
set -euo pipefail
url=$1 shard=$2 dir=$3 pid=${4:-}
bin=${SHARDKEEPER:-$(dirname "$0")/../target/release/shardkeeper}
files=("$dir"/*.col "$dir"/log/*.seg)
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
bytes=$(curl -s -o /dev/null -w '%{size_download}' "$url/api/v2/backup/shards/$shard")
echo "shard $shard: $bytes bytes as a tar"
t_cold=$(for _ in 1 2 3 4 5; do drop; curl -s -o /dev/null -w '%{time_total}\n' "$url/api/v2/backup/shards/$shard"; done | median)
t_cat=$(for _ in 1 2 3 4 5; do drop; s=$(date +%s.%N); cat "${files[@]}" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; done | median)
t_gz=$(for _ in 1 2 3 4 5; do curl -s -H 'Accept-Encoding: gzip' -o /dev/null -w '%{time_total}\n' "$url/api/v2/backup/shards/$shard"; done | median)
t_gzip1=$(for _ in 1 2 3 4 5; do s=$(date +%s.%N); cat "${files[@]}" | gzip -1 > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; done | median)
mbps() { echo "scale=1; $bytes / $1 / 1000000" | bc; }
echo "no gzip, cold cache: $(mbps "$t_cold") MB/s; cat of the same files, cold: $(mbps "$t_cat") MB/s"
echo "gzip on the fly (warm): $(mbps "$t_gz") MB/s; gzip -1 of the same files (warm): $(mbps "$t_gzip1") MB/s"
if [ -n "$pid" ]; then
  before=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  ( while kill -0 "$pid" 2>/dev/null; do awk '/VmRSS/ {print $2}' "/proc/$pid/status"; sleep 0.01; done ) > /tmp/rss.$$ &
  sampler=$!
  drop; curl -s -H 'Accept-Encoding: gzip' -o /dev/null "$url/api/v2/backup/shards/$shard"
  kill "$sampler"; peak=$(sort -n /tmp/rss.$$ | tail -1); rm -f /tmp/rss.$$
  echo "resident memory: $before kB before, $peak kB peak during a gzip stream (+$(( (peak - before) / 1024 )) MiB)"
fi
p99() { "$bin" bench ingest --url "$url" --db backup_bench --points 200000 --batch 1000 --connections 2 --seed "$1" | sed 's/.*"batch_latency_ms_p99":\([0-9.]*\).*/\1/'; }
alone=$(p99 1)
for _ in $(seq 10); do ( while [ ! -e /tmp/stop.$$ ]; do curl -s -H 'Accept-Encoding: gzip' -o /dev/null "$url/api/v2/backup/shards/$shard"; done ) & done
during=$(p99 2)
touch /tmp/stop.$$; wait; rm -f /tmp/stop.$$
echo "write batch p99: $alone ms alone, $during ms during ten concurrent backup streams"
