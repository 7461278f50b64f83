-- The KPI views as a BI tool reads them (README, "KPI views for BI tools"),
-- checked in the catalog: one grain per view, declared precision (money
-- numeric(20,2), percentages numeric(7,2), counts bigint), date columns in
-- the model's time zone on every time series, the additivity of each
-- column said in its view's comment, and what the reader may open.  The
-- same through a real driver's metadata calls: t/016_bi_metadata.pl.
-- Growth percentages, unbounded, are numeric(20,2).  No broker; one
-- transaction.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS sales_kafka;

SELECT plan(17);

SELECT lives_ok($$SELECT sales_kafka.create_sales_model('bi_test', time_zone => 'Asia/Tokyo')$$,
                'a model in Tokyo');

CREATE TEMP VIEW bi_columns AS
SELECT c.relname::text AS view, a.attname::text AS column_name, format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'bi_test'::regnamespace AND c.relkind = 'v' AND c.relname LIKE 'kpi\_%';

-- one grain per view
SELECT hasnt_view('bi_test', 'kpi_product_sales', 'the cube kpi_product_sales (rows of four grains) is gone');
SELECT hasnt_view('bi_test', 'kpi_customer_sales', 'the cube kpi_customer_sales (rows of three grains) is gone');
SELECT set_eq($$SELECT DISTINCT view FROM bi_columns WHERE view ~ '^kpi_(product|customer)_sales_'$$,
              $$VALUES ('kpi_product_sales_hourly'), ('kpi_product_sales_daily'), ('kpi_product_sales_monthly'),
                       ('kpi_customer_sales_hourly'), ('kpi_customer_sales_daily'), ('kpi_customer_sales_monthly')$$,
              'sales per product and per customer group: one view per grain, hour, day and month');
SELECT is_empty($$SELECT view FROM bi_columns WHERE column_name = 'grain'$$,
                'no KPI view has a grain column');

-- declared precision
SELECT is_empty($$SELECT view || '.' || column_name FROM bi_columns WHERE type = 'numeric'$$,
                'no numeric column of a KPI view lacks its precision and scale');
SELECT is_empty($$SELECT view || '.' || column_name || ' ' || type FROM bi_columns
                   WHERE column_name IN ('revenue', 'profit', 'average_order_value') AND type <> 'numeric(20,2)'$$,
                'money is numeric(20,2), averages of money too');
SELECT is_empty($$SELECT view || '.' || column_name || ' ' || type FROM bi_columns
                   WHERE column_name LIKE '%\_pct'
                     AND type <> CASE WHEN column_name LIKE '%\_growth\_pct' THEN 'numeric(20,2)' ELSE 'numeric(7,2)' END$$,
                'percentages are numeric(7,2), growth (unbounded) numeric(20,2)');
SELECT is_empty($$SELECT view || '.' || column_name || ' ' || type FROM bi_columns
                   WHERE column_name IN ('sales_count', 'order_count', 'quantity', 'samples', 'rank')
                     AND type <> 'bigint'$$,
                'counts are bigint');

-- date columns
SELECT is_empty($$SELECT p.view FROM bi_columns p
                   WHERE p.column_name = 'period_start'
                     AND (SELECT array_agg(d.column_name || ' ' || d.type ORDER BY d.column_name) FROM bi_columns d
                           WHERE d.view = p.view AND d.column_name IN ('day', 'year', 'quarter', 'month'))
                         IS DISTINCT FROM '{"day date","month integer","quarter integer","year integer"}'$$,
                'every time series has day (a date), year, quarter and month (integers)');
SELECT set_eq($$SELECT view FROM bi_columns WHERE column_name = 'hour' AND type = 'integer'$$,
              $$VALUES ('kpi_sales_per_minute'), ('kpi_sales_per_hour'), ('kpi_product_sales_hourly'),
                       ('kpi_customer_sales_hourly'), ('kpi_metrics_10min'), ('kpi_metrics_20min')$$,
              'the time series whose grain is below a day have an hour, and only they');

-- 2023-12-31 23:59:59 in Tokyo is 14:59:59 UTC, 09:59:59 in New York
INSERT INTO bi_test.order_lines (order_id, sold_at, customer_id, product_id, quantity, unit_price) VALUES
    ('A', '2023-12-31 23:59:59+09', 'C1', 'P1', 1, 10.00),
    ('B', '2024-01-01 00:00:01+09', 'C1', 'P1', 1, 20.00);
SELECT is(sales_kafka.refresh_rollups('bi_test'), 2::bigint, 'two lines, two seconds apart, either side of midnight in Tokyo');
SET LOCAL TimeZone = 'America/New_York';
SELECT results_eq($$SELECT day, year, quarter, month, hour, revenue FROM bi_test.kpi_sales_per_hour ORDER BY period_start$$,
                  $$VALUES ('2023-12-31'::date, 2023, 4, 12, 23, 10.00), ('2024-01-01', 2024, 1, 1, 0, 20.00)$$,
                  'date columns are those of Tokyo, whatever the session''s time zone');
SELECT results_eq($$SELECT day, year, revenue FROM bi_test.kpi_customer_sales_monthly ORDER BY period_start$$,
                  $$VALUES ('2023-12-01'::date, 2023, 10.00), ('2024-01-01', 2024, 20.00)$$,
                  'a month of Tokyo per row of kpi_customer_sales_monthly');
RESET TimeZone;

-- comments
SELECT is_empty($$SELECT c.relname FROM pg_class c
                   WHERE c.relnamespace = 'bi_test'::regnamespace AND c.relkind = 'v'
                     AND c.relname NOT IN ('kpi_top_products', 'kpi_price_distribution', 'kpi_growth_yoy', 'kpi_as_of')
                     AND obj_description(c.oid, 'pg_class') NOT LIKE '%Adds up over rows: %'$$,
                'every view''s comment says which columns add up over rows');
SELECT is_empty($$SELECT c.relname || '.' || x.column_name
                    FROM pg_class c,
                         regexp_split_to_table(substring(obj_description(c.oid, 'pg_class') FROM 'Adds up over rows: ([^.(]*)'),
                                               ',\s*') AS x0,
                         LATERAL (SELECT trim(x0) AS column_name) x
                   WHERE c.relnamespace = 'bi_test'::regnamespace AND c.relkind = 'v'
                     AND x.column_name <> 'none'
                     AND NOT EXISTS (SELECT FROM pg_attribute a
                                      WHERE a.attrelid = c.oid AND a.attname = x.column_name AND NOT a.attisdropped)$$,
                'the columns a comment says add up are columns of its view');

-- what the reader opens
SELECT ok(has_table_privilege('sales_kafka_reader', 'bi_test.time_dim', 'SELECT'),
          'the reader may read time_dim, which the day column of the time series joins');

SELECT * FROM finish();
ROLLBACK;
