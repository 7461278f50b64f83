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
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "executor/tuptable.h"
#include "nodes/pathnodes.h"
#include "nodes/pg_list.h"
#include "datatype/timestamp.h"

/* in guc.c */
extern char *sk_brokers;
extern int	sk_connect_timeout;
extern int	sk_produce_timeout;
extern int	sk_max_pipeline_workers;
extern int	sk_max_workers_per_owner;
extern bool sk_rollup_worker;
extern int	sk_rollup_min_interval;
extern int	sk_rollup_poll_interval;

extern void sk_guc_init(void);

/* in options.c */

/* One of our own options and the catalog it stands on */
typedef struct SkOption
{
	const char *name;
	Oid			context;		/* ForeignServerRelationId, ... */
} SkOption;

/* the longest name of a Kafka topic */
#define SK_TOPIC_MAX_LEN 249

/* Payload formats, in the order of sk_format_names */
typedef enum SkFormat
{
	SK_FORMAT_JSON,
	SK_FORMAT_CSV,
	SK_FORMAT_TEXT,
	SK_FORMAT_BYTEA
} SkFormat;

/* What a column holds; the first eight in the order of sk_kafka_column_names */
typedef enum SkColumnKind
{
	SK_COL_PARTITION,
	SK_COL_OFFSET,
	SK_COL_TIMESTAMP,
	SK_COL_KEY,
	SK_COL_HEADERS,
	SK_COL_TOPIC,
	SK_COL_PAYLOAD,
	SK_COL_ERROR,
	SK_COL_FIELD,				/* a field of the payload */
	SK_COL_DROPPED				/* a dropped attribute */
} SkColumnKind;

extern const SkOption sk_options[];
extern const char *const sk_format_names[];
extern const char *const sk_kafka_column_names[];
extern const char *const sk_secret_properties[];

extern bool sk_options_is_secret(const char *name);
extern bool sk_options_is_kafka_property(const char *name);
extern const char *sk_options_managed_hint(const char *name);
extern int	sk_options_lookup(const char *const *names, const char *value);
extern const char *sk_options_closest_match(const char *name,
											const char *const *candidates,
											int ncandidates);
extern char *sk_options_check_brokers(const char *list);
extern void sk_options_check_rights(List *options, Oid role,
									const char *server);

/* in kafka_conf.c */
extern void sk_kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
							  const char *value);
extern rd_kafka_conf_t *sk_kafka_conf_build(ForeignServer *server, Oid userid,
											rd_kafka_type_t type,
											List *defaults, List *overrides,
											List **secrets);
extern const char *sk_kafka_conf_redact(List *secrets, const char *text);

/* in kafka_call.c */

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

/* A request running on a helper thread; see kafka_call.c */
typedef struct SkCall SkCall;

/* A handle's side of its requests on helper threads */
typedef struct SkCallOwner
{
	rd_kafka_t *rk;
	SkCall	   *inflight;		/* a request the backend waits for, or NULL */
	void		(*serve) (void *arg);	/* serves the handle's callbacks */
	void	   *serve_arg;
} SkCallOwner;

extern int64 sk_kafka_now_ms(void);
extern rd_kafka_resp_err_t sk_kafka_call_topics(SkCallOwner *owner,
												int timeout_ms,
												SkTopic **topics,
												int *ntopics);
extern rd_kafka_resp_err_t sk_kafka_call_watermarks(SkCallOwner *owner,
													const char *topic,
													int timeout_ms,
													SkWatermark **marks,
													int *nmarks);
extern rd_kafka_resp_err_t sk_kafka_call_offsets_for_time(SkCallOwner *owner,
														  const char *topic,
														  int npartitions,
														  const int32 *partitions,
														  int64 timestamp_ms,
														  int timeout_ms,
														  int64 **offsets);
extern void sk_kafka_call_stop(SkCallOwner *owner);

/* in kafka_conn.c */

struct SkOutMessage;			/* in encode.c */

/* A librdkafka handle owned by a memory context; see kafka_conn.c. */
typedef struct SkKafka SkKafka;

extern SkKafka *sk_kafka_connect(Oid serverid, Oid userid,
								 rd_kafka_type_t type, List *defaults,
								 List *overrides);
extern void sk_kafka_close(SkKafka *kc);
extern SkTopic *sk_kafka_list_topics(SkKafka *kc, int *ntopics);
extern SkWatermark *sk_kafka_watermarks(SkKafka *kc, const char *topic,
										int *npartitions);
extern SkWatermark *sk_kafka_watermarks_noerror(SkKafka *kc,
												const char *topic,
												int *npartitions);
extern int64 *sk_kafka_offsets_for_time(SkKafka *kc, const char *topic,
										int npartitions, const int32 *partitions,
										int64 timestamp_ms);
extern void sk_kafka_assign(SkKafka *kc,
							rd_kafka_topic_partition_list_t *parts);
extern rd_kafka_message_t *sk_kafka_next_message(SkKafka *kc, int timeout_ms);
extern rd_kafka_message_t *sk_kafka_take_message(SkKafka *kc);
extern int64 sk_kafka_cached_high(SkKafka *kc, const char *topic,
								  int32 partition);
extern void sk_kafka_produce(SkKafka *kc, const char *topic,
							 struct SkOutMessage *m);
extern int64 sk_kafka_flush(SkKafka *kc, int timeout_ms, int64 *failed,
							const char **error);
extern void sk_kafka_report(SkKafka *kc, rd_kafka_resp_err_t err,
							const char *topic) pg_attribute_noreturn();
extern const char *sk_kafka_redact(SkKafka *kc, const char *text);
extern bool sk_kafka_park(SkKafka *kc);
extern void sk_kafka_resume(SkKafka *kc);

/* in kafka_cache.c */

/* The kinds of handle kept; see kafka_cache.c */
typedef enum SkClientKind
{
	SK_CLIENT_CONSUMER,			/* scans, topics() and watermarks() */
	SK_CLIENT_PRODUCER			/* INSERT into a foreign table */
} SkClientKind;

extern SkKafka *sk_kafka_cache_get(Oid serverid, Oid userid,
								   SkClientKind kind);
extern void sk_kafka_cache_release(SkKafka *kc);
extern SkWatermark *sk_kafka_cache_watermarks(SkKafka *kc, Oid serverid,
											  Oid userid, const char *topic,
											  MemoryContext scope,
											  int *nmarks);

/* in mapping.c */

/* How a CSV table's first line is treated */
typedef enum SkCsvHeader
{
	SK_HEADER_NONE,
	SK_HEADER_SKIP,
	SK_HEADER_MATCH
} SkCsvHeader;

/*
 * How a time column reads text and numbers (column option "time_format"):
 * by default numbers are epoch milliseconds and text what the type's input
 * function takes; see decode_time.c.
 */
typedef enum SkTimeFormat
{
	SK_TIME_DEFAULT,
	SK_TIME_EPOCH,				/* "epoch": the unit told by the magnitude */
	SK_TIME_EPOCH_S,
	SK_TIME_EPOCH_MS,
	SK_TIME_EPOCH_US,
	SK_TIME_TEMPLATE			/* a to_timestamp() template */
} SkTimeFormat;

/* One attribute of a foreign table and where its value comes from */
typedef struct SkColumn
{
	SkColumnKind kind;
	char	   *name;			/* attribute name */
	Oid			typid;
	Oid			basetypid;		/* typid, or the base type of a domain */
	int32		typmod;
	int32		basetypmod;		/* for a domain, its base type's typmod */
	FmgrInfo	infunc;			/* for a domain, one that checks its
								 * constraints */
	Oid			typioparam;
	FmgrInfo	outfunc;
	void	   *domain_cache;	/* domain_check()'s, for values that bypass
								 * infunc */
	/* SK_COL_FIELD only */
	char	   *field;			/* JSON key or CSV header name */
	List	   *path;			/* JSON path steps (SkPathStep), NIL = "$" */
	bool		whole_payload;	/* json_path '$' */
	int			csv_field;		/* 0-based CSV position, -1 = by header */
	char	   *alias;			/* another name of the field, or NULL */
	SkTimeFormat time_format;
	text	   *time_template;	/* SK_TIME_TEMPLATE: the template */
	struct pg_tz *time_zone;	/* zone of times without an offset, or NULL */
} SkColumn;

/* A foreign table's mapping: how a topic's messages become its rows */
typedef struct SkMapping
{
	Oid			relid;
	Oid			serverid;
	char	   *relname;
	char	   *topic;
	SkFormat	format;
	bool		strict;
	char		csv_delimiter;
	char		csv_quote;
	char	   *csv_null;
	SkCsvHeader csv_header;
	int			natts;
	SkColumn   *columns;		/* natts entries, by attnum - 1 */
	int			max_path_depth; /* longest JSON path among the columns */
	AttrNumber	partition_attno;	/* 0 when the table has no such column */
	AttrNumber	offset_attno;
	AttrNumber	timestamp_attno;
	AttrNumber	key_attno;
	AttrNumber	headers_attno;
	AttrNumber	error_attno;
	void	   *json_plan;		/* decode_json.c's prepared paths */
} SkMapping;

extern SkMapping *sk_mapping_load(Oid relid);

/* in decode.c */

/* A Kafka message as the decoder sees it */
typedef struct SkMessage
{
	const char *topic;
	int32		partition;		/* -1 when decoding a bare payload */
	int64		offset;
	int64		timestamp_ms;	/* -1 when unknown */
	bool		log_append_time;	/* set by the broker, not the producer */
	const char *key;			/* NULL for a null key */
	size_t		key_len;
	const char *payload;		/* NULL for a tombstone */
	size_t		len;
	rd_kafka_headers_t *headers;	/* may be NULL */
} SkMessage;

/* Why a message could not be decoded, when the caller captures errors */
typedef struct SkDecodeError
{
	int			sqlstate;
	char	   *message;
	char	   *detail;
} SkDecodeError;

/* A payload field pulled out by a format, before type conversion */
typedef struct SkRawValue
{
	bool		present;
	bool		isnull;
	bool		is_number;		/* a JSON number: epoch milliseconds for times */
	const char *str;			/* len bytes, not NUL-terminated: it may
								 * point into the message's payload */
	int			len;
	const char *json;			/* the value's JSON text, for json/jsonb;
								 * NUL-terminated */
	int			json_len;
} SkRawValue;

extern bool sk_decode_message(SkMapping *map, const SkMessage *msg,
							  const bool *wanted, Datum *values, bool *nulls,
							  bool capture, SkDecodeError *error);
extern void sk_message_from_kafka(const rd_kafka_message_t *msg,
								  const char *topic, bool with_headers,
								  SkMessage *m);
extern char *sk_headers_json(rd_kafka_headers_t *headers);
extern bytea *sk_bytea(const char *bytes, size_t len);
extern Datum sk_timestamp_from_ms(int64 ms);
extern int64 sk_timestamp_to_ms(TimestampTz ts);
extern bool sk_is_data_error(int sqlstate);

/* in decode_time.c */
extern const char *const sk_time_format_names[];
extern SkTimeFormat sk_time_check_format(const char *value);
extern struct pg_tz *sk_time_check_zone(const char *value);
extern void sk_time_map_format(SkColumn *col, const char *value);
extern Datum sk_time_from_text(SkColumn *col, const char *str, bool is_number);

/* in decode_error.c */
extern void sk_check_text(const char *bytes, size_t len, const char *what);
extern void sk_decode_fail(int sqlstate, const char *message,
						   const char *detail) pg_attribute_noreturn();

/* in encode.c */

/* A header of a message to produce; value NULL for a header without one */
typedef struct SkOutHeader
{
	char	   *name;
	char	   *value;
	size_t		len;
} SkOutHeader;

/* A message to produce */
typedef struct SkOutMessage
{
	int32		partition;		/* RD_KAFKA_PARTITION_UA: by key */
	int64		timestamp_ms;	/* 0: now */
	char	   *key;			/* NULL: no key */
	size_t		key_len;
	char	   *payload;		/* NULL: a tombstone */
	size_t		len;
	List	   *headers;		/* SkOutHeader */
} SkOutMessage;

extern void sk_encode_row(SkMapping *map, TupleTableSlot *slot,
						  SkOutMessage *out);

/* in decode_csv.c */
extern void sk_csv_map_field(SkMapping *map, SkColumn *col);
extern void sk_csv_extract(SkMapping *map, const char *payload, size_t len,
						   const bool *wanted, SkRawValue *raw);

/* in fdw_pushdown.c */

typedef enum SkQualField
{
	SK_QUAL_NONE,
	SK_QUAL_PARTITION,
	SK_QUAL_OFFSET,
	SK_QUAL_TIMESTAMP
} SkQualField;

typedef enum SkQualOp
{
	SK_OP_NONE,
	SK_OP_EQ,
	SK_OP_LT,
	SK_OP_LE,
	SK_OP_GT,
	SK_OP_GE,
	SK_OP_IN
} SkQualOp;

/* A condition pushed down to Kafka: field op operand */
typedef struct SkQual
{
	SkQualField field;
	SkQualOp	op;
	Expr	   *operand;
} SkQual;

/* What the evaluated conditions allow */
typedef struct SkBounds
{
	int			nparts;			/* -1: every partition */
	int32	   *parts;
	int64		offset_lo;		/* inclusive */
	int64		offset_hi;		/* exclusive */
	int64		ts_lo_ms;		/* inclusive */
	int64		ts_hi_ms;		/* exclusive */
} SkBounds;

extern List *sk_pushdown_classify(SkMapping *map, Index relid, List *rinfos,
								  List **local);
extern bool sk_pushdown_join_clause(SkMapping *map, Index relid,
									RestrictInfo *rinfo);
extern bool sk_pushdown_bounds(List *quals, Datum *values, bool *isnull,
							   SkBounds *bounds);
extern char *sk_pushdown_explain(List *quals, SkQualField field);

/* in json_path.c */

/* One step of a json_path: a field name, or an array index when key is NULL */
typedef struct SkPathStep
{
	char	   *key;
	int			keylen;
	int			index;
} SkPathStep;

extern List *sk_json_path_parse(const char *path, const char **error);
extern List *sk_json_path_check(const char *path);

/* in decode_json.c */
extern void sk_json_map_path(SkMapping *map, SkColumn *col, const char *path);
extern void sk_json_map_field(SkMapping *map, SkColumn *col);
extern void sk_json_extract(SkMapping *map, const char *payload, size_t len,
							const bool *wanted, SkRawValue *raw);

/* in fdw.c */
extern Datum sales_kafka_fdw_handler(PG_FUNCTION_ARGS);

/* in fdw_produce.c */
extern void sk_produce_init(void);
extern void sk_produce_routine(FdwRoutine *routine);

/* in sql_api.c */
extern bool sk_is_kafka_server(ForeignServer *server);
extern Oid	sk_server_oid(const char *servername);

/* in subxact.c */
extern ErrorData *sk_try_subtransaction(void (*work) (void *arg), void *arg);

/* in partset.c */

/* Partitions a pipeline owns, as sorted disjoint ranges; NULL: all of them */
typedef struct SkPartSet
{
	int			nranges;
	int32	   *lo;
	int32	   *hi;
} SkPartSet;

extern SkPartSet *sk_partset_parse(const char *spec);
extern char *sk_partset_text(const SkPartSet *set);
extern bool sk_partset_contains(const SkPartSet *set, int32 part);
extern int64 sk_partset_ordinal(const SkPartSet *set, int32 part);
extern SkPartSet *sk_partset_intersect(const SkPartSet *a, const SkPartSet *b);
extern SkPartSet *sk_partset_missing(const SkPartSet *set, const int32 *parts,
									 int npartitions);

/* in extension_schema.c */
extern void sk_extension_schema_check(void);
extern Oid	sk_schema_owner(Oid nsp);

/* in pipeline_catalog.c */

/* A row of sales_kafka.pipeline */
typedef struct SkPipeline
{
	int64		id;
	char	   *name;
	Oid			source;			/* foreign table */
	Oid			target;
	bool		upsert;
	int			batch_size;
	int			flush_ms;
	char	   *start_at;		/* 'earliest', 'latest' or epoch milliseconds */
	int			parallelism;
	Oid			owner;
	bool		enabled;
	bool		failed;
	char	   *partitions;		/* canonical partition list; NULL: all */
} SkPipeline;

/* What sk_catalog_begin() changed, for sk_catalog_end() to restore */
typedef struct SkCatalogScope
{
	Oid			user;
	int			context;
	int			guc_level;
} SkCatalogScope;

/* the most parameters of a catalog statement */
#define SK_CATALOG_MAX_ARGS 11

/*
 * A statement on the extension's tables, prepared on its first run and kept
 * for the life of the process; see pipeline_catalog.c.  Declare it static,
 * with the plan NULL.
 */
typedef struct SkCatalogStatement
{
	const char *sql;
	int			nargs;
	Oid			argtypes[SK_CATALOG_MAX_ARGS];
	bool		read_only;
	int			expected;		/* SPI_execute_plan()'s result, SPI_OK_* */
	struct _SPI_plan *plan;		/* an SPIPlanPtr */
} SkCatalogStatement;

extern void sk_catalog_begin(SkCatalogScope *scope);
extern void sk_catalog_end(SkCatalogScope *scope);
extern uint64 sk_catalog_run(SkCatalogStatement *stmt, Datum *values,
							 const char *nulls);
extern uint64 sk_catalog_exec(SkCatalogStatement *stmt, Datum *values,
							  const char *nulls);
extern int64 sk_catalog_flush_interval_us(const Interval *flush);
extern SkPipeline *sk_catalog_load_pipeline(int64 id);
extern SkPipeline *sk_catalog_lock_pipeline(int64 id, bool for_update);
extern SkPipeline *sk_catalog_find_pipeline(text *name);
extern List *sk_catalog_enabled_pipelines(void);
extern void sk_catalog_check_owner(SkPipeline *p);
extern void sk_catalog_insert_pipeline(const char *name, Oid source,
									   Oid target, bool upsert,
									   int32 batch_size, Interval *flush,
									   const char *start_at,
									   int32 parallelism, Oid owner,
									   const char *partitions);
extern List *sk_catalog_all_pipelines(bool lock);
extern void sk_catalog_check_new_name(const char *name, Oid owner);
extern void sk_catalog_set_enabled(int64 id, bool enabled);
extern void sk_catalog_set_start_at(int64 id, const char *start_at);
extern void sk_catalog_set_failure(int64 id, const char *reason);
extern void sk_catalog_delete_pipeline(int64 id);

/* in pipeline_offsets.c */

/* One partition's offset to store; see sk_offsets_store() */
typedef struct SkOffset
{
	int32		partition;
	int64		expected;		/* what the stored offset is, or one of: */
#define SK_OFFSET_NEW	(-1)	/* the partition has no stored offset yet */
#define SK_OFFSET_ANY	(-2)	/* whatever is stored, if anything */
	int64		next;			/* the offset of the next message to write */
	int64		high;			/* the partition's high watermark; -1: unknown */
} SkOffset;

extern void sk_offsets_load(int64 pipeline_id, const char *topic,
							int npartitions, int64 *next);
extern bool sk_offsets_store(int64 pipeline_id, const char *topic,
							 const SkOffset *offsets, int n);
extern void sk_offsets_reset(int64 pipeline_id);

/* in bulk_insert.c */

/* Rows written as COPY writes them; see bulk_insert.c */
typedef struct SkBulkInsert SkBulkInsert;

/* rows handed to table_multi_insert() at once, as COPY does */
#define SK_MULTI_INSERT_ROWS 1000

/* flags of sk_bulk_begin() */
#define SK_BULK_SORT_INDEXES	0x01	/* no volatile code runs between rows */
#define SK_BULK_ONE_BY_ONE		0x02	/* volatile code between rows may
										 * read the table */

extern bool sk_bulk_writable(Relation rel);
extern bool sk_bulk_insert_possible(Relation rel, Oid user);
extern SkBulkInsert *sk_bulk_create(Relation rel);
extern void sk_bulk_begin(SkBulkInsert *bi, ResultRelInfo *rri,
						  EState *estate, int flags);
extern TupleTableSlot *sk_bulk_next_slot(SkBulkInsert *bi);
extern void sk_bulk_add(SkBulkInsert *bi, TupleTableSlot *slot);
extern uint64 sk_bulk_end(SkBulkInsert *bi);
extern void sk_bulk_free(SkBulkInsert *bi);

/* in pipeline_sink.c */

/* How a batch's rows reach its pipeline's target table; see pipeline_sink.c */
typedef struct SkSink SkSink;

/* The statements a pipeline's sink keeps from one batch to the next */
typedef struct SkSinkPlans SkSinkPlans;

extern void sk_sink_check_privileges(Oid source, Oid target, bool upsert,
									 Oid owner, const char *pipeline);
extern void sk_sink_check(SkMapping *map, Oid target, bool upsert, Oid owner,
						  const char *pipeline);
extern SkSinkPlans *sk_sink_plans_create(void);
extern SkSink *sk_sink_open(SkSinkPlans *plans, SkMapping *map,
							const SkPipeline *p);
extern bool *sk_sink_wanted(SkSink *sink);
extern void sk_sink_add(SkSink *sink, rd_kafka_message_t *msg,
						Datum *values, bool *nulls);
extern void sk_sink_add_dead(SkSink *sink, rd_kafka_message_t *msg,
							 int sqlstate, const char *message,
							 const char *detail);
extern void sk_sink_write(SkSink *sink);
extern void sk_sink_finish(SkSink *sink, int64 *rows, int64 *dead);
extern void sk_sink_close(SkSink *sink);

/* in pipeline_shmem.c */

/* What a consumer worker is started for, in its bgw_extra */
typedef struct SkWorkerArgs
{
	int32		index;			/* 0 .. parallelism - 1 */
	int32		parallelism;
	int64		pipeline_id;
	Oid			owner;			/* the pipeline's owner */
	bool		owner_exempt;	/* a superuser when the worker was started:
								 * no sales_kafka.max_workers_per_owner */
	char		pipeline[NAMEDATALEN];	/* its name, for messages */
} SkWorkerArgs;

/* Whether a worker got its slot, and why not */
typedef enum SkClaim
{
	SK_CLAIM_OK,
	SK_CLAIM_TWIN,				/* another process is this worker, or its
								 * pipeline's workers are being stopped */
	SK_CLAIM_NO_SLOT,			/* every slot is taken */
	SK_CLAIM_OWNER_LIMIT		/* its owner runs max_workers_per_owner */
} SkClaim;


/* What a pipeline worker is doing, as pipeline_status shows it */
typedef enum SkWorkerState
{
	SK_WORKER_STARTING,
	SK_WORKER_RUNNING,
	SK_WORKER_STOPPING
} SkWorkerState;

typedef struct SkWorkerSlot SkWorkerSlot;

extern void sk_shmem_init(void);
extern bool sk_shmem_ready(void);
extern SkWorkerSlot *sk_slot_claim(Oid dboid, const SkWorkerArgs *args,
								   SkClaim *claim, bool *waiting);
extern char *sk_claim_message(SkClaim claim, const char *pipeline);
extern void sk_slots_room(Oid dboid, int64 pipeline_id, Oid owner,
						  int *free_slots, int *owner_workers);
extern void sk_slot_release(SkWorkerSlot *slot, bool keep_failures);
extern bool sk_slot_stop_requested(SkWorkerSlot *slot);
extern void sk_slot_set_state(SkWorkerSlot *slot, SkWorkerState state);
extern void sk_slot_report_batch(SkWorkerSlot *slot, int64 messages,
								 int64 rows, int64 dead);
extern void sk_slot_report_error(SkWorkerSlot *slot, const char *error);
extern bool sk_pipeline_stop(Oid dboid, int64 pipeline_id, int timeout_ms);
extern void sk_pipeline_forget(Oid dboid, int64 pipeline_id);
extern int	sk_slots_due(SkWorkerArgs *due, Oid *dbs, int max);
extern void sk_slots_forget_database(Oid dboid);

/* in kpi.c */
typedef struct SkModelRelation
{
	const char *name;
	int			lockmode;		/* what refresh_rollups takes; NoLock: none */
	bool		optional;		/* missing from a model of 1.2 */
} SkModelRelation;
extern const SkModelRelation sk_model_relations[];
extern const int sk_model_relation_count;
extern bool sk_model_relations_owned(Oid nsp, Oid owner, int elevel);

/* in rollup_worker.c */
extern void sk_rollup_shmem_init(void);
extern void sk_rollup_want(Oid dboid);
extern void sk_rollup_notify(Oid dboid);
extern int	sk_rollup_due(Oid *dbs, int max, struct Latch *launcher_latch);
extern void sk_rollup_forget_database(Oid dboid);
extern PGDLLEXPORT void sk_rollup_worker_main(Datum arg);

/* in pipeline_launcher.c */
extern void sk_launcher_register(void);
extern bool sk_rollup_start_worker(Oid dboid);
extern bool sk_pipeline_start_worker(Oid dboid, const SkWorkerArgs *args);
extern bool sk_pipeline_start_workers(Oid dboid, int64 pipeline_id,
									  const char *pipeline, int parallelism,
									  Oid owner, bool owner_exempt);

/* in pipeline_worker.c */
extern PGDLLEXPORT void sk_pipeline_worker_main(Datum arg);

#endif							/* SALES_KAFKA_H */
