--
-- Errors of the functions that ask a Kafka cluster directly, topics() and
-- watermarks(), without any broker: missing or foreign servers, missing
-- privileges, unreachable brokers, cancellation.
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
DROP ROLE IF EXISTS regress_sales_kafka_user;
RESET client_min_messages;

CREATE EXTENSION sales_kafka;
CREATE ROLE regress_sales_kafka_user;
-- nothing listens on port 1 of the loopback address
CREATE SERVER kafka_down FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers '127.0.0.1:1');
CREATE SERVER kafka_guc FOREIGN DATA WRAPPER sales_kafka;
CREATE FOREIGN DATA WRAPPER other_fdw;
CREATE SERVER not_kafka FOREIGN DATA WRAPPER other_fdw;

-- NULL arguments: no rows (the functions are strict)
SELECT * FROM sales_kafka.topics(NULL);
SELECT * FROM sales_kafka.watermarks('kafka_down', NULL);

SELECT * FROM sales_kafka.topics('no_such_server');        -- ERROR: no server
SELECT * FROM sales_kafka.watermarks('not_kafka', 'x');    -- ERROR: other FDW

-- the librdkafka detail depends on the machine: keep it out of the output
\set VERBOSITY terse
SET sales_kafka.connect_timeout = '200ms';
SELECT * FROM sales_kafka.topics('kafka_down');            -- ERROR: unreachable
SELECT * FROM sales_kafka.watermarks('kafka_down', 'sales'); -- ERROR: unreachable
SET sales_kafka.brokers = '127.0.0.1:1';
SELECT * FROM sales_kafka.topics('kafka_guc');             -- ERROR: unreachable, brokers from the setting
SET sales_kafka.brokers = '';
SELECT * FROM sales_kafka.topics('kafka_guc');             -- ERROR: no brokers at all
SET sales_kafka.brokers = 'localhost:9092;evil:1';          -- ERROR: not a broker list
RESET sales_kafka.brokers;

-- a long timeout still gives way to statement_timeout
SET sales_kafka.connect_timeout = '10min';
SET statement_timeout = '300ms';
SELECT * FROM sales_kafka.watermarks('kafka_down', 'sales'); -- ERROR: canceled
RESET statement_timeout;
\set VERBOSITY default

-- settings: defaults, units and range
RESET sales_kafka.connect_timeout;
SHOW sales_kafka.connect_timeout;
SHOW sales_kafka.produce_timeout;
SELECT boot_val FROM pg_settings WHERE name = 'sales_kafka.brokers';
SET sales_kafka.connect_timeout = 0;                       -- ERROR: out of range
SET sales_kafka.no_such_setting = 1;                       -- ERROR: reserved prefix

-- USAGE on the server is required
GRANT USAGE ON SCHEMA sales_kafka TO regress_sales_kafka_user;
SET ROLE regress_sales_kafka_user;
SELECT * FROM sales_kafka.topics('kafka_down');            -- ERROR: no privilege
-- only superusers say where servers without "brokers" connect
SET sales_kafka.brokers = '127.0.0.1:1';                   -- ERROR: superuser only
RESET ROLE;
GRANT USAGE ON FOREIGN SERVER kafka_down TO regress_sales_kafka_user;
SET ROLE regress_sales_kafka_user;
SET sales_kafka.connect_timeout = '100ms';
\set VERBOSITY terse
SELECT * FROM sales_kafka.topics('kafka_down');            -- ERROR: allowed now, but unreachable
\set VERBOSITY default
RESET ROLE;
REVOKE ALL ON FOREIGN SERVER kafka_down FROM regress_sales_kafka_user;
REVOKE ALL ON SCHEMA sales_kafka FROM regress_sales_kafka_user;

DROP SERVER not_kafka;
DROP FOREIGN DATA WRAPPER other_fdw;
DROP EXTENSION sales_kafka CASCADE;
DROP ROLE regress_sales_kafka_user;
