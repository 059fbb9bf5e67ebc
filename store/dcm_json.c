/* SPDX-License-Identifier: MIT */
/* dcm_json.c: one walk over a stored instance produces the index summary and the DICOM JSON model
 * (PS3.18 F.2).
 *
 * The walk is the render core's dataset reader (rnd.h), so the store and the renderer agree on
 * what a well-formed file is. JSON is built with Jansson in tag order: elements are inserted as
 * they come, which is tag order in any conforming file, and a dataset found out of order is
 * re-sorted once at its end. BulkDataURI values need the study, series and instance UIDs, which a
 * file may place after a binary element, so bulk elements are collected during the walk and
 * their URIs written once the UIDs are known and validated. */
#include "dcm_internal.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BULK_THRESHOLD 1024
#define DEFAULT_MAX_DEPTH      16
#define MAX_DEPTH              256 /* the reader's own limit */

/* JSON reals carry 16 significant digits: every DS (at most 16 characters) prints as written
 * (or as an equal decimal) and reads back as the same double. */
#define JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(16))

#define VR2(a, b) ((unsigned)(a) << 8 | (unsigned)(b))

#define TAG_CHARSET           0x00080005u
#define TAG_SOP_CLASS         0x00080016u
#define TAG_SOP_INSTANCE      0x00080018u
#define TAG_STUDY_UID         0x0020000du
#define TAG_SERIES_UID        0x0020000eu
#define TAG_POSITION          0x00200032u
#define TAG_ORIENTATION       0x00200037u
#define TAG_PIXEL_SPACING     0x00280030u
#define TAG_SLICE_THICKNESS   0x00180050u
#define TAG_NUMBER_OF_FRAMES  0x00280008u
#define TAG_SHARED_FG         0x52009229u
#define TAG_PER_FRAME_FG      0x52009230u
#define TAG_PLANE_POSITION    0x00209113u
#define TAG_PLANE_ORIENTATION 0x00209116u
#define TAG_PIXEL_MEASURES    0x00289110u

/* Geometry read from a functional group item, for enhanced multi-frame files. */
typedef struct geometry {
    int has_position, has_orientation, has_pixel_spacing, has_slice_thickness;
    double position[3], orientation[6], pixel_spacing[2], slice_thickness;
} geometry;

/* An element whose BulkDataURI is written after the walk. */
typedef struct bulk_ref {
    json_t *obj; /* borrowed: owned by the tree */
    char *path;
} bulk_ref;

typedef struct ctx {
    const dcm__source *src;
    rnd_ds_reader *r;
    size_t bulk_threshold;
    dcm__conv *conv;
    dcm_summary *sum;
    int json; /* build the JSON model */
    dcm__buf text;
    bulk_ref *bulk;
    size_t n_bulk, cap_bulk;
    int path_n; /* open sequences; path_tag/path_item give the place of the current item */
    uint32_t path_tag[MAX_DEPTH];
    int path_item[MAX_DEPTH];
    geometry fg[2]; /* first per-frame item, shared item */
    int has_frames;
    long frames;
    unsigned uids_seen; /* bit i: k_required[i] */
    tsr_err *err;
} ctx;

/* ---------------------------------------------------------------- small helpers */

static void
hex8(uint32_t tag, char out[9])
{
    static const char k[] = "0123456789ABCDEF";
    for (int i = 7; i >= 0; i--) {
        out[i] = k[tag & 0xf];
        tag >>= 4;
    }
    out[8] = '\0';
}

static int
nomem(ctx *c)
{
    return tsr_err_set(c->err, TSR_ENOMEM, "out of memory building DICOM JSON");
}

/* The value of an element: its bytes in the dataset buffer. */
static const uint8_t *
value_of(const ctx *c, const rnd_ds_elem *e)
{
    return c->src->data + e->offset;
}

static int
is_space_or_nul(char ch)
{
    return ch == ' ' || ch == '\0';
}

/* Trims trailing spaces and NULs, and leading spaces when `lead` is set, from s[*b, *e). */
static void
trim(const char *s, size_t *b, size_t *e, int lead)
{
    while (*e > *b && is_space_or_nul(s[*e - 1])) {
        (*e)--;
    }
    while (lead && *b < *e && s[*b] == ' ') {
        (*b)++;
    }
}

/* Parses a DS value (PS3.5 6.2: [+-] digits [. digits] [E [+-] digits], leading/trailing spaces
 * already removed). Returns 1 and writes *d for a finite number; *integral says it had no
 * fraction or exponent. */
static int
parse_ds(const char *s, size_t n, double *d, int *integral)
{
    char tmp[64];
    size_t i = 0, digits = 0;
    if (n == 0 || n >= sizeof tmp) {
        return 0;
    }
    *integral = 1;
    if (s[i] == '+' || s[i] == '-') {
        i++;
    }
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        digits++;
    }
    if (i < n && s[i] == '.') {
        *integral = 0;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            digits++;
        }
    }
    if (digits == 0) {
        return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp_digits = 0;
        *integral = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            exp_digits++;
        }
        if (exp_digits == 0) {
            return 0;
        }
    }
    if (i != n) {
        return 0;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    *d = strtod(tmp, NULL);
    return isfinite(*d);
}

/* Parses an IS value ([+-] digits). Returns 1 and writes *v. */
static int
parse_is(const char *s, size_t n, long long *v)
{
    double d;
    int integral;
    if (!parse_ds(s, n, &d, &integral) || !integral || fabs(d) > 9007199254740992.0) {
        return 0;
    }
    char tmp[64];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    *v = strtoll(tmp, NULL, 10);
    return 1;
}

/* Splits raw ASCII value bytes on backslashes and parses up to `max` DS numbers; returns how many
 * components parsed, or -1 when one did not. */
static int
parse_ds_list(const uint8_t *v, size_t n, double *out, int max)
{
    const char *s = (const char *)v;
    int k = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n && k < max; i++) {
        if (i < n && s[i] != '\\') {
            continue;
        }
        size_t b = start, e = i;
        int integral;
        trim(s, &b, &e, 1);
        if (!parse_ds(s + b, e - b, &out[k], &integral)) {
            return -1;
        }
        k++;
        start = i + 1;
    }
    return k;
}

/* Copies UTF-8 `s` into dst[cap] without cutting a multi-byte character. */
static void
copy_utf8(char *dst, size_t cap, const char *s, size_t n)
{
    if (n > cap - 1) {
        n = cap - 1;
        while (n > 0 && ((uint8_t)s[n] & 0xc0) == 0x80) {
            n--;
        }
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* ---------------------------------------------------------------- summary */

enum { K_TEXT, K_UID, K_U16, K_INT, K_DS };

/* Top-level attributes kept in dcm_summary. */
static const struct {
    uint32_t tag;
    uint8_t kind;
    uint8_t n;   /* K_DS: number of values */
    uint8_t req; /* K_UID: 1 + index in k_required, 0 when optional */
    size_t off, cap;
    size_t has_off; /* K_INT, K_DS: the has_* flag */
} k_fields[] = {
#define SIZE_OF(f) sizeof(((dcm_summary *)0)->f)
#define F_TEXT(tag, f)                                                                             \
    {                                                                                              \
        tag, K_TEXT, 0, 0, offsetof(dcm_summary, f), SIZE_OF(f), 0                                 \
    }
#define F_UID(tag, f, req)                                                                         \
    {                                                                                              \
        tag, K_UID, 0, req, offsetof(dcm_summary, f), SIZE_OF(f), 0                                \
    }
#define F_U16(tag, f)                                                                              \
    {                                                                                              \
        tag, K_U16, 0, 0, offsetof(dcm_summary, f), SIZE_OF(f), 0                                  \
    }
#define F_INT(tag, f, has)                                                                         \
    {                                                                                              \
        tag, K_INT, 0, 0, offsetof(dcm_summary, f), 0, offsetof(dcm_summary, has)                  \
    }
#define F_DS(tag, f, n, has)                                                                       \
    {                                                                                              \
        tag, K_DS, n, 0, offsetof(dcm_summary, f), 0, offsetof(dcm_summary, has)                   \
    }
    F_TEXT(0x00080005u, specific_charset),
    F_UID(0x00080016u, sop_class_uid, 1),
    F_UID(0x00080018u, sop_instance_uid, 2),
    F_TEXT(0x00080020u, study_date),
    F_TEXT(0x00080030u, study_time),
    F_TEXT(0x00080050u, accession_number),
    F_TEXT(0x00080060u, modality),
    F_TEXT(0x00080090u, referring_physician),
    F_TEXT(0x00080201u, timezone_offset),
    F_TEXT(0x00081030u, study_description),
    F_TEXT(0x0008103eu, series_description),
    F_TEXT(0x00100010u, patient_name),
    F_TEXT(0x00100020u, patient_id),
    F_TEXT(0x00100021u, issuer_of_patient_id),
    F_TEXT(0x00100030u, patient_birth_date),
    F_TEXT(0x00100040u, patient_sex),
    F_TEXT(0x00180015u, body_part),
    F_DS(0x00180050u, slice_thickness, 1, has_slice_thickness),
    F_UID(0x0020000du, study_uid, 3),
    F_UID(0x0020000eu, series_uid, 4),
    F_TEXT(0x00200010u, study_id),
    F_INT(0x00200011u, series_number, has_series_number),
    F_INT(0x00200013u, instance_number, has_instance_number),
    F_DS(0x00200032u, position, 3, has_position),
    F_DS(0x00200037u, orientation, 6, has_orientation),
    F_UID(0x00200052u, frame_of_reference_uid, 0),
    F_U16(0x00280010u, rows),
    F_U16(0x00280011u, columns),
    F_TEXT(0x00280004u, photometric),
    F_DS(0x00280030u, pixel_spacing, 2, has_pixel_spacing),
    F_U16(0x00280100u, bits_allocated),
    F_TEXT(0x00400244u, pps_start_date),
    F_TEXT(0x00400245u, pps_start_time),
#undef SIZE_OF
#undef F_TEXT
#undef F_UID
#undef F_U16
#undef F_INT
#undef F_DS
};

/* The four UIDs dcm_parse requires, in the order of F_UID's `req` numbers (from 1). */
static const struct {
    uint32_t tag;
    const char *name;
} k_required[] = {
    {TAG_SOP_CLASS, "SOPClassUID"},
    {TAG_SOP_INSTANCE, "SOPInstanceUID"},
    {TAG_STUDY_UID, "StudyInstanceUID"},
    {TAG_SERIES_UID, "SeriesInstanceUID"},
};

static int
is_text_vr(const char *vr)
{
    switch (VR2(vr[0], vr[1])) {
    case VR2('P', 'N'):
    case VR2('L', 'O'):
    case VR2('S', 'H'):
    case VR2('S', 'T'):
    case VR2('L', 'T'):
    case VR2('U', 'T'):
    case VR2('U', 'C'):
        return 1;
    default:
        return 0;
    }
}

/* NUL is not text: an embedded one (trailing ones are padding, trimmed later) becomes U+FFFD, as
 * many JSON readers refuse "\u0000" and C readers would stop there. */
static int
replace_nul(dcm__buf *t)
{
    size_t end = t->len;
    while (end > 0 && t->p[end - 1] == '\0') {
        end--;
    }
    if (!memchr(t->p, '\0', end)) {
        return TSR_OK;
    }
    dcm__buf out = {0};
    int rc = TSR_OK;
    for (size_t i = 0; i < end && rc == TSR_OK; i++) {
        rc = t->p[i] ? dcm__buf_add(&out, t->p + i, 1) : dcm__buf_add(&out, "\xEF\xBF\xBD", 3);
    }
    if (rc != TSR_OK) {
        dcm__buf_free(&out);
        return rc;
    }
    dcm__buf_free(t);
    *t = out;
    return TSR_OK;
}

/* Converts a string value to UTF-8 into c->text (the Specific Character Set applies to the
 * text VRs; the others are ASCII by definition, any stray high byte read as ISO 8859-1). */
static int
convert_text(ctx *c, const rnd_ds_elem *e, const dcm__charset *cs)
{
    c->text.len = 0;
    int pn = e->vr[0] == 'P' && e->vr[1] == 'N';
    int rc = dcm__to_utf8(c->conv, is_text_vr(e->vr) ? cs : NULL, value_of(c, e), e->length, pn,
                          &c->text);
    if (rc == TSR_OK && !c->text.p) {
        rc = dcm__buf_add(&c->text, "", 0);
    }
    if (rc == TSR_OK) {
        rc = replace_nul(&c->text);
    }
    return rc == TSR_OK ? TSR_OK : nomem(c);
}

static int
summary_element(ctx *c, const rnd_ds_elem *e, const dcm__charset *cs)
{
    dcm_summary *s = c->sum;
    const uint8_t *v = value_of(c, e);
    if (e->tag == 0x7fe00010u || e->tag == 0x7fe00008u || e->tag == 0x7fe00009u) {
        s->has_pixel_data = 1;
        return TSR_OK;
    }
    if (e->tag == TAG_NUMBER_OF_FRAMES) {
        long long f;
        size_t b = 0, n = e->length;
        trim((const char *)v, &b, &n, 1);
        c->has_frames = parse_is((const char *)v + b, n - b, &f) && f > 0 && f <= UINT32_MAX;
        c->frames = c->has_frames ? (long)f : 0;
        return TSR_OK;
    }
    for (size_t i = 0; i < sizeof k_fields / sizeof k_fields[0]; i++) {
        if (k_fields[i].tag != e->tag) {
            continue;
        }
        char *field = (char *)s + k_fields[i].off;
        int *has = (int *)(void *)((char *)s + k_fields[i].has_off);
        switch (k_fields[i].kind) {
        case K_TEXT: {
            if (convert_text(c, e, cs) != TSR_OK) {
                return TSR_ENOMEM;
            }
            size_t b = 0, n = c->text.len;
            trim(c->text.p, &b, &n, 1);
            copy_utf8(field, k_fields[i].cap, c->text.p + b, n - b);
            break;
        }
        case K_UID: {
            int valid = dcm__uid_valid(v, e->length, field);
            int req = k_fields[i].req;
            if (!valid && req) {
                char shown[80];
                dcm__printable(v, e->length, shown, sizeof shown);
                return tsr_err_set(c->err, TSR_EINVAL, "%s '%s' is not a valid UID",
                                   k_required[req - 1].name, shown);
            }
            if (!valid) {
                field[0] = '\0'; /* an optional UID that is not one is dropped */
            } else if (req) {
                c->uids_seen |= 1u << (req - 1);
            }
            break;
        }
        case K_U16:
            if (e->length >= 2) {
                uint16_t x = rnd_ds_u16(v, e->big_endian);
                if (k_fields[i].cap == sizeof(uint32_t)) {
                    *(uint32_t *)(void *)field = x;
                } else {
                    *(uint16_t *)(void *)field = x;
                }
            }
            break;
        case K_INT: {
            long long x;
            size_t b = 0, n = 0;
            const char *str = (const char *)v;
            while (n < e->length && str[n] != '\\') {
                n++; /* the first value only */
            }
            trim(str, &b, &n, 1);
            if (parse_is(str + b, n - b, &x) && x >= INT32_MIN && x <= INT32_MAX) {
                *(int *)(void *)field = (int)x;
                *has = 1;
            }
            break;
        }
        case K_DS:
            if (parse_ds_list(v, e->length, (double *)(void *)field, k_fields[i].n) ==
                k_fields[i].n) {
                *has = 1;
            }
            break;
        }
        return TSR_OK;
    }
    return TSR_OK;
}

/* Geometry inside the first item of a functional group sequence: at depth 2 under
 * (5200,9230)[0] or (5200,9229)[0], then a Plane Position, Plane Orientation or Pixel Measures
 * item 0. */
static void
functional_group_element(ctx *c, const rnd_ds_elem *e)
{
    if (c->path_n != 2 || c->path_item[0] != 0 || c->path_item[1] != 0) {
        return;
    }
    int which = c->path_tag[0] == TAG_PER_FRAME_FG ? 0 : c->path_tag[0] == TAG_SHARED_FG ? 1 : -1;
    uint32_t seq = c->path_tag[1];
    if (which < 0 ||
        (seq != TAG_PLANE_POSITION && seq != TAG_PLANE_ORIENTATION && seq != TAG_PIXEL_MEASURES)) {
        return;
    }
    geometry *g = &c->fg[which];
    const uint8_t *v = value_of(c, e);
    if (e->tag == TAG_POSITION) {
        g->has_position = parse_ds_list(v, e->length, g->position, 3) == 3;
    } else if (e->tag == TAG_ORIENTATION) {
        g->has_orientation = parse_ds_list(v, e->length, g->orientation, 6) == 6;
    } else if (e->tag == TAG_PIXEL_SPACING) {
        g->has_pixel_spacing = parse_ds_list(v, e->length, g->pixel_spacing, 2) == 2;
    } else if (e->tag == TAG_SLICE_THICKNESS) {
        g->has_slice_thickness = parse_ds_list(v, e->length, &g->slice_thickness, 1) == 1;
    }
}

/* Completes the summary after the walk: functional group fallbacks, frames, required UIDs. */
static int
summary_finish(ctx *c)
{
    dcm_summary *s = c->sum;
    for (int i = 0; i < 2; i++) {
        const geometry *g = &c->fg[i];
        if (!s->has_position && g->has_position) {
            s->has_position = 1;
            memcpy(s->position, g->position, sizeof s->position);
        }
        if (!s->has_orientation && g->has_orientation) {
            s->has_orientation = 1;
            memcpy(s->orientation, g->orientation, sizeof s->orientation);
        }
        if (!s->has_pixel_spacing && g->has_pixel_spacing) {
            s->has_pixel_spacing = 1;
            memcpy(s->pixel_spacing, g->pixel_spacing, sizeof s->pixel_spacing);
        }
        if (!s->has_slice_thickness && g->has_slice_thickness) {
            s->has_slice_thickness = 1;
            s->slice_thickness = g->slice_thickness;
        }
    }
    s->frames = !s->has_pixel_data ? 0 : c->has_frames ? (uint32_t)c->frames : 1;
    for (size_t i = 0; i < sizeof k_required / sizeof k_required[0]; i++) {
        if (!(c->uids_seen & (1u << i))) {
            return tsr_err_set(c->err, TSR_EINVAL, "no %s (%04X,%04X) in the dataset",
                               k_required[i].name, (unsigned)(k_required[i].tag >> 16),
                               (unsigned)(k_required[i].tag & 0xffff));
        }
    }
    char shown[80];
    if (!dcm__uid_valid((const uint8_t *)c->src->transfer_syntax, strlen(c->src->transfer_syntax),
                        s->transfer_syntax)) {
        dcm__printable((const uint8_t *)c->src->transfer_syntax, strlen(c->src->transfer_syntax),
                       shown, sizeof shown);
        return tsr_err_set(c->err, TSR_EINVAL, "TransferSyntaxUID '%s' is not a valid UID", shown);
    }
    return TSR_OK;
}

/* ---------------------------------------------------------------- JSON values */

/* Sets o[key] = v, consuming v; NULL v means out of memory. */
static int
set_new(ctx *c, json_t *o, const char *key, json_t *v)
{
    if (!v || json_object_set_new_nocheck(o, key, v) != 0) {
        return nomem(c);
    }
    return TSR_OK;
}

static int
append_new(ctx *c, json_t *a, json_t *v)
{
    if (!v || json_array_append_new(a, v) != 0) {
        return nomem(c);
    }
    return TSR_OK;
}

/* A JSON string of UTF-8 text the converter produced (already valid, so unchecked). */
static json_t *
jstr(const char *s, size_t n)
{
    return json_stringn_nocheck(s, n);
}

/* A DS or IS value as a JSON number, or a string when it is not a valid number (kept rather
 * than failing the instance). */
static json_t *
number_value(const char *s, size_t n, int is_is)
{
    double d;
    int integral;
    long long i;
    if (parse_is(s, n, &i)) {
        return json_integer(i); /* also a DS without fraction: 512, not 512.0 */
    }
    if (!is_is && parse_ds(s, n, &d, &integral)) {
        return json_real(d);
    }
    return jstr(s, n);
}

/* PS3.18 F.2.2: a person name as {"Alphabetic", "Ideographic", "Phonetic"}, empty groups left
 * out (trailing empty components dropped, as DCMTK does), null when all are empty. */
static json_t *
person_name(const char *s, size_t n)
{
    static const char *const k_groups[] = {"Alphabetic", "Ideographic", "Phonetic"};
    json_t *o = json_object();
    size_t start = 0;
    int g = 0;
    for (size_t i = 0; o && i <= n && g < 3; i++) {
        if (i < n && s[i] != '=') {
            continue;
        }
        size_t b = start, e = i;
        trim(s, &b, &e, 0);
        while (e > b && (s[e - 1] == '^' || s[e - 1] == ' ')) {
            e--; /* empty trailing components are insignificant (PS3.5 6.2.1.1) */
        }
        if (e > b && json_object_set_new_nocheck(o, k_groups[g], jstr(s + b, e - b)) != 0) {
            json_decref(o);
            return NULL;
        }
        g++;
        start = i + 1;
    }
    if (o && json_object_size(o) == 0) {
        json_decref(o);
        return json_null();
    }
    return o;
}

/* Character string VRs: split on backslash (except the single-valued LT, ST, UT, UR), padding
 * trimmed, empty values null (PS3.18 F.2.5). */
static int
string_values(ctx *c, json_t *o, const rnd_ds_elem *e, const dcm__charset *cs)
{
    unsigned vr = VR2(e->vr[0], e->vr[1]);
    int single =
        vr == VR2('L', 'T') || vr == VR2('S', 'T') || vr == VR2('U', 'T') || vr == VR2('U', 'R');
    int numeric = vr == VR2('D', 'S') || vr == VR2('I', 'S');
    if (convert_text(c, e, cs) != TSR_OK) {
        return TSR_ENOMEM;
    }
    const char *s = c->text.p;
    size_t n = c->text.len;
    json_t *arr = json_array();
    if (!arr) {
        return nomem(c);
    }
    size_t start = 0, nonempty = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && (single || s[i] != '\\')) {
            continue;
        }
        size_t b = start, end = i;
        /* Leading spaces are padding for every VR but the texts (PS3.5 Table 6.2-1). */
        trim(s, &b, &end, !single);
        json_t *v = end == b              ? json_null()
                    : vr == VR2('P', 'N') ? person_name(s + b, end - b)
                    : numeric             ? number_value(s + b, end - b, vr == VR2('I', 'S'))
                                          : jstr(s + b, end - b);
        nonempty += v && !json_is_null(v);
        if (append_new(c, arr, v) != TSR_OK) {
            json_decref(arr);
            return TSR_ENOMEM;
        }
        start = i + 1;
    }
    if (nonempty == 0) {
        json_decref(arr); /* only padding: an empty value */
        return TSR_OK;
    }
    return set_new(c, o, "Value", arr);
}

/* FL values as the shortest decimal that reads back as the same float, so 0.1f prints 0.1. */
static json_t *
float_value(float f)
{
    if (!isfinite(f)) {
        return json_string(isnan(f) ? "NaN" : f > 0 ? "Infinity" : "-Infinity");
    }
    char b[32];
    for (int p = 6; p <= 9; p++) {
        snprintf(b, sizeof b, "%.*g", p, (double)f);
        if (strtof(b, NULL) == f) {
            break;
        }
    }
    return json_real(strtod(b, NULL));
}

static json_t *
double_value(double d)
{
    if (!isfinite(d)) {
        return json_string(isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
    }
    return json_real(d);
}

/* 64-bit integers beyond 2^53 do not survive a JavaScript reader: those become strings. */
static json_t *
int64_value(int64_t v, int is_unsigned, uint64_t u)
{
    char b[24];
    if (is_unsigned ? u <= (1ull << 53) : (v >= -(1ll << 53) && v <= (1ll << 53))) {
        return json_integer(is_unsigned ? (json_int_t)u : (json_int_t)v);
    }
    if (is_unsigned) {
        snprintf(b, sizeof b, "%llu", (unsigned long long)u);
    } else {
        snprintf(b, sizeof b, "%lld", (long long)v);
    }
    return json_string(b);
}

/* US SS UL SL FL FD UV SV AT: fixed-size binary numbers in the file's byte order. */
static int
binary_numbers(ctx *c, json_t *o, const rnd_ds_elem *e)
{
    unsigned vr = VR2(e->vr[0], e->vr[1]);
    size_t size = vr == VR2('U', 'S') || vr == VR2('S', 'S')                          ? 2
                  : vr == VR2('F', 'D') || vr == VR2('U', 'V') || vr == VR2('S', 'V') ? 8
                                                                                      : 4;
    size_t count = e->length / size;
    if (count == 0) {
        return TSR_OK;
    }
    const uint8_t *v = value_of(c, e);
    int be = e->big_endian;
    json_t *arr = json_array();
    if (!arr) {
        return nomem(c);
    }
    for (size_t i = 0; i < count; i++) {
        const uint8_t *p = v + i * size;
        uint32_t u32 = size == 4 ? rnd_ds_u32(p, be) : 0;
        uint64_t u64 = size == 8 ? (uint64_t)rnd_ds_u32(p + (be ? 0 : 4), be) << 32 |
                                       rnd_ds_u32(p + (be ? 4 : 0), be)
                                 : 0;
        json_t *x = NULL;
        switch (vr) {
        case VR2('U', 'S'):
            x = json_integer(rnd_ds_u16(p, be));
            break;
        case VR2('S', 'S'):
            x = json_integer((int16_t)rnd_ds_u16(p, be));
            break;
        case VR2('U', 'L'):
            x = json_integer(u32);
            break;
        case VR2('S', 'L'):
            x = json_integer((int32_t)u32);
            break;
        case VR2('F', 'L'): {
            float f;
            memcpy(&f, &u32, 4);
            x = float_value(f);
            break;
        }
        case VR2('F', 'D'): {
            double d;
            memcpy(&d, &u64, 8);
            x = double_value(d);
            break;
        }
        case VR2('U', 'V'):
            x = int64_value(0, 1, u64);
            break;
        case VR2('S', 'V'):
            x = int64_value((int64_t)u64, 0, 0);
            break;
        case VR2('A', 'T'): {
            char tag[9];
            hex8((uint32_t)rnd_ds_u16(p, be) << 16 | rnd_ds_u16(p + 2, be), tag);
            x = json_stringn_nocheck(tag, 8);
            break;
        }
        }
        if (append_new(c, arr, x) != TSR_OK) {
            json_decref(arr);
            return TSR_ENOMEM;
        }
    }
    return set_new(c, o, "Value", arr);
}

static int
is_binary_vr(unsigned vr)
{
    switch (vr) {
    case VR2('O', 'B'):
    case VR2('O', 'D'):
    case VR2('O', 'F'):
    case VR2('O', 'L'):
    case VR2('O', 'V'):
    case VR2('O', 'W'):
    case VR2('U', 'N'):
        return 1;
    default:
        return 0;
    }
}

static int
is_pixel_tag(uint32_t tag)
{
    return tag == 0x7fe00010u || tag == 0x7fe00008u || tag == 0x7fe00009u;
}

/* Base64 (RFC 4648) of a value, with big-endian words swapped to little endian (PS3.18 F.2.7:
 * InlineBinary holds the little endian encoding). */
static json_t *
inline_binary(const uint8_t *v, size_t n, size_t swap)
{
    static const char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t out_len = (n + 2) / 3 * 4;
    char *s = malloc(out_len + 1);
    if (!s) {
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint8_t b[3] = {0, 0, 0};
        size_t m = n - i < 3 ? n - i : 3;
        for (size_t j = 0; j < m; j++) {
            size_t at = i + j;
            /* byte `at` of the little endian form is byte (word start + size - 1 - offset) */
            b[j] = swap > 1 && at / swap * swap + swap <= n
                       ? v[at / swap * swap + (swap - 1 - at % swap)]
                       : v[at];
        }
        s[o++] = k[b[0] >> 2];
        s[o++] = k[(b[0] & 3) << 4 | b[1] >> 4];
        s[o++] = m > 1 ? k[(b[1] & 15) << 2 | b[2] >> 6] : '=';
        s[o++] = m > 2 ? k[b[2] & 63] : '=';
    }
    json_t *j = json_stringn_nocheck(s, out_len);
    free(s);
    return j;
}

/* Appends the tag path of element `tag` at the current place ("00540016/0/00181072"). */
static char *
bulk_path(const ctx *c, uint32_t tag)
{
    size_t cap = (size_t)(c->path_n + 1) * 20 + 1;
    char *p = malloc(cap), hex[9];
    if (!p) {
        return NULL;
    }
    size_t k = 0;
    for (int i = 0; i < c->path_n; i++) {
        hex8(c->path_tag[i], hex);
        k += (size_t)snprintf(p + k, cap - k, "%s/%d/", hex, c->path_item[i]);
    }
    hex8(tag, hex);
    snprintf(p + k, cap - k, "%s", hex);
    return p;
}

/* Marks `o` as bulk data: its BulkDataURI is set once the UIDs are known. */
static int
add_bulk(ctx *c, json_t *o, uint32_t tag)
{
    if (c->n_bulk == c->cap_bulk) {
        size_t cap = c->cap_bulk ? c->cap_bulk * 2 : 8;
        bulk_ref *b = realloc(c->bulk, cap * sizeof *b);
        if (!b) {
            return nomem(c);
        }
        c->bulk = b;
        c->cap_bulk = cap;
    }
    char *path = bulk_path(c, tag);
    if (!path) {
        return nomem(c);
    }
    c->bulk[c->n_bulk++] = (bulk_ref){o, path};
    return TSR_OK;
}

/* The JSON of one element (PS3.18 F.2.3); encapsulated pixel data when `fragments`. */
static int
element_json(ctx *c, const rnd_ds_elem *e, const dcm__charset *cs, int fragments, json_t **out)
{
    json_t *o = json_object();
    if (!o || json_object_set_new_nocheck(o, "vr", json_stringn_nocheck(e->vr, 2)) != 0) {
        json_decref(o);
        return nomem(c);
    }
    unsigned vr = VR2(e->vr[0], e->vr[1]);
    int rc = TSR_OK;
    if (fragments) {
        rc = add_bulk(c, o, e->tag);
    } else if (e->length == 0) {
        /* an empty value: "vr" alone */
    } else if (is_binary_vr(vr)) {
        if (is_pixel_tag(e->tag) || e->length > c->bulk_threshold) {
            rc = add_bulk(c, o, e->tag);
        } else {
            size_t swap = 1;
            if (e->big_endian) {
                swap = vr == VR2('O', 'W')                          ? 2
                       : vr == VR2('O', 'F') || vr == VR2('O', 'L') ? 4
                       : vr == VR2('O', 'D') || vr == VR2('O', 'V') ? 8
                                                                    : 1;
            }
            rc = set_new(c, o, "InlineBinary", inline_binary(value_of(c, e), e->length, swap));
        }
    } else if (vr == VR2('U', 'S') || vr == VR2('S', 'S') || vr == VR2('U', 'L') ||
               vr == VR2('S', 'L') || vr == VR2('F', 'L') || vr == VR2('F', 'D') ||
               vr == VR2('U', 'V') || vr == VR2('S', 'V') || vr == VR2('A', 'T')) {
        rc = binary_numbers(c, o, e);
    } else {
        rc = string_values(c, o, e, cs);
    }
    if (rc != TSR_OK) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return TSR_OK;
}

/* ---------------------------------------------------------------- the walk */

static int read_dataset(ctx *c, json_t **obj, dcm__charset cs);

/* A key order check on insertion: files out of tag order are re-sorted at the end. */
typedef struct order {
    uint32_t last;
    int any, unsorted;
} order;

/* Whether an element may be added under `tag`: not a group length, not the meta group, not the
 * Data Set Trailing Padding (PS3.10 7.2: no meaning), not a repeat of a tag already there (the
 * first one is kept). */
static int
wanted(json_t *obj, order *ord, uint32_t tag, const char *key)
{
    if ((tag & 0xffff) == 0 || tag >> 16 == 0x0002 || tag == 0xfffcfffcu) {
        return 0;
    }
    if (obj && ord->any && tag <= ord->last) {
        if (json_object_get(obj, key)) {
            return 0;
        }
        ord->unsorted = 1;
    }
    ord->any = 1;
    ord->last = tag > ord->last ? tag : ord->last;
    return 1;
}

static int
cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Replaces *obj with a copy whose keys are in tag order (the hex keys sort as the tags do). */
static int
sort_object(ctx *c, json_t **obj)
{
    size_t n = json_object_size(*obj), i = 0;
    const char **keys = malloc(n * sizeof *keys);
    json_t *sorted = json_object();
    if (!keys || !sorted) {
        free(keys);
        json_decref(sorted);
        return nomem(c);
    }
    const char *key;
    json_t *v;
    json_object_foreach(*obj, key, v)
    {
        keys[i++] = key;
    }
    qsort(keys, n, sizeof *keys, cmp_keys);
    int rc = TSR_OK;
    for (i = 0; i < n && rc == TSR_OK; i++) {
        if (json_object_set_nocheck(sorted, keys[i], json_object_get(*obj, keys[i])) != 0) {
            rc = nomem(c);
        }
    }
    free(keys);
    if (rc != TSR_OK) {
        json_decref(sorted);
        return rc;
    }
    json_decref(*obj);
    *obj = sorted;
    return TSR_OK;
}

/* Reads a sequence's items up to its end; adds {"vr":"SQ","Value":[...]} to obj (may be NULL). */
static int
read_sequence(ctx *c, json_t *obj, const char *key, const rnd_ds_elem *seq, const dcm__charset *cs)
{
    json_t *items = obj ? json_array() : NULL;
    if (obj && !items) {
        return nomem(c);
    }
    c->path_tag[c->path_n++] = seq->tag;
    int rc = TSR_OK;
    for (;;) {
        rnd_ds_event ev;
        rnd_ds_elem e;
        rc = rnd_ds_next(c->r, &ev, &e, c->err);
        if (rc != TSR_OK || ev == RND_DS_SEQUENCE_END) {
            break;
        }
        c->path_item[c->path_n - 1] = e.item; /* ev is RND_DS_ITEM: nothing else comes here */
        json_t *item = obj ? json_object() : NULL;
        if (obj && !item) {
            rc = nomem(c);
            break;
        }
        rc = read_dataset(c, obj ? &item : NULL, *cs);
        if (rc == TSR_OK && obj) {
            rc = append_new(c, items, item);
        } else {
            json_decref(item);
        }
        if (rc != TSR_OK) {
            break;
        }
    }
    c->path_n--;
    if (rc != TSR_OK || !obj) {
        json_decref(items);
        return rc;
    }
    json_t *o = json_object();
    if (!o || json_object_set_new_nocheck(o, "vr", json_string("SQ")) != 0 ||
        (json_array_size(items) > 0 && json_object_set_nocheck(o, "Value", items) != 0)) {
        json_decref(o);
        json_decref(items);
        return nomem(c);
    }
    json_decref(items);
    return set_new(c, obj, key, o);
}

/* Reads elements up to the end of the current dataset (the top level or an item) into *obj
 * (obj NULL: no JSON). `cs` is the character set inherited from the enclosing dataset. */
static int
read_dataset(ctx *c, json_t **obj, dcm__charset cs)
{
    order ord = {0, 0, 0};
    json_t *o = obj ? *obj : NULL;
    for (;;) {
        rnd_ds_event ev;
        rnd_ds_elem e;
        int rc = rnd_ds_next(c->r, &ev, &e, c->err);
        if (rc != TSR_OK) {
            return rc;
        }
        if (ev == RND_DS_END || ev == RND_DS_ITEM_END) {
            break;
        }
        char key[9];
        hex8(e.tag, key);
        if (!wanted(o, &ord, e.tag, key)) {
            rc = ev == RND_DS_SEQUENCE ? rnd_ds_skip(c->r, c->err) : TSR_OK;
        } else if (ev == RND_DS_SEQUENCE) {
            rc = read_sequence(c, o, key, &e, &cs);
        } else {
            if (e.tag == TAG_CHARSET) {
                dcm__charset_parse(&cs, value_of(c, &e), e.length);
            }
            if (e.depth == 0) {
                rc = summary_element(c, &e, &cs);
            } else if (e.depth == 2) {
                functional_group_element(c, &e);
            }
            json_t *v = NULL;
            if (rc == TSR_OK && o) {
                rc = element_json(c, &e, &cs, ev == RND_DS_FRAGMENTS, &v);
            }
            if (rc == TSR_OK && o) {
                rc = set_new(c, o, key, v);
            }
        }
        if (rc != TSR_OK) {
            return rc;
        }
    }
    if (o && ord.unsorted) {
        return sort_object(c, obj);
    }
    return TSR_OK;
}

/* Writes every BulkDataURI now that the UIDs are known and valid. */
static int
write_bulk_uris(ctx *c)
{
    const dcm_summary *s = c->sum;
    dcm__buf uri = {0};
    int rc = TSR_OK;
    for (size_t i = 0; i < c->n_bulk && rc == TSR_OK; i++) {
        uri.len = 0;
        const char *parts[] = {"/studies/",   s->study_uid,        "/series/",   s->series_uid,
                               "/instances/", s->sop_instance_uid, "/bulkdata/", c->bulk[i].path};
        for (size_t k = 0; k < sizeof parts / sizeof parts[0] && rc == TSR_OK; k++) {
            rc = dcm__buf_add(&uri, parts[k], strlen(parts[k]));
        }
        if (rc == TSR_OK) {
            rc = set_new(c, c->bulk[i].obj, "BulkDataURI", jstr(uri.p, uri.len));
        } else {
            rc = nomem(c);
        }
    }
    dcm__buf_free(&uri);
    return rc;
}

int
dcm_parse(const uint8_t *buf, size_t len, const dcm_json_opts *opts, dcm_summary *sum,
          char **json_out, size_t *json_len, tsr_err *err)
{
    dcm__source src;
    int rc = dcm__source_open(buf, len, 1, &src, err);
    if (rc != TSR_OK) {
        return rc;
    }
    int max_depth = opts && opts->max_depth > 0 ? opts->max_depth : DEFAULT_MAX_DEPTH;
    ctx *c = calloc(1, sizeof *c);
    dcm_summary *s = calloc(1, sizeof *s);
    json_t *root = NULL;
    if (!c || !s) {
        rc = tsr_err_set(err, TSR_ENOMEM, "out of memory");
        goto done;
    }
    c->src = &src;
    c->sum = s;
    c->err = err;
    c->json = json_out != NULL;
    c->bulk_threshold =
        opts && opts->bulk_threshold ? opts->bulk_threshold : DEFAULT_BULK_THRESHOLD;
    c->conv = dcm__conv_new();
    root = c->json ? json_object() : NULL;
    if (!c->conv || (c->json && !root)) {
        rc = tsr_err_set(err, TSR_ENOMEM, "out of memory");
        goto done;
    }
    rc = rnd_ds_reader_new(src.data, src.len, src.start, src.enc,
                           max_depth < MAX_DEPTH ? max_depth : MAX_DEPTH, &c->r, err);
    if (rc != TSR_OK) {
        goto done;
    }
    dcm__charset cs;
    dcm__charset_default(&cs);
    rc = read_dataset(c, root ? &root : NULL, cs);
    if (rc == TSR_OK) {
        rc = summary_finish(c);
    }
    if (rc == TSR_OK && c->json) {
        rc = write_bulk_uris(c);
    }
    if (rc == TSR_OK && c->json) {
        char *text = json_dumps(root, JSON_FLAGS);
        if (!text) {
            rc = tsr_err_set(err, TSR_ENOMEM, "out of memory writing DICOM JSON");
            goto done;
        }
        *json_out = text;
        if (json_len) {
            *json_len = strlen(text);
        }
    }
    if (rc == TSR_OK) {
        *sum = *s;
    } else if (src.deflated && rc == TSR_ECORRUPT) {
        tsr_err_prefix(err, rc, "in the inflated dataset: ");
    }
done:
    if (c) {
        rnd_ds_reader_free(c->r);
        dcm__conv_free(c->conv);
        dcm__buf_free(&c->text);
        for (size_t i = 0; i < c->n_bulk; i++) {
            free(c->bulk[i].path);
        }
        free(c->bulk);
    }
    json_decref(root);
    free(c);
    free(s);
    free(src.owned);
    return rc;
}
