-- topics() and watermarks() against the test broker (or a real cluster):
-- the fixture topics report exactly the partitions and offsets written.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
RESET client_min_messages;
CREATE EXTENSION sales_kafka;
-- no "brokers" option: the server takes sales_kafka.brokers
CREATE SERVER test_kafka FOREIGN DATA WRAPPER sales_kafka;
CREATE SERVER test_kafka_down FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers '127.0.0.1:1');

SELECT plan(7);

SELECT results_eq(
  format('SELECT partition, low, high FROM sales_kafka.watermarks(%L, %L) ORDER BY partition',
         'test_kafka', current_setting('sk_test.topic_prefix') || 'watermarks3'),
  $$VALUES (0, 0::bigint, 10::bigint), (1, 0::bigint, 10::bigint), (2, 0::bigint, 10::bigint)$$,
  'a topic of 3 partitions with 10 messages each has watermarks 0 and 10 in each');

SELECT results_eq(
  format('SELECT partition, low, high FROM sales_kafka.watermarks(%L, %L)',
         'test_kafka', current_setting('sk_test.topic_prefix') || 'empty1'),
  $$VALUES (0, 0::bigint, 0::bigint)$$,
  'an empty topic has low = high = 0');

SELECT results_eq(
  format($$SELECT topic, partitions FROM sales_kafka.topics('test_kafka')
           WHERE topic IN (%L, %L) ORDER BY topic$$,
         current_setting('sk_test.topic_prefix') || 'empty1',
         current_setting('sk_test.topic_prefix') || 'watermarks3'),
  format($$VALUES (%L, 1), (%L, 3)$$,
         current_setting('sk_test.topic_prefix') || 'empty1',
         current_setting('sk_test.topic_prefix') || 'watermarks3'),
  'topics() lists the fixture topics with their partition counts');

SELECT ok((SELECT bool_and(partitions > 0) FROM sales_kafka.topics('test_kafka')),
          'every topic reports at least one partition');

SELECT is((SELECT array_agg(topic) FROM sales_kafka.topics('test_kafka')),
          (SELECT array_agg(topic) FROM (SELECT topic FROM sales_kafka.topics('test_kafka') ORDER BY topic COLLATE "C") t),
          'topics() returns topics sorted by name');

SET LOCAL sales_kafka.connect_timeout = '100ms';
SELECT throws_ok($$SELECT * FROM sales_kafka.topics('test_kafka_down')$$, 'HV00N',
                 'could not connect to Kafka brokers of server "test_kafka_down"',
                 'an unreachable broker is SQLSTATE HV00N (fdw_unable_to_establish_connection)');
SELECT throws_ok($$SELECT * FROM sales_kafka.watermarks('no_such_server', 'x')$$, '42704', NULL,
                 'a missing server is SQLSTATE 42704');

SELECT * FROM finish();
ROLLBACK;
