-------------------------------------------------------------------------------
-- src/sql/model/upgrade.sql: a model records the version of sales_kafka
-- that made it (kpi_state.model_version), and upgrade_sales_model brings a
-- model made by an earlier version to the installed one.  Models are their
-- owners' data, outside the extension: ALTER EXTENSION UPDATE leaves them
-- as they are (the KPI functions of each version work on the models of
-- the earlier ones), and upgrade_sales_model, which the C function
-- (src/kpi.c) runs as the owner of the model's schema, changes them.
--
-- Each version that changes the model adds a step below, which changes the
-- tables (new columns, new tables) and their data; then, from whatever
-- version (the installed one too), the views are made again as
-- src/sql/model/views.sql defines them now, and the comments and grants of
-- the model's objects set again, so that an upgraded model is the model
-- create_sales_model makes (sql/upgrade.sql compares them object by
-- object), and a model whose kpi_as_of_partitions DROP EXTENSION ...
-- CASCADE dropped gets it back.  How the DDL gets its schema:
-- src/sql/model/tables.sql.
-------------------------------------------------------------------------------

-- The version a model made now records: the extension's.
CREATE FUNCTION sales_kafka._model_version()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
SELECT extversion FROM pg_extension WHERE extname = 'sales_kafka';
END;

COMMENT ON FUNCTION sales_kafka._model_version() IS
'internal: the version of sales_kafka installed, which a sales model made now records in kpi_state.model_version';

CREATE FUNCTION sales_kafka._upgrade_sales_model(model_schema name)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := sales_kafka._model_state(model_schema);
    lines regclass := (s || '.order_lines')::regclass;
    installed text := sales_kafka._model_version();
    st record;
    was text;
    kept_grants jsonb := '[]';
    g record;
BEGIN
    -- one at a time with refresh_rollups, which holds this row while it
    -- adds lines; the rollups first (see sales_kafka._rollup_tables)
    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', sales_kafka._rollup_tables(s));
    EXECUTE format('SELECT * FROM %s.kpi_state FOR UPDATE', s) INTO st;
    IF EXISTS (SELECT FROM pg_attribute
                WHERE attrelid = (s || '.kpi_state')::regclass
                  AND attname = 'model_version' AND NOT attisdropped) THEN
        was := st.model_version;
    ELSE
        -- 1.2 made the first models, and recorded no version
        was := '1.2';
    END IF;
    IF was !~ '^\d+\.\d+$' THEN
        RAISE EXCEPTION 'sales model "%" has an unrecognized version "%"', model_schema, was
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'kpi_state.model_version is the version of sales_kafka that made the model, such as 1.2.';
    END IF;
    IF string_to_array(was, '.')::integer[] > string_to_array(installed, '.')::integer[] THEN
        RAISE EXCEPTION 'sales model "%" is of version %, newer than the installed sales_kafka %',
                        model_schema, was, installed
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Update the extension first: ALTER EXTENSION sales_kafka UPDATE.';
    END IF;

    PERFORM sales_kafka._use_model_schema(model_schema);

    -- 1.3: KPI views a BI tool cannot misread (README, "KPI views for BI
    -- tools").  The cubes kpi_product_sales and kpi_customer_sales, whose
    -- rows were of several grains, are gone: one view per grain replaces
    -- each (kpi_product_sales_hourly, _daily, _monthly and
    -- kpi_customer_sales_hourly, _daily, _monthly).  Money (sales_facts'
    -- too), percentages and counts get declared types, and time series
    -- date columns in the model's time zone: CREATE OR REPLACE VIEW cannot
    -- change a column's type, so the views whose columns change are
    -- dropped here, and made again below (as are those the rollups' step
    -- drops).  A view, function or rule of the owner's own that depends on
    -- one of them would keep the upgrade from dropping it: the upgrade
    -- refuses, naming them, and changes nothing.  Grants of the owner's on
    -- them are granted again.
    IF string_to_array(was, '.')::integer[] < '{1,3}' THEN
        DECLARE
            retyped text[] := '{kpi_product_sales,kpi_customer_sales,kpi_totals,kpi_today,'
                              'kpi_sales_per_minute,kpi_sales_per_hour,kpi_sales_per_day,kpi_sales_per_month,'
                              'kpi_sales_by_category,kpi_sales_by_sub_category,kpi_sales_by_segment,'
                              'kpi_sales_by_region,kpi_sales_by_state,kpi_sales_by_city,'
                              'kpi_today_top_products,kpi_today_by_category,kpi_metrics_10min,kpi_metrics_20min,'
                              'sales_facts}';
            -- dropped by the rollups' step below, and made again
            remade text[] := '{kpi_top_products,kpi_price_distribution,kpi_growth_yoy}';
            dependents text;
            v text;
        BEGIN
            SELECT string_agg(DISTINCT format('%s depends on %s',
                                              CASE WHEN d.classid = 'pg_rewrite'::regclass
                                                   THEN (SELECT pg_describe_object('pg_class'::regclass, r.ev_class, 0)
                                                           FROM pg_rewrite r WHERE r.oid = d.objid)
                                                   ELSE pg_describe_object(d.classid, d.objid, 0) END,
                                              c.relname),
                              '; ')
              INTO dependents
              FROM pg_class c
              JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid AND d.deptype = 'n'
             WHERE c.relnamespace = model_schema::regnamespace
               AND c.relkind = 'v'
               AND c.relname = ANY (retyped || remade)
               AND NOT (d.classid = 'pg_rewrite'::regclass
                        AND (SELECT r.ev_class FROM pg_rewrite r WHERE r.oid = d.objid) = c.oid);
            IF dependents IS NOT NULL THEN
                RAISE EXCEPTION 'cannot upgrade sales model "%": objects depend on views that version 1.3 changes',
                                model_schema
                    USING ERRCODE = 'dependent_objects_still_exist',
                          DETAIL = dependents || '.',
                          HINT = 'Drop them, run sales_kafka.upgrade_sales_model again, then create them again on the views of 1.3 (kpi_product_sales and kpi_customer_sales are now one view per grain: kpi_product_sales_hourly, _daily, _monthly and kpi_customer_sales_hourly, _daily, _monthly).';
            END IF;
            -- what the owner granted on them (to other roles than the
            -- reader, whom _grant_model grants anew) is granted again below;
            -- the cubes' grants go with them
            SELECT coalesce(jsonb_agg(jsonb_build_object('relname', c.relname, 'grantee', a.grantee,
                                                         'privilege', a.privilege_type,
                                                         'grantable', a.is_grantable)), '[]')
              INTO kept_grants
              FROM pg_class c, aclexplode(c.relacl) a
             WHERE c.relnamespace = model_schema::regnamespace
               AND c.relkind = 'v'
               AND c.relname = ANY (retyped || remade)
               AND c.relname NOT IN ('kpi_product_sales', 'kpi_customer_sales')
               AND a.grantee <> c.relowner
               AND a.grantee <> 'sales_kafka_reader'::regrole;
            FOREACH v IN ARRAY retyped
            LOOP
                EXECUTE format('DROP VIEW IF EXISTS %I', v);
            END LOOP;
        END;
    END IF;

    -- 1.3: kpi_state records the model's version.  kpi_as_of_partitions
    -- joins the covered offsets to sales_kafka.pipeline_partitions on
    -- pipeline_id, not on the pipeline's name (names are unique per owner
    -- only): each covered offset of 1.2 gets the id of the one pipeline of
    -- its name into the model's order lines, as _covered_offsets would
    -- have recorded it (the next refresh_rollups records them all anew).
    IF string_to_array(was, '.')::integer[] < '{1,3}' THEN
        ALTER TABLE kpi_state ADD COLUMN model_version text;
        UPDATE kpi_state SET model_version = '1.3';
        ALTER TABLE kpi_state ALTER COLUMN model_version SET NOT NULL;

        UPDATE kpi_state k
           SET covered_offsets = (
               SELECT coalesce(jsonb_agg(CASE WHEN p.id IS NULL THEN e.c
                                              ELSE e.c || jsonb_build_object('pipeline_id', p.id) END
                                         ORDER BY e.n), '[]')
                 FROM jsonb_array_elements(k.covered_offsets) WITH ORDINALITY AS e(c, n)
                 LEFT JOIN LATERAL (
                     SELECT min(o.pipeline_id) AS id
                       FROM sales_kafka.pipeline_status ps
                       JOIN sales_kafka.pipeline_partitions o
                         ON o.pipeline = ps.pipeline AND o.owner = ps.owner
                      WHERE ps.target = lines AND ps.pipeline = e.c->>'pipeline'
                        AND o.topic = e.c->>'topic' AND o.partition = (e.c->>'partition')::integer
                     HAVING count(DISTINCT o.pipeline_id) = 1) p ON NOT e.c ? 'pipeline_id');

        -- 1.3: the rollup worker keeps the rollups current, and the KPIs of
        -- top products, price distribution and year over year read them
        -- when read (src/sql/model/views.sql): their materialized views go,
        -- after the views that read them, made again below.
        DROP VIEW kpi_top_products, kpi_price_distribution, kpi_growth_yoy;
        DROP MATERIALIZED VIEW mv_top_products, mv_price_distribution, mv_growth_yoy;

        -- 1.3: rollup_product keeps the grains hour, day, month and all; a
        -- row per product and minute was nearly a row per line
        DELETE FROM rollup_product WHERE grain = 'minute';

        -- 1.3: rollup_customer keeps hours only (for customers_moved());
        -- the KPIs per customer attribute read rollup_customer_group
        DELETE FROM rollup_customer WHERE grain <> 'hour';

        -- 1.3: room on the rollups' pages for their updates (new pages;
        -- rebuild_rollups rewrites them all)
        ALTER TABLE rollup_total SET (fillfactor = 80);
        ALTER TABLE rollup_product SET (fillfactor = 80);
        ALTER TABLE rollup_customer SET (fillfactor = 80);
        ALTER TABLE rollup_customer_group SET (fillfactor = 80);
    END IF;

    -- 1.3: a metric record is a series and a record id, and the summaries
    -- are per series and bucket, kept by refresh_rollups (see
    -- src/sql/model/metrics.sql).  1.2 keyed metrics by (metric_id,
    -- measured_at) and summarised per metric_id: a metric_id named the
    -- stream, except in the rows of the metrics shape's pipeline, which put
    -- the record id ("id") there.  So if the model has the shape's foreign
    -- table src_metrics and no metric_id occurs twice, each metric_id is a
    -- record id of the one series named after the foreign table's topic;
    -- otherwise each metric_id is a series, and a record's id is its time
    -- (ISO 8601, in UTC), unique in it as the key of 1.2 was.  src_metrics
    -- maps the new columns (its pipeline goes on at its next batch).  The
    -- views of 1.2 were dropped by the step above (their columns change) and
    -- are made again below, on the summaries, which the next refresh_rollups
    -- fills.
    IF string_to_array(was, '.')::integer[] < '{1,3}' THEN
        DECLARE
            stream_topic text;
            index_name name;
        BEGIN
            SELECT o.option_value INTO stream_topic
              FROM pg_class c
              JOIN pg_foreign_table f ON f.ftrelid = c.oid,
                   pg_options_to_table(f.ftoptions) o
             WHERE c.relnamespace = model_schema::regnamespace AND c.relname = 'src_metrics'
               AND o.option_name = 'topic'
               AND EXISTS (SELECT FROM pg_attribute a
                            WHERE a.attrelid = c.oid AND a.attname = 'metric_id' AND NOT a.attisdropped);

            FOR index_name IN
                SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                 WHERE x.indrelid = (s || '.metrics')::regclass AND NOT x.indisprimary
            LOOP
                EXECUTE format('DROP INDEX %s.%I', s, index_name);
            END LOOP;
            ALTER TABLE metrics DROP CONSTRAINT metrics_pkey;
            ALTER TABLE metrics RENAME COLUMN metric_id TO record_id;
            ALTER TABLE metrics ADD COLUMN series text;
            IF stream_topic IS NOT NULL
               AND NOT EXISTS (SELECT FROM metrics GROUP BY record_id HAVING count(*) > 1) THEN
                UPDATE metrics SET series = stream_topic;
            ELSE
                UPDATE metrics
                   SET series = record_id,
                       record_id = (to_json(measured_at AT TIME ZONE 'UTC') #>> '{}') || 'Z';
            END IF;
            ALTER TABLE metrics ALTER COLUMN series SET NOT NULL;
            CREATE SEQUENCE metrics_ingest_id_seq CACHE 1;
            ALTER TABLE metrics ADD COLUMN ingest_id bigint NOT NULL DEFAULT nextval('metrics_ingest_id_seq');
            ALTER SEQUENCE metrics_ingest_id_seq OWNED BY metrics.ingest_id;
            ALTER TABLE metrics ADD PRIMARY KEY (series, record_id);
            CREATE INDEX ON metrics (ingest_id);
            CREATE INDEX ON metrics (series, measured_at);
            PERFORM sales_kafka._create_model_metric_summaries(model_schema);

            IF stream_topic IS NOT NULL THEN
                ALTER FOREIGN TABLE src_metrics RENAME COLUMN metric_id TO record_id;
                ALTER FOREIGN TABLE src_metrics ADD COLUMN series text OPTIONS (kafka 'topic');
            END IF;
        END;
    END IF;

    -- 1.3: lines that come without an order id get a time-ordered one
    -- (1.2: gen_random_uuid()); and a default that DROP EXTENSION ...
    -- CASCADE dropped, with the function it called, comes back.  A default
    -- of the owner's own is kept.
    IF coalesce((SELECT pg_get_expr(d.adbin, d.adrelid)
                   FROM pg_attrdef d
                   JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                  WHERE d.adrelid = lines AND a.attname = 'order_id'),
                '(gen_random_uuid())::text') = '(gen_random_uuid())::text' THEN
        EXECUTE format('ALTER TABLE %s ALTER COLUMN order_id SET DEFAULT %s',
                       lines, sales_kafka._order_id_default());
    END IF;

    -- every version: the views, the customers' trigger function, comments
    -- and grants of the installed one
    PERFORM sales_kafka._create_model_views(model_schema, st.time_zone);
    PERFORM sales_kafka._create_customers_moved(model_schema);
    PERFORM sales_kafka._comment_model(model_schema);
    PERFORM sales_kafka._grant_model(model_schema);
    FOR g IN SELECT * FROM jsonb_to_recordset(kept_grants)
                        AS x(relname text, grantee oid, privilege text, grantable boolean)
    LOOP
        EXECUTE format('GRANT %s ON %I TO %s%s', g.privilege, g.relname,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END,
                       CASE WHEN g.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    UPDATE kpi_state SET model_version = installed;
    RETURN was;
END
$$;

COMMENT ON FUNCTION sales_kafka._upgrade_sales_model(name) IS
'internal: the body of upgrade_sales_model, run as the owner of the model''s schema';

REVOKE EXECUTE ON FUNCTION sales_kafka._upgrade_sales_model(name) FROM PUBLIC;
