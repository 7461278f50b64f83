/*-------------------------------------------------------------------------
 *
 * kafka_conn.c
 *		librdkafka handles: their lifetime, the log queue, error
 *		translation, consuming and producing.
 *
 * Only this file creates or destroys librdkafka handles.  A handle (SkKafka)
 * belongs to the memory context that was current when it was made: deleting
 * or resetting that context destroys the handle, so an ERROR anywhere leaks
 * nothing.
 *
 * A handle's configuration comes from kafka_conf.c; its synchronous
 * requests (metadata, watermarks, offsets for times) run on helper threads
 * (kafka_call.c), and this file turns their librdkafka errors into ERRORs
 * with the SQLSTATE and hint each cause calls for.
 *
 * librdkafka's logs and errors are queued and served by our own poll calls,
 * on the backend's thread; its callbacks only copy text into buffers and
 * never call a server function.  Every text of librdkafka's that we show
 * goes through sk_kafka_redact() first, which hides the user mapping's
 * secrets.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "foreign/foreign.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"

#include "compat.h"
#include "sales_kafka.h"

/* librdkafka log lines kept between two polls */
#define SK_LOG_RING 16
#define SK_LOG_LINE 256

struct SkKafka
{
	rd_kafka_t *rk;
	char	   *server_name;
	List	   *secrets;		/* the user mapping's values (char *) */
	SkCallOwner calls;			/* requests on helper threads */

	/* consuming: the consumer queue, its wake-up pipe and the last batch */
	rd_kafka_queue_t *queue;
	int			queue_wake[2];
	rd_kafka_message_t **batch;
	int			nbatch;
	int			next;
	rd_kafka_message_t *current;
	MemoryContextCallback release;

	/* written by librdkafka callbacks, which run inside our poll calls */
	int64		delivered;
	int64		failed;
	char		delivery_error[256];
	char		last_error[512];
	int			nlogs;
	int			lost_logs;
	int			log_level[SK_LOG_RING];
	char		log_line[SK_LOG_RING][SK_LOG_LINE];
};

static void kafka_release(void *arg);
static void drop_fetched(SkKafka *kc);
static void kafka_serve(SkKafka *kc);

/* ---------------------------------------------------------------------
 * librdkafka callbacks: served by rd_kafka_poll() on our thread.  They copy
 * text only; the backend reports it once the poll has returned.
 * ---------------------------------------------------------------------
 */
static void
error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	SkKafka    *kc = (SkKafka *) opaque;

	/* "1/1 brokers are down" says less than the failure that caused it */
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && kc->last_error[0] != '\0')
		return;
	strlcpy(kc->last_error, reason, sizeof(kc->last_error));
}

static void
delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	SkKafka    *kc = (SkKafka *) opaque;

	if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
		kc->delivered++;
	else
	{
		if (kc->failed++ == 0)
			snprintf(kc->delivery_error, sizeof(kc->delivery_error), "%s",
					 rd_kafka_err2str(msg->err));
	}
}

static void
log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	SkKafka    *kc = (SkKafka *) rd_kafka_opaque(rk);

	if (kc->nlogs >= SK_LOG_RING)
	{
		kc->lost_logs++;
		return;
	}
	kc->log_level[kc->nlogs] = level;
	snprintf(kc->log_line[kc->nlogs], SK_LOG_LINE, "%s: %s", fac, buf);
	kc->nlogs++;
}

/*
 * A text of librdkafka's about this handle, as it may be shown to anyone
 * who may use the handle: without its user mapping's secrets.
 */
const char *
sk_kafka_redact(SkKafka *kc, const char *text)
{
	return sk_kafka_conf_redact(kc->secrets, text);
}

/*
 * Serve librdkafka's queued callbacks and report its log lines.  librdkafka
 * logs at syslog levels; everything goes to the server log at DEBUG1
 * (warnings and errors) or DEBUG2, because the condition that matters
 * reaches the client as an ERROR anyway.
 */
static void
kafka_serve(SkKafka *kc)
{
	int			i;

	if (kc->rk == NULL)
		return;
	rd_kafka_poll(kc->rk, 0);
	for (i = 0; i < kc->nlogs; i++)
		elog(kc->log_level[i] <= 4 ? DEBUG1 : DEBUG2,
			 "librdkafka (server \"%s\"): %s",
			 kc->server_name, sk_kafka_redact(kc, kc->log_line[i]));
	if (kc->lost_logs > 0)
		elog(DEBUG1, "librdkafka (server \"%s\"): %d log lines not shown",
			 kc->server_name, kc->lost_logs);
	kc->nlogs = 0;
	kc->lost_logs = 0;
}

/* ---------------------------------------------------------------------
 * Lifetime
 * ---------------------------------------------------------------------
 */

/* kafka_serve() for kafka_call.c */
static void
serve_calls(void *arg)
{
	kafka_serve((SkKafka *) arg);
}

/*
 * Open a librdkafka handle of the given type on a sales_kafka server, for
 * userid (whose user mapping, if any, supplies the secrets).  defaults and
 * overrides are librdkafka properties (DefElem) set before and after the
 * server's own.
 *
 * The handle lives until sk_kafka_close() or until CurrentMemoryContext is
 * reset or deleted, whichever comes first; throws on configuration errors.
 * Creating a handle does not contact the brokers.
 */
SkKafka *
sk_kafka_connect(Oid serverid, Oid userid, rd_kafka_type_t type,
				 List *defaults, List *overrides)
{
	ForeignServer *server = GetForeignServer(serverid);
	SkKafka    *kc;
	rd_kafka_conf_t *conf;
	char		errstr[512];

	kc = palloc0(sizeof(SkKafka));
	kc->queue_wake[0] = kc->queue_wake[1] = -1;
	kc->server_name = pstrdup(server->servername);
	conf = sk_kafka_conf_build(server, userid, type, defaults, overrides,
							   &kc->secrets);
	rd_kafka_conf_set_opaque(conf, kc);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	if (type == RD_KAFKA_PRODUCER)
		rd_kafka_conf_set_dr_msg_cb(conf, delivery_cb);
	rd_kafka_conf_set_log_cb(conf, log_cb);

	kc->rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
	if (kc->rk == NULL)
	{
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not create a Kafka client for server \"%s\"",
						server->servername),
				 errdetail_internal("%s", sk_kafka_redact(kc, errstr))));
	}
	/* logs go to the main queue, which our own poll calls serve */
	rd_kafka_set_log_queue(kc->rk, NULL);
	kc->calls.rk = kc->rk;
	kc->calls.serve = serve_calls;
	kc->calls.serve_arg = kc;

	kc->release.func = kafka_release;
	kc->release.arg = kc;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &kc->release);
	return kc;
}

/*
 * Destroy the handle now.  Safe to call twice, and from the reset callback.
 */
void
sk_kafka_close(SkKafka *kc)
{
	rd_kafka_t *rk = kc->rk;

	kc->rk = NULL;
	kc->calls.rk = NULL;

	/* messages and queues hold references into the handle: drop them first */
	drop_fetched(kc);
	if (kc->queue != NULL)
		rd_kafka_queue_destroy(kc->queue);
	kc->queue = NULL;
	if (kc->queue_wake[0] >= 0)
		close(kc->queue_wake[0]);
	if (kc->queue_wake[1] >= 0)
		close(kc->queue_wake[1]);
	kc->queue_wake[0] = kc->queue_wake[1] = -1;

	/* a request the backend gave up on (an interrupt or ERROR) */
	sk_kafka_call_stop(&kc->calls);
	if (rk != NULL)
	{
		/* messages not yet delivered are dropped, not waited for */
		if (rd_kafka_type(rk) == RD_KAFKA_PRODUCER)
			rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	}
}

static void
kafka_release(void *arg)
{
	sk_kafka_close((SkKafka *) arg);
}

/* ---------------------------------------------------------------------
 * Requests
 * ---------------------------------------------------------------------
 */

/*
 * Every topic of the cluster with its partition count, sorted by name, in an
 * array palloc'd in CurrentMemoryContext.  Throws on any Kafka error.
 */
SkTopic *
sk_kafka_list_topics(SkKafka *kc, int *ntopics)
{
	SkTopic    *topics;
	rd_kafka_resp_err_t err;

	err = sk_kafka_call_topics(&kc->calls, sk_connect_timeout, &topics,
							   ntopics);
	if (err)
		sk_kafka_report(kc, err, NULL);
	return topics;
}

/*
 * Low and high watermark of every partition of a topic, sorted by partition,
 * in an array palloc'd in CurrentMemoryContext.  Throws on any Kafka error,
 * including a topic that does not exist.
 */
SkWatermark *
sk_kafka_watermarks(SkKafka *kc, const char *topic, int *npartitions)
{
	SkWatermark *marks;
	rd_kafka_resp_err_t err;

	err = sk_kafka_call_watermarks(&kc->calls, topic, sk_connect_timeout,
								   &marks, npartitions);
	if (err)
		sk_kafka_report(kc, err, topic);
	return marks;
}

/*
 * The same, but NULL instead of an ERROR when Kafka cannot tell, for the
 * planner's estimates.  Interrupts still throw.
 */
SkWatermark *
sk_kafka_watermarks_noerror(SkKafka *kc, const char *topic, int *npartitions)
{
	SkWatermark *marks;

	(void) sk_kafka_call_watermarks(&kc->calls, topic, sk_connect_timeout,
									&marks, npartitions);
	return marks;
}

/*
 * For each of the given partitions of a topic, the earliest offset whose
 * timestamp is at or after timestamp_ms (Kafka's ListOffsets by time), or -1
 * (RD_KAFKA_OFFSET_END) when there is none.  palloc'd array; throws on
 * Kafka errors.
 */
int64 *
sk_kafka_offsets_for_time(SkKafka *kc, const char *topic, int npartitions,
						  const int32 *partitions, int64 timestamp_ms)
{
	int64	   *offsets;
	rd_kafka_resp_err_t err;

	err = sk_kafka_call_offsets_for_time(&kc->calls, topic, npartitions,
										 partitions, timestamp_ms,
										 sk_connect_timeout, &offsets);
	if (err)
		sk_kafka_report(kc, err, topic);
	return offsets;
}

/*
 * Raise the ERROR for a failed Kafka request, with the SQLSTATE and hint its
 * cause calls for and librdkafka's own words in the detail.
 */
void
sk_kafka_report(SkKafka *kc, rd_kafka_resp_err_t err, const char *topic)
{
	const char *reason = sk_kafka_redact(kc, kc->last_error[0] != '\0' ?
										 kc->last_error : rd_kafka_err2str(err));

	switch (err)
	{
		case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
		case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
			ereport(ERROR,
					(errcode(ERRCODE_FDW_TABLE_NOT_FOUND),
					 errmsg("topic \"%s\" does not exist on Kafka server \"%s\"",
							topic ? topic : "", kc->server_name),
					 errdetail_internal("%s", rd_kafka_err2str(err)),
					 errhint("Check the topic name. Topics are not created by reading them.")));
			break;
		case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
		case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
		case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
		case RD_KAFKA_RESP_ERR__AUTHENTICATION:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("Kafka server \"%s\" denied access", kc->server_name),
					 errdetail_internal("%s", reason),
					 errhint("Check the credentials in the user mapping and the ACLs of the Kafka cluster.")));
			break;
		case RD_KAFKA_RESP_ERR__TRANSPORT:
		case RD_KAFKA_RESP_ERR__TIMED_OUT:
		case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
		case RD_KAFKA_RESP_ERR__RESOLVE:
		case RD_KAFKA_RESP_ERR__WAIT_COORD:
		case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
		case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
		case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
		case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
			ereport(ERROR,
					(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
					 errmsg("could not connect to Kafka brokers of server \"%s\"",
							kc->server_name),
					 errdetail_internal("%s", reason),
					 errhint("Check the \"brokers\" option of the server and that the brokers are reachable from the database host; \"sales_kafka.connect_timeout\" bounds the wait.")));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("Kafka request to server \"%s\" failed",
							kc->server_name),
					 errdetail_internal("%s: %s", rd_kafka_err2name(err),
										rd_kafka_err2str(err))));
	}
	pg_unreachable();
}

/* ---------------------------------------------------------------------
 * Consuming
 * ---------------------------------------------------------------------
 */

/* Destroy the messages fetched but not yet handed out, and the current one */
static void
drop_fetched(SkKafka *kc)
{
	if (kc->current != NULL)
		rd_kafka_message_destroy(kc->current);
	kc->current = NULL;
	while (kc->next < kc->nbatch)
		rd_kafka_message_destroy(kc->batch[kc->next++]);
	kc->nbatch = kc->next = 0;
}

#define SK_CONSUME_BATCH 1000

/*
 * Assign partitions (with their start offsets) to a consumer handle,
 * replacing any earlier assignment; NULL or an empty list unassigns.  The
 * first call sets up the consumer queue that sk_kafka_next_message() reads.
 */
void
sk_kafka_assign(SkKafka *kc, rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_resp_err_t err;

	if (kc->queue == NULL)
	{
		kc->queue = rd_kafka_queue_get_consumer(kc->rk);
		if (kc->queue == NULL)
			elog(ERROR, "librdkafka handle has no consumer queue");
		if (pipe2(kc->queue_wake, O_CLOEXEC | O_NONBLOCK) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create pipe: %m")));
		rd_kafka_queue_io_event_enable(kc->queue, kc->queue_wake[1], "x", 1);
		kc->batch = MemoryContextAlloc(GetMemoryChunkContext(kc),
									   sizeof(rd_kafka_message_t *) * SK_CONSUME_BATCH);
	}

	/* messages already fetched for the old assignment are stale */
	drop_fetched(kc);

	err = rd_kafka_assign(kc->rk, parts != NULL && parts->cnt > 0 ? parts : NULL);
	if (err)
		sk_kafka_report(kc, err, NULL);
}

/*
 * The next message or event (err set: e.g. end of partition) of the
 * consumer queue, waiting at most timeout_ms (100 ms or less keeps
 * cancellation prompt); NULL if nothing arrived.  The message belongs to
 * the handle and stays valid until the next call or sk_kafka_close().
 */
rd_kafka_message_t *
sk_kafka_next_message(SkKafka *kc, int timeout_ms)
{
	ssize_t		n;
	char		drain[64];

	Assert(kc->queue != NULL);
	if (kc->current != NULL)
		rd_kafka_message_destroy(kc->current);
	kc->current = NULL;

	for (;;)
	{
		int			events;

		if (kc->next < kc->nbatch)
		{
			kc->current = kc->batch[kc->next++];
			return kc->current;
		}
		n = rd_kafka_consume_batch_queue(kc->queue, 0, kc->batch,
										 SK_CONSUME_BATCH);
		if (n < 0)
			sk_kafka_report(kc, rd_kafka_last_error(), NULL);
		kc->nbatch = (int) n;
		kc->next = 0;
		if (n > 0)
			continue;
		if (timeout_ms <= 0)
			return NULL;

		events = WaitLatchOrSocket(MyLatch,
								   WL_LATCH_SET | WL_SOCKET_READABLE |
								   WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								   kc->queue_wake[0], timeout_ms,
								   SK_WAIT_EVENT_KAFKA);
		if (events & WL_LATCH_SET)
			ResetLatch(MyLatch);
		if (events & WL_SOCKET_READABLE)
			while (read(kc->queue_wake[0], drain, sizeof(drain)) > 0)
				;
		CHECK_FOR_INTERRUPTS();
		kafka_serve(kc);
		timeout_ms = 0;			/* one more look at the queue, then return */
	}
}

/*
 * Hand the message last returned by sk_kafka_next_message() to the caller,
 * who must rd_kafka_message_destroy() it (before closing the handle).
 */
rd_kafka_message_t *
sk_kafka_take_message(SkKafka *kc)
{
	rd_kafka_message_t *msg = kc->current;

	kc->current = NULL;
	return msg;
}

/*
 * A partition's high watermark as last seen by the consumer's fetches,
 * without asking the broker; -1 when not known yet.
 */
int64
sk_kafka_cached_high(SkKafka *kc, const char *topic, int32 partition)
{
	int64		low;
	int64		high;

	if (rd_kafka_get_watermark_offsets(kc->rk, topic, partition, &low, &high) !=
		RD_KAFKA_RESP_ERR_NO_ERROR || high < 0)
		return -1;
	return high;
}

/* ---------------------------------------------------------------------
 * Producing
 * ---------------------------------------------------------------------
 */

/*
 * Queue one message on a producer handle (librdkafka copies it), waiting
 * while librdkafka's queue is full.  Delivery is reported later, to
 * sk_kafka_flush().  Throws on messages Kafka can never accept.
 */
void
sk_kafka_produce(SkKafka *kc, const char *topic, SkOutMessage *m)
{
	for (;;)
	{
		rd_kafka_headers_t *headers = NULL;
		rd_kafka_resp_err_t err;
		ListCell   *lc;

		if (m->headers != NIL)
		{
			headers = rd_kafka_headers_new(list_length(m->headers));
			foreach(lc, m->headers)
			{
				SkOutHeader *h = (SkOutHeader *) lfirst(lc);

				rd_kafka_header_add(headers, h->name, -1, h->value,
									h->value ? (ssize_t) h->len : 0);
			}
		}
		err = rd_kafka_producev(kc->rk,
								RD_KAFKA_V_TOPIC(topic),
								RD_KAFKA_V_PARTITION(m->partition),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
								RD_KAFKA_V_KEY(m->key, m->key_len),
								RD_KAFKA_V_VALUE(m->payload, m->len),
								RD_KAFKA_V_TIMESTAMP(m->timestamp_ms),
								RD_KAFKA_V_HEADERS(headers),
								RD_KAFKA_V_END);
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
			return;
		if (headers != NULL)
			rd_kafka_headers_destroy(headers);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
		{
			if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("Kafka message of %zu bytes is too large for topic \"%s\"",
								m->len + m->key_len, topic),
						 errhint("Raise the librdkafka property \"message.max.bytes\" of the server, and the broker's limit.")));
			if (err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("topic \"%s\" has no partition %d", topic,
								m->partition)));
			sk_kafka_report(kc, err, topic);
		}

		/* full: let deliveries drain, then try again */
		pgstat_report_wait_start(SK_WAIT_EVENT_KAFKA);
		rd_kafka_poll(kc->rk, 50);
		pgstat_report_wait_end();
		CHECK_FOR_INTERRUPTS();
		kafka_serve(kc);
	}
}

/*
 * Wait until every queued message is delivered or has failed, or until
 * timeout_ms; returns how many are still undelivered then.  *failed and
 * *error (first failure, or NULL) report the failures.
 */
int64
sk_kafka_flush(SkKafka *kc, int timeout_ms, int64 *failed, const char **error)
{
	int64		deadline = sk_kafka_now_ms() + timeout_ms;

	while (rd_kafka_outq_len(kc->rk) > 0 && sk_kafka_now_ms() < deadline)
	{
		pgstat_report_wait_start(SK_WAIT_EVENT_KAFKA);
		rd_kafka_poll(kc->rk, 50);
		pgstat_report_wait_end();
		CHECK_FOR_INTERRUPTS();
		kafka_serve(kc);
	}
	*failed = kc->failed;
	*error = kc->failed > 0 ? sk_kafka_redact(kc, kc->delivery_error) : NULL;
	return rd_kafka_outq_len(kc->rk);
}

/* ---------------------------------------------------------------------
 * Keeping a handle between queries
 * ---------------------------------------------------------------------
 */

/*
 * Destroy every message and event waiting in a consumer's queue, and empty
 * its wake-up pipe.  False if librdkafka fails to hand them over.
 */
static bool
drain_queue(SkKafka *kc)
{
	char		drain[64];
	ssize_t		n;

	drop_fetched(kc);
	if (kc->queue == NULL)
		return true;
	while ((n = rd_kafka_consume_batch_queue(kc->queue, 0, kc->batch,
											 SK_CONSUME_BATCH)) > 0)
	{
		while (n > 0)
			rd_kafka_message_destroy(kc->batch[--n]);
	}
	while (read(kc->queue_wake[0], drain, sizeof(drain)) > 0)
		;
	return n == 0;
}

/*
 * Make a handle that served a query fit to wait for the next one
 * (kafka_cache.c): a consumer drops its assignment and every message
 * fetched for it, so that it fetches nothing while idle; the delivery
 * counts and the last error are forgotten.  Returns false when the handle
 * must not be kept: a request the backend gave up on, messages not yet
 * delivered or that failed, or an assignment librdkafka would not drop.
 * Does not throw (librdkafka's log lines go out at DEBUG levels).
 */
bool
sk_kafka_park(SkKafka *kc)
{
	if (kc->rk == NULL || kc->calls.inflight != NULL)
		return false;
	kafka_serve(kc);
	if (rd_kafka_type(kc->rk) == RD_KAFKA_PRODUCER)
	{
		if (kc->failed > 0 || rd_kafka_outq_len(kc->rk) > 0)
			return false;
	}
	else if (kc->queue != NULL)
	{
		drop_fetched(kc);
		if (rd_kafka_assign(kc->rk, NULL) != RD_KAFKA_RESP_ERR_NO_ERROR)
			return false;
		/* what was fetched for the old assignment */
		if (!drain_queue(kc))
			return false;
	}
	kc->delivered = 0;
	kc->failed = 0;
	kc->delivery_error[0] = '\0';
	kc->last_error[0] = '\0';
	return true;
}

/*
 * Take a parked handle up again for a new query: report what librdkafka
 * logged while it waited, and drop what reached a consumer's queue
 * meanwhile (errors of the consumer group's coordinator, say), which
 * belongs to no scan of this query.  An error librdkafka reported
 * meanwhile stays the handle's last error: the detail of a request that
 * fails for the same cause, as librdkafka does not repeat it.  Does not
 * throw.
 */
void
sk_kafka_resume(SkKafka *kc)
{
	kafka_serve(kc);
	(void) drain_queue(kc);
}
