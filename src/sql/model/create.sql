-------------------------------------------------------------------------------
-- src/sql/model/create.sql: the body of create_sales_model, which the C
-- function (src/kpi.c) runs as the owner of the model's schema, once it
-- made the schema if it did not exist.
-------------------------------------------------------------------------------

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
    taken text;
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
    -- the views are made with CREATE OR REPLACE (src/sql/model/views.sql):
    -- none may replace one of the schema's
    SELECT min(c.relname) INTO taken
      FROM sales_kafka._model_comments() m
      JOIN pg_class c ON c.relname = m.object
     WHERE c.relnamespace = model_schema::regnamespace;
    IF taken IS NOT NULL THEN
        RAISE EXCEPTION 'relation "%" already exists', taken
            USING ERRCODE = 'duplicate_table';
    END IF;

    PERFORM sales_kafka._create_model_tables(model_schema, time_zone, partitioned);
    PERFORM sales_kafka._create_model_rollups(model_schema);
    PERFORM sales_kafka._create_model_views(model_schema, time_zone);

    IF partitioned THEN
        EXECUTE format('CREATE TABLE %1$s.order_lines_default PARTITION OF %1$s.order_lines DEFAULT', s);
        EXECUTE format('COMMENT ON TABLE %s.order_lines_default IS %L', s,
                       'order lines outside every monthly partition (see sales_kafka.create_sales_partitions)');
        PERFORM sales_kafka.create_sales_partitions(model_schema,
                    (now() - interval '1 year')::date, (now() + interval '1 year')::date);
    END IF;

    PERFORM sales_kafka._comment_model(model_schema);
    PERFORM sales_kafka._grant_model(model_schema);
END
$$;

COMMENT ON FUNCTION sales_kafka._create_sales_model(name, boolean, text) IS
'internal: the body of create_sales_model, run as the owner of the model''s schema';

REVOKE EXECUTE ON FUNCTION sales_kafka._create_sales_model(name, boolean, text) FROM PUBLIC;
