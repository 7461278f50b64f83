/*-------------------------------------------------------------------------
 *
 * kafka_conf.c
 *		The librdkafka configuration of a sales_kafka server for a user:
 *		the server's properties, the user mapping's secrets, the rights of
 *		the server's owner, and the redaction of those secrets from
 *		librdkafka's texts.
 *
 * Secrets (options that only a user mapping may carry) never reach a
 * message, a log line or a view: configuration errors about them name the
 * option, not the value, and every text of librdkafka's that we show goes
 * through sk_kafka_conf_redact() first, which hides any piece of a secret
 * that librdkafka quotes (an OAUTHBEARER error quotes the configuration).
 *
 * This file builds configurations only: it never creates a handle
 * (kafka_conn.c does) and never contacts Kafka.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>

#include "access/reloptions.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "utils/syscache.h"

#include "sales_kafka.h"

/*
 * text as it may be shown: any run of it that is also part of one of
 * secrets, at least six characters long (or all of a shorter secret), is
 * replaced by "***".  librdkafka quotes configuration values in some of its
 * errors, from any position.  Returns text itself if nothing is hidden,
 * else a palloc'd copy; never throws but for lack of memory.
 */
const char *
sk_kafka_conf_redact(List *secrets, const char *text)
{
	int			n = strlen(text);
	bool	   *hide = NULL;
	StringInfoData buf;
	ListCell   *lc;
	int			i;

	foreach(lc, secrets)
	{
		const char *secret = (const char *) lfirst(lc);
		int			m = strlen(secret);
		int			min_run = Min(m, 6);

		for (i = 0; m > 0 && i < n; i++)
		{
			int			j;

			for (j = 0; j < m; j++)
			{
				int			k = 0;

				while (i + k < n && j + k < m && text[i + k] == secret[j + k])
					k++;
				if (k >= min_run)
				{
					if (hide == NULL)
						hide = palloc0(sizeof(bool) * n);
					memset(hide + i, true, k);
				}
			}
		}
	}
	if (hide == NULL)
		return text;

	initStringInfo(&buf);
	for (i = 0; i < n; i++)
	{
		if (!hide[i])
			appendStringInfoChar(&buf, text[i]);
		else if (i == 0 || !hide[i - 1])
			appendStringInfoString(&buf, "***");
	}
	pfree(hide);
	return buf.data;
}

/*
 * Did librdkafka take an integer that does not fit its 32-bit properties?
 * It parses with strtol() into an int and checks the range of what is
 * left, so 99999999999999 can pass as 276447231, or fail naming that
 * number.  A value that was taken (stored) wrapped if librdkafka now
 * reports another number; one that was refused, if it is out of range.
 */
static bool
int_wrapped(rd_kafka_conf_t *conf, const char *name, const char *value,
			bool stored)
{
	char	   *end;
	long long	given;
	char		now[64];
	size_t		size = sizeof(now);

	errno = 0;
	given = strtoll(value, &end, 0);
	if (end == value || *end != '\0')
		return false;
	if (errno == ERANGE || given < INT_MIN || given > INT_MAX)
	{
		if (!stored)
			return true;
		if (rd_kafka_conf_get(conf, name, now, &size) != RD_KAFKA_CONF_OK)
			return false;
		errno = 0;
		return strtoll(now, &end, 0) != given || errno == ERANGE;
	}
	return false;
}

/*
 * Set one librdkafka property, or raise the configuration error: unknown
 * names get a closest-match hint, and librdkafka's explanation appears only
 * when it cannot contain a secret's value.  On error the conf is destroyed
 * first.  Also the validator's check of every librdkafka property.
 */
void
sk_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char		errstr[512] = "";
	rd_kafka_conf_res_t res;
	bool		wrapped = false;

	res = rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr));
	/* some of librdkafka's explanations end in a line break */
	while (strlen(errstr) > 0 && isspace((unsigned char) errstr[strlen(errstr) - 1]))
		errstr[strlen(errstr) - 1] = '\0';
	if (res != RD_KAFKA_CONF_UNKNOWN)
		wrapped = int_wrapped(conf, name, value, res == RD_KAFKA_CONF_OK);
	if (res == RD_KAFKA_CONF_OK && !wrapped)
		return;

	if (res == RD_KAFKA_CONF_UNKNOWN)
	{
		rd_kafka_conf_t *defaults = rd_kafka_conf_new();
		size_t		cnt;
		const char **dump = rd_kafka_conf_dump(defaults, &cnt);
		const char **names = palloc(sizeof(char *) * (cnt / 2 + 1));
		const char *best;
		size_t		i;

		for (i = 0; i < cnt / 2; i++)
			names[i] = dump[2 * i];
		best = sk_options_closest_match(name, names, cnt / 2);
		best = best ? pstrdup(best) : NULL;
		rd_kafka_conf_dump_free(dump, cnt);
		rd_kafka_conf_destroy(defaults);
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\"", name),
				 errdetail("Options with a dot in their name are librdkafka properties, and librdkafka has no property of that name."),
				 best ? errhint("Perhaps you meant the option \"%s\".", best) : 0));
	}

	rd_kafka_conf_destroy(conf);
	if (wrapped && !sk_options_is_secret(name))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", name, value),
				 errdetail("The value is out of range: librdkafka's numeric properties are 32-bit integers.")));
	if (sk_options_is_secret(name))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\"", name),
				 errdetail_internal("%s", sk_kafka_conf_redact(list_make1((char *) value),
													  errstr))));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
			 errmsg("invalid value for option \"%s\": \"%s\"", name, value),
			 errdetail_internal("%s", errstr)));
}

/*
 * Options of the user mapping for (userid, serverid), falling back to the
 * PUBLIC mapping; NIL when there is none, since Kafka needs no login unless
 * the cluster says so.
 */
static List *
user_mapping_options(Oid userid, Oid serverid)
{
	HeapTuple	tp;
	Datum		datum;
	bool		isnull;
	List	   *options = NIL;

	tp = SearchSysCache2(USERMAPPINGUSERSERVER,
						 ObjectIdGetDatum(userid), ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		tp = SearchSysCache2(USERMAPPINGUSERSERVER,
							 ObjectIdGetDatum(InvalidOid),
							 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		return NIL;

	datum = SysCacheGetAttr(USERMAPPINGUSERSERVER, tp,
							Anum_pg_user_mapping_umoptions, &isnull);
	if (!isnull)
		options = untransformRelOptions(datum);
	ReleaseSysCache(tp);
	return options;
}

/*
 * The configuration of a handle of the given type on a server, for userid:
 * the caller's defaults, then the server's librdkafka properties, then the
 * user mapping's secrets, then the caller's overrides (which win).
 * Properties are DefElems.  *secrets gets the user mapping's values (char
 * *), palloc'd like the list, in CurrentMemoryContext, for
 * sk_kafka_conf_redact().
 *
 * Checks first that the server's owner may set every property of the
 * server (they may have lost a right since, or the server may have changed
 * hands).  Throws on any configuration error, leaking nothing; the caller
 * owns the result, which is librdkafka's (malloc'd).
 */
rd_kafka_conf_t *
sk_kafka_conf_build(ForeignServer *server, Oid userid, rd_kafka_type_t type,
					List *defaults, List *overrides, List **secrets)
{
	rd_kafka_conf_t *conf;
	const char *brokers = sk_brokers;
	ListCell   *lc;

	*secrets = NIL;

	/* a server keeps only what its owner may set (before librdkafka sees it) */
	sk_options_check_rights(server->options, server->owner,
							server->servername);
	conf = rd_kafka_conf_new();
	foreach(lc, server->options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (strcmp(def->defname, "brokers") == 0)
			brokers = defGetString(def);
	}
	if (brokers == NULL || brokers[0] == '\0')
	{
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("server \"%s\" has no Kafka brokers", server->servername),
				 errhint("Set the \"brokers\" option of the server or the setting \"sales_kafka.brokers\".")));
	}

	sk_kafka_conf_set(conf, "bootstrap.servers", brokers);
	sk_kafka_conf_set(conf, "client.id", "sales_kafka");
	sk_kafka_conf_set(conf, "log.queue", "true");
	if (type == RD_KAFKA_CONSUMER)
	{
		/* offsets live in PostgreSQL, never in the consumer group */
		sk_kafka_conf_set(conf, "enable.auto.commit", "false");
		sk_kafka_conf_set(conf, "enable.auto.offset.store", "false");
	}

	foreach(lc, defaults)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		sk_kafka_conf_set(conf, def->defname, defGetString(def));
	}
	foreach(lc, server->options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (sk_options_is_kafka_property(def->defname))
			sk_kafka_conf_set(conf, def->defname, defGetString(def));
	}
	foreach(lc, user_mapping_options(userid, server->serverid))
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		*secrets = lappend(*secrets, pstrdup(defGetString(def)));
		sk_kafka_conf_set(conf, def->defname, defGetString(def));
	}
	foreach(lc, overrides)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		sk_kafka_conf_set(conf, def->defname, defGetString(def));
	}
	return conf;
}
