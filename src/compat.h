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

#endif							/* SALES_KAFKA_COMPAT_H */
