#!/usr/bin/env bash
# Installs everything the build and the tests need on a fresh Debian/Ubuntu machine, then the npm
# dependencies. Safe to run again: what is already there is kept.
#   usage: scripts/setup.sh [--build]     (--build: only what building the agent needs, for `npm run diagnose`)
set -euo pipefail
cd "$(dirname "$0")/.."

build_only=false
case "${1:-}" in
  --build) build_only=true ;;
  '') ;;
  *) echo "setup: unknown argument '$1' (usage: scripts/setup.sh [--build])" >&2; exit 2 ;;
esac

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: installing system packages needs root (run with sudo)" >&2
    exit 2
  fi
}

# Build: a C++ toolchain and libsystemd headers for the native addon. Tests: systemd-container, dbus and
# containerd boot a node in a box; lintian and rpm inspect the packages; systemd-journal-remote writes
# real journal files; openssl makes a throwaway PKI; bindfs is a FUSE filesystem that answers (the disk
# probe's network/FUSE path); man-db and groff-base render the manual pages; bash-completion loads the
# completion the way an interactive shell does; qemu, qemu-img and mmdebstrap build and boot the VM ground
# (scripts/vm) for the tests that need a real kernel, jq writes its local OCI images (build-essential's
# static libc links their pause program); libfaketime steps the agent's own wall clock in a box (which
# shares the host's clock and may not set it). The arm64 package: the cross compiler, binutils (strip) and
# libsystemd for arm64 (a foreign dpkg architecture) build its addon; qemu-system-arm boots it in the arm64
# guest, whose image mmdebstrap builds through qemu-user-static and binfmt-support (arch-test: mmdebstrap
# checks with it that arm64 programs run). Go (1.26.7 or newer) must be on PATH: it builds nfpm, the test
# cluster and Prometheus.
apt_packages=(build-essential python3 pkg-config libsystemd-dev systemd systemd-container dbus containerd
  lintian rpm systemd-journal-remote openssl git curl strace e2fsprogs bindfs man-db groff-base bash-completion
  qemu-system-x86 qemu-utils mmdebstrap libfaketime jq
  g++-aarch64-linux-gnu binutils-aarch64-linux-gnu libsystemd-dev:arm64 qemu-system-arm qemu-user-static binfmt-support
  arch-test)
if $build_only; then
  apt_packages=(build-essential python3 pkg-config libsystemd-dev)
elif ! dpkg --print-foreign-architectures | grep -qx arm64; then
  need_root
  echo "setup: adding the arm64 architecture to dpkg (libsystemd-dev:arm64 for the arm64 addon)"
  dpkg --add-architecture arm64
fi
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  need_root
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if $build_only; then
  npm ci --no-audit --no-fund
  exit 0
fi

# Go-built tools at pinned versions, cached in GOBIN (default ~/go/bin) so a second run is instant.
gobin="$(go env GOPATH)/bin"
nfpm_version=$(node -p "require('./package.json').config.nfpm")
# The module version Go recorded in the binary: a `go install` build reports "dev" in `nfpm --version`.
if ! go version -m "$gobin/nfpm" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+github.com/goreleaser/nfpm/v2[[:space:]]+$nfpm_version[[:space:]]"; then
  echo "setup: building nfpm $nfpm_version"
  GOFLAGS=-mod=mod go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$nfpm_version"
fi

npm ci --no-audit --no-fund

# The test cluster's kube-apiserver and etcd, and the VM ground's kube-controller-manager, kube-scheduler and kubelet,
# built from their Go modules and cached (see docs/testing.md for the cold times; seconds afterwards).
echo "setup: building the test cluster (kube-apiserver, etcd, kube-controller-manager, kube-scheduler, kubelet) if not cached"
bash scripts/cluster/build.sh kube-controller-manager kube-scheduler kubelet >/dev/null

# The small tools and modules the tests read (Prometheus' exposition parser, NPD's shipped configs):
# built here, never inside a test.
bash scripts/build-test-tools.sh

# Prometheus and promtool for the alerting-rule and dashboard tests, built from their Go module and
# cached (see docs/testing.md for the cold build time).
echo "setup: building Prometheus and promtool if not cached"
bash scripts/prometheus/build.sh >/dev/null

# The VM ground's Debian 12 image from Debian's package mirror with the kubelet and local container
# images, cached by a hash of its build scripts and the kubelet (instant when cached).
echo "setup: building the VM image if not cached"
bash scripts/vm/build-image.sh >/dev/null

# The arm64 guest's image: mmdebstrap configures its packages with qemu-user, which binfmt_misc must
# hand aarch64 programs to (a container may start without binfmt_misc mounted).
if [ "$(head -n 1 /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null)" != enabled ]; then
  need_root
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64
fi
echo "setup: building the arm64 VM image if not cached"
bash scripts/vm/build-image.sh arm64 >/dev/null
