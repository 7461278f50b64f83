/*-------------------------------------------------------------------------
 *
 * load.c
 *		sales_kafka.load(source regclass, target regclass): the rows a
 *		Kafka foreign table reads now, written into a table as COPY
 *		writes them (bulk_insert.c).
 *
 * INSERT INTO target SELECT ... FROM source runs as the executor plans it,
 * a row at a time.  load() is the explicit bulk call: it runs
 * "SELECT <columns> FROM ONLY source" through the executor (so the scan,
 * its watermarks, strict mode and error rows are the foreign table's
 * own), and hands every row to the pipelines' bulk writer, in the
 * caller's transaction, as one statement.
 *
 * Columns are matched by name, as a pipeline matches them: each target
 * column takes the source column of its name, converted as INSERT
 * converts a value (assignment cast, the target's typmod); other columns
 * get their defaults; stored generated columns are computed.  The
 * mapping is checked before anything is read.
 *
 * Rights: the caller's.  SELECT on the source and INSERT on the target
 * (table or mapped columns) are checked before the tables are locked and
 * again, column by column, before the scan starts; nothing contacts Kafka
 * before.  Row security is not applied: a target with row security for
 * the caller is refused, as COPY FROM refuses it.  Everything else of an
 * INSERT applies (bulk_insert.c).
 *
 * The bulk writer serves tables of the heap access method only (and
 * partitioned tables of such partitions; sk_bulk_writable()): a table of
 * another access method may keep its rows where only the planner and
 * executor reach them, so load() writes into it through the executor, as
 * "INSERT INTO target (columns) SELECT columns FROM ONLY source", with the
 * same mapping, checks and result.
 *
 * This file must never write a row itself: only through the bulk writer
 * or the executor.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_node.h"
#include "rewrite/rewriteHandler.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

#include "sales_kafka.h"

PG_FUNCTION_INFO_V1(sales_kafka_load);

/* How the source's rows become the target's, and where they go */
typedef struct LoadState
{
	DestReceiver pub;			/* first: the executor's receiver */
	MemoryContext cxt;			/* the call's; triggers run in it */
	EState	   *estate;			/* the writer's */
	SkBulkInsert *writer;
	int			natts;			/* of the target */

	/* query column i goes into target column target_att[i] */
	int			ncols;
	AttrNumber *target_att;
	ExprState **convert;		/* NULL: the value as it is */

	/* target columns that get their default */
	int			ndefaults;
	AttrNumber *default_att;
	ExprState **defaults;
} LoadState;

/*
 * The caller must hold privilege mode on the relation or on one of its
 * columns at least; the columns are checked once the mapping is known.
 * Reads the catalog caches only: takes no lock.
 */
static void
check_some_privilege(Oid relid, AclMode mode)
{
	if (pg_class_aclcheck(relid, GetUserId(), mode) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(relid, GetUserId(), mode,
								  ACLMASK_ANY) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV,
					   get_relkind_objtype(get_rel_relkind(relid)),
					   get_rel_name(relid));
}

/* The source's column of this name, or 0 */
static AttrNumber
source_column(TupleDesc desc, const char *name)
{
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	return 0;
}

/*
 * Match the target's columns with the source's by name, in ls (query
 * columns, conversions, defaults), and the range table entries with the
 * columns each is read or written through.  Returns the query's column
 * list, quoted.  Throws if a column cannot be filled.
 */
static char *
map_columns(LoadState *ls, Relation source, Relation target,
			RangeTblEntry *src_rte, RangeTblEntry *tgt_rte, bool *volatile_code)
{
	TupleDesc	sdesc = RelationGetDescr(source);
	TupleDesc	tdesc = RelationGetDescr(target);
	ParseState *pstate = make_parsestate(NULL);
	StringInfoData cols;
	int			i;

	initStringInfo(&cols);
	ls->natts = tdesc->natts;
	ls->target_att = palloc(sizeof(AttrNumber) * tdesc->natts);
	ls->convert = palloc(sizeof(ExprState *) * tdesc->natts);
	ls->default_att = palloc(sizeof(AttrNumber) * tdesc->natts);
	ls->defaults = palloc(sizeof(ExprState *) * tdesc->natts);
	*volatile_code = false;

	for (i = 0; i < tdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tdesc, i);
		const char *name = NameStr(att->attname);
		AttrNumber	src;
		Form_pg_attribute satt;
		Var		   *var;
		Node	   *expr;

		if (att->attisdropped || att->attgenerated)
			continue;
		src = source_column(sdesc, name);
		if (src == 0)
		{
			Expr	   *def = (Expr *) build_column_default(target, att->attnum);

			if (def == NULL && att->attnotnull)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" of table \"%s\" is NOT NULL without a default, and foreign table \"%s\" has no column of that name",
								name, RelationGetRelationName(target),
								RelationGetRelationName(source)),
						 errhint("Add a column \"%s\" to the foreign table, or a default to the table.",
								 name)));
			if (def != NULL)
			{
				*volatile_code |= contain_volatile_functions_not_nextval((Node *) def);
				ls->default_att[ls->ndefaults] = att->attnum;
				ls->defaults[ls->ndefaults++] = ExecPrepareExpr(def, ls->estate);
			}
			continue;
		}

		/* the value as INSERT would assign it: query column ncols + 1 */
		satt = TupleDescAttr(sdesc, src - 1);
		var = makeVar(1, (AttrNumber) (ls->ncols + 1), satt->atttypid,
					  satt->atttypmod, satt->attcollation, 0);
		expr = coerce_to_target_type(pstate, (Node *) var, satt->atttypid,
									 att->atttypid, att->atttypmod,
									 COERCION_ASSIGNMENT,
									 COERCE_IMPLICIT_CAST, -1);
		if (expr == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" has type %s in foreign table \"%s\" but type %s in table \"%s\"",
							name, format_type_be(satt->atttypid),
							RelationGetRelationName(source),
							format_type_be(att->atttypid),
							RelationGetRelationName(target)),
					 errdetail("No assignment cast converts type %s to type %s.",
							   format_type_be(satt->atttypid),
							   format_type_be(att->atttypid)),
					 errhint("Declare the column with a type that converts, or use INSERT ... SELECT with an explicit cast.")));
		ls->target_att[ls->ncols] = att->attnum;
		if (expr == (Node *) var ||
			(IsA(expr, RelabelType) && ((RelabelType *) expr)->arg == (Expr *) var))
			ls->convert[ls->ncols] = NULL;
		else
		{
			assign_expr_collations(pstate, expr);
			*volatile_code |= contain_volatile_functions_not_nextval(expr);
			ls->convert[ls->ncols] = ExecPrepareExpr((Expr *) expr, ls->estate);
		}
		ls->ncols++;
		src_rte->selectedCols = bms_add_member(src_rte->selectedCols,
											   src - FirstLowInvalidHeapAttributeNumber);
		tgt_rte->insertedCols = bms_add_member(tgt_rte->insertedCols,
											   att->attnum - FirstLowInvalidHeapAttributeNumber);
		appendStringInfo(&cols, "%s%s", cols.len > 0 ? ", " : "",
						 quote_identifier(NameStr(satt->attname)));
	}
	if (ls->ncols == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("no column of table \"%s\" has the name of a column of foreign table \"%s\"",
						RelationGetRelationName(target),
						RelationGetRelationName(source)),
				 errhint("Target columns are filled by name from the foreign table's columns.")));
	free_parsestate(pstate);
	return cols.data;
}

/* A row of the query: the target's row, to the writer */
static bool
load_receive(TupleTableSlot *in, DestReceiver *self)
{
	LoadState  *ls = (LoadState *) self;
	ExprContext *econtext = GetPerTupleExprContext(ls->estate);
	TupleTableSlot *out = sk_bulk_next_slot(ls->writer);
	MemoryContext old;
	int			i;

	slot_getallattrs(in);
	/* conversions and defaults in the per-tuple memory the writer resets */
	old = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
	econtext->ecxt_scantuple = in;
	memset(out->tts_isnull, true, sizeof(bool) * ls->natts);
	for (i = 0; i < ls->ncols; i++)
	{
		AttrNumber	att = ls->target_att[i] - 1;

		if (ls->convert[i] == NULL)
		{
			out->tts_values[att] = in->tts_values[i];
			out->tts_isnull[att] = in->tts_isnull[i];
		}
		else
			out->tts_values[att] = ExecEvalExpr(ls->convert[i], econtext,
												&out->tts_isnull[att]);
	}
	for (i = 0; i < ls->ndefaults; i++)
	{
		AttrNumber	att = ls->default_att[i] - 1;

		out->tts_values[att] = ExecEvalExpr(ls->defaults[i], econtext,
											&out->tts_isnull[att]);
	}
	ExecStoreVirtualTuple(out);
	MemoryContextSwitchTo(ls->cxt);
	sk_bulk_add(ls->writer, out);
	MemoryContextSwitchTo(old);
	return true;
}

static void
load_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	LoadState  *ls = (LoadState *) self;

	if (typeinfo->natts != ls->ncols)
		elog(ERROR, "sales_kafka.load() query returns %d columns, not %d",
			 typeinfo->natts, ls->ncols);
}

static void
load_shutdown(DestReceiver *self)
{
}

static void
load_destroy(DestReceiver *self)
{
}

/*
 * Plan "SELECT columns FROM ONLY source" and run it into the writer, under
 * the active snapshot.  The scan's triggers context is the writer's
 * statement: the query sets up none of its own.
 */
static void
run_query(LoadState *ls, Relation source, const char *columns)
{
	char	   *sql;
	List	   *raw;
	List	   *queries;
	PlannedStmt *plan;
	QueryDesc  *qd;

	sql = psprintf("SELECT %s FROM ONLY %s", columns,
				   quote_qualified_identifier(get_namespace_name(RelationGetNamespace(source)),
											  RelationGetRelationName(source)));
	raw = pg_parse_query(sql);
	if (list_length(raw) != 1)
		elog(ERROR, "sales_kafka.load() query did not parse as one statement");
	queries = pg_analyze_and_rewrite_fixedparams(linitial_node(RawStmt, raw),
												 sql, NULL, 0, NULL);
	if (list_length(queries) != 1 ||
		linitial_node(Query, queries)->commandType != CMD_SELECT)
		elog(ERROR, "sales_kafka.load() query is not one SELECT");
	plan = pg_plan_query(linitial_node(Query, queries), sql, 0, NULL);

	qd = CreateQueryDesc(plan, sql, GetActiveSnapshot(), InvalidSnapshot,
						 (DestReceiver *) ls, NULL, NULL, 0);
	ExecutorStart(qd, EXEC_FLAG_SKIP_TRIGGERS);
	ExecutorRun(qd, ForwardScanDirection, 0, true);
	ExecutorFinish(qd);
	ExecutorEnd(qd);
	FreeQueryDesc(qd);
}

/*
 * Write the rows through the executor: INSERT INTO target (the mapped
 * columns) SELECT columns FROM ONLY source, as the current user; returns
 * how many.  The mapping (ls) and the rights are checked already.
 */
static uint64
insert_select(LoadState *ls, Relation source, Relation target,
			  const char *columns)
{
	StringInfoData sql;
	uint64		rows;
	int			ret;
	int			i;

	initStringInfo(&sql);
	appendStringInfo(&sql, "INSERT INTO %s (",
					 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(target)),
												RelationGetRelationName(target)));
	for (i = 0; i < ls->ncols; i++)
		appendStringInfo(&sql, "%s%s", i > 0 ? ", " : "",
						 quote_identifier(NameStr(TupleDescAttr(RelationGetDescr(target),
																ls->target_att[i] - 1)->attname)));
	appendStringInfo(&sql, ") SELECT %s FROM ONLY %s", columns,
					 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(source)),
												RelationGetRelationName(source)));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute(sql.data, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "sales_kafka.load() INSERT failed: %s",
			 SPI_result_code_string(ret));
	rows = SPI_processed;
	SPI_finish();
	return rows;
}

/*
 * sales_kafka.load(source regclass, target regclass) returns bigint: the
 * rows written.
 */
Datum
sales_kafka_load(PG_FUNCTION_ARGS)
{
	Oid			source_id = PG_GETARG_OID(0);
	Oid			target_id = PG_GETARG_OID(1);
	LoadState  *ls = palloc0(sizeof(LoadState));
	Relation	source;
	Relation	target;
	RangeTblEntry *src_rte;
	RangeTblEntry *tgt_rte;
	ResultRelInfo *rri;
	char	   *columns;
	bool		volatile_code;
	uint64		rows;

	/* rights first: a role without them must not queue for the locks */
	check_some_privilege(source_id, ACL_SELECT);
	check_some_privilege(target_id, ACL_INSERT);
	if (get_rel_relkind(source_id) != RELKIND_FOREIGN_TABLE ||
		!sk_is_kafka_server(GetForeignServer(GetForeignTable(source_id)->serverid)))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a foreign table of a sales_kafka server",
						get_rel_name(source_id)),
				 errdetail("sales_kafka.load() reads a topic through a sales_kafka foreign table.")));

	/* in the order INSERT ... SELECT takes them */
	target = table_open(target_id, RowExclusiveLock);
	source = relation_open(source_id, AccessShareLock);
	if (target->rd_rel->relkind != RELKIND_RELATION &&
		target->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(target)),
				 errdetail("sales_kafka.load() writes into an ordinary or partitioned table.")));
	if (!target->rd_islocaltemp)
		PreventCommandIfReadOnly("sales_kafka.load()");
	PreventCommandIfParallelMode("sales_kafka.load()");

	ls->cxt = CurrentMemoryContext;
	ls->estate = CreateExecutorState();
	ls->estate->es_output_cid = GetCurrentCommandId(true);

	src_rte = makeNode(RangeTblEntry);
	src_rte->rtekind = RTE_RELATION;
	src_rte->relid = source_id;
	src_rte->relkind = RELKIND_FOREIGN_TABLE;
	src_rte->rellockmode = AccessShareLock;
	src_rte->requiredPerms = ACL_SELECT;
	tgt_rte = makeNode(RangeTblEntry);
	tgt_rte->rtekind = RTE_RELATION;
	tgt_rte->relid = target_id;
	tgt_rte->relkind = target->rd_rel->relkind;
	tgt_rte->rellockmode = RowExclusiveLock;
	tgt_rte->requiredPerms = ACL_INSERT;
	columns = map_columns(ls, source, target, src_rte, tgt_rte, &volatile_code);

	/* the columns, as INSERT (target) ... SELECT (columns) checks them */
	(void) ExecCheckRTPerms(list_make2(src_rte, tgt_rte), true);
	if (check_enable_rls(target_id, InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("sales_kafka.load() cannot write into table \"%s\", which has row-level security for role \"%s\"",
						RelationGetRelationName(target),
						GetUserNameFromId(GetUserId(), false)),
				 errdetail("Like COPY FROM, sales_kafka.load() does not apply row security policies."),
				 errhint("Use INSERT ... SELECT from the foreign table, which applies them.")));

	/* another table access method: through the executor (see the header) */
	if (!sk_bulk_writable(target))
	{
		rows = insert_select(ls, source, target, columns);
		FreeExecutorState(ls->estate);
		relation_close(source, NoLock);
		table_close(target, NoLock);
		PG_RETURN_INT64((int64) rows);
	}

	ExecInitRangeTable(ls->estate, list_make1(tgt_rte));
	rri = makeNode(ResultRelInfo);
	ExecInitResultRelation(ls->estate, rri, 1);
	CheckValidResultRel(rri, CMD_INSERT);
	ExecOpenIndices(rri, false);

	ls->pub.receiveSlot = load_receive;
	ls->pub.rStartup = load_startup;
	ls->pub.rShutdown = load_shutdown;
	ls->pub.rDestroy = load_destroy;
	ls->pub.mydest = DestNone;
	ls->writer = sk_bulk_create(target);

	/* as COPY (query): a snapshot that sees what came before */
	PushCopiedSnapshot(GetActiveSnapshot());
	UpdateActiveSnapshotCommandId();
	/* a volatile default could read the table: each row written at once */
	sk_bulk_begin(ls->writer, rri, ls->estate,
				  volatile_code ? SK_BULK_ONE_BY_ONE : SK_BULK_SORT_INDEXES);
	run_query(ls, source, columns);
	rows = sk_bulk_end(ls->writer);
	PopActiveSnapshot();

	sk_bulk_free(ls->writer);
	ExecResetTupleTable(ls->estate->es_tupleTable, false);
	ExecCloseResultRelations(ls->estate);
	ExecCloseRangeTableRelations(ls->estate);
	FreeExecutorState(ls->estate);
	relation_close(source, NoLock);
	table_close(target, NoLock);
	PG_RETURN_INT64((int64) rows);
}
