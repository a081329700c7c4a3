#!/usr/bin/env bash
# Sandbox benchmark, side by side with bubblewrap in the same run (run as root; make bench).
# Prints one line per comparison, e.g.
#   sandbox start-to-exit (network none) vs bwrap: 6.1 ms vs 5.0 ms, ratio 1.22
#   sandbox start-to-exit (network internet) vs bwrap: 7.0 ms vs 5.0 ms, ratio 1.40
#   sandbox create-to-first-prompt-byte (WebSocket) vs bwrap (PTY): ...
# Options are passed to bench/sandbox (-n runs, -warmup runs). ANYOPS_BIN names an anyops
# binary to run sandboxd from for the WebSocket comparison (default: build ./cmd/anyops).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "bench/sandbox.sh: needs root (namespaces, mounts, cgroups)" >&2
	exit 1
fi
if ! command -v bwrap >/dev/null 2>&1; then
	echo "bench/sandbox.sh: installing bubblewrap" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y bubblewrap >/dev/null ||
		{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y bubblewrap >/dev/null; }
fi

tmp=$(mktemp -d)
daemon=
cleanup() {
	if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
	# Never delete through a mount: a sandboxd that failed to start may have left its image
	# (the host's /usr, read-only) mounted under $tmp. Innermost first.
	awk -v dir="$tmp/" 'index($5, dir) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
		umount -l "$m" || true
	done
	if awk -v dir="$tmp/" 'index($5, dir) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
		echo "bench/sandbox.sh: $tmp still has mounts; left in place" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

# The small init beside each binary that starts sandboxes: the fast path production uses.
go build -o "$tmp/sandbox-bench" ./bench/sandbox
go build -o "$tmp/anyops-sandbox-init" ./sandboxd/jail/cmd/sandbox-init

ws_args=()
if [ -n "${ANYOPS_BIN:-}" ]; then
	cp "$ANYOPS_BIN" "$tmp/anyops"
elif ! go build -o "$tmp/anyops" ./cmd/anyops 2>"$tmp/build.log"; then
	echo "bench/sandbox.sh: cannot build ./cmd/anyops, no WebSocket comparison:" >&2
	cat "$tmp/build.log" >&2
fi
if [ -x "$tmp/anyops" ]; then
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	"$tmp/anyops" sandboxd keygen --out "$tmp/keys/sandboxd" >/dev/null
	# The machine's image cache, where the benchmark finds (or first builds) the console image.
	"$tmp/anyops" sandboxd --addr "127.0.0.1:$port" --public-key "$tmp/keys/sandboxd.pub" \
		--state-dir "$tmp/sandboxd" --storage-root "$tmp/homes" --home-quota none \
		--image-store "${XDG_CACHE_HOME:-$HOME/.cache}/anyops/images" --log-level warn 2>"$tmp/sandboxd.log" &
	daemon=$!
	for _ in $(seq 100); do
		if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), timeout=0.2)" 2>/dev/null; then
			ws_args=(-sandboxd-url "http://127.0.0.1:$port" -sandboxd-key "$tmp/keys/sandboxd")
			break
		fi
		sleep 0.1
	done
	if [ ${#ws_args[@]} -eq 0 ]; then
		echo "bench/sandbox.sh: sandboxd did not come up, no WebSocket comparison:" >&2
		cat "$tmp/sandboxd.log" >&2
	fi
fi

"$tmp/sandbox-bench" "${ws_args[@]}" "$@"
