/* SPDX-License-Identifier: MIT */
/* http_internal.h: cross-file internals of the HTTP layer (prefix http__). */
#ifndef TSR_HTTP_INTERNAL_H
#define TSR_HTTP_INTERNAL_H

#include "http.h"

#include <civetweb.h>
#include <stddef.h>
#include <stdint.h>

struct http_server {
    struct mg_context *ctx;
    store *st;
    http_opts opts;
    char public_url[512];
    char cors[1024];
    int port;
};

/* One DICOMweb request, parsed from its path. UIDs are validated (digits and dots, 1..64). */
typedef struct http_req {
    struct mg_connection *conn;
    http_server *srv;
    const struct mg_request_info *ri;
    const char *method;
    const char *query;  /* raw query string, "" when none */
    char base[640];     /* absolute base URL of /dicomweb for this request */
    char study[65], series[65], instance[65];
    char frames[256];   /* the frame list segment, "" when none */
    char bulk[256];     /* the bulkdata path, "" when none */
    const char *resource; /* NULL, "metadata", "rendered", "thumbnail", "frames", "bulkdata",
                             "series", "instances" */
    char warning[512];  /* accumulated Warning: 299 texts */
} http_req;

/* Responses. Every error is JSON: {"status": N, "error": "<reason phrase>", "message": "..."}. */
void http__error(http_req *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void http__error_status(http_req *r, int tsr_code, const tsr_err *err);
/* Starts a response with the common headers (CORS, Warning) plus `extra` ("Name: value\r\n"
 * lines, may be NULL); len < 0: no Content-Length. */
void http__head(http_req *r, int status, const char *content_type, long long len,
                const char *extra);
void http__send(http_req *r, int status, const char *content_type, const void *body, size_t len,
                const char *extra);
void http__warn(http_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Query-string parameter `name` (first occurrence), percent-decoded into out. Returns 1 when
 * present, 0 when absent, -1 when malformed/too long. */
int http__param(const char *qs, const char *name, char *out, size_t cap);

/* A random multipart boundary (hex). */
void http__boundary(char out[40]);

/* Content negotiation (Accept header, or the `accept` query parameter): chooses among
 * `offered`; on failure sends 400/406 and returns -1. When `keep` is not NULL it receives the
 * parsed list (caller frees with neg_list_free). */
struct neg_list;
int http__negotiate(http_req *r, const char *const *offered, int n, int *chosen,
                    struct neg_list *keep);

/* Handlers (dicomweb.c, stow.c, rendered.c). */
void http__qido(http_req *r, store_level level);
void http__retrieve(http_req *r);
void http__metadata(http_req *r);
void http__frames(http_req *r);
void http__bulkdata(http_req *r);
void http__stow(http_req *r);
void http__rendered(http_req *r, int thumbnail);

#endif
