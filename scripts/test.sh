#!/usr/bin/env bash
# Runs every test, unit and integration, against real servers on 127.0.0.1 (started here when needed), and ends with
# the summary line "N passed, N failed[, N skipped]". Exit status 0 only when nothing failed.
#   SLUICE_TEST_SERVICES  where the test servers keep their data (default /tmp/sluice-services)
#   SLUICE_TEST_FILTER    an optional `dotnet test --filter` expression
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
services="${SLUICE_TEST_SERVICES:-/tmp/sluice-services}"
results="$repo/artifacts/test-results"

if ! scripts/services.sh up --data "$services" >&2; then
  echo "test servers did not start (see above)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
eval "$(scripts/services.sh env --data "$services")"

echo "building (Release) ..." >&2
if ! dotnet build Sluice.slnx -c Release --nologo -v quiet -clp:NoSummary >&2; then
  echo "build failed" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

rm -rf "$results"
mkdir -p "$results"
filter=()
[[ -n "${SLUICE_TEST_FILTER:-}" ]] && filter=(--filter "$SLUICE_TEST_FILTER")
status=0
for project in tests/Sluice.Tests tests/Sluice.IntegrationTests; do
  name="$(basename "$project")"
  echo "== $name" >&2
  dotnet test "$project" -c Release --no-build --nologo "${filter[@]}" \
    --logger "trx;LogFileName=$name.trx" --logger "console;verbosity=normal" --results-directory "$results" >&2 || status=1
done

passed=0; failed=0; skipped=0
for project in tests/Sluice.Tests tests/Sluice.IntegrationTests; do
  trx="$results/$(basename "$project").trx"
  if [[ ! -f "$trx" ]]; then
    echo "no results from $(basename "$project") (the test host crashed?)" >&2
    failed=$((failed + 1))
    continue
  fi
  counters="$(grep -o '<Counters [^>]*>' "$trx" | head -1)"
  get() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; }
  passed=$((passed + $(get passed)))
  project_failed=$(($(get failed) + $(get error) + $(get timeout) + $(get aborted)))
  outcome="$(grep -o '<ResultSummary outcome="[^"]*"' "$trx" | head -1 | sed 's/.*outcome="\([^"]*\)"/\1/')"
  if [[ $project_failed -eq 0 && "$outcome" != "Completed" && "$outcome" != "Passed" ]]; then
    # A crashed test host ends the run with outcome Failed and no failed test in the counters: the tests it did not
    # get to never ran, so the run cannot be reported as all passed.
    echo "$(basename "$project"): the test run ended '$outcome' with no failed test counted (the test host crashed?)" >&2
    project_failed=1
  fi
  failed=$((failed + project_failed))
  skipped=$((skipped + $(get notExecuted)))
done
[[ $failed -gt 0 ]] && status=1
if [[ $failed -gt 0 ]]; then
  # The failures again, last, so that a log cut to its tail still says which test failed and why.
  echo "== failed tests" >&2
  for trx in "$results"/*.trx; do
    [[ -f "$trx" ]] || continue
    awk '
      /<UnitTestResult / && /outcome="Failed"/ { match($0, /testName="[^"]*"/); name = substr($0, RSTART + 10, RLENGTH - 11); inside = 1; next }
      inside && /<UnitTestResult / { inside = 0 }
      inside && /<Message>/ { printing = 1; lines = 0; print "FAILED " name }
      printing { line = $0; gsub(/<\/?Message>/, "", line); if (lines++ < 25) print "  " line }
      printing && /<\/Message>/ { printing = 0 }
      inside && /<StackTrace>/ { tracing = 1; lines = 0 }
      tracing { line = $0; gsub(/<\/?StackTrace>/, "", line); if (lines++ < 12) print "  " line }
      tracing && /<\/StackTrace>/ { tracing = 0; inside = 0 }
    ' "$trx" >&2
  done
fi
if [[ $skipped -gt 0 ]]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
exit $status
