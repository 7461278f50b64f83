/*-------------------------------------------------------------------------
 *
 * fdw.c
 *		The handler of the sales_kafka foreign data wrapper.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "foreign/fdwapi.h"

#include "sales_kafka.h"

PG_FUNCTION_INFO_V1(sales_kafka_fdw_handler);

Datum
sales_kafka_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	PG_RETURN_POINTER(routine);
}
