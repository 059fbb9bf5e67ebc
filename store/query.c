/* SPDX-License-Identifier: MIT */
/* query.c: QIDO-RS (PS3.18 10.6) over the index: query-string parsing, matching (PS3.4 C.2.2.2:
 * single value, wildcard, range, UID list, universal), computed attributes, includefield,
 * paging, and the JSON of the results. */
#define _POSIX_C_SOURCE 200809L
#include "store_internal.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- the attributes */

enum { C_NONE = 0, C_MODALITIES, C_STUDY_SERIES, C_STUDY_INSTANCES, C_SERIES_INSTANCES };

/* Aliases: p patients, st studies, se series, i instances. */
static const store__attr k_attrs[] = {
    {0x00100010, "PN", STORE_STUDY, "p.name", 0, 0},
    {0x00100020, "LO", STORE_STUDY, "p.patient_id", 0, 0},
    {0x00100021, "LO", STORE_STUDY, "p.issuer", 0, 0},
    {0x00100030, "DA", STORE_STUDY, "p.birth_date", 0, 0},
    {0x00100040, "CS", STORE_STUDY, "p.sex", 0, 0},
    {0x00080020, "DA", STORE_STUDY, "st.date", 0, 0},
    {0x00080030, "TM", STORE_STUDY, "st.time", 1, 0},
    {0x00080050, "SH", STORE_STUDY, "st.accession", 0, 0},
    {0x00080090, "PN", STORE_STUDY, "st.referring", 0, 0},
    {0x00081030, "LO", STORE_STUDY, "st.description", 0, 0},
    {0x00080201, "SH", STORE_STUDY, "st.tz", 0, 0},
    {0x0020000D, "UI", STORE_STUDY, "st.uid", 0, 0},
    {0x00200010, "SH", STORE_STUDY, "st.study_id", 0, 0},
    {0x00080061, "CS", STORE_STUDY, NULL, 0, C_MODALITIES},
    {0x00201206, "IS", STORE_STUDY, NULL, 0, C_STUDY_SERIES},
    {0x00201208, "IS", STORE_STUDY, NULL, 0, C_STUDY_INSTANCES},
    {0x0020000E, "UI", STORE_SERIES, "se.uid", 0, 0},
    {0x00080060, "CS", STORE_SERIES, "se.modality", 0, 0},
    {0x00200011, "IS", STORE_SERIES, "se.number", 0, 0},
    {0x0008103E, "LO", STORE_SERIES, "se.description", 0, 0},
    {0x00180015, "CS", STORE_SERIES, "se.body_part", 0, 0},
    {0x00400244, "DA", STORE_SERIES, "se.pps_date", 0, 0},
    {0x00400245, "TM", STORE_SERIES, "se.pps_time", 1, 0},
    {0x00200052, "UI", STORE_SERIES, "se.frame_of_reference", 0, 0},
    {0x00201209, "IS", STORE_SERIES, NULL, 0, C_SERIES_INSTANCES},
    {0x00080016, "UI", STORE_INSTANCE, "i.sop_class", 0, 0},
    {0x00080018, "UI", STORE_INSTANCE, "i.uid", 0, 0},
    {0x00200013, "IS", STORE_INSTANCE, "i.number", 0, 0},
    {0x00280010, "US", STORE_INSTANCE, "i.rows", 0, 0},
    {0x00280011, "US", STORE_INSTANCE, "i.columns", 0, 0},
    {0x00280008, "IS", STORE_INSTANCE, "i.frames", 0, 0},
    {0x00280100, "US", STORE_INSTANCE, "i.bits_allocated", 0, 0},
    {0x00280004, "CS", STORE_INSTANCE, "i.photometric", 0, 0},
    {0x00083002, "UI", STORE_INSTANCE, "i.transfer_syntax", 0, 0},
};
#define N_ATTRS ((int)(sizeof k_attrs / sizeof k_attrs[0]))

const store__attr *
store__attr_find(uint32_t tag)
{
    for (int i = 0; i < N_ATTRS; i++) {
        if (k_attrs[i].tag == tag) {
            return &k_attrs[i];
        }
    }
    return NULL;
}

/* Extra attributes that includefield=all adds from a representative instance, per level. */
static int
all_wants(store_level level, uint32_t tag)
{
    static const uint32_t study[] = {0x00080020, 0x00080030, 0x00080050, 0x00080051,
                                     0x00080090, 0x00081030, 0x00081032, 0x00081060,
                                     0x00080201, 0x0020000D, 0x00200010, 0x00321060};
    static const uint32_t series[] = {0x00080021, 0x00080031, 0x00080060, 0x00080070,
                                      0x0008103E, 0x00081090, 0x00180015, 0x00185100,
                                      0x0020000E, 0x00200011, 0x00200052, 0x00200060,
                                      0x00400244, 0x00400245, 0x00400253, 0x00400254};
    if (level == STORE_INSTANCE) {
        return tag != 0x7FE00010 && tag != 0x7FE00008 && tag != 0x7FE00009;
    }
    if ((tag >> 16) == 0x0010) {
        return 1;
    }
    for (size_t i = 0; i < sizeof study / sizeof study[0]; i++) {
        if (study[i] == tag) {
            return 1;
        }
    }
    if (level == STORE_SERIES) {
        for (size_t i = 0; i < sizeof series / sizeof series[0]; i++) {
            if (series[i] == tag) {
                return 1;
            }
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- parsing */

int
store__time_norm(const char *tm, int pad_hi, char out[14])
{
    char digits[7] = "", frac[7] = "";
    int nd = 0, nf = 0, in_frac = 0;
    for (const char *p = tm; *p && *p != ' '; p++) {
        if (*p == ':' && !in_frac) {
            continue;
        }
        if (*p == '.' && !in_frac) {
            in_frac = 1;
            continue;
        }
        if (!isdigit((unsigned char)*p)) {
            return -1;
        }
        if (in_frac) {
            if (nf < 6) {
                frac[nf++] = *p;
            }
        } else if (nd < 6) {
            digits[nd++] = *p;
        } else {
            return -1;
        }
    }
    if (nd == 0 || nd % 2) {
        return -1;
    }
    /* hours 00-23, minutes 00-59, seconds 00-60 (leap second) */
    static const int max[3] = {23, 59, 60};
    for (int i = 0; i < nd / 2; i++) {
        if ((digits[2 * i] - '0') * 10 + (digits[2 * i + 1] - '0') > max[i]) {
            return -1;
        }
    }
    static const char hi[] = "235959", lo[] = "000000";
    for (int i = nd; i < 6; i++) {
        digits[i] = pad_hi ? hi[i] : lo[i];
    }
    for (int i = nf; i < 6; i++) {
        frac[i] = pad_hi ? '9' : '0';
    }
    digits[6] = frac[6] = '\0';
    snprintf(out, 14, "%s.%s", digits, frac);
    return 0;
}

static int
hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decodes [s, e) into a new string. NULL for a malformed escape or NUL byte. */
static char *
pct_decode(const char *s, const char *e)
{
    char *out = malloc((size_t)(e - s) + 1), *o = out;
    if (!out) {
        return NULL;
    }
    while (s < e) {
        if (*s == '%') {
            int a = -1;
            if (e - s >= 3 && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
                a = hexval(s[1]) * 16 + hexval(s[2]);
            }
            if (a <= 0) {
                free(out);
                return NULL;
            }
            *o++ = (char)a;
            s += 3;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return out;
}

static int
all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

/* Whether YYYYMMDD names a real day. */
static int
valid_ymd(const char *d)
{
    int y = (d[0] - '0') * 1000 + (d[1] - '0') * 100 + (d[2] - '0') * 10 + (d[3] - '0');
    int m = (d[4] - '0') * 10 + (d[5] - '0'), day = (d[6] - '0') * 10 + (d[7] - '0');
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || day < 1 || day > mdays[m - 1]) {
        return 0;
    }
    return !(m == 2 && day == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

/* A DA value or range bound: YYYYMMDD (also the old YYYY.MM.DD). */
static int
norm_date(const char *s, char out[9])
{
    size_t n = strlen(s);
    if (n == 10 && s[4] == '.' && s[7] == '.') {
        snprintf(out, 9, "%.4s%.2s%.2s", s, s + 5, s + 8);
    } else if (n == 8) {
        memcpy(out, s, 9);
    } else {
        return -1;
    }
    return all_digits(out, 8) && valid_ymd(out) ? 0 : -1;
}

static void
warn(store_query *q, const char *fmt, const char *what)
{
    size_t n = strlen(q->warning);
    if (n + 4 >= sizeof q->warning) {
        return;
    }
    snprintf(q->warning + n, sizeof q->warning - n, "%s", n ? "; " : "");
    n = strlen(q->warning);
    snprintf(q->warning + n, sizeof q->warning - n, fmt, what);
}

static int
add_include(store_query *q, const char *v, tsr_err *err)
{
    const char *p = v;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        char name[80];
        if (n == 0 || n >= sizeof name) {
            return tsr_err_set(err, TSR_EINVAL, "includefield: malformed value");
        }
        memcpy(name, p, n);
        name[n] = '\0';
        uint32_t tag;
        if (strcmp(name, "all") == 0) {
            q->include_all = 1;
        } else if (dcm_tag_parse(name, &tag) != 0) {
            return tsr_err_set(err, TSR_EINVAL, "includefield: unknown attribute '%.64s'", name);
        } else if (q->n_include < STORE_MAX_INCLUDE) {
            q->include[q->n_include++] = tag;
        } else {
            return tsr_err_set(err, TSR_EINVAL, "includefield: more than %d attributes",
                               STORE_MAX_INCLUDE);
        }
        p += n + (c ? 1 : 0);
    }
    return TSR_OK;
}

static int
parse_long(const char *v, long max, long *out)
{
    char *end;
    if (!isdigit((unsigned char)v[0])) {
        return -1;
    }
    long x = strtol(v, &end, 10);
    if (*end || x < 0 || x > max) {
        return -1;
    }
    *out = x;
    return 0;
}

static char **
split_list(const char *v, int *n)
{
    int cap = 1;
    for (const char *p = v; *p; p++) {
        cap += *p == ',' || *p == '\\';
    }
    char **list = calloc((size_t)cap, sizeof *list);
    if (!list) {
        return NULL;
    }
    *n = 0;
    const char *p = v;
    for (;;) {
        size_t k = strcspn(p, ",\\");
        if (k > 0) {
            list[*n] = strndup(p, k);
            if (!list[*n]) {
                break;
            }
            (*n)++;
        }
        if (!p[k]) {
            break;
        }
        p += k + 1;
    }
    return list;
}

static int
add_match(store_query *q, uint32_t tag, const char *key, char *v, tsr_err *err)
{
    const store__attr *a = store__attr_find(tag);
    int matchable = a && a->level <= q->level &&
                    (a->column || a->computed == C_MODALITIES);
    if (!matchable) {
        warn(q, "%s is not supported for matching and was ignored", key);
        /* still returned when asked: treat as includefield */
        if (q->n_include < STORE_MAX_INCLUDE) {
            q->include[q->n_include++] = tag;
        }
        free(v);
        return TSR_OK;
    }
    if (q->n_match == STORE_MAX_MATCH) {
        free(v);
        return tsr_err_set(err, TSR_EINVAL, "more than %d matching attributes", STORE_MAX_MATCH);
    }
    store_match *m = &q->match[q->n_match];
    memset(m, 0, sizeof *m);
    m->tag = tag;
    const char *vr = a->vr;
    int is_range_vr = !strcmp(vr, "DA") || !strcmp(vr, "TM") || !strcmp(vr, "DT");
    if (!v[0]) {
        m->kind = STORE_M_UNIVERSAL;
        free(v);
    } else if (is_range_vr) {
        char *dash = strchr(v, '-');
        char lo[20] = "", hi[20] = "";
        const char *l = v, *h = dash ? dash + 1 : NULL;
        if (dash) {
            *dash = '\0';
        }
        int bad = 0;
        if (!strcmp(vr, "DA")) {
            bad = (l[0] && norm_date(l, lo) != 0) || (h && h[0] && norm_date(h, hi) != 0);
        } else {
            bad = (l[0] && store__time_norm(l, 0, lo) != 0) ||
                  (h && h[0] && store__time_norm(h, 1, hi) != 0);
        }
        if (bad || (dash && !l[0] && !h[0])) {
            if (dash) {
                *dash = '-';
            }
            tsr_err_set(err, TSR_EINVAL, "%s: '%.40s' is not a valid %s value or range", key, v,
                        vr);
            free(v);
            return TSR_EINVAL;
        }
        if (dash) {
            m->kind = STORE_M_RANGE;
            m->lo = strdup(lo);
            m->hi = strdup(hi);
        } else {
            /* a single TM value matches the whole interval it names ("10" = 10:00-10:59) */
            m->kind = a->time_norm ? STORE_M_RANGE : STORE_M_SINGLE;
            if (a->time_norm) {
                store__time_norm(l, 1, hi);
                m->lo = strdup(lo);
                m->hi = strdup(hi);
            } else {
                m->value = strdup(lo);
            }
        }
        free(v);
        if ((m->kind == STORE_M_RANGE && (!m->lo || !m->hi)) ||
            (m->kind == STORE_M_SINGLE && !m->value)) {
            return tsr_err_set(err, TSR_ENOMEM, "out of memory");
        }
    } else if (!strcmp(vr, "UI") || a->computed == C_MODALITIES ||
               ((strchr(v, ',') || strchr(v, '\\')) && !strcmp(vr, "CS"))) {
        m->kind = STORE_M_LIST;
        m->list = split_list(v, &m->n_list);
        free(v);
        if (!m->list) {
            return tsr_err_set(err, TSR_ENOMEM, "out of memory");
        }
        for (int i = 0; i < m->n_list && !strcmp(vr, "UI"); i++) {
            for (const char *p = m->list[i]; *p; p++) {
                if (!isdigit((unsigned char)*p) && *p != '.') {
                    q->n_match++; /* so that store_query_free frees it */
                    return tsr_err_set(err, TSR_EINVAL, "%s: '%.64s' is not a UID", key,
                                       m->list[i]);
                }
            }
        }
    } else {
        m->kind = strpbrk(v, "*?") ? STORE_M_WILDCARD : STORE_M_SINGLE;
        m->value = v;
    }
    q->n_match++;
    return TSR_OK;
}

int
store_query_parse(store_level level, const char *qs, store_query *q, tsr_err *err)
{
    memset(q, 0, sizeof *q);
    q->level = level;
    q->limit = -1;
    const char *p = qs ? qs : "";
    int rc = TSR_OK;
    while (*p && rc == TSR_OK) {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (end == p) {
            p = amp ? amp + 1 : end;
            continue;
        }
        char *key = pct_decode(p, eq ? eq : end);
        char *val = eq ? pct_decode(eq + 1, end) : strdup("");
        if (!key || !val) {
            free(key);
            free(val);
            rc = tsr_err_set(err, TSR_EINVAL, "malformed percent-encoding in the query string");
            break;
        }
        uint32_t tag;
        if (!strcmp(key, "includefield")) {
            rc = add_include(q, val, err);
            free(val);
        } else if (!strcmp(key, "limit") || !strcmp(key, "offset")) {
            long x;
            if (parse_long(val, 1000000000L, &x) != 0) {
                rc = tsr_err_set(err, TSR_EINVAL, "%s must be a non-negative integer, got '%.32s'",
                                 key, val);
            } else if (key[0] == 'l') {
                q->limit = x;
            } else {
                q->offset = x;
            }
            free(val);
        } else if (!strcmp(key, "fuzzymatching")) {
            if (strcmp(val, "true") && strcmp(val, "false")) {
                rc = tsr_err_set(err, TSR_EINVAL, "fuzzymatching must be true or false");
            }
            q->fuzzy = !strcmp(val, "true");
            free(val);
        } else if (!strcmp(key, "accept") || !strcmp(key, "charset")) {
            free(val); /* content negotiation: handled by the HTTP layer */
        } else if (!strcmp(key, "orderby")) {
            warn(q, "%s is not supported and was ignored", key);
            free(val);
        } else if (dcm_tag_parse(key, &tag) == 0) {
            rc = add_match(q, tag, key, val, err);
        } else {
            rc = tsr_err_set(err, TSR_EINVAL, "unknown query parameter or attribute '%.64s'", key);
            free(val);
        }
        free(key);
        p = amp ? amp + 1 : end;
    }
    if (rc != TSR_OK) {
        store_query_free(q);
    }
    return rc;
}

void
store_query_free(store_query *q)
{
    for (int i = 0; i < q->n_match; i++) {
        store_match *m = &q->match[i];
        free(m->value);
        free(m->lo);
        free(m->hi);
        for (int j = 0; j < m->n_list; j++) {
            free(m->list[j]);
        }
        free(m->list);
    }
    q->n_match = 0;
}

/* ---------------------------------------------------------------- SQL */

typedef struct sqlbuf {
    char *s;
    size_t len, cap;
    const char *args[256];
    int n_args;
    int oom;
} sqlbuf;

static void
sb_add(sqlbuf *b, const char *t)
{
    size_t n = strlen(t);
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap + n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, t, n + 1);
    b->len += n;
}

static void
sb_arg(sqlbuf *b, const char *v)
{
    if (b->n_args == 256) {
        b->oom = 1;
        return;
    }
    b->args[b->n_args++] = v;
    char ph[16];
    snprintf(ph, sizeof ph, "?%d", b->n_args);
    sb_add(b, ph);
}

/* DICOM wildcards to a LIKE pattern (escape '\'). */
static char *
like_pattern(const char *v, int substring)
{
    char *out = malloc(strlen(v) * 2 + 3), *o = out;
    if (!out) {
        return NULL;
    }
    if (substring) {
        *o++ = '%';
    }
    for (const char *p = v; *p; p++) {
        if (*p == '*') {
            *o++ = '%';
        } else if (*p == '?') {
            *o++ = '_';
        } else {
            if (*p == '%' || *p == '_' || *p == '\\') {
                *o++ = '\\';
            }
            *o++ = *p;
        }
    }
    if (substring) {
        *o++ = '%';
    }
    *o = '\0';
    return out;
}

typedef struct owned {
    char *p[STORE_MAX_MATCH];
    int n;
} owned;

static void
add_condition(sqlbuf *b, const store_query *q, const store_match *m, owned *own, int count)
{
    const store__attr *a = store__attr_find(m->tag);
    if (m->kind == STORE_M_UNIVERSAL) {
        return;
    }
    int pn = !strcmp(a->vr, "PN");
    char col[64];
    if (a->time_norm) {
        snprintf(col, sizeof col, "%s_n", a->column);
    } else if (a->column) {
        snprintf(col, sizeof col, "%s", a->column);
    }
    sb_add(b, " AND ");
    if (a->computed == C_MODALITIES) {
        /* A page walks studies in date order and stops after `limit` rows: a correlated EXISTS
         * per study suits it. A count visits every match: an uncorrelated IN, run once, is 3x
         * faster there (and as IN, the page would sort every match first). */
        sb_add(b, count ? "st.pk IN (SELECT x.study_pk FROM series x WHERE x.modality IN ("
                        : "EXISTS(SELECT 1 FROM series x WHERE x.study_pk=st.pk AND "
                          "x.modality IN (");
        for (int i = 0; i < m->n_list; i++) {
            if (i) {
                sb_add(b, ",");
            }
            sb_arg(b, m->list[i]);
        }
        sb_add(b, "))");
        return;
    }
    switch (m->kind) {
    case STORE_M_SINGLE:
        if (pn && q->fuzzy) {
            char *pat = like_pattern(m->value, 1);
            own->p[own->n++] = pat;
            sb_add(b, col);
            sb_add(b, " LIKE ");
            sb_arg(b, pat);
            sb_add(b, " ESCAPE '\\'");
        } else {
            sb_add(b, col);
            sb_add(b, pn ? " = " : " = ");
            sb_arg(b, m->value);
            if (pn) {
                sb_add(b, " COLLATE NOCASE");
            }
        }
        break;
    case STORE_M_WILDCARD: {
        /* LIKE is case-insensitive for ASCII, which PN matching may be; for other VRs GLOB
         * keeps case, with '[' escaped as a class of its own. */
        if (pn) {
            char *pat = like_pattern(m->value, q->fuzzy);
            own->p[own->n++] = pat;
            sb_add(b, col);
            sb_add(b, " LIKE ");
            sb_arg(b, pat);
            sb_add(b, " ESCAPE '\\'");
        } else {
            char *pat = malloc(strlen(m->value) * 3 + 1), *o = pat;
            if (!pat) {
                b->oom = 1;
                return;
            }
            for (const char *p = m->value; *p; p++) {
                if (*p == '[' || *p == ']') {
                    *o++ = '[';
                    *o++ = *p;
                    *o++ = ']';
                } else {
                    *o++ = *p;
                }
            }
            *o = '\0';
            own->p[own->n++] = pat;
            sb_add(b, col);
            sb_add(b, " GLOB ");
            sb_arg(b, pat);
        }
        break;
    }
    case STORE_M_RANGE:
        sb_add(b, "(");
        sb_add(b, col);
        sb_add(b, " <> ''");
        if (m->lo[0]) {
            sb_add(b, " AND ");
            sb_add(b, col);
            sb_add(b, " >= ");
            sb_arg(b, m->lo);
        }
        if (m->hi[0]) {
            sb_add(b, " AND ");
            sb_add(b, col);
            sb_add(b, " <= ");
            sb_arg(b, m->hi);
        }
        sb_add(b, ")");
        break;
    case STORE_M_LIST:
        sb_add(b, col);
        sb_add(b, " IN (");
        for (int i = 0; i < m->n_list; i++) {
            if (i) {
                sb_add(b, ",");
            }
            sb_arg(b, m->list[i]);
        }
        if (m->n_list == 0) {
            sb_add(b, "NULL");
        }
        sb_add(b, ")");
        break;
    default:
        break;
    }
}

/* Whether any condition reads a patients column (otherwise a count can skip that join). */
static int
needs_patients(const store_query *q)
{
    for (int i = 0; i < q->n_match; i++) {
        const store__attr *a = store__attr_find(q->match[i].tag);
        if (q->match[i].kind != STORE_M_UNIVERSAL && a && a->column && a->column[0] == 'p') {
            return 1;
        }
    }
    return 0;
}

static const char *
from_clause(store_level level, int patients)
{
    switch (level) {
    case STORE_STUDY:
        return patients ? " FROM studies st JOIN patients p ON st.patient_pk=p.pk"
                        : " FROM studies st";
    case STORE_SERIES:
        return patients ? " FROM series se JOIN studies st ON se.study_pk=st.pk"
                          " JOIN patients p ON st.patient_pk=p.pk"
                        : " FROM series se JOIN studies st ON se.study_pk=st.pk";
    default:
        return patients ? " FROM instances i JOIN series se ON i.series_pk=se.pk"
                          " JOIN studies st ON se.study_pk=st.pk JOIN patients p ON "
                          "st.patient_pk=p.pk"
                        : " FROM instances i JOIN series se ON i.series_pk=se.pk"
                          " JOIN studies st ON se.study_pk=st.pk";
    }
}

static void
where_clause(sqlbuf *b, const store_query *q, owned *own, int count)
{
    sb_add(b, " WHERE 1");
    if (q->study[0]) {
        sb_add(b, " AND st.uid=");
        sb_arg(b, q->study);
    }
    if (q->series[0]) {
        sb_add(b, " AND se.uid=");
        sb_arg(b, q->series);
    }
    for (int i = 0; i < q->n_match; i++) {
        add_condition(b, q, &q->match[i], own, count);
    }
}

static int
bind_all(sqlite3_stmt *st, const sqlbuf *b)
{
    for (int i = 0; i < b->n_args; i++) {
        if (sqlite3_bind_text(st, i + 1, b->args[i], -1, SQLITE_STATIC) != SQLITE_OK) {
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- JSON of one result */

static void
set_string(json_t *o, uint32_t tag, const char *vr, const char *v)
{
    char key[9];
    snprintf(key, sizeof key, "%08X", tag);
    json_t *e = json_object();
    json_object_set_new(e, "vr", json_string(vr));
    if (v && v[0]) {
        json_t *arr = json_array();
        if (!strcmp(vr, "PN")) {
            /* alphabetic=ideographic=phonetic */
            json_t *pn = json_object();
            static const char *groups[3] = {"Alphabetic", "Ideographic", "Phonetic"};
            const char *p = v;
            for (int g = 0; g < 3 && p; g++) {
                const char *eq = strchr(p, '=');
                size_t n = eq ? (size_t)(eq - p) : strlen(p);
                if (n) {
                    json_object_set_new(pn, groups[g], json_stringn(p, n));
                }
                p = eq ? eq + 1 : NULL;
            }
            json_array_append_new(arr, pn);
        } else if (!strcmp(vr, "IS") || !strcmp(vr, "US")) {
            json_array_append_new(arr, json_integer(strtoll(v, NULL, 10)));
        } else if (!strcmp(vr, "CS") && strchr(v, '\\')) {
            const char *p = v;
            for (;;) {
                size_t n = strcspn(p, "\\");
                json_array_append_new(arr, json_stringn(p, n));
                if (!p[n]) {
                    break;
                }
                p += n + 1;
            }
        } else {
            json_array_append_new(arr, json_string(v));
        }
        json_object_set_new(e, "Value", arr);
    }
    json_object_set_new(o, key, e);
}

/* Column positions in the SELECT built by select_list(). */
typedef struct colmap {
    int attr_col[64]; /* k_attrs index -> result column, -1 when not selected */
    int pk_col;
} colmap;

static int
wanted(const store_query *q, const store__attr *a, int explicit_only)
{
    for (int i = 0; i < q->n_include; i++) {
        if (q->include[i] == a->tag) {
            return 1;
        }
    }
    for (int i = 0; i < q->n_match; i++) {
        if (q->match[i].tag == a->tag) {
            return 1;
        }
    }
    if (explicit_only) {
        return 0;
    }
    if (q->include_all) {
        return a->level <= q->level;
    }
    /* Default return keys (PS3.18 10.6.3.3): the level's own attributes; for series and
     * instance queries not scoped to a study (or series), the upper levels' too. */
    if (a->level == q->level) {
        return 1;
    }
    if (a->tag == 0x0020000D || (a->tag == 0x0020000E && q->level == STORE_INSTANCE)) {
        return 1;
    }
    if (a->level == STORE_STUDY) {
        return !q->study[0];
    }
    return a->level == STORE_SERIES && !q->series[0];
}

static void
select_list(sqlbuf *b, const store_query *q, colmap *cm)
{
    int col = 0;
    const char *pk = q->level == STORE_STUDY ? "st.pk" : q->level == STORE_SERIES ? "se.pk" : "i.pk";
    sb_add(b, "SELECT ");
    sb_add(b, pk);
    cm->pk_col = col++;
    for (int i = 0; i < N_ATTRS; i++) {
        const store__attr *a = &k_attrs[i];
        cm->attr_col[i] = -1;
        if (a->level > q->level || !wanted(q, a, 0)) {
            continue;
        }
        sb_add(b, ", ");
        switch (a->computed) {
        case C_MODALITIES:
            sb_add(b, "(SELECT group_concat(m, '\\') FROM (SELECT DISTINCT x.modality AS m FROM "
                      "series x WHERE x.study_pk=st.pk AND x.modality<>'' ORDER BY 1))");
            break;
        case C_STUDY_SERIES:
            sb_add(b, "(SELECT COUNT(*) FROM series x WHERE x.study_pk=st.pk)");
            break;
        case C_STUDY_INSTANCES:
            sb_add(b, "(SELECT COUNT(*) FROM instances y JOIN series x ON y.series_pk=x.pk "
                      "WHERE x.study_pk=st.pk)");
            break;
        case C_SERIES_INSTANCES:
            sb_add(b, "(SELECT COUNT(*) FROM instances y WHERE y.series_pk=se.pk)");
            break;
        default:
            sb_add(b, a->column);
        }
        cm->attr_col[i] = col++;
    }
    /* the UIDs for RetrieveURL */
    sb_add(b, ", st.uid");
    if (q->level >= STORE_SERIES) {
        sb_add(b, ", se.uid");
    }
    if (q->level == STORE_INSTANCE) {
        sb_add(b, ", i.uid");
    }
}

/* Tags asked for that no column holds: copied from a representative instance's JSON. */
static int
needs_extra(const store_query *q)
{
    if (q->include_all) {
        return 1;
    }
    for (int i = 0; i < q->n_include; i++) {
        const store__attr *a = store__attr_find(q->include[i]);
        if (!a || a->level > q->level) {
            return 1;
        }
    }
    return 0;
}

/* Whether a JSON value holds a BulkDataURI anywhere inside (sequences nest). */
static int
has_bulk(json_t *v)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            if (!strcmp(k, "BulkDataURI") || has_bulk(x)) {
                return 1;
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            if (has_bulk(x)) {
                return 1;
            }
        }
    }
    return 0;
}

static void
add_extra(sqlite3 *db, const store_query *q, int64_t pk, json_t *obj)
{
    const char *sql = q->level == STORE_STUDY
                          ? "SELECT i.meta FROM instances i JOIN series se ON i.series_pk=se.pk "
                            "WHERE se.study_pk=?1 ORDER BY se.number, i.number LIMIT 1"
                      : q->level == STORE_SERIES
                          ? "SELECT meta FROM instances WHERE series_pk=?1 ORDER BY number LIMIT 1"
                          : "SELECT meta FROM instances WHERE pk=?1";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        return;
    }
    sqlite3_bind_int64(st, 1, pk);
    if (sqlite3_step(st) == SQLITE_ROW) {
        json_t *meta = json_loadb((const char *)sqlite3_column_text(st, 0),
                                  (size_t)sqlite3_column_bytes(st, 0), 0, NULL);
        const char *key;
        json_t *val;
        json_object_foreach(meta, key, val)
        {
            uint32_t tag = (uint32_t)strtoul(key, NULL, 16);
            if (json_object_get(obj, key)) {
                continue;
            }
            int want = q->include_all && all_wants(q->level, tag);
            for (int i = 0; !want && i < q->n_include; i++) {
                want = q->include[i] == tag;
            }
            /* bulk data references are relative to the DICOMweb root: not for QIDO */
            if (want && !has_bulk(val)) {
                json_object_set(obj, key, val);
            }
        }
        json_decref(meta);
    }
    sqlite3_finalize(st);
}

static json_t *
row_json(sqlite3 *db, sqlite3_stmt *st, const store_query *q, const colmap *cm,
         const char *base_url, int extra)
{
    json_t *o = json_object();
    set_string(o, 0x00080005, "CS", "ISO_IR 192");
    for (int i = 0; i < N_ATTRS; i++) {
        int c = cm->attr_col[i];
        if (c < 0) {
            continue;
        }
        const char *v = (const char *)sqlite3_column_text(st, c);
        set_string(o, k_attrs[i].tag, k_attrs[i].vr, v);
    }
    int ncol = sqlite3_column_count(st);
    const char *study = (const char *)sqlite3_column_text(st, ncol - 1 - (int)q->level);
    char url[1024];
    if (q->level == STORE_STUDY) {
        snprintf(url, sizeof url, "%s/studies/%s", base_url, study);
    } else if (q->level == STORE_SERIES) {
        snprintf(url, sizeof url, "%s/studies/%s/series/%s", base_url, study,
                 sqlite3_column_text(st, ncol - 1));
    } else {
        snprintf(url, sizeof url, "%s/studies/%s/series/%s/instances/%s", base_url, study,
                 sqlite3_column_text(st, ncol - 2), sqlite3_column_text(st, ncol - 1));
    }
    set_string(o, 0x00081190, "UR", url);
    if (q->level == STORE_STUDY) {
        set_string(o, 0x00080056, "CS", "ONLINE");
    }
    if (extra) {
        add_extra(db, q, sqlite3_column_int64(st, cm->pk_col), o);
    }
    return o;
}

int
store_query_run(store *s, store_query *q, const char *base_url, long max_results,
                char **json_out, size_t *json_len, long *remaining, tsr_err *err)
{
    if (q->level < STORE_STUDY || q->level > STORE_INSTANCE) {
        return tsr_err_set(err, TSR_EINVAL, "bad query level");
    }
    long limit = q->limit < 0 || q->limit > max_results ? max_results : q->limit;
    if (q->limit > max_results) {
        char m[96];
        snprintf(m, sizeof m, "limit reduced to the server maximum of %ld", max_results);
        warn(q, "%s", m);
    }
    sqlbuf b = {0};
    owned own = {0};
    colmap cm;
    select_list(&b, q, &cm);
    sb_add(&b, from_clause(q->level, 1));
    where_clause(&b, q, &own, 0);
    sb_add(&b, q->level == STORE_STUDY    ? " ORDER BY st.date DESC, st.time_n DESC, st.pk DESC"
               : q->level == STORE_SERIES ? " ORDER BY st.pk, se.number, se.pk"
                                          : " ORDER BY se.pk, i.number, i.pk");
    char page[64];
    snprintf(page, sizeof page, " LIMIT %ld OFFSET %ld", limit + 1, q->offset);
    sb_add(&b, page);

    int ret = TSR_OK;
    sqlite3 *db = store__reader(s);
    sqlite3_stmt *st = NULL;
    json_t *arr = json_array();
    if (b.oom || !arr) {
        ret = tsr_err_set(err, TSR_ENOMEM, "out of memory");
    } else {
        int rc = sqlite3_prepare_v2(db, b.s, -1, &st, NULL);
        if (rc != SQLITE_OK || bind_all(st, &b) != 0) {
            ret = store__sql_err(db, rc, "query", err);
        }
    }
    long n = 0;
    int more = 0;
    int extra = needs_extra(q);
    while (ret == TSR_OK) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            break;
        }
        if (rc != SQLITE_ROW) {
            ret = store__sql_err(db, rc, "query", err);
            break;
        }
        if (n == limit) {
            more = 1;
            break;
        }
        json_array_append_new(arr, row_json(db, st, q, &cm, base_url, extra));
        n++;
    }
    sqlite3_finalize(st);
    *remaining = 0;
    if (ret == TSR_OK && more) {
        /* how many more: a count with the same conditions */
        sqlbuf c = {0};
        owned own2 = {0};
        sb_add(&c, "SELECT COUNT(*)");
        sb_add(&c, from_clause(q->level, needs_patients(q)));
        where_clause(&c, q, &own2, 1);
        if (!c.oom && sqlite3_prepare_v2(db, c.s, -1, &st, NULL) == SQLITE_OK &&
            bind_all(st, &c) == 0 && sqlite3_step(st) == SQLITE_ROW) {
            *remaining = (long)sqlite3_column_int64(st, 0) - q->offset - n;
        }
        sqlite3_finalize(st);
        free(c.s);
        for (int i = 0; i < own2.n; i++) {
            free(own2.p[i]);
        }
    }
    store__reader_put(s, db);
    free(b.s);
    for (int i = 0; i < own.n; i++) {
        free(own.p[i]);
    }
    if (ret == TSR_OK) {
        *json_out = json_dumps(arr, JSON_COMPACT);
        if (!*json_out) {
            ret = tsr_err_set(err, TSR_ENOMEM, "out of memory");
        } else {
            *json_len = strlen(*json_out);
        }
    }
    json_decref(arr);
    return ret;
}
