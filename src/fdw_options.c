/*-------------------------------------------------------------------------
 *
 * fdw_options.c
 *		The validator of the sales_kafka foreign data wrapper: which option
 *		may stand on which catalog object, and what values it takes.
 *
 * Where options may stand:
 *	- SERVER: "brokers", and librdkafka properties (names with a dot),
 *	  checked by librdkafka itself, except the properties sales_kafka
 *	  manages and the secrets;
 *	- USER MAPPING: the secrets only (SASL and TLS credentials);
 *	- FOREIGN TABLE: topic, format and the CSV and error-handling options;
 *	- COLUMN: "kafka" (a metadata column), or "field" / "json_path" (where
 *	  a payload column comes from), "alias" (another name of its field),
 *	  "time_format" / "time_zone" (how a time field is written,
 *	  decode_time.c).
 *
 * The tables of options, librdkafka properties and their rights live in
 * options.c; this file applies them to one catalog object's option list,
 * with the hints a user needs.  A librdkafka property's value is checked by
 * librdkafka itself (kafka_conf.c), on a scratch configuration.
 *
 * The validator checks the whole option list of one object; consistency
 * across objects (column types, CSV options against the format) is checked
 * when the mapping is loaded, in mapping.c.  It never shows a secret's value.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/reloptions.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "sales_kafka.h"

PG_FUNCTION_INFO_V1(sales_kafka_fdw_validator);

/* "a", "b" and "c" */
static char *
quoted_list(const char *const *names)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; names[i] != NULL; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, names[i + 1] ? ", " : " and ");
		appendStringInfo(&buf, "\"%s\"", names[i]);
	}
	return buf.data;
}

/*
 * Raise the error for an option value outside a fixed list of names.
 */
static void
reject_enum(DefElem *def, const char *const *names)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
			 errmsg("invalid value for option \"%s\": \"%s\"",
					def->defname, defGetString(def)),
			 errdetail("Valid values are %s.", quoted_list(names))));
}

/*
 * Reject an option that is not valid on this catalog object, with a hint
 * naming the intended option or where the option belongs.
 */
static void
reject_option(const char *name, Oid catalog)
{
	const char **names;
	int			n = 0;
	int			i;
	const char *best;
	StringInfoData valid;

	for (i = 0; sk_options[i].name != NULL; i++)
		;
	names = palloc(sizeof(char *) * i);
	for (i = 0; sk_options[i].name != NULL; i++)
	{
		if (strcmp(sk_options[i].name, name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\"", name),
					 errhint("Option \"%s\" belongs on a %s.", name,
							 sk_options[i].context == ForeignServerRelationId ? "server" :
							 sk_options[i].context == ForeignTableRelationId ? "foreign table" :
							 "foreign table column")));
		if (sk_options[i].context == catalog)
			names[n++] = sk_options[i].name;
	}

	best = sk_options_closest_match(name, names, n);
	if (best != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\"", name),
				 errhint("Perhaps you meant the option \"%s\".", best)));

	initStringInfo(&valid);
	for (i = 0; i < n; i++)
		appendStringInfo(&valid, "%s%s", i > 0 ? ", " : "", names[i]);
	if (catalog == ForeignServerRelationId)
		appendStringInfoString(&valid, ", and librdkafka properties");
	else if (catalog == UserMappingRelationId)
		appendStringInfoString(&valid, quoted_list(sk_secret_properties));

	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("invalid option \"%s\"", name),
			 valid.len > 0 ?
			 errhint("Valid options in this context are: %s.", valid.data) :
			 errhint("There are no valid options in this context.")));
}

/*
 * Check a librdkafka property by setting it on a scratch configuration.
 */
static void
check_kafka_property(DefElem *def)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	sk_kafka_conf_set(conf, def->defname, defGetString(def));
	rd_kafka_conf_destroy(conf);
}

/*
 * Refuse a secret or a managed property on a server.  Done for the whole
 * list before anything else, so that neither meets a rights check first.
 */
static void
check_server_property(DefElem *def)
{
	const char *managed_hint = sk_options_managed_hint(def->defname);

	if (sk_options_is_secret(def->defname))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("option \"%s\" can only be set on a user mapping",
						def->defname),
				 errdetail("If log_min_error_statement or log_statement wrote this statement to the server log, the value is there too: change it."),
				 errhint("Credentials are kept in user mappings: CREATE USER MAPPING FOR ... SERVER ... OPTIONS (\"%s\" '...').",
						 def->defname)));
	if (managed_hint != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("option \"%s\" cannot be set", def->defname),
				 errhint("%s", managed_hint)));
}

static bool
check_bool(DefElem *def)
{
	bool		result;

	if (!parse_bool(defGetString(def), &result))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"",
						def->defname, defGetString(def)),
				 errdetail("Valid values are Boolean values such as \"true\" and \"false\".")));
	return result;
}

/* CSV delimiter and quote: one single-byte character, not a line break */
static void
check_csv_char(DefElem *def)
{
	const char *value = defGetString(def);

	if (strlen(value) != 1 || value[0] == '\n' || value[0] == '\r')
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"",
						def->defname, value),
				 errdetail("The value must be a single one-byte character other than a line break.")));
}

/*
 * Kafka topic names: 1 to 249 characters from [a-zA-Z0-9._-], not "." or
 * "..".
 */
static void
check_topic(DefElem *def)
{
	const char *topic = defGetString(def);
	size_t		len = strlen(topic);
	size_t		i;
	bool		ok = len > 0 && len <= SK_TOPIC_MAX_LEN &&
		strcmp(topic, ".") != 0 && strcmp(topic, "..") != 0;

	for (i = 0; ok && i < len; i++)
		ok = (topic[i] >= 'a' && topic[i] <= 'z') ||
			(topic[i] >= 'A' && topic[i] <= 'Z') ||
			(topic[i] >= '0' && topic[i] <= '9') ||
			topic[i] == '.' || topic[i] == '_' || topic[i] == '-';
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"topic\": \"%s\"", topic),
				 errdetail("Kafka topic names have 1 to 249 characters among letters, digits, \".\", \"_\" and \"-\".")));
}

static void
check_table_options(List *options)
{
	ListCell   *lc;
	DefElem    *format = NULL;
	DefElem    *delimiter = NULL;
	DefElem    *quote = NULL;
	bool		has_topic = false;

	foreach(lc, options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (strcmp(def->defname, "topic") == 0)
		{
			check_topic(def);
			has_topic = true;
		}
		else if (strcmp(def->defname, "format") == 0)
		{
			if (sk_options_lookup(sk_format_names, defGetString(def)) < 0)
				reject_enum(def, sk_format_names);
			format = def;
		}
		else if (strcmp(def->defname, "delimiter") == 0)
		{
			check_csv_char(def);
			delimiter = def;
		}
		else if (strcmp(def->defname, "quote") == 0)
		{
			check_csv_char(def);
			quote = def;
		}
		else if (strcmp(def->defname, "header") == 0)
		{
			if (pg_strcasecmp(defGetString(def), "match") != 0)
				check_bool(def);
		}
		else if (strcmp(def->defname, "strict") == 0)
			check_bool(def);
	}

	if (!has_topic)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("option \"topic\" is required for a sales_kafka foreign table")));

	foreach(lc, options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if ((strcmp(def->defname, "delimiter") == 0 ||
			 strcmp(def->defname, "quote") == 0 ||
			 strcmp(def->defname, "null") == 0 ||
			 strcmp(def->defname, "header") == 0) &&
			(format == NULL || strcmp(defGetString(format), "csv") != 0))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("option \"%s\" requires format \"csv\"",
							def->defname)));
	}
	if (strcmp(delimiter ? defGetString(delimiter) : ",",
			   quote ? defGetString(quote) : "\"") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("CSV delimiter and quote must be different"),
				 errdetail("Unless set, the delimiter is a comma and the quote a double quote.")));
}

static void
check_column_options(List *options)
{
	ListCell   *lc;
	DefElem    *kafka = NULL;
	DefElem    *field = NULL;
	DefElem    *json_path = NULL;
	DefElem    *alias = NULL;
	DefElem    *time = NULL;

	foreach(lc, options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (strcmp(def->defname, "kafka") == 0)
		{
			if (sk_options_lookup(sk_kafka_column_names, defGetString(def)) < 0)
				reject_enum(def, sk_kafka_column_names);
			kafka = def;
		}
		else if (strcmp(def->defname, "field") == 0)
		{
			if (defGetString(def)[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"field\": \"\""),
						 errdetail("A field name cannot be empty.")));
			field = def;
		}
		else if (strcmp(def->defname, "json_path") == 0)
		{
			(void) sk_json_path_check(defGetString(def));
			json_path = def;
		}
		else if (strcmp(def->defname, "alias") == 0)
		{
			if (defGetString(def)[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"alias\": \"\""),
						 errdetail("A field name cannot be empty.")));
			alias = def;
		}
		else if (strcmp(def->defname, "time_format") == 0)
		{
			(void) sk_time_check_format(defGetString(def));
			time = def;
		}
		else if (strcmp(def->defname, "time_zone") == 0)
		{
			(void) sk_time_check_zone(defGetString(def));
			time = def;
		}
	}

	if (kafka != NULL && (field != NULL || json_path != NULL || alias != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INCONSISTENT_DESCRIPTOR_INFORMATION),
				 errmsg("option \"kafka\" cannot be combined with option \"%s\"",
						field ? "field" : json_path ? "json_path" : "alias"),
				 errdetail("A column holds either Kafka metadata or a payload field.")));
	if (kafka != NULL && time != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INCONSISTENT_DESCRIPTOR_INFORMATION),
				 errmsg("option \"kafka\" cannot be combined with option \"%s\"",
						time->defname),
				 errdetail("Kafka gives its metadata in its own form; \"%s\" says how to read a payload field.",
						   time->defname)));
	if (json_path != NULL && alias != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INCONSISTENT_DESCRIPTOR_INFORMATION),
				 errmsg("option \"alias\" cannot be combined with option \"json_path\""),
				 errdetail("An alias is another name of a top-level field.")));
	if (field != NULL && json_path != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INCONSISTENT_DESCRIPTOR_INFORMATION),
				 errmsg("option \"field\" cannot be combined with option \"json_path\"")));
}

/* Errors about a user mapping that holds credentials say where else they are */
static void
credentials_context(void *arg)
{
	errcontext("user mapping options; if this statement was logged (log_statement, log_min_error_statement), so were its credentials");
}

/*
 * Validate the options of a sales_kafka FDW, server, user mapping, foreign
 * table or column.  Called by CREATE and ALTER with the complete list.
 */
Datum
sales_kafka_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *lc;
	ErrorContextCallback errcallback;

	errcallback.callback = credentials_context;
	errcallback.arg = NULL;
	errcallback.previous = error_context_stack;
	if (catalog == UserMappingRelationId)
		foreach(lc, options)
			if (sk_options_is_secret(lfirst_node(DefElem, lc)->defname))
				error_context_stack = &errcallback;

	/* a server's librdkafka properties: no secret, nothing managed, rights */
	if (catalog == ForeignServerRelationId)
	{
		foreach(lc, options)
			if (sk_options_is_kafka_property(lfirst_node(DefElem, lc)->defname))
				check_server_property(lfirst_node(DefElem, lc));
		sk_options_check_rights(options, GetUserId(), NULL);
	}

	foreach(lc, options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);
		ListCell   *lc2;
		bool		known = false;
		int			i;

		for_each_cell(lc2, options, lnext(options, lc))
			if (strcmp(lfirst_node(DefElem, lc2)->defname, def->defname) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_OBJECT),
						 errmsg("option \"%s\" provided more than once",
								def->defname)));

		if (catalog == UserMappingRelationId)
		{
			if (!sk_options_is_secret(def->defname))
			{
				if (sk_options_is_kafka_property(def->defname))
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
							 errmsg("option \"%s\" cannot be set on a user mapping",
									def->defname),
							 errhint("User mappings carry only credentials: %s. Set other librdkafka properties on the server.",
									 quoted_list(sk_secret_properties))));
				reject_option(def->defname, catalog);
			}
			check_kafka_property(def);
			continue;
		}

		if (catalog == ForeignServerRelationId &&
			sk_options_is_kafka_property(def->defname))
		{
			check_kafka_property(def);
			continue;
		}

		for (i = 0; sk_options[i].name != NULL; i++)
			if (sk_options[i].context == catalog &&
				strcmp(sk_options[i].name, def->defname) == 0)
				known = true;
		if (!known)
			reject_option(def->defname, catalog);

		if (strcmp(def->defname, "brokers") == 0)
		{
			const char *why = sk_options_check_brokers(defGetString(def));

			if (why != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"brokers\": \"%s\"",
								defGetString(def)),
						 errdetail("%s", why)));
		}
	}

	if (catalog == ForeignTableRelationId)
		check_table_options(options);
	else if (catalog == AttributeRelationId)
		check_column_options(options);

	error_context_stack = errcallback.previous;
	PG_RETURN_VOID();
}
