#!/usr/bin/env bash
# Runs a command with a throw-away PostgreSQL server (scripts/postgres-server.sh): initdb into
# a temporary directory, start it on a free loopback port, export ANYOPS_TEST_POSTGRES_DSN,
# run "$@", then stop the server and remove its files.
set -euo pipefail

server="$(dirname "$0")/postgres-server.sh"
if ! pgbin=$("$server" bindir 2>/dev/null); then
	if [[ -n "${CI:-}" ]]; then
		echo "with-postgres: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
		exit 1
	fi
	echo "with-postgres: no PostgreSQL server here; store tests will skip" >&2
	exec "$@"
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d /tmp/anyops-pg.XXXXXX)

stop() {
	"$server" crash "$dir" >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap stop EXIT

"$server" init "$dir"
"$server" start "$dir" "$port"

export ANYOPS_TEST_POSTGRES_DSN="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
echo "with-postgres: PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
"$@"
