# What one role's pipelines can take from other roles', as the security
# review tried it with roles that are not superusers:
#
#   1. Worker slots.  sales_kafka.max_workers_per_owner caps the workers of
#      one role's pipelines (a superuser's are exempt), and start_pipeline()
#      refuses (53400) a pipeline that would pass it, or whose workers
#      would not find enough free slots, leaving it as it was.  A worker
#      that finds no slot it may take (a server start with more enabled
#      workers than slots, or than the cap allows) does not vanish: the
#      log has a WARNING, pipeline_status shows its pipeline "waiting" with
#      the reason (to the owner's roles), and the launcher starts it once a
#      slot is free for it (another pipeline stopped, the cap raised).
#      With the waiting list full as well, the pipeline fails with the
#      reason, and start_pipeline() brings it back once slots are free.
#   2. Privileges before locks.  create_pipeline() by a role without
#      privileges on a table another session holds locked fails at once
#      with 42501, instead of queueing for the lock (55P03 under
#      lock_timeout), for the target and for the foreign table alike.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;

# seconds any one wait of this test may take
my $wait_s = 90;

my $hog = 'regress_sales_kafka_hog';
my $victim = 'regress_sales_kafka_victim';
my $nobody = 'regress_sales_kafka_nobody';

my $node = new_node('limits');
$node->append_conf('postgresql.conf',
	"sales_kafka.max_workers = 3\nsales_kafka.max_workers_per_owner = 2\n");
$node->start;
my $topic = create_topic('limits', 4);

$node->safe_psql('postgres', qq{
	CREATE EXTENSION sales_kafka;
	CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka;
	CREATE FOREIGN TABLE src (n int) SERVER kafka OPTIONS (topic '$topic');
	CREATE ROLE $hog;
	CREATE ROLE $victim;
	CREATE ROLE $nobody;
	CREATE TABLE hog_t (n int);
	CREATE TABLE victim_t (n int);
	CREATE TABLE nobody_t (n int);
	GRANT SELECT ON src TO $hog, $victim;
	GRANT INSERT ON hog_t TO $hog;
	GRANT INSERT ON victim_t TO $victim;
	GRANT INSERT ON nobody_t TO $nobody;
	CREATE TABLE su_t (n int);
});

# ---------------------------------------------------------------- helpers

# Run $sql as $role (superuser if undef); returns psql's stderr, with
# SQLSTATEs in error messages.
sub run_as
{
	my ($role, $sql) = @_;
	my $set = defined $role ? "SET ROLE $role;\n" : '';
	my ($ret, $out, $err) =
	  $node->psql('postgres', "\\set VERBOSITY verbose\n$set$sql", timeout => $wait_s);
	return $err;
}

# The state of a pipeline in pipeline_status, as $role sees it
sub state_of
{
	my ($pipeline) = @_;
	return $node->safe_psql('postgres',
		"SELECT state FROM sales_kafka.pipeline_status WHERE pipeline = '$pipeline'");
}

# Wait until every pipeline of the list shows the state of the list
sub wait_states
{
	my ($what, %states) = @_;
	my $want = join(',', map { "$_=$states{$_}" } sort keys %states);
	my $names = join(',', map { "'$_'" } keys %states);
	my $got;
	my $ok = poll_until(
		sub {
			$got = try_query($node, 'postgres',
				"SELECT string_agg(pipeline || '=' || state, ',' ORDER BY pipeline)"
				  . " FROM sales_kafka.pipeline_status WHERE pipeline IN ($names)");
			defined $got && $got eq $want;
		},
		$wait_s,
		$what);
	diag("pipeline states: " . ($got // 'none') . ", wanted $want") unless $ok;
	return $ok;
}

# Whether the server log has a line matching $re after byte $offset
sub log_has
{
	my ($re, $offset) = @_;
	return poll_until(
		sub { substr(slurp_file($node->logfile), $offset) =~ $re },
		$wait_s, "$re in the server log");
}

# ---------------------------------------------------------------- 1. slots

# a superuser's pipeline is exempt from the per-owner cap
$node->safe_psql('postgres', q{
	SELECT sales_kafka.create_pipeline('su', 'src', 'su_t', parallelism => 3);
	SELECT sales_kafka.start_pipeline('su');
});
ok(wait_pipeline_running($node, 'postgres', 'su', 3, $wait_s, 'pipeline su'),
	'a superuser\'s pipeline runs 3 workers, more than sales_kafka.max_workers_per_owner');
$node->safe_psql('postgres', q{SELECT sales_kafka.stop_pipeline('su')});

# one role cannot take more than its share
run_as($hog, q{SELECT sales_kafka.create_pipeline('hog', 'src', 'hog_t', parallelism => 3)});
like(
	run_as($hog, q{SELECT sales_kafka.start_pipeline('hog')}),
	qr/ERROR:  53400: too many pipeline workers for role "$hog"/,
	'start_pipeline refuses 3 workers to a role that may run 2');
is(state_of('hog'), 'stopped', 'and leaves the pipeline stopped');

run_as($hog, q{
	SELECT sales_kafka.create_pipeline('hog2', 'src', 'hog_t', parallelism => 2);
	SELECT sales_kafka.start_pipeline('hog2');
	SELECT sales_kafka.create_pipeline('hog3', 'src', 'hog_t');
});
ok(wait_pipeline_running($node, 'postgres', 'hog2', 2, $wait_s, 'pipeline hog2'),
	'the role runs a pipeline of 2 workers');
like(
	run_as($hog, q{SELECT sales_kafka.start_pipeline('hog3')}),
	qr/ERROR:  53400: too many pipeline workers for role "$hog"/,
	'but no third worker in another pipeline');

# another role gets the slots that are free, and a clear error beyond them
run_as($victim, q{
	SELECT sales_kafka.create_pipeline('v', 'src', 'victim_t', parallelism => 2);
	SELECT sales_kafka.create_pipeline('v1', 'src', 'victim_t');
});
like(
	run_as($victim, q{SELECT sales_kafka.start_pipeline('v')}),
	qr/ERROR:  53400: not enough free pipeline worker slots for pipeline "v"/,
	'start_pipeline refuses 2 workers when 1 slot is free');
is(state_of('v'), 'stopped', 'instead of leaving the pipeline "starting" for ever');
is(run_as($victim, q{SELECT sales_kafka.start_pipeline('v1')}), '',
	'the free slot takes a pipeline of 1 worker');
ok(wait_pipeline_running($node, 'postgres', 'v1', 1, $wait_s, 'pipeline v1'),
	'which runs');

# at a server start, a worker beyond the cap waits, says why, and starts
# once the cap is raised
my $offset = -s $node->logfile;
$node->append_conf('postgresql.conf', "sales_kafka.max_workers_per_owner = 1\n");
$node->restart;
ok(wait_states('hog2 waiting for the cap, v1 running', hog2 => 'waiting', v1 => 'running'),
	'a restart with a cap of 1: of pipeline hog2 one worker waits, v1 runs');
ok( log_has(
		qr/WARNING:  too many pipeline workers for the owner of pipeline "hog2"/, $offset),
	'the log says why it waits');
is( $node->safe_psql('postgres',
		"SET ROLE $hog; SELECT last_error FROM sales_kafka.pipeline_status WHERE pipeline = 'hog2'"),
	'too many pipeline workers for the owner of pipeline "hog2"',
	'pipeline_status tells the owner why');
is( $node->safe_psql('postgres',
		"SET ROLE $victim; SELECT last_error FROM sales_kafka.pipeline_status WHERE pipeline = 'hog2'"),
	'<insufficient privilege>',
	'and no one else');
$node->append_conf('postgresql.conf', "sales_kafka.max_workers_per_owner = 2\n");
$node->reload;
ok(wait_pipeline_running($node, 'postgres', 'hog2', 2, $wait_s, 'pipeline hog2 after the reload'),
	'with the cap raised, the launcher starts the waiting worker');

# at a server start with fewer slots than workers, one waits, and starts
# once the other pipeline stops
$offset = -s $node->logfile;
$node->append_conf('postgresql.conf', "sales_kafka.max_workers = 2\n");
$node->restart;
my $waiting;
ok( poll_until(
		sub {
			$waiting = try_query($node, 'postgres', q{
				SELECT string_agg(p.pipeline, ',') FROM sales_kafka.pipeline_status p
				 WHERE p.state = 'waiting'
				HAVING (SELECT count(*) FROM sales_kafka._pipeline_slots() WHERE state = 'running') = 2
				   AND (SELECT count(*) FROM sales_kafka._pipeline_slots() WHERE state = 'waiting') = 1});
			defined $waiting && $waiting ne '';
		},
		$wait_s,
		'2 running workers and 1 waiting'),
	'a restart with 2 slots for 3 workers: 2 run, 1 waits');
ok(log_has(qr/WARNING:  no free pipeline worker slot for pipeline "$waiting"/, $offset),
	'the log says why it waits');
is( $node->safe_psql('postgres',
		"SELECT last_error FROM sales_kafka.pipeline_status WHERE pipeline = '$waiting'"),
	qq{no free pipeline worker slot for pipeline "$waiting"},
	'pipeline_status says why');
my ($other, $other_owner, $waiting_workers) =
  $waiting eq 'v1' ? ('hog2', $hog, 1) : ('v1', $victim, 2);
is(run_as($other_owner, qq{SELECT sales_kafka.stop_pipeline('$other')}), '',
	"the owner of $other stops it");
ok( wait_pipeline_running($node, 'postgres', $waiting, $waiting_workers, $wait_s,
		"pipeline $waiting once $other stopped"),
	'and the launcher starts the waiting worker in the slot that is free');
run_as($other_owner, qq{SELECT sales_kafka.drop_pipeline('$other')});
run_as($waiting eq 'v1' ? $victim : $hog, qq{SELECT sales_kafka.drop_pipeline('$waiting')});

# with the waiting list full too (4 entries a slot), a worker stops its
# pipeline as failed, with the reason; start_pipeline() brings it back
$node->append_conf('postgresql.conf', "sales_kafka.max_workers = 1\n");
$node->restart;
$node->safe_psql('postgres', q{
	SELECT sales_kafka.create_pipeline('f' || i, 'src', 'su_t') FROM generate_series(1, 6) i;
	UPDATE sales_kafka.pipeline SET enabled = true WHERE name ~ '^f[1-6]$';
});
$offset = -s $node->logfile;
$node->restart;
my $states;
ok( poll_until(
		sub {
			$states = try_query($node, 'postgres', q{
				SELECT string_agg(state || ' ' || n, ', ' ORDER BY state)
				  FROM (SELECT state, count(*) AS n FROM sales_kafka.pipeline_status
				         WHERE pipeline ~ '^f[1-6]$' GROUP BY state) s});
			defined $states && $states eq 'failed 1, running 1, waiting 4';
		},
		$wait_s,
		'1 running, 4 waiting and 1 failed pipeline'),
	'6 workers at a start with 1 slot: 1 runs, 4 wait, and the one the list has no room for fails')
  or diag("states: " . ($states // 'none'));
my $failed = $node->safe_psql('postgres',
	q{SELECT pipeline FROM sales_kafka.pipeline_status WHERE state = 'failed'});
is( $node->safe_psql('postgres',
		"SELECT last_error FROM sales_kafka.pipeline_status WHERE pipeline = '$failed'"),
	qq{no free pipeline worker slot for pipeline "$failed"},
	'saying why');
ok(log_has(qr/WARNING:  no free pipeline worker slot for pipeline "$failed"/, $offset),
	'in the log too');
like(
	run_as(undef, qq{SELECT sales_kafka.start_pipeline('$failed')}),
	qr/ERROR:  53400: not enough free pipeline worker slots for pipeline "$failed"/,
	'start_pipeline refuses it while no slot is free');
$node->safe_psql('postgres', qq{
	SELECT sales_kafka.stop_pipeline(name) FROM sales_kafka.pipeline
	 WHERE name ~ '^f[1-6]\$' AND name <> '$failed';
});
# (a waiting worker the launcher started meanwhile leaves once it sees its
# pipeline stopped)
poll_until(
	sub {
		my $n = try_query($node, 'postgres', 'SELECT count(*) FROM sales_kafka._pipeline_slots()');
		defined $n && $n == 0;
	},
	$wait_s,
	'every slot to be free');
is(run_as(undef, qq{SELECT sales_kafka.start_pipeline('$failed')}), '',
	'and starts it once the others are stopped');
ok(wait_pipeline_running($node, 'postgres', $failed, 1, $wait_s, "pipeline $failed"),
	'it runs again');
$node->safe_psql('postgres', q{
	SELECT sales_kafka.drop_pipeline(name) FROM sales_kafka.pipeline WHERE name ~ '^f[1-6]$';
});

# ---------------------------------------------------------------- 2. locks

my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN; LOCK TABLE victim_t IN ACCESS EXCLUSIVE MODE;'
	  . ' ALTER FOREIGN TABLE src ADD COLUMN locked int;');
like(
	run_as($hog, q{
		SET lock_timeout = '5s';
		SELECT sales_kafka.create_pipeline('grab', 'src', 'victim_t');
	}),
	qr/ERROR:  42501: permission denied for table victim_t/,
	'create_pipeline into a locked table without INSERT on it: 42501 at once, no wait for the lock');
like(
	run_as($nobody, q{
		SET lock_timeout = '5s';
		SELECT sales_kafka.create_pipeline('grab', 'src', 'nobody_t');
	}),
	qr/ERROR:  42501: permission denied for table src/,
	'create_pipeline from a locked foreign table without SELECT on it: 42501 at once');
$holder->query_safe('ROLLBACK');
$holder->quit;

check_server_log($node, 0);
$node->stop;
done_testing();
