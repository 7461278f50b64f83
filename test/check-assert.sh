#!/usr/bin/env bash
# test/check-assert.sh — the whole sales_kafka test suite against a
# PostgreSQL 15 built with assertions (`make check-assert`), on a fresh
# Debian 12 machine, as root or as a normal user, with no stdin.
#
# Why: a server built with --enable-cassert turns on, through
# pg_config_manual.h, CLOBBER_FREED_MEMORY (freed and reset memory is
# overwritten with 0x7F bytes at once) and MEMORY_CONTEXT_CHECKING (chunk
# sentinels, context consistency checks), plus every Assert() in the server
# and in our code and the end-of-transaction checks for leaked buffer pins
# and other resources. Memory used after its context was reset or deleted
# still holds its old bytes on a production build, so the code seems to work;
# here it reads 0x7F7F7F7F... and crashes or fails an Assert. CI and
# `make test` use the system's production build; this is the run to do
# before a release and after any change to memory or transaction handling.
# Not part of CI: the first run builds PostgreSQL (several minutes).
#
# Steps:
#   packages  what the build needs (root: apt-get; else print the command)
#   source    Debian's source packages postgresql-15 (the installed version
#             if the archive still has it, else the newest 15.x it has) and
#             pg-cron, fetched by apt-get source through a private sources
#             list and state directory: the machine's apt configuration is
#             left as it is. apt checks them against the signed indexes.
#   build     PostgreSQL from the upstream tarball of that source package,
#             without Debian's patches (they hard-code the system's
#             directories): configure --enable-cassert --enable-debug
#             --enable-tap-tests, with USE_VALGRIND defined (a few percent
#             slower; lets `--valgrind` run it under valgrind), plus contrib,
#             pg_cron, and pgTAP's SQL files from postgresql-15-pgtap, all
#             into $SK_ASSERT_DIR/pg. Skipped when that build is current: same
#             recipe, same system postgresql-15 and pgTAP versions.
#   suites    test/run-tests.sh with SK_PG_BIN=$SK_ASSERT_DIR/pg/bin (it
#             builds the extension afresh for that installation and installs
#             it there, never into the system's PostgreSQL, so the global
#             install lock is not needed) and SK_CHECK_SERVER_LOGS=1 (every
#             assertion failure, crash, memory-context or leak warning in any
#             server log counts as a failed test, with a backtrace from each
#             core file). Core files are allowed (ulimit -c).
#
# With "--valgrind" the suites step runs only the broker-free pg_regress
# suite, on a cluster whose every process runs under valgrind
# (test/valgrind-regress.sh); about 3 minutes once PostgreSQL is built.
# With "--discard-caches" it runs only the pg_regress suite, with
# debug_discard_caches = 1 in every session (a relation or catalog cache
# entry used after an invalidation then fails at once; ~3 minutes).
#
# Environment:
#   SK_ASSERT_DIR     the cache (default /var/tmp/sales_kafka-pg15-assert):
#                     pg/ the installation, src/ the sources, apt/ the private
#                     apt state, build.log; kept between runs. Whoever built it
#                     owns it: a normal user sets its own.
#   SK_ASSERT_REBUILD=1  build PostgreSQL again even if current
#   SK_ASSERT_CFLAGS  compiler flags of the build (default
#                     "-O2 -g -fno-omit-frame-pointer"; "-Og -g3" debugs better)
#   and whatever test/run-tests.sh takes (PROVE_TESTS, SK_KEEP, KAFKA_BROKERS,
#   SK_SUITE_TIMEOUT, ...)
# The last line is run-tests.sh's "N passed, N failed".
set -euo pipefail
umask 022

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${SK_ASSERT_DIR:-/var/tmp/sales_kafka-pg15-assert}
DIR=${DIR%/}
PREFIX=$DIR/pg
CFLAGS_BUILD=${SK_ASSERT_CFLAGS:--O2 -g -fno-omit-frame-pointer}
JOBS=${SK_ASSERT_JOBS:-$(nproc)}
MODE=suites
case ${1:-} in
'') ;;
--valgrind) MODE=valgrind ;;
--discard-caches) MODE=discard-caches ;;
*)
	echo "usage: $0 [--valgrind | --discard-caches]" >&2
	exit 2
	;;
esac

# Bump when the build below changes: every cache is then rebuilt.
RECIPE=1
CONFIGURE_ARGS=(--prefix="$PREFIX" --enable-cassert --enable-debug --enable-tap-tests
	--with-readline --with-zlib)

PACKAGES=(
	postgresql-15 postgresql-15-pgtap # the version to match; pgTAP's SQL files
	postgresql-15-cron                # pg_cron when its source is not served
	dpkg-dev bzip2 xz-utils           # apt-get source, dpkg-source
	gcc libc6-dev make perl libreadline-dev zlib1g-dev
	libipc-run-perl # configure --enable-tap-tests
	valgrind        # its headers for USE_VALGRIND; --valgrind
	gdb             # backtraces of core files
)


# Run from `make check-assert`, we inherit the outer make's MAKELEVEL, which
# makes PostgreSQL's build skip generating its headers, and its MAKEFLAGS.
pg_make() { env -u MAKELEVEL -u MAKEFLAGS -u MFLAGS make "$@"; }

say() { printf 'check-assert: %s\n' "$*"; }
die() {
	say "FAILED: $*" >&2
	exit 1
}
now_s() { date +%s; }
T0=$(now_s)

# ---------------------------------------------------------------- packages

printf '\n==== packages\n'
# shellcheck source=test/packages.sh
. "$SRC/test/packages.sh"
sk_install_packages "${PACKAGES[@]}"

SYS_PG_VERSION=$(dpkg-query -W -f='${Version}' postgresql-15)
SYS_PGTAP_VERSION=$(dpkg-query -W -f='${Version}' postgresql-15-pgtap)
SYS_CRON_VERSION=$(dpkg-query -W -f='${Version}' postgresql-15-cron)
PGTAP_FILES=(/usr/share/postgresql/15/extension/pgtap*)

# What the cache must have been built from and how; compared line by line.
WANT_STAMP=$(printf '%s\n' "recipe $RECIPE" "configure ${CONFIGURE_ARGS[*]}" \
	"cflags $CFLAGS_BUILD" "cppflags -DUSE_VALGRIND" \
	"system postgresql-15 $SYS_PG_VERSION" "system pgtap $SYS_PGTAP_VERSION" \
	"system pg_cron $SYS_CRON_VERSION")

# ---------------------------------------------------------------- cache lock

mkdir -p "$DIR"
[ -w "$DIR" ] || die "$DIR is not writable by $(id -un): set SK_ASSERT_DIR to a directory of your own"
# Exclusive while checking and building; shared while the suites run, so
# that no build replaces the installation under a running test.
exec 7>>"$DIR/lock"
if ! flock -n 7; then
	say "waiting for another check-assert using $DIR"
	flock -w 7200 7 || die "$DIR stayed locked for two hours"
fi

# ---------------------------------------------------------------- source

APT=$DIR/apt
APT_OPTS=(-o Dir::Etc::SourceList="$APT/sources.list"
	-o Dir::Etc::SourceParts="$APT/sources.list.d"
	-o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache"
	-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
	-o Debug::NoLocking=true)

# The machine's package sources, as deb-src, in our private apt directory.
private_apt_sources() {
	local f
	rm -rf "$APT/sources.list.d"
	mkdir -p "$APT/sources.list.d" "$APT/lists/partial" "$APT/cache/archives/partial"
	: >"$APT/sources.list"
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		sed -n -E 's/^[[:space:]]*deb([[:space:]])/deb-src\1/p' "$f" >>"$APT/sources.list"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		sed -E 's/^Types:.*/Types: deb-src/' "$f" >"$APT/sources.list.d/$(basename "$f")"
	done
}

# fetch_source PACKAGE VERSION...: download the first VERSION the archive
# serves into $DIR/src/dl; prints the .dsc's path.
fetch_source() {
	local pkg=$1 v
	shift
	mkdir -p "$DIR/src/dl"
	for v in "$@"; do
		if (cd "$DIR/src/dl" && apt-get "${APT_OPTS[@]}" source --download-only \
			"$pkg=$v" </dev/null >"$DIR/src/dl/apt-get.log" 2>&1); then
			echo "$DIR/src/dl/${pkg}_${v#*:}.dsc"
			return 0
		fi
		say "the archive does not serve $pkg $v:" >&2
		grep -E '^E:' "$DIR/src/dl/apt-get.log" | head -n 3 >&2 || true
	done
	return 1
}

# source_versions PACKAGE: the versions the private lists know, newest first.
source_versions() {
	apt-cache "${APT_OPTS[@]}" showsrc "$1" 2>/dev/null |
		sed -n 's/^Version: //p' | sort -u | sort -r -V
}

# ---------------------------------------------------------------- build

build_postgresql() {
	local t0 pg_dsc cron_dsc cron_used pg_src cron_src v versions=() cron_versions=()

	printf '\n==== source\n'
	t0=$(now_s)
	private_apt_sources
	rm -rf "$DIR/src/dl"
	apt-get "${APT_OPTS[@]}" update </dev/null >"$DIR/apt-update.log" 2>&1 || {
		cat "$DIR/apt-update.log" >&2
		die "apt-get update of the private deb-src lists failed: is Debian's archive reachable?"
	}
	# the installed version first, then the others of major version 15
	versions=("$SYS_PG_VERSION")
	while IFS= read -r v; do
		[ "$v" = "$SYS_PG_VERSION" ] || [[ $v != 15.* ]] || versions+=("$v")
	done < <(source_versions postgresql-15)
	pg_dsc=$(fetch_source postgresql-15 "${versions[@]}") ||
		die "could not download Debian's source package postgresql-15 (tried ${versions[*]})"
	[ "$(basename "$pg_dsc")" = "postgresql-15_${SYS_PG_VERSION#*:}.dsc" ] ||
		say "note: building $(basename "$pg_dsc" .dsc), not the installed $SYS_PG_VERSION (the archive no longer serves its source)"
	mapfile -t cron_versions < <(source_versions pg-cron)
	cron_dsc=
	if [ ${#cron_versions[@]} -eq 0 ] ||
		! cron_dsc=$(fetch_source pg-cron "${cron_versions[@]}"); then
		cron_dsc=
		say "the archive does not serve pg-cron's source: pg_cron comes from the system's binary package" >&2
	fi
	pg_src=$DIR/src/postgresql
	cron_src=$DIR/src/pg_cron
	rm -rf "$pg_src" "$cron_src" "$PREFIX"
	dpkg-source --skip-patches -x "$pg_dsc" "$pg_src" >"$DIR/build.log" 2>&1 ||
		{ tail -n 20 "$DIR/build.log"; die "dpkg-source -x $pg_dsc failed"; }
	if [ -n "$cron_dsc" ]; then
		dpkg-source -x "$cron_dsc" "$cron_src" >>"$DIR/build.log" 2>&1 ||
			{ tail -n 20 "$DIR/build.log"; die "dpkg-source -x $cron_dsc failed"; }
	fi
	say "sources: $(basename "$pg_dsc" .dsc)${cron_dsc:+, $(basename "$cron_dsc" .dsc)} ($(($(now_s) - t0)) s)"

	printf '\n==== build (log: %s)\n' "$DIR/build.log"
	t0=$(now_s)
	say "configure ${CONFIGURE_ARGS[*]} CFLAGS='$CFLAGS_BUILD' CPPFLAGS=-DUSE_VALGRIND"
	(cd "$pg_src" && ./configure "${CONFIGURE_ARGS[@]}" CFLAGS="$CFLAGS_BUILD" \
		CPPFLAGS=-DUSE_VALGRIND) >>"$DIR/build.log" 2>&1 </dev/null ||
		{ tail -n 40 "$DIR/build.log"; die "configure failed"; }
	grep -q '^#define USE_ASSERT_CHECKING 1' "$pg_src/src/include/pg_config.h" ||
		die "configure did not turn on USE_ASSERT_CHECKING"
	say "make -j$JOBS world-bin (PostgreSQL and contrib)"
	pg_make -C "$pg_src" -j"$JOBS" world-bin >>"$DIR/build.log" 2>&1 </dev/null ||
		{ tail -n 40 "$DIR/build.log"; die "the PostgreSQL build failed"; }
	pg_make -C "$pg_src" install-world-bin >>"$DIR/build.log" 2>&1 </dev/null ||
		{ tail -n 40 "$DIR/build.log"; die "the PostgreSQL install failed"; }
	if [ -n "$cron_dsc" ]; then
		say "pg_cron from $(basename "$cron_dsc" .dsc)"
		if ! pg_make -C "$cron_src" -j"$JOBS" PG_CONFIG="$PREFIX/bin/pg_config" \
			>>"$DIR/build.log" 2>&1 </dev/null ||
			! pg_make -C "$cron_src" install PG_CONFIG="$PREFIX/bin/pg_config" \
				>>"$DIR/build.log" 2>&1 </dev/null; then
			tail -n 40 "$DIR/build.log"
			die "the pg_cron build failed"
		fi
		cron_used=$(basename "$cron_dsc" .dsc)
	else
		# PG_MODULE_MAGIC matches (same major version and ABI-relevant
		# settings), so it loads; its own code runs without Asserts
		say "pg_cron: the system's postgresql-15-cron $SYS_CRON_VERSION (built without assertions)"
		cp /usr/lib/postgresql/15/lib/pg_cron.so "$("$PREFIX/bin/pg_config" --pkglibdir)/"
		cp /usr/share/postgresql/15/extension/pg_cron* "$("$PREFIX/bin/pg_config" --sharedir)/extension/"
		cron_used="postgresql-15-cron $SYS_CRON_VERSION (binary, without assertions)"
	fi
	say "pgTAP's SQL files from postgresql-15-pgtap $SYS_PGTAP_VERSION"
	cp "${PGTAP_FILES[@]}" "$("$PREFIX/bin/pg_config" --sharedir)/extension/"
	printf '%s\n' "$(basename "$pg_dsc" .dsc)" "$cron_used" \
		"pgtap $SYS_PGTAP_VERSION" >"$PREFIX/SOURCES"
	printf '%s\n' "$WANT_STAMP" >"$PREFIX/STAMP"
	say "built in $(($(now_s) - t0)) s"
}

if [ "${SK_ASSERT_REBUILD:-0}" != 1 ] && [ -x "$PREFIX/bin/postgres" ] &&
	[ "$(cat "$PREFIX/STAMP" 2>/dev/null)" = "$WANT_STAMP" ]; then
	say "the build in $PREFIX is current: $(tr '\n' ' ' <"$PREFIX/SOURCES")"
else
	[ ! -e "$PREFIX/STAMP" ] || say "the build in $PREFIX is out of date: building it again"
	build_postgresql
fi
"$PREFIX/bin/pg_config" --configure | grep -q -- '--enable-cassert' ||
	die "$PREFIX/bin/pg_config: not a build with --enable-cassert"
say "PostgreSQL and pg_cron ready in $(($(now_s) - T0)) s"

# ---------------------------------------------------------------- suites

flock -s 7
ulimit -c unlimited 2>/dev/null || say "note: core files not allowed (ulimit -c): no backtraces"
export SK_PG_BIN=$PREFIX/bin SK_CHECK_SERVER_LOGS=1
# the TAP nodes' data directories (with any core file) stay until the end
# of the run, when run-tests.sh removes its whole work directory
export PG_TEST_NOCLEAN=1
if [ "$MODE" = valgrind ]; then
	supp=$DIR/src/postgresql/src/tools/valgrind.supp
	[ -f "$supp" ] || die "no $supp: run with SK_ASSERT_REBUILD=1"
	# each process runs about 20 times slower
	export SK_SUITE_TIMEOUT=${SK_SUITE_TIMEOUT:-3600}
	exec "$SRC/test/run-tests.sh" --run test/valgrind-regress.sh "$supp"
fi
if [ "$MODE" = discard-caches ]; then
	exec "$SRC/test/run-tests.sh" --run env PGOPTIONS='-c debug_discard_caches=1' \
		make installcheck TAP_TESTS= PG_CONFIG="$PREFIX/bin/pg_config"
fi
exec "$SRC/test/run-tests.sh"
