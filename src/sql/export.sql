-------------------------------------------------------------------------------
-- src/sql/export.sql: the daily export of a sales model (one day's star
-- schema as CSV files with a manifest, in a directory of the database
-- server: src/export.c) and its pg_cron schedule.  New in 1.3: in both
-- scripts.
--
-- Writing the server's files is for roles with the privileges of
-- pg_write_server_files, as COPY TO a file is: each function checks that
-- before anything else.  The export reads the model's views with the
-- caller's rights.  pg_cron (1.4) schedules in UTC: schedule_daily_export
-- turns "after midnight in the model's time zone, plus a grace period for
-- late events" into UTC times, one for each UTC offset the zone has (two
-- with summer time); the job's command exports the last day that ended at
-- least the grace period ago, so that a run at the other offset exports a
-- day again, identically, never a day too early.
-------------------------------------------------------------------------------

CREATE FUNCTION sales_kafka.export_day(
    model_schema name,
    day date,
    directory text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'sales_kafka_export_day'
LANGUAGE C STRICT VOLATILE
-- the settings that shape the files' text: the same rows, the same bytes
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
SET IntervalStyle = 'postgres'
SET extra_float_digits = 1
SET bytea_output = 'hex';

COMMENT ON FUNCTION sales_kafka.export_day(name, date, text) IS
'writes one day of a sales model (cut in its time zone) into a directory of the database server, atomically: sales_facts_<day>.csv, customers_dim_<day>.csv, products_dim_<day>.csv, time_dim_<day>.csv (CSV with a header, UTF8, times in UTC, sorted), then manifest_<day>.json (rows, bytes and SHA-256 of each file, the Kafka offsets covered); the same rows give the same bytes; needs the privileges of pg_write_server_files; returns the manifest';

CREATE FUNCTION sales_kafka._check_export_right()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT pg_has_role('pg_write_server_files', 'USAGE') THEN
        RAISE EXCEPTION 'permission denied to export sales models'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The export writes files on the database server: only superusers and roles with privileges of the "pg_write_server_files" role may run it.',
                  HINT = 'A superuser may GRANT pg_write_server_files to the role that runs the export.';
    END IF;
END
$$;

COMMENT ON FUNCTION sales_kafka._check_export_right() IS
'internal: raises an error unless the current user has the privileges of pg_write_server_files';

CREATE FUNCTION sales_kafka.export_last_day(
    model_schema name,
    directory text,
    grace interval DEFAULT '1 hour')
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- kpi_state is read as the caller: no policy of its owner may run here
SET row_security = off
AS $$
DECLARE
    tz text;
BEGIN
    PERFORM sales_kafka._check_export_right();
    EXECUTE format('SELECT time_zone FROM %s.kpi_state', sales_kafka._model_state(model_schema))
       INTO tz;
    -- the last day of the model's zone that ended at least grace ago
    RETURN sales_kafka.export_day(model_schema,
                                  ((now() - grace) AT TIME ZONE tz)::date - 1,
                                  directory);
END
$$;

COMMENT ON FUNCTION sales_kafka.export_last_day(name, text, interval) IS
'exports (export_day) the last day of a sales model''s time zone that ended at least grace ago: the command of schedule_daily_export''s pg_cron job';

CREATE FUNCTION sales_kafka.unschedule_daily_export(
    model_schema name,
    database name DEFAULT current_database())
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN sales_kafka._unschedule_jobs(
        ARRAY[format('sales_kafka export %s.%s', database, model_schema)], numbered => true);
END
$$;

COMMENT ON FUNCTION sales_kafka.unschedule_daily_export(name, name) IS
'removes the pg_cron jobs of schedule_daily_export for a sales model; returns how many';

-- 00:00 + grace in the zone, at each UTC offset it has in the coming year,
-- as pg_cron schedules in UTC: one per minute of the hour (usually one)
CREATE FUNCTION sales_kafka._export_cron_schedules(time_zone text, grace interval)
RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
WITH offsets AS (
    SELECT DISTINCT (extract(epoch FROM (t AT TIME ZONE time_zone) - (t AT TIME ZONE 'UTC')) / 60)::integer AS minutes
      FROM generate_series(now(), now() + interval '366 days', interval '1 day') AS t
), utc AS (
    SELECT (((extract(epoch FROM grace) / 60)::integer - minutes) % 1440 + 1440) % 1440 AS minute_of_day
      FROM offsets
)
SELECT format('%s %s * * *', minute_of_day % 60,
              string_agg((minute_of_day / 60)::text, ',' ORDER BY minute_of_day / 60))
  FROM utc
 GROUP BY minute_of_day % 60
 ORDER BY minute_of_day % 60;
END;

COMMENT ON FUNCTION sales_kafka._export_cron_schedules(text, interval) IS
'internal: the pg_cron schedules (UTC) of 00:00 + grace in a time zone, at each UTC offset the zone has in the coming year, one per minute of the hour';

CREATE FUNCTION sales_kafka.schedule_daily_export(
    model_schema name,
    directory text,
    grace interval DEFAULT '1 hour',
    database name DEFAULT current_database(),
    time_zone text DEFAULT NULL)
RETURNS TABLE (jobid bigint, jobname text, schedule text, command text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- kpi_state is read as the caller: no policy of its owner may run here
SET row_security = off
AS $$
DECLARE
    zone text := time_zone;
    base text := format('sales_kafka export %s.%s', database, model_schema);
    cmd text;
    sched text;
    k integer := 0;
BEGIN
    PERFORM sales_kafka._check_export_right();
    PERFORM sales_kafka._require_pg_cron('schedule_daily_export');
    IF directory IS NULL OR left(directory, 1) <> '/' THEN
        RAISE EXCEPTION 'relative path not allowed for the export directory: "%"', directory
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF grace IS NULL OR grace < interval '0' OR grace >= interval '1 day'
       OR extract(epoch FROM grace) % 60 <> 0 THEN
        RAISE EXCEPTION 'invalid value for grace: %', grace
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'pg_cron schedules whole minutes: the grace period must be a whole number of minutes, at least 0 and less than 1 day.';
    END IF;
    IF database = current_database() THEN
        EXECUTE format('SELECT time_zone FROM %s.kpi_state', sales_kafka._model_state(model_schema))
           INTO zone;
    ELSIF zone IS NULL THEN
        RAISE EXCEPTION 'the time zone of a sales model in another database must be given'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Pass time_zone => the time_zone of %I.kpi_state in database %I.', model_schema, database);
    END IF;
    PERFORM now() AT TIME ZONE zone;    -- a zone PostgreSQL knows

    PERFORM sales_kafka.unschedule_daily_export(model_schema, database);
    cmd := format('SELECT sales_kafka.export_last_day(%L, %L, %L)', model_schema, directory, grace);
    FOR sched IN SELECT sales_kafka._export_cron_schedules(zone, grace)
    LOOP
        k := k + 1;
        jobname := CASE WHEN k = 1 THEN base ELSE base || ' ' || k END;
        schedule := sched;
        command := cmd;
        jobid := cron.schedule_in_database(jobname, schedule, command, database);
        RETURN NEXT;
    END LOOP;
END
$$;

COMMENT ON FUNCTION sales_kafka.schedule_daily_export(name, text, interval, name, text) IS
'schedules a pg_cron job that exports each day of a sales model (export_last_day) once grace has passed after midnight in the model''s time zone: pg_cron schedules in UTC, so the job runs at 00:00 + grace local time at every UTC offset the zone has in the coming year (two with summer time; the run at the other offset exports a day again, identically); run it where pg_cron is installed; time_zone only for a model in another database';
