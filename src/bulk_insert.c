/*-------------------------------------------------------------------------
 *
 * bulk_insert.c
 *		Writing rows into a table the way COPY FROM does (copyfrom.c):
 *		table_multi_insert() a thousand rows at a time, then their index
 *		entries and AFTER ROW triggers, with every rule of the executor's
 *		INSERT but row security.
 *
 * The executor's INSERT writes one row at a time: a WAL record, a buffer
 * lock and a free-space lookup per row.  COPY buffers rows and hands each
 * page a single multi-insert WAL record.  sales_kafka.load() (load.c) and
 * the pipelines' bulk path (pipeline_sink.c) write through here.
 *
 * One sk_bulk_begin() .. sk_bulk_end() is one statement, as one COPY is:
 * BEFORE and AFTER STATEMENT triggers fire once, AFTER ROW triggers
 * (foreign keys, deferrable unique constraints, transition tables) are
 * queued as rows are written and fire at sk_bulk_end().  Per row, as COPY
 * does: a partitioned table routes the row (ExecFindPartition), BEFORE ROW
 * triggers fire, stored generated columns are computed, NOT NULL, CHECK
 * and partition constraints are checked; unique and exclusion constraints
 * when the row's index entries are made.  Rows are buffered per table
 * (per partition, up to SK_MAX_PART_BUFFERS of them), except where user
 * code could look for the rows before them: a relation with BEFORE ROW
 * triggers, a partitioned table with transition tables, a foreign
 * partition, or a caller that runs volatile code between rows
 * (SK_BULK_ONE_BY_ONE) gets each row written as it is added.
 *
 * Row security is not applied: the caller refuses a table it applies to,
 * as COPY FROM does.  Privileges are the caller's to check.
 *
 * Sorted index entries.  With SK_BULK_SORT_INDEXES (the caller runs no
 * volatile code between rows), the entries of plain btree indexes (not
 * unique, no exclusion constraint) of buffered relations are not inserted
 * with their rows: they wait in an array, up to half of maintenance_work_mem
 * or the end of the statement, and go in in key order through
 * index_insert() (write_sorted()).  Other sessions cannot see the rows before
 * commit, and the statement's snapshot cannot see its own; only user code
 * running between rows could look in between and miss them, so the table's
 * own per-row checks must not call a volatile function
 * (row_checks_volatile()), and before a row goes to a relation whose
 * triggers fire per row, every waiting entry is written.  AFTER triggers
 * fire after the last entry is in.  Unique indexes are still checked as
 * each buffer is written.
 *
 * Tables of the heap access method only.  Another table access method may
 * stand for rows kept elsewhere, which only the planner and executor know
 * how to reach; so may a heap table in a database with Citus (a
 * distributed table's shell): sk_bulk_writable() says whether a table and
 * its partitions are all heap (or foreign) tables outside Citus, and
 * the callers take the executor's path for any other (load.c, the
 * pipelines' SQL path).  sk_bulk_create() refuses a table that is not.  A
 * partition of another access method attached while a statement writes is
 * written as the executor's INSERT writes a routed row: one row at a time,
 * through its own table AM, with its index entries.
 *
 * Uses only what COPY FROM uses: the table AM, ExecInsertIndexTuples(),
 * index_insert(), the executor's trigger, constraint, partition-routing and
 * generated-column functions.  Never an index AM's internals.
 *
 * The table's own slots are made once, from a copy of its descriptor that
 * is not reference-counted, so that they outlive the subtransactions a
 * pipeline writes its batches in; a partition's live for one statement.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/stratnum.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/execPartition.h"
#include "executor/executor.h"
#include "executor/nodeModifyTable.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "optimizer/optimizer.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/sortsupport.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "sales_kafka.h"

/* Buffered rows are written at this many bytes too, as COPY's are */
#define SK_MULTI_INSERT_BYTES (1024 * 1024)

/* Partitions that keep their buffers between writes, as in COPY */
#define SK_MAX_PART_BUFFERS 32

/*
 * A btree entry that waits to be sorted: the row's heap TID and the values
 * of the index's columns, as FormIndexDatum() gives them (those passed by
 * reference copied into the sorts' memory).
 */
typedef struct SkEntry
{
	ItemPointerData tid;
	uint32		nulls;			/* bit i: column i is NULL */
	Datum		values[FLEXIBLE_ARRAY_MEMBER];
} SkEntry;

/* The waiting entries of one plain btree index, in an array */
typedef struct SkEntrySort
{
	int			pos;			/* the index's position in its rri */
	int			natts;			/* its columns, key and included */
	int			nkeys;
	SortSupport ssup;			/* per key column, the index's order */
	bool	   *byval;			/* per column */
	int16	   *typlen;
	Size		entry_size;
	char	   *entries;		/* in the sorts' memory */
	Size		nentries;
	Size		maxentries;
} SkEntrySort;

/* A relation rows go into: the table, or one of its partitions */
typedef struct SkBulkTarget
{
	ResultRelInfo *rri;
	TupleDesc	desc;			/* unpinned copy of the relation's */
	const TupleTableSlotOps *ops;
	TupleTableSlot *slots[SK_MULTI_INSERT_ROWS];
	int			nslots;			/* made so far */
	int			nused;			/* filled, not yet written */
	bool		batched;		/* false: each row is written as it is added */
	bool		has_br_trig;	/* BEFORE ROW INSERT triggers */
	BulkInsertState bistate;	/* while writing */
	int			ti_options;

	/*
	 * Index entries: rri's own indexes are written with each buffer, except
	 * the plain btrees whose entries wait to be sorted (see split_indexes()).
	 * "immediate" is rri with only the others.
	 */
	ResultRelInfo immediate;
	int			nsorted;
	SkEntrySort *sorts;			/* per sorted index */
} SkBulkTarget;

struct SkBulkInsert
{
	MemoryContext cxt;			/* where the writer and its slots live */
	SkBulkTarget table;			/* the table itself; unused if partitioned */
	TupleTableSlot *route_slot; /* partitioned: a row before routing */

	/* while writing: between sk_bulk_begin() and sk_bulk_end() */
	ResultRelInfo *rri;
	EState	   *estate;
	int			flags;
	bool		one_by_one;		/* every row of the statement */
	ModifyTableState *mtstate;	/* partitioned: for tuple routing */
	PartitionTupleRouting *proute;
	TransitionCaptureState *transition;
	List	   *parts;			/* SkBulkTarget of partitions, oldest first */
	SkBulkTarget *last_part;	/* the latest row's */
	int			nbuffered;		/* rows in all buffers */
	Size		buffered_bytes;
	MemoryContext sortcxt;		/* the sorts' memory, made when needed */
	uint64		written;
};

static void flush_rows(SkBulkInsert *bi, SkBulkTarget *current);
static void write_all_sorted(SkBulkInsert *bi);

/*
 * Whether the writer may write into rel: a table of the heap access method,
 * or a partitioned table whose partitions (at every level) are such tables
 * or foreign tables; never in a database with Citus, whose distributed
 * tables are heap tables on the coordinator that hold none of their rows
 * (Citus routes only what goes through its planner and executor; not
 * verified here, where Citus is not available).  Reads the catalogs; rel
 * is locked, its partitions need not be.
 */
bool
sk_bulk_writable(Relation rel)
{
	List	   *rels;
	ListCell   *lc;
	bool		writable = true;

	if (OidIsValid(get_extension_oid("citus", true)))
		return false;
	if (rel->rd_rel->relkind == RELKIND_RELATION)
		return rel->rd_rel->relam == HEAP_TABLE_AM_OID;
	if (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		return false;
	rels = find_all_inheritors(RelationGetRelid(rel), NoLock, NULL);
	foreach(lc, rels)
	{
		HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_class form;

		if (!HeapTupleIsValid(tup))
			continue;			/* dropped meanwhile */
		form = (Form_pg_class) GETSTRUCT(tup);
		if (form->relkind == RELKIND_RELATION && form->relam != HEAP_TABLE_AM_OID)
			writable = false;
		ReleaseSysCache(tup);
	}
	list_free(rels);
	return writable;
}

/*
 * Whether a pipeline's bulk path serves rel: an ordinary table of the heap
 * access method, not a partition, without triggers, and without row
 * security for user.  The writer serves more (triggers, partitions); for
 * those the pipelines take their SQL path, whose statements fire triggers
 * per batch as before, and which the planner and executor run for any
 * table access method.
 */
bool
sk_bulk_insert_possible(Relation rel, Oid user)
{
	return rel->rd_rel->relkind == RELKIND_RELATION &&
		sk_bulk_writable(rel) &&
		!rel->rd_rel->relispartition &&
		rel->trigdesc == NULL &&
		check_enable_rls(RelationGetRelid(rel), user, true) != RLS_ENABLED;
}

/* Set up a target for rel; its slots are made as rows need them. */
static void
init_target(SkBulkTarget *t, Relation rel)
{
	memset(t, 0, sizeof(SkBulkTarget));
	t->desc = CreateTupleDescCopy(RelationGetDescr(rel));
	t->ops = table_slot_callbacks(rel);
}

/*
 * A writer for rel (an ordinary or partitioned table), in
 * CurrentMemoryContext; no slot is made yet.  Throws unless
 * sk_bulk_writable(rel).
 */
SkBulkInsert *
sk_bulk_create(Relation rel)
{
	SkBulkInsert *bi = palloc0(sizeof(SkBulkInsert));

	if (!sk_bulk_writable(rel))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot write into table \"%s\" as COPY does",
						RelationGetRelationName(rel)),
				 errdetail("Only tables of the heap access method, and partitioned tables of such partitions, are written so."),
				 errhint("Insert through the executor (INSERT ... SELECT) instead.")));
	bi->cxt = CurrentMemoryContext;
	init_target(&bi->table, rel);
	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		bi->route_slot = MakeSingleTupleTableSlot(bi->table.desc,
												  &TTSOpsVirtual);
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

/* Set up the sort of a plain btree's entries, in the writer's memory */
static void
init_entry_sort(SkBulkInsert *bi, SkEntrySort *s, Relation index, int pos)
{
	TupleDesc	desc = RelationGetDescr(index);
	MemoryContext old = MemoryContextSwitchTo(bi->cxt);
	int			i;

	s->pos = pos;
	s->natts = desc->natts;
	s->nkeys = IndexRelationGetNumberOfKeyAttributes(index);
	s->ssup = palloc0(sizeof(SortSupportData) * s->nkeys);
	s->byval = palloc(sizeof(bool) * s->natts);
	s->typlen = palloc(sizeof(int16) * s->natts);
	s->entry_size = MAXALIGN(offsetof(SkEntry, values) + sizeof(Datum) * s->natts);
	s->entries = NULL;
	s->nentries = s->maxentries = 0;
	for (i = 0; i < s->natts; i++)
	{
		s->byval[i] = TupleDescAttr(desc, i)->attbyval;
		s->typlen[i] = TupleDescAttr(desc, i)->attlen;
	}
	/* the order the index keeps: its operator class, collation and options */
	for (i = 0; i < s->nkeys; i++)
	{
		SortSupport ssup = &s->ssup[i];
		int16		option = index->rd_indoption[i];

		ssup->ssup_cxt = bi->cxt;
		ssup->ssup_collation = index->rd_indcollation[i];
		ssup->ssup_nulls_first = (option & INDOPTION_NULLS_FIRST) != 0;
		ssup->ssup_attno = i + 1;
		ssup->abbreviate = false;
		PrepareSortSupportFromIndexRel(index,
									   (option & INDOPTION_DESC) != 0 ?
									   BTGreaterStrategyNumber : BTLessStrategyNumber,
									   ssup);
	}
	MemoryContextSwitchTo(old);
}

/*
 * Which of the target's indexes get their entries sorted: with
 * SK_BULK_SORT_INDEXES, for a buffered relation, the plain btrees (not
 * unique, no exclusion constraint), if checking a row calls nothing
 * volatile.  The others are written with each buffer, through a copy of
 * rri that lists only them.
 */
static void
split_indexes(SkBulkInsert *bi, SkBulkTarget *t)
{
	ResultRelInfo *rri = t->rri;
	int			n = rri->ri_NumIndices;
	int			i;

	t->immediate = *rri;
	t->nsorted = 0;
	if (n == 0 || !t->batched || (bi->flags & SK_BULK_SORT_INDEXES) == 0 ||
		row_checks_volatile(rri->ri_RelationDesc))
		return;
	t->immediate.ri_NumIndices = 0;
	t->immediate.ri_IndexRelationDescs = palloc(sizeof(Relation) * n);
	t->immediate.ri_IndexRelationInfo = palloc(sizeof(IndexInfo *) * n);
	t->sorts = palloc(sizeof(SkEntrySort) * n);
	for (i = 0; i < n; i++)
	{
		Relation	index = rri->ri_IndexRelationDescs[i];
		IndexInfo  *info = rri->ri_IndexRelationInfo[i];

		if (index->rd_rel->relam == BTREE_AM_OID && !info->ii_Unique &&
			info->ii_ExclusionOps == NULL)
			init_entry_sort(bi, &t->sorts[t->nsorted++], index, i);
		else
		{
			int			k = t->immediate.ri_NumIndices++;

			t->immediate.ri_IndexRelationDescs[k] = index;
			t->immediate.ri_IndexRelationInfo[k] = info;
		}
	}
	if (t->nsorted > 0 && bi->sortcxt == NULL)
		bi->sortcxt = AllocSetContextCreate(bi->cxt,
											"sales_kafka sorted index entries",
											ALLOCSET_DEFAULT_SIZES);
}

/*
 * Start writing rows into rri's relation, as a new statement.  batched
 * says whether its rows may wait in a buffer.
 */
static void
begin_target(SkBulkInsert *bi, SkBulkTarget *t, ResultRelInfo *rri,
			 bool batched)
{
	Relation	rel = rri->ri_RelationDesc;

	t->rri = rri;
	t->nused = 0;
	t->has_br_trig = rri->ri_TrigDesc != NULL &&
		rri->ri_TrigDesc->trig_insert_before_row;
	/* a partition of another table AM: as the executor's INSERT writes it */
	t->batched = batched && !t->has_br_trig && rri->ri_FdwRoutine == NULL &&
		rel->rd_rel->relam == HEAP_TABLE_AM_OID;
	t->bistate = rri->ri_FdwRoutine == NULL ? GetBulkInsertState() : NULL;
	/* a table made in this (sub)transaction has no free space to look up */
	t->ti_options = 0;
	if (RELKIND_HAS_STORAGE(rel->rd_rel->relkind) &&
		(rel->rd_createSubid != InvalidSubTransactionId ||
		 rel->rd_firstRelfilenodeSubid != InvalidSubTransactionId))
		t->ti_options |= TABLE_INSERT_SKIP_FSM;
	split_indexes(bi, t);
}

/* Stop writing into the target (its buffer written and its sorts done). */
static void
end_target(SkBulkTarget *t)
{
	Assert(t->nused == 0);
	if (t->bistate != NULL)
	{
		FreeBulkInsertState(t->bistate);
		table_finish_bulk_insert(t->rri->ri_RelationDesc, t->ti_options);
	}
	t->bistate = NULL;
	t->nsorted = 0;
	t->rri = NULL;
}

/* Drop a partition's target and its slots. */
static void
free_target(SkBulkTarget *t)
{
	int			i;

	for (i = 0; i < t->nslots; i++)
		ExecDropSingleTupleTableSlot(t->slots[i]);
	pfree(t);
}

/* The empty slot for the target's next row, made if needed */
static TupleTableSlot *
target_next_slot(SkBulkInsert *bi, SkBulkTarget *t)
{
	Assert(t->nused < SK_MULTI_INSERT_ROWS);
	if (t->nused == t->nslots)
	{
		MemoryContext old = MemoryContextSwitchTo(bi->cxt);

		t->slots[t->nslots++] = MakeSingleTupleTableSlot(t->desc, t->ops);
		MemoryContextSwitchTo(old);
	}
	return ExecClearTuple(t->slots[t->nused]);
}

/*
 * Start a statement writing through rri (its indexes open; its range
 * table entry in estate) in estate, with estate->es_output_cid as the
 * command id.  Fires the BEFORE STATEMENT triggers.  flags:
 * SK_BULK_SORT_INDEXES when the caller runs no volatile code between rows
 * (plain btree entries may then wait to be sorted, see above),
 * SK_BULK_ONE_BY_ONE when it does and that code could read the table (no
 * row waits in a buffer then, as in COPY with a volatile default).  Rows a
 * failed write left in the buffer are dropped: its (sub)transaction rolled
 * back what it wrote, and took the buffer pins with it.
 */
void
sk_bulk_begin(SkBulkInsert *bi, ResultRelInfo *rri, EState *estate, int flags)
{
	Relation	rel = rri->ri_RelationDesc;
	TriggerDesc *trig = rri->ri_TrigDesc;
	int			i;

	for (i = 0; i < bi->table.nused; i++)
		ExecClearTuple(bi->table.slots[i]);
	bi->table.nused = 0;
	bi->rri = rri;
	bi->estate = estate;
	bi->flags = flags;
	bi->parts = NIL;
	bi->last_part = NULL;
	bi->nbuffered = 0;
	bi->buffered_bytes = 0;
	/* the entries a failed statement left waiting */
	if (bi->sortcxt != NULL)
		MemoryContextDelete(bi->sortcxt);
	bi->sortcxt = NULL;
	bi->written = 0;

	AfterTriggerBeginQuery();
	bi->transition = MakeTransitionCaptureState(trig, RelationGetRelid(rel),
												CMD_INSERT);
	bi->one_by_one = (flags & SK_BULK_ONE_BY_ONE) != 0 ||
		(trig != NULL && trig->trig_insert_before_row);
	bi->mtstate = NULL;
	bi->proute = NULL;
	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
	{
		/* as copyfrom.c: a ModifyTable state for routing and foreign partitions */
		bi->mtstate = makeNode(ModifyTableState);
		bi->mtstate->ps.plan = NULL;
		bi->mtstate->ps.state = estate;
		bi->mtstate->operation = CMD_INSERT;
		bi->mtstate->mt_nrels = 1;
		bi->mtstate->resultRelInfo = rri;
		bi->mtstate->rootResultRelInfo = rri;
		bi->mtstate->mt_transition_capture = bi->transition;
		bi->proute = ExecSetupPartitionTupleRouting(estate, rel);
		/* transition tables want the row as the table has it: one at a time */
		if (trig != NULL && trig->trig_insert_new_table)
			bi->one_by_one = true;
	}
	else
		begin_target(bi, &bi->table, rri, !bi->one_by_one);
	ExecBSInsertTriggers(estate, rri);
}

/*
 * The empty slot for the next row, in the table's row type; the caller
 * fills it and calls sk_bulk_add().
 */
TupleTableSlot *
sk_bulk_next_slot(SkBulkInsert *bi)
{
	if (bi->proute != NULL)
		return ExecClearTuple(bi->route_slot);
	return target_next_slot(bi, &bi->table);
}

/* The target of a partition rows were routed to, set up if new */
static SkBulkTarget *
part_target(SkBulkInsert *bi, ResultRelInfo *rri)
{
	SkBulkTarget *t;
	MemoryContext old;
	ListCell   *lc;

	if (bi->last_part != NULL && bi->last_part->rri == rri)
		return bi->last_part;
	foreach(lc, bi->parts)
	{
		t = (SkBulkTarget *) lfirst(lc);
		if (t->rri == rri)
			return bi->last_part = t;
	}
	old = MemoryContextSwitchTo(bi->cxt);
	t = palloc(sizeof(SkBulkTarget));
	init_target(t, rri->ri_RelationDesc);
	begin_target(bi, t, rri, !bi->one_by_one);
	bi->parts = lappend(bi->parts, t);
	MemoryContextSwitchTo(old);
	return bi->last_part = t;
}

/*
 * Route a row of the partitioned table to its partition: the row, in the
 * partition's row type, in a slot of the partition's target.
 */
static TupleTableSlot *
route_row(SkBulkInsert *bi, TupleTableSlot *slot, SkBulkTarget **target)
{
	ResultRelInfo *rri = ExecFindPartition(bi->mtstate, bi->rri, bi->proute,
										   slot, bi->estate);
	SkBulkTarget *t = part_target(bi, rri);
	TupleConversionMap *map = rri->ri_RootToPartitionMap;
	TupleTableSlot *dest;

	dest = target_next_slot(bi, t);
	if (map != NULL)
		dest = execute_attr_map_slot(map->attrMap, slot, dest);
	else
		ExecCopySlot(dest, slot);
	if (!t->batched)
	{
		/* its own, before writing resets the per-tuple memory */
		ExecMaterializeSlot(dest);
		/* its triggers may look for the rows before it, and their entries */
		if (bi->nbuffered > 0)
			flush_rows(bi, t);
		if (bi->sortcxt != NULL)
			write_all_sorted(bi);
	}
	/*
	 * Transition tables get the row as the partitioned table has it (when
	 * they exist, every row is written as it comes: nothing was flushed).
	 */
	if (bi->transition != NULL)
		bi->transition->tcs_original_insert_tuple = t->has_br_trig ? NULL : slot;
	*target = t;
	return dest;
}

/* The size of a materialized row, for the buffer's limit in bytes */
static Size
row_size(TupleTableSlot *slot)
{
	if (TTS_IS_BUFFERTUPLE(slot) || TTS_IS_HEAPTUPLE(slot))
		return ((HeapTupleTableSlot *) slot)->tuple->t_len;
	return 0;					/* other table AMs: only rows are counted */
}

/*
 * Write one row now, with its index entries and AFTER ROW triggers.
 * Returns false if a foreign partition's wrapper skipped it.
 */
static bool
write_row(SkBulkInsert *bi, SkBulkTarget *t, TupleTableSlot *slot)
{
	ResultRelInfo *rri = t->rri;
	EState	   *estate = bi->estate;
	List	   *recheck = NIL;

	if (rri->ri_FdwRoutine != NULL)
	{
		slot = rri->ri_FdwRoutine->ExecForeignInsert(estate, rri, slot, NULL);
		if (slot == NULL)
			return false;
		/* AFTER ROW triggers may read tableoid */
		slot->tts_tableOid = RelationGetRelid(rri->ri_RelationDesc);
	}
	else
	{
		table_tuple_insert(rri->ri_RelationDesc, slot, estate->es_output_cid,
						   t->ti_options, t->bistate);
		if (rri->ri_NumIndices > 0)
			recheck = ExecInsertIndexTuples(rri, slot, estate, false, false,
											NULL, NIL);
	}
	ExecARInsertTriggers(estate, rri, slot, recheck, bi->transition);
	list_free(recheck);
	return true;
}

/*
 * Add the row stored in the slot sk_bulk_next_slot() gave: route it to its
 * partition, fire BEFORE ROW triggers (which may skip it), compute its
 * stored generated columns and check its constraints (an ERROR if it
 * breaks one); then buffer it, or write it now (see the file header).
 * The slot's values need live only until the call returns.  Call it in a
 * context that lasts the statement, as triggers run in it; resets the
 * per-tuple memory of the estate.
 */
void
sk_bulk_add(SkBulkInsert *bi, TupleTableSlot *slot)
{
	EState	   *estate = bi->estate;
	SkBulkTarget *t;
	ResultRelInfo *rri;
	Relation	rel;

	/* CHECK constraints, partition keys and generated columns may read it */
	slot->tts_tableOid = RelationGetRelid(bi->rri->ri_RelationDesc);
	if (bi->proute != NULL)
		slot = route_row(bi, slot, &t);
	else
	{
		t = &bi->table;
		Assert(slot == t->slots[t->nused]);
	}
	rri = t->rri;
	rel = rri->ri_RelationDesc;
	slot->tts_tableOid = RelationGetRelid(rel);

	if (t->has_br_trig && !ExecBRInsertTriggers(estate, rri, slot))
	{
		/* the trigger skipped the row */
		ExecClearTuple(slot);
		ResetPerTupleExprContext(estate);
		return;
	}
	if (rel->rd_att->constr != NULL && rel->rd_att->constr->has_generated_stored)
		ExecComputeStoredGenerated(rri, estate, slot, CMD_INSERT);
	if (rri->ri_FdwRoutine == NULL && rel->rd_att->constr != NULL)
		ExecConstraints(rri, slot, estate);
	/* a routed row's partition was checked by routing, unless a trigger ran */
	if (rel->rd_rel->relispartition && (bi->proute == NULL || t->has_br_trig))
		ExecPartitionCheck(rri, slot, estate, true);

	if (t->batched)
	{
		/* the values may live in memory the caller reuses */
		ExecMaterializeSlot(slot);
		t->nused++;
		bi->nbuffered++;
		bi->buffered_bytes += row_size(slot);
		bi->written++;
		ResetPerTupleExprContext(estate);
		if (bi->nbuffered >= SK_MULTI_INSERT_ROWS ||
			bi->buffered_bytes >= SK_MULTI_INSERT_BYTES)
			flush_rows(bi, t);
	}
	else
	{
		if (write_row(bi, t, slot))
			bi->written++;
		ExecClearTuple(slot);
		ResetPerTupleExprContext(estate);
	}
}

/* Put the sorted indexes' entries of a written row into their arrays */
static void
sort_entries(SkBulkInsert *bi, SkBulkTarget *t, TupleTableSlot *slot)
{
	ResultRelInfo *rri = t->rri;
	EState	   *estate = bi->estate;
	ExprContext *econtext = GetPerTupleExprContext(estate);
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	int			k;
	int			i;

	econtext->ecxt_scantuple = slot;
	for (k = 0; k < t->nsorted; k++)
	{
		SkEntrySort *s = &t->sorts[k];
		IndexInfo  *info = rri->ri_IndexRelationInfo[s->pos];
		MemoryContext old;
		SkEntry    *e;

		/* what ExecInsertIndexTuples() does, but into an array */
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
		old = MemoryContextSwitchTo(bi->sortcxt);
		if (s->nentries == s->maxentries)
		{
			s->maxentries = Max(s->maxentries * 2, SK_MULTI_INSERT_ROWS);
			s->entries = s->entries == NULL ?
				MemoryContextAllocHuge(bi->sortcxt, s->maxentries * s->entry_size) :
				repalloc_huge(s->entries, s->maxentries * s->entry_size);
		}
		e = (SkEntry *) (s->entries + s->nentries++ * s->entry_size);
		e->tid = slot->tts_tid;
		e->nulls = 0;
		for (i = 0; i < s->natts; i++)
		{
			if (isnull[i])
			{
				e->nulls |= (uint32) 1 << i;
				e->values[i] = (Datum) 0;
			}
			else
				e->values[i] = s->byval[i] ? values[i] :
					datumCopy(values[i], false, s->typlen[i]);
		}
		MemoryContextSwitchTo(old);
	}
}

/* qsort_arg() comparator of SkEntry: the index's order, then the heap's */
static int
compare_entries(const void *a, const void *b, void *arg)
{
	SkEntrySort *s = (SkEntrySort *) arg;
	const SkEntry *x = (const SkEntry *) a;
	const SkEntry *y = (const SkEntry *) b;
	int			k;

	for (k = 0; k < s->nkeys; k++)
	{
		int			c = ApplySortComparator(x->values[k], (x->nulls >> k) & 1,
											y->values[k], (y->nulls >> k) & 1,
											&s->ssup[k]);

		if (c != 0)
			return c;
	}
	return ItemPointerCompare((ItemPointer) &x->tid, (ItemPointer) &y->tid);
}

/*
 * Write the target's waiting btree entries in key order.  Rows arrive in
 * the order of their source: a topic's partitions interleave, so a
 * time-keyed index would get its keys out of order, each insert descending
 * to a different leaf and splitting pages in the middle.  Sorted, the
 * entries of a run of rows go to neighbouring leaves, and past the index's
 * last key they take btree's rightmost-page fast path, as rows COPY'd in
 * key order do.  The entries are sorted in an array with the index's own
 * comparators (PrepareSortSupportFromIndexRel()), not by tuplesort, which
 * would form each entry into an index tuple only for index_insert() to
 * take it apart and form it again; ties go in heap order, as btree keeps
 * them.  The array goes once the sorts' memory reaches half of
 * maintenance_work_mem (flush_rows()), so nothing spills to disk.
 */
static void
write_sorted(SkBulkInsert *bi, SkBulkTarget *t)
{
	ResultRelInfo *rri = t->rri;
	ExprContext *econtext = GetPerTupleExprContext(bi->estate);
	MemoryContext old = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
	bool		isnull[INDEX_MAX_KEYS];
	int			k;
	int			i;

	for (k = 0; k < t->nsorted; k++)
	{
		SkEntrySort *s = &t->sorts[k];
		Relation	index = rri->ri_IndexRelationDescs[s->pos];
		IndexInfo  *info = rri->ri_IndexRelationInfo[s->pos];
		Size		n;

		if (s->nentries == 0)
			continue;
		qsort_arg(s->entries, s->nentries, s->entry_size, compare_entries, s);
		for (n = 0; n < s->nentries; n++)
		{
			SkEntry    *e = (SkEntry *) (s->entries + n * s->entry_size);

			for (i = 0; i < s->natts; i++)
				isnull[i] = (e->nulls >> i) & 1;
			index_insert(index, e->values, isnull, &e->tid,
						 rri->ri_RelationDesc, UNIQUE_CHECK_NO, false, info);
			if ((n + 1) % SK_MULTI_INSERT_ROWS == 0)
			{
				CHECK_FOR_INTERRUPTS();
				ResetExprContext(econtext);
			}
		}
		ResetExprContext(econtext);
		pfree(s->entries);
		s->entries = NULL;
		s->nentries = s->maxentries = 0;
	}
	MemoryContextSwitchTo(old);
}

/* Write every target's waiting btree entries. */
static void
write_all_sorted(SkBulkInsert *bi)
{
	ListCell   *lc;

	if (bi->sortcxt == NULL)
		return;
	if (bi->proute == NULL)
		write_sorted(bi, &bi->table);
	foreach(lc, bi->parts)
		write_sorted(bi, (SkBulkTarget *) lfirst(lc));
	MemoryContextReset(bi->sortcxt);
}

/*
 * Write one target's buffered rows, their index entries (or put them into
 * the sorts) and their AFTER ROW triggers (queued, as COPY queues them).
 */
static void
flush_target(SkBulkInsert *bi, SkBulkTarget *t)
{
	ResultRelInfo *rri = t->rri;
	EState	   *estate = bi->estate;
	TriggerDesc *trig = rri->ri_TrigDesc;
	bool		after_row = trig != NULL &&
		(trig->trig_insert_after_row || trig->trig_insert_new_table);
	MemoryContext old;
	int			i;

	if (t->nused == 0)
		return;
	/* table_multi_insert() may leak: in the per-tuple memory, as COPY */
	old = MemoryContextSwitchTo(GetPerTupleMemoryContext(estate));
	table_multi_insert(rri->ri_RelationDesc, t->slots, t->nused,
					   estate->es_output_cid, t->ti_options, t->bistate);
	MemoryContextSwitchTo(old);
	for (i = 0; i < t->nused; i++)
	{
		List	   *recheck = NIL;

		if (t->immediate.ri_NumIndices > 0)
			recheck = ExecInsertIndexTuples(&t->immediate, t->slots[i], estate,
											false, false, NULL, NIL);
		if (t->nsorted > 0)
			sort_entries(bi, t, t->slots[i]);
		if (after_row)
			ExecARInsertTriggers(estate, rri, t->slots[i], recheck,
								 bi->transition);
		list_free(recheck);
		ExecClearTuple(t->slots[i]);
		ResetPerTupleExprContext(estate);
	}
	t->nused = 0;
}

/*
 * Write the buffered rows of every target.  Then keep at most
 * SK_MAX_PART_BUFFERS partitions' targets, the newest ones and current
 * (the latest row's); and write the sorted entries once their sorts hold
 * half of maintenance_work_mem, so that they seldom spill to disk.
 */
static void
flush_rows(SkBulkInsert *bi, SkBulkTarget *current)
{
	ListCell   *lc;

	if (bi->proute == NULL)
		flush_target(bi, &bi->table);
	foreach(lc, bi->parts)
		flush_target(bi, (SkBulkTarget *) lfirst(lc));
	bi->nbuffered = 0;
	bi->buffered_bytes = 0;

	while (list_length(bi->parts) > SK_MAX_PART_BUFFERS)
	{
		SkBulkTarget *t = (SkBulkTarget *) linitial(bi->parts);

		bi->parts = list_delete_first(bi->parts);
		if (t == current)
		{
			bi->parts = lappend(bi->parts, t);
			continue;
		}
		write_sorted(bi, t);
		end_target(t);
		if (bi->last_part == t)
			bi->last_part = NULL;
		free_target(t);
	}

	if (bi->sortcxt != NULL &&
		MemoryContextMemAllocated(bi->sortcxt, true) >=
		(Size) maintenance_work_mem * 1024 / 2)
		write_all_sorted(bi);
}

/*
 * Write what is buffered and end the statement: the AFTER STATEMENT
 * triggers, then every queued AFTER trigger fires.  Returns the number of
 * rows written (not those a BEFORE ROW trigger skipped).  The table's
 * slots stay for reuse; the estate's result relations stay open.
 */
uint64
sk_bulk_end(SkBulkInsert *bi)
{
	uint64		written;
	ListCell   *lc;

	flush_rows(bi, NULL);
	write_all_sorted(bi);
	if (bi->sortcxt != NULL)
		MemoryContextDelete(bi->sortcxt);
	bi->sortcxt = NULL;
	if (bi->proute == NULL)
		end_target(&bi->table);
	foreach(lc, bi->parts)
		end_target((SkBulkTarget *) lfirst(lc));

	ExecASInsertTriggers(bi->estate, bi->rri, bi->transition);
	AfterTriggerEndQuery(bi->estate);

	/* after the triggers, which find routed rows' partitions through it */
	if (bi->proute != NULL)
		ExecCleanupTupleRouting(bi->mtstate, bi->proute);
	foreach(lc, bi->parts)
		free_target((SkBulkTarget *) lfirst(lc));
	list_free(bi->parts);
	bi->parts = NIL;
	bi->last_part = NULL;
	bi->proute = NULL;
	bi->mtstate = NULL;
	bi->transition = NULL;
	bi->rri = NULL;
	bi->estate = NULL;
	written = bi->written;
	bi->written = 0;
	return written;
}

/* Drop the slots. */
void
sk_bulk_free(SkBulkInsert *bi)
{
	int			i;

	for (i = 0; i < bi->table.nslots; i++)
		ExecDropSingleTupleTableSlot(bi->table.slots[i]);
	bi->table.nslots = 0;
	bi->table.nused = 0;
	if (bi->route_slot != NULL)
		ExecDropSingleTupleTableSlot(bi->route_slot);
	bi->route_slot = NULL;
}
