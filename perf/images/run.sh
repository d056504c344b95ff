#!/usr/bin/env bash
# perf/images: thumbnails per second, 1920x1080 JPEG -> 320x200 cover JPEG,
# for eddy-thumb (pool sizes 1, 2, 4; GM threads per job), a Node server on
# the gm npm module (a gm process per image), and `gm convert` run per
# image; then the loop's responsiveness: p99 latency of /hello, idle and
# while thumbnails are made at full load.
#
#   bash run.sh BUILD        (make -C perf/images run BUILD=...)
#
# Environment: DURATION (8 s per cell), CONNS (8 wrk connections), IMAGES
# (16 sources), PROBE_RATE (200 /hello per second).  eddy-thumb runs with
# --cache-mb 0 so every request is image work, as for the peers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${1:-$root/build}
DURATION=${DURATION:-8}
CONNS=${CONNS:-8}
IMAGES=${IMAGES:-16}
PROBE_RATE=${PROBE_RATE:-200}
export IMAGES
thumb=$BUILD/bin/eddy-thumb
probe=$BUILD/perf/hello_probe
data=$BUILD/perf/images-data
results=$root/perf/results
stamp=$(date +%Y%m%d-%H%M%S)
out=$results/images-$stamp.md
mkdir -p "$results" "$data"
PORT=${PORT:-18480}

for t in wrk node npm gm; do
  command -v $t >/dev/null || { echo "perf/images: $t is missing" >&2; exit 1; }
done
[ -x "$thumb" ] || { echo "perf/images: build $thumb first (make all)" >&2; exit 1; }

# ---- Inputs and peers -------------------------------------------------------
for i in $(seq 0 $((IMAGES - 1))); do
  f=$(printf "%s/img%02d.jpg" "$data" "$i")
  [ -s "$f" ] || gm convert -size 1920x1080 plasma:fractal -quality 90 "$f"
done
if [ ! -d "$root/perf/peers/node_modules/gm" ]; then
  echo "perf/images: installing the gm npm module into perf/peers/"
  npm install --no-save --no-audit --no-fund --prefix "$root/perf/peers" gm@1 >/dev/null
fi

pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "perf/images: nothing listens on $1" >&2
  return 1
}

stop_server() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# CPU time of a process and its reaped children (the Node peer's gm
# processes), in clock ticks.
tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"; }

# "thumbnails/s|CPU ms per thumbnail" under wrk for server pid $2 on port
# $1.  The CPU figure does not depend on what else the machine runs (it is
# shared), the rate does.  Warns on any non-2xx answer.
rate() {
  local log t0 t1
  t0=$(cpu_ticks "$2")
  log=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 10s -s "$here/rotate.lua" \
        "http://127.0.0.1:$1/" 2>&1)
  t1=$(cpu_ticks "$2")
  if grep -q "Non-2xx" <<<"$log"; then
    echo "perf/images: errors in the run:" >&2
    echo "$log" >&2
  fi
  awk -v t="$((t1 - t0))" -v hz="$tck" '
    /requests in/ {n = $1}
    /Requests\/sec/ {r = $2}
    END {printf "%.1f|%.1f", r, (n > 0) ? t * 1000 / hz / n : 0}' <<<"$log"
}

start_eddy() { # pool image_threads [image_nice]
  EDDY_THREADPOOL_SIZE=$1 EDDY_IMAGE_THREADS=$2 EDDY_IMAGE_NICE=${3:-10} \
    "$thumb" --root "$data" --port "$PORT" --cache-mb 0 >/dev/null &
  srv=$!
  pids+=("$srv")
  wait_port "$PORT"
}

start_node() {
  node "$here/node_gm.js" --root "$data" --port "$PORT" >/dev/null &
  srv=$!
  pids+=("$srv")
  wait_port "$PORT"
}

# The loop thread's (the main thread's) time waiting on a run queue, ns,
# and its number of timeslices: the scheduler's share of /hello latency.
runq() { awk '{print $2, $3}' "/proc/$srv/task/$srv/schedstat"; }
runq_us() { # before after -> average wait per timeslice, us
  awk -v a="$1" -v b="$2" 'BEGIN {split(a, x, " "); split(b, y, " ");
    n = y[2] - x[2]; printf "%.0f", (n > 0) ? (y[1] - x[1]) / n / 1000 : 0}'
}

# /hello idle, then under full thumbnail load:
# "idle|loaded|thumbnails/s|idle runq us|loaded runq us".
responsiveness() {
  local idle loaded r wrk_pid q0 q1 q2 q3
  q0=$(runq)
  idle=$("$probe" "$PORT" 4 "$PROBE_RATE")
  q1=$(runq)
  wrk -t1 -c"$CONNS" -d"$((DURATION + 2))s" --timeout 10s -s "$here/rotate.lua" \
      "http://127.0.0.1:$PORT/" >/tmp/perf-images-wrk.$$ 2>&1 &
  wrk_pid=$!
  sleep 1
  q2=$(runq)
  loaded=$("$probe" "$PORT" "$DURATION" "$PROBE_RATE")
  q3=$(runq)
  wait "$wrk_pid"
  r=$(awk '/Requests\/sec/ {printf "%.1f", $2}' /tmp/perf-images-wrk.$$)
  rm -f /tmp/perf-images-wrk.$$
  echo "$idle|$loaded|$r|$(runq_us "$q0" "$q1")|$(runq_us "$q2" "$q3")"
}

p99() { sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' <<<"$1"; }
p50() { sed -n 's/.*p50_us=\([0-9]*\).*/\1/p' <<<"$1"; }

# `gm convert` per image, P at a time, for DURATION seconds:
# "images/s|CPU ms per image" (the processes' CPU, from this shell's
# reaped children).
gm_cli() {
  local P=$1 end count_file=/tmp/perf-images-gm.$$ c0 c1 me=$BASHPID
  : >"$count_file"
  c0=$(awk '{print $16 + $17}' "/proc/$me/stat")
  end=$(( $(date +%s) + DURATION ))
  for w in $(seq "$P"); do
    (
      i=$w
      while [ "$(date +%s)" -lt "$end" ]; do
        f=$(printf "%s/img%02d.jpg" "$data" $((i % IMAGES)))
        gm convert -size 640x400 "$f" -thumbnail '320x200^' -gravity center \
          -extent 320x200 +profile '*' "JPEG:/tmp/perf-images-out.$$.$w"
        echo >>"$count_file"
        i=$((i + 1))
      done
    ) &
  done
  wait
  c1=$(awk '{print $16 + $17}' "/proc/$me/stat")
  local n
  n=$(wc -l <"$count_file")
  rm -f "$count_file" /tmp/perf-images-out.$$.*
  awk -v n="$n" -v d="$DURATION" -v t="$((c1 - c0))" -v hz="$tck" \
    'BEGIN {printf "%.1f|%.1f", n / d, (n > 0) ? t * 1000 / hz / n : 0}'
}

cores=$(nproc)
echo "perf/images: $IMAGES sources 1920x1080 -> 320x200 cover JPEG; $cores cores;" \
     "wrk $CONNS connections, ${DURATION}s cells; load average before:" \
     "$(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out.tmp"

declare -A R
for cell in "1 0" "2 0" "4 0" "2 2" "4 2"; do
  set -- $cell
  start_eddy "$1" "$2"
  threads=$(curl -s "http://127.0.0.1:$PORT/stats" | sed -n 's/.*"image_threads":\([0-9]*\).*/\1/p')
  R["eddy $1 $2"]=$(rate "$PORT" "$srv")
  echo "eddy-thumb pool=$1 gm_threads=$threads: ${R["eddy $1 $2"]} (thumbs/s|CPU ms each)"
  R["threads $1 $2"]=$threads
  stop_server "$srv"
done
start_node
R[node]=$(rate "$PORT" "$srv")
echo "node + gm module: ${R[node]} (thumbs/s|CPU ms each)"
stop_server "$srv"
R[gm1]=$(gm_cli 1)
echo "gm convert, 1 at a time: ${R[gm1]} (images/s|CPU ms each)"
R[gmN]=$(gm_cli "$cores")
echo "gm convert, $cores at a time: ${R[gmN]} (images/s|CPU ms each)"

start_eddy 4 0
E=$(responsiveness)
stop_server "$srv"
start_eddy 4 0 0
E0=$(responsiveness)
stop_server "$srv"
start_node
N=$(responsiveness)
stop_server "$srv"

IFS='|' read -r e_idle e_load e_rate e_q0 e_q1 <<<"$E"
IFS='|' read -r n_idle n_load n_rate n_q0 n_q1 <<<"$N"
IFS='|' read -r z_idle z_load z_rate z_q0 z_q1 <<<"$E0"
best=${R["eddy 4 0"]%|*}
# (In awk, a bare > inside printf's arguments is a redirection.)
div() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'; }
ratio=$(div "$best" "${R[node]%|*}")
ratio_gm=$(div "$best" "${R[gmN]%|*}")
cpu_ratio=$(div "${R[node]#*|}" "${R["eddy 4 0"]#*|}")
lat_ratio=$(div "$(p99 "$e_load")" "$(p99 "$e_idle")")
t1=$(awk -v r="$ratio" 'BEGIN {print (r >= 3) ? "met" : "MISSED"}')
t2=$(awk -v r="$lat_ratio" -v l="$(p99 "$e_load")" 'BEGIN {print (r <= 2 && l < 5000) ? "met" : "MISSED"}')

{
  echo
  echo "| server | pool threads | GM threads/job | thumbnails/s | CPU ms per thumbnail |"
  echo "| --- | --- | --- | --- | --- |"
  for cell in "1 0" "2 0" "4 0" "2 2" "4 2"; do
    set -- $cell
    echo "| eddy-thumb | $1 | ${R["threads $1 $2"]} | ${R["eddy $1 $2"]/|/ | } |"
  done
  echo "| node + gm module (a gm process per image) | - | - | ${R[node]/|/ | } |"
  echo "| gm convert per image, 1 at a time | - | - | ${R[gm1]/|/ | } |"
  echo "| gm convert per image, $cores at a time | - | - | ${R[gmN]/|/ | } |"
  echo
  echo "| /hello latency (us) | p50 idle | p99 idle | p50 under load | p99 under load | thumbnails/s meanwhile | loop's run-queue wait per slice, idle / load (us) |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  echo "| eddy-thumb (pool 4), image jobs not niced | $(p50 "$z_idle") | $(p99 "$z_idle") | $(p50 "$z_load") | $(p99 "$z_load") | $z_rate | $z_q0 / $z_q1 |"
  echo "| eddy-thumb (pool 4) | $(p50 "$e_idle") | $(p99 "$e_idle") | $(p50 "$e_load") | $(p99 "$e_load") | $e_rate | $e_q0 / $e_q1 |"
  echo "| node + gm module | $(p50 "$n_idle") | $(p99 "$n_idle") | $(p50 "$n_load") | $(p99 "$n_load") | $n_rate | $n_q0 / $n_q1 |"
  echo
  echo "eddy-thumb (pool 4) / node gm: ${ratio}x thumbnails/s (target >= 3x: $t1)," \
       "${cpu_ratio}x less CPU per thumbnail; / gm convert x$cores: ${ratio_gm}x"
  echo "/hello p99 under load / idle: ${lat_ratio}x, $(p99 "$e_load") us" \
       "(target <= 2x and < 5000 us: $t2)"
} | tee -a "$out.tmp"
mv "$out.tmp" "$out"
echo "perf/images: results in $out"
