/* SPDX-License-Identifier: MIT */
/* http.h: the Tessera HTTP server: DICOMweb (PS3.18) under /dicomweb on an embedded CivetWeb,
 * and the static viewer. A thin layer: requests are parsed here and handed to the store
 * (index, files) and the render core; nothing here knows pixel formats or SQL. */
#ifndef TSR_HTTP_H
#define TSR_HTTP_H

#include "store.h"
#include "tsr_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct http_opts {
    const char *listen;       /* "127.0.0.1:8080"; CivetWeb listening_ports syntax */
    const char *web_root;     /* static files ("" or NULL: none) */
    const char *public_url;   /* base URL of /dicomweb in responses; NULL: from the Host header */
    const char *cors_origins; /* comma-separated allowed origins, "*" for any, NULL/"": off */
    int threads;              /* connection threads (0: 128) */
    uint64_t max_upload;      /* bytes of one STOW-RS request body (0: 2 GiB) */
    long qido_max;            /* results per QIDO page at most (0: 1000) */
    int thumbnail_size;       /* default thumbnail box in pixels (0: 192) */
    int request_timeout_ms;   /* idle time a connection may take (0: 30000) */
    size_t cache_bytes;       /* one budget for every image cache (0: 512 MiB) */
    int tile_size;            /* tile side in pixels (0: 256) */
    int prefetch;             /* neighbours decoded ahead on each side of a new frame (0: off) */
    const char
        *admin_token;     /* a bearer token with the admin scope (TESSERA_ADMIN_TOKEN), or NULL */
    const char *tls_cert; /* PEM file with the certificate and its private key: HTTPS */
    int session_hours;    /* lifetime of a sign-in or share session (0: 12) */
    long share_max_days;  /* longest expiry of a share link (0: 30) */
} http_opts;

typedef struct http_server http_server;

/* Starts serving. `st` is borrowed and must outlive the server. On success *out owns the server
 * (http_stop). The error names what failed (e.g. the port is in use). */
int http_start(const http_opts *opts, store *st, http_server **out, tsr_err *err);

/* First start of a store without users: creates the user "admin" with a random password, written
 * to password_out (empty when users exist already). */
int http_bootstrap_admin(store *st, char *password_out, size_t cap, tsr_err *err);

/* The first listening port (useful with port 0). */
int http_port(const http_server *s);

/* Turns new requests away (503, "stopping") and waits up to timeout_ms for the requests in
 * handlers to finish, uploads included. Returns how many were still running at the timeout. */
int http_drain(http_server *s, int timeout_ms);

/* Stops accepting, lets in-flight requests finish, and frees the server. NULL: no-op. */
void http_stop(http_server *s);

#ifdef __cplusplus
}
#endif

#endif
