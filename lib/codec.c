// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Validation and encoding of redplane messages; rules in docs/PROTOCOL.md. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "redplane/codec.h"
#include "redplane/log.h"
#include "redplane/siphash.h"

static bool mac_on;
static uint64_t mac_key[2];

void rp_msg_set_key(const uint64_t key[2])
{
	mac_on = key != NULL;
	if (key) {
		mac_key[0] = key[0];
		mac_key[1] = key[1];
	}
}

uint64_t rp_msg_mac(const void *msg, const uint64_t key[2])
{
	return rp_siphash24(key[0], key[1], msg, RP_MAC_COVERED);
}

int rp_mac_key_read(const char *prog, const char *path, uint64_t key[2])
{
	char line[256], hex[33] = "";
	size_t n = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		int err = -errno;

		pr_warn("%s: Couldn't open the MAC key file '%s': %s\n", prog, path, strerror(errno));
		return err;
	}
	while (fgets(line, sizeof(line), f)) {
		for (char *c = line; *c && *c != '#' && *c != '\n'; c++) {
			if (*c == ' ' || *c == '\t' || *c == '\r')
				continue;
			if (!isxdigit((unsigned char)*c) || n == 32) {
				n = 33;	/* not a key */
				break;
			}
			hex[n++] = *c;
		}
	}
	fclose(f);
	if (n != 32) {
		pr_warn("%s: invalid MAC key file '%s': expected 32 hexadecimal digits (128 bits)\n",
			prog, path);
		return -EINVAL;
	}
	key[0] = key[1] = 0;
	for (int i = 0; i < 32; i++) {
		unsigned int d = isdigit((unsigned char)hex[i]) ? (unsigned int)(hex[i] - '0')
						    : (unsigned int)(tolower((unsigned char)hex[i]) - 'a' + 10);

		/* the first 16 digits are key bytes 0-7: k0, little-endian */
		key[i / 16] |= (uint64_t)d << (8 * ((i % 16) / 2) + 4 * !(i % 2));
	}
	return 0;
}

static const char *const msg_type_names[__RP_MSG_MAX] = {
	[RP_MSG_LEASE_REQ] = "lease_req",
	[RP_MSG_GRANT] = "grant",
	[RP_MSG_MIGRATE] = "migrate",
	[RP_MSG_HEARTBEAT] = "heartbeat",
	[RP_MSG_HEARTBEAT_ACK] = "heartbeat_ack",
	[RP_MSG_WRITE] = "write",
	[RP_MSG_SNAPSHOT] = "snapshot",
	[RP_MSG_ACK] = "ack",
	[RP_MSG_REVOKE] = "revoke",
	[RP_MSG_REVOKE_ACK] = "revoke_ack",
	[RP_MSG_REJECT] = "reject",
	[RP_MSG_EXPIRE] = "expire",
	[RP_MSG_EXPIRE_ACK] = "expire_ack",
};

static const char *const reject_names[__RP_REJ_MAX] = {
	[RP_REJ_NONE] = "none",
	[RP_REJ_NO_SESSION] = "no_session",
	[RP_REJ_NOT_OWNER] = "not_owner",
	[RP_REJ_STALE] = "stale",
	[RP_REJ_BUSY] = "busy",
	[RP_REJ_QUEUE_FULL] = "queue_full",
	[RP_REJ_TIMEOUT] = "timeout",
	[RP_REJ_TABLE_FULL] = "table_full",
	[RP_REJ_NO_FLOW] = "no_flow",
	[RP_REJ_CONFLICT] = "conflict",
	[RP_REJ_NOT_HEAD] = "not_head",
};

static const char *const decode_err_names[__RP_E_MAX] = {
	[RP_E_OK] = "ok",
	[RP_E_TRUNCATED] = "truncated",
	[RP_E_OVERSIZED] = "oversized",
	[RP_E_VERSION] = "bad_version",
	[RP_E_TYPE] = "bad_type",
	[RP_E_APP] = "bad_app",
	[RP_E_FLAGS] = "bad_flags",
	[RP_E_LEN] = "bad_len",
	[RP_E_KEY] = "bad_key",
	[RP_E_SWITCH] = "bad_switch",
	[RP_E_REASON] = "bad_reason",
	[RP_E_DIRECTION] = "bad_direction",
	[RP_E_MAC] = "bad_mac",
};

const char *rp_msg_type_name(unsigned int type)
{
	return type < __RP_MSG_MAX && msg_type_names[type] ? msg_type_names[type] : "unknown";
}

const char *rp_reject_name(unsigned int reason)
{
	return reason < __RP_REJ_MAX ? reject_names[reason] : "unknown";
}

const char *rp_decode_err_name(unsigned int err)
{
	return err < __RP_E_MAX ? decode_err_names[err] : "unknown";
}

bool rp_msg_from_switch(uint8_t type)
{
	switch (type) {
	case RP_MSG_LEASE_REQ:
	case RP_MSG_HEARTBEAT:
	case RP_MSG_WRITE:
	case RP_MSG_SNAPSHOT:
	case RP_MSG_REVOKE_ACK:
	case RP_MSG_EXPIRE:
		return true;
	default:
		return false;
	}
}

/* Session messages carry no flow: no app, no key, no state, no packet. */
static bool is_session_msg(uint8_t type)
{
	return type == RP_MSG_HEARTBEAT || type == RP_MSG_HEARTBEAT_ACK;
}

/* The one message about a session that is not a session message. */
static bool answers_heartbeat(const struct rp_msg *m)
{
	return m->hdr.type == RP_MSG_REJECT && m->hdr.reason == RP_REJ_NOT_HEAD &&
	       m->hdr.app_id == RP_APP_NONE;
}

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static int check_key(const struct rp_flow_key *k)
{
	if (k->pad)
		return -RP_E_KEY;
	switch (k->family) {
	case RP_AF_INET:
		/* unused address bytes are zero: a key has one encoding */
		if (!all_zero(&k->saddr.v6[4], 12) || !all_zero(&k->daddr.v6[4], 12))
			return -RP_E_KEY;
		return 0;
	case RP_AF_INET6:
		return 0;
	default:
		return -RP_E_KEY;
	}
}

/* Both writes carry the full new state: a missing state is malformed. */
static bool needs_state(uint8_t type)
{
	return type == RP_MSG_WRITE || type == RP_MSG_SNAPSHOT;
}

/* A delete and its answer name the flow and the holding: no state, no packet. */
static bool names_holding_only(uint8_t type)
{
	return type == RP_MSG_EXPIRE || type == RP_MSG_EXPIRE_ACK;
}

int rp_msg_decode(const void *buf, size_t len, struct rp_msg_view *v)
{
	const struct rp_msg *m = buf;
	size_t pkt_len;

	if (len < RP_MSG_LEN)
		return -RP_E_TRUNCATED;
	if (len > RP_DGRAM_MAX)
		return -RP_E_OVERSIZED;
	if (mac_on) {
		uint64_t mac;

		memcpy(&mac, m->mac, sizeof(mac));
		if (mac != rp_msg_mac(m, mac_key))
			return -RP_E_MAC;
	}
	if (m->hdr.version != RP_VERSION)
		return -RP_E_VERSION;
	if (m->hdr.type == 0 || m->hdr.type >= __RP_MSG_MAX)
		return -RP_E_TYPE;
	if (m->hdr.flags & ~RP_F_ALL)
		return -RP_E_FLAGS;
	if (m->hdr.type == RP_MSG_REJECT) {
		if (m->hdr.reason == RP_REJ_NONE || m->hdr.reason >= __RP_REJ_MAX)
			return -RP_E_REASON;
	} else if (m->hdr.reason) {
		return -RP_E_REASON;
	}
	if (!m->hdr.switch_id)
		return -RP_E_SWITCH;

	pkt_len = ntohs(m->hdr.pkt_len);
	if (pkt_len > RP_PKT_MAX)
		return -RP_E_OVERSIZED;
	if (pkt_len != len - RP_MSG_LEN)
		return -RP_E_LEN;
	if (!!(m->hdr.flags & RP_F_PKT) != !!pkt_len)
		return -RP_E_FLAGS;
	if (m->hdr.state_len > RP_STATE_MAX)
		return -RP_E_LEN;
	if (!(m->hdr.flags & RP_F_STATE) && m->hdr.state_len)
		return -RP_E_FLAGS;
	if (needs_state(m->hdr.type) && !(m->hdr.flags & RP_F_STATE))
		return -RP_E_FLAGS;
	if (names_holding_only(m->hdr.type) && m->hdr.flags)
		return -RP_E_FLAGS;

	if (is_session_msg(m->hdr.type)) {
		if (m->hdr.app_id != RP_APP_NONE)
			return -RP_E_APP;
		if (m->hdr.flags)
			return -RP_E_FLAGS;
		if (!all_zero(&m->key, sizeof(m->key)))
			return -RP_E_KEY;
	} else if (answers_heartbeat(m)) {
		/* REJECT not_head to a heartbeat: the hint, no packet, no key */
		if (m->hdr.flags & RP_F_PKT)
			return -RP_E_FLAGS;
		if (!all_zero(&m->key, sizeof(m->key)))
			return -RP_E_KEY;
	} else {
		int err;

		if (m->hdr.app_id == RP_APP_NONE || m->hdr.app_id >= __RP_APP_MAX)
			return -RP_E_APP;
		err = check_key(&m->key);
		if (err)
			return err;
	}

	v->type = m->hdr.type;
	v->app_id = m->hdr.app_id;
	v->flags = m->hdr.flags;
	v->reason = m->hdr.reason;
	v->switch_id = ntohs(m->hdr.switch_id);
	v->state_len = m->hdr.state_len;
	v->seq = ntohl(m->hdr.seq);
	v->epoch = ntohl(m->hdr.epoch);
	v->lease_ms = ntohl(m->hdr.lease_ms);
	v->pkt_len = pkt_len;
	v->gen = ntohs(m->hdr.gen);
	memcpy(&v->key, &m->key, sizeof(v->key));
	v->state = m->state;
	v->pkt = (const uint8_t *)buf + RP_MSG_LEN;
	memcpy(&v->mac, m->mac, sizeof(v->mac));
	return 0;
}

int rp_msg_encode(void *buf, size_t cap, const struct rp_msg_view *v)
{
	struct rp_msg_view check;
	struct rp_msg *m = buf;
	size_t len = RP_MSG_LEN + v->pkt_len;
	int err;

	if (cap < len)
		return -ENOSPC;
	if (v->state_len > RP_STATE_MAX)
		return -EINVAL;

	memset(m, 0, RP_MSG_LEN);
	m->hdr.version = RP_VERSION;
	m->hdr.type = v->type;
	m->hdr.app_id = v->app_id;
	m->hdr.flags = v->flags;
	m->hdr.switch_id = htons(v->switch_id);
	m->hdr.reason = v->reason;
	m->hdr.state_len = v->state_len;
	m->hdr.seq = htonl(v->seq);
	m->hdr.epoch = htonl(v->epoch);
	m->hdr.lease_ms = htonl(v->lease_ms);
	m->hdr.pkt_len = htons(v->pkt_len);
	m->hdr.gen = htons(v->gen);
	m->key = v->key;
	if (v->state_len)
		memcpy(m->state, v->state, v->state_len);
	if (v->pkt_len)
		memmove((uint8_t *)buf + RP_MSG_LEN, v->pkt, v->pkt_len);
	if (mac_on) {
		uint64_t mac = rp_msg_mac(m, mac_key);

		memcpy(m->mac, &mac, sizeof(mac));
	} else {
		memcpy(m->mac, &v->mac, sizeof(v->mac));
	}

	err = rp_msg_decode(buf, len, &check);
	if (err)
		return -EINVAL;
	return (int)len;
}

bool rp_key_eq(const struct rp_flow_key *a, const struct rp_flow_key *b)
{
	return !memcmp(a, b, sizeof(*a));
}

static void endpoint_str(uint8_t family, union rp_addr a, uint16_t port, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN];

	if (family == RP_AF_INET6) {
		inet_ntop(AF_INET6, a.v6, ip, sizeof(ip));
		snprintf(buf, size, "[%s]:%u", ip, port);
	} else {
		inet_ntop(AF_INET, &a.v4, ip, sizeof(ip));
		snprintf(buf, size, "%s:%u", ip, port);
	}
}

char *rp_key_str(const struct rp_flow_key *k, char *buf, size_t size)
{
	char src[INET6_ADDRSTRLEN + 10], dst[INET6_ADDRSTRLEN + 10];

	endpoint_str(k->family, k->saddr, ntohs(k->sport), src, sizeof(src));
	endpoint_str(k->family, k->daddr, ntohs(k->dport), dst, sizeof(dst));
	snprintf(buf, size, "%u %s %s", k->proto, src, dst);
	return buf;
}
