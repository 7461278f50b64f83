/*-------------------------------------------------------------------------
 *
 * decode_csv.c
 *		The CSV payload format: one record per message, quoted as COPY's
 *		CSV format quotes, with an optional header line.
 *
 * Rules, as COPY ... (FORMAT csv) applies them to one line:
 *	- fields are separated by the delimiter; quotes may enclose any part of
 *	  a field (a"b,c"d is the one field ab,cd), and a doubled quote inside
 *	  quotes is one quote character;
 *	- an unquoted field equal to the null string is NULL (a quoted one is
 *	  not), the default null string being empty;
 *	- with header 'true' the first line is skipped, with header 'match' it
 *	  names the fields and columns map by name.
 * Unlike COPY, missing trailing fields are NULL and extra fields are
 * ignored, as a JSON message's missing or unknown fields are.  A message
 * holding more than one record, or a header and no record, is malformed.
 *
 * This file only splits text into fields; decode.c converts them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "sales_kafka.h"

/*
 * Which field of a record a CSV payload column reads, once its options are
 * read: option "field" is a 1-based field number, or a header name with
 * header 'match' (position -1: found by name in each message); without it,
 * the column's position among the payload columns (col->csv_field as
 * sk_mapping_load() set it) or, with header 'match', its name.  Throws on
 * a "field" that is neither.
 */
void
sk_csv_map_field(SkMapping *map, SkColumn *col)
{
	char	   *end;
	long		pos;

	if (col->field == col->name)
	{
		if (map->csv_header == SK_HEADER_MATCH)
			col->csv_field = -1;
		return;
	}
	pos = strtol(col->field, &end, 10);
	if (*end == '\0' && pos >= 1 && pos <= 100000)
		col->csv_field = (int) pos - 1;
	else if (map->csv_header == SK_HEADER_MATCH)
		col->csv_field = -1;
	else
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"field\" of column \"%s\": \"%s\"",
						col->name, col->field),
				 errdetail("In a CSV table, \"field\" is a 1-based field number, or a header name with header 'match'.")));
}

typedef struct CsvField
{
	char	   *value;
	bool		quoted;
} CsvField;

/*
 * Parse one record starting at *pos; advances *pos past its line end.
 * Returns the fields (palloc'd); throws on an unterminated quoted field.
 */
static CsvField *
parse_record(SkMapping *map, const char *text, size_t len, size_t *pos,
			 int *nfields)
{
	int			allocated = 16;
	CsvField   *fields = palloc(sizeof(CsvField) * allocated);
	StringInfoData buf;
	size_t		i = *pos;

	*nfields = 0;
	initStringInfo(&buf);
	for (;;)
	{
		bool		end_of_record = false;
		bool		in_quotes = false;
		bool		quoted = false;

		/* one field: up to a delimiter or line end outside quotes */
		for (;;)
		{
			char		c;

			if (i >= len)
			{
				if (in_quotes)
					sk_decode_fail(ERRCODE_BAD_COPY_FILE_FORMAT,
								   "unterminated CSV quoted field in Kafka message",
								   NULL);
				end_of_record = true;
				break;
			}
			c = text[i];
			if (in_quotes)
			{
				if (c == map->csv_quote && i + 1 < len &&
					text[i + 1] == map->csv_quote)
				{
					appendStringInfoChar(&buf, c);
					i += 2;
				}
				else
				{
					if (c == map->csv_quote)
						in_quotes = false;
					else
						appendStringInfoChar(&buf, c);
					i++;
				}
				continue;
			}
			if (c == map->csv_quote)
			{
				in_quotes = quoted = true;
				i++;
				continue;
			}
			if (c == map->csv_delimiter)
			{
				i++;
				break;
			}
			if (c == '\n' || c == '\r')
			{
				if (c == '\r' && i + 1 < len && text[i + 1] == '\n')
					i++;
				i++;
				end_of_record = true;
				break;
			}
			appendStringInfoChar(&buf, c);
			i++;
		}

		if (*nfields == allocated)
		{
			allocated *= 2;
			fields = repalloc(fields, sizeof(CsvField) * allocated);
		}
		fields[*nfields].value = pstrdup(buf.data);
		fields[*nfields].quoted = quoted;
		(*nfields)++;
		resetStringInfo(&buf);

		if (end_of_record)
			break;
	}
	*pos = i;
	return fields;
}

/*
 * The position of a column's field in a header line, by its name (option
 * "field", or the column's), else by its alias; -1 when neither is there.
 */
static int
header_position(SkColumn *col, CsvField *header, int nheader)
{
	const char *name = col->field ? col->field : col->name;
	int			f;

	for (f = 0; f < nheader; f++)
		if (strcmp(header[f].value, name) == 0)
			return f;
	for (f = 0; col->alias != NULL && f < nheader; f++)
		if (strcmp(header[f].value, col->alias) == 0)
			return f;
	return -1;
}

/*
 * With header 'match', a header line that names none of the fields of a
 * table whose fields are all found by name is an error, as a JSON object
 * with none of them is: a topic wired to the wrong table must not make
 * rows of NULLs.
 */
static void
check_some_header(SkMapping *map, CsvField *header, int nheader)
{
	int			i;
	bool		by_name = false;

	for (i = 0; i < map->natts; i++)
	{
		SkColumn   *col = &map->columns[i];

		if (col->kind != SK_COL_FIELD)
			continue;
		if (col->csv_field >= 0 || header_position(col, header, nheader) >= 0)
			return;
		by_name = true;
	}
	if (by_name)
	{
		/* no psprintf(): the fuzz harness runs this file */
		StringInfoData message;

		initStringInfo(&message);
		appendStringInfo(&message,
						 "Kafka message header line has none of the fields of foreign table \"%s\"",
						 map->relname);
		sk_decode_fail(ERRCODE_SQL_JSON_MEMBER_NOT_FOUND, message.data,
					   "With header 'match', a message's header line must name at least one of the fields the table reads. Check that the topic carries the messages the table maps, and the options \"field\" and \"alias\" of its columns.");
	}
}

/*
 * Pull the wanted payload columns of a CSV message into raw (one entry per
 * attribute).  text is NUL-terminated and valid in the database encoding.
 */
void
sk_csv_extract(SkMapping *map, const char *text, size_t len,
			   const bool *wanted, SkRawValue *raw)
{
	size_t		pos = 0;
	CsvField   *header = NULL;
	int			nheader = 0;
	CsvField   *fields;
	int			nfields;
	int			i;

	if (map->csv_header != SK_HEADER_NONE)
	{
		header = parse_record(map, text, len, &pos, &nheader);
		if (pos >= len)
			sk_decode_fail(ERRCODE_BAD_COPY_FILE_FORMAT,
						   "Kafka message holds a CSV header line but no record",
						   "Each message must hold one record, after the header line if the table has one.");
	}
	fields = parse_record(map, text, len, &pos, &nfields);
	if (pos < len)
		sk_decode_fail(ERRCODE_BAD_COPY_FILE_FORMAT,
					   "Kafka message holds more than one CSV record",
					   "Each message must hold one record, after the header line if the table has one.");

	if (map->csv_header == SK_HEADER_MATCH)
		check_some_header(map, header, nheader);

	for (i = 0; i < map->natts; i++)
	{
		SkColumn   *col = &map->columns[i];
		int			f = col->csv_field;

		if (col->kind != SK_COL_FIELD || (wanted != NULL && !wanted[i]))
			continue;
		if (f < 0)
		{
			f = header_position(col, header, nheader);
			if (f < 0)
				continue;		/* no such header: missing field */
		}
		if (f >= nfields)
			continue;			/* missing trailing field */

		raw[i].present = true;
		raw[i].isnull = !fields[f].quoted &&
			strcmp(fields[f].value, map->csv_null) == 0;
		raw[i].str = raw[i].json = fields[f].value;
		raw[i].len = raw[i].json_len = strlen(fields[f].value);
	}
}
