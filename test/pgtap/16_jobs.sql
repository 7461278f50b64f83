-- The pipelines people already run: the data shapes take producers' own
-- forms (the Superstore dataset's names and US dates, Python's timestamps),
-- and the daily export's contracts: its functions, who may call them, the
-- refusals, and the UTC schedules of midnight plus a grace period in the
-- model's zone.  One transaction, rolled back; no broker (the pipelines are
-- made stopped, messages go through sales_kafka.decode()).  The export's
-- files are checked by t/020.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
DROP SCHEMA IF EXISTS jobs_store, jobs_events CASCADE;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
DROP ROLE IF EXISTS regress_sales_kafka_jobs;
RESET client_min_messages;

BEGIN;
CREATE EXTENSION sales_kafka;
SELECT plan(26);
CREATE SERVER jobs_kafka FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers '127.0.0.1:9');
-- day before month: the dataset's 11/8/2016 must still be November 8th
SET LOCAL DateStyle = 'ISO, DMY';
SET LOCAL TimeZone = 'UTC';

-------------------------------------------------------------------------------
-- Shapes
-------------------------------------------------------------------------------
SELECT sales_kafka.create_sales_model('jobs_store', time_zone => 'America/New_York');
SELECT sales_kafka.create_sales_pipelines('jobs_store', 'superstore', 'jobs_kafka', 'jobs_superstore', false);
SELECT sales_kafka.create_sales_model('jobs_events', time_zone => 'Europe/Berlin');
SELECT sales_kafka.create_sales_pipelines('jobs_events', 'sale_events', 'jobs_kafka', 'jobs_events', false);

-- a row of the dataset as csv.DictReader gives it, sent as JSON
CREATE TEMP TABLE dict_row AS
SELECT * FROM sales_kafka.decode(NULL::jobs_store.src_superstore,
  '{"Row ID": "1", "Order ID": "CA-2016-152156", "Order Date": "11/8/2016", "Ship Date": "11/11/2016",
    "Ship Mode": "Second Class", "Customer ID": "CG-12520", "Customer Name": "Claire Gute", "Segment": "Consumer",
    "Country": "United States", "City": "Henderson", "State": "Kentucky", "Postal Code": "42420", "Region": "South",
    "Product ID": "FUR-BO-10001798", "Category": "Furniture", "Sub-Category": "Bookcases",
    "Product Name": "Bush Somerset Collection Bookcase", "Sales": "261.96", "Quantity": "2", "Discount": "0",
    "Profit": "41.9136"}');
SELECT results_eq($$SELECT order_id, line, sold_at, ship_date, ship_mode, customer_id, customer_name, segment
                     FROM dict_row$$,
                  $$VALUES ('CA-2016-152156', 1, timestamptz '2016-11-08 00:00 America/New_York', date '2016-11-11',
                            'Second Class', 'CG-12520', 'Claire Gute', 'Consumer')$$,
                  'superstore: the dataset''s names and US dates, midnight in the model''s zone, under DateStyle DMY');
SELECT results_eq($$SELECT country, city, state, postal_code, region, product_id, category, sub_category, product_name,
                           stated_revenue, quantity, discount, profit FROM dict_row$$,
                  $$VALUES ('United States', 'Henderson', 'Kentucky', '42420', 'South', 'FUR-BO-10001798', 'Furniture',
                            'Bookcases', 'Bush Somerset Collection Bookcase', 261.96::numeric(14,2), 2,
                            0::numeric(5,4), 41.91::numeric(14,2))$$,
                  'superstore: every other field of the dataset, strings converted');
SELECT results_eq($$SELECT order_id, line, sold_at, sub_category, stated_revenue
                      FROM sales_kafka.decode(NULL::jobs_store.src_superstore,
                             '{"row_id": 7, "order_id": "O-7", "order_date": "2016-11-08T10:00:00-05:00",
                               "sub_category": "Chairs", "sales": 12.5}')$$,
                  $$VALUES ('O-7', 7, timestamptz '2016-11-08 15:00+00', 'Chairs', 12.50::numeric(14,2))$$,
                  'superstore: our own names and ISO 8601 still work');
SELECT throws_ok($$SELECT * FROM sales_kafka.decode(NULL::jobs_store.src_superstore, '{"OrderID": "x", "Date": "11/8/2016"}')$$,
                 '2203A', 'Kafka message payload has none of the fields of foreign table "src_superstore"',
                 'superstore: a message with none of the fields is an error, not a row of NULLs');

SELECT results_eq($$SELECT to_char(sold_at, 'YYYY-MM-DD HH24:MI:SS.MS')
                      FROM (VALUES ('{"product_name": "Tea", "timestamp": "2024-05-01 10:00:00.250000"}'),
                                   ('{"product_name": "Tea", "timestamp": 1714550400.25}'),
                                   ('{"product_name": "Tea", "timestamp": "2024-05-01T08:00:00.25+00:00"}'),
                                   ('{"product_name": "Tea", "timestamp": 1714550400250}'),
                                   ('{"product_name": "Tea", "timestamp": 1714550400250000}')) AS m(payload),
                           sales_kafka.decode(NULL::jobs_events.src_sale_events, m.payload)$$,
                  $$VALUES ('2024-05-01 08:00:00.250'), ('2024-05-01 08:00:00.250'), ('2024-05-01 08:00:00.250'),
                           ('2024-05-01 08:00:00.250'), ('2024-05-01 08:00:00.250')$$,
                  'sale_events: str(datetime.now()) in the model''s zone, time.time(), isoformat(), epoch ms and µs agree');

-------------------------------------------------------------------------------
-- The export: objects
-------------------------------------------------------------------------------
SELECT has_function('sales_kafka', 'export_day', ARRAY['name', 'date', 'text'], 'export_day(name, date, text) exists');
SELECT function_returns('sales_kafka', 'export_day', ARRAY['name', 'date', 'text'], 'jsonb', 'export_day returns the manifest as jsonb');
SELECT has_function('sales_kafka', 'export_last_day', ARRAY['name', 'text', 'interval'], 'export_last_day(name, text, interval) exists');
SELECT has_function('sales_kafka', 'schedule_daily_export', ARRAY['name', 'text', 'interval', 'name', 'text'],
                    'schedule_daily_export(name, text, interval, name, text) exists');
SELECT has_function('sales_kafka', 'unschedule_daily_export', ARRAY['name', 'name'], 'unschedule_daily_export(name, name) exists');
SELECT is((SELECT count(*) FROM pg_proc
            WHERE pronamespace = 'sales_kafka'::regnamespace
              AND proname IN ('export_day', 'export_last_day', 'schedule_daily_export', 'unschedule_daily_export',
                              '_export_cron_schedules', '_check_export_right')
              AND obj_description(oid, 'pg_proc') IS NOT NULL),
          6::bigint, 'every function of the export has a comment');
SELECT is((SELECT array_agg(c ORDER BY c COLLATE "C") FROM pg_proc, unnest(proconfig) AS c
            WHERE oid = 'sales_kafka.export_day(name, date, text)'::regprocedure),
          ARRAY['DateStyle=ISO, YMD', 'IntervalStyle=postgres', 'TimeZone=UTC', 'bytea_output=hex',
                'extra_float_digits=1', 'search_path=pg_catalog, pg_temp'],
          'export_day fixes the settings that shape the files'' text');

-------------------------------------------------------------------------------
-- The export: who may, and the refusals
-------------------------------------------------------------------------------
CREATE ROLE regress_sales_kafka_jobs;
GRANT USAGE ON SCHEMA jobs_store TO regress_sales_kafka_jobs;
GRANT SELECT ON ALL TABLES IN SCHEMA jobs_store TO regress_sales_kafka_jobs;
SET LOCAL ROLE regress_sales_kafka_jobs;
SELECT throws_ok($$SELECT sales_kafka.export_day('jobs_store', '2016-11-08', '/tmp')$$,
                 '42501', 'permission denied to export sales model "jobs_store"',
                 'export_day without pg_write_server_files: 42501');
SELECT throws_ok($$SELECT sales_kafka.export_day('no_such_model', '2016-11-08', 'relative')$$,
                 '42501', 'permission denied to export sales model "no_such_model"',
                 'export_day checks the right before anything else (model, directory)');
SELECT throws_ok($$SELECT sales_kafka.export_last_day('jobs_store', '/tmp')$$,
                 '42501', 'permission denied to export sales models',
                 'export_last_day without pg_write_server_files: 42501');
SELECT throws_ok($$SELECT * FROM sales_kafka.schedule_daily_export('jobs_store', '/tmp')$$,
                 '42501', 'permission denied to export sales models',
                 'schedule_daily_export without pg_write_server_files: 42501');
RESET ROLE;
SELECT throws_ok($$SELECT sales_kafka.export_day('jobs_store', '2016-11-08', 'relative/dir')$$,
                 '22023', 'relative path not allowed for the export directory: "relative/dir"',
                 'export_day: a relative directory: 22023');
SELECT throws_ok($$SELECT sales_kafka.export_day('jobs_store', '2016-11-08', '/no/such/directory')$$,
                 '58P01', NULL, 'export_day: a directory that does not exist: 58P01');
SELECT throws_ok($$SELECT sales_kafka.export_day('no_such_model', '2016-11-08', '/tmp')$$,
                 '42704', 'schema "no_such_model" has no sales model',
                 'export_day: a schema without a model: 42704');
SELECT throws_ok($$SELECT * FROM sales_kafka.schedule_daily_export('jobs_store', '/tmp')$$,
                 '55000', 'pg_cron is not installed in database "' || current_database() || '"',
                 'schedule_daily_export where pg_cron is not: 55000');

-------------------------------------------------------------------------------
-- The schedule: 00:00 + grace in the model's zone, in UTC for pg_cron
-------------------------------------------------------------------------------
SELECT results_eq($$SELECT sales_kafka._export_cron_schedules('Europe/Berlin', '1 hour')$$,
                  $$VALUES ('0 0,23 * * *')$$,
                  'Berlin, 1 hour: 00:00 UTC in winter (UTC+1), 23:00 UTC in summer (UTC+2)');
SELECT results_eq($$SELECT sales_kafka._export_cron_schedules('America/New_York', '30 minutes')$$,
                  $$VALUES ('30 4,5 * * *')$$,
                  'New York, 30 minutes: 04:30 UTC in summer (UTC-4), 05:30 UTC in winter (UTC-5)');
SELECT results_eq($$SELECT sales_kafka._export_cron_schedules('UTC', '0')$$,
                  $$VALUES ('0 0 * * *')$$, 'UTC, no grace: midnight');
SELECT results_eq($$SELECT sales_kafka._export_cron_schedules('Asia/Kolkata', '2 hours')$$,
                  $$VALUES ('30 20 * * *')$$, 'Kolkata (UTC+5:30, no summer time), 2 hours: 20:30 UTC');
SELECT results_eq($$SELECT sales_kafka._export_cron_schedules('Australia/Lord_Howe', '0')$$,
                  $$VALUES ('0 13 * * *'), ('30 13 * * *')$$,
                  'Lord Howe (UTC+10:30, UTC+11 in summer): two minutes of the hour, two schedules');
SELECT is((SELECT count(*) FROM sales_kafka._export_cron_schedules('Europe/Berlin', '23 hours 59 minutes')),
          1::bigint, 'a grace of almost a day stays within the day');

SELECT * FROM finish();
ROLLBACK;
DROP ROLE IF EXISTS regress_sales_kafka_jobs;
