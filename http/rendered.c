/* SPDX-License-Identifier: MIT */
/* rendered.c: rendered and thumbnail resources (PS3.18 8.3.5, 10.4.1.1.3) for studies, series,
 * instances and frames: window, viewport, quality and burned-in annotation, JPEG or PNG. */
#define _GNU_SOURCE
#include "http_internal.h"
#include "negotiate.h"
#include "rnd.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* window=center,width[,function] */
int
http__parse_window(const char *s, rnd_voi_req *voi, char *msg, size_t cap)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%.255s", s);
    char *parts[4];
    int n = 0;
    for (char *p = buf; n < 4;) {
        parts[n++] = p;
        char *c = strchr(p, ',');
        if (!c) {
            break;
        }
        *c = '\0';
        p = c + 1;
    }
    if (n < 2 || n > 3) {
        snprintf(msg, cap, "window must be center,width[,function], got '%.60s'", s);
        return -1;
    }
    double v[2];
    for (int i = 0; i < 2; i++) {
        char *end;
        v[i] = strtod(parts[i], &end);
        if (end == parts[i] || *end || !isfinite(v[i])) {
            snprintf(msg, cap, "window: '%.30s' is not a number", parts[i]);
            return -1;
        }
    }
    if (v[1] <= 0) {
        snprintf(msg, cap, "window: width must be > 0, got %g", v[1]);
        return -1;
    }
    rnd_voi_fn fn = RND_VOI_LINEAR;
    if (n == 3 && rnd_voi_fn_parse(parts[2], &fn) != 0) {
        snprintf(msg, cap, "window: function must be linear, linear-exact or sigmoid, got '%.30s'",
                 parts[2]);
        return -1;
    }
    if (fn == RND_VOI_LINEAR && v[1] < 1) {
        snprintf(msg, cap, "window: a LINEAR width must be >= 1, got %g", v[1]);
        return -1;
    }
    voi->mode = RND_VOI_MODE_WINDOW;
    voi->center = v[0];
    voi->width = v[1];
    voi->fn = fn;
    return 0;
}

int
http__render_params(http_req *r, int thumbnail, const char *const *extra, http_render_params *p)
{
    memset(p, 0, sizeof *p);
    p->quality = thumbnail ? 80 : 90;
    char v[256], msg[200];
    int has;
    if ((has = http__param(r->query, "window", v, sizeof v)) != 0) {
        if (has < 0 || http__parse_window(v, &p->voi, msg, sizeof msg) != 0) {
            http__error(r, 400, "%s", has < 0 ? "malformed window parameter" : msg);
            return -1;
        }
    }
    if ((has = http__param(r->query, "viewport", v, sizeof v)) != 0) {
        tsr_err err = {0};
        if (has < 0 || rnd_viewport_parse(v, &p->vp, &err) != TSR_OK) {
            http__error(r, 400, "%s", has < 0 ? "malformed viewport parameter" : err.msg);
            return -1;
        }
        p->has_viewport = 1;
    } else if (thumbnail) {
        int t = r->srv->opts.thumbnail_size;
        p->vp.vw = (uint32_t)t;
        p->vp.vh = (uint32_t)t;
        p->has_viewport = 1;
    }
    if ((has = http__param(r->query, "quality", v, sizeof v)) != 0) {
        char *end;
        long q = has > 0 ? strtol(v, &end, 10) : -1;
        if (has < 0 || end == v || *end || q < 1 || q > 100) {
            http__error(r, 400, "quality must be an integer 1..100");
            return -1;
        }
        p->quality = (int)q;
    }
    if ((has = http__param(r->query, "annotation", v, sizeof v)) != 0) {
        if (has < 0) { /* v is not a string then: strtok must not read it (found by fuzzing) */
            http__error(r, 400, "malformed annotation parameter");
            return -1;
        }
        for (char *tok = strtok(v, ","); tok; tok = strtok(NULL, ",")) {
            if (strcmp(tok, "patient") == 0) {
                p->annotate_patient = 1;
            } else if (strcmp(tok, "technique") == 0) {
                p->annotate_technique = 1;
            } else {
                http__error(r, 400, "annotation must be patient and/or technique, got '%.40s'",
                            tok);
                return -1;
            }
        }
        if (has < 0) {
            http__error(r, 400, "malformed annotation parameter");
            return -1;
        }
    }
    /* Everything else is ignored, and said so. */
    static const char *known[] = {"window", "viewport", "quality", "annotation", "accept",
                                  "charset"};
    const char *q = r->query;
    while (*q) {
        size_t k = strcspn(q, "=&");
        int ok = 0;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
            ok |= strlen(known[i]) == k && strncmp(q, known[i], k) == 0;
        }
        for (size_t i = 0; extra && extra[i]; i++) {
            ok |= strlen(extra[i]) == k && strncmp(q, extra[i], k) == 0;
        }
        if (!ok && k > 0) {
            http__warn(r, "query parameter '%.*s' is not supported and was ignored",
                       (int)(k < 40 ? k : 40), q);
        }
        q += strcspn(q, "&");
        q += *q == '&';
    }
    return 0;
}

/* Renders frame `index` of an instance into encoded bytes: the windowed 8-bit frame comes from
 * the cache (decoded once, rendered once per window), then viewport, annotation and encoding. */
static int
render_one(http_req *r, const store_instance *inst, uint32_t index, const http_render_params *p,
           rnd_buf *out, char *window_hdr, size_t whcap, tsr_err *err)
{
    http_rendered_ref ref;
    rnd_image sized = {0};
    /* A whole JPEG 2000 frame shrunk into a viewport (thumbnails above all) is decoded with the
     * resolution levels it cannot show skipped: 2^r times smaller, still at least the size it is
     * shown at (see encode_tile in tiles.c for where those pixels sit). */
    int reduce = 0;
    if (p->has_viewport && !p->vp.has_region && http__reduce_ok(inst) && inst->columns > 0 &&
        inst->rows > 0) {
        double shrink = fmin((double)inst->columns / p->vp.vw, (double)inst->rows / p->vp.vh);
        while (reduce < 16 && shrink >= (double)(2u << reduce)) {
            reduce++;
        }
    }
    int rc = http__rendered_once(r->srv->im, inst, index, &p->voi, reduce, &ref, err);
    if (rc == TSR_OK && http__rendered_ref_get(&ref)->reduce > 0 &&
        http__rendered_ref_get(&ref)->pixel_aspect != 1.0) {
        http__rendered_ref_release(&ref); /* non-square pixels: keep the one exact path */
        rc = http__rendered_once(r->srv->im, inst, index, &p->voi, 0, &ref, err);
    }
    const http_rendered *hr = rc == TSR_OK ? http__rendered_ref_get(&ref) : NULL;
    /* The 8-bit frame is encoded as it is when nothing would change it: square pixels, no
     * viewport, no burned-in text (a copy of 256 KB per request saved). */
    int as_is = rc == TSR_OK && !p->has_viewport && hr->pixel_aspect == 1.0 &&
                !p->annotate_patient && !p->annotate_technique;
    if (rc == TSR_OK && !as_is) {
        rc = rnd_resample(&hr->img, hr->pixel_aspect, p->has_viewport ? &p->vp : NULL, &sized,
                          err);
    }
    if (rc == TSR_OK && (p->annotate_patient || p->annotate_technique)) {
        rnd_annotation a;
        memset(&a, 0, sizeof a);
        char l[6][128];
        if (p->annotate_patient) {
            snprintf(l[0], sizeof l[0], "%.120s", inst->patient_name);
            snprintf(l[1], sizeof l[1], "ID %s", inst->patient_id);
            snprintf(l[2], sizeof l[2], "%.8s %.64s", inst->study_date, inst->study_description);
            for (int i = 0; i < 3; i++) {
                a.lines[RND_CORNER_TOP_LEFT][a.n[RND_CORNER_TOP_LEFT]++] = l[i];
            }
        }
        if (p->annotate_technique) {
            if (hr->used.mode == RND_VOI_MODE_FILE_LUT) {
                snprintf(l[3], sizeof l[3], "VOI LUT %d", hr->used.index + 1);
            } else {
                snprintf(l[3], sizeof l[3], "W %.6g L %.6g", hr->used.width, hr->used.center);
            }
            snprintf(l[4], sizeof l[4], "%s  Im %d  Fr %u/%u", hr->modality,
                     inst->instance_number, index + 1, hr->frames);
            snprintf(l[5], sizeof l[5], "%ux%u", hr->columns, hr->rows);
            for (int i = 3; i < 6; i++) {
                a.lines[RND_CORNER_BOTTOM_LEFT][a.n[RND_CORNER_BOTTOM_LEFT]++] = l[i];
            }
        }
        rc = rnd_annotate(&sized, &a, err);
    }
    if (rc == TSR_OK) {
        rc = rnd_encode(as_is ? &hr->img : &sized, p->fmt, p->quality, out, err);
    }
    if (rc == TSR_OK && window_hdr) {
        snprintf(window_hdr, whcap, "X-Tessera-Window: %.17g,%.17g,%s\r\n", hr->used.center,
                 hr->used.width, rnd_voi_fn_name(hr->used.fn));
    }
    rnd_image_free(&sized);
    http__rendered_ref_release(&ref); /* zeroed by a failed lookup: a no-op then */
    return rc;
}

typedef struct render_call {
    http_req *r;
    const store_instance *inst;
    uint32_t index;
    const http_render_params *p;
} render_call;

/* Fills an encoded-cache value on the render pool: the image and its X-Tessera-Window line. */
static int
encode_rendered(void *user, rnd_buf *out, char *meta, size_t metacap, tsr_err *err)
{
    render_call *c = user;
    return render_one(c->r, c->inst, c->index, c->p, out, meta, metacap, err);
}

void
http__etag(const char *key, char prefix, char out[40])
{
    /* the cache's key hash: fixed across platforms and versions, as an ETag must be */
    uint64_t h = cache_hash(key, strlen(key), 0);
    snprintf(out, 40, "\"%c%016llx\"", prefix, (unsigned long long)h);
}

/* The cache key of a rendered image: everything its bytes depend on (also its ETag). */
static void
render_key(const store_instance *inst, uint32_t frame, const http_render_params *p, int thumbnail,
           char key[512])
{
    snprintf(key, 512, "%s|%u|%d|%.17g|%.17g|%d|%d|%u|%u|%d|%.17g|%.17g|%.17g|%.17g|"
                              "%d|%d|%d|%d|%d|%d",
             inst->sop_instance_uid, frame, (int)p->voi.mode, p->voi.center, p->voi.width,
             (int)p->voi.fn, p->has_viewport, p->vp.vw, p->vp.vh, p->vp.has_region, p->vp.sx,
             p->vp.sy, p->vp.sw, p->vp.sh, p->vp.sw_to_edge, p->vp.sh_to_edge, p->quality,
             (int)p->fmt, p->annotate_patient * 2 + p->annotate_technique, thumbnail);
}

/* If-None-Match: "*" or a list of entity tags (weak ones compare weakly, RFC 9110 13.1.2). */
int
http__etag_matches(const char *inm, const char *etag)
{
    const char *p = inm;
    size_t n = strlen(etag);
    while (*p) {
        while (*p == ' ' || *p == ',') {
            p++;
        }
        if (*p == '*') {
            return 1;
        }
        if (p[0] == 'W' && p[1] == '/') {
            p += 2;
        }
        if (strncmp(p, etag, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' ')) {
            return 1;
        }
        p += strcspn(p, ",");
    }
    return 0;
}

typedef struct pick_ctx {
    store_instance *v;
    int n, cap;
} pick_ctx;

static int
pick_collect(void *user, const store_instance *inst)
{
    pick_ctx *c = user;
    if (inst->frames == 0) {
        return 0; /* no pixels: nothing to render (SR, RT plan...) */
    }
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 64;
        store_instance *v = realloc(c->v, (size_t)cap * sizeof *v);
        if (!v) {
            return TSR_ENOMEM;
        }
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = *inst;
    return 0;
}

void
http__rendered(http_req *r, int thumbnail)
{
    static const char *const offered[] = {"image/jpeg", "image/png"};
    int chosen;
    neg_list l;
    if (http__negotiate(r, offered, 2, &chosen, &l) != 0) {
        return;
    }
    int mixed = neg_has_dicom_and_rendered(&l);
    neg_list_free(&l);
    if (mixed) {
        http__error(r, 400, "Accept mixes DICOM and rendered media types");
        return;
    }
    http_render_params p;
    if (http__render_params(r, thumbnail, NULL, &p) != 0) {
        return;
    }
    p.fmt = chosen == 1 ? RND_FMT_PNG : RND_FMT_JPEG;

    tsr_err err = {0};
    pick_ctx c = {0};
    int rc;
    uint32_t frame_index = 0;
    if (r->instance[0]) {
        store_instance inst;
        rc = http__find_instance(r->srv->im, r->srv->st, r->study, r->series, r->instance, &inst,
                                 &err);
        if (rc == TSR_OK && inst.frames == 0) {
            rc = tsr_err_set(&err, TSR_ENOTFOUND, "instance %s has no pixel data to render",
                             r->instance);
        }
        if (rc == TSR_OK) {
            rc = pick_collect(&c, &inst) == 0 ? TSR_OK : TSR_ENOMEM;
        }
        if (rc == TSR_OK && r->frames[0]) {
            char *end;
            unsigned long f = strtoul(r->frames, &end, 10);
            if (*end == ',') {
                rc = tsr_err_set(&err, TSR_EINVAL,
                                 "render one frame per request (frame lists are not rendered)");
            } else if (*end || f == 0) {
                rc = tsr_err_set(&err, TSR_EINVAL, "frame '%.40s' is not a frame number",
                                 r->frames);
            } else if (f > inst.frames) {
                rc = tsr_err_set(&err, TSR_ENOTFOUND,
                                 "frame %lu does not exist: the instance has %u", f, inst.frames);
            }
            frame_index = (uint32_t)f - 1;
        } else if (rc == TSR_OK && thumbnail) {
            frame_index = inst.frames / 2;
        }
    } else {
        rc = store_each_instance(r->srv->st, r->study, r->series[0] ? r->series : NULL,
                                 pick_collect, &c, &err);
        if (rc == TSR_OK && c.n == 0) {
            rc = tsr_err_set(&err, TSR_ENOTFOUND, "nothing to render: no images here");
        }
    }
    if (rc != TSR_OK) {
        free(c.v);
        http__error_status(r, rc, &err);
        return;
    }
    const char *ctype = offered[chosen];
    if (r->instance[0] || thumbnail) {
        /* one image: the instance's frame, or for a study/series thumbnail the middle image */
        const store_instance *inst = r->instance[0] ? &c.v[0] : &c.v[c.n / 2];
        if (!r->instance[0]) {
            frame_index = inst->frames / 2;
        }
        /* Stored instances never change, so the image is a function of the instance, frame and
         * parameters: a strong ETag from those, checked before any work is done. A study or
         * series thumbnail picks its image from what is stored now, so it is revalidated. */
        char key[512], etag[40], hdr[512];
        render_key(inst, frame_index, &p, thumbnail, key);
        http__etag(key, 'r', etag);
        const char *inm = mg_get_header(r->conn, "If-None-Match");
        snprintf(hdr, sizeof hdr,
                 "ETag: %s\r\nVary: Accept\r\nCache-Control: %s\r\n", etag,
                 r->instance[0] ? "private, max-age=31536000, immutable"
                                : "private, no-cache");
        if (inm && http__etag_matches(inm, etag)) {
            http__head(r, 304, NULL, -1, hdr);
            free(c.v);
            return;
        }
        /* a first view of this frame: decode its neighbours next, once the answer is sent */
        int fresh = !http__frame_cached(r->srv->im, inst, frame_index);
        /* the encoded bytes are cached too: the same URL again costs a lookup */
        render_call call = {r, inst, frame_index, &p};
        cache_entry *e = NULL;
        rc = http__encoded(r->srv->im, r->srv->pool, key, encode_rendered, &call, &e, &err);
        if (rc == TSR_OK) {
            http__send_encoded(r, e, ctype, hdr, sizeof hdr);
            cache_release(e);
            if (fresh) {
                http__prefetch_neighbours(r->srv, inst);
            }
        } else {
            http__error_status(r, rc, &err);
        }
        free(c.v);
        return;
    }
    /* A rendered study or series: every instance's first frame, one part each. */
    char boundary[40], mct[160], ph[200];
    http__boundary(boundary);
    snprintf(mct, sizeof mct, "multipart/related; type=\"%s\"; boundary=%s", ctype, boundary);
    http__head(r, 200, mct, -1, "Transfer-Encoding: chunked\r\n");
    for (int i = 0; i < c.n && strcmp(r->method, "HEAD") != 0; i++) {
        rnd_buf out = {0};
        tsr_err e2 = {0};
        if (render_one(r, &c.v[i], 0, &p, &out, NULL, 0, &e2) != TSR_OK) {
            TSR_LOG(TSR_LOG_WARN, "rendered: %s: %s", c.v[i].sop_instance_uid, e2.msg);
            continue;
        }
        int n = snprintf(ph, sizeof ph, "--%s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                         boundary, ctype, out.len);
        int ok = mg_send_chunk(r->conn, ph, (unsigned)n) > 0 &&
                 mg_send_chunk(r->conn, (const char *)out.data, (unsigned)out.len) > 0 &&
                 mg_send_chunk(r->conn, "\r\n", 2) > 0;
        rnd_buf_free(&out);
        if (!ok) {
            break;
        }
    }
    if (strcmp(r->method, "HEAD") != 0) {
        int n = snprintf(ph, sizeof ph, "--%s--\r\n", boundary);
        mg_send_chunk(r->conn, ph, (unsigned)n);
        mg_send_chunk(r->conn, "", 0);
    }
    free(c.v);
}
