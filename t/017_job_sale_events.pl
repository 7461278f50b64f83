# Job (a) of DESIGN.md, reproduced: a generator sends one simple sale event
# a second (product_name, quantity, price, timestamp) to a topic; today a
# Python consumer writes them into a table that a dashboard reads.  Here:
# create_sales_pipelines('shop', 'sale_events', ...) and the KPIs.
#
# The events carry their timestamp as Python writes it, in turn:
# str(datetime.now()) (a naive local time of the shop, Europe/Berlin),
# time.time() (epoch seconds with a fraction, a JSON number), isoformat()
# with an offset, and epoch milliseconds.  Twenty events one second apart
# are produced in four batches, each once the one before has landed
# (paced by conditions, not by sleeping).  Checked against values computed
# here: every sold_at, the totals and the products' figures after
# refresh_kpis; a message of another shape is a dead letter saying that no
# field matched (2203A), not a row of NULLs.
#
# Runs against a real Kafka too (topic under the run's prefix).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;

my $node = new_node('job_a');
$node->start;
my $topic = create_topic('job_sale_events', 1);

$node->safe_psql('postgres', qq{
	CREATE EXTENSION sales_kafka;
	CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka;
	SELECT sales_kafka.create_sales_model('shop', time_zone => 'Europe/Berlin');
	SELECT sales_kafka.create_sales_pipelines('shop', 'sale_events', 'kafka', '$topic');
});
ok(wait_pipeline_running($node, 'postgres', 'shop_order_lines', 1, 60),
	'the sale_events pipeline runs');

# The events: 2024-05-01 08:00:00.25 UTC (10:00:00.25 in Berlin, summer
# time: UTC+2) plus i seconds.
my %price = (Coffee => '3.50', Tea => '2.00', Cake => '4.25');
my @products = qw(Coffee Tea Cake);
my $t0 = 1714550400;    # 2024-05-01 08:00:00 UTC
my (@events, @expected_epochs);
my (%revenue, %quantity);
my ($total_revenue, $total_quantity) = (0, 0);
for my $i (0 .. 19)
{
	my $t = $t0 + $i;
	my $product = $products[ $i % 3 ];
	my $qty = 1 + $i % 4;
	my $ts;
	if ($i % 4 == 0)
	{
		# str(datetime.now()) on a machine in Berlin
		my @l = gmtime($t + 2 * 3600);
		$ts = sprintf('"%04d-%02d-%02d %02d:%02d:%02d.250000"',
			$l[5] + 1900, $l[4] + 1, $l[3], $l[2], $l[1], $l[0]);
	}
	elsif ($i % 4 == 1)
	{
		$ts = "$t.25";    # time.time()
	}
	elsif ($i % 4 == 2)
	{
		my @u = gmtime($t);
		$ts = sprintf('"%04d-%02d-%02dT%02d:%02d:%02d.250000+00:00"',
			$u[5] + 1900, $u[4] + 1, $u[3], $u[2], $u[1], $u[0]);
	}
	else
	{
		$ts = $t . '250';    # epoch milliseconds
	}
	push @events,
	  qq({"product_name": "$product", "quantity": $qty, "price": $price{$product}, "timestamp": $ts});
	push @expected_epochs, "$t.250";
	$revenue{$product} += $qty * $price{$product};
	$quantity{$product} += $qty;
	$total_revenue += $qty * $price{$product};
	$total_quantity += $qty;
}

# one event a second, as the generator sends them, in four paced batches
for my $batch (0 .. 3)
{
	produce($topic, 0, @events[ 5 * $batch .. 5 * $batch + 4 ]);
	my $want = 5 * ($batch + 1);
	ok( poll_until(
			sub {
				$node->safe_psql('postgres', 'SELECT count(*) FROM shop.order_lines') == $want;
			},
			90,
			"$want sale events in shop.order_lines"),
		"batch $batch: $want events landed");
}

is( $node->safe_psql('postgres',
		q{SELECT string_agg(to_char(extract(epoch FROM sold_at), 'FM9999999999.000'), ',' ORDER BY sold_at)
		    FROM shop.order_lines}),
	join(',', @expected_epochs),
	'every sold_at is the time the event was made, whatever form Python wrote it in');

# a message of another shape: a dead letter saying why
produce($topic, 0, '{"name": "Coffee", "qty": 1, "cost": 3.5, "time": "2024-05-01 10:00:30"}');
ok( poll_until(
		sub {
			$node->safe_psql('postgres',
				q{SELECT count(*) FROM sales_kafka.dead_letter WHERE pipeline = 'shop_order_lines'}) == 1;
		},
		90,
		'the dead letter'),
	'a message with none of the mapped fields becomes a dead letter');
like(
	$node->safe_psql('postgres',
		q{SELECT sqlstate || ' ' || error FROM sales_kafka.dead_letter WHERE pipeline = 'shop_order_lines'}),
	qr/^2203A Kafka message payload has none of the fields of foreign table "src_sale_events": The table reads the fields "product_name", "quantity", "price", "timestamp"; /,
	'the dead letter says that no field matched and which fields the table reads (2203A)');
is($node->safe_psql('postgres', 'SELECT count(*) FROM shop.order_lines'),
	'20', 'no row of NULLs was written for it');

# the KPIs
# the rollup worker may have rolled them up already: after refresh_kpis,
# no line waits
$node->safe_psql('postgres', q{SELECT sales_kafka.refresh_kpis('shop')});
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM shop.order_lines WHERE ingest_id > (SELECT rolled_up_through FROM shop.kpi_state)}),
	'0', 'after refresh_kpis every event is rolled up');
is( $node->safe_psql('postgres',
		q{SELECT concat_ws('|', revenue::numeric(20,2), sales_count, order_count, quantity) FROM shop.kpi_totals}),
	sprintf('%.2f|20|20|%d', $total_revenue, $total_quantity),
	'kpi_totals: revenue, sales, orders (one per event) and units as computed here');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(concat_ws('|', product_id, revenue::numeric(20,2), quantity), ',' ORDER BY product_id)
		    FROM shop.kpi_top_products}),
	join(',', map { sprintf('%s|%.2f|%d', $_, $revenue{$_}, $quantity{$_}) } sort keys %revenue),
	'kpi_top_products: revenue and units by product as computed here');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(concat_ws('|', (period_start AT TIME ZONE 'Europe/Berlin')::date, revenue::numeric(20,2)), ',')
		    FROM shop.kpi_sales_per_day}),
	sprintf('2024-05-01|%.2f', $total_revenue),
	'kpi_sales_per_day: one day in Berlin');

check_server_log($node, 0);
$node->stop;
done_testing();
