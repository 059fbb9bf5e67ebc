/* SPDX-License-Identifier: MIT */
/* rnd_volume.c: volumes for multiplanar reformats. Planning a stack from slice geometries (no
 * pixels), and holding its voxels in modality values.
 *
 * Why the geometry keeps every slice's origin instead of a regular grid: a gantry-tilted CT stack
 * is sheared (origins move along the column direction as well as along the normal) and many
 * series have uneven steps (the GE head in the corpus goes from 4 mm to 1.08 mm to 7 mm). Keeping
 * each origin and its position d along the normal lets the sampler (rnd_mpr.c) place a point
 * exactly in each slice without resampling the stack onto a grid first, which would blur it
 * once more and cost a second copy of the volume.
 *
 * Why slices with broken geometry are left out rather than refused: a series often mixes a
 * localizer or a secondary capture into an axial stack; the stack is still worth showing, and
 * rnd_vol_summary.dropped tells the caller how much was left out. The plan fails only when no
 * stack of two slices remains, and then names the reason. */
#include "rnd_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define UNIT_TOL    1e-3 /* |norm - 1| and |r . c| accepted for ImageOrientationPatient */
#define COSINE_TOL  1e-4 /* cosines of one stack differ by at most this */
#define SPACING_TOL 1e-3 /* relative difference of pixel spacings within one stack */
#define DUP_MM      1e-3 /* slices closer than this along the normal are one position */
#define PI          3.14159265358979323846

struct rnd_vol_geom {
    rnd_vol_summary sum;
    double *origin; /* 3 per slice, sorted */
    double *d;      /* position along the normal, ascending */
    uint32_t *ids;  /* the caller's ids, sorted */
};

struct rnd_volume {
    rnd_vol_geom *geom;  /* own copy */
    rnd_type type;       /* RND_T_S16 or RND_T_F32 */
    size_t slice_values; /* rows * columns */
    void *voxels;
    size_t voxel_bytes;
    uint8_t *filled; /* per slice: distinct bytes, so threads filling distinct slices never race */
    float *smin, *smax;
};

/* ---------------------------------------------------------------- small vector helpers */

static int
all_finite(const double *v, int n)
{
    for (int i = 0; i < n; i++) {
        if (!isfinite(v[i])) {
            return 0;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------- planning */

/* Why slice `s` cannot be part of a volume, or NULL when it can. */
static const char *
slice_problem(const rnd_vol_slice *s)
{
    if (s->rows == 0 || s->columns == 0) {
        return "zero rows or columns";
    }
    if (!all_finite(s->pixel_spacing, 2) || s->pixel_spacing[0] <= 0 || s->pixel_spacing[1] <= 0) {
        return "no usable pixel spacing";
    }
    if (!all_finite(s->orientation, 6)) {
        return "orientation is not finite";
    }
    const double *r = s->orientation, *c = s->orientation + 3;
    if (fabs(sqrt(rnd__dot3(r, r)) - 1) > UNIT_TOL || fabs(sqrt(rnd__dot3(c, c)) - 1) > UNIT_TOL) {
        return "orientation cosines are not unit vectors";
    }
    if (fabs(rnd__dot3(r, c)) > UNIT_TOL) {
        return "orientation cosines are not orthogonal";
    }
    if (!all_finite(s->position, 3)) {
        return "position is not finite";
    }
    return NULL;
}

static int
close_rel(double a, double b, double tol)
{
    return fabs(a - b) <= tol * fmax(fabs(a), fabs(b));
}

/* Whether two usable slices belong to one stack. */
static int
same_stack(const rnd_vol_slice *a, const rnd_vol_slice *b)
{
    if (a->rows != b->rows || a->columns != b->columns ||
        !close_rel(a->pixel_spacing[0], b->pixel_spacing[0], SPACING_TOL) ||
        !close_rel(a->pixel_spacing[1], b->pixel_spacing[1], SPACING_TOL)) {
        return 0;
    }
    for (int i = 0; i < 6; i++) {
        if (fabs(a->orientation[i] - b->orientation[i]) > COSINE_TOL) {
            return 0;
        }
    }
    return 1;
}

/* Groups the usable slices (group[i] = group number, -1 when unusable) and returns the number of
 * the largest group (first on ties), or -1 when no slice is usable. `rep` has room for n. */
static int
largest_group(const rnd_vol_slice *s, size_t n, int *group, size_t *rep, size_t *count)
{
    size_t ngroups = 0;
    for (size_t i = 0; i < n; i++) {
        group[i] = -1;
        if (slice_problem(&s[i])) {
            continue;
        }
        size_t g = 0;
        while (g < ngroups && !same_stack(&s[rep[g]], &s[i])) {
            g++;
        }
        if (g == ngroups) {
            rep[ngroups] = i;
            count[ngroups++] = 0;
        }
        count[g]++;
        group[i] = (int)g;
    }
    int best = -1;
    for (size_t g = 0; g < ngroups; g++) {
        if (best < 0 || count[g] > count[best]) {
            best = (int)g;
        }
    }
    return best;
}

/* r, c orthonormalised (c made orthogonal to r) and n = r x c, from ImageOrientationPatient. */
static void
orthonormal_axes(const double *iop, double *r, double *c, double *n)
{
    double nr = sqrt(rnd__dot3(iop, iop));
    for (int i = 0; i < 3; i++) {
        r[i] = iop[i] / nr;
    }
    double rc = rnd__dot3(iop + 3, r);
    for (int i = 0; i < 3; i++) {
        c[i] = iop[3 + i] - rc * r[i];
    }
    double nc = sqrt(rnd__dot3(c, c));
    for (int i = 0; i < 3; i++) {
        c[i] /= nc;
    }
    rnd__cross3(r, c, n);
}

typedef struct sort_key {
    double d;
    size_t index; /* in the caller's array */
} sort_key;

static int
cmp_key(const void *pa, const void *pb)
{
    const sort_key *a = pa, *b = pb;
    if (a->d != b->d) {
        return a->d < b->d ? -1 : 1;
    }
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Removes keys less than DUP_MM after the last kept one, keeping the earliest input index of
 * each run. Returns the number kept. */
static size_t
drop_duplicates(sort_key *k, size_t n)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (kept > 0 && k[i].d - k[kept - 1].d < DUP_MM) {
            if (k[i].index < k[kept - 1].index) {
                k[kept - 1].index = k[i].index; /* the earlier slice wins, at its own d */
                k[kept - 1].d = k[i].d;
            }
            continue;
        }
        k[kept++] = k[i];
    }
    return kept;
}

/* The bounding box of every slice's footprint (pixel centres plus half a pixel). */
static void
compute_extent(rnd_vol_geom *g)
{
    rnd_vol_summary *s = &g->sum;
    const double us[2] = {-0.5 * s->pixel_spacing[1], (s->columns - 0.5) * s->pixel_spacing[1]};
    const double vs[2] = {-0.5 * s->pixel_spacing[0], (s->rows - 0.5) * s->pixel_spacing[0]};
    for (int a = 0; a < 3; a++) {
        s->extent_min[a] = INFINITY;
        s->extent_max[a] = -INFINITY;
    }
    for (size_t k = 0; k < s->slices; k++) {
        const double *o = g->origin + 3 * k;
        for (int iu = 0; iu < 2; iu++) {
            for (int iv = 0; iv < 2; iv++) {
                for (int a = 0; a < 3; a++) {
                    double p = o[a] + us[iu] * s->row_dir[a] + vs[iv] * s->col_dir[a];
                    s->extent_min[a] = fmin(s->extent_min[a], p);
                    s->extent_max[a] = fmax(s->extent_max[a], p);
                }
            }
        }
    }
}

/* Gaps, uniformity, shear and tilt of the sorted stack. */
static void
compute_stats(rnd_vol_geom *g)
{
    rnd_vol_summary *s = &g->sum;
    size_t n = s->slices;
    s->min_gap = INFINITY;
    s->max_gap = 0;
    for (size_t k = 0; k + 1 < n; k++) {
        double gap = g->d[k + 1] - g->d[k];
        s->min_gap = fmin(s->min_gap, gap);
        s->max_gap = fmax(s->max_gap, gap);
    }
    double mean = (g->d[n - 1] - g->d[0]) / (double)(n - 1);
    int even = s->min_gap >= 0.99 * mean && s->max_gap <= 1.01 * mean;

    /* The in-plane offset of each origin from the line through the first along n. */
    double max_off = 0, last_off = 0;
    for (size_t k = 1; k < n; k++) {
        double delta[3], t = g->d[k] - g->d[0], off2 = 0;
        for (int a = 0; a < 3; a++) {
            delta[a] = g->origin[3 * k + a] - g->origin[a] - t * s->normal[a];
            off2 += delta[a] * delta[a];
        }
        max_off = fmax(max_off, sqrt(off2));
        last_off = sqrt(off2);
    }
    double tol = 0.01 * fmin(s->pixel_spacing[0], s->pixel_spacing[1]);
    s->sheared = max_off > tol;
    s->uniform = even && !s->sheared;
    s->tilt_deg = atan2(last_off, g->d[n - 1] - g->d[0]) * (180.0 / PI);
}

/* The message for a plan with fewer than two distinct slices. */
static int
refuse_plan(const rnd_vol_slice *s, size_t n, size_t best_count, size_t distinct, tsr_err *err)
{
    if (n < 2) {
        return tsr_err_set(err, TSR_EINVAL, "a volume needs at least 2 slices (got %zu)", n);
    }
    if (best_count == 0) {
        return tsr_err_set(err, TSR_EINVAL, "no slice has usable geometry (slice id %u: %s)",
                           (unsigned)s[0].id, slice_problem(&s[0]));
    }
    if (best_count < 2) {
        return tsr_err_set(err, TSR_EINVAL,
                           "no two of the %zu slices share size, pixel spacing and orientation", n);
    }
    return tsr_err_set(err, TSR_EINVAL,
                       "fewer than 2 distinct slice positions (%zu slices, %zu distinct)",
                       best_count, distinct);
}

/* Builds the geometry from the kept, sorted keys. */
static int
make_geom(const rnd_vol_slice *s, size_t n, const sort_key *keys, size_t kept, size_t in_group,
          rnd_vol_geom **out, tsr_err *err)
{
    rnd_vol_geom *g = calloc(1, sizeof *g);
    if (!g || !(g->origin = malloc(kept * 3 * sizeof *g->origin)) ||
        !(g->d = malloc(kept * sizeof *g->d)) || !(g->ids = malloc(kept * sizeof *g->ids))) {
        rnd_vol_geom_free(g);
        return tsr_err_set(err, TSR_ENOMEM, "out of memory for a %zu-slice plan", kept);
    }
    const rnd_vol_slice *first = &s[keys[0].index];
    rnd_vol_summary *sum = &g->sum;
    sum->rows = first->rows;
    sum->columns = first->columns;
    sum->slices = kept;
    memcpy(sum->pixel_spacing, first->pixel_spacing, sizeof sum->pixel_spacing);
    orthonormal_axes(first->orientation, sum->row_dir, sum->col_dir, sum->normal);
    sum->dropped = n - in_group;
    sum->duplicates = in_group - kept;
    for (size_t k = 0; k < kept; k++) {
        memcpy(g->origin + 3 * k, s[keys[k].index].position, 3 * sizeof(double));
        g->d[k] = keys[k].d;
        g->ids[k] = s[keys[k].index].id;
    }
    compute_stats(g);
    compute_extent(g);
    *out = g;
    return TSR_OK;
}

int
rnd_volume_plan(const rnd_vol_slice *s, size_t n, rnd_vol_geom **out, tsr_err *err)
{
    if (!out || (!s && n > 0)) {
        return tsr_err_set(err, TSR_EINVAL, "volume plan: no slices given");
    }
    if (n < 2) {
        return refuse_plan(s, n, n, n, err);
    }
    int rc = TSR_OK;
    int *group = malloc(n * sizeof *group);
    size_t *rep = malloc(n * sizeof *rep), *count = malloc(n * sizeof *count);
    sort_key *keys = malloc(n * sizeof *keys);
    if (!group || !rep || !count || !keys) {
        rc = tsr_err_set(err, TSR_ENOMEM, "out of memory planning %zu slices", n);
        goto done;
    }
    int best = largest_group(s, n, group, rep, count);
    size_t in_group = best < 0 ? 0 : count[best];
    if (in_group < 2) {
        rc = refuse_plan(s, n, in_group, in_group, err);
        goto done;
    }
    double r[3], c[3], nrm[3];
    orthonormal_axes(s[rep[best]].orientation, r, c, nrm);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (group[i] == best) {
            keys[m].d = rnd__dot3(s[i].position, nrm);
            keys[m++].index = i;
        }
    }
    qsort(keys, m, sizeof *keys, cmp_key);
    size_t kept = drop_duplicates(keys, m);
    if (kept < 2) {
        rc = refuse_plan(s, n, m, kept, err);
        goto done;
    }
    rc = make_geom(s, n, keys, kept, m, out, err);
done:
    free(group);
    free(rep);
    free(count);
    free(keys);
    return rc;
}

void
rnd_vol_geom_free(rnd_vol_geom *g)
{
    if (g) {
        free(g->origin);
        free(g->d);
        free(g->ids);
        free(g);
    }
}

void
rnd_vol_geom_summary(const rnd_vol_geom *g, rnd_vol_summary *out)
{
    *out = g->sum;
}

int
rnd_vol_geom_slice(const rnd_vol_geom *g, size_t k, uint32_t *id, double origin[3], double *d)
{
    if (k >= g->sum.slices) {
        return TSR_ENOTFOUND;
    }
    if (id) {
        *id = g->ids[k];
    }
    if (origin) {
        memcpy(origin, g->origin + 3 * k, 3 * sizeof(double));
    }
    if (d) {
        *d = g->d[k];
    }
    return TSR_OK;
}

/* A deep copy of `g`, or NULL when out of memory. */
static rnd_vol_geom *
geom_copy(const rnd_vol_geom *g)
{
    size_t n = g->sum.slices;
    rnd_vol_geom *c = calloc(1, sizeof *c);
    if (!c || !(c->origin = malloc(n * 3 * sizeof *c->origin)) ||
        !(c->d = malloc(n * sizeof *c->d)) || !(c->ids = malloc(n * sizeof *c->ids))) {
        rnd_vol_geom_free(c);
        return NULL;
    }
    c->sum = g->sum;
    memcpy(c->origin, g->origin, n * 3 * sizeof *c->origin);
    memcpy(c->d, g->d, n * sizeof *c->d);
    memcpy(c->ids, g->ids, n * sizeof *c->ids);
    return c;
}

/* ---------------------------------------------------------------- voxels */

int
rnd_volume_fits_int16(const rnd_info *info, double slope, double intercept)
{
    if (!info || info->float_pixels || info->bits_stored == 0 || info->bits_stored > 32 ||
        !isfinite(slope) || !isfinite(intercept) || slope != floor(slope) ||
        intercept != floor(intercept)) {
        return 0;
    }
    int b = info->bits_stored;
    double lo = info->pixel_representation ? -ldexp(1, b - 1) : 0;
    double hi = info->pixel_representation ? ldexp(1, b - 1) - 1 : ldexp(1, b) - 1;
    double a = lo * slope + intercept, z = hi * slope + intercept;
    return fmin(a, z) >= INT16_MIN && fmax(a, z) <= INT16_MAX;
}

int
rnd_volume_new(const rnd_vol_geom *g, int float_values, uint64_t max_bytes, rnd_volume **out,
               tsr_err *err)
{
    if (!g || !out) {
        return tsr_err_set(err, TSR_EINVAL, "volume: no geometry");
    }
    if (max_bytes == 0) {
        max_bytes = RND_VOLUME_MAX_BYTES_DEFAULT;
    }
    const rnd_vol_summary *s = &g->sum;
    rnd_type type = float_values ? RND_T_F32 : RND_T_S16;
    size_t per, bytes;
    if (tsr_mul_size(s->rows, s->columns, &per) || tsr_mul_size(per, s->slices, &bytes) ||
        tsr_mul_size(bytes, rnd_type_size(type), &bytes) || bytes > max_bytes) {
        return tsr_err_set(err, TSR_ELIMIT,
                           "volume of %zu slices of %ux%u %s values exceeds %llu bytes", s->slices,
                           (unsigned)s->columns, (unsigned)s->rows,
                           float_values ? "float" : "int16", (unsigned long long)max_bytes);
    }
    rnd_volume *v = calloc(1, sizeof *v);
    if (v) {
        v->geom = geom_copy(g);
        v->voxels = calloc(1, bytes);
        v->filled = calloc(s->slices, 1);
        v->smin = calloc(s->slices, sizeof *v->smin);
        v->smax = calloc(s->slices, sizeof *v->smax);
    }
    if (!v || !v->geom || !v->voxels || !v->filled || !v->smin || !v->smax) {
        rnd_volume_free(v);
        return tsr_err_set(err, TSR_ENOMEM, "out of memory for a %zu-byte volume", bytes);
    }
    v->type = type;
    v->slice_values = per;
    v->voxel_bytes = bytes;
    *out = v;
    return TSR_OK;
}

/* The modality values of a frame of stored type T as doubles, n at a time (the conversion loop
 * is per type so that it has no switch per value). */
#define DEFINE_MODALITY(T, suffix)                                                                 \
    static void modality_##suffix(const void *src, size_t i0, size_t n, double slope,              \
                                  double intercept, double *out)                                   \
    {                                                                                              \
        const T *p = (const T *)src + i0;                                                          \
        for (size_t i = 0; i < n; i++) {                                                           \
            out[i] = p[i] * slope + intercept;                                                     \
        }                                                                                          \
    }
DEFINE_MODALITY(uint8_t, u8)
DEFINE_MODALITY(int8_t, s8)
DEFINE_MODALITY(uint16_t, u16)
DEFINE_MODALITY(int16_t, s16)
DEFINE_MODALITY(uint32_t, u32)
DEFINE_MODALITY(int32_t, s32)
DEFINE_MODALITY(float, f32)

typedef void (*modality_fn)(const void *, size_t, size_t, double, double, double *);

static modality_fn
modality_of(rnd_type t)
{
    switch (t) {
    case RND_T_U8:
        return modality_u8;
    case RND_T_S8:
        return modality_s8;
    case RND_T_U16:
        return modality_u16;
    case RND_T_S16:
        return modality_s16;
    case RND_T_U32:
        return modality_u32;
    case RND_T_S32:
        return modality_s32;
    case RND_T_F32:
        return modality_f32;
    }
    return modality_u8;
}

/* Stores n modality values at voxel index `at` of slice k, checking each; widens [*lo, *hi]. */
static int
store_values(const rnd_volume *v, size_t k, size_t at, const double *x, size_t n, uint32_t width,
             float *lo, float *hi, tsr_err *err)
{
    float mn = *lo, mx = *hi;
    for (size_t i = 0; i < n; i++) {
        size_t px = at + i;
        if (!isfinite(x[i])) {
            return tsr_err_set(err, TSR_EINVAL, "slice %zu: value at (%zu, %zu) is not finite", k,
                               px % width, px / width);
        }
        float val = (float)x[i];
        if (v->type == RND_T_S16) {
            if (x[i] != (double)(long)x[i] || x[i] < INT16_MIN || x[i] > INT16_MAX) {
                return tsr_err_set(err, TSR_EINVAL,
                                   "slice %zu: value %g at (%zu, %zu) is not an int16; build the "
                                   "volume with float values",
                                   k, x[i], px % width, px / width);
            }
            ((int16_t *)v->voxels)[k * v->slice_values + px] = (int16_t)x[i];
        } else {
            ((float *)v->voxels)[k * v->slice_values + px] = val;
        }
        mn = val < mn ? val : mn;
        mx = val > mx ? val : mx;
    }
    *lo = mn;
    *hi = mx;
    return TSR_OK;
}

/* Converts the frame into the slice's voxels, a chunk at a time; the range goes to *lo, *hi. */
static int
convert_slice(const rnd_volume *v, size_t k, const rnd_frame *f, double slope, double intercept,
              float *lo, float *hi, tsr_err *err)
{
    enum { CHUNK = 1024 };
    double x[CHUNK];
    modality_fn conv = modality_of(f->type);
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t at = 0; at < v->slice_values; at += CHUNK) {
        size_t n = v->slice_values - at < CHUNK ? v->slice_values - at : CHUNK;
        conv(f->data, at, n, slope, intercept, x);
        int rc = store_values(v, k, at, x, n, f->width, lo, hi, err);
        if (rc != TSR_OK) {
            return rc;
        }
    }
    return TSR_OK;
}

int
rnd_volume_set_slice(rnd_volume *v, size_t k, const rnd_frame *f, double slope, double intercept,
                     tsr_err *err)
{
    if (!v || !f || !f->data) {
        return tsr_err_set(err, TSR_EINVAL, "volume slice: no volume or frame");
    }
    const rnd_vol_summary *s = &v->geom->sum;
    if (k >= s->slices) {
        return tsr_err_set(err, TSR_ENOTFOUND, "volume has no slice %zu (%zu slices)", k,
                           s->slices);
    }
    v->filled[k] = 0;
    if (f->samples != 1) {
        return tsr_err_set(err, TSR_EINVAL, "slice %zu: colour frames (%u samples) have no volume",
                           k, (unsigned)f->samples);
    }
    if (f->width != s->columns || f->height != s->rows) {
        return tsr_err_set(err, TSR_EINVAL, "slice %zu: frame is %ux%u, the volume %ux%u", k,
                           (unsigned)f->width, (unsigned)f->height, (unsigned)s->columns,
                           (unsigned)s->rows);
    }
    if (!isfinite(slope) || !isfinite(intercept)) {
        return tsr_err_set(err, TSR_EINVAL, "slice %zu: rescale %g, %g is not finite", k, slope,
                           intercept);
    }
    float lo = 0, hi = 0;
    int rc = convert_slice(v, k, f, slope, intercept, &lo, &hi, err);
    if (rc != TSR_OK) {
        return rc;
    }
    v->smin[k] = lo;
    v->smax[k] = hi;
    v->filled[k] = 1;
    return TSR_OK;
}

int
rnd_volume_complete(const rnd_volume *v)
{
    if (!v) {
        return 0;
    }
    for (size_t k = 0; k < v->geom->sum.slices; k++) {
        if (!v->filled[k]) {
            return 0;
        }
    }
    return 1;
}

const rnd_vol_geom *
rnd_volume_geom(const rnd_volume *v)
{
    return v->geom;
}

rnd_type
rnd_volume_type(const rnd_volume *v)
{
    return v->type;
}

const void *
rnd_volume_voxels(const rnd_volume *v, size_t k)
{
    if (!v || k >= v->geom->sum.slices) {
        return NULL;
    }
    return (const uint8_t *)v->voxels + k * v->slice_values * rnd_type_size(v->type);
}

int
rnd_volume_range(const rnd_volume *v, float *min, float *max)
{
    if (!rnd_volume_complete(v)) {
        return TSR_EINVAL;
    }
    float lo = v->smin[0], hi = v->smax[0];
    for (size_t k = 1; k < v->geom->sum.slices; k++) {
        lo = fminf(lo, v->smin[k]);
        hi = fmaxf(hi, v->smax[k]);
    }
    if (min) {
        *min = lo;
    }
    if (max) {
        *max = hi;
    }
    return TSR_OK;
}

size_t
rnd_volume_bytes(const rnd_volume *v)
{
    if (!v) {
        return 0;
    }
    size_t n = v->geom->sum.slices;
    return sizeof *v + sizeof *v->geom + v->voxel_bytes +
           n * (4 * sizeof(double) + sizeof(uint32_t) + 1 + 2 * sizeof(float));
}

void
rnd_volume_free(rnd_volume *v)
{
    if (v) {
        rnd_vol_geom_free(v->geom);
        free(v->voxels);
        free(v->filled);
        free(v->smin);
        free(v->smax);
        free(v);
    }
}
