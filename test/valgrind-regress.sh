#!/usr/bin/env bash
# test/valgrind-regress.sh — the broker-free pg_regress suite on a cluster
# whose every process (postmaster, backends, launcher, workers) runs under
# valgrind memcheck (`make check-assert-valgrind`).
#
# Run by test/check-assert.sh --valgrind through test/run-tests.sh --run:
# as the test user, in run-tests.sh's copy of the tree, with the assertion
# build's bin directory first in PATH and the extension installed there. That
# build defines USE_VALGRIND, so memory freed or reset in a memory context is
# inaccessible to valgrind: a read of it is an "Invalid read" with the stack
# that made it, where the assertion build alone shows only a later crash.
# Leak checking is off: PostgreSQL frees by context, not by pointer.
#
# Usage: test/valgrind-regress.sh SUPPRESSIONS
#   SUPPRESSIONS  PostgreSQL's src/tools/valgrind.supp of that build; our own
#                 test/valgrind.supp is added to it
# The cluster lives in $TMPDIR/valgrind (run-tests.sh removes it, and stops a
# server left running). Prints each valgrind error and ends with
# "N passed, N failed": one test per pg_regress file and one for the
# valgrind errors; exits non-zero if any failed.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -f "$1" ]; then
	echo "usage: $0 SUPPRESSIONS (PostgreSQL's src/tools/valgrind.supp)" >&2
	exit 2
fi
SUPP=$1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VG=$TMPDIR/valgrind
PGDATA_VG=$VG/data
PORT_VG=$((PGPORT + 1000))

say() { printf 'valgrind-regress: %s\n' "$*"; }

rm -rf "$VG"
mkdir -p "$VG/sock" "$VG/logs"
initdb -D "$PGDATA_VG" --auth=trust --no-sync -E UTF8 --locale=C >"$VG/initdb.log" 2>&1 ||
	{ cat "$VG/initdb.log"; exit 1; }
cat >>"$PGDATA_VG/postgresql.conf" <<EOF

# ---- added by test/valgrind-regress.sh
listen_addresses = ''
unix_socket_directories = '$VG/sock'
include '$HERE/sales_kafka.conf'
sales_kafka.brokers = '$SK_TEST_BROKERS'
# valgrind makes every process about 20 times slower
max_worker_processes = 16
EOF

stop_server() {
	pg_ctl -D "$PGDATA_VG" -m fast -t 300 stop >/dev/null 2>&1 ||
		pg_ctl -D "$PGDATA_VG" -m immediate -t 60 stop >/dev/null 2>&1 || true
}
trap stop_server EXIT

say "starting PostgreSQL under valgrind (socket $VG/sock, port $PORT_VG)"
valgrind --quiet --trace-children=yes --leak-check=no --num-callers=40 \
	--track-origins=yes \
	--suppressions="$SUPP" --suppressions="$HERE/valgrind.supp" \
	--error-markers=VALGRINDERROR-BEGIN,VALGRINDERROR-END \
	--log-file="$VG/logs/%p.log" \
	postgres -D "$PGDATA_VG" -p "$PORT_VG" </dev/null >"$VG/pg.log" 2>&1 &
# up to 5 minutes: valgrind starts slowly
for ((i = 0; i < 600; i++)); do
	pg_isready -q -h "$VG/sock" -p "$PORT_VG" && break
	sleep 0.5
done
pg_isready -q -h "$VG/sock" -p "$PORT_VG" || {
	tail -n 50 "$VG/pg.log"
	say "the server did not accept connections within 5 minutes"
	exit 1
}

rc=0
make installcheck TAP_TESTS= PG_CONFIG="$(command -v pg_config)" \
	PGHOST="$VG/sock" PGPORT="$PORT_VG" 2>&1 | tee "$VG/regress.log" || rc=$?
[ ! -s regression.diffs ] || head -n 500 regression.diffs
stop_server
trap - EXIT

npass=$(grep -c -E ' \.\.\. (ok|failed \(ignored\))' "$VG/regress.log" || true)
nfail=$(grep -c -E ' \.\.\. FAILED' "$VG/regress.log" || true)
[ "$rc" -eq 0 ] || [ "$nfail" -gt 0 ] || nfail=1

errors=0
for f in "$VG"/logs/*.log; do
	[ -f "$f" ] || continue
	n=$(grep -c 'VALGRINDERROR-BEGIN' "$f" || true)
	[ "$n" -gt 0 ] || continue
	errors=$((errors + n))
	say "$n errors in process $(basename "$f" .log):"
	grep -v -E '^--[0-9]+-- warning: ' "$f" | head -n 300
done
if grep -q -E 'TRAP: |was terminated by signal' "$VG/pg.log"; then
	say "the server log shows a failed assertion or a crash:"
	grep -n -E 'TRAP: |was terminated by signal' "$VG/pg.log" | head -n 20
	errors=$((errors + 1))
fi
if [ "$errors" -eq 0 ]; then
	say "no valgrind error in $(find "$VG/logs" -name '*.log' | wc -l) processes"
	npass=$((npass + 1))
else
	say "$errors valgrind errors or crashes"
	nfail=$((nfail + 1))
fi
echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
