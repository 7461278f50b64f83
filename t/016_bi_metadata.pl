# t/016_bi_metadata.pl: the KPI views as a BI tool sees them, through a real
# ODBC driver (psqlODBC through unixODBC, Power BI's ODBC path) connected as a
# member of sales_kafka_reader, and the Grafana dashboard's every query.
#
# The model's time zone is Asia/Tokyo (UTC+9, no daylight saving time) and
# the ODBC session's is UTC, as a BI tool's far from the model may be; lines
# are sold just before and after midnight in Tokyo, at the turn of a day,
# a month, a quarter and a year there, when it is mid-afternoon in UTC.
#
#   1. Listing: every relation the reader lists whose name says it is a KPI
#      (kpi_*) opens for the reader (kpi_state too: one row of progress).
#   2. Metadata (SQLColumns): no numeric column of a view the reader can
#      open has the driver's defaults for a numeric without typmod (28/6
#      in psqlODBC, 0/0 in JDBC): money is numeric(20,2), percentages
#      numeric(7,2) (growth, unbounded, numeric(20,2)), stock prices numeric(20,4); counts are BIGINT.
#   3. Additivity: each view's comment (read with the query the README
#      gives, since ODBC shows no comments) says which columns add up over
#      rows; summing each such column of kpi_totals over all the view's
#      rows gives kpi_totals' figure (today's views: kpi_today's).
#   4. Dates: in every time series, day, year, quarter, month and hour are
#      those of period_start in Tokyo, computed here from the UTC time the
#      driver returns; and the lines near midnight land on Tokyo's days.
#   5. Grafana: every panel query of dashboards/grafana/sales_kafka.json,
#      its variables and macros expanded as Grafana expands them, returns
#      rows when run as the reader.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use SalesKafkaTest;
use PostgreSQL::Test::Utils;
use Test::More;
use DBI;
use JSON::PP;
use POSIX qw(floor);
use Time::Local qw(timegm);


my $node = new_node('bi');
$node->start;
$node->safe_psql('postgres', q{CREATE EXTENSION sales_kafka});

# ---------------------------------------------------------------- the model

my $topic = create_topic('bi_sale_events', 1);
my $brokers = brokers();
$node->safe_psql(
	'postgres', qq{
CREATE SERVER bi_kafka FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers '$brokers');
SELECT sales_kafka.create_sales_model('bi', time_zone => 'Asia/Tokyo');
SELECT sales_kafka.create_sales_pipelines('bi', 'sale_events', 'bi_kafka', '$topic');
CREATE ROLE bi_reader LOGIN IN ROLE sales_kafka_reader;
});

# sale events through Kafka: 23:59:50 and 00:00:10 in Tokyo on the last day
# of March 2024 (the end of a day, a month and a quarter)
produce($topic, 0,
	'{"product_name": "Coffee", "quantity": 2, "price": 3.50, "timestamp": "2024-03-31T23:59:50+09:00"}',
	'{"product_name": "Coffee", "quantity": 1, "price": 3.50, "timestamp": "2024-04-01T00:00:10+09:00"}',
	'{"product_name": "Tea", "quantity": 4, "price": 2.25, "timestamp": "2024-04-01T00:00:20+09:00"}');
ok( poll_until(
		sub {
			$node->safe_psql('postgres', q{SELECT count(*) FROM bi.order_lines})
			  eq '3';
		},
		undef,
		'the sale events in bi.order_lines'),
	'three sale events are ingested through the pipeline');

# order lines with customers and products: around the turn of 2023 in Tokyo,
# and today (for the views of today)
$node->safe_psql(
	'postgres', q{
INSERT INTO bi.products VALUES
    ('P1', 'Chair', 'Furniture', 'Chairs'), ('P2', 'Pen', 'Office Supplies', 'Art');
INSERT INTO bi.customers VALUES
    ('C1', 'Aiko', 'Consumer', 'Japan', 'Tokyo', 'Tokyo', '100-0001', 'Kanto'),
    ('C2', 'Ben', 'Corporate', 'Japan', 'Osaka', 'Osaka', '530-0001', 'Kansai');
INSERT INTO bi.order_lines (order_id, line, sold_at, customer_id, product_id, quantity, unit_price, discount, profit)
VALUES ('O1', 1, '2023-12-31 23:59:59+09', 'C1', 'P1', 2, 120.00, 0.25, 30.00),
       ('O1', 2, '2023-12-31 23:59:59+09', 'C1', 'P2', 10, 1.99, 0, 4.00),
       ('O2', 1, '2024-01-01 00:00:01+09', 'C2', 'P1', 1, 130.00, 0, 35.50),
       ('O3', 1, '2024-06-30 23:30:00+09', 'C2', 'P2', 3, 2.10, 0.1, 1.20),
       ('O4', 1, now(), 'C1', 'P2', 1, 2.50, 0, 0.50);
INSERT INTO bi.metrics (series, record_id, measured_at, stock_price, sales_trend)
SELECT 'ACME', m, timestamptz '2024-03-31 23:40+09' + m * interval '1 minute', 100 + m, m
  FROM generate_series(0, 39) m;
});
# (the rollup worker may have rolled up some of them already)
$node->safe_psql('postgres', q{SELECT sales_kafka.refresh_kpis('bi')});
is($node->safe_psql('postgres', q{SELECT rolled_up_rows || ' ' || rows_waiting FROM bi.kpi_as_of}),
	'8 0', 'the rollups hold the 8 lines, none waits');

# ---------------------------------------------------------------- ODBC

my $driver = $ENV{SK_ODBC_DRIVER} // 'PostgreSQL Unicode';
my $dsn =
	"dbi:ODBC:Driver={$driver};Servername="
  . $node->host
  . ';Port='
  . $node->port
  . ';Database=postgres;Username=bi_reader'
  . ";ConnSettings=SET TimeZone='UTC'";
my $dbh = DBI->connect($dsn, undef, undef,
	{
		RaiseError => 1,
		PrintError => 0,
		AutoCommit => 1,
		# "::type" casts are casts, not named placeholders
		odbc_ignore_named_placeholders => 1,
		LongReadLen => 65536
	});
ok($dbh, "psqlODBC connects as bi_reader (driver \"$driver\")");
is( $dbh->selectrow_array(
		q{SELECT pg_has_role(current_user, 'sales_kafka_reader', 'MEMBER')}),
	1,
	'the ODBC session is a member of sales_kafka_reader');

# what the driver lists (SQLTables): every relation of the schema
my (%listed, @views);
my $sth = $dbh->table_info(undef, 'bi', '%', undef);
while (my $r = $sth->fetchrow_hashref)
{
	$listed{ $r->{TABLE_NAME} } = $r->{TABLE_TYPE};
}
my %opens;
for my $name (sort keys %listed)
{
	$opens{$name} = $dbh->selectrow_array(
		q{SELECT has_table_privilege(format('bi.%I', ?::text), 'SELECT')},
		undef, $name) ? 1 : 0;
	push @views, $name if $listed{$name} eq 'VIEW' && $opens{$name};
}
ok(scalar(@views) >= 25, 'the reader lists ' . scalar(@views) . ' views it can open');

# 1. nothing that looks like a KPI is listed without opening
my @closed =
  grep { /^kpi_/ && !$opens{$_} } sort keys %listed;
is("@closed", '', 'every kpi_* relation the reader lists opens for the reader');
ok($opens{time_dim}, 'time_dim, which the day of the time series joins, opens for the reader');

# the comments, with the query the README gives (ODBC's REMARKS are empty)
my %comment;
for my $r (
	@{
		$dbh->selectall_arrayref(
			q{SELECT c.relname AS view, NULL AS column_name, obj_description(c.oid, 'pg_class') AS comment
			    FROM pg_class c
			   WHERE c.relnamespace = 'bi'::regnamespace AND c.relkind = 'v' AND has_table_privilege(c.oid, 'SELECT')
			  UNION ALL
			  SELECT c.relname, a.attname, col_description(c.oid, a.attnum)
			    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
			   WHERE c.relnamespace = 'bi'::regnamespace AND c.relkind = 'v' AND has_table_privilege(c.oid, 'SELECT')
			   ORDER BY 1, 2 NULLS FIRST})
	})
{
	$comment{ $r->[0] } = $r->[2] unless defined $r->[1];
}
my $remarks = $dbh->column_info(undef, 'bi', 'kpi_totals', 'revenue')->fetchrow_hashref->{REMARKS};
ok(!defined $remarks || $remarks eq '', 'psqlODBC shows no comment (REMARKS), as the README says');
is(scalar(grep { defined $comment{$_} } @views), scalar(@views), 'the README\'s query lists the comment of every view');

my %totals = %{ $dbh->selectrow_hashref(q{SELECT * FROM bi.kpi_totals}) };
my %today = %{ $dbh->selectrow_hashref(q{SELECT * FROM bi.kpi_today}) };
is($totals{revenue}, '357.57', 'kpi_totals: the revenue of the 8 lines');
# today (in Tokyo) when the lines were rolled up: the checks of today's
# views are skipped if midnight in Tokyo passes during the test
my $today_tokyo = $today{day};

my %is_money = map { $_ => 1 }
  qw(revenue profit average_order_value revenue_year_before);
my %is_count = map { $_ => 1 }
  qw(sales_count order_count quantity samples rank revenue_rank quantity_rank
  rolled_up_rows rows_waiting order_count_year_before);

for my $view (@views)
{

	# 2. metadata
	my (@bad, %columns);
	my $ci = $dbh->column_info(undef, 'bi', $view, '%');
	while (my $c = $ci->fetchrow_hashref)
	{
		my ($name, $type, $size, $scale) =
		  @$c{qw(COLUMN_NAME DATA_TYPE COLUMN_SIZE DECIMAL_DIGITS)};
		$columns{$name} = $c;
		$scale //= 'undef';
		if ($type == 2 || $type == 3)    # SQL_NUMERIC, SQL_DECIMAL
		{
			my $want =
				$is_money{$name} ? '20,2'
			  : $name =~ /_growth_pct$/ ? '20,2'
			  : $name =~ /_pct$/ ? '7,2'
			  : $name =~ /^(stock_price|sales_trend)_/ ? '20,4'
			  :                   'declared';
			push @bad, "$name numeric($size,$scale)"
			  if ($want eq 'declared' && ("$size,$scale" eq '28,6' || "$size,$scale" eq '0,0'))
			  || ($want ne 'declared' && "$size,$scale" ne $want);
		}
		elsif ($is_count{$name} && $type != -5)    # SQL_BIGINT
		{
			push @bad, "$name of SQL type $type";
		}
	}
	is("@bad", '', "$view: declared precision and scale for money, percentages and counts");

	# 3. additivity, as the comment says
	my $c = $comment{$view} // '';
	my ($adds) = $c =~ /Adds up over rows: ([^.(]*)/;
	ok(defined $adds, "$view: the comment says which columns add up over rows");
	next unless defined $adds;
	my @adds = grep { $_ ne 'none' } map { s/^\s+|\s+$//gr } split /,/, $adds;
	my @missing = grep { !exists $columns{$_} } @adds;
	is("@missing", '', "$view: the columns its comment says add up exist");
	my $reference =
		$view eq 'kpi_today_top_products' ? undef    # five products only
	  : $view =~ /^kpi_today/ ? \%today
	  : $view =~ /^kpi_/ ? \%totals
	  :                    undef;
	next unless $reference;
	my @summed = grep { exists $reference->{$_} && exists $columns{$_} } @adds;
	next unless @summed;
	my $sums = $dbh->selectrow_hashref(
		'SELECT ' . join(', ', map { "sum($_) AS $_" } @summed) . " FROM bi.$view");
	my @wrong = grep { ($sums->{$_} // 0) != ($reference->{$_} // 0) } @summed;
	is( join(' ', map { "$_=" . ($sums->{$_} // 'NULL') } @wrong),
		'',
		"$view: @summed summed over every row give "
		  . ($view =~ /^kpi_today/ ? 'kpi_today' : 'kpi_totals'));
}

# 4. dates in Tokyo, whatever the session's time zone
for my $view (grep { /^kpi_/ } @views)
{
	my $cols = $dbh->selectall_arrayref(
		q{SELECT attname FROM pg_attribute WHERE attrelid = format('bi.%I', ?::text)::regclass AND attnum > 0},
		undef, $view);
	my %has = map { $_->[0] => 1 } @$cols;
	next unless $has{period_start};
	my @parts = grep { $has{$_} } qw(day year quarter month hour);
	is(join(',', grep { $has{$_} } qw(day year quarter month)),
		'day,year,quarter,month', "$view: a time series with day, year, quarter, month");
	my $rows = $dbh->selectall_arrayref(
		'SELECT period_start, ' . join(', ', @parts) . " FROM bi.$view",
		{ Slice => {} });
	my @wrong;
	for my $r (@$rows)
	{
		my ($y, $mo, $d, $h, $mi, $s) =
		  $r->{period_start} =~ /^(\d+)-(\d+)-(\d+) (\d+):(\d+):(\d+)/
		  or die "unexpected timestamp $r->{period_start}";
		my @t = gmtime(timegm($s, $mi, $h, $d, $mo - 1, $y) + 9 * 3600);
		my %want = (
			day => sprintf('%04d-%02d-%02d', $t[5] + 1900, $t[4] + 1, $t[3]),
			year => $t[5] + 1900,
			quarter => floor($t[4] / 3) + 1,
			month => $t[4] + 1,
			hour => $t[2]);
		push @wrong, "$r->{period_start}: $_ $r->{$_}, not $want{$_}"
		  for grep { "$r->{$_}" ne "$want{$_}" } @parts;
	}
	is(join('; ', @wrong), '', "$view: @parts of each of its " . scalar(@$rows) . " rows are period_start's in Tokyo");
	my $ci = $dbh->column_info(undef, 'bi', $view, 'day');
	my $c = $ci->fetchrow_hashref;
	is($c->{DATA_TYPE}, 91, "$view: day is an SQL date");    # SQL_TYPE_DATE
}

is_deeply(
	$dbh->selectall_arrayref(
		q{SELECT day, year, quarter, month, revenue, order_count FROM bi.kpi_sales_per_day
		   WHERE day BETWEEN '2023-12-31' AND '2024-04-01' ORDER BY period_start}),
	[
		[ '2023-12-31', 2023, 4, 12, '199.90', 1 ],
		[ '2024-01-01', 2024, 1, 1, '130.00', 1 ],
		[ '2024-03-31', 2024, 1, 3, '7.00', 1 ],
		[ '2024-04-01', 2024, 2, 4, '12.50', 2 ]
	],
	'kpi_sales_per_day: seconds before and after midnight in Tokyo are two days, months, quarters (and years)'
);
is_deeply(
	$dbh->selectall_arrayref(
		q{SELECT day, hour, product_id, revenue FROM bi.kpi_product_sales_hourly
		   WHERE day IN ('2024-03-31', '2024-04-01') ORDER BY period_start, product_id}),
	[
		[ '2024-03-31', 23, 'Coffee', '7.00' ],
		[ '2024-04-01', 0, 'Coffee', '3.50' ],
		[ '2024-04-01', 0, 'Tea', '9.00' ]
	],
	'kpi_product_sales_hourly: the hour of day in Tokyo');
is_deeply(
	$dbh->selectall_arrayref(
		q{SELECT day, quarter, region, revenue FROM bi.kpi_customer_sales_monthly
		   WHERE year = 2023 ORDER BY region}),
	[ [ '2023-12-01', 4, 'Kanto', '199.90' ] ],
	'kpi_customer_sales_monthly: December 2023 in Tokyo has only the line sold before midnight there'
);
is_deeply(
	$dbh->selectall_arrayref(
		q{SELECT day, hour, samples FROM bi.kpi_metrics_20min ORDER BY period_start}),
	[ [ '2024-03-31', 23, 20 ], [ '2024-04-01', 0, 20 ] ],
	'kpi_metrics_20min: buckets of Tokyo\'s hours');

$dbh->disconnect;

# ---------------------------------------------------------------- Grafana

my $json = decode_json(slurp_file("$FindBin::RealBin/../dashboards/grafana/sales_kafka.json"));
my %vars = map { $_->{name} => $_ } @{ $json->{templating}{list} };
is($vars{datasource}{type}, 'datasource', 'grafana: the data source is a variable');
is($vars{schema}{type}, 'textbox', 'grafana: the model schema is a variable');

my @panels;
my $walk;
$walk = sub {
	for my $p (@_)
	{
		push @panels, $p if $p->{targets};
		$walk->(@{ $p->{panels} }) if $p->{panels};
	}
};
$walk->(@{ $json->{panels} });
ok(scalar(@panels) >= 15, 'grafana: ' . scalar(@panels) . ' panels with queries');

# the time range of the dashboard: from the first sale to tomorrow, as
# Grafana formats it in its macros (RFC 3339, UTC)
my $from = '2023-12-01T00:00:00Z';
my @tomorrow = gmtime(time + 86400);
my $to = sprintf('%04d-%02d-%02dT%02d:%02d:%02dZ',
	$tomorrow[5] + 1900, $tomorrow[4] + 1, @tomorrow[ 3, 2, 1, 0 ]);

# Grafana's interpolation of a single-value variable in an SQL data source
# (the value, its quotes doubled), then its PostgreSQL macro engine
# (pkg/tsdb/grafana-postgresql-datasource/macros.go): every $name(args)
# becomes SQL; an unknown macro is an error.
sub grafana_expand
{
	my ($sql, %values) = @_;
	for my $v (keys %values)
	{
		(my $value = $values{$v}) =~ s/'/''/g;
		$sql =~ s/\$\{\Q$v\E(?::raw)?\}/$value/g;
		$sql =~ s/\$\Q$v\E\b/$value/g;
	}
	my %seconds = (s => 1, m => 60, h => 3600, d => 86400);
	$sql =~ s{\$([_a-zA-Z0-9]+)\(([^\)]*)\)}{
		my ($name, $arglist) = ($1, $2);
		my @args = map { s/^\s+|\s+$//gr } split /,/, $arglist, -1;
		my $interval = sub {
			my ($n, $unit) = ($args[1] // '') =~ /^'?(\d+)([smhd])'?$/
			  or die "grafana: cannot parse interval $args[1]\n";
			return $n * $seconds{$unit};
		};
		  $name eq '__time'           ? "$args[0] AS \"time\""
		: $name eq '__timeEpoch'      ? "extract(epoch from $args[0]) as \"time\""
		: $name eq '__timeFilter'     ? "$args[0] BETWEEN '$from' AND '$to'"
		: $name eq '__timeFrom'       ? "'$from'"
		: $name eq '__timeTo'         ? "'$to'"
		: $name eq '__timeGroup'      ? sprintf('floor(extract(epoch from %s)/%d)*%d', $args[0], $interval->(), $interval->())
		: $name eq '__timeGroupAlias' ? sprintf('floor(extract(epoch from %s)/%d)*%d AS "time"', $args[0], $interval->(), $interval->())
		: die "grafana: unknown macro \$$name\n";
	}ge;
	die "grafana: unexpanded variable in: $sql\n" if $sql =~ /\$/;
	return $sql;
}

my $day_changed =
  $node->safe_psql('postgres', q{SELECT (now() AT TIME ZONE 'Asia/Tokyo')::date})
  ne $today_tokyo;
for my $p (@panels)
{
	is($p->{datasource}{uid}, '${datasource}', "grafana: \"$p->{title}\" reads the data source variable");
	for my $t (@{ $p->{targets} })
	{
		my $sql = grafana_expand($t->{rawSql}, schema => 'bi');
		my ($ret, $out, $err) = $node->psql(
			'postgres',
			"SELECT count(*) FROM ($sql) AS panel",
			extra_params => [ '-U', 'bi_reader' ]);
		is($ret, 0, "grafana: \"$p->{title}\" runs as the reader")
		  or diag("$sql\n$err");
	  SKIP:
		{
			skip 'midnight passed in Tokyo: no sale today', 1
			  if $day_changed && $t->{rawSql} =~ /kpi_today/;
			cmp_ok($out || 0, '>', 0, "grafana: \"$p->{title}\" returns rows");
		}
	}
}

$node->stop;
done_testing();
