/*-------------------------------------------------------------------------
 *
 * decode_json.c
 *		The JSON payload format: how a payload column maps to a JSON path,
 *		and the extraction of mapped fields from a message.
 *
 * Extraction is one strict pass over the payload (RFC 8259: structure,
 * strings and their escapes, numbers, literals) that allocates nothing
 * for the parts no column maps: it only remembers where each mapped value
 * starts and ends, and copies (and unescapes) those values at the end.
 * The server's own JSON parser allocates every key and scalar, which made
 * it the largest cost of ingesting a message.  This file only finds text;
 * decode.c converts it to column types.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/memutils.h"

#include "sales_kafka.h"

/*
 * A JSON payload column reads the value at a json_path option (throws if
 * it does not parse).  col and map live in the mapping's memory context,
 * which is current.
 */
void
sk_json_map_path(SkMapping *map, SkColumn *col, const char *path)
{
	col->path = sk_json_path_check(path);
	col->whole_payload = col->path == NIL;
	col->field = NULL;
	map->max_path_depth = Max(map->max_path_depth, list_length(col->path));
}

/*
 * Where a JSON payload column's value comes from, once its options are
 * read: a plain field (the column name, or option "field") is a one-step
 * path; a json_path option has set col->path already
 * (sk_json_map_path()).  As there, for memory.
 */
void
sk_json_map_field(SkMapping *map, SkColumn *col)
{
	SkPathStep *step;

	if (col->field == NULL)
		return;
	step = palloc0(sizeof(SkPathStep));
	step->key = col->field;
	step->keylen = strlen(col->field);
	col->path = list_make1(step);
	map->max_path_depth = Max(map->max_path_depth, 1);
}

/* ---------------------------------------------------------------------
 * Field extraction
 * ---------------------------------------------------------------------
 */

/* Deeper documents are refused rather than risking the stack */
#define SK_JSON_MAX_NESTING 512

/* A mapped value found in the payload */
typedef struct JsonSpan
{
	const char *start;			/* first byte of the value */
	const char *end;			/* one past its last byte */
	char		kind;			/* '"', 'n'umber, 't'rue, 'f'alse, 'z' null, '{', '[' */
	bool		escaped;		/* a string with backslash escapes */
} JsonSpan;

/*
 * The paths one caller reads, prepared once per mapping and set of wanted
 * columns, with scratch space reused for every message.
 */
typedef struct JsonPlan
{
	const bool *wanted;			/* the set it was built for */
	int			ncols;
	int		   *cols;			/* attribute indexes of the wanted paths */
	int		   *len;			/* per entry of cols: path length */
	SkPathStep **steps;			/* per entry of cols: its path, as an array */
	int		   *depth;			/* scratch per entry of cols: steps matched */
	JsonSpan   *found;			/* scratch per entry of cols */
	int			nwhole;
	int		   *whole;			/* attribute indexes of json_path '$' columns */
	bool		wants_key;		/* some path starts with a key */
	bool		wants_index;	/* some path starts with a subscript */
	bool		flat;			/* every path one key, no two the same */
	bool		any_whole;		/* some column of the mapping, wanted or not,
								 * is the whole payload */
	struct JsonPlan *all;		/* the plan of every column, when this one is
								 * for some: built when first needed */
} JsonPlan;

typedef struct JsonScan
{
	const char *p;
	const char *end;
	SkMapping  *map;
	int			ncols;
	int		   *cols;
	int		   *depth;
	int		   *len;
	SkPathStep **steps;
	JsonSpan   *found;
	bool		flat;			/* the plan's */
	int			next;			/* flat: the entry of cols to try first */
	const char *error;			/* what is wrong, once something is */
	char		errbuf[128];
} JsonScan;

static bool scan_value(JsonScan *s, int level, JsonSpan *span);

#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')

static inline void
skip_space(JsonScan *s)
{
	const char *p = s->p;

	while (p < s->end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	s->p = p;
}

/* Fail, quoting the token at p as the server's JSON parser does */
static bool
fail_at(JsonScan *s, const char *expected)
{
	const char *t = s->p;
	int			n = 1;

	if (s->p >= s->end)
	{
		s->error = "The input string ended unexpectedly.";
		return false;
	}
	if (isalnum((unsigned char) *t) || *t == '-' || *t == '.' || *t == '_')
		while (t + n < s->end && n < 30 &&
			   (isalnum((unsigned char) t[n]) || t[n] == '.' || t[n] == '_' ||
				t[n] == '-' || t[n] == '+'))
			n++;
	if (expected)
		snprintf(s->errbuf, sizeof(s->errbuf), "Expected %s, but found \"%.*s\".",
				 expected, n, t);
	else
		snprintf(s->errbuf, sizeof(s->errbuf), "Token \"%.*s\" is invalid.", n, t);
	s->error = s->errbuf;
	return false;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four hex digits after "\u" at p; -1 if they are not */
static int
unicode_escape(const char *p, const char *end)
{
	int			v = 0;
	int			i;

	if (end - p < 4)
		return -1;
	for (i = 0; i < 4; i++)
	{
		int			h = hex_value(p[i]);

		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/*
 * A string starting at the opening quote; checks escapes and control
 * characters, and notes whether it has escapes.
 */
static bool
scan_string(JsonScan *s, bool *escaped)
{
	*escaped = false;
	s->p++;						/* opening quote */
	while (s->p < s->end)
	{
		const char *p = s->p;
		unsigned char c;

		/* the run of plain characters, with the cursor in a register */
		while (p < s->end && (c = (unsigned char) *p) != '"' && c != '\\' && c >= 0x20)
			p++;
		s->p = p;
		if (p >= s->end)
			break;
		c = (unsigned char) *p;
		if (c == '"')
		{
			s->p++;
			return true;
		}
		if (c < 0x20)
		{
			snprintf(s->errbuf, sizeof(s->errbuf),
					 "Character with value 0x%02x must be escaped.", c);
			s->error = s->errbuf;
			return false;
		}
		*escaped = true;
		if (s->p + 1 >= s->end)
			break;
		switch (s->p[1])
		{
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				s->p += 2;
				break;
			case 'u':
				{
					int			cp = unicode_escape(s->p + 2, s->end);

					if (cp < 0)
					{
						s->error = "\"\\u\" must be followed by four hexadecimal digits.";
						return false;
					}
					if (cp == 0)
					{
						s->error = "\\u0000 cannot be converted to text.";
						return false;
					}
					s->p += 6;
					if (cp >= 0xDC00 && cp <= 0xDFFF)
					{
						s->error = "Unicode low surrogate must follow a high surrogate.";
						return false;
					}
					if (cp >= 0xD800 && cp <= 0xDBFF)
					{
						int			lo = (s->end - s->p >= 6 && s->p[0] == '\\' &&
										  s->p[1] == 'u') ?
						unicode_escape(s->p + 2, s->end) : -1;

						if (lo < 0xDC00 || lo > 0xDFFF)
						{
							s->error = "Unicode high surrogate must be followed by a low surrogate.";
							return false;
						}
						s->p += 6;
					}
					break;
				}
			default:
				snprintf(s->errbuf, sizeof(s->errbuf),
						 "Escape sequence \"\\%c\" is invalid.", s->p[1]);
				s->error = s->errbuf;
				return false;
		}
	}
	s->error = "The input string ended unexpectedly.";
	return false;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool
scan_number(JsonScan *s)
{
	const char *p = s->p;

	if (p < s->end && *p == '-')
		p++;
	if (p < s->end && *p == '0')
		p++;
	else if (p < s->end && *p >= '1' && *p <= '9')
		while (p < s->end && IS_DIGIT(*p))
			p++;
	else
		return fail_at(s, NULL);
	if (p < s->end && *p == '.')
	{
		p++;
		if (p >= s->end || !IS_DIGIT(*p))
			return fail_at(s, NULL);
		while (p < s->end && IS_DIGIT(*p))
			p++;
	}
	if (p < s->end && (*p == 'e' || *p == 'E'))
	{
		p++;
		if (p < s->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= s->end || !IS_DIGIT(*p))
			return fail_at(s, NULL);
		while (p < s->end && IS_DIGIT(*p))
			p++;
	}
	/* a number runs into no letter: "12abc" is one bad token */
	if (p < s->end && (isalpha((unsigned char) *p) || *p == '_'))
		return fail_at(s, NULL);
	s->p = p;
	return true;
}

static bool
scan_literal(JsonScan *s, const char *word, int len)
{
	if (s->end - s->p < len || memcmp(s->p, word, len) != 0 ||
		(s->end - s->p > len && isalnum((unsigned char) s->p[len])))
		return fail_at(s, NULL);
	s->p += len;
	return true;
}

/* Does step (the level-th of a path) name this key (raw, maybe escaped)? */
static bool
key_matches(SkPathStep *step, const char *key, int keylen, bool escaped)
{
	if (step->key == NULL)
		return false;
	if (!escaped)
		return step->keylen == keylen && memcmp(step->key, key, keylen) == 0;
	return false;				/* escaped keys are compared after unescaping */
}

/* Unescape the inside of a JSON string that has escapes, into buf */
static void
unescape(StringInfo buf, const char *p, const char *end)
{
	while (p < end)
	{
		if (*p != '\\')
		{
			const char *q = p;

			while (q < end && *q != '\\')
				q++;
			appendBinaryStringInfo(buf, p, q - p);
			p = q;
			continue;
		}
		switch (p[1])
		{
			case 'b':
				appendStringInfoChar(buf, '\b');
				break;
			case 'f':
				appendStringInfoChar(buf, '\f');
				break;
			case 'n':
				appendStringInfoChar(buf, '\n');
				break;
			case 'r':
				appendStringInfoChar(buf, '\r');
				break;
			case 't':
				appendStringInfoChar(buf, '\t');
				break;
			case 'u':
				{
					pg_wchar	cp = unicode_escape(p + 2, end);
					char		utf8[8];

					if (cp >= 0xD800 && cp <= 0xDBFF)
					{
						cp = 0x10000 + ((cp - 0xD800) << 10) +
							(unicode_escape(p + 8, end) - 0xDC00);
						p += 6;
					}
					p += 4;
					if (GetDatabaseEncoding() == PG_UTF8)
					{
						unicode_to_utf8(cp, (unsigned char *) utf8);
						appendBinaryStringInfo(buf, utf8, pg_utf_mblen((unsigned char *) utf8));
					}
					else
					{
						pg_unicode_to_server(cp, (unsigned char *) utf8);
						appendStringInfoString(buf, utf8);
					}
					break;
				}
			default:			/* " \ / */
				appendStringInfoChar(buf, p[1]);
				break;
		}
		p += 2;
	}
}

/*
 * In a flat mapping, the entry of cols an unescaped top-level key names,
 * or -1.  Messages written in one key order (the common case) find each
 * key at the first try: the entry after the last one found.  A key names
 * one entry at most, so the search stops there.
 */
static int
flat_entry(JsonScan *s, const char *key, int keylen)
{
	int			c = s->next;
	int			i;

	for (i = 0; i < s->ncols; i++)
	{
		if (key_matches(s->steps[c * s->map->max_path_depth], key, keylen, false))
		{
			s->next = c + 1 < s->ncols ? c + 1 : 0;
			return c;
		}
		c = c + 1 < s->ncols ? c + 1 : 0;
	}
	return -1;
}

/*
 * A field or element at level begins with its key (NULL for an array
 * element with index); advance the columns whose path it continues.
 */
static void
enter(JsonScan *s, int level, const char *key, int keylen, bool escaped,
	  int index)
{
	char	   *plain = NULL;
	int			c;

	for (c = 0; c < s->ncols; c++)
	{
		SkPathStep *step;
		bool		match;

		if (s->depth[c] != level - 1 || s->len[c] < level)
			continue;
		step = s->steps[c * s->map->max_path_depth + level - 1];
		if (key == NULL)
			match = step->key == NULL && step->index == index;
		else if (!escaped)
			match = key_matches(step, key, keylen, false);
		else
		{
			if (plain == NULL)
			{
				StringInfoData buf;

				initStringInfo(&buf);
				unescape(&buf, key, key + keylen);
				plain = buf.data;
			}
			match = step->key != NULL && strcmp(step->key, plain) == 0;
		}
		if (match)
			s->depth[c] = level;
	}
}

/* A field or element at level ends: record full matches, unwind the rest */
static void
leave(JsonScan *s, int level, JsonSpan *span)
{
	int			c;

	for (c = 0; c < s->ncols; c++)
	{
		if (s->depth[c] != level)
			continue;
		if (s->len[c] == level)
			s->found[c] = *span;
		s->depth[c] = level - 1;
	}
}

/*
 * One member of an object (its key given) or element of an array (its
 * index given) at level, and what follows it: 1 when a comma announces
 * another, 0 at the closing bracket, -1 on error.
 */
static int
scan_member(JsonScan *s, int level, const char *key, int keylen, bool escaped,
			int index, char closer)
{
	JsonSpan	span;

	if (s->flat && level == 1 && key != NULL && !escaped)
	{
		/* the found value is the member's own: no paths to follow inside */
		int			c = flat_entry(s, key, keylen);

		if (!scan_value(s, level, &span))
			return -1;
		if (c >= 0)
			s->found[c] = span;
	}
	else
	{
		bool		tracked = level <= s->map->max_path_depth;

		if (tracked)
			enter(s, level, key, keylen, escaped, index);
		if (!scan_value(s, level, &span))
			return -1;
		if (tracked)
			leave(s, level, &span);
	}
	skip_space(s);
	if (s->p < s->end && *s->p == ',')
	{
		s->p++;
		return 1;
	}
	if (s->p < s->end && *s->p == closer)
	{
		s->p++;
		return 0;
	}
	fail_at(s, closer == '}' ? "\",\" or \"}\"" : "\",\" or \"]\"");
	return -1;
}

static bool
scan_object(JsonScan *s, int level)
{
	int			more = 1;

	s->p++;						/* { */
	skip_space(s);
	if (s->p < s->end && *s->p == '}')
	{
		s->p++;
		return true;
	}
	while (more > 0)
	{
		const char *key;
		int			keylen;
		bool		escaped;

		skip_space(s);
		if (s->p >= s->end || *s->p != '"')
			return fail_at(s, "string");
		key = s->p + 1;
		if (!scan_string(s, &escaped))
			return false;
		keylen = (int) (s->p - 1 - key);
		skip_space(s);
		if (s->p >= s->end || *s->p != ':')
			return fail_at(s, "\":\"");
		s->p++;
		more = scan_member(s, level + 1, key, keylen, escaped, 0, '}');
	}
	return more == 0;
}

static bool
scan_array(JsonScan *s, int level)
{
	int			index = 0;
	int			more = 1;

	s->p++;						/* [ */
	skip_space(s);
	if (s->p < s->end && *s->p == ']')
	{
		s->p++;
		return true;
	}
	while (more > 0)
		more = scan_member(s, level + 1, NULL, 0, false, index++, ']');
	return more == 0;
}

/* One value at level; its extent and kind go to span */
static bool
scan_value(JsonScan *s, int level, JsonSpan *span)
{
	bool		ok;

	if (level > SK_JSON_MAX_NESTING)
	{
		s->error = "The document is nested too deeply.";
		return false;
	}
	skip_space(s);
	if (s->p >= s->end)
		return fail_at(s, NULL);
	span->start = s->p;
	span->escaped = false;
	span->kind = *s->p;
	switch (*s->p)
	{
		case '{':
			ok = scan_object(s, level);
			break;
		case '[':
			ok = scan_array(s, level);
			break;
		case '"':
			ok = scan_string(s, &span->escaped);
			break;
		case 't':
			ok = scan_literal(s, "true", 4);
			break;
		case 'f':
			ok = scan_literal(s, "false", 5);
			break;
		case 'n':
			span->kind = 'z';
			ok = scan_literal(s, "null", 4);
			break;
		default:
			span->kind = 'n';
			if (*s->p != '-' && !IS_DIGIT(*s->p))
				return fail_at(s, "JSON value");
			ok = scan_number(s);
			break;
	}
	span->end = s->p;
	return ok;
}

/* len bytes as a NUL-terminated copy (pnstrdup would look for a NUL) */
static char *
copy_text(const char *p, int len)
{
	char	   *copy = palloc(len + 1);

	memcpy(copy, p, len);
	copy[len] = '\0';
	return copy;
}

/* The mapped value a span holds, as a raw value of its column */
static void
fill_raw(SkColumn *col, JsonSpan *span, SkRawValue *raw)
{
	raw->present = true;
	raw->isnull = span->kind == 'z';
	raw->is_number = span->kind == 'n';
	if (raw->isnull)
		return;
	if (col->basetypid == JSONBOID || col->basetypid == JSONOID ||
		span->kind == '{' || span->kind == '[')
	{
		raw->json = copy_text(span->start, span->end - span->start);
		raw->json_len = span->end - span->start;
	}
	if (span->kind == '"' && span->escaped)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		unescape(&buf, span->start + 1, span->end - 1);
		raw->str = buf.data;
		raw->len = buf.len;
	}
	else if (span->kind == '"')
	{
		/* the payload outlives the row's decoding: no copy */
		raw->str = span->start + 1;
		raw->len = span->end - span->start - 2;
	}
	else if (raw->json != NULL)
	{
		raw->str = raw->json;
		raw->len = raw->json_len;
	}
	else
	{
		raw->str = span->start;
		raw->len = span->end - span->start;
	}
}

/* Add a path of column i to the plan */
static void
add_entry(JsonPlan *plan, SkMapping *map, int i, List *path)
{
	ListCell   *lc;

	plan->cols[plan->ncols] = i;
	plan->len[plan->ncols] = list_length(path);
	foreach(lc, path)
		plan->steps[plan->ncols * map->max_path_depth + foreach_current_index(lc)] =
		(SkPathStep *) lfirst(lc);
	plan->ncols++;
	if (((SkPathStep *) linitial(path))->key != NULL)
		plan->wants_key = true;
	else
		plan->wants_index = true;
}

/*
 * A plan for the columns in wanted (NULL: all), in CurrentMemoryContext.
 * A column with an alias has two entries: its own name among the first
 * entries, in column order, which wins when a message has both, and its
 * alias after all of those, also in column order, so that a message
 * written in either naming, in the columns' order, finds each key at the
 * first try (flat_entry()).
 */
static JsonPlan *
build_plan(SkMapping *map, const bool *wanted)
{
	JsonPlan   *plan;
	int			n = Max(map->natts, 1) * 2;
	int			i;

	plan = palloc0(sizeof(JsonPlan));
	plan->wanted = wanted;
	plan->cols = palloc(sizeof(int) * n);
	plan->len = palloc(sizeof(int) * n);
	plan->steps = palloc(sizeof(SkPathStep *) * Max(n * map->max_path_depth, 1));
	plan->depth = palloc(sizeof(int) * n);
	plan->found = palloc(sizeof(JsonSpan) * n);
	plan->whole = palloc(sizeof(int) * n);
	for (i = 0; i < map->natts; i++)
	{
		SkColumn   *col = &map->columns[i];

		if (col->kind != SK_COL_FIELD)
			continue;
		if (col->whole_payload)
			plan->any_whole = true;
		if (wanted != NULL && !wanted[i])
			continue;
		if (col->whole_payload)
		{
			plan->whole[plan->nwhole++] = i;
			continue;
		}
		add_entry(plan, map, i, col->path);
	}
	for (i = 0; i < map->natts; i++)
	{
		SkColumn   *col = &map->columns[i];
		SkPathStep *step;

		if (col->kind != SK_COL_FIELD || col->whole_payload ||
			col->alias == NULL || (wanted != NULL && !wanted[i]))
			continue;
		step = palloc0(sizeof(SkPathStep));
		step->key = col->alias;
		step->keylen = strlen(col->alias);
		add_entry(plan, map, i, list_make1(step));
	}
	plan->flat = plan->wants_key;
	for (i = 0; i < plan->ncols && plan->flat; i++)
	{
		SkPathStep *step = plan->steps[i * map->max_path_depth];
		int			j;

		plan->flat = plan->len[i] == 1 && step->key != NULL;
		for (j = 0; j < i && plan->flat; j++)
			plan->flat = strcmp(plan->steps[j * map->max_path_depth]->key, step->key) != 0;
	}
	return plan;
}

/* The plan for the columns in wanted (NULL: all), in the mapping's memory */
static JsonPlan *
json_plan(SkMapping *map, const bool *wanted)
{
	JsonPlan   *plan = (JsonPlan *) map->json_plan;
	MemoryContext oldcxt;

	if (plan != NULL && plan->wanted == wanted)
		return plan;

	oldcxt = MemoryContextSwitchTo(GetMemoryChunkContext(map));
	plan = build_plan(map, wanted);
	MemoryContextSwitchTo(oldcxt);
	map->json_plan = plan;
	return plan;
}

/*
 * One pass over a payload with a plan: where each of its paths' values
 * is goes to plan->found, the top-level value to *top.  Throws on text
 * that is not JSON.
 */
static void
scan_payload(SkMapping *map, JsonPlan *plan, const char *payload, size_t len,
			 JsonSpan *top)
{
	JsonScan	s;

	memset(plan->depth, 0, sizeof(int) * plan->ncols);
	memset(plan->found, 0, sizeof(JsonSpan) * plan->ncols);
	s.p = payload;
	s.end = payload + len;
	s.map = map;
	s.ncols = plan->ncols;
	s.cols = plan->cols;
	s.depth = plan->depth;
	s.len = plan->len;
	s.steps = plan->steps;
	s.found = plan->found;
	s.flat = plan->flat;
	s.next = 0;
	s.error = NULL;

	if (scan_value(&s, 0, top))
	{
		skip_space(&s);
		if (s.p < s.end)
			fail_at(&s, "end of input");
	}
	if (s.error != NULL)
		sk_decode_fail(ERRCODE_INVALID_TEXT_REPRESENTATION,
					   "Kafka message payload is not valid JSON", s.error);
}

/* Did the last scan with the plan find any of its paths? */
static bool
found_any(JsonPlan *plan)
{
	int			i;

	for (i = 0; i < plan->ncols; i++)
		if (plan->found[i].start != NULL)
			return true;
	return false;
}

/*
 * Raise the error for an object that has none of the fields of the
 * mapping: a topic wired to the wrong table, or fields named otherwise
 * than the table says, must not make rows of NULLs.
 */
static void pg_attribute_noreturn()
no_field_matched(SkMapping *map)
{
	StringInfoData message;
	StringInfoData names;
	int			shown = 0;
	int			i;

	/* no psprintf() or escape_json(): the fuzz harness runs this file */
	initStringInfo(&message);
	initStringInfo(&names);
	appendStringInfoString(&names, "The table reads the fields ");
	for (i = 0; i < map->natts; i++)
	{
		SkColumn   *col = &map->columns[i];
		SkPathStep *step;

		if (col->kind != SK_COL_FIELD || col->path == NIL)
			continue;
		step = (SkPathStep *) linitial(col->path);
		if (step->key == NULL)
			continue;
		if (shown++ == 10)
		{
			appendStringInfoString(&names, ", ...");
			break;
		}
		appendStringInfo(&names, "%s\"%s\"", shown > 1 ? ", " : "",
						 step->key);
		if (col->alias != NULL)
			appendStringInfo(&names, " or \"%s\"", col->alias);
	}
	appendStringInfo(&message,
					 "Kafka message payload has none of the fields of foreign table \"%s\"",
					 map->relname);
	appendStringInfoString(&names,
						   "; a message must have at least one of them. Check that the topic carries the messages the table maps, and the options \"field\" and \"alias\" of its columns.");
	sk_decode_fail(ERRCODE_SQL_JSON_MEMBER_NOT_FOUND, message.data,
				   names.data);
}

/*
 * Pull the wanted payload columns of a JSON message into raw (one entry per
 * attribute).  Missing fields stay not present; throws on text that is not
 * JSON, or not an object or array where the paths need one.  wanted must
 * stay the same array for as long as the mapping is used with it.
 */
void
sk_json_extract(SkMapping *map, const char *payload, size_t len,
				const bool *wanted, SkRawValue *raw)
{
	JsonPlan   *plan = json_plan(map, wanted);
	JsonSpan	top;
	int			i;

	sk_check_text(payload, len, "payload");

	for (i = 0; i < plan->nwhole; i++)
	{
		SkRawValue *r = &raw[plan->whole[i]];

		r->present = true;
		r->str = r->json = copy_text(payload, (int) len);
		r->len = r->json_len = (int) len;
	}

	scan_payload(map, plan, payload, len, &top);

	if (plan->wants_key && !plan->wants_index && top.kind != '{')
		sk_decode_fail(ERRCODE_SQL_JSON_OBJECT_NOT_FOUND,
					   "Kafka message payload is not a JSON object", NULL);
	if (plan->wants_index && !plan->wants_key && top.kind != '[')
		sk_decode_fail(ERRCODE_SQL_JSON_ARRAY_NOT_FOUND,
					   "Kafka message payload is not a JSON array", NULL);

	/* an object with none of the mapped fields: look at all of them */
	if (top.kind == '{' && plan->ncols > 0 && !plan->any_whole &&
		!found_any(plan))
	{
		JsonPlan   *all = plan;

		if (wanted != NULL)
		{
			if (plan->all == NULL)
			{
				MemoryContext oldcxt = MemoryContextSwitchTo(GetMemoryChunkContext(plan));

				plan->all = build_plan(map, NULL);
				MemoryContextSwitchTo(oldcxt);
			}
			all = plan->all;
			scan_payload(map, all, payload, len, &top);
		}
		if (!found_any(all))
			no_field_matched(map);
	}

	/* a column's own name first (its entry comes first), then its alias */
	for (i = 0; i < plan->ncols; i++)
		if (plan->found[i].start != NULL && !raw[plan->cols[i]].present)
			fill_raw(&map->columns[plan->cols[i]], &plan->found[i],
					 &raw[plan->cols[i]]);
}
