#!/bin/bash
# Runs the HTTP benchmarks: eddy-hello against a libuv + llhttp server,
# Node's http and nginx, every server answering GET with the same 200
# "hello world", and prints one markdown table.
#
#   run-http.sh [--quick] BUILD      BUILD holds bin/eddy-hello and perf/
#
# Each server runs pinned to CPU 0 and wrk (one thread) to CPU 1.  For each
# cell (connections x pipelining depth) and server, a run records wrk's
# requests/s and p50/p99 latency, the server's CPU seconds during the run
# (utime + stime from /proc, all its threads and processes), requests per
# server CPU-second and the server's VmRSS after the run.  Syscalls per
# request come from separate 2 s runs per cell (perf stat, else strace -c),
# so that counting them does not slow the measured runs.  Servers
# are restarted for every round and their order alternates between rounds.
# Then idle-conns opens IDLE idle keep-alive connections to a fresh server
# and reports the resident growth per connection.
#
# Environment:
#   DURATION (5)  seconds per run          REPEATS (3)  rounds; medians
#   CONNS ("64 256")  DEPTHS ("1 16")      IDLE (5000)  idle connections
#   SERVERS ("eddy eddy-uring uv node nginx"): eddy is eddy-hello
#     --backend epoll, eddy-uring eddy-hello --backend io_uring, kept only
#     if it answers; both only if eddy-hello exists
#   EDDY_HELLO (BUILD/bin/eddy-hello)      SYSCALLS (auto: perf|strace|none)
#   SERVER_CPU (0)  CLIENT_CPU (1)
# --quick: DURATION=1, REPEATS=1, IDLE=500, no warm-up: checks the pipeline.
#
# Writes perf/results/http-<date>.csv (medians), http-<date>-runs.csv
# (every run), http-<date>-idle.csv, http-<date>.md (the report) and
# http-<date>.png (requests per server CPU-second).  Exits 1 if a server
# failed to start or crashed, a run produced nothing, or eddy-hello had
# an error (a peer's errors are counted in the table); a missed target is
# reported, not an error.
set -euo pipefail

quick=0
if [ "${1:-}" = --quick ]; then
  quick=1
  shift
fi
build=$(cd "${1:?usage: run-http.sh [--quick] BUILD}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
bindir=$build/perf
eddy_hello=${EDDY_HELLO:-$build/bin/eddy-hello}

duration=${DURATION:-5}
repeats=${REPEATS:-3}
idle_n=${IDLE:-5000}
sc_duration=2
warmup=1
if [ "$quick" = 1 ]; then
  duration=1 repeats=1 idle_n=${IDLE:-500} warmup=0 sc_duration=1
fi
conns_list=${CONNS:-64 256}
depths=${DEPTHS:-1 16}
servers=${SERVERS:-eddy eddy-uring uv node nginx}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
if [ "$(nproc)" -lt 2 ]; then
  echo "run-http: one CPU: server and wrk share it; numbers mean little" >&2
  server_cpu=0 client_cpu=0
fi
clk_tck=$(getconf CLK_TCK)

for tool in wrk taskset curl nginx node perf gnuplot; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ "$tool" != perf ] &&
     [ "$tool" != gnuplot ]; then
    echo "run-http: $tool not found; run perf/deps.sh" >&2
    exit 1
  fi
done
for b in uv-hello idle-conns; do
  if [ ! -x "$bindir/$b" ]; then
    echo "run-http: $bindir/$b missing; make -C perf http-bins" >&2
    exit 1
  fi
done

# Servers and the idle client hold thousands of descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((idle_n + 256)) ]; then
  echo "run-http: RLIMIT_NOFILE $(ulimit -n) is below IDLE+256; IDLE lowered" >&2
  idle_n=$(($(ulimit -n) - 256))
fi

# How syscalls are counted (in separate runs, see count_syscalls): perf
# stat counting the raw_syscalls tracepoint, else strace -c -f.
syscalls=${SYSCALLS:-auto}
if [ "$syscalls" = auto ]; then
  if command -v perf >/dev/null 2>&1 &&
     perf stat -e raw_syscalls:sys_enter -x, -o /dev/null true 2>/dev/null; then
    syscalls=perf
  elif command -v strace >/dev/null 2>&1; then
    syscalls=strace
  else
    syscalls=none
  fi
fi

mkdir -p "$here/results"
stamp=$(date +%Y%m%d-%H%M%S)
out=$here/results/http-$stamp
tmp=$(mktemp -d /tmp/eddy-http.XXXXXX)
commit=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')

live_pids=""
cleanup() {
  local p
  for p in $live_pids; do
    kill -TERM "$p" 2>/dev/null || true
  done
  sleep 0.2
  for p in $live_pids; do
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "run-http: interrupted" >&2; exit 130' INT TERM

say() { printf '%s\n' "$*" >&2; }

# A TCP port nobody listens on, below the ephemeral range wrk's and
# idle-conns' connections use.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    if command -v ss >/dev/null 2>&1; then
      ss -Htln "sport = :$p" | grep -q . || break
    elif ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      break
    fi
  done
  echo "$p"
}

# ---- servers ---------------------------------------------------------------
#
# start_server NAME PORT sets spid (the process to stop) and pids (the
# processes to measure, comma-separated); returns 1 if the server did not
# answer within 10 s.

start_server() {
  local name=$1 port=$2 log=$tmp/$1.log
  case $name in
    eddy)
      taskset -c "$server_cpu" "$eddy_hello" --port "$port" \
        --backend epoll >"$log" 2>&1 &
      ;;
    eddy-uring)
      taskset -c "$server_cpu" "$eddy_hello" --port "$port" \
        --backend io_uring >"$log" 2>&1 &
      ;;
    uv)
      taskset -c "$server_cpu" "$bindir/uv-hello" --port "$port" >"$log" 2>&1 &
      ;;
    node)
      taskset -c "$server_cpu" node "$here/peers/node_hello.js" \
        --port "$port" >"$log" 2>&1 &
      ;;
    nginx)
      local dir=$tmp/nginx-$port user=""
      mkdir -p "$dir"
      [ "$(id -u)" -eq 0 ] && user="user $(id -un) $(id -gn);"
      sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@USER@|$user|" \
        "$here/peers/nginx.conf.in" >"$dir/nginx.conf"
      taskset -c "$server_cpu" nginx -p "$dir" -c "$dir/nginx.conf" \
        -e "$dir/error.log" >"$log" 2>&1 &
      ;;
    *)
      say "run-http: unknown server $name"
      return 1
      ;;
  esac
  spid=$!
  live_pids="$live_pids $spid"
  local i
  for i in $(seq 100); do
    if ! kill -0 "$spid" 2>/dev/null; then
      break
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
       curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/"; then
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
  stop_server
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
  live_pids=$(echo "$live_pids" | tr ' ' '\n' | grep -vx "$spid" | tr '\n' ' ')
}

# utime + stime of every process in $1 (comma-separated), in clock ticks.
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

rss_kb() {
  local p t=0 v
  for p in ${1//,/ }; do
    v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || v=0
    t=$((t + ${v:-0}))
  done
  echo "$t"
}

# wrk CONNS DEPTH SECONDS PORT > its WRK line
run_wrk() {
  taskset -c "$client_cpu" wrk -t1 -c"$1" -d"$3"s --timeout 5s \
    -s "$here/pipeline.lua" "http://127.0.0.1:$4/" -- "$2" "$1" |
    grep '^WRK ' || echo "WRK requests=0 duration_us=1 p50_us=0 p99_us=0 errors=-1 non2xx=0"
}

kv() { # kv KEY LINE
  local f
  for f in $2; do
    case $f in "$1"=*) echo "${f#*=}"; return ;; esac
  done
  echo 0
}

status=0
runs=$out-runs.csv
echo "server,conns,depth,round,requests,duration_s,req_per_s,p50_us,p99_us,cpu_s,req_per_cpu_s,syscalls,syscalls_per_req,rss_kb,errors,non2xx" >"$runs"

# One measured run of a started server; appends a row to $runs.
measure() {
  local name=$1 c=$2 d=$3 r=$4 port=$5
  local t0 t1 line
  t0=$(cpu_ticks "$pids")
  line=$(run_wrk "$c" "$d" "$duration" "$port")
  t1=$(cpu_ticks "$pids")
  local rss req dur p50 p99 err non
  rss=$(rss_kb "$pids")
  req=$(kv requests "$line") dur=$(kv duration_us "$line")
  p50=$(kv p50_us "$line") p99=$(kv p99_us "$line")
  err=$(kv errors "$line") non=$(kv non2xx "$line")
  if [ "$t0" -lt 0 ] || [ "$t1" -lt 0 ]; then
    err=-1
  fi
  awk -v n="$name" -v c="$c" -v d="$d" -v r="$r" -v req="$req" -v dur="$dur" \
      -v p50="$p50" -v p99="$p99" -v t0="$t0" -v t1="$t1" -v hz="$clk_tck" \
      -v rss="$rss" -v err="$err" -v non="$non" 'BEGIN {
    cpu = (t1 - t0) / hz; secs = dur / 1e6
    printf "%s,%d,%d,%d,%d,%.3f,%.0f,%d,%d,%.2f,%.0f,,,%d,%d,%d\n", n, c, d, r,
           req, secs, req / secs, p50, p99, cpu, (cpu > 0 ? req / cpu : 0), rss, err, non
  }' >>"$runs"
  tail -n 1 "$runs" | awk -F, '{ printf "  %-10s c=%-3d d=%-2d round %d: %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  cpu %5.2f s  %8.0f req/cpu-s  rss %d KB%s\n",
    $1, $2, $3, $4, $7, $8 / 1000, $9 / 1000, $10, $11, $14,
    ($15 != 0 || $16 != 0) ? "  ERRORS " $15 "/" $16 : "" }' >&2
  # A peer's stray error (Node times out a request now and then on a busy
  # machine) is reported in the table; eddy's fail the suite.
  if [ "$req" = 0 ] || [ "$err" -lt 0 ]; then
    status=1
  elif [ "${name#eddy}" != "$name" ] && { [ "$err" != 0 ] || [ "$non" != 0 ]; }; then
    status=1
  fi
}

# Syscalls per request of a started server in one cell, from a separate
# short run: perf stat's tracepoint costs the server ~6% of its CPU and
# strace several times more, so neither runs during the measured runs.
# Appends "server,conns,depth,syscalls,requests" to $sccsv.
count_syscalls() {
  local name=$1 c=$2 d=$3 port=$4 line n=0 p v tracers=""
  if [ "$syscalls" = perf ]; then
    taskset -c "$client_cpu" perf stat -e raw_syscalls:sys_enter -x, \
      -o "$tmp/perf.out" -p "$pids" 2>/dev/null &
    tracers=$!
  else
    for p in ${pids//,/ }; do
      timeout 30 strace -c -f -q -o "$tmp/strace.$p" -p "$p" 2>/dev/null &
      tracers="$tracers $!"
    done
  fi
  sleep 0.3 # attached
  line=$(run_wrk "$c" "$d" "$sc_duration" "$port")
  for p in $tracers; do
    kill -INT "$p" 2>/dev/null || true
  done
  for p in $tracers; do
    wait "$p" 2>/dev/null || true
  done
  if [ "$syscalls" = perf ]; then
    n=$(awk -F, '/raw_syscalls:sys_enter/ { print $1 }' "$tmp/perf.out")
  else
    for p in ${pids//,/ }; do
      v=$(awk '$NF == "total" { print $4 }' "$tmp/strace.$p" 2>/dev/null)
      n=$((n + ${v:-0}))
    done
  fi
  case $n in '' | *[!0-9]*) n=0 ;; esac
  echo "$name,$c,$d,$n,$(kv requests "$line")" >>"$sccsv"
  awk -v s="$name" -v c="$c" -v d="$d" -v n="$n" -v q="$(kv requests "$line")" \
    'BEGIN { printf "  %-10s c=%-3d d=%-2d: %d syscalls / %d requests = %.3f per request\n", s, c, d, n, q, (q > 0 ? n / q : 0) }' >&2
}

# ---- which servers run ------------------------------------------------------

say "eddy HTTP benchmarks: commit $commit, $(uname -sr), $(nproc) cpus," \
    "server on cpu $server_cpu, wrk -t1 on cpu $client_cpu"
say "cells: conns {$conns_list} x depth {$depths}, ${duration} s runs," \
    "$repeats rounds, syscalls by $syscalls"

notes=$tmp/notes
: >"$notes"
active=""
for s in $servers; do
  case $s in
    eddy | eddy-uring)
      if [ ! -x "$eddy_hello" ]; then
        say "run-http: $eddy_hello not built; $s skipped"
        echo "- $s: skipped, $eddy_hello not built" >>"$notes"
        [ "$s" = eddy ] && status=1
        continue
      fi
      ;;
  esac
  port=$(free_port)
  if ! start_server "$s" "$port"; then
    why=$(head -c 300 "$tmp/$s.log" | tr '\n' ' ')
    if [ "$s" = eddy-uring ]; then
      say "run-http: eddy-hello --backend io_uring does not answer; skipped ($why)"
      echo "- eddy-uring: skipped, \`eddy-hello --backend io_uring\` did not answer: $why" >>"$notes"
    else
      say "run-http: $s did not start: $why"
      echo "- $s: FAILED to start: $why" >>"$notes"
      status=1
    fi
    continue
  fi
  # The exact answer, headers and body, as the table's footnote.
  curl -s -i --max-time 2 "http://127.0.0.1:$port/" >"$tmp/answer" || true
  bytes=$(wc -c <"$tmp/answer")
  resp=$(sed -z -e 's/\r/\\r/g' -e 's/\n/\\n/g' "$tmp/answer")
  say "$s answers ($bytes bytes): $resp"
  echo "- $s ($bytes bytes): \`$resp\`" >>"$notes"
  stop_server
  active="$active $s"
done
[ -n "$active" ] || { say "run-http: no server runs"; exit 1; }

# ---- throughput rounds ------------------------------------------------------
#
# All servers run at once (pinned to the same CPU; the ones not measured
# are idle), and every cell runs each server in turn, the order rotating
# from cell to cell and round to round: a burst of other work on the
# machine then falls on all servers rather than on one.

declare -A SPID SPIDS SPORT DEAD
for s in $active; do
  port=$(free_port)
  if ! start_server "$s" "$port"; then
    say "run-http: $s FAILED to start"
    echo "- $s: FAILED to start for the throughput runs" >>"$notes"
    status=1
    DEAD[$s]=1
    continue
  fi
  SPID[$s]=$spid SPIDS[$s]=$pids SPORT[$s]=$port
  if [ "$warmup" = 1 ]; then
    run_wrk 64 1 1 "$port" >/dev/null
  fi
done

# use_server NAME: makes it the one spid/pids/port refer to.
use_server() {
  spid=${SPID[$1]} pids=${SPIDS[$1]} port=${SPORT[$1]}
}

check_alive() { # check_alive NAME WHERE
  if [ -z "${DEAD[$1]:-}" ] && ! kill -0 "${SPID[$1]}" 2>/dev/null; then
    DEAD[$1]=1
    say "  $1 CRASHED ($2)"
    echo "- $1: CRASHED in $2: $(tail -c 300 "$tmp/$1.log" | tr '\n' ' ')" >>"$notes"
    status=1
  fi
}

read -r -a ring <<<"$active"
nring=${#ring[@]}
cellno=0
for r in $(seq "$repeats"); do
  for c in $conns_list; do
    for d in $depths; do
      say "round $r/$repeats, $c connections, depth $d"
      for i in $(seq 0 $((nring - 1))); do
        if [ $((r % 2)) -eq 1 ]; then
          s=${ring[$(((cellno + i) % nring))]}
        else
          s=${ring[$(((cellno + nring - i) % nring))]}
        fi
        [ -n "${DEAD[$s]:-}" ] && continue
        use_server "$s"
        measure "$s" "$c" "$d" "$r" "$port"
        check_alive "$s" "round $r, cell c=$c d=$d"
        sleep 0.3
      done
      cellno=$((cellno + 1))
    done
  done
done

# ---- syscalls per request, apart from the measured runs --------------------

sccsv=$tmp/syscalls.csv
: >"$sccsv"
if [ "$syscalls" != none ]; then
  say "syscalls per request: $syscalls, one ${sc_duration} s run per cell, apart from the runs above"
  for s in $active; do
    [ -n "${DEAD[$s]:-}" ] && continue
    use_server "$s"
    for c in $conns_list; do
      for d in $depths; do
        count_syscalls "$s" "$c" "$d" "$port"
      done
    done
    check_alive "$s" "the syscall runs"
  done
fi

for s in $active; do
  if [ -z "${DEAD[$s]:-}" ]; then
    use_server "$s"
    stop_server
  fi
done

# ---- idle connections -------------------------------------------------------

idle=$out-idle.csv
echo "server,conns,open,rss_before_kb,rss_after_kb,bytes_per_conn,setup_ms" >"$idle"
for s in $active; do
  case $s in eddy | eddy-uring | uv | node | nginx) ;; *) continue ;; esac
  port=$(free_port)
  if ! start_server "$s" "$port"; then
    echo "- $s: FAILED to start for the idle test" >>"$notes"
    status=1
    continue
  fi
  say "idle: $s, $idle_n connections"
  if line=$("$bindir/idle-conns" --pid "$pids" --port "$port" \
              --conns "$idle_n" 2>"$tmp/idle.err"); then
    :
  else
    say "  $s: idle-conns failed: $(cat "$tmp/idle.err") $line"
    echo "- $s: idle test failed: $(head -c 200 "$tmp/idle.err" | tr '\n' ' ') $line" >>"$notes"
    status=1
  fi
  if [ -n "$line" ]; then
    say "  $line"
    echo "$s,$(kv conns "$line"),$(kv open "$line"),$(kv rss_before_kb "$line"),$(kv rss_after_kb "$line"),$(kv bytes_per_conn "$line"),$(kv setup_ms "$line")" >>"$idle"
  fi
  stop_server
done

# ---- report -----------------------------------------------------------------

# Syscalls per request, from their own runs, fill the syscall columns.
if [ -s "$sccsv" ]; then
  awk -F, -v OFS=, 'NR == FNR { k = $1 FS $2 FS $3; s[k] = $4; q[k] = $5; next }
    FNR > 1 { k = $1 FS $2 FS $3; if (k in s && q[k] > 0) { $12 = s[k]; $13 = sprintf("%.3f", s[k] / q[k]) } }
    { print }' "$sccsv" "$runs" >"$tmp/runs" && cp "$tmp/runs" "$runs"
fi

awk -F, -v out="$out" -v dat="$tmp/chart.dat" -v idlef="$idle" \
    -v notesf="$notes" -v duration="$duration" -v repeats="$repeats" \
    -v syscalls="$syscalls" -v header="commit $commit, $(uname -sr), $(nproc) cpus, $(date -u +%Y-%m-%dT%H:%M:%SZ)" '
function median(k, col, cnt,    a, i, j, t, m) {
  m = 0
  for (i = 1; i <= cnt; i++) if (v[k, i, col] != "") a[++m] = v[k, i, col] + 0
  if (m == 0) return ""
  for (i = 2; i <= m; i++)
    for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
  return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
function spread(k, col, cnt,    i, lo, hi, md) {
  lo = hi = v[k, 1, col] + 0
  for (i = 2; i <= cnt; i++) { if (v[k, i, col] + 0 < lo) lo = v[k, i, col] + 0; if (v[k, i, col] + 0 > hi) hi = v[k, i, col] + 0 }
  md = median(k, col, cnt)
  return md > 0 ? 100 * (hi - lo) / md : 0
}
function note_server(s) { if (!(s in seen_s)) { seen_s[s] = 1; srv[++ns] = s } }
function note_cell(c) { if (!(c in seen_c)) { seen_c[c] = 1; cell[++nc] = c } }
function ratio(a, b) { return (a != "" && b != "" && b > 0) ? a / b : "" }
function fmt_ratio(x) { return x == "" ? "-" : sprintf("%.2fx", x) }
FNR == 1 { next }
{
  c = "c" $2 " d" $3; note_server($1); note_cell(c)
  k = $1 SUBSEP c; n[k]++
  for (i = 5; i <= NF; i++) v[k, n[k], i] = $i
  if ($15 < 0 || $5 == 0) failed[k]++; else errs[k] += $15 + $16
}
END {
  csv = out ".csv"; md = out ".md"
  print "server,cell,conns,depth,runs,req_per_s,p50_us,p99_us,cpu_s,req_per_cpu_s,req_per_cpu_s_spread_pct,syscalls_per_req,rss_kb,errors,failed_runs" > csv
  for (ci = 1; ci <= nc; ci++) for (si = 1; si <= ns; si++) {
    k = srv[si] SUBSEP cell[ci]; if (!n[k]) continue
    split(cell[ci], cd, " ")
    rps[k] = median(k, 7, n[k]); p50[k] = median(k, 8, n[k]); p99[k] = median(k, 9, n[k])
    cpu[k] = median(k, 10, n[k]); rpc[k] = median(k, 11, n[k]); spr[k] = median(k, 13, n[k])
    rss[k] = median(k, 14, n[k]); sp[k] = spread(k, 11, n[k])
    printf "%s,%s,%s,%s,%d,%.0f,%.0f,%.0f,%.2f,%.0f,%.0f,%s,%.0f,%d,%d\n", srv[si], cell[ci],
           substr(cd[1], 2), substr(cd[2], 2), n[k], rps[k], p50[k], p99[k], cpu[k], rpc[k], sp[k],
           spr[k] == "" ? "" : sprintf("%.3f", spr[k]), rss[k], errs[k], failed[k] > csv
  }

  o = "# eddy HTTP benchmarks\n\n" header "; " duration " s runs, medians of " repeats " rounds; syscalls by " syscalls "\n\n"
  o = o "| cell | server | req/s | p50 ms | p99 ms | server CPU s | req per CPU-s | spread | syscalls/req | RSS MB | errors |\n"
  o = o "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
  for (ci = 1; ci <= nc; ci++) for (si = 1; si <= ns; si++) {
    k = srv[si] SUBSEP cell[ci]; if (!n[k]) continue
    o = o sprintf("| %s | %s | %.0f | %.2f | %.2f | %.2f | %.0f | %.0f%% | %s | %.1f | %s |\n", cell[ci], srv[si],
                  rps[k], p50[k] / 1000, p99[k] / 1000, cpu[k], rpc[k], sp[k],
                  spr[k] == "" ? "-" : sprintf("%.2f", spr[k]), rss[k] / 1024, failed[k] ? failed[k] " runs FAILED" : errs[k] + 0)
  }

  # Ratios of requests per server CPU-second, for each eddy backend.
  ne = 0
  for (si = 1; si <= ns; si++) if (srv[si] ~ /^eddy/) ed[++ne] = srv[si]
  np = 0
  for (si = 1; si <= ns; si++) if (srv[si] !~ /^eddy/) pe[++np] = srv[si]
  targets = ""
  if (ne > 0 && np > 0) {
    o = o "\nRequests per server CPU-second, ratios:\n\n| cell |"
    sep = "|---|"
    for (ei = 1; ei <= ne; ei++) for (pi = 1; pi <= np; pi++) { o = o " " ed[ei] "/" pe[pi] " |"; sep = sep "---:|" }
    o = o "\n" sep "\n"
    for (ci = 1; ci <= nc; ci++) {
      o = o "| " cell[ci] " |"
      for (ei = 1; ei <= ne; ei++) for (pi = 1; pi <= np; pi++) {
        x = ratio(rpc[ed[ei] SUBSEP cell[ci]], rpc[pe[pi] SUBSEP cell[ci]])
        o = o " " fmt_ratio(x) " |"
      }
      o = o "\n"
    }
    want["uv"] = 1.0; want["nginx"] = 1.0; want["node"] = 2.5
    for (ei = 1; ei <= ne; ei++) for (pi = 1; pi <= np; pi++) {
      p = pe[pi]; if (!(p in want)) continue
      ok = 1; worst = ""; cells = ""
      for (ci = 1; ci <= nc; ci++) {
        x = ratio(rpc[ed[ei] SUBSEP cell[ci]], rpc[p SUBSEP cell[ci]])
        if (x == "" || x < want[p]) { ok = 0; cells = cells sprintf(" %s %s", cell[ci], fmt_ratio(x)) }
        if (x != "" && (worst == "" || x < worst)) worst = x
      }
      targets = targets sprintf("target %s >= %.1fx %s (req per CPU-s, every cell): %s", ed[ei], want[p], p,
                                ok ? sprintf("met (lowest %.2fx)", worst) : "NOT MET in" cells) "\n"
    }
  }

  # Idle connections.
  ni = 0
  while ((getline line < idlef) > 0) {
    if (++ni == 1) { o = o "\nIdle keep-alive connections (one GET each, then idle), resident growth:\n\n| server | conns | still open | RSS before MB | RSS after MB | bytes per conn |\n|---|---:|---:|---:|---:|---:|\n"; continue }
    split(line, f, ",")
    o = o sprintf("| %s | %d | %d | %.1f | %.1f | %.0f |\n", f[1], f[2], f[3], f[4] / 1024, f[5] / 1024, f[6])
    if (f[1] ~ /^eddy/)
      targets = targets sprintf("target %s <= 2048 bytes per idle connection: %s (%.0f)", f[1],
                                (f[6] <= 2048 && f[3] == f[2]) ? "met" : "NOT MET", f[6]) "\n"
  }

  o = o "\n" targets
  nn = 0
  while ((getline line < notesf) > 0) { if (++nn == 1) o = o "\nServers and their answers:\n\n"; o = o line "\n" }
  printf "%s", o
  printf "%s", o > md

  # Chart data: one row per cell, one column per server.
  printf "cell" > dat
  for (si = 1; si <= ns; si++) printf " %s", srv[si] > dat
  printf "\n" > dat
  for (ci = 1; ci <= nc; ci++) {
    printf "\"%s\"", cell[ci] > dat
    for (si = 1; si <= ns; si++) { k = srv[si] SUBSEP cell[ci]; printf " %s", n[k] ? sprintf("%.0f", rpc[k]) : "0" > dat }
    printf "\n" > dat
  }
}' "$runs"

if command -v gnuplot >/dev/null 2>&1; then
  nserv=$(head -n 1 "$tmp/chart.dat" | wc -w)
  gnuplot <<EOF 2>"$tmp/gnuplot.err" || say "run-http: gnuplot failed: $(cat "$tmp/gnuplot.err")"
set terminal pngcairo size 1000,560 font "sans,10"
set output "$out.png"
set title "eddy HTTP: requests per server CPU-second (higher is better)\\ncommit $commit, ${duration} s runs, medians of $repeats; server on 1 CPU, wrk -t1 on another"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top left autotitle columnheader
set grid ytics
set logscale y
set yrange [1000:*]
set format y "%.0s%c"
set xlabel "connections, pipelining depth"
set ylabel "requests per server CPU-second (log scale)"
n = $nserv - 1
gap = 1.0
barx(i) = column(0) + (i - 2 - (n - 1) / 2.0) / (n + gap)
plot for [i=2:$nserv] "$tmp/chart.dat" using i:xtic(1), \
     for [i=2:$nserv] "$tmp/chart.dat" using (barx(i)):(column(i)):(sprintf("%.0fk", column(i) / 1000.0)) \
       with labels offset 0,0.6 font "sans,8" notitle
EOF
fi

say ""
say "results: $out.md, $out.csv, $out-runs.csv, $out-idle.csv${syscalls:+}$( [ -f "$out.png" ] && echo ", $out.png")"
exit "$status"
