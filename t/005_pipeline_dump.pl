# A pipeline survives pg_dump and a restore into another database:
#
#   1. a database ("origin") with a foreign table, a target table in a schema
#      of its own and a running pipeline (parallelism 2, settings that are
#      not the defaults) that has written N messages and dead-lettered one
#      that is not JSON is dumped while the
#      pipeline runs, with pg_dump -Fc (restored with pg_restore -d) and in
#      plain format (restored with psql); each restore goes into a new
#      database of the same server.  The extension's configuration tables
#      are restored after CREATE EXTENSION: each restored database must have
#      the pipeline with the same definition, its source and target resolved
#      to the restored tables, the dumped offsets, the target's rows and the
#      dead letter;
#   2. M1 more messages arrive while the restored pipelines do not run yet
#      (nothing starts them before a restart), then the server restarts and
#      M2 more arrive: the restored pipelines (enabled in the dump) start by
#      themselves and continue from their stored offsets, and the original
#      one keeps running, so each of the three targets ends with exactly
#      N + M1 + M2 rows, one per (partition, offset).  A second message that
#      is not JSON comes with M2: each database must dead-letter it as its
#      dead letter 2 (the restored sequence of sales_kafka.dead_letter goes
#      on from the dumped one), and every offset of every partition is
#      accounted for exactly once, by a row or by a dead letter.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;

my $npartitions = 3;
# messages before the dump, while the restored pipelines do not run yet,
# and after the restart
my ($n, $m1, $m2) = (300, 150, 150);
my $total = $n + $m1 + $m2;
# the messages that are not JSON: before the dump, on partition 0, and after
# the restart, on partition 1; at the offsets that the good ones before them
# leave
my $bad1 = { partition => 0, offset => scalar(grep { $_ % 3 == 0 } 1 .. $n) };
my $bad2 = { partition => 1, offset => scalar(grep { $_ % 3 == 1 } 1 .. $total) };
my $bad_payload = 'not json {';
my $dead_letters_before = "1: $bad1->{partition}/$bad1->{offset} $bad_payload";
my $dead_letters_after = "$dead_letters_before; 2: $bad2->{partition}/$bad2->{offset} $bad_payload";
# seconds any one wait of this test may take
my $wait_s = 90;
my $pipeline = 'orders';

my $node = new_node('dump');
$node->start;
my $topic = create_topic('dump_orders', $npartitions);

$node->safe_psql('postgres', 'CREATE DATABASE origin');
$node->safe_psql('origin', qq{
	CREATE EXTENSION sales_kafka;
	CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka;
	CREATE FOREIGN TABLE public.src_orders (
		"partition" int OPTIONS (kafka 'partition'),
		"offset" bigint OPTIONS (kafka 'offset'),
		id bigint,
		pad text)
	SERVER kafka OPTIONS (topic '$topic', format 'json');
	CREATE SCHEMA sales;
	CREATE TABLE sales.orders (
		"partition" int NOT NULL,
		"offset" bigint NOT NULL,
		id bigint NOT NULL,
		pad text,
		loaded_at timestamptz NOT NULL DEFAULT now());
	SELECT sales_kafka.create_pipeline('$pipeline', 'public.src_orders', 'sales.orders',
		batch_size => 100, flush_interval => '20 ms', parallelism => 2);
	SELECT sales_kafka.start_pipeline('$pipeline');
});

# ---------------------------------------------------------------- helpers

# Produce the messages of ids $first .. $last, id on partition id % 3.
sub produce_ids
{
	my ($first, $last) = @_;
	for my $p (0 .. $npartitions - 1)
	{
		my @values = map { qq({"id": $_, "pad": "pad-$_"}) }
		  grep { $_ % $npartitions == $p } $first .. $last;
		produce($topic, $p, @values) if @values;
	}
	return;
}

# Wait until the pipeline of $db runs with both its workers.
sub wait_running
{
	my ($db, $what) = @_;
	return wait_pipeline_running($node, $db, $pipeline, 2, $wait_s, $what);
}

# Wait until the pipeline of $db has committed the offsets of $count messages.
sub wait_committed
{
	my ($db, $count) = @_;
	my $ok = poll_until(
		sub {
			my $c = try_query($node, $db,
				"SELECT coalesce(sum(committed_offset), 0) FROM sales_kafka.pipeline_partitions"
				  . " WHERE pipeline = '$pipeline'");
			defined $c && $c >= $count;
		},
		$wait_s,
		"pipeline $pipeline of database $db to commit $count messages");
	ok($ok, "$db: the pipeline committed the offsets of all $count messages")
	  or diag($node->safe_psql($db, qq{
		SELECT s::text FROM sales_kafka.pipeline_status s
		UNION ALL
		SELECT o::text FROM sales_kafka.pipeline_partitions o}));
	return $ok;
}

# The pipeline's definition, as text (source and target as names).
my $definition_sql = q{
	SELECT format('%s (id %s): %s -> %s, %s, batch %s, flush %s, start %s, parallelism %s, owner %s, enabled %s, failure %s',
	              name, id, source, target, mode, batch_size, flush_interval, start_at,
	              parallelism, owner, enabled, coalesce(failure, 'none'))
	  FROM sales_kafka.pipeline ORDER BY name};

# The pipeline's stored offsets, as text.
my $offsets_sql = qq{
	SELECT string_agg(format('%s/%s: next %s, high %s', topic, "partition", committed_offset, high_watermark),
	                  '; ' ORDER BY topic, "partition")
	  FROM sales_kafka.pipeline_partitions WHERE pipeline = '$pipeline'};

# Every row of the target, digested.
my $rows_sql = q{
	SELECT count(*) || ' rows, digest '
	       || coalesce(md5(string_agg(format('%s/%s/%s/%s', "partition", "offset", id, pad), ','
	                                  ORDER BY "partition", "offset", id)), 'none')
	  FROM sales.orders};

# The dead letters: id, where, payload.
my $dead_letters_sql = qq{
	SELECT string_agg(format('%s: %s/%s %s', id, "partition", "offset", convert_from(payload, 'UTF8')),
	                  '; ' ORDER BY id)
	  FROM sales_kafka.dead_letter WHERE pipeline = '$pipeline'};

# One snapshot: rows and dead letters, and what the stored offsets account
# for.
sub check_rows_match_offsets
{
	my ($db, $what) = @_;
	my $r = $node->safe_psql($db, qq{
		SELECT (SELECT count(*) FROM sales.orders) || ' rows, '
		    || (SELECT count(*) FROM sales_kafka.dead_letter
		         WHERE pipeline = '$pipeline') || ' dead letters, '
		    || (SELECT coalesce(sum(committed_offset), 0) FROM sales_kafka.pipeline_partitions
		         WHERE pipeline = '$pipeline') || ' offsets'});
	my ($rows, $dead, $offsets) = $r =~ /^(\d+) rows, (\d+) dead letters, (\d+) offsets$/;
	ok(defined $rows && $rows + $dead == $offsets,
		"$db: $what: one snapshot shows as many rows and dead letters as committed offsets ($r)");
	return;
}

# Run a command; returns its exit status (0: success), stdout and stderr.
sub run_command_rc
{
	my ($cmd) = @_;
	my ($out, $err) = ('', '');
	my $ok = eval {
		IPC::Run::run($cmd, '<', '/dev/null', '>', \$out, '2>', \$err,
			IPC::Run::timeout($wait_s));
	};
	return ($@ ? "timeout or failure: $@" : $? >> 8, $out, $err);
}

# After the restart: the pipeline of $db wrote ids 1 .. $total exactly once,
# each partition's rows are exactly its offsets up to the committed offset,
# which is the high watermark.
sub check_exactly_once
{
	my ($db) = @_;
	wait_committed($db, $total + 2);
	is( $node->safe_psql($db, q{
			SELECT count(*) || ' rows, ' || count(DISTINCT id) || ' ids, '
			    || count(DISTINCT ("partition", "offset")) || ' (partition, offset), '
			    || coalesce(min(id), 0) || '..' || coalesce(max(id), 0)
			  FROM sales.orders}),
		"$total rows, $total ids, $total (partition, offset), 1..$total",
		"$db: every good message is in the target exactly once");
	is( $node->safe_psql($db, qq{
			SELECT count(*) FROM sales.orders
			 WHERE "partition" <> id % $npartitions OR pad IS DISTINCT FROM 'pad-' || id}),
		'0', "$db: every row is the message produced at its (partition, offset)");
	is( $node->safe_psql($db, qq{
			SELECT string_agg(format('partition %s: %s rows and dead letters (%s distinct), offsets %s..%s, committed %s, watermarks %s..%s',
			                         w.partition, coalesce(t.n, 0), coalesce(t.d, 0), t.lo, t.hi,
			                         o.committed_offset, w.low, w.high),
			                  '; ' ORDER BY w.partition)
			  FROM sales_kafka.watermarks('kafka', '$topic') w
			  LEFT JOIN sales_kafka.pipeline_partitions o
			         ON o.pipeline = '$pipeline' AND o.partition = w.partition
			  LEFT JOIN (SELECT "partition", count(*) AS n, count(DISTINCT "offset") AS d,
			                    min("offset") AS lo, max("offset") AS hi
			               FROM (SELECT "partition", "offset" FROM sales.orders
			                     UNION ALL
			                     SELECT "partition", "offset" FROM sales_kafka.dead_letter
			                      WHERE pipeline = '$pipeline') m
			              GROUP BY 1) t ON t.partition = w.partition
			 WHERE o.committed_offset IS DISTINCT FROM w.high
			    OR coalesce(t.n, 0) <> w.high - w.low
			    OR coalesce(t.d, 0) <> w.high - w.low
			    OR (t.n > 0 AND (t.lo <> w.low OR t.hi <> w.high - 1))}),
		'',
		"$db: each partition's offsets up to the committed offset, at the high watermark, are each exactly one row or dead letter");
	is($node->safe_psql($db, $dead_letters_sql), $dead_letters_after,
		"$db: the two messages that are not JSON are dead letters 1 and 2");
	is( $node->safe_psql($db, q{
			SELECT count(*) FROM sales_kafka.dead_letter d
			  JOIN sales_kafka.pipeline p ON p.id = d.pipeline_id AND p.owner = d.owner AND p.name = d.pipeline}),
		'2', "$db: both dead letters carry the pipeline's id, name and owner");
	check_rows_match_offsets($db, 'at the end');
	return;
}

# ------------------------------------------- 1. N messages, dump, restore

ok(wait_running('origin', 'the pipeline of origin to run'), 'origin: the pipeline runs with 2 workers');
produce_ids(1, $n);
produce($topic, $bad1->{partition}, $bad_payload);
wait_committed('origin', $n + 1);
is($node->safe_psql('origin', $rows_sql) =~ /^(\d+) rows/ ? $1 : undef,
	$n, "origin: the target holds the $n good messages");
is($node->safe_psql('origin', $dead_letters_sql), $dead_letters_before,
	'origin: the message that is not JSON is dead letter 1');

# what the dump must carry; nothing arrives while it is taken, so the
# pipeline (running, idle) changes none of it
my $definition = $node->safe_psql('origin', $definition_sql);
my $offsets = $node->safe_psql('origin', $offsets_sql);
my $rows = $node->safe_psql('origin', $rows_sql);
note "origin before the dump: $definition; $offsets; $rows";

my $dump_fc = "${PostgreSQL::Test::Utils::tmp_check}/origin.dump";
my $dump_plain = "${PostgreSQL::Test::Utils::tmp_check}/origin.sql";
for my $dump ([ '-Fc', $dump_fc ], [ '-Fp', $dump_plain ])
{
	my ($rc, $out, $err) = run_command_rc(
		[
			$node->installed_command('pg_dump'), $dump->[0], '-f', $dump->[1],
			'-d', $node->connstr('origin')
		]);
	is($rc, 0, "pg_dump $dump->[0] of origin while its pipeline runs succeeds")
	  or diag("stderr: $err");
}
is($node->safe_psql('origin',
		"SELECT state FROM sales_kafka.pipeline_status WHERE pipeline = '$pipeline'"),
	'running', 'origin: the pipeline was running during the dumps');
is($node->safe_psql('origin', $offsets_sql), $offsets,
	'origin: the offsets did not move while the dumps were taken');

# the data of the configuration tables, in the dump
like(slurp_file($dump_plain),
	qr/^COPY sales_kafka\.pipeline \(.*\n$pipeline\t/m,
	'the plain dump holds the rows of sales_kafka.pipeline');

# restore into two new databases of the same server
$node->safe_psql('postgres', 'CREATE DATABASE restored TEMPLATE template0');
$node->safe_psql('postgres', 'CREATE DATABASE restored_plain TEMPLATE template0');
{
	my ($rc, $out, $err) = run_command_rc(
		[
			$node->installed_command('pg_restore'), '--exit-on-error',
			'-d', $node->connstr('restored'), $dump_fc
		]);
	is($rc, 0, 'pg_restore -d of the custom-format dump into a new database succeeds');
	is($err, '', 'pg_restore reports no error or warning') or diag("stderr: $err");

	($rc, $out, $err) = run_command_rc(
		[
			$node->installed_command('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('restored_plain'), '-f', $dump_plain
		]);
	is($rc, 0, 'psql restores the plain dump into a new database');
	is($err, '', 'psql reports no error or warning during the restore') or diag("stderr: $err");
}

my @restored = ('restored', 'restored_plain');
for my $db (@restored)
{
	is($node->safe_psql($db, $definition_sql), $definition,
		"$db: the pipeline's definition is the dumped one");
	is( $node->safe_psql($db, q{
			SELECT format('%s %s', source = to_regclass('public.src_orders'),
			                        target = to_regclass('sales.orders'))
			  FROM sales_kafka.pipeline}),
		't t', "$db: source and target are the restored foreign table and table");
	is( $node->safe_psql($db, q{
			SELECT count(*) FROM sales_kafka.pipeline p
			  JOIN pg_class s ON s.oid = p.source AND s.relkind = 'f'
			  JOIN pg_class t ON t.oid = p.target AND t.relkind = 'r'}),
		'1', "$db: source and target point to a foreign table and a table of this database");
	is($node->safe_psql($db, $offsets_sql), $offsets,
		"$db: the stored offsets are the dumped ones");
	is($node->safe_psql($db, $rows_sql), $rows, "$db: the target holds the dumped rows");
	is($node->safe_psql($db, $dead_letters_sql), $dead_letters_before,
		"$db: the dead letter is the dumped one");
	is( $node->safe_psql($db,
			"SELECT nextval('sales_kafka.pipeline_id_seq') > (SELECT max(id) FROM sales_kafka.pipeline)"),
		't', "$db: the sequence of pipeline ids goes on from the dumped one");
}

# ------------------------------------- 2. more messages, restart, continue

# M1 messages while the restored pipelines have not started yet: they must
# read them from their stored offsets once they start
produce_ids($n + 1, $n + $m1);
wait_committed('origin', $n + 1 + $m1);
for my $db (@restored)
{
	check_rows_match_offsets($db, 'before the restart');
	note "$db before the restart: "
	  . $node->safe_psql($db,
		"SELECT state || ', workers ' || coalesce(worker_pids::text, 'none')"
		  . " FROM sales_kafka.pipeline_status WHERE pipeline = '$pipeline'");
}

my $log_offset = -s $node->logfile;
$node->restart;
for my $db ('origin', @restored)
{
	ok(wait_running($db, "the pipeline of $db to start after the restart"),
		"$db: the pipeline started by itself after the restart, with 2 workers");
}
is( $node->safe_psql('postgres', q{
		SELECT string_agg(datname || ' ' || n, ', ' ORDER BY datname)
		  FROM (SELECT datname, count(*) AS n FROM pg_stat_activity
		         WHERE backend_type = 'sales_kafka pipeline' GROUP BY datname) w}),
	'origin 2, restored 2, restored_plain 2',
	'two pipeline workers run in each of the three databases');

produce_ids($n + $m1 + 1, $total);
produce($topic, $bad2->{partition}, $bad_payload);
check_exactly_once($_) for ('origin', @restored);

# ------------------------------------------------------------ the server log

my $log = slurp_file($node->logfile, $log_offset);
my @started = $log =~ /sales_kafka: starting pipeline "$pipeline"/g;
is(scalar @started, 3, 'the log shows the pipeline of each of the three databases starting after the restart');
check_server_log($node);

$node->stop('fast');
done_testing();
