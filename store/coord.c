// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Chain membership through ZooKeeper (docs/CHAIN.md).
 *
 *   /redplane/<chain>/live/<id>   ephemeral, one per running replica:
 *                                 "<incarnation> <client addr> <peer addr>"
 *   /redplane/<chain>/config      the chain, head first, one member per line:
 *                                 "<id> <incarnation> <client addr> <peer addr>"
 *
 * ZooKeeper is the one authority: a replica's live node lasts as long as
 * its ZooKeeper session, and the configuration changes only by a
 * conditional write (zoo_set with the version read), so two replicas that
 * disagree cannot both change it.  Every replica runs the same rule: keep
 * the configured members that are still live, in order, and append the
 * live replicas that are not members yet (a joining replica becomes the
 * tail).  A replica acts only on a configuration it is a member of, and
 * stops serving (fenced) when it has lost touch with ZooKeeper for half
 * the failure timeout, before its session can expire and the others move on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#define THREADED	/* the synchronous API of libzookeeper_mt */
#include <zookeeper/zookeeper.h>

#include "redplane/log.h"
#include "store.h"

#define ZK_DATA_MAX	4096
#define COORD_POLL_MS	50

static struct {
	struct rp_chain *ch;
	pthread_t tid;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	unsigned int events;
	zhandle_t *zh;
} co = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)zh, (void)type, (void)state, (void)path, (void)ctx;
	pthread_mutex_lock(&co.lock);
	co.events++;
	pthread_cond_signal(&co.cond);
	pthread_mutex_unlock(&co.lock);
}

/* Sleeps until a watch fires, the stop, or ms pass; false when stopping. */
static bool coord_wait(unsigned int seen, unsigned int ms)
{
	struct timespec until;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	until.tv_sec += ms / 1000 + until.tv_nsec / 1000000000;
	until.tv_nsec %= 1000000000;
	pthread_mutex_lock(&co.lock);
	while (!co.stop && co.events == seen)
		if (pthread_cond_timedwait(&co.cond, &co.lock, &until) == ETIMEDOUT)
			break;
	stop = co.stop;
	pthread_mutex_unlock(&co.lock);
	return !stop;
}

static unsigned int coord_events(void)
{
	unsigned int n;

	pthread_mutex_lock(&co.lock);
	n = co.events;
	pthread_mutex_unlock(&co.lock);
	return n;
}

static void publish(const struct rp_chain_conf *conf)
{
	struct rp_chain *ch = co.ch;
	uint64_t one = 1;

	pthread_mutex_lock(&ch->lock);
	if (!memcmp(&ch->conf, conf, sizeof(*conf))) {
		pthread_mutex_unlock(&ch->lock);
		return;
	}
	ch->conf = *conf;
	atomic_fetch_add(&ch->gen, 1);
	pthread_mutex_unlock(&ch->lock);
	for (unsigned int i = 0; i < ch->shards; i++)
		if (write(ch->wake_fd[i], &one, sizeof(one)) < 0)
			pr_warn("rp-store: Couldn't wake shard %u: %s\n", i, strerror(errno));
}

static void path_of(char *buf, size_t size, const char *leaf)
{
	snprintf(buf, size, "/redplane/%s%s%s", co.ch->name, leaf[0] ? "/" : "", leaf);
}

static char *addr_text(const struct sockaddr_in *a, char *buf, size_t size)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	snprintf(buf, size, "%s:%u", ip, ntohs(a->sin_port));
	return buf;
}

static int addr_scan(const char *s, struct sockaddr_in *a)
{
	char ip[INET_ADDRSTRLEN];
	unsigned int port;

	if (sscanf(s, "%15[0-9.]:%u", ip, &port) != 2 || port > 65535)
		return -EINVAL;
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, ip, &a->sin_addr) == 1 ? 0 : -EINVAL;
}

static int member_scan(const char *line, bool with_id, struct rp_chain_member *m)
{
	char client[32], peer[32];
	unsigned int id = 0;
	uint64_t inc;
	int n = with_id ? sscanf(line, "%u %" SCNu64 " %31s %31s", &id, &inc, client, peer)
			: sscanf(line, "%" SCNu64 " %31s %31s", &inc, client, peer);

	if (n != (with_id ? 4 : 3))
		return -EINVAL;
	m->id = id;
	m->inc = inc;
	return addr_scan(client, &m->client) || addr_scan(peer, &m->peer) ? -EINVAL : 0;
}

static int member_print(char *buf, size_t size, const struct rp_chain_member *m, bool with_id)
{
	char client[32], peer[32];

	addr_text(&m->client, client, sizeof(client));
	addr_text(&m->peer, peer, sizeof(peer));
	if (with_id)
		return snprintf(buf, size, "%u %" PRIu64 " %s %s\n", m->id, m->inc, client, peer);
	return snprintf(buf, size, "%" PRIu64 " %s %s", m->inc, client, peer);
}

static void ensure_node(const char *path)
{
	int rc = zoo_create(co.zh, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);

	if (rc != ZOK && rc != ZNODEEXISTS)
		pr_debug("rp-store: ZooKeeper create %s: %s\n", path, zerror(rc));
}

/* This replica's live node; false while an earlier incarnation's remains. */
static bool register_self(bool *told)
{
	char path[256], data[128], have[128];
	int len = sizeof(have) - 1, rc;
	struct rp_chain_member m;

	ensure_node("/redplane");
	path_of(path, sizeof(path), "");
	ensure_node(path);
	path_of(path, sizeof(path), "live");
	ensure_node(path);
	path_of(path, sizeof(path), "config");
	ensure_node(path);

	member_print(data, sizeof(data), &co.ch->self, false);
	snprintf(path, sizeof(path), "/redplane/%s/live/%u", co.ch->name, co.ch->self.id);
	rc = zoo_create(co.zh, path, data, (int)strlen(data), &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL,
			NULL, 0);
	if (rc == ZOK)
		return true;
	if (rc != ZNODEEXISTS)
		return false;
	rc = zoo_get(co.zh, path, 0, have, &len, NULL);
	if (rc == ZOK && len >= 0) {
		have[len] = 0;
		if (!member_scan(have, false, &m) && m.inc == co.ch->self.inc)
			return true;	/* ours, from before a reconnect */
	}
	if (!*told) {
		pr_info("rp-store: replica %u of chain '%s' is still registered by an earlier run: waiting for its ZooKeeper session to expire\n",
			co.ch->self.id, co.ch->name);
		*told = true;
	}
	return false;
}

static int read_config(struct rp_chain_conf *conf, int *zk_version)
{
	char path[256], *data, *line, *save = NULL;
	int len = ZK_DATA_MAX - 1, rc;
	struct Stat st;

	data = malloc(ZK_DATA_MAX);
	if (!data)
		return ZSYSTEMERROR;
	path_of(path, sizeof(path), "config");
	rc = zoo_get(co.zh, path, 1, data, &len, &st);
	if (rc != ZOK) {
		free(data);
		return rc;
	}
	data[len > 0 ? len : 0] = 0;
	memset(conf, 0, sizeof(*conf));
	for (line = strtok_r(data, "\n", &save); line && conf->n < RP_CHAIN_MAX;
	     line = strtok_r(NULL, "\n", &save))
		if (!member_scan(line, true, &conf->m[conf->n]))
			conf->n++;
	*zk_version = st.version;
	conf->version = (uint32_t)st.version + 1;
	free(data);
	return ZOK;
}

static int read_live(struct rp_chain_member *live, unsigned int *n)
{
	struct String_vector kids = { 0 };
	char path[256];
	int rc;

	path_of(path, sizeof(path), "live");
	rc = zoo_get_children(co.zh, path, 1, &kids);
	if (rc != ZOK)
		return rc;
	*n = 0;
	for (int i = 0; i < kids.count && *n < RP_CHAIN_MAX * 2; i++) {
		char data[128];
		int len = sizeof(data) - 1;
		struct rp_chain_member m;

		snprintf(path, sizeof(path), "/redplane/%s/live/%s", co.ch->name, kids.data[i]);
		if (zoo_get(co.zh, path, 0, data, &len, NULL) != ZOK || len < 0)
			continue;	/* gone meanwhile */
		data[len] = 0;
		if (member_scan(data, false, &m))
			continue;
		m.id = (uint32_t)strtoul(kids.data[i], NULL, 10);
		live[(*n)++] = m;
	}
	deallocate_String_vector(&kids);
	return ZOK;
}

static int by_id(const void *a, const void *b)
{
	const struct rp_chain_member *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

static bool is_member(const struct rp_chain_member *set, unsigned int n, uint32_t id, uint64_t inc,
		      bool any_inc)
{
	for (unsigned int i = 0; i < n; i++)
		if (set[i].id == id && (any_inc || set[i].inc == inc))
			return true;
	return false;
}

/* The rule every replica applies: keep the live members, append the rest. */
static void desired_config(const struct rp_chain_conf *cur, struct rp_chain_member *live,
			   unsigned int nlive, struct rp_chain_conf *want)
{
	memset(want, 0, sizeof(*want));
	for (unsigned int i = 0; i < cur->n; i++)
		if (is_member(live, nlive, cur->m[i].id, cur->m[i].inc, false))
			want->m[want->n++] = cur->m[i];
	qsort(live, nlive, sizeof(*live), by_id);
	for (unsigned int i = 0; i < nlive && want->n < RP_CHAIN_MAX; i++)
		if (!is_member(want->m, want->n, live[i].id, 0, true))
			want->m[want->n++] = live[i];
}

static bool same_members(const struct rp_chain_conf *a, const struct rp_chain_conf *b)
{
	if (a->n != b->n)
		return false;
	for (unsigned int i = 0; i < a->n; i++)
		if (a->m[i].id != b->m[i].id || a->m[i].inc != b->m[i].inc)
			return false;
	return true;
}

static void log_config(const struct rp_chain_conf *c)
{
	char line[512];
	size_t off = 0;

	for (unsigned int i = 0; i < c->n && off < sizeof(line); i++)
		off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%u", i ? " -> " : "",
					c->m[i].id);
	if (!c->n)
		snprintf(line, sizeof(line), "(empty)");
	pr_info("rp-store: chain '%s' configuration %u: %s\n", co.ch->name, c->version, line);
}

/* One round: read, fix the configuration if it needs it, publish. */
static int sync_once(uint32_t *last_logged)
{
	struct rp_chain_member live[RP_CHAIN_MAX * 2];
	struct rp_chain_conf cur, want;
	unsigned int nlive = 0;
	int zk_version, rc;

	/* config first: what it names was live before it was written */
	rc = read_config(&cur, &zk_version);
	if (rc == ZOK)
		rc = read_live(live, &nlive);
	if (rc != ZOK)
		return rc;
	desired_config(&cur, live, nlive, &want);
	if (!same_members(&cur, &want)) {
		char *data = malloc(ZK_DATA_MAX), path[256];
		size_t off = 0;

		if (!data)
			return ZSYSTEMERROR;
		for (unsigned int i = 0; i < want.n; i++)
			off += (size_t)member_print(data + off, ZK_DATA_MAX - off, &want.m[i], true);
		path_of(path, sizeof(path), "config");
		/* conditional: a concurrent change by another replica wins, we re-read */
		rc = zoo_set(co.zh, path, data, (int)off, zk_version);
		free(data);
		return rc == ZBADVERSION ? ZOK : rc;
	}
	if (cur.version != *last_logged) {
		log_config(&cur);
		*last_logged = cur.version;
	}
	publish(&cur);
	return ZOK;
}

static void *coord_main(void *arg)
{
	struct rp_chain *ch = arg;
	uint64_t last_ok = mono_ms();
	uint32_t last_logged = 0;
	bool registered = false, told = false, fenced = false;

	for (;;) {
		unsigned int seen = coord_events();
		int state = zoo_state(co.zh);

		if (state == ZOO_EXPIRED_SESSION_STATE) {
			struct rp_chain_conf none = { .fenced = true };

			pr_warn("rp-store: the ZooKeeper session expired: replica %u has left chain '%s'; restart it to rejoin\n",
				ch->self.id, ch->name);
			publish(&none);
			atomic_store(&ch->fatal, 1);
			return NULL;
		}
		if (state == ZOO_CONNECTED_STATE) {
			if (!registered)
				registered = register_self(&told);
			if (registered && sync_once(&last_logged) == ZOK) {
				last_ok = mono_ms();
				fenced = false;
			}
		}
		if (!fenced && mono_ms() - last_ok > ch->timeout_ms / 2) {
			struct rp_chain_conf none = { .fenced = true };

			pr_warn("rp-store: out of touch with ZooKeeper for %u ms: serving nothing until it answers\n",
				ch->timeout_ms / 2);
			publish(&none);
			fenced = true;
		}
		if (!coord_wait(seen, registered ? 200 : COORD_POLL_MS))
			return NULL;
	}
}

int rp_coord_start(struct rp_chain *ch)
{
	const char *n;
	int err;

	co.ch = ch;
	ch->name_hash = 0xCBF29CE484222325ull;	/* FNV-1a */
	for (n = ch->name; *n; n++)
		ch->name_hash = (ch->name_hash ^ (uint8_t)*n) * 0x100000001B3ull;
	zoo_set_debug_level(rp_log_get_level() >= RP_LOG_DEBUG ? ZOO_LOG_LEVEL_WARN
							   : ZOO_LOG_LEVEL_ERROR);
	co.zh = zookeeper_init(ch->zk_hosts, watcher, (int)ch->timeout_ms, NULL, NULL, 0);
	if (!co.zh) {
		err = -errno;
		pr_warn("rp-store: Couldn't start the ZooKeeper client for '%s': %s\n", ch->zk_hosts,
			strerror(-err));
		return err ? err : -EINVAL;
	}
	err = -pthread_create(&co.tid, NULL, coord_main, ch);
	if (err) {
		zookeeper_close(co.zh);
		co.zh = NULL;
	}
	return err;
}

void rp_coord_stop(struct rp_chain *ch)
{
	(void)ch;
	if (!co.zh)
		return;
	pthread_mutex_lock(&co.lock);
	co.stop = true;
	pthread_cond_signal(&co.cond);
	pthread_mutex_unlock(&co.lock);
	pthread_join(co.tid, NULL);
	/* closing the session removes the live node: the others reconfigure at once */
	zookeeper_close(co.zh);
	co.zh = NULL;
}
