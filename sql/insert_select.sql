--
-- INSERT ... SELECT from a Kafka foreign table: when it is written as COPY
-- writes (Custom Scan SalesKafkaInsert) and when row by row, as planned.
-- Broker-free: EXPLAIN only.
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
DROP ROLE IF EXISTS sk_rls_user;
RESET client_min_messages;

CREATE EXTENSION sales_kafka;
CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers '127.0.0.1:1');
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

-- written in batches: an ordinary table, with its indexes, defaults and checks
EXPLAIN (COSTS OFF) INSERT INTO sale SELECT sale_id, product_name, quantity FROM sale_topic;
EXPLAIN (COSTS OFF) INSERT INTO sale (sale_id, product_name) SELECT sale_id, product_name FROM sale_topic WHERE o >= 10;
EXPLAIN (COSTS OFF) INSERT INTO sale SELECT t.sale_id, t.product_name, t.quantity FROM sale_topic t
  JOIN (VALUES (1), (2)) v(id) ON v.id = t.sale_id;
EXPLAIN (COSTS OFF) INSERT INTO sale SELECT sale_id, product_name, quantity FROM sale_topic ORDER BY o LIMIT 10;
CREATE TEMP TABLE sale_tmp (LIKE sale);
EXPLAIN (COSTS OFF) INSERT INTO sale_tmp SELECT sale_id, product_name, quantity FROM sale_topic;
CREATE VIEW sale_view AS SELECT * FROM sale;
EXPLAIN (COSTS OFF) INSERT INTO sale_view SELECT sale_id, product_name, quantity FROM sale_topic;

-- row by row, as planned
EXPLAIN (COSTS OFF) INSERT INTO sale SELECT sale_id, product_name, quantity FROM sale_topic
  ON CONFLICT DO NOTHING;
EXPLAIN (COSTS OFF) INSERT INTO sale SELECT sale_id, product_name, quantity FROM sale_topic
  RETURNING sale_id;
EXPLAIN (COSTS OFF) WITH gone AS (DELETE FROM sale RETURNING *)
  INSERT INTO sale SELECT sale_id, product_name, quantity FROM sale_topic;
CREATE VIEW sale_checked AS SELECT * FROM sale WHERE quantity < 100 WITH CHECK OPTION;
EXPLAIN (COSTS OFF) INSERT INTO sale_checked SELECT sale_id, product_name, quantity FROM sale_topic;
CREATE TABLE sale_local (LIKE sale);
EXPLAIN (COSTS OFF) INSERT INTO sale SELECT sale_id, product_name, quantity FROM sale_local;
CREATE FOREIGN TABLE sale_out (sale_id bigint, product_name text, quantity int)
  SERVER kafka OPTIONS (topic 'sales_copy');
EXPLAIN (COSTS OFF) INSERT INTO sale_out SELECT sale_id, product_name, quantity FROM sale_topic;
CREATE TABLE sale_by_qty (sale_id bigint, product_name text, quantity int) PARTITION BY RANGE (quantity);
CREATE TABLE sale_by_qty_1 PARTITION OF sale_by_qty FOR VALUES FROM (MINVALUE) TO (MAXVALUE);
EXPLAIN (COSTS OFF) INSERT INTO sale_by_qty SELECT sale_id, product_name, quantity FROM sale_topic;
EXPLAIN (COSTS OFF) INSERT INTO sale_by_qty_1 SELECT sale_id, product_name, quantity FROM sale_topic;
SET sales_kafka.bulk_insert = off;
EXPLAIN (COSTS OFF) INSERT INTO sale SELECT sale_id, product_name, quantity FROM sale_topic;
RESET sales_kafka.bulk_insert;
-- a volatile function (nextval aside) could read the table being written:
-- as COPY, no batches then
CREATE SEQUENCE sale_seq;
EXPLAIN (COSTS OFF) INSERT INTO sale SELECT nextval('sale_seq'), product_name, quantity FROM sale_topic;
EXPLAIN (COSTS OFF) INSERT INTO sale SELECT sale_id, product_name, quantity, clock_timestamp() FROM sale_topic;
EXPLAIN (COSTS OFF) INSERT INTO sale SELECT sale_id, product_name, quantity FROM sale_topic WHERE random() < 0.5;
EXPLAIN (COSTS OFF) INSERT INTO sale SELECT sale_id, product_name, quantity FROM sale_topic
  WHERE sale_id > (SELECT max(sale_id) + random() FROM sale);
ALTER TABLE sale_tmp ALTER COLUMN added SET DEFAULT clock_timestamp();
EXPLAIN (COSTS OFF) INSERT INTO sale_tmp SELECT sale_id, product_name, quantity FROM sale_topic;

-- decided each time the statement runs: a trigger (or a foreign key) added
-- after a plan was cached turns the prepared statement row by row
PREPARE load_sales AS INSERT INTO sale SELECT sale_id, product_name, quantity FROM sale_topic;
EXPLAIN (COSTS OFF) EXECUTE load_sales;
CREATE FUNCTION sale_added() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER sale_added BEFORE INSERT ON sale FOR EACH ROW EXECUTE FUNCTION sale_added();
EXPLAIN (COSTS OFF) EXECUTE load_sales;
DROP TRIGGER sale_added ON sale;
EXPLAIN (COSTS OFF) EXECUTE load_sales;
CREATE TABLE product (product_name text PRIMARY KEY);
ALTER TABLE sale ADD FOREIGN KEY (product_name) REFERENCES product;
EXPLAIN (COSTS OFF) EXECUTE load_sales;
ALTER TABLE sale DROP CONSTRAINT sale_product_name_fkey;
DEALLOCATE load_sales;

-- row security: for a role it applies to, row by row with its checks
CREATE ROLE sk_rls_user;
GRANT USAGE ON SCHEMA public TO sk_rls_user;
GRANT SELECT ON sale_topic TO sk_rls_user;
GRANT SELECT, INSERT ON sale TO sk_rls_user;
ALTER TABLE sale ENABLE ROW LEVEL SECURITY;
CREATE POLICY small ON sale USING (true) WITH CHECK (quantity < 100);
EXPLAIN (COSTS OFF) INSERT INTO sale SELECT sale_id, product_name, quantity FROM sale_topic;
SET ROLE sk_rls_user;
EXPLAIN (COSTS OFF) INSERT INTO sale SELECT sale_id, product_name, quantity FROM sale_topic;
RESET ROLE;

SET client_min_messages = warning;
DROP EXTENSION sales_kafka CASCADE;
DROP OWNED BY sk_rls_user;
DROP ROLE sk_rls_user;
