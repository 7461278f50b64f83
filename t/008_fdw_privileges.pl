# Nothing leaves the server before the caller's privileges are checked, and
# broker addresses come only from what a superuser or the server's owner
# set: planning (EXPLAIN) never contacts Kafka, a role without privileges
# cannot point the "sales_kafka.brokers" default elsewhere, and the wait
# for brokers is bounded by sales_kafka.connect_timeout alone (a broker
# 300 ms away is reached; one that accepts and never answers is given up
# on after connect_timeout, not after half a second).
#
# A listening socket that never accepts stands for the attacker's host or
# the silent broker: the kernel completes every connection to it, and a
# non-blocking accept() afterwards tells whether anyone connected.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use IO::Socket::INET;
use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;
use Time::HiRes qw(time);

my $listener = IO::Socket::INET->new(
	LocalAddr => '127.0.0.1',
	LocalPort => 0,
	Listen => 64,
	Proto => 'tcp',
	Blocking => 0) or die "could not listen: $!";
my $listen_at = '127.0.0.1:' . $listener->sockport;

# How many connections reached the listener since the last call.
sub connections
{
	my $n = 0;
	while (my $c = $listener->accept)
	{
		$n++;
		close $c;
	}
	return $n;
}

my $node = new_node('privileges');
$node->start;
my $topic = create_topic('privileges', 1);
produce($topic, 0, '{"id": 1}', '{"id": 2}');

# The DBA's server: its PUBLIC user mapping holds the cluster's password.
# "corp" points at the listener, so any contact shows.
$node->safe_psql('postgres', qq{
	CREATE EXTENSION sales_kafka;
	CREATE ROLE regress_sales_kafka_nobody LOGIN;
	CREATE ROLE regress_sales_kafka_reader LOGIN;
	CREATE SERVER corp FOREIGN DATA WRAPPER sales_kafka
	  OPTIONS (brokers '$listen_at', "security.protocol" 'sasl_plaintext',
	           "sasl.mechanism" 'PLAIN');
	CREATE USER MAPPING FOR PUBLIC SERVER corp
	  OPTIONS ("sasl.username" 'corp', "sasl.password" 'corp-secret');
	CREATE FOREIGN TABLE corp_sales (id int) SERVER corp OPTIONS (topic '$topic');
	GRANT SELECT ON corp_sales TO regress_sales_kafka_reader;
	CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka;
	CREATE FOREIGN TABLE sales (id int) SERVER kafka OPTIONS (topic '$topic');
	GRANT SELECT ON sales TO regress_sales_kafka_reader;
});
connections();

# 1. A role without any privilege cannot redirect the default brokers ...
my ($ret, $out, $err) = $node->psql('postgres',
	"SET sales_kafka.brokers = '$listen_at'",
	extra_params => [ '-U', 'regress_sales_kafka_nobody' ]);
like($err, qr/permission denied to set parameter "sales_kafka.brokers"/,
	'a role without privileges cannot set sales_kafka.brokers');

# ... and its EXPLAIN of a table it may not read contacts nobody.
($ret, $out, $err) = $node->psql('postgres',
	'EXPLAIN SELECT * FROM corp_sales',
	extra_params => [ '-U', 'regress_sales_kafka_nobody' ]);
like($err, qr/permission denied for foreign table corp_sales/,
	'EXPLAIN of a foreign table without SELECT is refused');
is(connections(), 0,
	'EXPLAIN without SELECT made no connection to the server\'s brokers');

# 2. Planning never contacts Kafka, whoever plans: EXPLAIN by a reader,
# a prepared statement, and the planner's estimate after ANALYZE.
$out = $node->safe_psql('postgres', 'EXPLAIN SELECT * FROM corp_sales',
	extra_params => [ '-U', 'regress_sales_kafka_reader' ]);
like($out, qr/Foreign Scan on corp_sales/, 'a reader may EXPLAIN the table');
$node->safe_psql('postgres',
	'PREPARE q AS SELECT count(*) FROM corp_sales; EXPLAIN EXECUTE q',
	extra_params => [ '-U', 'regress_sales_kafka_reader' ]);
is(connections(), 0, 'planning made no connection to the brokers');

$node->safe_psql('postgres', 'ANALYZE sales');
is( $node->safe_psql('postgres',
		q{SELECT reltuples FROM pg_class WHERE relname = 'sales'}),
	'2', 'ANALYZE counts the messages the topic keeps');
like(
	$node->safe_psql('postgres', 'EXPLAIN SELECT * FROM sales'),
	qr/rows=2 /, 'the planner estimates from what ANALYZE found');
is( $node->safe_psql('postgres', 'SELECT count(*) FROM sales',
		extra_params => [ '-U', 'regress_sales_kafka_reader' ]),
	'2', 'a reader reads the topic');

# 3. connect_timeout bounds the wait for brokers, and nothing else does.
# The listener accepts (in the kernel) and never answers.
$node->safe_psql('postgres', qq{
	CREATE SERVER silent FOREIGN DATA WRAPPER sales_kafka
	  OPTIONS (brokers '$listen_at');
});
my $start = time;
($ret, $out, $err) = $node->psql('postgres', q{
	SET sales_kafka.connect_timeout = '3s';
	\set VERBOSITY verbose
	SELECT * FROM sales_kafka.topics('silent');
});
my $elapsed = time - $start;
like($err, qr/HV00N: could not connect to Kafka brokers of server "silent"/,
	'a broker that never answers is an unreachable broker (HV00N)');
cmp_ok($elapsed, '>=', 2.9,
	"the wait lasted connect_timeout, not less (${elapsed}s for 3s)");
ok(connections() > 0, 'the silent broker was tried');

SKIP:
{
	skip 'slowing a broker needs the test broker\'s control channel (KAFKA_BROKERS is a real cluster)', 2
	  unless is_mock();
	broker_ctl('rtt', $_, 300) for (1 .. 3);
	($ret, $out, $err) = $node->psql('postgres', qq{
		SET sales_kafka.connect_timeout = '20s';
		SELECT partition, high FROM sales_kafka.watermarks('kafka', '$topic');
	});
	broker_ctl('clear');
	is($err, '', 'brokers 300 ms away answer within connect_timeout');
	is($out, '0|2', 'their watermarks are read');
}

# 5. librdkafka's texts never show a secret of the user mapping: here the
# "password" is the very words of the connection error librdkafka reports.
$node->safe_psql('postgres', q{
	CREATE SERVER refusing FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers '127.0.0.1:1');
	CREATE USER MAPPING FOR PUBLIC SERVER refusing
	  OPTIONS ("sasl.username" 'corp', "sasl.password" 'Connection refused');
});
($ret, $out, $err) = $node->psql('postgres', q{
	SET sales_kafka.connect_timeout = '1s';
	SELECT * FROM sales_kafka.topics('refusing');
});
like($err, qr/could not connect to Kafka brokers of server "refusing"/,
	'an unreachable broker is reported');
unlike($err, qr/Connection refused/,
	"the error does not show the user mapping's password");
like($err, qr/DETAIL:.*\*\*\*/,
	"librdkafka's reason is shown, with the secret hidden");

# 6. A server made by an earlier version with librdkafka's unsecured test
# tokens (which crash librdkafka 2.0.2, and the cluster, when no token can
# be made) is refused when it would connect.  Its options are written
# straight into the catalog, as no CREATE SERVER may set them any more.
$node->safe_psql('postgres', q{
	CREATE SERVER old_oauth FOREIGN DATA WRAPPER sales_kafka
	  OPTIONS (brokers '127.0.0.1:1', "security.protocol" 'sasl_plaintext',
	           "sasl.mechanism" 'OAUTHBEARER');
	UPDATE pg_foreign_server
	   SET srvoptions = srvoptions || '{enable.sasl.oauthbearer.unsecure.jwt=true}'
	 WHERE srvname = 'old_oauth';
});
($ret, $out, $err) = $node->psql('postgres', q{
	SET sales_kafka.connect_timeout = '15s';
	SELECT * FROM sales_kafka.topics('old_oauth');
});
like($err, qr/server "old_oauth" has option "enable.sasl.oauthbearer.unsecure.jwt", which cannot be set/,
	'a server with unsecured test tokens is refused before librdkafka sees it');

# 4. Privileges before locks: a role that may not read a table cannot
# queue for a lock on it (and hold up everyone behind it) through the KPI
# layer's wait for writers.
$node->safe_psql('postgres', 'CREATE TABLE private_facts (id int)');
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN; LOCK TABLE private_facts IN ACCESS EXCLUSIVE MODE');
($ret, $out, $err) = $node->psql('postgres', q{
	SET statement_timeout = '20s';
	SELECT sales_kafka._wait_for_writers('private_facts');
}, extra_params => [ '-U', 'regress_sales_kafka_nobody' ]);
like($err, qr/permission denied for table private_facts/,
	'_wait_for_writers refuses a table the caller may not read before locking it');
$holder->query_safe('ROLLBACK');
$holder->quit;

check_server_log($node, 0);
$node->stop;
done_testing();
