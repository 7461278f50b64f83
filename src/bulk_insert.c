/*-------------------------------------------------------------------------
 *
 * bulk_insert.c
 *		Writing rows into a table the way COPY FROM does: table_multi_insert()
 *		a thousand rows at a time, then their index entries, the btree
 *		ones sorted.
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
 * Unlike COPY, the entries of plain btree indexes (not unique, no
 * exclusion constraint) are not inserted row by row: they wait in a sort,
 * up to half of maintenance_work_mem or the end of the write, and go in in
 * key order.  Other sessions cannot see the rows before commit, and the
 * writing statement's snapshot cannot see its own; only a volatile
 * function could look in between and miss them in the index.  So the
 * caller asks for sorting only when it runs none between rows
 * (INSERT ... SELECT screens its plan, insert_select.c), and the table's
 * own per-row checks must not call one either (row_checks_volatile()).
 * Pipelines write 1,000 rows at a time, too few for sorting to pay, and
 * do not ask.  Unique indexes are still checked as each buffer is written.
 *
 * The slots are made once, from a copy of the descriptor that is not
 * reference-counted, so that they outlive the subtransactions a pipeline
 * writes its batches in.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/nbtree.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_am_d.h"
#include "executor/executor.h"
#include "executor/nodeModifyTable.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/tuplesort.h"
#include "utils/typcache.h"

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

	/*
	 * Index entries: rri's own indexes are written with each buffer, except
	 * the plain btrees, whose entries wait in a sort (see
	 * write_sorted_entries()).  "immediate" is rri with only the others.
	 */
	ResultRelInfo immediate;
	int			nsorted;		/* plain btrees */
	int		   *sorted;			/* their positions in rri */
	Tuplesortstate **sorts;		/* per plain btree, made when needed */
	MemoryContext sortcxt;		/* the sorts' memory */
};

static void flush_rows(SkBulkInsert *bi);

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
 * Whether checking a row could call a volatile function: a CHECK
 * constraint that calls one, or a column of a domain type with
 * constraints (their expressions appear in no plan, so they are not
 * looked into).
 */
static bool
row_checks_volatile(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	for (i = 0; desc->constr != NULL && i < desc->constr->num_check; i++)
		if (contain_volatile_functions(stringToNode(desc->constr->check[i].ccbin)))
			return true;
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Oid			elem = get_element_type(att->atttypid);

		if (!att->attisdropped &&
			(DomainHasConstraints(att->atttypid) ||
			 (OidIsValid(elem) && DomainHasConstraints(elem))))
			return true;
	}
	return false;
}

/*
 * Which of rri's indexes get their entries sorted: with sort, the plain
 * btrees (not unique, no exclusion constraint), if checking a row calls
 * nothing volatile.  The others are written with each buffer, through a
 * copy of rri that lists only them.
 */
static void
split_indexes(SkBulkInsert *bi, bool sort)
{
	ResultRelInfo *rri = bi->rri;
	int			n = rri->ri_NumIndices;
	int			i;

	bi->immediate = *rri;
	bi->nsorted = 0;
	bi->sortcxt = NULL;
	/* nothing to sort: every index as rri lists them */
	if (n == 0 || !sort || row_checks_volatile(rri->ri_RelationDesc))
		return;
	bi->immediate.ri_NumIndices = 0;
	bi->immediate.ri_IndexRelationDescs = palloc(sizeof(Relation) * n);
	bi->immediate.ri_IndexRelationInfo = palloc(sizeof(IndexInfo *) * n);
	bi->sorted = palloc(sizeof(int) * n);
	bi->sorts = palloc0(sizeof(Tuplesortstate *) * n);
	for (i = 0; i < n; i++)
	{
		Relation	index = rri->ri_IndexRelationDescs[i];
		IndexInfo  *info = rri->ri_IndexRelationInfo[i];

		if (index->rd_rel->relam == BTREE_AM_OID && !info->ii_Unique &&
			info->ii_ExclusionOps == NULL)
			bi->sorted[bi->nsorted++] = i;
		else
		{
			int			k = bi->immediate.ri_NumIndices++;

			bi->immediate.ri_IndexRelationDescs[k] = index;
			bi->immediate.ri_IndexRelationInfo[k] = info;
		}
	}
	if (bi->nsorted > 0)
		bi->sortcxt = AllocSetContextCreate(CurrentMemoryContext,
											"sales_kafka sorted index entries",
											ALLOCSET_DEFAULT_SIZES);
}

/* Put the btree entries of a written row into the sorts */
static void
sort_entries(SkBulkInsert *bi, TupleTableSlot *slot)
{
	ResultRelInfo *rri = bi->rri;
	EState	   *estate = bi->estate;
	ExprContext *econtext = GetPerTupleExprContext(estate);
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	int			k;

	econtext->ecxt_scantuple = slot;
	for (k = 0; k < bi->nsorted; k++)
	{
		Relation	index = rri->ri_IndexRelationDescs[bi->sorted[k]];
		IndexInfo  *info = rri->ri_IndexRelationInfo[bi->sorted[k]];

		/* what ExecInsertIndexTuples() does, but into a sort */
		if (!info->ii_ReadyForInserts)
			continue;
		if (info->ii_Predicate != NIL)
		{
			if (info->ii_PredicateState == NULL)
				info->ii_PredicateState = ExecPrepareQual(info->ii_Predicate, estate);
			if (!ExecQual(info->ii_PredicateState, econtext))
				continue;
		}
		FormIndexDatum(info, slot, estate, values, isnull);
		if (bi->sorts[k] == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(bi->sortcxt);

			bi->sorts[k] = tuplesort_begin_index_btree(rri->ri_RelationDesc, index,
													   false, false,
													   maintenance_work_mem,
													   NULL, TUPLESORT_NONE);
			MemoryContextSwitchTo(old);
		}
		tuplesort_putindextuplevalues(bi->sorts[k], index, &slot->tts_tid,
									  values, isnull);
	}
}

/*
 * Write the waiting btree entries in key order.  Rows arrive in the order
 * of their source: a topic's partitions interleave, so a time-keyed index
 * would get its keys out of order, each insert descending to a different
 * leaf and splitting pages in the middle.  Sorted, the entries of a run
 * of rows go to neighbouring leaves, and past the index's last key they
 * take btree's rightmost-page fast path, as rows COPY'd in key order do.
 *
 * The sort holds each entry as the index tuple btinsert() would form from
 * the same values (tuplesort_putindextuplevalues() calls the same
 * index_form_tuple()), heap TID included, so it goes to _bt_doinsert()
 * as it is, rather than being taken apart and formed again by
 * index_insert().  btree takes predicate locks itself, as index_insert()
 * leaves it to.
 */
static void
write_sorted_entries(SkBulkInsert *bi)
{
	ResultRelInfo *rri = bi->rri;
	int			k;

	for (k = 0; k < bi->nsorted; k++)
	{
		Relation	index = rri->ri_IndexRelationDescs[bi->sorted[k]];
		IndexTuple	itup;

		if (bi->sorts[k] == NULL)
			continue;
		/* index_insert()'s own check, which _bt_doinsert() does not make */
		if (ReindexIsProcessingIndex(RelationGetRelid(index)))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot access index \"%s\" while it is being reindexed",
							RelationGetRelationName(index))));
		tuplesort_performsort(bi->sorts[k]);
		while ((itup = tuplesort_getindextuple(bi->sorts[k], true)) != NULL)
		{
			CHECK_FOR_INTERRUPTS();
			_bt_doinsert(index, itup, UNIQUE_CHECK_NO, false,
						 rri->ri_RelationDesc);
		}
		tuplesort_end(bi->sorts[k]);
		bi->sorts[k] = NULL;
	}
	if (bi->sortcxt != NULL)
		MemoryContextReset(bi->sortcxt);
}

/*
 * Start writing through rri (its indexes open) in estate, with
 * estate->es_output_cid as the command id.  With sort_btree, the caller
 * runs no volatile function between rows, and plain btree entries may
 * wait to be sorted (see above).  Rows a failed write left in the buffer
 * are dropped: its (sub)transaction rolled back what it wrote, and took
 * the bulk insert state's buffer pin with it.
 */
void
sk_bulk_begin(SkBulkInsert *bi, ResultRelInfo *rri, EState *estate,
			  bool sort_btree)
{
	int			i;

	for (i = 0; i < bi->nbuffered; i++)
		ExecClearTuple(bi->slots[i]);
	bi->nbuffered = 0;
	bi->rri = rri;
	bi->estate = estate;
	bi->bistate = GetBulkInsertState();
	bi->checks = RelationGetDescr(rri->ri_RelationDesc)->constr != NULL;
	split_indexes(bi, sort_btree);
}

/*
 * The slot for the next row, empty; the caller fills it and calls
 * sk_bulk_add().  Writes the buffered rows first when the buffer is full.
 */
TupleTableSlot *
sk_bulk_next_slot(SkBulkInsert *bi)
{
	if (bi->nbuffered == SK_MULTI_INSERT_ROWS)
		flush_rows(bi);
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
static void
flush_rows(SkBulkInsert *bi)
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
		if (bi->immediate.ri_NumIndices > 0)
			list_free(ExecInsertIndexTuples(&bi->immediate, bi->slots[i], estate,
											false, false, NULL, NIL));
		if (bi->nsorted > 0)
			sort_entries(bi, bi->slots[i]);
		ExecClearTuple(bi->slots[i]);
		ResetPerTupleExprContext(estate);
	}
	bi->nbuffered = 0;
	/* at half of maintenance_work_mem, so that sorts seldom spill to disk */
	if (bi->sortcxt != NULL &&
		MemoryContextMemAllocated(bi->sortcxt, true) >=
		(Size) maintenance_work_mem * 1024 / 2)
		write_sorted_entries(bi);
}

/* Write what is buffered and stop writing (the slots stay for reuse). */
void
sk_bulk_end(SkBulkInsert *bi)
{
	flush_rows(bi);
	write_sorted_entries(bi);
	if (bi->sortcxt != NULL)
		MemoryContextDelete(bi->sortcxt);
	bi->sortcxt = NULL;
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
