/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Command-line values, with the error message every tool prints alike. */
#ifndef __REDPLANE_PARSE_H
#define __REDPLANE_PARSE_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr_in;

/*
 * A decimal integer in [min, max] for option `opt` of program `prog`:
 * 0, or -EINVAL after "prog: invalid opt 's': expected an integer from
 * min to max".
 */
int rp_parse_u32(const char *prog, const char *opt, const char *s, unsigned long min,
		 unsigned long max, uint32_t *out);

/*
 * The len bytes at s as A.B.C.D:PORT, port 1-65535: 0, or -EINVAL after
 * "prog: invalid what 's': expected A.B.C.D:PORT".
 */
int rp_parse_endpoint(const char *prog, const char *what, const char *s, size_t len,
		      struct sockaddr_in *out);

#endif /* __REDPLANE_PARSE_H */
