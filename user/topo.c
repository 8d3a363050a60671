// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <linux/if_link.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "redplane/codec.h"
#include "redplane/dp.h"
#include "redplane/log.h"
#include "topo.h"

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int run(const char *cmd)
{
	int rc = system(cmd);

	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int rp_topo_sh(const char *ns, const char *fmt, ...)
{
	char cmd[1536], full[1700];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "ip netns exec %s sh -ec '%s'", ns, cmd);
	return run(full);
}

static int enter_ns(const char *ns)
{
	char path[96];
	int fd, err = 0;

	snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (setns(fd, CLONE_NEWNET))
		err = -errno;
	close(fd);
	return err;
}

int rp_topo_enter_ns(const char *ns)
{
	return enter_ns(ns);
}

int rp_topo_xdp_attach(const char *ns, const char *ifname, int prog_fd)
{
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), err;

	if (self < 0)
		return -errno;
	err = enter_ns(ns);
	if (!err) {
		err = bpf_xdp_attach((int)if_nametoindex(ifname), prog_fd, XDP_FLAGS_DRV_MODE, NULL);
		setns(self, CLONE_NEWNET);
	}
	close(self);
	return err;
}

static int tc_attach(int ifindex, enum bpf_tc_attach_point where, int fd)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = fd);

	return fd < 0 ? 0 : bpf_tc_attach(&hook, &opts);
}

int rp_topo_tc_attach(const char *ns, const char *ifname, int ingress_fd, int egress_fd)
{
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), err;

	if (self < 0)
		return -errno;
	err = enter_ns(ns);
	if (!err) {
		int ifindex = (int)if_nametoindex(ifname);
		/* one clsact qdisc holds both directions */
		DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
				    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);

		err = bpf_tc_hook_create(&hook);
		if (err == -EEXIST)
			err = 0;
		if (!err)
			err = tc_attach(ifindex, BPF_TC_INGRESS, ingress_fd);
		if (!err)
			err = tc_attach(ifindex, BPF_TC_EGRESS, egress_fd);
		setns(self, CLONE_NEWNET);
	}
	close(self);
	return err;
}

bool rp_topo_xdp_attached(const char *ns, const char *ifname)
{
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	__u32 id = 0;

	if (self < 0)
		return false;
	if (!enter_ns(ns)) {
		bpf_xdp_query_id((int)if_nametoindex(ifname), XDP_FLAGS_DRV_MODE, &id);
		setns(self, CLONE_NEWNET);
	}
	close(self);
	return id != 0;
}

int rp_topo_socket(const char *ns, int domain, int type)
{
	return rp_topo_socket_proto(ns, domain, type, 0);
}

int rp_topo_socket_proto(const char *ns, int domain, int type, int protocol)
{
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), fd = -1, err;

	if (self < 0)
		return -errno;
	err = enter_ns(ns);
	if (!err) {
		fd = socket(domain, type | SOCK_CLOEXEC, protocol);
		if (fd < 0)
			err = -errno;
		setns(self, CLONE_NEWNET);
	}
	close(self);
	return err ? err : fd;
}

pid_t rp_topo_spawn(const char *ns, const char *const *argv, const char *log)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	pid_t pid, parent;

	if (fd < 0)
		return -errno;
	parent = getpid();
	pid = fork();
	if (pid == 0) {
		/* it must not outlive its starter, whatever happens to it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || enter_ns(ns))
			_exit(126);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fd);
	return pid < 0 ? -errno : pid;
}

int rp_topo_stop(pid_t *pid, bool kill_it)
{
	int status, ret = -1;

	if (*pid <= 0)
		return -1;
	kill(*pid, kill_it ? SIGKILL : SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(*pid, &status, WNOHANG) == *pid) {
			ret = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			break;
		}
		sleep_ms(10);
	}
	if (ret < 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
	}
	*pid = 0;
	return ret;
}

bool rp_topo_wait_log(const char *log, const char *what, int ms)
{
	for (int waited = 0; waited <= ms; waited += 10) {
		char buf[16384];
		FILE *f = fopen(log, "r");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f)
			fclose(f);
		buf[n] = '\0';
		if (strstr(buf, what))
			return true;
		sleep_ms(10);
	}
	return false;
}

/* Taking a link down deletes the routes through it: this puts them back. */
static int switch_routes(struct rp_topo *t, unsigned int i)
{
	unsigned int n = i + 1;

	return rp_topo_sh(t->sw[i].ns, "ip route replace 10.1.0.0/24 via 10.10.%u.2; "
				      "ip route replace " RP_TOPO_SERVER "/32 via 10.20.%u.2; "
				      "ip route replace 198.51.100.0/24 via 10.20.%u.2; "
				      "ip route replace 192.0.2.8/29 via 192.0.2.%u",
			  n, n, n, 4 * i + 2);
}

static int far_end(struct rp_topo *t, const char *ns, const char *name, unsigned int n,
		   const char *addr)
{
	return rp_topo_sh(ns, "ip addr add %s dev %s%u; ip link set %s%u up; "
			      "ethtool -K %s%u tx off >/dev/null; "
			      "ip link set dev %s%u xdpdrv obj %s/bpf/veth_peer.bpf.o sec xdp",
			  addr, name, n, name, n, name, n, name, n, t->bin_dir);
}

static void remove_pins(struct rp_topo_switch *s);

/*
 * RPS over every CPU on each RX queue of a namespace's interface: a
 * veth without XDP on its end hands what it receives to the backlog of the
 * sending CPU, so without RPS everything one thread sends is forwarded on
 * its CPU; with it, each flow on the CPU its hash picks.
 */
static int spread(const char *ns, const char *dev)
{
	/* ip netns exec mounts the namespace's own sysfs */
	return rp_topo_sh(ns, "m=$(printf %%x $(( (1 << $(nproc)) - 1 ))); "
			      "for q in /sys/class/net/%s/queues/rx-*; do echo $m > $q/rps_cpus; done",
			  dev);
}

static int spread_n(const char *ns, const char *name, unsigned int n)
{
	char dev[24];

	snprintf(dev, sizeof(dev), "%s%u", name, n);
	return spread(ns, dev);
}

/* Where a switch's inside and outside links end: the routers, or the hosts. */
static const char *client_side(const struct rp_topo *t)
{
	return t->opts.routers ? t->ns_crt : t->ns_client;
}

static const char *server_side(const struct rp_topo *t)
{
	return t->opts.routers ? t->ns_srt : t->ns_server;
}

/* "numtxqueues N numrxqueues N " for a multi-queue veth end, or nothing. */
static const char *queues_arg(const struct rp_topo *t, char *buf, size_t size)
{
	buf[0] = '\0';
	if (t->opts.queues > 1)
		snprintf(buf, size, "numtxqueues %u numrxqueues %u ", t->opts.queues,
			 t->opts.queues);
	return buf;
}

/* One switch: three links, addresses, routes (switch i+1 uses 10.10.i+1.0/24 ...). */
static int build_switch(struct rp_topo *t, unsigned int i)
{
	struct rp_topo_switch *s = &t->sw[i];
	unsigned int n = i + 1, sto = 4 * i;
	char c_addr[32], v_addr[32], st_addr[32], q[64];

	queues_arg(t, q, sizeof(q));
	if (rp_topo_sh(s->ns, "ip link set lo up; sysctl -qw net.ipv4.ip_forward=1 "
			      "net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0") ||
	    rp_topo_sh(s->ns, "ip link add %s %stype veth peer name c%u %snetns %s", s->if_int, q,
		       n, q, client_side(t)) ||
	    rp_topo_sh(s->ns, "ip link add %s %stype veth peer name v%u %snetns %s", s->if_ext, q,
		       n, q, server_side(t)) ||
	    rp_topo_sh(s->ns, "ip link add %s %stype veth peer name st%u %snetns %s", s->if_sto, q,
		       n, q, t->ns_store))
		return -EIO;
	if (rp_topo_sh(s->ns,
		       "ip addr add 10.10.%u.1/24 dev %s; ip addr add 10.20.%u.1/24 dev %s; "
		       "ip addr add 192.0.2.%u/30 dev %s; ip link set %s mtu %u; "
		       "for l in %s %s %s; do ip link set $l up; ethtool -K $l tx off >/dev/null; done",
		       n, s->if_int, n, s->if_ext, sto + 1, s->if_sto, s->if_sto, RP_TOPO_STORE_MTU,
		       s->if_int, s->if_ext, s->if_sto) ||
	    switch_routes(t, i))
		return -EIO;
	/*
	 * The far ends: whole checksums (veth would hand XDP partial ones), and
	 * an XDP program, without which a veth drops what XDP redirects to it.
	 */
	snprintf(c_addr, sizeof(c_addr), "10.10.%u.2/24", n);
	snprintf(v_addr, sizeof(v_addr), "10.20.%u.2/24", n);
	snprintf(st_addr, sizeof(st_addr), "192.0.2.%u/30", sto + 2);
	if (far_end(t, client_side(t), "c", n, c_addr) ||
	    far_end(t, server_side(t), "v", n, v_addr) ||
	    far_end(t, t->ns_store, "st", n, st_addr) ||
	    rp_topo_sh(t->ns_store, "ip link set st%u mtu %u", n, RP_TOPO_STORE_MTU))
		return -EIO;
	if (t->opts.queues > 1 &&
	    (spread_n(client_side(t), "c", n) || spread_n(server_side(t), "v", n) ||
	     spread_n(t->ns_store, "st", n)))
		return -EIO;
	return 0;
}

/*
 * A host and its router: the host's link (eth0, 10.9.side.2) to the router
 * (r0, 10.9.side.1), whole checksums both ways (the router forwards into the
 * switches' XDP, which a partial one would reach as is).
 */
static int build_router(struct rp_topo *t, const char *host, const char *router,
			unsigned int side)
{
	char q[64];

	queues_arg(t, q, sizeof(q));
	if (rp_topo_sh(router, "sysctl -qw net.ipv4.ip_forward=1; "
			       "ip link add r0 %stype veth peer name eth0 %snetns %s; "
			       "ip addr add 10.9.%u.1/24 dev r0; ip link set r0 up; "
			       "ethtool -K r0 tx off >/dev/null",
		       q, q, host, side) ||
	    rp_topo_sh(host, "ip addr add 10.9.%u.2/24 dev eth0; ip link set eth0 up; "
			     "ethtool -K eth0 tx off >/dev/null", side))
		return -EIO;
	if (t->opts.queues > 1 && (spread(router, "r0") || spread(host, "eth0")))
		return -EIO;
	return 0;
}

int rp_topo_create(struct rp_topo *t, const char *prefix, unsigned int nswitches,
		   const char *bin_dir)
{
	return rp_topo_create_with(t, prefix, nswitches, bin_dir, NULL);
}

int rp_topo_create_with(struct rp_topo *t, const char *prefix, unsigned int nswitches,
			const char *bin_dir, const struct rp_topo_opts *opts)
{
	/* the hosts, then the routers (names empty without them) */
	const char *hosts[] = { t->ns_client, t->ns_server, t->ns_store, t->ns_crt, t->ns_srt };
	size_t nhosts = 3;
	int err = 0;

	memset(t, 0, sizeof(*t));
	if (nswitches < 1 || nswitches > RP_TOPO_SWITCHES || strlen(prefix) > 9 ||
	    (opts && opts->queues > 8))
		return -EINVAL;
	if (opts)
		t->opts = *opts;
	if (t->opts.routers) {
		snprintf(t->ns_crt, sizeof(t->ns_crt), "%s-crt", prefix);
		snprintf(t->ns_srt, sizeof(t->ns_srt), "%s-srt", prefix);
		nhosts = 5;
	}
	snprintf(t->prefix, sizeof(t->prefix), "%s", prefix);
	t->store_list = RP_TOPO_STORE;
	snprintf(t->bin_dir, sizeof(t->bin_dir), "%s", bin_dir);
	t->nswitches = nswitches;
	snprintf(t->ns_client, sizeof(t->ns_client), "%s-c", prefix);
	snprintf(t->ns_server, sizeof(t->ns_server), "%s-srv", prefix);
	snprintf(t->ns_store, sizeof(t->ns_store), "%s-st", prefix);
	snprintf(t->dir, sizeof(t->dir), "/tmp/%s.XXXXXX", prefix);
	if (!mkdtemp(t->dir))
		return -errno;
	snprintf(t->store_log, sizeof(t->store_log), "%s/rp-store.log", t->dir);
	for (unsigned int i = 0; i < nswitches; i++) {
		struct rp_topo_switch *s = &t->sw[i];

		snprintf(s->ns, sizeof(s->ns), "%s-sw%u", prefix, i + 1);
		snprintf(s->if_int, sizeof(s->if_int), "%si%u", prefix, i + 1);
		snprintf(s->if_ext, sizeof(s->if_ext), "%se%u", prefix, i + 1);
		snprintf(s->if_sto, sizeof(s->if_sto), "%ss%u", prefix, i + 1);
		snprintf(s->log, sizeof(s->log), "%s/rp-load-sw%u.log", t->dir, i + 1);
	}

	for (size_t h = 0; h < nhosts + nswitches; h++) {
		const char *ns = h < nhosts ? hosts[h] : t->sw[h - nhosts].ns;
		char cmd[128];

		/* what a killed run of the same name left behind goes first */
		snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", ns);
		run(cmd);
		if (h >= nhosts)
			remove_pins(&t->sw[h - nhosts]);
		snprintf(cmd, sizeof(cmd), "ip netns add %s", ns);
		if (run(cmd)) {
			err = -EIO;
			goto fail;
		}
	}
	/*
	 * The hosts ignore a route through a link that has lost its carrier, as
	 * a host with two uplinks must: else, between a switch's death and the
	 * routes moving, what the host sends there waits in a neighbour queue
	 * that cannot resolve (3 ARP probes, 1 s apart), and TCP does not
	 * retransmit a segment whose copy is still queued in the host: a stream
	 * stalls for 3 s and more (found by failover-bench).
	 */
	for (size_t h = 0; h < nhosts; h++)
		if (rp_topo_sh(hosts[h], "ip link set lo up; sysctl -qw net.ipv4.conf.all.rp_filter=0 "
					 "net.ipv4.conf.default.rp_filter=0 "
					 "net.ipv4.conf.all.ignore_routes_with_linkdown=1 "
					 "net.ipv4.conf.default.ignore_routes_with_linkdown=1")) {
			err = -EIO;
			goto fail;
		}
	if (rp_topo_sh(t->ns_client, "ip addr add " RP_TOPO_CLIENT "/32 dev lo") ||
	    rp_topo_sh(t->ns_server, "ip addr add " RP_TOPO_SERVER "/32 dev lo") ||
	    rp_topo_sh(t->ns_store, "ip addr add 192.0.2.10/32 dev lo")) {
		err = -EIO;
		goto fail;
	}
	/*
	 * With routers the hosts' routes point at them for good, and the
	 * routers route to each other's side through the switches.
	 */
	if (t->opts.routers &&
	    (build_router(t, t->ns_client, t->ns_crt, 1) ||
	     build_router(t, t->ns_server, t->ns_srt, 2) ||
	     rp_topo_sh(t->ns_client, "ip route add default via 10.9.1.1 src " RP_TOPO_CLIENT) ||
	     rp_topo_sh(t->ns_server, "ip route add " RP_TOPO_EXT "/32 via 10.9.2.1; "
				      "ip route add 10.1.0.0/24 via 10.9.2.1") ||
	     rp_topo_sh(t->ns_crt, "ip route add " RP_TOPO_CLIENT "/32 via 10.9.1.2") ||
	     rp_topo_sh(t->ns_srt, "ip route add 198.51.100.0/24 via 10.9.2.2"))) {
		err = -EIO;
		goto fail;
	}
	for (unsigned int i = 0; i < nswitches; i++) {
		err = build_switch(t, i);
		if (err)
			goto fail;
	}
	err = rp_topo_route_via(t, 0);
	if (err)
		goto fail;
	return 0;
fail:
	pr_warn("topo: Couldn't build the topology '%s'\n", prefix);
	rp_topo_destroy(t);
	return err;
}

int rp_topo_route_via(struct rp_topo *t, unsigned int i)
{
	return rp_topo_route_side(t, i, RP_TOPO_SIDE_BOTH);
}

int rp_topo_route_side(struct rp_topo *t, unsigned int i, enum rp_topo_side side)
{
	const char *cns = client_side(t), *sns = server_side(t);
	/* a router's own address is not the client's: only a host sets the source */
	const char *src = t->opts.routers ? "" : " src " RP_TOPO_CLIENT;
	char cmd[768], c[160] = "true", s[256] = "true";

	if (i != RP_TOPO_BLACKHOLE && i >= t->nswitches)
		return -EINVAL;
	if (i == RP_TOPO_BLACKHOLE) {
		snprintf(c, sizeof(c), "ip -n %s route replace blackhole default", cns);
		snprintf(s, sizeof(s), "ip -n %s route replace blackhole " RP_TOPO_EXT "/32 && "
				       "ip -n %s route replace blackhole 10.1.0.0/24", sns, sns);
	} else {
		snprintf(c, sizeof(c), "ip -n %s route replace default via 10.10.%u.1%s", cns, i + 1,
			 src);
		snprintf(s, sizeof(s), "ip -n %s route replace " RP_TOPO_EXT "/32 via 10.20.%u.1 && "
				       "ip -n %s route replace 10.1.0.0/24 via 10.20.%u.1",
			 sns, i + 1, sns, i + 1);
	}
	/* one command: both sides move within a few milliseconds of each other */
	snprintf(cmd, sizeof(cmd), "%s && %s", side & RP_TOPO_SIDE_CLIENT ? c : "true",
		 side & RP_TOPO_SIDE_SERVER ? s : "true");
	return run(cmd) ? -EIO : 0;
}

int rp_topo_server_addr(struct rp_topo *t, const char *addr)
{
	return rp_topo_sh(t->ns_server, "ip addr add %s/32 dev lo", addr) ? -EIO : 0;
}

int rp_topo_fail_switch(struct rp_topo *t, unsigned int i)
{
	struct rp_topo_switch *s = &t->sw[i];

	rp_topo_stop(&s->load_pid, true);
	return rp_topo_sh(s->ns, "ip link set %s down; ip link set %s down; ip link set %s down",
			  s->if_int, s->if_ext, s->if_sto) ? -EIO : 0;
}

/* Pins live in this mount namespace; `ip netns exec` would see another /sys. */
static void remove_pins(struct rp_topo_switch *s)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf %s/%s %s/%s %s/%s", RP_PIN_ROOT, s->if_int, RP_PIN_ROOT,
		 s->if_ext, RP_PIN_ROOT, s->if_sto);
	run(cmd);
}

int rp_topo_restore_switch(struct rp_topo *t, unsigned int i)
{
	struct rp_topo_switch *s = &t->sw[i];

	remove_pins(s);
	if (rp_topo_sh(s->ns, "for l in %s %s %s; do ip link set dev $l xdp off; "
			      "ip link set $l up; done",
		       s->if_int, s->if_ext, s->if_sto) ||
	    switch_routes(t, i))
		return -EIO;
	return 0;
}

int rp_topo_start_store(struct rp_topo *t, const char *lease_ms, const char *grace_ms)
{
	char bin[300];
	const char *argv[24] = { bin, "--listen", RP_TOPO_STORE, "--lease-ms", lease_ms,
				 "--grace-ms", grace_ms };
	int n = 7;

	for (const char *const *a = t->store_args; a && *a && n < 23; a++)
		argv[n++] = *a;
	argv[n] = NULL;
	snprintf(bin, sizeof(bin), "%s/rp-store", t->bin_dir);
	unlink(t->store_log);
	t->store_pid = rp_topo_spawn(t->ns_store, argv, t->store_log);
	if (t->store_pid < 0)
		return (int)t->store_pid;
	return rp_topo_wait_log(t->store_log, "listening on", 5000) ? 0 : -ETIMEDOUT;
}

int rp_topo_start_switch(struct rp_topo *t, unsigned int i, const char *const *extra)
{
	struct rp_topo_switch *s = &t->sw[i];
	static const char *const nat_args[] = { "--app", "nat", "--nat-int", "10.1.0.0/24",
						"--nat-ext", RP_TOPO_EXT, NULL };
	const char *const *app = t->app_args ? t->app_args : nat_args;
	char bin[300], id[8];
	/* the NAT's saved port position stays in the topology's directory */
	const char *argv[48] = { bin, s->if_int, s->if_ext, s->if_sto, "--store", t->store_list,
				 "--switch-id", id, "--state-dir", t->dir };
	int n = 10;

	snprintf(bin, sizeof(bin), "%s/rp-load", t->bin_dir);
	snprintf(id, sizeof(id), "%u", i + 1);
	unlink(s->log);	/* each run is judged by its own log */
	while (*app && n < 24)
		argv[n++] = *app++;
	while (extra && *extra && n < 47)
		argv[n++] = *extra++;
	argv[n] = NULL;
	s->load_pid = rp_topo_spawn(s->ns, argv, s->log);
	if (s->load_pid < 0)
		return (int)s->load_pid;
	if (!rp_topo_wait_log(s->log, "joined store", 5000) || waitpid(s->load_pid, NULL, WNOHANG)) {
		rp_topo_stop(&s->load_pid, true);	/* reaped or killed: never signalled again */
		pr_warn("topo: rp-load on sw%u did not join the store (see %s)\n", i + 1, s->log);
		return -ETIMEDOUT;
	}
	return 0;
}

void rp_topo_stop_all(struct rp_topo *t)
{
	for (unsigned int i = 0; i < t->nswitches; i++)
		rp_topo_stop(&t->sw[i].load_pid, false);
	rp_topo_stop(&t->store_pid, false);
	for (unsigned int r = 0; r < t->nreplicas; r++)
		rp_topo_stop(&t->rep_pid[r], false);
	rp_topo_stop(&t->zk_pid, false);
}

void rp_topo_destroy(struct rp_topo *t)
{
	const char *hosts[] = { t->ns_client, t->ns_server, t->ns_store, t->ns_crt, t->ns_srt };
	char cmd[600];

	rp_topo_stop_all(t);
	for (unsigned int r = 0; r < t->nreplicas; r++) {
		snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", t->ns_rep[r]);
		run(cmd);
	}
	for (unsigned int i = 0; i < t->nswitches; i++) {
		struct rp_topo_switch *s = &t->sw[i];

		if (!s->ns[0])
			continue;
		snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", s->ns);
		run(cmd);
		remove_pins(s);	/* a crashed rp-load leaves its pins behind */
	}
	for (size_t h = 0; h < 5; h++) {
		if (!hosts[h][0])
			continue;
		snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", hosts[h]);
		run(cmd);
	}
	if (t->dir[0] && getenv("RP_TOPO_KEEP_LOGS")) {
		pr_warn("topo: logs kept in %s\n", t->dir);
	} else if (t->dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
		run(cmd);
	}
	memset(t, 0, sizeof(*t));
}

static long long read_stat(const char *ifname, const char *map, const char *const *names,
			   unsigned int n, const char *name, bool percpu)
{
	char path[PATH_MAX];
	int fd, ncpu = percpu ? libbpf_num_possible_cpus() : 1;
	long long sum = -1;

	snprintf(path, sizeof(path), "%s/%s/%s", RP_PIN_ROOT, ifname, map);
	fd = bpf_obj_get(path);
	if (fd < 0 || ncpu <= 0)
		return -1;
	for (uint32_t k = 0; k < n; k++) {
		uint64_t vals[ncpu];

		if (strcmp(names[k], name))
			continue;
		if (bpf_map_lookup_elem(fd, &k, vals) == 0) {
			sum = 0;
			for (int c = 0; c < ncpu; c++)
				sum += (long long)vals[c];
		}
		break;
	}
	close(fd);
	return sum;
}

long long rp_topo_dp_stat(struct rp_topo *t, unsigned int i, const char *name)
{
	static const char *const names[] = {
#define X(n) #n,
		RP_DP_STATS(X)
#undef X
	};

	return read_stat(t->sw[i].if_int, "stats", names, __RP_DP_STAT_MAX, name, true);
}

long long rp_topo_agent_stat(struct rp_topo *t, unsigned int i, const char *name)
{
	static const char *const names[] = {
#define X(n) #n,
		RP_AGENT_STATS(X)
#undef X
	};

	return read_stat(t->sw[i].if_int, "agent_stats", names, __RP_AG_STAT_MAX, name, false);
}

int rp_topo_kernel_nat(struct rp_topo *t, unsigned int i)
{
	struct rp_topo_switch *s = &t->sw[i];

	return rp_topo_sh(s->ns,
			  "nft add table ip nat; "
			  "nft \"add chain ip nat post { type nat hook postrouting priority 100; }\"; "
			  "nft add rule ip nat post ip saddr 10.1.0.0/24 oifname %s "
			  "meta l4proto { tcp, udp } snat to " RP_TOPO_EXT ":20000-60000 fully-random",
			  s->if_ext) ? -EIO : 0;
}

int rp_topo_open_pin(struct rp_topo *t, unsigned int i, const char *map)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s/%s", RP_PIN_ROOT, t->sw[i].if_int, map);
	return bpf_obj_get(path);
}

/*
 * When a lease not given up ends: now, or the expiry of the session it was
 * held under if that came first (the data plane holds a lease only while
 * its session is live: a crashed switch's leases end with its session).
 */
static uint64_t lease_end(int sessions, const struct rp_dp_flow *f, uint64_t now)
{
	struct rp_dp_session s;
	uint32_t store = f->store;

	if (f->until_ns)
		return f->until_ns;
	if (sessions >= 0 && !bpf_map_lookup_elem(sessions, &store, &s) && s.expiry_ns < now)
		return s.expiry_ns;
	return now;
}

int rp_topo_lease_overlaps(struct rp_topo *t, unsigned int a, unsigned int b,
			   unsigned int *handed, uint64_t *min_gap_ns, uint64_t *max_gap_ns)
{
	int fa = rp_topo_open_pin(t, a, "flows"), fb = rp_topo_open_pin(t, b, "flows"), overlaps = 0;
	int sa = rp_topo_open_pin(t, a, "sessions"), sb = rp_topo_open_pin(t, b, "sessions");
	struct rp_flow_key key, next, *prev = NULL;
	struct timespec ts;
	uint64_t now;

	*handed = 0;
	*min_gap_ns = UINT64_MAX;
	*max_gap_ns = 0;
	if (fa < 0 || fb < 0) {
		overlaps = -ENOENT;
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	while (bpf_map_get_next_key(fa, prev, &next) == 0) {
		struct rp_dp_flow x, y;
		uint64_t x_end, y_end, gap;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem_flags(fa, &key, &x, BPF_F_LOCK) ||
		    bpf_map_lookup_elem_flags(fb, &key, &y, BPF_F_LOCK) ||
		    !x.since_ns || !y.since_ns)
			continue;
		x_end = lease_end(sa, &x, now);
		y_end = lease_end(sb, &y, now);
		(*handed)++;
		if (x.since_ns < y_end && y.since_ns < x_end) {
			overlaps++;
			continue;
		}
		gap = y.since_ns >= x_end ? y.since_ns - x_end : x.since_ns - y_end;
		if (gap < *min_gap_ns)
			*min_gap_ns = gap;
		if (gap > *max_gap_ns)
			*max_gap_ns = gap;
	}
out:
	for (int *fd = (int[]){ fa, fb, sa, sb }, n = 0; n < 4; n++)
		if (fd[n] >= 0)
			close(fd[n]);
	return overlaps;
}

/* ---- a store chain ---- */

/* ZooKeeper answers "imok" to "ruok" once it serves. */
static bool zk_ready(struct rp_topo *t)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(2181) };
	struct timeval tv = { .tv_sec = 1 };
	char buf[8] = { 0 };
	int fd = rp_topo_socket(t->ns_store, AF_INET, SOCK_STREAM);
	bool ok = false;

	if (fd < 0)
		return false;
	inet_pton(AF_INET, "192.0.2.20", &a.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (!connect(fd, (struct sockaddr *)&a, sizeof(a)) && write(fd, "ruok", 4) == 4 &&
	    read(fd, buf, 4) == 4)
		ok = !strcmp(buf, "imok");
	close(fd);
	return ok;
}

static int start_zk(struct rp_topo *t)
{
	const char *argv[] = { "/usr/bin/java", "-Xmx256m", "-cp", "/usr/share/java/zookeeper.jar",
			       "org.apache.zookeeper.server.ZooKeeperServerMain", NULL, NULL };
	char cfg[128];
	FILE *f;

	snprintf(cfg, sizeof(cfg), "%s/zoo.cfg", t->dir);
	f = fopen(cfg, "w");
	if (!f)
		return -errno;
	/* a short tick allows the short session timeouts the tests use */
	fprintf(f, "tickTime=100\nminSessionTimeout=200\nmaxSessionTimeout=60000\n"
		   "dataDir=%s/zk\nclientPort=2181\nclientPortAddress=192.0.2.20\n"
		   "admin.enableServer=false\n4lw.commands.whitelist=ruok\nforceSync=no\n",
		t->dir);
	fclose(f);
	argv[5] = cfg;
	snprintf(t->zk_log, sizeof(t->zk_log), "%s/zookeeper.log", t->dir);
	t->zk_pid = rp_topo_spawn(t->ns_store, argv, t->zk_log);
	if (t->zk_pid < 0)
		return (int)t->zk_pid;
	for (int i = 0; i < 600; i++) {
		if (zk_ready(t))
			return 0;
		if (waitpid(t->zk_pid, NULL, WNOHANG)) {
			t->zk_pid = 0;
			break;
		}
		sleep_ms(50);
	}
	pr_warn("topo: ZooKeeper did not start (see %s)\n", t->zk_log);
	return -ETIMEDOUT;
}

int rp_topo_add_chain(struct rp_topo *t, unsigned int n)
{
	char cmd[128];

	if (n < 1 || n > RP_TOPO_REPLICAS || t->nreplicas)
		return -EINVAL;
	if (rp_topo_sh(t->ns_store, "sysctl -qw net.ipv4.ip_forward=1; "
				    "ip addr add 192.0.2.20/32 dev lo"))
		return -EIO;
	for (unsigned int r = 0; r < n; r++) {
		snprintf(t->ns_rep[r], sizeof(t->ns_rep[r]), "%s-r%u", t->prefix, r + 1);
		snprintf(t->rep_log[r], sizeof(t->rep_log[r]), "%s/rp-store-r%u.log", t->dir, r + 1);
		snprintf(t->rep_stats[r], sizeof(t->rep_stats[r]), "%s/r%u.stats", t->dir, r + 1);
		snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", t->ns_rep[r]);
		run(cmd);
		snprintf(cmd, sizeof(cmd), "ip netns add %s", t->ns_rep[r]);
		if (run(cmd))
			return -EIO;
		t->nreplicas = r + 1;
		if (rp_topo_sh(t->ns_store,
			       "ip link add %sR%u mtu %u type veth peer name eth0 mtu %u netns %s; "
			       "ip addr add 192.0.2.%u/32 dev %sR%u; ip link set %sR%u up; "
			       "ip route add 192.0.2.%u/32 dev %sR%u",
			       t->prefix, r + 1, RP_TOPO_STORE_MTU, RP_TOPO_STORE_MTU, t->ns_rep[r],
			       101 + r, t->prefix, r + 1, t->prefix, r + 1, 11 + r, t->prefix, r + 1) ||
		    rp_topo_sh(t->ns_rep[r],
			       "ip link set lo up; ip addr add 192.0.2.%u/32 dev eth0; "
			       "ip link set eth0 up; ip route add 192.0.2.%u/32 dev eth0; "
			       "ip route add default via 192.0.2.%u dev eth0",
			       11 + r, 101 + r, 101 + r))
			return -EIO;
	}
	t->store_list = RP_TOPO_CHAIN;
	return start_zk(t);
}

int rp_topo_start_replica(struct rp_topo *t, unsigned int r, const char *const *extra)
{
	char bin[300], listen[32], peer[32], id[12], dump[128];
	const char *argv[40] = { bin, "--listen", listen, "--peer", peer, "--zk", RP_TOPO_ZK,
				 "--replica-id", id, "--stats-file", t->rep_stats[r],
				 "--dump-file", dump };
	int n = 13;

	if (r >= t->nreplicas)
		return -EINVAL;
	snprintf(bin, sizeof(bin), "%s/rp-store", t->bin_dir);
	snprintf(listen, sizeof(listen), "192.0.2.%u:4791", 11 + r);
	snprintf(peer, sizeof(peer), "192.0.2.%u:4792", 11 + r);
	snprintf(id, sizeof(id), "%u", r + 1);
	snprintf(dump, sizeof(dump), "%s/r%u.flows", t->dir, r + 1);
	while (extra && *extra && n < 39)
		argv[n++] = *extra++;
	argv[n] = NULL;
	unlink(t->rep_log[r]);
	unlink(t->rep_stats[r]);
	t->rep_pid[r] = rp_topo_spawn(t->ns_rep[r], argv, t->rep_log[r]);
	if (t->rep_pid[r] < 0)
		return (int)t->rep_pid[r];
	return rp_topo_wait_log(t->rep_log[r], "links on", 5000) ? 0 : -ETIMEDOUT;
}

int rp_topo_partition_replica(struct rp_topo *t, unsigned int r, bool cut)
{
	char others[128] = "192.0.2.20";
	size_t off = strlen(others);

	if (r >= t->nreplicas)
		return -EINVAL;
	if (!cut)
		return rp_topo_sh(t->ns_rep[r], "nft delete table ip rp_partition") ? -EIO : 0;
	for (unsigned int i = 0; i < t->nreplicas; i++)
		if (i != r)
			off += (size_t)snprintf(others + off, sizeof(others) - off, ", 192.0.2.%u",
						11 + i);
	return rp_topo_sh(t->ns_rep[r],
			  "nft add table ip rp_partition; "
			  "nft add chain ip rp_partition in \"{ type filter hook input priority 0; }\"; "
			  "nft add chain ip rp_partition out \"{ type filter hook output priority 0; }\"; "
			  "nft add rule ip rp_partition in ip saddr \"{ %s }\" drop; "
			  "nft add rule ip rp_partition out ip daddr \"{ %s }\" drop",
			  others, others) ? -EIO : 0;
}

/* The value of `name` in replica r's stats file, as text. */
static bool replica_value(struct rp_topo *t, unsigned int r, const char *name, char *val,
			  size_t size)
{
	char line[256], fmt[32];
	bool found = false;
	FILE *f;

	if (r >= t->nreplicas)
		return false;
	f = fopen(t->rep_stats[r], "r");
	if (!f)
		return false;
	snprintf(fmt, sizeof(fmt), "%%63s %%%zus", size - 1);
	while (!found && fgets(line, sizeof(line), f)) {
		char key[64];

		found = sscanf(line, fmt, key, val) == 2 && !strcmp(key, name);
	}
	fclose(f);
	return found;
}

long long rp_topo_replica_stat(struct rp_topo *t, unsigned int r, const char *name)
{
	char val[32];

	return replica_value(t, r, name, val, sizeof(val)) ? atoll(val) : -1;
}

static int wait_fd(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };

	return poll(&p, 1, ms);
}

const char *rp_topo_short_conn(struct rp_topo *t, int lfd, const struct sockaddr_in *srv, int ms)
{
	int c = rp_topo_socket(t->ns_client, AF_INET, SOCK_STREAM | SOCK_NONBLOCK), s = -1;
	const char *err = NULL;
	char buf[8];
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (c < 0)
		return "socket";
	if (connect(c, (const struct sockaddr *)srv, sizeof(*srv)) && errno != EINPROGRESS) {
		err = "connect";
		goto out;
	}
	if (wait_fd(c, POLLOUT, ms) <= 0 ||
	    getsockopt(c, SOL_SOCKET, SO_ERROR, &soerr, &len) || soerr) {
		err = "connect timed out or refused";
		goto out;
	}
	if (wait_fd(lfd, POLLIN, ms) <= 0 || (s = accept(lfd, NULL, NULL)) < 0) {
		err = "accept";
		goto out;
	}
	if (send(c, "q", 1, 0) != 1 || wait_fd(s, POLLIN, ms) <= 0 || recv(s, buf, 1, 0) != 1 ||
	    send(s, "r", 1, 0) != 1 || wait_fd(c, POLLIN, ms) <= 0 || recv(c, buf, 1, 0) != 1) {
		err = "request or reply";
		goto out;
	}
	close(c);
	c = -1;
	/* the client's FIN reaches the server: it closes too */
	if (wait_fd(s, POLLIN, ms) <= 0 || recv(s, buf, sizeof(buf), 0) != 0)
		err = "the client's FIN";
out:
	if (c >= 0)
		close(c);
	if (s >= 0)
		close(s);
	return err;
}

long long rp_topo_file_stat(const char *path, const char *name)
{
	char line[256], key[64];
	long long v, found = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %lld", key, &v) == 2 && !strcmp(key, name))
			found = v;
	fclose(f);
	return found;
}

int rp_topo_prog_array(int map_fd, int root_fd, unsigned int app, int app_fd)
{
	unsigned int slot = RP_PROG_ROOT;

	if (bpf_map_update_elem(map_fd, &slot, &root_fd, 0) ||
	    bpf_map_update_elem(map_fd, &app, &app_fd, 0))
		return -errno;
	return 0;
}

bool rp_topo_replica_role(struct rp_topo *t, unsigned int r, char *role, size_t size)
{
	return replica_value(t, r, "chain_role", role, size);
}

struct dumped_flow {
	char key[RP_KEYSTRLEN];
	uint32_t seq;
};

/* Replica r's flows (shard 0's dump: the chain tests run one shard). */
static int dump_replica(struct rp_topo *t, unsigned int r, struct dumped_flow **out)
{
	char path[160], line[256];
	struct dumped_flow *d = NULL;
	int n = 0, cap = 0;
	FILE *f = NULL;

	snprintf(path, sizeof(path), "%s/r%u.flows.0", t->dir, r + 1);
	unlink(path);
	if (kill(t->rep_pid[r], SIGUSR2))
		return -errno;
	for (int i = 0; i < 500 && !f; i++) {
		f = fopen(path, "r");
		if (!f)
			sleep_ms(10);
	}
	if (!f)
		return -ETIMEDOUT;
	while (fgets(line, sizeof(line), f)) {
		unsigned int app, proto, owner, epoch, gen, seq;
		char src[48], dst[48];

		if (sscanf(line, "%u %u %47s %47s %u %u %u %u", &app, &proto, src, dst, &owner,
			   &epoch, &gen, &seq) != 8)
			continue;
		if (n == cap) {
			struct dumped_flow *nd = realloc(d, (size_t)(cap = cap ? 2 * cap : 256) * sizeof(*d));

			if (!nd)
				break;
			d = nd;
		}
		snprintf(d[n].key, sizeof(d[n].key), "%u %s %s", proto, src, dst);
		d[n++].seq = seq;
	}
	fclose(f);
	*out = d;
	return n;
}

int rp_topo_check_acked(struct rp_topo *t, unsigned int r, unsigned int i, unsigned int chain,
			unsigned int *checked)
{
	struct rp_flow_key key, next, *prev = NULL;
	struct dumped_flow *d = NULL;
	int fd, n, missing = 0;

	*checked = 0;
	n = dump_replica(t, r, &d);
	if (n < 0)
		return n;
	fd = rp_topo_open_pin(t, i, "flows");
	if (fd < 0) {
		free(d);
		return fd;
	}
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		char k[RP_KEYSTRLEN];
		struct rp_dp_flow v;
		int j;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem_flags(fd, &key, &v, BPF_F_LOCK) || !v.since_ns ||
		    v.store != chain || (v.flags & (RP_DPF_EXPIRING | RP_DPF_EXPIRED)))
			continue;	/* never held (nothing acknowledged), another chain's,
					 * or idle and deleted at the store on purpose */
		rp_key_str(&key, k, sizeof(k));
		for (j = 0; j < n && strcmp(d[j].key, k); j++)
			;
		(*checked)++;
		if (j == n || rp_seq_before(d[j].seq, v.acked)) {
			pr_warn("topo: replica %u lacks %s acked at %u by sw%u (has %s%u)\n", r + 1, k,
				v.acked, i + 1, j == n ? "nothing, " : "", j == n ? 0 : d[j].seq);
			missing++;
		}
	}
	close(fd);
	free(d);
	return missing;
}
