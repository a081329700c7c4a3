#!/usr/bin/env bash
# The browser test of make test: starts a real console stack (Temporal dev server, SQLite,
# a real sandboxd, worker, API with the public embed on; bench/console -serve), then runs
# web/e2e/console.test.mjs with node --test: headless Debian Chromium driven by
# playwright-core types print(6*7) into a python3 console and sees 42, reloads and sees it
# again. Needs root (sandboxd), node/npm and /usr/bin/chromium; where CI is set a missing
# one fails the test, elsewhere it is skipped with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."

missing() {
	if [ -n "${CI:-}" ]; then
		echo "browser test: CI: required test dependency missing: $*" >&2
		exit 1
	fi
	echo "browser test: skipped, dependency missing: $*" >&2
	exit 0
}
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || missing "Chromium at $chromium (apt-get install chromium)"
command -v node >/dev/null || missing "node"
command -v npm >/dev/null || missing "npm"
[ "$(id -u)" = 0 ] || missing "root (sandboxd needs namespaces, mounts and cgroups)"
[ -x bin/temporal ] || missing "bin/temporal (make build)"

(cd web/e2e && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

tmp=$(mktemp -d)
stack=
cleanup() {
	if [ -n "$stack" ]; then
		kill -TERM "$stack" 2>/dev/null || true
		wait "$stack" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/console-stack" ./bench/console
go build -o "$tmp/anyops-sandbox-init" ./sandboxd/jail/cmd/sandbox-init
mkfifo "$tmp/out"
"$tmp/console-stack" -serve >"$tmp/out" 2>"$tmp/stack.log" &
stack=$!
exec 3<"$tmp/out"
url=
deadline=$((SECONDS + 180))
while [ $SECONDS -lt $deadline ]; do
	if read -r -t 5 line <&3; then
		case "$line" in
		"ready "*) url=${line#ready }; break ;;
		esac
	elif ! kill -0 "$stack" 2>/dev/null; then
		break
	fi
done
if [ -z "$url" ]; then
	echo "browser test: the console stack did not come up:" >&2
	cat "$tmp/stack.log" >&2
	exit 1
fi
# Keep draining the stack's stdout so it never blocks on a full pipe.
cat <&3 >/dev/null &

echo "browser test: stack at $url" >&2
status=0
ANYOPS_API_URL=$url ANYOPS_ADMIN_TOKEN=bench-admin CHROMIUM=$chromium node --test web/e2e/console.test.mjs || status=$?
if [ $status -ne 0 ]; then
	echo "browser test: stack log:" >&2
	tail -50 "$tmp/stack.log" >&2
fi
exit $status
