/*-------------------------------------------------------------------------
 *
 * sales_kafka.h
 *		Types and prototypes shared by the modules of sales_kafka, grouped
 *		by the file that defines them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALES_KAFKA_H
#define SALES_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "fmgr.h"
#include "foreign/foreign.h"
#include "nodes/pg_list.h"

/* in guc.c */
extern char *sk_brokers;
extern int	sk_connect_timeout;
extern int	sk_produce_timeout;

extern void sk_guc_init(void);

/* in kafka_conn.c */

/* A librdkafka handle owned by a memory context; see kafka_conn.c. */
typedef struct SkKafka SkKafka;

/* A topic and its partition count. */
typedef struct SkTopic
{
	char	   *name;
	int			partitions;
} SkTopic;

/* One partition's low and high watermark. */
typedef struct SkWatermark
{
	int32		partition;
	int64		low;
	int64		high;
} SkWatermark;

extern void sk_kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
							  const char *value);
extern SkKafka *sk_kafka_connect(Oid serverid, rd_kafka_type_t type,
								 List *extra_props);
extern void sk_kafka_close(SkKafka *kc);
extern rd_kafka_t *sk_kafka_handle(SkKafka *kc);
extern const char *sk_kafka_server_name(SkKafka *kc);
extern void sk_kafka_serve(SkKafka *kc);
extern const char *sk_kafka_last_error(SkKafka *kc);
extern SkTopic *sk_kafka_list_topics(SkKafka *kc, int *ntopics);
extern SkWatermark *sk_kafka_watermarks(SkKafka *kc, const char *topic,
										int *npartitions);
extern int64 *sk_kafka_offsets_for_time(SkKafka *kc, const char *topic,
										int npartitions, const int32 *partitions,
										int64 timestamp_ms);
extern void sk_kafka_report(SkKafka *kc, rd_kafka_resp_err_t err,
							const char *topic) pg_attribute_noreturn();

/* in fdw_options.c */
extern bool sk_option_is_secret(const char *name);
extern bool sk_option_is_kafka_property(const char *name);
extern int	sk_option_lookup(const char *const *names, const char *value);
extern const char *sk_closest_match(const char *name,
									const char *const *candidates,
									int ncandidates);

/* in decode_json.c */

/* One step of a json_path: a field name, or an array index when key is NULL */
typedef struct SkPathStep
{
	char	   *key;
	int			index;
} SkPathStep;

extern List *sk_json_path_parse(const char *path, const char **error);

/* in fdw.c */
extern Datum sales_kafka_fdw_handler(PG_FUNCTION_ARGS);

/* in sql_api.c */
extern Oid	sk_server_oid(const char *servername);

#endif							/* SALES_KAFKA_H */
