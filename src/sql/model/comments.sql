-------------------------------------------------------------------------------
-- src/sql/model/comments.sql: every object and column of a sales model has
-- a comment.
-------------------------------------------------------------------------------

-- One comment per column name, shared by every object of a model that has
-- such a column.  Its objects are the model's: _create_sales_model refuses
-- a schema with a relation of one of their names, and _comment_model and
-- _grant_model touch nothing else in the schema.
CREATE FUNCTION sales_kafka._model_comments(OUT object text, OUT column_name text, OUT comment text)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
SELECT * FROM (VALUES
    -- objects
    ('kpi_state', NULL, 'state of the model, not a KPI: time zone, rollup progress, covered offsets, model version (one row). Adds up over rows: none.'),
    ('customers', NULL, 'customer dimension, upserted from the customers topic'),
    ('products', NULL, 'product dimension, upserted from the products topic'),
    ('orders', NULL, 'orders, upserted from the orders topic'),
    ('order_lines', NULL, 'sales facts: one row per order line, appended by the pipelines'),
    ('order_lines_ingest_id_seq', NULL, 'numbers order lines as they are written (CACHE 1: the rollups depend on it)'),
    ('metrics', NULL, 'metric records: one row per series and record id, upserted by the metrics pipeline (a record sent again is the same row)'),
    ('metrics_ingest_id_seq', NULL, 'numbers metric records as they are written (CACHE 1: the metric summaries depend on it)'),
    ('metric_summary_view', NULL, 'the widths of the metric summaries, their views and their progress, kept by sales_kafka.refresh_rollups'),
    ('metric_summary', NULL, 'metric records summarised per bucket width, series and bucket, kept by sales_kafka.refresh_rollups'),
    ('metric_change', NULL, 'series and times of metric records changed or deleted since the last sales_kafka.refresh_rollups, whose buckets it computes again'),
    ('rollup_total', NULL, 'sums of all sales per time bucket, kept by sales_kafka.refresh_rollups'),
    ('rollup_product', NULL, 'sums of sales per product and time bucket, kept by sales_kafka.refresh_rollups'),
    ('rollup_customer', NULL, 'sums of sales per customer and hour, kept by sales_kafka.refresh_rollups: what moves between customer groups when customers change'),
    ('rollup_customer_group', NULL, 'sums of sales per customer group (segment, region, country, state, city as they are now) and time bucket, kept by sales_kafka.refresh_rollups'),
    ('rollup_price_band', NULL, 'sums of sales per band of price paid per unit, kept by sales_kafka.refresh_rollups'),
    ('time_dim', NULL, 'star schema: one row per day from the first to the last sale, in the model''s time zone (date_key joins the day of the KPI views). Adds up over rows: none.'),
    ('customers_dim', NULL, 'star schema: customers. Adds up over rows: none.'),
    ('products_dim', NULL, 'star schema: products, including products sold but not known yet (without attributes). Adds up over rows: none.'),
    ('sales_facts', NULL, 'star schema: order lines with their customer and shipping from the order. Adds up over rows: quantity, revenue, profit. Does not add up: unit_price, discount.'),
    ('kpi_totals', NULL, 'KPI: total revenue, profit, sales, orders, quantity and average order value (one row). Adds up over rows: revenue, profit, sales_count, order_count, quantity. Does not add up: average_order_value.'),
    ('kpi_today', NULL, 'KPI: today''s revenue, sales, orders and average order value, in the model''s time zone (one row). Adds up over rows: revenue, profit, sales_count, order_count, quantity. Does not add up: average_order_value.'),
    ('kpi_sales_per_minute', NULL, 'KPI: revenue and quantity per minute (one row per minute with sales). Adds up over rows: revenue, profit, sales_count, order_count, quantity. Does not add up: average_order_value.'),
    ('kpi_sales_per_hour', NULL, 'KPI: revenue and quantity per hour (one row per hour with sales). Adds up over rows: revenue, profit, sales_count, order_count, quantity. Does not add up: average_order_value.'),
    ('kpi_sales_per_day', NULL, 'KPI: revenue and quantity per day (one row per day with sales). Adds up over rows: revenue, profit, sales_count, order_count, quantity. Does not add up: average_order_value.'),
    ('kpi_sales_per_month', NULL, 'KPI: revenue and quantity per month (one row per month with sales). Adds up over rows: revenue, profit, sales_count, order_count, quantity. Does not add up: average_order_value.'),
    ('kpi_product_sales_hourly', NULL, 'KPI: revenue and quantity per product and hour, with the product''s current name and category; unordered (filter, group and order it in the query). Adds up over rows: revenue, profit, sales_count, quantity.'),
    ('kpi_product_sales_daily', NULL, 'KPI: revenue and quantity per product and day, with the product''s current name and category; unordered (filter, group and order it in the query). Adds up over rows: revenue, profit, sales_count, quantity.'),
    ('kpi_product_sales_monthly', NULL, 'KPI: revenue and quantity per product and month, with the product''s current name and category; unordered (filter, group and order it in the query). Adds up over rows: revenue, profit, sales_count, quantity.'),
    ('kpi_customer_sales_hourly', NULL, 'KPI: revenue per customer group (segment, region, country, state, city as they are now) and hour; unordered (filter, group and order it in the query). Adds up over rows: revenue, profit, sales_count, order_count, quantity.'),
    ('kpi_customer_sales_daily', NULL, 'KPI: revenue per customer group (segment, region, country, state, city as they are now) and day; unordered (filter, group and order it in the query). Adds up over rows: revenue, profit, sales_count, order_count, quantity.'),
    ('kpi_customer_sales_monthly', NULL, 'KPI: revenue per customer group (segment, region, country, state, city as they are now) and month; unordered (filter, group and order it in the query). Adds up over rows: revenue, profit, sales_count, order_count, quantity.'),
    ('kpi_sales_by_category', NULL, 'KPI: revenue per product category, all time. Adds up over rows: revenue, profit, sales_count, quantity. Does not add up: revenue_share_pct.'),
    ('kpi_sales_by_sub_category', NULL, 'KPI: revenue per product sub-category, all time. Adds up over rows: revenue, profit, sales_count, quantity. Does not add up: revenue_share_pct.'),
    ('kpi_sales_by_segment', NULL, 'KPI: revenue per customer segment, all time. Adds up over rows: revenue, profit, sales_count, order_count, quantity. Does not add up: revenue_share_pct.'),
    ('kpi_sales_by_region', NULL, 'KPI: revenue per region, all time. Adds up over rows: revenue, profit, sales_count, order_count, quantity. Does not add up: revenue_share_pct.'),
    ('kpi_sales_by_state', NULL, 'KPI: revenue per state, all time. Adds up over rows: revenue, profit, sales_count, order_count, quantity. Does not add up: revenue_share_pct.'),
    ('kpi_sales_by_city', NULL, 'KPI: revenue per city, all time. Adds up over rows: revenue, profit, sales_count, order_count, quantity. Does not add up: revenue_share_pct.'),
    ('kpi_today_top_products', NULL, 'KPI: today''s five products with the most revenue. Adds up over rows: revenue, sales_count, quantity (of these five products, not of the day). Does not add up: rank.'),
    ('kpi_today_by_category', NULL, 'KPI: today''s revenue per category. Adds up over rows: revenue, sales_count, quantity. Does not add up: revenue_share_pct.'),
    ('kpi_metrics_10min', NULL, 'KPI: metric streams summarised per series in 10-minute buckets (one row per series and bucket, as of the last rollup). Adds up over rows: samples. Does not add up: stock_price_open, stock_price_close, stock_price_low, stock_price_high, stock_price_average, sales_trend_average.'),
    ('kpi_metrics_20min', NULL, 'KPI: metric streams summarised per series in 20-minute buckets (one row per series and bucket, as of the last rollup). Adds up over rows: samples. Does not add up: stock_price_open, stock_price_close, stock_price_low, stock_price_high, stock_price_average, sales_trend_average.'),
    ('kpi_top_products', NULL, 'KPI: products ranked by revenue and by quantity, all time (one row per product). Adds up over rows: revenue, profit, sales_count, quantity. Does not add up: revenue_rank, quantity_rank.'),
    ('kpi_price_distribution', NULL, 'KPI: sales per band of price paid per unit, all time (one row per band). Adds up over rows: sales_count, quantity, revenue. Does not add up: sales_share_pct.'),
    ('kpi_growth_yoy', NULL, 'KPI: revenue and orders per month against the same month a year before (one row per month). Adds up over rows: revenue, order_count. Does not add up: revenue_year_before, order_count_year_before, revenue_growth_pct, order_growth_pct.'),
    ('kpi_as_of', NULL, 'KPI: when the KPIs were last brought up to date, the Kafka offsets they cover, and on a standby how far its replay is behind. Adds up over rows: none.'),
    ('kpi_as_of_views', NULL, 'KPI: per KPI view, whether it reads the rollups or the tables and as of when it shows the sales. Adds up over rows: none.'),
    ('kpi_as_of_partitions', NULL, 'KPI: per pipeline partition, the offset the KPIs cover and the offset committed now. Adds up over rows: none (offsets are positions in a partition).'),
    -- columns
    (NULL, 'singleton', 'always true: the table has one row'),
    (NULL, 'time_zone', 'time zone in which days, hours and months are cut'),
    (NULL, 'rolled_up_through', 'ingest_id of the last order line in the rollups'),
    (NULL, 'rolled_up_rows', 'order lines in the rollups'),
    (NULL, 'rolled_up_at', 'when the rollups were last brought up to date'),
    (NULL, 'covered_offsets', 'per pipeline into order_lines, topic and partition: every message before this offset is in the rollups'),
    (NULL, 'views_refreshed_at', 'when sales_kafka.refresh_kpis last ran (the KPI views need no refresh of their own since 1.3)'),
    (NULL, 'is_standby', 'true on a physical standby, which shows the primary''s KPIs as of its last replayed transaction'),
    (NULL, 'replayed_at', 'on a standby, when the last transaction it replayed committed on the primary (NULL on a primary)'),
    (NULL, 'replay_lag', 'on a standby, how long ago the last transaction it replayed committed on the primary (NULL on a primary)'),
    (NULL, 'view_name', 'name of a KPI view of the model'),
    (NULL, 'reads', 'what the view reads: rollups (as of the last rollup) or tables (as they are)'),
    (NULL, 'as_of', 'the view shows the sales as they were at this time'),
    (NULL, 'lag', 'how long ago as_of was'),
    (NULL, 'model_version', 'version of sales_kafka whose model this is (sales_kafka.upgrade_sales_model brings it to the installed one)'),
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
    (NULL, 'ingest_id', 'the order in which rows were written (drives the rollups and the metric summaries)'),
    (NULL, 'series', 'the metric stream: the series field of its messages, or its topic'),
    (NULL, 'record_id', 'the record''s id within its series, as its producer numbers it (a record sent again is the same record)'),
    (NULL, 'measured_at', 'time of the measurement'),
    (NULL, 'bucket_width', 'length of the summary''s buckets'),
    (NULL, 'summarized_through', 'ingest_id of the last metric record in the summary'),
    (NULL, 'first_at', 'time of the first sample of the bucket'),
    (NULL, 'first_record', 'record id of the first sample of the bucket (the smallest, among samples of the same time)'),
    (NULL, 'last_at', 'time of the last sample of the bucket'),
    (NULL, 'last_record', 'record id of the last sample of the bucket (the largest, among samples of the same time)'),
    (NULL, 'stock_price_sum', 'sum of the stock prices of the bucket'),
    (NULL, 'stock_price_samples', 'samples of the bucket with a stock price'),
    (NULL, 'sales_trend_open', 'first sales trend of the period'),
    (NULL, 'sales_trend_close', 'last sales trend of the period'),
    (NULL, 'sales_trend_low', 'lowest sales trend of the period'),
    (NULL, 'sales_trend_high', 'highest sales trend of the period'),
    (NULL, 'sales_trend_sum', 'sum of the sales trends of the bucket'),
    (NULL, 'sales_trend_samples', 'samples of the bucket with a sales trend'),
    (NULL, 'stock_price', 'stock price measured'),
    (NULL, 'sales_trend', 'sales trend measured'),
    (NULL, 'grain', 'bucket size: minute, hour, day, month (all: one bucket for all time)'),
    (NULL, 'bucket', 'start of the time bucket'),
    (NULL, 'band', 'price band: width_bucket of the price paid per unit over 5, 10, 20, 50, 100, 200, 500, 1000'),
    (NULL, 'period_start', 'start of the period (a point in time; day, year, quarter, month and hour say when in the model''s time zone)'),
    (NULL, 'period_end', 'end of the period (exclusive)'),
    (NULL, 'sales_count', 'number of sales (order lines)'),
    (NULL, 'order_count', 'number of orders (an order counts where its first line does)'),
    (NULL, 'average_order_value', 'revenue per order (an average: does not add up over rows)'),
    (NULL, 'revenue_share_pct', 'share of the revenue, in percent (does not add up over rows)'),
    (NULL, 'sales_share_pct', 'share of the sales, in percent'),
    (NULL, 'date_key', 'calendar day, in the model''s time zone'),
    (NULL, 'year', 'year, in the model''s time zone'),
    (NULL, 'quarter', 'quarter of the year (1-4), in the model''s time zone'),
    (NULL, 'month', 'month of the year (1-12), in the model''s time zone (in kpi_growth_yoy: the first day of the month)'),
    (NULL, 'month_name', 'name of the month'),
    (NULL, 'iso_week', 'ISO 8601 week number'),
    (NULL, 'iso_day_of_week', 'ISO 8601 day of the week (1 = Monday)'),
    (NULL, 'day_name', 'name of the day of the week'),
    (NULL, 'weekend', 'true on Saturdays and Sundays'),
    (NULL, 'day', 'day of the period, in the model''s time zone (in kpi_today: today); joins time_dim.date_key'),
    (NULL, 'hour', 'hour of the day (0-23) of the period, in the model''s time zone'),
    (NULL, 'rank', 'rank by revenue (1 = most)'),
    (NULL, 'revenue_rank', 'rank by revenue (1 = most)'),
    (NULL, 'quantity_rank', 'rank by units sold (1 = most)'),
    (NULL, 'samples', 'measurements in the period (adds up over periods and series)'),
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

-- Comments the model's objects and their columns; refuses (as an internal
-- error, which the tests catch) an object of the list that the model lacks
-- and a column without a comment.
CREATE FUNCTION sales_kafka._comment_model(model_schema name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := quote_ident(model_schema);
    o record;
    missing text;
BEGIN
    PERFORM sales_kafka._use_model_schema(model_schema);
    FOR o IN SELECT c.oid, c.relname, c.relkind, m.comment
               FROM sales_kafka._model_comments() m
               JOIN pg_class c ON c.relname = m.object
              WHERE c.relnamespace = model_schema::regnamespace
    LOOP
        EXECUTE format('COMMENT ON %s %s.%I IS %L',
                       CASE o.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                      WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                       s, o.relname, o.comment);
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
    SELECT string_agg(m.object, ', ' ORDER BY m.object)
      INTO missing
      FROM sales_kafka._model_comments() m
     WHERE m.object IS NOT NULL
       AND NOT EXISTS (SELECT FROM pg_class c
                        WHERE c.relnamespace = model_schema::regnamespace AND c.relname = m.object);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'sales model "%" lacks objects: %', model_schema, missing
            USING ERRCODE = 'internal_error';
    END IF;
    SELECT string_agg(format('%s.%s', c.relname, a.attname), ', ' ORDER BY c.relname, a.attnum)
      INTO missing
      FROM sales_kafka._model_comments() m
      JOIN pg_class c ON c.relname = m.object
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE c.relnamespace = model_schema::regnamespace
       AND c.relkind <> 'S'
       AND col_description(c.oid, a.attnum) IS NULL;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'sales model objects without a comment: %', missing
            USING ERRCODE = 'internal_error';
    END IF;
END
$$;

COMMENT ON FUNCTION sales_kafka._comment_model(name) IS
'internal: comments every object and column of a sales model, for create_sales_model and upgrade_sales_model';
