#!/usr/bin/env bash
# Runs the benchmarks with their baselines in the same run and writes BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
COUNT=${COUNT:-6}
out=$(mktemp)
$GO test -run '^$' -bench '^Benchmark(Verify|PquernaValidateCustom|VerifyWrongCode|PquernaValidateCustomWrongCode|HOTP|PquernaHOTP)$' -benchmem -count "$COUNT" ./mfa/ | tee "$out"
$GO test -run '^$' -bench '^BenchmarkVerifyWithReplayWrite$' -count "$COUNT" ./internal/verifyint/ | tee -a "$out"
$GO run ./internal/benchreport -o BENCHMARKS.md < "$out"
rm -f "$out"
echo "wrote BENCHMARKS.md"
