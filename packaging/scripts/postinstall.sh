#!/bin/sh
# After the files are in place. Called as
#   deb postinst: configure [<old-version>] | abort-upgrade | abort-remove | abort-deconfigure ...
#   rpm %post:    1 (install) | 2 or more (upgrade)
# Fresh install: enable the unit, and start it when systemd is running. Upgrade: restart it if it
# runs, so the new code is live. While an image is baked (no systemd running) only enable: the unit
# starts on first boot. Only a failed enable fails the transaction: an agent that cannot be enabled
# would silently never run.
set -eu

unit=node-health-agent.service
marker=/var/lib/node-health/.enabled-at-removal

say() { echo "node-health-agent: $*" >&2; }

case "${1:-}" in
  configure)
    # dpkg passes the old version both on upgrade and on a reinstall after "remove" (the conffiles
    # stayed); preremove leaves the marker only in the second case.
    if [ -n "${2:-}" ] && [ ! -e "$marker" ]; then action=upgrade; else action=install; fi ;;
  # A removal whose stop failed: the unit is still enabled; make sure it runs.
  abort-remove) action=install ;;
  # Nothing was stopped or disabled for an upgrade or a deconfigure: leave enablement alone.
  abort-upgrade | abort-deconfigure) action=upgrade ;;
  1) action=install ;;
  [2-9] | [1-9][0-9]*) action=upgrade ;;
  *) say "postinstall called with unknown argument '${1:-}', nothing done"; exit 0 ;;
esac
rm -f "$marker"

if ! command -v systemctl >/dev/null 2>&1; then
  say "systemctl not found: $unit was not enabled (this host does not run systemd)"
  exit 0
fi
live=false
[ -d /run/systemd/system ] && live=true

if $live; then
  systemctl daemon-reload || say "warning: systemctl daemon-reload failed; run it before using $unit"
fi

case "$action" in
  install)
    if ! systemctl enable "$unit"; then
      say "error: could not enable $unit; fix the cause above, then run: systemctl enable $unit"
      exit 1
    fi
    if $live; then
      systemctl start "$unit" ||
        say "warning: $unit did not start; see: systemctl status $unit; journalctl -u $unit"
    fi
    ;;
  upgrade)
    if $live; then
      systemctl try-restart "$unit" ||
        say "warning: $unit did not restart on the new version; see: systemctl status $unit"
    fi
    ;;
esac
exit 0
