// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* rp-load's side of the per-flow counters (bpf/app_counter.h): no options. */
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "agent.h"
#include "redplane.skel.h"

static int counter_check(struct rp_load_cfg *cfg)
{
	(void)cfg;
	return 0;
}

static void counter_configure(struct redplane *skel, const struct rp_load_cfg *cfg)
{
	(void)skel;
	(void)cfg;
}

static struct bpf_program *counter_program(struct redplane *skel)
{
	return skel->progs.rp_app_counter;
}

/*
 * One key for both directions, flags seen from either side together: the
 * phase as one side's (a FIN is a FIN_WAIT); UDP a stream once each side
 * was counted.
 */
static void counter_idle(const struct rp_flow_key *k, const struct rp_dp_flow *f,
			 rp_flow_lookup_fn lookup, void *ctx, struct rp_conn_idle *c)
{
	const struct rp_counter_state *s = (const struct rp_counter_state *)f->state;

	(void)lookup;	/* one key per connection */
	(void)ctx;
	c->seen_ns = f->seen_ns;
	if (k->proto == IPPROTO_TCP)
		c->timeout = rp_tcp_timeout(f->tcp_seen, 0);
	else
		c->timeout = rp_udp_timeout(k->proto, f->state_len == sizeof(*s) &&
							s->pkts[0] && s->pkts[1]);
}

const struct rp_app rp_app_counter = {
	.name = "counter",
	.id = RP_APP_COUNTER,
	.modes = RP_MODE_BOUNDED | RP_MODE_LINEARIZABLE,
	.bounded_default = true,
	.summary = "packet and byte counters per TCP/UDP connection, both directions",
	.usage = "      (no options; --mode bounded by default, linearizable writes every packet)\n",
	.check = counter_check,
	.configure = counter_configure,
	.program = counter_program,
	.idle = counter_idle,
};
