// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* rp-store: the redplane state store, one replica. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "redplane/log.h"
#include "redplane/parse.h"
#include "redplane/steer.h"
#include "store.h"

#define DEFAULT_LEASE_MS	200
#define DEFAULT_MAX_FLOWS	1000000
#define DEFAULT_WAIT_QUEUE	1024
#define RCVBUF_BYTES		(4 << 20)
#define DEFAULT_FAILURE_TIMEOUT_MS	1000
/* s: 5 days, Linux conntrack's longest default (nf_conntrack_tcp_timeout_established) */
#define DEFAULT_ORPHAN_TIMEOUT_S	432000
#define ORPHAN_TIMEOUT_MAX_S		315360000	/* 10 years */
#define CONFIG_MAX		65536	/* bytes of a --config file */
#define CONFIG_ARGS		512

static const char usage_text[] =
	"Usage: rp-store --listen ADDR:PORT [options]\n"
	"\n"
	"The redplane state store: keeps each flow's state, committed sequence\n"
	"number and lease, and serves switches over UDP (docs/PROTOCOL.md).\n"
	"\n"
	"  -l, --listen ADDR:PORT  UDP address to serve (A.B.C.D:PORT or [IPV6]:PORT;\n"
	"                          port 0 picks a free port, printed at start)\n"
	"  -s, --shards N          shard threads, 1-64 (default 1)\n"
	"  -L, --lease-ms MS       session lease period, 10-60000 (default 200)\n"
	"  -m, --max-flows N       flows kept, over all shards (default 1000000)\n"
	"  -q, --wait-queue N      requests per shard that may wait on a revoke\n"
	"                          (default 1024, at most 65535)\n"
	"  -w, --wait-ms MS        longest such a wait (default 2 lease periods)\n"
	"  -g, --grace-ms MS       after start, grant no lease for this long, so that\n"
	"                          leases of a previous run lapse first (default: the\n"
	"                          lease period; 0 for a store that never ran before)\n"
	"  -O, --orphan-timeout SECONDS\n"
	"                          delete a flow of no live session that nothing touched\n"
	"                          for this long (fractions allowed; default 432000,\n"
	"                          5 days: conntrack's tcp_established)\n"
	"  -S, --stats-file PATH   rewrite statistics to PATH every second\n"
	"\n"
	"Chain replication (docs/CHAIN.md); all four of --zk, --replica-id, and an\n"
	"IPv4 --listen make this process one replica of a chain:\n"
	"  -z, --zk HOSTS          ZooKeeper ensemble, HOST:PORT[,HOST:PORT...]\n"
	"  -c, --chain NAME        the chain this replica belongs to (default 'default');\n"
	"                          switches shard flows over several chains\n"
	"  -i, --replica-id N      this replica's identity in its chain, 1-65535\n"
	"  -p, --peer ADDR:PORT    chain links between replicas: shard i listens on\n"
	"                          PORT + i (default: the --listen address, port + 1)\n"
	"  -t, --failure-timeout-ms MS\n"
	"                          a replica silent this long leaves the chain; it is\n"
	"                          its ZooKeeper session timeout, renewed every third\n"
	"                          of it (200-60000, default 1000)\n"
	"  -C, --config FILE       read options from FILE first: one 'name value' per\n"
	"                          line, names as the long options; # comments\n"
	"  -v, --verbose           log each session change\n"
	"  -h, --help              this text\n"
	"  -V, --version           print the version\n"
	"\n"
	"  -D, --dump-file PATH    on SIGUSR2, each shard writes its flows to PATH.<shard>\n"
	"  -a, --allow ID@ADDR[,ID@ADDR...]\n"
	"                          serve only these switches: switch id ID from address\n"
	"                          ADDR (A.B.C.D or IPv6); may be repeated (at most 1024);\n"
	"                          the rest is dropped and counted (docs/SECURITY.md)\n"
	"  -k, --mac-key FILE      every message carries a SipHash-2-4 MAC under the 128-bit\n"
	"                          key in FILE (32 hex digits), and one without the right\n"
	"                          MAC is dropped and counted (docs/SECURITY.md)\n"
	"\n"
	"Statistics go to stderr at exit and on SIGUSR1, which also rewrites the\n"
	"stats file at once. SIGINT and SIGTERM stop the store cleanly.\n";

static const struct option long_opts[] = {
	{ "listen", required_argument, NULL, 'l' },
	{ "shards", required_argument, NULL, 's' },
	{ "lease-ms", required_argument, NULL, 'L' },
	{ "max-flows", required_argument, NULL, 'm' },
	{ "wait-queue", required_argument, NULL, 'q' },
	{ "wait-ms", required_argument, NULL, 'w' },
	{ "grace-ms", required_argument, NULL, 'g' },
	{ "orphan-timeout", required_argument, NULL, 'O' },
	{ "stats-file", required_argument, NULL, 'S' },
	{ "zk", required_argument, NULL, 'z' },
	{ "chain", required_argument, NULL, 'c' },
	{ "replica-id", required_argument, NULL, 'i' },
	{ "peer", required_argument, NULL, 'p' },
	{ "failure-timeout-ms", required_argument, NULL, 't' },
	{ "config", required_argument, NULL, 'C' },
	{ "dump-file", required_argument, NULL, 'D' },
	{ "allow", required_argument, NULL, 'a' },
	{ "mac-key", required_argument, NULL, 'k' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

#define OPTSTRING ":l:s:L:m:q:w:g:O:S:z:c:i:p:t:C:D:a:k:vhV"

struct parse_state {
	bool have_listen, have_wait, have_grace, have_peer;
};

static int parse_opts(int argc, char **argv, struct rp_store_cfg *cfg, struct parse_state *ps);

/* Seconds, fractions allowed (0.5), into nanoseconds. */
static int parse_seconds(const char *opt, const char *s, uint64_t *ns)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	/* !(v >= ...) also refuses NaN */
	if (errno || end == s || *end || !(v >= 0.001) || v > ORPHAN_TIMEOUT_MAX_S) {
		pr_warn("rp-store: invalid %s '%s': expected seconds from 0.001 to %d\n", opt, s,
			ORPHAN_TIMEOUT_MAX_S);
		return -EINVAL;
	}
	*ns = (uint64_t)(v * 1e9 + 0.5);
	return 0;
}

/* "ID@ADDR,..." into cfg->allowed. */
static int parse_allow(struct rp_store_cfg *cfg, const char *list)
{
	char buf[4096], *save = NULL, *item;

	if (strlen(list) >= sizeof(buf)) {
		pr_warn("rp-store: --allow list too long\n");
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", list);
	if (!*buf || buf[strlen(buf) - 1] == ',' || strstr(buf, ",,") || *buf == ',') {
		pr_warn("rp-store: invalid --allow '%s': an empty element\n", list);
		return -EINVAL;
	}
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		struct rp_allowed *a = &cfg->allowed[cfg->nallowed];
		char *at = strchr(item, '@'), *addr;
		uint32_t id;

		if (cfg->nallowed == RP_ALLOW_MAX) {
			pr_warn("rp-store: --allow: at most %d switches\n", RP_ALLOW_MAX);
			return -EINVAL;
		}
		if (!at) {
			pr_warn("rp-store: invalid --allow element '%s': expected ID@ADDR\n", item);
			return -EINVAL;
		}
		*at = '\0';
		addr = at + 1;
		if (rp_parse_u32("rp-store", "--allow switch id", item, 1, 65535, &id))
			return -EINVAL;
		a->switch_id = (uint16_t)id;
		if (*addr == '[' && addr[strlen(addr) - 1] == ']') {
			addr[strlen(addr) - 1] = '\0';
			addr++;
		}
		if (inet_pton(AF_INET, addr, a->addr) == 1) {
			a->family = AF_INET;
		} else if (inet_pton(AF_INET6, addr, a->addr) == 1) {
			a->family = AF_INET6;
		} else {
			pr_warn("rp-store: invalid --allow address '%s': expected A.B.C.D or an IPv6 address\n",
				addr);
			return -EINVAL;
		}
		cfg->nallowed++;
	}
	return 0;
}

/*
 * --config FILE: "name value" lines become "--name value" and are parsed
 * like the command line, before it, so the command line wins.  The strings
 * live as long as the process (cfg points into them).
 */
static int parse_config_file(const char *path, struct rp_store_cfg *cfg, struct parse_state *ps)
{
	char *save = NULL, *line, **argv;
	int argc = 1;
	size_t len;
	FILE *f;

	if (cfg->config_text) {
		pr_warn("rp-store: --config may be given once\n");
		return -EINVAL;
	}
	f = fopen(path, "r");
	if (!f) {
		pr_warn("rp-store: Couldn't read --config '%s': %s\n", path, strerror(errno));
		return -EINVAL;
	}
	cfg->config_text = calloc(1, CONFIG_MAX + 1);
	cfg->config_argv = argv = calloc(CONFIG_ARGS + 2, sizeof(char *));
	if (!cfg->config_text || !argv) {
		fclose(f);
		return -ENOMEM;
	}
	len = fread(cfg->config_text, 1, CONFIG_MAX + 1, f);
	fclose(f);
	if (len > CONFIG_MAX) {
		pr_warn("rp-store: --config '%s' is larger than %d bytes\n", path, CONFIG_MAX);
		return -EINVAL;
	}
	argv[0] = "rp-store";
	for (line = strtok_r(cfg->config_text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *name = line + strspn(line, " \t"), *value, *end;

		if (!*name || *name == '#')
			continue;
		if (argc + 2 > CONFIG_ARGS) {
			pr_warn("rp-store: --config '%s' has too many lines\n", path);
			return -EINVAL;
		}
		value = name + strcspn(name, " \t");
		if (*value)
			*value++ = 0;
		value += strspn(value, " \t");
		for (end = value + strlen(value); end > value && strchr(" \t\r", end[-1]); end--)
			end[-1] = 0;
		if (!strcmp(name, "config")) {
			pr_warn("rp-store: --config '%s': a config file cannot name another\n", path);
			return -EINVAL;
		}
		if (asprintf(&argv[argc], "--%s", name) < 0)
			return -ENOMEM;
		argc++;
		if (*value)
			argv[argc++] = value;
	}
	return parse_opts(argc, argv, cfg, ps);
}

/* The option names a config file became ("--name"); the values are in its text. */
static void free_config(struct rp_store_cfg *cfg)
{
	char **argv = cfg->config_argv;

	for (int i = 1; argv && argv[i]; i++)
		if (argv[i] < cfg->config_text || argv[i] > cfg->config_text + CONFIG_MAX)
			free(argv[i]);
	free(argv);
	free(cfg->config_text);
	cfg->config_argv = NULL;
	cfg->config_text = NULL;
}

/* Returns 0 to run, 1 to exit successfully (help, version), -EINVAL. */
static int parse_args(int argc, char **argv, struct rp_store_cfg *cfg)
{
	struct parse_state ps = { 0 };
	int err;

	*cfg = (struct rp_store_cfg){
		.shards = 1,
		.lease_ms = DEFAULT_LEASE_MS,
		.max_flows = DEFAULT_MAX_FLOWS,
		.wait_queue = DEFAULT_WAIT_QUEUE,
		.chain_name = "default",
		.failure_timeout_ms = DEFAULT_FAILURE_TIMEOUT_MS,
		.orphan_ns = DEFAULT_ORPHAN_TIMEOUT_S * 1000000000ull,
	};
	/* a --config file first, wherever it is on the command line */
	for (int i = 1; i + 1 < argc; i++) {
		if (!strcmp(argv[i], "--config") || !strcmp(argv[i], "-C")) {
			err = parse_config_file(argv[i + 1], cfg, &ps);
			if (err)
				return err;
		}
	}
	err = parse_opts(argc, argv, cfg, &ps);
	if (err)
		return err;
	if (!ps.have_listen) {
		pr_warn("rp-store: missing --listen ADDR:PORT\n");
		return -EINVAL;
	}
	if (!ps.have_wait)
		cfg->wait_ms = 2 * cfg->lease_ms;
	if (!ps.have_grace)
		cfg->grace_ms = cfg->lease_ms;
	if (!!cfg->zk_hosts != !!cfg->replica_id) {
		pr_warn("rp-store: a chain replica needs both --zk and --replica-id\n");
		return -EINVAL;
	}
	if (cfg->zk_hosts && cfg->listen.ss.ss_family != AF_INET) {
		pr_warn("rp-store: chain replicas listen on IPv4 addresses\n");
		return -EINVAL;
	}
	if (cfg->zk_hosts && !ps.have_peer) {
		cfg->peer = cfg->listen;
		cfg->peer_from_listen = true;
	}
	return 0;
}

static int parse_opts(int argc, char **argv, struct rp_store_cfg *cfg, struct parse_state *ps)
{
	uint32_t v;
	int c;

	opterr = 0;
	optind = 0;	/* getopt_long starts over: a config file, then argv */
	while ((c = getopt_long(argc, argv, OPTSTRING, long_opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (rp_addr_parse(optarg, &cfg->listen)) {
				pr_warn("rp-store: invalid --listen '%s': expected A.B.C.D:PORT or [IPV6]:PORT\n",
					optarg);
				return -EINVAL;
			}
			ps->have_listen = true;
			break;
		case 's':
			if (rp_parse_u32("rp-store", "--shards", optarg, 1, RP_SHARDS_MAX, &v))
				return -EINVAL;
			cfg->shards = v;
			break;
		case 'L':
			if (rp_parse_u32("rp-store", "--lease-ms", optarg,
					 10, 60000, &cfg->lease_ms))
				return -EINVAL;
			break;
		case 'm':
			if (rp_parse_u32("rp-store", "--max-flows", optarg,
					 1, 1u << 30, &cfg->max_flows))
				return -EINVAL;
			break;
		case 'q':
			if (rp_parse_u32("rp-store", "--wait-queue", optarg,
					 1, 65535, &cfg->wait_queue))
				return -EINVAL;
			break;
		case 'w':
			if (rp_parse_u32("rp-store", "--wait-ms", optarg, 1, 600000, &cfg->wait_ms))
				return -EINVAL;
			ps->have_wait = true;
			break;
		case 'g':
			if (rp_parse_u32("rp-store", "--grace-ms", optarg, 0, 600000, &cfg->grace_ms))
				return -EINVAL;
			ps->have_grace = true;
			break;
		case 'O':
			if (parse_seconds("--orphan-timeout", optarg, &cfg->orphan_ns))
				return -EINVAL;
			break;
		case 'S':
			cfg->stats_path = optarg;
			break;
		case 'a':
			if (parse_allow(cfg, optarg))
				return -EINVAL;
			break;
		case 'k': {
			uint64_t key[2];

			/* the key is the process's: every encode seals, every decode checks */
			if (rp_mac_key_read("rp-store", optarg, key))
				return -EINVAL;
			rp_msg_set_key(key);
			break;
		}
		case 'z':
			cfg->zk_hosts = optarg;
			break;
		case 'c':
			if (!*optarg || strlen(optarg) > 64 || strpbrk(optarg, "/ \t")) {
				pr_warn("rp-store: invalid --chain '%s': 1-64 characters, no '/' or spaces\n",
					optarg);
				return -EINVAL;
			}
			cfg->chain_name = optarg;
			break;
		case 'i':
			if (rp_parse_u32("rp-store", "--replica-id", optarg, 1, 65535, &v))
				return -EINVAL;
			cfg->replica_id = v;
			break;
		case 'p':
			if (rp_addr_parse(optarg, &cfg->peer) || cfg->peer.ss.ss_family != AF_INET) {
				pr_warn("rp-store: invalid --peer '%s': expected A.B.C.D:PORT\n", optarg);
				return -EINVAL;
			}
			ps->have_peer = true;
			break;
		case 't':
			if (rp_parse_u32("rp-store", "--failure-timeout-ms", optarg, 200, 60000,
					 &cfg->failure_timeout_ms))
				return -EINVAL;
			break;
		case 'C':
			break;	/* read before the rest */
		case 'D':
			cfg->dump_path = optarg;
			break;
		case 'v':
			cfg->verbose = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 1;
		case 'V':
			printf("rp-store %s (protocol version %d)\n", RP_STORE_VERSION, RP_VERSION);
			return 1;
		case ':':
			pr_warn("rp-store: option '%s' needs an argument\n", argv[optind - 1]);
			return -EINVAL;
		default:
			pr_warn("rp-store: unknown option '%s'\n", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		pr_warn("rp-store: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/*
 * Each shard gets an even part of --max-flows plus 2% and 64 flows of slack,
 * since flows hash unevenly over shards.
 */
static uint32_t shard_flow_cap(const struct rp_store_cfg *cfg)
{
	uint64_t per;

	if (cfg->shards == 1)
		return cfg->max_flows;
	per = ((uint64_t)cfg->max_flows + cfg->shards - 1) / cfg->shards;
	per += per / 50 + 64;
	return per > (1u << 30) ? (1u << 30) : (uint32_t)per;
}

static uint64_t mem_available(void)
{
	unsigned long long kb = 0;
	char line[256];
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return UINT64_MAX;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb ? kb * 1024ull : UINT64_MAX;
}

/* Refuses a configuration the machine could not hold when full. */
static int check_memory(const struct rp_store_cfg *cfg)
{
	uint64_t need = (uint64_t)RP_SWITCHES * sizeof(struct rp_session_rec);
	uint64_t avail = mem_available();

	need += (uint64_t)cfg->shards * (sizeof(struct rp_shard) +
					 rp_flow_table_bytes(shard_flow_cap(cfg)) +
					 (uint64_t)cfg->wait_queue * sizeof(struct rp_waiter));
	if (need > avail) {
		pr_warn("rp-store: --max-flows %u needs %llu MiB when full, but only %llu MiB is available\n",
			cfg->max_flows, (unsigned long long)(need >> 20),
			(unsigned long long)(avail >> 20));
		return -ENOMEM;
	}
	return 0;
}

static int open_socket(const struct rp_sockaddr *addr, bool reuseport)
{
	int one = 1, rcvbuf = RCVBUF_BYTES, fd, err;
	char as[RP_ADDRSTRLEN];

	fd = socket(addr->ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		pr_warn("rp-store: Couldn't create UDP socket: %s\n", strerror(-err));
		return err;
	}
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) {
		err = -errno;
		pr_warn("rp-store: Couldn't set SO_REUSEPORT: %s\n", strerror(-err));
		goto err_close;
	}
	/*
	 * Bigger queues ride out bursts, and a send buffer far above what one
	 * unreachable peer's neighbour queue can hold (unres_qlen_bytes) keeps
	 * a dead switch from starving the replies to the live ones.  FORCE
	 * needs CAP_NET_ADMIN.
	 */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len)) {
		err = -errno;
		pr_warn("rp-store: Couldn't bind %s: %s\n",
			rp_addr_str((const struct sockaddr *)&addr->ss, as, sizeof(as)),
			strerror(-err));
		goto err_close;
	}
	return fd;

err_close:
	close(fd);
	return err;
}

/*
 * One socket per shard.  Sockets in a SO_REUSEPORT group would silently
 * share a port with another process of the same user, so a plain bind
 * first proves the port free (and picks one for port 0).
 */
static int open_sockets(struct rp_store_cfg *cfg, int *fds)
{
	socklen_t len = sizeof(cfg->listen.ss);
	int probe, err;
	unsigned int i;

	probe = open_socket(&cfg->listen, false);
	if (probe < 0)
		return probe;
	if (getsockname(probe, (struct sockaddr *)&cfg->listen.ss, &len)) {
		err = -errno;
		close(probe);
		return err;
	}
	if (cfg->shards == 1) {
		fds[0] = probe;
		return 0;
	}
	close(probe);

	for (i = 0; i < cfg->shards; i++) {
		fds[i] = open_socket(&cfg->listen, true);
		if (fds[i] < 0) {
			err = fds[i];
			goto err_close;
		}
		/* the filter's index is the socket's position in the group */
		if (i == 0) {
			err = rp_steer_attach(fds[0], cfg->shards);
			if (err) {
				pr_warn("rp-store: Couldn't attach the shard steering filter: %s\n",
					strerror(-err));
				i++;
				goto err_close;
			}
		}
	}
	return 0;

err_close:
	while (i--)
		close(fds[i]);
	return err;
}

struct shard_thread {
	pthread_t tid;
	struct rp_shard *shard;
	int stop_fd;
	int err;
};

static void *shard_main(void *arg)
{
	struct shard_thread *t = arg;

	t->err = rp_shard_run(t->shard, t->stop_fd);
	if (t->err)
		pr_warn("rp-store: shard %u stopped: %s\n", t->shard->id, strerror(-t->err));
	return NULL;
}

static struct rp_chain chain = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Where this replica stands in its chain: shard 0's view, and the minimum. */
static void report_chain(FILE *f, struct rp_shard *const *shards, unsigned int n)
{
	static const char *const roles[] = {
		[RP_ROLE_NONE] = "none", [RP_ROLE_HEAD] = "head", [RP_ROLE_MIDDLE] = "middle",
		[RP_ROLE_TAIL] = "tail", [RP_ROLE_ALONE] = "alone",
	};
	const struct rp_shard_chain *c0 = shards[0]->chain;
	uint32_t whole = 1;

	for (unsigned int i = 0; i < n; i++)
		whole &= atomic_load_explicit(&shards[i]->chain->g_whole, memory_order_relaxed);
	fprintf(f, "chain_role %s\n",
		roles[atomic_load_explicit(&c0->g_role, memory_order_relaxed) % 5]);
	fprintf(f, "chain_version %u\n", atomic_load_explicit(&c0->g_version, memory_order_relaxed));
	fprintf(f, "chain_whole %u\n", whole);
	fprintf(f, "chain_index %llu\n",
		(unsigned long long)atomic_load_explicit(&c0->g_idx, memory_order_relaxed));
}

static void report_stats(FILE *f, struct rp_shard *const *shards, unsigned int n,
			 const struct rp_sessions *sessions)
{
	struct rp_store_stats sum;
	uint64_t flows = 0;

	rp_stats_sum(&sum, shards, n);
	for (unsigned int i = 0; i < n; i++)
		flows += __atomic_load_n(&shards[i]->flows.count, __ATOMIC_RELAXED);
	rp_stats_print(f, &sum, flows, rp_sessions_count_live(sessions, rp_now_ns()));
	if (shards[0]->chain)
		report_chain(f, shards, n);
}

/* Makes this process a replica of its chain (before the shards start). */
static int chain_setup(struct rp_store_cfg *cfg, struct rp_shard *const *shards)
{
	int err;

	chain.name = cfg->chain_name;
	chain.zk_hosts = cfg->zk_hosts;
	chain.timeout_ms = cfg->failure_timeout_ms;
	chain.shards = cfg->shards;
	chain.self.id = cfg->replica_id;
	if (getrandom(&chain.self.inc, sizeof(chain.self.inc), 0) != sizeof(chain.self.inc))
		return -errno;
	memcpy(&chain.self.client, &cfg->listen.ss, sizeof(chain.self.client));
	if (cfg->peer_from_listen) {
		chain.self.peer = chain.self.client;
		chain.self.peer.sin_port = htons((uint16_t)(ntohs(chain.self.client.sin_port) + 1));
	} else {
		memcpy(&chain.self.peer, &cfg->peer.ss, sizeof(chain.self.peer));
	}
	for (unsigned int i = 0; i < cfg->shards; i++) {
		chain.wake_fd[i] = shards[i]->wake_fd;
		err = rp_chain_shard_init(shards[i], &chain);
		if (err)
			return err;
	}
	return 0;
}

static void chain_teardown(struct rp_shard *const *shards, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (shards[i])
			rp_chain_shard_free(shards[i]);
}

static void write_stats_file(const char *path, struct rp_shard *const *shards, unsigned int n,
			     const struct rp_sessions *sessions)
{
	char tmp[PATH_MAX];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return;
	f = fopen(tmp, "w");
	if (!f) {
		pr_warn("rp-store: Couldn't write stats file '%s': %s\n", tmp, strerror(errno));
		return;
	}
	report_stats(f, shards, n, sessions);
	if (fclose(f) == 0)
		rename(tmp, path);	/* readers see a whole file */
}

/* Waits for signals: SIGUSR1 dumps statistics, SIGUSR2 flows, SIGINT/SIGTERM return. */
static void serve(const struct rp_store_cfg *cfg, struct rp_shard *const *shards,
		  const struct rp_sessions *sessions, const sigset_t *sigs,
		  struct shard_thread *threads)
{
	struct timespec second = { .tv_sec = 1 };

	for (;;) {
		int sig = sigtimedwait(sigs, NULL, &second);

		if (sig == SIGINT || sig == SIGTERM)
			return;
		if (sig == SIGUSR2 && cfg->dump_path) {
			uint64_t one = 1;

			for (unsigned int i = 0; i < cfg->shards; i++) {
				atomic_store(&shards[i]->dump_req, 1);
				if (write(shards[i]->wake_fd, &one, sizeof(one)) < 0)
					pr_warn("rp-store: Couldn't wake shard %u: %s\n", i,
						strerror(errno));
			}
		}
		if (sig == SIGUSR1) {
			fputs("rp-store: statistics\n", stderr);
			report_stats(stderr, shards, cfg->shards, sessions);
		}
		for (unsigned int i = 0; i < cfg->shards; i++)
			if (threads[i].err)	/* a shard died: stop the whole store */
				return;
		if (atomic_load(&chain.fatal))
			return;
		if (cfg->stats_path)
			write_stats_file(cfg->stats_path, shards, cfg->shards, sessions);
	}
}

int main(int argc, char **argv)
{
	struct shard_thread threads[RP_SHARDS_MAX] = { 0 };
	struct rp_shard *shards[RP_SHARDS_MAX] = { 0 };
	int fds[RP_SHARDS_MAX];
	struct rp_sessions sessions = { 0 };
	struct rp_store_cfg cfg;
	unsigned int i, started = 0;
	char as[RP_ADDRSTRLEN];
	int err, stop_fd = -1;
	uint64_t one = 1;
	sigset_t sigs;

	err = parse_args(argc, argv, &cfg);
	if (err) {
		free_config(&cfg);
		return err > 0 ? 0 : 2;
	}
	if (cfg.verbose)
		rp_log_set_level(RP_LOG_DEBUG);
	if (check_memory(&cfg)) {
		free_config(&cfg);
		return 1;
	}

	/* every thread inherits the mask; only serve() takes these signals */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	err = rp_sessions_init(&sessions, cfg.lease_ms);
	if (err) {
		pr_warn("rp-store: Couldn't allocate the session table: %s\n", strerror(-err));
		free_config(&cfg);
		return 1;
	}
	for (i = 0; i < cfg.shards; i++) {
		shards[i] = malloc(sizeof(*shards[i]));
		err = shards[i] ? rp_shard_init(shards[i], i, &cfg, &sessions, shard_flow_cap(&cfg))
				: -ENOMEM;
		if (err) {
			pr_warn("rp-store: Couldn't allocate shard %u for %u flows: %s\n", i,
				shard_flow_cap(&cfg), strerror(-err));
			free(shards[i]);
			shards[i] = NULL;
			goto cleanup;
		}
	}
	err = open_sockets(&cfg, fds);
	if (err)
		goto cleanup;
	for (i = 0; i < cfg.shards; i++) {
		shards[i]->fd = fds[i];
		shards[i]->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (shards[i]->wake_fd < 0) {
			err = -errno;
			pr_warn("rp-store: Couldn't create eventfd: %s\n", strerror(-err));
			goto cleanup;
		}
		/* a chain's head applies the grace when it starts a new chain */
		if (!cfg.zk_hosts)
			shards[i]->serve_from_ns = rp_now_ns() + (uint64_t)cfg.grace_ms * 1000000ull;
	}
	if (cfg.zk_hosts) {
		err = chain_setup(&cfg, shards);
		if (err) {
			pr_warn("rp-store: Couldn't set up chain replication: %s\n", strerror(-err));
			goto cleanup;
		}
	}

	stop_fd = eventfd(0, EFD_CLOEXEC);
	if (stop_fd < 0) {
		err = -errno;
		pr_warn("rp-store: Couldn't create eventfd: %s\n", strerror(-err));
		goto cleanup;
	}
	for (started = 0; started < cfg.shards; started++) {
		threads[started].shard = shards[started];
		threads[started].stop_fd = stop_fd;
		err = -pthread_create(&threads[started].tid, NULL, shard_main, &threads[started]);
		if (err) {
			pr_warn("rp-store: Couldn't start shard thread: %s\n", strerror(-err));
			goto cleanup;
		}
	}

	if (cfg.zk_hosts) {
		err = rp_coord_start(&chain);
		if (err)
			goto cleanup;
	}

	/* tests and scripts read the port from this line */
	printf("rp-store: listening on %s (%u shard%s, lease %u ms, max %u flows)\n",
	       rp_addr_str((struct sockaddr *)&cfg.listen.ss, as, sizeof(as)), cfg.shards,
	       cfg.shards == 1 ? "" : "s", cfg.lease_ms, cfg.max_flows);
	if (cfg.zk_hosts)
		printf("rp-store: replica %u of chain '%s', ZooKeeper %s, links on %s\n",
		       chain.self.id, chain.name, chain.zk_hosts,
		       rp_addr_str((struct sockaddr *)&chain.self.peer, as, sizeof(as)));
	fflush(stdout);

	serve(&cfg, shards, &sessions, &sigs, threads);
	err = atomic_load(&chain.fatal) ? -ENOTCONN : 0;

cleanup:
	/* leave the chain first: the others reconfigure at once */
	rp_coord_stop(&chain);
	if (stop_fd >= 0 && write(stop_fd, &one, sizeof(one)) < 0)
		pr_warn("rp-store: Couldn't signal shard threads: %s\n", strerror(errno));
	for (i = 0; i < started; i++) {
		pthread_join(threads[i].tid, NULL);
		if (threads[i].err)
			err = threads[i].err;
	}
	if (started) {
		fputs("rp-store: statistics at exit\n", stderr);
		report_stats(stderr, shards, cfg.shards, &sessions);
		if (cfg.stats_path)
			write_stats_file(cfg.stats_path, shards, cfg.shards, &sessions);
	}
	chain_teardown(shards, cfg.shards);
	for (i = 0; i < cfg.shards; i++) {
		if (!shards[i])
			continue;
		if (shards[i]->fd >= 0)
			close(shards[i]->fd);
		if (shards[i]->wake_fd >= 0)
			close(shards[i]->wake_fd);
		rp_shard_free(shards[i]);
		free(shards[i]);
	}
	if (stop_fd >= 0)
		close(stop_fd);
	rp_sessions_free(&sessions);
	free_config(&cfg);
	return err ? 1 : 0;
}
