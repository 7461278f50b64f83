#!/usr/bin/env bash
# demo/sales_demo.sh — sales_kafka's main job, live: synthetic Superstore
# order lines go into a Kafka topic through the foreign data wrapper (INSERT,
# produced at commit), four ingest pipelines normalise them into a sales
# model (customers, products, orders, order lines) exactly once, the KPIs
# are rolled up incrementally, and a table of figures (rows ingested, lag,
# rows/s, revenue and orders from the KPI views) is printed every few
# seconds until Ctrl-C.
#
# Run it with `make demo` (test/run-tests.sh --run sets up the packages, the
# build, the test broker or KAFKA_BROKERS, and a throwaway PostgreSQL with
# sales_kafka preloaded, and stops them all when this script ends):
#
#   make demo                     until Ctrl-C
#   make demo DEMO_SECONDS=60     (or DEMO_SECONDS=60 make demo) stop by
#                                 itself after 60 s, drain the pipeline,
#                                 check that every event arrived once, and
#                                 print a summary
#
# Usage: demo/sales_demo.sh [SECONDS]   (or DEMO_SECONDS=N; 0 = until
# stopped).  DEMO_PARTITIONS, DEMO_BATCH_MIN/MAX, DEMO_PAUSE
# and DEMO_TICK (below) only reach the script when it is run directly:
# run-tests.sh passes none of our variables through.  Needs PGHOST, PGPORT, PGUSER, SK_TEST_BROKERS,
# SK_TEST_BROKER_BIN, SK_TEST_TOPIC_PREFIX and, with the test broker,
# SK_TEST_BROKER_CTL, as run-tests.sh sets them.
#
# What it builds, in database sales_demo (look around with psql while it
# runs; the command line is printed):
#   demo_products   34 products in Furniture / Office Supplies / Technology
#   demo_customers  250 customers in 4 regions and 3 segments
#   generate_sales(n)  n random Superstore order lines in orders of 1-14 lines (popular products
#                   sell more, cheap ones in larger quantities, some
#                   discounted)
#   schema shop     sales_kafka.create_sales_model('shop'): the sales model
#                   and its KPI views (shop.kpi_*)
#   shop.src_superstore  foreign table over topic <prefix>demo_sales (JSON),
#                   and the pipelines shop_customers, shop_products,
#                   shop_orders (upserts) and shop_order_lines (append), by
#                   sales_kafka.create_sales_pipelines('shop', 'superstore', ...)
# sales_kafka_dashboard serves the live page of model shop on
# http://127.0.0.1:8080/ (DEMO_DASHBOARD_PORT; the next free port if taken),
# as role demo_dashboard, a member of sales_kafka_reader.
# A producer session runs INSERT INTO shop.src_superstore SELECT * FROM
# generate_sales(200..1000) a few times a second, in one psql session.  The
# demo calls no refresh: the extension's rollup worker rolls the lines up as
# the pipeline commits them; each line of figures says how fresh the KPIs
# are (the age of the last rollup, and the lines not in the KPIs yet).
set -uo pipefail

SECONDS_LIMIT=${1:-${DEMO_SECONDS:-0}}
PARTITIONS=${DEMO_PARTITIONS:-6}
BATCH_MIN=${DEMO_BATCH_MIN:-200}   # events per producer transaction: from
BATCH_MAX=${DEMO_BATCH_MAX:-1000}  # ... to
PAUSE=${DEMO_PAUSE:-0.25}          # seconds between producer transactions
TICK=${DEMO_TICK:-3}               # seconds between two lines of figures
DB=sales_demo
PIPELINE=shop_order_lines
PIPELINES="'shop_customers', 'shop_products', 'shop_orders', 'shop_order_lines'"
TOPIC="${SK_TEST_TOPIC_PREFIX:-}demo_sales"

die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
[[ $SECONDS_LIMIT =~ ^[0-9]+$ ]] || die "DEMO_SECONDS must be a whole number of seconds, not '$SECONDS_LIMIT'"
for v in PGHOST PGPORT PGUSER SK_TEST_BROKERS SK_TEST_BROKER_BIN; do
	[ -n "${!v:-}" ] || die "$v is not set: run me with 'make demo' (test/run-tests.sh --run $0)"
done
[[ $TOPIC =~ ^[A-Za-z0-9._-]+$ ]] || die "bad topic name $TOPIC"

WORKDIR=${TMPDIR:-/tmp}/sales_demo.$$
mkdir -p "$WORKDIR" || die "cannot create $WORKDIR"
STOP_FILE=$WORKDIR/stop
PRODUCER_LOG=$WORKDIR/producer.log
: >"$PRODUCER_LOG"

PSQL=(psql -X -q -v ON_ERROR_STOP=1 -d "$DB")
# one query, unaligned: fields separated by '|'
query() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }

# ---------------------------------------------------------------- stopping

PRODUCER_PID=
# Ask the producer to stop after its current transaction and wait for it.
stop_producer() {
	[ -n "$PRODUCER_PID" ] || return 0
	touch "$STOP_FILE"
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$PRODUCER_PID" 2>/dev/null || break
		sleep 0.1
	done
	# still there after 10 s (a commit waiting for Kafka?): say so and wait
	kill -0 "$PRODUCER_PID" 2>/dev/null &&
		echo "demo: the producer's last transaction is taking long; waiting for it"
	wait "$PRODUCER_PID" 2>/dev/null
	PRODUCER_PID=
}

# Ctrl-C: run-tests.sh sends SIGTERM to this script's whole process group
# (the producer's psql, the monitor's psql, tee): everything stops at once,
# and PostgreSQL and the broker are stopped after us.  Just do not linger.
on_signal() {
	trap - INT TERM
	stop_dashboard
	touch "$STOP_FILE" 2>/dev/null
	[ -z "$PRODUCER_PID" ] || kill -TERM "$PRODUCER_PID" 2>/dev/null
	rm -rf "$WORKDIR"
	# (the output pipe may be gone already)
	printf '\ndemo: stopped by signal\n' 2>/dev/null
	exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'stop_dashboard; rm -rf "$WORKDIR"' EXIT

# The live page: sales_kafka_dashboard (dashboard/), as a member of
# sales_kafka_reader, on 127.0.0.1:DEMO_DASHBOARD_PORT (default 8080, or the
# next free port).
DASHBOARD_PID=
stop_dashboard() {
	[ -z "$DASHBOARD_PID" ] || kill "$DASHBOARD_PID" 2>/dev/null
	DASHBOARD_PID=
}

# ---------------------------------------------------------------- setup

echo "== setup: topic $TOPIC ($PARTITIONS partitions), database $DB"
if [ -n "${SK_TEST_BROKER_CTL:-}" ]; then
	"$SK_TEST_BROKER_BIN" ctl "$SK_TEST_BROKER_CTL" topic "$TOPIC" "$PARTITIONS" >/dev/null ||
		die "the test broker could not create topic $TOPIC"
else
	"$SK_TEST_BROKER_BIN" create-topics "$SK_TEST_BROKERS" "$TOPIC:$PARTITIONS" ||
		die "could not create topic $TOPIC on $SK_TEST_BROKERS"
fi
createdb "$DB" || die "createdb $DB failed"

"${PSQL[@]}" -v topic="$TOPIC" -v brokers="$SK_TEST_BROKERS" <<'SQL' || die "setting up the database failed"
CREATE EXTENSION sales_kafka;

-- what the generator sells: ~30 products, popular ones weigh more
CREATE TABLE demo_products (
  product_id   text PRIMARY KEY,
  name         text NOT NULL,
  category     text NOT NULL,
  sub_category text NOT NULL,
  unit_price   numeric(10,2) NOT NULL,
  weight       int NOT NULL,          -- relative popularity
  cum_weight   int                    -- running sum, for weighted picks
);
INSERT INTO demo_products (product_id, name, category, sub_category, unit_price, weight) VALUES
  ('P-01', 'Ergonomic Mesh Office Chair',     'Furniture',       'Chairs',      289.99, 6),
  ('P-02', 'Executive Leather Chair',         'Furniture',       'Chairs',      449.00, 3),
  ('P-03', 'Stacking Guest Chair',            'Furniture',       'Chairs',       79.90, 5),
  ('P-04', '5-Shelf Bookcase',                'Furniture',       'Bookcases',   149.00, 4),
  ('P-05', 'Oak Corner Bookcase',             'Furniture',       'Bookcases',   219.00, 2),
  ('P-06', 'Standing Desk 140 cm',            'Furniture',       'Tables',      529.00, 4),
  ('P-07', 'Conference Table, 8 Seats',       'Furniture',       'Tables',     1199.00, 1),
  ('P-08', 'Round Meeting Table',             'Furniture',       'Tables',      349.00, 2),
  ('P-09', 'LED Desk Lamp',                   'Furniture',       'Furnishings',  39.95, 8),
  ('P-10', 'Wall Clock',                      'Furniture',       'Furnishings',  24.50, 5),
  ('P-11', 'Bamboo Monitor Riser',            'Furniture',       'Furnishings',  45.00, 6),
  ('P-12', 'Copy Paper A4, 500 Sheets',       'Office Supplies', 'Paper',         6.49, 20),
  ('P-13', 'Premium Paper, 5 Reams',          'Office Supplies', 'Paper',        27.99, 10),
  ('P-14', 'Ring Binder 2"',                  'Office Supplies', 'Binders',       4.99, 16),
  ('P-15', 'Comb Binding Machine',            'Office Supplies', 'Binders',     189.00, 2),
  ('P-16', 'Gel Pens, 12-Pack',               'Office Supplies', 'Art',           8.99, 15),
  ('P-17', 'Highlighters, 6-Pack',            'Office Supplies', 'Art',           5.49, 14),
  ('P-18', 'Sticky Notes, 12 Pads',           'Office Supplies', 'Paper',        11.99, 14),
  ('P-19', 'Heavy-Duty Stapler',              'Office Supplies', 'Fasteners',    22.90, 8),
  ('P-20', 'Paper Clips, 1000',               'Office Supplies', 'Fasteners',     3.99, 12),
  ('P-21', 'Archive Storage Boxes, 5-Pack',   'Office Supplies', 'Storage',      18.50, 9),
  ('P-22', 'Shipping Labels, 100 Sheets',     'Office Supplies', 'Labels',       21.00, 7),
  ('P-23', 'C4 Envelopes, 250-Pack',          'Office Supplies', 'Envelopes',    16.75, 8),
  ('P-24', 'Cross-Cut Paper Shredder',        'Office Supplies', 'Appliances',  139.00, 3),
  ('P-25', 'Smartphone 128 GB',               'Technology',      'Phones',      699.00, 4),
  ('P-26', 'Conference Speakerphone',         'Technology',      'Phones',      299.00, 2),
  ('P-27', 'Wireless Mouse',                  'Technology',      'Accessories',  24.99, 14),
  ('P-28', 'Mechanical Keyboard',             'Technology',      'Accessories',  89.00, 8),
  ('P-29', 'USB-C Headset',                   'Technology',      'Accessories',  59.90, 9),
  ('P-30', 'External SSD 1 TB',               'Technology',      'Accessories', 109.00, 7),
  ('P-31', '27" 4K Monitor',                  'Technology',      'Accessories', 379.00, 5),
  ('P-32', 'Laptop 14"',                      'Technology',      'Machines',   1099.00, 4),
  ('P-33', 'Laser Printer',                   'Technology',      'Machines',    249.00, 3),
  ('P-34', 'Multifunction Copier',            'Technology',      'Copiers',    1499.00, 1);
UPDATE demo_products p SET cum_weight = c.cum
  FROM (SELECT product_id, sum(weight) OVER (ORDER BY product_id) AS cum FROM demo_products) c
 WHERE c.product_id = p.product_id;

-- who buys: 250 customers; the first ones buy more often
CREATE TABLE demo_customers (
  customer_id text PRIMARY KEY,
  name        text NOT NULL,
  segment     text NOT NULL,
  region      text NOT NULL,
  state       text NOT NULL,
  city        text NOT NULL
);
INSERT INTO demo_customers
SELECT 'C-' || lpad(i::text, 3, '0'),
       (ARRAY['Aaron','Beth','Carlos','Diana','Ethan','Fatima','George','Hannah','Ivan','Julia',
              'Kevin','Laura','Mohammed','Nina','Oscar','Priya','Quentin','Rosa','Sam','Tanya'])[1 + i % 20]
       || ' ' ||
       (ARRAY['Anderson','Brooks','Chen','Dubois','Evans','Fischer','Garcia','Hughes','Ito','Jensen',
              'Kowalski','Lopez','Miller','Nguyen','Okafor','Patel','Rossi','Schmidt','Taylor','Walker'])[1 + (i * 7) % 20],
       (ARRAY['Consumer','Consumer','Consumer','Consumer','Consumer',
              'Corporate','Corporate','Corporate','Home Office','Home Office'])[1 + (i * 3) % 10],
       r.region, r.states[1 + (i / 4) % 3], r.cities[1 + (i / 4) % 3]
  FROM generate_series(1, 250) i
  JOIN (VALUES (0, 'East',    ARRAY['New York City','Philadelphia','Boston'], ARRAY['New York','Pennsylvania','Massachusetts']),
               (1, 'West',    ARRAY['Los Angeles','Seattle','San Francisco'], ARRAY['California','Washington','California']),
               (2, 'Central', ARRAY['Chicago','Houston','Detroit'], ARRAY['Illinois','Texas','Michigan']),
               (3, 'South',   ARRAY['Atlanta','Miami','Nashville'], ARRAY['Georgia','Florida','Tennessee'])) r(k, region, cities, states)
    ON r.k = i % 4;

CREATE SEQUENCE order_seq;

-- n random Superstore order lines, sold now, in orders of 1 to 14 lines
-- (as in the Superstore data: most orders have one to four): the columns of
-- shop.src_superstore, in its order.  An order's lines share its customer,
-- ship mode and priority; each line has its own product, quantity and
-- discount.
CREATE FUNCTION generate_sales(n integer)
RETURNS TABLE (order_id text, line int, sold_at timestamptz, ship_date date, ship_mode text,
               customer_id text, customer_name text, segment text, country text, city text,
               state text, postal_code text, region text, product_id text, product_name text,
               category text, sub_category text, stated_revenue numeric(14,2), quantity int,
               discount numeric(5,4), profit numeric(14,2), order_priority text)
LANGUAGE sql VOLATILE AS $$
SELECT 'D-' || o.id, l.line, now(), (now() + interval '3 days')::date,
       (ARRAY['Standard Class','Second Class','First Class','Same Day'])[1 + floor(o.rs * o.rs * 4)::int],
       c.customer_id, c.name, c.segment, 'United States', c.city, c.state, NULL, c.region,
       p.product_id, p.name, p.category, p.sub_category,
       round(q.quantity * p.unit_price * (1 - d.discount), 2), q.quantity, d.discount,
       round(q.quantity * p.unit_price * (0.25 - d.discount), 2),
       (ARRAY['Low','Medium','Medium','High','Critical'])[1 + floor(o.rs * 5)::int]
  FROM (SELECT nextval('order_seq') AS id,
               1 + floor(random() ^ 3 * 14)::int AS lines,
               random() AS rc, random() AS rs
          FROM generate_series(1, n) OFFSET 0) o
 CROSS JOIN LATERAL (SELECT g AS line, random() AS rp, random() AS rq, random() AS rd
                       FROM generate_series(1, o.lines) AS g) l
 CROSS JOIN LATERAL (SELECT * FROM demo_products p
                      WHERE p.cum_weight > floor(l.rp * (SELECT sum(weight) FROM demo_products))
                      ORDER BY p.cum_weight LIMIT 1) p
  JOIN demo_customers c ON c.customer_id = 'C-' || lpad((1 + floor(o.rc * o.rc * 250))::text, 3, '0')
 CROSS JOIN LATERAL (SELECT (CASE WHEN p.unit_price < 20 THEN 1 + floor(l.rq * 10)
                                  WHEN p.unit_price < 200 THEN 1 + floor(l.rq * 4)
                                  ELSE 1 + floor(l.rq * l.rq * 3) END)::int AS quantity) q
 CROSS JOIN LATERAL (SELECT (CASE WHEN l.rd < 0.65 THEN 0
                                  WHEN l.rd < 0.80 THEN 0.05
                                  WHEN l.rd < 0.90 THEN 0.10
                                  WHEN l.rd < 0.97 THEN 0.15
                                  ELSE 0.20 END)::numeric(5,4) AS discount) d
 LIMIT n
$$;

-- the sales model, fed from the topic by four pipelines
CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers :'brokers');
\o /dev/null
SELECT sales_kafka.create_sales_model('shop');
SELECT sales_kafka.create_sales_pipelines('shop', 'superstore', 'kafka', :'topic');
\o
SQL

# ---------------------------------------------------------------- dashboard

"${PSQL[@]}" -c "CREATE ROLE demo_dashboard LOGIN IN ROLE sales_kafka_reader" ||
	die "could not create role demo_dashboard"
DASHBOARD_PORT=${DEMO_DASHBOARD_PORT:-8080}
while (exec 3<>"/dev/tcp/127.0.0.1/$DASHBOARD_PORT") 2>/dev/null; do DASHBOARD_PORT=$((DASHBOARD_PORT + 1)); done
sales_kafka_dashboard --conninfo "host=$PGHOST port=$PGPORT dbname=$DB user=demo_dashboard" \
	--schema shop --listen "127.0.0.1:$DASHBOARD_PORT" >"$WORKDIR/dashboard.log" 2>&1 &
DASHBOARD_PID=$!
for ((i = 0; i < 50; i++)); do
	grep -q 'serving schema' "$WORKDIR/dashboard.log" && break
	kill -0 "$DASHBOARD_PID" 2>/dev/null || break
	sleep 0.1
done
grep -q 'serving schema' "$WORKDIR/dashboard.log" ||
	die "the dashboard did not start: $(cat "$WORKDIR/dashboard.log")"

# ---------------------------------------------------------------- producer

# One psql session; each INSERT is its own transaction, produced to Kafka
# when it commits.  In lockstep: the next statement is written once psql has
# answered the previous one, so that nothing queues up in the pipe and a stop
# takes effect after the current transaction.  A failed statement ends the
# session: the error goes to the producer log (shown below the figures) and
# a new session starts a second later.
producer() {
	trap - INT TERM EXIT
	trap '' PIPE # a write to a psql that has gone fails instead
	local reply to from pid
	while [ ! -e "$STOP_FILE" ]; do
		coproc PRODUCER_PSQL { exec psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" 2>>"$PRODUCER_LOG"; }
		# (bash unsets PRODUCER_PSQL when psql exits)
		to=${PRODUCER_PSQL[1]} from=${PRODUCER_PSQL[0]} pid=$PRODUCER_PSQL_PID
		while [ ! -e "$STOP_FILE" ]; do
			printf 'INSERT INTO shop.src_superstore SELECT * FROM generate_sales(%d);\n\\echo ok\n' \
				$((BATCH_MIN + RANDOM % (BATCH_MAX - BATCH_MIN + 1))) 1>&"$to" 2>/dev/null || break
			read -r reply <&"$from" || break
			[ "$reply" = ok ] || break
			sleep "$PAUSE"
		done
		eval "exec $to>&-" 2>/dev/null # end of input: psql exits
		wait "$pid" 2>/dev/null
		[ ! -e "$STOP_FILE" ] || break
		echo "$(date +%T) producer session ended; starting a new one" >>"$PRODUCER_LOG"
		sleep 1
	done
}
producer &
PRODUCER_PID=$!

# ---------------------------------------------------------------- how to look

if [ "$PGUSER" = sales_kafka_test ]; then as="as root: "; else as=""; fi
cat <<EOF

== the demo runs: every ${TICK} s a line of figures; Ctrl-C stops it$([ "$SECONDS_LIMIT" -eq 0 ] || echo " (or it stops by itself after ${SECONDS_LIMIT} s)")
   producer  INSERT INTO shop.src_superstore SELECT * FROM generate_sales(${BATCH_MIN}..${BATCH_MAX}), every ~${PAUSE} s
   pipelines shop.src_superstore (topic $TOPIC, $PARTITIONS partitions) -> shop.customers,
             shop.products, shop.orders (upserts) and shop.order_lines (append)
   KPIs      kept current by the rollup worker: no refresh call, no pg_cron job
             (kpi age: time since the last rollup; waiting: lines not in the KPIs yet)

   Dashboard http://127.0.0.1:$DASHBOARD_PORT/ (open it in a browser on this machine;
             ?refresh=30 for a slower page)

   Look around meanwhile, from another terminal (no password; the cluster
   lives as long as the demo):
     psql "host=localhost port=$PGPORT user=$PGUSER dbname=$DB"
     ${as}psql -h $PGHOST -p $PGPORT -U $PGUSER $DB
   and try
     SELECT * FROM sales_kafka.pipeline_status;
     SELECT * FROM shop.kpi_today;  SELECT * FROM shop.kpi_sales_by_region;
     SELECT * FROM shop.kpi_today_top_products;  SELECT * FROM shop.kpi_as_of;
     SELECT * FROM shop.kpi_sales_per_minute ORDER BY period_start DESC LIMIT 5;
     SELECT * FROM shop.src_superstore LIMIT 5;      -- the topic, read as a table
     INSERT INTO shop.src_superstore SELECT * FROM generate_sales(10);

EOF

# ---------------------------------------------------------------- figures

now_us() { echo "${EPOCHREALTIME/[.,]/}"; }
hms() { # seconds -> m:ss or h:mm:ss
	local s=$1
	if [ "$s" -ge 3600 ]; then
		printf '%d:%02d:%02d' $((s / 3600)) $((s % 3600 / 60)) $((s % 60))
	else
		printf '%d:%02d' $((s / 60)) $((s % 60))
	fi
}
group() { # 1234567 -> 1,234,567
	local n=$1 out=
	while [ ${#n} -gt 3 ]; do
		out=",${n: -3}$out"
		n=${n:0:${#n}-3}
	done
	echo "$n$out"
}

# One line of raw figures, '|'-separated, as the KPIs are (nothing is
# refreshed here):
# produced|committed|rows|revenue|orders_today|state|dead|last_error|kpi_age_ms|waiting
FIGURES_SQL="
SELECT w.produced, coalesce(o.committed, 0), k.sales_count, k.revenue, d.order_count,
       coalesce(s.state, 'none'), coalesce(s.dead_letters, 0),
       replace(replace(coalesce(s.last_error, ''), '|', '/'), E'\n', ' '),
       coalesce(round(extract(epoch FROM clock_timestamp() - a.rolled_up_at) * 1000), 0),
       a.rows_waiting
  FROM (SELECT coalesce(sum(high), 0) AS produced
          FROM sales_kafka.watermarks('kafka', '$TOPIC')) w
 CROSS JOIN shop.kpi_totals k
 CROSS JOIN shop.kpi_as_of a
 CROSS JOIN shop.kpi_today d
  LEFT JOIN (SELECT string_agg(DISTINCT state, ',') AS state, sum(dead_letters) AS dead_letters,
                    max(last_error) AS last_error
               FROM sales_kafka.pipeline_status WHERE pipeline IN ($PIPELINES)) s ON true
  LEFT JOIN (SELECT sum(committed_offset) AS committed
               FROM sales_kafka.pipeline_partitions
              WHERE pipeline = '$PIPELINE') o ON true"

BREAKDOWN_SQL="
SELECT string_agg(format('%s %s%%', category, round(revenue_share_pct)), ', ')
  FROM shop.kpi_today_by_category"
TOP_SQL="
SELECT string_agg(format('%s. %s (%s)', rank, product_name, to_char(revenue, 'FM999,999,999,990')), ', ')
  FROM shop.kpi_today_top_products"

line() { printf '%8s  %-8s %12s %12s %8s %7s %7s %18s %12s %5s %8s %8s\n' "$@"; }

T0=$(now_us)
next=$T0
tick=0
prev_produced=0 prev_rows=0 prev_t=$T0
last_error_shown=
producer_lines=0

while :; do
	# every line starts on the tick, however long the queries took
	next=$((next + TICK * 1000000))
	wait_us=$((next - $(now_us)))
	if [ "$wait_us" -gt 0 ]; then
		sleep "$(printf '%d.%06d' $((wait_us / 1000000)) $((wait_us % 1000000)))"
	fi
	t=$(now_us)
	elapsed=$(((t - T0) / 1000000))

	if ! figures=$(query "$FIGURES_SQL" 2>"$WORKDIR/error"); then
		printf '%8s  could not read the figures: %s\n' "$(hms "$elapsed")" "$(head -c 300 "$WORKDIR/error")"
		continue
	fi
	IFS='|' read -r produced committed rows revenue orders_today state dead last_error kpi_age waiting <<<"$figures"
	dt=$((t - prev_t))
	in_rate=$(((produced - prev_produced) * 1000000 / dt))
	row_rate=$(((rows - prev_rows) * 1000000 / dt))
	prev_produced=$produced prev_rows=$rows prev_t=$t
	lag=$((produced - committed))
	[ "$lag" -ge 0 ] || lag=0

	[ $((tick % 20)) -ne 0 ] ||
		line time state produced 'in the KPIs' lag 'sent/s' 'rows/s' 'revenue (USD)' 'orders today' dead \
			'kpi age' waiting
	line "$(hms "$elapsed")" "$state" "$(group "$produced")" "$(group "$rows")" \
		"$(group "$lag")" "$(group "$in_rate")" "$(group "$row_rate")" \
		"$(group "${revenue%.*}").${revenue#*.}" "$(group "$orders_today")" "$(group "$dead")" \
		"${kpi_age} ms" "$(group "$waiting")"
	tick=$((tick + 1))

	if [ -n "$last_error" ] && [ "$last_error" != "$last_error_shown" ]; then
		echo "          pipeline error: $last_error"
		last_error_shown=$last_error
	fi
	n=$(wc -l <"$PRODUCER_LOG")
	if [ "$n" -gt "$producer_lines" ]; then
		tail -n +$((producer_lines + 1)) "$PRODUCER_LOG" | head -n 5 | sed 's/^/          producer: /'
		producer_lines=$n
	fi
	if [ $((tick % 10)) -eq 0 ] && [ "$rows" -gt 0 ]; then
		echo "          today by category: $(query "$BREAKDOWN_SQL" 2>&1)"
		echo "          today's top 5: $(query "$TOP_SQL" 2>&1)"
	fi

	[ "$SECONDS_LIMIT" -gt 0 ] && [ "$elapsed" -ge "$SECONDS_LIMIT" ] && break
done

# ---------------------------------------------------------------- the end (DEMO_SECONDS)

echo
echo "== ${SECONDS_LIMIT} s are up: stopping the producer, letting the pipeline catch up"
stop_producer
produced=$(query "SELECT coalesce(sum(high), 0) FROM sales_kafka.watermarks('kafka', '$TOPIC')") ||
	die "could not read the watermarks"
t=$(now_us)
for ((i = 0; i < 60; i++)); do
	# the slowest of the four pipelines
	committed=$(query "SELECT CASE WHEN count(*) = 4 THEN min(c) ELSE 0 END FROM (SELECT sum(committed_offset) AS c FROM sales_kafka.pipeline_partitions WHERE pipeline IN ($PIPELINES) GROUP BY pipeline) p")
	[ "$committed" != "$produced" ] || break
	sleep 0.5
done
t=$((($(now_us) - t) / 1000))
if [ "$committed" = "$produced" ]; then
	echo "   all $(group "$produced") events committed by the pipelines, $t ms after the producer stopped"
else
	echo "   after $t ms the pipelines have committed $(group "$committed") of $(group "$produced") events"
fi
echo
echo "== the pipelines"
"${PSQL[@]}" -P footer=off -c "SELECT pipeline, state, partitions, lag, rows_written, dead_letters, last_error FROM sales_kafka.pipeline_status ORDER BY pipeline"
for p in shop_customers shop_products shop_orders shop_order_lines; do
	"${PSQL[@]}" -c "SELECT sales_kafka.stop_pipeline('$p')" >/dev/null ||
		echo "demo: stop_pipeline('$p') failed" >&2
done

# no refresh: the rollup worker counts the last lines by itself
t=$(now_us)
for ((i = 0; i < 100; i++)); do
	[ "$(query "SELECT rows_waiting FROM shop.kpi_as_of")" = 0 ] && break
	sleep 0.1
done
echo "   the KPIs count every committed line $((($(now_us) - t) / 1000)) ms later, by themselves" \
	"($(query "SELECT rows_waiting FROM shop.kpi_as_of") waiting)"
echo "== the KPIs (shop.kpi_*; what a BI tool reads)"
"${PSQL[@]}" -P footer=off <<'SQL'
\echo shop.kpi_totals
SELECT * FROM shop.kpi_totals;
\echo shop.kpi_sales_by_region
SELECT * FROM shop.kpi_sales_by_region;
\echo shop.kpi_sales_by_category
SELECT * FROM shop.kpi_sales_by_category;
\echo shop.kpi_today_top_products
SELECT * FROM shop.kpi_today_top_products;
\echo shop.kpi_price_distribution
SELECT price_band, sales_count, quantity, revenue, sales_share_pct FROM shop.kpi_price_distribution;
\echo shop.kpi_sales_per_minute (last 5)
SELECT * FROM (SELECT * FROM shop.kpi_sales_per_minute ORDER BY period_start DESC LIMIT 5) m ORDER BY period_start;
\echo shop.kpi_as_of
SELECT rolled_up_at, views_refreshed_at, rolled_up_rows, rows_waiting, last_sale_at FROM shop.kpi_as_of;
SQL
IFS='|' read -r rows distinct kpi_rows customers products orders dead <<<"$(query "
SELECT (SELECT count(*) FROM shop.order_lines), (SELECT count(DISTINCT (order_id, line)) FROM shop.order_lines),
       (SELECT sales_count FROM shop.kpi_totals),
       (SELECT count(*) FROM shop.customers), (SELECT count(*) FROM shop.products),
       (SELECT count(*) FROM shop.orders), (SELECT count(*) FROM sales_kafka.dead_letter)")"
echo "== exactly once: $(group "$produced") order lines produced, $(group "$rows") ingested ($(group "$distinct") distinct), $(group "$kpi_rows") in the KPIs, $(group "$dead") dead letters"
echo "   normalised into $(group "$customers") customers, $(group "$products") products and $(group "$orders") orders"
orders_of_lines=$(query "SELECT count(DISTINCT order_id) FROM shop.order_lines")
if [ "$rows" = "$produced" ] && [ "$distinct" = "$rows" ] && [ "$kpi_rows" = "$rows" ] &&
	[ "$orders" = "$orders_of_lines" ] && [ "$dead" = 0 ]; then
	echo "   every event arrived exactly once, in the tables and in the KPIs"
else
	echo "   MISMATCH: the pipelines did not write every event exactly once" >&2
	exit 1
fi
