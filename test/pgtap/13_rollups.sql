-- The rollups at SQL level: an order whose lines come in different runs
-- counts once, where its first line does; the grains each rollup keeps; the
-- KPI views that were materialized read the rollups; kpi_as_of and
-- kpi_as_of_views on a primary; the rollup worker's settings.  (The worker
-- itself: t/013_rollup_worker.pl.  Everything here is in one transaction,
-- which the worker does not see.)
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
RESET client_min_messages;
CREATE EXTENSION sales_kafka;
SELECT plan(33);

SELECT sales_kafka.create_sales_model('r13', time_zone => 'Europe/Berlin');
INSERT INTO r13.products VALUES ('A', 'Apple', 'Fruit', 'Pome'), ('B', 'Bean', 'Veg', 'Pod');

-- order o1: line 1 now, line 2 in a later run (written later, sold earlier)
INSERT INTO r13.order_lines (order_id, line, sold_at, customer_id, product_id, quantity, unit_price)
VALUES ('o1', 1, '2024-06-01 10:00+02', 'c1', 'A', 2, 1.50),
       ('o2', 1, '2024-06-01 10:05+02', 'c2', 'B', 1, 4.00);
SELECT is(sales_kafka.refresh_rollups('r13'), 2::bigint, 'the first run rolls up two lines');
INSERT INTO r13.order_lines (order_id, line, sold_at, customer_id, product_id, quantity, unit_price)
VALUES ('o1', 2, '2024-05-31 09:00+02', 'c1', 'B', 3, 4.00),
       ('o3', 1, '2024-05-31 09:30+02', 'c2', 'A', 1, 1.50),
       ('o3', 2, '2024-05-31 09:30+02', 'c2', 'B', 1, 4.00);
SELECT is(sales_kafka.refresh_rollups('r13'), 3::bigint, 'the second run rolls up three lines');

SELECT results_eq($$SELECT sales_count, order_count, revenue FROM r13.kpi_totals$$,
                  $$VALUES (5::bigint, 3::bigint, 24.50)$$,
                  'o1, whose lines came in two runs, counts once: 3 orders');
-- o1's order counts on 1 June (its first line written), not on 31 May
SELECT results_eq($$SELECT (bucket AT TIME ZONE 'Europe/Berlin')::date, sales_count, order_count
                      FROM r13.rollup_total WHERE grain = 'day' ORDER BY bucket$$,
                  $$VALUES ('2024-05-31'::date, 3::bigint, 1::bigint), ('2024-06-01', 2, 2)$$,
                  'an order counts in the buckets of its first line written');
SELECT results_eq($$SELECT grain, sum(sales_count)::bigint, sum(order_count)::bigint FROM r13.rollup_total
                     GROUP BY grain ORDER BY grain$$,
                  $$VALUES ('all', 5::bigint, 3::bigint), ('day', 5, 3), ('hour', 5, 3), ('minute', 5, 3), ('month', 5, 3)$$,
                  'rollup_total: every grain adds up');
SELECT results_eq($$SELECT DISTINCT grain FROM r13.rollup_product ORDER BY grain$$,
                  $$VALUES ('all'), ('day'), ('hour'), ('month')$$,
                  'rollup_product keeps no minutes');
SELECT results_eq($$SELECT DISTINCT grain FROM r13.rollup_customer ORDER BY grain$$,
                  $$VALUES ('hour')$$,
                  'rollup_customer keeps hours only');

-- what the rollups hold equals a recomputation
CREATE TEMP VIEW rollup_rows AS
SELECT 'p' AS t, grain, bucket, product_id AS k, sales_count, order_count, quantity, revenue FROM r13.rollup_product
UNION ALL
SELECT 'c', grain, bucket, customer_id, sales_count, order_count, quantity, revenue FROM r13.rollup_customer
UNION ALL
SELECT 't', grain, bucket, NULL, sales_count, order_count, quantity, revenue FROM r13.rollup_total;
CREATE TEMP TABLE incremental AS SELECT * FROM rollup_rows;
SELECT is(sales_kafka.rebuild_rollups('r13'), 5::bigint, 'rebuild_rollups recomputes five lines');
SELECT is_empty($$(TABLE incremental EXCEPT TABLE rollup_rows) UNION ALL (TABLE rollup_rows EXCEPT TABLE incremental)$$,
                'the incremental rollups equal a recomputation, row for row');

-- The sums of src/rollup_sums.c against SQL's: lines in the hour that
-- Berlin's clocks repeat and just before they go forward, a microsecond
-- before an hour, without a customer, with an unknown one, without a
-- profit, a return, and lines 250,000 ingest ids apart.
SELECT sales_kafka.create_sales_model('r13s', time_zone => 'Europe/Berlin');
INSERT INTO r13s.customers (customer_id, segment, country, state, city, region)
VALUES ('c1', 'Consumer', 'DE', 'Berlin', 'Berlin', NULL);
INSERT INTO r13s.order_lines (order_id, line, sold_at, customer_id, product_id, quantity, unit_price, profit)
VALUES ('o1', 1, '2024-10-27 02:30+02', 'c1', 'A', 2, 1.50, 0.40),
       ('o1', 2, '2024-10-27 02:30+01', 'c1', 'B', 1, 4.00, NULL),
       ('o2', 1, '2024-10-27 02:59:59.999999+01', NULL, 'A', 3, 1.50, 0.10),
       ('o3', 1, '2024-03-31 01:59:59.5+01', 'c9', 'B', -1, 4.00, -1.00);
SELECT setval('r13s.order_lines_ingest_id_seq', nextval('r13s.order_lines_ingest_id_seq') + 250000);
INSERT INTO r13s.order_lines (order_id, line, sold_at, customer_id, product_id, quantity, unit_price, profit)
VALUES ('o2', 2, '2023-12-31 23:59:59+01', NULL, 'B', 5, 1000.00, 100.00),
       ('o4', 1, '2024-01-01 00:00+01', 'c1', 'A', 1, 0.01, NULL);
SELECT is(sales_kafka.refresh_rollups('r13s'), 6::bigint, 'six lines, 250,000 ids apart, are rolled up');
CREATE TEMP VIEW sums_expected AS
WITH l AS (
    SELECT l.*, c.segment, c.region, c.country, c.state, c.city,
           NOT EXISTS (SELECT FROM r13s.order_lines e
                        WHERE e.order_id = l.order_id AND e.ingest_id < l.ingest_id) AS opens
      FROM r13s.order_lines l LEFT JOIN r13s.customers c USING (customer_id)),
keyed AS (
    SELECT 'total' AS rollup, g AS grain, NULL::text[] AS k, l.* FROM l, unnest('{minute,hour,day,month,all}'::text[]) g
    UNION ALL
    SELECT 'product', g, ARRAY[product_id], l.* FROM l, unnest('{hour,day,month,all}'::text[]) g
    UNION ALL
    SELECT 'customer', 'hour', ARRAY[customer_id], l.* FROM l
    UNION ALL
    SELECT 'customer_group', g, ARRAY[segment, region, country, state, city], l.*
      FROM l, unnest('{hour,day,month,all}'::text[]) g)
SELECT rollup, grain,
       CASE grain WHEN 'all' THEN timestamptz '-infinity'
                  ELSE date_trunc(grain, sold_at, 'Europe/Berlin') END AS bucket,
       k, count(*) AS sales_count, count(*) FILTER (WHERE opens) AS order_count,
       sum(quantity) AS quantity, sum(revenue) AS revenue, sum(profit) AS profit
  FROM keyed GROUP BY 1, 2, 3, 4;
CREATE TEMP VIEW sums_got AS
SELECT 'total' AS rollup, grain, bucket, NULL::text[] AS k, sales_count, order_count, quantity, revenue, profit
  FROM r13s.rollup_total
UNION ALL
SELECT 'product', grain, bucket, ARRAY[product_id], sales_count, order_count, quantity, revenue, profit
  FROM r13s.rollup_product
UNION ALL
SELECT 'customer', grain, bucket, ARRAY[customer_id], sales_count, order_count, quantity, revenue, profit
  FROM r13s.rollup_customer
UNION ALL
SELECT 'customer_group', grain, bucket, ARRAY[segment, region, country, state, city],
       sales_count, order_count, quantity, revenue, profit
  FROM r13s.rollup_customer_group;
SELECT set_eq('TABLE sums_got', 'TABLE sums_expected',
              'every rollup and grain equals SQL''s sums of the lines, row for row');
SELECT results_eq($$SELECT band, sales_count, quantity, revenue FROM r13s.rollup_price_band ORDER BY band$$,
                  $$SELECT width_bucket(revenue / quantity, '{5,10,20,50,100,200,500,1000}'::numeric[]),
                           count(*), sum(quantity), sum(revenue)
                      FROM r13s.order_lines WHERE quantity > 0 GROUP BY 1 ORDER BY 1$$,
                  'the price bands equal SQL''s');

-- _rollup_sums itself: sums beyond bigint, and what it refuses
DECLARE huge CURSOR FOR
SELECT timestamptz '2024-01-01 12:00+00', 'A'::text, NULL::text, NULL::text, NULL::text, NULL::text,
       NULL::text, NULL::text, 1, 4000000000000000000::bigint, -4000000000000000000::bigint, true, 8
  FROM generate_series(1, 3);
SELECT results_eq($$SELECT revenue, profit FROM sales_kafka._rollup_sums('huge', 'UTC') WHERE rollup = 'total' AND grain = 'all'$$,
                  $$VALUES (120000000000000000.00, -120000000000000000.00)$$,
                  '_rollup_sums: sums of cents beyond bigint are exact');
DECLARE other CURSOR FOR SELECT 1;
SELECT throws_ok($$SELECT * FROM sales_kafka._rollup_sums('other', 'UTC')$$, '42804',
                 'cursor "other" does not return order lines to roll up',
                 '_rollup_sums refuses a cursor of other columns');
SELECT throws_ok($$SELECT * FROM sales_kafka._rollup_sums('nosuch', 'UTC')$$, '34000',
                 'cursor "nosuch" does not exist', '_rollup_sums: a cursor that does not exist');
DECLARE null_time CURSOR FOR
SELECT NULL::timestamptz AS sold_at, 'A'::text, NULL::text, NULL::text, NULL::text, NULL::text,
       NULL::text, NULL::text, 1, 100::bigint, NULL::bigint, true, 1;
SELECT throws_ok($$SELECT * FROM sales_kafka._rollup_sums('null_time', 'UTC')$$, '22004',
                 'null value in column "sold_at" of cursor "null_time"', '_rollup_sums: a line without a time');

-- What maintenance_work_mem holds a call.  Under the default, 3,000 lines
-- of one minute and product (so few buckets) take one call of three
-- fetches; under 1 MB, 3,000 lines with buckets of their own take a call
-- each 1,000 (a fetch), a refresh a statement each (and one more, empty),
-- and the rollups are the same.
CREATE FUNCTION pg_temp.calls(cursor_name text) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
    lines bigint[] := '{}';
    n bigint;
BEGIN
    LOOP
        n := (SELECT sales_count FROM sales_kafka._rollup_sums(cursor_name::refcursor, 'UTC')
               WHERE rollup = 'total' AND grain = 'all');
        lines := lines || n;
        EXIT WHEN n IS NULL;
    END LOOP;
    RETURN lines;
END
$$;
DECLARE few CURSOR FOR
SELECT timestamptz '2024-01-01 00:00+00', 'P', 'C', NULL::text, NULL::text,
       NULL::text, NULL::text, NULL::text, 1, 100::bigint, NULL::bigint, true, 1
  FROM generate_series(1, 3000) i;
SELECT is(pg_temp.calls('few'), ARRAY[3000, NULL]::bigint[],
          '_rollup_sums: a call reads on while its sums fit');
SET LOCAL maintenance_work_mem = '1MB';
DECLARE many CURSOR FOR
SELECT timestamptz '2024-01-01 00:00+00' + i * interval '1 hour', 'P' || i, 'C' || i, NULL::text, NULL::text,
       NULL::text, NULL::text, NULL::text, 1, 100::bigint, NULL::bigint, true, 1
  FROM generate_series(1, 3000) i;
SELECT is(pg_temp.calls('many'), ARRAY[1000, 1000, 1000, NULL]::bigint[],
          '_rollup_sums sums what maintenance_work_mem holds a call, then goes on with the cursor');
INSERT INTO r13s.order_lines (order_id, line, sold_at, customer_id, product_id, quantity, unit_price, profit)
SELECT 'm' || i, 1, timestamptz '2024-01-01 00:00+00' + i * interval '1 hour', 'c' || (i % 7),
       'P' || i, 1 + i % 3, 2.50, CASE WHEN i % 2 = 0 THEN 0.25 END
  FROM generate_series(1, 2500) i;
SET LOCAL track_functions = 'all';
SELECT coalesce((SELECT calls FROM pg_stat_xact_user_functions WHERE funcname = '_rollup_sums'), 0) AS calls_before \gset
SELECT is(sales_kafka.refresh_rollups('r13s'), 2500::bigint, 'a refresh of 2,500 lines under maintenance_work_mem 1 MB');
SELECT is((SELECT calls FROM pg_stat_xact_user_functions WHERE funcname = '_rollup_sums') - :calls_before,
          4::bigint, 'in three statements, and an empty one');
SELECT set_eq('TABLE sums_got', 'TABLE sums_expected',
              'rolled up by three statements: every rollup and grain equals SQL''s sums of the lines');
RESET maintenance_work_mem;
RESET track_functions;

-- A zone named like an abbreviation is the fixed offset date_trunc() and
-- the views make of it (CET: +01 all year), in every grain: a customer's
-- move finds the group's days where the refresh put them.  A model in PST
-- (no TimeZone setting of that name) is refreshed.
SELECT sales_kafka.create_sales_model('r13cet', time_zone => 'CET');
INSERT INTO r13cet.order_lines (order_id, line, sold_at, customer_id, product_id, quantity, unit_price)
VALUES ('o1', 1, '2024-07-01 22:30+00', 'c1', 'A', 1, 10.00);
SELECT sales_kafka.refresh_rollups('r13cet');
INSERT INTO r13cet.customers (customer_id, segment) VALUES ('c1', 'Consumer');
SELECT results_eq($$SELECT grain, bucket, segment, sales_count FROM r13cet.rollup_customer_group
                     WHERE grain IN ('day', 'month') ORDER BY grain, segment$$,
                  $$VALUES ('day', timestamptz '2024-06-30 23:00+00', 'Consumer', 1::bigint),
                           ('day', '2024-06-30 23:00+00', NULL, 0),
                           ('month', '2024-06-30 23:00+00', 'Consumer', 1),
                           ('month', '2024-06-30 23:00+00', NULL, 0)$$,
                  'CET: days and months cut as date_trunc(..., ''CET'') cuts them, where a customer''s move finds them');
SELECT sales_kafka.create_sales_model('r13pst', time_zone => 'PST');
INSERT INTO r13pst.order_lines (order_id, line, sold_at, customer_id, product_id, quantity, unit_price)
VALUES ('o1', 1, '2024-07-01 22:30+00', 'c1', 'A', 1, 10.00);
SELECT is(sales_kafka.refresh_rollups('r13pst'), 1::bigint, 'a model in PST is refreshed');
SELECT results_eq($$SELECT day, sales_count FROM r13pst.kpi_sales_per_day$$,
                  $$VALUES ('2024-07-01'::date, 1::bigint)$$, 'and its day is PST''s');

-- Customers that arrive after their sales, move, and go: their sales move
-- between the customer groups (kept from the customers' hours), as if the
-- groups were looked up when read.
CREATE TEMP VIEW group_expected AS
SELECT g.grain,
       CASE g.grain WHEN 'all' THEN timestamptz '-infinity'
                    ELSE date_trunc(g.grain, l.sold_at, 'Europe/Berlin') END AS bucket,
       c.segment, c.region, c.country, c.state, c.city,
       count(*) AS sales_count, sum(l.revenue) AS revenue
  FROM r13.order_lines l
  LEFT JOIN r13.customers c ON c.customer_id = l.customer_id
 CROSS JOIN (VALUES ('hour'), ('day'), ('month'), ('all')) AS g(grain)
 GROUP BY 1, 2, 3, 4, 5, 6, 7;
CREATE TEMP VIEW group_got AS
SELECT grain, bucket, segment, region, country, state, city, sales_count, revenue
  FROM r13.rollup_customer_group WHERE sales_count > 0;
INSERT INTO r13.customers (customer_id, segment, country, state, city, region)
VALUES ('c1', 'Consumer', 'DE', 'Berlin', 'Berlin', 'East'),
       ('c2', 'Corporate', 'DE', 'Hessen', 'Frankfurt', 'West');
SELECT set_eq('TABLE group_got', 'TABLE group_expected',
              'customers that arrive after their sales: the groups equal a recomputation');
UPDATE r13.customers SET region = 'South', city = 'Darmstadt' WHERE customer_id = 'c2';
SELECT set_eq('TABLE group_got', 'TABLE group_expected',
              'a customer who moves: every grain of the groups equals a recomputation');
DELETE FROM r13.customers WHERE customer_id = 'c1';
SELECT set_eq('TABLE group_got', 'TABLE group_expected',
              'a customer who goes: the groups equal a recomputation');
SELECT results_eq($$SELECT region, revenue, sales_count FROM r13.kpi_sales_by_region$$,
                  $$VALUES (NULL, 15.00, 2::bigint), ('South', 9.50, 3)$$,
                  'kpi_sales_by_region reads the groups');

SELECT results_eq($$SELECT product_id, revenue, revenue_rank FROM r13.kpi_top_products$$,
                  $$VALUES ('B', 20.00, 1::bigint), ('A', 4.50, 2)$$,
                  'kpi_top_products reads the rollups, ranked');
SELECT is_empty($$SELECT FROM pg_class WHERE relnamespace = 'r13'::regnamespace AND relkind = 'm'$$,
                'no KPI is a materialized view');

SELECT results_eq($$SELECT is_standby, replayed_at IS NULL, replay_lag IS NULL FROM r13.kpi_as_of$$,
                  $$VALUES (false, true, true)$$, 'kpi_as_of on a primary: no replay');
SELECT results_eq($$SELECT reads, count(*) FILTER (WHERE as_of IS NULL)
                      FROM r13.kpi_as_of_views GROUP BY reads ORDER BY reads$$,
                  $$VALUES ('rollups', 0::bigint)$$,
                  'kpi_as_of_views: every KPI view reads the rollups (the metric views their summaries), as of a time');

SELECT results_eq($$SELECT current_setting('sales_kafka.rollup_worker'), current_setting('sales_kafka.rollup_min_interval'),
                           current_setting('sales_kafka.rollup_poll_interval')$$,
                  $$VALUES ('on', '200ms', '1s')$$, 'the rollup worker''s settings and their defaults');

SELECT * FROM finish();
ROLLBACK;
