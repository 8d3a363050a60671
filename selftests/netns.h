/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A throwaway switch topology in network namespaces, named after the test
 * process so that tests run in parallel:
 *
 *   client 10.1.0.2 --- [int] switch [ext] --- server 198.51.100.2
 *                             [sto]
 *                               |
 *                         store 192.0.2.10:4791
 *
 * The switch NATs 10.1.0.0/24 to 203.0.113.1.  The far ends of the links run
 * veth_peer.bpf.c (a veth delivers redirected frames only to a peer with an
 * XDP program; it also injects loss toward the store).
 */
#ifndef __RP_NETNS_H
#define __RP_NETNS_H

#include <net/if.h>
#include <stdbool.h>
#include <sys/types.h>

enum rp_host { RP_CLIENT, RP_SWITCH, RP_SERVER, RP_STORE, __RP_HOSTS };

struct veth_peer;

struct rp_topo {
	char ns[__RP_HOSTS][32];
	char if_int[IF_NAMESIZE], if_ext[IF_NAMESIZE], if_sto[IF_NAMESIZE];
	struct veth_peer *link;	/* the far ends' program: passes, injects loss */
	pid_t store_pid, load_pid;
	char dir[64];		/* logs */
	char load_log[96], store_log[96];
};

/* Skips the test unless root; builds everything, or fails the test. */
void rp_topo_up(struct rp_topo *t);
/* Stops what it started, deletes the namespaces. Safe to call twice. */
void rp_topo_down(struct rp_topo *t);

/* Runs a shell command inside host h's namespace; returns its status. */
int rp_topo_sh(struct rp_topo *t, enum rp_host h, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Starts argv in host h's network namespace (same mount namespace). */
pid_t rp_topo_spawn(struct rp_topo *t, enum rp_host h, const char *const *argv,
		    const char *log);

/* rp-store on the store host, rp-load on the switch (extra args appended). */
void rp_topo_start_store(struct rp_topo *t, const char *lease_ms);
void rp_topo_start_load(struct rp_topo *t, const char *const *extra);
/* SIGTERM and reap; returns the exit status, -1 if it had to be killed. */
int rp_topo_stop(pid_t *pid);

/* A socket created in host h's namespace. */
int rp_topo_socket(struct rp_topo *t, enum rp_host h, int type);

/* One of rp-load's agent counters, from its pinned map. */
unsigned long long rp_topo_agent_stat(struct rp_topo *t, const char *name);
/* True when an XDP program is attached to the switch's interface. */
bool rp_topo_xdp_attached(struct rp_topo *t, const char *ifname);

const char *rp_test_load_bin(void);

#endif /* __RP_NETNS_H */
