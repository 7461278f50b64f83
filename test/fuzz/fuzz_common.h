/*-------------------------------------------------------------------------
 *
 * fuzz_common.h
 *		What the fuzz targets share: the shim's harness entry points
 *		(pg_shim.c), mappings built as sk_mapping_load() builds them, and
 *		the checks of an extraction against a reference (fuzz_common.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SK_FUZZ_COMMON_H
#define SK_FUZZ_COMMON_H

#include "sales_kafka.h"

/* in pg_shim.c */

/* The last error raised through ereport() */
typedef struct SkFuzzError
{
	int			sqlstate;
	char		message[512];
	char		detail[512];
	char		hint[512];
	char		where[256];
} SkFuzzError;

extern SkFuzzError sk_fuzz_error;

extern MemoryContext sk_fuzz_context_create(const char *name);
extern void sk_fuzz_context_reset(MemoryContext context);
extern void sk_fuzz_context_delete(MemoryContext context);

/* in fuzz_common.c */

/*
 * Contexts of one input: the mapping's (as a foreign table's mapping
 * lives across messages) and two message contexts, reset per message.
 */
extern MemoryContext sk_fuzz_mapping_cxt;
extern MemoryContext sk_fuzz_message_cxt;
extern MemoryContext sk_fuzz_message2_cxt;

extern void sk_fuzz_init(void);
extern void sk_fuzz_done(void);
extern void sk_fuzz_abort(const char *fmt,...) pg_attribute_printf(1, 2)
			pg_attribute_noreturn();
extern const char *sk_fuzz_show(const char *bytes, size_t len);
extern bool sk_fuzz_utf8_valid(const char *s, size_t len);
extern const char *sk_fuzz_sqlstate(int sqlstate);

extern SkMapping *sk_fuzz_mapping(SkFormat format, int maxatts);
extern SkColumn *sk_fuzz_add_column(SkMapping *map, const char *name,
									Oid typid, SkColumnKind kind);
extern void sk_fuzz_set_field(SkMapping *map, SkColumn *col,
							  const char *field);
extern void sk_fuzz_set_json_path(SkMapping *map, SkColumn *col,
								  const char *path);
extern void sk_fuzz_finish_mapping(SkMapping *map);
extern void sk_fuzz_split_input(const uint8_t *data, size_t size,
								const char *default_spec, size_t ndefault,
								size_t max_spec,
								const char **spec, size_t *nspec,
								const char **payload, size_t *len);

extern void sk_fuzz_check_json(SkMapping *map, const char *payload,
							   size_t len, const bool *wanted);

#endif							/* SK_FUZZ_COMMON_H */
