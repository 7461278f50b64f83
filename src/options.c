/*-------------------------------------------------------------------------
 *
 * options.c
 *		The tables of sales_kafka's options: which option stands on which
 *		catalog object and what values it takes, which librdkafka properties
 *		are credentials, which sales_kafka manages itself, and who may set
 *		each of the others; the closest-match hint for misspelt names.
 *
 * Who may set which librdkafka property is drawn as file_fdw draws it for
 * "filename" and "program": a property that makes librdkafka read a file of
 * the database server needs the privileges of pg_read_server_files, one
 * that makes it run a program those of pg_execute_server_program, and one
 * that loads code into the server (or that this file does not know)
 * superuser.  Anyone with USAGE on the wrapper gets only the allow-list
 * below: librdkafka grows new properties faster than a deny-list would.
 * Rights are checked before librdkafka sees a value, since setting some
 * properties already loads code.
 *
 * This file depends on no other file of sales_kafka: the validator
 * (fdw_options.c), the librdkafka configuration (kafka_conf.c), the mapping
 * (mapping.c) and the settings (guc.c) all read these tables.  It never
 * opens a librdkafka handle and never shows a secret's value.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include <librdkafka/rdkafka.h>

#include "catalog/pg_attribute.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/varlena.h"

#include "sales_kafka.h"

/* Our own options, by the catalog they stand on */
const SkOption sk_options[] = {
	{"brokers", ForeignServerRelationId},

	{"topic", ForeignTableRelationId},
	{"format", ForeignTableRelationId},
	{"delimiter", ForeignTableRelationId},
	{"quote", ForeignTableRelationId},
	{"null", ForeignTableRelationId},
	{"header", ForeignTableRelationId},
	{"strict", ForeignTableRelationId},

	{"kafka", AttributeRelationId},
	{"field", AttributeRelationId},
	{"json_path", AttributeRelationId},
	{"alias", AttributeRelationId},
	{"time_format", AttributeRelationId},
	{"time_zone", AttributeRelationId},
	{NULL, InvalidOid}
};

/* Values of the table option "format", in the order of SkFormat */
const char *const sk_format_names[] = {"json", "csv", "text", "bytea", NULL};

/* Values of the column option "kafka", in the order of SkColumnKind */
const char *const sk_kafka_column_names[] = {
	"partition", "offset", "timestamp", "key", "headers", "topic",
	"payload", "error", NULL
};

/*
 * librdkafka properties that only a user mapping may carry, because they are
 * credentials.
 */
const char *const sk_secret_properties[] = {
	"sasl.username",
	"sasl.password",
	"sasl.oauthbearer.client.secret",
	"sasl.oauthbearer.config",
	"ssl.key.password",
	"ssl.key.pem",
	"ssl.keystore.password",
	NULL
};

/*
 * librdkafka properties no server may set: sales_kafka sets them itself
 * (offsets live in PostgreSQL, logs go through our own queue).
 */
static const struct
{
	const char *name;
	const char *hint;
}			managed_properties[] = {
	{"bootstrap.servers", "Use the option \"brokers\"."},
	{"metadata.broker.list", "Use the option \"brokers\"."},
	{"enable.auto.commit", "sales_kafka stores offsets in PostgreSQL, in the same transaction as the rows."},
	{"enable.auto.offset.store", "sales_kafka stores offsets in PostgreSQL, in the same transaction as the rows."},
	{"group.id", "Pipelines name their own consumer groups."},
	{"log.queue", "sales_kafka serves librdkafka's logs itself."},
	{"enable.sasl.oauthbearer.unsecure.jwt", "librdkafka's unsecured test tokens are not supported: when it cannot make one, librdkafka 2.0.2 crashes, and the database server with it."},
	{NULL, NULL}
};

/* Who may set a librdkafka property on a server */
typedef enum SkRight
{
	SK_RIGHT_USAGE,				/* anyone who may create the server */
	SK_RIGHT_READ_FILES,		/* pg_read_server_files: reads server files */
	SK_RIGHT_PROGRAM,			/* pg_execute_server_program: runs programs */
	SK_RIGHT_SUPERUSER			/* loads code, or not known to be safe */
} SkRight;

/*
 * Every property that is not SK_RIGHT_SUPERUSER.  The allow-list holds what
 * tunes the network, batching, compression and authentication without
 * touching the server's files, code or programs.  Values that change that
 * (a GSSAPI login runs kinit, an OIDC URL of another scheme reads files)
 * are judged in effective_right(), on what librdkafka makes of them.
 * librdkafka's unsecured test tokens are managed (never set): its failure
 * to make one crashes librdkafka 2.0.2 (a NULL mutex on its main thread).
 */
static const struct
{
	const char *name;
	SkRight		right;
}			property_rights[] = {
	/* the connection */
	{"client.id", SK_RIGHT_USAGE},
	{"client.rack", SK_RIGHT_USAGE},
	{"broker.address.family", SK_RIGHT_USAGE},
	{"broker.address.ttl", SK_RIGHT_USAGE},
	{"broker.version.fallback", SK_RIGHT_USAGE},
	{"api.version.request", SK_RIGHT_USAGE},
	{"api.version.request.timeout.ms", SK_RIGHT_USAGE},
	{"api.version.fallback.ms", SK_RIGHT_USAGE},
	{"socket.timeout.ms", SK_RIGHT_USAGE},
	{"socket.blocking.max.ms", SK_RIGHT_USAGE},
	{"socket.send.buffer.bytes", SK_RIGHT_USAGE},
	{"socket.receive.buffer.bytes", SK_RIGHT_USAGE},
	{"socket.keepalive.enable", SK_RIGHT_USAGE},
	{"socket.nagle.disable", SK_RIGHT_USAGE},
	{"socket.max.fails", SK_RIGHT_USAGE},
	{"socket.connection.setup.timeout.ms", SK_RIGHT_USAGE},
	{"connections.max.idle.ms", SK_RIGHT_USAGE},
	{"reconnect.backoff.ms", SK_RIGHT_USAGE},
	{"reconnect.backoff.max.ms", SK_RIGHT_USAGE},
	{"reconnect.backoff.jitter.ms", SK_RIGHT_USAGE},
	{"message.max.bytes", SK_RIGHT_USAGE},
	{"message.copy.max.bytes", SK_RIGHT_USAGE},
	{"receive.message.max.bytes", SK_RIGHT_USAGE},
	{"max.in.flight.requests.per.connection", SK_RIGHT_USAGE},
	{"max.in.flight", SK_RIGHT_USAGE},
	{"request.timeout.ms", SK_RIGHT_USAGE},
	{"topic.metadata.refresh.interval.ms", SK_RIGHT_USAGE},
	{"metadata.max.age.ms", SK_RIGHT_USAGE},
	{"topic.metadata.refresh.fast.interval.ms", SK_RIGHT_USAGE},
	{"topic.metadata.refresh.fast.cnt", SK_RIGHT_USAGE},
	{"topic.metadata.refresh.sparse", SK_RIGHT_USAGE},
	{"topic.metadata.propagation.max.ms", SK_RIGHT_USAGE},
	{"allow.auto.create.topics", SK_RIGHT_USAGE},
	/* consuming */
	{"queued.min.messages", SK_RIGHT_USAGE},
	{"queued.max.messages.kbytes", SK_RIGHT_USAGE},
	{"fetch.wait.max.ms", SK_RIGHT_USAGE},
	{"fetch.message.max.bytes", SK_RIGHT_USAGE},
	{"max.partition.fetch.bytes", SK_RIGHT_USAGE},
	{"fetch.max.bytes", SK_RIGHT_USAGE},
	{"fetch.min.bytes", SK_RIGHT_USAGE},
	{"fetch.error.backoff.ms", SK_RIGHT_USAGE},
	{"isolation.level", SK_RIGHT_USAGE},
	{"check.crcs", SK_RIGHT_USAGE},
	/* producing */
	{"enable.idempotence", SK_RIGHT_USAGE},
	{"enable.gapless.guarantee", SK_RIGHT_USAGE},
	{"queue.buffering.max.messages", SK_RIGHT_USAGE},
	{"queue.buffering.max.kbytes", SK_RIGHT_USAGE},
	{"queue.buffering.max.ms", SK_RIGHT_USAGE},
	{"queue.buffering.backpressure.threshold", SK_RIGHT_USAGE},
	{"linger.ms", SK_RIGHT_USAGE},
	{"message.send.max.retries", SK_RIGHT_USAGE},
	{"retry.backoff.ms", SK_RIGHT_USAGE},
	{"batch.num.messages", SK_RIGHT_USAGE},
	{"batch.size", SK_RIGHT_USAGE},
	{"sticky.partitioning.linger.ms", SK_RIGHT_USAGE},
	{"compression.codec", SK_RIGHT_USAGE},
	{"compression.type", SK_RIGHT_USAGE},
	{"compression.level", SK_RIGHT_USAGE},
	{"request.required.acks", SK_RIGHT_USAGE},
	{"message.timeout.ms", SK_RIGHT_USAGE},
	{"delivery.timeout.ms", SK_RIGHT_USAGE},
	/* TLS, with certificates given as values */
	{"security.protocol", SK_RIGHT_USAGE},
	{"ssl.cipher.suites", SK_RIGHT_USAGE},
	{"ssl.curves.list", SK_RIGHT_USAGE},
	{"ssl.sigalgs.list", SK_RIGHT_USAGE},
	{"ssl.certificate.pem", SK_RIGHT_USAGE},
	{"ssl.ca.pem", SK_RIGHT_USAGE},
	{"enable.ssl.certificate.verification", SK_RIGHT_USAGE},
	{"ssl.endpoint.identification.algorithm", SK_RIGHT_USAGE},
	/* SASL: the mechanism and OIDC are judged by value */
	{"sasl.mechanisms", SK_RIGHT_USAGE},
	{"sasl.mechanism", SK_RIGHT_USAGE},
	{"sasl.oauthbearer.method", SK_RIGHT_USAGE},
	{"sasl.oauthbearer.client.id", SK_RIGHT_USAGE},
	{"sasl.oauthbearer.scope", SK_RIGHT_USAGE},
	{"sasl.oauthbearer.extensions", SK_RIGHT_USAGE},
	{"sasl.oauthbearer.token.endpoint.url", SK_RIGHT_USAGE},
	/* files of the database server */
	{"ssl.ca.location", SK_RIGHT_READ_FILES},
	{"ssl.certificate.location", SK_RIGHT_READ_FILES},
	{"ssl.key.location", SK_RIGHT_READ_FILES},
	{"ssl.crl.location", SK_RIGHT_READ_FILES},
	{"ssl.keystore.location", SK_RIGHT_READ_FILES},
	/* Kerberos: librdkafka runs its kinit command with system() */
	{"sasl.kerberos.service.name", SK_RIGHT_PROGRAM},
	{"sasl.kerberos.principal", SK_RIGHT_PROGRAM},
	{"sasl.kerberos.kinit.cmd", SK_RIGHT_PROGRAM},
	{"sasl.kerberos.keytab", SK_RIGHT_PROGRAM},
	{"sasl.kerberos.min.time.before.relogin", SK_RIGHT_PROGRAM},
	{NULL, SK_RIGHT_SUPERUSER}
};

/*
 * Is this option name a credential, which only a user mapping may carry?
 */
bool
sk_options_is_secret(const char *name)
{
	int			i;

	for (i = 0; sk_secret_properties[i] != NULL; i++)
		if (strcmp(sk_secret_properties[i], name) == 0)
			return true;
	return false;
}

/*
 * Is this option a librdkafka property passed through to the client?  Our
 * own options never contain a dot, librdkafka's always do.
 */
bool
sk_options_is_kafka_property(const char *name)
{
	return strchr(name, '.') != NULL;
}

/*
 * The hint for a librdkafka property that sales_kafka sets itself, which no
 * server may set; NULL for any other name.
 */
const char *
sk_options_managed_hint(const char *name)
{
	int			i;

	for (i = 0; managed_properties[i].name != NULL; i++)
		if (strcmp(managed_properties[i].name, name) == 0)
			return managed_properties[i].hint;
	return NULL;
}

/*
 * Index of value in a NULL-terminated list of names, or -1.
 */
int
sk_options_lookup(const char *const *names, const char *value)
{
	int			i;

	for (i = 0; names[i] != NULL; i++)
		if (strcmp(names[i], value) == 0)
			return i;
	return -1;
}

/*
 * The closest of candidates to name, or NULL when none is close enough to
 * be a likely misspelling.
 */
const char *
sk_options_closest_match(const char *name, const char *const *candidates,
						 int ncandidates)
{
	const char *best = NULL;
	int			best_distance = Max(2, (int) strlen(name) / 3) + 1;
	int			i;

	for (i = 0; i < ncandidates; i++)
	{
		int			d = varstr_levenshtein_less_equal(name, strlen(name),
													  candidates[i],
													  strlen(candidates[i]),
													  1, 1, 1,
													  best_distance, true);

		if (d < best_distance)
		{
			best_distance = d;
			best = candidates[i];
		}
	}
	return best;
}

/*
 * Check a bootstrap list: comma-separated entries [protocol://]host[:port],
 * where host is a name, an IPv4 address or a bracketed IPv6 address.
 * Returns NULL if the list is valid, else a detail sentence saying what is
 * wrong (palloc'd).  librdkafka itself accepts nearly anything here and
 * fails only when connecting.
 */
char *
sk_options_check_brokers(const char *list)
{
	const char *p = list;
	int			n = 0;

	if (list[strspn(list, " \t,")] == '\0')
		return pstrdup("The value must list at least one broker as host:port.");
	for (;;)
	{
		const char *start;
		const char *end;
		const char *host;
		long		port = 0;

		while (*p == ' ' || *p == '\t')
			p++;
		start = p;
		while (*p != ',' && *p != '\0')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		n++;
		if (end == start)
			return psprintf("Entry %d of the list is empty.", n);

		/* an optional protocol, as librdkafka allows */
		host = start;
		while (host < end && (isalpha((unsigned char) *host) || *host == '_'))
			host++;
		host = host > start && end - host > 3 && strncmp(host, "://", 3) == 0 ?
			host + 3 : start;

		if (*host == '[')
		{
			const char *close = memchr(host, ']', end - host);

			if (close == NULL || close == host + 1 ||
				strspn(host + 1, "0123456789abcdefABCDEF:.") != close - host - 1)
				goto bad_entry;
			host = close + 1;
		}
		else
		{
			const char *name = host;

			while (host < end && (isalnum((unsigned char) *host) ||
								  *host == '.' || *host == '-' || *host == '_'))
				host++;
			if (host == name)
				goto bad_entry;
		}
		if (host < end)
		{
			if (*host++ != ':' || host == end)
				goto bad_entry;
			for (; host < end; host++)
			{
				if (!isdigit((unsigned char) *host))
					goto bad_entry;
				if (port <= 65535)
					port = port * 10 + (*host - '0');
			}
			if (port < 1 || port > 65535)
				return psprintf("The port of \"%s\" is out of range: ports are 1 to 65535.",
								pnstrdup(start, end - start));
		}
		if (*p == '\0')
			return NULL;
		p++;					/* the comma */
		continue;

bad_entry:
		return psprintf("\"%s\" is not a host name or address with an optional port, as in \"kafka1:9092\" or \"[::1]:9092\".",
						pnstrdup(start, end - start));
	}
}

/* ---------------------------------------------------------------------
 * Who may set a server's librdkafka properties
 * ---------------------------------------------------------------------
 */

/* The option of this name in a list, or NULL */
static DefElem *
find_option(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
		if (strcmp(lfirst_node(DefElem, lc)->defname, name) == 0)
			return lfirst_node(DefElem, lc);
	return NULL;
}

/* The right a librdkafka property needs by its name alone */
static SkRight
name_right(const char *name)
{
	int			i;

	for (i = 0; property_rights[i].name != NULL; i++)
		if (strcmp(property_rights[i].name, name) == 0)
			return property_rights[i].right;
	return SK_RIGHT_SUPERUSER;
}

/* A librdkafka setting as librdkafka holds it, trimmed; "" if unset */
static void
conf_value(rd_kafka_conf_t *conf, const char *name, char *buf, size_t size)
{
	size_t		len;
	char	   *start = buf;

	if (rd_kafka_conf_get(conf, name, buf, &size) != RD_KAFKA_CONF_OK)
		buf[0] = '\0';
	while (isspace((unsigned char) *start))
		start++;
	len = strlen(start);
	while (len > 0 && isspace((unsigned char) start[len - 1]))
		len--;
	memmove(buf, start, len);
	buf[len] = '\0';
}

/*
 * The right that the server's librdkafka properties need together, on
 * what librdkafka makes of their values (it trims spaces and ignores case
 * where a check on the text would not): GSSAPI named as the mechanism, or
 * SASL without a mechanism (GSSAPI is the default), makes librdkafka run
 * kinit; libcurl reads file: and other non-HTTP token URLs.  *option names
 * the option to blame.  Every property's name must have passed
 * name_right(): none of them loads code when set.
 */
static SkRight
effective_right(List *options, const char **option)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char		protocol[64];
	char		mechanism[64];
	char		url[1024];
	char		errstr[512];
	SkRight		right = SK_RIGHT_USAGE;
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (sk_options_is_kafka_property(def->defname) &&
			!sk_options_is_secret(def->defname) &&
			sk_options_managed_hint(def->defname) == NULL)
			(void) rd_kafka_conf_set(conf, def->defname, defGetString(def),
									 errstr, sizeof(errstr));
	}
	conf_value(conf, "security.protocol", protocol, sizeof(protocol));
	conf_value(conf, "sasl.mechanisms", mechanism, sizeof(mechanism));
	conf_value(conf, "sasl.oauthbearer.token.endpoint.url", url, sizeof(url));
	rd_kafka_conf_destroy(conf);
	/* a build without OIDC refuses the URL later; judge it all the same */
	if (url[0] == '\0' &&
		find_option(options, "sasl.oauthbearer.token.endpoint.url") != NULL)
	{
		const char *raw = defGetString(find_option(options, "sasl.oauthbearer.token.endpoint.url"));

		while (isspace((unsigned char) *raw))
			raw++;
		strlcpy(url, raw, sizeof(url));
	}

	if (pg_strcasecmp(mechanism, "GSSAPI") == 0)
	{
		*option = find_option(options, "sasl.mechanisms") ? "sasl.mechanisms" :
			find_option(options, "sasl.mechanism") ? "sasl.mechanism" : NULL;
		if (*option == NULL && pg_strncasecmp(protocol, "sasl_", 5) == 0)
			*option = "security.protocol";
		if (*option != NULL)
			right = SK_RIGHT_PROGRAM;
	}
	if (url[0] != '\0' && pg_strncasecmp(url, "https://", 8) != 0 &&
		pg_strncasecmp(url, "http://", 7) != 0)
	{
		*option = "sasl.oauthbearer.token.endpoint.url";
		right = SK_RIGHT_SUPERUSER;
	}
	return right;
}

static bool
has_right(Oid role, SkRight right)
{
	switch (right)
	{
		case SK_RIGHT_USAGE:
			return true;
		case SK_RIGHT_READ_FILES:
			return has_privs_of_role(role, ROLE_PG_READ_SERVER_FILES);
		case SK_RIGHT_PROGRAM:
			return has_privs_of_role(role, ROLE_PG_EXECUTE_SERVER_PROGRAM);
		case SK_RIGHT_SUPERUSER:
			return superuser_arg(role);
	}
	return false;
}

/*
 * Raise the error for an option the role may not set: as the validator
 * sees it (server NULL), or for a server that carries it although its
 * owner may not set it (made by an earlier version, or given to another
 * owner since).
 */
static void pg_attribute_noreturn()
deny(SkRight right, const char *option, const char *server)
{
	const char *detail;

	if (right == SK_RIGHT_READ_FILES)
		detail = _("Only superusers and roles with privileges of the \"pg_read_server_files\" role may set librdkafka properties that read files of the database server.");
	else if (right == SK_RIGHT_PROGRAM)
		detail = _("Only superusers and roles with privileges of the \"pg_execute_server_program\" role may make librdkafka run programs on the database server, as a Kerberos (GSSAPI) login does.");
	else
		detail = _("Only superusers may set librdkafka properties that can load code into the database server or read any of its files, and properties not known to be free of both.");

	if (server != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("server \"%s\" has option \"%s\", which its owner may not set",
						server, option),
				 errdetail_internal("%s", detail),
				 errhint("A superuser may own the server, or drop the option: ALTER SERVER %s OPTIONS (DROP \"%s\").",
						 quote_identifier(server), option)));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to set option \"%s\"", option),
			 errdetail_internal("%s", detail),
			 right == SK_RIGHT_PROGRAM && strncmp(option, "sasl.kerberos.", 14) != 0 ?
			 errhint("Name another SASL mechanism with the option \"sasl.mechanism\", such as \"SCRAM-SHA-512\", \"PLAIN\" or \"OAUTHBEARER\".") :
			 right == SK_RIGHT_SUPERUSER ? errhint("Ask a superuser to create the server.") : 0));
}

/*
 * Check that role may set every librdkafka property of a server's option
 * list, by name and then by what the values do together.  The validator
 * calls it for the user creating or altering the server (server NULL),
 * before librdkafka sees any value: setting some properties already loads
 * code.  Opening a handle calls it for the server's owner, so that a
 * server keeps only what its owner may set.  Secrets and the properties
 * sales_kafka manages are the validator's to refuse; a server that still
 * has a managed one (from an earlier version) is refused here.
 */
void
sk_options_check_rights(List *options, Oid role, const char *server)
{
	const char *option = NULL;
	SkRight		right;
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (!sk_options_is_kafka_property(def->defname) ||
			sk_options_is_secret(def->defname))
			continue;
		if (sk_options_managed_hint(def->defname) != NULL)
		{
			if (server == NULL)
				continue;
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("server \"%s\" has option \"%s\", which cannot be set",
							server, def->defname),
					 errhint("Drop the option: ALTER SERVER %s OPTIONS (DROP \"%s\").",
							 quote_identifier(server), def->defname)));
		}
		right = name_right(def->defname);
		if (!has_right(role, right))
			deny(right, def->defname, server);
	}
	if (superuser_arg(role))
		return;
	right = effective_right(options, &option);
	if (!has_right(role, right))
		deny(right, option, server);
}
