-- Pipelines and what goes wrong: mappings whose metadata columns could not
-- take a message (refused when the pipeline is created or the mapping
-- changes), the lag of a pipeline that never commits, the precision of a
-- Kafka timestamp column, the time of each batch; a target altered under a
-- running pipeline whose statement is kept; an error a row causes
-- (found by writing without the rows) goes to the dead letters whatever its
-- SQLSTATE, one without rows stops the pipeline; reset_pipeline() with an
-- untyped 'to' of every form, and offsets checked against the topic.  Pipelines commit in their own transactions, so
-- this file commits and cleans up after itself, and waits for the workers
-- by polling with a bounded timeout.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
DROP SCHEMA IF EXISTS pipe_errors CASCADE;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
DROP ROLE IF EXISTS regress_sales_kafka_writer;
RESET client_min_messages;
CREATE SCHEMA pipe_errors;
SET search_path = pipe_errors, public;
CREATE EXTENSION sales_kafka;
CREATE SERVER err_kafka FOREIGN DATA WRAPPER sales_kafka;

\ir helpers.psql

SELECT plan(50);

-- a Kafka timestamp column rounds to its precision, as timestamptz input does
SELECT format($$CREATE FOREIGN TABLE time_out (n int, ts timestamptz OPTIONS (kafka 'timestamp'))
                SERVER err_kafka OPTIONS (topic %L)$$, topic('pipe_meta_time')) \gexec
SELECT format($$CREATE FOREIGN TABLE time_in (n int, ts0 timestamptz(0) OPTIONS (kafka 'timestamp'),
                  ts1 timestamptz(1) OPTIONS (kafka 'timestamp'), local0 timestamp(0) OPTIONS (kafka 'timestamp'))
                SERVER err_kafka OPTIONS (topic %L)$$, topic('pipe_meta_time')) \gexec
INSERT INTO time_out VALUES (1, '2024-05-01 10:00:00.6+00'), (2, '2024-05-01 10:00:00.449+00');
SELECT results_eq($$SELECT n, ts0, ts1, local0 FROM time_in ORDER BY n$$,
                  $$VALUES (1, '2024-05-01 10:00:01+00'::timestamptz, '2024-05-01 10:00:00.6+00'::timestamptz,
                            '2024-05-01 10:00:01'::timestamp),
                           (2, '2024-05-01 10:00:00+00'::timestamptz, '2024-05-01 10:00:00.4+00'::timestamptz,
                            '2024-05-01 10:00:00'::timestamp)$$,
                  'a Kafka timestamp column of timestamptz(0), timestamptz(1) or timestamp(0) rounds as a cast does');

-- a topic column that cannot hold every topic name is refused up front
SELECT format($$CREATE FOREIGN TABLE short_topic (n int, t varchar(3) OPTIONS (kafka 'topic'))
                SERVER err_kafka OPTIONS (topic %L)$$, topic('pipe_altered')) \gexec
SELECT format($$CREATE FOREIGN TABLE long_topic (n int, t text OPTIONS (kafka 'topic'))
                SERVER err_kafka OPTIONS (topic %L)$$, topic('pipe_altered')) \gexec
SELECT format($$CREATE FOREIGN TABLE altered_out (n int) SERVER err_kafka OPTIONS (topic %L)$$,
              topic('pipe_altered')) \gexec
CREATE TABLE short_target (n int, t varchar(3));
CREATE TABLE long_target (n int, t text);
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('pe_short', 'short_topic', 'short_target')$$,
                 'HV004', NULL, 'create_pipeline refuses a varchar(3) topic column in the foreign table');
SELECT throws_ok($$SELECT * FROM short_topic$$,
                 'HV004', NULL, 'and so does a scan of the foreign table');
SELECT format($$CREATE FOREIGN TABLE varchar_topic (n int, t varchar OPTIONS (kafka 'topic'))
                SERVER err_kafka OPTIONS (topic %L)$$, topic('pipe_altered')) \gexec
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('pe_short', 'varchar_topic', 'short_target')$$,
                 '42804', NULL, 'create_pipeline refuses a varchar(3) target column for a varchar topic column');

-- a mapping changed under a running pipeline: it stops as failed, it does
-- not restart forever
SELECT sales_kafka.create_pipeline('pe_altered', 'long_topic', 'long_target', flush_interval => '0');
SELECT sales_kafka.start_pipeline('pe_altered');
INSERT INTO altered_out VALUES (1);
SELECT ok(wait_for($$SELECT count(*) = 1 FROM long_target$$), 'the pipeline writes the topic name');
ALTER FOREIGN TABLE long_topic ALTER COLUMN t TYPE varchar(3);
TRUNCATE long_target;
ALTER TABLE long_target ALTER COLUMN t TYPE varchar(3);
INSERT INTO altered_out VALUES (2);
SELECT ok(wait_for($$SELECT state = 'failed' AND last_error LIKE '%a Kafka topic needs type text%'
                     FROM sales_kafka.pipeline_status WHERE pipeline = 'pe_altered'$$, '30 s'),
          'a topic column altered to varchar(3) stops the running pipeline as failed, with the reason');
SELECT sales_kafka.drop_pipeline('pe_altered');

-- a target altered under a running pipeline that writes through SQL (the
-- statement is kept from batch to batch): each batch writes into the
-- table as it is then
SELECT format($$CREATE FOREIGN TABLE kept_src (id int, n int, note text)
                SERVER err_kafka OPTIONS (topic %L)$$, topic('pipe_kept')) \gexec
CREATE TABLE kept_target (id int PRIMARY KEY, n int, origin text DEFAULT 'first');
SELECT sales_kafka.create_pipeline('pe_kept', 'kept_src', 'kept_target', mode => 'upsert',
                                   flush_interval => '0');
SELECT sales_kafka.start_pipeline('pe_kept');
INSERT INTO kept_src VALUES (1, 1, 'a');
SELECT ok(wait_for($$SELECT count(*) = 1 FROM kept_target$$), 'the upsert pipeline writes its first row');
ALTER TABLE kept_target ALTER COLUMN origin SET DEFAULT 'second';
INSERT INTO kept_src VALUES (2, 2, 'b');
SELECT ok(wait_for($$SELECT origin = 'second' FROM kept_target WHERE id = 2$$),
          'a default changed under the running pipeline fills the next batch''s rows');
ALTER TABLE kept_target ADD COLUMN note text;
INSERT INTO kept_src VALUES (3, 3, 'c');
SELECT ok(wait_for($$SELECT note = 'c' FROM kept_target WHERE id = 3$$),
          'a column added to the target, which the foreign table has, is filled from the next batch on');
ALTER TABLE kept_target DROP CONSTRAINT kept_target_pkey, ADD PRIMARY KEY (id);
INSERT INTO kept_src VALUES (1, 10, 'd');
SELECT ok(wait_for($$SELECT n = 10 AND note = 'd' FROM kept_target WHERE id = 1$$),
          'a primary key made again under the running pipeline: the next message of a key updates its row');
ALTER TABLE kept_target DROP COLUMN note;
INSERT INTO kept_src VALUES (4, 4, 'e');
SELECT ok(wait_for($$SELECT count(*) = 4 FROM kept_target$$),
          'a mapped column dropped from the target: the next batch is written without it');
SELECT is((SELECT count(*) FROM sales_kafka.dead_letter WHERE pipeline = 'pe_kept'), 0::bigint,
          'no message of the altered target went to the dead letters');
ALTER TABLE kept_target ALTER COLUMN n TYPE bigint;
INSERT INTO kept_src VALUES (5, 5, 'f');
SELECT ok(wait_for($$SELECT state = 'failed' AND last_error LIKE 'column "n" has type integer in foreign table%'
                     FROM sales_kafka.pipeline_status WHERE pipeline = 'pe_kept'$$),
          'a mapped column of the SQL path retyped under the running pipeline stops it as failed, with the reason');
SELECT sales_kafka.drop_pipeline('pe_kept');

-- a pipeline that cannot commit shows its lag from the start
SELECT format($$CREATE FOREIGN TABLE stuck_src (n int) SERVER err_kafka OPTIONS (topic %L)$$,
              topic('pipe_stuck')) \gexec
CREATE TABLE stuck_target (n int);
CREATE FUNCTION refuse_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the target is locked' USING ERRCODE = 'lock_not_available';
END $$;
CREATE TRIGGER refuse_all BEFORE INSERT ON stuck_target FOR EACH STATEMENT EXECUTE FUNCTION refuse_all();
INSERT INTO stuck_src SELECT g FROM generate_series(1, 3) g;
SELECT sales_kafka.create_pipeline('pe_stuck', 'stuck_src', 'stuck_target');
SELECT sales_kafka.start_pipeline('pe_stuck');
SELECT ok(wait_for($$SELECT count(*) = 1 FROM sales_kafka.pipeline_partitions WHERE pipeline = 'pe_stuck'$$),
          'the stuck pipeline stored the offset it starts from');
SELECT ok(wait_for($$SELECT last_error LIKE 'the target is locked%' FROM sales_kafka.pipeline_status
                      WHERE pipeline = 'pe_stuck'$$),
          'its workers fail on every batch');
SELECT results_eq($$SELECT committed_offset, lag FROM sales_kafka.pipeline_partitions WHERE pipeline = 'pe_stuck'$$,
                  $$VALUES (0::bigint, 3::bigint)$$,
                  'pipeline_partitions shows the three messages it could not write as its lag');
SELECT sales_kafka.stop_pipeline('pe_stuck');

-- each batch is a transaction of its own time: now() in a column default,
-- the offsets' updated_at, the dead letters' failed_at
SELECT format($$CREATE FOREIGN TABLE times_src (n int) SERVER err_kafka OPTIONS (topic %L)$$,
              topic('pipe_times')) \gexec
SELECT format($$CREATE FOREIGN TABLE times_raw (v text) SERVER err_kafka OPTIONS (topic %L, format 'text')$$,
              topic('pipe_times')) \gexec
CREATE TABLE times_target (n int, loaded_at timestamptz DEFAULT now());
SELECT sales_kafka.create_pipeline('pe_times', 'times_src', 'times_target', flush_interval => '0');
SELECT sales_kafka.start_pipeline('pe_times');
INSERT INTO times_src VALUES (1);
SELECT ok(wait_for($$SELECT count(*) = 1 FROM times_target$$), 'the first batch is written');
SELECT loaded_at AS first_loaded_at FROM times_target WHERE n = 1 \gset
SELECT updated_at AS first_updated_at FROM sales_kafka.pipeline_partitions WHERE pipeline = 'pe_times' \gset
-- the second batch starts after the first one's transaction: the clock
-- is past it by now, as any later transaction's now() would be
SELECT ok(wait_for(format($$SELECT clock_timestamp() > %L$$, :'first_loaded_at')), 'the clock moved on');
INSERT INTO times_src VALUES (2);
INSERT INTO times_raw VALUES ('not json');
SELECT ok(wait_for($$SELECT (SELECT count(*) = 2 FROM times_target)
                       AND (SELECT count(*) = 1 FROM sales_kafka.dead_letter WHERE pipeline = 'pe_times')
                       AND (SELECT committed_offset = 3 FROM sales_kafka.pipeline_partitions WHERE pipeline = 'pe_times')$$),
          'the later batches are written');
SELECT cmp_ok((SELECT loaded_at FROM times_target WHERE n = 2), '>', :'first_loaded_at'::timestamptz,
              'a DEFAULT now() column gets the time of its own batch');
SELECT cmp_ok((SELECT updated_at FROM sales_kafka.pipeline_partitions WHERE pipeline = 'pe_times'), '>',
              :'first_updated_at'::timestamptz, 'pipeline_partitions.updated_at moves with each batch');
SELECT cmp_ok((SELECT failed_at FROM sales_kafka.dead_letter WHERE pipeline = 'pe_times'), '>',
              :'first_loaded_at'::timestamptz, 'a dead letter''s failed_at is the time of its batch');
SELECT is((SELECT updated_at FROM sales_kafka.pipeline_partitions WHERE pipeline = 'pe_times'),
          (SELECT greatest(max(t.loaded_at), max(d.failed_at)) FROM times_target t,
                  sales_kafka.dead_letter d WHERE d.pipeline = 'pe_times'),
          'the offsets commit with the time of the last batch''s rows');
SELECT sales_kafka.stop_pipeline('pe_times');

-- a row security policy that refuses some rows: those are dead letters
CREATE ROLE regress_sales_kafka_writer;
GRANT USAGE ON SCHEMA pipe_errors TO regress_sales_kafka_writer;
SELECT format($$CREATE FOREIGN TABLE rls_src (n int) SERVER err_kafka OPTIONS (topic %L)$$,
              topic('pipe_rls')) \gexec
GRANT SELECT ON rls_src TO regress_sales_kafka_writer;
CREATE TABLE rls_target (n int);
ALTER TABLE rls_target ENABLE ROW LEVEL SECURITY;
CREATE POLICY no_threes ON rls_target FOR INSERT WITH CHECK (n % 3 <> 0);
GRANT INSERT ON rls_target TO regress_sales_kafka_writer;
INSERT INTO rls_src SELECT g FROM generate_series(1, 9) g;
SET ROLE regress_sales_kafka_writer;
SELECT sales_kafka.create_pipeline('pe_rls', 'rls_src', 'rls_target');
SELECT sales_kafka.start_pipeline('pe_rls');
RESET ROLE;
SELECT ok(wait_for($$SELECT committed_offset = 9 FROM sales_kafka.pipeline_partitions WHERE pipeline = 'pe_rls'$$),
          'the pipeline into a table with a row security policy reads all nine messages');
SELECT results_eq($$SELECT n FROM rls_target ORDER BY n$$, $$VALUES (1), (2), (4), (5), (7), (8)$$,
                  'the rows the policy accepts are written');
SELECT results_eq($$SELECT sqlstate, count(*) FROM sales_kafka.dead_letter WHERE pipeline = 'pe_rls' GROUP BY 1$$,
                  $$VALUES ('42501', 3::bigint)$$, 'the three rows it refuses are dead letters, with SQLSTATE 42501');
SELECT is((SELECT state FROM sales_kafka.pipeline_status WHERE pipeline = 'pe_rls'), 'running',
          'and the pipeline goes on');
-- INSERT revoked: that is no row's fault
REVOKE INSERT ON rls_target FROM regress_sales_kafka_writer;
INSERT INTO rls_src VALUES (10);
SELECT ok(wait_for($$SELECT state = 'failed' AND last_error LIKE 'permission denied for table rls_target%'
                     FROM sales_kafka.pipeline_status WHERE pipeline = 'pe_rls'$$),
          'revoking INSERT on the target stops the pipeline as failed');
SELECT is((SELECT count(*) FROM sales_kafka.dead_letter WHERE pipeline = 'pe_rls'), 3::bigint,
          'and sends no message to the dead letters');

-- an error the statement raises without any row is the table's
CREATE TABLE refused_target (n int);
CREATE FUNCTION refuse_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'no inserts into refused_target' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER refuse BEFORE INSERT ON refused_target FOR EACH STATEMENT EXECUTE FUNCTION refuse_statement();
SELECT sales_kafka.create_pipeline('pe_refused', 'rls_src', 'refused_target');
SELECT sales_kafka.start_pipeline('pe_refused');
SELECT ok(wait_for($$SELECT state = 'failed' AND last_error LIKE 'no inserts into refused_target%'
                     FROM sales_kafka.pipeline_status WHERE pipeline = 'pe_refused'$$),
          'an error the statement raises also without rows stops the pipeline as failed');
SELECT is((SELECT count(*) FROM sales_kafka.dead_letter WHERE pipeline = 'pe_refused'), 0::bigint,
          'without dead letters');

-- a default that takes a sequence's next value fails for every row alike
CREATE TABLE serial_target (id serial, n int);
GRANT INSERT ON serial_target TO regress_sales_kafka_writer;
SET ROLE regress_sales_kafka_writer;
SELECT throws_ok($$SELECT sales_kafka.create_pipeline('pe_serial', 'rls_src', 'serial_target')$$,
                 '42501', 'permission denied for sequence serial_target_id_seq',
                 'a default on a sequence the owner may not use is refused up front');
RESET ROLE;

-- reset_pipeline(): 'to' as an untyped literal, in every form
SELECT format($$CREATE FOREIGN TABLE reset_src (n int, "partition" int OPTIONS (kafka 'partition'),
                  "offset" bigint OPTIONS (kafka 'offset'))
                SERVER err_kafka OPTIONS (topic %L)$$, topic('pipe_reset')) \gexec
CREATE TABLE reset_target (n int, "partition" int, "offset" bigint);
INSERT INTO reset_src (n, "partition") SELECT g, g % 2 FROM generate_series(1, 20) g;
SELECT sales_kafka.create_pipeline('pe_reset', 'reset_src', 'reset_target');
SELECT sales_kafka.start_pipeline('pe_reset');
SELECT ok(wait_for($$SELECT count(*) = 20 FROM reset_target$$), 'the pipeline reads both partitions');
TRUNCATE reset_target;
SELECT lives_ok($$SELECT sales_kafka.reset_pipeline('pe_reset', '{"0": 5, "1": 8}')$$,
                'a JSON object of offsets as an untyped literal, as the README writes it, is accepted');
SELECT ok(wait_for($$SELECT count(*) = 7 FROM reset_target$$), 'the pipeline reads again from those offsets');
SELECT results_eq($$SELECT "partition", min("offset"), count(*) FROM reset_target GROUP BY 1 ORDER BY 1$$,
                  $$VALUES (0, 5::bigint, 5::bigint), (1, 8::bigint, 2::bigint)$$,
                  'partition 0 from offset 5, partition 1 from offset 8');
SELECT lives_ok($$SELECT sales_kafka.reset_pipeline('pe_reset', ' 2024-01-01 00:00+00')$$,
                'a time as an untyped literal is accepted');
SELECT is((SELECT start_at FROM sales_kafka.pipeline WHERE name = 'pe_reset'), '1704067200000',
          'and kept as epoch milliseconds');
SELECT lives_ok($$SELECT sales_kafka.reset_pipeline('pe_reset', '{"1": 10}'::jsonb)$$, 'a jsonb argument still works');
SELECT lives_ok($$SELECT sales_kafka.reset_pipeline('pe_reset', '2024-01-01'::timestamptz)$$,
                'a timestamptz argument still works');
SELECT lives_ok($$SELECT sales_kafka.reset_pipeline('pe_reset', 'latest')$$, 'latest still works');
SELECT lives_ok($$SELECT sales_kafka.reset_pipeline('pe_reset')$$, 'and earliest, the default');
SELECT throws_ok($$SELECT sales_kafka.reset_pipeline('pe_reset', '{"0": 1e30}')$$, '22023',
                 'invalid offset for partition 0: 1000000000000000000000000000000', 'an offset beyond bigint is refused');
SELECT throws_ok($$SELECT sales_kafka.reset_pipeline('pe_reset', '{"0": 1.5}'::jsonb)$$, '22023',
                 'invalid offset for partition 0: 1.5', 'an offset that is not whole is refused');
SELECT throws_ok($$SELECT sales_kafka.reset_pipeline('pe_reset', '{"0": -1}')$$, '22023',
                 'invalid offset for partition 0: -1', 'a negative offset is refused');
SELECT throws_ok($$SELECT sales_kafka.reset_pipeline('pe_reset', '{"0": "3"}')$$, '22023',
                 'invalid offset for partition 0: not a number', 'an offset that is no JSON number is refused');
SELECT throws_ok($$SELECT sales_kafka.reset_pipeline('pe_reset', '{"first": 1}')$$, '22023',
                 'invalid partition "first" in offsets', 'a key that is no partition number is refused');
SELECT throws_ok($$SELECT sales_kafka.reset_pipeline('pe_reset', '{"2": 0}')$$, '22023',
                 format('partition 2 of topic "%s" does not exist', topic('pipe_reset')),
                 'a partition the topic does not have is refused');
SELECT throws_ok($$SELECT sales_kafka.reset_pipeline('pe_reset', '{"0": 11}')$$, '22023',
                 format('offset 11 is beyond the end of partition 0 of topic "%s"', topic('pipe_reset')),
                 'an offset beyond the high watermark is refused');
SELECT throws_ok($$SELECT sales_kafka.reset_pipeline('pe_reset', 'tomorrowish')$$, '22023',
                 'invalid reset position "tomorrowish"', 'anything else is refused');
SELECT sales_kafka.stop_pipeline('pe_reset');

SELECT * FROM finish();
SET client_min_messages = warning;
SELECT sales_kafka.drop_pipeline(name) FROM sales_kafka.pipeline;
SET ROLE regress_sales_kafka_writer;
SELECT sales_kafka.drop_pipeline(pipeline) FROM sales_kafka.pipeline_status WHERE owner = current_user::regrole;
RESET ROLE;
DROP SCHEMA pipe_errors CASCADE;
DROP EXTENSION sales_kafka CASCADE;
DROP OWNED BY regress_sales_kafka_writer;
DROP ROLE regress_sales_kafka_writer;
