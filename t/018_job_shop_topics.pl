# Job (b) of DESIGN.md, reproduced: a shop sends four topics, customers,
# products, orders and order_items, each on its own and out of order with
# respect to the others; a cron job refreshes the KPIs every 10 minutes.
# Here: create_sales_pipelines('shop', 'shop', ...) (dimensions upserted by
# key, lines appended) and schedule_kpi_refresh(..., '10 minutes'), with
# the rollup worker off (with it on, the rollups need no job at all).
#
# The order lines arrive first, before any order, product or customer;
# then the orders, the products and the customers, in that order (the
# reverse of their dependencies).  The test does not wait ten minutes: it
# checks that pg_cron holds the job with the right schedule, then runs its
# command itself, as pg_cron would, once the lines have landed and again
# once everything has.  KPI values are computed here from
# the data as produced.
#
# Runs against a real Kafka too (topics under the run's prefix).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;

my $node = new_node('job_b');
# the job reproduced refreshes by pg_cron alone: without the rollup worker,
# which would otherwise roll the lines up by itself (t/013)
$node->append_conf('postgresql.conf', "sales_kafka.rollup_worker = off\n");
$node->start;
my $prefix = 'job_shop_';
create_topic("${prefix}customers", 1);
create_topic("${prefix}products", 1);
create_topic("${prefix}orders", 1);
create_topic("${prefix}order_items", 2);
my $topics = topic_prefix() . $prefix;

# pg_cron lives in postgres (cron.database_name), and so does the model
$node->safe_psql('postgres', qq{
	CREATE EXTENSION sales_kafka;
	CREATE EXTENSION pg_cron;
	CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka;
	SELECT sales_kafka.create_sales_model('shop', time_zone => 'America/New_York');
});
is( $node->safe_psql('postgres',
		qq{SELECT string_agg(p, ',' ORDER BY p) FROM sales_kafka.create_sales_pipelines('shop', 'shop', 'kafka', '$topics') AS p}),
	'shop_customers,shop_order_lines,shop_orders,shop_products',
	'four pipelines, one per topic');
for my $p (qw(shop_customers shop_order_lines shop_orders shop_products))
{
	ok(wait_pipeline_running($node, 'postgres', $p, 1, 60), "pipeline $p runs");
}

# KPIs every 10 minutes: one pg_cron job (refresh_kpis: the rollups, then
# the materialized views)
is( $node->safe_psql('postgres',
		q{SELECT string_agg(concat_ws(' | ', jobname, schedule, command), E'\n' ORDER BY jobname)
		    FROM sales_kafka.schedule_kpi_refresh('shop', '10 minutes')}),
	"sales_kafka views postgres.shop | */10 * * * * | SELECT sales_kafka.refresh_kpis('shop')",
	'schedule_kpi_refresh returns the job, every 10 minutes');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(concat_ws(' | ', jobname, schedule, database, active), E'\n' ORDER BY jobname) FROM cron.job}),
	"sales_kafka views postgres.shop | */10 * * * * | postgres | t",
	'pg_cron holds the job, active, for the model\'s database');
my $views_job = $node->safe_psql('postgres',
	q{SELECT command FROM cron.job WHERE jobname = 'sales_kafka views postgres.shop'});

# The data, as the shop sends it
my @customers = (
	[ 'C1', 'Ana Lima',  'Consumer',  'East' ],
	[ 'C2', 'Bo Chen',   'Corporate', 'West' ]);
my @products = (
	[ 'P1', 'Chair', 'Furniture',       'Chairs' ],
	[ 'P2', 'Pen',   'Office Supplies', 'Art' ]);
my @orders = ([ 'O1', 'C1' ], [ 'O2', 'C2' ], [ 'O3', 'C1' ]);
# order_id, line, product, quantity, price, discount
my @items = (
	[ 'O1', 1, 'P1', 2,  '100.00', '0' ],
	[ 'O1', 2, 'P2', 10, '1.50',   '0.2' ],
	[ 'O2', 1, 'P1', 1,  '100.00', '0.1' ],
	[ 'O3', 1, 'P2', 4,  '1.50',   '0' ]);
my %category = map { $_->[0] => $_->[2] } @products;
my ($revenue, %by_category, %orders_seen) = (0);
for my $i (@items)
{
	# round(quantity * price * (1 - discount), 2), in cents
	my $cents = sprintf('%.0f', $i->[3] * $i->[4] * (1 - $i->[5]) * 100);
	$revenue += $cents;
	$by_category{ $category{ $i->[2] } } += $cents;
	$orders_seen{ $i->[0] } = 1;
}
my $n_orders = scalar keys %orders_seen;

# 1. the order lines, before anything they refer to
$node->safe_psql('postgres', 'INSERT INTO shop.src_shop_order_items (order_id, line, product_id, quantity, unit_price, discount, sold_at) VALUES '
	  . join(', ', map { "('$_->[0]', $_->[1], '$_->[2]', $_->[3], $_->[4], $_->[5], '2024-05-01 12:00-04')" } @items));
ok( poll_until(
		sub { $node->safe_psql('postgres', 'SELECT count(*) FROM shop.order_lines') == @items },
		90, 'the order lines'),
	'the order lines landed before any order, product or customer');
$node->safe_psql('postgres', $views_job);
is( $node->safe_psql('postgres',
		q{SELECT concat_ws('|', revenue::numeric(20,2), sales_count, order_count) FROM shop.kpi_totals}),
	sprintf('%.2f|%d|%d', $revenue / 100, scalar @items, $n_orders),
	'the views job: totals from the lines alone');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(concat_ws('|', coalesce(category, '(unknown)'), revenue::numeric(20,2)), ',') FROM shop.kpi_sales_by_category}),
	sprintf('(unknown)|%.2f', $revenue / 100),
	'the views job: no category known yet');

# 2. the orders, the products, the customers
$node->safe_psql('postgres', 'INSERT INTO shop.src_shop_orders (order_id, customer_id, sold_at, ship_mode) VALUES '
	  . join(', ', map { "('$_->[0]', '$_->[1]', '2024-05-01 12:00-04', 'Standard Class')" } @orders));
$node->safe_psql('postgres', 'INSERT INTO shop.src_shop_products (product_id, product_name, category, sub_category) VALUES '
	  . join(', ', map { "('$_->[0]', '$_->[1]', '$_->[2]', '$_->[3]')" } @products));
$node->safe_psql('postgres', 'INSERT INTO shop.src_shop_customers (customer_id, customer_name, segment, region) VALUES '
	  . join(', ', map { "('$_->[0]', '$_->[1]', '$_->[2]', '$_->[3]')" } @customers));
ok( poll_until(
		sub {
			$node->safe_psql('postgres',
				q{SELECT (SELECT count(*) FROM shop.orders) || ' ' || (SELECT count(*) FROM shop.products)
				    || ' ' || (SELECT count(*) FROM shop.customers)}) eq
			  join(' ', scalar @orders, scalar @products, scalar @customers);
		},
		90,
		'the orders, products and customers'),
	'the orders, products and customers landed after the lines');
$node->safe_psql('postgres', $views_job);
is( $node->safe_psql('postgres',
		q{SELECT string_agg(concat_ws('|', category, revenue::numeric(20,2)), ',' ORDER BY category) FROM shop.kpi_sales_by_category}),
	join(',', map { sprintf('%s|%.2f', $_, $by_category{$_} / 100) } sort keys %by_category),
	'the views job again: revenue by category, now that the products are known');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(concat_ws('|', order_id, line, customer_id, ship_mode), ',' ORDER BY order_id, line) FROM shop.sales_facts}),
	join(',', map {
			my $i = $_;
			my ($o) = grep { $_->[0] eq $i->[0] } @orders;
			"$i->[0]|$i->[1]|$o->[1]|Standard Class"
		} @items),
	'sales_facts: every line with its order\'s customer and shipping');

# a customer changes: the dimension is an upsert by key
$node->safe_psql('postgres',
	q{INSERT INTO shop.src_shop_customers (customer_id, customer_name, segment, region) VALUES ('C2', 'Bo Chen', 'Home Office', 'West')});
ok( poll_until(
		sub {
			$node->safe_psql('postgres', q{SELECT segment FROM shop.customers WHERE customer_id = 'C2'}) eq 'Home Office';
		},
		90,
		'the customer update'),
	'a customer message updates the customer');
is($node->safe_psql('postgres', 'SELECT count(*) FROM shop.customers'), '2', 'and adds no row');

is($node->safe_psql('postgres', q{SELECT sales_kafka.unschedule_kpi_refresh('shop')}),
	'1', 'unschedule_kpi_refresh removes the job');

check_server_log($node, 0);
$node->stop;
done_testing();
