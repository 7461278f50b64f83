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
# 1000000 sales events as JSON), BENCH_RUNS (default 3; the median counts).
# The target is (a) >= 0.6 x (b).
set -euo pipefail

ROWS=${BENCH_ROWS:-1000000}
RUNS=${BENCH_RUNS:-3}
# the test broker keeps about 5 MiB per partition: spread ~130 MB over 64
PARTITIONS=${BENCH_PARTITIONS:-64}
TOPIC="${SK_TEST_TOPIC_PREFIX}bench_sales"
CSV=$TMPDIR/bench_sales.csv
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -d bench)

echo "== setup: $ROWS sales events in topic $TOPIC ($PARTITIONS partitions)"
if [ -n "${SK_TEST_BROKER_CTL:-}" ]; then
	"$SK_TEST_BROKER_BIN" ctl "$SK_TEST_BROKER_CTL" topic "$TOPIC" "$PARTITIONS" >/dev/null
else
	"$SK_TEST_BROKER_BIN" create-topics "$SK_TEST_BROKERS" "$TOPIC:$PARTITIONS"
fi
createdb bench
"${PSQL[@]}" <<SQL
CREATE EXTENSION sales_kafka;
CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka;
CREATE FOREIGN TABLE sales_topic (
  sale_id bigint, product_name text, category text, region text,
  quantity int, price numeric(12,2), sold_at timestamptz
) SERVER kafka OPTIONS (topic '$TOPIC');
CREATE TABLE sales (
  sale_id bigint, product_name text, category text, region text,
  quantity int, price numeric(12,2), sold_at timestamptz
);
CREATE INDEX ON sales (sold_at);
-- the same rows, as the generator would send them
CREATE VIEW generated AS
SELECT i AS sale_id,
       (ARRAY['Laptop','Phone','Headphones','Monitor','Keyboard','Mouse','Desk','Chair'])[1 + i % 8] AS product_name,
       (ARRAY['Technology','Technology','Technology','Technology','Office Supplies','Office Supplies','Furniture','Furniture'])[1 + i % 8] AS category,
       (ARRAY['East','West','Central','South'])[1 + i % 4] AS region,
       1 + (i * 7) % 5 AS quantity,
       round((5 + (i * 37) % 2000) + ((i % 100) / 100.0), 2)::numeric(12,2) AS price,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '31 seconds' AS sold_at
  FROM generate_series(1, $ROWS) i;
SQL

# (b)'s input: the rows as CSV
"${PSQL[@]}" -c "\\copy (SELECT * FROM generated) TO '$CSV' (FORMAT csv)"
# (a)'s input: the same rows as JSON messages
t0=$(date +%s%N)
# keyed by sale_id, so that the partitioner spreads them evenly
"${PSQL[@]}" -At -c "COPY (SELECT sale_id || '|' || row_to_json(g)::text FROM generated g) TO STDOUT" |
	kcat -P -b "$SK_TEST_BROKERS" -t "$TOPIC" -K '|' -X queue.buffering.max.messages=1000000 \
		-X linger.ms=50
t1=$(date +%s%N)
echo "   produced with kcat in $(((t1 - t0) / 1000000)) ms; CSV is $(du -h "$CSV" | cut -f1)"
have=$("${PSQL[@]}" -At -c "SELECT sum(high - low) || ' of ' || sum(high) FROM sales_kafka.watermarks('kafka', '$TOPIC')")
[ "$have" = "$ROWS of $ROWS" ] || { echo "topic holds $have messages, not $ROWS" >&2; exit 1; }
"${PSQL[@]}" -At -c "SELECT row_to_json(g)::text FROM generated g LIMIT 1" | sed 's/^/   one message: /'

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
	printf '%-5s %22s %22s %8s\n' "$r" "$a" "$b" "$(awk "BEGIN { printf \"%.2f\", $a / $b }")"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ma=$(median "${a_all[@]}")
mb=$(median "${b_all[@]}")
ratio=$(awk "BEGIN { printf \"%.2f\", $ma / $mb }")
printf '%-5s %22s %22s %8s\n' median "$ma" "$mb" "$ratio"
echo "rows: $ROWS; table: 7 columns, btree index on sold_at; target a/b >= 0.60"
awk "BEGIN { exit !($ratio >= 0.6) }" && echo "target met" || echo "target NOT met"
