/*-------------------------------------------------------------------------
 *
 * pipeline_api.c
 *		The SQL functions that manage pipelines, and reading the catalog.
 *
 * The catalog tables (sales_kafka.pipeline, pipeline_offset, dead_letter)
 * belong to the extension's owner; of them PUBLIC may only read, and
 * delete, the dead letters that row security shows it.  These functions
 * check the caller's rights themselves, then read and write the catalog as
 * the bootstrap superuser: anyone who may read the foreign table and write
 * the target may run a pipeline, and only its owner (or a role with the
 * owner's rights) may change it.  Pipeline names are unique per owner; a
 * name means the caller's own pipeline, or the one pipeline of that name
 * among the roles whose rights the caller has.  Everything else refers to
 * a pipeline by its id.
 *
 * Workers are told to start and stop through shared memory; the catalog's
 * "enabled" flag is what makes a pipeline come back after a restart.
 * start_pipeline() registers the workers when its transaction commits, so
 * they see what it decided; before it changes anything, it refuses a
 * pipeline whose workers would not find enough free slots, or would give
 * their owner more than sales_kafka.max_workers_per_owner (superusers are
 * exempt).  Each function changes (and so locks) the
 * pipeline's row before it stops the workers: a worker that has not read
 * the row yet (one the launcher is restarting) then reads what the
 * transaction commits, and no worker waits for the lock while the
 * function waits for the worker, since workers take the row's lock
 * without waiting and give up when they are told to stop.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "sales_kafka.h"

static void forget_pending_start(int64 id);

/* how long stop_pipeline() waits for the workers' current batch */
#define SK_STOP_TIMEOUT_MS 60000

/*
 * Run as the bootstrap superuser until sk_catalog_end(): the catalog tables
 * grant nothing to anyone else.  The search path is pg_catalog alone, so
 * that no function or operator of the caller's schemas can run as
 * superuser in our statements.  Throws first if the schema our statements
 * name, sales_kafka, is not the extension's or not a superuser's (see
 * extension_schema.c).
 */
void
sk_catalog_begin(SkCatalogScope *scope)
{
	sk_extension_schema_check();
	GetUserIdAndSecContext(&scope->user, &scope->context);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   scope->context | SECURITY_LOCAL_USERID_CHANGE);
	scope->guc_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
}

void
sk_catalog_end(SkCatalogScope *scope)
{
	AtEOXact_GUC(true, scope->guc_level);
	SetUserIdAndSecContext(scope->user, scope->context);
}

/* Run one catalog statement; returns SPI_processed.  Needs SPI_connect(). */
static uint64
catalog_exec(const char *sql, int nargs, Oid *types, Datum *values,
			 const char *nulls, int expected)
{
	int			ret = SPI_execute_with_args(sql, nargs, types, values, nulls,
											false, 0);

	if (ret != expected)
		elog(ERROR, "catalog statement failed: %s", SPI_result_code_string(ret));
	return SPI_processed;
}

/*
 * The length of a flush interval in microseconds, as create_pipeline()
 * checks it, the catalog's CHECK constraint enforces it and the workers
 * wait for it: the time of an interval between 0 and 1 hour that has no
 * months or days; -1 for any other interval.  An interval with months or
 * days has no one length (comparing intervals counts a month as 30 days,
 * extract(epoch) a year as 365.25), so it is refused rather than read in
 * one of those ways.  Never throws.
 */
static int64
flush_interval_us(const Interval *flush)
{
	if (flush->month != 0 || flush->day != 0 ||
		flush->time < 0 || flush->time > USECS_PER_HOUR)
		return -1;
	return flush->time;
}

/*
 * Read the pipeline rows that "cond" selects ($1 of type argtype is arg),
 * with "lock" appended (a locking clause, or ""), as a list of SkPipeline
 * in CurrentMemoryContext.
 */
static List *
pipeline_rows(const char *cond, Oid argtype, Datum arg, const char *lock)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *result = NIL;
	SkCatalogScope scope;
	uint64		i;

	sk_catalog_begin(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* nothing here may throw: see flush_interval_us() */
	catalog_exec(psprintf("SELECT id, name, source::oid, target::oid, mode = 'upsert', batch_size,"
						  " flush_interval, start_at,"
						  " parallelism, owner::oid, enabled, failure IS NOT NULL"
						  " FROM sales_kafka.pipeline WHERE %s ORDER BY id%s",
						  cond, lock),
				 1, &argtype, &arg, NULL, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(cxt);
		SkPipeline *p = palloc0(sizeof(SkPipeline));
		int64		flush_us;

		p->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		p->name = SPI_getvalue(tup, desc, 2);
		p->source = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
		p->target = DatumGetObjectId(SPI_getbinval(tup, desc, 4, &isnull));
		p->upsert = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		p->batch_size = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
		flush_us = flush_interval_us(DatumGetIntervalP(SPI_getbinval(tup, desc, 7,
																	 &isnull)));
		if (flush_us < 0)
			elog(ERROR, "pipeline " INT64_FORMAT " has an invalid flush_interval",
				 p->id);
		p->flush_ms = (int) ((flush_us + 500) / 1000);
		p->start_at = SPI_getvalue(tup, desc, 8);
		p->parallelism = DatumGetInt32(SPI_getbinval(tup, desc, 9, &isnull));
		p->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 10, &isnull));
		p->enabled = DatumGetBool(SPI_getbinval(tup, desc, 11, &isnull));
		p->failed = DatumGetBool(SPI_getbinval(tup, desc, 12, &isnull));
		result = lappend(result, p);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	sk_catalog_end(&scope);
	return result;
}

/*
 * The pipeline of this id, in CurrentMemoryContext; NULL if there is none.
 * Needs a transaction.
 */
SkPipeline *
sk_pipeline_load(int64 id)
{
	List	   *rows = pipeline_rows("id = $1", INT8OID, Int64GetDatum(id), "");

	return rows != NIL ? linitial(rows) : NULL;
}

/*
 * The same, locked FOR SHARE (or FOR UPDATE) until this transaction ends.
 * Throws ERRCODE_LOCK_NOT_AVAILABLE at once while another transaction
 * holds a conflicting lock: a worker must never wait for one, which may
 * itself be waiting for that worker to stop (see pipeline_worker.c).
 */
SkPipeline *
sk_pipeline_lock(int64 id, bool for_update)
{
	List	   *rows = pipeline_rows("id = $1", INT8OID, Int64GetDatum(id),
									 for_update ? " FOR UPDATE NOWAIT" :
									 " FOR SHARE NOWAIT");

	return rows != NIL ? linitial(rows) : NULL;
}

/*
 * Throws if the pipeline's owner was dropped since: its rights are gone,
 * and nothing may run with them.  Needs a transaction.
 */
void
sk_pipeline_check_owner(SkPipeline *p)
{
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(p->owner)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the owner of pipeline \"%s\" no longer exists", p->name),
				 errdetail("Role %u, whose rights the pipeline used, was dropped.",
						   p->owner),
				 errhint("Drop the pipeline and create it again as another role.")));
}

/*
 * Run one catalog statement as the bootstrap superuser, in an SPI
 * connection of its own; returns how many rows it processed.
 */
uint64
sk_catalog_exec(const char *sql, int nargs, Oid *types, Datum *values,
				const char *nulls, int expected)
{
	SkCatalogScope scope;
	uint64		processed;

	sk_catalog_begin(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	processed = catalog_exec(sql, nargs, types, values, nulls, expected);
	SPI_finish();
	sk_catalog_end(&scope);
	return processed;
}

/* Run a catalog statement about one pipeline ($1 = its id). */
static void
pipeline_exec(const char *sql, SkPipeline *p, int nargs, Oid *types,
			  Datum *values, int expected)
{
	Oid			alltypes[5] = {INT8OID};
	Datum		allvalues[5] = {Int64GetDatum(p->id)};
	int			i;

	Assert(nargs < 5);
	for (i = 0; i < nargs; i++)
	{
		alltypes[i + 1] = types[i];
		allvalues[i + 1] = values[i];
	}
	(void) sk_catalog_exec(sql, nargs + 1, alltypes, allvalues, NULL, expected);
}

/*
 * The pipeline a name means to the current user, who must have the rights
 * of its owner: names are unique per owner, so the one the user owns, or
 * else the only one among those of roles whose rights the user has.  Of
 * the pipelines of that name it reads only ids and owners, and then the
 * one it chose, so that nothing in a row of a role the user cannot act for
 * can make the lookup fail.
 */
static SkPipeline *
pipeline_for_owner(text *name_text)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *name = text_to_cstring(name_text);
	Oid			user = GetUserId();
	Oid			argtype = TEXTOID;
	Datum		arg = PointerGetDatum(name_text);
	SkCatalogScope scope;
	int64	   *ids;
	Oid		   *owners;
	int			nrows;
	int			nmine = 0;
	int			chosen = -1;
	int			i;
	SkPipeline *p;

	sk_catalog_begin(&scope);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	nrows = (int) catalog_exec("SELECT id, owner::oid FROM sales_kafka.pipeline"
							   " WHERE name = $1 ORDER BY id",
							   1, &argtype, &arg, NULL, SPI_OK_SELECT);
	ids = MemoryContextAlloc(cxt, sizeof(int64) * Max(nrows, 1));
	owners = MemoryContextAlloc(cxt, sizeof(Oid) * Max(nrows, 1));
	for (i = 0; i < nrows; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull;

		ids[i] = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		owners[i] = DatumGetObjectId(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2,
												   &isnull));
	}
	SPI_finish();
	sk_catalog_end(&scope);

	/* its own first, else the only one of the roles whose rights it has */
	for (i = 0; i < nrows && chosen < 0; i++)
		if (owners[i] == user)
			chosen = i;
	if (chosen < 0)
		for (i = 0; i < nrows; i++)
			if (has_privs_of_role(user, owners[i]))
			{
				if (nmine == 0)
					chosen = i;
				nmine++;
			}
	if (nrows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("pipeline \"%s\" does not exist", name)));
	if (chosen < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of pipeline \"%s\"", name)));
	if (nmine > 1)
	{
		StringInfoData list;

		initStringInfo(&list);
		for (i = 0; i < nrows; i++)
			if (has_privs_of_role(user, owners[i]))
				appendStringInfo(&list, "%s\"%s\"", list.len > 0 ? ", " : "",
								 GetUserNameFromId(owners[i], true));
		ereport(ERROR,
				(errcode(ERRCODE_AMBIGUOUS_PARAMETER),
				 errmsg("pipeline name \"%s\" is ambiguous", name),
				 errdetail("Roles whose rights you have own pipelines of that name: %s.",
						   list.data),
				 errhint("SET ROLE to the owner of the pipeline you mean, then call the function again.")));
	}
	p = sk_pipeline_load(ids[chosen]);
	if (p == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("pipeline \"%s\" does not exist", name)));
	return p;
}

static void
require_workers(void)
{
	if (!sk_shmem_ready())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pipelines can only run when sales_kafka is in shared_preload_libraries"),
				 errhint("Add sales_kafka to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * Check a foreign table and a target as a pipeline would use them, with
 * the owner's privileges: those first, before anything locks either table.
 */
static SkMapping *
check_source_and_target(const char *name, Oid source, Oid target, bool upsert,
						Oid owner)
{
	SkMapping  *map;
	SkSink	   *sink;

	sk_sink_check_privileges(source, target, upsert, owner, name);
	if (get_rel_relkind(source) != RELKIND_FOREIGN_TABLE ||
		!sk_is_kafka_server(GetForeignServer(GetForeignTable(source)->serverid)))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a foreign table of a sales_kafka server",
						get_rel_name(source)),
				 errdetail("A pipeline reads a topic through a sales_kafka foreign table.")));
	map = sk_mapping_load(source);
	sink = sk_sink_open(map, target, upsert, owner, name, 0);
	sk_sink_close(sink);
	return map;
}

/*
 * Stop the workers of a pipeline: they finish their current batch.  The
 * caller has changed the pipeline's row already (see the file header).
 */
static void
stop_workers(SkPipeline *p)
{
	forget_pending_start(p->id);
	if (!sk_shmem_ready())
		return;
	if (!sk_pipeline_stop(MyDatabaseId, p->id, SK_STOP_TIMEOUT_MS))
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("the workers of pipeline \"%s\" did not stop within %d seconds",
						p->name, SK_STOP_TIMEOUT_MS / 1000)));
	sk_pipeline_forget(MyDatabaseId, p->id);
}

/* Pipelines whose workers start when this transaction commits */
typedef struct SkPendingStart
{
	int64		id;
	char		name[NAMEDATALEN];
	int			parallelism;
	Oid			owner;
	bool		owner_exempt;	/* a superuser */
} SkPendingStart;

static List *pending_starts = NIL;
static bool xact_callback_registered = false;

static void
forget_pending_start(int64 id)
{
	ListCell   *lc;

	foreach(lc, pending_starts)
	{
		SkPendingStart *ps = lfirst(lc);

		if (ps->id == id)
		{
			pending_starts = foreach_delete_current(pending_starts, lc);
			pfree(ps);
		}
	}
}

/*
 * At commit, register the workers of the pipelines started in the
 * transaction: before, they could not see its changes.  This cannot fail
 * the commit any more, so a lack of worker slots is a WARNING.
 */
static void
pipeline_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT)
		return;
	foreach(lc, pending_starts)
	{
		SkPendingStart *ps = lfirst(lc);

		if (event != XACT_EVENT_COMMIT)
			continue;
		/* workers that failed before start afresh, without backoff */
		sk_pipeline_forget(MyDatabaseId, ps->id);
		if (!sk_pipeline_start_workers(MyDatabaseId, ps->id, ps->name,
									   ps->parallelism, ps->owner,
									   ps->owner_exempt))
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not start the workers of pipeline \"%s\"", ps->name),
					 errhint("Raise max_worker_processes (and sales_kafka.max_workers), then call start_pipeline again.")));
	}
	list_free_deep(pending_starts);
	pending_starts = NIL;
}

static void
start_workers(SkPipeline *p)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	SkPendingStart *ps = palloc0(sizeof(SkPendingStart));

	require_workers();
	if (!xact_callback_registered)
	{
		RegisterXactCallback(pipeline_xact_callback, NULL);
		xact_callback_registered = true;
	}
	forget_pending_start(p->id);
	ps->id = p->id;
	strlcpy(ps->name, p->name, NAMEDATALEN);
	ps->parallelism = p->parallelism;
	ps->owner = p->owner;
	ps->owner_exempt = superuser_arg(p->owner);
	pending_starts = lappend(pending_starts, ps);
	MemoryContextSwitchTo(old);
}

/*
 * Throws unless the workers of a pipeline can start: unless its owner is a
 * superuser, the owner's workers in every database stay within
 * sales_kafka.max_workers_per_owner, and as many slots as it has workers
 * are free.  Its own workers, which start_pipeline() replaces, count as
 * stopped, and those of pipelines started earlier in the transaction as
 * running.  Two transactions may both see the last slots free: the
 * workers that then find none wait for one (see pipeline_shmem.c).
 */
static void
check_worker_room(SkPipeline *p)
{
	int			free_slots;
	int			owner_workers;
	ListCell   *lc;

	sk_slots_room(MyDatabaseId, p->id, p->owner, &free_slots, &owner_workers);
	foreach(lc, pending_starts)
	{
		SkPendingStart *ps = lfirst(lc);

		if (ps->id == p->id)
			continue;
		free_slots -= ps->parallelism;
		if (ps->owner == p->owner)
			owner_workers += ps->parallelism;
	}
	if (!superuser_arg(p->owner) &&
		owner_workers + p->parallelism > sk_max_workers_per_owner)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many pipeline workers for role \"%s\"",
						GetUserNameFromId(p->owner, false)),
				 errdetail("Pipeline \"%s\" needs %d workers and the role's pipelines run %d; sales_kafka.max_workers_per_owner allows %d.",
						   p->name, p->parallelism, owner_workers,
						   sk_max_workers_per_owner),
				 errhint("Stop another pipeline of the role, or ask a superuser to raise sales_kafka.max_workers_per_owner.")));
	if (free_slots < p->parallelism)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("not enough free pipeline worker slots for pipeline \"%s\"",
						p->name),
				 errdetail("The pipeline needs %d workers, and %d of the %d slots of sales_kafka.max_workers are free.",
						   p->parallelism, Max(free_slots, 0),
						   sk_max_pipeline_workers),
				 errhint("Stop another pipeline, or raise sales_kafka.max_workers (which takes a server restart).")));
}

/*
 * create_pipeline(name, source, target, mode, batch_size, flush_interval,
 *				   start_at, parallelism)
 */
PG_FUNCTION_INFO_V1(sales_kafka_create_pipeline);
Datum
sales_kafka_create_pipeline(PG_FUNCTION_ARGS)
{
	char	   *name;
	Oid			source = PG_GETARG_OID(1);
	Oid			target = PG_GETARG_OID(2);
	char	   *mode;
	int32		batch_size = PG_GETARG_INT32(4);
	Interval   *flush = PG_GETARG_INTERVAL_P(5);
	char	   *start_at;
	int32		parallelism = PG_GETARG_INT32(7);
	Oid			types[8] = {TEXTOID, OIDOID, OIDOID, TEXTOID, INT4OID,
	INTERVALOID, TEXTOID, INT4OID};
	Datum		values[8];
	SkCatalogScope scope;

	for (int i = 0; i < 8; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the arguments of create_pipeline() must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	mode = text_to_cstring(PG_GETARG_TEXT_PP(3));
	start_at = text_to_cstring(PG_GETARG_TEXT_PP(6));

	if (name[0] == '\0' || strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid pipeline name \"%s\"", name),
				 errdetail("A pipeline name has 1 to %d bytes.", NAMEDATALEN - 1)));
	if (strcmp(mode, "append") != 0 && strcmp(mode, "upsert") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid pipeline mode \"%s\"", mode),
				 errhint("Valid modes are \"append\" and \"upsert\".")));
	if (batch_size < 1 || batch_size > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be between 1 and 1000000")));
	if (flush_interval_us(flush) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("flush_interval must be between 0 and 1 hour"),
				 flush->month != 0 || flush->day != 0 ?
				 errdetail("An interval with days, months or years has no fixed length: give hours, minutes and seconds.") : 0));
	if (parallelism < 1 || parallelism > sk_max_pipeline_workers)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parallelism must be between 1 and sales_kafka.max_workers (%d)",
						sk_max_pipeline_workers)));
	if (strcmp(start_at, "earliest") != 0 && strcmp(start_at, "latest") != 0)
	{
		/* a point in time, stored in a form that does not depend on settings */
		Datum		ts = DirectFunctionCall3(timestamptz_in, CStringGetDatum(start_at),
											 ObjectIdGetDatum(InvalidOid),
											 Int32GetDatum(-1));

		start_at = psprintf(INT64_FORMAT,
							sk_timestamp_to_ms(DatumGetTimestampTz(ts)));
	}

	check_source_and_target(name, source, target, strcmp(mode, "upsert") == 0,
							GetUserId());

	values[0] = CStringGetTextDatum(name);
	values[1] = ObjectIdGetDatum(source);
	values[2] = ObjectIdGetDatum(target);
	values[3] = CStringGetTextDatum(mode);
	values[4] = Int32GetDatum(batch_size);
	values[5] = IntervalPGetDatum(flush);
	values[6] = CStringGetTextDatum(start_at);
	values[7] = Int32GetDatum(parallelism);
	{
		Oid			owner = GetUserId();

		sk_catalog_begin(&scope);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		/* names are unique per owner */
		catalog_exec(psprintf("SELECT 1 FROM sales_kafka.pipeline WHERE name = $1"
							  " AND owner = %u", owner),
					 1, types, values, NULL, SPI_OK_SELECT);
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("pipeline \"%s\" already exists", name),
					 errdetail("Role \"%s\" owns a pipeline of that name.",
							   GetUserNameFromId(owner, false))));
		catalog_exec(psprintf("INSERT INTO sales_kafka.pipeline (name, source, target, mode,"
							  " batch_size, flush_interval, start_at, parallelism, owner)"
							  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, %u)", owner),
					 8, types, values, NULL, SPI_OK_INSERT);
		SPI_finish();
		sk_catalog_end(&scope);
	}
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(sales_kafka_start_pipeline);
Datum
sales_kafka_start_pipeline(PG_FUNCTION_ARGS)
{
	SkPipeline *p;

	/* first: without the preload, nothing else matters */
	require_workers();
	p = pipeline_for_owner(PG_GETARG_TEXT_PP(0));
	sk_pipeline_check_owner(p);
	/* a failed pipeline may have been fixed: check again before starting */
	check_source_and_target(p->name, p->source, p->target, p->upsert, p->owner);
	/* before anything changes: the workers stop at once, whatever follows */
	check_worker_room(p);
	pipeline_exec("UPDATE sales_kafka.pipeline SET (enabled, failure, failed_at) ="
				  " (true, NULL, NULL) WHERE id = $1",
				  p, 0, NULL, NULL, SPI_OK_UPDATE);
	/* workers that are running or restarting stop; new ones start at commit */
	stop_workers(p);
	start_workers(p);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(sales_kafka_stop_pipeline);
Datum
sales_kafka_stop_pipeline(PG_FUNCTION_ARGS)
{
	SkPipeline *p = pipeline_for_owner(PG_GETARG_TEXT_PP(0));

	pipeline_exec("UPDATE sales_kafka.pipeline SET enabled = false WHERE id = $1",
				  p, 0, NULL, NULL, SPI_OK_UPDATE);
	stop_workers(p);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(sales_kafka_drop_pipeline);
Datum
sales_kafka_drop_pipeline(PG_FUNCTION_ARGS)
{
	SkPipeline *p = pipeline_for_owner(PG_GETARG_TEXT_PP(0));

	pipeline_exec("DELETE FROM sales_kafka.pipeline WHERE id = $1",
				  p, 0, NULL, NULL, SPI_OK_DELETE);
	/* the offsets once the workers are gone: their last batch writes them */
	stop_workers(p);
	pipeline_exec("DELETE FROM sales_kafka.pipeline_offset WHERE pipeline_id = $1",
				  p, 0, NULL, NULL, SPI_OK_DELETE);
	PG_RETURN_VOID();
}

/* Partition offsets to reset a pipeline to, checked by check_offsets() */
typedef struct SkResetOffsets
{
	char	   *topic;
	int			n;
	Datum	   *partitions;		/* int4 */
	Datum	   *offsets;		/* int8 */
	Datum	   *highs;			/* int8: the partition's high watermark */
} SkResetOffsets;

/*
 * A whole number from 0 to max written as the len bytes at s, in decimal
 * digits without sign or leading zeros; false for anything else.
 */
static bool
whole_number(const char *s, int len, int64 max, int64 *result)
{
	int64		v = 0;
	int			i;

	if (len == 0 || (len > 1 && s[0] == '0'))
		return false;
	for (i = 0; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9' || v > (max - (s[i] - '0')) / 10)
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*result = v;
	return true;
}

/*
 * The offsets of a JSON object {"partition": offset, ...}, checked against
 * the pipeline's topic: each partition must exist and each offset be a
 * whole number from 0 to the partition's high watermark (librdkafka would
 * read from the earliest offset instead of one beyond it, and start over).
 * Asks Kafka for the watermarks as the current user, whom the caller has
 * checked already.  Throws on anything else.
 */
static SkResetOffsets *
check_offsets(SkPipeline *p, Jsonb *offsets)
{
	SkMapping  *map = sk_mapping_load(p->source);
	SkResetOffsets *r = palloc0(sizeof(SkResetOffsets));
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	SkKafka    *kc;
	SkWatermark *marks;
	int			nmarks;
	int32		part = -1;
	int			count;

	if (!JB_ROOT_IS_OBJECT(offsets) || JB_ROOT_COUNT(offsets) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("offsets must be a JSON object of partitions and offsets, such as '{\"0\": 42}'")));
	count = JB_ROOT_COUNT(offsets);
	r->topic = map->topic;
	r->partitions = palloc(sizeof(Datum) * count);
	r->offsets = palloc(sizeof(Datum) * count);
	r->highs = palloc(sizeof(Datum) * count);

	kc = sk_kafka_connect(map->serverid, GetUserId(), RD_KAFKA_CONSUMER, NIL, NIL);
	marks = sk_kafka_watermarks(kc, map->topic, &nmarks);
	sk_kafka_close(kc);

	it = JsonbIteratorInit(&offsets->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			int64		value;

			if (!whole_number(v.val.string.val, v.val.string.len, PG_INT32_MAX, &value))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid partition \"%s\" in offsets",
								pnstrdup(v.val.string.val, v.val.string.len)),
						 errdetail("Each key is a partition number, such as \"0\".")));
			part = (int32) value;
		}
		else if (tok == WJB_VALUE)
		{
			char	   *text = v.type == jbvNumeric ?
				DatumGetCString(DirectFunctionCall1(numeric_out,
													NumericGetDatum(v.val.numeric))) : NULL;
			int64		offset;
			int			i;

			if (text == NULL || !whole_number(text, strlen(text), PG_INT64_MAX, &offset))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid offset for partition %d: %s", part,
								text != NULL ? text : "not a number"),
						 errdetail("An offset is a whole number from 0 on.")));
			for (i = 0; i < nmarks && marks[i].partition != part; i++)
				;
			if (i == nmarks)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("partition %d of topic \"%s\" does not exist",
								part, map->topic),
						 errdetail("The topic has %d partitions.", nmarks)));
			if (offset > marks[i].high)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("offset " INT64_FORMAT " is beyond the end of partition %d of topic \"%s\"",
								offset, part, map->topic),
						 errdetail("The next message of the partition gets offset " INT64_FORMAT ".",
								   marks[i].high)));
			r->partitions[r->n] = Int32GetDatum(part);
			r->offsets[r->n] = Int64GetDatum(offset);
			r->highs[r->n] = Int64GetDatum(marks[i].high);
			r->n++;
		}
	}
	return r;
}

/*
 * Reset a pipeline to start_at (no stored offsets: as a new pipeline) or
 * to the given offsets of some partitions, restarting its workers if it is
 * enabled.
 */
static void
reset_pipeline(SkPipeline *p, const char *start_at, SkResetOffsets *offsets)
{
	Oid			types[4] = {TEXTOID, INT4ARRAYOID, INT8ARRAYOID, INT8ARRAYOID};
	Datum		values[4];

	/* the row first (see the file header), the offsets once no worker runs */
	if (offsets == NULL)
	{
		values[0] = CStringGetTextDatum(start_at);
		pipeline_exec("UPDATE sales_kafka.pipeline SET start_at = $2 WHERE id = $1",
					  p, 1, types, values, SPI_OK_UPDATE);
		stop_workers(p);
		pipeline_exec("DELETE FROM sales_kafka.pipeline_offset WHERE pipeline_id = $1",
					  p, 0, NULL, NULL, SPI_OK_DELETE);
	}
	else
	{
		pipeline_exec("UPDATE sales_kafka.pipeline SET start_at = start_at WHERE id = $1",
					  p, 0, NULL, NULL, SPI_OK_UPDATE);
		stop_workers(p);
		values[0] = CStringGetTextDatum(offsets->topic);
		values[1] = PointerGetDatum(construct_array(offsets->partitions, offsets->n,
													INT4OID, 4, true, TYPALIGN_INT));
		values[2] = PointerGetDatum(construct_array(offsets->offsets, offsets->n, INT8OID,
													8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[3] = PointerGetDatum(construct_array(offsets->highs, offsets->n, INT8OID,
													8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		pipeline_exec("INSERT INTO sales_kafka.pipeline_offset AS o"
					  " (pipeline_id, topic, partition, next_offset, high_watermark)"
					  " SELECT $1, $2, u.partition, u.next, u.high"
					  " FROM unnest($3, $4, $5) AS u(partition, next, high)"
					  " ON CONFLICT (pipeline_id, topic, partition) DO UPDATE"
					  " SET next_offset = EXCLUDED.next_offset,"
					  " high_watermark = EXCLUDED.high_watermark, updated_at = now()",
					  p, 4, types, values, SPI_OK_INSERT);
	}
	if (p->enabled)
		start_workers(p);
}

/* parse_time()'s argument and result, for sk_try_subtransaction() */
typedef struct TimeWork
{
	char	   *text;
	TimestampTz result;
} TimeWork;

static void
parse_time(void *arg)
{
	TimeWork   *work = (TimeWork *) arg;

	work->result = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
														   CStringGetDatum(work->text),
														   ObjectIdGetDatum(InvalidOid),
														   Int32GetDatum(-1)));
}

/*
 * reset_pipeline(name, to text): 'earliest', 'latest', a JSON object of
 * partition offsets or a timestamptz, as text: an untyped literal goes to
 * this form whatever it holds.
 */
PG_FUNCTION_INFO_V1(sales_kafka_reset_pipeline);
Datum
sales_kafka_reset_pipeline(PG_FUNCTION_ARGS)
{
	SkPipeline *p = pipeline_for_owner(PG_GETARG_TEXT_PP(0));
	char	   *to = text_to_cstring(PG_GETARG_TEXT_PP(1));
	const char *first = to + strspn(to, " \t\n\r");
	TimeWork	work = {to, 0};
	ErrorData  *edata;

	if (strcmp(to, "earliest") == 0 || strcmp(to, "latest") == 0)
	{
		reset_pipeline(p, to, NULL);
		PG_RETURN_VOID();
	}
	if (*first == '{')
	{
		Jsonb	   *offsets = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
																 CStringGetDatum(to)));

		reset_pipeline(p, NULL, check_offsets(p, offsets));
		PG_RETURN_VOID();
	}
	edata = sk_try_subtransaction(parse_time, &work);
	if (edata != NULL)
	{
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			ReThrowError(edata);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid reset position \"%s\"", to),
				 errdetail_internal("%s", edata->message),
				 errhint("Reset to 'earliest', 'latest', a time, or a JSON object of partition offsets such as '{\"0\": 42}'.")));
	}
	reset_pipeline(p, psprintf(INT64_FORMAT, sk_timestamp_to_ms(work.result)), NULL);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(sales_kafka_reset_pipeline_time);
Datum
sales_kafka_reset_pipeline_time(PG_FUNCTION_ARGS)
{
	SkPipeline *p = pipeline_for_owner(PG_GETARG_TEXT_PP(0));
	TimestampTz ts = PG_GETARG_TIMESTAMPTZ(1);

	reset_pipeline(p, psprintf(INT64_FORMAT, sk_timestamp_to_ms(ts)), NULL);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(sales_kafka_reset_pipeline_offsets);
Datum
sales_kafka_reset_pipeline_offsets(PG_FUNCTION_ARGS)
{
	SkPipeline *p = pipeline_for_owner(PG_GETARG_TEXT_PP(0));

	reset_pipeline(p, NULL, check_offsets(p, PG_GETARG_JSONB_P(1)));
	PG_RETURN_VOID();
}
