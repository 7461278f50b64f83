/*-------------------------------------------------------------------------
 *
 * export.c
 *		The daily export of a sales model: one day's star schema as CSV
 *		files in a directory of the database server, written with COPY TO,
 *		atomically, with a manifest.
 *
 * sales_kafka.export_day(model, day, directory) writes, for the day as the
 * model's time zone cuts it ([day 00:00, day + 1 00:00) there):
 *	sales_facts_<day>.csv	the day's order lines (the view sales_facts)
 *	customers_dim_<day>.csv the customers of those lines
 *	products_dim_<day>.csv	their products (without attributes when the
 *							product is not known yet, as products_dim)
 *	time_dim_<day>.csv		the day's row of time_dim
 *	manifest_<day>.json		rows, bytes and SHA-256 of each file, and the
 *							Kafka offsets of the model's pipelines that the
 *							files cover; written last
 * The star schema rather than the normalised tables: it is the shape a
 * warehouse loads (facts and conformed dimensions), the lines carry their
 * order's customer and shipping, and a day's files are self-contained.
 *
 * How:
 *	- the caller must have the privileges of pg_write_server_files, as for
 *	  COPY TO a file; checked before anything else is looked at; and SELECT
 *	  on what it reads; then every query runs as the model schema's owner,
 *	  security-restricted (as the KPI functions run, src/kpi.c): the
 *	  owner's views may call the owner's functions, which must never run
 *	  with the rights of the role that exports (a superuser, or its pg_cron
 *	  job);
 *	- one export of a model's day at a time (a transaction-level advisory
 *	  lock), then one snapshot for every file and the offsets: the files
 *	  and the manifest describe the same committed state (the pipelines
 *	  commit their offsets with their rows);
 *	- each file is written by COPY TO (BeginCopyTo(), as COPY runs it, with
 *	  the owner's rights on the model's views) under a temporary name in
 *	  the same directory, then renamed with durable_rename() (fsync of the
 *	  file, rename, fsync of the directory): a reader sees the old file or
 *	  the new one, never a part;
 *	- every query has a total ORDER BY in the "C" collation, and the SQL
 *	  declaration fixes the settings that shape the text (TimeZone UTC,
 *	  DateStyle ISO, extra_float_digits): the same rows give the same bytes,
 *	  so exporting a day twice gives identical files.
 * Nothing here catches errors: a failed export leaves the files of the
 * previous one, and at worst temporary files named *.<pid>.tmp.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "commands/copy.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parser.h"
#include "parser/parse_node.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "sales_kafka.h"

PG_FUNCTION_INFO_V1(sales_kafka_export_day);

/* One file of the export */
typedef struct ExportFile
{
	const char *table;			/* the view it comes from */
	char	   *query;
	char	   *name;			/* file name in the directory */
	uint64		rows;
	int64		bytes;
	char		sha256[PG_SHA256_DIGEST_STRING_LENGTH];
} ExportFile;

/* The one value a query of ours returns, as text; NULL for a NULL */
static char *
query_value(const char *sql)
{
	int			rc = SPI_execute(sql, true, 1);

	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "unexpected result of export query: %s", sql);
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/*
 * SHA-256 and size of a file, as lower-case hex into hex
 * (PG_SHA256_DIGEST_STRING_LENGTH bytes); throws on a read error.
 */
static int64
file_sha256(const char *path, char *hex)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char		buf[65536];
	int64		total = 0;
	size_t		n;
	FILE	   *f;
	int			i;

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not initialize a SHA-256 context: %s",
			 pg_cryptohash_error(ctx));
	f = AllocateFile(path, PG_BINARY_R);
	if (f == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for reading: %m", path)));
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
	{
		if (pg_cryptohash_update(ctx, (uint8 *) buf, n) < 0)
			elog(ERROR, "could not compute a SHA-256 digest: %s",
				 pg_cryptohash_error(ctx));
		total += n;
		CHECK_FOR_INTERRUPTS();
	}
	if (ferror(f))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": %m", path)));
	FreeFile(f);
	if (pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not compute a SHA-256 digest: %s",
			 pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	for (i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		sprintf(hex + 2 * i, "%02x", digest[i]);
	return total;
}

/*
 * Write the rows of a query to path as CSV with a header line, in UTF8,
 * with COPY TO as COPY runs it (the caller's rights), in the active
 * snapshot.  Returns the number of rows.
 */
static uint64
copy_to_file(const char *query, const char *path)
{
	ParseState *pstate = make_parsestate(NULL);
	List	   *options;
	CopyToState cstate;
	RawStmt    *raw;
	uint64		rows;

	pstate->p_sourcetext = query;
	raw = linitial_node(RawStmt, raw_parser(query, RAW_PARSE_DEFAULT));
	options = list_make3(makeDefElem("format", (Node *) makeString("csv"), -1),
						 makeDefElem("header", (Node *) makeString("true"), -1),
						 makeDefElem("encoding", (Node *) makeString("UTF8"), -1));
	cstate = BeginCopyTo(pstate, NULL, raw, InvalidOid, path, false, NIL,
						 options);
	rows = DoCopyTo(cstate);
	EndCopyTo(cstate);
	free_parsestate(pstate);
	return rows;
}

/*
 * Write text to path (a new file), with the permissions COPY TO gives its
 * files; throws on failure.
 */
static void
write_text_file(const char *path, const char *text)
{
	FILE	   *volatile f = NULL;
	size_t		len = strlen(text);
	mode_t		oumask = umask(S_IWGRP | S_IWOTH);

	PG_TRY();
	{
		f = AllocateFile(path, PG_BINARY_W);
	}
	PG_FINALLY();
	{
		umask(oumask);
	}
	PG_END_TRY();

	if (f == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for writing: %m", path)));
	if (fwrite(text, 1, len, f) != len || FreeFile(f) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", path)));
}

/* A key and a JSON string value, after a comma unless first */
static void
json_string_member(StringInfo buf, const char *key, const char *value,
				   bool first)
{
	appendStringInfoString(buf, first ? "\n  " : ",\n  ");
	escape_json(buf, key);
	appendStringInfoString(buf, ": ");
	escape_json(buf, value);
}

/*
 * sales_kafka.export_day(model_schema name, day date, directory text)
 * returns jsonb: the manifest.  See the file's banner.  Runs in the
 * caller's transaction, with the caller's rights; the SQL declaration sets
 * search_path, TimeZone, DateStyle and extra_float_digits for its
 * duration.
 */
Datum
sales_kafka_export_day(PG_FUNCTION_ARGS)
{
	/* what the export reads: the caller must be allowed to read it */
	static const char *const exported_relations[] =
	{
		"sales_facts", "customers_dim", "products_dim", "time_dim", "products",
	};

	char	   *model = NameStr(*PG_GETARG_NAME(0));
	DateADT		day = PG_GETARG_DATEADT(1);
	char	   *directory = text_to_cstring(PG_GETARG_TEXT_PP(2));
	const char *s = quote_identifier(model);
	char	   *day_text;
	char	   *zone;
	char	   *from;
	char	   *to;
	char	   *range;
	char	   *offsets;
	ExportFile	files[4];
	StringInfoData manifest;
	StringInfoData sql;
	Snapshot	snapshot;
	struct stat st;
	char	   *path;
	char	   *tmp;
	char	   *result;
	int			i;
	Oid			nsp;
	Oid			owner;
	Oid			save_user;
	int			save_context;

	/* the right to write the server's files, before anything else */
	if (!has_privs_of_role(GetUserId(), ROLE_PG_WRITE_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to export sales model \"%s\"", model),
				 errdetail("The export writes files on the database server: only superusers and roles with privileges of the \"pg_write_server_files\" role may run it."),
				 errhint("A superuser may GRANT pg_write_server_files to the role that runs the export.")));

	if (!is_absolute_path(directory))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("relative path not allowed for the export directory: \"%s\"",
						directory)));
	if (stat(directory, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not access export directory \"%s\": %m", directory)));
	if (!S_ISDIR(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a directory", directory)));
	canonicalize_path(directory);

	nsp = get_namespace_oid(model, true);
	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("schema \"%s\" has no sales model", model),
				 errhint("Create one with sales_kafka.create_sales_model().")));
	owner = sk_schema_owner(nsp);
	for (i = 0; i < lengthof(exported_relations); i++)
	{
		Oid			relid = get_relname_relid(exported_relations[i], nsp);

		if (OidIsValid(relid) &&
			pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to export sales model \"%s\"", model),
					 errdetail("The export reads %s.%s: the role that exports needs SELECT on it.",
							   model, exported_relations[i])));
	}
	(void) sk_model_relations_owned(nsp, owner, ERROR);
	GetUserIdAndSecContext(&save_user, &save_context);
	SetUserIdAndSecContext(owner, save_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);

	/*
	 * One export of a model's day at a time, so that the files of two never
	 * mix; then one snapshot, taken after the wait, for the files and the
	 * offsets.
	 */
	SPI_connect();
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT pg_advisory_xact_lock(hashtext(%s))",
					 quote_literal_cstr(psprintf("sales_kafka export %s %d",
												 model, (int) day)));
	if (SPI_execute(sql.data, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock the export of sales model \"%s\"", model);
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	PushActiveSnapshot(snapshot);

	resetStringInfo(&sql);
	appendStringInfo(&sql, "SELECT sales_kafka._model_state(%s)",
					 quote_literal_cstr(model));
	(void) query_value(sql.data);
	resetStringInfo(&sql);
	appendStringInfo(&sql, "SELECT time_zone FROM %s.kpi_state", s);
	zone = query_value(sql.data);
	day_text = DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(day)));
	resetStringInfo(&sql);
	appendStringInfo(&sql, "SELECT (%s::date::timestamp AT TIME ZONE %s)::text",
					 quote_literal_cstr(day_text), quote_literal_cstr(zone));
	from = query_value(sql.data);
	resetStringInfo(&sql);
	appendStringInfo(&sql, "SELECT ((%s::date + 1)::timestamp AT TIME ZONE %s)::text",
					 quote_literal_cstr(day_text), quote_literal_cstr(zone));
	to = query_value(sql.data);
	if (from == NULL || to == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("day %s is out of range", day_text)));
	range = psprintf("sold_at >= %s::timestamptz AND sold_at < %s::timestamptz",
					 quote_literal_cstr(from), quote_literal_cstr(to));

	/* the offsets of every pipeline into the model's tables */
	resetStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT coalesce(jsonb_agg(jsonb_build_object('pipeline', o.pipeline, 'target', p.target::text, "
					 "'topic', o.topic, 'partition', o.partition, 'offset', o.committed_offset) "
					 "ORDER BY o.pipeline COLLATE \"C\", o.topic COLLATE \"C\", o.partition), '[]')::text "
					 "FROM sales_kafka.pipeline_status p "
					 "JOIN sales_kafka.pipeline_partitions o ON o.pipeline = p.pipeline AND o.owner = p.owner "
					 "JOIN pg_class c ON c.oid = p.target "
					 "WHERE c.relnamespace = %s::regnamespace",
					 quote_literal_cstr(s));
	offsets = query_value(sql.data);

	files[0].table = "sales_facts";
	files[0].query = psprintf("SELECT * FROM %s.sales_facts WHERE %s "
							  "ORDER BY order_id COLLATE \"C\", line", s, range);
	files[1].table = "customers_dim";
	files[1].query = psprintf("SELECT c.* FROM %1$s.customers_dim c "
							  "WHERE c.customer_id IN (SELECT customer_id FROM %1$s.sales_facts WHERE %2$s) "
							  "ORDER BY c.customer_id COLLATE \"C\"", s, range);
	files[2].table = "products_dim";
	files[2].query = psprintf("SELECT f.product_id, p.product_name, p.category, p.sub_category "
							  "FROM (SELECT DISTINCT product_id FROM %1$s.sales_facts WHERE %2$s) f "
							  "LEFT JOIN %1$s.products p ON p.product_id = f.product_id "
							  "ORDER BY f.product_id COLLATE \"C\"", s, range);
	files[3].table = "time_dim";
	files[3].query = psprintf("SELECT * FROM %s.time_dim WHERE date_key = %s::date",
							  s, quote_literal_cstr(day_text));

	for (i = 0; i < lengthof(files); i++)
	{
		ExportFile *f = &files[i];

		f->name = psprintf("%s_%s.csv", f->table, day_text);
		path = psprintf("%s/%s", directory, f->name);
		tmp = psprintf("%s.%d.tmp", path, MyProcPid);
		f->rows = copy_to_file(f->query, tmp);
		f->bytes = file_sha256(tmp, f->sha256);
		(void) durable_rename(tmp, path, ERROR);
	}

	/* the manifest, last: its presence says the day's files are complete */
	initStringInfo(&manifest);
	appendStringInfoChar(&manifest, '{');
	json_string_member(&manifest, "model", model, true);
	json_string_member(&manifest, "day", day_text, false);
	json_string_member(&manifest, "time_zone", zone, false);
	json_string_member(&manifest, "from", from, false);
	json_string_member(&manifest, "to", to, false);
	json_string_member(&manifest, "format", "csv, header, UTF8", false);
	appendStringInfoString(&manifest, ",\n  \"files\": [");
	for (i = 0; i < lengthof(files); i++)
	{
		appendStringInfoString(&manifest, i > 0 ? ",\n    {" : "\n    {");
		escape_json(&manifest, "file");
		appendStringInfoString(&manifest, ": ");
		escape_json(&manifest, files[i].name);
		appendStringInfoString(&manifest, ", \"table\": ");
		escape_json(&manifest, files[i].table);
		appendStringInfo(&manifest, ", \"rows\": " UINT64_FORMAT ", \"bytes\": " INT64_FORMAT
						 ", \"sha256\": \"%s\"}",
						 files[i].rows, files[i].bytes, files[i].sha256);
	}
	appendStringInfo(&manifest, "\n  ],\n  \"kafka_offsets\": %s\n}\n", offsets);

	path = psprintf("%s/manifest_%s.json", directory, day_text);
	tmp = psprintf("%s.%d.tmp", path, MyProcPid);
	write_text_file(tmp, manifest.data);
	(void) durable_rename(tmp, path, ERROR);

	/* the text outlives SPI's memory */
	result = SPI_palloc(manifest.len + 1);
	memcpy(result, manifest.data, manifest.len + 1);
	SPI_finish();
	PopActiveSnapshot();
	UnregisterSnapshot(snapshot);
	SetUserIdAndSecContext(save_user, save_context);

	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(result)));
}
