#!/usr/bin/env bash
# bench/pipeline_memory.sh — the memory of a pipeline's worker while
# messages flow steadily for a long time: a leak shows as growth.
#
# A pipeline (append, batch_size 10000, flush_interval 10 ms, 1 worker) runs
# on an empty topic; kcat produces BENCH_RATE sales events a second for
# BENCH_SECONDS (as in bench/pipeline_latency.sh).  When production starts
# and every BENCH_SAMPLE seconds after, the worker's /proc/PID/status is
# read (PID from sales_kafka.pipeline_status.worker_pids):
#   VmRSS     resident memory, as top shows it
#   RssAnon   its private part: palloc, malloc, librdkafka's buffers.  A
#             leak shows here.
#   RssShmem  shared buffers and other shared memory the worker has touched
#             so far: grows until it has touched all it will, not a leak
#
# Run it with `make bench-memory`, or alone:
#   ./test/run-tests.sh --run bench/pipeline_memory.sh [BENCH_SECONDS=120]
# Settings (environment or NAME=VALUE arguments, see bench/lib.sh):
#   BENCH_RATE        messages a second (default 5000)
#   BENCH_SECONDS     how long (default 600)
#   BENCH_SAMPLE      seconds between samples (default 30)
#   BENCH_PARTITIONS  partitions of the topic (default 4; see bench_stream_setup
#                     in bench/lib.sh for why not more)
# The harness stops a step after SK_SUITE_TIMEOUT (default 900) seconds:
# `make bench-memory` raises it to BENCH_SECONDS + 600.
# The target: RssAnon grows by at most 100 kB a minute after the first
# minute (1.2 grew by 27 kB a minute; at the default rate, a leak of one
# byte in three messages would miss it); a miss fails the benchmark
# (bench/lib.sh: BENCH_RELAX, BENCH_TARGET_FACTOR).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_args "$@"

RATE=${BENCH_RATE:-5000}
DURATION=${BENCH_SECONDS:-600}
SAMPLE=${BENCH_SAMPLE:-30}
PARTITIONS=${BENCH_PARTITIONS:-4}
TOPIC="${SK_TEST_TOPIC_PREFIX}bench_pipeline_memory"
TARGET_KB_PER_MIN=100

echo "== setup: pipeline \"stream\" on topic $TOPIC ($PARTITIONS partitions), started and running"
bench_stream_setup "$TOPIC" "$PARTITIONS"
pid=$("${PSQL[@]}" -At -c "SELECT worker_pids[1] FROM sales_kafka.pipeline_status WHERE pipeline = 'stream'")
[ -r "/proc/$pid/status" ] || { echo "cannot read /proc/$pid/status (is the server on another machine?)" >&2; exit 1; }
read -r rss0 anon0 shm0 <<<"$(worker_memory "$pid")"
echo "   worker pid $pid, idle: VmRSS $rss0 kB, RssAnon $anon0 kB, RssShmem $shm0 kB"

echo "== producing $RATE messages/s for $DURATION s; the worker every $SAMPLE s (kB)"
row() { printf '%6s %9s %9s %9s %9s %11s %8s %10s\n' "$@"; }
row "s" pid VmRSS RssAnon RssShmem rows_written lag "msgs/s"
bench_produce_paced "$TOPIC" "$RATE" "$DURATION" &
producer=$!
trap 'kill "$producer" 2>/dev/null || true' EXIT

rss_all=() anon_all=()
pids_seen=$pid
t0=$(date +%s%N)
for ((k = 0; k * SAMPLE <= DURATION; k++)); do
	# sleep until t0 + k * SAMPLE
	wait_ms=$(((t0 + k * SAMPLE * 1000000000 - $(date +%s%N)) / 1000000))
	[ "$wait_ms" -le 0 ] || sleep "$(awk "BEGIN { print $wait_ms / 1000 }")"
	IFS='|' read -r now_pid rows lag rate <<<"$("${PSQL[@]}" -At -c "SELECT worker_pids[1], rows_written, lag, round(messages_per_second) FROM sales_kafka.pipeline_status WHERE pipeline = 'stream'")"
	if [ -z "$now_pid" ]; then
		echo "   the pipeline has no worker now:" >&2
		"${PSQL[@]}" -x -c "SELECT * FROM sales_kafka.pipeline_status" >&2
		exit 1
	fi
	if [ "$now_pid" != "$pid" ]; then
		echo "   the worker changed: pid $pid is now $now_pid (it restarted; see the server log)"
		pid=$now_pid
		pids_seen="$pids_seen $pid"
	fi
	mem=$(worker_memory "$pid") || { echo "   cannot read /proc/$pid/status" >&2; exit 1; }
	read -r rss anon shm <<<"$mem"
	rss_all+=("$rss") anon_all+=("$anon")
	row $((k * SAMPLE)) "$pid" "$rss" "$anon" "$shm" "$rows" "$lag" "$rate"
done
wait "$producer"
trap - EXIT
produced=$("${PSQL[@]}" -At -c "SELECT sum(high) FROM sales_kafka.watermarks('kafka', '$TOPIC')")
bench_wait_rows sales_in "$produced" 60
dead=$("${PSQL[@]}" -At -c "SELECT count(*) FROM sales_kafka.dead_letter")

max() { printf '%s\n' "$@" | sort -n | tail -n 1; }
n=${#rss_all[@]}
echo "== result"
echo "messages: $produced at $RATE/s for $DURATION s, $PARTITIONS partitions; all written ($dead dead letters)"
echo "worker pid(s): $pids_seen; $n samples, every $SAMPLE s"
printf '%-8s %10s %10s %10s %16s\n' kB start end max "end - start"
printf '%-8s %10s %10s %10s %16s\n' VmRSS "${rss_all[0]}" "${rss_all[n - 1]}" "$(max "${rss_all[@]}")" $((rss_all[n - 1] - rss_all[0]))
printf '%-8s %10s %10s %10s %16s\n' RssAnon "${anon_all[0]}" "${anon_all[n - 1]}" "$(max "${anon_all[@]}")" $((anon_all[n - 1] - anon_all[0]))
if [ "$n" -ge 3 ]; then
	# after the first sample past 60 s (or the second one), when the worker has
	# reached its working size
	i=1
	for ((j = 1; j < n; j++)); do
		if [ $((j * SAMPLE)) -ge 60 ]; then i=$j; break; fi
	done
	if [ "$i" -lt $((n - 1)) ]; then
		growth=$(awk "BEGIN { printf \"%.1f\", (${anon_all[n - 1]} - ${anon_all[i]}) * 60 / ((($n - 1 - $i)) * $SAMPLE) }")
		echo "RssAnon from $((i * SAMPLE)) s to the end: $((anon_all[n - 1] - anon_all[i])) kB in $(((n - 1 - i) * SAMPLE)) s" \
			"($growth kB a minute)"
	fi
fi
if [ -n "${growth:-}" ]; then
	bench_target "RssAnon growth after the first minute (kB a minute)" "$growth" "<=" "$TARGET_KB_PER_MIN"
else
	echo "target not judged: too few samples after the first minute (BENCH_SECONDS, BENCH_SAMPLE)"
fi
bench_finish
