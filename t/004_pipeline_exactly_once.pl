# Ingest pipelines deliver exactly once through failures, while messages
# keep arriving:
#
#   1. kill -9 of a pipeline worker, three times, each time preferably
#      while it writes a batch (the postmaster then crash-restarts every
#      backend; the pipeline must come back by itself);
#   2. kill -9 of the postmaster, then a restart (the launcher must start
#      the enabled pipeline again);
#   3. every broker down for seconds, then one broker (test broker only);
#   4. stop_pipeline / start_pipeline over and over.
#
# Messages are produced by INSERTs into a sales_kafka foreign table, each
# transaction producing its rows when it commits, from a second server
# ("producer") that no fault touches: every producing transaction commits,
# so the number of messages in the topic is known exactly, and messages keep
# arriving while the consuming server is down or restarting.  Every message
# carries a unique id and goes to partition id % 4 of a 4-partition topic of
# its own.
#
# After each scenario, once the pipeline has committed every offset, the
# target holds exactly one row per message: count(*), count(DISTINCT id) and
# count(DISTINCT (partition, offset)) all equal the number produced, each
# partition's rows are offsets 0 .. committed_offset - 1 with the committed
# offset at the high watermark, and nothing went to the dead letters.  Two
# targets have UNIQUE ("partition", "offset") (a duplicate would become a
# dead letter), two have no constraint (a duplicate would be an extra row).
# Rows and offsets commit together, so any one snapshot shows as many rows
# as the stored offsets account for; that is checked along the way too.
# The target of scenario 1 has a statement trigger, so its batches take the
# SQL write path (and last long enough to be killed in the middle); the
# others take the bulk path.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;
use Time::HiRes qw(time usleep);

my $npartitions = 4;
# seconds any one wait of this test may take
my $wait_s = 90;

my $node = new_node('consumer');
# PostgreSQL::Test::Cluster turns crash restarts off; a production server
# has them on, and scenario 1 is about one
$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
$node->start;
my $producer = new_node('producer');
$producer->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION sales_kafka;
	CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka;
});
# idempotent producer: a produce request retried across a broker outage
# must not put a message into the topic twice
$producer->safe_psql('postgres', q{
	CREATE EXTENSION sales_kafka;
	CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka
		OPTIONS ("enable.idempotence" 'true');
});

# ---------------------------------------------------------------- helpers

# Like poll_until, for a condition that need not come true: no diagnostic.
sub poll_quietly
{
	my ($code, $timeout_s) = @_;
	my $deadline = time + $timeout_s;
	until ($code->())
	{
		return 0 if time >= $deadline;
		usleep(50_000);
	}
	return 1;
}

# A scenario's topic, producer table, source foreign table, target table and
# pipeline, all named after it; the pipeline is started.
sub setup_scenario
{
	my ($name, %opts) = @_;
	my $topic = create_topic("eo_$name", $npartitions);
	my $unique = $opts{unique} ? ', UNIQUE ("partition", "offset")' : '';
	my $batch = $opts{batch_size} || 100;
	# a statement trigger makes the SQL write path take the batches, and
	# makes each one last long enough to be killed in the middle of it
	my $trigger = $opts{slow_batches} ? qq{
		CREATE FUNCTION slow_$name() RETURNS trigger LANGUAGE plpgsql AS
			\$\$BEGIN PERFORM pg_sleep(0.05); RETURN NULL; END\$\$;
		CREATE TRIGGER slow AFTER INSERT ON tgt_$name
			FOR EACH STATEMENT EXECUTE FUNCTION slow_$name();
	} : '';
	my $parallelism = $opts{parallelism} || 1;

	$producer->safe_psql('postgres', qq{
		CREATE FOREIGN TABLE out_$name (
			"partition" int OPTIONS (kafka 'partition'),
			id bigint,
			pad text)
		SERVER kafka OPTIONS (topic '$topic', format 'json');
	});
	$node->safe_psql('postgres', qq{
		CREATE FOREIGN TABLE src_$name (
			"partition" int OPTIONS (kafka 'partition'),
			"offset" bigint OPTIONS (kafka 'offset'),
			id bigint,
			pad text)
		SERVER kafka OPTIONS (topic '$topic', format 'json');
		CREATE TABLE tgt_$name (
			"partition" int NOT NULL,
			"offset" bigint NOT NULL,
			id bigint NOT NULL,
			pad text,
			loaded_at timestamptz NOT NULL DEFAULT now()$unique);
		$trigger
		SELECT sales_kafka.create_pipeline('$name', 'src_$name', 'tgt_$name',
			batch_size => $batch, flush_interval => '20 ms',
			parallelism => $parallelism);
		SELECT sales_kafka.start_pipeline('$name');
	});
	return { name => $name, topic => $topic, parallelism => $parallelism };
}

# Start producing $ntx transactions of $per_tx messages, ids $first_id on,
# with $pause seconds between transactions, from a psql of the producer
# server that runs in the background.  Returns the producer; the ids it
# produces are $p->{first} .. $p->{last}.
sub start_producer
{
	my ($sc, $first_id, $ntx, $per_tx, $pause) = @_;
	my $script = "\\set ON_ERROR_STOP 1\n\\o /dev/null\n";
	for my $tx (0 .. $ntx - 1)
	{
		my $lo = $first_id + $tx * $per_tx;
		my $hi = $lo + $per_tx - 1;
		$script .=
		    "INSERT INTO out_$sc->{name} (\"partition\", id, pad)"
		  . " SELECT i % $npartitions, i, md5(i::text)"
		  . " FROM generate_series($lo, $hi) i;\n"
		  . "\\echo committed $hi\n"
		  . "SELECT pg_sleep($pause);\n";
	}
	$script .= "\\echo producer done\n";
	my $file = "${PostgreSQL::Test::Utils::tmp_check}/producer_$sc->{name}_$first_id.sql";
	open(my $fh, '>', $file) or die "cannot write $file: $!";
	print $fh $script;
	close($fh);
	# the script comes from a file: input from a scalar would only be fed
	# to psql while we pump
	my $p = {
		out => '',
		err => '',
		first => $first_id,
		last => $first_id + $ntx * $per_tx - 1,
	};
	$p->{h} = IPC::Run::start(
		[
			$producer->installed_command('psql'), '-X', '-A', '-t', '-q',
			'-d', $producer->connstr('postgres'), '-f', $file
		],
		'<', '/dev/null', '>', \$p->{out}, '2>', \$p->{err});
	return $p;
}

# True once the producer's psql has exited.
sub producer_finished
{
	my ($p) = @_;
	return 1 if $p->{finished};
	$p->{h}->pump_nb;
	return 0 if $p->{h}->pumpable;
	$p->{h}->finish;
	$p->{rc} = $?;
	$p->{finished} = 1;
	return 1;
}

# The last id a committed producing transaction carried (0 if none yet).
sub producer_committed
{
	my ($p) = @_;
	producer_finished($p);
	my @c = $p->{out} =~ /^committed (\d+)$/mg;
	return @c ? $c[-1] : 0;
}

# Wait for the producer to end; checks that every transaction committed.
sub finish_producer
{
	my ($p, $what) = @_;
	my $ok = poll_until(sub { producer_finished($p) }, $wait_s, "the producer ($what)");
	if (!$ok)
	{
		$p->{h}->kill_kill;
		$p->{h}->finish;
	}
	ok( $ok && $p->{rc} == 0 && $p->{out} =~ /^producer done$/m,
		"$what: every producing transaction committed ("
		  . ($p->{last} - $p->{first} + 1)
		  . " messages)")
	  or diag("producer exit status "
		  . ($p->{rc} // 'none')
		  . "\nstdout: $p->{out}\nstderr: $p->{err}");
	return;
}

# Rows in the target (undef while the server does not answer).
sub target_rows
{
	my ($sc) = @_;
	return try_query($node, 'postgres', "SELECT count(*) FROM tgt_$sc->{name}");
}

# Sum of the pipeline's committed offsets (undef while the server does not
# answer).  With the topic written from offset 0, the messages written.
sub committed_offsets
{
	my ($sc) = @_;
	return try_query($node, 'postgres',
		"SELECT coalesce(sum(committed_offset), 0) FROM sales_kafka.pipeline_partitions"
		  . " WHERE pipeline = '$sc->{name}'");
}

# One snapshot: rows in the target, and what the stored offsets account for.
sub rows_and_offsets
{
	my ($sc) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT (SELECT count(*) FROM tgt_$sc->{name}) || ' rows, '
		    || (SELECT coalesce(sum(committed_offset), 0) FROM sales_kafka.pipeline_partitions
		         WHERE pipeline = '$sc->{name}') || ' offsets'});
}

sub check_rows_match_offsets
{
	my ($sc, $what) = @_;
	my $r = rows_and_offsets($sc);
	my ($rows, $offsets) = $r =~ /^(\d+) rows, (\d+) offsets$/;
	ok(defined $rows && $rows == $offsets,
		"$sc->{name}: $what: one snapshot shows as many rows as committed offsets ($r)");
	return;
}

# The pids of the pipeline's workers, from pipeline_status.
sub worker_pids
{
	my ($sc) = @_;
	my $pids = try_query($node, 'postgres',
		"SELECT array_to_string(worker_pids, ' ') FROM sales_kafka.pipeline_status"
		  . " WHERE pipeline = '$sc->{name}'");
	return defined $pids ? grep { /^\d+$/ } split(/ /, $pids) : ();
}

# Wait until the target has more than $min rows.
sub wait_rows_above
{
	my ($sc, $min, $what) = @_;
	return poll_until(
		sub {
			my $n = target_rows($sc);
			defined $n && $n > $min;
		},
		$wait_s,
		$what);
}

# Wait until the pipeline runs with all its workers.
sub wait_running
{
	my ($sc, $what) = @_;
	return wait_pipeline_running($node, 'postgres', $sc->{name},
		$sc->{parallelism}, $wait_s, $what);
}

# Wait until the pipeline has committed $n messages, then check that the
# target holds each of the ids first .. last exactly once, one row per
# (partition, offset), and nothing more.
sub check_exactly_once
{
	my ($sc, $p) = @_;
	my $name = $sc->{name};
	my $n = $p->{last} - $p->{first} + 1;

	is( $node->safe_psql('postgres',
			"SELECT sum(high - low) FROM sales_kafka.watermarks('kafka', '$sc->{topic}')"),
		$n,
		"$name: the topic holds exactly the $n messages produced");

	my $done = poll_until(
		sub {
			my $c = committed_offsets($sc);
			defined $c && $c >= $n;
		},
		$wait_s,
		"pipeline $name to commit $n messages");
	ok($done, "$name: the pipeline committed the offsets of all $n messages")
	  or diag($node->safe_psql('postgres', qq{
		SELECT s::text FROM sales_kafka.pipeline_status s WHERE pipeline = '$name'
		UNION ALL
		SELECT o::text FROM sales_kafka.pipeline_partitions o WHERE pipeline = '$name'}));

	is( $node->safe_psql('postgres', qq{
			SELECT count(*) || ' rows, ' || count(DISTINCT id) || ' ids, '
			    || count(DISTINCT ("partition", "offset")) || ' (partition, offset), '
			    || coalesce(min(id), 0) || '..' || coalesce(max(id), 0)
			  FROM tgt_$name}),
		"$n rows, $n ids, $n (partition, offset), $p->{first}..$p->{last}",
		"$name: every message is in the target exactly once");

	is( $node->safe_psql('postgres', qq{
			SELECT string_agg(format('%s/%s', id, "offset"), ', ')
			  FROM (SELECT id, "offset", count(*) OVER (PARTITION BY id) AS copies
			          FROM tgt_$name) d
			 WHERE copies > 1}),
		'', "$name: no id is in the target twice");

	is( $node->safe_psql('postgres', qq{
			SELECT count(*) FROM tgt_$name WHERE "partition" <> id % $npartitions}),
		'0', "$name: every row is where its message was produced");

	# per partition: rows are offsets low .. committed - 1, committed = high
	is( $node->safe_psql('postgres', qq{
			SELECT string_agg(format('partition %s: %s rows, offsets %s..%s, committed %s, watermarks %s..%s',
			                         w.partition, coalesce(t.n, 0), t.lo, t.hi, o.committed_offset, w.low, w.high),
			                  '; ' ORDER BY w.partition)
			  FROM sales_kafka.watermarks('kafka', '$sc->{topic}') w
			  LEFT JOIN sales_kafka.pipeline_partitions o
			         ON o.pipeline = '$name' AND o.partition = w.partition
			  LEFT JOIN (SELECT "partition", count(*) AS n, min("offset") AS lo, max("offset") AS hi
			               FROM tgt_$name GROUP BY 1) t ON t.partition = w.partition
			 WHERE o.committed_offset IS DISTINCT FROM w.high
			    OR coalesce(t.n, 0) <> w.high - w.low
			    OR (t.n > 0 AND (t.lo <> w.low OR t.hi <> w.high - 1))}),
		'',
		"$name: each partition's rows are exactly its offsets up to the committed offset, at the high watermark");

	is( $node->safe_psql('postgres',
			"SELECT count(*) FROM sales_kafka.dead_letter WHERE pipeline = '$name'"),
		'0', "$name: no message went to the dead letters");
	check_rows_match_offsets($sc, 'at the end');
	return;
}

sub stop_scenario
{
	my ($sc) = @_;
	$node->safe_psql('postgres', "SELECT sales_kafka.stop_pipeline('$sc->{name}')");
	return;
}

my $log_offset;

# ------------------------------------ 1. kill -9 of a pipeline worker

{
	my $sc = setup_scenario('kill_worker', parallelism => 2, unique => 1,
		batch_size => 200, slow_batches => 1);
	ok(wait_running($sc, 'pipeline kill_worker to run'), 'kill_worker: the pipeline runs with 2 workers');
	my $p = start_producer($sc, 1, 50, 200, 0.15);

	# three kills, each once the pipeline has made progress since the last
	my $rows = 0;
	my $kills = 3;
	for my $round (1 .. $kills)
	{
		ok(wait_rows_above($sc, $rows, "kill_worker: rows before kill $round"),
			"kill_worker: rows arrive before kill $round");

		# preferably a worker in the middle of writing a batch; when none is
		# (the pipeline has caught up), any worker
		my $victim;
		my $active = poll_quietly(
			sub {
				$victim = try_query($node, 'postgres', q{
					SELECT a.pid FROM pg_stat_activity a
					  JOIN sales_kafka.pipeline_status s ON a.pid = ANY (s.worker_pids)
					 WHERE s.pipeline = 'kill_worker' AND a.state = 'active'
					 LIMIT 1});
				defined $victim && $victim =~ /^\d+$/;
			},
			5);
		($victim) = worker_pids($sc) unless $active;
		ok(defined $victim, "kill_worker: found a worker to kill (kill $round)");
		next unless defined $victim;
		my $committed_before = producer_committed($p);
		$rows = target_rows($sc) // $rows;
		$log_offset = -s $node->logfile;
		note "kill $round: kill -9 of pipeline worker $victim"
		  . ($active ? ' while it wrote a batch' : '')
		  . " at $rows rows, producer at id $committed_before";
		kill 'KILL', $victim;

		ok( poll_until(
				sub {
					slurp_file($node->logfile, $log_offset) =~
					  /all server processes terminated; reinitializing/;
				},
				$wait_s,
				"the crash restart after kill $round"),
			"kill_worker: the postmaster crash-restarted after kill $round");
		like(slurp_file($node->logfile, $log_offset),
			qr/\(PID $victim\) was terminated by signal 9/,
			"kill_worker: the server log shows the worker of kill $round");
		cmp_ok($committed_before, '<', $p->{last},
			"kill_worker: kill $round happened while messages were still being produced");
		ok(wait_running($sc, "pipeline kill_worker to come back after kill $round"),
			"kill_worker: the pipeline came back by itself with 2 workers after kill $round");
		ok(!grep({ $_ == $victim } worker_pids($sc)),
			"kill_worker: new worker processes after kill $round");
		check_rows_match_offsets($sc, "after kill $round");
	}

	finish_producer($p, 'kill_worker');
	check_exactly_once($sc, $p);
	stop_scenario($sc);
}

# ------------------------------------ 2. kill -9 of the postmaster

{
	my $sc = setup_scenario('kill_postmaster', batch_size => 200);
	ok(wait_running($sc, 'pipeline kill_postmaster to run'), 'kill_postmaster: the pipeline runs');
	my $p = start_producer($sc, 1000001, 40, 250, 0.1);
	ok(wait_rows_above($sc, 0, 'kill_postmaster: the first rows'), 'kill_postmaster: rows arrive');

	my $pm = (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0];
	my @children = postmaster_children($pm);
	my $committed_before = producer_committed($p);
	my $rows_before = target_rows($sc);
	note "kill -9 of postmaster $pm at $rows_before rows, producer at id $committed_before";
	$node->kill9;

	# the orphans (the pipeline worker among them) must notice and exit
	# before a new postmaster can take over the shared memory
	ok( poll_until(sub { !grep { process_alive($_) } @children }, 60,
			'the processes of the killed postmaster to exit'),
		'kill_postmaster: every process of the killed postmaster exited')
	  or diag('still running: ' . join(' ', grep { process_alive($_) } @children));
	cmp_ok($committed_before, '<', $p->{last},
		'kill_postmaster: the postmaster was killed while messages were still being produced');
	ok( poll_until(sub { producer_committed($p) > $committed_before },
			$wait_s, 'the producer to go on'),
		'kill_postmaster: messages kept arriving while the server was down');

	# the new postmaster takes a lock file naming a pid that still exists
	# (a zombie not reaped yet) for a live postmaster's; init may take a
	# moment to reap the killed one
	poll_until(sub { !kill(0, $pm) }, 60, 'the killed postmaster to be reaped');
	ok($node->start(fail_ok => 1), 'kill_postmaster: the server starts again');
	ok(wait_running($sc, 'pipeline kill_postmaster to come back'),
		'kill_postmaster: the pipeline resumed by itself after the restart');
	check_rows_match_offsets($sc, 'after the restart');

	finish_producer($p, 'kill_postmaster');
	check_exactly_once($sc, $p);
	stop_scenario($sc);
}

# ------------------------------------ 3. brokers down

SKIP:
{
	skip 'stopping brokers needs the test broker\'s control channel (KAFKA_BROKERS is a real cluster)', 15
	  unless is_mock();

	my $sc = setup_scenario('broker_down', unique => 1);
	ok(wait_running($sc, 'pipeline broker_down to run'), 'broker_down: the pipeline runs');
	my $p = start_producer($sc, 2000001, 40, 250, 0.1);
	ok(wait_rows_above($sc, 0, 'broker_down: the first rows'), 'broker_down: rows arrive');

	my $committed_before = producer_committed($p);
	note 'every broker down at ' . target_rows($sc) . " rows, producer at id $committed_before";
	broker_ctl('down', 'all');
	my $rows_down = target_rows($sc);
	# the outage itself lasts a fixed time; nothing waits on it
	sleep 5;
	my $rows_still_down = target_rows($sc);
	broker_ctl('up', 'all');
	note "rows while every broker was down: $rows_down, then $rows_still_down";
	cmp_ok($committed_before, '<', $p->{last},
		'broker_down: the brokers went down while messages were still being produced');
	check_rows_match_offsets($sc, 'after an outage of every broker');

	# then one broker, which stalls the partitions it leads
	ok(wait_rows_above($sc, $rows_still_down, 'broker_down: rows after the outage'),
		'broker_down: rows arrive again once the brokers are up');
	broker_ctl('down', '1');
	sleep 3;
	broker_ctl('up', '1');
	check_rows_match_offsets($sc, 'after an outage of broker 1');

	finish_producer($p, 'broker_down');
	check_exactly_once($sc, $p);
	stop_scenario($sc);
}

# ------------------------------------ 4. stop and start, again and again

{
	my $sc = setup_scenario('stop_start', parallelism => 2);
	ok(wait_running($sc, 'pipeline stop_start to run'), 'stop_start: the pipeline runs');
	my $p = start_producer($sc, 3000001, 60, 150, 0.1);

	my ($cycles, $cycles_mid_stream, $stops_ok, $quiet_ok) = (0, 0, 0, 0);
	my $progress_ok = 1;
	while ($cycles < 4 || !producer_finished($p))
	{
		last if $cycles >= 20;
		my $before = committed_offsets($sc) // 0;
		# run until the pipeline made progress (or has caught up)
		$progress_ok &&= poll_until(
			sub {
				my $c = committed_offsets($sc);
				defined $c
				  && ($c > $before
					|| (producer_finished($p) && $c >= $p->{last} - $p->{first} + 1));
			},
			$wait_s,
			"stop_start: progress in cycle $cycles");
		my $producing = !producer_finished($p);
		$node->safe_psql('postgres', "SELECT sales_kafka.stop_pipeline('stop_start')");
		$cycles++;
		$cycles_mid_stream++ if $producing;
		$stops_ok++
		  if $node->safe_psql('postgres',
			"SELECT state || ' ' || coalesce(cardinality(worker_pids), 0)"
			  . " FROM sales_kafka.pipeline_status WHERE pipeline = 'stop_start'") eq
		  'stopped 0';
		my $r1 = rows_and_offsets($sc);
		my $r2 = rows_and_offsets($sc);
		my ($rows, $offsets) = $r2 =~ /^(\d+) rows, (\d+) offsets$/;
		$quiet_ok++ if $r1 eq $r2 && $rows == $offsets;
		note "cycle $cycles: stopped at $r2" . ($producing ? ', producing' : '');
		$node->safe_psql('postgres', "SELECT sales_kafka.start_pipeline('stop_start')");
	}
	ok($progress_ok, "stop_start: the pipeline made progress after every start ($cycles cycles)");
	cmp_ok($cycles_mid_stream, '>=', 2,
		"stop_start: stopped and started while messages were arriving ($cycles_mid_stream times)");
	is($stops_ok, $cycles, 'stop_start: every stop_pipeline left the pipeline stopped without workers');
	is($quiet_ok, $cycles,
		'stop_start: a stopped pipeline writes nothing, and its rows match its offsets');
	ok(wait_running($sc, 'pipeline stop_start to run after the last start'),
		'stop_start: the pipeline runs after the last start');

	finish_producer($p, 'stop_start');
	check_exactly_once($sc, $p);
	stop_scenario($sc);
}

# ------------------------------------ the server log

check_server_log($node, 1);

$node->stop('fast');
$producer->stop('fast');
done_testing();
