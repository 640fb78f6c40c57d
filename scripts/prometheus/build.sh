#!/usr/bin/env bash
# Builds Prometheus and promtool from their Go module at a pinned version, for the alerting-rule and
# dashboard tests, cached under the user cache directory so a second run takes a moment.
#
#   build.sh          builds what is missing; prints the directory holding prometheus and promtool
#   build.sh --path   prints that directory if both are built; fails naming scripts/setup.sh if not (tests)
#
# github.com/prometheus/prometheus v0.3XY.Z is Prometheus 3.XY.Z. Built without the `builtinassets` tag:
# the web UI is not embedded (its pages answer "not found"), the HTTP API the tests use is all there.
set -euo pipefail

readonly MODULE_VERSION=v0.316.0
readonly PROMETHEUS_VERSION=3.16.0
readonly CACHE=${NODE_HEALTH_PROMETHEUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/node-health-agent/prometheus}
readonly BIN=$CACHE/bin-$MODULE_VERSION

die() {
  echo "prometheus build: $*" >&2
  exit 1
}

[[ $# -eq 0 || ( $# -eq 1 && $1 == --path ) ]] || die "usage: build.sh [--path]"

built() { [[ -x $BIN/prometheus && -x $BIN/promtool ]]; }
if built; then
  echo "$BIN"
  exit 0
fi
[[ $# -eq 0 ]] || die "Prometheus $PROMETHEUS_VERSION is not built in $BIN: run scripts/setup.sh (it builds it once, a few minutes)"
command -v go >/dev/null || die "go not found on PATH: install Go 1.26.7 or newer (https://go.dev/dl/)"
mkdir -p "$CACHE"

# One build at a time, also across test files started in parallel.
exec 9>"$CACHE/build.lock"
flock 9
if built; then
  echo "$BIN"
  exit 0
fi

# A module of our own that requires Prometheus' and builds its commands: `go install pkg@version` would
# do the same, but this keeps the resolved go.sum next to the binaries for the next build.
mod=$CACHE/src-$MODULE_VERSION
if [[ ! -f $mod/go.sum ]]; then
  rm -rf "$mod" && mkdir -p "$mod"
  printf 'module node-health-agent.test/prometheus\n\ngo 1.26\n\nrequire github.com/prometheus/prometheus %s\n' "$MODULE_VERSION" >"$mod/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "github.com/prometheus/prometheus/cmd/prometheus"\n\t_ "github.com/prometheus/prometheus/cmd/promtool"\n)\n' >"$mod/tools.go"
  (cd "$mod" && go mod tidy) || { rm -rf "$mod"; die "could not resolve github.com/prometheus/prometheus@$MODULE_VERSION (see go's message above)"; }
fi

mkdir -p "$BIN"
export CGO_ENABLED=0 GOFLAGS="-mod=mod -trimpath"
pkg=github.com/prometheus/common/version
ldflags="-s -w -X $pkg.Version=$PROMETHEUS_VERSION -X $pkg.Branch=module -X $pkg.Revision=$MODULE_VERSION"
for cmd in prometheus promtool; do
  [[ -x $BIN/$cmd ]] && continue
  echo "prometheus build: building $cmd $PROMETHEUS_VERSION (a few minutes the first time)" >&2
  (cd "$mod" && go build -o "$BIN/$cmd.tmp" -ldflags "$ldflags" "github.com/prometheus/prometheus/cmd/$cmd") ||
    die "go build of $cmd failed"
  mv "$BIN/$cmd.tmp" "$BIN/$cmd"
done
echo "$BIN"
