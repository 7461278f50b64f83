/*-------------------------------------------------------------------------
 *
 * kafka_cache.c
 *		librdkafka handles kept across queries, per server, user and kind,
 *		and the watermarks of a topic kept for one query.
 *
 * Creating a librdkafka handle starts its threads and, at its first
 * request, connects to the brokers and asks for metadata: several round
 * trips before the query's own.  A backend therefore keeps the handles its
 * queries used, as postgres_fdw keeps connections (connection.c):
 *	- a handle serves one server and one user (the role whose user mapping
 *	  supplies its credentials: a scan's checkAsUser, the caller of
 *	  topics() or watermarks(), the role that inserted into a foreign
 *	  table), and one kind (consumer or producer), and up to
 *	  SK_CLIENTS_PER_KEY of them are kept for each: two scans running in one
 *	  query each need their own consumer.  It never serves another role,
 *	  even one using the same PUBLIC user mapping;
 *	- a borrower holds it until sk_kafka_cache_release(); a borrower whose
 *	  memory context goes away first (an ERROR, a cancel, a query that
 *	  failed after the scan) never gives it back, and the handle is then
 *	  destroyed, not kept: its state is unknown;
 *	- ALTER or DROP of any foreign server or user mapping marks the handles
 *	  concerned (for a user mapping: all, since a new mapping of a role that
 *	  used PUBLIC names no handle) and they are destroyed once idle, as
 *	  are handles made with another sales_kafka.brokers or
 *	  sales_kafka.produce_timeout than the current one;
 *	- the rights of the server's owner are checked again at every reuse,
 *	  as for a new handle (kafka_conf.c): they change without any
 *	  invalidation of the server (GRANT and REVOKE of pg_read_server_files,
 *	  a superuser losing the attribute), and the check reads only catalog
 *	  caches.  A handle that fails it is destroyed when the transaction
 *	  ends;
 *	- every handle is destroyed at backend exit, which joins its threads.
 * Planning never borrows a handle: it never contacts Kafka (fdw.c).
 *
 * The scans of one query ask for a topic's watermarks once and share them
 * (sk_kafka_cache_watermarks()), so that they read the same snapshot of the
 * topic; the next query asks again.
 *
 * This file only decides which handle serves whom; kafka_conn.c makes and
 * destroys them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "foreign/foreign.h"
#include "lib/ilist.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/ipc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "sales_kafka.h"

/* handles kept per server, user and kind; beyond, a handle per query */
#define SK_CLIENTS_PER_KEY 4

typedef struct ClientKey
{
	Oid			serverid;
	Oid			userid;
	SkClientKind kind;
	int			slot;			/* 0 .. SK_CLIENTS_PER_KEY - 1 */
} ClientKey;

typedef struct ClientLease ClientLease;

/* A kept handle; the entry stays when the handle goes */
typedef struct ClientEntry
{
	ClientKey	key;			/* hash key: must be first */
	SkKafka    *kc;				/* NULL: none */
	MemoryContext cxt;			/* owns kc and the rest below */
	ClientLease *lease;			/* its borrower's, while in use */
	bool		invalidated;	/* its server or a user mapping changed */
	bool		unchecked;		/* the owner's rights failed their check */
	uint32		server_hash;	/* of the server's OID in its syscache */
	char	   *brokers;		/* sales_kafka.brokers when it was made */
	int			produce_timeout;	/* sales_kafka.produce_timeout then */
	char	   *server_name;	/* for debug messages, which may come */
	char	   *role_name;		/* when the catalogs cannot be read */
} ClientEntry;

/* A borrower's hold on a kept handle, in the borrower's memory context */
struct ClientLease
{
	ClientEntry *entry;
	bool		returned;
	MemoryContextCallback callback;
};

/* The watermarks of a topic for one query, in the query's context */
typedef struct QueryMarks
{
	dlist_node	node;
	MemoryContext scope;
	Oid			serverid;
	Oid			userid;
	char	   *topic;
	SkWatermark *marks;
	int			nmarks;
	MemoryContextCallback callback;
} QueryMarks;

static HTAB *clients = NULL;
static dlist_head query_marks = DLIST_STATIC_INIT(query_marks);

static const char *const kind_names[] = {"consumer", "producer"};

/*
 * Destroy an entry's handle and its threads now; the entry stays, empty.
 * Never throws: it may run while a transaction aborts.
 */
static void
discard(ClientEntry *entry, const char *why)
{
	if (entry->kc == NULL)
		return;
	elog(DEBUG3, "Kafka %s of server \"%s\" for role \"%s\" closed: %s",
		 kind_names[entry->key.kind], entry->server_name, entry->role_name,
		 why);
	if (entry->lease != NULL)
		entry->lease->entry = NULL;
	entry->lease = NULL;
	entry->kc = NULL;
	MemoryContextDelete(entry->cxt);
	entry->cxt = NULL;
}

/* A server or user mapping changed: mark the handles it concerns */
static void
invalidate_clients(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	ClientEntry *entry;

	hash_seq_init(&scan, clients);
	while ((entry = (ClientEntry *) hash_seq_search(&scan)) != NULL)
	{
		/* also one being made, which may have read the old definition */
		if (hashvalue == 0 || cacheid == USERMAPPINGOID ||
			entry->server_hash == hashvalue)
			entry->invalidated = true;
	}
}

/* At the end of a transaction, destroy the marked handles no one holds */
static void
clients_xact_callback(XactEvent event, void *arg)
{
	HASH_SEQ_STATUS scan;
	ClientEntry *entry;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_PARALLEL_COMMIT &&
		event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	hash_seq_init(&scan, clients);
	while ((entry = (ClientEntry *) hash_seq_search(&scan)) != NULL)
	{
		if (entry->kc != NULL && entry->lease == NULL)
		{
			if (entry->invalidated)
				discard(entry, "its server or a user mapping changed");
			else if (entry->unchecked)
				discard(entry, "its server's owner may no longer set its properties");
		}
	}
}

/* At backend exit, every handle goes, and its threads with it */
static void
clients_at_exit(int code, Datum arg)
{
	HASH_SEQ_STATUS scan;
	ClientEntry *entry;

	hash_seq_init(&scan, clients);
	while ((entry = (ClientEntry *) hash_seq_search(&scan)) != NULL)
		discard(entry, "the backend exits");
}

/*
 * A borrower's memory context went away before it gave the handle back:
 * the query failed or was cancelled while the handle served it, so nothing
 * is known of its state.
 */
static void
lease_lost(void *arg)
{
	ClientLease *lease = (ClientLease *) arg;

	if (lease->returned || lease->entry == NULL)
		return;
	discard(lease->entry, "the query it served failed");
}

static void
clients_init(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(ClientKey);
	ctl.entrysize = sizeof(ClientEntry);
	clients = hash_create("sales_kafka clients", 8, &ctl,
						  HASH_ELEM | HASH_BLOBS);
	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, invalidate_clients,
								  (Datum) 0);
	CacheRegisterSyscacheCallback(USERMAPPINGOID, invalidate_clients,
								  (Datum) 0);
	RegisterXactCallback(clients_xact_callback, NULL);
	on_proc_exit(clients_at_exit, (Datum) 0);
}

/*
 * The librdkafka properties of each kind of handle, set before and after
 * the server's own (DefElem lists in CurrentMemoryContext).
 */
static void
client_properties(SkClientKind kind, List **defaults, List **overrides)
{
	if (kind == SK_CLIENT_CONSUMER)
	{
		/* scans fetch in large batches and stop at the watermarks */
		*defaults = list_make2(makeDefElem("queued.min.messages", (Node *) makeString("1000000"), -1),
							   makeDefElem("fetch.wait.max.ms", (Node *) makeString("100"), -1));
		*overrides = list_make3(makeDefElem("group.id", (Node *) makeString("sales_kafka_scan"), -1),
								makeDefElem("enable.partition.eof", (Node *) makeString("true"), -1),
								makeDefElem("auto.offset.reset", (Node *) makeString("earliest"), -1));
	}
	else
	{
		*defaults = list_make3(makeDefElem("linger.ms", (Node *) makeString("5"), -1),
							   makeDefElem("queue.buffering.max.kbytes", (Node *) makeString("65536"), -1),
							   makeDefElem("message.timeout.ms", (Node *) makeString(psprintf("%d", sk_produce_timeout)), -1));
		*overrides = NIL;
	}
}

/* Was the entry's handle made with the settings now in force? */
static bool
settings_unchanged(ClientEntry *entry)
{
	if ((entry->brokers == NULL) != (sk_brokers == NULL) ||
		(sk_brokers != NULL && strcmp(entry->brokers, sk_brokers) != 0))
		return false;
	return entry->key.kind != SK_CLIENT_PRODUCER ||
		entry->produce_timeout == sk_produce_timeout;
}

/*
 * Make the entry's handle, in a context of its own that outlives queries.
 * The entry takes it only once it is complete: on an ERROR, the context
 * (a child of the caller's until then) goes with the caller's.
 */
static void
make_client(ClientEntry *entry)
{
	MemoryContext cxt;
	MemoryContext oldcxt;
	List	   *defaults;
	List	   *overrides;
	SkKafka    *kc;
	const char *role;
	char	   *role_name;
	char	   *server_name;
	char	   *brokers;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "sales_kafka client",
								ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	/* an invalidation from here on retires the handle after its first use */
	entry->invalidated = false;
	entry->unchecked = false;
	entry->server_hash = GetSysCacheHashValue1(FOREIGNSERVEROID,
											   ObjectIdGetDatum(entry->key.serverid));
	client_properties(entry->key.kind, &defaults, &overrides);
	kc = sk_kafka_connect(entry->key.serverid, entry->key.userid,
						  entry->key.kind == SK_CLIENT_PRODUCER ?
						  RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER,
						  defaults, overrides);
	server_name = pstrdup(GetForeignServer(entry->key.serverid)->servername);
	role = OidIsValid(entry->key.userid) ?
		GetUserNameFromId(entry->key.userid, true) : NULL;
	role_name = pstrdup(role ? role : "public");
	brokers = sk_brokers ? pstrdup(sk_brokers) : NULL;
	MemoryContextSwitchTo(oldcxt);

	MemoryContextSetParent(cxt, CacheMemoryContext);
	entry->kc = kc;
	entry->cxt = cxt;
	entry->server_name = server_name;
	entry->role_name = role_name;
	entry->brokers = brokers;
	entry->produce_timeout = sk_produce_timeout;
	elog(DEBUG3, "new Kafka %s for server \"%s\" and role \"%s\"",
		 kind_names[entry->key.kind], entry->server_name, entry->role_name);
}

/*
 * A handle of the given kind on a sales_kafka server for userid, kept from
 * an earlier query when there is one; the caller gives it back with
 * sk_kafka_cache_release().  CurrentMemoryContext must be the borrower's
 * (for a scan, the executor's query context): if it is reset or deleted
 * before the handle is given back, the handle is destroyed.  Throws on
 * configuration errors and when the server's owner may no longer set one
 * of its properties.  Does not contact the brokers.  Needs a transaction.
 */
SkKafka *
sk_kafka_cache_get(Oid serverid, Oid userid, SkClientKind kind)
{
	ClientKey	key;
	ClientEntry *entry = NULL;
	ClientLease *lease;
	int			slot;

	if (clients == NULL)
		clients_init();

	memset(&key, 0, sizeof(key));
	key.serverid = serverid;
	key.userid = userid;
	key.kind = kind;
	for (slot = 0; slot < SK_CLIENTS_PER_KEY; slot++)
	{
		bool		found;

		key.slot = slot;
		entry = (ClientEntry *) hash_search(clients, &key, HASH_ENTER, &found);
		if (!found)
		{
			memset((char *) entry + sizeof(ClientKey), 0,
				   sizeof(ClientEntry) - sizeof(ClientKey));
			break;
		}
		if (entry->lease == NULL)
			break;
	}
	if (slot == SK_CLIENTS_PER_KEY)
	{
		List	   *defaults;
		List	   *overrides;

		/* every kept one is busy: one for this borrower alone */
		client_properties(kind, &defaults, &overrides);
		return sk_kafka_connect(serverid, userid,
								kind == SK_CLIENT_PRODUCER ?
								RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER,
								defaults, overrides);
	}

	if (entry->kc != NULL && entry->invalidated)
		discard(entry, "its server or a user mapping changed");
	else if (entry->kc != NULL && entry->unchecked)
		discard(entry, "its server's owner may no longer set its properties");
	else if (entry->kc != NULL && !settings_unchanged(entry))
		discard(entry, "a setting it was made with changed");

	if (entry->kc == NULL)
		make_client(entry);
	else
	{
		ForeignServer *server = GetForeignServer(serverid);

		/* as when the handle was made: the owner's rights, now */
		entry->unchecked = true;
		sk_options_check_rights(server->options, server->owner,
								server->servername);
		entry->unchecked = false;
		sk_kafka_resume(entry->kc);
		elog(DEBUG3, "Kafka %s of server \"%s\" for role \"%s\" reused",
			 kind_names[kind], entry->server_name, entry->role_name);
	}

	lease = palloc0(sizeof(ClientLease));
	lease->entry = entry;
	lease->callback.func = lease_lost;
	lease->callback.arg = lease;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &lease->callback);
	entry->lease = lease;
	return entry->kc;
}

/*
 * Give back a handle of sk_kafka_cache_get() after a query that went well.
 * It is kept for the next query if it is fit for it (see sk_kafka_park())
 * and nothing it was made from changed; else it is destroyed.  Never
 * throws.
 */
void
sk_kafka_cache_release(SkKafka *kc)
{
	HASH_SEQ_STATUS scan;
	ClientEntry *entry;
	ClientEntry *found = NULL;

	hash_seq_init(&scan, clients);
	while ((entry = (ClientEntry *) hash_seq_search(&scan)) != NULL)
	{
		if (entry->kc == kc && entry->lease != NULL)
			found = entry;
	}
	if (found == NULL)
	{
		/* a handle for one borrower alone */
		sk_kafka_close(kc);
		return;
	}

	found->lease->returned = true;
	found->lease = NULL;
	if (found->invalidated)
		discard(found, "its server or a user mapping changed");
	else if (!sk_kafka_park(kc))
		discard(found, "it was left busy or failed");
}

/* The query whose watermarks these were is over */
static void
query_marks_forget(void *arg)
{
	QueryMarks *qm = (QueryMarks *) arg;

	dlist_delete(&qm->node);
}

/*
 * The watermarks of a topic as sk_kafka_watermarks() gives them, asked of
 * Kafka once per scope (a query's context: es_query_cxt) and server, user
 * and topic: every scan of the topic in the query reads up to the same
 * offsets.  kc must be a handle of that server for that user.  The array
 * lives in scope and must not be changed.  Throws on any Kafka error.
 */
SkWatermark *
sk_kafka_cache_watermarks(SkKafka *kc, Oid serverid, Oid userid,
						  const char *topic, MemoryContext scope,
						  int *nmarks)
{
	dlist_iter	iter;
	QueryMarks *qm;
	MemoryContext oldcxt;

	dlist_foreach(iter, &query_marks)
	{
		qm = dlist_container(QueryMarks, node, iter.cur);
		if (qm->scope == scope && qm->serverid == serverid &&
			qm->userid == userid && strcmp(qm->topic, topic) == 0)
		{
			*nmarks = qm->nmarks;
			return qm->marks;
		}
	}

	oldcxt = MemoryContextSwitchTo(scope);
	qm = palloc0(sizeof(QueryMarks));
	qm->scope = scope;
	qm->serverid = serverid;
	qm->userid = userid;
	qm->topic = pstrdup(topic);
	qm->marks = sk_kafka_watermarks(kc, topic, &qm->nmarks);
	MemoryContextSwitchTo(oldcxt);
	elog(DEBUG3, "watermarks of topic \"%s\" read from Kafka for the query",
		 topic);

	qm->callback.func = query_marks_forget;
	qm->callback.arg = qm;
	MemoryContextRegisterResetCallback(scope, &qm->callback);
	dlist_push_head(&query_marks, &qm->node);
	*nmarks = qm->nmarks;
	return qm->marks;
}
