-- INSERT into a foreign table produces at commit: every column type, keys,
-- headers and partitions round-trip through the broker; a rolled-back
-- transaction or savepoint produces nothing.  Producing needs commits, so
-- this file commits and cleans up after itself instead of rolling back.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
DROP SCHEMA IF EXISTS produce_test CASCADE;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
RESET client_min_messages;
CREATE SCHEMA produce_test;
SET search_path = produce_test, public;
CREATE EXTENSION sales_kafka;
CREATE SERVER produce_kafka FOREIGN DATA WRAPPER sales_kafka;

SELECT format($$CREATE FOREIGN TABLE typed (
                  p int OPTIONS (kafka 'partition'),
                  o bigint OPTIONS (kafka 'offset'),
                  k text OPTIONS (kafka 'key'),
                  h jsonb OPTIONS (kafka 'headers'),
                  ts timestamptz OPTIONS (kafka 'timestamp'),
                  id bigint, name text, qty int, small smallint, price numeric(12,2),
                  ratio float8, in_stock bool, sold_at timestamptz, sold_on date,
                  tags text[], attrs jsonb, region text OPTIONS (json_path '$.customer.region'),
                  segment text OPTIONS (json_path '$.customer.segment'), note varchar(10))
                SERVER produce_kafka OPTIONS (topic %L)$$,
              current_setting('sk_test.topic_prefix') || 'types') \gexec
SELECT format($$CREATE FOREIGN TABLE lines (
                  p int OPTIONS (kafka 'partition'), o bigint OPTIONS (kafka 'offset'),
                  order_id int, product text, price numeric, note text)
                SERVER produce_kafka OPTIONS (topic %L, format 'csv')$$,
              current_setting('sk_test.topic_prefix') || 'csvout') \gexec
SELECT format($$CREATE FOREIGN TABLE rolled (p int OPTIONS (kafka 'partition'), v text)
                SERVER produce_kafka OPTIONS (topic %L, format 'text')$$,
              current_setting('sk_test.topic_prefix') || 'rollback') \gexec
CREATE DOMAIN positive_qty AS int CHECK (VALUE > 0);
CREATE DOMAIN doc AS jsonb;
CREATE DOMAIN moment AS timestamptz;
SELECT format($$CREATE FOREIGN TABLE domained (qty positive_qty, attrs doc, sold_at moment)
                SERVER produce_kafka OPTIONS (topic %L)$$,
              current_setting('sk_test.topic_prefix') || 'domains') \gexec
SELECT format($$CREATE FOREIGN TABLE domained_raw (message jsonb OPTIONS (kafka 'payload'))
                SERVER produce_kafka OPTIONS (topic %L)$$,
              current_setting('sk_test.topic_prefix') || 'domains') \gexec
SELECT format($$CREATE FOREIGN TABLE spread (
                  p int OPTIONS (kafka 'partition'), k text OPTIONS (kafka 'key'), v text)
                SERVER produce_kafka OPTIONS (topic %L, format 'text')$$,
              current_setting('sk_test.topic_prefix') || 'roundtrip') \gexec

CREATE TABLE expected_rows AS
SELECT * FROM (VALUES
  (0, 'k-1', '{"source": "pos", "shift": "2"}'::jsonb, '2024-05-01 10:00:00+00'::timestamptz,
   1::bigint, 'Laptop "Pro"', 2, -1::smallint, 999.99::numeric(12,2), 0.5::float8, true,
   '2024-05-01 09:59:59.123+00'::timestamptz, '2024-05-01'::date, '{a,"b c"}'::text[],
   '{"color": "grey", "sizes": [13, 15]}'::jsonb, 'West', 'Consumer', 'short'::varchar(10)),
  (0, NULL, NULL, NULL,
   2, 'Mouse, wireless', 1, NULL, 19.50, NULL, false, NULL, NULL, NULL, NULL, NULL, NULL, 'é ü ß')
) AS v(p, k, h, ts, id, name, qty, small, price, ratio, in_stock, sold_at, sold_on, tags, attrs,
       region, segment, note);

INSERT INTO typed (p, k, h, ts, id, name, qty, small, price, ratio, in_stock, sold_at, sold_on,
                   tags, attrs, region, segment, note)
SELECT * FROM expected_rows;

INSERT INTO lines (p, order_id, product, price, note)
VALUES (0, 1, 'Desk', 120.50, 'plain'), (0, 2, 'Chair, "ergonomic"', 85, NULL),
       (0, 3, 'Lamp', 9.99, E'two\nlines'), (0, 4, '', 1, '');

BEGIN;
INSERT INTO rolled VALUES (0, 'never sent');
ROLLBACK;
BEGIN;
INSERT INTO rolled VALUES (0, 'first');
SAVEPOINT s1;
INSERT INTO rolled VALUES (0, 'rolled back to savepoint');
ROLLBACK TO SAVEPOINT s1;
INSERT INTO rolled VALUES (0, 'second');
COMMIT;

INSERT INTO domained VALUES (3, '{"a": [1, 2]}', '2024-05-01 10:00:00+00');

INSERT INTO spread (p, k, v) SELECT i % 3, 'key-' || i, 'value-' || i FROM generate_series(1, 300) i;

SELECT plan(15);

SELECT results_eq(
  $$SELECT p, k, h, CASE WHEN id = 1 THEN ts END, id, name, qty, small, price, ratio, in_stock,
           sold_at, sold_on, tags, attrs, region, segment, note FROM typed ORDER BY id$$,
  $$SELECT * FROM expected_rows ORDER BY id$$,
  'every column type, the key, headers, partition and timestamp round-trip through Kafka');
SELECT results_eq($$SELECT o FROM typed ORDER BY o$$, $$VALUES (0::bigint), (1::bigint)$$,
                  'the inserted rows got offsets 0 and 1');
SELECT results_eq(
  $$SELECT order_id, product, price, note FROM lines ORDER BY order_id$$,
  $$VALUES (1, 'Desk', 120.50, 'plain'), (2, 'Chair, "ergonomic"', 85, NULL),
           (3, 'Lamp', 9.99, E'two\nlines'), (4, '', 1, '')$$,
  'CSV rows keep delimiters, quotes, line breaks, NULL and empty strings');
SELECT results_eq($$SELECT message FROM domained_raw$$,
                  $$VALUES ('{"qty": 3, "attrs": {"a": [1, 2]}, "sold_at": "2024-05-01T10:00:00+00:00"}'::jsonb)$$,
                  'columns of domain types are written as their base types: a number, JSON, a time');
SELECT results_eq($$SELECT qty, attrs, sold_at FROM domained$$,
                  $$VALUES (3::positive_qty, '{"a": [1, 2]}'::doc, '2024-05-01 10:00:00+00'::moment)$$,
                  'and read back into the same domains');
SELECT results_eq($$SELECT v FROM rolled ORDER BY v$$, $$VALUES ('first'), ('second')$$,
                  'a rolled-back transaction and a rolled-back savepoint produce nothing');
SELECT is((SELECT count(*) FROM spread), 300::bigint, '300 rows produced, 300 messages read');
SELECT results_eq($$SELECT p, count(*) FROM spread GROUP BY p ORDER BY p$$,
                  $$VALUES (0, 100::bigint), (1, 100::bigint), (2, 100::bigint)$$,
                  'the partition column decides where each message goes');
SELECT is((SELECT count(*) FROM spread WHERE v = 'value-' || substr(k, 5)), 300::bigint,
          'each message keeps its key');
SELECT results_eq(
  format('SELECT partition, high FROM sales_kafka.watermarks(%L, %L) ORDER BY partition',
         'produce_kafka', current_setting('sk_test.topic_prefix') || 'roundtrip'),
  $$VALUES (0, 100::bigint), (1, 100::bigint), (2, 100::bigint)$$,
  'the watermarks count exactly the messages produced');
SELECT is((SELECT count(*) FROM typed WHERE h IS NULL), 1::bigint, 'a row without headers reads back NULL');
SELECT ok((SELECT ts BETWEEN now() - interval '1 hour' AND now() + interval '1 minute' FROM typed WHERE id = 2),
          'a row without a timestamp gets the time it was produced');

SELECT throws_ok($$INSERT INTO spread (p, v) VALUES (-1, 'x')$$, '22003', NULL,
                 'a negative partition is refused');
SELECT throws_ok($$UPDATE spread SET v = 'x'$$, '0A000', NULL, 'UPDATE is not supported');
SELECT throws_ok($$INSERT INTO typed (h) VALUES ('[1, 2]')$$, '22023', NULL,
                 'headers must be a JSON object');

SELECT * FROM finish();
SET client_min_messages = warning;
DROP SCHEMA produce_test CASCADE;
DROP EXTENSION sales_kafka CASCADE;
