#!/usr/bin/env bash
# bench/dashboard.sh — sales_kafka_dashboard under load: how long one full
# refresh of the page takes, at 1 M and 10 M order lines, and whether the
# program's memory stays flat over 10,000 refreshes.
#
# No Kafka: a sales model "s" is filled with SQL as bench/kpi_dashboard.sh
# fills it (the same products, customers and orders of 1-4 lines over the
# year before now, 1 % of them today; no metrics), the rollups rebuilt
# (the rollup worker is off while this runs: no line comes after), then the
# dashboard is started on it as a member of sales_kafka_reader, on a free
# loopback port.  At each size
# (BENCH_SIZES):
#   1. full refresh, as the page does it: GET /api/dashboard (every view of
#      the allow-list in one snapshot), BENCH_RUNS times after BENCH_WARMUP,
#      one keep-alive HTTP client (Perl's HTTP::Tiny), one request after the
#      other; the time is from sending the request to the last byte of the
#      answer (what the program and PostgreSQL take, on loopback); p50, p95,
#      max, and the answer's size
#   2. every endpoint one by one (/api/VIEW for each view of the allow-list,
#      14 requests): the time of such a round, p50/p95; and each endpoint's
#      own p95, so that a slow view is named
#   baseline: GET /dashboard.css (from memory, no database), as many times,
#      in each round: what the machine's load alone costs a request
#   3. each view's query in the server alone: planning + execution of
#      EXPLAIN (ANALYZE, TIMING OFF) of the JSON query the program runs
#      (its text from the program's allow-list: /api/VIEW's rows), p95
# Steps 1 and 2 are repeated BENCH_ROUNDS times (default 3) and every round
# is printed: the machine is shared and noisy.
# Then, at the largest size only: BENCH_REFRESHES (default 10,000) full
# refreshes, the program's resident memory (VmRSS, /proc/PID/status) read
# after the warm-up and after every tenth of them.
#
# Run it with `make bench-dashboard`, or alone:
#   ./test/run-tests.sh --run bench/dashboard.sh [BENCH_SIZES="100000 1000000"]
# Settings (environment or NAME=VALUE arguments, see bench/lib.sh):
#   BENCH_SIZES      order lines at each step, growing (default
#                    "1000000 10000000")
#   BENCH_RUNS       measured requests per round (default 200)
#   BENCH_WARMUP     requests before measuring (default 20)
#   BENCH_ROUNDS     rounds of steps 1 and 2 (default 3)
#   BENCH_REFRESHES  refreshes of the memory test (default 10000)
#   BENCH_CHUNK      order lines loaded per statement (default 1000000)
#   BENCH_TIME_ZONE  the model's time zone (default America/New_York)
# Targets: a full refresh's p95 <= 50 ms at the largest size (the best
# round's: the others are printed), and the program's VmRSS after all the
# refreshes <= its VmRSS after the first tenth + 1 MB (flat; a leak of one
# allocation per refresh grows it by far more).
# At the defaults it takes ~20-25 minutes on 2 vCPU, most of it loading and
# rolling up 10 M lines; `make bench-dashboard` raises the harness's
# per-step time limit (SK_SUITE_TIMEOUT) to an hour.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_args "$@"

SIZES=(${BENCH_SIZES:-1000000 10000000})
RUNS=${BENCH_RUNS:-200}
WARMUP=${BENCH_WARMUP:-20}
ROUNDS=${BENCH_ROUNDS:-3}
REFRESHES=${BENCH_REFRESHES:-10000}
CHUNK=${BENCH_CHUNK:-1000000}
TIME_ZONE=${BENCH_TIME_ZONE:-America/New_York}
TARGET_P95_MS=50
TARGET_RSS_GROWTH_KB=1024

bench_check_sizes "${SIZES[@]}"
command -v sales_kafka_dashboard >/dev/null ||
	{ echo "sales_kafka_dashboard is not in PATH: make install builds and installs it" >&2; exit 2; }

WORKDIR=${TMPDIR:-/tmp}/bench_dashboard.$$
mkdir -p "$WORKDIR"
DASH_PID=
cleanup() {
	[ -z "$DASH_PID" ] || kill "$DASH_PID" 2>/dev/null || true
	rm -rf "$WORKDIR"
}
trap cleanup EXIT

echo "== setup: database bench, sales model \"s\" (time zone $TIME_ZONE)"
echo "   sizes: ${SIZES[*]} order lines; $ROUNDS rounds of $RUNS requests (+$WARMUP warm-up); $REFRESHES refreshes for memory"
bench_db
"${PSQL[@]}" -c "ALTER SYSTEM SET sales_kafka.rollup_worker = off" -c "SELECT pg_reload_conf()" >/dev/null
"${PSQL[@]}" -v tz="$TIME_ZONE" -v data="$(dirname "${BASH_SOURCE[0]}")/sales_model_data.sql" <<'SQL'
\o /dev/null
SELECT sales_kafka.create_sales_model('s', time_zone => :'tz');
CREATE ROLE bench_dashboard LOGIN IN ROLE sales_kafka_reader;

\i :data

-- bench_p95(q, runs): p95 of planning + execution time (ms) of q
CREATE FUNCTION bench_p95(q text, runs int) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
  j json;
  t numeric[] := '{}';
BEGIN
  FOR i IN 1 .. runs + 5 LOOP
    EXECUTE 'EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF, FORMAT JSON) ' || q INTO j;
    IF i > 5 THEN
      t := t || ((j -> 0 ->> 'Planning Time')::numeric + (j -> 0 ->> 'Execution Time')::numeric);
    END IF;
  END LOOP;
  RETURN (SELECT round(percentile_disc(0.95) WITHIN GROUP (ORDER BY x), 2) FROM unnest(t) x);
END $$;
SQL

# a free port on loopback, from 18080 on
port=18080
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
BASE="http://127.0.0.1:$port"

# The HTTP client: perl, one keep-alive connection.
#   client.pl N PATH...      N rounds; each round GETs every PATH in turn;
#                            prints one line per round: total ms, then each
#                            request's ms
cat >"$WORKDIR/client.pl" <<'PERL'
use strict;
use warnings;
use HTTP::Tiny;
use Time::HiRes qw(time);
my ($base, $n, @paths) = @ARGV;
my $http = HTTP::Tiny->new(keep_alive => 1, timeout => 60);
$| = 1;
for my $i (1 .. $n)
{
	my @ms;
	for my $p (@paths)
	{
		my $t0 = time;
		my $r = $http->get("$base$p");
		push @ms, (time - $t0) * 1000;
		die "GET $p: $r->{status} $r->{content}\n" unless $r->{status} == 200;
	}
	my $sum = 0;
	$sum += $_ for @ms;
	printf "%.3f %s\n", $sum, join(' ', map { sprintf '%.3f', $_ } @ms);
}
PERL
client() { perl "$WORKDIR/client.pl" "$BASE" "$@"; }
# get PATH: the body of one answer
get() { perl -MHTTP::Tiny -e 'print HTTP::Tiny->new->get($ARGV[0])->{content}' "$BASE$1"; }
# stats FILE COLUMN: "p50 p95 max" of a column of numbers
stats() {
	awk -v c="$2" '{ print $c }' "$1" | sort -n | awk '{ v[NR] = $1 }
		END { i50 = int(NR * 0.5 + 0.999); i95 = int(NR * 0.95 + 0.999);
		      printf "%.2f %.2f %.2f\n", v[i50], v[i95], v[NR] }'
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$DASH_PID/status"; }

best_p95=
stage=0
for size in "${SIZES[@]}"; do
	stage=$((stage + 1))
	have=$(sql_value "SELECT count(*) FROM s.order_lines")
	echo
	echo "== size $size: loading $((size - have)) order lines (now $have)"
	bench_load_year "$size" "$CHUNK"
	"${PSQL[@]}" -c "VACUUM ANALYZE s.order_lines, s.orders"
	echo "   rolling up (rebuild_rollups)"
	"${PSQL[@]}" -c "SELECT sales_kafka.rebuild_rollups('s')" >/dev/null
	"${PSQL[@]}" -c "VACUUM ANALYZE s.rollup_total, s.rollup_product, s.rollup_customer, s.rollup_customer_group, s.rollup_price_band, s.kpi_state" -c "CHECKPOINT"

	if [ -z "$DASH_PID" ]; then
		sales_kafka_dashboard --conninfo "host=$PGHOST port=$PGPORT dbname=bench user=bench_dashboard" \
			--schema s --listen "127.0.0.1:$port" >"$WORKDIR/dashboard.out" 2>"$WORKDIR/dashboard.err" &
		DASH_PID=$!
		for ((i = 0; i < 100; i++)); do
			grep -q 'serving schema' "$WORKDIR/dashboard.out" 2>/dev/null && break
			kill -0 "$DASH_PID" 2>/dev/null || break
			sleep 0.1
		done
		grep -q 'serving schema' "$WORKDIR/dashboard.out" ||
			{ cat "$WORKDIR/dashboard.out" "$WORKDIR/dashboard.err" >&2; exit 1; }
		echo "   $(cat "$WORKDIR/dashboard.out") (pid $DASH_PID)"
	fi
	# the allow-list, from the program itself
	mapfile -t views < <(get /api/dashboard |
		perl -MJSON::PP -e 'local $/; my $d = decode_json(<STDIN>); print "$_\n" for sort keys %{ $d->{views} }')
	bytes=$(get /api/dashboard | wc -c)

	echo "-- full refresh, GET /api/dashboard ($bytes bytes; ${#views[@]} views): $RUNS requests a round after $WARMUP warm-up (ms)"
	printf '   %-6s %8s %8s %8s   %-20s   %-20s\n' round p50 p95 max "14 endpoints p50 p95" "baseline p50 p95"
	client "$WARMUP" /api/dashboard >/dev/null
	paths=()
	for v in "${views[@]}"; do paths+=("/api/$v"); done
	for ((r = 1; r <= ROUNDS; r++)); do
		client "$RUNS" /api/dashboard >"$WORKDIR/full.$size.$r"
		client "$RUNS" "${paths[@]}" >"$WORKDIR/each.$size.$r"
		client "$RUNS" /dashboard.css >"$WORKDIR/base.$size.$r"
		read -r p50 p95 mx <<<"$(stats "$WORKDIR/full.$size.$r" 1)"
		read -r e50 e95 emx <<<"$(stats "$WORKDIR/each.$size.$r" 1)"
		read -r b50 b95 bmx <<<"$(stats "$WORKDIR/base.$size.$r" 1)"
		printf '   %-6s %8s %8s %8s   %-20s   %-20s\n' "$r" "$p50" "$p95" "$mx" "$e50 $e95" "$b50 $b95"
		if [ "$stage" -eq "${#SIZES[@]}" ]; then
			if [ -z "$best_p95" ] || awk "BEGIN { exit !($p95 < $best_p95) }"; then best_p95=$p95; fi
		fi
	done
	echo "-- each endpoint alone (last round, ms): HTTP p50 / p95, and its query in the server (EXPLAIN ANALYZE) p95"
	col=2
	for v in "${views[@]}"; do
		read -r e50 e95 emx <<<"$(stats "$WORKDIR/each.$size.$ROUNDS" "$col")"
		srv=$("${PSQL[@]}" -At -v v="$v" <<-'SQL'
			SELECT bench_p95(format('SELECT coalesce(json_agg(t), %L) FROM (SELECT * FROM %s.%I %s) t', '[]',
			       CASE WHEN :'v' = 'pipeline_status' THEN 'sales_kafka' ELSE 's' END, :'v',
			       CASE :'v' WHEN 'kpi_sales_per_minute' THEN $$WHERE period_start >= now() - interval '2 hours'$$
			                 WHEN 'kpi_sales_per_hour' THEN $$WHERE period_start >= now() - interval '48 hours'$$
			                 WHEN 'kpi_sales_per_day' THEN $$WHERE period_start >= now() - interval '90 days'$$
			                 WHEN 'kpi_top_products' THEN 'WHERE revenue_rank <= 10'
			                 ELSE '' END), 50)
		SQL
		)
		printf '   %-26s %8s %8s   server %8s\n' "$v" "$e50" "$e95" "$srv"
		col=$((col + 1))
	done
done

echo
echo "== memory: $REFRESHES full refreshes at ${SIZES[-1]} lines, VmRSS of the program (kB)"
tenth=$((REFRESHES / 10))
rss0=$(rss_kb)
echo "   after start and $((ROUNDS * RUNS * 15 + WARMUP)) requests: $rss0"
rss_first=
for ((i = 1; i <= 10; i++)); do
	client "$tenth" /api/dashboard >/dev/null
	rss=$(rss_kb)
	[ -n "$rss_first" ] || rss_first=$rss
	echo "   after $((i * tenth)): $rss"
done
growth=$((rss - rss_first))
echo "   growth from $tenth to $REFRESHES refreshes: $growth kB"
kill "$DASH_PID"
wait "$DASH_PID" 2>/dev/null || true
DASH_PID=

echo
bench_target "full refresh p95 at ${SIZES[-1]} lines, best of $ROUNDS rounds (ms)" "$best_p95" "<=" "$TARGET_P95_MS"
bench_target "dashboard VmRSS growth over $REFRESHES refreshes (kB)" "$growth" "<=" "$TARGET_RSS_GROWTH_KB"
bench_finish
