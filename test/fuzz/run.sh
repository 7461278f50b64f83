#!/usr/bin/env bash
# test/fuzz/run.sh — build the payload decoder fuzz targets and run each
# for a while (`make fuzz`), or only build them (`make fuzz-build`, or
# --build).  Not part of `make test` or CI: fuzzing is a benchmark-style
# job, run by hand.
#
# Phases:
#   packages     install what is missing (root: apt-get; else print the
#                command), as test/run-tests.sh does
#   build        make -C test/fuzz (clang, libFuzzer, ASan, UBSan)
#   regressions  every file of regressions/<target>/ must pass
#   fuzz         each target for FUZZ_SECONDS, one after the other (the
#                machine's other cores stay free), on the seeds of
#                corpus/<target>/ plus what earlier runs found in
#                work/<target>/, with dictionary <target>.dict
# A crash, leak, sanitizer report or failed check stops that target; the
# input is written under artifacts/ and printed with the command that
# replays it.  The exit status is non-zero if any target failed.
#
# Usage: run.sh [--build] [TARGET...]      targets: json csv json_path
# Environment:
#   FUZZ_SECONDS   seconds per target (default 60)
#   FUZZ_ARGS      more libFuzzer options, e.g. "-seed=1 -max_len=8192"
set -euo pipefail

FUZZ=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ALL_TARGETS=(json csv json_path)
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}

PACKAGES=(
	clang-14 libclang-rt-14-dev # libFuzzer and the sanitizers' runtime
	postgresql-server-dev-15    # server headers, libpgcommon, libpgport
	librdkafka-dev              # sales_kafka.h includes rdkafka.h
	make libc6-dev
)

say() { printf 'fuzz: %s\n' "$*"; }

BUILD_ONLY=0
TARGETS=()
for arg in "$@"; do
	case $arg in
	--build) BUILD_ONLY=1 ;;
	json | csv | json_path) TARGETS+=("$arg") ;;
	*)
		echo "usage: $0 [--build] [json|csv|json_path...]" >&2
		exit 2
		;;
	esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
case $SECONDS_PER_TARGET in
'' | *[!0-9]*)
	echo "FUZZ_SECONDS must be a number of seconds: $SECONDS_PER_TARGET" >&2
	exit 2
	;;
esac

# ---------------------------------------------------------------- packages

# shellcheck source=test/packages.sh
. "$FUZZ/../packages.sh"
sk_install_packages "${PACKAGES[@]}"

# ---------------------------------------------------------------- build

make -C "$FUZZ" --no-print-directory CLANG=clang-14
[ "$BUILD_ONLY" -eq 0 ] || exit 0

# libFuzzer turns leak detection on; symbolize reports
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

# ---------------------------------------------------------------- regressions

failed=()
for t in "${TARGETS[@]}"; do
	dir=$FUZZ/regressions/$t
	if compgen -G "$dir/*" >/dev/null; then
		say "$t: replaying $(find "$dir" -type f | wc -l) regression input(s)"
		if ! "$FUZZ/build/fuzz_$t" -runs=1 "$dir"/* >"$FUZZ/build/regressions-$t.log" 2>&1; then
			tail -n 40 "$FUZZ/build/regressions-$t.log"
			say "$t: a regression input fails; see $FUZZ/build/regressions-$t.log"
			failed+=("$t-regressions")
		fi
	fi
done

# ---------------------------------------------------------------- fuzz

summary=()
for t in "${TARGETS[@]}"; do
	work=$FUZZ/work/$t
	log=$FUZZ/work/$t.log
	mkdir -p "$work" "$FUZZ/artifacts"
	say "$t: fuzzing for ${SECONDS_PER_TARGET}s (log: $log)"
	rc=0
	# shellcheck disable=SC2086 # FUZZ_ARGS is a list of options
	"$FUZZ/build/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" \
		-max_len=4096 -timeout=10 -print_final_stats=1 \
		-dict="$FUZZ/$t.dict" -artifact_prefix="$FUZZ/artifacts/$t-" \
		${FUZZ_ARGS:-} "$work" "$FUZZ/corpus/$t" >"$log" 2>&1 || rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1 || true)
	if [ "$rc" -ne 0 ]; then
		grep -h -A 30 'CHECK FAILED\|ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error\|ERROR: libFuzzer' "$log" | head -n 60 || tail -n 40 "$log"
		unit=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		say "$t: FAILED (exit $rc); input: ${unit:-see $log}"
		[ -z "$unit" ] || say "$t: replay with: $FUZZ/build/fuzz_$t $unit"
		failed+=("$t")
		summary+=("$t: FAILED, ${runs:-?} runs, $cov")
	else
		summary+=("$t: ok, ${runs:-?} runs (${rate:-?}/s), $cov, corpus $(find "$work" -type f | wc -l) files")
	fi
done

for line in "${summary[@]}"; do
	say "$line"
done
if [ ${#failed[@]} -gt 0 ]; then
	say "failed: ${failed[*]}"
	exit 1
fi
