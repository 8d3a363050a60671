// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>

#include "redplane/log.h"
#include "redplane/parse.h"

int rp_parse_u32(const char *prog, const char *opt, const char *s, unsigned long min,
		 unsigned long max, uint32_t *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *s == '-' || *end || errno || v < min || v > max) {
		pr_warn("%s: invalid %s '%s': expected an integer from %lu to %lu\n", prog, opt, s,
			min, max);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}
