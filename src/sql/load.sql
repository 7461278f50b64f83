-------------------------------------------------------------------------------
-- src/sql/load.sql: sales_kafka.load(), the explicit bulk load of a topic
-- into a table.  INSERT ... SELECT from a Kafka foreign table runs as the
-- executor plans it (1.2's library rewrote its plan into a bulk write);
-- load() writes what SELECT * FROM source returns now into target, columns
-- by name, as COPY FROM writes (table_multi_insert, then index entries and
-- triggers), in the caller's transaction and with the caller's rights; a
-- target with row security for the caller is refused, as COPY FROM refuses
-- it (src/load.c, src/bulk_insert.c).  New in 1.3: in both scripts.
-------------------------------------------------------------------------------

CREATE FUNCTION sales_kafka.load(source pg_catalog.regclass, target pg_catalog.regclass)
RETURNS pg_catalog.int8
AS 'MODULE_PATHNAME', 'sales_kafka_load'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION sales_kafka.load(pg_catalog.regclass, pg_catalog.regclass) IS
'writes the rows a sales_kafka foreign table reads now into a table, columns matched by name, in batches as COPY writes (triggers and constraints apply; a table with row security for the caller is refused); returns the number of rows written';
