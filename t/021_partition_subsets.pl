# Several servers share one topic: each runs a pipeline that owns a subset
# of the topic's partitions (create_pipeline's "partitions"), into its own
# table, and together they hold every message of the topic exactly once.
#
# Two servers, one 8-partition topic: server A's pipeline owns partitions
# 0-3 (one worker), server B's owns 4-7 with two workers (parallelism
# shares the subset by position).  Both pipelines belong to a role that is
# not a superuser.  Messages are produced before the pipelines start and
# while they run; at the end the two tables hold, between them, every id
# once, each server only the partitions it owns, with dense offsets and
# the committed offsets at the high watermarks.  On server A, a pipeline
# that overlaps the first one into the same table is refused.
#
# The bulk writer is for tables of the heap access method: a pipeline into
# a table of another access method (heap2, the heap's handler under
# another name) takes the SQL path.  track_functions counts the calls of
# sales_kafka._pipeline_rows(), which only the SQL path makes: none for
# the heap target, some for the heap2 one, and its rows arrive exactly
# once.  Partitions of a list that the topic lacks show in pipeline_status
# (a foreign table moved to a smaller topic).  Runs against a real Kafka
# too.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;

my $npartitions = 8;
# seconds any one wait may take
my $wait_s = 120;
# messages produced before the pipelines start, then while they run
my @batches = ([ 1, 4_000 ], [ 4_001, 6_000 ]);
my $total = 6_000;

my $topic = create_topic('subsets', $npartitions);

my %node;
for my $name ('a', 'b')
{
	$node{$name} = new_node("server_$name");
	$node{$name}->append_conf('postgresql.conf', "track_functions = 'all'\n");
	$node{$name}->start;
	$node{$name}->safe_psql('postgres', qq{
		CREATE EXTENSION sales_kafka;
		CREATE ROLE regress_sales_kafka_subsets;
		CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka;
		GRANT USAGE ON FOREIGN SERVER kafka TO regress_sales_kafka_subsets;
		CREATE USER MAPPING FOR regress_sales_kafka_subsets SERVER kafka;
		CREATE FOREIGN TABLE src (
			"partition" int OPTIONS (kafka 'partition'),
			"offset" bigint OPTIONS (kafka 'offset'),
			id bigint)
		SERVER kafka OPTIONS (topic '$topic', format 'json');
		CREATE TABLE sales (
			"partition" int NOT NULL,
			"offset" bigint NOT NULL,
			id bigint NOT NULL);
		GRANT SELECT ON src TO regress_sales_kafka_subsets;
		GRANT INSERT, SELECT ON sales TO regress_sales_kafka_subsets;
	});
}

# Messages $from .. $to: {"id": n} in partition n % 8.
sub produce_ids
{
	my ($from, $to) = @_;
	for my $p (0 .. $npartitions - 1)
	{
		produce($topic, $p,
			map { qq({"id": $_}) } grep { $_ % $npartitions == $p } $from .. $to);
	}
	return;
}

produce_ids(@{ $batches[0] });

# ------------------------------------------------- two servers, one topic

$node{a}->safe_psql('postgres', q{
	SET ROLE regress_sales_kafka_subsets;
	SELECT sales_kafka.create_pipeline('share', 'src', 'sales',
		batch_size => 500, partitions => '0-3');
	SELECT sales_kafka.start_pipeline('share');
});
$node{b}->safe_psql('postgres', q{
	SET ROLE regress_sales_kafka_subsets;
	SELECT sales_kafka.create_pipeline('share', 'src', 'sales',
		batch_size => 500, partitions => '4-7', parallelism => 2);
	SELECT sales_kafka.start_pipeline('share');
});

my ($ret, $out, $err) = $node{a}->psql('postgres', q{
	SET ROLE regress_sales_kafka_subsets;
	SELECT sales_kafka.create_pipeline('overlap', 'src', 'sales', partitions => '3-4');
});
isnt($ret, 0, 'a pipeline whose partitions overlap another\'s into the same table is refused');
like($err,
	qr/pipeline "overlap" would read the same partitions of topic "\Q$topic\E" into the same table as pipeline "share".*both would read partition 3/s,
	'the refusal names the other pipeline and the partitions in common');

ok(wait_pipeline_running($node{a}, 'postgres', 'share', 1, $wait_s, 'server A\'s pipeline'),
	'server A runs its pipeline with one worker');
ok(wait_pipeline_running($node{b}, 'postgres', 'share', 2, $wait_s, 'server B\'s pipeline'),
	'server B runs its pipeline with two workers');
is($node{a}->safe_psql('postgres',
		q{SELECT owned_partitions || ' ' || owner FROM sales_kafka.pipeline_status WHERE pipeline = 'share'}),
	'0-3 regress_sales_kafka_subsets',
	'pipeline_status shows the partitions server A owns, and the owner');

produce_ids(@{ $batches[1] });

# messages of partition p: ids p, p + 8, ... up to $total
my %expected;
$expected{$_ % $npartitions}++ for 1 .. $total;

# true once every partition a server owns has committed offset = high
# watermark = its messages
sub caught_up
{
	my ($node, @parts) = @_;
	my $want = join(',', map { "$_:$expected{$_}" } @parts);
	return poll_until(
		sub {
			my $r = try_query($node, 'postgres', q{
				SELECT string_agg(partition || ':' || committed_offset, ',' ORDER BY partition)
				  FROM sales_kafka.pipeline_partitions
				 WHERE pipeline = 'share' AND committed_offset = high_watermark});
			defined $r && $r eq $want;
		},
		$wait_s, "the pipeline to commit partitions @parts");
}

ok(caught_up($node{a}, 0 .. 3), 'server A committed its partitions 0-3, and only those');
ok(caught_up($node{b}, 4 .. 7), 'server B committed its partitions 4-7, and only those');

# what each server holds, per partition: rows, distinct ids, dense offsets
my $per_partition = q{
	SELECT string_agg(format('%s:%s:%s:%s', partition, n, ids, dense), ',' ORDER BY partition)
	  FROM (SELECT partition, count(*) AS n, count(DISTINCT id) AS ids,
	               count(*) = max("offset") + 1 AND min("offset") = 0 AS dense
	          FROM sales GROUP BY partition) s};
is($node{a}->safe_psql('postgres', $per_partition),
	join(',', map { "$_:$expected{$_}:$expected{$_}:t" } 0 .. 3),
	'server A holds every message of partitions 0-3 once, and nothing else');
is($node{b}->safe_psql('postgres', $per_partition),
	join(',', map { "$_:$expected{$_}:$expected{$_}:t" } 4 .. 7),
	'server B holds every message of partitions 4-7 once, and nothing else');

# together: every id once
my %seen;
for my $name ('a', 'b')
{
	$seen{$_}++ for split /\n/, $node{$name}->safe_psql('postgres', 'SELECT id FROM sales');
}
is(scalar(keys %seen), $total, 'the two servers hold every message of the topic');
is(scalar(grep { $seen{$_} != 1 } keys %seen), 0, 'no message is on both servers, or twice on one');
is(scalar(grep { $_ < 1 || $_ > $total } keys %seen), 0, 'and nothing else');
for my $name ('a', 'b')
{
	is($node{$name}->safe_psql('postgres', 'SELECT count(*) FROM sales_kafka.dead_letter'),
		'0', "no dead letters on server $name");
}

# ------------------------- partitions the topic lacks, seen by the workers

# create_pipeline refuses them when Kafka tells; a foreign table moved to
# a smaller topic afterwards shows them in pipeline_status
my $small = create_topic('subsets_small', 2);
my $b = $node{b};
$b->safe_psql('postgres', qq{
	SELECT sales_kafka.stop_pipeline('share');
	CREATE TABLE moved (LIKE sales);
	SELECT sales_kafka.create_pipeline('moved', 'src', 'moved', partitions => '1-5');
	ALTER FOREIGN TABLE src OPTIONS (SET topic '$small');
	SELECT sales_kafka.start_pipeline('moved');
});
ok( poll_until(
		sub {
			my $r = try_query($b, 'postgres',
				q{SELECT state || ': ' || last_error FROM sales_kafka.pipeline_status WHERE pipeline = 'moved'});
			defined $r && $r eq qq{running: topic "$small" has no partitions 2-5 of pipeline "moved"};
		},
		$wait_s, 'the missing partitions in pipeline_status'),
	'partitions of the list that the topic lacks show in pipeline_status, and the pipeline runs');
like(slurp_file($b->logfile), qr/WARNING:  topic "\Q$small\E" has no partitions 2-5 of pipeline "moved"/,
	'the worker logs them as a WARNING');

# ----------------------------------------- a table of another access method

my $a = $node{a};
$a->safe_psql('postgres', q{
	SELECT sales_kafka.stop_pipeline('share');
	CREATE ACCESS METHOD heap2 TYPE TABLE HANDLER heap_tableam_handler;
	CREATE TABLE plain ("partition" int NOT NULL, "offset" bigint NOT NULL, id bigint NOT NULL,
		UNIQUE ("partition", "offset"));
	CREATE TABLE other_am ("partition" int NOT NULL, "offset" bigint NOT NULL, id bigint NOT NULL,
		UNIQUE ("partition", "offset")) USING heap2;
	SELECT sales_kafka.create_pipeline('to_plain', 'src', 'plain', batch_size => 1000);
	SELECT sales_kafka.start_pipeline('to_plain');
});

# rows of a table once it holds every message of the topic
sub wait_rows
{
	my ($table) = @_;
	return poll_until(
		sub {
			my $r = try_query($a, 'postgres', "SELECT count(*) FROM $table");
			defined $r && $r == $total;
		},
		$wait_s, "$table to hold every message");
}

# calls of sales_kafka._pipeline_rows() counted so far: the workers report
# their function statistics when they exit
sub sql_path_calls
{
	return $a->safe_psql('postgres', q{
		SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions
		 WHERE schemaname = 'sales_kafka' AND funcname = '_pipeline_rows'});
}

ok(wait_rows('plain'), 'a pipeline fills a heap table');
$a->safe_psql('postgres', q{SELECT sales_kafka.stop_pipeline('to_plain')});
is(sql_path_calls(), '0', 'into heap tables, pipelines write through the bulk path');

$a->safe_psql('postgres', q{
	SELECT sales_kafka.create_pipeline('to_other_am', 'src', 'other_am', batch_size => 1000);
	SELECT sales_kafka.start_pipeline('to_other_am');
});
ok(wait_rows('other_am'), 'a pipeline fills a table of another access method');
$a->safe_psql('postgres', q{SELECT sales_kafka.stop_pipeline('to_other_am')});
cmp_ok(sql_path_calls(), '>', 0, 'into it, the pipeline writes through the SQL path');
is($a->safe_psql('postgres',
		q{SELECT count(DISTINCT id) || ' ' || count(DISTINCT ("partition", "offset")) FROM other_am}),
	"$total $total", 'every message is there once');
is($a->safe_psql('postgres', 'SELECT count(*) FROM sales_kafka.dead_letter'),
	'0', 'no dead letters');

for my $name ('a', 'b')
{
	$node{$name}->stop;
	check_server_log($node{$name});
}
done_testing();
