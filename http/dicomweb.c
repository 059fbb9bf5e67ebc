/* SPDX-License-Identifier: MIT */
/* dicomweb.c: QIDO-RS search, WADO-RS retrieve (instances as stored, metadata from the index,
 * frames, bulk data) (PS3.18 10.4, 10.6). */
#define _GNU_SOURCE
#include "http_internal.h"
#include "negotiate.h"
#include "rnd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- negotiation */

int
http__negotiate(http_req *r, const char *const *offered, int n, int *chosen, neg_list *keep)
{
    char param[512];
    int has = http__param(r->query, "accept", param, sizeof param);
    if (has < 0) {
        http__error(r, 400, "malformed accept query parameter");
        return -1;
    }
    neg_list l;
    tsr_err err = {0};
    if (neg_parse_request(mg_get_header(r->conn, "Accept"), has ? param : NULL, &l, &err) !=
        TSR_OK) {
        neg_list_free(&l);
        http__error(r, 400, "%s", err.msg);
        return -1;
    }
    if (neg_choose(&l, offered, n, chosen) != 0) {
        char list[512] = "";
        size_t at = 0;
        for (int i = 0; i < n && at < sizeof list; i++) {
            at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", i ? ", " : "", offered[i]);
        }
        neg_list_free(&l);
        http__error(r, 406, "none of the acceptable media types can be produced here; offered: %s",
                    list);
        return -1;
    }
    if (keep) {
        *keep = l;
    } else {
        neg_list_free(&l);
    }
    return 0;
}

/* ---------------------------------------------------------------- QIDO-RS */

void
http__qido(http_req *r, store_level level)
{
    static const char *const offered[] = {"application/dicom+json", "application/json"};
    int chosen;
    if (http__negotiate(r, offered, 2, &chosen, NULL) != 0) {
        return;
    }
    store_query q;
    tsr_err err = {0};
    int rc = store_query_parse(level, r->query, &q, &err);
    if (rc != TSR_OK) {
        http__error(r, 400, "%s", err.msg);
        return;
    }
    snprintf(q.study, sizeof q.study, "%s", r->study);
    snprintf(q.series, sizeof q.series, "%s", r->series);
    if (http__scope_query(r, &q) != 0) {
        store_query_free(&q);
        return;
    }
    if (r->study[0]) {
        rc = store_exists(r->srv->st, r->study, r->series[0] ? r->series : NULL, &err);
        if (rc != TSR_OK) {
            store_query_free(&q);
            http__error_status(r, rc, &err);
            return;
        }
    }
    char *json = NULL;
    size_t len = 0;
    long remaining = 0;
    rc = store_query_run(r->srv->st, &q, r->base, r->srv->opts.qido_max, &json, &len, &remaining,
                         &err);
    if (q.warning[0]) {
        http__warn(r, "%s", q.warning);
    }
    store_query_free(&q);
    if (rc != TSR_OK) {
        http__error_status(r, rc, &err);
        return;
    }
    if (remaining > 0) {
        http__warn(r, "There are %ld additional results that can be requested", remaining);
    }
    http__send(r, 200, offered[chosen], json, len, NULL);
    free(json);
}

/* ---------------------------------------------------------------- retrieve */

typedef struct part_list {
    store_instance *v;
    int n, cap;
} part_list;

static int
collect(void *user, const store_instance *inst)
{
    part_list *l = user;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        store_instance *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) {
            return TSR_ENOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *inst;
    return 0;
}

static int
send_file(struct mg_connection *conn, const char *path, uint64_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    enum { CHUNK = 1 << 18 };
    char *buf = malloc(CHUNK);
    if (!buf) {
        close(fd);
        return -1;
    }
    uint64_t left = size;
    while (left > 0) {
        ssize_t n = read(fd, buf, left < CHUNK ? (size_t)left : CHUNK);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0 || mg_write(conn, buf, (size_t)n) != (int)n) {
            close(fd);
            free(buf);
            return -1;
        }
        left -= (uint64_t)n;
    }
    close(fd);
    free(buf);
    return 0;
}

void
http__retrieve(http_req *r)
{
    static const char *const offered[] = {"multipart/related; type=\"application/dicom\"",
                                          "application/dicom"};
    int chosen;
    neg_list l;
    if (http__negotiate(r, offered, 2, &chosen, &l) != 0) {
        return;
    }
    const neg_range *best = neg_best_range(&l, offered[chosen]);
    const char *ts = best ? neg_transfer_syntax(best) : NULL;
    char want_ts[80] = "";
    if (ts) {
        snprintf(want_ts, sizeof want_ts, "%s", ts);
    }
    neg_list_free(&l);

    part_list parts = {0};
    tsr_err err = {0};
    int rc;
    if (r->instance[0]) {
        store_instance inst;
        rc = store_find_instance(r->srv->st, r->study, r->series, r->instance, &inst, &err);
        if (rc == TSR_OK) {
            rc = collect(&parts, &inst);
        }
    } else {
        rc = store_each_instance(r->srv->st, r->study, r->series[0] ? r->series : NULL, collect,
                                 &parts, &err);
    }
    if (rc != TSR_OK) {
        free(parts.v);
        http__error_status(r, rc, &err);
        return;
    }
    if (chosen == 1 && parts.n != 1) {
        free(parts.v);
        http__error(r, 406, "application/dicom (single part) is only available for one instance");
        return;
    }
    if (want_ts[0] && strcmp(want_ts, "*") != 0) {
        for (int i = 0; i < parts.n; i++) {
            if (strcmp(parts.v[i].transfer_syntax, want_ts) != 0) {
                http__warn(r, "instances are sent in their stored transfer syntax; "
                              "transcoding to %s is not supported",
                           want_ts);
                break;
            }
        }
    }
    /* sizes from the files themselves, so Content-Length is exact */
    for (int i = 0; i < parts.n; i++) {
        struct stat sb;
        if (stat(parts.v[i].path, &sb) != 0) {
            TSR_LOG(TSR_LOG_ERROR, "retrieve: %s: %s", parts.v[i].path, strerror(errno));
            free(parts.v);
            http__error(r, 500, "a stored file is missing; the administrator has been told");
            return;
        }
        parts.v[i].size = (uint64_t)sb.st_size;
    }
    if (chosen == 1) {
        http__head(r, 200, "application/dicom", (long long)parts.v[0].size, NULL);
        if (strcmp(r->method, "HEAD") != 0) {
            send_file(r->conn, parts.v[0].path, parts.v[0].size);
        }
        free(parts.v);
        return;
    }
    char boundary[40], ctype[160];
    http__boundary(boundary);
    snprintf(ctype, sizeof ctype, "multipart/related; type=\"application/dicom\"; boundary=%s",
             boundary);
    long long total = 0;
    char ph[256];
    for (int i = 0; i < parts.n; i++) {
        total += snprintf(ph, sizeof ph, "--%s\r\nContent-Type: application/dicom; "
                                         "transfer-syntax=%s\r\n\r\n",
                          boundary, parts.v[i].transfer_syntax);
        total += (long long)parts.v[i].size + 2;
    }
    total += (long long)strlen(boundary) + 6;
    http__head(r, 200, ctype, total, NULL);
    if (strcmp(r->method, "HEAD") != 0) {
        for (int i = 0; i < parts.n; i++) {
            int n = snprintf(ph, sizeof ph,
                             "--%s\r\nContent-Type: application/dicom; transfer-syntax=%s\r\n\r\n",
                             boundary, parts.v[i].transfer_syntax);
            if (mg_write(r->conn, ph, (size_t)n) != n ||
                send_file(r->conn, parts.v[i].path, parts.v[i].size) != 0 ||
                mg_write(r->conn, "\r\n", 2) != 2) {
                TSR_LOG(TSR_LOG_WARN, "retrieve: client went away or %s unreadable",
                        parts.v[i].path);
                break;
            }
        }
        int n = snprintf(ph, sizeof ph, "--%s--\r\n", boundary);
        mg_write(r->conn, ph, (size_t)n);
    }
    free(parts.v);
}

/* ---------------------------------------------------------------- metadata */

typedef struct growbuf {
    char *p;
    size_t len, cap;
    int oom;
} growbuf;

static void
gb_add(growbuf *g, const char *s, size_t n)
{
    if (g->oom) {
        return;
    }
    if (g->len + n > g->cap) {
        size_t cap = g->cap ? g->cap : 1 << 16;
        while (cap < g->len + n) {
            cap *= 2;
        }
        char *p = realloc(g->p, cap);
        if (!p) {
            g->oom = 1;
            return;
        }
        g->p = p;
        g->cap = cap;
    }
    memcpy(g->p + g->len, s, n);
    g->len += n;
}

typedef struct meta_ctx {
    growbuf g;
    const char *base;
    size_t base_len;
    int n;
} meta_ctx;

/* Appends one stored instance JSON, making its relative BulkDataURI values absolute. */
static int
add_meta(void *user, const char *json, size_t len)
{
    meta_ctx *m = user;
    static const char key[] = "\"BulkDataURI\":\"";
    gb_add(&m->g, m->n++ ? "," : "[", 1);
    const char *p = json, *end = json + len;
    while (p < end) {
        const char *hit = memmem(p, (size_t)(end - p), key, sizeof key - 1);
        if (!hit) {
            gb_add(&m->g, p, (size_t)(end - p));
            break;
        }
        hit += sizeof key - 1;
        gb_add(&m->g, p, (size_t)(hit - p));
        gb_add(&m->g, m->base, m->base_len);
        p = hit;
    }
    return m->g.oom ? TSR_ENOMEM : 0;
}

void
http__metadata(http_req *r)
{
    static const char *const offered[] = {"application/dicom+json", "application/json"};
    int chosen;
    if (http__negotiate(r, offered, 2, &chosen, NULL) != 0) {
        return;
    }
    meta_ctx m = {{0}, r->base, strlen(r->base), 0};
    tsr_err err = {0};
    int rc = store_each_metadata(r->srv->st, r->study, r->series[0] ? r->series : NULL,
                                 r->instance[0] ? r->instance : NULL, add_meta, &m, &err);
    if (rc == TSR_OK && r->instance[0] && r->series[0]) {
        /* the instance must be in the series given by the path */
        store_instance inst;
        rc = store_find_instance(r->srv->st, r->study, r->series, r->instance, &inst, &err);
    }
    if (rc != TSR_OK) {
        free(m.g.p);
        if (rc == TSR_ENOMEM) {
            http__error(r, 503, "out of memory");
        } else {
            http__error_status(r, rc, &err);
        }
        return;
    }
    gb_add(&m.g, "]", 1);
    if (m.g.oom) {
        free(m.g.p);
        http__error(r, 503, "out of memory");
        return;
    }
    http__send(r, 200, offered[chosen], m.g.p, m.g.len, NULL);
    free(m.g.p);
}

/* ---------------------------------------------------------------- frames and bulk data */

/* Parses "1,3,5" (1-based) into idx (0-based). Returns the count, or -1 with a message. */
static int
parse_frames(const char *s, uint32_t frames, uint32_t *idx, int max, char *msg, size_t cap)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        if (*p < '0' || *p > '9') {
            snprintf(msg, cap, "frame list '%.80s' is not comma-separated numbers", s);
            return -1;
        }
        unsigned long v = strtoul(p, &end, 10);
        if (v == 0 || (*end && *end != ',')) {
            snprintf(msg, cap, "frame list '%.80s': frame numbers start at 1", s);
            return -1;
        }
        if (v > frames) {
            snprintf(msg, cap, "frame %lu does not exist: the instance has %u frame%s", v, frames,
                     frames == 1 ? "" : "s");
            return -2;
        }
        if (n == max) {
            snprintf(msg, cap, "more than %d frames requested", max);
            return -1;
        }
        idx[n++] = (uint32_t)v - 1;
        p = *end ? end + 1 : end;
        if (*end == ',' && !*p) {
            snprintf(msg, cap, "frame list '%.80s' ends with a comma", s);
            return -1;
        }
    }
    if (n == 0) {
        snprintf(msg, cap, "empty frame list");
        return -1;
    }
    return n;
}

static int
native_ts(const char *ts)
{
    return strcmp(ts, "1.2.840.10008.1.2") == 0 || strcmp(ts, "1.2.840.10008.1.2.1") == 0 ||
           strcmp(ts, "1.2.840.10008.1.2.2") == 0;
}

/* A mapped stored file. */
typedef struct mapped {
    const uint8_t *p;
    size_t len;
} mapped;

static int
map_path(const char *path, mapped *m)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || sb.st_size == 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        return -1;
    }
    m->p = p;
    m->len = (size_t)sb.st_size;
    return 0;
}

static void
unmap(mapped *m)
{
    if (m->p) {
        munmap((void *)m->p, m->len);
    }
}

static void
swap_words(uint8_t *p, size_t n, int width)
{
    for (size_t i = 0; i + (size_t)width <= n; i += (size_t)width) {
        for (int a = 0, b = width - 1; a < b; a++, b--) {
            uint8_t t = p[i + a];
            p[i + a] = p[i + b];
            p[i + b] = t;
        }
    }
}

static int
vr_width(const char *vr)
{
    static const char *w2 = "OW US SS", *w4 = "OL UL SL FL OF", *w8 = "OD FD UV SV OV";
    char k[3] = {vr[0], vr[1], 0};
    return strstr(w2, k) ? 2 : strstr(w4, k) ? 4 : strstr(w8, k) ? 8 : 1;
}

/* Where one request reads frames from: the parsed file from the handle cache and, for native
 * syntaxes, the pixel data value located once in the mapped file. */
typedef struct pixel_src {
    mapped m;
    cache_entry *h;
    rnd_dicom *d;
    int native; /* frames are copied from m.p + off */
    size_t off;
    uint32_t vlen;
    int big_endian;
} pixel_src;

static void
pixel_src_close(pixel_src *ps)
{
    cache_release(ps->h);
    unmap(&ps->m);
    memset(ps, 0, sizeof *ps);
}

static int
pixel_src_open(http_req *r, const store_instance *inst, pixel_src *ps, tsr_err *err)
{
    memset(ps, 0, sizeof *ps);
    if (map_path(inst->path, &ps->m) != 0) {
        return tsr_err_set(err, TSR_EIO, "stored file unreadable");
    }
    int rc = http__handle(r->srv->im, inst, &ps->h, err);
    if (rc == TSR_OK) {
        ps->d = cache_entry_data(ps->h);
        const rnd_info *info = rnd_dicom_info(ps->d);
        ps->native = native_ts(inst->transfer_syntax) && info->bits_allocated % 8 == 0;
    }
    if (rc == TSR_OK && ps->native) {
        char vr[3];
        rc = dcm_find_value(ps->m.p, ps->m.len, "7FE00010", &ps->off, &ps->vlen, vr,
                            &ps->big_endian, err);
    }
    if (rc != TSR_OK) {
        pixel_src_close(ps);
    }
    return rc;
}

/* The bytes of one frame, uncompressed, little endian: from the file for native syntaxes,
 * through the render core's decoder otherwise. *out is malloc'ed. */
static int
frame_bytes(const pixel_src *ps, uint32_t index, uint8_t **out, size_t *len, tsr_err *err)
{
    const rnd_info *info = rnd_dicom_info(ps->d);
    if (ps->native) {
        size_t fsz = (size_t)info->rows * info->columns * info->samples_per_pixel *
                     (info->bits_allocated / 8);
        if ((uint64_t)fsz * (index + 1) > ps->vlen) {
            return tsr_err_set(err, TSR_ECORRUPT, "pixel data shorter than frame %u", index + 1);
        }
        uint8_t *b = malloc(fsz ? fsz : 1);
        if (!b) {
            return tsr_err_set(err, TSR_ENOMEM, "out of memory");
        }
        memcpy(b, ps->m.p + ps->off + fsz * index, fsz);
        if (ps->big_endian && info->bits_allocated > 8) {
            swap_words(b, fsz, info->bits_allocated / 8);
        }
        *out = b;
        *len = fsz;
        return TSR_OK;
    }
    rnd_frame *f = NULL;
    int rc = rnd_dicom_decode_frame(ps->d, index, &f, err);
    if (rc != TSR_OK) {
        return rc;
    }
    uint8_t *b = NULL;
    size_t n = f->bytes;
    if (info->bits_allocated == 1) {
        /* pack one bit per pixel, least significant bit first (PS3.5 8.1.1) */
        size_t px = (size_t)f->width * f->height * f->samples;
        n = (px + 7) / 8;
        b = calloc(n ? n : 1, 1);
        for (size_t i = 0; b && i < px; i++) {
            if (((const uint8_t *)f->data)[i]) {
                b[i / 8] |= (uint8_t)(1u << (i % 8));
            }
        }
    } else {
        b = malloc(n ? n : 1);
        if (b) {
            memcpy(b, f->data, n);
        }
    }
    rnd_frame_free(f);
    if (!b) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    *out = b;
    *len = n;
    return TSR_OK;
}

static void
send_octets(http_req *r, int single, uint8_t **bufs, size_t *lens, int n)
{
    if (single) {
        http__send(r, 200, "application/octet-stream", bufs[0], lens[0], NULL);
        return;
    }
    char boundary[40], ctype[160], ph[160];
    http__boundary(boundary);
    snprintf(ctype, sizeof ctype,
             "multipart/related; type=\"application/octet-stream\"; boundary=%s", boundary);
    long long total = 0;
    for (int i = 0; i < n; i++) {
        total += snprintf(ph, sizeof ph, "--%s\r\nContent-Type: application/octet-stream\r\n\r\n",
                          boundary) +
                 (long long)lens[i] + 2;
    }
    total += (long long)strlen(boundary) + 6;
    http__head(r, 200, ctype, total, NULL);
    if (strcmp(r->method, "HEAD") == 0) {
        return;
    }
    for (int i = 0; i < n; i++) {
        int k = snprintf(ph, sizeof ph, "--%s\r\nContent-Type: application/octet-stream\r\n\r\n",
                         boundary);
        if (mg_write(r->conn, ph, (size_t)k) != k ||
            mg_write(r->conn, bufs[i], lens[i]) != (int)lens[i] ||
            mg_write(r->conn, "\r\n", 2) != 2) {
            return;
        }
    }
    int k = snprintf(ph, sizeof ph, "--%s--\r\n", boundary);
    mg_write(r->conn, ph, (size_t)k);
}

static const char *const k_octet_offered[] = {
    "multipart/related; type=\"application/octet-stream\"", "application/octet-stream"};

void
http__frames(http_req *r)
{
    int chosen;
    if (http__negotiate(r, k_octet_offered, 2, &chosen, NULL) != 0) {
        return;
    }
    store_instance inst;
    tsr_err err = {0};
    int rc =
        http__find_instance(r->srv->im, r->srv->st, r->study, r->series, r->instance, &inst, &err);
    if (rc != TSR_OK) {
        http__error_status(r, rc, &err);
        return;
    }
    if (inst.frames == 0) {
        http__error(r, 404, "instance %s has no pixel data", r->instance);
        return;
    }
    enum { MAX_FRAMES = 512 };
    uint32_t idx[MAX_FRAMES];
    char msg[200];
    int n = parse_frames(r->frames, inst.frames, idx, MAX_FRAMES, msg, sizeof msg);
    if (n < 0) {
        http__error(r, n == -2 ? 404 : 400, "%s", msg);
        return;
    }
    if (chosen == 1 && n != 1) {
        http__error(r, 406, "application/octet-stream (single part) is only available for one "
                            "frame; ask for multipart/related");
        return;
    }
    pixel_src ps;
    rc = pixel_src_open(r, &inst, &ps, &err);
    if (rc != TSR_OK) {
        http__error_status(r, rc, &err);
        return;
    }
    uint8_t *bufs[MAX_FRAMES] = {0};
    size_t lens[MAX_FRAMES] = {0};
    for (int i = 0; i < n && rc == TSR_OK; i++) {
        rc = frame_bytes(&ps, idx[i], &bufs[i], &lens[i], &err);
    }
    if (rc == TSR_OK) {
        send_octets(r, chosen == 1, bufs, lens, n);
    } else {
        http__error_status(r, rc, &err);
    }
    for (int i = 0; i < n; i++) {
        free(bufs[i]);
    }
    pixel_src_close(&ps);
}

void
http__bulkdata(http_req *r)
{
    int chosen;
    if (http__negotiate(r, k_octet_offered, 2, &chosen, NULL) != 0) {
        return;
    }
    store_instance inst;
    tsr_err err = {0};
    int rc =
        http__find_instance(r->srv->im, r->srv->st, r->study, r->series, r->instance, &inst, &err);
    if (rc != TSR_OK) {
        http__error_status(r, rc, &err);
        return;
    }
    for (char *c = r->bulk; *c; c++) {
        if (*c >= 'a' && *c <= 'f') {
            *c = (char)(*c - 'a' + 'A');
        }
    }
    mapped m = {0};
    if (map_path(inst.path, &m) != 0) {
        http__error(r, 500, "stored file unreadable");
        return;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (strcmp(r->bulk, "7FE00010") == 0 && inst.frames > 0) {
        /* pixel data: every frame, uncompressed, one after the other */
        pixel_src ps;
        rc = pixel_src_open(r, &inst, &ps, &err);
        for (uint32_t i = 0; rc == TSR_OK && i < inst.frames; i++) {
            uint8_t *fb;
            size_t fl;
            rc = frame_bytes(&ps, i, &fb, &fl, &err);
            if (rc == TSR_OK) {
                uint8_t *nb = realloc(buf, len + fl);
                if (!nb) {
                    free(fb);
                    rc = tsr_err_set(&err, TSR_ENOMEM, "out of memory");
                    break;
                }
                buf = nb;
                memcpy(buf + len, fb, fl);
                len += fl;
                free(fb);
            }
        }
        pixel_src_close(&ps); /* a no-op after a failed open, which closed it already */
    } else {
        size_t off;
        uint32_t vlen;
        char vr[3];
        int be;
        rc = dcm_find_value(m.p, m.len, r->bulk, &off, &vlen, vr, &be, &err);
        if (rc == TSR_OK && vlen == 0xFFFFFFFFu) {
            rc = tsr_err_set(&err, TSR_EUNSUPP, "encapsulated value: use the frames resource");
        }
        if (rc == TSR_OK) {
            buf = malloc(vlen ? vlen : 1);
            if (!buf) {
                rc = tsr_err_set(&err, TSR_ENOMEM, "out of memory");
            } else {
                memcpy(buf, m.p + off, vlen);
                len = vlen;
                if (be) {
                    swap_words(buf, len, vr_width(vr));
                }
            }
        }
        if (rc == TSR_EINVAL) {
            rc = TSR_ENOTFOUND; /* a malformed path names nothing */
        }
    }
    if (rc == TSR_OK) {
        send_octets(r, chosen == 1, &buf, &len, 1);
    } else {
        http__error_status(r, rc, &err);
    }
    free(buf);
    unmap(&m);
}
