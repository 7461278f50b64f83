-- Pipelines of several roles: the privileges an upsert pipeline needs.
-- Pipelines commit in their own transactions, so this file commits and
-- cleans up after itself, and waits for the workers by polling with a
-- bounded timeout.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
DROP SCHEMA IF EXISTS pipe_owners CASCADE;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
DROP ROLE IF EXISTS regress_sales_kafka_alice;
DROP ROLE IF EXISTS regress_sales_kafka_bob;
DROP ROLE IF EXISTS regress_sales_kafka_carol;
RESET client_min_messages;
CREATE SCHEMA pipe_owners;
SET search_path = pipe_owners, public;
CREATE EXTENSION sales_kafka;
CREATE SERVER owners_kafka FOREIGN DATA WRAPPER sales_kafka;

\ir wait_for.psql

CREATE FUNCTION topic(name text) RETURNS text LANGUAGE sql
AS $$SELECT current_setting('sk_test.topic_prefix') || name$$;

-- three roles that cannot log in: alice and bob run pipelines, carol none
CREATE ROLE regress_sales_kafka_alice;
CREATE ROLE regress_sales_kafka_bob;
CREATE ROLE regress_sales_kafka_carol;
GRANT USAGE ON SCHEMA pipe_owners TO regress_sales_kafka_alice, regress_sales_kafka_bob,
  regress_sales_kafka_carol;
GRANT EXECUTE ON FUNCTION wait_for(text, interval), topic(text) TO PUBLIC;

SELECT format($$CREATE FOREIGN TABLE customers_src (customer_id text OPTIONS (kafka 'key'), name text)
                SERVER owners_kafka OPTIONS (topic %L)$$, topic('pipe_owners')) \gexec
GRANT SELECT ON customers_src TO regress_sales_kafka_alice, regress_sales_kafka_bob;

SELECT plan(4);

-- an upsert pipeline needs each of INSERT, UPDATE, DELETE and SELECT
CREATE TABLE customers_upsert (customer_id text PRIMARY KEY, name text);
GRANT INSERT ON customers_upsert TO regress_sales_kafka_alice;
SET ROLE regress_sales_kafka_alice;
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('po_upsert', 'customers_src', 'customers_upsert', mode => 'upsert')$$,
                 '42501', NULL, 'INSERT alone on the target is not enough for an upsert pipeline');
RESET ROLE;
GRANT UPDATE, DELETE ON customers_upsert TO regress_sales_kafka_alice;
SET ROLE regress_sales_kafka_alice;
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('po_upsert', 'customers_src', 'customers_upsert', mode => 'upsert')$$,
                 '42501', 'permission denied for table customers_upsert',
                 'INSERT, UPDATE and DELETE without SELECT are not enough either');
SELECT lives_ok($$SELECT sales_kafka.create_pipeline('po_append', 'customers_src', 'customers_upsert')$$,
                'INSERT is enough for an append pipeline');
RESET ROLE;
GRANT SELECT ON customers_upsert TO regress_sales_kafka_alice;
SET ROLE regress_sales_kafka_alice;
SELECT lives_ok($$SELECT sales_kafka.create_pipeline('po_upsert', 'customers_src', 'customers_upsert', mode => 'upsert')$$,
                'with all four privileges an upsert pipeline is created');
RESET ROLE;

SELECT * FROM finish();
SET client_min_messages = warning;
SELECT sales_kafka.drop_pipeline(name) FROM sales_kafka.pipeline;
DROP SCHEMA pipe_owners CASCADE;
DROP EXTENSION sales_kafka CASCADE;
DROP OWNED BY regress_sales_kafka_alice, regress_sales_kafka_bob, regress_sales_kafka_carol;
DROP ROLE regress_sales_kafka_alice;
DROP ROLE regress_sales_kafka_bob;
DROP ROLE regress_sales_kafka_carol;
