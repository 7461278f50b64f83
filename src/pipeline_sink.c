/*-------------------------------------------------------------------------
 *
 * pipeline_sink.c
 *		Writing a pipeline's batch into its target table: the column
 *		mapping, the two write paths, bad rows to dead letters.
 *
 * Target columns are filled by name from the foreign table's columns, with
 * the same type (the target's typmod applies); other target columns get
 * their defaults.  The checks run when a pipeline is created and again for
 * every batch, so a changed table stops the pipeline with a clear reason.
 *
 * Two paths write a batch:
 *
 * - the bulk path, which COPY also takes: tuples built from the decoded
 *   values go to table_multi_insert() with their index entries and stored
 *   generated columns; for append pipelines into plain tables without
 *   triggers or row security.
 * - the SQL path for everything else (upsert, partitioned targets,
 *   triggers, foreign keys, row security): one INSERT ... SELECT per chunk
 *   of the batch over sales_kafka._pipeline_rows(), which returns the
 *   chunk, so the executor applies every rule of the table.  Upserts keep
 *   the last message per primary key; a tombstone (a message without
 *   payload) deletes its key.
 *
 * The SQL path's statement is prepared once and kept (SkSinkPlans, in the
 * worker's long-lived context): each batch builds its text again from the
 * target's columns, and only a different text (a column added, dropped,
 * renamed or retyped) prepares it again.  For all else that changes under
 * a running pipeline (defaults, triggers, constraints, indexes, row
 * security policies, the search_path) the plan cache plans the kept
 * statement again, as it does PL/pgSQL's.  Dead letters go in through one
 * kept catalog statement (SkCatalogStatement, see pipeline_catalog.c), as
 * the extension's owner.
 *
 * A batch is written in a subtransaction.  When writing fails, the error is
 * the rows' if the same statement without rows succeeds (a value, a
 * constraint, a row security policy, a row trigger): the batch is then
 * split in halves until the bad rows are alone; they go to
 * sales_kafka.dead_letter and the others are written.  An error that
 * repeats without rows (the table's, or the owner's rights) and one of the
 * system's state (a deadlock, a lock, a cancel, resources) are the
 * caller's.  A default that takes a sequence's next value is checked up
 * front: it would fail for every row alike.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/nodeModifyTable.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "sales_kafka.h"

/* A decoded message waiting to be written */
typedef struct SkSinkRow
{
	Datum	   *values;			/* by mapped column */
	bool	   *nulls;
	bool		tombstone;
	rd_kafka_message_t *msg;
} SkSinkRow;

/* A message that goes to sales_kafka.dead_letter */
typedef struct SkDeadLetter
{
	rd_kafka_message_t *msg;
	int			sqlstate;
	char	   *error;
} SkDeadLetter;

/*
 * The SQL path's statement and its kept plan, from one batch to the next.
 * The text lives in cxt; the plan, kept, in CacheMemoryContext, until cxt
 * is reset or deleted.
 */
struct SkSinkPlans
{
	MemoryContext cxt;
	char	   *sql;			/* NULL until the first batch on the SQL path */
	SPIPlanPtr	plan;
};

struct SkSink
{
	MemoryContext cxt;
	SkSinkPlans *plans;			/* NULL: only checking the target */
	SkMapping  *map;
	Relation	rel;
	char	   *pipeline;
	int64		pipeline_id;
	Oid			owner;
	bool		upsert;
	bool		bulk;

	/* mapped columns: the foreign table's attno and the target's */
	int			ncols;
	AttrNumber *source_att;
	AttrNumber *target_att;
	bool	   *wanted;			/* by foreign table attno - 1 */
	int			npk;
	int		   *pk;				/* mapped column of each primary key column */

	/* bulk path: defaults of the unmapped columns */
	int			ndefaults;
	AttrNumber *default_att;
	Expr	  **default_expr;

	SkBulkInsert *writer;		/* bulk path: its slots, made once */

	char	   *sql;			/* SQL path: the statement for the target now */

	SkSinkRow  *rows;
	int			nrows;
	int			maxrows;
	int			flushed;		/* rows before this one are written */
	List	   *dead;			/* SkDeadLetter */
	List	   *row_errors;		/* SQLSTATEs known to come from rows */
	int64		written;
};

/* the batch that sales_kafka._pipeline_rows() returns, while a write runs */
static SkSink *rows_sink = NULL;
static int	rows_lo;
static int	rows_hi;

/*
 * The owner must hold each privilege of modes on the relation (one at a
 * time: pg_class_aclcheck() is satisfied by any one bit of a mask).  "needs"
 * says what the pipeline needs, for the message.  Reads the catalog caches
 * only: takes no lock.
 */
static void
check_privileges(Oid relid, const char *relname, Oid owner, AclMode modes,
				 const char *needs, const char *pipeline)
{
	static const AclMode each[] = {ACL_INSERT, ACL_UPDATE, ACL_DELETE, ACL_SELECT};
	static const char *const names[] = {"INSERT", "UPDATE", "DELETE", "SELECT"};
	int			i;

	for (i = 0; i < lengthof(each); i++)
		if ((modes & each[i]) != 0 &&
			pg_class_aclcheck(relid, owner, each[i]) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for table %s", relname),
					 errdetail("Pipeline \"%s\" runs as role \"%s\", which needs %s on it and lacks %s.",
							   pipeline, GetUserNameFromId(owner, false), needs,
							   names[i])));
}

/* What a pipeline needs on its target, and the same as text */
#define SK_UPSERT_MODES (ACL_INSERT | ACL_UPDATE | ACL_DELETE | ACL_SELECT)
#define SK_UPSERT_NEEDS "INSERT, UPDATE, DELETE and SELECT"

/*
 * Check the owner's privileges on a pipeline's foreign table and target
 * before anything locks them: by OID, in the catalog caches, so that a role
 * without privileges on a table cannot make a pipeline queue behind (or
 * ahead of) another session's lock on it.  sk_sink_open() checks again
 * once it holds the locks.  Throws if either relation is gone.
 */
void
sk_sink_check_privileges(Oid source, Oid target, bool upsert, Oid owner,
						 const char *pipeline)
{
	char	   *source_name = get_rel_name(source);
	char	   *target_name = get_rel_name(target);

	if (source_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the foreign table of pipeline \"%s\" does not exist",
						pipeline)));
	if (target_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the target table of pipeline \"%s\" does not exist",
						pipeline)));
	check_privileges(source, source_name, owner, ACL_SELECT, "SELECT", pipeline);
	if (upsert)
		check_privileges(target, target_name, owner, SK_UPSERT_MODES,
						 SK_UPSERT_NEEDS, pipeline);
	else
		check_privileges(target, target_name, owner, ACL_INSERT, "INSERT",
						 pipeline);
}

/* The foreign table's column with this name, or 0 */
static AttrNumber
source_column(SkMapping *map, const char *name)
{
	int			i;

	for (i = 0; i < map->natts; i++)
		if (map->columns[i].kind != SK_COL_DROPPED &&
			strcmp(map->columns[i].name, name) == 0)
			return (AttrNumber) (i + 1);
	return 0;
}

static void
map_columns(SkSink *sink)
{
	SkMapping  *map = sink->map;
	TupleDesc	tupdesc = RelationGetDescr(sink->rel);
	const char *relname = RelationGetRelationName(sink->rel);
	int			i;

	sink->source_att = palloc(sizeof(AttrNumber) * tupdesc->natts);
	sink->target_att = palloc(sizeof(AttrNumber) * tupdesc->natts);
	sink->default_att = palloc(sizeof(AttrNumber) * tupdesc->natts);
	sink->default_expr = palloc(sizeof(Expr *) * tupdesc->natts);
	sink->wanted = palloc0(sizeof(bool) * map->natts);

	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		AttrNumber	src;
		SkColumn   *col;

		if (att->attisdropped || att->attgenerated)
			continue;
		src = source_column(map, NameStr(att->attname));
		if (src == 0)
		{
			Expr	   *def = (Expr *) build_column_default(sink->rel, i + 1);

			if (def == NULL && att->attnotnull)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" of table \"%s\" is NOT NULL without a default, and foreign table \"%s\" has no column of that name",
								NameStr(att->attname), relname, map->relname),
						 errhint("Add a column \"%s\" to the foreign table, or a default to the table.",
								 NameStr(att->attname))));
			if (def != NULL)
			{
				sink->default_att[sink->ndefaults] = (AttrNumber) (i + 1);
				sink->default_expr[sink->ndefaults++] = def;
			}
			continue;
		}
		col = &map->columns[src - 1];
		if (col->typid != att->atttypid)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" has type %s in foreign table \"%s\" but type %s in table \"%s\"",
							NameStr(att->attname), format_type_be(col->typid),
							map->relname, format_type_be(att->atttypid), relname),
					 errhint("A pipeline converts no types: declare the column with the same type in both tables.")));
		/*
		 * A topic is copied as it is, so the target's column must hold any
		 * topic name (see check_column_type() in decode.c).
		 */
		if (col->kind == SK_COL_TOPIC && att->atttypmod >= 0 &&
			att->atttypmod - VARHDRSZ < SK_TOPIC_MAX_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of table \"%s\" has type %s, but a Kafka topic needs type text, or varchar without a length or of at least %d characters",
							NameStr(att->attname), relname,
							format_type_with_typemod(att->atttypid, att->atttypmod),
							SK_TOPIC_MAX_LEN)));
		/* decode with the target's typmod, so numeric(12,2) rounds as in COPY */
		col->typmod = att->atttypmod;
		sink->wanted[src - 1] = true;
		sink->source_att[sink->ncols] = src;
		sink->target_att[sink->ncols++] = (AttrNumber) (i + 1);
	}
	if (sink->ncols == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("no column of table \"%s\" has the name of a column of foreign table \"%s\"",
						relname, map->relname),
				 errhint("Target columns are filled by name from the foreign table's columns.")));
}

/*
 * A default that takes a sequence's next value fails for every row alike
 * when the owner may not use the sequence: that stops the pipeline here,
 * with the reason, instead of sending every message to the dead letters.
 */
static bool
check_sequences(Node *node, void *context)
{
	SkSink	   *sink = (SkSink *) context;

	if (node == NULL)
		return false;
	if (IsA(node, FuncExpr) && ((FuncExpr *) node)->funcid == F_NEXTVAL &&
		IsA(linitial(((FuncExpr *) node)->args), Const))
	{
		Const	   *arg = linitial(((FuncExpr *) node)->args);
		Oid			seq = DatumGetObjectId(arg->constvalue);

		/* what nextval() asks */
		if (!arg->constisnull &&
			pg_class_aclcheck(seq, sink->owner, ACL_USAGE | ACL_UPDATE) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for sequence %s", get_rel_name(seq)),
					 errdetail("Pipeline \"%s\" runs as role \"%s\", which needs USAGE on it for a default of table \"%s\".",
							   sink->pipeline, GetUserNameFromId(sink->owner, false),
							   RelationGetRelationName(sink->rel))));
	}
	return expression_tree_walker(node, check_sequences, context);
}

static void
map_primary_key(SkSink *sink)
{
	const char *relname = RelationGetRelationName(sink->rel);
	Oid			indexoid = RelationGetPrimaryKeyIndex(sink->rel);
	Relation	index;
	int			i;

	if (!OidIsValid(indexoid))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("table \"%s\" has no primary key", relname),
				 errdetail("An upsert pipeline updates and deletes rows by their primary key.")));
	index = index_open(indexoid, AccessShareLock);
	sink->npk = index->rd_index->indnkeyatts;
	sink->pk = palloc(sizeof(int) * sink->npk);
	for (i = 0; i < sink->npk; i++)
	{
		AttrNumber	attno = index->rd_index->indkey.values[i];
		int			c;

		for (c = 0; c < sink->ncols; c++)
			if (sink->target_att[c] == attno)
				break;
		if (c == sink->ncols)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("primary key column \"%s\" of table \"%s\" has no column of that name in foreign table \"%s\"",
							get_attname(RelationGetRelid(sink->rel), attno, false),
							relname, sink->map->relname)));
		sink->pk[i] = c;
	}
	index_close(index, AccessShareLock);
}

static const char *
target_column(SkSink *sink, int c)
{
	return quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(sink->rel),
												  sink->target_att[c] - 1)->attname));
}

/* The SQL path's statement; see the file header. */
static char *
build_sql(SkSink *sink)
{
	TupleDesc	tupdesc = RelationGetDescr(sink->rel);
	char	   *target = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(sink->rel)),
													RelationGetRelationName(sink->rel));
	StringInfoData rows;
	StringInfoData cols;
	StringInfoData sql;
	int			c;
	int			k;

	initStringInfo(&rows);
	initStringInfo(&cols);
	appendStringInfoString(&rows,
						   "sales_kafka._pipeline_rows() AS b(_sk_ord integer, _sk_tombstone boolean");
	for (c = 0; c < sink->ncols; c++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, sink->target_att[c] - 1);

		appendStringInfo(&rows, ", %s %s", target_column(sink, c),
						 format_type_extended(att->atttypid, att->atttypmod,
											  FORMAT_TYPE_TYPEMOD_GIVEN |
											  FORMAT_TYPE_FORCE_QUALIFY));
		appendStringInfo(&cols, "%s%s", c > 0 ? ", " : "", target_column(sink, c));
	}
	appendStringInfoChar(&rows, ')');

	initStringInfo(&sql);
	if (!sink->upsert)
	{
		appendStringInfo(&sql, "INSERT INTO %s (%s) SELECT %s FROM %s",
						 target, cols.data, cols.data, rows.data);
		return sql.data;
	}

	/* one row per key, the last message's; tombstones delete */
	appendStringInfoString(&sql, "WITH b AS (SELECT DISTINCT ON (");
	for (k = 0; k < sink->npk; k++)
		appendStringInfo(&sql, "%s%s", k > 0 ? ", " : "",
						 target_column(sink, sink->pk[k]));
	appendStringInfo(&sql, ") * FROM %s ORDER BY ", rows.data);
	for (k = 0; k < sink->npk; k++)
		appendStringInfo(&sql, "%s, ", target_column(sink, sink->pk[k]));
	appendStringInfo(&sql, "_sk_ord DESC), d AS (DELETE FROM %s t USING b WHERE b._sk_tombstone",
					 target);
	for (k = 0; k < sink->npk; k++)
		appendStringInfo(&sql, " AND t.%s = b.%s",
						 target_column(sink, sink->pk[k]),
						 target_column(sink, sink->pk[k]));
	appendStringInfo(&sql, ") INSERT INTO %s AS t (%s) SELECT %s FROM b WHERE NOT b._sk_tombstone ON CONFLICT (",
					 target, cols.data, cols.data);
	for (k = 0; k < sink->npk; k++)
		appendStringInfo(&sql, "%s%s", k > 0 ? ", " : "",
						 target_column(sink, sink->pk[k]));
	appendStringInfoString(&sql, ") DO ");
	if (sink->ncols == sink->npk)
		appendStringInfoString(&sql, "NOTHING");
	else
	{
		bool		first = true;

		appendStringInfoString(&sql, "UPDATE SET ");
		for (c = 0; c < sink->ncols; c++)
		{
			for (k = 0; k < sink->npk; k++)
				if (sink->pk[k] == c)
					break;
			if (k < sink->npk)
				continue;
			appendStringInfo(&sql, "%s%s = EXCLUDED.%s", first ? "" : ", ",
							 target_column(sink, c), target_column(sink, c));
			first = false;
		}
	}
	return sql.data;
}

/*
 * Open a pipeline's target: lock it, check the owner's privileges (again:
 * the caller checked them with sk_sink_check_privileges() before it locked
 * anything) and the column mapping.  The sink lives in
 * CurrentMemoryContext; the map's typmods are set to the target's.
 */
static SkSink *
open_sink(SkMapping *map, Oid target, bool upsert, Oid owner,
		  const char *pipeline, int64 pipeline_id)
{
	SkSink	   *sink = palloc0(sizeof(SkSink));
	Relation	rel;
	Relation	source;
	char		relkind;
	int			i;

	sink->cxt = CurrentMemoryContext;
	sink->map = map;
	sink->pipeline = pstrdup(pipeline);
	sink->pipeline_id = pipeline_id;
	sink->owner = owner;
	sink->upsert = upsert;

	rel = try_relation_open(target, RowExclusiveLock);
	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the target table of pipeline \"%s\" does not exist",
						pipeline)));
	sink->rel = rel;
	relkind = rel->rd_rel->relkind;
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
				 errdetail("A pipeline writes into an ordinary or partitioned table.")));

	source = try_relation_open(map->relid, AccessShareLock);
	if (source == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the foreign table of pipeline \"%s\" does not exist",
						pipeline)));
	check_privileges(map->relid, RelationGetRelationName(source), owner,
					 ACL_SELECT, "SELECT", pipeline);
	relation_close(source, NoLock);
	if (upsert)
		check_privileges(target, RelationGetRelationName(rel), owner,
						 SK_UPSERT_MODES, SK_UPSERT_NEEDS, pipeline);
	else
		check_privileges(target, RelationGetRelationName(rel), owner,
						 ACL_INSERT, "INSERT", pipeline);

	map_columns(sink);
	for (i = 0; i < sink->ndefaults; i++)
		(void) check_sequences((Node *) sink->default_expr[i], sink);
	if (upsert)
		map_primary_key(sink);

	sink->bulk = !upsert && sk_bulk_insert_possible(rel, owner);
	if (sink->bulk)
		sink->writer = sk_bulk_create(rel);
	else
		sink->sql = build_sql(sink);
	return sink;
}

/*
 * Check that a pipeline could write into its target (as it is created or
 * started): as sk_sink_open() does, without a batch.  Locks the target in
 * RowExclusiveLock until the transaction ends.
 */
void
sk_sink_check(SkMapping *map, Oid target, bool upsert, Oid owner,
			  const char *pipeline)
{
	sk_sink_close(open_sink(map, target, upsert, owner, pipeline, 0));
}

/* Forget the kept statement: free its plan and its text. */
static void
forget_plan(SkSinkPlans *plans)
{
	if (plans->plan != NULL)
		SPI_freeplan(plans->plan);
	if (plans->sql != NULL)
		pfree(plans->sql);
	plans->plan = NULL;
	plans->sql = NULL;
}

static void
forget_plan_callback(void *arg)
{
	forget_plan((SkSinkPlans *) arg);
}

/*
 * The statements a pipeline's sink keeps from one batch to the next, in
 * CurrentMemoryContext: a worker's context that lives as long as the
 * worker.  Resetting or deleting that context frees them.
 */
SkSinkPlans *
sk_sink_plans_create(void)
{
	SkSinkPlans *plans = palloc0(sizeof(SkSinkPlans));
	MemoryContextCallback *cb = palloc0(sizeof(MemoryContextCallback));

	plans->cxt = CurrentMemoryContext;
	cb->func = forget_plan_callback;
	cb->arg = plans;
	MemoryContextRegisterResetCallback(plans->cxt, cb);
	return plans;
}

/*
 * Open a pipeline's target for a batch, with the statements kept in plans:
 * see open_sink().  Needs the transaction of the batch, and the owner's
 * user ID in effect.
 */
SkSink *
sk_sink_open(SkSinkPlans *plans, SkMapping *map, const SkPipeline *p)
{
	SkSink	   *sink = open_sink(map, p->target, p->upsert, p->owner, p->name,
								 p->id);

	sink->plans = plans;
	return sink;
}

/* The foreign table's columns a batch needs decoded */
bool *
sk_sink_wanted(SkSink *sink)
{
	return sink->wanted;
}

/*
 * Add a decoded message (values and nulls by foreign table column) to the
 * batch.  The message must live until the batch is written.
 */
void
sk_sink_add(SkSink *sink, rd_kafka_message_t *msg, Datum *values, bool *nulls)
{
	SkSinkRow  *row;
	int			c;

	if (sink->nrows == sink->maxrows)
	{
		sink->maxrows = Max(64, sink->maxrows * 2);
		sink->rows = sink->rows == NULL ?
			palloc(sizeof(SkSinkRow) * sink->maxrows) :
			repalloc(sink->rows, sizeof(SkSinkRow) * sink->maxrows);
	}
	row = &sink->rows[sink->nrows];
	row->values = palloc(sizeof(Datum) * sink->ncols);
	row->nulls = palloc(sizeof(bool) * sink->ncols);
	row->tombstone = sink->upsert && msg->payload == NULL;
	row->msg = msg;
	for (c = 0; c < sink->ncols; c++)
	{
		row->values[c] = values[sink->source_att[c] - 1];
		row->nulls[c] = nulls[sink->source_att[c] - 1];
	}

	/* a tombstone must name the row it deletes */
	if (row->tombstone)
		for (c = 0; c < sink->npk; c++)
			if (row->nulls[sink->pk[c]])
			{
				sk_sink_add_dead(sink, msg, ERRCODE_NOT_NULL_VIOLATION,
								 psprintf("tombstone has no value for primary key column %s",
										  target_column(sink, sink->pk[c])),
								 NULL);
				return;
			}
	sink->nrows++;
}

/* Send a message to the dead letters of this batch, with why (detail may be NULL). */
void
sk_sink_add_dead(SkSink *sink, rd_kafka_message_t *msg, int sqlstate,
				 const char *message, const char *detail)
{
	MemoryContext old = MemoryContextSwitchTo(sink->cxt);
	SkDeadLetter *dl = palloc(sizeof(SkDeadLetter));

	dl->msg = msg;
	dl->sqlstate = sqlstate;
	dl->error = detail ? psprintf("%s: %s", message, detail) : pstrdup(message);
	sink->dead = lappend(sink->dead, dl);
	MemoryContextSwitchTo(old);
}

/* The bulk path: rows lo .. hi-1 through table_multi_insert(). */
static void
write_bulk(SkSink *sink, int lo, int hi)
{
	Relation	rel = sink->rel;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	EState	   *estate = CreateExecutorState();
	ExprContext *econtext = GetPerTupleExprContext(estate);
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	ExprState **defaults;
	int			r;
	int			i;

	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(estate, list_make1(rte));
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	estate->es_output_cid = GetCurrentCommandId(true);

	defaults = palloc(sizeof(ExprState *) * Max(sink->ndefaults, 1));
	for (i = 0; i < sink->ndefaults; i++)
		defaults[i] = ExecPrepareExpr(sink->default_expr[i], estate);

	/* volatile defaults may run between rows; and 1,000 rows sort for little */
	sk_bulk_begin(sink->writer, rri, estate, 0);
	for (r = lo; r < hi; r++)
	{
		TupleTableSlot *slot = sk_bulk_next_slot(sink->writer);
		SkSinkRow  *row = &sink->rows[r];

		memset(slot->tts_isnull, true, sizeof(bool) * tupdesc->natts);
		for (i = 0; i < sink->ncols; i++)
		{
			slot->tts_values[sink->target_att[i] - 1] = row->values[i];
			slot->tts_isnull[sink->target_att[i] - 1] = row->nulls[i];
		}
		for (i = 0; i < sink->ndefaults; i++)
		{
			AttrNumber	att = sink->default_att[i] - 1;

			/* defaults live as long as the batch, not the tuple */
			slot->tts_values[att] =
				datumCopy(ExecEvalExpr(defaults[i], econtext,
									   &slot->tts_isnull[att]),
						  TupleDescAttr(tupdesc, att)->attbyval,
						  TupleDescAttr(tupdesc, att)->attlen);
		}
		ResetExprContext(econtext);
		ExecStoreVirtualTuple(slot);
		sk_bulk_add(sink->writer, slot);
	}
	sk_bulk_end(sink->writer);

	ExecCloseIndices(rri);
	FreeExecutorState(estate);
}

/*
 * The kept plan of sink->sql: the one kept already if the statement is the
 * same, else a new one, prepared as the owner and kept in place of the old
 * one.  Needs SPI_connect().
 */
static SPIPlanPtr
sql_plan(SkSink *sink)
{
	SkSinkPlans *plans = sink->plans;
	SPIPlanPtr	plan;
	char	   *sql;

	Assert(plans != NULL);
	if (plans->sql != NULL && strcmp(plans->sql, sink->sql) == 0)
		return plans->plan;
	forget_plan(plans);
	plan = SPI_prepare(sink->sql, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "could not prepare the pipeline statement: %s",
			 SPI_result_code_string(SPI_result));
	/* nothing that can throw once the plan is kept */
	sql = MemoryContextStrdup(plans->cxt, sink->sql);
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not keep the pipeline statement");
	plans->plan = plan;
	plans->sql = sql;
	return plan;
}

/* The SQL path: rows lo .. hi-1 through sink->sql's kept plan. */
static void
write_sql(SkSink *sink, int lo, int hi)
{
	int			ret;

	rows_sink = sink;
	rows_lo = lo;
	rows_hi = hi;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute_plan(sql_plan(sink), NULL, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "pipeline statement failed: %s", SPI_result_code_string(ret));
	SPI_finish();
	rows_sink = NULL;
}

/*
 * Errors of the system's state, never of a row: a deadlock or a
 * serialization failure, resources, a lock not available, a cancel or a
 * shutdown, the operating system, an internal error, a lost connection.
 * They fail the batch; the worker starts again.
 */
static bool
is_transient_error(int sqlstate)
{
	switch (ERRCODE_TO_CATEGORY(sqlstate))
	{
		case ERRCODE_TRANSACTION_ROLLBACK:
		case ERRCODE_INSUFFICIENT_RESOURCES:
		case ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE:
		case ERRCODE_OPERATOR_INTERVENTION:
		case ERRCODE_SYSTEM_ERROR:
		case ERRCODE_INTERNAL_ERROR:
		case ERRCODE_CONNECTION_EXCEPTION:
			return true;
		default:
			return false;
	}
}

/* write_rows()'s arguments, for sk_try_subtransaction() */
typedef struct WriteWork
{
	SkSink	   *sink;
	int			lo;
	int			hi;
} WriteWork;

/* Write rows lo .. hi-1 by the sink's path. */
static void
write_rows(void *arg)
{
	WriteWork  *work = (WriteWork *) arg;

	if (work->sink->bulk)
		write_bulk(work->sink, work->lo, work->hi);
	else
		write_sql(work->sink, work->lo, work->hi);
}

/*
 * Did the rows cause edata (an error of writing some rows, not transient)?
 * The same statement without rows tells: if it succeeds, they did (a
 * value, a constraint, a row security policy, a row trigger); if it fails
 * too, the table or the owner's rights did, and that error is thrown.
 * Once an SQLSTATE is known to come from rows, the batch does not ask
 * again.
 */
static void
check_rows_caused(SkSink *sink, ErrorData *edata)
{
	WriteWork	work = {sink, 0, 0};
	ErrorData  *again;
	MemoryContext old;

	if (list_member_int(sink->row_errors, edata->sqlerrcode))
		return;
	again = sk_try_subtransaction(write_rows, &work);
	rows_sink = NULL;
	if (again != NULL)
	{
		FreeErrorData(edata);
		ReThrowError(again);
	}
	old = MemoryContextSwitchTo(sink->cxt);
	sink->row_errors = lappend_int(sink->row_errors, edata->sqlerrcode);
	MemoryContextSwitchTo(old);
}

/*
 * Write rows lo .. hi-1 in a subtransaction.  When rows cause an error
 * (see check_rows_caused()), halve the range until the bad rows are alone
 * and send them to the dead letters; any other error is the caller's.
 */
static void
write_range(SkSink *sink, int lo, int hi)
{
	WriteWork	work = {sink, lo, hi};
	ErrorData  *edata;
	int			mid;

	if (lo >= hi)
		return;

	edata = sk_try_subtransaction(write_rows, &work);
	rows_sink = NULL;
	if (edata == NULL)
	{
		sink->written += hi - lo;
		return;
	}
	if (is_transient_error(edata->sqlerrcode))
		ReThrowError(edata);
	check_rows_caused(sink, edata);
	if (hi - lo == 1)
	{
		sk_sink_add_dead(sink, sink->rows[lo].msg, edata->sqlerrcode,
						 edata->message, edata->detail);
		return;
	}
	FreeErrorData(edata);
	mid = lo + (hi - lo) / 2;
	write_range(sink, lo, mid);
	write_range(sink, mid, hi);
}

static SkCatalogStatement insert_dead_letter = {
	"INSERT INTO sales_kafka.dead_letter"
	" (pipeline, topic, partition, \"offset\", key, headers, payload, error,"
	" sqlstate, pipeline_id, owner)"
	" VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11::regrole)",
	11, {TEXTOID, TEXTOID, INT4OID, INT8OID, BYTEAOID, TEXTOID, BYTEAOID,
	TEXTOID, TEXTOID, INT8OID, OIDOID}, false, SPI_OK_INSERT
};

/*
 * Insert the batch's dead letters, as the extension's owner, with the
 * pipeline's id, name and owner (whose roles row security lets read them).
 */
static void
write_dead_letters(SkSink *sink)
{
	SkCatalogScope scope;
	Datum		values[11];
	char		nulls[11];
	ListCell   *lc;

	if (sink->dead == NIL)
		return;
	sk_catalog_begin(&scope);
	values[0] = CStringGetTextDatum(sink->pipeline);
	values[1] = CStringGetTextDatum(sink->map->topic);
	values[9] = Int64GetDatum(sink->pipeline_id);
	values[10] = ObjectIdGetDatum(sink->owner);
	foreach(lc, sink->dead)
	{
		SkDeadLetter *dl = lfirst(lc);
		rd_kafka_message_t *msg = dl->msg;
		rd_kafka_headers_t *headers;

		memset(nulls, ' ', sizeof(nulls));
		values[2] = Int32GetDatum(msg->partition);
		values[3] = Int64GetDatum(msg->offset);
		if (msg->key != NULL)
			values[4] = PointerGetDatum(sk_bytea(msg->key, msg->key_len));
		else
			nulls[4] = 'n';
		if (rd_kafka_message_headers(msg, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR)
			values[5] = CStringGetTextDatum(sk_headers_json(headers));
		else
			nulls[5] = 'n';
		if (msg->payload != NULL)
			values[6] = PointerGetDatum(sk_bytea(msg->payload, msg->len));
		else
			nulls[6] = 'n';
		values[7] = CStringGetTextDatum(dl->error);
		values[8] = CStringGetTextDatum(unpack_sql_state(dl->sqlstate));
		(void) sk_catalog_run(&insert_dead_letter, values, nulls);
	}
	sk_catalog_end(&scope);
}

/*
 * Write the rows added since the last call.  Writing a batch in chunks as
 * it is decoded keeps the values in the CPU's caches.
 */
void
sk_sink_write(SkSink *sink)
{
	write_range(sink, sink->flushed, sink->nrows);
	sink->flushed = sink->nrows;
}

/*
 * End the batch: write the rest, then its bad messages into the dead
 * letters.  Returns how many rows were written and messages dead-lettered.
 */
void
sk_sink_finish(SkSink *sink, int64 *rows, int64 *dead)
{
	sk_sink_write(sink);
	write_dead_letters(sink);
	*rows = sink->written;
	*dead = list_length(sink->dead);
}

void
sk_sink_close(SkSink *sink)
{
	if (sink->writer != NULL)
		sk_bulk_free(sink->writer);
	rows_sink = NULL;
	relation_close(sink->rel, NoLock);
}

/*
 * The column definition list of a call to _pipeline_rows() must be the
 * batch's own: a user's trigger could otherwise read values as another type.
 */
static void
check_rows_desc(SkSink *sink, TupleDesc desc)
{
	TupleDesc	target = RelationGetDescr(sink->rel);
	int			i;

	if (desc->natts != sink->ncols + 2 ||
		TupleDescAttr(desc, 0)->atttypid != INT4OID ||
		TupleDescAttr(desc, 1)->atttypid != BOOLOID)
		goto mismatch;
	for (i = 0; i < sink->ncols; i++)
	{
		Form_pg_attribute want = TupleDescAttr(target, sink->target_att[i] - 1);
		Form_pg_attribute have = TupleDescAttr(desc, i + 2);

		if (want->atttypid != have->atttypid || want->atttypmod != have->atttypmod)
			goto mismatch;
	}
	return;

mismatch:
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("the column definition list of sales_kafka._pipeline_rows() does not match the pipeline's batch")));
}

/*
 * sales_kafka._pipeline_rows(): the rows a pipeline worker is writing, as
 * (_sk_ord, _sk_tombstone, mapped columns...).  Only the SQL path's
 * statement calls it.
 */
PG_FUNCTION_INFO_V1(sales_kafka_pipeline_rows);
Datum
sales_kafka_pipeline_rows(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SkSink	   *sink = rows_sink;
	Datum	   *values;
	bool	   *nulls;
	int			r;

	if (sink == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("sales_kafka._pipeline_rows() can only be called by a pipeline worker")));
	SetSingleFuncCall(fcinfo, SRF_SINGLE_USE_EXPECTED);
	check_rows_desc(sink, rsinfo->setDesc);

	values = palloc(sizeof(Datum) * (sink->ncols + 2));
	nulls = palloc0(sizeof(bool) * (sink->ncols + 2));
	for (r = rows_lo; r < rows_hi; r++)
	{
		SkSinkRow  *row = &sink->rows[r];

		values[0] = Int32GetDatum(r);
		values[1] = BoolGetDatum(row->tombstone);
		memcpy(values + 2, row->values, sizeof(Datum) * sink->ncols);
		memcpy(nulls + 2, row->nulls, sizeof(bool) * sink->ncols);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
