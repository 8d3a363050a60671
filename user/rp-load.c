// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * rp-load: the redplane switch agent.  Loads the XDP data plane onto the
 * switch's interfaces, pins its maps, keeps the switch's sessions with the
 * store chains, and retransmits unacknowledged writes.  Ctrl-C detaches.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <limits.h>
#include <linux/if_link.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "agent.h"
#include "redplane/codec.h"
#include "redplane/log.h"
#include "redplane/parse.h"
#include "redplane.skel.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

static const char usage_head[] =
	"Usage: rp-load IFACE [IFACE...] --app NAME --store A.B.C.D:PORT[+...][,...] --switch-id N\n"
	"               [the app's options] [options]\n"
	"       rp-load --status IFACE\n"
	"\n"
	"The redplane switch agent: attaches the XDP data plane to every IFACE, holds\n"
	"the switch's sessions with the stores, retransmits unacknowledged writes.\n"
	"Ctrl-C or SIGTERM detaches and removes the pins.\n"
	"\n"
	"  -a, --app NAME           the application (below)\n"
	"  -s, --store LIST         store chains, comma-separated (at most 4), each its replicas\n"
	"                           joined by '+' (at most 4; the first is the head until a\n"
	"                           replica names another): A.B.C.D:PORT[+A.B.C.D:PORT...][,...]\n"
	"  -i, --switch-id N        this switch's id, 1-65535, unique among switches\n"
	"  -L, --lease-ms MS        longest lease this switch assumes (default 200); the store's\n"
	"                           period is used when shorter\n"
	"  -r, --rto-us US          fixed retransmission timeout (default: adaptive, from\n"
	"                           heartbeat round trips)\n"
	"  -t, --max-tries N        retransmissions before giving a write up (default 5)\n"
	"  -m, --max-flows N        flows the data plane holds (default 65536)\n"
	"  -p, --port N             UDP port of this switch's protocol endpoint (default: any)\n"
	"  -M, --mode MODE          linearizable: every change of a flow's state is a write the\n"
	"                           packet waits for; bounded: changes stay here, snapshotted\n"
	"                           every --snapshot-ms, a crash loses at most one period's\n"
	"                           (default: the application's; docs/APPS.md)\n"
	"  -P, --snapshot-ms MS     bounded mode's snapshot period (default 50)\n"
	"  -k, --mac-key FILE       messages carry a SipHash-2-4 MAC under the 128-bit key in\n"
	"                           FILE (32 hex digits); the stores' without it are dropped\n"
	"  -T, --timeout NAME=SECONDS[,...]\n"
	"                           idle timeouts, as Linux conntrack's (defaults): tcp_syn_sent\n"
	"                           (120), tcp_syn_recv (60), tcp_established (432000),\n"
	"                           tcp_fin_wait (120), tcp_close_wait (60), tcp_last_ack (30),\n"
	"                           tcp_time_wait (120), tcp_close (10), udp (30), udp_stream\n"
	"                           (120), icmp (30); negative (1): a flow the store does not\n"
	"                           have is not asked about again for this long; given_up\n"
	"                           (30): a flow given up to another switch is remembered\n"
	"  -l, --lookup-rate N      store lookups of flows this switch does not know (return\n"
	"                           traffic, unsolicited packets) per second at most, in\n"
	"                           bursts of a tenth of a second's (default 20000; 0: no limit)\n"
	"  -D, --state-dir DIR      where what outlives a restart is kept, one file per switch\n"
	"                           named after its first IFACE (default " RP_STATE_DIR ")\n"
	"  -S, --status IFACE       print the counters of the rp-load running on IFACE\n"
	"  -v, --verbose            libbpf's messages and more\n"
	"  -h, --help               this text\n"
	"\n"
	"Applications (--app NAME) and their options:\n";

static void usage(void)
{
	fputs(usage_head, stdout);
	for (const struct rp_app *const *a = rp_apps; *a; a++)
		printf("\n  %s: %s\n%s", (*a)->name, (*a)->summary, (*a)->usage);
}

static volatile int verbose;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !verbose)
		return 0;
	if (level == LIBBPF_INFO && !verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static const struct option common_opts[] = {
	{ "app", required_argument, NULL, 'a' },
	{ "store", required_argument, NULL, 's' },
	{ "switch-id", required_argument, NULL, 'i' },
	{ "lease-ms", required_argument, NULL, 'L' },
	{ "rto-us", required_argument, NULL, 'r' },
	{ "max-tries", required_argument, NULL, 't' },
	{ "max-flows", required_argument, NULL, 'm' },
	{ "port", required_argument, NULL, 'p' },
	{ "mode", required_argument, NULL, 'M' },
	{ "snapshot-ms", required_argument, NULL, 'P' },
	{ "mac-key", required_argument, NULL, 'k' },
	{ "timeout", required_argument, NULL, 'T' },
	{ "lookup-rate", required_argument, NULL, 'l' },
	{ "state-dir", required_argument, NULL, 'D' },
	{ "status", required_argument, NULL, 'S' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
};

#define MAX_OPTS	64

/* The common options, then every application's: one table for getopt_long. */
static void build_options(struct option *opts)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(common_opts) / sizeof(common_opts[0]); i++)
		opts[n++] = common_opts[i];
	for (const struct rp_app *const *a = rp_apps; *a; a++)
		for (const struct option *o = (*a)->options; o && o->name && n < MAX_OPTS - 1; o++)
			opts[n++] = *o;
	opts[n] = (struct option){ NULL, 0, NULL, 0 };
}

/* 0: run; 1: done (help, status); -EINVAL: bad command line. */
static int parse_args(int argc, char **argv, struct rp_load_cfg *cfg, const char **status)
{
	/* per application id, the first of its options given */
	const char *app_opt[__RP_APP_MAX] = { 0 };
	struct option opts[MAX_OPTS];
	const struct rp_app *app;
	const char *mode = NULL;
	bool have_period = false;
	int c, idx;
	uint32_t v;

	*cfg = (struct rp_load_cfg){ .lease_ms = 200, .max_tries = 5, .max_flows = 65536,
				     .snapshot_ms = 50, .lookup_rate = 20000 };
	rp_timeouts_default(cfg->timeouts);
	build_options(opts);
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":a:s:i:L:r:t:m:p:M:P:k:T:l:D:S:vh", opts, &idx)) != -1) {
		switch (c) {
		case 'a':
			cfg->app = rp_app_find(optarg);
			if (!cfg->app) {
				pr_warn("rp-load: unknown --app '%s' (this version has: %s)\n", optarg,
					rp_app_names());
				return -EINVAL;
			}
			break;
		case 's':
			if (rp_parse_store_chains("rp-load", "--store", optarg, cfg->chains,
						  &cfg->nstores))
				return -EINVAL;
			break;
		case 'i':
			if (rp_parse_u32("rp-load", "--switch-id", optarg, 1, 65535, &v))
				return -EINVAL;
			cfg->switch_id = (uint16_t)v;
			break;
		case 'L':
			if (rp_parse_u32("rp-load", "--lease-ms", optarg,
					 10, 60000, &cfg->lease_ms))
				return -EINVAL;
			break;
		case 'r':
			if (rp_parse_u32("rp-load", "--rto-us", optarg,
					 100, 10000000, &cfg->rto_us))
				return -EINVAL;
			break;
		case 't':
			if (rp_parse_u32("rp-load", "--max-tries", optarg, 0, 100, &cfg->max_tries))
				return -EINVAL;
			break;
		case 'm':
			if (rp_parse_u32("rp-load", "--max-flows", optarg,
					 16, 1u << 26, &cfg->max_flows))
				return -EINVAL;
			break;
		case 'p':
			if (rp_parse_u32("rp-load", "--port", optarg, 1, 65535, &v))
				return -EINVAL;
			cfg->port = (uint16_t)v;
			break;
		case 'M':
			if (strcmp(optarg, "linearizable") && strcmp(optarg, "bounded")) {
				pr_warn("rp-load: invalid --mode '%s': expected linearizable or bounded\n",
					optarg);
				return -EINVAL;
			}
			mode = optarg;
			break;
		case 'P':
			if (rp_parse_u32("rp-load", "--snapshot-ms", optarg, 1, 60000,
					 &cfg->snapshot_ms))
				return -EINVAL;
			have_period = true;
			break;
		case 'D':
			cfg->state_dir = optarg;
			break;
		case 'S':
			*status = optarg;
			return 1;
		case 'k':
			if (rp_mac_key_read("rp-load", optarg, cfg->mac_key))
				return -EINVAL;
			cfg->mac = true;
			/* the agent's own messages (heartbeats, snapshots) too */
			rp_msg_set_key(cfg->mac_key);
			break;
		case 'T':
			if (rp_timeouts_parse("rp-load", optarg, cfg->timeouts))
				return -EINVAL;
			break;
		case 'l':
			if (rp_parse_u32("rp-load", "--lookup-rate", optarg, 0, 100000000,
					 &cfg->lookup_rate))
				return -EINVAL;
			break;
		case 'v':
			cfg->verbose = true;
			break;
		case 'h':
			usage();
			return 1;
		case ':':
			pr_warn("rp-load: option '%s' needs an argument\n", argv[optind - 1]);
			return -EINVAL;
		default:
			/* an application's option, parsed by it */
			app = c >= RP_APP_OPT(1, 0) ? rp_app_by_id(RP_APP_OF_OPT(c)) : NULL;
			if (!app) {
				pr_warn("rp-load: unknown option '%s'\n", argv[optind - 1]);
				return -EINVAL;
			}
			if (!app_opt[app->id])
				app_opt[app->id] = opts[idx].name;
			if (app->parse(cfg, c, optarg))
				return -EINVAL;
		}
	}
	for (; optind < argc; optind++) {
		if (cfg->nifaces == RP_MAX_IFACES) {
			pr_warn("rp-load: at most %d interfaces\n", RP_MAX_IFACES);
			return -EINVAL;
		}
		if (strlen(argv[optind]) >= IF_NAMESIZE) {
			pr_warn("rp-load: interface name too long: '%s'\n", argv[optind]);
			return -EINVAL;
		}
		strcpy(cfg->ifnames[cfg->nifaces++], argv[optind]);
	}
	if (!cfg->nifaces || !cfg->app || !cfg->nstores || !cfg->switch_id) {
		pr_warn("rp-load: needs IFACE..., --app, --store and --switch-id (see --help)\n");
		return -EINVAL;
	}
	for (unsigned int id = 0; id < __RP_APP_MAX; id++)
		if (app_opt[id] && id != cfg->app->id) {
			pr_warn("rp-load: --%s is an option of --app %s, not of --app %s\n",
				app_opt[id], rp_app_by_id(id)->name, cfg->app->name);
			return -EINVAL;
		}
	cfg->bounded = mode ? !strcmp(mode, "bounded") : cfg->app->bounded_default;
	if (!(cfg->app->modes & (cfg->bounded ? RP_MODE_BOUNDED : RP_MODE_LINEARIZABLE))) {
		pr_warn("rp-load: --app %s runs %s mode only: %s\n", cfg->app->name,
			cfg->bounded ? "linearizable" : "bounded", cfg->app->mode_why);
		return -EINVAL;
	}
	if (have_period && !cfg->bounded) {
		pr_warn("rp-load: --snapshot-ms applies to --mode bounded only\n");
		return -EINVAL;
	}
	return cfg->app->check(cfg);
}

/* The address and interface this host reaches the first store chain's head from. */
static int find_source(struct rp_agent *a)
{
	struct sockaddr_in src;
	socklen_t len = sizeof(src);
	struct ifaddrs *ifs, *i;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)rp_hb_head(a, 0), sizeof(struct sockaddr_in)) ||
	    getsockname(fd, (struct sockaddr *)&src, &len)) {
		err = -errno;
		pr_warn("rp-load: no route to the store: %s\n", strerror(-err));
		close(fd);
		return err;
	}
	close(fd);
	a->src_addr = src.sin_addr;
	if (getifaddrs(&ifs))
		return -errno;
	for (i = ifs; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == src.sin_addr.s_addr)
			snprintf(a->store_ifname, sizeof(a->store_ifname), "%s", i->ifa_name);
	freeifaddrs(ifs);
	if (!a->store_ifname[0]) {
		pr_warn("rp-load: no interface holds %s\n", inet_ntoa(src.sin_addr));
		return -ENODEV;
	}
	return 0;
}

static int open_socket(struct rp_agent *a)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr = a->src_addr,
				   .sin_port = htons(a->cfg.port) };
	socklen_t len = sizeof(sin);
	int err;

	a->sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (a->sock < 0)
		return -errno;
	if (bind(a->sock, (struct sockaddr *)&sin, sizeof(sin)) ||
	    getsockname(a->sock, (struct sockaddr *)&sin, &len)) {
		err = -errno;
		pr_warn("rp-load: Couldn't bind %s:%u: %s\n", inet_ntoa(a->src_addr), a->cfg.port,
			strerror(-err));
		return err;
	}
	a->src_port = ntohs(sin.sin_port);
	return 0;
}

static int ensure_bpffs(void)
{
	struct statfs st;

	if (statfs("/sys/fs/bpf", &st) == 0 && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700")) {
		int err = -errno;

		pr_warn("rp-load: Couldn't mount bpffs on /sys/fs/bpf: %s\n", strerror(-err));
		return err;
	}
	return 0;
}

/* Serializes loaders: held while attaching or detaching (xdp-tools does the same). */
static int lock_pins(struct rp_agent *a)
{
	if (mkdir(RP_PIN_ROOT, 0700) && errno != EEXIST)
		return -errno;
	a->lock_fd = open(RP_PIN_ROOT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (a->lock_fd < 0)
		return -errno;
	if (flock(a->lock_fd, LOCK_EX)) {
		int err = -errno;

		close(a->lock_fd);
		a->lock_fd = -1;
		return err;
	}
	return 0;
}

static void unlock_pins(struct rp_agent *a)
{
	if (a->lock_fd >= 0) {
		flock(a->lock_fd, LOCK_UN);
		close(a->lock_fd);
	}
	a->lock_fd = -1;
}

static int set_progs(struct rp_agent *a)
{
	struct {
		int slot;
		struct bpf_program *prog;
	} table[] = {
		{ RP_PROG_ROOT, a->skel->progs.rp_root },
		/* the application at its id's slot: the root program calls it there */
		{ a->cfg.app->id, a->cfg.app->program(a->skel) },
		{ RP_PROG_EMIT, a->skel->progs.rp_emit },
		{ RP_PROG_STORE_RX, a->skel->progs.rp_store_rx },
	};
	int map = bpf_map__fd(a->skel->maps.progs);

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		int fd = bpf_program__fd(table[i].prog);

		if (bpf_map_update_elem(map, &table[i].slot, &fd, 0))
			return -errno;
	}
	return 0;
}

/* Every replica of every chain, with its chain: whom the data plane hears. */
static void set_replicas(struct rp_agent *a)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < a->cfg.nstores; i++) {
		const struct rp_store_chain *c = &a->cfg.chains[i];

		for (unsigned int r = 0; r < c->nreplicas; r++, n++) {
			a->skel->rodata->cfg_replicas[n].addr = c->replicas[r].sin_addr.s_addr;
			a->skel->rodata->cfg_replicas[n].port = c->replicas[r].sin_port;
			a->skel->rodata->cfg_replicas[n].store = (uint16_t)i;
		}
	}
	a->skel->rodata->cfg_nreplicas = n;
}

static int load(struct rp_agent *a)
{
	const struct rp_load_cfg *c = &a->cfg;
	struct rp_dp_info info = { .switch_id = c->switch_id, .app = c->app->id };
	uint32_t zero = 0;
	int err;

	a->skel = redplane__open();
	if (!a->skel) {
		err = -errno;
		pr_warn("rp-load: Couldn't open the BPF object: %s\n", strerror(-err));
		return err;
	}
	a->skel->rodata->cfg_switch_id = c->switch_id;
	a->skel->rodata->cfg_app = c->app->id;
	a->skel->rodata->cfg_src_addr = a->src_addr.s_addr;
	a->skel->rodata->cfg_src_port = htons(a->src_port);
	a->skel->rodata->cfg_nstores = c->nstores;
	a->skel->rodata->cfg_bounded = c->bounded;
	a->skel->rodata->cfg_touch_ns = rp_expiry_touch_ns(c);
	a->skel->rodata->cfg_negative_ns = c->timeouts[RP_TO_negative];
	if (c->lookup_rate) {
		/* each CPU its share, bursts of a tenth of a second's */
		int ncpu = libbpf_num_possible_cpus();

		a->skel->rodata->cfg_lookup_ns =
			(uint64_t)(ncpu > 0 ? ncpu : 1) * 1000000000ull / c->lookup_rate;
		a->skel->rodata->cfg_lookup_burst_ns = 100000000ull;
	}
#ifndef __x86_64__
	/* reads of a flow without its lock rely on x86-64's load order (rp_flow_peek) */
	a->skel->rodata->cfg_peek = 0;
	/*
	 * So does the data plane's read of a session (expiry, then epoch):
	 * elsewhere a packet could pair a new expiry with an old epoch.
	 */
	pr_warn("rp-load: this data plane is checked on x86-64 only: its lock-free read of a session's epoch and expiry may be reordered here (docs/DATAPLANE.md, Concurrency)\n");
#endif
	a->skel->rodata->cfg_mac = c->mac;
	a->skel->rodata->cfg_mac_key[0] = c->mac_key[0];
	a->skel->rodata->cfg_mac_key[1] = c->mac_key[1];
	set_replicas(a);
	c->app->configure(a->skel, c);
	/* only the application this switch runs is loaded (and verified) */
	for (const struct rp_app *const *app = rp_apps; *app; app++)
		bpf_program__set_autoload((*app)->program(a->skel), *app == c->app);
	bpf_map__set_max_entries(a->skel->maps.flows, c->max_flows);

	err = redplane__load(a->skel);
	if (err) {
		pr_warn("rp-load: Couldn't load the BPF programs: %s (run with -v for the verifier log)\n",
			strerror(-err));
		return err;
	}
	err = set_progs(a);
	if (err) {
		pr_warn("rp-load: Couldn't fill the program array: %s\n", strerror(-err));
		return err;
	}
	if (bpf_map_update_elem(bpf_map__fd(a->skel->maps.info), &zero, &info, 0)) {
		err = -errno;
		pr_warn("rp-load: Couldn't write the info map: %s\n", strerror(-err));
	}
	return err;
}

static int attach(struct rp_agent *a)
{
	int fd = bpf_program__fd(a->skel->progs.rp_root);

	for (a->attached = 0; a->attached < a->cfg.nifaces; a->attached++) {
		unsigned int i = a->attached;
		int err = bpf_xdp_attach(a->ifindex[i], fd,
					 XDP_FLAGS_DRV_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);

		if (err) {
			pr_warn("rp-load: Couldn't attach XDP program on '%s': %s\n",
				a->cfg.ifnames[i],
				err == -EBUSY || err == -EEXIST ?
					"another XDP program is attached" : strerror(-err));
			return err;
		}
	}
	return 0;
}

static void detach(struct rp_agent *a)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, opts,
		    .old_prog_fd = bpf_program__fd(a->skel->progs.rp_root));

	/* only our program: XDP_FLAGS_REPLACE fails if another took its place */
	while (a->attached) {
		unsigned int i = --a->attached;

		if (bpf_xdp_attach(a->ifindex[i], -1, XDP_FLAGS_DRV_MODE | XDP_FLAGS_REPLACE, &opts))
			pr_warn("rp-load: Couldn't detach from '%s': %s\n", a->cfg.ifnames[i],
				strerror(errno));
	}
}

/*
 * `progs` too: the kernel empties a program array when the last reference
 * from user space goes (an fd or a pin), so unpinned, a killed rp-load would
 * leave a data plane whose every tail call fails (drop_tail_call) at once,
 * instead of one that fails closed when its sessions lapse.
 */
static const char *const pinned_maps[] = { "flows", "sessions", "stats", "agent_stats", "info",
					    "heavy", "progs" };

static struct bpf_map *map_by_name(struct rp_agent *a, const char *name)
{
	return bpf_object__find_map_by_name(a->skel->obj, name);
}

static void unpin_iface(struct rp_agent *a, unsigned int i)
{
	char path[PATH_MAX];

	for (size_t m = 0; m < sizeof(pinned_maps) / sizeof(pinned_maps[0]); m++) {
		snprintf(path, sizeof(path), "%s/%s/%s", RP_PIN_ROOT, a->cfg.ifnames[i],
			 pinned_maps[m]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/%s", RP_PIN_ROOT, a->cfg.ifnames[i]);
	rmdir(path);
}

static int pin(struct rp_agent *a)
{
	char path[PATH_MAX];

	for (a->pinned = 0; a->pinned < a->cfg.nifaces; a->pinned++) {
		unsigned int i = a->pinned;

		snprintf(path, sizeof(path), "%s/%s", RP_PIN_ROOT, a->cfg.ifnames[i]);
		if (mkdir(path, 0700)) {
			int err = -errno;

			pr_warn("rp-load: Couldn't create '%s': %s%s\n", path, strerror(-err),
				err == -EEXIST ? " (another rp-load owns this interface, or a dead "
						 "one left it: remove it if none runs)" : "");
			return err;
		}
		for (size_t m = 0; m < sizeof(pinned_maps) / sizeof(pinned_maps[0]); m++) {
			int err;

			snprintf(path, sizeof(path), "%s/%s/%s", RP_PIN_ROOT, a->cfg.ifnames[i],
				 pinned_maps[m]);
			err = bpf_obj_pin(bpf_map__fd(map_by_name(a, pinned_maps[m])), path);
			if (err) {
				err = -errno;
				pr_warn("rp-load: Couldn't pin '%s': %s\n", path, strerror(-err));
				a->pinned++;	/* so that this one is unpinned too */
				return err;
			}
		}
	}
	return 0;
}

static void unpin(struct rp_agent *a)
{
	while (a->pinned)
		unpin_iface(a, --a->pinned);
}

void rp_agent_publish(struct rp_agent *a)
{
	int fd = bpf_map__fd(a->skel->maps.agent_stats);

	a->stats[RP_AG_rtt_us] = (uint64_t)a->srtt_us;
	if (a->copy_delay_n)
		a->stats[RP_AG_copy_delay_us] = a->copy_delay_sum_ns / a->copy_delay_n / 1000;
	for (uint32_t i = 0; i < __RP_AG_STAT_MAX; i++)
		bpf_map_update_elem(fd, &i, &a->stats[i], 0);
}

static int run(struct rp_agent *a, const sigset_t *sigs)
{
	struct epoll_event ev, events[4];
	uint64_t next_publish = 0, next_save = rp_mono_ns() + RP_APP_SAVE_MS * 1000000ull;
	int ep, sfd, err = 0;

	sfd = signalfd(-1, sigs, SFD_CLOEXEC);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || ep < 0)
		return -errno;
	ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = sfd };
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = a->sock };
	epoll_ctl(ep, EPOLL_CTL_ADD, a->sock, &ev);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = rp_rtx_epoll_fd(a) };
	epoll_ctl(ep, EPOLL_CTL_ADD, rp_rtx_epoll_fd(a), &ev);

	for (;;) {
		uint64_t now = rp_mono_ns();
		int timeout_ms, n;

		rp_hb_tick(a, now);
		rp_rtx_poll(a, now);
		rp_snap_tick(a, now);
		rp_expiry_tick(a, now);
		if (now >= next_publish) {
			rp_agent_publish(a);
			next_publish = now + 100000000ull;
		}
		if (a->cfg.app->save && now >= next_save) {
			a->cfg.app->save(a->skel, &a->cfg);
			next_save = now + RP_APP_SAVE_MS * 1000000ull;
		}
		/* 1 ms while copies wait on their RTO, else until the next heartbeat */
		if (a->nslots_used)
			timeout_ms = 1;
		else
			timeout_ms = a->next_hb_ns > now ? (int)((a->next_hb_ns - now) / 1000000) + 1 : 0;
		if (a->snap && timeout_ms > 0) {
			uint64_t to = a->next_snap_ns > now ? a->next_snap_ns - now : 0;

			if ((uint64_t)timeout_ms * 1000000 > to)
				timeout_ms = (int)(to / 1000000);	/* on time, not a ms late */
		}
		n = epoll_wait(ep, events, 4, timeout_ms);
		if (n < 0 && errno != EINTR) {
			err = -errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			if (events[i].data.fd == sfd)
				goto out;
			if (events[i].data.fd == a->sock)
				rp_hb_receive(a, rp_mono_ns());
		}
	}
out:
	close(ep);
	close(sfd);
	return err;
}

int main(int argc, char **argv)
{
	static struct rp_agent agent = { .lock_fd = -1, .sock = -1 };
	struct rp_agent *a = &agent;
	const char *status = NULL;
	bool started = false;	/* the app's state restored: saved at exit */
	sigset_t sigs;
	int err;

	err = parse_args(argc, argv, &a->cfg, &status);
	if (err < 0)
		return 2;
	if (status)
		return rp_status(status);
	if (err)
		return 0;
	verbose = a->cfg.verbose;
	if (verbose)
		rp_log_set_level(RP_LOG_DEBUG);
	libbpf_set_print(libbpf_print);

	if (geteuid() != 0) {
		pr_warn("rp-load: must run as root: it loads XDP programs and pins maps\n");
		return 1;
	}
	/*
	 * Taken from here on by the main loop's signalfd: a signal during
	 * start-up waits for it, so the cleanup always runs.  SIGHUP too.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	for (unsigned int i = 0; i < a->cfg.nifaces; i++) {
		a->ifindex[i] = (int)if_nametoindex(a->cfg.ifnames[i]);
		if (!a->ifindex[i]) {
			pr_warn("rp-load: no interface '%s'\n", a->cfg.ifnames[i]);
			return 1;
		}
	}
	err = find_source(a);
	if (!err) {
		bool attached = false;

		for (unsigned int i = 0; i < a->cfg.nifaces; i++)
			attached |= !strcmp(a->cfg.ifnames[i], a->store_ifname);
		if (!attached) {
			/* the stores' answers are handled by the data plane there */
			pr_warn("rp-load: the interface toward the store, '%s', must be one of the interfaces\n",
				a->store_ifname);
			err = -EINVAL;
		}
	}
	if (!err)
		err = open_socket(a);
	if (!err)
		err = ensure_bpffs();
	if (err)
		goto cleanup;
	err = lock_pins(a);
	if (err) {
		pr_warn("rp-load: Couldn't lock %s: %s\n", RP_PIN_ROOT, strerror(-err));
		goto cleanup;
	}
	err = load(a);
	/* before the first packet: nothing is handed out from a state not restored */
	if (!err && a->cfg.app->started)
		err = a->cfg.app->started(a->skel, &a->cfg);
	started = !err;
	if (!err)
		err = pin(a);
	if (!err)
		err = attach(a);
	unlock_pins(a);
	if (err)
		goto cleanup;
	err = rp_rtx_init(a);
	if (!err)
		err = rp_hb_init(a);
	if (!err)
		err = rp_snap_init(a);
	if (err)
		goto cleanup;
	rp_expiry_init(a);

	printf("rp-load: switch %u (%s, %s) on", a->cfg.switch_id, a->cfg.app->name,
	       a->cfg.bounded ? "bounded" : "linearizable");
	for (unsigned int i = 0; i < a->cfg.nifaces; i++)
		printf(" %s", a->cfg.ifnames[i]);
	printf(", protocol endpoint %s:%u on %s\n", inet_ntoa(a->src_addr), a->src_port,
	       a->store_ifname);
	fflush(stdout);

	err = run(a, &sigs);

cleanup:
	if (started && a->cfg.app->save)
		a->cfg.app->save(a->skel, &a->cfg);
	if (a->skel) {
		lock_pins(a);
		detach(a);
		unpin(a);
		unlock_pins(a);
	}
	rp_rtx_free(a);
	rp_snap_free(a);
	rp_expiry_free(a);
	if (a->skel)
		redplane__destroy(a->skel);
	if (a->sock >= 0)
		close(a->sock);
	if (a->stats[RP_AG_heartbeats_sent])
		fprintf(stderr,
			"rp-load: detached; heartbeats %llu/%llu acked, writes %llu tracked, %llu acked, "
			"%llu retransmitted, %llu given up; copies reached rp-load %.1f us after "
			"their request left (mean)\n",
			(unsigned long long)a->stats[RP_AG_heartbeat_acks],
			(unsigned long long)a->stats[RP_AG_heartbeats_sent],
			(unsigned long long)a->stats[RP_AG_writes_tracked],
			(unsigned long long)a->stats[RP_AG_writes_acked],
			(unsigned long long)(a->stats[RP_AG_retransmits] +
					     a->stats[RP_AG_retransmits_udp]),
			(unsigned long long)a->stats[RP_AG_gave_up],
			a->copy_delay_n ? (double)a->copy_delay_sum_ns / (double)a->copy_delay_n / 1e3
					: 0.0);
	return err ? 1 : 0;
}
