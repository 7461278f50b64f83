/*-------------------------------------------------------------------------
 *
 * partset.c
 *		Sets of Kafka partitions: the "partitions" of a pipeline that owns
 *		a subset of its topic's partitions ('0-31', '0,2,5-7').
 *
 * A set is a sorted list of disjoint, non-adjacent ranges of partition
 * numbers (0 to PG_INT32_MAX); NULL stands for every partition of the
 * topic.  sk_partset_parse() accepts numbers and ranges "a-b" (a <= b)
 * separated by commas, with spaces around them; ranges that overlap or
 * touch are merged, so every set has one canonical text
 * (sk_partset_text()), which is what the catalog stores.
 *
 * This file knows nothing of pipelines, Kafka or the catalog: it is pure
 * computation, in CurrentMemoryContext, and throws only from
 * sk_partset_parse().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "sales_kafka.h"

/* a new empty set with room for n ranges */
static SkPartSet *
new_set(int n)
{
	SkPartSet  *set = palloc(sizeof(SkPartSet));

	set->nranges = 0;
	set->lo = palloc(sizeof(int32) * Max(n, 1));
	set->hi = palloc(sizeof(int32) * Max(n, 1));
	return set;
}

/* add range lo..hi, greater than every range of the set; merges neighbours */
static void
append_range(SkPartSet *set, int32 lo, int32 hi)
{
	int			n = set->nranges;

	if (n > 0 && (int64) lo <= (int64) set->hi[n - 1] + 1)
	{
		set->hi[n - 1] = Max(set->hi[n - 1], hi);
		return;
	}
	set->lo[n] = lo;
	set->hi[n] = hi;
	set->nranges++;
}

static int
compare_ranges(const void *a, const void *b)
{
	const int32 *ra = (const int32 *) a;
	const int32 *rb = (const int32 *) b;

	if (ra[0] != rb[0])
		return ra[0] < rb[0] ? -1 : 1;
	return ra[1] < rb[1] ? -1 : ra[1] > rb[1] ? 1 : 0;
}

static void pg_attribute_noreturn()
invalid_spec(const char *spec, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid partition list \"%s\"", spec),
			 errdetail("%s", detail),
			 errhint("Give partition numbers and ranges separated by commas, such as '0-31' or '0,2,5-7'.")));
}

/* a partition number at *p, which moves past it; throws if there is none */
static int32
parse_number(const char *spec, const char **p)
{
	int64		v = 0;
	const char *s = *p;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		invalid_spec(spec, "A partition is a whole number from 0 on.");
	while (*s >= '0' && *s <= '9')
	{
		v = v * 10 + (*s - '0');
		if (v > PG_INT32_MAX)
			invalid_spec(spec, "Partition numbers go up to 2147483647.");
		s++;
	}
	while (*s == ' ' || *s == '\t')
		s++;
	*p = s;
	return (int32) v;
}

/*
 * The set a partition list such as '0-31' or '0,2,5-7' names, in
 * CurrentMemoryContext.  Throws ERRCODE_INVALID_PARAMETER_VALUE for an
 * empty list, a reversed range or anything else.
 */
SkPartSet *
sk_partset_parse(const char *spec)
{
	const char *p = spec;
	int			cap = 8;
	int			n = 0;
	int32	   *pairs = palloc(sizeof(int32) * 2 * cap);
	SkPartSet  *set;
	int			i;

	for (;;)
	{
		int32		lo = parse_number(spec, &p);
		int32		hi = lo;

		if (*p == '-')
		{
			p++;
			hi = parse_number(spec, &p);
			if (hi < lo)
				invalid_spec(spec, psprintf("The range %d-%d is reversed.", lo, hi));
		}
		if (n == cap)
		{
			cap *= 2;
			pairs = repalloc(pairs, sizeof(int32) * 2 * cap);
		}
		pairs[2 * n] = lo;
		pairs[2 * n + 1] = hi;
		n++;
		if (*p == '\0')
			break;
		if (*p != ',')
			invalid_spec(spec, psprintf("Unexpected \"%c\".", *p));
		p++;
	}
	qsort(pairs, n, sizeof(int32) * 2, compare_ranges);
	set = new_set(n);
	for (i = 0; i < n; i++)
		append_range(set, pairs[2 * i], pairs[2 * i + 1]);
	pfree(pairs);
	return set;
}

/*
 * The canonical text of a set ('0-31', '0,2,5-7'), or "all" for NULL (every
 * partition), palloc'd.
 */
char *
sk_partset_text(const SkPartSet *set)
{
	StringInfoData buf;
	int			i;

	if (set == NULL)
		return pstrdup("all");
	initStringInfo(&buf);
	for (i = 0; i < set->nranges; i++)
	{
		if (i > 0)
			appendStringInfoChar(&buf, ',');
		if (set->lo[i] == set->hi[i])
			appendStringInfo(&buf, "%d", set->lo[i]);
		else
			appendStringInfo(&buf, "%d-%d", set->lo[i], set->hi[i]);
	}
	return buf.data;
}

/* Whether partition part is in the set (NULL: every partition is) */
bool
sk_partset_contains(const SkPartSet *set, int32 part)
{
	int			i;

	if (set == NULL)
		return part >= 0;
	for (i = 0; i < set->nranges && set->lo[i] <= part; i++)
		if (part <= set->hi[i])
			return true;
	return false;
}

/*
 * The position of partition part among the set's partitions, from 0 (for
 * NULL, the partition number itself); the partition must be in the set.
 * Parallel workers share a pipeline's partitions by this position, so that
 * a set such as '0,2,4,6' spreads over two workers as '0-3' does.
 */
int64
sk_partset_ordinal(const SkPartSet *set, int32 part)
{
	int64		before = 0;
	int			i;

	if (set == NULL)
		return part;
	for (i = 0; i < set->nranges; i++)
	{
		if (part <= set->hi[i])
			return before + (part - set->lo[i]);
		before += (int64) set->hi[i] - set->lo[i] + 1;
	}
	elog(ERROR, "partition %d is not in the set", part);
	return -1;					/* keep the compiler quiet */
}

/*
 * The partitions in both sets (NULL for every partition: both NULL), as a
 * new set; an empty set (nranges 0) if none.
 */
SkPartSet *
sk_partset_intersect(const SkPartSet *a, const SkPartSet *b)
{
	SkPartSet  *r;
	int			i = 0;
	int			j = 0;

	if (a == NULL && b == NULL)
		return NULL;
	if (a == NULL || b == NULL)
	{
		const SkPartSet *s = a != NULL ? a : b;

		r = new_set(s->nranges);
		for (i = 0; i < s->nranges; i++)
			append_range(r, s->lo[i], s->hi[i]);
		return r;
	}
	r = new_set(a->nranges + b->nranges);
	while (i < a->nranges && j < b->nranges)
	{
		int32		lo = Max(a->lo[i], b->lo[j]);
		int32		hi = Min(a->hi[i], b->hi[j]);

		if (lo <= hi)
			append_range(r, lo, hi);
		if (a->hi[i] < b->hi[j])
			i++;
		else
			j++;
	}
	return r;
}

/*
 * The partitions of the set that are not among the npartitions numbers of
 * parts (sorted ascending), as a new set; an empty set if none (and always
 * for NULL, which means the partitions the topic has).
 */
SkPartSet *
sk_partset_missing(const SkPartSet *set, const int32 *parts, int npartitions)
{
	SkPartSet  *r;
	int			i;
	int			k = 0;

	r = new_set(set != NULL ? set->nranges + npartitions : 0);
	if (set == NULL)
		return r;
	for (i = 0; i < set->nranges; i++)
	{
		int64		next = set->lo[i];	/* first not yet accounted for */

		while (k < npartitions && parts[k] < set->lo[i])
			k++;
		while (k < npartitions && parts[k] <= set->hi[i])
		{
			if (parts[k] > next)
				append_range(r, (int32) next, parts[k] - 1);
			next = (int64) parts[k] + 1;
			k++;
		}
		if (next <= set->hi[i])
			append_range(r, (int32) next, set->hi[i]);
	}
	return r;
}
