# The rollup worker keeps a sales model's KPIs current by itself, exactly
# once (src/rollup_worker.c):
#
#   1. With no pg_cron job and no call of refresh_rollups, order lines
#      written by plain SQL and by a pipeline appear in kpi_totals and
#      kpi_sales_per_minute by themselves; the pipeline's lines also with a
#      poll interval of an hour (its worker wakes the rollup worker).
#   2. Two sessions calling refresh_rollups in a loop while lines are
#      written, besides the worker, never count a line twice: the rollups
#      equal a full recomputation (rebuild_rollups), row for row.
#   3. kill -9 of the rollup worker, then of the postmaster, each while the
#      worker is in the middle of a rollup (another session holds a row of
#      rollup_total, so the worker waits half-way through its writes): after
#      the restart the worker catches up, and the rollups equal a full
#      recomputation.
#   4. Models dropped while the worker rolls them up: no error in the log,
#      and the worker goes on.
#
# Waits poll with bounded timeouts; no step waits a fixed time.  Runs
# against a real Kafka too.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;

my $wait_s = 90;

my $node = new_node('rollups');
$node->append_conf('postgresql.conf',
	"restart_after_crash = on\nsales_kafka.rollup_poll_interval = '100ms'\n");
$node->start;

# A psql running $script in the background (see t/006_kpi_freshness.pl).
my $bg_count = 0;

sub start_bg_psql
{
	my ($script) = @_;
	my $file = "${PostgreSQL::Test::Utils::tmp_check}/rw_bg_" . ++$bg_count . '.sql';
	open(my $fh, '>', $file) or die "cannot write $file: $!";
	print $fh $script;
	close($fh);
	my $bg = { out => '', err => '' };
	$bg->{h} = IPC::Run::start(
		[
			$node->installed_command('psql'), '-X', '-A', '-t', '-q',
			'-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-f', $file
		],
		'<', '/dev/null', '>', \$bg->{out}, '2>', \$bg->{err});
	return $bg;
}

# Wait until a background psql exits; its exit status
sub bg_wait
{
	my ($bg, $what) = @_;
	poll_until(
		sub { $bg->{h}->pump_nb; !$bg->{h}->pumpable },
		$wait_s, $what)
	  or $bg->{h}->kill_kill;
	$bg->{h}->finish;
	return $? >> 8;
}

sub value
{
	my ($sql) = @_;
	return try_query($node, 'postgres', $sql) // '';
}

# the pid of the rollup worker, once one runs
sub rollup_worker_pid
{
	my $pid;
	poll_until(
		sub {
			$pid = value(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'sales_kafka rollups'});
			$pid ne '';
		},
		$wait_s, 'the rollup worker');
	return $pid;
}

# poll until every line of model rw is in its rollups (after a crash the
# sequence, and so the progress, may lie beyond the last line)
sub caught_up
{
	my ($what) = @_;
	return poll_until(
		sub { value('SELECT rows_waiting = 0 AND rolled_up_through >= (SELECT max(ingest_id) FROM rw.order_lines)'
				  . ' FROM rw.kpi_as_of, rw.kpi_state') eq 't' },
		$wait_s, $what);
}

# the rollups equal a full recomputation, row for row
sub rollups_equal_rebuild
{
	my ($what) = @_;
	$node->safe_psql('postgres', q{
		DROP TABLE IF EXISTS snap;
		CREATE TABLE snap AS SELECT * FROM rollup_rows();
		SELECT sales_kafka.rebuild_rollups('rw');
	});
	is( value(q{SELECT count(*) FROM ((TABLE snap EXCEPT SELECT * FROM rollup_rows())
		                                UNION ALL (SELECT * FROM rollup_rows() EXCEPT TABLE snap)) d}),
		'0', "$what: the rollups equal a full recomputation, row for row");
	return;
}

my $topic = create_topic('rw_events', 2);
$node->safe_psql('postgres', qq{
	CREATE EXTENSION sales_kafka;
	CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka;
	SELECT sales_kafka.create_sales_model('rw', time_zone => 'Europe/Berlin');
	-- n lines in orders of one to three lines, from line number "first" on
	CREATE PROCEDURE add_lines(first int, n int) LANGUAGE sql AS \$\$
		INSERT INTO rw.order_lines (order_id, line, sold_at, customer_id, product_id, quantity, unit_price)
		SELECT 'q' || (i / 3), i % 3 + 1, now() - (i % 97) * interval '1 minute',
		       'c' || (i % 11), 'p' || (i % 7), 1 + i % 4, 10 + i % 13
		  FROM generate_series(first, first + n - 1) i
	\$\$;
	CREATE FUNCTION rollup_rows() RETURNS SETOF text LANGUAGE sql AS \$\$
		SELECT 'total ' || t::text FROM rw.rollup_total t
		UNION ALL SELECT 'product ' || t::text FROM rw.rollup_product t
		UNION ALL SELECT 'customer ' || t::text FROM rw.rollup_customer t
		UNION ALL SELECT 'group ' || t::text FROM rw.rollup_customer_group t
		UNION ALL SELECT 'band ' || t::text FROM rw.rollup_price_band t
	\$\$;
});

# ============================================== 1. by themselves

my $worker = rollup_worker_pid();
ok($worker, 'a rollup worker runs for the database with a model');
is(value(q{SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'}), '0', 'no pg_cron here');

$node->safe_psql('postgres', 'CALL add_lines(0, 3000)');
ok( poll_until(sub { value('SELECT sales_count FROM rw.kpi_totals') eq '3000' },
		$wait_s, 'the SQL lines in kpi_totals'),
	'lines written by plain SQL appear in kpi_totals by themselves');
is( value('SELECT sum(sales_count) || \' \' || sum(order_count) FROM rw.kpi_sales_per_minute'),
	value(q{SELECT count(*) || ' ' || count(DISTINCT order_id) FROM rw.order_lines}),
	'and in kpi_sales_per_minute, each order once');

$node->safe_psql('postgres',
	qq{SELECT sales_kafka.create_sales_pipelines('rw', 'sale_events', 'kafka', '$topic')});
produce($topic, undef,
	map { qq({"product_name":"P$_","quantity":2,"price":5.50,"timestamp":"2024-03-31T01:3$_:00+01:00"}) }
	  (0 .. 9));
ok( poll_until(sub { value('SELECT sales_count FROM rw.kpi_totals') eq '3010' },
		$wait_s, 'the pipeline\'s lines in kpi_totals'),
	'lines written by a pipeline appear in kpi_totals by themselves');

# pipelines wake the worker: no polling needed for their lines
$node->append_conf('postgresql.conf', "sales_kafka.rollup_poll_interval = '1h'\n");
$node->reload;
poll_until(sub { value('SHOW sales_kafka.rollup_poll_interval') eq '1h' }, $wait_s, 'the reload');
produce($topic, undef,
	map { qq({"product_name":"P$_","quantity":1,"price":3.00,"timestamp":"2024-04-01T10:0$_:00+02:00"}) }
	  (0 .. 9));
ok( poll_until(sub { value('SELECT sales_count FROM rw.kpi_totals') eq '3020' },
		$wait_s, 'the pipeline\'s lines, no polling'),
	'with an hour between polls, the pipeline wakes the worker for its lines');
is( value(q{SELECT sum(sales_count) FROM rw.kpi_sales_per_minute WHERE period_start < '2024-05-01'}),
	'20', 'kpi_sales_per_minute has the pipeline\'s 20 lines');
$node->append_conf('postgresql.conf', "sales_kafka.rollup_poll_interval = '100ms'\n");
$node->reload;

# ============================================== 2. with manual refreshes

my @loops = map {
	my $base = 100_000 * $_;
	start_bg_psql(qq{
		DO \$\$
		BEGIN
			FOR i IN 0 .. 59 LOOP
				CALL add_lines($base + i * 50, 50);
				COMMIT;
				PERFORM sales_kafka.refresh_rollups('rw');
				COMMIT;
			END LOOP;
		END
		\$\$;
	});
} (1, 2);
is(bg_wait($_, 'a refresh loop'), 0, 'a session writing lines and calling refresh_rollups in a loop ends well')
  for @loops;
ok(caught_up('the rollups after the loops'), 'the worker and the loops left no line waiting');
rollups_equal_rebuild('with two sessions calling refresh_rollups');
is(value(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'sales_kafka rollups'}),
	$worker, 'the same rollup worker still runs');

# ============================================== 3. kills mid-rollup

# another session holds the all-time row of rollup_total: the worker's next
# rollup writes the other rollups, then waits for it
sub hold_total_row
{
	return start_bg_psql(q{
		BEGIN;
		SELECT 1 FROM rw.rollup_total WHERE grain = 'all' FOR UPDATE;
		SELECT pg_sleep(600);
	});
}

sub worker_waits
{
	my ($what) = @_;
	return poll_until(
		sub {
			value(q{SELECT count(*) FROM pg_stat_activity
			         WHERE backend_type = 'sales_kafka rollups' AND wait_event_type = 'Lock'}) eq '1';
		},
		$wait_s, $what);
}

my $blocker = hold_total_row();
poll_until(sub { value(q{SELECT count(*) FROM pg_stat_activity WHERE ltrim(query, E' \t\n') LIKE 'SELECT pg_sleep(600)%' AND state = 'active'}) eq '1' },
	$wait_s, 'the blocker');
$node->safe_psql('postgres', 'CALL add_lines(500000, 2000)');
ok(worker_waits('the worker to wait mid-rollup'), 'the worker is in the middle of a rollup');
$worker = value(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'sales_kafka rollups'});
my $log_offset = -s $node->logfile;
kill 'KILL', $worker;
ok( poll_until(sub { slurp_file($node->logfile, $log_offset) =~ /all server processes terminated; reinitializing/ },
		$wait_s, 'the crash restart'),
	'kill -9 of the rollup worker: the server crash-restarts');
bg_wait($blocker, 'the blocker to end with the crash');
ok(caught_up('the rollups after the worker was killed'), 'a new worker rolls up what was waiting');
isnt(rollup_worker_pid(), $worker, 'a new rollup worker runs');
rollups_equal_rebuild('after kill -9 of the rollup worker');

$blocker = hold_total_row();
poll_until(sub { value(q{SELECT count(*) FROM pg_stat_activity WHERE ltrim(query, E' \t\n') LIKE 'SELECT pg_sleep(600)%' AND state = 'active'}) eq '1' },
	$wait_s, 'the blocker');
$node->safe_psql('postgres', 'CALL add_lines(600000, 2000)');
ok(worker_waits('the worker to wait mid-rollup, again'), 'the worker is in the middle of a rollup again');
my $pm = (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0];
my @children = postmaster_children($pm);
$node->kill9;
ok(poll_until(sub { !grep { process_alive($_) } @children }, 60, 'the processes of the killed postmaster'),
	'kill -9 of the postmaster: every process of it exited');
poll_until(sub { !kill(0, $pm) }, 60, 'the killed postmaster to be reaped');
bg_wait($blocker, 'the blocker to end with the server');
ok($node->start(fail_ok => 1), 'the server starts again');
ok(caught_up('the rollups after the postmaster was killed'), 'the rollup worker catches up after the restart');
rollups_equal_rebuild('after kill -9 of the postmaster');

# ============================================== 4. models dropped

$worker = rollup_worker_pid();
$log_offset = -s $node->logfile;
for my $i (1 .. 5)
{
	$node->safe_psql('postgres', qq{
		SELECT sales_kafka.create_sales_model('gone_$i');
		INSERT INTO gone_$i.order_lines (order_id, sold_at, product_id, quantity, unit_price)
		SELECT 'g' || i, now(), 'p' || (i % 50), 1, 2 FROM generate_series(1, 20000) i;
	});
	# drop it as soon as the worker is at it (or has done it)
	poll_until(
		sub {
			value(qq{SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'sales_kafka rollups'
			                    AND state = 'active') > 0 OR rolled_up_rows > 0 FROM gone_$i.kpi_state}) eq 't';
		},
		$wait_s, "the worker at model gone_$i");
	$node->safe_psql('postgres', "DROP SCHEMA gone_$i CASCADE");
}
$node->safe_psql('postgres', 'CALL add_lines(700000, 100)');
ok(caught_up('the rollups after the drops'), 'the worker goes on with the other model');
is(value(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'sales_kafka rollups'}),
	$worker, 'the same rollup worker runs: it never failed');
is_deeply([ grep { /ERROR|FATAL/ } split /\n/, slurp_file($node->logfile, $log_offset) ],
	[], 'models dropped while the worker runs: no error in the server log');

check_server_log($node, 1);
$node->stop;
done_testing();
