/*-------------------------------------------------------------------------
 *
 * sql_api.c
 *		SQL-callable functions that talk to Kafka directly: topics() and
 *		watermarks().
 *
 * Each call borrows the backend's consumer of the named server for the
 * current user (kafka_cache.c) and gives it back before returning; an
 * ERROR destroys it instead, with the call's memory context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "parser/parse_type.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"
#include "utils/tuplestore.h"

#include "sales_kafka.h"

PG_FUNCTION_INFO_V1(sales_kafka_topics);
PG_FUNCTION_INFO_V1(sales_kafka_watermarks);
PG_FUNCTION_INFO_V1(sales_kafka_decode);

/*
 * Is this server one of the sales_kafka foreign data wrapper's?
 */
bool
sk_is_kafka_server(ForeignServer *server)
{
	ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);
	FmgrInfo	handler;

	if (!OidIsValid(fdw->fdwhandler))
		return false;
	fmgr_info(fdw->fdwhandler, &handler);
	return handler.fn_addr == sales_kafka_fdw_handler;
}

/*
 * The OID of a sales_kafka foreign server the current user may use.
 * Throws if the server does not exist, belongs to another foreign data
 * wrapper, or the user lacks USAGE on it.
 */
Oid
sk_server_oid(const char *servername)
{
	ForeignServer *server = GetForeignServerByName(servername, false);
	AclResult	aclresult;

	if (!sk_is_kafka_server(server))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("server \"%s\" does not use the sales_kafka foreign data wrapper",
						servername)));

	aclresult = pg_foreign_server_aclcheck(server->serverid, GetUserId(),
										   ACL_USAGE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FOREIGN_SERVER, servername);
	return server->serverid;
}

/*
 * topics(server name) returns table (topic text, partitions int)
 */
Datum
sales_kafka_topics(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			serverid = sk_server_oid(NameStr(*PG_GETARG_NAME(0)));
	SkKafka    *kc;
	SkTopic    *topics;
	int			ntopics;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	kc = sk_kafka_cache_get(serverid, GetUserId(), SK_CLIENT_CONSUMER);
	topics = sk_kafka_list_topics(kc, &ntopics);
	sk_kafka_cache_release(kc);

	for (i = 0; i < ntopics; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = CStringGetTextDatum(topics[i].name);
		values[1] = Int32GetDatum(topics[i].partitions);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * watermarks(server name, topic text) returns table (partition int,
 * low bigint, high bigint)
 */
Datum
sales_kafka_watermarks(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			serverid = sk_server_oid(NameStr(*PG_GETARG_NAME(0)));
	char	   *topic = text_to_cstring(PG_GETARG_TEXT_PP(1));
	SkKafka    *kc;
	SkWatermark *marks;
	int			nmarks;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	kc = sk_kafka_cache_get(serverid, GetUserId(), SK_CLIENT_CONSUMER);
	marks = sk_kafka_watermarks(kc, topic, &nmarks);
	sk_kafka_cache_release(kc);

	for (i = 0; i < nmarks; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = Int32GetDatum(marks[i].partition);
		values[1] = Int64GetDatum(marks[i].low);
		values[2] = Int64GetDatum(marks[i].high);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * The relation OID of a sales_kafka foreign table, from its row type.
 * Throws if the type is not the row type of such a table.
 */
static Oid
kafka_table_of_type(Oid typid)
{
	Oid			relid = typeOrDomainTypeRelid(typid);

	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_FOREIGN_TABLE ||
		!sk_is_kafka_server(GetForeignServer(GetForeignTable(relid)->serverid)))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("type %s is not the row type of a sales_kafka foreign table",
						format_type_be(typid)),
				 errhint("Pass a null value of the foreign table's row type, as in NULL::my_topic_table.")));
	return relid;
}

/*
 * decode(row anyelement, payload bytea, key bytea default null) returns
 * anyelement: one payload decoded through a foreign table's mapping, as
 * SELECT would show it, without any broker.  partition and offset columns
 * are NULL; the table's "strict" option decides between an ERROR and a row
 * with the error in its "error" column.
 */
Datum
sales_kafka_decode(PG_FUNCTION_ARGS)
{
	Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, 0);
	SkMapping  *map = (SkMapping *) fcinfo->flinfo->fn_extra;
	TupleDesc	tupdesc;
	SkMessage	msg;
	SkDecodeError error;
	Datum	   *values;
	bool	   *nulls;

	if (map == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		Oid			relid = kafka_table_of_type(typid);

		if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
			aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_FOREIGN_TABLE,
						   get_rel_name(relid));
		map = sk_mapping_load(relid);
		fcinfo->flinfo->fn_extra = map;
		MemoryContextSwitchTo(oldcxt);
	}

	memset(&msg, 0, sizeof(msg));
	msg.topic = map->topic;
	msg.partition = -1;
	msg.timestamp_ms = -1;
	if (!PG_ARGISNULL(1))
	{
		bytea	   *payload = PG_GETARG_BYTEA_PP(1);

		msg.payload = VARDATA_ANY(payload);
		msg.len = VARSIZE_ANY_EXHDR(payload);
	}
	if (PG_NARGS() > 2 && !PG_ARGISNULL(2))
	{
		bytea	   *key = PG_GETARG_BYTEA_PP(2);

		msg.key = VARDATA_ANY(key);
		msg.key_len = VARSIZE_ANY_EXHDR(key);
	}

	tupdesc = lookup_rowtype_tupdesc_copy(typid, -1);
	values = palloc(sizeof(Datum) * Max(tupdesc->natts, 1));
	nulls = palloc(sizeof(bool) * Max(tupdesc->natts, 1));
	sk_decode_message(map, &msg, NULL, values, nulls, !map->strict, &error);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
													  values, nulls)));
}
