/* SPDX-License-Identifier: MIT */
/* test_data_jpeg_check.c: the strict JPEG header scan (rnd__jpeg_check) on hand-built
 * codestreams, one rule per case, and on every JPEG frame of the shared corpus. */
#include "tsr_test.h"

#include "rnd_internal.h"

#include <dirent.h>

/* ---------------------------------------------------------------- building codestreams */

typedef struct comp {
    uint8_t id, hv, tq;
} comp;

typedef struct jpeg_spec {
    uint8_t sof;       /* 0xC0.. */
    uint8_t precision; /* P */
    uint16_t w, h;
    int nf;
    comp c[5];
    int ns; /* SOS components: the first ns frame components unless sos_ids[0] is set */
    uint8_t sos_ids[4];
    uint8_t ss, se, ahal;
} jpeg_spec;

static const jpeg_spec k_baseline = {.sof = 0xC0,
                                     .precision = 8,
                                     .w = 16,
                                     .h = 8,
                                     .nf = 1,
                                     .c = {{1, 0x11, 0}},
                                     .ns = 1,
                                     .ss = 0,
                                     .se = 63,
                                     .ahal = 0};

typedef struct bytes {
    uint8_t b[512];
    size_t n;
} bytes;

static void
put(bytes *o, const void *p, size_t n)
{
    assert_true(o->n + n <= sizeof o->b);
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void
put8(bytes *o, unsigned v)
{
    uint8_t b = (uint8_t)v;
    put(o, &b, 1);
}

static void
put16(bytes *o, unsigned v)
{
    put8(o, v >> 8);
    put8(o, v & 0xFF);
}

static void
put_sof(bytes *o, const jpeg_spec *s)
{
    put8(o, 0xFF);
    put8(o, s->sof);
    put16(o, 8 + 3 * (unsigned)s->nf);
    put8(o, s->precision);
    put16(o, s->h);
    put16(o, s->w);
    put8(o, (unsigned)s->nf);
    for (int i = 0; i < s->nf; i++) {
        put8(o, s->c[i].id);
        put8(o, s->c[i].hv);
        put8(o, s->c[i].tq);
    }
}

static void
put_sos(bytes *o, const jpeg_spec *s)
{
    put8(o, 0xFF);
    put8(o, 0xDA);
    put16(o, 6 + 2 * (unsigned)s->ns);
    put8(o, (unsigned)s->ns);
    for (int i = 0; i < s->ns; i++) {
        put8(o, s->sos_ids[0] ? s->sos_ids[i] : s->c[i].id);
        put8(o, 0x00);
    }
    put8(o, s->ss);
    put8(o, s->se);
    put8(o, s->ahal);
}

/* SOI, an APP0 and a DQT (skipped but length-checked), SOF, a tiny DHT, SOS, a few bytes of
 * entropy-coded data and EOI. */
static bytes
build(const jpeg_spec *s)
{
    static const uint8_t soi[] = {0xFF, 0xD8};
    static const uint8_t app0[] = {0xFF, 0xE0, 0x00, 0x07, 'J', 'F', 'I', 'F', 0};
    /* Table class/id, 16 code-length counts (one code of length 1), one symbol. */
    static const uint8_t dht[] = {0xFF, 0xC4, 0x00, 0x14, 0x00, 1, 0, 0, 0, 0, 0,
                                  0,    0,    0,    0,    0,    0, 0, 0, 0, 0, 0x05};
    _Static_assert(sizeof dht == 2 + 0x14, "DHT length");
    bytes o = {.n = 0};
    put(&o, soi, sizeof soi);
    put(&o, app0, sizeof app0);
    put8(&o, 0xFF);
    put8(&o, 0xDB);
    put16(&o, 67);
    put8(&o, 0);
    for (int i = 0; i < 64; i++) {
        put8(&o, 1);
    }
    put_sof(&o, s);
    put(&o, dht, sizeof dht);
    put_sos(&o, s);
    static const uint8_t tail[] = {0x12, 0x34, 0xFF, 0x00, 0x56, 0xFF, 0xD9};
    put(&o, tail, sizeof tail);
    return o;
}

/* Runs the check on an exact-size heap copy, so that AddressSanitizer sees any read past the
 * end, with and without an error struct. */
static int
check(const uint8_t *p, size_t n, tsr_err *err)
{
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, p, n);
    int rc = rnd__jpeg_check(copy, n, NULL);
    memset(err, 0, sizeof *err);
    assert_int_equal(rnd__jpeg_check(copy, n, err), rc);
    free(copy);
    if (rc != TSR_OK) {
        assert_int_equal(err->code, rc);
        assert_true(strncmp(err->msg, "JPEG: ", 6) == 0);
    }
    return rc;
}

static void
expect_ok(const jpeg_spec *s, const char *what)
{
    bytes b = build(s);
    tsr_err err;
    if (check(b.b, b.n, &err) != TSR_OK) {
        fail_msg("%s: rejected: %s", what, err.msg);
    }
}

static void
expect_bad(const jpeg_spec *s, int code, const char *msg_part, const char *what)
{
    bytes b = build(s);
    tsr_err err;
    int rc = check(b.b, b.n, &err);
    if (rc != code || !strstr(err.msg, msg_part)) {
        fail_msg("%s: rc %d '%s', want %d with '%s'", what, rc, err.msg, code, msg_part);
    }
}

/* ---------------------------------------------------------------- SOS rules per process */

static void
sequential_sos(void **state)
{
    (void)state;
    expect_ok(&k_baseline, "baseline");
    jpeg_spec s = k_baseline;
    s.sof = 0xC1;
    s.precision = 12;
    expect_ok(&s, "extended 12-bit");
    s.sof = 0xC9;
    expect_ok(&s, "extended arithmetic");

    /* The PVRG defect (Se = 0 instead of 63) is a tolerated quirk: both reference toolkits
     * decode such files. */
    s = k_baseline;
    s.sof = 0xC1;
    s.precision = 12;
    s.se = 0;
    expect_ok(&s, "PVRG Se=0 quirk");

    s = k_baseline;
    s.ss = 1;
    expect_bad(&s, TSR_ECORRUPT, "sequential DCT process (Ss=1, Se=63)", "Ss=1");
    s = k_baseline;
    s.se = 62;
    expect_bad(&s, TSR_ECORRUPT, "sequential DCT process (Ss=0, Se=62)", "Se=62");
    s = k_baseline;
    s.ahal = 0x01;
    expect_bad(&s, TSR_ECORRUPT, "sequential DCT process (Ss=0, Se=63, Ah=0, Al=1)", "Al=1");
    s = k_baseline;
    s.ahal = 0x10;
    expect_bad(&s, TSR_ECORRUPT, "(Ss=0, Se=63, Ah=1, Al=0)", "Ah=1");
}

static void
lossless_sos(void **state)
{
    (void)state;
    jpeg_spec s = k_baseline;
    s.sof = 0xC3;
    s.precision = 16;
    s.se = 0;
    for (uint8_t ss = 1; ss <= 7; ss++) {
        s.ss = ss;
        expect_ok(&s, "lossless predictor 1..7");
    }
    s.ss = 1;
    s.ahal = 0x0F; /* point transform 15 < 16 bits */
    expect_ok(&s, "lossless Pt 15");
    s.precision = 2;
    s.ahal = 0x01;
    expect_ok(&s, "lossless P=2, Pt=1");

    static const struct {
        uint8_t p, ss, se, ahal;
        const char *msg;
    } bad[] = {
        {16, 0, 0, 0, "(Ss=0, Se=0)"},   /* predictor 0: hierarchical only */
        {16, 8, 0, 0, "(Ss=8, Se=0)"},   /* no such predictor */
        {16, 1, 63, 0, "(Ss=1, Se=63)"}, /* a DCT-style SOS on a lossless frame */
        {16, 1, 0, 0x10, "(Ss=1, Se=0, Ah=1, Al=0)"},
        {8, 1, 0, 0x08, "(Ss=1, Se=0, Ah=0, Al=8)"}, /* Pt must be below P */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s.precision = bad[i].p;
        s.ss = bad[i].ss;
        s.se = bad[i].se;
        s.ahal = bad[i].ahal;
        char want[128];
        snprintf(want, sizeof want, "invalid SOS parameters for a lossless process %s", bad[i].msg);
        expect_bad(&s, TSR_ECORRUPT, want, bad[i].msg);
    }
    s = k_baseline;
    s.sof = 0xCB; /* lossless, arithmetic */
    s.ss = 1;
    s.se = 0;
    expect_ok(&s, "SOF11");
    s.se = 63;
    expect_bad(&s, TSR_ECORRUPT, "lossless", "SOF11 Se=63");
}

static void
progressive_sos(void **state)
{
    (void)state;
    jpeg_spec s = {.sof = 0xC2,
                   .precision = 8,
                   .w = 16,
                   .h = 16,
                   .nf = 3,
                   .c = {{1, 0x22, 0}, {2, 0x11, 1}, {3, 0x11, 1}},
                   .ns = 3};
    /* A DC first scan over all components, with successive approximation. */
    s.ss = 0;
    s.se = 0;
    s.ahal = 0x01;
    expect_ok(&s, "DC first");
    s.ahal = 0x21;
    expect_ok(&s, "DC refinement Ah=2 Al=1");
    s.ns = 1;
    s.ss = 1;
    s.se = 5;
    s.ahal = 0x02;
    expect_ok(&s, "AC first band 1..5");
    s.ss = 6;
    s.se = 63;
    s.ahal = 0;
    expect_ok(&s, "AC band 6..63");
    s.precision = 12;
    expect_ok(&s, "12-bit progressive");
    s.precision = 8;

    static const struct {
        int ns;
        uint8_t ss, se, ahal;
    } bad[] = {
        {3, 0, 5, 0},     /* DC scan with Se > 0 */
        {3, 1, 5, 0},     /* interleaved AC scan */
        {1, 6, 5, 0},     /* Ss > Se */
        {1, 1, 64, 0},    /* Se > 63 */
        {1, 1, 63, 0x20}, /* refinement that drops two bits */
        {1, 1, 63, 0x0E}, /* Al > 13 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s.ns = bad[i].ns;
        s.ss = bad[i].ss;
        s.se = bad[i].se;
        s.ahal = bad[i].ahal;
        expect_bad(&s, TSR_ECORRUPT, "for a progressive DCT process", "progressive");
    }
}

/* ---------------------------------------------------------------- frame header rules */

static void
frame_header_rules(void **state)
{
    (void)state;
    jpeg_spec s = k_baseline;
    s.precision = 12; /* baseline is 8-bit only */
    expect_bad(&s, TSR_ECORRUPT, "precision 12 is invalid for SOF0", "baseline 12-bit");
    s = k_baseline;
    s.sof = 0xC1;
    s.precision = 16;
    expect_bad(&s, TSR_ECORRUPT, "precision 16", "extended 16-bit");
    s.sof = 0xC3;
    s.precision = 1;
    s.ss = 1;
    s.se = 0;
    expect_bad(&s, TSR_ECORRUPT, "precision 1", "lossless 1-bit");
    s.precision = 17;
    expect_bad(&s, TSR_ECORRUPT, "precision 17", "lossless 17-bit");

    s = k_baseline;
    s.w = 0;
    expect_bad(&s, TSR_ECORRUPT, "frame size 0x8", "width 0");
    s = k_baseline;
    s.h = 0; /* height from a DNL marker: not supported by the decoders */
    expect_bad(&s, TSR_ECORRUPT, "frame size 16x0", "height 0");

    s = k_baseline;
    s.nf = 0;
    s.ns = 0;
    expect_bad(&s, TSR_ECORRUPT, "0 components", "no components");
    s = k_baseline;
    s.nf = 5;
    for (int i = 0; i < 5; i++) {
        s.c[i] = (comp){(uint8_t)(i + 1), 0x11, 0};
    }
    expect_bad(&s, TSR_ECORRUPT, "5 components", "5 components");

    s = k_baseline;
    s.c[0].hv = 0x01;
    expect_bad(&s, TSR_ECORRUPT, "sampling factors 0x1", "H=0");
    s.c[0].hv = 0x15;
    expect_bad(&s, TSR_ECORRUPT, "sampling factors 1x5", "V=5");
    s = k_baseline;
    s.c[0].tq = 4;
    expect_bad(&s, TSR_ECORRUPT, "quantization table 4", "Tq=4");

    s = (jpeg_spec){.sof = 0xC0,
                    .precision = 8,
                    .w = 8,
                    .h = 8,
                    .nf = 2,
                    .c = {{7, 0x11, 0}, {7, 0x11, 0}},
                    .ns = 1,
                    .se = 63};
    expect_bad(&s, TSR_ECORRUPT, "appears twice", "duplicate component id");

    /* 3 components of 2x2 blocks: 12 data units per MCU, above T.81's 10. */
    s = (jpeg_spec){.sof = 0xC0,
                    .precision = 8,
                    .w = 8,
                    .h = 8,
                    .nf = 3,
                    .c = {{1, 0x22, 0}, {2, 0x22, 0}, {3, 0x22, 0}},
                    .ns = 3,
                    .se = 63};
    expect_bad(&s, TSR_ECORRUPT, "12 blocks per MCU", "MCU too large");
    s.ns = 1; /* one component at a time is fine */
    expect_ok(&s, "non-interleaved 2x2");

    /* Hierarchical (differential) frames are refused as unsupported, not corrupt. */
    static const uint8_t diff[] = {0xC5, 0xC6, 0xC7, 0xCD, 0xCE, 0xCF};
    for (size_t i = 0; i < sizeof diff; i++) {
        s = k_baseline;
        s.sof = diff[i];
        expect_bad(&s, TSR_EUNSUPP, "hierarchical", "differential SOF");
    }
}

static void
scan_header_rules(void **state)
{
    (void)state;
    jpeg_spec s = {.sof = 0xC0,
                   .precision = 8,
                   .w = 8,
                   .h = 8,
                   .nf = 3,
                   .c = {{1, 0x11, 0}, {2, 0x11, 1}, {3, 0x11, 1}},
                   .ns = 3,
                   .se = 63};
    expect_ok(&s, "3-component baseline");
    s.sos_ids[0] = 1;
    s.sos_ids[1] = 9;
    s.sos_ids[2] = 3;
    expect_bad(&s, TSR_ECORRUPT, "component 9 that is not in the frame", "unknown component");
    s.sos_ids[1] = 1;
    expect_bad(&s, TSR_ECORRUPT, "component 1 twice", "repeated component");

    s = k_baseline;
    s.ns = 2; /* more than the frame has */
    s.sos_ids[0] = 1;
    s.sos_ids[1] = 1;
    expect_bad(&s, TSR_ECORRUPT, "SOS has 2 components, the frame has 1", "Ns > Nf");
    s = k_baseline;
    s.ns = 0;
    expect_bad(&s, TSR_ECORRUPT, "SOS has 0 components", "Ns = 0");

    /* Table selectors above 3. */
    s = k_baseline;
    bytes b = build(&s);
    size_t sos = 0;
    for (size_t i = 0; i + 1 < b.n; i++) {
        if (b.b[i] == 0xFF && b.b[i + 1] == 0xDA) {
            sos = i;
            break;
        }
    }
    assert_true(sos > 0);
    b.b[sos + 6] = 0x40; /* Td = 4 */
    tsr_err err;
    assert_int_equal(check(b.b, b.n, &err), TSR_ECORRUPT);
    assert_non_null(strstr(err.msg, "invalid tables 4/0"));
    /* SOS length that disagrees with Ns. */
    b = build(&s);
    b.b[sos + 3] += 2;
    assert_int_equal(check(b.b, b.n, &err), TSR_ECORRUPT);
    assert_non_null(strstr(err.msg, "SOS length"));
}

/* ---------------------------------------------------------------- marker structure */

static void
marker_structure(void **state)
{
    (void)state;
    tsr_err err;
    bytes good = build(&k_baseline);

    /* Fill bytes before a marker are allowed (T.81 B.1.1.2). */
    bytes b = {.n = 0};
    put(&b, good.b, 2);
    put8(&b, 0xFF);
    put8(&b, 0xFF);
    put(&b, good.b + 2, good.n - 2);
    assert_int_equal(check(b.b, b.n, &err), TSR_OK);

    /* Not starting with SOI (also: J2K and empty input). */
    static const uint8_t j2k[] = {0xFF, 0x4F, 0xFF, 0x51, 0, 0};
    assert_int_equal(check(j2k, sizeof j2k, &err), TSR_ECORRUPT);
    assert_non_null(strstr(err.msg, "SOI"));
    assert_int_equal(check(good.b, 0, &err), TSR_ECORRUPT);
    assert_int_equal(rnd__jpeg_check(NULL, 0, &err), TSR_ECORRUPT);
    assert_int_equal(rnd__jpeg_check(NULL, 10, NULL), TSR_ECORRUPT);

    /* Garbage between segments (IJG would skip it with a warning). */
    b.n = 0;
    put(&b, good.b, 11); /* SOI + APP0 */
    put8(&b, 0x00);
    put(&b, good.b + 11, good.n - 11);
    assert_int_equal(check(b.b, b.n, &err), TSR_ECORRUPT);
    assert_non_null(strstr(err.msg, "expected a marker at byte 11, found 0x00"));

    /* Markers that may not come before the first scan. */
    static const uint8_t stray[] = {0xD8, 0xD0, 0xD7, 0x01, 0xDC, 0xC8, 0xF7, 0xF8, 0x02, 0xBF};
    for (size_t i = 0; i < sizeof stray; i++) {
        b.n = 0;
        put(&b, good.b, 11);
        put8(&b, 0xFF);
        put8(&b, stray[i]);
        put16(&b, 4);
        put16(&b, 0);
        put(&b, good.b + 11, good.n - 11);
        if (check(b.b, b.n, &err) != TSR_ECORRUPT || !strstr(err.msg, "unexpected marker")) {
            fail_msg("marker 0x%02X: '%s'", stray[i], err.msg);
        }
    }

    /* EOI before any scan. */
    static const uint8_t soi_eoi[] = {0xFF, 0xD8, 0xFF, 0xD9};
    assert_int_equal(check(soi_eoi, sizeof soi_eoi, &err), TSR_ECORRUPT);
    assert_non_null(strstr(err.msg, "EOI"));

    /* SOS before SOF, and two SOFs. */
    jpeg_spec s = k_baseline;
    b.n = 0;
    put(&b, good.b, 2);
    put_sos(&b, &s);
    assert_int_equal(check(b.b, b.n, &err), TSR_ECORRUPT);
    assert_non_null(strstr(err.msg, "SOS marker before any SOF"));
    b.n = 0;
    put(&b, good.b, 2);
    put_sof(&b, &s);
    put_sof(&b, &s);
    put_sos(&b, &s);
    assert_int_equal(check(b.b, b.n, &err), TSR_ECORRUPT);
    assert_non_null(strstr(err.msg, "more than one SOF"));

    /* A segment length below 2, or running past the end. */
    b = good;
    b.b[4] = 0;
    b.b[5] = 1;
    assert_int_equal(check(b.b, b.n, &err), TSR_ECORRUPT);
    assert_non_null(strstr(err.msg, "length 1"));
    b.b[4] = 0xFF;
    b.b[5] = 0xF0;
    assert_int_equal(check(b.b, b.n, &err), TSR_ECORRUPT);
    assert_non_null(strstr(err.msg, "bytes are left"));

    /* A DRI of the wrong size. */
    b.n = 0;
    put(&b, good.b, 2);
    static const uint8_t dri[] = {0xFF, 0xDD, 0x00, 0x05, 0, 1, 2};
    put(&b, dri, sizeof dri);
    put(&b, good.b + 2, good.n - 2);
    assert_int_equal(check(b.b, b.n, &err), TSR_ECORRUPT);
    assert_non_null(strstr(err.msg, "DRI"));
}

/* Every prefix of a valid codestream that stops before the end of its SOS fails cleanly, and
 * no prefix reads outside the buffer (the copies are exact-size heap blocks). */
static void
every_truncation(void **state)
{
    (void)state;
    static const jpeg_spec specs[] = {
        {.sof = 0xC0,
         .precision = 8,
         .w = 16,
         .h = 8,
         .nf = 1,
         .c = {{1, 0x11, 0}},
         .ns = 1,
         .se = 63},
        {.sof = 0xC3,
         .precision = 16,
         .w = 9,
         .h = 7,
         .nf = 3,
         .c = {{1, 0x11, 0}, {2, 0x11, 0}, {3, 0x11, 0}},
         .ns = 3,
         .ss = 1},
    };
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        bytes b = build(&specs[k]);
        size_t sos_end = 0;
        for (size_t i = 0; i + 1 < b.n; i++) {
            if (b.b[i] == 0xFF && b.b[i + 1] == 0xDA) {
                sos_end = i + 2 + ((size_t)b.b[i + 2] << 8 | b.b[i + 3]);
                break;
            }
        }
        assert_true(sos_end > 0);
        tsr_err err;
        for (size_t n = 0; n <= b.n; n++) {
            int rc = check(b.b, n, &err);
            if ((n < sos_end) != (rc != TSR_OK)) {
                fail_msg("spec %zu cut at %zu of %zu: rc %d '%s'", k, n, b.n, rc, err.msg);
            }
        }
    }
}

/* Random bytes after a valid SOI never crash the scan. */
static void
garbage_never_crashes(void **state)
{
    (void)state;
    uint32_t x = 88172645u;
    uint8_t buf[64];
    tsr_err err;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 2 + (size_t)(iter % 62);
        buf[0] = 0xFF;
        buf[1] = 0xD8;
        for (size_t i = 2; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            /* Bias towards marker bytes so the walk gets past the first segment. */
            buf[i] = (x & 0x300) == 0 ? 0xFF : (uint8_t)x;
        }
        (void)check(buf, n, &err);
    }
}

/* ---------------------------------------------------------------- the shared corpus */

static int
is_jpeg_ts(const char *ts)
{
    return strcmp(ts, TS_JPEG_BASELINE) == 0 || strcmp(ts, TS_JPEG_EXTENDED) == 0 ||
           strcmp(ts, TS_JPEG_LL14) == 0 || strcmp(ts, TS_JPEG_LL14SV1) == 0;
}

/* The two PVRG-written files with SOS Se = 0 (corpus README): the one in bad/ and the NEMA
 * MR1_JPLY sample, which the corpus files under syntax/ as valid. */
static int
is_pvrg_se0(const char *rel)
{
    return strcmp(rel, "bad/jpeg_sos_se0__JPEG-lossy_NM1.dcm") == 0 ||
           strcmp(rel, "syntax/jpeg_extended_12bit__MR1_JPLY.dcm") == 0;
}

static uint8_t *
slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

/* Checks every frame of one file; returns 1 when its transfer syntax is a JPEG one. */
static int
check_file(const char *rel, int *flagged)
{
    size_t len;
    uint8_t *buf = slurp(tsr_test_data(rel), &len);
    char ts[65];
    int is_jpeg = 0;
    if (rnd__precheck(buf, len, ts, sizeof ts, NULL) == TSR_OK && is_jpeg_ts(ts)) {
        rnd_dicom *d = NULL;
        tsr_err err = {0};
        is_jpeg = 1;
        if (rnd_dicom_open_mem(buf, len, NULL, &d, &err) != TSR_OK) {
            fail_msg("%s: open: %s", rel, err.msg);
        }
        const rnd_info *info = rnd_dicom_info(d);
        for (uint32_t f = 0; f < info->frames; f++) {
            const uint8_t *data;
            uint8_t *joined;
            size_t n;
            if (rnd__dicom_frame_data(d, f, &data, &n, &joined, &err) != TSR_OK) {
                fail_msg("%s frame %u: %s", rel, f + 1, err.msg);
            }
            int rc = rnd__jpeg_check(data, n, &err);
            free(joined);
            if (is_pvrg_se0(rel)) {
                (*flagged)++; /* tolerated: must pass like the rest */
            }
            if (rc != TSR_OK) {
                fail_msg("%s frame %u: %s", rel, f + 1, err.msg);
            }
        }
        rnd_dicom_close(d);
    }
    free(buf);
    return is_jpeg;
}

/* Every JPEG frame of the corpus passes the check, except the two files with the PVRG defect,
 * which fail with the documented message. */
static void
corpus_jpeg_frames(void **state)
{
    (void)state;
    static const char *const dirs[] = {"bad",   "color",      "edge",  "grayscale",
                                       "large", "multiframe", "syntax"};
    (void)tsr_test_data("syntax/jpeg_extended_12bit__JPGExtended_NM1.dcm"); /* skip if absent */
    int files = 0, flagged = 0;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", TSR_DICOM_DIR, dirs[i]);
        DIR *dir = opendir(path);
        assert_non_null(dir);
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
            size_t n = strlen(e->d_name);
            if (n < 5 || strcmp(e->d_name + n - 4, ".dcm") != 0) {
                continue;
            }
            char rel[1024];
            snprintf(rel, sizeof rel, "%s/%s", dirs[i], e->d_name);
            files += check_file(rel, &flagged);
        }
        closedir(dir);
    }
    /* 15 JPEG files at the time of writing; a shrinking corpus should not pass silently. */
    assert_true(files >= 15);
    assert_int_equal(flagged, 2);
}

TSR_TEST_MAIN(cmocka_unit_test(sequential_sos), cmocka_unit_test(lossless_sos),
              cmocka_unit_test(progressive_sos), cmocka_unit_test(frame_header_rules),
              cmocka_unit_test(scan_header_rules), cmocka_unit_test(marker_structure),
              cmocka_unit_test(every_truncation), cmocka_unit_test(garbage_never_crashes),
              cmocka_unit_test(corpus_jpeg_frames))
