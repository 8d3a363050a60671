// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * rp-bench: a load generator that speaks the redplane protocol.  It keeps a
 * window of requests outstanding against rp-store (or rp-echo, the ceiling),
 * and reports requests per second and latency percentiles.
 *
 *   lease: every request is a lease request for a new flow, with a proposed
 *          initial state (the cost of a new flow);
 *   write: writes of --state-len bytes to --flows flows acquired first, one
 *          outstanding write per flow, sequence numbers in order.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "redplane/addr.h"
#include "redplane/codec.h"
#include "redplane/log.h"

#define BATCH		32
#define MAX_SOCKETS	16
#define RESEND_NS	200000000ull	/* a reply this late is taken as lost */
#define HEARTBEAT_NS	100000000ull

enum mode { MODE_LEASE, MODE_WRITE };

#define MAX_TARGETS	4

struct opts {
	struct rp_sockaddr target;	/* the one requests go to now */
	struct rp_sockaddr targets[MAX_TARGETS];	/* a chain's replicas */
	unsigned int ntargets, cur;
	enum mode mode;
	bool echo;
	unsigned int window;
	unsigned int sockets;
	double duration;
	uint64_t count;		/* stop after this many replies (0: duration) */
	uint32_t flows;
	uint8_t state_len;
	uint16_t switch_id;
	const char *label;
};

/* What rides in the piggybacked packet and comes back in the reply. */
struct bench_pkt {
	uint64_t sent_ns;
	uint32_t slot;
	uint32_t gen;
};

struct slot {
	uint64_t sent_ns;
	uint32_t gen;
	uint32_t flow;		/* write mode: the flow this slot writes next */
};

struct tx_batch {
	unsigned int n;
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	uint8_t buf[BATCH][RP_MSG_LEN + sizeof(struct bench_pkt)];
};

struct bench {
	struct opts o;
	int fds[MAX_SOCKETS];
	struct tx_batch tx[MAX_SOCKETS];
	struct slot *slots;
	uint32_t *seq;		/* per flow, write mode */
	uint16_t *gen;		/* per flow: the lease generation its grant named */
	uint32_t epoch;
	uint32_t nonce;
	uint32_t next_flow;
	bool measuring;
	uint64_t replies, lost, rejects[__RP_REJ_MAX], unexpected;
	uint64_t granted;		/* flows leased before measuring */
	uint64_t last_good_ns;		/* newest GRANT, MIGRATE or ACK */
	uint64_t stall_ns;		/* longest time without one, measured */
	uint64_t last_switch_ns;	/* when the target last changed */
	unsigned int head_changes;
	uint32_t *lat_ns;
	uint64_t nlat, lat_cap;
	uint8_t state[RP_STATE_MAX];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void flush(struct bench *b, unsigned int k)
{
	struct tx_batch *t = &b->tx[k];

	for (unsigned int sent = 0; sent < t->n;) {
		int r = sendmmsg(b->fds[k], t->msgs + sent, t->n - sent, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			sent++;	/* counted as lost when its reply never comes */
			continue;
		}
		sent += (unsigned int)r;
	}
	t->n = 0;
}

static void queue_msg(struct bench *b, unsigned int k, const struct rp_msg_view *v)
{
	struct tx_batch *t = &b->tx[k];
	int len;

	if (t->n == BATCH)
		flush(b, k);
	len = rp_msg_encode(t->buf[t->n], sizeof(t->buf[t->n]), v);
	if (len < 0) {
		pr_warn("rp-bench: built an invalid message\n");
		exit(1);
	}
	t->iov[t->n] = (struct iovec){ .iov_base = t->buf[t->n], .iov_len = (size_t)len };
	t->msgs[t->n].msg_hdr = (struct msghdr){
		.msg_name = &b->o.target.ss,
		.msg_namelen = b->o.target.len,
		.msg_iov = &t->iov[t->n],
		.msg_iovlen = 1,
	};
	t->n++;
}

/* Flows of different switch ids never collide: the id is in the key. */
static void flow_key(const struct bench *b, struct rp_flow_key *k, uint32_t flow)
{
	rp_key_v4(k, IPPROTO_UDP, htonl(0x0a000000u | (flow & 0xffffff)),
		  htons((uint16_t)(1024 + (flow >> 24))), htonl(0xc6330000u | b->o.switch_id),
		  htons(53));
}

/*
 * Sends slot i's next request: a new flow, or the next write of its flow;
 * or, with resend, the same request again.
 */
static void send_slot(struct bench *b, uint32_t i, bool writes, bool resend)
{
	struct slot *s = &b->slots[i];
	struct bench_pkt pkt;
	struct rp_msg_view v = {
		.app_id = RP_APP_NAT,
		.flags = RP_F_STATE | RP_F_PKT,
		.switch_id = b->o.switch_id,
		.epoch = b->epoch,
		.state_len = b->o.state_len,
		.state = b->state,
		.pkt = (const uint8_t *)&pkt,
		.pkt_len = sizeof(pkt),
	};

	if (writes) {
		v.type = RP_MSG_WRITE;
		v.seq = resend ? b->seq[s->flow] : ++b->seq[s->flow];
		v.gen = b->gen[s->flow];
	} else {
		v.type = RP_MSG_LEASE_REQ;
		if (!resend)
			s->flow = b->next_flow++;
	}
	flow_key(b, &v.key, s->flow);
	s->gen++;
	s->sent_ns = now_ns();
	pkt = (struct bench_pkt){ .sent_ns = s->sent_ns, .slot = i, .gen = s->gen };
	queue_msg(b, i % b->o.sockets, &v);
}

static void send_heartbeat(struct bench *b)
{
	struct rp_msg_view v = {
		.type = RP_MSG_HEARTBEAT,
		.switch_id = b->o.switch_id,
		.seq = ++b->nonce,
		.epoch = b->epoch,
	};

	queue_msg(b, 0, &v);
	flush(b, 0);
}

static void record(struct bench *b, uint64_t ns)
{
	if (b->nlat == b->lat_cap) {
		b->lat_cap = b->lat_cap ? b->lat_cap * 2 : 1 << 20;
		b->lat_ns = realloc(b->lat_ns, b->lat_cap * sizeof(*b->lat_ns));
		if (!b->lat_ns) {
			pr_warn("rp-bench: out of memory for latency samples\n");
			exit(1);
		}
	}
	b->lat_ns[b->nlat++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static void set_target(struct bench *b, unsigned int i, uint64_t now)
{
	b->o.cur = i;
	b->o.target = b->o.targets[i];
	b->last_switch_ns = now;
	b->head_changes++;
}

/* A replica that is not its chain's head says where the head is. */
static void follow_hint(struct bench *b, const struct rp_msg_view *v, uint64_t now)
{
	struct rp_head_hint h;

	if (v->state_len != sizeof(h))
		return;
	memcpy(&h, v->state, sizeof(h));
	for (unsigned int i = 0; i < b->o.ntargets; i++) {
		const struct sockaddr_in *t = (const struct sockaddr_in *)&b->o.targets[i].ss;

		if (h.addr && i != b->o.cur && t->sin_addr.s_addr == h.addr && t->sin_port == h.port)
			set_target(b, i, now);
	}
}

static void note_good(struct bench *b, uint64_t now)
{
	if (b->measuring && b->last_good_ns && now - b->last_good_ns > b->stall_ns)
		b->stall_ns = now - b->last_good_ns;
	b->last_good_ns = now;
}

/* Handles one reply; returns the slot it completes, or -1. */
static int64_t on_reply(struct bench *b, const uint8_t *buf, size_t len, uint64_t now)
{
	struct rp_msg_view v;
	struct bench_pkt pkt;

	if (rp_msg_decode(buf, len, &v)) {
		b->unexpected++;
		return -1;
	}
	if (v.type == RP_MSG_HEARTBEAT_ACK) {
		b->epoch = v.epoch;
		return -1;
	}
	if (v.pkt_len != sizeof(pkt)) {
		b->unexpected++;
		return -1;
	}
	memcpy(&pkt, v.pkt, sizeof(pkt));
	if (pkt.slot >= b->o.window || b->slots[pkt.slot].gen != pkt.gen)
		return -1;	/* the reply to a request already resent */
	if (v.type == RP_MSG_REJECT && v.reason == RP_REJ_NOT_HEAD)
		follow_hint(b, &v, now);
	if (v.type == RP_MSG_REJECT) {
		b->rejects[v.reason]++;
	} else if (v.type == RP_MSG_GRANT || v.type == RP_MSG_MIGRATE || v.type == RP_MSG_ACK) {
		note_good(b, now);
		if (v.type != RP_MSG_ACK && b->slots[pkt.slot].flow < b->o.flows) {
			b->gen[b->slots[pkt.slot].flow] = v.gen;
			b->granted++;
		}
	} else if (!b->o.echo) {
		b->unexpected++;
	}
	if (b->measuring)
		record(b, now - pkt.sent_ns);
	b->replies++;
	return pkt.slot;
}

/*
 * Keeps the window full until `until_ns` or `count` replies.  writes picks
 * the request kind.  Returns the elapsed nanoseconds.
 */
static uint64_t run(struct bench *b, bool writes, uint64_t until_ns, uint64_t count)
{
	static uint8_t bufs[BATCH][2048];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct pollfd pfd[MAX_SOCKETS];
	uint64_t start = now_ns(), last_hb = start, last_check = start, sent = 0;
	uint64_t base = b->replies;

	for (uint32_t i = 0; i < b->o.window && (!count || sent < count); i++, sent++)
		send_slot(b, i, writes, false);
	for (unsigned int k = 0; k < b->o.sockets; k++) {
		flush(b, k);
		pfd[k] = (struct pollfd){ .fd = b->fds[k], .events = POLLIN };
	}

	for (;;) {
		uint64_t now = now_ns();
		bool got = false;

		if ((count && b->replies - base >= count) || (!count && now >= until_ns))
			break;
		for (unsigned int k = 0; k < b->o.sockets; k++) {
			int n;

			for (int i = 0; i < BATCH; i++) {
				iov[i] = (struct iovec){ .iov_base = bufs[i], .iov_len = sizeof(bufs[i]) };
				msgs[i].msg_hdr = (struct msghdr){ .msg_iov = &iov[i], .msg_iovlen = 1 };
			}
			n = recvmmsg(b->fds[k], msgs, BATCH, MSG_DONTWAIT, NULL);
			if (n <= 0)
				continue;
			got = true;
			now = now_ns();
			for (int i = 0; i < n; i++) {
				int64_t slot = on_reply(b, bufs[i], msgs[i].msg_len, now);

				if (slot >= 0 && (!count || sent < count)) {
					struct slot *sl = &b->slots[slot];

					/* each slot walks its own flows: i, i + window, ... */
					if (writes)
						sl->flow = (sl->flow + b->o.window) % b->o.flows;
					send_slot(b, (uint32_t)slot, writes, false);
					sent++;
				}
			}
		}
		for (unsigned int k = 0; k < b->o.sockets; k++)
			flush(b, k);
		if (!got)
			poll(pfd, b->o.sockets, 1);

		now = now_ns();
		if (!b->o.echo && now - last_hb >= HEARTBEAT_NS) {
			send_heartbeat(b);
			last_hb = now;
		}
		/* nothing from the chain for a while: ask its next replica */
		if (b->o.ntargets > 1 && now - b->last_good_ns > RESEND_NS &&
		    now - b->last_switch_ns > RESEND_NS)
			set_target(b, (b->o.cur + 1) % b->o.ntargets, now);
		if (now - last_check >= RESEND_NS / 4) {
			for (uint32_t i = 0; i < b->o.window; i++) {
				if (now - b->slots[i].sent_ns < RESEND_NS)
					continue;
				b->lost++;
				send_slot(b, i, writes, true);
			}
			for (unsigned int k = 0; k < b->o.sockets; k++)
				flush(b, k);
			last_check = now;
		}
	}
	return now_ns() - start;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(const struct bench *b, double p)
{
	uint64_t i;

	if (!b->nlat)
		return 0;
	i = (uint64_t)(p * (double)(b->nlat - 1));
	return b->lat_ns[i] / 1000.0;
}

static int open_sockets(struct bench *b)
{
	struct sockaddr_in6 any6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in any4 = { .sin_family = AF_INET };
	int bufsz = 4 << 20;

	for (unsigned int k = 0; k < b->o.sockets; k++) {
		int fd = socket(b->o.target.ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -errno;
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof(bufsz)))
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
		if (b->o.target.ss.ss_family == AF_INET6 ?
			    bind(fd, (struct sockaddr *)&any6, sizeof(any6)) :
			    bind(fd, (struct sockaddr *)&any4, sizeof(any4)))
			return -errno;
		b->fds[k] = fd;
	}
	return 0;
}

/* Opens a session: the store answers with the epoch our requests carry. */
static int join(struct bench *b)
{
	for (int tries = 0; tries < 20; tries++) {
		uint8_t buf[RP_DGRAM_MAX];
		struct rp_msg_view v;
		struct pollfd pfd = { .fd = b->fds[0], .events = POLLIN };
		ssize_t n;

		send_heartbeat(b);
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = recv(b->fds[0], buf, sizeof(buf), 0);
		if (n > 0 && !rp_msg_decode(buf, (size_t)n, &v) && v.type == RP_MSG_HEARTBEAT_ACK) {
			b->epoch = v.epoch;
			return 0;
		}
	}
	return -ETIMEDOUT;
}

static const char usage_text[] =
	"Usage: rp-bench --target ADDR:PORT [options]\n"
	"  -t, --target ADDR:PORT  rp-store (or rp-echo with --echo); a chain's replicas\n"
	"                          joined by '+': requests follow its head\n"
	"  -m, --mode lease|write  what to send (default write)\n"
	"  -e, --echo              the target echoes: count any reply\n"
	"  -w, --window N          requests outstanding (default 64)\n"
	"  -d, --duration SEC      measured time (default 3)\n"
	"  -n, --count N           stop after N replies instead\n"
	"  -f, --flows N           flows written in write mode (default 4096)\n"
	"  -s, --state-len B       state bytes per request (default 64)\n"
	"  -S, --sockets N         client sockets (default 4)\n"
	"  -i, --switch-id ID      switch id to send as (default 100)\n"
	"  -l, --label TEXT        label of the result line\n";

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "target", required_argument, NULL, 't' },
		{ "mode", required_argument, NULL, 'm' },
		{ "echo", no_argument, NULL, 'e' },
		{ "window", required_argument, NULL, 'w' },
		{ "duration", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'n' },
		{ "flows", required_argument, NULL, 'f' },
		{ "state-len", required_argument, NULL, 's' },
		{ "sockets", required_argument, NULL, 'S' },
		{ "switch-id", required_argument, NULL, 'i' },
		{ "label", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_target = false;
	long v;
	int c;

	*o = (struct opts){ .mode = MODE_WRITE, .window = 64, .sockets = 4, .duration = 3,
			    .flows = 4096, .state_len = 64, .switch_id = 100, .label = "-" };
	while ((c = getopt_long(argc, argv, "t:m:ew:d:n:f:s:S:i:l:h", lo, NULL)) != -1) {
		switch (c) {
		case 't': {
			char *list = strdup(optarg), *save = NULL, *tok;

			o->ntargets = 0;
			for (tok = strtok_r(list, "+", &save); tok; tok = strtok_r(NULL, "+", &save)) {
				if (o->ntargets == MAX_TARGETS ||
				    rp_addr_parse(tok, &o->targets[o->ntargets++]))
					goto bad;
			}
			free(list);
			if (!o->ntargets)
				goto bad;
			o->target = o->targets[0];
			have_target = true;
			break;
		}
		case 'm':
			if (!strcmp(optarg, "lease"))
				o->mode = MODE_LEASE;
			else if (!strcmp(optarg, "write"))
				o->mode = MODE_WRITE;
			else
				goto bad;
			break;
		case 'e':
			o->echo = true;
			break;
		case 'w':
			v = atol(optarg);
			if (v < 1 || v > 65536)
				goto bad;
			o->window = (unsigned int)v;
			break;
		case 'd':
			o->duration = atof(optarg);
			if (o->duration <= 0 || o->duration > 600)
				goto bad;
			break;
		case 'n':
			o->count = strtoull(optarg, NULL, 10);
			break;
		case 'f':
			v = atol(optarg);
			if (v < 1 || v > (1 << 24))
				goto bad;
			o->flows = (uint32_t)v;
			break;
		case 's':
			v = atol(optarg);
			if (v < 0 || v > RP_STATE_MAX)
				goto bad;
			o->state_len = (uint8_t)v;
			break;
		case 'S':
			v = atol(optarg);
			if (v < 1 || v > MAX_SOCKETS)
				goto bad;
			o->sockets = (unsigned int)v;
			break;
		case 'i':
			v = atol(optarg);
			if (v < 1 || v > 65535)
				goto bad;
			o->switch_id = (uint16_t)v;
			break;
		case 'l':
			o->label = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			goto usage;
		}
	}
	if (!have_target)
		goto usage;
	if (o->mode == MODE_WRITE && o->flows < o->window)
		o->flows = o->window;	/* one outstanding write per flow */
	return 0;
bad:
	pr_warn("rp-bench: invalid value '%s' for -%c\n", optarg, c);
usage:
	fputs(usage_text, stderr);
	return -EINVAL;
}

int main(int argc, char **argv)
{
	static struct bench bench;
	struct bench *b = &bench;
	uint64_t elapsed, rejected = 0;
	bool writes;
	int err;

	if (parse(argc, argv, &b->o))
		return 2;
	writes = b->o.mode == MODE_WRITE;
	b->slots = calloc(b->o.window, sizeof(*b->slots));
	b->seq = calloc(b->o.flows, sizeof(*b->seq));
	b->gen = calloc(b->o.flows, sizeof(*b->gen));
	if (!b->slots || !b->seq || !b->gen)
		return 1;
	for (unsigned int i = 0; i < sizeof(b->state); i++)
		b->state[i] = (uint8_t)(i * 13);
	err = open_sockets(b);
	if (err) {
		pr_warn("rp-bench: Couldn't open sockets: %s\n", strerror(-err));
		return 1;
	}
	if (!b->o.echo && join(b)) {
		pr_warn("rp-bench: no heartbeat ack from the target\n");
		return 1;
	}

	b->last_good_ns = b->last_switch_ns = now_ns();
	if (writes) {
		/* acquire the flows first, unmeasured; slot i then writes flow i + k*window */
		if (!b->o.echo) {
			run(b, false, 0, b->o.flows);
			/* writes to flows not leased would measure rejects */
			if (b->granted < b->o.flows) {
				pr_warn("rp-bench: only %llu of %u flows were leased (%llu busy, %llu not_head): "
					"is the store in its start-up grace?\n",
					(unsigned long long)b->granted, b->o.flows,
					(unsigned long long)b->rejects[RP_REJ_BUSY],
					(unsigned long long)b->rejects[RP_REJ_NOT_HEAD]);
				return 1;
			}
		}
		for (uint32_t i = 0; i < b->o.window; i++)
			b->slots[i].flow = i;
	}

	b->measuring = true;
	b->last_good_ns = now_ns();
	b->replies = 0;
	memset(b->rejects, 0, sizeof(b->rejects));
	elapsed = run(b, writes, now_ns() + (uint64_t)(b->o.duration * 1e9), b->o.count);

	qsort(b->lat_ns, b->nlat, sizeof(*b->lat_ns), cmp_u32);
	for (unsigned int r = 1; r < __RP_REJ_MAX; r++)
		rejected += b->rejects[r];
	printf("label=%s mode=%s target=%s window=%u state_len=%u replies=%llu rps=%.0f "
	       "p50_us=%.1f p99_us=%.1f p999_us=%.1f lost=%llu rejected=%llu unexpected=%llu "
	       "stall_ms=%.1f head_changes=%u\n",
	       b->o.label, writes ? "write" : "lease", b->o.echo ? "echo" : "store", b->o.window,
	       b->o.state_len, (unsigned long long)b->replies,
	       (double)b->replies * 1e9 / (double)elapsed, pct_us(b, 0.5), pct_us(b, 0.99),
	       pct_us(b, 0.999), (unsigned long long)b->lost, (unsigned long long)rejected,
	       (unsigned long long)b->unexpected, (double)b->stall_ns / 1e6, b->head_changes);
	return 0;
}
