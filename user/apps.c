// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The registry of applications `rp-load --app NAME` can run (user/app.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "app.h"
#include "redplane/addr.h"
#include "redplane/log.h"
#include "redplane/parse.h"

/* Adding an application: its struct rp_app here, and in the list. */
const struct rp_app *const rp_apps[] = {
	&rp_app_nat, &rp_app_fw, &rp_app_lb, &rp_app_counter, &rp_app_sketch, NULL,
};

const struct rp_app *rp_app_find(const char *name)
{
	for (const struct rp_app *const *a = rp_apps; *a; a++)
		if (!strcmp((*a)->name, name))
			return *a;
	return NULL;
}

const struct rp_app *rp_app_by_id(unsigned int id)
{
	for (const struct rp_app *const *a = rp_apps; *a; a++)
		if ((*a)->id == id)
			return *a;
	return NULL;
}

const char *rp_app_names(void)
{
	static char names[128];
	size_t off = 0;

	if (names[0])
		return names;
	for (const struct rp_app *const *a = rp_apps; *a; a++)
		off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s",
					a == rp_apps ? "" : ", ", (*a)->name);
	return names;
}

int rp_parse_prefix(const char *opt, const char *s, struct in_addr *net, struct in_addr *mask)
{
	char buf[64], *slash;
	uint32_t len;

	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	if (!slash || (*slash = '\0', inet_pton(AF_INET, buf, net) != 1)) {
		pr_warn("rp-load: invalid %s '%s': expected A.B.C.D/LEN\n", opt, s);
		return -EINVAL;
	}
	if (rp_parse_u32("rp-load", opt, slash + 1, 0, 32, &len))
		return -EINVAL;
	mask->s_addr = len ? htonl(~0u << (32 - len)) : 0;
	net->s_addr &= mask->s_addr;
	return 0;
}

