/*-------------------------------------------------------------------------
 *
 * encode.c
 *		A foreign table row turned into a Kafka message, the inverse of
 *		decode.c: payload in the table's format, key, partition, timestamp
 *		and headers from the metadata columns.
 *
 * JSON payloads are objects of the payload columns, keyed by their field
 * name or nested along their json_path (array subscripts cannot be
 * produced); values keep their JSON types (numbers, booleans, json/jsonb as
 * is, times in ISO 8601, everything else as strings).  CSV payloads quote as
 * COPY does.  A non-NULL "payload" column, or a json_path '$' column, is
 * sent as the message as it is; a row with neither payload columns nor a
 * payload value is a tombstone.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "sales_kafka.h"

/* The text of a value in a JSON document */
static void
append_json_value(StringInfo buf, SkColumn *col, Datum value, bool isnull)
{
	char	   *text;

	if (isnull)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	switch (col->basetypid)
	{
		case BOOLOID:
			appendStringInfoString(buf, DatumGetBool(value) ? "true" : "false");
			return;
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			text = OutputFunctionCall(&col->outfunc, value);
			/* NaN and infinities are not JSON numbers */
			if (IsValidJsonNumber(text, strlen(text)))
				appendStringInfoString(buf, text);
			else
				escape_json(buf, text);
			return;
		case JSONOID:
		case JSONBOID:
			appendStringInfoString(buf, OutputFunctionCall(&col->outfunc, value));
			return;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			{
				char		tbuf[MAXDATELEN + 1];

				escape_json(buf, JsonEncodeDateTime(tbuf, value, col->basetypid, NULL));
				return;
			}
		default:
			escape_json(buf, OutputFunctionCall(&col->outfunc, value));
	}
}

/*
 * Append the JSON object of the payload columns whose path starts with
 * prefix (depth steps), nesting where paths share a key.
 */
static void
append_json_object(StringInfo buf, SkMapping *map, TupleTableSlot *slot,
				   int depth, List *prefix)
{
	bool	   *done = palloc0(sizeof(bool) * Max(map->natts, 1));
	bool		first = true;
	int			i;

	appendStringInfoChar(buf, '{');
	for (i = 0; i < map->natts; i++)
	{
		SkColumn   *col = &map->columns[i];
		SkPathStep *step;
		int			j;
		bool		match = true;

		if (col->kind != SK_COL_FIELD || done[i] || col->path == NIL ||
			list_length(col->path) <= depth)
			continue;
		for (j = 0; j < depth && match; j++)
			match = strcmp(((SkPathStep *) list_nth(col->path, j))->key,
						   ((SkPathStep *) list_nth(prefix, j))->key) == 0;
		if (!match)
			continue;

		step = list_nth(col->path, depth);
		if (!first)
			appendStringInfoChar(buf, ',');
		first = false;
		escape_json(buf, step->key);
		appendStringInfoChar(buf, ':');
		if (list_length(col->path) == depth + 1)
			append_json_value(buf, col, slot->tts_values[i], slot->tts_isnull[i]);
		else
		{
			List	   *longer = lappend(list_copy(prefix), step);

			append_json_object(buf, map, slot, depth + 1, longer);
		}

		/* every column under this key has now been written */
		for (j = i; j < map->natts; j++)
		{
			SkColumn   *other = &map->columns[j];

			if (other->kind == SK_COL_FIELD && other->path != NIL &&
				list_length(other->path) > depth &&
				strcmp(((SkPathStep *) list_nth(other->path, depth))->key,
					   step->key) == 0)
				done[j] = true;
		}
	}
	appendStringInfoChar(buf, '}');
}

static bool
csv_needs_quotes(SkMapping *map, const char *text)
{
	const char *p;

	if (strcmp(text, map->csv_null) == 0)
		return true;
	for (p = text; *p; p++)
		if (*p == map->csv_delimiter || *p == map->csv_quote ||
			*p == '\n' || *p == '\r')
			return true;
	return false;
}

static void
append_csv_field(StringInfo buf, SkMapping *map, const char *text)
{
	const char *p;

	if (!csv_needs_quotes(map, text))
	{
		appendStringInfoString(buf, text);
		return;
	}
	appendStringInfoChar(buf, map->csv_quote);
	for (p = text; *p; p++)
	{
		if (*p == map->csv_quote)
			appendStringInfoChar(buf, map->csv_quote);
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, map->csv_quote);
}

/* One CSV record of the payload columns, after a header line if wanted */
static void
append_csv(StringInfo buf, SkMapping *map, TupleTableSlot *slot)
{
	int			nfields = 0;
	char	  **fields;
	char	  **names;
	int			i;

	for (i = 0; i < map->natts; i++)
		if (map->columns[i].kind == SK_COL_FIELD)
			nfields = Max(nfields, Max(map->columns[i].csv_field, 0) + 1);
	nfields = Max(nfields, 1);
	fields = palloc0(sizeof(char *) * nfields);
	names = palloc0(sizeof(char *) * nfields);

	for (i = 0; i < map->natts; i++)
	{
		SkColumn   *col = &map->columns[i];
		int			f = col->csv_field;

		if (col->kind != SK_COL_FIELD)
			continue;
		if (f < 0)
		{
			/* by header name: the next free position */
			for (f = 0; f < nfields && names[f] != NULL; f++)
				;
			if (f == nfields)
			{
				fields = repalloc(fields, sizeof(char *) * (nfields + 1));
				names = repalloc(names, sizeof(char *) * (nfields + 1));
				fields[nfields] = names[nfields] = NULL;
				nfields++;
			}
		}
		names[f] = col->field ? col->field : col->name;
		fields[f] = slot->tts_isnull[i] ? NULL :
			OutputFunctionCall(&col->outfunc, slot->tts_values[i]);
	}

	if (map->csv_header != SK_HEADER_NONE)
	{
		for (i = 0; i < nfields; i++)
		{
			if (i > 0)
				appendStringInfoChar(buf, map->csv_delimiter);
			append_csv_field(buf, map, names[i] ? names[i] : "");
		}
		appendStringInfoChar(buf, '\n');
	}
	for (i = 0; i < nfields; i++)
	{
		if (i > 0)
			appendStringInfoChar(buf, map->csv_delimiter);
		if (fields[i] == NULL)
			appendStringInfoString(buf, map->csv_null);
		else
			append_csv_field(buf, map, fields[i]);
	}
}

/* A value as raw message bytes: bytea as is, anything else as its text */
static char *
value_bytes(SkColumn *col, Datum value, size_t *len)
{
	if (col->typid == BYTEAOID)
	{
		bytea	   *b = DatumGetByteaPP(value);

		*len = VARSIZE_ANY_EXHDR(b);
		return VARDATA_ANY(b);
	}
	else
	{
		char	   *text = OutputFunctionCall(&col->outfunc, value);

		*len = strlen(text);
		return text;
	}
}

/* Headers from a JSON object: strings as their text, null as no value */
static void
encode_headers(SkOutMessage *out, SkColumn *col, Datum value)
{
	Jsonb	   *jb;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken r;
	char	   *name = NULL;

	if (col->typid == JSONOID)
		value = DirectFunctionCall1(jsonb_in,
									CStringGetDatum(OutputFunctionCall(&col->outfunc,
																	   value)));
	jb = DatumGetJsonbP(value);
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Kafka headers must be a JSON object"),
				 errdetail("Column \"%s\" holds a JSON %s.", col->name,
						   JB_ROOT_IS_SCALAR(jb) ? "scalar" : "array")));

	it = JsonbIteratorInit(&jb->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (r == WJB_KEY)
			name = pnstrdup(v.val.string.val, v.val.string.len);
		else if (r == WJB_VALUE)
		{
			SkOutHeader *h = palloc0(sizeof(SkOutHeader));

			h->name = name;
			if (v.type == jbvString)
			{
				h->value = v.val.string.val;
				h->len = v.val.string.len;
			}
			else if (v.type != jbvNull)
			{
				/* other JSON values travel as their JSON text */
				if (v.type == jbvNumeric)
					h->value = DatumGetCString(DirectFunctionCall1(numeric_out,
																   NumericGetDatum(v.val.numeric)));
				else if (v.type == jbvBool)
					h->value = v.val.boolean ? "true" : "false";
				else
					h->value = JsonbToCString(NULL, v.val.binary.data,
											  v.val.binary.len);
				h->len = strlen(h->value);
			}
			out->headers = lappend(out->headers, h);
		}
	}
}

/*
 * Encode the row in slot (all attributes deformed) as a message of the
 * table's mapping.  The result points into memory palloc'd in
 * CurrentMemoryContext or into the slot.  Throws on values that cannot be
 * sent (a negative partition, headers that are not an object).
 */
void
sk_encode_row(SkMapping *map, TupleTableSlot *slot, SkOutMessage *out)
{
	StringInfoData buf;
	bool		has_fields = false;
	int			i;

	memset(out, 0, sizeof(SkOutMessage));
	out->partition = RD_KAFKA_PARTITION_UA;

	for (i = 0; i < map->natts; i++)
	{
		SkColumn   *col = &map->columns[i];
		Datum		value = slot->tts_values[i];

		if (col->kind == SK_COL_FIELD)
			has_fields = true;
		if (slot->tts_isnull[i])
			continue;
		switch (col->kind)
		{
			case SK_COL_PARTITION:
				{
					int64		p = col->typid == INT2OID ? DatumGetInt16(value) :
						col->typid == INT4OID ? DatumGetInt32(value) :
						DatumGetInt64(value);

					if (p < 0 || p > PG_INT32_MAX)
						ereport(ERROR,
								(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
								 errmsg("Kafka partition " INT64_FORMAT " is out of range", p)));
					out->partition = (int32) p;
					break;
				}
			case SK_COL_TIMESTAMP:
				{
					TimestampTz ts = col->typid == TIMESTAMPOID ?
						DatumGetTimestampTz(DirectFunctionCall1(timestamp_timestamptz, value)) :
						DatumGetTimestampTz(value);

					if (TIMESTAMP_NOT_FINITE(ts))
						ereport(ERROR,
								(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
								 errmsg("Kafka timestamps must be finite")));
					out->timestamp_ms = (ts / 1000) +
						(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) *
						SECS_PER_DAY * 1000;
					break;
				}
			case SK_COL_KEY:
				out->key = value_bytes(col, value, &out->key_len);
				break;
			case SK_COL_HEADERS:
				encode_headers(out, col, value);
				break;
			case SK_COL_PAYLOAD:
				out->payload = value_bytes(col, value, &out->len);
				break;
			case SK_COL_FIELD:
				if (col->whole_payload || map->format == SK_FORMAT_TEXT ||
					map->format == SK_FORMAT_BYTEA)
					out->payload = value_bytes(col, value, &out->len);
				break;
			default:
				break;
		}
	}
	if (out->payload != NULL || !has_fields ||
		map->format == SK_FORMAT_TEXT || map->format == SK_FORMAT_BYTEA)
		return;

	initStringInfo(&buf);
	if (map->format == SK_FORMAT_JSON)
	{
		for (i = 0; i < map->natts; i++)
		{
			ListCell   *lc;

			if (map->columns[i].kind != SK_COL_FIELD)
				continue;
			foreach(lc, map->columns[i].path)
				if (((SkPathStep *) lfirst(lc))->key == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("cannot produce column \"%s\" of foreign table \"%s\"",
									map->columns[i].name, map->relname),
							 errdetail("Its \"json_path\" has an array subscript.")));
		}
		append_json_object(&buf, map, slot, 0, NIL);
	}
	else
		append_csv(&buf, map, slot);
	out->payload = buf.data;
	out->len = buf.len;
}
