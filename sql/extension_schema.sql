--
-- The extension's schema.  The functions that write the catalog do so as
-- superuser, on sales_kafka.pipeline and its siblings; a role that owned a
-- schema of that name could run its own triggers there as superuser.  So
-- CREATE EXTENSION and ALTER EXTENSION UPDATE refuse a schema
-- "sales_kafka" that a superuser does not own (a database owner can make
-- it before the superuser installs the extension), the error leaving
-- nothing behind; and the catalog functions refuse a schema "sales_kafka"
-- that is not the extension's, or not a superuser's (the attack: the
-- owner of the extension's schema renames it and puts a schema of its own,
-- whose "pipeline" table has a trigger, in its place).  Runs in a database
-- of its own, owned by an ordinary role.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_sales_kafka_hijack;
DROP ROLE IF EXISTS regress_sales_kafka_dbowner;
RESET client_min_messages;
\set regress_db :DBNAME
\set SHOW_CONTEXT never

CREATE ROLE regress_sales_kafka_dbowner;
CREATE DATABASE regress_sales_kafka_hijack OWNER regress_sales_kafka_dbowner;
\c regress_sales_kafka_hijack
SELECT count(*) AS reader_role_before FROM pg_roles WHERE rolname = 'sales_kafka_reader' \gset

-- the database owner makes the schema first
SET ROLE regress_sales_kafka_dbowner;
CREATE SCHEMA sales_kafka;
RESET ROLE;

-- valid: a schema "sales_kafka" of a superuser's
ALTER SCHEMA sales_kafka OWNER TO CURRENT_USER;
CREATE EXTENSION sales_kafka;
SELECT extversion FROM pg_extension WHERE extname = 'sales_kafka';
DROP EXTENSION sales_kafka;
ALTER SCHEMA sales_kafka OWNER TO regress_sales_kafka_dbowner;

-- invalid: the database owner's schema
CREATE EXTENSION sales_kafka;                 -- ERROR: not a superuser's
-- nothing of the extension is left
SELECT count(*) AS extensions FROM pg_extension WHERE extname = 'sales_kafka';
SELECT count(*) AS wrappers FROM pg_foreign_data_wrapper WHERE fdwname = 'sales_kafka';
SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'sales_kafka'::regnamespace)
     + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'sales_kafka'::regnamespace)
     + (SELECT count(*) FROM pg_type WHERE typnamespace = 'sales_kafka'::regnamespace) AS objects_in_schema;
SELECT count(*) = :reader_role_before AS reader_role_as_before
  FROM pg_roles WHERE rolname = 'sales_kafka_reader';
SELECT nspowner::regrole AS schema_owner FROM pg_namespace WHERE nspname = 'sales_kafka';
-- nor does an update to 1.3 (of a 1.2 installed into it before 1.3 came)
CREATE EXTENSION sales_kafka VERSION '1.2';
ALTER EXTENSION sales_kafka UPDATE TO '1.3';  -- ERROR: not a superuser's
SELECT extversion FROM pg_extension WHERE extname = 'sales_kafka';
DROP EXTENSION sales_kafka;

-- At run time.  An extension installed before 1.3 into the database
-- owner's schema is as if a superuser had given the schema away.
ALTER SCHEMA sales_kafka OWNER TO CURRENT_USER;
CREATE EXTENSION sales_kafka;
GRANT USAGE ON FOREIGN DATA WRAPPER sales_kafka TO regress_sales_kafka_dbowner;
SET ROLE regress_sales_kafka_dbowner;
CREATE SERVER hijack_kafka FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers '127.0.0.1:9');
CREATE FOREIGN TABLE hijack_src (id integer) SERVER hijack_kafka OPTIONS (topic 'hijack');
CREATE TABLE hijack_dst (id integer);
RESET ROLE;
ALTER SCHEMA sales_kafka OWNER TO regress_sales_kafka_dbowner;
SET ROLE regress_sales_kafka_dbowner;
SELECT sales_kafka.create_pipeline('hijack', 'hijack_src', 'hijack_dst');     -- ERROR: not a superuser's
-- the attack: rename the extension's schema, put one's own in its place
ALTER SCHEMA sales_kafka RENAME TO sk_real;
CREATE SCHEMA sales_kafka;
CREATE TABLE sales_kafka.pipeline (id bigserial, name text, source regclass, target regclass,
  mode text, batch_size integer, flush_interval interval, start_at text, parallelism integer,
  owner regrole, enabled boolean DEFAULT false, failure text, failed_at timestamptz,
  created_at timestamptz DEFAULT now());
CREATE FUNCTION sales_kafka.pwn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    ALTER ROLE regress_sales_kafka_dbowner SUPERUSER;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER pwn BEFORE INSERT ON sales_kafka.pipeline FOR EACH ROW EXECUTE FUNCTION sales_kafka.pwn();
SELECT sk_real.create_pipeline('hijack', 'hijack_src', 'hijack_dst');         -- ERROR: not the extension's
SELECT sk_real.start_pipeline('hijack');                                      -- ERROR: not the extension's
RESET ROLE;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_sales_kafka_dbowner';
SELECT count(*) AS impostor_rows FROM sales_kafka.pipeline;
-- a superuser taking the renamed schema back is not enough
ALTER SCHEMA sk_real OWNER TO CURRENT_USER;
SELECT sk_real.create_pipeline('hijack', 'hijack_src', 'hijack_dst');         -- ERROR: not the extension's
-- the way back: the hint's
DROP SCHEMA sales_kafka CASCADE;
ALTER SCHEMA sk_real RENAME TO sales_kafka;
SELECT sales_kafka.create_pipeline('hijack', 'hijack_src', 'hijack_dst');
SELECT pipeline, owner = current_user::regrole AS mine FROM sales_kafka.pipeline_status;
SELECT sales_kafka.drop_pipeline('hijack');

-- The catalog functions prepare their statements once in a session and
-- keep them: kept statements follow the extension dropped and created
-- again in the same session.
SELECT sales_kafka.create_pipeline('kept', 'hijack_src', 'hijack_dst');
SELECT sales_kafka.reset_pipeline('kept', 'latest');
SET client_min_messages = warning;
DROP EXTENSION sales_kafka CASCADE;
RESET client_min_messages;
CREATE EXTENSION sales_kafka;
CREATE SERVER hijack_kafka FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers '127.0.0.1:9');
CREATE FOREIGN TABLE hijack_src (id integer) SERVER hijack_kafka OPTIONS (topic 'hijack');
SELECT sales_kafka.create_pipeline('kept', 'hijack_src', 'hijack_dst');
SELECT sales_kafka.reset_pipeline('kept', 'latest');
SELECT name, start_at, owner = current_user::regrole AS mine FROM sales_kafka.pipeline;
SELECT sales_kafka.drop_pipeline('kept');
SELECT count(*) AS pipelines FROM sales_kafka.pipeline;

\c :regress_db
DROP DATABASE regress_sales_kafka_hijack;
DROP ROLE regress_sales_kafka_dbowner;
