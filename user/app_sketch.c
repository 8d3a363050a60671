// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* rp-load's side of the count-min sketch (bpf/app_sketch.h): its options, its heavy hitters. */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "agent.h"
#include "redplane/log.h"
#include "redplane/parse.h"
#include "redplane.skel.h"

enum {
	OPT_SKETCH_ID = RP_APP_OPT(RP_APP_SKETCH, 0),
	OPT_SKETCH_THRESHOLD,
};

static const struct option sketch_options[] = {
	{ "sketch-id", required_argument, NULL, OPT_SKETCH_ID },
	{ "sketch-threshold", required_argument, NULL, OPT_SKETCH_THRESHOLD },
	{ NULL, 0, NULL, 0 },
};

static int sketch_parse(struct rp_load_cfg *cfg, int opt, const char *arg)
{
	uint32_t v;

	switch (opt) {
	case OPT_SKETCH_ID:
		return rp_parse_u32("rp-load", "--sketch-id", arg, 1, UINT32_MAX, &cfg->sketch.id);
	case OPT_SKETCH_THRESHOLD:
		if (rp_parse_u32("rp-load", "--sketch-threshold", arg, 1, UINT32_MAX, &v))
			return -EINVAL;
		cfg->sketch.threshold = v;
		return 0;
	}
	return -EINVAL;
}

static int sketch_check(struct rp_load_cfg *cfg)
{
	if (!cfg->sketch.id)
		cfg->sketch.id = 1;
	if (!cfg->sketch.threshold)
		cfg->sketch.threshold = 1000;
	return 0;
}

static void sketch_configure(struct redplane *skel, const struct rp_load_cfg *cfg)
{
	skel->rodata->cfg_sketch_id = cfg->sketch.id;
	skel->rodata->cfg_sketch_threshold = cfg->sketch.threshold;
}

static struct bpf_program *sketch_program(struct redplane *skel)
{
	return skel->progs.rp_app_sketch;
}

static int by_estimate(const void *a, const void *b)
{
	const struct rp_sketch_heavy *x = a, *y = b;

	return x->estimate < y->estimate ? 1 : x->estimate > y->estimate ? -1 : 0;
}

/* The heavy hitters, largest first. */
static void sketch_status(const char *ifname)
{
	struct {
		struct rp_sketch_heavy h;
		__be32 addr;
	} *hh = NULL;
	int fd = rp_open_pin(ifname, "heavy"), n = 0;
	__be32 key, *prev = NULL;
	uint64_t now = rp_mono_ns();

	if (fd < 0)
		return;
	hh = calloc(1024, sizeof(*hh));
	while (hh && n < 1024 && !bpf_map_get_next_key(fd, prev, &key)) {
		prev = &hh[n].addr;
		hh[n].addr = key;
		if (!bpf_map_lookup_elem(fd, &key, &hh[n].h))
			n++;
	}
	/* struct rp_sketch_heavy first: the comparison reads it */
	if (hh)
		qsort(hh, (size_t)n, sizeof(*hh), by_estimate);
	printf("\nheavy hitters (estimated packets, last seen):\n");
	for (int i = 0; i < n; i++) {
		struct in_addr a = { .s_addr = hh[i].addr };

		printf("  %-15s %llu  %llu ms ago\n", inet_ntoa(a),
		       (unsigned long long)hh[i].h.estimate,
		       (unsigned long long)(now > hh[i].h.seen_ns ? (now - hh[i].h.seen_ns) / 1000000
								  : 0));
	}
	free(hh);
	close(fd);
}

const struct rp_app rp_app_sketch = {
	.name = "sketch",
	.id = RP_APP_SKETCH,
	.modes = RP_MODE_BOUNDED,
	.bounded_default = true,
	.mode_why = "every packet changes cells of several chunks, and a packet rides in one write",
	.summary = "count-min sketch of packets per source address, with heavy hitters",
	.usage = "      --sketch-id N        the sketch (default 1): switches with the same id share\n"
		 "                           it, and it moves to whichever one the traffic crosses\n"
		 "      --sketch-threshold N a source estimated at N packets or more is a heavy\n"
		 "                           hitter (default 1000): rp-load --status lists them\n",
	.options = sketch_options,
	.parse = sketch_parse,
	.check = sketch_check,
	.configure = sketch_configure,
	.program = sketch_program,
	.status = sketch_status,
};
