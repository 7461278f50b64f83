/*-------------------------------------------------------------------------
 *
 * sk_test_broker.c
 *		The test suites' Kafka broker: librdkafka's mock cluster run as a
 *		standalone program, its control client, and a topic creator for
 *		real clusters.
 *
 * Three modes share this file:
 *
 *	sk_test_broker [-v] [--brokers N] [--topic NAME:PARTITIONS]...
 *				   --bootstrap-file PATH [--control SOCKET_PATH]
 *		Runs a mock cluster of N brokers on 127.0.0.1 (random ports),
 *		creates the topics, then publishes the bootstrap list by renaming a
 *		fully written file onto PATH: its appearance is the ready signal.
 *		An optional UNIX-domain control socket takes one command line per
 *		connection and answers "ok" or "error: <reason>" (see run_command).
 *		SIGTERM or SIGINT stops it; it then removes the socket and PATH.
 *
 *	sk_test_broker ctl SOCKET_PATH COMMAND...
 *		Sends one command to a running broker and prints the reply.
 *
 *	sk_test_broker create-topics BOOTSTRAP NAME:PARTITIONS...
 *		Creates topics on a real cluster with the Admin API.  The mock does
 *		not implement CreateTopics; this mode is for real brokers only.
 *
 * This file owns the only mock cluster of the test suites and everything
 * about driving it.  It assumes librdkafka 2.0.2's experimental mock API
 * (rdkafka_mock.h), whose ABI is not covered by librdkafka's stability
 * guarantees.  It runs outside the database server and must never be
 * linked into the extension; tests must never rely on a behaviour that
 * only the mock has, because the same tests also run against a real
 * cluster.
 *
 * The broker mode is single-threaded on our side: the main loop polls the
 * control socket and a self-pipe fed by the signal handler.  librdkafka
 * runs the mock in its own threads, which start with SIGINT and SIGTERM
 * blocked so that the main thread receives them.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define SK_PROGNAME					"sk_test_broker"
#define SK_DEFAULT_BROKERS			3
#define SK_MAX_BROKERS				64
#define SK_MAX_PARTITIONS			10000
#define SK_MAX_TOPIC_NAME			249
#define SK_MAX_APIKEY				256		/* API keys are 0..255 */
#define SK_MAX_ERROR_COUNT			1000000
#define SK_MAX_RTT_MS				3600000
#define SK_CTL_LINE_MAX				1024
#define SK_CTL_REPLY_MAX			(SK_CTL_LINE_MAX + 256)
#define SK_CTL_MAX_ARGS				8
#define SK_CTL_MAX_CLIENTS			16
#define SK_CTL_CLIENT_TIMEOUT_MS	5000
#define SK_CTL_TIMEOUT_MS			5000
#define SK_CREATE_TIMEOUT_MS		30000
#define SK_METADATA_WAIT_MS			5000

/* Exit codes shared by all modes. */
#define SK_EXIT_OK					0
#define SK_EXIT_FAILURE				1
#define SK_EXIT_USAGE				2

/* One topic to create: "NAME:PARTITIONS" split and checked. */
typedef struct SkTopicSpec
{
	char		name[SK_MAX_TOPIC_NAME + 1];
	int			partitions;
	bool		existed;		/* create-topics: it was there already */
	bool		pending;		/* create-topics: still to be created */
} SkTopicSpec;

/* One control connection waiting for its command line. */
typedef struct SkCtlClient
{
	int			fd;				/* -1 when the slot is free */
	size_t		len;
	int64_t		deadline_ms;
	char		buf[SK_CTL_LINE_MAX + 1];
} SkCtlClient;

/* Kafka protocol API keys that the control commands accept by name. */
typedef struct SkApiKeyName
{
	const char *name;
	int16_t		key;
} SkApiKeyName;

static const SkApiKeyName sk_api_keys[] = {
	{"Produce", 0},
	{"Fetch", 1},
	{"ListOffsets", 2},
	{"Metadata", 3},
	{"OffsetCommit", 8},
	{"OffsetFetch", 9},
	{"FindCoordinator", 10},
	{"JoinGroup", 11},
	{"Heartbeat", 12},
	{"LeaveGroup", 13},
	{"SyncGroup", 14},
	{"DescribeGroups", 15},
	{"ListGroups", 16},
	{"SaslHandshake", 17},
	{"ApiVersions", 18},
	{"CreateTopics", 19},
	{"DeleteTopics", 20},
	{"DeleteRecords", 21},
	{"InitProducerId", 22},
	{"OffsetForLeaderEpoch", 23},
	{"AddPartitionsToTxn", 24},
	{"AddOffsetsToTxn", 25},
	{"EndTxn", 26},
	{"TxnOffsetCommit", 28},
	{"DescribeConfigs", 32},
	{"AlterConfigs", 33},
	{"SaslAuthenticate", 36},
	{"CreatePartitions", 37},
	{"DeleteGroups", 42},
};

/* Broker-mode state; the cleanup path inspects every field. */
static bool sk_verbose = false;
static int	sk_broker_cnt = SK_DEFAULT_BROKERS;
static rd_kafka_t *sk_rk = NULL;
static rd_kafka_mock_cluster_t *sk_mcluster = NULL;
static const char *sk_bootstrap_path = NULL;
static bool sk_bootstrap_written = false;
static const char *sk_control_path = NULL;
static int	sk_listen_fd = -1;
static int	sk_signal_pipe[2] = {-1, -1};
static SkCtlClient sk_clients[SK_CTL_MAX_CLIENTS];

/* API keys that got errors pushed, so that "clear" knows what to clear. */
static bool sk_cluster_errors_pushed[SK_MAX_APIKEY];
static bool sk_broker_errors_pushed[SK_MAX_APIKEY];


/*
 * Print a message prefixed with the program name on stderr.
 */
static void
sk_vlog(const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", SK_PROGNAME);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void
sk_log(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	sk_vlog(fmt, ap);
	va_end(ap);
}

static void
usage(FILE *out)
{
	fprintf(out,
			"Usage:\n"
			"  %s [-v] [--brokers N] [--topic NAME:PARTITIONS]...\n"
			"                 --bootstrap-file PATH [--control SOCKET_PATH]\n"
			"      run a mock Kafka cluster of N brokers (default %d) on 127.0.0.1\n"
			"  %s ctl SOCKET_PATH COMMAND...\n"
			"      send one command to a running broker's control socket\n"
			"  %s create-topics BOOTSTRAP NAME:PARTITIONS...\n"
			"      create topics on a real Kafka cluster\n"
			"\n"
			"Control commands: ping, down ID, up ID, rtt ID MS,\n"
			"  error APIKEY ERRCODE [COUNT], broker-error ID APIKEY ERRCODE RTT_MS [COUNT],\n"
			"  topic NAME PARTITIONS, clear\n",
			SK_PROGNAME, SK_DEFAULT_BROKERS, SK_PROGNAME, SK_PROGNAME);
}

static int
usage_error(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	sk_vlog(fmt, ap);
	va_end(ap);
	usage(stderr);
	return SK_EXIT_USAGE;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline, never negative, fit for poll(). */
static int
ms_until(int64_t deadline)
{
	int64_t		left = deadline - now_ms();

	if (left < 0)
		return 0;
	if (left > INT_MAX)
		return INT_MAX;
	return (int) left;
}

/*
 * Parse a whole string as a decimal integer within [min, max].  Returns false
 * on anything else, leaving *out alone.
 */
static bool
parse_long(const char *s, long min, long max, long *out)
{
	char	   *end;
	long		v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Kafka's rule for topic names: 1 to 249 of [A-Za-z0-9._-]. */
static bool
valid_topic_name(const char *name)
{
	size_t		len = strlen(name);
	size_t		i;

	if (len == 0 || len > SK_MAX_TOPIC_NAME)
		return false;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (i = 0; i < len; i++)
	{
		char		c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/*
 * Split "NAME:PARTITIONS" into *spec.  Returns false, with the reason in
 * errbuf, if either part is invalid.
 */
static bool
parse_topic_spec(const char *arg, SkTopicSpec *spec, char *errbuf,
				 size_t errsize)
{
	const char *colon = strrchr(arg, ':');
	size_t		namelen;
	long		partitions;

	if (colon == NULL)
	{
		snprintf(errbuf, errsize,
				 "invalid topic \"%s\": expected NAME:PARTITIONS", arg);
		return false;
	}
	namelen = (size_t) (colon - arg);
	if (namelen == 0 || namelen > SK_MAX_TOPIC_NAME)
	{
		snprintf(errbuf, errsize, "invalid topic name in \"%s\"", arg);
		return false;
	}
	memcpy(spec->name, arg, namelen);
	spec->name[namelen] = '\0';
	if (!valid_topic_name(spec->name))
	{
		snprintf(errbuf, errsize,
				 "invalid topic name \"%s\": use 1 to %d of A-Z a-z 0-9 . _ -",
				 spec->name, SK_MAX_TOPIC_NAME);
		return false;
	}
	if (!parse_long(colon + 1, 1, SK_MAX_PARTITIONS, &partitions))
	{
		snprintf(errbuf, errsize,
				 "invalid partition count \"%s\" for topic \"%s\": expected 1 to %d",
				 colon + 1, spec->name, SK_MAX_PARTITIONS);
		return false;
	}
	spec->partitions = (int) partitions;
	return true;
}

/*
 * Resolve an API key given as a number or as a name from sk_api_keys
 * (case-insensitive).
 */
static bool
parse_apikey(const char *s, int16_t *out)
{
	long		v;
	size_t		i;

	if (parse_long(s, 0, SK_MAX_APIKEY - 1, &v))
	{
		*out = (int16_t) v;
		return true;
	}
	for (i = 0; i < sizeof(sk_api_keys) / sizeof(sk_api_keys[0]); i++)
	{
		if (strcasecmp(s, sk_api_keys[i].name) == 0)
		{
			*out = sk_api_keys[i].key;
			return true;
		}
	}
	return false;
}

/*
 * Resolve an error code given as a number or as a name.  Names are those of
 * rd_kafka_get_err_descs(): the enum name without "RD_KAFKA_RESP_ERR_"
 * (accepted too), matched case-insensitively.  Numbers must be codes that
 * librdkafka knows.
 */
static bool
parse_errcode(const char *s, rd_kafka_resp_err_t *out)
{
	const struct rd_kafka_err_desc *descs;
	size_t		ndescs;
	size_t		i;
	long		v;
	const char *name = s;

	rd_kafka_get_err_descs(&descs, &ndescs);

	if (parse_long(s, INT_MIN, INT_MAX, &v))
	{
		for (i = 0; i < ndescs; i++)
		{
			if (descs[i].name != NULL && (long) descs[i].code == v)
			{
				*out = descs[i].code;
				return true;
			}
		}
		return false;
	}

	if (strncasecmp(name, "RD_KAFKA_RESP_ERR_", 18) == 0)
		name += 18;
	/* The newer protocol name of NOT_LEADER_FOR_PARTITION. */
	if (strcasecmp(name, "NOT_LEADER_OR_FOLLOWER") == 0)
	{
		*out = RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION;
		return true;
	}
	for (i = 0; i < ndescs; i++)
	{
		if (descs[i].name != NULL && strcasecmp(descs[i].name, name) == 0)
		{
			*out = descs[i].code;
			return true;
		}
	}
	return false;
}

/* Broker id 1..N, or "all" (-1) where allow_all. */
static bool
parse_broker_id(const char *s, bool allow_all, int32_t *out)
{
	long		v;

	if (allow_all && strcasecmp(s, "all") == 0)
	{
		*out = -1;
		return true;
	}
	if (!parse_long(s, 1, sk_broker_cnt, &v))
		return false;
	*out = (int32_t) v;
	return true;
}

static int
min_int(int a, int b)
{
	return a < b ? a : b;
}

static int
max_int(int a, int b)
{
	return a > b ? a : b;
}

/* ---------------------------------------------------------------------
 * Broker mode: control commands
 * ---------------------------------------------------------------------
 */

/*
 * Format "error: <reason>" into reply.  Returns false for the caller's
 * convenience.
 */
static bool
reply_error(char *reply, size_t size, const char *fmt,...)
{
	va_list		ap;
	int			n;

	n = snprintf(reply, size, "error: ");
	va_start(ap, fmt);
	vsnprintf(reply + n, size - (size_t) n, fmt, ap);
	va_end(ap);
	return false;
}

/*
 * Run one control command line against the mock cluster and write the reply
 * line (without newline) into reply: "ok" or "error: <reason>".  Returns
 * whether the command succeeded.  The line is modified (tokenised).
 */
static bool
run_command(char *line, char *reply, size_t size)
{
	char	   *argv[SK_CTL_MAX_ARGS];
	int			argc = 0;
	char	   *save = NULL;
	char	   *tok;
	const char *cmd;
	rd_kafka_resp_err_t err;
	int32_t		broker_id;
	int16_t		apikey;
	rd_kafka_resp_err_t code;
	long		num;
	long		count = 1;

	for (tok = strtok_r(line, " \t", &save); tok != NULL;
		 tok = strtok_r(NULL, " \t", &save))
	{
		if (argc == SK_CTL_MAX_ARGS)
			return reply_error(reply, size, "too many arguments");
		argv[argc++] = tok;
	}
	if (argc == 0)
		return reply_error(reply, size, "empty command");
	cmd = argv[0];

	if (strcmp(cmd, "ping") == 0)
	{
		if (argc != 1)
			return reply_error(reply, size, "usage: ping");
	}
	else if (strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0)
	{
		bool		down = (cmd[0] == 'd');

		if (argc != 2)
			return reply_error(reply, size, "usage: %s ID", cmd);
		if (!parse_broker_id(argv[1], true, &broker_id))
			return reply_error(reply, size,
							   "invalid broker id \"%s\": expected 1 to %d or all",
							   argv[1], sk_broker_cnt);
		err = down ? rd_kafka_mock_broker_set_down(sk_mcluster, broker_id)
			: rd_kafka_mock_broker_set_up(sk_mcluster, broker_id);
		if (err)
			return reply_error(reply, size, "could not set broker %s %s: %s",
							   argv[1], cmd, rd_kafka_err2str(err));
	}
	else if (strcmp(cmd, "rtt") == 0)
	{
		if (argc != 3)
			return reply_error(reply, size, "usage: rtt ID MS");
		if (!parse_broker_id(argv[1], true, &broker_id))
			return reply_error(reply, size,
							   "invalid broker id \"%s\": expected 1 to %d or all",
							   argv[1], sk_broker_cnt);
		if (!parse_long(argv[2], 0, SK_MAX_RTT_MS, &num))
			return reply_error(reply, size,
							   "invalid round-trip time \"%s\": expected 0 to %d ms",
							   argv[2], SK_MAX_RTT_MS);
		err = rd_kafka_mock_broker_set_rtt(sk_mcluster, broker_id, (int) num);
		if (err)
			return reply_error(reply, size,
							   "could not set round-trip time of broker %s: %s",
							   argv[1], rd_kafka_err2str(err));
	}
	else if (strcmp(cmd, "error") == 0)
	{
		rd_kafka_resp_err_t *codes;
		long		i;

		if (argc != 3 && argc != 4)
			return reply_error(reply, size,
							   "usage: error APIKEY ERRCODE [COUNT]");
		if (!parse_apikey(argv[1], &apikey))
			return reply_error(reply, size, "unrecognized API key \"%s\"",
							   argv[1]);
		if (!parse_errcode(argv[2], &code))
			return reply_error(reply, size, "unrecognized error code \"%s\"",
							   argv[2]);
		if (argc == 4 && !parse_long(argv[3], 1, SK_MAX_ERROR_COUNT, &count))
			return reply_error(reply, size,
							   "invalid count \"%s\": expected 1 to %d",
							   argv[3], SK_MAX_ERROR_COUNT);
		codes = malloc(sizeof(*codes) * (size_t) count);
		if (codes == NULL)
			return reply_error(reply, size, "out of memory");
		for (i = 0; i < count; i++)
			codes[i] = code;
		rd_kafka_mock_push_request_errors_array(sk_mcluster, apikey,
												(size_t) count, codes);
		free(codes);
		sk_cluster_errors_pushed[apikey] = true;
	}
	else if (strcmp(cmd, "broker-error") == 0)
	{
		long		i;

		if (argc != 5 && argc != 6)
			return reply_error(reply, size,
							   "usage: broker-error ID APIKEY ERRCODE RTT_MS [COUNT]");
		if (!parse_broker_id(argv[1], false, &broker_id))
			return reply_error(reply, size,
							   "invalid broker id \"%s\": expected 1 to %d",
							   argv[1], sk_broker_cnt);
		if (!parse_apikey(argv[2], &apikey))
			return reply_error(reply, size, "unrecognized API key \"%s\"",
							   argv[2]);
		if (!parse_errcode(argv[3], &code))
			return reply_error(reply, size, "unrecognized error code \"%s\"",
							   argv[3]);
		if (!parse_long(argv[4], 0, SK_MAX_RTT_MS, &num))
			return reply_error(reply, size,
							   "invalid round-trip time \"%s\": expected 0 to %d ms",
							   argv[4], SK_MAX_RTT_MS);
		if (argc == 6 && !parse_long(argv[5], 1, SK_MAX_ERROR_COUNT, &count))
			return reply_error(reply, size,
							   "invalid count \"%s\": expected 1 to %d",
							   argv[5], SK_MAX_ERROR_COUNT);
		for (i = 0; i < count; i++)
		{
			err = rd_kafka_mock_broker_push_request_error_rtts(sk_mcluster,
															   broker_id,
															   apikey, 1,
															   code,
															   (int) num);
			if (err)
				return reply_error(reply, size,
								   "could not push error on broker %s: %s",
								   argv[1], rd_kafka_err2str(err));
		}
		sk_broker_errors_pushed[apikey] = true;
	}
	else if (strcmp(cmd, "topic") == 0)
	{
		SkTopicSpec spec;
		char		spec_arg[SK_CTL_LINE_MAX + 2];
		char		reason[SK_CTL_LINE_MAX];

		if (argc != 3)
			return reply_error(reply, size, "usage: topic NAME PARTITIONS");
		snprintf(spec_arg, sizeof(spec_arg), "%s:%s", argv[1], argv[2]);
		if (!parse_topic_spec(spec_arg, &spec, reason, sizeof(reason)))
			return reply_error(reply, size, "%s", reason);
		err = rd_kafka_mock_topic_create(sk_mcluster, spec.name,
										 spec.partitions,
										 min_int(sk_broker_cnt, 3));
		if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
			return reply_error(reply, size,
							   "topic \"%s\" already exists (a metadata request may have auto-created it)",
							   spec.name);
		if (err)
			return reply_error(reply, size, "could not create topic \"%s\": %s",
							   spec.name, rd_kafka_err2str(err));
	}
	else if (strcmp(cmd, "clear") == 0)
	{
		int			k;
		int32_t		b;
		size_t		left = 0;

		if (argc != 1)
			return reply_error(reply, size, "usage: clear");
		err = rd_kafka_mock_broker_set_up(sk_mcluster, -1);
		if (!err)
			err = rd_kafka_mock_broker_set_rtt(sk_mcluster, -1, 0);
		if (err)
			return reply_error(reply, size, "could not reset brokers: %s",
							   rd_kafka_err2str(err));
		for (k = 0; k < SK_MAX_APIKEY; k++)
		{
			if (sk_cluster_errors_pushed[k])
				rd_kafka_mock_clear_request_errors(sk_mcluster, (int16_t) k);
			sk_cluster_errors_pushed[k] = false;
		}

		/*
		 * librdkafka 2.0.2 has no call to clear a broker's error stack; only
		 * report what is still queued there.
		 */
		for (k = 0; k < SK_MAX_APIKEY; k++)
		{
			if (!sk_broker_errors_pushed[k])
				continue;
			for (b = 1; b <= sk_broker_cnt; b++)
			{
				size_t		cnt = 0;

				if (rd_kafka_mock_broker_error_stack_cnt(sk_mcluster, b,
														 (int16_t) k,
														 &cnt) == 0)
					left += cnt;
			}
		}
		if (left > 0)
			sk_log("clear: %zu error(s) pushed with broker-error remain queued; librdkafka cannot clear them",
				   left);
	}
	else
		return reply_error(reply, size, "unrecognized command \"%s\"", cmd);

	snprintf(reply, size, "ok");
	return true;
}

/* ---------------------------------------------------------------------
 * Broker mode: control socket
 * ---------------------------------------------------------------------
 */

static bool
set_nonblock_cloexec(int fd)
{
	int			fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return false;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return false;
	return true;
}

static bool
fill_sockaddr(const char *path, struct sockaddr_un *addr)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(addr->sun_path))
		return false;
	strcpy(addr->sun_path, path);
	return true;
}

/*
 * Listen on the control socket path.  A stale socket is removed, but not a
 * socket some process still accepts on, nor a file that is not a socket.
 * Returns false after logging the reason.
 */
static bool
open_control_socket(const char *path)
{
	struct sockaddr_un addr;
	struct stat st;
	int			fd;

	if (!fill_sockaddr(path, &addr))
	{
		sk_log("control socket path \"%s\" is too long (at most %zu bytes)",
			   path, sizeof(addr.sun_path) - 1);
		return false;
	}

	if (lstat(path, &st) == 0)
	{
		if (!S_ISSOCK(st.st_mode))
		{
			sk_log("cannot use \"%s\" as control socket: the file exists and is not a socket",
				   path);
			return false;
		}
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd >= 0 &&
			connect(fd, (struct sockaddr *) &addr, sizeof(addr)) == 0)
		{
			close(fd);
			sk_log("control socket \"%s\" is in use by another process", path);
			return false;
		}
		if (fd >= 0)
			close(fd);
		if (unlink(path) < 0 && errno != ENOENT)
		{
			sk_log("could not remove stale control socket \"%s\": %s",
				   path, strerror(errno));
			return false;
		}
	}

	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
	{
		sk_log("could not create control socket: %s", strerror(errno));
		return false;
	}
	if (bind(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0)
	{
		sk_log("could not bind control socket \"%s\": %s",
			   path, strerror(errno));
		close(fd);
		return false;
	}
	/* From here on the cleanup path removes the socket file. */
	sk_listen_fd = fd;
	if (listen(fd, SK_CTL_MAX_CLIENTS) < 0 || !set_nonblock_cloexec(fd))
	{
		sk_log("could not listen on control socket \"%s\": %s",
			   path, strerror(errno));
		return false;
	}
	return true;
}

/* Send a reply line and close the connection; errors are ignored. */
static void
client_finish(SkCtlClient *client, const char *reply)
{
	char		line[SK_CTL_REPLY_MAX + 1];
	size_t		len;

	if (reply != NULL)
	{
		len = strlen(reply);
		if (len > SK_CTL_REPLY_MAX)
			len = SK_CTL_REPLY_MAX;
		memcpy(line, reply, len);
		line[len++] = '\n';
		/* The reply fits the empty socket buffer: one send suffices. */
		if (send(client->fd, line, len, MSG_NOSIGNAL) < 0 && sk_verbose)
			sk_log("could not send control reply: %s", strerror(errno));
	}
	close(client->fd);
	client->fd = -1;
	client->len = 0;
}

static void
accept_clients(void)
{
	for (;;)
	{
		int			fd = accept(sk_listen_fd, NULL, NULL);
		int			i;

		if (fd < 0)
		{
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
				errno != ECONNABORTED)
				sk_log("could not accept control connection: %s",
					   strerror(errno));
			return;
		}
		if (!set_nonblock_cloexec(fd))
		{
			close(fd);
			continue;
		}
		for (i = 0; i < SK_CTL_MAX_CLIENTS; i++)
		{
			if (sk_clients[i].fd < 0)
				break;
		}
		if (i == SK_CTL_MAX_CLIENTS)
		{
			SkCtlClient tmp;

			tmp.fd = fd;
			client_finish(&tmp, "error: too many control connections");
			continue;
		}
		sk_clients[i].fd = fd;
		sk_clients[i].len = 0;
		sk_clients[i].deadline_ms = now_ms() + SK_CTL_CLIENT_TIMEOUT_MS;
	}
}

/*
 * Read what a control connection has sent; once a whole line (or EOF) is in,
 * run it and answer.
 */
static void
serve_client(SkCtlClient *client)
{
	char		reply[SK_CTL_REPLY_MAX];
	char	   *nl;
	ssize_t		n;
	bool		eof = false;

	n = read(client->fd, client->buf + client->len,
			 SK_CTL_LINE_MAX - client->len);
	if (n < 0)
	{
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		client_finish(client, NULL);
		return;
	}
	if (n == 0)
		eof = true;
	client->len += (size_t) n;
	client->buf[client->len] = '\0';

	nl = memchr(client->buf, '\n', client->len);
	if (nl == NULL && !eof)
	{
		if (client->len == SK_CTL_LINE_MAX)
			client_finish(client, "error: command line too long");
		return;
	}
	if (nl != NULL)
		*nl = '\0';
	if (client->len == 0)
	{
		client_finish(client, NULL);
		return;
	}
	n = (ssize_t) strlen(client->buf);
	if (n > 0 && client->buf[n - 1] == '\r')
		client->buf[n - 1] = '\0';

	if (sk_verbose)
		sk_log("control: %s", client->buf);
	run_command(client->buf, reply, sizeof(reply));
	if (sk_verbose || strncmp(reply, "error", 5) == 0)
		sk_log("control reply: %s", reply);
	client_finish(client, reply);
}

/* ---------------------------------------------------------------------
 * Broker mode: start, loop, stop
 * ---------------------------------------------------------------------
 */

static void
handle_signal(int signo)
{
	int			save_errno = errno;
	unsigned char b = (unsigned char) signo;

	if (write(sk_signal_pipe[1], &b, 1) < 0)
	{
		/* The pipe is full: a stop is already pending. */
	}
	errno = save_errno;
}

/*
 * Write the bootstrap list to PATH.tmp.<pid>, fsync it and rename it onto
 * PATH, so that readers see either no file or the whole list.
 */
static bool
publish_bootstrap(const char *path, const char *bootstraps)
{
	char	   *tmp;
	size_t		tmplen = strlen(path) + 32;
	int			fd;
	size_t		len = strlen(bootstraps);
	size_t		off = 0;

	tmp = malloc(tmplen);
	if (tmp == NULL)
	{
		sk_log("out of memory");
		return false;
	}
	snprintf(tmp, tmplen, "%s.tmp.%ld", path, (long) getpid());

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
	{
		sk_log("could not create file \"%s\": %s", tmp, strerror(errno));
		free(tmp);
		return false;
	}
	while (off <= len)
	{
		/* Write the list and then its newline. */
		const char *p = off < len ? bootstraps + off : "\n";
		size_t		want = off < len ? len - off : 1;
		ssize_t		n = write(fd, p, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		off += (size_t) n;
	}
	if (fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0)
	{
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail;
	free(tmp);
	return true;

fail:
	sk_log("could not write bootstrap file \"%s\": %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	return false;
}

/*
 * Release everything the broker mode made, in reverse order.  Safe to call
 * at any point of start-up.
 */
static void
broker_cleanup(void)
{
	int			i;

	for (i = 0; i < SK_CTL_MAX_CLIENTS; i++)
	{
		if (sk_clients[i].fd >= 0)
			client_finish(&sk_clients[i], "error: broker is shutting down");
	}
	if (sk_listen_fd >= 0)
	{
		close(sk_listen_fd);
		sk_listen_fd = -1;
		if (unlink(sk_control_path) < 0 && errno != ENOENT)
			sk_log("could not remove control socket \"%s\": %s",
				   sk_control_path, strerror(errno));
	}
	if (sk_bootstrap_written)
	{
		if (unlink(sk_bootstrap_path) < 0 && errno != ENOENT)
			sk_log("could not remove bootstrap file \"%s\": %s",
				   sk_bootstrap_path, strerror(errno));
		sk_bootstrap_written = false;
	}
	if (sk_mcluster != NULL)
	{
		rd_kafka_mock_cluster_destroy(sk_mcluster);
		sk_mcluster = NULL;
	}
	if (sk_rk != NULL)
	{
		rd_kafka_destroy(sk_rk);
		sk_rk = NULL;
	}
	for (i = 0; i < 2; i++)
	{
		if (sk_signal_pipe[i] >= 0)
		{
			close(sk_signal_pipe[i]);
			sk_signal_pipe[i] = -1;
		}
	}
}

/* librdkafka log callback: one line on stderr per message. */
static void
log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void) rk;
	fprintf(stderr, "%s: librdkafka %d %s: %s\n", SK_PROGNAME, level, fac, buf);
}

/*
 * Create the rd_kafka_t that the mock cluster needs, then the cluster and
 * the start-up topics.
 */
static bool
start_cluster(const SkTopicSpec *topics, int ntopics)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char		errstr[512];
	int			i;

	rd_kafka_conf_set_log_cb(conf, log_cb);
	if (rd_kafka_conf_set(conf, "log_level", sk_verbose ? "7" : "3",
						  errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
		(sk_verbose &&
		 rd_kafka_conf_set(conf, "debug", "mock", errstr,
						   sizeof(errstr)) != RD_KAFKA_CONF_OK))
	{
		sk_log("could not configure librdkafka: %s", errstr);
		rd_kafka_conf_destroy(conf);
		return false;
	}
	sk_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (sk_rk == NULL)
	{
		/* rd_kafka_new() keeps conf only on success. */
		rd_kafka_conf_destroy(conf);
		sk_log("could not create librdkafka handle: %s", errstr);
		return false;
	}

	sk_mcluster = rd_kafka_mock_cluster_new(sk_rk, sk_broker_cnt);
	if (sk_mcluster == NULL)
	{
		sk_log("could not create mock cluster of %d brokers", sk_broker_cnt);
		return false;
	}

	for (i = 0; i < ntopics; i++)
	{
		rd_kafka_resp_err_t err;

		err = rd_kafka_mock_topic_create(sk_mcluster, topics[i].name,
										 topics[i].partitions,
										 min_int(sk_broker_cnt, 3));
		if (err)
		{
			sk_log("could not create topic \"%s\": %s",
				   topics[i].name, rd_kafka_err2str(err));
			return false;
		}
	}
	return true;
}

/*
 * Serve the control socket until SIGTERM or SIGINT.  Returns the exit code.
 */
static int
broker_loop(void)
{
	for (;;)
	{
		struct pollfd pfds[2 + SK_CTL_MAX_CLIENTS];
		int			client_of[2 + SK_CTL_MAX_CLIENTS];
		int			nfds = 0;
		int			timeout = -1;
		int			rc;
		int			i;
		int64_t		now = now_ms();

		pfds[nfds].fd = sk_signal_pipe[0];
		pfds[nfds].events = POLLIN;
		client_of[nfds++] = -1;
		if (sk_listen_fd >= 0)
		{
			pfds[nfds].fd = sk_listen_fd;
			pfds[nfds].events = POLLIN;
			client_of[nfds++] = -1;
		}
		for (i = 0; i < SK_CTL_MAX_CLIENTS; i++)
		{
			int			left;

			if (sk_clients[i].fd < 0)
				continue;
			if (sk_clients[i].deadline_ms <= now)
			{
				client_finish(&sk_clients[i],
							  "error: timed out waiting for a command line");
				continue;
			}
			left = (int) (sk_clients[i].deadline_ms - now);
			if (timeout < 0 || left < timeout)
				timeout = left;
			pfds[nfds].fd = sk_clients[i].fd;
			pfds[nfds].events = POLLIN;
			client_of[nfds++] = i;
		}

		rc = poll(pfds, (nfds_t) nfds, timeout);
		if (rc < 0)
		{
			if (errno == EINTR)
				continue;
			sk_log("could not wait for events: %s", strerror(errno));
			return SK_EXIT_FAILURE;
		}

		if (pfds[0].revents != 0)
		{
			unsigned char signo = 0;

			if (read(sk_signal_pipe[0], &signo, 1) == 1 && sk_verbose)
				sk_log("received signal %d, shutting down", signo);
			return SK_EXIT_OK;
		}
		for (i = 1; i < nfds; i++)
		{
			if (pfds[i].revents == 0)
				continue;
			if (client_of[i] < 0)
				accept_clients();
			else if (sk_clients[client_of[i]].fd >= 0)
				serve_client(&sk_clients[client_of[i]]);
		}
	}
}

static int
broker_main(int argc, char **argv)
{
	SkTopicSpec *topics;
	int			ntopics = 0;
	int			i;
	int			rc;
	long		num;
	char		errbuf[512];
	struct sigaction sa;
	sigset_t	stopsigs;
	const char *bootstraps;

	topics = calloc((size_t) argc, sizeof(*topics));
	if (topics == NULL)
	{
		sk_log("out of memory");
		return SK_EXIT_FAILURE;
	}

	for (i = 1; i < argc; i++)
	{
		const char *arg = argv[i];

		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
		{
			usage(stdout);
			free(topics);
			return SK_EXIT_OK;
		}
		if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0)
		{
			sk_verbose = true;
			continue;
		}
		if (strcmp(arg, "--brokers") != 0 && strcmp(arg, "--topic") != 0 &&
			strcmp(arg, "--bootstrap-file") != 0 &&
			strcmp(arg, "--control") != 0)
		{
			free(topics);
			return usage_error("unrecognized argument \"%s\"", arg);
		}
		if (i + 1 >= argc)
		{
			free(topics);
			return usage_error("option \"%s\" needs a value", arg);
		}
		i++;
		if (strcmp(arg, "--brokers") == 0)
		{
			if (!parse_long(argv[i], 1, SK_MAX_BROKERS, &num))
			{
				free(topics);
				return usage_error("invalid value for option \"--brokers\": \"%s\" (expected 1 to %d)",
								   argv[i], SK_MAX_BROKERS);
			}
			sk_broker_cnt = (int) num;
		}
		else if (strcmp(arg, "--topic") == 0)
		{
			if (!parse_topic_spec(argv[i], &topics[ntopics], errbuf,
								  sizeof(errbuf)))
			{
				free(topics);
				return usage_error("%s", errbuf);
			}
			ntopics++;
		}
		else if (strcmp(arg, "--bootstrap-file") == 0)
			sk_bootstrap_path = argv[i];
		else
			sk_control_path = argv[i];
	}
	if (sk_bootstrap_path == NULL || sk_bootstrap_path[0] == '\0')
	{
		free(topics);
		return usage_error("option \"--bootstrap-file\" is required");
	}
	if (sk_control_path != NULL && sk_control_path[0] == '\0')
	{
		free(topics);
		return usage_error("option \"--control\" needs a non-empty path");
	}

	for (i = 0; i < SK_CTL_MAX_CLIENTS; i++)
		sk_clients[i].fd = -1;

	/*
	 * Route SIGINT and SIGTERM through a self-pipe, and keep them blocked
	 * until the loop runs so that librdkafka's threads, created meanwhile,
	 * inherit a mask that leaves them to the main thread.
	 */
	if (pipe(sk_signal_pipe) < 0 || !set_nonblock_cloexec(sk_signal_pipe[0]) ||
		!set_nonblock_cloexec(sk_signal_pipe[1]))
	{
		sk_log("could not create signal pipe: %s", strerror(errno));
		broker_cleanup();
		free(topics);
		return SK_EXIT_FAILURE;
	}
	sigemptyset(&stopsigs);
	sigaddset(&stopsigs, SIGINT);
	sigaddset(&stopsigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stopsigs, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handle_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!start_cluster(topics, ntopics) ||
		(sk_control_path != NULL && !open_control_socket(sk_control_path)))
	{
		broker_cleanup();
		free(topics);
		return SK_EXIT_FAILURE;
	}
	free(topics);

	bootstraps = rd_kafka_mock_cluster_bootstraps(sk_mcluster);
	if (!publish_bootstrap(sk_bootstrap_path, bootstraps))
	{
		broker_cleanup();
		return SK_EXIT_FAILURE;
	}
	sk_bootstrap_written = true;
	printf("%s\n", bootstraps);
	fflush(stdout);

	pthread_sigmask(SIG_UNBLOCK, &stopsigs, NULL);
	rc = broker_loop();
	broker_cleanup();
	return rc;
}

/* ---------------------------------------------------------------------
 * ctl mode
 * ---------------------------------------------------------------------
 */

/*
 * Connect to the control socket before deadline.  Returns the descriptor,
 * or -1 with errno set.
 */
static int
ctl_connect(const char *path, int64_t deadline)
{
	struct sockaddr_un addr;
	int			fd;

	if (!fill_sockaddr(path, &addr))
	{
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (!set_nonblock_cloexec(fd))
		goto fail;
	for (;;)
	{
		struct pollfd pfd;
		int			soerr = 0;
		socklen_t	sl = sizeof(soerr);

		if (connect(fd, (struct sockaddr *) &addr, sizeof(addr)) == 0)
			return fd;
		if (errno == EAGAIN || errno == EINTR)
		{
			/* Listen backlog full: retry a little later. */
			if (ms_until(deadline) == 0)
			{
				errno = ETIMEDOUT;
				goto fail;
			}
			poll(NULL, 0, min_int(50, ms_until(deadline)));
			continue;
		}
		if (errno != EINPROGRESS)
			goto fail;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, ms_until(deadline)) <= 0)
		{
			errno = ETIMEDOUT;
			goto fail;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			goto fail;
		if (soerr != 0)
		{
			errno = soerr;
			goto fail;
		}
		return fd;
	}

fail:
	{
		int			save_errno = errno;

		close(fd);
		errno = save_errno;
	}
	return -1;
}

static int
ctl_main(int argc, char **argv)
{
	const char *path;
	char		line[SK_CTL_LINE_MAX + 1];
	char		reply[SK_CTL_REPLY_MAX + 1];
	size_t		len = 0;
	size_t		off;
	size_t		rlen = 0;
	int64_t		deadline = now_ms() + SK_CTL_TIMEOUT_MS;
	int			fd;
	int			i;
	char	   *nl;

	if (argc < 4)
		return usage_error("ctl needs a socket path and a command");
	path = argv[2];
	for (i = 3; i < argc; i++)
	{
		size_t		alen = strlen(argv[i]);

		if (len + alen + 2 > SK_CTL_LINE_MAX)
			return usage_error("command is too long (at most %d bytes)",
							   SK_CTL_LINE_MAX - 1);
		if (i > 3)
			line[len++] = ' ';
		memcpy(line + len, argv[i], alen);
		len += alen;
	}
	line[len++] = '\n';

	signal(SIGPIPE, SIG_IGN);
	fd = ctl_connect(path, deadline);
	if (fd < 0)
	{
		sk_log("could not connect to control socket \"%s\": %s",
			   path, strerror(errno));
		return SK_EXIT_USAGE;
	}

	for (off = 0; off < len;)
	{
		struct pollfd pfd = {fd, POLLOUT, 0};
		ssize_t		n;

		if (poll(&pfd, 1, ms_until(deadline)) <= 0)
		{
			sk_log("timed out sending to control socket \"%s\"", path);
			close(fd);
			return SK_EXIT_USAGE;
		}
		n = send(fd, line + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
		{
			sk_log("could not send to control socket \"%s\": %s",
				   path, strerror(errno));
			close(fd);
			return SK_EXIT_USAGE;
		}
		off += (size_t) n;
	}

	for (;;)
	{
		struct pollfd pfd = {fd, POLLIN, 0};
		ssize_t		n;

		if (rlen == SK_CTL_REPLY_MAX)
			break;
		if (poll(&pfd, 1, ms_until(deadline)) <= 0)
		{
			sk_log("timed out waiting for a reply on control socket \"%s\"",
				   path);
			close(fd);
			return SK_EXIT_USAGE;
		}
		n = read(fd, reply + rlen, SK_CTL_REPLY_MAX - rlen);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
		{
			sk_log("could not read from control socket \"%s\": %s",
				   path, strerror(errno));
			close(fd);
			return SK_EXIT_USAGE;
		}
		if (n == 0)
			break;
		rlen += (size_t) n;
		if (memchr(reply, '\n', rlen) != NULL)
			break;
	}
	close(fd);
	reply[rlen] = '\0';
	if ((nl = strchr(reply, '\n')) != NULL)
		*nl = '\0';

	if (strcmp(reply, "ok") == 0)
	{
		printf("ok\n");
		return SK_EXIT_OK;
	}
	if (strncmp(reply, "error: ", 7) == 0)
	{
		fprintf(stderr, "%s\n", reply);
		return SK_EXIT_FAILURE;
	}
	sk_log("unexpected reply from control socket \"%s\": \"%s\"", path, reply);
	return SK_EXIT_USAGE;
}

/* ---------------------------------------------------------------------
 * create-topics mode
 * ---------------------------------------------------------------------
 */

/* The topic's entry in md, or NULL. */
static const rd_kafka_metadata_topic_t *
find_topic(const struct rd_kafka_metadata *md, const char *name)
{
	int			i;

	for (i = 0; i < md->topic_cnt; i++)
	{
		if (strcmp(md->topics[i].topic, name) == 0)
			return &md->topics[i];
	}
	return NULL;
}

/* Whether a topic has no error and a leader for every partition. */
static bool
topic_is_ready(const rd_kafka_metadata_topic_t *t)
{
	int			i;

	if (t->err || t->partition_cnt <= 0)
		return false;
	for (i = 0; i < t->partition_cnt; i++)
	{
		if (t->partitions[i].leader < 0)
			return false;
	}
	return true;
}

/*
 * Wait until deadline for every topic of specs to appear in the cluster
 * metadata with a leader for each partition, then check its partition
 * count.  Prints one line per topic, on stdout when it is as wanted and on
 * stderr otherwise.  Returns whether all are as wanted.
 */
static bool
verify_topics(rd_kafka_t *rk, const SkTopicSpec *specs, int nspecs,
			  int64_t deadline)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
	bool		ok = true;
	int			i;

	for (;;)
	{
		bool		ready = true;
		int			wait_ms = ms_until(deadline);

		if (md != NULL)
			rd_kafka_metadata_destroy(md);
		md = NULL;
		/* All topics: asking for one by name could auto-create it. */
		err = rd_kafka_metadata(rk, 1, NULL, &md, wait_ms > 0 ? wait_ms : 1);
		if (err)
		{
			md = NULL;
			ready = false;
		}
		for (i = 0; ready && i < nspecs; i++)
		{
			const rd_kafka_metadata_topic_t *t = find_topic(md, specs[i].name);

			if (t == NULL || !topic_is_ready(t))
				ready = false;
		}
		if (ready || ms_until(deadline) == 0)
			break;
		poll(NULL, 0, min_int(200, ms_until(deadline)));
	}
	if (md == NULL)
	{
		sk_log("could not read the cluster metadata to check the topics: %s",
			   rd_kafka_err2str(err));
		return false;
	}

	for (i = 0; i < nspecs; i++)
	{
		const SkTopicSpec *spec = &specs[i];
		const rd_kafka_metadata_topic_t *t = find_topic(md, spec->name);
		const char *what = spec->existed ? "already exists" : "was created";

		if (t == NULL)
			sk_log("topic \"%s\" %s but is not in the cluster metadata",
				   spec->name, what);
		else if (t->partition_cnt != spec->partitions)
			sk_log("topic \"%s\" %s with %d partitions, not %d",
				   spec->name, what, t->partition_cnt, spec->partitions);
		else if (!topic_is_ready(t))
			sk_log("topic \"%s\" %s but some of its partitions have no leader: %s",
				   spec->name, what, rd_kafka_err2str(t->err));
		else
		{
			if (spec->existed)
				printf("topic \"%s\" already exists with %d partitions\n",
					   spec->name, spec->partitions);
			else
				printf("created topic \"%s\" with %d partitions\n",
					   spec->name, spec->partitions);
			continue;
		}
		ok = false;
	}
	rd_kafka_metadata_destroy(md);
	return ok;
}

/* Did the broker refuse the replication factor of the request? */
static bool
refused_factor(rd_kafka_resp_err_t err)
{
	return err == RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR ||
		err == RD_KAFKA_RESP_ERR_INVALID_REQUEST ||
		err == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE;
}

/*
 * Send one CreateTopics request for the pending topics of specs, with the
 * given replication factor (-1: the broker's default), and wait for its
 * result until deadline.  Topics created or already there stop being
 * pending and are appended to verify.  A topic (or the whole request)
 * refused for its replication factor stays pending and sets *refused;
 * any other failure is logged and returns false.
 */
static bool
request_topics(rd_kafka_t *rk, SkTopicSpec *specs, int nspecs, int factor,
			   int64_t deadline, SkTopicSpec *verify, int *nverify,
			   bool *refused)
{
	rd_kafka_NewTopic_t **newtopics = calloc((size_t) nspecs, sizeof(*newtopics));
	rd_kafka_AdminOptions_t *options = NULL;
	rd_kafka_queue_t *queue = NULL;
	rd_kafka_event_t *ev = NULL;
	char		errstr[512];
	int			nnew = 0;
	bool		ok = false;
	int			i;

	*refused = false;
	if (newtopics == NULL)
	{
		sk_log("out of memory");
		return false;
	}
	for (i = 0; i < nspecs; i++)
	{
		if (!specs[i].pending)
			continue;
		newtopics[nnew] = rd_kafka_NewTopic_new(specs[i].name,
												specs[i].partitions, factor,
												errstr, sizeof(errstr));
		if (newtopics[nnew] == NULL)
		{
			sk_log("invalid topic \"%s\": %s", specs[i].name, errstr);
			goto done;
		}
		nnew++;
	}

	options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	/* The request ends before the deadline, so its own error is reported. */
	if (rd_kafka_AdminOptions_set_request_timeout(options,
												  max_int(1000, ms_until(deadline) - 2000),
												  errstr, sizeof(errstr)) ||
		rd_kafka_AdminOptions_set_operation_timeout(options,
													max_int(1000, ms_until(deadline) - 7000),
													errstr, sizeof(errstr)))
	{
		sk_log("could not set admin options: %s", errstr);
		goto done;
	}
	queue = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, newtopics, (size_t) nnew, options, queue);

	/* Other event types cannot arrive on this queue, but skip them. */
	while (ms_until(deadline) > 0)
	{
		ev = rd_kafka_queue_poll(queue, ms_until(deadline));
		if (ev == NULL || rd_kafka_event_type(ev) ==
			RD_KAFKA_EVENT_CREATETOPICS_RESULT)
			break;
		rd_kafka_event_destroy(ev);
		ev = NULL;
	}
	if (ev != NULL && refused_factor(rd_kafka_event_error(ev)))
	{
		*refused = true;
		ok = true;
	}
	else if (ev == NULL || rd_kafka_event_error(ev))
	{
		sk_log("could not create topics: %s",
			   ev == NULL ? "timed out waiting for the result" :
			   rd_kafka_event_error_string(ev));
		if (ev == NULL ||
			rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR__TIMED_OUT)
			fprintf(stderr,
					"hint: Check that the brokers are reachable.  The mock cluster of %s does not implement CreateTopics: use its --topic option or its \"topic\" control command instead.\n",
					SK_PROGNAME);
	}
	else
	{
		const rd_kafka_CreateTopics_result_t *res;
		const rd_kafka_topic_result_t **results;
		size_t		nresults;
		size_t		r;

		ok = true;
		res = rd_kafka_event_CreateTopics_result(ev);
		results = rd_kafka_CreateTopics_result_topics(res, &nresults);
		for (r = 0; r < nresults; r++)
		{
			const char *name = rd_kafka_topic_result_name(results[r]);
			rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[r]);
			const char *msg = rd_kafka_topic_result_error_string(results[r]);
			SkTopicSpec *spec = NULL;

			for (i = 0; i < nspecs; i++)
			{
				if (specs[i].pending && strcmp(specs[i].name, name) == 0)
					spec = &specs[i];
			}
			if (spec == NULL)
				continue;
			if (err == RD_KAFKA_RESP_ERR_NO_ERROR ||
				err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
			{
				spec->existed = (err != RD_KAFKA_RESP_ERR_NO_ERROR);
				spec->pending = false;
				verify[(*nverify)++] = *spec;
				continue;
			}
			if (refused_factor(err))
			{
				*refused = true;
				continue;
			}
			sk_log("could not create topic \"%s\": %s",
				   name, msg != NULL ? msg : rd_kafka_err2str(err));
			ok = false;
		}
		if (nresults != (size_t) nnew)
		{
			sk_log("CreateTopics returned %zu results for %d topics",
				   nresults, nnew);
			ok = false;
		}
	}

done:
	if (ev != NULL)
		rd_kafka_event_destroy(ev);
	if (options != NULL)
		rd_kafka_AdminOptions_destroy(options);
	for (i = 0; i < nnew; i++)
		rd_kafka_NewTopic_destroy(newtopics[i]);
	if (queue != NULL)
		rd_kafka_queue_destroy(queue);
	free(newtopics);
	return ok;
}

/* The cluster's broker count, or 0 if the metadata cannot be read */
static int
broker_count(rd_kafka_t *rk, int64_t deadline)
{
	const struct rd_kafka_metadata *md;
	int			n;

	if (rd_kafka_metadata(rk, 0, NULL, &md, max_int(1, ms_until(deadline))) !=
		RD_KAFKA_RESP_ERR_NO_ERROR)
		return 0;
	n = md->broker_cnt;
	rd_kafka_metadata_destroy(md);
	return n;
}

static int
create_topics_main(int argc, char **argv)
{
	const char *bootstrap;
	SkTopicSpec *specs;
	SkTopicSpec *verify;
	int			nspecs;
	int			nverify = 0;
	int			i;
	char		errstr[512];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk = NULL;
	int64_t		deadline = now_ms() + SK_CREATE_TIMEOUT_MS;
	bool		ok;
	bool		refused;
	int			rc = SK_EXIT_FAILURE;

	if (argc < 4)
		return usage_error("create-topics needs a bootstrap list and at least one NAME:PARTITIONS");
	bootstrap = argv[2];
	nspecs = argc - 3;
	specs = calloc((size_t) nspecs, sizeof(*specs));
	verify = calloc((size_t) nspecs, sizeof(*verify));
	if (specs == NULL || verify == NULL)
	{
		sk_log("out of memory");
		free(specs);
		free(verify);
		return SK_EXIT_FAILURE;
	}
	for (i = 0; i < nspecs; i++)
	{
		if (!parse_topic_spec(argv[3 + i], &specs[i], errstr, sizeof(errstr)))
		{
			free(specs);
			free(verify);
			return usage_error("%s", errstr);
		}
		specs[i].pending = true;
	}

	conf = rd_kafka_conf_new();
	rd_kafka_conf_set_log_cb(conf, log_cb);
	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr,
						  sizeof(errstr)) != RD_KAFKA_CONF_OK ||
		rd_kafka_conf_set(conf, "log_level", "3", errstr,
						  sizeof(errstr)) != RD_KAFKA_CONF_OK)
	{
		sk_log("could not configure librdkafka: %s", errstr);
		rd_kafka_conf_destroy(conf);
		goto done;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
	{
		sk_log("could not create librdkafka handle: %s", errstr);
		rd_kafka_conf_destroy(conf);
		goto done;
	}

	/*
	 * Replication factor -1 is the broker's default, which brokers before
	 * 2.4 refuse: then ask again with min(3, brokers).
	 */
	ok = request_topics(rk, specs, nspecs, -1, deadline, verify, &nverify,
						&refused);
	if (ok && refused)
	{
		int			factor = min_int(3, broker_count(rk, deadline));

		if (factor < 1)
		{
			sk_log("could not read the cluster metadata to choose a replication factor");
			goto done;
		}
		printf("the brokers take no default replication factor: asking for %d\n",
			   factor);
		ok = request_topics(rk, specs, nspecs, factor, deadline, verify,
							&nverify, &refused);
		if (ok && refused)
		{
			sk_log("the brokers refused replication factor %d", factor);
			ok = false;
		}
	}

	/*
	 * New topics take a moment to reach every broker's metadata; give that
	 * phase at least a few seconds of its own.
	 */
	if (now_ms() + SK_METADATA_WAIT_MS > deadline)
		deadline = now_ms() + SK_METADATA_WAIT_MS;
	if (nverify > 0 && !verify_topics(rk, verify, nverify, deadline))
		ok = false;
	if (ok)
		rc = SK_EXIT_OK;

done:
	fflush(stdout);
	if (rk != NULL)
		rd_kafka_destroy(rk);
	free(verify);
	free(specs);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "ctl") == 0)
		return ctl_main(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "create-topics") == 0)
		return create_topics_main(argc, argv);
	return broker_main(argc, argv);
}
