/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Every PG_VERSION_NUM test of sales_kafka, and nothing else.
 *
 * The extension targets PostgreSQL 15.  Newer servers are reached only
 * through the macros here, so that no other file tests the version.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALES_KAFKA_COMPAT_H
#define SALES_KAFKA_COMPAT_H

#include "utils/wait_event.h"

#if PG_VERSION_NUM < 150000
#error "sales_kafka requires PostgreSQL 15 or later"
#endif

/*
 * Wait event for every wait on Kafka.  PostgreSQL 17 can name it; on 15 and
 * 16 it shows as the generic "Extension" event.
 */
#if PG_VERSION_NUM >= 170000
#define SK_WAIT_EVENT_KAFKA	WaitEventExtensionNew("SalesKafkaWait")
#else
#define SK_WAIT_EVENT_KAFKA	PG_WAIT_EXTENSION
#endif

/*
 * DecodeDateTime() given no place for a time zone, true when it succeeds:
 * it fails for text that names a zone or an offset.  PostgreSQL 16 added an
 * argument for error details.  For files that include utils/datetime.h.
 */
#if PG_VERSION_NUM >= 160000
#define sk_decode_datetime_without_zone(field, ftype, nf, dtype, tm, fsec) \
	(DecodeDateTime((field), (ftype), (nf), (dtype), (tm), (fsec), NULL, \
					&(DateTimeErrorExtra) {0}) == 0)
#else
#define sk_decode_datetime_without_zone(field, ftype, nf, dtype, tm, fsec) \
	(DecodeDateTime((field), (ftype), (nf), (dtype), (tm), (fsec), NULL) == 0)
#endif

#endif							/* SALES_KAFKA_COMPAT_H */
