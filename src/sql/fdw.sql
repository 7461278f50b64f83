-------------------------------------------------------------------------------
-- src/sql/fdw.sql: the foreign data wrapper, and the functions that ask a
-- Kafka cluster or decode a message without one (the install script
-- only).
-------------------------------------------------------------------------------

-- A Kafka cluster is a SERVER, a topic is a FOREIGN TABLE, credentials
-- live in USER MAPPINGs.

CREATE FUNCTION sales_kafka.sales_kafka_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME', 'sales_kafka_fdw_handler'
LANGUAGE C STRICT;

COMMENT ON FUNCTION sales_kafka.sales_kafka_fdw_handler() IS
'handler of the sales_kafka foreign data wrapper';

CREATE FUNCTION sales_kafka.sales_kafka_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME', 'sales_kafka_fdw_validator'
LANGUAGE C STRICT;

COMMENT ON FUNCTION sales_kafka.sales_kafka_fdw_validator(text[], oid) IS
'checks the options of sales_kafka servers, user mappings, foreign tables and columns';

CREATE FOREIGN DATA WRAPPER sales_kafka
  HANDLER sales_kafka.sales_kafka_fdw_handler
  VALIDATOR sales_kafka.sales_kafka_fdw_validator;

COMMENT ON FOREIGN DATA WRAPPER sales_kafka IS
'Kafka topics as foreign tables: SELECT reads a topic, INSERT produces to it';

-------------------------------------------------------------------------------
-- Asking a Kafka cluster directly
-------------------------------------------------------------------------------

CREATE FUNCTION sales_kafka.topics(server name)
RETURNS TABLE (topic text, partitions integer)
AS 'MODULE_PATHNAME', 'sales_kafka_topics'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION sales_kafka.topics(name) IS
'every topic of the Kafka cluster of a sales_kafka server, with its partition count, by topic name';

CREATE FUNCTION sales_kafka.watermarks(server name, topic text)
RETURNS TABLE (partition integer, low bigint, high bigint)
AS 'MODULE_PATHNAME', 'sales_kafka_watermarks'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION sales_kafka.watermarks(name, text) IS
'for each partition of a topic, the oldest offset still kept (low) and the offset the next message will get (high)';

-------------------------------------------------------------------------------
-- Decoding without a broker: what a foreign table makes of a payload
-------------------------------------------------------------------------------

CREATE FUNCTION sales_kafka.decode(row_type anyelement, payload bytea,
                                   key bytea DEFAULT NULL)
RETURNS anyelement
AS 'MODULE_PATHNAME', 'sales_kafka_decode'
LANGUAGE C CALLED ON NULL INPUT STABLE;

COMMENT ON FUNCTION sales_kafka.decode(anyelement, bytea, bytea) IS
'decodes one Kafka message through the mapping of the foreign table whose row type is given (as NULL::table), as SELECT on that table would';

CREATE FUNCTION sales_kafka.decode(row_type anyelement, payload text,
                                   key text DEFAULT NULL)
RETURNS anyelement
AS $$SELECT sales_kafka.decode(row_type,
                               pg_catalog.convert_to(payload, pg_catalog.getdatabaseencoding()),
                               pg_catalog.convert_to(key, pg_catalog.getdatabaseencoding()))$$
LANGUAGE SQL CALLED ON NULL INPUT STABLE;

COMMENT ON FUNCTION sales_kafka.decode(anyelement, text, text) IS
'decodes one Kafka message given as text through the mapping of the foreign table whose row type is given (as NULL::table)';
