# What preloading sales_kafka does, read from the server rather than from
# the configuration the harness wrote: the library's shared memory and
# settings exist, its prefix is reserved, the launcher runs once (next to
# pg_cron's) and the postmaster restarts it, CREATE EXTENSION works, and the
# server starts and stops with no unexpected ERROR, FATAL or PANIC and no
# crash in its log.  A server without the preload loads the library on
# demand: the wrapper works, no worker and no shared memory exist, and the
# pipeline functions say what is missing.
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

# the shared memory of the pipelines, which only a preloaded library can ask for
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_shmem_allocations
		   WHERE name = 'sales_kafka' AND size > 0}),
	'1', 'the library allocated its shared memory at server start');
# the settings are the library's (a placeholder has context user and no type)
is( $node->safe_psql('postgres', q{
		SELECT context || ' ' || vartype || ' ' || source
		  FROM pg_settings WHERE name = 'sales_kafka.brokers'}),
	'superuser string configuration file',
	'sales_kafka.brokers is the library\'s setting, read from the configuration');
my ($rc, $out, $err) = $node->psql('postgres',
	'SET sales_kafka.no_such_setting = 1', on_error_stop => 1);
like($err, qr/invalid configuration parameter name "sales_kafka\.no_such_setting"/,
	'the sales_kafka prefix is reserved from the start');
# what the preload did: the launcher runs (it has looked for pipelines in
# every database by then, through its starters), and so does pg_cron's
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity
		 WHERE backend_type = 'sales_kafka launcher'}),
	'the launcher runs, once');
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity
		 WHERE backend_type = 'pg_cron launcher'}),
	'pg_cron\'s launcher runs too');

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
is_deeply(
	[
		unexpected_log_errors(
			0, qr/ERROR:  invalid configuration parameter name "sales_kafka\.no_such_setting"/)
	],
	[],
	'no ERROR, FATAL or PANIC in the server log while running, but the one asked for');

# the launcher is a static worker: the postmaster starts it again
my $launcher = $node->safe_psql('postgres', q{
	SELECT pid FROM pg_stat_activity WHERE backend_type = 'sales_kafka launcher'});
$node->safe_psql('postgres', "SELECT pg_terminate_backend($launcher)");
ok( $node->poll_query_until('postgres', qq{
		SELECT count(*) = 1 FROM pg_stat_activity
		 WHERE backend_type = 'sales_kafka launcher' AND pid <> $launcher}),
	'a terminated launcher is started again by the postmaster');

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

# Without the preload, the library loads when first used.
my $plain = new_node('on_demand');
$plain->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION sales_kafka');
is( $plain->safe_psql('postgres', q{
		SELECT count(*) FROM pg_stat_activity
		 WHERE backend_type = 'sales_kafka launcher'}),
	'0', 'without the preload: no launcher');
is( $plain->safe_psql('postgres',
		q{SELECT count(*) FROM pg_shmem_allocations WHERE name = 'sales_kafka'}),
	'0', 'without the preload: no shared memory');
($rc, $out, $err) = $plain->psql('postgres',
	q{CREATE SERVER typo FOREIGN DATA WRAPPER sales_kafka OPTIONS (broker 'a:1')});
like($err, qr/invalid option "broker"/,
	'without the preload, the wrapper loads the library and validates options');
is( $plain->safe_psql('postgres', q{
		LOAD 'sales_kafka';
		SELECT context FROM pg_settings WHERE name = 'sales_kafka.brokers'}),
	'superuser', 'once loaded, the library defines its settings');
is($plain->safe_psql('postgres', 'SELECT count(*) FROM sales_kafka.pipeline_status'),
	'0', 'pipeline_status shows no pipeline');
($rc, $out, $err) = $plain->psql('postgres',
	q{\set VERBOSITY verbose
	  SELECT sales_kafka.start_pipeline('any')});
like($err, qr/ERROR:  55000: pipelines can only run when sales_kafka is in shared_preload_libraries/,
	'start_pipeline says the preload is missing (55000)');
$plain->stop('fast');
check_server_log($plain, 0);

done_testing();
