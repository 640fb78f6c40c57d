#!/usr/bin/env bash
# Runs every test (unit, CLI, and the node-in-a-box end-to-end tests where the host can run them)
# against a fresh build, then prints one summary line: "tests: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

npm run -s build || exit 1
npm run -s build:native || exit 1
npx tsc --noEmit || exit 1

log=$(mktemp)
trap 'rm -f "$log"' EXIT
npx tap "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

summary=$(grep -E '^# \{ total: ' "$log" | tail -n 1)
pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
skip=$(sed -nE 's/.*skip: ([0-9]+).*/\1/p' <<<"$summary")
echo
echo "tests: ${pass:-0} passed, ${fail:-0} failed${skip:+, $skip skipped}"
if [ "$status" -eq 0 ] && [ "${pass:-0}" -eq 0 ]; then
  echo "no test ran" >&2
  exit 1
fi
exit "$status"
