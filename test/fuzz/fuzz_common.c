/*-------------------------------------------------------------------------
 *
 * fuzz_common.c
 *		Mappings and the checks of JSON extraction shared by the fuzz
 *		targets.
 *
 * A mapping is built from column definitions as sk_mapping_load() builds
 * one from a foreign table's options (src/mapping.c; that file needs the
 * catalog, so its rules are repeated here and must be kept in step).
 *
 * sk_fuzz_check_json() runs sk_json_extract() and compares every outcome
 * with a reference that shares no code with src/decode_json.c: validity
 * and values come from PostgreSQL's own JSON parser (src/common/jsonapi.c,
 * linked from libpgcommon.a, with de-escaping as jsonb_in uses it), the
 * paths are followed over the tree that parser reports.  The decoder's
 * deliberate rules are the reference's too: the payload must be UTF-8
 * without NUL bytes, no value may lie deeper than 512 levels, and a path
 * matched more than once takes the last match in document order.  Any
 * difference, or any broken invariant, aborts with a message: the fuzzer
 * records that input as a crash.
 *
 * Nothing here may be linked into the extension.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "nodes/pg_list.h"
#include "utils/memutils.h"

#include "sales_kafka.h"
#include "fuzz_common.h"

/* as SK_JSON_MAX_NESTING in decode_json.c */
#define REF_MAX_LEVEL 512

MemoryContext sk_fuzz_mapping_cxt;
MemoryContext sk_fuzz_message_cxt;
MemoryContext sk_fuzz_message2_cxt;
static MemoryContext ref_cxt;

/* the number of columns sk_fuzz_mapping() was asked for */
static int	declared_natts;

/*
 * Create the contexts (once per process) and make the message context
 * current.
 */
void
sk_fuzz_init(void)
{
	if (sk_fuzz_mapping_cxt == NULL)
	{
		sk_fuzz_mapping_cxt = sk_fuzz_context_create("sales_kafka fuzz mapping");
		sk_fuzz_message_cxt = sk_fuzz_context_create("sales_kafka fuzz message");
		sk_fuzz_message2_cxt = sk_fuzz_context_create("sales_kafka fuzz message 2");
		ref_cxt = sk_fuzz_context_create("sales_kafka fuzz reference");
	}
	CurrentMemoryContext = sk_fuzz_message_cxt;
}

/* End of one input: every context is reset, so nothing may leak */
void
sk_fuzz_done(void)
{
	sk_fuzz_context_reset(sk_fuzz_mapping_cxt);
	sk_fuzz_context_reset(sk_fuzz_message_cxt);
	sk_fuzz_context_reset(sk_fuzz_message2_cxt);
	sk_fuzz_context_reset(ref_cxt);
	CurrentMemoryContext = sk_fuzz_message_cxt;
}

void
sk_fuzz_abort(const char *fmt,...)
{
	va_list		args;

	fprintf(stderr, "\n==sales_kafka fuzz== CHECK FAILED: ");
	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	fprintf(stderr, "\n");
	fflush(stderr);
	abort();
}

/*
 * Printable form of up to 300 bytes, for messages: static buffers, four
 * of them in turn, so that one message may show several texts.
 */
const char *
sk_fuzz_show(const char *bytes, size_t len)
{
	static char bufs[4][300 * 4 + 8];
	static int	next;
	char	   *buf = bufs[next++ % 4];
	char	   *o = buf;
	size_t		i;

	if (bytes == NULL)
		return "(null)";
	for (i = 0; i < len && i < 300; i++)
	{
		unsigned char c = (unsigned char) bytes[i];

		if (c >= 0x20 && c < 0x7F && c != '\\')
			*o++ = c;
		else
			o += sprintf(o, "\\x%02x", c);
	}
	if (i < len)
		o += sprintf(o, "...");
	*o = '\0';
	return buf;
}

/*
 * Strict UTF-8 (RFC 3629: shortest form, no surrogates, at most
 * U+10FFFF), written independently of PostgreSQL's verifier.
 */
bool
sk_fuzz_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *) s;
	const unsigned char *end = p + len;

	while (p < end)
	{
		unsigned char c = *p;
		int			n;
		uint32		cp;
		uint32		min;

		if (c < 0x80)
		{
			p++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			n = 1, cp = c & 0x1F, min = 0x80;
		else if (c >= 0xE0 && c <= 0xEF)
			n = 2, cp = c & 0x0F, min = 0x800;
		else if (c >= 0xF0 && c <= 0xF4)
			n = 3, cp = c & 0x07, min = 0x10000;
		else
			return false;
		if (end - p <= n)
			return false;
		for (int i = 1; i <= n; i++)
		{
			if ((p[i] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		p += n + 1;
	}
	return true;
}

/* ---------------------------------------------------------------------
 * Mappings, as sk_mapping_load() builds them
 * ---------------------------------------------------------------------
 */

/* A mapping of natts columns, added next with sk_fuzz_add_column() */
SkMapping *
sk_fuzz_mapping(SkFormat format, int natts)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(sk_fuzz_mapping_cxt);
	SkMapping  *map = palloc0(sizeof(SkMapping));

	map->format = format;
	map->strict = true;
	map->relname = "fuzz";
	map->topic = "fuzz";
	map->csv_delimiter = ',';
	map->csv_quote = '"';
	map->csv_null = "";
	map->csv_header = SK_HEADER_NONE;
	map->columns = palloc0(sizeof(SkColumn) * Max(natts, 1));
	/* natts counts the columns added so far; finish checks the total */
	map->natts = 0;
	declared_natts = natts;
	MemoryContextSwitchTo(oldcxt);
	return map;
}

SkColumn *
sk_fuzz_add_column(SkMapping *map, const char *name, Oid typid,
				   SkColumnKind kind)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(sk_fuzz_mapping_cxt);
	SkColumn   *col;
	int			npayload = 0;
	int			i;

	if (map->natts >= declared_natts)
		sk_fuzz_abort("harness: more columns than declared");
	for (i = 0; i < map->natts; i++)
		if (map->columns[i].kind == SK_COL_FIELD)
			npayload++;
	col = &map->columns[map->natts++];
	col->kind = kind;
	if (kind != SK_COL_DROPPED)
	{
		col->name = pstrdup(name);
		col->typid = typid;
		col->basetypid = typid;
		col->typmod = -1;
		col->field = col->name;
		col->csv_field = npayload;
	}
	MemoryContextSwitchTo(oldcxt);
	return col;
}

/* The column option "field" */
void
sk_fuzz_set_field(SkMapping *map, SkColumn *col, const char *field)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(sk_fuzz_mapping_cxt);

	col->field = pstrdup(field);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * The column option "json_path"; the path must be one the validator takes
 * (sk_json_map_path() throws otherwise, which the harness reports).
 */
void
sk_fuzz_set_json_path(SkMapping *map, SkColumn *col, const char *path)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(sk_fuzz_mapping_cxt);

	sk_json_map_path(map, col, path);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * What sk_mapping_load() does for each payload column after its options:
 * the formats' own sk_json_map_field() and sk_csv_map_field(), the code
 * the server runs.
 */
void
sk_fuzz_finish_mapping(SkMapping *map)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(sk_fuzz_mapping_cxt);
	int			i;

	if (map->natts != declared_natts)
		sk_fuzz_abort("harness: %d columns added, %d declared",
					  map->natts, declared_natts);
	for (i = 0; i < map->natts; i++)
	{
		SkColumn   *col = &map->columns[i];

		if (col->kind != SK_COL_FIELD)
			continue;
		if (map->format == SK_FORMAT_JSON)
			sk_json_map_field(map, col);
		else if (map->format == SK_FORMAT_CSV)
			sk_csv_map_field(map, col);
	}
	MemoryContextSwitchTo(oldcxt);
}

/*
 * A target's input: a spec line (at most max_spec bytes of it), a line
 * break and the payload; or, without a line break, the default spec and
 * the whole input as the payload.
 */
void
sk_fuzz_split_input(const uint8_t *data, size_t size,
					const char *default_spec, size_t ndefault, size_t max_spec,
					const char **spec, size_t *nspec,
					const char **payload, size_t *len)
{
	const char *input = (const char *) data;
	const char *nl = memchr(input, '\n', size);

	if (nl != NULL)
	{
		*spec = input;
		*nspec = Min((size_t) (nl - input), max_spec);
		*payload = nl + 1;
		*len = size - (nl + 1 - input);
	}
	else
	{
		*spec = default_spec;
		*nspec = ndefault;
		*payload = input;
		*len = size;
	}
}

/* ---------------------------------------------------------------------
 * The reference: PostgreSQL's JSON parser builds a tree
 * ---------------------------------------------------------------------
 */

typedef struct RefNode
{
	char		kind;			/* '{', '[', '"', 'n'umber, 't', 'f', 'z' null */
	const char *start;			/* the value's text in the payload */
	const char *end;
	char	   *value;			/* scalars: de-escaped string or lexeme */
	char	   *key;			/* member of an object: its de-escaped key */
	int			index;			/* element of an array: its index */
	struct RefNode *parent;
	struct RefNode **children;
	int			nchildren;
	int			maxchildren;
} RefNode;

typedef struct RefState
{
	JsonLexContext *lex;
	RefNode    *root;
	RefNode    *cur;			/* the value being parsed */
	int			maxlevel;
} RefState;

static RefNode *
ref_child(RefState *st, char *key)
{
	RefNode    *parent = st->cur;
	RefNode    *node = palloc0(sizeof(RefNode));

	if (parent == NULL)
		sk_fuzz_abort("reference: member outside a container");
	if (parent->nchildren == parent->maxchildren)
	{
		parent->maxchildren = Max(8, parent->maxchildren * 2);
		parent->children = parent->children ?
			repalloc(parent->children, sizeof(RefNode *) * parent->maxchildren) :
			palloc(sizeof(RefNode *) * parent->maxchildren);
	}
	node->index = parent->nchildren;
	parent->children[parent->nchildren++] = node;
	node->key = key;
	node->parent = parent;
	node->start = st->lex->token_start;
	st->maxlevel = Max(st->maxlevel, st->lex->lex_level);
	st->cur = node;
	return node;
}

/* The value starting now: a member's or element's node, or the root */
static RefNode *
ref_value(RefState *st)
{
	if (st->cur == NULL)
	{
		st->root = st->cur = palloc0(sizeof(RefNode));
		st->root->start = st->lex->token_start;
	}
	return st->cur;
}

static void
ref_object_start(void *state)
{
	ref_value(state)->kind = '{';
}

static void
ref_array_start(void *state)
{
	ref_value(state)->kind = '[';
}

static void
ref_container_end(void *state)
{
	RefState   *st = state;

	if (st->cur == st->root)
		st->root->end = st->lex->prev_token_terminator;
}

static void
ref_field_start(void *state, char *fname, bool isnull)
{
	if (fname == NULL)
		sk_fuzz_abort("reference: a key without its de-escaped text");
	ref_child(state, fname);
}

static void
ref_element_start(void *state, bool isnull)
{
	ref_child(state, NULL);
}

static void
ref_member_end(void *state)
{
	RefState   *st = state;

	st->cur->end = st->lex->prev_token_terminator;
	st->cur = st->cur->parent;
}

static void
ref_field_end(void *state, char *fname, bool isnull)
{
	ref_member_end(state);
}

static void
ref_element_end(void *state, bool isnull)
{
	ref_member_end(state);
}

static void
ref_scalar(void *state, char *token, JsonTokenType tokentype)
{
	RefState   *st = state;
	bool		root = st->cur == NULL;
	RefNode    *node = ref_value(st);

	switch (tokentype)
	{
		case JSON_TOKEN_STRING:
			node->kind = '"';
			break;
		case JSON_TOKEN_NUMBER:
			node->kind = 'n';
			break;
		case JSON_TOKEN_TRUE:
			node->kind = 't';
			break;
		case JSON_TOKEN_FALSE:
			node->kind = 'f';
			break;
		case JSON_TOKEN_NULL:
			node->kind = 'z';
			break;
		default:
			sk_fuzz_abort("reference: scalar of token type %d", (int) tokentype);
	}
	if (token == NULL)
		sk_fuzz_abort("reference: a scalar without its text");
	node->value = token;
	if (root)
		node->end = st->lex->prev_token_terminator;
}

/*
 * Parse payload with PostgreSQL's parser into *root; the parser's result
 * code, and in *maxlevel the deepest level of any value (the top is 0).
 */
static JsonParseErrorType
ref_parse(const char *payload, size_t len, RefNode **root, int *maxlevel)
{
	RefState	st;
	JsonSemAction sem;
	JsonParseErrorType result;

	memset(&st, 0, sizeof(st));
	memset(&sem, 0, sizeof(sem));
	st.lex = makeJsonLexContextCstringLen((char *) payload, (int) len,
										  PG_UTF8, true);
	sem.semstate = &st;
	sem.object_start = ref_object_start;
	sem.object_end = ref_container_end;
	sem.array_start = ref_array_start;
	sem.array_end = ref_container_end;
	sem.object_field_start = ref_field_start;
	sem.object_field_end = ref_field_end;
	sem.array_element_start = ref_element_start;
	sem.array_element_end = ref_element_end;
	sem.scalar = ref_scalar;
	result = pg_parse_json(st.lex, &sem);
	*root = st.root;
	*maxlevel = st.maxlevel;
	return result;
}

/* The last node in document order that path leads to from node, or NULL */
static RefNode *
ref_follow(RefNode *node, ListCell *step, List *path)
{
	RefNode    *found = NULL;
	SkPathStep *s;

	if (step == NULL)
		return node;
	s = (SkPathStep *) lfirst(step);
	for (int i = 0; i < node->nchildren; i++)
	{
		RefNode    *child = node->children[i];
		RefNode    *f;

		if (s->key != NULL ?
			(child->key == NULL || strlen(s->key) != (size_t) s->keylen ||
			 strcmp(child->key, s->key) != 0) :
			(child->key != NULL || node->kind != '[' || child->index != s->index))
			continue;
		f = ref_follow(child, lnext(path, step), path);
		if (f != NULL)
			found = f;
	}
	return found;
}

/*
 * The decoder's rule for an object with none of the mapped fields: an
 * error when no payload column of the mapping, wanted or not, finds its
 * path (or its alias) in it, the mapping has no whole-payload column, and
 * some wanted column has a path.
 */
static bool
ref_no_field(SkMapping *map, const bool *wanted, RefNode *root)
{
	bool		wanted_path = false;

	for (int i = 0; i < map->natts; i++)
	{
		SkColumn   *col = &map->columns[i];

		if (col->kind != SK_COL_FIELD)
			continue;
		if (col->whole_payload)
			return false;
		if (wanted == NULL || wanted[i])
			wanted_path = true;
	}
	if (!wanted_path)
		return false;
	for (int i = 0; i < map->natts; i++)
	{
		SkColumn   *col = &map->columns[i];

		if (col->kind != SK_COL_FIELD)
			continue;
		if (ref_follow(root, list_head(col->path), col->path) != NULL)
			return false;
		for (int c = 0; col->alias != NULL && c < root->nchildren; c++)
			if (root->children[c]->key != NULL &&
				strcmp(root->children[c]->key, col->alias) == 0)
				return false;
	}
	return true;
}

/* ---------------------------------------------------------------------
 * Checks
 * ---------------------------------------------------------------------
 */

typedef struct Outcome
{
	bool		ok;
	SkFuzzError error;
} Outcome;

static Outcome
run_extract(SkMapping *map, const char *payload, size_t len,
			const bool *wanted, SkRawValue *raw)
{
	Outcome		out;

	memset(&out, 0, sizeof(out));
	out.ok = true;
	PG_TRY();
	{
		sk_json_extract(map, payload, len, wanted, raw);
	}
	PG_CATCH();
	{
		out.ok = false;
		out.error = sk_fuzz_error;
		FlushErrorState();
	}
	PG_END_TRY();
	return out;
}

/* A SQLSTATE as its five characters (static buffers, four in turn) */
const char *
sk_fuzz_sqlstate(int sqlstate)
{
	static char bufs[4][6];
	static int	next;
	char	   *buf = bufs[next++ % 4];

	for (int i = 0; i < 5; i++)
	{
		buf[i] = PGUNSIXBIT(sqlstate);
		sqlstate >>= 6;
	}
	buf[5] = '\0';
	return buf;
}

static const char *
outcome_text(const Outcome *o)
{
	static char buf[1200];

	if (o->ok)
		return "success";
	snprintf(buf, sizeof(buf), "ERROR %s: %s (detail: %s)",
			 sk_fuzz_sqlstate(o->error.sqlstate), o->error.message,
			 o->error.detail);
	return buf;
}

static bool
is_zero(const void *p, size_t n)
{
	const char *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i] != 0)
			return false;
	return true;
}

/* A raw value's text must be readable, in bounds and valid UTF-8 */
static void
check_raw_text(const SkRawValue *r, const char *payload, size_t len, int att)
{
	if (r->len < 0 || r->json_len < 0)
		sk_fuzz_abort("column %d: negative length (%d, %d)", att, r->len,
					  r->json_len);
	if (r->str != NULL && r->str >= payload && r->str <= payload + len &&
		r->str + r->len > payload + len)
		sk_fuzz_abort("column %d: value runs past the payload's end", att);
	if (r->str != NULL && !sk_fuzz_utf8_valid(r->str, r->len))
		sk_fuzz_abort("column %d: value is not valid UTF-8: %s", att,
					  sk_fuzz_show(r->str, r->len));
	if (r->json != NULL && r->json[r->json_len] != '\0')
		sk_fuzz_abort("column %d: json text is not NUL-terminated", att);
}

static void
expect_bytes(const char *what, int att, const char *got, int gotlen,
			 const char *want, size_t wantlen)
{
	if (got == NULL || (size_t) gotlen != wantlen ||
		memcmp(got, want, wantlen) != 0)
		sk_fuzz_abort("column %d: %s is \"%s\" (%d bytes), reference \"%s\" (%zu bytes)",
					  att, what, sk_fuzz_show(got, gotlen), gotlen,
					  sk_fuzz_show(want, wantlen), wantlen);
}

/* The values of a successful extraction against the reference tree */
static void
check_values(SkMapping *map, const bool *wanted, const SkRawValue *raw,
			 RefNode *root, const char *payload, size_t len)
{
	for (int i = 0; i < map->natts; i++)
	{
		SkColumn   *col = &map->columns[i];
		const SkRawValue *r = &raw[i];
		RefNode    *node;

		if (col->kind != SK_COL_FIELD || (wanted != NULL && !wanted[i]))
		{
			if (!is_zero(r, sizeof(*r)))
				sk_fuzz_abort("column %d: not wanted, but its raw value was set", i);
			continue;
		}
		check_raw_text(r, payload, len, i);
		if (col->whole_payload)
		{
			if (!r->present || r->isnull || r->str != r->json)
				sk_fuzz_abort("column %d: whole payload not given as one text", i);
			expect_bytes("whole payload", i, r->json, r->json_len, payload, len);
			expect_bytes("whole payload", i, r->str, r->len, payload, len);
			continue;
		}
		node = ref_follow(root, list_head(col->path), col->path);
		if (node == NULL)
		{
			if (!is_zero(r, sizeof(*r)))
				sk_fuzz_abort("column %d: found %s, the reference finds nothing",
							  i, sk_fuzz_show(r->str, r->len));
			continue;
		}
		if (!r->present)
			sk_fuzz_abort("column %d: missing, the reference finds %s", i,
						  sk_fuzz_show(node->start, node->end - node->start));
		if (r->isnull != (node->kind == 'z') ||
			r->is_number != (node->kind == 'n'))
			sk_fuzz_abort("column %d: isnull %d, is_number %d for a value of kind '%c'",
						  i, r->isnull, r->is_number, node->kind);
		if (node->kind == 'z')
		{
			if (r->str != NULL || r->json != NULL)
				sk_fuzz_abort("column %d: a null with text", i);
			continue;
		}
		if (node->kind == '{' || node->kind == '[')
			expect_bytes("value", i, r->str, r->len, node->start,
						 node->end - node->start);
		else
			expect_bytes("value", i, r->str, r->len, node->value,
						 strlen(node->value));
		if (col->basetypid == JSONBOID || col->basetypid == JSONOID ||
			node->kind == '{' || node->kind == '[')
			expect_bytes("json text", i, r->json, r->json_len, node->start,
						 node->end - node->start);
		else if (r->json != NULL || r->json_len != 0)
			sk_fuzz_abort("column %d: json text set for a scalar of a non-JSON column", i);
	}
}

/* Two extractions of the same payload must give the same values */
static void
check_same(SkMapping *map, const SkRawValue *a, const SkRawValue *b)
{
	for (int i = 0; i < map->natts; i++)
	{
		if (a[i].present != b[i].present || a[i].isnull != b[i].isnull ||
			a[i].is_number != b[i].is_number || a[i].len != b[i].len ||
			a[i].json_len != b[i].json_len ||
			(a[i].str == NULL) != (b[i].str == NULL) ||
			(a[i].json == NULL) != (b[i].json == NULL) ||
			(a[i].str && memcmp(a[i].str, b[i].str, a[i].len) != 0) ||
			(a[i].json && memcmp(a[i].json, b[i].json, a[i].json_len) != 0))
			sk_fuzz_abort("column %d: a second extraction with the same mapping, after a failed one, differs",
						  i);
	}
}

/*
 * Extract payload with map, check the outcome and every value against the
 * reference, then extract a truncated payload and the payload again with
 * the same mapping (its prepared plan is reused) and check that the
 * result is the same.  Aborts on any difference.
 */
void
sk_fuzz_check_json(SkMapping *map, const char *data, size_t len,
				   const bool *wanted)
{
	/* a malloc'd copy of exactly len bytes, as librdkafka hands payloads */
	char	   *payload = malloc(Max(len, 1));
	SkRawValue *raw;
	SkRawValue *raw2;
	Outcome		got;
	Outcome		again;
	int			expect;
	bool		wants_key = false;
	bool		wants_index = false;
	RefNode    *root = NULL;
	int			maxlevel = 0;
	MemoryContext oldcxt;

	memcpy(payload, data, len);

	MemoryContextSwitchTo(sk_fuzz_message_cxt);
	raw = palloc0(sizeof(SkRawValue) * Max(map->natts, 1));
	got = run_extract(map, payload, len, wanted, raw);

	/* what the reference expects */
	for (int i = 0; i < map->natts; i++)
	{
		SkColumn   *col = &map->columns[i];

		if (col->kind != SK_COL_FIELD || col->whole_payload ||
			(wanted != NULL && !wanted[i]))
			continue;
		if (((SkPathStep *) linitial(col->path))->key != NULL)
			wants_key = true;
		else
			wants_index = true;
	}
	expect = 0;
	if (!sk_fuzz_utf8_valid(payload, len) || memchr(payload, '\0', len))
		expect = ERRCODE_CHARACTER_NOT_IN_REPERTOIRE;
	else
	{
		JsonParseErrorType perr;

		oldcxt = MemoryContextSwitchTo(ref_cxt);
		perr = ref_parse(payload, len, &root, &maxlevel);
		MemoryContextSwitchTo(oldcxt);
		if (perr != JSON_SUCCESS || maxlevel > REF_MAX_LEVEL)
			expect = ERRCODE_INVALID_TEXT_REPRESENTATION;
		else if (root == NULL)
			sk_fuzz_abort("reference: parsed, but no value");
		else if (wants_key && !wants_index && root->kind != '{')
			expect = ERRCODE_SQL_JSON_OBJECT_NOT_FOUND;
		else if (wants_index && !wants_key && root->kind != '[')
			expect = ERRCODE_SQL_JSON_ARRAY_NOT_FOUND;
		else if (root->kind == '{' && ref_no_field(map, wanted, root))
			expect = ERRCODE_SQL_JSON_MEMBER_NOT_FOUND;
	}

	if (expect == 0 && !got.ok)
		sk_fuzz_abort("payload %s: the reference accepts it (deepest level %d), the decoder says %s",
					  sk_fuzz_show(payload, len), maxlevel, outcome_text(&got));
	if (expect != 0 && (got.ok || got.error.sqlstate != expect))
		sk_fuzz_abort("payload %s: the reference expects SQLSTATE %s, the decoder says %s",
					  sk_fuzz_show(payload, len), sk_fuzz_sqlstate(expect),
					  outcome_text(&got));
	if (got.ok)
		check_values(map, wanted, raw, root, payload, len);

	/* the mapping again: a failing prefix first, in its own context */
	MemoryContextSwitchTo(sk_fuzz_message2_cxt);
	raw2 = palloc0(sizeof(SkRawValue) * Max(map->natts, 1));
	(void) run_extract(map, payload, len / 2, wanted, raw2);
	sk_fuzz_context_reset(sk_fuzz_message2_cxt);
	raw2 = palloc0(sizeof(SkRawValue) * Max(map->natts, 1));
	again = run_extract(map, payload, len, wanted, raw2);
	if (again.ok != got.ok ||
		(!got.ok && again.error.sqlstate != got.error.sqlstate))
		sk_fuzz_abort("payload %s: first %s, with the mapping reused %s",
					  sk_fuzz_show(payload, len), outcome_text(&got),
					  outcome_text(&again));
	if (got.ok)
		check_same(map, raw, raw2);

	MemoryContextSwitchTo(sk_fuzz_message_cxt);
	free(payload);
}
