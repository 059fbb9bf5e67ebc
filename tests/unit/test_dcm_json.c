/* SPDX-License-Identifier: MIT */
/* test_dcm_json.c: DICOM JSON and summaries (store/dcm_json.h), the dataset reader they share with
 * the renderer (rnd.h), and the data dictionary. Every input is a buffer built here with a small
 * Part 10 writer, so each case states exactly which bytes it feeds in: explicit and implicit VR
 * little endian, big endian and deflated encodings of the same dataset must give the same JSON;
 * hostile inputs (every truncation, random mutations, nesting and decompression bombs, bad UIDs)
 * must fail with a message and never read outside the buffer (run under ASan). */
#include "tsr_test.h"

#include "dcm_internal.h"
#include "dcm_json.h"
#include "rnd.h"

#include <jansson.h>
#include <math.h>
#include <zlib.h>

#define TS_IMPLICIT "1.2.840.10008.1.2"
#define TS_EXPLICIT "1.2.840.10008.1.2.1"
#define TS_DEFLATED "1.2.840.10008.1.2.1.99"
#define TS_BIG      "1.2.840.10008.1.2.2"
#define TS_JPEG     "1.2.840.10008.1.2.4.50"

#define STUDY        "1.2.826.0.1.3680043.2.1125.1"
#define SERIES       "1.2.826.0.1.3680043.2.1125.2"
#define SOP          "1.2.826.0.1.3680043.2.1125.3"
#define CT_SOP_CLASS "1.2.840.10008.5.1.4.1.1.2"

/* ---------------------------------------------------------------- a small Part 10 writer */

typedef enum enc { ENC_EXPLICIT, ENC_IMPLICIT, ENC_BIG } enc;

typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    enc e;
} wbuf;

static void
w_bytes(wbuf *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 256;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void
w_u16(wbuf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    if (b->e == ENC_BIG) {
        x[0] = (uint8_t)(v >> 8);
        x[1] = (uint8_t)v;
    }
    w_bytes(b, x, 2);
}

static void
w_u32(wbuf *b, uint32_t v)
{
    if (b->e == ENC_BIG) {
        w_u16(b, (uint16_t)(v >> 16));
        w_u16(b, (uint16_t)v);
    } else {
        w_u16(b, (uint16_t)v);
        w_u16(b, (uint16_t)(v >> 16));
    }
}

static void
w_tag(wbuf *b, uint32_t tag)
{
    w_u16(b, (uint16_t)(tag >> 16));
    w_u16(b, (uint16_t)tag);
}

static int
long_vr(const char *vr)
{
    static const char *k[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                              "SV", "UC", "UN", "UR", "UT", "UV"};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        if (strcmp(vr, k[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* An element header: tag, VR (explicit only) and length. */
static void
w_header(wbuf *b, uint32_t tag, const char *vr, uint32_t len)
{
    w_tag(b, tag);
    if (b->e == ENC_IMPLICIT) {
        w_u32(b, len);
    } else if (long_vr(vr)) {
        w_bytes(b, vr, 2);
        w_u16(b, 0);
        w_u32(b, len);
    } else {
        w_bytes(b, vr, 2);
        w_u16(b, (uint16_t)len);
    }
}

static void
w_elem(wbuf *b, uint32_t tag, const char *vr, const void *v, size_t n)
{
    w_header(b, tag, vr, (uint32_t)n);
    w_bytes(b, v, n);
}

/* A string value padded to even length (NUL for UI, space otherwise). */
static void
w_str(wbuf *b, uint32_t tag, const char *vr, const char *s)
{
    size_t n = strlen(s);
    w_header(b, tag, vr, (uint32_t)(n + (n & 1)));
    w_bytes(b, s, n);
    if (n & 1) {
        w_bytes(b, strcmp(vr, "UI") == 0 ? "\0" : " ", 1);
    }
}

static void
w_us(wbuf *b, uint32_t tag, const char *vr, uint16_t v)
{
    w_header(b, tag, vr, 2);
    w_u16(b, v);
}

/* Sequences and items open with an undefined length; w_close either writes the delimiter or
 * patches the real length in. Returns where the value starts. */
static size_t
w_open(wbuf *b, uint32_t tag, const char *vr)
{
    if (vr) {
        w_header(b, tag, vr, 0xffffffffu);
    } else {
        w_tag(b, tag);
        w_u32(b, 0xffffffffu);
    }
    return b->len;
}

static void
w_close(wbuf *b, size_t start, int undefined, uint32_t delimiter)
{
    if (undefined) {
        w_tag(b, delimiter);
        w_u32(b, 0);
        return;
    }
    wbuf len = {NULL, 0, 0, b->e};
    w_u32(&len, (uint32_t)(b->len - start));
    memcpy(b->p + start - 4, len.p, 4);
    free(len.p);
}

static size_t
w_seq(wbuf *b, uint32_t tag, int undefined)
{
    (void)undefined;
    return w_open(b, tag, "SQ");
}

static void
w_seq_end(wbuf *b, size_t start, int undefined)
{
    w_close(b, start, undefined, 0xfffee0ddu);
}

static size_t
w_item(wbuf *b, int undefined)
{
    (void)undefined;
    return w_open(b, 0xfffee000u, NULL);
}

static void
w_item_end(wbuf *b, size_t start, int undefined)
{
    w_close(b, start, undefined, 0xfffee00du);
}

/* Preamble, DICM and a meta group (always explicit VR little endian). */
static void
w_meta(wbuf *b, const char *ts)
{
    enc keep = b->e;
    b->e = ENC_EXPLICIT;
    uint8_t pre[128] = {0};
    w_bytes(b, pre, 128);
    w_bytes(b, "DICM", 4);
    wbuf g = {NULL, 0, 0, ENC_EXPLICIT};
    w_elem(&g, 0x00020001u, "OB", "\0\1", 2);
    w_str(&g, 0x00020002u, "UI", CT_SOP_CLASS);
    w_str(&g, 0x00020003u, "UI", SOP);
    w_str(&g, 0x00020010u, "UI", ts);
    uint32_t n = (uint32_t)g.len;
    w_elem(b, 0x00020000u, "UL", &n, 4);
    w_bytes(b, g.p, g.len);
    free(g.p);
    b->e = keep;
}

/* The four required UIDs and a few summary attributes. */
static void
w_ids(wbuf *b)
{
    w_str(b, 0x00080016u, "UI", CT_SOP_CLASS);
    w_str(b, 0x00080018u, "UI", SOP);
}

static void
w_study_series(wbuf *b)
{
    w_str(b, 0x0020000du, "UI", STUDY);
    w_str(b, 0x0020000eu, "UI", SERIES);
}

/* The reference dataset: written in any encoding, it must give the same JSON. */
static void
w_reference(wbuf *b, int undefined)
{
    w_str(b, 0x00080005u, "CS", "ISO_IR 100");
    w_str(b, 0x00080008u, "CS", "ORIGINAL\\PRIMARY\\AXIAL");
    w_ids(b);
    w_str(b, 0x00080020u, "DA", "20240131");
    w_str(b, 0x00080060u, "CS", "CT");
    w_str(b, 0x00080090u, "PN", "");
    /* a sequence with two items, one of them nesting another sequence */
    size_t s = w_seq(b, 0x00081140u, undefined);
    size_t i = w_item(b, undefined);
    w_str(b, 0x00081150u, "UI", CT_SOP_CLASS);
    w_str(b, 0x00081155u, "UI", "1.2.3.4");
    w_item_end(b, i, undefined);
    i = w_item(b, undefined);
    w_str(b, 0x00081150u, "UI", CT_SOP_CLASS);
    size_t s2 = w_seq(b, 0x00081199u, !undefined);
    size_t i2 = w_item(b, !undefined);
    w_str(b, 0x00081160u, "IS", "1");
    w_item_end(b, i2, !undefined);
    w_seq_end(b, s2, !undefined);
    w_item_end(b, i, undefined);
    w_seq_end(b, s, undefined);
    w_str(b, 0x00100010u, "PN", "M\xe9tral^\xc9lodie");
    w_str(b, 0x00100020u, "LO", "PID-7");
    w_str(b, 0x00180050u, "DS", "2.5");
    w_study_series(b);
    w_str(b, 0x00200011u, "IS", "  12");
    w_str(b, 0x00200013u, "IS", "3 ");
    w_str(b, 0x00200032u, "DS", "-125.5\\-130\\42.75");
    w_str(b, 0x00200037u, "DS", "1\\0\\0\\0\\1\\0");
    w_us(b, 0x00280010u, "US", 4);
    w_us(b, 0x00280011u, "US", 2);
    w_str(b, 0x00280030u, "DS", "0.5\\0.25");
    w_us(b, 0x00280100u, "US", 16);
    w_us(b, 0x00280103u, "US", 1);
    w_us(b, 0x00280106u, "US", 0xfff6); /* SmallestImagePixelValue: -10 when signed */
    w_str(b, 0x00281050u, "DS", "40\\400");
    w_header(b, 0x00209057u, "UL", 4); /* InStackPositionNumber */
    w_u32(b, 70000);
    uint8_t px[16];
    for (int k = 0; k < 16; k++) {
        px[k] = (uint8_t)(k * 17);
    }
    /* OW pixel data: written word by word so that it is the same values in every encoding */
    w_header(b, 0x7fe00010u, "OW", 16);
    for (int k = 0; k < 8; k++) {
        w_u16(b, (uint16_t)(px[2 * k] | px[2 * k + 1] << 8));
    }
}

/* A whole file: meta, then the dataset in encoding `e`. */
static wbuf
make_file(const char *ts, enc e, int undefined)
{
    wbuf b = {NULL, 0, 0, e};
    w_meta(&b, ts);
    w_reference(&b, undefined);
    return b;
}

/* ---------------------------------------------------------------- helpers */

typedef struct parsed {
    int rc;
    dcm_summary sum;
    json_t *json;
    char *text;
    tsr_err err;
} parsed;

static parsed
parse_opts(const wbuf *b, const dcm_json_opts *opts)
{
    parsed p;
    memset(&p, 0, sizeof p);
    size_t n = 0;
    p.rc = dcm_parse(b->p, b->len, opts, &p.sum, &p.text, &n, &p.err);
    if (p.rc == TSR_OK) {
        assert_non_null(p.text);
        assert_int_equal(strlen(p.text), n);
        json_error_t je;
        p.json = json_loads(p.text, 0, &je);
        if (!p.json) {
            fail_msg("invalid JSON: %s", je.text);
        }
    } else {
        assert_null(p.text);
        assert_int_equal(p.err.code, p.rc);
        assert_true(p.err.msg[0] != '\0');
    }
    return p;
}

static parsed
parse(const wbuf *b)
{
    return parse_opts(b, NULL);
}

static void
parsed_free(parsed *p)
{
    json_decref(p->json);
    free(p->text);
}

/* The element `key` of object `o`, failing when absent. */
static json_t *
el(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        fail_msg("no element %s", key);
    }
    return v;
}

static json_t *
val(json_t *o, const char *key, size_t i)
{
    json_t *v = json_array_get(json_object_get(el(o, key), "Value"), i);
    if (!v) {
        fail_msg("element %s has no value %zu", key, i);
    }
    return v;
}

static const char *
str(json_t *o, const char *key, size_t i)
{
    json_t *v = val(o, key, i);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static const char *
vr_of(json_t *o, const char *key)
{
    return json_string_value(json_object_get(el(o, key), "vr"));
}

/* ---------------------------------------------------------------- cases */

/* Explicit VR LE: values of every kind, the summary, key order and compact output. */
static void
explicit_le_values_and_summary(void **state)
{
    (void)state;
    wbuf b = make_file(TS_EXPLICIT, ENC_EXPLICIT, 0);
    parsed p = parse(&b);
    assert_int_equal(p.rc, TSR_OK);
    json_t *j = p.json;
    assert_string_equal(vr_of(j, "00080008"), "CS");
    assert_int_equal(json_array_size(json_object_get(el(j, "00080008"), "Value")), 3);
    assert_string_equal(str(j, "00080008", 2), "AXIAL");
    assert_string_equal(str(j, "00080018", 0), SOP);
    /* empty value: vr only */
    assert_null(json_object_get(el(j, "00080090"), "Value"));
    assert_int_equal(json_object_size(el(j, "00080090")), 1);
    /* ISO_IR 100 name with accents, to UTF-8 */
    assert_string_equal(json_string_value(json_object_get(val(j, "00100010", 0), "Alphabetic")),
                        "M\xc3\xa9tral^\xc3\x89lodie");
    /* DS and IS are numbers; padding around them ignored */
    assert_true(json_is_integer(val(j, "00200011", 0)));
    assert_int_equal(json_integer_value(val(j, "00200011", 0)), 12);
    assert_true(json_number_value(val(j, "00200032", 0)) == -125.5);
    assert_true(json_number_value(val(j, "00200032", 2)) == 42.75);
    assert_int_equal(json_integer_value(val(j, "00281050", 1)), 400);
    assert_true(json_number_value(val(j, "00180050", 0)) == 2.5);
    /* binary numbers, and US read as SS only in implicit VR (explicit says US) */
    assert_int_equal(json_integer_value(val(j, "00280010", 0)), 4);
    assert_int_equal(json_integer_value(val(j, "00209057", 0)), 70000);
    assert_int_equal(json_integer_value(val(j, "00280106", 0)), 0xfff6);
    /* sequences: two items, the second nesting a sequence of defined length */
    json_t *items = json_object_get(el(j, "00081140"), "Value");
    assert_string_equal(vr_of(j, "00081140"), "SQ");
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(str(json_array_get(items, 0), "00081155", 0), "1.2.3.4");
    json_t *inner =
        json_array_get(json_object_get(el(json_array_get(items, 1), "00081199"), "Value"), 0);
    assert_int_equal(json_integer_value(val(inner, "00081160", 0)), 1);
    /* pixel data is always bulk data, with the URI the header documents */
    assert_string_equal(json_string_value(json_object_get(el(j, "7FE00010"), "BulkDataURI")),
                        "/studies/" STUDY "/series/" SERIES "/instances/" SOP "/bulkdata/7FE00010");
    assert_string_equal(vr_of(j, "7FE00010"), "OW");
    /* no meta group, no group length; compact, tag-ordered text */
    assert_null(json_object_get(j, "00020010"));
    assert_null(json_object_get(j, "00020000"));
    assert_non_null(strstr(p.text, "\"BulkDataURI\":\"/studies/"));
    assert_null(strstr(p.text, "\": "));
    assert_null(strstr(p.text, "}, "));
    assert_true(strstr(p.text, "\"00080005\"") < strstr(p.text, "\"00080008\""));
    assert_true(strstr(p.text, "\"00280010\"") < strstr(p.text, "\"7FE00010\""));
    /* summary */
    const dcm_summary *s = &p.sum;
    assert_string_equal(s->transfer_syntax, TS_EXPLICIT);
    assert_string_equal(s->sop_class_uid, CT_SOP_CLASS);
    assert_string_equal(s->sop_instance_uid, SOP);
    assert_string_equal(s->study_uid, STUDY);
    assert_string_equal(s->series_uid, SERIES);
    assert_string_equal(s->specific_charset, "ISO_IR 100");
    assert_string_equal(s->patient_name, "M\xc3\xa9tral^\xc3\x89lodie");
    assert_string_equal(s->patient_id, "PID-7");
    assert_string_equal(s->study_date, "20240131");
    assert_string_equal(s->modality, "CT");
    assert_true(s->has_series_number && s->series_number == 12);
    assert_true(s->has_instance_number && s->instance_number == 3);
    assert_int_equal(s->rows, 4);
    assert_int_equal(s->columns, 2);
    assert_int_equal(s->bits_allocated, 16);
    assert_int_equal(s->frames, 1);
    assert_true(s->has_pixel_data);
    assert_true(s->has_position && s->position[0] == -125.5 && s->position[1] == -130.0 &&
                s->position[2] == 42.75);
    assert_true(s->has_orientation && s->orientation[0] == 1.0 && s->orientation[4] == 1.0);
    assert_true(s->has_pixel_spacing && s->pixel_spacing[0] == 0.5 && s->pixel_spacing[1] == 0.25);
    assert_true(s->has_slice_thickness && s->slice_thickness == 2.5);
    parsed_free(&p);
    free(b.p);
}

/* The same dataset in implicit VR LE, explicit VR BE, with undefined lengths swapped for defined
 * ones, and deflated, gives identical JSON (implicit VR: US/SS resolved from
 * PixelRepresentation, so SmallestImagePixelValue becomes SS -10). */
static void
every_encoding_gives_the_same_json(void **state)
{
    (void)state;
    wbuf ref = make_file(TS_EXPLICIT, ENC_EXPLICIT, 0);
    parsed pr = parse(&ref);
    assert_int_equal(pr.rc, TSR_OK);

    wbuf und = make_file(TS_EXPLICIT, ENC_EXPLICIT, 1);
    parsed pu = parse(&und);
    assert_int_equal(pu.rc, TSR_OK);
    assert_string_equal(pu.text, pr.text);

    wbuf be = make_file(TS_BIG, ENC_BIG, 1);
    parsed pb = parse(&be);
    assert_int_equal(pb.rc, TSR_OK);
    assert_string_equal(pb.text, pr.text);
    assert_string_equal(pb.sum.transfer_syntax, TS_BIG);

    wbuf im = make_file(TS_IMPLICIT, ENC_IMPLICIT, 1);
    parsed pi = parse(&im);
    assert_int_equal(pi.rc, TSR_OK);
    assert_string_equal(vr_of(pi.json, "00280106"), "SS");
    assert_int_equal(json_integer_value(val(pi.json, "00280106", 0)), -10);
    json_object_set_new(pi.json, "00280106", json_deep_copy(el(pr.json, "00280106")));
    assert_true(json_equal(pi.json, pr.json));

    /* deflated: the dataset after the meta group, raw deflate */
    wbuf def = {NULL, 0, 0, ENC_EXPLICIT};
    w_meta(&def, TS_DEFLATED);
    size_t meta_len = def.len;
    wbuf body = {NULL, 0, 0, ENC_EXPLICIT};
    w_reference(&body, 1);
    uLong cap = compressBound(body.len) + 64;
    uint8_t *z = malloc(cap);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = body.p;
    zs.avail_in = (uInt)body.len;
    zs.next_out = z;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    w_bytes(&def, z, zs.total_out);
    deflateEnd(&zs);
    parsed pd = parse(&def);
    assert_int_equal(pd.rc, TSR_OK);
    assert_string_equal(pd.text, pr.text);
    /* values of a deflated dataset have no place in the file */
    size_t off;
    uint32_t vlen;
    char vr[3];
    int bigend;
    tsr_err err = {0};
    assert_int_equal(dcm_find_value(def.p, def.len, "7FE00010", &off, &vlen, vr, &bigend, &err),
                     TSR_EUNSUPP);
    /* a stream cut short in the middle of the dataset is corrupt, and said to be inflated */
    def.len = meta_len + zs.total_out / 2;
    parsed pt = parse(&def);
    assert_int_equal(pt.rc, TSR_ECORRUPT);
    assert_non_null(strstr(pt.err.msg, "inflated"));
    free(z);
    free(body.p);
    free(def.p);
    parsed_free(&pr);
    parsed_free(&pu);
    parsed_free(&pb);
    parsed_free(&pi);
    parsed_free(&pd);
    free(ref.p);
    free(und.p);
    free(be.p);
    free(im.p);
}

/* PN with three component groups; multi-valued strings and numbers with empty and invalid
 * values; trailing padding; backslash in LT kept. */
static void
person_names_and_multiple_values(void **state)
{
    (void)state;
    wbuf b = {NULL, 0, 0, ENC_EXPLICIT};
    w_meta(&b, TS_EXPLICIT);
    w_str(&b, 0x00080005u, "CS", "ISO_IR 192");
    w_ids(&b);
    w_str(&b, 0x00080090u, "PN",
          "Yamada^Tarou=\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e="
          "\xe3\x82\x84\xe3\x81\xbe\xe3\x81\xa0^\xe3\x81\x9f\xe3\x82\x8d\xe3\x81\x86");
    w_str(&b, 0x00081060u, "PN", "Smith^J\\==Sumisu\\");
    w_str(&b, 0x00100010u, "PN", "Doe^Jane^^^");
    w_str(&b, 0x00104000u, "LT", "line one\\still one  ");
    uint8_t us3[6] = {1, 0, 2, 0, 3, 0};
    w_elem(&b, 0x00181310u, "US", us3, 6);
    w_study_series(&b);
    w_str(&b, 0x00201041u, "DS", "1.5\\abc\\\\ +2E1 \\1e999");
    w_str(&b, 0x00209057u, "IS", "7\\x7\\ -3");
    w_str(&b, 0x00280034u, "IS", "4\\3"); /* IS although PixelAspectRatio: any VR is trusted */
    uint8_t at[4] = {0x10, 0x00, 0x20, 0x00};
    w_elem(&b, 0x00209165u, "AT", at, 4);
    float fl[2] = {0.1f, -2.5f};
    w_elem(&b, 0x00189219u, "FL", fl, 8);
    double fd = 1.0 / 3.0;
    w_elem(&b, 0x00189220u, "FD", &fd, 8);
    parsed p = parse(&b);
    assert_int_equal(p.rc, TSR_OK);
    json_t *j = p.json;
    json_t *pn = val(j, "00080090", 0);
    assert_string_equal(json_string_value(json_object_get(pn, "Alphabetic")), "Yamada^Tarou");
    assert_string_equal(json_string_value(json_object_get(pn, "Ideographic")),
                        "\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e");
    assert_string_equal(
        json_string_value(json_object_get(pn, "Phonetic")),
        "\xe3\x82\x84\xe3\x81\xbe\xe3\x81\xa0^\xe3\x81\x9f\xe3\x82\x8d\xe3\x81\x86");
    /* "Smith^J\==Sumisu\" : three values, the third empty */
    json_t *pns = json_object_get(el(j, "00081060"), "Value");
    assert_int_equal(json_array_size(pns), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(pns, 0), "Alphabetic")),
                        "Smith^J");
    assert_null(json_object_get(json_array_get(pns, 1), "Alphabetic"));
    assert_null(json_object_get(json_array_get(pns, 1), "Ideographic"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(pns, 1), "Phonetic")),
                        "Sumisu");
    assert_true(json_is_null(json_array_get(pns, 2)));
    /* empty trailing components dropped */
    assert_string_equal(json_string_value(json_object_get(val(j, "00100010", 0), "Alphabetic")),
                        "Doe^Jane");
    /* LT: one value, backslash kept, trailing spaces trimmed */
    assert_int_equal(json_array_size(json_object_get(el(j, "00104000"), "Value")), 1);
    assert_string_equal(str(j, "00104000", 0), "line one\\still one");
    assert_int_equal(json_array_size(json_object_get(el(j, "00181310"), "Value")), 3);
    assert_int_equal(json_integer_value(val(j, "00181310", 2)), 3);
    /* DS: number, invalid kept as a string, empty as null, 20, out-of-range as a string */
    assert_true(json_real_value(val(j, "00201041", 0)) == 1.5);
    assert_string_equal(str(j, "00201041", 1), "abc");
    assert_true(json_is_null(val(j, "00201041", 2)));
    assert_true(json_number_value(val(j, "00201041", 3)) == 20.0);
    assert_string_equal(str(j, "00201041", 4), "1e999");
    assert_int_equal(json_integer_value(val(j, "00209057", 0)), 7);
    assert_string_equal(str(j, "00209057", 1), "x7");
    assert_int_equal(json_integer_value(val(j, "00209057", 2)), -3);
    assert_string_equal(str(j, "00209165", 0), "00100020");
    assert_non_null(strstr(p.text, "\"00189219\":{\"vr\":\"FL\",\"Value\":[0.1,-2.5]}"));
    assert_true(json_real_value(val(j, "00189220", 0)) == 1.0 / 3.0 ||
                fabs(json_real_value(val(j, "00189220", 0)) - 1.0 / 3.0) < 1e-15);
    parsed_free(&p);
    free(b.p);
}

/* Binary values up to the threshold are inline (base64 of the little endian bytes), longer ones
 * and pixel data are bulk data with the tag path of their place. */
static void
inline_binary_and_bulk_data(void **state)
{
    (void)state;
    for (int e = ENC_EXPLICIT; e <= ENC_BIG; e++) {
        wbuf b = {NULL, 0, 0, (enc)e};
        w_meta(&b, e == ENC_BIG ? TS_BIG : e == ENC_IMPLICIT ? TS_IMPLICIT : TS_EXPLICIT);
        w_ids(&b);
        /* OB of 16 bytes: "0123456789abcdef" */
        w_elem(&b, 0x00091010u, "OB", "0123456789abcdef", 16);
        w_elem(&b, 0x00091011u, "OB", "0123456789abcdefg", 17);
        size_t s = w_seq(&b, 0x00540016u, 1);
        size_t i = w_item(&b, 1);
        w_item_end(&b, i, 1);
        i = w_item(&b, 1);
        w_header(&b, 0x00091072u, "OW", 20); /* nested, over the threshold */
        for (int k = 0; k < 10; k++) {
            w_u16(&b, (uint16_t)(0x0102 * k));
        }
        w_header(&b, 0x00091073u, "OW", 4); /* nested, inline: words 0x0102, 0x0304 */
        w_u16(&b, 0x0102);
        w_u16(&b, 0x0304);
        w_item_end(&b, i, 1);
        w_seq_end(&b, s, 1);
        w_study_series(&b);
        w_elem(&b, 0x7fe00010u, "OB", "\1\2", 2); /* tiny, but pixel data: bulk */
        dcm_json_opts o = {16, 16};
        parsed p = parse_opts(&b, &o);
        assert_int_equal(p.rc, TSR_OK);
        json_t *j = p.json;
        const char *pfx = "/studies/" STUDY "/series/" SERIES "/instances/" SOP "/bulkdata/";
        char want[512];
        assert_string_equal(json_string_value(json_object_get(el(j, "00091010"), "InlineBinary")),
                            "MDEyMzQ1Njc4OWFiY2RlZg==");
        assert_string_equal(vr_of(j, "00091010"), e == ENC_IMPLICIT ? "UN" : "OB");
        snprintf(want, sizeof want, "%s00091011", pfx);
        assert_string_equal(json_string_value(json_object_get(el(j, "00091011"), "BulkDataURI")),
                            want);
        json_t *items = json_object_get(el(j, "00540016"), "Value");
        assert_int_equal(json_array_size(items), 2);
        assert_int_equal(json_object_size(json_array_get(items, 0)), 0);
        json_t *it = json_array_get(items, 1);
        snprintf(want, sizeof want, "%s00540016/1/00091072", pfx);
        assert_string_equal(json_string_value(json_object_get(el(it, "00091072"), "BulkDataURI")),
                            want);
        /* the little endian bytes 02 01 04 03, whatever the file's byte order */
        assert_string_equal(json_string_value(json_object_get(el(it, "00091073"), "InlineBinary")),
                            "AgEEAw==");
        snprintf(want, sizeof want, "%s7FE00010", pfx);
        assert_string_equal(json_string_value(json_object_get(el(j, "7FE00010"), "BulkDataURI")),
                            want);

        /* dcm_find_value finds each of them where the bytes are */
        size_t off;
        uint32_t vlen;
        char vr[3];
        int bigend;
        tsr_err err = {0};
        assert_int_equal(
            dcm_find_value(b.p, b.len, "00540016/1/00091072", &off, &vlen, vr, &bigend, &err),
            TSR_OK);
        assert_int_equal(vlen, 20);
        assert_string_equal(vr, e == ENC_IMPLICIT ? "UN" : "OW");
        assert_int_equal(bigend, e == ENC_BIG);
        assert_int_equal(rnd_ds_u16(b.p + off + 2, bigend), 0x0102);
        assert_int_equal(dcm_find_value(b.p, b.len, "00091011", &off, &vlen, vr, &bigend, &err),
                         TSR_OK);
        assert_int_equal(vlen, 17);
        assert_memory_equal(b.p + off, "0123456789abcdefg", 17);
        assert_int_equal(dcm_find_value(b.p, b.len, "7fe00010", &off, &vlen, vr, &bigend, &err),
                         TSR_OK);
        assert_int_equal(off + vlen, b.len);
        assert_int_equal(
            dcm_find_value(b.p, b.len, "00540016/2/00091072", &off, &vlen, vr, &bigend, &err),
            TSR_ENOTFOUND);
        assert_int_equal(
            dcm_find_value(b.p, b.len, "00540016/0/00091072", &off, &vlen, vr, &bigend, &err),
            TSR_ENOTFOUND);
        assert_int_equal(dcm_find_value(b.p, b.len, "00540016", &off, &vlen, vr, &bigend, &err),
                         TSR_ENOTFOUND);
        assert_int_equal(dcm_find_value(b.p, b.len, "00091012", &off, &vlen, vr, &bigend, NULL),
                         TSR_ENOTFOUND);
        static const char *bad_paths[] = {
            "",           "7FE0001",  "7FE000100",          "00540016/",    "00540016/x/00181072",
            "00540016/1", "0054001G", "00540016//00181072", "../etc/passwd"};
        for (size_t k = 0; k < sizeof bad_paths / sizeof bad_paths[0]; k++) {
            assert_int_equal(
                dcm_find_value(b.p, b.len, bad_paths[k], &off, &vlen, vr, &bigend, &err),
                TSR_EINVAL);
        }
        parsed_free(&p);
        free(b.p);
    }
}

/* Encapsulated pixel data is skipped (fragments checked), reported as bulk data, and found by
 * dcm_find_value at its first item with an undefined length. */
static void
encapsulated_pixel_data(void **state)
{
    (void)state;
    wbuf b = {NULL, 0, 0, ENC_EXPLICIT};
    w_meta(&b, TS_JPEG);
    w_ids(&b);
    w_study_series(&b);
    w_str(&b, 0x00280008u, "IS", "2");
    size_t start = w_open(&b, 0x7fe00010u, "OB");
    size_t first_item = b.len;
    w_tag(&b, 0xfffee000u);
    w_u32(&b, 0); /* empty Basic Offset Table */
    w_tag(&b, 0xfffee000u);
    w_u32(&b, 4);
    w_bytes(&b, "\xff\xd8\xff\xd9", 4);
    w_tag(&b, 0xfffee000u);
    w_u32(&b, 4);
    w_bytes(&b, "\xff\xd8\xff\xd9", 4);
    w_seq_end(&b, start, 1);
    parsed p = parse(&b);
    assert_int_equal(p.rc, TSR_OK);
    assert_int_equal(p.sum.frames, 2);
    assert_true(p.sum.has_pixel_data);
    assert_string_equal(p.sum.transfer_syntax, TS_JPEG);
    assert_non_null(json_object_get(el(p.json, "7FE00010"), "BulkDataURI"));
    assert_string_equal(vr_of(p.json, "7FE00010"), "OB");
    size_t off;
    uint32_t vlen;
    char vr[3];
    int bigend;
    assert_int_equal(dcm_find_value(b.p, b.len, "7FE00010", &off, &vlen, vr, &bigend, NULL),
                     TSR_OK);
    assert_int_equal(vlen, 0xffffffffu);
    assert_int_equal(off, first_item);
    /* a fragment that runs past the end is refused, naming the fragment's offset */
    b.p[b.len - 8 - 4 - 4] = 0x40; /* the last fragment's length: 0x40 */
    parsed q = parse(&b);
    assert_int_equal(q.rc, TSR_ECORRUPT);
    assert_non_null(strstr(q.err.msg, "fragment at offset"));
    parsed_free(&p);
    free(b.p);
}

/* Elements out of tag order are re-sorted; a repeated tag keeps its first value; group lengths,
 * meta elements in the dataset and trailing padding are left out; odd lengths are tolerated. */
static void
order_duplicates_and_odd_lengths(void **state)
{
    (void)state;
    wbuf b = {NULL, 0, 0, ENC_EXPLICIT};
    w_meta(&b, TS_EXPLICIT);
    uint32_t gl = 0;
    w_elem(&b, 0x00080000u, "UL", &gl, 4);
    w_study_series(&b);
    w_ids(&b);
    w_str(&b, 0x00100020u, "LO", "FIRST");
    w_str(&b, 0x00100020u, "LO", "SECOND");
    w_elem(&b, 0x00100010u, "PN", "Odd", 3);
    w_str(&b, 0x00020013u, "SH", "stray meta");
    w_elem(&b, 0xfffcfffcu, "OB", "\0\0", 2);
    parsed p = parse(&b);
    assert_int_equal(p.rc, TSR_OK);
    assert_string_equal(str(p.json, "00100020", 0), "FIRST");
    assert_string_equal(
        json_string_value(json_object_get(val(p.json, "00100010", 0), "Alphabetic")), "Odd");
    assert_null(json_object_get(p.json, "00080000"));
    assert_null(json_object_get(p.json, "00020013"));
    assert_null(json_object_get(p.json, "FFFCFFFC"));
    const char *k1 = strstr(p.text, "\"00080016\""), *k2 = strstr(p.text, "\"0020000D\"");
    const char *k3 = strstr(p.text, "\"00100010\""), *k4 = strstr(p.text, "\"00100020\"");
    assert_true(k1 && k2 && k3 && k4 && k1 < k3 && k3 < k4 && k4 < k2);
    assert_int_equal(p.sum.frames, 0);
    assert_false(p.sum.has_pixel_data);
    parsed_free(&p);
    free(b.p);
}

/* Character sets to UTF-8: ISO 8859-1, -5, UTF-8 with invalid bytes, GB18030, ISO 2022 Japanese
 * (PS3.5 H.3.1) and Korean (PS3.5 I.2), undeclared high bytes as Latin-1, per-item charsets. */
static void
character_sets(void **state)
{
    (void)state;
    static const struct {
        const char *charset;
        const char *raw;
        const char *utf8;
    } k[] = {
        {"ISO_IR 100", "Buc^J\xe9r\xf4me", "Buc^J\xc3\xa9r\xc3\xb4me"},
        {"ISO_IR 144", "\xbb\xee\xda", "\xd0\x9b\xd1\x8e\xd0\xba"},
        {"ISO_IR 192", "ok\xff\xc3(\xe2\x82\xac", "ok\xef\xbf\xbd\xef\xbf\xbd(\xe2\x82\xac"},
        {"ISO_IR 192", "\xed\xa0\x80x", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx"},
        {"GB18030", "Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab",
         "Wang^XiaoDong=\xe7\x8e\x8b^\xe5\xb0\x8f\xe4\xb8\x9c"},
        {"\\ISO 2022 IR 87",
         "Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B",
         "Yamada^Tarou=\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e="
         "\xe3\x82\x84\xe3\x81\xbe\xe3\x81\xa0^\xe3\x81\x9f\xe3\x82\x8d\xe3\x81\x86"},
        {"\\ISO 2022 IR 149",
         "Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6"
         "\xb5\xbf",
         "Hong^Gildong=\xe6\xb4\xaa^\xe5\x90\x89\xe6\xb4\x9e="
         "\xed\x99\x8d^\xea\xb8\xb8\xeb\x8f\x99"},
        {"ISO 2022 IR 13\\ISO 2022 IR 87", "\xd4\xcf\xc0\xde^\xc0\xdb\xb3",
         "\xef\xbe\x94\xef\xbe\x8f\xef\xbe\x80\xef\xbe\x9e^\xef\xbe\x80\xef\xbe\x9b\xef\xbd\xb3"},
        {"", "Caf\xe9", "Caf\xc3\xa9"},
        {"ISO_IR 6", "esc\x1bok", "esc\x1bok"},
        {"NO SUCH SET", "x\x80y", "x\xc2\x80y"},
    };
    for (size_t t = 0; t < sizeof k / sizeof k[0]; t++) {
        wbuf b = {NULL, 0, 0, ENC_EXPLICIT};
        w_meta(&b, TS_EXPLICIT);
        if (k[t].charset[0]) {
            w_str(&b, 0x00080005u, "CS", k[t].charset);
        }
        w_ids(&b);
        w_str(&b, 0x00100010u, "PN", k[t].raw);
        w_str(&b, 0x00100020u, "LO", k[t].raw);
        w_study_series(&b);
        parsed p = parse(&b);
        assert_int_equal(p.rc, TSR_OK);
        const char *alpha = NULL;
        json_t *pn = val(p.json, "00100010", 0);
        const char *key;
        json_t *g;
        /* reassemble the groups to compare with the whole expected name */
        char whole[256] = "";
        int first = 1;
        json_object_foreach(pn, key, g)
        {
            if (!first) {
                strcat(whole, "=");
            }
            strcat(whole, json_string_value(g));
            first = 0;
            alpha = alpha ? alpha : json_string_value(g);
        }
        if (strcmp(whole, k[t].utf8) != 0) {
            fail_msg("charset '%s': got '%s', want '%s'", k[t].charset, whole, k[t].utf8);
        }
        if (!strchr(k[t].utf8, '=')) {
            assert_string_equal(str(p.json, "00100020", 0), k[t].utf8);
        }
        assert_string_equal(p.sum.patient_name, k[t].utf8);
        parsed_free(&p);
        free(b.p);
    }

    /* an item with its own Specific Character Set; its siblings keep the dataset's */
    wbuf b = {NULL, 0, 0, ENC_EXPLICIT};
    w_meta(&b, TS_EXPLICIT);
    w_str(&b, 0x00080005u, "CS", "ISO_IR 100");
    w_ids(&b);
    size_t s = w_seq(&b, 0x00081120u, 1);
    size_t i = w_item(&b, 1);
    w_str(&b, 0x00080005u, "CS", "ISO_IR 144");
    w_str(&b, 0x00100010u, "PN", "\xbb");
    w_item_end(&b, i, 1);
    i = w_item(&b, 1);
    w_str(&b, 0x00100010u, "PN", "\xbb");
    w_item_end(&b, i, 1);
    w_seq_end(&b, s, 1);
    w_str(&b, 0x00100010u, "PN", "\xbb");
    w_study_series(&b);
    parsed p = parse(&b);
    assert_int_equal(p.rc, TSR_OK);
    json_t *items = json_object_get(el(p.json, "00081120"), "Value");
    assert_string_equal(json_string_value(json_object_get(
                            val(json_array_get(items, 0), "00100010", 0), "Alphabetic")),
                        "\xd0\x9b");
    assert_string_equal(json_string_value(json_object_get(
                            val(json_array_get(items, 1), "00100010", 0), "Alphabetic")),
                        "\xc2\xbb");
    assert_string_equal(p.sum.patient_name, "\xc2\xbb");
    parsed_free(&p);
    free(b.p);
}

/* The offsets where a top-level element or sequence of the dataset in `b` ends: the only places
 * a cut leaves a well-formed (shorter) file. */
static size_t
top_level_ends(const wbuf *b, enc e, size_t *ends, size_t cap)
{
    rnd_ds_meta meta;
    assert_int_equal(rnd_ds_read_meta(b->p, b->len, &meta, NULL), TSR_OK);
    rnd_ds_reader *r = NULL;
    rnd_ds_encoding de = e == ENC_BIG        ? RND_DS_EXPLICIT_BE
                         : e == ENC_IMPLICIT ? RND_DS_IMPLICIT_LE
                                             : RND_DS_EXPLICIT_LE;
    assert_int_equal(rnd_ds_reader_new(b->p, b->len, meta.dataset_offset, de, 16, &r, NULL),
                     TSR_OK);
    size_t n = 0;
    ends[n++] = meta.dataset_offset;
    for (;;) {
        rnd_ds_event ev;
        rnd_ds_elem el;
        assert_int_equal(rnd_ds_next(r, &ev, &el, NULL), TSR_OK);
        if (ev == RND_DS_END) {
            break;
        }
        assert_true(n < cap);
        if (ev == RND_DS_ELEMENT && el.depth == 0) {
            ends[n++] = el.offset + el.length;
        } else if (ev == RND_DS_SEQUENCE_END && el.depth == 0) {
            ends[n++] = el.offset;
        }
    }
    rnd_ds_reader_free(r);
    return n;
}

/* Every truncation of a valid file fails with a message, except a cut exactly between two
 * top-level elements once the four UIDs are in (a shorter but well-formed file). Each cut is a
 * private copy of exactly that many bytes, so ASan sees any read past its end. */
static void
every_truncation_fails_cleanly(void **state)
{
    (void)state;
    for (int e = ENC_EXPLICIT; e <= ENC_BIG; e++) {
        wbuf b = make_file(e == ENC_BIG        ? TS_BIG
                           : e == ENC_IMPLICIT ? TS_IMPLICIT
                                               : TS_EXPLICIT,
                           (enc)e, e == ENC_IMPLICIT);
        size_t ends[64];
        size_t n_ends = top_level_ends(&b, (enc)e, ends, 64);
        size_t ok = 0, refused = 0;
        for (size_t len = 0; len < b.len; len++) {
            uint8_t *cut = malloc(len ? len : 1);
            memcpy(cut, b.p, len);
            wbuf c = {cut, len, len, (enc)e};
            parsed p = parse(&c);
            int boundary = 0;
            for (size_t k = 0; k < n_ends; k++) {
                boundary |= ends[k] == len;
            }
            if (p.rc == TSR_OK) {
                ok++;
                if (!boundary) {
                    fail_msg("a cut at %zu of %zu inside an element parsed", len, b.len);
                }
            } else {
                refused++;
                assert_true(p.rc == TSR_ECORRUPT || p.rc == TSR_EINVAL);
                /* a cut inside an element is corrupt, not merely incomplete */
                if (!boundary && p.rc != TSR_ECORRUPT && len >= 140) {
                    fail_msg("a cut at %zu: rc %d '%s'", len, p.rc, p.err.msg);
                }
            }
            parsed_free(&p);
            free(cut);
        }
        /* the cuts after SeriesInstanceUID, up to the pixel data, are shorter valid files */
        assert_true(ok >= 10);
        assert_true(refused > b.len - 40);
        free(b.p);
    }
    /* the message names the element, its offset and the lengths involved */
    wbuf b = {NULL, 0, 0, ENC_EXPLICIT};
    w_meta(&b, TS_EXPLICIT);
    w_ids(&b);
    w_study_series(&b);
    size_t at = b.len;
    w_header(&b, 0x00280010u, "OB", 0xfffffffeu);
    w_bytes(&b, "abcd", 4);
    parsed p = parse(&b);
    assert_int_equal(p.rc, TSR_ECORRUPT);
    char want[160];
    snprintf(want, sizeof want,
             "element (0028,0010) at offset %zu runs past the end of the data (length "
             "4294967294, 4 bytes left)",
             at);
    assert_string_equal(p.err.msg, want);
    free(b.p);
}

/* Random mutations (bytes, and lengths set near UINT32_MAX) never crash and never give invalid
 * JSON; what parses has the required UIDs. */
static void
random_mutations(void **state)
{
    (void)state;
    uint32_t x = 2463534242u;
    int ok = 0, failed = 0;
    for (int e = ENC_EXPLICIT; e <= ENC_BIG; e++) {
        wbuf ref = make_file(e == ENC_BIG        ? TS_BIG
                             : e == ENC_IMPLICIT ? TS_IMPLICIT
                                                 : TS_EXPLICIT,
                             (enc)e, e != ENC_BIG);
        uint8_t *m = malloc(ref.len);
        for (int round = 0; round < 1500; round++) {
            memcpy(m, ref.p, ref.len);
            int edits = 1 + round % 4;
            for (int k = 0; k < edits; k++) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                size_t at = 132 + x % (ref.len - 132);
                switch ((x >> 24) % 4) {
                case 0:
                    m[at] = (uint8_t)(x >> 8);
                    break;
                case 1:
                    m[at] ^= (uint8_t)(1u << (x % 8));
                    break;
                case 2: /* a length-like field near UINT32_MAX */
                    if (at + 4 <= ref.len) {
                        uint32_t v = 0xffffffffu - (x >> 28);
                        memcpy(m + at, &v, 4);
                    }
                    break;
                default:
                    m[at] = (uint8_t) "\xff\x00\xfe\xe0\xdd\x0d SQUN"[x % 10];
                    break;
                }
            }
            wbuf c = {m, ref.len, ref.len, (enc)e};
            dcm_json_opts o = {(size_t)(x % 64), 1 + (int)(x % 4)};
            parsed p = parse_opts(&c, round % 2 ? &o : NULL);
            if (p.rc == TSR_OK) {
                ok++;
                assert_true(p.sum.sop_instance_uid[0] && p.sum.study_uid[0]);
            } else {
                failed++;
            }
            parsed_free(&p);
        }
        free(m);
        free(ref.p);
    }
    /* both outcomes happen, so the mutations reach the parser's checks */
    assert_true(ok > 100);
    assert_true(failed > 100);
}

/* Sequences nested 1000 deep are refused by the depth limit, not the C stack; the limit is the
 * caller's. */
static void
depth_bomb(void **state)
{
    (void)state;
    wbuf b = {NULL, 0, 0, ENC_EXPLICIT};
    w_meta(&b, TS_EXPLICIT);
    w_ids(&b);
    w_study_series(&b);
    for (int d = 0; d < 1000; d++) {
        w_seq(&b, 0x00400260u, 1);
        w_item(&b, 1);
    }
    parsed p = parse(&b);
    assert_int_equal(p.rc, TSR_ELIMIT);
    assert_non_null(strstr(p.err.msg, "deeper than 16"));
    free(b.p);

    for (int depth = 1; depth <= 4; depth++) {
        wbuf n = {NULL, 0, 0, ENC_EXPLICIT};
        w_meta(&n, TS_EXPLICIT);
        w_ids(&n);
        w_study_series(&n);
        for (int d = 0; d < depth; d++) {
            w_seq(&n, 0x00400260u, 1);
            w_item(&n, 1);
        }
        for (int d = 0; d < depth; d++) {
            w_tag(&n, 0xfffee00du);
            w_u32(&n, 0);
            w_tag(&n, 0xfffee0ddu);
            w_u32(&n, 0);
        }
        dcm_json_opts o = {1024, 3};
        parsed q = parse_opts(&n, &o);
        assert_int_equal(q.rc, depth <= 3 ? TSR_OK : TSR_ELIMIT);
        parsed_free(&q);
        free(n.p);
    }
}

/* UIDs are file names and URL parts: anything but 1-64 digits and dots is refused. */
static void
bad_uids_refused(void **state)
{
    (void)state;
    static const struct {
        uint32_t tag;
        const char *uid;
        int ok;
    } k[] = {
        {0x00080018u, "1.2.3", 1},
        {0x00080018u, "1.2.3 ", 1},
        {0x00080018u, "../../etc/passwd", 0},
        {0x00080018u, "1.2.3/4", 0},
        {0x00080018u, "1.2.3\n", 0},
        {0x00080018u, "1.2.3\\4.5", 0},
        {0x00080018u, "", 0},
        {0x00080018u, "1234567890.1234567890.1234567890.1234567890.1234567890.1234567890", 0},
        {0x00080018u, "1234567890.1234567890.1234567890.1234567890.1234567890.123456789", 1},
        {0x0020000du, "1.2.x", 0},
        {0x0020000eu, "1.2%2F3", 0},
        {0x00080016u, "1.2 3", 0},
    };
    for (size_t t = 0; t < sizeof k / sizeof k[0]; t++) {
        wbuf b = {NULL, 0, 0, ENC_EXPLICIT};
        w_meta(&b, TS_EXPLICIT);
        w_str(&b, 0x00080016u, "UI", k[t].tag == 0x00080016u ? k[t].uid : CT_SOP_CLASS);
        w_str(&b, 0x00080018u, "UI", k[t].tag == 0x00080018u ? k[t].uid : SOP);
        w_str(&b, 0x0020000du, "UI", k[t].tag == 0x0020000du ? k[t].uid : STUDY);
        w_str(&b, 0x0020000eu, "UI", k[t].tag == 0x0020000eu ? k[t].uid : SERIES);
        parsed p = parse(&b);
        if (k[t].ok) {
            assert_int_equal(p.rc, TSR_OK);
        } else {
            if (p.rc != TSR_EINVAL || !strstr(p.err.msg, "is not a valid UID")) {
                fail_msg("uid '%s': rc %d '%s'", k[t].uid, p.rc, p.err.msg);
            }
            assert_null(strchr(p.err.msg, '\n')); /* printable in the message */
        }
        parsed_free(&p);
        free(b.p);
    }
    /* a missing required UID */
    wbuf b = {NULL, 0, 0, ENC_EXPLICIT};
    w_meta(&b, TS_EXPLICIT);
    w_ids(&b);
    w_str(&b, 0x0020000du, "UI", STUDY);
    parsed p = parse(&b);
    assert_int_equal(p.rc, TSR_EINVAL);
    assert_string_equal(p.err.msg, "no SeriesInstanceUID (0020,000E) in the dataset");
    free(b.p);
    /* an invalid optional UID is dropped, not fatal */
    wbuf f = {NULL, 0, 0, ENC_EXPLICIT};
    w_meta(&f, TS_EXPLICIT);
    w_ids(&f);
    w_study_series(&f);
    w_str(&f, 0x00200052u, "UI", "not/a/uid");
    p = parse(&f);
    assert_int_equal(p.rc, TSR_OK);
    assert_string_equal(p.sum.frame_of_reference_uid, "");
    parsed_free(&p);
    free(f.p);
}

/* Without preamble and DICM, or without a Transfer Syntax UID, nothing is parsed. */
static void
missing_meta_refused(void **state)
{
    (void)state;
    wbuf b = {NULL, 0, 0, ENC_EXPLICIT};
    w_ids(&b);
    w_study_series(&b);
    uint8_t *big = calloc(1, b.len + 200);
    memcpy(big, b.p, b.len);
    wbuf c = {big, b.len + 200, 0, ENC_EXPLICIT};
    parsed p = parse(&c);
    assert_int_equal(p.rc, TSR_EINVAL);
    assert_string_equal(p.err.msg, "no DICOM File Meta Information (preamble and DICM prefix)");
    wbuf empty = {(uint8_t *)"", 0, 0, ENC_EXPLICIT};
    p = parse(&empty);
    assert_int_equal(p.rc, TSR_EINVAL);
    dcm_summary s;
    assert_int_equal(dcm_parse(big, 10, NULL, &s, NULL, NULL, NULL), TSR_EINVAL);
    /* DICM but no transfer syntax */
    wbuf m = {NULL, 0, 0, ENC_EXPLICIT};
    uint8_t pre[128] = {0};
    w_bytes(&m, pre, 128);
    w_bytes(&m, "DICM", 4);
    w_str(&m, 0x00020003u, "UI", SOP);
    w_ids(&m);
    w_study_series(&m);
    p = parse(&m);
    assert_int_equal(p.rc, TSR_EINVAL);
    assert_non_null(strstr(p.err.msg, "Transfer Syntax"));
    /* summary only (no JSON asked for) */
    wbuf ok = make_file(TS_EXPLICIT, ENC_EXPLICIT, 0);
    memset(&s, 0, sizeof s);
    assert_int_equal(dcm_parse(ok.p, ok.len, NULL, &s, NULL, NULL, NULL), TSR_OK);
    assert_string_equal(s.sop_instance_uid, SOP);
    assert_true(s.has_position);
    free(ok.p);
    free(m.p);
    free(big);
    free(b.p);
}

/* A deflated dataset that inflates past 64 times its size is a bomb: refused before memory
 * runs out. */
static void
deflate_bomb_refused(void **state)
{
    (void)state;
    size_t zeros = 64u << 20;
    uint8_t *in = calloc(1, zeros);
    uLong cap = compressBound(zeros);
    uint8_t *z = malloc(cap);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = in;
    zs.avail_in = (uInt)zeros;
    zs.next_out = z;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    deflateEnd(&zs);
    wbuf b = {NULL, 0, 0, ENC_EXPLICIT};
    w_meta(&b, TS_DEFLATED);
    w_bytes(&b, z, zs.total_out);
    parsed p = parse(&b);
    assert_int_equal(p.rc, TSR_ELIMIT);
    assert_non_null(strstr(p.err.msg, "decompression bomb"));
    /* garbage after a deflated meta is corrupt */
    b.len -= zs.total_out;
    w_bytes(&b, "\xff\xff\xff\xff\xff\xff", 6);
    p = parse(&b);
    assert_int_equal(p.rc, TSR_ECORRUPT);
    free(b.p);
    free(z);
    free(in);
}

/* Enhanced multi-frame: geometry from the first per-frame item, else the shared item; frames
 * from NumberOfFrames. */
static void
functional_group_geometry(void **state)
{
    (void)state;
    wbuf b = {NULL, 0, 0, ENC_EXPLICIT};
    w_meta(&b, TS_EXPLICIT);
    w_ids(&b);
    w_study_series(&b);
    w_str(&b, 0x00280008u, "IS", "3");
    size_t sh = w_seq(&b, 0x52009229u, 0);
    size_t it = w_item(&b, 0);
    size_t pm = w_seq(&b, 0x00289110u, 1);
    size_t pi = w_item(&b, 1);
    w_str(&b, 0x00180050u, "DS", "1.25");
    w_str(&b, 0x00280030u, "DS", "0.7\\0.8");
    w_item_end(&b, pi, 1);
    w_seq_end(&b, pm, 1);
    size_t po = w_seq(&b, 0x00209116u, 0);
    pi = w_item(&b, 0);
    w_str(&b, 0x00200037u, "DS", "0\\1\\0\\0\\0\\-1");
    w_item_end(&b, pi, 0);
    w_seq_end(&b, po, 0);
    w_item_end(&b, it, 0);
    w_seq_end(&b, sh, 0);
    size_t pf = w_seq(&b, 0x52009230u, 1);
    for (int f = 0; f < 3; f++) {
        it = w_item(&b, 1);
        size_t pp = w_seq(&b, 0x00209113u, 1);
        pi = w_item(&b, 1);
        char pos[64];
        snprintf(pos, sizeof pos, "1\\2\\%d", 10 * (f + 1));
        w_str(&b, 0x00200032u, "DS", pos);
        w_item_end(&b, pi, 1);
        w_seq_end(&b, pp, 1);
        w_item_end(&b, it, 1);
    }
    w_seq_end(&b, pf, 1);
    w_elem(&b, 0x7fe00010u, "OB", "\0\0\0\0\0\0", 6);
    parsed p = parse(&b);
    assert_int_equal(p.rc, TSR_OK);
    const dcm_summary *s = &p.sum;
    assert_int_equal(s->frames, 3);
    assert_true(s->has_position && s->position[2] == 10.0);
    assert_true(s->has_orientation && s->orientation[1] == 1.0 && s->orientation[5] == -1.0);
    assert_true(s->has_pixel_spacing && s->pixel_spacing[1] == 0.8);
    assert_true(s->has_slice_thickness && s->slice_thickness == 1.25);
    parsed_free(&p);
    free(b.p);
}

/* The dataset reader on its own: events, depths, items, and errors repeated after failure. */
static void
dataset_reader_events(void **state)
{
    (void)state;
    wbuf b = {NULL, 0, 0, ENC_EXPLICIT};
    w_str(&b, 0x00080060u, "CS", "MR");
    size_t s = w_seq(&b, 0x00081140u, 0);
    size_t i = w_item(&b, 1);
    w_str(&b, 0x00081155u, "UI", "1.2");
    w_item_end(&b, i, 1);
    w_seq_end(&b, s, 0);
    w_str(&b, 0x00100010u, "PN", "X");
    rnd_ds_reader *r = NULL;
    tsr_err err = {0};
    assert_int_equal(rnd_ds_reader_new(b.p, b.len, 0, RND_DS_EXPLICIT_LE, 4, &r, &err), TSR_OK);
    static const struct {
        rnd_ds_event ev;
        uint32_t tag;
        int depth;
    } want[] = {
        {RND_DS_ELEMENT, 0x00080060u, 0},
        {RND_DS_SEQUENCE, 0x00081140u, 0},
        {RND_DS_ITEM, 0x00081140u, 1},
        {RND_DS_ELEMENT, 0x00081155u, 1},
        {RND_DS_ITEM_END, 0x00081140u, 1},
        {RND_DS_SEQUENCE_END, 0x00081140u, 0},
        {RND_DS_ELEMENT, 0x00100010u, 0},
        {RND_DS_END, 0, 0},
        {RND_DS_END, 0, 0},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        rnd_ds_event ev;
        rnd_ds_elem e;
        assert_int_equal(rnd_ds_next(r, &ev, &e, &err), TSR_OK);
        assert_int_equal(ev, want[k].ev);
        if (ev != RND_DS_END) {
            assert_int_equal(e.tag, want[k].tag);
        }
        assert_int_equal(e.depth, want[k].depth);
    }
    rnd_ds_reader_free(r);
    /* skip a sequence, then an error that sticks */
    assert_int_equal(rnd_ds_reader_new(b.p, b.len - 2, 0, RND_DS_EXPLICIT_LE, 4, &r, &err), TSR_OK);
    rnd_ds_event ev;
    rnd_ds_elem e;
    assert_int_equal(rnd_ds_next(r, &ev, &e, &err), TSR_OK);
    assert_int_equal(rnd_ds_next(r, &ev, &e, &err), TSR_OK);
    assert_int_equal(ev, RND_DS_SEQUENCE);
    assert_int_equal(rnd_ds_skip(r, &err), TSR_OK);
    assert_int_equal(rnd_ds_next(r, &ev, &e, &err), TSR_ECORRUPT);
    char first[256];
    snprintf(first, sizeof first, "%s", err.msg);
    memset(&err, 0, sizeof err);
    assert_int_equal(rnd_ds_next(r, &ev, &e, &err), TSR_ECORRUPT);
    assert_string_equal(err.msg, first);
    assert_int_equal(rnd_ds_next(r, &ev, &e, NULL), TSR_ECORRUPT);
    rnd_ds_reader_free(r);
    rnd_ds_reader_free(NULL);
    assert_int_equal(rnd_ds_reader_new(b.p, b.len, b.len + 1, RND_DS_EXPLICIT_LE, 4, &r, NULL),
                     TSR_EINVAL);
    assert_int_equal(rnd_ds_reader_new(b.p, b.len, 0, RND_DS_EXPLICIT_LE, 0, &r, &err), TSR_EINVAL);
    assert_int_equal(rnd_ds_encoding_of("1.2.840.10008.1.2"), RND_DS_IMPLICIT_LE);
    assert_int_equal(rnd_ds_encoding_of("1.2.840.10008.1.2.2"), RND_DS_EXPLICIT_BE);
    assert_int_equal(rnd_ds_encoding_of("1.2.840.10008.1.2.4.50"), RND_DS_EXPLICIT_LE);
    free(b.p);
}

/* The dictionary: both directions, repeating groups, group lengths, private tags. */
static void
dictionary_lookups(void **state)
{
    (void)state;
    char vr[3];
    const char *kw = NULL;
    uint32_t tag = 0;
    assert_int_equal(rnd_dict_lookup(0x00100010u, vr, &kw), 0);
    assert_string_equal(vr, "PN");
    assert_string_equal(kw, "PatientName");
    assert_int_equal(rnd_dict_lookup(0x7fe00010u, vr, &kw), 0);
    assert_string_equal(vr, "OW"); /* OB or OW */
    assert_int_equal(rnd_dict_lookup(0x00280106u, vr, NULL), 0);
    assert_string_equal(vr, "US"); /* US or SS */
    assert_int_equal(rnd_dict_lookup(0x00283006u, vr, NULL), 0);
    assert_string_equal(vr, "OW"); /* US or OW */
    assert_int_equal(rnd_dict_lookup(0x60023000u, vr, &kw), 0);
    assert_string_equal(vr, "OW");
    assert_string_equal(kw, "OverlayData");
    assert_int_equal(rnd_dict_lookup(0x601e0010u, vr, &kw), 0);
    assert_string_equal(kw, "OverlayRows");
    assert_int_equal(rnd_dict_lookup(0x60210010u, vr, &kw), -1); /* not a repeating group */
    assert_int_equal(rnd_dict_lookup(0x00280000u, vr, &kw), 0);
    assert_string_equal(vr, "UL");
    assert_int_equal(rnd_dict_lookup(0x00091001u, vr, &kw), -1);
    assert_int_equal(rnd_dict_lookup(0x00090010u, vr, &kw), -1);
    assert_int_equal(rnd_dict_lookup(0xfffee000u, vr, &kw), -1);
    assert_int_equal(rnd_dict_lookup(0x00089999u, NULL, NULL), -1);
    assert_int_equal(rnd_dict_lookup(0x0040a730u, vr, &kw), 0);
    assert_string_equal(vr, "SQ");
    assert_string_equal(kw, "ContentSequence");
    assert_int_equal(rnd_dict_find_keyword("PatientName", &tag), 0);
    assert_int_equal(tag, 0x00100010u);
    assert_int_equal(rnd_dict_find_keyword("OverlayData", &tag), 0);
    assert_int_equal(tag, 0x60003000u);
    assert_int_equal(rnd_dict_find_keyword("StudyInstanceUID", &tag), 0);
    assert_int_equal(tag, 0x0020000du);
    assert_int_equal(rnd_dict_find_keyword("patientname", &tag), -1);
    assert_int_equal(rnd_dict_find_keyword("", &tag), -1);
    assert_int_equal(rnd_dict_find_keyword(NULL, &tag), -1);
    /* the store's wrappers */
    assert_int_equal(dcm_tag_parse("PatientName", &tag), 0);
    assert_int_equal(tag, 0x00100010u);
    assert_int_equal(dcm_tag_parse("7fe00010", &tag), 0);
    assert_int_equal(tag, 0x7fe00010u);
    assert_int_equal(dcm_tag_parse("0020000D", &tag), 0);
    assert_int_equal(tag, 0x0020000du);
    assert_int_equal(dcm_tag_parse("0020000G", &tag), -1);
    assert_int_equal(dcm_tag_parse("0020000", &tag), -1);
    assert_int_equal(dcm_tag_parse("NoSuchKeyword", &tag), -1);
    assert_int_equal(dcm_tag_parse(NULL, &tag), -1);
    assert_string_equal(dcm_tag_vr(0x00100010u), "PN");
    assert_string_equal(dcm_tag_vr(0x00200013u), "IS");
    assert_string_equal(dcm_tag_vr(0x00091001u), "UN");
    assert_string_equal(dcm_tag_vr(0x00089999u), "UN");
    /* every keyword maps back to its tag */
    for (uint32_t t = 0x00080000u; t < 0x00081000u; t++) {
        if (rnd_dict_lookup(t, vr, &kw) == 0 && kw[0] && (t & 0xffff) != 0) {
            assert_int_equal(rnd_dict_find_keyword(kw, &tag), 0);
            assert_int_equal(tag, t);
        }
    }
}

/* UTF-8 sanitising on its own: overlong forms, surrogates and out-of-range code points go. */
static void
utf8_sanitizer(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } k[] = {
        {"plain", "plain"},
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
        {"a\xe2\x82", "a\xef\xbf\xbd\xef\xbf\xbd"},
    };
    for (size_t t = 0; t < sizeof k / sizeof k[0]; t++) {
        dcm__buf out = {0};
        assert_int_equal(dcm__utf8_sanitize((const uint8_t *)k[t].in, strlen(k[t].in), &out),
                         TSR_OK);
        assert_string_equal(out.p, k[t].out);
        json_t *j = json_stringn(out.p, out.len); /* Jansson's own check agrees */
        assert_non_null(j);
        json_decref(j);
        dcm__buf_free(&out);
    }
}

TSR_TEST_MAIN(cmocka_unit_test(explicit_le_values_and_summary),
              cmocka_unit_test(every_encoding_gives_the_same_json),
              cmocka_unit_test(person_names_and_multiple_values),
              cmocka_unit_test(inline_binary_and_bulk_data),
              cmocka_unit_test(encapsulated_pixel_data),
              cmocka_unit_test(order_duplicates_and_odd_lengths), cmocka_unit_test(character_sets),
              cmocka_unit_test(every_truncation_fails_cleanly), cmocka_unit_test(random_mutations),
              cmocka_unit_test(depth_bomb), cmocka_unit_test(bad_uids_refused),
              cmocka_unit_test(missing_meta_refused), cmocka_unit_test(deflate_bomb_refused),
              cmocka_unit_test(functional_group_geometry), cmocka_unit_test(dataset_reader_events),
              cmocka_unit_test(dictionary_lookups), cmocka_unit_test(utf8_sanitizer))
