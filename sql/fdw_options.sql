--
-- Option validation of the sales_kafka foreign data wrapper: every option
-- on every catalog object, valid values first, then each invalid case.
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
DROP ROLE IF EXISTS regress_sales_kafka_user;
RESET client_min_messages;

CREATE EXTENSION sales_kafka;
CREATE ROLE regress_sales_kafka_user;

-- servers: brokers and librdkafka properties
CREATE SERVER kafka_opts FOREIGN DATA WRAPPER sales_kafka
  OPTIONS (brokers 'broker1:9092,broker2:9092');
CREATE SERVER kafka_props FOREIGN DATA WRAPPER sales_kafka
  OPTIONS (brokers 'localhost:9092', "client.id" 'shop', "socket.timeout.ms" '5000',
           "security.protocol" 'plaintext', "compression.type" 'lz4',
           "fetch.wait.max.ms" '20', "queued.min.messages" '1000000');
CREATE SERVER kafka_default FOREIGN DATA WRAPPER sales_kafka;
ALTER SERVER kafka_default OPTIONS (ADD "client.rack" 'rack1');
ALTER SERVER kafka_default OPTIONS (DROP "client.rack");
SELECT srvname, srvoptions FROM pg_foreign_server
  WHERE srvname LIKE 'kafka_%' ORDER BY srvname;

CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS (broker 'x:1');             -- ERROR: misspelt
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers '');               -- ERROR: empty
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers ' , ');            -- ERROR: no broker
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS (topic 'sales');            -- ERROR: table option
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("socket.timout.ms" '1');   -- ERROR: no such property
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("socket.timeout.ms" 'x');  -- ERROR: not a number
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("compression.type" 'zip'); -- ERROR: not an enum value
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("sasl.password" 'hunter2');  -- ERROR: secret
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("sasl.username" 'alice');  -- ERROR: secret
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("ssl.key.password" 'k');   -- ERROR: secret
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("bootstrap.servers" 'x:1'); -- ERROR: managed
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("enable.auto.commit" 'true'); -- ERROR: managed
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("group.id" 'g');           -- ERROR: managed
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("plugin.library.paths" 'x'); -- ERROR: loads code
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("sasl.kerberos.kinit.cmd" 'x'); -- ERROR: runs code
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers 'a:1', brokers 'b:1'); -- ERROR: twice
ALTER FOREIGN DATA WRAPPER sales_kafka OPTIONS (ADD brokers 'x:1');                          -- ERROR: no FDW options

-- user mappings: credentials only, never echoed back in a message
CREATE USER MAPPING FOR regress_sales_kafka_user SERVER kafka_opts
  OPTIONS ("sasl.username" 'alice', "sasl.password" 'hunter2');
CREATE USER MAPPING FOR PUBLIC SERVER kafka_opts
  OPTIONS ("ssl.key.password" 'k', "ssl.keystore.password" 'ks',
           "ssl.key.pem" '-----BEGIN PRIVATE KEY-----');
CREATE USER MAPPING FOR CURRENT_USER SERVER kafka_opts OPTIONS ("client.id" 'x'); -- ERROR: not a credential
CREATE USER MAPPING FOR CURRENT_USER SERVER kafka_opts OPTIONS (brokers 'x:1');   -- ERROR: server option
CREATE USER MAPPING FOR CURRENT_USER SERVER kafka_opts OPTIONS ("user" 'x');      -- ERROR: no such option
CREATE USER MAPPING FOR CURRENT_USER SERVER kafka_opts
  OPTIONS ("sasl.password" 'a', "sasl.password" 'b');                             -- ERROR: twice

-- foreign tables
CREATE FOREIGN TABLE ft_json (id int) SERVER kafka_opts OPTIONS (topic 'sales.orders');
CREATE FOREIGN TABLE ft_json2 (id int) SERVER kafka_opts
  OPTIONS (topic 'Sales-2024_v1', format 'json', strict 'false');
CREATE FOREIGN TABLE ft_csv (id int, name text) SERVER kafka_opts
  OPTIONS (topic 'lines', format 'csv', delimiter ';', quote '''', null 'NA', header 'true');
CREATE FOREIGN TABLE ft_csv_match (id int) SERVER kafka_opts
  OPTIONS (topic 'lines', format 'csv', header 'match');
CREATE FOREIGN TABLE ft_text (line text) SERVER kafka_opts OPTIONS (topic 'logs', format 'text');
CREATE FOREIGN TABLE ft_bytea (raw bytea) SERVER kafka_opts OPTIONS (topic 'blobs', format 'bytea');
ALTER FOREIGN TABLE ft_json OPTIONS (ADD strict 'on');
ALTER FOREIGN TABLE ft_json OPTIONS (SET topic 'sales.orders.v2');
SELECT c.relname, t.ftoptions FROM pg_foreign_table t JOIN pg_class c ON c.oid = t.ftrelid
  ORDER BY c.relname;

CREATE FOREIGN TABLE ft_bad (id int) SERVER kafka_opts;                                           -- ERROR: no topic
CREATE FOREIGN TABLE ft_bad (id int) SERVER kafka_opts OPTIONS (topic '');                        -- ERROR: empty topic
CREATE FOREIGN TABLE ft_bad (id int) SERVER kafka_opts OPTIONS (topic 'sales orders');            -- ERROR: space
CREATE FOREIGN TABLE ft_bad (id int) SERVER kafka_opts OPTIONS (topic '..');                      -- ERROR: reserved
CREATE FOREIGN TABLE ft_bad (id int) SERVER kafka_opts OPTIONS (topic 'x', format 'xml');         -- ERROR: format
CREATE FOREIGN TABLE ft_bad (id int) SERVER kafka_opts OPTIONS (topic 'x', fromat 'json');        -- ERROR: misspelt
CREATE FOREIGN TABLE ft_bad (id int) SERVER kafka_opts OPTIONS (topic 'x', brokers 'y:1');        -- ERROR: server option
CREATE FOREIGN TABLE ft_bad (id int) SERVER kafka_opts OPTIONS (topic 'x', "client.id" 'y');      -- ERROR: property
CREATE FOREIGN TABLE ft_bad (id int) SERVER kafka_opts OPTIONS (topic 'x', delimiter ';');        -- ERROR: needs csv
CREATE FOREIGN TABLE ft_bad (id int) SERVER kafka_opts OPTIONS (topic 'x', format 'json', header 'true'); -- ERROR: needs csv
CREATE FOREIGN TABLE ft_bad (id int) SERVER kafka_opts OPTIONS (topic 'x', format 'csv', delimiter ';;'); -- ERROR: two chars
CREATE FOREIGN TABLE ft_bad (id int) SERVER kafka_opts OPTIONS (topic 'x', format 'csv', quote E'\n');    -- ERROR: line break
CREATE FOREIGN TABLE ft_bad (id int) SERVER kafka_opts OPTIONS (topic 'x', format 'csv', delimiter '"');  -- ERROR: same as quote
CREATE FOREIGN TABLE ft_bad (id int) SERVER kafka_opts OPTIONS (topic 'x', format 'csv', header 'first'); -- ERROR: header
CREATE FOREIGN TABLE ft_bad (id int) SERVER kafka_opts OPTIONS (topic 'x', strict 'maybe');       -- ERROR: not boolean
CREATE FOREIGN TABLE ft_bad (id int) SERVER kafka_opts OPTIONS (topic 'x', topic 'y');            -- ERROR: twice
ALTER FOREIGN TABLE ft_json OPTIONS (DROP topic);                                                  -- ERROR: topic required

-- columns: Kafka metadata, payload fields by name or JSON path
CREATE FOREIGN TABLE ft_cols (
  p int OPTIONS (kafka 'partition'),
  o bigint OPTIONS (kafka 'offset'),
  ts timestamptz OPTIONS (kafka 'timestamp'),
  k text OPTIONS (kafka 'key'),
  h jsonb OPTIONS (kafka 'headers'),
  t text OPTIONS (kafka 'topic'),
  raw text OPTIONS (kafka 'payload'),
  err text OPTIONS (kafka 'error'),
  order_id text OPTIONS (field 'orderId'),
  region text OPTIONS (json_path '$.customer.region'),
  first_sku text OPTIONS (json_path '$.lines[0].sku'),
  odd text OPTIONS (json_path '$["odd key"][''b'']'),
  whole jsonb OPTIONS (json_path '$'),
  quantity int
) SERVER kafka_opts OPTIONS (topic 'orders');
SELECT attname, attfdwoptions FROM pg_attribute
  WHERE attrelid = 'ft_cols'::regclass AND attnum > 0 ORDER BY attnum;

CREATE FOREIGN TABLE ft_bad (c int OPTIONS (kafka 'offsets')) SERVER kafka_opts OPTIONS (topic 'x');        -- ERROR: kafka value
CREATE FOREIGN TABLE ft_bad (c int OPTIONS (kafka 'key', field 'k')) SERVER kafka_opts OPTIONS (topic 'x'); -- ERROR: both
CREATE FOREIGN TABLE ft_bad (c int OPTIONS (kafka 'key', json_path '$.k')) SERVER kafka_opts OPTIONS (topic 'x'); -- ERROR: both
CREATE FOREIGN TABLE ft_bad (c int OPTIONS (field 'a', json_path '$.a')) SERVER kafka_opts OPTIONS (topic 'x'); -- ERROR: both
CREATE FOREIGN TABLE ft_bad (c int OPTIONS (field '')) SERVER kafka_opts OPTIONS (topic 'x');               -- ERROR: empty field
CREATE FOREIGN TABLE ft_bad (c int OPTIONS (json_path 'a.b')) SERVER kafka_opts OPTIONS (topic 'x');        -- ERROR: no $
CREATE FOREIGN TABLE ft_bad (c int OPTIONS (json_path '$.a.')) SERVER kafka_opts OPTIONS (topic 'x');       -- ERROR: empty step
CREATE FOREIGN TABLE ft_bad (c int OPTIONS (json_path '$.a[x]')) SERVER kafka_opts OPTIONS (topic 'x');     -- ERROR: subscript
CREATE FOREIGN TABLE ft_bad (c int OPTIONS (json_path '$.a[-1]')) SERVER kafka_opts OPTIONS (topic 'x');    -- ERROR: negative
CREATE FOREIGN TABLE ft_bad (c int OPTIONS (json_path '$["a]')) SERVER kafka_opts OPTIONS (topic 'x');      -- ERROR: unterminated
CREATE FOREIGN TABLE ft_bad (c int OPTIONS (json_path '$a')) SERVER kafka_opts OPTIONS (topic 'x');         -- ERROR: no dot
CREATE FOREIGN TABLE ft_bad (c int OPTIONS (colum 'a')) SERVER kafka_opts OPTIONS (topic 'x');              -- ERROR: unknown
CREATE FOREIGN TABLE ft_bad (c int OPTIONS (topic 'a')) SERVER kafka_opts OPTIONS (topic 'x');              -- ERROR: table option

DROP EXTENSION sales_kafka CASCADE;
DROP ROLE regress_sales_kafka_user;
