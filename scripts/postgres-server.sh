#!/usr/bin/env bash
# One PostgreSQL server in a directory of its own, for the tests: scripts/with-postgres.sh
# runs `make test` inside one, and the chaos harness (integration/chaos_postgres_test.go)
# crashes and restarts one under its workers. The server refuses to run as root, so as root
# every step runs as the postgres user.
#
#   postgres-server.sh bindir          print the server binaries' directory (exit 3: none here)
#   postgres-server.sh init DIR        initdb into DIR/data (DIR is created and given to postgres)
#   postgres-server.sh start DIR PORT  start on 127.0.0.1:PORT, its socket and log in DIR; wait until it answers
#   postgres-server.sh crash DIR       stop at once, without a checkpoint (pg_ctl -m immediate): a crash
#
# The DSN of a started server: postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
set -euo pipefail

pgbin=$(ls -d "${ANYOPS_POSTGRES_LIB:-/usr/lib/postgresql}"/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [[ -z "$pgbin" || ! -x "$pgbin/initdb" ]]; then
	echo "postgres-server: PostgreSQL server binaries not found under ${ANYOPS_POSTGRES_LIB:-/usr/lib/postgresql} (apt-get install postgresql)" >&2
	exit 3
fi

run_as_postgres() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

case "${1:-}" in
bindir)
	echo "$pgbin"
	;;
init)
	dir=$2
	mkdir -p "$dir"
	chmod 755 "$dir"
	if [[ $(id -u) -eq 0 ]]; then chown postgres "$dir"; fi
	run_as_postgres "$pgbin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	;;
start)
	dir=$2 port=$3
	run_as_postgres "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null ||
		{ tail -20 "$dir/server.log" >&2; exit 1; }
	;;
crash)
	run_as_postgres "$pgbin/pg_ctl" -D "$2/data" -m immediate stop >/dev/null
	;;
*)
	echo "usage: postgres-server.sh bindir | init DIR | start DIR PORT | crash DIR" >&2
	exit 2
	;;
esac
