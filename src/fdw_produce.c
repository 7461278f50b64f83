/*-------------------------------------------------------------------------
 *
 * fdw_produce.c
 *		INSERT into a sales_kafka foreign table: messages are produced when
 *		the transaction commits, and the commit waits for Kafka.
 *
 * INSERT only encodes each row (encode.c) into a spool: a tuplestore of
 * the transaction, which stays within work_mem and spills to a temporary
 * file beyond it, so that an INSERT of millions of rows runs in bounded
 * memory.  Rows inserted by a subtransaction that rolls back are marked
 * dead in the spool and never sent.
 *
 * At pre-commit, the live rows are produced (by the backend's producer of
 * each server and user, kept from one transaction to the next; see
 * kafka_cache.c), and the commit waits until Kafka has acknowledged
 * every message, or until sales_kafka.produce_timeout.  If any message was
 * not delivered, the commit fails with an ERROR naming how many, and the
 * transaction rolls back.
 *
 * What this cannot guarantee: Kafka is not part of PostgreSQL's commit.
 * Messages acknowledged before a failure (of another message, or of the
 * commit itself after pre-commit: a serialization failure, a crash) stay
 * in Kafka although the transaction rolled back.  A transaction that
 * rolls back before committing produces nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/tuplestore.h"

#include "sales_kafka.h"

/* Where a spooled row goes */
typedef struct SkTarget
{
	Oid			relid;
	Oid			serverid;
	Oid			userid;
	char	   *topic;
} SkTarget;

/* A span of spooled rows written by a subtransaction that rolled back */
typedef struct SkDeadSpan
{
	int64		from;
	int64		to;				/* exclusive */
} SkDeadSpan;

/* A subtransaction in progress and the spool position when it began */
typedef struct SkSubxact
{
	SubTransactionId subid;
	int64		start;
} SkSubxact;

/* The spool of the current transaction; NULL when nothing was inserted */
typedef struct SkSpool
{
	Tuplestorestate *store;
	TupleDesc	tupdesc;		/* target, partition, timestamp, key, payload, headers */
	int64		nrows;
	List	   *targets;		/* SkTarget */
	List	   *dead;			/* SkDeadSpan */
} SkSpool;

static SkSpool *spool = NULL;
static List *subxacts = NIL;	/* SkSubxact, innermost first */

/* Per-table state of an INSERT */
typedef struct SkModifyState
{
	SkMapping  *map;
	int			target;			/* index in spool->targets */
	MemoryContext row_cxt;
} SkModifyState;

/* ---------------------------------------------------------------------
 * The spool
 * ---------------------------------------------------------------------
 */

#define SPOOL_NATTS 6

static SkSpool *
spool_get(void)
{
	MemoryContext oldcxt;
	ResourceOwner oldowner;

	if (spool != NULL)
		return spool;

	oldcxt = MemoryContextSwitchTo(TopTransactionContext);
	spool = palloc0(sizeof(SkSpool));
	spool->tupdesc = CreateTemplateTupleDesc(SPOOL_NATTS);
	TupleDescInitEntry(spool->tupdesc, 1, "target", INT4OID, -1, 0);
	TupleDescInitEntry(spool->tupdesc, 2, "partition", INT4OID, -1, 0);
	TupleDescInitEntry(spool->tupdesc, 3, "timestamp_ms", INT8OID, -1, 0);
	TupleDescInitEntry(spool->tupdesc, 4, "key", BYTEAOID, -1, 0);
	TupleDescInitEntry(spool->tupdesc, 5, "payload", BYTEAOID, -1, 0);
	TupleDescInitEntry(spool->tupdesc, 6, "headers", BYTEAOID, -1, 0);

	/* the spool's temporary file must survive subtransaction aborts */
	oldowner = CurrentResourceOwner;
	CurrentResourceOwner = TopTransactionResourceOwner;
	spool->store = tuplestore_begin_heap(false, false, work_mem);
	CurrentResourceOwner = oldowner;
	MemoryContextSwitchTo(oldcxt);
	return spool;
}

static bytea *
make_bytea(const char *data, size_t len)
{
	bytea	   *b = palloc(len + VARHDRSZ);

	SET_VARSIZE(b, len + VARHDRSZ);
	memcpy(VARDATA(b), data, len);
	return b;
}

/* Headers in the spool: for each, name NUL, flag byte, length, value */
static bytea *
pack_headers(List *headers)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, headers)
	{
		SkOutHeader *h = (SkOutHeader *) lfirst(lc);
		uint32		len = (uint32) h->len;

		appendBinaryStringInfo(&buf, h->name, strlen(h->name) + 1);
		appendStringInfoChar(&buf, h->value != NULL ? 1 : 0);
		appendBinaryStringInfo(&buf, (char *) &len, sizeof(len));
		if (h->value != NULL)
			appendBinaryStringInfo(&buf, h->value, h->len);
	}
	return make_bytea(buf.data, buf.len);
}

static List *
unpack_headers(bytea *packed)
{
	const char *p = VARDATA_ANY(packed);
	const char *end = p + VARSIZE_ANY_EXHDR(packed);
	List	   *headers = NIL;

	while (p < end)
	{
		SkOutHeader *h = palloc0(sizeof(SkOutHeader));
		bool		has_value;
		uint32		len;

		h->name = (char *) p;
		p += strlen(p) + 1;
		has_value = *p++ != 0;
		memcpy(&len, p, sizeof(len));
		p += sizeof(len);
		if (has_value)
		{
			h->value = (char *) p;
			h->len = len;
			p += len;
		}
		headers = lappend(headers, h);
	}
	return headers;
}

static void
spool_add(int target, SkOutMessage *m)
{
	Datum		values[SPOOL_NATTS];
	bool		nulls[SPOOL_NATTS] = {false, false, false, true, true, true};
	ResourceOwner oldowner = CurrentResourceOwner;

	values[0] = Int32GetDatum(target);
	values[1] = Int32GetDatum(m->partition);
	values[2] = Int64GetDatum(m->timestamp_ms);
	if (m->key != NULL)
	{
		values[3] = PointerGetDatum(make_bytea(m->key, m->key_len));
		nulls[3] = false;
	}
	if (m->payload != NULL)
	{
		values[4] = PointerGetDatum(make_bytea(m->payload, m->len));
		nulls[4] = false;
	}
	if (m->headers != NIL)
	{
		values[5] = PointerGetDatum(pack_headers(m->headers));
		nulls[5] = false;
	}

	CurrentResourceOwner = TopTransactionResourceOwner;
	tuplestore_putvalues(spool->store, spool->tupdesc, values, nulls);
	CurrentResourceOwner = oldowner;
	spool->nrows++;
}

static bool
row_is_dead(int64 row)
{
	ListCell   *lc;

	foreach(lc, spool->dead)
	{
		SkDeadSpan *span = (SkDeadSpan *) lfirst(lc);

		if (row >= span->from && row < span->to)
			return true;
	}
	return false;
}

/* ---------------------------------------------------------------------
 * Commit
 * ---------------------------------------------------------------------
 */

/* The producer of each (server, user) pair */
typedef struct SkProducer
{
	Oid			serverid;
	Oid			userid;
	SkKafka    *kc;
} SkProducer;

/*
 * The producer of a target's server and user, borrowed from the backend's
 * cache (kafka_cache.c) for the transaction: if the commit fails before
 * spool_send() gives it back, it is destroyed with TopTransactionContext.
 */
static SkKafka *
producer_for(List **producers, SkTarget *target)
{
	ListCell   *lc;
	SkProducer *p;
	MemoryContext oldcxt;

	foreach(lc, *producers)
	{
		p = (SkProducer *) lfirst(lc);
		if (p->serverid == target->serverid && p->userid == target->userid)
			return p->kc;
	}
	oldcxt = MemoryContextSwitchTo(TopTransactionContext);
	p = palloc0(sizeof(SkProducer));
	p->serverid = target->serverid;
	p->userid = target->userid;
	p->kc = sk_kafka_cache_get(target->serverid, target->userid,
							   SK_CLIENT_PRODUCER);
	*producers = lappend(*producers, p);
	MemoryContextSwitchTo(oldcxt);
	return p->kc;
}

/*
 * Produce every live spooled row and wait for Kafka's acknowledgements;
 * throws, failing the commit, if any message was not delivered.
 */
static void
spool_send(void)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(spool->tupdesc,
													&TTSOpsMinimalTuple);
	MemoryContext row_cxt = AllocSetContextCreate(CurrentMemoryContext,
												  "sales_kafka produce row",
												  ALLOCSET_DEFAULT_SIZES);
	List	   *producers = NIL;
	int64		row = 0;
	int64		sent = 0;
	int64		undelivered = 0;
	int64		failed = 0;
	const char *first_error = NULL;
	ListCell   *lc;

	tuplestore_rescan(spool->store);
	while (tuplestore_gettupleslot(spool->store, true, false, slot))
	{
		MemoryContext oldcxt;
		SkOutMessage m;
		SkTarget   *target;
		bool		isnull;

		CHECK_FOR_INTERRUPTS();
		if (row_is_dead(row++))
			continue;

		oldcxt = MemoryContextSwitchTo(row_cxt);
		memset(&m, 0, sizeof(m));
		target = list_nth(spool->targets,
						  DatumGetInt32(slot_getattr(slot, 1, &isnull)));
		m.partition = DatumGetInt32(slot_getattr(slot, 2, &isnull));
		m.timestamp_ms = DatumGetInt64(slot_getattr(slot, 3, &isnull));
		{
			Datum		d = slot_getattr(slot, 4, &isnull);

			if (!isnull)
			{
				bytea	   *b = DatumGetByteaPP(d);

				m.key = VARDATA_ANY(b);
				m.key_len = VARSIZE_ANY_EXHDR(b);
			}
			d = slot_getattr(slot, 5, &isnull);
			if (!isnull)
			{
				bytea	   *b = DatumGetByteaPP(d);

				m.payload = VARDATA_ANY(b);
				m.len = VARSIZE_ANY_EXHDR(b);
			}
			d = slot_getattr(slot, 6, &isnull);
			if (!isnull)
				m.headers = unpack_headers(DatumGetByteaPP(d));
		}
		MemoryContextSwitchTo(oldcxt);
		sk_kafka_produce(producer_for(&producers, target), target->topic, &m);
		MemoryContextReset(row_cxt);
		sent++;
	}
	ExecDropSingleTupleTableSlot(slot);

	foreach(lc, producers)
	{
		SkProducer *p = (SkProducer *) lfirst(lc);
		int64		f;
		const char *e;

		undelivered += sk_kafka_flush(p->kc, sk_produce_timeout, &f, &e);
		failed += f;
		if (first_error == NULL && e != NULL)
			first_error = pstrdup(e);
		/* one that failed or still holds messages is not kept */
		sk_kafka_cache_release(p->kc);
	}

	if (failed + undelivered > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not deliver " INT64_FORMAT " of " INT64_FORMAT " messages to Kafka",
						failed + undelivered, sent),
				 first_error ?
				 errdetail_internal("%s", first_error) :
				 errdetail("No acknowledgement arrived within \"sales_kafka.produce_timeout\"."),
				 errhint("The transaction is rolled back, but the messages that were delivered remain in Kafka.")));
}

static void
reset_transaction_state(void)
{
	/* the spool lived in TopTransactionContext and goes with it */
	spool = NULL;
	subxacts = NIL;
}

static void
produce_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (spool != NULL)
			{
				if (spool->nrows > 0)
					spool_send();
				/* its temporary file must be gone before commit checks */
				tuplestore_end(spool->store);
				spool = NULL;
			}
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (spool != NULL && spool->nrows > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that inserted into a Kafka foreign table")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			reset_transaction_state();
			break;
		default:
			break;
	}
}

static void
produce_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	SkSubxact  *top;

	switch (event)
	{
		case SUBXACT_EVENT_START_SUB:
			{
				MemoryContext oldcxt = MemoryContextSwitchTo(TopTransactionContext);
				SkSubxact  *sub = palloc(sizeof(SkSubxact));

				sub->subid = mySubid;
				sub->start = spool ? spool->nrows : 0;
				subxacts = lcons(sub, subxacts);
				MemoryContextSwitchTo(oldcxt);
				break;
			}
		case SUBXACT_EVENT_COMMIT_SUB:
		case SUBXACT_EVENT_ABORT_SUB:
			if (subxacts == NIL)
				break;
			top = (SkSubxact *) linitial(subxacts);
			if (top->subid != mySubid)
				break;
			subxacts = list_delete_first(subxacts);
			if (event == SUBXACT_EVENT_ABORT_SUB && spool != NULL &&
				spool->nrows > top->start)
			{
				MemoryContext oldcxt = MemoryContextSwitchTo(TopTransactionContext);
				SkDeadSpan *span = palloc(sizeof(SkDeadSpan));

				span->from = top->start;
				span->to = spool->nrows;
				spool->dead = lappend(spool->dead, span);
				MemoryContextSwitchTo(oldcxt);
			}
			break;
		default:
			break;
	}
}

/*
 * Register the transaction callbacks.  Called from _PG_init, so that
 * savepoints taken before the first INSERT are tracked too.
 */
void
sk_produce_init(void)
{
	RegisterXactCallback(produce_xact_callback, NULL);
	RegisterSubXactCallback(produce_subxact_callback, NULL);
}

/* ---------------------------------------------------------------------
 * FDW callbacks
 * ---------------------------------------------------------------------
 */

static int
skIsForeignRelUpdatable(Relation rel)
{
	return (1 << CMD_INSERT);
}

static void
begin_insert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	EState	   *estate = mtstate ? mtstate->ps.state : NULL;
	Relation	rel = rinfo->ri_RelationDesc;
	SkModifyState *st = palloc0(sizeof(SkModifyState));
	SkTarget   *target;
	MemoryContext oldcxt;
	Oid			userid = GetUserId();

	if (estate != NULL && rinfo->ri_RangeTableIndex > 0)
	{
		RangeTblEntry *rte = exec_rt_fetch(rinfo->ri_RangeTableIndex, estate);

		if (OidIsValid(rte->checkAsUser))
			userid = rte->checkAsUser;
	}

	st->map = sk_mapping_load(RelationGetRelid(rel));
	st->row_cxt = AllocSetContextCreate(CurrentMemoryContext,
										"sales_kafka encode row",
										ALLOCSET_DEFAULT_SIZES);

	spool_get();
	oldcxt = MemoryContextSwitchTo(TopTransactionContext);
	target = palloc0(sizeof(SkTarget));
	target->relid = st->map->relid;
	target->serverid = st->map->serverid;
	target->userid = userid;
	target->topic = pstrdup(st->map->topic);
	spool->targets = lappend(spool->targets, target);
	st->target = list_length(spool->targets) - 1;
	MemoryContextSwitchTo(oldcxt);

	rinfo->ri_FdwState = st;
}

static void
skBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
					 List *fdw_private, int subplan_index, int eflags)
{
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	begin_insert(mtstate, rinfo);
}

static void
skBeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	begin_insert(mtstate, rinfo);
}

static TupleTableSlot *
skExecForeignInsert(EState *estate, ResultRelInfo *rinfo,
					TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	SkModifyState *st = (SkModifyState *) rinfo->ri_FdwState;
	MemoryContext oldcxt = MemoryContextSwitchTo(st->row_cxt);
	SkOutMessage m;

	slot_getallattrs(slot);
	sk_encode_row(st->map, slot, &m);
	spool_add(st->target, &m);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(st->row_cxt);
	return slot;
}

static void
skEndForeignModify(EState *estate, ResultRelInfo *rinfo)
{
}

/*
 * Fill in the INSERT callbacks of the handler.
 */
void
sk_produce_routine(FdwRoutine *routine)
{
	routine->IsForeignRelUpdatable = skIsForeignRelUpdatable;
	routine->BeginForeignModify = skBeginForeignModify;
	routine->ExecForeignInsert = skExecForeignInsert;
	routine->EndForeignModify = skEndForeignModify;
	routine->BeginForeignInsert = skBeginForeignInsert;
	routine->EndForeignInsert = skEndForeignModify;
}
