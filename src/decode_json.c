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
