--
-- Data as producers send it, without any broker: the column options
-- "alias" (another name of a field, as the Superstore dataset names its
-- columns), "time_format" (epoch seconds, milliseconds or microseconds, or
-- a to_timestamp() template, whatever DateStyle says) and "time_zone" (the
-- zone of times written without an offset); a message with none of the
-- mapped fields is an error, not a row of NULLs.
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS sales_kafka CASCADE;
RESET client_min_messages;
SET timezone = 'UTC';
-- the US order of 11/8/2016 must not depend on it
SET datestyle = 'ISO, DMY';

CREATE EXTENSION sales_kafka;
CREATE SERVER kafka FOREIGN DATA WRAPPER sales_kafka OPTIONS (brokers '127.0.0.1:1');

-- the dataset's names and ours; US dates, every value a string
CREATE FOREIGN TABLE store (
  order_id text OPTIONS (alias 'Order ID'),
  line integer OPTIONS (field 'row_id', alias 'Row ID'),
  sold_at timestamptz OPTIONS (field 'order_date', alias 'Order Date',
                               time_format 'MM/DD/YYYY', time_zone 'America/New_York'),
  ship_date date OPTIONS (alias 'Ship Date', time_format 'MM/DD/YYYY'),
  sales numeric(14,2) OPTIONS (alias 'Sales'),
  sub_category text OPTIONS (alias 'Sub-Category')
) SERVER kafka OPTIONS (topic 'store');

SELECT * FROM sales_kafka.decode(NULL::store,
  '{"Row ID": "7", "Order ID": "CA-2016-152156", "Order Date": "11/8/2016", "Ship Date": "11/11/2016", "Sales": "261.96", "Sub-Category": "Bookcases"}');
-- ours, in ISO 8601 (the template leaves YYYY-MM-DD to ISO)
SELECT * FROM sales_kafka.decode(NULL::store,
  '{"row_id": 8, "order_id": "CA-2016-1", "order_date": "2016-11-08", "ship_date": "2016-11-11", "sales": 1.5, "sub_category": "Chairs"}');
-- both names: the column's own wins
SELECT order_id, line FROM sales_kafka.decode(NULL::store,
  '{"Order ID": "theirs", "order_id": "ours", "Row ID": "1", "row_id": 2}');
-- a summer date: midnight in New York is 04:00 UTC
SELECT sold_at FROM sales_kafka.decode(NULL::store, '{"Order Date": "7/4/2017"}');
-- some fields are enough
SELECT order_id, sales FROM sales_kafka.decode(NULL::store, '{"Order ID": "X", "Extra": 1}');
-- a JSON null is a field that is there
SELECT order_id IS NULL AS is_null FROM sales_kafka.decode(NULL::store, '{"Order ID": null}');

-- simple sale events as Python writes them
CREATE FOREIGN TABLE events (
  product_name text,
  sold_at timestamptz OPTIONS (field 'timestamp', time_format 'epoch', time_zone 'Europe/Berlin')
) SERVER kafka OPTIONS (topic 'events');
-- time.time(): epoch seconds with a fraction
SELECT sold_at FROM sales_kafka.decode(NULL::events, '{"product_name": "Tea", "timestamp": 1700000000.25}');
-- the same as a string
SELECT sold_at FROM sales_kafka.decode(NULL::events, '{"product_name": "Tea", "timestamp": "1700000000.25"}');
-- epoch milliseconds and microseconds, told by their size
SELECT sold_at FROM sales_kafka.decode(NULL::events, '{"timestamp": 1700000000250}');
SELECT sold_at FROM sales_kafka.decode(NULL::events, '{"timestamp": 1700000000250000}');
-- str(datetime.now()): a local time of the zone
SELECT sold_at FROM sales_kafka.decode(NULL::events, '{"timestamp": "2023-11-14 23:13:20.250000"}');
-- ISO 8601 with an offset keeps its offset
SELECT sold_at FROM sales_kafka.decode(NULL::events, '{"timestamp": "2023-11-14T22:13:20.25+00:00"}');
SELECT sold_at FROM sales_kafka.decode(NULL::events, '{"timestamp": "2023-11-14 17:13:20.25 America/New_York"}');
-- a local time in the DST gap of the zone moves forward, as timestamptz input does
SELECT sold_at FROM sales_kafka.decode(NULL::events, '{"timestamp": "2024-03-31 02:30:00"}');

-- explicit units; timestamp and date columns
CREATE FOREIGN TABLE units (
  s timestamptz OPTIONS (time_format 'epoch_s'),
  ms timestamptz OPTIONS (time_format 'epoch_ms'),
  us timestamptz OPTIONS (time_format 'epoch_us'),
  local_s timestamp OPTIONS (field 's', time_format 'epoch_s'),
  day date OPTIONS (field 'd', time_format 'DD.MM.YYYY'),
  at_local timestamp(0) OPTIONS (field 't', time_format 'MM/DD/YYYY HH24:MI:SS')
) SERVER kafka OPTIONS (topic 'units');
SELECT * FROM sales_kafka.decode(NULL::units,
  '{"s": 86400, "ms": 86400000, "us": "86400000000", "d": "31.12.1999", "t": "12/31/1999 23:59:59"}');

-- a lenient table: the error goes into its error column
CREATE FOREIGN TABLE lenient (
  order_id text OPTIONS (alias 'Order ID'),
  error text OPTIONS (kafka 'error')
) SERVER kafka OPTIONS (topic 'store', strict 'false');
SELECT * FROM sales_kafka.decode(NULL::lenient, '{"orderId": "X"}');

-- CSV with header 'match' takes the alias too
CREATE FOREIGN TABLE store_csv (
  order_id text OPTIONS (alias 'Order ID'),
  sold_on date OPTIONS (field 'order_date', alias 'Order Date', time_format 'MM/DD/YYYY')
) SERVER kafka OPTIONS (topic 'store', format 'csv', header 'match');
SELECT * FROM sales_kafka.decode(NULL::store_csv, E'Row ID,Order ID,Order Date\n1,CA-1,11/8/2016');

-- invalid messages
\set VERBOSITY default
SELECT * FROM sales_kafka.decode(NULL::store, '{"orderId": "X", "date": "11/8/2016"}'); -- ERROR: no field matched
SELECT * FROM sales_kafka.decode(NULL::store, '{}'); -- ERROR: no field matched
SELECT * FROM sales_kafka.decode(NULL::store_csv, E'a,b\n1,2'); -- ERROR: no header matched
SELECT * FROM sales_kafka.decode(NULL::store, '{"Order Date": "2016/11/08"}'); -- ERROR: not the template
SELECT * FROM sales_kafka.decode(NULL::store, '{"Order Date": "13/8/2016"}'); -- ERROR: no month 13
SELECT * FROM sales_kafka.decode(NULL::store, '{"Order Date": "11/8/2016 10:00"}'); -- ERROR: more than the template
SELECT * FROM sales_kafka.decode(NULL::events, '{"timestamp": 1e30}'); -- ERROR: out of range
SELECT * FROM sales_kafka.decode(NULL::events, '{"timestamp": "yesterday at noon"}'); -- ERROR: not a time
\set VERBOSITY terse

-- invalid options, refused by CREATE and ALTER
CREATE FOREIGN TABLE bad (a timestamptz OPTIONS (time_format 'epoch_seconds')) SERVER kafka OPTIONS (topic 't'); -- ERROR: no such format
CREATE FOREIGN TABLE bad (a timestamptz OPTIONS (time_format 'HH24:MI')) SERVER kafka OPTIONS (topic 't'); -- ERROR: no date
CREATE FOREIGN TABLE bad (a timestamptz OPTIONS (time_format '')) SERVER kafka OPTIONS (topic 't'); -- ERROR: empty
CREATE FOREIGN TABLE bad (a timestamptz OPTIONS (time_format 'FMMonth')) SERVER kafka OPTIONS (topic 't'); -- ERROR: a month is not a date
CREATE FOREIGN TABLE bad (a timestamptz OPTIONS (time_zone 'Mars/Olympus')) SERVER kafka OPTIONS (topic 't'); -- ERROR: no such zone
CREATE FOREIGN TABLE bad (a text OPTIONS (alias '')) SERVER kafka OPTIONS (topic 't'); -- ERROR: empty alias
CREATE FOREIGN TABLE bad (a text OPTIONS (kafka 'key', alias 'A')) SERVER kafka OPTIONS (topic 't'); -- ERROR: metadata has no alias
CREATE FOREIGN TABLE bad (a timestamptz OPTIONS (kafka 'timestamp', time_format 'epoch')) SERVER kafka OPTIONS (topic 't'); -- ERROR: metadata has no format
CREATE FOREIGN TABLE bad (a text OPTIONS (json_path '$.a.b', alias 'A')) SERVER kafka OPTIONS (topic 't'); -- ERROR: alias of a path
CREATE FOREIGN TABLE bad (a text OPTIONS (time_formats 'epoch')) SERVER kafka OPTIONS (topic 't'); -- ERROR: misspelt
ALTER FOREIGN TABLE store ALTER COLUMN ship_date OPTIONS (SET time_format 'DD/MM'); -- ERROR: no year
ALTER FOREIGN TABLE store ALTER COLUMN ship_date OPTIONS (SET time_format 'YYYY-MM-DD TZ'); -- ERROR: cannot read it back
ALTER FOREIGN TABLE store ALTER COLUMN ship_date OPTIONS (ADD time_zone 'Nowhere'); -- ERROR: no such zone
-- the column's type is checked when the table is read
CREATE FOREIGN TABLE bad_type (a integer OPTIONS (time_format 'epoch')) SERVER kafka OPTIONS (topic 't');
SELECT * FROM sales_kafka.decode(NULL::bad_type, '{"a": 1}'); -- ERROR: not a time column
CREATE FOREIGN TABLE bad_zone (a date OPTIONS (time_zone 'UTC')) SERVER kafka OPTIONS (topic 't');
SELECT * FROM sales_kafka.decode(NULL::bad_zone, '{"a": 1}'); -- ERROR: a zone needs timestamptz
CREATE FOREIGN TABLE bad_alias (a text OPTIONS (alias 'A')) SERVER kafka OPTIONS (topic 't', format 'csv');
SELECT * FROM sales_kafka.decode(NULL::bad_alias, 'x'); -- ERROR: CSV without header match

DROP EXTENSION sales_kafka CASCADE;
