#!/usr/bin/env bash
# ci-matrix.sh — run the end-to-end tests against each PostgreSQL major version.
#
# For each version (ONLINE_PG_VERSIONS, default "14 16 17 18") it starts a
# server with scripts/pg-versions.sh on a port of its own (25400 + major, below the
# kernel's ephemeral range, so an outgoing connection never holds it),
# runs a subset of the phases and operations tests against it
# (ONLINE_MATRIX_RUN, a go test -run pattern: every Test...Lifecycle, which
# are each operation's in operations/ and the combined ones in phases/) and the backfill and triggers packages whole, stops it, and prints one summary line per version: passed or
# FAILED, and the seconds it took.
#
# Exit status: 1 when a version's server ran and its tests failed. A version
# whose server could not be installed or started (no network, say) is
# reported plainly but fails nothing.
#
# pg_dump: the tests compare `pg_dump --schema-only` before and after, and
# pg_dump refuses a server of a newer major version than its own. When the
# pg_dump on PATH is too old for a server, the script looks for a newer one
# under /usr/lib/postgresql/*/bin, then fetches the newest postgresql-client
# package of Debian's testing (or unstable) suite into its cache, with a
# private apt configuration that leaves the system's alone, and puts it first
# on PATH. That package is built for a newer C library than a stable system
# may have; it then runs under the loader of the libc6 package of the same
# suite, which is fetched too and used for pg_dump only. When no pg_dump
# fits, the tests that compare dumps are left out for that version, and its
# summary line says so. ONLINE_MATRIX_FETCH_PG_DUMP=no turns the fetch off.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

VERSIONS=${ONLINE_PG_VERSIONS:-14 16 17 18}
# The engine's end-to-end tests: every operation's lifecycle (operations/
# <name>_lifecycle_test.go, Test<Name>Lifecycle), composed rewrites,
# chained migrations, the SIGKILL kill points, recovery from
# pg_terminate_backend and statement_timeout, racing processes, hostile
# names.
RUN=${ONLINE_MATRIX_RUN:-^(Test[A-Za-z]+Lifecycle|TestChainedMigrations|TestKilledBackfillResumes|TestCrashKillPoints|TestCrashTerminatedSession|TestCrashStatementTimeout|TestCrashRacingProcesses|TestHostileNames|TestVersionPrivileges|TestTriggersUnderAnySearchPath|TestGeneratedColumnOnline|TestGeneratedColumnLaterMigrations|TestPartitionBackfillPerLeaf|TestExamples|TestComposedRewrites|TestCompleteBlockedByALock|TestFailingDown|TestAfterCommitFails|TestIrreversibleSQL|TestHostileFields|TestWritersDuringYieldingBackfill)$}
# The same without the tests that call pg_dump.
RUN_NO_DUMP=${ONLINE_MATRIX_RUN_NO_DUMP:-^(TestChainedMigrations|TestKilledBackfillResumes|TestCrashStatementTimeout|TestCrashRacingProcesses)$}
CACHE=${ONLINE_PG_CACHE:-/tmp/online-pg}
LOGS=${ONLINE_MATRIX_LOGS:-$CACHE/matrix-logs}

say() { printf 'ci-matrix: %s\n' "$*" >&2; }

# dump_major prints the major version of a pg_dump binary, or nothing.
dump_major() {
	"$1" --version 2>/dev/null | awk '{print $3}' | cut -d. -f1 | grep -E '^[0-9]+$'
}

# fetch_pg_dump installs Debian's newest postgresql-client into
# $CACHE/pg_dump and makes $CACHE/pg_dump/bin/pg_dump run it.
fetch_pg_dump() {
	local need=$1 dir="$CACHE/pg_dump" keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null && [ -f "$keyring" ] || {
		say "no apt-get, dpkg-deb or Debian keyring: cannot fetch a newer pg_dump"
		return 1
	}
	local apt="$dir/apt" suite
	for suite in testing unstable; do
		rm -rf "$apt"
		mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
		echo "deb [signed-by=$keyring] http://deb.debian.org/debian $suite main" >"$apt/sources.list"
		local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
			-o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o Debug::NoLocking=1
			-o APT::Sandbox::User=root -o Acquire::Languages=none)
		say "looking for a postgresql-client >= $need in Debian $suite"
		if ! timeout 300 apt-get "${opts[@]}" -qq update >"$apt/update.log" 2>&1; then
			say "apt-get update of Debian $suite failed (no network?): $(tail -n 2 "$apt/update.log" | tr '\n' ' ')"
			return 1
		fi
		local newest
		newest=$(apt-cache "${opts[@]}" search --names-only '^postgresql-client-[0-9]+$' 2>/dev/null |
			sed -E 's/^postgresql-client-([0-9]+) .*/\1/' | sort -n | tail -n 1)
		if [ -z "$newest" ] || [ "$newest" -lt "$need" ]; then
			say "Debian $suite has postgresql-client ${newest:-none}"
			continue
		fi
		if ! (cd "$apt/debs" && timeout 300 apt-get "${opts[@]}" -qq download "postgresql-client-$newest" libc6 >"$apt/download.log" 2>&1); then
			say "download of postgresql-client-$newest failed: $(tail -n 2 "$apt/download.log" | tr '\n' ' ')"
			return 1
		fi
		rm -rf "$dir/root" "$dir/bin"
		mkdir -p "$dir/root" "$dir/bin"
		local deb
		for deb in "$apt"/debs/*.deb; do dpkg-deb -x "$deb" "$dir/root" || return 1; done
		local real="$dir/root/usr/lib/postgresql/$newest/bin/pg_dump"
		[ -x "$real" ] || {
			say "no pg_dump in postgresql-client-$newest"
			return 1
		}
		if "$real" --version >/dev/null 2>&1; then
			printf '#!/bin/sh\nexec "%s" "$@"\n' "$real" >"$dir/bin/pg_dump"
		else
			# Built for a newer glibc than this system's: run it under
			# the suite's own loader and C library, found first, and
			# the system's libraries (libpq, zstd, ...) after them.
			local loader libc
			loader=$(find "$dir/root" -name 'ld-linux-x86-64.so.2' | head -n 1)
			libc=$(dirname "$(find "$dir/root" -name 'libc.so.6' | head -n 1)")
			[ -n "$loader" ] && [ -d "$libc" ] || {
				say "pg_dump $newest needs a newer C library, and libc6 of $suite has no loader"
				return 1
			}
			printf '#!/bin/sh\nexec "%s" --library-path "%s:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu" "%s" "$@"\n' \
				"$loader" "$libc" "$real" >"$dir/bin/pg_dump"
		fi
		chmod +x "$dir/bin/pg_dump"
		if [ "$(dump_major "$dir/bin/pg_dump")" = "$newest" ]; then
			say "using pg_dump $newest of Debian $suite ($dir/bin/pg_dump)"
			return 0
		fi
		say "pg_dump $newest of Debian $suite does not run here: $("$dir/bin/pg_dump" --version 2>&1 | head -n 2 | tr '\n' ' ')"
		return 1
	done
	return 1
}

# find_dump sets DUMP_DIR to a directory to put first on PATH so that
# pg_dump can dump a server of major version $1 ("" when the one on PATH
# does); it fails when there is none.
fetched=""
find_dump() {
	local need=$1 d m
	DUMP_DIR=""
	if command -v pg_dump >/dev/null && m=$(dump_major pg_dump) && [ "$m" -ge "$need" ]; then
		return 0
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -nr) "$CACHE/pg_dump/bin"; do
		if [ -x "$d/pg_dump" ] && m=$(dump_major "$d/pg_dump") && [ "$m" -ge "$need" ]; then
			DUMP_DIR=$d
			return 0
		fi
	done
	# One fetch serves every version (the newest pg_dump dumps older
	# servers), and a failed one is not tried again.
	[ -z "$fetched" ] && [ "${ONLINE_MATRIX_FETCH_PG_DUMP:-yes}" != no ] || return 1
	fetched=tried
	local max=$need v
	for v in $VERSIONS; do
		case "$v" in *[!0-9]*) ;; *) [ "$v" -gt "$max" ] && max=$v ;; esac
	done
	if fetch_pg_dump "$max" && m=$(dump_major "$CACHE/pg_dump/bin/pg_dump") && [ "$m" -ge "$need" ]; then
		DUMP_DIR=$CACHE/pg_dump/bin
		return 0
	fi
	return 1
}

mkdir -p "$LOGS"
started=()
stop_all() {
	local v
	for v in "${started[@]}"; do scripts/pg-versions.sh stop "$v" >/dev/null 2>&1 || true; done
}
trap stop_all EXIT

summary=()
failed=0
for v in $VERSIONS; do
	major=${v%%.*}
	port=$((25400 + major))
	log="$LOGS/pg$v.log"
	began=$SECONDS
	echo "== PostgreSQL $v on port $port"
	if ! scripts/pg-versions.sh install "$v" >"$LOGS/pg$v-install.log" 2>&1; then
		tail -n 5 "$LOGS/pg$v-install.log" >&2
		summary+=("pg $v: NOT RUN: install failed (no network or no such package; see $LOGS/pg$v-install.log)")
		continue
	fi
	if ! out=$(scripts/pg-versions.sh start "$v" "$port" 2>>"$LOGS/pg$v-install.log"); then
		tail -n 5 "$LOGS/pg$v-install.log" >&2
		summary+=("pg $v: NOT RUN: the server did not start (see $LOGS/pg$v-install.log)")
		continue
	fi
	started+=("$v")
	url=$(printf '%s\n' "$out" | sed -n 's/^DATABASE_URL=//p' | tail -n 1)
	server=$("$(scripts/pg-versions.sh bindir "$v" 2>/dev/null)/postgres" --version 2>/dev/null | awk '{print $3}')
	run=$RUN
	note=""
	if find_dump "$major"; then
		dumppath=${DUMP_DIR:+$DUMP_DIR:}$PATH
		note="pg_dump $(PATH=$dumppath dump_major pg_dump)"
	else
		dumppath=$PATH
		run=$RUN_NO_DUMP
		note="no pg_dump >= $major here: the tests that compare schema dumps were left out"
		say "$note"
	fi
	echo "== go test ./phases/ ./operations/ -run '$run'   (DATABASE_URL=$url, $note), then ./backfill/ ./triggers/"
	# The backfill and trigger packages, whole: their SQL (pg_locks, trigger
	# definitions, plpgsql) is what differs between versions.
	if DATABASE_URL=$url PATH=$dumppath go test -count=1 -timeout 20m ./phases/ ./operations/ -run "$run" 2>&1 | tee "$log" &&
		DATABASE_URL=$url go test -count=1 -timeout 10m ./backfill/ ./triggers/ 2>&1 | tee -a "$log" &&
		# The differential fuzzer, for a bounded time on each version
		# (the rollback oracle compares pg_dump output: left out without
		# a pg_dump as new as the server).
		{ [ "$run" = "$RUN_NO_DUMP" ] ||
			DATABASE_URL=$url PATH=$dumppath ONLINE_FUZZ_TIME=${ONLINE_MATRIX_FUZZ_TIME:-30s} go test -count=1 -timeout 10m ./internal/difffuzz/ 2>&1 | tee -a "$log"; }; then
		result=passed
	else
		result=FAILED
		failed=1
	fi
	secs=$((SECONDS - began))
	scripts/pg-versions.sh stop "$v" >/dev/null 2>&1 || true
	[ "$result" = passed ] || note="$note; log: $log"
	summary+=("pg $v (server ${server:-?}): $result in ${secs}s; $note")
done

echo "== PostgreSQL version matrix"
for line in "${summary[@]}"; do echo "$line"; done
exit $failed
