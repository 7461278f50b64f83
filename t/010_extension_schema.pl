# The launcher's starter reads sales_kafka.pipeline in every database at
# server start, as the bootstrap superuser.  In a database where the owner
# of the extension's schema (an extension installed before 1.3 into a
# schema its database owner had made) renamed that schema and made a
# schema "sales_kafka" of its own, whose "pipeline" is a view calling its
# own function, the starter refuses the schema instead of reading the view:
# the function never runs as superuser, and the server log says why.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;

my $node = new_node('extension_schema');
$node->start;

$node->safe_psql('postgres', q{
	CREATE ROLE regress_sales_kafka_mallory;
	CREATE DATABASE hijack OWNER regress_sales_kafka_mallory;
});
$node->safe_psql('hijack', q{
	CREATE EXTENSION sales_kafka;
	ALTER SCHEMA sales_kafka OWNER TO regress_sales_kafka_mallory;
});
$node->safe_psql('hijack', q{
	SET ROLE regress_sales_kafka_mallory;
	ALTER SCHEMA sales_kafka RENAME TO sk_real;
	CREATE SCHEMA sales_kafka;
	CREATE FUNCTION sales_kafka.pwn() RETURNS boolean LANGUAGE plpgsql AS $$
	BEGIN
		IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
			ALTER ROLE regress_sales_kafka_mallory SUPERUSER;
		END IF;
		RETURN false;
	END
	$$;
	CREATE VIEW sales_kafka.pipeline AS
	SELECT 1::bigint AS id, 'p'::text AS name, 1 AS parallelism, sales_kafka.pwn() AS enabled;
});

my $log_from = -s $node->logfile;
$node->restart;

# the starter of database hijack has either refused, or run the function
my $refusal = qr/ERROR:  schema "sales_kafka" is not the schema of extension "sales_kafka"/;
my $is_superuser = q{SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_sales_kafka_mallory'};
poll_until(
	sub {
		slurp_file($node->logfile, $log_from) =~ $refusal
		  || $node->safe_psql('postgres', $is_superuser) eq 't';
	},
	undef,
	'the starter of database "hijack" to read or refuse its schema sales_kafka');
is($node->safe_psql('postgres', $is_superuser),
	'f', 'the starter did not run the function of the impostor schema as superuser');
like(slurp_file($node->logfile, $log_from),
	$refusal, 'the server log says that it refused the schema');
check_server_log($node, 0);

$node->stop;
done_testing();
