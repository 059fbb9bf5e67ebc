/* SPDX-License-Identifier: MIT */
/* cmd_render.c: `tessera render` and `tessera info`. */
#define _DEFAULT_SOURCE
#include "cli.h"
#include "rnd.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char k_render_help[] =
    "usage: tessera render FILE -o OUT.png|OUT.jpg [options]\n"
    "\n"
    "Renders one frame of a DICOM file through the DICOM display pipeline (modality LUT, VOI,\n"
    "presentation LUT; colour to RGB), shows non-square pixels square, and writes PNG or JPEG\n"
    "(chosen by the extension of OUT).\n"
    "\n"
    "options:\n"
    "  -o, --output FILE         where to write the image (.png, .jpg or .jpeg); required\n"
    "  --frame N                 frame number, 1-based as in DICOMweb (default 1)\n"
    "  --window C,W[,FN]         window centre and width in modality units; FN is linear\n"
    "                            (default), linear-exact or sigmoid (PS3.3 C.11.2.1.2).\n"
    "                            Default: the file's first window, else its first VOI LUT,\n"
    "                            else the frame's min-max\n"
    "  --viewport VW,VH[,SX,SY,SW,SH]\n"
    "                            DICOMweb viewport (PS3.18 8.3.5.1.3): scale the region\n"
    "                            SX,SY,SW,SH (default: the whole image) to fit in VW x VH;\n"
    "                            a negative SW or SH flips the image on that axis\n"
    "  --quality Q               JPEG quality 1-100 (default 90); ignored for PNG\n"
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0 on success, 1 when the file cannot be rendered, 2 for bad options.\n";

int
cli_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

int
cli_parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Parses "C,W[,FN]" into a WINDOW request. */
static int
parse_window(const char *s, rnd_voi_req *voi)
{
    char buf[128], *parts[4];
    int n = 0;
    if (strlen(s) >= sizeof buf) {
        return -1;
    }
    strcpy(buf, s);
    for (char *p = buf, *tok; n < 4 && (tok = strsep(&p, ",")) != NULL;) {
        parts[n++] = tok;
    }
    if (n < 2 || n > 3 || cli_parse_double(parts[0], &voi->center) ||
        cli_parse_double(parts[1], &voi->width)) {
        return -1;
    }
    voi->fn = RND_VOI_LINEAR;
    if (n == 3 && rnd_voi_fn_parse(parts[2], &voi->fn) != 0) {
        return -1;
    }
    voi->mode = RND_VOI_MODE_WINDOW;
    return 0;
}

static int
ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

static int
write_file(const char *path, const rnd_buf *b)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "tessera render: cannot write '%s': %s\n", path, strerror(errno));
        return 1;
    }
    size_t n = fwrite(b->data, 1, b->len, f);
    if (fclose(f) != 0 || n != b->len) {
        fprintf(stderr, "tessera render: writing '%s' failed\n", path);
        return 1;
    }
    return 0;
}

int
cli_render(int argc, char **argv)
{
    const char *in = NULL, *outp = NULL;
    long frame = 1, quality = 90;
    rnd_voi_req voi = {.mode = RND_VOI_MODE_DEFAULT};
    rnd_viewport vp;
    int has_vp = 0;
    tsr_err err = {0};

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(k_render_help, stdout);
            return 0;
        }
        if (a[0] == '-' && a[1] != '\0') {
            if (!v) {
                fprintf(stderr, "tessera render: option %s needs a value\n", a);
                return 2;
            }
            i++;
            if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
                outp = v;
            } else if (strcmp(a, "--frame") == 0) {
                if (cli_parse_long(v, 1, 0x7fffffffL, &frame)) {
                    fprintf(stderr, "tessera render: --frame must be a number >= 1, got '%s'\n",
                            v);
                    return 2;
                }
            } else if (strcmp(a, "--window") == 0) {
                if (parse_window(v, &voi)) {
                    fprintf(stderr,
                            "tessera render: --window expects C,W[,linear|linear-exact|sigmoid], "
                            "got '%s'\n",
                            v);
                    return 2;
                }
            } else if (strcmp(a, "--viewport") == 0) {
                if (rnd_viewport_parse(v, &vp, &err) != TSR_OK) {
                    fprintf(stderr, "tessera render: --viewport: %s\n", err.msg);
                    return 2;
                }
                has_vp = 1;
            } else if (strcmp(a, "--quality") == 0) {
                if (cli_parse_long(v, 1, 100, &quality)) {
                    fprintf(stderr, "tessera render: --quality must be 1-100, got '%s'\n", v);
                    return 2;
                }
            } else {
                fprintf(stderr, "tessera render: unknown option %s (try --help)\n", a);
                return 2;
            }
        } else if (!in) {
            in = a;
        } else {
            fprintf(stderr, "tessera render: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!in || !outp) {
        fprintf(stderr, "tessera render: %s (try --help)\n",
                !in ? "no input FILE given" : "no output given (-o OUT.png|OUT.jpg)");
        return 2;
    }
    rnd_format fmt;
    if (ends_with(outp, ".png")) {
        fmt = RND_FMT_PNG;
    } else if (ends_with(outp, ".jpg") || ends_with(outp, ".jpeg")) {
        fmt = RND_FMT_JPEG;
    } else {
        fprintf(stderr, "tessera render: output '%s' must end in .png, .jpg or .jpeg\n", outp);
        return 2;
    }

    rnd_dicom *d = NULL;
    rnd_frame *f = NULL;
    rnd_image img = {0}, shown = {0};
    rnd_buf buf = {0};
    int status = 1;
    int rc = rnd_dicom_open(in, NULL, &d, &err);
    if (rc == TSR_OK) {
        rc = rnd_dicom_decode_frame(d, (uint32_t)(frame - 1), &f, &err);
    }
    if (rc == TSR_OK) {
        rc = rnd_render_frame(rnd_dicom_info(d), (uint32_t)(frame - 1), f, &voi, &img, NULL,
                              &err);
    }
    if (rc == TSR_OK) {
        rc = rnd_resample(&img, rnd_pixel_aspect(rnd_dicom_info(d)), has_vp ? &vp : NULL, &shown,
                          &err);
    }
    if (rc == TSR_OK) {
        rc = rnd_encode(&shown, fmt, (int)quality, &buf, &err);
    }
    if (rc == TSR_OK) {
        status = write_file(outp, &buf);
    } else {
        fprintf(stderr, "tessera render: %s: %s\n", in, err.msg);
    }
    rnd_buf_free(&buf);
    rnd_image_free(&shown);
    rnd_image_free(&img);
    rnd_frame_free(f);
    rnd_dicom_close(d);
    return status;
}

static void
print_lut(const char *name, const rnd_lut *l)
{
    if (l->data) {
        printf("%-22s %u entries, first %d, %u bits\n", name, (unsigned)l->n_entries,
               (int)l->first, (unsigned)l->bits);
    }
}

int
cli_info(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        int help = argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0);
        fputs("usage: tessera info FILE\n\nPrints the attributes the renderer reads from a "
              "DICOM file.\n",
              help ? stdout : stderr);
        return help ? 0 : 2;
    }
    rnd_dicom *d = NULL;
    tsr_err err = {0};
    if (rnd_dicom_open(argv[1], NULL, &d, &err) != TSR_OK) {
        fprintf(stderr, "tessera info: %s: %s\n", argv[1], err.msg);
        return 1;
    }
    const rnd_info *in = rnd_dicom_info(d);
    printf("%-22s %s\n", "transfer syntax", in->transfer_syntax);
    printf("%-22s %s\n", "SOP class", in->sop_class_uid);
    printf("%-22s %s\n", "modality", in->modality);
    printf("%-22s %u x %u, %u frame(s)\n", "size", (unsigned)in->columns, (unsigned)in->rows,
           (unsigned)in->frames);
    printf("%-22s %s, %u sample(s), planar %u\n", "photometric",
           rnd_photometric_name(in->photometric), (unsigned)in->samples_per_pixel,
           (unsigned)in->planar_configuration);
    printf("%-22s allocated %u, stored %u, high %u, %s%s\n", "bits", (unsigned)in->bits_allocated,
           (unsigned)in->bits_stored, (unsigned)in->high_bit,
           in->pixel_representation ? "signed" : "unsigned", in->float_pixels ? ", float" : "");
    printf("%-22s slope %g, intercept %g\n", "rescale", in->rescale_slope, in->rescale_intercept);
    print_lut("modality LUT", &in->modality_lut);
    for (int i = 0; i < in->n_windows; i++) {
        printf("%-22s centre %g, width %g, %s\n", i == 0 ? "windows" : "", in->windows[i].center,
               in->windows[i].width, rnd_voi_fn_name(in->windows[i].fn));
    }
    for (int i = 0; i < in->n_voi_luts; i++) {
        print_lut("VOI LUT", &in->voi_luts[i]);
    }
    if (in->presentation_inverse) {
        printf("%-22s INVERSE\n", "presentation LUT");
    }
    print_lut("palette red", &in->palette[0]);
    print_lut("palette green", &in->palette[1]);
    print_lut("palette blue", &in->palette[2]);
    if (in->has_pixel_spacing) {
        printf("%-22s %g \\ %g mm\n", "pixel spacing", in->pixel_spacing[0],
               in->pixel_spacing[1]);
    }
    if (in->has_aspect) {
        printf("%-22s %u : %u\n", "pixel aspect ratio", (unsigned)in->aspect[0],
               (unsigned)in->aspect[1]);
    }
    if (in->frame_meta) {
        printf("%-22s yes\n", "per-frame attributes");
    }
    rnd_dicom_close(d);
    return 0;
}
