-- sales_kafka.replay: rows of a query produced through a Kafka foreign
-- table in small transactions, at a rate or as fast as possible, with
-- progress kept per role so that a replay that stopped goes on where it
-- stopped.  The procedure commits, so this file calls it at the top level
-- (pgTAP's throws_ok runs its statement in a function, where a COMMIT is an
-- error: it checks only what fails before the first commit) and cleans up
-- after itself.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
DROP SCHEMA IF EXISTS replay_test CASCADE;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
DROP ROLE IF EXISTS regress_sales_kafka_replayer;
DROP ROLE IF EXISTS regress_sales_kafka_bystander;
RESET client_min_messages;
CREATE SCHEMA replay_test;
SET search_path = replay_test, public;
CREATE EXTENSION sales_kafka;
CREATE SERVER replay_kafka FOREIGN DATA WRAPPER sales_kafka;

\ir helpers.psql

SELECT format($$CREATE FOREIGN TABLE out_sales (
                  p int OPTIONS (kafka 'partition'),
                  order_id text, line int, product text, amount numeric(12,2))
                SERVER replay_kafka OPTIONS (topic %L)$$, topic('replay_sales')) \gexec
SELECT format($$CREATE FOREIGN TABLE in_sales (
                  p int OPTIONS (kafka 'partition'), o bigint OPTIONS (kafka 'offset'),
                  order_id text, line int, product text, amount numeric(12,2))
                SERVER replay_kafka OPTIONS (topic %L)$$, topic('replay_sales')) \gexec
SELECT format($$CREATE FOREIGN TABLE resume_out (id int, v varchar(3))
                SERVER replay_kafka OPTIONS (topic %L)$$, topic('replay_resume')) \gexec

-- what \copy staging FROM 'file.csv' (FORMAT csv, HEADER) leaves: 25 lines
-- of 10 orders
CREATE TABLE staging (row_id int PRIMARY KEY, order_id text, line int,
                      product text, amount numeric(12,2));
INSERT INTO staging
SELECT i, 'CA-' || (i + 2) / 3, 1 + (i + 2) % 3, 'P' || i % 7, round(i * 3.25, 2)
  FROM generate_series(1, 25) AS i;
CREATE TABLE expected_resume AS SELECT i AS id, 'v' || i AS v FROM generate_series(1, 20) AS i;
-- row 11 does not fit the foreign table's varchar(3) until it is fixed
CREATE TABLE to_replay AS SELECT * FROM expected_resume;
UPDATE to_replay SET v = 'too long' WHERE id = 11;

CREATE ROLE regress_sales_kafka_replayer;
CREATE ROLE regress_sales_kafka_bystander;
GRANT USAGE ON SCHEMA replay_test TO regress_sales_kafka_replayer, regress_sales_kafka_bystander;
GRANT SELECT ON staging TO regress_sales_kafka_replayer, regress_sales_kafka_bystander;
GRANT INSERT ON out_sales TO regress_sales_kafka_replayer;

SELECT plan(15);

-- the whole staging table, 4 rows a transaction, partition by order
CALL sales_kafka.replay('superstore',
    $$SELECT (row_id % 2) AS p, order_id, line, product, amount FROM staging ORDER BY row_id$$,
    'out_sales', rows_per_commit => 4);
SELECT results_eq(
    $$SELECT p, order_id, line, product, amount FROM in_sales ORDER BY order_id, line$$,
    $$SELECT row_id % 2, order_id, line, product, amount FROM staging ORDER BY order_id, line$$,
    'every row of the query is one message, in the partition the query gives');
SELECT results_eq(
    $$SELECT rows_total, rows_done, finished_at IS NOT NULL FROM sales_kafka.replay_progress
       WHERE name = 'superstore'$$,
    $$VALUES (25::bigint, 25::bigint, true)$$,
    'the progress says all 25 rows are done');

CALL sales_kafka.replay('superstore',
    $$SELECT (row_id % 2) AS p, order_id, line, product, amount FROM staging ORDER BY row_id$$,
    'out_sales', rows_per_commit => 4);
SELECT is((SELECT count(*) FROM in_sales), 25::bigint,
          'calling a finished replay again produces nothing');

-- at a rate: the sleeping path (no timing is asserted)
CALL sales_kafka.replay('paced', $$SELECT order_id, line FROM staging WHERE row_id <= 6 ORDER BY row_id$$,
    'out_sales', rows_per_second => 200);
SELECT is((SELECT count(*) FROM in_sales), 31::bigint,
          'a replay at 200 rows per second produces its rows');

-- a replay that fails at row 11 (3 rows a transaction): rows 1..9 are
-- committed, the failed transaction produced nothing; called again once the
-- row is fixed, it goes on from row 10
\set ON_ERROR_STOP 0
CALL sales_kafka.replay('resumed',
    'SELECT id, v FROM to_replay ORDER BY id',
    'resume_out', rows_per_commit => 3);
\set ON_ERROR_STOP 1
SELECT is(:'LAST_ERROR_SQLSTATE'::text, '22001', 'the replay stops at the row that does not fit (22001)');
SELECT results_eq(
    $$SELECT rows_done, finished_at IS NULL FROM sales_kafka.replay_progress WHERE name = 'resumed'$$,
    $$VALUES (9::bigint, true)$$,
    'its progress holds the three transactions that committed');
SELECT format($$CREATE FOREIGN TABLE resume_in (id int, v text)
                SERVER replay_kafka OPTIONS (topic %L)$$, topic('replay_resume')) \gexec
SELECT is((SELECT count(*) FROM resume_in), 9::bigint,
          'and the topic holds their 9 rows, nothing of the failed one');
UPDATE to_replay SET v = 'v11' WHERE id = 11;
CALL sales_kafka.replay('resumed',
    'SELECT id, v FROM to_replay ORDER BY id',
    'resume_out', rows_per_commit => 3);
SELECT bag_eq($$SELECT id, v FROM resume_in$$, $$SELECT id, v FROM expected_resume$$,
              'called again, it goes on where it stopped: every row once');

-- refusals, before anything is written
SELECT throws_ok($$CALL sales_kafka.replay('x', 'SELECT 1 AS id', 'staging')$$,
                 '42809', NULL, 'the target must be a sales_kafka foreign table');
SELECT throws_ok($$CALL sales_kafka.replay('x', 'SELECT 1 AS nope', 'resume_out')$$,
                 '42703', 'column "nope" of the query is not a column of foreign table resume_out',
                 'every column of the query must be a column of the target');
SELECT throws_ok($$CALL sales_kafka.replay('x', 'SELECT 1 AS id', 'resume_out', rows_per_second => 0)$$,
                 '22023', NULL, 'rows_per_second must be positive');
SELECT throws_ok($$CALL sales_kafka.replay('superstore', 'SELECT 1 AS id', 'resume_out')$$,
                 '22023', 'replay "superstore" goes to foreign table out_sales, not resume_out',
                 'a replay name keeps its target');

-- roles: each has its own replays and progress
SET ROLE regress_sales_kafka_bystander;
SELECT throws_ok($$CALL sales_kafka.replay('mine', 'SELECT order_id FROM staging', 'out_sales')$$,
                 '42501', NULL, 'a role without INSERT on the foreign table cannot replay into it');
RESET ROLE;
SET ROLE regress_sales_kafka_replayer;
CALL sales_kafka.replay('superstore', $$SELECT order_id, line FROM staging WHERE row_id > 20 ORDER BY row_id$$,
    'out_sales');
SELECT results_eq($$SELECT name, rows_done FROM sales_kafka.replay_progress$$,
                  $$VALUES ('superstore', 5::bigint)$$,
                  'a role that is not superuser replays under a name another role uses, and sees only its own progress');
RESET ROLE;
SET ROLE regress_sales_kafka_bystander;
SELECT is((SELECT count(*) FROM sales_kafka.replay_progress), 0::bigint,
          'another role sees none of it');
RESET ROLE;

SELECT * FROM finish();

SET client_min_messages = warning;
DROP SCHEMA replay_test CASCADE;
DROP EXTENSION sales_kafka CASCADE;
DROP ROLE regress_sales_kafka_replayer;
DROP ROLE regress_sales_kafka_bystander;
