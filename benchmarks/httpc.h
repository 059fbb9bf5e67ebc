/* SPDX-License-Identifier: MIT */
/* httpc.h: the benchmarks' minimal HTTP/1.1 keep-alive client (bench_store, bench_render_http).
 *
 * One connection, requests in sequence, Content-Length or chunked responses, request bodies
 * streamed from files with sendfile. Not thread-safe: one hc per thread. Plain TCP only
 * (http://host[:port][/prefix]); a stale keep-alive connection is reopened once per request.
 * Every request carries `Authorization: Bearer T` when a token is set: hc_set_bearer, else the
 * environment variable TESSERA_TOKEN (Tessera's access control; unset for other servers). */
#ifndef TSR_BENCH_HTTPC_H
#define TSR_BENCH_HTTPC_H

#include <stddef.h>
#include <stdint.h>

typedef struct hc {
    char host[128];
    char port[16];
    char prefix[512]; /* the base URL's path, no trailing '/' */
    int fd;
    char *buf; /* received, unread bytes are buf[beg, end) */
    size_t beg, end, cap;
    int reconnects;
} hc;

typedef struct hc_resp {
    int status;
    char *body; /* NUL-terminated after len bytes; owned, reused across requests */
    size_t len, cap;
    char ctype[160];
    char etag[160]; /* the ETag header, "" if none */
} hc_resp;

/* Parses base ("http://host[:port][/prefix]"). Returns 0, or -1 for a URL it cannot use. */
int hc_init(hc *c, const char *base);
void hc_close(hc *c);
void hc_free(hc *c);
void hc_resp_free(hc_resp *r);

/* The bearer token of every later request of this process (NULL or "": none). Call before the
 * threads start; without a call, TESSERA_TOKEN from the environment. */
void hc_set_bearer(const char *token);

/* GET prefix + rel. Returns 0 with r->status set, or -1 (connection failed twice). */
int hc_get(hc *c, const char *rel, const char *accept, hc_resp *r);
/* The same with extra request headers (each line ending in CRLF, e.g. "If-None-Match: x\r\n"),
 * or NULL. */
int hc_get_h(hc *c, const char *rel, const char *accept, const char *headers, hc_resp *r);

/* STOW-RS: POST prefix + rel with files[0..n) (sizes[i] bytes each) as application/dicom
 * parts of one multipart/related body, streamed. Returns 0 with r->status set, or -1. */
int hc_stow(hc *c, const char *rel, char **files, const uint64_t *sizes, int n, hc_resp *r);

#endif
