-- Reading a topic through a foreign table: every message once, pushdown
-- returns exactly what the same query without pushdown returns, LIMIT,
-- cursors, rescans and joins.  The fixture topic holds m1..m10 in each of
-- partitions 0, 1 and 2.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
RESET client_min_messages;
CREATE EXTENSION sales_kafka;
CREATE SERVER test_kafka FOREIGN DATA WRAPPER sales_kafka;
SELECT format($$CREATE FOREIGN TABLE fixture (
                  p int OPTIONS (kafka 'partition'),
                  o bigint OPTIONS (kafka 'offset'),
                  ts timestamptz OPTIONS (kafka 'timestamp'),
                  k text OPTIONS (kafka 'key'),
                  t text OPTIONS (kafka 'topic'),
                  v text)
                SERVER test_kafka OPTIONS (topic %L, format 'text')$$,
              current_setting('sk_test.topic_prefix') || 'watermarks3') \gexec
SELECT format($$CREATE FOREIGN TABLE empty_topic (o bigint OPTIONS (kafka 'offset'), v text)
                SERVER test_kafka OPTIONS (topic %L, format 'text')$$,
              current_setting('sk_test.topic_prefix') || 'empty1') \gexec
-- the fixture's payloads (m1, m2, ...) are not JSON
SELECT format($$CREATE FOREIGN TABLE fixture_as_json (o bigint OPTIONS (kafka 'offset'), id int)
                SERVER test_kafka OPTIONS (topic %L)$$,
              current_setting('sk_test.topic_prefix') || 'watermarks3') \gexec
SELECT format($$CREATE FOREIGN TABLE fixture_as_json_lenient (
                  o bigint OPTIONS (kafka 'offset'), id int, err text OPTIONS (kafka 'error'))
                SERVER test_kafka OPTIONS (topic %L, strict 'false')$$,
              current_setting('sk_test.topic_prefix') || 'watermarks3') \gexec

SELECT plan(19);

SELECT is((SELECT count(*) FROM fixture), 30::bigint, 'a scan reads every message once');
SELECT is((SELECT count(DISTINCT (p, o)) FROM fixture), 30::bigint,
          'no (partition, offset) appears twice');
SELECT results_eq($$SELECT p, min(o), max(o), count(*) FROM fixture GROUP BY p ORDER BY p$$,
                  $$VALUES (0, 0::bigint, 9::bigint, 10::bigint), (1, 0::bigint, 9::bigint, 10::bigint),
                           (2, 0::bigint, 9::bigint, 10::bigint)$$,
                  'each partition yields offsets 0 to 9');
SELECT is((SELECT string_agg(v, ',' ORDER BY o) FROM fixture WHERE p = 1),
          'm1,m2,m3,m4,m5,m6,m7,m8,m9,m10', 'payloads arrive in offset order within a partition');
SELECT is((SELECT count(*) FROM fixture WHERE t = current_setting('sk_test.topic_prefix') || 'watermarks3'
                                          AND ts IS NOT NULL AND k IS NULL),
          30::bigint, 'topic and timestamp are filled, the null key is NULL');
SELECT is((SELECT count(*) FROM empty_topic), 0::bigint, 'an empty topic ends at once with no rows');
SELECT throws_ok($$SELECT * FROM fixture_as_json$$, '22P02', NULL,
                 'a strict scan of a message that is not JSON is an error (22P02)');
SELECT is((SELECT count(*) FROM fixture_as_json_lenient WHERE id IS NULL AND o IS NOT NULL AND err IS NOT NULL),
          30::bigint, 'a lenient scan returns every message, with its metadata and the decoding error');

-- pushdown against the same conditions hidden from pushdown ("+ 0")
SELECT results_eq($$SELECT p, o, v FROM fixture WHERE p = 1 AND o BETWEEN 3 AND 5 ORDER BY p, o$$,
                  $$SELECT p, o, v FROM fixture WHERE p + 0 = 1 AND o + 0 BETWEEN 3 AND 5 ORDER BY p, o$$,
                  'partition = and offset BETWEEN return the same rows as without pushdown');
SELECT results_eq($$SELECT p, o FROM fixture WHERE p IN (0, 2) AND o > 7 ORDER BY p, o$$,
                  $$SELECT p, o FROM fixture WHERE p + 0 IN (0, 2) AND o + 0 > 7 ORDER BY p, o$$,
                  'partition IN and offset > return the same rows as without pushdown');
SELECT results_eq($$SELECT p, o FROM fixture WHERE o < 2 ORDER BY p, o$$,
                  $$SELECT p, o FROM fixture WHERE o + 0 < 2 ORDER BY p, o$$,
                  'offset < returns the same rows as without pushdown');
SELECT results_eq($$SELECT p, o FROM fixture WHERE o = 9 ORDER BY p$$,
                  $$VALUES (0, 9::bigint), (1, 9::bigint), (2, 9::bigint)$$,
                  'offset = picks one message per partition');
SELECT is((SELECT count(*) FROM fixture WHERE o >= 100), 0::bigint,
          'offsets beyond the high watermark read nothing');
SELECT is((SELECT count(*) FROM fixture WHERE p = 7), 0::bigint,
          'a partition that does not exist reads nothing');
SELECT is((SELECT count(*) FROM fixture WHERE p = 1 AND p = 2), 0::bigint,
          'contradictory partitions read nothing');

PREPARE by_offset(bigint) AS SELECT count(*) FROM fixture WHERE o >= $1;
SELECT results_eq('EXECUTE by_offset(8)', $$VALUES (6::bigint)$$,
                  'a parameter ($1) is pushed down and evaluated at execution');

SELECT is((SELECT count(*) FROM (SELECT * FROM fixture LIMIT 4) s), 4::bigint,
          'LIMIT stops the scan early');

DECLARE c CURSOR FOR SELECT p, o FROM fixture WHERE p = 0 ORDER BY o;
FETCH 3 FROM c;
SELECT results_eq($$FETCH 2 FROM c$$, $$VALUES (0, 3::bigint), (0, 4::bigint)$$,
                  'a cursor resumes where it stopped');
CLOSE c;

-- each outer row rescans the foreign table with new partition and offset
CREATE TEMP TABLE wanted (part int, off bigint);
INSERT INTO wanted VALUES (0, 1), (1, 5), (2, 9), (2, 42);
ANALYZE wanted;
SET LOCAL enable_hashjoin = off;
SET LOCAL enable_mergejoin = off;
SELECT results_eq($$SELECT w.part, w.off, f.v FROM wanted w JOIN fixture f ON f.p = w.part AND f.o = w.off
                    ORDER BY 1, 2$$,
                  $$VALUES (0, 1::bigint, 'm2'), (1, 5::bigint, 'm6'), (2, 9::bigint, 'm10')$$,
                  'a parameterised join rescans with each outer row''s partition and offset');

SELECT * FROM finish();
ROLLBACK;
