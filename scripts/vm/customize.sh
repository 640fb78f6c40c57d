#!/usr/bin/env bash
# mmdebstrap's customize hook for build-image.sh: turns the unpacked root ($1) into a bootable VM ground.
#   usage: customize.sh ROOT SCRIPTS_DIR [KUBELET]     (without KUBELET: no Kubernetes node parts)
set -euo pipefail
root=$1
src=$2
kubelet=${3:-}

echo node-health-vm >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 node-health-vm\n' >"$root/etc/hosts"
echo 'LABEL=nha-root / ext4 rw,errors=remount-ro 0 1' >"$root/etc/fstab"
# No login prompt is needed (the tests talk to the guest agent), but a root shell on the serial
# console helps by hand: root has no password.
passwd --root "$root" -d root >/dev/null

# User-mode networking: the guest is 10.0.2.15 behind qemu's slirp (no route out, see vm.sh).
mkdir -p "$root/etc/systemd/network"
cat >"$root/etc/systemd/network/10-vm.network" <<'NET'
[Match]
Name=en* eth*
[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
LinkLocalAddressing=no
IPv6AcceptRA=no
NET
chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1

install -m 0755 "$src/guest-agent.sh" "$root/usr/local/sbin/nha-guest-agent"
install -m 0644 "$src/guest-agent.service" "$root/etc/systemd/system/nha-guest-agent.service"
chroot "$root" systemctl enable nha-guest-agent.service >/dev/null 2>&1

# Timers that would take the dpkg lock or scan disks while a test runs.
for unit in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer \
  systemd-networkd-wait-online.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done

# Keep the image small: package lists and apt's caches are not needed to boot.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb

# The rest makes the guest a Kubernetes node; an image built without a kubelet is only the ground.
[[ -n $kubelet ]] || exit 0

# The node: the kubelet under systemd (started once a test puts credentials in place), containerd set up
# for it, a bridge network for pods from Debian's CNI plugins.
install -m 0755 "$kubelet" "$root/usr/local/bin/kubelet"
install -m 0644 "$src/node/kubelet.service" "$root/etc/systemd/system/kubelet.service"
install -D -m 0644 "$src/node/kubelet-config.yaml" "$root/etc/kubernetes/kubelet-config.yaml"
mkdir -p "$root/etc/kubernetes/manifests" "$root/etc/kubernetes/pki"
install -D -m 0644 "$src/node/containerd.toml" "$root/etc/containerd/config.toml"
install -D -m 0644 "$src/node/10-pods.conflist" "$root/etc/cni/net.d/10-pods.conflist"
chroot "$root" systemctl enable kubelet.service >/dev/null 2>&1

# The node's container images, built here (no registry is reachable from the guest) and imported into
# containerd's k8s.io namespace, unpacked, so the kubelet finds them as if pulled: the pod sandbox (a
# static pause program) and a workload image with Debian's busybox-static.
images=$(mktemp -d /tmp/nha-vm-images.XXXXXX)
ctd_pid=
stop_containerd() {
  if [[ -n $ctd_pid ]]; then kill -TERM "$ctd_pid" 2>/dev/null || true; wait "$ctd_pid" || true; fi
  rm -rf "$images"
}
trap stop_containerd EXIT
mkdir -p "$images/pause" "$images/busybox/bin"
gcc -static -Os -Wall -Wextra -Werror -o "$images/pause/pause" "$src/images/pause.c"
bash "$src/images/oci-archive.sh" localhost/node-health/pause:1 "$images/pause" "$images/pause.tar" /pause
cp "$root/bin/busybox" "$images/busybox/bin/busybox"
for applet in $("$images/busybox/bin/busybox" --list); do
  [[ $applet == busybox ]] || ln -s busybox "$images/busybox/bin/$applet"
done
bash "$src/images/oci-archive.sh" localhost/node-health/busybox:1 "$images/busybox" "$images/busybox.tar" /bin/sh
# The guest's own containerd on the image's /var/lib/containerd (the same version reads it at boot);
# CRI is off here, it is not needed to import.
cat >"$images/containerd.toml" <<TOML
version = 2
root = "$root/var/lib/containerd"
state = "$images/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$images/containerd.sock"
TOML
"$root/usr/bin/containerd" --config "$images/containerd.toml" >"$images/containerd.log" 2>&1 &
ctd_pid=$!
for ((i = 0; i < 100; i++)); do
  [[ -S $images/containerd.sock ]] && break
  kill -0 "$ctd_pid" 2>/dev/null || { cat "$images/containerd.log" >&2; echo "customize: containerd exited" >&2; exit 1; }
  sleep 0.1
done
for image in pause busybox; do
  "$root/usr/bin/ctr" --address "$images/containerd.sock" -n k8s.io images import "$images/$image.tar" >/dev/null
done
