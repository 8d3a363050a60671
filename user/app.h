/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * rp-load's application registry: what `--app NAME` picks.  An application
 * is its program (bpf/app_NAME.h, at its app id's slot of the program
 * array), its state (include/redplane/NAME.h) and one of these, listed in
 * user/apps.c.  docs/APPS.md walks through writing one.
 */
#ifndef __RP_APP_USER_H
#define __RP_APP_USER_H

#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "redplane/dp.h"
#include "redplane/timeout.h"

struct rp_load_cfg;
struct redplane;
struct bpf_program;

/* What the sweep knows of a flow's connection (user/expiry.c). */
struct rp_conn_idle {
	int timeout;			/* enum rp_timeout, or RP_TO_NEVER */
	uint64_t seen_ns;		/* its last packet here, either direction */
	/*
	 * A key that must be gone from the store before this one may go (a
	 * translation's reverse key waits for its forward key, so that a NAT
	 * port or an LB choice is free only when no packet can use it);
	 * family 0: none.
	 */
	struct rp_flow_key wait_for;
};

/* Another flow of the map, copied under its lock: true if there is one. */
typedef bool (*rp_flow_lookup_fn)(void *ctx, const struct rp_flow_key *k, struct rp_dp_flow *f);

/* Option values of app `id`: past every short option, one range per app. */
#define RP_APP_OPT(id, n)	(0x100 * (id) + (n))
#define RP_APP_OF_OPT(val)	((val) / 0x100)

/* Consistency modes (rp-load --mode) */
#define RP_MODE_LINEARIZABLE	0x1
#define RP_MODE_BOUNDED		0x2

struct rp_app {
	const char *name;		/* --app NAME */
	uint8_t id;			/* RP_APP_*: its program's slot; its flows' namespace */
	unsigned int modes;		/* RP_MODE_*: the modes it runs in */
	bool bounded_default;		/* without --mode */
	const char *mode_why;		/* why it does not run in the other mode */
	const char *summary;		/* one line for --help */
	const char *usage;		/* its options, for --help */
	const struct option *options;	/* its long options, vals RP_APP_OPT(id, n) */
	/* one of its options: 0, or -EINVAL after saying why */
	int (*parse)(struct rp_load_cfg *cfg, int opt, const char *arg);
	/* after the command line: what it needs is there (0 or -EINVAL) */
	int (*check)(struct rp_load_cfg *cfg);
	/* its load-time settings into the skeleton's rodata, before the load */
	void (*configure)(struct redplane *skel, const struct rp_load_cfg *cfg);
	struct bpf_program *(*program)(struct redplane *skel);
	/* for --status: a flow whose connection is closing (optional) */
	bool (*closing)(const struct rp_dp_flow *f);
	/* for --status: what else it reports, from its pins under RP_PIN_ROOT/ifname (optional) */
	void (*status)(const char *ifname);
	/*
	 * The idleness of a held flow (k, f): its timeout from the phase its
	 * state and the TCP flags seen give, in *c (docs/DATAPLANE.md,
	 * "Expiry").  lookup reads the connection's other key, if any.
	 */
	void (*idle)(const struct rp_flow_key *k, const struct rp_dp_flow *f,
		     rp_flow_lookup_fn lookup, void *ctx, struct rp_conn_idle *c);
	/*
	 * State of its own that outlives a restart, in a file of its own
	 * under cfg->state_dir (optional): started() restores it once the
	 * skeleton is loaded, before any packet (0, or a negative errno that
	 * stops rp-load: a missing or unreadable file is only a warning);
	 * save() writes it every RP_APP_SAVE_MS and at exit.
	 */
	int (*started)(struct redplane *skel, const struct rp_load_cfg *cfg);
	void (*save)(struct redplane *skel, const struct rp_load_cfg *cfg);
};

/* How often rp-load calls an app's save(), ms: what a crash may lose of it. */
#define RP_APP_SAVE_MS		5000

/*
 * The NAT's and the LB's idleness: a connection of two keys, other_key()
 * giving one from the other and its state; the reverse key waits for the
 * forward key.
 */
void rp_xlate_idle(const struct rp_flow_key *k, const struct rp_dp_flow *f,
		   rp_flow_lookup_fn lookup, void *ctx, struct rp_conn_idle *c,
		   void (*other_key)(const struct rp_flow_key *k, const struct rp_dp_flow *f,
				     struct rp_flow_key *o));

extern const struct rp_app rp_app_nat, rp_app_fw, rp_app_lb, rp_app_counter, rp_app_sketch;

/* NULL if no application has that name, or that id. */
const struct rp_app *rp_app_find(const char *name);
const struct rp_app *rp_app_by_id(unsigned int id);
/* Every application, NULL-terminated. */
extern const struct rp_app *const rp_apps[];
/* "nat, fw, lb" */
const char *rp_app_names(void);

/* A.B.C.D/LEN for option `opt`: 0, or -EINVAL after saying why. */
int rp_parse_prefix(const char *opt, const char *s, struct in_addr *net, struct in_addr *mask);

/* The applications' settings, in struct rp_load_cfg. */
struct rp_sketch_cfg {
	uint32_t id;			/* --sketch-id */
	uint64_t threshold;		/* --sketch-threshold, packets */
};

struct rp_nat_cfg {
	bool have_int, have_ext;
	struct in_addr int_net, int_mask, ext;
	uint16_t port_lo, port_hi;
	uint16_t switches;		/* switches sharing the external address */
};

struct rp_fw_cfg {
	bool have_int;
	struct in_addr int_net, int_mask;
	uint32_t udp_idle_ms;
	unsigned int nrules;
	uint64_t allow_tcp[RP_FW_PORT_WORDS];	/* one bit per port */
	uint64_t allow_udp[RP_FW_PORT_WORDS];
};

struct rp_lb_cfg {
	bool have_vip;
	struct sockaddr_in vip;
	unsigned int nbackends;		/* chosen from */
	unsigned int ndrain;		/* recognised, never chosen */
	struct sockaddr_in backends[RP_LB_MAX_BACKENDS];
	struct sockaddr_in drain[RP_LB_MAX_BACKENDS];
};

/* app_fw.c: rules "tcp:22,udp:53,tcp:8000-8080" into cfg (where: for messages). */
int rp_fw_parse_rules(struct rp_fw_cfg *cfg, const char *where, const char *list);
int rp_fw_read_rules(struct rp_fw_cfg *cfg, const char *path);

#endif /* __RP_APP_USER_H */
