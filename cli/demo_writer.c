/* SPDX-License-Identifier: MIT */
/* demo_writer.c: the minimal DICOM Part 10 writer behind the demo generators (see demo.h), and
 * the name-derived UIDs. Only what the generators need: no sequences, no encapsulated pixel
 * data, one transfer syntax (explicit VR little endian). */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE   700
#include "demo.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPLICIT_VR_LE  "1.2.840.10008.1.2.1"
#define IMPL_VERSION    "TESSERA_0.1"
#define IMPL_CLASS_NAME "tessera/implementation-class/" IMPL_VERSION
#define MAX_VALUE_LEN_2 0xFFFEu     /* largest even length of the 2-byte length form */
#define MAX_VALUE_LEN_4 0xFFFFFFFEu /* 0xFFFFFFFF means undefined length */
#define PREAMBLE_LEN    128

/* ---------------------------------------------------------------- UIDs */

/* 128-bit numbers as four 32-bit limbs, least significant first, so that the arithmetic is
 * portable C11 (no __int128). */
typedef struct u128 {
    uint32_t w[4];
} u128;

/* h *= FNV-128 prime (2^88 + 2^8 + 0x3b = 2^88 + 315), modulo 2^128. */
static void
u128_mul_fnv_prime(u128 *h)
{
    uint32_t shifted[4] = {0, 0, h->w[0] << 24, (h->w[1] << 24) | (h->w[0] >> 8)};
    uint64_t carry = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t t = (uint64_t)h->w[i] * 315u + shifted[i] + carry;
        h->w[i] = (uint32_t)t;
        carry = t >> 32;
    }
}

/* Divides `v` by 10 in place and returns the remainder. */
static unsigned
u128_div10(u128 *v)
{
    uint64_t rem = 0;
    for (int i = 3; i >= 0; i--) {
        uint64_t cur = (rem << 32) | v->w[i];
        v->w[i] = (uint32_t)(cur / 10u);
        rem = cur % 10u;
    }
    return (unsigned)rem;
}

static int
u128_is_zero(const u128 *v)
{
    return (v->w[0] | v->w[1] | v->w[2] | v->w[3]) == 0;
}

void
demo_uid_from_name(const char *name, char out[DEMO_UID_MAX + 1])
{
    /* FNV-1a, 128-bit variant (offset basis 0x6c62272e07bb014262b821756295c58d). */
    u128 h = {{0x6295c58du, 0x62b82175u, 0x07bb0142u, 0x6c62272eu}};
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h.w[0] ^= *p;
        u128_mul_fnv_prime(&h);
    }
    /* Read as a big-endian UUID, bits 79..76 (limb 2) are the version and bits 63..62 (limb 1)
     * the variant. Version 8 ("custom") and variant 10 make it a valid RFC 9562 UUID, which is
     * what the 2.25 arc (ITU-T X.667) is defined over. */
    h.w[2] = (h.w[2] & ~0x0000F000u) | 0x00008000u;
    h.w[1] = (h.w[1] & ~0xC0000000u) | 0x80000000u;

    char digits[40];
    int n = 0;
    do {
        digits[n++] = (char)('0' + u128_div10(&h));
    } while (!u128_is_zero(&h));
    int o = snprintf(out, DEMO_UID_MAX + 1, "2.25.");
    while (n > 0) {
        out[o++] = digits[--n];
    }
    out[o] = '\0';
}

int
demo_uid_valid(const char *s)
{
    if (!s) {
        return 0;
    }
    size_t len = strlen(s);
    if (len == 0 || len > DEMO_UID_MAX) {
        return 0;
    }
    const char *comp = s;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            size_t clen = (size_t)(p - comp);
            if (clen == 0 || (clen > 1 && comp[0] == '0')) {
                return 0;
            }
            if (*p == '\0') {
                return 1;
            }
            comp = p + 1;
        } else if (*p < '0' || *p > '9') {
            return 0;
        }
    }
}

/* ---------------------------------------------------------------- VR table */

enum vr_kind {
    VR_STRING, /* multi-valued with '\\', padded with a space */
    VR_TEXT,   /* one value, '\\' is an ordinary character, CR/LF allowed */
    VR_UID,    /* multi-valued UIDs, padded with NUL */
    VR_BINARY, /* bytes, padded with 0 */
};

typedef struct vr_def {
    char name[3];
    enum vr_kind kind;
    uint32_t max_value; /* per value for strings, 0 = no limit beyond the length field */
    int long_form;      /* 4-byte length field (PS3.5 7.1.2) */
} vr_def;

static const vr_def k_vrs[] = {
    {"AE", VR_STRING, 16, 0}, {"AS", VR_STRING, 4, 0},  {"AT", VR_BINARY, 0, 0},
    {"CS", VR_STRING, 16, 0}, {"DA", VR_STRING, 8, 0},  {"DS", VR_STRING, 16, 0},
    {"DT", VR_STRING, 26, 0}, {"FD", VR_BINARY, 0, 0},  {"FL", VR_BINARY, 0, 0},
    {"IS", VR_STRING, 12, 0}, {"LO", VR_STRING, 64, 0}, {"LT", VR_TEXT, 10240, 0},
    {"OB", VR_BINARY, 0, 1},  {"OD", VR_BINARY, 0, 1},  {"OF", VR_BINARY, 0, 1},
    {"OL", VR_BINARY, 0, 1},  {"OV", VR_BINARY, 0, 1},  {"OW", VR_BINARY, 0, 1},
    {"PN", VR_STRING, 64, 0}, {"SH", VR_STRING, 16, 0}, {"SL", VR_BINARY, 0, 0},
    {"SQ", VR_BINARY, 0, 1},  {"SS", VR_BINARY, 0, 0},  {"ST", VR_TEXT, 1024, 0},
    {"SV", VR_BINARY, 0, 1},  {"TM", VR_STRING, 16, 0}, {"UC", VR_STRING, 0, 1},
    {"UI", VR_UID, 64, 0},    {"UL", VR_BINARY, 0, 0},  {"UN", VR_BINARY, 0, 1},
    {"UR", VR_TEXT, 0, 1},    {"US", VR_BINARY, 0, 0},  {"UT", VR_TEXT, 0, 1},
    {"UV", VR_BINARY, 0, 1},
};

static const vr_def *
vr_find(const char *vr)
{
    if (!vr || strlen(vr) != 2) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof k_vrs / sizeof k_vrs[0]; i++) {
        if (memcmp(k_vrs[i].name, vr, 2) == 0) {
            return &k_vrs[i];
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- datasets */

typedef struct demo_elem {
    uint32_t tag;
    const vr_def *vr;
    uint32_t len; /* even */
    uint8_t *data;
} demo_elem;

struct demo_ds {
    demo_elem *elems;
    size_t n, cap;
    tsr_err err; /* err.code != TSR_OK once a put has failed */
};

int
demo_ds_create(demo_ds **out, tsr_err *err)
{
    demo_ds *ds = calloc(1, sizeof *ds);
    if (!ds) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory creating a dataset");
    }
    *out = ds;
    return TSR_OK;
}

void
demo_ds_free(demo_ds *ds)
{
    if (!ds) {
        return;
    }
    for (size_t i = 0; i < ds->n; i++) {
        free(ds->elems[i].data);
    }
    free(ds->elems);
    free(ds);
}

/* Records the first failure of a put and returns its code. */
static int
ds_fail(demo_ds *ds, int code, uint32_t tag, const char *what)
{
    if (ds->err.code == TSR_OK) {
        tsr_err_set(&ds->err, code, "element (%04X,%04X): %s", (unsigned)(tag >> 16),
                    (unsigned)(tag & 0xFFFFu), what);
    }
    return ds->err.code;
}

/* Checks what every put checks: the sticky error, the group, the length limit of the VR. */
static int
ds_check(demo_ds *ds, uint32_t tag, const vr_def *vr, size_t len)
{
    if (ds->err.code != TSR_OK) {
        return ds->err.code;
    }
    if ((tag >> 16) == 0x0000 || (tag >> 16) == 0x0002) {
        return ds_fail(ds, TSR_EINVAL, tag, "groups 0000 and 0002 are written by the writer");
    }
    size_t padded = len + (len & 1u);
    if (padded < len || padded > (vr->long_form ? MAX_VALUE_LEN_4 : MAX_VALUE_LEN_2)) {
        return ds_fail(ds, TSR_EINVAL, tag, "value too long for its VR");
    }
    return TSR_OK;
}

/* Stores `value` (`len` bytes, even, already padded), taking it over: it is freed on failure. */
static int
ds_store(demo_ds *ds, uint32_t tag, const vr_def *vr, uint8_t *value, size_t len)
{
    demo_elem *slot = NULL;
    for (size_t i = 0; i < ds->n; i++) {
        if (ds->elems[i].tag == tag) {
            slot = &ds->elems[i];
            free(slot->data);
            break;
        }
    }
    if (!slot) {
        if (ds->n == ds->cap) {
            size_t cap = ds->cap ? ds->cap * 2 : 64;
            demo_elem *grown = realloc(ds->elems, cap * sizeof *grown);
            if (!grown) {
                free(value);
                return ds_fail(ds, TSR_ENOMEM, tag, "out of memory");
            }
            ds->elems = grown;
            ds->cap = cap;
        }
        slot = &ds->elems[ds->n++];
    }
    slot->tag = tag;
    slot->vr = vr;
    slot->len = (uint32_t)len;
    slot->data = value;
    return TSR_OK;
}

/* Stores a copy of `len` bytes of `data`, plus `pad` when `len` is odd. */
static int
ds_put(demo_ds *ds, uint32_t tag, const vr_def *vr, const void *data, size_t len, uint8_t pad)
{
    int rc = ds_check(ds, tag, vr, len);
    if (rc != TSR_OK) {
        return rc;
    }
    size_t padded = len + (len & 1u);
    uint8_t *copy = malloc(padded ? padded : 1);
    if (!copy) {
        return ds_fail(ds, TSR_ENOMEM, tag, "out of memory");
    }
    if (len) {
        memcpy(copy, data, len);
    }
    if (padded != len) {
        copy[len] = pad;
    }
    return ds_store(ds, tag, vr, copy, padded);
}

/* Checks one value (between backslashes) of a string VR. */
static const char *
check_value(const vr_def *vr, const char *v, size_t len)
{
    if (vr->max_value && len > vr->max_value) {
        return "value longer than its VR allows";
    }
    if (vr->kind == VR_UID) {
        char uid[DEMO_UID_MAX + 1];
        memcpy(uid, v, len);
        uid[len] = '\0';
        if (!demo_uid_valid(uid)) {
            return "not a valid UID";
        }
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        int text_ctl = vr->kind == VR_TEXT && (c == '\r' || c == '\n');
        if ((c < 0x20 || c > 0x7E) && !text_ctl) {
            return "character outside printable ASCII";
        }
    }
    return NULL;
}

int
demo_ds_put_str(demo_ds *ds, uint32_t tag, const char *vr_name, const char *value)
{
    const vr_def *vr = vr_find(vr_name);
    if (ds->err.code != TSR_OK) {
        return ds->err.code;
    }
    if (!vr || vr->kind == VR_BINARY || !value) {
        return ds_fail(ds, TSR_EINVAL, tag, "not a string VR, or no value");
    }
    size_t len = strlen(value);
    if (vr->kind == VR_TEXT) {
        const char *why = check_value(vr, value, len);
        if (why) {
            return ds_fail(ds, TSR_EINVAL, tag, why);
        }
    } else if (len > 0) {
        for (const char *v = value;;) {
            const char *end = strchr(v, '\\');
            size_t vlen = end ? (size_t)(end - v) : strlen(v);
            const char *why = check_value(vr, v, vlen);
            if (why) {
                return ds_fail(ds, TSR_EINVAL, tag, why);
            }
            if (!end) {
                break;
            }
            v = end + 1;
        }
    }
    return ds_put(ds, tag, vr, value, len, vr->kind == VR_UID ? '\0' : ' ');
}

/* Formats `v` in at most 16 characters with as many significant digits as fit. */
static int
format_ds(double v, char out[17])
{
    if (!isfinite(v)) {
        return -1;
    }
    for (int prec = 12; prec >= 1; prec--) {
        char buf[64];
        int n = snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (n > 0 && n <= 16) {
            memcpy(out, buf, (size_t)n + 1);
            return 0;
        }
    }
    return -1;
}

int
demo_ds_put_ds(demo_ds *ds, uint32_t tag, const double *values, size_t n)
{
    char buf[16 * 17 + 1];
    size_t o = 0;
    if (ds->err.code != TSR_OK) {
        return ds->err.code;
    }
    if (n == 0 || n > 16) {
        return ds_fail(ds, TSR_EINVAL, tag, "DS needs 1..16 values");
    }
    for (size_t i = 0; i < n; i++) {
        char one[17];
        if (format_ds(values[i], one) != 0) {
            return ds_fail(ds, TSR_EINVAL, tag, "DS value not finite or not representable");
        }
        if (i > 0) {
            buf[o++] = '\\';
        }
        size_t len = strlen(one);
        memcpy(buf + o, one, len + 1);
        o += len;
    }
    return demo_ds_put_str(ds, tag, "DS", buf);
}

int
demo_ds_put_is(demo_ds *ds, uint32_t tag, long value)
{
    char buf[32];
    if (value < -2147483648L || value > 2147483647L) {
        return ds_fail(ds, TSR_EINVAL, tag, "IS value out of range");
    }
    snprintf(buf, sizeof buf, "%ld", value);
    return demo_ds_put_str(ds, tag, "IS", buf);
}

static void
le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void
le32(uint8_t *p, uint32_t v)
{
    le16(p, (uint16_t)v);
    le16(p + 2, (uint16_t)(v >> 16));
}

int
demo_ds_put_us(demo_ds *ds, uint32_t tag, uint16_t value)
{
    uint8_t b[2];
    le16(b, value);
    return ds_put(ds, tag, vr_find("US"), b, sizeof b, 0);
}

int
demo_ds_put_ul(demo_ds *ds, uint32_t tag, uint32_t value)
{
    uint8_t b[4];
    le32(b, value);
    return ds_put(ds, tag, vr_find("UL"), b, sizeof b, 0);
}

int
demo_ds_put_at(demo_ds *ds, uint32_t tag, uint32_t value_tag)
{
    uint8_t b[4];
    le16(b, (uint16_t)(value_tag >> 16));
    le16(b + 2, (uint16_t)value_tag);
    return ds_put(ds, tag, vr_find("AT"), b, sizeof b, 0);
}

int
demo_ds_put_bytes(demo_ds *ds, uint32_t tag, const char *vr_name, const void *data, size_t len)
{
    const vr_def *vr = vr_find(vr_name);
    if (ds->err.code != TSR_OK) {
        return ds->err.code;
    }
    if (!vr || (strcmp(vr->name, "OB") != 0 && strcmp(vr->name, "UN") != 0) || (!data && len)) {
        return ds_fail(ds, TSR_EINVAL, tag, "demo_ds_put_bytes takes OB or UN bytes");
    }
    return ds_put(ds, tag, vr, data, len, 0);
}

int
demo_ds_put_bytes_owned(demo_ds *ds, uint32_t tag, const char *vr_name, void *data, size_t len)
{
    const vr_def *vr = vr_find(vr_name);
    int rc;
    if (!vr || (strcmp(vr->name, "OB") != 0 && strcmp(vr->name, "UN") != 0) || (!data && len)) {
        free(data);
        return ds_fail(ds, TSR_EINVAL, tag, "demo_ds_put_bytes_owned takes OB or UN bytes");
    }
    rc = ds_check(ds, tag, vr, len);
    if (rc != TSR_OK) {
        free(data);
        return rc;
    }
    uint8_t *value = data;
    if (len & 1u) {
        value = realloc(data, len + 1);
        if (!value) {
            free(data);
            return ds_fail(ds, TSR_ENOMEM, tag, "out of memory");
        }
        value[len++] = 0;
    } else if (!value) {
        value = malloc(1);
        if (!value) {
            return ds_fail(ds, TSR_ENOMEM, tag, "out of memory");
        }
    }
    return ds_store(ds, tag, vr, value, len);
}

int
demo_ds_put_words(demo_ds *ds, uint32_t tag, const uint16_t *words, size_t n)
{
    size_t bytes;
    if (ds->err.code != TSR_OK) {
        return ds->err.code;
    }
    if (tsr_mul_size(n, 2, &bytes) != 0 || (!words && n)) {
        return ds_fail(ds, TSR_EINVAL, tag, "bad OW value");
    }
    /* Copy through a little-endian buffer: on little-endian hosts this is a plain copy, and it
     * keeps the file format independent of the host. */
    uint8_t *le = malloc(bytes ? bytes : 1);
    if (!le) {
        return ds_fail(ds, TSR_ENOMEM, tag, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        le16(le + 2 * i, words[i]);
    }
    int rc = ds_put(ds, tag, vr_find("OW"), le, bytes, 0);
    free(le);
    return rc;
}

/* ---------------------------------------------------------------- writing */

/* Appends one explicit VR little endian element to `buf` (capacity checked by the caller). */
static size_t
encode_header(uint8_t *buf, uint32_t tag, const vr_def *vr, uint32_t len)
{
    le16(buf, (uint16_t)(tag >> 16));
    le16(buf + 2, (uint16_t)tag);
    buf[4] = (uint8_t)vr->name[0];
    buf[5] = (uint8_t)vr->name[1];
    if (vr->long_form) {
        buf[6] = buf[7] = 0;
        le32(buf + 8, len);
        return 12;
    }
    le16(buf + 6, (uint16_t)len);
    return 8;
}

/* Appends a meta element with a string value, padded (UI with NUL, others with a space). */
static size_t
meta_str(uint8_t *buf, uint16_t element, const char *vr_name, const char *value)
{
    const vr_def *vr = vr_find(vr_name);
    size_t len = strlen(value);
    size_t padded = len + (len & 1u);
    size_t o = encode_header(buf, DEMO_TAG(0x0002, element), vr, (uint32_t)padded);
    memcpy(buf + o, value, len);
    if (padded != len) {
        buf[o + len] = vr->kind == VR_UID ? '\0' : ' ';
    }
    return o + padded;
}

/* The string value of a UI element without its padding, or NULL when absent or malformed. */
static int
find_uid(const demo_ds *ds, uint32_t tag, char out[DEMO_UID_MAX + 1])
{
    for (size_t i = 0; i < ds->n; i++) {
        const demo_elem *e = &ds->elems[i];
        if (e->tag == tag && e->vr->kind == VR_UID && e->len <= DEMO_UID_MAX + 1) {
            size_t n = e->len;
            while (n > 0 && (e->data[n - 1] == '\0' || e->data[n - 1] == ' ')) {
                n--;
            }
            memcpy(out, e->data, n);
            out[n] = '\0';
            return demo_uid_valid(out);
        }
    }
    return 0;
}

/* Builds preamble, "DICM" and the file meta group into `buf` (at least 1024 bytes). */
static size_t
build_meta(uint8_t *buf, const char *sop_class, const char *sop_instance)
{
    char impl_uid[DEMO_UID_MAX + 1];
    demo_uid_from_name(IMPL_CLASS_NAME, impl_uid);

    memset(buf, 0, PREAMBLE_LEN);
    memcpy(buf + PREAMBLE_LEN, "DICM", 4);
    size_t start = PREAMBLE_LEN + 4;
    size_t o = start + 12; /* the group length element, filled in last */
    o += encode_header(buf + o, DEMO_TAG(0x0002, 0x0001), vr_find("OB"), 2);
    buf[o++] = 0x00;
    buf[o++] = 0x01;
    o += meta_str(buf + o, 0x0002, "UI", sop_class);
    o += meta_str(buf + o, 0x0003, "UI", sop_instance);
    o += meta_str(buf + o, 0x0010, "UI", EXPLICIT_VR_LE);
    o += meta_str(buf + o, 0x0012, "UI", impl_uid);
    o += meta_str(buf + o, 0x0013, "SH", IMPL_VERSION);
    size_t gl = encode_header(buf + start, DEMO_TAG(0x0002, 0x0000), vr_find("UL"), 4);
    le32(buf + start + gl, (uint32_t)(o - start - 12));
    return o;
}

static int
cmp_elem_tag(const void *a, const void *b)
{
    uint32_t ta = (*(const demo_elem *const *)a)->tag;
    uint32_t tb = (*(const demo_elem *const *)b)->tag;
    return ta < tb ? -1 : ta > tb;
}

/* The folder part of `path` ("." when there is none), for syncing the directory entry. */
static void
parent_dir(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(out, cap, ".");
    } else if (slash == path) {
        snprintf(out, cap, "/");
    } else {
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
    }
}

int
demo_ds_write(const demo_ds *ds, const char *path, tsr_err *err)
{
    int rc = TSR_OK;
    const demo_elem **order = NULL;
    char *tmp = NULL;
    FILE *f = NULL;
    int fd = -1;
    int tmp_exists = 0;
    uint8_t meta[1024];
    char sop_class[DEMO_UID_MAX + 1], sop_instance[DEMO_UID_MAX + 1];

    if (ds->err.code != TSR_OK) {
        rc = tsr_err_set(err, ds->err.code, "%s", ds->err.msg);
        goto done;
    }
    if (!find_uid(ds, DEMO_TAG(0x0008, 0x0016), sop_class) ||
        !find_uid(ds, DEMO_TAG(0x0008, 0x0018), sop_instance)) {
        rc = tsr_err_set(err, TSR_EINVAL, "%s: SOPClassUID and SOPInstanceUID are required", path);
        goto done;
    }
    order = malloc((ds->n ? ds->n : 1) * sizeof *order);
    size_t tmp_len = strlen(path) + sizeof ".tmp-XXXXXX";
    tmp = malloc(tmp_len);
    if (!order || !tmp) {
        rc = tsr_err_set(err, TSR_ENOMEM, "out of memory writing %s", path);
        goto done;
    }
    for (size_t i = 0; i < ds->n; i++) {
        order[i] = &ds->elems[i];
    }
    qsort(order, ds->n, sizeof *order, cmp_elem_tag);

    snprintf(tmp, tmp_len, "%s.tmp-XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = tsr_err_set(err, TSR_EIO, "cannot create %s: %s", tmp, strerror(errno));
        goto done;
    }
    tmp_exists = 1;
    /* mkstemp makes the file 0600; a demo file is meant to be read by the server's user. */
    if (fchmod(fd, 0644) != 0 || !(f = fdopen(fd, "wb"))) {
        rc = tsr_err_set(err, TSR_EIO, "cannot open %s: %s", tmp, strerror(errno));
        goto done;
    }
    fd = -1; /* owned by f now */

    size_t meta_len = build_meta(meta, sop_class, sop_instance);
    int ok = fwrite(meta, 1, meta_len, f) == meta_len;
    for (size_t i = 0; ok && i < ds->n; i++) {
        uint8_t hdr[12];
        size_t h = encode_header(hdr, order[i]->tag, order[i]->vr, order[i]->len);
        ok = fwrite(hdr, 1, h, f) == h &&
             fwrite(order[i]->data, 1, order[i]->len, f) == order[i]->len;
    }
    if (!ok || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        rc = tsr_err_set(err, TSR_EIO, "cannot write %s: %s", tmp, strerror(errno));
        goto done;
    }
    int closed = fclose(f);
    f = NULL;
    if (closed != 0) {
        rc = tsr_err_set(err, TSR_EIO, "cannot write %s: %s", tmp, strerror(errno));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        rc = tsr_err_set(err, TSR_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto done;
    }
    tmp_exists = 0;

    /* Make the rename itself durable. Some file systems refuse fsync on a directory (EINVAL);
     * the file is complete either way, so that is not an error. */
    char dir[4096];
    parent_dir(path, dir, sizeof dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        if (fsync(dfd) != 0 && errno != EINVAL && errno != EROFS) {
            rc = tsr_err_set(err, TSR_EIO, "cannot sync folder %s: %s", dir, strerror(errno));
        }
        close(dfd);
    }

done:
    if (f) {
        fclose(f);
    }
    if (fd >= 0) {
        close(fd);
    }
    if (tmp_exists) {
        unlink(tmp);
    }
    free(tmp);
    free(order);
    return rc;
}

int
demo_mkdirs(const char *path, tsr_err *err)
{
    int rc = TSR_OK;
    size_t len = path ? strlen(path) : 0;
    char *buf = NULL;
    struct stat st;

    if (len == 0) {
        rc = tsr_err_set(err, TSR_EINVAL, "empty folder name");
        goto done;
    }
    buf = malloc(len + 1);
    if (!buf) {
        rc = tsr_err_set(err, TSR_ENOMEM, "out of memory");
        goto done;
    }
    memcpy(buf, path, len + 1);
    /* Create each prefix ending at a '/' (skipping the root), then the whole path. */
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') {
            continue;
        }
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            rc = tsr_err_set(err, TSR_EIO, "cannot create folder %s: %s", buf, strerror(errno));
            goto done;
        }
        buf[i] = saved;
    }
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = tsr_err_set(err, TSR_EIO, "%s is not a folder", path);
        goto done;
    }

done:
    free(buf);
    return rc;
}
