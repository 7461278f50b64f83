/*-------------------------------------------------------------------------
 *
 * pipeline_worker.c
 *		The consumer worker of a pipeline: reads its partitions, writes
 *		each batch and the batch's offsets in one transaction.
 *
 * Exactly once: the next offset of every partition lives in
 * sales_kafka.pipeline_offset, and each batch's rows, dead letters and new
 * offsets commit together.  On start the worker seeks every partition to
 * its stored offset, so a crash at any point replays exactly what was not
 * committed.  The offsets are updated only where they still hold what this
 * worker read from them: if anything else moved them (a duplicate worker,
 * a reset), the batch rolls back and the worker seeks again.  Kafka's own
 * group offsets are never used.
 *
 * A pipeline reads every partition of its topic, or the subset its
 * "partitions" list names (several servers then share the topic, each
 * with its own partitions); partitions of the list that the topic does
 * not have are reported (pipeline_status.last_error) and read once they
 * appear.  Parallel workers of one pipeline each take the partitions whose
 * position among the pipeline's partitions (the partition number itself
 * when it reads them all) modulo the parallelism is their index.  New
 * partitions are picked up every 30 seconds and start at their earliest
 * offset.
 *
 * Errors: a batch whose transaction fails for a reason that retrying cannot
 * fix (the target dropped, a privilege revoked, a column changed) stops
 * the pipeline and records why; any other error ends the worker, and the
 * launcher starts it again after a delay that grows while failures repeat.
 * Bad messages and rows never fail a batch: see pipeline_sink.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "access/xact.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"

#include "compat.h"
#include "sales_kafka.h"

/* messages decoded, then written, at a time: what fits in the CPU's caches */
#define SK_WRITE_CHUNK 1000
/* how often an idle worker checks its pipeline, and the topic's partitions */
#define SK_IDLE_CHECK_MS 1000
#define SK_METADATA_CHECK_MS 30000

typedef struct Worker
{
	SkWorkerArgs args;
	SkPipeline *pipeline;
	SkPartSet  *owned;			/* the pipeline's partitions; NULL: all */
	char	   *topic;
	Oid			serverid;
	SkKafka    *kc;
	SkSinkPlans *plans;			/* the sink's statements, kept */
	MemoryContext workcxt;		/* the worker's life: handle, offsets, plans */
	MemoryContext batchcxt;		/* reset after every batch */

	int			npartitions;
	int64	   *next;			/* stored next offset by partition; -1: not ours */
	int64	   *batch_next;		/* next offset after this batch; -1: none */
	int64		last_metadata_ms;

	rd_kafka_message_t **msgs;	/* the batch, owned until it commits */
	int			nmsgs;
} Worker;

static SkWorkerSlot *slot = NULL;
static bool clean_exit = false;

static void
worker_exit(int code, Datum arg)
{
	if (slot != NULL)
		sk_slot_release(slot, !clean_exit);
}

static void pg_attribute_noreturn()
stop_worker(void)
{
	clean_exit = true;
	proc_exit(0);
}

/*
 * Start a transaction for one unit of work, described by "activity" (a
 * string constant) in pg_stat_activity and in error reports: as a client's
 * statement, it has its own now() and its own statement_timeout.
 */
static void
begin_transaction(Worker *w, const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	debug_query_string = activity;
	pgstat_report_activity(STATE_RUNNING, activity);
	if (StatementTimeout > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
	MemoryContextSwitchTo(w->batchcxt);
}

/* The unit of work is over, committed or not. */
static void
end_work(Worker *w)
{
	disable_timeout(STATEMENT_TIMEOUT, false);
	debug_query_string = NULL;
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(w->batchcxt);
}

static void
commit_transaction(Worker *w)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
	/* a background worker reports table statistics only when asked to */
	pgstat_report_stat(false);
	end_work(w);
}

static void
abort_transaction(Worker *w)
{
	AbortCurrentTransaction();
	end_work(w);
}

/* lock_pipeline()'s arguments and result, for sk_try_subtransaction() */
typedef struct LockWork
{
	int64		id;
	bool		for_update;
	SkPipeline *result;
} LockWork;

static void
lock_work(void *arg)
{
	LockWork   *work = (LockWork *) arg;

	work->result = sk_catalog_lock_pipeline(work->id, work->for_update);
}

/*
 * Lock the pipeline's row FOR SHARE (or FOR UPDATE) in the current
 * transaction and read it, in CurrentMemoryContext; NULL if the pipeline
 * is gone.  A worker never waits for the lock: the transaction holding it
 * may be a start_pipeline() or stop_pipeline() waiting for this worker to
 * stop.  So it tries again every 50 ms, serving interrupts, and leaves as
 * a clean stop once its stop is requested.
 */
static SkPipeline *
lock_pipeline(int64 id, bool for_update)
{
	for (;;)
	{
		LockWork	work = {id, for_update, NULL};
		ErrorData  *edata = sk_try_subtransaction(lock_work, &work);

		if (edata == NULL)
			return work.result;
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			ReThrowError(edata);
		FreeErrorData(edata);
		if (slot != NULL && sk_slot_stop_requested(slot))
			stop_worker();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 50, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Find the topic's partitions, read (or decide and store) the offset of each
 * of ours, and assign them to the consumer at those offsets.
 */
static void
assign_partitions(Worker *w)
{
	SkPipeline *p = w->pipeline;
	SkWatermark *marks;
	int			nmarks;
	int64	   *stored;
	int64	   *from_time = NULL;
	bool		any_stored = false;
	SkOffset   *new_offsets;
	int			nnew = 0;
	int			nowned = 0;
	int32	   *numbers;
	SkPartSet  *missing;
	rd_kafka_topic_partition_list_t *parts;
	MemoryContext old;
	int			i;

	sk_slot_set_state(slot, SK_WORKER_STARTING);
	marks = sk_kafka_watermarks(w->kc, w->topic, &nmarks);
	w->last_metadata_ms = sk_kafka_now_ms();

	old = MemoryContextSwitchTo(w->workcxt);
	w->npartitions = 0;
	for (i = 0; i < nmarks; i++)
		w->npartitions = Max(w->npartitions, marks[i].partition + 1);
	w->next = palloc(sizeof(int64) * Max(w->npartitions, 1));
	w->batch_next = palloc(sizeof(int64) * Max(w->npartitions, 1));
	MemoryContextSwitchTo(old);
	stored = palloc(sizeof(int64) * Max(w->npartitions, 1));
	for (i = 0; i < w->npartitions; i++)
		w->next[i] = w->batch_next[i] = stored[i] = -1;

	begin_transaction(w, "sales_kafka: reading the offsets of the partitions");

	/*
	 * One worker of the pipeline at a time decides the offsets of every
	 * partition without one: whether the pipeline is new (start_at applies)
	 * or the partition was added later (it starts at its beginning) is then
	 * the same answer for all of them.  A pipeline dropped meanwhile stops.
	 */
	if (lock_pipeline(p->id, true) == NULL)
	{
		commit_transaction(w);
		stop_worker();
	}
	sk_offsets_load(p->id, w->topic, w->npartitions, stored);
	for (i = 0; i < nmarks; i++)
		if (sk_partset_contains(w->owned, marks[i].partition) &&
			stored[marks[i].partition] >= 0)
			any_stored = true;

	/* a point in time: ask Kafka for the first offset at or after it */
	if (!any_stored && strcmp(p->start_at, "earliest") != 0 &&
		strcmp(p->start_at, "latest") != 0)
	{
		int32	   *ids = palloc(sizeof(int32) * Max(nmarks, 1));

		for (i = 0; i < nmarks; i++)
			ids[i] = marks[i].partition;
		from_time = sk_kafka_offsets_for_time(w->kc, w->topic, nmarks, ids,
											  strtoi64(p->start_at, NULL, 10));
	}

	new_offsets = palloc(sizeof(SkOffset) * Max(nmarks, 1));
	parts = rd_kafka_topic_partition_list_new(Max(nmarks, 1));
	for (i = 0; i < nmarks; i++)
	{
		int32		part = marks[i].partition;
		int64		offset = stored[part];

		if (!sk_partset_contains(w->owned, part))
			continue;			/* another pipeline's, on this server or another */
		nowned++;
		if (offset < 0)
		{
			/*
			 * Not stored yet: a new pipeline starts where it was told to; a
			 * partition added to the topic later starts at its beginning.
			 */
			if (any_stored || strcmp(p->start_at, "earliest") == 0)
				offset = marks[i].low;
			else if (from_time != NULL && from_time[i] >= 0)
				offset = from_time[i];
			else
				offset = marks[i].high;

			new_offsets[nnew].partition = part;
			new_offsets[nnew].expected = SK_OFFSET_NEW;
			new_offsets[nnew].next = offset;
			new_offsets[nnew].high = marks[i].high;
			nnew++;
		}
		if (sk_partset_ordinal(w->owned, part) % w->args.parallelism !=
			w->args.index)
			continue;
		w->next[part] = offset;
		rd_kafka_topic_partition_list_add(parts, w->topic, part)->offset = offset;
	}
	/* with the partitions' high watermarks: their lag shows at once */
	if (!sk_offsets_store(p->id, w->topic, new_offsets, nnew))
		elog(ERROR, "offsets of pipeline \"%s\" were stored meanwhile",
			 p->name);
	commit_transaction(w);

	sk_kafka_assign(w->kc, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	MemoryContextReset(w->batchcxt);
	sk_slot_set_state(slot, SK_WORKER_RUNNING);
	ereport(DEBUG1,
			(errmsg("pipeline \"%s\" reads %d partitions of topic \"%s\"",
					p->name, nowned, w->topic)));

	/* partitions of its list that the topic lacks: said by the first worker */
	numbers = palloc(sizeof(int32) * Max(nmarks, 1));
	for (i = 0; i < nmarks; i++)
		numbers[i] = marks[i].partition;
	missing = sk_partset_missing(w->owned, numbers, nmarks);
	if (missing->nranges > 0 && w->args.index == 0)
	{
		char	   *why = psprintf("topic \"%s\" has no partitions %s of pipeline \"%s\"",
								   w->topic, sk_partset_text(missing), p->name);

		ereport(WARNING,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("%s", why),
				 errdetail("The topic has %d partitions; the pipeline reads those of its list that exist, and the others once they are added.",
						   nmarks)));
		sk_slot_report_error(slot, why);
	}
	MemoryContextReset(w->batchcxt);
}

/* Drop the messages of a batch that will not be written (it rolled back). */
static void
discard_batch(Worker *w)
{
	int			i;

	for (i = 0; i < w->nmsgs; i++)
		rd_kafka_message_destroy(w->msgs[i]);
	w->nmsgs = 0;
	for (i = 0; i < w->npartitions; i++)
		w->batch_next[i] = -1;
}

/* Decoding messages next .. hi-1 into a sink; next moves as it goes */
typedef struct DecodeRange
{
	Worker	   *w;
	SkMapping  *map;
	SkSink	   *sink;
	bool	   *wanted;
	bool		with_headers;
	Datum	   *values;
	bool	   *nulls;
	int			next;
	int			hi;
} DecodeRange;

/* Decode the next message of the range; false when the range is done. */
static bool
decode_next(DecodeRange *r, bool capture)
{
	rd_kafka_message_t *msg;
	SkMessage	m;
	SkDecodeError error;

	if (r->next >= r->hi)
		return false;
	msg = r->w->msgs[r->next];
	sk_message_from_kafka(msg, r->w->topic, r->with_headers, &m);
	if (sk_decode_message(r->map, &m, r->wanted, r->values, r->nulls,
						  capture, &error))
		sk_sink_add(r->sink, msg, r->values, r->nulls);
	else
		sk_sink_add_dead(r->sink, msg, error.sqlstate, error.message,
						 error.detail);
	r->next++;
	return true;
}

static void
decode_rest(void *arg)
{
	while (decode_next((DecodeRange *) arg, false))
		;
}

/*
 * Decode messages lo .. hi-1 of the batch into the sink.  Optimistically
 * all at once in one subtransaction; when one fails, it is decoded again
 * alone, capturing its error for the dead letters, and the rest go on.
 */
static void
decode_messages(Worker *w, SkMapping *map, SkSink *sink, int lo, int hi)
{
	DecodeRange r;

	r.w = w;
	r.map = map;
	r.sink = sink;
	r.wanted = sk_sink_wanted(sink);
	r.with_headers = map->headers_attno > 0 && r.wanted[map->headers_attno - 1];
	r.values = palloc(sizeof(Datum) * map->natts);
	r.nulls = palloc(sizeof(bool) * map->natts);
	r.next = lo;
	r.hi = hi;

	for (;;)
	{
		ErrorData  *edata = sk_try_subtransaction(decode_rest, &r);

		if (edata == NULL)
			break;
		if (!sk_is_data_error(edata->sqlerrcode))
			ReThrowError(edata);
		FreeErrorData(edata);
		/* message r.next is bad: decode it once more, keeping its error */
		(void) decode_next(&r, true);
	}
}

/*
 * Move the stored offsets of the batch's partitions forward, where they
 * still hold what we read.  False if any did not.
 */
static bool
store_offsets(Worker *w)
{
	SkOffset   *offsets = palloc(sizeof(SkOffset) * Max(w->npartitions, 1));
	int			n = 0;
	int			i;

	for (i = 0; i < w->npartitions; i++)
	{
		if (w->batch_next[i] < 0)
			continue;
		offsets[n].partition = i;
		offsets[n].expected = w->next[i];
		offsets[n].next = w->batch_next[i];
		offsets[n].high = sk_kafka_cached_high(w->kc, w->topic, i);
		n++;
	}
	return sk_offsets_store(w->pipeline->id, w->topic, offsets, n);
}

/* True if the pipeline is still there and enabled */
static bool
pipeline_enabled(Worker *w)
{
	SkPipeline *p = sk_catalog_load_pipeline(w->pipeline->id);

	return p != NULL && p->enabled && !p->failed &&
		p->source == w->pipeline->source;
}

/*
 * Write the batch: decode, write rows and dead letters, store the offsets,
 * commit.  The batch is consumed either way.
 */
static void
write_batch(Worker *w)
{
	SkPipeline *p = w->pipeline;
	SkMapping  *map;
	SkSink	   *sink;
	Oid			saved_user;
	int			saved_context;
	int64		rows;
	int64		dead;
	bool		stored;
	bool		notify_rollups;
	int			lo;
	int			i;

	begin_transaction(w, "sales_kafka: writing a batch");
	if (!pipeline_enabled(w))
	{
		abort_transaction(w);
		discard_batch(w);
		stop_worker();
	}
	sk_catalog_check_owner(p);

	/* the user's side runs with the owner's rights, and no more */
	GetUserIdAndSecContext(&saved_user, &saved_context);
	SetUserIdAndSecContext(p->owner, saved_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	sk_sink_check_privileges(p->source, p->target, p->upsert, p->owner, p->name);
	map = sk_mapping_load(p->source);
	if (strcmp(map->topic, w->topic) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the topic of foreign table \"%s\" changed from \"%s\" to \"%s\"",
						map->relname, w->topic, map->topic),
				 errdetail("The worker starts again to read the new topic.")));
	sink = sk_sink_open(w->plans, map, p);
	for (lo = 0; lo < w->nmsgs; lo += SK_WRITE_CHUNK)
	{
		decode_messages(w, map, sink, lo, Min(w->nmsgs, lo + SK_WRITE_CHUNK));
		sk_sink_write(sink);
	}
	sk_sink_finish(sink, &rows, &dead);
	sk_sink_close(sink);
	SetUserIdAndSecContext(saved_user, saved_context);

	/*
	 * a sales model's order lines or metric records: its rollup worker
	 * rolls them up
	 */
	notify_rollups = rows > 0 && get_rel_name(p->target) != NULL &&
		(strcmp(get_rel_name(p->target), "order_lines") == 0 ||
		 strcmp(get_rel_name(p->target), "metrics") == 0);

	stored = store_offsets(w);
	if (!stored)
	{
		/* someone moved our offsets: forget this batch and read again */
		abort_transaction(w);
		discard_batch(w);
		ereport(LOG,
				(errmsg("pipeline \"%s\": stored offsets changed under the worker, reading again from them",
						p->name)));
		assign_partitions(w);
		return;
	}
	commit_transaction(w);

	for (i = 0; i < w->npartitions; i++)
		if (w->batch_next[i] >= 0)
			w->next[i] = w->batch_next[i];
	sk_slot_report_batch(slot, w->nmsgs, rows, dead);
	if (notify_rollups)
		sk_rollup_notify(MyDatabaseId);
	discard_batch(w);
	MemoryContextReset(w->batchcxt);
}

/* Between batches: is the pipeline still wanted, did the topic grow? */
static void
idle_check(Worker *w)
{
	bool		enabled;

	begin_transaction(w, "sales_kafka: checking the pipeline");
	enabled = pipeline_enabled(w);
	commit_transaction(w);
	MemoryContextReset(w->batchcxt);
	if (!enabled)
		stop_worker();

	if (sk_kafka_now_ms() - w->last_metadata_ms >= SK_METADATA_CHECK_MS)
	{
		int			n;
		int			nparts = 0;
		SkWatermark *marks = sk_kafka_watermarks_noerror(w->kc, w->topic, &n);
		int			i;

		w->last_metadata_ms = sk_kafka_now_ms();
		for (i = 0; marks != NULL && i < n; i++)
			nparts = Max(nparts, marks[i].partition + 1);
		MemoryContextReset(w->batchcxt);
		if (nparts > w->npartitions)
			assign_partitions(w);
	}
}

/*
 * Gather messages until the batch is full or flush_interval has passed
 * since its first message.
 */
static void
collect_batch(Worker *w)
{
	SkPipeline *p = w->pipeline;
	int64		deadline = 0;
	int64		next_idle_check = sk_kafka_now_ms() + SK_IDLE_CHECK_MS;

	while (w->nmsgs < p->batch_size)
	{
		rd_kafka_message_t *msg;
		int64		now = sk_kafka_now_ms();
		int64		expected;
		int			wait_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		/* (a shared lock: not for every message of a full stream) */
		if ((w->nmsgs % 1024) == 0 && sk_slot_stop_requested(slot))
		{
			if (w->nmsgs == 0)
				stop_worker();
			return;				/* write what we have, then stop */
		}
		if (w->nmsgs > 0 && now >= deadline)
			return;
		if (w->nmsgs == 0 && now >= next_idle_check)
		{
			idle_check(w);
			next_idle_check = sk_kafka_now_ms() + SK_IDLE_CHECK_MS;
		}

		wait_ms = w->nmsgs > 0 ? (int) (deadline - now) :
			(int) Max(1, next_idle_check - now);
		msg = sk_kafka_next_message(w->kc, Min(wait_ms, 100));
		if (msg == NULL)
			continue;
		if (msg->err)
		{
			/* librdkafka retries by itself; show what it is waiting for */
			if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				sk_slot_report_error(slot,
									 sk_kafka_redact(w->kc, rd_kafka_message_errstr(msg)));
			continue;
		}
		if (msg->partition < 0 || msg->partition >= w->npartitions ||
			w->next[msg->partition] < 0)
			continue;			/* not one of ours */
		expected = w->batch_next[msg->partition] >= 0 ?
			w->batch_next[msg->partition] : w->next[msg->partition];
		if (msg->offset < expected)
			continue;			/* already written */

		w->msgs[w->nmsgs++] = sk_kafka_take_message(w->kc);
		w->batch_next[msg->partition] = msg->offset + 1;
		if (w->nmsgs == 1)
			deadline = sk_kafka_now_ms() + p->flush_ms;
	}
}

/*
 * Errors that no retry can fix: the pipeline stops with the reason.  Those
 * of class 42 (a privilege revoked, a table or column changed), and a
 * foreign table whose mapping the decoder refuses (sk_mapping_load()).
 */
static bool
is_permanent_error(int sqlstate)
{
	return ERRCODE_TO_CATEGORY(sqlstate) ==
		ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION ||
		sqlstate == ERRCODE_FDW_INVALID_DATA_TYPE ||
		sqlstate == ERRCODE_FDW_INCONSISTENT_DESCRIPTOR_INFORMATION ||
		sqlstate == ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE ||
		sqlstate == ERRCODE_FDW_INVALID_OPTION_NAME;
}

/*
 * Record why the pipeline stopped, in a transaction of its own (which
 * leaves the worker, as a clean stop, if a stop is requested while another
 * transaction holds the pipeline's row).  Only if it is enabled and has
 * not failed already: when if_running.
 */
static void
mark_failed(int64 pipeline_id, const char *reason, bool if_running)
{
	SkPipeline *p;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	debug_query_string = "sales_kafka: recording why the pipeline stopped";
	pgstat_report_activity(STATE_RUNNING, debug_query_string);
	p = lock_pipeline(pipeline_id, true);
	if (!if_running || (p != NULL && p->enabled && !p->failed))
		sk_catalog_set_failure(pipeline_id, reason);
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * A worker that got no slot: a twin's leaves quietly; one that found none
 * free, or whose owner runs as many workers as allowed, says so and waits
 * in the list (the launcher starts it again once a slot is free for it),
 * or, when the list is full, stops its pipeline as failed with the reason.
 * Never returns.
 */
static void pg_attribute_noreturn()
no_slot(Oid dboid, Worker *w, SkClaim claim, bool waiting)
{
	char	   *why;

	if (claim == SK_CLAIM_TWIN)
		proc_exit(0);
	why = sk_claim_message(claim, w->args.pipeline);
	ereport(WARNING,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("%s", why),
			 claim == SK_CLAIM_OWNER_LIMIT ?
			 errdetail("Its owner runs as many pipeline workers as sales_kafka.max_workers_per_owner allows (%d).",
					   sk_max_workers_per_owner) :
			 errdetail("All %d slots of sales_kafka.max_workers are taken.",
					   sk_max_pipeline_workers),
			 waiting ?
			 errhint("The worker waits, and starts once a slot is free for it.") :
			 errhint("Too many workers wait for a slot already: the pipeline stops as failed. Start it again once a slot is free.")));
	if (waiting)
		proc_exit(0);

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	mark_failed(w->args.pipeline_id, why, true);
	proc_exit(0);
}

/*
 * From here on the session is the pipeline owner's, as after SET SESSION
 * AUTHORIZATION: session_user, current_user and is_superuser show the owner
 * to the user's code (defaults, triggers, row security policies), also for
 * an owner that cannot log in.  The extension's own tables are still
 * written as the bootstrap superuser (sk_catalog_begin()).  Needs a
 * transaction, which makes the setting last when it commits, and no user
 * ID change in effect.
 */
static void
become_owner(SkPipeline *p)
{
	sk_catalog_check_owner(p);
	SetConfigOption("session_authorization", GetUserNameFromId(p->owner, false),
					PGC_SUSET, PGC_S_SESSION);
}

static void
run(Worker *w)
{
	SkMapping  *map;
	List	   *defaults;
	List	   *overrides;

	/* after the transaction that started us, see what it decided */
	begin_transaction(w, "sales_kafka: starting");
	MemoryContextSwitchTo(w->workcxt);
	w->pipeline = lock_pipeline(w->args.pipeline_id, false);
	if (w->pipeline == NULL || !w->pipeline->enabled || w->pipeline->failed)
	{
		commit_transaction(w);
		stop_worker();
	}
	become_owner(w->pipeline);
	if (w->pipeline->partitions != NULL)
		w->owned = sk_partset_parse(w->pipeline->partitions);
	sk_sink_check_privileges(w->pipeline->source, w->pipeline->target,
							 w->pipeline->upsert, w->pipeline->owner,
							 w->pipeline->name);
	map = sk_mapping_load(w->pipeline->source);
	w->topic = pstrdup(map->topic);
	w->serverid = map->serverid;
	w->msgs = palloc(sizeof(rd_kafka_message_t *) * w->pipeline->batch_size);

	/* nothing leaves the server before the owner's rights are checked */
	MemoryContextSwitchTo(w->batchcxt);
	sk_sink_check(map, w->pipeline->target, w->pipeline->upsert,
				  w->pipeline->owner, w->pipeline->name);
	MemoryContextSwitchTo(w->workcxt);
	w->plans = sk_sink_plans_create();

	defaults = list_make2(makeDefElem("queued.min.messages", (Node *) makeString("1000000"), -1),
						  makeDefElem("fetch.wait.max.ms", (Node *) makeString("50"), -1));
	/* the group's offsets are never used: it need only be the pipeline's own */
	overrides = list_make5(makeDefElem("group.id",
									   (Node *) makeString(psprintf("sales_kafka.%u." INT64_FORMAT,
																	MyDatabaseId, w->pipeline->id)), -1),
						   makeDefElem("enable.auto.commit", (Node *) makeString("false"), -1),
						   makeDefElem("enable.auto.offset.store", (Node *) makeString("false"), -1),
						   makeDefElem("enable.partition.eof", (Node *) makeString("false"), -1),
						   makeDefElem("auto.offset.reset", (Node *) makeString("earliest"), -1));
	w->kc = sk_kafka_connect(w->serverid, w->pipeline->owner, RD_KAFKA_CONSUMER,
							 defaults, overrides);
	commit_transaction(w);
	MemoryContextReset(w->batchcxt);

	assign_partitions(w);
	for (;;)
	{
		collect_batch(w);
		if (w->nmsgs > 0)
			write_batch(w);
	}
}

void
sk_pipeline_worker_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	Worker	   *w;
	SkClaim		claim;
	bool		waiting;

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

#ifdef __GLIBC__

	/*
	 * Every batch allocates and frees megabytes; left to its defaults, glibc
	 * hands them back to the kernel each time and page faults them in again
	 * (without this, the workers of bench/pipeline_ingest.sh spend 1.4
	 * times the CPU per row).  Other C libraries keep their own policy.
	 */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
#endif

	w = MemoryContextAllocZero(TopMemoryContext, sizeof(Worker));
	memcpy(&w->args, MyBgworkerEntry->bgw_extra, sizeof(SkWorkerArgs));
	w->workcxt = AllocSetContextCreate(TopMemoryContext, "sales_kafka pipeline",
									   ALLOCSET_DEFAULT_SIZES);
	w->batchcxt = AllocSetContextCreate(w->workcxt, "sales_kafka batch",
										ALLOCSET_DEFAULT_SIZES);

	/* the slot first: if connecting fails, the launcher sees it */
	slot = sk_slot_claim(dboid, &w->args, &claim, &waiting);
	if (slot == NULL)
		no_slot(dboid, w, claim, waiting);
	before_shmem_exit(worker_exit, 0);
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname(w->args.pipeline);

	PG_TRY();
	{
		run(w);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(TopMemoryContext);
		disable_timeout(STATEMENT_TIMEOUT, false);
		edata = CopyErrorData();
		sk_slot_report_error(slot, edata->message);
		if (!is_permanent_error(edata->sqlerrcode))
			PG_RE_THROW();

		EmitErrorReport();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		ereport(LOG,
				(errmsg("pipeline \"%s\" stopped: %s", w->args.pipeline,
						edata->message)));
		/* the catalog itself may be gone (DROP EXTENSION): stop anyway */
		PG_TRY();
		{
			mark_failed(w->args.pipeline_id, edata->message, false);
		}
		PG_CATCH();
		{
			EmitErrorReport();
			FlushErrorState();
			AbortOutOfAnyTransaction();
		}
		PG_END_TRY();
		stop_worker();
	}
	PG_END_TRY();
}
