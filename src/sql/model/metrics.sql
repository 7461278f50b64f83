-------------------------------------------------------------------------------
-- src/sql/model/metrics.sql: a sales model's metric streams and their
-- summaries per series and time bucket.
--
-- Records and series.  A metric record is one measurement of a stream:
-- its series (the stream it belongs to: a stock symbol, a sensor, or, for
-- a stream without such a field, its topic) and its record id (the id its
-- producer gave it), which together are the primary key of metrics: a
-- pipeline upserts by them, so a record sent twice is one row.  Summaries
-- are per series and bucket, never per record id.
--
-- Summaries.  metric_summary holds, per bucket width (one row of
-- metric_summary_view each: 10 and 20 minutes in every model, more with
-- add_metric_summary), series and bucket, what a summary needs to grow by
-- merging: samples, the first and the last sample (time, then record id)
-- with the value of each measure there, lowest, highest, sum and count of
-- each measure.  _refresh_metric_summaries, which refresh_rollups calls,
-- merges the records written since the last call (ingest_id, taken from a
-- sequence with CACHE 1, as order_lines' ingest_id; after waiting for the
-- writers that may still hold a smaller one) into them, and stores each
-- width's progress (summarized_through) in the same transaction: exactly
-- once, at a cost proportional to the new records.  A record changed or
-- deleted after it was summarised (an upsert with other values, a
-- tombstone, an UPDATE or DELETE) queues its series and time, old and new,
-- in metric_change (statement triggers on metrics); the next refresh
-- computes those buckets again from metrics.  An upsert of the same values
-- (a replay) queues nothing and changes nothing.  TRUNCATE of metrics
-- empties the summaries.
--
-- Buckets are cut in the model's time zone: a width that divides an hour
-- gives fixed-length buckets from an origin at midnight there (aligned with
-- its clock in every zone whose offset changes by whole hours, so a
-- 10-minute bucket always holds 10 minutes); a width of whole hours that
-- divides a day is cut on the zone's clock (a bucket across a daylight
-- saving change is an hour longer or shorter, as that day is).
--
-- How the DDL gets its schema: src/sql/model/tables.sql.
-------------------------------------------------------------------------------

-- The width of a bucket, checked and in its normal form (whole seconds).
CREATE FUNCTION sales_kafka._metric_width(bucket_width interval)
RETURNS interval
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    secs numeric := extract(epoch FROM bucket_width);
BEGIN
    IF bucket_width IS NULL OR extract(month FROM bucket_width) <> 0
       OR extract(year FROM bucket_width) <> 0 OR secs <= 0 OR secs <> trunc(secs)
       OR NOT (3600 % secs = 0 OR (secs % 3600 = 0 AND 86400 % secs = 0)) THEN
        RAISE EXCEPTION 'invalid metric summary bucket width: "%"', coalesce(bucket_width::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A bucket is a whole number of seconds that divides an hour (such as 10 minutes), or of hours that divides a day (such as 6 hours or 1 day).';
    END IF;
    RETURN make_interval(secs => secs);
END
$$;

COMMENT ON FUNCTION sales_kafka._metric_width(interval) IS
'internal: a metric summary''s bucket width in whole seconds, or an error if buckets of that width cannot be cut';

-- SQL text: the start of the bucket of the timestamptz expression "t".
-- Widths that divide an hour: date_bin from midnight of 2000-01-01 in the
-- zone (fixed length); longer ones: date_bin on the zone's clock.
CREATE FUNCTION sales_kafka._metric_bucket_sql(bucket_width interval, time_zone text, t text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN extract(epoch FROM bucket_width) <= 3600
            THEN format('date_bin(%L::interval, %s, (timestamp ''2000-01-01'' AT TIME ZONE %L))',
                        bucket_width, t, time_zone)
            ELSE format('(date_bin(%L::interval, (%s) AT TIME ZONE %L, timestamp ''2000-01-01'') AT TIME ZONE %L)',
                        bucket_width, t, time_zone, time_zone) END;

COMMENT ON FUNCTION sales_kafka._metric_bucket_sql(interval, text, text) IS
'internal: SQL text of the start of the metric summary bucket of a time expression, in a model''s time zone';

-- SQL text: the end of the bucket that starts at the timestamptz "t".
CREATE FUNCTION sales_kafka._metric_bucket_end_sql(bucket_width interval, time_zone text, t text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN extract(epoch FROM bucket_width) <= 3600
            THEN format('(%s + %L::interval)', t, bucket_width)
            ELSE format('(((%s) AT TIME ZONE %L + %L::interval) AT TIME ZONE %L)',
                        t, time_zone, bucket_width, time_zone) END;

COMMENT ON FUNCTION sales_kafka._metric_bucket_end_sql(interval, text, text) IS
'internal: SQL text of the end of the metric summary bucket that starts at a time expression, in a model''s time zone';

-- The name of the KPI view of a width: kpi_metrics_10min, _1hour, _1day,
-- _30sec.
CREATE FUNCTION sales_kafka._metric_view_name(bucket_width interval)
RETURNS name
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
RETURN (SELECT 'kpi_metrics_' || CASE WHEN s % 86400 = 0 THEN (s / 86400) || 'day'
                                      WHEN s % 3600 = 0 THEN (s / 3600) || 'hour'
                                      WHEN s % 60 = 0 THEN (s / 60) || 'min'
                                      ELSE s || 'sec' END
          FROM (SELECT extract(epoch FROM bucket_width)::bigint AS s) w);

COMMENT ON FUNCTION sales_kafka._metric_view_name(interval) IS
'internal: the name of the KPI view of a metric summary bucket width';

-- The tables of the summaries, their triggers on metrics, and the two
-- widths every model has; for _create_model_tables (after metrics) and
-- for upgrade_sales_model.
CREATE FUNCTION sales_kafka._create_model_metric_summaries(model_schema name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM sales_kafka._use_model_schema(model_schema);

    CREATE TABLE metric_summary_view (
        bucket_width interval PRIMARY KEY,
        view_name name NOT NULL UNIQUE,
        summarized_through bigint NOT NULL DEFAULT 0
    );
    INSERT INTO metric_summary_view (bucket_width, view_name)
    SELECT sales_kafka._metric_width(w), sales_kafka._metric_view_name(w)
      FROM unnest('{10 minutes,20 minutes}'::interval[]) AS w;

    -- keyed so that the last 24 hours of one width are one index range
    CREATE TABLE metric_summary (
        bucket_width interval NOT NULL,
        period_start timestamptz NOT NULL,
        series text NOT NULL,
        samples bigint NOT NULL,
        first_at timestamptz NOT NULL,
        first_record text NOT NULL,
        last_at timestamptz NOT NULL,
        last_record text NOT NULL,
        stock_price_open numeric(14,4),
        stock_price_close numeric(14,4),
        stock_price_low numeric(14,4),
        stock_price_high numeric(14,4),
        stock_price_sum numeric,
        stock_price_samples bigint NOT NULL,
        sales_trend_open numeric,
        sales_trend_close numeric,
        sales_trend_low numeric,
        sales_trend_high numeric,
        sales_trend_sum numeric,
        sales_trend_samples bigint NOT NULL,
        PRIMARY KEY (bucket_width, period_start, series)
    );

    CREATE TABLE metric_change (
        series text NOT NULL,
        measured_at timestamptz NOT NULL
    );

    -- Records changed or deleted: their series and time, before and after,
    -- for the next refresh (an upsert that changes nothing queues nothing).
    -- A function's body is text, run with the search_path of whoever
    -- writes metrics: it names the model's schema (%1$s).
    EXECUTE format($f$
CREATE FUNCTION metrics_changed() RETURNS trigger
LANGUAGE plpgsql AS $b$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO %1$s.metric_change (series, measured_at)
        SELECT series, measured_at FROM old_rows;
    ELSE
        INSERT INTO %1$s.metric_change (series, measured_at)
        SELECT series, measured_at
          FROM ((SELECT series, record_id, measured_at, stock_price, sales_trend FROM old_rows
                 EXCEPT ALL
                 SELECT series, record_id, measured_at, stock_price, sales_trend FROM new_rows)
                UNION ALL
                (SELECT series, record_id, measured_at, stock_price, sales_trend FROM new_rows
                 EXCEPT ALL
                 SELECT series, record_id, measured_at, stock_price, sales_trend FROM old_rows)) c;
    END IF;
    RETURN NULL;
END
$b$
$f$,
                   quote_ident(model_schema));
    CREATE TRIGGER metrics_updated AFTER UPDATE ON metrics
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION metrics_changed();
    CREATE TRIGGER metrics_deleted AFTER DELETE ON metrics
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION metrics_changed();

    -- TRUNCATE empties the summaries: the next refresh summarises whatever
    -- is written after it
    EXECUTE format($f$
CREATE FUNCTION metrics_truncated() RETURNS trigger
LANGUAGE plpgsql AS $b$
BEGIN
    DELETE FROM %1$s.metric_summary;
    DELETE FROM %1$s.metric_change;
    UPDATE %1$s.metric_summary_view SET summarized_through = 0;
    RETURN NULL;
END
$b$
$f$,
                   quote_ident(model_schema));
    CREATE TRIGGER metrics_truncated AFTER TRUNCATE ON metrics
        FOR EACH STATEMENT EXECUTE FUNCTION metrics_truncated();
END
$$;

COMMENT ON FUNCTION sales_kafka._create_model_metric_summaries(name) IS
'internal: creates the metric summary tables of a sales model and the triggers that keep them exact, for create_sales_model and upgrade_sales_model';

-- The KPI view of one width: per series and bucket, with the date
-- hierarchy of the bucket's start in the model's time zone.
CREATE FUNCTION sales_kafka._create_metric_summary_view(
    model_schema name,
    bucket_width interval,
    view_name name,
    time_zone text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    local_start text := format('(m.period_start AT TIME ZONE %L)', time_zone);
BEGIN
    PERFORM sales_kafka._use_model_schema(model_schema);
    EXECUTE format($v$
CREATE OR REPLACE VIEW %1$I AS
SELECT m.series,
       m.period_start,
       %2$s AS period_end,
       %3$s::date AS day,
       extract(year FROM %3$s)::integer AS year,
       extract(quarter FROM %3$s)::integer AS quarter,
       extract(month FROM %3$s)::integer AS month,%4$s
       m.samples,
       m.stock_price_open::numeric(20,4) AS stock_price_open,
       m.stock_price_close::numeric(20,4) AS stock_price_close,
       m.stock_price_low::numeric(20,4) AS stock_price_low,
       m.stock_price_high::numeric(20,4) AS stock_price_high,
       round(m.stock_price_sum / nullif(m.stock_price_samples, 0), 4)::numeric(20,4) AS stock_price_average,
       m.sales_trend_open::numeric(20,4) AS sales_trend_open,
       m.sales_trend_close::numeric(20,4) AS sales_trend_close,
       m.sales_trend_low::numeric(20,4) AS sales_trend_low,
       m.sales_trend_high::numeric(20,4) AS sales_trend_high,
       round(m.sales_trend_sum / nullif(m.sales_trend_samples, 0), 4)::numeric(20,4) AS sales_trend_average
  FROM metric_summary m
 WHERE m.bucket_width = %5$L::interval
 ORDER BY m.series, m.period_start$v$,
                   view_name,
                   sales_kafka._metric_bucket_end_sql(bucket_width, time_zone, 'm.period_start'),
                   local_start,
                   CASE WHEN extract(epoch FROM bucket_width) < 86400
                        THEN format(E'\n       extract(hour FROM %s)::integer AS hour,', local_start) ELSE '' END,
                   bucket_width);
END
$$;

COMMENT ON FUNCTION sales_kafka._create_metric_summary_view(name, interval, name, text) IS
'internal: creates or replaces the KPI view of a metric summary width, for create_sales_model, upgrade_sales_model and add_metric_summary';

-- Every width's view, for _create_model_views.
CREATE FUNCTION sales_kafka._create_metric_summary_views(model_schema name, time_zone text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w record;
BEGIN
    FOR w IN EXECUTE format('SELECT bucket_width, view_name FROM %I.metric_summary_view ORDER BY bucket_width',
                            model_schema)
    LOOP
        PERFORM sales_kafka._create_metric_summary_view(model_schema, w.bucket_width, w.view_name, time_zone);
    END LOOP;
END
$$;

COMMENT ON FUNCTION sales_kafka._create_metric_summary_views(name, text) IS
'internal: creates or replaces the KPI view of every metric summary width of a sales model';

-- The aggregates of a set of metric records "x" that has a period_start,
-- in the column order of metric_summary after bucket_width.
CREATE FUNCTION sales_kafka._metric_aggregates_sql()
RETURNS text
LANGUAGE sql IMMUTABLE
RETURN 'x.period_start, x.series, count(*),
       min(x.measured_at), (array_agg(x.record_id ORDER BY x.measured_at, x.record_id))[1],
       max(x.measured_at), (array_agg(x.record_id ORDER BY x.measured_at DESC, x.record_id DESC))[1],
       (array_agg(x.stock_price ORDER BY x.measured_at, x.record_id))[1],
       (array_agg(x.stock_price ORDER BY x.measured_at DESC, x.record_id DESC))[1],
       min(x.stock_price), max(x.stock_price), sum(x.stock_price), count(x.stock_price),
       (array_agg(x.sales_trend ORDER BY x.measured_at, x.record_id))[1],
       (array_agg(x.sales_trend ORDER BY x.measured_at DESC, x.record_id DESC))[1],
       min(x.sales_trend), max(x.sales_trend), sum(x.sales_trend), count(x.sales_trend)';

COMMENT ON FUNCTION sales_kafka._metric_aggregates_sql() IS
'internal: the SELECT list that summarises metric records per bucket and series';

-- Brings every metric summary of a model up to date (see the banner), up
-- to the record upto (what _metrics_final returned, before the caller
-- locked kpi_state's row); returns how many new records it summarised (for
-- each width alike).  It holds kpi_state's row, as refresh_rollups does:
-- one refresh at a time.
-- A model of 1.2 not upgraded yet has no summaries: nothing to do.  The
-- body of refresh_rollups calls it as the owner of the model's schema;
-- like the functions of src/sql/model/tables.sql, it works only on a
-- schema the current user owns, so that no role's triggers run with
-- another role's rights through it.
CREATE FUNCTION sales_kafka._refresh_metric_summaries(model_schema name, upto bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := sales_kafka._model_state(model_schema);
    tz text;
    w record;
    changed_series text[];
    changed_at timestamptz[];
    cols text := 'bucket_width, period_start, series, samples, first_at, first_record, last_at, last_record,
           stock_price_open, stock_price_close, stock_price_low, stock_price_high, stock_price_sum, stock_price_samples,
           sales_trend_open, sales_trend_close, sales_trend_low, sales_trend_high, sales_trend_sum, sales_trend_samples';
    n bigint;
    total bigint := 0;
BEGIN
    PERFORM sales_kafka._use_model_schema(model_schema);
    IF to_regclass(s || '.metric_summary_view') IS NULL OR upto IS NULL THEN
        RETURN 0;
    END IF;
    -- as for the rollups: a snapshot taken at the start would hide records
    -- committed while _metrics_final waited
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'metric summaries must be refreshed at isolation level READ COMMITTED'
            USING ERRCODE = 'active_sql_transaction';
    END IF;
    EXECUTE format('SELECT time_zone FROM %s.kpi_state FOR UPDATE', s) INTO tz;

    EXECUTE format('WITH c AS (DELETE FROM %s.metric_change RETURNING series, measured_at)
                    SELECT array_agg(series), array_agg(measured_at) FROM c', s)
       INTO changed_series, changed_at;

    FOR w IN EXECUTE format('SELECT bucket_width, summarized_through FROM %s.metric_summary_view
                              ORDER BY bucket_width FOR UPDATE', s)
    LOOP
        IF upto > w.summarized_through THEN
            -- the new records, merged into their buckets
            EXECUTE format($m$
INSERT INTO %1$s.metric_summary AS m (%2$s)
SELECT $3, %3$s
  FROM (SELECT %4$s AS period_start, series, record_id, measured_at, stock_price, sales_trend
          FROM %1$s.metrics
         WHERE ingest_id > $1 AND ingest_id <= $2) x
 GROUP BY x.period_start, x.series
 -- in key order: a bucket's rows end up together in the table
 ORDER BY x.period_start, x.series
ON CONFLICT (bucket_width, period_start, series) DO UPDATE
   SET samples = m.samples + excluded.samples,
       first_at = CASE WHEN (excluded.first_at, excluded.first_record) < (m.first_at, m.first_record)
                       THEN excluded.first_at ELSE m.first_at END,
       first_record = CASE WHEN (excluded.first_at, excluded.first_record) < (m.first_at, m.first_record)
                           THEN excluded.first_record ELSE m.first_record END,
       stock_price_open = CASE WHEN (excluded.first_at, excluded.first_record) < (m.first_at, m.first_record)
                               THEN excluded.stock_price_open ELSE m.stock_price_open END,
       sales_trend_open = CASE WHEN (excluded.first_at, excluded.first_record) < (m.first_at, m.first_record)
                               THEN excluded.sales_trend_open ELSE m.sales_trend_open END,
       last_at = CASE WHEN (excluded.last_at, excluded.last_record) > (m.last_at, m.last_record)
                      THEN excluded.last_at ELSE m.last_at END,
       last_record = CASE WHEN (excluded.last_at, excluded.last_record) > (m.last_at, m.last_record)
                          THEN excluded.last_record ELSE m.last_record END,
       stock_price_close = CASE WHEN (excluded.last_at, excluded.last_record) > (m.last_at, m.last_record)
                                THEN excluded.stock_price_close ELSE m.stock_price_close END,
       sales_trend_close = CASE WHEN (excluded.last_at, excluded.last_record) > (m.last_at, m.last_record)
                                THEN excluded.sales_trend_close ELSE m.sales_trend_close END,
       stock_price_low = least(m.stock_price_low, excluded.stock_price_low),
       stock_price_high = greatest(m.stock_price_high, excluded.stock_price_high),
       stock_price_sum = coalesce(m.stock_price_sum + excluded.stock_price_sum, m.stock_price_sum, excluded.stock_price_sum),
       stock_price_samples = m.stock_price_samples + excluded.stock_price_samples,
       sales_trend_low = least(m.sales_trend_low, excluded.sales_trend_low),
       sales_trend_high = greatest(m.sales_trend_high, excluded.sales_trend_high),
       sales_trend_sum = coalesce(m.sales_trend_sum + excluded.sales_trend_sum, m.sales_trend_sum, excluded.sales_trend_sum),
       sales_trend_samples = m.sales_trend_samples + excluded.sales_trend_samples$m$,
                           s, cols, sales_kafka._metric_aggregates_sql(),
                           sales_kafka._metric_bucket_sql(w.bucket_width, tz, 'measured_at'))
               USING w.summarized_through, upto, w.bucket_width;
            EXECUTE format('SELECT count(*) FROM %s.metrics WHERE ingest_id > $1 AND ingest_id <= $2', s)
               INTO n
               USING w.summarized_through, upto;
            total := greatest(total, n);
        END IF;

        IF changed_series IS NOT NULL THEN
            -- the buckets of changed records, computed again from the
            -- records summarised so far (those up to upto), or gone
            EXECUTE format($r$
WITH c AS (
    SELECT DISTINCT u.series, %4$s AS period_start
      FROM unnest($4::text[], $5::timestamptz[]) AS u(series, measured_at)),
r AS (
    SELECT %3$s
      FROM (SELECT c.period_start, m.series, m.record_id, m.measured_at, m.stock_price, m.sales_trend
              FROM c
              JOIN %1$s.metrics m
                ON m.series = c.series
               AND m.measured_at >= c.period_start - interval '2 hours'
               AND m.measured_at < c.period_start + $3 + interval '2 hours'
               AND %5$s = c.period_start
               AND m.ingest_id <= $2) x
     GROUP BY x.period_start, x.series),
gone AS (
    DELETE FROM %1$s.metric_summary d
     USING c
     WHERE d.bucket_width = $3 AND d.series = c.series AND d.period_start = c.period_start
       AND NOT EXISTS (SELECT FROM r WHERE r.series = c.series AND r.period_start = c.period_start))
INSERT INTO %1$s.metric_summary AS m (%2$s)
SELECT $3, r.* FROM r
ON CONFLICT (bucket_width, period_start, series) DO UPDATE
   SET (samples, first_at, first_record, last_at, last_record,
        stock_price_open, stock_price_close, stock_price_low, stock_price_high, stock_price_sum, stock_price_samples,
        sales_trend_open, sales_trend_close, sales_trend_low, sales_trend_high, sales_trend_sum, sales_trend_samples)
     = (excluded.samples, excluded.first_at, excluded.first_record, excluded.last_at, excluded.last_record,
        excluded.stock_price_open, excluded.stock_price_close, excluded.stock_price_low, excluded.stock_price_high,
        excluded.stock_price_sum, excluded.stock_price_samples,
        excluded.sales_trend_open, excluded.sales_trend_close, excluded.sales_trend_low, excluded.sales_trend_high,
        excluded.sales_trend_sum, excluded.sales_trend_samples)$r$,
                           s, cols, sales_kafka._metric_aggregates_sql(),
                           sales_kafka._metric_bucket_sql(w.bucket_width, tz, 'u.measured_at'),
                           sales_kafka._metric_bucket_sql(w.bucket_width, tz, 'm.measured_at'))
               USING w.summarized_through, upto, w.bucket_width, changed_series, changed_at;
        END IF;

        IF upto > w.summarized_through THEN
            EXECUTE format('UPDATE %s.metric_summary_view SET summarized_through = $1 WHERE bucket_width = $2', s)
               USING upto, w.bucket_width;
        END IF;
    END LOOP;
    RETURN total;
END
$$;

COMMENT ON FUNCTION sales_kafka._refresh_metric_summaries(name, bigint) IS
'internal: merges the metric records written since the last call, up to the ingest_id given (from _metrics_final), into every summary of a sales model and computes again the buckets of changed records, exactly once; refresh_rollups calls it';

-- The last ingest_id of a model's metric records up to which every record
-- is final (_final_ingest_id, which waits for their writers), for a caller
-- that has not locked kpi_state's row yet (a writer may lock it too, see
-- _refresh_rollups).  NULL for a model of 1.2 not upgraded yet.
CREATE FUNCTION sales_kafka._metrics_final(model_schema name)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := sales_kafka._model_state(model_schema);
BEGIN
    PERFORM sales_kafka._use_model_schema(model_schema);
    IF to_regclass(s || '.metric_summary_view') IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN sales_kafka._final_ingest_id((s || '.metrics')::regclass,
                                        (s || '.metrics_ingest_id_seq')::regclass);
END
$$;

COMMENT ON FUNCTION sales_kafka._metrics_final(name) IS
'internal: the ingest_id up to which a sales model''s metric records are final, after waiting for their writers; for refresh_rollups and add_metric_summary';

-- Whether the model whose kpi_state is given has metric records or changes
-- that its summaries lack: the rollup worker's cheap look
-- (src/rollup_worker.c), run as the model's owner.  False for a model of
-- 1.2 not upgraded yet.
CREATE FUNCTION sales_kafka._metric_records_waiting(kpi_state regclass)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := (SELECT quote_ident(n.nspname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.oid = kpi_state);
    waiting boolean;
BEGIN
    IF s IS NULL OR to_regclass(s || '.metric_summary_view') IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT FROM %1$s.metric_summary_view
                                    WHERE summarized_through < pg_sequence_last_value(%2$L::regclass))
                        OR EXISTS (SELECT FROM %1$s.metric_change)',
                   s, s || '.metrics_ingest_id_seq')
       INTO waiting;
    RETURN coalesce(waiting, false);
END
$$;

COMMENT ON FUNCTION sales_kafka._metric_records_waiting(regclass) IS
'internal: whether a sales model has metric records or changes that its metric summaries lack, for the rollup worker';

CREATE FUNCTION sales_kafka._add_metric_summary(model_schema name, bucket_width interval)
RETURNS name
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := sales_kafka._model_state(model_schema);
    width interval := sales_kafka._metric_width(bucket_width);
    v name := sales_kafka._metric_view_name(width);
    tz text;
    taken boolean;
    c record;
    upto bigint;
BEGIN
    IF to_regclass(s || '.metric_summary_view') IS NULL THEN
        RAISE EXCEPTION 'sales model "%" has no metric summaries', model_schema
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Upgrade the model with sales_kafka.upgrade_sales_model().';
    END IF;
    upto := sales_kafka._metrics_final(model_schema);
    EXECUTE format('SELECT time_zone FROM %s.kpi_state FOR UPDATE', s) INTO tz;
    EXECUTE format('SELECT EXISTS (SELECT FROM %s.metric_summary_view WHERE bucket_width = $1)', s)
       INTO taken USING width;
    IF taken THEN
        RAISE EXCEPTION 'sales model "%" already has a metric summary of %', model_schema, width
            USING ERRCODE = 'duplicate_object';
    END IF;
    IF to_regclass(s || '.' || quote_ident(v)) IS NOT NULL THEN
        RAISE EXCEPTION 'relation "%" already exists', v
            USING ERRCODE = 'duplicate_table';
    END IF;

    EXECUTE format('INSERT INTO %s.metric_summary_view (bucket_width, view_name) VALUES ($1, $2)', s)
      USING width, v;
    PERFORM sales_kafka._create_metric_summary_view(model_schema, width, v, tz);
    EXECUTE format('COMMENT ON VIEW %s.%I IS %L', s, v,
                   format('KPI: metric streams summarised per series in %s buckets; samples adds up over rows, open, close, low, high and averages do not', width));
    FOR c IN SELECT a.attname, m.comment
               FROM pg_attribute a
               JOIN sales_kafka._model_comments() m ON m.object IS NULL AND m.column_name = a.attname
              WHERE a.attrelid = (s || '.' || quote_ident(v))::regclass AND a.attnum > 0
    LOOP
        EXECUTE format('COMMENT ON COLUMN %s.%I.%I IS %L', s, v, c.attname, c.comment);
    END LOOP;
    EXECUTE format('GRANT SELECT ON %s.%I TO sales_kafka_reader', s, v);
    -- the records so far
    PERFORM sales_kafka._refresh_metric_summaries(model_schema, upto);
    RETURN v;
END
$$;

CREATE FUNCTION sales_kafka._drop_metric_summary(model_schema name, bucket_width interval)
RETURNS name
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := sales_kafka._model_state(model_schema);
    width interval := sales_kafka._metric_width(bucket_width);
    v name;
BEGIN
    IF width IN (interval '10 minutes', interval '20 minutes') THEN
        RAISE EXCEPTION 'cannot drop the metric summary of % of sales model "%"', width, model_schema
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = 'The summaries of 10 and 20 minutes are part of every sales model.';
    END IF;
    EXECUTE format('SELECT FROM %s.kpi_state FOR UPDATE', s);
    IF to_regclass(s || '.metric_summary_view') IS NOT NULL THEN
        EXECUTE format('DELETE FROM %s.metric_summary_view WHERE bucket_width = $1 RETURNING view_name', s)
           INTO v USING width;
    END IF;
    IF v IS NULL THEN
        RAISE EXCEPTION 'sales model "%" has no metric summary of %', model_schema, width
            USING ERRCODE = 'undefined_object';
    END IF;
    EXECUTE format('DROP VIEW %s.%I', s, v);
    EXECUTE format('DELETE FROM %s.metric_summary WHERE bucket_width = $1', s) USING width;
    RETURN v;
END
$$;

REVOKE EXECUTE ON FUNCTION
    sales_kafka._add_metric_summary(name, interval),
    sales_kafka._drop_metric_summary(name, interval)
FROM PUBLIC;

COMMENT ON FUNCTION sales_kafka._add_metric_summary(name, interval) IS
'internal: the body of add_metric_summary, run as the owner of the model''s schema';
COMMENT ON FUNCTION sales_kafka._drop_metric_summary(name, interval) IS
'internal: the body of drop_metric_summary, run as the owner of the model''s schema';

CREATE FUNCTION sales_kafka.add_metric_summary(model_schema name, bucket_width interval)
RETURNS name
AS 'MODULE_PATHNAME', 'sales_kafka_add_metric_summary'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION sales_kafka.add_metric_summary(name, interval) IS
'adds a KPI view of a sales model''s metric streams summarised per series in buckets of the width given (seconds dividing an hour, or hours dividing a day), kept by refresh_rollups and filled now, as the owner of the model''s schema; returns the view''s name';

CREATE FUNCTION sales_kafka.drop_metric_summary(model_schema name, bucket_width interval)
RETURNS name
AS 'MODULE_PATHNAME', 'sales_kafka_drop_metric_summary'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION sales_kafka.drop_metric_summary(name, interval) IS
'removes a metric summary that add_metric_summary added to a sales model, its view and its rows, as the owner of the model''s schema; returns the view''s name';
