#!/usr/bin/env bash
# Idle cost of the daemon: `node-health-agent run` with the shipped config (etc/*.ini: every probe, the
# journal rules, plugins, runtime health, Kubernetes reporting and metrics) and no cluster, on the bundled
# Node runtime with the Node flags of the unit's ExecStart. Only the state and runtime directories and
# the metrics port are changed. Samples RSS every 5 s and CPU time over the whole window from /proc, and
# at the end splits the RSS into the pages of the Node binary (file-backed, shared with the page cache)
# and anonymous memory (the V8 heap, malloc).
#   usage: scripts/bench/idle.sh [--flags "NODE FLAGS"] [--ini FILE]... [seconds]     (default 300)
#     --flags   Node flags instead of the unit's ("" for none)
#     --ini     an extra config file, read after the shipped ones (e.g. one that disables a section)
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() { echo "usage: scripts/bench/idle.sh [--flags \"NODE FLAGS\"] [--ini FILE]... [seconds]" >&2; exit 2; }

# The flags between the runtime and the bundle in the unit's ExecStart.
read -r -a exec_start <<<"$(sed -n 's/^ExecStart=//p' systemd/node-health-agent.service)"
flags=()
for word in "${exec_start[@]:1}"; do
  [[ $word == *.js ]] && break
  flags+=("$word")
done
extra=()
seconds=300
while [ $# -gt 0 ]; do
  case $1 in
    --flags) [ $# -ge 2 ] || usage; read -r -a flags <<<"$2"; shift 2 ;;
    --ini) [ $# -ge 2 ] || usage; [ -f "$2" ] || { echo "idle.sh: $2: no such file" >&2; exit 2; }; extra+=("$2"); shift 2 ;;
    *) [[ $1 =~ ^[0-9]+$ ]] || usage; seconds=$1; shift ;;
  esac
done

runtime=$(scripts/fetch-node.sh)
[ -f dist/node-health-agent.js ] || npm run -s build
[ -f dist/node_health_native.node ] || npm run -s build:native

work=$(mktemp -d)
mkdir -m 0755 "$work/etc"
install -m 0644 etc/*.ini "$work/etc/"
# A free port for the metrics server, so a node-health-agent or test already on 20257 does not turn it off.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '[agent]\nstate_dir = %s/state\nruntime_dir = %s/run\n[metrics]\nport = %s\n' "$work" "$work" "$port" > "$work/etc/90-paths.ini"
chmod 0644 "$work/etc/90-paths.ini"
i=0
for f in ${extra[@]+"${extra[@]}"}; do
  i=$((i + 1))
  install -m 0644 "$f" "$work/etc/95-extra-$i.ini"
done

"$runtime/bin/node" ${flags[@]+"${flags[@]}"} dist/node-health-agent.js run --config-dir "$work/etc" 2>"$work/log" &
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
anon=$(awk '/^Anonymous:/ {print $2}' "/proc/$pid/smaps_rollup")
binary=$(awk -v bin="$(realpath "$runtime/bin/node")" '/^[0-9a-f]+-/ {f = $6} /^Rss:/ && f == bin {s += $2} END {print s + 0}' "/proc/$pid/smaps")
now=$(rss_kb)

awk -v c0="$cpu0" -v c1="$cpu1" -v t0="$t0" -v t1="$t1" -v hz="$ticks" -v max="$max" -v sum="$sum" -v n="$n" \
  -v now="$now" -v anon="$anon" -v bin="$binary" -v flags="${flags[*]-}" -v extra="${extra[*]-}" \
  -v node="$("$runtime/bin/node" --version)" 'BEGIN {
  printf "runtime %s, flags: %s; extra config: %s; %d s idle window\n", node, flags == "" ? "none" : flags, extra == "" ? "none" : extra, t1 - t0
  printf "RSS: mean %.1f MiB, max %.1f MiB\n", sum / n / 1024, max / 1024
  printf "RSS at the end: %.1f MiB = %.1f MiB anonymous + %.1f MiB of the Node binary + %.1f MiB other files\n", now / 1024, anon / 1024, bin / 1024, (now - anon - bin) / 1024
  printf "CPU: %.3f %% of one core (%.2f s over %.0f s)\n", (c1 - c0) / hz / (t1 - t0) * 100, (c1 - c0) / hz, t1 - t0
}'
