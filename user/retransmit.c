// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The retransmit ring.  The data plane sends every write request itself (no
 * wake-up on the first transmission) and hands rp-load a copy through a
 * ring buffer.  rp-load keeps each copy in a UMEM frame of an AF_XDP socket
 * on the store-facing interface until the flow's acked sequence number
 * covers it, and re-sends it through AF_XDP TX when the RTO expires, a
 * bounded number of times.  A copy built for a head its chain has since
 * left goes to the new head from rp-load's UDP socket instead: the kernel
 * routes it there, which AF_XDP, sending frames as they are, cannot.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xdp/xsk.h>

#include "agent.h"
#include "redplane/log.h"
#include "redplane.skel.h"

#define RTO_MIN_NS	1000000ull	/* 1 ms: the agent's loop granularity */
#define RTO_MAX_NS	1000000000ull
/* a copy's outer headers, as rp_emit builds them: no VLAN, no IP options */
#define OUTER_LEN	(sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr))

static struct xsk_ring_prod fill, tx;
static struct xsk_ring_cons comp;

uint64_t rp_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t rp_rtx_rto_ns(const struct rp_agent *a)
{
	uint64_t rto;

	if (a->cfg.rto_us)
		return (uint64_t)a->cfg.rto_us * 1000ull;
	if (a->srtt_us == 0)
		return 10 * RTO_MIN_NS;	/* no sample yet */
	rto = (uint64_t)((a->srtt_us + 4 * a->rttvar_us) * 1000.0);
	return rto < RTO_MIN_NS ? RTO_MIN_NS : rto > RTO_MAX_NS ? RTO_MAX_NS : rto;
}

static uint8_t *slot_frame(const struct rp_agent *a, const struct rp_wslot *s)
{
	return (uint8_t *)a->umem_area + (size_t)(s - a->slots) * RP_FRAME_SIZE;
}

static int take_copy(void *ctx, void *data, size_t size)
{
	struct rp_agent *a = ctx;
	const struct rp_dp_wcopy *rec = data;
	uint64_t now = rp_mono_ns();
	struct rp_wslot *s = NULL;

	if (size < sizeof(*rec) || rec->len > RP_FRAME_MAX)
		return 0;
	for (uint32_t n = 0; n < RP_RING_FRAMES; n++) {
		uint32_t i = (a->free_hint + n) % RP_RING_FRAMES;

		if (!a->slots[i].used) {
			s = &a->slots[i];
			a->free_hint = i + 1;
			break;
		}
	}
	if (!s) {
		a->stats[RP_AG_ring_full]++;
		return 0;
	}
	memcpy(slot_frame(a, s), rec->frame, rec->len);
	*s = (struct rp_wslot){
		.used = true,
		.len = rec->len,
		.seq = rec->seq,
		.epoch = rec->epoch,
		.gen = rec->gen,
		.first_ns = rec->sent_ns,
		.due_ns = rec->sent_ns + rp_rtx_rto_ns(a),
		.key = rec->key,
	};
	a->nslots_used++;
	a->stats[RP_AG_writes_tracked]++;
	if (now > rec->sent_ns) {
		a->copy_delay_sum_ns += now - rec->sent_ns;
		a->copy_delay_n++;
	}
	return 0;
}

int rp_rtx_init(struct rp_agent *a)
{
	struct xsk_umem_config ucfg = {
		.fill_size = 64,
		.comp_size = RP_RING_FRAMES,
		.frame_size = RP_FRAME_SIZE,
	};
	struct xsk_socket_config scfg = {
		.tx_size = 2048,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = XDP_COPY,
	};
	size_t size = (size_t)RP_RING_FRAMES * RP_FRAME_SIZE;
	int err;

	a->slots = calloc(RP_RING_FRAMES, sizeof(*a->slots));
	a->umem_area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a->umem_area == MAP_FAILED)
		a->umem_area = NULL;
	if (!a->slots || !a->umem_area)
		return -ENOMEM;	/* rp_rtx_free() releases what was had */
	err = xsk_umem__create(&a->umem, a->umem_area, size, &fill, &comp, &ucfg);
	if (err) {
		pr_warn("rp-load: Couldn't create the AF_XDP UMEM: %s\n", strerror(-err));
		return err;
	}
	/*
	 * TX only; our own XDP program stays attached (no XSK program loaded).
	 * The queue of an rp-load that just exited stays bound until the
	 * kernel has released its socket, shortly after: EBUSY is retried for
	 * up to a second.
	 */
	for (int tries = 0;; tries++) {
		err = xsk_socket__create(&a->xsk, a->store_ifname, 0, a->umem, NULL, &tx, &scfg);
		if (err != -EBUSY || tries == 20)
			break;
		usleep(50000);
	}
	if (err) {
		pr_warn("rp-load: Couldn't create an AF_XDP socket on '%s': %s\n", a->store_ifname,
			strerror(-err));
		return err;
	}
	a->rb = ring_buffer__new(bpf_map__fd(a->skel->maps.wcopies), take_copy, a, NULL);
	if (!a->rb) {
		err = -errno;
		pr_warn("rp-load: Couldn't open the write-copy ring: %s\n", strerror(-err));
		return err;
	}
	return 0;
}

void rp_rtx_free(struct rp_agent *a)
{
	ring_buffer__free(a->rb);
	if (a->xsk)
		xsk_socket__delete(a->xsk);
	if (a->umem)
		xsk_umem__delete(a->umem);
	if (a->umem_area)
		munmap(a->umem_area, (size_t)RP_RING_FRAMES * RP_FRAME_SIZE);
	free(a->slots);
	a->rb = NULL;
	a->xsk = NULL;
	a->umem = NULL;
	a->umem_area = NULL;
	a->slots = NULL;
}

int rp_rtx_epoll_fd(const struct rp_agent *a)
{
	return ring_buffer__epoll_fd(a->rb);
}

static void slot_free(struct rp_agent *a, struct rp_wslot *s, enum rp_agent_stat why)
{
	s->used = false;
	a->nslots_used--;
	a->stats[why]++;
}

/* Frames AF_XDP has sent come back: they may be sent again. */
static void reap_completions(struct rp_agent *a)
{
	uint32_t idx, n = xsk_ring_cons__peek(&comp, RP_RING_FRAMES, &idx);

	for (uint32_t i = 0; i < n; i++) {
		uint64_t addr = *xsk_ring_cons__comp_addr(&comp, idx + i);

		a->slots[addr / RP_FRAME_SIZE].in_flight = false;
		a->tx_in_flight--;
	}
	if (n)
		xsk_ring_cons__release(&comp, n);
}

static bool resend_xsk(struct rp_agent *a, struct rp_wslot *s)
{
	uint32_t idx;
	struct xdp_desc *d;

	if (xsk_ring_prod__reserve(&tx, 1, &idx) != 1)
		return false;
	d = xsk_ring_prod__tx_desc(&tx, idx);
	d->addr = (uint64_t)(s - a->slots) * RP_FRAME_SIZE;
	d->len = s->len;
	d->options = 0;
	xsk_ring_prod__submit(&tx, 1);
	s->in_flight = true;
	a->tx_in_flight++;
	return true;
}

static bool addressed_to(const uint8_t *frame, const struct sockaddr_in *to)
{
	struct iphdr ip;
	struct udphdr udp;

	/* copied out: after 14 bytes of Ethernet the headers are not aligned */
	memcpy(&ip, frame + sizeof(struct ethhdr), sizeof(ip));
	memcpy(&udp, frame + sizeof(struct ethhdr) + sizeof(ip), sizeof(udp));
	return ip.daddr == to->sin_addr.s_addr && udp.dest == to->sin_port;
}

/* The request (message and packet), from the port requests leave from. */
static bool resend_udp(struct rp_agent *a, struct rp_wslot *s, const struct sockaddr_in *head)
{
	size_t len = s->len - OUTER_LEN;

	return sendto(a->sock, slot_frame(a, s) + OUTER_LEN, len, 0,
		      (const struct sockaddr *)head, sizeof(*head)) == (ssize_t)len;
}

/* Sends a copy again, to its chain's head now; true when it went. */
static bool resend(struct rp_agent *a, struct rp_wslot *s, uint16_t store)
{
	const struct sockaddr_in *head = rp_hb_head(a, store);

	if (addressed_to(slot_frame(a, s), head)) {
		if (!resend_xsk(a, s))
			return false;
		a->stats[RP_AG_retransmits]++;
	} else {
		if (!resend_udp(a, s, head))
			return false;
		a->stats[RP_AG_retransmits_udp]++;
	}
	return true;
}

void rp_rtx_poll(struct rp_agent *a, uint64_t now)
{
	int flows_fd = bpf_map__fd(a->skel->maps.flows);
	uint64_t rto = rp_rtx_rto_ns(a);

	ring_buffer__consume(a->rb);
	reap_completions(a);
	for (uint32_t i = 0; i < RP_RING_FRAMES && a->nslots_used; i++) {
		struct rp_wslot *s = &a->slots[i];
		struct rp_dp_flow f;

		if (!s->used || now < s->due_ns)
			continue;
		if (s->in_flight) {
			s->due_ns = now + rto;
			continue;
		}
		/* the data plane keeps the newest acked seq per flow */
		if (bpf_map_lookup_elem_flags(flows_fd, &s->key, &f, BPF_F_LOCK) || f.epoch != s->epoch ||
		    f.gen != s->gen) {
			slot_free(a, s, RP_AG_writes_abandoned);	/* the lease is gone */
		} else if (!rp_seq_after(s->seq, f.acked)) {
			slot_free(a, s, RP_AG_writes_acked);
		} else if (s->tries >= a->cfg.max_tries) {
			slot_free(a, s, RP_AG_gave_up);
		} else if (resend(a, s, f.store)) {
			s->tries++;
			/* exponential backoff, as TCP */
			s->due_ns = now + (rto << (s->tries < 6 ? s->tries : 6));
		} else {
			s->due_ns = now + rto;	/* TX ring or socket full: next round */
		}
	}
	/*
	 * Copy mode sends a bounded batch per kick: kick while anything is in
	 * the TX ring, this round's included.  EAGAIN, EBUSY, ENOBUFS: the next
	 * round kicks again.
	 */
	if (a->tx_in_flight)
		sendto(xsk_socket__fd(a->xsk), NULL, 0, MSG_DONTWAIT, NULL, 0);
	a->stats[RP_AG_outstanding] = a->nslots_used;
}
