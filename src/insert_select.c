/*-------------------------------------------------------------------------
 *
 * insert_select.c
 *		INSERT INTO table SELECT ... FROM a Kafka foreign table, written as
 *		COPY writes (bulk_insert.c) instead of one row at a time.
 *
 * Loading a topic into a table is the foreign table's most common use,
 * and the executor's row-at-a-time INSERT costs about as much as reading
 * and decoding the messages.  So when an INSERT starts whose plan is a
 * ModifyTable over a plan that reads a sales_kafka foreign table, into a
 * table the bulk path serves (ordinary, not a partition, no triggers, no
 * row security), without ON CONFLICT, RETURNING or check options, and
 * without volatile functions but nextval (which could read the table as it
 * is being written; COPY does not batch then either), the ModifyTable is
 * replaced by the custom scan "SalesKafkaInsert": it runs
 * the same subplan and writes its rows a thousand at a time.  Anything
 * else runs as planned; sales_kafka.bulk_insert = off turns it off.
 *
 * This happens in ExecutorStart, not in the planner: the library may be
 * loaded only while the statement is planned (by the foreign table's
 * handler), too late for a planner hook but not for this one.  The plan is
 * replaced in a copy of the PlannedStmt, so a cached plan stays as the
 * planner made it and the choice is made again, with the table's triggers
 * as they are, each time the statement runs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/plannodes.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "sales_kafka.h"

bool		sk_bulk_insert_select = true;

static ExecutorStart_hook_type prev_executor_start = NULL;

typedef struct InsertState
{
	CustomScanState css;
	ResultRelInfo *rri;
	SkBulkInsert *writer;
	int			natts;
	bool		done;
} InsertState;

static Node *insert_create_state(CustomScan *cscan);
static void insert_begin(CustomScanState *node, EState *estate, int eflags);
static TupleTableSlot *insert_exec(CustomScanState *node);
static void insert_end(CustomScanState *node);
static void insert_rescan(CustomScanState *node);
static void insert_explain(CustomScanState *node, List *ancestors,
						   ExplainState *es);

static const CustomScanMethods insert_plan_methods = {
	.CustomName = "SalesKafkaInsert",
	.CreateCustomScanState = insert_create_state,
};

static const CustomExecMethods insert_exec_methods = {
	.CustomName = "SalesKafkaInsert",
	.BeginCustomScan = insert_begin,
	.ExecCustomScan = insert_exec,
	.EndCustomScan = insert_end,
	.ReScanCustomScan = insert_rescan,
	.ExplainCustomScan = insert_explain,
};

/*
 * Whether test holds for plan or a plan under it.  Subqueries' plans are
 * PlannedStmt.subplans, for the caller to look at.
 */
static bool
any_plan(Plan *plan, bool (*test) (Plan *))
{
	List	   *children;
	ListCell   *lc;

	if (plan == NULL)
		return false;
	if (test(plan))
		return true;
	children = list_make2(plan->lefttree, plan->righttree);
	switch (nodeTag(plan))
	{
		case T_Append:
			children = list_concat(children, ((Append *) plan)->appendplans);
			break;
		case T_MergeAppend:
			children = list_concat(children, ((MergeAppend *) plan)->mergeplans);
			break;
		case T_SubqueryScan:
			children = lappend(children, ((SubqueryScan *) plan)->subplan);
			break;
		case T_CustomScan:
			children = list_concat(children, ((CustomScan *) plan)->custom_plans);
			break;
		default:
			break;
	}
	foreach(lc, children)
		if (any_plan((Plan *) lfirst(lc), test))
			return true;
	return false;
}

/* Whether the node reads a sales_kafka foreign table */
static bool
reads_kafka(Plan *plan)
{
	return IsA(plan, ForeignScan) &&
		sk_is_kafka_server(GetForeignServer(((ForeignScan *) plan)->fs_server));
}

/*
 * Whether an expression of the node calls a volatile function (nextval
 * aside).  Such a function may read the table being written, and would see
 * fewer of the statement's rows when they are written a thousand at a
 * time: COPY FROM does not batch then either.
 */
static bool
calls_volatile(Plan *plan)
{
	List	   *exprs = list_make2(plan->targetlist, plan->qual);

	switch (nodeTag(plan))
	{
		case T_Result:
			exprs = lappend(exprs, ((Result *) plan)->resconstantqual);
			break;
		case T_FunctionScan:
			exprs = lappend(exprs, ((FunctionScan *) plan)->functions);
			break;
		case T_ValuesScan:
			exprs = lappend(exprs, ((ValuesScan *) plan)->values_lists);
			break;
		case T_TableFuncScan:
			exprs = lappend(exprs, ((TableFuncScan *) plan)->tablefunc);
			break;
		case T_ForeignScan:
			exprs = lappend(exprs, ((ForeignScan *) plan)->fdw_exprs);
			break;
		case T_NestLoop:
		case T_MergeJoin:
		case T_HashJoin:
			exprs = lappend(exprs, ((Join *) plan)->joinqual);
			if (IsA(plan, HashJoin))
				exprs = lappend(exprs, ((HashJoin *) plan)->hashclauses);
			if (IsA(plan, MergeJoin))
				exprs = lappend(exprs, ((MergeJoin *) plan)->mergeclauses);
			break;
		case T_Limit:
			exprs = lappend(exprs, ((Limit *) plan)->limitOffset);
			exprs = lappend(exprs, ((Limit *) plan)->limitCount);
			break;
		default:
			break;
	}
	return contain_volatile_functions_not_nextval((Node *) exprs);
}

/*
 * Whether the subplan's rows are the table's rows: an INSERT's subplan
 * yields every column of the table in order (dropped ones as NULL), and
 * junk after them if anything.
 */
static bool
yields_table_rows(Plan *sub, int natts)
{
	ListCell   *lc;
	int			n = 0;

	foreach(lc, sub->targetlist)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);

		if (tle->resjunk)
			continue;
		if (tle->resno != ++n)
			return false;
	}
	return n == natts;
}

/*
 * The statement with its ModifyTable replaced by SalesKafkaInsert, or the
 * statement itself when it does not qualify.
 */
static PlannedStmt *
bulk_insert_plan(PlannedStmt *stmt)
{
	ModifyTable *mt;
	Plan	   *sub;
	Index		rti;
	RangeTblEntry *rte;
	Relation	rel;
	bool		qualifies;
	CustomScan *cscan;
	PlannedStmt *copy;
	ListCell   *lc;

	if (!IsA(stmt->planTree, ModifyTable) ||
		stmt->hasModifyingCTE || stmt->hasReturning)
		return stmt;
	mt = (ModifyTable *) stmt->planTree;
	sub = outerPlan(mt);
	if (mt->operation != CMD_INSERT || !mt->canSetTag ||
		list_length(mt->resultRelations) != 1 || mt->rootRelation != 0 ||
		mt->onConflictAction != ONCONFLICT_NONE ||
		mt->returningLists != NIL || mt->withCheckOptionLists != NIL ||
		!any_plan(sub, reads_kafka) || any_plan(sub, calls_volatile))
		return stmt;
	foreach(lc, stmt->subplans)
		if (any_plan((Plan *) lfirst(lc), calls_volatile))
			return stmt;

	rti = linitial_int(mt->resultRelations);
	rte = rt_fetch(rti, stmt->rtable);
	if (rte->rtekind != RTE_RELATION || rte->relkind != RELKIND_RELATION)
		return stmt;
	/* locked already (parser or plan cache): this only looks */
	rel = table_open(rte->relid, NoLock);
	qualifies = sk_bulk_insert_possible(rel, OidIsValid(rte->checkAsUser) ?
										rte->checkAsUser : GetUserId()) &&
		yields_table_rows(sub, RelationGetNumberOfAttributes(rel));
	table_close(rel, NoLock);
	if (!qualifies)
		return stmt;

	cscan = makeNode(CustomScan);
	/* costs, parameters and init plans are the ModifyTable's */
	cscan->scan.plan = mt->plan;
	cscan->scan.plan.type = T_CustomScan;
	cscan->scan.plan.targetlist = NIL;
	cscan->scan.plan.qual = NIL;
	cscan->scan.plan.lefttree = NULL;
	cscan->scan.plan.righttree = NULL;
	cscan->scan.scanrelid = 0;
	cscan->custom_plans = list_make1(sub);
	cscan->custom_private = list_make1(makeInteger(rti));
	cscan->methods = &insert_plan_methods;

	copy = palloc(sizeof(PlannedStmt));
	memcpy(copy, stmt, sizeof(PlannedStmt));
	copy->planTree = (Plan *) cscan;
	return copy;
}

static void
sk_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (sk_bulk_insert_select && queryDesc->operation == CMD_INSERT)
		queryDesc->plannedstmt = bulk_insert_plan(queryDesc->plannedstmt);
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

static Node *
insert_create_state(CustomScan *cscan)
{
	InsertState *st = (InsertState *) newNode(sizeof(InsertState),
											  T_CustomScanState);

	st->css.methods = &insert_exec_methods;
	return (Node *) st;
}

static void
insert_begin(CustomScanState *node, EState *estate, int eflags)
{
	InsertState *st = (InsertState *) node;
	CustomScan *cscan = (CustomScan *) node->ss.ps.plan;
	Index		rti = intVal(linitial(cscan->custom_private));

	node->custom_ps = list_make1(ExecInitNode(linitial(cscan->custom_plans),
											  estate, eflags));
	st->rri = makeNode(ResultRelInfo);
	ExecInitResultRelation(estate, st->rri, rti);
	st->natts = RelationGetNumberOfAttributes(st->rri->ri_RelationDesc);
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	/* closed with the result relation, by ExecEndPlan() */
	ExecOpenIndices(st->rri, false);
	st->writer = sk_bulk_create(st->rri->ri_RelationDesc);
}

/* Runs the subplan to its end, writing its rows; returns no row. */
static TupleTableSlot *
insert_exec(CustomScanState *node)
{
	InsertState *st = (InsertState *) node;
	EState	   *estate = node->ss.ps.state;
	PlanState  *child = (PlanState *) linitial(node->custom_ps);

	if (st->done)
		return NULL;
	/* the plan calls no volatile function (see bulk_insert_plan) */
	sk_bulk_begin(st->writer, st->rri, estate, true);
	for (;;)
	{
		TupleTableSlot *in = ExecProcNode(child);
		TupleTableSlot *out;

		if (TupIsNull(in))
			break;
		slot_getsomeattrs(in, st->natts);
		out = sk_bulk_next_slot(st->writer);
		memcpy(out->tts_values, in->tts_values, sizeof(Datum) * st->natts);
		memcpy(out->tts_isnull, in->tts_isnull, sizeof(bool) * st->natts);
		ExecStoreVirtualTuple(out);
		/* the values live in the subplan's memory, until its next row */
		ExecMaterializeSlot(out);
		sk_bulk_add(st->writer, out);
		estate->es_processed++;
	}
	sk_bulk_end(st->writer);
	st->done = true;
	return NULL;
}

static void
insert_end(CustomScanState *node)
{
	InsertState *st = (InsertState *) node;

	ExecEndNode((PlanState *) linitial(node->custom_ps));
	if (st->writer != NULL)
		sk_bulk_free(st->writer);
}

static void
insert_rescan(CustomScanState *node)
{
	elog(ERROR, "SalesKafkaInsert cannot be rescanned");
}

static void
insert_explain(CustomScanState *node, List *ancestors, ExplainState *es)
{
	InsertState *st = (InsertState *) node;
	Relation	rel = st->rri->ri_RelationDesc;

	/* the schema only when VERBOSE, as for "Insert on" */
	ExplainPropertyText("Insert Into", es->verbose ?
						quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												   RelationGetRelationName(rel)) :
						quote_identifier(RelationGetRelationName(rel)),
						es);
	ExplainPropertyInteger("Rows Per Write", NULL, SK_MULTI_INSERT_ROWS, es);
}

/* Called once per process from _PG_init. */
void
sk_insert_select_init(void)
{
	RegisterCustomScanMethods(&insert_plan_methods);
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = sk_executor_start;
}
