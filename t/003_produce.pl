# INSERT into a Kafka foreign table at the edges: deliveries that fail make
# the commit fail and say how many, an unreachable leader times out within
# sales_kafka.produce_timeout, and an INSERT of a million rows runs in
# bounded memory.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;

my $node = new_node('produce');
$node->start;
my $failing = create_topic('produce_fail', 1);
my $million = create_topic('produce_million', 8);
$node->safe_psql('postgres', qq{
	CREATE EXTENSION sales_kafka;
	CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka;
	CREATE FOREIGN TABLE failing (p int OPTIONS (kafka 'partition'), v text)
		SERVER kafka OPTIONS (topic '$failing', format 'text');
	CREATE FOREIGN TABLE million (id bigint, product_name text, quantity int, price numeric)
		SERVER kafka OPTIONS (topic '$million');
});

sub high_watermark
{
	my ($topic) = @_;
	return $node->safe_psql('postgres',
		"SELECT sum(high) FROM sales_kafka.watermarks('kafka', '$topic')");
}

SKIP:
{
	skip 'fault injection needs the test broker', 7 unless is_mock();

	# the broker refuses every produce request
	broker_ctl('error', 'Produce', 'MSG_SIZE_TOO_LARGE', '50');
	my ($ret, $out, $err) = $node->psql('postgres', q{
		BEGIN;
		INSERT INTO failing VALUES (0, 'a'), (0, 'b'), (0, 'c');
		COMMIT;
	});
	like($err, qr/ERROR:  could not deliver 3 of 3 messages to Kafka/,
		'a commit whose messages are refused fails and counts them');
	like($err, qr/DETAIL:  Broker: Message size too large/,
		'the failure names the broker\'s reason');
	is(high_watermark($failing), '0', 'nothing reached the topic');
	broker_ctl('clear');

	$node->safe_psql('postgres', q{INSERT INTO failing VALUES (0, 'd'), (0, 'e')});
	is(high_watermark($failing), '2', 'once the broker accepts again, commits deliver');

	# every broker down: no acknowledgement within produce_timeout
	broker_ctl('down', 'all');
	my $start = time;
	($ret, $out, $err) = $node->psql('postgres', q{
		SET sales_kafka.produce_timeout = '1s';
		INSERT INTO failing VALUES (0, 'f');
	});
	my $elapsed = time - $start;
	like($err, qr/ERROR:  could not deliver 1 of 1 messages to Kafka/,
		'a commit fails when the brokers do not acknowledge in time');
	cmp_ok($elapsed, '<', 30, "it gave up after produce_timeout, not later (${elapsed}s)");
	broker_ctl('up', 'all');
	ok(poll_until(sub { high_watermark($failing) eq '2' }, 30, 'the broker to come back'),
		'the timed-out message was not produced after all');
}

# a million rows: the spool spills to disk, librdkafka's queue is bounded
my $session = $node->background_psql('postgres');
my $pid = $session->query_safe('SELECT pg_backend_pid()');
$session->query_safe(q{
	INSERT INTO million
	SELECT i, 'product ' || (i % 100), (i % 5) + 1, (i % 1000) / 10.0
	  FROM generate_series(1, 1000000) i});
my $hwm;
open(my $fh, '<', "/proc/$pid/status") or die "no status of $pid: $!";
while (<$fh>) { $hwm = $1 if /^VmHWM:\s+(\d+)/; }
close($fh);
$session->quit;
is(high_watermark($million), '1000000', 'an INSERT of a million rows produced 1,000,000 messages');
cmp_ok($hwm, '<', 300 * 1024, "peak backend memory stayed bounded (VmHWM ${hwm} kB)");

$node->stop('fast');
done_testing();
