/* SPDX-License-Identifier: MIT */
/* bench_util.h: the few helpers every benchmark program needs (fatal errors, a monotonic clock
 * in seconds, sorting and nearest-rank percentiles of latency samples). Header-only: each
 * benchmark is one program; set BENCH_NAME before including for the error prefix. */
#ifndef TSR_BENCH_UTIL_H
#define TSR_BENCH_UTIL_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifndef BENCH_NAME
#define BENCH_NAME "bench"
#endif

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn, unused));

static void
die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, BENCH_NAME ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static inline double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile p (0..1] of the n sorted values v; 0 when n is 0. */
static inline double
pct(const double *v, size_t n, double p)
{
    if (n == 0) {
        return 0;
    }
    size_t k = (size_t)ceil(p * (double)n);
    return v[k == 0 ? 0 : k - 1];
}

#endif
