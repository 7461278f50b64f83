/*-------------------------------------------------------------------------
 *
 * time_ordered_uuid.c
 *		sales_kafka.time_ordered_uuid(): the order ids that a sales model
 *		gives order lines that come without one (the sale_events shape).
 *
 * A UUID of version 7 (RFC 9562): the Unix time in milliseconds in the
 * first 48 bits, then the fraction of the millisecond in 12 bits (RFC 9562
 * section 6.2, method 3), then 62 random bits.  Ids made one after the
 * other sort in the order they were made (those of the same 1/4096 ms by
 * their random bits), so a primary key on them grows at its right edge:
 * the index pages that a pipeline's inserts and the rollups' probes of new
 * lines touch stay in shared buffers.  Random ids
 * (gen_random_uuid()) put each new line on a random leaf page of the whole
 * index, which misses the cache once the index outgrows it.
 *
 * The random bits come from a generator of this process, seeded from
 * pg_strong_random() at its first call: an order id must be unique, not
 * unpredictable, and pg_strong_random() costs about 2 us a call (OpenSSL),
 * a third of what ingesting a line costs.  Two ids collide only when made
 * within the same 1/4096 ms and their 62 random bits match.  The result is
 * palloc'd in the caller's context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/pg_prng.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "sales_kafka.h"

PG_FUNCTION_INFO_V1(sales_kafka_time_ordered_uuid);

/* milliseconds from the Unix epoch to PostgreSQL's */
#define UNIX_TO_PG_EPOCH_MS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000)

static pg_prng_state uuid_prng;
static bool uuid_prng_seeded = false;

Datum
sales_kafka_time_ordered_uuid(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *uuid = palloc(sizeof(pg_uuid_t));
	TimestampTz now = GetCurrentTimestamp();
	uint64		unix_us = (uint64) (now + UNIX_TO_PG_EPOCH_MS * 1000);
	uint64		unix_ms = unix_us / 1000;
	uint64		fraction = (unix_us % 1000) * 4096 / 1000;	/* 12 bits */
	uint64		high;
	uint64		low;

	if (!uuid_prng_seeded)
	{
		/* as InitProcessGlobals() seeds the global one */
		if (!pg_prng_strong_seed(&uuid_prng))
			pg_prng_seed(&uuid_prng, ((uint64) MyProcPid) ^ (uint64) now);
		uuid_prng_seeded = true;
	}

	/* unix_ms (48 bits), version 7 (4 bits), fraction (12 bits) */
	high = (unix_ms << 16) | (UINT64CONST(7) << 12) | fraction;
	/* variant 0b10 (2 bits), random (62 bits) */
	low = (pg_prng_uint64(&uuid_prng) >> 2) | (UINT64CONST(2) << 62);

	high = pg_hton64(high);
	low = pg_hton64(low);
	memcpy(uuid->data, &high, 8);
	memcpy(uuid->data + 8, &low, 8);
	PG_RETURN_UUID_P(uuid);
}
