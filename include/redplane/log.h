/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Leveled logging to stderr, after xdp-tools' lib/util/logging.h. */
#ifndef __REDPLANE_LOG_H
#define __REDPLANE_LOG_H

enum rp_log_level {
	RP_LOG_WARN,
	RP_LOG_INFO,
	RP_LOG_DEBUG,
};

void rp_log_set_level(enum rp_log_level level);
enum rp_log_level rp_log_get_level(void);
void rp_log(enum rp_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pr_warn(fmt, ...) rp_log(RP_LOG_WARN, fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...) rp_log(RP_LOG_INFO, fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...) rp_log(RP_LOG_DEBUG, fmt, ##__VA_ARGS__)

#endif /* __REDPLANE_LOG_H */
