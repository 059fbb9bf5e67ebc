/* SPDX-License-Identifier: MIT */
/* cmd_demo.c: `tessera demo`, which writes the synthetic demo studies of cli/demo.h. */
#include "cli.h"
#include "demo.h"

#include <stdio.h>
#include <string.h>

static const char k_demo_help[] =
    "usage: tessera demo OUTDIR [options]\n"
    "\n"
    "Writes three synthetic DICOM studies of one phantom patient (Demo^Phantom,\n"
    "TESSERA-DEMO-1) under OUTDIR, creating it if missing. No data is downloaded and every\n"
    "run with the same options writes byte-identical files (fixed dates, UIDs derived from\n"
    "names under the 2.25 root):\n"
    "\n"
    "  OUTDIR/ct/CT_0001.dcm ...  CT series: 512x512 signed 16-bit axial slices, 2.5 mm\n"
    "                             apart, of a head, neck and chest phantom in Hounsfield\n"
    "                             units, with soft tissue (40/400) and bone (600/2000) windows\n"
    "  OUTDIR/cr/CR_0001.dcm      chest radiograph, MONOCHROME1, 1760x2140, 12-bit\n"
    "  OUTDIR/us/US_0001.dcm      ultrasound cine: RGB multi-frame, 640x480, 30 frames/s, a\n"
    "                             beating heart with a colour Doppler box\n"
    "\n"
    "Existing files of the same names are replaced atomically.\n"
    "\n"
    "options:\n"
    "  --ct-slices N   number of CT slices, 1-1000 (default 120, which covers the whole\n"
    "                  phantom; fewer slices cover its middle)\n"
    "  --us-frames N   number of ultrasound frames, 1-300 (default 30: one heartbeat)\n"
    "  -h, --help      show this help\n"
    "\n"
    "Exit status: 0 on success, 1 when the files cannot be written, 2 for bad options.\n";

int
cli_demo(int argc, char **argv)
{
    const char *outdir = NULL;
    long ct_slices = DEMO_CT_SLICES_DEFAULT, us_frames = DEMO_US_FRAMES_DEFAULT;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(k_demo_help, stdout);
            return 0;
        }
        if (a[0] == '-' && a[1] != '\0') {
            if (strcmp(a, "--ct-slices") != 0 && strcmp(a, "--us-frames") != 0) {
                fprintf(stderr, "tessera demo: unknown option %s (try --help)\n", a);
                return 2;
            }
            if (!v) {
                fprintf(stderr, "tessera demo: option %s needs a value\n", a);
                return 2;
            }
            i++;
            if (strcmp(a, "--ct-slices") == 0) {
                if (cli_parse_long(v, 1, DEMO_CT_SLICES_MAX, &ct_slices)) {
                    fprintf(stderr, "tessera demo: --ct-slices must be 1-%d, got '%s'\n",
                            DEMO_CT_SLICES_MAX, v);
                    return 2;
                }
            } else if (cli_parse_long(v, 1, DEMO_US_FRAMES_MAX, &us_frames)) {
                fprintf(stderr, "tessera demo: --us-frames must be 1-%d, got '%s'\n",
                        DEMO_US_FRAMES_MAX, v);
                return 2;
            }
        } else if (!outdir) {
            outdir = a;
        } else {
            fprintf(stderr, "tessera demo: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!outdir) {
        fprintf(stderr, "tessera demo: no OUTDIR given (try --help)\n");
        return 2;
    }

    demo_opts opts = {.ct_slices = (int)ct_slices, .us_frames = (int)us_frames};
    demo_summary sums[DEMO_N_STUDIES];
    tsr_err err = {0};
    int rc = demo_all(outdir, &opts, sums, &err);
    if (rc != TSR_OK) {
        fprintf(stderr, "tessera demo: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < DEMO_N_STUDIES; i++) {
        const demo_summary *s = &sums[i];
        printf("%s/%s: %s, %u file%s, %ux%u, %u frame%s, %.1f MB, study %s\n", outdir, s->name,
               s->description, (unsigned)s->files, s->files == 1 ? "" : "s", (unsigned)s->columns,
               (unsigned)s->rows, (unsigned)s->frames, s->frames == 1 ? "" : "s",
               (double)s->bytes / 1e6, s->study_uid);
    }
    return 0;
}
