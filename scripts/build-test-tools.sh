#!/usr/bin/env bash
# Builds the small tools the tests use and fetches the modules they read, so no test builds or downloads
# anything mid-run (a cold `go build` inside a test outlasts timeouts). Cached: a second run is instant.
#   - promcheck (test/kubernetes/promcheck): Prometheus' own exposition parser and linter, keyed by a
#     hash of its sources, where test/kubernetes/metrics.test.ts looks for it;
#   - node-problem-detector's Go module (its shipped JSON configs), read by the NPD compatibility tests.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "build-test-tools: $*" >&2; exit 1; }
command -v go >/dev/null || die "go is not on PATH (Go 1.24 or newer builds the test tools)"

cache="${XDG_CACHE_HOME:-$HOME/.cache}/node-health-agent/test"
src=test/kubernetes/promcheck
# The same key as the test computes: sha256 of main.go then go.sum, first 12 hex digits.
sum=$(cat "$src/main.go" "$src/go.sum" | sha256sum | cut -c1-12)
bin="$cache/promcheck-$sum"
if [ ! -x "$bin" ]; then
  echo "build-test-tools: building promcheck"
  mkdir -p "$cache"
  (cd "$src" && CGO_ENABLED=0 go build -o "$bin.tmp" .) || die "go build of $src failed"
  mv "$bin.tmp" "$bin"
fi

npd_module=$(node -p "require('./package.json').config.npd")
go mod download -json "$npd_module" >/dev/null || die "cannot download $npd_module"
