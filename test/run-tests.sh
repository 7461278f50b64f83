#!/usr/bin/env bash
# test/run-tests.sh — the whole sales_kafka test suite in one command
# (`make test`), on a fresh Debian 12 machine, as root or as a normal user.
#
# Phases:
#   packages   install what is missing (root: apt-get; else print the command)
#   build      make, make install (root, sudo -n, or an up-to-date install);
#              with SK_PG_BIN, in a private copy of the tree
#   workdir    copy the tree into a fresh mktemp -d directory owned by the
#              test user; everything below runs there, so the checkout stays
#              clean and two runs (in turn or in parallel) never share a file
#   broker     start test/kafka/sk_test_broker with the topics of
#              test/kafka/topics.list, or create them on KAFKA_BROKERS
#   fixtures   test/kafka/fixtures.sh
#   postgres   initdb + start a cluster on a free port (pg_regress, pgTAP)
#   pg_regress, pgtap, tap   the three suites; each runs whatever happened
#              before, and each is counted
#   server-logs   only with SK_CHECK_SERVER_LOGS=1 (below)
# The last line is "N passed, N failed"; the exit status is non-zero if any
# test failed or none ran. A trap stops PostgreSQL and the broker and
# removes the work directory on exit, failure, Ctrl-C or SIGTERM.
#
# With "--run COMMAND [ARG...]" it sets up the same way (packages, build,
# broker, PostgreSQL) but runs COMMAND in the copied tree, as the test user,
# instead of the suites, then cleans up and exits with COMMAND's status: the
# benchmarks (make bench) and the demo run so.  COMMAND sees PGHOST,
# PGPORT, PGUSER, SK_TEST_BROKERS, SK_TEST_BROKER_CTL, SK_TEST_BROKER_BIN
# and SK_TEST_TOPIC_PREFIX.
#
# Environment:
#   KAFKA_BROKERS     bootstrap list of a real cluster to test against instead
#                     of the test broker (topics get a per-run prefix)
#   SK_KEEP=1         keep the work directory (data, logs) for inspection
#   SK_SUITE_TIMEOUT  seconds each suite may run (default 900)
#   PG_TEST_TIMEOUT_DEFAULT, PG_TEST_NOCLEAN, PROVE_TESTS
#                     passed through to the TAP tests
#   SK_METRIC_MINUTES  minutes of the metric stream of t/014_metric_year.pl
#                     (default a year, 527040; whole days), passed through
#   SK_PG_BIN         bin directory of another PostgreSQL 15 installation to
#                     test against (default: the system's, below); the
#                     extension is then built in a private copy of the tree,
#                     installed into that installation (which the user must
#                     be able to write, or root), and pg_regress, pg_ctl,
#                     initdb and the TAP Perl modules come from it. Runs
#                     against one such installation take turns (a lock file
#                     in its library directory). test/check-assert.sh builds
#                     one with assertions and runs the suites so.
#   SK_SERVER_SETTINGS  settings for the cluster of pg_regress, pgTAP and
#                     --run, ';' between them, after the others (for a
#                     benchmark of a server configured as in production:
#                     SK_SERVER_SETTINGS='shared_buffers = 2GB')
#   SK_CHECK_SERVER_LOGS=1  after the suites, search every server log of the
#                     run for assertion failures, crashes, memory-context
#                     and resource-leak warnings and core files (with gdb, a
#                     backtrace of each); each log with findings counts as a
#                     failed test
set -euo pipefail

SYSTEM_PG_BIN=/usr/lib/postgresql/15/bin
PG_BIN=${SK_PG_BIN:-$SYSTEM_PG_BIN}
PG_BIN=${PG_BIN%/}
PG_CONFIG=$PG_BIN/pg_config
export PATH="$PG_BIN:$PATH"
# 1: testing another installation than the system's
ALT_PG=0
[ "$PG_BIN" = "$SYSTEM_PG_BIN" ] || ALT_PG=1

# initdb refuses to run as root, so as root every PostgreSQL and test step
# runs as this dedicated system user. Not "postgres": that user owns the
# distribution's own cluster (/var/lib/postgresql), which a test must not be
# able to touch, and a user of our own makes leftovers easy to spot
# (pgrep -u sales_kafka_test).
TEST_USER=sales_kafka_test

PACKAGES=(
	postgresql-15 postgresql-server-dev-15 postgresql-15-cron
	postgresql-15-pgtap
	libtap-parser-sourcehandler-pgtap-perl # pg_prove: only a Recommends of pgtap
	librdkafka-dev kcat libipc-run-perl
	odbc-postgresql unixodbc libdbd-odbc-perl # t/016: psqlODBC through unixODBC, from Perl's DBI
	perl # prove
	gcc libc6-dev make # libc6-dev: only a Recommends of gcc
	# the dashboard (dashboard/), and the browser its test drives
	libmicrohttpd-dev libpq-dev pkg-config libjs-chart.js chromium chromium-driver
)

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_CMD=()
if [ "${1:-}" = "--run" ]; then
	shift
	[ $# -gt 0 ] || { echo "usage: $0 [--run COMMAND [ARG...]]" >&2; exit 2; }
	RUN_CMD=("$@")
fi
SUITE_TIMEOUT=${SK_SUITE_TIMEOUT:-900}
IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1

# ---------------------------------------------------------------- helpers

say() { printf 'run-tests: %s\n' "$*"; }
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
fmt_ms() { printf '%d.%01ds' $(($1 / 1000)) $(($1 % 1000 / 100)); }

T_START=$(now_ms)
PHASE=
PHASE_T0=
PHASE_TIMES=()
# phase NAME: end the current phase (printing its time), start NAME ('' ends).
phase() {
	if [ -n "$PHASE" ]; then
		local ms=$(($(now_ms) - PHASE_T0))
		PHASE_TIMES+=("$(printf '  %-12s %s' "$PHASE" "$(fmt_ms "$ms")")")
		say "$PHASE took $(fmt_ms "$ms")"
	fi
	PHASE=$1
	PHASE_T0=$(now_ms)
	[ -z "$PHASE" ] || printf '\n==== %s\n' "$PHASE"
}

PASSED=0
FAILED=0
SUITE_LINES=()
SUMMARY_ARMED=0 # once set, every exit ends with the summary line
SUMMARY_DONE=0

# The final line. Counting zero tests is a failure too.
summary() {
	[ "$SUMMARY_DONE" -eq 0 ] || return 0
	SUMMARY_DONE=1
	phase ''
	printf '\n==== timing\n'
	[ ${#PHASE_TIMES[@]} -eq 0 ] || printf '%s\n' "${PHASE_TIMES[@]}"
	printf '  %-12s %s\n' total "$(fmt_ms $(($(now_ms) - T_START)))"
	printf '\n==== results\n'
	[ ${#SUITE_LINES[@]} -eq 0 ] || printf '%s\n' "${SUITE_LINES[@]}"
	if [ $((PASSED + FAILED)) -eq 0 ]; then
		say "no test ran: counting that as a failure"
		FAILED=1
	fi
	echo "$PASSED passed, $FAILED failed"
}

# fail MESSAGE: a setup step failed; stop here (the EXIT trap cleans up and
# prints the summary with this failure counted).
fail() {
	say "FAILED: $*" >&2
	FAILED=$((FAILED + 1))
	SUITE_LINES+=("  setup: $PHASE failed")
	show_server_log
	exit 1
}

# ---------------------------------------------------------------- packages

phase packages
# shellcheck source=test/packages.sh
. "$SRC/test/packages.sh"
sk_install_packages "${PACKAGES[@]}"

# a command of its own reports its own outcome: no test summary then
[ ${#RUN_CMD[@]} -gt 0 ] || SUMMARY_ARMED=1

# ---------------------------------------------------------------- cleanup

WORK=
BUILD_DIR= # the private build of the extension (SK_PG_BIN only)
STEP_PID=   # process group of the step being waited for
BROKER_PID= # process group of the test broker
AS_TESTER=()
CLEANED=0

# On failure: the end of the server log and of the test broker's log.
show_server_log() {
	local f
	[ -n "$WORK" ] || return 0
	for f in "$WORK/pg.log" "$WORK/broker/broker.log"; do
		[ -s "$f" ] || continue
		printf '\n==== last 100 lines of %s\n' "$f"
		tail -n 100 "$f"
	done
}

# The postmaster PID of a data directory, if one is running.
postmaster_pid() {
	local pid
	pid=$(head -n 1 "$1/postmaster.pid" 2>/dev/null) || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# Stop the cluster in $1: fast, then immediate, then SIGKILL.
stop_cluster() {
	local dir=$1 pid
	pid=$(postmaster_pid "$dir") || return 0
	say "stopping PostgreSQL in $dir (pid $pid)"
	"${AS_TESTER[@]}" pg_ctl -D "$dir" -m fast -t 30 stop >/dev/null 2>&1 ||
		"${AS_TESTER[@]}" pg_ctl -D "$dir" -m immediate -t 30 stop >/dev/null 2>&1 ||
		kill -KILL "$pid" 2>/dev/null || true
}

# kill_group PGID NAME: SIGTERM the process group, SIGKILL after 5 s.
kill_group() {
	local pgid=$1 name=$2 i
	kill -0 -- "-$pgid" 2>/dev/null || return 0
	say "stopping $name (process group $pgid)"
	kill -TERM -- "-$pgid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 -- "-$pgid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 -- "-$pgid" 2>/dev/null; then
		say "$name ignored SIGTERM for 5 s: SIGKILL"
		kill -KILL -- "-$pgid" 2>/dev/null || true
	fi
	wait "$pgid" 2>/dev/null || true
}

cleanup() {
	[ "$CLEANED" -eq 0 ] || return 0
	CLEANED=1
	set +e
	[ -z "$STEP_PID" ] || kill_group "$STEP_PID" "the running step"
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		# our cluster, and any TAP test node left behind by a killed test
		local pidfile
		while IFS= read -r pidfile; do
			stop_cluster "$(dirname "$pidfile")"
		done < <(find "$WORK" -name postmaster.pid 2>/dev/null)
	fi
	[ -z "$BROKER_PID" ] || kill_group "$BROKER_PID" "the test broker"
	[ -z "$BUILD_DIR" ] || rm -rf "$BUILD_DIR"
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "${SK_KEEP:-0}" = 1 ]; then
			say "SK_KEEP=1: kept $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
}

on_exit() {
	local rc=$?
	cleanup
	if [ "$SUMMARY_ARMED" -eq 1 ] && [ "$SUMMARY_DONE" -eq 0 ]; then
		[ "$rc" -eq 0 ] || [ "$FAILED" -gt 0 ] || FAILED=1
		summary
	fi
	exit "$rc"
}
trap on_exit EXIT
# stopped(WHAT STATUS): a signal ends the run; counts as one failure.
stopped() {
	say "$1"
	FAILED=$((FAILED + 1))
	SUITE_LINES+=("  $1 during phase $PHASE")
	exit "$2"
}
trap 'stopped interrupted 130' INT
trap 'stopped terminated 143' TERM

# run_step LOG DIR COMMAND...: run COMMAND in DIR, its output both shown and
# written to LOG, bounded by SUITE_TIMEOUT. It runs in a session of its own,
# led by timeout(1): Ctrl-C reaches our trap at once (we wait with the wait
# builtin), and cleanup or the time limit kills its whole process group.
# Returns COMMAND's exit status (124 on timeout).
run_step() {
	local log=$1 dir=$2 rc=0
	shift 2
	# shellcheck disable=SC2016 # $1 and $@ are bash -c's own
	(cd "$dir" && exec setsid timeout -k 30 "$SUITE_TIMEOUT" \
		bash -c 'set -o pipefail; log=$1; shift; "$@" 2>&1 | tee "$log"' \
		run_step "$log" "$@") &
	STEP_PID=$!
	wait "$STEP_PID" || rc=$?
	STEP_PID=
	[ "$rc" -ne 124 ] || say "timed out after ${SUITE_TIMEOUT}s: $*"
	return "$rc"
}

# ---------------------------------------------------------------- build

# copy_tree DEST: the checkout's tracked and untracked-but-not-ignored files
# (what a commit of the working tree would hold) into DEST. Without git,
# everything but build and test output.
copy_tree() {
	local dest=$1
	if git -c safe.directory="*" -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git -c safe.directory="*" -C "$SRC" ls-files -z -co --exclude-standard |
			while IFS= read -r -d '' f; do
				# a tracked file deleted in the working tree is not copied
				[ ! -e "$SRC/$f" ] || printf '%s\0' "$f"
			done |
			tar -C "$SRC" --null -T - -cf - | tar -C "$dest" -xf -
	else
		tar -C "$SRC" --exclude=.git --exclude=./results --exclude=./tmp_check \
			--exclude=./log --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
			-cf - . | tar -C "$dest" -xf -
	fi
}

phase build
cd "$SRC"
if [ "$ALT_PG" -eq 1 ]; then
	# Another installation: objects built against the system's headers must
	# never be linked for it (nor the reverse), so the extension is built
	# from scratch in a copy of the tree, not in the checkout.
	[ -x "$PG_CONFIG" ] || fail "SK_PG_BIN=$PG_BIN: no pg_config there"
	alt_libdir=$("$PG_CONFIG" --pkglibdir)
	alt_extdir=$("$PG_CONFIG" --sharedir)/extension
	say "PostgreSQL installation $PG_BIN: $("$PG_CONFIG" --version), configured with $("$PG_CONFIG" --configure)"
	if [ ! -w "$alt_libdir" ] || [ ! -w "$alt_extdir" ]; then
		fail "cannot install into $alt_libdir and $alt_extdir: not writable by $(id -un)"
	fi
	# Runs against this installation take turns for the whole run: each
	# installs its own build of the extension there.
	exec 8>>"$alt_libdir/sales_kafka-tests.lock"
	if ! flock -n 8; then
		say "waiting for another run against $PG_BIN to finish"
		flock -w 3600 8 || fail "another run kept $PG_BIN locked for an hour"
	fi
	BUILD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sales_kafka_build.XXXXXX")
	copy_tree "$BUILD_DIR"
	run_step /dev/null "$BUILD_DIR" make -j"$(nproc)" PG_CONFIG="$PG_CONFIG" || fail "make failed"
	[ -x "$BUILD_DIR/test/kafka/sk_test_broker" ] ||
		fail "make did not build test/kafka/sk_test_broker"
	make -C "$BUILD_DIR" install PG_CONFIG="$PG_CONFIG" >/dev/null || fail "make install failed"
	say "built in $BUILD_DIR, installed into $alt_libdir"
	BUILT=$BUILD_DIR
else
	# Parallel runs from one checkout share its build output and the
	# installed extension: build and install one at a time (a lock on the
	# directory).
	exec 9<"$SRC"
	flock -w 900 9 || fail "another run kept $SRC locked for 15 minutes"
	run_step /dev/null "$SRC" make -j"$(nproc)" PG_CONFIG="$PG_CONFIG" || fail "make failed"
	[ -x test/kafka/sk_test_broker ] || fail "make did not build test/kafka/sk_test_broker"

	# True when the installed extension is byte-identical to the built one.
	installed_is_current() {
		local f libdir extdir
		libdir=$("$PG_CONFIG" --pkglibdir)
		extdir=$("$PG_CONFIG" --sharedir)/extension
		cmp -s sales_kafka.so "$libdir/sales_kafka.so" || return 1
		for f in sales_kafka.control sales_kafka--*.sql; do
			cmp -s "$f" "$extdir/$f" || return 1
		done
	}

	if [ "$IS_ROOT" -eq 1 ]; then
		make install PG_CONFIG="$PG_CONFIG" >/dev/null || fail "make install failed"
		say "installed into $("$PG_CONFIG" --pkglibdir)"
	elif installed_is_current; then
		say "the installed extension is up to date"
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
		sudo -n make install PG_CONFIG="$PG_CONFIG" >/dev/null || fail "sudo make install failed"
		say "installed with sudo"
	else
		say "the built extension is not installed; install it as root, then run again:" >&2
		echo "sudo make install PG_CONFIG=$PG_CONFIG" >&2
		fail "cannot install: not root, and no password-less sudo"
	fi

	exec 9<&-
	BUILT=$SRC
fi

# ---------------------------------------------------------------- workdir

phase workdir
if [ "$IS_ROOT" -eq 1 ]; then
	if ! id -u "$TEST_USER" >/dev/null 2>&1; then
		say "creating system user $TEST_USER"
		# a parallel run may create it at the same moment
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin "$TEST_USER" || id -u "$TEST_USER" >/dev/null ||
			fail "could not create user $TEST_USER"
	fi
	# /tmp, not $TMPDIR: the test user must be able to reach it
	WORK=$(mktemp -d /tmp/sales_kafka_test.XXXXXX)
	TESTER=$TEST_USER
else
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/sales_kafka_test.XXXXXX")
	TESTER=$(id -un)
fi
# unix socket paths are limited to 107 bytes
[ ${#WORK} -le 64 ] || fail "work directory path too long for unix sockets: $WORK (set TMPDIR)"
mkdir -p "$WORK"/{src,broker,sock,home,tmp,logs}
# from here on, commands run as the test user start in a directory it can read
cd "$WORK"

copy_tree "$WORK/src"
cp "$BUILT/test/kafka/sk_test_broker" "$WORK/src/test/kafka/sk_test_broker"
[ "$IS_ROOT" -eq 0 ] || chown -R "$TESTER:" "$WORK"
chmod 700 "$WORK"
say "work directory $WORK ($(find "$WORK/src" -type f | wc -l) files), tests run as $TESTER"

BROKER_BIN=$WORK/src/test/kafka/sk_test_broker
TOPIC_PREFIX="skt_$(date +%s)_$$_"

# The environment of every test step; nothing else leaks in from ours.
TENV=(
	PATH="$PG_BIN:/usr/local/bin:/usr/bin:/bin"
	HOME="$WORK/home" TMPDIR="$WORK/tmp" LANG=C.UTF-8 USER="$TESTER"
	SK_TEST_TOPIC_PREFIX="$TOPIC_PREFIX"
	SK_TEST_BROKER_BIN="$BROKER_BIN"
	SK_TEST_CONF="$WORK/src/test/sales_kafka.conf"
)
# the settings of the benchmarks and the demo: every BENCH_* and DEMO_*
for v in PG_TEST_TIMEOUT_DEFAULT PG_TEST_NOCLEAN PROVE_TESTS SK_METRIC_MINUTES $(compgen -v | grep -E '^(BENCH|DEMO)_'); do
	[ -z "${!v:-}" ] || TENV+=("$v=${!v}")
done
# tester_env VAR=VALUE...: add to the test environment.
tester_env() {
	TENV+=("$@")
	if [ "$IS_ROOT" -eq 1 ]; then
		AS_TESTER=(setpriv --reuid="$TESTER" --regid="$TESTER" --init-groups -- env -i "${TENV[@]}")
	else
		AS_TESTER=(env -i "${TENV[@]}")
	fi
}
tester_env

# ---------------------------------------------------------------- broker

phase broker
TOPIC_SPECS=()
while read -r name parts extra; do
	case $name in '' | '#'*) continue ;; esac
	[[ $name =~ ^[A-Za-z0-9._-]+$ && $parts =~ ^[1-9][0-9]*$ && -z $extra ]] ||
		fail "test/kafka/topics.list: bad line: $name $parts $extra"
	TOPIC_SPECS+=("$TOPIC_PREFIX$name:$parts")
done <"$SRC/test/kafka/topics.list"
say "topics: ${TOPIC_SPECS[*]}"

if [ -n "${KAFKA_BROKERS:-}" ]; then
	say "using the real cluster KAFKA_BROKERS=$KAFKA_BROKERS"
	BROKERS=$KAFKA_BROKERS
	BROKER_CTL=
	run_step "$WORK/logs/create-topics.log" "$WORK" "${AS_TESTER[@]}" \
		"$BROKER_BIN" create-topics "$BROKERS" "${TOPIC_SPECS[@]}" ||
		fail "could not create the topics on $BROKERS"
else
	BROKER_CTL=$WORK/broker/ctl
	topic_args=()
	for t in "${TOPIC_SPECS[@]}"; do topic_args+=(--topic "$t"); done
	(cd "$WORK" && exec setsid "${AS_TESTER[@]}" "$BROKER_BIN" --brokers 3 \
		"${topic_args[@]}" --bootstrap-file "$WORK/broker/bootstrap" \
		--control "$BROKER_CTL" </dev/null >"$WORK/broker/broker.log" 2>&1) &
	BROKER_PID=$!
	# the broker writes the bootstrap file once the topics exist: poll every
	# 50 ms, for 15 s at most
	for ((i = 0; i < 300; i++)); do
		[ ! -s "$WORK/broker/bootstrap" ] || break
		kill -0 "$BROKER_PID" 2>/dev/null || break
		sleep 0.05
	done
	if [ ! -s "$WORK/broker/bootstrap" ]; then
		cat "$WORK/broker/broker.log" >&2 || true
		if kill -0 "$BROKER_PID" 2>/dev/null; then
			fail "the test broker wrote no bootstrap file within 15 s"
		fi
		fail "the test broker exited"
	fi
	BROKERS=$(head -n 1 "$WORK/broker/bootstrap")
	"${AS_TESTER[@]}" "$BROKER_BIN" ctl "$BROKER_CTL" ping >/dev/null ||
		fail "the test broker does not answer on $BROKER_CTL"
	say "test broker (pid $BROKER_PID) at $BROKERS"
fi
tester_env SK_TEST_BROKERS="$BROKERS" SK_TEST_BROKER_CTL="$BROKER_CTL"

# ---------------------------------------------------------------- fixtures

phase fixtures
run_step "$WORK/logs/fixtures.log" "$WORK/src" "${AS_TESTER[@]}" test/kafka/fixtures.sh ||
	fail "test/kafka/fixtures.sh failed"

# ---------------------------------------------------------------- postgres

phase postgres
PGDATA_DIR=$WORK/pgdata
"${AS_TESTER[@]}" initdb -D "$PGDATA_DIR" --auth=trust --no-sync -E UTF8 --locale=C \
	>"$WORK/logs/initdb.log" 2>&1 || { cat "$WORK/logs/initdb.log"; fail "initdb failed"; }
cat >>"$PGDATA_DIR/postgresql.conf" <<EOF

# ---- added by test/run-tests.sh
listen_addresses = 'localhost'
unix_socket_directories = '$WORK/sock'
include '$WORK/src/test/sales_kafka.conf'
sales_kafka.brokers = '$BROKERS'
sk_test.topic_prefix = '$TOPIC_PREFIX'
sk_test.broker_ctl = '$BROKER_CTL'
EOF
if [ -n "${SK_SERVER_SETTINGS:-}" ]; then
	printf '# SK_SERVER_SETTINGS\n%s\n' "${SK_SERVER_SETTINGS//;/$'\n'}" >>"$PGDATA_DIR/postgresql.conf"
	say "server settings added: $SK_SERVER_SETTINGS"
fi

# True if something accepts TCP connections on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Take the first free port from 54320 on; if a parallel run binds it between
# our check and our start, the start fails and we try the next one.
PORT=54319
started=0
for attempt in 1 2 3 4 5; do
	PORT=$((PORT + 1))
	while port_in_use "$PORT"; do PORT=$((PORT + 1)); done
	log_size=$(stat -c %s "$WORK/pg.log" 2>/dev/null || echo 0)
	if "${AS_TESTER[@]}" pg_ctl -D "$PGDATA_DIR" -w -t 60 -l "$WORK/pg.log" \
		-o "-p $PORT" start >"$WORK/logs/pg_ctl.log" 2>&1; then
		started=1
		break
	fi
	tail -c +$((log_size + 1)) "$WORK/pg.log" | grep -q 'could not bind\|Address already in use' ||
		break
	say "port $PORT was taken meanwhile (attempt $attempt)"
done
[ "$started" -eq 1 ] || { cat "$WORK/logs/pg_ctl.log"; fail "PostgreSQL did not start"; }
say "PostgreSQL $("${AS_TESTER[@]}" postgres -V | awk '{print $3}') on port $PORT, socket $WORK/sock"
tester_env PGHOST="$WORK/sock" PGPORT="$PORT" PGUSER="$TESTER"
# Cluster.pm reserves TAP node ports in this directory: one per test user,
# shared by parallel runs so that they never pick the same port
tester_env PG_TEST_PORT_DIR="/tmp/sales_kafka_test_portlock.$(id -u "$TESTER")"

# ---------------------------------------------------------------- --run

if [ ${#RUN_CMD[@]} -gt 0 ]; then
	phase "${RUN_CMD[0]}"
	rc=0
	run_step "$WORK/logs/run.log" "$WORK/src" "${AS_TESTER[@]}" "${RUN_CMD[@]}" || rc=$?
	[ "$rc" -eq 0 ] || show_server_log
	phase cleanup
	cleanup
	exit "$rc"
fi

# ---------------------------------------------------------------- suites

# count_suite NAME RC "PASSED FAILED": record a suite's counts; a suite that
# failed without a countable failure counts as one failed.
count_suite() {
	local name=$1 rc=$2 npass nfail
	read -r npass nfail <<<"$3"
	if [ "$rc" -ne 0 ] && [ "$nfail" -eq 0 ]; then
		say "$name exited with status $rc without a failed test: counting 1 failed"
		nfail=1
	fi
	if [ $((npass + nfail)) -eq 0 ]; then
		say "$name ran no test: counting 1 failed"
		nfail=1
	fi
	PASSED=$((PASSED + npass))
	FAILED=$((FAILED + nfail))
	SUITE_LINES+=("$(printf '  %-12s %d passed, %d failed' "$name" "$npass" "$nfail")")
	[ "$nfail" -eq 0 ] || SHOW_SERVER_LOG=1
}
SHOW_SERVER_LOG=0

# regress_counts LOG: "PASSED FAILED" from pg_regress's lines
# "test NAME ... ok 12 ms", "... FAILED", "... failed (ignored)".
regress_counts() {
	awk '/ \.\.\. (ok|failed \(ignored\))/ { p++ } / \.\.\. FAILED/ { f++ }
		END { print p + 0, f + 0 }' "$1"
}

# tap_counts LOG: "PASSED FAILED" from the top-level TAP lines "ok N" and
# "not ok N" (subtests are indented; "not ok N # TODO" is not a failure).
tap_counts() {
	awk '/^ok [0-9]+/ { p++ } /^not ok [0-9]+/ { if (/# TODO/) p++; else f++ }
		END { print p + 0, f + 0 }' "$1"
}

# print_file FILE: a file with a heading, at most 2000 lines of it.
print_file() {
	printf '\n---- %s\n' "${1#"$WORK/"}"
	head -n 2000 "$1"
	[ "$(wc -l <"$1")" -le 2000 ] || say "(cut at 2000 lines; SK_KEEP=1 keeps it)"
}

# pg_regress: one line per test, "test NAME ... ok" or "... FAILED"
phase pg_regress
log=$WORK/logs/pg_regress.log
rc=0
run_step "$log" "$WORK/src" "${AS_TESTER[@]}" \
	make installcheck TAP_TESTS= PG_CONFIG="$PG_CONFIG" || rc=$?
count_suite pg_regress "$rc" "$(regress_counts "$log")"
[ ! -s "$WORK/src/regression.diffs" ] || print_file "$WORK/src/regression.diffs"

# pgTAP: each assertion is a line "ok N" or "not ok N"
phase pgtap
pgtap_files=("$WORK"/src/test/pgtap/*.sql)
if [ ! -e "${pgtap_files[0]}" ]; then
	say "no test/pgtap/*.sql: pgTAP suite skipped"
else
	log=$WORK/logs/pgtap.log
	rc=0
	"${AS_TESTER[@]}" createdb sk_test >"$log" 2>&1 || rc=$?
	if [ "$rc" -eq 0 ]; then
		run_step "$log" "$WORK/src" "${AS_TESTER[@]}" pg_prove -v \
			-h "$WORK/sock" -p "$PORT" -d sk_test "${pgtap_files[@]#"$WORK/src/"}" || rc=$?
	else
		cat "$log"
	fi
	count_suite pgtap "$rc" "$(tap_counts "$log")"
fi

# Perl TAP (t/*.pl): start their own nodes; same "ok N" / "not ok N" lines
phase tap
tap_files=("$WORK"/src/t/*.pl)
if [ ! -e "${tap_files[0]}" ]; then
	say "no t/*.pl: TAP suite skipped"
else
	log=$WORK/logs/tap.log
	rc=0
	run_step "$log" "$WORK/src" "${AS_TESTER[@]}" \
		make installcheck REGRESS= PG_CONFIG="$PG_CONFIG" PROVE_FLAGS=-v || rc=$?
	count_suite tap "$rc" "$(tap_counts "$log")"
	if [ "$rc" -ne 0 ]; then
		for f in "$WORK"/src/tmp_check/log/*; do
			[ ! -f "$f" ] || print_file "$f"
		done
	fi
fi

# ---------------------------------------------------------------- server logs

# SK_CHECK_SERVER_LOGS=1: what went wrong in a process that no test watches
# (a launcher that crashed and was restarted, a leak warning at commit)
# shows only in the server logs. Made for builds with assertions
# (test/check-assert.sh): those print "TRAP:" for a failed Assert, check
# memory contexts and warn of resources left at the end of a transaction.
# SIGKILL and SIGQUIT are what the crash tests send, so they do not count.
SERVER_LOG_FINDINGS='TRAP: |was terminated by signal (4|6|7|8|11):|PANIC: '
SERVER_LOG_FINDINGS+='|problem in (alloc set|Generation|slab) |detected write past chunk end'
SERVER_LOG_FINDINGS+='|(reference|refcount|memory|context|file) leak|still (active|referenced)'

# check_server_logs: one test per server log (the cluster's and each TAP
# node's) and one per core file; a backtrace of each core when gdb is there.
check_server_logs() {
	local f npass=0 nfail=0 rel hits
	local logs=("$WORK/pg.log")
	for f in "$WORK"/src/tmp_check/log/*.log; do
		# regress_log_* are the TAP scripts' own logs, not a server's
		[ ! -f "$f" ] || [[ $(basename "$f") == regress_log_* ]] || logs+=("$f")
	done
	for f in "${logs[@]}"; do
		[ -f "$f" ] || continue
		rel=${f#"$WORK/"}
		hits=$(grep -c -E "$SERVER_LOG_FINDINGS" "$f" || true)
		if [ "$hits" -eq 0 ]; then
			npass=$((npass + 1))
			continue
		fi
		nfail=$((nfail + 1))
		say "$rel: $hits matching lines (assertion failure, crash or leak):"
		grep -n -E "$SERVER_LOG_FINDINGS" "$f" | head -n 40 || true
		# the statement or context logged before each failed Assert
		{ grep -n -B 8 -A 2 -E 'TRAP: ' "$f" || true; } | head -n 120 | sed 's/^/  | /'
	done
	while IFS= read -r -d '' f; do
		nfail=$((nfail + 1))
		say "core file ${f#"$WORK/"}:"
		if command -v gdb >/dev/null; then
			# the stack, then the innermost frames with their variables
			timeout 120 gdb -batch -nx -ex 'bt 30' -ex 'bt full 5' \
				"$PG_BIN/postgres" "$f" 2>&1 |
				grep -v -E '^\[New LWP|^warning: |^$' | head -n 120 || true
		else
			say "(no gdb: install it for a backtrace; SK_KEEP=1 keeps the core)"
		fi
	done < <(find "$WORK" -type f \( -name core -o -name 'core.[0-9]*' \) -print0 2>/dev/null)
	count_suite server-logs 0 "$npass $nfail"
}

if [ "${SK_CHECK_SERVER_LOGS:-0}" = 1 ]; then
	phase server-logs
	check_server_logs
fi

# ---------------------------------------------------------------- the end

[ "$SHOW_SERVER_LOG" -eq 0 ] || show_server_log
phase cleanup
cleanup
summary
[ "$FAILED" -eq 0 ]
