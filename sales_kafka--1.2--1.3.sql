/* sales_kafka--1.2--1.3.sql: pipelines of several roles */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION sales_kafka UPDATE TO '1.3'" to load this file. \quit

-------------------------------------------------------------------------------
-- Pipeline names are unique per owner, as pg_cron's job names are per user:
-- no role can take a name another role wants.  Inside, a pipeline is known
-- by an id, which its offsets, its dead letters, its workers' shared memory
-- and its Kafka group id use.  The functions that take a name look for it
-- among the pipelines of roles whose rights the caller has, its own first.
-------------------------------------------------------------------------------

ALTER TABLE sales_kafka.pipeline ADD COLUMN id bigserial;
ALTER TABLE sales_kafka.pipeline DROP CONSTRAINT pipeline_pkey;
ALTER TABLE sales_kafka.pipeline ADD PRIMARY KEY (id);
ALTER TABLE sales_kafka.pipeline ADD UNIQUE (owner, name);

COMMENT ON COLUMN sales_kafka.pipeline.id IS 'identity of the pipeline, which offsets, dead letters, workers and the Kafka group id refer to';
COMMENT ON COLUMN sales_kafka.pipeline.name IS 'name of the pipeline, unique per owner';

SELECT pg_catalog.pg_extension_config_dump('sales_kafka.pipeline_id_seq', '');

-- offsets: by pipeline id (offsets of no pipeline cannot be used: dropped)
ALTER TABLE sales_kafka.pipeline_offset ADD COLUMN pipeline_id bigint;
UPDATE sales_kafka.pipeline_offset o SET pipeline_id = p.id
  FROM sales_kafka.pipeline p
 WHERE p.name = o.pipeline;
DELETE FROM sales_kafka.pipeline_offset WHERE pipeline_id IS NULL;
ALTER TABLE sales_kafka.pipeline_offset ALTER COLUMN pipeline_id SET NOT NULL;
ALTER TABLE sales_kafka.pipeline_offset DROP CONSTRAINT pipeline_offset_pkey;
ALTER TABLE sales_kafka.pipeline_offset ADD PRIMARY KEY (pipeline_id, topic, partition);

COMMENT ON COLUMN sales_kafka.pipeline_offset.pipeline_id IS 'id of the pipeline (sales_kafka.pipeline.id)';

-------------------------------------------------------------------------------
-- Dead letters: each owner reads (and may delete) those of its own
-- pipelines, and only those, as members of a role share its rights.  They
-- outlive their pipeline, so they keep its name and owner; the worker
-- fills both.  Dead letters of pipelines dropped before 1.3 have no owner:
-- only superusers see them.
-------------------------------------------------------------------------------

ALTER TABLE sales_kafka.dead_letter ADD COLUMN pipeline_id bigint;
ALTER TABLE sales_kafka.dead_letter ADD COLUMN owner regrole;
UPDATE sales_kafka.dead_letter d SET pipeline_id = p.id, owner = p.owner
  FROM sales_kafka.pipeline p
 WHERE p.name = d.pipeline;
CREATE INDEX ON sales_kafka.dead_letter (pipeline_id, failed_at);

COMMENT ON TABLE sales_kafka.dead_letter IS
'messages a pipeline could not write, with the reason; written in the transaction of their batch; each role sees those of the pipelines of roles whose rights it has';
COMMENT ON COLUMN sales_kafka.dead_letter.pipeline IS 'name of the pipeline (kept when the pipeline is dropped)';
COMMENT ON COLUMN sales_kafka.dead_letter.pipeline_id IS 'id of the pipeline (sales_kafka.pipeline.id)';
COMMENT ON COLUMN sales_kafka.dead_letter.owner IS 'owner of the pipeline: the roles with its rights see the dead letter';

ALTER TABLE sales_kafka.dead_letter ENABLE ROW LEVEL SECURITY;
-- pg_has_role() of a dropped role is false, not an error
CREATE POLICY owner_reads ON sales_kafka.dead_letter FOR SELECT
  USING (pg_catalog.pg_has_role(owner, 'USAGE'));
CREATE POLICY owner_deletes ON sales_kafka.dead_letter FOR DELETE
  USING (pg_catalog.pg_has_role(owner, 'USAGE'));
COMMENT ON POLICY owner_reads ON sales_kafka.dead_letter IS
'a role reads the dead letters of the pipelines of roles whose rights it has';
COMMENT ON POLICY owner_deletes ON sales_kafka.dead_letter IS
'a role deletes the dead letters of the pipelines of roles whose rights it has';
GRANT SELECT, DELETE ON sales_kafka.dead_letter TO PUBLIC;

-------------------------------------------------------------------------------
-- Watching pipelines: the views keep their columns and gain the owner.
-- What the workers hold in shared memory now comes by pipeline id.  An
-- error text can show a message's values: pipeline_status shows it, and
-- counts the dead letters, only to roles with the rights of the pipeline's
-- owner, as pg_stat_activity shows queries.
-------------------------------------------------------------------------------

CREATE FUNCTION sales_kafka._pipeline_slots(
    OUT pipeline_id bigint, OUT worker integer, OUT pid integer, OUT state text,
    OUT started_at timestamptz, OUT messages bigint, OUT rows_written bigint,
    OUT dead_letters bigint, OUT messages_per_second double precision,
    OUT rows_per_second double precision, OUT last_commit_at timestamptz,
    OUT last_error text, OUT last_error_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sales_kafka_pipeline_slots'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION sales_kafka._pipeline_slots() IS
'internal: the pipeline workers of this database as shared memory shows them (last_error only to roles with the rights of the pipeline''s owner)';

CREATE OR REPLACE VIEW sales_kafka.pipeline_partitions AS
SELECT p.name AS pipeline,
       o.topic,
       o.partition,
       o.next_offset AS committed_offset,
       o.high_watermark,
       GREATEST(o.high_watermark - o.next_offset, 0) AS lag,
       o.updated_at,
       p.owner
  FROM sales_kafka.pipeline_offset o
  JOIN sales_kafka.pipeline p ON p.id = o.pipeline_id;

COMMENT ON COLUMN sales_kafka.pipeline_partitions.owner IS 'owner of the pipeline';

CREATE OR REPLACE VIEW sales_kafka.pipeline_status AS
SELECT p.name AS pipeline,
       p.source,
       p.target,
       p.mode,
       CASE WHEN p.failure IS NOT NULL THEN 'failed'
            WHEN NOT p.enabled THEN 'stopped'
            WHEN w.states IS NULL THEN 'starting'
            WHEN 'running' = ALL (w.states) THEN 'running'
            WHEN 'backoff' = ANY (w.states) THEN 'backoff'
            ELSE w.states[1] END AS state,
       w.pids AS worker_pids,
       o.partitions,
       o.lag,
       coalesce(w.messages_per_second, 0) AS messages_per_second,
       coalesce(w.rows_per_second, 0) AS rows_per_second,
       coalesce(w.rows_written, 0) AS rows_written,
       CASE WHEN pg_catalog.pg_has_role(p.owner, 'USAGE')
            THEN (SELECT count(*) FROM sales_kafka.dead_letter d
                   WHERE d.pipeline_id = p.id) END AS dead_letters,
       CASE WHEN pg_catalog.pg_has_role(p.owner, 'USAGE')
            THEN coalesce(p.failure, w.last_error)
            WHEN p.failure IS NOT NULL OR w.last_error_at IS NOT NULL
            THEN '<insufficient privilege>' END AS last_error,
       CASE WHEN p.failure IS NOT NULL THEN p.failed_at
            ELSE w.last_error_at END AS last_error_at,
       coalesce(w.last_commit_at, o.updated_at) AS last_commit_at,
       p.owner
  FROM sales_kafka.pipeline p
  LEFT JOIN (SELECT pipeline_id,
                    array_agg(state ORDER BY worker) AS states,
                    array_agg(pid ORDER BY worker) FILTER (WHERE pid IS NOT NULL) AS pids,
                    sum(messages_per_second) AS messages_per_second,
                    sum(rows_per_second) AS rows_per_second,
                    sum(rows_written) AS rows_written,
                    (array_agg(last_error ORDER BY last_error_at DESC NULLS LAST))[1] AS last_error,
                    max(last_error_at) AS last_error_at,
                    max(last_commit_at) AS last_commit_at
               FROM sales_kafka._pipeline_slots()
              GROUP BY pipeline_id) w ON w.pipeline_id = p.id
  LEFT JOIN (SELECT pipeline_id,
                    count(*) AS partitions,
                    sum(GREATEST(high_watermark - next_offset, 0)) AS lag,
                    max(updated_at) AS updated_at
               FROM sales_kafka.pipeline_offset
              GROUP BY pipeline_id) o ON o.pipeline_id = p.id;

COMMENT ON COLUMN sales_kafka.pipeline_status.dead_letters IS 'messages in sales_kafka.dead_letter for this pipeline; NULL unless you have the rights of its owner';
COMMENT ON COLUMN sales_kafka.pipeline_status.last_error IS 'why the pipeline failed, or the last error its workers met; <insufficient privilege> unless you have the rights of its owner';
COMMENT ON COLUMN sales_kafka.pipeline_status.owner IS 'owner of the pipeline, whose rights its workers use';

DROP FUNCTION sales_kafka._pipeline_workers();

ALTER TABLE sales_kafka.pipeline_offset DROP COLUMN pipeline;

-------------------------------------------------------------------------------
-- Managing pipelines: the same functions, with names looked up per owner
-------------------------------------------------------------------------------

COMMENT ON FUNCTION sales_kafka.create_pipeline(text, regclass, regclass, text, integer, interval, text, integer) IS
'defines a pipeline owned by the current user (names are unique per owner) that reads a topic through a sales_kafka foreign table into a table, checking the column mapping and privileges now; start it with start_pipeline';
COMMENT ON FUNCTION sales_kafka.reset_pipeline(text, text) IS
'makes a pipeline read its topic again from ''earliest'', ''latest'', a time, or the partition offsets of a JSON object such as ''{"0": 42}'' (restarting its workers if it runs)';

-------------------------------------------------------------------------------
-- 1.3 security: the extension's schema belongs to a superuser.
--
-- The C functions write the catalog tables above as superuser, naming
-- them sales_kafka.pipeline and so on.  A role that may create schemas
-- could make schema sales_kafka before CREATE EXTENSION, which then
-- installs into it; the schema's owner could later rename it and put a
-- schema of its own, with a trigger on its own "pipeline" table, in its
-- place.  So the extension refuses to be installed, or updated, in a
-- schema a superuser does not own, or whose name is no longer sales_kafka;
-- the C side checks the same before each catalog statement
-- (src/extension_schema.c).  CREATE EXTENSION runs this script too, after
-- those of 1.0 to 1.2, and the error rolls all of them back.
-------------------------------------------------------------------------------

DO $$
DECLARE
    nsp pg_catalog.name;
    owner pg_catalog.name;
    is_super boolean;
BEGIN
    SELECT n.nspname, r.rolname, r.rolsuper INTO nsp, owner, is_super
      FROM pg_catalog.pg_extension e
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
      JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
     WHERE e.extname OPERATOR(pg_catalog.=) 'sales_kafka';
    IF nsp OPERATOR(pg_catalog.<>) 'sales_kafka' THEN
        RAISE EXCEPTION 'schema "sales_kafka" is not the schema of extension "sales_kafka"'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = pg_catalog.format('The extension''s schema was renamed to "%s".', nsp),
                  HINT = pg_catalog.format('As a superuser, rename schema "%s" back to "sales_kafka" (after renaming or dropping any other schema of that name) and try again.', nsp);
    END IF;
    IF NOT is_super THEN
        RAISE EXCEPTION 'schema "sales_kafka" is not owned by a superuser'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = pg_catalog.format('Role "%s" owns it, and could change the objects that the extension uses as a superuser.', owner),
                  HINT = 'As a superuser, check what the schema holds, then run ALTER SCHEMA sales_kafka OWNER TO CURRENT_USER (or drop the schema) and try again.';
    END IF;
END
$$;

-------------------------------------------------------------------------------
-- 1.3 security: the KPI functions run as the owner of the model's schema.
--
-- A model's schema, and what is in it, is its owner's: its triggers,
-- rules, defaults and policies run whenever the model's tables are
-- written.  Until 1.2 the functions below ran as their caller, so a
-- superuser (or a pg_cron job of one) refreshing another role's model ran
-- that role's code as superuser.  Now each is a C wrapper (src/kpi.c) that
-- checks that the caller has the privileges of the schema's owner
-- (superusers have them) and runs the plpgsql body, renamed with a leading
-- underscore, as that owner, as REFRESH MATERIALIZED VIEW runs a view's
-- query: with SECURITY_RESTRICTED_OPERATION and search_path = pg_catalog,
-- pg_temp.  The bodies are not for calling directly (they run as their
-- caller): PUBLIC may not execute them.  create_sales_model makes a schema
-- that does not exist yet as the caller (who then owns it) and refuses an
-- existing one whose owner's privileges the caller lacks; the objects of a
-- model belong to its schema's owner.  create_sales_pipelines creates
-- foreign tables and pipelines that belong to that owner too, so the
-- workers write with its rights.  schedule_kpi_refresh is unchanged: its
-- pg_cron jobs run as the role that scheduled them, and the functions they
-- call switch to the model's owner themselves.
-------------------------------------------------------------------------------

ALTER FUNCTION sales_kafka.create_sales_partitions(name, date, date) RENAME TO _create_sales_partitions;
ALTER FUNCTION sales_kafka.refresh_rollups(name) RENAME TO _refresh_rollups;
ALTER FUNCTION sales_kafka.rebuild_rollups(name) RENAME TO _rebuild_rollups;
DROP FUNCTION sales_kafka.refresh_kpis(name);
-- Two bodies change, so they are copies, not renames: create_sales_model
-- no longer makes the schema (CREATE SCHEMA IF NOT EXISTS needs CREATE on
-- the database, which the owner of an existing schema may lack; the C
-- function makes a missing one as the caller), and create_sales_pipelines
-- names its parameter by the function's name.
DROP FUNCTION sales_kafka.create_sales_model(name, boolean, text);
DROP FUNCTION sales_kafka.create_sales_pipelines(name, text, name, text, boolean);

CREATE FUNCTION sales_kafka._create_sales_model(
    model_schema name,
    partitioned boolean DEFAULT false,
    time_zone text DEFAULT current_setting('TimeZone'))
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := quote_ident(model_schema);
    ddl text;
    o record;
    missing text;
BEGIN
    IF model_schema IS NULL OR time_zone IS NULL OR partitioned IS NULL THEN
        RAISE EXCEPTION 'the arguments of sales_kafka.create_sales_model must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM now() AT TIME ZONE time_zone;       -- throws on an unknown zone
    IF to_regclass(s || '.kpi_state') IS NOT NULL THEN
        RAISE EXCEPTION 'schema "%" already has a sales model', model_schema
            USING ERRCODE = 'duplicate_object';
    END IF;

    -- the schema exists: the C function made it if it did not
    ddl := replace(replace(replace(replace(sales_kafka._model_ddl(),
                   '@pk_extra', CASE WHEN partitioned THEN ', sold_at' ELSE '' END),
                   '@partition_by', CASE WHEN partitioned THEN 'PARTITION BY RANGE (sold_at)' ELSE '' END),
                   '@tz', quote_literal(time_zone)),
                   '@s', s);
    EXECUTE ddl;

    IF partitioned THEN
        EXECUTE format('CREATE TABLE %1$s.order_lines_default PARTITION OF %1$s.order_lines DEFAULT', s);
        EXECUTE format('COMMENT ON TABLE %s.order_lines_default IS %L', s,
                       'order lines outside every monthly partition (see sales_kafka.create_sales_partitions)');
        PERFORM sales_kafka.create_sales_partitions(model_schema,
                    (now() - interval '1 year')::date, (now() + interval '1 year')::date);
    END IF;

    -- comments: every object and column of the model has one
    FOR o IN SELECT c.oid, c.relname, c.relkind
               FROM pg_class c
              WHERE c.relnamespace = model_schema::regnamespace
                AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
                AND NOT c.relispartition
    LOOP
        EXECUTE format('COMMENT ON %s %s.%I IS %L',
                       CASE o.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                      WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                       s, o.relname,
                       (SELECT m.comment FROM sales_kafka._model_comments() m
                         WHERE m.object = o.relname));
        FOR missing IN
            SELECT a.attname
              FROM pg_attribute a
             WHERE a.attrelid = o.oid AND a.attnum > 0 AND NOT a.attisdropped
               AND o.relkind <> 'S'
        LOOP
            EXECUTE format('COMMENT ON COLUMN %s.%I.%I IS %L', s, o.relname, missing,
                           (SELECT m.comment FROM sales_kafka._model_comments() m
                             WHERE m.object IS NULL AND m.column_name = missing));
        END LOOP;
    END LOOP;
    SELECT string_agg(format('%s.%s', c.relname, a.attname), ', ')
      INTO missing
      FROM pg_class c
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE c.relnamespace = model_schema::regnamespace
       AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
       AND col_description(c.oid, a.attnum) IS NULL;
    SELECT coalesce(missing || ', ', '') || string_agg(c.relname, ', ')
      INTO missing
      FROM pg_class c
     WHERE c.relnamespace = model_schema::regnamespace
       AND c.relkind IN ('r', 'p', 'v', 'm', 'S') AND NOT c.relispartition
       AND obj_description(c.oid, 'pg_class') IS NULL
    HAVING count(*) > 0 OR missing IS NOT NULL;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'sales model objects without a comment: %', missing
            USING ERRCODE = 'internal_error';
    END IF;

    -- the reader role sees the KPI views, and only them
    EXECUTE format('GRANT USAGE ON SCHEMA %s TO sales_kafka_reader', s);
    FOR o IN SELECT c.relname FROM pg_class c
              WHERE c.relnamespace = model_schema::regnamespace
                AND c.relkind = 'v' AND c.relname LIKE 'kpi\_%'
    LOOP
        EXECUTE format('GRANT SELECT ON %s.%I TO sales_kafka_reader', s, o.relname);
    END LOOP;
END
$$;

CREATE FUNCTION sales_kafka._create_sales_pipelines(
    model_schema name,
    shape text,
    server name,
    topic text,
    start boolean DEFAULT true)
RETURNS SETOF text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := sales_kafka._model_state(model_schema);
    src record;
    pipeline text;
BEGIN
    IF shape IS NULL OR shape NOT IN ('sale_events', 'superstore', 'shop', 'metrics') THEN
        RAISE EXCEPTION 'unknown sales data shape "%"', shape
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The shapes are sale_events, superstore, shop and metrics.';
    END IF;

    FOR src IN
        SELECT * FROM (VALUES
            ('sale_events', 'src_sale_events', '',
             $c$product_id text OPTIONS (field 'product_name'), quantity integer,
                unit_price numeric(12,2) OPTIONS (field 'price'),
                sold_at timestamptz OPTIONS (field 'timestamp')$c$),
            ('superstore', 'src_superstore', '',
             $c$order_id text, line integer OPTIONS (field 'row_id'),
                sold_at timestamptz OPTIONS (field 'order_date'), ship_date date, ship_mode text,
                customer_id text, customer_name text, segment text, country text, city text,
                state text, postal_code text, region text, product_id text, product_name text,
                category text, sub_category text,
                stated_revenue numeric(14,2) OPTIONS (field 'sales'), quantity integer,
                discount numeric(5,4), profit numeric(14,2), order_priority text$c$),
            ('shop', 'src_shop_customers', 'customers',
             $c$customer_id text OPTIONS (kafka 'key'), customer_name text, segment text,
                country text, city text, state text, postal_code text, region text$c$),
            ('shop', 'src_shop_products', 'products',
             $c$product_id text OPTIONS (kafka 'key'), product_name text, category text,
                sub_category text$c$),
            ('shop', 'src_shop_orders', 'orders',
             $c$order_id text OPTIONS (kafka 'key'), customer_id text,
                sold_at timestamptz OPTIONS (field 'order_date'), ship_date date, ship_mode text,
                order_priority text$c$),
            ('shop', 'src_shop_order_items', 'order_items',
             $c$order_id text, line integer, product_id text, quantity integer,
                unit_price numeric(12,2) OPTIONS (field 'price'), discount numeric(5,4),
                sold_at timestamptz OPTIONS (kafka 'timestamp')$c$),
            ('metrics', 'src_metrics', '',
             $c$metric_id text OPTIONS (field 'id'),
                measured_at timestamptz OPTIONS (field 'timestamp'),
                stock_price numeric(14,4), sales_trend numeric$c$)
        ) AS m(shape, ftable, topic_suffix, columns)
        WHERE m.shape = _create_sales_pipelines.shape
    LOOP
        -- the foreign tables: one mapping per topic
        EXECUTE format('CREATE FOREIGN TABLE %s.%I (%s) SERVER %I OPTIONS (topic %L)',
                       s, src.ftable, src.columns, server, topic || src.topic_suffix);
        EXECUTE format('COMMENT ON FOREIGN TABLE %s.%I IS %L', s, src.ftable,
                       format('the %s topic %s, as the sales model reads it', shape, topic || src.topic_suffix));
    END LOOP;

    -- one Superstore topic feeds the dimensions, the orders and the lines
    FOR src IN
        SELECT * FROM (VALUES
            ('sale_events', 'src_sale_events', 'order_lines', 'append'),
            ('superstore', 'src_superstore', 'customers', 'upsert'),
            ('superstore', 'src_superstore', 'products', 'upsert'),
            ('superstore', 'src_superstore', 'orders', 'upsert'),
            ('superstore', 'src_superstore', 'order_lines', 'append'),
            ('shop', 'src_shop_customers', 'customers', 'upsert'),
            ('shop', 'src_shop_products', 'products', 'upsert'),
            ('shop', 'src_shop_orders', 'orders', 'upsert'),
            ('shop', 'src_shop_order_items', 'order_lines', 'append'),
            ('metrics', 'src_metrics', 'metrics', 'upsert')
        ) AS m(shape, ftable, target, mode)
        WHERE m.shape = _create_sales_pipelines.shape
    LOOP
        pipeline := model_schema || '_' || src.target;
        PERFORM sales_kafka.create_pipeline(pipeline, (s || '.' || src.ftable)::regclass,
                                            (s || '.' || src.target)::regclass, src.mode);
        IF start THEN
            PERFORM sales_kafka.start_pipeline(pipeline);
        END IF;
        RETURN NEXT pipeline;
    END LOOP;
END
$$;

-- refresh_kpis in three steps: REFRESH MATERIALIZED VIEW CONCURRENTLY makes
-- a temporary table, which a security-restricted operation may not, so
-- the views are refreshed as the owner without that restriction (the
-- REFRESH restricts itself while the view's query runs); kpi_state, whose
-- triggers are the owner's, is written with it.
CREATE FUNCTION sales_kafka._refresh_views(model_schema name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := sales_kafka._model_state(model_schema);
BEGIN
    EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %s.mv_top_products', s);
    EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %s.mv_price_distribution', s);
    EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %s.mv_growth_yoy', s);
END
$$;

CREATE FUNCTION sales_kafka._note_views_refreshed(model_schema name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('UPDATE %s.kpi_state SET views_refreshed_at = clock_timestamp()',
                   sales_kafka._model_state(model_schema));
END
$$;

REVOKE EXECUTE ON FUNCTION
    sales_kafka._create_sales_model(name, boolean, text),
    sales_kafka._create_sales_partitions(name, date, date),
    sales_kafka._refresh_rollups(name),
    sales_kafka._rebuild_rollups(name),
    sales_kafka._create_sales_pipelines(name, text, name, text, boolean),
    sales_kafka._refresh_views(name),
    sales_kafka._note_views_refreshed(name)
FROM PUBLIC;

COMMENT ON FUNCTION sales_kafka._create_sales_model(name, boolean, text) IS
'internal: the body of create_sales_model, run as the owner of the model''s schema';
COMMENT ON FUNCTION sales_kafka._create_sales_partitions(name, date, date) IS
'internal: the body of create_sales_partitions, run as the owner of the model''s schema';
COMMENT ON FUNCTION sales_kafka._refresh_rollups(name) IS
'internal: the body of refresh_rollups, run as the owner of the model''s schema';
COMMENT ON FUNCTION sales_kafka._rebuild_rollups(name) IS
'internal: the body of rebuild_rollups, run as the owner of the model''s schema';
COMMENT ON FUNCTION sales_kafka._create_sales_pipelines(name, text, name, text, boolean) IS
'internal: the body of create_sales_pipelines, run as the owner of the model''s schema';
COMMENT ON FUNCTION sales_kafka._refresh_views(name) IS
'internal: refresh_kpis refreshes the materialized views of a sales model with it, as the owner of the model''s schema';
COMMENT ON FUNCTION sales_kafka._note_views_refreshed(name) IS
'internal: refresh_kpis notes in kpi_state when it refreshed the materialized views, as the owner of the model''s schema';

CREATE FUNCTION sales_kafka.create_sales_model(
    model_schema name,
    partitioned boolean DEFAULT false,
    time_zone text DEFAULT current_setting('TimeZone'))
RETURNS void
AS 'MODULE_PATHNAME', 'sales_kafka_create_sales_model'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION sales_kafka.create_sales_model(name, boolean, text) IS
'creates a sales model (dimensions, order lines, metrics, rollups, star schema and KPI views) in a new schema owned by the caller, or in an existing one as its owner (the caller needs its privileges)';

CREATE FUNCTION sales_kafka.create_sales_partitions(
    model_schema name,
    from_day date,
    to_day date)
RETURNS integer
AS 'MODULE_PATHNAME', 'sales_kafka_create_sales_partitions'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION sales_kafka.create_sales_partitions(name, date, date) IS
'creates the missing monthly partitions of a partitioned sales model''s order lines from one day''s month to another''s, as the owner of the model''s schema; returns how many';

CREATE FUNCTION sales_kafka.refresh_rollups(model_schema name)
RETURNS bigint
AS 'MODULE_PATHNAME', 'sales_kafka_refresh_rollups'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION sales_kafka.refresh_rollups(name) IS
'adds the order lines written since the last call to a sales model''s rollups, in the same transaction as its progress, as the owner of the model''s schema; returns how many';

CREATE FUNCTION sales_kafka.rebuild_rollups(model_schema name)
RETURNS bigint
AS 'MODULE_PATHNAME', 'sales_kafka_rebuild_rollups'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION sales_kafka.rebuild_rollups(name) IS
'recomputes a sales model''s rollups from all its order lines (after order lines were updated or deleted), as the owner of the model''s schema; returns how many lines';

CREATE FUNCTION sales_kafka.refresh_kpis(model_schema name)
RETURNS bigint
AS 'MODULE_PATHNAME', 'sales_kafka_refresh_kpis'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION sales_kafka.refresh_kpis(name) IS
'brings every KPI of a sales model up to date, as the owner of the model''s schema: the rollups, then the materialized views (CONCURRENTLY); returns how many new order lines';

CREATE FUNCTION sales_kafka.create_sales_pipelines(
    model_schema name,
    shape text,
    server name,
    topic text,
    start boolean DEFAULT true)
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'sales_kafka_create_sales_pipelines'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION sales_kafka.create_sales_pipelines(name, text, name, text, boolean) IS
'creates the foreign tables and pipelines that feed a sales model from topics of one data shape (sale_events, superstore, shop, metrics), owned by the owner of the model''s schema; topic is the topic, or for shop the prefix of its four topics; returns the pipelines';
