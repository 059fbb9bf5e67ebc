/* SPDX-License-Identifier: MIT */
/* mpr.c: multiplanar reformats of a series, rendered on the server (render/rnd_volume.c and
 * rnd_mpr.c do the geometry; this file is the HTTP side).
 *
 *   {series}/volume                  the series as a volume (JSON): slices in order with their
 *                                    positions, spacing, orientation, extent, tilt, gaps
 *   {series}/mpr/rendered?{plane}    a reformatted image (JPEG or PNG; window, viewport,
 *                                    quality as .../rendered); the plane's geometry in headers
 *   {series}/mpr/geometry?{plane}    the same plane's geometry (JSON), without pixels
 *   {series}/mpr/tiles?{plane}       the plane's tile pyramid (JSON), and its tiles at
 *   {series}/mpr/tiles/{window}/{quality}/{level}/{col}/{row}.{jpg|png}?{plane}
 *                                    (the same grammar and pixels rules as frame tiles)
 *
 * {plane} is query parameters:
 *   plane=axial|coronal|sagittal     (default axial) with position=<mm> along z, y or x (LPS;
 *                                    default the middle of the volume), or
 *   plane=oblique                    with point=x,y,z (default the middle) and either
 *                                    row=x,y,z&col=x,y,z or normal=x,y,z&up=x,y,z
 *   spacing=<mm>                     output pixel size (default the volume's in-plane spacing)
 *   slab=<mm>[,mip|minip|average]    thick slab along the plane normal (default mode mip)
 *   interpolation=linear|nearest     (default linear: trilinear)
 *
 * A volume is built once per series from the decoded-frame cache, in parallel, and kept in the
 * "volumes" cache pool (charged at its voxel bytes). Responses carry an ETag; since a series can
 * still grow, they are revalidated (no-cache) rather than immutable. */
#define _GNU_SOURCE
#include "http_internal.h"
#include "negotiate.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- volumes */

typedef struct vol_src {
    store_instance inst;
    uint32_t frame;
    double slope, intercept;
} vol_src;

typedef struct http_volume {
    rnd_volume *vol;
    rnd_vol_summary sum;
    vol_src *src; /* by sorted slice */
    size_t n;
    /* display attributes of the series (its first instance) */
    rnd_photometric photometric;
    int presentation_inverse;
    int n_windows;
    rnd_window windows[RND_MAX_WINDOWS];
    char modality[17];
    float vmin, vmax;
} http_volume;

static void
volume_free(http_volume *hv)
{
    if (hv) {
        rnd_volume_free(hv->vol);
        free(hv->src);
        free(hv);
    }
}

static void
destroy_volume(void *data, void *ctx)
{
    (void)ctx;
    volume_free(data);
}

typedef struct collect_ctx {
    vol_src *v;
    size_t n, cap;
} collect_ctx;

static int
collect_push(collect_ctx *c, const store_instance *inst, uint32_t frame, double slope,
             double intercept)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 128;
        vol_src *v = realloc(c->v, cap * sizeof *v);
        if (!v) {
            return TSR_ENOMEM;
        }
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n].inst = *inst;
    c->v[c->n].frame = frame;
    c->v[c->n].slope = slope;
    c->v[c->n].intercept = intercept;
    c->n++;
    return 0;
}

static int
collect_instance(void *user, const store_instance *inst)
{
    return inst->frames == 0 ? 0 : collect_push(user, inst, 0, 1.0, 0.0);
}

typedef struct fill_ctx {
    http_imaging *im;
    http_volume *hv;
    pthread_mutex_t mu;
    size_t next;
    int rc;
    tsr_err err;
} fill_ctx;

/* Takes sorted slices one by one from the shared counter and fills them from the frame cache. */
static void *
fill_worker(void *arg)
{
    fill_ctx *fc = arg;
    for (;;) {
        pthread_mutex_lock(&fc->mu);
        size_t k = fc->next++;
        int stop = fc->rc != TSR_OK || k >= fc->hv->n;
        pthread_mutex_unlock(&fc->mu);
        if (stop) {
            return NULL;
        }
        const vol_src *s = &fc->hv->src[k];
        cache_entry *e = NULL;
        tsr_err err = {0};
        int rc = http__frame(fc->im, &s->inst, s->frame, &e, &err);
        if (rc == TSR_OK) {
            rc = rnd_volume_set_slice(fc->hv->vol, k, cache_entry_data(e), s->slope, s->intercept,
                                      &err);
            cache_release(e);
        }
        if (rc != TSR_OK) {
            pthread_mutex_lock(&fc->mu);
            if (fc->rc == TSR_OK) {
                fc->rc = rc;
                tsr_err_set(&fc->err, rc, "slice %zu (%s): %s", k + 1, s->inst.sop_instance_uid,
                            err.msg);
            }
            pthread_mutex_unlock(&fc->mu);
        }
    }
}

/* Fills every slice, on this thread and one more per further core. */
static int
fill_parallel(http_imaging *im, http_volume *hv, tsr_err *err)
{
    fill_ctx fc = {.im = im, .hv = hv, .next = 0, .rc = TSR_OK};
    pthread_mutex_init(&fc.mu, NULL);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int extra = cores > 1 ? (int)(cores > 8 ? 7 : cores - 1) : 0;
    pthread_t th[7];
    int started = 0;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, (size_t)8 << 20); /* decoders need deep stacks */
    for (int i = 0; i < extra; i++) {
        if (pthread_create(&th[started], &attr, fill_worker, &fc) == 0) {
            started++;
        }
    }
    pthread_attr_destroy(&attr);
    fill_worker(&fc);
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
    }
    pthread_mutex_destroy(&fc.mu);
    if (fc.rc != TSR_OK) {
        return tsr_err_set(err, fc.rc, "%s", fc.err.msg);
    }
    return TSR_OK;
}

typedef struct volume_job {
    http_server *srv;
    const char *study, *series;
} volume_job;

/* The slices of the series: one per single-frame instance, one per frame of a multi-frame
 * instance with per-frame positions. Also checks what a reformat cannot show. */
enum { VOXELS_INT16 = 0, VOXELS_TRY_INT16, VOXELS_FLOAT };

static int
volume_slices(http_server *srv, collect_ctx *all, http_volume *hv, rnd_vol_slice **out,
              collect_ctx *srcs, int *voxels, tsr_err *err)
{
    rnd_vol_slice *sl = NULL;
    size_t n = 0, cap = 0;
    int rc = TSR_OK, first = 1;
    for (size_t i = 0; i < all->n && rc == TSR_OK; i++) {
        cache_entry *h = NULL;
        rc = http__handle(srv->im, &all->v[i].inst, &h, err);
        if (rc != TSR_OK) {
            break;
        }
        const rnd_info *info = rnd_dicom_info(cache_entry_data(h));
        if (info->samples_per_pixel != 1 ||
            (info->photometric != RND_PI_MONOCHROME1 && info->photometric != RND_PI_MONOCHROME2)) {
            rc = tsr_err_set(err, TSR_EUNSUPP,
                             "the series is not a volume: instance %s is colour (%s)",
                             all->v[i].inst.sop_instance_uid,
                             rnd_photometric_name(info->photometric));
        } else if (info->modality_lut.data) {
            rc = tsr_err_set(err, TSR_EUNSUPP,
                             "instance %s has a Modality LUT Sequence, which reformats do not "
                             "apply yet",
                             all->v[i].inst.sop_instance_uid);
        }
        if (rc == TSR_OK && first) {
            first = 0;
            hv->photometric = info->photometric;
            hv->presentation_inverse = info->presentation_inverse;
            hv->n_windows = info->n_windows;
            memcpy(hv->windows, info->windows, sizeof hv->windows);
            snprintf(hv->modality, sizeof hv->modality, "%s", info->modality);
        }
        uint32_t nf = info->frame_meta ? info->frames : 1;
        for (uint32_t f = 0; f < nf && rc == TSR_OK; f++) {
            const rnd_frame_meta *fm = info->frame_meta ? &info->frame_meta[f] : NULL;
            double slope = info->has_rescale ? info->rescale_slope : 1.0;
            double icpt = info->has_rescale ? info->rescale_intercept : 0.0;
            if (fm && fm->has_rescale) {
                slope = fm->slope;
                icpt = fm->intercept;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 128;
                rnd_vol_slice *v = realloc(sl, cap * sizeof *v);
                if (!v) {
                    rc = tsr_err_set(err, TSR_ENOMEM, "out of memory");
                    break;
                }
                sl = v;
            }
            rnd_vol_slice *s = &sl[n];
            memset(s, 0, sizeof *s);
            s->rows = info->rows;
            s->columns = info->columns;
            /* missing geometry leaves zeros, which the planner drops and counts */
            if (info->has_pixel_spacing) {
                memcpy(s->pixel_spacing, info->pixel_spacing, sizeof s->pixel_spacing);
            }
            if (fm && fm->has_orientation) {
                memcpy(s->orientation, fm->orientation, sizeof s->orientation);
            } else if (info->has_orientation) {
                memcpy(s->orientation, info->orientation, sizeof s->orientation);
            }
            if (fm && fm->has_position) {
                memcpy(s->position, fm->position, sizeof s->position);
            } else if (info->has_position) {
                memcpy(s->position, info->position, sizeof s->position);
            }
            s->id = (uint32_t)srcs->n;
            if (collect_push(srcs, &all->v[i].inst, f, slope, icpt) != 0) {
                rc = tsr_err_set(err, TSR_ENOMEM, "out of memory");
                break;
            }
            /* int16 voxels when every value is sure to fit; "try" when the values are integers
             * but the declared range is wider than int16 (16-bit unsigned CT that really holds
             * -1024..3071 is the common case): the fill says whether they fit */
            if (!rnd_volume_fits_int16(info, slope, icpt)) {
                int integral = !info->float_pixels && slope == floor(slope) && icpt == floor(icpt);
                if (!integral) {
                    *voxels = VOXELS_FLOAT;
                } else if (*voxels == VOXELS_INT16) {
                    *voxels = VOXELS_TRY_INT16;
                }
            }
            n++;
        }
        cache_release(h);
    }
    if (rc != TSR_OK) {
        free(sl);
        return rc;
    }
    *out = sl;
    return TSR_OK;
}

static int
build_volume(http_server *srv, const char *study, const char *series, http_volume **out,
             tsr_err *err)
{
    collect_ctx all = {0}, srcs = {0};
    rnd_vol_slice *sl = NULL;
    rnd_vol_geom *g = NULL;
    http_volume *hv = calloc(1, sizeof *hv);
    if (!hv) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    int voxels = VOXELS_INT16;
    int rc = store_each_instance(srv->st, study, series, collect_instance, &all, err);
    if (rc == TSR_OK && all.n == 0) {
        rc = tsr_err_set(err, TSR_ENOTFOUND, "series %s has no images", series);
    }
    if (rc == TSR_OK) {
        rc = volume_slices(srv, &all, hv, &sl, &srcs, &voxels, err);
    }
    if (rc == TSR_OK) {
        rc = rnd_volume_plan(sl, srcs.n, &g, err);
        if (rc == TSR_EINVAL) {
            tsr_err_prefix(err, rc, "the series is not a volume: ");
            rc = TSR_EUNSUPP;
            if (err) {
                err->code = rc;
            }
        }
    }
    /* half the budget at most, so that one volume cannot empty every cache */
    uint64_t max_bytes = http__imaging_budget(srv->im) / 2;
    if (rc == TSR_OK) {
        rc = rnd_volume_new(g, voxels == VOXELS_FLOAT, max_bytes, &hv->vol, err);
    }
    if (rc == TSR_OK) {
        rnd_vol_geom_summary(g, &hv->sum);
        hv->n = hv->sum.slices;
        hv->src = malloc(hv->n * sizeof *hv->src);
        if (!hv->src) {
            rc = tsr_err_set(err, TSR_ENOMEM, "out of memory");
        }
        for (size_t k = 0; rc == TSR_OK && k < hv->n; k++) {
            uint32_t id = 0;
            rnd_vol_geom_slice(g, k, &id, NULL, NULL);
            hv->src[k] = srcs.v[id];
        }
    }
    if (rc == TSR_OK) {
        rc = fill_parallel(srv->im, hv, err);
        if (rc == TSR_EINVAL && voxels == VOXELS_TRY_INT16) {
            /* a value outside int16: the same volume in float */
            rnd_volume_free(hv->vol);
            hv->vol = NULL;
            rc = rnd_volume_new(g, 1, max_bytes, &hv->vol, err);
            if (rc == TSR_OK) {
                rc = fill_parallel(srv->im, hv, err);
            }
        }
    }
    if (rc == TSR_OK && rnd_volume_range(hv->vol, &hv->vmin, &hv->vmax) != TSR_OK) {
        rc = tsr_err_set(err, TSR_EINTERNAL, "the volume was not filled completely");
    }
    rnd_vol_geom_free(g);
    free(sl);
    free(all.v);
    free(srcs.v);
    if (rc != TSR_OK) {
        volume_free(hv);
        return rc;
    }
    *out = hv;
    return TSR_OK;
}

static int
compute_volume(const void *key, size_t keylen, void *user, cache_value *out, tsr_err *err)
{
    (void)key;
    (void)keylen;
    const volume_job *j = user;
    http_volume *hv = NULL;
    int rc = build_volume(j->srv, j->study, j->series, &hv, err);
    if (rc != TSR_OK) {
        return rc;
    }
    out->data = hv;
    out->size = rnd_volume_bytes(hv->vol) + hv->n * sizeof *hv->src + sizeof *hv;
    out->destroy = destroy_volume;
    return TSR_OK;
}

/* The volume of the series, from the cache or built. Must run on a render pool thread (or any
 * thread with a deep stack): the build decodes. */
static int
volume_get(http_server *srv, const char *study, const char *series, cache_entry **out,
           tsr_err *err)
{
    char key[160];
    int n = snprintf(key, sizeof key, "v|%s|%s", study, series);
    volume_job j = {srv, study, series};
    return cache_get_or_compute(http__imaging_volumes(srv->im), key, (size_t)n, compute_volume,
                                &j, out, err);
}

typedef struct volume_call {
    http_server *srv;
    const char *study, *series;
    cache_entry *e;
    tsr_err *err;
} volume_call;

static int
run_volume_get(void *user)
{
    volume_call *c = user;
    return volume_get(c->srv, c->study, c->series, &c->e, c->err);
}

/* volume_get from a connection thread: the work goes to the render pool. */
static int
volume_get_pooled(http_req *r, cache_entry **out, tsr_err *err)
{
    volume_call c = {r->srv, r->study, r->series, NULL, err};
    int rc = http__pool_run(r->srv->pool, run_volume_get, &c);
    if (rc == TSR_OK) {
        *out = c.e;
    }
    return rc;
}

/* ---------------------------------------------------------------- plane parameters */

static const char *const k_mpr_known[] = {"plane", "position", "point",  "row",
                                          "col",   "normal",   "up",     "spacing",
                                          "slab",  "interpolation", NULL};

/* "x,y,z" with finite numbers. */
static int
parse_vec3(const char *s, double v[3])
{
    char *end;
    for (int i = 0; i < 3; i++) {
        v[i] = strtod(s, &end);
        if (end == s || !isfinite(v[i])) {
            return -1;
        }
        s = end;
        if (i < 2) {
            if (*s != ',') {
                return -1;
            }
            s++;
        }
    }
    return *s ? -1 : 0;
}

static int
parse_number(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v)) {
        return -1;
    }
    *out = v;
    return 0;
}

int
http__mpr_parse(http_req *r, http_mpr_params *m)
{
    memset(m, 0, sizeof *m);
    m->axis = RND_AXIS_AXIAL;
    char v[256];
    int has = http__param(r->query, "plane", v, sizeof v);
    if (has > 0) {
        if (strcmp(v, "axial") == 0) {
            m->axis = RND_AXIS_AXIAL;
        } else if (strcmp(v, "coronal") == 0) {
            m->axis = RND_AXIS_CORONAL;
        } else if (strcmp(v, "sagittal") == 0) {
            m->axis = RND_AXIS_SAGITTAL;
        } else if (strcmp(v, "oblique") == 0) {
            m->axis = -1;
        } else {
            has = -1;
        }
    }
    if (has < 0) {
        http__error(r, 400, "plane must be axial, coronal, sagittal or oblique");
        return -1;
    }
    struct {
        const char *name;
        int *flag;
        double *v;
    } vecs[] = {{"point", &m->has_point, m->point},   {"row", &m->has_row, m->row},
                {"col", &m->has_col, m->col},         {"normal", &m->has_normal, m->normal},
                {"up", &m->has_up, m->up}};
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
        has = http__param(r->query, vecs[i].name, v, sizeof v);
        if (has > 0 && parse_vec3(v, vecs[i].v) == 0) {
            *vecs[i].flag = 1;
        } else if (has != 0) {
            http__error(r, 400, "%s must be three numbers x,y,z (patient mm, LPS)",
                        vecs[i].name);
            return -1;
        }
    }
    has = http__param(r->query, "position", v, sizeof v);
    if (has > 0 && parse_number(v, &m->position) == 0) {
        m->has_position = 1;
    } else if (has != 0) {
        http__error(r, 400, "position must be a number (mm along the plane's axis)");
        return -1;
    }
    has = http__param(r->query, "spacing", v, sizeof v);
    if (has != 0 && (has < 0 || parse_number(v, &m->spacing) != 0 || m->spacing <= 0)) {
        http__error(r, 400, "spacing must be a number of mm > 0");
        return -1;
    }
    has = http__param(r->query, "slab", v, sizeof v);
    if (has != 0) {
        char *comma = has > 0 ? strchr(v, ',') : NULL;
        const char *mode = comma ? comma + 1 : "mip";
        if (comma) {
            *comma = '\0';
        }
        m->slab.mode = RND_SLAB_MIP;
        int ok = has > 0 && parse_number(v, &m->slab.thickness_mm) == 0 &&
                 m->slab.thickness_mm >= 0;
        if (ok && strcmp(mode, "minip") == 0) {
            m->slab.mode = RND_SLAB_MINIP;
        } else if (ok && (strcmp(mode, "average") == 0 || strcmp(mode, "avg") == 0)) {
            m->slab.mode = RND_SLAB_AVERAGE;
        } else if (strcmp(mode, "mip") != 0) {
            ok = 0;
        }
        if (!ok) {
            http__error(r, 400, "slab must be thickness_mm[,mip|minip|average] with a "
                                "thickness >= 0");
            return -1;
        }
    }
    has = http__param(r->query, "interpolation", v, sizeof v);
    if (has > 0 && strcmp(v, "nearest") == 0) {
        m->interp = RND_INTERP_NEAREST;
    } else if (has != 0 && !(has > 0 && (strcmp(v, "linear") == 0 ||
                                         strcmp(v, "trilinear") == 0))) {
        http__error(r, 400, "interpolation must be linear or nearest");
        return -1;
    }
    if (m->axis >= 0 && (m->has_row || m->has_col || m->has_normal || m->has_up)) {
        http__error(r, 400, "row, col, normal and up belong to plane=oblique");
        return -1;
    }
    if (m->axis < 0) {
        int rc_ok = (m->has_row && m->has_col && !m->has_normal && !m->has_up) ||
                    (m->has_normal && m->has_up && !m->has_row && !m->has_col);
        if (!rc_ok) {
            http__error(r, 400, "plane=oblique needs row and col, or normal and up (x,y,z each)");
            return -1;
        }
        if (m->has_position) {
            http__error(r, 400, "plane=oblique takes point=x,y,z, not position");
            return -1;
        }
    } else if (m->has_point) {
        http__error(r, 400, "point belongs to plane=oblique; standard planes take position");
        return -1;
    }
    return 0;
}

int
http__mpr_plane(const rnd_vol_geom *g, const http_mpr_params *m, rnd_plane *p, tsr_err *err)
{
    rnd_vol_summary sum;
    rnd_vol_geom_summary(g, &sum);
    double mid[3];
    for (int i = 0; i < 3; i++) {
        mid[i] = 0.5 * (sum.extent_min[i] + sum.extent_max[i]);
    }
    if (m->axis >= 0) {
        /* the axis normal to the plane: z for axial, y for coronal, x for sagittal */
        int ax = m->axis == RND_AXIS_AXIAL ? 2 : (m->axis == RND_AXIS_CORONAL ? 1 : 0);
        double pos = m->has_position ? m->position : mid[ax];
        return rnd_plane_standard(g, (rnd_plane_axis)m->axis, pos, m->spacing, p, err);
    }
    const double *pt = m->has_point ? m->point : mid;
    if (m->has_row) {
        return rnd_plane_oblique(g, pt, m->row, m->col, m->spacing, p, err);
    }
    return rnd_plane_from_normal(g, pt, m->normal, m->up, m->spacing, p, err);
}

/* The plane and slab as text: the part of cache keys and ETags that is geometry. */
static void
plane_key(const http_volume *hv, const rnd_plane *p, const http_mpr_params *m, char *out,
          size_t cap)
{
    snprintf(out, cap,
             "%zu|%s|%.17g,%.17g,%.17g|%.17g,%.17g,%.17g|%.17g,%.17g,%.17g|%.17g|%ux%u|%.17g,%d|%d",
             hv->n, hv->src[0].inst.sop_instance_uid, p->origin[0], p->origin[1], p->origin[2],
             p->row[0], p->row[1], p->row[2], p->col[0], p->col[1], p->col[2], p->spacing,
             p->width, p->height, m->slab.thickness_mm, (int)m->slab.mode, (int)m->interp);
}

static const char *
slab_mode_name(rnd_slab_mode m)
{
    return m == RND_SLAB_MINIP ? "minip" : (m == RND_SLAB_AVERAGE ? "average" : "mip");
}

/* ---------------------------------------------------------------- rendering */

/* An rnd_info for a reformatted frame: modality values already (no rescale), the series'
 * photometric interpretation and windows, square pixels. */
static void
reformat_info(const http_volume *hv, const rnd_plane *p, const rnd_frame *f, rnd_info *info)
{
    memset(info, 0, sizeof *info);
    info->rows = p->height;
    info->columns = p->width;
    info->frames = 1;
    info->samples_per_pixel = 1;
    info->bits_allocated = f->type == RND_T_F32 ? 32 : 16;
    info->bits_stored = info->bits_allocated;
    info->high_bit = (uint16_t)(info->bits_stored - 1);
    info->pixel_representation = 1;
    info->float_pixels = f->type == RND_T_F32 ? 32 : 0;
    info->photometric = hv->photometric;
    info->presentation_inverse = hv->presentation_inverse;
    info->rescale_slope = 1.0;
    info->n_windows = hv->n_windows;
    memcpy(info->windows, hv->windows, sizeof info->windows);
    info->has_pixel_spacing = 1;
    info->pixel_spacing[0] = info->pixel_spacing[1] = p->spacing;
    snprintf(info->modality, sizeof info->modality, "%s", hv->modality);
}

typedef struct mpr_call {
    http_req *r;
    http_mpr_params m;
    http_render_params p; /* rendered: window, viewport, quality, format */
    http_tile_addr t;     /* tiles: window, format, quality, level, col, row */
    int tile;             /* a tile, not .../mpr/rendered */
    const rnd_voi_req *voi;
    rnd_plane plane;
    char pkey[1024]; /* plane_key */
    char key[1400];  /* the cache key of the encoded image */
} mpr_call;

/* The 8-bit reformat at one window: the reformat, then the display pipeline with the series'
 * photometric interpretation and windows. Runs on the render pool. */
typedef struct band {
    const rnd_volume *vol;
    const rnd_plane *plane;
    const rnd_slab *slab;
    rnd_interp interp;
    uint32_t y0, h;
    rnd_frame *out;
    int rc;
    tsr_err err;
} band;

static void *
band_run(void *arg)
{
    band *b = arg;
    b->rc = rnd_mpr_render_rect(b->vol, b->plane, b->slab, b->interp, 0, b->y0, b->plane->width,
                                b->h, &b->out, &b->err);
    return NULL;
}

/* rnd_mpr_render in horizontal bands, one per core (at most 4), so that one large reformat or
 * slab is not bound to one core; rnd_mpr_render_rect makes each band bit for bit the same rows
 * of the whole plane. Small planes run on the calling thread. */
static int
render_banded(const rnd_volume *vol, const rnd_plane *plane, const rnd_slab *slab,
              rnd_interp interp, rnd_frame **out, tsr_err *err)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t work =
        (uint64_t)plane->width * plane->height * (slab && slab->thickness_mm > 0 ? 8u : 1u);
    int nb = cores > 4 ? 4 : (int)(cores < 1 ? 1 : cores);
    if (nb < 2 || work < 256u * 1024u || plane->height < (uint32_t)nb) {
        return rnd_mpr_render(vol, plane, slab, interp, out, err);
    }
    band b[4];
    pthread_t th[4];
    int started[4] = {0};
    uint32_t y = 0;
    for (int i = 0; i < nb; i++) {
        uint32_t h = plane->height / (uint32_t)nb + ((uint32_t)i < plane->height % (uint32_t)nb);
        b[i] = (band){vol, plane, slab, interp, y, h, NULL, TSR_OK, {0}};
        y += h;
    }
    for (int i = 1; i < nb; i++) {
        started[i] = pthread_create(&th[i], NULL, band_run, &b[i]) == 0;
        if (!started[i]) {
            band_run(&b[i]); /* no thread: do it here */
        }
    }
    band_run(&b[0]);
    for (int i = 1; i < nb; i++) {
        if (started[i]) {
            pthread_join(th[i], NULL);
        }
    }
    int rc = TSR_OK;
    for (int i = 0; i < nb && rc == TSR_OK; i++) {
        if (b[i].rc != TSR_OK) {
            rc = tsr_err_set(err, b[i].rc, "%s", b[i].err.msg);
        }
    }
    rnd_frame *f = NULL;
    if (rc == TSR_OK) {
        rc = rnd_frame_alloc(plane->width, plane->height, 1, b[0].out->type, &f, err);
    }
    if (rc == TSR_OK) {
        size_t at = 0;
        for (int i = 0; i < nb; i++) {
            memcpy((uint8_t *)f->data + at, b[i].out->data, b[i].out->bytes);
            at += b[i].out->bytes;
        }
        /* the rest of the frame's description is the bands' (type, photometric, bits) */
        f->bits_stored = b[0].out->bits_stored;
        f->is_signed = b[0].out->is_signed;
        f->photometric = b[0].out->photometric;
        *out = f;
    }
    for (int i = 0; i < nb; i++) {
        rnd_frame_free(b[i].out);
    }
    return rc;
}

static int
compute_mpr_rendered(const void *key, size_t keylen, void *user, cache_value *out, tsr_err *err)
{
    (void)key;
    (void)keylen;
    mpr_call *c = user;
    cache_entry *ve = NULL;
    int rc = volume_get(c->r->srv, c->r->study, c->r->series, &ve, err);
    if (rc != TSR_OK) {
        return rc;
    }
    const http_volume *hv = cache_entry_data(ve);
    rnd_frame *f = NULL;
    http_rendered *hr = calloc(1, sizeof *hr);
    if (!hr) {
        rc = tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    if (rc == TSR_OK) {
        rc = render_banded(hv->vol, &c->plane, c->m.slab.thickness_mm > 0 ? &c->m.slab : NULL,
                           c->m.interp, &f, err);
    }
    if (rc == TSR_OK) {
        rnd_info info;
        reformat_info(hv, &c->plane, f, &info);
        rc = rnd_render_frame(&info, 0, f, c->voi, &hr->img, &hr->used, err);
        hr->pixel_aspect = 1.0;
        hr->frames = 1;
        hr->columns = c->plane.width;
        hr->rows = c->plane.height;
        snprintf(hr->modality, sizeof hr->modality, "%s", hv->modality);
    }
    rnd_frame_free(f);
    cache_release(ve);
    if (rc != TSR_OK) {
        free(hr);
        return rc;
    }
    out->data = hr;
    out->size = hr->img.stride * hr->img.height + sizeof *hr;
    out->destroy = http__rendered_destroy;
    return TSR_OK;
}

static int
mpr_rendered(mpr_call *c, cache_entry **out, tsr_err *err)
{
    char vk[128], key[1300];
    http__voi_key(c->voi, vk, sizeof vk);
    int n = snprintf(key, sizeof key, "M|%s|%s|%s", c->r->series, c->pkey, vk);
    return cache_get_or_compute(http__imaging_rendered(c->r->srv->im), key, (size_t)n,
                                compute_mpr_rendered, c, out, err);
}

/* Encodes the reformat (or one tile of its pyramid); runs on the render pool. */
static int
encode_mpr(void *user, rnd_buf *out, char *meta, size_t metacap, tsr_err *err)
{
    mpr_call *c = user;
    cache_entry *e = NULL;
    int rc = mpr_rendered(c, &e, err);
    if (rc != TSR_OK) {
        return rc;
    }
    const http_rendered *hr = cache_entry_data(e);
    rnd_image sized = {0};
    const rnd_image *show = &hr->img;
    if (c->tile) {
        rc = rnd_render_tile(&hr->img, 1.0, (uint32_t)c->r->srv->opts.tile_size, c->t.level,
                             c->t.col, c->t.row, &sized, err);
        if (rc == TSR_ENOTFOUND) {
            tsr_err_set(err, TSR_ENOTFOUND, "no tile %u,%u at level %d of this plane", c->t.col,
                        c->t.row, c->t.level);
        }
        show = &sized;
    } else if (c->p.has_viewport) {
        rc = rnd_resample(&hr->img, 1.0, &c->p.vp, &sized, err);
        show = &sized;
    }
    if (rc == TSR_OK) {
        rc = c->tile ? rnd_encode(show, c->t.fmt, c->t.quality, out, err)
                     : rnd_encode(show, c->p.fmt, c->p.quality, out, err);
    }
    if (rc == TSR_OK) {
        snprintf(meta, metacap, "X-Tessera-Window: %.17g,%.17g,%s\r\n", hr->used.center,
                 hr->used.width, rnd_voi_fn_name(hr->used.fn));
    }
    rnd_image_free(&sized);
    cache_release(e);
    return rc;
}

/* The geometry response headers of a plane. */
static void
plane_headers(const rnd_plane *p, char *out, size_t cap)
{
    snprintf(out, cap,
             "X-Tessera-Plane-Origin: %.9g,%.9g,%.9g\r\n"
             "X-Tessera-Plane-Row: %.9g,%.9g,%.9g\r\n"
             "X-Tessera-Plane-Col: %.9g,%.9g,%.9g\r\n"
             "X-Tessera-Plane-Spacing: %.9g\r\n"
             "X-Tessera-Plane-Size: %u,%u\r\n"
             "Access-Control-Expose-Headers: ETag, X-Tessera-Window, X-Tessera-Plane-Origin, "
             "X-Tessera-Plane-Row, X-Tessera-Plane-Col, X-Tessera-Plane-Spacing, "
             "X-Tessera-Plane-Size\r\n",
             p->origin[0], p->origin[1], p->origin[2], p->row[0], p->row[1], p->row[2],
             p->col[0], p->col[1], p->col[2], p->spacing, p->width, p->height);
}

static json_t *
vec_json(const double v[3])
{
    return json_pack("[fff]", v[0], v[1], v[2]);
}

typedef struct plane_call {
    http_req *r;
    const http_mpr_params *m;
    rnd_plane plane;
    char key[1024];
    tsr_err *err;
} plane_call;

/* On the pool: the volume (built if needed), then the plane. */
static int
run_plane(void *user)
{
    plane_call *c = user;
    cache_entry *ve = NULL;
    int rc = volume_get(c->r->srv, c->r->study, c->r->series, &ve, c->err);
    if (rc != TSR_OK) {
        return rc;
    }
    const http_volume *hv = cache_entry_data(ve);
    rc = http__mpr_plane(rnd_volume_geom(hv->vol), c->m, &c->plane, c->err);
    if (rc == TSR_OK && c->m->slab.thickness_mm > 0) {
        /* refuse an impossible slab now, not after the image was promised */
        rnd_frame *probe = NULL;
        rnd_plane one = c->plane;
        one.width = one.height = 1;
        uint32_t cx = c->plane.width / 2, cy = c->plane.height / 2;
        rnd_plane_point(&c->plane, cx, cy, one.origin);
        rc = rnd_mpr_render(hv->vol, &one, &c->m->slab, c->m->interp, &probe, c->err);
        if (rc == TSR_ENOTFOUND) {
            rc = TSR_OK; /* the centre may be outside; the whole plane is checked later */
        }
        rnd_frame_free(probe);
    }
    if (rc == TSR_OK) {
        plane_key(hv, &c->plane, c->m, c->key, sizeof c->key);
    }
    cache_release(ve);
    return rc;
}

static void
send_geometry(http_req *r, const http_mpr_params *m, const rnd_plane *p)
{
    double normal[3] = {p->row[1] * p->col[2] - p->row[2] * p->col[1],
                        p->row[2] * p->col[0] - p->row[0] * p->col[2],
                        p->row[0] * p->col[1] - p->row[1] * p->col[0]};
    double centre[3];
    rnd_plane_point(p, (p->width - 1) / 2.0, (p->height - 1) / 2.0, centre);
    json_t *o = json_pack("{s:o,s:o,s:o,s:o,s:o,s:f,s:i,s:i,s:s}", "origin", vec_json(p->origin),
                          "rowDirection", vec_json(p->row), "columnDirection", vec_json(p->col),
                          "normal", vec_json(normal), "center", vec_json(centre), "spacing",
                          p->spacing, "width", (json_int_t)p->width, "height",
                          (json_int_t)p->height, "interpolation",
                          m->interp == RND_INTERP_NEAREST ? "nearest" : "linear");
    if (o && m->slab.thickness_mm > 0) {
        json_object_set_new(o, "slab",
                            json_pack("{s:f,s:s}", "thickness", m->slab.thickness_mm, "mode",
                                      slab_mode_name(m->slab.mode)));
    }
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!txt) {
        http__error(r, 500, "cannot build the geometry");
        return;
    }
    http__send(r, 200, "application/json", txt, strlen(txt), "Cache-Control: no-cache\r\n");
    free(txt);
}

/* Sends the encoded reformat of `c` (built on the pool on a miss), with ETag and geometry. */
static void
send_encoded_mpr(http_req *r, mpr_call *c, const char *ctype)
{
    char etag[40], hdr[1600];
    http__etag(c->key, 'm', etag);
    const char *extra = !c->tile                  ? "Vary: Accept\r\n"
                        : c->t.fmt == RND_FMT_PNG ? "X-Tessera-Quality: lossless\r\n"
                                                  : "X-Tessera-Quality: lossy\r\n";
    int n = snprintf(hdr, sizeof hdr, "ETag: %s\r\n%sCache-Control: private, no-cache\r\n", etag,
                     extra);
    plane_headers(&c->plane, hdr + n, sizeof hdr - (size_t)n);
    const char *inm = mg_get_header(r->conn, "If-None-Match");
    if (inm && http__etag_matches(inm, etag)) {
        http__head(r, 304, NULL, -1, hdr);
        return;
    }
    cache_entry *e = NULL;
    tsr_err err = {0};
    int rc = http__encoded(r->srv->im, r->srv->pool, c->key, encode_mpr, c, &e, &err);
    if (rc == TSR_OK) {
        http__send_encoded(r, e, ctype, hdr, sizeof hdr);
        cache_release(e);
    } else {
        http__error_status(r, rc, &err);
    }
}

static mpr_call *
call_new(http_req *r, const http_mpr_params *m, const rnd_plane *plane, const char *pkey)
{
    mpr_call *c = calloc(1, sizeof *c);
    if (!c) {
        http__error(r, 503, "out of memory");
        return NULL;
    }
    c->r = r;
    c->m = *m;
    c->plane = *plane;
    snprintf(c->pkey, sizeof c->pkey, "%s", pkey);
    return c;
}

static void
send_rendered(http_req *r, const http_mpr_params *m, const rnd_plane *plane, const char *pkey)
{
    static const char *const offered[] = {"image/jpeg", "image/png"};
    int chosen;
    if (http__negotiate(r, offered, 2, &chosen, NULL) != 0) {
        return;
    }
    mpr_call *c = call_new(r, m, plane, pkey);
    if (!c) {
        return;
    }
    if (http__render_params(r, 0, k_mpr_known, &c->p) != 0) {
        free(c);
        return;
    }
    c->voi = &c->p.voi;
    c->p.fmt = chosen == 1 ? RND_FMT_PNG : RND_FMT_JPEG;
    if (c->p.annotate_patient || c->p.annotate_technique) {
        http__warn(r, "annotation is not drawn on reformats");
    }
    char vk[128];
    http__voi_key(&c->p.voi, vk, sizeof vk);
    snprintf(c->key, sizeof c->key, "m|%s|%s|%s|%d|%u,%u,%d,%.17g,%.17g,%.17g,%.17g,%d,%d|%d|%d",
             r->series, pkey, vk, c->p.has_viewport, c->p.vp.vw, c->p.vp.vh, c->p.vp.has_region,
             c->p.vp.sx, c->p.vp.sy, c->p.vp.sw, c->p.vp.sh, c->p.vp.sw_to_edge,
             c->p.vp.sh_to_edge, c->p.quality, (int)c->p.fmt);
    send_encoded_mpr(r, c, offered[chosen]);
    free(c);
}

/* One tile of the plane's pyramid: .../mpr/tiles/{window}/{quality}/{level}/{col}/{row}.{ext} */
static void
send_tile(http_req *r, const http_mpr_params *m, const rnd_plane *plane, const char *pkey,
          const char *rest)
{
    mpr_call *c = call_new(r, m, plane, pkey);
    if (!c) {
        return;
    }
    if (http__tile_addr_parse(r, rest, &c->t) != 0) {
        free(c);
        return;
    }
    c->tile = 1;
    c->voi = &c->t.voi;
    char vk[128];
    http__voi_key(&c->t.voi, vk, sizeof vk);
    snprintf(c->key, sizeof c->key, "mt|%s|%s|%s|%u|%d|%u|%u|%d|%d", r->series, pkey, vk,
             (unsigned)r->srv->opts.tile_size, c->t.level, c->t.col, c->t.row, (int)c->t.fmt,
             c->t.quality);
    send_encoded_mpr(r, c, c->t.fmt == RND_FMT_PNG ? "image/png" : "image/jpeg");
    free(c);
}

/* The plane's tile pyramid (levels of square pixels, as for frames). */
static void
send_pyramid(http_req *r, const rnd_plane *p)
{
    uint32_t tile = (uint32_t)r->srv->opts.tile_size;
    char body[4096], hdr[1200];
    int n = snprintf(body, sizeof body,
                     "{\"width\":%u,\"height\":%u,\"tileSize\":%u,\"levels\":%d,"
                     "\"template\":\"%s/studies/%s/series/%s/mpr/tiles/{window}/{quality}/{level}/"
                     "{col}/{row}.{format}?%.1500s\"}\n",
                     p->width, p->height, tile, rnd_level_count(p->width, p->height, tile), r->base,
                     r->study, r->series, r->query);
    if (n < 0 || (size_t)n >= sizeof body || strchr(r->query, '"') || strchr(r->query, '\\')) {
        http__error(r, 400, "query string too long or not URL-encoded");
        return;
    }
    int h = snprintf(hdr, sizeof hdr, "Cache-Control: no-cache\r\n");
    plane_headers(p, hdr + h, sizeof hdr - (size_t)h);
    http__send(r, 200, "application/json", body, (size_t)n, hdr);
}

/* ---------------------------------------------------------------- the volume resource */

static void
send_volume(http_req *r)
{
    cache_entry *ve = NULL;
    tsr_err err = {0};
    int rc = volume_get_pooled(r, &ve, &err);
    if (rc != TSR_OK) {
        http__error_status(r, rc, &err);
        return;
    }
    const http_volume *hv = cache_entry_data(ve);
    const rnd_vol_summary *s = &hv->sum;
    json_t *wins = json_array();
    for (int i = 0; i < hv->n_windows; i++) {
        json_array_append_new(wins, json_pack("{s:f,s:f,s:s}", "center", hv->windows[i].center,
                                              "width", hv->windows[i].width, "function",
                                              rnd_voi_fn_name(hv->windows[i].fn)));
    }
    json_t *slices = json_array();
    const rnd_vol_geom *g = rnd_volume_geom(hv->vol);
    for (size_t k = 0; k < hv->n; k++) {
        double origin[3], d;
        rnd_vol_geom_slice(g, k, NULL, origin, &d);
        json_array_append_new(slices, json_pack("{s:s,s:i,s:o,s:f}", "sopInstanceUID",
                                                hv->src[k].inst.sop_instance_uid, "frame",
                                                (json_int_t)hv->src[k].frame + 1, "position",
                                                vec_json(origin), "offset", d));
    }
    json_t *o = json_pack(
        "{s:i,s:i,s:i,s:[ff],s:o,s:o,s:o,s:b,s:b,s:f,s:f,s:f,s:{s:o,s:o},s:i,s:i,s:[ff],s:s,"
        "s:s,s:o,s:o}",
        "slices", (json_int_t)s->slices, "rows", (json_int_t)s->rows, "columns",
        (json_int_t)s->columns, "pixelSpacing", s->pixel_spacing[0], s->pixel_spacing[1],
        "rowDirection", vec_json(s->row_dir), "columnDirection", vec_json(s->col_dir), "normal",
        vec_json(s->normal), "uniform", s->uniform, "sheared", s->sheared, "tiltDegrees",
        s->tilt_deg, "minGap", s->min_gap, "maxGap", s->max_gap, "extent", "min",
        vec_json(s->extent_min), "max", vec_json(s->extent_max), "dropped", (json_int_t)s->dropped,
        "duplicates", (json_int_t)s->duplicates, "valueRange", (double)hv->vmin, (double)hv->vmax,
        "modality", hv->modality, "photometricInterpretation",
        rnd_photometric_name(hv->photometric), "windows", wins, "sliceList", slices);
    cache_release(ve);
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!txt) {
        http__error(r, 500, "cannot build the volume description");
        return;
    }
    http__send(r, 200, "application/json", txt, strlen(txt), "Cache-Control: no-cache\r\n");
    free(txt);
}

/* ---------------------------------------------------------------- routing */

void
http__mpr(http_req *r, const char *res, const char *rest)
{
    if (!r->series[0] || r->instance[0]) {
        http__error(r, 404, "reformats belong to a series: .../series/{uid}/%s", res);
        return;
    }
    if (strcmp(res, "volume") == 0 && !rest[0]) {
        send_volume(r);
        return;
    }
    int rendered = strcmp(rest, "rendered") == 0, pyramid = strcmp(rest, "tiles") == 0;
    int tile = strncmp(rest, "tiles/", 6) == 0;
    if (strcmp(res, "mpr") != 0 ||
        (!rendered && !pyramid && !tile && strcmp(rest, "geometry") != 0)) {
        http__error(r, 404,
                    "no resource here: .../mpr/rendered, .../mpr/geometry or "
                    ".../mpr/tiles");
        return;
    }
    http_mpr_params m;
    if (http__mpr_parse(r, &m) != 0) {
        return;
    }
    tsr_err err = {0};
    plane_call pc;
    memset(&pc, 0, sizeof pc);
    pc.r = r;
    pc.m = &m;
    pc.err = &err;
    int rc = http__pool_run(r->srv->pool, run_plane, &pc);
    if (rc != TSR_OK) {
        http__error_status(r, rc, &err);
        return;
    }
    if (rendered) {
        send_rendered(r, &m, &pc.plane, pc.key);
    } else if (tile) {
        send_tile(r, &m, &pc.plane, pc.key, rest);
    } else if (pyramid) {
        send_pyramid(r, &pc.plane);
    } else {
        send_geometry(r, &m, &pc.plane);
    }
}
