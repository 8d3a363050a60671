/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Command-line values, with the error message every tool prints alike. */
#ifndef __REDPLANE_PARSE_H
#define __REDPLANE_PARSE_H

#include <stdint.h>

/*
 * A decimal integer in [min, max] for option `opt` of program `prog`:
 * 0, or -EINVAL after "prog: invalid opt 's': expected an integer from
 * min to max".
 */
int rp_parse_u32(const char *prog, const char *opt, const char *s, unsigned long min,
		 unsigned long max, uint32_t *out);

#endif /* __REDPLANE_PARSE_H */
