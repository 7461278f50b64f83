# bench/lib.sh — what the benchmarks share; sourced by bench/*.sh, never run.
#
# The benchmarks run under `test/run-tests.sh --run bench/X.sh`, which sets
# PGHOST/PGPORT/PGUSER, SK_TEST_BROKERS, SK_TEST_BROKER_CTL (empty against a
# real cluster), SK_TEST_BROKER_BIN and SK_TEST_TOPIC_PREFIX, and passes
# every BENCH_* variable of the caller's environment through.  Every
# benchmark also takes settings as arguments:
#
#   ./test/run-tests.sh --run bench/pipeline_latency.sh BENCH_SECONDS=30
#
# Targets: each benchmark states its targets in its header and checks each
# with bench_target; bench_finish, its last command, exits 1 if one was
# missed, so that `make bench` fails.  On a noisy machine:
#   BENCH_RELAX=1             report missed targets, exit 0
#   BENCH_TARGET_FACTOR=0.9   judge against targets relaxed by that factor
#                             (an "at least" target times it, an "at most"
#                             one divided by it); default 1
#
# The sales events: sale_id 1..N, 7 fields, ~150 bytes of JSON each,
# keyed by sale_id, as the view "generated" (bench_generated_view) and the
# paced producer (bench_paced_events) both make them.

set -euo pipefail

# bench_args NAME=VALUE...: settings given as arguments
bench_args() {
	local a
	for a in "$@"; do
		case $a in
		BENCH_[A-Z_]*=*) export "${a?}" ;;
		*)
			echo "usage: $0 [BENCH_SETTING=VALUE]..." >&2
			exit 2
			;;
		esac
	done
}

# psql on the benchmark's database: quiet, stopping at the first error
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -d bench)

# sql_value SQL: the statement's result, unaligned, tuples only
sql_value() { "${PSQL[@]}" -At -c "$1"; }

# bench_topic TOPIC PARTITIONS: create the topic (test broker or real cluster)
bench_topic() {
	if [ -n "${SK_TEST_BROKER_CTL:-}" ]; then
		"$SK_TEST_BROKER_BIN" ctl "$SK_TEST_BROKER_CTL" topic "$1" "$2" >/dev/null
	else
		"$SK_TEST_BROKER_BIN" create-topics "$SK_TEST_BROKERS" "$1:$2"
	fi
}

# bench_db: the database "bench" with the extension and the server "kafka";
# BENCH_FETCH_WAIT_MS sets the server's librdkafka fetch.wait.max.ms (how
# long a broker may hold a fetch that finds nothing new; the pipeline's
# default is 50, and the test broker always holds an empty fetch that long)
bench_db() {
	local opts=
	[ -z "${BENCH_FETCH_WAIT_MS:-}" ] ||
		opts="OPTIONS (\"fetch.wait.max.ms\" '$BENCH_FETCH_WAIT_MS')"
	createdb bench
	"${PSQL[@]}" <<-SQL
		CREATE EXTENSION sales_kafka;
		CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka $opts;
	SQL
}

# bench_generated_view ROWS: the view "generated", rows 1..ROWS as the
# generator sends them
bench_generated_view() {
	"${PSQL[@]}" <<-SQL
		CREATE VIEW generated AS
		SELECT i AS sale_id,
		       (ARRAY['Laptop','Phone','Headphones','Monitor','Keyboard','Mouse','Desk','Chair'])[1 + i % 8] AS product_name,
		       (ARRAY['Technology','Technology','Technology','Technology','Office Supplies','Office Supplies','Furniture','Furniture'])[1 + i % 8] AS category,
		       (ARRAY['East','West','Central','South'])[1 + i % 4] AS region,
		       1 + (i * 7) % 5 AS quantity,
		       round((5 + (i * 37) % 2000) + ((i % 100) / 100.0), 2)::numeric(12,2) AS price,
		       timestamptz '2024-01-01 00:00:00+00' + i * interval '31 seconds' AS sold_at
		  FROM generate_series(1, $1) i;
	SQL
}

# bench_produce_generated TOPIC: all rows of "generated" as JSON messages,
# keyed by sale_id (so the partitioner spreads them evenly), with kcat
bench_produce_generated() {
	"${PSQL[@]}" -At -c "COPY (SELECT sale_id || '|' || row_to_json(g)::text FROM generated g) TO STDOUT" |
		kcat -P -b "$SK_TEST_BROKERS" -t "$1" -K '|' -X queue.buffering.max.messages=1000000 \
			-X linger.ms=50
}

# bench_topic_count TOPIC: "MESSAGES of PRODUCED", summed over partitions
bench_topic_count() {
	"${PSQL[@]}" -At -c "SELECT coalesce(sum(high - low), 0) || ' of ' || coalesce(sum(high), 0) FROM sales_kafka.watermarks('kafka', '$1')"
}

# bench_sales_setup ROWS TOPIC PARTITIONS CSV: the ingest benchmarks' data.
# A topic of ROWS JSON sales events, the foreign table "sales_topic" over
# it, the table "sales" (btree on sold_at) that both sides load, and the
# same rows as the CSV file that COPY loads.
bench_sales_setup() {
	local rows=$1 topic=$2 partitions=$3 csv=$4 t0 t1 have
	bench_topic "$topic" "$partitions"
	bench_db
	"${PSQL[@]}" <<-SQL
		CREATE FOREIGN TABLE sales_topic (
		  sale_id bigint, product_name text, category text, region text,
		  quantity int, price numeric(12,2), sold_at timestamptz
		) SERVER kafka OPTIONS (topic '$topic');
		CREATE TABLE sales (
		  sale_id bigint, product_name text, category text, region text,
		  quantity int, price numeric(12,2), sold_at timestamptz
		);
		CREATE INDEX ON sales (sold_at);
	SQL
	bench_generated_view "$rows"

	# COPY's input: the rows as CSV; the topic's: the same rows as JSON
	"${PSQL[@]}" -c "\\copy (SELECT * FROM generated) TO '$csv' (FORMAT csv)"
	t0=$(date +%s%N)
	bench_produce_generated "$topic"
	t1=$(date +%s%N)
	echo "   produced with kcat in $(((t1 - t0) / 1000000)) ms; CSV is $(du -h "$csv" | cut -f1)"
	have=$(bench_topic_count "$topic")
	[ "$have" = "$rows of $rows" ] || { echo "topic holds $have messages, not $rows" >&2; exit 1; }
	"${PSQL[@]}" -At -c "SELECT row_to_json(g)::text FROM generated g LIMIT 1" | sed 's/^/   one message: /'
}

# bench_paced_events RATE SECONDS [FIRST_ID]: the same events as "generated"
# (sale_id FIRST_ID, FIRST_ID + 1, ...) as "key|json" lines on stdout, RATE a
# second for SECONDS, written every 20 ms (RATE / 50 lines at a time) on a
# fixed schedule, so that a late tick does not slow the rate down.  Prints
# what it did on stderr: lines, seconds, rate, and how late the latest tick
# was written.
bench_paced_events() {
	perl -e '
		use strict; use warnings;
		use Time::HiRes qw(time sleep);
		use POSIX qw(strftime floor);
		my ($rate, $seconds, $id) = @ARGV;
		my @product = qw(Laptop Phone Headphones Monitor Keyboard Mouse Desk Chair);
		my @category = ("Technology", "Technology", "Technology", "Technology",
		                "Office Supplies", "Office Supplies", "Furniture", "Furniture");
		my @region = qw(East West Central South);
		my $epoch = 1704067200;    # 2024-01-01 00:00:00+00
		my $tick = 0.020;
		my $ticks = int($seconds / $tick + 0.5);
		my ($sent, $late) = (0, 0);
		$| = 0;
		my $t0 = time;
		for my $k (1 .. $ticks) {
			my $due = $t0 + ($k - 1) * $tick;
			my $wait = $due - time;
			if ($wait > 0) { sleep($wait) } elsif (-$wait > $late) { $late = -$wait }
			my $upto = floor($rate * $k * $tick + 0.5);
			my $out = "";
			for (; $sent < $upto; $sent++, $id++) {
				my $cents = $id % 100;
				$out .= sprintf(qq(%d|{"sale_id":%d,"product_name":"%s","category":"%s","region":"%s","quantity":%d,"price":%d.%02d,"sold_at":"%s"}\n),
					$id, $id, $product[$id % 8], $category[$id % 8], $region[$id % 4],
					1 + ($id * 7) % 5, 5 + ($id * 37) % 2000, $cents,
					strftime("%Y-%m-%dT%H:%M:%S+00:00", gmtime($epoch + $id * 31)));
			}
			print $out;
			STDOUT->flush();
		}
		my $took = time - $t0;
		printf STDERR "   producer: %d messages in %.1f s (%.0f/s), latest tick %.1f ms late\n",
			$sent, $took, $sent / $took, $late * 1000;
	' "$1" "$2" "${3:-1}"
}

# bench_produce_paced TOPIC RATE SECONDS [FIRST_ID]: bench_paced_events into
# kcat, which stamps each message (CreateTime) when it reads its line.
# linger.ms=5 is librdkafka's default: a producer batches for up to 5 ms.
bench_produce_paced() {
	bench_paced_events "$2" "$3" "${4:-1}" |
		kcat -P -b "$SK_TEST_BROKERS" -t "$1" -K '|' -X linger.ms=5
}

# median VALUE...: the middle one (the upper middle of an even count)
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# ratio A B: A / B with two decimals
ratio() { awk "BEGIN { printf \"%.2f\", $1 / $2 }"; }

# worker_memory PID: "VmRSS RssAnon RssShmem" of a process, in kB
worker_memory() {
	awk '/^VmRSS:/ { r = $2 } /^RssAnon:/ { a = $2 } /^RssShmem:/ { s = $2 }
		END { if (r == "") exit 1; print r, a, s }' "/proc/$1/status"
}

# bench_stream_setup TOPIC PARTITIONS: for the benchmarks that produce while
# a pipeline runs.  The foreign table sales_stream maps the events and the
# message's Kafka timestamp (sent_at, the producer's CreateTime); the table
# sales_in (btree on sold_at) gets them, with ingested_at DEFAULT
# clock_timestamp(): the worker evaluates it when it builds the row, in the
# batch's transaction, just before that commits.  Starts the pipeline
# "stream" (append, batch_size 10000, flush_interval 10 ms, 1 worker) on the
# empty topic and waits until its worker runs with every partition assigned.
#
# Few partitions: a steady producer writes one small message set to every
# partition at every tick, and the test broker looks a fetch's offset up by
# walking the partition's list of message sets (librdkafka's mock keeps
# ~5 MiB a partition).  At 5000 messages/s over 16 partitions that list
# grows to ~5600 sets in two minutes, and the broker's CPU with it (to ~40 %
# of a core after 60 s, taken from the pipeline on a 2-core machine); over
# 4 partitions it stops at ~1400 sets after ~30 s.  A real broker indexes
# its log and does not care.
bench_stream_setup() {
	local topic=$1 partitions=$2 i state
	bench_topic "$topic" "$partitions"
	bench_db
	"${PSQL[@]}" >/dev/null <<-SQL
		CREATE FOREIGN TABLE sales_stream (
		  sale_id bigint, product_name text, category text, region text,
		  quantity int, price numeric(12,2), sold_at timestamptz,
		  sent_at timestamptz OPTIONS (kafka 'timestamp')
		) SERVER kafka OPTIONS (topic '$topic');
		CREATE TABLE sales_in (
		  sale_id bigint, product_name text, category text, region text,
		  quantity int, price numeric(12,2), sold_at timestamptz,
		  sent_at timestamptz,
		  ingested_at timestamptz DEFAULT clock_timestamp()
		);
		CREATE INDEX ON sales_in (sold_at);
		SELECT sales_kafka.create_pipeline('stream', 'sales_stream', 'sales_in', mode => 'append',
		  batch_size => 10000, flush_interval => '10 ms', start_at => 'earliest', parallelism => 1);
		SELECT sales_kafka.start_pipeline('stream');
	SQL
	for ((i = 0; i < 300; i++)); do
		state=$("${PSQL[@]}" -At -c "SELECT state || ' ' || coalesce(partitions, 0) FROM sales_kafka.pipeline_status WHERE pipeline = 'stream'")
		[ "$state" != "running $partitions" ] || return 0
		sleep 0.1
	done
	echo "pipeline \"stream\" is not running after 30 s: $state" >&2
	"${PSQL[@]}" -x -c "SELECT * FROM sales_kafka.pipeline_status" >&2
	exit 1
}

# bench_wait_rows TABLE N TIMEOUT_S: wait until TABLE holds N rows
bench_wait_rows() {
	local n i
	for ((i = 0; i < $3 * 10; i++)); do
		n=$("${PSQL[@]}" -At -c "SELECT count(*) FROM $1")
		[ "$n" -lt "$2" ] || return 0
		sleep 0.1
	done
	echo "$1 holds $n rows after $3 s, not $2" >&2
	"${PSQL[@]}" -x -c "SELECT * FROM sales_kafka.pipeline_status" >&2
	exit 1
}

# bench_target WHAT VALUE OP TARGET: judge VALUE against a target, OP ">="
# (at least) or "<=" (at most), relaxed by BENCH_TARGET_FACTOR; print the
# verdict and remember a miss for bench_finish
BENCH_MISSED=()
bench_target() {
	local what=$1 value=$2 op=$3 target=$4 factor=${BENCH_TARGET_FACTOR:-1} judged
	awk "BEGIN { exit !($factor > 0 && $factor <= 1) }" ||
		{ echo "BENCH_TARGET_FACTOR must be in (0, 1]: $factor" >&2; exit 2; }
	case $op in
	'>=') judged=$(awk "BEGIN { print $target * $factor }") ;;
	'<=') judged=$(awk "BEGIN { print $target / $factor }") ;;
	*) echo "bench_target: OP must be >= or <=, not $op" >&2; exit 2 ;;
	esac
	if awk "BEGIN { exit !($factor < 1) }"; then
		target="$target (relaxed to $judged by BENCH_TARGET_FACTOR=$factor)"
	fi
	if awk "BEGIN { exit !($value $op $judged) }"; then
		echo "target met: $what $value, target $op $target"
	else
		echo "target NOT met: $what $value, target $op $target"
		BENCH_MISSED+=("$what")
	fi
}

# bench_finish: the benchmark's exit status: 1 if a target was missed
# (unless BENCH_RELAX=1), else 0
bench_finish() {
	local missed
	[ ${#BENCH_MISSED[@]} -gt 0 ] || return 0
	missed=$(printf '%s; ' "${BENCH_MISSED[@]}")
	missed=${missed%; }
	if [ "${BENCH_RELAX:-0}" = 1 ]; then
		echo "BENCH_RELAX=1: missed targets reported, not failed: $missed"
		return 0
	fi
	echo "missed targets: $missed (BENCH_RELAX=1 reports them without failing)" >&2
	exit 1
}

# ---- the sales model "s" of the KPI benchmarks (bench/sales_model_data.sql)

# bench_check_sizes SIZE...: exits unless BENCH_SIZES are growing numbers
bench_check_sizes() {
	local n prev=0
	for n in "$@"; do
		[[ $n =~ ^[1-9][0-9]*$ ]] && [ "$n" -gt "$prev" ] ||
			{ echo "BENCH_SIZES must be growing numbers of order lines: $*" >&2; exit 2; }
		prev=$n
	done
}

BENCH_NEXT_ORDER=0 # order numbers handed out so far (a multiple of 4)
# bench_add_orders MAX_LINES TA TB RECENT: orders with MAX_LINES lines
# (bench_orders(): sold over [TA, TB), or mostly recently if RECENT)
bench_add_orders() {
	local norders=$((($1 * 2 + 4) / 5)) written
	norders=$(((norders + 3) / 4 * 4))
	written=$(sql_value "SELECT bench_orders($BENCH_NEXT_ORDER, $norders, $1, '$2', '$3', $4)")
	BENCH_NEXT_ORDER=$((BENCH_NEXT_ORDER + norders))
	[ "$written" = "$1" ] || { echo "bench_orders wrote $written lines, not $1" >&2; exit 1; }
}

# bench_load_year SIZE CHUNK: adds order lines until s.order_lines has
# SIZE, spread over the year before now in time order, CHUNK a statement;
# prints each statement's lines and time
bench_load_year() {
	local have todo done n ta tb ca cb t1
	have=$(sql_value "SELECT count(*) FROM s.order_lines")
	todo=$(($1 - have))
	read -r ta tb <<<"$(sql_value "SELECT extract(epoch FROM now() - interval '365 days') || ' ' || extract(epoch FROM now())")"
	for ((done = 0; done < todo; done += $2)); do
		n=$((todo - done < $2 ? todo - done : $2))
		ca=$(awk "BEGIN { printf \"%.3f\", $ta + ($tb - $ta) * $done / $todo }")
		cb=$(awk "BEGIN { printf \"%.3f\", $ta + ($tb - $ta) * ($done + $n) / $todo }")
		t1=$(date +%s%N)
		bench_add_orders "$n" "$(sql_value "SELECT to_timestamp($ca)")" "$(sql_value "SELECT to_timestamp($cb)")" false
		echo "   $((have + done + n)) lines ($(((($(date +%s%N) - t1) / 1000000))) ms for $n)"
	done
}
