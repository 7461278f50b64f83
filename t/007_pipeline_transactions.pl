# The transactions of a pipeline worker, as a client's statements are:
#
#   1. statement_timeout (here a database setting, which the worker reads
#      as any session does) bounds each batch: a batch that takes longer is
#      cancelled and the worker starts again, from its committed offsets;
#      batches that take less are written however long the worker has run.
#   2. start_pipeline() of a pipeline whose worker crash-loops, called while
#      a restarted worker waits for the pipeline's row, which the caller's
#      transaction holds (as start_pipeline() itself holds it once it has
#      changed it), returns: the worker gives up on its stop request
#      instead of both waiting for each other until "did not stop within
#      60 seconds".
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;

# seconds any one wait of this test may take
my $wait_s = 90;

my $node = new_node('transactions');
$node->start;

# ------------------------------------ 1. statement_timeout per batch

{
	my $topic = create_topic('tx_timeout', 1);
	$node->safe_psql('postgres', 'CREATE DATABASE timeouts');
	$node->safe_psql('timeouts', qq{
		CREATE EXTENSION sales_kafka;
		CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka;
		CREATE FOREIGN TABLE src (n int) SERVER kafka OPTIONS (topic '$topic');
		CREATE TABLE pause (seconds float8);
		INSERT INTO pause VALUES (0);
		CREATE TABLE tgt (n int);
		CREATE FUNCTION pause() RETURNS trigger LANGUAGE plpgsql AS
			\$\$BEGIN PERFORM pg_sleep((SELECT seconds FROM pause)); RETURN NULL; END\$\$;
		CREATE TRIGGER pause AFTER INSERT ON tgt FOR EACH STATEMENT EXECUTE FUNCTION pause();
		ALTER DATABASE timeouts SET statement_timeout = '1s';
	});
	$node->safe_psql('timeouts', q{
		SELECT sales_kafka.create_pipeline('timed', 'src', 'tgt', flush_interval => '0');
		SELECT sales_kafka.start_pipeline('timed');
	});

	my $rows = sub {
		my ($n) = @_;
		return poll_until(
			sub {
				my $r = try_query($node, 'timeouts', 'SELECT count(*) FROM tgt');
				defined $r && $r == $n;
			},
			$wait_s,
			"$n rows in tgt");
	};

	$node->safe_psql('timeouts', 'INSERT INTO src VALUES (1)');
	ok($rows->(1), 'timeouts: the first batch is written');
	ok( poll_until(
			sub {
				try_query($node, 'timeouts', q{
					SELECT min(backend_start) < clock_timestamp() - interval '1.5 s'
					  FROM pg_stat_activity WHERE backend_type = 'sales_kafka pipeline'}) eq 't';
			},
			$wait_s,
			'the worker to run longer than statement_timeout'),
		'timeouts: the worker has run longer than statement_timeout');
	$node->safe_psql('timeouts', 'INSERT INTO src VALUES (2)');
	ok($rows->(2), 'timeouts: it still writes a batch that takes less');

	$node->safe_psql('timeouts', 'UPDATE pause SET seconds = 2');
	$node->safe_psql('timeouts', 'INSERT INTO src VALUES (3)');
	ok( poll_until(
			sub {
				my $r = try_query($node, 'timeouts', q{
					SELECT last_error FROM sales_kafka.pipeline_status WHERE pipeline = 'timed'});
				defined $r && $r =~ /^canceling statement due to statement timeout/;
			},
			$wait_s,
			'the slow batch to be cancelled'),
		'timeouts: a batch that takes longer than statement_timeout is cancelled');
	is($node->safe_psql('timeouts', 'SELECT count(*) FROM tgt'),
		'2', 'timeouts: and rolled back');
	$node->safe_psql('timeouts', 'UPDATE pause SET seconds = 0');
	ok($rows->(3), 'timeouts: once batches are quick again, the worker writes it');
	is($node->safe_psql('timeouts', 'SELECT string_agg(n::text, \',\' ORDER BY n) FROM tgt'),
		'1,2,3', 'timeouts: each message once');
	$node->safe_psql('timeouts', q{SELECT sales_kafka.stop_pipeline('timed')});
}

# ------------------------------------ 2. start_pipeline while a worker restarts

{
	my $topic = create_topic('tx_restart', 1);
	# a target that refuses every batch (an error no row causes) while
	# "broken" says so: the worker fails, and the launcher restarts it
	$node->safe_psql('postgres', qq{
		CREATE EXTENSION sales_kafka;
		CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka;
		CREATE FOREIGN TABLE src (n int) SERVER kafka OPTIONS (topic '$topic');
		CREATE TABLE broken (yes boolean);
		INSERT INTO broken VALUES (true);
		CREATE TABLE tgt (n int);
		CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
			\$\$BEGIN
				IF (SELECT yes FROM broken) THEN
					RAISE EXCEPTION 'tgt is being repaired' USING ERRCODE = 'lock_not_available';
				END IF;
				RETURN NULL;
			END\$\$;
		CREATE TRIGGER refuse BEFORE INSERT ON tgt FOR EACH STATEMENT EXECUTE FUNCTION refuse();
		SELECT sales_kafka.create_pipeline('looping', 'src', 'tgt', flush_interval => '0');
		SELECT sales_kafka.start_pipeline('looping');
		INSERT INTO src VALUES (1);
	});
	ok( poll_until(
			sub {
				try_query($node, 'postgres', q{
					SELECT state = 'backoff' AND last_error LIKE 'tgt is being repaired%'
					  FROM sales_kafka.pipeline_status WHERE pipeline = 'looping'}) eq 't';
			},
			$wait_s,
			'the worker to fail'),
		'restarting: the worker fails on every batch and the launcher restarts it');

	# hold the pipeline's row until a restarted worker waits for it (on the
	# lock, or trying again), then start the pipeline in that transaction
	my $timed_out;
	my ($ret, $out, $err) = $node->psql(
		'postgres', q{
		BEGIN;
		SELECT 1 FROM sales_kafka.pipeline WHERE name = 'looping' FOR UPDATE;
		DO $$
		DECLARE
			deadline timestamptz := clock_timestamp() + interval '90 s';
		BEGIN
			LOOP
				PERFORM pg_stat_clear_snapshot();
				EXIT WHEN EXISTS (
					SELECT FROM pg_stat_activity
					 WHERE backend_type = 'sales_kafka pipeline' AND application_name = 'looping'
					   AND (wait_event_type = 'Lock'
					        OR query IN ('sales_kafka: starting',
					                     'sales_kafka: reading the offsets of the partitions')));
				IF clock_timestamp() > deadline THEN
					RAISE EXCEPTION 'no restarted worker waited for the pipeline';
				END IF;
				PERFORM pg_sleep(0.02);
			END LOOP;
		END $$;
		SELECT sales_kafka.start_pipeline('looping');
		COMMIT;
	},
		timeout => 300,
		timed_out => \$timed_out,
		on_error_stop => 1);
	ok(!$timed_out && $ret == 0,
		'restarting: start_pipeline returns while a restarted worker waits for the pipeline')
	  or diag("psql exit status " . ($ret // 'none') . ": $err");

	$node->safe_psql('postgres', 'UPDATE broken SET yes = false');
	ok( poll_until(
			sub { try_query($node, 'postgres', 'SELECT count(*) FROM tgt') eq '1' },
			$wait_s, 'the message in tgt'),
		'restarting: once the target takes rows again, the pipeline writes the message');
	ok(wait_pipeline_running($node, 'postgres', 'looping', 1, $wait_s, 'looping to run'),
		'restarting: and runs');
	$node->safe_psql('postgres', q{SELECT sales_kafka.stop_pipeline('looping')});
}

# ------------------------------------ the server log

check_server_log($node);

$node->stop('fast');
done_testing();
