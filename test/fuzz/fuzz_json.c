/*-------------------------------------------------------------------------
 *
 * fuzz_json.c
 *		Fuzz target: sk_json_extract() over a payload, with a mapping the
 *		input chooses.
 *
 * Input: a spec line, "\n", then the payload (all that follows, bytes as
 * they come from Kafka).  Each byte of the spec line (16 at most) adds one
 * column:
 *	- bits 0-4: the column's source, an entry of columns[] below (plain
 *	  fields, JSON paths with nesting, subscripts and quoted keys, the
 *	  whole payload "$", a metadata column, a dropped column);
 *	- bits 5-6: its type: int4, text, jsonb, json (printable bytes give
 *	  text, jsonb or json: ' '..'?' text, '@'..'_' jsonb, '`'..DEL json);
 *	- bit 7: the column is not wanted (the scan is asked for the others).
 * Without a "\n" the whole input is the payload, with the columns of
 * default_spec.
 *
 * Checks (fuzz_common.c): the outcome and every value against PostgreSQL's
 * own JSON parser, bounds and UTF-8 of every value, the same result when
 * the mapping is reused after a failing message, and (through the
 * sanitizers) no crash, leak, out-of-bounds access or undefined behaviour.
 * When some column is not wanted, the same mapping is then checked with
 * every column wanted (a new wanted set: its prepared plan is rebuilt).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"

#include "sales_kafka.h"
#include "fuzz_common.h"

#define MAX_COLUMNS 16

typedef enum SourceKind
{
	SRC_FIELD,					/* option "field" */
	SRC_PATH,					/* option "json_path" */
	SRC_METADATA,				/* option "kafka" */
	SRC_DROPPED					/* a dropped attribute */
} SourceKind;

static const struct
{
	SourceKind	kind;
	const char *value;
}			columns[32] =
{
	{SRC_FIELD, "order_id"},	/* 0 */
	{SRC_FIELD, "customer_id"},
	{SRC_FIELD, "amount"},
	{SRC_FIELD, "ts"},
	{SRC_FIELD, "region"},
	{SRC_FIELD, "qty"},			/* 5 */
	{SRC_PATH, "$.customer.region"},
	{SRC_PATH, "$.customer.id"},
	{SRC_PATH, "$.lines[0].sku"},
	{SRC_PATH, "$.lines[1].qty"},
	{SRC_PATH, "$.lines"},		/* 10 */
	{SRC_PATH, "$[0]"},
	{SRC_PATH, "$[1]"},
	{SRC_PATH, "$[0].order_id"},
	{SRC_PATH, "$"},
	{SRC_PATH, "$[\"odd key\"]"},	/* 15 */
	{SRC_PATH, "$['a\\'b']"},
	{SRC_FIELD, "caf\xc3\xa9"},
	{SRC_FIELD, "Order ID"},
	{SRC_PATH, "$.a.b.c.d.e.f"},
	{SRC_PATH, "$.a"},			/* 20 */
	{SRC_PATH, "$.a.b"},
	{SRC_PATH, "$.a[0][1]"},
	{SRC_PATH, "$[\"\"]"},
	{SRC_PATH, "$.\"q\""},
	{SRC_PATH, "$[0][0][0]"},	/* 25 */
	{SRC_PATH, "$.lines[2147483647]"},
	{SRC_FIELD, "a\"b"},
	{SRC_FIELD, "a\\b"},
	{SRC_FIELD, "\xf0\x9f\x98\x80"},
	{SRC_DROPPED, NULL},		/* 30 */
	{SRC_METADATA, NULL},
};

static const Oid types[4] = {INT4OID, TEXTOID, JSONBOID, JSONOID};

/* order_id, customer_id, amount, $.customer.region, $.lines[0].sku, $ */
static const char default_spec[] = {0x20, 0x21, 0x22, 0x26, 0x28, 0x4e};

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

	sk_fuzz_split_input(data, size, default_spec, sizeof(default_spec),
						MAX_COLUMNS, &spec, &nspec, &payload, &len);

	sk_fuzz_init();
	map = sk_fuzz_mapping(SK_FORMAT_JSON, (int) nspec);
	for (size_t i = 0; i < nspec; i++)
	{
		unsigned char b = (unsigned char) spec[i];
		int			entry = b & 0x1f;
		Oid			typid = types[(b >> 5) & 3];
		char		name[16];
		SkColumn   *col;

		snprintf(name, sizeof(name), "c%d", (int) i);
		switch (columns[entry].kind)
		{
			case SRC_FIELD:
				col = sk_fuzz_add_column(map, name, typid, SK_COL_FIELD);
				sk_fuzz_set_field(map, col, columns[entry].value);
				break;
			case SRC_PATH:
				col = sk_fuzz_add_column(map, name, typid, SK_COL_FIELD);
				sk_fuzz_set_json_path(map, col, columns[entry].value);
				break;
			case SRC_METADATA:
				(void) sk_fuzz_add_column(map, name, INT8OID, SK_COL_OFFSET);
				break;
			case SRC_DROPPED:
				(void) sk_fuzz_add_column(map, name, InvalidOid, SK_COL_DROPPED);
				break;
		}
		wanted[i] = (b & 0x80) == 0;
		use_wanted |= !wanted[i];
	}
	sk_fuzz_finish_mapping(map);

	sk_fuzz_check_json(map, payload, len, use_wanted ? wanted : NULL);
	/* the same mapping for every column: its plan is built anew */
	if (use_wanted)
		sk_fuzz_check_json(map, payload, len, NULL);
	sk_fuzz_done();
	return 0;
}
