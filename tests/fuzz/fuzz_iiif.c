/* SPDX-License-Identifier: MIT */
/* fuzz_iiif.c: the IIIF Image API grammar and arithmetic (http/iiif.h) on hostile paths:
 * iiif_parse, then for image requests iiif_resolve against a few image sizes (square, a
 * mammogram, one pixel, a thin strip) with the default and with tight limits, iiif_plan_tile,
 * iiif_canonical; for info requests iiif_info_json_limits. Checked against iiif.h: a resolved
 * region lies inside the image, output sides are 1..RND_RESAMPLE_MAX_SIDE and within the
 * limits, a matched tile is a real tile of the pyramid, the canonical form re-parses to the
 * same plan, and an identifier is non-empty without control characters. */
#include "iiif.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

static const uint32_t k_sizes[][2] = {{512, 512}, {3064, 4664}, {1, 1}, {7, 300}, {70000, 3}};

static void
check_plan(const iiif_plan *p, uint32_t w0, uint32_t h0, const iiif_limits *lim)
{
    CHECK(p->w >= 1 && p->h >= 1);
    CHECK(p->x < w0 && p->y < h0 && p->w <= w0 - p->x && p->h <= h0 - p->y);
    CHECK(p->out_w >= 1 && p->out_w <= RND_RESAMPLE_MAX_SIDE);
    CHECK(p->out_h >= 1 && p->out_h <= RND_RESAMPLE_MAX_SIDE);
    if (lim->max_width) {
        CHECK(p->out_w <= lim->max_width);
        CHECK(p->out_h <= (lim->max_height ? lim->max_height : lim->max_width));
    }
    if (lim->max_area) {
        CHECK((uint64_t)p->out_w * p->out_h <= lim->max_area);
    }
    int level;
    uint32_t col, row;
    if (iiif_plan_tile(p, w0, h0, 256, &level, &col, &row)) {
        uint32_t x, y, w, h;
        CHECK(rnd_tile_rect(w0, h0, 256, level, col, row, &x, &y, &w, &h) == TSR_OK);
        CHECK(w == p->out_w && h == p->out_h);
    }
    char canon[256];
    if (iiif_canonical(p, w0, h0, canon, sizeof canon) == TSR_OK) {
        char path[300];
        snprintf(path, sizeof path, "id/%s", canon);
        iiif_req r2;
        iiif_plan p2;
        CHECK(iiif_parse(path, &r2, NULL) == TSR_OK);
        CHECK(iiif_resolve(&r2, w0, h0, lim, &p2, NULL) == TSR_OK);
        CHECK(p2.x == p->x && p2.y == p->y && p2.w == p->w && p2.h == p->h);
        CHECK(p2.out_w == p->out_w && p2.out_h == p->out_h && p2.mirror == p->mirror);
        CHECK(p2.quality == p->quality && p2.format == p->format);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    CHECK(s);
    memcpy(s, data, size);
    s[size] = '\0';
    iiif_req q;
    tsr_err err = {0};
    if (iiif_parse(s, &q, &err) != TSR_OK) {
        CHECK(err.msg[0]);
        free(s);
        return 0;
    }
    const char *nul = memchr(q.identifier, '\0', sizeof q.identifier);
    CHECK(nul != NULL);
    size_t idl = (size_t)(nul - q.identifier);
    CHECK(idl > 0);
    for (size_t i = 0; i < idl; i++) {
        CHECK((unsigned char)q.identifier[i] >= 0x20 && q.identifier[i] != 0x7f);
    }
    iiif_limits lims[2];
    iiif_limits_default(&lims[0]);
    lims[1] = (iiif_limits){300, 0, 50000};
    for (size_t i = 0; i < sizeof k_sizes / sizeof k_sizes[0]; i++) {
        uint32_t w0 = k_sizes[i][0], h0 = k_sizes[i][1];
        if (q.kind == IIIF_REQ_IMAGE) {
            for (int l = 0; l < 2; l++) {
                iiif_plan p;
                tsr_err rerr = {0};
                if (iiif_resolve(&q, w0, h0, &lims[l], &p, &rerr) == TSR_OK) {
                    check_plan(&p, w0, h0, &lims[l]);
                } else {
                    CHECK(rerr.msg[0]);
                }
            }
        } else if (i == 0) {
            char *json = NULL;
            int levels = rnd_level_count(w0, h0, 256);
            CHECK(levels >= 1);
            if (iiif_info_json_limits("http://h/iiif/3/x", w0, h0, 256, levels, &lims[1],
                                      &json) == TSR_OK) {
                CHECK(json && json[0] == '{');
                iiif_free(json);
            }
        }
    }
    free(s);
    return 0;
}
