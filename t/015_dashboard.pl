# The live dashboard (sales_kafka_dashboard, dashboard/): a sales model fed
# through Kafka, the program serving it, and headless Chromium reading the
# page through chromedriver (WebDriver over HTTP, with HTTP::Tiny and
# JSON::PP):
#
#   1. The program refuses a superuser and a role outside sales_kafka_reader
#      (and takes them with --allow-non-reader), and a schema that holds no
#      model.
#   2. Order lines with known figures go through a topic and the superstore
#      pipelines into model "shop"; the page shows the KPI cards, today's
#      top 5 and the category / region / segment splits exactly as the SQL
#      views give them, and the pipelines' health.  /api/VIEW gives what
#      SQL gives.
#   3. New order lines are ingested, and counted by the rollup worker (no
#      refresh call): the page shows them no later than its second refresh
#      after the KPI views show them (counted in refreshes, not in seconds).
#      The screenshot is kept in tmp_check/log/dashboard.png.
#   4. The server stops: the page shows the stale-data banner, never silently
#      old numbers; it starts again: the program reconnects and the page is
#      live again.
#   5. Bad requests (unknown views, SQL-looking paths, query strings and
#      headers that are too long, other methods than GET) get a 4xx and a
#      one-line body.
#
# Waits poll with bounded timeouts; nothing waits a fixed time.  Runs against
# a real Kafka too (its topic is created under the run's prefix).
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use File::Temp ();
use HTTP::Tiny;
use IO::Socket::INET;
use IPC::Run;
use JSON::PP;
use MIME::Base64 qw(decode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SalesKafkaTest;
use Test::More;
use Time::HiRes qw(time usleep);

# seconds any one wait may take
my $wait_s = 90;
# the page's refresh period in this test, seconds
my $refresh_s = 2;

my $json = JSON::PP->new->canonical;
my $http = HTTP::Tiny->new(timeout => 30, max_redirect => 0, keep_alive => 0);

for my $program ('sales_kafka_dashboard', 'chromium', 'chromedriver')
{
	my $found = grep { -x "$_/$program" } split /:/, $ENV{PATH};
	BAIL_OUT("$program is not in PATH: make install builds the first, "
		  . "test/run-tests.sh installs the others (chromium, chromium-driver)")
	  unless $found;
}

# ---------------------------------------------------------------- helpers

my @started;	# IPC::Run harnesses to stop at the end

# Start the dashboard with @args; returns its harness once it prints the
# line that says it serves, or dies with its output.
sub start_dashboard
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ 'sales_kafka_dashboard', @args ],
		'<', \undef, '>', \$out, '2>', \$err);
	push @started, $h;
	poll_until(sub { $h->pump_nb; $out =~ /serving schema/ || !$h->pumpable },
		$wait_s, 'the dashboard to serve')
	  or die "the dashboard did not start: $out$err";
	die "the dashboard exited: $out$err" unless $out =~ /serving schema/;
	$h->{sk_err} = \$err;
	return $h;
}

# Run the dashboard expecting it to refuse; returns (exit status, stderr).
sub refused
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'sales_kafka_dashboard', @args ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout($wait_s));
	return ($? >> 8, $err);
}

# SQL's figures as psql prints them, unaligned: one row per line, '|' between
sub sql
{
	my ($node, $query) = @_;
	return $node->safe_psql('postgres', $query);
}

# "$1,234.50" -> "1234.50", "12.34 %" -> "12.34"
sub plain
{
	my ($text) = @_;
	return undef unless defined $text;
	(my $p = $text) =~ s/[^0-9.\-]//g;
	return $p;
}

# WebDriver: one command to chromedriver; returns its "value", or dies
my $wd_url;

sub wd
{
	my ($method, $path, $body) = @_;
	my $res = $http->request($method, "$wd_url$path",
		defined $body
		? { content => $json->encode($body),
			headers => { 'Content-Type' => 'application/json' } }
		: {});
	my $v = eval { $json->decode($res->{content}) };
	die "WebDriver $method $path: $res->{status} $res->{content}\n"
	  unless $res->{success} && $v;
	return $v->{value};
}

my $session;

sub js
{
	my ($script) = @_;
	return wd('POST', "/session/$session/execute/sync",
		{ script => $script, args => [] });
}

# What the page shows: cards, tables and state, in one call
my $read_page_js = <<'JS';
var t = function (id) { var e = document.getElementById(id); return e ? e.textContent : null; };
var rows = function (sel) {
  return Array.prototype.map.call(document.querySelectorAll(sel), function (tr) {
    return Array.prototype.map.call(tr.cells, function (c) { return c.textContent; });
  });
};
return {
  refreshes: parseInt(document.body.dataset.refreshes || '0', 10),
  state: document.body.dataset.state || '',
  banner: !document.getElementById('stale-banner').hidden,
  banner_text: t('stale-text'),
  revenue: t('kpi-revenue'), orders: t('kpi-orders'), lines: t('kpi-lines'),
  aov: t('kpi-aov'), today_revenue: t('kpi-today-revenue'),
  today_orders: t('kpi-today-orders'), updated: t('kpi-updated'),
  offsets: t('kpi-offsets'),
  today_top: rows('#table-today-top tbody tr'),
  category: rows('#table-category tbody tr'),
  region: rows('#table-region tbody tr'),
  segment: rows('#table-segment tbody tr'),
  today_category: rows('#table-today-category tbody tr'),
  pipelines: rows('#table-pipelines tbody tr')
};
JS

sub page { return js($read_page_js); }

# Poll the page until $cond->($page) holds; returns the last page read
sub wait_page
{
	my ($cond, $what) = @_;
	my $p;
	poll_until(sub { $p = page(); $cond->($p) }, $wait_s, $what);
	return $p;
}

# ---------------------------------------------------------------- the model

my $node = new_node('dashboard');
$node->start;
my $topic = create_topic('dashboard_sales', 2);
my $brokers = brokers();

$node->safe_psql('postgres', qq{
CREATE EXTENSION sales_kafka;
CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers '$brokers');
SELECT sales_kafka.create_sales_model('shop');
SELECT sales_kafka.create_sales_pipelines('shop', 'superstore', 'kafka', '$topic');
CREATE ROLE regress_dash_reader LOGIN IN ROLE sales_kafka_reader;
CREATE ROLE regress_dash_other LOGIN;
CREATE SCHEMA empty_schema;
-- order lines with known figures: \$1 sold_at, \$2 order, \$3 line, \$4 product,
-- \$5 quantity, \$6 unit price, \$7 customer
CREATE FUNCTION dash_line(timestamptz, text, int, text, int, numeric, text)
RETURNS void LANGUAGE sql AS \$f\$
INSERT INTO shop.src_superstore (order_id, line, sold_at, ship_date, ship_mode,
  customer_id, customer_name, segment, country, city, state, postal_code, region,
  product_id, product_name, category, sub_category, stated_revenue, quantity,
  discount, profit, order_priority)
SELECT \$2, \$3, \$1, (\$1 + interval '2 days')::date, 'Standard Class', c.id, 'Customer ' || c.id,
       c.segment, 'United States', c.city, c.state, NULL, c.region,
       p.id, p.name, p.category, p.sub_category, \$5 * \$6, \$5, 0, round(\$5 * \$6 * 0.2, 2), 'Medium'
  FROM (VALUES ('C1', 'Consumer', 'New York City', 'New York', 'East'),
               ('C2', 'Corporate', 'Seattle', 'Washington', 'West'),
               ('C3', 'Home Office', 'Chicago', 'Illinois', 'Central')) c(id, segment, city, state, region),
       (VALUES ('P1', 'Ergonomic Chair', 'Furniture', 'Chairs'),
               ('P2', 'Laptop 14"', 'Technology', 'Machines'),
               ('P3', 'Copy Paper', 'Office Supplies', 'Paper'),
               ('P4', 'Desk Lamp', 'Furniture', 'Furnishings'),
               ('P5', 'Wireless Mouse', 'Technology', 'Accessories'),
               ('P6', 'Stapler', 'Office Supplies', 'Fasteners')) p(id, name, category, sub_category)
 WHERE c.id = \$7 AND p.id = \$4
\$f\$;
});

# 12 lines in 6 orders: three days ago, yesterday and today (at most an
# hour ago, never before midnight; the model's time zone is the server's,
# UTC here)
$node->safe_psql('postgres', q{
BEGIN;
SELECT dash_line(now() - interval '3 days', 'O1', 1, 'P1', 2, 289.99, 'C1');
SELECT dash_line(now() - interval '3 days', 'O1', 2, 'P3', 10, 6.49, 'C1');
SELECT dash_line(now() - interval '1 day', 'O2', 1, 'P2', 1, 1099.00, 'C2');
SELECT dash_line(now() - interval '1 day', 'O2', 2, 'P5', 3, 24.99, 'C2');
SELECT dash_line(now() - interval '1 day', 'O3', 1, 'P4', 4, 39.95, 'C3');
SELECT dash_line(least(now(), greatest(date_trunc('day', now()), now() - interval '1 hour')), 'O4', 1, 'P2', 2, 1099.00, 'C1');
SELECT dash_line(least(now(), greatest(date_trunc('day', now()), now() - interval '1 hour')), 'O4', 2, 'P6', 5, 22.90, 'C1');
SELECT dash_line(now(), 'O5', 1, 'P1', 1, 289.99, 'C2');
SELECT dash_line(now(), 'O5', 2, 'P3', 20, 6.49, 'C2');
SELECT dash_line(now(), 'O5', 3, 'P5', 2, 24.99, 'C2');
SELECT dash_line(now(), 'O6', 1, 'P4', 1, 39.95, 'C3');
SELECT dash_line(now(), 'O6', 2, 'P5', 1, 24.99, 'C3');
-- and a history for the charts: an order line every minute of the last two
-- hours, and every half hour of the last two days
SELECT dash_line(now() - i * interval '1 minute', 'M' || i, 1, 'P' || (1 + i * 7 % 6),
                 1 + i % 4, (ARRAY[289.99, 1099.00, 6.49, 39.95, 24.99, 22.90])[1 + i * 7 % 6],
                 'C' || (1 + i % 3))
  FROM generate_series(1, 120) i;
SELECT dash_line(now() - i * interval '30 minutes', 'H' || i, 1, 'P' || (1 + i * 5 % 6),
                 1 + i % 3, (ARRAY[289.99, 1099.00, 6.49, 39.95, 24.99, 22.90])[1 + i * 5 % 6],
                 'C' || (1 + i * 2 % 3))
  FROM generate_series(5, 96) i;
COMMIT;
});

# the rollup worker has counted $lines order lines in the KPIs (it runs
# after the pipelines' commits; no refresh call)
sub wait_rolled_up
{
	my ($lines) = @_;
	return poll_until(
		sub {
			my $n = try_query($node, 'postgres',
				'SELECT sales_count FROM shop.kpi_totals');
			defined $n && $n == $lines;
		},
		$wait_s,
		"$lines order lines in shop.kpi_totals");
}

# the pipelines have written $lines order lines
sub wait_ingested
{
	my ($lines) = @_;
	return poll_until(
		sub {
			my $n = try_query($node, 'postgres',
				'SELECT count(*) FROM shop.order_lines');
			defined $n && $n == $lines;
		},
		$wait_s,
		"$lines order lines in shop.order_lines");
}
my $lines = 12 + 120 + 92;
ok(wait_ingested($lines), "the pipelines ingested the $lines order lines");
ok(wait_rolled_up($lines), "the rollup worker counted the $lines order lines");

my $conninfo = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';

# ---------------------------------------------------------------- refusals

my ($rc, $err);
{
	my $super = sql($node, 'SELECT current_user');
	($rc, $err) = refused('--conninfo', "$conninfo user=$super",
		'--schema', 'shop', '--listen', '127.0.0.1:1');
	ok($rc != 0 && $err =~ /role "\Q$super\E" is a superuser/,
		'the dashboard refuses a superuser')
	  or diag("exit $rc: $err");
}
($rc, $err) = refused('--conninfo', "$conninfo user=regress_dash_other",
	'--schema', 'shop', '--listen', '127.0.0.1:1');
ok($rc != 0 && $err =~ /role "regress_dash_other" is not a member of "sales_kafka_reader"/,
	'the dashboard refuses a role outside sales_kafka_reader')
  or diag("exit $rc: $err");
($rc, $err) = refused('--conninfo', "$conninfo user=regress_dash_reader",
	'--schema', 'empty_schema', '--listen', '127.0.0.1:1');
ok($rc != 0 && $err =~ /schema "empty_schema" holds no sales model/,
	'the dashboard refuses a schema without a sales model')
  or diag("exit $rc: $err");

{
	# --allow-non-reader lets the role through: it then fails on the
	# address (port 1 is privileged), after the database checks
	($rc, $err) = refused('--conninfo', "$conninfo user=regress_dash_other",
		'--schema', 'shop', '--listen', '127.0.0.1:1', '--allow-non-reader');
	like($err, qr/could not listen on 127\.0\.0\.1:1|permission denied for the KPI views/,
		'--allow-non-reader passes the role check');
}

# ---------------------------------------------------------------- serve

my $port = PostgreSQL::Test::Cluster::get_free_port();
my $base = "http://127.0.0.1:$port";
my $dash = start_dashboard('--conninfo', "$conninfo user=regress_dash_reader",
	'--schema', 'shop', '--listen', "127.0.0.1:$port");

# /api/VIEW equals SQL
for my $view ('kpi_totals', 'kpi_today', 'kpi_sales_by_region', 'kpi_today_top_products')
{
	my $res = $http->get("$base/api/$view");
	my $doc = eval { decode_json($res->{content}) } // {};
	my $want = decode_json(sql($node,
		"SELECT coalesce(json_agg(t), '[]') FROM shop.$view t"));
	is($json->encode($doc->{rows} // []), $json->encode($want),
		"/api/$view gives the rows of shop.$view");
}

# ---------------------------------------------------------------- the page

my $tmp = File::Temp->newdir("$PostgreSQL::Test::Utils::tmp_check/chrome_XXXX");
my $wd_port = PostgreSQL::Test::Cluster::get_free_port();
$wd_url = "http://127.0.0.1:$wd_port";
my ($wd_out, $wd_err) = ('', '');
push @started, IPC::Run::start([ 'chromedriver', "--port=$wd_port" ],
	'<', \undef, '>', \$wd_out, '2>', \$wd_err);
ok( poll_until(
		sub {
			my $r = $http->get("$wd_url/status");
			$r->{success} && ($r->{content} =~ /"ready"\s*:\s*true/);
		},
		$wait_s,
		'chromedriver'),
	'chromedriver is ready')
  or BAIL_OUT("chromedriver did not start: $wd_out$wd_err");

$session = wd('POST', '/session', {
	capabilities => { alwaysMatch => {
		browserName => 'chrome',
		'goog:chromeOptions' => {
			binary => (grep { -x } map { "$_/chromium" } split /:/, $ENV{PATH})[0],
			# no sandbox: as root Chromium needs it off, and containers
			# often lack the user namespaces it needs otherwise; the page
			# is our own, on loopback
			args => [ '--headless=new', '--no-sandbox', '--disable-gpu',
				'--disable-dev-shm-usage', '--hide-scrollbars',
				'--window-size=1440,2000', "--user-data-dir=$tmp",
				'--lang=en-US' ] } } } })->{sessionId};
ok($session, 'a headless Chromium session');

wd('POST', "/session/$session/url", { url => "$base/?refresh=$refresh_s" });
my $p = wait_page(sub { $_[0]{refreshes} >= 1 }, 'the first refresh of the page');
is($p->{state}, 'live', 'the page is live after its first refresh');
ok(!$p->{banner}, 'no stale-data banner');

# the cards equal SQL
sub check_cards
{
	my ($p, $when) = @_;
	my ($rev, $orders, $lines, $aov) = split /\|/, sql($node,
		'SELECT revenue, order_count, sales_count, average_order_value FROM shop.kpi_totals');
	my ($trev, $torders) = split /\|/, sql($node,
		'SELECT revenue, order_count FROM shop.kpi_today');
	is(plain($p->{revenue}), $rev, "$when: the revenue card shows kpi_totals.revenue ($rev)");
	is(plain($p->{orders}), $orders, "$when: the orders card shows kpi_totals.order_count");
	is(plain($p->{lines}), $lines, "$when: the order lines shown are kpi_totals.sales_count");
	is(plain($p->{aov}), $aov, "$when: the average order value card shows kpi_totals.average_order_value");
	is(plain($p->{today_revenue}), $trev, "$when: today's revenue card shows kpi_today.revenue");
	is(plain($p->{today_orders}), $torders, "$when: today's orders card shows kpi_today.order_count");
}
check_cards($p, 'known rows');

# today's top 5, and the splits: name, revenue, share
is( $json->encode([ map { [ $_->[1], plain($_->[3]), plain($_->[4]) ] } @{ $p->{today_top} } ]),
	$json->encode([ map { [ split /\|/ ] } split /\n/, sql($node,
		'SELECT product_name, quantity, revenue FROM shop.kpi_today_top_products') ]),
	"today's top 5 shows kpi_today_top_products, in its order");
for my $split ([ 'category', 'kpi_sales_by_category' ], [ 'region', 'kpi_sales_by_region' ],
	[ 'segment', 'kpi_sales_by_segment' ], [ 'today_category', 'kpi_today_by_category' ])
{
	my ($key, $view) = @$split;
	my $col = $key eq 'today_category' ? 'category' : $key;
	is( $json->encode([ map { [ $_->[0], plain($_->[1]), plain($_->[2]) ] } @{ $p->{$key} } ]),
		$json->encode([ map { [ split /\|/ ] } split /\n/, sql($node,
			"SELECT $col, revenue, revenue_share_pct FROM shop.$view") ]),
		"the $key split shows $view: names, revenue and shares, in its order");
}

# pipeline health: the four pipelines of the model, by name
is( join(',', map { $_->[0] } @{ $p->{pipelines} }),
	'shop_customers,shop_order_lines,shop_orders,shop_products',
	'pipeline health lists the pipelines writing into the model');
like($p->{offsets}, qr/^\d[\d,]* messages, \d+ partitions$/,
	'the last-update card says which Kafka offsets the KPIs cover');

# ---------------------------------------------------------------- new rows

$node->safe_psql('postgres', q{
BEGIN;
SELECT dash_line(now(), 'O7', 1, 'P2', 3, 1099.00, 'C3');
SELECT dash_line(now(), 'O7', 2, 'P6', 2, 22.90, 'C3');
COMMIT;
});
ok(wait_ingested($lines + 2), 'the pipelines ingested 2 more order lines');
ok(wait_rolled_up($lines + 2), 'the rollup worker counted them');
my $rolled_up = page()->{refreshes};
my $want_rev = sql($node, 'SELECT revenue FROM shop.kpi_totals');
$p = wait_page(sub { plain($_[0]{revenue}) eq $want_rev },
	'the new revenue on the page');
is(plain($p->{revenue}), $want_rev, 'the page shows the new revenue');
cmp_ok($p->{refreshes} - $rolled_up, '<=', 2,
	'the new rows show by the second refresh after the KPI views have them');
check_cards($p, 'after new rows');
is( $json->encode([ map { $_->[1] } @{ page()->{today_top} } ]),
	$json->encode([ split /\n/, sql($node,
		'SELECT product_name FROM shop.kpi_today_top_products') ]),
	"today's top 5 after new rows is kpi_today_top_products'");

# the screenshot: a test artifact (tmp_check/log), README's picture
my $png = decode_base64(wd('GET', "/session/$session/screenshot"));
my $shot = "$PostgreSQL::Test::Utils::log_path/dashboard.png";
open(my $fh, '>:raw', $shot) or die "cannot write $shot: $!";
print $fh $png;
close($fh);
ok(length($png) > 10_000 && substr($png, 0, 8) eq "\x89PNG\r\n\x1a\n",
	"a screenshot of the page in $shot");

# ---------------------------------------------------------------- stale data

$node->stop('fast');
$p = wait_page(sub { $_[0]{state} eq 'stale' }, 'the stale state');
ok($p->{banner}, 'with the server down, the page shows the stale-data banner');
like($p->{banner_text}, qr/The last refresh failed \(HTTP 503/,
	'the banner says the refresh failed, and why');
is(plain($p->{revenue}), $want_rev, 'the figures stay those last read, under the banner');

$node->start;
$p = wait_page(sub { $_[0]{state} eq 'live' }, 'the page live again');
ok(!$p->{banner}, 'the server back: the program reconnected and the banner is gone');
check_cards($p, 'after the restart');

# ---------------------------------------------------------------- bad requests

sub status_of
{
	my ($method, $path, %opts) = @_;
	my $res = $http->request($method, "$base$path", \%opts);
	return ($res->{status}, $res->{content} // '');
}

for my $case (
	[ 'GET', '/api/kpi_nope', 'an unknown view' ],
	[ 'GET', '/api/kpi_state', 'a table of the model' ],
	[ 'GET', '/api/order_lines', 'a table of the model, not a KPI' ],
	[ 'GET', '/api/kpi_totals%3B%20DROP%20TABLE%20shop.orders', 'SQL after a view name' ],
	[ 'GET', "/api/kpi_totals'%20OR%20'1'='1", 'a quote in the path' ],
	[ 'GET', '/api/..%2F..%2Fetc%2Fpasswd', 'a path out of the API' ],
	[ 'GET', '/../../etc/passwd', 'a path out of the page' ],
	[ 'GET', '/index.html', 'a file name not served' ],
	[ 'GET', '/api/kpi_totals?limit=1', 'a query string on the API' ],
	[ 'GET', '/?sql=SELECT%201', 'an unknown argument of the page' ],
	[ 'GET', '/?refresh=' . ('9' x 200), 'a query string that is too long' ],
	[ 'GET', '/?' . join('&', map { "refresh=$_" } 1 .. 10), 'too many arguments' ],
	[ 'GET', '/' . ('a' x 20_000), 'a path that is too long' ],
	[ 'GET', '/?refresh=' . ('1' x 30_000), 'a huge query string' ],
	[ 'POST', '/api/kpi_totals', 'POST' ],
	[ 'PUT', '/', 'PUT' ],
	[ 'DELETE', '/api/kpi_totals', 'DELETE' ],
	[ 'HEAD', '/', 'HEAD' ],
	[ 'OPTIONS', '/', 'OPTIONS' ])
{
	my ($method, $path, $what) = @$case;
	my ($status, $body) = status_of($method, $path,
		$method eq 'POST' ? (content => 'q=SELECT 1') : ());
	ok($status >= 400 && $status < 500 && $body !~ /revenue|rows|\{/,
		"$what: $method gets a 4xx ($status) and no data");
}
{
	my ($status, $body) = status_of('GET', '/',
		headers => { 'X-Large' => 'x' x 40_000 });
	ok($status >= 400 && $status < 500, "a huge header gets a 4xx ($status)");
	($status, $body) = status_of('GET', '/',
		headers => { map { ("X-Header-$_" => 'y' x 200) } 1 .. 200 });
	ok($status >= 400 && $status < 500, "too many headers get a 4xx ($status)");
}
# a page of another site, through a name of its own that resolves to
# loopback (DNS rebinding), is refused; loopback names are served
# (HTTP::Tiny will not send a Host of our choosing: a request by hand)
sub status_with_host
{
	my ($host) = @_;
	my ($addr, $port) = $base =~ m{^http://([^/:]+):(\d+)} or die "base URL $base";
	my $sock = IO::Socket::INET->new(PeerAddr => $addr, PeerPort => $port, Timeout => 30)
	  or die "connect to $addr:$port: $!";
	print $sock "GET /api/kpi_totals HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n\r\n";
	local $/;
	my $answer = <$sock> // '';
	close $sock;
	my ($status) = $answer =~ m{^HTTP/1\.[01] (\d{3})};
	return ($status // 0, $answer =~ s/^.*?\r\n\r\n//sr);
}
for my $host ('evil.example', 'evil.example:80', '127.0.0.1.evil.example', '[::1].evil', 'localhost.evil.example')
{
	my ($status, $body) = status_with_host($host);
	ok($status == 403 && $body !~ /revenue|rows|\{/, "Host: $host gets 403 ($status) and no data");
}
for my $host ('localhost', 'LOCALHOST:8080', '127.0.0.1', '127.1.2.3:99', '[::1]:8080')
{
	my ($status) = status_with_host($host);
	is($status, 200, "Host: $host is served");
}
# and after all of that, it still serves
my $res = $http->get("$base/api/kpi_totals");
is($res->{status}, 200, 'the program still serves after the bad requests');
like($res->{headers}{'content-security-policy'} // '', qr/default-src 'self'/,
	'answers carry a Content-Security-Policy that keeps the page to its own files');

# ---------------------------------------------------------------- the end

eval { wd('DELETE', "/session/$session") };
for my $h (@started)
{
	$h->signal('TERM') if $h->pumpable;
	$h->finish;
}
like(${ $dash->{sk_err} }, qr/reconnected to the database/,
	'the program said it reconnected');
$node->stop;
done_testing();
