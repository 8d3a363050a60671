// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * rp-echo: the ceiling for rp-store's throughput on this machine.  The same
 * sockets as rp-store (a SO_REUSEPORT group steered by the same filter, the
 * same batch size and buffer size), and no work: every datagram goes straight
 * back to its sender.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "redplane/addr.h"
#include "redplane/log.h"
#include "redplane/steer.h"

#define BATCH	32	/* as rp-store's RP_BATCH */
#define BUF	2048	/* as rp-store's RP_RX_BUF */

struct echo_thread {
	pthread_t tid;
	int fd;
	int stop_fd;
	unsigned long long echoed;
};

static void *echo_main(void *arg)
{
	struct echo_thread *t = arg;
	struct pollfd pfd[2] = {
		{ .fd = t->fd, .events = POLLIN },
		{ .fd = t->stop_fd, .events = POLLIN },
	};
	static __thread uint8_t bufs[BATCH][BUF];
	struct sockaddr_storage from[BATCH];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];

	for (;;) {
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		for (int round = 0; round < 16; round++) {
			int n;

			for (int i = 0; i < BATCH; i++) {
				iov[i] = (struct iovec){ .iov_base = bufs[i], .iov_len = BUF };
				msgs[i].msg_hdr = (struct msghdr){
					.msg_name = &from[i],
					.msg_namelen = sizeof(from[i]),
					.msg_iov = &iov[i],
					.msg_iovlen = 1,
				};
			}
			n = recvmmsg(t->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
			if (n <= 0)
				break;
			for (int i = 0; i < n; i++)
				iov[i].iov_len = msgs[i].msg_len;
			for (int sent = 0; sent < n;) {
				int r = sendmmsg(t->fd, msgs + sent, (unsigned int)(n - sent), 0);

				if (r < 0) {
					sent++;
					continue;
				}
				sent += r;
			}
			t->echoed += (unsigned long long)n;
			if (n < BATCH)
				break;
		}
	}
	return NULL;
}

static int open_group_socket(const struct rp_sockaddr *addr, bool reuseport)
{
	int one = 1, rcvbuf = 4 << 20, fd = socket(addr->ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&addr->ss, addr->len)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct echo_thread threads[RP_SHARDS_MAX] = { 0 };
	struct rp_sockaddr addr = { 0 };
	unsigned int nthreads = 1;
	unsigned long long total = 0;
	socklen_t alen = sizeof(addr.ss);
	char as[RP_ADDRSTRLEN];
	uint64_t one = 1;
	sigset_t sigs;
	int c, stop_fd, sig;

	while ((c = getopt_long(argc, argv, "l:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (rp_addr_parse(optarg, &addr)) {
				pr_warn("rp-echo: invalid --listen '%s'\n", optarg);
				return 2;
			}
			break;
		case 't':
			nthreads = (unsigned int)atoi(optarg);
			if (nthreads < 1 || nthreads > RP_SHARDS_MAX) {
				pr_warn("rp-echo: invalid --threads '%s'\n", optarg);
				return 2;
			}
			break;
		default:
			printf("Usage: rp-echo --listen ADDR:PORT [--threads N]\n"
			       "Echoes every UDP datagram back: the I/O ceiling for rp-store.\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (!addr.len) {
		pr_warn("rp-echo: missing --listen ADDR:PORT\n");
		return 2;
	}

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	stop_fd = eventfd(0, EFD_CLOEXEC);

	for (unsigned int i = 0; i < nthreads; i++) {
		threads[i].fd = open_group_socket(&addr, nthreads > 1);
		if (threads[i].fd < 0) {
			pr_warn("rp-echo: Couldn't bind %s: %s\n",
				rp_addr_str((struct sockaddr *)&addr.ss, as, sizeof(as)),
				strerror(-threads[i].fd));
			return 1;
		}
		if (i == 0) {
			getsockname(threads[0].fd, (struct sockaddr *)&addr.ss, &alen);
			if (nthreads > 1 && rp_steer_attach(threads[0].fd, nthreads)) {
				pr_warn("rp-echo: Couldn't attach the steering filter\n");
				return 1;
			}
		}
		threads[i].stop_fd = stop_fd;
	}
	for (unsigned int i = 0; i < nthreads; i++)
		pthread_create(&threads[i].tid, NULL, echo_main, &threads[i]);
	printf("rp-echo: listening on %s (%u thread%s)\n",
	       rp_addr_str((struct sockaddr *)&addr.ss, as, sizeof(as)), nthreads,
	       nthreads == 1 ? "" : "s");
	fflush(stdout);

	do
		sig = sigwaitinfo(&sigs, NULL);
	while (sig < 0);
	if (write(stop_fd, &one, sizeof(one)) < 0)
		return 1;
	for (unsigned int i = 0; i < nthreads; i++) {
		pthread_join(threads[i].tid, NULL);
		total += threads[i].echoed;
		close(threads[i].fd);
	}
	fprintf(stderr, "rp-echo: echoed %llu datagrams\n", total);
	return 0;
}
