#!/usr/bin/env bash
# Builds the test cluster's binaries from their Go modules at pinned versions: kube-apiserver and etcd,
# and when asked for kubectl, kube-controller-manager, kube-scheduler and the kubelet (the VM ground's
# node), cached under the user cache directory so a second run takes a moment.
#
#   build.sh [--check] [kubectl|kube-controller-manager|kube-scheduler|kubelet]...
#                          builds what is missing; prints the directory holding the binaries
#                          --check: builds nothing, fails naming what is missing
#
# kube-apiserver: k8s.io/kubernetes is not meant to be required as a module — its go.mod replaces every
# k8s.io staging module with a directory of its own tree. A small wrapper module requires it and pins
# each of those modules to the matching published version instead (v1.X.Y → v0.X.Y).
# etcd: go.etcd.io/etcd/server/v3 has no main package; a three-line main calls etcdmain.Main.
set -euo pipefail

readonly KUBERNETES_VERSION=v1.34.2
readonly ETCD_VERSION=v3.6.16
readonly STAGING_VERSION=v0.${KUBERNETES_VERSION#v1.}
readonly CACHE=${NODE_HEALTH_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/node-health-agent/cluster}
readonly BIN=$CACHE/bin-kubernetes-$KUBERNETES_VERSION-etcd-$ETCD_VERSION

die() {
  echo "cluster build: $*" >&2
  exit 1
}

command -v go >/dev/null || die "go not found on PATH: install Go 1.24 or newer (https://go.dev/dl/)"
mkdir -p "$CACHE"

check_only=false
if [[ ${1:-} == --check ]]; then check_only=true; shift; fi
want=(kube-apiserver etcd)
for extra in "$@"; do
  [[ $extra =~ ^(kubectl|kube-controller-manager|kube-scheduler|kubelet)$ ]] ||
    die "usage: build.sh [--check] [kubectl|kube-controller-manager|kube-scheduler|kubelet]... (not '$extra')"
  want+=("$extra")
done

missing() {
  local b
  for b in "${want[@]}"; do [[ -x $BIN/$b ]] || return 0; done
  return 1
}

if ! missing; then
  echo "$BIN"
  exit 0
fi
if $check_only; then
  for b in "${want[@]}"; do [[ -x $BIN/$b ]] || echo "cluster build: $BIN/$b is missing: run scripts/setup.sh" >&2; done
  exit 1
fi

# One build at a time, also across test files started in parallel: the second waits and then finds the
# binaries. The lock is released when this script exits.
exec 9>"$CACHE/build.lock"
flock 9
if ! missing; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$BIN"
export CGO_ENABLED=0 GOFLAGS="-mod=mod -trimpath"

build_kubernetes() {
  local cmd=$1 mod=$CACHE/src-kubernetes-$KUBERNETES_VERSION
  if [[ ! -f $mod/go.mod ]]; then
    rm -rf "$mod.tmp" && mkdir -p "$mod.tmp"
    local gomod
    gomod=$(cd "$mod.tmp" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
      sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
    [[ -f $gomod ]] || die "could not download k8s.io/kubernetes@$KUBERNETES_VERSION (see go's message above)"
    {
      echo "module node-health-agent.test/kubernetes"
      echo
      echo "go 1.24"
      echo
      echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
      echo
      # Each "k8s.io/X => ./staging/src/k8s.io/X" of kubernetes' go.mod, pinned to the published module.
      sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/k8s\.io/[a-z0-9-]*$#replace \1 => \1 '"$STAGING_VERSION"'#p' "$gomod"
    } >"$mod.tmp/go.mod"
    grep -q '^replace k8s.io/apimachinery ' "$mod.tmp/go.mod" ||
      die "found no staging modules in $gomod: the layout of kubernetes' go.mod changed"
    mv "$mod.tmp" "$mod"
  fi
  echo "cluster build: building $cmd $KUBERNETES_VERSION (a few minutes the first time)" >&2
  local pkg=k8s.io/component-base/version
  (cd "$mod" && go build -o "$BIN/$cmd.tmp" \
    -ldflags "-s -w -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=${STAGING_VERSION#v0.} -X $pkg.gitTreeState=clean" \
    "k8s.io/kubernetes/cmd/$cmd") || die "go build of $cmd failed"
  mv "$BIN/$cmd.tmp" "$BIN/$cmd"
}

build_etcd() {
  local mod=$CACHE/src-etcd-$ETCD_VERSION
  if [[ ! -f $mod/go.sum ]]; then
    rm -rf "$mod" && mkdir -p "$mod"
    printf 'module node-health-agent.test/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$mod/go.mod"
    cat >"$mod/main.go" <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
    (cd "$mod" && go mod tidy) || { rm -rf "$mod"; die "could not resolve go.etcd.io/etcd/server/v3@$ETCD_VERSION"; }
  fi
  echo "cluster build: building etcd $ETCD_VERSION" >&2
  (cd "$mod" && go build -o "$BIN/etcd.tmp" -ldflags "-s -w" .) || die "go build of etcd failed"
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

# One after the other: each Go build already uses every core.
[[ -x $BIN/etcd ]] || build_etcd
[[ -x $BIN/kube-apiserver ]] || build_kubernetes kube-apiserver
for extra in "${want[@]:2}"; do
  [[ -x $BIN/$extra ]] || build_kubernetes "$extra"
done
echo "$BIN"
