#!/usr/bin/env bash
# The browser tests of make test, on the real `bin/anyops dev` (built by make build): dev runs on
# free ports with a throw-away data dir — Temporal dev server child, SQLite, cloudsim with the
# demo fleet, a real sandboxd, worker, API with the public embed on. Once /readyz answers (the
# demo fleet is built and a console can be opened), `node --test` runs web/e2e/*.test.mjs:
# headless Debian Chromium driven by playwright-core (the console page, the embed, the ops
# dashboard). Consoles run on the console image of the machine's image cache
# (~/.cache/anyops/images): the first run on a machine builds it there with mmdebstrap, as
# `make run` does on its first start, and every later run (and the Go tests) finds it. dev is
# always stopped with SIGINT, as Ctrl-C would, so sandboxd ends its sandboxes; then the data
# dir goes. Needs root (sandboxd), mmdebstrap, node with web/e2e's modules (scripts/test-deps.sh
# installs them) and /usr/bin/chromium; where CI is set a missing one fails the test, elsewhere
# every browser test is skipped with the reason.
#
# The results go to $ANYOPS_BROWSER_REPORT, when set, as `go test -json` events (one "package"
# per test file; web/e2e/gotest-reporter.mjs), for internal/cmd/testreport to count with the Go
# tests: every test run, skipped (a missing dependency) or failed, and a start-up failure as a
# failure of the package "web/e2e".
#
# Environment: ANYOPS_BIN (default bin/anyops), CHROMIUM (default /usr/bin/chromium),
# ANYOPS_BROWSER_REPORT (the results file; default none),
# ANYOPS_SCREENSHOT_DIR (where the dashboard test saves dashboard.png; default none),
# ANYOPS_KEEP_DATA=1 keeps the data dir for a post-mortem (the dev log is kept whenever a test fails).
set -euo pipefail
cd "$(dirname "$0")/.."

report=${ANYOPS_BROWSER_REPORT:-/dev/null}
: >"$report"
tests_ran=false
failure=

# json STRING: STRING as a JSON string (our own messages: no control characters but newlines).
json() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\t'/\\t}
	printf '"%s"' "${s//$'\n'/\\n}"
}

# e2e_tests: "FILE<TAB>NAME" of every top-level test in web/e2e, as node --test would name
# them, read from the files (without node: it may be what is missing).
e2e_tests() {
	local f
	for f in web/e2e/*.test.mjs; do
		sed -n "s/^test(\(['\"\`]\)\(.*\)\1, .*/\2/p" "$f" | while IFS= read -r name; do
			printf '%s\t%s\n' "$f" "$name"
		done
	done
}

# fail MESSAGE: the browser tests cannot run; the report counts it as a failure.
fail() {
	failure=$1
	echo "browser test: $1" >&2
	exit 1
}

missing() {
	if [ -n "${CI:-}" ]; then
		fail "CI: required test dependency missing: $*"
	fi
	echo "browser test: skipped, dependency missing: $*" >&2
	local file name
	while IFS=$'\t' read -r file name; do
		printf '{"Action":"output","Package":%s,"Test":%s,"Output":%s}\n' "$(json "$file")" "$(json "$name")" "$(json "skipped, dependency missing: $*")"
		printf '{"Action":"skip","Package":%s,"Test":%s}\n' "$(json "$file")" "$(json "$name")"
	done < <(e2e_tests) >>"$report"
	exit 0
}
data=
log=
dev=
stop_dev() {
	[ -n "$dev" ] || return 0
	kill -INT "$dev" 2>/dev/null || true
	local waited=0
	while kill -0 "$dev" 2>/dev/null && [ $waited -lt 600 ]; do
		sleep 0.1
		waited=$((waited + 1))
	done
	if kill -0 "$dev" 2>/dev/null; then
		echo "browser test: anyops dev ignored SIGINT for 60s; killing its process group" >&2
		kill -KILL -- "-$dev" 2>/dev/null || true
	fi
	wait "$dev" 2>/dev/null || true
	dev=
}
cleanup() {
	local status=$?
	stop_dev
	# A failure the tests' own report does not show (dev did not start, node crashed) is a
	# failure of the package web/e2e.
	if [ $status -ne 0 ] && ! grep -q '"Action":"fail"' "$report" 2>/dev/null; then
		local why=${failure:-"exited with status $status"}
		$tests_ran && why="node --test exited with status $status without reporting a failure"
		printf '{"Action":"output","Package":"web/e2e","Output":%s}\n{"Action":"fail","Package":"web/e2e"}\n' \
			"$(json "browser tests: $why${log:+ (anyops dev log: $log)}
")" >>"$report"
	fi
	if [ $status -ne 0 ] && [ -f "$log" ]; then
		echo "browser test: anyops dev log, last 60 lines (all of it in $log):" >&2
		tail -60 "$log" >&2
	fi
	if [ -z "$data" ]; then
		:
	elif [ -n "${ANYOPS_KEEP_DATA:-}" ]; then
		echo "browser test: kept $data and $log" >&2
	elif findmnt -rn -o TARGET | grep -qF "$data/"; then
		# Never rm -rf across a mount sandboxd left behind: it may bind host directories.
		echo "browser test: mounts remain under $data; not removing it" >&2
	else
		rm -rf --one-file-system "$data"
		[ $status -ne 0 ] || rm -f "$log"
	fi
	exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

anyops=${ANYOPS_BIN:-bin/anyops}
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || missing "Chromium at $chromium (apt-get install chromium)"
command -v node >/dev/null || missing "node"
command -v curl >/dev/null || missing "curl"
[ "$EUID" = 0 ] || missing "root (sandboxd needs namespaces, mounts and cgroups)"
command -v mmdebstrap >/dev/null || missing "mmdebstrap (builds the console image; apt-get install mmdebstrap)"
image_store="${XDG_CACHE_HOME:-$HOME/.cache}/anyops/images"
[ -x bin/temporal ] || missing "bin/temporal (make build)"
[ -x "$anyops" ] || missing "$anyops (make build)"
[ -d web/e2e/node_modules/playwright-core ] || missing "web/e2e's npm modules (scripts/test-deps.sh runs npm ci)"

# Six distinct free ports, held open together while they are chosen so none repeats.
read -r api_port temporal_port ui_port cloudsim_port sandboxd_port sns_port < <(node -e '
const net = require("net");
const servers = Array.from({ length: 6 }, () => net.createServer());
Promise.all(servers.map((s) => new Promise((ok) => s.listen(0, "127.0.0.1", ok)))).then(() => {
  console.log(servers.map((s) => s.address().port).join(" "));
  servers.forEach((s) => s.close());
});')
api="127.0.0.1:$api_port"
ui="127.0.0.1:$ui_port"

# A viewer token besides the admin token dev makes, for the dashboard's refusals.
viewer_token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
# Alertmanager's own token, for the dashboard test to raise an incident as Alertmanager does.
alertmanager_token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

data=$(mktemp -d -t anyops-browser-test.XXXXXX)
log="$data.log"

# Job control gives dev a process group of its own (so a hung one can be killed with its
# children) and keeps SIGINT deliverable: a non-interactive shell's background jobs ignore it.
# The dashboard test shows a server the cloud reports impaired: the API takes alarms from another
# topic than cloudsim's, so that the fault's CloudWatch alarm does not have the server replaced
# (and gone from the page) first. (The alarm path itself is tested by cmd/anyops's TestDevStack.)
set -m
"$anyops" dev --data-dir "$data" --api-addr "$api" --temporal-addr "127.0.0.1:$temporal_port" \
	--temporal-ui-addr "$ui" --cloudsim-addr "127.0.0.1:$cloudsim_port" --cloudsim-sns-addr "127.0.0.1:$sns_port" \
	--sandboxd-addr "127.0.0.1:$sandboxd_port" --sandboxd-image-store "$image_store" \
	--sns-topics arn:aws:sns:us-east-1:123456789012:browser-test-takes-no-alarms \
	--tokens "viewer:$viewer_token" --alertmanager-token "$alertmanager_token" >"$log" 2>&1 &
dev=$!
set +m

# wait_for WHAT SECONDS CMD...: polls CMD until it succeeds, failing when dev exits or time is up.
wait_for() {
	local what=$1 limit=$2
	shift 2
	local deadline=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		if ! kill -0 "$dev" 2>/dev/null; then
			fail "anyops dev exited while waiting for $what"
		fi
		if [ $SECONDS -ge $deadline ]; then
			fail "no $what after ${limit}s"
		fi
		sleep 0.5
	done
}
accepting() { curl -fsS "http://$api/v1/status" | grep -q '"accepting_consoles":true'; }

# Ready means the demo fleet is built and in the inventory, and the local sandboxd, with its
# console image (built on the machine's first run: a minute or more on a loaded machine), takes
# consoles.
wait_for "readiness (/readyz)" 600 curl -fsS "http://$api/readyz"
wait_for "console capacity (/v1/status accepting_consoles)" 30 accepting
# The one-click sign-in link dev prints once it is ready, for the dashboard test to follow.
signin() { grep -q "http://$api/dashboard#token=" "$log"; }
wait_for "the sign-in link on dev's output" 30 signin
signin_url=$(grep -o "http://$api/dashboard#token=[^ ]*" "$log" | head -1)
echo "browser test: anyops dev ready at http://$api (Temporal UI http://$ui)" >&2

# One file at a time: the console and dashboard tests both flip the consoles kill switch. People
# read the spec reporter on stderr; testreport reads the go-test-json one.
tests_ran=true
ANYOPS_API_URL="http://$api" ANYOPS_ADMIN_TOKEN=$(cat "$data/admin-token") ANYOPS_VIEWER_TOKEN=$viewer_token ANYOPS_SIGNIN_URL=$signin_url \
	ANYOPS_ALERTMANAGER_TOKEN=$alertmanager_token \
	ANYOPS_TEMPORAL_UI_URL="http://$ui" ANYOPS_CLOUDSIM_URL="http://127.0.0.1:$cloudsim_port" CHROMIUM=$chromium \
	node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stderr \
	--test-reporter=./web/e2e/gotest-reporter.mjs --test-reporter-destination="$report" web/e2e/*.test.mjs
