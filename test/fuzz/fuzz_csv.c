/*-------------------------------------------------------------------------
 *
 * fuzz_csv.c
 *		Fuzz target: sk_csv_extract() over a payload, with CSV options and
 *		columns the input chooses.
 *
 * Input: a spec line, "\n", then the payload.  The spec's bytes:
 *	0	the delimiter (the byte itself; "," when it could not be an option
 *		value: a line break or a byte over 0x7F)
 *	1	the quote (likewise; default '"')
 *	2	the null string: '0' "", '1' "NULL", '2' "\N", '3' "NA", '4' " ",
 *		'5' "null" (the byte modulo 6)
 *	3	header: '0' none, '1' true (skipped), '2' match (the byte modulo 3)
 *	4-	one column each (16 at most), bit 7 set: not wanted; then
 *		'1'-'9' field number N, 'a'-'z' a column named names[] (found by
 *		name with header 'match'), 'A'-'Z' a column with option field
 *		names[] (by name with header 'match', else by position), '0' a
 *		metadata column, '_' a dropped column, anything else a column by
 *		position.
 * Missing spec bytes take the defaults; without a "\n" the whole input is
 * the payload, with the options ,"0 0 and columns "abc".  The delimiter
 * may equal the quote: the validator lets quote ',' through when no
 * delimiter is given.
 *
 * The payload is checked and copied as decode.c does (sk_check_text,
 * pnstrdup), then split by sk_csv_extract() and by a reference written
 * here from the rules in decode_csv.c's banner (a quote opens a quoted
 * field only at the field's start; a doubled quote inside is one quote;
 * text after the closing quote is kept; CR, LF or CRLF end the record;
 * an unquoted field equal to the null string is NULL; one record per
 * message after the optional header).  The outcome, SQLSTATE and every
 * value must agree.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/memutils.h"

#include "sales_kafka.h"
#include "fuzz_common.h"

#define MAX_COLUMNS 16

static const char *const nulls[6] = {"", "NULL", "\\N", "NA", " ", "null"};

/* Superstore's columns, and a few odd names */
static const char *const names[26] = {
	"Row ID", "Order ID", "Order Date", "Ship Date", "Ship Mode",
	"Customer ID", "Customer Name", "Segment", "Country", "City", "State",
	"Postal Code", "Region", "Product ID", "Category", "Sub-Category",
	"Product Name", "Sales", "Quantity", "Discount", "Profit",
	"", "NULL", "a,b", "\xc3\xa9", "\"q\""
};

static const char default_spec[] = ",\"00abc";

/* ---------------------------------------------------------------------
 * The reference splitter
 * ---------------------------------------------------------------------
 */

typedef struct RefField
{
	char	   *value;			/* malloc'd */
	bool		quoted;
} RefField;

typedef struct RefRecord
{
	RefField   *fields;			/* malloc'd; a record of len bytes has at
								 * most len + 1 fields */
	int			nfields;
	bool		unterminated;	/* a quoted field ran to the end */
} RefRecord;

static void
ref_push(RefRecord *rec, const char *buf, size_t n, bool quoted)
{
	RefField   *f = &rec->fields[rec->nfields++];

	f->value = malloc(n + 1);
	memcpy(f->value, buf, n);
	f->value[n] = '\0';
	f->quoted = quoted;
}

/*
 * Split the record at text[*pos]; *pos moves past its end of line.  A
 * state machine over the bytes: outside quotes a quote (tested before the
 * delimiter) opens quotes anywhere in a field, as COPY's CSV does.
 */
static void
ref_record(const char *text, size_t len, size_t *pos, char delim, char quote,
		   RefRecord *rec)
{
	char	   *buf = malloc(len + 1);
	size_t		n = 0;
	size_t		i = *pos;
	bool		in_quotes = false;
	bool		saw_quote = false;

	rec->fields = malloc(sizeof(RefField) * (len - *pos + 1));
	rec->nfields = 0;
	rec->unterminated = false;
	for (;;)
	{
		char		c;

		if (i == len)
		{
			if (in_quotes)
				rec->unterminated = true;
			else
				ref_push(rec, buf, n, saw_quote);
			break;
		}
		c = text[i];
		if (in_quotes)
		{
			if (c == quote && i + 1 < len && text[i + 1] == quote)
			{
				buf[n++] = quote;
				i += 2;
			}
			else if (c == quote)
			{
				in_quotes = false;
				i++;
			}
			else
				buf[n++] = text[i++];
			continue;
		}
		if (c == quote)
		{
			in_quotes = saw_quote = true;
			i++;
			continue;
		}
		if (c == delim || c == '\n' || c == '\r')
		{
			ref_push(rec, buf, n, saw_quote);
			n = 0;
			saw_quote = false;
			i++;
			if (c == '\r' && i < len && text[i] == '\n')
				i++;
			if (c != delim)
				break;
			continue;
		}
		buf[n++] = text[i++];
	}
	free(buf);
	*pos = i;
}

static void
ref_free(RefRecord *rec)
{
	for (int i = 0; i < rec->nfields; i++)
		free(rec->fields[i].value);
	free(rec->fields);
}

/*
 * The decoder's rule for header 'match': an error when every payload
 * column is found by name and the header line names none of them (nor
 * their aliases).
 */
static bool
ref_no_header(SkMapping *map, const RefRecord *header)
{
	bool		by_name = false;

	for (int i = 0; i < map->natts; i++)
	{
		SkColumn   *col = &map->columns[i];
		const char *name = col->field ? col->field : col->name;

		if (col->kind != SK_COL_FIELD)
			continue;
		if (col->csv_field >= 0)
			return false;
		for (int n = 0; n < header->nfields; n++)
			if (strcmp(header->fields[n].value, name) == 0 ||
				(col->alias != NULL && strcmp(header->fields[n].value, col->alias) == 0))
				return false;
		by_name = true;
	}
	return by_name;
}

/* ---------------------------------------------------------------------
 * The target
 * ---------------------------------------------------------------------
 */

static bool
valid_option_byte(unsigned char b)
{
	return b != '\0' && b != '\n' && b != '\r' && b < 0x80;
}

static void
check_values(SkMapping *map, const bool *wanted, const SkRawValue *raw,
			 const RefRecord *header, const RefRecord *data)
{
	for (int i = 0; i < map->natts; i++)
	{
		SkColumn   *col = &map->columns[i];
		const SkRawValue *r = &raw[i];
		const RefField *f = NULL;
		int			n = col->csv_field;

		if (col->kind == SK_COL_FIELD && (wanted == NULL || wanted[i]))
		{
			if (n < 0)
			{
				const char *name = col->field ? col->field : col->name;

				for (n = 0; n < header->nfields; n++)
					if (strcmp(header->fields[n].value, name) == 0)
						break;
				if (n == header->nfields)
					n = INT_MAX;	/* no such header */
			}
			if (n < data->nfields)
				f = &data->fields[n];
		}
		if (f == NULL)
		{
			if (r->present || r->str != NULL || r->json != NULL)
				sk_fuzz_abort("column %d: present, the reference has no such field", i);
			continue;
		}
		if (!r->present || r->str == NULL || r->str != r->json ||
			r->len != r->json_len || r->len < 0 || r->str[r->len] != '\0' ||
			strlen(r->str) != (size_t) r->len)
			sk_fuzz_abort("column %d: missing or malformed raw value", i);
		if (strcmp(r->str, f->value) != 0)
			sk_fuzz_abort("column %d: \"%s\", the reference \"%s\"", i,
						  sk_fuzz_show(r->str, r->len),
						  sk_fuzz_show(f->value, strlen(f->value)));
		if (r->isnull != (!f->quoted && strcmp(f->value, map->csv_null) == 0))
			sk_fuzz_abort("column %d: isnull %d, the reference disagrees", i,
						  r->isnull);
		if (r->is_number)
			sk_fuzz_abort("column %d: a CSV field marked as a JSON number", i);
		if (!sk_fuzz_utf8_valid(r->str, r->len))
			sk_fuzz_abort("column %d: not valid UTF-8", i);
	}
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *spec;
	size_t		nspec;
	const char *payload;
	size_t		len;
	SkMapping  *map;
	bool		wanted[MAX_COLUMNS];
	bool		use_wanted = false;
	int			ncols;
	char	   *text = NULL;
	SkRawValue *raw;
	volatile bool ok = true;
	SkFuzzError error;
	int			expect = 0;
	RefRecord	header;
	RefRecord	rec;
	size_t		pos = 0;

	sk_fuzz_split_input(data, size, default_spec, strlen(default_spec),
						size, &spec, &nspec, &payload, &len);
	ncols = (int) Min(nspec > 4 ? nspec - 4 : 0, MAX_COLUMNS);

	sk_fuzz_init();
	map = sk_fuzz_mapping(SK_FORMAT_CSV, ncols);
	if (nspec > 0 && valid_option_byte(spec[0]))
		map->csv_delimiter = spec[0];
	if (nspec > 1 && valid_option_byte(spec[1]))
		map->csv_quote = spec[1];
	if (nspec > 2)
		map->csv_null = (char *) nulls[(unsigned char) spec[2] % 6];
	if (nspec > 3)
		map->csv_header = (SkCsvHeader) ((unsigned char) spec[3] % 3);
	for (int i = 0; i < ncols; i++)
	{
		unsigned char b = (unsigned char) spec[4 + i];
		unsigned char c = b & 0x7f;
		char		name[16];
		SkColumn   *col;

		snprintf(name, sizeof(name), "c%d", i);
		wanted[i] = (b & 0x80) == 0;
		use_wanted |= !wanted[i];
		if (c == '0')
			(void) sk_fuzz_add_column(map, name, INT4OID, SK_COL_PARTITION);
		else if (c == '_')
			(void) sk_fuzz_add_column(map, name, InvalidOid, SK_COL_DROPPED);
		else if (c >= 'a' && c <= 'z')
			(void) sk_fuzz_add_column(map, names[c - 'a'], TEXTOID, SK_COL_FIELD);
		else
		{
			col = sk_fuzz_add_column(map, name, TEXTOID, SK_COL_FIELD);
			if (c >= '1' && c <= '9')
			{
				snprintf(name, sizeof(name), "%d", c - '0');
				sk_fuzz_set_field(map, col, name);
			}
			else if (c >= 'A' && c <= 'Z' && map->csv_header == SK_HEADER_MATCH)
				sk_fuzz_set_field(map, col, names[c - 'A']);
		}
	}
	sk_fuzz_finish_mapping(map);

	/* decode_all(): message_text(), then sk_csv_extract() */
	raw = palloc0(sizeof(SkRawValue) * Max(map->natts, 1));
	PG_TRY();
	{
		sk_check_text(payload, len, "payload");
		text = pnstrdup(payload, len);
		sk_csv_extract(map, text, len, use_wanted ? wanted : NULL, raw);
	}
	PG_CATCH();
	{
		ok = false;
		error = sk_fuzz_error;
		FlushErrorState();
	}
	PG_END_TRY();

	memset(&header, 0, sizeof(header));
	memset(&rec, 0, sizeof(rec));
	if (!sk_fuzz_utf8_valid(payload, len) || memchr(payload, '\0', len))
		expect = ERRCODE_CHARACTER_NOT_IN_REPERTOIRE;
	else
	{
		if (map->csv_header != SK_HEADER_NONE)
			ref_record(payload, len, &pos, map->csv_delimiter, map->csv_quote,
					   &header);
		/* a header and no record */
		if (header.unterminated ||
			(map->csv_header != SK_HEADER_NONE && pos == len))
			expect = ERRCODE_BAD_COPY_FILE_FORMAT;
		else
		{
			ref_record(payload, len, &pos, map->csv_delimiter, map->csv_quote,
					   &rec);
			if (rec.unterminated || pos < len)
				expect = ERRCODE_BAD_COPY_FILE_FORMAT;
			else if (map->csv_header == SK_HEADER_MATCH &&
					 ref_no_header(map, &header))
				expect = ERRCODE_SQL_JSON_MEMBER_NOT_FOUND;
		}
	}

	if (expect == 0 && !ok)
		sk_fuzz_abort("payload %s: the reference splits it, the decoder says %s: %s",
					  sk_fuzz_show(payload, len),
					  sk_fuzz_sqlstate(error.sqlstate), error.message);
	if (expect != 0 && (ok || error.sqlstate != expect))
		sk_fuzz_abort("payload %s: the reference expects SQLSTATE %s, the decoder says %s",
					  sk_fuzz_show(payload, len), sk_fuzz_sqlstate(expect),
					  ok ? "success" : sk_fuzz_sqlstate(error.sqlstate));
	if (ok)
		check_values(map, use_wanted ? wanted : NULL, raw, &header, &rec);

	ref_free(&header);
	ref_free(&rec);
	sk_fuzz_done();
	return 0;
}
