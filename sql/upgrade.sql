--
-- The upgrade path from 1.0 (the foreign data wrapper) to 1.1 (pipelines)
-- to 1.2 (the sales model and its KPIs) to 1.3 (pipelines of several
-- roles), which is also how CREATE EXTENSION installs 1.3; what 1.3 makes
-- of the pipelines, offsets and dead letters of 1.2; and every object users
-- see has a comment.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
DROP ROLE IF EXISTS regress_sales_kafka_owner;
DROP ROLE IF EXISTS regress_sales_kafka_member;
DROP ROLE IF EXISTS regress_sales_kafka_other;
RESET client_min_messages;

CREATE EXTENSION sales_kafka VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'sales_kafka';
SELECT to_regclass('sales_kafka.pipeline') IS NULL AS no_pipelines_in_1_0;
CREATE TEMP TABLE upgraded AS
  SELECT pg_describe_object(classid, objid, objsubid) AS object
    FROM pg_depend
   WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
     AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'sales_kafka')
     AND false;
ALTER EXTENSION sales_kafka UPDATE TO '1.1';
SELECT extversion FROM pg_extension WHERE extname = 'sales_kafka';
SELECT to_regprocedure('sales_kafka.create_sales_model(name, boolean, text)') IS NULL AS no_models_in_1_1;
ALTER EXTENSION sales_kafka UPDATE TO '1.2';
SELECT extversion FROM pg_extension WHERE extname = 'sales_kafka';

-- catalog rows as 1.2 kept them: two pipelines of two owners (one with a
-- flush interval in months and days, which 1.2 took), offsets and dead
-- letters by pipeline name, also of a pipeline dropped since
CREATE ROLE regress_sales_kafka_owner;
CREATE ROLE regress_sales_kafka_member IN ROLE regress_sales_kafka_owner;
CREATE ROLE regress_sales_kafka_other;
CREATE TABLE upgrade_t (n int);
INSERT INTO sales_kafka.pipeline (name, source, target, owner, enabled, flush_interval) VALUES
  ('orders', 'upgrade_t', 'upgrade_t', 'regress_sales_kafka_owner', true, '1 mon -30 days 5 ms'),
  ('lines', 'upgrade_t', 'upgrade_t', 'regress_sales_kafka_other', false, '-5 mons 150 days 00:20:00');
INSERT INTO sales_kafka.pipeline_offset (pipeline, topic, partition, next_offset, high_watermark) VALUES
  ('orders', 't_orders', 0, 5, 7), ('orders', 't_orders', 1, 2, 2), ('lines', 't_lines', 0, 1, 4),
  ('dropped', 't_old', 0, 3, 3);
INSERT INTO sales_kafka.dead_letter (pipeline, topic, partition, "offset", error, sqlstate) VALUES
  ('orders', 't_orders', 0, 4, 'bad order', '22P02'), ('lines', 't_lines', 0, 0, 'bad line', '22P02'),
  ('dropped', 't_old', 0, 2, 'bad old', '22P02');

ALTER EXTENSION sales_kafka UPDATE TO '1.3';
SELECT extversion FROM pg_extension WHERE extname = 'sales_kafka';
SELECT name, owner, id IS NOT NULL AS has_id FROM sales_kafka.pipeline ORDER BY name;
-- a flush interval is time: months and days become what 1.2's check counted
SELECT name, flush_interval FROM sales_kafka.pipeline ORDER BY name;
\set VERBOSITY terse
UPDATE sales_kafka.pipeline SET flush_interval = '60 mons -1800 days' WHERE name = 'lines'; -- ERROR: months and days
\set VERBOSITY default
-- offsets follow their pipeline's id; those of no pipeline are gone
SELECT pipeline, owner, topic, partition, committed_offset, lag
  FROM sales_kafka.pipeline_partitions ORDER BY pipeline, partition;
SELECT count(*) AS offsets FROM sales_kafka.pipeline_offset;
SELECT d.pipeline, d.owner, d.pipeline_id = p.id AS same_id
  FROM sales_kafka.dead_letter d LEFT JOIN sales_kafka.pipeline p ON p.name = d.pipeline
 ORDER BY d.id;
-- a new pipeline gets an id after those of the upgrade
SELECT nextval('sales_kafka.pipeline_id_seq') > (SELECT max(id) FROM sales_kafka.pipeline) AS next_id_is_new;
-- each role reads, and deletes, the dead letters of the pipelines of roles
-- whose rights it has; the status shows others' errors and counts to no one
SELECT pipeline, owner, state, dead_letters, last_error FROM sales_kafka.pipeline_status ORDER BY pipeline;
SET ROLE regress_sales_kafka_member;
SELECT pipeline, error FROM sales_kafka.dead_letter ORDER BY id;
SELECT pipeline, dead_letters FROM sales_kafka.pipeline_status ORDER BY pipeline;
DELETE FROM sales_kafka.dead_letter;
RESET ROLE;
SET ROLE regress_sales_kafka_other;
SELECT pipeline, error FROM sales_kafka.dead_letter ORDER BY id;
RESET ROLE;
SELECT pipeline, owner FROM sales_kafka.dead_letter ORDER BY id;
UPDATE sales_kafka.pipeline SET failure = 'value "secret" refused' WHERE name = 'lines';
SET ROLE regress_sales_kafka_owner;
SELECT pipeline, state, last_error FROM sales_kafka.pipeline_status ORDER BY pipeline;
RESET ROLE;
DELETE FROM sales_kafka.dead_letter;
DELETE FROM sales_kafka.pipeline_offset;
DELETE FROM sales_kafka.pipeline;

INSERT INTO upgraded
  SELECT pg_describe_object(classid, objid, objsubid)
    FROM pg_depend
   WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
     AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'sales_kafka');
DROP EXTENSION sales_kafka;

CREATE EXTENSION sales_kafka;
SELECT extversion FROM pg_extension WHERE extname = 'sales_kafka';
-- objects that only one of the two installs has
(SELECT object FROM upgraded
 EXCEPT
 SELECT pg_describe_object(classid, objid, objsubid)
   FROM pg_depend
  WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
    AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'sales_kafka'))
UNION ALL
(SELECT pg_describe_object(classid, objid, objsubid)
   FROM pg_depend
  WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
    AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'sales_kafka')
 EXCEPT
 SELECT object FROM upgraded);
-- every object users see has a comment
SELECT pg_describe_object(classid, objid, objsubid) AS uncommented
  FROM pg_depend d
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'sales_kafka')
   AND classid IN ('pg_class'::regclass, 'pg_proc'::regclass, 'pg_foreign_data_wrapper'::regclass)
   AND NOT (classid = 'pg_class'::regclass AND (SELECT relkind FROM pg_class WHERE oid = objid) IN ('S', 'i'))
   AND obj_description(objid, (SELECT relname FROM pg_class WHERE oid = classid)) IS NULL
 ORDER BY 1;
-- and every column of its tables and views
SELECT a.attrelid::regclass AS relation, a.attname AS uncommented_column
  FROM pg_depend d
  JOIN pg_class c ON c.oid = d.objid AND c.relkind IN ('r', 'v')
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND d.classid = 'pg_class'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'sales_kafka')
   AND col_description(c.oid, a.attnum) IS NULL
 ORDER BY 1, 2;
DROP EXTENSION sales_kafka;
DROP TABLE upgrade_t;
DROP ROLE regress_sales_kafka_member;
DROP ROLE regress_sales_kafka_owner;
DROP ROLE regress_sales_kafka_other;
