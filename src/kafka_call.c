/*-------------------------------------------------------------------------
 *
 * kafka_call.c
 *		librdkafka's synchronous requests (metadata, watermarks, offsets for
 *		times) made interruptible: each runs on a short-lived helper thread
 *		while the backend waits on its latch.
 *
 * librdkafka's synchronous requests cannot be interrupted.  We run each on
 * a helper thread that touches nothing but librdkafka, malloc'd memory and
 * a pipe, while the backend waits on its latch and that pipe, serving
 * interrupts every 100 ms at most.  The thread sends its request in slices
 * of at most half a second; when the backend gives up (cancel,
 * statement_timeout, ERROR), the error reaches the client at once, and
 * while the transaction is cleaned up the handle's owner calls
 * sk_kafka_call_stop(), which tells the thread to stop and joins it within
 * one slice.
 *
 * This file knows nothing of sales_kafka's handles (kafka_conn.c), their
 * configuration or the errors they raise: it returns librdkafka's error
 * code and leaves its translation to the caller.  The thread never calls a
 * server function (no palloc, no elog, no signals: all are blocked there).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/latch.h"

#include "compat.h"
#include "sales_kafka.h"

typedef enum SkCallKind
{
	SK_CALL_LIST_TOPICS,
	SK_CALL_WATERMARKS,
	SK_CALL_OFFSETS_FOR_TIME
} SkCallKind;

/*
 * One synchronous librdkafka request running on a helper thread.  Allocated
 * with malloc: the thread must never touch palloc'd memory.
 */
struct SkCall
{
	pthread_mutex_t lock;
	bool		finished;		/* under lock: thread is done with the call */
	bool		abandoned;		/* under lock: backend wants it to stop */
	pthread_t	thread;
	int			wake[2];		/* thread writes one byte to wake[1] */
	rd_kafka_t *rk;

	/* request, read-only for the thread */
	SkCallKind	kind;
	char	   *topic;
	int			timeout_ms;
	int64		timestamp_ms;
	int			nrequested;
	int32	   *requested;

	/* result, written by the thread before "finished" */
	rd_kafka_resp_err_t err;
	const struct rd_kafka_metadata *md;
	int			nmarks;
	SkWatermark *marks;
	int64	   *offsets;
};


static void call_destroy(SkCall *call);

/* ---------------------------------------------------------------------
 * On the helper thread
 * ---------------------------------------------------------------------
 */

/*
 * Milliseconds on a monotonic clock, for timeouts; safe on any thread.
 */
int64
sk_kafka_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
remaining_ms(int64 deadline)
{
	int64		left = deadline - sk_kafka_now_ms();

	return left > 0 ? (int) left : 0;
}

/*
 * Requests run in slices of at most SK_SLICE_MS, re-sent while time is
 * left, so that an abandoned call stops within one slice.
 */
#define SK_SLICE_MS 500

static bool
call_abandoned(SkCall *call)
{
	bool		abandoned;

	pthread_mutex_lock(&call->lock);
	abandoned = call->abandoned;
	pthread_mutex_unlock(&call->lock);
	return abandoned;
}

static int
slice_ms(int64 deadline)
{
	return Min(remaining_ms(deadline), SK_SLICE_MS);
}

/*
 * Should a request that ended with err be sent again?  A slice that ends
 * before any broker is up reports a transport failure, not a timeout (a
 * broker 300 ms away needs two round trips before it is up): only
 * sales_kafka.connect_timeout decides when to give up on reaching brokers.
 */
static bool
send_again(SkCall *call, rd_kafka_resp_err_t err, int64 deadline)
{
	switch (err)
	{
		case RD_KAFKA_RESP_ERR__TIMED_OUT:
		case RD_KAFKA_RESP_ERR__TRANSPORT:
		case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
		case RD_KAFKA_RESP_ERR__RESOLVE:
			return remaining_ms(deadline) > 0 && !call_abandoned(call);
		default:
			return false;
	}
}

/*
 * Metadata of one topic (or all), retrying while a new topic has no leader
 * yet.  Runs on the helper thread.
 */
static rd_kafka_resp_err_t
call_metadata(SkCall *call, int64 deadline)
{
	rd_kafka_topic_t *rkt = NULL;
	rd_kafka_resp_err_t err;

	if (call->topic != NULL)
		rkt = rd_kafka_topic_new(call->rk, call->topic, NULL);

	for (;;)
	{
		err = rd_kafka_metadata(call->rk, rkt == NULL, rkt, &call->md,
								slice_ms(deadline));
		if (send_again(call, err, deadline))
			continue;
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR && rkt != NULL)
		{
			err = call->md->topic_cnt == 1 ? call->md->topics[0].err :
				RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
			if (err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE &&
				remaining_ms(deadline) > 100)
			{
				rd_kafka_metadata_destroy(call->md);
				call->md = NULL;
				usleep(100 * 1000);
				continue;
			}
		}
		break;
	}
	if (rkt != NULL)
		rd_kafka_topic_destroy(rkt);
	return err;
}

static int
cmp_watermark(const void *a, const void *b)
{
	const SkWatermark *x = a;
	const SkWatermark *y = b;

	return (x->partition > y->partition) - (x->partition < y->partition);
}

static rd_kafka_resp_err_t
call_watermarks(SkCall *call, int64 deadline)
{
	const rd_kafka_metadata_topic_t *t;
	rd_kafka_resp_err_t err;
	int			i;

	err = call_metadata(call, deadline);
	if (err)
		return err;

	t = &call->md->topics[0];
	call->marks = malloc(sizeof(SkWatermark) * Max(t->partition_cnt, 1));
	if (call->marks == NULL)
		return RD_KAFKA_RESP_ERR__FAIL;
	for (i = 0; i < t->partition_cnt; i++)
	{
		SkWatermark *m = &call->marks[i];

		if (call_abandoned(call))
			return RD_KAFKA_RESP_ERR__TIMED_OUT;

		m->partition = t->partitions[i].id;
		do
			err = rd_kafka_query_watermark_offsets(call->rk, call->topic,
												   m->partition, &m->low,
												   &m->high, slice_ms(deadline));
		while (send_again(call, err, deadline));
		if (err)
			return err;
		call->nmarks++;
	}
	qsort(call->marks, call->nmarks, sizeof(SkWatermark), cmp_watermark);
	return RD_KAFKA_RESP_ERR_NO_ERROR;
}

static rd_kafka_resp_err_t
call_offsets_for_time(SkCall *call, int64 deadline)
{
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_resp_err_t err;
	int			i;

	parts = rd_kafka_topic_partition_list_new(call->nrequested);
	for (i = 0; i < call->nrequested; i++)
		rd_kafka_topic_partition_list_add(parts, call->topic,
										  call->requested[i])->offset =
			call->timestamp_ms;

	do
		err = rd_kafka_offsets_for_times(call->rk, parts, slice_ms(deadline));
	while (send_again(call, err, deadline));
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		call->offsets = malloc(sizeof(int64) * Max(call->nrequested, 1));
		if (call->offsets == NULL)
			err = RD_KAFKA_RESP_ERR__FAIL;
		for (i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < parts->cnt; i++)
		{
			if (parts->elems[i].err)
				err = parts->elems[i].err;
			call->offsets[i] = parts->elems[i].offset;
		}
	}
	rd_kafka_topic_partition_list_destroy(parts);
	return err;
}

/* Free a call and everything it holds except the handle. */
static void
call_destroy(SkCall *call)
{
	if (call->md != NULL)
		rd_kafka_metadata_destroy(call->md);
	free(call->marks);
	free(call->offsets);
	free(call->topic);
	free(call->requested);
	close(call->wake[0]);
	close(call->wake[1]);
	pthread_mutex_destroy(&call->lock);
	free(call);
}

/*
 * Helper thread body.  Touches nothing but librdkafka, the call and its pipe:
 * no palloc, no elog, no signals (all are blocked here).
 */
static void *
call_main(void *arg)
{
	SkCall	   *call = (SkCall *) arg;
	int64		deadline = sk_kafka_now_ms() + call->timeout_ms;

	switch (call->kind)
	{
		case SK_CALL_LIST_TOPICS:
			call->err = call_metadata(call, deadline);
			break;
		case SK_CALL_WATERMARKS:
			call->err = call_watermarks(call, deadline);
			break;
		case SK_CALL_OFFSETS_FOR_TIME:
			call->err = call_offsets_for_time(call, deadline);
			break;
	}

	pthread_mutex_lock(&call->lock);
	call->finished = true;
	pthread_mutex_unlock(&call->lock);

	if (write(call->wake[1], "x", 1) != 1)
	{
		/* cannot happen with an empty pipe; the backend also polls */
	}
	return NULL;
}

/* ---------------------------------------------------------------------
 * On the backend
 * ---------------------------------------------------------------------
 */

/*
 * Allocate a call for a request on the owner's handle.  Throws only on
 * resource exhaustion, leaking nothing.
 */
static SkCall *
call_prepare(SkCallOwner *owner, SkCallKind kind, const char *topic,
			 int timeout_ms)
{
	SkCall	   *call;

	Assert(owner->inflight == NULL && owner->rk != NULL);

	call = calloc(1, sizeof(SkCall));
	if (call == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	call->kind = kind;
	call->rk = owner->rk;
	call->timeout_ms = timeout_ms;
	call->wake[0] = call->wake[1] = -1;
	pthread_mutex_init(&call->lock, NULL);
	if (topic != NULL && (call->topic = strdup(topic)) == NULL)
	{
		call_destroy(call);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	}
	if (pipe2(call->wake, O_CLOEXEC | O_NONBLOCK) != 0)
	{
		int			save_errno = errno;

		call_destroy(call);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create pipe: %m")));
	}
	return call;
}

/*
 * Start a prepared call on a helper thread and wait for it, serving
 * interrupts and the owner's callbacks.  On return the call is finished and
 * joined, and the caller must call_destroy() it; if an interrupt throws,
 * the call stays the owner's inflight one, for sk_kafka_call_stop().
 */
static void
call_wait(SkCallOwner *owner, SkCall *call)
{
	sigset_t	all,
				old;
	int			rc;

	/* the thread must never take one of the backend's signals */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&call->thread, NULL, call_main, call);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
	{
		call_destroy(call);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not start a thread for a Kafka request: %s",
						strerror(rc))));
	}
	owner->inflight = call;

	for (;;)
	{
		int			events;
		bool		finished;

		events = WaitLatchOrSocket(MyLatch,
								   WL_LATCH_SET | WL_SOCKET_READABLE |
								   WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								   call->wake[0], 100, SK_WAIT_EVENT_KAFKA);
		if (events & WL_LATCH_SET)
			ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		owner->serve(owner->serve_arg);

		pthread_mutex_lock(&call->lock);
		finished = call->finished;
		pthread_mutex_unlock(&call->lock);
		if (finished)
			break;
	}
	pthread_join(call->thread, NULL);
	owner->inflight = NULL;
	/* callbacks the request triggered, e.g. the connection error */
	owner->serve(owner->serve_arg);
}

/*
 * Stop the owner's request in flight, if any: the backend gave up on it (an
 * interrupt or ERROR).  Tells the thread, which stops within one slice, and
 * waits for it.  The client already has its error; only the next command
 * waits.  Must run before the handle is destroyed; never throws.
 */
void
sk_kafka_call_stop(SkCallOwner *owner)
{
	SkCall	   *call = owner->inflight;

	owner->inflight = NULL;
	if (call == NULL)
		return;
	pthread_mutex_lock(&call->lock);
	call->abandoned = true;
	pthread_mutex_unlock(&call->lock);
	pthread_join(call->thread, NULL);
	call_destroy(call);
}

static int
cmp_topic(const void *a, const void *b)
{
	return strcmp(((const SkTopic *) a)->name, ((const SkTopic *) b)->name);
}

/*
 * Every topic of the cluster with its partition count, sorted by name, in
 * *topics, an array palloc'd in CurrentMemoryContext.  Returns librdkafka's
 * error, and then leaves *topics NULL.  timeout_ms bounds the wait for
 * brokers; interrupts throw.
 */
rd_kafka_resp_err_t
sk_kafka_call_topics(SkCallOwner *owner, int timeout_ms, SkTopic **topics,
					 int *ntopics)
{
	SkCall	   *call = call_prepare(owner, SK_CALL_LIST_TOPICS, NULL,
									timeout_ms);
	rd_kafka_resp_err_t err;
	int			i;

	*topics = NULL;
	call_wait(owner, call);
	err = call->err;
	if (err)
	{
		call_destroy(call);
		return err;
	}

	PG_TRY();
	{
		*ntopics = call->md->topic_cnt;
		*topics = palloc(sizeof(SkTopic) * Max(*ntopics, 1));
		for (i = 0; i < *ntopics; i++)
		{
			(*topics)[i].name = pstrdup(call->md->topics[i].topic);
			(*topics)[i].partitions = call->md->topics[i].partition_cnt;
		}
	}
	PG_FINALLY();
	{
		call_destroy(call);
	}
	PG_END_TRY();

	qsort(*topics, *ntopics, sizeof(SkTopic), cmp_topic);
	return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/*
 * Low and high watermark of every partition of a topic, sorted by partition,
 * in *marks, an array palloc'd in CurrentMemoryContext.  Returns
 * librdkafka's error (a topic that does not exist is one), and then leaves
 * *marks NULL.  As sk_kafka_call_topics() for waiting.
 */
rd_kafka_resp_err_t
sk_kafka_call_watermarks(SkCallOwner *owner, const char *topic,
						 int timeout_ms, SkWatermark **marks, int *nmarks)
{
	SkCall	   *call = call_prepare(owner, SK_CALL_WATERMARKS, topic,
									timeout_ms);
	rd_kafka_resp_err_t err;

	*marks = NULL;
	call_wait(owner, call);
	err = call->err;
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		*nmarks = call->nmarks;
		/* plain copy: cannot throw except out of memory, which we accept */
		*marks = palloc(sizeof(SkWatermark) * Max(call->nmarks, 1));
		memcpy(*marks, call->marks, sizeof(SkWatermark) * call->nmarks);
	}
	call_destroy(call);
	return err;
}

/*
 * For each of the given partitions of a topic, the earliest offset whose
 * timestamp is at or after timestamp_ms (Kafka's ListOffsets by time), or -1
 * (RD_KAFKA_OFFSET_END) when there is none, in *offsets, palloc'd in
 * CurrentMemoryContext.  Returns librdkafka's error, and then leaves
 * *offsets NULL.  As sk_kafka_call_topics() for waiting.
 */
rd_kafka_resp_err_t
sk_kafka_call_offsets_for_time(SkCallOwner *owner, const char *topic,
							   int npartitions, const int32 *partitions,
							   int64 timestamp_ms, int timeout_ms,
							   int64 **offsets)
{
	SkCall	   *call = call_prepare(owner, SK_CALL_OFFSETS_FOR_TIME, topic,
									timeout_ms);
	rd_kafka_resp_err_t err;

	*offsets = NULL;
	call->timestamp_ms = timestamp_ms;
	call->nrequested = npartitions;
	call->requested = malloc(sizeof(int32) * Max(npartitions, 1));
	if (call->requested == NULL)
	{
		call_destroy(call);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	}
	memcpy(call->requested, partitions, sizeof(int32) * npartitions);

	call_wait(owner, call);
	err = call->err;
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		*offsets = palloc(sizeof(int64) * Max(npartitions, 1));
		memcpy(*offsets, call->offsets, sizeof(int64) * npartitions);
	}
	call_destroy(call);
	return err;
}
