// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* rp-load's side of the per-flow counters (bpf/app_counter.h): no options. */
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
};
