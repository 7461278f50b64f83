#!/usr/bin/env bash
# bench/fdw_ingest.sh — how fast a topic lands in a table through the
# foreign data wrapper, against COPY of the same rows into the same table,
# measured in the same run:
#
#   (i) INSERT INTO sales SELECT * FROM sales_topic    (as the executor
#       plans it: a foreign scan under a row-by-row ModifyTable)
#   (l) SELECT sales_kafka.load('sales_topic', 'sales') (the bulk call: the
#       same scan, written as COPY writes, btree entries sorted)
#   (b) COPY sales FROM 'sales.csv' (FORMAT csv)        (the baseline)
#   (c) COPY of the same rows in the order (l) wrote them: messages of many
#       partitions interleave, so the index on sold_at gets its keys out of
#       order, where (b) appends them in order (for comparison)
#
# Run it with `make bench` (test/run-tests.sh --run sets up PostgreSQL and
# the test broker, or takes KAFKA_BROKERS).  Settings: BENCH_ROWS (default
# 1000000 sales events as JSON), BENCH_RUNS (default 3; the median counts),
# BENCH_PARTITIONS (default 64), from the environment or as NAME=VALUE
# arguments (bench/lib.sh).
# The target: l/b >= 0.60 (the median of the runs' own l/b); a miss fails
# the benchmark (bench/lib.sh: BENCH_RELAX, BENCH_TARGET_FACTOR).  i/b is
# reported, without a target.
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
CSV_LOAD_ORDER=$TMPDIR/bench_sales_load_order.csv

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
  secs numeric;
  n bigint;
BEGIN
  TRUNCATE sales;
  t0 := clock_timestamp();
  -- load() returns its row count; INSERT and COPY report theirs
  IF stmt LIKE 'SELECT %' THEN
    EXECUTE stmt INTO n;
  ELSE
    EXECUTE stmt;
    GET DIAGNOSTICS n = ROW_COUNT;
  END IF;
  secs := extract(epoch FROM clock_timestamp() - t0);
  IF n <> (SELECT count(*) FROM sales) THEN
    RAISE EXCEPTION '% reported % rows, the table holds %', stmt, n, (SELECT count(*) FROM sales);
  END IF;
  RETURN round(n / secs);
END $$;
SQL

INSERT_SQL='INSERT INTO sales SELECT * FROM sales_topic'
LOAD_SQL="SELECT sales_kafka.load('sales_topic', 'sales')"

# (c)'s input: the rows as (l) writes them
"${PSQL[@]}" -At -c "SELECT measure(\$\$$LOAD_SQL\$\$)" >/dev/null
n=$("${PSQL[@]}" -At -c "SELECT count(*) FROM sales")
[ "$n" = "$ROWS" ] || { echo "load() wrote $n rows, not $ROWS" >&2; exit 1; }
"${PSQL[@]}" -c "\\copy sales TO '$CSV_LOAD_ORDER' (FORMAT csv)"

echo "== $RUNS runs, each: (i), (l), (b), then (c), one transaction each"
FORMAT='%-6s %13s %13s %13s %13s %6s %6s %6s\n'
# result_row LABEL I L B C: the rows/s of each, and their ratios
result_row() {
	printf "$FORMAT" "$1" "$2" "$3" "$4" "$5" "$(ratio "$2" "$4")" "$(ratio "$3" "$4")" "$(ratio "$3" "$5")"
}
printf "$FORMAT" run "(i) INSERT" "(l) load()" "(b) COPY" "(c) COPY, l's" "i/b" "l/b" "l/c"
i_all=() l_all=() b_all=() c_all=() ib_all=() lb_all=()
for ((r = 1; r <= RUNS; r++)); do
	i=$("${PSQL[@]}" -At -c CHECKPOINT -c "SELECT measure(\$\$$INSERT_SQL\$\$)")
	l=$("${PSQL[@]}" -At -c CHECKPOINT -c "SELECT measure(\$\$$LOAD_SQL\$\$)")
	b=$("${PSQL[@]}" -At -c CHECKPOINT -c "SELECT measure(\$\$COPY sales FROM '$CSV' (FORMAT csv)\$\$)")
	c=$("${PSQL[@]}" -At -c CHECKPOINT -c "SELECT measure(\$\$COPY sales FROM '$CSV_LOAD_ORDER' (FORMAT csv)\$\$)")
	i_all+=("$i") l_all+=("$l") b_all+=("$b") c_all+=("$c")
	ib_all+=("$(ratio "$i" "$b")") lb_all+=("$(ratio "$l" "$b")")
	result_row "$r" "$i" "$l" "$b" "$c"
done
result_row median "$(median "${i_all[@]}")" "$(median "${l_all[@]}")" "$(median "${b_all[@]}")" "$(median "${c_all[@]}")"
# the targets are judged on the median of the runs' own ratios
ib=$(median "${ib_all[@]}")
lb=$(median "${lb_all[@]}")
echo "median of the runs' i/b: $ib (runs: ${ib_all[*]}); l/b: $lb (runs: ${lb_all[*]})"
echo "rows: $ROWS; table: 7 columns, btree index on sold_at"
echo "(i) INSERT ... SELECT, as planned: $ib x COPY (no target)"
bench_target "load() l/b" "$lb" ">=" 0.60
bench_finish
