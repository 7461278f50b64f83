/*-------------------------------------------------------------------------
 *
 * kafka_conn.c
 *		librdkafka configuration, handle lifetime, interruptible requests,
 *		error translation and the log queue.
 *
 * Only this file creates or destroys librdkafka handles.  A handle (SkKafka)
 * belongs to the memory context that was current when it was made: deleting
 * or resetting that context destroys the handle, so an ERROR anywhere leaks
 * nothing.
 *
 * librdkafka's synchronous requests (metadata, watermarks, offsets for
 * times) cannot be interrupted.  We run each on a short-lived helper thread
 * that touches nothing but librdkafka and a pipe, while the backend waits on
 * its latch and that pipe, serving interrupts every 100 ms at most.  The
 * thread sends its request in slices of at most half a second; when the
 * backend gives up (cancel, statement_timeout, ERROR), the error reaches the
 * client at once, and while the transaction is cleaned up the backend tells
 * the thread to stop, joins it within one slice and destroys the handle
 * itself.
 *
 * librdkafka's logs and errors are queued and served by our own poll calls,
 * on the backend's thread; its callbacks only copy text into buffers and
 * never call a server function.
 *
 * Secrets (options that only a user mapping may carry) never reach a
 * message, a log line or a view: configuration errors about them name the
 * option, not the value, and every text of librdkafka's that we show goes
 * through sk_kafka_redact() first, which hides any piece of a secret that
 * librdkafka quotes (an OAUTHBEARER error quotes the configuration).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "access/reloptions.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "compat.h"
#include "sales_kafka.h"

/* librdkafka log lines kept between two polls */
#define SK_LOG_RING 16
#define SK_LOG_LINE 256

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
typedef struct SkCall
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
} SkCall;

struct SkKafka
{
	rd_kafka_t *rk;
	char	   *server_name;
	List	   *secrets;		/* the user mapping's values (char *) */
	SkCall	   *inflight;		/* request on a helper thread, or NULL */

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
static void call_destroy(SkCall *call);
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
 * text as it may be shown: any run of it that is also part of one of
 * secrets, at least six characters long (or all of a shorter secret), is
 * replaced by "***".  librdkafka quotes configuration values in some of its
 * errors, from any position.  Returns text itself if nothing is hidden,
 * else a palloc'd copy; never throws but for lack of memory.
 */
static const char *
redact(List *secrets, const char *text)
{
	int			n = strlen(text);
	bool	   *hide = NULL;
	StringInfoData buf;
	ListCell   *lc;
	int			i;

	foreach(lc, secrets)
	{
		const char *secret = (const char *) lfirst(lc);
		int			m = strlen(secret);
		int			min_run = Min(m, 6);

		for (i = 0; m > 0 && i < n; i++)
		{
			int			j;

			for (j = 0; j < m; j++)
			{
				int			k = 0;

				while (i + k < n && j + k < m && text[i + k] == secret[j + k])
					k++;
				if (k >= min_run)
				{
					if (hide == NULL)
						hide = palloc0(sizeof(bool) * n);
					memset(hide + i, true, k);
				}
			}
		}
	}
	if (hide == NULL)
		return text;

	initStringInfo(&buf);
	for (i = 0; i < n; i++)
	{
		if (!hide[i])
			appendStringInfoChar(&buf, text[i]);
		else if (i == 0 || !hide[i - 1])
			appendStringInfoString(&buf, "***");
	}
	pfree(hide);
	return buf.data;
}

/*
 * A text of librdkafka's about this handle, as it may be shown to anyone
 * who may use the handle: without its user mapping's secrets.
 */
const char *
sk_kafka_redact(SkKafka *kc, const char *text)
{
	return redact(kc->secrets, text);
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
 * Configuration
 * ---------------------------------------------------------------------
 */

/*
 * Did librdkafka take an integer that does not fit its 32-bit properties?
 * It parses with strtol() into an int and checks the range of what is
 * left, so 99999999999999 can pass as 276447231, or fail naming that
 * number.  A value that was taken (stored) wrapped if librdkafka now
 * reports another number; one that was refused, if it is out of range.
 */
static bool
int_wrapped(rd_kafka_conf_t *conf, const char *name, const char *value,
			bool stored)
{
	char	   *end;
	long long	given;
	char		now[64];
	size_t		size = sizeof(now);

	errno = 0;
	given = strtoll(value, &end, 0);
	if (end == value || *end != '\0')
		return false;
	if (errno == ERANGE || given < INT_MIN || given > INT_MAX)
	{
		if (!stored)
			return true;
		if (rd_kafka_conf_get(conf, name, now, &size) != RD_KAFKA_CONF_OK)
			return false;
		errno = 0;
		return strtoll(now, &end, 0) != given || errno == ERANGE;
	}
	return false;
}

/*
 * Set one librdkafka property, or raise the configuration error: unknown
 * names get a closest-match hint, and librdkafka's explanation appears only
 * when it cannot contain a secret's value.  On error the conf is destroyed
 * first.  Also the validator's check of every librdkafka property.
 */
void
sk_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char		errstr[512] = "";
	rd_kafka_conf_res_t res;
	bool		wrapped = false;

	res = rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr));
	/* some of librdkafka's explanations end in a line break */
	while (strlen(errstr) > 0 && isspace((unsigned char) errstr[strlen(errstr) - 1]))
		errstr[strlen(errstr) - 1] = '\0';
	if (res != RD_KAFKA_CONF_UNKNOWN)
		wrapped = int_wrapped(conf, name, value, res == RD_KAFKA_CONF_OK);
	if (res == RD_KAFKA_CONF_OK && !wrapped)
		return;

	if (res == RD_KAFKA_CONF_UNKNOWN)
	{
		rd_kafka_conf_t *defaults = rd_kafka_conf_new();
		size_t		cnt;
		const char **dump = rd_kafka_conf_dump(defaults, &cnt);
		const char **names = palloc(sizeof(char *) * (cnt / 2 + 1));
		const char *best;
		size_t		i;

		for (i = 0; i < cnt / 2; i++)
			names[i] = dump[2 * i];
		best = sk_options_closest_match(name, names, cnt / 2);
		best = best ? pstrdup(best) : NULL;
		rd_kafka_conf_dump_free(dump, cnt);
		rd_kafka_conf_destroy(defaults);
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\"", name),
				 errdetail("Options with a dot in their name are librdkafka properties, and librdkafka has no property of that name."),
				 best ? errhint("Perhaps you meant the option \"%s\".", best) : 0));
	}

	rd_kafka_conf_destroy(conf);
	if (wrapped && !sk_options_is_secret(name))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", name, value),
				 errdetail("The value is out of range: librdkafka's numeric properties are 32-bit integers.")));
	if (sk_options_is_secret(name))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\"", name),
				 errdetail_internal("%s", redact(list_make1((char *) value), errstr))));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
			 errmsg("invalid value for option \"%s\": \"%s\"", name, value),
			 errdetail_internal("%s", errstr)));
}

/*
 * Options of the user mapping for (userid, serverid), falling back to the
 * PUBLIC mapping; NIL when there is none, since Kafka needs no login unless
 * the cluster says so.
 */
static List *
user_mapping_options(Oid userid, Oid serverid)
{
	HeapTuple	tp;
	Datum		datum;
	bool		isnull;
	List	   *options = NIL;

	tp = SearchSysCache2(USERMAPPINGUSERSERVER,
						 ObjectIdGetDatum(userid), ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		tp = SearchSysCache2(USERMAPPINGUSERSERVER,
							 ObjectIdGetDatum(InvalidOid),
							 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		return NIL;

	datum = SysCacheGetAttr(USERMAPPINGUSERSERVER, tp,
							Anum_pg_user_mapping_umoptions, &isnull);
	if (!isnull)
		options = untransformRelOptions(datum);
	ReleaseSysCache(tp);
	return options;
}

/*
 * Build the configuration of a handle for a server: the caller's defaults,
 * then the server's librdkafka properties, then the user mapping's secrets,
 * then the caller's overrides (which win).  Properties are DefElems.
 */
static rd_kafka_conf_t *
build_conf(SkKafka *kc, ForeignServer *server, Oid userid,
		   rd_kafka_type_t type, List *defaults, List *overrides)
{
	rd_kafka_conf_t *conf;
	const char *brokers = sk_brokers;
	ListCell   *lc;

	/* a server keeps only what its owner may set (before librdkafka sees it) */
	sk_options_check_rights(server->options, server->owner,
							server->servername);
	conf = rd_kafka_conf_new();
	foreach(lc, server->options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (strcmp(def->defname, "brokers") == 0)
			brokers = defGetString(def);
	}
	if (brokers == NULL || brokers[0] == '\0')
	{
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("server \"%s\" has no Kafka brokers", server->servername),
				 errhint("Set the \"brokers\" option of the server or the setting \"sales_kafka.brokers\".")));
	}

	sk_kafka_conf_set(conf, "bootstrap.servers", brokers);
	sk_kafka_conf_set(conf, "client.id", "sales_kafka");
	sk_kafka_conf_set(conf, "log.queue", "true");
	if (type == RD_KAFKA_CONSUMER)
	{
		/* offsets live in PostgreSQL, never in the consumer group */
		sk_kafka_conf_set(conf, "enable.auto.commit", "false");
		sk_kafka_conf_set(conf, "enable.auto.offset.store", "false");
	}

	foreach(lc, defaults)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		sk_kafka_conf_set(conf, def->defname, defGetString(def));
	}
	foreach(lc, server->options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (sk_options_is_kafka_property(def->defname))
			sk_kafka_conf_set(conf, def->defname, defGetString(def));
	}
	foreach(lc, user_mapping_options(userid, server->serverid))
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		kc->secrets = lappend(kc->secrets, pstrdup(defGetString(def)));
		sk_kafka_conf_set(conf, def->defname, defGetString(def));
	}
	foreach(lc, overrides)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		sk_kafka_conf_set(conf, def->defname, defGetString(def));
	}

	rd_kafka_conf_set_opaque(conf, kc);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	if (type == RD_KAFKA_PRODUCER)
		rd_kafka_conf_set_dr_msg_cb(conf, delivery_cb);
	rd_kafka_conf_set_log_cb(conf, log_cb);
	return conf;
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
	conf = build_conf(kc, server, userid, type, defaults, overrides);

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
	SkCall	   *call = kc->inflight;

	kc->rk = NULL;
	kc->inflight = NULL;

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

	if (call != NULL)
	{
		/*
		 * The backend gave up on a request (an interrupt or ERROR): tell the
		 * thread, which stops within one slice, and wait for it.  The client
		 * already has its error; only the next command waits.
		 */
		pthread_mutex_lock(&call->lock);
		call->abandoned = true;
		pthread_mutex_unlock(&call->lock);
		pthread_join(call->thread, NULL);
		call_destroy(call);
	}
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
 * Requests on a helper thread
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

/*
 * Allocate a call for a request on the handle.  Throws only on resource
 * exhaustion, leaking nothing.
 */
static SkCall *
call_prepare(SkKafka *kc, SkCallKind kind, const char *topic)
{
	SkCall	   *call;

	Assert(kc->inflight == NULL && kc->rk != NULL);

	call = calloc(1, sizeof(SkCall));
	if (call == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	call->kind = kind;
	call->rk = kc->rk;
	call->timeout_ms = sk_connect_timeout;
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
 * interrupts and librdkafka's callbacks.  On return the call is finished and
 * joined, and the caller must call_destroy() it; if an interrupt throws,
 * sk_kafka_close() (via the memory context) stops and joins it.
 */
static void
call_wait(SkKafka *kc, SkCall *call)
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
	kc->inflight = call;

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
		kafka_serve(kc);

		pthread_mutex_lock(&call->lock);
		finished = call->finished;
		pthread_mutex_unlock(&call->lock);
		if (finished)
			break;
	}
	pthread_join(call->thread, NULL);
	kc->inflight = NULL;
	/* callbacks the request triggered, e.g. the connection error */
	kafka_serve(kc);
}

/* ---------------------------------------------------------------------
 * Requests
 * ---------------------------------------------------------------------
 */

static int
cmp_topic(const void *a, const void *b)
{
	return strcmp(((const SkTopic *) a)->name, ((const SkTopic *) b)->name);
}

/*
 * Every topic of the cluster with its partition count, sorted by name, in an
 * array palloc'd in CurrentMemoryContext.  Throws on any Kafka error.
 */
SkTopic *
sk_kafka_list_topics(SkKafka *kc, int *ntopics)
{
	SkCall	   *call = call_prepare(kc, SK_CALL_LIST_TOPICS, NULL);
	SkTopic    *topics = NULL;
	int			i;

	call_wait(kc, call);
	if (call->err)
	{
		rd_kafka_resp_err_t err = call->err;

		call_destroy(call);
		sk_kafka_report(kc, err, NULL);
	}

	PG_TRY();
	{
		*ntopics = call->md->topic_cnt;
		topics = palloc(sizeof(SkTopic) * Max(*ntopics, 1));
		for (i = 0; i < *ntopics; i++)
		{
			topics[i].name = pstrdup(call->md->topics[i].topic);
			topics[i].partitions = call->md->topics[i].partition_cnt;
		}
	}
	PG_FINALLY();
	{
		call_destroy(call);
	}
	PG_END_TRY();

	qsort(topics, *ntopics, sizeof(SkTopic), cmp_topic);
	return topics;
}

static SkWatermark *
watermarks(SkKafka *kc, const char *topic, int *npartitions, bool throw_errors)
{
	SkCall	   *call = call_prepare(kc, SK_CALL_WATERMARKS, topic);
	SkWatermark *marks = NULL;
	rd_kafka_resp_err_t err;

	call_wait(kc, call);
	err = call->err;
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		*npartitions = call->nmarks;
		/* plain copy: cannot throw except out of memory, which we accept */
		marks = palloc(sizeof(SkWatermark) * Max(call->nmarks, 1));
		memcpy(marks, call->marks, sizeof(SkWatermark) * call->nmarks);
	}
	call_destroy(call);
	if (err && throw_errors)
		sk_kafka_report(kc, err, topic);
	return marks;
}

/*
 * Low and high watermark of every partition of a topic, sorted by partition,
 * in an array palloc'd in CurrentMemoryContext.  Throws on any Kafka error,
 * including a topic that does not exist.
 */
SkWatermark *
sk_kafka_watermarks(SkKafka *kc, const char *topic, int *npartitions)
{
	return watermarks(kc, topic, npartitions, true);
}

/*
 * The same, but NULL instead of an ERROR when Kafka cannot tell, for the
 * planner's estimates.  Interrupts still throw.
 */
SkWatermark *
sk_kafka_watermarks_noerror(SkKafka *kc, const char *topic, int *npartitions)
{
	return watermarks(kc, topic, npartitions, false);
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
	SkCall	   *call = call_prepare(kc, SK_CALL_OFFSETS_FOR_TIME, topic);
	int64	   *offsets = NULL;
	rd_kafka_resp_err_t err;

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

	call_wait(kc, call);
	err = call->err;
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		offsets = palloc(sizeof(int64) * Max(npartitions, 1));
		memcpy(offsets, call->offsets, sizeof(int64) * npartitions);
	}
	call_destroy(call);
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
