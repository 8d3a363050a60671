// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* rp-load's side of the NAT (bpf/app_nat.h): its options and settings. */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "redplane/log.h"
#include "redplane/parse.h"
#include "redplane.skel.h"

enum {
	OPT_NAT_INT = RP_APP_OPT(RP_APP_NAT, 0),
	OPT_NAT_EXT,
	OPT_NAT_PORTS,
	OPT_NAT_SWITCHES,
};

static const struct option nat_options[] = {
	{ "nat-int", required_argument, NULL, OPT_NAT_INT },
	{ "nat-ext", required_argument, NULL, OPT_NAT_EXT },
	{ "nat-ports", required_argument, NULL, OPT_NAT_PORTS },
	{ "nat-switches", required_argument, NULL, OPT_NAT_SWITCHES },
	{ NULL, 0, NULL, 0 },
};

static int nat_parse(struct rp_load_cfg *cfg, int opt, const char *arg)
{
	struct rp_nat_cfg *n = &cfg->nat;
	uint32_t v, lo, hi;
	char extra;

	switch (opt) {
	case OPT_NAT_INT:
		n->have_int = true;
		return rp_parse_prefix("--nat-int", arg, &n->int_net, &n->int_mask);
	case OPT_NAT_EXT:
		if (inet_pton(AF_INET, arg, &n->ext) != 1) {
			pr_warn("rp-load: invalid --nat-ext '%s': expected A.B.C.D\n", arg);
			return -EINVAL;
		}
		n->have_ext = true;
		return 0;
	case OPT_NAT_PORTS:
		if (sscanf(arg, "%u-%u%c", &lo, &hi, &extra) != 2 || lo < 1 || hi > 65535 || lo > hi) {
			pr_warn("rp-load: invalid --nat-ports '%s': expected LO-HI\n", arg);
			return -EINVAL;
		}
		n->port_lo = (uint16_t)lo;
		n->port_hi = (uint16_t)hi;
		return 0;
	case OPT_NAT_SWITCHES:
		if (rp_parse_u32("rp-load", "--nat-switches", arg, 1, 4096, &v))
			return -EINVAL;
		n->switches = (uint16_t)v;
		return 0;
	}
	return -EINVAL;
}

static int nat_check(struct rp_load_cfg *cfg)
{
	struct rp_nat_cfg *n = &cfg->nat;

	if (!n->port_lo) {	/* defaults */
		n->port_lo = 1024;
		n->port_hi = 65535;
	}
	if (!n->switches)
		n->switches = 16;
	if (!n->have_int || !n->have_ext) {
		pr_warn("rp-load: --app nat needs --nat-int and --nat-ext\n");
		return -EINVAL;
	}
	if ((n->port_hi - n->port_lo + 1u) / n->switches < 1) {
		pr_warn("rp-load: --nat-ports leaves no port per switch for --nat-switches %u\n",
			n->switches);
		return -EINVAL;
	}
	if (cfg->switch_id > n->switches) {
		/* the ranges go by id: a larger one would be another switch's */
		pr_warn("rp-load: --switch-id %u is greater than --nat-switches %u: it would hand out the ports of --switch-id %u (raise --nat-switches)\n",
			cfg->switch_id, n->switches, (cfg->switch_id - 1u) % n->switches + 1u);
		return -EINVAL;
	}
	return 0;
}

static void nat_configure(struct redplane *skel, const struct rp_load_cfg *cfg)
{
	const struct rp_nat_cfg *n = &cfg->nat;
	uint32_t per = (n->port_hi - n->port_lo + 1u) / n->switches;

	skel->rodata->cfg_nat_int_net = n->int_net.s_addr;
	skel->rodata->cfg_nat_int_mask = n->int_mask.s_addr;
	skel->rodata->cfg_nat_ext_addr = n->ext.s_addr;
	/* ports partitioned by switch id: two switches never hand out the same */
	skel->rodata->cfg_nat_port_base =
		(uint16_t)(n->port_lo + ((cfg->switch_id - 1u) % n->switches) * per);
	skel->rodata->cfg_nat_port_span = (uint16_t)per;
}

/*
 * The state file: where the search for a port starts (the nat_ports map,
 * bpf/app_nat.h), so that a restarted switch goes on from there instead of
 * handing out the ports its last connections had first.  One per switch,
 * named after its first interface.
 */
static void nat_state_path(const struct rp_load_cfg *cfg, char *path, size_t size)
{
	snprintf(path, size, "%s/%s.nat", cfg->state_dir ? cfg->state_dir : RP_STATE_DIR,
		 cfg->ifnames[0]);
}

/* The position saved in `path`: 0 or a negative errno. */
static int nat_read_next(const char *path, uint32_t *next)
{
	FILE *f = fopen(path, "r");
	char line[128], extra;
	int err = -EINVAL;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#')
			continue;
		if (sscanf(line, "next %u %c", next, &extra) == 1)
			err = 0;
		break;
	}
	fclose(f);
	return err;
}

/* mkdir -p */
static int nat_make_dir(const char *dir)
{
	char p[PATH_MAX];

	if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p))
		return -ENAMETOOLONG;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Written whole beside it, then renamed: a crash leaves the old file or the new. */
static int nat_write_next(const struct rp_load_cfg *cfg, const char *path, uint32_t next)
{
	char tmp[PATH_MAX + 8];
	int err;
	FILE *f;

	err = nat_make_dir(cfg->state_dir ? cfg->state_dir : RP_STATE_DIR);
	if (err)
		return err;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "# rp-load --app nat: where the search for a port starts, an index into\n"
		   "# this switch's share of --nat-ports\n"
		   "next %u\n", next);
	if (fflush(f) || fsync(fileno(f)))
		err = -errno;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

static int nat_started(struct redplane *skel, const struct rp_load_cfg *cfg)
{
	uint32_t span = skel->rodata->cfg_nat_port_span, zero = 0, next;
	char path[PATH_MAX];
	bool saved;
	int err;

	nat_state_path(cfg, path, sizeof(path));
	err = nat_read_next(path, &next);
	saved = !err;
	if (err) {
		if (err != -ENOENT)
			pr_warn("rp-load: Couldn't read '%s': %s\n", path,
				err == -EINVAL ? "not a NAT state file" : strerror(-err));
		/*
		 * Nothing saved: anywhere but the first port, which every
		 * switch without a saved position would start at again.
		 */
		if (getrandom(&next, sizeof(next), 0) != sizeof(next))
			next = (uint32_t)getpid();
	}
	next %= span;
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.nat_ports), &zero, &next, 0)) {
		err = -errno;
		pr_warn("rp-load: Couldn't set the NAT's port position: %s\n", strerror(-err));
		return err;
	}
	pr_info("rp-load: NAT ports from %u (%s)\n", skel->rodata->cfg_nat_port_base + next,
		saved ? path : "random, none saved");
	return 0;
}

static void nat_save(struct redplane *skel, const struct rp_load_cfg *cfg)
{
	/* said once, not every period; again when it changes */
	static int last_err;
	uint32_t span = skel->rodata->cfg_nat_port_span, zero = 0, next;
	char path[PATH_MAX];
	int err = 0;

	nat_state_path(cfg, path, sizeof(path));
	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.nat_ports), &zero, &next))
		err = -errno;
	if (!err)
		err = nat_write_next(cfg, path, next % span);
	if (err && err != last_err)
		pr_warn("rp-load: Couldn't save the NAT's port position to '%s': %s\n", path,
			strerror(-err));
	last_err = err;
}

static struct bpf_program *nat_program(struct redplane *skel)
{
	return skel->progs.rp_app_nat;
}

static bool nat_closing(const struct rp_dp_flow *f)
{
	return f->state_len == sizeof(struct rp_nat_state) &&
	       ((const struct rp_nat_state *)f->state)->closing;
}

/* A NAT key's other key: the reverse from the forward, and back (bpf/app_nat.h). */
static void nat_other_key(const struct rp_flow_key *k, const struct rp_dp_flow *f,
			  struct rp_flow_key *o)
{
	const struct rp_nat_state *st = (const struct rp_nat_state *)f->state;

	if (st->dir == RP_NAT_FWD)
		rp_key_v4(o, k->proto, k->daddr.v4, k->dport, st->addr, st->port);
	else
		rp_key_v4(o, k->proto, st->addr, st->port, k->saddr.v4, k->sport);
}

static void nat_idle(const struct rp_flow_key *k, const struct rp_dp_flow *f,
		     rp_flow_lookup_fn lookup, void *ctx, struct rp_conn_idle *c)
{
	rp_xlate_idle(k, f, lookup, ctx, c, nat_other_key);
}

const struct rp_app rp_app_nat = {
	.name = "nat",
	.id = RP_APP_NAT,
	.modes = RP_MODE_LINEARIZABLE,
	.mode_why = "its state decides where packets go, and a packet must never leave on a state the store could lose",
	.summary = "source NAT of an inside prefix to one external address",
	.usage = "      --nat-int PREFIX     the inside prefix to translate (A.B.C.D/LEN)\n"
		 "      --nat-ext ADDR       the external address\n"
		 "      --nat-ports LO-HI    external ports shared by all switches (default 1024-65535)\n"
		 "      --nat-switches N     switches sharing them: each gets 1/N, --switch-id 1 to N\n"
		 "                           (default 16); where this switch's search for a port\n"
		 "                           goes on after a restart is kept in --state-dir\n",
	.options = nat_options,
	.parse = nat_parse,
	.check = nat_check,
	.configure = nat_configure,
	.program = nat_program,
	.closing = nat_closing,
	.idle = nat_idle,
	.started = nat_started,
	.save = nat_save,
};
