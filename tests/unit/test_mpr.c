/* SPDX-License-Identifier: MIT */
/* test_mpr.c: volumes and reformats (rnd.h, section "volumes and reformats") on synthetic stacks.
 *
 * The central check: a volume whose voxels hold a linear function of their patient position,
 * f(P) = a . P + b, sampled on any plane must give f at every output pixel inside the volume and
 * the padding outside. The expected value of each pixel comes from an independent reference
 * written here from the documented rules (bracketing slices by d, each slice's own origin, the
 * half-pixel edge margin), evaluated analytically rather than from voxels. Stacks: axis-aligned,
 * oblique cosines, gantry-tilted (sheared), unequal spacing, and all of these at once. */
#include "tsr_test.h"

#include "rnd.h"

#include <math.h>

#define EPS_MM 1e-4 /* the sampler's documented on-slice tolerance */
#define AMB    1e-7 /* pixels this close to a decision boundary are not checked */
#define PI     3.14159265358979323846

/* Fails unless |a - b| <= tol, showing both values (doubles, unlike cmocka's float check). */
#define assert_near(a, b, tol)                                                                     \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (tol))) {                                                           \
            fail_msg("%s = %.17g, expected %.17g (tolerance %g)", #a, a_, b_, (double)(tol));      \
        }                                                                                          \
    } while (0)

/* ---------------------------------------------------------------- helpers */

static double
dot3(const double *a, const double *b)
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static void
cross3(const double *a, const double *b, double *o)
{
    o[0] = a[1] * b[2] - a[2] * b[1];
    o[1] = a[2] * b[0] - a[0] * b[2];
    o[2] = a[0] * b[1] - a[1] * b[0];
}

static void
unit3(double *v)
{
    double n = sqrt(dot3(v, v));
    v[0] /= n;
    v[1] /= n;
    v[2] /= n;
}

/* The test's own plane point: origin + x * spacing * row + y * spacing * col. */
static void
plane_at(const rnd_plane *p, double x, double y, double *out)
{
    for (int a = 0; a < 3; a++) {
        out[a] = p->origin[a] + x * p->spacing * p->row[a] + y * p->spacing * p->col[a];
    }
}

static float
frame_value(const rnd_frame *f, uint32_t x, uint32_t y)
{
    size_t i = (size_t)y * f->width + x;
    return f->type == RND_T_S16 ? ((const int16_t *)f->data)[i] : ((const float *)f->data)[i];
}

/* A stack description: cosines, slice origins (in input order), size and spacing. */
typedef struct stack {
    double r[3], c[3];
    double origins[40][3];
    size_t n;
    uint32_t cols, rows;
    double ps[2]; /* row spacing, column spacing */
} stack;

/* A straight stack: origin k = base + steps[0..k-1] summed along n, plus `shear` mm of the
 * column direction per mm along n (a gantry tilt of atan(shear)). */
static stack
make_stack(const double r[3], const double c[3], const double base[3], const double *steps,
           size_t n, double shear, uint32_t cols, uint32_t rows, double ps_row, double ps_col)
{
    stack s = {.n = n, .cols = cols, .rows = rows, .ps = {ps_row, ps_col}};
    memcpy(s.r, r, sizeof s.r);
    memcpy(s.c, c, sizeof s.c);
    double nrm[3], d = 0;
    cross3(r, c, nrm);
    for (size_t k = 0; k < n; k++) {
        if (k > 0) {
            d += steps[k - 1];
        }
        for (int a = 0; a < 3; a++) {
            s.origins[k][a] = base[a] + d * nrm[a] + shear * d * c[a];
        }
    }
    return s;
}

/* The stack's slices for the planner, in a shuffled order; ids are the stack indices. */
static void
stack_slices(const stack *s, rnd_vol_slice *out)
{
    assert_true(s->n % 7 != 0); /* else the shuffle below is no permutation */
    for (size_t i = 0; i < s->n; i++) {
        size_t k = (i * 7 + 3) % s->n; /* a permutation when gcd(7, n) = 1 */
        rnd_vol_slice *v = &out[i];
        memset(v, 0, sizeof *v);
        v->rows = s->rows;
        v->columns = s->cols;
        v->pixel_spacing[0] = s->ps[0];
        v->pixel_spacing[1] = s->ps[1];
        memcpy(v->orientation, s->r, sizeof s->r);
        memcpy(v->orientation + 3, s->c, sizeof s->c);
        memcpy(v->position, s->origins[k], sizeof v->position);
        v->id = (uint32_t)k;
    }
}

static rnd_vol_geom *
plan(const stack *s)
{
    rnd_vol_slice sl[40];
    rnd_vol_geom *g = NULL;
    tsr_err err = {0};
    stack_slices(s, sl);
    if (rnd_volume_plan(sl, s->n, &g, &err) != TSR_OK) {
        fail_msg("plan: %s", err.msg);
    }
    return g;
}

/* f(P) = a . P + b */
typedef struct linear {
    double a[3], b;
} linear;

static double
lin_eval(const linear *f, const double *p)
{
    return dot3(f->a, p) + f->b;
}

/* A float volume of geometry g whose voxel (i, j) of slice k holds f at its patient position. */
static rnd_volume *
linear_volume(const rnd_vol_geom *g, const linear *f)
{
    rnd_vol_summary s;
    rnd_vol_geom_summary(g, &s);
    rnd_volume *v = NULL;
    tsr_err err = {0};
    assert_int_equal(rnd_volume_new(g, 1, 0, &v, &err), TSR_OK);
    for (size_t k = 0; k < s.slices; k++) {
        double o[3];
        assert_int_equal(rnd_vol_geom_slice(g, k, NULL, o, NULL), TSR_OK);
        rnd_frame *fr = NULL;
        assert_int_equal(rnd_frame_alloc(s.columns, s.rows, 1, RND_T_F32, &fr, &err), TSR_OK);
        float *px = fr->data;
        for (uint32_t j = 0; j < s.rows; j++) {
            for (uint32_t i = 0; i < s.columns; i++) {
                double p[3];
                for (int a = 0; a < 3; a++) {
                    p[a] = o[a] + i * s.pixel_spacing[1] * s.row_dir[a] +
                           j * s.pixel_spacing[0] * s.col_dir[a];
                }
                px[(size_t)j * s.columns + i] = (float)lin_eval(f, p);
            }
        }
        if (rnd_volume_set_slice(v, k, fr, 1.0, 0.0, &err) != TSR_OK) {
            fail_msg("set_slice %zu: %s", k, err.msg);
        }
        rnd_frame_free(fr);
    }
    assert_true(rnd_volume_complete(v));
    return v;
}

static int
near_boundary(double x, double lo, double hi)
{
    return fabs(x - lo) < AMB || fabs(x - hi) < AMB;
}

/* The documented rule, evaluated analytically: 1 and *val when P is inside, 0 when outside
 * (padding), -1 when P is too close to a decision boundary to say. */
static int
reference(const rnd_vol_geom *g, const linear *f, const double *P, double *val)
{
    rnd_vol_summary s;
    rnd_vol_geom_summary(g, &s);
    double d0, dn;
    rnd_vol_geom_slice(g, 0, NULL, NULL, &d0);
    rnd_vol_geom_slice(g, s.slices - 1, NULL, NULL, &dn);
    double d = dot3(P, s.normal);
    if (near_boundary(d, d0 - EPS_MM, dn + EPS_MM)) {
        return -1;
    }
    if (d < d0 - EPS_MM || d > dn + EPS_MM) {
        return 0;
    }
    d = d < d0 ? d0 : d > dn ? dn : d;
    size_t k = 0;
    double dk = d0, dk1 = 0;
    rnd_vol_geom_slice(g, 1, NULL, NULL, &dk1);
    while (k + 2 < s.slices && d > dk1) {
        k++;
        dk = dk1;
        rnd_vol_geom_slice(g, k + 1, NULL, NULL, &dk1);
    }
    if (near_boundary(d - dk, EPS_MM, EPS_MM) || near_boundary(dk1 - d, EPS_MM, EPS_MM)) {
        return -1;
    }
    double t = d - dk <= EPS_MM ? 0 : dk1 - d <= EPS_MM ? 1 : (d - dk) / (dk1 - dk);
    double v[2] = {0, 0};
    for (int e = 0; e < 2; e++) {
        if ((e == 0 && t == 1) || (e == 1 && t == 0)) {
            continue;
        }
        double o[3], q[3], diff[3];
        rnd_vol_geom_slice(g, k + e, NULL, o, NULL);
        for (int a = 0; a < 3; a++) {
            diff[a] = P[a] - o[a];
        }
        double i = dot3(diff, s.row_dir) / s.pixel_spacing[1];
        double j = dot3(diff, s.col_dir) / s.pixel_spacing[0];
        if (near_boundary(i, -0.5, s.columns - 0.5) || near_boundary(j, -0.5, s.rows - 0.5)) {
            return -1;
        }
        if (i < -0.5 || i > s.columns - 0.5 || j < -0.5 || j > s.rows - 0.5) {
            return 0;
        }
        i = fmin(fmax(i, 0), s.columns - 1);
        j = fmin(fmax(j, 0), s.rows - 1);
        for (int a = 0; a < 3; a++) {
            q[a] = o[a] + i * s.pixel_spacing[1] * s.row_dir[a] +
                   j * s.pixel_spacing[0] * s.col_dir[a];
        }
        v[e] = lin_eval(f, q);
    }
    *val = (1 - t) * v[0] + t * v[1];
    return 1;
}

typedef struct counts {
    size_t inside, outside;
} counts;

/* Renders plane p thin and trilinear and checks every pixel against the reference. */
static counts
check_plane(const rnd_volume *v, const linear *f, const rnd_plane *p, const char *what)
{
    const rnd_vol_geom *g = rnd_volume_geom(v);
    rnd_frame *out = NULL;
    tsr_err err = {0};
    if (rnd_mpr_render(v, p, NULL, RND_INTERP_LINEAR, &out, &err) != TSR_OK) {
        fail_msg("%s: render: %s", what, err.msg);
    }
    assert_int_equal(out->type, RND_T_F32);
    assert_int_equal(out->width, p->width);
    assert_int_equal(out->height, p->height);
    float pad;
    assert_int_equal(rnd_volume_range(v, &pad, NULL), TSR_OK);
    counts c = {0, 0};
    for (uint32_t y = 0; y < p->height; y++) {
        for (uint32_t x = 0; x < p->width; x++) {
            double P[3], want;
            plane_at(p, x, y, P);
            int r = reference(g, f, P, &want);
            float got = frame_value(out, x, y);
            if (r == 1) {
                if (fabs(got - want) > 2e-3 + 1e-6 * fabs(want)) {
                    fail_msg("%s: pixel (%u, %u) = %.6f, f(P) = %.6f", what, x, y, got, want);
                }
                c.inside++;
            } else if (r == 0) {
                if (got != pad) {
                    fail_msg("%s: outside pixel (%u, %u) = %g, padding %g", what, x, y, got, pad);
                }
                c.outside++;
            }
        }
    }
    rnd_frame_free(out);
    return c;
}

/* Reformats a linear volume on standard, oblique and normal/up planes; every one must have a
 * good share of inside pixels (so the check is not vacuous), and the obliques outside ones. */
static void
check_linear_stack(const stack *st, const char *what)
{
    static const linear f = {{0.7, -1.3, 2.1}, 5.0};
    rnd_vol_geom *g = plan(st);
    rnd_volume *v = linear_volume(g, &f);
    rnd_vol_summary s;
    rnd_vol_geom_summary(g, &s);
    double mid[3];
    for (int a = 0; a < 3; a++) {
        mid[a] = 0.5 * (s.extent_min[a] + s.extent_max[a]);
    }
    tsr_err err = {0};
    char name[128];
    for (int axis = 0; axis < 3; axis++) {
        for (int pos = 0; pos < 3; pos++) {
            rnd_plane p;
            double at = s.extent_min[2 - axis] +
                        (0.2 + 0.3 * pos) * (s.extent_max[2 - axis] - s.extent_min[2 - axis]);
            if (rnd_plane_standard(g, (rnd_plane_axis)axis, at, 0, &p, &err) != TSR_OK) {
                fail_msg("%s: standard %d at %g: %s", what, axis, at, err.msg);
            }
            snprintf(name, sizeof name, "%s standard %d at %.2f", what, axis, at);
            counts c = check_plane(v, &f, &p, name);
            assert_true(c.inside > p.width * p.height / 10);
        }
    }
    static const double dirs[][2][3] = {
        {{1, 0.2, 0.3}, {-0.1, 0.4, 1}},
        {{0.3, 1, -0.5}, {1, 0, 0.7}},
        {{-0.6, 0.5, 0.6}, {0.2, 0.9, -0.3}},
    };
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        rnd_plane p;
        double pt[3] = {mid[0] + 1.3 * i, mid[1] - 0.7, mid[2] + 0.4 * i};
        if (rnd_plane_oblique(g, pt, dirs[i][0], dirs[i][1], 0.83, &p, &err) != TSR_OK) {
            fail_msg("%s: oblique %zu: %s", what, i, err.msg);
        }
        snprintf(name, sizeof name, "%s oblique %zu", what, i);
        counts c = check_plane(v, &f, &p, name);
        assert_true(c.inside > p.width * p.height / 20);
        assert_true(c.outside > 0);
        if (rnd_plane_from_normal(g, pt, dirs[i][0], dirs[i][1], 0, &p, &err) != TSR_OK) {
            fail_msg("%s: normal %zu: %s", what, i, err.msg);
        }
        snprintf(name, sizeof name, "%s normal/up %zu", what, i);
        c = check_plane(v, &f, &p, name);
        assert_true(c.inside > p.width * p.height / 20);
    }
    rnd_volume_free(v);
    rnd_vol_geom_free(g);
}

static const double X[3] = {1, 0, 0}, Y[3] = {0, 1, 0};

/* ---------------------------------------------------------------- linear functions */

static void
linear_axis_aligned(void **state)
{
    (void)state;
    double steps[16];
    for (int i = 0; i < 16; i++) {
        steps[i] = 1.5;
    }
    stack st = make_stack(X, Y, (double[]){-10, -20, 30}, steps, 17, 0, 24, 20, 0.9, 0.7);
    check_linear_stack(&st, "axis-aligned");
}

static void
linear_oblique_cosines(void **state)
{
    (void)state;
    double r[3] = {1, 0.3, -0.2}, c[3] = {0.1, 1, 0.4}, steps[12];
    unit3(r);
    double rc = dot3(r, c);
    for (int a = 0; a < 3; a++) {
        c[a] -= rc * r[a];
    }
    unit3(c);
    for (int i = 0; i < 12; i++) {
        steps[i] = 2.0;
    }
    stack st = make_stack(r, c, (double[]){5, -3, 12}, steps, 13, 0, 22, 18, 0.8, 0.8);
    check_linear_stack(&st, "oblique");
}

static void
linear_sheared(void **state)
{
    (void)state;
    double tilt = 18.5 * PI / 180, c[3] = {0, cos(tilt), -sin(tilt)}, steps[14];
    for (int i = 0; i < 14; i++) {
        steps[i] = 2.5;
    }
    stack st = make_stack(X, c, (double[]){-10, -12, 4}, steps, 15, tan(tilt), 20, 24, 0.75, 0.75);
    rnd_vol_geom *g = plan(&st);
    rnd_vol_summary s;
    rnd_vol_geom_summary(g, &s);
    assert_true(s.sheared);
    assert_false(s.uniform);
    assert_true(fabs(s.tilt_deg - 18.5) < 1e-6);
    rnd_vol_geom_free(g);
    check_linear_stack(&st, "sheared");
}

static void
linear_unequal_spacing(void **state)
{
    (void)state;
    static const double steps[] = {1, 1, 3, 0.5, 2, 7, 1.08, 1.08, 4, 0.25, 2.5};
    stack st = make_stack(X, Y, (double[]){0, 0, -20}, steps, 12, 0, 18, 16, 1.0, 1.0);
    check_linear_stack(&st, "unequal spacing");
}

/* Oblique cosines, a shear and uneven steps together. */
static void
linear_everything(void **state)
{
    (void)state;
    double r[3] = {0.9, -0.3, 0.2}, c[3] = {0.25, 0.8, -0.5};
    static const double steps[] = {3, 1.2, 1.2, 5, 0.6, 2, 2, 4.5, 1};
    unit3(r);
    double rc = dot3(r, c);
    for (int a = 0; a < 3; a++) {
        c[a] -= rc * r[a];
    }
    unit3(c);
    stack st = make_stack(r, c, (double[]){-7, 3, 40}, steps, 10, -0.4, 19, 23, 0.6, 0.85);
    check_linear_stack(&st, "oblique+sheared+uneven");
}

/* ---------------------------------------------------------------- exact voxels */

/* An int16 axial stack of 21 x 17 pixels of 0.8 mm, 13 slices 0.8 mm apart, of noise; odd sizes
 * put the middle of the volume on a voxel, so standard planes fall on voxel centres. */
static rnd_volume *
noise_volume(rnd_vol_geom **gout)
{
    double steps[12];
    for (int i = 0; i < 12; i++) {
        steps[i] = 0.8;
    }
    stack st = make_stack(X, Y, (double[]){-8, -6, 100}, steps, 13, 0, 21, 17, 0.8, 0.8);
    rnd_vol_geom *g = plan(&st);
    rnd_volume *v = NULL;
    tsr_err err = {0};
    assert_int_equal(rnd_volume_new(g, 0, 0, &v, &err), TSR_OK);
    assert_int_equal(rnd_volume_type(v), RND_T_S16);
    uint32_t seed = 12345;
    for (size_t k = 0; k < 13; k++) {
        rnd_frame *f = NULL;
        assert_int_equal(rnd_frame_alloc(21, 17, 1, RND_T_U16, &f, &err), TSR_OK);
        uint16_t *px = f->data;
        for (size_t i = 0; i < 21 * 17; i++) {
            seed = seed * 1664525u + 1013904223u;
            px[i] = (uint16_t)(seed >> 20); /* 0..4095 */
        }
        assert_int_equal(rnd_volume_set_slice(v, k, f, 1.0, -1024.0, &err), TSR_OK);
        rnd_frame_free(f);
    }
    *gout = g;
    return v;
}

/* Voxel (i, j) of sorted slice k. */
static int16_t
voxel(const rnd_volume *v, size_t k, uint32_t i, uint32_t j)
{
    return ((const int16_t *)rnd_volume_voxels(v, k))[(size_t)j * 21 + i];
}

/* The plane of slice k itself reproduces it exactly, trilinear (F32) and nearest (S16). */
static void
axial_at_slice_equals_slice(void **state)
{
    (void)state;
    rnd_vol_geom *g;
    rnd_volume *v = noise_volume(&g);
    for (size_t k = 0; k < 13; k += 3) {
        rnd_plane p = {
            .row = {1, 0, 0}, .col = {0, 1, 0}, .spacing = 0.8, .width = 21, .height = 17};
        assert_int_equal(rnd_vol_geom_slice(g, k, NULL, p.origin, NULL), TSR_OK);
        for (int interp = 0; interp < 2; interp++) {
            rnd_frame *f = NULL;
            tsr_err err = {0};
            assert_int_equal(rnd_mpr_render(v, &p, NULL, (rnd_interp)interp, &f, &err), TSR_OK);
            assert_int_equal(f->type, interp ? RND_T_S16 : RND_T_F32);
            for (uint32_t j = 0; j < 17; j++) {
                for (uint32_t i = 0; i < 21; i++) {
                    assert_near(frame_value(f, i, j), voxel(v, k, i, j), 0);
                }
            }
            rnd_frame_free(f);
        }
    }
    rnd_volume_free(v);
    rnd_vol_geom_free(g);
}

/* Standard planes through voxel centres: every output pixel on a voxel centre equals it; their
 * number is the full section; the orientation is the documented one. */
static void
standard_planes_hit_voxels(void **state)
{
    (void)state;
    rnd_vol_geom *g;
    rnd_volume *v = noise_volume(&g);
    double o0[3];
    rnd_vol_geom_slice(g, 0, NULL, o0, NULL);
    static const double rows[3][3] = {{1, 0, 0}, {1, 0, 0}, {0, 1, 0}};
    static const double cols[3][3] = {{0, 1, 0}, {0, 0, -1}, {0, 0, -1}};
    static const size_t section[3] = {21 * 17, 21 * 13, 17 * 13};
    for (int axis = 0; axis < 3; axis++) {
        int na = 2 - axis; /* z, y, x */
        for (int idx = 1; idx < 5; idx += 3) {
            double pos = o0[na] + idx * 0.8;
            rnd_plane p;
            tsr_err err = {0};
            assert_int_equal(rnd_plane_standard(g, (rnd_plane_axis)axis, pos, 0, &p, &err), TSR_OK);
            assert_memory_equal(p.row, rows[axis], sizeof p.row);
            assert_memory_equal(p.col, cols[axis], sizeof p.col);
            assert_near(p.spacing, 0.8, 1e-12);
            for (int interp = 0; interp < 2; interp++) {
                rnd_frame *f = NULL;
                assert_int_equal(rnd_mpr_render(v, &p, NULL, (rnd_interp)interp, &f, &err), TSR_OK);
                size_t hits = 0;
                for (uint32_t y = 0; y < p.height; y++) {
                    for (uint32_t x = 0; x < p.width; x++) {
                        double P[3], u[3];
                        plane_at(&p, x, y, P);
                        for (int a = 0; a < 3; a++) {
                            u[a] = (P[a] - o0[a]) / 0.8;
                        }
                        long i = lround(u[0]), j = lround(u[1]), k = lround(u[2]);
                        if (fabs(u[0] - i) > 1e-9 || fabs(u[1] - j) > 1e-9 ||
                            fabs(u[2] - k) > 1e-9 || i < 0 || i > 20 || j < 0 || j > 16 || k < 0 ||
                            k > 12) {
                            continue;
                        }
                        assert_near(frame_value(f, x, y),
                                    voxel(v, (size_t)k, (uint32_t)i, (uint32_t)j), 0);
                        hits++;
                    }
                }
                assert_int_equal(hits, section[axis]);
                rnd_frame_free(f);
            }
        }
    }
    rnd_volume_free(v);
    rnd_vol_geom_free(g);
}

/* A sagittal plane built by hand through column 7: output (x, y) is voxel (7, x) of the slice
 * counted from the top (highest z, since col is -z). */
static void
sagittal_through_column(void **state)
{
    (void)state;
    rnd_vol_geom *g;
    rnd_volume *v = noise_volume(&g);
    rnd_plane p = {.row = {0, 1, 0}, .col = {0, 0, -1}, .spacing = 0.8, .width = 17, .height = 13};
    rnd_vol_geom_slice(g, 12, NULL, p.origin, NULL);
    p.origin[0] += 7 * 0.8;
    rnd_frame *f = NULL;
    tsr_err err = {0};
    assert_int_equal(rnd_mpr_render(v, &p, NULL, RND_INTERP_LINEAR, &f, &err), TSR_OK);
    for (uint32_t y = 0; y < 13; y++) {
        for (uint32_t x = 0; x < 17; x++) {
            assert_near(frame_value(f, x, y), voxel(v, 12 - y, 7, x), 0);
        }
    }
    rnd_frame_free(f);
    rnd_volume_free(v);
    rnd_vol_geom_free(g);
}

/* Nearest interpolation on exact ties takes the lower index. With 1 mm pixels and slices (all
 * numbers dyadic, so the ties are exact), a plane half-way between slices 1 and 2 and shifted by
 * half a pixel in x and y reads voxel (x, y) of slice 1. */
static void
nearest_ties_take_lower(void **state)
{
    (void)state;
    double steps[3] = {1, 1, 1};
    stack st = make_stack(X, Y, (double[]){0, 0, 0}, steps, 4, 0, 8, 6, 1.0, 1.0);
    rnd_vol_geom *g = plan(&st);
    rnd_volume *v = NULL;
    tsr_err err = {0};
    assert_int_equal(rnd_volume_new(g, 0, 0, &v, &err), TSR_OK);
    for (size_t k = 0; k < 4; k++) {
        rnd_frame *fr = NULL;
        assert_int_equal(rnd_frame_alloc(8, 6, 1, RND_T_S16, &fr, &err), TSR_OK);
        for (size_t i = 0; i < 48; i++) {
            ((int16_t *)fr->data)[i] = (int16_t)(k * 100 + i);
        }
        assert_int_equal(rnd_volume_set_slice(v, k, fr, 1, 0, &err), TSR_OK);
        rnd_frame_free(fr);
    }
    rnd_plane q = {.origin = {0.5, 0.5, 1.5},
                   .row = {1, 0, 0},
                   .col = {0, 1, 0},
                   .spacing = 1,
                   .width = 7,
                   .height = 5};
    rnd_frame *f = NULL;
    assert_int_equal(rnd_mpr_render(v, &q, NULL, RND_INTERP_NEAREST, &f, &err), TSR_OK);
    assert_int_equal(f->type, RND_T_S16);
    for (uint32_t y = 0; y < 5; y++) {
        for (uint32_t x = 0; x < 7; x++) {
            assert_near(frame_value(f, x, y), 100 + y * 8 + x, 0);
        }
    }
    rnd_frame_free(f);
    rnd_volume_free(v);
    rnd_vol_geom_free(g);
}

/* A plane almost parallel to the slices (d changes by ~1e-4 mm per pixel) must still place every
 * pixel at its own d, not the row's first. */
static void
nearly_parallel_plane(void **state)
{
    (void)state;
    static const double steps[] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
    stack st = make_stack(X, Y, (double[]){0, 0, 0}, steps, 8, 0, 200, 8, 0.5, 0.5);
    rnd_vol_geom *g = plan(&st);
    static const linear f = {{0.01, 0.02, 40.0}, 1.0}; /* steep along z */
    rnd_volume *v = linear_volume(g, &f);
    tsr_err err = {0};
    rnd_plane p;
    double pt[3] = {50, 2, 1.3}, r[3] = {1, 0, 2e-4}, c[3] = {0, 1, 0};
    assert_int_equal(rnd_plane_oblique(g, pt, r, c, 0.5, &p, &err), TSR_OK);
    counts n = check_plane(v, &f, &p, "nearly parallel");
    assert_true(n.inside > 1000);
    rnd_volume_free(v);
    rnd_vol_geom_free(g);
}

/* A rectangle (tile, band) is bit for bit the same part of the whole plane, thin and slab. */
static void
rect_equals_crop(void **state)
{
    (void)state;
    double steps[] = {1, 2.5, 0.7, 3, 1, 1, 2};
    stack st = make_stack(X, Y, (double[]){0, 0, 0}, steps, 8, 0.2, 30, 26, 0.7, 0.7);
    rnd_vol_geom *g = plan(&st);
    static const linear f = {{0.31, -0.77, 1.9}, -3};
    rnd_volume *v = linear_volume(g, &f);
    rnd_plane p;
    tsr_err err = {0};
    double pt[3] = {10, 8, 6}, r[3] = {1, 0.4, 0.5}, c[3] = {-0.2, 0.3, 1};
    assert_int_equal(rnd_plane_oblique(g, pt, r, c, 0.61, &p, &err), TSR_OK);
    rnd_slab slabs[2] = {{0, RND_SLAB_MIP}, {2.2, RND_SLAB_AVERAGE}};
    static const uint32_t rects[][4] = {{0, 0, 1, 1}, {3, 5, 11, 7}, {17, 2, 9, 20}, {0, 9, 0, 4}};
    for (int s = 0; s < 2; s++) {
        rnd_frame *full = NULL;
        assert_int_equal(rnd_mpr_render(v, &p, &slabs[s], RND_INTERP_LINEAR, &full, &err), TSR_OK);
        for (size_t i = 0; i < sizeof rects / sizeof rects[0]; i++) {
            uint32_t x = rects[i][0], y = rects[i][1];
            uint32_t w = rects[i][2] ? rects[i][2] : p.width, h = rects[i][3];
            rnd_frame *part = NULL;
            assert_int_equal(
                rnd_mpr_render_rect(v, &p, &slabs[s], RND_INTERP_LINEAR, x, y, w, h, &part, &err),
                TSR_OK);
            for (uint32_t yy = 0; yy < h; yy++) {
                assert_memory_equal((const float *)part->data + (size_t)yy * w,
                                    (const float *)full->data + (size_t)(y + yy) * p.width + x,
                                    w * sizeof(float));
            }
            rnd_frame_free(part);
        }
        rnd_frame *part = NULL;
        assert_int_equal(rnd_mpr_render_rect(v, &p, &slabs[s], RND_INTERP_LINEAR, p.width - 2, 0, 3,
                                             1, &part, &err),
                         TSR_EINVAL);
        assert_null(part);
        rnd_frame_free(full);
    }
    rnd_volume_free(v);
    rnd_vol_geom_free(g);
}

/* ---------------------------------------------------------------- slabs */

/* Axis-aligned: 1 mm voxels and gaps, so a 4 mm slab at slice k samples slices k-2..k+2
 * exactly; MIP/MinIP/mean equal the brute force over those voxels. */
static void
slab_axis_aligned_brute_force(void **state)
{
    (void)state;
    double steps[10];
    for (int i = 0; i < 10; i++) {
        steps[i] = 1.0;
    }
    stack st = make_stack(X, Y, (double[]){3, 4, -5}, steps, 11, 0, 15, 12, 1.0, 1.0);
    rnd_vol_geom *g = plan(&st);
    rnd_volume *v = NULL;
    tsr_err err = {0};
    assert_int_equal(rnd_volume_new(g, 0, 0, &v, &err), TSR_OK);
    int16_t vox[11][12 * 15];
    uint32_t seed = 99;
    for (size_t k = 0; k < 11; k++) {
        rnd_frame *f = NULL;
        assert_int_equal(rnd_frame_alloc(15, 12, 1, RND_T_S16, &f, &err), TSR_OK);
        for (size_t i = 0; i < 12 * 15; i++) {
            seed = seed * 1664525u + 1013904223u;
            vox[k][i] = (int16_t)((int)(seed >> 21) - 1000);
            ((int16_t *)f->data)[i] = vox[k][i];
        }
        assert_int_equal(rnd_volume_set_slice(v, k, f, 1, 0, &err), TSR_OK);
        rnd_frame_free(f);
    }
    for (size_t k = 2; k <= 8; k += 3) {
        rnd_plane p = {.row = {1, 0, 0}, .col = {0, 1, 0}, .spacing = 1, .width = 15, .height = 12};
        rnd_vol_geom_slice(g, k, NULL, p.origin, NULL);
        for (int mode = 0; mode < 3; mode++) {
            for (int interp = 0; interp < 2; interp++) {
                rnd_slab slab = {4.0, (rnd_slab_mode)mode};
                rnd_frame *f = NULL;
                assert_int_equal(rnd_mpr_render(v, &p, &slab, (rnd_interp)interp, &f, &err),
                                 TSR_OK);
                assert_int_equal(f->type, rnd_mpr_output_type(v, &slab, (rnd_interp)interp));
                assert_int_equal(f->type,
                                 interp && mode != RND_SLAB_AVERAGE ? RND_T_S16 : RND_T_F32);
                for (size_t i = 0; i < 12 * 15; i++) {
                    double mx = -1e9, mn = 1e9, sum = 0;
                    for (size_t kk = k - 2; kk <= k + 2; kk++) {
                        mx = fmax(mx, vox[kk][i]);
                        mn = fmin(mn, vox[kk][i]);
                        sum += vox[kk][i];
                    }
                    double want = mode == RND_SLAB_MIP ? mx : mode == RND_SLAB_MINIP ? mn : sum / 5;
                    assert_near(frame_value(f, (uint32_t)(i % 15), (uint32_t)(i / 15)), want,
                                mode == RND_SLAB_AVERAGE ? 1e-3 : 0);
                }
                rnd_frame_free(f);
            }
        }
    }
    rnd_volume_free(v);
    rnd_vol_geom_free(g);
}

/* Oblique slab on a sheared, unevenly spaced linear volume: each pixel equals the max / min /
 * mean of the reference at the documented sample offsets, over the inside samples only. */
static void
slab_oblique_brute_force(void **state)
{
    (void)state;
    double steps[] = {1.5, 0.9, 2.2, 1.5, 1.5, 3, 1};
    double tilt = 12 * PI / 180, c[3] = {0, cos(tilt), -sin(tilt)};
    stack st = make_stack(X, c, (double[]){-5, -5, 0}, steps, 8, tan(tilt), 24, 20, 0.8, 0.8);
    rnd_vol_geom *g = plan(&st);
    static const linear f = {{-1.1, 0.4, 2.7}, 50};
    rnd_volume *v = linear_volume(g, &f);
    rnd_vol_summary s;
    rnd_vol_geom_summary(g, &s);
    float pad;
    rnd_volume_range(v, &pad, NULL);
    rnd_plane p;
    tsr_err err = {0};
    double pt[3] = {3, 2, 6}, r[3] = {1, 0.2, 0.6}, cc[3] = {0.1, 1, -0.3}, m[3];
    assert_int_equal(rnd_plane_oblique(g, pt, r, cc, 0.7, &p, &err), TSR_OK);
    cross3(p.row, p.col, m);
    double t = 3.3, finest = fmin(0.8, s.min_gap);
    uint32_t ns = (uint32_t)ceil(t / finest) + 1;
    for (int mode = 0; mode < 3; mode++) {
        rnd_slab slab = {t, (rnd_slab_mode)mode};
        rnd_frame *out = NULL;
        assert_int_equal(rnd_mpr_render(v, &p, &slab, RND_INTERP_LINEAR, &out, &err), TSR_OK);
        size_t partial = 0, full = 0, none = 0;
        for (uint32_t y = 0; y < p.height; y++) {
            for (uint32_t x = 0; x < p.width; x++) {
                double acc = 0, P[3], val;
                int n_in = 0, ambiguous = 0;
                for (uint32_t k = 0; k < ns; k++) {
                    double off = -t / 2 + k * (t / (ns - 1));
                    plane_at(&p, x, y, P);
                    for (int a = 0; a < 3; a++) {
                        P[a] += off * m[a];
                    }
                    int rr = reference(g, &f, P, &val);
                    if (rr < 0) {
                        ambiguous = 1;
                        break;
                    }
                    if (rr == 0) {
                        continue;
                    }
                    acc = n_in == 0                ? val
                          : mode == RND_SLAB_MIP   ? fmax(acc, val)
                          : mode == RND_SLAB_MINIP ? fmin(acc, val)
                                                   : acc + val;
                    n_in++;
                }
                if (ambiguous) {
                    continue;
                }
                float got = frame_value(out, x, y);
                if (n_in == 0) {
                    assert_near(got, pad, 0);
                    none++;
                    continue;
                }
                double want = mode == RND_SLAB_AVERAGE ? acc / n_in : acc;
                if (fabs(got - want) > 2e-3 + 1e-6 * fabs(want)) {
                    fail_msg("slab mode %d pixel (%u, %u) = %.6f, expected %.6f (%d samples in)",
                             mode, x, y, got, want, n_in);
                }
                n_in == (int)ns ? full++ : partial++;
            }
        }
        assert_true(full > 100);
        assert_true(partial > 10);
        assert_true(none > 10);
        rnd_frame_free(out);
    }
    rnd_volume_free(v);
    rnd_vol_geom_free(g);
}

/* ---------------------------------------------------------------- planner */

static rnd_vol_slice
axial_slice(uint32_t id, double z)
{
    rnd_vol_slice s = {.rows = 8,
                       .columns = 10,
                       .pixel_spacing = {0.5, 0.5},
                       .orientation = {1, 0, 0, 0, 1, 0},
                       .position = {-2, -2, z},
                       .id = id};
    return s;
}

static void
plan_sorts_shuffled_input(void **state)
{
    (void)state;
    static const double z[] = {5, -3, 12, 0, 7.5, 1, -10, 3};
    rnd_vol_slice s[8];
    for (uint32_t i = 0; i < 8; i++) {
        s[i] = axial_slice(100 + i, z[i]);
    }
    rnd_vol_geom *g = NULL;
    assert_int_equal(rnd_volume_plan(s, 8, &g, NULL), TSR_OK);
    rnd_vol_summary sum;
    rnd_vol_geom_summary(g, &sum);
    assert_int_equal(sum.slices, 8);
    assert_int_equal(sum.dropped, 0);
    assert_int_equal(sum.duplicates, 0);
    static const uint32_t want_ids[] = {106, 101, 103, 105, 107, 100, 104, 102};
    double prev = -INFINITY;
    for (size_t k = 0; k < 8; k++) {
        uint32_t id;
        double o[3], d;
        assert_int_equal(rnd_vol_geom_slice(g, k, &id, o, &d), TSR_OK);
        assert_int_equal(id, want_ids[k]);
        assert_near(o[2], z[id - 100], 0);
        assert_near(d, o[2], 1e-12);
        assert_true(d > prev);
        prev = d;
    }
    assert_int_equal(rnd_vol_geom_slice(g, 8, NULL, NULL, NULL), TSR_ENOTFOUND);
    assert_false(sum.uniform);
    assert_false(sum.sheared);
    assert_near(sum.min_gap, 1.0, 1e-12);
    assert_near(sum.max_gap, 7.0, 1e-12);
    assert_near(sum.tilt_deg, 0, 1e-9);
    /* footprint: x from -2 - 0.25 to -2 + 9.5 * 0.5, z from -10 to 12 */
    assert_near(sum.extent_min[0], -2.25, 1e-12);
    assert_near(sum.extent_max[0], 2.75, 1e-12);
    assert_near(sum.extent_max[1], -2 + 7.5 * 0.5, 1e-12);
    assert_near(sum.extent_min[2], -10, 1e-12);
    assert_near(sum.extent_max[2], 12, 1e-12);
    rnd_vol_geom_free(g);
}

static void
plan_uniform_stack(void **state)
{
    (void)state;
    rnd_vol_slice s[6];
    for (uint32_t i = 0; i < 6; i++) {
        s[i] = axial_slice(i, 2.5 * (5 - i));
    }
    rnd_vol_geom *g = NULL;
    assert_int_equal(rnd_volume_plan(s, 6, &g, NULL), TSR_OK);
    rnd_vol_summary sum;
    rnd_vol_geom_summary(g, &sum);
    assert_true(sum.uniform);
    assert_false(sum.sheared);
    assert_near(sum.min_gap, 2.5, 1e-12);
    assert_near(sum.max_gap, 2.5, 1e-12);
    assert_near(sum.normal[2], 1, 0);
    rnd_vol_geom_free(g);
}

/* A localizer (other orientation), a slice of another size, one of another spacing, and one with
 * broken cosines are left out and counted. */
static void
plan_drops_other_slices(void **state)
{
    (void)state;
    rnd_vol_slice s[9];
    for (uint32_t i = 0; i < 5; i++) {
        s[i] = axial_slice(i, i * 2.0);
    }
    s[5] = axial_slice(5, 20);
    memcpy(s[5].orientation, (double[]){0, 1, 0, 0, 0, -1}, sizeof s[5].orientation);
    s[6] = axial_slice(6, 22);
    s[6].columns = 12;
    s[7] = axial_slice(7, 24);
    s[7].pixel_spacing[1] = 0.6;
    s[8] = axial_slice(8, 26);
    s[8].orientation[0] = 0.5;
    rnd_vol_geom *g = NULL;
    assert_int_equal(rnd_volume_plan(s, 9, &g, NULL), TSR_OK);
    rnd_vol_summary sum;
    rnd_vol_geom_summary(g, &sum);
    assert_int_equal(sum.slices, 5);
    assert_int_equal(sum.dropped, 4);
    assert_int_equal(sum.columns, 10);
    for (size_t k = 0; k < 5; k++) {
        uint32_t id;
        rnd_vol_geom_slice(g, k, &id, NULL, NULL);
        assert_int_equal(id, k);
    }
    assert_true(sum.uniform);
    rnd_vol_geom_free(g);
}

/* The largest group wins; on a tie, the group seen first. */
static void
plan_largest_group(void **state)
{
    (void)state;
    rnd_vol_slice s[7];
    for (uint32_t i = 0; i < 3; i++) {
        s[i] = axial_slice(i, i);
        s[3 + i] = axial_slice(3 + i, i);
        s[3 + i].position[0] = i;
        memcpy(s[3 + i].orientation, (double[]){0, 1, 0, 0, 0, -1}, sizeof s[i].orientation);
    }
    rnd_vol_geom *g = NULL;
    assert_int_equal(rnd_volume_plan(s, 6, &g, NULL), TSR_OK);
    rnd_vol_summary sum;
    rnd_vol_geom_summary(g, &sum);
    assert_near(sum.normal[2], 1, 0); /* the axial group came first */
    assert_int_equal(sum.dropped, 3);
    rnd_vol_geom_free(g);
    s[6] = s[5];
    s[6].position[0] = 9;
    s[6].id = 6;
    assert_int_equal(rnd_volume_plan(s, 7, &g, NULL), TSR_OK);
    rnd_vol_geom_summary(g, &sum);
    assert_near(sum.normal[0], -1, 1e-15); /* now the sagittal group is larger */
    assert_int_equal(sum.slices, 4);
    rnd_vol_geom_free(g);
}

/* Slices at the same position: the first in input order is kept, the others counted. */
static void
plan_duplicates_keep_first(void **state)
{
    (void)state;
    rnd_vol_slice s[6] = {axial_slice(10, 0),      axial_slice(11, 1), axial_slice(12, 2),
                          axial_slice(13, 1.0004), axial_slice(14, 3), axial_slice(15, 0)};
    rnd_vol_geom *g = NULL;
    assert_int_equal(rnd_volume_plan(s, 6, &g, NULL), TSR_OK);
    rnd_vol_summary sum;
    rnd_vol_geom_summary(g, &sum);
    assert_int_equal(sum.slices, 4);
    assert_int_equal(sum.duplicates, 2);
    assert_int_equal(sum.dropped, 0);
    static const uint32_t want[] = {10, 11, 12, 14};
    for (size_t k = 0; k < 4; k++) {
        uint32_t id;
        double d;
        rnd_vol_geom_slice(g, k, &id, NULL, &d);
        assert_int_equal(id, want[k]);
        assert_near(d, k == 3 ? 3 : (double)k, 0);
    }
    rnd_vol_geom_free(g);
    /* all at one position: nothing to reformat */
    rnd_vol_slice same[3] = {axial_slice(0, 4), axial_slice(1, 4), axial_slice(2, 4.0001)};
    tsr_err err = {0};
    assert_int_equal(rnd_volume_plan(same, 3, &g, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "distinct"));
}

static void
plan_refusals(void **state)
{
    (void)state;
    rnd_vol_geom *g = NULL;
    tsr_err err = {0};
    rnd_vol_slice one = axial_slice(0, 0);
    assert_int_equal(rnd_volume_plan(&one, 1, &g, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "at least 2"));
    assert_int_equal(rnd_volume_plan(&one, 1, &g, NULL), TSR_EINVAL);
    assert_int_equal(rnd_volume_plan(NULL, 0, &g, &err), TSR_EINVAL);
    assert_int_equal(rnd_volume_plan(NULL, 3, &g, &err), TSR_EINVAL);

    rnd_vol_slice s[3] = {axial_slice(0, 0), axial_slice(1, 1), axial_slice(2, 2)};
    for (int i = 0; i < 3; i++) {
        memset(s[i].orientation, 0, sizeof s[i].orientation);
    }
    assert_int_equal(rnd_volume_plan(s, 3, &g, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "orientation"));
    assert_non_null(strstr(err.msg, "unit"));
    for (int i = 0; i < 3; i++) {
        s[i] = axial_slice((uint32_t)i, i);
        s[i].orientation[4] = 0.7071;
        s[i].orientation[5] = 0.7071;
        s[i].orientation[1] = 0.7071; /* unit, but not orthogonal to the column cosines */
        s[i].orientation[0] = 0.7071;
    }
    assert_int_equal(rnd_volume_plan(s, 3, &g, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "orthogonal"));
    for (int i = 0; i < 3; i++) {
        s[i] = axial_slice((uint32_t)i, i);
        s[i].pixel_spacing[0] = 0;
    }
    assert_int_equal(rnd_volume_plan(s, 3, &g, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "pixel spacing"));
    s[0] = axial_slice(0, 0);
    s[1].position[2] = NAN;
    s[1].pixel_spacing[0] = 0.5;
    assert_int_equal(rnd_volume_plan(s, 2, &g, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "share"));
    assert_null(g);
}

/* A GE-style tilted stack: origins step along z only, cosines tilted by 18.5 degrees. */
static void
plan_detects_gantry_tilt(void **state)
{
    (void)state;
    rnd_vol_slice s[10];
    for (uint32_t i = 0; i < 10; i++) {
        s[i] = (rnd_vol_slice){.rows = 512,
                               .columns = 512,
                               .pixel_spacing = {0.488, 0.488},
                               .orientation = {1, 0, 0, 0, 0.9483237, -0.3173047},
                               .position = {-125, -123.54, 5.836 + 4.22 * i},
                               .id = i};
    }
    s[7].position[2] += 3.1; /* and uneven */
    rnd_vol_geom *g = NULL;
    assert_int_equal(rnd_volume_plan(s, 10, &g, NULL), TSR_OK);
    rnd_vol_summary sum;
    rnd_vol_geom_summary(g, &sum);
    assert_true(sum.sheared);
    assert_false(sum.uniform);
    assert_true(fabs(sum.tilt_deg - 18.5) < 0.01);
    assert_near(sum.min_gap, (4.22 - 3.1) * 0.9483237, 1e-5);
    rnd_vol_geom_free(g);
}

/* ---------------------------------------------------------------- volumes */

static void
volume_refusals(void **state)
{
    (void)state;
    rnd_vol_slice s[3] = {axial_slice(0, 0), axial_slice(1, 1), axial_slice(2, 2)};
    rnd_vol_geom *g = NULL;
    assert_int_equal(rnd_volume_plan(s, 3, &g, NULL), TSR_OK);
    rnd_volume *v = NULL;
    tsr_err err = {0};
    assert_int_equal(rnd_volume_new(NULL, 0, 0, &v, &err), TSR_EINVAL);
    assert_int_equal(rnd_volume_new(g, 0, 3 * 80 * 2 - 1, &v, &err), TSR_ELIMIT);
    assert_non_null(strstr(err.msg, "exceeds"));
    assert_int_equal(rnd_volume_new(g, 0, 3 * 80 * 2 - 1, &v, NULL), TSR_ELIMIT);
    assert_null(v);
    assert_int_equal(rnd_volume_new(g, 0, 3 * 80 * 2, &v, &err), TSR_OK);
    assert_true(rnd_volume_bytes(v) >= 3 * 80 * 2);

    rnd_frame *f = NULL, *rgb = NULL, *small = NULL;
    assert_int_equal(rnd_frame_alloc(10, 8, 1, RND_T_U16, &f, NULL), TSR_OK);
    assert_int_equal(rnd_frame_alloc(10, 8, 3, RND_T_U8, &rgb, NULL), TSR_OK);
    assert_int_equal(rnd_frame_alloc(8, 10, 1, RND_T_U16, &small, NULL), TSR_OK);
    assert_int_equal(rnd_volume_set_slice(v, 3, f, 1, 0, &err), TSR_ENOTFOUND);
    assert_int_equal(rnd_volume_set_slice(v, 0, rgb, 1, 0, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "colour"));
    assert_int_equal(rnd_volume_set_slice(v, 0, small, 1, 0, &err), TSR_EINVAL);
    assert_int_equal(rnd_volume_set_slice(v, 0, f, NAN, 0, NULL), TSR_EINVAL);
    ((uint16_t *)f->data)[17] = 40000; /* beyond int16 */
    assert_int_equal(rnd_volume_set_slice(v, 0, f, 1, 0, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "(7, 1)"));
    ((uint16_t *)f->data)[17] = 3; /* 1.5 is no integer */
    assert_int_equal(rnd_volume_set_slice(v, 0, f, 0.5, 0, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "1.5"));
    ((uint16_t *)f->data)[17] = 4;
    assert_int_equal(rnd_volume_set_slice(v, 0, f, 0.5, 0, &err), TSR_OK);
    assert_int_equal(rnd_volume_set_slice(v, 1, f, 1, -7, &err), TSR_OK);
    assert_false(rnd_volume_complete(v));
    float lo = 123, hi = 456;
    assert_int_equal(rnd_volume_range(v, &lo, &hi), TSR_EINVAL);
    assert_near(lo, 123, 0);

    rnd_plane p = {.origin = {-2, -2, 0},
                   .row = {1, 0, 0},
                   .col = {0, 1, 0},
                   .spacing = 0.5,
                   .width = 10,
                   .height = 8};
    rnd_frame *out = NULL;
    assert_int_equal(rnd_mpr_render(v, &p, NULL, RND_INTERP_LINEAR, &out, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "not completely filled"));
    assert_int_equal(rnd_volume_set_slice(v, 2, f, 1, 0, &err), TSR_OK);
    assert_true(rnd_volume_complete(v));
    assert_int_equal(rnd_volume_range(v, &lo, &hi), TSR_OK);
    assert_near(lo, -7, 0);
    assert_near(hi, 4, 0);
    assert_int_equal(rnd_mpr_render(v, &p, NULL, RND_INTERP_LINEAR, &out, &err), TSR_OK);
    rnd_frame_free(out);

    rnd_frame_free(f);
    rnd_frame_free(rgb);
    rnd_frame_free(small);
    rnd_volume_free(v);
    rnd_volume_free(NULL);
    rnd_vol_geom_free(g);
    rnd_vol_geom_free(NULL);
}

static void
volume_fits_int16(void **state)
{
    (void)state;
    rnd_info info = {0};
    info.bits_stored = 12;
    assert_true(rnd_volume_fits_int16(&info, 1, -1024));
    assert_false(rnd_volume_fits_int16(&info, 1, -1024.5));
    assert_false(rnd_volume_fits_int16(&info, 0.5, 0));
    assert_true(rnd_volume_fits_int16(&info, 8, 0)); /* 4095 * 8 = 32760 */
    assert_false(rnd_volume_fits_int16(&info, 9, 0));
    info.bits_stored = 16;
    assert_false(rnd_volume_fits_int16(&info, 1, 0)); /* 65535 */
    info.pixel_representation = 1;
    assert_true(rnd_volume_fits_int16(&info, 1, 0));
    assert_false(rnd_volume_fits_int16(&info, 1, -1024));
    info.float_pixels = 32;
    assert_false(rnd_volume_fits_int16(&info, 1, 0));
    assert_false(rnd_volume_fits_int16(NULL, 1, 0));
}

/* ---------------------------------------------------------------- bad planes */

static void
bad_planes(void **state)
{
    (void)state;
    rnd_vol_geom *g;
    rnd_volume *v = noise_volume(&g);
    rnd_plane p, keep;
    tsr_err err = {0};
    double pt[3] = {0, 0, 104}, zero[3] = {0, 0, 0}, x[3] = {1, 0, 0}, y[3] = {0, 1, 0};
    double x2[3] = {2, 1e-5, 0}, nan3[3] = {NAN, 0, 0}, inf3[3] = {0, INFINITY, 0};
    memset(&keep, 0x5a, sizeof keep);
    p = keep;

    assert_int_equal(rnd_plane_oblique(g, pt, zero, y, 0, &p, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "zero"));
    assert_int_equal(rnd_plane_oblique(g, pt, x, x2, 0, &p, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "parallel"));
    assert_int_equal(rnd_plane_oblique(g, pt, nan3, y, 0, &p, &err), TSR_EINVAL);
    assert_int_equal(rnd_plane_oblique(g, nan3, x, y, 0, &p, NULL), TSR_EINVAL);
    assert_int_equal(rnd_plane_oblique(g, pt, x, inf3, 0, &p, &err), TSR_EINVAL);
    assert_int_equal(rnd_plane_oblique(g, pt, x, y, NAN, &p, &err), TSR_EINVAL);
    assert_int_equal(rnd_plane_oblique(g, pt, x, NULL, 0, &p, &err), TSR_EINVAL);
    assert_int_equal(rnd_plane_from_normal(g, pt, zero, y, 0, &p, &err), TSR_EINVAL);
    assert_int_equal(rnd_plane_from_normal(g, pt, x, x2, 0, &p, &err), TSR_EINVAL);
    assert_int_equal(rnd_plane_standard(g, RND_AXIS_AXIAL, NAN, 0, &p, &err), TSR_EINVAL);
    assert_int_equal(rnd_plane_standard(g, (rnd_plane_axis)7, 100, 0, &p, &err), TSR_EINVAL);
    assert_int_equal(rnd_plane_standard(NULL, RND_AXIS_AXIAL, 100, 0, &p, &err), TSR_EINVAL);
    /* the stack spans z 100 .. 109.6 */
    assert_int_equal(rnd_plane_standard(g, RND_AXIS_AXIAL, 120, 0, &p, &err), TSR_ENOTFOUND);
    assert_non_null(strstr(err.msg, "plane outside the volume"));
    assert_int_equal(rnd_plane_standard(g, RND_AXIS_SAGITTAL, -50, 0, &p, NULL), TSR_ENOTFOUND);
    double far[3] = {0, 0, 300};
    assert_int_equal(rnd_plane_oblique(g, far, x, y, 0, &p, &err), TSR_ENOTFOUND);
    assert_int_equal(rnd_plane_standard(g, RND_AXIS_AXIAL, 104, 0.001, &p, &err), TSR_ELIMIT);
    assert_memory_equal(&p, &keep, sizeof p); /* untouched by every failure */

    /* the first and last slices are inside, exactly */
    assert_int_equal(rnd_plane_standard(g, RND_AXIS_AXIAL, 100, 0, &p, &err), TSR_OK);
    assert_int_equal(rnd_plane_standard(g, RND_AXIS_AXIAL, 109.6, 0, &p, &err), TSR_OK);

    /* render-time checks */
    assert_int_equal(rnd_plane_standard(g, RND_AXIS_AXIAL, 104, 0, &p, &err), TSR_OK);
    rnd_frame *out = NULL;
    rnd_slab slab = {-1, RND_SLAB_MIP};
    assert_int_equal(rnd_mpr_render(v, &p, &slab, RND_INTERP_LINEAR, &out, &err), TSR_EINVAL);
    slab.thickness_mm = NAN;
    assert_int_equal(rnd_mpr_render(v, &p, &slab, RND_INTERP_LINEAR, &out, &err), TSR_EINVAL);
    slab.thickness_mm = 9.5; /* the stack is 9.6 mm deep along z */
    assert_int_equal(rnd_mpr_render(v, &p, &slab, RND_INTERP_LINEAR, &out, &err), TSR_OK);
    rnd_frame_free(out);
    out = NULL;
    slab.thickness_mm = 9.7;
    assert_int_equal(rnd_mpr_render(v, &p, &slab, RND_INTERP_LINEAR, &out, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "slab too thick"));
    slab.thickness_mm = 2;
    slab.mode = (rnd_slab_mode)9;
    assert_int_equal(rnd_mpr_render(v, &p, &slab, RND_INTERP_LINEAR, &out, &err), TSR_EINVAL);
    assert_int_equal(rnd_mpr_render(v, &p, NULL, (rnd_interp)5, &out, &err), TSR_EINVAL);
    rnd_plane q = p;
    q.origin[2] = 200;
    assert_int_equal(rnd_mpr_render(v, &q, NULL, RND_INTERP_LINEAR, &out, &err), TSR_ENOTFOUND);
    assert_non_null(strstr(err.msg, "plane outside the volume"));
    slab = (rnd_slab){8, RND_SLAB_MIP};
    q.origin[2] = 109.6 + 3.9; /* the slab still reaches the last slice */
    assert_int_equal(rnd_mpr_render(v, &q, &slab, RND_INTERP_LINEAR, &out, &err), TSR_OK);
    rnd_frame_free(out);
    out = NULL;
    q = p;
    q.row[0] = 2;
    assert_int_equal(rnd_mpr_render(v, &q, NULL, RND_INTERP_LINEAR, &out, &err), TSR_EINVAL);
    q = p;
    q.col[0] = 0.5;
    assert_int_equal(rnd_mpr_render(v, &q, NULL, RND_INTERP_LINEAR, &out, NULL), TSR_EINVAL);
    q = p;
    q.spacing = 0;
    assert_int_equal(rnd_mpr_render(v, &q, NULL, RND_INTERP_LINEAR, &out, &err), TSR_EINVAL);
    q = p;
    q.origin[1] = NAN;
    assert_int_equal(rnd_mpr_render(v, &q, NULL, RND_INTERP_LINEAR, &out, &err), TSR_EINVAL);
    q = p;
    q.width = 0;
    assert_int_equal(rnd_mpr_render(v, &q, NULL, RND_INTERP_LINEAR, &out, &err), TSR_EINVAL);
    q.width = RND_MPR_MAX_SIDE + 1;
    assert_int_equal(rnd_mpr_render(v, &q, NULL, RND_INTERP_LINEAR, &out, &err), TSR_ELIMIT);
    assert_int_equal(rnd_mpr_render(v, NULL, NULL, RND_INTERP_LINEAR, &out, &err), TSR_EINVAL);
    assert_int_equal(rnd_mpr_render(NULL, &p, NULL, RND_INTERP_LINEAR, &out, &err), TSR_EINVAL);
    assert_null(out);
    rnd_volume_free(v);
    rnd_vol_geom_free(g);
}

/* A plane that only partly meets the volume: inside pixels are values, the rest exactly the
 * padding (the volume's minimum), never garbage, for both interpolations. */
static void
outside_is_padding(void **state)
{
    (void)state;
    rnd_vol_geom *g;
    rnd_volume *v = noise_volume(&g);
    float lo;
    assert_int_equal(rnd_volume_range(v, &lo, NULL), TSR_OK);
    int16_t mn = INT16_MAX;
    for (size_t k = 0; k < 13; k++) {
        for (size_t i = 0; i < 21 * 17; i++) {
            int16_t x = ((const int16_t *)rnd_volume_voxels(v, k))[i];
            mn = x < mn ? x : mn;
        }
    }
    assert_near(lo, mn, 0);
    /* shifted by 30 pixels to the left: columns 0..29 lie left of the volume */
    rnd_plane p = {.row = {1, 0, 0}, .col = {0, 1, 0}, .spacing = 0.8, .width = 60, .height = 17};
    rnd_vol_geom_slice(g, 4, NULL, p.origin, NULL);
    p.origin[0] -= 30 * 0.8;
    for (int interp = 0; interp < 2; interp++) {
        rnd_frame *f = NULL;
        assert_int_equal(rnd_mpr_render(v, &p, NULL, (rnd_interp)interp, &f, NULL), TSR_OK);
        for (uint32_t y = 0; y < 17; y++) {
            for (uint32_t x = 0; x < 60; x++) {
                float want = x < 30 || x >= 51 ? lo : voxel(v, 4, x - 30, y);
                assert_near(frame_value(f, x, y), want, 0);
            }
        }
        rnd_frame_free(f);
    }
    rnd_volume_free(v);
    rnd_vol_geom_free(g);
}

TSR_TEST_MAIN(cmocka_unit_test(linear_axis_aligned), cmocka_unit_test(linear_oblique_cosines),
              cmocka_unit_test(linear_sheared), cmocka_unit_test(linear_unequal_spacing),
              cmocka_unit_test(linear_everything), cmocka_unit_test(axial_at_slice_equals_slice),
              cmocka_unit_test(standard_planes_hit_voxels),
              cmocka_unit_test(sagittal_through_column), cmocka_unit_test(nearest_ties_take_lower),
              cmocka_unit_test(nearly_parallel_plane), cmocka_unit_test(rect_equals_crop),
              cmocka_unit_test(slab_axis_aligned_brute_force),
              cmocka_unit_test(slab_oblique_brute_force),
              cmocka_unit_test(plan_sorts_shuffled_input), cmocka_unit_test(plan_uniform_stack),
              cmocka_unit_test(plan_drops_other_slices), cmocka_unit_test(plan_largest_group),
              cmocka_unit_test(plan_duplicates_keep_first), cmocka_unit_test(plan_refusals),
              cmocka_unit_test(plan_detects_gantry_tilt), cmocka_unit_test(volume_refusals),
              cmocka_unit_test(volume_fits_int16), cmocka_unit_test(bad_planes),
              cmocka_unit_test(outside_is_padding))
