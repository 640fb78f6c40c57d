#!/usr/bin/env bash
# Builds the .deb and the .rpm from the bundle (npm run build), the native addon (npm run build:native)
# and the Node runtime (scripts/fetch-node.sh) with nfpm (nfpm.yaml), and prints their paths.
#   usage: scripts/package.sh [amd64|arm64|all]     (default: amd64)
# Output: dist/node-health-agent_<version>-<release>_<arch>.deb, dist/node-health-agent-<version>-<release>.<arch>.rpm
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "package: $*" >&2; exit 1; }

[ $# -le 1 ] || die "too many arguments (usage: scripts/package.sh [amd64|arm64|all])"
case "${1:-amd64}" in
  amd64 | arm64) arches=("${1:-amd64}") ;;
  all) arches=(amd64 arm64) ;;
  *) die "unknown architecture '$1' (use amd64, arm64 or all)" ;;
esac

nfpm="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin/nfpm"
[ -x "$nfpm" ] || nfpm=$(command -v nfpm) || die "nfpm is missing; run scripts/setup.sh"
want_nfpm=$(node -p "require('./package.json').config.nfpm")
if command -v go >/dev/null; then
  have_nfpm=$(go version -m "$nfpm" 2>/dev/null | awk '$1 == "mod" { print $3 }')
  [ "$have_nfpm" = "$want_nfpm" ] ||
    die "$nfpm is nfpm ${have_nfpm:-of unknown version}, package.json pins $want_nfpm; run scripts/setup.sh"
fi

version=$(node -p "require('./package.json').version")
release=$(sed -n 's/^release: *"\{0,1\}\([0-9]*\)"\{0,1\}$/\1/p' nfpm.yaml)
changelog_version=$(sed -n 's/^- semver: *//p' packaging/changelog.yaml | head -n 1)
[ "$changelog_version" = "$version-$release" ] ||
  die "packaging/changelog.yaml starts at ${changelog_version:-no entry}, the package is $version-$release; add an entry for it on top"

bundle=dist/node-health-agent.js
[ -f "$bundle" ] && [ -f "$bundle.map" ] || die "$bundle (and its .map) is missing; run npm run build"
manual=(dist/man/node-health-agent.8.gz dist/man/node-health.ini.5.gz dist/completion/node-health-agent)
for f in "${manual[@]}"; do [ -f "$f" ] || die "$f is missing; run npm run build"; done

# Writes dist/<name> only once the package is complete, so a reader never sees half a package.
build_one() { # <packager> <stage> <arch>
  local out
  out=$(mktemp -d dist/.package.XXXXXX)
  NHA_VERSION="$version" NHA_ARCH="$3" NHA_STAGE="$2" \
    "$nfpm" package --config nfpm.yaml --packager "$1" --target "$out/" >"$out.log" 2>&1 || {
    cat "$out.log" >&2
    rm -rf "$out" "$out.log"
    die "nfpm could not build the $1 for $3"
  }
  local file
  file=$(cd "$out" && ls)
  mv -f "$out/$file" "dist/$file"
  rm -rf "$out" "$out.log"
  echo "dist/$file"
}

for arch in "${arches[@]}"; do
  case "$arch" in
    amd64) node_arch=x64 addon=dist/node_health_native.node strip=strip ;;
    arm64) node_arch=arm64 addon=dist/arm64/node_health_native.node strip=aarch64-linux-gnu-strip ;;
  esac
  [ -f "$addon" ] || die "$addon is missing; run npm run build:native$([ "$arch" = amd64 ] || echo " -- $node_arch")"
  command -v "$strip" >/dev/null ||
    die "$strip is missing (apt-get install $([ "$arch" = amd64 ] && echo binutils || echo binutils-aarch64-linux-gnu))"
  runtime=$(scripts/fetch-node.sh "$node_arch") || die "cannot get the Node runtime for $arch (see above)"

  # Only what runs: the binary (symbols stripped, 15 % smaller), its license, the bundle, the addon;
  # and the manual pages and the completion the build wrote.
  stage="build/package/$arch"
  rm -rf "$stage"
  mkdir -p "$stage"
  "$strip" --strip-unneeded --remove-section=.comment -o "$stage/node" "$runtime/bin/node"
  "$strip" --strip-unneeded --remove-section=.comment -o "$stage/node_health_native.node" "$addon"
  cp "$bundle" "$stage/node-health-agent.js"
  cp "$runtime/LICENSE" "$stage/LICENSE.node"
  mkdir -p "$stage/man" "$stage/completion"
  cp dist/man/*.gz "$stage/man/"
  cp dist/completion/node-health-agent "$stage/completion/"
  node packaging/copyright.mjs "$bundle.map" node_modules/node-addon-api >"$stage/copyright"
  node packaging/monitoring/prometheusrule.mjs >"$stage/prometheusrule.yaml"

  build_one deb "$stage" "$arch"
  build_one rpm "$stage" "$arch"
done
