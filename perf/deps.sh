#!/bin/sh
# Installs the Debian packages the HTTP benchmarks need, if any is missing
# (dpkg first; apt-get only for what is not installed).
#
#   wrk           the load generator (LuaJIT scripts: pipeline.lua)
#   nginx-light   the nginx peer
#   node-llhttp   llhttp's C sources, compiled into the libuv peer
#   libuv1-dev    the libuv peer (static libuv_a.a)
#   nodejs        the Node peer
#   gnuplot-nox   the PNG chart
#   linux-perf    perf stat: syscalls per request (strace is the fallback)
#   strace        that fallback
#   gcc make pkg-config util-linux (taskset) procps (pgrep)
set -eu

pkgs="gcc make pkg-config util-linux procps wrk nginx-light node-llhttp \
libuv1-dev gnuplot-nox linux-perf strace"
# Node may come from elsewhere than Debian (nvm, nodesource); any node
# on PATH will do.
command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"

missing=""
for p in $pkgs; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

echo "eddy perf: installing missing packages:$missing"
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1; then
  sudo="sudo"
else
  echo "eddy perf: not root and no sudo; run as root: apt-get install$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing
