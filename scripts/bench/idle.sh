#!/usr/bin/env bash
# Idle cost of the daemon: `node-health-agent run` with the shipped config (etc/*.ini: every probe, the
# journal rules, plugins, runtime health, Kubernetes reporting and metrics) and no cluster, on the bundled
# Node runtime. Only the state and runtime directories are moved to a temporary place. Samples RSS every 5 s and CPU time over the whole window from /proc.
#   usage: scripts/bench/idle.sh [seconds]      (default 300)
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-300}
runtime=$(scripts/fetch-node.sh)
[ -f dist/node-health-agent.js ] || npm run -s build
[ -f dist/node_health_native.node ] || npm run -s build:native

work=$(mktemp -d)
mkdir -m 0755 "$work/etc"
install -m 0644 etc/*.ini "$work/etc/"
printf '[agent]\nstate_dir = %s/state\nruntime_dir = %s/run\n' "$work" "$work" > "$work/etc/90-paths.ini"
chmod 0644 "$work/etc/90-paths.ini"

"$runtime/bin/node" dist/node-health-agent.js run --config-dir "$work/etc" 2>"$work/log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }

sleep 10 # start-up and the first round of checks are not idle
cpu0=$(cpu)
t0=$(date +%s.%N)
max=0 sum=0 n=0
end=$((SECONDS + seconds))
while [ $SECONDS -lt $end ]; do
  r=$(rss_kb)
  sum=$((sum + r)) n=$((n + 1))
  [ "$r" -gt "$max" ] && max=$r
  sleep 5
done
cpu1=$(cpu)
t1=$(date +%s.%N)

awk -v c0="$cpu0" -v c1="$cpu1" -v t0="$t0" -v t1="$t1" -v hz="$ticks" -v max="$max" -v sum="$sum" -v n="$n" \
  -v node="$("$runtime/bin/node" --version)" 'BEGIN {
  printf "runtime %s, %d s idle window\n", node, t1 - t0
  printf "RSS: mean %.1f MiB, max %.1f MiB\n", sum / n / 1024, max / 1024
  printf "CPU: %.3f %% of one core (%.2f s over %.0f s)\n", (c1 - c0) / hz / (t1 - t0) * 100, (c1 - c0) / hz, t1 - t0
}'
