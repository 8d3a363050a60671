// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* `rp-load --status IFACE`: what a running rp-load's data plane is doing. */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "redplane/log.h"

static const char *const dp_names[] = {
#define X(name) #name,
	RP_DP_STATS(X)
#undef X
};

static const char *const agent_names[] = {
#define X(name) #name,
	RP_AGENT_STATS(X)
#undef X
};

int rp_open_pin(const char *ifname, const char *map)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s/%s", RP_PIN_ROOT, ifname, map);
	fd = bpf_obj_get(path);
	if (fd < 0)
		pr_warn("rp-load: Couldn't open '%s': %s (is rp-load running on '%s'?)\n", path,
			strerror(errno), ifname);
	return fd;
}

static void print_session(uint32_t i, const struct rp_dp_session *s, uint64_t now)
{
	struct sockaddr_in head = { .sin_family = AF_INET, .sin_addr.s_addr = s->head.addr,
				    .sin_port = s->head.port };
	char addr[RP_ADDRSTRLEN];

	printf("  store %u: head %s, ", i,
	       rp_addr_str((const struct sockaddr *)&head, addr, sizeof(addr)));
	if (!s->epoch)
		printf("no session yet\n");
	else if (now < s->expiry_ns)
		printf("epoch %u, live for %llu ms more\n", s->epoch,
		       (unsigned long long)((s->expiry_ns - now) / 1000000));
	else
		printf("epoch %u, LAPSED\n", s->epoch);
}

int rp_status(const char *ifname)
{
	int stats = rp_open_pin(ifname, "stats"), agent = rp_open_pin(ifname, "agent_stats");
	int flows = rp_open_pin(ifname, "flows"), sessions = rp_open_pin(ifname, "sessions");
	int info_fd = rp_open_pin(ifname, "info");
	struct rp_dp_info info = { 0 };
	const struct rp_app *app;
	int ncpu = libbpf_num_possible_cpus(), err = 1;
	struct rp_dp_session sess[RP_MAX_STORES] = { 0 };
	struct rp_flow_key key, next, *prev = NULL;
	unsigned long long nflows = 0, held = 0, closing = 0;
	uint64_t now = rp_mono_ns();
	uint64_t *vals = NULL;

	if (stats < 0 || agent < 0 || flows < 0 || sessions < 0 || info_fd < 0 || ncpu <= 0)
		goto out;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		goto out;

	bpf_map_lookup_elem(info_fd, &(uint32_t){ 0 }, &info);
	app = rp_app_by_id(info.app);
	printf("redplane on %s: switch %u, app %s\n\nsessions:\n", ifname, info.switch_id,
	       app ? app->name : "?");
	for (uint32_t i = 0; i < RP_MAX_STORES; i++) {
		if (bpf_map_lookup_elem(sessions, &i, &sess[i]) || !sess[i].head.addr)
			continue;	/* no such chain */
		print_session(i, &sess[i], now);
	}

	while (bpf_map_get_next_key(flows, prev, &next) == 0) {
		struct rp_dp_flow f;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem_flags(flows, &key, &f, BPF_F_LOCK))
			continue;
		nflows++;
		if (f.store < RP_MAX_STORES && f.epoch && f.epoch == sess[f.store].epoch &&
		    now < sess[f.store].expiry_ns)
			held++;
		if (app && app->closing && app->closing(&f))
			closing++;
	}
	printf("\nflows: %llu, leases held: %llu, closing: %llu\n", nflows, held, closing);

	printf("\ndata plane (all CPUs):\n");
	for (uint32_t i = 0; i < __RP_DP_STAT_MAX; i++) {
		unsigned long long sum = 0;

		if (bpf_map_lookup_elem(stats, &i, vals))
			continue;
		for (int c = 0; c < ncpu; c++)
			sum += vals[c];
		printf("  %-22s %llu\n", dp_names[i], sum);
	}
	printf("\nagent:\n");
	for (uint32_t i = 0; i < __RP_AG_STAT_MAX; i++) {
		uint64_t v = 0;

		bpf_map_lookup_elem(agent, &i, &v);
		printf("  %-22s %llu\n", agent_names[i], (unsigned long long)v);
	}
	if (app && app->status)
		app->status(ifname);
	err = 0;
out:
	free(vals);
	for (int *fd = (int[]){ stats, agent, flows, sessions, info_fd }, n = 0; n < 5; n++)
		if (fd[n] >= 0)
			close(fd[n]);
	return err;
}
