// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* rp-load's side of the stateful firewall (bpf/app_fw.h): its options and rules. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include "agent.h"
#include "redplane/log.h"
#include "redplane/parse.h"
#include "redplane.skel.h"

enum {
	OPT_FW_INT = RP_APP_OPT(RP_APP_FW, 0),
	OPT_FW_ALLOW,
	OPT_FW_RULES,
	OPT_FW_UDP_IDLE,
};

static const struct option fw_options[] = {
	{ "fw-int", required_argument, NULL, OPT_FW_INT },
	{ "fw-allow", required_argument, NULL, OPT_FW_ALLOW },
	{ "fw-rules", required_argument, NULL, OPT_FW_RULES },
	{ "fw-udp-idle-ms", required_argument, NULL, OPT_FW_UDP_IDLE },
	{ NULL, 0, NULL, 0 },
};

static const char rule_syntax[] = "expected tcp:PORT, udp:PORT or PROTO:LO-HI, ports 1-65535";

/* A port: digits only, 1-65535. */
static int parse_port(const char *s, size_t len, uint32_t *port)
{
	uint32_t v = 0;

	if (!len || len > 5)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -EINVAL;
	*port = v;
	return 0;
}

/* One rule, the `len` bytes at s: tcp:22, udp:53, tcp:8000-8080. */
static int parse_rule(struct rp_fw_cfg *cfg, const char *s, size_t len)
{
	const char *colon = memchr(s, ':', len), *dash;
	uint64_t *bits;
	uint32_t lo, hi;

	if (!colon)
		return -EINVAL;
	if (colon - s == 3 && !strncmp(s, "tcp", 3))
		bits = cfg->allow_tcp;
	else if (colon - s == 3 && !strncmp(s, "udp", 3))
		bits = cfg->allow_udp;
	else
		return -EINVAL;
	colon++;
	len -= (size_t)(colon - s);
	dash = memchr(colon, '-', len);
	if (dash) {
		if (parse_port(colon, (size_t)(dash - colon), &lo) ||
		    parse_port(dash + 1, len - (size_t)(dash - colon) - 1, &hi) || lo > hi)
			return -EINVAL;
	} else {
		if (parse_port(colon, len, &lo))
			return -EINVAL;
		hi = lo;
	}
	for (uint32_t p = lo; p <= hi; p++)
		bits[p / 64] |= 1ull << (p % 64);
	cfg->nrules++;
	return 0;
}

int rp_fw_parse_rules(struct rp_fw_cfg *cfg, const char *where, const char *list)
{
	const char *p = list;

	for (;;) {
		size_t len;

		p += strspn(p, " \t");
		len = strcspn(p, ",");
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (!len) {
			pr_warn("rp-load: %s: an empty rule in '%s'\n", where, list);
			return -EINVAL;
		}
		if (parse_rule(cfg, p, len)) {
			pr_warn("rp-load: %s: invalid rule '%.*s': %s\n", where, (int)len, p,
				rule_syntax);
			return -EINVAL;
		}
		p += strcspn(p, ",");
		if (!*p++)
			return 0;
	}
}

int rp_fw_read_rules(struct rp_fw_cfg *cfg, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512], where[PATH_MAX + 16];
	unsigned int n = 0;
	int err = 0;

	if (!f) {
		err = -errno;
		pr_warn("rp-load: Couldn't open --fw-rules '%s': %s\n", path, strerror(-err));
		return err;
	}
	while (!err && fgets(line, sizeof(line), f)) {
		char *hash = strchr(line, '#'), *end;

		n++;
		if (!strchr(line, '\n') && !feof(f)) {
			pr_warn("rp-load: %s:%u: line too long\n", path, n);
			err = -EINVAL;
			break;
		}
		if (hash)
			*hash = '\0';
		end = line + strlen(line);
		while (end > line && strchr(" \t\r\n", end[-1]))
			*--end = '\0';
		if (!line[strspn(line, " \t")])
			continue;	/* blank, or a comment */
		snprintf(where, sizeof(where), "%s:%u", path, n);
		err = rp_fw_parse_rules(cfg, where, line);
	}
	fclose(f);
	return err;
}

static int fw_parse(struct rp_load_cfg *cfg, int opt, const char *arg)
{
	struct rp_fw_cfg *fw = &cfg->fw;

	switch (opt) {
	case OPT_FW_INT:
		fw->have_int = true;
		return rp_parse_prefix("--fw-int", arg, &fw->int_net, &fw->int_mask);
	case OPT_FW_ALLOW:
		return rp_fw_parse_rules(fw, "--fw-allow", arg);
	case OPT_FW_RULES:
		return rp_fw_read_rules(fw, arg);
	case OPT_FW_UDP_IDLE:
		return rp_parse_u32("rp-load", "--fw-udp-idle-ms", arg, 100, 86400000,
				    &fw->udp_idle_ms);
	}
	return -EINVAL;
}

static int fw_check(struct rp_load_cfg *cfg)
{
	if (!cfg->fw.udp_idle_ms)
		cfg->fw.udp_idle_ms = 30000;
	if (!cfg->fw.have_int) {
		pr_warn("rp-load: --app fw needs --fw-int\n");
		return -EINVAL;
	}
	return 0;
}

static void fw_configure(struct redplane *skel, const struct rp_load_cfg *cfg)
{
	const struct rp_fw_cfg *fw = &cfg->fw;

	skel->rodata->cfg_fw_int_net = fw->int_net.s_addr;
	skel->rodata->cfg_fw_int_mask = fw->int_mask.s_addr;
	skel->rodata->cfg_fw_udp_idle_ns = fw->udp_idle_ms * 1000000ull;
	memcpy((void *)skel->rodata->cfg_fw_allow_tcp, fw->allow_tcp, sizeof(fw->allow_tcp));
	memcpy((void *)skel->rodata->cfg_fw_allow_udp, fw->allow_udp, sizeof(fw->allow_udp));
}

static struct bpf_program *fw_program(struct redplane *skel)
{
	return skel->progs.rp_app_fw;
}

static bool fw_closing(const struct rp_dp_flow *f)
{
	const struct rp_fw_state *s = (const struct rp_fw_state *)f->state;

	return f->state_len == sizeof(*s) && (s->phase == RP_FW_CLOSED || s->fin);
}

/*
 * The firewall keeps the phase itself, replicated (one key for both
 * directions): as flags each side sent, for the shared phase rule.
 */
static void fw_idle(const struct rp_flow_key *k, const struct rp_dp_flow *f,
		    rp_flow_lookup_fn lookup, void *ctx, struct rp_conn_idle *c)
{
	const struct rp_fw_state *s = (const struct rp_fw_state *)f->state;
	bool opener_out = s->origin == RP_FW_OUT;
	uint8_t opener = TH_SYN, other = 0;

	(void)lookup;	/* one key per connection */
	(void)ctx;
	c->seen_ns = f->seen_ns;
	if (f->state_len != sizeof(*s) || s->phase == RP_FW_UDP) {
		c->timeout = rp_udp_timeout(k->proto, false);
		return;
	}
	if (s->phase == RP_FW_ESTABLISHED) {
		opener |= TH_ACK;
		other |= TH_SYN | TH_ACK;
	} else if (s->phase == RP_FW_CLOSED) {
		opener |= TH_RST;
	}
	if (s->fin & (opener_out ? RP_FW_FIN_OUT : RP_FW_FIN_IN))
		opener |= TH_FIN;
	if (s->fin & (opener_out ? RP_FW_FIN_IN : RP_FW_FIN_OUT))
		other |= TH_FIN;
	c->timeout = rp_tcp_timeout(opener, other);
}

const struct rp_app rp_app_fw = {
	.name = "fw",
	.id = RP_APP_FW,
	.modes = RP_MODE_LINEARIZABLE,
	.mode_why = "its state decides which packets pass, and a packet must never leave on a state the store could lose",
	.summary = "stateful firewall: the inside opens connections, rules open ports",
	.usage = "      --fw-int PREFIX      the inside prefix: its connections pass, with their\n"
		 "                           replies (A.B.C.D/LEN)\n"
		 "      --fw-allow RULES     ports open to connections from the outside:\n"
		 "                           tcp:22,udp:53,tcp:8000-8080 (may be repeated)\n"
		 "      --fw-rules FILE      the same, one or more rules a line, # comments\n"
		 "      --fw-udp-idle-ms MS  a UDP flow with no datagram for this long closes\n"
		 "                           (to 1.25 times it; default 30000)\n",
	.options = fw_options,
	.parse = fw_parse,
	.check = fw_check,
	.configure = fw_configure,
	.program = fw_program,
	.closing = fw_closing,
	.idle = fw_idle,
};
