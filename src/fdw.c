/*-------------------------------------------------------------------------
 *
 * fdw.c
 *		The handler of the sales_kafka foreign data wrapper: planning,
 *		scanning and analyzing a topic.
 *
 * A scan reads every selected partition from its start offset up to the
 * high watermark captured when the scan first starts, and stops there: its
 * result never depends on timing, and an empty partition ends at once.
 * The watermarks are kept across rescans, so one query sees one snapshot of
 * the topic.  Conditions on partition, offset and timestamp narrow what is
 * read (fdw_pushdown.c).  Rows come from decode.c, on the foreign table's
 * mapping.
 *
 * The librdkafka consumer is borrowed from the backend's cache
 * (kafka_cache.c) when the scan starts, after the executor has checked
 * privileges, and given back when the scan ends; a query that fails or is
 * cancelled before then never gives it back, and its handle is destroyed
 * with the executor's query memory context.  The scans of one query share
 * the topic's watermarks.  Planning (and so EXPLAIN) never contacts Kafka;
 * ANALYZE gives the planner the topic's size and a sample of its newest
 * messages.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/sysattr.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "sales_kafka.h"

PG_FUNCTION_INFO_V1(sales_kafka_fdw_handler);

/* Rows assumed for a topic that was never analyzed */
#define SK_DEFAULT_ROWS 1000

/* Planner to executor: the items of ForeignScan.fdw_private */
enum SkPrivateIndex
{
	SK_PRIV_QUALS,				/* (field, op) pairs, one per fdw_exprs item */
	SK_PRIV_WANTED,				/* attribute numbers the query needs */
	SK_PRIV_EXPLAIN				/* pushed conditions per field, as text */
};

/* Planner state, in baserel->fdw_private */
typedef struct SkPlanState
{
	SkMapping  *map;
} SkPlanState;

/* One partition being read */
typedef struct SkRange
{
	int32		partition;
	int64		start;			/* first offset to read */
	int64		end;			/* first offset not to read */
	bool		done;
	int64		rows;			/* messages returned */
} SkRange;

/* Executor state, in ForeignScanState.fdw_state */
typedef struct SkScanState
{
	SkMapping  *map;
	Oid			userid;
	bool	   *wanted;			/* by attribute index */
	List	   *quals;			/* SkQual */
	List	   *operands;		/* ExprState of each qual's operand */
	bool		capture;		/* non-strict table: errors into rows */

	SkKafka    *kc;
	SkWatermark *marks;			/* captured when the scan first starts */
	int			nmarks;
	bool		started;
	SkBounds	bounds;
	SkRange    *ranges;
	int			nranges;
	int		   *range_of;		/* by partition id: index in ranges, or -1 */
	int			max_partition;
	int			nactive;		/* ranges not done */
	int64		last_progress_ms;	/* when messages_seen was last updated */
	int64		messages_seen;	/* messages read at the last wait */
	int64		messages;		/* messages read, all ranges */
} SkScanState;

/* ---------------------------------------------------------------------
 * Planning
 *
 * The planner never asks Kafka: planning runs before the executor checks
 * the caller's privileges (EXPLAIN alone plans), and nothing may leave the
 * server before they are.  Row counts come from ANALYZE, as for any table.
 * ---------------------------------------------------------------------
 */

static void
skGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
					Oid foreigntableid)
{
	SkPlanState *plan = palloc0(sizeof(SkPlanState));

	plan->map = sk_mapping_load(foreigntableid);
	baserel->fdw_private = plan;
	/* reltuples: the messages ANALYZE counted, -1 if it never ran */
	if (baserel->tuples < 0)
		baserel->tuples = SK_DEFAULT_ROWS;
	baserel->rows = clamp_row_est(baserel->tuples *
								  clauselist_selectivity(root,
														 baserel->baserestrictinfo,
														 0, JOIN_INNER, NULL));
}

/* Decoding dominates: charge it per message read, not per row returned */
static void
path_costs(PlannerInfo *root, RelOptInfo *baserel, double rows,
		   Cost *startup, Cost *total)
{
	*startup = 10.0;
	*total = *startup + rows * (cpu_tuple_cost * 10 + cpu_operator_cost *
								list_length(baserel->baserestrictinfo));
}

/* For generate_implied_equalities_for_column: is em our column attno? */
static bool
ec_member_is_column(PlannerInfo *root, RelOptInfo *rel, EquivalenceClass *ec,
					EquivalenceMember *em, void *arg)
{
	Var		   *var = (Var *) em->em_expr;

	return IsA(var, Var) && var->varno == rel->relid &&
		var->varlevelsup == 0 && var->varattno == *(AttrNumber *) arg;
}

/* A path parameterised by the relations a join clause needs, if usable */
static void
add_param_path(PlannerInfo *root, RelOptInfo *baserel, RestrictInfo *rinfo,
			   List **done)
{
	Relids		outer = bms_difference(rinfo->clause_relids, baserel->relids);
	ParamPathInfo *param;
	Cost		startup;
	Cost		total;
	ListCell   *lc;

	if (bms_is_empty(outer) || bms_overlap(outer, baserel->lateral_relids))
		return;
	foreach(lc, *done)
		if (bms_equal(outer, (Relids) lfirst(lc)))
			return;
	*done = lappend(*done, outer);

	param = get_baserel_parampathinfo(root, baserel, outer);
	path_costs(root, baserel, param->ppi_rows, &startup, &total);
	add_path(baserel, (Path *)
			 create_foreignscan_path(root, baserel, NULL, param->ppi_rows,
									 startup, total, NIL, outer, NULL, NIL));
}

static void
skGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	SkPlanState *plan = (SkPlanState *) baserel->fdw_private;
	AttrNumber	columns[2] = {plan->map->partition_attno, plan->map->offset_attno};
	List	   *done = NIL;
	Cost		startup;
	Cost		total;
	ListCell   *lc;
	int			i;

	path_costs(root, baserel, baserel->rows, &startup, &total);
	add_path(baserel, (Path *)
			 create_foreignscan_path(root, baserel, NULL, baserel->rows,
									 startup, total, NIL, NULL, NULL, NIL));

	/*
	 * Join clauses on partition or offset can narrow the read for each outer
	 * row of a nested loop: offer paths parameterised by the other side.
	 * Equalities live in equivalence classes, the rest in joininfo.
	 */
	foreach(lc, baserel->joininfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		if (join_clause_is_movable_to(rinfo, baserel) &&
			sk_pushdown_join_clause(plan->map, baserel->relid, rinfo))
			add_param_path(root, baserel, rinfo, &done);
	}
	for (i = 0; i < 2; i++)
	{
		if (columns[i] <= 0)
			continue;
		foreach(lc, generate_implied_equalities_for_column(root, baserel,
														   ec_member_is_column,
														   &columns[i],
														   baserel->lateral_referencers))
		{
			RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

			if (sk_pushdown_join_clause(plan->map, baserel->relid, rinfo))
				add_param_path(root, baserel, rinfo, &done);
		}
	}
}

static ForeignScan *
skGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
				 ForeignPath *best_path, List *tlist, List *scan_clauses,
				 Plan *outer_plan)
{
	SkPlanState *plan = (SkPlanState *) baserel->fdw_private;
	List	   *local;
	List	   *quals;
	List	   *qual_items = NIL;
	List	   *operands = NIL;
	List	   *wanted = NIL;
	List	   *explain = NIL;
	Bitmapset  *attrs = NULL;
	ListCell   *lc;
	int			attno;
	SkQualField field;

	quals = sk_pushdown_classify(plan->map, baserel->relid, scan_clauses,
								 &local);
	foreach(lc, quals)
	{
		SkQual	   *qual = (SkQual *) lfirst(lc);

		qual_items = lappend_int(qual_items, qual->field);
		qual_items = lappend_int(qual_items, qual->op);
		operands = lappend(operands, qual->operand);
	}
	for (field = SK_QUAL_PARTITION; field <= SK_QUAL_TIMESTAMP; field++)
	{
		char	   *text = sk_pushdown_explain(quals, field);

		explain = lappend(explain, makeString(text ? text : ""));
	}

	/* decode only the columns the query reads */
	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &attrs);
	pull_varattnos((Node *) local, baserel->relid, &attrs);
	for (attno = 1; attno <= plan->map->natts; attno++)
		if (bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs) ||
			bms_is_member(attno - FirstLowInvalidHeapAttributeNumber, attrs))
			wanted = lappend_int(wanted, attno);

	return make_foreignscan(tlist, local, baserel->relid, operands,
							list_make3(qual_items, wanted, explain),
							NIL, NIL, outer_plan);
}

/* ---------------------------------------------------------------------
 * Scanning
 * ---------------------------------------------------------------------
 */

static void
skBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	RangeTblEntry *rte = exec_rt_fetch(fsplan->scan.scanrelid, estate);
	SkScanState *st = palloc0(sizeof(SkScanState));
	List	   *qual_items = list_nth(fsplan->fdw_private, SK_PRIV_QUALS);
	ListCell   *lc;
	ListCell   *lc2;

	node->fdw_state = st;
	st->map = sk_mapping_load(RelationGetRelid(node->ss.ss_currentRelation));
	st->userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	st->capture = !st->map->strict;
	st->wanted = palloc0(sizeof(bool) * Max(st->map->natts, 1));
	foreach(lc, (List *) list_nth(fsplan->fdw_private, SK_PRIV_WANTED))
		st->wanted[lfirst_int(lc) - 1] = true;

	lc2 = list_head(fsplan->fdw_exprs);
	for (lc = list_head(qual_items); lc != NULL; lc = lnext(qual_items, lnext(qual_items, lc)))
	{
		SkQual	   *qual = palloc0(sizeof(SkQual));

		qual->field = (SkQualField) lfirst_int(lc);
		qual->op = (SkQualOp) lfirst_int(lnext(qual_items, lc));
		qual->operand = (Expr *) lfirst(lc2);
		lc2 = lnext(fsplan->fdw_exprs, lc2);
		st->quals = lappend(st->quals, qual);
	}
	st->operands = ExecInitExprList(fsplan->fdw_exprs, (PlanState *) node);
}

/*
 * Borrow a consumer and capture the watermarks that end every range, those
 * the query's other scans of the topic read up to too.  CurrentMemoryContext
 * is the executor's query context (or ANALYZE's), which destroys the
 * consumer if the scan does not give it back.
 */
static void
scan_connect(SkScanState *st)
{
	st->kc = sk_kafka_cache_get(st->map->serverid, st->userid,
								SK_CLIENT_CONSUMER);
	st->marks = sk_kafka_cache_watermarks(st->kc, st->map->serverid,
										  st->userid, st->map->topic,
										  CurrentMemoryContext, &st->nmarks);
	st->ranges = palloc0(sizeof(SkRange) * Max(st->nmarks, 1));
	st->max_partition = st->nmarks > 0 ? st->marks[st->nmarks - 1].partition : 0;
	st->range_of = palloc(sizeof(int) * (st->max_partition + 1));
}

/* One range per partition the bounds allow, from the captured watermarks */
static void
set_ranges(SkScanState *st, bool any)
{
	int			i;

	st->nranges = 0;
	for (i = 0; i <= st->max_partition; i++)
		st->range_of[i] = -1;
	for (i = 0; any && i < st->nmarks; i++)
	{
		SkWatermark *m = &st->marks[i];
		SkRange    *r;
		int			j;

		if (st->bounds.nparts >= 0)
		{
			for (j = 0; j < st->bounds.nparts; j++)
				if (st->bounds.parts[j] == m->partition)
					break;
			if (j == st->bounds.nparts)
				continue;
		}
		r = &st->ranges[st->nranges];
		st->range_of[m->partition] = st->nranges;
		r->partition = m->partition;
		r->start = Max(m->low, st->bounds.offset_lo);
		r->end = Min(m->high, st->bounds.offset_hi);
		r->done = false;
		r->rows = 0;
		st->nranges++;
	}
}

/* Assign the ranges that are not empty to the consumer */
static void
assign_ranges(SkScanState *st)
{
	rd_kafka_topic_partition_list_t *parts;
	int			i;

	parts = rd_kafka_topic_partition_list_new(Max(st->nranges, 1));
	st->nactive = 0;
	for (i = 0; i < st->nranges; i++)
	{
		SkRange    *r = &st->ranges[i];

		if (r->start >= r->end)
		{
			r->done = true;
			continue;
		}
		rd_kafka_topic_partition_list_add(parts, st->map->topic,
										  r->partition)->offset = r->start;
		st->nactive++;
	}
	PG_TRY();
	{
		sk_kafka_assign(st->kc, parts);
	}
	PG_FINALLY();
	{
		rd_kafka_topic_partition_list_destroy(parts);
	}
	PG_END_TRY();

	st->started = true;
	st->last_progress_ms = sk_kafka_now_ms();
	st->messages_seen = st->messages;
}

/*
 * Evaluate the pushed-down conditions and (re)assign the partitions to
 * read.  The first call connects and captures the watermarks.
 */
static void
start_reading(ForeignScanState *node)
{
	SkScanState *st = (SkScanState *) node->fdw_state;
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	int			nquals = list_length(st->quals);
	Datum	   *values = palloc(sizeof(Datum) * Max(nquals, 1));
	bool	   *isnull = palloc(sizeof(bool) * Max(nquals, 1));
	ListCell   *lc;
	int			i = 0;

	if (st->kc == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(node->ss.ps.state->es_query_cxt);

		scan_connect(st);
		MemoryContextSwitchTo(oldcxt);
	}

	foreach(lc, st->operands)
	{
		values[i] = ExecEvalExpr((ExprState *) lfirst(lc), econtext, &isnull[i]);
		i++;
	}
	set_ranges(st, sk_pushdown_bounds(st->quals, values, isnull, &st->bounds));

	if (st->bounds.ts_lo_ms > PG_INT64_MIN && st->nranges > 0)
	{
		int32	   *partitions = palloc(sizeof(int32) * st->nranges);
		int64	   *offsets;

		for (i = 0; i < st->nranges; i++)
			partitions[i] = st->ranges[i].partition;
		offsets = sk_kafka_offsets_for_time(st->kc, st->map->topic,
											st->nranges, partitions,
											st->bounds.ts_lo_ms);
		for (i = 0; i < st->nranges; i++)
		{
			/* no message at or after the time: nothing to read */
			if (offsets[i] < 0)
				st->ranges[i].start = st->ranges[i].end;
			else
				st->ranges[i].start = Max(st->ranges[i].start, offsets[i]);
		}
	}
	assign_ranges(st);
}

static SkRange *
find_range(SkScanState *st, int32 partition)
{
	if (partition < 0 || partition > st->max_partition ||
		st->range_of[partition] < 0)
		return NULL;
	return &st->ranges[st->range_of[partition]];
}

static void
finish_range(SkScanState *st, SkRange *r)
{
	if (!r->done)
	{
		r->done = true;
		st->nactive--;
	}
}

/*
 * The next message of the assigned ranges, and its range; NULL when every
 * range is read.  The message belongs to the handle until the next call.
 * Throws when the brokers make no progress for sales_kafka.connect_timeout.
 */
static rd_kafka_message_t *
next_message(SkScanState *st, SkRange **range)
{
	while (st->nactive > 0)
	{
		rd_kafka_message_t *msg = sk_kafka_next_message(st->kc, 100);
		SkRange    *r;

		CHECK_FOR_INTERRUPTS();
		if (msg == NULL)
		{
			/* the clock is read when waiting, not for every message */
			if (st->messages != st->messages_seen)
			{
				st->messages_seen = st->messages;
				st->last_progress_ms = sk_kafka_now_ms();
			}
			else if (sk_kafka_now_ms() - st->last_progress_ms > sk_connect_timeout)
				sk_kafka_report(st->kc, RD_KAFKA_RESP_ERR__TIMED_OUT,
								st->map->topic);
			continue;
		}

		r = find_range(st, msg->partition);
		if (msg->err)
		{
			if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
			{
				if (r != NULL && msg->offset >= r->end)
					finish_range(st, r);
				continue;
			}
			if (msg->err == RD_KAFKA_RESP_ERR__TRANSPORT ||
				msg->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
				continue;		/* librdkafka reconnects; the timeout above bounds it */
			sk_kafka_report(st->kc, msg->err, st->map->topic);
		}
		if (r == NULL || r->done || msg->offset < r->start)
			continue;			/* stale, or from before the range */
		if (msg->offset >= r->end)
		{
			finish_range(st, r);
			continue;
		}
		if (msg->offset == r->end - 1)
			finish_range(st, r);
		st->messages++;
		*range = r;
		return msg;
	}
	return NULL;
}

static TupleTableSlot *
skIterateForeignScan(ForeignScanState *node)
{
	SkScanState *st = (SkScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	rd_kafka_message_t *msg;
	SkRange    *r;

	ExecClearTuple(slot);
	if (!st->started)
		start_reading(node);

	while ((msg = next_message(st, &r)) != NULL)
	{
		SkMessage	m;
		SkDecodeError error;

		/* parsing headers costs: only when the query reads them */
		sk_message_from_kafka(msg, st->map->topic,
							  st->map->headers_attno > 0 &&
							  st->wanted[st->map->headers_attno - 1], &m);
		/* with LogAppendTime, timestamps grow: past the upper bound, stop */
		if (m.log_append_time &&
			m.timestamp_ms >= st->bounds.ts_hi_ms)
		{
			finish_range(st, r);
			continue;
		}

		sk_decode_message(st->map, &m, st->wanted, slot->tts_values,
						  slot->tts_isnull, st->capture, &error);
		r->rows++;
		return ExecStoreVirtualTuple(slot);
	}
	return slot;
}

static void
skReScanForeignScan(ForeignScanState *node)
{
	SkScanState *st = (SkScanState *) node->fdw_state;

	/* the operands may have changed; the watermarks stay as captured */
	st->started = false;
}

static void
skEndForeignScan(ForeignScanState *node)
{
	SkScanState *st = (SkScanState *) node->fdw_state;

	if (st != NULL && st->kc != NULL)
		sk_kafka_cache_release(st->kc);
}

static void
skExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	SkScanState *st = (SkScanState *) node->fdw_state;
	List	   *explain = list_nth(fsplan->fdw_private, SK_PRIV_EXPLAIN);
	static const char *const labels[] = {"Kafka Partitions", "Kafka Offsets",
	"Kafka Timestamps"};
	int			i;

	ExplainPropertyText("Kafka Topic", st->map->topic, es);
	for (i = 0; i < 3; i++)
	{
		const char *text = strVal(list_nth(explain, i));

		if (text[0] != '\0')
			ExplainPropertyText(labels[i], text, es);
	}

	if (es->analyze && st->started)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		for (i = 0; i < st->nranges; i++)
		{
			SkRange    *r = &st->ranges[i];

			if (buf.len > 0)
				appendStringInfoString(&buf, ", ");
			if (r->start < r->end)
				appendStringInfo(&buf, "%d: " INT64_FORMAT ".." INT64_FORMAT,
								 r->partition, r->start, r->end - 1);
			else
				appendStringInfo(&buf, "%d: none", r->partition);
		}
		ExplainPropertyText("Kafka Read", buf.len > 0 ? buf.data : "none", es);
		ExplainPropertyInteger("Kafka Messages", NULL, st->messages, es);
	}
}

/* ---------------------------------------------------------------------
 * ANALYZE
 * ---------------------------------------------------------------------
 */

/*
 * Sample the newest messages of each partition, in proportion to its
 * size, decoded as SELECT decodes them; messages that do not decode are
 * left out.  *totalrows is every message the topic keeps.  ANALYZE has
 * checked that the user (the table's owner) may do this; the rows are
 * palloc'd in CurrentMemoryContext, which also owns the handle.
 */
static int
acquire_sample_rows(Relation relation, int elevel, HeapTuple *rows,
					int targrows, double *totalrows, double *totaldeadrows)
{
	SkScanState *st = palloc0(sizeof(SkScanState));
	TupleDesc	tupdesc = RelationGetDescr(relation);
	Datum	   *values = palloc(sizeof(Datum) * Max(tupdesc->natts, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(tupdesc->natts, 1));
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext,
												 "sales_kafka analyze",
												 ALLOCSET_DEFAULT_SIZES);
	rd_kafka_message_t *msg;
	SkRange    *r;
	double		messages = 0;
	int			nrows = 0;
	int			i;

	st->map = sk_mapping_load(RelationGetRelid(relation));
	st->userid = GetUserId();
	scan_connect(st);
	(void) sk_pushdown_bounds(NIL, NULL, NULL, &st->bounds);
	set_ranges(st, true);
	for (i = 0; i < st->nranges; i++)
		messages += st->ranges[i].end - st->ranges[i].start;
	for (i = 0; i < st->nranges; i++)
	{
		r = &st->ranges[i];
		r->start = Max(r->start,
					   r->end - (int64) ceil(targrows * (double) (r->end - r->start) /
											 Max(messages, 1)));
	}
	assign_ranges(st);

	while (nrows < targrows && (msg = next_message(st, &r)) != NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(rowcxt);
		SkMessage	m;
		SkDecodeError error;
		bool		decoded;

		sk_message_from_kafka(msg, st->map->topic, st->map->headers_attno > 0,
							  &m);
		decoded = sk_decode_message(st->map, &m, NULL, values, nulls, true,
									&error);
		MemoryContextSwitchTo(oldcxt);
		if (decoded)
			rows[nrows++] = heap_form_tuple(tupdesc, values, nulls);
		MemoryContextReset(rowcxt);
	}
	sk_kafka_cache_release(st->kc);
	MemoryContextDelete(rowcxt);

	ereport(elevel,
			(errmsg("\"%s\": topic \"%s\" keeps %.0f messages, %d rows in sample from " INT64_FORMAT " messages read",
					RelationGetRelationName(relation), st->map->topic,
					messages, nrows, st->messages)));
	*totalrows = messages;
	*totaldeadrows = 0;
	return nrows;
}

static bool
skAnalyzeForeignTable(Relation relation, AcquireSampleRowsFunc *func,
					  BlockNumber *totalpages)
{
	*func = acquire_sample_rows;
	*totalpages = 1;
	return true;
}

Datum
sales_kafka_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = skGetForeignRelSize;
	routine->GetForeignPaths = skGetForeignPaths;
	routine->GetForeignPlan = skGetForeignPlan;
	routine->BeginForeignScan = skBeginForeignScan;
	routine->IterateForeignScan = skIterateForeignScan;
	routine->ReScanForeignScan = skReScanForeignScan;
	routine->EndForeignScan = skEndForeignScan;
	routine->ExplainForeignScan = skExplainForeignScan;
	routine->AnalyzeForeignTable = skAnalyzeForeignTable;

	sk_produce_routine(routine);

	PG_RETURN_POINTER(routine);
}
