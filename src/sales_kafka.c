/*-------------------------------------------------------------------------
 *
 * sales_kafka.c
 *		Module magic and _PG_init, which only calls each module's init.
 *
 * The library works both preloaded (shared_preload_libraries), which the
 * ingest pipelines need, and loaded on demand by the foreign data wrapper
 * and the SQL functions.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "sales_kafka.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	sk_guc_init();
	sk_produce_init();
	/* pipelines need shared memory and the launcher: only when preloaded */
	if (process_shared_preload_libraries_in_progress)
	{
		sk_shmem_init();
		sk_rollup_shmem_init();
		sk_launcher_register();
	}
}
