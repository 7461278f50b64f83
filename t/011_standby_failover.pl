# A hot standby (asynchronous streaming replication) serves the pipelines'
# catalog and the KPIs and runs no worker; after kill -9 of the primary in
# the middle of a stream and the promotion of the standby, the pipelines
# start by themselves on the promoted server and every message ends up in
# its target exactly once.
#
# Rows the primary committed but did not send to the standby are lost with
# the offsets committed in the same transactions, so the promoted server
# reads those messages from Kafka again: exactly once across failover, as
# long as Kafka still holds the messages.  pg_cron's scheduler, like our
# launcher, starts only once recovery has finished.
#
# Two pipelines: a plain one into a table with UNIQUE ("partition",
# "offset"), made slow by a statement trigger so that the kill finds it
# half-way through its messages, and a sales model's (sale_events shape),
# whose incremental rollups, refreshed on both sides of the failover, must
# equal their recomputation (rebuild_rollups) at the end.  Runs against a
# real Kafka too.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use POSIX qw(strftime);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;

my $npartitions = 4;
# seconds any one wait may take
my $wait_s = 120;
# messages of the plain topic: before the standby exists, during the kill,
# after the promotion
my @plain_batches = (2_000, 12_000, 2_000);
my $nevents = 3_000;

my $topic = create_topic('failover', $npartitions);
my $events_topic = create_topic('failover_events', 2);

my $primary = new_node('primary', allows_streaming => 1);
$primary->start;
$primary->safe_psql('postgres', qq{
	CREATE EXTENSION sales_kafka;
	CREATE EXTENSION pg_cron;
	CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka;
	CREATE FOREIGN TABLE src (
		"partition" int OPTIONS (kafka 'partition'),
		"offset" bigint OPTIONS (kafka 'offset'),
		id bigint)
	SERVER kafka OPTIONS (topic '$topic', format 'json');
	CREATE TABLE tgt (
		"partition" int NOT NULL,
		"offset" bigint NOT NULL,
		id bigint NOT NULL,
		UNIQUE ("partition", "offset"));
	-- batches of 100 rows that take 20 ms more each: the kill finds the
	-- pipeline in the middle of its messages
	CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS
		\$\$BEGIN PERFORM pg_sleep(0.02); RETURN NULL; END\$\$;
	CREATE TRIGGER slow AFTER INSERT ON tgt
		FOR EACH STATEMENT EXECUTE FUNCTION slow();
	SELECT sales_kafka.create_pipeline('plain', 'src', 'tgt', batch_size => 100);
	SELECT sales_kafka.start_pipeline('plain');

	SELECT sales_kafka.create_sales_model('fo', time_zone => 'Europe/Berlin');
	SELECT sales_kafka.create_sales_pipelines('fo', 'sale_events', 'kafka', '$events_topic');
	-- a job for pg_cron's scheduler to own; it never needs to run here
	SELECT cron.schedule('noop', '0 0 1 1 *', 'SELECT 1');
});
my @pipelines = ('plain', 'fo_order_lines');

# Messages $from .. $to of the plain topic ({"id": n}, partition n % 4).
sub produce_plain
{
	my ($from, $to) = @_;
	for my $p (0 .. $npartitions - 1)
	{
		produce($topic, $p,
			map { qq({"id": $_}) } grep { $_ % $npartitions == $p } $from .. $to);
	}
	return;
}

# Sale events $from .. $to: product P<n % 20>, quantity 1 + n % 5, price
# n % 97 + 0.5, one a minute from 2024-03-30 (Berlin; across the DST change).
sub produce_events
{
	my ($from, $to) = @_;
	produce($events_topic, undef,
		map {
			sprintf(
				'{"product_name": "P%02d", "quantity": %d, "price": %.2f, "timestamp": "%s"}',
				$_ % 20, 1 + $_ % 5, $_ % 97 + 0.5,
				strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(1711753200 + 60 * $_)))
		} $from .. $to);
	return;
}

sub wait_all_running
{
	my ($node, $what) = @_;
	my $ok = 1;
	for my $p (@pipelines)
	{
		$ok &&= wait_pipeline_running($node, 'postgres', $p, 1, $wait_s,
			"pipeline $p $what");
	}
	return $ok;
}

# true once every partition of pipeline $p has committed offset = high
# watermark = the number of messages $n of its topic
sub wait_caught_up
{
	my ($node, $p, $n, $what) = @_;
	return poll_until(
		sub {
			my $r = try_query($node, 'postgres', qq{
				SELECT coalesce(sum(committed_offset), -1) = $n
				       AND bool_and(committed_offset = high_watermark)
				  FROM sales_kafka.pipeline_partitions WHERE pipeline = '$p'});
			defined $r && $r eq 't';
		},
		$wait_s, $what);
}

ok(wait_all_running($primary, 'to run on the primary'), 'both pipelines run on the primary');

# ------------------------------------------------- before the standby exists
my $nplain = $plain_batches[0];
produce_plain(1, $nplain);
ok(wait_caught_up($primary, 'plain', $nplain, 'the first messages'),
	'the primary writes the first messages');

# ---------------------------------------------------------------- the standby
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

is( $standby->safe_psql('postgres', q{
		SELECT count(*) FROM pg_stat_activity
		 WHERE backend_type LIKE 'sales_kafka%' OR backend_type = 'pg_cron launcher'}),
	'0', 'the standby runs no launcher, no pipeline worker and no pg_cron scheduler');
is( $standby->safe_psql('postgres', q{
		SELECT string_agg(pipeline || ' ' || state, ', ' ORDER BY pipeline)
		  FROM sales_kafka.pipeline_status}),
	'fo_order_lines standby, plain standby',
	'pipeline_status is readable on the standby, and says the pipelines wait for a promotion');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM tgt'),
	$nplain, 'the standby has the rows the primary wrote');

# the events, and a refresh of the rollups on the primary, replicated
produce_events(1, $nevents / 2);
ok(wait_caught_up($primary, 'fo_order_lines', $nevents / 2, 'the first events'),
	'the model pipeline writes the first events');
$primary->safe_psql('postgres', q{SELECT sales_kafka.refresh_rollups('fo')});
$primary->wait_for_catchup($standby);
is( $standby->safe_psql('postgres', 'SELECT sales_count FROM fo.kpi_totals'),
	$nevents / 2, 'the KPI views are readable on the standby, as of the last refresh');
is( $standby->safe_psql('postgres', q{
		SELECT is_standby AND replayed_at IS NOT NULL AND replay_lag IS NOT NULL
		       AND (SELECT bool_and(is_standby) FROM fo.kpi_as_of_views)
		  FROM fo.kpi_as_of}),
	't', 'kpi_as_of on the standby says it shows a standby\'s view, replayed up to a time');

# ------------------------------------------- kill -9 in the middle of a stream
my $from = $nplain + 1;
$nplain += $plain_batches[1];
produce_plain($from, $nplain);
produce_events($nevents / 2 + 1, $nevents);
my $mid = poll_until(
	sub {
		my $r = try_query($primary, 'postgres', 'SELECT count(*) FROM tgt');
		defined $r && $r >= $from + 500;
	},
	$wait_s, 'the primary to write part of the stream');
my $written_at_kill = $primary->safe_psql('postgres', 'SELECT count(*) FROM tgt');
$primary->kill9;
ok($mid && $written_at_kill < $nplain,
	"kill -9 of the primary in the middle of the stream ($written_at_kill of $nplain rows written)");

# ------------------------------------------------------------------ promotion
my $standby_log_before_promote = -s $standby->logfile;
$standby->promote;
ok(wait_all_running($standby, 'to start on the promoted server'),
	'after the promotion, the pipelines start by themselves');
ok( poll_until(
		sub {
			my $r = try_query($standby, 'postgres', q{
				SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_cron launcher'});
			defined $r && $r eq '1';
		},
		$wait_s, "pg_cron's scheduler"),
	"pg_cron's scheduler starts after the promotion");
ok( poll_until(
		sub {
			my $r = try_query($standby, 'postgres', q{
				SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'sales_kafka rollups'});
			defined $r && $r eq '1';
		},
		$wait_s, 'the rollup worker'),
	'the rollup worker starts after the promotion');

$from = $nplain + 1;
$nplain += $plain_batches[2];
produce_plain($from, $nplain);
ok(wait_caught_up($standby, 'plain', $nplain, 'every message on the promoted server'),
	'the promoted server commits every offset of the plain topic');
ok(wait_caught_up($standby, 'fo_order_lines', $nevents, 'every event on the promoted server'),
	'and of the events');

is( $standby->safe_psql('postgres', q{
		SELECT count(*) || ' rows, ' || count(DISTINCT id) || ' ids, '
		       || count(DISTINCT ("partition", "offset")) || ' offsets, '
		       || count(*) FILTER (WHERE "partition" <> id % 4) || ' misplaced'
		  FROM tgt}),
	"$nplain rows, $nplain ids, $nplain offsets, 0 misplaced",
	'every message of the plain topic is in the promoted server\'s target exactly once');
is( $standby->safe_psql('postgres', q{
		SELECT count(*) FROM (
			SELECT "partition", max("offset") - min("offset") + 1 = count(*) AS dense,
			       min("offset") = 0 AS from_zero
			  FROM tgt GROUP BY 1) p WHERE dense AND from_zero}),
	$npartitions, 'each partition\'s rows are its offsets from 0 on, without a gap');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM sales_kafka.dead_letter'),
	'0', 'no dead letters');

# ---------------------------------------------- the KPIs across the failover
$standby->safe_psql('postgres', q{SELECT sales_kafka.refresh_rollups('fo')});
is( $standby->safe_psql('postgres', q{
		SELECT sales_count || ' ' || quantity FROM fo.kpi_totals}),
	$nevents . ' ' . $standby->safe_psql('postgres',
		"SELECT sum(1 + i % 5) FROM generate_series(1, $nevents) i"),
	'the KPI totals count every event once');
my $diff = $standby->safe_psql('postgres', q{
	CREATE TEMP VIEW rollups AS
		SELECT 'total' AS t, grain, bucket, NULL AS key, sales_count, order_count,
		       quantity, revenue, profit FROM fo.rollup_total
		UNION ALL
		SELECT 'product', grain, bucket, product_id, sales_count, order_count,
		       quantity, revenue, profit FROM fo.rollup_product;
	CREATE TEMP TABLE incremental AS SELECT * FROM rollups;
	SELECT FROM sales_kafka.rebuild_rollups('fo');
	CREATE TEMP TABLE rebuilt AS SELECT * FROM rollups;
	SELECT (SELECT count(*) FROM incremental) || ' rows, '
	       || (SELECT count(*) FROM (SELECT * FROM incremental EXCEPT SELECT * FROM rebuilt) a)
	       || ' missing, '
	       || (SELECT count(*) FROM (SELECT * FROM rebuilt EXCEPT SELECT * FROM incremental) b)
	       || ' extra'});
like($diff, qr/^\d+ rows, 0 missing, 0 extra$/m,
	"the rollups refreshed on both sides of the failover equal their recomputation ($diff)");

# the standby's log until the promotion: nothing of ours went wrong there
# (the walreceiver's retries name the run's socket directory, which holds
# "sales_kafka_test": not ours)
my @ours = grep {
	/(?:ERROR|FATAL|PANIC|WARNING):.*(?:sales_kafka(?!_test)|pipeline)/
	  && !/could not connect to the primary server|WAL stream|walreceiver/
} split /\n/, slurp_file($standby->logfile, 0);
is_deeply(\@ours, [], 'the standby logged no error or warning of sales_kafka');
check_server_log($standby, 0);

$standby->stop;
done_testing();
