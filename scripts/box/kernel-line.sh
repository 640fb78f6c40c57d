#!/bin/bash
# Writes MESSAGE into this machine's system journal as journald stores a kernel line (_TRANSPORT=kernel,
# the field the agent's kernel source matches and that nothing else can forge). Run inside a node in a
# box, where journald cannot read /dev/kmsg and `systemd-cat -t kernel` would be stored as stdout.
# Usage: bash -s -- MESSAGE < kernel-line.sh    (or: kernel-line.sh MESSAGE)
set -euo pipefail
message=${1:?usage: kernel-line.sh MESSAGE}
mid=$(cat /etc/machine-id)
{
  echo "__REALTIME_TIMESTAMP=$(date +%s%6N)"
  echo "__MONOTONIC_TIMESTAMP=$(awk '{ printf "%.0f", $1 * 1000000 }' /proc/uptime)"
  echo "_BOOT_ID=$(tr -d - </proc/sys/kernel/random/boot_id)"
  echo "_MACHINE_ID=$mid"
  echo "_HOSTNAME=$(hostname)"
  echo "_TRANSPORT=kernel"
  echo "SYSLOG_FACILITY=0"
  echo "SYSLOG_IDENTIFIER=kernel"
  echo "PRIORITY=3"
  echo "MESSAGE=$message"
  echo
} | /lib/systemd/systemd-journal-remote --output="/var/log/journal/$mid/system@kernel-$(date +%s%N).journal" - 2>/dev/null
