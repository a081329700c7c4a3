#!/usr/bin/env bash
# Runs a command with a throw-away PostgreSQL server: initdb into a temporary directory as the
# postgres user (the server refuses to run as root), start it on a free loopback port, export
# ANYOPS_TEST_POSTGRES_DSN, run "$@", then stop the server and remove its files.
set -euo pipefail

pgbin=$(ls -d "${ANYOPS_POSTGRES_LIB:-/usr/lib/postgresql}"/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [[ -z "$pgbin" || ! -x "$pgbin/initdb" ]]; then
	if [[ -n "${CI:-}" ]]; then
		echo "with-postgres: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
		exit 1
	fi
	echo "with-postgres: no PostgreSQL server here; store tests will skip" >&2
	exec "$@"
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d /tmp/anyops-pg.XXXXXX)
chmod 755 "$dir"
run_as_postgres() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}
if [[ $(id -u) -eq 0 ]]; then chown postgres "$dir"; fi

stop() {
	run_as_postgres "$pgbin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap stop EXIT

run_as_postgres "$pgbin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 ||
	{ cat "$dir/initdb.log" >&2; exit 1; }
run_as_postgres "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
	-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null ||
	{ cat "$dir/server.log" >&2; exit 1; }

export ANYOPS_TEST_POSTGRES_DSN="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
echo "with-postgres: PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
"$@"
