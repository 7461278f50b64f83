/*-------------------------------------------------------------------------
 *
 * decode.c
 *		A Kafka message turned into a row through a foreign table's mapping:
 *		metadata columns, dispatch by payload format, type conversion.
 *
 * This is the only place where a message becomes a row.  The FDW scan,
 * sales_kafka.decode() and the ingest workers all call
 * sk_decode_message() on a mapping loaded by sk_mapping_load()
 * (mapping.c), so what SELECT shows is exactly what a pipeline writes.  The formats' own
 * parsers (decode_json.c, decode_csv.c) only pull raw field text out of a
 * payload; every conversion to a column type happens here, with the
 * column type's input function.
 *
 * Errors: a bad message raises an ERROR (SQLSTATE class 22 or 54) with a
 * context naming topic, partition and offset.  A caller that asks to
 * capture errors gets them back instead: decoding then runs inside an
 * internal subtransaction that is rolled back on error.  Decoding writes
 * nothing, so the subtransaction never gets an XID.  Interrupts and
 * errors of any other class are re-thrown, never captured.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "sales_kafka.h"

/* ---------------------------------------------------------------------
 * Conversions
 * ---------------------------------------------------------------------
 */

/*
 * Epoch milliseconds as a timestamptz Datum; throws when out of range.
 */
Datum
sk_timestamp_from_ms(int64 ms)
{
	TimestampTz ts;

	ts = (ms - (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) *
		  SECS_PER_DAY * 1000) * 1000;
	if (ms < -(int64) 1e15 || ms > (int64) 1e15 || !IS_VALID_TIMESTAMP(ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range: " INT64_FORMAT " epoch milliseconds",
						ms)));
	return TimestampTzGetDatum(ts);
}

/* A timestamptz as epoch milliseconds, rounded down */
int64
sk_timestamp_to_ms(TimestampTz ts)
{
	int64		us = ts + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) *
		SECS_PER_DAY * USECS_PER_SEC;

	return us >= 0 ? us / 1000 : -((-us + 999) / 1000);
}

static char *
message_text(const char *bytes, size_t len, const char *what)
{
	sk_check_text(bytes, len, what);
	return pnstrdup(bytes, len);
}

/* Raw bytes of a message as a value of the column's type. */
/* Bytes as a bytea; Kafka's message size limit keeps len far below 1 GB */
bytea *
sk_bytea(const char *bytes, size_t len)
{
	bytea	   *result = palloc(len + VARHDRSZ);

	SET_VARSIZE(result, len + VARHDRSZ);
	memcpy(VARDATA(result), bytes, len);
	return result;
}

static Datum
bytes_datum(SkColumn *col, const char *bytes, size_t len, const char *what)
{
	if (col->typid == BYTEAOID)
	{
		if (len > MaxAllocSize - VARHDRSZ)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("Kafka message %s is too large", what)));
		return PointerGetDatum(sk_bytea(bytes, len));
	}
	return InputFunctionCall(&col->infunc, message_text(bytes, len, what),
							 col->typioparam, col->typmod);
}

static bool
all_digits(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/*
 * A timestamp or timestamptz value rounded to the precision of a column
 * (its typmod, or for a domain its base type's), as the type's input
 * function rounds it; throws when rounding leaves the range.
 */
static Datum
time_precision(SkColumn *col, Datum value)
{
	int32		typmod = col->typid == col->basetypid ? col->typmod :
		col->basetypmod;
	Timestamp	ts = DatumGetTimestamp(value);

	if (typmod < 0 || col->basetypid == DATEOID)
		return value;
	AdjustTimestampForTypmod(&ts, typmod);
	return TimestampGetDatum(ts);
}

/* A time column from epoch milliseconds */
static Datum
time_from_ms(SkColumn *col, const char *str)
{
	char	   *end;
	double		ms;
	Datum		ts;

	errno = 0;
	ms = strtod(str, &end);
	if (*end != '\0' || errno != 0 || ms != ms)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
				 errmsg("invalid epoch milliseconds for column \"%s\": \"%s\"",
						col->name, str)));
	if (ms < -1e15 || ms > 1e15)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range: \"%s\" epoch milliseconds", str)));
	ts = sk_timestamp_from_ms((int64) ms);
	/* keep the sub-millisecond part */
	ts = TimestampTzGetDatum(DatumGetTimestampTz(ts) +
							 (int64) ((ms - (double) (int64) ms) * 1000.0));
	if (col->basetypid == DATEOID)
		return DirectFunctionCall1(timestamptz_date, ts);
	if (col->basetypid == TIMESTAMPOID)
		ts = DirectFunctionCall1(timestamptz_timestamp, ts);
	return time_precision(col, ts);
}

static int
digits(const char *p, int n)
{
	int			v = 0;

	while (n-- > 0)
	{
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p++ - '0');
	}
	return v;
}

/*
 * The common ISO 8601 form producers write, YYYY-MM-DD[T ]HH:MM:SS[.ffffff]
 * followed by Z or an offset (+HH, +HHMM, +HH:MM), the len bytes at s
 * parsed directly: the general input function costs more than the rest of
 * a message.  Returns false for anything else, which then goes to the
 * input function, so the result is always what timestamptz_in would give.
 */
static bool
iso_timestamptz(const char *s, int len, TimestampTz *result)
{
	const char *end = s + len;
	int			year,
				month,
				day,
				hour,
				minute,
				second,
				usec = 0,
				offset = 0;
	const char *p;

	if (len < 20)				/* YYYY-MM-DDTHH:MM:SSZ */
		return false;
	year = digits(s, 4);
	if (year < 1 || s[4] != '-' || s[7] != '-' ||
		(s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
		return false;
	month = digits(s + 5, 2);
	day = digits(s + 8, 2);
	hour = digits(s + 11, 2);
	minute = digits(s + 14, 2);
	second = digits(s + 17, 2);
	if (month < 1 || month > 12 || day < 1 ||
		day > day_tab[isleap(year)][month - 1] ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 ||
		second < 0 || second > 59)
		return false;
	p = s + 19;
	if (*p == '.')
	{
		int			n = 0;

		for (p++; p < end && *p >= '0' && *p <= '9'; p++, n++)
			if (n < 6)
				usec = usec * 10 + (*p - '0');
		if (n == 0 || n > 6)
			return false;
		for (; n < 6; n++)
			usec *= 10;
	}
	if (p < end && *p == 'Z' && p + 1 == end)
		offset = 0;
	else if (end - p >= 3 && (*p == '+' || *p == '-'))
	{
		int			oh = digits(p + 1, 2),
					om = 0;
		const char *q = p + 3;

		if (q < end && *q == ':')
			q++;
		if (q < end)
		{
			if (end - q < 2)
				return false;
			om = digits(q, 2);
			q += 2;
		}
		if (oh < 0 || oh > 15 || om < 0 || om > 59 || q != end)
			return false;
		offset = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
	}
	else
		return false;

	*result = ((int64) (date2j(year, month, day) - POSTGRES_EPOCH_JDATE) * SECS_PER_DAY +
			   hour * 3600 + minute * 60 + second - offset) * USECS_PER_SEC + usec;
	return IS_VALID_TIMESTAMP(*result);
}

/*
 * The len bytes at s as a plain decimal: an optional minus sign, 1 to 18
 * digits, and with point a decimal point between two of them.  Its
 * digits as an integer, how many there are and how many follow the point.
 */
static bool
plain_decimal(const char *s, int len, bool point, int64 *value,
			  int *ndigits, int *scale)
{
	const char *end = s + len;
	const char *dot = NULL;
	int64		v = 0;
	int			n = 0;
	bool		neg = s < end && *s == '-';

	for (s += neg; s < end; s++)
	{
		if (*s >= '0' && *s <= '9')
		{
			if (++n > 18)
				return false;
			v = v * 10 + (*s - '0');
		}
		else if (*s == '.' && point && dot == NULL && n > 0 && s + 1 < end)
			dot = s;
		else
			return false;
	}
	if (n == 0)
		return false;
	*value = neg ? -v : v;
	*ndigits = n;
	*scale = dot != NULL ? (int) (end - dot - 1) : 0;
	return true;
}

/*
 * An integer or numeric column's value from plain decimal text ("-17",
 * "42.50"), as its input function would give it, without a copy of the
 * text or the function's general parsing; false for anything else,
 * including values out of range or that numeric(p,s) would round, which
 * the input function then takes, with its errors.
 */
static bool
plain_number(SkColumn *col, const char *s, int len, Datum *result)
{
	int64		v;
	int			ndigits;
	int			scale;

	if (col->typid != INT8OID && col->typid != INT4OID &&
		col->typid != INT2OID && col->typid != NUMERICOID)
		return false;
	if (!plain_decimal(s, len, col->typid == NUMERICOID, &v, &ndigits, &scale))
		return false;
	switch (col->typid)
	{
		case INT8OID:
			*result = Int64GetDatum(v);
			return true;
		case INT4OID:
			if (v < PG_INT32_MIN || v > PG_INT32_MAX)
				return false;
			*result = Int32GetDatum((int32) v);
			return true;
		case INT2OID:
			if (v < PG_INT16_MIN || v > PG_INT16_MAX)
				return false;
			*result = Int16GetDatum((int16) v);
			return true;
		default:
			break;
	}

	/* numeric(precision, typscale): as numeric.c encodes it (PostgreSQL 15) */
	if (col->typmod >= (int32) VARHDRSZ)
	{
		int			precision = ((col->typmod - VARHDRSZ) >> 16) & 0xffff;
		int			typscale = (((col->typmod - VARHDRSZ) & 0x7ff) ^ 1024) - 1024;

		/* digits before the point (leading zeros too) must fit; no rounding */
		if (typscale < 0 || scale > typscale ||
			ndigits - scale > precision - typscale ||
			ndigits - scale + typscale > 18)
			return false;
		for (; scale < typscale; scale++)
			v *= 10;
	}
	*result = NumericGetDatum(int64_div_fast_to_numeric(v, scale));
	return true;
}

/*
 * A payload field pulled out by a format, as a value of its column.  The
 * common forms of the common types are converted here (never for a domain,
 * whose input function checks its constraints), rounded to the column's
 * precision as the input function would; a time column with the option
 * "time_format" or "time_zone" goes to decode_time.c; the rest goes to the
 * column type's input function.  A domain over a JSON or time type takes
 * what its base type takes.  The formats never hand over text with a NUL
 * byte in it.
 */
static Datum
field_datum(SkMapping *map, SkColumn *col, SkRawValue *raw)
{
	TimestampTz ts;
	Datum		value;
	char	   *str;

	/*
	 * ISO 8601 with an offset is one instant whatever the options below
	 * say: the fast path first
	 */
	if (col->typid == TIMESTAMPTZOID && iso_timestamptz(raw->str, raw->len, &ts))
		return time_precision(col, TimestampTzGetDatum(ts));
	/* time columns with options of their own: decode_time.c */
	if (col->time_format != SK_TIME_DEFAULT || col->time_zone != NULL)
	{
		value = sk_time_from_text(col, pnstrdup(raw->str, raw->len),
								  raw->is_number);
		if (col->typid != col->basetypid)
			domain_check(value, false, col->typid, &col->domain_cache,
						 GetMemoryChunkContext(map));
		return value;
	}
	if (col->basetypid == JSONBOID || col->basetypid == JSONOID)
		return InputFunctionCall(&col->infunc, (char *) raw->json,
								 col->typioparam, col->typmod);
	/* what textin does */
	if (col->typid == TEXTOID)
		return PointerGetDatum(cstring_to_text_with_len(raw->str, raw->len));
	if (plain_number(col, raw->str, raw->len, &value))
		return value;

	str = pnstrdup(raw->str, raw->len);
	if ((col->basetypid == TIMESTAMPTZOID || col->basetypid == TIMESTAMPOID ||
		 col->basetypid == DATEOID) &&
		(raw->is_number || all_digits(str)))
	{
		value = time_from_ms(col, str);
		if (col->typid != col->basetypid)
			domain_check(value, false, col->typid, &col->domain_cache,
						 GetMemoryChunkContext(map));
		return value;
	}
	return InputFunctionCall(&col->infunc, str, col->typioparam, col->typmod);
}

/* A JSON string of bytes: as they are if valid text, else as \x hex */
static void
json_text_or_hex(StringInfo buf, const char *bytes, size_t size)
{
	StringInfoData hex;
	size_t		i;

	if (pg_verifymbstr(bytes, (int) size, true) &&
		memchr(bytes, '\0', size) == NULL)
	{
		escape_json(buf, pnstrdup(bytes, size));
		return;
	}
	initStringInfo(&hex);
	appendStringInfoString(&hex, "\\x");
	for (i = 0; i < size; i++)
		appendStringInfo(&hex, "%02x", ((const unsigned char *) bytes)[i]);
	escape_json(buf, hex.data);
	pfree(hex.data);
}

/*
 * Kafka headers as the text of a JSON object of strings (names and values
 * that are not valid text as \x hex); NULL headers give an empty object.
 * Never fails on a message's content: dead letters rely on it.
 */
char *
sk_headers_json(rd_kafka_headers_t *headers)
{
	StringInfoData buf;
	const char *name;
	const void *value;
	size_t		size;
	size_t		idx;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (idx = 0;
		 headers != NULL &&
		 rd_kafka_header_get_all(headers, idx, &name, &value, &size) ==
		 RD_KAFKA_RESP_ERR_NO_ERROR;
		 idx++)
	{
		if (idx > 0)
			appendStringInfoString(&buf, ", ");
		json_text_or_hex(&buf, name, strlen(name));
		appendStringInfoString(&buf, ": ");
		if (value == NULL)
			appendStringInfoString(&buf, "null");
		else
			json_text_or_hex(&buf, value, size);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

static Datum
headers_datum(SkColumn *col, rd_kafka_headers_t *headers)
{
	return InputFunctionCall(&col->infunc, sk_headers_json(headers),
							 col->typioparam, col->typmod);
}

/*
 * The decoder's view of a consumed message; headers are parsed only when
 * asked for, as that costs.
 */
void
sk_message_from_kafka(const rd_kafka_message_t *msg, const char *topic,
					  bool with_headers, SkMessage *m)
{
	rd_kafka_timestamp_type_t tstype;

	memset(m, 0, sizeof(SkMessage));
	m->topic = topic;
	m->partition = msg->partition;
	m->offset = msg->offset;
	m->timestamp_ms = rd_kafka_message_timestamp(msg, &tstype);
	m->log_append_time = tstype == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME;
	m->key = msg->key;
	m->key_len = msg->key_len;
	m->payload = msg->payload;
	m->len = msg->len;
	if (!with_headers ||
		rd_kafka_message_headers(msg, &m->headers) != RD_KAFKA_RESP_ERR_NO_ERROR)
		m->headers = NULL;
}

static Datum
int_datum(Oid typid, int64 value)
{
	if (typid == INT2OID)
		return Int16GetDatum((int16) value);
	if (typid == INT4OID)
		return Int32GetDatum((int32) value);
	return Int64GetDatum(value);
}

/* ---------------------------------------------------------------------
 * Decoding
 * ---------------------------------------------------------------------
 */

/* What the decoder is working on, for the error context */
typedef struct DecodeState
{
	SkMapping  *map;
	const SkMessage *msg;
	SkColumn   *column;			/* being converted, or NULL */
} DecodeState;

static void
decode_error_context(void *arg)
{
	DecodeState *state = (DecodeState *) arg;
	const SkMessage *msg = state->msg;

	if (state->column != NULL)
		errcontext("column \"%s\" of foreign table \"%s\"",
				   state->column->name, state->map->relname);
	if (msg->partition >= 0)
		errcontext("Kafka message in topic \"%s\", partition %d, offset " INT64_FORMAT,
				   msg->topic, msg->partition, msg->offset);
}

/* Metadata columns that cannot fail, for a row whose payload failed */
static void
decode_metadata(SkMapping *map, const SkMessage *msg, const bool *wanted,
				Datum *values, bool *nulls)
{
	int			i;

	for (i = 0; i < map->natts; i++)
	{
		SkColumn   *col = &map->columns[i];

		if (wanted != NULL && !wanted[i])
			continue;
		switch (col->kind)
		{
			case SK_COL_PARTITION:
				/* beyond a smallint: decode_all() raises the error */
				if (msg->partition >= 0 &&
					(col->typid != INT2OID || msg->partition <= PG_INT16_MAX))
				{
					values[i] = int_datum(col->typid, msg->partition);
					nulls[i] = false;
				}
				break;
			case SK_COL_OFFSET:
				if (msg->partition >= 0)
				{
					values[i] = Int64GetDatum(msg->offset);
					nulls[i] = false;
				}
				break;
			case SK_COL_TOPIC:
				/* text or a varchar long enough: see check_column_type() */
				values[i] = PointerGetDatum(cstring_to_text(msg->topic));
				nulls[i] = false;
				break;
			case SK_COL_KEY:
				/* raw or plain-text keys only: this must not fail */
				if (msg->key != NULL &&
					(col->typid == BYTEAOID ||
					 ((col->typid == TEXTOID || col->typid == VARCHAROID) &&
					  col->typmod < 0 &&
					  pg_verifymbstr(msg->key, (int) msg->key_len, true) &&
					  memchr(msg->key, '\0', msg->key_len) == NULL)))
				{
					values[i] = col->typid == BYTEAOID ?
						bytes_datum(col, msg->key, msg->key_len, "key") :
						PointerGetDatum(cstring_to_text_with_len(msg->key,
																 (int) msg->key_len));
					nulls[i] = false;
				}
				break;
			default:
				break;
		}
	}
}

/* Every wanted column of one message; throws on a bad message. */
static void
decode_all(DecodeState *state, const bool *wanted, Datum *values, bool *nulls)
{
	SkMapping  *map = state->map;
	const SkMessage *msg = state->msg;
	SkRawValue *raw = NULL;
	bool		parse = false;
	int			i;

	decode_metadata(map, msg, wanted, values, nulls);

	/* a payload is parsed only when the caller reads one of its fields */
	for (i = 0; i < map->natts && msg->payload != NULL && !parse; i++)
		parse = map->columns[i].kind == SK_COL_FIELD &&
			(wanted == NULL || wanted[i]);
	if (parse)
	{
		raw = palloc0(sizeof(SkRawValue) * Max(map->natts, 1));
		switch (map->format)
		{
			case SK_FORMAT_JSON:
				sk_json_extract(map, msg->payload, msg->len, wanted, raw);
				break;
			case SK_FORMAT_CSV:
				sk_csv_extract(map, message_text(msg->payload, msg->len, "payload"),
							   msg->len, wanted, raw);
				break;
			case SK_FORMAT_TEXT:
			case SK_FORMAT_BYTEA:
				/* the whole payload is the one payload column */
				break;
		}
	}

	for (i = 0; i < map->natts; i++)
	{
		SkColumn   *col = &map->columns[i];

		if (wanted != NULL && !wanted[i])
			continue;
		state->column = col;
		switch (col->kind)
		{
			case SK_COL_PARTITION:
				if (col->typid == INT2OID && msg->partition > PG_INT16_MAX)
					ereport(ERROR,
							(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							 errmsg("Kafka partition %d is out of range for type smallint",
									msg->partition)));
				break;
			case SK_COL_TIMESTAMP:
				if (msg->timestamp_ms >= 0)
				{
					values[i] = sk_timestamp_from_ms(msg->timestamp_ms);
					if (col->typid == TIMESTAMPOID)
						values[i] = DirectFunctionCall1(timestamptz_timestamp,
														values[i]);
					values[i] = time_precision(col, values[i]);
					nulls[i] = false;
				}
				break;
			case SK_COL_KEY:
				/* decode_metadata() did raw and plain-text keys already */
				if (msg->key != NULL && nulls[i])
				{
					values[i] = bytes_datum(col, msg->key, msg->key_len, "key");
					nulls[i] = false;
				}
				break;
			case SK_COL_HEADERS:
				if (msg->headers != NULL && rd_kafka_header_cnt(msg->headers) > 0)
				{
					values[i] = headers_datum(col, msg->headers);
					nulls[i] = false;
				}
				break;
			case SK_COL_PAYLOAD:
				if (msg->payload != NULL)
				{
					values[i] = bytes_datum(col, msg->payload, msg->len, "payload");
					nulls[i] = false;
				}
				break;
			case SK_COL_FIELD:
				if (msg->payload == NULL)
					break;
				if (map->format == SK_FORMAT_TEXT || map->format == SK_FORMAT_BYTEA)
				{
					values[i] = bytes_datum(col, msg->payload, msg->len, "payload");
					nulls[i] = false;
				}
				else if (raw[i].present && !raw[i].isnull)
				{
					values[i] = field_datum(map, col, &raw[i]);
					nulls[i] = false;
				}
				break;
			default:
				break;
		}
	}
	state->column = NULL;
}

/* decode_all()'s arguments, for sk_try_subtransaction() */
typedef struct DecodeWork
{
	DecodeState *state;
	const bool *wanted;
	Datum	   *values;
	bool	   *nulls;
} DecodeWork;

static void
decode_all_work(void *arg)
{
	DecodeWork *work = (DecodeWork *) arg;

	decode_all(work->state, work->wanted, work->values, work->nulls);
}

/* Errors that describe a bad message, as opposed to the system's state */
bool
sk_is_data_error(int sqlstate)
{
	return ERRCODE_TO_CATEGORY(sqlstate) == ERRCODE_DATA_EXCEPTION ||
		sqlstate == ERRCODE_STATEMENT_TOO_COMPLEX ||
		sqlstate == ERRCODE_PROGRAM_LIMIT_EXCEEDED;
}

/*
 * Decode one message into values/nulls (arrays of map->natts), for the
 * columns marked in wanted (NULL: all).  Values are palloc'd in
 * CurrentMemoryContext.
 *
 * With capture false, a bad message raises an ERROR.  With capture true,
 * it returns false and fills *error instead; the row then holds the
 * metadata columns, NULL payload columns and, if the table has one, the
 * error text in its "error" column.  Needs a transaction when capturing.
 */
bool
sk_decode_message(SkMapping *map, const SkMessage *msg, const bool *wanted,
				  Datum *values, bool *nulls, bool capture,
				  SkDecodeError *error)
{
	ErrorContextCallback errcallback;
	DecodeState state;
	DecodeWork	work;
	ErrorData  *edata;
	int			i;

	for (i = 0; i < map->natts; i++)
	{
		values[i] = (Datum) 0;
		nulls[i] = true;
	}

	state.map = map;
	state.msg = msg;
	state.column = NULL;
	errcallback.callback = decode_error_context;
	errcallback.arg = (void *) &state;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	if (!capture)
	{
		decode_all(&state, wanted, values, nulls);
		error_context_stack = errcallback.previous;
		return true;
	}

	work.state = &state;
	work.wanted = wanted;
	work.values = values;
	work.nulls = nulls;
	edata = sk_try_subtransaction(decode_all_work, &work);
	error_context_stack = errcallback.previous;

	if (edata == NULL)
		return true;
	if (!sk_is_data_error(edata->sqlerrcode))
		ReThrowError(edata);

	error->sqlstate = edata->sqlerrcode;
	error->message = edata->message;
	error->detail = edata->detail;

	for (i = 0; i < map->natts; i++)
	{
		values[i] = (Datum) 0;
		nulls[i] = true;
	}
	decode_metadata(map, msg, wanted, values, nulls);
	if (map->error_attno > 0 &&
		(wanted == NULL || wanted[map->error_attno - 1]))
	{
		values[map->error_attno - 1] = CStringGetTextDatum(error->message);
		nulls[map->error_attno - 1] = false;
	}
	return false;
}
