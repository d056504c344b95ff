#!/bin/sh
# Runs the core benchmarks against eddy and libuv, alternating the two so
# that the machine's noise falls on both, and prints the medians as a table.
#
#   run-core.sh BINDIR      BINDIR holds core-eddy and core-libuv
#
# Environment: ROUNDS (7), BENCHES ("timers timers-ss pool async async-rt"),
# THREADS (pool size for both libraries, 4).  The raw RESULT lines and the
# table also go to perf/results/core-<date>.txt.  Exits 1 if a run failed
# (crashed, hung, or could not verify its work); a missed target is
# reported, not an error.
set -eu

bin=${1:?usage: run-core.sh BINDIR}
here=$(cd "$(dirname "$0")" && pwd)
rounds=${ROUNDS:-7}
benches=${BENCHES:-timers timers-ss pool async async-rt}
threads=${THREADS:-4}
export UV_THREADPOOL_SIZE="$threads" EDDY_THREADPOOL_SIZE="$threads"

mkdir -p "$here/results"
out="$here/results/core-$(date +%Y%m%d-%H%M%S).txt"
raw=$(mktemp)
trap 'rm -f "$raw" "$raw.table"' EXIT

{
  echo "# eddy core benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "# commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')," \
       "$(uname -sr), $(nproc) cpus, pool threads $threads, $rounds rounds"
} >"$raw"

status=0
r=1
while [ "$r" -le "$rounds" ]; do
  # Odd rounds run eddy first, even rounds libuv first.
  if [ $((r % 2)) -eq 1 ]; then order="eddy libuv"; else order="libuv eddy"; fi
  printf 'round %s/%s:' "$r" "$rounds" >&2
  for b in $benches; do
    for impl in $order; do
      printf ' %s/%s' "$b" "$impl" >&2
      if ! "$bin/core-$impl" "$b" >>"$raw"; then
        echo "FAIL $b $impl round $r" >>"$raw"
        printf '(FAILED)' >&2
        status=1
      fi
    done
  done
  echo >&2
  r=$((r + 1))
done

awk -v rounds="$rounds" '
function median(k, cnt,    a, i, j, t) {
  for (i = 1; i <= cnt; i++) a[i] = v[k, i]
  for (i = 2; i <= cnt; i++)
    for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
  return cnt % 2 ? a[(cnt + 1) / 2] : (a[cnt / 2] + a[cnt / 2 + 1]) / 2
}
function spread(k, cnt,    i, lo, hi) {
  lo = hi = v[k, 1]
  for (i = 2; i <= cnt; i++) { if (v[k, i] < lo) lo = v[k, i]; if (v[k, i] > hi) hi = v[k, i] }
  return 100 * (hi - lo) / median(k, cnt)
}
function note(b) {
  if (!(b in seen)) { seen[b] = 1; order[++nb] = b }
}
$1 == "RESULT" {
  note($2); k = $2 SUBSEP $3; v[k, ++n[k]] = $4 + 0
  for (i = 5; i <= NF; i++) {
    if ($i ~ /^wakeups=/) { sub(/^wakeups=/, "", $i); w[k, n[k]] = $i + 0 }
    if ($i ~ /^coalesced_ns=/) { sub(/^coalesced_ns=/, "", $i); c[k, n[k]] = $i + 0 }
  }
}
$1 == "FAIL" { note($2); failed[$2 SUBSEP $3]++ }
END {
  unit["timers"] = "M start+stop/s"; unit["timers-ss"] = "M start+stop/s"
  unit["pool"] = "M jobs/s"; unit["async"] = "M sends/s"
  unit["async-rt"] = "K round trips/s"; scale["async-rt"] = 1e3
  printf "%-10s | %12s | %12s | %-18s | %-16s | %s\n", "bench", "eddy", "libuv",
         "ratio (eddy/libuv)", "unit", "spread eddy/libuv"
  print "-----------+--------------+--------------+--------------------+------------------+------------------"
  targets = ""
  for (i = 1; i <= nb; i++) {
    b = order[i]; ke = b SUBSEP "eddy"; kl = b SUBSEP "libuv"
    if (n[ke] == 0 || n[kl] == 0 || failed[ke] || failed[kl]) {
      printf "%-10s | %12s | %12s | %-18s |\n", b, \
             failed[ke] || !n[ke] ? "FAILED" : sprintf("%.3f", median(ke, n[ke]) / 1e6), \
             failed[kl] || !n[kl] ? "FAILED" : sprintf("%.3f", median(kl, n[kl]) / 1e6), "-"
      targets = targets sprintf("%s%s FAILED RUN", targets == "" ? "" : ", ", b)
      continue
    }
    me = median(ke, n[ke]); ml = median(kl, n[kl]); ratio = me / ml
    sc = b in scale ? scale[b] : 1e6
    printf "%-10s | %12.3f | %12.3f | %18.2f | %-16s | %4.0f%% / %.0f%%\n", b, me / sc, ml / sc,
           ratio, unit[b], spread(ke, n[ke]), spread(kl, n[kl])
    targets = targets sprintf("%s%s %s (%.2fx)", targets == "" ? "" : ", ", b,
                              ratio >= 1.0 ? "met" : "NOT MET", ratio)
  }
  print ""
  print "medians of " rounds " alternating runs; spread = (max - min) / median"
  for (i = 1; i <= nb; i++) {
    b = order[i]; ke = b SUBSEP "eddy"; kl = b SUBSEP "libuv"
    if (b !~ /^async/) continue
    printf "%s: final send delivered (last callback saw the final counter): eddy %d/%d runs, libuv %d/%d runs\n", \
           b, n[ke], n[ke] + failed[ke], n[kl], n[kl] + failed[kl]
    printf "%s: wakeups (callbacks) per run, median: eddy %d, libuv %d\n", b, medx(w, ke, n[ke]), medx(w, kl, n[kl])
    if (b == "async")
      printf "async: one coalesced send alone (no loop running), median: eddy %.2f ns, libuv %.2f ns\n", \
             medx(c, ke, n[ke]), medx(c, kl, n[kl])
  }
  print "target eddy >= 1.0x libuv: " targets
}
function medx(x, k, cnt,    a, i, j, t) {
  if (cnt == 0) return 0
  for (i = 1; i <= cnt; i++) a[i] = x[k, i]
  for (i = 2; i <= cnt; i++)
    for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
  return cnt % 2 ? a[(cnt + 1) / 2] : (a[cnt / 2] + a[cnt / 2 + 1]) / 2
}
' "$raw" >"$raw.table"

cat "$raw.table"
{ cat "$raw"; echo; cat "$raw.table"; } >"$out"
echo "(raw results and table written to $out)"
exit "$status"
