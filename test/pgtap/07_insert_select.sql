-- Loading a topic into a table, two ways: INSERT ... SELECT from the
-- foreign table, which runs as the executor plans it, and
-- sales_kafka.load(), which writes the same rows as COPY writes
-- (src/load.c, src/bulk_insert.c).  load() must give exactly the rows,
-- index entries, defaults, generated columns and row count the executor's
-- INSERT gives, and honour every rule of the table: constraints, triggers
-- (statement, row, transition tables, foreign keys, deferrable unique
-- constraints), partitions, tableoid, the caller's rights, and refuse row
-- security.  Producing needs commits, so this file commits and cleans up
-- after itself.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS amcheck;
DROP SCHEMA IF EXISTS insert_test CASCADE;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
DROP ROLE IF EXISTS regress_sales_kafka_loader;
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

SELECT plan(66);

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
-- plan_top(sql): the first line of the statement's plan
CREATE FUNCTION plan_top(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || sql LOOP
    RETURN line;
  END LOOP;
END $$;

-- INSERT ... SELECT, as planned
SELECT is(plan_top('INSERT INTO sale_rowwise (id, name, qty, price, note) SELECT id, name, qty, price, note FROM sale_topic'),
          'Insert on sale_rowwise', 'INSERT ... SELECT from the topic is the executor''s own plan');
SELECT is(row_count('INSERT INTO sale_rowwise (id, name, qty, price, note) SELECT id, name, qty, price, note FROM sale_topic'),
          2500::bigint, 'INSERT ... SELECT reports every row it wrote');

-- load(): the same rows
SELECT is(sales_kafka.load('sale_topic', 'sale'), 2500::bigint, 'load() returns every row it wrote');
SELECT is_empty($$SELECT * FROM sale EXCEPT SELECT * FROM sale_rowwise$$,
                'every row load() wrote is a row the executor writes');
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
                'so has the other index, whose entries were sorted');
SELECT is((SELECT count(*) FROM sale WHERE name = 'product 5'), 68::bigint,
          'an index scan finds the rows');

-- the entries of plain btree indexes wait in a sort and go in in key
-- order, also before the end of the statement when maintenance_work_mem
-- (here its minimum) fills up with wide entries; the other indexes get
-- theirs with each write.  Every kind must end up with exactly one entry
-- per row it covers, after two loads into the same table.
CREATE TABLE indexed (id bigint, name text, qty int, price numeric(12,2));
CREATE INDEX indexed_name ON indexed (name);
CREATE INDEX indexed_cheap ON indexed (price) WHERE qty > 2;
CREATE INDEX indexed_wide ON indexed ((name || repeat('x', 400)));
CREATE INDEX indexed_qty_id ON indexed (qty DESC, id NULLS FIRST) INCLUDE (price);
CREATE UNIQUE INDEX indexed_id_name ON indexed (id, name);
CREATE INDEX indexed_hash ON indexed USING hash (qty);
SET maintenance_work_mem = '1MB';
SELECT is(sales_kafka.load('sale_topic', 'indexed'), 2500::bigint,
          'a table with btree, partial, expression, unique and hash indexes: every row');
UPDATE indexed SET name = name || ' (first)';
SELECT is(sales_kafka.load('sale_topic', 'indexed'), 2500::bigint, 'and again into the same table');
SELECT lives_ok($$SELECT bt_index_check('insert_test.indexed_name', true)$$,
                'plain btree: an entry for every row, in order (amcheck heapallindexed)');
SELECT lives_ok($$SELECT bt_index_check('insert_test.indexed_cheap', true)$$,
                'partial btree: an entry for every row it covers');
SELECT lives_ok($$SELECT bt_index_check('insert_test.indexed_wide', true)$$,
                'expression btree with wide entries: an entry for every row');
SELECT lives_ok($$SELECT bt_index_check('insert_test.indexed_qty_id', true)$$,
                'two-column btree with DESC, NULLS FIRST and INCLUDE: an entry for every row');
SELECT lives_ok($$SELECT bt_index_check('insert_test.indexed_id_name', true)$$,
                'unique btree: an entry for every row');
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT is((SELECT count(*) FROM indexed WHERE name = 'product 5'),
          (SELECT count(*) FROM sale WHERE name = 'product 5'),
          'with index scans only, name = finds every row of the second load');
SELECT is((SELECT count(*) FROM indexed WHERE qty > 2 AND price < 100),
          (SELECT 2 * count(*) FROM sale WHERE qty > 2 AND price < 100),
          'so do qty > 2 AND price < 100, for both loads');
SELECT is((SELECT count(*) FROM indexed WHERE name || repeat('x', 400) = 'product 5' || repeat('x', 400)),
          (SELECT count(*) FROM sale WHERE name = 'product 5'),
          'and the wide expression =');
SELECT is((SELECT count(*) FROM indexed WHERE qty = 3 AND id > 2000),
          (SELECT 2 * count(*) FROM sale WHERE qty = 3 AND id > 2000),
          'and qty = with id >');
RESET enable_seqscan;
RESET enable_bitmapscan;
-- a foreign key checked at the end of the statement, after the sorted
-- entries were written: the statement fails and leaves nothing behind
UPDATE indexed SET name = name || ' (second)' WHERE name NOT LIKE '% (first)';
CREATE TABLE product (name text PRIMARY KEY);
INSERT INTO product SELECT DISTINCT name FROM sale WHERE name <> 'product 36';
ALTER TABLE indexed ADD FOREIGN KEY (name) REFERENCES product NOT VALID;
SELECT throws_ok($$SELECT sales_kafka.load('sale_topic', 'indexed')$$,
                 '23503', NULL, 'a foreign key is checked for every row: foreign_key_violation');
INSERT INTO product VALUES ('product 36');
RESET maintenance_work_mem;
SELECT is((SELECT count(*) FROM indexed), 5000::bigint, 'and the failed load left no row');
SELECT is(sales_kafka.load('sale_topic', 'indexed'), 2500::bigint,
          'once the key exists, the load passes the foreign key');

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
SELECT is(sales_kafka.load('sale_topic', 'checked'), 2500::bigint,
          'a volatile CHECK finds in the index the rows of earlier writes whenever it looks');

-- a broken rule fails the call and leaves nothing behind, even after a
-- thousand rows were written
SELECT throws_ok($$SELECT sales_kafka.load('sale_topic', 'sale')$$,
                 '23505', NULL, 'a duplicate key: unique_violation');
CREATE TABLE picky (LIKE sale INCLUDING ALL, CHECK (id <> 1500));
SELECT throws_ok($$SELECT sales_kafka.load('sale_topic', 'picky')$$,
                 '23514', NULL, 'a CHECK constraint is checked for every row');
SELECT format($$CREATE FOREIGN TABLE sale_topic_noname (id bigint, qty int, price numeric(12,2),
                  name text OPTIONS (field 'note'))
                SERVER insert_kafka OPTIONS (topic %L)$$,
              current_setting('sk_test.topic_prefix') || 'insert_select') \gexec
SELECT throws_ok($$SELECT sales_kafka.load('sale_topic_noname', 'picky')$$,
                 '23502', NULL, 'so is NOT NULL');
CREATE TABLE unique_later (id bigint, qty int, UNIQUE (qty) DEFERRABLE INITIALLY IMMEDIATE);
SELECT throws_ok($$SELECT sales_kafka.load('sale_topic', 'unique_later')$$,
                 '23505', NULL, 'a deferrable unique constraint is checked at the end of the call');
SELECT is((SELECT count(*) FROM picky) + (SELECT count(*) FROM unique_later), 0::bigint,
          'nothing of the failed calls is left');

-- decoding: a strict table's bad message fails the call, as the scan
-- fails; a lenient table's becomes a row with its error, as SELECT gives
SELECT format($$CREATE FOREIGN TABLE %I (id bigint, qty int OPTIONS (field 'name'),
                                        error text OPTIONS (kafka 'error'))
                SERVER insert_kafka OPTIONS (topic %L, strict %L)$$,
              'qty_from_name_' || s, current_setting('sk_test.topic_prefix') || 'insert_select',
              s = 'strict')
  FROM unnest(ARRAY['strict', 'lenient']) s \gexec
CREATE TABLE decoded (id bigint, qty int, error text);
SELECT throws_ok($$SELECT sales_kafka.load('qty_from_name_strict', 'decoded')$$,
                 '22P02', NULL, 'strict: a message that does not decode fails the call (invalid_text_representation)');
SELECT is(sales_kafka.load('qty_from_name_lenient', 'decoded'), 2500::bigint,
          'lenient: every message becomes a row');
SELECT is((SELECT count(*) FROM decoded WHERE qty IS NULL AND error LIKE '%integer%'), 2500::bigint,
          'with its error text, as SELECT returns it');

-- tableoid is the table's before constraints and generated columns read it
CREATE TABLE own_oid (id bigint, oid_seen oid GENERATED ALWAYS AS (tableoid) STORED,
                      CHECK (tableoid <> 0));
SELECT is(sales_kafka.load('sale_topic', 'own_oid'), 2500::bigint,
          'a CHECK on tableoid holds for every row');
SELECT is((SELECT count(*) FROM own_oid WHERE oid_seen = 'own_oid'::regclass), 2500::bigint,
          'a generated column sees tableoid in every row');

-- a volatile default may read the table being written: row by row, as
-- COPY does, so that it sees the rows written before its own
CREATE TABLE counted (id bigint, seen bigint);
CREATE FUNCTION rows_in_counted() RETURNS bigint LANGUAGE sql VOLATILE
  AS $$SELECT count(*) FROM insert_test.counted$$;
ALTER TABLE counted ALTER seen SET DEFAULT rows_in_counted();
SELECT is(sales_kafka.load('sale_topic', 'counted'), 2500::bigint, 'a volatile default: every row');
SELECT is((SELECT count(DISTINCT seen) || ' ' || max(seen) FROM counted), '2500 2499',
          'and each default saw the rows written before it');

-- conversions as INSERT makes them: int to bigint, the target's typmod
CREATE TABLE converted (qty bigint, price numeric(6,0), name varchar(10));
SELECT is(sales_kafka.load('sale_topic', 'converted'), 2500::bigint, 'assignment casts: every row');
SELECT is((SELECT sum(price) FROM converted), (SELECT sum(round(price)) FROM sale),
          'numeric(12,2) into numeric(6,0) rounds as INSERT rounds');
CREATE TABLE too_short (name varchar(5));
SELECT throws_ok($$SELECT sales_kafka.load('sale_topic', 'too_short')$$,
                 '22001', NULL, 'a value too long for varchar(5) fails, as in INSERT: string_data_right_truncation');

-- triggers: statement triggers once, BEFORE ROW triggers per row (which
-- may change or skip it), AFTER ROW triggers and transition tables
CREATE TABLE trig (id bigint, name text, qty int, seen text);
CREATE TABLE trig_log (what text, n bigint);
CREATE FUNCTION trig_before_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id % 10 = 0 THEN RETURN NULL; END IF;
  NEW.seen := 'before ' || (SELECT count(*) FROM insert_test.trig);
  RETURN NEW;
END $$;
CREATE FUNCTION trig_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO insert_test.trig_log VALUES (TG_WHEN || ' statement', (SELECT count(*) FROM insert_test.trig)); RETURN NULL; END $$;
CREATE FUNCTION trig_after_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO insert_test.trig_log VALUES ('after row ' || TG_TABLE_NAME, NEW.id); RETURN NULL; END $$;
CREATE FUNCTION trig_new_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO insert_test.trig_log SELECT 'new rows', count(*) FROM new_rows; RETURN NULL; END $$;
CREATE TRIGGER b_row BEFORE INSERT ON trig FOR EACH ROW EXECUTE FUNCTION trig_before_row();
CREATE TRIGGER b_stmt BEFORE INSERT ON trig FOR EACH STATEMENT EXECUTE FUNCTION trig_statement();
CREATE TRIGGER a_stmt AFTER INSERT ON trig FOR EACH STATEMENT EXECUTE FUNCTION trig_statement();
CREATE TRIGGER a_row AFTER INSERT ON trig FOR EACH ROW EXECUTE FUNCTION trig_after_row();
CREATE TRIGGER a_new AFTER INSERT ON trig REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION trig_new_rows();
SELECT is(sales_kafka.load('sale_topic', 'trig'), 2250::bigint,
          'rows a BEFORE ROW trigger skips are not written, nor counted');
SELECT is((SELECT count(DISTINCT seen) FROM trig WHERE seen LIKE 'before %'), 2250::bigint,
          'the BEFORE ROW trigger changed every row, each seeing the rows before it');
SELECT is((SELECT array_agg(what || ' ' || n ORDER BY what) FROM trig_log WHERE what LIKE '% statement'),
          ARRAY['AFTER statement 2250', 'BEFORE statement 0'],
          'BEFORE and AFTER STATEMENT triggers fire once, before and after the rows');
SELECT is((SELECT count(DISTINCT n) FROM trig_log WHERE what = 'after row trig'), 2250::bigint,
          'the AFTER ROW trigger fires for each row written');
SELECT is((SELECT n FROM trig_log WHERE what = 'new rows'), 2250::bigint,
          'the transition table holds every row written');
CREATE TABLE trig_after (LIKE trig);
CREATE TRIGGER a_row AFTER INSERT ON trig_after FOR EACH ROW EXECUTE FUNCTION trig_after_row();
SELECT is(sales_kafka.load('sale_topic', 'trig_after'), 2500::bigint,
          'a table with only an AFTER ROW trigger: every row, written in batches');
SELECT is((SELECT count(DISTINCT n) FROM trig_log WHERE what = 'after row trig_after'), 2500::bigint,
          'and the trigger fires for each');

-- partitions: rows routed as INSERT routes them, into partitions of other
-- column orders, a default partition, one with a BEFORE ROW trigger;
-- triggers see the partition's tableoid
CREATE TABLE by_qty (id bigint, name text, qty int, seen text) PARTITION BY LIST (qty);
CREATE TABLE by_qty_12 PARTITION OF by_qty FOR VALUES IN (1, 2);
CREATE TABLE by_qty_3 (seen text, qty int, extra int, name text, id bigint);
ALTER TABLE by_qty_3 DROP COLUMN extra;
ALTER TABLE by_qty ATTACH PARTITION by_qty_3 FOR VALUES IN (3);
CREATE TABLE by_qty_other PARTITION OF by_qty DEFAULT;
CREATE INDEX ON by_qty (name);
CREATE UNIQUE INDEX ON by_qty (id, qty);
CREATE FUNCTION by_qty_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.seen := TG_TABLE_NAME || ' ' || NEW.tableoid::regclass; RETURN NEW; END $$;
CREATE TRIGGER seen BEFORE INSERT ON by_qty_3 FOR EACH ROW EXECUTE FUNCTION by_qty_seen();
CREATE TRIGGER a_row AFTER INSERT ON by_qty FOR EACH ROW EXECUTE FUNCTION trig_after_row();
SELECT is(sales_kafka.load('sale_topic', 'by_qty'), 2500::bigint, 'a partitioned table: every row');
SELECT is((SELECT array_agg(tableoid::regclass || ' ' || n ORDER BY tableoid::regclass::text)
             FROM (SELECT tableoid, count(*) n FROM by_qty GROUP BY 1) c),
          ARRAY['by_qty_12 1000', 'by_qty_3 500', 'by_qty_other 1000'],
          'each partition has its rows');
SELECT is((SELECT count(*) FROM by_qty WHERE seen LIKE 'by_qty_3 %'), 500::bigint,
          'a partition''s BEFORE ROW trigger fires for each of its rows');
SELECT is((SELECT count(*) FROM trig_log WHERE what LIKE 'after row by_qty_%'), 2500::bigint,
          'AFTER ROW triggers fire on the partitions');
SELECT is((SELECT count(*) FROM pg_class c, LATERAL bt_index_check(c.oid, true)
            WHERE c.relname ~ '^by_qty_(12|3|other)_.*idx$'), 6::bigint,
          'every partition''s indexes have an entry for every row (amcheck heapallindexed)');
-- the same rows through INSERT ... SELECT
CREATE TABLE by_qty_loaded AS SELECT tableoid::regclass::text AS part, * FROM by_qty;
TRUNCATE by_qty;
INSERT INTO by_qty (id, name, qty) SELECT id, name, qty FROM sale_topic;
SELECT is_empty($$SELECT * FROM by_qty_loaded EXCEPT SELECT tableoid::regclass::text, * FROM by_qty$$,
                'every row load() wrote, INSERT writes into the same partition, as its trigger sets it');
SELECT is_empty($$SELECT tableoid::regclass::text, * FROM by_qty EXCEPT SELECT * FROM by_qty_loaded$$,
                'and the other way round');
CREATE TABLE by_qty_small (id bigint, qty int) PARTITION BY RANGE (qty);
CREATE TABLE by_qty_small_1 PARTITION OF by_qty_small FOR VALUES FROM (1) TO (5);
SELECT throws_ok($$SELECT sales_kafka.load('sale_topic', 'by_qty_small')$$,
                 '23514', NULL, 'a row no partition takes fails the call, as in INSERT');
SELECT throws_ok($$SELECT sales_kafka.load('sale_topic', 'by_qty_small_1')$$,
                 '23514', NULL, 'a partition as the target checks its bounds');

-- a role that is not a superuser, with SELECT on the foreign table and
-- INSERT on the target's columns
CREATE ROLE regress_sales_kafka_loader;
GRANT USAGE ON SCHEMA insert_test TO regress_sales_kafka_loader;
CREATE USER MAPPING FOR regress_sales_kafka_loader SERVER insert_kafka;
CREATE TABLE granted (id bigint, name text, loaded_by name DEFAULT current_user);
GRANT SELECT (id, name) ON sale_topic TO regress_sales_kafka_loader;
GRANT INSERT (id, name) ON granted TO regress_sales_kafka_loader;
SET ROLE regress_sales_kafka_loader;
SELECT is(sales_kafka.load('sale_topic', 'granted'), 2500::bigint,
          'a role with SELECT and INSERT on the mapped columns loads every row');
RESET ROLE;
SELECT is((SELECT count(*) FROM granted WHERE loaded_by = 'regress_sales_kafka_loader'), 2500::bigint,
          'as itself');
ALTER TABLE granted ADD qty int;
SET ROLE regress_sales_kafka_loader;
SELECT throws_ok($$SELECT sales_kafka.load('sale_topic', 'granted')$$,
                 '42501', NULL, 'without SELECT on a mapped column: insufficient_privilege');
RESET ROLE;
ALTER TABLE granted DROP qty;
-- row security for the caller: load() refuses, INSERT applies the policy
ALTER TABLE granted ENABLE ROW LEVEL SECURITY;
CREATE POLICY few ON granted USING (true) WITH CHECK (id < 10);
GRANT SELECT ON granted TO regress_sales_kafka_loader;
SET ROLE regress_sales_kafka_loader;
SELECT throws_ok($$SELECT sales_kafka.load('sale_topic', 'granted')$$,
                 '0A000', NULL, 'row security for the caller: load() refuses (feature_not_supported)');
SELECT throws_ok($$INSERT INTO granted (id, name) SELECT id, name FROM sale_topic$$,
                 '42501', NULL, 'and INSERT ... SELECT applies the policy');
SELECT is(row_count($$INSERT INTO granted (id, name) SELECT id, name FROM sale_topic WHERE id < 10$$), 9::bigint,
          'to every row');
RESET ROLE;

-- transactions, prepared statements
BEGIN;
DO $$BEGIN PERFORM sales_kafka.load('sale_topic', 'own_oid'); END$$;
ROLLBACK;
SELECT is((SELECT count(*) FROM own_oid), 2500::bigint, 'a rolled-back load leaves nothing');
PREPARE load_picky AS INSERT INTO picky (id, name, qty, price)
  SELECT id + $1, name, qty, price FROM sale_topic WHERE id <= 100;
EXECUTE load_picky(100000); EXECUTE load_picky(200000); EXECUTE load_picky(300000);
EXECUTE load_picky(400000); EXECUTE load_picky(500000); EXECUTE load_picky(600000);
CREATE FUNCTION picky_seen() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.loaded := 'trigger'; RETURN NEW; END$$;
CREATE TRIGGER picky_seen BEFORE INSERT ON picky FOR EACH ROW EXECUTE FUNCTION picky_seen();
EXECUTE load_picky(700000);
SELECT is((SELECT count(*) FROM picky WHERE id > 700000 AND loaded = 'trigger'), 100::bigint,
          'INSERT ... SELECT: a trigger added after the plan was cached fires');
SELECT is((SELECT count(*) FROM picky WHERE id BETWEEN 100000 AND 700000 AND loaded = 'fdw'), 600::bigint,
          'the runs before it were not touched by it');

SELECT * FROM finish();

SET client_min_messages = warning;
DROP SCHEMA insert_test CASCADE;
DROP EXTENSION sales_kafka CASCADE;
DROP OWNED BY regress_sales_kafka_loader;
DROP ROLE regress_sales_kafka_loader;
