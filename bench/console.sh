#!/usr/bin/env bash
# Console benchmark (run as root; make bench): on a whole local stack (Temporal dev server,
# SQLite, a real sandboxd, worker, API) it prints, one line per comparison,
#   console start-to-first-prompt vs raw sandboxd create: p50 ... (ratio ...), p99 ...
#   sustained console starts: N/s
# Options are passed to bench/console (-n runs, -warmup, -clients, -sustain, -slots).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "bench/console.sh: needs root (sandboxd: namespaces, mounts, cgroups)" >&2
	exit 1
fi
if [ ! -x bin/temporal ]; then
	echo "bench/console.sh: bin/temporal is missing (make build)" >&2
	exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/console-bench" ./bench/console
# The small init beside the binary that starts sandboxes: the fast path production uses.
go build -o "$tmp/anyops-sandbox-init" ./sandboxd/jail/cmd/sandbox-init
"$tmp/console-bench" "$@"
