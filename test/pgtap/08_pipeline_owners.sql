-- Pipelines of several roles: the privileges an upsert pipeline needs;
-- names are unique per owner, and each role manages only the pipelines of
-- roles whose rights it has; each reads only the dead letters and errors
-- of those.  A worker is its owner's session: what session_user,
-- current_user and is_superuser show to defaults, triggers and row security
-- policies; a dropped owner stops its pipelines.
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
DROP ROLE IF EXISTS regress_sales_kafka_gone;
RESET client_min_messages;
CREATE SCHEMA pipe_owners;
SET search_path = pipe_owners, public;
CREATE EXTENSION sales_kafka;
CREATE SERVER owners_kafka FOREIGN DATA WRAPPER sales_kafka;

\ir helpers.psql

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

SELECT plan(40);

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

-- two roles, one pipeline name: each has its own
CREATE TABLE alice_customers (customer_id text, name text);
CREATE TABLE bob_customers (customer_id text, name text);
GRANT INSERT ON alice_customers TO regress_sales_kafka_alice;
GRANT INSERT ON bob_customers TO regress_sales_kafka_bob;
SET ROLE regress_sales_kafka_alice;
SELECT lives_ok($$SELECT sales_kafka.create_pipeline('shared', 'customers_src', 'alice_customers', flush_interval => '0')$$,
                'alice creates pipeline "shared"');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('shared', 'customers_src', 'alice_customers')$$,
                 '42710', 'pipeline "shared" already exists', 'but not twice');
RESET ROLE;
SET ROLE regress_sales_kafka_bob;
SELECT lives_ok($$SELECT sales_kafka.create_pipeline('shared', 'customers_src', 'bob_customers', flush_interval => '0')$$,
                'bob creates a pipeline of the same name: alice cannot take a name from him');
RESET ROLE;
SELECT results_eq($$SELECT owner::text, target::text FROM sales_kafka.pipeline_status WHERE pipeline = 'shared' ORDER BY 1$$,
                  $$VALUES ('regress_sales_kafka_alice', 'alice_customers'), ('regress_sales_kafka_bob', 'bob_customers')$$,
                  'pipeline_status shows both, with their owners');
SET ROLE regress_sales_kafka_alice;
SELECT sales_kafka.start_pipeline('shared');
RESET ROLE;
SET ROLE regress_sales_kafka_bob;
SELECT sales_kafka.start_pipeline('shared');
RESET ROLE;
SELECT results_eq($$SELECT owner::text, state FROM sales_kafka.pipeline_status WHERE pipeline = 'shared' ORDER BY 1$$,
                  $$VALUES ('regress_sales_kafka_alice', 'starting'), ('regress_sales_kafka_bob', 'starting')$$,
                  'each started its own');
INSERT INTO customers_src VALUES ('c1', 'Ann'), ('c2', 'Ben');
-- not JSON: a dead letter of each pipeline
INSERT INTO customers_src (customer_id) VALUES ('bad');
SELECT format($$CREATE FOREIGN TABLE customers_raw (customer_id text OPTIONS (kafka 'key'), v text)
                SERVER owners_kafka OPTIONS (topic %L, format 'text')$$, topic('pipe_owners')) \gexec
INSERT INTO customers_raw VALUES ('bad', 'not json');
SELECT ok(wait_for($$SELECT (SELECT count(*) FROM alice_customers) = 3 AND (SELECT count(*) FROM bob_customers) = 3
                        AND (SELECT count(*) FROM sales_kafka.dead_letter) = 2
                        AND (SELECT sum(committed_offset) = 8 AND count(*) = 4
                               FROM sales_kafka.pipeline_partitions WHERE pipeline = 'shared')$$),
          'both pipelines wrote the topic into their own tables');
SET ROLE regress_sales_kafka_bob;
SELECT sales_kafka.stop_pipeline('shared');
RESET ROLE;
SELECT results_eq($$SELECT owner::text, state FROM sales_kafka.pipeline_status WHERE pipeline = 'shared' ORDER BY 1$$,
                  $$VALUES ('regress_sales_kafka_alice', 'running'), ('regress_sales_kafka_bob', 'stopped')$$,
                  'bob''s stop_pipeline(''shared'') stops his pipeline, not alice''s');
SET ROLE regress_sales_kafka_carol;
SELECT throws_ok($$SELECT sales_kafka.stop_pipeline('shared')$$, '42501', 'must be owner of pipeline "shared"',
                 'carol cannot stop either');
SELECT throws_ok($$SELECT sales_kafka.start_pipeline('shared')$$, '42501', NULL, 'nor start either');
SELECT throws_ok($$SELECT sales_kafka.reset_pipeline('shared', 'latest')$$, '42501', NULL, 'nor reset either');
SELECT throws_ok($$SELECT sales_kafka.drop_pipeline('shared')$$, '42501', NULL, 'nor drop either');
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('shared', 'customers_src', 'bob_customers')$$, '42501', NULL,
                 'and carol may not read the topic nor write their tables');
RESET ROLE;
SELECT throws_ok($$SELECT sales_kafka.stop_pipeline('shared')$$, '42P08', 'pipeline name "shared" is ambiguous',
                 'a superuser has the rights of both owners: the name is ambiguous');

-- dead letters: each role sees, and deletes, those of its pipelines only
SET ROLE regress_sales_kafka_alice;
SELECT results_eq($$SELECT pipeline, owner::text, encode(payload, 'escape') FROM sales_kafka.dead_letter$$,
                  $$VALUES ('shared', 'regress_sales_kafka_alice', 'not json')$$,
                  'alice reads the dead letter of her pipeline, not bob''s');
SELECT results_eq($$SELECT owner::text, dead_letters FROM sales_kafka.pipeline_status WHERE pipeline = 'shared' ORDER BY 1$$,
                  $$VALUES ('regress_sales_kafka_alice', 1::bigint), ('regress_sales_kafka_bob', NULL)$$,
                  'pipeline_status counts her dead letters and not bob''s');
RESET ROLE;
SET ROLE regress_sales_kafka_bob;
SELECT results_eq($$SELECT pipeline, owner::text FROM sales_kafka.dead_letter$$,
                  $$VALUES ('shared', 'regress_sales_kafka_bob')$$, 'bob reads only his');
RESET ROLE;
SET ROLE regress_sales_kafka_carol;
SELECT is_empty($$SELECT * FROM sales_kafka.dead_letter$$, 'carol, without pipelines, reads none');
SELECT is_empty($$DELETE FROM sales_kafka.dead_letter RETURNING id$$, 'and deletes none');
RESET ROLE;
SET ROLE regress_sales_kafka_alice;
WITH d AS (DELETE FROM sales_kafka.dead_letter RETURNING owner)
SELECT is(array(SELECT owner::text FROM d), ARRAY['regress_sales_kafka_alice'],
          'alice deletes her dead letter');
RESET ROLE;
SELECT is(array(SELECT owner::text FROM sales_kafka.dead_letter), ARRAY['regress_sales_kafka_bob'],
          'bob''s dead letter is still there');
-- alice resets hers to given offsets (asking Kafka as alice): bob's keeps its own
SET ROLE regress_sales_kafka_alice;
SELECT lives_ok($$SELECT sales_kafka.reset_pipeline('shared', '{"0": 0, "1": 0}')$$,
                'alice resets her pipeline "shared" to offsets 0');
RESET ROLE;
SELECT ok(wait_for($$SELECT count(*) = 6 FROM alice_customers$$)
          AND (SELECT count(*) FROM bob_customers) = 3,
          'her pipeline writes the topic again, bob''s does not');

-- another role's error may show its messages' values: its owner only
CREATE TABLE carol_customers (customer_id text, name text);
GRANT SELECT ON customers_src TO regress_sales_kafka_carol;
GRANT INSERT ON carol_customers TO regress_sales_kafka_carol;
SET ROLE regress_sales_kafka_carol;
SELECT sales_kafka.create_pipeline('revoked', 'customers_src', 'carol_customers');
SELECT sales_kafka.start_pipeline('revoked');
RESET ROLE;
REVOKE INSERT ON carol_customers FROM regress_sales_kafka_carol;
SELECT ok(wait_for($$SELECT state = 'failed' FROM sales_kafka.pipeline_status WHERE pipeline = 'revoked'$$),
          'carol''s pipeline fails without INSERT on its target');
SET ROLE regress_sales_kafka_carol;
SELECT alike((SELECT last_error FROM sales_kafka.pipeline_status WHERE pipeline = 'revoked'),
            'permission denied for table carol_customers%', 'carol reads why');
RESET ROLE;
SET ROLE regress_sales_kafka_alice;
SELECT is((SELECT last_error FROM sales_kafka.pipeline_status WHERE pipeline = 'revoked'),
          '<insufficient privilege>', 'alice does not');
RESET ROLE;

-- a worker is its owner's session, for a role that cannot log in too
CREATE TABLE seen_by_default (customer_id text, name text,
  by_session text DEFAULT session_user, by_current text DEFAULT current_user,
  superuser text DEFAULT current_setting('is_superuser'));
GRANT INSERT ON seen_by_default TO regress_sales_kafka_alice;
CREATE TABLE seen_by_trigger (customer_id text, name text);
CREATE TABLE audit (by_session text, by_current text, superuser text);
CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO pipe_owners.audit VALUES (session_user, current_user, current_setting('is_superuser'));
  RETURN NEW;
END $$;
CREATE TRIGGER audit_row BEFORE INSERT ON seen_by_trigger FOR EACH ROW EXECUTE FUNCTION audit_row();
ALTER TABLE seen_by_trigger ENABLE ROW LEVEL SECURITY;
CREATE POLICY bob_only ON seen_by_trigger FOR INSERT WITH CHECK (session_user = 'regress_sales_kafka_bob');
GRANT INSERT ON seen_by_trigger, audit TO regress_sales_kafka_bob;
SET ROLE regress_sales_kafka_alice;
SELECT sales_kafka.create_pipeline('seen', 'customers_src', 'seen_by_default');
SELECT sales_kafka.start_pipeline('seen');
RESET ROLE;
SET ROLE regress_sales_kafka_bob;
SELECT sales_kafka.create_pipeline('seen', 'customers_src', 'seen_by_trigger');
SELECT sales_kafka.start_pipeline('seen');
RESET ROLE;
SELECT ok(wait_for($$SELECT (SELECT count(*) FROM seen_by_default) = 3 AND (SELECT count(*) FROM seen_by_trigger) = 3$$),
          'both pipelines wrote the three good messages');
SELECT results_eq($$SELECT DISTINCT by_session, by_current, superuser FROM seen_by_default$$,
                  $$VALUES ('regress_sales_kafka_alice', 'regress_sales_kafka_alice', 'off')$$,
                  'column defaults see session_user and current_user alice, and is_superuser off');
SELECT results_eq($$SELECT DISTINCT by_session, by_current, superuser FROM audit$$,
                  $$VALUES ('regress_sales_kafka_bob', 'regress_sales_kafka_bob', 'off')$$,
                  'an audit trigger sees session_user and current_user bob, and is_superuser off');
SELECT is((SELECT count(*) FROM audit), 3::bigint, 'and ran for each row');

-- a worker checks its owner's rights before it contacts Kafka: here SELECT
-- was revoked after start_pipeline checked it, and the brokers are
-- unreachable, so a worker that connected first would only ever retry
CREATE SERVER nowhere_kafka FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers '127.0.0.1:1');
SELECT format($$CREATE FOREIGN TABLE nowhere_src (customer_id text OPTIONS (kafka 'key'), name text)
                SERVER nowhere_kafka OPTIONS (topic %L)$$, topic('pipe_owners')) \gexec
GRANT SELECT ON nowhere_src TO regress_sales_kafka_alice;
BEGIN;
SET LOCAL ROLE regress_sales_kafka_alice;
SELECT sales_kafka.create_pipeline('nowhere', 'nowhere_src', 'alice_customers');
SELECT sales_kafka.start_pipeline('nowhere');
RESET ROLE;
REVOKE SELECT ON nowhere_src FROM regress_sales_kafka_alice;
COMMIT;
SELECT ok(wait_for($$SELECT state = 'failed' FROM sales_kafka.pipeline_status WHERE pipeline = 'nowhere'$$, '30 s'),
          'a worker whose owner lost SELECT on the source stops before it contacts Kafka');
SELECT alike((SELECT last_error FROM sales_kafka.pipeline_status WHERE pipeline = 'nowhere'),
             'permission denied for table nowhere_src%', 'and says why');

-- a dropped owner: its pipeline stops with the reason, and is not started
CREATE ROLE regress_sales_kafka_gone;
CREATE TABLE gone_customers (customer_id text, name text);
GRANT USAGE ON SCHEMA pipe_owners TO regress_sales_kafka_gone;
GRANT SELECT ON customers_src TO regress_sales_kafka_gone;
GRANT INSERT ON gone_customers TO regress_sales_kafka_gone;
SET ROLE regress_sales_kafka_gone;
SELECT sales_kafka.create_pipeline('orphan', 'customers_src', 'gone_customers');
SELECT sales_kafka.start_pipeline('orphan');
RESET ROLE;
SELECT ok(wait_for($$SELECT count(*) = 3 FROM gone_customers$$), 'the pipeline of regress_sales_kafka_gone runs');
DROP OWNED BY regress_sales_kafka_gone;
DROP ROLE regress_sales_kafka_gone;
INSERT INTO customers_src VALUES ('c3', 'Cy');
SELECT ok(wait_for($$SELECT state = 'failed' AND last_error LIKE 'the owner of pipeline "orphan" no longer exists%'
                     FROM sales_kafka.pipeline_status WHERE pipeline = 'orphan'$$),
          'once its owner is dropped, the pipeline stops as failed, saying why');
SELECT is((SELECT count(*) FROM gone_customers), 3::bigint, 'and writes nothing more');
SELECT throws_ok($$SELECT sales_kafka.start_pipeline('orphan')$$, '42704',
                 'the owner of pipeline "orphan" no longer exists', 'start_pipeline refuses it');
SELECT lives_ok($$SELECT sales_kafka.drop_pipeline('orphan')$$, 'a superuser drops it');

SELECT * FROM finish();
SET client_min_messages = warning;
SET ROLE regress_sales_kafka_alice;
SELECT sales_kafka.drop_pipeline(pipeline) FROM sales_kafka.pipeline_status WHERE owner = current_user::regrole;
RESET ROLE;
SET ROLE regress_sales_kafka_bob;
SELECT sales_kafka.drop_pipeline(pipeline) FROM sales_kafka.pipeline_status WHERE owner = current_user::regrole;
RESET ROLE;
SET ROLE regress_sales_kafka_carol;
SELECT sales_kafka.drop_pipeline(pipeline) FROM sales_kafka.pipeline_status WHERE owner = current_user::regrole;
RESET ROLE;
DROP SCHEMA pipe_owners CASCADE;
DROP EXTENSION sales_kafka CASCADE;
DROP OWNED BY regress_sales_kafka_alice, regress_sales_kafka_bob, regress_sales_kafka_carol;
DROP ROLE regress_sales_kafka_alice;
DROP ROLE regress_sales_kafka_bob;
DROP ROLE regress_sales_kafka_carol;
