/*-------------------------------------------------------------------------
 *
 * json_path.c
 *		The grammar of the json_path column option: "$" followed by steps
 *		".name", "[index]", ["name"] or ['name'].
 *
 * The validator (fdw_options.c) checks an option with it, and the JSON
 * format (decode_json.c) maps a column with it when a mapping is loaded,
 * so a path that does not parse is an error in both.  Depends on nothing
 * of ours; the fuzz harness (test/fuzz) compiles it as it is.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>

#include "lib/stringinfo.h"

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
			step->keylen = p - start;
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
			step->keylen = key.len;
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


/*
 * A json_path option's steps, as sk_json_path_parse() returns them, or
 * the validator's ERROR for a path that does not parse.
 */
List *
sk_json_path_check(const char *path)
{
	const char *error;
	List	   *steps = sk_json_path_parse(path, &error);

	if (steps == NIL && error != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"json_path\": \"%s\"", path),
				 errdetail("%s", error),
				 errhint("Write a path such as '$.customer.region', '$.lines[0].sku' or '$[\"odd key\"]'.")));
	return steps;
}
