#!/usr/bin/env bash
# Runs every fuzz target of the module for a short time each ($1: a -fuzztime, default 30000x executions;
# a count, not a duration: a duration-based -fuzztime can fail with "context deadline exceeded"
# on a loaded machine when a worker is mid-call at the deadline, without any failing input).
# Targets are discovered with `go test -list`, so a new Fuzz function is picked up by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-30000x}"
count=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz: $pkg $target ($fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
    count=$((count + 1))
  done
done
echo "fuzz: $count targets, none failed"
