-------------------------------------------------------------------------------
-- src/sql/replay.sql: replaying rows into Kafka (a CSV file loaded with
-- \copy, a table, a query): sales_kafka.replay() produces them through a
-- foreign table in small transactions, at a given rate or as fast as
-- possible, and keeps its progress, per role, so that a replay that stops
-- goes on where it stopped.  New in 1.3: in both scripts.
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
