-- Past one server, the contracts that need no running worker: pipelines
-- that own a subset of their topic's partitions (the list's forms, its
-- canonical text in the catalog and in pipeline_status, partitions the
-- topic lacks, overlapping pipelines refused, resets outside the list);
-- load() into a table of another table access method (the executor's
-- path); retention of partitioned models (drop_old_partitions: which
-- months go, the rollups keep their sums, detach_only, errors, rights).
-- One transaction, rolled back; the broker's fixture topic watermarks3
-- (3 partitions of 10 messages).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
DROP SCHEMA IF EXISTS scale_test, ret_model, ret_flat CASCADE;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
DROP ROLE IF EXISTS regress_sales_kafka_scale;
DROP ROLE IF EXISTS regress_sales_kafka_scale_other;
RESET client_min_messages;

BEGIN;
CREATE EXTENSION sales_kafka;
SELECT plan(46);

CREATE SCHEMA scale_test;
SET search_path = scale_test, public;
CREATE SERVER scale_kafka FOREIGN DATA WRAPPER sales_kafka;
SELECT format($$CREATE FOREIGN TABLE src (v text, "partition" int OPTIONS (kafka 'partition'))
                SERVER scale_kafka OPTIONS (topic %L, format 'text')$$,
              current_setting('sk_test.topic_prefix') || 'watermarks3') \gexec
-- the same topic through another foreign table
SELECT format($$CREATE FOREIGN TABLE src_again (v text) SERVER scale_kafka OPTIONS (topic %L, format 'text')$$,
              current_setting('sk_test.topic_prefix') || 'watermarks3') \gexec
CREATE TABLE t_a (v text, "partition" int);
CREATE TABLE t_b (v text, "partition" int);
CREATE TABLE t_c (v text, "partition" int);
CREATE TABLE t_tree (v text, "partition" int) PARTITION BY LIST ("partition");
CREATE TABLE t_tree_all PARTITION OF t_tree DEFAULT;

-------------------------------------------------------------------------------
-- Partition lists
-------------------------------------------------------------------------------

SELECT has_function('sales_kafka', 'create_pipeline',
                    ARRAY['text', 'regclass', 'regclass', 'text', 'integer', 'interval', 'text', 'integer', 'text'],
                    'create_pipeline takes a partition list as its ninth argument');

SELECT lives_ok($$SELECT sales_kafka.create_pipeline('ps_a', 'src', 't_a', partitions => ' 1 , 0-0')$$,
                'a pipeline may own partitions given as numbers and ranges');
SELECT is((SELECT partitions FROM sales_kafka.pipeline WHERE name = 'ps_a'), '0-1',
          'the catalog keeps the list in its canonical form (sorted, ranges merged)');
SELECT is((SELECT owned_partitions FROM sales_kafka.pipeline_status WHERE pipeline = 'ps_a'), '0-1',
          'pipeline_status shows the partitions a pipeline owns');

SELECT lives_ok($$SELECT sales_kafka.create_pipeline('ps_b', 'src', 't_a', partitions => '2')$$,
                'a second pipeline of the topic into the same table may own the other partitions');
SELECT lives_ok($$SELECT sales_kafka.create_pipeline('ps_fan', 'src', 't_b', partitions => '0-2')$$,
                'a pipeline of the topic into another table may own the same partitions (a fan-out)');
SELECT lives_ok($$SELECT sales_kafka.create_pipeline('ps_all', 'src', 't_c')$$,
                'a pipeline without a list reads every partition');
SELECT is((SELECT owned_partitions FROM sales_kafka.pipeline_status WHERE pipeline = 'ps_all'), 'all',
          'pipeline_status shows "all" for a pipeline without a list');
SELECT lives_ok($$SELECT sales_kafka.create_pipeline('ps_all_again', 'src', 't_c')$$,
                'two pipelines without a list are not checked against each other, as before lists');

SELECT throws_ok($$SELECT sales_kafka.create_pipeline('ps_x', 'src', 't_a', partitions => '1-2')$$,
                 '42710',
                 format('pipeline "ps_x" would read the same partitions of topic "%s" into the same table as pipeline "ps_a"',
                        current_setting('sk_test.topic_prefix') || 'watermarks3'),
                 'a list that overlaps another pipeline''s into the same table is refused');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('ps_x', 'src', 't_a')$$, '42710', NULL,
                 'a pipeline without a list overlaps every listed pipeline of the topic into that table');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('ps_x', 'src', 't_c', partitions => '2')$$, '42710', NULL,
                 'a list overlaps a pipeline without a list into the same table');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('ps_x', 'src_again', 't_a', partitions => '0')$$, '42710', NULL,
                 'the topic counts, not the foreign table: another foreign table of the topic overlaps too');
SELECT lives_ok($$SELECT sales_kafka.create_pipeline('ps_tree', 'src', 't_tree', partitions => '0')$$,
                'a pipeline into a partitioned table');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('ps_x', 'src', 't_tree_all', partitions => '0-1')$$, '42710', NULL,
                 'a partition of that table is the same table: the overlap is refused');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('ps_a', 'src', 't_a', partitions => '1')$$, '42710',
                 'pipeline "ps_a" already exists',
                 'a name taken is reported as such, before any overlap');

SELECT throws_ok($$SELECT sales_kafka.create_pipeline('ps_x', 'src', 't_b', partitions => '0-5')$$, '22023',
                 format('topic "%s" has no partitions 3-5',
                        current_setting('sk_test.topic_prefix') || 'watermarks3'),
                 'partitions the topic does not have are an error at creation');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('ps_x', 'src', 't_b', partitions => '')$$, '22023',
                 'invalid partition list ""', 'an empty list is invalid');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('ps_x', 'src', 't_b', partitions => '2-1')$$, '22023',
                 'invalid partition list "2-1"', 'a reversed range is invalid');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('ps_x', 'src', 't_b', partitions => '0,,1')$$, '22023',
                 'invalid partition list "0,,1"', 'an empty item is invalid');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('ps_x', 'src', 't_b', partitions => '-1')$$, '22023',
                 'invalid partition list "-1"', 'a negative partition is invalid');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('ps_x', 'src', 't_b', partitions => '2147483648')$$, '22023',
                 'invalid partition list "2147483648"', 'a partition beyond 32 bits is invalid');
SELECT throws_ok($$INSERT INTO sales_kafka.pipeline (name, source, target, owner, partitions)
                   VALUES ('ps_y', 'src', 't_b', current_user::regrole, '0 - 1')$$, '23514', NULL,
                 'the catalog takes only canonical lists');

SELECT throws_ok($$SELECT sales_kafka.reset_pipeline('ps_b', '{"0": 0}')$$, '22023',
                 format('partition 0 of topic "%s" is not one of the partitions of pipeline "ps_b"',
                        current_setting('sk_test.topic_prefix') || 'watermarks3'),
                 'a reset cannot set the offset of a partition the pipeline does not own');
SELECT lives_ok($$SELECT sales_kafka.reset_pipeline('ps_b', '{"2": 4}')$$,
                'a reset sets the offset of a partition the pipeline owns');

-- another role: the overlap check sees every role's pipelines
CREATE ROLE regress_sales_kafka_scale;
GRANT USAGE ON SCHEMA scale_test TO regress_sales_kafka_scale;
GRANT USAGE ON FOREIGN SERVER scale_kafka TO regress_sales_kafka_scale;
GRANT SELECT ON src TO regress_sales_kafka_scale;
CREATE TABLE t_d (v text, "partition" int);
GRANT INSERT ON t_a, t_d TO regress_sales_kafka_scale;
CREATE USER MAPPING FOR regress_sales_kafka_scale SERVER scale_kafka;
SET ROLE regress_sales_kafka_scale;
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('mine', 'src', 't_a', partitions => '2')$$, '42710', NULL,
                 'another role''s pipeline of the topic into the table is an overlap too');
SELECT lives_ok($$SELECT sales_kafka.create_pipeline('mine', 'src', 't_d', partitions => '1')$$,
                'a role that is not a superuser owns a pipeline with a list');
RESET ROLE;
SELECT is((SELECT (owner::text, partitions) FROM sales_kafka.pipeline WHERE name = 'mine'),
          ('regress_sales_kafka_scale'::text, '1'::text),
          'the role owns it, with its list');

-------------------------------------------------------------------------------
-- load() into a table of another table access method
-------------------------------------------------------------------------------

CREATE ACCESS METHOD heap2 TYPE TABLE HANDLER heap_tableam_handler;
CREATE TABLE loaded_heap2 (v text, "partition" int) USING heap2;
CREATE TABLE loaded_tree (v text, "partition" int) PARTITION BY LIST ("partition");
CREATE TABLE loaded_tree_0 PARTITION OF loaded_tree FOR VALUES IN (0);
CREATE TABLE loaded_tree_rest PARTITION OF loaded_tree DEFAULT USING heap2;
SELECT is(sales_kafka.load('src', 'loaded_heap2'), 30::bigint,
          'load() writes into a table of another table access method (through the executor)');
SELECT results_eq($$SELECT "partition", count(*), count(DISTINCT v) FROM loaded_heap2 GROUP BY 1 ORDER BY 1$$,
                  $$VALUES (0, 10::bigint, 10::bigint), (1, 10::bigint, 10::bigint), (2, 10::bigint, 10::bigint)$$,
                  'every message of the topic is there once');
SELECT is(sales_kafka.load('src', 'loaded_tree'), 30::bigint,
          'load() writes into a partitioned table with a partition of another access method');
SELECT results_eq($$SELECT tableoid::regclass::text, count(*) FROM loaded_tree GROUP BY 1 ORDER BY 1$$,
                  $$VALUES ('loaded_tree_0', 10::bigint), ('loaded_tree_rest', 20::bigint)$$,
                  'each row is in its partition, once');

-------------------------------------------------------------------------------
-- Retention of partitioned models
-------------------------------------------------------------------------------

SET LOCAL TimeZone = 'UTC';
SELECT sales_kafka.create_sales_model('ret_model', partitioned => true, time_zone => 'UTC');
SELECT sales_kafka.create_sales_partitions('ret_model', (now() - interval '36 months')::date, now()::date);
-- one line in the middle of each of the last 36 months and of this one
INSERT INTO ret_model.order_lines (order_id, sold_at, product_id, quantity, unit_price)
SELECT 'o' || k, date_trunc('month', now()) - make_interval(months => k) + interval '10 days',
       'p' || (k % 3), 1, k + 1
  FROM generate_series(0, 36) k;
SELECT ok(sales_kafka.refresh_rollups('ret_model') = 37, 'the rollups hold the 37 lines');
CREATE TEMP TABLE sums_before AS
SELECT grain, bucket, sales_count, quantity, revenue FROM ret_model.rollup_total;
-- a late line in an old month, written after the last refresh
INSERT INTO ret_model.order_lines (order_id, sold_at, product_id, quantity, unit_price)
VALUES ('late', date_trunc('month', now()) - interval '30 months' + interval '1 day', 'p0', 1, 1000);

CREATE TEMP TABLE dropped AS
SELECT * FROM sales_kafka.drop_old_partitions('ret_model', keep => '24 months');
SELECT is((SELECT count(*) FROM dropped),
          (SELECT count(*) FROM generate_series(date_trunc('month', now() - interval '36 months'),
                                                now(), interval '1 month') m
            WHERE m + interval '1 month' <= now() - interval '24 months'),
          'drop_old_partitions drops each month wholly older than keep');
SELECT ok((SELECT bool_and(dropped AND to_time <= now() - interval '24 months'
                           AND to_time = from_time + interval '1 month') FROM dropped),
          'it returns each month dropped, with its bounds');
SELECT is((SELECT count(*) FROM ret_model.order_lines WHERE sold_at < now() - interval '24 months' - interval '1 month'),
          0::bigint, 'the order lines of those months are gone');
SELECT is((SELECT count(*) FROM pg_class WHERE relname IN (SELECT partition_name FROM dropped)),
          0::bigint, 'their tables are dropped');
SELECT results_eq($$SELECT grain, bucket, sales_count, quantity, revenue FROM ret_model.rollup_total
                     WHERE (grain, bucket) NOT IN (SELECT grain, bucket FROM ret_model.rollup_total
                                                    WHERE grain = 'all' OR bucket = date_trunc(CASE grain WHEN 'all' THEN 'year' ELSE grain END,
                                                                                           date_trunc('month', now()) - interval '30 months' + interval '1 day'))
                     ORDER BY 1, 2$$,
                  $$SELECT * FROM sums_before
                     WHERE (grain, bucket) NOT IN (SELECT grain, bucket FROM ret_model.rollup_total
                                                    WHERE grain = 'all' OR bucket = date_trunc(CASE grain WHEN 'all' THEN 'year' ELSE grain END,
                                                                                           date_trunc('month', now()) - interval '30 months' + interval '1 day'))
                     ORDER BY 1, 2$$,
                  'the rollups keep the sums of the months dropped');
SELECT is((SELECT (sales_count, revenue) FROM ret_model.rollup_total WHERE grain = 'all'),
          (SELECT (sales_count + 1, revenue + 1000) FROM sums_before WHERE grain = 'all'),
          'a line not yet rolled up is added to the rollups before its month goes');

SELECT is((SELECT count(*) FROM sales_kafka.drop_old_partitions('ret_model', keep => '12 months', detach_only => true)),
          12::bigint, 'detach_only detaches the next twelve months');
SELECT is((SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE c.relname = 'order_lines_' || to_char(now() - interval '13 months', 'YYYY_MM')),
          0::bigint, 'a detached month is no partition any more');
SELECT is((SELECT count(*) FROM ret_model.order_lines_default), 0::bigint,
          'the default partition is kept (and empty here)');

SELECT sales_kafka.create_sales_model('ret_flat');
SELECT throws_ok($$SELECT * FROM sales_kafka.drop_old_partitions('ret_flat', '1 month')$$, '42809',
                 'the order lines of sales model "ret_flat" are not partitioned',
                 'a model without partitions has no months to drop');
SELECT throws_ok($$SELECT * FROM sales_kafka.drop_old_partitions('ret_model', '-1 month')$$, '22023', NULL,
                 'keep must not be negative');
CREATE ROLE regress_sales_kafka_scale_other;
SET ROLE regress_sales_kafka_scale_other;
SELECT throws_ok($$SELECT * FROM sales_kafka.drop_old_partitions('ret_model', '1 month')$$, '42501', NULL,
                 'a role without the rights of the model''s owner may not drop its months');
RESET ROLE;
SELECT throws_ok($$SELECT sales_kafka.schedule_retention('ret_model', '24 months')$$, '55000',
                 'pg_cron is not installed in database "' || current_database() || '"',
                 'scheduling needs pg_cron''s database');

SELECT * FROM finish();
ROLLBACK;
