/*-------------------------------------------------------------------------
 *
 * sql_api.c
 *		SQL-callable functions that talk to Kafka directly: topics() and
 *		watermarks().
 *
 * Each call opens its own librdkafka handle on the named server, for the
 * current user, and closes it before returning; an ERROR closes it through
 * the handle's memory context (see kafka_conn.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "sales_kafka.h"

PG_FUNCTION_INFO_V1(sales_kafka_topics);
PG_FUNCTION_INFO_V1(sales_kafka_watermarks);

/*
 * The OID of a sales_kafka foreign server the current user may use.
 * Throws if the server does not exist, belongs to another foreign data
 * wrapper, or the user lacks USAGE on it.
 */
Oid
sk_server_oid(const char *servername)
{
	ForeignServer *server = GetForeignServerByName(servername, false);
	ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);
	AclResult	aclresult;
	FmgrInfo	handler;

	if (OidIsValid(fdw->fdwhandler))
		fmgr_info(fdw->fdwhandler, &handler);
	if (!OidIsValid(fdw->fdwhandler) ||
		handler.fn_addr != sales_kafka_fdw_handler)
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
	kc = sk_kafka_connect(serverid, RD_KAFKA_CONSUMER, NIL);
	topics = sk_kafka_list_topics(kc, &ntopics);
	sk_kafka_close(kc);

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
	kc = sk_kafka_connect(serverid, RD_KAFKA_CONSUMER, NIL);
	marks = sk_kafka_watermarks(kc, topic, &nmarks);
	sk_kafka_close(kc);

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
