/*-------------------------------------------------------------------------
 *
 * decode_json.c
 *		The JSON payload format: JSON paths of column options, and the
 *		extraction of mapped fields from a message.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>

#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"

#include "sales_kafka.h"

/*
 * Parse a json_path column option: "$" followed by steps ".name",
 * "[index]", ["name"] or ['name'].  Returns the steps (SkPathStep, palloc'd
 * in CurrentMemoryContext), or NIL with *error set to what is wrong; "$"
 * alone (the whole payload) is NIL with *error NULL.  Never throws for bad
 * input.
 */
List *
sk_json_path_parse(const char *path, const char **error)
{
	const char *p = path;
	List	   *steps = NIL;

	*error = NULL;
	if (*p != '$')
	{
		*error = "A JSON path starts with \"$\".";
		return NIL;
	}
	p++;
	while (*p != '\0')
	{
		SkPathStep *step = palloc0(sizeof(SkPathStep));

		if (*p == '.')
		{
			const char *start = ++p;

			while (*p != '\0' && *p != '.' && *p != '[')
				p++;
			if (p == start)
			{
				*error = "A \".\" in a JSON path must be followed by a field name.";
				return NIL;
			}
			step->key = pnstrdup(start, p - start);
		}
		else if (p[0] == '[' && (p[1] == '"' || p[1] == '\''))
		{
			char		q = p[1];
			StringInfoData key;

			initStringInfo(&key);
			for (p += 2; *p != '\0' && *p != q; p++)
			{
				if (*p == '\\' && p[1] != '\0')
					p++;
				appendStringInfoChar(&key, *p);
			}
			if (p[0] != q || p[1] != ']')
			{
				*error = "A quoted field name in a JSON path must end with a matching quote and \"]\".";
				return NIL;
			}
			p += 2;
			step->key = key.data;
		}
		else if (*p == '[')
		{
			char	   *end;
			long		index;

			errno = 0;
			index = strtol(p + 1, &end, 10);
			if (end == p + 1 || *end != ']' || index < 0 || index > INT_MAX ||
				errno != 0 || !isdigit((unsigned char) p[1]))
			{
				*error = "An array subscript in a JSON path must be a non-negative integer in brackets.";
				return NIL;
			}
			step->key = NULL;
			step->index = (int) index;
			p = end + 1;
		}
		else
		{
			*error = "Each step of a JSON path is \".name\", \"[index]\" or [\"name\"].";
			return NIL;
		}
		steps = lappend(steps, step);
	}
	return steps;
}

/* ---------------------------------------------------------------------
 * Field extraction: one pass of the server's JSON parser over the payload,
 * keeping the values of the mapped paths and materialising nothing else.
 * ---------------------------------------------------------------------
 */

#define SK_JSON_MAX_DEPTH 64

typedef struct JsonExtract
{
	JsonLexContext *lex;
	SkMapping  *map;
	SkRawValue *raw;
	int			ncols;
	int		   *cols;			/* attribute indexes of the wanted paths */
	int		   *depth;			/* per entry of cols: path steps matched */
	int		   *len;			/* per entry of cols: path length */
	int			elem_index[SK_JSON_MAX_DEPTH + 2];
	char	   *value_start[SK_JSON_MAX_DEPTH + 2];
} JsonExtract;

static SkPathStep *
path_step(JsonExtract *st, int c, int level)
{
	return (SkPathStep *) list_nth(st->map->columns[st->cols[c]].path, level - 1);
}

/* A field or element at "level" begins: extend the matches it continues. */
static void
enter_value(JsonExtract *st, int level, const char *key, int index)
{
	int			c;

	if (level > st->map->max_path_depth)
		return;
	for (c = 0; c < st->ncols; c++)
	{
		SkPathStep *step;

		if (st->depth[c] != level - 1 || st->len[c] < level)
			continue;
		step = path_step(st, c, level);
		if (key != NULL ? (step->key != NULL && strcmp(step->key, key) == 0) :
			(step->key == NULL && step->index == index))
		{
			st->depth[c] = level;
			st->value_start[level] = st->lex->token_start;
		}
	}
}

/* A field or element at "level" ends: keep the JSON text of full matches. */
static void
leave_value(JsonExtract *st, int level)
{
	int			c;

	if (level > st->map->max_path_depth)
		return;
	for (c = 0; c < st->ncols; c++)
	{
		SkColumn   *col;
		SkRawValue *raw;
		char	   *start;

		if (st->depth[c] != level)
			continue;
		st->depth[c] = level - 1;
		if (st->len[c] != level)
			continue;

		col = &st->map->columns[st->cols[c]];
		raw = &st->raw[st->cols[c]];
		start = st->value_start[level];
		if (*start == '{' || *start == '[' ||
			col->typid == JSONBOID || col->typid == JSONOID)
		{
			raw->present = true;
			raw->json = pnstrdup(start, st->lex->prev_token_terminator - start);
			raw->json_len = st->lex->prev_token_terminator - start;
			if (*start == '{' || *start == '[')
			{
				/* a sub-document: its text is the value for any type */
				raw->isnull = false;
				raw->is_number = false;
				raw->str = raw->json;
			}
		}
	}
}

static void
json_field_start(void *state, char *fname, bool isnull)
{
	JsonExtract *st = (JsonExtract *) state;

	enter_value(st, st->lex->lex_level, fname, 0);
}

static void
json_field_end(void *state, char *fname, bool isnull)
{
	JsonExtract *st = (JsonExtract *) state;

	leave_value(st, st->lex->lex_level);
}

static void
json_array_start(void *state)
{
	JsonExtract *st = (JsonExtract *) state;

	/* called before the parser steps into the array */
	if (st->lex->lex_level + 1 <= SK_JSON_MAX_DEPTH)
		st->elem_index[st->lex->lex_level + 1] = -1;
}

static void
json_element_start(void *state, bool isnull)
{
	JsonExtract *st = (JsonExtract *) state;
	int			level = st->lex->lex_level;

	if (level > SK_JSON_MAX_DEPTH)
		return;
	st->elem_index[level]++;
	enter_value(st, level, NULL, st->elem_index[level]);
}

static void
json_element_end(void *state, bool isnull)
{
	JsonExtract *st = (JsonExtract *) state;

	leave_value(st, st->lex->lex_level);
}

/* A scalar at the end of a matched path is the value itself. */
static void
json_scalar(void *state, char *token, JsonTokenType tokentype)
{
	JsonExtract *st = (JsonExtract *) state;
	int			level = st->lex->lex_level;
	int			c;

	if (level > st->map->max_path_depth)
		return;
	for (c = 0; c < st->ncols; c++)
	{
		SkRawValue *raw;

		if (st->depth[c] != level || st->len[c] != level)
			continue;
		raw = &st->raw[st->cols[c]];
		raw->present = true;
		raw->isnull = tokentype == JSON_TOKEN_NULL;
		raw->is_number = tokentype == JSON_TOKEN_NUMBER;
		raw->str = token;
		raw->len = strlen(token);
	}
}

/*
 * Pull the wanted payload columns of a JSON message into raw (one entry per
 * attribute).  Missing fields stay not present; throws (via the server's
 * error machinery) on text that is not JSON, or not an object or array
 * where the paths need one.
 */
void
sk_json_extract(SkMapping *map, const char *payload, size_t len,
				const bool *wanted, SkRawValue *raw)
{
	JsonExtract st;
	JsonSemAction sem;
	JsonParseErrorType result;
	bool		wants_key = false;
	bool		wants_index = false;
	int			i;

	sk_check_text(payload, len, "payload");

	memset(&st, 0, sizeof(st));
	st.map = map;
	st.raw = raw;
	st.cols = palloc(sizeof(int) * Max(map->natts, 1));
	st.depth = palloc0(sizeof(int) * Max(map->natts, 1));
	st.len = palloc(sizeof(int) * Max(map->natts, 1));
	for (i = 0; i < map->natts; i++)
	{
		SkColumn   *col = &map->columns[i];

		if (col->kind != SK_COL_FIELD || (wanted != NULL && !wanted[i]))
			continue;
		if (col->whole_payload)
		{
			raw[i].present = true;
			raw[i].str = raw[i].json = pnstrdup(payload, len);
			raw[i].len = raw[i].json_len = (int) len;
			continue;
		}
		st.cols[st.ncols] = i;
		st.len[st.ncols] = list_length(col->path);
		st.ncols++;
		if (((SkPathStep *) linitial(col->path))->key != NULL)
			wants_key = true;
		else
			wants_index = true;
	}

	st.lex = makeJsonLexContextCstringLen((char *) payload, (int) len,
										  GetDatabaseEncoding(), true);
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &st;
	if (st.ncols > 0)
	{
		sem.object_field_start = json_field_start;
		sem.object_field_end = json_field_end;
		sem.array_start = json_array_start;
		sem.array_element_start = json_element_start;
		sem.array_element_end = json_element_end;
		sem.scalar = json_scalar;
	}

	result = pg_parse_json(st.lex, &sem);
	if (result != JSON_SUCCESS)
		sk_decode_fail(ERRCODE_INVALID_TEXT_REPRESENTATION,
					   "Kafka message payload is not valid JSON",
					   json_errdetail(result, st.lex));

	if (wants_key || wants_index)
	{
		const char *p = payload;

		while (p < payload + len && (*p == ' ' || *p == '\t' ||
									 *p == '\n' || *p == '\r'))
			p++;
		if (wants_key && !wants_index && *p != '{')
			sk_decode_fail(ERRCODE_SQL_JSON_OBJECT_NOT_FOUND,
						   "Kafka message payload is not a JSON object", NULL);
		if (wants_index && !wants_key && *p != '[')
			sk_decode_fail(ERRCODE_SQL_JSON_ARRAY_NOT_FOUND,
						   "Kafka message payload is not a JSON array", NULL);
	}
}
