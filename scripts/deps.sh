#!/bin/sh
# Installs the Debian packages eddy needs, if any is missing.
#   scripts/deps.sh            build and test
#   scripts/deps.sh perf       also libuv, for make perf-core
#   scripts/deps.sh PKG...     build and test, plus these packages
set -eu

pkgs="gcc make pkg-config libcriterion-dev liburing-dev node-llhttp curl libgraphicsmagick1-dev graphicsmagick"
if [ "${1:-}" = perf ]; then
  pkgs="$pkgs libuv1-dev"
elif [ $# -gt 0 ]; then
  pkgs="$pkgs $*"
fi

missing=""
for p in $pkgs; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

echo "eddy: installing missing packages:$missing"
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1; then
  sudo="sudo"
else
  echo "eddy: not root and no sudo; run as root: apt-get install$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing
