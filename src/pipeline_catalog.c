/*-------------------------------------------------------------------------
 *
 * pipeline_catalog.c
 *		The pipeline catalog: the scope in which the extension's tables are
 *		read and written, the statements kept for them, and the rows of
 *		sales_kafka.pipeline.
 *
 * The catalog tables (sales_kafka.pipeline, pipeline_offset, dead_letter)
 * belong to the extension's owner; of them PUBLIC may only read, and
 * delete, the dead letters that row security shows it.  Our code reads and
 * writes them as the bootstrap superuser, between sk_catalog_begin() and
 * sk_catalog_end(), after the callers have checked the rights of the role
 * they act for.  Every statement on them is an SkCatalogStatement, prepared
 * the first time it runs and kept for the life of the process (the plan
 * cache re-plans it when a table it reads changes, or when the extension
 * was dropped and created again).
 *
 * This file runs every statement on sales_kafka.pipeline, and builds every
 * SkPipeline; pipeline_offsets.c those on sales_kafka.pipeline_offset;
 * pipeline_sink.c inserts the dead letters.  It decides nothing about
 * workers, Kafka or target tables, and calls no file of ours but
 * extension_schema.c: the SQL functions (pipeline_api.c), the workers
 * (pipeline_worker.c), the sink and the launcher's starter call it.
 *
 * Pipeline names are unique per owner; a name means the caller's own
 * pipeline, or the one pipeline of that name among the roles whose rights
 * the caller has (sk_catalog_find_pipeline()).  Everything else refers to
 * a pipeline by its id.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "sales_kafka.h"

/*
 * Run as the bootstrap superuser until sk_catalog_end(), connected to SPI:
 * the catalog tables grant nothing to anyone else.  The search path is
 * pg_catalog alone, so that no function or operator of the caller's
 * schemas can run as superuser in our statements.  Throws first if the
 * schema our statements name, sales_kafka, is not the extension's or not a
 * superuser's (see extension_schema.c).  In between, CurrentMemoryContext
 * is SPI's, which sk_catalog_end() frees: copy results out of it first.
 * Needs a transaction; an error in between undoes all of it.
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
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

void
sk_catalog_end(SkCatalogScope *scope)
{
	SPI_finish();
	AtEOXact_GUC(true, scope->guc_level);
	SetUserIdAndSecContext(scope->user, scope->context);
}

/*
 * Run a catalog statement with these parameters (nulls as SPI takes them,
 * NULL for none); returns SPI_processed, with the rows in SPI_tuptable.
 * Prepares the statement on its first run and keeps the plan (SPI_keepplan:
 * in CacheMemoryContext, for the life of the process).  Needs
 * sk_catalog_begin().  Throws if the statement does not return
 * stmt->expected.
 */
uint64
sk_catalog_run(SkCatalogStatement *stmt, Datum *values, const char *nulls)
{
	int			ret;

	if (stmt->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(stmt->sql, stmt->nargs, stmt->argtypes);

		if (plan == NULL)
			elog(ERROR, "could not prepare catalog statement: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "could not keep catalog statement");
		stmt->plan = plan;
	}
	ret = SPI_execute_plan(stmt->plan, values, nulls, stmt->read_only, 0);
	if (ret != stmt->expected)
		elog(ERROR, "catalog statement failed: %s", SPI_result_code_string(ret));
	return SPI_processed;
}

/*
 * Run one catalog statement that returns no rows, in a scope of its own
 * (sk_catalog_begin()); returns how many rows it processed.  Needs a
 * transaction.
 */
uint64
sk_catalog_exec(SkCatalogStatement *stmt, Datum *values, const char *nulls)
{
	SkCatalogScope scope;
	uint64		processed;

	sk_catalog_begin(&scope);
	processed = sk_catalog_run(stmt, values, nulls);
	sk_catalog_end(&scope);
	return processed;
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
int64
sk_catalog_flush_interval_us(const Interval *flush)
{
	if (flush->month != 0 || flush->day != 0 ||
		flush->time < 0 || flush->time > USECS_PER_HOUR)
		return -1;
	return flush->time;
}

/* The columns of an SkPipeline, in the order pipeline_rows() reads them */
#define SK_PIPELINE_SELECT \
	"SELECT id, name, source::oid, target::oid, mode = 'upsert', batch_size," \
	" flush_interval, start_at, parallelism, owner::oid, enabled," \
	" failure IS NOT NULL, partitions FROM sales_kafka.pipeline"

static SkCatalogStatement select_by_id = {
	SK_PIPELINE_SELECT " WHERE id = $1",
	1, {INT8OID}, false, SPI_OK_SELECT
};

static SkCatalogStatement share_by_id = {
	SK_PIPELINE_SELECT " WHERE id = $1 FOR SHARE NOWAIT",
	1, {INT8OID}, false, SPI_OK_SELECT
};

static SkCatalogStatement update_by_id = {
	SK_PIPELINE_SELECT " WHERE id = $1 FOR UPDATE NOWAIT",
	1, {INT8OID}, false, SPI_OK_SELECT
};

/* (a failed pipeline waits for start_pipeline()) */
static SkCatalogStatement select_enabled = {
	SK_PIPELINE_SELECT " WHERE enabled AND failure IS NULL ORDER BY id",
	0, {InvalidOid}, true, SPI_OK_SELECT
};

/*
 * Run a statement that selects pipeline rows (with arg as $1, if it has a
 * parameter) and return them as a list of SkPipeline in
 * CurrentMemoryContext.
 */
static List *
pipeline_rows(SkCatalogStatement *stmt, Datum arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *result = NIL;
	SkCatalogScope scope;
	uint64		n;
	uint64		i;

	sk_catalog_begin(&scope);
	n = sk_catalog_run(stmt, &arg, NULL);
	for (i = 0; i < n; i++)
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
		flush_us = sk_catalog_flush_interval_us(DatumGetIntervalP(SPI_getbinval(tup, desc, 7,
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
		p->partitions = SPI_getvalue(tup, desc, 13);
		result = lappend(result, p);
		MemoryContextSwitchTo(old);
	}
	sk_catalog_end(&scope);
	return result;
}

static SkCatalogStatement select_all = {
	SK_PIPELINE_SELECT " ORDER BY id",
	0, {InvalidOid}, true, SPI_OK_SELECT
};

static SkCatalogStatement lock_catalog = {
	"LOCK TABLE sales_kafka.pipeline IN SHARE ROW EXCLUSIVE MODE",
	0, {InvalidOid}, false, SPI_OK_UTILITY
};

/*
 * Every pipeline of this database, by id, as a list of SkPipeline in
 * CurrentMemoryContext.  With lock, first locks sales_kafka.pipeline
 * against every change but row locks until the transaction ends (the
 * mode conflicts with itself): create_pipeline() checks a new pipeline
 * against the others so, and two of them cannot both pass the check.
 * Needs a transaction.
 */
List *
sk_catalog_all_pipelines(bool lock)
{
	if (lock)
		(void) sk_catalog_exec(&lock_catalog, NULL, NULL);
	return pipeline_rows(&select_all, (Datum) 0);
}

/*
 * The pipeline of this id, in CurrentMemoryContext; NULL if there is none.
 * Needs a transaction.
 */
SkPipeline *
sk_catalog_load_pipeline(int64 id)
{
	List	   *rows = pipeline_rows(&select_by_id, Int64GetDatum(id));

	return rows != NIL ? linitial(rows) : NULL;
}

/*
 * The same, locked FOR SHARE (or FOR UPDATE) until this transaction ends.
 * Throws ERRCODE_LOCK_NOT_AVAILABLE at once while another transaction
 * holds a conflicting lock: a worker must never wait for one, which may
 * itself be waiting for that worker to stop (see pipeline_worker.c).
 */
SkPipeline *
sk_catalog_lock_pipeline(int64 id, bool for_update)
{
	List	   *rows = pipeline_rows(for_update ? &update_by_id : &share_by_id,
									 Int64GetDatum(id));

	return rows != NIL ? linitial(rows) : NULL;
}

/*
 * The enabled pipelines of this database that have not failed, by id, as a
 * list of SkPipeline in CurrentMemoryContext.  Needs a transaction.
 */
List *
sk_catalog_enabled_pipelines(void)
{
	return pipeline_rows(&select_enabled, (Datum) 0);
}

/*
 * Throws if the pipeline's owner was dropped since: its rights are gone,
 * and nothing may run with them.  Needs a transaction.
 */
void
sk_catalog_check_owner(SkPipeline *p)
{
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(p->owner)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the owner of pipeline \"%s\" no longer exists", p->name),
				 errdetail("Role %u, whose rights the pipeline used, was dropped.",
						   p->owner),
				 errhint("Drop the pipeline and create it again as another role.")));
}

static SkCatalogStatement select_by_name = {
	"SELECT id, owner::oid FROM sales_kafka.pipeline WHERE name = $1 ORDER BY id",
	1, {TEXTOID}, false, SPI_OK_SELECT
};

/*
 * The pipeline a name means to the current user, who must have the rights
 * of its owner: names are unique per owner, so the one the user owns, or
 * else the only one among those of roles whose rights the user has.  Of
 * the pipelines of that name it reads only ids and owners, and then the
 * one it chose, so that nothing in a row of a role the user cannot act for
 * can make the lookup fail.  The result lives in CurrentMemoryContext.
 * Throws if there is no such pipeline, or if it is ambiguous.
 */
SkPipeline *
sk_catalog_find_pipeline(text *name_text)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *name = text_to_cstring(name_text);
	Oid			user = GetUserId();
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
	nrows = (int) sk_catalog_run(&select_by_name, &arg, NULL);
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
	p = sk_catalog_load_pipeline(ids[chosen]);
	if (p == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("pipeline \"%s\" does not exist", name)));
	return p;
}

static SkCatalogStatement select_owned_name = {
	"SELECT 1 FROM sales_kafka.pipeline WHERE name = $1 AND owner = $2",
	2, {TEXTOID, REGROLEOID}, false, SPI_OK_SELECT
};

static SkCatalogStatement insert_pipeline = {
	"INSERT INTO sales_kafka.pipeline (name, source, target, mode, batch_size,"
	" flush_interval, start_at, parallelism, owner, partitions)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
	10, {TEXTOID, REGCLASSOID, REGCLASSOID, TEXTOID, INT4OID, INTERVALOID,
	TEXTOID, INT4OID, REGROLEOID, TEXTOID}, false, SPI_OK_INSERT
};

/*
 * Throws unless owner may name a new pipeline so: names are unique per
 * owner.  Needs a transaction.
 */
void
sk_catalog_check_new_name(const char *name, Oid owner)
{
	Datum		key[2];
	SkCatalogScope scope;
	uint64		n;

	key[0] = CStringGetTextDatum(name);
	key[1] = ObjectIdGetDatum(owner);
	sk_catalog_begin(&scope);
	n = sk_catalog_run(&select_owned_name, key, NULL);
	sk_catalog_end(&scope);
	if (n > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("pipeline \"%s\" already exists", name),
				 errdetail("Role \"%s\" owns a pipeline of that name.",
						   GetUserNameFromId(owner, false))));
}

/*
 * Add a pipeline, disabled.  The caller has checked every argument
 * (partitions: a canonical partition list, or NULL for all); this throws
 * if the owner has a pipeline of that name already.  Needs a transaction.
 */
void
sk_catalog_insert_pipeline(const char *name, Oid source, Oid target,
						   bool upsert, int32 batch_size, Interval *flush,
						   const char *start_at, int32 parallelism, Oid owner,
						   const char *partitions)
{
	Datum		values[10];
	char		nulls[10];
	SkCatalogScope scope;

	values[0] = CStringGetTextDatum(name);
	values[1] = ObjectIdGetDatum(source);
	values[2] = ObjectIdGetDatum(target);
	values[3] = CStringGetTextDatum(upsert ? "upsert" : "append");
	values[4] = Int32GetDatum(batch_size);
	values[5] = IntervalPGetDatum(flush);
	values[6] = CStringGetTextDatum(start_at);
	values[7] = Int32GetDatum(parallelism);
	values[8] = ObjectIdGetDatum(owner);
	values[9] = partitions != NULL ? CStringGetTextDatum(partitions) : (Datum) 0;
	memset(nulls, ' ', sizeof(nulls));
	nulls[9] = partitions != NULL ? ' ' : 'n';
	/* names are unique per owner */
	sk_catalog_check_new_name(name, owner);
	sk_catalog_begin(&scope);
	(void) sk_catalog_run(&insert_pipeline, values, nulls);
	sk_catalog_end(&scope);
}

static SkCatalogStatement enable_pipeline = {
	"UPDATE sales_kafka.pipeline SET (enabled, failure, failed_at) ="
	" (true, NULL, NULL) WHERE id = $1",
	1, {INT8OID}, false, SPI_OK_UPDATE
};

static SkCatalogStatement disable_pipeline = {
	"UPDATE sales_kafka.pipeline SET enabled = false WHERE id = $1",
	1, {INT8OID}, false, SPI_OK_UPDATE
};

/*
 * Mark a pipeline enabled (and so no longer failed: its workers run, also
 * after a restart) or disabled.  Locks its row until the transaction ends.
 */
void
sk_catalog_set_enabled(int64 id, bool enabled)
{
	Datum		arg = Int64GetDatum(id);

	(void) sk_catalog_exec(enabled ? &enable_pipeline : &disable_pipeline,
						   &arg, NULL);
}

static SkCatalogStatement set_start_at = {
	"UPDATE sales_kafka.pipeline SET start_at = COALESCE($2, start_at)"
	" WHERE id = $1",
	2, {INT8OID, TEXTOID}, false, SPI_OK_UPDATE
};

/*
 * Set where the partitions of a pipeline without stored offsets start
 * ('earliest', 'latest' or epoch milliseconds); with start_at NULL, only
 * lock the row, as a change does, until the transaction ends.
 */
void
sk_catalog_set_start_at(int64 id, const char *start_at)
{
	Datum		values[2];
	char		nulls[2] = {' ', start_at == NULL ? 'n' : ' '};

	values[0] = Int64GetDatum(id);
	values[1] = start_at != NULL ? CStringGetTextDatum(start_at) : (Datum) 0;
	(void) sk_catalog_exec(&set_start_at, values, nulls);
}

static SkCatalogStatement set_failure = {
	"UPDATE sales_kafka.pipeline SET failure = $2, failed_at = now()"
	" WHERE id = $1",
	2, {INT8OID, TEXTOID}, false, SPI_OK_UPDATE
};

/* Record why a pipeline stopped: it stays stopped until start_pipeline(). */
void
sk_catalog_set_failure(int64 id, const char *reason)
{
	Datum		values[2];

	values[0] = Int64GetDatum(id);
	values[1] = CStringGetTextDatum(reason);
	(void) sk_catalog_exec(&set_failure, values, NULL);
}

static SkCatalogStatement delete_pipeline = {
	"DELETE FROM sales_kafka.pipeline WHERE id = $1",
	1, {INT8OID}, false, SPI_OK_DELETE
};

/*
 * Delete a pipeline's row (its offsets: sk_offsets_reset()).  Locks it
 * until the transaction ends.
 */
void
sk_catalog_delete_pipeline(int64 id)
{
	Datum		arg = Int64GetDatum(id);

	(void) sk_catalog_exec(&delete_pipeline, &arg, NULL);
}
