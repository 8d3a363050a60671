// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_link.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns.h"
#include "redplane/dp.h"
#include "rp_test.h"
#include "veth_peer.skel.h"

static const char *const host_names[__RP_HOSTS] = { "c", "sw", "srv", "st" };

const char *rp_test_load_bin(void)
{
	const char *bin = getenv("RP_LOAD");

	return bin && *bin ? bin : "build/rp-load";
}

static int sh(const char *cmd)
{
	int rc = system(cmd);

	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int rp_topo_sh(struct rp_topo *t, enum rp_host h, const char *fmt, ...)
{
	char cmd[1024], full[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "ip netns exec %s sh -c '%s'", t->ns[h], cmd);
	return sh(full);
}

#define MUST(t, h, ...) cr_assert_eq(rp_topo_sh(t, h, __VA_ARGS__), 0, "topology: " __VA_ARGS__)

/* Runs fn's effect inside host h's namespace, then comes back. */
static int enter(struct rp_topo *t, enum rp_host h)
{
	char path[96];
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), fd;

	snprintf(path, sizeof(path), "/var/run/netns/%s", t->ns[h]);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(setns(fd, CLONE_NEWNET), 0, "setns: %s", strerror(errno));
	close(fd);
	return self;
}

static void leave(int self)
{
	cr_assert_eq(setns(self, CLONE_NEWNET), 0);
	close(self);
}

int rp_topo_socket(struct rp_topo *t, enum rp_host h, int type)
{
	int self = enter(t, h), fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	leave(self);
	cr_assert_geq(fd, 0);
	return fd;
}

static void attach_link(struct rp_topo *t, enum rp_host h, const char *ifname)
{
	int self = enter(t, h), ifindex = (int)if_nametoindex(ifname), err;

	err = bpf_xdp_attach(ifindex, bpf_program__fd(t->link->progs.veth_peer),
			     XDP_FLAGS_DRV_MODE, NULL);
	leave(self);
	cr_assert_eq(err, 0, "attach veth_peer on %s: %s", ifname, strerror(-err));
}

void rp_topo_up(struct rp_topo *t)
{
	int id = getpid();

	if (geteuid() != 0)
		cr_skip_test("needs root: builds network namespaces and loads XDP programs");
	memset(t, 0, sizeof(*t));
	for (int h = 0; h < __RP_HOSTS; h++)
		snprintf(t->ns[h], sizeof(t->ns[h]), "rpt%d-%s", id, host_names[h]);
	snprintf(t->if_int, sizeof(t->if_int), "ri%d", id);
	snprintf(t->if_ext, sizeof(t->if_ext), "re%d", id);
	snprintf(t->if_sto, sizeof(t->if_sto), "rs%d", id);
	snprintf(t->dir, sizeof(t->dir), "/tmp/rp-topo.XXXXXX");
	cr_assert_not_null(mkdtemp(t->dir));
	snprintf(t->load_log, sizeof(t->load_log), "%s/rp-load.log", t->dir);
	snprintf(t->store_log, sizeof(t->store_log), "%s/rp-store.log", t->dir);

	for (int h = 0; h < __RP_HOSTS; h++) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "ip netns add %s", t->ns[h]);
		cr_assert_eq(sh(cmd), 0, "%s", cmd);
		MUST(t, h, "ip link set lo up");
	}
	MUST(t, RP_SWITCH, "ip link add %s type veth peer name c0 netns %s", t->if_int,
	     t->ns[RP_CLIENT]);
	MUST(t, RP_SWITCH, "ip link add %s type veth peer name v0 netns %s", t->if_ext,
	     t->ns[RP_SERVER]);
	MUST(t, RP_SWITCH, "ip link add %s type veth peer name st0 netns %s", t->if_sto,
	     t->ns[RP_STORE]);
	MUST(t, RP_SWITCH,
	     "ip addr add 10.1.0.1/24 dev %s && ip addr add 198.51.100.1/24 dev %s && "
	     "ip addr add 192.0.2.1/24 dev %s && for l in %s %s %s; do ip link set $l up; "
	     "ethtool -K $l tx off >/dev/null; done && sysctl -qw net.ipv4.ip_forward=1",
	     t->if_int, t->if_ext, t->if_sto, t->if_int, t->if_ext, t->if_sto);
	/* veth hands over partial checksums; the switch's XDP needs whole ones */
	MUST(t, RP_CLIENT, "ip addr add 10.1.0.2/24 dev c0 && ip link set c0 up && "
			   "ethtool -K c0 tx off >/dev/null && ip route add default via 10.1.0.1");
	MUST(t, RP_SERVER, "ip addr add 198.51.100.2/24 dev v0 && ip link set v0 up && "
			   "ethtool -K v0 tx off >/dev/null && "
			   "ip route add 203.0.113.1/32 via 198.51.100.1");
	MUST(t, RP_STORE, "ip addr add 192.0.2.10/24 dev st0 && ip link set st0 up && "
			  "ethtool -K st0 tx off >/dev/null");

	t->link = veth_peer__open_and_load();
	cr_assert_not_null(t->link, "load veth_peer.bpf.o");
	attach_link(t, RP_CLIENT, "c0");
	attach_link(t, RP_SERVER, "v0");
	attach_link(t, RP_STORE, "st0");
}

int rp_topo_stop(pid_t *pid)
{
	int status, ret = -1;

	if (*pid <= 0)
		return -1;
	kill(*pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(*pid, &status, WNOHANG) == *pid) {
			ret = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			break;
		}
		rp_test_sleep_ms(10);
	}
	if (ret < 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
	}
	*pid = 0;
	return ret;
}

void rp_topo_down(struct rp_topo *t)
{
	char cmd[256];

	rp_topo_stop(&t->load_pid);
	rp_topo_stop(&t->store_pid);
	for (int h = 0; h < __RP_HOSTS; h++) {
		if (!t->ns[h][0])
			continue;
		snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", t->ns[h]);
		sh(cmd);
	}
	if (t->link)
		veth_peer__destroy(t->link);
	t->link = NULL;
	if (t->dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
		sh(cmd);
	}
	memset(t->ns, 0, sizeof(t->ns));
}

pid_t rp_topo_spawn(struct rp_topo *t, enum rp_host h, const char *const *argv, const char *log)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	pid_t pid;

	cr_assert_geq(fd, 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char path[96];
		int ns;

		snprintf(path, sizeof(path), "/var/run/netns/%s", t->ns[h]);
		ns = open(path, O_RDONLY);
		if (ns < 0 || setns(ns, CLONE_NEWNET))
			_exit(126);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fd);
	return pid;
}

/* Waits until `what` shows in the log (or 5 s pass). */
static bool wait_log(const char *log, const char *what)
{
	for (int i = 0; i < 500; i++) {
		char buf[8192];
		FILE *f = fopen(log, "r");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f)
			fclose(f);
		buf[n] = '\0';
		if (strstr(buf, what))
			return true;
		rp_test_sleep_ms(10);
	}
	return false;
}

void rp_topo_start_store(struct rp_topo *t, const char *lease_ms)
{
	const char *argv[] = { rp_test_store_bin(), "--listen", "192.0.2.10:4791", "--lease-ms",
			       lease_ms, NULL };

	t->store_pid = rp_topo_spawn(t, RP_STORE, argv, t->store_log);
	cr_assert(wait_log(t->store_log, "listening on"), "rp-store did not start");
}

void rp_topo_start_load(struct rp_topo *t, const char *const *extra)
{
	const char *argv[32] = { rp_test_load_bin(), t->if_int, t->if_ext, t->if_sto, "--app",
				 "nat", "--store", "192.0.2.10:4791", "--switch-id", "1",
				 "--nat-int", "10.1.0.0/24", "--nat-ext", "203.0.113.1",
				 "--lease-ms", "1000" };
	int n = 16;

	while (extra && *extra && n < 31)
		argv[n++] = *extra++;
	argv[n] = NULL;
	t->load_pid = rp_topo_spawn(t, RP_SWITCH, argv, t->load_log);
	cr_assert(wait_log(t->load_log, "joined store"), "rp-load did not join the store (%s)",
		  t->load_log);
}

unsigned long long rp_topo_agent_stat(struct rp_topo *t, const char *name)
{
	static const char *const names[] = {
#define X(n) #n,
		RP_AGENT_STATS(X)
#undef X
	};
	char path[PATH_MAX];
	uint64_t v = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s/agent_stats", RP_PIN_ROOT, t->if_int);
	fd = bpf_obj_get(path);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	for (uint32_t i = 0; i < __RP_AG_STAT_MAX; i++) {
		if (strcmp(names[i], name))
			continue;
		cr_assert_eq(bpf_map_lookup_elem(fd, &i, &v), 0);
		close(fd);
		return v;
	}
	close(fd);
	cr_assert_fail("no agent counter '%s'", name);
	return 0;
}

bool rp_topo_xdp_attached(struct rp_topo *t, const char *ifname)
{
	int self = enter(t, RP_SWITCH), ifindex = (int)if_nametoindex(ifname);
	__u32 id = 0;

	bpf_xdp_query_id(ifindex, XDP_FLAGS_DRV_MODE, &id);
	leave(self);
	return id != 0;
}
