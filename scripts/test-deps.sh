#!/usr/bin/env bash
# What `make test` needs besides Go, set up first so that it alone passes on a fresh machine:
# as root it installs the Debian packages that are missing (PostgreSQL's server binaries for
# scripts/with-postgres.sh, runuser, mkfs.btrfs for the homes' file system, mmdebstrap for the
# sandbox images, Chromium, Node.js with npm, curl, python3) and the browser
# tests' npm modules (npm ci in web/e2e). What it still cannot have (moto_server, which is not
# a Debian package; root; a package apt-get could not install) fails the run, unless
# SKIP_MISSING=1 asks to run without it: the tests that need it are then skipped with the
# reason, and make test's closing line counts them. Where CI is set, SKIP_MISSING is ignored.
#
# Environment: CHROMIUM (default /usr/bin/chromium, as scripts/browser-test.sh),
# ANYOPS_POSTGRES_LIB (default /usr/lib/postgresql, as scripts/with-postgres.sh), SKIP_MISSING.
set -euo pipefail
cd "$(dirname "$0")/.."

chromium=${CHROMIUM:-/usr/bin/chromium}
pglib=${ANYOPS_POSTGRES_LIB:-/usr/lib/postgresql}

# check NAME: whether the dependency NAME is here.
check() {
	case $1 in
	postgresql) compgen -G "$pglib/*/bin/initdb" >/dev/null ;;
	chromium) [ -x "$chromium" ] ;;
	*) command -v "$1" >/dev/null ;;
	esac
}

# The Debian package that brings each dependency.
declare -A package=(
	[postgresql]=postgresql [runuser]=util-linux [mkfs.btrfs]=btrfs-progs [mmdebstrap]=mmdebstrap [chromium]=chromium
	[node]=nodejs [npm]=npm [curl]=curl [python3]=python3
)
# How to get what apt-get cannot bring.
declare -A remedy=(
	[moto_server]="pip install 'moto[server]==5.2.1'"
	[root]="run make test as root (sandboxd needs namespaces, mounts and cgroups; apt-get needs root)"
)

root=true
[ "$EUID" = 0 ] || root=false

missing=()
for dep in postgresql runuser mkfs.btrfs mmdebstrap chromium node npm curl python3 moto_server; do
	check "$dep" || missing+=("$dep")
done

# Install what apt-get can, in one go.
installable=()
for dep in "${missing[@]}"; do
	[ -n "${package[$dep]:-}" ] && installable+=("${package[$dep]}")
done
if ((${#installable[@]})) && $root; then
	echo "test-deps: installing ${installable[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${installable[@]}" >/dev/null; then
		:
	else
		echo "test-deps: apt-get install ${installable[*]} failed" >&2
	fi
fi

# What is still missing after the install.
still=()
for dep in "${missing[@]}"; do
	check "$dep" || still+=("$dep")
done
$root || still+=(root)

# The browser tests' modules, whenever npm is here and they are not those of the lock file.
if check npm && ! [ web/e2e/node_modules/.package-lock.json -nt web/e2e/package-lock.json ]; then
	echo "test-deps: npm ci in web/e2e" >&2
	if ! (cd web/e2e && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
		still+=("web/e2e npm modules")
		remedy["web/e2e npm modules"]="npm ci in web/e2e failed; is the npm registry reachable?"
	fi
fi

((${#still[@]})) || exit 0

for dep in "${still[@]}"; do
	how=${remedy[$dep]:-}
	if [ -z "$how" ] && [ -n "${package[$dep]:-}" ]; then
		how="apt-get install ${package[$dep]}"
		$root || how+=" (as root)"
	fi
	echo "test-deps: missing: $dep${how:+: $how}" >&2
done
if [ -n "${CI:-}" ]; then
	echo "test-deps: CI is set: every test dependency is required" >&2
	exit 1
fi
if [ "${SKIP_MISSING:-}" = 1 ]; then
	echo "test-deps: SKIP_MISSING=1: running without them; the tests that need them are skipped and counted" >&2
	exit 0
fi
echo "test-deps: make test needs them; SKIP_MISSING=1 runs without them (their tests are skipped and counted)" >&2
exit 1
