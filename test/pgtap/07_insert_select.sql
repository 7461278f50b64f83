-- INSERT ... SELECT from a Kafka foreign table into a table is written in
-- batches, as COPY writes (src/insert_select.c): the rows, their index
-- entries, defaults, generated columns, constraints and the row count must
-- be exactly what the executor's row-by-row INSERT gives.  Producing needs
-- commits, so this file commits and cleans up after itself.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS amcheck;
DROP SCHEMA IF EXISTS insert_test CASCADE;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
RESET client_min_messages;
CREATE SCHEMA insert_test;
SET search_path = insert_test, public;
CREATE EXTENSION sales_kafka;
CREATE SERVER insert_kafka FOREIGN DATA WRAPPER sales_kafka;

SELECT format($$CREATE FOREIGN TABLE sale_topic (
                  p int OPTIONS (kafka 'partition'), o bigint OPTIONS (kafka 'offset'),
                  id bigint, name text, qty int, price numeric(12,2), note text)
                SERVER insert_kafka OPTIONS (topic %L)$$,
              current_setting('sk_test.topic_prefix') || 'insert_select') \gexec

-- 2,500 messages (three writes of 1,000 rows), every 500th with a note
-- long enough to be toasted
INSERT INTO sale_topic (id, name, qty, price, note)
SELECT i, 'product ' || (i % 37), 1 + i % 5, (i % 1000) + 0.99,
       CASE WHEN i % 500 = 0 THEN repeat('n' || i, 1000) END
  FROM generate_series(1, 2500) i;

SELECT plan(43);

-- the target: an index, a primary key, NOT NULL, CHECK, a default, a
-- stored generated column and a dropped column
CREATE TABLE sale (id bigint PRIMARY KEY, gone int, name text NOT NULL,
                   qty int CHECK (qty > 0), price numeric(12,2), note text,
                   total numeric GENERATED ALWAYS AS (qty * price) STORED,
                   loaded text DEFAULT 'fdw');
ALTER TABLE sale DROP COLUMN gone;
CREATE INDEX sale_name ON sale (name);
CREATE TABLE sale_rowwise (LIKE sale INCLUDING ALL);

-- row_count(sql): what the statement reports, as PL/pgSQL sees it
CREATE FUNCTION row_count(sql text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE sql;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
-- uses_bulk(sql): whether the statement is written in batches
CREATE FUNCTION uses_bulk(sql text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE line text; found boolean := false;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || sql LOOP
    found := found OR line LIKE '%SalesKafkaInsert%';
  END LOOP;
  RETURN found;
END $$;

SELECT ok(uses_bulk('INSERT INTO sale (id, name, qty, price, note) SELECT id, name, qty, price, note FROM sale_topic'),
          'INSERT ... SELECT from the topic is written in batches');
SELECT is(row_count('INSERT INTO sale (id, name, qty, price, note) SELECT id, name, qty, price, note FROM sale_topic'),
          2500::bigint, 'it reports every row it wrote');
SET sales_kafka.bulk_insert = off;
SELECT ok(NOT uses_bulk('INSERT INTO sale_rowwise (id, name, qty, price, note) SELECT id, name, qty, price, note FROM sale_topic'),
          'with sales_kafka.bulk_insert off, row by row');
SELECT is(row_count('INSERT INTO sale_rowwise (id, name, qty, price, note) SELECT id, name, qty, price, note FROM sale_topic'),
          2500::bigint, 'row by row writes the same number of rows');
RESET sales_kafka.bulk_insert;

SELECT is_empty($$SELECT * FROM sale EXCEPT SELECT * FROM sale_rowwise$$,
                'every row written in batches is a row the executor writes');
SELECT is_empty($$SELECT * FROM sale_rowwise EXCEPT SELECT * FROM sale$$,
                'and the other way round');
SELECT is((SELECT count(*) FROM sale WHERE total = qty * price AND loaded = 'fdw'), 2500::bigint,
          'generated column and default filled in every row');
SELECT is((SELECT count(*) FROM sale WHERE length(note) > 2000), 5::bigint,
          'long notes are stored (toasted) and read back whole');
SELECT is((SELECT sum(length(note)) FROM sale), (SELECT sum(length(note)) FROM sale_rowwise),
          'long notes are equal to the row-by-row ones');
SELECT lives_ok($$SELECT bt_index_check('insert_test.sale_pkey', true)$$,
                'the primary key has an entry for every row (amcheck heapallindexed)');
SELECT lives_ok($$SELECT bt_index_check('insert_test.sale_name', true)$$,
                'so has the other index');
SELECT is((SELECT count(*) FROM sale WHERE name = 'product 5'), 68::bigint,
          'an index scan finds the rows');

-- the entries of plain btree indexes wait in a sort and go in in key
-- order, several times in one statement when maintenance_work_mem (here
-- its minimum) fills up; the other indexes get theirs with each write.
-- Every kind must end up with exactly one entry per row it covers.
CREATE TABLE indexed (id bigint, name text, qty int, price numeric(12,2));
CREATE INDEX indexed_name ON indexed (name);
CREATE INDEX indexed_cheap ON indexed (price) WHERE qty > 2;
CREATE INDEX indexed_lower ON indexed (lower(name));
CREATE INDEX indexed_qty_id ON indexed (qty DESC, id NULLS FIRST) INCLUDE (price);
CREATE UNIQUE INDEX indexed_id ON indexed (id);
CREATE INDEX indexed_hash ON indexed USING hash (qty);
SET maintenance_work_mem = '1MB';
SELECT ok(uses_bulk('INSERT INTO indexed SELECT t.id + 10000 * g, t.name, t.qty, t.price FROM sale_topic t, generate_series(0, 19) g'),
          'a table with btree, partial, expression, unique and hash indexes is written in batches');
SELECT is(row_count($$INSERT INTO indexed
                        SELECT t.id + 10000 * g, t.name, t.qty, t.price FROM sale_topic t, generate_series(0, 19) g
                        UNION ALL SELECT NULL, name, qty, price FROM sale_topic WHERE id <= 100$$),
          50100::bigint, '50,100 rows, with sorted index entries written several times');
SELECT lives_ok($$SELECT bt_index_check('insert_test.indexed_name', true)$$,
                'plain btree: an entry for every row, in order (amcheck heapallindexed)');
SELECT lives_ok($$SELECT bt_index_check('insert_test.indexed_cheap', true)$$,
                'partial btree: an entry for every row it covers');
SELECT lives_ok($$SELECT bt_index_check('insert_test.indexed_lower', true)$$,
                'expression btree: an entry for every row');
SELECT lives_ok($$SELECT bt_index_check('insert_test.indexed_qty_id', true)$$,
                'two-column btree with DESC, NULLS FIRST (NULL ids) and INCLUDE: an entry for every row');
SELECT lives_ok($$SELECT bt_index_check('insert_test.indexed_id', true)$$,
                'unique btree: an entry for every row');
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT is((SELECT count(*) FROM indexed WHERE name = 'product 5'),
          (SELECT 20 * count(*) + count(*) FILTER (WHERE id <= 100) FROM sale WHERE name = 'product 5'),
          'with index scans only, name = finds every row');
SELECT is((SELECT count(*) FROM indexed WHERE qty > 2 AND price < 100),
          (SELECT 20 * count(*) + count(*) FILTER (WHERE id <= 100) FROM sale WHERE qty > 2 AND price < 100),
          'so do qty > 2 AND price < 100');
SELECT is((SELECT count(*) FROM indexed WHERE lower(name) = 'product 5'),
          (SELECT 20 * count(*) + count(*) FILTER (WHERE id <= 100) FROM sale WHERE name = 'product 5'),
          'lower(name) =');
SELECT is((SELECT count(*) FROM indexed WHERE qty = 3 AND id IS NULL),
          (SELECT count(*) FROM sale WHERE qty = 3 AND id <= 100),
          'and qty = with id IS NULL');
RESET enable_seqscan;
RESET enable_bitmapscan;
-- a duplicate key as the last row, after sorted entries were written
SELECT throws_ok($$INSERT INTO indexed
                     SELECT t.id + 10000 * g, t.name, t.qty, t.price FROM sale_topic t, generate_series(20, 39) g
                     UNION ALL SELECT 10, 'late', 1, 1$$,
                 '23505', NULL, 'a duplicate key after sorted writes: unique_violation');
RESET maintenance_work_mem;
SELECT is((SELECT count(*) FROM indexed), 50100::bigint, 'and the failed statement left no row');

-- a CHECK constraint calling a volatile function runs between rows: it
-- could look through an index, so no entry waits for a sort then
CREATE TABLE checked (id bigint, name text);
CREATE INDEX checked_name ON checked (name);
CREATE FUNCTION count_by_index(n text) RETURNS bigint LANGUAGE plpgsql VOLATILE
  SET enable_seqscan = off SET enable_bitmapscan = off
  AS $$BEGIN RETURN (SELECT count(*) FROM insert_test.checked WHERE name = n); END$$;
CREATE FUNCTION count_by_heap(n text) RETURNS bigint LANGUAGE plpgsql VOLATILE
  SET enable_indexscan = off SET enable_indexonlyscan = off SET enable_bitmapscan = off
  AS $$BEGIN RETURN (SELECT count(*) FROM insert_test.checked WHERE name = n); END$$;
ALTER TABLE checked ADD CHECK (count_by_index(name) = count_by_heap(name));
SELECT ok(uses_bulk('INSERT INTO checked SELECT id, name FROM sale_topic'),
          'a table with a volatile CHECK is written in batches');
SELECT is(row_count('INSERT INTO checked SELECT id, name FROM sale_topic'), 2500::bigint,
          'and its index has the rows of earlier writes whenever the CHECK looks');

-- a broken rule fails the statement and leaves nothing behind, even after
-- a thousand rows were written
SELECT throws_ok($$INSERT INTO sale (id, name, qty, price) SELECT id, name, qty, price FROM sale_topic$$,
                 '23505', NULL, 'a duplicate key: unique_violation');
CREATE TABLE picky (LIKE sale INCLUDING ALL, CHECK (id <> 1500));
SELECT ok(uses_bulk('INSERT INTO picky (id, name, qty, price) SELECT id, name, qty, price FROM sale_topic'),
          'a table with CHECK constraints is written in batches');
SELECT throws_ok($$INSERT INTO picky (id, name, qty, price) SELECT id, name, qty, price FROM sale_topic$$,
                 '23514', NULL, 'a CHECK constraint is checked for every row');
SELECT throws_ok($$INSERT INTO picky (id, name, qty, price) SELECT id, NULLIF(name, 'product 20'), qty, price FROM sale_topic$$,
                 '23502', NULL, 'so is NOT NULL');
SELECT is((SELECT count(*) FROM picky), 0::bigint, 'nothing of the failed statements is left');

-- tableoid is the table's before constraints and generated columns read it
CREATE TABLE own_oid (id bigint, oid_seen oid GENERATED ALWAYS AS (tableoid) STORED,
                      CHECK (tableoid <> 0));
SELECT is(row_count('INSERT INTO own_oid (id) SELECT id FROM sale_topic'), 2500::bigint,
          'a CHECK on tableoid holds for every row');
SELECT is((SELECT count(*) FROM own_oid WHERE oid_seen = 'own_oid'::regclass), 2500::bigint,
          'a generated column sees tableoid in every row');

-- a volatile function may read the table being written: row by row, as
-- COPY does, so that it sees the rows written before its own
CREATE TABLE counted (id bigint, seen bigint);
CREATE FUNCTION rows_in_counted() RETURNS bigint LANGUAGE sql VOLATILE
  AS $$SELECT count(*) FROM insert_test.counted$$;
SELECT ok(NOT uses_bulk('INSERT INTO counted SELECT id, rows_in_counted() FROM sale_topic'),
          'a volatile function in the SELECT: row by row');
SELECT is(row_count('INSERT INTO counted SELECT id, rows_in_counted() FROM sale_topic ORDER BY id'), 2500::bigint,
          'it writes every row');
SELECT is((SELECT count(*) FROM counted WHERE seen = id - 1), 2500::bigint,
          'and each call saw the rows written before it');

-- transactions, cursors of rows, PL/pgSQL and prepared statements
BEGIN;
INSERT INTO picky (id, name, qty, price) SELECT id, name, qty, price FROM sale_topic WHERE id < 1500;
ROLLBACK;
SELECT is((SELECT count(*) FROM picky), 0::bigint, 'a rolled-back load leaves nothing');
SELECT is(row_count('INSERT INTO picky (id, name, qty, price) SELECT id, name, qty, price FROM sale_topic ORDER BY id LIMIT 1234'),
          1234::bigint, 'LIMIT: only the rows asked for');
SELECT is(row_count($$INSERT INTO picky (id, name, qty, price)
                      SELECT t.id + 10000, t.name, t.qty, t.price FROM sale_topic t JOIN sale s USING (id)
                       WHERE s.qty = 3$$),
          500::bigint, 'joined with a table: the matching rows');
PREPARE load_picky AS INSERT INTO picky (id, name, qty, price)
  SELECT id + $1, name, qty, price FROM sale_topic WHERE id <= 100;
-- six runs: the sixth uses the generic plan
EXECUTE load_picky(100000); EXECUTE load_picky(200000); EXECUTE load_picky(300000);
EXECUTE load_picky(400000); EXECUTE load_picky(500000); EXECUTE load_picky(600000);
SELECT is((SELECT count(*) FROM picky WHERE id > 100000), 600::bigint,
          'a prepared statement loads on every run, generic plan included');
CREATE FUNCTION picky_seen() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.loaded := 'trigger'; RETURN NEW; END$$;
CREATE TRIGGER picky_seen BEFORE INSERT ON picky FOR EACH ROW EXECUTE FUNCTION picky_seen();
EXECUTE load_picky(700000);
SELECT is((SELECT count(*) FROM picky WHERE id > 700000 AND loaded = 'trigger'), 100::bigint,
          'a trigger added after the plan was cached fires: that run is row by row');
SELECT is((SELECT count(*) FROM picky WHERE id BETWEEN 100000 AND 700000 AND loaded = 'fdw'), 600::bigint,
          'the runs before it were not touched by it');

SELECT * FROM finish();

SET client_min_messages = warning;
DROP SCHEMA insert_test CASCADE;
DROP EXTENSION sales_kafka CASCADE;
