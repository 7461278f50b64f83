-- The KPI functions run as the owner of the model's schema.  The owner of
-- a model controls the triggers of its tables: a superuser (or a pg_cron
-- job of one) that refreshes, rebuilds or extends the model runs them as
-- that owner, with SECURITY_RESTRICTED_OPERATION and every setting they
-- change undone, never as itself, so the owner cannot become a superuser
-- that way.  What these functions create belongs to the schema's owner.
-- Roles without the owner's privileges may not call them; members of the
-- owner may.  One transaction, rolled back; no broker.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
DROP SCHEMA IF EXISTS kpi_mallory, kpi_mallory_part, kpi_mallory_pre, kpi_stranger CASCADE;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
DROP ROLE IF EXISTS regress_sales_kafka_member;
DROP ROLE IF EXISTS regress_sales_kafka_stranger;
DROP ROLE IF EXISTS regress_sales_kafka_mallory;
RESET client_min_messages;

BEGIN;
CREATE EXTENSION sales_kafka;
SELECT plan(35);

CREATE ROLE regress_sales_kafka_mallory;
CREATE ROLE regress_sales_kafka_member IN ROLE regress_sales_kafka_mallory;
CREATE ROLE regress_sales_kafka_stranger;
SELECT format('GRANT CREATE ON DATABASE %I TO regress_sales_kafka_mallory', current_database()) \gexec
CREATE SERVER kpi_owners_kafka FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers '127.0.0.1:9');
GRANT USAGE ON FOREIGN SERVER kpi_owners_kafka TO regress_sales_kafka_mallory;

-------------------------------------------------------------------------------
-- Mallory's model, with a trigger that notes as whom it runs, whether in a
-- security-restricted operation (which refuses temporary tables) and with
-- which search_path; makes its runner a superuser if it can; and changes a
-- setting of the caller's session
-------------------------------------------------------------------------------
SET ROLE regress_sales_kafka_mallory;
SELECT sales_kafka.create_sales_model('kpi_mallory');
CREATE TABLE kpi_mallory.seen (event text, run_as name, restricted boolean, search_path text);
CREATE FUNCTION kpi_mallory.pwn() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    restricted boolean := false;
BEGIN
    BEGIN
        CREATE TEMP TABLE pwn_probe ();
        DROP TABLE pwn_probe;
    EXCEPTION WHEN insufficient_privilege THEN
        restricted := true;
    END;
    INSERT INTO kpi_mallory.seen
    VALUES (TG_TABLE_NAME || ' ' || TG_OP, current_user, restricted, current_setting('search_path'));
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        ALTER ROLE regress_sales_kafka_mallory SUPERUSER;
    END IF;
    PERFORM set_config('application_name', 'pwned', false);
    RETURN CASE WHEN TG_OP = 'TRUNCATE' THEN NULL ELSE NEW END;
END
$$;
CREATE TRIGGER pwn BEFORE UPDATE ON kpi_mallory.kpi_state
    FOR EACH ROW EXECUTE FUNCTION kpi_mallory.pwn();
CREATE TRIGGER pwn BEFORE TRUNCATE ON kpi_mallory.rollup_total
    FOR EACH STATEMENT EXECUTE FUNCTION kpi_mallory.pwn();
INSERT INTO kpi_mallory.order_lines (sold_at, product_id, quantity, unit_price)
VALUES (now(), 'X', 3, 2.50);
SELECT sales_kafka.create_sales_model('kpi_mallory_part', partitioned => true);
CREATE SCHEMA kpi_mallory_pre;
RESET ROLE;

-------------------------------------------------------------------------------
-- A superuser refreshes it
-------------------------------------------------------------------------------
SET application_name = 'kpi_owners';
SELECT current_setting('search_path') AS search_path_before \gset
SELECT is(sales_kafka.refresh_rollups('kpi_mallory'), 1::bigint,
          'a superuser refreshes the rollups of another role''s model');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_sales_kafka_mallory'), false,
          'refresh_rollups: the owner''s trigger did not make the owner a superuser');
SELECT results_eq($$SELECT event, run_as, restricted, search_path FROM kpi_mallory.seen$$,
                  $$VALUES ('kpi_state UPDATE', 'regress_sales_kafka_mallory'::name, true, 'pg_catalog, pg_temp')$$,
                  'refresh_rollups ran the trigger as the owner, restricted, with search_path pg_catalog, pg_temp');
SELECT is(current_setting('application_name'), 'kpi_owners',
          'refresh_rollups undid the setting the trigger changed');
SELECT is(current_setting('search_path'), :'search_path_before',
          'the caller''s search_path is its own again');

DELETE FROM kpi_mallory.seen;
SELECT is(sales_kafka.refresh_kpis('kpi_mallory'), 0::bigint, 'a superuser refreshes every KPI of it');
SELECT ok((SELECT views_refreshed_at IS NOT NULL FROM kpi_mallory.kpi_state),
          'refresh_kpis refreshed the materialized views (as the owner, CONCURRENTLY)');
SELECT results_eq($$SELECT event, run_as, restricted FROM kpi_mallory.seen$$,
                  $$VALUES ('kpi_state UPDATE', 'regress_sales_kafka_mallory'::name, true),
                           ('kpi_state UPDATE', 'regress_sales_kafka_mallory'::name, true)$$,
                  'refresh_kpis ran the trigger as the owner, restricted, for the rollups and for the views');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_sales_kafka_mallory'), false,
          'refresh_kpis: the owner is no superuser');
SELECT is(current_setting('application_name'), 'kpi_owners',
          'refresh_kpis undid the setting the trigger changed');

DELETE FROM kpi_mallory.seen;
SELECT is(sales_kafka.rebuild_rollups('kpi_mallory'), 1::bigint, 'a superuser rebuilds the rollups');
SELECT set_eq($$SELECT event, run_as, restricted FROM kpi_mallory.seen$$,
              $$VALUES ('rollup_total TRUNCATE', 'regress_sales_kafka_mallory'::name, true),
                       ('kpi_state UPDATE', 'regress_sales_kafka_mallory'::name, true)$$,
              'rebuild_rollups ran the TRUNCATE and UPDATE triggers as the owner, restricted');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_sales_kafka_mallory'), false,
          'rebuild_rollups: the owner is no superuser');

-- an error inside, as the owner, caught by the caller: abort restores the
-- caller's identity, security context and settings
SELECT throws_ok($$SELECT sales_kafka.create_sales_model('kpi_mallory')$$, '42710',
                 'schema "kpi_mallory" already has a sales model',
                 'an error raised as the owner reaches the caller');
SELECT is(current_user, session_user, 'after it, the caller is itself again');
SELECT lives_ok($$CREATE TEMP TABLE kpi_owners_probe ()$$,
                'and no longer in a security-restricted operation');
SELECT is(current_setting('search_path'), :'search_path_before', 'and has its own search_path');

-------------------------------------------------------------------------------
-- What a superuser creates in another role's model belongs to that role
-------------------------------------------------------------------------------
SELECT is(sales_kafka.create_sales_partitions('kpi_mallory_part', '2001-01-01', '2001-03-31'), 3,
          'a superuser adds partitions to another role''s model');
SELECT is((SELECT array_agg(DISTINCT relowner::regrole::text) FROM pg_class
            WHERE relnamespace = 'kpi_mallory_part'::regnamespace AND relname LIKE 'order\_lines\_2001\_%'),
          ARRAY['regress_sales_kafka_mallory'], 'the partitions belong to the model''s owner');
SELECT lives_ok($$SELECT sales_kafka.create_sales_model('kpi_mallory_pre')$$,
                'a superuser makes a model in another role''s schema');
SELECT is((SELECT count(*) FROM pg_class WHERE relnamespace = 'kpi_mallory_pre'::regnamespace
             AND relowner <> 'regress_sales_kafka_mallory'::regrole), 0::bigint,
          'every object of that model belongs to the schema''s owner');
CREATE SCHEMA kpi_stranger AUTHORIZATION regress_sales_kafka_stranger;
SELECT lives_ok($$SELECT sales_kafka.create_sales_model('kpi_stranger')$$,
                'and in the schema of a role that may not create schemas');
SELECT is((SELECT count(*) FROM pg_class WHERE relnamespace = 'kpi_stranger'::regnamespace
             AND relowner <> 'regress_sales_kafka_stranger'::regrole), 0::bigint,
          'every object of that one belongs to that role');
SELECT set_eq($$SELECT sales_kafka.create_sales_pipelines('kpi_mallory', 'sale_events', 'kpi_owners_kafka',
                                                           'kpi_owners', start => false)$$,
              $$VALUES ('kpi_mallory_order_lines')$$,
              'a superuser makes the pipelines of another role''s model');
SELECT results_eq($$SELECT owner::text FROM sales_kafka.pipeline_status WHERE pipeline = 'kpi_mallory_order_lines'$$,
                  $$VALUES ('regress_sales_kafka_mallory')$$,
                  'the pipeline belongs to the model''s owner: its workers write with the owner''s rights');
SELECT is((SELECT relowner::regrole::text FROM pg_class WHERE oid = 'kpi_mallory.src_sale_events'::regclass),
          'regress_sales_kafka_mallory', 'and so does its foreign table');

-------------------------------------------------------------------------------
-- Who may call them
-------------------------------------------------------------------------------
DELETE FROM kpi_mallory.seen;
SET ROLE regress_sales_kafka_member;
SELECT is(sales_kafka.refresh_rollups('kpi_mallory'), 0::bigint, 'a member of the owner refreshes the model');
RESET ROLE;
SELECT results_eq($$SELECT run_as FROM kpi_mallory.seen$$, $$VALUES ('regress_sales_kafka_mallory'::name)$$,
                  'as the owner, not as the member');
SET ROLE regress_sales_kafka_stranger;
SELECT throws_ok($$SELECT sales_kafka.refresh_rollups('kpi_mallory')$$, '42501',
                 'permission denied for sales model schema "kpi_mallory"',
                 'a role without the owner''s privileges may not refresh the model');
SELECT throws_ok($$SELECT sales_kafka.create_sales_model('kpi_mallory_pre')$$, '42501',
                 'permission denied for sales model schema "kpi_mallory_pre"',
                 'nor make a model in the owner''s schema');
SELECT throws_ok($$SELECT sales_kafka._refresh_rollups('kpi_mallory')$$, '42501',
                 'permission denied for function _refresh_rollups',
                 'nor call the body of refresh_rollups, which runs as its caller');
RESET ROLE;
SELECT throws_ok($$SELECT sales_kafka.refresh_rollups(NULL)$$, '22004',
                 'the model schema given to sales_kafka.refresh_rollups must not be null',
                 'a null model schema is refused');

-- A schema where another role may create tables (a shared schema, or
-- public as pg_upgrade keeps it from 14): a model whose tables are that
-- role's would run its triggers as the schema's owner, the role the KPI
-- functions and the rollup worker run as.  Refused.
CREATE SCHEMA kpi_shared;
GRANT USAGE, CREATE ON SCHEMA kpi_shared TO regress_sales_kafka_stranger;
SET ROLE regress_sales_kafka_stranger;
CREATE TABLE kpi_shared.kpi_state (rolled_up_through bigint);
RESET ROLE;
SELECT throws_ok($$SELECT sales_kafka.refresh_rollups('kpi_shared')$$, '42501',
                 'table "kpi_shared.kpi_state" of a sales model does not belong to the schema''s owner',
                 'a model table of another role in the schema: the KPI functions refuse to run as the schema''s owner');
SELECT throws_ok($$SELECT sales_kafka.export_day('kpi_shared', '2024-01-01', '/tmp')$$, '42501',
                 'table "kpi_shared.kpi_state" of a sales model does not belong to the schema''s owner',
                 'and so does the export');
-- the export reads the model as its owner: it needs the owner's privileges
GRANT pg_write_server_files TO regress_sales_kafka_stranger;
SET ROLE regress_sales_kafka_stranger;
SELECT throws_ok($$SELECT sales_kafka.export_day('kpi_mallory', '2024-01-01', '/tmp')$$, '42501',
                 'permission denied to export sales model "kpi_mallory"',
                 'a role with pg_write_server_files but no SELECT on the model may not export it');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
