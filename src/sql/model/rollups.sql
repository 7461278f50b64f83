-------------------------------------------------------------------------------
-- src/sql/model/rollups.sql: a sales model's rollups, sums per time bucket
-- that sales_kafka.refresh_rollups keeps (src/sql/kpi.sql); grain 'all' has
-- one bucket, -infinity.  The KPI views read them.  How the DDL gets its
-- schema: src/sql/model/tables.sql.
-------------------------------------------------------------------------------

CREATE FUNCTION sales_kafka._create_model_rollups(model_schema name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM sales_kafka._use_model_schema(model_schema);

    -- Each refresh updates rows of these in place (a bucket's sums grow),
    -- the newest buckets' on every run: room on each page keeps an update
    -- on its page (HOT, no new index entries) and a bucket's versions
    -- together (100,000 lines with late ones, bench/kpi_dashboard.sh: 9 %
    -- faster than with full pages).
    CREATE TABLE rollup_total (
        grain text NOT NULL CHECK (grain IN ('minute', 'hour', 'day', 'month', 'all')),
        bucket timestamptz NOT NULL,
        sales_count bigint NOT NULL,
        order_count bigint NOT NULL,
        quantity bigint NOT NULL,
        revenue numeric NOT NULL,
        profit numeric,
        PRIMARY KEY (grain, bucket)
    ) WITH (fillfactor = 80);
    CREATE TABLE rollup_product (LIKE rollup_total INCLUDING CONSTRAINTS,
        product_id text NOT NULL,
        PRIMARY KEY (grain, bucket, product_id)) WITH (fillfactor = 80);
    -- Sums per customer and hour (grain 'hour' only): what
    -- customers_moved() moves between the groups below.
    CREATE TABLE rollup_customer (LIKE rollup_total INCLUDING CONSTRAINTS,
        customer_id text,
        UNIQUE NULLS NOT DISTINCT (grain, bucket, customer_id)) WITH (fillfactor = 80);
    -- Sums per customer group (the customers' segment, region, country,
    -- state and city as they are now) and time bucket:
    -- kpi_customer_sales_hourly, _daily and _monthly.  Kept by
    -- refresh_rollups, and by customers_moved() when customers change.
    CREATE TABLE rollup_customer_group (LIKE rollup_total INCLUDING CONSTRAINTS,
        segment text, region text, country text, state text, city text,
        UNIQUE NULLS NOT DISTINCT (grain, bucket, segment, region, country, state, city))
        WITH (fillfactor = 80);
    -- a customer's rows, for customers_moved()
    CREATE INDEX ON rollup_customer (customer_id);

    PERFORM sales_kafka._create_customers_moved(model_schema);
    CREATE TRIGGER customers_inserted AFTER INSERT ON customers
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION customers_moved();
    CREATE TRIGGER customers_updated AFTER UPDATE ON customers
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION customers_moved();
    CREATE TRIGGER customers_deleted AFTER DELETE ON customers
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION customers_moved();

    -- sales per band of price paid per unit (after discount), all time
    CREATE TABLE rollup_price_band (
        band integer PRIMARY KEY,
        sales_count bigint NOT NULL,
        quantity bigint NOT NULL,
        revenue numeric NOT NULL
    );
END
$$;

COMMENT ON FUNCTION sales_kafka._create_model_rollups(name) IS
'internal: creates the rollup tables of a new sales model, and the trigger that moves sales between customer groups, for create_sales_model';

-- The function of the triggers that move sales between customer groups
-- (made by every upgrade_sales_model too, as the views are).
CREATE FUNCTION sales_kafka._create_customers_moved(model_schema name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM sales_kafka._use_model_schema(model_schema);

    -- When customers change (or arrive after their sales, or go), their
    -- sales move from their old group to the new one: the same as looking
    -- their attributes up when read.  A function's body is text, run with
    -- the search_path of whoever writes customers: it names the model's
    -- schema (%1$s), and holds the SET list of sales_kafka._add_sums()
    -- (%2$s) and the days, months and all time of an hour (%3$s).
    EXECUTE format($f$
CREATE OR REPLACE FUNCTION customers_moved() RETURNS trigger
LANGUAGE plpgsql AS $b$
DECLARE
    none text := '(SELECT * FROM %1$s.customers WHERE false)';
BEGIN
    -- one at a time with refresh_rollups, which holds this row while it
    -- adds lines; the rollups first (see sales_kafka._rollup_tables)
    LOCK TABLE %1$s.rollup_customer IN ACCESS SHARE MODE;
    LOCK TABLE %1$s.rollup_customer_group IN ROW EXCLUSIVE MODE;
    PERFORM FROM %1$s.kpi_state FOR UPDATE;
    EXECUTE format($m$
WITH moved AS (
    SELECT coalesce(o.customer_id, n.customer_id) AS customer_id,
           o.segment AS o_segment, o.region AS o_region, o.country AS o_country, o.state AS o_state, o.city AS o_city,
           n.segment AS n_segment, n.region AS n_region, n.country AS n_country, n.state AS n_state, n.city AS n_city
      FROM %%s o FULL JOIN %%s n ON n.customer_id = o.customer_id
     WHERE (o.segment, o.region, o.country, o.state, o.city)
           IS DISTINCT FROM (n.segment, n.region, n.country, n.state, n.city)),
shift AS (
    SELECT t.grain, t.bucket, g.segment, g.region, g.country, g.state, g.city,
           g.sign * r.sales_count AS sales_count, g.sign * r.order_count AS order_count,
           g.sign * r.quantity AS quantity, g.sign * r.revenue AS revenue, g.sign * r.profit AS profit
      FROM moved m
      JOIN %1$s.rollup_customer r ON r.customer_id = m.customer_id
     CROSS JOIN %1$s.kpi_state k
     CROSS JOIN LATERAL (VALUES ('hour', r.bucket), %3$s) AS t(grain, bucket)
     CROSS JOIN LATERAL (VALUES (-1, m.o_segment, m.o_region, m.o_country, m.o_state, m.o_city),
                                (1, m.n_segment, m.n_region, m.n_country, m.n_state, m.n_city))
                        AS g(sign, segment, region, country, state, city))
INSERT INTO %1$s.rollup_customer_group AS r
SELECT grain, bucket, sum(sales_count), sum(order_count), sum(quantity), sum(revenue), sum(profit),
       segment, region, country, state, city
  FROM shift
 GROUP BY grain, bucket, segment, region, country, state, city
ON CONFLICT (grain, bucket, segment, region, country, state, city) DO UPDATE
   SET %2$s$m$,
        CASE TG_OP WHEN 'INSERT' THEN none ELSE 'old_rows' END,
        CASE TG_OP WHEN 'DELETE' THEN none ELSE 'new_rows' END);
    RETURN NULL;
END
$b$
$f$,
                   quote_ident(model_schema), sales_kafka._add_sums(),
                   sales_kafka._coarser_buckets('r.bucket', 'k.time_zone', '{day,month}'));
END
$$;

COMMENT ON FUNCTION sales_kafka._create_customers_moved(name) IS
'internal: creates or replaces the function of the triggers that move sales between customer groups when customers change, for create_sales_model and upgrade_sales_model';
