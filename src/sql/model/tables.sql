-------------------------------------------------------------------------------
-- src/sql/model/tables.sql: a sales model's tables, which the pipelines
-- fill: its state, the dimensions, the orders and their lines (the facts),
-- the metric streams (their summaries: src/sql/model/metrics.sql).
--
-- How the model's DDL gets its schema.  The functions of src/sql/model/
-- hold the model's DDL as static statements that name its objects without
-- a schema; each puts the model's schema first in search_path (then
-- pg_temp) for its own duration (_use_model_schema), so that what it
-- creates goes there and what it names is found there, after pg_catalog,
-- which PostgreSQL searches first when search_path does not name it.
-- PL/pgSQL checks the syntax of static statements when it creates a
-- function with check_function_bodies on, which CREATE and ALTER EXTENSION
-- turn off for their scripts (SQL functions may name objects made further
-- down): this file, the first of src/sql/model/ in both scripts, turns it
-- on for the rest of the script (PostgreSQL restores it afterwards), so a
-- syntax error in the model's DDL fails CREATE EXTENSION and ALTER
-- EXTENSION UPDATE, not the first create_sales_model.  Only a statement
-- whose text must hold a value of the model is built with format(): here
-- order_lines, partitioned or not.
--
-- They run as their caller: the bodies of create_sales_model and
-- upgrade_sales_model (src/sql/model/create.sql, upgrade.sql), which the C
-- functions run as the owner of the model's schema, call them.  So that no
-- role's code can run with another role's rights through them, each works
-- only on a schema the current user owns (a superuser's call on another
-- role's schema included).
-------------------------------------------------------------------------------

SET check_function_bodies = on;

-- The model's schema first in search_path, for the rest of the calling
-- function (which has a SET clause for it: PostgreSQL then undoes the
-- change when that function returns), once it is clear that the current
-- user owns the schema.  No SET clause of its own, which would undo the
-- change when it returns: it names everything with its schema.
CREATE FUNCTION sales_kafka._use_model_schema(model_schema name)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF (SELECT pg_catalog.pg_get_userbyid(n.nspowner) FROM pg_catalog.pg_namespace n
         WHERE n.nspname OPERATOR(pg_catalog.=) model_schema)
       IS DISTINCT FROM CURRENT_USER THEN
        RAISE EXCEPTION 'permission denied for sales model schema "%"', model_schema
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The internal functions that make a sales model work only on a schema the current user owns.',
                  HINT = 'Call sales_kafka.create_sales_model or sales_kafka.upgrade_sales_model, which run as the owner of the schema.';
    END IF;
    PERFORM pg_catalog.set_config('search_path',
                                  pg_catalog.quote_ident(model_schema) OPERATOR(pg_catalog.||) ', pg_temp',
                                  true);
END
$$;

COMMENT ON FUNCTION sales_kafka._use_model_schema(name) IS
'internal: puts the schema of a sales model first in search_path for the calling function, if the current user owns it';

-- The order id of a line that comes without one (src/time_ordered_uuid.c):
-- ids made later sort later, so that the primary key of order_lines grows
-- at its right edge instead of on random pages.
CREATE FUNCTION sales_kafka.time_ordered_uuid()
RETURNS uuid
AS 'MODULE_PATHNAME', 'sales_kafka_time_ordered_uuid'
LANGUAGE C VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION sales_kafka.time_ordered_uuid() IS
'a new UUID of version 7 (RFC 9562): the time in milliseconds, then random bits, so that ids made later sort later; the default order id of a sales model''s order lines';

-- What order_lines.order_id defaults to (the upgrade sets it too)
CREATE FUNCTION sales_kafka._order_id_default()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'sales_kafka.time_ordered_uuid()::text';

COMMENT ON FUNCTION sales_kafka._order_id_default() IS
'internal: the default of order_lines.order_id, as an SQL expression';

CREATE FUNCTION sales_kafka._create_model_tables(
    model_schema name,
    time_zone text,
    partitioned boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM sales_kafka._use_model_schema(model_schema);

    CREATE TABLE kpi_state (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        time_zone text NOT NULL,
        rolled_up_through bigint NOT NULL DEFAULT 0,
        rolled_up_rows bigint NOT NULL DEFAULT 0,
        rolled_up_at timestamptz,
        covered_offsets jsonb NOT NULL DEFAULT '[]',
        views_refreshed_at timestamptz,
        model_version text NOT NULL
    );
    INSERT INTO kpi_state (time_zone, model_version)
    VALUES (_create_model_tables.time_zone, sales_kafka._model_version());
    -- one row: without statistics the planner assumes ~650, which makes
    -- every view that joins it plan badly (and JIT-compile)
    ANALYZE kpi_state;

    CREATE TABLE customers (
        customer_id text PRIMARY KEY,
        customer_name text,
        segment text,
        country text,
        city text,
        state text,
        postal_code text,
        region text
    );

    CREATE TABLE products (
        product_id text PRIMARY KEY,
        product_name text,
        category text,
        sub_category text
    );

    CREATE TABLE orders (
        order_id text PRIMARY KEY,
        customer_id text,
        sold_at timestamptz,
        ship_date date,
        ship_mode text,
        order_priority text
    );

    -- ingest_id orders the rows for the rollups; its sequence must keep
    -- CACHE 1 (values handed out in time order, see _refresh_rollups)
    CREATE SEQUENCE order_lines_ingest_id_seq CACHE 1;
    -- partitioned by month (sales_kafka.create_sales_partitions), so that
    -- old months detach cheaply: the primary key must then hold sold_at
    EXECUTE format($t$
CREATE TABLE order_lines (
    order_id text NOT NULL DEFAULT %s,
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
    ingest_id bigint NOT NULL DEFAULT nextval('order_lines_ingest_id_seq'),
    PRIMARY KEY (order_id, line%s)
)%s$t$,
                   sales_kafka._order_id_default(),
                   CASE WHEN partitioned THEN ', sold_at' ELSE '' END,
                   CASE WHEN partitioned THEN ' PARTITION BY RANGE (sold_at)' ELSE '' END);
    ALTER SEQUENCE order_lines_ingest_id_seq OWNED BY order_lines.ingest_id;
    CREATE INDEX ON order_lines (sold_at);
    CREATE INDEX ON order_lines (ingest_id);

    -- Metric records (src/sql/model/metrics.sql): a record is its series
    -- and its record id; ingest_id orders them for the summaries, from a
    -- sequence that must keep CACHE 1 as order_lines' does.  (Columns in
    -- the order that upgrade_sales_model gives a model of 1.2.)
    CREATE SEQUENCE metrics_ingest_id_seq CACHE 1;
    CREATE TABLE metrics (
        record_id text NOT NULL,
        measured_at timestamptz NOT NULL,
        stock_price numeric(14,4),
        sales_trend numeric,
        series text NOT NULL,
        ingest_id bigint NOT NULL DEFAULT nextval('metrics_ingest_id_seq'),
        PRIMARY KEY (series, record_id)
    );
    ALTER SEQUENCE metrics_ingest_id_seq OWNED BY metrics.ingest_id;
    CREATE INDEX ON metrics (ingest_id);
    -- a series' records over time: the buckets that changed records touch
    CREATE INDEX ON metrics (series, measured_at);
    PERFORM sales_kafka._create_model_metric_summaries(model_schema);
END
$$;

COMMENT ON FUNCTION sales_kafka._create_model_tables(name, text, boolean) IS
'internal: creates the tables of a new sales model, for create_sales_model';
