#!/bin/bash
# Static file serving: eddy-static --backend epoll and --backend io_uring
# against nginx (sendfile on, one worker, access log off), all three
# serving the same directory, for a 1 KB and a 1 MB file.
#
#   run.sh BUILD      BUILD holds bin/eddy-static
#
# As perf/run-http.sh: the server runs pinned to CPU 0 and wrk -t1 to CPU
# 1; each run records wrk's requests/s, the server's CPU seconds during the
# run (utime + stime of all its processes, from /proc) and so requests per
# server CPU-second; servers are restarted for every run and their order
# alternates between rounds; the table gives medians of REPEATS rounds and
# each eddy's ratio to nginx in requests per server CPU-second (target
# >= 0.9).
#
# Environment: DURATION (5) s per run, REPEATS (3), CONNS (64),
# SERVERS ("eddy eddy-uring nginx"), SERVER_CPU (0), CLIENT_CPU (1).
# Writes perf/results/static-<date>-runs.csv and static-<date>.md.
set -euo pipefail

build=$(cd "${1:?usage: run.sh BUILD}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
eddy_static=$build/bin/eddy-static
duration=${DURATION:-5}
repeats=${REPEATS:-3}
conns=${CONNS:-64}
servers=${SERVERS:-eddy eddy-uring nginx}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
clk_tck=$(getconf CLK_TCK)

for tool in wrk taskset curl nginx; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "static: $tool not found; run perf/deps.sh" >&2
    exit 1
  }
done
[ -x "$eddy_static" ] || {
  echo "static: $eddy_static missing; make all" >&2
  exit 1
}

results=$here/../results
mkdir -p "$results"
stamp=$(date +%Y%m%d-%H%M%S)
out=$results/static-$stamp
tmp=$(mktemp -d /tmp/eddy-static.XXXXXX)
commit=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')
root=$tmp/root
mkdir -p "$root"
head -c 1024 /dev/urandom >"$root/1k.bin"
head -c $((1024 * 1024)) /dev/urandom >"$root/1m.bin"

spid=""
cleanup() {
  [ -n "$spid" ] && kill -KILL "$spid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
say() { printf '%s\n' "$*" >&2; }

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    ss -Htln "sport = :$p" 2>/dev/null | grep -q . || break
  done
  echo "$p"
}

# start_server NAME PORT: sets spid and pids (comma-separated, measured).
start_server() {
  local name=$1 port=$2 log=$tmp/$1.log
  case $name in
    eddy | eddy-uring)
      local be=epoll
      [ "$name" = eddy-uring ] && be=io_uring
      taskset -c "$server_cpu" "$eddy_static" --root "$root" --port "$port" \
        --backend "$be" >"$log" 2>&1 &
      ;;
    nginx)
      local dir=$tmp/nginx-$port user=""
      mkdir -p "$dir"
      [ "$(id -u)" -eq 0 ] && user="user $(id -un) $(id -gn);"
      sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@USER@|$user|" \
        -e "s|@ROOT@|$root|g" "$here/nginx.conf.in" >"$dir/nginx.conf"
      taskset -c "$server_cpu" nginx -p "$dir" -c "$dir/nginx.conf" \
        -e "$dir/error.log" >"$log" 2>&1 &
      ;;
  esac
  spid=$!
  local i
  for i in $(seq 100); do
    kill -0 "$spid" 2>/dev/null || break
    if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/1k.bin"; then
      pids=$spid
      if [ "$name" = nginx ]; then
        local w
        w=$(pgrep -P "$spid" | tr '\n' ',' | sed 's/,$//')
        [ -n "$w" ] && pids="$spid,$w"
      fi
      return 0
    fi
    sleep 0.1
  done
  say "static: $name did not start: $(cat "$log")"
  return 1
}

stop_server() {
  kill -TERM "$spid" 2>/dev/null || true
  local i
  for i in $(seq 30); do
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  spid=""
}

cpu_ticks() {
  local p t=0 rest
  for p in ${1//,/ }; do
    rest=$(cat "/proc/$p/stat" 2>/dev/null) || { echo -1; return; }
    rest=${rest##*) }
    set -- $rest
    t=$((t + ${12} + ${13}))
  done
  echo "$t"
}

# The first eddy-uring start tells whether io_uring works here.
if [[ " $servers " == *" eddy-uring "* ]]; then
  port=$(free_port)
  if start_server eddy-uring "$port" &&
     grep -q io_uring "$tmp/eddy-uring.log"; then
    stop_server
  else
    [ -n "$spid" ] && stop_server
    say "static: io_uring is not available here; eddy-uring left out"
    servers=${servers//eddy-uring/}
  fi
fi

runs=$out-runs.csv
echo "server,file,round,requests,duration_s,req_per_s,mb_per_s,cpu_s,req_per_cpu_s,errors" >"$runs"
status=0
say "eddy static serving: commit $commit, $(uname -sr), $(nproc) cpus," \
    "server on cpu $server_cpu, wrk -t1 -c$conns on cpu $client_cpu," \
    "${duration} s runs, $repeats rounds"

for round in $(seq "$repeats"); do
  order=$servers
  if [ $((round % 2)) = 0 ]; then
    order=$(echo "$servers" | tr ' ' '\n' | grep . | tac | tr '\n' ' ')
  fi
  for file in 1k.bin 1m.bin; do
    for s in $order; do
      port=$(free_port)
      start_server "$s" "$port" || { status=1; continue; }
      t0=$(cpu_ticks "$pids")
      wout=$(taskset -c "$client_cpu" wrk -t1 -c"$conns" -d"${duration}s" \
        --timeout 5s "http://127.0.0.1:$port/$file" 2>&1 || true)
      t1=$(cpu_ticks "$pids")
      stop_server
      req=$(echo "$wout" | awk '/requests in/ { print $1 }')
      dur=$(echo "$wout" | awk '/requests in/ { sub(/s,$/, "", $4); print $4 }')
      errs=$(echo "$wout" | awk '/Socket errors|Non-2xx/ { n++ } END { print n + 0 }')
      [ -n "$req" ] || { say "static: $s $file: wrk said: $wout"; status=1; continue; }
      awk -v s="$s" -v f="$file" -v r="$round" -v req="$req" -v dur="$dur" \
          -v t0="$t0" -v t1="$t1" -v hz="$clk_tck" -v e="$errs" 'BEGIN {
        size = (f == "1k.bin") ? 1024 : 1048576
        cpu = (t1 - t0) / hz
        printf "%s,%s,%d,%d,%.2f,%.0f,%.1f,%.2f,%.0f,%d\n", s, f, r, req, dur,
               req / dur, req * size / dur / 1048576, cpu,
               (cpu > 0 ? req / cpu : 0), e
      }' >>"$runs"
      tail -n 1 "$runs" | awk -F, '{ printf "  %-10s %-6s round %d: %8.0f req/s %8.1f MB/s  cpu %5.2f s  %8.0f req/cpu-s%s\n",
        $1, $2, $3, $6, $7, $8, $9, ($10 != 0) ? "  ERRORS" : "" }' >&2
    done
  done
done

# Medians per server and file, and each eddy's ratio to nginx.
{
  echo "# Static serving, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit"
  echo
  echo "wrk -t1 -c$conns, ${duration} s runs, median of $repeats; server on CPU $server_cpu, wrk on CPU $client_cpu."
  echo
  echo "| server | file | req/s | MB/s | server CPU s | req per server CPU-s | vs nginx (req/CPU-s) |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  awk -F, 'NR > 1 { k = $1 "," $2; n[k]++; rps[k, n[k]] = $6; mbs[k, n[k]] = $7;
                    cpu[k, n[k]] = $8; rpc[k, n[k]] = $9; keys[k] = 1 }
    function med(a, k, m,   i, j, t, v) {
      for (i = 1; i <= m; i++) v[i] = a[k, i]
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++)
        if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
    }
    END {
      for (k in keys) { m = n[k]; R[k] = med(rps, k, m); M[k] = med(mbs, k, m)
                        C[k] = med(cpu, k, m); P[k] = med(rpc, k, m) }
      split("1k.bin 1m.bin", files, " ")
      split("eddy eddy-uring nginx", srv, " ")
      for (fi = 1; fi <= 2; fi++) for (si = 1; si <= 3; si++) {
        k = srv[si] "," files[fi]
        if (!(k in keys)) continue
        ng = srv[3] "," files[fi]
        ratio = (ng in P && P[ng] > 0) ? sprintf("%.2f", P[k] / P[ng]) : "-"
        printf "| %s | %s | %.0f | %.1f | %.2f | %.0f | %s |\n", srv[si], files[fi],
               R[k], M[k], C[k], P[k], ratio
      }
    }' "$runs"
} >"$out.md"
cat "$out.md"
say "static: $runs, $out.md"
exit $status
