#!/bin/sh
# Before the files go. Called as
#   deb prerm: remove | upgrade <new-version> | deconfigure ... | failed-upgrade <old-version>
#   rpm %preun: 0 (erase) | 1 or more (upgrade: this is the old package's scriptlet)
# On removal stop and disable the unit. A stop that fails on a running system fails the removal:
# otherwise an agent that may still repair the node would keep running from deleted files. Upgrades
# leave the agent running; postinstall restarts it on the new files.
set -eu

unit=node-health-agent.service
marker=/var/lib/node-health/.enabled-at-removal

say() { echo "node-health-agent: $*" >&2; }

case "${1:-}" in
  remove | 0) ;;
  *) exit 0 ;;
esac
command -v systemctl >/dev/null 2>&1 || exit 0

# Remembered for a later reinstall (dpkg keeps conffiles after "remove" and then reports the old
# version to postinstall, as on an upgrade).
if systemctl is-enabled --quiet "$unit" 2>/dev/null; then
  mkdir -p -m 0700 "${marker%/*}" && : >"$marker" ||
    say "warning: could not write $marker; after a reinstall run: systemctl enable --now $unit"
fi

if [ -d /run/systemd/system ]; then
  if ! systemctl stop "$unit"; then
    say "error: could not stop $unit; stop it (systemctl stop $unit, or kill it) and remove the package again"
    exit 1
  fi
fi
systemctl disable "$unit" || say "warning: could not disable $unit; run: systemctl disable $unit"
exit 0
