/* SPDX-License-Identifier: MIT */
/* test_demo.c: the demo DICOM writer and phantom generators (cli/demo.h). Every generated file
 * is read back through the real decoder (rnd_dicom_open / rnd_dicom_decode_frame) and checked
 * for its attributes and for pixel values at points whose content is known from the phantom
 * geometry. Each case works in its own mkdtemp folder, removed by the teardown even when the
 * case fails. */
#define _XOPEN_SOURCE 700
#include "tsr_test.h"

#include "demo.h"
#include "rnd.h"

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

typedef struct fixture {
    char dir[256];
} fixture;

static int
setup_tmpdir(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) {
        return -1;
    }
    if (tsr_test_tmpdir(fx->dir, sizeof fx->dir, "demo") != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int
teardown_tmpdir(void **state)
{
    fixture *fx = *state;
    int rc = tsr_test_rmtree(fx->dir);
    free(fx);
    return rc == 0 ? 0 : -1;
}

/* Formats dir/sub/name (or dir/name when sub is NULL) into `buf` and returns it. */
static const char *
path3(char *buf, size_t cap, const char *dir, const char *sub, const char *name)
{
    int n = sub ? snprintf(buf, cap, "%s/%s/%s", dir, sub, name)
                : snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) {
        fail_msg("path too long: %s/%s", dir, name);
    }
    return buf;
}

static uint8_t *
read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static rnd_dicom *
open_dicom(const char *path)
{
    rnd_dicom *d = NULL;
    tsr_err err = {0};
    int rc = rnd_dicom_open(path, NULL, &d, &err);
    if (rc != TSR_OK) {
        fail_msg("rnd_dicom_open(%s): %s", path, err.msg);
    }
    return d;
}

static rnd_frame *
decode(rnd_dicom *d, uint32_t index)
{
    rnd_frame *f = NULL;
    tsr_err err = {0};
    int rc = rnd_dicom_decode_frame(d, index, &f, &err);
    if (rc != TSR_OK) {
        fail_msg("rnd_dicom_decode_frame(%u): %s", (unsigned)index, err.msg);
    }
    return f;
}

/* Sample `s` of pixel (row, col) of a decoded integer frame. */
static long
px(const rnd_frame *f, uint32_t row, uint32_t col, int s)
{
    size_t i = ((size_t)row * f->width + col) * f->samples + (size_t)s;
    switch (f->type) {
    case RND_T_U8:
        return ((const uint8_t *)f->data)[i];
    case RND_T_S16:
        return ((const int16_t *)f->data)[i];
    case RND_T_U16:
        return ((const uint16_t *)f->data)[i];
    default:
        fail_msg("unexpected frame type %d", (int)f->type);
    }
    return 0;
}

/* The CT pixel (row, col) holding patient point (x, y) of a slice, from the file's geometry. */
static void
ct_pixel_of(const rnd_info *info, double x, double y, uint32_t *row, uint32_t *col)
{
    *col = (uint32_t)lrint((x - info->position[0]) / info->pixel_spacing[1]);
    *row = (uint32_t)lrint((y - info->position[1]) / info->pixel_spacing[0]);
    assert_true(*col < info->columns && *row < info->rows);
}

/* The HU value of (x, y) in decoded CT slice `f`, after the file's rescale. */
static double
ct_hu_at(const rnd_info *info, const rnd_frame *f, double x, double y)
{
    uint32_t r, c;
    ct_pixel_of(info, x, y, &r, &c);
    return (double)px(f, r, c, 0) * info->rescale_slope + info->rescale_intercept;
}

static void
assert_uid_ok(const char *uid)
{
    if (!demo_uid_valid(uid)) {
        fail_msg("invalid UID '%s'", uid);
    }
    assert_true(strlen(uid) <= 64);
    assert_true(strncmp(uid, "2.25.", 5) == 0);
}

static uint16_t
rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t
rd32(const uint8_t *p)
{
    return (uint32_t)rd16(p) | ((uint32_t)rd16(p + 2) << 16);
}

static int
is_long_form(const uint8_t *vr)
{
    static const char *const k_long[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                                         "SV", "UC", "UN", "UR", "UT", "UV"};
    for (size_t i = 0; i < sizeof k_long / sizeof k_long[0]; i++) {
        if (memcmp(vr, k_long[i], 2) == 0) {
            return 1;
        }
    }
    return 0;
}

/* A raw element of a Part 10 file, found by walking it independently of the decoder. */
typedef struct raw_elem {
    uint32_t tag;
    char vr[3];
    uint32_t len;
    size_t header_len;
    const uint8_t *value;
} raw_elem;

/* Walks an explicit VR LE Part 10 file and checks its framing: preamble, magic, tags strictly
 * ascending, even lengths, the right length form per VR, elements exactly filling the file,
 * and the group length matching group 0002. Returns the number of elements (stored in out). */
static size_t
walk_part10(const uint8_t *buf, size_t len, raw_elem *out, size_t cap)
{
    assert_true(len > 132);
    for (int i = 0; i < 128; i++) {
        assert_int_equal(buf[i], 0);
    }
    assert_memory_equal(buf + 128, "DICM", 4);
    size_t o = 132, n = 0, meta_end = 0;
    uint32_t prev = 0, group_len = 0;
    while (o < len) {
        assert_true(o + 8 <= len);
        raw_elem e;
        e.tag = ((uint32_t)rd16(buf + o) << 16) | rd16(buf + o + 2);
        e.vr[0] = (char)buf[o + 4];
        e.vr[1] = (char)buf[o + 5];
        e.vr[2] = '\0';
        if (is_long_form(buf + o + 4)) {
            assert_int_equal(rd16(buf + o + 6), 0);
            e.len = rd32(buf + o + 8);
            e.header_len = 12;
        } else {
            e.len = rd16(buf + o + 6);
            e.header_len = 8;
        }
        e.value = buf + o + e.header_len;
        if (n > 0 && e.tag <= prev) {
            fail_msg("tag (%04X,%04X) after (%04X,%04X)", (unsigned)(e.tag >> 16),
                     (unsigned)(e.tag & 0xFFFF), (unsigned)(prev >> 16), (unsigned)(prev & 0xFFFF));
        }
        assert_int_equal(e.len % 2, 0);
        assert_true(o + e.header_len + e.len <= len);
        if (e.tag == 0x00020000) {
            assert_string_equal(e.vr, "UL");
            group_len = rd32(e.value);
            meta_end = o + e.header_len + e.len + group_len;
        }
        prev = e.tag;
        o += e.header_len + e.len;
        if ((e.tag >> 16) == 0x0002) {
            assert_true(o <= meta_end);
            if (o < meta_end) {
                assert_int_equal(rd16(buf + o), 0x0002); /* the group goes on exactly */
            }
        }
        if (n < cap) {
            out[n] = e;
        }
        n++;
    }
    assert_int_equal(o, len);
    assert_true(group_len > 0);
    return n;
}

static const raw_elem *
find_raw(const raw_elem *e, size_t n, uint32_t tag)
{
    for (size_t i = 0; i < n; i++) {
        if (e[i].tag == tag) {
            return &e[i];
        }
    }
    fail_msg("element (%04X,%04X) missing", (unsigned)(tag >> 16), (unsigned)(tag & 0xFFFF));
    return NULL;
}

/* The unpadded string value of a raw element, in `out`. */
static const char *
raw_str(const raw_elem *e, char *out, size_t cap)
{
    size_t n = e->len < cap - 1 ? e->len : cap - 1;
    memcpy(out, e->value, n);
    while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\0')) {
        n--;
    }
    out[n] = '\0';
    return out;
}

/* ---------------------------------------------------------------- UIDs */

static void
test_uid_from_name(void **state)
{
    (void)state;
    char a[DEMO_UID_MAX + 1], b[DEMO_UID_MAX + 1], c[DEMO_UID_MAX + 1];

    /* FNV-1a 128 of "a" is 0xd228cb696f1a8caf78912b704e4a8964 (the published test vector); with
     * the version nibble set to 8 and the variant to 10 it is UUID
     * d228cb69-6f1a-8caf-b891-2b704e4a8964, whose decimal value is below. */
    demo_uid_from_name("a", a);
    assert_string_equal(a, "2.25.279349696671665264236058767698613143908");
    /* The empty name gives the offset basis, likewise adjusted. */
    demo_uid_from_name("", a);
    assert_string_equal(a, "2.25.144066263297770420064017123000077108621");

    demo_uid_from_name("tessera-demo/ct-120/1/1", a);
    demo_uid_from_name("tessera-demo/ct-120/1/1", b);
    demo_uid_from_name("tessera-demo/ct-120/1/2", c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_uid_ok(a);
    assert_uid_ok(c);
}

static void
test_uid_valid(void **state)
{
    (void)state;
    assert_true(demo_uid_valid("1.2.840.10008.1.2.1"));
    assert_true(demo_uid_valid("0.1.2"));
    assert_true(demo_uid_valid("2.25.0"));
    assert_false(demo_uid_valid(NULL));
    assert_false(demo_uid_valid(""));
    assert_false(demo_uid_valid("1.02"));
    assert_false(demo_uid_valid("1..2"));
    assert_false(demo_uid_valid(".1"));
    assert_false(demo_uid_valid("1."));
    assert_false(demo_uid_valid("1.2a"));
    assert_false(demo_uid_valid("1.2 "));
    char longest[66];
    memset(longest, '1', 64);
    longest[64] = '\0';
    assert_true(demo_uid_valid(longest));
    longest[64] = '1';
    longest[65] = '\0';
    assert_false(demo_uid_valid(longest));
}

/* ---------------------------------------------------------------- writer */

static void
test_writer_layout(void **state)
{
    fixture *fx = *state;
    demo_ds *ds = NULL;
    tsr_err err = {0};
    char path[512];
    path3(path, sizeof path, fx->dir, NULL, "w.dcm");

    assert_int_equal(demo_ds_create(&ds, &err), TSR_OK);
    /* Put out of order, and replace one value, to see sorting and replacement. */
    const uint8_t odd_bytes[3] = {1, 2, 3};
    assert_int_equal(demo_ds_put_bytes(ds, DEMO_TAG(0x0009, 0x1001), "OB", odd_bytes, 3), TSR_OK);
    assert_int_equal(demo_ds_put_str(ds, DEMO_TAG(0x0010, 0x0010), "PN", "Odd^Name"), TSR_OK);
    assert_int_equal(demo_ds_put_str(ds, DEMO_TAG(0x0010, 0x0010), "PN", "Odd^Nam"), TSR_OK);
    assert_int_equal(demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x0018), "UI", "1.2.3.4.5"), TSR_OK);
    assert_int_equal(
        demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x0016), "UI", "1.2.840.10008.5.1.4.1.1.7"), TSR_OK);
    assert_int_equal(demo_ds_put_str(ds, DEMO_TAG(0x0020, 0x4000), "LT", "a\\b\r\nc"), TSR_OK);
    assert_int_equal(demo_ds_put_str(ds, DEMO_TAG(0x0040, 0xA160), "UT", "long text"), TSR_OK);
    assert_int_equal(demo_ds_put_ds(ds, DEMO_TAG(0x0028, 0x0030), (const double[]){0.1, -1e-7}, 2),
                     TSR_OK);
    assert_int_equal(demo_ds_put_is(ds, DEMO_TAG(0x0020, 0x0013), -7), TSR_OK);
    assert_int_equal(demo_ds_put_us(ds, DEMO_TAG(0x0028, 0x0010), 0x1234), TSR_OK);
    assert_int_equal(demo_ds_put_ul(ds, DEMO_TAG(0x0018, 0x9999), 0xA1B2C3D4u), TSR_OK);
    assert_int_equal(demo_ds_put_at(ds, DEMO_TAG(0x0028, 0x0009), DEMO_TAG(0x0018, 0x1063)),
                     TSR_OK);
    const uint16_t words[2] = {0x0102, 0xFFFE};
    assert_int_equal(demo_ds_put_words(ds, DEMO_TAG(0x7FE0, 0x0010), words, 2), TSR_OK);
    assert_int_equal(demo_ds_write(ds, path, &err), TSR_OK);
    demo_ds_free(ds);

    size_t len;
    uint8_t *buf = read_all(path, &len);
    raw_elem e[64];
    size_t n = walk_part10(buf, len, e, 64);
    assert_int_equal(n, 7 + 12); /* meta + dataset, the replaced name counted once */
    char s[128];

    /* File meta information. */
    assert_int_equal(e[0].tag, 0x00020000);
    const raw_elem *v = find_raw(e, n, 0x00020001);
    assert_string_equal(v->vr, "OB");
    assert_int_equal(v->len, 2);
    assert_int_equal(v->value[0], 0);
    assert_int_equal(v->value[1], 1);
    assert_string_equal(raw_str(find_raw(e, n, 0x00020002), s, sizeof s),
                        "1.2.840.10008.5.1.4.1.1.7");
    v = find_raw(e, n, 0x00020003);
    assert_int_equal(v->len, 10); /* "1.2.3.4.5" + NUL pad */
    assert_int_equal(v->value[9], '\0');
    assert_string_equal(raw_str(find_raw(e, n, 0x00020010), s, sizeof s), "1.2.840.10008.1.2.1");
    assert_uid_ok(raw_str(find_raw(e, n, 0x00020012), s, sizeof s));
    v = find_raw(e, n, 0x00020013);
    assert_string_equal(v->vr, "SH");
    assert_int_equal(v->len, 12);
    assert_memory_equal(v->value, "TESSERA_0.1 ", 12);

    /* Dataset: padding and length forms. */
    v = find_raw(e, n, 0x00091001);
    assert_string_equal(v->vr, "OB");
    assert_int_equal(v->header_len, 12);
    assert_int_equal(v->len, 4);
    assert_int_equal(v->value[3], 0);
    v = find_raw(e, n, 0x00100010);
    assert_int_equal(v->header_len, 8);
    assert_int_equal(v->len, 8);
    assert_memory_equal(v->value, "Odd^Nam ", 8);
    v = find_raw(e, n, 0x00204000);
    assert_int_equal(v->header_len, 8);
    assert_memory_equal(v->value, "a\\b\r\nc", 6);
    v = find_raw(e, n, 0x0040A160);
    assert_string_equal(v->vr, "UT");
    assert_int_equal(v->header_len, 12);
    assert_int_equal(v->len, 10);
    assert_string_equal(raw_str(find_raw(e, n, 0x00280030), s, sizeof s), "0.1\\-1e-07");
    assert_string_equal(raw_str(find_raw(e, n, 0x00200013), s, sizeof s), "-7");
    v = find_raw(e, n, 0x00280010);
    assert_string_equal(v->vr, "US");
    assert_int_equal(rd16(v->value), 0x1234);
    v = find_raw(e, n, 0x00189999);
    assert_string_equal(v->vr, "UL");
    assert_int_equal(v->header_len, 8);
    assert_int_equal(rd32(v->value), 0xA1B2C3D4u);
    v = find_raw(e, n, 0x00280009);
    assert_string_equal(v->vr, "AT");
    assert_int_equal(rd16(v->value), 0x0018);
    assert_int_equal(rd16(v->value + 2), 0x1063);
    v = find_raw(e, n, 0x7FE00010);
    assert_string_equal(v->vr, "OW");
    assert_int_equal(v->header_len, 12);
    assert_int_equal(v->len, 4);
    assert_int_equal(rd16(v->value), 0x0102);
    assert_int_equal(rd16(v->value + 2), 0xFFFE);
    free(buf);

    /* No temporary file is left next to the result. */
    char tmp_probe[600];
    snprintf(tmp_probe, sizeof tmp_probe, "ls %s | grep -q tmp-", fx->dir);
    assert_int_not_equal(system(tmp_probe), 0);
}

static void
test_writer_errors(void **state)
{
    fixture *fx = *state;
    demo_ds *ds = NULL;
    tsr_err err = {0};
    char path[512];
    path3(path, sizeof path, fx->dir, NULL, "bad.dcm");

    /* Sticky errors: the first failure is kept and reported by demo_ds_write. */
    assert_int_equal(demo_ds_create(&ds, &err), TSR_OK);
    assert_int_equal(demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x0016), "UI", "1.2.03"), TSR_EINVAL);
    assert_int_equal(demo_ds_put_str(ds, DEMO_TAG(0x0010, 0x0010), "PN", "Fine"), TSR_EINVAL);
    assert_int_equal(demo_ds_write(ds, path, &err), TSR_EINVAL);
    assert_int_equal(err.code, TSR_EINVAL);
    assert_non_null(strstr(err.msg, "(0008,0016)"));
    assert_int_equal(demo_ds_write(ds, path, NULL), TSR_EINVAL);
    demo_ds_free(ds);
    assert_int_not_equal(access(path, F_OK), 0);

    /* Each kind of bad put, on a fresh dataset. */
    const char *too_long_cs = "ABCDEFGHIJKLMNOPQ"; /* 17 > 16 */
    assert_int_equal(demo_ds_create(&ds, NULL), TSR_OK);
    assert_int_equal(demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x0060), "CS", too_long_cs), TSR_EINVAL);
    demo_ds_free(ds);
    assert_int_equal(demo_ds_create(&ds, NULL), TSR_OK);
    assert_int_equal(demo_ds_put_str(ds, DEMO_TAG(0x0002, 0x0010), "UI", "1.2"), TSR_EINVAL);
    demo_ds_free(ds);
    assert_int_equal(demo_ds_create(&ds, NULL), TSR_OK);
    assert_int_equal(demo_ds_put_str(ds, DEMO_TAG(0x0010, 0x0010), "XX", "a"), TSR_EINVAL);
    demo_ds_free(ds);
    assert_int_equal(demo_ds_create(&ds, NULL), TSR_OK);
    assert_int_equal(demo_ds_put_str(ds, DEMO_TAG(0x0010, 0x0010), "LO", "tab\there"), TSR_EINVAL);
    demo_ds_free(ds);
    assert_int_equal(demo_ds_create(&ds, NULL), TSR_OK);
    assert_int_equal(demo_ds_put_ds(ds, DEMO_TAG(0x0028, 0x0030), (const double[]){NAN}, 1),
                     TSR_EINVAL);
    demo_ds_free(ds);
    assert_int_equal(demo_ds_create(&ds, NULL), TSR_OK);
    assert_int_equal(demo_ds_put_bytes(ds, DEMO_TAG(0x7FE0, 0x0010), "US", "ab", 2), TSR_EINVAL);
    demo_ds_free(ds);
    /* A 2-byte length VR cannot hold more than 65534 bytes. */
    char *big = malloc(70000);
    assert_non_null(big);
    memset(big, 'x', 69999);
    big[69999] = '\0';
    assert_int_equal(demo_ds_create(&ds, NULL), TSR_OK);
    assert_int_equal(demo_ds_put_str(ds, DEMO_TAG(0x0020, 0x4000), "LT", big), TSR_EINVAL);
    demo_ds_free(ds);
    assert_int_equal(demo_ds_create(&ds, NULL), TSR_OK);
    assert_int_equal(demo_ds_put_str(ds, DEMO_TAG(0x0040, 0xA160), "UT", big), TSR_OK);
    demo_ds_free(ds);
    free(big);

    /* SOPClassUID / SOPInstanceUID are needed for the meta header. */
    assert_int_equal(demo_ds_create(&ds, NULL), TSR_OK);
    assert_int_equal(demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x0016), "UI", "1.2.3"), TSR_OK);
    memset(&err, 0, sizeof err);
    assert_int_equal(demo_ds_write(ds, path, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "SOPInstanceUID"));

    /* An unwritable location: nothing is created, the message names the file. */
    assert_int_equal(demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x0018), "UI", "1.2.3.4"), TSR_OK);
    char nowhere[600];
    snprintf(nowhere, sizeof nowhere, "%s/no/such/dir/x.dcm", fx->dir);
    memset(&err, 0, sizeof err);
    assert_int_equal(demo_ds_write(ds, nowhere, &err), TSR_EIO);
    assert_int_equal(err.code, TSR_EIO);
    assert_non_null(strstr(err.msg, "x.dcm"));
    assert_int_equal(demo_ds_write(ds, nowhere, NULL), TSR_EIO);
    assert_int_equal(demo_ds_write(ds, path, &err), TSR_OK);
    demo_ds_free(ds);
    demo_ds_free(NULL);
}

/* ---------------------------------------------------------------- CT */

static void
test_ct_attributes(void **state)
{
    fixture *fx = *state;
    tsr_err err = {0};
    demo_summary sum;
    char path[512];
    assert_int_equal(demo_ct_series(fx->dir, 4, &sum, &err), TSR_OK);
    assert_int_equal(sum.files, 4);
    assert_int_equal(sum.frames, 4);
    assert_int_equal(sum.columns, 512);
    assert_string_equal(sum.modality, "CT");
    assert_true(sum.bytes > 4u * 512 * 512 * 2);

    rnd_dicom *d = open_dicom(path3(path, sizeof path, fx->dir, NULL, "CT_0002.dcm"));
    const rnd_info *info = rnd_dicom_info(d);
    assert_string_equal(info->transfer_syntax, "1.2.840.10008.1.2.1");
    assert_string_equal(info->sop_class_uid, "1.2.840.10008.5.1.4.1.1.2");
    assert_string_equal(info->modality, "CT");
    assert_int_equal(info->rows, 512);
    assert_int_equal(info->columns, 512);
    assert_int_equal(info->frames, 1);
    assert_int_equal(info->samples_per_pixel, 1);
    assert_int_equal(info->photometric, RND_PI_MONOCHROME2);
    assert_int_equal(info->bits_allocated, 16);
    assert_int_equal(info->bits_stored, 16);
    assert_int_equal(info->high_bit, 15);
    assert_int_equal(info->pixel_representation, 1);
    assert_true(info->has_rescale);
    assert_true(info->rescale_intercept == -1024.0);
    assert_true(info->rescale_slope == 1.0);
    assert_int_equal(info->n_windows, 2);
    assert_true(info->windows[0].center == 40.0 && info->windows[0].width == 400.0);
    assert_true(info->windows[1].center == 600.0 && info->windows[1].width == 2000.0);
    assert_true(info->has_pixel_spacing);
    assert_true(info->pixel_spacing[0] == 0.7 && info->pixel_spacing[1] == 0.7);
    assert_true(info->has_orientation);
    const double iop[6] = {1, 0, 0, 0, 1, 0};
    for (int i = 0; i < 6; i++) {
        assert_true(info->orientation[i] == iop[i]);
    }
    assert_uid_ok(info->sop_instance_uid);

    rnd_frame *f = decode(d, 0);
    assert_int_equal(f->type, RND_T_S16);
    assert_true(f->is_signed);
    rnd_frame_free(f);
    rnd_dicom_close(d);
}

static void
test_ct_geometry(void **state)
{
    fixture *fx = *state;
    tsr_err err = {0};
    char path[512], name[32];
    const int n = 6;
    assert_int_equal(demo_ct_series(fx->dir, n, NULL, &err), TSR_OK);
    double prev_z = 0;
    for (int k = 0; k < n; k++) {
        snprintf(name, sizeof name, "CT_%04d.dcm", k + 1);
        rnd_dicom *d = open_dicom(path3(path, sizeof path, fx->dir, NULL, name));
        const rnd_info *info = rnd_dicom_info(d);
        assert_true(info->has_position);
        /* Centred on the z axis: the middle of the first pixel is -(511 / 2) * 0.7. */
        assert_true(fabs(info->position[0] - -178.85) < 1e-9);
        assert_true(fabs(info->position[1] - -178.85) < 1e-9);
        /* Slices centred on z = 0, 2.5 mm apart, ascending with the instance number. */
        assert_true(fabs(info->position[2] - (k - (n - 1) / 2.0) * 2.5) < 1e-9);
        if (k > 0) {
            assert_true(fabs(info->position[2] - prev_z - DEMO_CT_THICKNESS) < 1e-9);
        }
        prev_z = info->position[2];
        rnd_dicom_close(d);
    }
    char extra[512];
    path3(extra, sizeof extra, fx->dir, NULL, "CT_0007.dcm");
    assert_int_not_equal(access(extra, F_OK), 0);
}

/* Every pixel of a slice is the phantom's value at the pixel centre plus noise of at most 10 HU;
 * then spot checks of known tissues with their expected ranges. Uses the default 120 slices so
 * that the liver lesion (z = -150..-130) is covered. */
static void
test_ct_pixels(void **state)
{
    fixture *fx = *state;
    tsr_err err = {0};
    char path[512], name[32];
    uint64_t t0 = tsr_now_ns();
    assert_int_equal(demo_ct_series(fx->dir, 0, NULL, &err), TSR_OK);
    double secs = (double)(tsr_now_ns() - t0) / 1e9;
    print_message("120-slice CT generated in %.2f s\n", secs);

    const int slices[] = {1, 4, 30, 60, 100, 120};
    for (size_t s = 0; s < sizeof slices / sizeof slices[0]; s++) {
        snprintf(name, sizeof name, "CT_%04d.dcm", slices[s]);
        rnd_dicom *d = open_dicom(path3(path, sizeof path, fx->dir, NULL, name));
        const rnd_info *info = rnd_dicom_info(d);
        rnd_frame *f = decode(d, 0);
        double z = info->position[2];
        long bad = 0, sum_noise = 0;
        for (uint32_t r = 0; r < info->rows; r++) {
            double y = info->position[1] + r * info->pixel_spacing[0];
            for (uint32_t c = 0; c < info->columns; c++) {
                double x = info->position[0] + c * info->pixel_spacing[1];
                long expect = lrint(demo_ct_phantom_hu(x, y, z)) + 1024;
                long got = px(f, r, c, 0);
                sum_noise += got - expect;
                if (labs(got - expect) > DEMO_CT_NOISE_HU) {
                    bad++;
                }
            }
        }
        if (bad) {
            fail_msg("%s: %ld pixels differ from the phantom by more than %d HU", name, bad,
                     DEMO_CT_NOISE_HU);
        }
        /* The noise is centred: its mean over 262144 pixels is well under 0.1 HU. */
        assert_true(fabs((double)sum_noise / (512.0 * 512.0)) < 0.1);

        /* Air at the corner: stored value -1000 + 1024 = 24, give or take the noise. */
        long air = px(f, 3, 3, 0);
        assert_true(air >= 24 - DEMO_CT_NOISE_HU && air <= 24 + DEMO_CT_NOISE_HU);
        rnd_frame_free(f);
        rnd_dicom_close(d);
    }

    /* Known tissues at known points (x, y in mm), in HU after the file's rescale. */
    static const struct {
        int slice;
        double x, y;
        double lo, hi;
        const char *what;
    } spots[] = {
        {4, -55, -5, 50, 70, "liver (60)"},
        {4, -65, -10, 5, 25, "hypodense lesion (15)"},
        {4, 22, 30, 240, 260, "contrast aorta (250)"},
        {4, 0, 55, 290, 310, "vertebral marrow (300)"},
        {30, -70, 8, -860, -840, "lung (-850)"},
        {30, 18, -22, 35, 55, "heart (45)"},
        {30, -141, 0, -110, -90, "subcutaneous fat (-100)"},
        {100, 0, 0, 25, 45, "brain (35)"},
        /* z = 98.75: the outer table spans y = -79.98 .. -76.70 on the midline */
        {100, 0, -78.3, 990, 1010, "skull (1000)"},
        {60, 0, -20, -1010, -990, "trachea air (-1000)"},
    };
    for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
        snprintf(name, sizeof name, "CT_%04d.dcm", spots[i].slice);
        rnd_dicom *d = open_dicom(path3(path, sizeof path, fx->dir, NULL, name));
        const rnd_info *info = rnd_dicom_info(d);
        rnd_frame *f = decode(d, 0);
        double hu = ct_hu_at(info, f, spots[i].x, spots[i].y);
        if (hu < spots[i].lo || hu > spots[i].hi) {
            fail_msg("%s: slice %d (%g, %g): %g HU, expected %g..%g", spots[i].what, spots[i].slice,
                     spots[i].x, spots[i].y, hu, spots[i].lo, spots[i].hi);
        }
        rnd_frame_free(f);
        rnd_dicom_close(d);
    }
}

/* Two runs give byte-identical files; UIDs are valid, distinct per instance and shared per
 * series; another slice count is another study. */
static void
test_ct_deterministic(void **state)
{
    fixture *fx = *state;
    tsr_err err = {0};
    char a[512], b[512], c[512], path[512];
    demo_summary sa, sb, sc;
    path3(a, sizeof a, fx->dir, NULL, "run1");
    path3(b, sizeof b, fx->dir, NULL, "run2");
    path3(c, sizeof c, fx->dir, NULL, "other");
    assert_int_equal(demo_ct_series(a, 3, &sa, &err), TSR_OK);
    assert_int_equal(demo_ct_series(b, 3, &sb, &err), TSR_OK);
    assert_int_equal(demo_ct_series(c, 5, &sc, &err), TSR_OK);
    assert_string_equal(sa.study_uid, sb.study_uid);
    assert_string_equal(sa.series_uid, sb.series_uid);
    assert_string_not_equal(sa.study_uid, sc.study_uid);
    assert_string_not_equal(sa.study_uid, sa.series_uid);
    assert_uid_ok(sa.study_uid);
    assert_uid_ok(sa.series_uid);

    char uids[3][DEMO_UID_MAX + 1];
    for (int k = 1; k <= 3; k++) {
        char name[32];
        snprintf(name, sizeof name, "CT_%04d.dcm", k);
        size_t la, lb;
        uint8_t *fa = read_all(path3(path, sizeof path, a, NULL, name), &la);
        uint8_t *fb = read_all(path3(path, sizeof path, b, NULL, name), &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(fa, fb, la);

        raw_elem e[128];
        size_t n = walk_part10(fa, la, e, 128);
        char s[80];
        static const uint32_t uid_tags[] = {0x00020003, 0x00020012, 0x00080018,
                                            0x0020000D, 0x0020000E, 0x00200052};
        for (size_t t = 0; t < sizeof uid_tags / sizeof uid_tags[0]; t++) {
            assert_uid_ok(raw_str(find_raw(e, n, uid_tags[t]), s, sizeof s));
        }
        raw_str(find_raw(e, n, 0x00080018), uids[k - 1], sizeof uids[k - 1]);
        assert_string_equal(raw_str(find_raw(e, n, 0x00020003), s, sizeof s), uids[k - 1]);
        assert_string_equal(raw_str(find_raw(e, n, 0x0020000D), s, sizeof s), sa.study_uid);
        assert_string_equal(raw_str(find_raw(e, n, 0x0020000E), s, sizeof s), sa.series_uid);
        assert_string_equal(raw_str(find_raw(e, n, 0x00100010), s, sizeof s), "Demo^Phantom");
        assert_string_equal(raw_str(find_raw(e, n, 0x00100020), s, sizeof s), "TESSERA-DEMO-1");
        assert_string_equal(raw_str(find_raw(e, n, 0x00281055), s, sizeof s), "SOFT TISSUE\\BONE");
        assert_string_equal(raw_str(find_raw(e, n, 0x00185100), s, sizeof s), "HFS");
        free(fa);
        free(fb);
    }
    assert_string_not_equal(uids[0], uids[1]);
    assert_string_not_equal(uids[1], uids[2]);
}

/* ---------------------------------------------------------------- CR and US */

static void
test_cr_mono1(void **state)
{
    fixture *fx = *state;
    tsr_err err = {0};
    demo_summary sum;
    char path[512];
    assert_int_equal(demo_cr_mono1(fx->dir, &sum, &err), TSR_OK);
    assert_int_equal(sum.files, 1);
    assert_string_equal(sum.modality, "CR");

    rnd_dicom *d = open_dicom(path3(path, sizeof path, fx->dir, NULL, "CR_0001.dcm"));
    const rnd_info *info = rnd_dicom_info(d);
    assert_string_equal(info->sop_class_uid, "1.2.840.10008.5.1.4.1.1.1");
    assert_string_equal(info->modality, "CR");
    assert_int_equal(info->photometric, RND_PI_MONOCHROME1);
    assert_int_equal(info->columns, DEMO_CR_COLUMNS);
    assert_int_equal(info->rows, DEMO_CR_ROWS);
    assert_int_equal(info->bits_allocated, 16);
    assert_int_equal(info->bits_stored, 12);
    assert_int_equal(info->pixel_representation, 0);
    assert_true(info->has_pixel_spacing);
    assert_true(info->pixel_spacing[0] == 0.2 && info->pixel_spacing[1] == 0.2);
    assert_int_equal(info->n_windows, 1);

    rnd_frame *f = decode(d, 0);
    assert_int_equal(f->type, RND_T_U16);
    uint32_t cx = DEMO_CR_COLUMNS / 2, cy = DEMO_CR_ROWS / 2;
    long collimated = px(f, 5, 5, 0);
    long air = px(f, 120, 100, 0); /* above the shoulder, inside the collimated field */
    long lung = px(f, cy - 100, cx - 400, 0);
    long spine = px(f, cy, cx, 0);
    long abdomen = px(f, DEMO_CR_ROWS - 150, cx - 300, 0);
    /* MONOCHROME1: more exposure = higher value = darker. */
    assert_true(collimated < 300);
    assert_true(air > 3600);
    assert_true(lung > abdomen + 800);
    assert_true(lung > spine + 800);
    assert_true(air > lung);
    for (uint32_t i = 0; i < f->width * f->height; i += 997) {
        assert_true(((const uint16_t *)f->data)[i] < 4096);
    }
    rnd_frame_free(f);
    rnd_dicom_close(d);
}

static void
test_us_cine(void **state)
{
    fixture *fx = *state;
    tsr_err err = {0};
    demo_summary sum;
    char path[512];
    const int n = 8;
    assert_int_equal(demo_us_cine(fx->dir, n, &sum, &err), TSR_OK);
    assert_int_equal(sum.frames, n);

    rnd_dicom *d = open_dicom(path3(path, sizeof path, fx->dir, NULL, "US_0001.dcm"));
    const rnd_info *info = rnd_dicom_info(d);
    assert_string_equal(info->sop_class_uid, "1.2.840.10008.5.1.4.1.1.3.1");
    assert_string_equal(info->modality, "US");
    assert_int_equal(info->frames, n);
    assert_int_equal(info->columns, 640);
    assert_int_equal(info->rows, 480);
    assert_int_equal(info->samples_per_pixel, 3);
    assert_int_equal(info->photometric, RND_PI_RGB);
    assert_int_equal(info->planar_configuration, 0);
    assert_int_equal(info->bits_allocated, 8);

    rnd_frame *f0 = decode(d, 0);
    rnd_frame *fm = decode(d, (uint32_t)n / 2);
    assert_int_equal(f0->samples, 3);
    assert_int_equal(f0->type, RND_T_U8);
    /* It moves: frame 1 and frame N/2 differ clearly inside the sector. */
    double diff = 0;
    long changed = 0, blue = 0, grey_sector = 0;
    for (uint32_t r = 0; r < 480; r++) {
        for (uint32_t c = 0; c < 640; c++) {
            int any = 0;
            for (int s = 0; s < 3; s++) {
                long dv = labs(px(f0, r, c, s) - px(fm, r, c, s));
                diff += (double)dv;
                any |= dv > 0;
            }
            changed += any;
            long R = px(fm, r, c, 0), G = px(fm, r, c, 1), B = px(fm, r, c, 2);
            blue += B > 120 && R < 40;
            grey_sector += R == G && G == B && R > 0;
        }
    }
    assert_true(changed > 20000);
    assert_true(diff / (640.0 * 480.0 * 3.0) > 2.0);
    /* Frame N/2 is in systole: the colour box shows flow away from the probe (blue). */
    assert_true(blue > 500);
    assert_true(grey_sector > 50000);
    /* Outside the sector (top-left corner) is black in every frame. */
    for (int s = 0; s < 3; s++) {
        assert_int_equal(px(f0, 2, 2, s), 0);
        assert_int_equal(px(fm, 2, 2, s), 0);
    }
    rnd_frame_free(f0);
    rnd_frame_free(fm);
    rnd_dicom_close(d);
}

/* ---------------------------------------------------------------- all, dcmdump, failures */

static void
test_demo_all(void **state)
{
    fixture *fx = *state;
    tsr_err err = {0};
    demo_summary sums[DEMO_N_STUDIES];
    char out[512], path[512];
    path3(out, sizeof out, fx->dir, NULL, "nested/out");
    demo_opts opts = {.ct_slices = 3, .us_frames = 4};
    assert_int_equal(demo_all(out, &opts, sums, &err), TSR_OK);
    assert_string_equal(sums[0].name, "ct");
    assert_int_equal(sums[0].files, 3);
    assert_string_equal(sums[1].name, "cr");
    assert_int_equal(sums[1].files, 1);
    assert_string_equal(sums[2].name, "us");
    assert_int_equal(sums[2].frames, 4);
    for (int i = 0; i < DEMO_N_STUDIES; i++) {
        assert_uid_ok(sums[i].study_uid);
        assert_true(sums[i].bytes > 0);
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(sums[i].study_uid, sums[j].study_uid);
        }
    }
    const char *files[][2] = {{"ct", "CT_0003.dcm"}, {"cr", "CR_0001.dcm"}, {"us", "US_0001.dcm"}};
    for (size_t i = 0; i < 3; i++) {
        rnd_dicom_close(open_dicom(path3(path, sizeof path, out, files[i][0], files[i][1])));
    }
    /* Same patient in all three studies. */
    assert_int_equal(demo_all(out, NULL, NULL, NULL), TSR_OK);
    path3(path, sizeof path, out, "ct", "CT_0120.dcm");
    assert_int_equal(access(path, F_OK), 0);
}

/* DCMTK's dcmdump, an independent parser, reads each file as Part 10 without complaint. */
static void
test_dcmdump_accepts(void **state)
{
    fixture *fx = *state;
    tsr_err err = {0};
    char cmd[1200], path[512];
    if (system("command -v dcmdump >/dev/null 2>&1") != 0) {
        skip();
    }
    demo_opts opts = {.ct_slices = 2, .us_frames = 2};
    assert_int_equal(demo_all(fx->dir, &opts, NULL, &err), TSR_OK);
    const char *files[][2] = {{"ct", "CT_0001.dcm"}, {"cr", "CR_0001.dcm"}, {"us", "US_0001.dcm"}};
    for (size_t i = 0; i < 3; i++) {
        path3(path, sizeof path, fx->dir, files[i][0], files[i][1]);
        /* +fo: must be a file with meta header; -M: skip loading pixel data; exit 0 = parsed. */
        snprintf(cmd, sizeof cmd, "dcmdump +fo -M -q '%s' >/dev/null 2>&1", path);
        assert_int_equal(system(cmd), 0);
    }
    /* And the check does fail on a damaged file (truncated in the middle of the dataset). */
    path3(path, sizeof path, fx->dir, "us", "US_0001.dcm");
    assert_int_equal(truncate(path, 900), 0);
    snprintf(cmd, sizeof cmd, "dcmdump +fo -M -q '%s' >/dev/null 2>&1", path);
    assert_int_not_equal(system(cmd), 0);
}

static void
test_unwritable_folder(void **state)
{
    fixture *fx = *state;
    char file[512], below[600];
    /* A regular file where a folder is needed: fails for every user, root included. */
    path3(file, sizeof file, fx->dir, NULL, "plain-file");
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(below, sizeof below, "%s/sub", file);

    tsr_err err = {0};
    assert_int_equal(demo_ct_series(below, 2, NULL, &err), TSR_EIO);
    assert_int_equal(err.code, TSR_EIO);
    assert_true(strlen(err.msg) > 0);
    assert_non_null(strstr(err.msg, "plain-file"));
    assert_int_equal(demo_ct_series(below, 2, NULL, NULL), TSR_EIO);

    memset(&err, 0, sizeof err);
    assert_int_equal(demo_cr_mono1(below, NULL, &err), TSR_EIO);
    assert_true(strlen(err.msg) > 0);
    assert_int_equal(demo_cr_mono1(below, NULL, NULL), TSR_EIO);

    memset(&err, 0, sizeof err);
    assert_int_equal(demo_us_cine(below, 2, NULL, &err), TSR_EIO);
    assert_true(strlen(err.msg) > 0);
    assert_int_equal(demo_us_cine(below, 2, NULL, NULL), TSR_EIO);

    demo_summary sums[DEMO_N_STUDIES];
    memset(sums, 0x5A, sizeof sums);
    memset(&err, 0, sizeof err);
    assert_int_equal(demo_all(below, NULL, sums, &err), TSR_EIO);
    assert_true(strlen(err.msg) > 0);
    assert_int_equal(demo_all(below, NULL, sums, NULL), TSR_EIO);
    assert_int_equal(sums[0].files, 0x5A5A5A5Au); /* not written on failure */

    /* demo_all names the study that failed: "ct" cannot be a folder when it is a file. */
    char out[512], ct[600];
    path3(out, sizeof out, fx->dir, NULL, "blocked");
    assert_int_equal(demo_mkdirs(out, NULL), TSR_OK);
    snprintf(ct, sizeof ct, "%s/ct", out);
    f = fopen(ct, "w");
    assert_non_null(f);
    fclose(f);
    memset(&err, 0, sizeof err);
    assert_int_equal(demo_all(out, NULL, NULL, &err), TSR_EIO);
    assert_true(strncmp(err.msg, "ct: ", 4) == 0);
}

static void
test_bad_counts(void **state)
{
    fixture *fx = *state;
    tsr_err err = {0};
    assert_int_equal(demo_ct_series(fx->dir, -1, NULL, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "-1"));
    assert_int_equal(demo_ct_series(fx->dir, DEMO_CT_SLICES_MAX + 1, NULL, NULL), TSR_EINVAL);
    memset(&err, 0, sizeof err);
    assert_int_equal(demo_us_cine(fx->dir, DEMO_US_FRAMES_MAX + 1, NULL, &err), TSR_EINVAL);
    assert_true(strlen(err.msg) > 0);
    demo_opts opts = {.ct_slices = -5};
    memset(&err, 0, sizeof err);
    assert_int_equal(demo_all(fx->dir, &opts, NULL, &err), TSR_EINVAL);
    assert_true(strncmp(err.msg, "ct: ", 4) == 0);
    /* Nothing was written for a refused count. */
    char path[512];
    path3(path, sizeof path, fx->dir, NULL, "CT_0001.dcm");
    assert_int_not_equal(access(path, F_OK), 0);
}

TSR_TEST_MAIN(cmocka_unit_test(test_uid_from_name), cmocka_unit_test(test_uid_valid),
              cmocka_unit_test_setup_teardown(test_writer_layout, setup_tmpdir, teardown_tmpdir),
              cmocka_unit_test_setup_teardown(test_writer_errors, setup_tmpdir, teardown_tmpdir),
              cmocka_unit_test_setup_teardown(test_ct_attributes, setup_tmpdir, teardown_tmpdir),
              cmocka_unit_test_setup_teardown(test_ct_geometry, setup_tmpdir, teardown_tmpdir),
              cmocka_unit_test_setup_teardown(test_ct_pixels, setup_tmpdir, teardown_tmpdir),
              cmocka_unit_test_setup_teardown(test_ct_deterministic, setup_tmpdir, teardown_tmpdir),
              cmocka_unit_test_setup_teardown(test_cr_mono1, setup_tmpdir, teardown_tmpdir),
              cmocka_unit_test_setup_teardown(test_us_cine, setup_tmpdir, teardown_tmpdir),
              cmocka_unit_test_setup_teardown(test_demo_all, setup_tmpdir, teardown_tmpdir),
              cmocka_unit_test_setup_teardown(test_dcmdump_accepts, setup_tmpdir, teardown_tmpdir),
              cmocka_unit_test_setup_teardown(test_unwritable_folder, setup_tmpdir,
                                              teardown_tmpdir),
              cmocka_unit_test_setup_teardown(test_bad_counts, setup_tmpdir, teardown_tmpdir))
