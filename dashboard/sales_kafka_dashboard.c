/*-------------------------------------------------------------------------
 *
 * sales_kafka_dashboard.c
 *		The live sales dashboard: a small HTTP server (libmicrohttpd) that
 *		serves one page and, for each KPI view of a sales model, a JSON
 *		document made by PostgreSQL (libpq).
 *
 *	sales_kafka_dashboard --conninfo CONNINFO --schema NAME
 *						  [--listen HOST:PORT] [--allow-non-reader]
 *						  [--static-dir DIR] [--chartjs FILE]
 *
 * What it serves (GET only; anything else is a 4xx with a one-line body):
 *	/							the page (index.html of the static directory);
 *								query string: refresh=SECONDS, grain=minute|
 *								hour|day, currency=ISO code, all read by the
 *								page's script
 *	/dashboard.js, /dashboard.css, /chart.js	its script, style and Chart.js
 *	/api/VIEW					{"view", "fetched_at", "rows": [...]} for one
 *								view of the allow-list below
 *	/api/dashboard				every view of the allow-list in one snapshot:
 *								{"fetched_at", "schema", "views": {VIEW: [...]}}
 *
 * This file owns the allow-list of what can be read: a request names an
 * entry of it, never a relation, and the only identifier put into SQL is
 * the model's schema, quoted once at start with PQescapeIdentifier.  It
 * writes no JSON itself: every document, envelope included, is made by
 * json_agg and json_build_object in the server.  It assumes the KPI views
 * of src/sql/model/views.sql and sales_kafka.pipeline_status, read as
 * their owner made them (a view's columns reach the page as they are).
 *
 * It must never bind anything but loopback unless told to (and there answer
 * only requests whose Host names loopback: host_is_loopback), never run as a
 * role outside sales_kafka_reader (or a superuser) unless told to, and
 * never hold more than one database connection: requests are served one at
 * a time by libmicrohttpd's internal polling thread, which is the only
 * thread that touches the connection.  After a lost connection (a server
 * restart) the next request reconnects; until then requests get 503.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <microhttpd.h>

#ifndef SK_DASHBOARD_STATIC_DIR
#define SK_DASHBOARD_STATIC_DIR "/usr/share/postgresql/15/sales_kafka_dashboard"
#endif
#define SK_DASHBOARD_CHARTJS "/usr/share/javascript/chart.js/chart.min.js"

/* what the reader role is called (src/sql/kpi.sql) */
#define SK_READER_ROLE "sales_kafka_reader"

/* longest URL path, query string and header block accepted */
#define SK_MAX_PATH 64
#define SK_MAX_QUERY 128
#define SK_MAX_QUERY_ARGS 4
#define SK_CONNECTION_MEMORY (16 * 1024)
#define SK_MAX_CONNECTIONS 64
#define SK_CONNECTION_TIMEOUT 30
/* largest static file read at start */
#define SK_MAX_STATIC_FILE (4 * 1024 * 1024)

/*
 * The allow-list: each entry is one URL (/api/NAME), one relation and the
 * rows of it the page shows.  "extension" relations live in schema
 * sales_kafka; the others in the model's schema.  The filter is SQL text
 * after FROM: fixed here, never from a request; %s in it is the model's
 * schema as a quoted literal.
 */
typedef struct SkDashView
{
	const char *name;			/* URL and key in /api/dashboard */
	bool		extension;		/* in schema sales_kafka, not the model's */
	const char *filter;			/* WHERE / ORDER BY / LIMIT, or "" */
} SkDashView;

static const SkDashView sk_views[] = {
	{"kpi_totals", false, ""},
	{"kpi_today", false, ""},
	{"kpi_sales_per_minute", false,
	"WHERE period_start >= now() - interval '2 hours' ORDER BY period_start"},
	{"kpi_sales_per_hour", false,
	"WHERE period_start >= now() - interval '48 hours' ORDER BY period_start"},
	{"kpi_sales_per_day", false,
	"WHERE period_start >= now() - interval '90 days' ORDER BY period_start"},
	{"kpi_top_products", false, "WHERE revenue_rank <= 10 ORDER BY revenue_rank"},
	{"kpi_sales_by_category", false, ""},
	{"kpi_sales_by_region", false, ""},
	{"kpi_sales_by_segment", false, ""},
	{"kpi_price_distribution", false, ""},
	{"kpi_today_top_products", false, ""},
	{"kpi_today_by_category", false, ""},
	{"kpi_as_of", false, ""},
	{"pipeline_status", true,
	"WHERE (SELECT c.relnamespace FROM pg_catalog.pg_class c WHERE c.oid = target) ="
	" (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = %s)"
	" ORDER BY pipeline"},
};
#define SK_NVIEWS (sizeof(sk_views) / sizeof(sk_views[0]))

/* A static file, read once at start and served from memory. */
typedef struct SkStaticFile
{
	const char *url;
	const char *file;			/* in the static directory, or a full path */
	const char *content_type;
	struct MHD_Response *response;
} SkStaticFile;

static SkStaticFile sk_static[] = {
	{"/", "index.html", "text/html; charset=utf-8", NULL},
	{"/dashboard.js", "dashboard.js", "text/javascript; charset=utf-8", NULL},
	{"/dashboard.css", "dashboard.css", "text/css; charset=utf-8", NULL},
	{"/chart.js", NULL, "text/javascript; charset=utf-8", NULL},
};
#define SK_NSTATIC (sizeof(sk_static) / sizeof(sk_static[0]))

/* settings */
static const char *opt_conninfo = NULL;
static const char *opt_schema = NULL;
static const char *opt_listen = "127.0.0.1:8080";
static const char *opt_static_dir = SK_DASHBOARD_STATIC_DIR;
static const char *opt_chartjs = SK_DASHBOARD_CHARTJS;
static bool opt_allow_non_reader = false;
static bool listen_loopback = false;	/* serving on a loopback address */

/* the one connection, and the SQL made for it at start */
static PGconn *sk_conn = NULL;
static char *sk_view_sql[SK_NVIEWS];	/* one view's document */
static char *sk_all_sql;		/* every view, one snapshot */
static bool sk_prepared = false;	/* statements prepared on sk_conn */

/* one line on stderr, with the program's name */
static void
vnote(const char *fmt, va_list ap)
{
	fprintf(stderr, "sales_kafka_dashboard: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void
note(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vnote(fmt, ap);
	va_end(ap);
}

static void
fatal(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vnote(fmt, ap);
	va_end(ap);
	exit(1);
}

/* malloc'd printf; exits when out of memory */
static char *
format_alloc(const char *fmt,...)
{
	va_list		ap;
	int			n;
	char	   *s;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	s = malloc(n + 1);
	if (s == NULL)
		fatal("out of memory");
	va_start(ap, fmt);
	vsnprintf(s, n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/*
 * The SQL of each document, made once from the allow-list and the model's
 * schema.  Needs a live connection (for the escaping functions).
 */
static void
build_sql(PGconn *conn)
{
	char	   *schema_ident = PQescapeIdentifier(conn, opt_schema, strlen(opt_schema));
	char	   *schema_lit = PQescapeLiteral(conn, opt_schema, strlen(opt_schema));
	char	   *parts = format_alloc("%s", "");
	size_t		i;

	if (schema_ident == NULL || schema_lit == NULL)
		fatal("could not quote schema name \"%s\": %s", opt_schema,
			  PQerrorMessage(conn));

	for (i = 0; i < SK_NVIEWS; i++)
	{
		const SkDashView *v = &sk_views[i];
		char	   *filter = format_alloc(v->filter, schema_lit);
		char	   *rows;
		char	   *next;

		rows = format_alloc("(SELECT coalesce(pg_catalog.json_agg(t), '[]')"
						" FROM (SELECT * FROM %s.%s %s) t)",
						v->extension ? "sales_kafka" : schema_ident,
						v->name, filter);
		sk_view_sql[i] = format_alloc("SELECT pg_catalog.json_build_object("
								  "'view', '%s', 'fetched_at', pg_catalog.now(),"
								  " 'rows', %s)", v->name, rows);
		next = format_alloc("%s%s'%s', %s", parts, i > 0 ? ", " : "",
						v->name, rows);
		free(parts);
		parts = next;
		free(rows);
		free(filter);
	}
	sk_all_sql = format_alloc("SELECT pg_catalog.json_build_object("
						  "'fetched_at', pg_catalog.now(), 'schema', %s,"
						  " 'views', pg_catalog.json_build_object(%s))",
						  schema_lit, parts);
	free(parts);
	PQfreemem(schema_ident);
	PQfreemem(schema_lit);
}

/* One statement that returns nothing; false (with a note) if it failed. */
static bool
run_command(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);
	bool		ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		note("%s failed: %s", sql, PQerrorMessage(conn));
	PQclear(res);
	return ok;
}

/*
 * Make a new session ready: read only, bounded statements, no search path
 * to be fooled by (every name in our SQL is qualified).
 */
static bool
setup_session(PGconn *conn)
{
	sk_prepared = false;
	return run_command(conn, "SET default_transaction_read_only = on") &&
		run_command(conn, "SET statement_timeout = '10s'") &&
		run_command(conn, "SET search_path = pg_catalog, pg_temp");
}

/*
 * A new connection as --conninfo says; a connect_timeout of 10 s unless it
 * says otherwise (a reconnect to a host that is gone must not hold every
 * request for the system's TCP timeout).
 */
static PGconn *
connect_db(void)
{
	const char *keys[] = {"connect_timeout", "dbname", "fallback_application_name", NULL};
	const char *values[] = {"10", opt_conninfo, "sales_kafka_dashboard", NULL};

	return PQconnectdbParams(keys, values, 1);
}

/*
 * At start: connect, check the connection's role and the model, make the
 * SQL.  Exits with a message on any failure.
 */
static void
start_db(void)
{
	PGresult   *res;
	const char *params[2];

	sk_conn = connect_db();
	if (PQstatus(sk_conn) != CONNECTION_OK)
		fatal("could not connect to the database: %s", PQerrorMessage(sk_conn));

	/*
	 * The role must be a member of the reader role (with its privileges, not
	 * by superuser status), and not a superuser: the dashboard needs to read
	 * the KPI views and nothing else.
	 */
	params[0] = SK_READER_ROLE;
	res = PQexecParams(sk_conn,
					   "SELECT r.rolname, r.rolsuper, g.oid IS NOT NULL,"
					   " g.oid IS NOT NULL AND pg_catalog.pg_has_role(r.oid, g.oid, 'MEMBER')"
					   " FROM pg_catalog.pg_roles r"
					   " LEFT JOIN pg_catalog.pg_roles g ON g.rolname = $1"
					   " WHERE r.rolname = current_user",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		fatal("could not read the connection's role: %s", PQerrorMessage(sk_conn));
	if (!opt_allow_non_reader)
	{
		const char *role = PQgetvalue(res, 0, 0);

		if (strcmp(PQgetvalue(res, 0, 1), "t") == 0)
			fatal("role \"%s\" is a superuser\n"
				  "Connect as a role that is a member of \"%s\", or pass --allow-non-reader.",
				  role, SK_READER_ROLE);
		if (strcmp(PQgetvalue(res, 0, 2), "t") != 0)
			fatal("role \"%s\" does not exist: is the sales_kafka extension installed?\n"
				  "Pass --allow-non-reader to connect without it.",
				  SK_READER_ROLE);
		if (strcmp(PQgetvalue(res, 0, 3), "t") != 0)
			fatal("role \"%s\" is not a member of \"%s\"\n"
				  "GRANT %s TO %s, or pass --allow-non-reader.",
				  role, SK_READER_ROLE, SK_READER_ROLE, role);
	}
	PQclear(res);

	/* the model must be there and readable */
	params[0] = opt_schema;
	res = PQexecParams(sk_conn,
					   "SELECT pg_catalog.has_table_privilege(c.oid, 'SELECT')"
					   " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
					   " ON n.oid = c.relnamespace"
					   " WHERE n.nspname = $1 AND c.relname = 'kpi_totals'",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fatal("could not look for the sales model: %s", PQerrorMessage(sk_conn));
	if (PQntuples(res) != 1)
		fatal("schema \"%s\" holds no sales model (no view \"kpi_totals\")",
			  opt_schema);
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		fatal("permission denied for the KPI views of schema \"%s\"", opt_schema);
	PQclear(res);

	build_sql(sk_conn);
	if (!setup_session(sk_conn))
		fatal("could not set up the session");
}

/* prepare every statement on the connection: false if one failed */
static bool
prepare_all(void)
{
	size_t		i;
	PGresult   *res;

	for (i = 0; i <= SK_NVIEWS; i++)
	{
		char		name[16];

		snprintf(name, sizeof(name), "v%zu", i);
		res = PQprepare(sk_conn, name, i < SK_NVIEWS ? sk_view_sql[i] : sk_all_sql,
						0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			note("could not prepare the query of %s: %s",
				 i < SK_NVIEWS ? sk_views[i].name : "the dashboard",
				 PQerrorMessage(sk_conn));
			PQclear(res);
			run_command(sk_conn, "DEALLOCATE ALL");
			return false;
		}
		PQclear(res);
	}
	sk_prepared = true;
	return true;
}

/*
 * Run statement number i (SK_NVIEWS: the whole dashboard).  Returns its
 * result, a single json value, or NULL (with a note) when the database
 * could not answer.  A lost connection is reset and the statement tried
 * once more; a statement that fails on a live connection (a view changed
 * under a prepared statement) is prepared anew and tried once more.
 */
static PGresult *
run_document(size_t i)
{
	int			attempt;
	char		name[16];

	snprintf(name, sizeof(name), "v%zu", i);
	for (attempt = 0; attempt < 2; attempt++)
	{
		PGresult   *res;

		if (PQstatus(sk_conn) != CONNECTION_OK)
		{
			PQreset(sk_conn);
			if (PQstatus(sk_conn) != CONNECTION_OK || !setup_session(sk_conn))
			{
				note("could not reconnect: %s", PQerrorMessage(sk_conn));
				return NULL;
			}
			note("reconnected to the database");
		}
		if (!sk_prepared && !prepare_all())
		{
			if (PQstatus(sk_conn) == CONNECTION_OK)
				return NULL;
			continue;
		}
		res = PQexecPrepared(sk_conn, name, 0, NULL, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
			PQnfields(res) == 1 && !PQgetisnull(res, 0, 0))
			return res;
		note("query of %s failed: %s",
			 i < SK_NVIEWS ? sk_views[i].name : "the dashboard",
			 PQerrorMessage(sk_conn));
		PQclear(res);
		if (PQstatus(sk_conn) == CONNECTION_OK)
		{
			run_command(sk_conn, "DEALLOCATE ALL");
			sk_prepared = false;
		}
	}
	return NULL;
}

/* ---------------------------------------------------------------- HTTP */

/* the headers every answer carries */
static void
add_common_headers(struct MHD_Response *r, bool cache)
{
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "Content-Security-Policy",
							"default-src 'self'; img-src 'self' data:; "
							"style-src 'self'; script-src 'self'; "
							"frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
	MHD_add_response_header(r, "Cache-Control", cache ? "max-age=60" : "no-store");
}

/* An error: status and a one-line text body, nothing else. */
static enum MHD_Result
reply_error(struct MHD_Connection *c, unsigned int status, const char *text)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(text), (void *) text,
										MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	add_common_headers(r, false);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/*
 * Whether the request's Host header names loopback (localhost, 127.x.x.x or
 * [::1], with or without a port), or is absent (not a browser).  While the
 * program serves on loopback, a page of another site must not read it
 * through a name of its own that resolves to 127.0.0.1 (DNS rebinding): the
 * browser then sends that name.
 */
static bool
host_is_loopback(struct MHD_Connection *c)
{
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
												   MHD_HTTP_HEADER_HOST);
	const char *end;
	char		name[INET6_ADDRSTRLEN + 1];
	size_t		len;
	struct in_addr a4;
	struct in6_addr a6;

	if (host == NULL)
		return true;
	if (host[0] == '[')
	{
		end = strchr(host, ']');
		if (end == NULL)
			return false;
		len = end - host - 1;
		end++;
	}
	else
	{
		end = strchr(host, ':');
		if (end == NULL)
			end = host + strlen(host);
		len = end - host;
	}
	if (len == 0 || len >= sizeof(name) || (*end != '\0' && *end != ':'))
		return false;
	memcpy(name, host[0] == '[' ? host + 1 : host, len);
	name[len] = '\0';
	if (host[0] == '[')
		return inet_pton(AF_INET6, name, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
	if (strcasecmp(name, "localhost") == 0)
		return true;
	return inet_pton(AF_INET, name, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* count query arguments; reject any that is too long */
typedef struct SkArgCheck
{
	int			count;
	size_t		length;
	bool		unknown;
} SkArgCheck;

static enum MHD_Result
check_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	SkArgCheck *a = cls;

	a->count++;
	a->length += strlen(key) + (value ? strlen(value) : 0) + 2;
	if (strcmp(key, "refresh") != 0 && strcmp(key, "grain") != 0 &&
		strcmp(key, "currency") != 0)
		a->unknown = true;
	return MHD_YES;
}

static enum MHD_Result
handle_request(void *cls, struct MHD_Connection *c, const char *url,
			   const char *method, const char *version,
			   const char *upload_data, size_t *upload_data_size,
			   void **con_cls)
{
	SkArgCheck	args = {0, 0, false};
	size_t		i;

	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	if (listen_loopback && !host_is_loopback(c))
		return reply_error(c, MHD_HTTP_FORBIDDEN, "forbidden host\n");
	/* a GET with a body */
	if (*upload_data_size != 0)
		return reply_error(c, MHD_HTTP_BAD_REQUEST, "bad request\n");
	if (strlen(url) > SK_MAX_PATH)
		return reply_error(c, MHD_HTTP_URI_TOO_LONG, "URI too long\n");

	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, check_arg, &args);
	if (args.count > SK_MAX_QUERY_ARGS || args.length > SK_MAX_QUERY)
		return reply_error(c, MHD_HTTP_URI_TOO_LONG, "query string too long\n");

	for (i = 0; i < SK_NSTATIC; i++)
	{
		if (strcmp(url, sk_static[i].url) == 0)
		{
			if (args.unknown)
				return reply_error(c, MHD_HTTP_BAD_REQUEST, "bad request\n");
			return MHD_queue_response(c, MHD_HTTP_OK, sk_static[i].response);
		}
	}

	if (strncmp(url, "/api/", 5) == 0)
	{
		const char *name = url + 5;
		size_t		n = SK_NVIEWS + 1;
		PGresult   *res;
		struct MHD_Response *r;
		enum MHD_Result ret;

		if (args.count > 0)
			return reply_error(c, MHD_HTTP_BAD_REQUEST, "bad request\n");
		if (strcmp(name, "dashboard") == 0)
			n = SK_NVIEWS;
		for (i = 0; i < SK_NVIEWS && n > SK_NVIEWS; i++)
			if (strcmp(name, sk_views[i].name) == 0)
				n = i;
		if (n > SK_NVIEWS)
			return reply_error(c, MHD_HTTP_NOT_FOUND, "not found\n");

		res = run_document(n);
		if (res == NULL)
			return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
							   "the database is not available\n");
		r = MHD_create_response_from_buffer(PQgetlength(res, 0, 0),
											PQgetvalue(res, 0, 0),
											MHD_RESPMEM_MUST_COPY);
		PQclear(res);
		if (r == NULL)
			return MHD_NO;
		MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
		add_common_headers(r, false);
		ret = MHD_queue_response(c, MHD_HTTP_OK, r);
		MHD_destroy_response(r);
		return ret;
	}
	return reply_error(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* ---------------------------------------------------------------- start */

static void
load_static(void)
{
	size_t		i;

	for (i = 0; i < SK_NSTATIC; i++)
	{
		SkStaticFile *s = &sk_static[i];
		char	   *path = s->file ? format_alloc("%s/%s", opt_static_dir, s->file)
			: format_alloc("%s", opt_chartjs);
		FILE	   *f = fopen(path, "rb");
		struct stat st;
		char	   *buf;

		if (f == NULL || fstat(fileno(f), &st) != 0)
			fatal("could not open file \"%s\": %s", path, strerror(errno));
		if (st.st_size <= 0 || st.st_size > SK_MAX_STATIC_FILE)
			fatal("file \"%s\" is empty or larger than %d bytes", path,
				  SK_MAX_STATIC_FILE);
		buf = malloc(st.st_size);
		if (buf == NULL)
			fatal("out of memory");
		if (fread(buf, 1, st.st_size, f) != (size_t) st.st_size)
			fatal("could not read file \"%s\"", path);
		fclose(f);
		s->response = MHD_create_response_from_buffer(st.st_size, buf,
													  MHD_RESPMEM_MUST_FREE);
		if (s->response == NULL)
			fatal("out of memory");
		MHD_add_response_header(s->response, "Content-Type", s->content_type);
		add_common_headers(s->response, i > 0);
		free(path);
	}
}

/* HOST:PORT (HOST an IPv4 address, or [IPv6]) into an address */
static void
parse_listen(struct sockaddr_storage *ss, socklen_t *len)
{
	const char *colon = strrchr(opt_listen, ':');
	char		host[INET6_ADDRSTRLEN + 2];
	char	   *end;
	long		port;
	size_t		hlen;

	if (colon == NULL)
		fatal("invalid value for option --listen: \"%s\"\n"
			  "Give HOST:PORT, for example 127.0.0.1:8080.", opt_listen);
	hlen = colon - opt_listen;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || port < 1 || port > 65535)
		fatal("invalid port in --listen \"%s\": give 1 to 65535", opt_listen);
	if (hlen == 0 || hlen >= sizeof(host))
		fatal("invalid host in --listen \"%s\"", opt_listen);
	memcpy(host, opt_listen, hlen);
	host[hlen] = '\0';

	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && host[hlen - 1] == ']')
	{
		struct sockaddr_in6 *a = (struct sockaddr_in6 *) ss;

		host[hlen - 1] = '\0';
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t) port);
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			fatal("invalid IPv6 address in --listen \"%s\"", opt_listen);
		listen_loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
		*len = sizeof(*a);
	}
	else
	{
		struct sockaddr_in *a = (struct sockaddr_in *) ss;

		if (strcmp(host, "localhost") == 0)
			strcpy(host, "127.0.0.1");
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t) port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			fatal("invalid IPv4 address in --listen \"%s\" (give an address, not a host name)",
				  opt_listen);
		listen_loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
		*len = sizeof(*a);
	}
}

static void
usage(FILE *out)
{
	fprintf(out,
			"sales_kafka_dashboard serves a live web page of a sales_kafka sales model's KPIs.\n\n"
			"Usage:\n"
			"  sales_kafka_dashboard --conninfo CONNINFO --schema NAME [OPTION]...\n\n"
			"Options:\n"
			"  --conninfo CONNINFO   libpq connection string or URI (the role must be a\n"
			"                        member of " SK_READER_ROLE ")\n"
			"  --schema NAME         the sales model's schema\n"
			"  --listen HOST:PORT    address to serve on (default 127.0.0.1:8080)\n"
			"  --allow-non-reader    connect even as a role outside " SK_READER_ROLE "\n"
			"                        or as a superuser\n"
			"  --static-dir DIR      the page's files (default %s)\n"
			"  --chartjs FILE        Chart.js (default %s)\n"
			"  --help                show this help, then exit\n",
			SK_DASHBOARD_STATIC_DIR, SK_DASHBOARD_CHARTJS);
}

int
main(int argc, char **argv)
{
	struct sockaddr_storage addr;
	socklen_t	addrlen;
	struct MHD_Daemon *d;
	sigset_t	sigs;
	int			sig;
	int			i;

	for (i = 1; i < argc; i++)
	{
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0)
		{
			usage(stdout);
			return 0;
		}
		else if (strcmp(a, "--allow-non-reader") == 0)
			opt_allow_non_reader = true;
		else if (i + 1 < argc && strcmp(a, "--conninfo") == 0)
			opt_conninfo = argv[++i];
		else if (i + 1 < argc && strcmp(a, "--schema") == 0)
			opt_schema = argv[++i];
		else if (i + 1 < argc && strcmp(a, "--listen") == 0)
			opt_listen = argv[++i];
		else if (i + 1 < argc && strcmp(a, "--static-dir") == 0)
			opt_static_dir = argv[++i];
		else if (i + 1 < argc && strcmp(a, "--chartjs") == 0)
			opt_chartjs = argv[++i];
		else
		{
			fprintf(stderr, "sales_kafka_dashboard: unrecognized argument \"%s\"\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (opt_conninfo == NULL || opt_schema == NULL)
	{
		fprintf(stderr, "sales_kafka_dashboard: --conninfo and --schema are required\n");
		usage(stderr);
		return 2;
	}
	if (opt_schema[0] == '\0' || strlen(opt_schema) > 63)
		fatal("invalid schema name \"%s\"", opt_schema);

	parse_listen(&addr, &addrlen);
	load_static();
	start_db();

	/* SIGINT and SIGTERM are taken by sigwait below, in this thread only */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
						 (addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
						 0, NULL, NULL, handle_request, NULL,
						 MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
						 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) SK_CONNECTION_MEMORY,
						 MHD_OPTION_CONNECTION_LIMIT, (unsigned int) SK_MAX_CONNECTIONS,
						 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) SK_CONNECTION_TIMEOUT,
						 MHD_OPTION_END);
	if (d == NULL)
		fatal("could not listen on %s: %s", opt_listen, strerror(errno));
	/* the page's address, on stdout: scripts wait for this line */
	printf("sales_kafka_dashboard: serving schema \"%s\" on http://%s/\n",
		   opt_schema, opt_listen);
	fflush(stdout);

	while (sigwait(&sigs, &sig) != 0)
		;
	note("received signal %d: stopping", sig);
	MHD_stop_daemon(d);
	PQfinish(sk_conn);
	return 0;
}
