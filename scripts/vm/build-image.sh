#!/usr/bin/env bash
# Builds the VM ground's disk image: Debian 12 (bookworm) from Debian's package mirror with mmdebstrap,
# systemd, containerd and runc, the guest agent the tests talk to (guest-agent.sh), the kubelet (built by
# scripts/cluster/build.sh) with the CNI plugins and local container images it needs (customize.sh), and a
# small initrd (virtio + ext4 only). The image, kernel and initrd are cached under the data directory,
# keyed by a hash of the build scripts, the guest files and the kubelet, so a second run is instant.
# Prints the directory holding them.
# arm64: the same guest for qemu-system-aarch64, without the Kubernetes node's parts (no kubelet, no local
# images). mmdebstrap runs the image's arm64 maintainer scripts through qemu-user (binfmt_misc).
#   usage: scripts/vm/build-image.sh [amd64|arm64]     (NODE_HEALTH_VM_DATA_DIR: cache root, default /var/tmp/node-health-vm)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

readonly SUITE=bookworm
readonly MIRROR=${NODE_HEALTH_VM_MIRROR:-http://deb.debian.org/debian}
readonly DATA_DIR=${NODE_HEALTH_VM_DATA_DIR:-/var/tmp/node-health-vm}
readonly IMAGE_SIZE=3G
readonly ARCH=${1:-amd64}
# What the tests need inside besides systemd: containerd and runc (a node's runtime), e2fsprogs and
# dmsetup (filesystems over device-mapper for hung-task tests), procps and kmod (ps, modprobe),
# containernetworking-plugins (the pods' network) and busybox-static (the workload image's one binary).
readonly PACKAGES=(systemd systemd-sysv dbus udev containerd runc "linux-image-$ARCH" e2fsprogs dmsetup procps kmod
  containernetworking-plugins busybox-static)
# The only modules the initrd needs to mount the root disk: the whole-disk initrd is 4x bigger and slower.
readonly INITRD_MODULES=(virtio_pci virtio_blk ext4)

die() {
  echo "vm: $*" >&2
  exit 2
}

[[ $# -le 1 && ( $ARCH == amd64 || $ARCH == arm64 ) ]] || die "usage: build-image.sh [amd64|arm64]"
[[ $(id -u) -eq 0 ]] || die "building the image must run as root (mmdebstrap, mkfs.ext4 -d keep file owners)"
command -v mmdebstrap >/dev/null || die "mmdebstrap not found: run scripts/setup.sh (apt-get install mmdebstrap)"
command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 not found: run scripts/setup.sh (apt-get install e2fsprogs)"
if [[ $ARCH == amd64 ]]; then
  command -v jq >/dev/null || die "jq not found: run scripts/setup.sh (apt-get install jq)"
  [[ -f /usr/lib/x86_64-linux-gnu/libc.a ]] && command -v gcc >/dev/null ||
    die "gcc and a static libc are needed for the pause image: run scripts/setup.sh (apt-get install gcc libc6-dev)"
  # The kubelet as setup built it; never built here (minutes of Go build inside a test's VM start).
  kubelet=$(bash "$here/../cluster/build.sh" --check kubelet) || die "the kubelet is not built: run scripts/setup.sh"
  kubelet=$kubelet/kubelet
  key=$(cat "$0" "$here"/customize.sh "$here"/guest-agent.* "$here"/node/* "$here"/images/* "$kubelet" | sha256sum | cut -c1-16)
  out="$DATA_DIR/image-$key"
else
  # mmdebstrap runs the foreign image's maintainer scripts (and customize.sh its systemctl) through
  # qemu-user: binfmt_misc must hand aarch64 binaries to it.
  [[ $(cat /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null | head -1) == enabled ]] ||
    die "arm64 binaries do not run here (no enabled qemu-aarch64 in /proc/sys/fs/binfmt_misc): run scripts/setup.sh (qemu-user-static, binfmt-support)"
  command -v arch-test >/dev/null || die "arch-test not found: run scripts/setup.sh (apt-get install arch-test)"
  kubelet=
  key=$(cat "$0" "$here"/customize.sh "$here"/guest-agent.* | sha256sum | cut -c1-16)
  out="$DATA_DIR/image-$ARCH-$key"
fi
if [[ -f $out/rootfs.img && -f $out/vmlinuz && -f $out/initrd.img ]]; then
  echo "$out"
  exit 0
fi

mkdir -p "$DATA_DIR"
work=$(mktemp -d "$DATA_DIR/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"
started=$(date +%s)

mmdebstrap --variant=minbase --architectures="$ARCH" --include="$(IFS=,; echo "${PACKAGES[*]}")" \
  --essential-hook="mkdir -p \"\$1/etc/initramfs-tools/conf.d\" \"\$1/usr/share/initramfs-tools/modules.d\"" \
  --essential-hook="echo MODULES=list > \"\$1/etc/initramfs-tools/conf.d/node-health-vm.conf\"" \
  --essential-hook="printf '%s\n' ${INITRD_MODULES[*]} > \"\$1/usr/share/initramfs-tools/modules.d/node-health-vm\"" \
  --customize-hook="bash '$here/customize.sh' \"\$1\" '$here' '$kubelet'" \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  "$SUITE" "$root" "$MIRROR" >"$work/mmdebstrap.log" 2>&1 ||
  { tail -30 "$work/mmdebstrap.log" >&2; die "mmdebstrap failed (log above)"; }

mkdir -p "$work/out"
kernels=("$root"/boot/vmlinuz-*)
[[ ${#kernels[@]} -eq 1 && -f ${kernels[0]} ]] || die "expected one kernel in the image's /boot, found: ${kernels[*]}"
cp "${kernels[0]}" "$work/out/vmlinuz"
cp "$root/boot/initrd.img-${kernels[0]#*/boot/vmlinuz-}" "$work/out/initrd.img"
mkfs.ext4 -q -L nha-root -d "$root" "$work/out/rootfs.img" "$IMAGE_SIZE" ||
  die "mkfs.ext4 -d failed for $work/out/rootfs.img"
rm -rf "$out"
mv "$work/out" "$out"
echo "vm: image built in $(($(date +%s) - started)) s: $(du -sh --apparent-size "$root" | cut -f1) of files" >&2
echo "$out"
