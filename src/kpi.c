/*-------------------------------------------------------------------------
 *
 * kpi.c
 *		What the KPI layer needs from C: running its functions as the owner
 *		of the model's schema, and waiting until every transaction that is
 *		writing into a fact table has ended.
 *
 * As the model's owner.  A sales model lives in a schema its owner
 * controls: its triggers, rules, defaults and policies run whenever the
 * model's tables are written.  So the functions that write them
 * (create_sales_model, create_sales_partitions, refresh_rollups,
 * rebuild_rollups, refresh_kpis, create_sales_pipelines,
 * upgrade_sales_model, add_metric_summary, drop_metric_summary and
 * drop_old_partitions) are C wrappers that run their plpgsql body (the
 * same name with a leading underscore; refresh_kpis has two steps,
 * drop_old_partitions three) as REFRESH MATERIALIZED VIEW runs a view's
 * query: as the schema's owner,
 * with SECURITY_RESTRICTED_OPERATION, search_path = pg_catalog, pg_temp,
 * and every setting changed inside undone afterwards.  The caller must
 * have the privileges of that owner (superusers have them), as REFRESH
 * MATERIALIZED VIEW asks for ownership.  A superuser, or a pg_cron job of
 * one, can then refresh any model without lending it superuser rights.
 * On an error, transaction (or subtransaction) abort restores the user,
 * the security context and the settings, as for PostgreSQL's own
 * switches; nothing here catches errors.  Never runs anything of the
 * model's as the caller.
 *
 * Waiting for writers.  The rollups (refresh_rollups) read the fact rows
 * whose ingest_id lies between the last one rolled up and the sequence's
 * last value.  Sequence values are handed out before the rows commit, and
 * not in commit order, so a row with a smaller ingest_id may still be
 * invisible when the rollup reads.  Every such row belongs to a
 * transaction that took its value while holding ROW EXCLUSIVE on the table:
 * waiting for the holders of locks that conflict with SHARE, as CREATE
 * INDEX CONCURRENTLY does, makes every value read before the wait final,
 * without blocking the writers that come after.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "sales_kafka.h"

PG_FUNCTION_INFO_V1(sales_kafka_create_sales_model);
PG_FUNCTION_INFO_V1(sales_kafka_create_sales_partitions);
PG_FUNCTION_INFO_V1(sales_kafka_refresh_rollups);
PG_FUNCTION_INFO_V1(sales_kafka_rebuild_rollups);
PG_FUNCTION_INFO_V1(sales_kafka_refresh_kpis);
PG_FUNCTION_INFO_V1(sales_kafka_create_sales_pipelines);
PG_FUNCTION_INFO_V1(sales_kafka_upgrade_sales_model);
PG_FUNCTION_INFO_V1(sales_kafka_add_metric_summary);
PG_FUNCTION_INFO_V1(sales_kafka_drop_metric_summary);
PG_FUNCTION_INFO_V1(sales_kafka_drop_old_partitions);
PG_FUNCTION_INFO_V1(sk_wait_for_writers);

/*
 * The name of the model schema, the called function's first argument.
 * Throws ERRCODE_NULL_VALUE_NOT_ALLOWED if it is null.
 */
static char *
model_schema_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the model schema given to sales_kafka.%s must not be null",
						get_func_name(fcinfo->flinfo->fn_oid))));
	return NameStr(*PG_GETARG_NAME(0));
}

/*
 * The owner of schema nsp (named schema), once it is clear that the current
 * user has its privileges; throws ERRCODE_INSUFFICIENT_PRIVILEGE if not.
 */
static Oid
schema_owner_checked(FunctionCallInfo fcinfo, const char *schema, Oid nsp)
{
	Oid			owner = sk_schema_owner(nsp);

	if (!has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for sales model schema \"%s\"", schema),
				 errdetail("Only roles with the privileges of its owner, role \"%s\", may call sales_kafka.%s on it: the function runs as that role.",
						   GetUserNameFromId(owner, false),
						   get_func_name(fcinfo->flinfo->fn_oid))));
	return owner;
}

/*
 * The relations of a sales model that the KPI functions and the rollup
 * worker write or read, running as the schema's owner, with the lock that
 * refresh_rollups takes on each (NoLock: it does not touch it; products is
 * here for the other KPI functions); those of the metric summaries are
 * missing from a model of 1.2 not upgraded yet
 */
const SkModelRelation sk_model_relations[] =
{
	{"kpi_state", RowExclusiveLock},
	{"order_lines_ingest_id_seq", RowExclusiveLock},
	{"order_lines", AccessShareLock},
	{"orders", AccessShareLock},
	{"customers", AccessShareLock},
	{"products", NoLock},
	{"rollup_total", RowExclusiveLock},
	{"rollup_product", RowExclusiveLock},
	{"rollup_customer", RowExclusiveLock},
	{"rollup_customer_group", RowExclusiveLock},
	{"rollup_price_band", RowExclusiveLock},
	{"metrics_ingest_id_seq", RowExclusiveLock, true},
	{"metrics", AccessShareLock, true},
	{"metric_summary_view", RowExclusiveLock, true},
	{"metric_summary", RowExclusiveLock, true},
	{"metric_change", RowExclusiveLock, true},
};
const int	sk_model_relation_count = lengthof(sk_model_relations);

/*
 * Whether every relation of the sales model in schema nsp (those above
 * that exist, and the partitions of order_lines) belongs to owner, the
 * schema's owner, and is permanent, in a schema that is not temporary.
 * The KPI functions and the rollup worker run as the schema's owner: a
 * table of another role in it (a schema where others may create tables)
 * would run that role's triggers and policies with the owner's rights.
 * With elevel ERROR, throws ERRCODE_INSUFFICIENT_PRIVILEGE instead of
 * returning false.
 */
bool
sk_model_relations_owned(Oid nsp, Oid owner, int elevel)
{
	int			i;

	if (isAnyTempNamespace(nsp))
	{
		if (elevel >= ERROR)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("a temporary schema cannot hold a sales model")));
		return false;
	}
	for (i = 0; i < sk_model_relation_count; i++)
	{
		Oid			relid = get_relname_relid(sk_model_relations[i].name, nsp);
		List	   *rels;
		ListCell   *lc;

		if (!OidIsValid(relid))
			continue;
		rels = strcmp(sk_model_relations[i].name, "order_lines") == 0 ?
			find_all_inheritors(relid, NoLock, NULL) : list_make1_oid(relid);
		foreach(lc, rels)
		{
			HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(lfirst_oid(lc)));
			Form_pg_class rel;
			bool		ok;

			if (!HeapTupleIsValid(tup))
				continue;		/* dropped meanwhile */
			rel = (Form_pg_class) GETSTRUCT(tup);
			ok = rel->relowner == owner &&
				rel->relpersistence == RELPERSISTENCE_PERMANENT;
			if (!ok && elevel >= ERROR)
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("table \"%s.%s\" of a sales model does not belong to the schema's owner",
								get_namespace_name(nsp), NameStr(rel->relname)),
						 errdetail("The KPI functions and the rollup worker run as the owner of the schema, role \"%s\": every table of its model must be a permanent table of that role.",
								   GetUserNameFromId(owner, false))));
			ReleaseSysCache(tup);
			if (!ok)
				return false;
		}
	}
	return true;
}

/*
 * The owner of the model schema named by the first argument, once it is
 * clear that the current user has its privileges.  Throws
 * ERRCODE_UNDEFINED_OBJECT if there is no such schema.
 */
static Oid
model_owner(FunctionCallInfo fcinfo)
{
	char	   *schema = model_schema_arg(fcinfo);
	Oid			nsp = get_namespace_oid(schema, true);
	Oid			owner;

	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("schema \"%s\" has no sales model", schema),
				 errhint("Create one with sales_kafka.create_sales_model().")));
	owner = schema_owner_checked(fcinfo, schema, nsp);
	(void) sk_model_relations_owned(nsp, owner, ERROR);
	return owner;
}

/*
 * Call the extension's function "internal", which takes the first
 * "leading" arguments of the called function (-1: all of them; it lives
 * in the same schema), with the caller's arguments, as role owner; see the
 * banner.  A set-returning internal function fills the caller's
 * ReturnSetInfo.  Returns its result, and whether it is null in *isnull.
 * Can throw anything the internal function throws.
 */
static Datum
call_leading_as_owner(FunctionCallInfo fcinfo, const char *internal,
					  int leading, Oid owner, bool *isnull)
{
	Oid			self = fcinfo->flinfo->fn_oid;
	char	   *schema = get_namespace_name(get_func_namespace(self));
	Oid		   *argtypes;
	int			nargs;
	Oid			fn;
	FmgrInfo	flinfo;
	FunctionCallInfo inner;
	Oid			save_user;
	int			save_context;
	int			context;
	int			guc_level;
	Datum		result;
	int			i;

	(void) get_func_signature(self, &argtypes, &nargs);
	if (leading >= 0)
		nargs = Min(nargs, leading);
	fn = LookupFuncName(list_make2(makeString(schema),
								   makeString(pstrdup(internal))),
						nargs, argtypes, false);
	fmgr_info(fn, &flinfo);
	inner = palloc0(SizeForFunctionCallInfo(nargs));
	InitFunctionCallInfoData(*inner, &flinfo, nargs, fcinfo->fncollation,
							 NULL, fcinfo->resultinfo);
	for (i = 0; i < nargs; i++)
		inner->args[i] = fcinfo->args[i];

	GetUserIdAndSecContext(&save_user, &save_context);
	context = save_context | SECURITY_LOCAL_USERID_CHANGE |
		SECURITY_RESTRICTED_OPERATION;
	SetUserIdAndSecContext(owner, context);
	guc_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);

	result = FunctionCallInvoke(inner);

	/* undo every setting changed inside, also by the owner's code */
	AtEOXact_GUC(false, guc_level);
	SetUserIdAndSecContext(save_user, save_context);
	*isnull = inner->isnull;
	return result;
}

/* The same, with all the caller's arguments */
static Datum
call_as_owner(FunctionCallInfo fcinfo, const char *internal, Oid owner,
			  bool *isnull)
{
	return call_leading_as_owner(fcinfo, internal, -1, owner, isnull);
}

/* Call "internal" as the model's owner, restricted, and return its result. */
static Datum
call_as_model_owner(FunctionCallInfo fcinfo, const char *internal)
{
	Oid			owner = model_owner(fcinfo);

	return call_as_owner(fcinfo, internal, owner, &fcinfo->isnull);
}

/*
 * sales_kafka.create_sales_model(model_schema, partitioned, time_zone): a
 * schema that does not exist yet is made first, as the caller, who then
 * owns it (if another role makes one of that name meanwhile, CREATE SCHEMA
 * fails); an existing one only for roles with its owner's privileges.
 */
Datum
sales_kafka_create_sales_model(PG_FUNCTION_ARGS)
{
	char	   *schema = model_schema_arg(fcinfo);
	Oid			nsp = get_namespace_oid(schema, true);
	Oid			owner;
	Datum		result;

	if (!OidIsValid(nsp))
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute(psprintf("CREATE SCHEMA %s", quote_identifier(schema)),
						false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not create schema \"%s\"", schema);
		SPI_finish();
		nsp = get_namespace_oid(schema, false);
	}
	owner = schema_owner_checked(fcinfo, schema, nsp);
	result = call_as_owner(fcinfo, "_create_sales_model", owner, &fcinfo->isnull);
	/* its rollups are kept current from now on (rollup_worker.c) */
	sk_rollup_want(MyDatabaseId);
	return result;
}

/* sales_kafka.create_sales_partitions(model_schema, from_day, to_day) */
Datum
sales_kafka_create_sales_partitions(PG_FUNCTION_ARGS)
{
	return call_as_model_owner(fcinfo, "_create_sales_partitions");
}

/* sales_kafka.refresh_rollups(model_schema) */
Datum
sales_kafka_refresh_rollups(PG_FUNCTION_ARGS)
{
	return call_as_model_owner(fcinfo, "_refresh_rollups");
}

/* sales_kafka.rebuild_rollups(model_schema) */
Datum
sales_kafka_rebuild_rollups(PG_FUNCTION_ARGS)
{
	return call_as_model_owner(fcinfo, "_rebuild_rollups");
}

/*
 * sales_kafka.refresh_kpis(model_schema): the rollups, then the time of it
 * in kpi_state (no KPI view needs a refresh of its own).
 */
Datum
sales_kafka_refresh_kpis(PG_FUNCTION_ARGS)
{
	Oid			owner = model_owner(fcinfo);
	Datum		rows;
	bool		rows_null;
	bool		isnull;

	rows = call_as_owner(fcinfo, "_refresh_rollups", owner, &rows_null);
	(void) call_as_owner(fcinfo, "_note_views_refreshed", owner, &isnull);
	fcinfo->isnull = rows_null;
	return rows;
}

/*
 * sales_kafka.create_sales_pipelines(model_schema, shape, server, topic,
 * start): the foreign tables and the pipelines belong to the model's
 * owner, whose rights the pipelines' workers use.
 */
Datum
sales_kafka_create_sales_pipelines(PG_FUNCTION_ARGS)
{
	return call_as_model_owner(fcinfo, "_create_sales_pipelines");
}

/*
 * sales_kafka.upgrade_sales_model(model_schema): what it adds to the model
 * belongs to the owner, as what create_sales_model makes does.
 */
Datum
sales_kafka_upgrade_sales_model(PG_FUNCTION_ARGS)
{
	Datum		result = call_as_model_owner(fcinfo, "_upgrade_sales_model");

	/* a model of 1.2 had no rollup worker */
	sk_rollup_want(MyDatabaseId);
	return result;
}

/*
 * sales_kafka.add_metric_summary(model_schema, bucket_width): the view it
 * makes belongs to the owner, and its first summaries are the owner's
 * rows, as refresh_rollups writes them.
 */
Datum
sales_kafka_add_metric_summary(PG_FUNCTION_ARGS)
{
	return call_as_model_owner(fcinfo, "_add_metric_summary");
}

/* sales_kafka.drop_metric_summary(model_schema, bucket_width) */
Datum
sales_kafka_drop_metric_summary(PG_FUNCTION_ARGS)
{
	return call_as_model_owner(fcinfo, "_drop_metric_summary");
}

/*
 * sales_kafka.drop_old_partitions(model_schema, keep, detach_only): the
 * rollups must hold every line of the months it detaches, which then leave
 * the order lines but stay in the sums.  So the rollups take every line
 * written so far (refresh_rollups' body, which locks the model's kpi_state
 * row after it has waited for the writers of the order lines, as every
 * refresh and the rollup worker do); then the
 * order lines are locked against writers (SHARE ROW EXCLUSIVE, also
 * against another retention run; readers go on) and the rollups take what
 * was committed meanwhile, with no writer left to wait for; only then are
 * the months detached, and the body checks again that none of their lines
 * is missing from the rollups.  The caller needs the model owner's
 * privileges, and, as refresh_rollups, READ COMMITTED.
 */
Datum
sales_kafka_drop_old_partitions(PG_FUNCTION_ARGS)
{
	Oid			owner = model_owner(fcinfo);
	Oid			nsp = get_namespace_oid(model_schema_arg(fcinfo), false);
	Oid			lines = get_relname_relid("order_lines", nsp);
	bool		isnull;

	if (!OidIsValid(lines))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("schema \"%s\" has no sales model", model_schema_arg(fcinfo)),
				 errhint("Create one with sales_kafka.create_sales_model().")));
	(void) call_leading_as_owner(fcinfo, "_refresh_rollups", 1, owner, &isnull);
	LockRelationOid(lines, ShareRowExclusiveLock);
	(void) call_leading_as_owner(fcinfo, "_refresh_rollups", 1, owner, &isnull);
	return call_as_owner(fcinfo, "_drop_old_partitions", owner, &fcinfo->isnull);
}

/*
 * sales_kafka._wait_for_writers(regclass): returns once every transaction
 * that was writing into the table, or into one of its partitions, when the
 * call began has committed or rolled back.
 */
Datum
sk_wait_for_writers(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	List	   *rels;
	List	   *holders = NIL;
	VirtualTransactionId *others;
	int			nothers;
	ListCell   *lc;

	/* privileges first: a lock, even a weak one, can queue behind others */
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", get_rel_name(relid))));
	/* the caller reads the table next anyway: this lock costs nothing */
	LockRelationOid(relid, AccessShareLock);
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));

	/*
	 * The transactions holding a lock that conflicts with SHARE on the table
	 * or a partition, as CREATE INDEX CONCURRENTLY waits for them; but not
	 * VACUUM (by hand or autovacuum), whose lock conflicts too although it
	 * writes no line: an autovacuum of a big table would hold a refresh,
	 * and the rollup worker, for its whole run.  A transaction that ends
	 * between the two lists is not waited for, rightly.
	 */
	rels = find_all_inheritors(relid, AccessShareLock, NULL);
	foreach(lc, rels)
	{
		LOCKTAG		tag;
		VirtualTransactionId *holder;

		SET_LOCKTAG_RELATION(tag, MyDatabaseId, lfirst_oid(lc));
		for (holder = GetLockConflicts(&tag, ShareLock, NULL);
			 VirtualTransactionIdIsValid(*holder); holder++)
		{
			VirtualTransactionId *copy = palloc(sizeof(VirtualTransactionId));

			*copy = *holder;
			holders = lappend(holders, copy);
		}
	}
	others = GetCurrentVirtualXIDs(InvalidTransactionId, false, false,
								   PROC_IS_AUTOVACUUM | PROC_IN_VACUUM,
								   &nothers);
	foreach(lc, holders)
	{
		VirtualTransactionId *vxid = lfirst(lc);

		for (int i = 0; i < nothers; i++)
		{
			if (VirtualTransactionIdEquals(*vxid, others[i]))
			{
				VirtualXactLock(*vxid, true);
				break;
			}
		}
	}

	PG_RETURN_VOID();
}
