/* SPDX-License-Identifier: MIT */
/* http_internal.h: cross-file internals of the HTTP layer (prefix http__). */
#ifndef TSR_HTTP_INTERNAL_H
#define TSR_HTTP_INTERNAL_H

#include "http.h"

#include "access.h"
#include "cache.h"
#include "rnd.h"

#include <civetweb.h>
#include <stddef.h>
#include <stdint.h>

typedef struct http_imaging http_imaging;
typedef struct http_pool http_pool;

struct http_server {
    struct mg_context *ctx;
    http_imaging *im;
    http_pool *pool;
    store *st;
    http_opts opts;
    char public_url[512];
    char cors[1024];
    int port;
    int have_admin_token;
    uint8_t admin_token_hash[32];
    /* http_drain: requests inside a handler now, and whether new ones are turned away */
    int inflight, draining;
    struct http_route {
        http_server *srv;
        int (*fn)(struct mg_connection *conn, void *cbdata);
    } routes[16];
};

/* One DICOMweb request, parsed from its path. UIDs are validated (digits and dots, 1..64). */
typedef struct http_req {
    struct mg_connection *conn;
    http_server *srv;
    const struct mg_request_info *ri;
    const char *method;
    const char *query;  /* raw query string, "" when none */
    char base[640];     /* absolute base URL of /dicomweb for this request */
    char origin[600];   /* scheme://host[:port] of this server, as the client reached it */
    char study[65], series[65], instance[65];
    char frames[256];   /* the frame list segment, "" when none */
    char bulk[256];     /* the bulkdata path, "" when none */
    const char *resource; /* NULL, "metadata", "rendered", "thumbnail", "frames", "bulkdata",
                             "series", "instances" */
    char warning[512];  /* accumulated Warning: 299 texts */
    access_principal who; /* auth.c: who is asking (kind NONE until resolved) */
    int status;           /* the status answered (set by http__head) */
    int audited;          /* an audit entry was written for this request */
} http_req;

/* auth.c: rights, checked against the request's credential. */
typedef enum http_right {
    HTTP_RIGHT_READ = 0, /* QIDO, metadata, rendered images, tiles, MPR (a share: its study) */
    HTTP_RIGHT_DOWNLOAD, /* WADO-RS DICOM, raw frames, bulk data (a share: when granted) */
    HTTP_RIGHT_STAFF, /* any user or token, not a share session: /stats, /metrics, listing links */
    HTTP_RIGHT_SHARE, /* create, list, revoke share links */
    HTTP_RIGHT_WRITE, /* STOW-RS */
    HTTP_RIGHT_ADMIN, /* users, tokens, audit */
} http_right;
/* The viewer's Content-Security-Policy: nothing inline, nothing from elsewhere, no framing. */
#define HTTP_CSP                                                                                   \
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "        \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "                 \
    "frame-ancestors 'none'"
void http__auth_configure(http_server *s, const char *admin_token);
/* The session cookie's name; http__session_cookie reads its value ("" when none). */
#define HTTP_COOKIE_NAME "tsr_session"
void http__session_cookie(http_req *r, char *out, size_t cap);
/* Resolves the request's credential into r->who. 0 when there is one; otherwise -1, after a
 * 401 (none, unknown) or a 410 (a share whose link was revoked or expired) unless `quiet`. */
int http__resolve(http_req *r, int quiet);
/* Why a share link no longer opens ("link revoked", ...). */
const char *http__share_refusal(access_share_state st);
/* The audit's name of who is asking ("user:NAME", "token:ID", "share:ID"), and an audit row
 * with it, the client's address, `action`, `target` and `status`. */
void http__actor(const http_req *r, char *out, size_t cap);
void http__audit(http_req *r, const char *action, const char *target, int status);
/* Resolves the credential (401/410 when missing or no longer valid), refuses cross-site
 * state changes made with a cookie (403) and checks `right` (403). 0 when allowed, else -1
 * after the answer was sent. */
int http__authorize(http_req *r, http_right right);
int http__can(const http_req *r, http_right right);
int http__require(http_req *r, http_right right); /* 403 unless http__can */
/* A share session reaches its study (and series) only: any other UID gets the 404 an unknown
 * UID gets. 0 when in scope (or not a share session), else -1 after the 404. */
int http__scope(http_req *r, const char *study, const char *series, const char *instance);
/* Confines a QIDO query to the share's study and series (adds matching keys). */
int http__scope_query(http_req *r, store_query *q);
/* Appends the request to the audit log when it came through a share link. */
void http__audit_request(http_req *r);
/* Header lines every response carries (nosniff, no referrer, CSP, no framing). */
const char *http__security_headers(void);
/* api.c: every /api resource. */
int http__api_handler(struct mg_connection *conn, void *cbdata);
/* static.c: the viewer's HTML, CSS, JavaScript and SVG from the web root, gzipped, with ETags;
 * returns 0 (CivetWeb's own handling) for anything else. */
int http__static_handler(struct mg_connection *conn, void *cbdata);
/* A share link request body (POST /api/shares) into *sh (study, series, download, expires,
 * max_opens) and the PIN (borrowed from b, NULL when none). -1 with msg for what is wrong. */
typedef struct json_t json_t;
int http__share_request(json_t *b, double max_hours, access_share *sh, const char **pin, char *msg,
                        size_t cap);
/* A string member of a JSON object, or NULL. */
const char *http__jstr(json_t *o, const char *key);

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

/* Fills a request from a connection (method, query, base URLs). */
void http__req_init(http_req *r, struct mg_connection *conn, http_server *srv);
/* Answers an OPTIONS request (a CORS preflight when the origin is allowed). */
void http__preflight(http_req *r);

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

/* rendered.c: the parameters of rendered resources (PS3.18 8.3.5.1): window, viewport, quality,
 * annotation; fmt is set by the caller after content negotiation. */
typedef struct http_render_params {
    rnd_voi_req voi;
    int has_viewport;
    rnd_viewport vp;
    int quality;
    int annotate_patient, annotate_technique;
    rnd_format fmt;
} http_render_params;
/* Reads them from the query string (thumbnail: the thumbnail defaults). Parameters that are not
 * among them nor in `extra` (NULL-terminated, may be NULL) are named in a Warning. Returns 0, or
 * -1 after sending a 400. */
int http__render_params(http_req *r, int thumbnail, const char *const *extra,
                        http_render_params *p);
/* imaging.c: the cached path from a stored instance to pixels (see there). Every function
 * returns a pinned cache handle the caller releases with cache_release. */
int http__imaging_create(size_t budget_bytes, http_imaging **out, tsr_err *err);
void http__imaging_destroy(http_imaging *im);
int http__imaging_stats(http_imaging *im, int prometheus, char **out);
/* The "volumes" pool (filled by mpr.c), the "rendered" pool (http_rendered values; mpr.c adds
 * reformats under keys of its own) and the budget all pools share. */
cache *http__imaging_volumes(http_imaging *im);
cache *http__imaging_rendered(http_imaging *im);
size_t http__imaging_budget(http_imaging *im);
/* store_find_instance through the "instances" pool: the index row of an instance being viewed is
 * read from the index once. Same arguments, results and messages as store_find_instance (an
 * unknown UID is not remembered). Thread-safe. */
int http__find_instance(http_imaging *im, store *st, const char *study, const char *series,
                        const char *sop, store_instance *out, tsr_err *err);

int http__handle(http_imaging *im, const store_instance *inst, cache_entry **out, tsr_err *err);
int http__frame(http_imaging *im, const store_instance *inst, uint32_t index, cache_entry **out,
                tsr_err *err);
/* Whether the instance's transfer syntax has resolution levels a decode can skip (JPEG 2000). */
int http__reduce_ok(const store_instance *inst);
/* http__frame decoded with up to `reduce` resolution levels skipped (rnd_dicom_decode_frame_reduced;
 * full size when http__reduce_ok says no), cached under its own key. */
int http__frame_reduced(http_imaging *im, const store_instance *inst, uint32_t index, int reduce,
                        cache_entry **out, tsr_err *err);
/* An 8-bit frame at one window, with what the pipeline applied. */
typedef struct http_rendered {
    rnd_image img;
    rnd_voi_used used;
    double pixel_aspect;
    uint32_t frames, columns, rows;
    char modality[17];
    int reduce; /* img is ceil(size / 2^reduce) per side: a reduced JPEG 2000 decode */
} http_rendered;
int http__rendered_frame(http_imaging *im, const store_instance *inst, uint32_t index,
                         const rnd_voi_req *voi, cache_entry **out, tsr_err *err);
/* A rendered frame for one request: from the rendered pool when a tile or an earlier request put
 * it there (e), else rendered for this request only (own) and not cached -- for whole-frame
 * images, whose encoded bytes are cached instead: keeping their 8-bit pixels too would add
 * 256 KiB per 512x512 frame and window to the cache for nothing. */
typedef struct http_rendered_ref {
    cache_entry *e;
    http_rendered *own;
} http_rendered_ref;
int http__rendered_once(http_imaging *im, const store_instance *inst, uint32_t index,
                        const rnd_voi_req *voi, int reduce, http_rendered_ref *out, tsr_err *err);
static inline const http_rendered *
http__rendered_ref_get(const http_rendered_ref *ref)
{
    return ref->e ? (const http_rendered *)cache_entry_data(ref->e) : ref->own;
}
void http__rendered_ref_release(http_rendered_ref *ref);
/* The destroy function of http_rendered cache values (data: the http_rendered). */
void http__rendered_destroy(void *data, void *ctx);
/* http__rendered_frame from http__frame_reduced: check `reduce` of the result for what was
 * applied (0 for other transfer syntaxes). */
int http__rendered_reduced(http_imaging *im, const store_instance *inst, uint32_t index,
                           const rnd_voi_req *voi, int reduce, cache_entry **out, tsr_err *err);
void http__voi_key(const rnd_voi_req *voi, char *out, size_t cap);
/* Encoded bytes under `key` (everything they depend on); on a miss `fn` fills a rnd_buf on the
 * render pool `pool` (NULL: on the calling thread) while the caller waits. */
typedef int (*http__encode_fn)(void *user, rnd_buf *out, char *meta, size_t metacap,
                               tsr_err *err);
/* The cached value: the bytes, then response header lines `fn` may add (e.g. the window used). */
typedef struct http_encoded {
    rnd_buf buf;
    char meta[192];
} http_encoded;
int http__encoded(http_imaging *im, http_pool *pool, const char *key, http__encode_fn fn,
                  void *user, cache_entry **out, tsr_err *err);
/* Whether frame `index` of `inst` is decoded in the cache now (a non-blocking peek). */
/* Sends an encoded cache value (http_encoded) as a 200: its meta header lines are appended to
 * `hdr` (cap bytes) first. */
void http__send_encoded(http_req *r, const cache_entry *e, const char *ctype, char *hdr,
                        size_t cap);
int http__frame_cached(http_imaging *im, const store_instance *inst, uint32_t index);
/* Schedules, at prefetch priority, the decoding of the frames of the instances next to `inst`
 * in its series (bounded: a few on each side, skipped when cached or the queue is full). */
void http__prefetch_neighbours(http_server *srv, const store_instance *inst);

/* pool.c: the render pool (one thread per core; interactive jobs before prefetch jobs). */
typedef int (*http__job_fn)(void *user);
int http__pool_create(int threads, int max_prefetch, http_pool **out, tsr_err *err);
void http__pool_destroy(http_pool *p);
/* Runs fn(user) on a pool thread at interactive priority and waits for it; returns its value.
 * Must not be called from a pool thread. */
int http__pool_run(http_pool *p, http__job_fn fn, void *user);
/* Queues fn(user) at prefetch priority; the pool frees `user` with free_user afterwards.
 * Returns -1 when dropped (queue full or stopping): the caller still owns `user`. */
int http__pool_prefetch(http_pool *p, http__job_fn fn, void *user, void (*free_user)(void *));

/* FNV-1a 64 of `key` as a strong entity tag ("\"<prefix><16 hex>\""), and If-None-Match. */
void http__etag(const char *key, char prefix, char out[40]);
int http__etag_matches(const char *if_none_match, const char *etag);
/* window=c,w[,fn] into a VOI request; -1 with a message. */
int http__parse_window(const char *s, rnd_voi_req *voi, char *msg, size_t cap);

/* tiles.c: the address part of a tile URL, "tiles/{window}/{quality}/{level}/{col}/{row}.{ext}"
 * (`rest` starts at "tiles/"). Returns 0, or -1 after sending a 400 that says what is wrong. */
typedef struct http_tile_addr {
    rnd_voi_req voi;
    rnd_format fmt;
    int quality; /* 0 for png */
    int level;
    uint32_t col, row;
} http_tile_addr;
int http__tile_addr_parse(http_req *r, const char *rest, http_tile_addr *a);
#define HTTP_TILE_CACHE_CONTROL "Cache-Control: private, max-age=31536000, immutable\r\n"

/* mpr.c: reformats of a series. `res` is "volume" or "mpr"; `rest` the path after it. */
void http__mpr(http_req *r, const char *res, const char *rest);
/* The plane parameters of an MPR request (README: plane, position, point, row, col, normal,
 * up, spacing, slab, interpolation). */
typedef struct http_mpr_params {
    int axis; /* rnd_plane_axis, or -1 for oblique */
    int has_position;
    double position;
    int has_point, has_row, has_col, has_normal, has_up;
    double point[3], row[3], col[3], normal[3], up[3];
    double spacing;
    rnd_slab slab;
    rnd_interp interp;
} http_mpr_params;
/* Reads them from the query string; -1 after sending a 400 that names the parameter. */
int http__mpr_parse(http_req *r, http_mpr_params *m);
/* The plane they describe through a volume of geometry g (default position: its middle). */
int http__mpr_plane(const rnd_vol_geom *g, const http_mpr_params *m, rnd_plane *p, tsr_err *err);

/* Handlers (dicomweb.c, stow.c, rendered.c). */
void http__qido(http_req *r, store_level level);
void http__retrieve(http_req *r);
void http__metadata(http_req *r);
void http__frames(http_req *r);
void http__bulkdata(http_req *r);
void http__stow(http_req *r);
void http__rendered(http_req *r, int thumbnail);
void http__tiles(http_req *r, const char *rest);
int http__iiif_handler(struct mg_connection *conn, void *cbdata);
int http__stats_handler(struct mg_connection *conn, void *cbdata);

#endif
