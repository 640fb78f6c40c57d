#!/usr/bin/env bash
# mmdebstrap's customize hook for build-image.sh: turns the unpacked root ($1) into a bootable VM ground.
#   usage: customize.sh ROOT SCRIPTS_DIR
set -euo pipefail
root=$1
src=$2

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
