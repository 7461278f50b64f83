# A year of a minute-level metric stream, through Kafka, summarised per
# series and time bucket (issue 20; issue 17, 4(d)):
#
#   1. 527,040 records (a leap year of minutes from midnight of 2024-01-01
#      in America/New_York, the model's time zone, across both of its clock
#      changes) are made here as pandas writes a DataFrame to JSON lines
#      (DataFrame.to_json(orient='records', lines=True): "id" numbers the
#      records, "timestamp" is epoch milliseconds), keyed by id, produced to
#      a topic of 32 partitions and consumed by the pipeline of the metrics
#      shape (create_sales_pipelines), which names the series after the
#      topic.
#   2. refresh_rollups summarises them: every 10-minute bucket holds 10
#      samples and every 20-minute bucket 20, and samples, open, close, low,
#      high and both averages of every bucket equal those computed here from
#      the generating formula, in integer cents (not by SQL); the times
#      landed as the epoch milliseconds say.  A summary of whole days
#      (add_metric_summary, cut on New York's clock) has the day's minutes as
#      its samples (1,380 and 1,500 on the days the clocks change), computed
#      here with the C library's time zone rules.
#   3. The same 527,040 messages produced again are consumed and change
#      nothing: still one row per record, no summary differs.
#
# The figures of each step (produce, ingest, refresh) go to the TAP log as
# diagnostics; nothing asserts a time.  SK_METRIC_MINUTES makes the stream
# shorter (whole days) for a quick run.  Waits poll with bounded timeouts.
# Runs against a real Kafka too (a topic under the run's prefix; nothing
# here needs the test broker's control channel).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use POSIX qw(strftime);
use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;
use Time::HiRes qw(time);

my $minutes = $ENV{SK_METRIC_MINUTES} || 527_040;
die "SK_METRIC_MINUTES must be whole days of minutes\n" if $minutes % 1440;
my $t0_ms = 1_704_085_200_000;    # 2024-01-01 00:00 America/New_York (05:00 UTC)
my $zone = 'America/New_York';
# seconds one wait for the pipeline may take
my $wait_s = 900;

# ------------------------------------------------- the records, as generated

# record i (0-based; its id is i + 1) is measured at minute i: its stock
# price is 100.00 + (37 i mod 1000) cents, its sales trend
# (13 i mod 200) - 100 cents
sub price_cents { return 10_000 + ($_[0] * 37) % 1000; }
sub trend_cents { return ($_[0] * 13) % 200 - 100; }

# a number of cents as pandas writes a float: 100.37, 100.0, -0.5
sub pandas_float
{
	my $s = sprintf('%.2f', $_[0] / 100);
	$s =~ s/0$//;
	return $s;
}

# a number of 1/10000ths as numeric(20,4) prints it
sub dec4
{
	my ($v) = @_;
	my $sign = $v < 0 ? '-' : '';
	$v = -$v if $v < 0;
	return sprintf('%s%d.%04d', $sign, int($v / 10_000), $v % 10_000);
}

# "key|value" lines for kcat, as pandas writes each record
my $messages = '';
for my $i (0 .. $minutes - 1)
{
	$messages .= sprintf(
		qq(%d|{"id":%d,"timestamp":%d,"stock_price":%s,"sales_trend":%s}\n),
		$i + 1, $i + 1, $t0_ms + $i * 60_000,
		pandas_float(price_cents($i)), pandas_float(trend_cents($i)));
}

# The summaries of buckets of $n consecutive minutes from the first, as
# lines "epoch of the start, samples, open, close, low, high, average" for
# the price, then open, close, low, high, average for the trend.
sub expected_buckets
{
	my ($n) = @_;
	my $out = '';
	for (my $k = 0; $k < $minutes; $k += $n)
	{
		my (@p, @t);
		for my $i ($k .. $k + $n - 1)
		{
			push @p, price_cents($i);
			push @t, trend_cents($i);
		}
		$out .= join("\t",
			$t0_ms / 1000 + $k * 60, $n,
			summary(\@p, $n), summary(\@t, $n)) . "\n";
	}
	return $out;
}

# open, close, low, high and average of values in cents, as numeric(20,4);
# the average of n values in cents is sum * 100 / n in 1/10000ths, exact
# for n = 10 and 20
sub summary
{
	my ($v, $n) = @_;
	my ($lo, $hi, $sum) = ($v->[0], $v->[0], 0);
	for (@$v)
	{
		$lo = $_ if $_ < $lo;
		$hi = $_ if $_ > $hi;
		$sum += $_;
	}
	die "average of $n values is not exact\n" if ($sum * 100) % $n;
	return (dec4($v->[0] * 100), dec4($v->[-1] * 100), dec4($lo * 100),
		dec4($hi * 100), dec4($sum * 100 / $n));
}

# Per day on New York's clock (the C library's rules): "date, samples,
# open, close, low, high" of the price.
sub expected_days
{
	local $ENV{TZ} = $zone;
	POSIX::tzset();
	my (@order, %day);
	for my $i (0 .. $minutes - 1)
	{
		my $d = strftime('%Y-%m-%d', localtime($t0_ms / 1000 + $i * 60));
		my $p = price_cents($i);
		if (!$day{$d})
		{
			push @order, $d;
			$day{$d} = [ 0, $p, $p, $p, $p ];
		}
		my $s = $day{$d};
		$s->[0]++;
		$s->[2] = $p;
		$s->[3] = $p if $p < $s->[3];
		$s->[4] = $p if $p > $s->[4];
	}
	POSIX::tzset();
	return join('',
		map {
			my $s = $day{$_};
			join("\t", $_, $s->[0], map { dec4($_ * 100) } @$s[ 1 .. 4 ]) . "\n"
		} @order);
}

# lines that differ between two texts of lines: "N lines differ", then the
# first three pairs
sub compare_lines
{
	my ($got, $want) = @_;
	my @g = split /\n/, $got;
	my @w = split /\n/, $want;
	my @bad;
	for my $i (0 .. ($#g > $#w ? $#g : $#w))
	{
		my ($x, $y) = ($g[$i] // "(none)", $w[$i] // "(none)");
		push @bad, "line $i: got \"$x\", want \"$y\"" if $x ne $y;
	}
	return scalar(@bad) . ' lines differ' . join('', map { "\n  $_" } @bad[ 0 .. ($#bad < 2 ? $#bad : 2) ]);
}

# ---------------------------------------------------------------- the node

my $node = new_node('metrics');
$node->start;
my $topic = create_topic('metric_year', 32);
$node->safe_psql('postgres', qq{
	CREATE EXTENSION sales_kafka;
	CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka;
	SELECT sales_kafka.create_sales_model('mx', time_zone => '$zone');
	SELECT sales_kafka.create_sales_pipelines('mx', 'metrics', 'kafka', '$topic');
});

# kcat, keyed by record id, waiting for every acknowledgement
sub produce_year
{
	my $t = time;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[
			'kcat', '-P', '-b', brokers(), '-t', $topic, '-K', '|',
			'-X', 'log_level=3', '-X', 'queue.buffering.max.messages=1000000',
			'-X', 'linger.ms=50'
		],
		'<', \$messages, '>', \$out, '2>', \$err,
		IPC::Run::timeout(600))
	  or die "kcat failed: $err";
	return time - $t;
}

sub committed
{
	return $node->safe_psql('postgres', q{
		SELECT coalesce(sum(committed_offset), 0) FROM sales_kafka.pipeline_partitions
		 WHERE pipeline = 'mx_metrics'});
}

sub wait_committed
{
	my ($n, $what) = @_;
	my $t = time;
	ok(poll_until(sub { committed() == $n }, $wait_s, $what), $what)
	  or diag($node->safe_psql('postgres',
		  'SELECT * FROM sales_kafka.pipeline_status; SELECT error, count(*) FROM sales_kafka.dead_letter GROUP BY 1'));
	return time - $t;
}

sub refresh
{
	my $t = time;
	my $n = $node->safe_psql('postgres', q{SELECT sales_kafka.refresh_rollups('mx')});
	return (time - $t, $n);
}

# ------------------------------------------------------ 1. the year, ingested

my $produce_s = produce_year();
my $ingest_s = wait_committed($minutes, "the pipeline consumes the $minutes messages");
diag(sprintf('produced %d messages in %.1f s; the pipeline wrote them in %.1f s (%.0f messages/s)',
	$minutes, $produce_s, $ingest_s, $minutes / $ingest_s));

is( $node->safe_psql('postgres', q{
		SELECT count(*) || ' ' || count(DISTINCT series) || ' ' || min(series)
		       || ' ' || (extract(epoch FROM min(measured_at)) * 1000)::bigint
		       || ' ' || (extract(epoch FROM max(measured_at)) * 1000)::bigint
		  FROM mx.metrics}),
	"$minutes 1 $topic $t0_ms " . ($t0_ms + ($minutes - 1) * 60_000),
	'one row per record, one series named after the topic, times from epoch milliseconds');
is($node->safe_psql('postgres', 'SELECT count(*) FROM sales_kafka.dead_letter'),
	'0', 'no dead letters');

# ------------------------------------------------------ 2. the summaries

my ($refresh_s, $rolled) = refresh();
diag(sprintf('refresh_rollups summarised %d records in 10 and 20 minutes in %.1f s', $minutes, $refresh_s));
is($rolled, '0', 'refresh_rollups counts order lines: none');

my $cols = q{extract(epoch FROM period_start)::bigint, samples,
	stock_price_open, stock_price_close, stock_price_low, stock_price_high, stock_price_average,
	sales_trend_open, sales_trend_close, sales_trend_low, sales_trend_high, sales_trend_average};
for my $n (10, 20)
{
	my $got = $node->safe_psql('postgres',
		"COPY (SELECT $cols FROM mx.kpi_metrics_${n}min ORDER BY period_start) TO STDOUT") . "\n";
	my $report = compare_lines($got, expected_buckets($n));
	is($report, '0 lines differ',
		"every $n-minute bucket: $n samples, open, close, low, high and averages as generated");
	is( $node->safe_psql('postgres',
			"SELECT count(*) || ' ' || count(DISTINCT series) FROM mx.kpi_metrics_${n}min"),
		($minutes / $n) . ' 1', "$n minutes: one row per bucket of the one series");
}

my $t = time;
is($node->safe_psql('postgres', q{SELECT sales_kafka.add_metric_summary('mx', '1 day')}),
	'kpi_metrics_1day', 'add_metric_summary of a day');
diag(sprintf('add_metric_summary of 1 day summarised %d records in %.1f s', $minutes, time - $t));
is( compare_lines(
		$node->safe_psql('postgres', q{
			COPY (SELECT day, samples, stock_price_open, stock_price_close, stock_price_low, stock_price_high
			        FROM mx.kpi_metrics_1day ORDER BY period_start) TO STDOUT}) . "\n",
		expected_days()),
	'0 lines differ',
	'every day on New York\'s clock: its minutes as samples (the clock changes included), open, close, low, high');

# ------------------------------------------------------ 3. the year again

$node->safe_psql('postgres', 'CREATE TABLE summary_before AS SELECT * FROM mx.metric_summary');
$produce_s = produce_year();
$ingest_s = wait_committed(2 * $minutes, 'the pipeline consumes the same messages again');
diag(sprintf('produced them again in %.1f s; the pipeline consumed them in %.1f s (%.0f messages/s)',
	$produce_s, $ingest_s, $minutes / $ingest_s));
($refresh_s, $rolled) = refresh();
diag(sprintf('refresh_rollups after the replay: %.1f s', $refresh_s));
is( $node->safe_psql('postgres', q{
		SELECT (SELECT count(*) FROM mx.metrics) || ' '
		       || (SELECT count(*) FROM mx.metric_change) || ' '
		       || (SELECT count(*) FROM ((TABLE summary_before EXCEPT TABLE mx.metric_summary)
		                                 UNION ALL (TABLE mx.metric_summary EXCEPT TABLE summary_before)) d)}),
	"$minutes 0 0",
	'the replay changes nothing: one row per record, no change queued, no summary differs');
is( $node->safe_psql('postgres', q{
		SELECT bool_and(summarized_through = (SELECT last_value FROM mx.metrics_ingest_id_seq))
		  FROM mx.metric_summary_view}),
	't', 'and every width has moved on past it');

$node->stop;
done_testing();
