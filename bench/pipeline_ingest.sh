#!/usr/bin/env bash
# bench/pipeline_ingest.sh — sustained ingest of an ingest pipeline, against
# COPY of the same rows into the same table, measured in the same run:
#
#   (a) one pipeline (append, batch_size 10000, flush_interval 10 ms)
#       drains a topic that already holds BENCH_ROWS sales events: rows /
#       time from start_pipeline() until sales_kafka.pipeline_partitions
#       shows every message committed (all partitions at the topic's end,
#       lag 0), polled every 100 ms; once for each parallelism of
#       BENCH_PARALLELISM (default "1 2": one worker, then two)
#   (s) with BENCH_SUBSETS=1 (the default), two pipelines of one worker
#       each, one owning the first half of the partitions and the other the
#       second half (create_pipeline's "partitions"), as two servers sharing
#       the topic would run, started together into the same table: what a
#       split by partition lists costs against parallelism on one server
#   (b) COPY sales FROM 'sales.csv' (FORMAT csv), one transaction, the rows
#       in sale_id order (sold_at grows with sale_id)
#   (c) the same COPY of the same rows in the order the pipeline wrote them
#       in run 1 (its heap order): a run of one partition's messages, then
#       of another's, so sold_at jumps about and the index is written all
#       over, not only at its right edge as in (b).  a/c is the pipeline's
#       own overhead; a/b is the figure with the target.
#
# All of them write into the same empty table (7 columns, btree on sold_at),
# truncated and checkpointed before each measurement.  The column
# "(a) after 1st batch" is (a) without the start-up: the rows after the first
# committed batch over the time after it (100 ms resolution), to tell worker
# start-up from steady speed.  CPU per row: of the worker process (all its
# threads, librdkafka's included, start-up included) for (a), of the
# backend for (b) and (c), from /proc/PID/stat.
#
# Run it with `make bench`, or alone:
#   ./test/run-tests.sh --run bench/pipeline_ingest.sh [BENCH_ROWS=200000 BENCH_RUNS=1]
# Settings (environment or NAME=VALUE arguments, see bench/lib.sh):
#   BENCH_ROWS        sales events (default 2000000, ~150 bytes of JSON each)
#   BENCH_RUNS        runs of (a), (b), (c) (default 3); the medians count
#   BENCH_PARTITIONS  partitions of the topic (default 128: the test broker
#                     keeps only ~5 MiB per partition, and every run reads
#                     the topic again from the start)
#   BENCH_TIMEOUT     seconds one run of (a) may take (default 600)
#   BENCH_PARALLELISM workers of the pipeline, one measurement of (a) for
#                     each number of the list (default "1 2")
#   BENCH_SUBSETS     1 (default) to measure (s) too, 0 not to
# The target is (a) >= 0.6 x (b) (the ratio of the medians) for the last
# parallelism of the list (two workers by default: one per core); a miss
# fails the benchmark (bench/lib.sh: BENCH_RELAX, BENCH_TARGET_FACTOR).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_args "$@"

ROWS=${BENCH_ROWS:-2000000}
RUNS=${BENCH_RUNS:-3}
PARTITIONS=${BENCH_PARTITIONS:-128}
TIMEOUT=${BENCH_TIMEOUT:-600}
# one worker, then one per core of the 2-core machine COPY runs on; the
# target is judged on the last
read -r -a PARALLELISMS <<<"${BENCH_PARALLELISM:-1 2}"
PARALLELISM=${PARALLELISMS[-1]}
SUBSETS=${BENCH_SUBSETS:-1}
TOPIC="${SK_TEST_TOPIC_PREFIX}bench_pipeline_ingest"
CSV=$TMPDIR/bench_sales.csv

echo "== setup: $ROWS sales events in topic $TOPIC ($PARTITIONS partitions)"
per_partition=$((ROWS * 150 / PARTITIONS))
if [ -n "${SK_TEST_BROKER_CTL:-}" ] && [ "$per_partition" -gt $((4 * 1024 * 1024)) ]; then
	echo "   ~$((per_partition / 1024)) KiB a partition: more than the test broker keeps (~5 MiB); raise BENCH_PARTITIONS" >&2
	exit 2
fi
bench_sales_setup "$ROWS" "$TOPIC" "$PARTITIONS" "$CSV"

"${PSQL[@]}" <<'SQL'
-- (b): the rows/s of a statement into the empty table
CREATE FUNCTION measure(stmt text) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz;
  n bigint;
BEGIN
  t0 := clock_timestamp();
  EXECUTE stmt;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN round(n / extract(epoch FROM clock_timestamp() - t0));
END $$;

-- (a): poll the committed offsets of the pipelines named like p every
-- 100 ms until all n messages of the nparts partitions are committed;
-- returns the rows/s since t0 (just before start_pipeline) and the rows/s
-- after the first batch
CREATE FUNCTION wait_drained(p text, n bigint, nparts int, t0 timestamptz,
                             timeout interval, OUT total numeric,
                             OUT after_first numeric, OUT first_ms numeric)
LANGUAGE plpgsql AS $$
DECLARE
  done bigint;
  parts int;
  maxlag bigint;
  t_first timestamptz;
  done_first bigint;
  t_end timestamptz;
  st record;
BEGIN
  LOOP
    SELECT coalesce(sum(committed_offset), 0), count(*), coalesce(max(lag), 0)
      INTO done, parts, maxlag
      FROM sales_kafka.pipeline_partitions WHERE pipeline LIKE p;
    t_end := clock_timestamp();
    IF t_first IS NULL AND done > 0 THEN
      t_first := t_end;
      done_first := done;
    END IF;
    EXIT WHEN done >= n AND parts = nparts AND maxlag = 0;
    IF t_end - t0 > timeout THEN
      SELECT * INTO st FROM sales_kafka.pipeline_status WHERE pipeline LIKE p
       ORDER BY last_error_at DESC NULLS LAST LIMIT 1;
      RAISE EXCEPTION 'pipeline % committed % of % messages in %: state %, lag %, last error %',
        p, done, n, timeout, st.state, st.lag, st.last_error;
    END IF;
    PERFORM pg_sleep(0.1);
  END LOOP;
  total := round(n / extract(epoch FROM t_end - t0));
  after_first := CASE WHEN t_end > t_first
                      THEN round((n - done_first) / extract(epoch FROM t_end - t_first)) END;
  first_ms := round(extract(epoch FROM t_first - t0) * 1000);
END $$;

-- CPU time (user + system, all threads) of a server process so far, in ms:
-- this backend's by default
CREATE FUNCTION cpu_ms(pid int DEFAULT NULL) RETURNS bigint LANGUAGE sql AS $$
  SELECT (f[12]::bigint + f[13]::bigint) * 1000 / 100   -- utime, stime; CLK_TCK 100
    FROM (SELECT string_to_array(regexp_replace(
                   pg_read_file(CASE WHEN pid IS NULL THEN '/proc/self/stat'
                                     ELSE '/proc/' || pid || '/stat' END),
                   '^.*\) ', ''), ' ') AS f) s
$$;
SQL

# index_mb: the size of the index on sales, in MB
INDEX_MB="SELECT round(pg_relation_size('sales_sold_at_idx') / 1048576.0) AS imb"

# run_pipeline PARALLELISM: one measurement of (a) with that many workers;
# run_pipeline subsets: one of (s).  Prints
# "ROWS/S|AFTER_FIRST|FIRST_MS|WORKER_CPU_MS|INDEX_MB"
run_pipeline() {
	local create half=$((PARTITIONS / 2))
	if [ "$1" = subsets ]; then
		create="SELECT sales_kafka.create_pipeline(n, 'sales_topic', 'sales', mode => 'append',
  batch_size => 10000, flush_interval => '10 ms', start_at => 'earliest', partitions => l)
  FROM (VALUES ('ingest_1', '0-$((half - 1))'), ('ingest_2', '$half-$((PARTITIONS - 1))')) v(n, l);"
	else
		create="SELECT sales_kafka.create_pipeline('ingest', 'sales_topic', 'sales', mode => 'append',
  batch_size => 10000, flush_interval => '10 ms', start_at => 'earliest', parallelism => $1);"
	fi
	"${PSQL[@]}" -At <<SQL
\\o /dev/null
SELECT sales_kafka.drop_pipeline(name) FROM sales_kafka.pipeline WHERE name LIKE 'ingest%';
TRUNCATE sales;
$create
CHECKPOINT;
SELECT clock_timestamp() AS t0 \\gset
-- (all of them at the commit of one transaction)
SELECT sales_kafka.start_pipeline(name) FROM sales_kafka.pipeline WHERE name LIKE 'ingest%';
SELECT total, coalesce(after_first::text, '-') AS after_first, first_ms
  FROM wait_drained('ingest%', $ROWS, $PARTITIONS, :'t0', '$TIMEOUT s') \\gset
SELECT sum(cpu_ms(pid)) AS wcpu FROM sales_kafka.pipeline_status, unnest(worker_pids) AS pid
 WHERE pipeline LIKE 'ingest%' \\gset
SELECT sales_kafka.stop_pipeline(name) FROM sales_kafka.pipeline WHERE name LIKE 'ingest%';
$INDEX_MB \\gset
\\o
\\echo :total|:after_first|:first_ms|:wcpu|:imb
SQL
	local n dead
	n=$("${PSQL[@]}" -At -c "SELECT count(*) FROM sales")
	dead=$("${PSQL[@]}" -At -c "SELECT count(*) FROM sales_kafka.dead_letter")
	[ "$n" = "$ROWS" ] || { echo "the pipeline wrote $n rows, not $ROWS" >&2; exit 1; }
	[ "$dead" = 0 ] || { echo "the pipeline dead-lettered $dead messages" >&2; exit 1; }
}

# run_copy CSV: one measurement of COPY; prints "ROWS/S|BACKEND_CPU_MS|INDEX_MB"
run_copy() {
	"${PSQL[@]}" -At <<SQL
\\o /dev/null
TRUNCATE sales;
CHECKPOINT;
SELECT cpu_ms() AS c0 \\gset
SELECT measure(\$\$COPY sales FROM '$1' (FORMAT csv)\$\$) AS b \\gset
SELECT cpu_ms() - :c0 AS c \\gset
$INDEX_MB \\gset
\\o
\\echo :b|:c|:imb
SQL
}

# us_per_row CPU_MS: microseconds of CPU per row
us_per_row() { awk "BEGIN { printf \"%.2f\", $1 * 1000 / $ROWS }"; }

# Warm-up, not measured: the first process to touch a page of shared_buffers
# pays for zeroing it (~10% of a run on a fresh cluster); on a server that
# has been up a while, nobody does.
echo "== warm-up: one COPY, not measured"
run_copy "$CSV" >/dev/null

ARRIVAL_CSV=$TMPDIR/bench_sales_arrival.csv
# the configurations of (a) and (s), in order, with their column heads
CONFIGS=("${PARALLELISMS[@]}")
[ "$SUBSETS" = 0 ] || CONFIGS+=(subsets)
head_of() { if [ "$1" = subsets ]; then echo "(s) 2 lists"; else echo "(a) $1 worker(s)"; fi; }
echo "== $RUNS runs, each: (a) the pipeline with ${PARALLELISMS[*]} worker(s)$([ "$SUBSETS" = 0 ] || echo ", (s) two pipelines owning half the partitions each"),"
echo "   (b) COPY of the CSV (in sale_id order), (c) COPY of the same rows in the order the pipeline"
echo "   with $PARALLELISM worker(s) wrote them in run 1 (heap order: partition by partition); rows/s"
row() {
	printf '%-6s' "$1"
	shift
	printf ' %16s' "$@"
	printf '\n'
}
heads=()
for cfg in "${CONFIGS[@]}"; do heads+=("$(head_of "$cfg")"); done
ratio_heads=()
for cfg in "${CONFIGS[@]}"; do ratio_heads+=("${cfg/subsets/s}/b"); done
row run "${heads[@]}" "(b) COPY" "(c) COPY" "${ratio_heads[@]}" "a/c" "1st batch ms"
declare -A all cpu
b_all=() c_all=() bc_all=() cc_all=() f_all=()
for ((r = 1; r <= RUNS; r++)); do
	vals=()
	for cfg in "${CONFIGS[@]}"; do
		out=$(run_pipeline "$cfg")
		IFS='|' read -r a f first_ms a_cpu a_mb <<<"$out"
		all[$cfg]+="$a "
		cpu[$cfg]+="$(us_per_row "$a_cpu") "
		vals+=("$a")
		if [ "$cfg" = "$PARALLELISM" ]; then
			main_a=$a main_first=$first_ms
			[ "$f" = - ] || f_all+=("$f")
			[ "$r" -gt 1 ] ||
				"${PSQL[@]}" -c "\\copy (SELECT * FROM sales ORDER BY ctid) TO '$ARRIVAL_CSV' (FORMAT csv)"
		fi
	done
	out=$(run_copy "$CSV")
	IFS='|' read -r b b_cpu b_mb <<<"$out"
	out=$(run_copy "$ARRIVAL_CSV")
	IFS='|' read -r c c_cpu c_mb <<<"$out"
	b_all+=("$b") c_all+=("$c")
	bc_all+=("$(us_per_row "$b_cpu")") cc_all+=("$(us_per_row "$c_cpu")")
	ratios=()
	for v in "${vals[@]}"; do ratios+=("$(ratio "$v" "$b")"); done
	row "$r" "${vals[@]}" "$b" "$c" "${ratios[@]}" "$(ratio "$main_a" "$c")" "$main_first"
done
mb=$(median "${b_all[@]}")
mc=$(median "${c_all[@]}")
meds=() mratios=()
declare -A med
for cfg in "${CONFIGS[@]}"; do
	# shellcheck disable=SC2086
	med[$cfg]=$(median ${all[$cfg]})
	meds+=("${med[$cfg]}")
	mratios+=("$(ratio "${med[$cfg]}" "$mb")")
done
ma=${med[$PARALLELISM]}
r_ab=$(ratio "$ma" "$mb")
r_ac=$(ratio "$ma" "$mc")
row median "${meds[@]}" "$mb" "$mc" "${mratios[@]}" "$r_ac" ""
for cfg in "${CONFIGS[@]}"; do
	# shellcheck disable=SC2086
	echo "CPU us/row, median, $(head_of "$cfg"): $(median ${cpu[$cfg]}) (the workers, all their threads, start-up included)"
done
echo "CPU us/row, median: (b) the backend $(median "${bc_all[@]}"); (c) $(median "${cc_all[@]}")"
echo "index on sold_at after run $RUNS: (a) $a_mb MB, (b) $b_mb MB, (c) $c_mb MB"
echo "== result"
echo "rows: $ROWS in $PARTITIONS partitions; table: 7 columns, btree index on sold_at"
for cfg in "${CONFIGS[@]}"; do
	if [ "$cfg" = subsets ]; then
		echo "(s) two pipelines of 1 worker, partitions 0-$((PARTITIONS / 2 - 1)) and $((PARTITIONS / 2))-$((PARTITIONS - 1)): ${med[$cfg]} rows/s, $(ratio "${med[$cfg]}" "$mb") x COPY"
	else
		echo "(a) pipeline (append, batch 10000, flush 10 ms, $cfg worker(s)), start_pipeline -> all committed: ${med[$cfg]} rows/s, $(ratio "${med[$cfg]}" "$mb") x COPY"
	fi
done
[ "${#PARALLELISMS[@]}" -lt 2 ] ||
	echo "speed-up from ${PARALLELISMS[0]} to $PARALLELISM worker(s): $(ratio "$ma" "${med[${PARALLELISMS[0]}]}")"
echo "(b) COPY (FORMAT csv) of the same rows, in sale_id (= sold_at) order:                       $mb rows/s"
echo "(c) COPY (FORMAT csv) of the same rows, in the order the pipeline writes them:              $mc rows/s"
echo "ratio a/b ($PARALLELISM worker(s)): $r_ab; a/c: $r_ac"
bench_target "pipeline a/b" "$r_ab" ">=" 0.60
bench_finish
