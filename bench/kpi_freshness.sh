#!/usr/bin/env bash
# bench/kpi_freshness.sh — how fresh the KPIs are that the rollup worker
# keeps, with nothing else calling a refresh: the time from a message's
# Kafka timestamp until its sale is counted in kpi_totals and
# kpi_sales_per_minute, at a steady rate; and what the worker costs the
# pipeline's ingest.
#
# Freshness, at each rate of BENCH_RATES (default 5000 and 50000 a second):
# a new sales model (create_sales_model, time zone UTC) whose order lines a
# pipeline (append, batch_size 10000, flush_interval 10 ms, 1 worker) fills
# from a topic of BENCH_PARTITIONS partitions; the foreign table maps a
# message's Kafka timestamp (CreateTime, set by kcat as it takes the message)
# into sold_at.  kcat produces the sales events for BENCH_SECONDS (the
# events and their pacing: bench_paced_events in bench/lib.sh).
# Meanwhile a sampler session reads, every BENCH_SAMPLE_MS, the rollups'
# progress (kpi_state.rolled_up_through, which kpi_totals and
# kpi_sales_per_minute are made of in the same transaction: the sampler
# checks that their counts agree) and writes it into an unlogged table of
# another schema.  A line is counted from the first sample whose progress
# covers its ingest_id; its freshness is that sample's time minus sold_at
# (so up to BENCH_SAMPLE_MS is the sampler's, and the timestamp's whole
# milliseconds add up to 1 ms).  Lines of the first BENCH_WARMUP seconds
# are left out (kcat's start-up); every 10th line is measured.  Reported:
# p50/p99/max, and p50/p99 of the first and the last minute of production
# (of the first and last fifth when BENCH_SECONDS < 300).
#
# Ingest, worker on and off, in the same run: BENCH_BACKLOG events in a
# topic of their own, then, in turn, with sales_kafka.rollup_worker off and
# on (ALTER SYSTEM, reload), a new model and pipeline (start_at earliest)
# ingest them all: rows/s from start_pipeline to its last committed batch
# (pipeline_status).  The topic has 16 partitions, so that the test broker
# keeps the whole backlog.  BENCH_INGEST_PAIRS times off, then on: the
# best of each counts (a run takes seconds, and the machine is shared).
#
# Run it with `make bench-kpi-freshness`, or alone:
#   ./test/run-tests.sh --run bench/kpi_freshness.sh [BENCH_SECONDS=60]
# Settings (environment or NAME=VALUE arguments, see bench/lib.sh):
#   BENCH_RATES        messages a second, one run each (default "5000 50000")
#   BENCH_SECONDS      how long to produce at each rate (default 600)
#   BENCH_PARTITIONS   partitions of each topic (default 4)
#   BENCH_WARMUP       seconds left out at the start (default 5)
#   BENCH_SAMPLE_MS    the sampler's period (default 20)
#   BENCH_BACKLOG      events of the ingest comparison (default 300000)
#   BENCH_INGEST_PAIRS runs of the ingest comparison, each off then on
#                      (default 3)
#   BENCH_FETCH_WAIT_MS  the server's fetch.wait.max.ms (see
#                      bench/pipeline_latency.sh)
# With KAFKA_BROKERS (see test/run-tests.sh) it runs against that cluster.
# Targets: p99 <= 1000 ms at every rate, the last minute's p99 <= 1.5 x the
# first's + 100 ms (freshness does not grow), ingest with the worker on >=
# 0.9 x off; a miss fails the benchmark (bench/lib.sh: BENCH_RELAX,
# BENCH_TARGET_FACTOR).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_args "$@"

RATES=(${BENCH_RATES:-5000 50000})
DURATION=${BENCH_SECONDS:-600}
PARTITIONS=${BENCH_PARTITIONS:-4}
WARMUP=${BENCH_WARMUP:-5}
SAMPLE_MS=${BENCH_SAMPLE_MS:-20}
BACKLOG=${BENCH_BACKLOG:-300000}
INGEST_PAIRS=${BENCH_INGEST_PAIRS:-3}
TARGET_P99_MS=1000
TARGET_INGEST_RATIO=0.9

# the span compared at the start and the end of each run
if [ "$DURATION" -ge 300 ]; then EDGE=60; else EDGE=$((DURATION / 5)); fi
[ "$EDGE" -gt 0 ] || EDGE=1

echo "== setup: database bench; rates ${RATES[*]}/s for $DURATION s each; $PARTITIONS partitions;" \
	"sampler every $SAMPLE_MS ms; ingest comparison over $BACKLOG events"
bench_db
"${PSQL[@]}" <<'SQL'
CREATE SCHEMA bench;
CREATE UNLOGGED TABLE bench.sample (model name, sampled_at timestamptz, through bigint, totals bigint, per_minute bigint);
CREATE INDEX ON bench.sample (model, through, sampled_at);
CREATE TABLE bench.result (rate int, what text, value numeric, PRIMARY KEY (rate, what));
CREATE TABLE bench.stop (model name PRIMARY KEY);

-- every period until told to stop: the rollups' progress as a dashboard
-- would see it, one transaction per sample
CREATE PROCEDURE bench.sampler(m name, period_ms int) LANGUAGE plpgsql AS $$
BEGIN
  LOOP
    EXECUTE format('INSERT INTO bench.sample
                    SELECT %L, clock_timestamp(), s.rolled_up_through, t.sales_count,
                           (SELECT coalesce(sum(sales_count), 0) FROM %I.kpi_sales_per_minute)
                      FROM %I.kpi_state s, %I.kpi_totals t', m, m, m, m);
    COMMIT;
    EXIT WHEN EXISTS (SELECT FROM bench.stop WHERE model = m);
    PERFORM pg_sleep(period_ms / 1000.0);
  END LOOP;
END $$;

-- until a pipeline has written n rows, or for timeout_s: the ingest
-- comparison waits here, in one session (a psql started every 100 ms took
-- CPU from the ingest it measured), committing as it polls so that it
-- holds no snapshot back from pruning the rows the rollup worker updates
CREATE PROCEDURE bench.wait_ingested(p name, n bigint, timeout_s int)
LANGUAGE plpgsql AS $$
DECLARE
  deadline timestamptz := clock_timestamp() + make_interval(secs => timeout_s);
  written bigint;
BEGIN
  LOOP
    SELECT rows_written INTO written FROM sales_kafka.pipeline_status WHERE pipeline = p;
    EXIT WHEN written >= n OR clock_timestamp() > deadline;
    COMMIT;
    PERFORM pg_sleep(0.1);
  END LOOP;
END $$;
SQL

# model_setup MODEL TOPIC START: a model whose order lines a pipeline fills
# from TOPIC (started if START is true, and then waited for)
model_setup() {
	local m=$1 topic=$2 start=$3 i state
	"${PSQL[@]}" >/dev/null <<-SQL
		SELECT sales_kafka.create_sales_model('$m', time_zone => 'UTC');
		CREATE FOREIGN TABLE $m.src (
		  order_id text OPTIONS (field 'sale_id'), product_id text OPTIONS (field 'product_name'),
		  quantity int, unit_price numeric(12,2) OPTIONS (field 'price'),
		  sold_at timestamptz OPTIONS (kafka 'timestamp')
		) SERVER kafka OPTIONS (topic '$topic');
		SELECT sales_kafka.create_pipeline('$m', '$m.src', '$m.order_lines', mode => 'append',
		  batch_size => 10000, flush_interval => '10 ms', start_at => 'earliest', parallelism => 1);
	SQL
	[ "$start" = true ] || return 0
	sql_value "SELECT sales_kafka.start_pipeline('$m')" >/dev/null
	for ((i = 0; i < 300; i++)); do
		state=$(sql_value "SELECT state || ' ' || coalesce(partitions, 0) FROM sales_kafka.pipeline_status WHERE pipeline = '$m'")
		[ "$state" != "running $PARTITIONS" ] || return 0
		sleep 0.1
	done
	echo "pipeline \"$m\" is not running after 30 s: $state" >&2
	exit 1
}

# wait_caught_up MODEL N TIMEOUT_S: the model's rollups hold N lines
wait_caught_up() {
	local i n
	for ((i = 0; i < $3 * 10; i++)); do
		n=$(sql_value "SELECT rolled_up_rows FROM $1.kpi_state")
		[ "$n" -lt "$2" ] || return 0
		sleep 0.1
	done
	echo "the rollups of $1 hold $n lines after $3 s, not $2" >&2
	"${PSQL[@]}" -x -c "SELECT * FROM sales_kafka.pipeline_status" >&2
	exit 1
}

set_worker() {
	sql_value "ALTER SYSTEM SET sales_kafka.rollup_worker = $1" >/dev/null
	sql_value "SELECT pg_reload_conf()" >/dev/null
	for ((i = 0; i < 100; i++)); do
		[ "$(sql_value "SHOW sales_kafka.rollup_worker")" != "$1" ] || return 0
		sleep 0.1
	done
}

# ------------------------------------------------------------ freshness

for rate in "${RATES[@]}"; do
	m="fresh_$rate"
	topic="${SK_TEST_TOPIC_PREFIX}bench_kpi_fresh_$rate"
	echo
	echo "== $rate messages/s for $DURATION s: model $m, topic $topic"
	bench_topic "$topic" "$PARTITIONS"
	model_setup "$m" "$topic" true
	"${PSQL[@]}" -c "CALL bench.sampler('$m', $SAMPLE_MS)" >/dev/null &
	sampler=$!
	bench_produce_paced "$topic" "$rate" "$DURATION" 1
	produced=$(sql_value "SELECT sum(high) FROM sales_kafka.watermarks('kafka', '$topic')")
	echo "   the topic holds $produced messages; waiting for the rollups to count them"
	wait_caught_up "$m" "$produced" $((DURATION + 300))
	sql_value "INSERT INTO bench.stop VALUES ('$m')" >/dev/null
	wait "$sampler"
	bad=$(sql_value "SELECT count(*) FROM bench.sample WHERE model = '$m' AND NOT (totals = per_minute)")
	[ "$bad" = 0 ] || { echo "kpi_totals and kpi_sales_per_minute disagreed in $bad samples" >&2; exit 1; }

	"${PSQL[@]}" -v m="$m" -v rate="$rate" -v warmup="$WARMUP" -v edge="$EDGE" <<-'SQL'
		-- (progress only grows: the first sample that covers a line is the
		-- one with the least progress that does)
		CREATE TEMP TABLE f AS
		SELECT l.sold_at,
		       extract(epoch FROM (SELECT s.sampled_at FROM bench.sample s
		                            WHERE s.model = :'m' AND s.through >= l.ingest_id
		                            ORDER BY s.through, s.sampled_at LIMIT 1) - l.sold_at) * 1000 AS ms
		  FROM :"m".order_lines l
		 WHERE l.ingest_id % 10 = 0;
		CREATE TEMP TABLE edges AS
		SELECT min(sold_at) + make_interval(secs => :warmup) AS t0,
		       min(sold_at) + make_interval(secs => :warmup + :edge) AS t1,
		       max(sold_at) - make_interval(secs => :edge) AS t2
		  FROM f;
		INSERT INTO bench.result
		SELECT :rate, r.w, r.v
		  FROM (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE sold_at >= t0) AS p50,
		               percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) FILTER (WHERE sold_at >= t0) AS p99,
		               max(ms) FILTER (WHERE sold_at >= t0) AS mx,
		               percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE sold_at >= t0 AND sold_at < t1) AS f50,
		               percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) FILTER (WHERE sold_at >= t0 AND sold_at < t1) AS f99,
		               percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE sold_at >= t2) AS l50,
		               percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) FILTER (WHERE sold_at >= t2) AS l99,
		               count(*) FILTER (WHERE sold_at >= t0) AS n
		          FROM f, edges) a,
		       LATERAL (VALUES ('p50', a.p50), ('p99', a.p99), ('max', a.mx), ('first p50', a.f50),
		                       ('first p99', a.f99), ('last p50', a.l50), ('last p99', a.l99),
		                       ('measured', a.n),
		                       ('rollups', (SELECT count(DISTINCT through) - 1 FROM bench.sample
		                                     WHERE model = :'m'))) AS r(w, v);
	SQL
	sql_value "SELECT string_agg(what || ' ' || round(value, 1), ', ' ORDER BY what) FROM bench.result WHERE rate = $rate" |
		sed 's/^/   freshness (ms): /'
	sql_value "SELECT sales_kafka.stop_pipeline('$m')" >/dev/null
done

# ------------------------------------------------------------ ingest, worker off and on

topic="${SK_TEST_TOPIC_PREFIX}bench_kpi_backlog"
echo
echo "== ingest of $BACKLOG events with the rollup worker off and on: topic $topic"
bench_generated_view "$BACKLOG"
"${PSQL[@]}" -c "CREATE TABLE bench.ingest (worker text, rows_per_s numeric)"
# 16 partitions: the test broker keeps ~5 MiB a partition, and drops older
# messages (the backlog is ~150 bytes an event)
bench_topic "$topic" 16
bench_produce_generated "$topic"
backlog=$(sql_value "SELECT sum(high - low) FROM sales_kafka.watermarks('kafka', '$topic')")
[ "$backlog" = "$BACKLOG" ] || echo "   note: the topic keeps $backlog of the $BACKLOG events"
run=0
for ((pair = 0; pair < INGEST_PAIRS; pair++)); do
	for worker in off on; do
		run=$((run + 1))
		m="ingest_$run"
		set_worker "$worker"
		model_setup "$m" "$topic" false
		t0=$(sql_value "SELECT clock_timestamp()")
		sql_value "SELECT sales_kafka.start_pipeline('$m')" >/dev/null
		# (the worker's shared-memory counter: counting the lines every
		# 100 ms would take CPU from the ingest measured)
		sql_value "CALL bench.wait_ingested('$m', $backlog, 300)" >/dev/null
		for ((i = 0; i < 100; i++)); do
			n=$(sql_value "SELECT count(*) FROM $m.order_lines")
			[ "$n" -lt "$backlog" ] && sleep 0.1 || break
		done
		[ "$n" -ge "$backlog" ] || { echo "$m holds $n of $backlog lines after 300 s" >&2; exit 1; }
		# from the start to the last committed batch
		rps=$(sql_value "SELECT round($n / extract(epoch FROM last_commit_at - '$t0'))
		             FROM sales_kafka.pipeline_status WHERE pipeline = '$m'")
		sql_value "SELECT sales_kafka.stop_pipeline('$m')" >/dev/null
		sql_value "INSERT INTO bench.ingest VALUES ('$worker', $rps)" >/dev/null
		echo "   run $run, rollup worker $worker: $rps rows/s ($(sql_value "SELECT rolled_up_rows FROM $m.kpi_state") rolled up by the worker meanwhile)"
		# the next run's worker rolls up only its own lines
		sql_value "SELECT sales_kafka.drop_pipeline('$m')" >/dev/null
		sql_value "DROP SCHEMA $m CASCADE" >/dev/null 2>&1
	done
done
set_worker on
best_off=$(sql_value "SELECT max(rows_per_s) FROM bench.ingest WHERE worker = 'off'")
best_on=$(sql_value "SELECT max(rows_per_s) FROM bench.ingest WHERE worker = 'on'")

echo
echo "== result (the machine is shared: compare within this run)"
"${PSQL[@]}" <<'SQL'
\pset footer off
SELECT rate AS "messages/s",
       round(max(value) FILTER (WHERE what = 'p50')) AS p50_ms,
       round(max(value) FILTER (WHERE what = 'p99')) AS p99_ms,
       round(max(value) FILTER (WHERE what = 'max')) AS max_ms,
       round(max(value) FILTER (WHERE what = 'first p50')) || ' / ' || round(max(value) FILTER (WHERE what = 'first p99'))
         AS "first p50 / p99",
       round(max(value) FILTER (WHERE what = 'last p50')) || ' / ' || round(max(value) FILTER (WHERE what = 'last p99'))
         AS "last p50 / p99",
       max(value) FILTER (WHERE what = 'measured') AS lines_measured,
       max(value) FILTER (WHERE what = 'rollups') AS rollups
  FROM bench.result GROUP BY rate ORDER BY rate;
SQL
echo "measured: first sample (every $SAMPLE_MS ms) whose kpi_state.rolled_up_through covers the line"
echo "          - the message's Kafka timestamp (CreateTime, ms); every 10th line after the first $WARMUP s;"
echo "          first / last: the first and the last $EDGE s of production"
echo "ingest of $backlog events, best of $INGEST_PAIRS runs each: worker off $best_off rows/s, on $best_on rows/s:" \
	"ratio $(ratio "$best_on" "$best_off")"
for rate in "${RATES[@]}"; do
	p99=$(sql_value "SELECT round(value) FROM bench.result WHERE rate = $rate AND what = 'p99'")
	first=$(sql_value "SELECT round(value) FROM bench.result WHERE rate = $rate AND what = 'first p99'")
	last=$(sql_value "SELECT round(value) FROM bench.result WHERE rate = $rate AND what = 'last p99'")
	bench_target "freshness p99 at $rate/s (ms)" "$p99" "<=" "$TARGET_P99_MS"
	bench_target "freshness p99, last $EDGE s at $rate/s (ms)" "$last" "<=" \
		"$(awk "BEGIN { print $first * 1.5 + 100 }")"
done
bench_target "ingest, rollup worker on / off" "$(ratio "$best_on" "$best_off")" ">=" "$TARGET_INGEST_RATIO"
if [ -n "${SK_TEST_BROKER_CTL:-}" ] && [ -z "${BENCH_FETCH_WAIT_MS:-}" ]; then
	echo "note: the test broker holds every fetch that finds nothing for the whole fetch.wait.max.ms"
	echo "      (the pipeline's default: 50 ms); a real broker answers as messages arrive."
fi
bench_finish
