// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * fwd-bench: packets per second through a switch namespace over veth
 * (user/topo.h: client, one switch, server, store beside), three NATs on
 * the same switch in the same run, rounds interleaved:
 *   redplane  rp-load's XDP NAT, established flows, leases held: the read
 *             path, which sends nothing to the store;
 *   norepl    the same XDP NAT built with replication compiled out
 *             (-DRP_NO_REPLICATION), loaded here in place of rp-load's
 *             program on the client-facing interface;
 *   nftables  the kernel's NAT (snat in the switch namespace), the switch's
 *             ingress carrying an XDP_PASS program only (a veth delivers
 *             what another veth's XDP sends it only to an XDP program).
 * The traffic comes from bpf/trafficgen.bpf.c run in the client namespace
 * with BPF_F_TEST_XDP_LIVE_FRAMES (64-byte UDP frames over `flows` source
 * ports, sent out of the client's veth by XDP_TX); an XDP program on the
 * server's veth counts and drops them.  Generator, switch and sink all run
 * in the sending CPU's softirq: a rate is of the whole path, and the
 * comparison is the point.
 *
 * Then the replication traffic (the switch's store-facing veth against its
 * data interfaces, interface counters): one long TCP stream after its setup
 * (read-centric), many short TCP connections (write-centric: each SYN, FIN
 * goes through the store), and what one renew per read packet, the
 * reference design's, would have cost on the same traffic.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_csv.h"
#include "redplane/dp.h"
#include "redplane_norepl.skel.h"
#include "stream.h"
#include "topo.h"
#include "trafficgen.skel.h"

#define SINK_PORT	9	/* UDP discard */
#define SPORT_BASE	10000
#define FRAME_LEN	64
/* a renew of the reference design: Ethernet, IPv4, UDP and the protocol's fixed message (RP_MSG_LEN) */
#define RENEW_BYTES	(14 + 20 + 8 + RP_MSG_LEN)

enum variant { V_REDPLANE, V_NOREPL, V_NFT, NVARIANTS };
static const char *const vname[NVARIANTS] = { "redplane_nat", "xdp_nat_norepl", "nftables_nat" };
static const char *const vtext[NVARIANTS] = { "redplane NAT (read path)",
					      "XDP NAT, replication compiled out",
					      "nftables NAT (kernel)" };

/* SIGINT, SIGTERM: stop between steps and tear everything down */
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

struct opts {
	unsigned int frames, rounds, flows, stream_mib, conns;
};

struct bench {
	struct opts o;
	struct rp_topo t;
	struct trafficgen *gen;
	struct redplane_norepl *norepl;
	int self_ns;
	int client_ifindex;
	int prog[NVARIANTS];	/* on the switch's client-facing interface */
	bool rp_detached;	/* rp-load's program is not on it now */
	uint8_t frame[FRAME_LEN];
};

static void leave_ns(struct bench *b)
{
	setns(b->self_ns, CLONE_NEWNET);
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Numbers a command run in a namespace prints (sysfs there is its own): how many read. */
static int ns_numbers(const char *ns, const char *cmd, unsigned long long *v, int n)
{
	char full[1024];
	FILE *f;
	int i = 0;

	snprintf(full, sizeof(full), "ip netns exec %s sh -c '%s'", ns, cmd);
	f = popen(full, "r");
	if (!f)
		return -errno;
	while (i < n && fscanf(f, "%llu", &v[i]) == 1)
		i++;
	pclose(f);
	return i;
}

static int ns_mac(const char *ns, const char *ifname, uint8_t mac[ETH_ALEN])
{
	char cmd[160];
	unsigned int m[ETH_ALEN];
	FILE *f;
	int n;

	snprintf(cmd, sizeof(cmd), "ip netns exec %s cat /sys/class/net/%s/address", ns, ifname);
	f = popen(cmd, "r");
	if (!f)
		return -errno;
	n = fscanf(f, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]);
	pclose(f);
	if (n != ETH_ALEN)
		return -ENOENT;
	for (int i = 0; i < ETH_ALEN; i++)
		mac[i] = (uint8_t)m[i];
	return 0;
}

static uint16_t ip_csum(const void *hdr, size_t len)
{
	const uint16_t *p = hdr;
	uint32_t sum = 0;

	for (size_t i = 0; i < len / 2; i++)
		sum += p[i];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* 10.1.0.2:SPORT_BASE+i -> 198.51.100.2:9, UDP, to the switch's MAC. */
static void build_frame(struct bench *b, const uint8_t dst[ETH_ALEN], const uint8_t src[ETH_ALEN])
{
	struct ethhdr *eth = (void *)b->frame;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	memset(b->frame, 0, sizeof(b->frame));
	memcpy(eth->h_dest, dst, ETH_ALEN);
	memcpy(eth->h_source, src, ETH_ALEN);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons(FRAME_LEN - sizeof(*eth));
	inet_pton(AF_INET, RP_TOPO_CLIENT, &ip->saddr);
	inet_pton(AF_INET, RP_TOPO_SERVER, &ip->daddr);
	ip->check = ip_csum(ip, sizeof(*ip));
	udp->source = htons(SPORT_BASE);
	udp->dest = htons(SINK_PORT);
	udp->len = htons(FRAME_LEN - sizeof(*eth) - sizeof(*ip));
}

static uint64_t now_ns(void)
{
	return rp_stream_now();
}

static uint64_t received(struct bench *b)
{
	return __atomic_load_n(&b->gen->bss->received, __ATOMIC_RELAXED);
}

/*
 * Sends n frames from the client; *got: how many reached the sink, *secs:
 * from the first sent to the return of the run (frames still in rings
 * after that are few and counted).
 */
static int blast(struct bench *b, unsigned int n, double *secs, uint64_t *got)
{
	struct xdp_md ctx = { .data_end = FRAME_LEN,
			      .ingress_ifindex = (uint32_t)b->client_ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = b->frame, .data_size_in = FRAME_LEN,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = n,
		    .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
	uint64_t before = received(b), t0, t1, last;
	int err;

	err = rp_topo_enter_ns(b->t.ns_client);
	if (err)
		return err;
	t0 = now_ns();
	err = bpf_prog_test_run_opts(bpf_program__fd(b->gen->progs.trafficgen_tx), &opts);
	t1 = now_ns();
	if (err)
		err = -errno;
	leave_ns(b);
	if (err) {
		fprintf(stderr, "fwd-bench: Couldn't run the generator: %s\n", strerror(-err));
		return err;
	}
	/* what is still in the veth rings */
	for (int i = 0; i < 40; i++) {
		last = received(b);
		sleep_ms(5);
		if (received(b) == last)
			break;
	}
	*got = received(b) - before;
	*secs = (double)(t1 - t0) / 1e9;
	return 0;
}

static long long percpu_sum(int map_fd, uint32_t key)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t vals[ncpu > 0 ? ncpu : 1];
	long long sum = 0;

	if (ncpu <= 0 || bpf_map_lookup_elem(map_fd, &key, vals))
		return -1;
	for (int c = 0; c < ncpu; c++)
		sum += (long long)vals[c];
	return sum;
}

/* Packets the variant's XDP NAT sent on its read fast path; -1 for the kernel's. */
static long long fast_path(struct bench *b, enum variant v)
{
	if (v == V_REDPLANE)
		return rp_topo_dp_stat(&b->t, 0, "fast_path");
	if (v == V_NOREPL)
		return percpu_sum(bpf_map__fd(b->norepl->maps.stats), RP_DP_fast_path);
	return -1;
}

static int attach(struct bench *b, enum variant v)
{
	int err = rp_topo_xdp_attach(b->t.sw[0].ns, b->t.sw[0].if_int, b->prog[v]);

	if (err) {
		fprintf(stderr, "fwd-bench: Couldn't attach the %s program: %s\n", vname[v],
			strerror(-err));
		return err;
	}
	b->rp_detached = v != V_REDPLANE;
	return 0;
}

/*
 * Sends one frame per flow until a whole burst takes the read path (the XDP
 * NATs: their fast path counter; the kernel's: every frame delivered), so
 * that only established flows are measured.
 */
static int establish(struct bench *b, enum variant v)
{
	for (int tries = 0; tries < 50 && !stopping; tries++) {
		long long f0 = fast_path(b, v);
		uint64_t got;
		double secs;
		int err = blast(b, b->o.flows, &secs, &got);

		if (err)
			return err;
		if (v == V_NFT ? got == b->o.flows : fast_path(b, v) - f0 == (long long)b->o.flows)
			return 0;
		sleep_ms(50);
	}
	fprintf(stderr, "fwd-bench: the %s flows were not established after 50 bursts\n",
		vname[v]);
	return -ETIMEDOUT;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, c = *(const double *)y;

	return a < c ? -1 : a > c;
}

static double median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

/* The norepl build configured as rp-load configures the NAT, its programs in place. */
static int load_norepl(struct bench *b)
{
	struct redplane_norepl *s = redplane_norepl__open();
	int err;

	if (!s)
		return -errno;
	b->norepl = s;
	s->rodata->cfg_switch_id = 1;
	s->rodata->cfg_app = RP_APP_NAT;
	inet_pton(AF_INET, "10.1.0.0", (void *)&s->rodata->cfg_nat_int_net);
	inet_pton(AF_INET, "255.255.255.0", (void *)&s->rodata->cfg_nat_int_mask);
	inet_pton(AF_INET, RP_TOPO_EXT, (void *)&s->rodata->cfg_nat_ext_addr);
	err = redplane_norepl__load(s);
	if (err)
		return err;
	err = rp_topo_prog_array(bpf_map__fd(s->maps.progs), bpf_program__fd(s->progs.rp_root),
				 RP_APP_NAT, bpf_program__fd(s->progs.rp_app_nat));
	if (err)
		return err;
	b->prog[V_NOREPL] = bpf_program__fd(s->progs.rp_root);
	return 0;
}

/* rp-load's root program, as attached on the switch's client-facing interface. */
static int rp_load_prog(struct bench *b)
{
	__u32 id = 0;
	int err = rp_topo_enter_ns(b->t.sw[0].ns);

	if (err)
		return err;
	err = bpf_xdp_query_id((int)if_nametoindex(b->t.sw[0].if_int), XDP_FLAGS_DRV_MODE, &id);
	leave_ns(b);
	if (err || !id)
		return err ? err : -ENOENT;
	b->prog[V_REDPLANE] = bpf_prog_get_fd_by_id(id);
	return b->prog[V_REDPLANE] < 0 ? -errno : 0;
}

static int setup(struct bench *b, const char *bin_dir)
{
	static const char *const load_args[] = { "--lease-ms", "1000", NULL };
	struct rp_topo *t = &b->t;
	uint8_t sw_mac[ETH_ALEN], c_mac[ETH_ALEN], v_mac[ETH_ALEN];
	char prefix[16];
	int err;

	snprintf(prefix, sizeof(prefix), "rprf%d", getpid() % 100000);
	err = rp_topo_create(t, prefix, 1, bin_dir);
	if (err)
		return err;
	err = rp_topo_start_store(t, "1000", "0");
	if (!err)
		err = rp_topo_start_switch(t, 0, load_args);
	if (!err)
		err = rp_load_prog(b);
	if (err)
		return err;

	b->gen = trafficgen__open();
	if (!b->gen)
		return -errno;
	if (ns_mac(t->sw[0].ns, t->sw[0].if_int, sw_mac) || ns_mac(t->ns_client, "c1", c_mac) ||
	    ns_mac(t->ns_server, "v1", v_mac))
		return -ENOENT;
	build_frame(b, sw_mac, c_mac);
	memcpy((void *)b->gen->rodata->frame, b->frame, FRAME_LEN);
	b->gen->rodata->nflows = b->o.flows;
	b->gen->rodata->sport_base = SPORT_BASE;
	b->gen->rodata->sink_port = SINK_PORT;
	inet_pton(AF_INET, RP_TOPO_EXT, (void *)&b->gen->rodata->sink_saddr);
	err = trafficgen__load(b->gen);
	if (err)
		return err;
	b->prog[V_NFT] = bpf_program__fd(b->gen->progs.trafficgen_pass);
	err = load_norepl(b);
	if (err)
		return err;

	/* the sink in place of the server end's pass-all program */
	err = rp_topo_xdp_attach(t->ns_server, "v1",
				 bpf_program__fd(b->gen->progs.trafficgen_sink));
	if (err)
		return err;
	b->client_ifindex = 0;
	err = rp_topo_enter_ns(t->ns_client);
	if (err)
		return err;
	b->client_ifindex = (int)if_nametoindex("c1");
	leave_ns(b);
	if (!b->client_ifindex)
		return -ENOENT;
	/* XDP forwards only with a neighbour entry; the kernel path gets the same one */
	if (rp_topo_sh(t->sw[0].ns,
		       "ip neigh replace 10.20.1.2 lladdr %02x:%02x:%02x:%02x:%02x:%02x dev %s nud permanent",
		       v_mac[0], v_mac[1], v_mac[2], v_mac[3], v_mac[4], v_mac[5], t->sw[0].if_ext))
		return -EIO;
	/* the kernel's NAT stays configured: the XDP NATs forward before netfilter sees a frame */
	return rp_topo_kernel_nat(t, 0);
}

/* Section 2: the three NATs, rounds interleaved. */
static int forwarding(struct bench *b)
{
	double pps[NVARIANTS][b->o.rounds], loss[NVARIANTS][b->o.rounds], med[NVARIANTS];
	double med_loss[NVARIANTS], extra_ns;
	char name[64];
	int err;

	for (unsigned int r = 0; r < b->o.rounds; r++) {
		/* each round starts with another variant: no order favours one */
		for (int i = 0; i < NVARIANTS; i++) {
			int v = (int)((i + r) % NVARIANTS);
			uint64_t got;
			double secs;

			long long fp;

			if (stopping)
				return -EINTR;
			err = attach(b, v);
			if (!err)
				err = establish(b, v);
			fp = fast_path(b, v);
			if (!err)
				err = blast(b, b->o.frames, &secs, &got);
			if (err)
				return err;
			/* every frame measured was translated, on the read path */
			if (b->gen->bss->received_other ||
			    (v != V_NFT && fast_path(b, v) - fp < (long long)got)) {
				fprintf(stderr, "fwd-bench: %s: %llu frames arrived untranslated, "
						"%lld of %llu on the read path\n", vname[v],
					(unsigned long long)b->gen->bss->received_other,
					fast_path(b, v) - fp, (unsigned long long)got);
				return -EPROTO;
			}
			pps[v][r] = (double)got / secs;
			loss[v][r] = 1.0 - (double)got / b->o.frames;
		}
	}
	err = attach(b, V_REDPLANE);
	if (err)
		return err;
	for (int v = 0; v < NVARIANTS; v++) {
		med[v] = median(pps[v], b->o.rounds);
		med_loss[v] = median(loss[v], b->o.rounds);
	}

	printf("Forwarding through the switch namespace (veth, %d-byte UDP frames, %u flows,\n"
	       "established; %u frames x %u interleaved rounds, medians):\n",
	       FRAME_LEN, b->o.flows, b->o.frames, b->o.rounds);
	for (int v = 0; v < NVARIANTS; v++) {
		printf("  %-36s %10.0f packets/s  (%4.1f%% not delivered)\n", vtext[v], med[v],
		       100 * med_loss[v]);
		rp_bench_csv(2, vname[v], med[v], "pps");
		snprintf(name, sizeof(name), "%s_undelivered", vname[v]);
		rp_bench_csv(2, name, 100 * med_loss[v], "%");
	}
	/* what the replication build adds per packet, on the same path */
	extra_ns = 1e9 / med[V_REDPLANE] - 1e9 / med[V_NOREPL];
	printf("  redplane / no replication %.2f, redplane / nftables %.2f; redplane adds %.1f ns/packet\n",
	       med[V_REDPLANE] / med[V_NOREPL], med[V_REDPLANE] / med[V_NFT], extra_ns);
	rp_bench_csv(2, "redplane_vs_norepl", med[V_REDPLANE] / med[V_NOREPL], "ratio");
	rp_bench_csv(2, "redplane_vs_nftables", med[V_REDPLANE] / med[V_NFT], "ratio");
	rp_bench_csv(2, "norepl_vs_nftables", med[V_NOREPL] / med[V_NFT], "ratio");
	rp_bench_csv(2, "redplane_extra_ns", extra_ns, "ns/packet");
	return 0;
}

/* ---- Section 6: replication traffic ---- */

/* Counters of the switch: per interface rx_bytes, tx_bytes, rx_packets, tx_packets. */
enum { RX_BYTES, TX_BYTES, RX_PACKETS, TX_PACKETS, NCOUNTERS };
enum { IF_INT, IF_EXT, IF_STO, NIFS };

struct snapshot {
	unsigned long long c[NIFS][NCOUNTERS];
	long long fast_path;
};

/*
 * Every end of the switch's links carries an XDP program, so a veth counts
 * each frame once, at the receiving end's XDP (skbs and redirected frames
 * alike): tx of the store link is all that reached the store.
 */
static int snapshot(struct bench *b, struct snapshot *s)
{
	struct rp_topo_switch *sw = &b->t.sw[0];
	char cmd[512];

	snprintf(cmd, sizeof(cmd),
		 "for i in %s %s %s; do for c in rx_bytes tx_bytes rx_packets tx_packets; do "
		 "cat /sys/class/net/$i/statistics/$c; done; done",
		 sw->if_int, sw->if_ext, sw->if_sto);
	if (ns_numbers(sw->ns, cmd, &s->c[0][0], NIFS * NCOUNTERS) != NIFS * NCOUNTERS)
		return -EIO;
	s->fast_path = rp_topo_dp_stat(&b->t, 0, "fast_path");
	return 0;
}

static unsigned long long delta(const struct snapshot *a, const struct snapshot *z, int i, int c)
{
	return z->c[i][c] - a->c[i][c];
}

static int listen_on(struct bench *b, int port)
{
	struct sockaddr_in srv = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, fd = rp_topo_socket(b->t.ns_server, AF_INET, SOCK_STREAM);

	if (fd < 0)
		return fd;
	inet_pton(AF_INET, RP_TOPO_SERVER, &srv.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&srv, sizeof(srv)) || listen(fd, 64)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static bool readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

/* A connection from the client to the server's port: both ends, or -errno. */
static int connect_pair(struct bench *b, int lfd, int port, int *cfd, int *sfd)
{
	struct sockaddr_in srv = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = 5 };

	inet_pton(AF_INET, RP_TOPO_SERVER, &srv.sin_addr);
	*sfd = -1;
	*cfd = rp_topo_socket(b->t.ns_client, AF_INET, SOCK_STREAM);
	if (*cfd < 0)
		return *cfd;
	setsockopt(*cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(*cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(*cfd, (struct sockaddr *)&srv, sizeof(srv)) || !readable(lfd, 5000) ||
	    (*sfd = accept(lfd, NULL, NULL)) < 0) {
		close(*cfd);
		return -ETIMEDOUT;
	}
	setsockopt(*sfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return 0;
}

struct drain {
	int fd;
	unsigned long long want, got;
};

static void *drain_thread(void *arg)
{
	struct drain *d = arg;
	static char buf[1 << 16];

	while (d->got < d->want) {
		ssize_t n = recv(d->fd, buf, sizeof(buf), 0);

		if (n <= 0)
			break;
		d->got += (unsigned long long)n;
	}
	return NULL;
}

/* Read-centric: one TCP stream, counted from after its setup to its last byte. */
static int stream(struct bench *b, struct snapshot *s0, struct snapshot *s1)
{
	static char buf[1 << 16];
	struct drain d = { .want = (unsigned long long)b->o.stream_mib << 20 };
	unsigned long long sent = 0;
	uint64_t deadline = now_ns() + 30000000000ull;	/* 30 s at most */
	int lfd = listen_on(b, 5001), cfd, err;
	pthread_t th;

	if (lfd < 0)
		return lfd;
	err = connect_pair(b, lfd, 5001, &cfd, &d.fd);
	close(lfd);
	if (err)
		return err;
	sleep_ms(20);	/* the handshake's last ACK through */
	err = snapshot(b, s0);
	if (!err && pthread_create(&th, NULL, drain_thread, &d))
		err = -EAGAIN;
	if (err)
		goto out;
	while (sent < d.want && now_ns() < deadline && !stopping) {
		size_t len = d.want - sent < sizeof(buf) ? (size_t)(d.want - sent) : sizeof(buf);
		ssize_t n = send(cfd, buf, len, 0);

		if (n <= 0)
			break;
		sent += (unsigned long long)n;
	}
	pthread_join(th, NULL);
	sleep_ms(20);	/* the last ACKs */
	err = snapshot(b, s1);
	if (!err && d.got != d.want)
		err = -EIO;
out:
	close(cfd);
	close(d.fd);
	return err;
}

/* Write-centric: short connections, each one request of 1,000 bytes, each end closing. */
static int short_conns(struct bench *b, struct snapshot *s0, struct snapshot *s1)
{
	char buf[1000] = { 0 };
	int lfd = listen_on(b, 5002), err;

	if (lfd < 0)
		return lfd;
	err = snapshot(b, s0);
	for (unsigned int i = 0; !err && i < b->o.conns && !stopping; i++) {
		size_t got = 0;
		ssize_t n;
		int cfd, sfd;

		err = connect_pair(b, lfd, 5002, &cfd, &sfd);
		if (err)
			break;
		if (send(cfd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) || shutdown(cfd, SHUT_WR))
			err = -EIO;
		while (!err && (n = recv(sfd, buf, sizeof(buf), 0)) > 0)
			got += (size_t)n;
		if (!err && got != sizeof(buf))
			err = -EIO;
		close(sfd);	/* the server's FIN */
		if (!err && recv(cfd, buf, sizeof(buf), 0) != 0)
			err = -EIO;
		close(cfd);
		if (err)
			fprintf(stderr, "fwd-bench: short connection %u failed\n", i);
	}
	close(lfd);
	sleep_ms(50);	/* the last ACKs */
	if (!err)
		err = snapshot(b, s1);
	return err;
}

static void traffic_report(const char *name, const char *text, const struct snapshot *a,
			   const struct snapshot *z)
{
	unsigned long long data = delta(a, z, IF_INT, RX_BYTES) + delta(a, z, IF_EXT, RX_BYTES);
	unsigned long long pkts = delta(a, z, IF_INT, RX_PACKETS) + delta(a, z, IF_EXT, RX_PACKETS);
	unsigned long long to = delta(a, z, IF_STO, TX_BYTES), from = delta(a, z, IF_STO, RX_BYTES);
	unsigned long long reads = (unsigned long long)(z->fast_path - a->fast_path);
	double renew = (double)reads * RENEW_BYTES;
	char key[64];

	printf("  %-40s %12llu %10llu %12llu %12llu %8.4f %8.4f %12.0f %8.4f\n", text, data, pkts,
	       to, from, (double)to / (double)data, (double)(to + from) / (double)data, renew,
	       renew / (double)data);
#define ROW(suffix, value, unit)					\
	do {								\
		snprintf(key, sizeof(key), "%s_%s", name, suffix);	\
		rp_bench_csv(6, key, value, unit);			\
	} while (0)
	ROW("data_bytes", (double)data, "bytes");
	ROW("data_packets", (double)pkts, "packets");
	ROW("read_packets", (double)reads, "packets");
	ROW("to_store_bytes", (double)to, "bytes");
	ROW("from_store_bytes", (double)from, "bytes");
	ROW("to_store_per_data", (double)to / (double)data, "ratio");
	ROW("store_both_per_data", (double)(to + from) / (double)data, "ratio");
	ROW("renew_bytes", renew, "bytes");
	ROW("renew_per_data", renew / (double)data, "ratio");
	/* the reference design sends the same leases and writes, and the renews */
	ROW("reference_per_data", ((double)to + renew) / (double)data, "ratio");
#undef ROW
}

/* Section 6: what the store link carries against the data links. */
static int traffic(struct bench *b)
{
	struct snapshot idle0, idle1, r0, r1, w0, w1;
	int err;

	err = rp_topo_sh(b->t.sw[0].ns, "nft delete table ip nat");	/* the NAT is redplane's */
	if (!err)
		err = snapshot(b, &idle0);
	if (err)
		return err ? -EIO : 0;
	sleep_ms(1000);
	err = snapshot(b, &idle1);
	if (!err)
		err = stream(b, &r0, &r1);
	if (!err)
		err = short_conns(b, &w0, &w1);
	if (!err && stopping)
		err = -EINTR;
	if (err) {
		fprintf(stderr, "fwd-bench: Couldn't run the TCP traffic: %s\n", strerror(-err));
		return err;
	}
	printf("\nReplication traffic at the switch (interface counters: the store link against\n"
	       "the data links; renew: one %d-byte message per read packet, the reference design):\n",
	       (int)RENEW_BYTES);
	printf("  %-40s %12s %10s %12s %12s %8s %8s %12s %8s\n", "workload", "data B", "data pkts",
	       "to store B", "from store B", "to/data", "both/d", "renew B", "renew/d");
	traffic_report("read", "read-centric: one TCP stream after setup", &r0, &r1);
	{
		char text[64];

		snprintf(text, sizeof(text), "write-centric: %u short TCP connections", b->o.conns);
		traffic_report("write", text, &w0, &w1);
	}
	printf("  idle: %llu bytes/s to the store (heartbeats), %llu from it\n",
	       delta(&idle0, &idle1, IF_STO, TX_BYTES), delta(&idle0, &idle1, IF_STO, RX_BYTES));
	rp_bench_csv(6, "idle_to_store", (double)delta(&idle0, &idle1, IF_STO, TX_BYTES), "bytes/s");
	rp_bench_csv(6, "stream_bytes", (double)((unsigned long long)b->o.stream_mib << 20), "bytes");
	rp_bench_csv(6, "short_connections", b->o.conns, "connections");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "frames", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "flows", required_argument, NULL, 'f' },
		{ "stream-mib", required_argument, NULL, 's' },
		{ "connections", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct bench b = { .o = { .frames = 1000000, .rounds = 5, .flows = 256, .stream_mib = 64,
				  .conns = 500 } };
	char self[PATH_MAX];
	ssize_t n;
	int c, err;

	while ((c = getopt_long(argc, argv, "n:r:f:s:c:h", longopts, NULL)) != -1) {
		unsigned long v = optarg ? strtoul(optarg, NULL, 10) : 0;

		switch (c) {
		case 'n': b.o.frames = (unsigned int)v; break;
		case 'r': b.o.rounds = (unsigned int)v; break;
		case 'f': b.o.flows = (unsigned int)v; break;
		case 's': b.o.stream_mib = (unsigned int)v; break;
		case 'c': b.o.conns = (unsigned int)v; break;
		default:
			goto usage;
		}
	}
	if (b.o.frames < 1000 || b.o.frames > 100000000 || !b.o.rounds || b.o.rounds > 51 ||
	    !b.o.flows || b.o.flows > 4000 || !b.o.stream_mib || b.o.stream_mib > 4096 ||
	    !b.o.conns || b.o.conns > 10000)
		goto usage;
	if (geteuid() != 0) {
		fprintf(stderr, "fwd-bench: needs root (network namespaces, XDP)\n");
		return 1;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return 1;
	self[n] = '\0';
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	b.self_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (b.self_ns < 0)
		return 1;
	for (int v = 0; v < NVARIANTS; v++)
		b.prog[v] = -1;

	err = setup(&b, dirname(self));
	if (err)
		fprintf(stderr, "fwd-bench: Couldn't set the switch up: %s\n", strerror(-err));
	if (!err)
		err = forwarding(&b);
	if (!err)
		err = traffic(&b);
	if (b.rp_detached)	/* rp-load detaches only its own program */
		attach(&b, V_REDPLANE);
	rp_topo_destroy(&b.t);
	redplane_norepl__destroy(b.norepl);
	trafficgen__destroy(b.gen);
	return err ? 1 : 0;
usage:
	fprintf(stderr, "Usage: fwd-bench [--frames N (1000000)] [--rounds N (5)] [--flows N (256)]\n"
			"                 [--stream-mib MIB (64)] [--connections N (500)]\n");
	return 2;
}
