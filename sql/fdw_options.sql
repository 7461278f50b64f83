--
-- Option validation of the sales_kafka foreign data wrapper: every option
-- on every catalog object, valid values first, then each invalid case.
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
DROP ROLE IF EXISTS regress_sales_kafka_user, regress_sales_kafka_files,
  regress_sales_kafka_programs;
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
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("sasl.oauthbearer.config" 'x'); -- ERROR: secret
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers 'a:1', brokers 'b:1'); -- ERROR: twice
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers 'not a host list,,;;'); -- ERROR: not hosts
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers 'a:1,,b:1');       -- ERROR: empty entry
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers 'a:1,');           -- ERROR: empty entry
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers 'a:65536');        -- ERROR: port range
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers 'a:0');            -- ERROR: port range
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers 'a:');             -- ERROR: no port
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers '[::1');           -- ERROR: bracket
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers 'a:1;b:1');        -- ERROR: semicolon
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("fetch.wait.max.ms" '99999999999999'); -- ERROR: wraps
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("fetch.wait.max.ms" '4294967316'); -- ERROR: wraps into range
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("fetch.wait.max.ms" '400000');   -- ERROR: librdkafka's range
ALTER FOREIGN DATA WRAPPER sales_kafka OPTIONS (ADD brokers 'x:1');                          -- ERROR: no FDW options
-- other broker lists librdkafka takes, and a string property that holds a large number
CREATE SERVER kafka_lists FOREIGN DATA WRAPPER sales_kafka
  OPTIONS (brokers ' SASL_SSL://[::1]:9092 , k-1.example.com,10.0.0.1:9093, under_score:1',
           "client.id" '99999999999999');
DROP SERVER kafka_lists;

-- Who may set which librdkafka property, as file_fdw draws it for files and
-- programs: a role with USAGE on the wrapper gets an allow-list; reading
-- server files needs pg_read_server_files, running programs (a Kerberos
-- login runs kinit) pg_execute_server_program, anything else superuser.
GRANT USAGE ON FOREIGN DATA WRAPPER sales_kafka TO regress_sales_kafka_user;
SET ROLE regress_sales_kafka_user;
CREATE SERVER kafka_user FOREIGN DATA WRAPPER sales_kafka
  OPTIONS (brokers 'kafka1:9092', "security.protocol" 'sasl_ssl', "sasl.mechanism" 'SCRAM-SHA-512',
           "ssl.ca.pem" '-----BEGIN CERTIFICATE-----', "ssl.endpoint.identification.algorithm" 'https',
           "compression.type" 'zstd', "linger.ms" '20', "isolation.level" 'read_committed');
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("plugin.library.paths" 'x'); -- ERROR: loads code
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("ssl.providers" 'legacy');  -- ERROR: loads code
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("ssl.engine.location" 'x');  -- ERROR: loads code
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("ssl.engine.id" 'x');        -- ERROR: loads code
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("statistics.interval.ms" '1000'); -- ERROR: not on the list
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("ssl.ca.location" '/etc/ssl/certs/ca-certificates.crt'); -- ERROR: reads a file
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("ssl.ca.location" 'probe'); -- ERROR: reads files
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("ssl.key.location" '/etc/ssl/private/k.pem'); -- ERROR: reads a file
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("ssl.keystore.location" '/x.p12'); -- ERROR: reads a file
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("sasl.kerberos.kinit.cmd" 'x'); -- ERROR: runs a program
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("sasl.kerberos.keytab" '/etc/krb5.keytab'); -- ERROR: runs kinit
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("sasl.kerberos.principal" 'x'); -- ERROR: runs kinit
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("sasl.mechanism" 'GSSAPI');  -- ERROR: runs kinit
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("sasl.mechanisms" 'gssapi'); -- ERROR: runs kinit
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("security.protocol" 'SASL_PLAINTEXT'); -- ERROR: GSSAPI by default
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("security.protocol" ' sasl_ssl'); -- ERROR: librdkafka trims it
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka
  OPTIONS ("security.protocol" 'sasl_ssl', "sasl.mechanism" E'\tGSSAPI');                 -- ERROR: librdkafka trims it
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka
  OPTIONS ("security.protocol" 'sasl_plaintext', "sasl.mechanism" 'OAUTHBEARER',
           "enable.sasl.oauthbearer.unsecure.jwt" 'true');                                  -- ERROR: crashes librdkafka
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("sasl.oauthbearer.token.endpoint.url" 'file:///etc/passwd'); -- ERROR: not HTTP
ALTER SERVER kafka_user OPTIONS (ADD "ssl.crl.location" '/x');                                -- ERROR: reads a file
RESET ROLE;
-- a server with a property its owner may not set can only be changed by
-- one who may
ALTER SERVER kafka_user OPTIONS (ADD "ssl.crl.location" '/etc/ssl/crl.pem');
ALTER SERVER kafka_user OPTIONS (SET "linger.ms" '5');
SET ROLE regress_sales_kafka_user;
ALTER SERVER kafka_user OPTIONS (SET "linger.ms" '10');                                       -- ERROR: reads a file
RESET ROLE;
-- pg_read_server_files may name files, pg_execute_server_program programs
CREATE ROLE regress_sales_kafka_files IN ROLE pg_read_server_files;
CREATE ROLE regress_sales_kafka_programs IN ROLE pg_execute_server_program;
GRANT USAGE ON FOREIGN DATA WRAPPER sales_kafka TO regress_sales_kafka_files, regress_sales_kafka_programs;
SET ROLE regress_sales_kafka_files;
CREATE SERVER kafka_files FOREIGN DATA WRAPPER sales_kafka
  OPTIONS ("ssl.ca.location" '/etc/ssl/certs/ca-certificates.crt', "ssl.key.location" '/etc/x/key.pem');
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("sasl.mechanism" 'GSSAPI'); -- ERROR: runs kinit
RESET ROLE;
SET ROLE regress_sales_kafka_programs;
CREATE SERVER kafka_programs FOREIGN DATA WRAPPER sales_kafka
  OPTIONS ("security.protocol" 'sasl_plaintext', "sasl.kerberos.principal" 'pg@EXAMPLE.COM');
CREATE SERVER kafka_bad FOREIGN DATA WRAPPER sales_kafka OPTIONS ("ssl.providers" 'legacy'); -- ERROR: loads code
RESET ROLE;
-- a superuser may set what loads code or reads files
CREATE SERVER kafka_super FOREIGN DATA WRAPPER sales_kafka
  OPTIONS ("ssl.providers" 'default', "ssl.ca.location" 'probe', "statistics.interval.ms" '0');
-- a server keeps only what its owner may set: given to an owner without
-- the right, it refuses to connect (before any broker is asked)
ALTER SERVER kafka_super OWNER TO regress_sales_kafka_user;
GRANT USAGE ON FOREIGN SERVER kafka_super TO regress_sales_kafka_files;
SET ROLE regress_sales_kafka_files;
SELECT * FROM sales_kafka.topics('kafka_super');                                            -- ERROR: owner may not
RESET ROLE;
DROP SERVER kafka_super, kafka_files, kafka_programs, kafka_user;
REVOKE USAGE ON FOREIGN DATA WRAPPER sales_kafka
  FROM regress_sales_kafka_user, regress_sales_kafka_files, regress_sales_kafka_programs;
DROP ROLE regress_sales_kafka_files, regress_sales_kafka_programs;

-- user mappings: credentials only, never echoed back in a message
CREATE USER MAPPING FOR regress_sales_kafka_user SERVER kafka_opts
  OPTIONS ("sasl.username" 'alice', "sasl.password" 'hunter2');
CREATE USER MAPPING FOR PUBLIC SERVER kafka_opts
  OPTIONS ("ssl.key.password" 'k', "ssl.keystore.password" 'ks',
           "ssl.key.pem" '-----BEGIN PRIVATE KEY-----',
           "sasl.oauthbearer.config" 'principal=admin');
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
CREATE FOREIGN TABLE ft_bad (id int) SERVER kafka_opts OPTIONS (topic 'x', format 'csv', quote ',');      -- ERROR: same as delimiter
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
