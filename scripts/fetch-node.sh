#!/usr/bin/env bash
# Fetches the Node runtime the packages bundle (npm package node-linux-<arch> at package.json
# config.nodeRuntime) into the user cache, extracts it once, verifies it and prints its directory
# (bin/node, include/node/...). A second run is served from the cache without network.
#   usage: scripts/fetch-node.sh [x64|arm64]     (default: the host's architecture)
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "fetch-node: $*" >&2; exit 1; }

host_arch() {
  case "$(uname -m)" in
    x86_64) echo x64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) echo "unsupported-$(uname -m)" ;;
  esac
}

arch=${1:-$(host_arch)}
case "$arch" in
  x64) elf_machine='x86-64' ;;
  arm64) elf_machine='aarch64' ;;
  *) die "unknown architecture '$arch' (use x64 or arm64)" ;;
esac
[ $# -le 1 ] || die "too many arguments (usage: scripts/fetch-node.sh [x64|arm64])"

version=$(node -p "require('./package.json').config.nodeRuntime || ''" 2>/dev/null) ||
  die "cannot read config.nodeRuntime from package.json (is node on PATH?)"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "package.json config.nodeRuntime '$version' is not a version like 24.21.0"

name="node-linux-$arch"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/node-health-agent/runtime"
dir="$cache/$name-$version"

# The ELF machine of bin/node: `file` when installed, else readelf (binutils).
elf_of() {
  if command -v file >/dev/null; then
    file -b "$1"
  elif command -v readelf >/dev/null; then
    readelf -h "$1" | sed -n 's/^ *Machine: *//p'
  else
    die "need 'file' or 'readelf' to check $1 (apt-get install file)"
  fi
}

verify() {
  [ -x "$1/bin/node" ] || die "$1/bin/node is missing; remove $1 and run again"
  [ -f "$1/include/node/node_api.h" ] || die "$1/include/node/node_api.h is missing; remove $1 and run again"
  if [ "$arch" = "$(host_arch)" ]; then
    local got
    got=$("$1/bin/node" --version 2>&1) || die "$1/bin/node does not run: $got"
    [ "$got" = "v$version" ] || die "$1/bin/node reports $got, expected v$version; remove $1 and run again"
  else
    # aarch64 in `file` output reads "ARM aarch64"; readelf says "AArch64".
    elf_of "$1/bin/node" | grep -qiE "$elf_machine" ||
      die "$1/bin/node is not an $elf_machine executable ($(elf_of "$1/bin/node")); remove $1 and run again"
  fi
}

if [ ! -d "$dir" ]; then
  command -v npm >/dev/null || die "npm is needed to fetch $name@$version (install Node.js with npm)"
  mkdir -p "$cache"
  work=$(mktemp -d "$cache/.fetch-$name-$version.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  # --json gives the tarball name on success and a one-line summary on failure.
  out=$(cd "$work" && npm pack --json --loglevel=silent "$name@$version" 2>/dev/null) && ok=1 || ok=0
  said=$(node -e '
    const r = JSON.parse(require("fs").readFileSync(0, "utf8") || "{}");
    console.log(Array.isArray(r) ? r[0].filename : (r.error && r.error.summary) || "no reason given");
  ' <<<"$out" 2>/dev/null) || said="unreadable npm output"
  [ "$ok" = 1 ] || die "npm pack $name@$version failed: $said"
  tgz="$work/$said"
  [ -f "$tgz" ] || die "npm pack $name@$version did not produce a tarball (npm said: $said)"
  mkdir "$work/x"
  tar -xzf "$tgz" -C "$work/x" || die "cannot extract $tgz"
  verify "$work/x/package"
  # Rename is atomic: a concurrent or interrupted run never leaves a half-extracted runtime in place.
  mv -T "$work/x/package" "$dir" 2>/dev/null || [ -d "$dir" ] || die "cannot move the runtime into $dir"
fi

verify "$dir"
echo "$dir"
