// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "redplane/addr.h"
#include "redplane/log.h"
#include "redplane/parse.h"
#include "redplane/store_list.h"

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

int rp_parse_endpoint(const char *prog, const char *what, const char *s, size_t len,
		      struct sockaddr_in *out)
{
	char tok[RP_ADDRSTRLEN];
	struct rp_sockaddr a;

	if (len < sizeof(tok)) {
		memcpy(tok, s, len);
		tok[len] = '\0';
		if (!rp_addr_parse(tok, &a) && a.ss.ss_family == AF_INET &&
		    ((struct sockaddr_in *)&a.ss)->sin_port) {
			memcpy(out, &a.ss, sizeof(*out));
			return 0;
		}
	}
	pr_warn("%s: invalid %s '%.*s': expected A.B.C.D:PORT\n", prog, what, (int)len, s);
	return -EINVAL;
}

/*
 * A replica in two places would make the data plane's attribution of a
 * message to its chain ambiguous.
 */
static bool listed(const struct rp_store_chain *chains, unsigned int n, const struct sockaddr_in *r)
{
	for (unsigned int i = 0; i < n; i++)
		for (unsigned int j = 0; j < chains[i].nreplicas; j++)
			if (chains[i].replicas[j].sin_addr.s_addr == r->sin_addr.s_addr &&
			    chains[i].replicas[j].sin_port == r->sin_port)
				return true;
	return false;
}

int rp_parse_store_chains(const char *prog, const char *opt, const char *list,
			  struct rp_store_chain chains[RP_MAX_STORES], unsigned int *nchains)
{
	struct rp_store_chain *c = chains;
	const char *p = list;

	memset(chains, 0, RP_MAX_STORES * sizeof(*chains));
	for (;;) {
		/* strtok() would pass over the empty element of "A,,B" */
		size_t len = strcspn(p, ",+");
		struct sockaddr_in r;

		if (!len) {
			pr_warn("%s: invalid %s '%s': a chain or a replica is empty\n", prog, opt,
				list);
			return -EINVAL;
		}
		if (c->nreplicas == RP_MAX_REPLICAS) {
			pr_warn("%s: invalid %s '%s': at most %d replicas in a chain\n", prog, opt,
				list, RP_MAX_REPLICAS);
			return -EINVAL;
		}
		if (rp_parse_endpoint(prog, "store address", p, len, &r))
			return -EINVAL;
		if (listed(chains, (unsigned int)(c - chains) + 1, &r)) {
			pr_warn("%s: invalid %s '%s': store address '%.*s' listed twice\n", prog,
				opt, list, (int)len, p);
			return -EINVAL;
		}
		c->replicas[c->nreplicas++] = r;
		p += len;
		if (!*p)
			break;
		if (*p++ == ',' && ++c == chains + RP_MAX_STORES) {
			pr_warn("%s: invalid %s '%s': at most %d store chains\n", prog, opt, list,
				RP_MAX_STORES);
			return -EINVAL;
		}
	}
	*nchains = (unsigned int)(c - chains) + 1;
	return 0;
}
