// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The P4 program's protocol declarations (p4-tofino/include/redplane.p4)
 * against the C wire protocol (include/redplane/proto.h), field by field:
 * order, widths and names of every header, and the value of every constant,
 * so that the two cannot drift.  The P4 file is parsed here; the C side is
 * what the compiler says (offsetof, sizeof, the enums).
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "redplane/dp.h"
#include "redplane/proto.h"

#define P4_FILE		"p4-tofino/include/redplane.p4"
#define MAX_FIELDS	16
#define MAX_CONSTS	128

struct p4_field {
	char name[32];
	unsigned int bits;
};

struct p4_header {
	char name[32];
	unsigned int n;
	struct p4_field f[MAX_FIELDS];
};

struct p4_const {
	char name[40];
	unsigned int bits;
	unsigned long long value;
};

struct p4_file {
	unsigned int nheaders, nconsts;
	struct p4_header h[16];
	struct p4_const c[MAX_CONSTS];
};

/* The file without comments, read from the source tree (RP_SRC or the cwd). */
static char *read_p4(void)
{
	const char *src = getenv("RP_SRC");
	char path[512], *buf, *out;
	size_t n, o = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s%s" P4_FILE, src ? src : "", src ? "/" : "");
	f = fopen(path, "r");
	cr_assert_not_null(f, "read %s (run from the repository, or set RP_SRC)", path);
	buf = calloc(1, 1 << 16);
	out = calloc(1, 1 << 16);
	n = fread(buf, 1, (1 << 16) - 1, f);
	fclose(f);
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '/' && buf[i + 1] == '*') {
			char *end = strstr(buf + i + 2, "*/");

			cr_assert_not_null(end, "unterminated comment in " P4_FILE);
			i = (size_t)(end - buf) + 1;
			out[o++] = ' ';
		} else if (buf[i] == '/' && buf[i + 1] == '/') {
			while (i < n && buf[i] != '\n')
				i++;
			out[o++] = '\n';
		} else {
			out[o++] = buf[i];
		}
	}
	free(buf);
	return out;
}

static void parse_p4(struct p4_file *p)
{
	char *text = read_p4(), *s = text;

	memset(p, 0, sizeof(*p));
	while (*s) {
		struct p4_const *c = &p->c[p->nconsts];
		struct p4_header *h = &p->h[p->nheaders];
		int used = 0;

		while (isspace((unsigned char)*s))
			s++;
		if (sscanf(s, "const bit<%u> %39[A-Za-z0-9_] = %lli ;%n", &c->bits, c->name,
			   (long long *)&c->value, &used) == 3 && used) {
			cr_assert_lt(p->nconsts + 1, MAX_CONSTS);
			p->nconsts++;
			s += used;
			continue;
		}
		if (sscanf(s, "header %31[A-Za-z0-9_] {%n", h->name, &used) == 1 && used) {
			s += used;
			for (;;) {
				struct p4_field *f = &h->f[h->n];

				while (isspace((unsigned char)*s))
					s++;
				if (*s == '}') {
					s++;
					break;
				}
				cr_assert_eq(sscanf(s, "bit<%u> %31[A-Za-z0-9_] ;%n", &f->bits, f->name,
						    &used), 2, "header %s: cannot read '%.40s'",
					     h->name, s);
				cr_assert_lt(h->n + 1, MAX_FIELDS);
				h->n++;
				s += used;
			}
			p->nheaders++;
			continue;
		}
		/* anything else (#ifndef, #define, #endif): the rest of the line */
		s += strcspn(s, "\n");
	}
	free(text);
}

static const struct p4_header *header(const struct p4_file *p, const char *name)
{
	for (unsigned int i = 0; i < p->nheaders; i++)
		if (!strcmp(p->h[i].name, name))
			return &p->h[i];
	cr_assert_fail("no header %s in " P4_FILE, name);
	return NULL;
}

struct c_field {
	const char *name;	/* the P4 name */
	size_t off, size;	/* bytes */
};

#define F(type, field) { #field, offsetof(type, field), sizeof(((type *)0)->field) }

/*
 * Fields in order, each at the offset the P4 widths before it add up to:
 * NULL, or what differs (in buf).
 */
static const char *layout_error(const struct p4_header *h, const struct c_field *c, size_t n,
				size_t total, char *buf, size_t size)
{
	size_t bits = 0;

	if (h->n != n) {
		snprintf(buf, size, "%s has %u fields, the C struct %zu", h->name, h->n, n);
		return buf;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(h->f[i].name, c[i].name)) {
			snprintf(buf, size, "%s field %zu is %s, in C %s", h->name, i, h->f[i].name,
				 c[i].name);
			return buf;
		}
		if (bits != c[i].off * 8 || h->f[i].bits != c[i].size * 8) {
			snprintf(buf, size, "%s.%s: bit %zu, %u bits; in C byte %zu, %zu bytes",
				 h->name, c[i].name, bits, h->f[i].bits, c[i].off, c[i].size);
			return buf;
		}
		bits += h->f[i].bits;
	}
	if (bits != total * 8) {
		snprintf(buf, size, "%s is %zu bits, the C struct %zu bytes", h->name, bits, total);
		return buf;
	}
	return NULL;
}

static void expect_layout(const struct p4_file *p, const char *hname, const struct c_field *c,
			  size_t n, size_t total)
{
	char buf[256];
	const char *err = layout_error(header(p, hname), c, n, total, buf, sizeof(buf));

	cr_assert_null(err, "%s", err);
}

Test(p4, the_message_header_matches_rp_hdr)
{
	/* `type` is a P4 keyword: the P4 field is msg_type */
	static const struct c_field c[] = {
		F(struct rp_hdr, version), { "msg_type", offsetof(struct rp_hdr, type), 1 },
		F(struct rp_hdr, app_id), F(struct rp_hdr, flags), F(struct rp_hdr, switch_id),
		F(struct rp_hdr, reason), F(struct rp_hdr, state_len), F(struct rp_hdr, seq),
		F(struct rp_hdr, epoch), F(struct rp_hdr, lease_ms), F(struct rp_hdr, pkt_len),
		F(struct rp_hdr, gen),
	};
	struct p4_file p;

	parse_p4(&p);
	expect_layout(&p, "rp_hdr_h", c, sizeof(c) / sizeof(c[0]), sizeof(struct rp_hdr));
}

static const struct c_field key_fields[] = {
	F(struct rp_flow_key, family), F(struct rp_flow_key, proto),
	F(struct rp_flow_key, sport), F(struct rp_flow_key, dport),
	F(struct rp_flow_key, pad), F(struct rp_flow_key, saddr),
	F(struct rp_flow_key, daddr),
};
#define NKEY	(sizeof(key_fields) / sizeof(key_fields[0]))

Test(p4, the_flow_key_matches_rp_flow_key)
{
	struct p4_file p;

	parse_p4(&p);
	expect_layout(&p, "rp_key_h", key_fields, NKEY, sizeof(struct rp_flow_key));
	/* and the message is header, key, state, in this order and size */
	cr_assert_eq(offsetof(struct rp_msg, key), sizeof(struct rp_hdr));
	cr_assert_eq(offsetof(struct rp_msg, state), sizeof(struct rp_hdr) + sizeof(struct rp_flow_key));
}

Test(p4, the_state_overlays_match_the_nat_state_and_the_head_hint)
{
	static const struct c_field nat[] = {
		F(struct rp_nat_state, addr), F(struct rp_nat_state, port),
		F(struct rp_nat_state, dir), F(struct rp_nat_state, closing),
		{ "rest", sizeof(struct rp_nat_state), RP_STATE_MAX - sizeof(struct rp_nat_state) },
	};
	static const struct c_field hint[] = {
		F(struct rp_head_hint, addr), F(struct rp_head_hint, port),
		F(struct rp_head_hint, pad), F(struct rp_head_hint, version),
		{ "rest", sizeof(struct rp_head_hint), RP_STATE_MAX - sizeof(struct rp_head_hint) },
	};
	struct p4_file p;

	parse_p4(&p);
	/* each fills the message's 64-byte state */
	expect_layout(&p, "rp_nat_state_h", nat, 5, RP_STATE_MAX);
	expect_layout(&p, "rp_head_hint_h", hint, 5, RP_STATE_MAX);
}

struct c_const {
	const char *name;
	unsigned long long value;
	unsigned int bits;	/* the width the C field it goes in has */
};

#define C8(n) { #n, n, 8 }
#define C16(n) { #n, n, 16 }

static const struct c_const consts[] = {
	C8(RP_VERSION), C16(RP_DEFAULT_PORT), C8(RP_STATE_MAX), C16(RP_PKT_MAX),
	C16(RP_MSG_LEN), C16(RP_DGRAM_MAX),
	C8(RP_MSG_LEASE_REQ), C8(RP_MSG_GRANT), C8(RP_MSG_MIGRATE), C8(RP_MSG_HEARTBEAT),
	C8(RP_MSG_HEARTBEAT_ACK), C8(RP_MSG_WRITE), C8(RP_MSG_SNAPSHOT), C8(RP_MSG_ACK),
	C8(RP_MSG_REVOKE), C8(RP_MSG_REVOKE_ACK), C8(RP_MSG_REJECT), C8(RP_MSG_EXPIRE),
	C8(RP_MSG_EXPIRE_ACK),
	C8(RP_APP_NONE), C8(RP_APP_NAT), C8(RP_APP_FW), C8(RP_APP_LB), C8(RP_APP_COUNTER),
	C8(RP_APP_SKETCH),
	C8(RP_F_STATE), C8(RP_F_PKT), C8(RP_F_ALL), C16(RP_HB_LAPSED),
	C8(RP_REJ_NONE), C8(RP_REJ_NO_SESSION), C8(RP_REJ_NOT_OWNER), C8(RP_REJ_STALE),
	C8(RP_REJ_BUSY), C8(RP_REJ_QUEUE_FULL), C8(RP_REJ_TIMEOUT), C8(RP_REJ_TABLE_FULL),
	C8(RP_REJ_NO_FLOW), C8(RP_REJ_CONFLICT), C8(RP_REJ_NOT_HEAD),
	C8(RP_AF_INET), C8(RP_AF_INET6),
	C8(RP_NAT_FWD), C8(RP_NAT_REV), C8(RP_NAT_FIN), C8(RP_NAT_RST),
};

/* Enumerations: as many P4 constants with the prefix as the C enum has values. */
static unsigned int count_prefix(const struct p4_file *p, const char *prefix)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < p->nconsts; i++)
		n += !strncmp(p->c[i].name, prefix, strlen(prefix));
	return n;
}

Test(p4, every_constant_has_the_c_value_and_width)
{
	size_t nc = sizeof(consts) / sizeof(consts[0]);
	struct p4_file p;

	parse_p4(&p);
	for (size_t i = 0; i < nc; i++) {
		unsigned int j;

		for (j = 0; j < p.nconsts && strcmp(p.c[j].name, consts[i].name); j++)
			;
		cr_assert_lt(j, p.nconsts, "%s is not declared in " P4_FILE, consts[i].name);
		cr_assert_eq(p.c[j].value, consts[i].value, "%s is %llu in P4, %llu in C",
			     consts[i].name, p.c[j].value, consts[i].value);
		cr_assert_eq(p.c[j].bits, consts[i].bits, "%s is bit<%u>, its C field %u bits",
			     consts[i].name, p.c[j].bits, consts[i].bits);
	}
	/* nothing in P4 that C lacks: a new constant is added to both */
	for (unsigned int j = 0; j < p.nconsts; j++) {
		size_t i;

		for (i = 0; i < nc && strcmp(p.c[j].name, consts[i].name); i++)
			;
		cr_assert_lt(i, nc, "%s is in " P4_FILE " but not checked against C", p.c[j].name);
	}
	/* a value added to a C enum must be added to P4 (and to the table above) */
	/* RP_MSG_LEN, a size, shares the message types' prefix */
	cr_assert_eq(count_prefix(&p, "RP_MSG_") - 1, __RP_MSG_MAX - 1);
	cr_assert_eq(count_prefix(&p, "RP_APP_"), __RP_APP_MAX);
	cr_assert_eq(count_prefix(&p, "RP_REJ_"), __RP_REJ_MAX);
}

/* The checker itself: a drifted copy of a header must fail it, whichever way. */
Test(p4, the_checker_catches_a_drifted_header)
{
	struct p4_header h;
	struct p4_field t;
	struct p4_file p;
	char buf[256];

	parse_p4(&p);
	h = *header(&p, "rp_key_h");
	cr_assert_null(layout_error(&h, key_fields, NKEY, sizeof(struct rp_flow_key), buf, sizeof(buf)));
	/* two fields of one width swapped: sizes still add up, the order does not */
	t = h.f[2];
	h.f[2] = h.f[3];
	h.f[3] = t;
	cr_assert_not_null(layout_error(&h, key_fields, NKEY, sizeof(struct rp_flow_key), buf, sizeof(buf)));
	/* a field narrowed and the next widened: the total stays, offsets move */
	h = *header(&p, "rp_key_h");
	h.f[2].bits -= 8;
	h.f[3].bits += 8;
	cr_assert_not_null(layout_error(&h, key_fields, NKEY, sizeof(struct rp_flow_key), buf, sizeof(buf)));
	/* a field dropped */
	h = *header(&p, "rp_key_h");
	h.n--;
	cr_assert_not_null(layout_error(&h, key_fields, NKEY, sizeof(struct rp_flow_key), buf, sizeof(buf)));
}

/*
 * What needs no Tofino SDE: the Python control plane and PTF tests compile,
 * and the P4 files include only p4-tofino/include/ and declare each header
 * once (p4-tofino/build.sh --check, tools/check_p4.py).
 */
Test(p4, the_program_passes_the_checks_that_need_no_sde)
{
	const char *src = getenv("RP_SRC");
	char cmd[600], out[4096] = "";
	size_t n = 0;
	FILE *p;
	int rc;

	snprintf(cmd, sizeof(cmd), "bash %s%sp4-tofino/build.sh --check 2>&1",
		 src ? src : "", src ? "/" : "");
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	while (n < sizeof(out) - 1 && fgets(out + n, (int)(sizeof(out) - n), p))
		n = strlen(out);
	rc = pclose(p);
	cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "p4-tofino/build.sh --check failed:\n%s",
		  out);
}
