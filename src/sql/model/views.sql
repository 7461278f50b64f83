-------------------------------------------------------------------------------
-- src/sql/model/views.sql: a sales model's views: the star schema and the
-- KPIs.  How the DDL gets its schema: src/sql/model/tables.sql.
--
-- Every KPI view reads the rollups (or, for the metric summaries,
-- metric_summary, which refresh_rollups keeps too) when it is read: the
-- rollup worker (src/rollup_worker.c) keeps the rollups current, so no KPI
-- needs a refresh of its own.  Top
-- products, the price distribution and year over year were materialized
-- views up to 1.2: they read a few thousand rollup rows at most (a row per
-- product, nine bands, a row per month), which takes about a millisecond
-- at 10 M order lines (bench/kpi_dashboard.sh), less than a refresh.
-- The views are made with CREATE OR REPLACE VIEW: upgrade_sales_model
-- calls _create_model_views again to bring every view of a model made by
-- an earlier version to this version's definition, keeping the grants and
-- the views that depend on them (a view's columns may only be added at the
-- end so; a version that changes them otherwise drops the view in its step
-- of upgrade_sales_model first), and _create_sales_model refuses a schema
-- that already has a relation of a model object's name.
-------------------------------------------------------------------------------

CREATE FUNCTION sales_kafka._create_model_views(model_schema name, time_zone text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v record;
BEGIN
    PERFORM sales_kafka._use_model_schema(model_schema);

    -- The star schema

    CREATE OR REPLACE VIEW time_dim AS
    SELECT d::date AS date_key,
           extract(year FROM d)::integer AS year,
           extract(quarter FROM d)::integer AS quarter,
           extract(month FROM d)::integer AS month,
           trim(to_char(d, 'Month')) AS month_name,
           extract(week FROM d)::integer AS iso_week,
           extract(isodow FROM d)::integer AS iso_day_of_week,
           trim(to_char(d, 'Day')) AS day_name,
           extract(isodow FROM d) >= 6 AS weekend
      FROM kpi_state s,
           generate_series(date_trunc('day', (SELECT min(sold_at) FROM order_lines) AT TIME ZONE s.time_zone),
                           date_trunc('day', (SELECT max(sold_at) FROM order_lines) AT TIME ZONE s.time_zone),
                           interval '1 day') AS g(d);

    CREATE OR REPLACE VIEW customers_dim AS
    SELECT customer_id, customer_name, segment, country, city, state, postal_code, region
      FROM customers;

    -- products seen in order lines but not (yet) in products are listed
    -- without attributes, so that joins keep their lines
    CREATE OR REPLACE VIEW products_dim AS
    SELECT product_id, product_name, category, sub_category
      FROM products
    UNION ALL
    SELECT r.product_id, NULL, NULL, NULL
      FROM rollup_product r
     WHERE r.grain = 'all'
       AND NOT EXISTS (SELECT FROM products p WHERE p.product_id = r.product_id);

    CREATE OR REPLACE VIEW sales_facts AS
    SELECT l.order_id,
           l.line,
           (l.sold_at AT TIME ZONE s.time_zone)::date AS date_key,
           l.sold_at,
           coalesce(l.customer_id, o.customer_id) AS customer_id,
           l.product_id,
           l.quantity,
           l.unit_price::numeric(20,2) AS unit_price,
           l.discount,
           l.revenue::numeric(20,2) AS revenue,
           l.profit::numeric(20,2) AS profit,
           coalesce(l.ship_date, o.ship_date) AS ship_date,
           coalesce(l.ship_mode, o.ship_mode) AS ship_mode,
           coalesce(l.order_priority, o.order_priority) AS order_priority
      FROM order_lines l
      CROSS JOIN kpi_state s
      LEFT JOIN orders o ON o.order_id = l.order_id;

    -- KPIs kept current by the rollups
    --
    -- What a BI tool reads (README, "KPI views for BI tools"): each view
    -- holds one grain, so that summing a column over all its rows never
    -- counts a sale twice; money is numeric(20,2) (averages of money too),
    -- percentages numeric(7,2), counts bigint, so that a driver reports a
    -- precision and a scale instead of its defaults for a bare numeric (0/0
    -- in JDBC, 28/6 in ODBC); a time series has period_start and, cut in
    -- the model's time zone, its day, year, quarter, month (and hour below
    -- a day).  The comments say which columns add up over rows.

    CREATE OR REPLACE VIEW kpi_totals AS
    SELECT coalesce(t.revenue, 0)::numeric(20,2) AS revenue,
           t.profit::numeric(20,2) AS profit,
           coalesce(t.sales_count, 0) AS sales_count,
           coalesce(t.order_count, 0) AS order_count,
           coalesce(t.quantity, 0) AS quantity,
           round(t.revenue / nullif(t.order_count, 0), 2)::numeric(20,2) AS average_order_value
      FROM (SELECT) AS one
      LEFT JOIN rollup_total t ON t.grain = 'all';

    CREATE OR REPLACE VIEW kpi_today AS
    SELECT (now() AT TIME ZONE s.time_zone)::date AS day,
           coalesce(t.revenue, 0)::numeric(20,2) AS revenue,
           t.profit::numeric(20,2) AS profit,
           coalesce(t.sales_count, 0) AS sales_count,
           coalesce(t.order_count, 0) AS order_count,
           coalesce(t.quantity, 0) AS quantity,
           round(t.revenue / nullif(t.order_count, 0), 2)::numeric(20,2) AS average_order_value
      FROM kpi_state s
      LEFT JOIN rollup_total t
             ON t.grain = 'day' AND t.bucket = date_trunc('day', now(), s.time_zone);

    -- The time series, one view per rollup and grain, each with the date
    -- hierarchy of its periods in the model's time zone (and the hour below
    -- a day): revenue over time per minute, hour, day and month, ordered.
    --
    -- Sales per product and per customer group per hour, day and month (the
    -- grains their rollups keep): thousands of rows a day, which a reader
    -- filters, groups and orders itself.  They have no ORDER BY of their
    -- own, which every query wrapping them would pay for (sorting 18,000
    -- rows of a customer cube by its six keys took 17 ms of a 20 ms
    -- dashboard query).
    --
    -- Products' attributes are looked up when read: a product that arrives
    -- after its sales, or changes category, counts where it is now.  A
    -- customer group whose customers all moved away keeps a row of zeros in
    -- rollup_customer_group, which the views leave out.
    FOR v IN
        SELECT * FROM (VALUES
            ('kpi_sales_per_minute', 'rollup_total', 'minute'),
            ('kpi_sales_per_hour', 'rollup_total', 'hour'),
            ('kpi_sales_per_day', 'rollup_total', 'day'),
            ('kpi_sales_per_month', 'rollup_total', 'month'),
            ('kpi_product_sales_hourly', 'rollup_product', 'hour'),
            ('kpi_product_sales_daily', 'rollup_product', 'day'),
            ('kpi_product_sales_monthly', 'rollup_product', 'month'),
            ('kpi_customer_sales_hourly', 'rollup_customer_group', 'hour'),
            ('kpi_customer_sales_daily', 'rollup_customer_group', 'day'),
            ('kpi_customer_sales_monthly', 'rollup_customer_group', 'month'))
            AS t(view_name, rollup, grain)
    LOOP
        EXECUTE format($v$
CREATE OR REPLACE VIEW %1$I AS
SELECT r.bucket AS period_start,
       l.at::date AS day,
       extract(year FROM l.at)::integer AS year,
       extract(quarter FROM l.at)::integer AS quarter,
       extract(month FROM l.at)::integer AS month,%4$s
       %5$s
  FROM kpi_state s
  JOIN %2$I r ON r.grain = %3$L%6$s
 CROSS JOIN LATERAL (SELECT r.bucket AT TIME ZONE s.time_zone AS at) AS l%7$s$v$,
            v.view_name, v.rollup, v.grain,
            CASE WHEN v.grain IN ('minute', 'hour')
                 THEN E'\n       extract(hour FROM l.at)::integer AS hour,' ELSE '' END,
            CASE v.rollup
                WHEN 'rollup_total' THEN
                    'r.revenue::numeric(20,2) AS revenue, r.profit::numeric(20,2) AS profit,
       r.sales_count, r.order_count, r.quantity,
       round(r.revenue / nullif(r.order_count, 0), 2)::numeric(20,2) AS average_order_value'
                WHEN 'rollup_product' THEN
                    'r.product_id,
       coalesce(p.product_name, r.product_id) AS product_name,
       p.category, p.sub_category,
       r.revenue::numeric(20,2) AS revenue, r.profit::numeric(20,2) AS profit,
       r.sales_count, r.quantity'
                ELSE
                    'r.segment, r.region, r.country, r.state, r.city,
       r.revenue::numeric(20,2) AS revenue, r.profit::numeric(20,2) AS profit,
       r.sales_count, r.order_count, r.quantity'
            END,
            CASE v.rollup WHEN 'rollup_customer_group' THEN ' AND r.sales_count > 0' ELSE '' END,
            CASE v.rollup
                WHEN 'rollup_total' THEN E'\n ORDER BY r.bucket'
                WHEN 'rollup_product' THEN E'\n  LEFT JOIN products p ON p.product_id = r.product_id'
                ELSE '' END);
    END LOOP;

    -- Revenue by product and customer attribute, all time: products' looked
    -- up when read, customers' from their groups' rows (one per group).  An
    -- order's lines share their customer, not their product: no order count
    -- per product attribute.
    FOR v IN
        SELECT * FROM (VALUES
            ('kpi_sales_by_category', 'category', false),
            ('kpi_sales_by_sub_category', 'category, sub_category', false),
            ('kpi_sales_by_segment', 'segment', true),
            ('kpi_sales_by_region', 'region', true),
            ('kpi_sales_by_state', 'country, state', true),
            ('kpi_sales_by_city', 'country, state, city', true))
        AS t(view_name, attributes, of_customers)
    LOOP
        EXECUTE format($v$
CREATE OR REPLACE VIEW %1$I AS
SELECT %2$s,
       sum(r.revenue)::numeric(20,2) AS revenue, sum(r.profit)::numeric(20,2) AS profit,
       sum(r.sales_count)::bigint AS sales_count,%3$s
       sum(r.quantity)::bigint AS quantity,
       round(100 * sum(r.revenue) / nullif(sum(sum(r.revenue)) OVER (), 0), 2)::numeric(7,2) AS revenue_share_pct
  FROM %4$s
 GROUP BY %2$s
 ORDER BY revenue DESC, %2$s$v$,
            v.view_name,
            (SELECT string_agg(CASE WHEN v.of_customers THEN 'r.' ELSE 'd.' END || a, ', ')
               FROM unnest(string_to_array(v.attributes, ', ')) AS a),
            CASE WHEN v.of_customers THEN ' sum(r.order_count)::bigint AS order_count,' ELSE '' END,
            CASE WHEN v.of_customers
                 THEN E'rollup_customer_group r\n WHERE r.grain = \'all\' AND r.sales_count > 0'
                 ELSE E'rollup_product r\n  LEFT JOIN products d ON d.product_id = r.product_id\n WHERE r.grain = \'all\'' END);
    END LOOP;

    CREATE OR REPLACE VIEW kpi_today_top_products AS
    SELECT rank() OVER (ORDER BY r.revenue DESC) AS rank,
           r.product_id,
           coalesce(p.product_name, r.product_id) AS product_name,
           p.category,
           r.revenue::numeric(20,2) AS revenue, r.sales_count, r.quantity
      FROM kpi_state s
      JOIN rollup_product r
        ON r.grain = 'day' AND r.bucket = date_trunc('day', now(), s.time_zone)
      LEFT JOIN products p ON p.product_id = r.product_id
     ORDER BY r.revenue DESC, r.product_id
     LIMIT 5;

    CREATE OR REPLACE VIEW kpi_today_by_category AS
    SELECT p.category,
           sum(r.revenue)::numeric(20,2) AS revenue, sum(r.sales_count)::bigint AS sales_count,
           sum(r.quantity)::bigint AS quantity,
           round(100 * sum(r.revenue) / nullif(sum(sum(r.revenue)) OVER (), 0), 2)::numeric(7,2) AS revenue_share_pct
      FROM kpi_state s
      JOIN rollup_product r
        ON r.grain = 'day' AND r.bucket = date_trunc('day', now(), s.time_zone)
      LEFT JOIN products p ON p.product_id = r.product_id
     GROUP BY p.category
     ORDER BY revenue DESC, p.category;

    -- fixed-interval summaries of the metric streams, per series: one view
    -- per width of metric_summary_view (src/sql/model/metrics.sql)
    PERFORM sales_kafka._create_metric_summary_views(model_schema, time_zone);

    -- all time, from the rollups as they are now
    CREATE OR REPLACE VIEW kpi_top_products AS
    SELECT r.product_id,
           coalesce(p.product_name, r.product_id) AS product_name,
           p.category, p.sub_category,
           r.revenue::numeric(20,2) AS revenue, r.profit::numeric(20,2) AS profit,
           r.sales_count, r.quantity,
           rank() OVER (ORDER BY r.revenue DESC) AS revenue_rank,
           rank() OVER (ORDER BY r.quantity DESC) AS quantity_rank
      FROM rollup_product r
      LEFT JOIN products p ON p.product_id = r.product_id
     WHERE r.grain = 'all'
     ORDER BY revenue_rank, r.product_id;

    -- price paid per unit (after discount), in fixed bands
    CREATE OR REPLACE VIEW kpi_price_distribution AS
    SELECT b.price_from::numeric(20,2) AS price_from, b.price_to::numeric(20,2) AS price_to,
           CASE WHEN b.price_to IS NULL THEN b.price_from || ' and more'
                ELSE b.price_from || ' to ' || b.price_to END AS price_band,
           coalesce(l.sales_count, 0) AS sales_count,
           coalesce(l.quantity, 0) AS quantity,
           coalesce(l.revenue, 0)::numeric(20,2) AS revenue,
           round(100.0 * coalesce(l.sales_count, 0) / nullif(sum(l.sales_count) OVER (), 0), 2)::numeric(7,2)
               AS sales_share_pct
      FROM (VALUES (0, 0::numeric, 5::numeric), (1, 5, 10), (2, 10, 20), (3, 20, 50), (4, 50, 100),
                   (5, 100, 200), (6, 200, 500), (7, 500, 1000), (8, 1000, NULL)) AS b(band, price_from, price_to)
      LEFT JOIN rollup_price_band AS l ON l.band = b.band
     ORDER BY b.price_from;

    -- growth is not a share: a month after one of a few cents grows by
    -- millions of percent, which numeric(7,2) could not hold
    CREATE OR REPLACE VIEW kpi_growth_yoy AS
    SELECT (m.bucket AT TIME ZONE s.time_zone)::date AS month,
           m.revenue::numeric(20,2) AS revenue,
           y.revenue::numeric(20,2) AS revenue_year_before,
           round(100 * (m.revenue - y.revenue) / nullif(y.revenue, 0), 2)::numeric(20,2) AS revenue_growth_pct,
           m.order_count,
           y.order_count AS order_count_year_before,
           round(100.0 * (m.order_count - y.order_count) / nullif(y.order_count, 0), 2)::numeric(20,2)
               AS order_growth_pct
      FROM kpi_state s
      JOIN rollup_total m ON m.grain = 'month'
      LEFT JOIN rollup_total y
             ON y.grain = 'month'
            AND y.bucket = (((m.bucket AT TIME ZONE s.time_zone) - interval '1 year') AT TIME ZONE s.time_zone)
     ORDER BY m.bucket;

    -- As of: when the KPIs were last brought up to date, and what they cover

    -- On a physical standby the rollups are the primary's, as of its last
    -- rollup that the standby replayed: is_standby, and the time of the
    -- last transaction replayed (the standby shows the primary as it was
    -- then; the lag grows while the primary writes nothing, too).
    CREATE OR REPLACE VIEW kpi_as_of AS
    SELECT s.rolled_up_at,
           s.views_refreshed_at,
           s.rolled_up_rows,
           (SELECT count(*) FROM order_lines l
             WHERE l.ingest_id > s.rolled_up_through
               AND l.ingest_id <= (SELECT max(ingest_id) FROM order_lines)) AS rows_waiting,
           (SELECT max(sold_at) FROM order_lines) AS last_sale_at,
           s.time_zone,
           s.covered_offsets,
           pg_is_in_recovery() AS is_standby,
           pg_last_xact_replay_timestamp() AS replayed_at,
           now() - pg_last_xact_replay_timestamp() AS replay_lag
      FROM kpi_state s;

    -- Per KPI view, how fresh it is: a view over the rollups shows the
    -- order lines as of the last rollup (the rollup worker's, or a call of
    -- refresh_rollups), and so do the metric summaries (metric_summary);
    -- one over the tables (the star schema) shows them as they are, which on a standby is as of the last
    -- transaction replayed.  Which views read rollups is looked up in the
    -- catalog, so that every kpi_* view of the schema is listed.
    CREATE OR REPLACE VIEW kpi_as_of_views AS
    SELECT v.relname::text AS view_name,
           CASE WHEN r.reads_rollups THEN 'rollups' ELSE 'tables' END AS reads,
           CASE WHEN r.reads_rollups THEN s.rolled_up_at
                ELSE coalesce(pg_last_xact_replay_timestamp(), now()) END AS as_of,
           now() - CASE WHEN r.reads_rollups THEN s.rolled_up_at
                        ELSE coalesce(pg_last_xact_replay_timestamp(), now()) END AS lag,
           pg_is_in_recovery() AS is_standby
      FROM kpi_state s
      JOIN pg_class k ON k.oid = 'kpi_state'::regclass
      JOIN pg_class v ON v.relnamespace = k.relnamespace AND v.relkind IN ('v', 'm')
                     AND v.relname LIKE 'kpi\_%' AND v.relname NOT LIKE 'kpi\_as\_of%'
     CROSS JOIN LATERAL (
           SELECT EXISTS (SELECT FROM pg_rewrite rw
                            JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
                            JOIN pg_class t ON t.oid = d.refobjid
                           WHERE rw.ev_class = v.oid AND t.relnamespace = k.relnamespace
                             AND (t.relname LIKE 'rollup\_%' OR t.relname = 'metric_summary')) AS reads_rollups) r
     ORDER BY v.relname;

    CREATE OR REPLACE VIEW kpi_as_of_partitions AS
    SELECT c.pipeline, c.topic, c.partition,
           c."offset" AS covered_offset,
           p.committed_offset,
           p.high_watermark,
           p.updated_at AS committed_at
      FROM kpi_state s,
           jsonb_to_recordset(s.covered_offsets)
               AS c(pipeline_id bigint, pipeline text, topic text, partition integer, "offset" bigint)
      LEFT JOIN sales_kafka.pipeline_partitions p
             ON p.pipeline_id = c.pipeline_id AND p.topic = c.topic AND p.partition = c.partition
     ORDER BY c.pipeline, c.pipeline_id, c.topic, c.partition;
END
$$;

COMMENT ON FUNCTION sales_kafka._create_model_views(name, text) IS
'internal: creates or replaces the views of a sales model (star schema and KPIs), for create_sales_model and upgrade_sales_model';
