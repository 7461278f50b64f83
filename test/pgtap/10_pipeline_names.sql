-- What one role's pipeline of the same name as another's can do to it, as
-- the security review tried it with two roles that are not superusers: a
-- flush interval whose months and days the check counted as 0 (refused now,
-- by create_pipeline and by the catalog, and never read from another
-- role's row when a name is looked up); the dead-letter counts of
-- _pipeline_slots(), which only the owner's roles read; and the Kafka
-- offsets a sales model's KPIs cover, which follow the pipelines into its
-- order lines by id, not by name.
-- Pipelines commit in their own transactions, so this file commits and
-- cleans up after itself, and waits for the workers by polling with a
-- bounded timeout.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
DROP SCHEMA IF EXISTS pipe_names, names_model CASCADE;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
DROP ROLE IF EXISTS regress_sales_kafka_victim;
DROP ROLE IF EXISTS regress_sales_kafka_attacker;
RESET client_min_messages;
CREATE SCHEMA pipe_names;
SET search_path = pipe_names, public;
CREATE EXTENSION sales_kafka;
CREATE SERVER names_kafka FOREIGN DATA WRAPPER sales_kafka;

\ir helpers.psql

CREATE ROLE regress_sales_kafka_victim;
CREATE ROLE regress_sales_kafka_attacker;
GRANT USAGE ON SCHEMA pipe_names TO regress_sales_kafka_victim, regress_sales_kafka_attacker;
SELECT format($$CREATE FOREIGN TABLE names_src (customer_id text OPTIONS (kafka 'key'), name text)
                SERVER names_kafka OPTIONS (topic %L)$$, topic('pipe_names')) \gexec
SELECT format($$CREATE FOREIGN TABLE names_raw (customer_id text OPTIONS (kafka 'key'), v text)
                SERVER names_kafka OPTIONS (topic %L, format 'text')$$, topic('pipe_names')) \gexec
CREATE TABLE victim_customers (customer_id text, name text);
CREATE TABLE attacker_customers (customer_id text, name text);
GRANT SELECT ON names_src TO regress_sales_kafka_victim, regress_sales_kafka_attacker;
GRANT INSERT ON victim_customers TO regress_sales_kafka_victim;
GRANT INSERT ON attacker_customers TO regress_sales_kafka_attacker;

SELECT plan(15);

-------------------------------------------------------------------------------
-- A flush interval has one length: months and days are refused
-------------------------------------------------------------------------------
SET ROLE regress_sales_kafka_victim;
SELECT sales_kafka.create_pipeline('etl', 'names_src', 'victim_customers', flush_interval => '0');
RESET ROLE;
SET ROLE regress_sales_kafka_attacker;
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('etl', 'names_src', 'attacker_customers',
                                                      flush_interval => '60 mons -1800 days')$$,
                 '22023', 'flush_interval must be between 0 and 1 hour',
                 'create_pipeline refuses ''60 mons -1800 days'', 0 to a 30-day month, 26 days to extract(epoch)');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('etl', 'names_src', 'attacker_customers',
                                                      flush_interval => '57 mons -1710 days')$$,
                 '22023', 'flush_interval must be between 0 and 1 hour',
                 'create_pipeline refuses ''57 mons -1710 days'', which workers would wait 21 days for');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('etl', 'names_src', 'attacker_customers',
                                                      flush_interval => '1 day -23 hours')$$,
                 '22023', 'flush_interval must be between 0 and 1 hour',
                 'create_pipeline refuses an interval with days even if it comes to an hour');
SELECT lives_ok($$SELECT sales_kafka.create_pipeline('etl', 'names_src', 'attacker_customers',
                                                     flush_interval => '1 hour')$$,
                'but takes 1 hour of time, the longest flush interval');
RESET ROLE;
SET ROLE regress_sales_kafka_victim;
SELECT lives_ok($$SELECT sales_kafka.stop_pipeline('etl')$$,
                'with another role''s pipeline "etl" there, its victim still stops its own "etl"');
SELECT lives_ok($$SELECT sales_kafka.reset_pipeline('etl', 'earliest')$$, 'resets it');
RESET ROLE;
SELECT throws_ok($$INSERT INTO sales_kafka.pipeline (name, source, target, owner, flush_interval)
                   VALUES ('poison', 'names_src', 'attacker_customers', 'regress_sales_kafka_attacker',
                           '60 mons -1800 days')$$,
                 '23514', NULL, 'the catalog refuses months and days in a flush interval too');
SET ROLE regress_sales_kafka_attacker;
SELECT sales_kafka.drop_pipeline('etl');
RESET ROLE;

-------------------------------------------------------------------------------
-- _pipeline_slots(), behind pipeline_status, counts dead letters for the
-- owner's roles only
-------------------------------------------------------------------------------
SELECT id AS etl_id FROM sales_kafka.pipeline WHERE name = 'etl' \gset
SET ROLE regress_sales_kafka_victim;
SELECT sales_kafka.start_pipeline('etl');
RESET ROLE;
INSERT INTO names_src VALUES ('c1', 'Ann');
INSERT INTO names_raw VALUES ('bad', 'not json');
SELECT ok(wait_for($$SELECT (SELECT count(*) FROM victim_customers) = 1
                        AND (SELECT dead_letters = 1 FROM sales_kafka._pipeline_slots()
                              WHERE pipeline_id = $$ || :etl_id || $$)$$),
          'the victim''s worker wrote one row and one dead letter');
SET ROLE regress_sales_kafka_victim;
SELECT is((SELECT dead_letters FROM sales_kafka._pipeline_slots() WHERE pipeline_id = :etl_id),
          1::bigint, '_pipeline_slots() shows the owner its worker''s dead letters');
RESET ROLE;
SET ROLE regress_sales_kafka_attacker;
SELECT results_eq($$SELECT dead_letters, last_error FROM sales_kafka._pipeline_slots()
                     WHERE pipeline_id = $$ || :etl_id,
                  $$VALUES (NULL::bigint, NULL::text)$$,
                  '_pipeline_slots() shows another role neither the dead letters nor the last error of the victim''s worker');
RESET ROLE;
SET ROLE regress_sales_kafka_victim;
SELECT sales_kafka.drop_pipeline('etl');
RESET ROLE;

-------------------------------------------------------------------------------
-- The Kafka offsets a sales model's KPIs cover: those of the pipelines into
-- its order lines, not of another role's pipeline of the same name
-------------------------------------------------------------------------------
SELECT sales_kafka.create_sales_model('names_model', time_zone => 'UTC');
SELECT sales_kafka.create_sales_pipelines('names_model', 'sale_events', 'names_kafka',
                                          topic('pipe_names_sales'));
SELECT id AS lines_id FROM sales_kafka.pipeline WHERE name = 'names_model_order_lines' \gset
INSERT INTO names_model.src_sale_events (product_id, quantity, unit_price, sold_at) VALUES
    ('Coffee', 2, 3.50, '2024-05-01 08:00+00'), ('Tea', 1, 2.00, '2024-05-01 08:01+00'),
    ('Coffee', 1, 3.50, '2024-05-01 09:30+00');
SELECT ok(wait_for($$SELECT count(*) = 3 FROM names_model.order_lines$$), 'the sale events are ingested');

-- the attacker reads the same topic into a table of its own, under the same name
GRANT USAGE ON SCHEMA names_model TO regress_sales_kafka_attacker;
GRANT SELECT ON names_model.src_sale_events TO regress_sales_kafka_attacker;
CREATE TABLE attacker_lines (LIKE names_model.src_sale_events);
GRANT INSERT ON attacker_lines TO regress_sales_kafka_attacker;
SET ROLE regress_sales_kafka_attacker;
SELECT sales_kafka.create_pipeline('names_model_order_lines', 'names_model.src_sale_events',
                                   'pipe_names.attacker_lines', flush_interval => '0');
SELECT sales_kafka.start_pipeline('names_model_order_lines');
RESET ROLE;
SELECT ok(wait_for($$SELECT count(*) = 3 FROM attacker_lines$$), 'the attacker''s pipeline of that name runs');
-- (the rollup worker may have taken them already: what counts is that they
-- are taken, once)
\o /dev/null
SELECT sales_kafka.refresh_rollups('names_model');
\o
SELECT is((SELECT rolled_up_rows FROM names_model.kpi_state), 3::bigint, 'the rollups take the three lines');
SELECT is((SELECT array_agg(DISTINCT (e ->> 'pipeline_id')::bigint)
             FROM names_model.kpi_state, jsonb_array_elements(covered_offsets) e),
          ARRAY[:lines_id::bigint],
          'refresh_rollups records the offsets of the pipeline into the order lines only, by its id');
SELECT results_eq($$SELECT pipeline, "partition", covered_offset, committed_offset
                      FROM names_model.kpi_as_of_partitions$$,
                  $$SELECT pipeline, "partition", committed_offset, committed_offset
                      FROM sales_kafka.pipeline_partitions
                     WHERE pipeline_id = $$ || :lines_id || $$ ORDER BY "partition"$$,
                  'kpi_as_of_partitions shows that pipeline''s partitions, once each');

SELECT * FROM finish();
SET client_min_messages = warning;
SET ROLE regress_sales_kafka_attacker;
SELECT sales_kafka.drop_pipeline(pipeline) FROM sales_kafka.pipeline_status WHERE owner = current_user::regrole;
RESET ROLE;
SET ROLE regress_sales_kafka_victim;
SELECT sales_kafka.drop_pipeline(pipeline) FROM sales_kafka.pipeline_status WHERE owner = current_user::regrole;
RESET ROLE;
SELECT sales_kafka.drop_pipeline(pipeline) FROM sales_kafka.pipeline_status WHERE owner = current_user::regrole;
DROP SCHEMA pipe_names, names_model CASCADE;
DROP EXTENSION sales_kafka CASCADE;
DROP OWNED BY regress_sales_kafka_victim, regress_sales_kafka_attacker;
DROP ROLE regress_sales_kafka_victim;
DROP ROLE regress_sales_kafka_attacker;
