#!/bin/bash
# The echo benchmark: eddy-echo on epoll against eddy-echo on io_uring.
#
#   perf/echo/run.sh [BUILD]     BUILD holds bin/eddy-echo (default: build/)
#
# For each message size x connection count, and each backend, eddy-echo
# runs pinned to CPU 0 and echo_load (closed loop, one message in flight
# per connection, every echoed byte checked) pinned to CPU 1.  A measured
# run is WARMUP s of load, then DURATION s measured; echo_load itself reads
# the server's utime+stime (/proc/PID/stat) at both ends of the measured
# window.  Each cell gets REPEATS measured runs per backend, the backends
# alternating (epoll first in odd rounds, io_uring first in even ones) so
# that whatever else the machine does falls on both; a fresh server for
# every run.  Then one shorter run per cell and backend counts the server's
# syscalls: echo_load opens the raw_syscalls:sys_enter tracepoint (what
# `perf stat -e raw_syscalls:sys_enter -p PID` counts) and a few
# syscalls:sys_enter_* ones on the server's threads and reads them at the
# ends of the window.  Counting costs the server time per syscall, more for
# the backend that makes more, so it never runs during a measured run.
# Without perf's tracepoints, strace -c -f -p PID counts them instead
# (its overhead is far larger; the table says which).
#
# If BUILD/bin/eddy-hello exists, it also counts syscalls per HTTP request
# on both backends: wrk, 64 connections, pipelining depth 1 and 16
# (perf/echo/pipeline.lua), server syscalls / requests.
#
# Environment:
#   DURATION (3) measured s per run     WARMUP (1) s of load before it
#   REPEATS (3)  runs per cell/backend  SIZES ("64 512")
#   CONNS ("64 256 1024")               BACKENDS ("epoll io_uring")
#   SC_DURATION (2)  syscall-count run  SYSCALLS (auto|perf|strace|none)
#   HTTP (auto|0)    HTTP_DURATION (3)  SERVER_CPU (0)  CLIENT_CPU (1)
#   LOAD_MODES ("uring epoll"): echo_load's modes, each a full matrix
#   BUSY (1): echo_load busy-polls (-b), so the server never pays for
#     waking it; 0 lets it sleep in io_uring_enter / epoll_wait
#
# Prints a markdown table; writes perf/results/echo-<date>.csv (medians),
# echo-<date>-runs.csv (every run) and echo-<date>.md (the report).  Exits
# 1 if a server failed to start or crashed, fell back to another backend,
# or a run failed its byte check; a missed target is reported, not an
# error.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
echo_bin=$build/bin/eddy-echo
hello_bin=${EDDY_HELLO:-$build/bin/eddy-hello}
load=$build/perf/echo_load

duration=${DURATION:-3}
warmup=${WARMUP:-1}
repeats=${REPEATS:-3}
sizes=${SIZES:-64 512}
conns_list=${CONNS:-64 256 1024}
backends=${BACKENDS:-epoll io_uring}
sc_duration=${SC_DURATION:-2}
http=${HTTP:-auto}
http_duration=${HTTP_DURATION:-3}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
load_modes=${LOAD_MODES:-uring epoll}
busy=${BUSY:-1}
busy_flag=""
[ "$busy" = 1 ] && busy_flag=-b
if [ "$(nproc)" -lt 2 ]; then
  echo "echo/run.sh: one CPU: server and load share it; numbers mean little" >&2
  server_cpu=0 client_cpu=0
fi

say() { printf '%s\n' "$*" >&2; }

[ -x "$echo_bin" ] || { say "echo/run.sh: $echo_bin missing: make all"; exit 1; }
[ -x "$load" ] || { say "echo/run.sh: $load missing: make -C perf/echo"; exit 1; }
command -v taskset >/dev/null || { say "echo/run.sh: taskset missing"; exit 1; }

# Both the server and the load generator hold one descriptor per
# connection (they inherit this limit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
max_conns=0
for c in $conns_list; do [ "$c" -gt "$max_conns" ] && max_conns=$c; done
if [ "$(ulimit -n)" -lt $((max_conns + 64)) ]; then
  say "echo/run.sh: ulimit -n is $(ulimit -n), below $((max_conns + 64))"
  exit 1
fi

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

mkdir -p "$root/perf/results"
stamp=$(date +%Y-%m-%d-%H%M%S)
out=$root/perf/results/echo-$stamp
tmp=$(mktemp -d /tmp/eddy-echo.XXXXXX)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')

live_pids=""
cleanup() {
  local p
  for p in $live_pids; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.2
  for p in $live_pids; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'say "echo/run.sh: interrupted"; exit 130' INT TERM

forget() { # drop a pid from live_pids
  local p keep=""
  for p in $live_pids; do [ "$p" = "$1" ] || keep="$keep $p"; done
  live_pids=$keep
}

failed=0

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

# start_server BIN BACKEND PORT: sets spid; 1 if it did not come up within
# 5 s, or came up on another backend (io_uring falls back to epoll when the
# kernel refuses it): the server's descriptors tell, an io_uring instance
# or an epoll one.
start_server() {
  local bin=$1 be=$2 port=$3 log=$tmp/server.log i kind
  : >"$log"
  taskset -c "$server_cpu" "$bin" --port "$port" --backend "$be" >"$log" 2>&1 &
  spid=$!
  live_pids="$live_pids $spid"
  for i in $(seq 50); do
    kill -0 "$spid" 2>/dev/null || break
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      kind=$(ls -l "/proc/$spid/fd" 2>/dev/null | grep -o 'anon_inode:\[\(io_uring\|eventpoll\)\]' | head -1)
      case $be:$kind in
        io_uring:*io_uring* | epoll:*eventpoll*) return 0 ;;
      esac
      say "echo/run.sh: $(basename "$bin") --backend $be runs on ${kind:-?}:" \
          "$(head -3 "$log" | tr '\n' ' ')"
      stop_server
      return 1
    fi
    sleep 0.1
  done
  say "echo/run.sh: $(basename "$bin") --backend $be did not start:" \
      "$(head -3 "$log" | tr '\n' ' ')"
  stop_server
  return 1
}

# stop_server: SIGTERM, then 1 if it crashed or had to be killed.
stop_server() {
  local i rc=0
  kill -TERM "$spid" 2>/dev/null || true
  for i in $(seq 50); do
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$spid" 2>/dev/null; then
    kill -KILL "$spid" 2>/dev/null || true
    rc=1
  fi
  wait "$spid" 2>/dev/null || rc=1
  forget "$spid"
  return $rc
}

kv() { # kv KEY LINE: the value of KEY=value in LINE, or empty
  printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1
}

# One echo_load run against a fresh server.  run_echo BACKEND SIZE CONNS
# WARM DUR [echo_load options]: sets line to the ECHO line, 1 on failure.
# (Not called in $(...): the server's pid must reach live_pids here.)
run_echo() {
  local be=$1 size=$2 conns=$3 warm=$4 dur=$5 port rc=0
  line=""
  shift 5
  port=$(free_port)
  start_server "$echo_bin" "$be" "$port" || return 1
  line=$(timeout $((${dur%.*} + ${warm%.*} + 40)) \
    taskset -c "$client_cpu" "$load" -c "$conns" -s "$size" -d "$dur" \
    -w "$warm" -p "$port" -m "${load_mode:-uring}" $busy_flag -P "$spid" "$@" \
    2>"$tmp/load.err") || rc=1
  if [ "$rc" = 0 ] && [ "$(kv errors "$line")" != 0 ]; then rc=1; fi
  if [ "$rc" != 0 ]; then
    say "echo/run.sh: $be s=$size c=$conns: load failed: $(head -3 "$tmp/load.err" | tr '\n' ' ')"
  fi
  if ! stop_server; then
    say "echo/run.sh: $be s=$size c=$conns: eddy-echo crashed or hung: $(tail -3 "$tmp/server.log" | tr '\n' ' ')"
    rc=1
  fi
  return $rc
}

median() { # numbers on stdin -> median (empty if none)
  sort -g | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
}

spread() { # numbers on stdin -> (max-min)/median in %
  sort -g | awk '{a[NR]=$1} END {if (NR) {m=(NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); if (m>0) printf "%.0f", 100*(a[NR]-a[1])/m; else print "-"}}'
}

tps="raw_syscalls:sys_enter,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_read,syscalls:sys_enter_sendmsg,syscalls:sys_enter_epoll_ctl"

# Syscalls per message: a separate run.  Sets counts to "total
# io_uring_enter epoll_wait read sendmsg epoll_ctl msgs" (- if unknown).
count_syscalls() {
  local be=$1 size=$2 conns=$3 port total msgs rc=0
  counts="- - - - - - -"
  case $syscalls in
    perf)
      run_echo "$be" "$size" "$conns" 0.5 "$sc_duration" -t "$tps" || return 1
      counts="$(kv sys_enter "$line") $(kv sys_enter_io_uring_enter "$line")"
      counts="$counts $(kv sys_enter_epoll_wait "$line") $(kv sys_enter_read "$line")"
      counts="$counts $(kv sys_enter_sendmsg "$line") $(kv sys_enter_epoll_ctl "$line")"
      counts="$counts $(kv msgs "$line")"
      ;;
    strace)
      # strace sees the whole run (warm-up and the connections' setup), so
      # the messages are echo_load's total; no warm-up to keep them close.
      port=$(free_port)
      start_server "$echo_bin" "$be" "$port" || return 1
      timeout $((sc_duration + 30)) strace -c -f -q -o "$tmp/strace.out" -p "$spid" &
      local stpid=$!
      live_pids="$live_pids $stpid"
      sleep 0.5
      line=$(timeout $((sc_duration + 40)) taskset -c "$client_cpu" "$load" \
        -c "$conns" -s "$size" -d "$sc_duration" -w 0 -p "$port" \
        -m "${load_mode:-uring}" $busy_flag 2>"$tmp/load.err") || rc=1
      kill -INT "$stpid" 2>/dev/null || true
      wait "$stpid" 2>/dev/null || true
      forget "$stpid"
      stop_server || rc=1
      [ "$rc" = 0 ] || return 1
      # strace -c: "% time  seconds  usecs/call  calls  [errors]  syscall"
      sc() { awk -v s="$1" '$NF==s {print $4; exit} END {}' "$tmp/strace.out"; }
      total=$(sc total)
      msgs=$(kv msgs "$line") # the whole run: -w 0
      counts="${total:-0} $(sc io_uring_enter) $(sc epoll_wait) $(sc read) $(sc sendmsg) $(sc epoll_ctl) $msgs"
      counts=$(echo $counts | awk '{for (i = NF + 1; i <= 7; i++) $i = "-"; print}')
      ;;
  esac
}

# ---- the echo matrix ----------------------------------------------------------

nb=$(echo $backends | wc -w)
nm=$(echo $load_modes | wc -w)
ncells=$(( $(echo $sizes | wc -w) * $(echo $conns_list | wc -w) ))
est=$(( nm * ncells * nb * (repeats * (${duration%.*} + ${warmup%.*} + 1) + sc_duration + 2) ))
say "echo/run.sh: $ncells cells x $nb backends x $nm load modes ($load_modes) x" \
    "$repeats runs of ${warmup}+${duration} s, syscalls by $syscalls; about $est s"
say "echo/run.sh: load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
load_start=$(cut -d' ' -f1 /proc/loadavg)

runs_csv=$out-runs.csv
echo "load_mode,backend,size,conns,round,msgs_per_s,secs,msgs,server_cpu_s,server_run_s,msgs_per_cpu_s,client_cpu_s,min_conn,max_conn,server_sleeps,client_sleeps" >"$runs_csv"
csv=$out.csv
echo "load_mode,backend,size,conns,msgs_per_s,server_cpu_s,msgs_per_cpu_s,spread_pct,server_busy_pct,client_busy_pct,syscalls_per_msg,io_uring_enter_per_msg,epoll_wait_per_msg,read_per_msg,sendmsg_per_msg,epoll_ctl_per_msg,syscall_counter,commit" >"$csv"

declare -A MPS MPC SPR SYS ENT SB CB
for load_mode in $load_modes; do
  for size in $sizes; do
    for conns in $conns_list; do
      for r in $(seq "$repeats"); do
        order=$backends
        [ $((r % 2)) = 0 ] && order=$(echo $backends | tr ' ' '\n' | tac | tr '\n' ' ')
        for be in $order; do
          if ! run_echo "$be" "$size" "$conns" "$warmup" "$duration"; then
            failed=1
            continue
          fi
          scpu=$(kv server_cpu_s "$line")
          msgs=$(kv msgs "$line")
          mpc=$(awk -v m="$msgs" -v c="$scpu" 'BEGIN {printf "%.0f", (c > 0 ? m / c : 0)}')
          echo "$load_mode,$be,$size,$conns,$r,$(kv msgs_per_s "$line"),$(kv secs "$line"),$msgs,$scpu,$(kv server_run_s "$line"),$mpc,$(kv client_cpu_s "$line"),$(kv min_conn "$line"),$(kv max_conn "$line"),$(kv server_sleeps "$line"),$(kv client_sleeps "$line")" >>"$runs_csv"
          say "  $load_mode s=$size c=$conns round $r $be: $(kv msgs_per_s "$line") msg/s, server ${scpu} CPU-s, client $(kv client_cpu_s "$line") CPU-s, $mpc msg/CPU-s, min/max per conn $(kv min_conn "$line")/$(kv max_conn "$line")"
        done
      done
      for be in $backends; do
        sel() { awk -F, -v l="$load_mode" -v b="$be" -v s="$size" -v c="$conns" -v f="$1" '$1==l && $2==b && $3==s && $4==c {print $f}' "$runs_csv"; }
        mps=$(sel 6 | median); mpc=$(sel 11 | median); spr=$(sel 11 | spread)
        scpu=$(sel 9 | median); secs=$(sel 7 | median); ccpu=$(sel 12 | median)
        sbusy=$(awk -v a="$scpu" -v b="$secs" 'BEGIN {if (b>0) printf "%.0f", 100*a/b}')
        cbusy=$(awk -v a="$ccpu" -v b="$secs" 'BEGIN {if (b>0) printf "%.0f", 100*a/b}')
        count_syscalls "$be" "$size" "$conns" || failed=1
        read -r t_all t_ent t_ew t_rd t_sm t_ec t_msgs <<<"$counts"
        per() { awk -v a="$1" -v m="$t_msgs" 'BEGIN {if (a ~ /^[0-9]+$/ && m > 0) printf "%.3f", a/m; else printf "-"}'; }
        spm=$(per "$t_all"); epm=$(per "$t_ent")
        k=$load_mode,$be,$size,$conns
        MPS[$k]=$mps MPC[$k]=$mpc SPR[$k]=$spr SYS[$k]=$spm ENT[$k]=$epm SB[$k]=$sbusy CB[$k]=$cbusy
        echo "$load_mode,$be,$size,$conns,$mps,$scpu,$mpc,$spr,$sbusy,$cbusy,$spm,$epm,$(per "$t_ew"),$(per "$t_rd"),$(per "$t_sm"),$(per "$t_ec"),$syscalls,$commit" >>"$csv"
        say "  $load_mode s=$size c=$conns $be: median $mpc msg/CPU-s (spread $spr%), $spm syscalls/msg ($epm io_uring_enter/msg)"
      done
    done
  done
done

# ---- HTTP: syscalls per request ------------------------------------------------

http_lines=()
if [ "$http" != 0 ] && [ -x "$hello_bin" ] && command -v wrk >/dev/null &&
   [ "$syscalls" = perf ]; then
  # io_uring+batch: the same server with EDDY_URING_MIN_WAIT=20, the
  # opt-in batch wait (docs/backends.md).
  http_variants=$backends
  case " $backends " in *" io_uring "*) http_variants="$backends io_uring+batch" ;; esac
  for be in $http_variants; do
    mw=; [ "$be" = io_uring+batch ] && mw=20
    for depth in 1 16; do
      port=$(free_port)
      if ! EDDY_URING_MIN_WAIT=$mw start_server "$hello_bin" "${be%+batch}" "$port"; then failed=1; continue; fi
      perf stat -e raw_syscalls:sys_enter -p "$spid" -x, -o "$tmp/perf.out" &
      ppid_=$!
      live_pids="$live_pids $ppid_"
      sleep 0.3
      c0=$(awk '{print $14 + $15}' "/proc/$spid/stat")
      wl=$(timeout $((http_duration + 30)) taskset -c "$client_cpu" wrk -t1 -c64 \
        -d"${http_duration}s" -s "$here/pipeline.lua" \
        "http://127.0.0.1:$port/" -- "$depth" 2>&1 | grep '^ECHOWRK' || true)
      c1=$(awk '{print $14 + $15}' "/proc/$spid/stat")
      kill -INT "$ppid_" 2>/dev/null || true
      wait "$ppid_" 2>/dev/null || true
      forget "$ppid_"
      stop_server || failed=1
      hbusy=$(awk -v a="$c0" -v b="$c1" -v t="$(getconf CLK_TCK)" -v d="$http_duration" 'BEGIN {printf "%.0f", 100 * (b - a) / t / d}')
      sc=$(awk -F, '/raw_syscalls:sys_enter/ {print $1}' "$tmp/perf.out")
      req=$(kv requests "$wl"); errs=$(kv errors "$wl"); non2xx=$(kv non2xx "$wl")
      if [ -z "$req" ] || [ "$req" = 0 ] || [ "${errs:-1}" != 0 ] || [ "${non2xx:-1}" != 0 ]; then
        say "echo/run.sh: eddy-hello $be depth $depth: wrk failed: $wl"
        failed=1
        continue
      fi
      spr=$(awk -v s="$sc" -v r="$req" 'BEGIN {printf "%.3f", s/r}')
      rps=$(awk -v r="$req" -v d="$(kv duration_us "$wl")" 'BEGIN {printf "%.0f", r/(d/1e6)}')
      http_lines+=("$be $depth $req $sc $spr $rps $hbusy")
      say "  http $be depth $depth: $req requests, $sc syscalls, $spr syscalls/request"
    done
  done
elif [ "$http" != 0 ]; then
  if [ ! -x "$hello_bin" ]; then
    http_lines+=("skipped: $hello_bin does not exist yet")
  else
    http_lines+=("skipped: needs wrk and perf's raw_syscalls tracepoint")
  fi
fi

# ---- report ---------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a+0 > 0 && b+0 > 0) printf "%.2f", a/b; else printf "-"}'; }
{
  echo "## eddy-echo: io_uring against epoll ($(date +%F), commit $commit)"
  echo
  echo "eddy-echo on CPU $server_cpu, echo_load on CPU $client_cpu$([ "$busy" = 1 ] && echo ' (busy-polling)'); medians of $repeats runs of ${duration} s after ${warmup} s of load;"
  echo "msg/CPU-s = messages / server CPU-seconds (utime+stime, /proc/PID/stat); CPU % = server; client busy, epoll / io_uring;"
  echo "syscalls per message counted by $syscalls in a separate ${sc_duration} s run."
  verdict=""
  for load_mode in $load_modes; do
    echo
    echo "### load generator: $load_mode$([ "$busy" = 1 ] && echo ', busy-polling')"
    echo
    echo "| size | conns | epoll msg/s | io_uring msg/s | epoll msg/CPU-s | io_uring msg/CPU-s | **ratio** u/e | spread e/u | CPU % e/u | epoll syscalls/msg | io_uring syscalls/msg |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    v=""
    for size in $sizes; do
      for conns in $conns_list; do
        e=$load_mode,epoll,$size,$conns u=$load_mode,io_uring,$size,$conns
        rt=$(ratio "${MPC[$u]:-}" "${MPC[$e]:-}")
        echo "| $size | $conns | ${MPS[$e]:--} | ${MPS[$u]:--} | ${MPC[$e]:--} | ${MPC[$u]:--} | **$rt** | ${SPR[$e]:--}% / ${SPR[$u]:--}% | ${SB[$e]:--};${CB[$e]:--} / ${SB[$u]:--};${CB[$u]:--} | ${SYS[$e]:--} | ${SYS[$u]:--} |"
        if [ "$conns" = 256 ] || [ "$conns" = 1024 ]; then
          met=$(awk -v r="$rt" 'BEGIN {print (r != "-" && r >= 1.15) ? "met" : "NOT MET"}')
          v="$v ${size}B/${conns}c $met (${rt}x),"
        fi
      done
    done
    echo
    echo "target io_uring >= 1.15x epoll in msg/CPU-s at 256 and 1024 connections ($load_mode load):${v%,}"
  done
  if [ ${#http_lines[@]} -gt 0 ]; then
    echo
    echo "### HTTP (eddy-hello): syscalls per request, wrk -t1 -c64 -d${http_duration}s"
    echo
    case ${http_lines[0]} in
      skipped*) echo "${http_lines[0]}" ;;
      *)
        echo "| backend | pipelining | requests | server syscalls | **syscalls/request** | requests/s | server CPU % | target |"
        echo "|---|---:|---:|---:|---:|---:|---:|---|"
        for l in "${http_lines[@]}"; do
          read -r be depth req sc spr rps hbusy <<<"$l"
          tgt=-
          if [ "${be%+batch}" = io_uring ]; then
            lim=0.5; [ "$depth" = 16 ] && lim=0.1
            tgt=$(awk -v s="$spr" -v l="$lim" 'BEGIN {print (s <= l) ? "<= " l " met" : "<= " l " NOT MET"}')
          fi
          echo "| $be | $depth | $req | $sc | **$spr** | $rps | $hbusy | $tgt |"
        done
        ;;
    esac
  fi
  echo
  echo "load average: $load_start at start, $(cut -d' ' -f1 /proc/loadavg) at the end ($(nproc) CPUs)"
  starved=$(awk -F, 'NR > 1 && $7 > 0 && $9 / $7 < 0.8 {n++} END {print n + 0}' "$runs_csv")
  total=$(awk 'END {print NR - 1}' "$runs_csv")
  if [ "$starved" -gt 0 ]; then
    echo
    echo "WARNING: in $starved of $total runs the server had less than 80% of CPU $server_cpu:"
    echo "other work shared the CPUs. A starved io_uring loop batches more, so these runs"
    echo "overstate io_uring's msg/CPU-s and understate its syscalls; rerun on a quiet machine."
  fi
} | tee "$out.md"
say "echo/run.sh: wrote $csv, $runs_csv, $out.md"
if [ "$failed" != 0 ]; then
  say "echo/run.sh: some runs FAILED (see above)"
  exit 1
fi
