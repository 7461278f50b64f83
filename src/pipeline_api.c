/*-------------------------------------------------------------------------
 *
 * pipeline_api.c
 *		The SQL functions that manage pipelines.
 *
 * These functions check the caller's rights and arguments, then change the
 * catalog through pipeline_catalog.c and pipeline_offsets.c, which write
 * it as the bootstrap superuser: anyone who may read the foreign table and
 * write the target may run a pipeline, and only its owner (or a role with
 * the owner's rights) may change it.  A name means the pipeline that
 * sk_catalog_find_pipeline() finds for the caller.
 *
 * A pipeline may own a subset of its topic's partitions (the "partitions"
 * argument, '0-31' or '0,2,5-7'), so that several servers share a topic,
 * each writing its own partitions exactly once.  create_pipeline() refuses
 * partitions the topic does not have (when Kafka can tell), and a pipeline
 * that overlaps another: both read the same topic (the same foreign server
 * and topic name) into the same table (or tables of one partition tree),
 * at least one of them has a partition list, and their partitions meet (a
 * pipeline without a list has them all).  Each pipeline keeps its own
 * offsets, so every message of the common partitions would be written
 * twice.  Pipelines of one topic into different tables never overlap:
 * that is a fan-out, as the superstore shape of create_sales_pipelines()
 * makes.  Two pipelines without a list are not checked, as before lists
 * existed (an append and an upsert pipeline of one topic into one table,
 * say).  start_pipeline() checks again (a foreign table's topic may have
 * changed).
 *
 * Workers are told to start and stop through shared memory; the catalog's
 * "enabled" flag is what makes a pipeline come back after a restart.
 * start_pipeline() registers the workers when its transaction commits, so
 * they see what it decided; before it changes anything, it refuses a
 * pipeline whose workers would not find enough free slots, or would give
 * their owner more than sales_kafka.max_workers_per_owner (superusers are
 * exempt).  Each function changes (and so locks) the
 * pipeline's row before it stops the workers: a worker that has not read
 * the row yet (one the launcher is restarting) then reads what the
 * transaction commits, and no worker waits for the lock while the
 * function waits for the worker, since workers take the row's lock
 * without waiting and give up when they are told to stop.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "sales_kafka.h"

static void forget_pending_start(int64 id);

/* how long stop_pipeline() waits for the workers' current batch */
#define SK_STOP_TIMEOUT_MS 60000

static void
require_workers(void)
{
	if (!sk_shmem_ready())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pipelines can only run when sales_kafka is in shared_preload_libraries"),
				 errhint("Add sales_kafka to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * Check a foreign table and a target as a pipeline would use them, with
 * the owner's privileges: those first, before anything locks either table.
 */
static SkMapping *
check_source_and_target(const char *name, Oid source, Oid target, bool upsert,
						Oid owner)
{
	SkMapping  *map;

	sk_sink_check_privileges(source, target, upsert, owner, name);
	if (get_rel_relkind(source) != RELKIND_FOREIGN_TABLE ||
		!sk_is_kafka_server(GetForeignServer(GetForeignTable(source)->serverid)))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a foreign table of a sales_kafka server",
						get_rel_name(source)),
				 errdetail("A pipeline reads a topic through a sales_kafka foreign table.")));
	map = sk_mapping_load(source);
	sk_sink_check(map, target, upsert, owner, name);
	return map;
}

/*
 * The topic a foreign table names, and its server; NULL if the table is
 * gone or names none.  Reads the catalog caches only.
 */
static char *
source_topic(Oid source, Oid *serverid)
{
	ForeignTable *ft;
	ListCell   *lc;

	if (!SearchSysCacheExists1(FOREIGNTABLEREL, ObjectIdGetDatum(source)))
		return NULL;
	ft = GetForeignTable(source);
	*serverid = ft->serverid;
	foreach(lc, ft->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "topic") == 0)
			return defGetString(def);
	}
	return NULL;
}

/* The table whose rows a write into target adds to: its partition tree's root */
static Oid
target_root(Oid target)
{
	if (get_rel_relispartition(target))
		return llast_oid(get_partition_ancestors(target));
	return target;
}

/* "partitions 0-31", "partition 5" or "every partition", for messages */
static char *
partitions_phrase(const SkPartSet *set)
{
	if (set == NULL)
		return pstrdup("every partition");
	if (set->nranges == 1 && set->lo[0] == set->hi[0])
		return psprintf("partition %d", set->lo[0]);
	return psprintf("partitions %s", sk_partset_text(set));
}

/*
 * Throws if another pipeline (not self_id) overlaps a pipeline of these
 * partitions (NULL: all) from source into target (see the file header).  With lock, the
 * catalog stays locked against other changes until the transaction ends
 * (sk_catalog_all_pipelines()).
 */
static void
check_overlap(const char *name, int64 self_id, Oid source, Oid target,
			  const char *partitions, bool lock)
{
	Oid			serverid = InvalidOid;
	char	   *topic = source_topic(source, &serverid);
	SkPartSet  *mine = partitions != NULL ? sk_partset_parse(partitions) : NULL;
	Oid			root = target_root(target);
	List	   *all;
	ListCell   *lc;

	all = sk_catalog_all_pipelines(lock);
	if (topic == NULL)
		return;
	foreach(lc, all)
	{
		SkPipeline *q = (SkPipeline *) lfirst(lc);
		Oid			q_server = InvalidOid;
		char	   *q_topic;
		SkPartSet  *common;

		if (q->id == self_id || (mine == NULL && q->partitions == NULL))
			continue;
		q_topic = source_topic(q->source, &q_server);
		if (q_topic == NULL || q_server != serverid ||
			strcmp(q_topic, topic) != 0 || target_root(q->target) != root)
			continue;
		common = sk_partset_intersect(mine, q->partitions != NULL ?
									  sk_partset_parse(q->partitions) : NULL);
		if (common != NULL && common->nranges == 0)
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("pipeline \"%s\" would read the same partitions of topic \"%s\" into the same table as pipeline \"%s\"",
						name, topic, q->name),
				 errdetail("Pipeline \"%s\" of role \"%s\" reads %s of the topic into table \"%s\"; both would read %s, and write each of their messages twice.",
						   q->name, GetUserNameFromId(q->owner, true),
						   partitions_phrase(q->partitions != NULL ?
											 sk_partset_parse(q->partitions) : NULL),
						   get_rel_name(root), partitions_phrase(common)),
				 errhint("Give the pipelines disjoint partition lists (the \"partitions\" argument of create_pipeline), or write into another table.")));
	}
}

/*
 * Throws if the topic lacks partitions of the set, when Kafka can tell
 * (asked as the current user, whose rights the caller has checked); says
 * in a NOTICE that it could not.
 */
static void
check_partitions_exist(const char *name, SkMapping *map, SkPartSet *set)
{
	SkKafka    *kc;
	SkWatermark *marks;
	int			nmarks;
	int32	   *parts;
	SkPartSet  *missing;
	SkPartSet  *have;
	int			i;

	kc = sk_kafka_connect(map->serverid, GetUserId(), RD_KAFKA_CONSUMER, NIL, NIL);
	marks = sk_kafka_watermarks_noerror(kc, map->topic, &nmarks);
	sk_kafka_close(kc);
	if (marks == NULL)
	{
		ereport(NOTICE,
				(errmsg("could not check that topic \"%s\" has the partitions of pipeline \"%s\"",
						map->topic, name),
				 errdetail("Kafka did not answer: the workers check when they start, and show partitions the topic does not have in the last_error of pipeline_status.")));
		return;
	}
	parts = palloc(sizeof(int32) * Max(nmarks, 1));
	have = palloc0(sizeof(SkPartSet));
	have->lo = palloc(sizeof(int32) * Max(nmarks, 1));
	have->hi = palloc(sizeof(int32) * Max(nmarks, 1));
	for (i = 0; i < nmarks; i++)
	{
		parts[i] = marks[i].partition;
		if (have->nranges > 0 && have->hi[have->nranges - 1] + 1 == parts[i])
			have->hi[have->nranges - 1] = parts[i];
		else
		{
			have->lo[have->nranges] = have->hi[have->nranges] = parts[i];
			have->nranges++;
		}
	}
	missing = sk_partset_missing(set, parts, nmarks);
	if (missing->nranges > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("topic \"%s\" has no %s", map->topic,
						partitions_phrase(missing)),
				 errdetail("The topic has %d partitions (%s); pipeline \"%s\" would read %s.",
						   nmarks, nmarks > 0 ? sk_partset_text(have) : "none",
						   name, partitions_phrase(set))));
}

/*
 * Stop the workers of a pipeline: they finish their current batch.  The
 * caller has changed the pipeline's row already (see the file header).
 */
static void
stop_workers(SkPipeline *p)
{
	forget_pending_start(p->id);
	if (!sk_shmem_ready())
		return;
	if (!sk_pipeline_stop(MyDatabaseId, p->id, SK_STOP_TIMEOUT_MS))
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("the workers of pipeline \"%s\" did not stop within %d seconds",
						p->name, SK_STOP_TIMEOUT_MS / 1000)));
	sk_pipeline_forget(MyDatabaseId, p->id);
}

/* Pipelines whose workers start when this transaction commits */
typedef struct SkPendingStart
{
	int64		id;
	char		name[NAMEDATALEN];
	int			parallelism;
	Oid			owner;
	bool		owner_exempt;	/* a superuser */
} SkPendingStart;

static List *pending_starts = NIL;
static bool xact_callback_registered = false;

static void
forget_pending_start(int64 id)
{
	ListCell   *lc;

	foreach(lc, pending_starts)
	{
		SkPendingStart *ps = lfirst(lc);

		if (ps->id == id)
		{
			pending_starts = foreach_delete_current(pending_starts, lc);
			pfree(ps);
		}
	}
}

/*
 * At commit, register the workers of the pipelines started in the
 * transaction: before, they could not see its changes.  This cannot fail
 * the commit any more, so a lack of worker slots is a WARNING.
 */
static void
pipeline_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT)
		return;
	foreach(lc, pending_starts)
	{
		SkPendingStart *ps = lfirst(lc);

		if (event != XACT_EVENT_COMMIT)
			continue;
		/* workers that failed before start afresh, without backoff */
		sk_pipeline_forget(MyDatabaseId, ps->id);
		if (!sk_pipeline_start_workers(MyDatabaseId, ps->id, ps->name,
									   ps->parallelism, ps->owner,
									   ps->owner_exempt))
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not start the workers of pipeline \"%s\"", ps->name),
					 errhint("Raise max_worker_processes (and sales_kafka.max_workers), then call start_pipeline again.")));
	}
	list_free_deep(pending_starts);
	pending_starts = NIL;
}

static void
start_workers(SkPipeline *p)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	SkPendingStart *ps = palloc0(sizeof(SkPendingStart));

	require_workers();
	if (!xact_callback_registered)
	{
		RegisterXactCallback(pipeline_xact_callback, NULL);
		xact_callback_registered = true;
	}
	forget_pending_start(p->id);
	ps->id = p->id;
	strlcpy(ps->name, p->name, NAMEDATALEN);
	ps->parallelism = p->parallelism;
	ps->owner = p->owner;
	ps->owner_exempt = superuser_arg(p->owner);
	pending_starts = lappend(pending_starts, ps);
	MemoryContextSwitchTo(old);
}

/*
 * Throws unless the workers of a pipeline can start: unless its owner is a
 * superuser, the owner's workers in every database stay within
 * sales_kafka.max_workers_per_owner, and as many slots as it has workers
 * are free.  Its own workers, which start_pipeline() replaces, count as
 * stopped, and those of pipelines started earlier in the transaction as
 * running.  Two transactions may both see the last slots free: the
 * workers that then find none wait for one (see pipeline_shmem.c).
 */
static void
check_worker_room(SkPipeline *p)
{
	int			free_slots;
	int			owner_workers;
	ListCell   *lc;

	sk_slots_room(MyDatabaseId, p->id, p->owner, &free_slots, &owner_workers);
	foreach(lc, pending_starts)
	{
		SkPendingStart *ps = lfirst(lc);

		if (ps->id == p->id)
			continue;
		free_slots -= ps->parallelism;
		if (ps->owner == p->owner)
			owner_workers += ps->parallelism;
	}
	if (!superuser_arg(p->owner) &&
		owner_workers + p->parallelism > sk_max_workers_per_owner)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many pipeline workers for role \"%s\"",
						GetUserNameFromId(p->owner, false)),
				 errdetail("Pipeline \"%s\" needs %d workers and the role's pipelines run %d; sales_kafka.max_workers_per_owner allows %d.",
						   p->name, p->parallelism, owner_workers,
						   sk_max_workers_per_owner),
				 errhint("Stop another pipeline of the role, or ask a superuser to raise sales_kafka.max_workers_per_owner.")));
	if (free_slots < p->parallelism)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("not enough free pipeline worker slots for pipeline \"%s\"",
						p->name),
				 errdetail("The pipeline needs %d workers, and %d of the %d slots of sales_kafka.max_workers are free.",
						   p->parallelism, Max(free_slots, 0),
						   sk_max_pipeline_workers),
				 errhint("Stop another pipeline, or raise sales_kafka.max_workers (which takes a server restart).")));
}

/*
 * create_pipeline(name, source, target, mode, batch_size, flush_interval,
 *				   start_at, parallelism, partitions)
 */
PG_FUNCTION_INFO_V1(sales_kafka_create_pipeline);
Datum
sales_kafka_create_pipeline(PG_FUNCTION_ARGS)
{
	char	   *name;
	Oid			source = PG_GETARG_OID(1);
	Oid			target = PG_GETARG_OID(2);
	char	   *mode;
	int32		batch_size = PG_GETARG_INT32(4);
	Interval   *flush = PG_GETARG_INTERVAL_P(5);
	char	   *start_at;
	int32		parallelism = PG_GETARG_INT32(7);
	SkPartSet  *partset = NULL;
	char	   *partitions = NULL;
	SkMapping  *map;

	for (int i = 0; i < 8; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the arguments of create_pipeline() must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	mode = text_to_cstring(PG_GETARG_TEXT_PP(3));
	start_at = text_to_cstring(PG_GETARG_TEXT_PP(6));

	if (name[0] == '\0' || strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid pipeline name \"%s\"", name),
				 errdetail("A pipeline name has 1 to %d bytes.", NAMEDATALEN - 1)));
	if (strcmp(mode, "append") != 0 && strcmp(mode, "upsert") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid pipeline mode \"%s\"", mode),
				 errhint("Valid modes are \"append\" and \"upsert\".")));
	if (batch_size < 1 || batch_size > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be between 1 and 1000000")));
	if (sk_catalog_flush_interval_us(flush) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("flush_interval must be between 0 and 1 hour"),
				 flush->month != 0 || flush->day != 0 ?
				 errdetail("An interval with days, months or years has no fixed length: give hours, minutes and seconds.") : 0));
	if (parallelism < 1 || parallelism > sk_max_pipeline_workers)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parallelism must be between 1 and sales_kafka.max_workers (%d)",
						sk_max_pipeline_workers)));
	if (strcmp(start_at, "earliest") != 0 && strcmp(start_at, "latest") != 0)
	{
		/* a point in time, stored in a form that does not depend on settings */
		Datum		ts = DirectFunctionCall3(timestamptz_in, CStringGetDatum(start_at),
											 ObjectIdGetDatum(InvalidOid),
											 Int32GetDatum(-1));

		start_at = psprintf(INT64_FORMAT,
							sk_timestamp_to_ms(DatumGetTimestampTz(ts)));
	}
	/* NULL: every partition of the topic (a 1.2 definition has no argument) */
	if (PG_NARGS() > 8 && !PG_ARGISNULL(8))
	{
		partset = sk_partset_parse(text_to_cstring(PG_GETARG_TEXT_PP(8)));
		partitions = sk_partset_text(partset);
	}

	map = check_source_and_target(name, source, target,
								  strcmp(mode, "upsert") == 0, GetUserId());
	sk_catalog_check_new_name(name, GetUserId());
	/* Kafka is asked after the rights are checked, and before any lock */
	if (partset != NULL)
		check_partitions_exist(name, map, partset);
	check_overlap(name, -1, source, target, partitions, true);

	sk_catalog_insert_pipeline(name, source, target,
							   strcmp(mode, "upsert") == 0, batch_size, flush,
							   start_at, parallelism, GetUserId(), partitions);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(sales_kafka_start_pipeline);
Datum
sales_kafka_start_pipeline(PG_FUNCTION_ARGS)
{
	SkPipeline *p;

	/* first: without the preload, nothing else matters */
	require_workers();
	p = sk_catalog_find_pipeline(PG_GETARG_TEXT_PP(0));
	sk_catalog_check_owner(p);
	/* a failed pipeline may have been fixed: check again before starting */
	check_source_and_target(p->name, p->source, p->target, p->upsert, p->owner);
	check_overlap(p->name, p->id, p->source, p->target, p->partitions, false);
	/* before anything changes: the workers stop at once, whatever follows */
	check_worker_room(p);
	sk_catalog_set_enabled(p->id, true);
	/* workers that are running or restarting stop; new ones start at commit */
	stop_workers(p);
	start_workers(p);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(sales_kafka_stop_pipeline);
Datum
sales_kafka_stop_pipeline(PG_FUNCTION_ARGS)
{
	SkPipeline *p = sk_catalog_find_pipeline(PG_GETARG_TEXT_PP(0));

	sk_catalog_set_enabled(p->id, false);
	stop_workers(p);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(sales_kafka_drop_pipeline);
Datum
sales_kafka_drop_pipeline(PG_FUNCTION_ARGS)
{
	SkPipeline *p = sk_catalog_find_pipeline(PG_GETARG_TEXT_PP(0));

	sk_catalog_delete_pipeline(p->id);
	/* the offsets once the workers are gone: their last batch writes them */
	stop_workers(p);
	sk_offsets_reset(p->id);
	PG_RETURN_VOID();
}

/* Partition offsets to reset a pipeline to, checked by check_offsets() */
typedef struct SkResetOffsets
{
	char	   *topic;
	int			n;
	SkOffset   *offsets;		/* with the partitions' high watermarks */
} SkResetOffsets;

/*
 * A whole number from 0 to max written as the len bytes at s, in decimal
 * digits without sign or leading zeros; false for anything else.
 */
static bool
whole_number(const char *s, int len, int64 max, int64 *result)
{
	int64		v = 0;
	int			i;

	if (len == 0 || (len > 1 && s[0] == '0'))
		return false;
	for (i = 0; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9' || v > (max - (s[i] - '0')) / 10)
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*result = v;
	return true;
}

/*
 * The offsets of a JSON object {"partition": offset, ...}, checked against
 * the pipeline's topic: each partition must exist and each offset be a
 * whole number from 0 to the partition's high watermark (librdkafka would
 * read from the earliest offset instead of one beyond it, and start over),
 * and each partition one the pipeline owns.
 * Asks Kafka for the watermarks as the current user, whom the caller has
 * checked already.  Throws on anything else.
 */
static SkResetOffsets *
check_offsets(SkPipeline *p, Jsonb *offsets)
{
	SkMapping  *map = sk_mapping_load(p->source);
	SkPartSet  *owned = p->partitions != NULL ? sk_partset_parse(p->partitions) : NULL;
	SkResetOffsets *r = palloc0(sizeof(SkResetOffsets));
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	SkKafka    *kc;
	SkWatermark *marks;
	int			nmarks;
	int32		part = -1;
	int			count;

	if (!JB_ROOT_IS_OBJECT(offsets) || JB_ROOT_COUNT(offsets) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("offsets must be a JSON object of partitions and offsets, such as '{\"0\": 42}'")));
	count = JB_ROOT_COUNT(offsets);
	r->topic = map->topic;
	r->offsets = palloc(sizeof(SkOffset) * count);

	kc = sk_kafka_connect(map->serverid, GetUserId(), RD_KAFKA_CONSUMER, NIL, NIL);
	marks = sk_kafka_watermarks(kc, map->topic, &nmarks);
	sk_kafka_close(kc);

	it = JsonbIteratorInit(&offsets->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			int64		value;

			if (!whole_number(v.val.string.val, v.val.string.len, PG_INT32_MAX, &value))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid partition \"%s\" in offsets",
								pnstrdup(v.val.string.val, v.val.string.len)),
						 errdetail("Each key is a partition number, such as \"0\".")));
			part = (int32) value;
		}
		else if (tok == WJB_VALUE)
		{
			char	   *text = v.type == jbvNumeric ?
				DatumGetCString(DirectFunctionCall1(numeric_out,
													NumericGetDatum(v.val.numeric))) : NULL;
			int64		offset;
			int			i;

			if (text == NULL || !whole_number(text, strlen(text), PG_INT64_MAX, &offset))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid offset for partition %d: %s", part,
								text != NULL ? text : "not a number"),
						 errdetail("An offset is a whole number from 0 on.")));
			for (i = 0; i < nmarks && marks[i].partition != part; i++)
				;
			if (i == nmarks)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("partition %d of topic \"%s\" does not exist",
								part, map->topic),
						 errdetail("The topic has %d partitions.", nmarks)));
			if (!sk_partset_contains(owned, part))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("partition %d of topic \"%s\" is not one of the partitions of pipeline \"%s\"",
								part, map->topic, p->name),
						 errdetail("The pipeline reads %s of the topic.",
								   partitions_phrase(owned))));
			if (offset > marks[i].high)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("offset " INT64_FORMAT " is beyond the end of partition %d of topic \"%s\"",
								offset, part, map->topic),
						 errdetail("The next message of the partition gets offset " INT64_FORMAT ".",
								   marks[i].high)));
			r->offsets[r->n].partition = part;
			r->offsets[r->n].expected = SK_OFFSET_ANY;
			r->offsets[r->n].next = offset;
			r->offsets[r->n].high = marks[i].high;
			r->n++;
		}
	}
	return r;
}

/*
 * Reset a pipeline to start_at (no stored offsets: as a new pipeline) or
 * to the given offsets of some partitions, restarting its workers if it is
 * enabled.
 */
static void
reset_pipeline(SkPipeline *p, const char *start_at, SkResetOffsets *offsets)
{
	/* the row first (see the file header), the offsets once no worker runs */
	sk_catalog_set_start_at(p->id, start_at);
	stop_workers(p);
	if (offsets == NULL)
		sk_offsets_reset(p->id);
	else if (!sk_offsets_store(p->id, offsets->topic, offsets->offsets,
							   offsets->n))
		elog(ERROR, "could not store the offsets of pipeline \"%s\"", p->name);
	if (p->enabled)
		start_workers(p);
}

/* parse_time()'s argument and result, for sk_try_subtransaction() */
typedef struct TimeWork
{
	char	   *text;
	TimestampTz result;
} TimeWork;

static void
parse_time(void *arg)
{
	TimeWork   *work = (TimeWork *) arg;

	work->result = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
														   CStringGetDatum(work->text),
														   ObjectIdGetDatum(InvalidOid),
														   Int32GetDatum(-1)));
}

/*
 * reset_pipeline(name, to text): 'earliest', 'latest', a JSON object of
 * partition offsets or a timestamptz, as text: an untyped literal goes to
 * this form whatever it holds.
 */
PG_FUNCTION_INFO_V1(sales_kafka_reset_pipeline);
Datum
sales_kafka_reset_pipeline(PG_FUNCTION_ARGS)
{
	SkPipeline *p = sk_catalog_find_pipeline(PG_GETARG_TEXT_PP(0));
	char	   *to = text_to_cstring(PG_GETARG_TEXT_PP(1));
	const char *first = to + strspn(to, " \t\n\r");
	TimeWork	work = {to, 0};
	ErrorData  *edata;

	if (strcmp(to, "earliest") == 0 || strcmp(to, "latest") == 0)
	{
		reset_pipeline(p, to, NULL);
		PG_RETURN_VOID();
	}
	if (*first == '{')
	{
		Jsonb	   *offsets = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
																 CStringGetDatum(to)));

		reset_pipeline(p, NULL, check_offsets(p, offsets));
		PG_RETURN_VOID();
	}
	edata = sk_try_subtransaction(parse_time, &work);
	if (edata != NULL)
	{
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			ReThrowError(edata);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid reset position \"%s\"", to),
				 errdetail_internal("%s", edata->message),
				 errhint("Reset to 'earliest', 'latest', a time, or a JSON object of partition offsets such as '{\"0\": 42}'.")));
	}
	reset_pipeline(p, psprintf(INT64_FORMAT, sk_timestamp_to_ms(work.result)), NULL);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(sales_kafka_reset_pipeline_time);
Datum
sales_kafka_reset_pipeline_time(PG_FUNCTION_ARGS)
{
	SkPipeline *p = sk_catalog_find_pipeline(PG_GETARG_TEXT_PP(0));
	TimestampTz ts = PG_GETARG_TIMESTAMPTZ(1);

	reset_pipeline(p, psprintf(INT64_FORMAT, sk_timestamp_to_ms(ts)), NULL);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(sales_kafka_reset_pipeline_offsets);
Datum
sales_kafka_reset_pipeline_offsets(PG_FUNCTION_ARGS)
{
	SkPipeline *p = sk_catalog_find_pipeline(PG_GETARG_TEXT_PP(0));

	reset_pipeline(p, NULL, check_offsets(p, PG_GETARG_JSONB_P(1)));
	PG_RETURN_VOID();
}
