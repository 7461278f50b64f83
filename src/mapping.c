/*-------------------------------------------------------------------------
 *
 * mapping.c
 *		A sales_kafka foreign table's definition as a mapping: the topic,
 *		the payload format and its options, and where each column's value
 *		comes from.
 *
 * The validator (fdw_options.c) checks each catalog object's options on
 * their own; loading a mapping checks what it cannot see: column types
 * against what Kafka gives them and against the options "time_format" and
 * "time_zone" (decode_time.c), per-format rules (each format's file maps
 * its payload columns: sk_json_map_path(), sk_json_map_field(),
 * sk_csv_map_field(); an "alias" needs JSON, or CSV with header 'match'),
 * and options that no longer parse (a definition made by an earlier
 * version, or with the validator off).  decode.c turns
 * messages into rows through the result; encode.c rows into messages.
 *
 * Loading reads the catalogs and never contacts Kafka.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "sales_kafka.h"

static void
mapping_error(SkMapping *map, SkColumn *col, const char *need)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
			 errmsg("column \"%s\" of foreign table \"%s\" has type %s, but %s",
					col->name, map->relname,
					format_type_with_typemod(col->typid, col->typmod), need)));
}

/*
 * The type of a Kafka metadata column must hold every value Kafka can give
 * it: the decoder fills these columns also for a message whose payload
 * failed (a dead letter, or a row with an "error" column), where nothing
 * may fail any more.  A smallint partition column is accepted; a partition
 * beyond its range is a data error of the message (see decode_all()).
 */
static void
check_column_type(SkMapping *map, SkColumn *col)
{
	switch (col->kind)
	{
		case SK_COL_PARTITION:
			if (col->typid != INT2OID && col->typid != INT4OID &&
				col->typid != INT8OID)
				mapping_error(map, col, "a Kafka partition needs type smallint, integer or bigint");
			break;
		case SK_COL_OFFSET:
			if (col->typid != INT8OID)
				mapping_error(map, col, "a Kafka offset needs type bigint");
			break;
		case SK_COL_TIMESTAMP:
			if (col->typid != TIMESTAMPTZOID && col->typid != TIMESTAMPOID)
				mapping_error(map, col, "a Kafka timestamp needs type timestamp with time zone or timestamp");
			break;
		case SK_COL_HEADERS:
			if (col->typid != JSONBOID && col->typid != JSONOID)
				mapping_error(map, col, "Kafka headers need type jsonb or json");
			break;
		case SK_COL_TOPIC:
			if (col->typid != TEXTOID &&
				(col->typid != VARCHAROID ||
				 (col->typmod >= 0 && col->typmod - VARHDRSZ < SK_TOPIC_MAX_LEN)))
				mapping_error(map, col, "a Kafka topic needs type text, or varchar without a length or of at least 249 characters");
			break;
		case SK_COL_ERROR:
			if (col->typid != TEXTOID &&
				(col->typid != VARCHAROID || col->typmod >= 0))
				mapping_error(map, col, "a decoding error needs type text, or varchar without a length");
			break;
		default:
			break;
	}
}

/*
 * Options "time_format" and "time_zone" need a payload column of a time
 * type ("time_zone": with a time zone); option names the one to blame.
 */
static void
check_time_options(SkMapping *map, SkColumn *col, const char *option)
{
	if (col->kind != SK_COL_FIELD)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INCONSISTENT_DESCRIPTOR_INFORMATION),
				 errmsg("option \"%s\" of column \"%s\" requires a payload field",
						option, col->name)));
	if (col->time_zone != NULL && col->basetypid != TIMESTAMPTZOID)
		mapping_error(map, col, "option \"time_zone\" needs type timestamp with time zone");
	if (col->basetypid != TIMESTAMPTZOID && col->basetypid != TIMESTAMPOID &&
		col->basetypid != DATEOID)
		mapping_error(map, col,
					  psprintf("option \"%s\" needs type timestamp with time zone, timestamp or date",
							   option));
}

static bool
parse_bool_option(DefElem *def)
{
	bool		result = false;

	(void) parse_bool(defGetString(def), &result);
	return result;
}

/*
 * Load the mapping of a sales_kafka foreign table, checking what the
 * validator cannot see on its own (column types, per-format rules).  The
 * result lives in CurrentMemoryContext; throws on an inconsistent
 * definition.  Needs a transaction (catalog access).
 */
SkMapping *
sk_mapping_load(Oid relid)
{
	ForeignTable *ft = GetForeignTable(relid);
	SkMapping  *map = palloc0(sizeof(SkMapping));
	Relation	rel;
	TupleDesc	tupdesc;
	ListCell   *lc;
	int			npayload = 0;
	int			i;

	map->relid = relid;
	map->serverid = ft->serverid;
	map->format = SK_FORMAT_JSON;
	map->strict = true;
	map->csv_delimiter = ',';
	map->csv_quote = '"';
	map->csv_null = "";
	map->csv_header = SK_HEADER_NONE;

	foreach(lc, ft->options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);
		const char *value = defGetString(def);

		if (strcmp(def->defname, "topic") == 0)
			map->topic = pstrdup(value);
		else if (strcmp(def->defname, "format") == 0)
			map->format = (SkFormat) sk_options_lookup(sk_format_names, value);
		else if (strcmp(def->defname, "strict") == 0)
			map->strict = parse_bool_option(def);
		else if (strcmp(def->defname, "delimiter") == 0)
			map->csv_delimiter = value[0];
		else if (strcmp(def->defname, "quote") == 0)
			map->csv_quote = value[0];
		else if (strcmp(def->defname, "null") == 0)
			map->csv_null = pstrdup(value);
		else if (strcmp(def->defname, "header") == 0)
			map->csv_header = pg_strcasecmp(value, "match") == 0 ?
				SK_HEADER_MATCH :
				parse_bool_option(def) ? SK_HEADER_SKIP : SK_HEADER_NONE;
	}

	rel = table_open(relid, AccessShareLock);
	map->relname = pstrdup(RelationGetRelationName(rel));
	tupdesc = RelationGetDescr(rel);
	map->natts = tupdesc->natts;
	map->columns = palloc0(sizeof(SkColumn) * Max(tupdesc->natts, 1));

	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);
		SkColumn   *col = &map->columns[i];
		Oid			infunc;
		Oid			outfunc;
		bool		isvarlena;
		const char *time_option = NULL;

		if (attr->attisdropped)
		{
			col->kind = SK_COL_DROPPED;
			continue;
		}
		col->name = pstrdup(NameStr(attr->attname));
		col->typid = attr->atttypid;
		col->typmod = attr->atttypmod;
		col->basetypmod = attr->atttypmod;
		col->basetypid = getBaseTypeAndTypmod(col->typid, &col->basetypmod);
		col->kind = SK_COL_FIELD;
		col->field = col->name;
		col->csv_field = npayload;
		getTypeInputInfo(col->typid, &infunc, &col->typioparam);
		fmgr_info(infunc, &col->infunc);
		getTypeOutputInfo(col->typid, &outfunc, &isvarlena);
		fmgr_info(outfunc, &col->outfunc);

		foreach(lc, GetForeignColumnOptions(relid, attr->attnum))
		{
			DefElem    *def = lfirst_node(DefElem, lc);
			const char *value = defGetString(def);

			if (strcmp(def->defname, "kafka") == 0)
				col->kind = (SkColumnKind) sk_options_lookup(sk_kafka_column_names,
															value);
			else if (strcmp(def->defname, "field") == 0)
				col->field = pstrdup(value);
			else if (strcmp(def->defname, "json_path") == 0)
			{
				if (map->format != SK_FORMAT_JSON)
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
							 errmsg("option \"json_path\" of column \"%s\" requires format \"json\"",
									col->name)));
				sk_json_map_path(map, col, value);
			}
			else if (strcmp(def->defname, "alias") == 0)
				col->alias = pstrdup(value);
			else if (strcmp(def->defname, "time_format") == 0)
			{
				time_option = def->defname;
				sk_time_map_format(col, value);
			}
			else if (strcmp(def->defname, "time_zone") == 0)
			{
				time_option = def->defname;
				col->time_zone = sk_time_check_zone(value);
			}
		}
		if (time_option != NULL)
			check_time_options(map, col, time_option);
		if (col->alias != NULL && col->kind == SK_COL_FIELD &&
			!(map->format == SK_FORMAT_JSON ||
			  (map->format == SK_FORMAT_CSV && map->csv_header == SK_HEADER_MATCH)))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("option \"alias\" of column \"%s\" requires format \"json\", or format \"csv\" with header 'match'",
							col->name)));

		check_column_type(map, col);
		switch (col->kind)
		{
			case SK_COL_PARTITION:
				map->partition_attno = attr->attnum;
				break;
			case SK_COL_OFFSET:
				map->offset_attno = attr->attnum;
				break;
			case SK_COL_TIMESTAMP:
				map->timestamp_attno = attr->attnum;
				break;
			case SK_COL_KEY:
				map->key_attno = attr->attnum;
				break;
			case SK_COL_HEADERS:
				map->headers_attno = attr->attnum;
				break;
			case SK_COL_ERROR:
				map->error_attno = attr->attnum;
				break;
			case SK_COL_FIELD:
				npayload++;
				if (map->format == SK_FORMAT_JSON)
					sk_json_map_field(map, col);
				else if (map->format == SK_FORMAT_CSV)
					sk_csv_map_field(map, col);
				break;
			default:
				break;
		}
	}
	table_close(rel, AccessShareLock);

	if ((map->format == SK_FORMAT_TEXT || map->format == SK_FORMAT_BYTEA) &&
		npayload > 1)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INCONSISTENT_DESCRIPTOR_INFORMATION),
				 errmsg("foreign table \"%s\" with format \"%s\" can have only one payload column",
						map->relname, sk_format_names[map->format]),
				 errhint("Mark the other columns with the option \"kafka\".")));
	for (i = 0; i < map->natts && map->format == SK_FORMAT_BYTEA; i++)
		if (map->columns[i].kind == SK_COL_FIELD &&
			map->columns[i].typid != BYTEAOID)
			mapping_error(map, &map->columns[i],
						  "format \"bytea\" needs a payload column of type bytea");
	return map;
}
