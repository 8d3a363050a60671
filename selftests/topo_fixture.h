/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The user/topo.h network for Criterion tests, named after the test process. */
#ifndef __TOPO_FIXTURE_H
#define __TOPO_FIXTURE_H

#include "stream.h"
#include "topo.h"

struct veth_peer;

extern struct rp_topo topo;
/*
 * What the next topo_up*() builds: names start with topo_prefix and the
 * test process's id ("rt" unless a suite sets another, so that suites run
 * beside each other never meet), with topo_opts (none unless set).
 */
extern const char *topo_prefix;
extern struct rp_topo_opts topo_opts;
/* The far end of switch i's store link runs this, for loss injection. */
extern struct veth_peer *store_link[RP_TOPO_SWITCHES];

struct link_impair;

/*
 * Faults on switch i's store link: one datagram to the store in drop_every
 * lost (XDP at the far end), one in dup_every duplicated and one in
 * reorder_every delayed behind the next, both ways (TC); 0 turns one off.
 * The caller destroys what it returns.
 */
struct link_impair *topo_impair_store_link(unsigned int i, uint32_t drop_every,
					   uint32_t dup_every, uint32_t reorder_every);

/* Skips without root; builds n switches and starts the store. */
void topo_up(unsigned int nswitches, const char *lease_ms);
/* The same, rp-store with more arguments. */
void topo_up_with(unsigned int nswitches, const char *lease_ms, const char *const *store_args);
/*
 * A slower machine (a software-emulated VM: vmtests/init) sets a longer
 * lease (RP_TEST_LEASE_MS) and a factor for every duration
 * (RP_TEST_TIME_SCALE); each is left as it is when unset or out of range.
 */
void topo_timing(unsigned int *lease_ms, unsigned int *time_scale);
void topo_down(void);
/*
 * Skips without root or ZooKeeper; builds n switches, ZooKeeper and a chain
 * of nreplicas replicas (rp-store with `extra`), started in order and
 * waited for, so replica 0 is the head.  Switches started next use it.
 */
void topo_up_chain(unsigned int nswitches, unsigned int nreplicas, const char *const *extra);
/* The same with replica r in chain chain[r]; the switches' --store is the caller's. */
void topo_up_chains(unsigned int nswitches, unsigned int nreplicas, const char *const *extra,
		    const char *const *chain);
void topo_replica(unsigned int r, const char *const *extra);
/* Waits up to ms for replica r's stats file to show chain_role `role`. */
bool topo_wait_role(unsigned int r, const char *role, int ms);
/* rp-load on switch i with extra arguments; fails the test if it does not join. */
void topo_switch(unsigned int i, const char *const *extra);

struct conn {
	int client, server;
};

/* One TCP connection client -> server:port, and a ping-pong over it. */
struct conn topo_connect(uint16_t port);
void topo_echo(struct conn *c);
int topo_readable(int fd, int ms);

/* rp-load's counters reach the pins every 100 ms. */
#define PUBLISH_MS	200

/*
 * rp-load's counter `name` on switch i once it is at least `min` (or after
 * 10 s: a slow machine publishes late); returns the last value read.
 */
long long topo_agent_stat(unsigned int i, const char *name, long long min);

#endif /* __TOPO_FIXTURE_H */
