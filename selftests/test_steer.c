// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The shard steering filter against its C twin, on a live SO_REUSEPORT
 * group: every datagram must reach the socket rp_shard_of() names.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "redplane/steer.h"
#include "rp_test.h"

static int group_socket(struct sockaddr_in *addr)
{
	int one = 1, fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0, "bind: %s",
		     strerror(errno));
	return fd;
}

/* Returns the index of the socket that holds a datagram, reading it. */
static int which_socket(const int *fds, unsigned int n, uint8_t *buf, size_t *len)
{
	struct pollfd pfd[RP_SHARDS_MAX];

	for (unsigned int i = 0; i < n; i++)
		pfd[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	cr_assert_gt(poll(pfd, n, 2000), 0, "datagram lost");
	for (unsigned int i = 0; i < n; i++) {
		if (pfd[i].revents & POLLIN) {
			ssize_t r = recv(fds[i], buf, RP_DGRAM_MAX, 0);

			cr_assert_geq(r, 0);
			*len = (size_t)r;
			return (int)i;
		}
	}
	return -1;
}

static void check_group(unsigned int shards)
{
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(addr);
	struct rp_test_switch sw;
	struct rp_sockaddr store;
	unsigned int hits[RP_SHARDS_MAX] = { 0 };
	int fds[RP_SHARDS_MAX];

	fds[0] = group_socket(&addr);
	cr_assert_eq(getsockname(fds[0], (struct sockaddr *)&addr, &alen), 0);
	cr_assert_eq(rp_steer_attach(fds[0], shards), 0);
	for (unsigned int i = 1; i < shards; i++)
		fds[i] = group_socket(&addr);
	memcpy(&store.ss, &addr, sizeof(addr));
	store.len = sizeof(addr);
	rp_test_switch_open(&sw, 1, &store);

	srand(shards);
	for (uint32_t n = 0; n < 400; n++) {
		struct rp_msg_view v = rp_test_msg(RP_MSG_LEASE_REQ, 1, (uint32_t)rand(), 1);
		uint8_t out[RP_DGRAM_MAX], in[RP_DGRAM_MAX];
		size_t len, got_len;
		int got;

		v.app_id = (uint8_t)(1 + n % (__RP_APP_MAX - 1));
		v.key.sport = (uint16_t)rand();
		len = rp_test_encode(out, &v);
		rp_test_send_raw(&sw, out, len);
		got = which_socket(fds, shards, in, &got_len);
		cr_assert_eq(got_len, len);
		cr_assert_eq((unsigned int)got, rp_shard_of(out, len, shards),
			     "flow %u: kernel chose socket %d, rp_shard_of says %u", n, got,
			     rp_shard_of(out, len, shards));
		hits[got]++;
	}
	for (unsigned int i = 0; i < shards; i++)
		cr_assert_gt(hits[i], 400 / shards / 2, "shard %u got only %u of 400", i,
			     hits[i]);

	/* too short to hold a key: the filter aborts and returns 0 */
	uint8_t junk[10] = { 1 }, in[RP_DGRAM_MAX];
	size_t got_len;

	rp_test_send_raw(&sw, junk, sizeof(junk));
	cr_assert_eq(which_socket(fds, shards, in, &got_len), 0);
	cr_assert_eq(rp_shard_of(junk, sizeof(junk), shards), 0);

	rp_test_switch_close(&sw);
	for (unsigned int i = 0; i < shards; i++)
		close(fds[i]);
}

Test(steer, kernel_filter_agrees_with_rp_shard_of_2)
{
	check_group(2);
}

Test(steer, kernel_filter_agrees_with_rp_shard_of_3)
{
	check_group(3);
}

Test(steer, heartbeats_all_go_to_one_shard)
{
	struct rp_msg_view a = rp_test_msg(RP_MSG_HEARTBEAT, 1, 0, 0);
	struct rp_msg_view b = rp_test_msg(RP_MSG_HEARTBEAT, 999, 0, 7);
	uint8_t ba[RP_DGRAM_MAX], bb[RP_DGRAM_MAX];
	size_t la = rp_test_encode(ba, &a), lb = rp_test_encode(bb, &b);

	for (unsigned int n = 1; n <= 8; n++)
		cr_assert_eq(rp_shard_of(ba, la, n), rp_shard_of(bb, lb, n));
}
