// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* rp-load's side of the NAT (bpf/app_nat.h): its options and settings. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

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
		 "      --nat-switches N     switches sharing them: each gets 1/N (default 16)\n",
	.options = nat_options,
	.parse = nat_parse,
	.check = nat_check,
	.configure = nat_configure,
	.program = nat_program,
	.closing = nat_closing,
	.idle = nat_idle,
};
