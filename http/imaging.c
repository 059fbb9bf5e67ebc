/* SPDX-License-Identifier: MIT */
/* imaging.c: the cached path from a stored instance to pixels. Five pools share one byte budget
 * (--cache-mb):
 *   instances index rows (store_instance) of instances being viewed, so an image request does
 *             not query the index (stored instances never change);
 *   handles   parsed files (rnd_dicom), so a request does not re-parse its file;
 *   frames    decoded frames (values before VOI), so a new window does not decode again;
 *   rendered  8-bit frames at one window, the source of every tile and level of that window;
 *   encoded   JPEG/PNG bytes of tiles and IIIF images, keyed by what the bytes depend on;
 *   volumes   series stacked into volumes for reformats (mpr.c).
 * Each lookup is single-flight: concurrent misses on one key compute once. */
#define _GNU_SOURCE
#include "http_internal.h"
#include "rnd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http_imaging {
    cache_budget *budget;
    cache *instances, *handles, *frames, *rendered, *encoded, *volumes;
};

int
http__imaging_create(size_t budget_bytes, http_imaging **out, tsr_err *err)
{
    http_imaging *im = calloc(1, sizeof *im);
    if (!im) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    int rc = cache_budget_create(budget_bytes, &im->budget, err);
    if (rc == TSR_OK) {
        rc = cache_create(im->budget, "instances", &im->instances, err);
    }
    if (rc == TSR_OK) {
        rc = cache_create(im->budget, "handles", &im->handles, err);
    }
    if (rc == TSR_OK) {
        rc = cache_create(im->budget, "frames", &im->frames, err);
    }
    if (rc == TSR_OK) {
        rc = cache_create(im->budget, "rendered", &im->rendered, err);
    }
    if (rc == TSR_OK) {
        rc = cache_create(im->budget, "encoded", &im->encoded, err);
    }
    if (rc == TSR_OK) {
        rc = cache_create(im->budget, "volumes", &im->volumes, err);
    }
    if (rc != TSR_OK) {
        http__imaging_destroy(im);
        return rc;
    }
    *out = im;
    return TSR_OK;
}

void
http__imaging_destroy(http_imaging *im)
{
    if (!im) {
        return;
    }
    /* dependants first: rendered values hold no handles, but keep the order of use */
    cache_destroy(im->volumes); /* volumes are built from frames: destroyed first */
    cache_destroy(im->encoded);
    cache_destroy(im->rendered);
    cache_destroy(im->frames);
    cache_destroy(im->handles);
    cache_destroy(im->instances);
    cache_budget_destroy(im->budget);
    free(im);
}

cache *
http__imaging_volumes(http_imaging *im)
{
    return im->volumes;
}

cache *
http__imaging_rendered(http_imaging *im)
{
    return im->rendered;
}

size_t
http__imaging_budget(http_imaging *im)
{
    return cache_budget_limit(im->budget);
}

int
http__imaging_stats(http_imaging *im, int prometheus, char **out)
{
    return prometheus ? cache_stats_prometheus(im->budget, out) : cache_stats_json(im->budget, out);
}

/* ---------------------------------------------------------------- instances */

typedef struct instance_job {
    store *st;
    const char *sop;
} instance_job;

static void
destroy_instance(void *data, void *ctx)
{
    (void)ctx;
    free(data);
}

static int
compute_instance(const void *key, size_t keylen, void *user, cache_value *out, tsr_err *err)
{
    (void)key;
    (void)keylen;
    const instance_job *j = user;
    store_instance *inst = malloc(sizeof *inst);
    if (!inst) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    int rc = store_find_instance(j->st, NULL, NULL, j->sop, inst, err);
    if (rc != TSR_OK) {
        free(inst);
        return rc; /* not cached: the instance may be stored later */
    }
    out->data = inst;
    out->size = sizeof *inst;
    out->destroy = destroy_instance;
    return TSR_OK;
}

int
http__find_instance(http_imaging *im, store *st, const char *study, const char *series,
                    const char *sop, store_instance *out, tsr_err *err)
{
    char key[80];
    int n = snprintf(key, sizeof key, "i|%s", sop);
    if (n < 0 || (size_t)n >= sizeof key) {
        return tsr_err_set(err, TSR_ENOTFOUND, "no instance %.64s", sop);
    }
    instance_job j = {st, sop};
    cache_entry *e = NULL;
    int rc = cache_get_or_compute(im->instances, key, (size_t)n, compute_instance, &j, &e, err);
    if (rc == TSR_ENOTFOUND) {
        /* worded as for a UID stored elsewhere (below): the answer does not tell them apart */
        return tsr_err_set(err, TSR_ENOTFOUND, "no instance %s%s%s%s%s", sop,
                           series ? " in series " : "", series ? series : "",
                           study ? " of study " : "", study ? study : "");
    }
    if (rc != TSR_OK) {
        return rc;
    }
    const store_instance *inst = cache_entry_data(e);
    /* the same answer as the index gives for a UID under the wrong study or series */
    if ((study && strcmp(study, inst->study_uid) != 0) ||
        (series && strcmp(series, inst->series_uid) != 0)) {
        rc = tsr_err_set(err, TSR_ENOTFOUND, "no instance %s%s%s%s%s", sop,
                         series ? " in series " : "", series ? series : "",
                         study ? " of study " : "", study ? study : "");
    } else {
        *out = *inst;
    }
    cache_release(e);
    return rc;
}

/* ---------------------------------------------------------------- handles */

static void
destroy_handle(void *data, void *ctx)
{
    (void)ctx;
    rnd_dicom_close(data);
}

typedef struct handle_job {
    const char *path;
    uint64_t size;
} handle_job;

static int
compute_handle(const void *key, size_t keylen, void *user, cache_value *out, tsr_err *err)
{
    (void)key;
    (void)keylen;
    const handle_job *j = user;
    rnd_dicom *d = NULL;
    int rc = rnd_dicom_open(j->path, NULL, &d, err);
    if (rc != TSR_OK) {
        return rc;
    }
    /* GDCM holds every value of the file in memory: about the file's size */
    out->data = d;
    out->size = (size_t)j->size + 4096;
    out->destroy = destroy_handle;
    out->ctx = NULL;
    return TSR_OK;
}

int
http__handle(http_imaging *im, const store_instance *inst, cache_entry **out, tsr_err *err)
{
    char key[80];
    int n = snprintf(key, sizeof key, "h|%s", inst->sop_instance_uid);
    handle_job j = {inst->path, inst->size};
    return cache_get_or_compute(im->handles, key, (size_t)n, compute_handle, &j, out, err);
}

/* ---------------------------------------------------------------- frames */

static void
destroy_frame(void *data, void *ctx)
{
    (void)ctx;
    rnd_frame_free(data);
}

typedef struct frame_job {
    http_imaging *im;
    const store_instance *inst;
    uint32_t index;
    int reduce;
} frame_job;

static int
compute_frame(const void *key, size_t keylen, void *user, cache_value *out, tsr_err *err)
{
    (void)key;
    (void)keylen;
    frame_job *j = user;
    cache_entry *h = NULL;
    int rc = http__handle(j->im, j->inst, &h, err);
    if (rc != TSR_OK) {
        return rc;
    }
    rnd_dicom *d = cache_entry_data(h);
    rnd_frame *f = NULL;
    if (j->index >= rnd_dicom_info(d)->frames) {
        rc = tsr_err_set(err, TSR_ENOTFOUND, "frame %u does not exist: the instance has %u",
                         j->index + 1, rnd_dicom_info(d)->frames);
    } else {
        rc = rnd_dicom_decode_frame_reduced(d, j->index, j->reduce, &f, NULL, err);
    }
    cache_release(h);
    if (rc != TSR_OK) {
        return rc;
    }
    out->data = f;
    out->size = f->bytes + sizeof *f;
    out->destroy = destroy_frame;
    return TSR_OK;
}

int
http__reduce_ok(const store_instance *inst)
{
    /* JPEG 2000 (lossless, lossy): the only codecs with resolution levels to skip */
    return strcmp(inst->transfer_syntax, "1.2.840.10008.1.2.4.90") == 0 ||
           strcmp(inst->transfer_syntax, "1.2.840.10008.1.2.4.91") == 0;
}

int
http__frame_reduced(http_imaging *im, const store_instance *inst, uint32_t index, int reduce,
                    cache_entry **out, tsr_err *err)
{
    char key[104];
    if (reduce < 0 || !http__reduce_ok(inst)) {
        reduce = 0;
    }
    int n = reduce ? snprintf(key, sizeof key, "f|%s|%u|%d", inst->sop_instance_uid, index, reduce)
                   : snprintf(key, sizeof key, "f|%s|%u", inst->sop_instance_uid, index);
    frame_job j = {im, inst, index, reduce};
    return cache_get_or_compute(im->frames, key, (size_t)n, compute_frame, &j, out, err);
}

int
http__frame(http_imaging *im, const store_instance *inst, uint32_t index, cache_entry **out,
            tsr_err *err)
{
    return http__frame_reduced(im, inst, index, 0, out, err);
}

/* ---------------------------------------------------------------- rendered frames */

void
http__rendered_destroy(void *data, void *ctx)
{
    (void)ctx;
    http_rendered *r = data;
    rnd_image_free(&r->img);
    free(r);
}

typedef struct rendered_job {
    http_imaging *im;
    const store_instance *inst;
    uint32_t index;
    const rnd_voi_req *voi;
    int reduce;
} rendered_job;

/* Renders job `j` into `r` (zeroed): decoded frame from the cache, then the display pipeline. */
static int
render_into(const rendered_job *j, http_rendered *r, tsr_err *err)
{
    cache_entry *h = NULL, *f = NULL;
    int rc = http__handle(j->im, j->inst, &h, err);
    if (rc == TSR_OK) {
        rc = http__frame_reduced(j->im, j->inst, j->index, j->reduce, &f, err);
    }
    if (rc == TSR_OK) {
        const rnd_info *info = rnd_dicom_info(cache_entry_data(h));
        rc = rnd_render_frame(info, j->index, cache_entry_data(f), j->voi, &r->img, &r->used,
                              err);
        r->pixel_aspect = rnd_pixel_aspect(info);
        r->frames = info->frames;
        snprintf(r->modality, sizeof r->modality, "%s", info->modality);
        r->columns = info->columns;
        r->rows = info->rows;
        /* the resolution levels the decoder skipped, from the size it gave */
        const rnd_frame *fr = cache_entry_data(f);
        while (r->reduce < 30 && (info->columns + (1u << r->reduce) - 1) >> r->reduce > fr->width) {
            r->reduce++;
        }
    }
    cache_release(f);
    cache_release(h);
    return rc;
}

static int
compute_rendered(const void *key, size_t keylen, void *user, cache_value *out, tsr_err *err)
{
    (void)key;
    (void)keylen;
    http_rendered *r = calloc(1, sizeof *r);
    if (!r) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    int rc = render_into(user, r, err);
    if (rc != TSR_OK) {
        rnd_image_free(&r->img);
        free(r);
        return rc;
    }
    out->data = r;
    out->size = r->img.stride * r->img.height + sizeof *r;
    out->destroy = http__rendered_destroy;
    return TSR_OK;
}

void
http__voi_key(const rnd_voi_req *voi, char *out, size_t cap)
{
    if (!voi || voi->mode == RND_VOI_MODE_DEFAULT) {
        snprintf(out, cap, "default");
    } else {
        snprintf(out, cap, "%d:%.17g,%.17g,%d,%d", (int)voi->mode, voi->center, voi->width,
                 (int)voi->fn, voi->index);
    }
}

int
http__rendered_reduced(http_imaging *im, const store_instance *inst, uint32_t index,
                       const rnd_voi_req *voi, int reduce, cache_entry **out, tsr_err *err)
{
    char key[264], vk[128];
    http__voi_key(voi, vk, sizeof vk);
    if (reduce < 0 || !http__reduce_ok(inst)) {
        reduce = 0;
    }
    int n = snprintf(key, sizeof key, "r|%s|%u|%s|%d", inst->sop_instance_uid, index, vk, reduce);
    rendered_job j = {im, inst, index, voi, reduce};
    return cache_get_or_compute(im->rendered, key, (size_t)n, compute_rendered, &j, out, err);
}

int
http__rendered_once(http_imaging *im, const store_instance *inst, uint32_t index,
                    const rnd_voi_req *voi, int reduce, http_rendered_ref *out, tsr_err *err)
{
    char key[264], vk[128];
    http__voi_key(voi, vk, sizeof vk);
    if (reduce < 0 || !http__reduce_ok(inst)) {
        reduce = 0;
    }
    int n = snprintf(key, sizeof key, "r|%s|%u|%s|%d", inst->sop_instance_uid, index, vk, reduce);
    memset(out, 0, sizeof *out);
    if (cache_try_get(im->rendered, key, (size_t)n, &out->e) == TSR_OK) {
        return TSR_OK;
    }
    http_rendered *r = calloc(1, sizeof *r);
    if (!r) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    rendered_job j = {im, inst, index, voi, reduce};
    int rc = render_into(&j, r, err);
    if (rc != TSR_OK) {
        http__rendered_destroy(r, NULL);
        return rc;
    }
    out->own = r;
    return TSR_OK;
}

void
http__rendered_ref_release(http_rendered_ref *ref)
{
    cache_release(ref->e);
    if (ref->own) {
        http__rendered_destroy(ref->own, NULL);
    }
    memset(ref, 0, sizeof *ref);
}

int
http__rendered_frame(http_imaging *im, const store_instance *inst, uint32_t index,
                     const rnd_voi_req *voi, cache_entry **out, tsr_err *err)
{
    return http__rendered_reduced(im, inst, index, voi, 0, out, err);
}

/* ---------------------------------------------------------------- encoded bytes */

static void
destroy_buf(void *data, void *ctx)
{
    (void)ctx;
    http_encoded *b = data;
    rnd_buf_free(&b->buf);
    free(b);
}

typedef struct encode_job {
    http__encode_fn fn;
    void *user;
    http_pool *pool;
    http_encoded *b;
    tsr_err *err;
} encode_job;

static int
run_encode(void *user)
{
    encode_job *j = user;
    return j->fn(j->user, &j->b->buf, j->b->meta, sizeof j->b->meta, j->err);
}

/* Runs on the requesting (connection) thread, which waits there; the work itself goes to the
 * render pool at interactive priority. Lookups, hits and single-flight waits therefore never
 * occupy a render thread. */
static int
compute_encoded(const void *key, size_t keylen, void *user, cache_value *out, tsr_err *err)
{
    (void)key;
    (void)keylen;
    encode_job *j = user;
    http_encoded *b = calloc(1, sizeof *b);
    if (!b) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    j->b = b;
    j->err = err;
    int rc = j->pool ? http__pool_run(j->pool, run_encode, j) : run_encode(j);
    if (rc != TSR_OK) {
        free(b);
        return rc;
    }
    out->data = b;
    out->size = b->buf.len + sizeof *b;
    out->destroy = destroy_buf;
    return TSR_OK;
}

int
http__encoded(http_imaging *im, http_pool *pool, const char *key, http__encode_fn fn, void *user,
              cache_entry **out, tsr_err *err)
{
    encode_job j = {fn, user, pool, NULL, NULL};
    return cache_get_or_compute(im->encoded, key, strlen(key), compute_encoded, &j, out, err);
}

void
http__send_encoded(http_req *r, const cache_entry *e, const char *ctype, char *hdr, size_t cap)
{
    const http_encoded *enc = cache_entry_data(e);
    size_t n = strlen(hdr);
    snprintf(hdr + n, cap - n, "%s", enc->meta);
    http__send(r, 200, ctype, enc->buf.data, enc->buf.len, hdr);
}

int
http__frame_cached(http_imaging *im, const store_instance *inst, uint32_t index)
{
    char key[96];
    int n = snprintf(key, sizeof key, "f|%s|%u", inst->sop_instance_uid, index);
    cache_entry *e = NULL;
    if (cache_try_get(im->frames, key, (size_t)n, &e) != TSR_OK) {
        return 0;
    }
    cache_release(e);
    return 1;
}

/* ---------------------------------------------------------------- prefetch */

typedef struct prefetch_job {
    http_imaging *im;
    store_instance inst;
} prefetch_job;

static int
run_prefetch(void *user)
{
    prefetch_job *j = user;
    cache_entry *e = NULL;
    if (http__frame(j->im, &j->inst, 0, &e, NULL) == TSR_OK) {
        cache_release(e);
    }
    return 0;
}

typedef struct prefetch_ctx {
    http_server *srv;
    int dropped;
} prefetch_ctx;

static int
prefetch_one(void *user, const store_instance *inst)
{
    prefetch_ctx *pc = user;
    if (pc->dropped || inst->frames == 0 || http__frame_cached(pc->srv->im, inst, 0)) {
        return 0;
    }
    prefetch_job *j = malloc(sizeof *j);
    if (!j) {
        return 0;
    }
    j->im = pc->srv->im;
    j->inst = *inst;
    if (http__pool_prefetch(pc->srv->pool, run_prefetch, j, free) != 0) {
        free(j);
        pc->dropped = 1; /* queue full: the rest would be dropped too */
    }
    return 0;
}

void
http__prefetch_neighbours(http_server *srv, const store_instance *inst)
{
    if (srv->opts.prefetch <= 0) {
        return;
    }
    prefetch_ctx pc = {srv, 0};
    store_neighbours(srv->st, inst, srv->opts.prefetch, prefetch_one, &pc, NULL);
}
