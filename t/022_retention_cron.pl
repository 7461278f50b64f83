# Retention of a partitioned sales model, run by pg_cron:
# schedule_retention, called in pg_cron's database (postgres) for a model
# in another database (shop), makes one job that really runs there
# (every minute here, daily by default) and drops the months older than
# keep; the rollups keep every line, also one written after the last
# refresh (drop_old_partitions rolls it up first); unschedule_retention
# removes the job.  No Kafka.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;

# pg_cron runs jobs at minute granularity: the first run may take a minute
my $wait_s = 150;

my $node = new_node('cron');
# jobs in background workers: a TAP node cannot be reached over localhost
# (see t/006_kpi_freshness.pl)
$node->append_conf('postgresql.conf', "cron.use_background_workers = on\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION sales_kafka;
	CREATE EXTENSION pg_cron;
	CREATE DATABASE shop;
});
# one line in the middle of each of the last 36 months and of this one,
# rolled up; then a late line in an old month, not rolled up
$node->safe_psql('shop', q{
	CREATE EXTENSION sales_kafka;
	SELECT sales_kafka.create_sales_model('store', partitioned => true, time_zone => 'UTC');
	SELECT sales_kafka.create_sales_partitions('store', (now() - interval '36 months')::date, now()::date);
	INSERT INTO store.order_lines (order_id, sold_at, product_id, quantity, unit_price)
	SELECT 'o' || k, date_trunc('month', now()) - make_interval(months => k) + interval '10 days',
	       'p' || (k % 3), 1, k + 1
	  FROM generate_series(0, 36) k;
	SELECT sales_kafka.refresh_rollups('store');
	INSERT INTO store.order_lines (order_id, sold_at, product_id, quantity, unit_price)
	VALUES ('late', date_trunc('month', now()) - interval '30 months' + interval '1 day', 'p0', 1, 1000);
});
my $partitions_sql = q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'store.order_lines'::regclass};
my $before = $node->safe_psql('shop', $partitions_sql);
my $expected_gone = $node->safe_psql('shop', q{
	SELECT count(*) FROM generate_series(date_trunc('month', now() - interval '36 months'),
	                                     now(), interval '1 month') m
	 WHERE m + interval '1 month' <= now() - interval '24 months'});
cmp_ok($expected_gone, '>', 0, 'some months are older than 24 months');

my ($ret, $out, $err) = $node->psql('shop', q{SELECT sales_kafka.schedule_retention('store', '24 months')});
like($err, qr/pg_cron is not installed in database "shop"/,
	'schedule_retention in a database without pg_cron is refused');

($ret, $out, $err) = $node->psql('postgres', q{
	SELECT concat_ws(' | ', jobname, schedule, command)
	  FROM sales_kafka.schedule_retention('store', '24 months', run_at => '* * * * *', database => 'shop')});
is($out,
	"sales_kafka retention shop.store | * * * * * | SELECT count(*) FROM sales_kafka.drop_old_partitions('store', '2 years', 'f')",
	'schedule_retention returns the job it scheduled')
  or diag("psql: $err");
is($node->safe_psql('postgres', q{SELECT database || ' ' || active FROM cron.job WHERE jobname = 'sales_kafka retention shop.store'}),
	'shop true', 'the job runs in the model\'s database');

ok( poll_until(
		sub {
			my $r = try_query($node, 'shop', $partitions_sql);
			defined $r && $r == $before - $expected_gone;
		},
		$wait_s, 'the job to drop the old months'),
	'pg_cron\'s job dropped every month older than 24 months');
ok( poll_until(
		sub {
			my $r = try_query($node, 'postgres', q{
				SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
				 WHERE j.jobname = 'sales_kafka retention shop.store' AND d.status = 'succeeded'});
			defined $r && $r > 0;
		},
		$wait_s, 'a succeeded run in cron.job_run_details'),
	'pg_cron records the run as succeeded');
is($node->safe_psql('shop', q{SELECT count(*) FROM store.order_lines WHERE sold_at < now() - interval '25 months'}),
	'0', 'the order lines of those months are gone');
is($node->safe_psql('shop', q{SELECT sales_count || ' ' || revenue FROM store.rollup_total WHERE grain = 'all'}),
	'38 ' . (1000 + (37 * 38) / 2) . '.00',
	'the rollups still count every line, the late one too');

($ret, $out, $err) = $node->psql('postgres', q{SELECT sales_kafka.unschedule_retention('store', 'shop')});
is($out, '1', 'unschedule_retention removes the job') or diag("psql: $err");
is($node->safe_psql('postgres', 'SELECT count(*) FROM cron.job'), '0', 'no job is left');

$node->stop;
check_server_log($node);
done_testing();
