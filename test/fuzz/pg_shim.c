/*-------------------------------------------------------------------------
 *
 * pg_shim.c
 *		The few PostgreSQL backend symbols the payload decoders need, so that
 *		src/decode_json.c, src/decode_csv.c and src/decode_error.c run
 *		unchanged inside a fuzzing process, without a server.
 *
 * Shimmed here (backend semantics the decoders rely on are kept):
 *	- memory contexts: CurrentMemoryContext, palloc, palloc0, repalloc,
 *	  pfree, pstrdup, pnstrdup, MemoryContextAlloc, MemoryContextAllocZero,
 *	  plus sk_fuzz_context_create/_reset/_delete for the harness.  Every
 *	  chunk is its own malloc() (AddressSanitizer sees its exact bounds),
 *	  with the owning context in the word before it, as
 *	  GetMemoryChunkContext() reads it; palloc fills new memory with 0x7F
 *	  (as RANDOMIZE_ALLOCATED_MEMORY would), palloc0 zeroes, repalloc keeps
 *	  the data and always moves it, pfree(NULL) and sizes over MaxAllocSize
 *	  fail as in the server;
 *	- lappend and list_make1, with exactly sized cell arrays as
 *	  DEBUG_LIST_MEMORY_USAGE builds have them, so a stale cell pointer is
 *	  caught;
 *	- error reporting: errstart, errstart_cold, errfinish, errcode, errmsg,
 *	  errmsg_internal, errdetail, errdetail_internal, errhint,
 *	  pg_re_throw, FlushErrorState, PG_exception_stack,
 *	  error_context_stack: ERROR and above unwind to the innermost PG_TRY
 *	  with siglongjmp, as the server does; below ERROR nothing is reported;
 *	  sk_fuzz_error holds the last error's SQLSTATE, message and detail;
 *	- ExceptionalCondition (failed Assert: abort, a crash for the fuzzer);
 *	- encodings (the database encoding is UTF8): GetDatabaseEncoding,
 *	  GetDatabaseEncodingName, pg_verifymbstr, pg_unicode_to_server;
 *
 * Not shimmed: StringInfo, UTF-8 verification, unicode_to_utf8,
 * pg_utf_mblen and snprintf are PostgreSQL's own code, linked from the
 * server's libpgcommon.a and libpgport.a.
 *
 * This file is never part of the extension (whose Makefile builds the
 * C files of src/ only); it is single-threaded and serves test/fuzz only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

#include "mb/pg_wchar.h"
#include "nodes/memnodes.h"
#include "nodes/pg_list.h"
#include "port/pg_bitutils.h"
#include "utils/memutils.h"

#include "fuzz_common.h"

/* ---------------------------------------------------------------------
 * Memory contexts
 * ---------------------------------------------------------------------
 */

/*
 * A chunk's header.  context must be the last member: the server's
 * GetMemoryChunkContext() reads the word just before the chunk.
 */
typedef struct ShimChunk
{
	struct ShimChunk *prev;
	struct ShimChunk *next;
	Size		size;
	MemoryContext context;
} ShimChunk;

typedef struct ShimContext
{
	MemoryContextData header;	/* first: a MemoryContext points here */
	ShimChunk	chunks;			/* circular list of live chunks */
} ShimContext;

StaticAssertDecl(sizeof(ShimChunk) % MAXIMUM_ALIGNOF == 0,
				 "chunk header must keep chunks MAXALIGNed");

MemoryContext CurrentMemoryContext = NULL;

MemoryContext
sk_fuzz_context_create(const char *name)
{
	ShimContext *cxt = calloc(1, sizeof(ShimContext));

	if (cxt == NULL)
		sk_fuzz_abort("out of memory creating context \"%s\"", name);
	/* MemoryContextIsValid() accepts the server's context node tags */
	cxt->header.type = T_AllocSetContext;
	cxt->header.name = name;
	cxt->chunks.prev = cxt->chunks.next = &cxt->chunks;
	return &cxt->header;
}

static ShimChunk *
chunk_of(void *pointer)
{
	return ((ShimChunk *) pointer) - 1;
}

static void
chunk_release(ShimChunk *chunk)
{
	chunk->prev->next = chunk->next;
	chunk->next->prev = chunk->prev;
	free(chunk);
}

void
sk_fuzz_context_reset(MemoryContext context)
{
	ShimContext *cxt = (ShimContext *) context;

	while (cxt->chunks.next != &cxt->chunks)
		chunk_release(cxt->chunks.next);
}

void
sk_fuzz_context_delete(MemoryContext context)
{
	sk_fuzz_context_reset(context);
	if (CurrentMemoryContext == context)
		CurrentMemoryContext = NULL;
	free(context);
}

static void *
chunk_alloc(MemoryContext context, Size size, bool zero)
{
	ShimContext *cxt = (ShimContext *) context;
	ShimChunk  *chunk;

	if (context == NULL)
		sk_fuzz_abort("palloc without a current memory context");
	if (!AllocSizeIsValid(size))
		elog(ERROR, "invalid memory alloc request size %zu", size);
	chunk = malloc(sizeof(ShimChunk) + size);
	if (chunk == NULL)
		sk_fuzz_abort("out of memory (%zu bytes)", size);
	chunk->size = size;
	chunk->context = context;
	chunk->next = &cxt->chunks;
	chunk->prev = cxt->chunks.prev;
	cxt->chunks.prev->next = chunk;
	cxt->chunks.prev = chunk;
	memset(chunk + 1, zero ? 0 : 0x7F, size);
	return chunk + 1;
}

void *
MemoryContextAlloc(MemoryContext context, Size size)
{
	return chunk_alloc(context, size, false);
}

void *
MemoryContextAllocZero(MemoryContext context, Size size)
{
	return chunk_alloc(context, size, true);
}

void *
palloc(Size size)
{
	return chunk_alloc(CurrentMemoryContext, size, false);
}

void *
palloc0(Size size)
{
	return chunk_alloc(CurrentMemoryContext, size, true);
}

void
pfree(void *pointer)
{
	if (pointer == NULL)
		sk_fuzz_abort("pfree(NULL)");
	chunk_release(chunk_of(pointer));
}

/* Always moves the data, so that a stale pointer is a use after free */
void *
repalloc(void *pointer, Size size)
{
	ShimChunk  *old;
	void	   *new;

	if (pointer == NULL)
		sk_fuzz_abort("repalloc(NULL)");
	old = chunk_of(pointer);
	if (!AllocSizeIsValid(size))
		elog(ERROR, "invalid memory alloc request size %zu", size);
	new = chunk_alloc(old->context, size, false);
	memcpy(new, pointer, Min(size, old->size));
	chunk_release(old);
	return new;
}

char *
pstrdup(const char *in)
{
	return pnstrdup(in, strlen(in));
}

char *
pnstrdup(const char *in, Size len)
{
	char	   *out;

	len = strnlen(in, len);
	out = palloc(len + 1);
	memcpy(out, in, len);
	out[len] = '\0';
	return out;
}

/* ---------------------------------------------------------------------
 * Lists
 * ---------------------------------------------------------------------
 */

List *
lappend(List *list, void *datum)
{
	if (list == NIL)
	{
		list = palloc(offsetof(List, initial_elements) + sizeof(ListCell));
		list->type = T_List;
		list->length = 1;
		list->max_length = 1;
		list->elements = list->initial_elements;
	}
	else
	{
		ListCell   *cells;

		if (list->type != T_List)
			sk_fuzz_abort("lappend() on a list of type %d", (int) list->type);
		/* a new array every time, as DEBUG_LIST_MEMORY_USAGE does */
		cells = MemoryContextAlloc(GetMemoryChunkContext(list),
								   (list->length + 1) * sizeof(ListCell));
		memcpy(cells, list->elements, list->length * sizeof(ListCell));
		if (list->elements != list->initial_elements)
			pfree(list->elements);
		list->elements = cells;
		list->length++;
		list->max_length = list->length;
	}
	llast(list) = datum;
	return list;
}

/* list_make1() of a pointer, as pg_list.h builds it */
List *
list_make1_impl(NodeTag t, ListCell datum1)
{
	if (t != T_List)
		sk_fuzz_abort("list_make1() of list type %d", (int) t);
	return lappend(NIL, lfirst(&datum1));
}

/* ---------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------
 */

sigjmp_buf *PG_exception_stack = NULL;
ErrorContextCallback *error_context_stack = NULL;

SkFuzzError sk_fuzz_error;

static int	pending_elevel;

bool
errstart(int elevel, const char *domain)
{
	if (elevel < ERROR)
		return false;
	if (pending_elevel != 0)
		sk_fuzz_abort("error raised while reporting another: %s",
					  sk_fuzz_error.message);
	pending_elevel = elevel;
	memset(&sk_fuzz_error, 0, sizeof(sk_fuzz_error));
	sk_fuzz_error.sqlstate = ERRCODE_INTERNAL_ERROR;
	return true;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	pending_elevel = 0;
	snprintf(sk_fuzz_error.where, sizeof(sk_fuzz_error.where), "%s:%d %s",
			 filename, lineno, funcname ? funcname : "");
	if (PG_exception_stack == NULL)
		sk_fuzz_abort("ERROR outside PG_TRY at %s: %s",
					  sk_fuzz_error.where, sk_fuzz_error.message);
	siglongjmp(*PG_exception_stack, 1);
}

int
errcode(int sqlerrcode)
{
	sk_fuzz_error.sqlstate = sqlerrcode;
	return 0;
}

#define SET_TEXT(field, fmt) \
	do { \
		va_list		args; \
		va_start(args, fmt); \
		vsnprintf(sk_fuzz_error.field, sizeof(sk_fuzz_error.field), fmt, args); \
		va_end(args); \
	} while (0)

int
errmsg(const char *fmt,...)
{
	SET_TEXT(message, fmt);
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	SET_TEXT(message, fmt);
	return 0;
}

int
errdetail(const char *fmt,...)
{
	SET_TEXT(detail, fmt);
	return 0;
}

int
errdetail_internal(const char *fmt,...)
{
	SET_TEXT(detail, fmt);
	return 0;
}

int
errhint(const char *fmt,...)
{
	SET_TEXT(hint, fmt);
	return 0;
}

void
pg_re_throw(void)
{
	if (PG_exception_stack == NULL)
		sk_fuzz_abort("ERROR re-thrown outside PG_TRY: %s",
					  sk_fuzz_error.message);
	siglongjmp(*PG_exception_stack, 1);
}

void
FlushErrorState(void)
{
	pending_elevel = 0;
}

void
ExceptionalCondition(const char *conditionName, const char *errorType,
					 const char *fileName, int lineNumber)
{
	sk_fuzz_abort("%s(\"%s\", File: \"%s\", Line: %d)",
				  errorType ? errorType : "TRAP", conditionName,
				  fileName, lineNumber);
}

/* ---------------------------------------------------------------------
 * Encodings: the database encoding is UTF8
 * ---------------------------------------------------------------------
 */

int
GetDatabaseEncoding(void)
{
	return PG_UTF8;
}

const char *
GetDatabaseEncodingName(void)
{
	return "UTF8";
}

/* As mbutils.c's pg_verify_mbstr(), with the verifier of wchar.c */
bool
pg_verifymbstr(const char *mbstr, int len, bool noError)
{
	int			oklen = pg_encoding_verifymbstr(PG_UTF8, mbstr, len);

	if (oklen != len)
	{
		if (noError)
			return false;
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("invalid byte sequence for encoding \"UTF8\"")));
	}
	return true;
}

/* As mbutils.c's, for a UTF8 database */
void
pg_unicode_to_server(pg_wchar c, unsigned char *s)
{
	if (!is_valid_unicode_codepoint(c))
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("invalid Unicode code point")));
	if (c <= 0x7F)
	{
		s[0] = (unsigned char) c;
		s[1] = '\0';
		return;
	}
	unicode_to_utf8(c, s);
	s[pg_utf_mblen(s)] = '\0';
}

