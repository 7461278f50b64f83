# Job (e) of DESIGN.md, reproduced: every day a cron job exports the day's
# sales as CSV files for a warehouse load.  Here: sales_kafka.export_day()
# (the day's star schema with COPY TO, atomically, with a manifest),
# export_last_day() and schedule_daily_export() (pg_cron, in UTC).
#
# Sale events land through a pipeline around the edges of 2024-05-01 in the
# model's zone, Europe/Berlin (UTC+2 that day): the last second of the day
# before, the first and last instants of the day, the first second of the
# next.  Checked against what was produced, computed here: the facts file
# holds exactly the day's events; the manifest's rows, bytes and SHA-256
# match the files (Digest::SHA), its offsets the messages produced; a
# second export gives byte-identical files and leaves no temporary file; a
# role without pg_write_server_files is refused (42501) before anything is
# written; the schedule is 00:00 + grace in Berlin at both of its UTC
# offsets, and its command exports.
#
# Runs against a real Kafka too (topic under the run's prefix).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use Digest::SHA qw(sha256_hex);
use JSON::PP;
use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;

my $node = new_node('job_e');
$node->start;
my $topic = create_topic('job_export', 1);
my $dir = PostgreSQL::Test::Utils::tempdir();

$node->safe_psql('postgres', qq{
	CREATE EXTENSION sales_kafka;
	CREATE EXTENSION pg_cron;
	CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka;
	SELECT sales_kafka.create_sales_model('shop', time_zone => 'Europe/Berlin');
	SELECT sales_kafka.create_sales_pipelines('shop', 'sale_events', 'kafka', '$topic');
});
ok(wait_pipeline_running($node, 'postgres', 'shop_order_lines', 1, 60), 'the pipeline runs');

# events: [product, quantity, price, UTC time]; 2024-05-01 in Berlin is
# [2024-04-30 22:00:00Z, 2024-05-01 22:00:00Z)
my @events = (
	[ 'Tea',    1, '2.00', '2024-04-30 21:59:59' ],       # 04-30 23:59:59 in Berlin
	[ 'Coffee', 2, '3.50', '2024-04-30 22:00:00' ],       # 05-01 00:00:00
	[ 'Cake',   1, '4.25', '2024-05-01 09:15:00' ],
	[ 'Tea',    3, '2.00', '2024-05-01 12:00:00.5' ],
	[ 'Coffee', 1, '3.50', '2024-05-01 21:59:59.75' ],    # 05-01 23:59:59.75
	[ 'Cake',   2, '4.25', '2024-05-01 22:00:00' ]);      # 05-02 00:00:00
produce($topic, 0,
	map { qq({"product_name": "$_->[0]", "quantity": $_->[1], "price": $_->[2], "timestamp": "$_->[3]+00:00"}) }
	  @events);
ok( poll_until(
		sub { $node->safe_psql('postgres', 'SELECT count(*) FROM shop.order_lines') == @events },
		90, 'the events'),
	'the events landed');
my @day = grep { $_->[3] ge '2024-04-30 22:00:00' && $_->[3] lt '2024-05-01 22:00:00' } @events;

# refused without pg_write_server_files, before anything is written
$node->safe_psql('postgres', q{
	CREATE ROLE exporter LOGIN;
	GRANT USAGE ON SCHEMA shop TO exporter;
	GRANT SELECT ON ALL TABLES IN SCHEMA shop TO exporter;
});
my ($ret, $out, $err) = $node->psql('postgres',
	qq{\\set VERBOSITY verbose\nSET ROLE exporter;\nSELECT sales_kafka.export_day('shop', '2024-05-01', '$dir');});
like($err, qr/ERROR:\s+42501: permission denied to export sales model "shop"/,
	'export_day without pg_write_server_files: 42501');
opendir(my $dh, $dir) or die;
is(scalar(grep { !/^\./ } readdir($dh)), 0, 'and nothing was written');
closedir($dh);
($ret, $out, $err) = $node->psql('postgres',
	qq{\\set VERBOSITY verbose\nSET ROLE exporter;\nSELECT * FROM sales_kafka.schedule_daily_export('shop', '$dir');});
like($err, qr/ERROR:\s+42501: permission denied to export sales models/,
	'schedule_daily_export without pg_write_server_files: 42501');

# the export, by a role granted pg_write_server_files
$node->safe_psql('postgres', 'GRANT pg_write_server_files TO exporter');
my $manifest_sql = qq{SET ROLE exporter; SELECT sales_kafka.export_day('shop', '2024-05-01', '$dir')};
$node->safe_psql('postgres', $manifest_sql);

sub slurp_raw
{
	my ($path) = @_;
	open(my $f, '<:raw', $path) or die "cannot read $path: $!";
	local $/;
	my $data = <$f>;
	close($f);
	return $data;
}

# a small CSV reader: fields, quoted or not, of lines without line breaks inside
sub csv_rows
{
	my ($text) = @_;
	my @rows;
	for my $line (split /\n/, $text)
	{
		my @f;
		while ($line =~ /\G(?:"((?:[^"]|"")*)"|([^,]*))(,|$)/g)
		{
			push @f, defined $1 ? ($1 =~ s/""/"/gr) : $2;
			last if $3 eq '';
		}
		push @rows, \@f;
	}
	return @rows;
}

my @names = map { "${_}_2024-05-01.csv" } qw(sales_facts customers_dim products_dim time_dim);
my ($header, @facts) = csv_rows(slurp_raw("$dir/$names[0]"));
my %col;
@col{@$header} = 0 .. $#$header;
is( join("\n", sort map { join('|', @$_[ @col{qw(product_id quantity unit_price sold_at date_key)} ]) } @facts),
	join("\n", sort map {
			(my $t = $_->[3]) =~ s/(\.\d*?)0*$/$1/;
			$t =~ s/\.$//;
			join('|', $_->[0], $_->[1], $_->[2], "$t+00", '2024-05-01')
		} @day),
	'sales_facts file: exactly the day\'s events in Berlin, the first and last instants in, their neighbours out');

my ($ph, @products) = csv_rows(slurp_raw("$dir/$names[2]"));
my %seen = map { $_->[0] => 1 } @day;
is(join(',', map { $_->[0] } @products), join(',', sort keys %seen), 'products_dim file: the day\'s products');
my ($th, @time) = csv_rows(slurp_raw("$dir/$names[3]"));
is(scalar(@time) . ' ' . $time[0][0], '1 2024-05-01', 'time_dim file: the day\'s row');

my $manifest_text = slurp_raw("$dir/manifest_2024-05-01.json");
my $manifest = JSON::PP->new->decode($manifest_text);
is( join(' ', @$manifest{qw(model day time_zone from to)}),
	'shop 2024-05-01 Europe/Berlin 2024-04-30 22:00:00+00 2024-05-01 22:00:00+00',
	'manifest: model, day and its bounds in UTC');
is( join("\n", map { join('|', $_->{file}, $_->{rows}, $_->{bytes}, $_->{sha256}) } @{ $manifest->{files} }),
	join("\n", map {
			my $data = slurp_raw("$dir/$_");
			my @lines = split /\n/, $data;
			join('|', $_, scalar(@lines) - 1, length($data), sha256_hex($data))
		} @names),
	'manifest: rows, bytes and SHA-256 of each file, as computed here');
is( join("\n", map { join('|', $_->{pipeline}, $_->{topic}, $_->{partition}, $_->{offset}) } @{ $manifest->{kafka_offsets} }),
	"shop_order_lines|$topic|0|" . scalar(@events),
	'manifest: the Kafka offsets the files cover (every message produced)');

# twice: the same bytes, no temporary file left
my %digest = map { $_ => sha256_hex(slurp_raw("$dir/$_")) } @names, 'manifest_2024-05-01.json';
$node->safe_psql('postgres', $manifest_sql);
is_deeply({ map { $_ => sha256_hex(slurp_raw("$dir/$_")) } keys %digest },
	\%digest, 'a second export of the day gives byte-identical files');
opendir($dh, $dir) or die;
is(join(',', grep { /\.tmp$/ } readdir($dh)), '', 'no temporary file is left');
closedir($dh);

# refusals
($ret, $out, $err) = $node->psql('postgres',
	qq{\\set VERBOSITY verbose\nSELECT sales_kafka.export_day('shop', '2024-05-01', 'relative/dir');});
like($err, qr/ERROR:\s+22023: relative path not allowed/, 'a relative directory: 22023');
($ret, $out, $err) = $node->psql('postgres',
	qq{\\set VERBOSITY verbose\nSELECT * FROM sales_kafka.schedule_daily_export('shop', '$dir', '90 seconds');});
like($err, qr/ERROR:\s+22023: invalid value for grace/, 'a grace pg_cron cannot schedule: 22023');

# the schedule (by a superuser: the exporter has no rights on pg_cron's
# schema here); 01:00 in Berlin is 00:00 UTC in winter (UTC+1), 23:00 UTC
# in summer (UTC+2)
my %utc_hours;
for my $offset_h (1, 2)
{
	$utc_hours{ (1 - $offset_h + 24) % 24 } = 1;
}
is( $node->safe_psql('postgres',
		qq{SELECT concat_ws(' | ', jobname, schedule, command) FROM sales_kafka.schedule_daily_export('shop', '$dir', '1 hour')}),
	'sales_kafka export postgres.shop | 0 ' . join(',', sort { $a <=> $b } keys %utc_hours)
	  . " * * * | SELECT sales_kafka.export_last_day('shop', '$dir', '01:00:00')",
	'schedule_daily_export: 00:00 + 1 hour in Berlin, at both of its UTC offsets');
my $command = $node->safe_psql('postgres',
	q{SELECT command FROM cron.job WHERE jobname = 'sales_kafka export postgres.shop'});
my $last = $node->safe_psql('postgres', "SET ROLE exporter; SELECT ($command)->>'day'");
ok(-f "$dir/manifest_$last.json" && -f "$dir/sales_facts_$last.csv",
	"the job's command exports the last day that ended an hour ago ($last)");
is($node->safe_psql('postgres', q{SELECT sales_kafka.unschedule_daily_export('shop')}),
	'1', 'unschedule_daily_export removes the job');

check_server_log($node, 0);
$node->stop;
done_testing();
