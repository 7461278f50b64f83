# Waiting on Kafka is always cancellable, and failing calls leak nothing:
# statement_timeout and pg_cancel_backend interrupt a call that would wait
# ten minutes; 500 failing calls in one session leave the backend's thread
# count and memory flat; an unknown topic is a clear error.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;
use Time::HiRes qw(time);

my $node = new_node('calls');
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION sales_kafka;
	-- nothing listens on port 1
	CREATE SERVER kafka_down FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers '127.0.0.1:1');
	CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka;
});

# statement_timeout ends a call whose own timeout is ten minutes
my $start = time;
my ($ret, $out, $err) = $node->psql('postgres', q{
	SET sales_kafka.connect_timeout = '10min';
	SET statement_timeout = '300ms';
	SELECT * FROM sales_kafka.watermarks('kafka_down', 'sales');
});
my $elapsed = time - $start;
like($err, qr/canceling statement due to statement timeout/,
	'statement_timeout cancels a wait on unreachable brokers');
cmp_ok($elapsed, '<', 10,
	"the cancelled call returned long before its 10 minute timeout (${elapsed}s)");

# pg_cancel_backend (what Ctrl-C in psql sends) does too
my $session = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $session->query_safe('SELECT pg_backend_pid()');
$session->query_safe(q{SET sales_kafka.connect_timeout = '10min'});
$session->query_until(qr/started/, q{
	\echo started
	SELECT * FROM sales_kafka.topics('kafka_down');
});
ok( $node->poll_query_until('postgres', qq{
		SELECT wait_event_type = 'Extension' FROM pg_stat_activity WHERE pid = $pid}),
	'the waiting call shows an Extension wait event in pg_stat_activity');
$start = time;
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
# the next query runs only once the cancelled one has returned
$session->{stderr} = '';
$out = $session->query('SELECT 1');
$elapsed = time - $start;
like($session->{stderr}, qr/canceling statement due to user request/,
	'pg_cancel_backend cancels the wait');
$session->{stderr} = '';
is($out, '1', 'the session is usable after the cancel');
cmp_ok($elapsed, '<', 10, "the cancel took effect promptly (${elapsed}s)");

# 500 failing calls in one session: threads and memory stay flat
sub backend_threads
{
	my ($p) = @_;
	opendir(my $dh, "/proc/$p/task") or die "no /proc/$p/task: $!";
	my $n = grep { !/^\./ } readdir($dh);
	closedir($dh);
	return $n;
}

sub backend_rss_kb
{
	my ($p) = @_;
	open(my $fh, '<', "/proc/$p/status") or die "no /proc/$p/status: $!";
	while (<$fh>) { return $1 if /^VmRSS:\s+(\d+)/; }
	die "no VmRSS for $p";
}

sub context_bytes
{
	$session->{stderr} = '';
	return $session->query_safe(
		'SELECT sum(total_bytes) FROM pg_backend_memory_contexts');
}

$session->query_safe(q{SET sales_kafka.connect_timeout = '20ms'});
sub failing_calls
{
	my ($n) = @_;
	for my $i (1 .. $n)
	{
		$session->{stderr} = '';
		$session->query(($i % 2)
			? q{SELECT * FROM sales_kafka.topics('kafka_down')}
			: q{SELECT * FROM sales_kafka.watermarks('kafka_down', 'sales')});
		die "call $i did not fail as expected: $session->{stderr}"
		  unless $session->{stderr} =~ /could not connect to Kafka brokers/;
	}
}

# the call cancelled above gives up its handle and threads within a slice
ok(poll_until(sub { backend_threads($pid) == 1 }, 30, 'the cancelled call to let go'),
	'a cancelled call leaves no librdkafka thread behind')
  or diag(join("\n", map { chomp(my $c = slurp_file("$_/comm")); chomp(my $w = slurp_file("$_/wchan")); "$_: $c $w" }
		  glob("/proc/$pid/task/*")));

failing_calls(50);    # warm up caches and allocator
my $threads_before = backend_threads($pid);
my $rss_before = backend_rss_kb($pid);
my $ctx_before = context_bytes();

failing_calls(500);

my $threads_after = backend_threads($pid);
my $rss_after = backend_rss_kb($pid);
my $ctx_after = context_bytes();
is($threads_after, $threads_before,
	"thread count is flat after 500 failing calls ($threads_before before, $threads_after after)");
cmp_ok($rss_after - $rss_before, '<', 4096,
	"backend RSS is flat after 500 failing calls ($rss_before kB before, $rss_after kB after)");
cmp_ok($ctx_after - $ctx_before, '<', 64 * 1024,
	"backend memory contexts are flat after 500 failing calls ($ctx_before bytes before, $ctx_after after)");
is($threads_before, 1, 'no librdkafka thread outlives a call');
$session->quit;

# an unknown topic is SQLSTATE HV00R with a hint; the test broker creates
# topics on any metadata request, so there the error is injected
SKIP:
{
	skip 'error injection needs the test broker', 3 unless is_mock();
	my $topic = topic_prefix() . 'watermarks3';
	broker_ctl('error', 'ListOffsets', 'UNKNOWN_TOPIC_OR_PART', '10');
	($ret, $out, $err) = $node->psql('postgres', qq{
		\\set VERBOSITY verbose
		SELECT * FROM sales_kafka.watermarks('kafka', '$topic')});
	like($err, qr/ERROR:  HV00R: topic "$topic" does not exist on Kafka server "kafka"/,
		'an unknown topic is SQLSTATE HV00R');
	like($err, qr/HINT:  Check the topic name/, 'with a hint');
	broker_ctl('clear');
	is($node->safe_psql('postgres', qq{SELECT count(*) FROM sales_kafka.watermarks('kafka', '$topic')}),
		'3', 'the topic is found again once the broker answers normally');
}

$node->stop('fast');
done_testing();
