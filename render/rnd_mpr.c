/* SPDX-License-Identifier: MIT */
/* rnd_mpr.c: multiplanar reformats. Output planes (standard, oblique), and sampling a volume on
 * a plane, thin or as a MIP / MinIP / average slab.
 *
 * Sampling works in each slice's own frame. For a patient point P, three numbers decide
 * everything: d = P . n (which slices bracket P), and P . r / column spacing, P . c / row spacing
 * (where P falls in a slice once that slice's own origin, precomputed in the same units, is
 * subtracted). All three are affine in the output pixel (x, y), so a row costs one multiply-add
 * per number per pixel, and sheared or unevenly spaced stacks cost nothing extra.
 *
 * Why every pixel is computed from its absolute (x, y) (base + y * dy + x * dx) rather than by
 * accumulating steps along a row: the value of a pixel then depends on its coordinates alone, so
 * rnd_mpr_render_rect gives bit for bit the pixels of the whole plane for any tile or band, and
 * callers may split a plane across threads or tiles without seams.
 *
 * Why linear functions come out exact: bilinear interpolation within slice k returns
 * f(Q_k) where Q_k = P - (d - d_k) n is P projected on slice k along n, and the linear blend in d
 * of f(Q_k) and f(Q_k+1) cancels the projection terms. This is the property the tests check on
 * sheared and unevenly spaced stacks. */
#include "rnd_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EPS_MM     1e-4   /* a point this close to a slice (or the volume's ends) is on it */
#define SNAP_PX    1e-6   /* a point this close to a pixel centre (in pixels) is on it */
#define UNIT_TOL   1e-4   /* a plane's row and col must be orthonormal to this */
#define MIN_NORM   1e-6   /* shortest direction vector accepted by the plane constructors */
#define MAX_COSINE 0.9999 /* directions with |cos| at or above this are parallel */

/* ---------------------------------------------------------------- vectors */

static int
finite3(const double *v)
{
    return v && isfinite(v[0]) && isfinite(v[1]) && isfinite(v[2]);
}

/* Scales v to unit length in place; its norm must be non-zero. */
static void
normalize3(double *v)
{
    double n = sqrt(rnd__dot3(v, v));
    v[0] /= n;
    v[1] /= n;
    v[2] /= n;
}

void
rnd_plane_point(const rnd_plane *p, double x, double y, double out[3])
{
    for (int a = 0; a < 3; a++) {
        out[a] = p->origin[a] + x * p->spacing * p->row[a] + y * p->spacing * p->col[a];
    }
}

/* ---------------------------------------------------------------- volume footprint */

/* The footprint corners of every slice (4 per slice, pixel centres plus half a pixel), in a new
 * array of *n points. */
static double *
footprint_corners(const rnd_vol_geom *g, size_t *n, tsr_err *err)
{
    rnd_vol_summary s;
    rnd_vol_geom_summary(g, &s);
    double *c = malloc(s.slices * 4 * 3 * sizeof *c);
    if (!c) {
        tsr_err_set(err, TSR_ENOMEM, "out of memory for the volume's corners");
        return NULL;
    }
    const double us[2] = {-0.5 * s.pixel_spacing[1], (s.columns - 0.5) * s.pixel_spacing[1]};
    const double vs[2] = {-0.5 * s.pixel_spacing[0], (s.rows - 0.5) * s.pixel_spacing[0]};
    double *q = c;
    for (size_t k = 0; k < s.slices; k++) {
        double o[3];
        rnd_vol_geom_slice(g, k, NULL, o, NULL);
        for (int i = 0; i < 4; i++, q += 3) {
            for (int a = 0; a < 3; a++) {
                q[a] = o[a] + us[i & 1] * s.row_dir[a] + vs[i >> 1] * s.col_dir[a];
            }
        }
    }
    *n = s.slices * 4;
    return c;
}

/* Range of (corner - point) . dir over the corners. */
static void
project_range(const double *corners, size_t n, const double *point, const double *dir, double *lo,
              double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        const double *q = corners + 3 * i;
        double t =
            (q[0] - point[0]) * dir[0] + (q[1] - point[1]) * dir[1] + (q[2] - point[2]) * dir[2];
        *lo = fmin(*lo, t);
        *hi = fmax(*hi, t);
    }
}

/* ---------------------------------------------------------------- plane constructors */

/* Sizes the plane through `point` with orthonormal `row`, `col` to cover the projection of the
 * volume's footprint, `point` on a pixel centre (see rnd.h). */
static int
size_plane(const rnd_vol_geom *g, const double *point, const double *row, const double *col,
           double spacing, rnd_plane *out, tsr_err *err)
{
    if (!isfinite(spacing)) {
        return tsr_err_set(err, TSR_EINVAL, "plane spacing %g is not finite", spacing);
    }
    if (spacing <= 0) {
        rnd_vol_summary s;
        rnd_vol_geom_summary(g, &s);
        spacing = fmin(s.pixel_spacing[0], s.pixel_spacing[1]);
    }
    size_t n;
    double *corners = footprint_corners(g, &n, err);
    if (!corners) {
        return TSR_ENOMEM;
    }
    double normal[3], lo, hi, ulo, uhi, vlo, vhi;
    rnd__cross3(row, col, normal);
    project_range(corners, n, point, normal, &lo, &hi);
    project_range(corners, n, point, row, &ulo, &uhi);
    project_range(corners, n, point, col, &vlo, &vhi);
    free(corners);
    if (lo > EPS_MM || hi < -EPS_MM) {
        return tsr_err_set(err, TSR_ENOTFOUND,
                           "plane outside the volume (%.1f mm from its nearest corner)",
                           lo > 0 ? lo : -hi);
    }
    double i0 = floor(ulo / spacing), i1 = ceil(uhi / spacing);
    double j0 = floor(vlo / spacing), j1 = ceil(vhi / spacing);
    double w = i1 - i0 + 1, h = j1 - j0 + 1;
    if (w > RND_MPR_MAX_SIDE || h > RND_MPR_MAX_SIDE) {
        return tsr_err_set(err, TSR_ELIMIT,
                           "plane of %.0fx%.0f pixels exceeds %u per side (spacing %g mm too "
                           "small)",
                           w, h, RND_MPR_MAX_SIDE, spacing);
    }
    rnd_plane p;
    for (int a = 0; a < 3; a++) {
        p.row[a] = row[a];
        p.col[a] = col[a];
        p.origin[a] = point[a] + i0 * spacing * row[a] + j0 * spacing * col[a];
    }
    p.spacing = spacing;
    p.width = (uint32_t)w;
    p.height = (uint32_t)h;
    *out = p;
    return TSR_OK;
}

int
rnd_plane_standard(const rnd_vol_geom *g, rnd_plane_axis axis, double position_mm, double spacing,
                   rnd_plane *out, tsr_err *err)
{
    static const double dirs[3][2][3] = {
        [RND_AXIS_AXIAL] = {{1, 0, 0}, {0, 1, 0}},
        [RND_AXIS_CORONAL] = {{1, 0, 0}, {0, 0, -1}},
        [RND_AXIS_SAGITTAL] = {{0, 1, 0}, {0, 0, -1}},
    };
    static const int normal_axis[3] = {
        [RND_AXIS_AXIAL] = 2, [RND_AXIS_CORONAL] = 1, [RND_AXIS_SAGITTAL] = 0};
    if (!g || !out) {
        return tsr_err_set(err, TSR_EINVAL, "plane: no volume geometry");
    }
    if ((unsigned)axis > RND_AXIS_SAGITTAL) {
        return tsr_err_set(err, TSR_EINVAL, "plane: unknown axis %d", (int)axis);
    }
    if (!isfinite(position_mm)) {
        return tsr_err_set(err, TSR_EINVAL, "plane position %g is not finite", position_mm);
    }
    rnd_vol_summary s;
    rnd_vol_geom_summary(g, &s);
    double point[3];
    for (int a = 0; a < 3; a++) {
        point[a] = 0.5 * (s.extent_min[a] + s.extent_max[a]);
    }
    point[normal_axis[axis]] = position_mm;
    return size_plane(g, point, dirs[axis][0], dirs[axis][1], spacing, out, err);
}

/* Checks that a and b are usable direction vectors: finite, longer than MIN_NORM, not parallel. */
static int
check_pair(const double *a, const double *b, const char *na, const char *nb, tsr_err *err)
{
    if (!finite3(a) || !finite3(b)) {
        return tsr_err_set(err, TSR_EINVAL, "plane: %s or %s is missing or not finite", na, nb);
    }
    double la = sqrt(rnd__dot3(a, a)), lb = sqrt(rnd__dot3(b, b));
    if (la <= MIN_NORM || lb <= MIN_NORM) {
        return tsr_err_set(err, TSR_EINVAL, "plane: %s is a zero vector", la <= MIN_NORM ? na : nb);
    }
    if (fabs(rnd__dot3(a, b)) / (la * lb) >= MAX_COSINE) {
        return tsr_err_set(err, TSR_EINVAL, "plane: %s and %s are parallel", na, nb);
    }
    return TSR_OK;
}

int
rnd_plane_oblique(const rnd_vol_geom *g, const double point[3], const double row[3],
                  const double col[3], double spacing, rnd_plane *out, tsr_err *err)
{
    if (!g || !out) {
        return tsr_err_set(err, TSR_EINVAL, "plane: no volume geometry");
    }
    if (!finite3(point)) {
        return tsr_err_set(err, TSR_EINVAL, "plane: point is missing or not finite");
    }
    int rc = check_pair(row, col, "row", "col", err);
    if (rc != TSR_OK) {
        return rc;
    }
    double r[3] = {row[0], row[1], row[2]}, c[3];
    normalize3(r);
    double rc_dot = rnd__dot3(col, r);
    for (int a = 0; a < 3; a++) {
        c[a] = col[a] - rc_dot * r[a];
    }
    normalize3(c);
    return size_plane(g, point, r, c, spacing, out, err);
}

int
rnd_plane_from_normal(const rnd_vol_geom *g, const double point[3], const double normal[3],
                      const double up[3], double spacing, rnd_plane *out, tsr_err *err)
{
    if (!g || !out) {
        return tsr_err_set(err, TSR_EINVAL, "plane: no volume geometry");
    }
    if (!finite3(point)) {
        return tsr_err_set(err, TSR_EINVAL, "plane: point is missing or not finite");
    }
    int rc = check_pair(normal, up, "normal", "up", err);
    if (rc != TSR_OK) {
        return rc;
    }
    double n[3] = {normal[0], normal[1], normal[2]}, c[3], r[3];
    normalize3(n);
    double un = rnd__dot3(up, n);
    for (int a = 0; a < 3; a++) {
        c[a] = -(up[a] - un * n[a]);
    }
    normalize3(c);
    rnd__cross3(c, n, r);
    return size_plane(g, point, r, c, spacing, out, err);
}

/* ---------------------------------------------------------------- sampling context */

/* What one render needs of the volume, in the units the sampler works in. */
typedef struct mpr_ctx {
    size_t n; /* slices */
    uint32_t rows, cols;
    double sx, sy; /* column spacing (horizontal), row spacing (vertical) */
    double r[3], c[3], nrm[3];
    double imax, jmax;   /* cols - 0.5, rows - 0.5: the far edges of a slice's footprint */
    double ilast, jlast; /* cols - 1, rows - 1: the last pixel centres */
    double *d;           /* n: slice position along the normal */
    double *oi, *oj;     /* n: origin . r / sx, origin . c / sy */
    double *inv_gap;     /* n - 1: 1 / (d[k+1] - d[k]) */
    const void **vox;    /* n: each slice's voxels */
    int is_float;
    int sheared; /* some oi or oj differs: each slice needs its own in-plane position */
    float pad;
} mpr_ctx;

static void
ctx_free(mpr_ctx *m)
{
    free(m->d);
    free(m->oi);
    free(m->oj);
    free(m->inv_gap);
    free((void *)m->vox);
}

static int
ctx_init(mpr_ctx *m, const rnd_volume *v, tsr_err *err)
{
    memset(m, 0, sizeof *m);
    const rnd_vol_geom *g = rnd_volume_geom(v);
    rnd_vol_summary s;
    rnd_vol_geom_summary(g, &s);
    m->n = s.slices;
    m->rows = s.rows;
    m->cols = s.columns;
    m->sx = s.pixel_spacing[1];
    m->sy = s.pixel_spacing[0];
    m->imax = s.columns - 0.5;
    m->jmax = s.rows - 0.5;
    m->ilast = s.columns - 1.0;
    m->jlast = s.rows - 1.0;
    memcpy(m->r, s.row_dir, sizeof m->r);
    memcpy(m->c, s.col_dir, sizeof m->c);
    memcpy(m->nrm, s.normal, sizeof m->nrm);
    m->is_float = rnd_volume_type(v) == RND_T_F32;
    rnd_volume_range(v, &m->pad, NULL);
    m->d = malloc(m->n * sizeof *m->d);
    m->oi = malloc(m->n * sizeof *m->oi);
    m->oj = malloc(m->n * sizeof *m->oj);
    m->inv_gap = malloc(m->n * sizeof *m->inv_gap);
    m->vox = malloc(m->n * sizeof *m->vox);
    if (!m->d || !m->oi || !m->oj || !m->inv_gap || !m->vox) {
        ctx_free(m);
        return tsr_err_set(err, TSR_ENOMEM, "out of memory for a reformat");
    }
    for (size_t k = 0; k < m->n; k++) {
        double o[3];
        rnd_vol_geom_slice(g, k, NULL, o, &m->d[k]);
        m->oi[k] = rnd__dot3(o, m->r) / m->sx;
        m->oj[k] = rnd__dot3(o, m->c) / m->sy;
        m->vox[k] = rnd_volume_voxels(v, k);
        m->sheared |= m->oi[k] != m->oi[0] || m->oj[k] != m->oj[0];
    }
    for (size_t k = 0; k + 1 < m->n; k++) {
        m->inv_gap[k] = 1.0 / (m->d[k + 1] - m->d[k]);
    }
    return TSR_OK;
}

/* The affine map from output pixel (x, y) to the sampler's three numbers, for one plane (or one
 * slab offset of it): value = base + y * dy + x * dx, for d, column (i) and row (j) units. */
typedef struct mpr_map {
    double base[3], dx[3], dy[3];
} mpr_map;

static void
map_init(const mpr_ctx *m, const rnd_plane *p, double offset, mpr_map *map)
{
    double o[3], normal[3], xs[3], ys[3];
    rnd__cross3(p->row, p->col, normal);
    for (int a = 0; a < 3; a++) {
        o[a] = p->origin[a] + offset * normal[a];
        xs[a] = p->spacing * p->row[a];
        ys[a] = p->spacing * p->col[a];
    }
    const double *axes[3] = {m->nrm, m->r, m->c};
    const double scale[3] = {1.0, 1.0 / m->sx, 1.0 / m->sy};
    for (int q = 0; q < 3; q++) {
        map->base[q] = rnd__dot3(o, axes[q]) * scale[q];
        map->dx[q] = rnd__dot3(xs, axes[q]) * scale[q];
        map->dy[q] = rnd__dot3(ys, axes[q]) * scale[q];
    }
}

/* ---------------------------------------------------------------- one sample
 * (i, j) are column and row coordinates in a slice; a slice covers [-0.5, cols - 0.5] x
 * [-0.5, rows - 0.5], and the edge value is held within that half-pixel margin. */

/* Places d = pd between slices: *k (0..n-2) and the weight *t of slice k+1, snapped to 0 or 1
 * within EPS_MM of a slice. *k is the previous pixel's on entry: pd is affine along a row, so
 * the walk costs O(1) per pixel on average. Returns 0 when pd is beyond the first or last
 * slice. */
static inline int
slice_pos(const mpr_ctx *m, double pd, size_t *k, double *t)
{
    const double dlo = m->d[0], dhi = m->d[m->n - 1];
    if (!(pd >= dlo - EPS_MM && pd <= dhi + EPS_MM)) {
        return 0;
    }
    pd = pd < dlo ? dlo : pd > dhi ? dhi : pd;
    size_t kk = *k;
    while (kk + 2 < m->n && pd > m->d[kk + 1]) {
        kk++;
    }
    while (kk > 0 && pd < m->d[kk]) {
        kk--;
    }
    *k = kk;
    if (pd - m->d[kk] <= EPS_MM) {
        *t = 0;
    } else if (m->d[kk + 1] - pd <= EPS_MM) {
        *t = 1;
    } else {
        *t = (pd - m->d[kk]) * m->inv_gap[kk];
    }
    return 1;
}

/* A fraction within SNAP_PX of 0 or 1 becomes 0 (moving *i0 to the next pixel for 1): a point
 * computed onto a pixel centre up to rounding then reads that pixel alone, exactly. */
static inline double
snap(double f, uint32_t *i0)
{
    if (f < SNAP_PX) {
        return 0;
    }
    if (f > 1 - SNAP_PX) {
        ++*i0;
        return 0;
    }
    return f;
}

/* The 2 x 2 neighbourhood of (i, j) in a slice: offset of its top-left pixel, steps to the right
 * and lower neighbours (0 at the last column or row, whose weight is then 0) and the weights. */
typedef struct mpr_cell {
    size_t off, di, dj;
    double fi, fj;
} mpr_cell;

/* Returns 0 when (i, j) is outside the slice. */
static inline int
cell_at(const mpr_ctx *m, double i, double j, mpr_cell *c)
{
    if (!(i >= -0.5 && i <= m->imax && j >= -0.5 && j <= m->jmax)) {
        return 0;
    }
    i = i < 0 ? 0 : i > m->ilast ? m->ilast : i;
    j = j < 0 ? 0 : j > m->jlast ? m->jlast : j;
    uint32_t i0 = (uint32_t)i, j0 = (uint32_t)j;
    c->fi = snap(i - i0, &i0);
    c->fj = snap(j - j0, &j0);
    c->di = i0 + 1 < m->cols;
    c->dj = j0 + 1 < m->rows ? m->cols : 0;
    c->off = (size_t)j0 * m->cols + i0;
    return 1;
}

/* The index of the nearest pixel centre to coordinate u (0..last), the lower one on a tie. */
static inline uint32_t
nearest_index(double u, uint32_t last)
{
    double h = u + 0.5; /* >= 0 inside the footprint */
    uint32_t n = (uint32_t)h;
    if (n > 0 && (double)n == h) {
        n--;
    }
    return n > last ? last : n;
}

/* Offset of the pixel nearest to (i, j); returns 0 when (i, j) is outside the slice. */
static inline int
nearest_at(const mpr_ctx *m, double i, double j, size_t *off)
{
    if (!(i >= -0.5 && i <= m->imax && j >= -0.5 && j <= m->jmax)) {
        return 0;
    }
    *off = (size_t)nearest_index(j, m->rows - 1) * m->cols + nearest_index(i, m->cols - 1);
    return 1;
}

/* ---------------------------------------------------------------- one row */

#define DEFINE_ROW(T, suffix)                                                                      \
    static inline double bilinear_##suffix(const void *img, const mpr_cell *c)                     \
    {                                                                                              \
        const T *p = (const T *)img + c->off;                                                      \
        double top = p[0] + c->fi * ((double)p[c->di] - p[0]);                                     \
        double bot = p[c->dj] + c->fi * ((double)p[c->dj + c->di] - p[c->dj]);                     \
        return top + c->fj * (bot - top);                                                          \
    }                                                                                              \
                                                                                                   \
    /* Samples pixels x0 .. x0 + w - 1 of the row whose map values at x = 0 are rb[3]: vals[i]     \
     * gets the value, in[i] whether it is inside the volume (vals is the padding where not).      \
     * When d does not change along the row (dx[0] == 0, as for any plane whose rows are           \
     * parallel to the slices) the slice pair is found once: the same numbers as per pixel. */     \
    static void sample_row_##suffix(const mpr_ctx *m, const mpr_map *map, const double rb[3],      \
                                    rnd_interp interp, uint32_t x0, uint32_t w, float *vals,       \
                                    uint8_t *in)                                                   \
    {                                                                                              \
        size_t k = 0;                                                                              \
        double t = 0;                                                                              \
        int row_const = map->dx[0] == 0;                                                           \
        if (row_const && !slice_pos(m, rb[0], &k, &t)) {                                           \
            for (uint32_t i = 0; i < w; i++) {                                                     \
                vals[i] = m->pad;                                                                  \
                in[i] = 0;                                                                         \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        for (uint32_t i = 0; i < w; i++) {                                                         \
            double x = (double)(x0 + i);                                                           \
            vals[i] = m->pad;                                                                      \
            in[i] = 0;                                                                             \
            if (!row_const && !slice_pos(m, rb[0] + x * map->dx[0], &k, &t)) {                     \
                continue;                                                                          \
            }                                                                                      \
            double pi = rb[1] + x * map->dx[1], pj = rb[2] + x * map->dx[2];                       \
            if (interp == RND_INTERP_NEAREST) {                                                    \
                size_t kk = t <= 0.5 ? k : k + 1, off;                                             \
                if (nearest_at(m, pi - m->oi[kk], pj - m->oj[kk], &off)) {                         \
                    vals[i] = (float)((const T *)m->vox[kk])[off];                                 \
                    in[i] = 1;                                                                     \
                }                                                                                  \
                continue;                                                                          \
            }                                                                                      \
            mpr_cell ca, cb;                                                                       \
            double a = 0, b = 0;                                                                   \
            if (t < 1) {                                                                           \
                if (!cell_at(m, pi - m->oi[k], pj - m->oj[k], &ca)) {                              \
                    continue;                                                                      \
                }                                                                                  \
                a = bilinear_##suffix(m->vox[k], &ca);                                             \
            }                                                                                      \
            if (t > 0) {                                                                           \
                /* unsheared: slice k+1 has the same cell, which is then already valid */          \
                if (t < 1 && !m->sheared) {                                                        \
                    cb = ca;                                                                       \
                } else if (!cell_at(m, pi - m->oi[k + 1], pj - m->oj[k + 1], &cb)) {               \
                    continue;                                                                      \
                }                                                                                  \
                b = bilinear_##suffix(m->vox[k + 1], &cb);                                         \
            }                                                                                      \
            vals[i] = (float)(t == 0 ? a : t == 1 ? b : a + t * (b - a));                          \
            in[i] = 1;                                                                             \
        }                                                                                          \
    }

DEFINE_ROW(int16_t, s16)
DEFINE_ROW(float, f32)

/* ---------------------------------------------------------------- render */

rnd_type
rnd_mpr_output_type(const rnd_volume *v, const rnd_slab *slab, rnd_interp interp)
{
    int thin = !slab || slab->thickness_mm == 0;
    int pick = thin || slab->mode == RND_SLAB_MIP || slab->mode == RND_SLAB_MINIP;
    return v && rnd_volume_type(v) == RND_T_S16 && interp == RND_INTERP_NEAREST && pick ? RND_T_S16
                                                                                        : RND_T_F32;
}

/* Checks the plane as rnd.h requires of rnd_mpr_render. */
static int
check_plane(const rnd_plane *p, tsr_err *err)
{
    if (!p) {
        return tsr_err_set(err, TSR_EINVAL, "reformat: no plane");
    }
    if (!finite3(p->origin) || !finite3(p->row) || !finite3(p->col) || !isfinite(p->spacing)) {
        return tsr_err_set(err, TSR_EINVAL, "reformat: plane has non-finite numbers");
    }
    if (p->spacing <= 0) {
        return tsr_err_set(err, TSR_EINVAL, "reformat: plane spacing %g must be > 0", p->spacing);
    }
    if (p->width == 0 || p->height == 0) {
        return tsr_err_set(err, TSR_EINVAL, "reformat: plane of %ux%u pixels is empty",
                           (unsigned)p->width, (unsigned)p->height);
    }
    if (p->width > RND_MPR_MAX_SIDE || p->height > RND_MPR_MAX_SIDE) {
        return tsr_err_set(err, TSR_ELIMIT, "reformat: plane of %ux%u pixels exceeds %u per side",
                           (unsigned)p->width, (unsigned)p->height, RND_MPR_MAX_SIDE);
    }
    if (fabs(sqrt(rnd__dot3(p->row, p->row)) - 1) > UNIT_TOL ||
        fabs(sqrt(rnd__dot3(p->col, p->col)) - 1) > UNIT_TOL ||
        fabs(rnd__dot3(p->row, p->col)) > UNIT_TOL) {
        return tsr_err_set(err, TSR_EINVAL,
                           "reformat: plane row and col must be orthogonal unit vectors");
    }
    return TSR_OK;
}

/* Checks interp and slab, and that the slab meets the volume. Writes the number of samples along
 * the normal and their first offset and step (mm). */
static int
check_slab(const rnd_volume *v, const rnd_plane *p, const rnd_slab *slab, rnd_interp interp,
           uint32_t *ns, double *first, double *step, tsr_err *err)
{
    if (interp != RND_INTERP_LINEAR && interp != RND_INTERP_NEAREST) {
        return tsr_err_set(err, TSR_EINVAL, "reformat: unknown interpolation %d", (int)interp);
    }
    double t = slab ? slab->thickness_mm : 0;
    if (!isfinite(t) || t < 0) {
        return tsr_err_set(err, TSR_EINVAL, "slab thickness %g mm must be finite and >= 0", t);
    }
    if (slab && (unsigned)slab->mode > RND_SLAB_AVERAGE) {
        return tsr_err_set(err, TSR_EINVAL, "slab: unknown mode %d", (int)slab->mode);
    }
    size_t n;
    double *corners = footprint_corners(rnd_volume_geom(v), &n, err);
    if (!corners) {
        return TSR_ENOMEM;
    }
    double normal[3], lo, hi;
    rnd__cross3(p->row, p->col, normal);
    project_range(corners, n, p->origin, normal, &lo, &hi);
    free(corners);
    if (t > hi - lo) {
        return tsr_err_set(err, TSR_EINVAL,
                           "slab too thick: %g mm, the volume is %.1f mm deep along the plane "
                           "normal",
                           t, hi - lo);
    }
    if (lo > t / 2 + EPS_MM || hi < -t / 2 - EPS_MM) {
        return tsr_err_set(err, TSR_ENOTFOUND,
                           "plane outside the volume (%.1f mm from its nearest corner)",
                           lo > 0 ? lo : -hi);
    }
    *ns = 1;
    *first = 0;
    *step = 0;
    if (t > 0) {
        rnd_vol_summary s;
        rnd_vol_geom_summary(rnd_volume_geom(v), &s);
        double finest = fmin(fmin(s.pixel_spacing[0], s.pixel_spacing[1]), s.min_gap);
        double want = ceil(t / finest) + 1;
        *ns = want > RND_SLAB_MAX_SAMPLES ? RND_SLAB_MAX_SAMPLES : (uint32_t)want;
        *first = -t / 2;
        *step = t / (*ns - 1);
    }
    return TSR_OK;
}

/* Per-call buffers of one rectangle render. */
typedef struct mpr_bufs {
    float *vals;
    uint8_t *in;
    double *acc;
    uint32_t *cnt;
    mpr_map *maps; /* one per slab sample */
} mpr_bufs;

static void
bufs_free(mpr_bufs *b)
{
    free(b->vals);
    free(b->in);
    free(b->acc);
    free(b->cnt);
    free(b->maps);
}

/* Folds one sample row into the accumulators. */
static void
accumulate(rnd_slab_mode mode, const float *vals, const uint8_t *in, uint32_t w, double *acc,
           uint32_t *cnt)
{
    for (uint32_t i = 0; i < w; i++) {
        if (!in[i]) {
            continue;
        }
        double x = vals[i];
        if (cnt[i] == 0) {
            acc[i] = x;
        } else if (mode == RND_SLAB_MIP) {
            acc[i] = x > acc[i] ? x : acc[i];
        } else if (mode == RND_SLAB_MINIP) {
            acc[i] = x < acc[i] ? x : acc[i];
        } else {
            acc[i] += x;
        }
        cnt[i]++;
    }
}

/* Writes one finished row into the output frame. */
static void
store_row(rnd_frame *f, uint32_t y, const float *vals, const double *acc, const uint32_t *cnt,
          int slab_avg, float pad)
{
    uint32_t w = f->width;
    for (uint32_t i = 0; i < w; i++) {
        double x = vals ? vals[i] : cnt[i] == 0 ? pad : slab_avg ? acc[i] / cnt[i] : acc[i];
        if (f->type == RND_T_S16) {
            ((int16_t *)f->data)[(size_t)y * w + i] = (int16_t)lrint(x);
        } else {
            ((float *)f->data)[(size_t)y * w + i] = (float)x;
        }
    }
}

static void
render_rows(const mpr_ctx *m, const mpr_bufs *b, uint32_t ns, const rnd_slab *slab,
            rnd_interp interp, uint32_t x0, uint32_t y0, rnd_frame *f)
{
    uint32_t w = f->width;
    for (uint32_t yy = 0; yy < f->height; yy++) {
        double y = (double)(y0 + yy);
        for (uint32_t s = 0; s < ns; s++) {
            const mpr_map *map = &b->maps[s];
            double rb[3];
            for (int q = 0; q < 3; q++) {
                rb[q] = map->base[q] + y * map->dy[q];
            }
            if (m->is_float) {
                sample_row_f32(m, map, rb, interp, x0, w, b->vals, b->in);
            } else {
                sample_row_s16(m, map, rb, interp, x0, w, b->vals, b->in);
            }
            if (ns > 1) {
                if (s == 0) {
                    memset(b->cnt, 0, w * sizeof *b->cnt);
                }
                accumulate(slab->mode, b->vals, b->in, w, b->acc, b->cnt);
            }
        }
        store_row(f, yy, ns > 1 ? NULL : b->vals, b->acc, b->cnt,
                  ns > 1 && slab->mode == RND_SLAB_AVERAGE, m->pad);
    }
}

int
rnd_mpr_render_rect(const rnd_volume *v, const rnd_plane *p, const rnd_slab *slab,
                    rnd_interp interp, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
                    rnd_frame **out, tsr_err *err)
{
    if (!v || !out) {
        return tsr_err_set(err, TSR_EINVAL, "reformat: no volume");
    }
    if (!rnd_volume_complete(v)) {
        return tsr_err_set(err, TSR_EINVAL, "reformat: the volume is not completely filled");
    }
    int rc = check_plane(p, err);
    if (rc != TSR_OK) {
        return rc;
    }
    if (w == 0 || h == 0 || x >= p->width || y >= p->height || w > p->width - x ||
        h > p->height - y) {
        return tsr_err_set(err, TSR_EINVAL,
                           "reformat: rectangle %ux%u at (%u, %u) is not inside "
                           "the %ux%u plane",
                           (unsigned)w, (unsigned)h, (unsigned)x, (unsigned)y, (unsigned)p->width,
                           (unsigned)p->height);
    }
    uint32_t ns = 1;
    double first = 0, step = 0;
    rc = check_slab(v, p, slab, interp, &ns, &first, &step, err);
    if (rc != TSR_OK) {
        return rc;
    }
    mpr_ctx m;
    rc = ctx_init(&m, v, err);
    if (rc != TSR_OK) {
        return rc;
    }
    rnd_frame *f = NULL;
    mpr_bufs b = {0};
    rc = rnd_frame_alloc(w, h, 1, rnd_mpr_output_type(v, slab, interp), &f, err);
    if (rc != TSR_OK) {
        goto done;
    }
    b.vals = malloc(w * sizeof *b.vals);
    b.in = malloc(w);
    b.acc = malloc(w * sizeof *b.acc);
    b.cnt = malloc(w * sizeof *b.cnt);
    b.maps = malloc(ns * sizeof *b.maps);
    if (!b.vals || !b.in || !b.acc || !b.cnt || !b.maps) {
        rc = tsr_err_set(err, TSR_ENOMEM, "out of memory for a %ux%u reformat", (unsigned)w,
                         (unsigned)h);
        goto done;
    }
    for (uint32_t s = 0; s < ns; s++) {
        map_init(&m, p, ns > 1 ? first + s * step : 0.0, &b.maps[s]);
    }
    f->bits_stored = f->type == RND_T_S16 ? 16 : 32;
    f->is_signed = 1;
    f->photometric = RND_PI_MONOCHROME2;
    render_rows(&m, &b, ns, slab, interp, x, y, f);
    *out = f;
    f = NULL;
done:
    rnd_frame_free(f);
    bufs_free(&b);
    ctx_free(&m);
    return rc;
}

int
rnd_mpr_render(const rnd_volume *v, const rnd_plane *p, const rnd_slab *slab, rnd_interp interp,
               rnd_frame **out, tsr_err *err)
{
    if (!p) {
        return tsr_err_set(err, TSR_EINVAL, "reformat: no plane");
    }
    return rnd_mpr_render_rect(v, p, slab, interp, 0, 0, p->width, p->height, out, err);
}
