/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef __REDPLANE_ADDR_H
#define __REDPLANE_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

struct rp_sockaddr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/*
 * Parses "A.B.C.D:PORT" or "[IPV6]:PORT" (numeric only, port 0-65535).
 * Returns 0 or -EINVAL.
 */
int rp_addr_parse(const char *s, struct rp_sockaddr *out);

/* "A.B.C.D:PORT" / "[IPV6]:PORT" into buf; returns buf. */
char *rp_addr_str(const struct sockaddr *sa, char *buf, size_t size);

#define RP_ADDRSTRLEN 56

#endif /* __REDPLANE_ADDR_H */
