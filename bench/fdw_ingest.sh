#!/usr/bin/env bash
# bench/fdw_ingest.sh — how fast a topic lands in a table through the
# foreign data wrapper, against COPY of the same rows into the same table,
# measured in the same run:
#
#   (a) INSERT INTO sales SELECT ... FROM sales_topic   (foreign table scan,
#       written in batches as COPY writes: SalesKafkaInsert)
#   (r) the same with sales_kafka.bulk_insert = off     (row by row, for
#       comparison)
#   (b) COPY sales FROM 'sales.csv' (FORMAT csv)        (the baseline)
#   (c) COPY of the same rows in the order (a) wrote them: messages of many
#       partitions interleave, so the index on sold_at gets its keys out of
#       order, where (b) appends them in order (for comparison)
#
# Run it with `make bench` (test/run-tests.sh --run sets up PostgreSQL and
# the test broker, or takes KAFKA_BROKERS).  Settings: BENCH_ROWS (default
# 1000000 sales events as JSON), BENCH_RUNS (default 3; the median counts),
# BENCH_PARTITIONS (default 64), from the environment or as NAME=VALUE
# arguments (bench/lib.sh).  The target is (a) >= 0.6 x (b).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_args "$@"

ROWS=${BENCH_ROWS:-1000000}
RUNS=${BENCH_RUNS:-3}
# the test broker keeps about 5 MiB per partition: spread ~130 MB over 64
PARTITIONS=${BENCH_PARTITIONS:-64}
TOPIC="${SK_TEST_TOPIC_PREFIX}bench_sales"
CSV=$TMPDIR/bench_sales.csv
CSV_FDW_ORDER=$TMPDIR/bench_sales_fdw_order.csv

echo "== setup: $ROWS sales events in topic $TOPIC ($PARTITIONS partitions)"
bench_sales_setup "$ROWS" "$TOPIC" "$PARTITIONS" "$CSV"

# one measurement: the rows/s of a statement into an empty table.  Each is
# run after a CHECKPOINT (untimed), so that none pays for the WAL and dirty
# pages of the one before it: each writes some 200 MB of WAL, and the
# checkpoints that max_wal_size (1 GB) sets off would land on any of them.
"${PSQL[@]}" <<'SQL'
CREATE FUNCTION measure(stmt text) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz;
  n bigint;
BEGIN
  TRUNCATE sales;
  t0 := clock_timestamp();
  EXECUTE stmt;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN round(n / extract(epoch FROM clock_timestamp() - t0));
END $$;
SQL

# (c)'s input: the rows as (a) writes them
"${PSQL[@]}" -At -c "SELECT measure('INSERT INTO sales SELECT * FROM sales_topic')" >/dev/null
"${PSQL[@]}" -c "\\copy sales TO '$CSV_FDW_ORDER' (FORMAT csv)"

echo "== $RUNS runs, each: (a), (r), (b), then (c), one transaction each"
FORMAT='%-5s %14s %14s %14s %14s %6s %6s %6s\n'
# result_row LABEL A R B C: the rows/s of each, and their ratios
result_row() {
	printf "$FORMAT" "$1" "$2" "$3" "$4" "$5" "$(ratio "$2" "$4")" "$(ratio "$3" "$4")" "$(ratio "$2" "$5")"
}
printf "$FORMAT" run "(a) FDW rows/s" "(r) row by row" "(b) COPY" "(c) COPY, (a)'s order" "a/b" "r/b" "a/c"
a_all=() r_all=() b_all=() c_all=() ab_all=()
for ((r = 1; r <= RUNS; r++)); do
	a=$("${PSQL[@]}" -At -c CHECKPOINT -c "SELECT measure('INSERT INTO sales SELECT * FROM sales_topic')")
	rr=$("${PSQL[@]}" -At -c CHECKPOINT -c "SET sales_kafka.bulk_insert = off" -c "SELECT measure('INSERT INTO sales SELECT * FROM sales_topic')")
	b=$("${PSQL[@]}" -At -c CHECKPOINT -c "SELECT measure(\$\$COPY sales FROM '$CSV' (FORMAT csv)\$\$)")
	c=$("${PSQL[@]}" -At -c CHECKPOINT -c "SELECT measure(\$\$COPY sales FROM '$CSV_FDW_ORDER' (FORMAT csv)\$\$)")
	a_all+=("$a") r_all+=("$rr") b_all+=("$b") c_all+=("$c") ab_all+=("$(ratio "$a" "$b")")
	result_row "$r" "$a" "$rr" "$b" "$c"
done
ma=$(median "${a_all[@]}")
mr=$(median "${r_all[@]}")
mb=$(median "${b_all[@]}")
mc=$(median "${c_all[@]}")
result_row median "$ma" "$mr" "$mb" "$mc"
# the target is judged on the median of the runs' own a/b
ratio=$(median "${ab_all[@]}")
echo "median of the runs' a/b: $ratio"
echo "rows: $ROWS; table: 7 columns, btree index on sold_at; target a/b >= 0.60"
awk "BEGIN { exit !($ratio >= 0.6) }" && echo "target met" || echo "target NOT met"
