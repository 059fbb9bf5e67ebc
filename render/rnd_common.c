/* SPDX-License-Identifier: MIT */
/* rnd_common.c: small value types of the render core (limits, enums, frames, images). */
#include "rnd_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void
rnd_limits_default(rnd_limits *l)
{
    l->max_pixels = (uint64_t)1 << 28;
    l->max_frames = 100000;
    l->max_bytes = (uint64_t)2 << 30;
}

static const struct {
    rnd_photometric pi;
    const char *name;
} k_pi_names[] = {
    {RND_PI_MONOCHROME1, "MONOCHROME1"},       {RND_PI_MONOCHROME2, "MONOCHROME2"},
    {RND_PI_PALETTE_COLOR, "PALETTE COLOR"},   {RND_PI_RGB, "RGB"},
    {RND_PI_YBR_FULL, "YBR_FULL"},             {RND_PI_YBR_FULL_422, "YBR_FULL_422"},
    {RND_PI_YBR_PARTIAL_422, "YBR_PARTIAL_422"}, {RND_PI_YBR_PARTIAL_420, "YBR_PARTIAL_420"},
    {RND_PI_YBR_ICT, "YBR_ICT"},               {RND_PI_YBR_RCT, "YBR_RCT"},
};

/* Compares `s` (possibly space- or NUL-padded) with `name`, ignoring case. */
static int
padded_equal(const char *s, const char *name)
{
    size_t n = strlen(name);
    if (strncasecmp(s, name, n) != 0) {
        return 0;
    }
    for (s += n; *s; s++) {
        if (*s != ' ') {
            return 0;
        }
    }
    return 1;
}

rnd_photometric
rnd_photometric_parse(const char *s)
{
    for (size_t i = 0; i < sizeof k_pi_names / sizeof k_pi_names[0]; i++) {
        if (padded_equal(s, k_pi_names[i].name)) {
            return k_pi_names[i].pi;
        }
    }
    return RND_PI_UNKNOWN;
}

const char *
rnd_photometric_name(rnd_photometric pi)
{
    for (size_t i = 0; i < sizeof k_pi_names / sizeof k_pi_names[0]; i++) {
        if (k_pi_names[i].pi == pi) {
            return k_pi_names[i].name;
        }
    }
    return "UNKNOWN";
}

int
rnd_voi_fn_parse(const char *s, rnd_voi_fn *out)
{
    if (padded_equal(s, "LINEAR")) {
        *out = RND_VOI_LINEAR;
    } else if (padded_equal(s, "LINEAR_EXACT") || padded_equal(s, "linear-exact")) {
        *out = RND_VOI_LINEAR_EXACT;
    } else if (padded_equal(s, "SIGMOID")) {
        *out = RND_VOI_SIGMOID;
    } else {
        return -1;
    }
    return 0;
}

const char *
rnd_voi_fn_name(rnd_voi_fn fn)
{
    switch (fn) {
    case RND_VOI_LINEAR:
        return "LINEAR";
    case RND_VOI_LINEAR_EXACT:
        return "LINEAR_EXACT";
    case RND_VOI_SIGMOID:
        return "SIGMOID";
    }
    return "LINEAR";
}

size_t
rnd_type_size(rnd_type t)
{
    switch (t) {
    case RND_T_U8:
    case RND_T_S8:
        return 1;
    case RND_T_U16:
    case RND_T_S16:
        return 2;
    case RND_T_U32:
    case RND_T_S32:
    case RND_T_F32:
        return 4;
    }
    return 1;
}

int
rnd_frame_alloc(uint32_t width, uint32_t height, uint16_t samples, rnd_type type, rnd_frame **out,
                tsr_err *err)
{
    size_t n, bytes;
    if (width == 0 || height == 0 || samples == 0 ||
        tsr_mul_size((size_t)width * samples, height, &n) ||
        tsr_mul_size(n, rnd_type_size(type), &bytes)) {
        return tsr_err_set(err, TSR_ELIMIT, "frame size %ux%ux%u is not allocatable",
                           (unsigned)width, (unsigned)height, (unsigned)samples);
    }
    rnd_frame *f = calloc(1, sizeof *f);
    void *data = calloc(1, bytes);
    if (!f || !data) {
        free(f);
        free(data);
        return tsr_err_set(err, TSR_ENOMEM, "out of memory for a %zu-byte frame", bytes);
    }
    f->width = width;
    f->height = height;
    f->samples = samples;
    f->type = type;
    f->data = data;
    f->bytes = bytes;
    *out = f;
    return TSR_OK;
}

void
rnd_frame_free(rnd_frame *f)
{
    if (f) {
        free(f->data);
        free(f);
    }
}

int
rnd_image_alloc(rnd_image *img, uint32_t width, uint32_t height, uint8_t channels, tsr_err *err)
{
    size_t bytes;
    memset(img, 0, sizeof *img);
    if (width == 0 || height == 0 || (channels != 1 && channels != 3) ||
        tsr_mul_size((size_t)width * channels, height, &bytes)) {
        return tsr_err_set(err, TSR_ELIMIT, "image size %ux%ux%u is not allocatable",
                           (unsigned)width, (unsigned)height, (unsigned)channels);
    }
    img->data = malloc(bytes);
    if (!img->data) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory for a %zu-byte image", bytes);
    }
    img->width = width;
    img->height = height;
    img->channels = channels;
    img->stride = (size_t)width * channels;
    return TSR_OK;
}

void
rnd_image_free(rnd_image *img)
{
    if (img) {
        free(img->data);
        memset(img, 0, sizeof *img);
    }
}

void
rnd_buf_free(rnd_buf *b)
{
    if (b) {
        free(b->data);
        b->data = NULL;
        b->len = 0;
    }
}
