/* sales_kafka--1.1--1.2.sql: the sales model and its KPIs */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION sales_kafka UPDATE TO '1.2'" to load this file. \quit

-------------------------------------------------------------------------------
-- A sales model lives in a schema its user names and owns: tables, rollups,
-- star views and KPI views are created by create_sales_model() as the
-- caller, so they are not members of the extension and DROP EXTENSION
-- never drops sales data.  The functions below are SECURITY INVOKER: they
-- do nothing their caller could not do by hand.
-------------------------------------------------------------------------------

-- The role BI tools log in as (or are granted): it may read the KPI views of
-- every model, and nothing else of it.  Roles are global: another database
-- of the cluster may have made it already.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles
                    WHERE rolname = 'sales_kafka_reader') THEN
        CREATE ROLE sales_kafka_reader NOLOGIN;
        COMMENT ON ROLE sales_kafka_reader IS
        'may read the KPI views of every sales_kafka sales model, and nothing else of them';
    END IF;
END
$$;

-- Called by the rollups: see src/kpi.c
CREATE FUNCTION sales_kafka._wait_for_writers(fact_table regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'sk_wait_for_writers'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION sales_kafka._wait_for_writers(regclass) IS
'internal: waits until every transaction writing into the table (or its partitions) when called has ended';

-------------------------------------------------------------------------------
-- The model
-------------------------------------------------------------------------------

-- How an upsert into a rollup adds the sums of new lines to a bucket's
-- (a NULL profit is no profit, not an unknown one that hides the others).
CREATE FUNCTION sales_kafka._add_sums()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'sales_count = r.sales_count + excluded.sales_count,
           order_count = r.order_count + excluded.order_count,
           quantity = r.quantity + excluded.quantity,
           revenue = r.revenue + excluded.revenue,
           profit = coalesce(r.profit + excluded.profit, r.profit, excluded.profit)';

COMMENT ON FUNCTION sales_kafka._add_sums() IS
'internal: the SET list with which a rollup upsert adds new sums to a bucket';

-- The model's DDL, with @s for the schema and @tz for its time zone.
CREATE FUNCTION sales_kafka._model_ddl()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN replace(replace(replace(replace($ddl$
CREATE TABLE @s.kpi_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    time_zone text NOT NULL,
    rolled_up_through bigint NOT NULL DEFAULT 0,
    rolled_up_rows bigint NOT NULL DEFAULT 0,
    rolled_up_at timestamptz,
    covered_offsets jsonb NOT NULL DEFAULT '[]',
    views_refreshed_at timestamptz
);
INSERT INTO @s.kpi_state (time_zone) VALUES (@tz);
-- one row: without statistics the planner assumes ~650, which makes every
-- view that joins it plan badly (and JIT-compile)
ANALYZE @s.kpi_state;

CREATE TABLE @s.customers (
    customer_id text PRIMARY KEY,
    customer_name text,
    segment text,
    country text,
    city text,
    state text,
    postal_code text,
    region text
);

CREATE TABLE @s.products (
    product_id text PRIMARY KEY,
    product_name text,
    category text,
    sub_category text
);

CREATE TABLE @s.orders (
    order_id text PRIMARY KEY,
    customer_id text,
    sold_at timestamptz,
    ship_date date,
    ship_mode text,
    order_priority text
);

-- ingest_id orders the rows for the rollups; its sequence must keep CACHE 1
-- (values handed out in time order, see refresh_rollups)
CREATE SEQUENCE @s.order_lines_ingest_id_seq CACHE 1;
CREATE TABLE @s.order_lines (
    order_id text NOT NULL DEFAULT gen_random_uuid()::text,
    line integer NOT NULL DEFAULT 1,
    sold_at timestamptz NOT NULL,
    customer_id text,
    product_id text NOT NULL,
    quantity integer NOT NULL DEFAULT 1,
    unit_price numeric(12,2),
    discount numeric(5,4) DEFAULT 0 CHECK (discount BETWEEN 0 AND 1),
    stated_revenue numeric(14,2),
    revenue numeric(14,2) NOT NULL GENERATED ALWAYS AS
        (coalesce(stated_revenue,
                  round(quantity * unit_price * (1 - coalesce(discount, 0)), 2))) STORED,
    profit numeric(14,2),
    ship_date date,
    ship_mode text,
    order_priority text,
    ingest_id bigint NOT NULL DEFAULT nextval('@s.order_lines_ingest_id_seq'),
    PRIMARY KEY (order_id, line @pk_extra)
) @partition_by;
ALTER SEQUENCE @s.order_lines_ingest_id_seq OWNED BY @s.order_lines.ingest_id;
CREATE INDEX ON @s.order_lines (sold_at);
CREATE INDEX ON @s.order_lines (ingest_id);

CREATE TABLE @s.metrics (
    metric_id text NOT NULL,
    measured_at timestamptz NOT NULL,
    stock_price numeric(14,4),
    sales_trend numeric,
    PRIMARY KEY (metric_id, measured_at)
);

-- Rollups: sums per time bucket, kept by refresh_rollups(); grain 'all'
-- has one bucket, -infinity.
CREATE TABLE @s.rollup_total (
    grain text NOT NULL CHECK (grain IN ('minute', 'hour', 'day', 'month', 'all')),
    bucket timestamptz NOT NULL,
    sales_count bigint NOT NULL,
    order_count bigint NOT NULL,
    quantity bigint NOT NULL,
    revenue numeric NOT NULL,
    profit numeric,
    PRIMARY KEY (grain, bucket)
);
CREATE TABLE @s.rollup_product (LIKE @s.rollup_total INCLUDING CONSTRAINTS,
    product_id text NOT NULL,
    PRIMARY KEY (grain, bucket, product_id));
CREATE TABLE @s.rollup_customer (LIKE @s.rollup_total INCLUDING CONSTRAINTS,
    customer_id text,
    UNIQUE NULLS NOT DISTINCT (grain, bucket, customer_id));
-- Sums per customer group (the customers' segment, region, country, state
-- and city as they are now) and time bucket: kpi_customer_sales.  Kept by
-- refresh_rollups, and by customers_moved() when customers change.
CREATE TABLE @s.rollup_customer_group (LIKE @s.rollup_total INCLUDING CONSTRAINTS,
    segment text, region text, country text, state text, city text,
    UNIQUE NULLS NOT DISTINCT (grain, bucket, segment, region, country, state, city));
-- a customer's rows, for customers_moved()
CREATE INDEX ON @s.rollup_customer (customer_id);

-- When customers change (or arrive after their sales, or go), their sales
-- move from their old group to the new one: the same as looking their
-- attributes up when read.
CREATE FUNCTION @s.customers_moved() RETURNS trigger
LANGUAGE plpgsql AS $f$
DECLARE
    none text := '(SELECT * FROM @s.customers WHERE false)';
BEGIN
    -- one at a time with refresh_rollups, which holds this row while it adds lines
    PERFORM FROM @s.kpi_state FOR UPDATE;
    EXECUTE format($m$
WITH moved AS (
    SELECT coalesce(o.customer_id, n.customer_id) AS customer_id,
           o.segment AS o_segment, o.region AS o_region, o.country AS o_country, o.state AS o_state, o.city AS o_city,
           n.segment AS n_segment, n.region AS n_region, n.country AS n_country, n.state AS n_state, n.city AS n_city
      FROM %s o FULL JOIN %s n ON n.customer_id = o.customer_id
     WHERE (o.segment, o.region, o.country, o.state, o.city)
           IS DISTINCT FROM (n.segment, n.region, n.country, n.state, n.city)),
shift AS (
    SELECT r.grain, r.bucket, g.segment, g.region, g.country, g.state, g.city,
           g.sign * r.sales_count AS sales_count, g.sign * r.order_count AS order_count,
           g.sign * r.quantity AS quantity, g.sign * r.revenue AS revenue, g.sign * r.profit AS profit
      FROM moved m
      JOIN @s.rollup_customer r ON r.customer_id = m.customer_id
     CROSS JOIN LATERAL (VALUES (-1, m.o_segment, m.o_region, m.o_country, m.o_state, m.o_city),
                                (1, m.n_segment, m.n_region, m.n_country, m.n_state, m.n_city))
                        AS g(sign, segment, region, country, state, city))
INSERT INTO @s.rollup_customer_group AS r
SELECT grain, bucket, sum(sales_count), sum(order_count), sum(quantity), sum(revenue), sum(profit),
       segment, region, country, state, city
  FROM shift
 GROUP BY grain, bucket, segment, region, country, state, city
ON CONFLICT (grain, bucket, segment, region, country, state, city) DO UPDATE
   SET @add_sums@$m$,
        CASE TG_OP WHEN 'INSERT' THEN none ELSE 'old_rows' END,
        CASE TG_OP WHEN 'DELETE' THEN none ELSE 'new_rows' END);
    RETURN NULL;
END
$f$;
CREATE TRIGGER customers_inserted AFTER INSERT ON @s.customers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION @s.customers_moved();
CREATE TRIGGER customers_updated AFTER UPDATE ON @s.customers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION @s.customers_moved();
CREATE TRIGGER customers_deleted AFTER DELETE ON @s.customers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION @s.customers_moved();

-- sales per band of price paid per unit (after discount), all time
CREATE TABLE @s.rollup_price_band (
    band integer PRIMARY KEY,
    sales_count bigint NOT NULL,
    quantity bigint NOT NULL,
    revenue numeric NOT NULL
);

-------------------------------------------------------------------------------
-- The star schema
-------------------------------------------------------------------------------

CREATE VIEW @s.time_dim AS
SELECT d::date AS date_key,
       extract(year FROM d)::integer AS year,
       extract(quarter FROM d)::integer AS quarter,
       extract(month FROM d)::integer AS month,
       trim(to_char(d, 'Month')) AS month_name,
       extract(week FROM d)::integer AS iso_week,
       extract(isodow FROM d)::integer AS iso_day_of_week,
       trim(to_char(d, 'Day')) AS day_name,
       extract(isodow FROM d) >= 6 AS weekend
  FROM @s.kpi_state s,
       generate_series(date_trunc('day', (SELECT min(sold_at) FROM @s.order_lines) AT TIME ZONE s.time_zone),
                       date_trunc('day', (SELECT max(sold_at) FROM @s.order_lines) AT TIME ZONE s.time_zone),
                       interval '1 day') AS g(d);

CREATE VIEW @s.customers_dim AS
SELECT customer_id, customer_name, segment, country, city, state, postal_code, region
  FROM @s.customers;

-- products seen in order lines but not (yet) in products are listed
-- without attributes, so that joins keep their lines
CREATE VIEW @s.products_dim AS
SELECT product_id, product_name, category, sub_category
  FROM @s.products
UNION ALL
SELECT r.product_id, NULL, NULL, NULL
  FROM @s.rollup_product r
 WHERE r.grain = 'all'
   AND NOT EXISTS (SELECT FROM @s.products p WHERE p.product_id = r.product_id);

CREATE VIEW @s.sales_facts AS
SELECT l.order_id,
       l.line,
       (l.sold_at AT TIME ZONE s.time_zone)::date AS date_key,
       l.sold_at,
       coalesce(l.customer_id, o.customer_id) AS customer_id,
       l.product_id,
       l.quantity,
       l.unit_price,
       l.discount,
       l.revenue,
       l.profit,
       coalesce(l.ship_date, o.ship_date) AS ship_date,
       coalesce(l.ship_mode, o.ship_mode) AS ship_mode,
       coalesce(l.order_priority, o.order_priority) AS order_priority
  FROM @s.order_lines l
  CROSS JOIN @s.kpi_state s
  LEFT JOIN @s.orders o ON o.order_id = l.order_id;

-------------------------------------------------------------------------------
-- KPIs kept current by the rollups
-------------------------------------------------------------------------------

CREATE VIEW @s.kpi_totals AS
SELECT coalesce(t.revenue, 0) AS revenue,
       t.profit,
       coalesce(t.sales_count, 0) AS sales_count,
       coalesce(t.order_count, 0) AS order_count,
       coalesce(t.quantity, 0) AS quantity,
       round(t.revenue / nullif(t.order_count, 0), 2) AS average_order_value
  FROM (SELECT) AS one
  LEFT JOIN @s.rollup_total t ON t.grain = 'all';

CREATE VIEW @s.kpi_today AS
SELECT (now() AT TIME ZONE s.time_zone)::date AS day,
       coalesce(t.revenue, 0) AS revenue,
       t.profit,
       coalesce(t.sales_count, 0) AS sales_count,
       coalesce(t.order_count, 0) AS order_count,
       coalesce(t.quantity, 0) AS quantity,
       round(t.revenue / nullif(t.order_count, 0), 2) AS average_order_value
  FROM @s.kpi_state s
  LEFT JOIN @s.rollup_total t
         ON t.grain = 'day' AND t.bucket = date_trunc('day', now(), s.time_zone);

-- kpi_sales_per_minute, _hour, _day, _month
@per_period_views@

-- kpi_product_sales and kpi_customer_sales are cubes: tens of thousands of
-- rows a month, which a reader filters, groups and orders itself.  They
-- have no ORDER BY of their own, which every query wrapping them would pay
-- for: sorting 18,000 rows of kpi_customer_sales by its six keys took 17 ms
-- of a 20 ms dashboard query.
--
-- Products' attributes are looked up when read: a product that arrives
-- after its sales, or changes category, counts where it is now.
CREATE VIEW @s.kpi_product_sales AS
SELECT r.grain, r.bucket AS period_start, r.product_id,
       coalesce(p.product_name, r.product_id) AS product_name,
       p.category, p.sub_category,
       r.revenue, r.profit, r.sales_count, r.quantity
  FROM @s.rollup_product r
  LEFT JOIN @s.products p ON p.product_id = r.product_id
 WHERE r.grain <> 'all';

-- (a group whose customers all moved away keeps a row of zeros)
CREATE VIEW @s.kpi_customer_sales AS
SELECT r.grain, r.bucket AS period_start,
       r.segment, r.region, r.country, r.state, r.city,
       r.revenue, r.profit, r.sales_count, r.order_count, r.quantity
  FROM @s.rollup_customer_group r
 WHERE r.grain <> 'all' AND r.sales_count > 0;

-- kpi_sales_by_category, _sub_category, _segment, _region, _state, _city
@by_attribute_views@

CREATE VIEW @s.kpi_today_top_products AS
SELECT rank() OVER (ORDER BY r.revenue DESC) AS rank,
       r.product_id,
       coalesce(p.product_name, r.product_id) AS product_name,
       p.category,
       r.revenue, r.sales_count, r.quantity
  FROM @s.kpi_state s
  JOIN @s.rollup_product r
    ON r.grain = 'day' AND r.bucket = date_trunc('day', now(), s.time_zone)
  LEFT JOIN @s.products p ON p.product_id = r.product_id
 ORDER BY r.revenue DESC, r.product_id
 LIMIT 5;

CREATE VIEW @s.kpi_today_by_category AS
SELECT p.category,
       sum(r.revenue) AS revenue, sum(r.sales_count)::bigint AS sales_count,
       sum(r.quantity)::bigint AS quantity,
       round(100 * sum(r.revenue) / nullif(sum(sum(r.revenue)) OVER (), 0), 2) AS revenue_share_pct
  FROM @s.kpi_state s
  JOIN @s.rollup_product r
    ON r.grain = 'day' AND r.bucket = date_trunc('day', now(), s.time_zone)
  LEFT JOIN @s.products p ON p.product_id = r.product_id
 GROUP BY p.category
 ORDER BY revenue DESC, p.category;

-- fixed-interval summaries of the minute-level metric streams
-- kpi_metrics_10min, kpi_metrics_20min
@metric_views@

-------------------------------------------------------------------------------
-- Heavier KPIs: materialized views refreshed CONCURRENTLY by refresh_kpis()
-------------------------------------------------------------------------------

CREATE MATERIALIZED VIEW @s.mv_top_products AS
SELECT r.product_id,
       coalesce(p.product_name, r.product_id) AS product_name,
       p.category, p.sub_category,
       r.revenue, r.profit, r.sales_count, r.quantity,
       rank() OVER (ORDER BY r.revenue DESC) AS revenue_rank,
       rank() OVER (ORDER BY r.quantity DESC) AS quantity_rank
  FROM @s.rollup_product r
  LEFT JOIN @s.products p ON p.product_id = r.product_id
 WHERE r.grain = 'all';
CREATE UNIQUE INDEX ON @s.mv_top_products (product_id);

-- price paid per unit (after discount), in fixed bands
CREATE MATERIALIZED VIEW @s.mv_price_distribution AS
SELECT b.price_from, b.price_to,
       CASE WHEN b.price_to IS NULL THEN b.price_from || ' and more'
            ELSE b.price_from || ' to ' || b.price_to END AS price_band,
       coalesce(l.sales_count, 0) AS sales_count,
       coalesce(l.quantity, 0) AS quantity,
       coalesce(l.revenue, 0) AS revenue,
       round(100.0 * coalesce(l.sales_count, 0) / nullif(sum(l.sales_count) OVER (), 0), 2) AS sales_share_pct
  FROM (VALUES (0, 0::numeric, 5::numeric), (1, 5, 10), (2, 10, 20), (3, 20, 50), (4, 50, 100),
               (5, 100, 200), (6, 200, 500), (7, 500, 1000), (8, 1000, NULL)) AS b(band, price_from, price_to)
  LEFT JOIN @s.rollup_price_band AS l ON l.band = b.band;
CREATE UNIQUE INDEX ON @s.mv_price_distribution (price_from);

CREATE MATERIALIZED VIEW @s.mv_growth_yoy AS
SELECT (m.bucket AT TIME ZONE s.time_zone)::date AS month,
       m.revenue,
       y.revenue AS revenue_year_before,
       round(100 * (m.revenue - y.revenue) / nullif(y.revenue, 0), 2) AS revenue_growth_pct,
       m.order_count,
       y.order_count AS order_count_year_before,
       round(100.0 * (m.order_count - y.order_count) / nullif(y.order_count, 0), 2) AS order_growth_pct
  FROM @s.kpi_state s
  JOIN @s.rollup_total m ON m.grain = 'month'
  LEFT JOIN @s.rollup_total y
         ON y.grain = 'month'
        AND y.bucket = (((m.bucket AT TIME ZONE s.time_zone) - interval '1 year') AT TIME ZONE s.time_zone);
CREATE UNIQUE INDEX ON @s.mv_growth_yoy (month);

CREATE VIEW @s.kpi_top_products AS
SELECT * FROM @s.mv_top_products ORDER BY revenue_rank, product_id;
CREATE VIEW @s.kpi_price_distribution AS
SELECT * FROM @s.mv_price_distribution ORDER BY price_from;
CREATE VIEW @s.kpi_growth_yoy AS
SELECT * FROM @s.mv_growth_yoy ORDER BY month;

-------------------------------------------------------------------------------
-- As of: when the KPIs were last brought up to date, and what they cover
-------------------------------------------------------------------------------

CREATE VIEW @s.kpi_as_of AS
SELECT s.rolled_up_at,
       s.views_refreshed_at,
       s.rolled_up_rows,
       (SELECT count(*) FROM @s.order_lines l
         WHERE l.ingest_id > s.rolled_up_through
           AND l.ingest_id <= (SELECT max(ingest_id) FROM @s.order_lines)) AS rows_waiting,
       (SELECT max(sold_at) FROM @s.order_lines) AS last_sale_at,
       s.time_zone,
       s.covered_offsets
  FROM @s.kpi_state s;

CREATE VIEW @s.kpi_as_of_partitions AS
SELECT c.pipeline, c.topic, c.partition,
       c."offset" AS covered_offset,
       p.committed_offset,
       p.high_watermark,
       p.updated_at AS committed_at
  FROM @s.kpi_state s,
       jsonb_to_recordset(s.covered_offsets)
           AS c(pipeline text, topic text, partition integer, "offset" bigint)
  LEFT JOIN sales_kafka.pipeline_partitions p
         ON p.pipeline = c.pipeline AND p.topic = c.topic AND p.partition = c.partition
 ORDER BY c.pipeline, c.topic, c.partition;
$ddl$,
    -- views alike but for their grain, grouping or bucket: one template each
    '@per_period_views@',
    (SELECT string_agg(format($v$CREATE VIEW @s.kpi_sales_per_%1$s AS
SELECT bucket AS period_start, revenue, profit, sales_count, order_count, quantity,
       round(revenue / nullif(order_count, 0), 2) AS average_order_value
  FROM @s.rollup_total WHERE grain = %1$L ORDER BY bucket;$v$, grain), E'\n' ORDER BY ord)
       FROM unnest('{minute,hour,day,month}'::text[]) WITH ORDINALITY AS g(grain, ord))),
    '@by_attribute_views@',
    (SELECT string_agg(format($v$CREATE VIEW @s.kpi_sales_by_%1$s AS
SELECT %2$s,
       sum(r.revenue) AS revenue, sum(r.profit) AS profit,
       sum(r.sales_count)::bigint AS sales_count,%4$s
       sum(r.quantity)::bigint AS quantity,
       round(100 * sum(r.revenue) / nullif(sum(sum(r.revenue)) OVER (), 0), 2) AS revenue_share_pct
  FROM @s.rollup_%3$s r
  LEFT JOIN @s.%3$ss d ON d.%3$s_id = r.%3$s_id
 WHERE r.grain = 'all'
 GROUP BY %2$s
 ORDER BY revenue DESC, %2$s;$v$,
                              name, columns, dimension,
                              -- an order's lines share their customer, not their product
                              CASE dimension WHEN 'customer'
                                   THEN ' sum(r.order_count)::bigint AS order_count,' ELSE '' END),
                       E'\n' ORDER BY name)
       FROM (VALUES ('category', 'd.category', 'product'),
                    ('sub_category', 'd.category, d.sub_category', 'product'),
                    ('segment', 'd.segment', 'customer'),
                    ('region', 'd.region', 'customer'),
                    ('state', 'd.country, d.state', 'customer'),
                    ('city', 'd.country, d.state, d.city', 'customer')) AS v(name, columns, dimension))),
    '@metric_views@',
    (SELECT string_agg(format($v$CREATE VIEW @s.kpi_metrics_%1$smin AS
SELECT metric_id,
       date_bin('%1$s minutes', measured_at, (timestamp '2000-01-01' AT TIME ZONE @tz)) AS period_start,
       date_bin('%1$s minutes', measured_at, (timestamp '2000-01-01' AT TIME ZONE @tz)) + interval '%1$s minutes' AS period_end,
       count(*) AS samples,
       (array_agg(stock_price ORDER BY measured_at))[1] AS stock_price_open,
       (array_agg(stock_price ORDER BY measured_at DESC))[1] AS stock_price_close,
       min(stock_price) AS stock_price_low,
       max(stock_price) AS stock_price_high,
       round(avg(stock_price), 4) AS stock_price_average,
       avg(sales_trend) AS sales_trend_average
  FROM @s.metrics
 GROUP BY 1, 2
 ORDER BY 1, 2;
-- a filter on period_start reads only its buckets, not the whole table
CREATE INDEX ON @s.metrics (date_bin('%1$s minutes', measured_at, (timestamp '2000-01-01' AT TIME ZONE @tz)));$v$, minutes), E'\n' ORDER BY minutes)
       FROM unnest('{10,20}'::int[]) AS m(minutes))),
    '@add_sums@', sales_kafka._add_sums());

COMMENT ON FUNCTION sales_kafka._model_ddl() IS
'internal: the statements create_sales_model runs, with @s for the schema';

-- One comment per column name, shared by every object of a model that has
-- such a column; create_sales_model refuses a column without one.
CREATE FUNCTION sales_kafka._model_comments(OUT object text, OUT column_name text, OUT comment text)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
SELECT * FROM (VALUES
    -- objects
    ('kpi_state', NULL, 'state of the KPIs: time zone, rollup progress, covered offsets (one row)'),
    ('customers', NULL, 'customer dimension, upserted from the customers topic'),
    ('products', NULL, 'product dimension, upserted from the products topic'),
    ('orders', NULL, 'orders, upserted from the orders topic'),
    ('order_lines', NULL, 'sales facts: one row per order line, appended by the pipelines'),
    ('order_lines_ingest_id_seq', NULL, 'numbers order lines as they are written (CACHE 1: the rollups depend on it)'),
    ('metrics', NULL, 'minute-level metric streams'),
    ('rollup_total', NULL, 'sums of all sales per time bucket, kept by sales_kafka.refresh_rollups'),
    ('rollup_product', NULL, 'sums of sales per product and time bucket, kept by sales_kafka.refresh_rollups'),
    ('rollup_customer', NULL, 'sums of sales per customer and time bucket, kept by sales_kafka.refresh_rollups'),
    ('rollup_customer_group', NULL, 'sums of sales per customer group (segment, region, country, state, city as they are now) and time bucket, kept by sales_kafka.refresh_rollups'),
    ('rollup_price_band', NULL, 'sums of sales per band of price paid per unit, kept by sales_kafka.refresh_rollups'),
    ('time_dim', NULL, 'star schema: one row per day from the first to the last sale'),
    ('customers_dim', NULL, 'star schema: customers'),
    ('products_dim', NULL, 'star schema: products, including products sold but not known yet (without attributes)'),
    ('sales_facts', NULL, 'star schema: order lines with their customer and shipping from the order'),
    ('kpi_totals', NULL, 'KPI: total revenue, profit, sales, orders, quantity and average order value'),
    ('kpi_today', NULL, 'KPI: today''s revenue, sales, orders and average order value, in the model''s time zone'),
    ('kpi_sales_per_minute', NULL, 'KPI: revenue and quantity per minute'),
    ('kpi_sales_per_hour', NULL, 'KPI: revenue and quantity per hour'),
    ('kpi_sales_per_day', NULL, 'KPI: revenue and quantity per day'),
    ('kpi_sales_per_month', NULL, 'KPI: revenue and quantity per month'),
    ('kpi_product_sales', NULL, 'KPI: revenue and quantity per product per minute, hour, day and month, with the product''s current category; unordered (a cube: filter, group and order it in the query)'),
    ('kpi_customer_sales', NULL, 'KPI: revenue per customer segment, region, state and city per hour, day and month; unordered (a cube: filter, group and order it in the query)'),
    ('kpi_sales_by_category', NULL, 'KPI: revenue per product category, all time'),
    ('kpi_sales_by_sub_category', NULL, 'KPI: revenue per product sub-category, all time'),
    ('kpi_sales_by_segment', NULL, 'KPI: revenue per customer segment, all time'),
    ('kpi_sales_by_region', NULL, 'KPI: revenue per region, all time'),
    ('kpi_sales_by_state', NULL, 'KPI: revenue per state, all time'),
    ('kpi_sales_by_city', NULL, 'KPI: revenue per city, all time'),
    ('kpi_today_top_products', NULL, 'KPI: today''s five products with the most revenue'),
    ('kpi_today_by_category', NULL, 'KPI: today''s revenue per category'),
    ('kpi_metrics_10min', NULL, 'KPI: metric streams summarised in 10-minute buckets'),
    ('kpi_metrics_20min', NULL, 'KPI: metric streams summarised in 20-minute buckets'),
    ('mv_top_products', NULL, 'materialized for kpi_top_products; refreshed by sales_kafka.refresh_kpis'),
    ('mv_price_distribution', NULL, 'materialized for kpi_price_distribution; refreshed by sales_kafka.refresh_kpis'),
    ('mv_growth_yoy', NULL, 'materialized for kpi_growth_yoy; refreshed by sales_kafka.refresh_kpis'),
    ('kpi_top_products', NULL, 'KPI: products ranked by revenue and by quantity, all time (as of the last refresh_kpis)'),
    ('kpi_price_distribution', NULL, 'KPI: sales per band of price paid per unit (as of the last refresh_kpis)'),
    ('kpi_growth_yoy', NULL, 'KPI: revenue and orders per month against the same month a year before (as of the last refresh_kpis)'),
    ('kpi_as_of', NULL, 'KPI: when the KPIs were last brought up to date and the Kafka offsets they cover'),
    ('kpi_as_of_partitions', NULL, 'KPI: per pipeline partition, the offset the KPIs cover and the offset committed now'),
    -- columns
    (NULL, 'singleton', 'always true: the table has one row'),
    (NULL, 'time_zone', 'time zone in which days, hours and months are cut'),
    (NULL, 'rolled_up_through', 'ingest_id of the last order line in the rollups'),
    (NULL, 'rolled_up_rows', 'order lines in the rollups'),
    (NULL, 'rolled_up_at', 'when the rollups were last brought up to date'),
    (NULL, 'covered_offsets', 'per pipeline into order_lines, topic and partition: every message before this offset is in the rollups'),
    (NULL, 'views_refreshed_at', 'when the materialized KPIs were last refreshed'),
    (NULL, 'customer_id', 'customer identifier'),
    (NULL, 'customer_name', 'customer''s name'),
    (NULL, 'segment', 'customer segment (e.g. Consumer, Corporate, Home Office)'),
    (NULL, 'country', 'customer''s country'),
    (NULL, 'city', 'customer''s city'),
    (NULL, 'state', 'customer''s state or province'),
    (NULL, 'postal_code', 'customer''s postal code'),
    (NULL, 'region', 'customer''s sales region'),
    (NULL, 'product_id', 'product identifier'),
    (NULL, 'product_name', 'product''s name (its identifier while the product is not known)'),
    (NULL, 'category', 'product category (NULL while the product is not known)'),
    (NULL, 'sub_category', 'product sub-category (NULL while the product is not known)'),
    (NULL, 'order_id', 'order identifier'),
    (NULL, 'line', 'line number within the order'),
    (NULL, 'sold_at', 'when the sale happened'),
    (NULL, 'quantity', 'units sold'),
    (NULL, 'unit_price', 'list price per unit'),
    (NULL, 'discount', 'discount as a fraction (0.2 = 20 %)'),
    (NULL, 'stated_revenue', 'the line''s revenue as its source states it (Superstore''s Sales); NULL to compute it'),
    (NULL, 'revenue', 'revenue (money, after discount)'),
    (NULL, 'profit', 'profit (money; NULL when no source states it)'),
    (NULL, 'ship_date', 'date of shipping'),
    (NULL, 'ship_mode', 'shipping mode'),
    (NULL, 'order_priority', 'order priority'),
    (NULL, 'ingest_id', 'the order in which order lines were written (drives the rollups)'),
    (NULL, 'metric_id', 'metric stream identifier'),
    (NULL, 'measured_at', 'time of the measurement'),
    (NULL, 'stock_price', 'stock price measured'),
    (NULL, 'sales_trend', 'sales trend measured'),
    (NULL, 'grain', 'bucket size: minute, hour, day, month (all: one bucket for all time)'),
    (NULL, 'bucket', 'start of the time bucket'),
    (NULL, 'band', 'price band: width_bucket of the price paid per unit over 5, 10, 20, 50, 100, 200, 500, 1000'),
    (NULL, 'period_start', 'start of the period'),
    (NULL, 'period_end', 'end of the period (exclusive)'),
    (NULL, 'sales_count', 'number of sales (order lines)'),
    (NULL, 'order_count', 'number of orders (an order counts where its first line does)'),
    (NULL, 'average_order_value', 'revenue per order'),
    (NULL, 'revenue_share_pct', 'share of the revenue, in percent'),
    (NULL, 'sales_share_pct', 'share of the sales, in percent'),
    (NULL, 'date_key', 'calendar day, in the model''s time zone'),
    (NULL, 'year', 'year'),
    (NULL, 'quarter', 'quarter of the year (1-4)'),
    (NULL, 'month', 'month (1-12 in time_dim; first day of the month elsewhere)'),
    (NULL, 'month_name', 'name of the month'),
    (NULL, 'iso_week', 'ISO 8601 week number'),
    (NULL, 'iso_day_of_week', 'ISO 8601 day of the week (1 = Monday)'),
    (NULL, 'day_name', 'name of the day of the week'),
    (NULL, 'weekend', 'true on Saturdays and Sundays'),
    (NULL, 'day', 'today, in the model''s time zone'),
    (NULL, 'rank', 'rank by revenue (1 = most)'),
    (NULL, 'revenue_rank', 'rank by revenue (1 = most)'),
    (NULL, 'quantity_rank', 'rank by units sold (1 = most)'),
    (NULL, 'samples', 'measurements in the period'),
    (NULL, 'stock_price_open', 'first stock price of the period'),
    (NULL, 'stock_price_close', 'last stock price of the period'),
    (NULL, 'stock_price_low', 'lowest stock price of the period'),
    (NULL, 'stock_price_high', 'highest stock price of the period'),
    (NULL, 'stock_price_average', 'average stock price of the period'),
    (NULL, 'sales_trend_average', 'average sales trend of the period'),
    (NULL, 'price_from', 'lowest price per unit in the band'),
    (NULL, 'price_to', 'price per unit where the band ends (exclusive; NULL: no end)'),
    (NULL, 'price_band', 'the band, readable'),
    (NULL, 'revenue_year_before', 'revenue of the same month a year before'),
    (NULL, 'revenue_growth_pct', 'revenue growth over the same month a year before, in percent'),
    (NULL, 'order_count_year_before', 'orders of the same month a year before'),
    (NULL, 'order_growth_pct', 'growth in orders over the same month a year before, in percent'),
    (NULL, 'rows_waiting', 'order lines written but not in the rollups yet'),
    (NULL, 'last_sale_at', 'time of the latest sale'),
    (NULL, 'pipeline', 'pipeline writing order lines'),
    (NULL, 'topic', 'Kafka topic'),
    (NULL, 'partition', 'Kafka partition'),
    (NULL, 'covered_offset', 'every message of the partition before this offset is in the KPIs'),
    (NULL, 'committed_offset', 'every message of the partition before this offset is in order_lines'),
    (NULL, 'high_watermark', 'the partition''s high watermark, as seen by the pipeline''s last batch'),
    (NULL, 'committed_at', 'when the pipeline last committed a batch of the partition')
) AS c(object, column_name, comment);
END;

COMMENT ON FUNCTION sales_kafka._model_comments() IS
'internal: the comment of every object and column name of a sales model';

CREATE FUNCTION sales_kafka.create_sales_model(
    model_schema name,
    partitioned boolean DEFAULT false,
    time_zone text DEFAULT current_setting('TimeZone'))
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := quote_ident(model_schema);
    ddl text;
    o record;
    missing text;
BEGIN
    IF model_schema IS NULL OR time_zone IS NULL OR partitioned IS NULL THEN
        RAISE EXCEPTION 'the arguments of sales_kafka.create_sales_model must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM now() AT TIME ZONE time_zone;       -- throws on an unknown zone
    IF to_regclass(s || '.kpi_state') IS NOT NULL THEN
        RAISE EXCEPTION 'schema "%" already has a sales model', model_schema
            USING ERRCODE = 'duplicate_object';
    END IF;

    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', model_schema);
    ddl := replace(replace(replace(replace(sales_kafka._model_ddl(),
                   '@pk_extra', CASE WHEN partitioned THEN ', sold_at' ELSE '' END),
                   '@partition_by', CASE WHEN partitioned THEN 'PARTITION BY RANGE (sold_at)' ELSE '' END),
                   '@tz', quote_literal(time_zone)),
                   '@s', s);
    EXECUTE ddl;

    IF partitioned THEN
        EXECUTE format('CREATE TABLE %1$s.order_lines_default PARTITION OF %1$s.order_lines DEFAULT', s);
        EXECUTE format('COMMENT ON TABLE %s.order_lines_default IS %L', s,
                       'order lines outside every monthly partition (see sales_kafka.create_sales_partitions)');
        PERFORM sales_kafka.create_sales_partitions(model_schema,
                    (now() - interval '1 year')::date, (now() + interval '1 year')::date);
    END IF;

    -- comments: every object and column of the model has one
    FOR o IN SELECT c.oid, c.relname, c.relkind
               FROM pg_class c
              WHERE c.relnamespace = model_schema::regnamespace
                AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
                AND NOT c.relispartition
    LOOP
        EXECUTE format('COMMENT ON %s %s.%I IS %L',
                       CASE o.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                      WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                       s, o.relname,
                       (SELECT m.comment FROM sales_kafka._model_comments() m
                         WHERE m.object = o.relname));
        FOR missing IN
            SELECT a.attname
              FROM pg_attribute a
             WHERE a.attrelid = o.oid AND a.attnum > 0 AND NOT a.attisdropped
               AND o.relkind <> 'S'
        LOOP
            EXECUTE format('COMMENT ON COLUMN %s.%I.%I IS %L', s, o.relname, missing,
                           (SELECT m.comment FROM sales_kafka._model_comments() m
                             WHERE m.object IS NULL AND m.column_name = missing));
        END LOOP;
    END LOOP;
    SELECT string_agg(format('%s.%s', c.relname, a.attname), ', ')
      INTO missing
      FROM pg_class c
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE c.relnamespace = model_schema::regnamespace
       AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
       AND col_description(c.oid, a.attnum) IS NULL;
    SELECT coalesce(missing || ', ', '') || string_agg(c.relname, ', ')
      INTO missing
      FROM pg_class c
     WHERE c.relnamespace = model_schema::regnamespace
       AND c.relkind IN ('r', 'p', 'v', 'm', 'S') AND NOT c.relispartition
       AND obj_description(c.oid, 'pg_class') IS NULL
    HAVING count(*) > 0 OR missing IS NOT NULL;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'sales model objects without a comment: %', missing
            USING ERRCODE = 'internal_error';
    END IF;

    -- the reader role sees the KPI views, and only them
    EXECUTE format('GRANT USAGE ON SCHEMA %s TO sales_kafka_reader', s);
    FOR o IN SELECT c.relname FROM pg_class c
              WHERE c.relnamespace = model_schema::regnamespace
                AND c.relkind = 'v' AND c.relname LIKE 'kpi\_%'
    LOOP
        EXECUTE format('GRANT SELECT ON %s.%I TO sales_kafka_reader', s, o.relname);
    END LOOP;
END
$$;

COMMENT ON FUNCTION sales_kafka.create_sales_model(name, boolean, text) IS
'creates a sales model (dimensions, order lines, metrics, rollups, star schema and KPI views) in a schema owned by the caller';

CREATE FUNCTION sales_kafka.create_sales_partitions(
    model_schema name,
    from_day date,
    to_day date)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := quote_ident(model_schema);
    tz text;
    m date;
    made integer := 0;
BEGIN
    EXECUTE format('SELECT time_zone FROM %s.kpi_state', s) INTO tz;
    IF (SELECT relkind FROM pg_class WHERE oid = (s || '.order_lines')::regclass) <> 'p' THEN
        RAISE EXCEPTION 'the order lines of sales model "%" are not partitioned', model_schema
            USING ERRCODE = 'wrong_object_type';
    END IF;
    FOR m IN SELECT generate_series(date_trunc('month', from_day), to_day, interval '1 month')::date
    LOOP
        IF to_regclass(format('%s.%I', s, 'order_lines_' || to_char(m, 'YYYY_MM'))) IS NULL THEN
            EXECUTE format('CREATE TABLE %1$s.%2$I PARTITION OF %1$s.order_lines FOR VALUES FROM (%3$L) TO (%4$L)',
                           s, 'order_lines_' || to_char(m, 'YYYY_MM'),
                           (m::timestamp AT TIME ZONE tz),
                           ((m + interval '1 month')::timestamp AT TIME ZONE tz));
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END
$$;

COMMENT ON FUNCTION sales_kafka.create_sales_partitions(name, date, date) IS
'creates the missing monthly partitions of a partitioned sales model''s order lines from one day''s month to another''s; returns how many';

-------------------------------------------------------------------------------
-- Freshness
-------------------------------------------------------------------------------

CREATE FUNCTION sales_kafka._model_state(model_schema name)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regclass(quote_ident(model_schema) || '.kpi_state') IS NULL THEN
        RAISE EXCEPTION 'schema "%" has no sales model', model_schema
            USING ERRCODE = 'undefined_object',
                  HINT = 'Create one with sales_kafka.create_sales_model().';
    END IF;
    RETURN quote_ident(model_schema);
END
$$;

COMMENT ON FUNCTION sales_kafka._model_state(name) IS
'internal: the quoted schema of a sales model, or an error if it has none';

CREATE FUNCTION sales_kafka.refresh_rollups(model_schema name)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := sales_kafka._model_state(model_schema);
    st record;
    covered jsonb;
    upto bigint;
    n bigint;
BEGIN
    -- A snapshot taken at the start would hide rows committed while we
    -- wait below, and they would never be rolled up.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'sales_kafka.refresh_rollups must run at isolation level READ COMMITTED'
            USING ERRCODE = 'active_sql_transaction';
    END IF;

    -- one refresh at a time
    EXECUTE format('SELECT * FROM %s.kpi_state FOR UPDATE', s) INTO st;

    -- Offsets first: each batch committed by now has all its rows below the
    -- sequence value read next, so these offsets are covered.
    SELECT coalesce(jsonb_agg(jsonb_build_object('pipeline', o.pipeline, 'topic', o.topic,
                                                 'partition', o.partition,
                                                 'offset', o.committed_offset)
                              ORDER BY o.pipeline, o.topic, o.partition), '[]')
      INTO covered
      FROM sales_kafka.pipeline_status p
      JOIN sales_kafka.pipeline_partitions o ON o.pipeline = p.pipeline
     WHERE p.target = (s || '.order_lines')::regclass;

    -- Every line up to this value is final once the writers that might
    -- still hold a smaller one have ended.
    upto := coalesce(pg_sequence_last_value((s || '.order_lines_ingest_id_seq')::regclass), 0);
    PERFORM sales_kafka._wait_for_writers((s || '.order_lines')::regclass);

    IF upto > st.rolled_up_through THEN
        EXECUTE replace(replace($roll$
WITH new_lines AS MATERIALIZED (
    SELECT date_trunc('minute', l.sold_at, $3) AS minute,
           l.product_id,
           coalesce(l.customer_id, o.customer_id) AS customer_id,
           l.quantity, l.revenue, l.profit,
           CASE WHEN l.quantity > 0
                THEN width_bucket(l.revenue / l.quantity, '{5,10,20,50,100,200,500,1000}'::numeric[]) END AS price_band,
           NOT EXISTS (SELECT FROM @s.order_lines e
                        WHERE e.order_id = l.order_id AND e.ingest_id < l.ingest_id) AS opens_order
      FROM @s.order_lines l
      LEFT JOIN @s.orders o ON o.order_id = l.order_id
     WHERE l.ingest_id > $1 AND l.ingest_id <= $2),
by_minute AS MATERIALIZED (
    SELECT minute, product_id, customer_id,
           count(*) AS sales_count, count(*) FILTER (WHERE opens_order) AS order_count,
           sum(quantity) AS quantity, sum(revenue) AS revenue, sum(profit) AS profit
      FROM new_lines
     GROUP BY minute, product_id, customer_id),
by_grain AS MATERIALIZED (
    SELECT g.grain,
           CASE g.grain WHEN 'minute' THEN m.minute
                        WHEN 'all' THEN timestamptz '-infinity'
                        ELSE date_trunc(g.grain, m.minute, $3) END AS bucket,
           m.product_id, m.customer_id, m.sales_count, m.order_count,
           m.quantity, m.revenue, m.profit
      FROM by_minute m
     CROSS JOIN (VALUES ('minute'), ('hour'), ('day'), ('month'), ('all')) AS g(grain)),
-- the buckets into each rollup table
@upserts@,
price_band AS (
    INSERT INTO @s.rollup_price_band AS r
    SELECT price_band, count(*), sum(quantity), sum(revenue)
      FROM new_lines WHERE price_band IS NOT NULL GROUP BY price_band
    ON CONFLICT (band) DO UPDATE
       SET sales_count = r.sales_count + excluded.sales_count,
           quantity = r.quantity + excluded.quantity,
           revenue = r.revenue + excluded.revenue)
SELECT coalesce(sum(sales_count), 0) FROM by_minute
$roll$, '@upserts@',
            (SELECT string_agg(format($u$
%1$s AS (
    INSERT INTO @s.rollup_%1$s AS r
    SELECT grain, bucket, sum(sales_count), sum(order_count), sum(quantity), sum(revenue), sum(profit)%2$s
      FROM %4$s GROUP BY grain, bucket%2$s
     -- in key order: a bucket's rows end up together in the table (see
     -- bench/kpi_dashboard.sh), not spread over it in hash order
     ORDER BY grain, bucket%2$s
    ON CONFLICT (grain, bucket%3$s) DO UPDATE
       SET %5$s)$u$,
                                      rollup, key_expr, key_cols, source, sales_kafka._add_sums()), ',')
               FROM (VALUES ('total', '', '', 'by_grain'),
                            ('product', ', product_id', ', product_id', 'by_grain'),
                            -- per customer and minute would be nearly a copy of the lines
                            ('customer', ', customer_id', ', customer_id', 'by_grain WHERE grain <> ''minute'''),
                            ('customer_group', ', c.segment, c.region, c.country, c.state, c.city',
                             ', segment, region, country, state, city',
                             'by_grain LEFT JOIN @s.customers c USING (customer_id) WHERE grain <> ''minute'''))
                    AS t(rollup, key_expr, key_cols, source))),
            '@s', s)
        INTO n
        USING st.rolled_up_through, upto, st.time_zone;
    ELSE
        n := 0;
        upto := st.rolled_up_through;
    END IF;

    EXECUTE format('UPDATE %s.kpi_state SET rolled_up_through = $1, rolled_up_rows = rolled_up_rows + $2,
                           rolled_up_at = clock_timestamp(), covered_offsets = $3', s)
      USING upto, n, covered;
    RETURN n;
END
$$;

COMMENT ON FUNCTION sales_kafka.refresh_rollups(name) IS
'adds the order lines written since the last call to a sales model''s rollups, in the same transaction as its progress; returns how many';

CREATE FUNCTION sales_kafka.rebuild_rollups(model_schema name)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := sales_kafka._model_state(model_schema);
    rollups text := format('%1$s.rollup_total, %1$s.rollup_product, %1$s.rollup_customer, %1$s.rollup_customer_group, %1$s.rollup_price_band', s);
    n bigint;
BEGIN
    EXECUTE format('SELECT FROM %s.kpi_state FOR UPDATE', s);
    EXECUTE 'TRUNCATE ' || rollups;
    EXECUTE format('UPDATE %s.kpi_state SET rolled_up_through = 0, rolled_up_rows = 0', s);
    n := sales_kafka.refresh_rollups(model_schema);
    -- the rollups were emptied and refilled: without fresh statistics the
    -- dashboards' plans go by what autovacuum saw half way (a sort of
    -- thousands of rows instead of an ordered index scan)
    EXECUTE 'ANALYZE ' || rollups;
    RETURN n;
END
$$;

COMMENT ON FUNCTION sales_kafka.rebuild_rollups(name) IS
'recomputes a sales model''s rollups from all its order lines (after order lines were updated or deleted); returns how many lines';

CREATE FUNCTION sales_kafka.refresh_kpis(model_schema name)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := sales_kafka._model_state(model_schema);
    n bigint;
BEGIN
    n := sales_kafka.refresh_rollups(model_schema);
    EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %s.mv_top_products', s);
    EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %s.mv_price_distribution', s);
    EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %s.mv_growth_yoy', s);
    EXECUTE format('UPDATE %s.kpi_state SET views_refreshed_at = clock_timestamp()', s);
    RETURN n;
END
$$;

COMMENT ON FUNCTION sales_kafka.refresh_kpis(name) IS
'brings every KPI of a sales model up to date: the rollups, then the materialized views (CONCURRENTLY); returns how many new order lines';

-- pg_cron (1.4) runs jobs at minute granularity at best.  The rollups run
-- every minute; the materialized views at the interval given.
CREATE FUNCTION sales_kafka.schedule_kpi_refresh(
    model_schema name,
    refresh_every interval DEFAULT '5 minutes',
    database name DEFAULT current_database())
RETURNS TABLE (jobid bigint, jobname text, schedule text, command text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cron_expr text;
    mins integer := extract(epoch FROM refresh_every)::integer / 60;
BEGIN
    IF to_regproc('cron.schedule_in_database') IS NULL THEN
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Call sales_kafka.schedule_kpi_refresh in the database named by cron.database_name (%s), with database => %L.',
                                coalesce(current_setting('cron.database_name', true), 'postgres'),
                                current_database());
    END IF;
    IF database = current_database() THEN
        PERFORM sales_kafka._model_state(model_schema);
    END IF;
    cron_expr := CASE
        WHEN extract(epoch FROM refresh_every) <> mins * 60 OR mins < 1 THEN NULL
        WHEN mins < 60 AND 60 % mins = 0 THEN format('*/%s * * * *', mins)
        WHEN mins % 60 = 0 AND mins < 1440 AND 24 % (mins / 60) = 0 THEN format('0 */%s * * *', mins / 60)
        WHEN mins = 1440 THEN '0 0 * * *'
    END;
    IF cron_expr IS NULL THEN
        RAISE EXCEPTION 'pg_cron cannot run a job every %', refresh_every
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'pg_cron 1.4 schedules whole minutes: the interval must be 1 day, or a number of minutes or hours that divides an hour or a day.';
    END IF;

    PERFORM sales_kafka.unschedule_kpi_refresh(model_schema, database);
    RETURN QUERY
    SELECT cron.schedule_in_database(j.name, j.sched, j.cmd, database), j.name, j.sched, j.cmd
      FROM (VALUES (format('sales_kafka rollups %s.%s', database, model_schema), '* * * * *',
                    format('SELECT sales_kafka.refresh_rollups(%L)', model_schema)),
                   (format('sales_kafka views %s.%s', database, model_schema), cron_expr,
                    format('SELECT sales_kafka.refresh_kpis(%L)', model_schema))) AS j(name, sched, cmd);
END
$$;

COMMENT ON FUNCTION sales_kafka.schedule_kpi_refresh(name, interval, name) IS
'schedules pg_cron jobs that keep a sales model''s KPIs fresh: the rollups every minute, the materialized views at the interval given; run it where pg_cron is installed';

CREATE FUNCTION sales_kafka.unschedule_kpi_refresh(
    model_schema name,
    database name DEFAULT current_database())
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := 0;
    j bigint;
BEGIN
    IF to_regprocedure('cron.unschedule(bigint)') IS NULL THEN
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    FOR j IN EXECUTE 'SELECT jobid FROM cron.job WHERE jobname = ANY ($1)'
        USING ARRAY[format('sales_kafka rollups %s.%s', database, model_schema),
                    format('sales_kafka views %s.%s', database, model_schema)]
    LOOP
        PERFORM cron.unschedule(j);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

COMMENT ON FUNCTION sales_kafka.unschedule_kpi_refresh(name, name) IS
'removes the pg_cron jobs of schedule_kpi_refresh for a sales model; returns how many';

-------------------------------------------------------------------------------
-- Mappings: the foreign tables and pipelines of each data shape
-------------------------------------------------------------------------------

CREATE FUNCTION sales_kafka.create_sales_pipelines(
    model_schema name,
    shape text,
    server name,
    topic text,
    start boolean DEFAULT true)
RETURNS SETOF text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := sales_kafka._model_state(model_schema);
    src record;
    pipeline text;
BEGIN
    IF shape IS NULL OR shape NOT IN ('sale_events', 'superstore', 'shop', 'metrics') THEN
        RAISE EXCEPTION 'unknown sales data shape "%"', shape
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The shapes are sale_events, superstore, shop and metrics.';
    END IF;

    FOR src IN
        SELECT * FROM (VALUES
            ('sale_events', 'src_sale_events', '',
             $c$product_id text OPTIONS (field 'product_name'), quantity integer,
                unit_price numeric(12,2) OPTIONS (field 'price'),
                sold_at timestamptz OPTIONS (field 'timestamp')$c$),
            ('superstore', 'src_superstore', '',
             $c$order_id text, line integer OPTIONS (field 'row_id'),
                sold_at timestamptz OPTIONS (field 'order_date'), ship_date date, ship_mode text,
                customer_id text, customer_name text, segment text, country text, city text,
                state text, postal_code text, region text, product_id text, product_name text,
                category text, sub_category text,
                stated_revenue numeric(14,2) OPTIONS (field 'sales'), quantity integer,
                discount numeric(5,4), profit numeric(14,2), order_priority text$c$),
            ('shop', 'src_shop_customers', 'customers',
             $c$customer_id text OPTIONS (kafka 'key'), customer_name text, segment text,
                country text, city text, state text, postal_code text, region text$c$),
            ('shop', 'src_shop_products', 'products',
             $c$product_id text OPTIONS (kafka 'key'), product_name text, category text,
                sub_category text$c$),
            ('shop', 'src_shop_orders', 'orders',
             $c$order_id text OPTIONS (kafka 'key'), customer_id text,
                sold_at timestamptz OPTIONS (field 'order_date'), ship_date date, ship_mode text,
                order_priority text$c$),
            ('shop', 'src_shop_order_items', 'order_items',
             $c$order_id text, line integer, product_id text, quantity integer,
                unit_price numeric(12,2) OPTIONS (field 'price'), discount numeric(5,4),
                sold_at timestamptz OPTIONS (kafka 'timestamp')$c$),
            ('metrics', 'src_metrics', '',
             $c$metric_id text OPTIONS (field 'id'),
                measured_at timestamptz OPTIONS (field 'timestamp'),
                stock_price numeric(14,4), sales_trend numeric$c$)
        ) AS m(shape, ftable, topic_suffix, columns)
        WHERE m.shape = create_sales_pipelines.shape
    LOOP
        -- the foreign tables: one mapping per topic
        EXECUTE format('CREATE FOREIGN TABLE %s.%I (%s) SERVER %I OPTIONS (topic %L)',
                       s, src.ftable, src.columns, server, topic || src.topic_suffix);
        EXECUTE format('COMMENT ON FOREIGN TABLE %s.%I IS %L', s, src.ftable,
                       format('the %s topic %s, as the sales model reads it', shape, topic || src.topic_suffix));
    END LOOP;

    -- one Superstore topic feeds the dimensions, the orders and the lines
    FOR src IN
        SELECT * FROM (VALUES
            ('sale_events', 'src_sale_events', 'order_lines', 'append'),
            ('superstore', 'src_superstore', 'customers', 'upsert'),
            ('superstore', 'src_superstore', 'products', 'upsert'),
            ('superstore', 'src_superstore', 'orders', 'upsert'),
            ('superstore', 'src_superstore', 'order_lines', 'append'),
            ('shop', 'src_shop_customers', 'customers', 'upsert'),
            ('shop', 'src_shop_products', 'products', 'upsert'),
            ('shop', 'src_shop_orders', 'orders', 'upsert'),
            ('shop', 'src_shop_order_items', 'order_lines', 'append'),
            ('metrics', 'src_metrics', 'metrics', 'upsert')
        ) AS m(shape, ftable, target, mode)
        WHERE m.shape = create_sales_pipelines.shape
    LOOP
        pipeline := model_schema || '_' || src.target;
        PERFORM sales_kafka.create_pipeline(pipeline, (s || '.' || src.ftable)::regclass,
                                            (s || '.' || src.target)::regclass, src.mode);
        IF start THEN
            PERFORM sales_kafka.start_pipeline(pipeline);
        END IF;
        RETURN NEXT pipeline;
    END LOOP;
END
$$;

COMMENT ON FUNCTION sales_kafka.create_sales_pipelines(name, text, name, text, boolean) IS
'creates the foreign tables and pipelines that feed a sales model from topics of one data shape (sale_events, superstore, shop, metrics); topic is the topic, or for shop the prefix of its four topics; returns the pipelines';
