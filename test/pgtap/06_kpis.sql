-- The KPI layer: every KPI's value on fixture rows, computed by hand here
-- (see the comments), in a model whose time zone is not the server's; late
-- events; dimensions that change or arrive after their sales; a
-- partitioned model giving the same answers; the reader role; and the
-- mappings of each data shape, fed through the broker by pipelines.
--
-- The fixture part runs in one transaction, so "today" (now()) cannot
-- change under it.  The pipeline part commits, waits for the workers by
-- polling with a bounded timeout, and cleans up.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
DROP SCHEMA IF EXISTS kpi_test, kpi_part, kpi_own, kpi_events, kpi_store, kpi_shop, kpi_metrics CASCADE;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
DROP OWNED BY sales_kafka_reader;
DROP ROLE IF EXISTS kpi_owner;
RESET client_min_messages;
CREATE EXTENSION sales_kafka;

SELECT plan(115);

-------------------------------------------------------------------------------
-- The model
-------------------------------------------------------------------------------
BEGIN;

SELECT lives_ok($$SELECT sales_kafka.create_sales_model('kpi_test', time_zone => 'America/New_York')$$,
                'create_sales_model makes a model');
SELECT throws_ok($$SELECT sales_kafka.create_sales_model('kpi_test')$$, '42710',
                 'schema "kpi_test" already has a sales model', 'a schema has one model');
SELECT throws_ok($$SELECT sales_kafka.create_sales_model('kpi_bad', time_zone => 'Mars/Olympus')$$, '22023',
                 NULL, 'an unknown time zone is refused');
SELECT throws_ok($$SELECT sales_kafka.refresh_rollups('no_such_model')$$, '42704',
                 'schema "no_such_model" has no sales model', 'refreshing a schema without a model');
SELECT has_table('kpi_test', 'order_lines', 'order lines');
SELECT has_view('kpi_test', 'sales_facts', 'star schema: sales_facts');
SELECT has_view('kpi_test', 'time_dim', 'star schema: time_dim');
SELECT has_view('kpi_test', 'customers_dim', 'star schema: customers_dim');
SELECT has_view('kpi_test', 'products_dim', 'star schema: products_dim');
SELECT is((SELECT count(*) FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
            WHERE d.deptype = 'e' AND c.relnamespace = 'kpi_test'::regnamespace),
          0::bigint, 'no object of the model belongs to the extension');
SELECT is((SELECT string_agg(c.relname || coalesce('.' || a.attname, ''), ', ')
             FROM pg_class c
             LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                                     AND c.relkind <> 'S'
            WHERE c.relnamespace = 'kpi_test'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'S', 'p')
              AND (CASE WHEN a.attname IS NULL THEN obj_description(c.oid, 'pg_class')
                        ELSE col_description(c.oid, a.attnum) END) IS NULL),
          NULL, 'every object and column of the model has a comment');
SELECT is((SELECT count(*) FROM pg_class WHERE relnamespace = 'kpi_test'::regnamespace
             AND relkind = 'v' AND relname LIKE 'kpi\_%'), 28::bigint, 'the model has 28 KPI views');

-- order ids of lines that come without one: time-ordered UUIDs (version 7)
CREATE TEMP TABLE made_ids AS
SELECT n, sales_kafka.time_ordered_uuid()::text AS id, clock_timestamp() AS made_at
  FROM generate_series(1, 2000) n;
SELECT is((SELECT count(*) FROM made_ids
            WHERE id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'),
          2000::bigint, 'time_ordered_uuid() makes UUIDs of version 7, variant 10');
SELECT is((SELECT count(DISTINCT id) FROM made_ids), 2000::bigint, 'each one a new one');
-- the first 48 bits: milliseconds since 1970, as the clock read after it
SELECT is((SELECT count(*) FROM made_ids
            WHERE ('x' || lpad(replace(left(id, 13), '-', ''), 16, '0'))::bit(64)::bigint
                  BETWEEN floor(extract(epoch FROM made_at) * 1000) - 1000
                      AND floor(extract(epoch FROM made_at) * 1000)),
          2000::bigint, 'an id starts with the time it was made, in milliseconds');
SELECT is((SELECT count(*) FROM (SELECT left(id, 18) < lag(left(id, 18)) OVER (ORDER BY n) AS back
                                   FROM made_ids) b WHERE back),
          0::bigint, 'ids made later do not sort earlier (time and fraction of a millisecond)');
INSERT INTO kpi_test.order_lines (sold_at, product_id, unit_price) VALUES (now(), 'P0', 1);
SELECT matches((SELECT order_id FROM kpi_test.order_lines WHERE product_id = 'P0'),
               '^[0-9a-f]{8}-[0-9a-f]{4}-7', 'a line without an order id gets a time-ordered one');
DELETE FROM kpi_test.order_lines WHERE product_id = 'P0';

-------------------------------------------------------------------------------
-- Fixtures (time zone America/New_York)
-------------------------------------------------------------------------------
INSERT INTO kpi_test.products VALUES
    ('P1', 'Chair', 'Furniture', 'Chairs'),
    ('P2', 'Pen', 'Office Supplies', 'Art'),
    ('P3', 'Phone', 'Technology', 'Phones');
INSERT INTO kpi_test.customers VALUES
    ('C1', 'Ann', 'Consumer', 'United States', 'New York City', 'New York', '10001', 'East'),
    ('C2', 'Bob', 'Corporate', 'United States', 'Houston', 'Texas', '77001', 'Central'),
    ('C3', 'Cat', 'Home Office', 'United States', 'Seattle', 'Washington', '98101', 'West');

-- revenue = quantity * unit_price * (1 - discount), or stated_revenue:
--  O10/1 200.00  O10/2 12.00 (10 * 1.50 * 0.8)  O11/1 585.00 (650 * 0.9)
--  O12/1 90.00 (stated)  O20/1 600.00  O20/2 12.00  O21/1 150.00
-- 2019-03-15 23:30 in New York is 2019-03-16 03:30 UTC: the day is the 15th.
CREATE TEMP TABLE fixture_lines AS
SELECT * FROM (VALUES
    ('O10', 1, timestamptz '2019-03-15 23:30:00-04', 'C1', 'P1', 2, 100.00, 0.0, NULL::numeric, 40.00),
    ('O10', 2, timestamptz '2019-03-15 23:30:00-04', 'C1', 'P2', 10, 1.50, 0.2, NULL, 3.00),
    ('O11', 1, timestamptz '2020-03-02 10:00:00-05', 'C2', 'P3', 1, 650.00, 0.1, NULL, 100.00),
    ('O12', 1, timestamptz '2020-03-20 12:00:00-04', 'C3', 'P1', 1, NULL, 0.1, 90.00, -10.00),
    ('O20', 1, date_trunc('day', now(), 'America/New_York') + interval '9 hours', 'C3', 'P3', 2, 300.00, 0, NULL, 80.00),
    ('O20', 2, date_trunc('day', now(), 'America/New_York') + interval '9 hours', 'C3', 'P2', 3, 4.00, 0, NULL, 2.00),
    ('O21', 1, date_trunc('day', now(), 'America/New_York') + interval '10 hours', 'C1', 'P1', 1, 150.00, 0, NULL, 20.00)
) AS f(order_id, line, sold_at, customer_id, product_id, quantity, unit_price, discount, stated_revenue, profit);
INSERT INTO kpi_test.order_lines (order_id, line, sold_at, customer_id, product_id, quantity,
                                  unit_price, discount, stated_revenue, profit)
SELECT * FROM fixture_lines;

-- (from a session in a zone half an hour off the model's)
SET TimeZone = 'Asia/Kolkata';
SELECT is(sales_kafka.refresh_kpis('kpi_test'), 7::bigint, 'refresh_kpis rolls up the 7 new lines');
SELECT is(current_setting('TimeZone'), 'Asia/Kolkata',
          'the session''s time zone is its own after a refresh');
SELECT is((SELECT count(*) FROM kpi_test.rollup_total
            WHERE grain IN ('minute', 'hour') AND date_trunc(grain, bucket, 'America/New_York') <> bucket),
          0::bigint, 'the refresh cut minutes and hours in the model''s time zone');
RESET TimeZone;
SELECT is(sales_kafka.refresh_rollups('kpi_test'), 0::bigint, 'a second refresh finds nothing new');

-- revenue 200 + 12 + 585 + 90 + 600 + 12 + 150 = 1649; profit 40 + 3 + 100 - 10 + 80 + 2 + 20 = 235;
-- orders O10 O11 O12 O20 O21; quantity 2 + 10 + 1 + 1 + 2 + 3 + 1 = 20; 1649 / 5 = 329.80
SELECT results_eq($$SELECT revenue, profit, sales_count, order_count, quantity, average_order_value FROM kpi_test.kpi_totals$$,
                  $$VALUES (1649.00, 235.00, 7::bigint, 5::bigint, 20::bigint, 329.80)$$, 'kpi_totals');
-- today: O20 (600 + 12) and O21 (150)
SELECT results_eq($$SELECT day, revenue, profit, sales_count, order_count, quantity, average_order_value FROM kpi_test.kpi_today$$,
                  $$VALUES ((now() AT TIME ZONE 'America/New_York')::date, 762.00, 102.00, 3::bigint, 2::bigint, 6::bigint, 381.00)$$,
                  'kpi_today, in the model''s time zone');
SELECT results_eq($$SELECT period_start, revenue, sales_count, order_count, quantity FROM kpi_test.kpi_sales_per_day
                    WHERE period_start < '2021-01-01'$$,
                  $$VALUES (timestamptz '2019-03-15 00:00-04', 212.00, 2::bigint, 1::bigint, 12::bigint),
                           ('2020-03-02 00:00-05', 585.00, 1, 1, 1),
                           ('2020-03-20 00:00-04', 90.00, 1, 1, 1)$$,
                  'kpi_sales_per_day: days cut in New York, ordered');
SELECT results_eq($$SELECT period_start, revenue FROM kpi_test.kpi_sales_per_hour WHERE period_start < '2021-01-01'$$,
                  $$VALUES (timestamptz '2019-03-15 23:00-04', 212.00), ('2020-03-02 10:00-05', 585.00), ('2020-03-20 12:00-04', 90.00)$$,
                  'kpi_sales_per_hour');
SELECT results_eq($$SELECT period_start, revenue, average_order_value FROM kpi_test.kpi_sales_per_minute
                    WHERE period_start >= date_trunc('day', now(), 'America/New_York')$$,
                  $$VALUES (date_trunc('day', now(), 'America/New_York') + interval '9 hours', 612.00, 612.00),
                           (date_trunc('day', now(), 'America/New_York') + interval '10 hours', 150.00, 150.00)$$,
                  'kpi_sales_per_minute');
SELECT results_eq($$SELECT period_start, revenue, order_count FROM kpi_test.kpi_sales_per_month WHERE period_start < '2021-01-01'$$,
                  $$VALUES (timestamptz '2019-03-01 00:00-05', 212.00, 1::bigint), ('2020-03-01 00:00-05', 675.00, 2)$$,
                  'kpi_sales_per_month');
-- Furniture P1: 200 + 90 + 150 = 440; Office Supplies P2: 12 + 12 = 24; Technology P3: 585 + 600 = 1185
SELECT results_eq($$SELECT category, revenue, profit, sales_count, quantity, revenue_share_pct FROM kpi_test.kpi_sales_by_category$$,
                  $$VALUES ('Technology', 1185.00, 180.00, 2::bigint, 3::bigint, 71.86),
                           ('Furniture', 440.00, 50.00, 3, 4, 26.68),
                           ('Office Supplies', 24.00, 5.00, 2, 13, 1.46)$$,
                  'kpi_sales_by_category, by revenue');
SELECT results_eq($$SELECT category, sub_category, revenue FROM kpi_test.kpi_sales_by_sub_category$$,
                  $$VALUES ('Technology', 'Phones', 1185.00), ('Furniture', 'Chairs', 440.00), ('Office Supplies', 'Art', 24.00)$$,
                  'kpi_sales_by_sub_category');
-- C1 (East): 200 + 12 + 150 = 362, orders O10 O21; C2 (Central): 585, O11; C3 (West): 90 + 600 + 12 = 702, O12 O20
SELECT results_eq($$SELECT region, revenue, order_count, revenue_share_pct FROM kpi_test.kpi_sales_by_region$$,
                  $$VALUES ('West', 702.00, 2::bigint, 42.57), ('Central', 585.00, 1, 35.48), ('East', 362.00, 2, 21.95)$$,
                  'kpi_sales_by_region');
SELECT results_eq($$SELECT segment, revenue FROM kpi_test.kpi_sales_by_segment$$,
                  $$VALUES ('Home Office', 702.00), ('Corporate', 585.00), ('Consumer', 362.00)$$,
                  'kpi_sales_by_segment');
SELECT results_eq($$SELECT country, state, revenue FROM kpi_test.kpi_sales_by_state$$,
                  $$VALUES ('United States', 'Washington', 702.00), ('United States', 'Texas', 585.00),
                           ('United States', 'New York', 362.00)$$,
                  'kpi_sales_by_state');
SELECT results_eq($$SELECT city, revenue, sales_count FROM kpi_test.kpi_sales_by_city$$,
                  $$VALUES ('Seattle', 702.00, 3::bigint), ('Houston', 585.00, 1), ('New York City', 362.00, 3)$$,
                  'kpi_sales_by_city');
SELECT results_eq($$SELECT rank, product_id, product_name, category, revenue, quantity FROM kpi_test.kpi_today_top_products$$,
                  $$VALUES (1::bigint, 'P3', 'Phone', 'Technology', 600.00, 2::bigint),
                           (2, 'P1', 'Chair', 'Furniture', 150.00, 1),
                           (3, 'P2', 'Pen', 'Office Supplies', 12.00, 3)$$,
                  'kpi_today_top_products');
-- 600 / 762 = 78.74 %, 150 / 762 = 19.69 %, 12 / 762 = 1.57 %
SELECT results_eq($$SELECT category, revenue, revenue_share_pct FROM kpi_test.kpi_today_by_category$$,
                  $$VALUES ('Technology', 600.00, 78.74), ('Furniture', 150.00, 19.69), ('Office Supplies', 12.00, 1.57)$$,
                  'kpi_today_by_category');
SELECT results_eq($$SELECT product_id, revenue, quantity, revenue_rank, quantity_rank FROM kpi_test.kpi_top_products$$,
                  $$VALUES ('P3', 1185.00, 3::bigint, 1::bigint, 3::bigint), ('P1', 440.00, 4, 2, 2), ('P2', 24.00, 13, 3, 1)$$,
                  'kpi_top_products: ranks by revenue and by quantity');
-- price paid per unit: 100, 1.20, 585, 90, 300, 4, 150
SELECT results_eq($$SELECT price_from, sales_count, quantity, revenue FROM kpi_test.kpi_price_distribution WHERE sales_count > 0$$,
                  $$VALUES (0::numeric, 2::bigint, 13::bigint, 24.00), (50, 1, 1, 90.00), (100, 2, 3, 350.00),
                           (200, 1, 2, 600.00), (500, 1, 1, 585.00)$$,
                  'kpi_price_distribution');
SELECT is((SELECT count(*) FROM kpi_test.kpi_price_distribution), 9::bigint, 'every price band is listed, also empty ones');
-- March 2020: 675 over March 2019: 212, (675 - 212) / 212 = 218.40 %; orders 2 over 1
SELECT results_eq($$SELECT month, revenue, revenue_year_before, revenue_growth_pct, order_count, order_count_year_before, order_growth_pct
                      FROM kpi_test.kpi_growth_yoy WHERE month < '2021-01-01'$$,
                  $$VALUES ('2019-03-01'::date, 212.00, NULL::numeric, NULL::numeric, 1::bigint, NULL::bigint, NULL::numeric),
                           ('2020-03-01', 675.00, 212.00, 218.40, 2, 1, 100.00)$$,
                  'kpi_growth_yoy');
SELECT results_eq($$SELECT rolled_up_rows, rows_waiting, time_zone, covered_offsets FROM kpi_test.kpi_as_of$$,
                  $$VALUES (7::bigint, 0::bigint, 'America/New_York', '[]'::jsonb)$$, 'kpi_as_of');
SELECT ok((SELECT rolled_up_at IS NOT NULL AND views_refreshed_at IS NOT NULL FROM kpi_test.kpi_as_of),
          'kpi_as_of: when the rollups and the views were refreshed');
SELECT results_eq($$SELECT (SELECT sum(revenue) FROM kpi_test.kpi_product_sales_hourly),
                           (SELECT sum(revenue) FROM kpi_test.kpi_product_sales_daily),
                           (SELECT sum(revenue) FROM kpi_test.kpi_product_sales_monthly)$$,
                  $$VALUES (1649.00, 1649.00, 1649.00)$$,
                  'kpi_product_sales_hourly, _daily and _monthly: each adds up to the total');
SELECT results_eq($$SELECT (SELECT sum(revenue) FROM kpi_test.kpi_customer_sales_hourly),
                           (SELECT sum(revenue) FROM kpi_test.kpi_customer_sales_daily),
                           (SELECT sum(revenue) FROM kpi_test.kpi_customer_sales_monthly)$$,
                  $$VALUES (1649.00, 1649.00, 1649.00)$$,
                  'kpi_customer_sales_hourly, _daily and _monthly: each adds up to the total');
SELECT results_eq($$SELECT segment, region, state, city, revenue FROM kpi_test.kpi_customer_sales_monthly
                    WHERE period_start = '2020-03-01 00:00-05' ORDER BY segment$$,
                  $$VALUES ('Corporate', 'Central', 'Texas', 'Houston', 585.00), ('Home Office', 'West', 'Washington', 'Seattle', 90.00)$$,
                  'kpi_customer_sales_monthly');
-- O10 at 2019-03-15 23:30 in New York: day, month and hour of New York, not of UTC
SELECT results_eq($$SELECT day, year, quarter, month, hour, product_id, revenue FROM kpi_test.kpi_product_sales_hourly
                    WHERE period_start = '2019-03-15 23:00-04' ORDER BY product_id$$,
                  $$VALUES ('2019-03-15'::date, 2019, 1, 3, 23, 'P1', 200.00), ('2019-03-15', 2019, 1, 3, 23, 'P2', 12.00)$$,
                  'kpi_product_sales_hourly: date columns in the model''s time zone');
SELECT results_eq($$SELECT date_key, customer_id, product_id, revenue FROM kpi_test.sales_facts WHERE order_id = 'O10' ORDER BY line$$,
                  $$VALUES ('2019-03-15'::date, 'C1', 'P1', 200.00), ('2019-03-15', 'C1', 'P2', 12.00)$$,
                  'sales_facts: date_key in the model''s time zone');
SELECT results_eq($$SELECT year, quarter, month, month_name, day_name, weekend FROM kpi_test.time_dim WHERE date_key = '2019-03-16'$$,
                  $$VALUES (2019, 1, 3, 'March', 'Saturday', true)$$, 'time_dim');

-- late events: one more order for 2019-03-15 and one more line for O10
INSERT INTO kpi_test.order_lines (order_id, line, sold_at, customer_id, product_id, quantity, unit_price, profit) VALUES
    ('O13', 1, '2019-03-15 12:00-04', 'C2', 'P2', 5, 2.00, 1.00),
    ('O10', 3, '2019-03-15 23:45-04', 'C1', 'P3', 1, 50.00, 5.00);
SELECT is((SELECT rows_waiting FROM kpi_test.kpi_as_of), 2::bigint, 'kpi_as_of: 2 lines wait for the rollups');
SELECT is(sales_kafka.refresh_rollups('kpi_test'), 2::bigint, 'the late lines are rolled up');
-- 2019-03-15: 212 + 10 + 50 = 272; orders O10 and O13 (O10's third line is no new order)
SELECT results_eq($$SELECT revenue, sales_count, order_count, quantity FROM kpi_test.kpi_sales_per_day WHERE period_start = '2019-03-15 00:00-04'$$,
                  $$VALUES (272.00, 4::bigint, 2::bigint, 18::bigint)$$, 'late events land in their day');
SELECT results_eq($$SELECT revenue, order_count FROM kpi_test.kpi_totals$$,
                  $$VALUES (1709.00, 6::bigint)$$, 'and in the totals');

-- dimensions: a product changes category, a product arrives after its sales
UPDATE kpi_test.products SET category = 'Office Supplies' WHERE product_id = 'P1';
INSERT INTO kpi_test.order_lines (order_id, line, sold_at, customer_id, product_id, quantity, unit_price)
VALUES ('O14', 1, '2020-03-21 12:00-04', 'C9', 'P9', 1, 7.00);
SELECT is(sales_kafka.refresh_kpis('kpi_test'), 1::bigint, 'one more line');
SELECT results_eq($$SELECT category, revenue FROM kpi_test.kpi_sales_by_category$$,
                  $$VALUES ('Technology', 1235.00), ('Office Supplies', 474.00), (NULL, 7.00)$$,
                  'a changed category counts where it is now; an unknown product counts without one');
SELECT results_eq($$SELECT region, revenue FROM kpi_test.kpi_sales_by_region WHERE region IS NULL$$,
                  $$VALUES (NULL::text, 7.00)$$, 'an unknown customer counts without a region');
SELECT results_eq($$SELECT product_id, product_name, category FROM kpi_test.products_dim WHERE product_id = 'P9'$$,
                  $$VALUES ('P9', NULL::text, NULL::text)$$, 'products_dim lists a product sold but not known yet');
INSERT INTO kpi_test.products VALUES ('P9', 'Stapler', 'Office Supplies', 'Fasteners');
SELECT results_eq($$SELECT category, revenue FROM kpi_test.kpi_sales_by_category$$,
                  $$VALUES ('Technology', 1235.00), ('Office Supplies', 481.00)$$,
                  'when the product arrives, its sales get its category, without a refresh');

-- metrics: ACME every minute from 10:00 to 10:19 UTC, price 100 + minute, trend = minute
-- (records 0 to 19), summarised by refresh_rollups
INSERT INTO kpi_test.metrics (series, record_id, measured_at, stock_price, sales_trend)
SELECT 'ACME', m::text, timestamptz '2020-01-01 10:00+00' + m * interval '1 minute', 100 + m, m
  FROM generate_series(0, 19) m;
SELECT lives_ok($$SELECT sales_kafka.refresh_rollups('kpi_test')$$, 'refresh_rollups summarises the metric records');
SELECT results_eq($$SELECT period_start, period_end, samples, stock_price_open, stock_price_close, stock_price_low,
                           stock_price_high, stock_price_average, sales_trend_average FROM kpi_test.kpi_metrics_10min$$,
                  $$VALUES (timestamptz '2020-01-01 10:00+00', timestamptz '2020-01-01 10:10+00', 10::bigint, 100::numeric, 109::numeric, 100::numeric, 109::numeric, 104.5000, 4.5),
                           ('2020-01-01 10:10+00', '2020-01-01 10:20+00', 10, 110, 119, 110, 119, 114.5000, 14.5)$$,
                  'kpi_metrics_10min');
SELECT results_eq($$SELECT period_start, samples, stock_price_open, stock_price_close, stock_price_average FROM kpi_test.kpi_metrics_20min$$,
                  $$VALUES (timestamptz '2020-01-01 10:00+00', 20::bigint, 100::numeric, 119::numeric, 109.5000)$$,
                  'kpi_metrics_20min');

-- rebuild gives what the increments gave
CREATE TEMP TABLE before_rebuild AS SELECT * FROM kpi_test.rollup_product;
SELECT is(sales_kafka.rebuild_rollups('kpi_test'), 10::bigint, 'rebuild_rollups reads every line again');
SELECT is_empty($$(SELECT * FROM before_rebuild EXCEPT SELECT * FROM kpi_test.rollup_product)
                  UNION ALL (SELECT * FROM kpi_test.rollup_product EXCEPT SELECT * FROM before_rebuild)$$,
                'and gets the rollups the increments built');

-- the same fixtures in a partitioned model give the same KPIs
SELECT lives_ok($$SELECT sales_kafka.create_sales_model('kpi_part', partitioned => true, time_zone => 'America/New_York')$$,
                'a partitioned model');
SELECT is((SELECT relkind FROM pg_class WHERE oid = 'kpi_part.order_lines'::regclass), 'p'::"char",
          'its order lines are partitioned by time');
SELECT is(sales_kafka.create_sales_partitions('kpi_part', '2019-01-01', '2020-12-31'), 24,
          'create_sales_partitions adds monthly partitions');
INSERT INTO kpi_part.products SELECT * FROM kpi_test.products;
INSERT INTO kpi_part.customers SELECT * FROM kpi_test.customers;
INSERT INTO kpi_part.order_lines (order_id, line, sold_at, customer_id, product_id, quantity,
                                  unit_price, discount, stated_revenue, profit)
SELECT order_id, line, sold_at, customer_id, product_id, quantity, unit_price, discount, stated_revenue, profit
  FROM kpi_test.order_lines ORDER BY ingest_id;
SELECT is((SELECT count(*) FROM kpi_part.order_lines_2019_03), 4::bigint, 'March 2019 has its partition');
SELECT is(sales_kafka.refresh_kpis('kpi_part'), 10::bigint, 'its rollups');
SELECT results_eq('SELECT * FROM kpi_part.kpi_totals', 'SELECT * FROM kpi_test.kpi_totals', 'partitioned: kpi_totals');
SELECT results_eq('SELECT * FROM kpi_part.kpi_sales_per_day', 'SELECT * FROM kpi_test.kpi_sales_per_day', 'partitioned: kpi_sales_per_day');
SELECT results_eq('SELECT * FROM kpi_part.kpi_sales_by_city', 'SELECT * FROM kpi_test.kpi_sales_by_city', 'partitioned: kpi_sales_by_city');
SELECT results_eq('SELECT * FROM kpi_part.kpi_price_distribution', 'SELECT * FROM kpi_test.kpi_price_distribution',
                  'partitioned: kpi_price_distribution');
SELECT lives_ok($$ALTER TABLE kpi_part.order_lines DETACH PARTITION kpi_part.order_lines_2019_03$$,
                'old data is detached cheaply');
SELECT results_eq($$SELECT revenue FROM kpi_part.kpi_totals$$, $$VALUES (1716.00)$$,
                  'the rollups keep what was detached');
SELECT throws_ok($$SELECT sales_kafka.create_sales_partitions('kpi_test', '2020-01-01', '2020-02-01')$$, '42809',
                 'the order lines of sales model "kpi_test" are not partitioned', 'partitions need a partitioned model');

-- the reader role sees exactly the KPI views
SELECT set_eq($$SELECT c.relname::text FROM pg_class c
                 WHERE c.relnamespace = 'kpi_test'::regnamespace
                   AND has_table_privilege('sales_kafka_reader', c.oid, 'SELECT')$$,
              $$SELECT c.relname::text FROM pg_class c
                 WHERE c.relnamespace = 'kpi_test'::regnamespace AND c.relkind = 'v' AND c.relname LIKE 'kpi\_%'
                UNION ALL SELECT 'time_dim' UNION ALL SELECT 'kpi_state'$$,
              'sales_kafka_reader may read the KPI views, time_dim and kpi_state, and nothing else of the model');
SELECT is_empty($$SELECT c.relname FROM pg_class c
                   WHERE c.relnamespace = 'kpi_test'::regnamespace
                     AND has_table_privilege('sales_kafka_reader', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')$$,
                'and write nothing');
SET ROLE sales_kafka_reader;
SELECT results_eq($$SELECT revenue FROM kpi_test.kpi_totals$$, $$VALUES (1716.00)$$, 'the reader reads a KPI');
SELECT throws_ok($$SELECT * FROM kpi_test.order_lines$$, '42501', NULL, 'the reader cannot read the order lines');
SELECT throws_ok($$SELECT * FROM kpi_test.rollup_total$$, '42501', NULL, 'nor the rollups');
SELECT is_empty($$SELECT relname FROM pg_class WHERE relnamespace = 'kpi_test'::regnamespace AND relkind = 'm'$$,
                'no materialized view behind the KPIs: they read the rollups');
SELECT throws_ok($$SELECT sales_kafka.refresh_rollups('kpi_test')$$, '42501', NULL, 'nor refresh them');
RESET ROLE;
ROLLBACK;

-------------------------------------------------------------------------------
-- A model owned by an ordinary role outlives DROP EXTENSION
-------------------------------------------------------------------------------
CREATE ROLE kpi_owner;
GRANT CREATE ON DATABASE sk_test TO kpi_owner;
SET ROLE kpi_owner;
SELECT sales_kafka.create_sales_model('kpi_own');
INSERT INTO kpi_own.order_lines (sold_at, product_id, quantity, unit_price) VALUES (now(), 'X', 3, 2.50);
SELECT is(sales_kafka.refresh_kpis('kpi_own'), 1::bigint, 'an ordinary role makes and refreshes a model');
RESET ROLE;
SELECT is((SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'kpi_own'::regnamespace
             AND c.relowner <> 'kpi_owner'::regrole), 0::bigint, 'the caller owns every object of its model');
SELECT throws_ok($$SELECT sales_kafka.schedule_kpi_refresh('kpi_own')$$, '55000',
                 'pg_cron is not installed in database "sk_test"', 'scheduling needs pg_cron''s database');
-- cron.database_name is for superusers and pg_read_all_settings only: the
-- owner is told the same, without the name
SET ROLE kpi_owner;
SELECT throws_ok($$SELECT sales_kafka.schedule_kpi_refresh('kpi_own')$$, '55000',
                 'pg_cron is not installed in database "sk_test"',
                 'an ordinary role is told that scheduling needs pg_cron''s database');
RESET ROLE;
SELECT throws_ok($$DROP EXTENSION sales_kafka$$, '2BP01', NULL,
                 'DROP EXTENSION refuses while models use its views');
CREATE TEMP TABLE own_lines AS SELECT * FROM kpi_own.order_lines;
SET client_min_messages = warning;
DROP EXTENSION sales_kafka CASCADE;
RESET client_min_messages;
SELECT results_eq($$SELECT order_id, revenue FROM kpi_own.order_lines$$, $$SELECT order_id, revenue FROM own_lines$$,
                  'DROP EXTENSION ... CASCADE keeps the sales data');
SELECT has_table('kpi_own', 'rollup_total', 'and the rollups');
CREATE EXTENSION sales_kafka;
SELECT sales_kafka.upgrade_sales_model('kpi_own');
SELECT is((SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
             JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
            WHERE d.adrelid = 'kpi_own.order_lines'::regclass AND a.attname = 'order_id'),
          '(sales_kafka.time_ordered_uuid())::text',
          'upgrade_sales_model gives back the order id default that DROP EXTENSION ... CASCADE dropped');
SET client_min_messages = warning;
DROP SCHEMA kpi_own CASCADE;
RESET client_min_messages;
REVOKE CREATE ON DATABASE sk_test FROM kpi_owner;
DROP ROLE kpi_owner;

-------------------------------------------------------------------------------
-- The data shapes, through the broker
-------------------------------------------------------------------------------
\ir helpers.psql
CREATE SERVER kpi_kafka FOREIGN DATA WRAPPER sales_kafka;
SELECT sales_kafka.create_sales_model(m, time_zone => 'UTC')
  FROM unnest('{kpi_events,kpi_store,kpi_shop,kpi_metrics}'::name[]) m;

SELECT throws_ok($$SELECT sales_kafka.create_sales_pipelines('kpi_events', 'parquet', 'kpi_kafka', 'x')$$, '22023',
                 'unknown sales data shape "parquet"', 'an unknown data shape');
SELECT set_eq($$SELECT sales_kafka.create_sales_pipelines('kpi_events', 'sale_events', 'kpi_kafka',
                                                          current_setting('sk_test.topic_prefix') || 'kpi_events')$$,
              $$VALUES ('kpi_events_order_lines')$$, 'sale_events: one pipeline into the order lines');
SELECT set_eq($$SELECT sales_kafka.create_sales_pipelines('kpi_store', 'superstore', 'kpi_kafka',
                                                          current_setting('sk_test.topic_prefix') || 'kpi_superstore')$$,
              $$VALUES ('kpi_store_customers'), ('kpi_store_products'), ('kpi_store_orders'), ('kpi_store_order_lines')$$,
              'superstore: one topic into customers, products, orders and order lines');
SELECT set_eq($$SELECT sales_kafka.create_sales_pipelines('kpi_shop', 'shop', 'kpi_kafka',
                                                          current_setting('sk_test.topic_prefix') || 'kpi_shop_')$$,
              $$VALUES ('kpi_shop_customers'), ('kpi_shop_products'), ('kpi_shop_orders'), ('kpi_shop_order_lines')$$,
              'shop: four topics');
SELECT set_eq($$SELECT sales_kafka.create_sales_pipelines('kpi_metrics', 'metrics', 'kpi_kafka',
                                                          current_setting('sk_test.topic_prefix') || 'kpi_metrics')$$,
              $$VALUES ('kpi_metrics_metrics')$$, 'metrics: one pipeline');

-- simple sale events: product_name, quantity, price, timestamp (epoch ms or ISO)
INSERT INTO kpi_events.src_sale_events (product_id, quantity, unit_price, sold_at) VALUES
    ('Coffee', 2, 3.50, '2024-05-01 08:00+00'), ('Tea', 1, 2.00, '2024-05-01 08:01+00'),
    ('Coffee', 1, 3.50, '2024-05-01 09:30+00');
SELECT ok(wait_for($$SELECT count(*) = 3 FROM kpi_events.order_lines$$), 'sale events are ingested');
-- (the rollup worker may have rolled them up already: what counts is that
-- they are, once)
\o /dev/null
SELECT sales_kafka.refresh_kpis('kpi_events');
\o
SELECT is((SELECT rolled_up_rows FROM kpi_events.kpi_state), 3::bigint, 'and rolled up, by the rollup worker or refresh_kpis');
-- Coffee 7.00 + 3.50, Tea 2.00; every event is an order
SELECT results_eq($$SELECT revenue, sales_count, order_count FROM kpi_events.kpi_totals$$,
                  $$VALUES (12.50, 3::bigint, 3::bigint)$$, 'sale events: totals, one order each');
SELECT results_eq($$SELECT product_id, product_name, revenue FROM kpi_events.kpi_top_products$$,
                  $$VALUES ('Coffee', 'Coffee', 10.50), ('Tea', 'Tea', 2.00)$$, 'sale events: products by name');
SELECT results_eq($$SELECT pipeline, "partition", covered_offset, committed_offset FROM kpi_events.kpi_as_of_partitions$$,
                  $$SELECT pipeline, "partition", committed_offset, committed_offset FROM sales_kafka.pipeline_partitions
                     WHERE pipeline = 'kpi_events_order_lines' ORDER BY "partition"$$,
                  'kpi_as_of_partitions: the Kafka offsets the KPIs cover');
SELECT is((SELECT sum(covered_offset) FROM kpi_events.kpi_as_of_partitions), 3::numeric,
          'three messages covered');

-- Superstore order lines: one topic, normalised
INSERT INTO kpi_store.src_superstore (order_id, line, sold_at, ship_date, ship_mode, customer_id, customer_name,
        segment, country, city, state, postal_code, region, product_id, product_name, category, sub_category,
        stated_revenue, quantity, discount, profit, order_priority) VALUES
    ('CA-2016-152156', 1, '2016-11-08', '2016-11-11', 'Second Class', 'CG-12520', 'Claire Gute', 'Consumer',
     'United States', 'Henderson', 'Kentucky', '42420', 'South', 'FUR-BO-10001798', 'Bush Somerset Collection Bookcase',
     'Furniture', 'Bookcases', 261.96, 2, 0, 41.9136, 'Medium'),
    ('CA-2016-152156', 2, '2016-11-08', '2016-11-11', 'Second Class', 'CG-12520', 'Claire Gute', 'Consumer',
     'United States', 'Henderson', 'Kentucky', '42420', 'South', 'FUR-CH-10000454', 'Hon Deluxe Fabric Upholstered Stacking Chairs',
     'Furniture', 'Chairs', 731.94, 3, 0, 219.582, 'Medium'),
    ('CA-2016-138688', 3, '2016-06-12', '2016-06-16', 'Second Class', 'DV-13045', 'Darrin Van Huff', 'Corporate',
     'United States', 'Los Angeles', 'California', '90036', 'West', 'OFF-LA-10000240', 'Self-Adhesive Address Labels',
     'Office Supplies', 'Labels', 14.62, 2, 0, 6.8714, 'High');
SELECT ok(wait_for($$SELECT (SELECT count(*) FROM kpi_store.order_lines) = 3 AND (SELECT count(*) FROM kpi_store.orders) = 2
                        AND (SELECT count(*) FROM kpi_store.customers) = 2 AND (SELECT count(*) FROM kpi_store.products) = 3$$),
          'superstore: 3 lines, 2 orders, 2 customers, 3 products');
\o /dev/null
SELECT sales_kafka.refresh_kpis('kpi_store');
\o
SELECT is((SELECT rolled_up_rows FROM kpi_store.kpi_state), 3::bigint, 'superstore: 3 lines rolled up, by the rollup worker or refresh_kpis');
-- 261.96 + 731.94 + 14.62 = 1008.52; profit 41.91 + 219.58 + 6.87 = 268.36 (numeric(14,2) rounds each)
SELECT results_eq($$SELECT revenue, profit, sales_count, order_count FROM kpi_store.kpi_totals$$,
                  $$VALUES (1008.52, 268.36, 3::bigint, 2::bigint)$$, 'superstore: totals');
SELECT results_eq($$SELECT region, revenue FROM kpi_store.kpi_sales_by_region$$,
                  $$VALUES ('South', 993.90), ('West', 14.62)$$, 'superstore: by region');
SELECT results_eq($$SELECT customer_id, ship_mode, order_priority FROM kpi_store.orders ORDER BY order_id$$,
                  $$VALUES ('DV-13045', 'Second Class', 'High'), ('CG-12520', 'Second Class', 'Medium')$$,
                  'superstore: orders');

-- the four-topic shop: an order line before its product and its order
INSERT INTO kpi_shop.src_shop_order_items (order_id, line, product_id, quantity, unit_price, sold_at)
VALUES ('S1', 1, 'SKU-1', 2, 10.00, '2024-05-01 12:00+00'), ('S1', 2, 'SKU-2', 1, 5.00, '2024-05-01 12:00+00');
SELECT ok(wait_for($$SELECT count(*) = 2 FROM kpi_shop.order_lines$$), 'shop: the items come first');
\o /dev/null
SELECT sales_kafka.refresh_rollups('kpi_shop');
\o
SELECT is((SELECT rolled_up_rows FROM kpi_shop.kpi_state), 2::bigint, 'shop: 2 lines rolled up, by the rollup worker or refresh_rollups');
SELECT results_eq($$SELECT category, revenue FROM kpi_shop.kpi_sales_by_category$$,
                  $$VALUES (NULL::text, 25.00)$$, 'shop: lines count before their products are known');
INSERT INTO kpi_shop.src_shop_products (product_id, product_name, category, sub_category)
VALUES ('SKU-1', 'Mug', 'Kitchen', 'Mugs'), ('SKU-2', 'Spoon', 'Kitchen', 'Cutlery');
INSERT INTO kpi_shop.src_shop_customers (customer_id, customer_name, segment, region) VALUES ('K1', 'Kim', 'Consumer', 'North');
INSERT INTO kpi_shop.src_shop_orders (order_id, customer_id, sold_at, ship_mode) VALUES ('S1', 'K1', '2024-05-01 12:00+00', 'Standard');
SELECT ok(wait_for($$SELECT (SELECT count(*) FROM kpi_shop.products) = 2 AND (SELECT count(*) FROM kpi_shop.orders) = 1
                        AND (SELECT count(*) FROM kpi_shop.customers) = 1$$), 'shop: products, customers and orders arrive');
SELECT results_eq($$SELECT category, revenue FROM kpi_shop.kpi_sales_by_category$$,
                  $$VALUES ('Kitchen', 25.00)$$, 'shop: the lines get their category when the products arrive');
SELECT results_eq($$SELECT customer_id, ship_mode FROM kpi_shop.sales_facts ORDER BY line$$,
                  $$VALUES ('K1', 'Standard'), ('K1', 'Standard')$$, 'shop: sales_facts takes the customer from the order');
-- a tombstone (a message with a key and no value) deletes a product
SELECT format($$CREATE FOREIGN TABLE product_deletes (product_id text OPTIONS (kafka 'key'))
                SERVER kpi_kafka OPTIONS (topic %L)$$,
              current_setting('sk_test.topic_prefix') || 'kpi_shop_products') \gexec
INSERT INTO product_deletes VALUES ('SKU-2');
SELECT ok(wait_for($$SELECT count(*) = 1 FROM kpi_shop.products$$), 'shop: a tombstone deletes its product');

-- a minute-level metric stream, in 10 and 20 minute summaries
-- (records 1 to 30 of one series, named after the topic)
INSERT INTO kpi_metrics.src_metrics (record_id, measured_at, stock_price, sales_trend)
SELECT m + 1, timestamptz '2024-05-01 10:00+00' + m * interval '1 minute', 100 + m, m FROM generate_series(0, 29) m;
SELECT ok(wait_for($$SELECT count(*) = 30 FROM kpi_metrics.metrics$$), 'metrics are ingested');
SELECT is(sales_kafka.refresh_rollups('kpi_metrics'), 0::bigint, 'metrics: refresh_rollups summarises them (no order lines)');
SELECT results_eq($$SELECT series, period_start, samples, stock_price_open, stock_price_close FROM kpi_metrics.kpi_metrics_20min$$,
                  $$VALUES (topic('kpi_metrics'), timestamptz '2024-05-01 10:00+00', 20::bigint, 100.0000, 119.0000),
                           (topic('kpi_metrics'), '2024-05-01 10:20+00', 10, 120.0000, 129.0000)$$,
                  'metrics: 20-minute summaries');

SELECT is((SELECT count(*) FROM sales_kafka.dead_letter), 0::bigint, 'no message went to the dead letters');

SELECT * FROM finish();
SET client_min_messages = warning;
SELECT sales_kafka.drop_pipeline(name) FROM sales_kafka.pipeline;
DROP SCHEMA kpi_events, kpi_store, kpi_shop, kpi_metrics CASCADE;
DROP EXTENSION sales_kafka CASCADE;
