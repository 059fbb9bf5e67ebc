/* SPDX-License-Identifier: MIT */
/* tsr_base.h: status codes, per-call error details and logging shared by every Tessera module.
 *
 * Errors follow one rule: a function returns a status code (TSR_OK or a negative TSR_E*) and,
 * when the caller passes a tsr_err, writes a message into that caller-owned struct. There is no
 * process-wide error buffer, so concurrent requests never see each other's messages. */
#ifndef TSR_BASE_H
#define TSR_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* name, code, HTTP status, default message */
#define TSR_STATUS_MAP(X)                                                                          \
    X(OK, 0, 200, "ok")                                                                            \
    X(EINVAL, -1, 400, "invalid parameter")                                                        \
    X(ENOTFOUND, -2, 404, "not found")                                                             \
    X(EUNSUPP, -3, 422, "unsupported pixel data")                                                  \
    X(ELIMIT, -4, 422, "exceeds configured limits")                                                \
    X(ECORRUPT, -5, 422, "malformed DICOM data")                                                   \
    X(EIO, -6, 500, "I/O error")                                                                   \
    X(ENOMEM, -7, 503, "out of memory")                                                            \
    X(EINTERNAL, -8, 500, "internal error")                                                        \
    X(ENOSPACE, -9, 507, "insufficient storage")                                                   \
    X(EEXIST, -10, 409, "already exists")

enum tsr_status {
#define TSR__ENUM(name, code, http, msg) TSR_##name = code,
    TSR_STATUS_MAP(TSR__ENUM)
#undef TSR__ENUM
};

/* Error details written by a failing call into memory the caller owns. `msg` is always
 * NUL-terminated, holds no secrets and is safe to show to a client. */
typedef struct tsr_err {
    int code;
    char msg[256];
} tsr_err;

/* Formats a message into `e` (which may be NULL) and returns `code`, so that a failing function
 * can `return tsr_err_set(err, TSR_EINVAL, "...")`. Thread-safe. */
int tsr_err_set(tsr_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message in `e` with more context ("frame 3: " + old). Returns e->code,
 * or `code` when e is NULL. */
int tsr_err_prefix(tsr_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Static strings for a status code: its symbolic name ("EINVAL") and default message.
 * Unknown codes give "EUNKNOWN"/"unknown error". */
const char *tsr_status_name(int code);
const char *tsr_status_message(int code);

/* The HTTP status that `code` maps to (200 for TSR_OK, 500 for unknown codes). */
int tsr_status_http(int code);

/* Logging. The level is checked before the message is formatted. The sink and level are the only
 * process-wide state; set them once at startup, before threads start. */
enum tsr_log_level { TSR_LOG_ERROR = 0, TSR_LOG_WARN = 1, TSR_LOG_INFO = 2, TSR_LOG_DEBUG = 3 };
extern int tsr_log_level;
void tsr_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define TSR_LOG(level, ...)                                                                        \
    do {                                                                                           \
        if ((level) <= tsr_log_level) {                                                            \
            tsr_log_write((level), __VA_ARGS__);                                                   \
        }                                                                                          \
    } while (0)

/* Monotonic clock in nanoseconds, for timings in logs and benchmarks. */
uint64_t tsr_now_ns(void);

/* Overflow-checked size arithmetic: returns 0 and writes *out on success, -1 on overflow. */
int tsr_mul_size(size_t a, size_t b, size_t *out);

#ifdef __cplusplus
}
#endif

#endif
