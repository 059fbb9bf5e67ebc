/* SPDX-License-Identifier: MIT */
/* fuzz_http_params.c: the request parameters of the imaging resources, through the HTTP layer's
 * own functions (http/http_internal.h):
 *  - http__render_params: the query string of .../rendered and .../thumbnail (window,
 *    viewport, quality, annotation, percent-decoding by http__param, the Warning for unknown
 *    parameters);
 *  - http__parse_window and rnd_viewport_parse directly on the raw bytes;
 *  - http__tile_addr_parse: tiles/{window}/{quality}/{level}/{col}/{row}.{jpg|png}.
 * The handlers answer a 400 through CivetWeb; here the request has no connection (CivetWeb's
 * response functions do nothing for a NULL connection), so the parsers run exactly as in the
 * server. Input: a first byte choosing thumbnail defaults, then the string.
 * Not reachable without a running server: the MPR plane parameters (parse_mpr, static in
 * http/mpr.c) and the IIIF identifier {sop}:{frame}:{window} (parse_identifier, static in
 * http/tiles.c). */
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

static void
check_voi(const rnd_voi_req *v)
{
    if (v->mode == RND_VOI_MODE_WINDOW) {
        CHECK(isfinite(v->center) && isfinite(v->width) && v->width > 0);
        CHECK(v->fn != RND_VOI_LINEAR || v->width >= 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    int thumbnail = data[0] & 1;
    char *s = malloc(size);
    CHECK(s);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';

    http_server srv;
    memset(&srv, 0, sizeof srv);
    srv.opts.thumbnail_size = 192;
    http_req r;
    memset(&r, 0, sizeof r);
    r.srv = &srv;
    r.method = "GET";
    r.query = s;

    http_render_params p;
    static const char *const extra[] = {"plane", NULL};
    if (http__render_params(&r, thumbnail, data[0] & 2 ? extra : NULL, &p) == 0) {
        check_voi(&p.voi);
        CHECK(p.quality >= 1 && p.quality <= 100);
        CHECK(!thumbnail || p.has_viewport);
        CHECK(memchr(r.warning, '\0', sizeof r.warning) != NULL);
    }

    rnd_voi_req voi;
    memset(&voi, 0, sizeof voi);
    char msg[200];
    if (http__parse_window(s, &voi, msg, sizeof msg) == 0) {
        check_voi(&voi);
    } else {
        CHECK(memchr(msg, '\0', sizeof msg) != NULL && msg[0]);
    }

    rnd_viewport vp;
    tsr_err err = {0};
    if (rnd_viewport_parse(s, &vp, &err) == TSR_OK) {
        /* rnd_resample.c's contract: vw, vh >= 1; a region starts at sx, sy >= 0 and its given
         * sides are finite and nonzero. */
        CHECK(vp.vw >= 1 && vp.vh >= 1);
        if (vp.has_region) {
            CHECK(isfinite(vp.sx) && isfinite(vp.sy) && vp.sx >= 0 && vp.sy >= 0);
            CHECK(vp.sw_to_edge || (isfinite(vp.sw) && vp.sw != 0));
            CHECK(vp.sh_to_edge || (isfinite(vp.sh) && vp.sh != 0));
        }
    } else {
        CHECK(err.msg[0]);
    }

    http_tile_addr a;
    memset(&r.warning, 0, sizeof r.warning);
    if (http__tile_addr_parse(&r, s, &a) == 0) {
        CHECK(a.level >= 0 && a.level <= RND_LEVEL_MAX);
        CHECK(a.fmt == RND_FMT_PNG ? a.quality == 0 : a.quality >= 1 && a.quality <= 100);
        check_voi(&a.voi);
    }
    free(s);
    return 0;
}
