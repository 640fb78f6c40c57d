#!/bin/bash
# Writes RATE kernel lines a second for SECONDS seconds into this machine's system journal, stored as
# kernel-line.sh stores one (_TRANSPORT=kernel), cycling through the MESSAGEs in order; one
# systemd-journal-remote writes them all into one file. Each second's lines are written at its start.
# Usage: bash -s -- RATE SECONDS MESSAGE... < kernel-lines.sh
set -euo pipefail
rate=${1:?usage: kernel-lines.sh RATE SECONDS MESSAGE...}
seconds=${2:?usage: kernel-lines.sh RATE SECONDS MESSAGE...}
shift 2
(($# > 0)) || { echo 'kernel-lines.sh: no MESSAGE' >&2; exit 2; }
mid=$(cat /etc/machine-id)
boot=$(tr -d - </proc/sys/kernel/random/boot_id)
host=$(hostname)
msgs=$(printf '%s\n' "$@")
for ((s = 0; s < seconds; s++)); do
  start=$(date +%s%N)
  awk -v n="$rate" -v rt="$(date +%s%6N)" -v mono="$(awk '{ printf "%.0f", $1 * 1000000 }' /proc/uptime)" \
    -v mid="$mid" -v boot="$boot" -v host="$host" -v msgs="$msgs" 'BEGIN {
      k = split(msgs, m, "\n"); step = 1000000 / n
      for (i = 0; i < n; i++)
        printf "__REALTIME_TIMESTAMP=%.0f\n__MONOTONIC_TIMESTAMP=%.0f\n_BOOT_ID=%s\n_MACHINE_ID=%s\n_HOSTNAME=%s\n_TRANSPORT=kernel\nSYSLOG_FACILITY=0\nSYSLOG_IDENTIFIER=kernel\nPRIORITY=3\nMESSAGE=%s\n\n",
          rt + i * step, mono + i * step, boot, mid, host, m[i % k + 1]
    }'
  left=$(((start + 1000000000 - $(date +%s%N)) / 1000))
  if ((left > 0)); then sleep "0.$(printf %06d "$left")"; fi
done | /lib/systemd/systemd-journal-remote --output="/var/log/journal/$mid/system@lines-$(date +%s%N).journal" - 2>/dev/null
