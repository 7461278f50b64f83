/*-------------------------------------------------------------------------
 *
 * fuzz_json_path.c
 *		Fuzz target: sk_json_path_parse() on arbitrary option values, and
 *		extraction with the paths it accepts.
 *
 * Input: the json_path option value (up to the first "\n" or NUL byte, as
 * an option value is a C string), then optionally "\n" and a payload.
 *
 * Checks:
 *	- the parser never throws; it returns steps, or NIL with an error, or
 *	  NIL without one for "$" alone;
 *	- it agrees with a reference parser written here from the grammar in
 *	  json_path.c: "$" then steps ".name" (a non-empty run without "."
 *	  or "["), "[digits]" (at most INT_MAX) or ["name"] / ['name'] (a
 *	  backslash takes the next character as it is);
 *	- a key's length is its strlen;
 *	- the steps printed back as a canonical path parse to the same steps;
 *	- with a payload: extraction with the path (as text and as jsonb
 *	  columns, beside a plain field) is checked against PostgreSQL's JSON
 *	  parser as in fuzz_json.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

#include "sales_kafka.h"
#include "fuzz_common.h"

typedef struct RefStep
{
	char	   *key;			/* malloc'd; NULL for a subscript */
	size_t		keylen;
	long		index;
} RefStep;

/*
 * The reference grammar.  Returns the number of steps, or -1 if the path
 * is invalid; steps has room for strlen(path) entries.
 */
static int
ref_path(const char *path, RefStep *steps)
{
	size_t		i = 0;
	size_t		n = strlen(path);
	int			nsteps = 0;

	if (n == 0 || path[0] != '$')
		return -1;
	i = 1;
	while (i < n)
	{
		RefStep    *s = &steps[nsteps];

		s->key = NULL;
		s->index = 0;
		if (path[i] == '.')
		{
			size_t		j = i + 1;

			while (j < n && path[j] != '.' && path[j] != '[')
				j++;
			if (j == i + 1)
				goto fail;
			s->keylen = j - i - 1;
			s->key = malloc(s->keylen + 1);
			memcpy(s->key, path + i + 1, s->keylen);
			s->key[s->keylen] = '\0';
			i = j;
		}
		else if (path[i] == '[' && i + 1 < n &&
				 (path[i + 1] == '"' || path[i + 1] == '\''))
		{
			char		q = path[i + 1];
			size_t		j = i + 2;

			s->key = malloc(n + 1);
			s->keylen = 0;
			for (;;)
			{
				if (j >= n)
				{
					free(s->key);
					goto fail;
				}
				if (path[j] == q)
					break;
				if (path[j] == '\\' && j + 1 < n)
					j++;
				s->key[s->keylen++] = path[j++];
			}
			s->key[s->keylen] = '\0';
			if (j + 1 >= n || path[j + 1] != ']')
			{
				free(s->key);
				goto fail;
			}
			i = j + 2;
		}
		else if (path[i] == '[')
		{
			size_t		j = i + 1;
			long		v = 0;

			if (j >= n || path[j] < '0' || path[j] > '9')
				goto fail;
			while (j < n && path[j] >= '0' && path[j] <= '9')
			{
				v = v * 10 + (path[j] - '0');
				if (v > INT_MAX)
					goto fail;
				j++;
			}
			if (j >= n || path[j] != ']')
				goto fail;
			s->index = v;
			i = j + 1;
		}
		else
			goto fail;
		nsteps++;
	}
	return nsteps;

fail:
	for (int k = 0; k < nsteps; k++)
		free(steps[k].key);
	return -1;
}

static void
compare_steps(const char *path, List *steps, const RefStep *ref, int nref)
{
	ListCell   *lc;

	if (list_length(steps) != nref)
		sk_fuzz_abort("path \"%s\": %d steps, the reference %d",
					  sk_fuzz_show(path, strlen(path)), list_length(steps),
					  nref);
	foreach(lc, steps)
	{
		SkPathStep *s = lfirst(lc);
		const RefStep *r = &ref[foreach_current_index(lc)];

		if ((s->key == NULL) != (r->key == NULL))
			sk_fuzz_abort("path \"%s\": step %d is a %s, the reference's a %s",
						  sk_fuzz_show(path, strlen(path)),
						  foreach_current_index(lc),
						  s->key ? "key" : "subscript",
						  r->key ? "key" : "subscript");
		if (s->key != NULL &&
			(s->keylen < 0 || (size_t) s->keylen != r->keylen ||
			 strlen(s->key) != (size_t) s->keylen ||
			 memcmp(s->key, r->key, r->keylen) != 0))
			sk_fuzz_abort("path \"%s\": step %d is key \"%s\" (%d), the reference \"%s\"",
						  sk_fuzz_show(path, strlen(path)),
						  foreach_current_index(lc),
						  sk_fuzz_show(s->key, strlen(s->key)), s->keylen,
						  sk_fuzz_show(r->key, r->keylen));
		if (s->key == NULL && (s->index < 0 || s->index != r->index))
			sk_fuzz_abort("path \"%s\": step %d is [%d], the reference [%ld]",
						  sk_fuzz_show(path, strlen(path)),
						  foreach_current_index(lc), s->index, r->index);
	}
}

/* The steps as a canonical path: $["key"] with \ before " and \, [n] */
static char *
canonical(const RefStep *ref, int nref)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '$');
	for (int i = 0; i < nref; i++)
	{
		if (ref[i].key == NULL)
		{
			appendStringInfo(&buf, "[%ld]", ref[i].index);
			continue;
		}
		appendStringInfoString(&buf, "[\"");
		for (size_t j = 0; j < ref[i].keylen; j++)
		{
			if (ref[i].key[j] == '"' || ref[i].key[j] == '\\')
				appendStringInfoChar(&buf, '\\');
			appendStringInfoChar(&buf, ref[i].key[j]);
		}
		appendStringInfoString(&buf, "\"]");
	}
	return buf.data;
}

static List *
parse_path(const char *path, const char **error)
{
	List	   *volatile steps = NIL;

	PG_TRY();
	{
		steps = sk_json_path_parse(path, error);
	}
	PG_CATCH();
	{
		sk_fuzz_abort("path \"%s\": sk_json_path_parse() threw: %s",
					  sk_fuzz_show(path, strlen(path)), sk_fuzz_error.message);
	}
	PG_END_TRY();
	return steps;
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *input = (const char *) data;
	const char *nl = memchr(input, '\n', size);
	size_t		pathlen = nl ? (size_t) (nl - input) : size;
	char	   *path;
	RefStep    *ref;
	int			nref;
	List	   *steps;
	const char *error;

	sk_fuzz_init();

	/* an option value: a C string */
	path = palloc(pathlen + 1);
	memcpy(path, input, pathlen);
	path[pathlen] = '\0';

	ref = malloc(sizeof(RefStep) * (strlen(path) + 1));
	nref = ref_path(path, ref);
	steps = parse_path(path, &error);

	if (nref < 0)
	{
		if (steps != NIL || error == NULL || error[0] == '\0')
			sk_fuzz_abort("path \"%s\": the reference refuses it, the parser does not",
						  sk_fuzz_show(path, strlen(path)));
	}
	else
	{
		char	   *again;
		List	   *steps2;

		if (error != NULL)
			sk_fuzz_abort("path \"%s\": the reference takes it, the parser says: %s",
						  sk_fuzz_show(path, strlen(path)), error);
		if ((steps == NIL) != (nref == 0))
			sk_fuzz_abort("path \"%s\": whole payload (NIL) for %d steps",
						  sk_fuzz_show(path, strlen(path)), nref);
		compare_steps(path, steps, ref, nref);

		again = canonical(ref, nref);
		steps2 = parse_path(again, &error);
		if (error != NULL)
			sk_fuzz_abort("canonical path \"%s\" of \"%s\" refused: %s",
						  sk_fuzz_show(again, strlen(again)),
						  sk_fuzz_show(path, strlen(path)), error);
		compare_steps(again, steps2, ref, nref);

		if (nl != NULL)
		{
			SkMapping  *map = sk_fuzz_mapping(SK_FORMAT_JSON, 3);
			SkColumn   *col;

			col = sk_fuzz_add_column(map, "as_text", TEXTOID, SK_COL_FIELD);
			sk_fuzz_set_json_path(map, col, path);
			col = sk_fuzz_add_column(map, "as_jsonb", JSONBOID, SK_COL_FIELD);
			sk_fuzz_set_json_path(map, col, path);
			(void) sk_fuzz_add_column(map, "order_id", TEXTOID, SK_COL_FIELD);
			sk_fuzz_finish_mapping(map);
			sk_fuzz_check_json(map, nl + 1, size - (nl + 1 - input), NULL);
		}
	}

	for (int i = 0; i < Max(nref, 0); i++)
		free(ref[i].key);
	free(ref);
	sk_fuzz_done();
	return 0;
}
