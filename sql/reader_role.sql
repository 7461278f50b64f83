--
-- The role sales_kafka_reader, which may read the KPI views of every sales
-- model and nothing else of them.  A role belongs to the cluster, not to a
-- database: CREATE EXTENSION makes it when the cluster has none and leaves
-- one that exists as it is, so that the extension of every database, and
-- every model, grants to the same role; DROP EXTENSION leaves it, with its
-- members, and the grants of the models it keeps.  PostgreSQL refuses to
-- drop it while a model grants to it.  Runs partly in a second database.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_sales_kafka_second;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
DROP SCHEMA IF EXISTS regress_reader_model CASCADE;
DROP ROLE IF EXISTS regress_sales_kafka_bi;
RESET client_min_messages;
\set regress_db :DBNAME

CREATE EXTENSION sales_kafka;
SELECT oid AS reader FROM pg_roles WHERE rolname = 'sales_kafka_reader' \gset
-- a role that logs in nowhere and may do nothing but read what models
-- grant it
SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls,
       shobj_description(oid, 'pg_authid') AS comment
  FROM pg_roles WHERE oid = :reader;
CREATE ROLE regress_sales_kafka_bi LOGIN IN ROLE sales_kafka_reader;
SELECT sales_kafka.create_sales_model('regress_reader_model');

-- another database: its extension, and its models, grant to the same role
CREATE DATABASE regress_sales_kafka_second;
\c regress_sales_kafka_second
CREATE EXTENSION sales_kafka;
SELECT oid = :reader AS same_role FROM pg_roles WHERE rolname = 'sales_kafka_reader';
SELECT sales_kafka.create_sales_model('regress_reader_model');
SET ROLE regress_sales_kafka_bi;
SELECT revenue FROM regress_reader_model.kpi_totals;
\set VERBOSITY terse
SELECT count(*) FROM regress_reader_model.order_lines;            -- ERROR: only the KPI views
\set VERBOSITY default
RESET ROLE;
-- DROP EXTENSION leaves the role, and the model there its grants to it
SET client_min_messages = warning;
DROP EXTENSION sales_kafka CASCADE;
RESET client_min_messages;
SELECT oid = :reader AS same_role FROM pg_roles WHERE rolname = 'sales_kafka_reader';
SET ROLE regress_sales_kafka_bi;
SELECT revenue FROM regress_reader_model.kpi_totals;
RESET ROLE;

-- also where the extension was created first
\c :regress_db
SET client_min_messages = warning;
DROP EXTENSION sales_kafka CASCADE;
RESET client_min_messages;
SELECT oid = :reader AS same_role, pg_has_role('regress_sales_kafka_bi', oid, 'MEMBER') AS bi_is_member
  FROM pg_roles WHERE rolname = 'sales_kafka_reader';
-- the models of both databases still grant to it: it cannot be dropped
SELECT d.datname = current_database() AS this_database, count(*) > 0 AS grants
  FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid
 WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = :reader
   AND d.datname IN (current_database(), 'regress_sales_kafka_second')
 GROUP BY d.datname
 ORDER BY 1 DESC;
\set VERBOSITY terse
DROP ROLE sales_kafka_reader;                                     -- ERROR: models grant to it
\set VERBOSITY default
-- CREATE EXTENSION finds it again, as it is
CREATE EXTENSION sales_kafka;
SELECT oid = :reader AS same_role FROM pg_roles WHERE rolname = 'sales_kafka_reader';

DROP DATABASE regress_sales_kafka_second;
SET client_min_messages = warning;
DROP SCHEMA regress_reader_model CASCADE;
RESET client_min_messages;
DROP EXTENSION sales_kafka;
DROP ROLE regress_sales_kafka_bi;
