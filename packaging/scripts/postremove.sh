#!/bin/sh
# After the files are gone. Called as
#   deb postrm: remove | purge | upgrade <new-version> | failed-upgrade | abort-install | abort-upgrade | disappear
#   rpm %postun: 0 (erase) | 1 or more (upgrade: this is the old package's scriptlet)
# Reload systemd so it forgets the removed unit. A deb purge also deletes the agent's state
# (/var/lib/node-health); rpm has no purge, so an erased rpm leaves the state for a reinstall.
set -eu

say() { echo "node-health-agent: $*" >&2; }

case "${1:-}" in
  remove | purge | 0) ;;
  *) exit 0 ;;
esac

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload || say "warning: systemctl daemon-reload failed"
fi

if [ "$1" = purge ]; then
  rm -rf /var/lib/node-health || say "warning: could not delete /var/lib/node-health"
fi
exit 0
