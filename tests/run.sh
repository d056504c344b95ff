#!/usr/bin/env bash
# Runs the test binary.  Criterion counts a test whose process reports a
# sanitizer error at exit (a leak, say) as passed, so under sanitizers the
# run also fails on any such report in the output.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$log"; then
  echo "tests/run.sh: sanitizer reports above" >&2
  exit 1
fi
exit "$rc"
