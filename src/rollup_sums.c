/*-------------------------------------------------------------------------
 *
 * rollup_sums.c
 *		sales_kafka._rollup_sums(lines refcursor, time_zone text): what
 *		refresh_rollups adds to a sales model's rollups, summed in one pass
 *		over the new lines.
 *
 * refresh_rollups (src/sql/kpi.sql) opens a cursor over the order lines it
 * rolls up, one row per line (see LineColumn), and upserts what this
 * function returns: one row per rollup, grain and bucket, with the sums of
 * the lines that fall in it.  A line is added to its bucket of the finest
 * grain of each rollup (the minute for the totals, the hour for products,
 * customers and customer groups) and to its price band; the coarser grains
 * are then sums of those buckets, as in SQL.  In SQL the same took four
 * hash aggregates over the lines, three over their results and a sort per
 * rollup, each paying the executor's cost per row: about 40 % of a
 * refresh of 100,000 lines with late ones (bench/kpi_dashboard.sh).
 *
 * Buckets are cut as date_trunc(grain, time, time_zone) cuts them, as the
 * KPI views and customers_moved() do (a zone name that is also an
 * abbreviation, such as CET, is a fixed offset there, unlike the TimeZone
 * setting of that name).  Each grain keeps the cuts it made, by the second
 * they were made for: zones' offsets, and the instants at which they
 * change, are whole seconds, so all instants of a second fall in the same
 * minute, hour, day and month; lines as a stream brings them share their
 * seconds, and a finest bucket is cut into coarser ones once.
 *
 * Money comes as integer cents (the model's revenue and profit are
 * numeric(14,2)) and is summed in an int64; what a sum would overflow is
 * carried in a numeric.  The rows come out sorted by rollup, grain, bucket
 * and then the key columns by their bytes, NULL last (the unique indexes'
 * order under the C collation; under another, a bucket's rows still come
 * together): upserted in that order, they stay together in the table.
 *
 * Memory: the rollups are maintained as an index is, within
 * maintenance_work_mem.  The sums are held in a context of their own; a
 * call reads LINES_PER_FETCH lines at a time until the cursor is exhausted
 * or the sums take a quarter of maintenance_work_mem: the coarser grains
 * then add up to twice as many buckets, the hash table doubles as it
 * grows, and the finest buckets are copied once.  Measured with lines 10 %
 * late: a call's sums take a third of the limit at 64 MB (200,000 lines),
 * five eighths at 8 MB (8,000 lines); at the 1 MB minimum the start alone
 * (a table of 1,024 buckets, the cuts) takes 0.4 MB, and a call 1.3 MB.
 * Then the call returns what it has summed, and the next call goes on
 * with the cursor's next line; refresh_rollups calls it until it returns
 * nothing, each call's rows upserted by a statement of their own (a
 * bucket may be upserted by several).  A line's key texts are detoasted,
 * and a cut allocates, in a context reset every LINES_PER_FETCH lines or
 * buckets; a key text is copied when its bucket is new.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/portal.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(sales_kafka_rollup_sums);

/* The cursor's columns, in order */
typedef enum LineColumn
{
	LINE_SOLD_AT,				/* timestamptz */
	LINE_PRODUCT_ID,			/* text */
	LINE_CUSTOMER_ID,			/* text, NULL: none */
	LINE_SEGMENT,				/* text: the customer's group, five columns */
	LINE_REGION,
	LINE_COUNTRY,
	LINE_STATE,
	LINE_CITY,
	LINE_QUANTITY,				/* integer */
	LINE_REVENUE_CENTS,			/* bigint */
	LINE_PROFIT_CENTS,			/* bigint, NULL: unknown */
	LINE_OPENS_ORDER,			/* boolean: the first line of its order */
	LINE_PRICE_BAND,			/* integer, NULL: none (no quantity) */
	LINE_COLUMNS
} LineColumn;

static const Oid line_column_types[LINE_COLUMNS] = {
	TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, INT4OID, INT8OID, INT8OID, BOOLOID, INT4OID
};

/* the columns that may be NULL */
static const bool line_column_nullable[LINE_COLUMNS] = {
	false, false, true, true, true, true, true, true, false, false, true,
	false, true
};

/* The rollups (key_text_count(): the text columns of their keys) */
typedef enum Rollup
{
	ROLLUP_TOTAL,
	ROLLUP_PRODUCT,
	ROLLUP_CUSTOMER,
	ROLLUP_CUSTOMER_GROUP,
	ROLLUP_PRICE_BAND
} Rollup;

static const char *const rollup_names[] = {
	"total", "product", "customer", "customer_group", "price_band"
};

#define MAX_KEY_TEXTS 5

/* Grains in the order of their names, as the rollups' keys sort them */
typedef enum Grain
{
	GRAIN_ALL,
	GRAIN_DAY,
	GRAIN_HOUR,
	GRAIN_MINUTE,
	GRAIN_MONTH,
	GRAIN_NONE					/* the price bands */
} Grain;

#define GRAINS GRAIN_NONE

static const char *const grain_names[GRAINS] = {
	"all", "day", "hour", "minute", "month"
};

/* Money in cents: an int64, and what it would have overflowed */
typedef struct Cents
{
	int64		sum;
	Numeric		carried;		/* NULL: nothing */
} Cents;

typedef struct Sums
{
	int64		sales_count;
	int64		order_count;
	int64		quantity;
	Cents		revenue;
	Cents		profit;
	bool		has_profit;		/* false: every profit was NULL */
} Sums;

/*
 * A bucket of a rollup: its grain and start (the price band's number for
 * a price band) and its key columns (NULL for a SQL NULL).
 */
typedef struct SumKey
{
	TimestampTz bucket;
	uint8		rollup;
	uint8		grain;
	text	   *texts[MAX_KEY_TEXTS];
} SumKey;

typedef struct SumEntry
{
	SumKey		key;
	uint32		hash;
	char		status;			/* simplehash's */
	Sums		sums;
} SumEntry;

static uint32 sum_key_hash(const SumKey *key);
static bool sum_key_equal(const SumKey *a, const SumKey *b);

#define SH_PREFIX sumtab
#define SH_ELEMENT_TYPE SumEntry
#define SH_KEY_TYPE SumKey
#define SH_KEY key
#define SH_HASH_KEY(tb, k) sum_key_hash(&(k))
#define SH_EQUAL(tb, a, b) sum_key_equal(&(a), &(b))
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* The cuts a grain made, by the second they were made for */
#define CUT_SLOTS 1024

/* lines fetched from the cursor at a time, between checks of memory */
#define LINES_PER_FETCH 1000

typedef struct Cut
{
	TimestampTz second;
	TimestampTz bucket;
	bool		valid;
} Cut;

typedef struct RollupSums
{
	MemoryContext cxt;			/* the sums, their keys' texts */
	sumtab_hash *tab;
	Datum		zone;			/* the model's time zone, text */
	Datum		units[GRAINS];	/* the grains' names, for date_trunc */
	Cut			cuts[GRAINS][CUT_SLOTS];
} RollupSums;

static int
key_text_count(Rollup rollup)
{
	switch (rollup)
	{
		case ROLLUP_PRODUCT:
		case ROLLUP_CUSTOMER:
			return 1;
		case ROLLUP_CUSTOMER_GROUP:
			return MAX_KEY_TEXTS;
		default:
			return 0;
	}
}

static uint32
sum_key_hash(const SumKey *key)
{
	uint64		b = (uint64) key->bucket;
	uint32		h;
	int			i;

	h = murmurhash32((uint32) b ^ (uint32) (b >> 32));
	h = hash_combine(h, (uint32) key->rollup << 8 | key->grain);
	for (i = 0; i < key_text_count(key->rollup); i++)
	{
		const text *t = key->texts[i];

		h = hash_combine(h, t == NULL ? 0 :
						 hash_bytes((const unsigned char *) VARDATA_ANY(t),
									VARSIZE_ANY_EXHDR(t)));
	}
	return h;
}

/* Two key columns compared by their bytes, NULL after every value */
static int
key_text_cmp(const text *a, const text *b)
{
	int			la,
				lb,
				c;

	if (a == NULL || b == NULL)
		return (a == NULL) - (b == NULL);
	la = VARSIZE_ANY_EXHDR(a);
	lb = VARSIZE_ANY_EXHDR(b);
	c = memcmp(VARDATA_ANY(a), VARDATA_ANY(b), Min(la, lb));
	return c != 0 ? c : (la > lb) - (la < lb);
}

/* The order of the rollups' keys: rollup, grain, bucket, key columns */
static int
sum_key_cmp(const SumKey *a, const SumKey *b)
{
	int			i,
				c;

	if (a->rollup != b->rollup)
		return (a->rollup > b->rollup) - (a->rollup < b->rollup);
	if (a->grain != b->grain)
		return (a->grain > b->grain) - (a->grain < b->grain);
	if (a->bucket != b->bucket)
		return (a->bucket > b->bucket) - (a->bucket < b->bucket);
	for (i = 0; i < key_text_count(a->rollup); i++)
		if ((c = key_text_cmp(a->texts[i], b->texts[i])) != 0)
			return c;
	return 0;
}

static bool
sum_key_equal(const SumKey *a, const SumKey *b)
{
	return sum_key_cmp(a, b) == 0;
}

/* qsort of entries' addresses, by their keys */
static int
sum_entry_cmp(const void *pa, const void *pb)
{
	return sum_key_cmp(&(*(SumEntry *const *) pa)->key,
					   &(*(SumEntry *const *) pb)->key);
}

/*
 * The bucket of grain g that instant ts falls in, as date_trunc(g, ts,
 * time_zone) gives it (infinities are their own buckets).
 */
static TimestampTz
cut(RollupSums *rs, Grain g, TimestampTz ts)
{
	TimestampTz second;
	Cut		   *c;

	if (TIMESTAMP_NOT_FINITE(ts))
		return ts;
	second = ts - ts % USECS_PER_SEC;
	if (ts % USECS_PER_SEC < 0)
		second -= USECS_PER_SEC;
	c = &rs->cuts[g][murmurhash32((uint32) (second / USECS_PER_SEC)) %
					 CUT_SLOTS];
	if (!c->valid || c->second != second)
	{
		Datum		b = DirectFunctionCall3(timestamptz_trunc_zone,
											rs->units[g],
											TimestampTzGetDatum(ts),
											rs->zone);

		c->second = second;
		c->bucket = DatumGetTimestampTz(b);
		c->valid = true;
	}
	return c->bucket;
}

static void
add_count(int64 *to, int64 n)
{
	if (unlikely(pg_add_s64_overflow(*to, n, to)))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("bigint out of range")));
}

/* in the sums' context, where a carried numeric lives */
static void
add_cents(Cents *to, int64 cents, Numeric carried)
{
	int64		sum;

	if (unlikely(pg_add_s64_overflow(to->sum, cents, &sum)))
	{
		Numeric		n = int64_to_numeric(to->sum);

		to->carried = to->carried ?
			numeric_add_opt_error(to->carried, n, NULL) : n;
		sum = cents;
	}
	to->sum = sum;
	if (unlikely(carried != NULL))
		to->carried = to->carried ?
			numeric_add_opt_error(to->carried, carried, NULL) : carried;
}

static void
add_sums(Sums *to, const Sums *s)
{
	add_count(&to->sales_count, s->sales_count);
	add_count(&to->order_count, s->order_count);
	add_count(&to->quantity, s->quantity);
	add_cents(&to->revenue, s->revenue.sum, s->revenue.carried);
	if (s->has_profit)
	{
		add_cents(&to->profit, s->profit.sum, s->profit.carried);
		to->has_profit = true;
	}
}

/*
 * Adds sums to a bucket.  copy_texts: the key's texts are the line's, to
 * be copied into the sums' context if the bucket is new.
 */
static void
add_to_bucket(RollupSums *rs, SumKey *key, const Sums *s, bool copy_texts)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(rs->cxt);
	SumEntry   *e;
	bool		found;

	e = sumtab_insert(rs->tab, *key, &found);
	if (!found)
	{
		memset(&e->sums, 0, sizeof(Sums));
		if (copy_texts)
		{
			int			i;

			for (i = 0; i < key_text_count(key->rollup); i++)
				if (key->texts[i] != NULL)
				{
					const text *t = key->texts[i];

					e->key.texts[i] =
						cstring_to_text_with_len(VARDATA_ANY(t),
												 VARSIZE_ANY_EXHDR(t));
				}
		}
	}
	add_sums(&e->sums, s);
	MemoryContextSwitchTo(oldcxt);
}

static void
check_line_columns(TupleDesc desc, const char *cursor)
{
	int			natts = desc ? desc->natts : 0;
	int			i;

	if (natts != LINE_COLUMNS)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("cursor \"%s\" does not return order lines to roll up",
						cursor),
				 errdetail_plural("It returns %d column, not %d.",
								  "It returns %d columns, not %d.",
								  natts, natts, LINE_COLUMNS)));
	for (i = 0; i < LINE_COLUMNS; i++)
		if (TupleDescAttr(desc, i)->atttypid != line_column_types[i])
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("cursor \"%s\" does not return order lines to roll up",
							cursor),
					 errdetail("Its column %d is of type %s, not %s.",
							   i + 1,
							   format_type_be(TupleDescAttr(desc, i)->atttypid),
							   format_type_be(line_column_types[i]))));
}

static void
check_line_nulls(TupleDesc desc, const char *cursor, const bool *nulls)
{
	int			i;

	for (i = 0; i < LINE_COLUMNS; i++)
		if (nulls[i] && !line_column_nullable[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("null value in column \"%s\" of cursor \"%s\"",
							NameStr(TupleDescAttr(desc, i)->attname), cursor),
					 errdetail("Order lines to roll up have a value there.")));
}

/*
 * Adds one line to its buckets of the finest grains, and its price band;
 * its key texts are detoasted in the current context.
 */
static void
add_line(RollupSums *rs, const Datum *values, const bool *nulls)
{
	TimestampTz sold_at = DatumGetTimestampTz(values[LINE_SOLD_AT]);
	Sums		s = {0};
	SumKey		key;
	TimestampTz hour;
	int			i;

	s.sales_count = 1;
	s.order_count = DatumGetBool(values[LINE_OPENS_ORDER]) ? 1 : 0;
	s.quantity = DatumGetInt32(values[LINE_QUANTITY]);
	s.revenue.sum = DatumGetInt64(values[LINE_REVENUE_CENTS]);
	if (!nulls[LINE_PROFIT_CENTS])
	{
		s.profit.sum = DatumGetInt64(values[LINE_PROFIT_CENTS]);
		s.has_profit = true;
	}

	memset(&key, 0, sizeof(key));
	key.rollup = ROLLUP_TOTAL;
	key.grain = GRAIN_MINUTE;
	key.bucket = cut(rs, GRAIN_MINUTE, sold_at);
	add_to_bucket(rs, &key, &s, false);

	hour = cut(rs, GRAIN_HOUR, sold_at);
	key.rollup = ROLLUP_PRODUCT;
	key.grain = GRAIN_HOUR;
	key.bucket = hour;
	key.texts[0] = (text *) PG_DETOAST_DATUM_PACKED(values[LINE_PRODUCT_ID]);
	add_to_bucket(rs, &key, &s, true);

	key.rollup = ROLLUP_CUSTOMER;
	key.texts[0] = nulls[LINE_CUSTOMER_ID] ? NULL :
		(text *) PG_DETOAST_DATUM_PACKED(values[LINE_CUSTOMER_ID]);
	add_to_bucket(rs, &key, &s, true);

	key.rollup = ROLLUP_CUSTOMER_GROUP;
	for (i = 0; i < MAX_KEY_TEXTS; i++)
		key.texts[i] = nulls[LINE_SEGMENT + i] ? NULL :
			(text *) PG_DETOAST_DATUM_PACKED(values[LINE_SEGMENT + i]);
	add_to_bucket(rs, &key, &s, true);

	if (!nulls[LINE_PRICE_BAND])
	{
		memset(&key, 0, sizeof(key));
		key.rollup = ROLLUP_PRICE_BAND;
		key.grain = GRAIN_NONE;
		key.bucket = DatumGetInt32(values[LINE_PRICE_BAND]);
		add_to_bucket(rs, &key, &s, false);
	}
}

/* The entries of the table, copied (simplehash moves them as it grows) */
static SumEntry *
copy_entries(RollupSums *rs, uint64 *n)
{
	SumEntry   *entries = palloc_extended(sizeof(SumEntry) *
										  Max(rs->tab->members, 1),
										  MCXT_ALLOC_HUGE);
	sumtab_iterator it;
	SumEntry   *e;

	*n = 0;
	sumtab_start_iterate(rs->tab, &it);
	while ((e = sumtab_iterate(rs->tab, &it)) != NULL)
		entries[(*n)++] = *e;
	return entries;
}

/*
 * Adds each bucket of a finest grain to the buckets of the coarser grains
 * it falls in: a minute of the totals to its hour, and every hour to its
 * day, month and all time (bucket -infinity).  The customers keep hours
 * only (what customers_moved() moves between groups).  Cuts are made in
 * scratch, reset as it goes.
 */
static void
add_coarser_grains(RollupSums *rs, MemoryContext scratch)
{
	static const Grain coarser[] = {
		GRAIN_HOUR, GRAIN_DAY, GRAIN_MONTH, GRAIN_ALL
	};
	uint64		n,
				i;
	SumEntry   *finest = copy_entries(rs, &n);
	MemoryContext oldcxt = MemoryContextSwitchTo(scratch);

	for (i = 0; i < n; i++)
	{
		SumKey		key = finest[i].key;
		int			first;
		int			j;

		CHECK_FOR_INTERRUPTS();
		if (i % LINES_PER_FETCH == 0)
			MemoryContextReset(scratch);
		if (key.rollup == ROLLUP_TOTAL)
			first = 0;
		else if (key.rollup == ROLLUP_PRODUCT ||
				 key.rollup == ROLLUP_CUSTOMER_GROUP)
			first = 1;
		else
			continue;
		for (j = first; j < lengthof(coarser); j++)
		{
			key.grain = coarser[j];
			key.bucket = coarser[j] == GRAIN_ALL ? DT_NOBEGIN :
				cut(rs, coarser[j], finest[i].key.bucket);
			add_to_bucket(rs, &key, &finest[i].sums, false);
		}
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(scratch);
	pfree(finest);
}

static Datum
cents_to_numeric(const Cents *c)
{
	Numeric		n = int64_div_fast_to_numeric(c->sum, 2);

	if (c->carried != NULL)
	{
		Numeric		cent = int64_div_fast_to_numeric(1, 2);

		n = numeric_add_opt_error(n, numeric_mul_opt_error(c->carried, cent,
														   NULL),
								  NULL);
	}
	return NumericGetDatum(n);
}

/*
 * One row of the result per bucket, in the order of the rollups' keys (a
 * price band's has no order count nor profit); the numerics of a row are
 * made in a context reset for the next.
 */
static void
put_sums(RollupSums *rs, ReturnSetInfo *rsinfo)
{
	MemoryContext rowcxt = AllocSetContextCreate(rs->cxt,
												 "sales_kafka rollup sums row",
												 ALLOCSET_SMALL_SIZES);
	Datum		rollups[lengthof(rollup_names)];
	SumEntry  **sorted = palloc_extended(sizeof(SumEntry *) *
										 Max(rs->tab->members, 1),
										 MCXT_ALLOC_HUGE);
	uint64		n = 0,
				i;
	sumtab_iterator it;
	SumEntry   *e;
	int			r;

	for (r = 0; r < lengthof(rollup_names); r++)
		rollups[r] = CStringGetTextDatum(rollup_names[r]);
	sumtab_start_iterate(rs->tab, &it);
	while ((e = sumtab_iterate(rs->tab, &it)) != NULL)
		sorted[n++] = e;
	qsort(sorted, n, sizeof(SumEntry *), sum_entry_cmp);
	for (i = 0; i < n; i++)
	{
		Datum		values[16];
		bool		nulls[16];
		MemoryContext oldcxt;
		int			first_text;
		int			k;

		CHECK_FOR_INTERRUPTS();
		e = sorted[i];
		memset(nulls, true, sizeof(nulls));
		values[0] = rollups[e->key.rollup];
		nulls[0] = false;
		if (e->key.rollup == ROLLUP_PRICE_BAND)
		{
			values[10] = Int32GetDatum((int32) e->key.bucket);
			nulls[10] = false;
		}
		else
		{
			values[1] = rs->units[e->key.grain];
			values[2] = TimestampTzGetDatum(e->key.bucket);
			nulls[1] = nulls[2] = false;
		}
		/* product_id (column 3), customer_id (4), segment to city (5 to 9) */
		first_text = e->key.rollup == ROLLUP_PRODUCT ? 3 :
			e->key.rollup == ROLLUP_CUSTOMER ? 4 : 5;
		for (k = 0; k < key_text_count(e->key.rollup); k++)
			if (e->key.texts[k] != NULL)
			{
				values[first_text + k] = PointerGetDatum(e->key.texts[k]);
				nulls[first_text + k] = false;
			}
		oldcxt = MemoryContextSwitchTo(rowcxt);
		values[11] = Int64GetDatum(e->sums.sales_count);
		values[12] = Int64GetDatum(e->sums.order_count);
		values[13] = Int64GetDatum(e->sums.quantity);
		values[14] = cents_to_numeric(&e->sums.revenue);
		nulls[11] = nulls[13] = nulls[14] = false;
		nulls[12] = e->key.rollup == ROLLUP_PRICE_BAND;
		if (e->sums.has_profit && e->key.rollup != ROLLUP_PRICE_BAND)
		{
			values[15] = cents_to_numeric(&e->sums.profit);
			nulls[15] = false;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(rowcxt);
	}
}

/*
 * _rollup_sums(lines refcursor, time_zone text) returns table (rollup text,
 * grain text, bucket timestamptz, product_id text, customer_id text,
 * segment text, region text, country text, state text, city text,
 * band integer, sales_count bigint, order_count bigint, quantity bigint,
 * revenue numeric, profit numeric): the sums of the cursor's next lines,
 * as many as maintenance_work_mem holds (see the top; nothing once the
 * cursor is exhausted).  Errors out on a cursor of other columns or a NULL
 * where a line has a value; everything it allocates is freed on return.
 */
Datum
sales_kafka_rollup_sums(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *cursor;
	size_t		limit = (size_t) maintenance_work_mem * 1024 / 4;
	Portal		portal;
	MemoryContext cxt;
	MemoryContext linecxt;
	RollupSums *rs;
	MemoryContext oldcxt;
	int			g;

	if (PG_NARGS() != 2)
		elog(ERROR, "sales_kafka._rollup_sums takes 2 arguments, not %d",
			 PG_NARGS());
	cursor = text_to_cstring(PG_GETARG_TEXT_PP(0));
	InitMaterializedSRF(fcinfo, 0);

	cxt = AllocSetContextCreate(rsinfo->econtext->ecxt_per_query_memory,
								"sales_kafka rollup sums",
								ALLOCSET_DEFAULT_SIZES);
	linecxt = AllocSetContextCreate(cxt, "sales_kafka rollup sums lines",
									ALLOCSET_DEFAULT_SIZES);
	rs = MemoryContextAllocZero(cxt, sizeof(RollupSums));
	rs->cxt = cxt;
	oldcxt = MemoryContextSwitchTo(cxt);
	rs->tab = sumtab_create(cxt, 1024, NULL);
	rs->zone = PointerGetDatum(PG_GETARG_TEXT_P_COPY(1));
	for (g = 0; g < GRAINS; g++)
		rs->units[g] = CStringGetTextDatum(grain_names[g]);
	MemoryContextSwitchTo(oldcxt);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	portal = SPI_cursor_find(cursor);
	if (portal == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_CURSOR),
				 errmsg("cursor \"%s\" does not exist", cursor)));
	check_line_columns(portal->tupDesc, cursor);

	do
	{
		Datum		values[LINE_COLUMNS];
		bool		nulls[LINE_COLUMNS];
		uint64		i;

		SPI_cursor_fetch(portal, true, LINES_PER_FETCH);
		if (SPI_processed == 0)
			break;
		oldcxt = MemoryContextSwitchTo(linecxt);
		for (i = 0; i < SPI_processed; i++)
		{
			CHECK_FOR_INTERRUPTS();
			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
							  values, nulls);
			check_line_nulls(SPI_tuptable->tupdesc, cursor, nulls);
			add_line(rs, values, nulls);
		}
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(linecxt);
		SPI_freetuptable(SPI_tuptable);
	} while (MemoryContextMemAllocated(cxt, true) < limit);
	SPI_finish();

	oldcxt = MemoryContextSwitchTo(cxt);
	add_coarser_grains(rs, linecxt);
	put_sums(rs, rsinfo);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
	return (Datum) 0;
}
