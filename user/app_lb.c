// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* rp-load's side of the L4 load balancer (bpf/app_lb.h): the VIP and its backends. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "redplane/log.h"
#include "redplane/parse.h"
#include "redplane.skel.h"

enum {
	OPT_LB_VIP = RP_APP_OPT(RP_APP_LB, 0),
	OPT_LB_BACKENDS,
	OPT_LB_DRAIN,
};

static const struct option lb_options[] = {
	{ "lb-vip", required_argument, NULL, OPT_LB_VIP },
	{ "lb-backends", required_argument, NULL, OPT_LB_BACKENDS },
	{ "lb-drain", required_argument, NULL, OPT_LB_DRAIN },
	{ NULL, 0, NULL, 0 },
};

/* A:P,B:P,... into list[*n..), at most `room` more. */
static int parse_backends(const char *opt, const char *arg, struct sockaddr_in *list,
			  unsigned int *n, unsigned int room)
{
	const char *p = arg;

	for (unsigned int added = 0;; added++) {
		size_t len = strcspn(p, ",");

		if (added == room) {
			pr_warn("rp-load: invalid %s '%s': at most %d backends, draining ones included\n",
				opt, arg, RP_LB_MAX_BACKENDS);
			return -EINVAL;
		}
		if (rp_parse_endpoint("rp-load", opt, p, len, &list[*n]))
			return -EINVAL;
		for (unsigned int i = 0; i < *n; i++)
			if (list[i].sin_addr.s_addr == list[*n].sin_addr.s_addr &&
			    list[i].sin_port == list[*n].sin_port) {
				pr_warn("rp-load: invalid %s '%s': backend '%.*s' listed twice\n", opt,
					arg, (int)len, p);
				return -EINVAL;
			}
		(*n)++;
		p += len;
		if (!*p++)
			return 0;
	}
}

static int lb_parse(struct rp_load_cfg *cfg, int opt, const char *arg)
{
	struct rp_lb_cfg *lb = &cfg->lb;

	switch (opt) {
	case OPT_LB_VIP:
		lb->have_vip = true;
		return rp_parse_endpoint("rp-load", "--lb-vip", arg, strlen(arg), &lb->vip);
	case OPT_LB_BACKENDS:
		if (lb->nbackends) {
			pr_warn("rp-load: --lb-backends given twice\n");
			return -EINVAL;
		}
		return parse_backends("--lb-backends", arg, lb->backends, &lb->nbackends,
				      RP_LB_MAX_BACKENDS);
	case OPT_LB_DRAIN:
		if (lb->ndrain) {
			pr_warn("rp-load: --lb-drain given twice\n");
			return -EINVAL;
		}
		return parse_backends("--lb-drain", arg, lb->drain, &lb->ndrain, RP_LB_MAX_BACKENDS);
	}
	return -EINVAL;
}

static int lb_check(struct rp_load_cfg *cfg)
{
	struct rp_lb_cfg *lb = &cfg->lb;

	if (!lb->have_vip || !lb->nbackends) {
		pr_warn("rp-load: --app lb needs --lb-vip and --lb-backends\n");
		return -EINVAL;
	}
	if (lb->nbackends + lb->ndrain > RP_LB_MAX_BACKENDS) {
		pr_warn("rp-load: at most %d backends, draining ones included\n",
			RP_LB_MAX_BACKENDS);
		return -EINVAL;
	}
	for (unsigned int i = 0; i < lb->ndrain; i++)
		for (unsigned int j = 0; j < lb->nbackends; j++)
			if (lb->backends[j].sin_addr.s_addr == lb->drain[i].sin_addr.s_addr &&
			    lb->backends[j].sin_port == lb->drain[i].sin_port) {
				pr_warn("rp-load: backend %s:%u is in both --lb-backends and --lb-drain\n",
					inet_ntoa(lb->drain[i].sin_addr), ntohs(lb->drain[i].sin_port));
				return -EINVAL;
			}
	return 0;
}

static void lb_configure(struct redplane *skel, const struct rp_load_cfg *cfg)
{
	const struct rp_lb_cfg *lb = &cfg->lb;
	unsigned int n = lb->nbackends + lb->ndrain;

	skel->rodata->cfg_lb_vip = lb->vip.sin_addr.s_addr;
	skel->rodata->cfg_lb_vport = lb->vip.sin_port;
	skel->rodata->cfg_lb_nbackends = lb->nbackends;
	skel->rodata->cfg_lb_nknown = n;
	/* one table: the backends chosen from, then the draining ones */
	for (unsigned int i = 0; i < n; i++) {
		const struct sockaddr_in *b = i < lb->nbackends ? &lb->backends[i]
								: &lb->drain[i - lb->nbackends];

		skel->rodata->cfg_lb_backends[i].addr = b->sin_addr.s_addr;
		skel->rodata->cfg_lb_backends[i].port = b->sin_port;
	}
}

static struct bpf_program *lb_program(struct redplane *skel)
{
	return skel->progs.rp_app_lb;
}

static bool lb_closing(const struct rp_dp_flow *f)
{
	return f->state_len == sizeof(struct rp_lb_state) &&
	       ((const struct rp_lb_state *)f->state)->closing;
}

/* An LB key's other key: the backend's reply from the client's, and back (bpf/app_lb.h). */
static void lb_other_key(const struct rp_flow_key *k, const struct rp_dp_flow *f,
			 struct rp_flow_key *o)
{
	const struct rp_lb_state *st = (const struct rp_lb_state *)f->state;

	if (st->dir == RP_LB_FWD)
		rp_key_v4(o, k->proto, st->addr, st->port, k->saddr.v4, k->sport);
	else
		rp_key_v4(o, k->proto, k->daddr.v4, k->dport, st->addr, st->port);
}

static void lb_idle(const struct rp_flow_key *k, const struct rp_dp_flow *f,
		    rp_flow_lookup_fn lookup, void *ctx, struct rp_conn_idle *c)
{
	rp_xlate_idle(k, f, lookup, ctx, c, lb_other_key);
}

const struct rp_app rp_app_lb = {
	.name = "lb",
	.id = RP_APP_LB,
	.modes = RP_MODE_LINEARIZABLE,
	.mode_why = "its state decides where packets go, and a packet must never leave on a state the store could lose",
	.summary = "L4 load balancer: one virtual address and port, backends per connection",
	.usage = "      --lb-vip ADDR:PORT   the virtual address and port (TCP and UDP)\n"
		 "      --lb-backends LIST   A.B.C.D:PORT,...: a new connection goes to one, by a\n"
		 "                           hash of its 5-tuple (at most 16, with --lb-drain)\n"
		 "      --lb-drain LIST      backends that take no new connection but whose\n"
		 "                           replies are still known (one removed from the list\n"
		 "                           while its connections last)\n",
	.options = lb_options,
	.parse = lb_parse,
	.check = lb_check,
	.configure = lb_configure,
	.program = lb_program,
	.closing = lb_closing,
	.idle = lb_idle,
};
