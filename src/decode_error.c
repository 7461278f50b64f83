/*-------------------------------------------------------------------------
 *
 * decode_error.c
 *		The errors of a malformed payload, raised the same way by every
 *		payload format.
 *
 * Decoding errors are data exceptions (SQLSTATE class 22, or what a format
 * says), so that a scan's capture mode and a pipeline's dead letters see one
 * kind of failure.  This file depends on nothing of ours but the header:
 * the decoder fuzzing harness (test/fuzz) compiles it unchanged, with the
 * formats.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/memutils.h"

#include "sales_kafka.h"

/*
 * Raise a decoding error.  Callers in the formats use it for malformed
 * payloads, so that capture mode sees one kind of failure.
 */
void
sk_decode_fail(int sqlstate, const char *message, const char *detail)
{
	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg_internal("%s", message),
			 detail ? errdetail_internal("%s", detail) : 0));
}

/*
 * Text bytes of a message must be valid in the database encoding, without
 * NUL bytes; throws otherwise.  "what" names the part ("payload", "key").
 */
void
sk_check_text(const char *bytes, size_t len, const char *what)
{
	if (len >= MaxAllocSize ||
		!pg_verifymbstr(bytes, (int) len, true) ||
		memchr(bytes, '\0', len) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("Kafka message %s is not valid text in encoding \"%s\"",
						what, GetDatabaseEncodingName())));
}
