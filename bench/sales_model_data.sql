-- bench/sales_model_data.sql: the products, customers and orders of the
-- KPI benchmarks (bench/kpi_dashboard.sh, bench/dashboard.sh), into the
-- sales model "s"; included with psql's \i after create_sales_model.

-- 17 sub-categories in 5 categories
CREATE TABLE bench_sub_category (k int PRIMARY KEY, category text, sub_category text);
INSERT INTO bench_sub_category VALUES
  (0, 'Technology', 'Phones'), (1, 'Technology', 'Computers'), (2, 'Technology', 'Accessories'),
  (3, 'Technology', 'Machines'), (4, 'Furniture', 'Chairs'), (5, 'Furniture', 'Tables'),
  (6, 'Furniture', 'Bookcases'), (7, 'Office Supplies', 'Paper'), (8, 'Office Supplies', 'Binders'),
  (9, 'Office Supplies', 'Storage'), (10, 'Office Supplies', 'Art'), (11, 'Home', 'Appliances'),
  (12, 'Home', 'Furnishings'), (13, 'Home', 'Kitchen'), (14, 'Clothing', 'Shirts'),
  (15, 'Clothing', 'Shoes'), (16, 'Clothing', 'Outerwear');

-- products 1..1000: list price log-uniform in [1.50, 3000), margin 5-45 %
CREATE TABLE bench_product (n int PRIMARY KEY, product_id text, price numeric(12,2), margin numeric);
INSERT INTO bench_product
SELECT n, 'P' || lpad(n::text, 4, '0'),
       round(1.5 * power(2000, ((n * 7919) % 1000) / 1000.0), 2),
       0.05 + ((n * 104729) % 41) / 100.0
  FROM generate_series(1, 1000) n;
INSERT INTO s.products
SELECT b.product_id, sc.sub_category || ' ' || b.n, sc.category, sc.sub_category
  FROM bench_product b JOIN bench_sub_category sc ON sc.k = b.n % 17;

-- customers 1..5000: 3 segments, 20 states in 4 regions, 10 cities a state
CREATE TABLE bench_state (k int PRIMARY KEY, state text, region text);
INSERT INTO bench_state VALUES
  (0, 'New York', 'East'), (1, 'Pennsylvania', 'East'), (2, 'Massachusetts', 'East'),
  (3, 'New Jersey', 'East'), (4, 'Ohio', 'East'), (5, 'California', 'West'),
  (6, 'Washington', 'West'), (7, 'Oregon', 'West'), (8, 'Arizona', 'West'),
  (9, 'Colorado', 'West'), (10, 'Texas', 'Central'), (11, 'Illinois', 'Central'),
  (12, 'Michigan', 'Central'), (13, 'Minnesota', 'Central'), (14, 'Missouri', 'Central'),
  (15, 'Florida', 'South'), (16, 'Georgia', 'South'), (17, 'North Carolina', 'South'),
  (18, 'Virginia', 'South'), (19, 'Tennessee', 'South');
-- (state, city and segment independent of each other: 600 combinations)
INSERT INTO s.customers
SELECT 'C' || lpad(c::text, 5, '0'), 'Customer ' || c,
       (ARRAY['Consumer', 'Consumer', 'Consumer', 'Consumer', 'Consumer',
              'Corporate', 'Corporate', 'Corporate', 'Home Office', 'Home Office'])[1 + h % 10],
       'United States', st.state || ' city ' || (1 + (c / 20) % 10), st.state,
       lpad((h % 100000)::text, 5, '0'), st.region
  FROM generate_series(1, 5000) c
  CROSS JOIN LATERAL (SELECT (c * 2654435761) % 4294967296 / 65536 AS h) hh
  JOIN bench_state st ON st.k = c % 20;

-- bench_orders(o_first, norders, max_lines, ta, tb, recent): orders o_first ..
-- o_first + norders - 1 and their lines (1-4 each, 10 lines every 4 orders
-- when o_first is a multiple of 4), at most max_lines of them; returns the
-- lines written.  Not recent: sold evenly over [ta, tb) in order-number order,
-- 1 % of the orders today instead.  recent: 90 % in the last 10 minutes, 8 %
-- in the last 7 days, 2 % in the last year (late events).
CREATE FUNCTION bench_orders(o_first bigint, norders bigint, max_lines bigint,
                             ta timestamptz, tb timestamptz, recent boolean)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  today timestamptz := date_trunc('day', now(), (SELECT time_zone FROM s.kpi_state));
  n bigint;
BEGIN
  WITH o AS MATERIALIZED (
    SELECT 'O' || lpad(k::text, 10, '0') AS order_id,
           1 + (k + k / 4) % 4 AS nlines,
           'C' || lpad((1 + floor(random() * 5000))::text, 5, '0') AS customer_id,
           CASE WHEN recent THEN
                  now() - CASE WHEN r < 0.90 THEN interval '10 minutes'
                               WHEN r < 0.98 THEN interval '7 days'
                               ELSE interval '365 days' END * random()
                WHEN r < 0.01 THEN today + (now() - today) * random()
                ELSE ta + (tb - ta) * ((k - o_first + random()) / norders) END AS sold_at
      FROM (SELECT k, random() AS r FROM generate_series(o_first, o_first + norders - 1) k) g),
  ins AS (
    INSERT INTO s.orders
    SELECT order_id, customer_id, sold_at,
           (sold_at + interval '1 day' * (1 + floor(random() * 5)))::date,
           (ARRAY['Standard Class', 'Standard Class', 'Second Class', 'First Class', 'Same Day'])[1 + floor(random() * 5)],
           (ARRAY['Low', 'Medium', 'Medium', 'High', 'Critical'])[1 + floor(random() * 5)]
      FROM o)
  INSERT INTO s.order_lines (order_id, line, sold_at, customer_id, product_id,
                             quantity, unit_price, discount, profit)
  SELECT l.order_id, l.line, l.sold_at, l.customer_id, p.product_id, l.quantity, p.price, l.discount,
         round(l.quantity * p.price * (p.margin - l.discount), 2)
    FROM (SELECT o.order_id, g.line, o.sold_at, o.customer_id,
                 1 + floor(1000 * power(random(), 1.5))::int AS pn,
                 1 + floor(random() * 10)::int AS quantity,
                 (ARRAY[0, 0, 0, 0, 0, 0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.2])[1 + floor(random() * 15)]::numeric AS discount
            FROM o, generate_series(1, o.nlines) g(line)
           LIMIT max_lines) l
    JOIN bench_product p ON p.n = l.pn;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
