#!/usr/bin/env bash
# Installs everything the build and the tests need on a fresh Debian/Ubuntu machine, then the npm
# dependencies. Safe to run again: what is already there is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: installing system packages needs root (run with sudo)" >&2
    exit 2
  fi
}

apt_packages=(build-essential python3 pkg-config libsystemd-dev)
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

npm ci --no-audit --no-fund
