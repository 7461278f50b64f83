/*-------------------------------------------------------------------------
 *
 * pipeline_offsets.c
 *		Reading and writing sales_kafka.pipeline_offset: for each pipeline
 *		and partition, the offset of the next message to write.
 *
 * The offset table is the only source of truth of where a pipeline is: a
 * worker writes a batch's offsets in the batch's own transaction, so a
 * crash replays exactly what did not commit.  sk_offsets_store() is the one
 * function that writes offsets, for the workers' batches, for the
 * partitions a worker sees first, and for reset_pipeline(); each row it
 * writes carries the partition's high watermark, so that lag shows at once.
 * A batch's offsets are stored only where they still hold what the worker
 * read: if anything else moved them (a duplicate worker, a reset), the
 * worker rolls the batch back and reads again.  sk_offsets_reset() forgets
 * them all.
 *
 * Runs its statements through pipeline_catalog.c, as the bootstrap
 * superuser; the callers check the rights of the role they act for.  Never
 * talks to Kafka.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "sales_kafka.h"

static SkCatalogStatement select_offsets = {
	"SELECT partition, next_offset FROM sales_kafka.pipeline_offset"
	" WHERE pipeline_id = $1 AND topic = $2",
	2, {INT8OID, TEXTOID}, true, SPI_OK_SELECT
};

/*
 * Set next[p] to the stored offset of each partition p (0 .. npartitions - 1)
 * of the pipeline's topic that has one; leaves the others alone.  Needs a
 * transaction.
 */
void
sk_offsets_load(int64 pipeline_id, const char *topic, int npartitions,
				int64 *next)
{
	Datum		values[2];
	SkCatalogScope scope;
	uint64		n;
	uint64		i;

	values[0] = Int64GetDatum(pipeline_id);
	values[1] = CStringGetTextDatum(topic);
	sk_catalog_begin(&scope);
	n = sk_catalog_run(&select_offsets, values, NULL);
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		int32		part = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
													   SPI_tuptable->tupdesc, 1, &isnull));
		int64		offset = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
														 SPI_tuptable->tupdesc, 2, &isnull));

		if (part >= 0 && part < npartitions)
			next[part] = offset;
	}
	sk_catalog_end(&scope);
}

/* A batch's offsets: only rows that still hold what the worker read move */
static SkCatalogStatement advance_offsets = {
	"UPDATE sales_kafka.pipeline_offset o"
	" SET next_offset = u.next,"
	" high_watermark = GREATEST(NULLIF(u.high, -1), u.next),"
	" updated_at = now()"
	" FROM unnest($3, $4, $5, $6) AS u(partition, expected, next, high)"
	" WHERE o.pipeline_id = $1 AND o.topic = $2"
	" AND o.partition = u.partition AND o.next_offset = u.expected",
	6, {INT8OID, TEXTOID, INT4ARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
	INT8ARRAYOID}, false, SPI_OK_UPDATE
};

/* New rows; $6 says whether a row stored meanwhile is overwritten */
static SkCatalogStatement insert_offsets = {
	"INSERT INTO sales_kafka.pipeline_offset AS o"
	" (pipeline_id, topic, partition, next_offset, high_watermark)"
	" SELECT $1, $2, u.partition, u.next, GREATEST(NULLIF(u.high, -1), u.next)"
	" FROM unnest($3, $4, $5) AS u(partition, next, high)"
	" ON CONFLICT (pipeline_id, topic, partition) DO UPDATE"
	" SET next_offset = EXCLUDED.next_offset,"
	" high_watermark = EXCLUDED.high_watermark, updated_at = now()"
	" WHERE $6",
	6, {INT8OID, TEXTOID, INT4ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, BOOLOID},
	false, SPI_OK_INSERT
};

static Datum
int8_array(Datum *elems, int n)
{
	return PointerGetDatum(construct_array(elems, n, INT8OID, 8,
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * Store the offsets of some partitions of a pipeline's topic, each with
 * its high watermark (the offset itself where that is unknown or lower).
 * Each SkOffset says what it replaces: the offset the caller read (a
 * batch's), SK_OFFSET_NEW (a partition without a stored offset) or
 * SK_OFFSET_ANY (a reset); one call stores one of the three kinds.
 * Returns false, having stored only some, if any partition held something
 * else: the caller must then roll its transaction back.  Works in
 * CurrentMemoryContext; needs a transaction.
 */
bool
sk_offsets_store(int64 pipeline_id, const char *topic,
				 const SkOffset *offsets, int n)
{
	bool		batch = n > 0 && offsets[0].expected >= 0;
	Datum	   *parts = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *expected = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *next = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *high = palloc(sizeof(Datum) * Max(n, 1));
	Datum		values[6];
	SkCatalogScope scope;
	uint64		stored;
	int			i;

	if (n == 0)
		return true;
	for (i = 0; i < n; i++)
	{
		if (batch ? offsets[i].expected < 0 :
			offsets[i].expected != offsets[0].expected)
			elog(ERROR, "offsets of different kinds stored at once");
		parts[i] = Int32GetDatum(offsets[i].partition);
		expected[i] = Int64GetDatum(offsets[i].expected);
		next[i] = Int64GetDatum(offsets[i].next);
		high[i] = Int64GetDatum(offsets[i].high);
	}
	values[0] = Int64GetDatum(pipeline_id);
	values[1] = CStringGetTextDatum(topic);
	values[2] = PointerGetDatum(construct_array(parts, n, INT4OID, 4, true,
												TYPALIGN_INT));
	if (batch)
	{
		values[3] = int8_array(expected, n);
		values[4] = int8_array(next, n);
		values[5] = int8_array(high, n);
	}
	else
	{
		values[3] = int8_array(next, n);
		values[4] = int8_array(high, n);
		values[5] = BoolGetDatum(offsets[0].expected == SK_OFFSET_ANY);
	}
	sk_catalog_begin(&scope);
	stored = sk_catalog_run(batch ? &advance_offsets : &insert_offsets,
							values, NULL);
	sk_catalog_end(&scope);
	return stored == (uint64) n;
}

static SkCatalogStatement delete_offsets = {
	"DELETE FROM sales_kafka.pipeline_offset WHERE pipeline_id = $1",
	1, {INT8OID}, false, SPI_OK_DELETE
};

/*
 * Forget every stored offset of a pipeline: its workers then start as a new
 * pipeline's do, at its start_at.  Needs a transaction.
 */
void
sk_offsets_reset(int64 pipeline_id)
{
	Datum		arg = Int64GetDatum(pipeline_id);

	(void) sk_catalog_exec(&delete_offsets, &arg, NULL);
}
