/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Helpers shared by the selftests: messages, a UDP switch, an rp-store. */
#ifndef __RP_TEST_H
#define __RP_TEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "redplane/addr.h"
#include "redplane/codec.h"

/* A distinct IPv4 TCP key for each n, and n back from it. */
void rp_test_key(struct rp_flow_key *k, uint32_t n);
uint32_t rp_test_flow_of(const struct rp_flow_key *k);

#define RP_TEST_FLOWS	4096	/* flows whose lease generation a test switch tracks */

/* A message of `type` from switch `sid` about flow n of the NAT app. */
struct rp_msg_view rp_test_msg(uint8_t type, uint16_t sid, uint32_t flow, uint32_t epoch);

/* Attach a state (a C string, NUL not included) or a packet to v. */
void rp_test_set_state(struct rp_msg_view *v, const char *state);
void rp_test_set_pkt(struct rp_msg_view *v, const void *pkt, uint16_t len);

/* Encodes v into buf (RP_DGRAM_MAX bytes); fails the test if invalid. */
size_t rp_test_encode(void *buf, const struct rp_msg_view *v);

/* A switch's end of the protocol: a UDP socket on 127.0.0.1. */
struct rp_test_switch {
	int fd;
	uint16_t id;
	uint32_t epoch;
	uint32_t nonce;
	uint16_t gen[RP_TEST_FLOWS];	/* from the last GRANT/MIGRATE of each flow */
	struct rp_sockaddr store;
	uint8_t rx[4096];
};

void rp_test_switch_open(struct rp_test_switch *sw, uint16_t id, const struct rp_sockaddr *store);
void rp_test_switch_close(struct rp_test_switch *sw);
void rp_test_send(struct rp_test_switch *sw, const struct rp_msg_view *v);
void rp_test_send_raw(struct rp_test_switch *sw, const void *buf, size_t len);
/* 0 and a decoded reply, or -ETIMEDOUT after timeout_ms. */
int rp_test_recv(struct rp_test_switch *sw, struct rp_msg_view *v, int timeout_ms);
/* Receives until a message of `type` arrives; fails the test otherwise. */
void rp_test_expect(struct rp_test_switch *sw, uint8_t type, struct rp_msg_view *v,
		    int timeout_ms);
/* Reads what is queued, all of `type`; returns how many. */
unsigned int rp_test_drain(struct rp_test_switch *sw, uint8_t type);
/* HEARTBEAT and its ACK; sets sw->epoch. */
void rp_test_heartbeat(struct rp_test_switch *sw);

/* The real rp-store binary on an ephemeral loopback port. */
struct rp_test_store {
	pid_t pid;
	struct rp_sockaddr addr;
	char dir[64];		/* holds the stats file and the log */
	char stats[96];
	char log[96];
};

/* Starts $RP_STORE (default build/rp-store) with args after --listen. */
void rp_test_store_start(struct rp_test_store *st, const char *const *args);
/* SIGTERM, reap; returns the exit status (-1 if it did not exit in 5 s). */
int rp_test_store_stop(struct rp_test_store *st);
bool rp_test_store_alive(struct rp_test_store *st);
/* Reads a counter after making the store rewrite its stats file. */
uint64_t rp_test_store_stat(struct rp_test_store *st, const char *name);
/* Polls a counter until it is `want` (or 3 s pass); returns the last value. */
uint64_t rp_test_store_wait_stat(struct rp_test_store *st, const char *name, uint64_t want);
const char *rp_test_store_bin(void);

/* Runs the store binary with argv to completion; stderr into err[]. */
int rp_test_run_store(const char *const *args, char *err, size_t errsz);

/*
 * Sanitizer reports of the processes this test starts from now on go to
 * dir/sanitizer.PID (ASAN_OPTIONS and UBSAN_OPTIONS log_path, added to what
 * the environment sets).  rp_test_san_reports() prints and removes those in
 * dir, and says whether there were any.
 */
void rp_test_san_log_to(const char *dir);
bool rp_test_san_reports(const char *dir);

void rp_test_sleep_ms(unsigned int ms);
uint64_t rp_test_now_ms(void);

#endif /* __RP_TEST_H */
