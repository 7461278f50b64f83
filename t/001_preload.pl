# A server with sales_kafka (and pg_cron) in shared_preload_libraries starts
# and stops cleanly, its launcher runs, CREATE EXTENSION works,
# sales_kafka.brokers is the run's bootstrap list, and the server log holds
# no unexpected ERROR, FATAL or PANIC and no crash.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;

my $node = new_node('preload');
if (!ok($node->start(fail_ok => 1), 'a server with sales_kafka preloaded starts'))
{
	done_testing();
	exit;
}

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'sales_kafka, pg_cron', 'sales_kafka and pg_cron are preloaded');
is($node->safe_psql('postgres', 'SHOW sales_kafka.brokers'),
	brokers(), 'sales_kafka.brokers is the bootstrap list of the run');
# what the preload did: the launcher runs (it has looked for pipelines in
# every database by then, through its starters)
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity
		 WHERE backend_type = 'sales_kafka launcher'}),
	'the launcher runs, once');

$node->safe_psql('postgres', 'CREATE EXTENSION sales_kafka');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_extension WHERE extname = 'sales_kafka'}),
	'1', 'CREATE EXTENSION sales_kafka installs the extension once');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_foreign_data_wrapper WHERE fdwname = 'sales_kafka'}),
	'1', 'the extension creates the sales_kafka foreign data wrapper');

# Every ERROR, FATAL or PANIC line of the server log, from byte $from on,
# that matches none of @expected.
sub unexpected_log_errors
{
	my ($from, @expected) = @_;
	my @bad;
	for my $line (split /\n/, slurp_file($node->logfile, $from))
	{
		next unless $line =~ /\b(?:ERROR|FATAL|PANIC):/;
		push @bad, $line unless grep { $line =~ $_ } @expected;
	}
	return @bad;
}

my $log_before_stop = -s $node->logfile;
is_deeply([ unexpected_log_errors(0) ],
	[], 'no ERROR, FATAL or PANIC in the server log while running');

ok($node->stop('fast', fail_ok => 1), 'the server stops cleanly in fast mode');
# a fast shutdown ends background workers that have no SIGTERM handler of
# their own with this FATAL: expected, and nothing else
is_deeply(
	[
		unexpected_log_errors(
			$log_before_stop,
			qr/FATAL:  terminating background worker ".*" due to administrator command/)
	],
	[],
	'no unexpected ERROR, FATAL or PANIC in the server log at shutdown');
like(slurp_file($node->logfile, $log_before_stop),
	qr/database system is shut down/, 'the server log records a clean shutdown');
check_server_log($node, 0);

done_testing();
