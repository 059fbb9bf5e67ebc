/* SPDX-License-Identifier: MIT */
/* fuzz_mpr.c: the MPR plane parameters of .../mpr/{rendered,geometry,tiles}?{plane} on hostile
 * query strings: http__mpr_parse (plane, position, point, row, col, normal, up, spacing, slab,
 * interpolation), then http__mpr_plane through a small gantry-tilted volume (13 slices of 21x17,
 * unequal gaps), then rnd_mpr_render of planes up to 256x256. Checked against http_internal.h
 * and rnd.h: a parsed request is consistent (oblique has row+col or normal+up, standard planes
 * none of them; finite numbers; slab thickness >= 0), a plane is finite, orthonormal and of
 * 1..RND_MPR_MAX_SIDE pixels a side, and a render has the plane's size. */
#define _GNU_SOURCE
#include "http_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

static rnd_vol_geom *g_geom;
static rnd_volume *g_vol;

static void
make_volume(void)
{
    enum { N = 13, W = 21, H = 17 };
    rnd_vol_slice s[N];
    double d = 0;
    for (int k = 0; k < N; k++) {
        memset(&s[k], 0, sizeof s[k]);
        s[k].rows = H;
        s[k].columns = W;
        s[k].pixel_spacing[0] = 0.8;
        s[k].pixel_spacing[1] = 0.7;
        /* rows along x, columns along y tilted 10 degrees: a sheared stack */
        double c = cos(10 * M_PI / 180), sn = sin(10 * M_PI / 180);
        double o[6] = {1, 0, 0, 0, c, -sn};
        memcpy(s[k].orientation, o, sizeof o);
        s[k].position[0] = -8;
        s[k].position[1] = -6 + d * sn;
        s[k].position[2] = 100 + d * c;
        d += k % 3 == 2 ? 1.6 : 0.9;
        s[k].id = (uint32_t)k;
    }
    tsr_err err = {0};
    CHECK(rnd_volume_plan(s, N, &g_geom, &err) == TSR_OK);
    CHECK(rnd_volume_new(g_geom, 0, 0, &g_vol, &err) == TSR_OK);
    uint32_t seed = 7;
    for (size_t k = 0; k < N; k++) {
        rnd_frame *f = NULL;
        CHECK(rnd_frame_alloc(W, H, 1, RND_T_U16, &f, &err) == TSR_OK);
        uint16_t *px = f->data;
        for (size_t i = 0; i < (size_t)W * H; i++) {
            seed = seed * 1664525u + 1013904223u;
            px[i] = (uint16_t)(seed >> 20);
        }
        CHECK(rnd_volume_set_slice(g_vol, k, f, 1.0, -1024.0, &err) == TSR_OK);
        rnd_frame_free(f);
    }
}

static int
unit(const double v[3])
{
    return fabs(v[0] * v[0] + v[1] * v[1] + v[2] * v[2] - 1.0) < 1e-3;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_vol) {
        make_volume();
    }
    if (size > 4096) {
        return 0;
    }
    char *q = malloc(size + 1);
    CHECK(q);
    memcpy(q, data, size);
    q[size] = '\0';
    http_server srv;
    memset(&srv, 0, sizeof srv);
    http_req r;
    memset(&r, 0, sizeof r);
    r.srv = &srv;
    r.method = "GET";
    r.query = q;
    http_mpr_params m;
    if (http__mpr_parse(&r, &m) == 0) {
        CHECK(m.axis >= -1 && m.axis <= 2);
        if (m.axis < 0) {
            CHECK((m.has_row && m.has_col && !m.has_normal && !m.has_up) ||
                  (m.has_normal && m.has_up && !m.has_row && !m.has_col));
            CHECK(!m.has_position);
        } else {
            CHECK(!m.has_row && !m.has_col && !m.has_normal && !m.has_up && !m.has_point);
        }
        CHECK(isfinite(m.position) && isfinite(m.spacing) && m.spacing >= 0);
        CHECK(isfinite(m.slab.thickness_mm) && m.slab.thickness_mm >= 0);
        for (int i = 0; i < 3; i++) {
            CHECK(isfinite(m.point[i]) && isfinite(m.row[i]) && isfinite(m.col[i]) &&
                  isfinite(m.normal[i]) && isfinite(m.up[i]));
        }
        rnd_plane p;
        tsr_err err = {0};
        if (http__mpr_plane(g_geom, &m, &p, &err) == TSR_OK) {
            CHECK(p.width >= 1 && p.width <= RND_MPR_MAX_SIDE);
            CHECK(p.height >= 1 && p.height <= RND_MPR_MAX_SIDE);
            CHECK(isfinite(p.spacing) && p.spacing > 0);
            CHECK(unit(p.row) && unit(p.col));
            CHECK(fabs(p.row[0] * p.col[0] + p.row[1] * p.col[1] + p.row[2] * p.col[2]) < 1e-3);
            if ((uint64_t)p.width * p.height <= 256 * 256) {
                rnd_frame *f = NULL;
                if (rnd_mpr_render(g_vol, &p, &m.slab, m.interp, &f, &err) == TSR_OK) {
                    CHECK(f->width == p.width && f->height == p.height && f->samples == 1);
                    rnd_frame_free(f);
                }
            }
        }
    }
    free(q);
    return 0;
}
