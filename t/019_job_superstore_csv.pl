# Job (c) of DESIGN.md, reproduced: the "Sample - Superstore" CSV (cp1252,
# the dataset's own header, US dates) is read by a script and sent to Kafka
# row by row, as JSON of strings (csv.DictReader); a consumer normalises it
# into customers, products, orders and order lines.  Here: the two-line
# recipe, \copy ... (FORMAT csv, HEADER, ENCODING 'WIN1252') and CALL
# sales_kafka.replay() through a foreign table whose columns are the
# dataset's names, then create_sales_pipelines('store', 'superstore', ...),
# which takes the dataset's names and its dates.
#
# The file is made here: 300 rows in orders of 1 to 4 lines, with the
# dataset's exact header, cp1252 bytes (accented names, a euro sign), a
# quoted product name holding a comma and quotes, dates in winter and in
# summer time of the model's zone (America/New_York).  Checked against the
# rows as generated: the normalised tables (counts, names decoded from
# cp1252, each order's time: midnight in New York), and the KPIs.
#
# Runs against a real Kafka too (topic under the run's prefix).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;

my $node = new_node('job_c');
# day before month: 11/8/2016 would be the 11th of August if read so
$node->append_conf('postgresql.conf', "datestyle = 'iso, dmy'\n");
$node->start;
my $topic = create_topic('job_superstore', 2);

my @header = ('Row ID', 'Order ID', 'Order Date', 'Ship Date', 'Ship Mode',
	'Customer ID', 'Customer Name', 'Segment', 'Country', 'City', 'State',
	'Postal Code', 'Region', 'Product ID', 'Category', 'Sub-Category',
	'Product Name', 'Sales', 'Quantity', 'Discount', 'Profit');

# customers: id, name in cp1252 and in UTF-8, segment, city, state, zip, region
my @customers = (
	[ 'ZR-10001', "Zo\xEB Ram\xEDrez",  "Zo\xC3\xAB Ram\xC3\xADrez",    'Consumer',    'New York City', 'New York',   '10024', 'East' ],
	[ 'FB-10002', "Fran\xE7ois B\xE9rub\xE9", "Fran\xC3\xA7ois B\xC3\xA9rub\xC3\xA9", 'Corporate', 'Seattle', 'Washington', '98103', 'West' ],
	[ 'AM-10003', 'Ann Miller',          'Ann Miller',                   'Home Office', 'Houston',       'Texas',      '77095', 'Central' ]);
# products: id, category, sub-category, name in cp1252, price in cents
my @products = (
	[ 'FUR-CH-1', 'Furniture',       'Chairs',  qq(Chair, "Deluxe"),       15999 ],
	[ 'OFF-PA-2', 'Office Supplies', 'Paper',   "Paper \x80 Value Pack",   1296 ],
	[ 'TEC-PH-3', 'Technology',      'Phones',  'Phone Basic',             8999 ]);
my @dates = ([ 11, 8, 2016 ], [ 1, 15, 2017 ], [ 7, 4, 2017 ], [ 6, 12, 2016 ], [ 12, 24, 2016 ]);

my (@rows, %orders, %order_customer, %order_date, %by_category);
my ($total_cents, $row_id, $order_no) = (0, 0, 0);
while ($row_id < 300)
{
	$order_no++;
	my $order = sprintf('CA-%d-%06d', 2016 + $order_no % 2, $order_no);
	my $c = $customers[ $order_no % @customers ];
	my $d = $dates[ $order_no % @dates ];
	my $lines = 1 + $order_no % 4;
	for my $l (1 .. $lines)
	{
		last if $row_id == 300;
		$row_id++;
		my $p = $products[ ($order_no + $l) % @products ];
		my $qty = 1 + ($row_id % 5);
		my $discount = $row_id % 3 == 0 ? '0.2' : '0';
		my $cents = sprintf('%.0f', $p->[4] * $qty * (1 - $discount));
		my $sales = sprintf('%d.%02d', int($cents / 100), $cents % 100);
		my $profit = sprintf('%.2f', $cents / 1000);
		push @rows, [ $row_id, $order, "$d->[0]/$d->[1]/$d->[2]",
			"$d->[0]/" . ($d->[1] + 3) . "/$d->[2]", 'Second Class', $c->[0],
			$c->[1], $c->[3], 'United States', $c->[4], $c->[5], $c->[6],
			$c->[7], $p->[0], $p->[1], $p->[2], $p->[3], $sales, $qty,
			$discount, $profit ];
		$total_cents += $cents;
		$by_category{ $p->[1] } += $cents;
		$orders{$order}++;
		$order_customer{$order} = $c->[0];
		$order_date{$order} = $d;
	}
}

# the file, in cp1252, quoted as Excel and Python's csv module quote
sub csv_field
{
	my ($v) = @_;
	return $v !~ /[",\n]/ ? $v : '"' . ($v =~ s/"/""/gr) . '"';
}
my $csv = "${PostgreSQL::Test::Utils::tmp_check}/Sample - Superstore.csv";
open(my $fh, '>:raw', $csv) or die "cannot write $csv: $!";
print $fh join(',', map { csv_field($_) } @header), "\r\n";
print $fh join(',', map { csv_field($_) } @$_), "\r\n" for @rows;
close($fh);

# the model and its pipelines; the staging table and the replay's target
my $columns = join(', ', map { qq("$_" text) } @header);
$node->safe_psql('postgres', qq{
	CREATE EXTENSION sales_kafka;
	CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka;
	SELECT sales_kafka.create_sales_model('store', time_zone => 'America/New_York');
	SELECT sales_kafka.create_sales_pipelines('store', 'superstore', 'kafka', '$topic');
	CREATE TABLE staging ($columns);
	CREATE FOREIGN TABLE superstore_out ($columns) SERVER kafka OPTIONS (topic '$topic');
});

# the two-line recipe
my ($ret, $out, $err) = $node->psql('postgres', qq{
\\copy staging FROM '$csv' (FORMAT csv, HEADER, ENCODING 'WIN1252')
CALL sales_kafka.replay('superstore', 'SELECT * FROM staging ORDER BY "Row ID"::int', 'superstore_out');
});
is($ret, 0, '\copy with ENCODING WIN1252, then CALL sales_kafka.replay') or diag($err);
like($err, qr/replay "superstore" finished: 300 of 300 rows/, 'the replay reports its 300 rows');
is($node->safe_psql('postgres', q{SELECT "Customer Name" FROM staging WHERE "Customer ID" = 'ZR-10001' LIMIT 1}),
	$customers[0][2], 'the cp1252 name is UTF-8 in the staging table');

for my $p (qw(store_customers store_products store_orders store_order_lines))
{
	ok(wait_pipeline_running($node, 'postgres', $p, 1, 60), "pipeline $p runs");
}
ok( poll_until(
		sub {
			$node->safe_psql('postgres',
				q{SELECT (SELECT count(*) FROM store.order_lines) || ' ' || (SELECT count(*) FROM store.orders)
				    || ' ' || (SELECT count(*) FROM store.customers) || ' ' || (SELECT count(*) FROM store.products)})
			  eq join(' ', 300, scalar keys %orders, scalar @customers, scalar @products);
		},
		120,
		'the normalised tables'),
	'300 lines, their orders, customers and products landed');
is($node->safe_psql('postgres', 'SELECT count(*) FROM sales_kafka.dead_letter'), '0', 'no dead letter');

is( $node->safe_psql('postgres',
		q{SELECT string_agg(concat_ws('|', customer_id, customer_name, segment, city, state, postal_code, region), E'\n' ORDER BY customer_id) FROM store.customers}),
	join("\n", map { join('|', @$_[ 0, 2 .. 7 ]) } sort { $a->[0] cmp $b->[0] } @customers),
	'customers: every field, the names decoded from cp1252');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(concat_ws('|', product_id, product_name, category, sub_category), E'\n' ORDER BY product_id) FROM store.products}),
	join("\n", map { join('|', $_->[0], ($_->[3] =~ s/\x80/\xE2\x82\xAC/r), $_->[1], $_->[2]) }
		  sort { $a->[0] cmp $b->[0] } @products),
	'products: a quoted name with a comma and quotes, a euro sign');

# each order at midnight of its US date in New York: UTC-4 in summer time
# (April to October for these dates), UTC-5 otherwise
my @expected_orders;
for my $o (sort keys %orders)
{
	my ($m, $d, $y) = @{ $order_date{$o} };
	my $offset = $m >= 4 && $m <= 10 ? 4 : 5;
	push @expected_orders,
	  sprintf('%s|%s|%04d-%02d-%02d %02d:00:00|%04d-%02d-%02d|%d', $o, $order_customer{$o},
		$y, $m, $d, $offset, $y, $m, $d + 3, $orders{$o});
}
is( $node->safe_psql('postgres',
		q{SELECT string_agg(concat_ws('|', o.order_id, o.customer_id, to_char(o.sold_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
		                              o.ship_date, (SELECT count(*) FROM store.order_lines l WHERE l.order_id = o.order_id)),
		                    E'\n' ORDER BY o.order_id)
		    FROM store.orders o}),
	join("\n", @expected_orders),
	'orders: customer, US dates read as midnight in New York whatever DateStyle says, ship date, lines');

# the rollup worker may have rolled them up already: after refresh_kpis,
# no line waits
$node->safe_psql('postgres', q{SELECT sales_kafka.refresh_kpis('store')});
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM store.order_lines WHERE ingest_id > (SELECT rolled_up_through FROM store.kpi_state)}),
	'0', 'after refresh_kpis every line is rolled up');
is( $node->safe_psql('postgres', q{SELECT concat_ws('|', revenue::numeric(20,2), sales_count, order_count) FROM store.kpi_totals}),
	sprintf('%.2f|300|%d', $total_cents / 100, scalar keys %orders),
	'kpi_totals: the Sales column summed, lines and orders');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(concat_ws('|', category, revenue::numeric(20,2)), ',' ORDER BY category) FROM store.kpi_sales_by_category}),
	join(',', map { sprintf('%s|%.2f', $_, $by_category{$_} / 100) } sort keys %by_category),
	'kpi_sales_by_category as computed here');

check_server_log($node, 0);
$node->stop;
done_testing();
