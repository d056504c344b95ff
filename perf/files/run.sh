#!/bin/bash
# The files benchmark: read a big file in 64 KB chunks (one read in flight)
# and read many small files whole (64 in flight), with
#
#   eddy-pool   files-eddy, EDDY_BACKEND=epoll: every request on the pool
#   eddy-ring   files-eddy, EDDY_BACKEND=io_uring: requests on the ring
#   libuv       files-uv: uv_fs_open / uv_fs_read / uv_fs_close
#   node        files_node.js: FileHandle.read, fs.promises.readFile
#
#   perf/files/run.sh [BUILD]      BUILD holds perf/files-eddy, files-uv
#
# All four read the same files, from a warm page cache: the data set is
# made once under DATA and read through (cat) before the first run, so
# the numbers are the cost of the APIs and the kernel's copy, not of the
# disk.  Each workload gets REPEATS rounds; in each round every program
# runs once, in an order rotated from round to round so that whatever else
# the machine does falls on all of them; the table shows medians.  Every
# run prints the bytes and a checksum, which must match across programs.
# The pool size is the default (4) for everyone (UV_THREADPOOL_SIZE and
# EDDY_THREADPOOL_SIZE are unset).
#
# Environment: REPEATS (5)  NFILES (10000)  BIG_MB (256)  SMALL_KB (4)
#              DATA (/tmp/eddy-files-bench)  PROGS ("eddy-pool eddy-ring
#              libuv node")
#
# Besides the rates (work / wall time), the table shows work per CPU-second
# of the whole process (user + system, every thread: getrusage, Node's
# process.cpuUsage): on a machine others share, wall time swings with their
# load, CPU time much less.
#
# Prints a markdown table and writes perf/results/files-<date>.md (table)
# and files-<date>-runs.csv (every run).  Exits 1 if a run failed or the
# programs disagree on the bytes read; a missed target is reported, not an
# error.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
repeats=${REPEATS:-5}
nfiles=${NFILES:-10000}
big_mb=${BIG_MB:-256}
small_kb=${SMALL_KB:-4}
data=${DATA:-/tmp/eddy-files-bench}
progs=${PROGS:-eddy-pool eddy-ring libuv node}

say() { printf '%s\n' "$*" >&2; }
for b in files-eddy files-uv; do
  [ -x "$build/perf/$b" ] || { say "files/run.sh: $build/perf/$b missing"; exit 1; }
done
command -v node >/dev/null || { say "files/run.sh: node missing"; exit 1; }
unset UV_THREADPOOL_SIZE EDDY_THREADPOOL_SIZE EDDY_FS EDDY_URING_MIN_WAIT

# ---- the data set --------------------------------------------------------
big=$data/big-${big_mb}m
small=$data/small-${nfiles}x${small_kb}k
mkdir -p "$data"
if [ ! -f "$big" ] || [ "$(stat -c %s "$big")" -ne $((big_mb << 20)) ]; then
  say "files/run.sh: making $big"
  head -c $((big_mb << 20)) /dev/urandom > "$big.tmp" && mv "$big.tmp" "$big"
fi
if [ ! -f "$small/done" ]; then
  say "files/run.sh: making $nfiles files of $small_kb KB in $small"
  rm -rf "$small" && mkdir -p "$small"
  head -c $((small_kb << 10)) /dev/urandom > "$data/small.one"
  for ((i = 0; i < nfiles; i++)); do
    cp "$data/small.one" "$(printf '%s/f%05d' "$small" "$i")"
  done
  touch "$small/done"
fi
# Warm the page cache: every later read is a memory copy.
cat "$big" > /dev/null
find "$small" -type f -exec cat {} + > /dev/null

mkdir -p "$root/perf/results"
stamp=$(date +%Y-%m-%d-%H%M%S)
out=$root/perf/results/files-$stamp
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')
runs=$out-runs.csv
echo "workload,program,round,rate,seconds,bytes,checksum,via,cpu" > "$runs"

# run_one PROG WORKLOAD: prints "rate seconds bytes checksum via cpu".
run_one() {
  local prog=$1 w=$2 args
  if [ "$w" = big ]; then args=(big "$big"); else args=(small "$small" "$nfiles"); fi
  case $prog in
    eddy-pool) EDDY_BACKEND=epoll "$build/perf/files-eddy" "${args[@]}" ;;
    eddy-ring) EDDY_BACKEND=io_uring "$build/perf/files-eddy" "${args[@]}" ;;
    eddy-ring-batch) # the io_uring backend's opt-in batch wait, 20 µs
      EDDY_BACKEND=io_uring EDDY_URING_MIN_WAIT=20 "$build/perf/files-eddy" "${args[@]}" ;;
    libuv) "$build/perf/files-uv" "${args[@]}" ;;
    node) node "$here/files_node.js" "${args[@]}" ;;
    *) say "files/run.sh: unknown program $prog"; return 1 ;;
  esac
}

failed=0
read -r -a plist <<< "$progs"
np=${#plist[@]}
for w in big small; do
  for ((r = 0; r < repeats; r++)); do
    for ((k = 0; k < np; k++)); do
      p=${plist[$(((k + r) % np))]}
      if ! line=$(run_one "$p" "$w"); then
        say "files/run.sh: $p $w failed"; failed=1; continue
      fi
      read -r rate secs bytes sum via cpu <<< "$line"
      echo "$w,$p,$r,$rate,$secs,$bytes,$sum,$via,$cpu" >> "$runs"
    done
  done
done

# Medians and checks, in awk: one row per program.
table=$(awk -F, -v progs="$progs" '
  NR == 1 { next }
  { key = $1 SUBSEP $2; n[key]++; v[key, n[key]] = $4
    # work per CPU-second: rate * seconds / cpu
    c[key, n[key]] = ($9 > 0) ? $4 * $5 / $9 : 0
    via[key] = $8; sig = $6 ":" $7
    if (!($1 in want)) want[$1] = sig
    else if (want[$1] != sig) { bad = bad " " $1 "/" $2 } }
  function median(key, cpu,   m, i, j, t, a) {
    m = n[key]; for (i = 1; i <= m; i++) a[i] = (cpu ? c[key, i] : v[key, i]) + 0
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++)
      if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
  END {
    np = split(progs, p, " ")
    for (i = 1; i <= np; i++) {
      mb[p[i]] = median("big" SUBSEP p[i], 0); fs[p[i]] = median("small" SUBSEP p[i], 0)
      mbc[p[i]] = median("big" SUBSEP p[i], 1); fsc[p[i]] = median("small" SUBSEP p[i], 1) }
    print "| program | path | big file, MB/s | small files, files/s | big, MB per CPU-s | small, files per CPU-s |"
    print "| --- | --- | ---: | ---: | ---: | ---: |"
    for (i = 1; i <= np; i++)
      printf "| %s | %s | %.0f | %.0f | %.0f | %.0f |\n", p[i], via["small" SUBSEP p[i]], mb[p[i]], fs[p[i]], mbc[p[i]], fsc[p[i]]
    print ""
    if ("libuv" in mb) {
      for (i = 1; i <= np; i++) if (p[i] ~ /^eddy/)
        printf "- %s / libuv: big %.2fx, small %.2fx (target >= 1.0x both); per CPU-s: big %.2fx, small %.2fx\n", p[i], mb[p[i]] / mb["libuv"], fs[p[i]] / fs["libuv"], mbc[p[i]] / mbc["libuv"], fsc[p[i]] / fsc["libuv"]
    }
    if (("eddy-ring" in fs) && ("eddy-pool" in fs))
      printf "- eddy-ring / eddy-pool: small %.2fx (target >= 1.2x), big %.2fx; per CPU-s: small %.2fx, big %.2fx\n", fs["eddy-ring"] / fs["eddy-pool"], mb["eddy-ring"] / mb["eddy-pool"], fsc["eddy-ring"] / fsc["eddy-pool"], mbc["eddy-ring"] / mbc["eddy-pool"]
    if (bad != "") printf "- MISMATCH in bytes or checksum:%s\n", bad
  }' "$runs")
case $table in *MISMATCH*) failed=1 ;; esac

{
  echo "# files benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit"
  echo
  echo "Big: one ${big_mb} MB file in 64 KB reads, one in flight. Small:"
  echo "$nfiles files of $small_kb KB read whole, 64 in flight. Warm page cache;"
  echo "median of $repeats runs each, programs alternating; $(nproc) CPUs,"
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
  echo
  echo "$table"
} | tee "$out.md"
say "files/run.sh: $out.md, $runs"
exit $failed
