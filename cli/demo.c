/* SPDX-License-Identifier: MIT */
/* demo.c: the phantom generators of demo.h. Each study is computed analytically (no image
 * files, no downloads) and written with the demo_ds writer. All randomness comes from seeded
 * generators, and all dates are fixed, so every run writes byte-identical files. */
#define _POSIX_C_SOURCE 200809L
#include "demo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define PATH_CAP 4096

#define SOP_CT "1.2.840.10008.5.1.4.1.1.2"
#define SOP_CR "1.2.840.10008.5.1.4.1.1.1"
#define SOP_US "1.2.840.10008.5.1.4.1.1.3.1"

/* Tags, in the order they appear in a file. */
enum {
    T_IMAGE_TYPE = DEMO_TAG(0x0008, 0x0008),
    T_SOP_CLASS = DEMO_TAG(0x0008, 0x0016),
    T_SOP_INSTANCE = DEMO_TAG(0x0008, 0x0018),
    T_STUDY_DATE = DEMO_TAG(0x0008, 0x0020),
    T_SERIES_DATE = DEMO_TAG(0x0008, 0x0021),
    T_CONTENT_DATE = DEMO_TAG(0x0008, 0x0023),
    T_STUDY_TIME = DEMO_TAG(0x0008, 0x0030),
    T_SERIES_TIME = DEMO_TAG(0x0008, 0x0031),
    T_CONTENT_TIME = DEMO_TAG(0x0008, 0x0033),
    T_ACCESSION = DEMO_TAG(0x0008, 0x0050),
    T_MODALITY = DEMO_TAG(0x0008, 0x0060),
    T_MANUFACTURER = DEMO_TAG(0x0008, 0x0070),
    T_REFERRING = DEMO_TAG(0x0008, 0x0090),
    T_RECOMMENDED_RATE = DEMO_TAG(0x0008, 0x2144),
    T_STUDY_DESC = DEMO_TAG(0x0008, 0x1030),
    T_SERIES_DESC = DEMO_TAG(0x0008, 0x103E),
    T_MODEL = DEMO_TAG(0x0008, 0x1090),
    T_PATIENT_NAME = DEMO_TAG(0x0010, 0x0010),
    T_PATIENT_ID = DEMO_TAG(0x0010, 0x0020),
    T_BIRTH_DATE = DEMO_TAG(0x0010, 0x0030),
    T_SEX = DEMO_TAG(0x0010, 0x0040),
    T_BODY_PART = DEMO_TAG(0x0018, 0x0015),
    T_CINE_RATE = DEMO_TAG(0x0018, 0x0040),
    T_SLICE_THICKNESS = DEMO_TAG(0x0018, 0x0050),
    T_KVP = DEMO_TAG(0x0018, 0x0060),
    T_SLICE_SPACING = DEMO_TAG(0x0018, 0x0088),
    T_SOFTWARE = DEMO_TAG(0x0018, 0x1020),
    T_FRAME_TIME = DEMO_TAG(0x0018, 0x1063),
    T_HEART_RATE = DEMO_TAG(0x0018, 0x1088),
    T_RECON_DIAMETER = DEMO_TAG(0x0018, 0x1100),
    T_IMAGER_SPACING = DEMO_TAG(0x0018, 0x1164),
    T_KERNEL = DEMO_TAG(0x0018, 0x1210),
    T_PATIENT_POSITION = DEMO_TAG(0x0018, 0x5100),
    T_VIEW_POSITION = DEMO_TAG(0x0018, 0x5101),
    T_STUDY_UID = DEMO_TAG(0x0020, 0x000D),
    T_SERIES_UID = DEMO_TAG(0x0020, 0x000E),
    T_STUDY_ID = DEMO_TAG(0x0020, 0x0010),
    T_SERIES_NUMBER = DEMO_TAG(0x0020, 0x0011),
    T_ACQ_NUMBER = DEMO_TAG(0x0020, 0x0012),
    T_INSTANCE_NUMBER = DEMO_TAG(0x0020, 0x0013),
    T_PATIENT_ORIENTATION = DEMO_TAG(0x0020, 0x0020),
    T_POSITION = DEMO_TAG(0x0020, 0x0032),
    T_ORIENTATION = DEMO_TAG(0x0020, 0x0037),
    T_FRAME_OF_REF = DEMO_TAG(0x0020, 0x0052),
    T_POSITION_REF = DEMO_TAG(0x0020, 0x1040),
    T_SLICE_LOCATION = DEMO_TAG(0x0020, 0x1041),
    T_SAMPLES = DEMO_TAG(0x0028, 0x0002),
    T_PHOTOMETRIC = DEMO_TAG(0x0028, 0x0004),
    T_PLANAR = DEMO_TAG(0x0028, 0x0006),
    T_FRAMES = DEMO_TAG(0x0028, 0x0008),
    T_FRAME_POINTER = DEMO_TAG(0x0028, 0x0009),
    T_ROWS = DEMO_TAG(0x0028, 0x0010),
    T_COLUMNS = DEMO_TAG(0x0028, 0x0011),
    T_PIXEL_SPACING = DEMO_TAG(0x0028, 0x0030),
    T_BITS_ALLOCATED = DEMO_TAG(0x0028, 0x0100),
    T_BITS_STORED = DEMO_TAG(0x0028, 0x0101),
    T_HIGH_BIT = DEMO_TAG(0x0028, 0x0102),
    T_PIXEL_REP = DEMO_TAG(0x0028, 0x0103),
    T_WINDOW_CENTER = DEMO_TAG(0x0028, 0x1050),
    T_WINDOW_WIDTH = DEMO_TAG(0x0028, 0x1051),
    T_INTERCEPT = DEMO_TAG(0x0028, 0x1052),
    T_SLOPE = DEMO_TAG(0x0028, 0x1053),
    T_RESCALE_TYPE = DEMO_TAG(0x0028, 0x1054),
    T_WINDOW_EXPLANATION = DEMO_TAG(0x0028, 0x1055),
    T_LOSSY = DEMO_TAG(0x0028, 0x2110),
    T_PIXEL_DATA = DEMO_TAG(0x7FE0, 0x0010),
};

/* ---------------------------------------------------------------- deterministic noise */

/* splitmix64: small, fast, and good enough for noise; the state is the seed. */
static uint64_t
rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* A uniform double in (0, 1], never 0 so that log() is safe. */
static double
rng_unit(uint64_t *state)
{
    return ((double)(rng_next(state) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

/* A hash of a pixel coordinate, for noise that must not depend on the order of computation. */
static uint64_t
hash3(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t s = a * 0x9E3779B97F4A7C15u ^ b * 0xC2B2AE3D27D4EB4Fu ^ c * 0x165667B19E3779F9u;
    return rng_next(&s);
}

/* ---------------------------------------------------------------- shared attributes */

/* Identification shared by every file of one study. */
typedef struct study_def {
    char key[48]; /* the <study> part of UID names, e.g. "ct-120" */
    const char *accession;
    const char *study_desc;
    const char *series_desc;
    const char *modality;
    const char *body_part;
    const char *time; /* study, series and content time */
    const char *sop_class;
    char study_uid[DEMO_UID_MAX + 1];
    char series_uid[DEMO_UID_MAX + 1];
} study_def;

static void
study_uids(study_def *s)
{
    char name[96];
    snprintf(name, sizeof name, "tessera-demo/%s", s->key);
    demo_uid_from_name(name, s->study_uid);
    snprintf(name, sizeof name, "tessera-demo/%s/1", s->key);
    demo_uid_from_name(name, s->series_uid);
}

static void
instance_uid(const study_def *s, long n, char out[DEMO_UID_MAX + 1])
{
    char name[96];
    snprintf(name, sizeof name, "tessera-demo/%s/1/%ld", s->key, n);
    demo_uid_from_name(name, out);
}

/* Patient, study, series, equipment and SOP common attributes of instance `n` (1-based). */
static void
put_common(demo_ds *ds, const study_def *s, long n)
{
    static const char date[] = "20240301";
    char sop_uid[DEMO_UID_MAX + 1];
    instance_uid(s, n, sop_uid);

    demo_ds_put_str(ds, T_SOP_CLASS, "UI", s->sop_class);
    demo_ds_put_str(ds, T_SOP_INSTANCE, "UI", sop_uid);
    demo_ds_put_str(ds, T_STUDY_DATE, "DA", date);
    demo_ds_put_str(ds, T_SERIES_DATE, "DA", date);
    demo_ds_put_str(ds, T_CONTENT_DATE, "DA", date);
    demo_ds_put_str(ds, T_STUDY_TIME, "TM", s->time);
    demo_ds_put_str(ds, T_SERIES_TIME, "TM", s->time);
    demo_ds_put_str(ds, T_CONTENT_TIME, "TM", s->time);
    demo_ds_put_str(ds, T_ACCESSION, "SH", s->accession);
    demo_ds_put_str(ds, T_MODALITY, "CS", s->modality);
    demo_ds_put_str(ds, T_MANUFACTURER, "LO", "Tessera synthetic");
    demo_ds_put_str(ds, T_REFERRING, "PN", "");
    demo_ds_put_str(ds, T_STUDY_DESC, "LO", s->study_desc);
    demo_ds_put_str(ds, T_SERIES_DESC, "LO", s->series_desc);
    demo_ds_put_str(ds, T_MODEL, "LO", "Tessera demo phantom");
    demo_ds_put_str(ds, T_PATIENT_NAME, "PN", "Demo^Phantom");
    demo_ds_put_str(ds, T_PATIENT_ID, "LO", "TESSERA-DEMO-1");
    demo_ds_put_str(ds, T_BIRTH_DATE, "DA", "");
    demo_ds_put_str(ds, T_SEX, "CS", "O");
    demo_ds_put_str(ds, T_BODY_PART, "CS", s->body_part);
    demo_ds_put_str(ds, T_SOFTWARE, "LO", "TESSERA_0.1");
    demo_ds_put_str(ds, T_STUDY_UID, "UI", s->study_uid);
    demo_ds_put_str(ds, T_SERIES_UID, "UI", s->series_uid);
    demo_ds_put_str(ds, T_STUDY_ID, "SH", "1");
    demo_ds_put_is(ds, T_SERIES_NUMBER, 1);
    demo_ds_put_is(ds, T_ACQ_NUMBER, 1);
    demo_ds_put_is(ds, T_INSTANCE_NUMBER, n);
    demo_ds_put_str(ds, T_LOSSY, "CS", "00");
}

/* Image pixel module attributes. */
static void
put_pixel_format(demo_ds *ds, uint16_t rows, uint16_t columns, uint16_t samples,
                 const char *photometric, uint16_t bits_allocated, uint16_t bits_stored,
                 uint16_t pixel_rep)
{
    demo_ds_put_us(ds, T_SAMPLES, samples);
    demo_ds_put_str(ds, T_PHOTOMETRIC, "CS", photometric);
    if (samples > 1) {
        demo_ds_put_us(ds, T_PLANAR, 0);
    }
    demo_ds_put_us(ds, T_ROWS, rows);
    demo_ds_put_us(ds, T_COLUMNS, columns);
    demo_ds_put_us(ds, T_BITS_ALLOCATED, bits_allocated);
    demo_ds_put_us(ds, T_BITS_STORED, bits_stored);
    demo_ds_put_us(ds, T_HIGH_BIT, (uint16_t)(bits_stored - 1));
    demo_ds_put_us(ds, T_PIXEL_REP, pixel_rep);
}

/* Joins `dir` and `name`; fails when the result does not fit. */
static int
join_path(char out[PATH_CAP], const char *dir, const char *name, tsr_err *err)
{
    int n = snprintf(out, PATH_CAP, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_CAP) {
        return tsr_err_set(err, TSR_EINVAL, "path too long: %s/%s", dir, name);
    }
    return TSR_OK;
}

/* Writes `ds` to dir/name and adds the file to the summary counts. */
static int
write_instance(const demo_ds *ds, const char *dir, const char *name, demo_summary *sum,
               tsr_err *err)
{
    char path[PATH_CAP];
    struct stat st;
    int rc = join_path(path, dir, name, err);
    if (rc == TSR_OK) {
        rc = demo_ds_write(ds, path, err);
    }
    if (rc == TSR_OK) {
        sum->files++;
        if (stat(path, &st) == 0) {
            sum->bytes += (uint64_t)st.st_size;
        }
    }
    return rc;
}

static void
summary_init(demo_summary *sum, const study_def *s, const char *name, const char *description,
             uint32_t columns, uint32_t rows)
{
    memset(sum, 0, sizeof *sum);
    sum->name = name;
    sum->description = description;
    sum->modality = s->modality;
    sum->columns = columns;
    sum->rows = rows;
    memcpy(sum->study_uid, s->study_uid, sizeof sum->study_uid);
    memcpy(sum->series_uid, s->series_uid, sizeof sum->series_uid);
}

/* ---------------------------------------------------------------- CT phantom */

typedef enum shape_kind {
    SHAPE_ELLIPSOID, /* centre (cx, cy, cz), semi-axes (ax, ay, az) */
    SHAPE_CYLINDER,  /* elliptic, axis along z: centre (cx, cy), semi-axes (ax, ay), z0..z1 */
    SHAPE_RIBS,      /* between ellipses (ax, ay) and (ix, iy) around (cx, cy), z0..z1, only
                      * the posterior and lateral part (dy >= -0.6 ay): in an axial slice a rib
                      * is seen behind and beside the lungs, its front end lies lower down */
    SHAPE_BOX,       /* |x - cx| <= ax, |y - cy| <= ay, z0..z1 */
} shape_kind;

typedef struct shape {
    shape_kind kind;
    double cx, cy, cz;
    double ax, ay, az;
    double z0, z1;
    double ix, iy;
    double hu;
} shape;

/* clang-format 14 would turn these braced macro bodies into blocks. */
/* clang-format off */
#define ELL(cx, cy, cz, ax, ay, az, hu) {SHAPE_ELLIPSOID, cx, cy, cz, ax, ay, az, 0, 0, 0, 0, hu}
#define CYL(cx, cy, ax, ay, z0, z1, hu) {SHAPE_CYLINDER, cx, cy, 0, ax, ay, 0, z0, z1, 0, 0, hu}
#define RIBS(ax, ay, ix, iy, z0, z1, hu) {SHAPE_RIBS, 0, 0, 0, ax, ay, 0, z0, z1, ix, iy, hu}
#define BOX(cx, cy, ax, ay, z0, z1, hu) {SHAPE_BOX, cx, cy, 0, ax, ay, 0, z0, z1, 0, 0, hu}
/* clang-format on */

/* The phantom in patient coordinates (mm, LPS: +x patient left, +y posterior, +z head), painted
 * in this order, later shapes replacing earlier ones. The neck comes before the torso so that
 * the shoulder caps cover its base instead of leaving skin rings inside the chest. */
static const shape k_phantom[] = {
    /* table top under the patient */
    BOX(0, 122, 170, 4, -1000, 1000, 150),
    /* neck: skin, subcutaneous fat, muscle */
    CYL(0, 10, 58, 52, -30, 30, 40),
    CYL(0, 10, 55, 49, -30, 30, -100),
    CYL(0, 10, 47, 43, -30, 30, 40),
    /* torso: the same three layers, each a cylinder with a half-ellipsoid cap (shoulders) */
    CYL(0, 0, 150, 105, -1000, -30, 40),
    ELL(0, 0, -30, 150, 105, 30, 40),
    CYL(0, 0, 147, 102, -1000, -30, -100),
    ELL(0, 0, -30, 147, 102, 27, -100),
    CYL(0, 0, 135, 90, -1000, -30, 40),
    ELL(0, 0, -30, 135, 90, 20, 40),
    /* lungs */
    ELL(-70, 8, -90, 48, 55, 62, -850),
    ELL(70, 8, -90, 48, 55, 62, -850),
    /* ribs: just inside the muscle, 8 mm thick, every 22 mm */
    RIBS(134, 89, 128, 84, -144, -136, 700),
    RIBS(134, 89, 128, 84, -122, -114, 700),
    RIBS(134, 89, 128, 84, -100, -92, 700),
    RIBS(134, 89, 128, 84, -78, -70, 700),
    RIBS(134, 89, 128, 84, -56, -48, 700),
    RIBS(134, 89, 128, 84, -34, -26, 700),
    /* sternum */
    BOX(0, -83, 14, 4, -135, -40, 700),
    /* heart, liver, and a hypodense liver lesion */
    ELL(18, -22, -100, 50, 42, 42, 45),
    ELL(-55, -5, -175, 80, 72, 48, 60),
    ELL(-65, -10, -140, 10, 10, 10, 15),
    /* contrast-filled vessels: descending aorta (rounded top), carotid arteries */
    CYL(22, 30, 11, 11, -1000, -60, 250),
    ELL(22, 30, -60, 11, 11, 11, 250),
    CYL(-25, 0, 4, 4, -30, 10, 250),
    CYL(25, 0, 4, 4, -30, 10, 250),
    /* trachea */
    CYL(0, -20, 9, 9, -55, 10, -1000),
    /* spine: cortical bone around marrow, discs every 25 mm; thoracic, then cervical */
    CYL(0, 55, 16, 16, -1000, -25, 1000),
    CYL(0, 55, 12, 12, -1000, -25, 300),
    CYL(0, 55, 16, 16, -150, -146, 80),
    CYL(0, 55, 16, 16, -125, -121, 80),
    CYL(0, 55, 16, 16, -100, -96, 80),
    CYL(0, 55, 16, 16, -75, -71, 80),
    CYL(0, 55, 16, 16, -50, -46, 80),
    CYL(0, 28, 11, 11, -25, 20, 1000),
    CYL(0, 28, 8, 8, -25, 20, 300),
    CYL(0, 28, 11, 11, -12, -9, 80),
    CYL(0, 28, 11, 11, 3, 6, 80),
    /* head: scalp, outer table, diploe, inner table, brain, ventricles, eyes */
    ELL(0, 5, 80, 76, 94, 68, 40),
    ELL(0, 5, 80, 71, 89, 63, 1000),
    ELL(0, 5, 80, 68, 86, 60, 300),
    ELL(0, 5, 80, 65.5, 83.5, 57.5, 1000),
    ELL(0, 5, 80, 63, 81, 55, 35),
    ELL(-9, 5, 90, 6, 26, 14, 5),
    ELL(9, 5, 90, 6, 26, 14, 5),
    ELL(-32, -80, 62, 12, 12, 12, 10),
    ELL(32, -80, 62, 12, 12, 12, 10),
};

#define N_SHAPES (sizeof k_phantom / sizeof k_phantom[0])

/* The cross-section of a shape in the plane z: semi-axes scaled for ellipsoids. */
typedef struct section {
    double ax, ay;
} section;

static int
shape_section(const shape *s, double z, section *out)
{
    if (s->kind == SHAPE_ELLIPSOID) {
        double t = (z - s->cz) / s->az;
        t = 1.0 - t * t;
        if (t <= 0.0) {
            return 0;
        }
        double k = sqrt(t);
        out->ax = s->ax * k;
        out->ay = s->ay * k;
        return 1;
    }
    if (z < s->z0 || z > s->z1) {
        return 0;
    }
    out->ax = s->ax;
    out->ay = s->ay;
    return 1;
}

/* Whether (x, y) lies inside the shape's section. The rasteriser and demo_ct_phantom_hu both
 * use exactly this test, so that the files and the model agree at every pixel centre. */
static int
section_contains(const shape *s, const section *sec, double x, double y)
{
    double dx = x - s->cx, dy = y - s->cy;
    if (s->kind == SHAPE_BOX) {
        return fabs(dx) <= sec->ax && fabs(dy) <= sec->ay;
    }
    double u = dx / sec->ax, v = dy / sec->ay;
    if (u * u + v * v >= 1.0) {
        return 0;
    }
    if (s->kind == SHAPE_RIBS) {
        if (dy < -0.6 * s->ay) {
            return 0;
        }
        u = dx / s->ix;
        v = dy / s->iy;
        return u * u + v * v >= 1.0;
    }
    return 1;
}

double
demo_ct_phantom_hu(double x, double y, double z)
{
    double hu = -1000.0;
    for (size_t i = 0; i < N_SHAPES; i++) {
        section sec;
        if (shape_section(&k_phantom[i], z, &sec) && section_contains(&k_phantom[i], &sec, x, y)) {
            hu = k_phantom[i].hu;
        }
    }
    return hu;
}

/* The first pixel centre of a CT slice, -(DEMO_CT_SIZE - 1) / 2 * DEMO_CT_SPACING, written as a
 * literal so that the value in the file ("-178.85") parses back to exactly this double. */
#define CT_ORIGIN (-178.85)

static double
ct_slice_z(int k, int n)
{
    return ((double)k - (double)(n - 1) / 2.0) * DEMO_CT_THICKNESS;
}

/* Paints slice z into `hu` (DEMO_CT_SIZE^2 values) without noise. Only the bounding box of each
 * shape's section is visited. */
static void
ct_paint(int16_t *hu, double z)
{
    const int size = DEMO_CT_SIZE;
    for (size_t i = 0; i < (size_t)size * size; i++) {
        hu[i] = -1000;
    }
    for (size_t i = 0; i < N_SHAPES; i++) {
        const shape *s = &k_phantom[i];
        section sec;
        if (!shape_section(s, z, &sec)) {
            continue;
        }
        /* One pixel of margin each side: the exact test below decides. */
        int c0 = (int)floor((s->cx - sec.ax - CT_ORIGIN) / DEMO_CT_SPACING) - 1;
        int c1 = (int)ceil((s->cx + sec.ax - CT_ORIGIN) / DEMO_CT_SPACING) + 1;
        int r0 = (int)floor((s->cy - sec.ay - CT_ORIGIN) / DEMO_CT_SPACING) - 1;
        int r1 = (int)ceil((s->cy + sec.ay - CT_ORIGIN) / DEMO_CT_SPACING) + 1;
        c0 = c0 < 0 ? 0 : c0;
        r0 = r0 < 0 ? 0 : r0;
        c1 = c1 > size - 1 ? size - 1 : c1;
        r1 = r1 > size - 1 ? size - 1 : r1;
        int16_t value = (int16_t)s->hu;
        for (int r = r0; r <= r1; r++) {
            double y = CT_ORIGIN + (double)r * DEMO_CT_SPACING;
            for (int c = c0; c <= c1; c++) {
                double x = CT_ORIGIN + (double)c * DEMO_CT_SPACING;
                if (section_contains(s, &sec, x, y)) {
                    hu[(size_t)r * size + c] = value;
                }
            }
        }
    }
}

int
demo_ct_series(const char *dir, int n_slices, demo_summary *sum, tsr_err *err)
{
    int rc = TSR_OK;
    const int size = DEMO_CT_SIZE;
    int16_t *hu = NULL;
    uint16_t *stored = NULL;
    demo_ds *ds = NULL;
    demo_summary local;
    study_def s = {
        .accession = "DEMOCT0001",
        .study_desc = "Tessera demo CT",
        .series_desc = "Phantom head-neck-chest 2.5 mm",
        .modality = "CT",
        .body_part = "HEADNECK",
        .time = "093000",
        .sop_class = SOP_CT,
    };

    if (n_slices == 0) {
        n_slices = DEMO_CT_SLICES_DEFAULT;
    }
    if (n_slices < 1 || n_slices > DEMO_CT_SLICES_MAX) {
        rc = tsr_err_set(err, TSR_EINVAL, "CT slice count must be 1..%d (got %d)",
                         DEMO_CT_SLICES_MAX, n_slices);
        goto done;
    }
    rc = demo_mkdirs(dir, err);
    if (rc != TSR_OK) {
        goto done;
    }
    /* The slice count is part of the study's name: a different count is a different study
     * (other slice positions), so it must not reuse the UIDs. */
    snprintf(s.key, sizeof s.key, "ct-%d", n_slices);
    study_uids(&s);
    char for_name[96], for_uid[DEMO_UID_MAX + 1];
    snprintf(for_name, sizeof for_name, "tessera-demo/%s/frame-of-reference", s.key);
    demo_uid_from_name(for_name, for_uid);
    summary_init(&local, &s, "ct", "CT phantom: head, neck and chest, 2.5 mm axial", size, size);

    hu = malloc((size_t)size * size * sizeof *hu);
    stored = malloc((size_t)size * size * sizeof *stored);
    if (!hu || !stored) {
        rc = tsr_err_set(err, TSR_ENOMEM, "out of memory for a CT slice");
        goto done;
    }

    for (int k = 0; k < n_slices; k++) {
        double z = ct_slice_z(k, n_slices);
        ct_paint(hu, z);
        /* Noise in [-10, 10] HU, seeded per slice so each slice is reproducible on its own. */
        uint64_t rng = 0x7E55E7A0C7ull + (uint64_t)k;
        for (size_t i = 0; i < (size_t)size * size; i++) {
            int noise = (int)(rng_next(&rng) % (2 * DEMO_CT_NOISE_HU + 1)) - DEMO_CT_NOISE_HU;
            int16_t value = (int16_t)(hu[i] + noise - DEMO_CT_INTERCEPT);
            stored[i] = (uint16_t)value; /* two's complement bits of the signed value */
        }

        rc = demo_ds_create(&ds, err);
        if (rc != TSR_OK) {
            goto done;
        }
        put_common(ds, &s, k + 1);
        demo_ds_put_str(ds, T_IMAGE_TYPE, "CS", "ORIGINAL\\PRIMARY\\AXIAL");
        demo_ds_put_ds(ds, T_SLICE_THICKNESS, (const double[]){DEMO_CT_THICKNESS}, 1);
        demo_ds_put_ds(ds, T_KVP, (const double[]){120}, 1);
        demo_ds_put_ds(ds, T_SLICE_SPACING, (const double[]){DEMO_CT_THICKNESS}, 1);
        demo_ds_put_ds(ds, T_RECON_DIAMETER, (const double[]){size * DEMO_CT_SPACING}, 1);
        demo_ds_put_str(ds, T_KERNEL, "SH", "STANDARD");
        demo_ds_put_str(ds, T_PATIENT_POSITION, "CS", "HFS");
        demo_ds_put_str(ds, T_PATIENT_ORIENTATION, "CS", "");
        demo_ds_put_ds(ds, T_POSITION, (const double[]){CT_ORIGIN, CT_ORIGIN, z}, 3);
        demo_ds_put_ds(ds, T_ORIENTATION, (const double[]){1, 0, 0, 0, 1, 0}, 6);
        demo_ds_put_str(ds, T_FRAME_OF_REF, "UI", for_uid);
        demo_ds_put_str(ds, T_POSITION_REF, "LO", "");
        demo_ds_put_ds(ds, T_SLICE_LOCATION, &z, 1);
        put_pixel_format(ds, size, size, 1, "MONOCHROME2", 16, 16, 1);
        demo_ds_put_ds(ds, T_PIXEL_SPACING, (const double[]){DEMO_CT_SPACING, DEMO_CT_SPACING}, 2);
        demo_ds_put_ds(ds, T_WINDOW_CENTER, (const double[]){40, 600}, 2);
        demo_ds_put_ds(ds, T_WINDOW_WIDTH, (const double[]){400, 2000}, 2);
        demo_ds_put_str(ds, T_WINDOW_EXPLANATION, "LO", "SOFT TISSUE\\BONE");
        demo_ds_put_ds(ds, T_INTERCEPT, (const double[]){DEMO_CT_INTERCEPT}, 1);
        demo_ds_put_ds(ds, T_SLOPE, (const double[]){1}, 1);
        demo_ds_put_str(ds, T_RESCALE_TYPE, "LO", "HU");
        demo_ds_put_words(ds, T_PIXEL_DATA, stored, (size_t)size * size);

        char name[32];
        snprintf(name, sizeof name, "CT_%04d.dcm", k + 1);
        rc = write_instance(ds, dir, name, &local, err);
        demo_ds_free(ds);
        ds = NULL;
        if (rc != TSR_OK) {
            goto done;
        }
        local.frames++;
    }
    if (sum) {
        *sum = local;
    }

done:
    demo_ds_free(ds);
    free(stored);
    free(hu);
    return rc;
}

/* ---------------------------------------------------------------- CR phantom */

/* Path length (mm) through an ellipsoid along the beam (y), at (x, z) of the detector. */
static double
chord(double x, double z, double cx, double cz, double ax, double ay, double az)
{
    double u = (x - cx) / ax, w = (z - cz) / az;
    double t = 1.0 - u * u - w * w;
    return t > 0.0 ? 2.0 * ay * sqrt(t) : 0.0;
}

/* Path length through a tube of radius `r` whose axis is at distance `d` from the ray. */
static double
tube(double d, double r)
{
    return d < r ? 2.0 * sqrt(r * r - d * d) : 0.0;
}

/* Distance from (x, z) to the segment (x0, z0)-(x1, z1). */
static double
segment_distance(double x, double z, double x0, double z0, double x1, double z1)
{
    double vx = x1 - x0, vz = z1 - z0;
    double t = ((x - x0) * vx + (z - z0) * vz) / (vx * vx + vz * vz);
    t = t < 0.0 ? 0.0 : (t > 1.0 ? 1.0 : t);
    return hypot(x - (x0 + t * vx), z - (z0 + t * vz));
}

/* Attenuation (sum of mu * length, mu in 1/mm) of a PA chest projection at detector point
 * (x, z), mm: x to the patient's left, z head-wards. Soft tissue mu = 0.02, lung replaces it
 * with air (-0.018), bone adds 0.03. */
static double
cr_attenuation(double x, double z)
{
    const double mu_soft = 0.020, d_air = -0.018, d_bone = 0.030;
    double a = 0.0;

    /* Torso: an elliptic cylinder narrowing into the shoulders, then the neck. */
    double half = 165.0;
    if (z > 130.0) {
        double t = (z - 130.0) / 60.0;
        half = t < 1.0 ? 165.0 * sqrt(1.0 - t * t) : 0.0;
    }
    double body = 0.0;
    if (half > 0.0 && fabs(x) < half) {
        body = 2.0 * 110.0 * (half / 165.0) * sqrt(1.0 - (x / half) * (x / half));
    }
    if (z > 100.0 && fabs(x) < 55.0) {
        double neck = 2.0 * 50.0 * sqrt(1.0 - (x / 55.0) * (x / 55.0));
        body = neck > body ? neck : body;
    }
    a += mu_soft * body;

    /* Lungs (the right dome higher), gastric bubble, trachea: air in place of tissue. */
    double lung = chord(x, z, -80, 28, 62, 70, 125) + chord(x, z, 80, 18, 62, 70, 125);
    a += d_air * lung;
    a += d_air * chord(x, z, 70, -125, 30, 20, 25);
    if (z > 40.0) {
        a += d_air * tube(fabs(x), 9.0);
    }
    /* Heart, aortic knob and hila displace lung: they give back at most the air the lungs took
     * at that point, so that the heart is soft-tissue dense and its border shows only against
     * lung (the silhouette sign), not as a brighter disc. */
    double solid = chord(x, z, 25, -50, 70, 55, 60) + chord(x, z, 30, 60, 22, 22, 22) +
                   0.3 * chord(x, z, -40, 15, 18, 30, 30) + 0.3 * chord(x, z, 40, 10, 18, 30, 30);
    a -= d_air * (solid < lung ? solid : lung);

    /* Spine: mostly trabecular bone, so about half the density of the ribs' cortex. */
    if (half > 0.0 || z > 100.0) {
        a += 0.5 * d_bone * tube(fabs(x), 17.0);
    }
    /* Posterior ribs: arcs from the spine running out and down, ten a side. */
    for (int side = -1; side <= 1; side += 2) {
        for (int i = 0; i < 10; i++) {
            double cx = side * 10.0, cz = 125.0 - 24.0 * i, ra = 122.0, rb = 50.0;
            double u = (x - cx) / ra, v = (z - cz) / rb;
            if (side * u < 0.0 || v < -0.2 || fabs(x) > half - 6.0) {
                continue;
            }
            /* Distance to the arc, to first order: |rho - 1| / |grad rho|. */
            double rho = sqrt(u * u + v * v);
            double g = sqrt(u * u / (ra * ra) + v * v / (rb * rb));
            if (rho <= 0.0 || g <= 0.0) {
                continue;
            }
            double d = fabs(rho - 1.0) * rho / g;
            a += 0.75 * d_bone * tube(d, 5.0);
        }
        /* Clavicle. */
        a += d_bone * tube(segment_distance(x, z, side * 15.0, 150.0, side * 140.0, 168.0), 7.0);
    }
    return a;
}

int
demo_cr_mono1(const char *dir, demo_summary *sum, tsr_err *err)
{
    int rc = TSR_OK;
    const int cols = DEMO_CR_COLUMNS, rows = DEMO_CR_ROWS;
    const double spacing = 0.2;
    uint16_t *px = NULL;
    demo_ds *ds = NULL;
    demo_summary local;
    study_def s = {
        .key = "cr",
        .accession = "DEMOCR0001",
        .study_desc = "Tessera demo CR",
        .series_desc = "Phantom chest PA",
        .modality = "CR",
        .body_part = "CHEST",
        .time = "101500",
        .sop_class = SOP_CR,
    };

    rc = demo_mkdirs(dir, err);
    if (rc != TSR_OK) {
        goto done;
    }
    study_uids(&s);
    summary_init(&local, &s, "cr", "CR phantom: chest PA, MONOCHROME1, 12-bit", cols, rows);
    px = malloc((size_t)cols * rows * sizeof *px);
    if (!px) {
        rc = tsr_err_set(err, TSR_ENOMEM, "out of memory for the radiograph");
        goto done;
    }

    /* MONOCHROME1 stores log exposure as is: direct exposure (air) is high and displays dark,
     * bone is low and displays bright. Outside the collimated field the plate saw almost no
     * exposure, so it is near 0 and displays white, as on a real radiograph. */
    const int margin_x = 70, margin_y = 50;
    for (int r = 0; r < rows; r++) {
        double z = ((double)(rows - 1) / 2.0 - r) * spacing + 10.0;
        uint64_t rng = 0xC0FFEEull * 31u + (uint64_t)r;
        for (int c = 0; c < cols; c++) {
            double x = ((double)c - (double)(cols - 1) / 2.0) * spacing;
            double noise = (rng_unit(&rng) + rng_unit(&rng) - 1.0) * 20.0;
            double v;
            if (c < margin_x || c >= cols - margin_x || r < margin_y || r >= rows - margin_y) {
                v = 90.0 + noise;
            } else {
                v = 3800.0 - 680.0 * cr_attenuation(x, z) + noise;
            }
            v = v < 0.0 ? 0.0 : (v > 4095.0 ? 4095.0 : v);
            px[(size_t)r * cols + c] = (uint16_t)lrint(v);
        }
    }

    rc = demo_ds_create(&ds, err);
    if (rc != TSR_OK) {
        goto done;
    }
    put_common(ds, &s, 1);
    demo_ds_put_str(ds, T_IMAGE_TYPE, "CS", "ORIGINAL\\PRIMARY");
    demo_ds_put_ds(ds, T_KVP, (const double[]){120}, 1);
    demo_ds_put_ds(ds, T_IMAGER_SPACING, (const double[]){spacing, spacing}, 2);
    demo_ds_put_str(ds, T_VIEW_POSITION, "CS", "PA");
    demo_ds_put_str(ds, T_PATIENT_ORIENTATION, "CS", "L\\F");
    put_pixel_format(ds, rows, cols, 1, "MONOCHROME1", 16, 12, 0);
    demo_ds_put_ds(ds, T_PIXEL_SPACING, (const double[]){spacing, spacing}, 2);
    demo_ds_put_ds(ds, T_WINDOW_CENTER, (const double[]){2100}, 1);
    demo_ds_put_ds(ds, T_WINDOW_WIDTH, (const double[]){3600}, 1);
    demo_ds_put_str(ds, T_WINDOW_EXPLANATION, "LO", "CHEST");
    demo_ds_put_words(ds, T_PIXEL_DATA, px, (size_t)cols * rows);
    rc = write_instance(ds, dir, "CR_0001.dcm", &local, err);
    if (rc != TSR_OK) {
        goto done;
    }
    local.frames = 1;
    if (sum) {
        *sum = local;
    }

done:
    demo_ds_free(ds);
    free(px);
    return rc;
}

/* ---------------------------------------------------------------- US phantom */

#define US_APEX_X     320.0
#define US_APEX_Y     14.0
#define US_DEPTH      440.0
#define US_HALF_ANGLE (40.0 * M_PI / 180.0)

/* Colour Doppler box, in sector coordinates. */
#define US_BOX_R0 240.0
#define US_BOX_R1 370.0
#define US_BOX_T  (13.0 * M_PI / 180.0)

/* Speckle: the echoes of many scatterers in one resolution cell add up to a complex Gaussian,
 * whose amplitude is Rayleigh distributed and correlated over the cell, about US_CELL_R pixels
 * along the beam and one of US_LINES beam lines across. Each node of a polar grid holds one
 * complex Gaussian sample (I, Q) and pixels interpolate between nodes. */
#define US_CELL_R  1.5
#define US_LINES   160
#define US_NODES_R ((int)(US_DEPTH / US_CELL_R) + 2)
#define US_NODES_T (US_LINES + 2)
#define US_NODES   ((size_t)US_NODES_R * US_NODES_T)

/* Fills `iq` (2 * US_NODES floats) with the samples of one layer: layer 0 is fixed to the
 * tissue, the others decorrelate from frame to frame. */
static void
us_speckle_layer(float *iq, uint64_t layer)
{
    for (int i = 0; i < US_NODES_R; i++) {
        for (int j = 0; j < US_NODES_T; j++) {
            uint64_t st = hash3((uint64_t)i, (uint64_t)j, layer);
            double m = sqrt(-2.0 * log(rng_unit(&st))), ph = 2.0 * M_PI * rng_unit(&st);
            size_t n = (size_t)i * US_NODES_T + (size_t)j;
            iq[2 * n] = (float)(m * cos(ph));
            iq[2 * n + 1] = (float)(m * sin(ph));
        }
    }
}

/* Rayleigh speckle amplitude (mean 1) at polar position (r, th) from a fixed layer and a
 * per-frame layer. Interpolated Gaussians are renormalised by the weights' norm so that the
 * statistics do not vary across a cell. */
static double
us_speckle(const float *fixed, const float *moving, double r, double th)
{
    double fr = r / US_CELL_R, ft = (th + US_HALF_ANGLE) / (2.0 * US_HALF_ANGLE) * US_LINES;
    int i0 = (int)fr, j0 = (int)ft;
    double wr = fr - i0, wt = ft - j0;
    double w[4] = {(1 - wr) * (1 - wt), (1 - wr) * wt, wr * (1 - wt), wr * wt};
    size_t n[4] = {(size_t)i0 * US_NODES_T + j0, (size_t)i0 * US_NODES_T + j0 + 1,
                   (size_t)(i0 + 1) * US_NODES_T + j0, (size_t)(i0 + 1) * US_NODES_T + j0 + 1};
    double si = 0, sq = 0, mi = 0, mq = 0, norm = 0;
    for (int k = 0; k < 4; k++) {
        si += w[k] * fixed[2 * n[k]];
        sq += w[k] * fixed[2 * n[k] + 1];
        mi += w[k] * moving[2 * n[k]];
        mq += w[k] * moving[2 * n[k] + 1];
        norm += w[k] * w[k];
    }
    double i = 0.8 * si + 0.6 * mi, q = 0.8 * sq + 0.6 * mq;
    return sqrt((i * i + q * q) / norm) / 1.2533;
}

/* The heart at one moment: contraction 0 (end-diastole) .. 1 (end-systole). */
typedef struct us_heart {
    double c;
    double lv_rx, lv_ry, lv_wall;
    double la_rx, la_ry;
    double valve_open; /* 1 open (diastole) .. 0 closed */
} us_heart;

static us_heart
us_heart_at(int frame)
{
    double phase = 2.0 * M_PI * (double)(frame % DEMO_US_FRAME_RATE) / DEMO_US_FRAME_RATE;
    us_heart h;
    h.c = 0.5 - 0.5 * cos(phase);
    h.lv_rx = 66.0 - 20.0 * h.c;
    h.lv_ry = 100.0 - 16.0 * h.c;
    h.lv_wall = 15.0 + 7.0 * h.c;
    h.la_rx = 50.0 + 8.0 * h.c;
    h.la_ry = 38.0 + 6.0 * h.c;
    /* The mitral valve opens in diastole (second half of the cycle). */
    h.valve_open = phase > M_PI ? sin(phase - M_PI) : 0.0;
    return h;
}

/* Echogenicity (0..1) of the tissue at (x, y) pixels, and whether it is moving blood. */
static double
us_echo(const us_heart *h, double x, double y, int *blood)
{
    const double lv_x = 318.0, lv_y = 190.0, la_x = 330.0, la_y = 362.0;
    double e = 0.30;
    *blood = 0;

    double u = (x - lv_x) / (h->lv_rx + h->lv_wall), v = (y - lv_y) / (h->lv_ry + h->lv_wall);
    double outer = u * u + v * v;
    u = (x - lv_x) / h->lv_rx;
    v = (y - lv_y) / h->lv_ry;
    double inner = u * u + v * v;
    u = (x - la_x) / (h->la_rx + 9.0);
    v = (y - la_y) / (h->la_ry + 9.0);
    double la_outer = u * u + v * v;
    u = (x - la_x) / h->la_rx;
    v = (y - la_y) / h->la_ry;
    double la_inner = u * u + v * v;

    /* Pericardium: a bright rim around the ventricle. */
    if (outer < 1.25 && outer >= 1.0) {
        e = 0.85;
    }
    if (outer < 1.0 || la_outer < 1.0) {
        e = 0.55; /* myocardium */
    }
    int channel = fabs(x - 322.0) < 26.0 && y > lv_y + h->lv_ry - 4.0 && y < la_y - h->la_ry + 4.0;
    if (inner < 1.0 || la_inner < 1.0 || channel) {
        e = 0.03;
        *blood = 1;
    }
    /* Mitral leaflets: hinged at the annulus, swinging towards the apex as the valve opens. */
    double hinge_y = lv_y + h->lv_ry + 8.0;
    for (int side = -1; side <= 1; side += 2) {
        double hx = 322.0 + side * 26.0;
        double ang = (1.0 - h->valve_open) * (M_PI / 2.0) * 0.9; /* 0: along -y, pi/2: flat */
        double dx = -side * sin(ang), dy = -cos(ang);
        double px = x - hx, py = y - hinge_y;
        double t = px * dx + py * dy;
        if (t >= 0.0 && t <= 28.0 && fabs(px * dy - py * dx) < 2.2) {
            e = 0.95;
            *blood = 0;
        }
    }
    return e;
}

/* A one-lead ECG-like trace (-1..1) at time t seconds: P wave, QRS, T wave each second. */
static double
us_ecg(double t)
{
    double p = t - floor(t);
    double v = 0.15 * exp(-pow((p - 0.12) / 0.025, 2.0));
    v += -0.15 * exp(-pow((p - 0.20) / 0.008, 2.0));
    v += 1.0 * exp(-pow((p - 0.22) / 0.010, 2.0));
    v += -0.25 * exp(-pow((p - 0.245) / 0.010, 2.0));
    v += 0.30 * exp(-pow((p - 0.45) / 0.045, 2.0));
    return v;
}

static void
us_set(uint8_t *img, int x, int y, uint8_t r, uint8_t g, uint8_t b)
{
    if (x >= 0 && x < DEMO_US_COLUMNS && y >= 0 && y < DEMO_US_ROWS) {
        uint8_t *p = img + ((size_t)y * DEMO_US_COLUMNS + x) * 3;
        p[0] = r;
        p[1] = g;
        p[2] = b;
    }
}

/* Renders frame `f` into `img` (RGB, interleaved); `fixed` and `moving` are speckle layers. */
static void
us_frame(uint8_t *img, int f, const float *fixed, const float *moving)
{
    const int w = DEMO_US_COLUMNS, hgt = DEMO_US_ROWS;
    us_heart h = us_heart_at(f);
    double phase = 2.0 * M_PI * (double)(f % DEMO_US_FRAME_RATE) / DEMO_US_FRAME_RATE;
    /* Flow through the valve: towards the probe (red) in diastole, a blue regurgitant jet away
     * from it in systole. */
    double flow = -sin(phase);

    memset(img, 0, (size_t)w * hgt * 3);
    for (int y = 0; y < hgt; y++) {
        for (int x = 0; x < w; x++) {
            double dx = x + 0.5 - US_APEX_X, dy = y + 0.5 - US_APEX_Y;
            double r = hypot(dx, dy), th = atan2(dx, dy);
            if (r < 6.0 || r > US_DEPTH || fabs(th) > US_HALF_ANGLE) {
                continue;
            }
            int blood;
            double e = us_echo(&h, x + 0.5, y + 0.5, &blood);
            if (r < 40.0) {
                e = 0.55 + 0.15 * sin(r / 3.0); /* chest wall layers */
            }
            e *= 1.0 - 0.35 * r / US_DEPTH;

            double grey = 255.0 * e * us_speckle(fixed, moving, r, th);
            uint8_t g8 = (uint8_t)(grey > 255.0 ? 255.0 : grey);
            uint8_t rgb[3] = {g8, g8, g8};

            int in_box = r >= US_BOX_R0 && r <= US_BOX_R1 && fabs(th) <= US_BOX_T;
            if (in_box && blood) {
                double prof =
                    exp(-pow((x - 322.0) / 30.0, 2.0)) * exp(-pow((y - 300.0) / 70.0, 2.0));
                uint64_t st = hash3((uint64_t)x, (uint64_t)y, 100 + (uint64_t)f);
                double vel = flow * prof * (0.85 + 0.3 * (rng_unit(&st) - 0.5));
                double m = fabs(vel);
                if (m > 0.12) {
                    uint8_t hi = (uint8_t)(255.0 * (0.35 + 0.65 * (m > 1.0 ? 1.0 : m)));
                    uint8_t alias = (uint8_t)(m > 0.8 ? 255.0 * (m - 0.8) * 3.0 : 0.0);
                    if (vel > 0.0) {
                        rgb[0] = hi;
                        rgb[1] = alias;
                        rgb[2] = 0;
                    } else {
                        rgb[0] = 0;
                        rgb[1] = alias;
                        rgb[2] = hi;
                    }
                }
            }
            uint8_t *p = img + ((size_t)y * w + x) * 3;
            p[0] = rgb[0];
            p[1] = rgb[1];
            p[2] = rgb[2];
        }
    }

    /* Outline of the colour box: its two radial edges and two arcs. */
    for (double t = -US_BOX_T; t <= US_BOX_T; t += 0.002) {
        for (int k = 0; k < 2; k++) {
            double rr = k ? US_BOX_R1 : US_BOX_R0;
            us_set(img, (int)(US_APEX_X + rr * sin(t)), (int)(US_APEX_Y + rr * cos(t)), 200, 200,
                   200);
        }
    }
    for (double rr = US_BOX_R0; rr <= US_BOX_R1; rr += 0.5) {
        for (int k = -1; k <= 1; k += 2) {
            us_set(img, (int)(US_APEX_X + rr * sin(k * US_BOX_T)),
                   (int)(US_APEX_Y + rr * cos(k * US_BOX_T)), 200, 200, 200);
        }
    }
    /* Colour scale: red (towards) on top, blue (away) below. */
    for (int y = 60; y < 220; y++) {
        double v = (140.0 - y) / 80.0;
        uint8_t m = (uint8_t)(255.0 * fabs(v));
        for (int x = 612; x < 622; x++) {
            us_set(img, x, y, v > 0 ? m : 0, 0, v < 0 ? m : 0);
        }
    }
    /* Depth marks every 50 pixels along the right edge of the sector. */
    for (int k = 1; k * 50.0 <= US_DEPTH; k++) {
        double rr = k * 50.0;
        int mx = (int)(US_APEX_X + rr * sin(US_HALF_ANGLE)) + 6;
        int my = (int)(US_APEX_Y + rr * cos(US_HALF_ANGLE));
        for (int d = 0; d < 9; d++) {
            us_set(img, mx + d % 3, my + d / 3, 230, 230, 230);
        }
    }
    /* ECG trace over the last two seconds, with the current moment marked. */
    const int x0 = 40, x1 = 600, base = 452;
    double now = (double)f / DEMO_US_FRAME_RATE;
    int prev = -1;
    for (int x = x0; x < x1; x++) {
        double t = now - 2.0 + 2.0 * (x - x0) / (double)(x1 - x0);
        int y = base - (int)lrint(18.0 * us_ecg(t + 2.0));
        int lo = prev < 0 ? y : (prev < y ? prev : y), hi = prev < 0 ? y : (prev > y ? prev : y);
        for (int yy = lo; yy <= hi; yy++) {
            us_set(img, x, yy, 40, 220, 60);
        }
        prev = y;
    }
    for (int y = base - 24; y <= base + 8; y++) {
        us_set(img, x1, y, 250, 220, 0);
    }
}

int
demo_us_cine(const char *dir, int n_frames, demo_summary *sum, tsr_err *err)
{
    int rc = TSR_OK;
    const int w = DEMO_US_COLUMNS, hgt = DEMO_US_ROWS;
    uint8_t *pixels = NULL;
    float *fixed = NULL, *moving = NULL;
    demo_ds *ds = NULL;
    demo_summary local;
    study_def s = {
        .accession = "DEMOUS0001",
        .study_desc = "Tessera demo US",
        .series_desc = "Phantom cardiac cine, colour Doppler",
        .modality = "US",
        .body_part = "HEART",
        .time = "111000",
        .sop_class = SOP_US,
    };

    if (n_frames == 0) {
        n_frames = DEMO_US_FRAMES_DEFAULT;
    }
    if (n_frames < 1 || n_frames > DEMO_US_FRAMES_MAX) {
        rc = tsr_err_set(err, TSR_EINVAL, "US frame count must be 1..%d (got %d)",
                         DEMO_US_FRAMES_MAX, n_frames);
        goto done;
    }
    rc = demo_mkdirs(dir, err);
    if (rc != TSR_OK) {
        goto done;
    }
    snprintf(s.key, sizeof s.key, "us-%d", n_frames);
    study_uids(&s);
    summary_init(&local, &s, "us", "US phantom: beating heart cine, RGB colour Doppler", w, hgt);

    size_t frame_bytes = (size_t)w * hgt * 3;
    pixels = malloc(frame_bytes * (size_t)n_frames);
    fixed = malloc(2 * US_NODES * sizeof *fixed);
    moving = malloc(2 * US_NODES * sizeof *moving);
    if (!pixels || !fixed || !moving) {
        rc = tsr_err_set(err, TSR_ENOMEM, "out of memory for %d ultrasound frames", n_frames);
        goto done;
    }
    us_speckle_layer(fixed, 0);
    for (int f = 0; f < n_frames; f++) {
        us_speckle_layer(moving, 1 + (uint64_t)f);
        us_frame(pixels + frame_bytes * (size_t)f, f, fixed, moving);
    }

    rc = demo_ds_create(&ds, err);
    if (rc != TSR_OK) {
        goto done;
    }
    put_common(ds, &s, 1);
    demo_ds_put_str(ds, T_IMAGE_TYPE, "CS", "ORIGINAL\\PRIMARY");
    demo_ds_put_is(ds, T_RECOMMENDED_RATE, DEMO_US_FRAME_RATE);
    demo_ds_put_is(ds, T_CINE_RATE, DEMO_US_FRAME_RATE);
    demo_ds_put_ds(ds, T_FRAME_TIME, (const double[]){1000.0 / DEMO_US_FRAME_RATE}, 1);
    demo_ds_put_is(ds, T_HEART_RATE, 60);
    demo_ds_put_str(ds, T_PATIENT_ORIENTATION, "CS", "");
    put_pixel_format(ds, hgt, w, 3, "RGB", 8, 8, 0);
    demo_ds_put_is(ds, T_FRAMES, n_frames);
    demo_ds_put_at(ds, T_FRAME_POINTER, T_FRAME_TIME);
    demo_ds_put_bytes_owned(ds, T_PIXEL_DATA, "OB", pixels, frame_bytes * (size_t)n_frames);
    pixels = NULL; /* consumed */
    rc = write_instance(ds, dir, "US_0001.dcm", &local, err);
    if (rc != TSR_OK) {
        goto done;
    }
    local.frames = (uint32_t)n_frames;
    if (sum) {
        *sum = local;
    }

done:
    demo_ds_free(ds);
    free(moving);
    free(fixed);
    free(pixels);
    return rc;
}

/* ---------------------------------------------------------------- all */

int
demo_all(const char *dir, const demo_opts *opts, demo_summary out[DEMO_N_STUDIES], tsr_err *err)
{
    int rc = TSR_OK;
    demo_opts o = {0};
    demo_summary got[DEMO_N_STUDIES];
    char path[PATH_CAP];

    if (opts) {
        o = *opts;
    }
    rc = demo_mkdirs(dir, err);
    if (rc != TSR_OK) {
        goto done;
    }
    rc = join_path(path, dir, "ct", err);
    if (rc == TSR_OK) {
        rc = demo_ct_series(path, o.ct_slices, &got[0], err);
    }
    if (rc != TSR_OK) {
        rc = tsr_err_prefix(err, rc, "ct: ");
        goto done;
    }
    rc = join_path(path, dir, "cr", err);
    if (rc == TSR_OK) {
        rc = demo_cr_mono1(path, &got[1], err);
    }
    if (rc != TSR_OK) {
        rc = tsr_err_prefix(err, rc, "cr: ");
        goto done;
    }
    rc = join_path(path, dir, "us", err);
    if (rc == TSR_OK) {
        rc = demo_us_cine(path, o.us_frames, &got[2], err);
    }
    if (rc != TSR_OK) {
        rc = tsr_err_prefix(err, rc, "us: ");
        goto done;
    }
    if (out) {
        memcpy(out, got, sizeof got);
    }

done:
    return rc;
}
