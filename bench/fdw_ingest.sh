#!/usr/bin/env bash
# bench/fdw_ingest.sh — how fast a topic lands in a table through the
# foreign data wrapper, against COPY of the same rows into the same table,
# measured in the same run:
#
#   (a) INSERT INTO sales SELECT ... FROM sales_topic   (foreign table scan)
#   (b) COPY sales FROM 'sales.csv' (FORMAT csv)        (the baseline)
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

echo "== setup: $ROWS sales events in topic $TOPIC ($PARTITIONS partitions)"
bench_sales_setup "$ROWS" "$TOPIC" "$PARTITIONS" "$CSV"

# one measurement: the rows/s of a statement into an empty table
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

echo "== $RUNS runs, each: (a) then (b), one transaction each"
printf '%-5s %22s %22s %8s\n' run "(a) FDW rows/s" "(b) COPY rows/s" "a/b"
a_all=() b_all=()
for ((r = 1; r <= RUNS; r++)); do
	a=$("${PSQL[@]}" -At -c "SELECT measure('INSERT INTO sales SELECT * FROM sales_topic')")
	b=$("${PSQL[@]}" -At -c "SELECT measure(\$\$COPY sales FROM '$CSV' (FORMAT csv)\$\$)")
	a_all+=("$a") b_all+=("$b")
	printf '%-5s %22s %22s %8s\n' "$r" "$a" "$b" "$(ratio "$a" "$b")"
done
ma=$(median "${a_all[@]}")
mb=$(median "${b_all[@]}")
ratio=$(ratio "$ma" "$mb")
printf '%-5s %22s %22s %8s\n' median "$ma" "$mb" "$ratio"
echo "rows: $ROWS; table: 7 columns, btree index on sold_at; target a/b >= 0.60"
awk "BEGIN { exit !($ratio >= 0.6) }" && echo "target met" || echo "target NOT met"
