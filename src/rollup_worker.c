/*-------------------------------------------------------------------------
 *
 * rollup_worker.c
 *		The rollup worker: keeps the incremental rollups of every sales
 *		model of a database current by itself, a fraction of a second after
 *		order lines commit.
 *
 * One dynamic background worker per database that has sales models,
 * registered by the launcher (pipeline_launcher.c) when a database asks for
 * one: the starter of each database at server start (and on promotion,
 * when the launcher starts), create_sales_model and upgrade_sales_model,
 * and a pipeline worker that committed order lines while none ran.  Its
 * slot here outlives a failed worker, which the launcher starts again
 * after a delay that grows while failures repeat (1, 2, 4 ... 60 s); a
 * worker that finds no sales model in its database for a while frees its
 * slot and exits.
 *
 * When it works.  A pipeline worker that committed a batch into a table
 * named order_lines (or metrics) sets this worker's latch
 * (sk_rollup_notify): no polling for the lines of our pipelines.  Lines
 * that other sessions write are found by a cheap check every
 * sales_kafka.rollup_poll_interval: the last value of each model's
 * ingest_id sequence against kpi_state.rolled_up_through (and the metric
 * records against the summaries' progress: _metric_records_waiting).  A round over the models runs at most every
 * sales_kafka.rollup_min_interval, so each model is rolled up at most that
 * often.  sales_kafka.rollup_worker = off makes the workers idle.
 *
 * What it runs.  For each model with lines waiting, in a transaction of its
 * own: every relation that sales_kafka.refresh_rollups reads or writes is
 * locked first, each without waiting (a model being dropped is skipped,
 * silently, and DROP then waits only for this short transaction); then
 * sales_kafka.refresh_rollups() itself runs (it waits for the writers of
 * the order lines before it locks the kpi_state row, so that a writer that
 * locks the row too never deadlocks with it; after a manual refresh or a
 * pg_cron job that holds the row, it finds that work done), which runs its body as the owner of the model's schema, and
 * whose progress in kpi_state makes every line count exactly once.  Every
 * check of a model's own tables runs as its owner, restricted, as
 * refresh_rollups runs it.  A model's error is reported and rolled back,
 * and the other models go on; the model is tried again at the next round.
 * A model whose tables are not all its schema owner's, or in a temporary
 * schema, is not a model (sk_model_relations_owned(), src/kpi.c).
 *
 * Never on a standby: the launcher, and so this worker, start only once
 * recovery has finished (a promoted standby starts them).
 *
 * Never in the way of DROP DATABASE (nor of ALTER DATABASE, which may want
 * the database to itself): a utility hook asks the database's worker to
 * exit before the command runs, and waits for it (5 s at most).  The
 * launcher starts it again 10 s later if the database is still there.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_inherits.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "sales_kafka.h"

PGDLLEXPORT void sk_rollup_worker_main(Datum arg);

/* databases that can have a rollup worker at once */
#define SK_ROLLUP_MAX_DATABASES 64

/* the longest delay before a failed rollup worker starts again */
#define SK_ROLLUP_MAX_BACKOFF_MS 60000

/* a worker whose database has had no sales model this long exits */
#define SK_ROLLUP_IDLE_EXIT_MS 30000

/* how long DROP or ALTER DATABASE waits for the worker to exit */
#define SK_ROLLUP_RELEASE_WAIT_MS 5000

/* ... and when the launcher starts it again, if the database is still there */
#define SK_ROLLUP_RELEASE_DELAY_MS 10000

/* The rollup worker of one database */
typedef struct SkRollupSlot
{
	Oid			dboid;			/* InvalidOid: the slot is free */
	pid_t		pid;			/* 0 while no worker runs */
	Latch	   *latch;
	bool		lines_committed;	/* a pipeline committed order lines since
									 * the worker last looked */
	TimestampTz wanted_at;		/* when the database last asked for one */
	bool		release;		/* exit now: DROP or ALTER DATABASE waits */
	int			failures;		/* workers that failed in a row */
	TimestampTz start_at;		/* the launcher starts a worker from then on */
} SkRollupSlot;

typedef struct SkRollupShared
{
	LWLock	   *lock;
	Latch	   *launcher_latch; /* to start a worker soon, or NULL */
	SkRollupSlot slots[SK_ROLLUP_MAX_DATABASES];
} SkRollupShared;

static SkRollupShared *rollup_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_process_utility_hook = NULL;

/* the worker's own slot */
static SkRollupSlot *my_slot = NULL;
static bool clean_exit = false;


/* A sales model found in the database */
typedef struct SkModel
{
	Oid			nsp;
	char	   *schema;
	Oid			owner;
} SkModel;

static void
rollup_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(sizeof(SkRollupShared));
	RequestNamedLWLockTranche("sales_kafka rollups", 1);
}

static void
rollup_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	rollup_shared = ShmemInitStruct("sales_kafka rollups",
									sizeof(SkRollupShared), &found);
	if (!found)
	{
		memset(rollup_shared, 0, sizeof(SkRollupShared));
		rollup_shared->lock = &(GetNamedLWLockTranche("sales_kafka rollups"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}


/* The slot of database dboid, or NULL; the caller holds the lock. */
static SkRollupSlot *
find_slot(Oid dboid)
{
	int			i;

	for (i = 0; i < SK_ROLLUP_MAX_DATABASES; i++)
		if (rollup_shared->slots[i].dboid == dboid)
			return &rollup_shared->slots[i];
	return NULL;
}

/* True if the slot's worker is alive; the caller holds the lock. */
static bool
slot_running(SkRollupSlot *slot)
{
	return slot->pid != 0 && (kill(slot->pid, 0) == 0 || errno != ESRCH);
}

/*
 * Ask the rollup worker of database dboid, if one runs, to exit, and wait
 * until it has (at most SK_ROLLUP_RELEASE_WAIT_MS; then the command reports
 * the session that is still there, as for any other).  The launcher starts
 * it again after SK_ROLLUP_RELEASE_DELAY_MS if the database still exists.
 */
static void
release_database(Oid dboid)
{
	int			waited_ms = 0;

	for (;;)
	{
		SkRollupSlot *slot;
		bool		running;

		LWLockAcquire(rollup_shared->lock, LW_EXCLUSIVE);
		slot = find_slot(dboid);
		running = slot != NULL && slot_running(slot);
		if (running && !slot->release)
		{
			slot->release = true;
			SetLatch(slot->latch);
		}
		if (slot != NULL)
			slot->start_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														 SK_ROLLUP_RELEASE_DELAY_MS);
		LWLockRelease(rollup_shared->lock);
		if (!running || waited_ms >= SK_ROLLUP_RELEASE_WAIT_MS)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		waited_ms += 10;
	}
}

/*
 * Before DROP DATABASE, ALTER DATABASE and ALTER DATABASE ... RENAME, which
 * refuse to run while other sessions use the database, the database's
 * rollup worker leaves it.
 */
static void
rollup_process_utility(PlannedStmt *pstmt, const char *queryString,
					   bool readOnlyTree, ProcessUtilityContext context,
					   ParamListInfo params, QueryEnvironment *queryEnv,
					   DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	const char *dbname = NULL;

	if (IsA(stmt, DropdbStmt))
		dbname = ((DropdbStmt *) stmt)->dbname;
	else if (IsA(stmt, AlterDatabaseStmt))
		dbname = ((AlterDatabaseStmt *) stmt)->dbname;
	else if (IsA(stmt, RenameStmt) &&
			 ((RenameStmt *) stmt)->renameType == OBJECT_DATABASE)
		dbname = ((RenameStmt *) stmt)->subname;
	if (dbname != NULL && OidIsValid(get_database_oid(dbname, true)))
		release_database(get_database_oid(dbname, true));

	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, queryString, readOnlyTree, context,
								  params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

/*
 * Called from _PG_init while shared_preload_libraries are loaded: ask for
 * the slots, and watch for commands that need a database to themselves.
 */
void
sk_rollup_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = rollup_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = rollup_shmem_startup;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = rollup_process_utility;
}

/*
 * Database dboid wants a rollup worker: take a slot for it if it has none,
 * and wake the launcher if no worker runs there.  Either way, a running
 * worker looks at its models soon (lines_committed: whether order lines
 * were committed, which wakes it as soon as its minimum interval allows).
 * Does nothing when the library was not preloaded.  Never throws; a
 * database that finds every slot taken is told so in the log, once per
 * call.
 */
static void
want_worker(Oid dboid, bool lines_committed)
{
	SkRollupSlot *slot;
	Latch	   *wake = NULL;

	if (rollup_shared == NULL)
		return;
	LWLockAcquire(rollup_shared->lock, LW_EXCLUSIVE);
	slot = find_slot(dboid);
	if (slot == NULL && (slot = find_slot(InvalidOid)) != NULL)
	{
		memset(slot, 0, sizeof(SkRollupSlot));
		slot->dboid = dboid;
	}
	if (slot != NULL)
	{
		slot->wanted_at = GetCurrentTimestamp();
		if (lines_committed)
			slot->lines_committed = true;
		if (slot_running(slot))
			wake = lines_committed ? slot->latch : NULL;
		else if (slot->start_at <= GetCurrentTimestamp())
			wake = rollup_shared->launcher_latch;
	}
	if (wake != NULL)
		SetLatch(wake);
	LWLockRelease(rollup_shared->lock);
	if (slot == NULL)
		ereport(WARNING,
				(errmsg("no free rollup worker slot for database %u", dboid),
				 errdetail("At most %d databases can have a rollup worker at once.",
						   SK_ROLLUP_MAX_DATABASES),
				 errhint("Call sales_kafka.refresh_rollups() for the sales models of this database, e.g. from pg_cron.")));
}

/*
 * The current database has (or may soon have) sales models: make sure a
 * rollup worker runs for it.  For create_sales_model, upgrade_sales_model
 * and the starters.
 */
void
sk_rollup_want(Oid dboid)
{
	want_worker(dboid, false);
}

/*
 * A pipeline worker committed order lines into a table of database dboid:
 * wake its rollup worker (or have one started).
 */
void
sk_rollup_notify(Oid dboid)
{
	want_worker(dboid, true);
}

/*
 * For the launcher, which passes its latch so that it is woken when a
 * database wants a worker: the databases whose rollup worker is due to
 * start, at most max, marked as being started (for a minute: if no worker
 * claims the slot by then, it is started again).
 */
int
sk_rollup_due(Oid *dbs, int max, Latch *launcher_latch)
{
	TimestampTz now = GetCurrentTimestamp();
	int			n = 0;
	int			i;

	if (rollup_shared == NULL)
		return 0;
	LWLockAcquire(rollup_shared->lock, LW_EXCLUSIVE);
	rollup_shared->launcher_latch = launcher_latch;
	for (i = 0; i < SK_ROLLUP_MAX_DATABASES && n < max; i++)
	{
		SkRollupSlot *slot = &rollup_shared->slots[i];

		if (!OidIsValid(slot->dboid) || slot_running(slot) ||
			slot->start_at > now)
			continue;
		dbs[n++] = slot->dboid;
		slot->start_at = TimestampTzPlusMilliseconds(now, SK_ROLLUP_MAX_BACKOFF_MS);
	}
	LWLockRelease(rollup_shared->lock);
	return n;
}

/* For the launcher: forget the rollup worker of a database that was dropped. */
void
sk_rollup_forget_database(Oid dboid)
{
	SkRollupSlot *slot;

	if (rollup_shared == NULL)
		return;
	LWLockAcquire(rollup_shared->lock, LW_EXCLUSIVE);
	slot = find_slot(dboid);
	if (slot != NULL && !slot_running(slot))
		slot->dboid = InvalidOid;
	LWLockRelease(rollup_shared->lock);
}

/*
 * The worker leaves its slot: freed when it exits because its database has
 * no sales model, kept with one more failure (and the successor's delay)
 * otherwise.
 */
static void
rollup_worker_exit(int code, Datum arg)
{
	if (my_slot == NULL)
		return;
	LWLockAcquire(rollup_shared->lock, LW_EXCLUSIVE);
	if (my_slot->pid == MyProcPid)
	{
		my_slot->pid = 0;
		my_slot->latch = NULL;
		if (my_slot->release)
			/* the launcher starts a successor at start_at, if need be */
			my_slot->release = false;
		else if (clean_exit &&
			GetCurrentTimestamp() <
			TimestampTzPlusMilliseconds(my_slot->wanted_at, SK_ROLLUP_IDLE_EXIT_MS))
		{
			/* asked for again since it decided to exit: a successor, now */
			my_slot->start_at = 0;
			if (rollup_shared->launcher_latch != NULL)
				SetLatch(rollup_shared->launcher_latch);
		}
		else if (clean_exit)
			my_slot->dboid = InvalidOid;
		else
		{
			my_slot->failures++;
			my_slot->start_at =
				TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											Min(SK_ROLLUP_MAX_BACKOFF_MS,
												1000L << Min(my_slot->failures - 1, 6)));
		}
	}
	LWLockRelease(rollup_shared->lock);
}

/*
 * Take the slot of this database; false if another live worker holds it
 * (a duplicate start).
 */
static bool
claim_slot(void)
{
	SkRollupSlot *slot;

	LWLockAcquire(rollup_shared->lock, LW_EXCLUSIVE);
	slot = find_slot(MyDatabaseId);
	if (slot == NULL || (slot_running(slot) && slot->pid != MyProcPid))
	{
		LWLockRelease(rollup_shared->lock);
		return false;
	}
	slot->pid = MyProcPid;
	slot->latch = MyLatch;
	my_slot = slot;
	LWLockRelease(rollup_shared->lock);
	return true;
}

/* Whether DROP or ALTER DATABASE waits for the worker to exit */
static bool
release_requested(void)
{
	bool		release;

	LWLockAcquire(rollup_shared->lock, LW_SHARED);
	release = my_slot->release;
	LWLockRelease(rollup_shared->lock);
	return release;
}

/*
 * Whether pipelines committed order lines since the last call; clears the
 * flag.
 */
static bool
take_lines_committed(void)
{
	bool		committed;

	LWLockAcquire(rollup_shared->lock, LW_EXCLUSIVE);
	committed = my_slot->lines_committed;
	my_slot->lines_committed = false;
	LWLockRelease(rollup_shared->lock);
	return committed;
}

/* A round went through: it ends a run of failures. */
static void
report_round(void)
{
	LWLockAcquire(rollup_shared->lock, LW_EXCLUSIVE);
	my_slot->failures = 0;
	LWLockRelease(rollup_shared->lock);
}

/*
 * Whether the worker may exit for want of models: none seen since
 * models_seen_at, and the database has not asked for a worker (a model
 * being made, lines committed) for SK_ROLLUP_IDLE_EXIT_MS.
 */
static bool
idle_too_long(TimestampTz models_seen_at)
{
	TimestampTz since;

	LWLockAcquire(rollup_shared->lock, LW_SHARED);
	since = Max(models_seen_at, my_slot->wanted_at);
	LWLockRelease(rollup_shared->lock);
	return GetCurrentTimestamp() >=
		TimestampTzPlusMilliseconds(since, SK_ROLLUP_IDLE_EXIT_MS);
}

/*
 * Start a transaction for one unit of work, described by "activity" (a
 * string constant) in pg_stat_activity and error reports.
 */
static void
begin_work(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	debug_query_string = activity;
	pgstat_report_activity(STATE_RUNNING, activity);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/* Commit the unit of work and go idle; back in memory context cxt. */
static void
end_work(MemoryContext cxt)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	debug_query_string = NULL;
	pgstat_report_activity(STATE_IDLE, NULL);
	pgstat_report_stat(true);
	MemoryContextSwitchTo(cxt);
}

/*
 * The sales models of this database, as a list of SkModel in memory
 * context cxt: the schemas with a table kpi_state that has the column
 * rolled_up_through, once the extension, in a version with
 * refresh_rollups, is installed in its schema.  Runs in the caller's
 * transaction.
 */
static List *
list_models(MemoryContext cxt)
{
	List	   *models = NIL;
	uint64		i;

	if (!OidIsValid(get_extension_oid("sales_kafka", true)))
		return NIL;
	/* (a schema sales_kafka that is not the extension's is not called) */
	if (SPI_execute("SELECT n.oid, n.nspname, n.nspowner"
					"  FROM pg_catalog.pg_class c"
					"  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
					"  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid"
					" WHERE c.relname = 'kpi_state' AND c.relkind = 'r' AND c.relpersistence = 'p'"
					"   AND a.attname = 'rolled_up_through' AND NOT a.attisdropped"
					"   AND EXISTS (SELECT FROM pg_catalog.pg_extension e"
					"                 JOIN pg_catalog.pg_namespace x ON x.oid = e.extnamespace"
					"                WHERE e.extname = 'sales_kafka' AND x.nspname = 'sales_kafka')"
					"   AND pg_catalog.to_regprocedure('sales_kafka.refresh_rollups(name)') IS NOT NULL"
					" ORDER BY n.nspname",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(cxt);
		SkModel    *m = palloc(sizeof(SkModel));

		m->nsp = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		m->schema = pstrdup(NameStr(*DatumGetName(SPI_getbinval(tup, desc, 2, &isnull))));
		m->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
		models = lappend(models, m);
		MemoryContextSwitchTo(old);
	}
	return models;
}

/*
 * Lock relation relid in mode without waiting; false if it is locked in a
 * conflicting mode, or was dropped before the lock was granted.
 */
static bool
lock_now(Oid relid, LOCKMODE mode)
{
	if (!ConditionalLockRelationOid(relid, mode))
		return false;
	/* the lock is granted: the relation cannot go any more, but may be gone */
	return SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid));
}

/*
 * Lock every relation of model m that refresh_rollups touches (the
 * partitions of order_lines too), each without waiting; false if one is
 * missing or locked in a conflicting mode (a DROP SCHEMA, a TRUNCATE, an
 * ALTER TABLE): the model is skipped this time.
 */
static bool
lock_model(SkModel *m)
{
	int			i;

	for (i = 0; i < sk_model_relation_count; i++)
	{
		const SkModelRelation *r = &sk_model_relations[i];
		Oid			relid;
		List	   *parts;
		ListCell   *lc;

		if (r->lockmode == NoLock)
			continue;			/* refresh_rollups does not touch it */
		relid = get_relname_relid(r->name, m->nsp);
		if (!OidIsValid(relid) && r->optional)
			continue;
		if (!OidIsValid(relid) || !lock_now(relid, r->lockmode))
			return false;
		if (strcmp(r->name, "order_lines") != 0)
			continue;
		parts = find_all_inheritors(relid, NoLock, NULL);
		foreach(lc, parts)
			if (lfirst_oid(lc) != relid &&
				!lock_now(lfirst_oid(lc), AccessShareLock) &&
				SearchSysCacheExists1(RELOID, ObjectIdGetDatum(lfirst_oid(lc))))
				return false;
	}
	return true;
}

/*
 * Run query (one parameter, the model's quoted schema name substituted for
 * each %s) as the model's owner, restricted, as refresh_rollups runs its
 * body; returns its one boolean, false if it returned no row.
 */
static bool
owner_check(SkModel *m, const char *query)
{
	const char *s = quote_identifier(m->schema);
	Oid			save_user;
	int			save_context;
	int			guc_level;
	bool		result = false;

	GetUserIdAndSecContext(&save_user, &save_context);
	SetUserIdAndSecContext(m->owner, save_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	guc_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	if (SPI_execute(psprintf(query, s, s), false, 1) != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed");
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull);

		result = !isnull && DatumGetBool(d);
	}
	AtEOXact_GUC(false, guc_level);
	SetUserIdAndSecContext(save_user, save_context);
	return result;
}

/*
 * Roll up the waiting lines of model m, in a transaction of its own, if it
 * has any and nobody else is rolling them up; returns how many lines.
 */
static int64
roll_up_model(SkModel *m, MemoryContext cxt)
{
	int64		lines = 0;

	begin_work("sales_kafka: rolling up a sales model");
	if (lock_model(m) &&
		/* as refresh_rollups refuses it: see sk_model_relations_owned() */
		sk_model_relations_owned(m->nsp, m->owner, DEBUG1) &&
		/* a cheap look first: no row lock (and no WAL) when idle */
		owner_check(m, "SELECT k.rolled_up_through"
					" OPERATOR(pg_catalog.<) pg_catalog.pg_sequence_last_value('%s.order_lines_ingest_id_seq')"
					" OR sales_kafka._metric_records_waiting(k.tableoid)"
					" FROM %s.kpi_state k"))
	{
		Oid			argtypes[1] = {NAMEOID};
		Datum		args[1];
		bool		isnull;

		args[0] = DirectFunctionCall1(namein, CStringGetDatum(m->schema));
		if (SPI_execute_with_args("SELECT sales_kafka.refresh_rollups($1)",
								  1, argtypes, args, NULL, false, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "SPI_execute_with_args failed");
		lines = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 1, &isnull));
		if (isnull)
			lines = 0;
	}
	end_work(cxt);
	return lines;
}

/*
 * One round: roll up every model of the database that has lines waiting.
 * Returns how many models there are.  Allocates in the current memory
 * context, which the caller resets.
 */
static int
round_of_rollups(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *volatile models;
	ListCell   *volatile lc;

	begin_work("sales_kafka: looking for sales models");
	models = list_models(cxt);
	end_work(cxt);

	foreach(lc, models)
	{
		SkModel    *m = lfirst(lc);

		CHECK_FOR_INTERRUPTS();

		/*
		 * One model's error (its owner's trigger raising, say) is that
		 * model's: reported and rolled back, and the other models go on.
		 */
		PG_TRY();
		{
			(void) roll_up_model(m, cxt);
		}
		PG_CATCH();
		{
			HOLD_INTERRUPTS();
			MemoryContextSwitchTo(cxt);
			EmitErrorReport();
			FlushErrorState();
			AbortOutOfAnyTransaction();
			debug_query_string = NULL;
			pgstat_report_activity(STATE_IDLE, NULL);
			RESUME_INTERRUPTS();
			ereport(LOG,
					(errmsg("sales_kafka rollups: the rollup of sales model \"%s\" failed; the other models go on",
							m->schema)));
		}
		PG_END_TRY();
	}
	report_round();
	return list_length(models);
}

/* Milliseconds from now until t (at least 0, at most max_ms) */
static long
ms_until(TimestampTz t, long max_ms)
{
	long		ms = (long) ((t - GetCurrentTimestamp()) / 1000);

	return Max(0, Min(ms, max_ms));
}

void
sk_rollup_worker_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	MemoryContext roundcxt;
	TimestampTz last_round = 0;
	TimestampTz last_poll = 0;
	TimestampTz models_seen_at;
	bool		pending = false;

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	/* nothing it runs resolves a name through another role's schema */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_SESSION);

	if (rollup_shared == NULL || !claim_slot())
		proc_exit(0);
	before_shmem_exit(rollup_worker_exit, (Datum) 0);

	roundcxt = AllocSetContextCreate(TopMemoryContext,
									 "sales_kafka rollup round",
									 ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(roundcxt);
	models_seen_at = GetCurrentTimestamp();

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		TimestampTz next_round;
		bool		poll_due;
		long		timeout;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (release_requested())
			proc_exit(0);

		pending |= take_lines_committed();
		poll_due = now >= TimestampTzPlusMilliseconds(last_poll, sk_rollup_poll_interval);
		next_round = TimestampTzPlusMilliseconds(last_round, sk_rollup_min_interval);

		if (sk_rollup_worker && !RecoveryInProgress() &&
			(pending || poll_due) && now >= next_round)
		{
			int			nmodels;

			pending = false;
			last_round = last_poll = now;
			nmodels = round_of_rollups();
			MemoryContextReset(roundcxt);
			if (nmodels > 0)
				models_seen_at = GetCurrentTimestamp();
			else if (idle_too_long(models_seen_at))
			{
				clean_exit = true;
				proc_exit(0);
			}
			continue;
		}

		/*
		 * Switched off: sleep a whole poll interval (a reload sets the
		 * latch), not until the poll that is already due, which would spin.
		 * On: until the next round may run, and, with nothing pending, until
		 * the next poll is due too.
		 */
		if (!sk_rollup_worker || RecoveryInProgress())
			timeout = sk_rollup_poll_interval;
		else if (pending)
			timeout = ms_until(next_round, sk_rollup_min_interval);
		else
			timeout = ms_until(Max(next_round,
								   TimestampTzPlusMilliseconds(last_poll, sk_rollup_poll_interval)),
							   Max(sk_rollup_poll_interval, sk_rollup_min_interval));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
