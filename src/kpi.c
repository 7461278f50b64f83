/*-------------------------------------------------------------------------
 *
 * kpi.c
 *		What the KPI layer's rollups need from C: waiting until every
 *		transaction that is writing into a fact table has ended.
 *
 * The rollups (sales_kafka.refresh_rollups, in SQL) read the fact rows
 * whose ingest_id lies between the last one rolled up and the sequence's
 * last value.  Sequence values are handed out before the rows commit, and
 * not in commit order, so a row with a smaller ingest_id may still be
 * invisible when the rollup reads.  Every such row belongs to a
 * transaction that took its value while holding ROW EXCLUSIVE on the table:
 * waiting for the holders of locks that conflict with SHARE, as CREATE
 * INDEX CONCURRENTLY does, makes every value read before the wait final,
 * without blocking the writers that come after.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_inherits.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"

#include "sales_kafka.h"

PG_FUNCTION_INFO_V1(sk_wait_for_writers);

/*
 * sales_kafka._wait_for_writers(regclass): returns once every transaction
 * that was writing into the table, or into one of its partitions, when the
 * call began has committed or rolled back.
 */
Datum
sk_wait_for_writers(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	List	   *rels;
	List	   *tags = NIL;
	ListCell   *lc;

	/* privileges first: a lock, even a weak one, can queue behind others */
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", get_rel_name(relid))));
	/* the caller reads the table next anyway: this lock costs nothing */
	LockRelationOid(relid, AccessShareLock);
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));

	rels = find_all_inheritors(relid, AccessShareLock, NULL);
	foreach(lc, rels)
	{
		LOCKTAG    *tag = palloc(sizeof(LOCKTAG));

		SET_LOCKTAG_RELATION(*tag, MyDatabaseId, lfirst_oid(lc));
		tags = lappend(tags, tag);
	}
	WaitForLockersMultiple(tags, ShareLock, false);

	PG_RETURN_VOID();
}
