// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdarg.h>
#include <stdio.h>

#include "redplane/log.h"

static enum rp_log_level log_level = RP_LOG_INFO;

void rp_log_set_level(enum rp_log_level level)
{
	log_level = level;
}

enum rp_log_level rp_log_get_level(void)
{
	return log_level;
}

void rp_log(enum rp_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}
