/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The benchmarks' machine-readable output: with RP_BENCH_CSV set (by
 * bench/report.sh), each figure is appended to that file as one row
 * `section,name,value,unit`, section being the report's (issue 7's) number.
 * Without it, nothing is written: the human output is the same either way.
 */
#ifndef __RP_BENCH_CSV_H
#define __RP_BENCH_CSV_H

#include <stdio.h>
#include <stdlib.h>

static inline void rp_bench_csv(int section, const char *name, double value, const char *unit)
{
	const char *path = getenv("RP_BENCH_CSV");
	FILE *f;

	if (!path || !*path)
		return;
	f = fopen(path, "a");
	if (!f) {
		perror(path);
		return;
	}
	fprintf(f, "%d,%s,%.10g,%s\n", section, name, value, unit);
	fclose(f);
}

/* PREFIX_WHAT_p50 and PREFIX_WHAT_p99, in microseconds. */
static inline void rp_bench_csv_pct(int section, const char *prefix, const char *what, double p50,
				    double p99)
{
	char name[96];

	snprintf(name, sizeof(name), "%s_%s_p50", prefix, what);
	rp_bench_csv(section, name, p50, "us");
	snprintf(name, sizeof(name), "%s_%s_p99", prefix, what);
	rp_bench_csv(section, name, p99, "us");
}

#endif /* __RP_BENCH_CSV_H */
