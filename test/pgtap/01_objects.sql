-- The objects sales_kafka installs: schema, foreign data wrapper, functions
-- with their signatures and comments, the pipeline catalog and who may
-- read it, settings.  Broker-free.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
RESET client_min_messages;
CREATE EXTENSION sales_kafka;

SELECT plan(32);

SELECT has_schema('sales_kafka', 'schema sales_kafka exists');
SELECT is((SELECT extrelocatable FROM pg_extension WHERE extname = 'sales_kafka'),
          false, 'the extension is not relocatable');
SELECT is((SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
            WHERE e.extname = 'sales_kafka'),
          'sales_kafka', 'the extension lives in schema sales_kafka');

SELECT is((SELECT count(*) FROM pg_foreign_data_wrapper
            WHERE fdwname = 'sales_kafka'
              AND fdwhandler = 'sales_kafka.sales_kafka_fdw_handler'::regproc
              AND fdwvalidator = 'sales_kafka.sales_kafka_fdw_validator'::regproc),
          1::bigint, 'foreign data wrapper sales_kafka has our handler and validator');

SELECT has_function('sales_kafka', 'time_ordered_uuid', ARRAY[]::name[], 'time_ordered_uuid() exists');
SELECT has_function('sales_kafka', 'topics', ARRAY['name'], 'topics(name) exists');
SELECT function_returns('sales_kafka', 'topics', ARRAY['name'], 'setof record',
                        'topics(name) returns a set of rows');
SELECT results_eq($$SELECT pg_get_function_result('sales_kafka.topics(name)'::regprocedure)$$,
                  $$VALUES ('TABLE(topic text, partitions integer)')$$,
                  'topics(name) returns (topic text, partitions integer)');
SELECT has_function('sales_kafka', 'watermarks', ARRAY['name', 'text'], 'watermarks(name, text) exists');
SELECT results_eq($$SELECT pg_get_function_result('sales_kafka.watermarks(name, text)'::regprocedure)$$,
                  $$VALUES ('TABLE(partition integer, low bigint, high bigint)')$$,
                  'watermarks(name, text) returns (partition integer, low bigint, high bigint)');
SELECT has_function('sales_kafka', 'decode', ARRAY['anyelement', 'bytea', 'bytea'],
                    'decode(anyelement, bytea, bytea) exists');
SELECT has_function('sales_kafka', 'decode', ARRAY['anyelement', 'text', 'text'],
                    'decode(anyelement, text, text) exists');
SELECT function_returns('sales_kafka', 'decode', ARRAY['anyelement', 'bytea', 'bytea'],
                        'anyelement', 'decode returns the row type it is given');
SELECT is((SELECT pronargdefaults FROM pg_proc
            WHERE oid = 'sales_kafka.decode(anyelement, bytea, bytea)'::regprocedure),
          1::smallint, 'the key argument of decode() is optional');
SELECT is((SELECT provolatile FROM pg_proc WHERE oid = 'sales_kafka.topics(name)'::regprocedure),
          'v'::"char", 'topics() is volatile: it asks the cluster every time');

SELECT is_empty($$
  SELECT p.oid::regprocedure::text FROM pg_proc p
   WHERE p.pronamespace = 'sales_kafka'::regnamespace
     AND obj_description(p.oid, 'pg_proc') IS NULL$$,
  'every function of schema sales_kafka has a comment');
SELECT isnt(obj_description((SELECT oid FROM pg_foreign_data_wrapper WHERE fdwname = 'sales_kafka'),
                            'pg_foreign_data_wrapper'),
            NULL, 'the foreign data wrapper has a comment');

-- the pipeline catalog: names unique per owner, an id for everything else
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'sales_kafka'), '1.3',
          'CREATE EXTENSION installs version 1.3');
SELECT col_is_pk('sales_kafka', 'pipeline', 'id', 'a pipeline is identified by its id');
SELECT col_is_unique('sales_kafka', 'pipeline', ARRAY['owner', 'name'],
                     'pipeline names are unique per owner');
SELECT col_is_pk('sales_kafka', 'pipeline_offset', ARRAY['pipeline_id', 'topic', 'partition'],
                 'offsets belong to a pipeline id, topic and partition');
SELECT columns_are('sales_kafka', 'dead_letter',
                   ARRAY['id', 'pipeline', 'topic', 'partition', 'offset', 'key', 'headers', 'payload',
                         'error', 'sqlstate', 'failed_at', 'pipeline_id', 'owner'],
                   'a dead letter keeps its pipeline''s name, id and owner');
SELECT has_column('sales_kafka', 'pipeline_status', 'owner', 'pipeline_status shows each pipeline''s owner');
SELECT has_column('sales_kafka', 'pipeline_partitions', 'owner', 'pipeline_partitions shows each pipeline''s owner');
SELECT hasnt_function('sales_kafka', '_pipeline_workers', 'the workers are read through _pipeline_slots() only');
-- PUBLIC: the views, and the dead letters row security shows it
SELECT is((SELECT relrowsecurity FROM pg_class WHERE oid = 'sales_kafka.dead_letter'::regclass), true,
          'row level security guards the dead letters');
SELECT results_eq($$SELECT c.oid::regclass::text, (SELECT array_agg(a.privilege_type ORDER BY a.privilege_type)
                                          FROM aclexplode(c.relacl) a WHERE a.grantee = 0)
                      FROM pg_class c
                     WHERE c.relnamespace = 'sales_kafka'::regnamespace AND c.relkind IN ('r', 'v', 'S')
                     ORDER BY 1$$,
                  $$VALUES ('sales_kafka.dead_letter', '{DELETE,SELECT}'::text[]),
                           ('sales_kafka.dead_letter_id_seq', NULL), ('sales_kafka.pipeline', NULL),
                           ('sales_kafka.pipeline_id_seq', NULL), ('sales_kafka.pipeline_offset', NULL),
                           ('sales_kafka.pipeline_partitions', '{SELECT}'), ('sales_kafka.pipeline_status', '{SELECT}'),
                           ('sales_kafka.replay_progress', '{DELETE,INSERT,SELECT,UPDATE}')$$,
                  'PUBLIC may read the views, read and delete dead letters and keep replay progress (each under row security), and nothing else');
SELECT is((SELECT relrowsecurity FROM pg_class WHERE oid = 'sales_kafka.replay_progress'::regclass), true,
          'row level security guards the replay progress');

SELECT is(current_setting('sales_kafka.connect_timeout'), '10s',
          'sales_kafka.connect_timeout defaults to 10s');
SELECT is(current_setting('sales_kafka.produce_timeout'), '30s',
          'sales_kafka.produce_timeout defaults to 30s');
SELECT is((SELECT context FROM pg_settings WHERE name = 'sales_kafka.brokers'),
          'superuser', 'only superusers set sales_kafka.brokers, where servers without brokers connect');
SELECT throws_ok($$SET sales_kafka.no_such_setting = 1$$, '42602', NULL,
                 'the sales_kafka prefix is reserved: misspelt settings are errors');

SELECT * FROM finish();
ROLLBACK;
