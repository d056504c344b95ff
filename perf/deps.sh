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

pkgs="util-linux procps wrk nginx-light node-llhttp libuv1-dev gnuplot-nox \
linux-perf strace"
# Node may come from elsewhere than Debian (nvm, nodesource); any node
# on PATH will do.
command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
# shellcheck disable=SC2086
exec sh "$(dirname "$0")/../scripts/deps.sh" $pkgs
