-------------------------------------------------------------------------------
-- src/sql/pipeline.sql: ingest pipelines, as 1.3 has them (the install
-- script only).  The catalog: configuration, offsets and dead letters are
-- dumped by pg_dump (in one snapshot with the tables they fill, so a
-- restored database resumes where the dump was taken); the functions below
-- check rights and write these tables.  Pipeline names are unique per
-- owner, as pg_cron's job names are per user: inside, a pipeline is known
-- by an id, which its offsets, its dead letters, its workers' shared memory
-- and its Kafka group id use.  The columns are in the order in which the
-- update scripts made them, so that both ways of installing 1.3 make the
-- same tables.
-------------------------------------------------------------------------------

CREATE TABLE sales_kafka.pipeline (
    name text NOT NULL,
    source regclass NOT NULL,
    target regclass NOT NULL,
    mode text NOT NULL DEFAULT 'append' CHECK (mode IN ('append', 'upsert')),
    batch_size integer NOT NULL DEFAULT 10000
        CHECK (batch_size BETWEEN 1 AND 1000000),
    flush_interval interval NOT NULL DEFAULT '10 ms'
        CHECK (flush_interval BETWEEN '0' AND '1 hour'
               AND extract(year FROM flush_interval) = 0
               AND extract(month FROM flush_interval) = 0
               AND extract(day FROM flush_interval) = 0),
    start_at text NOT NULL DEFAULT 'earliest',
    parallelism integer NOT NULL DEFAULT 1 CHECK (parallelism >= 1),
    owner regrole NOT NULL,
    enabled boolean NOT NULL DEFAULT false,
    failure text,
    failed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    id bigserial PRIMARY KEY,
    partitions text CHECK (partitions ~ '^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$'),
    UNIQUE (owner, name)
);

COMMENT ON TABLE sales_kafka.pipeline IS
'ingest pipelines: each reads a topic through a foreign table into a table';
COMMENT ON COLUMN sales_kafka.pipeline.name IS 'name of the pipeline, unique per owner';
COMMENT ON COLUMN sales_kafka.pipeline.source IS 'sales_kafka foreign table whose mapping decodes the messages';
COMMENT ON COLUMN sales_kafka.pipeline.target IS 'table the rows are written to';
COMMENT ON COLUMN sales_kafka.pipeline.mode IS 'append: insert every row; upsert: insert or update by primary key, tombstones delete';
COMMENT ON COLUMN sales_kafka.pipeline.batch_size IS 'most messages written in one transaction';
COMMENT ON COLUMN sales_kafka.pipeline.flush_interval IS 'longest time a message waits for its batch to fill: 0 to 1 hour, without days, months or years';
COMMENT ON COLUMN sales_kafka.pipeline.start_at IS 'where partitions without a stored offset start: earliest, latest, or epoch milliseconds';
COMMENT ON COLUMN sales_kafka.pipeline.parallelism IS 'number of workers sharing the partitions';
COMMENT ON COLUMN sales_kafka.pipeline.owner IS 'role whose rights the workers use';
COMMENT ON COLUMN sales_kafka.pipeline.enabled IS 'true when the pipeline should run, also after a restart';
COMMENT ON COLUMN sales_kafka.pipeline.failure IS 'why the pipeline stopped on its own, if it did';
COMMENT ON COLUMN sales_kafka.pipeline.failed_at IS 'when the pipeline stopped on its own';
COMMENT ON COLUMN sales_kafka.pipeline.created_at IS 'when the pipeline was created';
COMMENT ON COLUMN sales_kafka.pipeline.id IS 'identity of the pipeline, which offsets, dead letters, workers and the Kafka group id refer to';
COMMENT ON COLUMN sales_kafka.pipeline.partitions IS 'the partitions of the topic the pipeline reads, such as 0-31 or 0,2,5-7; NULL: all of them';

CREATE TABLE sales_kafka.pipeline_offset (
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    high_watermark bigint,
    updated_at timestamptz NOT NULL DEFAULT now(),
    pipeline_id bigint NOT NULL,
    PRIMARY KEY (pipeline_id, topic, partition)
);

COMMENT ON TABLE sales_kafka.pipeline_offset IS
'for each pipeline and partition, the offset of the next message to write; committed with the rows';
COMMENT ON COLUMN sales_kafka.pipeline_offset.topic IS 'Kafka topic';
COMMENT ON COLUMN sales_kafka.pipeline_offset.partition IS 'Kafka partition';
COMMENT ON COLUMN sales_kafka.pipeline_offset.next_offset IS 'offset of the first message not written yet';
COMMENT ON COLUMN sales_kafka.pipeline_offset.high_watermark IS 'the partition''s high watermark when the last batch was written';
COMMENT ON COLUMN sales_kafka.pipeline_offset.updated_at IS 'when the last batch was written';
COMMENT ON COLUMN sales_kafka.pipeline_offset.pipeline_id IS 'id of the pipeline (sales_kafka.pipeline.id)';

-- Dead letters: each owner reads (and may delete) those of its own
-- pipelines, and only those, as members of a role share its rights.  They
-- outlive their pipeline, so they keep its name and owner; the worker
-- fills both.
CREATE TABLE sales_kafka.dead_letter (
    id bigserial PRIMARY KEY,
    pipeline text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    "offset" bigint NOT NULL,
    key bytea,
    headers jsonb,
    payload bytea,
    error text NOT NULL,
    sqlstate text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now(),
    pipeline_id bigint,
    owner regrole
);

CREATE INDEX ON sales_kafka.dead_letter (pipeline, failed_at);
CREATE INDEX ON sales_kafka.dead_letter (pipeline_id, failed_at);

COMMENT ON TABLE sales_kafka.dead_letter IS
'messages a pipeline could not write, with the reason; written in the transaction of their batch; each role sees those of the pipelines of roles whose rights it has';
COMMENT ON COLUMN sales_kafka.dead_letter.id IS 'order of arrival';
COMMENT ON COLUMN sales_kafka.dead_letter.pipeline IS 'name of the pipeline (kept when the pipeline is dropped)';
COMMENT ON COLUMN sales_kafka.dead_letter.topic IS 'Kafka topic';
COMMENT ON COLUMN sales_kafka.dead_letter.partition IS 'Kafka partition';
COMMENT ON COLUMN sales_kafka.dead_letter."offset" IS 'offset of the message';
COMMENT ON COLUMN sales_kafka.dead_letter.key IS 'the message''s key';
COMMENT ON COLUMN sales_kafka.dead_letter.headers IS 'the message''s headers, as a JSON object of strings';
COMMENT ON COLUMN sales_kafka.dead_letter.payload IS 'the message''s value; NULL for a tombstone';
COMMENT ON COLUMN sales_kafka.dead_letter.error IS 'why it could not be written';
COMMENT ON COLUMN sales_kafka.dead_letter.sqlstate IS 'SQLSTATE of the error';
COMMENT ON COLUMN sales_kafka.dead_letter.failed_at IS 'when it was dead-lettered';
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

SELECT pg_catalog.pg_extension_config_dump('sales_kafka.pipeline', '');
SELECT pg_catalog.pg_extension_config_dump('sales_kafka.pipeline_offset', '');
SELECT pg_catalog.pg_extension_config_dump('sales_kafka.dead_letter', '');
SELECT pg_catalog.pg_extension_config_dump('sales_kafka.dead_letter_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('sales_kafka.pipeline_id_seq', '');

-- Managing pipelines: the functions that take a name look for it among the
-- pipelines of roles whose rights the caller has, its own first.

CREATE FUNCTION sales_kafka.create_pipeline(
    name text,
    source regclass,
    target regclass,
    mode text DEFAULT 'append',
    batch_size integer DEFAULT 10000,
    flush_interval interval DEFAULT '10 ms',
    start_at text DEFAULT 'earliest',
    parallelism integer DEFAULT 1,
    partitions text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'sales_kafka_create_pipeline'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION sales_kafka.create_pipeline(text, regclass, regclass, text, integer, interval, text, integer, text) IS
'defines a pipeline owned by the current user (names are unique per owner) that reads a topic, or the partitions of it listed in partitions (''0-31'', ''0,2,5-7''), through a sales_kafka foreign table into a table, checking the column mapping and privileges now; start it with start_pipeline';

CREATE FUNCTION sales_kafka.start_pipeline(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'sales_kafka_start_pipeline'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION sales_kafka.start_pipeline(text) IS
'starts the workers of a pipeline when the transaction commits; they also start after every server restart until stop_pipeline';

CREATE FUNCTION sales_kafka.stop_pipeline(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'sales_kafka_stop_pipeline'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION sales_kafka.stop_pipeline(text) IS
'stops the workers of a pipeline after their current batch, and waits for them';

CREATE FUNCTION sales_kafka.reset_pipeline(name text, "to" text DEFAULT 'earliest')
RETURNS void
AS 'MODULE_PATHNAME', 'sales_kafka_reset_pipeline'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION sales_kafka.reset_pipeline(text, text) IS
'makes a pipeline read its topic again from ''earliest'', ''latest'', a time, or the partition offsets of a JSON object such as ''{"0": 42}'' (restarting its workers if it runs)';

CREATE FUNCTION sales_kafka.reset_pipeline(name text, "to" timestamptz)
RETURNS void
AS 'MODULE_PATHNAME', 'sales_kafka_reset_pipeline_time'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION sales_kafka.reset_pipeline(text, timestamptz) IS
'makes a pipeline read its topic again from the first messages at or after a time (restarting its workers if it runs)';

CREATE FUNCTION sales_kafka.reset_pipeline(name text, offsets jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'sales_kafka_reset_pipeline_offsets'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION sales_kafka.reset_pipeline(text, jsonb) IS
'sets the next offset of the partitions given as {"partition": offset, ...} (restarting the pipeline''s workers if it runs)';

CREATE FUNCTION sales_kafka.drop_pipeline(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'sales_kafka_drop_pipeline'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION sales_kafka.drop_pipeline(text) IS
'stops a pipeline and removes it with its offsets; its dead letters stay';

CREATE FUNCTION sales_kafka._pipeline_rows()
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sales_kafka_pipeline_rows'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION sales_kafka._pipeline_rows() IS
'internal: the batch a pipeline worker is writing';

-- Watching pipelines.  What the workers hold in shared memory comes by
-- pipeline id.  An error text can show a message's values: pipeline_status shows it, and
-- counts the dead letters, only to roles with the rights of the pipeline's
-- owner, as pg_stat_activity shows queries (_pipeline_slots() itself
-- hides them, so that no path shows them).  Workers that find no free slot
-- (or whose owner runs as many as sales_kafka.max_workers_per_owner allows)
-- wait in a list that the launcher serves: pipeline_status shows them
-- "waiting", with the reason.  Offsets name their pipeline by id, which
-- kpi_as_of_partitions joins on: names are unique per owner only.

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

CREATE VIEW sales_kafka.pipeline_partitions AS
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

COMMENT ON VIEW sales_kafka.pipeline_partitions IS
'per pipeline and partition: the committed offset, the high watermark seen with the last batch, and the lag between them';
COMMENT ON COLUMN sales_kafka.pipeline_partitions.pipeline IS 'name of the pipeline';
COMMENT ON COLUMN sales_kafka.pipeline_partitions.topic IS 'Kafka topic';
COMMENT ON COLUMN sales_kafka.pipeline_partitions.partition IS 'Kafka partition';
COMMENT ON COLUMN sales_kafka.pipeline_partitions.committed_offset IS 'offset of the next message to write (all before it are committed)';
COMMENT ON COLUMN sales_kafka.pipeline_partitions.high_watermark IS 'offset the next produced message will get, as seen with the last batch';
COMMENT ON COLUMN sales_kafka.pipeline_partitions.lag IS 'messages in the partition not written yet, as of updated_at';
COMMENT ON COLUMN sales_kafka.pipeline_partitions.updated_at IS 'when the last batch of this partition was written';
COMMENT ON COLUMN sales_kafka.pipeline_partitions.owner IS 'owner of the pipeline';
COMMENT ON COLUMN sales_kafka.pipeline_partitions.pipeline_id IS 'id of the pipeline (pipeline names are unique per owner only)';

CREATE VIEW sales_kafka.pipeline_status AS
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
       p.owner,
       coalesce(p.partitions, 'all') AS owned_partitions
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

COMMENT ON VIEW sales_kafka.pipeline_status IS
'one row per pipeline: what it does, how far behind it is, how fast it goes, what went wrong last';
COMMENT ON COLUMN sales_kafka.pipeline_status.pipeline IS 'name of the pipeline';
COMMENT ON COLUMN sales_kafka.pipeline_status.source IS 'foreign table read';
COMMENT ON COLUMN sales_kafka.pipeline_status.target IS 'table written';
COMMENT ON COLUMN sales_kafka.pipeline_status.mode IS 'append or upsert';
COMMENT ON COLUMN sales_kafka.pipeline_status.state IS 'running, starting, waiting (for a free worker slot), backoff (restarting after a failure), stopping, stopped, failed, or standby (an enabled pipeline on a hot standby, where no worker runs: it starts on promotion)';
COMMENT ON COLUMN sales_kafka.pipeline_status.worker_pids IS 'process ids of the running workers (see pg_stat_activity)';
COMMENT ON COLUMN sales_kafka.pipeline_status.partitions IS 'partitions with a stored offset';
COMMENT ON COLUMN sales_kafka.pipeline_status.lag IS 'messages not written yet, summed over partitions (see pipeline_partitions)';
COMMENT ON COLUMN sales_kafka.pipeline_status.messages_per_second IS 'messages consumed per second over the last minute';
COMMENT ON COLUMN sales_kafka.pipeline_status.rows_per_second IS 'rows written per second over the last minute';
COMMENT ON COLUMN sales_kafka.pipeline_status.rows_written IS 'rows written since the workers started';
COMMENT ON COLUMN sales_kafka.pipeline_status.dead_letters IS 'messages in sales_kafka.dead_letter for this pipeline; NULL unless you have the rights of its owner';
COMMENT ON COLUMN sales_kafka.pipeline_status.last_error IS 'why the pipeline failed, or the last error its workers met; <insufficient privilege> unless you have the rights of its owner';
COMMENT ON COLUMN sales_kafka.pipeline_status.last_error_at IS 'when last_error happened';
COMMENT ON COLUMN sales_kafka.pipeline_status.last_commit_at IS 'when the last batch was committed';
COMMENT ON COLUMN sales_kafka.pipeline_status.owner IS 'owner of the pipeline, whose rights its workers use';
COMMENT ON COLUMN sales_kafka.pipeline_status.owned_partitions IS 'the partitions of the topic the pipeline reads: all, or a list such as 0-31 (other servers may read the others)';

-- Anyone may run pipelines, for tables they may read and write: every
-- function checks the caller's rights on the objects it touches.  Pipelines
-- are listed for everybody, as pg_stat_activity is; dead letters, whose
-- payloads may hold anything, to the roles with the rights of their
-- pipeline's owner (the policies above).
GRANT USAGE ON SCHEMA sales_kafka TO PUBLIC;
GRANT SELECT ON sales_kafka.pipeline_status, sales_kafka.pipeline_partitions TO PUBLIC;
GRANT SELECT, DELETE ON sales_kafka.dead_letter TO PUBLIC;
