-------------------------------------------------------------------------------
-- src/sql/retention.sql: retention for partitioned sales models.  A
-- partitioned model (create_sales_model(..., partitioned => true)) keeps
-- its order lines in one partition per month; drop_old_partitions detaches
-- (and by default drops) the months older than a given age, which costs the
-- same for a month of a thousand lines as for one of millions.  The
-- rollups keep the months' sums: drop_old_partitions first adds every line
-- written so far to them (src/kpi.c), and detaching does not change them,
-- so the KPIs of all time, of each month and of each product still count
-- the lines dropped (rebuild_rollups would recompute them from what is
-- left).  schedule_retention runs it every day with pg_cron.
-------------------------------------------------------------------------------

CREATE FUNCTION sales_kafka._drop_old_partitions(
    model_schema name,
    keep interval,
    detach_only boolean DEFAULT false)
RETURNS TABLE (partition_name text, from_time timestamptz, to_time timestamptz, dropped boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- the bounds of the partitions are read back from their text
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    s text := sales_kafka._model_state(model_schema);
    lines regclass := (s || '.order_lines')::regclass;
    tz text;
    through bigint;
    cutoff timestamptz;
    missing boolean;
    p record;
BEGIN
    IF keep IS NULL OR detach_only IS NULL THEN
        RAISE EXCEPTION 'the arguments of drop_old_partitions() must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF keep < interval '0' THEN
        RAISE EXCEPTION 'invalid age to keep: %', keep
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The months older than keep are dropped: keep is an interval of 0 or more.';
    END IF;
    IF (SELECT relkind FROM pg_class WHERE oid = lines) <> 'p' THEN
        RAISE EXCEPTION 'the order lines of sales model "%" are not partitioned', model_schema
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Only a model made with partitioned => true has months to drop.';
    END IF;
    EXECUTE format('SELECT time_zone, rolled_up_through FROM %s.kpi_state', s) INTO tz, through;
    -- a month goes once all of it is older than keep, in the model's time zone
    cutoff := ((now() AT TIME ZONE tz) - keep) AT TIME ZONE tz;

    FOR p IN
        SELECT c.oid::regclass AS part, c.relname::text AS name, b.from_time, b.to_time
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
         CROSS JOIN LATERAL (
               SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                    '^FOR VALUES FROM \(''([^'']*)''\) TO'))[1]::timestamptz AS from_time,
                      (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                    ' TO \(''([^'']*)''\)$'))[1]::timestamptz AS to_time) b
         WHERE i.inhparent = lines
           AND b.to_time IS NOT NULL    -- neither the default partition nor one without end
           AND b.to_time <= cutoff
         ORDER BY b.to_time
    LOOP
        -- every line of the month must be in the rollups already (max():
        -- one step down the index on ingest_id, whatever the month holds)
        EXECUTE format('SELECT coalesce(max(ingest_id) > $1, false) FROM %s', p.part)
           INTO missing USING through;
        IF missing THEN
            RAISE EXCEPTION 'order lines of partition "%" of sales model "%" are not in the rollups yet', p.name, model_schema
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'Dropping the month would take them out of the KPIs.',
                      HINT = 'Call sales_kafka.refresh_rollups first (drop_old_partitions does).';
        END IF;
        EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', lines, p.part);
        IF NOT detach_only THEN
            EXECUTE format('DROP TABLE %s', p.part);
        END IF;
        RAISE NOTICE '% partition "%" of sales model "%" (% to %)',
            CASE WHEN detach_only THEN 'detached' ELSE 'dropped' END,
            p.name, model_schema, p.from_time, p.to_time;
        partition_name := p.name;
        from_time := p.from_time;
        to_time := p.to_time;
        dropped := NOT detach_only;
        RETURN NEXT;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION sales_kafka._drop_old_partitions(name, interval, boolean) FROM PUBLIC;

COMMENT ON FUNCTION sales_kafka._drop_old_partitions(name, interval, boolean) IS
'internal: the body of drop_old_partitions, run as the owner of the model''s schema once the rollups hold every order line';

CREATE FUNCTION sales_kafka.drop_old_partitions(
    model_schema name,
    keep interval,
    detach_only boolean DEFAULT false)
RETURNS TABLE (partition_name text, from_time timestamptz, to_time timestamptz, dropped boolean)
AS 'MODULE_PATHNAME', 'sales_kafka_drop_old_partitions'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION sales_kafka.drop_old_partitions(name, interval, boolean) IS
'detaches the monthly partitions of a partitioned sales model''s order lines that are wholly older than keep, and drops them unless detach_only, as the owner of the model''s schema; the rollups keep their sums (every line is rolled up first); returns, and says in a NOTICE, each month detached or dropped';

-- pg_cron (1.4) runs the job at run_at, in cron's syntax (once a day by
-- default), in pg_cron's time zone (GMT); pg_cron checks the schedule.
CREATE FUNCTION sales_kafka.schedule_retention(
    model_schema name,
    keep interval,
    detach_only boolean DEFAULT false,
    run_at text DEFAULT '15 3 * * *',
    database name DEFAULT current_database())
RETURNS TABLE (jobid bigint, jobname text, schedule text, command text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job_name text := format('sales_kafka retention %s.%s', database, model_schema);
    job_command text;
BEGIN
    PERFORM sales_kafka._require_pg_cron('schedule_retention');
    IF keep IS NULL OR detach_only IS NULL OR run_at IS NULL THEN
        RAISE EXCEPTION 'the arguments of schedule_retention() must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF keep < interval '0' THEN
        RAISE EXCEPTION 'invalid age to keep: %', keep
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The months older than keep are dropped: keep is an interval of 0 or more.';
    END IF;
    IF database = current_database() THEN
        PERFORM sales_kafka._model_state(model_schema);
    END IF;
    job_command := format('SELECT count(*) FROM sales_kafka.drop_old_partitions(%L, %L, %L)',
                          model_schema, keep, detach_only);

    PERFORM sales_kafka.unschedule_retention(model_schema, database);
    RETURN QUERY
    SELECT cron.schedule_in_database(job_name, run_at, job_command, database),
           job_name, run_at, job_command;
END
$$;

COMMENT ON FUNCTION sales_kafka.schedule_retention(name, interval, boolean, text, name) IS
'schedules a pg_cron job (daily at 03:15 by default) that runs drop_old_partitions on a partitioned sales model (replacing the one scheduled before); run it where pg_cron is installed; the job runs as the role that scheduled it';

CREATE FUNCTION sales_kafka.unschedule_retention(
    model_schema name,
    database name DEFAULT current_database())
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN sales_kafka._unschedule_jobs(
        ARRAY[format('sales_kafka retention %s.%s', database, model_schema)]);
END
$$;

COMMENT ON FUNCTION sales_kafka.unschedule_retention(name, name) IS
'removes the pg_cron job of schedule_retention for a sales model; returns how many';
