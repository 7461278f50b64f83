/* sales_kafka--1.2--1.3.sql: pipelines of several roles */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION sales_kafka UPDATE TO '1.3'" to load this file. \quit

-------------------------------------------------------------------------------
-- 1.3 security: the extension's schema belongs to a superuser.
--
-- The C functions write the catalog tables as superuser, naming them
-- sales_kafka.pipeline and so on.  A role that may create schemas
-- could make schema sales_kafka before CREATE EXTENSION, which then
-- installs into it; the schema's owner could later rename it and put a
-- schema of its own, with a trigger on its own "pipeline" table, in its
-- place.  So the extension refuses to be installed, or updated, in a
-- schema a superuser does not own, or whose name is no longer sales_kafka;
-- the C side checks the same before each catalog statement
-- (src/extension_schema.c).  First, before this script touches anything
-- in the schema.
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
-- owner, as pg_stat_activity shows queries (_pipeline_slots() itself
-- hides them, so that no path shows them).  Workers that find no free slot
-- (or whose owner runs as many as sales_kafka.max_workers_per_owner allows)
-- wait in a list that the launcher serves: pipeline_status shows them
-- "waiting", with the reason.  Offsets name their pipeline by id, which
-- kpi_as_of_partitions joins on: names are unique per owner only.
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
'internal: the pipeline workers of this database as shared memory shows them, and those waiting for a slot (dead_letters and last_error only to roles with the rights of the pipeline''s owner)';

CREATE OR REPLACE VIEW sales_kafka.pipeline_partitions AS
SELECT p.name AS pipeline,
       o.topic,
       o.partition,
       o.next_offset AS committed_offset,
       o.high_watermark,
       GREATEST(o.high_watermark - o.next_offset, 0) AS lag,
       o.updated_at,
       p.owner,
       o.pipeline_id
  FROM sales_kafka.pipeline_offset o
  JOIN sales_kafka.pipeline p ON p.id = o.pipeline_id;

COMMENT ON COLUMN sales_kafka.pipeline_partitions.owner IS 'owner of the pipeline';
COMMENT ON COLUMN sales_kafka.pipeline_partitions.pipeline_id IS 'id of the pipeline (pipeline names are unique per owner only)';

CREATE OR REPLACE VIEW sales_kafka.pipeline_status AS
SELECT p.name AS pipeline,
       p.source,
       p.target,
       p.mode,
       CASE WHEN p.failure IS NOT NULL THEN 'failed'
            WHEN NOT p.enabled THEN 'stopped'
            WHEN pg_catalog.pg_is_in_recovery() THEN 'standby'
            WHEN w.states IS NULL THEN 'starting'
            WHEN 'running' = ALL (w.states) THEN 'running'
            WHEN 'waiting' = ANY (w.states) THEN 'waiting'
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
COMMENT ON COLUMN sales_kafka.pipeline_status.state IS 'running, starting, waiting (for a free worker slot), backoff (restarting after a failure), stopping, stopped, failed, or standby (an enabled pipeline on a hot standby, where no worker runs: it starts on promotion)';

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

-------------------------------------------------------------------------------
-- Pipelines of other roles (security review, pipeline side).
--
-- A flush interval has one length: the workers wait for it in milliseconds
-- that C computes as create_pipeline() checks them, from an interval
-- without months or days (comparing intervals counts a month as 30 days,
-- extract(epoch) a year as 365.25, so '60 mons -1800 days' was "0" to the
-- check but 26 days to the workers, and overflowed their milliseconds in
-- every lookup of its name).  Intervals stored with months or days become
-- the time that the check counted.
-------------------------------------------------------------------------------

UPDATE sales_kafka.pipeline p
   SET flush_interval = make_interval(secs => (
           extract(epoch FROM p.flush_interval - make_interval(months => m.months, days => m.days))
           + (m.months::numeric * 30 + m.days) * 86400)::double precision)
  FROM (SELECT id,
               (extract(year FROM flush_interval) * 12
                + extract(month FROM flush_interval))::integer AS months,
               extract(day FROM flush_interval)::integer AS days
          FROM sales_kafka.pipeline) m
 WHERE m.id = p.id AND (m.months <> 0 OR m.days <> 0);

ALTER TABLE sales_kafka.pipeline DROP CONSTRAINT pipeline_flush_interval_check;
ALTER TABLE sales_kafka.pipeline ADD CONSTRAINT pipeline_flush_interval_check
  CHECK (flush_interval BETWEEN '0' AND '1 hour'
         AND extract(year FROM flush_interval) = 0
         AND extract(month FROM flush_interval) = 0
         AND extract(day FROM flush_interval) = 0);

COMMENT ON COLUMN sales_kafka.pipeline.flush_interval IS 'longest time a message waits for its batch to fill: 0 to 1 hour, without days, months or years';

-------------------------------------------------------------------------------
-- KPI freshness (security review): the offsets a model's KPIs cover are
-- those of the pipelines into its order_lines, told apart by id, not by
-- name: another role's pipeline of the same name (names are unique per
-- owner only) neither joins them in refresh_rollups nor shows in
-- kpi_as_of_partitions.  Each entry of kpi_state.covered_offsets now has
-- the pipeline's id; kpi_as_of_partitions of models created from now on
-- joins on it.  (_refresh_rollups, the body of refresh_rollups, and
-- _model_ddl are as in 1.2 but for the covered offsets: the call of
-- _covered_offsets, and the join of the view on pipeline_id.)
-------------------------------------------------------------------------------

CREATE FUNCTION sales_kafka._covered_offsets(order_lines regclass)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
SELECT coalesce(jsonb_agg(jsonb_build_object('pipeline_id', o.pipeline_id, 'pipeline', o.pipeline,
                                             'topic', o.topic, 'partition', o.partition,
                                             'offset', o.committed_offset)
                          ORDER BY o.pipeline, o.pipeline_id, o.topic, o.partition), '[]')
  FROM sales_kafka.pipeline_status p
  -- (owner, name) is a pipeline's identity, as its id is
  JOIN sales_kafka.pipeline_partitions o ON o.pipeline = p.pipeline AND o.owner = p.owner
 WHERE p.target = order_lines;
END;

COMMENT ON FUNCTION sales_kafka._covered_offsets(regclass) IS
'internal: the committed offsets of every partition of the pipelines into an order_lines table, by pipeline id, for kpi_state.covered_offsets';

CREATE OR REPLACE FUNCTION sales_kafka._refresh_rollups(model_schema name)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := sales_kafka._model_state(model_schema);
    st record;
    covered jsonb;
    upto bigint;
    n bigint;
BEGIN
    -- A snapshot taken at the start would hide rows committed while we
    -- wait below, and they would never be rolled up.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'sales_kafka.refresh_rollups must run at isolation level READ COMMITTED'
            USING ERRCODE = 'active_sql_transaction';
    END IF;

    -- one refresh at a time
    EXECUTE format('SELECT * FROM %s.kpi_state FOR UPDATE', s) INTO st;

    -- Offsets first: each batch committed by now has all its rows below the
    -- sequence value read next, so these offsets are covered.
    covered := sales_kafka._covered_offsets((s || '.order_lines')::regclass);

    -- Every line up to this value is final once the writers that might
    -- still hold a smaller one have ended.
    upto := coalesce(pg_sequence_last_value((s || '.order_lines_ingest_id_seq')::regclass), 0);
    PERFORM sales_kafka._wait_for_writers((s || '.order_lines')::regclass);

    IF upto > st.rolled_up_through THEN
        EXECUTE replace(replace($roll$
WITH new_lines AS MATERIALIZED (
    SELECT date_trunc('minute', l.sold_at, $3) AS minute,
           l.product_id,
           coalesce(l.customer_id, o.customer_id) AS customer_id,
           l.quantity, l.revenue, l.profit,
           CASE WHEN l.quantity > 0
                THEN width_bucket(l.revenue / l.quantity, '{5,10,20,50,100,200,500,1000}'::numeric[]) END AS price_band,
           NOT EXISTS (SELECT FROM @s.order_lines e
                        WHERE e.order_id = l.order_id AND e.ingest_id < l.ingest_id) AS opens_order
      FROM @s.order_lines l
      LEFT JOIN @s.orders o ON o.order_id = l.order_id
     WHERE l.ingest_id > $1 AND l.ingest_id <= $2),
by_minute AS MATERIALIZED (
    SELECT minute, product_id, customer_id,
           count(*) AS sales_count, count(*) FILTER (WHERE opens_order) AS order_count,
           sum(quantity) AS quantity, sum(revenue) AS revenue, sum(profit) AS profit
      FROM new_lines
     GROUP BY minute, product_id, customer_id),
by_grain AS MATERIALIZED (
    SELECT g.grain,
           CASE g.grain WHEN 'minute' THEN m.minute
                        WHEN 'all' THEN timestamptz '-infinity'
                        ELSE date_trunc(g.grain, m.minute, $3) END AS bucket,
           m.product_id, m.customer_id, m.sales_count, m.order_count,
           m.quantity, m.revenue, m.profit
      FROM by_minute m
     CROSS JOIN (VALUES ('minute'), ('hour'), ('day'), ('month'), ('all')) AS g(grain)),
-- the buckets into each rollup table
@upserts@,
price_band AS (
    INSERT INTO @s.rollup_price_band AS r
    SELECT price_band, count(*), sum(quantity), sum(revenue)
      FROM new_lines WHERE price_band IS NOT NULL GROUP BY price_band
    ON CONFLICT (band) DO UPDATE
       SET sales_count = r.sales_count + excluded.sales_count,
           quantity = r.quantity + excluded.quantity,
           revenue = r.revenue + excluded.revenue)
SELECT coalesce(sum(sales_count), 0) FROM by_minute
$roll$, '@upserts@',
            (SELECT string_agg(format($u$
%1$s AS (
    INSERT INTO @s.rollup_%1$s AS r
    SELECT grain, bucket, sum(sales_count), sum(order_count), sum(quantity), sum(revenue), sum(profit)%2$s
      FROM %4$s GROUP BY grain, bucket%2$s
     -- in key order: a bucket's rows end up together in the table (see
     -- bench/kpi_dashboard.sh), not spread over it in hash order
     ORDER BY grain, bucket%2$s
    ON CONFLICT (grain, bucket%3$s) DO UPDATE
       SET %5$s)$u$,
                                      rollup, key_expr, key_cols, source, sales_kafka._add_sums()), ',')
               FROM (VALUES ('total', '', '', 'by_grain'),
                            ('product', ', product_id', ', product_id', 'by_grain'),
                            -- per customer and minute would be nearly a copy of the lines
                            ('customer', ', customer_id', ', customer_id', 'by_grain WHERE grain <> ''minute'''),
                            ('customer_group', ', c.segment, c.region, c.country, c.state, c.city',
                             ', segment, region, country, state, city',
                             'by_grain LEFT JOIN @s.customers c USING (customer_id) WHERE grain <> ''minute'''))
                    AS t(rollup, key_expr, key_cols, source))),
            '@s', s)
        INTO n
        USING st.rolled_up_through, upto, st.time_zone;
    ELSE
        n := 0;
        upto := st.rolled_up_through;
    END IF;

    EXECUTE format('UPDATE %s.kpi_state SET rolled_up_through = $1, rolled_up_rows = rolled_up_rows + $2,
                           rolled_up_at = clock_timestamp(), covered_offsets = $3', s)
      USING upto, n, covered;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION sales_kafka._model_ddl()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN replace(replace(replace(replace($ddl$
CREATE TABLE @s.kpi_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    time_zone text NOT NULL,
    rolled_up_through bigint NOT NULL DEFAULT 0,
    rolled_up_rows bigint NOT NULL DEFAULT 0,
    rolled_up_at timestamptz,
    covered_offsets jsonb NOT NULL DEFAULT '[]',
    views_refreshed_at timestamptz
);
INSERT INTO @s.kpi_state (time_zone) VALUES (@tz);
-- one row: without statistics the planner assumes ~650, which makes every
-- view that joins it plan badly (and JIT-compile)
ANALYZE @s.kpi_state;

CREATE TABLE @s.customers (
    customer_id text PRIMARY KEY,
    customer_name text,
    segment text,
    country text,
    city text,
    state text,
    postal_code text,
    region text
);

CREATE TABLE @s.products (
    product_id text PRIMARY KEY,
    product_name text,
    category text,
    sub_category text
);

CREATE TABLE @s.orders (
    order_id text PRIMARY KEY,
    customer_id text,
    sold_at timestamptz,
    ship_date date,
    ship_mode text,
    order_priority text
);

-- ingest_id orders the rows for the rollups; its sequence must keep CACHE 1
-- (values handed out in time order, see refresh_rollups)
CREATE SEQUENCE @s.order_lines_ingest_id_seq CACHE 1;
CREATE TABLE @s.order_lines (
    order_id text NOT NULL DEFAULT gen_random_uuid()::text,
    line integer NOT NULL DEFAULT 1,
    sold_at timestamptz NOT NULL,
    customer_id text,
    product_id text NOT NULL,
    quantity integer NOT NULL DEFAULT 1,
    unit_price numeric(12,2),
    discount numeric(5,4) DEFAULT 0 CHECK (discount BETWEEN 0 AND 1),
    stated_revenue numeric(14,2),
    revenue numeric(14,2) NOT NULL GENERATED ALWAYS AS
        (coalesce(stated_revenue,
                  round(quantity * unit_price * (1 - coalesce(discount, 0)), 2))) STORED,
    profit numeric(14,2),
    ship_date date,
    ship_mode text,
    order_priority text,
    ingest_id bigint NOT NULL DEFAULT nextval('@s.order_lines_ingest_id_seq'),
    PRIMARY KEY (order_id, line @pk_extra)
) @partition_by;
ALTER SEQUENCE @s.order_lines_ingest_id_seq OWNED BY @s.order_lines.ingest_id;
CREATE INDEX ON @s.order_lines (sold_at);
CREATE INDEX ON @s.order_lines (ingest_id);

CREATE TABLE @s.metrics (
    metric_id text NOT NULL,
    measured_at timestamptz NOT NULL,
    stock_price numeric(14,4),
    sales_trend numeric,
    PRIMARY KEY (metric_id, measured_at)
);

-- Rollups: sums per time bucket, kept by refresh_rollups(); grain 'all'
-- has one bucket, -infinity.
CREATE TABLE @s.rollup_total (
    grain text NOT NULL CHECK (grain IN ('minute', 'hour', 'day', 'month', 'all')),
    bucket timestamptz NOT NULL,
    sales_count bigint NOT NULL,
    order_count bigint NOT NULL,
    quantity bigint NOT NULL,
    revenue numeric NOT NULL,
    profit numeric,
    PRIMARY KEY (grain, bucket)
);
CREATE TABLE @s.rollup_product (LIKE @s.rollup_total INCLUDING CONSTRAINTS,
    product_id text NOT NULL,
    PRIMARY KEY (grain, bucket, product_id));
CREATE TABLE @s.rollup_customer (LIKE @s.rollup_total INCLUDING CONSTRAINTS,
    customer_id text,
    UNIQUE NULLS NOT DISTINCT (grain, bucket, customer_id));
-- Sums per customer group (the customers' segment, region, country, state
-- and city as they are now) and time bucket: kpi_customer_sales.  Kept by
-- refresh_rollups, and by customers_moved() when customers change.
CREATE TABLE @s.rollup_customer_group (LIKE @s.rollup_total INCLUDING CONSTRAINTS,
    segment text, region text, country text, state text, city text,
    UNIQUE NULLS NOT DISTINCT (grain, bucket, segment, region, country, state, city));
-- a customer's rows, for customers_moved()
CREATE INDEX ON @s.rollup_customer (customer_id);

-- When customers change (or arrive after their sales, or go), their sales
-- move from their old group to the new one: the same as looking their
-- attributes up when read.
CREATE FUNCTION @s.customers_moved() RETURNS trigger
LANGUAGE plpgsql AS $f$
DECLARE
    none text := '(SELECT * FROM @s.customers WHERE false)';
BEGIN
    -- one at a time with refresh_rollups, which holds this row while it adds lines
    PERFORM FROM @s.kpi_state FOR UPDATE;
    EXECUTE format($m$
WITH moved AS (
    SELECT coalesce(o.customer_id, n.customer_id) AS customer_id,
           o.segment AS o_segment, o.region AS o_region, o.country AS o_country, o.state AS o_state, o.city AS o_city,
           n.segment AS n_segment, n.region AS n_region, n.country AS n_country, n.state AS n_state, n.city AS n_city
      FROM %s o FULL JOIN %s n ON n.customer_id = o.customer_id
     WHERE (o.segment, o.region, o.country, o.state, o.city)
           IS DISTINCT FROM (n.segment, n.region, n.country, n.state, n.city)),
shift AS (
    SELECT r.grain, r.bucket, g.segment, g.region, g.country, g.state, g.city,
           g.sign * r.sales_count AS sales_count, g.sign * r.order_count AS order_count,
           g.sign * r.quantity AS quantity, g.sign * r.revenue AS revenue, g.sign * r.profit AS profit
      FROM moved m
      JOIN @s.rollup_customer r ON r.customer_id = m.customer_id
     CROSS JOIN LATERAL (VALUES (-1, m.o_segment, m.o_region, m.o_country, m.o_state, m.o_city),
                                (1, m.n_segment, m.n_region, m.n_country, m.n_state, m.n_city))
                        AS g(sign, segment, region, country, state, city))
INSERT INTO @s.rollup_customer_group AS r
SELECT grain, bucket, sum(sales_count), sum(order_count), sum(quantity), sum(revenue), sum(profit),
       segment, region, country, state, city
  FROM shift
 GROUP BY grain, bucket, segment, region, country, state, city
ON CONFLICT (grain, bucket, segment, region, country, state, city) DO UPDATE
   SET @add_sums@$m$,
        CASE TG_OP WHEN 'INSERT' THEN none ELSE 'old_rows' END,
        CASE TG_OP WHEN 'DELETE' THEN none ELSE 'new_rows' END);
    RETURN NULL;
END
$f$;
CREATE TRIGGER customers_inserted AFTER INSERT ON @s.customers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION @s.customers_moved();
CREATE TRIGGER customers_updated AFTER UPDATE ON @s.customers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION @s.customers_moved();
CREATE TRIGGER customers_deleted AFTER DELETE ON @s.customers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION @s.customers_moved();

-- sales per band of price paid per unit (after discount), all time
CREATE TABLE @s.rollup_price_band (
    band integer PRIMARY KEY,
    sales_count bigint NOT NULL,
    quantity bigint NOT NULL,
    revenue numeric NOT NULL
);

-------------------------------------------------------------------------------
-- The star schema
-------------------------------------------------------------------------------

CREATE VIEW @s.time_dim AS
SELECT d::date AS date_key,
       extract(year FROM d)::integer AS year,
       extract(quarter FROM d)::integer AS quarter,
       extract(month FROM d)::integer AS month,
       trim(to_char(d, 'Month')) AS month_name,
       extract(week FROM d)::integer AS iso_week,
       extract(isodow FROM d)::integer AS iso_day_of_week,
       trim(to_char(d, 'Day')) AS day_name,
       extract(isodow FROM d) >= 6 AS weekend
  FROM @s.kpi_state s,
       generate_series(date_trunc('day', (SELECT min(sold_at) FROM @s.order_lines) AT TIME ZONE s.time_zone),
                       date_trunc('day', (SELECT max(sold_at) FROM @s.order_lines) AT TIME ZONE s.time_zone),
                       interval '1 day') AS g(d);

CREATE VIEW @s.customers_dim AS
SELECT customer_id, customer_name, segment, country, city, state, postal_code, region
  FROM @s.customers;

-- products seen in order lines but not (yet) in products are listed
-- without attributes, so that joins keep their lines
CREATE VIEW @s.products_dim AS
SELECT product_id, product_name, category, sub_category
  FROM @s.products
UNION ALL
SELECT r.product_id, NULL, NULL, NULL
  FROM @s.rollup_product r
 WHERE r.grain = 'all'
   AND NOT EXISTS (SELECT FROM @s.products p WHERE p.product_id = r.product_id);

CREATE VIEW @s.sales_facts AS
SELECT l.order_id,
       l.line,
       (l.sold_at AT TIME ZONE s.time_zone)::date AS date_key,
       l.sold_at,
       coalesce(l.customer_id, o.customer_id) AS customer_id,
       l.product_id,
       l.quantity,
       l.unit_price,
       l.discount,
       l.revenue,
       l.profit,
       coalesce(l.ship_date, o.ship_date) AS ship_date,
       coalesce(l.ship_mode, o.ship_mode) AS ship_mode,
       coalesce(l.order_priority, o.order_priority) AS order_priority
  FROM @s.order_lines l
  CROSS JOIN @s.kpi_state s
  LEFT JOIN @s.orders o ON o.order_id = l.order_id;

-------------------------------------------------------------------------------
-- KPIs kept current by the rollups
-------------------------------------------------------------------------------

CREATE VIEW @s.kpi_totals AS
SELECT coalesce(t.revenue, 0) AS revenue,
       t.profit,
       coalesce(t.sales_count, 0) AS sales_count,
       coalesce(t.order_count, 0) AS order_count,
       coalesce(t.quantity, 0) AS quantity,
       round(t.revenue / nullif(t.order_count, 0), 2) AS average_order_value
  FROM (SELECT) AS one
  LEFT JOIN @s.rollup_total t ON t.grain = 'all';

CREATE VIEW @s.kpi_today AS
SELECT (now() AT TIME ZONE s.time_zone)::date AS day,
       coalesce(t.revenue, 0) AS revenue,
       t.profit,
       coalesce(t.sales_count, 0) AS sales_count,
       coalesce(t.order_count, 0) AS order_count,
       coalesce(t.quantity, 0) AS quantity,
       round(t.revenue / nullif(t.order_count, 0), 2) AS average_order_value
  FROM @s.kpi_state s
  LEFT JOIN @s.rollup_total t
         ON t.grain = 'day' AND t.bucket = date_trunc('day', now(), s.time_zone);

-- kpi_sales_per_minute, _hour, _day, _month
@per_period_views@

-- kpi_product_sales and kpi_customer_sales are cubes: tens of thousands of
-- rows a month, which a reader filters, groups and orders itself.  They
-- have no ORDER BY of their own, which every query wrapping them would pay
-- for: sorting 18,000 rows of kpi_customer_sales by its six keys took 17 ms
-- of a 20 ms dashboard query.
--
-- Products' attributes are looked up when read: a product that arrives
-- after its sales, or changes category, counts where it is now.
CREATE VIEW @s.kpi_product_sales AS
SELECT r.grain, r.bucket AS period_start, r.product_id,
       coalesce(p.product_name, r.product_id) AS product_name,
       p.category, p.sub_category,
       r.revenue, r.profit, r.sales_count, r.quantity
  FROM @s.rollup_product r
  LEFT JOIN @s.products p ON p.product_id = r.product_id
 WHERE r.grain <> 'all';

-- (a group whose customers all moved away keeps a row of zeros)
CREATE VIEW @s.kpi_customer_sales AS
SELECT r.grain, r.bucket AS period_start,
       r.segment, r.region, r.country, r.state, r.city,
       r.revenue, r.profit, r.sales_count, r.order_count, r.quantity
  FROM @s.rollup_customer_group r
 WHERE r.grain <> 'all' AND r.sales_count > 0;

-- kpi_sales_by_category, _sub_category, _segment, _region, _state, _city
@by_attribute_views@

CREATE VIEW @s.kpi_today_top_products AS
SELECT rank() OVER (ORDER BY r.revenue DESC) AS rank,
       r.product_id,
       coalesce(p.product_name, r.product_id) AS product_name,
       p.category,
       r.revenue, r.sales_count, r.quantity
  FROM @s.kpi_state s
  JOIN @s.rollup_product r
    ON r.grain = 'day' AND r.bucket = date_trunc('day', now(), s.time_zone)
  LEFT JOIN @s.products p ON p.product_id = r.product_id
 ORDER BY r.revenue DESC, r.product_id
 LIMIT 5;

CREATE VIEW @s.kpi_today_by_category AS
SELECT p.category,
       sum(r.revenue) AS revenue, sum(r.sales_count)::bigint AS sales_count,
       sum(r.quantity)::bigint AS quantity,
       round(100 * sum(r.revenue) / nullif(sum(sum(r.revenue)) OVER (), 0), 2) AS revenue_share_pct
  FROM @s.kpi_state s
  JOIN @s.rollup_product r
    ON r.grain = 'day' AND r.bucket = date_trunc('day', now(), s.time_zone)
  LEFT JOIN @s.products p ON p.product_id = r.product_id
 GROUP BY p.category
 ORDER BY revenue DESC, p.category;

-- fixed-interval summaries of the minute-level metric streams
-- kpi_metrics_10min, kpi_metrics_20min
@metric_views@

-------------------------------------------------------------------------------
-- Heavier KPIs: materialized views refreshed CONCURRENTLY by refresh_kpis()
-------------------------------------------------------------------------------

CREATE MATERIALIZED VIEW @s.mv_top_products AS
SELECT r.product_id,
       coalesce(p.product_name, r.product_id) AS product_name,
       p.category, p.sub_category,
       r.revenue, r.profit, r.sales_count, r.quantity,
       rank() OVER (ORDER BY r.revenue DESC) AS revenue_rank,
       rank() OVER (ORDER BY r.quantity DESC) AS quantity_rank
  FROM @s.rollup_product r
  LEFT JOIN @s.products p ON p.product_id = r.product_id
 WHERE r.grain = 'all';
CREATE UNIQUE INDEX ON @s.mv_top_products (product_id);

-- price paid per unit (after discount), in fixed bands
CREATE MATERIALIZED VIEW @s.mv_price_distribution AS
SELECT b.price_from, b.price_to,
       CASE WHEN b.price_to IS NULL THEN b.price_from || ' and more'
            ELSE b.price_from || ' to ' || b.price_to END AS price_band,
       coalesce(l.sales_count, 0) AS sales_count,
       coalesce(l.quantity, 0) AS quantity,
       coalesce(l.revenue, 0) AS revenue,
       round(100.0 * coalesce(l.sales_count, 0) / nullif(sum(l.sales_count) OVER (), 0), 2) AS sales_share_pct
  FROM (VALUES (0, 0::numeric, 5::numeric), (1, 5, 10), (2, 10, 20), (3, 20, 50), (4, 50, 100),
               (5, 100, 200), (6, 200, 500), (7, 500, 1000), (8, 1000, NULL)) AS b(band, price_from, price_to)
  LEFT JOIN @s.rollup_price_band AS l ON l.band = b.band;
CREATE UNIQUE INDEX ON @s.mv_price_distribution (price_from);

CREATE MATERIALIZED VIEW @s.mv_growth_yoy AS
SELECT (m.bucket AT TIME ZONE s.time_zone)::date AS month,
       m.revenue,
       y.revenue AS revenue_year_before,
       round(100 * (m.revenue - y.revenue) / nullif(y.revenue, 0), 2) AS revenue_growth_pct,
       m.order_count,
       y.order_count AS order_count_year_before,
       round(100.0 * (m.order_count - y.order_count) / nullif(y.order_count, 0), 2) AS order_growth_pct
  FROM @s.kpi_state s
  JOIN @s.rollup_total m ON m.grain = 'month'
  LEFT JOIN @s.rollup_total y
         ON y.grain = 'month'
        AND y.bucket = (((m.bucket AT TIME ZONE s.time_zone) - interval '1 year') AT TIME ZONE s.time_zone);
CREATE UNIQUE INDEX ON @s.mv_growth_yoy (month);

CREATE VIEW @s.kpi_top_products AS
SELECT * FROM @s.mv_top_products ORDER BY revenue_rank, product_id;
CREATE VIEW @s.kpi_price_distribution AS
SELECT * FROM @s.mv_price_distribution ORDER BY price_from;
CREATE VIEW @s.kpi_growth_yoy AS
SELECT * FROM @s.mv_growth_yoy ORDER BY month;

-------------------------------------------------------------------------------
-- As of: when the KPIs were last brought up to date, and what they cover
-------------------------------------------------------------------------------

CREATE VIEW @s.kpi_as_of AS
SELECT s.rolled_up_at,
       s.views_refreshed_at,
       s.rolled_up_rows,
       (SELECT count(*) FROM @s.order_lines l
         WHERE l.ingest_id > s.rolled_up_through
           AND l.ingest_id <= (SELECT max(ingest_id) FROM @s.order_lines)) AS rows_waiting,
       (SELECT max(sold_at) FROM @s.order_lines) AS last_sale_at,
       s.time_zone,
       s.covered_offsets
  FROM @s.kpi_state s;

CREATE VIEW @s.kpi_as_of_partitions AS
SELECT c.pipeline, c.topic, c.partition,
       c."offset" AS covered_offset,
       p.committed_offset,
       p.high_watermark,
       p.updated_at AS committed_at
  FROM @s.kpi_state s,
       jsonb_to_recordset(s.covered_offsets)
           AS c(pipeline_id bigint, pipeline text, topic text, partition integer, "offset" bigint)
  LEFT JOIN sales_kafka.pipeline_partitions p
         ON p.pipeline_id = c.pipeline_id AND p.topic = c.topic AND p.partition = c.partition
 ORDER BY c.pipeline, c.pipeline_id, c.topic, c.partition;
$ddl$,
    -- views alike but for their grain, grouping or bucket: one template each
    '@per_period_views@',
    (SELECT string_agg(format($v$CREATE VIEW @s.kpi_sales_per_%1$s AS
SELECT bucket AS period_start, revenue, profit, sales_count, order_count, quantity,
       round(revenue / nullif(order_count, 0), 2) AS average_order_value
  FROM @s.rollup_total WHERE grain = %1$L ORDER BY bucket;$v$, grain), E'\n' ORDER BY ord)
       FROM unnest('{minute,hour,day,month}'::text[]) WITH ORDINALITY AS g(grain, ord))),
    '@by_attribute_views@',
    (SELECT string_agg(format($v$CREATE VIEW @s.kpi_sales_by_%1$s AS
SELECT %2$s,
       sum(r.revenue) AS revenue, sum(r.profit) AS profit,
       sum(r.sales_count)::bigint AS sales_count,%4$s
       sum(r.quantity)::bigint AS quantity,
       round(100 * sum(r.revenue) / nullif(sum(sum(r.revenue)) OVER (), 0), 2) AS revenue_share_pct
  FROM @s.rollup_%3$s r
  LEFT JOIN @s.%3$ss d ON d.%3$s_id = r.%3$s_id
 WHERE r.grain = 'all'
 GROUP BY %2$s
 ORDER BY revenue DESC, %2$s;$v$,
                              name, columns, dimension,
                              -- an order's lines share their customer, not their product
                              CASE dimension WHEN 'customer'
                                   THEN ' sum(r.order_count)::bigint AS order_count,' ELSE '' END),
                       E'\n' ORDER BY name)
       FROM (VALUES ('category', 'd.category', 'product'),
                    ('sub_category', 'd.category, d.sub_category', 'product'),
                    ('segment', 'd.segment', 'customer'),
                    ('region', 'd.region', 'customer'),
                    ('state', 'd.country, d.state', 'customer'),
                    ('city', 'd.country, d.state, d.city', 'customer')) AS v(name, columns, dimension))),
    '@metric_views@',
    (SELECT string_agg(format($v$CREATE VIEW @s.kpi_metrics_%1$smin AS
SELECT metric_id,
       date_bin('%1$s minutes', measured_at, (timestamp '2000-01-01' AT TIME ZONE @tz)) AS period_start,
       date_bin('%1$s minutes', measured_at, (timestamp '2000-01-01' AT TIME ZONE @tz)) + interval '%1$s minutes' AS period_end,
       count(*) AS samples,
       (array_agg(stock_price ORDER BY measured_at))[1] AS stock_price_open,
       (array_agg(stock_price ORDER BY measured_at DESC))[1] AS stock_price_close,
       min(stock_price) AS stock_price_low,
       max(stock_price) AS stock_price_high,
       round(avg(stock_price), 4) AS stock_price_average,
       avg(sales_trend) AS sales_trend_average
  FROM @s.metrics
 GROUP BY 1, 2
 ORDER BY 1, 2;
-- a filter on period_start reads only its buckets, not the whole table
CREATE INDEX ON @s.metrics (date_bin('%1$s minutes', measured_at, (timestamp '2000-01-01' AT TIME ZONE @tz)));$v$, minutes), E'\n' ORDER BY minutes)
       FROM unnest('{10,20}'::int[]) AS m(minutes))),
    '@add_sums@', sales_kafka._add_sums());

-------------------------------------------------------------------------------
-- Replaying rows into Kafka (a CSV file loaded with \copy, a table, a
-- query): sales_kafka.replay() produces them through a foreign table in
-- small transactions, at a given rate or as fast as possible, and keeps its
-- progress, per role, so that a replay that stops goes on where it stopped.
-------------------------------------------------------------------------------

CREATE TABLE sales_kafka.replay_progress (
    owner regrole NOT NULL DEFAULT pg_catalog.quote_ident(current_user)::regrole,
    name text NOT NULL,
    target regclass NOT NULL,
    rows_total bigint NOT NULL,
    rows_done bigint NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (owner, name),
    CHECK (rows_done BETWEEN 0 AND rows_total)
);

COMMENT ON TABLE sales_kafka.replay_progress IS 'progress of each role''s replays (sales_kafka.replay), which go on from rows_done; each role sees and changes its own rows only';
COMMENT ON COLUMN sales_kafka.replay_progress.owner IS 'role that runs the replay';
COMMENT ON COLUMN sales_kafka.replay_progress.name IS 'name of the replay, unique per role';
COMMENT ON COLUMN sales_kafka.replay_progress.target IS 'the Kafka foreign table the rows go to';
COMMENT ON COLUMN sales_kafka.replay_progress.rows_total IS 'rows of the query when the replay began';
COMMENT ON COLUMN sales_kafka.replay_progress.rows_done IS 'rows produced and committed so far: the first rows of the query, in its order';
COMMENT ON COLUMN sales_kafka.replay_progress.started_at IS 'when the replay began';
COMMENT ON COLUMN sales_kafka.replay_progress.updated_at IS 'when its last transaction committed';
COMMENT ON COLUMN sales_kafka.replay_progress.finished_at IS 'when its last row was committed; NULL while rows remain';

ALTER TABLE sales_kafka.replay_progress ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON sales_kafka.replay_progress
    USING (owner = pg_catalog.quote_ident(current_user)::regrole)
    WITH CHECK (owner = pg_catalog.quote_ident(current_user)::regrole);
GRANT SELECT, INSERT, UPDATE, DELETE ON sales_kafka.replay_progress TO PUBLIC;

CREATE PROCEDURE sales_kafka.replay(
    name text,
    query text,
    target regclass,
    rows_per_second double precision DEFAULT NULL,
    rows_per_commit integer DEFAULT NULL,
    restart boolean DEFAULT false)
LANGUAGE plpgsql
-- no SET search_path: a procedure with one cannot COMMIT; every name is
-- qualified instead
AS $$
DECLARE
    me regrole := quote_ident(current_user)::regrole;
    per_commit integer;
    progress sales_kafka.replay_progress;
    target_columns text[];
    columns text[];
    extra text;
    batch jsonb := '[]';
    in_batch integer := 0;
    row_json jsonb;
    run_start timestamptz;
    run_rows bigint := 0;
    noticed_at timestamptz := clock_timestamp();
    ahead double precision;
BEGIN
    IF name IS NULL OR query IS NULL OR target IS NULL THEN
        RAISE EXCEPTION 'the name, query and target of a replay must not be null'
              USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF rows_per_second IS NOT NULL AND NOT rows_per_second > 0 THEN
        RAISE EXCEPTION 'invalid value for rows_per_second: %', rows_per_second
              USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = 'It must be greater than 0, or NULL for as fast as possible.';
    END IF;
    IF rows_per_commit IS NOT NULL AND rows_per_commit < 1 THEN
        RAISE EXCEPTION 'invalid value for rows_per_commit: %', rows_per_commit
              USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = 'It must be 1 or more.';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_foreign_table ft
                     JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
                     JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
                    WHERE ft.ftrelid = target AND w.fdwname = 'sales_kafka') THEN
        RAISE EXCEPTION '"%" is not a foreign table of the sales_kafka foreign data wrapper', target
              USING ERRCODE = 'wrong_object_type';
    END IF;
    IF NOT has_table_privilege(target, 'INSERT') THEN
        RAISE EXCEPTION 'permission denied for foreign table %', target
              USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- one second's rows a transaction at a given rate, else 1,000
    per_commit := coalesce(rows_per_commit,
                           CASE WHEN rows_per_second IS NULL THEN 1000
                                ELSE least(greatest(ceil(rows_per_second), 1), 100000)::integer END);

    -- the query's columns, checked before anything is written
    EXECUTE format('SELECT to_jsonb(q) FROM (%s) q LIMIT 1', query) INTO row_json;
    SELECT array_agg(attname::text) INTO target_columns
      FROM pg_catalog.pg_attribute WHERE attrelid = target AND attnum > 0 AND NOT attisdropped;
    SELECT array_agg(k), min(k) FILTER (WHERE k <> ALL (target_columns))
      INTO columns, extra
      FROM jsonb_object_keys(row_json) AS k;
    IF extra IS NOT NULL THEN
        RAISE EXCEPTION 'column "%" of the query is not a column of foreign table %', extra, target
              USING ERRCODE = 'undefined_column';
    END IF;

    SELECT * INTO progress FROM sales_kafka.replay_progress p
     WHERE p.owner = me AND p.name = replay.name;
    IF FOUND AND progress.target <> target AND NOT restart THEN
        RAISE EXCEPTION 'replay "%" goes to foreign table %, not %', name, progress.target, target
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'Give another name, or restart => true to begin it again.';
    END IF;
    IF NOT FOUND OR restart THEN
        DELETE FROM sales_kafka.replay_progress p WHERE p.owner = me AND p.name = replay.name;
        EXECUTE format('SELECT count(*) FROM (%s) q', query) INTO progress.rows_total;
        INSERT INTO sales_kafka.replay_progress AS p (name, target, rows_total)
        VALUES (replay.name, replay.target, progress.rows_total)
        RETURNING * INTO progress;
    ELSIF progress.finished_at IS NOT NULL THEN
        RAISE NOTICE 'replay "%" finished at %: % rows', name, progress.finished_at, progress.rows_done;
        RETURN;
    ELSE
        RAISE NOTICE 'replay "%" goes on after % of % rows', name, progress.rows_done, progress.rows_total;
    END IF;
    COMMIT;

    run_start := clock_timestamp();
    -- the query's rows after those done, in its order: give it an ORDER BY
    -- on a unique key, so that a replay that goes on skips the same rows
    FOR row_json IN EXECUTE format('SELECT to_jsonb(q) FROM (%s) q OFFSET %s',
                                   query, progress.rows_done)
    LOOP
        batch := batch || jsonb_build_array(row_json);
        in_batch := in_batch + 1;
        IF in_batch = per_commit THEN
            CALL sales_kafka._replay_batch(replay.name, target, columns, batch);
            COMMIT;
            run_rows := run_rows + in_batch;
            progress.rows_done := progress.rows_done + in_batch;
            batch := '[]';
            in_batch := 0;
            IF clock_timestamp() >= noticed_at + interval '10 s' THEN
                RAISE NOTICE 'replay "%": % of % rows', name, progress.rows_done, progress.rows_total;
                noticed_at := clock_timestamp();
            END IF;
            IF rows_per_second IS NOT NULL THEN
                ahead := run_rows / rows_per_second
                         - extract(epoch FROM clock_timestamp() - run_start);
                IF ahead > 0 THEN
                    PERFORM pg_sleep(ahead);
                END IF;
            END IF;
        END IF;
    END LOOP;
    IF in_batch > 0 THEN
        CALL sales_kafka._replay_batch(replay.name, target, columns, batch);
        progress.rows_done := progress.rows_done + in_batch;
    END IF;
    UPDATE sales_kafka.replay_progress p SET finished_at = now()
     WHERE p.owner = me AND p.name = replay.name;
    COMMIT;
    RAISE NOTICE 'replay "%" finished: % of % rows', name, progress.rows_done, progress.rows_total;
END
$$;

COMMENT ON PROCEDURE sales_kafka.replay(text, text, regclass, double precision, integer, boolean) IS
'produces the rows of a query (give it an ORDER BY) through a sales_kafka foreign table, columns by name, in transactions of rows_per_commit rows, at rows_per_second (NULL: as fast as possible); keeps its progress in sales_kafka.replay_progress, so that calling it again goes on where it stopped (restart => true begins again); CALL it outside a transaction block';

-- one transaction's rows, and the progress that counts them
CREATE PROCEDURE sales_kafka._replay_batch(
    name text, target regclass, columns text[], batch jsonb)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    list text := (SELECT string_agg(quote_ident(c), ', ') FROM unnest(columns) AS c);
BEGIN
    EXECUTE format('INSERT INTO %s (%s) SELECT %s FROM jsonb_populate_recordset(NULL::%s, $1)',
                   target, list, list, target)
    USING batch;
    UPDATE sales_kafka.replay_progress p
       SET rows_done = rows_done + jsonb_array_length(batch), updated_at = now()
     WHERE p.owner = quote_ident(current_user)::regrole AND p.name = _replay_batch.name;
END
$$;

COMMENT ON PROCEDURE sales_kafka._replay_batch(text, regclass, text[], jsonb) IS
'internal: one transaction of sales_kafka.replay';
