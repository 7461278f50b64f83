-------------------------------------------------------------------------------
-- src/sql/kpi.sql: the functions of the KPI layer (both scripts of 1.3: the
-- update from 1.2 drops those of 1.2 first).
--
-- A sales model lives in a schema its user names and owns: its tables,
-- rollups, star schema and KPI views (src/sql/model/) are not members of
-- the extension, so DROP EXTENSION never drops sales data.
--
-- The KPI functions run as the owner of the model's schema.  A model's
-- schema, and what is in it, is its owner's: its triggers, rules, defaults
-- and policies run whenever the model's tables are written.  So each
-- function users call is a C wrapper (src/kpi.c) that checks that the
-- caller has the privileges of the schema's owner (superusers have them)
-- and runs the plpgsql body, named with a leading underscore, as that
-- owner, as REFRESH MATERIALIZED VIEW runs a view's query: with
-- SECURITY_RESTRICTED_OPERATION and search_path = pg_catalog, pg_temp.  The
-- bodies are not for calling directly (they run as their caller): PUBLIC
-- may not execute them.  create_sales_model makes a schema that does not
-- exist yet as the caller (who then owns it) and refuses an existing one
-- whose owner's privileges the caller lacks; the objects of a model belong
-- to its schema's owner.  create_sales_pipelines creates foreign tables and
-- pipelines that belong to that owner too, so the workers write with its
-- rights.  schedule_kpi_refresh's pg_cron jobs run as the role that
-- scheduled them, and the functions they call switch to the model's owner
-- themselves.
-------------------------------------------------------------------------------

-- The role BI tools log in as (or are granted): it may read the KPI views of
-- every model, and nothing else of it (src/sql/model/grants.sql).  A role
-- belongs to the cluster, not to a database: the extension of every
-- database, and every model, grants to the same one, made here when the
-- cluster has none (another database's extension may have made it) and
-- left as it is when it exists.  DROP EXTENSION does not drop it: other
-- databases may use it, the models DROP EXTENSION keeps still grant to it,
-- and logins are its members.  Once no database uses the extension, a
-- superuser removes it with DROP OWNED BY sales_kafka_reader in each
-- database, then DROP ROLE (sql/reader_role.sql).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles
                    WHERE rolname = 'sales_kafka_reader') THEN
        CREATE ROLE sales_kafka_reader NOLOGIN;
        COMMENT ON ROLE sales_kafka_reader IS
        'may read the KPI views of every sales_kafka sales model, and nothing else of them';
    END IF;
END
$$;

-------------------------------------------------------------------------------
-- Keeping the KPIs fresh
-------------------------------------------------------------------------------

-- Called by the rollups: see src/kpi.c
CREATE FUNCTION sales_kafka._wait_for_writers(fact_table regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'sk_wait_for_writers'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION sales_kafka._wait_for_writers(regclass) IS
'internal: waits until every transaction writing into the table (or its partitions) when called has ended';

-- The last ingest_id of a fact table (order lines, metric records) up to
-- which every row is final: the sequence's last value, read first, once
-- the writers that might still hold a smaller one have ended (waited for
-- here).
CREATE FUNCTION sales_kafka._final_ingest_id(fact_table regclass, ingest_id_seq regclass)
RETURNS bigint
LANGUAGE plpgsql STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    upto bigint;
BEGIN
    upto := coalesce(pg_sequence_last_value(ingest_id_seq), 0);
    PERFORM sales_kafka._wait_for_writers(fact_table);
    RETURN upto;
END
$$;

COMMENT ON FUNCTION sales_kafka._final_ingest_id(regclass, regclass) IS
'internal: the last value of a fact table''s ingest_id sequence, after waiting for the transactions writing into the table';

-- How an upsert into a rollup adds the sums of new lines to a bucket's
-- (a NULL profit is no profit, not an unknown one that hides the others).
CREATE FUNCTION sales_kafka._add_sums()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'sales_count = r.sales_count + excluded.sales_count,
           order_count = r.order_count + excluded.order_count,
           quantity = r.quantity + excluded.quantity,
           revenue = r.revenue + excluded.revenue,
           profit = coalesce(r.profit + excluded.profit, r.profit, excluded.profit)';

COMMENT ON FUNCTION sales_kafka._add_sums() IS
'internal: the SET list with which a rollup upsert adds new sums to a bucket';

-- The buckets of the coarser grains that a bucket falls in: a VALUES list
-- of (grain, bucket) for a LATERAL join, with the grains given (cut in the
-- time zone tz) and all time; bucket and tz are SQL expressions.  What
-- customers_moved() moves a customer's hours into (refresh_rollups sums
-- the finest grains into the coarser ones in C: src/rollup_sums.c).
CREATE FUNCTION sales_kafka._coarser_buckets(bucket text, tz text, grains text[])
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (SELECT string_agg(format('(%L, date_trunc(%L, %s, %s))', g, g, bucket, tz), ', ' ORDER BY n)
          FROM unnest(grains) WITH ORDINALITY AS u(g, n))
       || ', (''all'', timestamptz ''-infinity'')';

COMMENT ON FUNCTION sales_kafka._coarser_buckets(text, text, text[]) IS
'internal: the VALUES list of the coarser grains'' buckets that a bucket falls in, and all time';

CREATE FUNCTION sales_kafka._model_state(model_schema name)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regclass(quote_ident(model_schema) || '.kpi_state') IS NULL THEN
        RAISE EXCEPTION 'schema "%" has no sales model', model_schema
            USING ERRCODE = 'undefined_object',
                  HINT = 'Create one with sales_kafka.create_sales_model().';
    END IF;
    RETURN quote_ident(model_schema);
END
$$;

COMMENT ON FUNCTION sales_kafka._model_state(name) IS
'internal: the quoted schema of a sales model, or an error if it has none';

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

-- The rollup tables of a model (s: its quoted schema), as a list for LOCK
-- TABLE and TRUNCATE.  The order of locks: whatever writes the rollups and
-- locks kpi_state's row locks these tables first, then the row
-- (refresh_rollups, rebuild_rollups, upgrade_sales_model, customers_moved()),
-- as the rollup worker does (src/rollup_worker.c): one that held the row
-- and then wanted a table lock that another held while it waited for the
-- row would deadlock with it (rebuild_rollups' TRUNCATE did, with the
-- worker).
CREATE FUNCTION sales_kafka._rollup_tables(s text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN format('%1$s.rollup_total, %1$s.rollup_product, %1$s.rollup_customer, %1$s.rollup_customer_group, %1$s.rollup_price_band', s);

COMMENT ON FUNCTION sales_kafka._rollup_tables(text) IS
'internal: the rollup tables of a sales model, which are locked before its kpi_state row';

CREATE FUNCTION sales_kafka._rollup_sums(
    lines refcursor, time_zone text,
    OUT rollup text, OUT grain text, OUT bucket timestamptz,
    OUT product_id text, OUT customer_id text,
    OUT segment text, OUT region text, OUT country text, OUT state text, OUT city text,
    OUT band integer,
    OUT sales_count bigint, OUT order_count bigint, OUT quantity bigint,
    OUT revenue numeric, OUT profit numeric)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sales_kafka_rollup_sums'
LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION sales_kafka._rollup_sums(refcursor, text) IS
'internal: the sums per rollup, grain and bucket of the next order lines of a cursor of refresh_rollups, as many as maintenance_work_mem holds, for its upserts (src/rollup_sums.c)';

-- (jit off: compiling the statements costs more than running them on the
-- lines of a second or two; cursor_tuple_fraction 1: the cursor below is
-- read to its end, planned for that and not for its first rows)
CREATE FUNCTION sales_kafka._refresh_rollups(model_schema name)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
SET cursor_tuple_fraction = 1
AS $$
DECLARE
    s text := sales_kafka._model_state(model_schema);
    st record;
    covered jsonb;
    upto bigint;
    metrics_upto bigint;
    n bigint := 0;
    run bigint;
    lines refcursor;
BEGIN
    -- A snapshot taken at the start would hide rows committed while we
    -- wait below, and they would never be rolled up.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'sales_kafka.refresh_rollups must run at isolation level READ COMMITTED'
            USING ERRCODE = 'active_sql_transaction';
    END IF;

    -- Offsets first: each batch committed by now has all its rows below the
    -- sequence value read next, so these offsets are covered.
    covered := sales_kafka._covered_offsets((s || '.order_lines')::regclass);

    -- Every line up to upto is final.  Waited for before kpi_state's row
    -- is locked: a writer may lock it too (customers_moved(), when its
    -- transaction then changes customers), and would wait for us while we
    -- wait for it.
    upto := sales_kafka._final_ingest_id((s || '.order_lines')::regclass,
                                         (s || '.order_lines_ingest_id_seq')::regclass);
    metrics_upto := sales_kafka._metrics_final(model_schema);

    -- one refresh at a time; one that locked it before us may have gone
    -- further (then there is nothing to add, below); the rollups first
    EXECUTE format('LOCK TABLE %s IN ROW EXCLUSIVE MODE', sales_kafka._rollup_tables(s));
    EXECUTE format('SELECT * FROM %s.kpi_state FOR UPDATE', s) INTO st;
    upto := greatest(upto, st.rolled_up_through);

    -- The new lines are read once, by a cursor, and summed per rollup,
    -- grain and bucket by _rollup_sums (src/rollup_sums.c), whose rows one
    -- statement then upserts into the rollups, in key order; as many
    -- statements as it takes calls (a call reads 1,000 lines at a time
    -- while its sums take less than a quarter of maintenance_work_mem),
    -- and a last one whose call finds the cursor exhausted.
    --
    -- An order counts where its first line (by ingest_id) does.  Its lines
    -- may come in different runs: a line opens its order unless a line of
    -- the order has a smaller ingest_id, which this run or an earlier one
    -- rolls up (values up to upto are final, see above).  One probe of the
    -- primary key per line, in ingest_id order: the order ids of new lines
    -- are mostly new ones, and time-ordered ones
    -- (sales_kafka.time_ordered_uuid()) sit together at the right edge of
    -- the index; finding each order's first new line first (grouping the
    -- run's lines by order, sorting, joining back) cost more than the
    -- probes it saved.  The probe is a subplan of the select list, never a
    -- join the planner could turn into a scan of all the order lines.  A
    -- line without a customer takes its order's, if the model has orders
    -- at all (sale events have neither: no probe of an empty table), and
    -- the customer's group (OFFSET 0: the customer is found once a line,
    -- not again for the join).  Money goes in cents (numeric(14,2)).
    IF upto > st.rolled_up_through THEN
        OPEN lines FOR EXECUTE replace($lines$
SELECT l.sold_at, l.product_id, l.customer_id,
       c.segment, c.region, c.country, c.state, c.city,
       l.quantity, l.revenue_cents, l.profit_cents, l.opens_order, l.price_band
  FROM (SELECT l.sold_at, l.product_id,
               coalesce(l.customer_id,
                        CASE WHEN EXISTS (SELECT FROM @s.orders)
                             THEN (SELECT o.customer_id FROM @s.orders o WHERE o.order_id = l.order_id) END)
                 AS customer_id,
               l.quantity, (l.revenue * 100)::bigint AS revenue_cents,
               (l.profit * 100)::bigint AS profit_cents,
               NOT EXISTS (SELECT FROM @s.order_lines e
                            WHERE e.order_id = l.order_id AND e.ingest_id < l.ingest_id) AS opens_order,
               CASE WHEN l.quantity > 0
                    THEN width_bucket(l.revenue / l.quantity, '{5,10,20,50,100,200,500,1000}'::numeric[])
               END AS price_band
          FROM @s.order_lines l
         WHERE l.ingest_id > $1 AND l.ingest_id <= $2
        OFFSET 0) l
  LEFT JOIN @s.customers c ON c.customer_id = l.customer_id
$lines$, '@s', s) USING st.rolled_up_through, upto;
        LOOP
            EXECUTE replace(replace($roll$
WITH sums AS MATERIALIZED (
    SELECT * FROM sales_kafka._rollup_sums($1, $2)),
total AS (
    INSERT INTO @s.rollup_total AS r
    SELECT grain, bucket, sales_count, order_count, quantity, revenue, profit
      FROM sums WHERE rollup = 'total'
    ON CONFLICT (grain, bucket) DO UPDATE
       SET @add@),
product AS (
    INSERT INTO @s.rollup_product AS r
    SELECT grain, bucket, sales_count, order_count, quantity, revenue, profit, product_id
      FROM sums WHERE rollup = 'product'
    ON CONFLICT (grain, bucket, product_id) DO UPDATE
       SET @add@),
customer AS (
    INSERT INTO @s.rollup_customer AS r
    SELECT grain, bucket, sales_count, order_count, quantity, revenue, profit, customer_id
      FROM sums WHERE rollup = 'customer'
    ON CONFLICT (grain, bucket, customer_id) DO UPDATE
       SET @add@),
customer_group AS (
    INSERT INTO @s.rollup_customer_group AS r
    SELECT grain, bucket, sales_count, order_count, quantity, revenue, profit,
           segment, region, country, state, city
      FROM sums WHERE rollup = 'customer_group'
    ON CONFLICT (grain, bucket, segment, region, country, state, city) DO UPDATE
       SET @add@),
price_band AS (
    INSERT INTO @s.rollup_price_band AS r
    SELECT band, sales_count, quantity, revenue
      FROM sums WHERE rollup = 'price_band'
    ON CONFLICT (band) DO UPDATE
       SET sales_count = r.sales_count + excluded.sales_count,
           quantity = r.quantity + excluded.quantity,
           revenue = r.revenue + excluded.revenue)
SELECT coalesce(sum(sales_count), 0) FROM sums WHERE rollup = 'total' AND grain = 'all'
$roll$, '@add@', sales_kafka._add_sums()), '@s', s)
            INTO run
            USING lines, st.time_zone;
            EXIT WHEN run = 0;
            n := n + run;
        END LOOP;
        CLOSE lines;
    END IF;

    EXECUTE format('UPDATE %s.kpi_state SET rolled_up_through = $1, rolled_up_rows = rolled_up_rows + $2,
                           rolled_up_at = clock_timestamp(), covered_offsets = $3', s)
      USING upto, n, covered;
    PERFORM sales_kafka._refresh_metric_summaries(model_schema, metrics_upto);
    RETURN n;
END
$$;

CREATE FUNCTION sales_kafka._rebuild_rollups(model_schema name)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := sales_kafka._model_state(model_schema);
    rollups text := sales_kafka._rollup_tables(s);
    n bigint;
BEGIN
    -- the rollups, then kpi_state's row (see _rollup_tables)
    EXECUTE 'TRUNCATE ' || rollups;
    EXECUTE format('SELECT FROM %s.kpi_state FOR UPDATE', s);
    EXECUTE format('UPDATE %s.kpi_state SET rolled_up_through = 0, rolled_up_rows = 0', s);
    n := sales_kafka.refresh_rollups(model_schema);
    -- the rollups were emptied and refilled: without fresh statistics the
    -- dashboards' plans go by what autovacuum saw half way (a sort of
    -- thousands of rows instead of an ordered index scan)
    EXECUTE 'ANALYZE ' || rollups;
    RETURN n;
END
$$;

-- refresh_kpis: the rollups, then the time of it in kpi_state (the KPI
-- views read the rollups when read: none needs a refresh of its own).
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

-------------------------------------------------------------------------------
-- Partitions and pipelines
-------------------------------------------------------------------------------

CREATE FUNCTION sales_kafka._create_sales_partitions(
    model_schema name,
    from_day date,
    to_day date)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := quote_ident(model_schema);
    tz text;
    m date;
    made integer := 0;
BEGIN
    EXECUTE format('SELECT time_zone FROM %s.kpi_state', s) INTO tz;
    IF (SELECT relkind FROM pg_class WHERE oid = (s || '.order_lines')::regclass) <> 'p' THEN
        RAISE EXCEPTION 'the order lines of sales model "%" are not partitioned', model_schema
            USING ERRCODE = 'wrong_object_type';
    END IF;
    FOR m IN SELECT generate_series(date_trunc('month', from_day), to_day, interval '1 month')::date
    LOOP
        IF to_regclass(format('%s.%I', s, 'order_lines_' || to_char(m, 'YYYY_MM'))) IS NULL THEN
            EXECUTE format('CREATE TABLE %1$s.%2$I PARTITION OF %1$s.order_lines FOR VALUES FROM (%3$L) TO (%4$L)',
                           s, 'order_lines_' || to_char(m, 'YYYY_MM'),
                           (m::timestamp AT TIME ZONE tz),
                           ((m + interval '1 month')::timestamp AT TIME ZONE tz));
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
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
    tz text;
    zone_option text := '';
BEGIN
    -- times written without an offset (Superstore's dates, Python's
    -- str(datetime.now())) are of the model's time zone, when it is a name
    -- of one (the option "time_zone" takes no bare offset)
    EXECUTE format('SELECT time_zone FROM %s.kpi_state', s) INTO tz;
    IF EXISTS (SELECT FROM pg_timezone_names WHERE name = tz) THEN
        zone_option := format(', time_zone %L', tz);
    END IF;
    IF shape IS NULL OR shape NOT IN ('sale_events', 'superstore', 'shop', 'metrics') THEN
        RAISE EXCEPTION 'unknown sales data shape "%"', shape
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The shapes are sale_events, superstore, shop and metrics.';
    END IF;

    FOR src IN
        SELECT * FROM (VALUES
            -- a timestamp as Python writes it: ISO 8601, str(datetime.now()),
            -- or epoch seconds (time.time()), milliseconds or microseconds
            ('sale_events', 'src_sale_events', '',
             $c$product_id text OPTIONS (field 'product_name'), quantity integer,
                unit_price numeric(12,2) OPTIONS (field 'price'),
                sold_at timestamptz OPTIONS (field 'timestamp', time_format 'epoch' @zone@)$c$),
            -- our names, or the dataset's ("Sample - Superstore.csv" as
            -- csv.DictReader gives its rows: every value a string, US dates)
            ('superstore', 'src_superstore', '',
             $c$order_id text OPTIONS (alias 'Order ID'),
                line integer OPTIONS (field 'row_id', alias 'Row ID'),
                sold_at timestamptz OPTIONS (field 'order_date', alias 'Order Date',
                                             time_format 'MM/DD/YYYY' @zone@),
                ship_date date OPTIONS (alias 'Ship Date', time_format 'MM/DD/YYYY'),
                ship_mode text OPTIONS (alias 'Ship Mode'),
                customer_id text OPTIONS (alias 'Customer ID'),
                customer_name text OPTIONS (alias 'Customer Name'),
                segment text OPTIONS (alias 'Segment'), country text OPTIONS (alias 'Country'),
                city text OPTIONS (alias 'City'), state text OPTIONS (alias 'State'),
                postal_code text OPTIONS (alias 'Postal Code'), region text OPTIONS (alias 'Region'),
                product_id text OPTIONS (alias 'Product ID'),
                product_name text OPTIONS (alias 'Product Name'),
                category text OPTIONS (alias 'Category'),
                sub_category text OPTIONS (alias 'Sub-Category'),
                stated_revenue numeric(14,2) OPTIONS (field 'sales', alias 'Sales'),
                quantity integer OPTIONS (alias 'Quantity'),
                discount numeric(5,4) OPTIONS (alias 'Discount'),
                profit numeric(14,2) OPTIONS (alias 'Profit'),
                order_priority text OPTIONS (alias 'Order Priority')$c$),
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
            -- a record is its series and its id: the series is the topic
            -- unless a field names it (the mapping option "field" of the
            -- column series); "timestamp" as pandas writes it: epoch
            -- milliseconds (or seconds, microseconds), or ISO 8601
            ('metrics', 'src_metrics', '',
             $c$series text OPTIONS (kafka 'topic'), record_id text OPTIONS (field 'id'),
                measured_at timestamptz OPTIONS (field 'timestamp', time_format 'epoch' @zone@),
                stock_price numeric(14,4), sales_trend numeric$c$)
        ) AS m(shape, ftable, topic_suffix, columns)
        WHERE m.shape = _create_sales_pipelines.shape
    LOOP
        -- the foreign tables: one mapping per topic
        EXECUTE format('CREATE FOREIGN TABLE %s.%I (%s) SERVER %I OPTIONS (topic %L)',
                       s, src.ftable, replace(src.columns, '@zone@', zone_option),
                       server, topic || src.topic_suffix);
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

REVOKE EXECUTE ON FUNCTION
    sales_kafka._create_sales_partitions(name, date, date),
    sales_kafka._refresh_rollups(name),
    sales_kafka._rebuild_rollups(name),
    sales_kafka._create_sales_pipelines(name, text, name, text, boolean),
    sales_kafka._note_views_refreshed(name)
FROM PUBLIC;

COMMENT ON FUNCTION sales_kafka._create_sales_partitions(name, date, date) IS
'internal: the body of create_sales_partitions, run as the owner of the model''s schema';
COMMENT ON FUNCTION sales_kafka._refresh_rollups(name) IS
'internal: the body of refresh_rollups, run as the owner of the model''s schema';
COMMENT ON FUNCTION sales_kafka._rebuild_rollups(name) IS
'internal: the body of rebuild_rollups, run as the owner of the model''s schema';
COMMENT ON FUNCTION sales_kafka._create_sales_pipelines(name, text, name, text, boolean) IS
'internal: the body of create_sales_pipelines, run as the owner of the model''s schema';
COMMENT ON FUNCTION sales_kafka._note_views_refreshed(name) IS
'internal: refresh_kpis notes in kpi_state when it ran, as the owner of the model''s schema';

-------------------------------------------------------------------------------
-- What users call: the bodies above, and those of src/sql/model/, as the
-- owner of the model's schema (src/kpi.c)
-------------------------------------------------------------------------------

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
'adds the order lines written since the last rollup to a sales model''s rollups, in the same transaction as its progress, as the owner of the model''s schema (the rollup worker does so by itself); returns how many';

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
'brings every KPI of a sales model up to date, as the owner of the model''s schema: the rollups, and the time of it in kpi_state.views_refreshed_at; returns how many new order lines';

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
'creates the foreign tables and pipelines that feed a sales model from topics of one data shape (sale_events, superstore, shop, metrics), owned by the owner of the model''s schema; topic is the topic, or for shop the prefix of its four topics; superstore takes the dataset''s own field names and US dates too, sale_events epoch seconds, milliseconds or microseconds; times without an offset are of the model''s time zone; returns the pipelines';

CREATE FUNCTION sales_kafka.upgrade_sales_model(model_schema name)
RETURNS text
AS 'MODULE_PATHNAME', 'sales_kafka_upgrade_sales_model'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION sales_kafka.upgrade_sales_model(name) IS
'brings a sales model made by an earlier version of sales_kafka to the installed one (new columns, new and changed views), as the owner of the model''s schema; returns the version the model had';

-------------------------------------------------------------------------------
-- Scheduling
-------------------------------------------------------------------------------

-- The rollup worker (src/rollup_worker.c) keeps every model's rollups, and
-- so every KPI view, current by itself: no pg_cron job is needed for them.
-- pg_cron (1.4, by the minute at best) stays for what runs rarely: the job
-- made here runs refresh_kpis at the interval given, for servers where
-- sales_kafka.rollup_worker is off (or the library is not preloaded) and as
-- a safety net; unschedule_kpi_refresh also removes the every-minute
-- rollups job that 1.2 scheduled.
CREATE FUNCTION sales_kafka.schedule_kpi_refresh(
    model_schema name,
    refresh_every interval DEFAULT '5 minutes',
    database name DEFAULT current_database())
RETURNS TABLE (jobid bigint, jobname text, schedule text, command text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cron_expr text;
    mins integer := extract(epoch FROM refresh_every)::integer / 60;
BEGIN
    PERFORM sales_kafka._require_pg_cron('schedule_kpi_refresh');
    IF database = current_database() THEN
        PERFORM sales_kafka._model_state(model_schema);
    END IF;
    cron_expr := CASE
        WHEN extract(epoch FROM refresh_every) <> mins * 60 OR mins < 1 THEN NULL
        WHEN mins < 60 AND 60 % mins = 0 THEN format('*/%s * * * *', mins)
        WHEN mins % 60 = 0 AND mins < 1440 AND 24 % (mins / 60) = 0 THEN format('0 */%s * * *', mins / 60)
        WHEN mins = 1440 THEN '0 0 * * *'
    END;
    IF cron_expr IS NULL THEN
        RAISE EXCEPTION 'pg_cron cannot run a job every %', refresh_every
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'pg_cron 1.4 schedules whole minutes: the interval must be 1 day, or a number of minutes or hours that divides an hour or a day.';
    END IF;

    PERFORM sales_kafka.unschedule_kpi_refresh(model_schema, database);
    RETURN QUERY
    SELECT cron.schedule_in_database(j.name, j.sched, j.cmd, database), j.name, j.sched, j.cmd
      FROM (VALUES (format('sales_kafka views %s.%s', database, model_schema), cron_expr,
                    format('SELECT sales_kafka.refresh_kpis(%L)', model_schema))) AS j(name, sched, cmd);
END
$$;

COMMENT ON FUNCTION sales_kafka.schedule_kpi_refresh(name, interval, name) IS
'schedules a pg_cron job that runs refresh_kpis for a sales model at the interval given (not needed while the rollup worker runs: it keeps the KPIs current within a second); run it where pg_cron is installed';

-- pg_cron here, or an error that says where to call the scheduling
-- function named (pg_cron lives in the database cron.database_name names,
-- and schedules jobs in others).  cron.database_name is readable by
-- superusers and pg_read_all_settings only: reading it as another role
-- failed with 42501, instead of this error; then the hint leaves it out.
CREATE FUNCTION sales_kafka._require_pg_cron(caller text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regproc('cron.schedule_in_database') IS NULL THEN
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Call sales_kafka.%s in the database named by cron.database_name%s, with database => %L.',
                                caller,
                                CASE WHEN pg_has_role('pg_read_all_settings', 'USAGE')
                                     THEN format(' (%s)', coalesce(current_setting('cron.database_name', true), 'postgres'))
                                     ELSE '' END,
                                current_database());
    END IF;
END
$$;

COMMENT ON FUNCTION sales_kafka._require_pg_cron(text) IS
'internal: raises an error unless pg_cron is installed in this database, with a hint for the scheduling function named';

-- The caller's pg_cron jobs of these names (pg_cron's row security shows
-- each role its own), and with numbered also those named "<name> <n>"
-- (schedule_daily_export makes one per UTC offset), removed; how many.
CREATE FUNCTION sales_kafka._unschedule_jobs(jobnames text[], numbered boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := 0;
    j bigint;
BEGIN
    IF to_regprocedure('cron.unschedule(bigint)') IS NULL THEN
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    FOR j IN EXECUTE 'SELECT jobid FROM cron.job
                       WHERE jobname = ANY ($1)
                          OR ($2 AND substring(jobname FROM ''^(.*) [0-9]+$'') = ANY ($1))'
        USING jobnames, numbered
    LOOP
        PERFORM cron.unschedule(j);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

COMMENT ON FUNCTION sales_kafka._unschedule_jobs(text[], boolean) IS
'internal: removes the caller''s pg_cron jobs of these names (with numbered, also "<name> <n>"), for the unschedule_* functions';

CREATE FUNCTION sales_kafka.unschedule_kpi_refresh(
    model_schema name,
    database name DEFAULT current_database())
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN sales_kafka._unschedule_jobs(
        ARRAY[format('sales_kafka rollups %s.%s', database, model_schema),
              format('sales_kafka views %s.%s', database, model_schema)]);
END
$$;

COMMENT ON FUNCTION sales_kafka.unschedule_kpi_refresh(name, name) IS
'removes the pg_cron jobs of schedule_kpi_refresh for a sales model (and the rollups job of 1.2); returns how many';
