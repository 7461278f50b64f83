/*-------------------------------------------------------------------------
 *
 * bulk_insert.c
 *		Writing rows into a table the way COPY FROM does: table_multi_insert()
 *		a thousand rows at a time, then their index entries.
 *
 * The executor's INSERT writes one row at a time: a WAL record, a buffer
 * lock and a free-space lookup per row.  COPY buffers rows and hands each
 * page a single multi-insert WAL record.  The pipelines' bulk path and
 * INSERT ... SELECT from a Kafka foreign table (insert_select.c) both write
 * through here.
 *
 * Only for what COPY's fast path also skips nothing of: an ordinary table
 * that is not a partition, without triggers (foreign keys and deferrable
 * unique constraints are triggers) and without row security.  Stored
 * generated columns, NOT NULL and CHECK constraints apply per row, as the
 * row is added; unique indexes when the rows are written.
 *
 * The slots are made once, from a copy of the descriptor that is not
 * reference-counted, so that they outlive the subtransactions a pipeline
 * writes its batches in.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/tableam.h"
#include "executor/executor.h"
#include "executor/nodeModifyTable.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "sales_kafka.h"

struct SkBulkInsert
{
	TupleDesc	desc;			/* unpinned copy of the table's */
	const TupleTableSlotOps *ops;
	TupleTableSlot *slots[SK_MULTI_INSERT_ROWS];
	int			nslots;			/* made so far */
	int			nbuffered;		/* filled, not yet written */

	/* while writing: between sk_bulk_begin() and sk_bulk_end() */
	ResultRelInfo *rri;
	EState	   *estate;
	BulkInsertState bistate;
	bool		checks;			/* generated columns or constraints */
};

/*
 * Whether rel can take the bulk path: an ordinary table, not a partition,
 * without triggers, and without row security for user.
 */
bool
sk_bulk_insert_possible(Relation rel, Oid user)
{
	return rel->rd_rel->relkind == RELKIND_RELATION &&
		!rel->rd_rel->relispartition &&	/* its bounds would need checking */
		rel->trigdesc == NULL &&
		check_enable_rls(RelationGetRelid(rel), user, true) != RLS_ENABLED;
}

/* A writer for rel, in CurrentMemoryContext; no slot is made yet. */
SkBulkInsert *
sk_bulk_create(Relation rel)
{
	SkBulkInsert *bi = palloc0(sizeof(SkBulkInsert));

	bi->desc = CreateTupleDescCopy(RelationGetDescr(rel));
	bi->ops = table_slot_callbacks(rel);
	return bi;
}

/*
 * Start writing through rri (its indexes open) in estate, with
 * estate->es_output_cid as the command id.  Rows a failed write left in
 * the buffer are dropped: its (sub)transaction rolled back what it wrote,
 * and took the bulk insert state's buffer pin with it.
 */
void
sk_bulk_begin(SkBulkInsert *bi, ResultRelInfo *rri, EState *estate)
{
	int			i;

	for (i = 0; i < bi->nbuffered; i++)
		ExecClearTuple(bi->slots[i]);
	bi->nbuffered = 0;
	bi->rri = rri;
	bi->estate = estate;
	bi->bistate = GetBulkInsertState();
	bi->checks = RelationGetDescr(rri->ri_RelationDesc)->constr != NULL;
}

/*
 * The slot for the next row, empty; the caller fills it and calls
 * sk_bulk_add().  Writes the buffered rows first when the buffer is full.
 */
TupleTableSlot *
sk_bulk_next_slot(SkBulkInsert *bi)
{
	if (bi->nbuffered == SK_MULTI_INSERT_ROWS)
		sk_bulk_flush(bi);
	if (bi->nbuffered == bi->nslots)
	{
		MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(bi));

		bi->slots[bi->nslots++] = MakeSingleTupleTableSlot(bi->desc, bi->ops);
		MemoryContextSwitchTo(old);
	}
	return ExecClearTuple(bi->slots[bi->nbuffered]);
}

/*
 * Add the row stored in the slot sk_bulk_next_slot() gave: compute its
 * stored generated columns and check its constraints (an ERROR if it
 * breaks one).  The slot's values must live until the row is written, or
 * be materialized in the slot.
 */
void
sk_bulk_add(SkBulkInsert *bi, TupleTableSlot *slot)
{
	Assert(slot == bi->slots[bi->nbuffered]);
	/* CHECK constraints and generated columns may read tableoid */
	slot->tts_tableOid = RelationGetRelid(bi->rri->ri_RelationDesc);
	if (bi->checks)
	{
		Relation	rel = bi->rri->ri_RelationDesc;

		if (rel->rd_att->constr->has_generated_stored)
			ExecComputeStoredGenerated(bi->rri, bi->estate, slot, CMD_INSERT);
		ExecConstraints(bi->rri, slot, bi->estate);
		ResetPerTupleExprContext(bi->estate);
	}
	bi->nbuffered++;
}

/* Write the buffered rows and their index entries. */
void
sk_bulk_flush(SkBulkInsert *bi)
{
	ResultRelInfo *rri = bi->rri;
	EState	   *estate = bi->estate;
	int			i;

	if (bi->nbuffered == 0)
		return;
	table_multi_insert(rri->ri_RelationDesc, bi->slots, bi->nbuffered,
					   estate->es_output_cid, 0, bi->bistate);
	for (i = 0; i < bi->nbuffered; i++)
	{
		if (rri->ri_NumIndices > 0)
			list_free(ExecInsertIndexTuples(rri, bi->slots[i], estate,
											false, false, NULL, NIL));
		ExecClearTuple(bi->slots[i]);
		ResetPerTupleExprContext(estate);
	}
	bi->nbuffered = 0;
}

/* Write what is buffered and stop writing (the slots stay for reuse). */
void
sk_bulk_end(SkBulkInsert *bi)
{
	sk_bulk_flush(bi);
	FreeBulkInsertState(bi->bistate);
	bi->bistate = NULL;
	bi->rri = NULL;
	bi->estate = NULL;
}

/* Drop the slots. */
void
sk_bulk_free(SkBulkInsert *bi)
{
	int			i;

	for (i = 0; i < bi->nslots; i++)
		ExecDropSingleTupleTableSlot(bi->slots[i]);
	bi->nslots = 0;
	bi->nbuffered = 0;
}
