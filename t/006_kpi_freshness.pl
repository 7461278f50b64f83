# The KPI layer keeps its figures fresh, and counts every sale exactly once
# through crashes:
#
#   1. Scheduled refresh: sales_kafka.schedule_kpi_refresh, called in
#      pg_cron's database (postgres) for a model in another database (shop),
#      makes a pg_cron job that really runs there: refresh_kpis catches up
#      with fixture order lines whose KPIs are computed by hand below;
#      unschedule_kpi_refresh removes the job.  The rollup worker, which
#      needs no job (t/013_rollup_worker.pl), is off on these nodes, so
#      that only the refreshes this test makes move the KPIs.  The
#      refusals: no pg_cron in the calling database (55000), an interval
#      pg_cron cannot do (22023).
#
#   2. Exactly once across crashes: 100,000 sale events (80,000 in the
#      sale_events shape through create_sales_pipelines, 20,000 order lines
#      of multi-line orders with customers through a pipeline of our own;
#      timestamps spread over six days across a month end and a DST change
#      of the model's time zone, Europe/Berlin, with late events for earlier
#      days) are produced from a second server while two loops refresh,
#      as schedule_kpi_refresh's pg_cron jobs would, only faster: one calls
#      refresh_rollups, the other refresh_kpis (the same rollups, then the
#      time of it).  Four times a kill -9 hits a refresh in the
#      middle of its run:
#        a. the refresh backend, while it has written rollup rows (a row lock
#           held by another session stops it half-way through its writes);
#        b. the postmaster, the same way, with messages produced while the
#           server is down;
#        c. the refresh backend while it waits for in-flight writers of the
#           order lines (another session holds ROW EXCLUSIVE on them); the
#           pipelines go on writing meanwhile;
#        d. the postmaster while a refresh is running, unforced.
#      After each restart the rollups equal a recomputation of exactly the
#      lines they claim to cover (ingest_id <= rolled_up_through), in one
#      snapshot.  At the end the rollup tables equal a full recomputation
#      from the order lines, row for row (EXCEPT both ways), at every grain;
#      the totals equal those of the events as generated on the producer;
#      kpi_top_products equals a recomputation too.
#
# Waits poll with bounded timeouts; no step waits a fixed time.  Runs
# against a real Kafka too (topics under the run's prefix; nothing here
# needs the test broker's control channel).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;
use Time::HiRes qw(time usleep);

# seconds any one wait of part 2 may take
my $wait_s = 90;

# ---------------------------------------------------------------- helpers

# "SQLSTATE: message" of the error $sql raises, or "no error".
sub sql_error
{
	my ($node, $db, $sql) = @_;
	my ($ret, $out, $err) = $node->psql($db, "\\set VERBOSITY verbose\n$sql");
	return $err =~ /ERROR:\s+([0-9A-Z]{5}): ([^\n]*)/ ? "$1: $2" : "no error (exit $ret)";
}

# A psql running $script in the background, connected to $db of $node as
# application $app (so that pg_stat_activity tells its backend).  The script
# comes from a file: input from a scalar would only be fed to psql while we
# pump.
my $bg_count = 0;

sub start_bg_psql
{
	my ($node, $db, $app, $script) = @_;
	my $file = "${PostgreSQL::Test::Utils::tmp_check}/bg_" . ++$bg_count . "_$app.sql";
	open(my $fh, '>', $file) or die "cannot write $file: $!";
	print $fh $script;
	close($fh);
	my $bg = { out => '', err => '', app => $app };
	$bg->{h} = IPC::Run::start(
		[
			$node->installed_command('psql'), '-X', '-A', '-t', '-q',
			'-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr($db) . " application_name=$app",
			'-f', $file
		],
		'<', '/dev/null', '>', \$bg->{out}, '2>', \$bg->{err});
	return $bg;
}

# True once a background psql has exited ($bg->{rc} is then its status).
sub bg_finished
{
	my ($bg) = @_;
	return 1 if $bg->{finished};
	$bg->{h}->pump_nb;
	return 0 if $bg->{h}->pumpable;
	$bg->{h}->finish;
	$bg->{rc} = $? >> 8;
	$bg->{finished} = 1;
	return 1;
}

# Wait until a background psql exits (it is killed after $timeout_s).
sub bg_reap
{
	my ($bg, $timeout_s, $what) = @_;
	return 1 if poll_until(sub { bg_finished($bg) }, $timeout_s, $what);
	$bg->{h}->kill_kill;
	$bg->{finished} = 1;
	$bg->{rc} = -1;
	return 0;
}

# ======================================================= 1. scheduled refresh

my $cron = new_node('cron');
# pg_cron 1.4 runs a job either over libpq, connecting to cron.host (default
# localhost) on the server's port, or, with cron.use_background_workers, in
# a background worker of the server.  A TAP node listens on a Unix socket in
# a temporary directory only (TCP on 127.0.0.1 on Windows, with its own
# authentication set-up), so the default "localhost" does not reach it;
# background workers need no connection, no password and no pg_hba.conf
# entry, whatever the node listens on.  (max_worker_processes, 32 in
# test/sales_kafka.conf, leaves room for them.)
$cron->append_conf('postgresql.conf',
	"cron.use_background_workers = on\nsales_kafka.rollup_worker = off\n");
$cron->start;

# cron.database_name is postgres (test/sales_kafka.conf): pg_cron and
# schedule_kpi_refresh live there; the model lives in shop
$cron->safe_psql('postgres', q{
	CREATE EXTENSION sales_kafka;
	CREATE EXTENSION pg_cron;
	CREATE DATABASE shop;
});
# Fixtures, in a model whose time zone is not the server's (UTC).  By hand:
#   o1/1 LAP 2 x 999.50           = 1999.00  (May, New York)
#   o1/2 MOU 4 x 19.99 - 10 %     =   71.96  (71.964)
#   o2/1 LAP 1 x 999.50 - 20 %    =  799.60
#   o3/1 DSK 1 x 250.00           =  250.00  (June)
#   revenue 3120.56, 4 lines, 3 orders, 8 units, 1040.19 per order;
#   LAP 2798.60 (3 units), DSK 250.00 (1), MOU 71.96 (4);
#   May 2870.56 (2 orders), June 250.00 (1);
#   price paid per unit: 999.50, 799.60 (500 to 1000), 17.99 (10 to 20),
#   250.00 (200 to 500)
$cron->safe_psql('shop', q{
	CREATE EXTENSION sales_kafka;
	SELECT sales_kafka.create_sales_model('store', time_zone => 'America/New_York');
	INSERT INTO store.products VALUES
		('LAP', 'Laptop', 'Technology', 'Computers'),
		('MOU', 'Mouse', 'Technology', 'Accessories'),
		('DSK', 'Desk', 'Furniture', 'Tables');
	INSERT INTO store.order_lines
		(order_id, line, sold_at, customer_id, product_id, quantity, unit_price, discount)
	VALUES ('o1', 1, '2024-05-01 14:00:00+00', 'c1', 'LAP', 2, 999.50, 0),
	       ('o1', 2, '2024-05-01 14:00:00+00', 'c1', 'MOU', 4, 19.99, 0.10),
	       ('o2', 1, '2024-05-02 15:30:00+00', 'c2', 'LAP', 1, 999.50, 0.20),
	       ('o3', 1, '2024-06-01 13:00:00+00', 'c1', 'DSK', 1, 250.00, 0);
});

my $totals_sql = q{SELECT revenue || '|' || coalesce(profit::text, '-') || '|' || sales_count
	|| '|' || order_count || '|' || quantity || '|' || coalesce(average_order_value::text, '-')
	FROM store.kpi_totals};
my $top_sql = q{SELECT string_agg(concat_ws('|', product_id, product_name, revenue, sales_count,
	quantity, revenue_rank, quantity_rank), E'\n') FROM store.kpi_top_products};
is($cron->safe_psql('shop', $totals_sql), '0.00|-|0|0|0|-', 'cron: no KPI before any refresh');
is($cron->safe_psql('shop', $top_sql), '', 'cron: kpi_top_products empty before any refresh');

# the refusals
is( sql_error($cron, 'shop', q{SELECT * FROM sales_kafka.schedule_kpi_refresh('store', '1 minute')}),
	'55000: pg_cron is not installed in database "shop"',
	'cron: schedule_kpi_refresh in a database without pg_cron: 55000');
like(
	sql_error($cron, 'postgres',
		q{SELECT * FROM sales_kafka.schedule_kpi_refresh('store', '90 seconds', 'shop')}),
	qr/^22023: pg_cron cannot run a job every 00:01:30$/,
	'cron: an interval pg_cron cannot do (90 seconds): 22023');
is( sql_error($cron, 'postgres',
		q{SELECT * FROM sales_kafka.schedule_kpi_refresh('store', '7 minutes', 'shop')}),
	'22023: pg_cron cannot run a job every 00:07:00',
	'cron: 7 minutes does not divide an hour: 22023');
is($cron->safe_psql('postgres', 'SELECT count(*) FROM cron.job'), '0', 'cron: the refusals scheduled nothing');

# unscheduling what was never scheduled removes nothing.  psql, not
# safe_psql, from here on: a failure is a failed test, and part 2 still runs.
my ($ret, $out, $err) =
  $cron->psql('postgres', q{SELECT sales_kafka.unschedule_kpi_refresh('store', 'shop')});
is($out, '0', 'cron: unschedule_kpi_refresh with nothing scheduled removes nothing')
  or diag("psql: $err");

# schedule, from pg_cron's database, for the model's database
my $scheduled_at = $cron->safe_psql('postgres', 'SELECT now()');
($ret, $out, $err) = $cron->psql('postgres', q{
	SELECT string_agg(concat_ws(' | ', jobname, schedule, command), E'\n' ORDER BY jobname)
	  FROM sales_kafka.schedule_kpi_refresh('store', '1 minute', 'shop')});
my $scheduled = $ret == 0;
is($out,
	"sales_kafka views shop.store | */1 * * * * | SELECT sales_kafka.refresh_kpis('store')",
	'cron: schedule_kpi_refresh returns its job')
  or diag("psql: $err");
is( $cron->safe_psql('postgres', q{
		SELECT string_agg(concat_ws(' | ', jobname, schedule, database, active), E'\n' ORDER BY jobname)
		  FROM cron.job}),
	"sales_kafka views shop.store | */1 * * * * | shop | t",
	'cron: cron.job holds the job, for database shop');

SKIP:
{
	skip 'schedule_kpi_refresh failed: no job to wait for', 7 unless $scheduled;

	# pg_cron starts jobs on minute boundaries: the first runs start within
	# 60 s.  Checked once a second.
	my $jobs_ran_sql = q{
		SELECT count(DISTINCT j.jobid) FILTER (WHERE d.status = 'succeeded') || ' succeeded, '
		    || count(*) FILTER (WHERE d.status = 'failed') || ' failed'
		  FROM cron.job j JOIN cron.job_run_details d ON d.jobid = j.jobid
		 WHERE j.jobname LIKE 'sales_kafka % shop.store'};
	my $jobs_ran = '';
	my $next_check = 0;
	poll_until(
		sub {
			return 0 if time < $next_check;
			$next_check = time + 1;
			$jobs_ran = $cron->safe_psql('postgres', $jobs_ran_sql);
			$jobs_ran =~ /^1 succeeded/ || $jobs_ran !~ / 0 failed$/;
		},
		150,
		'the pg_cron job to succeed');
	is($jobs_ran, '1 succeeded, 0 failed', 'cron: the job ran, and succeeded')
	  or diag($cron->safe_psql('postgres', q{
		SELECT string_agg(concat_ws(' | ', j.jobname, d.status, d.return_message, d.start_time), E'\n')
		  FROM cron.job_run_details d LEFT JOIN cron.job j ON j.jobid = d.jobid}));
	is( $cron->safe_psql('postgres', qq{
			SELECT count(*) FROM cron.job_run_details d JOIN cron.job j ON j.jobid = d.jobid
			 WHERE j.jobname LIKE 'sales_kafka % shop.store' AND d.status = 'succeeded'
			   AND d.start_time < '$scheduled_at'}),
		'0', 'cron: the runs started after the jobs were scheduled');

	# what the jobs did, in shop
	is($cron->safe_psql('shop', $totals_sql), '3120.56|-|4|3|8|1040.19',
		'cron: kpi_totals has the fixtures\' revenue, lines, orders, units and order value');
	is( $cron->safe_psql('shop', $top_sql),
		"LAP|Laptop|2798.60|2|3|1|2\nDSK|Desk|250.00|1|1|2|3\nMOU|Mouse|71.96|1|4|3|1",
		'cron: kpi_top_products ranks the fixtures\' products');
	is( $cron->safe_psql('shop', q{
			SELECT string_agg(concat_ws('|', month, revenue, order_count), E'\n') FROM store.kpi_growth_yoy}),
		"2024-05-01|2870.56|2\n2024-06-01|250.00|1",
		'cron: kpi_growth_yoy has the fixtures\' months');
	is( $cron->safe_psql('shop', q{
			SELECT string_agg(concat_ws('|', price_band, sales_count), E'\n')
			  FROM store.kpi_price_distribution WHERE sales_count > 0}),
		"10 to 20|1\n200 to 500|1\n500 to 1000|2",
		'cron: kpi_price_distribution has the fixtures\' prices');
	is( $cron->safe_psql('shop', q{
			SELECT s.rolled_up_rows || ' rows, ' || a.rows_waiting || ' waiting, '
			    || (s.rolled_up_at IS NOT NULL) || ' ' || (s.views_refreshed_at IS NOT NULL)
			  FROM store.kpi_state s, store.kpi_as_of a}),
		'4 rows, 0 waiting, true true',
		'cron: kpi_state: 4 lines rolled up, none waiting, rolled_up_at and views_refreshed_at set');
}

# scheduling again replaces the jobs
($ret, $out, $err) = $cron->psql('postgres', q{
	SELECT string_agg(concat_ws(' | ', jobname, schedule), E'\n' ORDER BY jobname)
	  FROM sales_kafka.schedule_kpi_refresh('store', '2 hours', 'shop')});
$scheduled = $ret == 0;
my $rescheduled = "sales_kafka views shop.store | 0 */2 * * *";
is($out, $rescheduled, 'cron: scheduling again, every 2 hours: the views at 0 */2 * * *')
  or diag("psql: $err");
is( $cron->safe_psql('postgres', q{
		SELECT string_agg(concat_ws(' | ', jobname, schedule), E'\n' ORDER BY jobname) FROM cron.job}),
	$rescheduled, 'cron: ... which replaces the job');

($ret, $out, $err) =
  $cron->psql('postgres', q{SELECT sales_kafka.unschedule_kpi_refresh('store', 'shop')});
is($out, $scheduled ? '1' : '0', 'cron: unschedule_kpi_refresh removes the job')
  or diag("psql: $err");
is($cron->safe_psql('postgres', q{SELECT count(*) FROM cron.job WHERE jobname LIKE 'sales_kafka %'}),
	'0', 'cron: cron.job no longer has them');
$cron->stop('fast');

# ================================================= 2. exactly once, crashes

my $nevents = 80_000;    # sale_events shape
my $nlines = 20_000;     # multi-line orders
my $nchunks = 20;        # produced in this many steps of 5,000
my $ev_per_chunk = $nevents / $nchunks;
my $ol_per_chunk = $nlines / $nchunks;

my $node = new_node('consumer');
# PostgreSQL::Test::Cluster turns crash restarts off; kills a and c need them
$node->append_conf('postgresql.conf',
	"restart_after_crash = on\nsales_kafka.rollup_worker = off\n");
$node->start;
my $producer = new_node('producer');
$producer->start;

my $events_topic = create_topic('kpi_eo_events', 4);
my $orders_topic = create_topic('kpi_eo_orders', 2);

# The events as generated, i = 1 .. 80,000 and j = 1 .. 20,000.  sold_at
# runs from 2024-03-28 to 2024-04-03 (Berlin) with the stream, a
# millisecond jitter, and every tenth event (eighth order line) one to
# three days late.  Order o<k> has lines j = k, k + 7001, k + 14002 (lines
# 1, 2, 3 as they exist), produced far apart: its lines land in different
# refreshes.  One order in 50 has no customer.
$producer->safe_psql('postgres', qq{
	CREATE EXTENSION sales_kafka;
	CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka
		OPTIONS ("enable.idempotence" 'true');
	CREATE FOREIGN TABLE out_events (
		"partition" int OPTIONS (kafka 'partition'),
		product_name text, quantity int, price numeric(12,2),
		sold_at timestamptz OPTIONS (field 'timestamp'))
	SERVER kafka OPTIONS (topic '$events_topic', format 'json');
	CREATE FOREIGN TABLE out_orders (
		"partition" int OPTIONS (kafka 'partition'),
		order_id text, line int, customer_id text, product_name text,
		quantity int, price numeric(12,2), discount numeric(5,4), profit numeric(14,2),
		sold_at timestamptz OPTIONS (field 'timestamp'))
	SERVER kafka OPTIONS (topic '$orders_topic', format 'json');

	-- the k-th of n sales: k / n of six days in, a jitter of milliseconds,
	-- late_days late
	CREATE FUNCTION sold_at(k int, n int, jitter int, late_days int) RETURNS timestamptz
	LANGUAGE sql STABLE AS \$\$
		SELECT timestamptz '2024-03-28 00:00:00 Europe/Berlin' + k * interval '6 days' / n
		       + (k::bigint * jitter % 60000) * interval '1 ms' - late_days * interval '1 day'
	\$\$;
	CREATE FUNCTION events(lo int, hi int)
	RETURNS TABLE (part int, product_name text, quantity int, price numeric, sold_at timestamptz)
	LANGUAGE sql STABLE AS \$\$
		SELECT i % 4, 'P' || lpad((i * 31 % 60)::text, 2, '0'), 1 + i % 7,
		       round(1 + (i::bigint * 7919 % 50000) / 100.0, 2),
		       sold_at(i, $nevents, 997, CASE WHEN i % 10 = 3 THEN 1 + i % 3 ELSE 0 END)
		  FROM generate_series(lo, hi) AS i
	\$\$;
	CREATE FUNCTION order_lines(lo int, hi int)
	RETURNS TABLE (part int, order_id text, line int, customer_id text, product_name text,
	               quantity int, price numeric, discount numeric, profit numeric, sold_at timestamptz)
	LANGUAGE sql STABLE AS \$\$
		SELECT j % 2, 'o' || (j % 7001), j / 7001 + 1,
		       CASE WHEN j % 7001 % 50 = 0 THEN NULL ELSE 'c' || (j % 7001 % 300) END,
		       'P' || lpad((j * 17 % 60)::text, 2, '0'), 1 + j % 5,
		       round(5 + (j::bigint * 37 % 99500) / 100.0, 2),
		       (j % 4) * 0.05,
		       CASE WHEN j % 5 <> 0
		            THEN round((1 + j % 5) * (5 + (j::bigint * 37 % 99500) / 100.0) * 0.15, 2) END,
		       sold_at(j, $nlines, 991, CASE WHEN j % 8 = 5 THEN 1 + j % 2 ELSE 0 END)
		  FROM generate_series(lo, hi) AS j
	\$\$;
});

# The model: sale_events through create_sales_pipelines (pipeline
# eo_order_lines), the multi-line orders through a foreign table and a
# pipeline of ours (smaller batches: more writers in flight at once).
$node->safe_psql('postgres', qq{
	CREATE EXTENSION sales_kafka;
	CREATE EXTENSION pageinspect;
	CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka;
	SELECT sales_kafka.create_sales_model('eo', time_zone => 'Europe/Berlin');
	SELECT sales_kafka.create_sales_pipelines('eo', 'sale_events', 'kafka', '$events_topic');
	CREATE FOREIGN TABLE eo.src_orders (
		order_id text, line int, customer_id text,
		product_id text OPTIONS (field 'product_name'),
		quantity int, unit_price numeric(12,2) OPTIONS (field 'price'),
		discount numeric(5,4), profit numeric(14,2),
		sold_at timestamptz OPTIONS (field 'timestamp'))
	SERVER kafka OPTIONS (topic '$orders_topic', format 'json');
	SELECT sales_kafka.create_pipeline('eo_multi_line', 'eo.src_orders', 'eo.order_lines',
		batch_size => 500);
	SELECT sales_kafka.start_pipeline('eo_multi_line');
	-- the refresh loops stop when this says so
	CREATE TABLE loop_ctl (stop boolean NOT NULL);
	INSERT INTO loop_ctl VALUES (false);
});
my @pipelines = ('eo_order_lines', 'eo_multi_line');

sub wait_pipelines_running
{
	my ($what) = @_;
	my $ok = 1;
	for my $p (@pipelines)
	{
		$ok &&= wait_pipeline_running($node, 'postgres', $p, 1, $wait_s, "pipeline $p $what");
	}
	return $ok;
}
ok(wait_pipelines_running('to run'), 'eo: both pipelines run');

# produce chunk $k (1 .. $nchunks): 4,000 events and 1,000 order lines
my $produced = 0;

sub produce_chunk
{
	my ($k) = @_;
	my ($e1, $e2) = (($k - 1) * $ev_per_chunk + 1, $k * $ev_per_chunk);
	my ($o1, $o2) = (($k - 1) * $ol_per_chunk + 1, $k * $ol_per_chunk);
	$producer->safe_psql('postgres', qq{
		INSERT INTO out_events ("partition", product_name, quantity, price, sold_at)
			SELECT * FROM events($e1, $e2);
		INSERT INTO out_orders ("partition", order_id, line, customer_id, product_name,
		                        quantity, price, discount, profit, sold_at)
			SELECT * FROM order_lines($o1, $o2);
	});
	$produced = $k;
	return;
}

sub order_lines_count
{
	return try_query($node, 'postgres', 'SELECT count(*) FROM eo.order_lines');
}

# The refresh loops, as schedule_kpi_refresh's two pg_cron jobs would run
# them, only faster: refresh_rollups every 50 ms, and refresh_kpis (the
# rollups, then the time of it) every 250 ms, each call in a
# transaction of its own, until loop_ctl.stop.  Each prints "refreshed N"
# after each call.
my @loops;

sub start_refresh_loop
{
	my ($function, $pause) = @_;
	my $script = '';
	for (1 .. 6000)
	{
		$script .= "SELECT sales_kafka.$function('eo') AS n \\gset\n"
		  . "\\echo refreshed :n\n"
		  . "SELECT stop FROM loop_ctl, pg_sleep($pause) \\gset\n"
		  . "\\if :stop\n\\echo stopped\n\\q\n\\endif\n";
	}
	$script .= "\\echo exhausted\n";
	my $loop = start_bg_psql($node, 'postgres', "kpi_loop_$function", $script);
	push @loops, $loop;
	return $loop;
}

sub start_refresh_loops
{
	return [ start_refresh_loop('refresh_rollups', 0.05), start_refresh_loop('refresh_kpis', 0.25) ];
}

# "N refreshes, R rows" of a loop so far
sub loop_progress
{
	my ($loop) = @_;
	bg_finished($loop);
	my @n = $loop->{out} =~ /^refreshed (\d+)$/mg;
	my $rows = 0;
	$rows += $_ for @n;
	return (scalar(@n), $rows);
}

# Wait until the loops have rolled up rows, while both run.
sub wait_loop_rows
{
	my ($loops, $what) = @_;
	return poll_until(
		sub {
			my $rows = 0;
			$rows += (loop_progress($_))[1] for @$loops;
			$rows > 0 || grep { $_->{finished} } @$loops;
		},
		$wait_s, $what) && !grep { $_->{finished} } @$loops;
}

# The rollups against a recomputation from the order lines, in one
# snapshot; $filter chooses the lines (the rollups' own claim by default).
# One line per rollup table and grain:
#   "TABLE GRAIN: E expected, G in the rollup, M missing, X extra"
# then "state: R rolled up, L lines up to rolled_up_through".
# order_count: an order counts once, on its line with the smallest
# ingest_id.  rollup_product is not kept per minute (the decided grains:
# hours, days, months and all time), rollup_customer only per hour, so
# nothing is expected at the others.
sub rollup_check_sql
{
	my ($filter) = @_;
	$filter //= 'l.ingest_id <= (SELECT upto FROM st)';
	return qq{
WITH st AS MATERIALIZED (SELECT time_zone AS tz, rolled_up_through AS upto, rolled_up_rows FROM eo.kpi_state),
lines AS MATERIALIZED (
    SELECT l.sold_at, l.product_id, coalesce(l.customer_id, o.customer_id) AS customer_id,
           l.quantity, l.revenue, l.profit,
           l.ingest_id = min(l.ingest_id) OVER (PARTITION BY l.order_id) AS opens_order
      FROM eo.order_lines l LEFT JOIN eo.orders o ON o.order_id = l.order_id
     WHERE $filter),
by_grain AS MATERIALIZED (
    SELECT g.grain,
           CASE WHEN g.grain = 'all' THEN timestamptz '-infinity'
                ELSE date_trunc(g.grain, l.sold_at, st.tz) END AS bucket,
           l.product_id, l.customer_id, l.quantity, l.revenue, l.profit, l.opens_order
      FROM lines l CROSS JOIN st
     CROSS JOIN (VALUES ('minute'), ('hour'), ('day'), ('month'), ('all')) AS g(grain)),
expected AS MATERIALIZED (
    SELECT 'rollup_total' AS tbl, grain, bucket, NULL::text AS key,
           count(*) AS sales_count, count(*) FILTER (WHERE opens_order) AS order_count,
           sum(quantity) AS quantity, sum(revenue) AS revenue, sum(profit) AS profit
      FROM by_grain GROUP BY grain, bucket
    UNION ALL
    SELECT 'rollup_product', grain, bucket, product_id,
           count(*), count(*) FILTER (WHERE opens_order), sum(quantity), sum(revenue), sum(profit)
      FROM by_grain WHERE grain <> 'minute' GROUP BY grain, bucket, product_id
    UNION ALL
    SELECT 'rollup_customer', grain, bucket, customer_id,
           count(*), count(*) FILTER (WHERE opens_order), sum(quantity), sum(revenue), sum(profit)
      FROM by_grain WHERE grain = 'hour' GROUP BY grain, bucket, customer_id),
got AS MATERIALIZED (
    SELECT 'rollup_total' AS tbl, grain, bucket, NULL::text AS key,
           sales_count, order_count, quantity, revenue, profit
      FROM eo.rollup_total
    UNION ALL
    SELECT 'rollup_product', grain, bucket, product_id,
           sales_count, order_count, quantity, revenue, profit
      FROM eo.rollup_product
    UNION ALL
    SELECT 'rollup_customer', grain, bucket, customer_id,
           sales_count, order_count, quantity, revenue, profit
      FROM eo.rollup_customer),
missing AS MATERIALIZED (SELECT * FROM expected EXCEPT SELECT * FROM got),
extra AS MATERIALIZED (SELECT * FROM got EXCEPT SELECT * FROM expected)
SELECT format('%s %s: %s expected, %s in the rollup, %s missing, %s extra', t.tbl, g.grain,
              (SELECT count(*) FROM expected e WHERE e.tbl = t.tbl AND e.grain = g.grain),
              (SELECT count(*) FROM got e WHERE e.tbl = t.tbl AND e.grain = g.grain),
              (SELECT count(*) FROM missing e WHERE e.tbl = t.tbl AND e.grain = g.grain),
              (SELECT count(*) FROM extra e WHERE e.tbl = t.tbl AND e.grain = g.grain))
  FROM (VALUES (1, 'rollup_total'), (2, 'rollup_product'), (3, 'rollup_customer')) AS t(o, tbl),
       (VALUES (1, 'minute'), (2, 'hour'), (3, 'day'), (4, 'month'), (5, 'all')) AS g(o, grain)
UNION ALL
SELECT format('state: %s rolled up, %s lines up to rolled_up_through',
              (SELECT rolled_up_rows FROM st),
              (SELECT count(*) FROM eo.order_lines l WHERE l.ingest_id <= (SELECT upto FROM st)))
UNION ALL
(SELECT format('sample: %s %s %s %s %s', CASE WHEN m THEN 'missing' ELSE 'extra' END, tbl, grain, bucket, key)
   FROM (SELECT true AS m, * FROM missing UNION ALL SELECT false, * FROM extra) d
  ORDER BY tbl, grain, bucket LIMIT 10)};
}

# After a restart: the committed rollups hold exactly the lines they claim.
sub check_rollups_consistent
{
	my ($what) = @_;
	my @lines = split /\n/, $node->safe_psql('postgres', rollup_check_sql());
	my @bad = grep {
		     /^sample:/
		  || (/: (\d+) expected, (\d+) in the rollup, (\d+) missing, (\d+) extra$/
			&& ($1 != $2 || $3 || $4))
		  || (/^state: (\d+) rolled up, (\d+) lines/ && $1 != $2)
	} @lines;
	my ($state) = grep { /^state:/ } @lines;
	is_deeply(\@bad, [], "eo: $what: the committed rollups equal a recomputation of the lines they cover ($state)");
	return;
}

# The backend of a refresh loop, if it is inside a refresh and blocked by
# the session of application $blocker: "pid xid wait_event" (xid "-"
# while the refresh has none: waiting for the writers, it has locked
# nothing yet).  Several refreshes may wait for the writers at once (they
# take turns on kpi_state's row only after that): the one of the lowest
# pid, or the one of $only_pid.
sub refresh_blocked_by
{
	my ($blocker, $only_pid) = @_;
	my $only = defined $only_pid ? "AND a.pid = $only_pid" : '';
	my $r = try_query($node, 'postgres', qq{
		SELECT a.pid || ' ' || coalesce(a.backend_xid::text, '-') || ' ' || a.wait_event
		  FROM pg_stat_activity a, pg_stat_activity b
		 WHERE a.application_name LIKE 'kpi_loop_%' AND a.state = 'active'
		   AND a.query LIKE 'SELECT sales_kafka.refresh_%' $only
		   AND b.application_name = '$blocker' AND b.pid = ANY (pg_blocking_pids(a.pid))
		 ORDER BY a.pid LIMIT 1});
	return defined $r && $r =~ /^(\d+) (\d+|-) (\S+)$/ ? ($1, $2 eq '-' ? undef : $2, $3) : ();
}

# Start a session that takes a lock, then holds it (until a crash ends it).
sub start_blocker
{
	my ($app, $lock_sql) = @_;
	my $b = start_bg_psql($node, 'postgres', $app,
		"BEGIN;\n$lock_sql;\nSELECT pg_sleep(600);\n");
	ok( poll_until(
			sub {
				my $r = try_query($node, 'postgres', qq{
					SELECT count(*) FROM pg_stat_activity
					 WHERE application_name = '$app' AND query LIKE '%pg_sleep%' AND state = 'active'});
				defined $r && $r eq '1';
			},
			$wait_s, "session $app to hold its lock"),
		"eo: session $app holds its lock");
	return $b;
}

# Wait until a refresh is blocked by the session of application $app;
# returns its pid, xid and wait event.
sub wait_refresh_blocked
{
	my ($what, $app, $on) = @_;
	my ($pid, $xid, $wait);
	ok(poll_until(sub { ($pid, $xid, $wait) = refresh_blocked_by($app); defined $pid },
			$wait_s, "a refresh to wait on $on ($what)"),
		"eo: $what: a refresh waits on $on");
	return ($pid, $xid, $wait);
}

# Stop a refresh half-way through its writes.  Of its three upserts,
# rollup_customer and rollup_product are written first, then rollup_total,
# whose 'all' row every refresh with new lines updates: a session (of
# application $app) holding that row FOR UPDATE stops the refresh there,
# once chunk $chunk gives it new lines.  Returns the blocking session and
# the refresh's pid.
sub refresh_stopped_mid_write
{
	my ($what, $app, $chunk) = @_;
	my $blocker = start_blocker($app,
		q{SELECT 1 FROM eo.rollup_total WHERE grain = 'all' FOR UPDATE});
	produce_chunk($chunk);
	my ($pid, $xid) = wait_refresh_blocked($what, $app, "the locked 'all' row of rollup_total");
	my $written = defined $xid ? uncommitted_rollup_rows($xid) : 'none';
	like($written,
		qr/^eo\.rollup_customer [1-9]\d*, eo\.rollup_product [1-9]\d*, eo\.rollup_total \d+$/,
		"eo: $what: the refresh has written rollup rows, uncommitted ($written)");
	return ($blocker, $pid);
}

# Uncommitted rows the transaction $xid has written into each rollup table
# (pageinspect reads them from the pages).
sub uncommitted_rollup_rows
{
	my ($xid) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(format('%s %s', r, (
			SELECT count(*)
			  FROM generate_series(0, pg_relation_size(r) / current_setting('block_size')::int - 1) AS p,
			       heap_page_items(get_raw_page(r::text, p::int)) AS h
			 WHERE h.t_xmin::text = '$xid')), ', ')
		  FROM unnest('{eo.rollup_customer,eo.rollup_product,eo.rollup_total}'::regclass[]) AS r});
}

# kill -9 of a backend: wait for the crash restart it causes.
sub kill_backend
{
	my ($pid, $what) = @_;
	my $log_offset = -s $node->logfile;
	note "$what: kill -9 of backend $pid";
	kill 'KILL', $pid;
	ok( poll_until(
			sub {
				slurp_file($node->logfile, $log_offset) =~
				  /all server processes terminated; reinitializing/;
			},
			$wait_s, "the crash restart ($what)"),
		"eo: $what: the postmaster crash-restarted");
	like(slurp_file($node->logfile, $log_offset),
		qr/\(PID $pid\) was terminated by signal 9/,
		"eo: $what: the server log names the killed refresh backend");
	return;
}

# kill -9 of the postmaster; $while_down runs once every process of it has
# exited; then the server starts again.
sub kill_postmaster
{
	my ($what, $while_down) = @_;
	my $pm = (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0];
	my @children = postmaster_children($pm);
	note "$what: kill -9 of postmaster $pm";
	$node->kill9;
	ok( poll_until(sub { !grep { process_alive($_) } @children }, 60,
			"the processes of the killed postmaster to exit ($what)"),
		"eo: $what: every process of the killed postmaster exited");
	$while_down->() if $while_down;
	# the new postmaster takes a lock file naming a pid that still exists
	# (a zombie not reaped yet) for a live postmaster's
	poll_until(sub { !kill(0, $pm) }, 60, 'the killed postmaster to be reaped');
	ok($node->start(fail_ok => 1), "eo: $what: the server starts again");
	return;
}

# After a kill: the loops and the blocker ended with the server; the
# pipelines come back by themselves; the rollups are consistent; new loops
# start.
sub after_kill
{
	my ($what, $loops, $blocker) = @_;
	my $ended = 1;
	$ended &&= bg_reap($_, $wait_s, "the refresh loops to end ($what)") for @$loops;
	ok($ended, "eo: $what: the sessions of the refresh loops ended with the crash");
	bg_reap($blocker, $wait_s, "the blocking session to end ($what)") if $blocker;
	ok(wait_pipelines_running("to come back ($what)"),
		"eo: $what: both pipelines came back by themselves");
	check_rollups_consistent("after $what");
	return start_refresh_loops();
}

# ---------------------------------------------------------------- the run

produce_chunk(1);
produce_chunk(2);
my $loops = start_refresh_loops();
ok(wait_loop_rows($loops, 'the first rollups'), 'eo: the refresh loops roll up rows');

# a. the refresh backend, half-way through its writes
{
	my $what = 'kill a (refresh backend, mid-write)';
	my ($blocker, $pid) = refresh_stopped_mid_write($what, 'kpi_blocker_a', 3);
	kill_backend($pid, $what) if defined $pid;
	$loops = after_kill($what, $loops, $blocker);
	produce_chunk(4);
	ok(wait_loop_rows($loops, "rollups after $what"), "eo: $what: the new refresh loops roll up rows");
}

# b. the postmaster, the same way; messages arrive while the server is down
{
	my $what = 'kill b (postmaster, mid-write)';
	my ($blocker) = refresh_stopped_mid_write($what, 'kpi_blocker_b', 5);
	kill_postmaster($what, sub { produce_chunk(6) });
	$loops = after_kill($what, $loops, $blocker);
	produce_chunk(7);
	ok(wait_loop_rows($loops, "rollups after $what"), "eo: $what: the new refresh loops roll up rows");
}

# c. the refresh backend while it waits for the writers of the order lines
# (a session holds ROW EXCLUSIVE on them, as a writer does); the pipelines
# go on writing meanwhile
{
	my $what = 'kill c (refresh backend, waiting for writers)';
	my $blocker = start_blocker('kpi_blocker_c',
		q{LOCK TABLE eo.order_lines IN ROW EXCLUSIVE MODE});
	my ($pid, $xid, $wait) =
	  wait_refresh_blocked($what, 'kpi_blocker_c', 'the session writing the order lines');
	is($wait, 'virtualxid', "eo: $what: it waits for the writer's transaction to end");
	my $before = order_lines_count() // 0;
	produce_chunk(8);
	my $target = $before + $ev_per_chunk + $ol_per_chunk;
	ok( poll_until(
			sub { my $n = order_lines_count(); defined $n && $n >= $target },
			$wait_s, 'the pipelines to write while a refresh waits'),
		"eo: $what: the pipelines write a whole chunk while the refresh waits");
	# (the other loop's refresh may have come to wait too, since)
	my ($still) = defined $pid ? refresh_blocked_by('kpi_blocker_c', $pid) : ();
	ok(defined $pid && defined $still && $still == $pid, "eo: $what: the same refresh still waits");
	kill_backend($pid, $what) if defined $pid;
	$loops = after_kill($what, $loops, $blocker);
	produce_chunk(9);
	ok(wait_loop_rows($loops, "rollups after $what"), "eo: $what: the new refresh loops roll up rows");
}

# d. the postmaster while a refresh runs, unforced
{
	my $what = 'kill d (postmaster, during a refresh)';
	produce_chunk(10);
	my $active = poll_until(
		sub {
			my $r = try_query($node, 'postgres', q{
				SELECT count(*) FROM pg_stat_activity
				 WHERE application_name LIKE 'kpi_loop_%' AND state = 'active'
				   AND query LIKE 'SELECT sales_kafka.refresh_%'});
			defined $r && $r ne '0';
		},
		$wait_s, 'a refresh to run');
	ok($active, "eo: $what: caught a refresh running");
	kill_postmaster($what, sub { produce_chunk(11) });
	$loops = after_kill($what, $loops, undef);
}

# the rest of the stream, with the loops running
produce_chunk($_) for ($produced + 1 .. $nchunks);
my $total = $nevents + $nlines;
ok( poll_until(
		sub { my $n = order_lines_count(); defined $n && $n >= $total },
		$wait_s, "all $total order lines"),
	"eo: the pipelines wrote $total order lines");
ok( poll_until(
		sub {
			my $r = try_query($node, 'postgres', q{SELECT rows_waiting FROM eo.kpi_as_of});
			defined $r && $r eq '0';
		},
		$wait_s, 'the loops to roll up every line'),
	'eo: the refresh loops caught up');

$node->safe_psql('postgres', 'UPDATE loop_ctl SET stop = true');
my $stopped = 1;
$stopped &&= bg_reap($_, $wait_s, 'the refresh loops to stop') && $_->{out} =~ /^stopped$/m
  for @$loops;
ok($stopped, 'eo: the last refresh loops stopped when asked');
my ($refreshes, $loop_rows) = (0, 0);
for my $l (@loops)
{
	my ($n, $rows) = loop_progress($l);
	$refreshes += $n;
	$loop_rows += $rows;
}
# more rows than lines, as a rule: with synchronous_commit = off
# (test/sales_kafka.conf) the refreshes committed just before a crash are
# lost with it, and done again after it
note "refresh loops: " . scalar(@loops) . " sessions, $refreshes refreshes returned, $loop_rows rows";
my @loop_errors = grep { /ERROR/ } map { $_->{err} } @loops;
is(scalar(@loop_errors), 0, 'eo: no refresh of any loop failed with an error (only the kills ended them)')
  or diag(join("\n---\n", @loop_errors));

is($node->safe_psql('postgres', q{SELECT sales_kafka.refresh_rollups('eo')}),
	'0', 'eo: a last refresh_rollups finds nothing new');
is($node->safe_psql('postgres', q{SELECT sales_kafka.refresh_kpis('eo')}),
	'0', 'eo: a last refresh_kpis finds nothing new either');
is( $node->safe_psql('postgres', q{
		WITH mv AS (SELECT product_id, revenue, profit, sales_count, quantity FROM eo.kpi_top_products),
		     l AS (SELECT product_id, sum(revenue), sum(profit), count(*), sum(quantity)
		             FROM eo.order_lines GROUP BY product_id)
		SELECT (SELECT count(*) FROM mv) || ' products, '
		    || (SELECT count(*) FROM (SELECT * FROM mv EXCEPT SELECT * FROM l) d) || ' missing, '
		    || (SELECT count(*) FROM (SELECT * FROM l EXCEPT SELECT * FROM mv) d) || ' extra'}),
	'60 products, 0 missing, 0 extra',
	'eo: kpi_top_products equals a recomputation from order_lines');

# ---------------------------------------------------------------- the end

is( $node->safe_psql('postgres', q{
		SELECT (SELECT count(*) FROM eo.order_lines) || ' lines, '
		    || rolled_up_rows || ' rolled up, ' || rows_waiting || ' waiting'
		  FROM eo.kpi_as_of}),
	"$total lines, $total rolled up, 0 waiting",
	"eo: $total order lines, every one rolled up once, none waiting");
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM sales_kafka.dead_letter
		 WHERE pipeline IN ('eo_order_lines', 'eo_multi_line')}),
	'0', 'eo: no message went to the dead letters');
# covered offsets: the whole of both topics
is( $node->safe_psql('postgres', qq{
		SELECT string_agg(format('%s/%s: covered %s, committed %s, high %s', c.topic, c.partition,
		                         c.covered_offset, c.committed_offset, w.high), '; ')
		  FROM eo.kpi_as_of_partitions c
		  LEFT JOIN (SELECT '$events_topic' AS topic, * FROM sales_kafka.watermarks('kafka', '$events_topic')
		             UNION ALL
		             SELECT '$orders_topic', * FROM sales_kafka.watermarks('kafka', '$orders_topic')) w
		         ON w.topic = c.topic AND w.partition = c.partition
		 WHERE c.covered_offset IS DISTINCT FROM c.committed_offset
		    OR c.committed_offset IS DISTINCT FROM w.high}),
	'', 'eo: kpi_as_of_partitions: every partition covered up to its committed offset and its high watermark');
is( $node->safe_psql('postgres', q{
		SELECT count(*) || ' partitions, ' || sum(covered_offset) || ' messages'
		  FROM eo.kpi_as_of_partitions}),
	"6 partitions, $total messages", 'eo: kpi_as_of_partitions covers the 6 partitions\' messages');

# every rollup row against a full recomputation
my @check = split /\n/, $node->safe_psql('postgres', rollup_check_sql('true'));
for my $line (grep { /^rollup_/ } @check)
{
	my ($tbl, $grain, $e, $g, $m, $x) =
	  $line =~ /^(\S+) (\S+): (\d+) expected, (\d+) in the rollup, (\d+) missing, (\d+) extra$/
	  or die "unexpected check line: $line";
	if (($tbl ne 'rollup_total' && $grain eq 'minute')
		|| ($tbl eq 'rollup_customer' && $grain ne 'hour'))
	{
		is("$g", '0', "eo: final: $tbl keeps no $grain rows ($line)");
		next;
	}
	ok($e > 0 && $g == $e && $m == 0 && $x == 0,
		"eo: final: $tbl $grain equals the recomputation from order_lines ($line)");
}
is_deeply([ grep { /^sample:/ } @check ], [], 'eo: final: no rollup row differs')
  or diag(join("\n", @check));

# the totals, as the producer generated them
my $expected_totals = $producer->safe_psql('postgres', qq{
	WITH l AS (
		SELECT quantity, round(quantity * price, 2) AS revenue, NULL::numeric AS profit,
		       NULL::text AS order_id
		  FROM events(1, $nevents)
		UNION ALL
		SELECT quantity, round(quantity * price * (1 - discount), 2), profit, order_id
		  FROM order_lines(1, $nlines))
	SELECT count(*) || '|' || (count(*) FILTER (WHERE order_id IS NULL) + count(DISTINCT order_id))
	    || '|' || sum(quantity) || '|' || sum(revenue) || '|' || sum(profit)
	  FROM l});
is( $node->safe_psql('postgres', q{
		SELECT sales_count || '|' || order_count || '|' || quantity || '|' || revenue || '|' || profit
		  FROM eo.rollup_total WHERE grain = 'all'}),
	$expected_totals,
	"eo: all time: lines, orders, units, revenue and profit as generated ($expected_totals)");
is( $node->safe_psql('postgres', q{
		SELECT sales_count || '|' || order_count || '|' || quantity || '|' || revenue || '|' || profit
		  FROM eo.kpi_totals}),
	$expected_totals, 'eo: kpi_totals says the same');
is( $node->safe_psql('postgres', q{
		SELECT count(DISTINCT date_trunc('month', sold_at, 'Europe/Berlin')) || ' months, '
		    || (min(sold_at) < timestamptz '2024-03-28 00:00 Europe/Berlin') || ' '
		    || (max(sold_at) > timestamptz '2024-04-02 00:00 Europe/Berlin')
		  FROM eo.order_lines}),
	'2 months, true true',
	'eo: the sales span the month end and the DST change, late ones before the stream\'s start');

# ------------------------------------ the server log

check_server_log($node, 1);

$node->stop('fast');
$producer->stop('fast');
done_testing();
