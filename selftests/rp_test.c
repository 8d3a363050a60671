// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rp_test.h"

void rp_test_key(struct rp_flow_key *k, uint32_t n)
{
	rp_key_v4(k, IPPROTO_TCP, htonl(0x0a000000u | (n & 0xffffff)), htons(1024 + (n >> 24)),
		  htonl(0xc0000201u), htons(80));
}

uint32_t rp_test_flow_of(const struct rp_flow_key *k)
{
	return ntohl(k->saddr.v4) & 0xffffff;
}

struct rp_msg_view rp_test_msg(uint8_t type, uint16_t sid, uint32_t flow, uint32_t epoch)
{
	struct rp_msg_view v = {
		.type = type,
		.app_id = RP_APP_NAT,
		.switch_id = sid,
		.epoch = epoch,
	};

	if (type == RP_MSG_HEARTBEAT || type == RP_MSG_HEARTBEAT_ACK)
		v.app_id = RP_APP_NONE;
	else
		rp_test_key(&v.key, flow);
	return v;
}

void rp_test_set_state(struct rp_msg_view *v, const char *state)
{
	v->flags |= RP_F_STATE;
	v->state = (const uint8_t *)state;
	v->state_len = (uint8_t)strlen(state);
}

void rp_test_set_pkt(struct rp_msg_view *v, const void *pkt, uint16_t len)
{
	v->flags |= RP_F_PKT;
	v->pkt = pkt;
	v->pkt_len = len;
}

size_t rp_test_encode(void *buf, const struct rp_msg_view *v)
{
	int len = rp_msg_encode(buf, RP_DGRAM_MAX, v);

	cr_assert_gt(len, 0, "test built an invalid message (%d)", len);
	return (size_t)len;
}

void rp_test_sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

uint64_t rp_test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void rp_test_switch_open(struct rp_test_switch *sw, uint16_t id, const struct rp_sockaddr *store)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	memset(sw, 0, sizeof(*sw));
	sw->id = id;
	sw->store = *store;
	sw->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(sw->fd, 0, "socket: %s", strerror(errno));
	cr_assert_eq(bind(sw->fd, (struct sockaddr *)&sin, sizeof(sin)), 0, "bind: %s",
		     strerror(errno));
}

void rp_test_switch_close(struct rp_test_switch *sw)
{
	if (sw->fd > 0)
		close(sw->fd);
	sw->fd = -1;
}

void rp_test_send_raw(struct rp_test_switch *sw, const void *buf, size_t len)
{
	ssize_t n = sendto(sw->fd, buf, len, 0, (struct sockaddr *)&sw->store.ss, sw->store.len);

	cr_assert_eq(n, (ssize_t)len, "sendto: %s", strerror(errno));
}

void rp_test_send(struct rp_test_switch *sw, const struct rp_msg_view *v)
{
	uint8_t buf[RP_DGRAM_MAX];

	rp_test_send_raw(sw, buf, rp_test_encode(buf, v));
}

int rp_test_recv(struct rp_test_switch *sw, struct rp_msg_view *v, int timeout_ms)
{
	struct pollfd pfd = { .fd = sw->fd, .events = POLLIN };
	ssize_t n;
	int err;

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return -ETIMEDOUT;
	n = recv(sw->fd, sw->rx, sizeof(sw->rx), 0);
	cr_assert_gt(n, 0, "recv: %s", strerror(errno));
	err = rp_msg_decode(sw->rx, (size_t)n, v);
	cr_assert_eq(err, 0, "store sent a message that does not decode: %s",
		     rp_decode_err_name((unsigned int)-err));
	/* writes and revoke-acks name the holding: remember its generation */
	if ((v->type == RP_MSG_GRANT || v->type == RP_MSG_MIGRATE) &&
	    rp_test_flow_of(&v->key) < RP_TEST_FLOWS)
		sw->gen[rp_test_flow_of(&v->key)] = v->gen;
	return 0;
}

void rp_test_expect(struct rp_test_switch *sw, uint8_t type, struct rp_msg_view *v,
		    int timeout_ms)
{
	int err = rp_test_recv(sw, v, timeout_ms);

	cr_assert_eq(err, 0, "switch %u: no %s within %d ms", sw->id, rp_msg_type_name(type),
		     timeout_ms);
	cr_assert_eq(v->type, type, "switch %u: got %s (reason %s), expected %s", sw->id,
		     rp_msg_type_name(v->type), rp_reject_name(v->reason), rp_msg_type_name(type));
}

unsigned int rp_test_drain(struct rp_test_switch *sw, uint8_t type)
{
	struct rp_msg_view v;
	unsigned int n = 0;

	while (rp_test_recv(sw, &v, 0) == 0) {
		cr_assert_eq(v.type, type, "switch %u: queued %s, expected only %s", sw->id,
			     rp_msg_type_name(v.type), rp_msg_type_name(type));
		n++;
	}
	return n;
}

void rp_test_heartbeat(struct rp_test_switch *sw)
{
	struct rp_msg_view v = rp_test_msg(RP_MSG_HEARTBEAT, sw->id, 0, sw->epoch);

	v.seq = ++sw->nonce;
	rp_test_send(sw, &v);
	rp_test_expect(sw, RP_MSG_HEARTBEAT_ACK, &v, 2000);
	cr_assert_eq(v.seq, sw->nonce, "heartbeat ack echoes the nonce");
	cr_assert_eq(v.switch_id, sw->id);
	cr_assert_neq(v.epoch, 0);
	sw->epoch = v.epoch;
}

/*
 * Sanitizer reports (make test's second pass runs rp-store and rp-load built
 * with ASan and UBSan): into dir/sanitizer.PID rather than the process's
 * log, which a restart of the process would replace.
 */
void rp_test_san_log_to(const char *dir)
{
	static const char *const vars[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS" };
	static char *orig[2];
	static bool saved;

	for (int i = 0; i < 2; i++) {
		char val[1024];
		const char *o;

		if (!saved)
			orig[i] = getenv(vars[i]) ? strdup(getenv(vars[i])) : NULL;
		o = orig[i];
		snprintf(val, sizeof(val), "%s%slog_path=%s/sanitizer", o ? o : "",
			 o && *o ? ":" : "", dir);
		setenv(vars[i], val, 1);
	}
	saved = true;
}

bool rp_test_san_reports(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool found = false;

	while (d && (e = readdir(d))) {
		char path[PATH_MAX], buf[4096];
		FILE *f;
		size_t n;

		if (strncmp(e->d_name, "sanitizer.", 10))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		f = fopen(path, "r");
		fprintf(stderr, "---- sanitizer report %s ----\n", path);
		while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
			fwrite(buf, 1, n, stderr);
		if (f)
			fclose(f);
		unlink(path);
		found = true;
	}
	if (d)
		closedir(d);
	return found;
}

const char *rp_test_store_bin(void)
{
	const char *bin = getenv("RP_STORE");

	return bin && *bin ? bin : "build/rp-store";
}

static void exec_store(const char *const *args, int out_fd, int err_fd)
{
	const char *argv[32];
	int n = 0;

	argv[n++] = rp_test_store_bin();
	while (args && *args && n < 31)
		argv[n++] = *args++;
	argv[n] = NULL;
	/* the store must not outlive a test that fails half way */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	dup2(out_fd, STDOUT_FILENO);
	dup2(err_fd, STDERR_FILENO);
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

void rp_test_store_start(struct rp_test_store *st, const char *const *extra)
{
	/* a store that never ran before: no start-up grace */
	const char *args[32] = { "--listen", "127.0.0.1:0", "--stats-file", st->stats,
				 "--grace-ms", "0" };
	int out[2], log_fd, n = 6;
	char line[256] = "", *p;
	FILE *f;

	memset(st, 0, sizeof(*st));
	snprintf(st->dir, sizeof(st->dir), "/tmp/rp-test.XXXXXX");
	cr_assert_not_null(mkdtemp(st->dir));
	snprintf(st->stats, sizeof(st->stats), "%s/stats", st->dir);
	snprintf(st->log, sizeof(st->log), "%s/log", st->dir);
	while (extra && *extra && n < 30)
		args[n++] = *extra++;
	args[n] = NULL;

	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	log_fd = open(st->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(log_fd, 0);
	rp_test_san_log_to(st->dir);
	st->pid = fork();
	cr_assert_geq(st->pid, 0);
	if (st->pid == 0)
		exec_store(args, out[1], log_fd);
	close(out[1]);
	close(log_fd);

	f = fdopen(out[0], "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(line, sizeof(line), f), "%s printed no listening line (log %s)",
			   rp_test_store_bin(), st->log);
	fclose(f);
	p = strstr(line, "listening on ");
	cr_assert_not_null(p, "unexpected first line: %s", line);
	p += strlen("listening on ");
	*strchr(p, ' ') = '\0';
	cr_assert_eq(rp_addr_parse(p, &st->addr), 0, "bad address '%s'", p);
}

bool rp_test_store_alive(struct rp_test_store *st)
{
	return st->pid > 0 && waitpid(st->pid, NULL, WNOHANG) == 0;
}

static void store_remove_dir(struct rp_test_store *st)
{
	char tmp[128];

	snprintf(tmp, sizeof(tmp), "%s.tmp", st->stats);
	unlink(tmp);
	unlink(st->stats);
	unlink(st->log);
	rmdir(st->dir);
}

int rp_test_store_stop(struct rp_test_store *st)
{
	int status = 0, ret = -1;

	if (st->pid <= 0)
		return -1;
	kill(st->pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(st->pid, &status, WNOHANG) == st->pid) {
			ret = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			break;
		}
		rp_test_sleep_ms(10);
	}
	if (ret < 0) {
		kill(st->pid, SIGKILL);
		waitpid(st->pid, NULL, 0);
	}
	st->pid = 0;
	cr_expect(!rp_test_san_reports(st->dir), "rp-store's sanitizers reported an error (above)");
	store_remove_dir(st);
	return ret;
}

static bool read_stat(const char *path, const char *name, uint64_t *val)
{
	char line[256], key[128];
	unsigned long long v;
	bool found = false;
	FILE *f = fopen(path, "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%127s %llu", key, &v) == 2 && !strcmp(key, name)) {
			*val = v;
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

uint64_t rp_test_store_stat(struct rp_test_store *st, const char *name)
{
	char tmp[128];
	uint64_t v = 0;

	/* the store renames a whole new file into place: wait for a fresh one */
	unlink(st->stats);
	kill(st->pid, SIGUSR1);
	for (int i = 0; i < 300; i++) {
		if (read_stat(st->stats, name, &v))
			return v;
		rp_test_sleep_ms(10);
	}
	snprintf(tmp, sizeof(tmp), "%s", name);
	cr_assert_fail("counter '%s' not found in %s", tmp, st->stats);
	return 0;
}

uint64_t rp_test_store_wait_stat(struct rp_test_store *st, const char *name, uint64_t want)
{
	uint64_t v = 0;

	for (int i = 0; i < 30; i++) {
		v = rp_test_store_stat(st, name);
		if (v == want)
			break;
		rp_test_sleep_ms(100);
	}
	return v;
}

int rp_test_run_store(const char *const *args, char *err, size_t errsz)
{
	char path[] = "/tmp/rp-test-err.XXXXXX";
	int fd = mkstemp(path), status;
	ssize_t n;
	pid_t pid;

	cr_assert_geq(fd, 0);
	unlink(path);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		exec_store(args, fd, fd);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	n = pread(fd, err, errsz - 1, 0);
	err[n > 0 ? n : 0] = '\0';
	close(fd);
	cr_expect(!strstr(err, "Sanitizer") && !strstr(err, "runtime error:"),
		  "rp-store's sanitizers reported an error: %s", err);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
