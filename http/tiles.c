/* SPDX-License-Identifier: MIT */
/* tiles.c: windowed tile pyramids of every frame, at immutable URLs, and the same pyramids
 * through the IIIF Image API 3.0; cache statistics (JSON and Prometheus).
 *
 * Tile URLs carry everything the pixels depend on, so they never change and are cached
 * for a year by the browser:
 *   {instance}/frames/{f}/tiles                                  the pyramid (JSON)
 *   {instance}/frames/{f}/tiles/{window}/{quality}/{level}/{col}/{row}.{jpg|png}
 * window: "default" (the file's) or "c,w[,linear|linear-exact|sigmoid]"; quality: 1..100 for
 * jpg, "lossless" for png; level 0 is full resolution (square pixels), level k is 2^k smaller.
 * A tile is bit for bit the corresponding crop of its whole level (rnd_render_tile).
 *
 * IIIF: /iiif/3/{sop}:{frame}:{window}/{region}/{size}/{rotation}/{quality}.{format}, and
 * .../info.json. A request that is exactly one pyramid tile (what tiled viewers ask for) shares
 * the tile's cache entry. */
#define _GNU_SOURCE
#include "http_internal.h"
#include "iiif.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
parse_u32(const char *s, uint32_t max, uint32_t *out)
{
    if (!isdigit((unsigned char)s[0]) || (s[0] == '0' && s[1])) {
        return -1;
    }
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || v > max) {
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* "default" or a window parameter. */
static int
parse_window_seg(const char *s, rnd_voi_req *voi, char *msg, size_t cap)
{
    memset(voi, 0, sizeof *voi);
    if (strcmp(s, "default") == 0) {
        return 0;
    }
    return http__parse_window(s, voi, msg, cap);
}

typedef struct tile_job {
    http_imaging *im;
    const store_instance *inst;
    uint32_t frame;
    rnd_voi_req voi;
    uint32_t tile;
    int level;
    uint32_t col, row;
    rnd_format fmt;
    int quality;
    int gray, mirror;
} tile_job;

static int
encode_tile(void *user, rnd_buf *out, char *meta, size_t metacap, tsr_err *err)
{
    tile_job *j = user;
    cache_entry *e = NULL;
    /* A zoomed-out level of a JPEG 2000 frame is made from a decode that skips the resolution
     * levels it does not show: level L from the image reduced 2^r times (r <= L), which is level
     * L - r of that image's own pyramid (the same size and tile grid for square pixels). Its
     * pixels are the wavelet's low-pass, centred half a pixel of level L up and left of the
     * box averages the full decode would give; within a level, tiles are still seamless. */
    int rc = http__rendered_reduced(j->im, j->inst, j->frame, &j->voi, j->level, &e, err);
    if (rc == TSR_OK) {
        const http_rendered *hr = cache_entry_data(e);
        if (hr->reduce > 0 && hr->pixel_aspect != 1.0) {
            /* non-square pixels: the reduced image's square size would not be the level's */
            cache_release(e);
            e = NULL;
            rc = http__rendered_frame(j->im, j->inst, j->frame, &j->voi, &e, err);
        }
    }
    if (rc != TSR_OK) {
        return rc;
    }
    const http_rendered *hr = cache_entry_data(e);
    rnd_image t = {0}, g = {0};
    /* the window applied, for viewers of files whose default window is not in their metadata */
    snprintf(meta, metacap, "X-Tessera-Window: %.17g,%.17g,%s\r\n", hr->used.center, hr->used.width,
             rnd_voi_fn_name(hr->used.fn));
    rc = rnd_render_tile(&hr->img, hr->pixel_aspect, j->tile, j->level - hr->reduce, j->col,
                         j->row, &t, err);
    cache_release(e);
    if (rc == TSR_ENOTFOUND) {
        tsr_err_set(err, TSR_ENOTFOUND, "no tile %u,%u at level %d of this frame", j->col, j->row,
                    j->level);
    }
    if (rc == TSR_OK && j->gray && t.channels == 3) {
        rc = rnd_image_gray(&t, &g, err);
        if (rc == TSR_OK) {
            rnd_image_free(&t);
            t = g;
        }
    }
    if (rc == TSR_OK) {
        rc = rnd_encode(&t, j->fmt, j->quality, out, err);
    }
    rnd_image_free(&t);
    return rc;
}

static void
tile_key(const tile_job *j, char *key, size_t cap)
{
    char vk[128];
    http__voi_key(&j->voi, vk, sizeof vk);
    snprintf(key, cap, "t|%s|%u|%s|%u|%d|%u|%u|%d|%d|%d", j->inst->sop_instance_uid, j->frame, vk,
             j->tile, j->level, j->col, j->row, (int)j->fmt, j->fmt == RND_FMT_PNG ? 0 : j->quality,
             j->gray);
}

/* Sends encoded bytes from the cache, or computed on the render pool while this connection
 * waits. A frame that was not decoded yet also schedules its series neighbours at prefetch
 * priority, after the answer is sent, so that prefetch never delays the image asked for. */
static void
send_encoded(http_req *r, const store_instance *inst, uint32_t frame, const char *key,
             http__encode_fn fn, void *user, rnd_format fmt, const char *hdr)
{
    int fresh = !http__frame_cached(r->srv->im, inst, frame);
    cache_entry *e = NULL;
    tsr_err err = {0};
    int rc = http__encoded(r->srv->im, r->srv->pool, key, fn, user, &e, &err);
    if (rc != TSR_OK) {
        http__error_status(r, rc, &err);
        return;
    }
    char h[1024];
    snprintf(h, sizeof h, "%s", hdr);
    http__send_encoded(r, e, fmt == RND_FMT_PNG ? "image/png" : "image/jpeg", h, sizeof h);
    cache_release(e);
    if (fresh) {
        http__prefetch_neighbours(r->srv, inst);
    }
}

/* Serves one tile job (cache, ETag, headers). */
static void
send_tile(http_req *r, tile_job *j)
{
    char key[400], etag[40], hdr[512];
    tile_key(j, key, sizeof key);
    http__etag(key, 't', etag);
    snprintf(hdr, sizeof hdr, "ETag: %s\r\n" HTTP_TILE_CACHE_CONTROL "X-Tessera-Quality: %s\r\n",
             etag, j->fmt == RND_FMT_PNG ? "lossless" : "lossy");
    const char *inm = mg_get_header(r->conn, "If-None-Match");
    if (inm && http__etag_matches(inm, etag)) {
        http__head(r, 304, NULL, -1, hdr);
        return;
    }
    send_encoded(r, j->inst, j->frame, key, encode_tile, j, j->fmt, hdr);
}

/* The pyramid of one frame, for viewers. */
static void
send_pyramid(http_req *r, const store_instance *inst, uint32_t frame)
{
    cache_entry *h = NULL;
    tsr_err err = {0};
    int rc = http__handle(r->srv->im, inst, &h, &err);
    if (rc != TSR_OK) {
        http__error_status(r, rc, &err);
        return;
    }
    const rnd_info *info = rnd_dicom_info(cache_entry_data(h));
    uint32_t w0 = 0, h0 = 0;
    rc = rnd_display_size(info, &w0, &h0);
    cache_release(h);
    if (rc != TSR_OK) {
        http__error(r, 422, "this frame has no displayable size");
        return;
    }
    uint32_t tile = (uint32_t)r->srv->opts.tile_size;
    char body[2048];
    int n = snprintf(body, sizeof body,
                     "{\"width\":%u,\"height\":%u,\"tileSize\":%u,\"levels\":%d,\"frames\":%u,"
                     "\"template\":\"%s/studies/%s/series/%s/instances/%s/frames/%u/tiles/"
                     "{window}/{quality}/{level}/{col}/{row}.{format}\","
                     "\"iiif\":\"%.600s/iiif/3/%s:%u:default\"}\n",
                     w0, h0, tile, rnd_level_count(w0, h0, tile), inst->frames, r->base,
                     inst->study_uid, inst->series_uid, inst->sop_instance_uid, frame + 1,
                     r->origin, inst->sop_instance_uid, frame + 1);
    http__send(r, 200, "application/json", body, (size_t)n, NULL);
}

void
http__tiles(http_req *r, const char *rest)
{
    store_instance inst;
    tsr_err err = {0};
    uint32_t frame;
    if (parse_u32(r->frames, 1u << 30, &frame) != 0 || frame == 0) {
        http__error(r, 400, "tiles: frame '%.40s' is not a frame number (1-based)", r->frames);
        return;
    }
    frame--;
    int rc =
        http__find_instance(r->srv->im, r->srv->st, r->study, r->series, r->instance, &inst, &err);
    if (rc == TSR_OK && frame >= inst.frames) {
        rc = tsr_err_set(&err, TSR_ENOTFOUND, "frame %u does not exist: the instance has %u",
                         frame + 1, inst.frames);
    }
    if (rc != TSR_OK) {
        http__error_status(r, rc, &err);
        return;
    }
    if (strcmp(rest, "tiles") == 0) {
        send_pyramid(r, &inst, frame);
        return;
    }
    http_tile_addr a;
    if (http__tile_addr_parse(r, rest, &a) != 0) {
        return;
    }
    tile_job j;
    memset(&j, 0, sizeof j);
    j.im = r->srv->im;
    j.inst = &inst;
    j.frame = frame;
    j.tile = (uint32_t)r->srv->opts.tile_size;
    j.voi = a.voi;
    j.fmt = a.fmt;
    j.quality = a.quality;
    j.level = a.level;
    j.col = a.col;
    j.row = a.row;
    send_tile(r, &j);
}

int
http__tile_addr_parse(http_req *r, const char *rest, http_tile_addr *a)
{
    char buf[512], *seg[8];
    int n = 0;
    memset(a, 0, sizeof *a);
    snprintf(buf, sizeof buf, "%s", rest);
    for (char *p = buf; n < 8;) {
        seg[n++] = p;
        char *slash = strchr(p, '/');
        if (!slash) {
            break;
        }
        *slash = '\0';
        p = slash + 1;
    }
    /* tiles/{window}/{quality}/{level}/{col}/{row}.{fmt} */
    if (n != 6) {
        http__error(r, 400, "tile URL must be .../tiles/{window}/{quality}/{level}/{col}/{row}."
                            "{jpg|png}");
        return -1;
    }
    char msg[200];
    if (parse_window_seg(seg[1], &a->voi, msg, sizeof msg) != 0) {
        http__error(r, 400, "tile %s", msg);
        return -1;
    }
    char *dot = strrchr(seg[5], '.');
    if (!dot || (strcmp(dot, ".jpg") && strcmp(dot, ".png"))) {
        http__error(r, 400, "tile format must be .jpg or .png");
        return -1;
    }
    *dot = '\0';
    a->fmt = strcmp(dot + 1, "png") == 0 ? RND_FMT_PNG : RND_FMT_JPEG;
    uint32_t q = 0, level = 0;
    if (a->fmt == RND_FMT_PNG ? strcmp(seg[2], "lossless") != 0
                              : parse_u32(seg[2], 100, &q) != 0 || q == 0) {
        http__error(r, 400, "tile quality must be 1..100 for jpg and 'lossless' for png, got "
                            "'%.20s'",
                    seg[2]);
        return -1;
    }
    a->quality = a->fmt == RND_FMT_PNG ? 0 : (int)q;
    if (parse_u32(seg[3], RND_LEVEL_MAX, &level) != 0 ||
        parse_u32(seg[4], 1u << 30, &a->col) != 0 || parse_u32(seg[5], 1u << 30, &a->row) != 0) {
        http__error(r, 400, "tile level, column and row must be non-negative integers");
        return -1;
    }
    a->level = (int)level;
    return 0;
}

/* ---------------------------------------------------------------- IIIF */

/* {sop}:{frame}:{window} */
static int
parse_identifier(const char *id, char sop[65], uint32_t *frame, rnd_voi_req *voi, char *msg,
                 size_t cap)
{
    const char *c1 = strchr(id, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1 || !c2 || (size_t)(c1 - id) > 64 || !dcm_uid_valid(id, (size_t)(c1 - id))) {
        snprintf(msg, cap, "identifier must be {SOPInstanceUID}:{frame}:{window}");
        return -1;
    }
    memcpy(sop, id, (size_t)(c1 - id));
    sop[c1 - id] = '\0';
    char num[16];
    size_t nl = (size_t)(c2 - c1 - 1);
    if (nl == 0 || nl >= sizeof num) {
        snprintf(msg, cap, "identifier: bad frame number");
        return -1;
    }
    memcpy(num, c1 + 1, nl);
    num[nl] = '\0';
    if (parse_u32(num, 1u << 30, frame) != 0 || *frame == 0) {
        snprintf(msg, cap, "identifier: frame numbers start at 1");
        return -1;
    }
    (*frame)--;
    return parse_window_seg(c2 + 1, voi, msg, cap);
}

typedef struct region_job {
    http_imaging *im;
    const store_instance *inst;
    uint32_t frame;
    rnd_voi_req voi;
    iiif_plan plan;
    uint32_t w0, h0; /* the display size (level 0) */
} region_job;

static int
encode_region(void *user, rnd_buf *out, char *meta, size_t metacap, tsr_err *err)
{
    (void)meta;
    (void)metacap;
    region_job *j = user;
    cache_entry *e = NULL;
    /* The whole image at exactly the size of pyramid level L > 0 is that level, made as its
     * tiles are (from a reduced JPEG 2000 decode where there is one), so that stitched tiles
     * equal the whole level. */
    int level = 0;
    uint32_t lw = j->plan.w, lh = j->plan.h;
    if (!j->plan.mirror && j->plan.x == 0 && j->plan.y == 0 && j->plan.w == j->w0 &&
        j->plan.h == j->h0) {
        while (level < RND_LEVEL_MAX && (lw > j->plan.out_w || lh > j->plan.out_h)) {
            level++;
            rnd_level_size(j->w0, j->h0, level, &lw, &lh);
        }
        if (lw != j->plan.out_w || lh != j->plan.out_h) {
            level = 0;
        }
    }
    int rc = http__rendered_reduced(j->im, j->inst, j->frame, &j->voi, level, &e, err);
    if (rc == TSR_OK && ((const http_rendered *)cache_entry_data(e))->reduce > 0 &&
        ((const http_rendered *)cache_entry_data(e))->pixel_aspect != 1.0) {
        cache_release(e); /* non-square pixels: the exact path (see encode_tile) */
        e = NULL;
        rc = http__rendered_frame(j->im, j->inst, j->frame, &j->voi, &e, err);
    }
    if (rc != TSR_OK) {
        return rc;
    }
    const http_rendered *hr = cache_entry_data(e);
    rnd_region reg = {j->plan.x, j->plan.y, j->plan.w, j->plan.h};
    rnd_image t = {0}, g = {0};
    if (level > 0) {
        rc = rnd_render_level(&hr->img, hr->pixel_aspect, level - hr->reduce, &t, err);
    } else {
        rc = rnd_resample_region(&hr->img, hr->pixel_aspect, &reg, j->plan.out_w, j->plan.out_h,
                                 j->plan.mirror, &t, err);
    }
    cache_release(e);
    if (rc == TSR_OK && j->plan.quality == IIIF_QUALITY_GRAY && t.channels == 3) {
        rc = rnd_image_gray(&t, &g, err);
        if (rc == TSR_OK) {
            rnd_image_free(&t);
            t = g;
        }
    }
    if (rc == TSR_OK) {
        rc = rnd_encode(&t, j->plan.format, 90, out, err);
    }
    rnd_image_free(&t);
    return rc;
}

static void
iiif_serve(http_req *r)
{
    const char *uri = r->ri->local_uri_raw ? r->ri->local_uri_raw : r->ri->local_uri;
    if (strcmp(r->method, "OPTIONS") == 0) {
        http__preflight(r);
        return;
    }
    if (http__authorize(r, HTTP_RIGHT_READ) != 0) {
        return;
    }
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
        http__error(r, 405, "IIIF resources are read-only (GET)");
        return;
    }
    if (strncmp(uri, "/iiif/3/", 8) != 0) {
        http__error(r, 404, "IIIF Image API 3 lives at /iiif/3/{identifier}/...");
        return;
    }
    iiif_req q;
    tsr_err err = {0};
    if (iiif_parse(uri + 8, &q, &err) != TSR_OK) {
        http__error(r, 400, "%s", err.msg);
        return;
    }
    char sop[65], msg[200];
    uint32_t frame;
    rnd_voi_req voi;
    if (parse_identifier(q.identifier, sop, &frame, &voi, msg, sizeof msg) != 0) {
        http__error(r, 404, "%s", msg);
        return;
    }
    store_instance inst;
    int rc = http__find_instance(r->srv->im, r->srv->st, NULL, NULL, sop, &inst, &err);
    if (rc == TSR_OK && r->who.kind == ACCESS_K_SHARE &&
        !access_share_covers(&r->who.share, inst.study_uid, inst.series_uid)) {
        /* outside the shared study: the answer an unknown instance gets */
        http__error(r, 404, "no instance %s", sop);
        return;
    }
    if (rc == TSR_OK && frame >= inst.frames) {
        rc = tsr_err_set(&err, TSR_ENOTFOUND, "frame %u does not exist: the instance has %u",
                         frame + 1, inst.frames);
    }
    if (rc != TSR_OK) {
        http__error_status(r, rc, &err);
        return;
    }
    char id_url[1024];
    snprintf(id_url, sizeof id_url, "%.400s/iiif/3/%.500s", r->origin, q.identifier);
    if (q.kind == IIIF_REQ_BASE) {
        char loc[1200];
        snprintf(loc, sizeof loc, "Location: %s/info.json\r\n", id_url);
        http__head(r, 303, NULL, 0, loc);
        return;
    }
    cache_entry *h = NULL;
    rc = http__handle(r->srv->im, &inst, &h, &err);
    uint32_t w0 = 0, h0 = 0;
    if (rc == TSR_OK) {
        rc = rnd_display_size(rnd_dicom_info(cache_entry_data(h)), &w0, &h0);
        cache_release(h);
        if (rc != TSR_OK) {
            rc = tsr_err_set(&err, TSR_EUNSUPP, "this frame has no displayable size");
        }
    }
    if (rc != TSR_OK) {
        http__error_status(r, rc, &err);
        return;
    }
    uint32_t tile = (uint32_t)r->srv->opts.tile_size;
    if (q.kind == IIIF_REQ_INFO) {
        char *json = NULL;
        if (iiif_info_json(id_url, w0, h0, tile, rnd_level_count(w0, h0, tile), &json) != TSR_OK) {
            http__error(r, 500, "cannot build info.json");
            return;
        }
        http__send(r, 200,
                   "application/ld+json;profile=\"http://iiif.io/api/image/3/context.json\"", json,
                   strlen(json), "Cache-Control: private, max-age=31536000, immutable\r\n");
        iiif_free(json);
        return;
    }
    iiif_plan plan;
    if (iiif_resolve(&q, w0, h0, NULL, &plan, &err) != TSR_OK) {
        http__error(r, 400, "%s", err.msg);
        return;
    }
    int level;
    uint32_t col, row;
    if (!plan.mirror && iiif_plan_tile(&plan, w0, h0, tile, &level, &col, &row)) {
        tile_job j;
        memset(&j, 0, sizeof j);
        j.im = r->srv->im;
        j.inst = &inst;
        j.frame = frame;
        j.voi = voi;
        j.tile = tile;
        j.level = level;
        j.col = col;
        j.row = row;
        j.fmt = plan.format;
        j.quality = 90;
        j.gray = plan.quality == IIIF_QUALITY_GRAY;
        send_tile(r, &j);
        return;
    }
    region_job j = {r->srv->im, &inst, frame, voi, plan, w0, h0};
    char canon[200], key[512], etag[40], hdr[400];
    iiif_canonical(&plan, w0, h0, canon, sizeof canon);
    char vk[128];
    http__voi_key(&voi, vk, sizeof vk);
    snprintf(key, sizeof key, "i|%s|%u|%s|%s", sop, frame, vk, canon);
    http__etag(key, 'i', etag);
    snprintf(hdr, sizeof hdr, "ETag: %s\r\n" HTTP_TILE_CACHE_CONTROL "X-Tessera-Quality: %s\r\n",
             etag, plan.format == RND_FMT_PNG ? "lossless" : "lossy");
    const char *inm = mg_get_header(r->conn, "If-None-Match");
    if (inm && http__etag_matches(inm, etag)) {
        http__head(r, 304, NULL, -1, hdr);
        return;
    }
    send_encoded(r, &inst, frame, key, encode_region, &j, plan.format, hdr);
    return;
}

int
http__iiif_handler(struct mg_connection *conn, void *cbdata)
{
    http_req r;
    http__req_init(&r, conn, cbdata);
    iiif_serve(&r);
    http__audit_request(&r);
    return 1;
}

/* ---------------------------------------------------------------- statistics */

int
http__stats_handler(struct mg_connection *conn, void *cbdata)
{
    http_req r;
    http__req_init(&r, conn, cbdata);
    const char *uri = r.ri->local_uri_raw ? r.ri->local_uri_raw : r.ri->local_uri;
    int prom = strcmp(uri, "/metrics") == 0;
    if (http__authorize(&r, HTTP_RIGHT_STAFF) != 0) {
        return 1;
    }
    char *text = NULL;
    if (http__imaging_stats(r.srv->im, prom, &text) != TSR_OK || !text) {
        http__error(&r, 503, "statistics unavailable");
        return 1;
    }
    http__send(&r, 200, prom ? "text/plain; version=0.0.4" : "application/json", text,
               strlen(text), "Cache-Control: no-store\r\n");
    cache_text_free(text);
    return 1;
}
