/* SPDX-License-Identifier: MIT */
/* test_data_mpr.c: volumes and reformats of the real series in ../shared/dicom/series: a CT with
 * gantry tilt and variable spacing (GE), a uniform axial CT (Philips), a sagittal MR (Siemens).
 *
 * Each series is opened and decoded file by file, planned from rnd_info's geometry and built
 * into a volume. Reformats are checked against the decoded frames directly (never against the
 * volume): the plane of a slice must give that slice back, and orthogonal or oblique planes must
 * match a bilinear sampling of the two bracketing source frames written independently here. */
#include "tsr_test.h"

#include "rnd.h"

#include <dirent.h>
#include <math.h>

#define EPS_MM  1e-4 /* the sampler's documented on-slice tolerance */
#define SNAP_PX 1e-6 /* and on-pixel tolerance */
#define AMB     1e-7 /* points this close to a decision boundary are not compared */

/* Fails unless |a - b| <= tol, showing both values. */
#define assert_near(a, b, tol)                                                                     \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (tol))) {                                                           \
            fail_msg("%s = %.17g, expected %.17g (tolerance %g)", #a, a_, b_, (double)(tol));      \
        }                                                                                          \
    } while (0)

static double
dot3(const double *a, const double *b)
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

/* ---------------------------------------------------------------- loading a series */

typedef struct series {
    rnd_vol_geom *g;
    rnd_volume *v;
    rnd_vol_summary s;
    double *d;       /* sorted slice positions along the normal */
    double *origins; /* 3 per sorted slice */
    float **mod;     /* per sorted slice: modality values computed here from the decoded frame */
    int float_volume;
} series;

static int
cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted file names of a folder (skipping dot files); *n receives their number. */
static char **
list_folder(const char *dir, size_t *n)
{
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    char **names = NULL;
    size_t cnt = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        names = realloc(names, (cnt + 1) * sizeof *names);
        assert_non_null(names);
        names[cnt] = malloc(strlen(e->d_name) + 1);
        assert_non_null(names[cnt]);
        strcpy(names[cnt++], e->d_name);
    }
    closedir(dp);
    qsort(names, cnt, sizeof *names, cmp_name);
    *n = cnt;
    return names;
}

/* Stored value i of a one-sample frame. */
static double
stored(const rnd_frame *f, size_t i)
{
    switch (f->type) {
    case RND_T_U8:
        return ((const uint8_t *)f->data)[i];
    case RND_T_S8:
        return ((const int8_t *)f->data)[i];
    case RND_T_U16:
        return ((const uint16_t *)f->data)[i];
    case RND_T_S16:
        return ((const int16_t *)f->data)[i];
    case RND_T_U32:
        return ((const uint32_t *)f->data)[i];
    case RND_T_S32:
        return ((const int32_t *)f->data)[i];
    case RND_T_F32:
        return ((const float *)f->data)[i];
    }
    return 0;
}

/* Opens every file of series/<name> (`probe` is one of them: a missing corpus skips), plans
 * the volume and fills it from the decoded frames. */
static series
load_series(const char *name, const char *probe, size_t expect_files)
{
    char rel[512];
    snprintf(rel, sizeof rel, "series/%s/%s", name, probe);
    (void)tsr_test_data(rel);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/series/%s", TSR_DICOM_DIR, name);
    size_t n;
    char **names = list_folder(dir, &n);
    assert_int_equal(n, expect_files);
    rnd_dicom **files = calloc(n, sizeof *files);
    rnd_vol_slice *slices = calloc(n, sizeof *slices);
    assert_true(files && slices);
    tsr_err err = {0};
    int fits = 1;
    for (size_t i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (rnd_dicom_open(path, NULL, &files[i], &err) != TSR_OK) {
            fail_msg("%s: %s", path, err.msg);
        }
        const rnd_info *info = rnd_dicom_info(files[i]);
        assert_true(info->has_position && info->has_orientation && info->has_pixel_spacing);
        assert_null(info->modality_lut.data);
        slices[i] =
            (rnd_vol_slice){.rows = info->rows, .columns = info->columns, .id = (uint32_t)i};
        memcpy(slices[i].pixel_spacing, info->pixel_spacing, sizeof slices[i].pixel_spacing);
        memcpy(slices[i].orientation, info->orientation, sizeof slices[i].orientation);
        memcpy(slices[i].position, info->position, sizeof slices[i].position);
        fits &= rnd_volume_fits_int16(info, info->rescale_slope, info->rescale_intercept);
    }
    series se = {0};
    if (rnd_volume_plan(slices, n, &se.g, &err) != TSR_OK) {
        fail_msg("%s: plan: %s", name, err.msg);
    }
    rnd_vol_geom_summary(se.g, &se.s);
    assert_int_equal(se.s.slices, n);
    /* the orthonormalised directions are the files' cosines */
    for (int a = 0; a < 3; a++) {
        assert_near(se.s.row_dir[a], slices[0].orientation[a], 1e-6);
        assert_near(se.s.col_dir[a], slices[0].orientation[3 + a], 1e-6);
    }
    se.float_volume = !fits;
    assert_int_equal(rnd_volume_new(se.g, !fits, 0, &se.v, &err), TSR_OK);
    se.d = calloc(n, sizeof *se.d);
    se.origins = calloc(3 * n, sizeof *se.origins);
    se.mod = calloc(n, sizeof *se.mod);
    assert_true(se.d && se.origins && se.mod);
    for (size_t k = 0; k < n; k++) {
        uint32_t id;
        assert_int_equal(rnd_vol_geom_slice(se.g, k, &id, se.origins + 3 * k, &se.d[k]), TSR_OK);
        const rnd_info *info = rnd_dicom_info(files[id]);
        rnd_frame *f = NULL;
        if (rnd_dicom_decode_frame(files[id], 0, &f, &err) != TSR_OK) {
            fail_msg("%s: decode %s: %s", name, names[id], err.msg);
        }
        if (rnd_volume_set_slice(se.v, k, f, info->rescale_slope, info->rescale_intercept, &err) !=
            TSR_OK) {
            fail_msg("%s: slice %zu: %s", name, k, err.msg);
        }
        size_t px = (size_t)f->width * f->height;
        se.mod[k] = malloc(px * sizeof(float));
        assert_non_null(se.mod[k]);
        for (size_t i = 0; i < px; i++) {
            se.mod[k][i] = (float)(stored(f, i) * info->rescale_slope + info->rescale_intercept);
        }
        rnd_frame_free(f);
    }
    assert_true(rnd_volume_complete(se.v));
    for (size_t i = 0; i < n; i++) {
        rnd_dicom_close(files[i]);
        free(names[i]);
    }
    free(names);
    free(files);
    free(slices);
    return se;
}

static void
free_series(series *se)
{
    for (size_t k = 0; k < se->s.slices; k++) {
        free(se->mod[k]);
    }
    free(se->mod);
    free(se->d);
    free(se->origins);
    rnd_volume_free(se->v);
    rnd_vol_geom_free(se->g);
}

static float
out_value(const rnd_frame *f, uint32_t x, uint32_t y)
{
    size_t i = (size_t)y * f->width + x;
    return f->type == RND_T_S16 ? ((const int16_t *)f->data)[i] : ((const float *)f->data)[i];
}

/* ---------------------------------------------------------------- the independent reference */

/* A fraction snapped as documented; -1 when too close to the snap threshold to say. */
static double
snap_frac(double f, int *amb)
{
    if (fabs(f - SNAP_PX) < AMB || fabs(f - (1 - SNAP_PX)) < AMB) {
        *amb = 1;
    }
    return f < SNAP_PX ? 0 : f > 1 - SNAP_PX ? 1 : f;
}

/* Bilinear sampling of decoded slice k at column i, row j, with the half-pixel edge margin.
 * Returns 1 (and *val), 0 outside, -1 ambiguous. */
static int
sample_frame(const series *se, size_t k, double i, double j, double *val)
{
    uint32_t cols = se->s.columns, rows = se->s.rows;
    if (fabs(i + 0.5) < AMB || fabs(i - (cols - 0.5)) < AMB || fabs(j + 0.5) < AMB ||
        fabs(j - (rows - 0.5)) < AMB) {
        return -1;
    }
    if (i < -0.5 || i > cols - 0.5 || j < -0.5 || j > rows - 0.5) {
        return 0;
    }
    i = fmin(fmax(i, 0), cols - 1);
    j = fmin(fmax(j, 0), rows - 1);
    double i0 = floor(i), j0 = floor(j);
    int amb = 0;
    double fi = snap_frac(i - i0, &amb), fj = snap_frac(j - j0, &amb);
    if (amb) {
        return -1;
    }
    uint32_t a = (uint32_t)i0, b = (uint32_t)j0;
    uint32_t a1 = a + 1 < cols ? a + 1 : a, b1 = b + 1 < rows ? b + 1 : b;
    const float *m = se->mod[k];
    double top = m[(size_t)b * cols + a] * (1 - fi) + m[(size_t)b * cols + a1] * fi;
    double bot = m[(size_t)b1 * cols + a] * (1 - fi) + m[(size_t)b1 * cols + a1] * fi;
    *val = top * (1 - fj) + bot * fj;
    return 1;
}

/* The documented trilinear rule at patient point P, from the decoded frames. */
static int
reference(const series *se, const double *P, double *val)
{
    size_t n = se->s.slices;
    double d = dot3(P, se->s.normal), d0 = se->d[0], dn = se->d[n - 1];
    if (fabs(d - (d0 - EPS_MM)) < AMB || fabs(d - (dn + EPS_MM)) < AMB) {
        return -1;
    }
    if (d < d0 - EPS_MM || d > dn + EPS_MM) {
        return 0;
    }
    d = fmin(fmax(d, d0), dn);
    size_t k = 0;
    while (k + 2 < n && d > se->d[k + 1]) {
        k++;
    }
    double lo = d - se->d[k], hi = se->d[k + 1] - d;
    if (fabs(lo - EPS_MM) < AMB || fabs(hi - EPS_MM) < AMB) {
        return -1;
    }
    double t = lo <= EPS_MM ? 0 : hi <= EPS_MM ? 1 : lo / (se->d[k + 1] - se->d[k]);
    double v[2] = {0, 0};
    for (int e = 0; e < 2; e++) {
        if ((e == 0 && t == 1) || (e == 1 && t == 0)) {
            continue;
        }
        const double *o = se->origins + 3 * (k + e);
        double diff[3] = {P[0] - o[0], P[1] - o[1], P[2] - o[2]};
        int r = sample_frame(se, k + e, dot3(diff, se->s.row_dir) / se->s.pixel_spacing[1],
                             dot3(diff, se->s.col_dir) / se->s.pixel_spacing[0], &v[e]);
        if (r != 1) {
            return r;
        }
    }
    *val = (1 - t) * v[0] + t * v[1];
    return 1;
}

static void
plane_at(const rnd_plane *p, double x, double y, double *out)
{
    for (int a = 0; a < 3; a++) {
        out[a] = p->origin[a] + x * p->spacing * p->row[a] + y * p->spacing * p->col[a];
    }
}

/* Renders `p` (thin trilinear, or a MIP slab of `slab_mm`) and compares every pixel with the
 * reference; returns the number of inside pixels compared. */
static size_t
compare_plane(const series *se, const rnd_plane *p, double slab_mm, const char *what)
{
    rnd_frame *out = NULL;
    tsr_err err = {0};
    rnd_slab slab = {slab_mm, RND_SLAB_MIP};
    if (rnd_mpr_render(se->v, p, &slab, RND_INTERP_LINEAR, &out, &err) != TSR_OK) {
        fail_msg("%s: render: %s", what, err.msg);
    }
    float pad;
    assert_int_equal(rnd_volume_range(se->v, &pad, NULL), TSR_OK);
    double m[3] = {p->row[1] * p->col[2] - p->row[2] * p->col[1],
                   p->row[2] * p->col[0] - p->row[0] * p->col[2],
                   p->row[0] * p->col[1] - p->row[1] * p->col[0]};
    uint32_t ns = 1;
    if (slab_mm > 0) {
        double finest = fmin(fmin(se->s.pixel_spacing[0], se->s.pixel_spacing[1]), se->s.min_gap);
        ns = (uint32_t)ceil(slab_mm / finest) + 1;
    }
    size_t inside = 0, outside = 0;
    for (uint32_t y = 0; y < p->height; y++) {
        for (uint32_t x = 0; x < p->width; x++) {
            double best = 0, val;
            int n_in = 0, amb = 0;
            for (uint32_t s = 0; s < ns && !amb; s++) {
                double P[3], off = ns > 1 ? -slab_mm / 2 + s * (slab_mm / (ns - 1)) : 0;
                plane_at(p, x, y, P);
                for (int a = 0; a < 3; a++) {
                    P[a] += off * m[a];
                }
                int r = reference(se, P, &val);
                if (r < 0) {
                    amb = 1;
                } else if (r == 1) {
                    best = n_in++ ? fmax(best, val) : val;
                }
            }
            if (amb) {
                continue;
            }
            float got = out_value(out, x, y);
            if (n_in == 0) {
                if (got != pad) {
                    fail_msg("%s: outside pixel (%u, %u) = %g, padding %g", what, x, y, got, pad);
                }
                outside++;
            } else {
                if (fabs(got - best) > 1e-3 + 1e-6 * fabs(best)) {
                    fail_msg("%s: pixel (%u, %u) = %.5f, source frames give %.5f", what, x, y, got,
                             best);
                }
                inside++;
            }
        }
    }
    rnd_frame_free(out);
    (void)outside;
    return inside;
}

/* The plane of sorted slice k itself gives the slice back: trilinear to float rounding, and
 * nearest exactly. */
static void
check_slice_planes(const series *se, const char *what)
{
    assert_near(se->s.pixel_spacing[0], se->s.pixel_spacing[1], 1e-9); /* square pixels */
    size_t n = se->s.slices;
    const size_t ks[] = {0, 1, n / 3, n / 2, n - 2, n - 1};
    for (size_t q = 0; q < sizeof ks / sizeof ks[0]; q++) {
        size_t k = ks[q];
        rnd_plane p = {
            .spacing = se->s.pixel_spacing[0], .width = se->s.columns, .height = se->s.rows};
        memcpy(p.origin, se->origins + 3 * k, sizeof p.origin);
        memcpy(p.row, se->s.row_dir, sizeof p.row);
        memcpy(p.col, se->s.col_dir, sizeof p.col);
        for (int interp = 0; interp < 2; interp++) {
            rnd_frame *out = NULL;
            tsr_err err = {0};
            if (rnd_mpr_render(se->v, &p, NULL, (rnd_interp)interp, &out, &err) != TSR_OK) {
                fail_msg("%s: slice %zu: %s", what, k, err.msg);
            }
            for (uint32_t y = 0; y < p.height; y++) {
                for (uint32_t x = 0; x < p.width; x++) {
                    float want = se->mod[k][(size_t)y * p.width + x];
                    float got = out_value(out, x, y);
                    if (fabs(got - want) > (interp ? 0 : 1e-3)) {
                        fail_msg("%s: slice %zu (%s) pixel (%u, %u) = %g, the file has %g", what, k,
                                 interp ? "nearest" : "linear", x, y, got, want);
                    }
                }
            }
            rnd_frame_free(out);
        }
    }
}

static void
standard(const series *se, rnd_plane_axis axis, double frac, rnd_plane *p)
{
    int na = axis == RND_AXIS_AXIAL ? 2 : axis == RND_AXIS_CORONAL ? 1 : 0;
    double pos = se->s.extent_min[na] + frac * (se->s.extent_max[na] - se->s.extent_min[na]);
    tsr_err err = {0};
    if (rnd_plane_standard(se->g, axis, pos, 0, p, &err) != TSR_OK) {
        fail_msg("standard plane %d at %g: %s", (int)axis, pos, err.msg);
    }
}

/* ---------------------------------------------------------------- the series */

static void
ge_tilt_plan(void **state)
{
    (void)state;
    series se = load_series("ct_ge_head_tilt_varspacing", "01.dcm", 28);
    assert_true(se.s.sheared);
    assert_false(se.s.uniform);
    assert_near(se.s.tilt_deg, 18.5, 0.05);
    assert_near(se.s.min_gap, 1.08, 0.01);
    assert_near(se.s.max_gap, 7.0, 0.01);
    assert_int_equal(se.s.dropped, 0);
    assert_int_equal(se.s.duplicates, 0);
    assert_false(se.float_volume); /* signed 16-bit, identity rescale */
    free_series(&se);
}

static void
ge_tilt_reformats(void **state)
{
    (void)state;
    series se = load_series("ct_ge_head_tilt_varspacing", "01.dcm", 28);
    check_slice_planes(&se, "GE");
    rnd_plane p;
    standard(&se, RND_AXIS_SAGITTAL, 0.5, &p);
    assert_true(compare_plane(&se, &p, 0, "GE sagittal") > p.width * p.height / 4);
    standard(&se, RND_AXIS_AXIAL, 0.55, &p); /* axial cuts across the tilted slices */
    assert_true(compare_plane(&se, &p, 0, "GE axial") > p.width * p.height / 4);
    standard(&se, RND_AXIS_CORONAL, 0.5, &p);
    assert_true(compare_plane(&se, &p, 5.0, "GE coronal MIP 5 mm") > p.width * p.height / 4);
    free_series(&se);
}

static void
philips_plan_and_reformats(void **state)
{
    (void)state;
    series se = load_series("ct_philips_phantom_head_1mm", "I10", 64);
    assert_true(se.s.uniform);
    assert_false(se.s.sheared);
    assert_near(se.s.min_gap, 1.0, 1e-6);
    assert_near(se.s.max_gap, 1.0, 1e-6);
    assert_near(se.s.tilt_deg, 0, 1e-6);
    assert_false(se.float_volume); /* 12 bits, intercept -1024 */
    check_slice_planes(&se, "Philips");
    rnd_plane p;
    standard(&se, RND_AXIS_SAGITTAL, 0.5, &p);
    assert_true(compare_plane(&se, &p, 0, "Philips sagittal") > p.width * p.height / 10);
    standard(&se, RND_AXIS_CORONAL, 0.45, &p);
    assert_true(compare_plane(&se, &p, 0, "Philips coronal") > p.width * p.height / 10);
    standard(&se, RND_AXIS_AXIAL, 0.37, &p);
    assert_true(compare_plane(&se, &p, 4.0, "Philips axial MIP 4 mm") > p.width * p.height / 2);
    double mid[3], row[3] = {1, 0.3, 0.5}, col[3] = {-0.2, 1, 0.4};
    for (int a = 0; a < 3; a++) {
        mid[a] = 0.5 * (se.s.extent_min[a] + se.s.extent_max[a]);
    }
    tsr_err err = {0};
    assert_int_equal(rnd_plane_oblique(se.g, mid, row, col, 0, &p, &err), TSR_OK);
    assert_true(compare_plane(&se, &p, 0, "Philips oblique") > p.width * p.height / 20);
    free_series(&se);
}

static void
mr_sagittal_reformats(void **state)
{
    (void)state;
    series se = load_series("mr_siemens_t1_sag_hfs",
                            "0001_1.3.12.2.1107.5.2.43.67060."
                            "2022040715053454597060816.dcm",
                            35);
    assert_true(se.s.uniform);
    assert_near(se.s.min_gap, 4.8, 1e-4);
    assert_near(se.s.normal[0], -1, 1e-9); /* (0,1,0) x (0,0,-1) */
    check_slice_planes(&se, "MR");
    rnd_plane p;
    standard(&se, RND_AXIS_AXIAL, 0.5, &p);
    assert_true(compare_plane(&se, &p, 0, "MR axial") > p.width * p.height / 4);
    standard(&se, RND_AXIS_CORONAL, 0.5, &p);
    assert_true(compare_plane(&se, &p, 0, "MR coronal") > p.width * p.height / 4);
    free_series(&se);
}

TSR_TEST_MAIN(cmocka_unit_test(ge_tilt_plan), cmocka_unit_test(ge_tilt_reformats),
              cmocka_unit_test(philips_plan_and_reformats), cmocka_unit_test(mr_sagittal_reformats))
