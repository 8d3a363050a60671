/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A throwaway network of namespaces for the demo and the integration tests:
 * a client and a server joined through one or two switches, and a store
 * reachable from every switch.
 *
 *                 +--- sw1 ---+
 *   client -------+           +------- server
 *   10.1.0.2      +--- sw2 ---+        198.51.100.2
 *                   \       /
 *                     store 192.0.2.10:4791
 *
 * The client's address (on its loopback) is NATed by the switches to
 * 203.0.113.1.  Routes first go through sw1; rp_topo_route_via() moves them
 * as a routing protocol would.  Names carry a prefix of the caller's choice,
 * so that topologies of parallel tests never meet; switch-side interfaces
 * are named uniquely too, since rp-load pins maps by interface name.
 */
#ifndef __RP_TOPO_H
#define __RP_TOPO_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define RP_TOPO_SWITCHES	2
/*
 * The store links carry a full-size frame inside a request: at least
 * RP_DGRAM_MAX + 28 bytes (docs/PROTOCOL.md).
 */
#define RP_TOPO_STORE_MTU	1700
#define RP_TOPO_STORE		"192.0.2.10:4791"
#define RP_TOPO_CLIENT		"10.1.0.2"
#define RP_TOPO_SERVER		"198.51.100.2"
#define RP_TOPO_EXT		"203.0.113.1"

/*
 * A store chain instead of one store: replica r (0-based) in a namespace of
 * its own, serving 192.0.2.(11 + r):4791 with links on port 4792, behind the
 * store namespace, which routes for them and runs ZooKeeper on
 * RP_TOPO_ZK.  Switches reach 192.0.2.8/29 through the store namespace.
 */
#define RP_TOPO_REPLICAS	3
#define RP_TOPO_ZK		"192.0.2.20:2181"
#define RP_TOPO_CHAIN		"192.0.2.11:4791+192.0.2.12:4791+192.0.2.13:4791"

/*
 * Options of rp_topo_create_with(); rp_topo_create() is all of them off.
 *
 * routers: the client and the server each behind a router of their own, as
 * in a routed network (issue 16):
 *
 *                          +--- sw1 ---+
 *   client --- crt --------+           +-------- srt --- server
 *   10.1.0.2   10.9.1.1    +--- sw2 ---+   10.9.2.1     198.51.100.2
 *
 * The switches' inside links end at the client router (crt), their outside
 * links at the server router (srt); the hosts' routes point at their router
 * and never move, and rp_topo_route_via() moves the routers' routes.
 *
 * queues: veths of that many TX and RX queues (2 to 8) on every link the
 * switches and routers forward over, with RPS over every CPU on the routers'
 * and hosts' receiving ends, so that forwarding (and so the switches' XDP,
 * which a veth runs on the sender's CPU) spreads over the CPUs by flow.
 */
struct rp_topo_opts {
	bool routers;
	unsigned int queues;
};

/* rp_topo_route_side(): which router's (or host's) routes move. */
enum rp_topo_side {
	RP_TOPO_SIDE_CLIENT = 1,	/* the client's default route: outbound */
	RP_TOPO_SIDE_SERVER = 2,	/* the server's routes to the NAT: inbound */
	RP_TOPO_SIDE_BOTH = 3,
};

struct rp_topo_switch {
	char ns[32];
	char if_int[IF_NAMESIZE], if_ext[IF_NAMESIZE], if_sto[IF_NAMESIZE];
	pid_t load_pid;
	char log[96];
};

struct rp_topo {
	char prefix[16];
	unsigned int nswitches;
	char ns_client[32], ns_server[32], ns_store[32];
	struct rp_topo_opts opts;
	/* with opts.routers: the routers' namespaces, else empty */
	char ns_crt[32], ns_srt[32];
	struct rp_topo_switch sw[RP_TOPO_SWITCHES];
	pid_t store_pid;
	char dir[64];		/* logs */
	char store_log[96];
	char bin_dir[256];	/* where rp-store and rp-load are */
	const char *store_list;	/* rp-load's --store (RP_TOPO_STORE unless a chain) */
	/*
	 * rp-load's --app and its options, NULL-terminated; NULL: the NAT of
	 * the client to RP_TOPO_EXT.  Set after rp_topo_create().
	 */
	const char *const *app_args;
	const char *const *store_args;	/* more rp-store arguments (rp_topo_start_store) */

	unsigned int nreplicas;
	char ns_rep[RP_TOPO_REPLICAS][32];
	pid_t rep_pid[RP_TOPO_REPLICAS];
	char rep_log[RP_TOPO_REPLICAS][96];
	char rep_stats[RP_TOPO_REPLICAS][96];
	pid_t zk_pid;
	char zk_log[96];
};

/* Builds it; returns 0 or -errno (and undoes what it did). */
int rp_topo_create(struct rp_topo *t, const char *prefix, unsigned int nswitches,
		   const char *bin_dir);
/* The same with options (NULL: none). */
int rp_topo_create_with(struct rp_topo *t, const char *prefix, unsigned int nswitches,
			const char *bin_dir, const struct rp_topo_opts *opts);
/* Stops what it started, deletes namespaces, pins and logs. Idempotent. */
void rp_topo_destroy(struct rp_topo *t);
/* Stops (SIGTERM) every process it started, and nothing else. */
void rp_topo_stop_all(struct rp_topo *t);

/* A shell command inside a namespace; returns its exit status. */
int rp_topo_sh(const char *ns, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Starts argv in the namespace's network (not mount) namespace. */
pid_t rp_topo_spawn(const char *ns, const char *const *argv, const char *log);
/* SIGTERM (or SIGKILL when `kill`), reap; the exit status, -1 if killed. */
int rp_topo_stop(pid_t *pid, bool kill);
/* Waits up to ms for `what` in the log. */
bool rp_topo_wait_log(const char *log, const char *what, int ms);

/* grace_ms: the store's start-up grace ("0" for the first start) */
int rp_topo_start_store(struct rp_topo *t, const char *lease_ms, const char *grace_ms);
/* rp-load on switch i (0-based) with the app's options (app_args: by default the NAT's) and `extra`. */
int rp_topo_start_switch(struct rp_topo *t, unsigned int i, const char *const *extra);

/*
 * Namespaces for n replicas, and ZooKeeper started in the store namespace;
 * switches started afterwards use the chain.  Returns 0 or -errno.
 */
int rp_topo_add_chain(struct rp_topo *t, unsigned int n);
/* Replica r: rp-store --zk ... --replica-id r+1 with `extra` options. */
int rp_topo_start_replica(struct rp_topo *t, unsigned int r, const char *const *extra);
/* Cuts replica r off from the other replicas and ZooKeeper (not from switches), or heals. */
int rp_topo_partition_replica(struct rp_topo *t, unsigned int r, bool cut);
/* A counter from replica r's stats file; -1 if none.  Its chain_role into role. */
long long rp_topo_replica_stat(struct rp_topo *t, unsigned int r, const char *name);
/*
 * One short connection client -> the server's listening socket lfd (srv):
 * connect (SYN retransmissions allowed), one byte each way, the client
 * closes first, then the server; every wait at most ms.  NULL, or what
 * failed.
 */
const char *rp_topo_short_conn(struct rp_topo *t, int lfd, const struct sockaddr_in *srv, int ms);
/* A counter `name` from a stats file of rp-store's (--stats-file PATH); -1 if none. */
long long rp_topo_file_stat(const char *path, const char *name);
/*
 * A data plane object's program array made ready: the root program at its
 * slot, the application's at its id's (what rp-load does for the programs
 * of one application).  0 or -errno.
 */
int rp_topo_prog_array(int map_fd, int root_fd, unsigned int app, int app_fd);
bool rp_topo_replica_role(struct rp_topo *t, unsigned int r, char *role, size_t size);
/*
 * Asks replica r for its flows (SIGUSR2, --dump-file) and compares them
 * with switch i's: returns how many flows the switch has held whose newest
 * ACKed sequence number the replica lacks (or has an older one), or -errno;
 * only the flows of the switch's store chain `chain` (its --store index) count;
 * *checked counts the flows compared.
 */
int rp_topo_check_acked(struct rp_topo *t, unsigned int r, unsigned int i, unsigned int chain,
			unsigned int *checked);

/*
 * Client's default route, and server's routes to the NAT address and to the
 * client's prefix (for applications that do not translate it), via switch i.
 * With routers, the routers' routes, both in one command.
 */
int rp_topo_route_via(struct rp_topo *t, unsigned int i);
/*
 * One side's routes only (or both): via switch i, or, with i ==
 * RP_TOPO_BLACKHOLE, into a blackhole (what that side sends toward the
 * switches is dropped without a word, as while a routing protocol
 * converges).  With routers, the router's; else the host's.
 */
#define RP_TOPO_BLACKHOLE	(~0u)
int rp_topo_route_side(struct rp_topo *t, unsigned int i, enum rp_topo_side side);
/* A crash: the agent killed with SIGKILL, the switch's links down. */
int rp_topo_fail_switch(struct rp_topo *t, unsigned int i);
/*
 * A failed switch comes back as after a reboot: no XDP program, no pins,
 * links up.  Start its rp-load again with rp_topo_start_switch().
 */
int rp_topo_restore_switch(struct rp_topo *t, unsigned int i);

/*
 * The kernel's own NAT instead (nftables, random ports): what a switch
 * without redplane does, its state only in its own conntrack table.
 */
int rp_topo_kernel_nat(struct rp_topo *t, unsigned int i);

/*
 * Compares the leases two switches held (the since/until marks of their
 * flows maps; a lease not given up ends now, or when the session it was
 * held under expired, as the data plane judges it): returns how many flows
 * were held by both at one instant;
 * *handed is set to how many flows both held at some time, and the gaps
 * between one letting go and the other taking over to their least and most.
 */
int rp_topo_lease_overlaps(struct rp_topo *t, unsigned int a, unsigned int b,
			   unsigned int *handed, uint64_t *min_gap_ns, uint64_t *max_gap_ns);

/* XDP in native mode on a namespace's interface (replacing what is there). */
int rp_topo_xdp_attach(const char *ns, const char *ifname, int prog_fd);
bool rp_topo_xdp_attached(const char *ns, const char *ifname);
/* TC programs on a namespace's interface (clsact; -1 leaves a direction alone). */
int rp_topo_tc_attach(const char *ns, const char *ifname, int ingress_fd, int egress_fd);

/*
 * Another address of the server (on its loopback), which every switch routes
 * to it: the server's network, 198.51.100.0/24, is behind each switch.
 */
int rp_topo_server_addr(struct rp_topo *t, const char *addr);

/* Moves the calling thread into a namespace's network namespace; 0 or -errno. */
int rp_topo_enter_ns(const char *ns);

/* A socket made in a namespace (it stays there). */
int rp_topo_socket(const char *ns, int domain, int type);
int rp_topo_socket_proto(const char *ns, int domain, int type, int protocol);

/* Switch i's pinned map `map` (flows, sessions, heavy, ...): a descriptor, or -errno. */
int rp_topo_open_pin(struct rp_topo *t, unsigned int i, const char *map);
/* A data plane counter of switch i (summed over CPUs), from its pins; -1 if none. */
long long rp_topo_dp_stat(struct rp_topo *t, unsigned int i, const char *name);
long long rp_topo_agent_stat(struct rp_topo *t, unsigned int i, const char *name);

#endif /* __RP_TOPO_H */
