#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (default 10s).
set -euo pipefail
FUZZTIME=${FUZZTIME:-10s}
GO=${GO:-go}
status=0
while IFS=: read -r file _ line; do
  dir=$(dirname "$file")
  name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"$line")
  echo "fuzz: ./$dir $name for $FUZZTIME"
  if ! $GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "./$dir" >/tmp/mfaflow-fuzz.log 2>&1; then
    cat /tmp/mfaflow-fuzz.log
    status=1
  else
    grep -E '^ok[[:space:]]' /tmp/mfaflow-fuzz.log || true
  fi
done < <(git grep -n -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' -- '*_test.go')
exit $status
