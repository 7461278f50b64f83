--
-- The upgrade path from 1.0 (the foreign data wrapper) to 1.1 (pipelines)
-- to 1.2 (the sales model and its KPIs), which is also how CREATE EXTENSION
-- installs 1.2; and every object users see has a comment.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
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
DROP EXTENSION sales_kafka;
