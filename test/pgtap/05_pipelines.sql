-- Ingest pipelines against the broker: every message ends up exactly once
-- in the target or in the dead letters; upserts and tombstones; several
-- pipelines on one topic; stop, start, reset, drop; the worker's rights are
-- its owner's.  Pipelines commit in their own transactions, so this file
-- commits and cleans up after itself, and waits for the workers by polling
-- with a bounded timeout.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
DROP SCHEMA IF EXISTS pipe_test CASCADE;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
DROP ROLE IF EXISTS pipe_owner;
DROP ROLE IF EXISTS pipe_other;
RESET client_min_messages;
CREATE SCHEMA pipe_test;
SET search_path = pipe_test, public;
CREATE EXTENSION sales_kafka;
CREATE SERVER pipe_kafka FOREIGN DATA WRAPPER sales_kafka;

\ir helpers.psql

SELECT format($$CREATE FOREIGN TABLE sales_src (
                  sale_id bigint, product text, quantity int, price numeric,
                  sold_at timestamptz,
                  "partition" int OPTIONS (kafka 'partition'),
                  "offset" bigint OPTIONS (kafka 'offset'))
                SERVER pipe_kafka OPTIONS (topic %L)$$, topic('pipe_sales')) \gexec
SELECT format($$CREATE FOREIGN TABLE sales_raw (k text OPTIONS (kafka 'key'), v text)
                SERVER pipe_kafka OPTIONS (topic %L, format 'text')$$, topic('pipe_sales')) \gexec
SELECT format($$CREATE FOREIGN TABLE sales_bytes (k text OPTIONS (kafka 'key'), v bytea)
                SERVER pipe_kafka OPTIONS (topic %L, format 'bytea')$$, topic('pipe_sales')) \gexec
SELECT format($$CREATE FOREIGN TABLE customers_src (
                  customer_id text OPTIONS (kafka 'key'), name text, segment text)
                SERVER pipe_kafka OPTIONS (topic %L)$$, topic('pipe_customers')) \gexec
SELECT format($$CREATE FOREIGN TABLE customers_tombstones (
                  customer_id text OPTIONS (kafka 'key'))
                SERVER pipe_kafka OPTIONS (topic %L)$$, topic('pipe_customers')) \gexec
SELECT format($$CREATE FOREIGN TABLE replay_src (n int, k text OPTIONS (kafka 'key'),
                  "offset" bigint OPTIONS (kafka 'offset'))
                SERVER pipe_kafka OPTIONS (topic %L)$$, topic('pipe_replay')) \gexec

-- targets: one with a foreign key (written by SQL), one plain (bulk path)
CREATE TABLE products (product text PRIMARY KEY);
INSERT INTO products SELECT 'p' || g FROM generate_series(0, 9) g;
CREATE TABLE sales (
  sale_id bigint NOT NULL,
  product text NOT NULL REFERENCES products,
  quantity int CHECK (quantity > 0),
  price numeric(12,2),
  sold_at timestamptz,
  "partition" int, "offset" bigint,
  UNIQUE ("partition", "offset"));
CREATE TABLE sales_copy (
  sale_id bigint NOT NULL,
  product text NOT NULL,
  quantity int CHECK (quantity > 0),
  price numeric(12,2),
  "partition" int, "offset" bigint,
  loaded_at timestamptz DEFAULT now(),
  UNIQUE ("partition", "offset"));
CREATE INDEX ON sales_copy (product);
CREATE TABLE customers (customer_id text PRIMARY KEY, name text, segment text);
CREATE TABLE replayed (n int, "offset" bigint);

SELECT plan(53);

-- the catalog
SELECT has_table('sales_kafka', 'pipeline', 'the pipeline catalog exists');
SELECT has_table('sales_kafka', 'pipeline_offset', 'the offsets table exists');
SELECT has_table('sales_kafka', 'dead_letter', 'the dead letter table exists');
SELECT has_view('sales_kafka', 'pipeline_status', 'the status view exists');
SELECT has_view('sales_kafka', 'pipeline_partitions', 'the per-partition view exists');
SELECT set_eq($$SELECT unnest(extconfig)::regclass::text FROM pg_extension WHERE extname = 'sales_kafka'$$,
              ARRAY['sales_kafka.pipeline', 'sales_kafka.pipeline_id_seq', 'sales_kafka.pipeline_offset',
                    'sales_kafka.dead_letter', 'sales_kafka.dead_letter_id_seq'],
              'pg_dump dumps the pipelines, their offsets and the dead letters');

-- create-time checks
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('x', 'products', 'sales')$$,
                 '42809', NULL, 'the source must be a sales_kafka foreign table');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('x', 'sales_src', 'sales_src')$$,
                 '42809', NULL, 'the target must be a table');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('x', 'sales_src', 'sales', mode => 'merge')$$,
                 '22023', 'invalid pipeline mode "merge"', 'the mode is checked');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('x', 'sales_src', 'sales', batch_size => 0)$$,
                 '22023', NULL, 'the batch size is checked');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('x', 'sales_src', 'sales', start_at => 'tomorrowish')$$,
                 '22007', NULL, 'start_at is earliest, latest or a time');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('x', 'customers_src', 'sales')$$,
                 '42703', NULL, 'a NOT NULL target column needs a source column or a default');
CREATE TABLE wrong_type (sale_id int, product text);
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('x', 'sales_src', 'wrong_type')$$,
                 '42804', 'column "sale_id" has type bigint in foreign table "sales_src" but type integer in table "wrong_type"',
                 'a type mismatch is an error at create time');
CREATE TABLE no_key (customer_id text, name text);
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('x', 'customers_src', 'no_key', mode => 'upsert')$$,
                 '42P17', 'table "no_key" has no primary key', 'upsert needs a primary key');
SELECT throws_ok($$SELECT sales_kafka.start_pipeline('nope')$$,
                 '42704', 'pipeline "nope" does not exist', 'an unknown pipeline is an error');

-- two pipelines on one topic, each with its own offsets
SELECT lives_ok($$SELECT sales_kafka.create_pipeline('pt_sales', 'sales_src', 'sales', batch_size => 500)$$,
                'an append pipeline is created');
SELECT lives_ok($$SELECT sales_kafka.create_pipeline('pt_copy', 'sales_src', 'sales_copy')$$,
                'a second pipeline reads the same topic');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('pt_copy', 'sales_src', 'sales_copy')$$,
                 '42710', 'pipeline "pt_copy" already exists', 'names are unique');
SELECT sales_kafka.start_pipeline('pt_sales');
SELECT sales_kafka.start_pipeline('pt_copy');

-- 2000 good sales, then every kind of bad message among good ones
INSERT INTO sales_src (sale_id, product, quantity, price, sold_at)
SELECT g, 'p' || g % 10, 1 + g % 5, g * 0.25, '2024-05-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 2000) g;
INSERT INTO sales_raw (k, v) VALUES
  ('b1', '{"sale_id": 3001, "product": "p1", "quantity": 2'),                 -- malformed JSON
  ('b2', '{"sale_id": "x3002", "product": "p1", "quantity": 2}'),             -- wrong type
  ('b3', '{"sale_id": 3003, "product": "p1", "quantity": 9999999999}'),       -- out of int range
  ('b4', '{"sale_id": 3004, "product": "p1", "quantity": 1, "price": 1e20}'), -- numeric(12,2) overflow
  ('b5', '{"sale_id": 3005, "product": "p1", "quantity": 0}'),                -- CHECK
  ('b6', '{"sale_id": 3006, "quantity": 1}'),                                 -- NOT NULL
  ('b7', '{"sale_id": 3007, "product": "unknown", "quantity": 1}'),           -- foreign key (sales only)
  ('b8', ''),                                                                 -- empty
  ('g1', '{"sale_id": 3009, "product": "p2", "quantity": 3, "extra": [1, {"a": 2}]}'),
  ('g2', '{"sale_id": 3010, "product": "p3", "quantity": 1, "price": 19.999}');
-- bytes that are not UTF-8 (a Latin-1 producer), and a NUL byte
INSERT INTO sales_bytes (k, v) VALUES
  ('b9', convert_to('{"sale_id": 3012, "product": "caf' || chr(233) || '", "quantity": 1}', 'LATIN1')),
  ('b10', '\x7b2273616c655f6964223a20333031332c202270726f64756374223a20227000222c20227175616e74697479223a20317d');
-- a 900 kB product name: a fine row for sales, too big for sales_copy's
-- index; under a stock broker's default message.max.bytes (1 MB)
INSERT INTO sales_raw (k, v)
SELECT 'big', format('{"sale_id": 3011, "product": "%s", "quantity": 1}', 'huge' || repeat('x', 900000));

SELECT ok(wait_for($$SELECT (SELECT count(*) FROM sales) +
                            (SELECT count(*) FROM sales_kafka.dead_letter WHERE pipeline = 'pt_sales') >= 2013
                        AND (SELECT count(*) FROM sales_copy) +
                            (SELECT count(*) FROM sales_kafka.dead_letter WHERE pipeline = 'pt_copy') >= 2013$$),
          'both pipelines account for every message');
SELECT is((SELECT count(*) FROM sales), 2002::bigint,
          'sales got the 2000 sales and the two good messages among the bad');
SELECT is((SELECT count(*) FROM sales_kafka.dead_letter WHERE pipeline = 'pt_sales'), 11::bigint,
          'the eleven bad messages of sales are dead letters (the huge one fails its foreign key)');
SELECT set_eq($$SELECT convert_from(key, 'UTF8'), sqlstate FROM sales_kafka.dead_letter WHERE pipeline = 'pt_sales'$$,
              $$VALUES ('b1', '22P02'), ('b2', '22P02'), ('b3', '22003'), ('b4', '22003'), ('b5', '23514'),
                       ('b6', '23502'), ('b7', '23503'), ('b8', '22P02'), ('b9', '22021'), ('b10', '22021'),
                       ('big', '23503')$$,
              'each bad message has the SQLSTATE of its fault');
SELECT is((SELECT count(*) FROM sales_copy), 2003::bigint,
          'sales_copy (no foreign key) also took the unknown product');
SELECT set_eq($$SELECT convert_from(key, 'UTF8'), sqlstate FROM sales_kafka.dead_letter WHERE pipeline = 'pt_copy'$$,
              $$VALUES ('b1', '22P02'), ('b2', '22P02'), ('b3', '22003'), ('b4', '22003'), ('b5', '23514'),
                       ('b6', '23502'), ('b8', '22P02'), ('b9', '22021'), ('b10', '22021'), ('big', '54000')$$,
              'the index row too large for sales_copy is a dead letter there');
SELECT is((SELECT count(*) FROM (SELECT "partition", "offset" FROM sales
                                 UNION ALL
                                 SELECT "partition", "offset" FROM sales_kafka.dead_letter WHERE pipeline = 'pt_sales') u),
          (SELECT sum(high) FROM sales_kafka.watermarks('pipe_kafka', topic('pipe_sales')))::bigint,
          'rows plus dead letters are exactly the messages of the topic');
SELECT is((SELECT count(DISTINCT ("partition", "offset")) FROM (SELECT "partition", "offset" FROM sales
                                 UNION ALL
                                 SELECT "partition", "offset" FROM sales_kafka.dead_letter WHERE pipeline = 'pt_sales') u),
          (SELECT sum(high) FROM sales_kafka.watermarks('pipe_kafka', topic('pipe_sales')))::bigint,
          'and none of them twice');
SELECT is((SELECT price FROM sales WHERE sale_id = 3010), 20.00::numeric,
          'values take the target column''s typmod');
SELECT ok((SELECT error LIKE '%not valid JSON%' AND payload IS NOT NULL AND headers IS NULL
             FROM sales_kafka.dead_letter WHERE pipeline = 'pt_sales' AND key = 'b1'),
          'a dead letter keeps the message and says what is wrong');
SELECT is((SELECT sum(committed_offset) FROM sales_kafka.pipeline_partitions WHERE pipeline = 'pt_copy')::bigint,
          (SELECT sum(high) FROM sales_kafka.watermarks('pipe_kafka', topic('pipe_sales')))::bigint,
          'the committed offsets are at the end of every partition');
SELECT ok(wait_for($$SELECT state = 'running' AND lag = 0 AND dead_letters = 11 AND rows_written = 2002
                          AND partitions = 4 AND cardinality(worker_pids) = 1
                     FROM sales_kafka.pipeline_status WHERE pipeline = 'pt_sales'$$),
          'pipeline_status shows the running pipeline and its figures');
SELECT is((SELECT backend_type FROM pg_stat_activity
            WHERE pid = (SELECT worker_pids[1] FROM sales_kafka.pipeline_status WHERE pipeline = 'pt_sales')),
          'sales_kafka pipeline', 'the worker shows in pg_stat_activity');

-- stop: nothing more is written; start: the rest is written, once
SELECT sales_kafka.stop_pipeline('pt_copy');
SELECT is((SELECT state FROM sales_kafka.pipeline_status WHERE pipeline = 'pt_copy'), 'stopped',
          'a stopped pipeline says so');
INSERT INTO sales_src (sale_id, product, quantity) SELECT g, 'p1', 1 FROM generate_series(5001, 5100) g;
SELECT ok(wait_for($$SELECT count(*) = 2102 FROM sales$$), 'the running pipeline goes on');
SELECT is((SELECT count(*) FROM sales_copy), 2003::bigint, 'the stopped one does not');
SELECT sales_kafka.start_pipeline('pt_copy');
SELECT ok(wait_for($$SELECT count(*) = 2103 FROM sales_copy$$), 'started again, it catches up');
SELECT is((SELECT count(DISTINCT ("partition", "offset")) FROM sales_copy), 2103::bigint,
          'without writing anything twice');

SET stats_fetch_consistency = none;	-- wait_for polls in one transaction
SELECT ok(wait_for($$SELECT n_tup_ins >= 2103 FROM pg_stat_user_tables WHERE relname = 'sales_copy'$$),
          'the worker reports table statistics, so autovacuum sees its inserts');
SELECT throws_ok($$SELECT * FROM sales_kafka._pipeline_rows() AS b(o int, t bool, x text)$$,
                 '55000', NULL, 'only a pipeline worker reads its batch');

-- upsert: the last message per key wins, tombstones delete
SELECT sales_kafka.create_pipeline('pt_customers', 'customers_src', 'customers',
                                   mode => 'upsert', batch_size => 7);
SELECT sales_kafka.start_pipeline('pt_customers');
INSERT INTO customers_src SELECT 'c' || g % 20, 'name ' || g, CASE WHEN g % 3 = 0 THEN 'Consumer' ELSE 'Corporate' END
  FROM generate_series(1, 200) g;
INSERT INTO customers_tombstones VALUES ('c3'), ('c4'), ('nobody'), (NULL);
INSERT INTO customers_src VALUES ('c4', 'back again', 'Home Office');
SELECT ok(wait_for($$SELECT sum(lag) = 0 AND sum(committed_offset) = 205
                     FROM sales_kafka.pipeline_partitions WHERE pipeline = 'pt_customers'$$),
          'the upsert pipeline reads every message');
SELECT results_eq($$SELECT key IS NULL, payload IS NULL, sqlstate FROM sales_kafka.dead_letter
                     WHERE pipeline = 'pt_customers'$$,
                  $$VALUES (true, true, '23502')$$,
                  'a tombstone without a key deletes nothing: it is a dead letter (23502)');
SELECT set_eq($$SELECT customer_id, name, segment FROM customers$$,
              $$SELECT 'c' || k AS customer_id, 'name ' || (180 + k) AS name, CASE WHEN (180 + k) % 3 = 0 THEN 'Consumer' ELSE 'Corporate' END AS segment
                  FROM generate_series(0, 19) k WHERE k NOT IN (0, 3, 4)
                UNION ALL VALUES ('c0', 'name 200', 'Corporate'), ('c4', 'back again', 'Home Office')$$,
              'each customer has its last values; a tombstone deleted c3');

-- reset: replay from the earliest offsets (here into an emptied table)
SELECT sales_kafka.create_pipeline('pt_replay', 'replay_src', 'replayed');
SELECT sales_kafka.start_pipeline('pt_replay');
-- keys spread the messages over both partitions
INSERT INTO replay_src (n, k) SELECT g, g::text FROM generate_series(1, 100) g;
SELECT ok(wait_for($$SELECT count(*) = 100 FROM replayed$$), 'the replay pipeline read its topic');
TRUNCATE replayed;
SELECT sales_kafka.reset_pipeline('pt_replay', 'earliest');
SELECT ok(wait_for($$SELECT count(*) = 100 FROM replayed$$), 'reset to earliest replays every message');
SELECT sales_kafka.reset_pipeline('pt_replay', '{"0": 10, "1": 10}'::jsonb);
SELECT ok(wait_for($$SELECT count(*) = 180 FROM replayed$$), 'reset to given offsets replays from there');
SELECT is((SELECT count(*) FROM replayed WHERE "offset" < 10), 20::bigint,
          'and nothing before them');

-- created and started in one transaction: the workers start at commit;
-- a trigger's RAISE EXCEPTION sends its row to the dead letters
CREATE TABLE checked (n int, "offset" bigint);
CREATE FUNCTION refuse_13() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.n = 13 THEN RAISE EXCEPTION 'unlucky row'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse_13 BEFORE INSERT ON checked FOR EACH ROW EXECUTE FUNCTION refuse_13();
BEGIN;
SELECT sales_kafka.create_pipeline('pt_checked', 'replay_src', 'checked');
SELECT sales_kafka.start_pipeline('pt_checked');
COMMIT;
SELECT ok(wait_for($$SELECT count(*) = 99 FROM checked$$),
          'a pipeline created and started in one transaction runs');
SELECT is((SELECT sqlstate || ' ' || error FROM sales_kafka.dead_letter WHERE pipeline = 'pt_checked'),
          'P0001 unlucky row', 'a row a trigger refuses is a dead letter');

-- the worker runs with its owner's rights
CREATE ROLE pipe_owner;
CREATE ROLE pipe_other;
GRANT USAGE ON SCHEMA pipe_test TO pipe_owner, pipe_other;
GRANT USAGE ON FOREIGN SERVER pipe_kafka TO pipe_owner;
CREATE USER MAPPING FOR pipe_owner SERVER pipe_kafka;
GRANT SELECT ON replay_src TO pipe_owner;
CREATE TABLE owned (n int);
GRANT INSERT ON owned TO pipe_owner;
SET ROLE pipe_other;
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('pt_owned', 'replay_src', 'owned')$$,
                 '42501', NULL, 'creating a pipeline needs SELECT on the source');
RESET ROLE;
SET ROLE pipe_owner;
SELECT sales_kafka.create_pipeline('pt_owned', 'replay_src', 'owned');
SELECT sales_kafka.start_pipeline('pt_owned');
RESET ROLE;
SET ROLE pipe_other;
SELECT throws_ok($$SELECT sales_kafka.stop_pipeline('pt_owned')$$,
                 '42501', 'must be owner of pipeline "pt_owned"', 'only the owner changes a pipeline');
RESET ROLE;
SELECT ok(wait_for($$SELECT count(*) = 100 FROM owned$$), 'a non-superuser''s pipeline runs');
REVOKE INSERT ON owned FROM pipe_owner;
INSERT INTO replay_src (n, k) VALUES (1, 'one more');
SELECT ok(wait_for($$SELECT state = 'failed' AND last_error LIKE 'permission denied for table owned%'
                     FROM sales_kafka.pipeline_status WHERE pipeline = 'pt_owned'$$),
          'a revoked privilege stops the pipeline with the reason');
SELECT is((SELECT count(*) FROM owned), 100::bigint, 'and nothing is written after it');

-- drop: the pipeline and its offsets go, the dead letters stay
SELECT id AS pt_sales_id FROM sales_kafka.pipeline WHERE name = 'pt_sales' \gset
SELECT sales_kafka.drop_pipeline('pt_sales');
SELECT is((SELECT count(*) FROM sales_kafka.pipeline_offset WHERE pipeline_id = :pt_sales_id), 0::bigint,
          'dropping a pipeline drops its offsets');

SELECT * FROM finish();
SET client_min_messages = warning;
SELECT sales_kafka.drop_pipeline(name) FROM sales_kafka.pipeline;
DROP SCHEMA pipe_test CASCADE;
DROP EXTENSION sales_kafka CASCADE;
DROP OWNED BY pipe_owner, pipe_other;
DROP ROLE pipe_owner;
DROP ROLE pipe_other;
