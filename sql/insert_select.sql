--
-- INSERT ... SELECT from a Kafka foreign table runs as the executor plans
-- it, whatever the target; the bulk call is sales_kafka.load(), whose
-- checks all come before Kafka is contacted: rights (as the caller),
-- source and target, the column mapping, row security and read-only
-- transactions.  Broker-free: the server's brokers (127.0.0.1:1) refuse
-- every connection, so "could not connect" shows that a call passed its
-- checks, and any other error that it failed one without contacting Kafka.
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
DROP ROLE IF EXISTS regress_sales_kafka_loader;
RESET client_min_messages;

CREATE EXTENSION sales_kafka;
CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers '127.0.0.1:1');
CREATE USER MAPPING FOR PUBLIC SERVER kafka;
SET sales_kafka.connect_timeout = '20ms';

CREATE FOREIGN TABLE sale_topic (
  sale_id bigint,
  product_name text,
  quantity int,
  o bigint OPTIONS (kafka 'offset')
) SERVER kafka OPTIONS (topic 'sales');

CREATE TABLE sale (sale_id bigint PRIMARY KEY, product_name text NOT NULL,
                   quantity int CHECK (quantity > 0), added timestamptz DEFAULT now());
CREATE INDEX ON sale (product_name);
CREATE TABLE sale_by_qty (sale_id bigint, product_name text, quantity int) PARTITION BY RANGE (quantity);
CREATE TABLE sale_by_qty_1 PARTITION OF sale_by_qty FOR VALUES FROM (MINVALUE) TO (MAXVALUE);

-- INSERT ... SELECT: a ModifyTable over the foreign scan, as planned, into
-- an ordinary table, a partitioned table, with ON CONFLICT, with a trigger
EXPLAIN (COSTS OFF) INSERT INTO sale SELECT sale_id, product_name, quantity FROM sale_topic;
EXPLAIN (COSTS OFF) INSERT INTO sale_by_qty SELECT sale_id, product_name, quantity FROM sale_topic WHERE o >= 10;
EXPLAIN (COSTS OFF) INSERT INTO sale SELECT sale_id, product_name, quantity FROM sale_topic
  ON CONFLICT DO NOTHING;
CREATE FUNCTION sale_added() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER sale_added BEFORE INSERT ON sale FOR EACH ROW EXECUTE FUNCTION sale_added();
EXPLAIN (COSTS OFF) INSERT INTO sale SELECT sale_id, product_name, quantity FROM sale_topic;
DROP TRIGGER sale_added ON sale;
-- the setting that turned the bulk rewrite off is gone with it
SET sales_kafka.bulk_insert = off; -- ERROR: no such setting

-- load(): with every right and a valid mapping, the first thing that
-- fails is the connection to Kafka
\set VERBOSITY terse
SELECT sales_kafka.load('sale_topic', 'sale');
-- assignment casts as INSERT makes them (int to bigint, text to varchar(n))
CREATE TABLE sale_cast (quantity bigint, product_name varchar(20));
SELECT sales_kafka.load('sale_topic', 'sale_cast');
-- a partitioned table, and a partition of one
SELECT sales_kafka.load('sale_topic', 'sale_by_qty');
SELECT sales_kafka.load('sale_topic', 'sale_by_qty_1');
SELECT sales_kafka.load(NULL, 'sale') IS NULL AS strict;

-- a role with SELECT on the foreign table and INSERT on the table
CREATE ROLE regress_sales_kafka_loader;
GRANT USAGE ON SCHEMA public TO regress_sales_kafka_loader;
SET ROLE regress_sales_kafka_loader;
SELECT sales_kafka.load('sale_topic', 'sale'); -- ERROR: no SELECT on the foreign table
RESET ROLE;
GRANT SELECT (sale_id) ON sale_topic TO regress_sales_kafka_loader;
SET ROLE regress_sales_kafka_loader;
SELECT sales_kafka.load('sale_topic', 'sale'); -- ERROR: no INSERT on the table
RESET ROLE;
GRANT INSERT (sale_id, product_name) ON sale TO regress_sales_kafka_loader;
SET ROLE regress_sales_kafka_loader;
SELECT sales_kafka.load('sale_topic', 'sale'); -- ERROR: no SELECT on product_name, quantity
RESET ROLE;
GRANT SELECT ON sale_topic TO regress_sales_kafka_loader;
SET ROLE regress_sales_kafka_loader;
SELECT sales_kafka.load('sale_topic', 'sale'); -- ERROR: no INSERT on quantity
RESET ROLE;
GRANT INSERT (quantity) ON sale TO regress_sales_kafka_loader;
SET ROLE regress_sales_kafka_loader;
SELECT sales_kafka.load('sale_topic', 'sale');
RESET ROLE;
GRANT INSERT ON sale_by_qty TO regress_sales_kafka_loader;
SET ROLE regress_sales_kafka_loader;
-- rights on a partitioned table are enough, as for INSERT
SELECT sales_kafka.load('sale_topic', 'sale_by_qty');
RESET ROLE;

-- row security for the caller: refused, as COPY FROM refuses it; not for
-- a superuser or the table's owner (without FORCE), as for INSERT
ALTER TABLE sale ENABLE ROW LEVEL SECURITY;
CREATE POLICY small ON sale USING (true) WITH CHECK (quantity < 100);
SELECT sales_kafka.load('sale_topic', 'sale');
CREATE TABLE sale_own (LIKE sale);
ALTER TABLE sale_own OWNER TO regress_sales_kafka_loader;
ALTER TABLE sale_own ENABLE ROW LEVEL SECURITY;
SET ROLE regress_sales_kafka_loader;
SELECT sales_kafka.load('sale_topic', 'sale_own');
\set VERBOSITY default
SELECT sales_kafka.load('sale_topic', 'sale'); -- ERROR: row security
ALTER TABLE sale_own FORCE ROW LEVEL SECURITY;
SELECT sales_kafka.load('sale_topic', 'sale_own'); -- ERROR: forced row security
RESET ROLE;
ALTER TABLE sale DISABLE ROW LEVEL SECURITY;

-- the source: a sales_kafka foreign table; the target: a table
CREATE TABLE sale_copy (LIKE sale);
CREATE VIEW sale_view AS SELECT * FROM sale;
SELECT sales_kafka.load('sale_copy', 'sale'); -- ERROR: not a foreign table
SELECT sales_kafka.load('sale_view', 'sale'); -- ERROR: not a foreign table
SELECT sales_kafka.load('sale_topic', 'sale_view'); -- ERROR: not a table
SELECT sales_kafka.load('sale_topic', 'sale_topic'); -- ERROR: not a table
SELECT sales_kafka.load('sale_topic', 'nonesuch'); -- ERROR: no such table

-- the mapping, by column name
CREATE TABLE sale_wrong_type (sale_id bigint, product_name int);
SELECT sales_kafka.load('sale_topic', 'sale_wrong_type'); -- ERROR: no assignment cast
CREATE TABLE sale_required (sale_id bigint, region text NOT NULL);
SELECT sales_kafka.load('sale_topic', 'sale_required'); -- ERROR: NOT NULL, no default, no source
CREATE TABLE sale_unrelated (region text);
SELECT sales_kafka.load('sale_topic', 'sale_unrelated'); -- ERROR: no column in common

-- a write, so not in a read-only transaction (a temporary table may be)
BEGIN READ ONLY;
SELECT sales_kafka.load('sale_topic', 'sale'); -- ERROR: read-only transaction
ROLLBACK;
CREATE TEMP TABLE sale_tmp (LIKE sale);
BEGIN READ ONLY;
\set VERBOSITY terse
SELECT sales_kafka.load('sale_topic', 'sale_tmp');
ROLLBACK;

SET client_min_messages = warning;
DROP EXTENSION sales_kafka CASCADE;
DROP OWNED BY regress_sales_kafka_loader;
DROP ROLE regress_sales_kafka_loader;
