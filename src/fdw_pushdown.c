/*-------------------------------------------------------------------------
 *
 * fdw_pushdown.c
 *		Turn conditions on a Kafka foreign table's metadata columns into
 *		what to read: partitions, offset ranges, timestamp seeks.
 *
 * Rules (anything else stays a local filter):
 *	- partition = v, partition IN (...) and v = partition select partitions;
 *	- offset =, <, <=, >, >= v (BETWEEN arrives as >= AND <=) bound the
 *	  offset range read in every partition;
 *	- timestamp >=, > v seek each partition to the first offset whose
 *	  timestamp is at or after v (Kafka's ListOffsets by time); the
 *	  condition is still checked on each row, because CreateTime
 *	  timestamps need not grow with offsets;
 *	- timestamp <, <= v are checked on each row, and also end the read of
 *	  a partition early once it shows LogAppendTime (then timestamps do
 *	  grow with offsets);
 *	- v is any expression without this table's columns and without
 *	  volatile functions: a constant, a parameter ($1), a stable function,
 *	  or a column of an outer relation in a parameterised join.  It is
 *	  evaluated when the scan starts, and again at every rescan.
 * Only operators of the column type's default btree family qualify, and
 * only with an operand of an integer type (partition, offset) or of type
 * timestamptz (timestamp).
 *
 * Partition and offset conditions are exact, so they leave the local
 * filter; timestamp conditions stay in it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "optimizer/restrictinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "sales_kafka.h"

static SkQualField
field_of_attno(SkMapping *map, AttrNumber attno)
{
	if (attno == map->partition_attno && attno > 0)
		return SK_QUAL_PARTITION;
	if (attno == map->offset_attno && attno > 0)
		return SK_QUAL_OFFSET;
	if (attno == map->timestamp_attno && attno > 0 &&
		map->columns[attno - 1].typid == TIMESTAMPTZOID)
		return SK_QUAL_TIMESTAMP;
	return SK_QUAL_NONE;
}

/* Is node a column of this relation that a pushdown rule is about? */
static SkQualField
metadata_column(SkMapping *map, Index relid, Node *node)
{
	Var		   *var;

	if (node == NULL || !IsA(node, Var))
		return SK_QUAL_NONE;
	var = (Var *) node;
	if (var->varno != relid || var->varlevelsup != 0)
		return SK_QUAL_NONE;
	return field_of_attno(map, var->varattno);
}

/* Can node be evaluated once per scan, before reading anything? */
static bool
is_scan_constant(Node *node, Index relid, SkQualField field)
{
	Oid			type = exprType(node);

	if (field == SK_QUAL_TIMESTAMP ? type != TIMESTAMPTZOID :
		(type != INT2OID && type != INT4OID && type != INT8OID))
		return false;
	return !bms_is_member(relid, pull_varnos(NULL, node)) &&
		!contain_volatile_functions(node) &&
		!contain_subplans(node);
}

/* The btree strategy of opno for the column, or 0 */
static int
btree_strategy(Oid opno, Oid coltype)
{
	Oid			opclass = GetDefaultOpClass(coltype, BTREE_AM_OID);

	if (!OidIsValid(opclass))
		return 0;
	return get_op_opfamily_strategy(opno, get_opclass_family(opclass));
}

static SkQualOp
op_of_strategy(int strategy, bool commuted)
{
	switch (strategy)
	{
		case BTEqualStrategyNumber:
			return SK_OP_EQ;
		case BTLessStrategyNumber:
			return commuted ? SK_OP_GT : SK_OP_LT;
		case BTLessEqualStrategyNumber:
			return commuted ? SK_OP_GE : SK_OP_LE;
		case BTGreaterStrategyNumber:
			return commuted ? SK_OP_LT : SK_OP_GT;
		case BTGreaterEqualStrategyNumber:
			return commuted ? SK_OP_LE : SK_OP_GE;
	}
	return SK_OP_NONE;
}

/*
 * Does a clause follow one of the rules?  If so, returns the field and sets
 * *op and *operand.
 */
static SkQualField
classify_clause(SkMapping *map, Index relid, Expr *clause, SkQualOp *op,
				Expr **operand)
{
	if (IsA(clause, OpExpr) && list_length(((OpExpr *) clause)->args) == 2)
	{
		OpExpr	   *expr = (OpExpr *) clause;
		Node	   *column = linitial(expr->args);
		Node	   *other = lsecond(expr->args);
		bool		commuted = false;
		SkQualField field = metadata_column(map, relid, column);

		if (field == SK_QUAL_NONE)
		{
			column = lsecond(expr->args);
			other = linitial(expr->args);
			commuted = true;
			field = metadata_column(map, relid, column);
		}
		if (field == SK_QUAL_NONE || !is_scan_constant(other, relid, field))
			return SK_QUAL_NONE;

		*op = op_of_strategy(btree_strategy(expr->opno, exprType(column)),
							 commuted);
		if (*op == SK_OP_NONE ||
			(field == SK_QUAL_PARTITION && *op != SK_OP_EQ) ||
			(field == SK_QUAL_TIMESTAMP && *op == SK_OP_EQ))
			return SK_QUAL_NONE;
		*operand = (Expr *) other;
		return field;
	}
	if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *expr = (ScalarArrayOpExpr *) clause;
		Node	   *left = linitial(expr->args);
		Node	   *right = lsecond(expr->args);
		Oid			elemtype = get_element_type(exprType(right));

		if (!expr->useOr ||
			metadata_column(map, relid, left) != SK_QUAL_PARTITION ||
			btree_strategy(expr->opno, exprType(left)) != BTEqualStrategyNumber ||
			(elemtype != INT2OID && elemtype != INT4OID && elemtype != INT8OID) ||
			bms_is_member(relid, pull_varnos(NULL, right)) ||
			contain_volatile_functions(right) || contain_subplans(right))
			return SK_QUAL_NONE;
		*op = SK_OP_IN;
		*operand = (Expr *) right;
		return SK_QUAL_PARTITION;
	}
	return SK_QUAL_NONE;
}

/*
 * Sort the RestrictInfos of a scan into pushed-down conditions and local
 * filters.  Returns the pushed conditions (SkQual); *local gets the clauses
 * (bare expressions) the executor must still check.  Planner memory.
 */
List *
sk_pushdown_classify(SkMapping *map, Index relid, List *rinfos, List **local)
{
	List	   *quals = NIL;
	ListCell   *lc;

	*local = NIL;
	foreach(lc, rinfos)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		SkQualOp	op;
		Expr	   *operand;
		SkQualField field = classify_clause(map, relid, rinfo->clause,
											&op, &operand);

		if (field != SK_QUAL_NONE && !rinfo->pseudoconstant)
		{
			SkQual	   *qual = palloc0(sizeof(SkQual));

			qual->field = field;
			qual->op = op;
			qual->operand = operand;
			quals = lappend(quals, qual);
			if (field != SK_QUAL_TIMESTAMP)
				continue;
		}
		*local = lappend(*local, rinfo->clause);
	}
	return quals;
}

/*
 * Would this join clause (a RestrictInfo in the relation's joininfo) be
 * pushed down in a scan parameterised by the other relations?
 */
bool
sk_pushdown_join_clause(SkMapping *map, Index relid, RestrictInfo *rinfo)
{
	SkQualOp	op;
	Expr	   *operand;
	SkQualField field = classify_clause(map, relid, rinfo->clause, &op,
										&operand);

	return field == SK_QUAL_PARTITION || field == SK_QUAL_OFFSET;
}

/* ---------------------------------------------------------------------
 * Execution: evaluated conditions to a read plan
 * ---------------------------------------------------------------------
 */

static int64
int_value(Datum value, Oid type)
{
	switch (type)
	{
		case INT2OID:
			return DatumGetInt16(value);
		case INT4OID:
			return DatumGetInt32(value);
		default:
			return DatumGetInt64(value);
	}
}

/* floor(us / 1000) and ceil(us / 1000) of microseconds since the Unix epoch */
static int64
unix_us(TimestampTz ts)
{
	return ts + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) *
		SECS_PER_DAY * USECS_PER_SEC;
}

static int64
floor_ms(int64 us)
{
	return us >= 0 ? us / 1000 : -((-us + 999) / 1000);
}

static int64
ceil_ms(int64 us)
{
	return -floor_ms(-us);
}

/*
 * Fold the evaluated conditions into bounds.  values/isnull hold each
 * condition's operand, in the order of quals.  Returns false when the
 * conditions exclude every row (a NULL operand, an empty range).
 */
bool
sk_pushdown_bounds(List *quals, Datum *values, bool *isnull, SkBounds *b)
{
	ListCell   *lc;
	int			i = 0;

	b->nparts = -1;
	b->parts = NULL;
	b->offset_lo = 0;
	b->offset_hi = PG_INT64_MAX;
	b->ts_lo_ms = PG_INT64_MIN;
	b->ts_hi_ms = PG_INT64_MAX;

	foreach(lc, quals)
	{
		SkQual	   *qual = (SkQual *) lfirst(lc);
		Oid			type = exprType((Node *) qual->operand);
		Datum		v = values[i];

		if (isnull[i++])
			return false;		/* comparisons with NULL are never true */

		if (qual->field == SK_QUAL_PARTITION)
		{
			int32	   *set;
			int			nset = 0;
			int			j;
			int			k;

			if (qual->op == SK_OP_IN)
			{
				ArrayType  *array = DatumGetArrayTypeP(v);
				Datum	   *elems;
				bool	   *elemnulls;
				int			nelems;
				int16		typlen;
				bool		typbyval;
				char		typalign;
				Oid			elemtype = ARR_ELEMTYPE(array);

				get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
				deconstruct_array(array, elemtype, typlen, typbyval, typalign,
								  &elems, &elemnulls, &nelems);
				set = palloc(sizeof(int32) * Max(nelems, 1));
				for (j = 0; j < nelems; j++)
				{
					int64		p = elemnulls[j] ? -1 : int_value(elems[j], elemtype);

					if (p >= 0 && p <= PG_INT32_MAX)
						set[nset++] = (int32) p;
				}
			}
			else
			{
				int64		p = int_value(v, type);

				set = palloc(sizeof(int32));
				if (p >= 0 && p <= PG_INT32_MAX)
					set[nset++] = (int32) p;
			}

			/* intersect with what earlier conditions allowed */
			if (b->nparts >= 0)
			{
				int			kept = 0;

				for (j = 0; j < nset; j++)
					for (k = 0; k < b->nparts; k++)
						if (set[j] == b->parts[k])
						{
							set[kept++] = set[j];
							break;
						}
				nset = kept;
			}
			b->parts = set;
			b->nparts = nset;
		}
		else if (qual->field == SK_QUAL_OFFSET)
		{
			int64		o = int_value(v, type);

			switch (qual->op)
			{
				case SK_OP_EQ:
					b->offset_lo = Max(b->offset_lo, o);
					b->offset_hi = Min(b->offset_hi, o == PG_INT64_MAX ? o : o + 1);
					break;
				case SK_OP_GE:
					b->offset_lo = Max(b->offset_lo, o);
					break;
				case SK_OP_GT:
					b->offset_lo = Max(b->offset_lo, o == PG_INT64_MAX ? o : o + 1);
					break;
				case SK_OP_LT:
					b->offset_hi = Min(b->offset_hi, o);
					break;
				case SK_OP_LE:
					b->offset_hi = Min(b->offset_hi, o == PG_INT64_MAX ? o : o + 1);
					break;
				default:
					break;
			}
		}
		else if (qual->field == SK_QUAL_TIMESTAMP)
		{
			TimestampTz ts = DatumGetTimestampTz(v);
			int64		us;

			if (TIMESTAMP_NOT_FINITE(ts))
			{
				/* >= -infinity and < infinity are no bound at all */
				if ((ts == DT_NOBEGIN) == (qual->op == SK_OP_GE || qual->op == SK_OP_GT))
					continue;
				return false;
			}
			us = unix_us(ts);
			switch (qual->op)
			{
				case SK_OP_GE:
					b->ts_lo_ms = Max(b->ts_lo_ms, ceil_ms(us));
					break;
				case SK_OP_GT:
					b->ts_lo_ms = Max(b->ts_lo_ms, floor_ms(us) + 1);
					break;
				case SK_OP_LT:
					b->ts_hi_ms = Min(b->ts_hi_ms, ceil_ms(us));
					break;
				case SK_OP_LE:
					b->ts_hi_ms = Min(b->ts_hi_ms, floor_ms(us) + 1);
					break;
				default:
					break;
			}
		}
	}
	return b->nparts != 0 && b->offset_lo < b->offset_hi &&
		b->ts_lo_ms < b->ts_hi_ms;
}

/* ---------------------------------------------------------------------
 * EXPLAIN
 * ---------------------------------------------------------------------
 */

static const char *
operand_text(Expr *operand)
{
	if (IsA(operand, Const))
	{
		Const	   *c = (Const *) operand;
		Oid			outfunc;
		bool		isvarlena;
		char	   *text;

		if (c->constisnull)
			return "NULL";
		getTypeOutputInfo(c->consttype, &outfunc, &isvarlena);
		text = OidOutputFunctionCall(outfunc, c->constvalue);
		if (c->consttype == TIMESTAMPTZOID)
			return quote_literal_cstr(text);
		if (type_is_array(c->consttype))
			return psprintf("(%s)", pnstrdup(text + 1, strlen(text) - 2));
		return text;
	}
	if (IsA(operand, Param) && ((Param *) operand)->paramkind == PARAM_EXTERN)
		return psprintf("$%d", ((Param *) operand)->paramid);
	if (IsA(operand, RelabelType))
		return operand_text(((RelabelType *) operand)->arg);
	if (IsA(operand, Var))
		return "(value from each outer row)";
	return "(value computed at run time)";
}

/*
 * The pushed-down conditions on one field, as EXPLAIN shows them, e.g.
 * ">= 100 AND <= 199"; NULL when there are none.
 */
char *
sk_pushdown_explain(List *quals, SkQualField field)
{
	static const char *const opnames[] = {"", "=", "<", "<=", ">", ">=", "IN"};
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, quals)
	{
		SkQual	   *qual = (SkQual *) lfirst(lc);

		if (qual->field != field)
			continue;
		if (buf.len > 0)
			appendStringInfoString(&buf, " AND ");
		appendStringInfo(&buf, "%s %s", opnames[qual->op],
						 operand_text(qual->operand));
	}
	return buf.len > 0 ? buf.data : NULL;
}
