-------------------------------------------------------------------------------
-- src/sql/update--1.2--1.3.sql: what the update from 1.2 changes besides
-- re-creating the functions of the KPI layer.  sales_kafka--1.2--1.3.sql
-- is built of src/sql/extension_schema.sql, this file, src/sql/kpi.sql and
-- src/sql/model/ (see the Makefile).
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- Pipeline names are unique per owner, as pg_cron's job names are per user:
-- no role can take a name another role wants.  Inside, a pipeline is known
-- by an id, which its offsets, its dead letters, its workers' shared memory
-- and its Kafka group id use.  The functions that take a name look for it
-- among the pipelines of roles whose rights the caller has, its own first.
-------------------------------------------------------------------------------

ALTER TABLE sales_kafka.pipeline ADD COLUMN id bigserial;
ALTER TABLE sales_kafka.pipeline DROP CONSTRAINT pipeline_pkey;
ALTER TABLE sales_kafka.pipeline ADD PRIMARY KEY (id);
ALTER TABLE sales_kafka.pipeline ADD UNIQUE (owner, name);

COMMENT ON COLUMN sales_kafka.pipeline.id IS 'identity of the pipeline, which offsets, dead letters, workers and the Kafka group id refer to';
COMMENT ON COLUMN sales_kafka.pipeline.name IS 'name of the pipeline, unique per owner';

SELECT pg_catalog.pg_extension_config_dump('sales_kafka.pipeline_id_seq', '');

-- offsets: by pipeline id (offsets of no pipeline cannot be used: dropped)
ALTER TABLE sales_kafka.pipeline_offset ADD COLUMN pipeline_id bigint;
UPDATE sales_kafka.pipeline_offset o SET pipeline_id = p.id
  FROM sales_kafka.pipeline p
 WHERE p.name = o.pipeline;
DELETE FROM sales_kafka.pipeline_offset WHERE pipeline_id IS NULL;
ALTER TABLE sales_kafka.pipeline_offset ALTER COLUMN pipeline_id SET NOT NULL;
ALTER TABLE sales_kafka.pipeline_offset DROP CONSTRAINT pipeline_offset_pkey;
ALTER TABLE sales_kafka.pipeline_offset ADD PRIMARY KEY (pipeline_id, topic, partition);

COMMENT ON COLUMN sales_kafka.pipeline_offset.pipeline_id IS 'id of the pipeline (sales_kafka.pipeline.id)';

-------------------------------------------------------------------------------
-- Dead letters: each owner reads (and may delete) those of its own
-- pipelines, and only those, as members of a role share its rights.  They
-- outlive their pipeline, so they keep its name and owner; the worker
-- fills both.  Dead letters of pipelines dropped before 1.3 have no owner:
-- only superusers see them.
-------------------------------------------------------------------------------

ALTER TABLE sales_kafka.dead_letter ADD COLUMN pipeline_id bigint;
ALTER TABLE sales_kafka.dead_letter ADD COLUMN owner regrole;
UPDATE sales_kafka.dead_letter d SET pipeline_id = p.id, owner = p.owner
  FROM sales_kafka.pipeline p
 WHERE p.name = d.pipeline;
CREATE INDEX ON sales_kafka.dead_letter (pipeline_id, failed_at);

COMMENT ON TABLE sales_kafka.dead_letter IS
'messages a pipeline could not write, with the reason; written in the transaction of their batch; each role sees those of the pipelines of roles whose rights it has';
COMMENT ON COLUMN sales_kafka.dead_letter.pipeline IS 'name of the pipeline (kept when the pipeline is dropped)';
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
GRANT SELECT, DELETE ON sales_kafka.dead_letter TO PUBLIC;

-------------------------------------------------------------------------------
-- Several servers share a topic: a pipeline may read a subset of its
-- topic's partitions (create_pipeline's partitions, '0-31', '0,2,5-7'),
-- stored in the canonical form create_pipeline() gives it; NULL: all.
-- pipeline_status shows the subset.
-------------------------------------------------------------------------------

ALTER TABLE sales_kafka.pipeline ADD COLUMN partitions text
  CHECK (partitions ~ '^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$');
COMMENT ON COLUMN sales_kafka.pipeline.partitions IS 'the partitions of the topic the pipeline reads, such as 0-31 or 0,2,5-7; NULL: all of them';

DROP FUNCTION sales_kafka.create_pipeline(text, regclass, regclass, text, integer, interval, text, integer);
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

-------------------------------------------------------------------------------
-- Watching pipelines: the views keep their columns and gain the owner.
-- What the workers hold in shared memory now comes by pipeline id.  An
-- error text can show a message's values: pipeline_status shows it, and
-- counts the dead letters, only to roles with the rights of the pipeline's
-- owner, as pg_stat_activity shows queries (_pipeline_slots() itself
-- hides them, so that no path shows them).  Workers that find no free slot
-- (or whose owner runs as many as sales_kafka.max_workers_per_owner allows)
-- wait in a list that the launcher serves: pipeline_status shows them
-- "waiting", with the reason.  Offsets name their pipeline by id, which
-- kpi_as_of_partitions joins on: names are unique per owner only.
-------------------------------------------------------------------------------

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

CREATE OR REPLACE VIEW sales_kafka.pipeline_partitions AS
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

COMMENT ON COLUMN sales_kafka.pipeline_partitions.owner IS 'owner of the pipeline';
COMMENT ON COLUMN sales_kafka.pipeline_partitions.pipeline_id IS 'id of the pipeline (pipeline names are unique per owner only)';

CREATE OR REPLACE VIEW sales_kafka.pipeline_status AS
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

COMMENT ON COLUMN sales_kafka.pipeline_status.dead_letters IS 'messages in sales_kafka.dead_letter for this pipeline; NULL unless you have the rights of its owner';
COMMENT ON COLUMN sales_kafka.pipeline_status.last_error IS 'why the pipeline failed, or the last error its workers met; <insufficient privilege> unless you have the rights of its owner';
COMMENT ON COLUMN sales_kafka.pipeline_status.owner IS 'owner of the pipeline, whose rights its workers use';
COMMENT ON COLUMN sales_kafka.pipeline_status.owned_partitions IS 'the partitions of the topic the pipeline reads: all, or a list such as 0-31 (other servers may read the others)';
COMMENT ON COLUMN sales_kafka.pipeline_status.state IS 'running, starting, waiting (for a free worker slot), backoff (restarting after a failure), stopping, stopped, failed, or standby (an enabled pipeline on a hot standby, where no worker runs: it starts on promotion)';

DROP FUNCTION sales_kafka._pipeline_workers();

ALTER TABLE sales_kafka.pipeline_offset DROP COLUMN pipeline;

-------------------------------------------------------------------------------
-- Managing pipelines: the same functions, with names looked up per owner
-------------------------------------------------------------------------------

COMMENT ON FUNCTION sales_kafka.reset_pipeline(text, text) IS
'makes a pipeline read its topic again from ''earliest'', ''latest'', a time, or the partition offsets of a JSON object such as ''{"0": 42}'' (restarting its workers if it runs)';

-------------------------------------------------------------------------------
-- Pipelines of other roles (security review, pipeline side).
--
-- A flush interval has one length: the workers wait for it in milliseconds
-- that C computes as create_pipeline() checks them, from an interval
-- without months or days (comparing intervals counts a month as 30 days,
-- extract(epoch) a year as 365.25, so '60 mons -1800 days' was "0" to the
-- check but 26 days to the workers, and overflowed their milliseconds in
-- every lookup of its name).  Intervals stored with months or days become
-- the time that the check counted.
-------------------------------------------------------------------------------

UPDATE sales_kafka.pipeline p
   SET flush_interval = make_interval(secs => (
           extract(epoch FROM p.flush_interval - make_interval(months => m.months, days => m.days))
           + (m.months::numeric * 30 + m.days) * 86400)::double precision)
  FROM (SELECT id,
               (extract(year FROM flush_interval) * 12
                + extract(month FROM flush_interval))::integer AS months,
               extract(day FROM flush_interval)::integer AS days
          FROM sales_kafka.pipeline) m
 WHERE m.id = p.id AND (m.months <> 0 OR m.days <> 0);

ALTER TABLE sales_kafka.pipeline DROP CONSTRAINT pipeline_flush_interval_check;
ALTER TABLE sales_kafka.pipeline ADD CONSTRAINT pipeline_flush_interval_check
  CHECK (flush_interval BETWEEN '0' AND '1 hour'
         AND extract(year FROM flush_interval) = 0
         AND extract(month FROM flush_interval) = 0
         AND extract(day FROM flush_interval) = 0);

COMMENT ON COLUMN sales_kafka.pipeline.flush_interval IS 'longest time a message waits for its batch to fill: 0 to 1 hour, without days, months or years';

-------------------------------------------------------------------------------
-- The KPI layer: its functions run as the owner of the model's schema, the
-- model's DDL is static SQL in functions, models record their version and
-- upgrade_sales_model brings those of 1.2 to 1.3.  The functions of 1.2
-- are dropped here; src/sql/kpi.sql and src/sql/model/, next in this
-- script, make those of 1.3 (privileges granted or revoked on the 1.2
-- functions are not carried over).  Models are not changed: see
-- upgrade_sales_model.
-------------------------------------------------------------------------------

DROP FUNCTION sales_kafka._model_ddl();
DROP FUNCTION sales_kafka._model_comments();
DROP FUNCTION sales_kafka._add_sums();
DROP FUNCTION sales_kafka._wait_for_writers(regclass);
DROP FUNCTION sales_kafka._model_state(name);
DROP FUNCTION sales_kafka.create_sales_model(name, boolean, text);
DROP FUNCTION sales_kafka.create_sales_partitions(name, date, date);
DROP FUNCTION sales_kafka.refresh_rollups(name);
DROP FUNCTION sales_kafka.rebuild_rollups(name);
DROP FUNCTION sales_kafka.refresh_kpis(name);
DROP FUNCTION sales_kafka.create_sales_pipelines(name, text, name, text, boolean);
DROP FUNCTION sales_kafka.schedule_kpi_refresh(name, interval, name);
DROP FUNCTION sales_kafka.unschedule_kpi_refresh(name, name);
