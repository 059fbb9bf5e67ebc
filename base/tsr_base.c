/* SPDX-License-Identifier: MIT */
#define _POSIX_C_SOURCE 200809L
#include "tsr_base.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int tsr_log_level = TSR_LOG_WARN;

int
tsr_err_set(tsr_err *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        e->code = code;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int
tsr_err_prefix(tsr_err *e, int code, const char *fmt, ...)
{
    if (!e) {
        return code;
    }
    char prefix[128], old[sizeof e->msg], both[sizeof prefix + sizeof old];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    if (e->code == TSR_OK) {
        e->code = code;
    }
    snprintf(both, sizeof both, "%s%s", prefix, old);
    memcpy(e->msg, both, sizeof e->msg - 1);
    e->msg[sizeof e->msg - 1] = '\0';
    return e->code;
}

const char *
tsr_status_name(int code)
{
    switch (code) {
#define TSR__NAME(name, c, http, msg)                                                              \
    case c:                                                                                        \
        return #name;
        TSR_STATUS_MAP(TSR__NAME)
#undef TSR__NAME
    }
    return "EUNKNOWN";
}

const char *
tsr_status_message(int code)
{
    switch (code) {
#define TSR__MSG(name, c, http, msg)                                                               \
    case c:                                                                                        \
        return msg;
        TSR_STATUS_MAP(TSR__MSG)
#undef TSR__MSG
    }
    return "unknown error";
}

int
tsr_status_http(int code)
{
    switch (code) {
#define TSR__HTTP(name, c, http, msg)                                                              \
    case c:                                                                                        \
        return http;
        TSR_STATUS_MAP(TSR__HTTP)
#undef TSR__HTTP
    }
    return 500;
}

void
tsr_log_write(int level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "tessera %s: %s\n", names[level < 0 ? 0 : (level > 3 ? 3 : level)], line);
}

uint64_t
tsr_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int
tsr_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) {
        return -1;
    }
    *out = a * b;
    return 0;
}
