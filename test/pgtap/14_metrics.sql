-- Metric streams: records (a series and a record id) summarised per series
-- and time bucket by refresh_rollups, incrementally and exactly.
--
-- Part 1, without a broker, in one transaction rolled back: the model's
-- tables and views; two series every minute for four hours across the
-- daylight saving change of America/New_York (every 10-minute bucket holds
-- 10 samples, the summaries equal values worked out by hand); a replay
-- changes nothing; corrections, late records, deletes and a record that
-- moves to another bucket leave the summaries equal to a direct GROUP BY;
-- add_metric_summary and drop_metric_summary, and their errors.
--
-- Part 2, through the broker: the metrics shape with its series taken from
-- a field (the mapping option "field" of the column series), messages as
-- pandas writes them (epoch milliseconds), a message without the series
-- field to the dead letters, and the same messages sent again changing
-- nothing.  It commits, waits for the worker by polling with a bounded
-- timeout, and cleans up.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
DROP SCHEMA IF EXISTS metrics_tap, metrics_test, metrics_stream CASCADE;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
DO $$BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'sales_kafka_reader') THEN
        DROP OWNED BY sales_kafka_reader;
    END IF;
END$$;
DROP ROLE IF EXISTS metrics_other;
RESET client_min_messages;
CREATE EXTENSION sales_kafka;
CREATE ROLE metrics_other;
CREATE SCHEMA metrics_tap;
SET search_path = metrics_tap, public;

SELECT plan(49);

-------------------------------------------------------------------------------
-- Part 1: the model, without a broker
-------------------------------------------------------------------------------
BEGIN;

SELECT sales_kafka.create_sales_model('metrics_test', time_zone => 'America/New_York');

SELECT columns_are('metrics_test', 'metrics',
                   ARRAY['record_id', 'measured_at', 'stock_price', 'sales_trend', 'series', 'ingest_id'],
                   'metrics: record id, time, measures, series, ingest_id');
SELECT col_is_pk('metrics_test', 'metrics', ARRAY['series', 'record_id'],
                 'a record is its series and its record id');
SELECT results_eq($$SELECT bucket_width, view_name, summarized_through FROM metrics_test.metric_summary_view$$,
                  $$VALUES (interval '10 minutes', 'kpi_metrics_10min'::name, 0::bigint),
                           ('20 minutes', 'kpi_metrics_20min', 0)$$,
                  'every model summarises in 10 and 20 minutes');
SELECT columns_are('metrics_test', 'kpi_metrics_10min',
                   ARRAY['series', 'period_start', 'period_end', 'day', 'year', 'quarter', 'month', 'hour',
                         'samples', 'stock_price_open', 'stock_price_close', 'stock_price_low', 'stock_price_high',
                         'stock_price_average', 'sales_trend_open', 'sales_trend_close', 'sales_trend_low',
                         'sales_trend_high', 'sales_trend_average'],
                   'kpi_metrics_10min: series, period, date hierarchy, samples, open/close/low/high/average');
SELECT col_type_is('metrics_test', 'kpi_metrics_10min', 'stock_price_average', 'numeric(20,4)',
                   'averages have a declared scale');
SELECT col_type_is('metrics_test', 'kpi_metrics_10min', 'samples', 'bigint', 'samples is a bigint count');

-- AAPL and MSFT every minute for four hours from midnight of 2024-11-03 in
-- New York (04:00 UTC), the night its clocks go back from 02:00 EDT to
-- 01:00 EST: minute m (0..239) is record m of each; AAPL's price is
-- 100 + m, its trend m / 100; MSFT's price 300 - m, its trend -m / 100
INSERT INTO metrics_test.metrics (series, record_id, measured_at, stock_price, sales_trend)
SELECT s.series, m::text, timestamptz '2024-11-03 04:00+00' + m * interval '1 minute',
       CASE s.series WHEN 'AAPL' THEN 100 + m ELSE 300 - m END,
       CASE s.series WHEN 'AAPL' THEN m / 100.0 ELSE -m / 100.0 END
  FROM generate_series(0, 239) m, (VALUES ('AAPL'), ('MSFT')) AS s(series);
SELECT is_empty($$SELECT * FROM metrics_test.kpi_metrics_10min$$,
                'the summaries are as of the last refresh_rollups');
SELECT is(sales_kafka.refresh_rollups('metrics_test'), 0::bigint,
          'refresh_rollups counts order lines (none here) and summarises the metric records');

SELECT results_eq($$SELECT series, count(*), min(samples), max(samples) FROM metrics_test.kpi_metrics_10min GROUP BY series ORDER BY series$$,
                  $$VALUES ('AAPL', 24::bigint, 10::bigint, 10::bigint), ('MSFT', 24, 10, 10)$$,
                  'per series, not per record id: 24 buckets of 10 samples each, across the clock change');
SELECT results_eq($$SELECT series, count(*), min(samples), max(samples) FROM metrics_test.kpi_metrics_20min GROUP BY series ORDER BY series$$,
                  $$VALUES ('AAPL', 12::bigint, 20::bigint, 20::bigint), ('MSFT', 12, 20, 20)$$,
                  '12 buckets of 20 samples each');
-- minutes 0-9: AAPL 100..109 (average 104.5), trend 0.00..0.09 (0.045);
-- MSFT 300..291 (295.5), trend 0..-0.09 (-0.045)
SELECT results_eq($$SELECT series, period_start, period_end, day, year, quarter, month, hour, samples,
                           stock_price_open, stock_price_close, stock_price_low, stock_price_high, stock_price_average,
                           sales_trend_open, sales_trend_close, sales_trend_average
                      FROM metrics_test.kpi_metrics_10min WHERE period_start = '2024-11-03 04:00+00'$$,
                  $$VALUES ('AAPL', timestamptz '2024-11-03 04:00+00', timestamptz '2024-11-03 04:10+00', date '2024-11-03',
                            2024, 4, 11, 0, 10::bigint, 100.0000, 109.0000, 100.0000, 109.0000, 104.5000,
                            0.0000, 0.0900, 0.0450),
                           ('MSFT', '2024-11-03 04:00+00', '2024-11-03 04:10+00', '2024-11-03',
                            2024, 4, 11, 0, 10, 300.0000, 291.0000, 291.0000, 300.0000, 295.5000,
                            0.0000, -0.0900, -0.0450)$$,
                  'the first 10 minutes: open, close, low, high and averages by hand, dated in the model''s time zone');
-- minutes 60-119 are 01:00-01:59 EDT, 120-179 01:00-01:59 EST
SELECT results_eq($$SELECT hour, count(*) FROM metrics_test.kpi_metrics_10min WHERE series = 'AAPL' GROUP BY hour ORDER BY hour$$,
                  $$VALUES (0, 6::bigint), (1, 12), (2, 6)$$,
                  'the hour that repeats has twice its buckets, each of 10 minutes');

-- a day and six hours, cut on the zone's clock: that day has 25 hours
SELECT is(sales_kafka.add_metric_summary('metrics_test', '1 day'), 'kpi_metrics_1day'::name,
          'add_metric_summary adds a view and names it');
SELECT is(sales_kafka.add_metric_summary('metrics_test', '6 hours'), 'kpi_metrics_6hour'::name,
          'add_metric_summary of 6 hours');
SELECT results_eq($$SELECT series, day, samples, period_end - period_start, stock_price_average
                      FROM metrics_test.kpi_metrics_1day$$,
                  $$VALUES ('AAPL', date '2024-11-03', 240::bigint, interval '25 hours', 219.5000),
                           ('MSFT', '2024-11-03', 240, '25 hours', 180.5000)$$,
                  'filled at once: the day of the clock change is 25 hours long');
SELECT results_eq($$SELECT series, period_start, samples, period_end - period_start FROM metrics_test.kpi_metrics_6hour$$,
                  $$VALUES ('AAPL', timestamptz '2024-11-03 04:00+00', 240::bigint, interval '7 hours'),
                           ('MSFT', '2024-11-03 04:00+00', 240, '7 hours')$$,
                  'local midnight to 06:00 is 7 hours that night');
SELECT ok(has_table_privilege('sales_kafka_reader', 'metrics_test.kpi_metrics_6hour', 'SELECT')
          AND obj_description('metrics_test.kpi_metrics_6hour'::regclass, 'pg_class') LIKE '%samples adds up%',
          'an added view is granted to sales_kafka_reader and says what adds up');
SELECT hasnt_column('metrics_test', 'kpi_metrics_1day', 'hour', 'a view of whole days has no hour');

-- the same records again, written as a pipeline upserts them: nothing changes
CREATE TEMP TABLE summary_before AS SELECT * FROM metrics_test.metric_summary;
INSERT INTO metrics_test.metrics AS t (series, record_id, measured_at, stock_price, sales_trend)
SELECT series, record_id, measured_at, stock_price, sales_trend FROM metrics_test.metrics
ON CONFLICT (series, record_id) DO UPDATE
   SET measured_at = excluded.measured_at, stock_price = excluded.stock_price, sales_trend = excluded.sales_trend;
SELECT is_empty($$SELECT * FROM metrics_test.metric_change$$, 'a replay queues no change');
SELECT is(sales_kafka.refresh_rollups('metrics_test'), 0::bigint, 'and refresh_rollups finds nothing new');
SELECT is_empty($$(SELECT * FROM summary_before EXCEPT SELECT * FROM metrics_test.metric_summary)
                  UNION ALL (SELECT * FROM metrics_test.metric_summary EXCEPT SELECT * FROM summary_before)$$,
                'a replayed record changes nothing');
SELECT results_eq($$SELECT summarized_through FROM metrics_test.metric_summary_view$$,
                  $$SELECT last_value FROM metrics_test.metrics_ingest_id_seq CROSS JOIN generate_series(1, 4)$$,
                  'every width records its progress');

-- corrections, a late record, a delete, a record moved to another bucket
UPDATE metrics_test.metrics SET stock_price = 999 WHERE series = 'AAPL' AND record_id = '5';
INSERT INTO metrics_test.metrics (series, record_id, measured_at, stock_price, sales_trend)
VALUES ('AAPL', 'late', '2024-11-03 04:09:30+00', 1.5, 0), ('MSFT', 'early', '2024-11-03 03:59+00', 400, 1);
DELETE FROM metrics_test.metrics WHERE series = 'MSFT' AND record_id = '15';
UPDATE metrics_test.metrics SET measured_at = measured_at + interval '1 hour' WHERE series = 'MSFT' AND record_id = '0';
SELECT is(sales_kafka.refresh_rollups('metrics_test'), 0::bigint, 'refresh_rollups after changes');
SELECT results_eq($$SELECT samples, stock_price_open, stock_price_close, stock_price_low, stock_price_high
                      FROM metrics_test.kpi_metrics_10min WHERE series = 'AAPL' AND period_start = '2024-11-03 04:00+00'$$,
                  $$VALUES (11::bigint, 100.0000, 1.5000, 1.5000, 999.0000)$$,
                  'a corrected and a late record count in their bucket: open and close by time');
SELECT results_eq($$SELECT series, period_start, samples FROM metrics_test.kpi_metrics_10min
                     WHERE series = 'MSFT' AND period_start < '2024-11-03 04:20+00' ORDER BY period_start$$,
                  $$VALUES ('MSFT', timestamptz '2024-11-03 03:50+00', 1::bigint),
                           ('MSFT', '2024-11-03 04:00+00', 9), ('MSFT', '2024-11-03 04:10+00', 9)$$,
                  'a record moved away and a record deleted leave their buckets');
-- every width against a direct computation from the records
CREATE TEMP TABLE direct AS
SELECT v.bucket_width, r.series,
       CASE WHEN v.bucket_width <= interval '1 hour'
            THEN date_bin(v.bucket_width, r.measured_at, timestamp '2000-01-01' AT TIME ZONE 'America/New_York')
            ELSE date_bin(v.bucket_width, r.measured_at AT TIME ZONE 'America/New_York', timestamp '2000-01-01')
                     AT TIME ZONE 'America/New_York' END AS period_start,
       r.record_id, r.measured_at, r.stock_price, r.sales_trend
  FROM metrics_test.metric_summary_view v, metrics_test.metrics r;
SELECT is_empty($$(SELECT bucket_width, period_start, series, count(*),
                          (array_agg(stock_price ORDER BY measured_at, record_id))[1],
                          (array_agg(stock_price ORDER BY measured_at DESC, record_id DESC))[1],
                          min(stock_price), max(stock_price), sum(stock_price), sum(sales_trend)
                     FROM direct GROUP BY 1, 2, 3
                   EXCEPT
                   SELECT bucket_width, period_start, series, samples, stock_price_open, stock_price_close,
                          stock_price_low, stock_price_high, stock_price_sum, sales_trend_sum
                     FROM metrics_test.metric_summary)
                  UNION ALL
                  (SELECT bucket_width, period_start, series, samples, stock_price_open, stock_price_close,
                          stock_price_low, stock_price_high, stock_price_sum, sales_trend_sum
                     FROM metrics_test.metric_summary
                   EXCEPT
                   SELECT bucket_width, period_start, series, count(*),
                          (array_agg(stock_price ORDER BY measured_at, record_id))[1],
                          (array_agg(stock_price ORDER BY measured_at DESC, record_id DESC))[1],
                          min(stock_price), max(stock_price), sum(stock_price), sum(sales_trend)
                     FROM direct GROUP BY 1, 2, 3)$$,
                'every summary of every width equals a GROUP BY of the records');
SELECT is_empty($$SELECT * FROM metrics_test.metric_change$$, 'the changes are consumed');

-- removing a summary, and what may not be
SELECT is(sales_kafka.drop_metric_summary('metrics_test', '24 hours'), 'kpi_metrics_1day'::name,
          'drop_metric_summary removes a width (1 day is 24 hours)');
SELECT ok(to_regclass('metrics_test.kpi_metrics_1day') IS NULL
          AND NOT EXISTS (SELECT FROM metrics_test.metric_summary WHERE bucket_width = '1 day'),
          'its view and its rows are gone');
SELECT throws_ok($$SELECT sales_kafka.drop_metric_summary('metrics_test', '10 minutes')$$, '2BP01',
                 'cannot drop the metric summary of 00:10:00 of sales model "metrics_test"',
                 'the summaries every model has stay');
SELECT throws_ok($$SELECT sales_kafka.drop_metric_summary('metrics_test', '2 hours')$$, '42704',
                 'sales model "metrics_test" has no metric summary of 02:00:00', 'dropping a width the model lacks');
SELECT throws_ok($$SELECT sales_kafka.add_metric_summary('metrics_test', '6 hours')$$, '42710',
                 'sales model "metrics_test" already has a metric summary of 06:00:00', 'a width is added once');
SELECT throws_ok($$SELECT sales_kafka.add_metric_summary('metrics_test', '7 minutes')$$, '22023',
                 'invalid metric summary bucket width: "00:07:00"', 'a width that does not divide an hour');
SELECT throws_ok($$SELECT sales_kafka.add_metric_summary('metrics_test', '1 mon')$$, '22023',
                 'invalid metric summary bucket width: "1 mon"', 'months have no fixed length');
SELECT throws_ok($$SELECT sales_kafka.add_metric_summary('metrics_test', '5 hours')$$, '22023',
                 'invalid metric summary bucket width: "05:00:00"', 'hours that do not divide a day');
SELECT throws_ok($$SELECT sales_kafka.add_metric_summary('metrics_test', NULL)$$, '22023',
                 'invalid metric summary bucket width: "NULL"', 'a width must be given');
SELECT throws_ok($$SELECT sales_kafka.add_metric_summary('metrics_nothing', '1 hour')$$, '42704',
                 'schema "metrics_nothing" has no sales model', 'a schema without a model');
SET ROLE metrics_other;
SELECT throws_ok($$SELECT sales_kafka.add_metric_summary('metrics_test', '1 hour')$$, '42501', NULL,
                 'only roles with the owner''s privileges add summaries');
SELECT throws_ok($$SELECT sales_kafka._refresh_metric_summaries('metrics_test', 0)$$, '42501', NULL,
                 'the internal refresh works only on a schema the current user owns');
RESET ROLE;

-- TRUNCATE empties the summaries; what comes after is summarised anew
TRUNCATE metrics_test.metrics;
INSERT INTO metrics_test.metrics (series, record_id, measured_at, stock_price)
VALUES ('AAPL', 'x', '2024-12-01 10:00+00', 5);
SELECT is(sales_kafka.refresh_rollups('metrics_test'), 0::bigint, 'refresh_rollups after TRUNCATE');
SELECT results_eq($$SELECT series, samples, stock_price_average, sales_trend_average FROM metrics_test.kpi_metrics_20min$$,
                  $$VALUES ('AAPL', 1::bigint, 5.0000, NULL::numeric)$$,
                  'after TRUNCATE only the new record is summarised (a measure without values averages NULL)');

ROLLBACK;

-------------------------------------------------------------------------------
-- Part 2: a stream through the broker, its series in a field
-------------------------------------------------------------------------------
\ir helpers.psql
CREATE SERVER metrics_kafka FOREIGN DATA WRAPPER sales_kafka;
SELECT sales_kafka.create_sales_model('metrics_stream', time_zone => 'UTC');
SELECT is(sales_kafka.create_sales_pipelines('metrics_stream', 'metrics', 'metrics_kafka', topic('metrics_stream'),
                                             start => false),
          'metrics_stream_metrics', 'the metrics shape: one pipeline, not started yet');
-- the series is the field "symbol" of each message, not the topic
ALTER FOREIGN TABLE metrics_stream.src_metrics ALTER COLUMN series OPTIONS (DROP kafka, ADD field 'symbol');
SELECT sales_kafka.start_pipeline('metrics_stream_metrics');

-- messages as pandas' DataFrame.to_json(orient='records', lines=True)
-- writes them: numbered records, times in epoch milliseconds; two symbols
-- every minute from 2024-05-01 10:00 UTC (1714557600000) for 30 minutes,
-- and one message without a symbol
SELECT format($$CREATE FOREIGN TABLE metrics_raw (payload text OPTIONS (kafka 'payload'))
                SERVER metrics_kafka OPTIONS (topic %L)$$, topic('metrics_stream')) \gexec
CREATE TEMP TABLE sent AS
SELECT format('{"id":%s,"symbol":"%s","timestamp":%s,"stock_price":%s,"sales_trend":%s}',
              m + 1, s.symbol, 1714557600000 + m * 60000, s.base + m, round(m / 8.0, 3)) AS payload
  FROM generate_series(0, 29) m, (VALUES ('AAPL', 100), ('MSFT', 300)) AS s(symbol, base)
UNION ALL
SELECT '{"id":99,"timestamp":1714557600000,"stock_price":1,"sales_trend":0}';
INSERT INTO metrics_raw SELECT payload FROM sent;
SELECT ok(wait_for($$SELECT count(*) = 60 FROM metrics_stream.metrics$$)
          AND wait_for($$SELECT count(*) = 1 FROM sales_kafka.dead_letter WHERE pipeline = 'metrics_stream_metrics'$$),
          'the records are ingested; the one without a symbol is a dead letter');
SELECT results_eq($$SELECT series, count(*), min(measured_at), max(measured_at) FROM metrics_stream.metrics GROUP BY series ORDER BY series$$,
                  $$VALUES ('AAPL', 30::bigint, timestamptz '2024-05-01 10:00+00', timestamptz '2024-05-01 10:29+00'),
                           ('MSFT', 30, '2024-05-01 10:00+00', '2024-05-01 10:29+00')$$,
                  'one series per symbol, epoch milliseconds land as the right times');
SELECT is(sales_kafka.refresh_rollups('metrics_stream'), 0::bigint, 'refresh_rollups summarises the stream');
-- minutes 10-19: AAPL 110..119 (average 114.5); trends 10/8 .. 19/8, average 14.5 / 8 = 1.8125
SELECT results_eq($$SELECT series, period_start, samples, stock_price_open, stock_price_close, stock_price_average,
                           sales_trend_average
                      FROM metrics_stream.kpi_metrics_10min ORDER BY series, period_start$$,
                  $$VALUES ('AAPL', timestamptz '2024-05-01 10:00+00', 10::bigint, 100.0000, 109.0000, 104.5000, 0.5625),
                           ('AAPL', '2024-05-01 10:10+00', 10, 110.0000, 119.0000, 114.5000, 1.8125),
                           ('AAPL', '2024-05-01 10:20+00', 10, 120.0000, 129.0000, 124.5000, 3.0625),
                           ('MSFT', '2024-05-01 10:00+00', 10, 300.0000, 309.0000, 304.5000, 0.5625),
                           ('MSFT', '2024-05-01 10:10+00', 10, 310.0000, 319.0000, 314.5000, 1.8125),
                           ('MSFT', '2024-05-01 10:20+00', 10, 320.0000, 329.0000, 324.5000, 3.0625)$$,
                  'per symbol and 10 minutes: samples, open, close and averages by hand');

-- the same messages again: consumed, and nothing changes
CREATE TEMP TABLE stream_before AS SELECT * FROM metrics_stream.metric_summary;
INSERT INTO metrics_raw SELECT payload FROM sent;
SELECT ok(wait_for($$SELECT sum(committed_offset) = 122 AND bool_and(lag = 0) FROM sales_kafka.pipeline_partitions
                      WHERE pipeline = 'metrics_stream_metrics'$$),
          'the replayed messages are consumed');
SELECT is(sales_kafka.refresh_rollups('metrics_stream'), 0::bigint, 'refresh_rollups after the replay');
SELECT is_empty($$(SELECT * FROM stream_before EXCEPT SELECT * FROM metrics_stream.metric_summary)
                  UNION ALL (SELECT * FROM metrics_stream.metric_summary EXCEPT SELECT * FROM stream_before)$$,
                'the replay changed no summary');

SELECT * FROM finish();
SET client_min_messages = warning;
SELECT sales_kafka.drop_pipeline('metrics_stream_metrics');
DROP SCHEMA metrics_stream, metrics_tap CASCADE;
DROP EXTENSION sales_kafka CASCADE;
DROP ROLE metrics_other;
