#!/usr/bin/env bash
# bench/retention.sh — the retention of a partitioned sales model costs the
# same for a month of many order lines as for one of few: detaching (and
# dropping) a monthly partition is O(1), where deleting its lines is
# O(rows).  No Kafka.
#
# For each size of BENCH_SIZES (order lines in one month, default
# "100000 1000000"), in each of BENCH_RUNS runs (default 3):
#   (d) a month 30 months back filled with that many lines (spread over the
#       month, 100 products and 1,000 customers), marked rolled up (the
#       rollups are not computed: this times the retention, not them), a
#       CHECKPOINT, then the time of
#       sales_kafka.drop_old_partitions(model, keep => '29 months'), which
#       detaches and drops that month and only it;
#   (x) the same month filled again, then the time of DELETE of its lines,
#       for comparison (the month is then dropped, untimed, so that every
#       fill starts from an empty month).
# Times in ms, medians of the runs; the figure is the ratio of (d) at the
# largest size to (d) at the smallest (1 for O(1)), beside the same ratio
# of (x) (about the ratio of the sizes for O(rows)).
#
#   ./test/run-tests.sh --run bench/retention.sh [BENCH_SIZES="100000 1000000" BENCH_RUNS=3]
#
# The target is (d) largest / (d) smallest <= 3 (a miss fails the
# benchmark; bench/lib.sh: BENCH_RELAX, BENCH_TARGET_FACTOR).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_args "$@"

read -r -a SIZES <<<"${BENCH_SIZES:-100000 1000000}"
RUNS=${BENCH_RUNS:-3}

createdb bench
"${PSQL[@]}" <<'SQL'
CREATE EXTENSION sales_kafka;
SELECT sales_kafka.create_sales_model('ret', partitioned => true, time_zone => 'UTC');

-- the month the benchmark fills, detaches and deletes
CREATE FUNCTION bench_month() RETURNS timestamptz LANGUAGE sql STABLE
AS $$SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '30 months'$$;

-- n lines in the month, marked rolled up (kpi_state: through the last one)
CREATE FUNCTION fill(n bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM sales_kafka.create_sales_partitions('ret', bench_month()::date, bench_month()::date);
  INSERT INTO ret.order_lines (order_id, line, sold_at, customer_id, product_id, quantity, unit_price)
  SELECT 'o' || i, 1,
         bench_month() + (i % 2419200) * interval '1 second',   -- the month's first 28 days
         'c' || (i % 1000), 'p' || (i % 100), 1 + i % 5, 1 + i % 97
    FROM generate_series(1, n) i;
  UPDATE ret.kpi_state SET rolled_up_through = (SELECT max(ingest_id) FROM ret.order_lines);
END $$;

-- milliseconds drop_old_partitions takes to drop the benchmark's month
CREATE FUNCTION retention_ms() RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  months bigint;
  t numeric;
BEGIN
  SELECT count(*) INTO months FROM sales_kafka.drop_old_partitions('ret', keep => '29 months');
  t := round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1);
  IF months <> 1 OR EXISTS (SELECT FROM ret.order_lines WHERE sold_at < bench_month() + interval '1 month') THEN
    RAISE EXCEPTION 'drop_old_partitions dropped % months, not the one of %', months, bench_month();
  END IF;
  RETURN t;
END $$;

-- milliseconds a statement takes
CREATE FUNCTION ms(stmt text) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  EXECUTE stmt;
  RETURN round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1);
END $$;
SQL

# detach_ms N: fill the month with N lines, then time drop_old_partitions,
# which must drop that one month
detach_ms() {
	"${PSQL[@]}" -At <<SQL
\\o /dev/null
SELECT fill($1);
CHECKPOINT;
\\o
SELECT retention_ms();
SQL
}

# delete_ms N: fill the month with N lines, then time the DELETE of them
delete_ms() {
	"${PSQL[@]}" -At <<SQL
\\o /dev/null
SELECT fill($1);
CHECKPOINT;
\\o
SELECT ms(\$\$DELETE FROM ret.order_lines WHERE sold_at >= bench_month() AND sold_at < bench_month() + interval '1 month'\$\$);
-- the next fill starts from an empty month, not one of dead rows
\\o /dev/null
SELECT count(*) FROM sales_kafka.drop_old_partitions('ret', keep => '29 months');
SQL
}

echo "== $RUNS runs; sizes (order lines in the month): ${SIZES[*]}"
printf '%-6s %10s %14s %14s\n' run lines "(d) detach ms" "(x) DELETE ms"
declare -A d_all x_all
for ((r = 1; r <= RUNS; r++)); do
	for n in "${SIZES[@]}"; do
		d=$(detach_ms "$n")
		x=$(delete_ms "$n")
		d_all[$n]+="$d "
		x_all[$n]+="$x "
		printf '%-6s %10s %14s %14s\n' "$r" "$n" "$d" "$x"
	done
done
echo "== result (medians)"
for n in "${SIZES[@]}"; do
	# shellcheck disable=SC2086
	printf '%10s lines: (d) %s ms, (x) %s ms\n' "$n" "$(median ${d_all[$n]})" "$(median ${x_all[$n]})"
done
small=${SIZES[0]}
large=${SIZES[-1]}
# shellcheck disable=SC2086
d_ratio=$(ratio "$(median ${d_all[$large]})" "$(median ${d_all[$small]})")
# shellcheck disable=SC2086
x_ratio=$(ratio "$(median ${x_all[$large]})" "$(median ${x_all[$small]})")
echo "ratio $large / $small lines ($(ratio "$large" "$small") x the rows): (d) drop_old_partitions $d_ratio, (x) DELETE $x_ratio"
bench_target "retention (d) $large/$small" "$d_ratio" "<=" 3
bench_finish
