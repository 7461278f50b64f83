--
-- Pushdown of conditions on Kafka metadata columns, seen in EXPLAIN: every
-- form that narrows the read, the forms that stay local filters, and
-- parameters.  Broker-free: planning never contacts Kafka (estimates come
-- from ANALYZE, here never run).
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
RESET client_min_messages;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE EXTENSION sales_kafka;
CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers '127.0.0.1:1');
-- nothing listens here, and nothing needs to
SET sales_kafka.connect_timeout = '20ms';

CREATE FOREIGN TABLE sale (
  p int OPTIONS (kafka 'partition'),
  o bigint OPTIONS (kafka 'offset'),
  ts timestamptz OPTIONS (kafka 'timestamp'),
  product_name text,
  quantity int
) SERVER kafka OPTIONS (topic 'sales');

-- partitions
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE p = 2;
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE 2 = p;
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE p IN (0, 2);
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE p = ANY (ARRAY[1, 3]::bigint[]);
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE p IN (0, 2) AND p = 2;
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE p = 2::smallint;

-- offsets
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE o = 100;
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE o < 100;
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE o <= 100;
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE o > 100;
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE o >= 100;
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE o BETWEEN 100 AND 199;
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE 100 < o AND 200 >= o;
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE p = 1 AND o >= 10 AND o < 20 AND quantity > 1;

-- timestamps: seek with the lower bound, always re-checked locally
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE ts >= '2024-01-01 00:00:00+00';
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE ts > '2024-01-01 00:00:00+00';
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE ts < '2024-02-01 00:00:00+00';
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE ts <= '2024-02-01 00:00:00+00';
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE ts >= now() - interval '1 hour';

-- not pushed down: local filters only
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE p <> 1;
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE p = 1 OR o = 5;
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE o + 1 > 100;
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE o > 100.5;
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE o > random() * 100;
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE ts = '2024-01-01 00:00:00+00';
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE ts >= '2024-01-01'::date;
EXPLAIN (COSTS OFF) SELECT * FROM sale WHERE quantity = 1;

-- parameters are evaluated when the scan starts
SET plan_cache_mode = force_generic_plan;
PREPARE from_offset(bigint, int) AS SELECT * FROM sale WHERE o > $1 AND p = $2;
EXPLAIN (COSTS OFF) EXECUTE from_offset(5, 1);
DEALLOCATE from_offset;
RESET plan_cache_mode;

-- a join can narrow each rescan: a parameterised nested loop
CREATE TABLE wanted (part int, off bigint);
INSERT INTO wanted VALUES (0, 5), (1, 7);
ANALYZE wanted;
SET enable_hashjoin = off;
SET enable_mergejoin = off;
EXPLAIN (COSTS OFF) SELECT * FROM wanted w JOIN sale s ON s.p = w.part AND s.o = w.off;
RESET enable_hashjoin;
RESET enable_mergejoin;
DROP TABLE wanted;

-- INSERT plans
EXPLAIN (COSTS OFF) INSERT INTO sale (product_name, quantity) VALUES ('x', 1);

DROP EXTENSION sales_kafka CASCADE;
