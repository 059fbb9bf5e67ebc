/* SPDX-License-Identifier: MIT */
/* dcm_charset.c: DICOM character sets (PS3.5 6.1, PS3.3 C.12.1.1.2) to UTF-8.
 *
 * ASCII is by far the common case and is copied as is; ISO 8859-1, UTF-8 and JIS X 0201
 * katakana are converted by hand; every other set goes through glibc's iconv with one descriptor
 * per set cached for the duration of a parse. ISO 2022 code extensions are decoded here rather
 * than by iconv's ISO-2022-* converters, which know neither DICOM's combinations of sets nor its
 * rule that designations return to their initial state at value and name-component delimiters:
 * each run of bytes in one set is re-encoded in the EUC form of that set (EUC-JP, EUC-KR,
 * GB2312) or passed through (ISO 8859-x) and converted as one piece. */
#include "dcm_internal.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- buffers */

static int
buf_reserve(dcm__buf *b, size_t extra)
{
    if (extra < b->cap - b->len && b->p) {
        return TSR_OK;
    }
    if (extra > SIZE_MAX / 2 - b->len) {
        return TSR_ENOMEM;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len <= extra) {
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        return TSR_ENOMEM;
    }
    b->p = p;
    b->cap = cap;
    return TSR_OK;
}

int
dcm__buf_add(dcm__buf *b, const void *data, size_t n)
{
    if (buf_reserve(b, n) != TSR_OK) {
        return TSR_ENOMEM;
    }
    if (n) {
        memcpy(b->p + b->len, data, n);
    }
    b->len += n;
    b->p[b->len] = '\0';
    return TSR_OK;
}

void
dcm__buf_free(dcm__buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- character sets */

enum {
    M_DEFAULT = 0, /* ISO-IR 6, high bytes read as ISO 8859-1 */
    M_SINGLE,      /* one set, no code extensions */
    M_ISO2022,     /* code extensions: designations g0/g1, changed by escape sequences */
};

/* The coded character sets (graphic sets for ISO 2022, whole encodings otherwise). */
enum {
    S_NONE = 0,
    S_ASCII,
    S_LATIN1,
    S_8859_2,
    S_8859_3,
    S_8859_4,
    S_8859_5,
    S_8859_6,
    S_8859_7,
    S_8859_8,
    S_8859_9,
    S_8859_15,
    S_TIS620,
    S_KATAKANA, /* JIS X 0201 right half, G1 */
    S_ROMAJI,   /* JIS X 0201 left half, G0: read as ASCII */
    S_JIS0208,  /* G0, two bytes */
    S_JIS0212,  /* G0, two bytes */
    S_KSX1001,  /* G1, two bytes */
    S_GB2312,   /* G1, two bytes */
    S_UTF8,
    S_GB18030,
    S_GBK,
};

/* iconv's name of the sets converted with iconv (the EUC form for ISO 2022 multi-byte sets). */
static const char *
iconv_name(int set)
{
    switch (set) {
    case S_8859_2:
        return "ISO-8859-2";
    case S_8859_3:
        return "ISO-8859-3";
    case S_8859_4:
        return "ISO-8859-4";
    case S_8859_5:
        return "ISO-8859-5";
    case S_8859_6:
        return "ISO-8859-6";
    case S_8859_7:
        return "ISO-8859-7";
    case S_8859_8:
        return "ISO-8859-8";
    case S_8859_9:
        return "ISO-8859-9";
    case S_8859_15:
        return "ISO-8859-15";
    case S_TIS620:
        return "TIS-620";
    case S_JIS0208:
    case S_JIS0212:
        return "EUC-JP";
    case S_KSX1001:
        return "EUC-KR";
    case S_GB2312:
        return "GB2312";
    case S_GB18030:
        return "GB18030";
    case S_GBK:
        return "GBK";
    default:
        return NULL;
    }
}

/* Defined terms of Specific Character Set (PS3.3 C.12.1.1.2), compared after removing spaces,
 * underscores and hyphens and upper-casing, which also accepts the common misspellings
 * ("ISO-IR 100", "ISO_IR100"). */
static const struct {
    const char *term;
    uint8_t iso2022; /* an ISO 2022 term */
    uint8_t set;     /* the set of a single-set term */
    uint8_t g0, g1;  /* its designations under ISO 2022 */
} k_terms[] = {
    {"ISOIR6", 0, S_ASCII, S_ASCII, S_NONE},
    {"ISOIR100", 0, S_LATIN1, S_ASCII, S_LATIN1},
    {"ISOIR101", 0, S_8859_2, S_ASCII, S_8859_2},
    {"ISOIR109", 0, S_8859_3, S_ASCII, S_8859_3},
    {"ISOIR110", 0, S_8859_4, S_ASCII, S_8859_4},
    {"ISOIR144", 0, S_8859_5, S_ASCII, S_8859_5},
    {"ISOIR127", 0, S_8859_6, S_ASCII, S_8859_6},
    {"ISOIR126", 0, S_8859_7, S_ASCII, S_8859_7},
    {"ISOIR138", 0, S_8859_8, S_ASCII, S_8859_8},
    {"ISOIR148", 0, S_8859_9, S_ASCII, S_8859_9},
    {"ISOIR203", 0, S_8859_15, S_ASCII, S_8859_15},
    {"ISOIR13", 0, S_KATAKANA, S_ROMAJI, S_KATAKANA},
    {"ISOIR166", 0, S_TIS620, S_ASCII, S_TIS620},
    {"ISOIR192", 0, S_UTF8, S_ASCII, S_NONE},
    {"GB18030", 0, S_GB18030, S_ASCII, S_NONE},
    {"GBK", 0, S_GBK, S_ASCII, S_NONE},
    {"ISO2022IR6", 1, S_ASCII, S_ASCII, S_NONE},
    {"ISO2022IR100", 1, S_LATIN1, S_ASCII, S_LATIN1},
    {"ISO2022IR101", 1, S_8859_2, S_ASCII, S_8859_2},
    {"ISO2022IR109", 1, S_8859_3, S_ASCII, S_8859_3},
    {"ISO2022IR110", 1, S_8859_4, S_ASCII, S_8859_4},
    {"ISO2022IR144", 1, S_8859_5, S_ASCII, S_8859_5},
    {"ISO2022IR127", 1, S_8859_6, S_ASCII, S_8859_6},
    {"ISO2022IR126", 1, S_8859_7, S_ASCII, S_8859_7},
    {"ISO2022IR138", 1, S_8859_8, S_ASCII, S_8859_8},
    {"ISO2022IR148", 1, S_8859_9, S_ASCII, S_8859_9},
    {"ISO2022IR203", 1, S_8859_15, S_ASCII, S_8859_15},
    {"ISO2022IR13", 1, S_KATAKANA, S_ROMAJI, S_KATAKANA},
    {"ISO2022IR166", 1, S_TIS620, S_ASCII, S_TIS620},
    {"ISO2022IR87", 1, S_JIS0208, S_JIS0208, S_NONE},
    {"ISO2022IR159", 1, S_JIS0212, S_JIS0212, S_NONE},
    {"ISO2022IR149", 1, S_KSX1001, S_ASCII, S_KSX1001},
    {"ISO2022IR58", 1, S_GB2312, S_ASCII, S_GB2312},
};

void
dcm__charset_default(dcm__charset *cs)
{
    *cs = (dcm__charset){M_DEFAULT, S_ASCII, S_ASCII, S_NONE};
}

/* The table row of one term, or -1 (unknown; also for the empty first value). */
static int
find_term(const uint8_t *s, size_t n)
{
    char norm[24];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c == ' ' || c == '_' || c == '-' || c == '\0') {
            continue;
        }
        if (k + 1 >= sizeof norm) {
            return -1;
        }
        norm[k++] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
    }
    norm[k] = '\0';
    for (size_t i = 0; i < sizeof k_terms / sizeof k_terms[0]; i++) {
        if (strcmp(norm, k_terms[i].term) == 0) {
            return (int)i;
        }
    }
    return -1;
}

void
dcm__charset_parse(dcm__charset *cs, const uint8_t *v, size_t len)
{
    dcm__charset_default(cs);
    int first = -1, terms = 0, iso2022 = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && v[i] != '\\') {
            continue;
        }
        int t = find_term(v + start, i - start);
        if (terms == 0) {
            first = t;
        }
        iso2022 |= t >= 0 && k_terms[t].iso2022;
        terms++;
        start = i + 1;
    }
    if (terms > 1 || iso2022) {
        /* Code extensions: the first value (empty: the default repertoire) gives the initial
         * designations, escape sequences in the values change them. */
        cs->mode = M_ISO2022;
        if (first >= 0) {
            cs->g0 = k_terms[first].g0;
            cs->g1 = k_terms[first].g1;
        }
    } else if (first >= 0 && k_terms[first].set != S_ASCII) {
        cs->mode = M_SINGLE;
        cs->set = k_terms[first].set;
    }
}

/* ---------------------------------------------------------------- converter */

#define CONV_SLOTS 4

struct dcm__conv {
    struct {
        const char *name; /* a static string from iconv_name */
        iconv_t cd;
    } slot[CONV_SLOTS];
    int next;     /* slot replaced next when all are taken */
    dcm__buf run; /* bytes of one set awaiting conversion */
    int run_set;
};

dcm__conv *
dcm__conv_new(void)
{
    return calloc(1, sizeof(dcm__conv));
}

void
dcm__conv_free(dcm__conv *c)
{
    if (!c) {
        return;
    }
    for (int i = 0; i < CONV_SLOTS; i++) {
        if (c->slot[i].name && c->slot[i].cd != (iconv_t)-1) {
            iconv_close(c->slot[i].cd);
        }
    }
    dcm__buf_free(&c->run);
    free(c);
}

/* The cached descriptor for `name`, (iconv_t)-1 when iconv lacks the set. */
static iconv_t
conv_get(dcm__conv *c, const char *name)
{
    for (int i = 0; i < CONV_SLOTS; i++) {
        if (c->slot[i].name == name) {
            return c->slot[i].cd;
        }
    }
    int i = c->next;
    c->next = (c->next + 1) % CONV_SLOTS;
    if (c->slot[i].name && c->slot[i].cd != (iconv_t)-1) {
        iconv_close(c->slot[i].cd);
    }
    c->slot[i].name = name;
    c->slot[i].cd = iconv_open("UTF-8", name);
    return c->slot[i].cd;
}

static const char k_replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

static int
add_replacement(dcm__buf *out)
{
    return dcm__buf_add(out, k_replacement, 3);
}

/* Appends code point cp (below U+10000) as UTF-8. */
static int
add_cp(dcm__buf *out, uint32_t cp)
{
    uint8_t u[3];
    if (cp < 0x80) {
        u[0] = (uint8_t)cp;
        return dcm__buf_add(out, u, 1);
    }
    if (cp < 0x800) {
        u[0] = (uint8_t)(0xc0 | cp >> 6);
        u[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return dcm__buf_add(out, u, 2);
    }
    u[0] = (uint8_t)(0xe0 | cp >> 12);
    u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    u[2] = (uint8_t)(0x80 | (cp & 0x3f));
    return dcm__buf_add(out, u, 3);
}

static int
latin1(const uint8_t *s, size_t n, dcm__buf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (add_cp(out, s[i]) != TSR_OK) {
            return TSR_ENOMEM;
        }
    }
    return TSR_OK;
}

/* JIS X 0201: the katakana half (A1-DF) maps to U+FF61-U+FF9F; the left half is read as ASCII. */
static int
katakana(const uint8_t *s, size_t n, dcm__buf *out)
{
    for (size_t i = 0; i < n; i++) {
        int rc = s[i] < 0x80                    ? add_cp(out, s[i])
                 : s[i] >= 0xa1 && s[i] <= 0xdf ? add_cp(out, 0xff61u + (s[i] - 0xa1u))
                                                : add_replacement(out);
        if (rc != TSR_OK) {
            return rc;
        }
    }
    return TSR_OK;
}

/* Converts with iconv; an invalid or unconvertible byte becomes U+FFFD and conversion resumes
 * after it. Without iconv support for the set, high bytes become U+FFFD. */
static int
with_iconv(dcm__conv *c, const char *name, const uint8_t *s, size_t n, dcm__buf *out)
{
    iconv_t cd = conv_get(c, name);
    if (cd == (iconv_t)-1) {
        for (size_t i = 0; i < n; i++) {
            int rc = s[i] < 0x80 ? dcm__buf_add(out, s + i, 1) : add_replacement(out);
            if (rc != TSR_OK) {
                return rc;
            }
        }
        return TSR_OK;
    }
    iconv(cd, NULL, NULL, NULL, NULL);
    char *in = (char *)s;
    size_t left = n;
    while (left > 0) {
        /* 4 UTF-8 bytes per input byte covers every set converted here (GB18030: 4 -> 4). */
        if (buf_reserve(out, left * 4 + 4) != TSR_OK) {
            return TSR_ENOMEM;
        }
        char *o = out->p + out->len;
        size_t room = out->cap - out->len - 1;
        size_t rc = iconv(cd, &in, &left, &o, &room);
        out->len = (size_t)(o - out->p);
        out->p[out->len] = '\0';
        if (rc != (size_t)-1 || errno == E2BIG) {
            continue;
        }
        /* EILSEQ or EINVAL (a sequence cut short at the end): skip one byte. */
        if (add_replacement(out) != TSR_OK) {
            return TSR_ENOMEM;
        }
        in++;
        left--;
        iconv(cd, NULL, NULL, NULL, NULL);
    }
    return TSR_OK;
}

int
dcm__utf8_sanitize(const uint8_t *s, size_t n, dcm__buf *out)
{
    size_t i = 0, start = 0;
    while (i < n) {
        uint8_t b = s[i];
        size_t k = 0; /* length of a valid sequence at i, 0 if invalid */
        if (b < 0x80) {
            k = 1;
        } else if (b >= 0xc2 && b <= 0xdf) {
            k = i + 1 < n && (s[i + 1] & 0xc0) == 0x80 ? 2 : 0;
        } else if (b >= 0xe0 && b <= 0xef) {
            if (i + 2 < n && (s[i + 1] & 0xc0) == 0x80 && (s[i + 2] & 0xc0) == 0x80) {
                uint32_t cp = (uint32_t)(b & 0x0f) << 12 | (uint32_t)(s[i + 1] & 0x3f) << 6 |
                              (s[i + 2] & 0x3f);
                k = cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff) ? 3 : 0;
            }
        } else if (b >= 0xf0 && b <= 0xf4) {
            if (i + 3 < n && (s[i + 1] & 0xc0) == 0x80 && (s[i + 2] & 0xc0) == 0x80 &&
                (s[i + 3] & 0xc0) == 0x80) {
                uint32_t cp = (uint32_t)(b & 0x07) << 18 | (uint32_t)(s[i + 1] & 0x3f) << 12 |
                              (uint32_t)(s[i + 2] & 0x3f) << 6 | (s[i + 3] & 0x3f);
                k = cp >= 0x10000 && cp <= 0x10ffff ? 4 : 0;
            }
        }
        if (k) {
            i += k;
            continue;
        }
        if (dcm__buf_add(out, s + start, i - start) != TSR_OK || add_replacement(out) != TSR_OK) {
            return TSR_ENOMEM;
        }
        start = ++i;
    }
    return dcm__buf_add(out, s + start, n - start);
}

/* ---------------------------------------------------------------- ISO 2022 */

/* Converts and empties the pending run. */
static int
run_flush(dcm__conv *c, dcm__buf *out)
{
    int rc = TSR_OK;
    if (c->run.len) {
        rc = with_iconv(c, iconv_name(c->run_set), (const uint8_t *)c->run.p, c->run.len, out);
        c->run.len = 0;
    }
    return rc;
}

/* Appends bytes of `set` to the pending run, converting the previous run first when its set
 * differs. */
static int
run_add(dcm__conv *c, int set, const uint8_t *b, size_t n, dcm__buf *out)
{
    if (c->run.len && c->run_set != set && run_flush(c, out) != TSR_OK) {
        return TSR_ENOMEM;
    }
    c->run_set = set;
    return dcm__buf_add(&c->run, b, n);
}

/* Recognises the escape sequence at s[0] (ESC) (PS3.3 Tables C.12-3 and C.12-4); writes the new
 * designation and returns its length, or 0 when unknown. */
static size_t
escape(const uint8_t *s, size_t n, uint8_t *g0, uint8_t *g1)
{
    static const struct {
        const char *seq; /* after ESC */
        uint8_t g, set;  /* g: 0 or 1 */
    } k[] = {
        {"(B", 0, S_ASCII},    {"(J", 0, S_ROMAJI},   {")I", 1, S_KATAKANA}, {"-A", 1, S_LATIN1},
        {"-B", 1, S_8859_2},   {"-C", 1, S_8859_3},   {"-D", 1, S_8859_4},   {"-L", 1, S_8859_5},
        {"-G", 1, S_8859_6},   {"-F", 1, S_8859_7},   {"-H", 1, S_8859_8},   {"-M", 1, S_8859_9},
        {"-b", 1, S_8859_15},  {"-T", 1, S_TIS620},   {"$B", 0, S_JIS0208},  {"$@", 0, S_JIS0208},
        {"$(D", 0, S_JIS0212}, {"$)C", 1, S_KSX1001}, {"$)A", 1, S_GB2312},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        size_t m = strlen(k[i].seq);
        if (m < n && memcmp(s + 1, k[i].seq, m) == 0) {
            *(k[i].g ? g1 : g0) = k[i].set;
            return m + 1;
        }
    }
    return 0;
}

static int
iso2022(dcm__conv *c, const dcm__charset *cs, const uint8_t *s, size_t n, int pn, dcm__buf *out)
{
    uint8_t g0 = cs->g0, g1 = cs->g1;
    c->run.len = 0;
    size_t i = 0;
    int rc = TSR_OK;
    while (i < n && rc == TSR_OK) {
        uint8_t b = s[i];
        if (b == 0x1b) {
            size_t m = escape(s + i, n - i, &g0, &g1);
            i += m ? m : 1; /* an unknown escape: drop the ESC, keep what follows */
            continue;
        }
        int two_g0 = g0 == S_JIS0208 || g0 == S_JIS0212;
        if (b < 0x80 && !(two_g0 && b >= 0x21 && b <= 0x7e)) {
            if (b == '\\' || b == '\r' || b == '\n' || b == '\t' || b == '\f' ||
                (pn && (b == '^' || b == '='))) {
                g0 = cs->g0;
                g1 = cs->g1;
            }
            /* Every set converted by iconv here is an ASCII superset: keep runs together. */
            rc = c->run.len ? dcm__buf_add(&c->run, &b, 1) : dcm__buf_add(out, &b, 1);
            i++;
            continue;
        }
        if (b < 0x80) {
            /* a JIS X 0208 / 0212 character in G0: as EUC-JP (0x8F prefixes JIS X 0212) */
            if (i + 1 >= n || s[i + 1] < 0x21 || s[i + 1] > 0x7e) {
                rc = run_flush(c, out) == TSR_OK ? add_replacement(out) : TSR_ENOMEM;
                i++;
                continue;
            }
            uint8_t e[3] = {0x8f, (uint8_t)(b | 0x80), (uint8_t)(s[i + 1] | 0x80)};
            rc = g0 == S_JIS0212 ? run_add(c, S_JIS0208, e, 3, out)
                                 : run_add(c, S_JIS0208, e + 1, 2, out);
            i += 2;
            continue;
        }
        switch (g1) {
        case S_LATIN1:
            rc = run_flush(c, out) == TSR_OK ? latin1(&b, 1, out) : TSR_ENOMEM;
            i++;
            break;
        case S_KATAKANA:
            rc = run_flush(c, out) == TSR_OK ? katakana(&b, 1, out) : TSR_ENOMEM;
            i++;
            break;
        case S_KSX1001:
        case S_GB2312:
            if (i + 1 < n && s[i + 1] >= 0xa1) {
                rc = run_add(c, g1, s + i, 2, out);
                i += 2;
            } else {
                rc = run_flush(c, out) == TSR_OK ? add_replacement(out) : TSR_ENOMEM;
                i++;
            }
            break;
        case S_NONE:
            rc = run_flush(c, out) == TSR_OK ? add_replacement(out) : TSR_ENOMEM;
            i++;
            break;
        default: /* an ISO 8859 part or TIS-620 */
            rc = run_add(c, g1, &b, 1, out);
            i++;
            break;
        }
    }
    if (rc == TSR_OK) {
        rc = run_flush(c, out);
    }
    return rc;
}

int
dcm__to_utf8(dcm__conv *c, const dcm__charset *cs, const uint8_t *s, size_t n, int pn,
             dcm__buf *out)
{
    size_t i = 0;
    while (i < n && s[i] < 0x80 && s[i] != 0x1b) {
        i++;
    }
    if (i == n) {
        return dcm__buf_add(out, s, n); /* ASCII: the same in every set DICOM allows */
    }
    if (!cs || cs->mode == M_DEFAULT) {
        return latin1(s, n, out);
    }
    if (cs->mode == M_ISO2022) {
        return iso2022(c, cs, s, n, pn, out);
    }
    switch (cs->set) {
    case S_LATIN1:
        return latin1(s, n, out);
    case S_UTF8:
        return dcm__utf8_sanitize(s, n, out);
    case S_KATAKANA:
        return katakana(s, n, out);
    default:
        return with_iconv(c, iconv_name(cs->set), s, n, out);
    }
}
