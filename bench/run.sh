#!/usr/bin/env bash
# make bench: every benchmark, each compared side by side with its reference in the same run.
# Needs root (sandboxes) and bin/temporal (make build). Prints one line per comparison.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Go benchmarks (sandboxd/jail)"
go test -run '^$' -bench . -benchmem -count 1 ./sandboxd/jail/

echo
echo "== sandbox vs bubblewrap"
bench/sandbox.sh

echo
echo "== keystroke echo round trip through sandboxd's WebSocket"
go run ./bench/sandboxd_ws

echo
echo "== consoles: the ConsoleLifecycle workflow vs raw sandboxd"
bench/console.sh
