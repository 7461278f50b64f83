-------------------------------------------------------------------------------
-- src/sql/model/grants.sql: the role sales_kafka_reader (src/sql/kpi.sql)
-- reads the KPI views of every model, its time_dim (the date dimension
-- that the day column of the KPI time series joins, so that a BI tool
-- reading as the reader can use it) and kpi_state (one row of progress that
-- kpi_as_of shows anyway: a BI tool lists every kpi_* name, and none may be
-- one the reader cannot open), and nothing else of it.  The owner grants
-- whatever else it likes.
-------------------------------------------------------------------------------

CREATE FUNCTION sales_kafka._grant_model(model_schema name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := quote_ident(model_schema);
    o record;
BEGIN
    PERFORM sales_kafka._use_model_schema(model_schema);
    EXECUTE format('GRANT USAGE ON SCHEMA %s TO sales_kafka_reader', s);
    FOR o IN SELECT c.relname
               FROM sales_kafka._model_comments() m
               JOIN pg_class c ON c.relname = m.object
              WHERE c.relnamespace = model_schema::regnamespace
                AND ((c.relkind = 'v' AND (c.relname LIKE 'kpi\_%' OR c.relname = 'time_dim'))
                     OR c.relname = 'kpi_state')
    LOOP
        EXECUTE format('GRANT SELECT ON %s.%I TO sales_kafka_reader', s, o.relname);
    END LOOP;
END
$$;

COMMENT ON FUNCTION sales_kafka._grant_model(name) IS
'internal: grants the KPI views, time_dim and kpi_state of a sales model to sales_kafka_reader, for create_sales_model and upgrade_sales_model';
