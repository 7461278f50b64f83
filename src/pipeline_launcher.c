/*-------------------------------------------------------------------------
 *
 * pipeline_launcher.c
 *		Starting pipeline workers: at server start for every enabled
 *		pipeline of every database, and on start_pipeline().
 *
 * The launcher is a static background worker.  It connects to no database,
 * lists the databases and, one at a time, starts a short-lived "starter"
 * worker in each, which registers a consumer worker for every enabled
 * pipeline there.  Then the launcher sleeps until the server stops.
 *
 * The launcher also starts the rollup worker of each database that asks
 * for one (rollup_worker.c), as soon as it asks, and again after a failure
 * once its delay has passed.
 *
 * Consumer workers are dynamic workers that the postmaster never restarts:
 * the launcher does, checking once a second for failed workers whose delay
 * has passed and for waiting workers that a slot is now free for (see
 * pipeline_shmem.c), unless their database was dropped.  A worker that
 * stops because it was told to, or because its pipeline is gone, frees its
 * slot and is not restarted.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_database.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "sales_kafka.h"

PGDLLEXPORT void sk_launcher_main(Datum arg);
PGDLLEXPORT void sk_starter_main(Datum arg);

/* how often the launcher looks for failed workers to restart */
#define SK_LAUNCHER_NAPTIME_MS 1000

static void
fill_worker(BackgroundWorker *bgw, const char *function, const char *name,
			int restart)
{
	memset(bgw, 0, sizeof(BackgroundWorker));
	bgw->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw->bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw->bgw_restart_time = restart;
	strlcpy(bgw->bgw_library_name, "sales_kafka", BGW_MAXLEN);
	strlcpy(bgw->bgw_function_name, function, BGW_MAXLEN);
	strlcpy(bgw->bgw_name, name, BGW_MAXLEN);
	strlcpy(bgw->bgw_type, name, BGW_MAXLEN);
}

/* Called from _PG_init while shared_preload_libraries are loaded. */
void
sk_launcher_register(void)
{
	BackgroundWorker bgw;

	fill_worker(&bgw, "sk_launcher_main", "sales_kafka launcher", 10);
	RegisterBackgroundWorker(&bgw);
}

/*
 * Register the consumer worker that args describe, in database dboid;
 * false if the postmaster has no room for it.
 */
bool
sk_pipeline_start_worker(Oid dboid, const SkWorkerArgs *args)
{
	BackgroundWorker bgw;

	StaticAssertStmt(sizeof(SkWorkerArgs) <= BGW_EXTRALEN,
					 "SkWorkerArgs must fit in bgw_extra");
	fill_worker(&bgw, "sk_pipeline_worker_main", "sales_kafka pipeline",
				BGW_NEVER_RESTART);
	if (args->parallelism > 1)
		snprintf(bgw.bgw_name, BGW_MAXLEN, "sales_kafka pipeline %s #%d",
				 args->pipeline, args->index + 1);
	else
		snprintf(bgw.bgw_name, BGW_MAXLEN, "sales_kafka pipeline %s",
				 args->pipeline);
	bgw.bgw_main_arg = ObjectIdGetDatum(dboid);
	memcpy(bgw.bgw_extra, args, sizeof(SkWorkerArgs));
	return RegisterDynamicBackgroundWorker(&bgw, NULL);
}

/*
 * Register the rollup worker of database dboid; false if the postmaster has
 * no room for it.
 */
bool
sk_rollup_start_worker(Oid dboid)
{
	BackgroundWorker bgw;

	fill_worker(&bgw, "sk_rollup_worker_main", "sales_kafka rollups",
				BGW_NEVER_RESTART);
	bgw.bgw_main_arg = ObjectIdGetDatum(dboid);
	return RegisterDynamicBackgroundWorker(&bgw, NULL);
}

/*
 * Register every consumer worker of a pipeline; false if one did not fit.
 * owner_exempt: the owner is a superuser, whom
 * sales_kafka.max_workers_per_owner does not limit.
 */
bool
sk_pipeline_start_workers(Oid dboid, int64 pipeline_id, const char *pipeline,
						  int parallelism, Oid owner, bool owner_exempt)
{
	SkWorkerArgs args;
	int			i;

	memset(&args, 0, sizeof(args));
	args.parallelism = parallelism;
	args.pipeline_id = pipeline_id;
	args.owner = owner;
	args.owner_exempt = owner_exempt;
	strlcpy(args.pipeline, pipeline, NAMEDATALEN);
	for (i = 0; i < parallelism; i++)
	{
		args.index = i;
		if (!sk_pipeline_start_worker(dboid, &args))
			return false;
	}
	return true;
}

/*
 * The databases that can hold pipelines, as a list in the caller's memory
 * context: the transaction's own context is gone once it commits.  Needs no
 * transaction; runs one of its own.
 */
static List *
database_list(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *dbs = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (db->datallowconn && !db->datistemplate)
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			dbs = lappend_oid(dbs, db->oid);
			MemoryContextSwitchTo(old);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	return dbs;
}

void
sk_launcher_main(Datum arg)
{
	List	   *dbs;
	List	   *dbs_now;
	ListCell   *lc;

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	dbs = database_list();
	foreach(lc, dbs)
	{
		BackgroundWorker bgw;
		BackgroundWorkerHandle *handle;
		pid_t		pid;

		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			break;
		fill_worker(&bgw, "sk_starter_main", "sales_kafka starter",
					BGW_NEVER_RESTART);
		bgw.bgw_main_arg = ObjectIdGetDatum(lfirst_oid(lc));
		bgw.bgw_notify_pid = MyProcPid;
		if (!RegisterDynamicBackgroundWorker(&bgw, &handle))
		{
			ereport(WARNING,
					(errmsg("sales_kafka launcher could not start a worker to look for pipelines in database %u",
							lfirst_oid(lc)),
					 errhint("Raise max_worker_processes.")));
			continue;
		}
		/* one database at a time, so that starters never crowd out workers */
		if (WaitForBackgroundWorkerStartup(handle, &pid) == BGWH_STARTED)
			(void) WaitForBackgroundWorkerShutdown(handle);
	}

	/*
	 * Then restart the workers that failed, once their delay has passed, and
	 * start the rollup workers that databases ask for (which set our latch).
	 */
	while (!ShutdownRequestPending)
	{
		SkWorkerArgs due[16];
		Oid			dbs[16];
		Oid			rollup_dbs[16];
		int			n;
		int			nrollups;
		int			i;

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 SK_LAUNCHER_NAPTIME_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		/* e.g. the barriers of DROP DATABASE */
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		n = sk_slots_due(due, dbs, lengthof(due));
		nrollups = sk_rollup_due(rollup_dbs, lengthof(rollup_dbs), MyLatch);
		if (n == 0 && nrollups == 0)
			continue;
		dbs_now = database_list();
		for (i = 0; i < nrollups; i++)
		{
			if (!list_member_oid(dbs_now, rollup_dbs[i]))
				sk_rollup_forget_database(rollup_dbs[i]);
			else if (!sk_rollup_start_worker(rollup_dbs[i]))
				ereport(WARNING,
						(errmsg("could not start the rollup worker of database %u",
								rollup_dbs[i]),
						 errhint("Raise max_worker_processes.")));
		}
		for (i = 0; i < n; i++)
		{
			if (!list_member_oid(dbs_now, dbs[i]))
				sk_slots_forget_database(dbs[i]);
			else if (!sk_pipeline_start_worker(dbs[i], &due[i]))
				ereport(WARNING,
						(errmsg("could not restart a worker of pipeline \"%s\"",
								due[i].pipeline),
						 errhint("Raise max_worker_processes.")));
		}
		list_free(dbs_now);
	}

	/*
	 * Exit code 1, as worker_spi's: the postmaster starts the launcher again
	 * after its restart time unless the server is shutting down, so that
	 * pg_terminate_backend() of it does not stop the restarts of failed
	 * workers until the next server start (exit code 0 would unregister
	 * it).  The starters it runs again find running workers in their slots.
	 */
	proc_exit(1);
}

/*
 * The starter of one database: register the workers of its enabled
 * pipelines, then exit.
 */
void
sk_starter_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (OidIsValid(get_extension_oid("sales_kafka", true)) &&
		OidIsValid(RangeVarGetRelid(makeRangeVar("sales_kafka", "pipeline", -1),
									AccessShareLock, true)))
	{
		/* refuses a schema sales_kafka that is not the extension's */
		List	   *pipelines = sk_catalog_enabled_pipelines();
		ListCell   *lc;

		/* it exits by itself if the database has no sales model */
		sk_rollup_want(dboid);

		foreach(lc, pipelines)
		{
			SkPipeline *p = lfirst(lc);

			if (!sk_pipeline_start_workers(dboid, p->id, p->name,
										   p->parallelism, p->owner,
										   superuser_arg(p->owner)))
				ereport(WARNING,
						(errmsg("could not start the workers of pipeline \"%s\"", p->name),
						 errhint("Raise max_worker_processes.")));
			else
				ereport(LOG,
						(errmsg("sales_kafka: starting pipeline \"%s\"", p->name)));
		}
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	proc_exit(0);
}
