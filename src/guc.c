/*-------------------------------------------------------------------------
 *
 * guc.c
 *		Every sales_kafka.* setting.
 *
 * The settings are defined whether the library is preloaded or loaded on
 * demand, and the "sales_kafka" prefix is reserved so that a misspelt
 * setting is reported instead of silently becoming a placeholder.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/guc.h"

#include "sales_kafka.h"

char	   *sk_brokers = NULL;
int			sk_connect_timeout = 10000;
int			sk_produce_timeout = 30000;
int			sk_max_pipeline_workers = 16;
int			sk_max_workers_per_owner = 8;
bool		sk_rollup_worker = true;
int			sk_rollup_min_interval = 200;
int			sk_rollup_poll_interval = 1000;

/*
 * sales_kafka.brokers decides where servers without a "brokers" option send
 * their user mappings' credentials: only superusers set it, and it is
 * checked as the option is.
 */
static bool
check_brokers(char **newval, void **extra, GucSource source)
{
	char	   *why;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	why = sk_options_check_brokers(*newval);
	if (why == NULL)
		return true;
	GUC_check_errdetail("%s", why);
	return false;
}

/*
 * Define the settings.  Called once per process from _PG_init.
 */
void
sk_guc_init(void)
{
	DefineCustomStringVariable("sales_kafka.brokers",
							   "Kafka bootstrap brokers used by servers that have no \"brokers\" option.",
							   "A comma-separated list of host:port pairs.",
							   &sk_brokers,
							   "localhost:9092",
							   PGC_SUSET,
							   0,
							   check_brokers, NULL, NULL);

	DefineCustomIntVariable("sales_kafka.connect_timeout",
							"Time to wait for Kafka brokers to answer a metadata or offset request.",
							"Waiting can always be cancelled; this bounds it when nobody cancels.",
							&sk_connect_timeout,
							10000, 1, 3600 * 1000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("sales_kafka.produce_timeout",
							"Time a committing transaction waits for Kafka to acknowledge the messages it produced.",
							NULL,
							&sk_produce_timeout,
							30000, 1, 3600 * 1000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	/*
	 * It sizes the shared memory that only a preloaded library has; a
	 * library loaded on demand may not define a postmaster setting (FATAL)
	 * and keeps the default, which then bounds only create_pipeline's
	 * parallelism.
	 */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("sales_kafka.max_workers",
								"Most pipeline workers that can run at once.",
								"Each also needs a slot of max_worker_processes.",
								&sk_max_pipeline_workers,
								16, 1, 1024,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

	/*
	 * Read by start_pipeline(), by each worker as it takes its slot and by
	 * the launcher: only a superuser's configuration file sets it.
	 */
	DefineCustomIntVariable("sales_kafka.max_workers_per_owner",
							"Most pipeline workers the pipelines of one role can run at once.",
							"Counted in all databases; pipelines owned by superusers are exempt.",
							&sk_max_workers_per_owner,
							8, 0, 1024,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	/* read by the rollup workers (rollup_worker.c) */
	DefineCustomBoolVariable("sales_kafka.rollup_worker",
							 "Keeps the rollups of every sales model current with a background worker per database.",
							 "Off, the workers idle and the rollups move only when sales_kafka.refresh_rollups is called.",
							 &sk_rollup_worker,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("sales_kafka.rollup_min_interval",
							"Shortest time between two rollups of a sales model by the rollup worker.",
							"The worker rolls up as soon as a pipeline commits order lines, at most this often.",
							&sk_rollup_min_interval,
							200, 0, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("sales_kafka.rollup_poll_interval",
							"Time between two looks of the rollup worker for order lines that other sessions than pipelines wrote.",
							"Each look compares each model's ingest_id sequence with its progress, which costs next to nothing.",
							&sk_rollup_poll_interval,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("sales_kafka");
}
