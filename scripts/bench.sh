#!/usr/bin/env bash
# Runs every SPEC §9 benchmark with its baseline in the same run and writes
# BENCHMARKS.md: the mfa micro-benchmarks, verify with the replay write, and
# internal/benchsuite on real servers (HTTP verify against the least correct
# work, one SELECT, the TOTP check and one compare-and-set UPDATE, on the
# same PostgreSQL and SQLite, with a no-op Gin handler reported beside; the
# appeal path against a one-activity workflow; 1,000 concurrent appeals
# against 1,000 one-activity workflows on the same kind of stack;
# uploads against a bare PutObject over plain HTTP and over TLS; verify at
# 1,000,000 accounts against 10,000, with the plans of its statements; the
# review queue with 100,000 closed appeals). The benchsuite profiles each
# measured phase; a missed target gets its CPU profile in the report. About
# 15 minutes on 2 quiet cores (seeding the 100,000 closed appeals takes 7
# of them).
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
COUNT=${COUNT:-6}
export MFAFLOW_MINIO_BIN=${MFAFLOW_MINIO_BIN:-$PWD/bin/minio}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/bench.txt
prof=$tmp/prof
mkdir -p "$prof"
status=0
start=$(date +%s)

# run runs a go test command, appending its output to $out; a failure is
# remembered and the report still written.
run() {
  "$@" 2>&1 | tee -a "$out"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" != 0 ]; then
    echo "bench: failed ($rc): $*" >&2
    status=1
  fi
}

# summarize writes to $1.top the pprof summaries of the profiles that follow
# (the ones that exist, merged).
summarize() {
  local top=$1.top files=()
  shift
  for f in "$@"; do [ -e "$f" ] && files+=("$f"); done
  [ ${#files[@]} -gt 0 ] || return 0
  {
    echo "flat:"
    $GO tool pprof -top -nodecount=25 "${files[@]}" 2>/dev/null | sed -n '/^Duration/,$p'
    echo
    echo "cumulative:"
    $GO tool pprof -top -cum -nodecount=40 "${files[@]}" 2>/dev/null | sed -n '/^Showing top/,$p'
  } > "$top"
}

run $GO test -run '^$' -bench '^Benchmark(Verify|PquernaValidateCustom|VerifyWrongCode|PquernaValidateCustomWrongCode|HOTP|PquernaHOTP|VerifyCostRatio)$' -benchmem -count "$COUNT" ./mfa/
run $GO test -run '^$' -bench '^BenchmarkVerifyWithReplayWrite$' -count "$COUNT" ./internal/verifyint/
# -v prints each result line whole after its run, so server logs written
# during a run cannot split it.
run $GO test -run '^$' -bench . -benchtime 1x -v -timeout 60m ./internal/benchsuite/ -args -benchsuite.cpuprofile="$prof"

# A benchmark measured in parts writes <name>.<n>.prof; pprof merges them.
for name in $(ls "$prof" 2>/dev/null | sed -n 's/^\([^.]*\)\..*prof$/\1/p' | sort -u); do
  summarize "$prof/$name" "$prof/$name".*.prof "$prof/$name.prof"
done
# Missed figures of packages without measured-phase profiles: profile them
# by a separate run.
while IFS=$'\t' read -r name pkg pattern; do
  [ -e "$prof/$name.top" ] && continue
  echo "profiling $name ($pkg $pattern)"
  if $GO test -run '^$' -bench "$pattern" -count 1 -o "$tmp/$name.test" -cpuprofile "$prof/$name.prof" "$pkg" > /dev/null; then
    summarize "$prof/$name" "$prof/$name.prof"
  fi
done < <($GO run ./internal/benchreport -missed < "$out")

$GO run ./internal/benchreport -o BENCHMARKS.md -profiles "$prof" < "$out" || status=1
echo "wrote BENCHMARKS.md in $(( $(date +%s) - start ))s"
exit $status
