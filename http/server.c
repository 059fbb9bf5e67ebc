/* SPDX-License-Identifier: MIT */
/* server.c: CivetWeb start/stop, the /dicomweb router, CORS, and the response helpers every
 * handler uses (JSON errors, Warning headers). */
#define _GNU_SOURCE
#include "http_internal.h"

#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

int tsr_ssl_shim_loaded(void); /* http/openssl3/ssl_shim.c */

/* ---------------------------------------------------------------- responses */

static const char *
reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 410:
        return "Gone";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 423:
        return "Locked";
    case 429:
        return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 507: return "Insufficient Storage";
    default: return "Error";
    }
}

/* Appends CORS headers when the request's Origin is allowed. */
static size_t
cors_headers(http_req *r, char *out, size_t cap)
{
    const char *origin = mg_get_header(r->conn, "Origin");
    const char *allowed = r->srv->cors;
    if (!origin || !allowed[0] || strlen(origin) > 256) {
        return 0;
    }
    int ok = strcmp(allowed, "*") == 0;
    for (const char *p = allowed; !ok && *p;) {
        size_t n = strcspn(p, ",");
        ok = n == strlen(origin) && strncmp(p, origin, n) == 0;
        p += n + (p[n] == ',');
        while (*p == ' ') {
            p++;
        }
    }
    if (!ok) {
        return 0;
    }
    for (const char *c = origin; *c; c++) {
        if ((unsigned char)*c < 0x21 || *c == ',') {
            return 0; /* header injection or a list: not an origin */
        }
    }
    int n = snprintf(out, cap,
                     "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n"
                     "Access-Control-Expose-Headers: Warning, Content-Location, Content-Type, "
                     "Content-Length, Location, ETag, X-Tessera-Window\r\n",
                     origin);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

void
http__warn(http_req *r, const char *fmt, ...)
{
    size_t n = strlen(r->warning);
    if (n + 8 >= sizeof r->warning) {
        return;
    }
    if (n) {
        n += (size_t)snprintf(r->warning + n, sizeof r->warning - n, "; ");
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->warning + n, sizeof r->warning - n, fmt, ap);
    va_end(ap);
    /* a header value: no control characters or quotes */
    for (char *c = r->warning; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == '"') {
            *c = ' ';
        }
    }
}

void
http__head(http_req *r, int status, const char *content_type, long long len, const char *extra)
{
    /* CivetWeb's response API (not raw writes) so that it knows the status and length and keeps
     * the connection alive. */
    char hdr[4096];
    size_t at = 0;
    hdr[0] = '\0';
    r->status = status;
    at += (size_t)snprintf(hdr, sizeof hdr, "%s%s", http__security_headers(),
                           r->ri && r->ri->is_ssl ? "Strict-Transport-Security: max-age=31536000\r\n" : "");
    if (content_type) {
        at += (size_t)snprintf(hdr + at, sizeof hdr - at, "Content-Type: %s\r\n", content_type);
    }
    if (len >= 0 && at < sizeof hdr) {
        at += (size_t)snprintf(hdr + at, sizeof hdr - at, "Content-Length: %lld\r\n", len);
    }
    if (r->warning[0] && at < sizeof hdr) {
        at += (size_t)snprintf(hdr + at, sizeof hdr - at, "Warning: 299 tessera \"%s\"\r\n",
                               r->warning);
    }
    if (at < sizeof hdr) {
        at += cors_headers(r, hdr + at, sizeof hdr - at);
    }
    if (extra && at < sizeof hdr) {
        at += (size_t)snprintf(hdr + at, sizeof hdr - at, "%s", extra);
    }
    if (at >= sizeof hdr) {
        hdr[sizeof hdr - 1] = '\0';
    }
    mg_response_header_start(r->conn, status);
    mg_response_header_add_lines(r->conn, hdr);
    mg_response_header_send(r->conn);
}

/* Whether the client takes gzip (Accept-Encoding lists it without q=0). */
static int
accepts_gzip(http_req *r)
{
    const char *ae = mg_get_header(r->conn, "Accept-Encoding");
    const char *g = ae ? strcasestr(ae, "gzip") : NULL;
    if (!g) {
        return 0;
    }
    g += 4;
    while (*g == ' ') {
        g++;
    }
    if (*g == ';') {
        const char *q = strcasestr(g, "q=");
        if (q && strtod(q + 2, NULL) <= 0.0) {
            return 0;
        }
    }
    return 1;
}

/* Text worth compressing: JSON and XML bodies (DICOM JSON metadata of a large series is
 * hundreds of KB and shrinks about tenfold). Images are compressed already. */
static int
compressible(const char *content_type, size_t len)
{
    return content_type && len >= 1024 &&
           (strstr(content_type, "json") || strstr(content_type, "xml") ||
            strncmp(content_type, "text/", 5) == 0);
}

/* gzip of body at zlib level 1 (fast: ~300 MB/s). Returns a malloc'd buffer, or NULL. */
static unsigned char *
gzip_body(const void *body, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return NULL;
    }
    uLong cap = deflateBound(&z, (uLong)len) + 32;
    unsigned char *out = malloc(cap);
    if (out) {
        z.next_in = (Bytef *)(uintptr_t)body;
        z.avail_in = (uInt)len;
        z.next_out = out;
        z.avail_out = (uInt)cap;
        if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
            free(out);
            out = NULL;
        } else {
            *out_len = (size_t)z.total_out;
        }
    }
    deflateEnd(&z);
    return out;
}

void
http__send(http_req *r, int status, const char *content_type, const void *body, size_t len,
           const char *extra)
{
    unsigned char *gz = NULL;
    size_t gz_len = 0;
    if (compressible(content_type, len) && len < ((size_t)1 << 31)) {
        if (accepts_gzip(r)) {
            gz = gzip_body(body, len, &gz_len);
        }
        /* the representation depends on Accept-Encoding whether compressed this time or not */
        char hdr[2048];
        snprintf(hdr, sizeof hdr, "%s%sVary: Accept-Encoding\r\n", extra ? extra : "",
                 gz ? "Content-Encoding: gzip\r\n" : "");
        if (gz) {
            body = gz;
            len = gz_len;
        }
        http__head(r, status, content_type, (long long)len, hdr);
    } else {
        http__head(r, status, content_type, (long long)len, extra);
    }
    if (len && strcmp(r->method, "HEAD") != 0) {
        mg_write(r->conn, body, len);
    }
    free(gz);
}

static void
json_escape(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

void
http__error(http_req *r, int status, const char *fmt, ...)
{
    char msg[512], esc[1100], body[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_escape(esc, sizeof esc, msg);
    int n = snprintf(body, sizeof body, "{\"status\":%d,\"error\":\"%s\",\"message\":\"%s\"}\n",
                     status, reason(status), esc);
    http__send(r, status, "application/json", body, (size_t)n, NULL);
}

void
http__error_status(http_req *r, int code, const tsr_err *err)
{
    int status = tsr_status_http(code);
    http__error(r, status, "%s", err && err->msg[0] ? err->msg : tsr_status_message(code));
}

/* ---------------------------------------------------------------- helpers */

static int
hexv(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int
http__param(const char *qs, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = qs ? qs : "";
    while (*p) {
        const char *end = p + strcspn(p, "&");
        if ((size_t)(end - p) >= nl && strncmp(p, name, nl) == 0 &&
            (p[nl] == '=' || p + nl == end)) {
            const char *v = p + nl + (p[nl] == '=');
            size_t o = 0;
            while (v < end) {
                int c = (unsigned char)*v;
                if (c == '%') {
                    if (end - v < 3 || hexv(v[1]) < 0 || hexv(v[2]) < 0) {
                        return -1;
                    }
                    c = hexv(v[1]) * 16 + hexv(v[2]);
                    v += 3;
                    if (c == 0) {
                        return -1;
                    }
                } else {
                    v++;
                }
                if (o + 1 >= cap) {
                    return -1;
                }
                out[o++] = (char)c;
            }
            out[o] = '\0';
            return 1;
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

void
http__boundary(char out[40])
{
    uint8_t rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        uint64_t t = tsr_now_ns();
        memcpy(rnd, &t, 8);
        memcpy(rnd + 8, &t, 8);
    }
    for (int i = 0; i < 16; i++) {
        snprintf(out + 2 * i, 3, "%02x", rnd[i]);
    }
}

/* The base URL for RetrieveURL and BulkDataURI: the configured public URL, else this request's
 * Host (checked to be a plausible host[:port]). */
static void
request_base(http_req *r)
{
    if (r->srv->public_url[0]) {
        snprintf(r->base, sizeof r->base, "%s", r->srv->public_url);
        snprintf(r->origin, sizeof r->origin, "%.599s", r->srv->public_url);
        size_t n = strlen(r->origin);
        if (n >= 9 && strcmp(r->origin + n - 9, "/dicomweb") == 0) {
            r->origin[n - 9] = '\0';
        }
        return;
    }
    const char *host = mg_get_header(r->conn, "Host");
    int ok = host && host[0] && strlen(host) < 256;
    for (const char *c = host; ok && *c; c++) {
        ok = isalnum((unsigned char)*c) || strchr(".-:[]_", *c);
    }
    if (ok) {
        snprintf(r->origin, sizeof r->origin, "%s://%s", r->ri->is_ssl ? "https" : "http", host);
    } else {
        snprintf(r->origin, sizeof r->origin, "http://127.0.0.1:%d", r->srv->port);
    }
    snprintf(r->base, sizeof r->base, "%.600s/dicomweb", r->origin);
}

/* ---------------------------------------------------------------- routing */

/* Splits the path after /dicomweb into segments (at most `max`). */
static int
split(const char *path, char seg[][260], int max)
{
    int n = 0;
    const char *p = path;
    while (*p == '/') {
        p++;
    }
    while (*p && n < max) {
        size_t k = strcspn(p, "/");
        if (k >= 260) {
            return -1;
        }
        memcpy(seg[n], p, k);
        seg[n][k] = '\0';
        n++;
        p += k;
        while (*p == '/') {
            p++;
        }
    }
    return *p ? -1 : n;
}

static int
take_uid(http_req *r, const char *seg, char *dst, const char *what)
{
    size_t n = strlen(seg);
    if (!dcm_uid_valid(seg, n)) {
        http__error(r, 400, "%s '%.80s' is not a valid UID (digits and dots, at most 64)", what,
                    seg);
        return -1;
    }
    memcpy(dst, seg, n + 1);
    return 0;
}

static void
method_not_allowed(http_req *r, const char *allow)
{
    char extra[96];
    snprintf(extra, sizeof extra, "Allow: %s\r\n", allow);
    char body[256];
    int n = snprintf(body, sizeof body,
                     "{\"status\":405,\"error\":\"Method Not Allowed\",\"message\":\"%s is not "
                     "allowed here; allowed: %s\"}\n",
                     r->method, allow);
    http__send(r, 405, "application/json", body, (size_t)n, extra);
}

static int
is_get(http_req *r)
{
    if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0) {
        return 1;
    }
    method_not_allowed(r, "GET, HEAD");
    return 0;
}

/* What a path needs beyond reading (WADO-RS DICOM, raw frames and bulk data: download; STOW:
 * write), and, for a share session, whether its UIDs are inside the shared study. 0 to go on,
 * -1 after a 403/404. Malformed UIDs are left to the router's 400. */
static int
route_rights(http_req *r, char seg[][260], int n)
{
    if (strcmp(r->method, "POST") == 0) {
        return http__require(r, HTTP_RIGHT_WRITE);
    }
    if (strcmp(seg[0], "studies") != 0 || n < 2) {
        return 0;
    }
    const char *study = seg[1];
    const char *series = n >= 4 && strcmp(seg[2], "series") == 0 ? seg[3] : "";
    const char *instance = series[0] && n >= 6 && strcmp(seg[4], "instances") == 0 ? seg[5] : "";
    if (!dcm_uid_valid(study, strlen(study)) ||
        (series[0] && !dcm_uid_valid(series, strlen(series))) ||
        (instance[0] && !dcm_uid_valid(instance, strlen(instance)))) {
        return 0;
    }
    if (http__scope(r, study, series, instance) != 0) {
        return -1;
    }
    /* a link to some series of a study: study-wide resources would show the others */
    int qido = n == 3 && (strcmp(seg[2], "series") == 0 || strcmp(seg[2], "instances") == 0);
    if (r->who.kind == ACCESS_K_SHARE && r->who.share.n_series > 0 && !series[0] && !qido) {
        http__error(r, 403, "this link shares some series of the study: ask for them by series");
        return -1;
    }
    /* the whole study, series or instance as DICOM */
    int download = n == 2 || (series[0] && n == 4) || (instance[0] && n == 6);
    for (int i = 2; i < n; i++) {
        if (strcmp(seg[i], "bulkdata") == 0 || (strcmp(seg[i], "frames") == 0 && i == n - 2)) {
            download = 1;
        }
    }
    return download ? http__require(r, HTTP_RIGHT_DOWNLOAD) : 0;
}

static void
route(http_req *r, const char *path)
{
    char seg[16][260];
    int n = split(path, seg, 16);
    if (n <= 0) {
        http__error(r, n < 0 ? 400 : 404, n < 0 ? "path too long or too deep"
                                                : "no resource here; try /dicomweb/studies");
        return;
    }
    if (route_rights(r, seg, n) != 0) {
        return;
    }
    if (strcmp(seg[0], "series") == 0 && n == 1) {
        if (is_get(r)) {
            http__qido(r, STORE_SERIES);
        }
        return;
    }
    if (strcmp(seg[0], "instances") == 0 && n == 1) {
        if (is_get(r)) {
            http__qido(r, STORE_INSTANCE);
        }
        return;
    }
    if (strcmp(seg[0], "studies") != 0) {
        http__error(r, 404, "no resource /dicomweb/%.80s", seg[0]);
        return;
    }
    if (n == 1) {
        if (strcmp(r->method, "POST") == 0) {
            http__stow(r);
        } else if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0) {
            http__qido(r, STORE_STUDY);
        } else {
            method_not_allowed(r, "GET, HEAD, POST");
        }
        return;
    }
    if (take_uid(r, seg[1], r->study, "study") != 0) {
        return;
    }
    if (n == 2) {
        if (strcmp(r->method, "POST") == 0) {
            http__stow(r);
        } else if (is_get(r)) {
            http__retrieve(r);
        }
        return;
    }
    int i = 2;
    if (strcmp(seg[i], "series") == 0) {
        if (n == 3) {
            if (is_get(r)) {
                http__qido(r, STORE_SERIES);
            }
            return;
        }
        if (take_uid(r, seg[3], r->series, "series") != 0) {
            return;
        }
        i = 4;
        if (n == 4) {
            if (is_get(r)) {
                http__retrieve(r);
            }
            return;
        }
        if (strcmp(seg[i], "instances") == 0) {
            if (n == 5) {
                if (is_get(r)) {
                    http__qido(r, STORE_INSTANCE);
                }
                return;
            }
            if (take_uid(r, seg[5], r->instance, "instance") != 0) {
                return;
            }
            i = 6;
            if (n == 6) {
                if (is_get(r)) {
                    http__retrieve(r);
                }
                return;
            }
        }
    } else if (strcmp(seg[i], "instances") == 0 && n == 3) {
        if (is_get(r)) {
            http__qido(r, STORE_INSTANCE);
        }
        return;
    }
    if (!is_get(r)) {
        return;
    }
    const char *res = seg[i];
    int rest = n - i - 1;
    if (strcmp(res, "metadata") == 0 && rest == 0) {
        http__metadata(r);
    } else if ((strcmp(res, "volume") == 0 && rest == 0) ||
               (strcmp(res, "mpr") == 0 && rest >= 1)) {
        char tail[600];
        size_t at = 0;
        tail[0] = '\0';
        for (int k = i + 1; k < n && at < sizeof tail; k++) {
            at += (size_t)snprintf(tail + at, sizeof tail - at, "%s%.260s", k > i + 1 ? "/" : "",
                                   seg[k]);
        }
        http__mpr(r, res, tail);
    } else if (strcmp(res, "rendered") == 0 && rest == 0) {
        http__rendered(r, 0);
    } else if (strcmp(res, "thumbnail") == 0 && rest == 0) {
        http__rendered(r, 1);
    } else if (strcmp(res, "frames") == 0 && r->instance[0] && rest >= 2 &&
               strcmp(seg[i + 2], "tiles") == 0) {
        snprintf(r->frames, sizeof r->frames, "%.255s", seg[i + 1]);
        char tail[600];
        size_t at = 0;
        for (int k = i + 2; k < n && at < sizeof tail; k++) {
            at += (size_t)snprintf(tail + at, sizeof tail - at, "%s%.260s", k > i + 2 ? "/" : "",
                                   seg[k]);
        }
        http__tiles(r, tail);
    } else if (strcmp(res, "frames") == 0 && r->instance[0] && rest >= 1 && rest <= 2) {
        snprintf(r->frames, sizeof r->frames, "%.255s", seg[i + 1]);
        if (rest == 1) {
            http__frames(r);
        } else if (strcmp(seg[i + 2], "rendered") == 0) {
            http__rendered(r, 0);
        } else if (strcmp(seg[i + 2], "thumbnail") == 0) {
            http__rendered(r, 1);
        } else {
            http__error(r, 404, "no resource '%.80s' under frames", seg[i + 2]);
        }
    } else if (strcmp(res, "bulkdata") == 0 && r->instance[0] && rest >= 1) {
        size_t at = 0;
        for (int k = i + 1; k < n && at < sizeof r->bulk; k++) {
            at += (size_t)snprintf(r->bulk + at, sizeof r->bulk - at, "%s%s", k > i + 1 ? "/" : "",
                                   seg[k]);
        }
        http__bulkdata(r);
    } else {
        http__error(r, 404, "no resource '%.80s' here", res);
    }
}

void
http__preflight(http_req *r)
{
    char probe[512];
    if (cors_headers(r, probe, sizeof probe) == 0) {
        /* not a cross-origin request we allow: a plain OPTIONS answer, no CORS grant */
        http__head(r, 204, NULL, -1, "Allow: GET, HEAD, POST, OPTIONS\r\n");
        return;
    }
    char extra[512];
    const char *want = mg_get_header(r->conn, "Access-Control-Request-Headers");
    int ok_headers = want && strlen(want) < 256;
    for (const char *c = want; ok_headers && *c; c++) {
        ok_headers = isalnum((unsigned char)*c) || strchr("-_, ", *c);
    }
    snprintf(extra, sizeof extra,
             "Access-Control-Allow-Methods: GET, HEAD, POST, OPTIONS\r\n"
             "Access-Control-Allow-Headers: %s\r\nAccess-Control-Max-Age: 600\r\n",
             ok_headers ? want : "Accept, Content-Type, Authorization");
    http__head(r, 204, NULL, -1, extra);
}

void
http__req_init(http_req *r, struct mg_connection *conn, http_server *srv)
{
    memset(r, 0, sizeof *r);
    r->conn = conn;
    r->srv = srv;
    r->ri = mg_get_request_info(conn);
    r->method = r->ri->request_method;
    r->query = r->ri->query_string ? r->ri->query_string : "";
    request_base(r);
}

static int
dicomweb_handler(struct mg_connection *conn, void *cbdata)
{
    http_req r;
    http__req_init(&r, conn, cbdata);
    const char *uri = r.ri->local_uri_raw ? r.ri->local_uri_raw : r.ri->local_uri;
    uint64_t t0 = tsr_now_ns();
    if (strcmp(r.method, "OPTIONS") == 0) {
        http__preflight(&r);
    } else if (http__authorize(&r, HTTP_RIGHT_READ) != 0) {
        /* answered: 401, 403 or 410 */
    } else if (strncmp(uri, "/dicomweb", 9) == 0 && (uri[9] == '/' || uri[9] == '\0')) {
        route(&r, uri + 9);
    } else {
        http__error(&r, 404, "not found");
    }
    http__audit_request(&r);
    TSR_LOG(TSR_LOG_DEBUG, "%s %s %.1f ms", r.method, uri, (double)(tsr_now_ns() - t0) / 1e6);
    return 1;
}

/* Every handler runs through this: it counts the requests in handlers (http_drain waits for
 * them) and turns new ones away while the server stops. CivetWeb's own stop would abort a
 * request's body reads, cutting an upload in flight. */
static int
counted_handler(struct mg_connection *conn, void *cbdata)
{
    struct http_route *rt = cbdata;
    http_server *s = rt->srv;
    __atomic_add_fetch(&s->inflight, 1, __ATOMIC_SEQ_CST);
    int rc = 1;
    if (__atomic_load_n(&s->draining, __ATOMIC_SEQ_CST)) {
        http_req r;
        http__req_init(&r, conn, s);
        char body[160];
        int n = snprintf(body, sizeof body,
                         "{\"status\":503,\"error\":\"Service Unavailable\",\"message\":\"the "
                         "server is stopping; try again in a moment\"}\n");
        http__send(&r, 503, "application/json", body, (size_t)n,
                   "Retry-After: 5\r\nConnection: close\r\n");
    } else {
        rc = rt->fn(conn, s);
    }
    __atomic_sub_fetch(&s->inflight, 1, __ATOMIC_SEQ_CST);
    return rc;
}

static void
route_add(http_server *s, const char *uri, int (*fn)(struct mg_connection *, void *))
{
    for (size_t i = 0; i < sizeof s->routes / sizeof s->routes[0]; i++) {
        if (!s->routes[i].fn) {
            s->routes[i].srv = s;
            s->routes[i].fn = fn;
            mg_set_request_handler(s->ctx, uri, counted_handler, &s->routes[i]);
            return;
        }
    }
}

int
http_drain(http_server *s, int timeout_ms)
{
    __atomic_store_n(&s->draining, 1, __ATOMIC_SEQ_CST);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (__atomic_load_n(&s->inflight, __ATOMIC_SEQ_CST) == 0) {
            return 0;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return __atomic_load_n(&s->inflight, __ATOMIC_SEQ_CST);
}

static int
log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    TSR_LOG(TSR_LOG_WARN, "http: %s", message);
    return 1;
}

static void
init_library(void)
{
    mg_init_library(0);
}

int
http_start(const http_opts *opts, store *st, http_server **out, tsr_err *err)
{
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        return tsr_err_set(err, TSR_ENOMEM, "http: out of memory");
    }
    s->st = st;
    s->opts = *opts;
    if (!s->opts.max_upload) {
        s->opts.max_upload = (uint64_t)2 << 30;
    }
    if (!s->opts.qido_max) {
        s->opts.qido_max = 1000;
    }
    if (!s->opts.thumbnail_size) {
        s->opts.thumbnail_size = 192;
    }
    if (!s->opts.tile_size) {
        s->opts.tile_size = RND_TILE_DEFAULT;
    }
    if (s->opts.session_hours <= 0) {
        s->opts.session_hours = 12;
    }
    if (s->opts.share_max_days <= 0) {
        s->opts.share_max_days = 30;
    }
    s->opts.admin_token = NULL; /* kept as a hash only */
    http__auth_configure(s, opts->admin_token);
    int rc = http__imaging_create(s->opts.cache_bytes ? s->opts.cache_bytes : (size_t)512 << 20,
                                  &s->im, err);
    if (rc == TSR_OK) {
        rc = http__pool_create(0, 64, &s->pool, err);
        if (rc != TSR_OK) {
            http__imaging_destroy(s->im);
        }
    }
    if (rc != TSR_OK) {
        free(s);
        return rc;
    }
    snprintf(s->public_url, sizeof s->public_url, "%s", opts->public_url ? opts->public_url : "");
    size_t pl = strlen(s->public_url);
    while (pl > 0 && s->public_url[pl - 1] == '/') {
        s->public_url[--pl] = '\0';
    }
    snprintf(s->cors, sizeof s->cors, "%s", opts->cors_origins ? opts->cors_origins : "");

    char threads[16], timeout[16];
    snprintf(threads, sizeof threads, "%d", opts->threads > 0 ? opts->threads : 128);
    snprintf(timeout, sizeof timeout, "%d",
             opts->request_timeout_ms > 0 ? opts->request_timeout_ms : 30000);
    const char *options[48];
    int k = 0;
    /* HTTPS: every listening port gets CivetWeb's 's' suffix */
    char listen[600];
    snprintf(listen, sizeof listen, "%s",
             opts->listen && opts->listen[0] ? opts->listen : "127.0.0.1:8080");
    int tls = opts->tls_cert && opts->tls_cert[0] && tsr_ssl_shim_loaded();
    if (tls) {
        char with_s[700];
        size_t at = 0;
        for (const char *p = listen; *p && at < sizeof with_s - 4;) {
            size_t n = strcspn(p, ",");
            at += (size_t)snprintf(with_s + at, sizeof with_s - at, "%s%.*s%s", at ? "," : "",
                                   (int)n, p, n && p[n - 1] != 's' ? "s" : "");
            p += n + (p[n] == ',');
        }
        snprintf(listen, sizeof listen, "%.590s", with_s);
    }
    options[k++] = "listening_ports";
    options[k++] = listen;
    options[k++] = "num_threads";
    options[k++] = threads;
    options[k++] = "request_timeout_ms";
    options[k++] = timeout;
    options[k++] = "enable_keep_alive";
    options[k++] = "yes";
    options[k++] = "keep_alive_timeout_ms";
    options[k++] = "30000";
    options[k++] = "tcp_nodelay";
    options[k++] = "1";
    /* CivetWeb answers CORS itself with "*" by default; Tessera decides (--cors-origins). */
    options[k++] = "access_control_allow_origin";
    options[k++] = "";
    options[k++] = "access_control_allow_methods";
    options[k++] = "";
    options[k++] = "access_control_allow_headers";
    options[k++] = "";
    /* static files (the viewer) carry the same security headers as the API's answers */
    char static_headers[1024];
    snprintf(static_headers, sizeof static_headers, "%.*s",
             (int)strlen(http__security_headers()) - 2, http__security_headers());
    options[k++] = "additional_header";
    options[k++] = static_headers;
    if (tls) {
        options[k++] = "ssl_certificate";
        options[k++] = opts->tls_cert;
        options[k++] = "strict_transport_security_max_age";
        options[k++] = "31536000";
        options[k++] = "ssl_protocol_version";
        options[k++] = "4"; /* TLS 1.2 and newer */
    }
    /* request line and headers at most 16 KiB (CivetWeb answers 431 or closes) */
    options[k++] = "max_request_size";
    options[k++] = "16384";
    if (opts->web_root && opts->web_root[0]) {
        options[k++] = "document_root";
        options[k++] = opts->web_root;
        options[k++] = "enable_directory_listing";
        options[k++] = "no";
        /* dot files (.git, editor swap files) are never served */
        options[k++] = "hide_files_patterns";
        options[k++] = "**/.*";
    }
    options[k] = NULL;

    /* CivetWeb needs its library state (thread keys) before the first mg_start. */
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_library);
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.log_message = log_message;
    char errtxt[256] = "";
    struct mg_error_data ed = {0};
    ed.text = errtxt;
    ed.text_buffer_size = sizeof errtxt;
    struct mg_init_data init = {0};
    init.callbacks = &cb;
    init.user_data = s;
    init.configuration_options = options;
    s->ctx = mg_start2(&init, &ed);
    if (!s->ctx) {
        http__pool_destroy(s->pool);
        http__imaging_destroy(s->im);
        free(s);
        return tsr_err_set(err, TSR_EIO, "cannot start the HTTP server on %s: %s",
                           options[1], errtxt[0] ? errtxt : "unknown error");
    }
    struct mg_server_port ports[4];
    int np = mg_get_server_ports(s->ctx, 4, ports);
    s->port = np > 0 ? ports[0].port : 0;
    route_add(s, "/dicomweb", dicomweb_handler);
    route_add(s, "/api/", http__api_handler);
    route_add(s, "/iiif", http__iiif_handler);
    route_add(s, "/metrics$", http__stats_handler);
    route_add(s, "/stats$", http__stats_handler);
    if (opts->web_root && opts->web_root[0]) {
        static const char *const k_static[] = {"/$",           "/js/",         "/index.html$",
                                               "/login.html$", "/share.html$", "/admin.html$",
                                               "/viewer.css$", "/favicon.svg$"};
        for (size_t i = 0; i < sizeof k_static / sizeof k_static[0]; i++) {
            route_add(s, k_static[i], http__static_handler);
        }
    }
    *out = s;
    return TSR_OK;
}

int
http_port(const http_server *s)
{
    return s->port;
}

void
http_stop(http_server *s)
{
    if (!s) {
        return;
    }
    mg_stop(s->ctx);
    http__pool_destroy(s->pool);
    http__imaging_destroy(s->im);
    free(s);
}
