--
-- Upgrades.  The extension: the update path from 1.0 (the foreign data
-- wrapper) to 1.1 (pipelines) to 1.2 (the sales model and its KPIs) to 1.3
-- (pipelines of several roles, KPI functions as the model's owner) makes
-- the objects that the install script of 1.3 makes, object by object and
-- definition by definition; what 1.3 makes of the pipelines, offsets and
-- dead letters of 1.2; every object users see has a comment.  The sales
-- models: a model made by 1.2, with data in it, still works once the
-- extension is 1.3, and upgrade_sales_model (as the model's owner) makes
-- of it the model 1.3 makes, keeping its data and rollups, which go on as
-- those of a model made by 1.3.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
DROP SCHEMA IF EXISTS regress_old_plain, regress_old_part, regress_new_plain, regress_new_part CASCADE;
DROP ROLE IF EXISTS regress_sales_kafka_owner;
DROP ROLE IF EXISTS regress_sales_kafka_member;
DROP ROLE IF EXISTS regress_sales_kafka_other;
RESET client_min_messages;

-- What makes an object what it is, as (object, property, value) rows:
-- definitions as PostgreSQL prints them, columns in order with types,
-- defaults and constraints, indexes, triggers, policies, row security,
-- sequences, owners, privileges (also those pg_dump restores as the
-- extension's initial ones) and comments.
CREATE FUNCTION pg_temp.describe(classid regclass, objid oid)
RETURNS TABLE (object text, property text, value text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
WITH o AS (SELECT pg_describe_object(classid, objid, 0) AS label),
rel AS (SELECT c.* FROM pg_class c WHERE classid = 'pg_class'::regclass AND c.oid = objid),
col AS (SELECT a.*, row_number() OVER (ORDER BY a.attnum) AS position
          FROM pg_attribute a, rel
         WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped AND rel.relkind <> 'S')
SELECT o.label, 'exists', '' FROM o
UNION ALL
SELECT o.label, p.property, p.value
  FROM o, rel,
       LATERAL (VALUES ('kind', rel.relkind::text),
                       ('persistence', rel.relpersistence::text),
                       ('owner', rel.relowner::regrole::text),
                       ('privileges', array(SELECT x::text FROM unnest(rel.relacl) x ORDER BY 1)::text),
                       ('options', rel.reloptions::text),
                       ('row security', rel.relrowsecurity || ' ' || rel.relforcerowsecurity),
                       ('replica identity', rel.relreplident::text),
                       ('partition key', CASE WHEN rel.relkind = 'p' THEN pg_get_partkeydef(rel.oid) END),
                       ('partition of', (SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = rel.oid)),
                       ('partition bound', pg_get_expr(rel.relpartbound, rel.oid)),
                       ('definition', CASE WHEN rel.relkind IN ('v', 'm') THEN pg_get_viewdef(rel.oid) END),
                       ('populated', rel.relispopulated::text),
                       ('comment', obj_description(rel.oid, 'pg_class'))) AS p(property, value)
UNION ALL
SELECT o.label || ' column ' || col.attname, p.property, p.value
  FROM o, col,
       LATERAL (VALUES ('position', col.position::text),
                       ('type', format_type(col.atttypid, col.atttypmod)),
                       ('not null', col.attnotnull::text),
                       ('default', (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
                                     WHERE d.adrelid = col.attrelid AND d.adnum = col.attnum)),
                       ('generated', nullif(col.attgenerated, '')::text),
                       ('identity', nullif(col.attidentity, '')::text),
                       ('collation', (SELECT collname FROM pg_collation WHERE oid = col.attcollation)),
                       ('statistics target', col.attstattarget::text),
                       ('privileges', array(SELECT x::text FROM unnest(col.attacl) x ORDER BY 1)::text),
                       ('comment', col_description(col.attrelid, col.attnum))) AS p(property, value)
UNION ALL
SELECT o.label || ' constraint ' || con.conname, p.property, p.value
  FROM o, rel, pg_constraint con,
       LATERAL (VALUES ('definition', pg_get_constraintdef(con.oid)),
                       ('validated', con.convalidated::text),
                       ('comment', obj_description(con.oid, 'pg_constraint'))) AS p(property, value)
 WHERE con.conrelid = rel.oid
UNION ALL
SELECT o.label || ' index ' || i.relname, p.property, p.value
  FROM o, rel, pg_index x JOIN pg_class i ON i.oid = x.indexrelid,
       LATERAL (VALUES ('definition', pg_get_indexdef(x.indexrelid)),
                       ('clustered', x.indisclustered::text),
                       ('comment', obj_description(i.oid, 'pg_class'))) AS p(property, value)
 WHERE x.indrelid = rel.oid
UNION ALL
SELECT o.label || ' trigger ' || t.tgname, p.property, p.value
  FROM o, rel, pg_trigger t,
       LATERAL (VALUES ('definition', pg_get_triggerdef(t.oid)),
                       ('enabled', t.tgenabled::text),
                       ('comment', obj_description(t.oid, 'pg_trigger'))) AS p(property, value)
 WHERE t.tgrelid = rel.oid AND NOT t.tgisinternal
UNION ALL
SELECT o.label || ' policy ' || pol.polname, p.property, p.value
  FROM o, rel, pg_policy pol,
       LATERAL (VALUES ('command', pol.polcmd::text),
                       ('permissive', pol.polpermissive::text),
                       ('roles', array(SELECT CASE r WHEN 0 THEN 'public' ELSE r::regrole::text END
                                         FROM unnest(pol.polroles) r ORDER BY 1)::text),
                       ('using', pg_get_expr(pol.polqual, pol.polrelid)),
                       ('with check', pg_get_expr(pol.polwithcheck, pol.polrelid)),
                       ('comment', obj_description(pol.oid, 'pg_policy'))) AS p(property, value)
 WHERE pol.polrelid = rel.oid
UNION ALL
SELECT o.label || ' rule ' || r.rulename, 'definition', pg_get_ruledef(r.oid)
  FROM o, rel, pg_rewrite r
 WHERE r.ev_class = rel.oid AND r.rulename <> '_RETURN'
UNION ALL
SELECT o.label, p.property, p.value
  FROM o, rel, pg_sequence s,
       LATERAL (VALUES ('sequence', format('%s start %s increment %s min %s max %s cache %s cycle %s',
                                           s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin,
                                           s.seqmax, s.seqcache, s.seqcycle)),
                       ('owned by', (SELECT pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid)
                                       FROM pg_depend d
                                      WHERE d.classid = 'pg_class'::regclass AND d.objid = rel.oid
                                        AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0))) AS p(property, value)
 WHERE s.seqrelid = rel.oid
UNION ALL
SELECT o.label, p.property, p.value
  FROM o, pg_proc f,
       LATERAL (VALUES ('definition', pg_get_functiondef(f.oid)),
                       ('owner', f.proowner::regrole::text),
                       ('privileges', array(SELECT x::text FROM unnest(f.proacl) x ORDER BY 1)::text),
                       ('comment', obj_description(f.oid, 'pg_proc'))) AS p(property, value)
 WHERE classid = 'pg_proc'::regclass AND f.oid = objid
UNION ALL
SELECT o.label, p.property, p.value
  FROM o, pg_foreign_data_wrapper w,
       LATERAL (VALUES ('handler', w.fdwhandler::regproc::text),
                       ('validator', w.fdwvalidator::regproc::text),
                       ('options', w.fdwoptions::text),
                       ('owner', w.fdwowner::regrole::text),
                       ('privileges', array(SELECT x::text FROM unnest(w.fdwacl) x ORDER BY 1)::text),
                       ('comment', obj_description(w.oid, 'pg_foreign_data_wrapper'))) AS p(property, value)
 WHERE classid = 'pg_foreign_data_wrapper'::regclass AND w.oid = objid
UNION ALL
SELECT o.label, p.property, p.value
  FROM o, pg_namespace n,
       LATERAL (VALUES ('owner', n.nspowner::regrole::text),
                       ('privileges', array(SELECT x::text FROM unnest(n.nspacl) x ORDER BY 1)::text),
                       ('comment', obj_description(n.oid, 'pg_namespace'))) AS p(property, value)
 WHERE classid = 'pg_namespace'::regclass AND n.oid = objid
UNION ALL
SELECT o.label || coalesce(' column ' || (SELECT attname FROM pg_attribute
                                            WHERE attrelid = objid AND attnum = i.objsubid AND i.objsubid > 0), ''),
       'initial privileges ' || i.privtype::text,
       array(SELECT x::text FROM unnest(i.initprivs) x ORDER BY 1)::text
  FROM o, pg_init_privs i
 WHERE i.classoid = classid AND i.objoid = objid;
END;

-- the extension's objects, its configuration tables (pg_dump) and its schema
CREATE FUNCTION pg_temp.describe_extension()
RETURNS TABLE (object text, property text, value text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
SELECT d.*
  FROM pg_depend e, pg_temp.describe(e.classid, e.objid) d
 WHERE e.refclassid = 'pg_extension'::regclass AND e.deptype = 'e'
   AND e.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'sales_kafka')
   AND d.value IS NOT NULL
UNION ALL
SELECT 'extension sales_kafka', 'dumps table', c::regclass::text || ' ' || w
  FROM pg_extension x, unnest(x.extconfig, x.extcondition) AS u(c, w)
 WHERE x.extname = 'sales_kafka'
UNION ALL
SELECT d.*
  FROM pg_namespace n, pg_temp.describe('pg_namespace', n.oid) d
 WHERE n.nspname = 'sales_kafka' AND d.value IS NOT NULL;
END;

-- a sales model's objects, with its schema's name as <model>
CREATE FUNCTION pg_temp.describe_model(model name)
RETURNS TABLE (object text, property text, value text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
SELECT replace(d.object, model, '<model>'), d.property, replace(d.value, model, '<model>')
  FROM (SELECT 'pg_class'::regclass, c.oid FROM pg_class c
         WHERE c.relnamespace = model::regnamespace AND c.relkind NOT IN ('i', 'I')
        UNION ALL
        SELECT 'pg_proc'::regclass, f.oid FROM pg_proc f WHERE f.pronamespace = model::regnamespace
        UNION ALL
        SELECT 'pg_namespace'::regclass, model::regnamespace::oid) AS m(classid, objid),
       pg_temp.describe(m.classid, m.objid) d
 WHERE d.value IS NOT NULL;
END;

-- a sales model's data: its tables' rows and its KPIs' (but those of today,
-- the times of refreshes and the offsets covered), as (relation, 'row',
-- row) rows
CREATE FUNCTION pg_temp.model_data(model name)
RETURNS TABLE (relation text, property text, row_text text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r name;
BEGIN
    FOR r IN SELECT c.relname FROM pg_class c
              WHERE c.relnamespace = model::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
                AND NOT c.relispartition
                AND c.relname NOT IN ('kpi_state', 'kpi_as_of', 'kpi_as_of_partitions', 'kpi_as_of_views',
                                      'kpi_today', 'kpi_today_top_products', 'kpi_today_by_category')
    LOOP
        RETURN QUERY EXECUTE format('SELECT %L, %L, t::text FROM %I.%I t', r, 'row', model, r);
    END LOOP;
    RETURN QUERY EXECUTE format('SELECT %L, %L, row(time_zone, rolled_up_through, rolled_up_rows)::text FROM %I.kpi_state',
                                'kpi_state', 'row', model);
END
$$;

-- what only one of two models has, as describe_model or model_data shows
-- them
CREATE FUNCTION pg_temp.differences(describer name, a name, b name)
RETURNS TABLE (model name, object text, property text, value text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT $1, * FROM (SELECT * FROM pg_temp.%1$I($1) EXCEPT SELECT * FROM pg_temp.%1$I($2)) x
         UNION ALL
         SELECT $2, * FROM (SELECT * FROM pg_temp.%1$I($2) EXCEPT SELECT * FROM pg_temp.%1$I($1)) y',
        describer) USING a, b;
END
$$;

-------------------------------------------------------------------------------
-- The extension: 1.0 to 1.3 step by step
-------------------------------------------------------------------------------

CREATE EXTENSION sales_kafka VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'sales_kafka';
SELECT to_regclass('sales_kafka.pipeline') IS NULL AS no_pipelines_in_1_0;
ALTER EXTENSION sales_kafka UPDATE TO '1.1';
SELECT extversion FROM pg_extension WHERE extname = 'sales_kafka';
SELECT to_regprocedure('sales_kafka.create_sales_model(name, boolean, text)') IS NULL AS no_models_in_1_1;
ALTER EXTENSION sales_kafka UPDATE TO '1.2';
SELECT extversion FROM pg_extension WHERE extname = 'sales_kafka';

-- catalog rows as 1.2 kept them: two pipelines of two owners (one with a
-- flush interval in months and days, which 1.2 took), offsets and dead
-- letters by pipeline name, also of a pipeline dropped since
CREATE ROLE regress_sales_kafka_owner;
CREATE ROLE regress_sales_kafka_member IN ROLE regress_sales_kafka_owner;
CREATE ROLE regress_sales_kafka_other;
CREATE TABLE upgrade_t (n int);
INSERT INTO sales_kafka.pipeline (name, source, target, owner, enabled, flush_interval) VALUES
  ('orders', 'upgrade_t', 'upgrade_t', 'regress_sales_kafka_owner', true, '1 mon -30 days 5 ms'),
  ('lines', 'upgrade_t', 'upgrade_t', 'regress_sales_kafka_other', false, '-5 mons 150 days 00:20:00');
INSERT INTO sales_kafka.pipeline_offset (pipeline, topic, partition, next_offset, high_watermark) VALUES
  ('orders', 't_orders', 0, 5, 7), ('orders', 't_orders', 1, 2, 2), ('lines', 't_lines', 0, 1, 4),
  ('dropped', 't_old', 0, 3, 3);
INSERT INTO sales_kafka.dead_letter (pipeline, topic, partition, "offset", error, sqlstate) VALUES
  ('orders', 't_orders', 0, 4, 'bad order', '22P02'), ('lines', 't_lines', 0, 0, 'bad line', '22P02'),
  ('dropped', 't_old', 0, 2, 'bad old', '22P02');

ALTER EXTENSION sales_kafka UPDATE TO '1.3';
SELECT extversion FROM pg_extension WHERE extname = 'sales_kafka';
SELECT name, owner, id IS NOT NULL AS has_id FROM sales_kafka.pipeline ORDER BY name;
-- a flush interval is time: months and days become what 1.2's check counted
SELECT name, flush_interval FROM sales_kafka.pipeline ORDER BY name;
\set VERBOSITY terse
UPDATE sales_kafka.pipeline SET flush_interval = '60 mons -1800 days' WHERE name = 'lines'; -- ERROR: months and days
\set VERBOSITY default
-- offsets follow their pipeline's id; those of no pipeline are gone
SELECT pipeline, owner, topic, partition, committed_offset, lag
  FROM sales_kafka.pipeline_partitions ORDER BY pipeline, partition;
SELECT count(*) AS offsets FROM sales_kafka.pipeline_offset;
SELECT d.pipeline, d.owner, d.pipeline_id = p.id AS same_id
  FROM sales_kafka.dead_letter d LEFT JOIN sales_kafka.pipeline p ON p.name = d.pipeline
 ORDER BY d.id;
-- a new pipeline gets an id after those of the upgrade
SELECT nextval('sales_kafka.pipeline_id_seq') > (SELECT max(id) FROM sales_kafka.pipeline) AS next_id_is_new;
-- each role reads, and deletes, the dead letters of the pipelines of roles
-- whose rights it has; the status shows others' errors and counts to no one
SELECT pipeline, owner, state, dead_letters, last_error FROM sales_kafka.pipeline_status ORDER BY pipeline;
SET ROLE regress_sales_kafka_member;
SELECT pipeline, error FROM sales_kafka.dead_letter ORDER BY id;
SELECT pipeline, dead_letters FROM sales_kafka.pipeline_status ORDER BY pipeline;
DELETE FROM sales_kafka.dead_letter;
RESET ROLE;
SET ROLE regress_sales_kafka_other;
SELECT pipeline, error FROM sales_kafka.dead_letter ORDER BY id;
RESET ROLE;
SELECT pipeline, owner FROM sales_kafka.dead_letter ORDER BY id;
UPDATE sales_kafka.pipeline SET failure = 'value "secret" refused' WHERE name = 'lines';
SET ROLE regress_sales_kafka_owner;
SELECT pipeline, state, last_error FROM sales_kafka.pipeline_status ORDER BY pipeline;
RESET ROLE;
DELETE FROM sales_kafka.dead_letter;
DELETE FROM sales_kafka.pipeline_offset;
DELETE FROM sales_kafka.pipeline;

-------------------------------------------------------------------------------
-- The extension: the update path and the install script of 1.3 make the
-- same objects
-------------------------------------------------------------------------------

CREATE TEMP TABLE updated AS SELECT * FROM pg_temp.describe_extension();
DROP EXTENSION sales_kafka;
CREATE EXTENSION sales_kafka;
SELECT extversion FROM pg_extension WHERE extname = 'sales_kafka';
-- what only one of the two has
SELECT 'updated' AS made_by, * FROM (TABLE updated EXCEPT SELECT * FROM pg_temp.describe_extension()) u
UNION ALL
SELECT 'installed', * FROM (SELECT * FROM pg_temp.describe_extension() EXCEPT TABLE updated) i
 ORDER BY object, property, made_by;
-- (and this compares what both have: functions, views, tables, sequences,
-- the wrapper, the schema, privileges, comments)
SELECT DISTINCT split_part(object, ' ', 1) AS kind FROM updated ORDER BY 1;
-- every object users see has a comment
SELECT pg_describe_object(classid, objid, objsubid) AS uncommented
  FROM pg_depend d
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'sales_kafka')
   AND classid IN ('pg_class'::regclass, 'pg_proc'::regclass, 'pg_foreign_data_wrapper'::regclass)
   AND NOT (classid = 'pg_class'::regclass AND (SELECT relkind FROM pg_class WHERE oid = objid) IN ('S', 'i'))
   AND obj_description(objid, (SELECT relname FROM pg_class WHERE oid = classid)) IS NULL
 ORDER BY 1;
-- and every column of its tables and views
SELECT a.attrelid::regclass AS relation, a.attname AS uncommented_column
  FROM pg_depend d
  JOIN pg_class c ON c.oid = d.objid AND c.relkind IN ('r', 'v')
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND d.classid = 'pg_class'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'sales_kafka')
   AND col_description(c.oid, a.attnum) IS NULL
 ORDER BY 1, 2;
DROP EXTENSION sales_kafka;

-------------------------------------------------------------------------------
-- Sales models made by 1.2, with data, upgraded to 1.3.  One transaction,
-- so that the models of 1.2 and those of 1.3 get the same monthly
-- partitions (made around now()).
-------------------------------------------------------------------------------

-- (1.2's create_sales_model needs CREATE on the database)
DO $$BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO regress_sales_kafka_owner', current_database()); END$$;
BEGIN;
CREATE EXTENSION sales_kafka VERSION '1.2';
SET ROLE regress_sales_kafka_owner;
SELECT sales_kafka.create_sales_model('regress_old_plain', time_zone => 'America/New_York');
SELECT sales_kafka.create_sales_model('regress_old_part', partitioned => true, time_zone => 'Europe/Berlin');
RESET ROLE;
-- a pipeline of 1.2 into the order lines, whose offsets the KPIs cover
INSERT INTO sales_kafka.pipeline (name, source, target, owner) VALUES
  ('regress_old_plain_order_lines', 'upgrade_t', 'regress_old_plain.order_lines', 'regress_sales_kafka_owner');
INSERT INTO sales_kafka.pipeline_offset (pipeline, topic, partition, next_offset, high_watermark) VALUES
  ('regress_old_plain_order_lines', 't_lines', 0, 7, 9);
-- a model fed by 1.2's metrics shape: its foreign table src_metrics put the
-- record id "id" in metric_id (the foreign table as 1.2's
-- create_sales_pipelines made it, without its pipeline)
CREATE SERVER regress_upgrade_kafka FOREIGN DATA WRAPPER sales_kafka;
GRANT USAGE ON FOREIGN SERVER regress_upgrade_kafka TO regress_sales_kafka_owner;
SET ROLE regress_sales_kafka_owner;
SELECT sales_kafka.create_sales_model('regress_old_stream', time_zone => 'UTC');
CREATE FOREIGN TABLE regress_old_stream.src_metrics (
    metric_id text OPTIONS (field 'id'), measured_at timestamptz OPTIONS (field 'timestamp'),
    stock_price numeric(14,4), sales_trend numeric)
  SERVER regress_upgrade_kafka OPTIONS (topic 'stocks');
INSERT INTO regress_old_stream.metrics VALUES
  ('1', '2024-03-01 10:05+00', 10.5, 1.0), ('2', '2024-03-01 10:06+00', 11.0, 2.0),
  ('3', '2024-03-01 10:12+00', 12.0, 1.5);
SELECT metric_id, samples FROM regress_old_stream.kpi_metrics_10min;
RESET ROLE;

-- the same data into each model: the new ones get theirs after 1.3 made them;
-- metric records are a series and a record id in 1.3 (made_for), and what
-- 1.2 keyed (metric_id, measured_at) becomes (series, record_id = the time)
CREATE TEMP TABLE fixture (n serial, step integer, statement text, made_for text);
INSERT INTO fixture (step, statement) VALUES
  (1, $$INSERT INTO %1$I.products VALUES
        ('P1', 'Chair', 'Furniture', 'Chairs'), ('P2', 'Pen', 'Office Supplies', 'Art')$$),
  (1, $$INSERT INTO %1$I.customers VALUES
        ('C1', 'Ann', 'Consumer', 'US', 'New York City', 'New York', '10001', 'East'),
        ('C2', 'Bob', 'Corporate', 'US', 'Boston', 'Massachusetts', '02108', 'East')$$),
  (1, $$INSERT INTO %1$I.orders VALUES
        ('O1', 'C1', '2024-03-01 10:00+00', '2024-03-03', 'First Class', 'High'),
        ('O2', 'C2', '2024-03-02 15:30+00', NULL, NULL, NULL)$$),
  (1, $$INSERT INTO %1$I.order_lines (order_id, line, sold_at, product_id, quantity, unit_price, discount) VALUES
        ('O1', 1, '2024-03-01 10:00+00', 'P1', 2, 100.00, 0.1),
        ('O1', 2, '2024-03-01 10:00+00', 'P2', 5, 2.00, 0),
        ('O2', 1, '2024-03-02 15:30+00', 'P1', 1, 100.00, 0),
        ('O0', 1, '2023-03-05 12:00+00', 'P2', 10, 1.50, 0)$$),
  -- after the upgrade: new lines, an unknown product, a customer who moves
  (2, $$INSERT INTO %1$I.order_lines (order_id, line, sold_at, product_id, quantity, unit_price) VALUES
        ('O3', 1, '2024-04-10 09:00+00', 'P3', 1, 700.00),
        ('O2', 2, '2024-03-02 15:30+00', 'P2', 3, 2.00)$$),
  (2, $$UPDATE %1$I.customers SET region = 'West' WHERE customer_id = 'C2'$$);
INSERT INTO fixture (step, made_for, statement) VALUES
  (1, '1.2', $$INSERT INTO %1$I.metrics VALUES
        ('m1', '2024-03-01 10:05+00', 10.5, 1.0), ('m1', '2024-03-01 10:12+00', 11.0, 2.0),
        ('m1', '2024-03-01 10:25+00', 10.0, 1.5)$$),
  (1, '1.3', $$INSERT INTO %1$I.metrics (series, record_id, measured_at, stock_price, sales_trend) VALUES
        ('m1', '2024-03-01T10:05:00Z', '2024-03-01 10:05+00', 10.5, 1.0),
        ('m1', '2024-03-01T10:12:00Z', '2024-03-01 10:12+00', 11.0, 2.0),
        ('m1', '2024-03-01T10:25:00Z', '2024-03-01 10:25+00', 10.0, 1.5)$$),
  -- after the upgrade: a new record, and one corrected
  (2, '1.3', $$INSERT INTO %1$I.metrics (series, record_id, measured_at, stock_price, sales_trend)
        VALUES ('m1', '2024-03-01T10:31:00Z', '2024-03-01 10:31+00', 12.0, 1.0)$$),
  (2, '1.3', $$UPDATE %1$I.metrics SET stock_price = 10.75 WHERE record_id = '2024-03-01T10:12:00Z'$$);
CREATE FUNCTION pg_temp.load(model name, fixture_step integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    f text;
BEGIN
    FOR f IN SELECT statement FROM fixture
              WHERE step = fixture_step
                AND (made_for IS NULL
                     OR made_for = CASE WHEN EXISTS (SELECT FROM pg_attribute
                                                      WHERE attrelid = format('%I.metrics', model)::regclass
                                                        AND attname = 'metric_id' AND NOT attisdropped)
                                        THEN '1.2' ELSE '1.3' END)
              ORDER BY n
    LOOP
        EXECUTE format(f, model);
    END LOOP;
END
$$;

SELECT pg_temp.load('regress_old_plain', 1), pg_temp.load('regress_old_part', 1);
SELECT sales_kafka.refresh_kpis('regress_old_plain'), sales_kafka.refresh_kpis('regress_old_part');
SET ROLE regress_sales_kafka_owner;
-- the owner's code in the model: a trigger that notes as whom it runs, and
-- whether in a security-restricted operation (which refuses temporary
-- tables)
CREATE TABLE regress_old_plain.seen (event text, run_as name, restricted boolean);
CREATE FUNCTION regress_old_plain.note() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    restricted boolean := false;
BEGIN
    BEGIN
        CREATE TEMP TABLE note_probe ();
        DROP TABLE note_probe;
    EXCEPTION WHEN insufficient_privilege THEN
        restricted := true;
    END;
    INSERT INTO regress_old_plain.seen VALUES (TG_TABLE_NAME || ' ' || TG_OP, current_user, restricted);
    RETURN NEW;
END
$$;
CREATE TRIGGER note BEFORE UPDATE ON regress_old_plain.kpi_state
    FOR EACH ROW EXECUTE FUNCTION regress_old_plain.note();
RESET ROLE;
CREATE TEMP TABLE data_1_2 AS
  SELECT 'plain' AS model, relation, row_text FROM pg_temp.model_data('regress_old_plain')
  UNION ALL SELECT 'part', relation, row_text FROM pg_temp.model_data('regress_old_part');
SELECT count(*) > 0 AS has_data FROM data_1_2;
-- the three materialized KPIs of 1.2, which 1.3 reads from the rollups
CREATE TEMP TABLE mv_1_2 AS
  SELECT 'plain' AS model, 'kpi_top_products' AS kpi, to_jsonb(t) AS row_json FROM regress_old_plain.mv_top_products t
  UNION ALL SELECT 'plain', 'kpi_price_distribution', to_jsonb(t) FROM regress_old_plain.mv_price_distribution t
  UNION ALL SELECT 'plain', 'kpi_growth_yoy', to_jsonb(t) FROM regress_old_plain.mv_growth_yoy t
  UNION ALL SELECT 'part', 'kpi_top_products', to_jsonb(t) FROM regress_old_part.mv_top_products t
  UNION ALL SELECT 'part', 'kpi_price_distribution', to_jsonb(t) FROM regress_old_part.mv_price_distribution t
  UNION ALL SELECT 'part', 'kpi_growth_yoy', to_jsonb(t) FROM regress_old_part.mv_growth_yoy t;
-- and the columns of each of its objects, in order
CREATE TEMP TABLE columns_1_2 AS
  SELECT c.relname::text AS relation, array_agg(a.attname::text ORDER BY a.attnum) AS columns
    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
   WHERE c.relnamespace = 'regress_old_plain'::regnamespace
     AND c.relname IN (SELECT object FROM sales_kafka._model_comments())
   GROUP BY c.relname;
-- the committed offset has moved on since the KPIs were refreshed
UPDATE sales_kafka.pipeline_offset SET next_offset = 8 WHERE pipeline = 'regress_old_plain_order_lines';
SELECT pipeline, topic, partition, covered_offset, committed_offset, high_watermark
  FROM regress_old_plain.kpi_as_of_partitions;

ALTER EXTENSION sales_kafka UPDATE TO '1.3';
-- the models of 1.2 still work, and are not changed
SELECT sales_kafka.refresh_rollups('regress_old_part');
SELECT * FROM regress_old_plain.kpi_totals;
SELECT pipeline, topic, partition, covered_offset, committed_offset, high_watermark
  FROM regress_old_plain.kpi_as_of_partitions;
SELECT to_regclass('regress_old_plain.kpi_state') IS NOT NULL AS has_model,
       (SELECT count(*) FROM pg_attribute
         WHERE attrelid = 'regress_old_plain.kpi_state'::regclass AND attname = 'model_version') AS version_columns;

-- a view of the owner's on a cube of 1.2 (which 1.3 cuts into one view
-- per grain) or on a view whose column types 1.3 changes: the upgrade
-- refuses, naming it, and changes nothing
SAVEPOINT dependent_view;
CREATE VIEW regress_old_plain.my_daily AS
  SELECT period_start, sum(revenue) AS revenue FROM regress_old_plain.kpi_product_sales
   WHERE grain = 'day' GROUP BY 1;
CREATE VIEW regress_old_plain.my_total AS SELECT revenue FROM regress_old_plain.kpi_totals;
\set SHOW_CONTEXT never
SELECT sales_kafka.upgrade_sales_model('regress_old_plain');      -- ERROR: views depend on changed views
\set SHOW_CONTEXT errors
ROLLBACK TO SAVEPOINT dependent_view;
-- a grant of the owner's on a view that the upgrade makes again is kept
SET ROLE regress_sales_kafka_owner;
GRANT SELECT ON regress_old_plain.kpi_totals TO regress_sales_kafka_other WITH GRANT OPTION;
RESET ROLE;

-- upgrade_sales_model: run as the owner, security-restricted, by whoever
-- has the owner's privileges; returns the version the model had
DELETE FROM regress_old_plain.seen;
SELECT sales_kafka.upgrade_sales_model('regress_old_plain');
SELECT DISTINCT event, run_as, restricted FROM regress_old_plain.seen;
SELECT has_table_privilege('regress_sales_kafka_other', 'regress_old_plain.kpi_totals', 'SELECT WITH GRANT OPTION')
       AS grant_kept;
REVOKE SELECT ON regress_old_plain.kpi_totals FROM regress_sales_kafka_other CASCADE;
SET ROLE regress_sales_kafka_member;
SELECT sales_kafka.upgrade_sales_model('regress_old_part');
RESET ROLE;
SELECT model_version FROM regress_old_plain.kpi_state;
-- again: nothing to change
SELECT sales_kafka.upgrade_sales_model('regress_old_plain');
-- the covered offsets name their pipeline's id, as those of 1.3 do
SELECT pipeline, topic, partition, covered_offset, committed_offset, high_watermark
  FROM regress_old_plain.kpi_as_of_partitions;
SELECT jsonb_path_query(covered_offsets, '$[*].pipeline_id') = to_jsonb(p.id) AS same_id
  FROM regress_old_plain.kpi_state, sales_kafka.pipeline p
 WHERE p.name = 'regress_old_plain_order_lines';
-- 1.2's metrics: each metric_id was a series, and a record's id is its time;
-- but those of the metrics shape were record ids of the series named after
-- the topic, whose foreign table now maps the series and the record id
SELECT series, record_id, measured_at, stock_price, sales_trend, ingest_id
  FROM regress_old_plain.metrics ORDER BY series, record_id;
SELECT sales_kafka.upgrade_sales_model('regress_old_stream');
SELECT series, record_id, measured_at, stock_price, sales_trend, ingest_id
  FROM regress_old_stream.metrics ORDER BY series, record_id;
SELECT attname, attfdwoptions FROM pg_attribute
 WHERE attrelid = 'regress_old_stream.src_metrics'::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;
SELECT sales_kafka.refresh_rollups('regress_old_stream');
SELECT series, period_start, samples, stock_price_open, stock_price_close, stock_price_average
  FROM regress_old_stream.kpi_metrics_10min;
SET client_min_messages = warning;
DROP SCHEMA regress_old_stream CASCADE;
RESET client_min_messages;
DROP SERVER regress_upgrade_kafka;
-- what the owner added to the schema is the owner's still
SELECT relname FROM pg_class WHERE relname = 'seen' AND relnamespace = 'regress_old_plain'::regnamespace;
SELECT obj_description('regress_old_plain.seen'::regclass, 'pg_class') AS seen_comment,
       has_table_privilege('sales_kafka_reader', 'regress_old_plain.seen', 'SELECT') AS reader_sees_it;
DROP TABLE regress_old_plain.seen;
DROP FUNCTION regress_old_plain.note() CASCADE;

-- 1.3 makes its models
SET ROLE regress_sales_kafka_owner;
SELECT sales_kafka.create_sales_model('regress_new_plain', time_zone => 'America/New_York');
SELECT sales_kafka.create_sales_model('regress_new_part', partitioned => true, time_zone => 'Europe/Berlin');
RESET ROLE;
SELECT pg_temp.load('regress_new_plain', 1), pg_temp.load('regress_new_part', 1);
SELECT sales_kafka.refresh_kpis('regress_new_plain'), sales_kafka.refresh_kpis('regress_new_part');
-- an upgraded model is the model 1.3 makes: what only one of them has
SELECT * FROM pg_temp.differences('describe_model', 'regress_old_plain', 'regress_new_plain')
UNION ALL
SELECT * FROM pg_temp.differences('describe_model', 'regress_old_part', 'regress_new_part')
 ORDER BY model, object, property;
-- (with this many objects, columns and partitions)
SELECT count(DISTINCT object) AS objects, count(*) AS properties FROM pg_temp.describe_model('regress_old_part');
COMMIT;

-- 1.3 adds kpi_state.model_version, changes the columns of these views
-- (BI conventions: one grain per view, date columns), drops the cubes
-- and the materialized KPIs: the views' rows are compared below with those
-- of the models 1.3 makes
CREATE TEMP VIEW columns_1_3 AS
  SELECT c.relname::text AS relation, array_agg(a.attname::text ORDER BY a.attnum) AS columns
    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
   WHERE c.relnamespace = 'regress_old_plain'::regnamespace
   GROUP BY c.relname;
SELECT o.relation, n.relation IS NULL AS dropped
  FROM columns_1_2 o LEFT JOIN columns_1_3 n ON n.relation = o.relation
 WHERE n.columns IS DISTINCT FROM o.columns
 ORDER BY 1;
-- the data and rollups of 1.2 are there, and are those of 1.3, in every
-- relation whose columns 1.3 keeps: but the rows per product and minute
-- and the rows per customer of grains other than hour, which 1.3 no
-- longer keeps, and the materialized KPIs, which 1.3 no
-- longer has (compared below); a metric row of 1.2 is its record's
-- series, time and values now (the metric summaries, per series now, are
-- compared with a new model's below)
SELECT model, relation, row_text FROM data_1_2
 WHERE NOT (relation = 'rollup_product' AND row_text LIKE '(minute,%')
   AND NOT (relation = 'rollup_customer' AND row_text NOT LIKE '(hour,%')
   AND relation NOT IN ('kpi_top_products', 'kpi_price_distribution', 'kpi_growth_yoy')
   AND (relation IN ('kpi_state', 'metrics')
        OR relation IN (SELECT o.relation FROM columns_1_2 o JOIN columns_1_3 n USING (relation, columns)))
EXCEPT
(SELECT 'plain', relation, row_text FROM pg_temp.model_data('regress_old_plain')
 UNION ALL SELECT 'part', relation, row_text FROM pg_temp.model_data('regress_old_part')
 UNION ALL SELECT 'plain', 'metrics', row(series, measured_at, stock_price, sales_trend)::text
             FROM regress_old_plain.metrics
 UNION ALL SELECT 'part', 'metrics', row(series, measured_at, stock_price, sales_trend)::text
             FROM regress_old_part.metrics)
ORDER BY 1, 2, 3;
-- the KPIs that were materialized views show what those showed (as
-- numbers: 1.3 gives money two decimals)
CREATE TEMP VIEW kpi_1_3 AS
  SELECT 'plain' AS model, 'kpi_top_products' AS kpi, to_jsonb(t) AS row_json FROM regress_old_plain.kpi_top_products t
  UNION ALL SELECT 'plain', 'kpi_price_distribution', to_jsonb(t) FROM regress_old_plain.kpi_price_distribution t
  UNION ALL SELECT 'plain', 'kpi_growth_yoy', to_jsonb(t) FROM regress_old_plain.kpi_growth_yoy t
  UNION ALL SELECT 'part', 'kpi_top_products', to_jsonb(t) FROM regress_old_part.kpi_top_products t
  UNION ALL SELECT 'part', 'kpi_price_distribution', to_jsonb(t) FROM regress_old_part.kpi_price_distribution t
  UNION ALL SELECT 'part', 'kpi_growth_yoy', to_jsonb(t) FROM regress_old_part.kpi_growth_yoy t;
SELECT m.model, m.kpi, m.row_json AS row_of_1_2_missing_in_1_3
  FROM mv_1_2 m
 WHERE NOT EXISTS (
       SELECT FROM kpi_1_3 n
        WHERE n.model = m.model AND n.kpi = m.kpi
          AND NOT EXISTS (SELECT FROM jsonb_each(m.row_json) o
                           WHERE (n.row_json -> o.key) IS DISTINCT FROM o.value
                             AND NOT (jsonb_typeof(o.value) = 'number'
                                      AND jsonb_typeof(n.row_json -> o.key) = 'number'
                                      AND (n.row_json ->> o.key)::numeric = (o.value #>> '{}')::numeric)))
 ORDER BY 1, 2, 3;
SELECT (SELECT count(*) FROM mv_1_2) AS rows_of_1_2, (SELECT count(*) FROM kpi_1_3) AS rows_of_1_3;
-- and go on as those of a model of 1.3
SELECT m, pg_temp.load(m, 2), sales_kafka.refresh_kpis(m)
  FROM unnest('{regress_old_plain,regress_new_plain,regress_old_part,regress_new_part}'::name[]) AS m;
SELECT * FROM pg_temp.differences('model_data', 'regress_old_plain', 'regress_new_plain')
UNION ALL
SELECT * FROM pg_temp.differences('model_data', 'regress_old_part', 'regress_new_part')
 ORDER BY 1, 2, 4;
SELECT * FROM regress_old_plain.kpi_totals;
SELECT region, revenue, sales_count FROM regress_old_plain.kpi_sales_by_region;

-- DROP EXTENSION ... CASCADE keeps a model but its kpi_as_of_partitions,
-- which reads the extension's pipeline_partitions: upgrade_sales_model
-- makes it again, with its comment and grant
SET client_min_messages = warning;
DROP EXTENSION sales_kafka CASCADE;
RESET client_min_messages;
CREATE EXTENSION sales_kafka;
SELECT to_regclass('regress_old_plain.kpi_as_of_partitions') IS NULL AS dropped;
SELECT sales_kafka.upgrade_sales_model('regress_old_plain');
SELECT obj_description('regress_old_plain.kpi_as_of_partitions'::regclass, 'pg_class') IS NOT NULL AS commented,
       has_table_privilege('sales_kafka_reader', 'regress_old_plain.kpi_as_of_partitions', 'SELECT') AS granted;

-- invalid
\set VERBOSITY terse
SELECT sales_kafka.upgrade_sales_model('regress_no_model');       -- ERROR: no model
SELECT sales_kafka.upgrade_sales_model(NULL);                     -- ERROR: null
SET ROLE regress_sales_kafka_other;
SELECT sales_kafka.upgrade_sales_model('regress_old_plain');      -- ERROR: not the owner's privileges
RESET ROLE;
UPDATE regress_old_plain.kpi_state SET model_version = '1.9';
SELECT sales_kafka.upgrade_sales_model('regress_old_plain');      -- ERROR: newer than the extension
UPDATE regress_old_plain.kpi_state SET model_version = 'one';
SELECT sales_kafka.upgrade_sales_model('regress_old_plain');      -- ERROR: not a version
\set VERBOSITY default

SET client_min_messages = warning;
DROP SCHEMA regress_old_plain, regress_old_part, regress_new_plain, regress_new_part CASCADE;
RESET client_min_messages;
DROP EXTENSION sales_kafka;
DROP TABLE upgrade_t;
DO $$BEGIN EXECUTE format('REVOKE CREATE ON DATABASE %I FROM regress_sales_kafka_owner', current_database()); END$$;
DROP ROLE regress_sales_kafka_member;
DROP ROLE regress_sales_kafka_owner;
DROP ROLE regress_sales_kafka_other;
