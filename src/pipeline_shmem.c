/*-------------------------------------------------------------------------
 *
 * pipeline_shmem.c
 *		Shared memory of the pipeline workers: one slot per running worker,
 *		which stop_pipeline() signals and pipeline_status reads.
 *
 * A slot belongs to worker "index" of the pipeline of one id in one
 * database.  It outlives the worker that fills it when that worker fails:
 * the launcher starts its successor after a delay that grows while
 * failures repeat (1, 2, 4 ... 60 s), or frees the slot if its database is
 * gone.  Slots are freed when a pipeline stops or is dropped.
 * Everything durable (offsets, failures that stop a pipeline) lives in the
 * catalog tables; these counters are since the slot was filled.
 *
 * There are sales_kafka.max_workers slots, and a role that is not a
 * superuser holds at most sales_kafka.max_workers_per_owner of them (in all
 * databases: roles are the cluster's).  A worker that finds no slot it may
 * take (at server start with more enabled pipelines than slots, or when
 * two start_pipeline() calls race for the last ones) does not vanish: it
 * says so in the log and leaves an entry in the waiting list, which
 * pipeline_status shows as "waiting", and the launcher starts it again as
 * soon as a slot is free for it, oldest first.  The list has room for
 * SK_WAITING_PER_SLOT entries per slot; a worker that finds it full stops
 * its pipeline as failed instead, with the reason.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "sales_kafka.h"

/* the longest delay before a failed worker starts again */
#define SK_MAX_BACKOFF_MS 60000

/* messages/s and rows/s are averaged over this many seconds */
#define SK_RATE_SECONDS 60

/* entries of the waiting list per slot */
#define SK_WAITING_PER_SLOT 4

struct SkWorkerSlot
{
	bool		in_use;
	Oid			dboid;
	int64		pipeline_id;
	char		pipeline[NAMEDATALEN];	/* its name, for messages */
	Oid			owner;			/* the pipeline's owner */
	bool		owner_exempt;	/* see SkWorkerArgs */
	int			index;			/* 0 .. parallelism - 1 */
	int			parallelism;
	pid_t		pid;			/* 0 while no worker runs */
	TimestampTz restart_at;		/* when the launcher starts a failed worker */
	bool		restarting;		/* the launcher has registered its successor */
	Latch	   *latch;
	bool		stop_requested;
	SkWorkerState state;
	int			failures;		/* workers that failed in a row */
	TimestampTz started_at;
	int64		messages;
	int64		rows;
	int64		dead;
	TimestampTz last_commit_at;
	TimestampTz last_error_at;
	char		last_error[256];
	int64		rate_second[SK_RATE_SECONDS];
	int64		rate_messages[SK_RATE_SECONDS];
	int64		rate_rows[SK_RATE_SECONDS];
};

/* A worker that found no slot, in the waiting list */
typedef struct SkWaiting
{
	bool		in_use;
	Oid			dboid;
	SkWorkerArgs args;
	SkClaim		reason;			/* SK_CLAIM_NO_SLOT or SK_CLAIM_OWNER_LIMIT */
	TimestampTz since;			/* when it first found none */
	TimestampTz retry_at;		/* not before: the launcher started it */
} SkWaiting;

typedef struct SkShared
{
	LWLock	   *lock;
	int			nslots;
	int			nwaiting;		/* entries of the waiting list, after the slots */
	SkWorkerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} SkShared;

static SkShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static const char *const state_names[] = {
	"starting", "running", "stopping"
};

static Size
shared_size(void)
{
	return add_size(add_size(offsetof(SkShared, slots),
							 mul_size(sk_max_pipeline_workers, sizeof(SkWorkerSlot))),
					mul_size(mul_size(sk_max_pipeline_workers, SK_WAITING_PER_SLOT),
							 sizeof(SkWaiting)));
}

static void
sk_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(shared_size());
	RequestNamedLWLockTranche("sales_kafka", 1);
}

static void
sk_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("sales_kafka", shared_size(), &found);
	if (!found)
	{
		memset(shared, 0, shared_size());
		shared->lock = &(GetNamedLWLockTranche("sales_kafka"))->lock;
		shared->nslots = sk_max_pipeline_workers;
		shared->nwaiting = sk_max_pipeline_workers * SK_WAITING_PER_SLOT;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Called from _PG_init while shared_preload_libraries are loaded: ask for
 * the slots.
 */
void
sk_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = sk_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = sk_shmem_startup;
}

/* True when the library was preloaded, so that workers can run. */
bool
sk_shmem_ready(void)
{
	return shared != NULL;
}

/* The waiting list, which follows the slots */
static SkWaiting *
waiting_list(void)
{
	return (SkWaiting *) &shared->slots[shared->nslots];
}

static bool
slot_is(SkWorkerSlot *slot, Oid dboid, int64 pipeline_id)
{
	return slot->in_use && slot->dboid == dboid &&
		slot->pipeline_id == pipeline_id;
}

/* True if the slot's worker is alive; the caller holds the lock. */
static bool
slot_running(SkWorkerSlot *slot)
{
	return slot->pid != 0 && (kill(slot->pid, 0) == 0 || errno != ESRCH);
}

/*
 * Slots held by the workers of an owner, in every database, but for those
 * of one pipeline (pipeline_id 0: none); the caller holds the lock.
 */
static int
owner_slots(Oid owner, Oid dboid, int64 pipeline_id)
{
	int			n = 0;
	int			i;

	for (i = 0; i < shared->nslots; i++)
		if (shared->slots[i].in_use && shared->slots[i].owner == owner &&
			!slot_is(&shared->slots[i], dboid, pipeline_id))
			n++;
	return n;
}

/* The worker's entry in the waiting list, or NULL; the caller holds the lock. */
static SkWaiting *
waiting_entry(Oid dboid, int64 pipeline_id, int index)
{
	SkWaiting  *list = waiting_list();
	int			i;

	for (i = 0; i < shared->nwaiting; i++)
		if (list[i].in_use && list[i].dboid == dboid &&
			list[i].args.pipeline_id == pipeline_id && list[i].args.index == index)
			return &list[i];
	return NULL;
}

/*
 * Put the worker that args describe in the waiting list, or update its
 * entry; false if the list is full.  The caller holds the lock.
 */
static bool
wait_for_slot(Oid dboid, const SkWorkerArgs *args, SkClaim reason)
{
	SkWaiting  *entry = waiting_entry(dboid, args->pipeline_id, args->index);
	SkWaiting  *list = waiting_list();
	int			i;

	for (i = 0; entry == NULL && i < shared->nwaiting; i++)
		if (!list[i].in_use)
		{
			entry = &list[i];
			memset(entry, 0, sizeof(SkWaiting));
			entry->in_use = true;
			entry->dboid = dboid;
			entry->since = GetCurrentTimestamp();
		}
	if (entry == NULL)
		return false;
	entry->args = *args;
	entry->reason = reason;
	entry->retry_at = 0;
	return true;
}

/*
 * Take the slot of the worker that args describe for this process, and
 * set *claim to SK_CLAIM_OK.  NULL if another live process holds it (a
 * duplicate start) or the pipeline's workers are being stopped (a
 * successor the launcher registered before): SK_CLAIM_TWIN.  NULL too if
 * no slot is free, or if the owner, unless exempt, holds as many as
 * sales_kafka.max_workers_per_owner allows (a slot this worker's
 * predecessor left is then freed): the worker is put in the waiting list,
 * or, if that is full, *waiting is set to false.
 */
SkWorkerSlot *
sk_slot_claim(Oid dboid, const SkWorkerArgs *args, SkClaim *claim,
			  bool *waiting)
{
	SkWorkerSlot *mine = NULL;
	SkWorkerSlot *free_slot = NULL;
	SkWaiting  *entry;
	int			i;

	*claim = SK_CLAIM_OK;
	*waiting = false;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < shared->nslots; i++)
	{
		SkWorkerSlot *slot = &shared->slots[i];

		if (slot_is(slot, dboid, args->pipeline_id) && slot->index == args->index)
			mine = slot;
		else if (!slot->in_use && free_slot == NULL)
			free_slot = slot;
	}
	if (mine != NULL &&
		((slot_running(mine) && mine->pid != MyProcPid) || mine->stop_requested))
	{
		LWLockRelease(shared->lock);
		*claim = SK_CLAIM_TWIN;
		return NULL;
	}

	/* the owner's other workers, this one's own slot aside */
	if (!args->owner_exempt &&
		owner_slots(args->owner, InvalidOid, 0) - (mine != NULL ? 1 : 0) >=
		sk_max_workers_per_owner)
		*claim = SK_CLAIM_OWNER_LIMIT;
	else if (mine == NULL && free_slot == NULL)
		*claim = SK_CLAIM_NO_SLOT;
	if (*claim != SK_CLAIM_OK)
	{
		if (mine != NULL)
			mine->in_use = false;
		*waiting = wait_for_slot(dboid, args, *claim);
		LWLockRelease(shared->lock);
		return NULL;
	}

	if (mine == NULL)
	{
		mine = free_slot;
		memset(mine, 0, sizeof(SkWorkerSlot));
		mine->in_use = true;
		mine->dboid = dboid;
		mine->pipeline_id = args->pipeline_id;
		strlcpy(mine->pipeline, args->pipeline, NAMEDATALEN);
		mine->index = args->index;
	}
	mine->owner = args->owner;
	mine->owner_exempt = args->owner_exempt;
	mine->parallelism = args->parallelism;
	mine->pid = MyProcPid;
	mine->latch = MyLatch;
	mine->restarting = false;
	mine->state = SK_WORKER_STARTING;
	mine->started_at = GetCurrentTimestamp();
	entry = waiting_entry(dboid, args->pipeline_id, args->index);
	if (entry != NULL)
		entry->in_use = false;
	LWLockRelease(shared->lock);
	return mine;
}

/*
 * Why a worker has no slot, as the log and pipeline_status say it, in
 * CurrentMemoryContext.
 */
char *
sk_claim_message(SkClaim claim, const char *pipeline)
{
	if (claim == SK_CLAIM_OWNER_LIMIT)
		return psprintf("too many pipeline workers for the owner of pipeline \"%s\"",
						pipeline);
	return psprintf("no free pipeline worker slot for pipeline \"%s\"", pipeline);
}

/*
 * For start_pipeline(): the free slots, and those the workers of an owner
 * hold in every database; the slots of the pipeline of this id in database
 * dboid count as free, since it starts its workers anew.
 */
void
sk_slots_room(Oid dboid, int64 pipeline_id, Oid owner, int *free_slots,
			  int *owner_workers)
{
	int			i;

	*free_slots = 0;
	LWLockAcquire(shared->lock, LW_SHARED);
	for (i = 0; i < shared->nslots; i++)
		if (!shared->slots[i].in_use ||
			slot_is(&shared->slots[i], dboid, pipeline_id))
			(*free_slots)++;
	*owner_workers = owner_slots(owner, dboid, pipeline_id);
	LWLockRelease(shared->lock);
}

/*
 * The worker leaves its slot.  A worker that stops because it was asked to
 * (or because its pipeline is gone) frees it; a failing one keeps it, with
 * one more failure, for its successor's backoff.
 */
void
sk_slot_release(SkWorkerSlot *slot, bool keep_failures)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (slot->pid == MyProcPid)
	{
		slot->pid = 0;
		slot->latch = NULL;
		if (keep_failures)
		{
			slot->failures++;
			slot->restart_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   Min(SK_MAX_BACKOFF_MS,
															   1000L << Min(slot->failures - 1, 6)));
		}
		else
			slot->in_use = false;
	}
	LWLockRelease(shared->lock);
}

bool
sk_slot_stop_requested(SkWorkerSlot *slot)
{
	bool		stop;

	LWLockAcquire(shared->lock, LW_SHARED);
	stop = slot->stop_requested;
	LWLockRelease(shared->lock);
	return stop;
}

void
sk_slot_set_state(SkWorkerSlot *slot, SkWorkerState state)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	slot->state = state;
	LWLockRelease(shared->lock);
}

/* Count a committed batch; it also ends a run of failures. */
void
sk_slot_report_batch(SkWorkerSlot *slot, int64 messages, int64 rows,
					 int64 dead)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		second = now / USECS_PER_SEC;
	int			i = (int) (second % SK_RATE_SECONDS);

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	slot->messages += messages;
	slot->rows += rows;
	slot->dead += dead;
	slot->last_commit_at = now;
	slot->failures = 0;
	slot->state = SK_WORKER_RUNNING;
	if (slot->rate_second[i] != second)
	{
		slot->rate_second[i] = second;
		slot->rate_messages[i] = 0;
		slot->rate_rows[i] = 0;
	}
	slot->rate_messages[i] += messages;
	slot->rate_rows[i] += rows;
	LWLockRelease(shared->lock);
}

void
sk_slot_report_error(SkWorkerSlot *slot, const char *error)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	strlcpy(slot->last_error, error, sizeof(slot->last_error));
	slot->last_error_at = GetCurrentTimestamp();
	LWLockRelease(shared->lock);
}

/*
 * Ask every worker of a pipeline to stop after its current batch, and wait
 * until none runs; false on timeout.  The request is made again while
 * waiting, so that a worker that takes a slot meanwhile stops too.  Serves
 * interrupts, so a cancel ends the wait.
 */
bool
sk_pipeline_stop(Oid dboid, int64 pipeline_id, int timeout_ms)
{
	instr_time	start;

	INSTR_TIME_SET_CURRENT(start);
	for (;;)
	{
		bool		running = false;
		instr_time	waited;
		int			i;

		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		for (i = 0; i < shared->nslots; i++)
		{
			SkWorkerSlot *slot = &shared->slots[i];

			if (!slot_is(slot, dboid, pipeline_id))
				continue;
			if (slot_running(slot))
			{
				if (!slot->stop_requested)
				{
					slot->state = SK_WORKER_STOPPING;
					SetLatch(slot->latch);
				}
				running = true;
			}
			slot->stop_requested = true;
		}
		LWLockRelease(shared->lock);

		if (!running)
			return true;
		INSTR_TIME_SET_CURRENT(waited);
		INSTR_TIME_SUBTRACT(waited, start);
		if (INSTR_TIME_GET_MILLISEC(waited) >= timeout_ms)
			return false;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, SK_WAIT_EVENT_KAFKA);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * For the launcher: the failed workers whose delay has passed, then the
 * waiting workers that a slot is free for (the longest waiting first), at
 * most max, marked as being started (for a minute: if no worker claims a
 * slot by then, it is tried again).
 */
int
sk_slots_due(SkWorkerArgs *due, Oid *dbs, int max)
{
	TimestampTz now = GetCurrentTimestamp();
	SkWaiting  *list = waiting_list();
	int			n = 0;
	int			nfree = 0;
	int			first_waiting;
	int			i;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < shared->nslots && n < max; i++)
	{
		SkWorkerSlot *slot = &shared->slots[i];

		if (!slot->in_use || slot_running(slot) || slot->stop_requested ||
			slot->restart_at > now)
			continue;
		dbs[n] = slot->dboid;
		memset(&due[n], 0, sizeof(SkWorkerArgs));
		due[n].index = slot->index;
		due[n].parallelism = slot->parallelism;
		due[n].pipeline_id = slot->pipeline_id;
		due[n].owner = slot->owner;
		due[n].owner_exempt = slot->owner_exempt;
		strlcpy(due[n].pipeline, slot->pipeline, NAMEDATALEN);
		n++;
		slot->restarting = true;
		slot->restart_at = TimestampTzPlusMilliseconds(now, SK_MAX_BACKOFF_MS);
	}

	for (i = 0; i < shared->nslots; i++)
		if (!shared->slots[i].in_use)
			nfree++;
	first_waiting = n;
	while (n < max && nfree > 0)
	{
		SkWaiting  *oldest = NULL;

		for (i = 0; i < shared->nwaiting; i++)
		{
			SkWaiting  *entry = &list[i];
			int			owned;
			int			j;

			if (!entry->in_use || entry->retry_at > now ||
				(oldest != NULL && oldest->since <= entry->since))
				continue;
			if (!entry->args.owner_exempt)
			{
				/* the slots the owner holds, and those it is about to */
				owned = owner_slots(entry->args.owner, InvalidOid, 0);
				for (j = first_waiting; j < n; j++)
					if (due[j].owner == entry->args.owner)
						owned++;
				if (owned >= sk_max_workers_per_owner)
					continue;
			}
			oldest = entry;
		}
		if (oldest == NULL)
			break;
		dbs[n] = oldest->dboid;
		due[n++] = oldest->args;
		oldest->retry_at = TimestampTzPlusMilliseconds(now, SK_MAX_BACKOFF_MS);
		nfree--;
	}
	LWLockRelease(shared->lock);
	return n;
}

/* Forget the workers of a database that was dropped. */
void
sk_slots_forget_database(Oid dboid)
{
	SkWaiting  *list = waiting_list();
	int			i;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < shared->nslots; i++)
		if (shared->slots[i].in_use && shared->slots[i].dboid == dboid &&
			!slot_running(&shared->slots[i]))
			shared->slots[i].in_use = false;
	for (i = 0; i < shared->nwaiting; i++)
		if (list[i].in_use && list[i].dboid == dboid)
			list[i].in_use = false;
	LWLockRelease(shared->lock);
}

/*
 * Forget the workers of a pipeline that are gone: free their slots, and
 * take them off the waiting list.
 */
void
sk_pipeline_forget(Oid dboid, int64 pipeline_id)
{
	SkWaiting  *list = waiting_list();
	int			i;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < shared->nslots; i++)
		if (slot_is(&shared->slots[i], dboid, pipeline_id) &&
			!slot_running(&shared->slots[i]))
			shared->slots[i].in_use = false;
	for (i = 0; i < shared->nwaiting; i++)
		if (list[i].in_use && list[i].dboid == dboid &&
			list[i].args.pipeline_id == pipeline_id)
			list[i].in_use = false;
	LWLockRelease(shared->lock);
}

/*
 * sales_kafka._pipeline_slots(): the slots of this database, one row per
 * worker, and the workers waiting for one ("waiting", without a pid), for
 * the pipeline_status view.  The counts of dead letters and the last error
 * (which can show a message's values) only to roles with the rights of the
 * pipeline's owner, NULL to others.
 */
PG_FUNCTION_INFO_V1(sales_kafka_pipeline_slots);
Datum
sales_kafka_pipeline_slots(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		now_second = GetCurrentTimestamp() / USECS_PER_SEC;
	SkWorkerSlot *copies;
	bool	   *running;
	SkWaiting  *waiting;
	int			n = 0;
	int			nwaiting = 0;
	int			i;

	SetSingleFuncCall(fcinfo, 0);
	if (shared == NULL)
		PG_RETURN_VOID();

	/* a copy: checking privileges may read catalogs, not under our lock */
	copies = palloc(sizeof(SkWorkerSlot) * shared->nslots);
	running = palloc(sizeof(bool) * shared->nslots);
	waiting = palloc(sizeof(SkWaiting) * shared->nwaiting);
	LWLockAcquire(shared->lock, LW_SHARED);
	for (i = 0; i < shared->nslots; i++)
	{
		if (!shared->slots[i].in_use || shared->slots[i].dboid != MyDatabaseId)
			continue;
		running[n] = slot_running(&shared->slots[i]);
		copies[n++] = shared->slots[i];
	}
	for (i = 0; i < shared->nwaiting; i++)
		if (waiting_list()[i].in_use && waiting_list()[i].dboid == MyDatabaseId)
			waiting[nwaiting++] = waiting_list()[i];
	LWLockRelease(shared->lock);

	for (i = 0; i < n; i++)
	{
		SkWorkerSlot *slot = &copies[i];
		bool		privileged = has_privs_of_role(GetUserId(), slot->owner);
		Datum		values[13];
		bool		nulls[13];
		int64		rate_messages = 0;
		int64		rate_rows = 0;
		int64		span;
		int			s;

		/* the last minute's complete seconds, or those since the start */
		span = Max(1, Min(SK_RATE_SECONDS,
						  now_second - slot->started_at / USECS_PER_SEC));
		for (s = 0; s < SK_RATE_SECONDS; s++)
			if (slot->rate_second[s] >= now_second - span &&
				slot->rate_second[s] < now_second)
			{
				rate_messages += slot->rate_messages[s];
				rate_rows += slot->rate_rows[s];
			}

		memset(nulls, 0, sizeof(nulls));
		values[0] = Int64GetDatum(slot->pipeline_id);
		values[1] = Int32GetDatum(slot->index);
		values[2] = Int32GetDatum(slot->pid);
		nulls[2] = !running[i];
		/* a slot without a worker waits for the launcher to restart it */
		values[3] = CStringGetTextDatum(nulls[2] ? "backoff" :
										state_names[slot->state]);
		values[4] = TimestampTzGetDatum(slot->started_at);
		values[5] = Int64GetDatum(slot->messages);
		values[6] = Int64GetDatum(slot->rows);
		values[7] = Int64GetDatum(slot->dead);
		nulls[7] = !privileged;
		values[8] = Float8GetDatum((double) rate_messages / span);
		values[9] = Float8GetDatum((double) rate_rows / span);
		values[10] = TimestampTzGetDatum(slot->last_commit_at);
		nulls[10] = slot->last_commit_at == 0;
		values[11] = CStringGetTextDatum(slot->last_error);
		nulls[11] = slot->last_error[0] == '\0' || !privileged;
		values[12] = TimestampTzGetDatum(slot->last_error_at);
		nulls[12] = slot->last_error_at == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	/* why a waiting worker waits is its last error */
	for (i = 0; i < nwaiting; i++)
	{
		SkWaiting  *entry = &waiting[i];
		Datum		values[13];
		bool		nulls[13];

		memset(nulls, true, sizeof(nulls));
		values[0] = Int64GetDatum(entry->args.pipeline_id);
		values[1] = Int32GetDatum(entry->args.index);
		values[3] = CStringGetTextDatum("waiting");
		values[5] = Int64GetDatum(0);
		values[6] = Int64GetDatum(0);
		values[8] = Float8GetDatum(0);
		values[9] = Float8GetDatum(0);
		values[11] = CStringGetTextDatum(sk_claim_message(entry->reason,
														  entry->args.pipeline));
		values[12] = TimestampTzGetDatum(entry->since);
		nulls[0] = nulls[1] = nulls[3] = nulls[5] = nulls[6] = false;
		nulls[8] = nulls[9] = nulls[12] = false;
		nulls[11] = !has_privs_of_role(GetUserId(), entry->args.owner);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}

/*
 * sales_kafka._pipeline_workers() of versions 1.1 and 1.2, which 1.3
 * replaced by _pipeline_slots(): creating it, on the way from 1.0 to 1.3,
 * needs the symbol.  Its old callers wait for ALTER EXTENSION ... UPDATE.
 */
PG_FUNCTION_INFO_V1(sales_kafka_pipeline_workers);
Datum
sales_kafka_pipeline_workers(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the installed sales_kafka library needs a newer version of the extension"),
			 errhint("Run ALTER EXTENSION sales_kafka UPDATE.")));
	PG_RETURN_VOID();
}
