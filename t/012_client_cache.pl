# A backend keeps its librdkafka handles from one query to the next, one set
# per server, role and kind, and never lets one serve another role: a
# query on a warm handle starts no thread and opens no connection, and
# asks for a topic's watermarks once however many scans of the topic it
# has.  ALTER SERVER and user mapping changes, a query that fails or is
# cancelled while a handle serves it, and an owner who lost a right all
# retire a handle; a retired handle's threads are gone once its
# transaction ends, and every handle goes at backend exit.
#
# What the cache does shows in its DEBUG3 messages (as postgres_fdw's
# connection cache shows in its own); what librdkafka does shows in the
# backend's threads and sockets (/proc).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;

my $node = new_node('cache');
$node->start;
my $topic = topic_prefix() . 'watermarks3';    # 3 partitions, 10 messages each

$node->safe_psql('postgres', qq{
	CREATE EXTENSION sales_kafka;
	CREATE ROLE regress_sales_kafka_alice;
	CREATE ROLE regress_sales_kafka_bob;
	CREATE ROLE regress_sales_kafka_owner;
	GRANT pg_read_server_files TO regress_sales_kafka_owner;
	GRANT USAGE ON FOREIGN DATA WRAPPER sales_kafka TO regress_sales_kafka_owner;
	CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka;
	CREATE FOREIGN TABLE w3 (p int OPTIONS (kafka 'partition'),
	                         o bigint OPTIONS (kafka 'offset'),
	                         v text OPTIONS (kafka 'payload'))
	  SERVER kafka OPTIONS (topic '$topic', format 'text');
	GRANT SELECT ON w3 TO regress_sales_kafka_alice, regress_sales_kafka_bob;
	SET ROLE regress_sales_kafka_owner;
	-- a property that reads a file of the server: its owner needs the right
	CREATE SERVER kafka_files FOREIGN DATA WRAPPER sales_kafka
	  OPTIONS ("ssl.ca.location" '/dev/null');
	RESET ROLE;
	CREATE FOREIGN TABLE w3_files (v text OPTIONS (kafka 'payload'))
	  SERVER kafka_files OPTIONS (topic '$topic', format 'text');
});

my $session = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $session->query_safe('SELECT pg_backend_pid()');
my $me = $session->query_safe('SELECT current_user');
$session->query_safe('SET client_min_messages = debug3');

# Run a query; returns its output and its messages (the cache's, errors).
sub run
{
	my ($sql) = @_;
	$session->{stderr} = '';
	my $out = $session->query($sql);
	my $err = $session->{stderr};
	$session->{stderr} = '';
	return ($out, $err);
}

sub count_of
{
	my ($re, $text) = @_;
	my @m = ($text =~ /$re/g);
	return scalar @m;
}

my $new = qr/new Kafka consumer for server "kafka" and role "\Q$me\E"/;
my $reused = qr/Kafka consumer of server "kafka" for role "\Q$me\E" reused/;
my $marks = qr/watermarks of topic "\Q$topic\E" read from Kafka/;

sub backend_threads
{
	opendir(my $dh, "/proc/$pid/task") or die "no /proc/$pid/task: $!";
	my @t = sort grep { !/^\./ } readdir($dh);
	closedir($dh);
	return @t;
}

sub backend_sockets
{
	opendir(my $dh, "/proc/$pid/fd") or die "no /proc/$pid/fd: $!";
	my @s;
	for my $fd (grep { !/^\./ } readdir($dh))
	{
		my $target = readlink("/proc/$pid/fd/$fd");
		push @s, $1 if defined $target && $target =~ /^socket:\[(\d+)\]$/;
	}
	closedir($dh);
	return sort @s;
}

# 1. The first query makes a consumer, the next ones reuse it.
is(scalar(backend_threads()), 1, 'a fresh backend runs no librdkafka thread');
my ($out, $err) = run('SELECT count(*) FROM w3');
is($out, '30', 'the first query reads the topic');
is(count_of($new, $err), 1, 'the first query makes a consumer');
($out, $err) = run('SELECT count(*) FROM w3');
is($out, '30', 'the second query reads the topic');
is(count_of($new, $err), 0, 'the second query makes no consumer');
is(count_of($reused, $err), 1, 'it reuses the first one');
is(count_of($marks, $err), 1, 'and asks for the watermarks once');

# 2. Two scans of the topic in one query: two consumers (each reads its own
# partitions), one request for the watermarks, which both scans read up to.
($out, $err) = run('SELECT count(*) FROM w3 a JOIN w3 b USING (p, o)');
is($out, '30', 'a self-join reads the same snapshot on both sides');
is(count_of($marks, $err), 1, 'a query with two scans of the topic asks for its watermarks once');
($out, $err) = run('SELECT count(*) FROM w3 a JOIN w3 b USING (p, o)');
is(count_of($new, $err), 0, 'the second self-join makes no consumer');
is(count_of($reused, $err), 2, 'it reuses both');

# 3. Warm handles start no thread and open no connection: librdkafka's
# threads and sockets are the same after ten more queries.
my @threads = backend_threads();
my @sockets = backend_sockets();
cmp_ok(scalar(@threads), '>', 1, 'the kept consumers keep their threads');
$err = '';
for my $i (1 .. 10)
{
	my ($o, $e) = run(
		$i % 3 == 0 ? "SELECT count(*) FROM sales_kafka.watermarks('kafka', '$topic')"
		: $i % 3 == 1 ? 'SELECT count(*) FROM w3 a JOIN w3 b USING (p, o)'
		: 'SELECT count(*) FROM w3 WHERE p = 1');
	$err .= $e;
}
is(count_of(qr/new Kafka/, $err), 0, 'ten more queries make no handle');
is_deeply([ backend_threads() ], \@threads,
	'ten more queries start no librdkafka thread that outlives them');
is_deeply([ grep { my $s = $_; !grep { $_ eq $s } @sockets } backend_sockets() ], [],
	'ten more queries open no new connection');

# 4. A query that fails after its scan never gives the consumer back: it is
# destroyed, and the next query makes a new one.
($out, $err) = run('SELECT count(*) / 0 FROM w3');
like($err, qr/division by zero/, 'a query fails after its scan');
like($err, qr/Kafka consumer of server "kafka" for role "\Q$me\E" closed: the query it served failed/,
	'its consumer is destroyed, not kept');
($out, $err) = run('SELECT count(*) FROM w3');
is($out, '30', 'the next query reads the topic');
is(count_of($new, $err), 1, 'with a new consumer');

# 5. A handle serves one role only, even through the same PUBLIC mapping.
($out, $err) = run('SET ROLE regress_sales_kafka_alice; SELECT count(*) FROM w3');
like($err, qr/new Kafka consumer for server "kafka" and role "regress_sales_kafka_alice"/,
	'another role gets a consumer of its own');
is(count_of(qr/reused/, $err), 0, 'and none of the first role\'s');
($out, $err) = run('SET ROLE regress_sales_kafka_bob; SELECT count(*) FROM w3');
like($err, qr/new Kafka consumer for server "kafka" and role "regress_sales_kafka_bob"/,
	'a third role gets one of its own too');
is(count_of(qr/reused/, $err), 0, 'and none of alice\'s');
($out, $err) = run('SET ROLE regress_sales_kafka_alice; SELECT count(*) FROM w3; RESET ROLE');
like($err, qr/Kafka consumer of server "kafka" for role "regress_sales_kafka_alice" reused/,
	'each role gets its own back');

# 6. ALTER SERVER and user mapping changes retire the handles they concern.
($out, $err) = run(q{ALTER SERVER kafka OPTIONS (ADD "client.rack" 'rack1')});
like($err, qr/Kafka consumer of server "kafka" for role "\Q$me\E" closed: its server or a user mapping changed/,
	'ALTER SERVER closes the server\'s handles');
($out, $err) = run('SELECT count(*) FROM w3');
is(count_of($new, $err), 1, 'the next query makes a consumer with the new options');
run('SET ROLE regress_sales_kafka_alice; SELECT count(*) FROM w3; RESET ROLE');
($out, $err) = run('CREATE USER MAPPING FOR regress_sales_kafka_alice SERVER kafka');
like($err, qr/Kafka consumer of server "kafka" for role "regress_sales_kafka_alice" closed: its server or a user mapping changed/,
	'a new user mapping closes the handles that may have used another');
($out, $err) = run('SET ROLE regress_sales_kafka_alice; SELECT count(*) FROM w3; RESET ROLE');
like($err, qr/new Kafka consumer for server "kafka" and role "regress_sales_kafka_alice"/,
	'the role then gets a consumer made with its own mapping');
($out, $err) = run(q{ALTER USER MAPPING FOR regress_sales_kafka_alice SERVER kafka OPTIONS (ADD "sasl.username" 'alice')});
like($err, qr/Kafka consumer of server "kafka" for role "regress_sales_kafka_alice" closed: its server or a user mapping changed/,
	'ALTER USER MAPPING closes them too');

# ... and a retired handle's threads are gone when its transaction ends.
($out, $err) = run(q{ALTER SERVER kafka OPTIONS (DROP "client.rack")});
is(scalar(backend_threads()), 1,
	'no librdkafka thread outlives the handles that ALTER SERVER retired');

# 7. The rights of the server's owner are checked at every reuse: an owner
# who lost pg_read_server_files no longer gets the handle that was made
# while it had it.
($out, $err) = run('SELECT count(*) FROM w3_files');
is($out, '30', 'a server whose owner may read files is used');
$node->safe_psql('postgres', 'REVOKE pg_read_server_files FROM regress_sales_kafka_owner');
($out, $err) = run('SELECT count(*) FROM w3_files');
like($err, qr/server "kafka_files" has option "ssl.ca.location", which its owner may not set/,
	'once the owner lost the right, the kept handle is refused');
like($err, qr/Kafka consumer of server "kafka_files" for role "\Q$me\E" closed: its server's owner may no longer set its properties/,
	'and destroyed');
$node->safe_psql('postgres', 'GRANT pg_read_server_files TO regress_sales_kafka_owner');
($out, $err) = run('SELECT count(*) FROM w3_files');
is($out, '30', 'with the right back, the server is used again');

# 8. A query cancelled while a handle waits for Kafka retires it.
SKIP:
{
	skip 'slowing a broker needs the test broker\'s control channel (KAFKA_BROKERS is a real cluster)', 3
	  unless is_mock();
	run('SELECT count(*) FROM w3');
	broker_ctl('rtt', $_, 3000) for (1 .. 3);
	($out, $err) = run(q{SET statement_timeout = '500ms'; SELECT count(*) FROM w3});
	broker_ctl('clear');
	run('RESET statement_timeout');
	like($err, qr/canceling statement due to statement timeout/, 'a scan waiting for slow brokers is cancelled');
	like($err, qr/Kafka consumer of server "kafka" for role "\Q$me\E" closed: the query it served failed/,
		'its consumer is destroyed, not kept');
	($out, $err) = run('SELECT count(*) FROM w3');
	is(count_of($new, $err), 1, 'the next query makes a new consumer');
}

# 9. INSERT borrows the producer of the server for the inserting role, and
# the next transaction reuses it.
my $out_topic = create_topic('cache', 1);
$node->safe_psql('postgres', qq{
	CREATE FOREIGN TABLE produced (v text OPTIONS (kafka 'payload'))
	  SERVER kafka OPTIONS (topic '$out_topic', format 'text');
});
($out, $err) = run(q{INSERT INTO produced VALUES ('m1')});
like($err, qr/new Kafka producer for server "kafka" and role "\Q$me\E"/,
	'the first INSERT makes a producer');
($out, $err) = run(q{BEGIN; INSERT INTO produced VALUES ('m2'); COMMIT});
like($err, qr/Kafka producer of server "kafka" for role "\Q$me\E" reused/,
	'the next transaction reuses it');
($out, $err) = run(q{SELECT string_agg(v, ',' ORDER BY v) FROM produced});
is($out, 'm1,m2', 'both transactions produced their message');

# 10. Every handle goes at backend exit.
$session->query('SET log_min_messages = debug3');
$session->quit;
ok( poll_until(
		sub { slurp_file($node->logfile) =~ /closed: the backend exits/ },
		30, 'the backend to exit'),
	'the backend destroys its handles at exit');

$node->stop('fast');
done_testing();
