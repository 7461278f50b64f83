/*-------------------------------------------------------------------------
 *
 * subxact.c
 *		Running a piece of work in an internal subtransaction and handing
 *		its error back instead of throwing it.
 *
 * Where one bad message or row must not fail a whole scan or batch, the
 * work runs here: on an ERROR its effects roll back with the
 * subtransaction, and the caller decides what the error means (a dead
 * letter, an error column, or rethrowing it).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/resowner.h"

#include "sales_kafka.h"

/*
 * Run work(arg) in a subtransaction; NULL if it succeeded, else its error,
 * copied into the caller's memory context.  CurrentMemoryContext and
 * CurrentResourceOwner are the caller's again on return.
 */
ErrorData *
sk_try_subtransaction(void (*work) (void *arg), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		work(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return edata;
}
