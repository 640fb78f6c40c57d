#!/usr/bin/env bash
# Builds the native addon (src/native) with node-gyp against the bundled Node runtime's headers and puts
# it where the bundle and the packages expect it:
#   x64   -> dist/node_health_native.node
#   arm64 -> dist/arm64/node_health_native.node   (cross-built: needs g++-aarch64-linux-gnu, libsystemd-dev:arm64)
#   usage: scripts/build-native.sh [x64|arm64]     (default: x64)
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "build-native: $*" >&2; exit 1; }

arch=${1:-x64}
[ $# -le 1 ] || die "too many arguments (usage: scripts/build-native.sh [x64|arm64])"
case "$arch" in
  x64) out=dist/node_health_native.node elf_machine='x86-64' gnu_triplet=x86_64-linux-gnu ;;
  arm64) out=dist/arm64/node_health_native.node elf_machine='aarch64' gnu_triplet=aarch64-linux-gnu ;;
  *) die "unknown architecture '$arch' (use x64 or arm64)" ;;
esac

runtime=$(scripts/fetch-node.sh "$arch") || die "cannot get the Node runtime for $arch (see the message above)"
[ -f node_modules/node-gyp/bin/node-gyp.js ] || die "node_modules/node-gyp is missing; run npm ci"
command -v pkg-config >/dev/null || die "pkg-config is missing (apt-get install pkg-config)"

host_triplet=$(gcc -dumpmachine 2>/dev/null || true)
if [ "$host_triplet" != "$gnu_triplet" ]; then
  # Cross build: the target's compiler, and pkg-config looking only at the target's libraries.
  command -v "$gnu_triplet-g++" >/dev/null ||
    die "$gnu_triplet-g++ is missing (apt-get install g++-$gnu_triplet)"
  export CC="$gnu_triplet-gcc" CXX="$gnu_triplet-g++" LINK="$gnu_triplet-g++"
  export PKG_CONFIG_LIBDIR="/usr/lib/$gnu_triplet/pkgconfig:/usr/share/pkgconfig"
  export PKG_CONFIG_PATH=
fi
if ! pkg-config --exists libsystemd; then
  [ "$host_triplet" = "$gnu_triplet" ] && die "libsystemd headers are missing (apt-get install libsystemd-dev)"
  die "libsystemd for $arch is missing (dpkg --add-architecture $arch && apt-get update && apt-get install libsystemd-dev:$arch)"
fi

# node-gyp builds in ./build of its working directory: work on a copy so src/ stays clean. cp -p keeps
# the sources' times, so an unchanged addon is not recompiled.
work="build/native/$arch"
mkdir -p "$work"
cp -p src/native/binding.gyp src/native/*.cc src/native/*.h "$work/"

# --nodedir explicitly: a user's npmrc may point node-gyp at another Node's headers.
gyp=(node "$PWD/node_modules/node-gyp/bin/node-gyp.js" --nodedir="$runtime" --arch="$arch" --loglevel=warn)
log="$work/node-gyp.log"
# Configure again only when the gyp file or the runtime changed: configuring rewrites every Makefile and so
# recompiles everything.
configure=true
if [ -f "$work/build/Makefile" ] && [ "$work/build/Makefile" -nt "$work/binding.gyp" ] &&
  [ "$(cat "$work/build/nodedir" 2>/dev/null)" = "$runtime" ]; then
  configure=false
fi
if ! (cd "$work" && { ! $configure || { "${gyp[@]}" configure && echo "$runtime" >build/nodedir; }; } &&
  "${gyp[@]}" build --jobs=2) >"$log" 2>&1; then
  grep -E 'error|Error' "$log" | head -n 20 >&2 || tail -n 20 "$log" >&2
  die "node-gyp failed for $arch; full log: $work/node-gyp.log"
fi

mkdir -p "$(dirname "$out")"
cp "$work/build/Release/node_health_native.node" "$out"

# The addon must be for the target and, on the host, load in the runtime it ships with.
machine=$(readelf -h "$out" | sed -n 's/^ *Machine: *//p')
grep -qi "$elf_machine" <<<"$machine" || die "$out is built for $machine, not $elf_machine"
if [ "$host_triplet" = "$gnu_triplet" ]; then
  "$runtime/bin/node" -e '
    const m = require(process.argv[1]);
    for (const f of ["notify", "watchdogUsec", "journalSend", "adjtimex"]) {
      if (typeof m[f] !== "function") throw new Error(process.argv[1] + " does not export " + f);
    }' "$PWD/$out" || die "$out does not load in $runtime/bin/node"
fi
echo "$out"
