# What one role's pipelines can take from other roles', as the security
# review tried it with roles that are not superusers:
#
#   1. Privileges before locks.  create_pipeline() by a role without
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

# ---------------------------------------------------------------- 1. locks

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
