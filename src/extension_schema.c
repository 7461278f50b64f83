/*-------------------------------------------------------------------------
 *
 * extension_schema.c
 *		Making sure that the schema named "sales_kafka" is the extension's
 *		own, and a superuser's, before anything is done in it as superuser.
 *
 * The catalog statements (between sk_catalog_begin() and sk_catalog_end(),
 * pipeline_catalog.c) name sales_kafka.pipeline and its siblings and run as
 * the bootstrap superuser.  A schema of that name that another role owns would run that
 * role's triggers, rules, defaults and views as superuser: one made before
 * CREATE EXTENSION (the extension then installs into it), one given away
 * by ALTER SCHEMA ... OWNER TO, or one put in the place of the extension's
 * after renaming it.  The install scripts refuse the first case (see the
 * 1.3 script); this file refuses all three at run time.
 *
 * Only reads the catalogs; never changes anything.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_namespace.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "sales_kafka.h"

/*
 * The schema of the extension sales_kafka in this database (whatever its
 * name is now), or InvalidOid if the extension is not installed.  Needs a
 * transaction.
 */
static Oid
extension_namespace(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			nsp = InvalidOid;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("sales_kafka"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		nsp = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return nsp;
}

/* The owner of a schema that exists. */
Oid
sk_schema_owner(Oid nsp)
{
	HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * Throws ERRCODE_INSUFFICIENT_PRIVILEGE unless the schema named
 * "sales_kafka" is the schema of the extension and a superuser owns it
 * (ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE if the extension is not
 * installed).  Call it before every statement that names the extension's
 * objects and runs as superuser.  Needs a transaction; changes nothing.
 */
void
sk_extension_schema_check(void)
{
	Oid			extnsp = extension_namespace();
	Oid			named = get_namespace_oid("sales_kafka", true);
	Oid			owner;

	if (!OidIsValid(extnsp))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"sales_kafka\" is not installed in this database")));
	if (named != extnsp)
	{
		char	   *extname = get_namespace_name(extnsp);

		if (OidIsValid(named))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("schema \"sales_kafka\" is not the schema of extension \"sales_kafka\""),
					 errdetail("The extension's schema was renamed to \"%s\"; role \"%s\" owns the schema now named \"sales_kafka\".",
							   extname,
							   GetUserNameFromId(sk_schema_owner(named), false)),
					 errhint("As a superuser, rename or drop the other schema, then rename schema \"%s\" back to \"sales_kafka\".",
							 extname)));
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("schema \"sales_kafka\" is not the schema of extension \"sales_kafka\""),
				 errdetail("The extension's schema was renamed to \"%s\".", extname),
				 errhint("As a superuser, rename schema \"%s\" back to \"sales_kafka\".",
						 extname)));
	}
	owner = sk_schema_owner(extnsp);
	if (!superuser_arg(owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("schema \"sales_kafka\" is not owned by a superuser"),
				 errdetail("Role \"%s\" owns it, and could change the tables that the extension writes as a superuser.",
						   GetUserNameFromId(owner, false)),
				 errhint("As a superuser, check what the schema holds, then run ALTER SCHEMA sales_kafka OWNER TO CURRENT_USER.")));
}
