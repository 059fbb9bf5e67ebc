/* SPDX-License-Identifier: MIT */
/* negotiate.c: Accept header parsing and media type selection (see negotiate.h).
 *
 * Memory. A list is one allocation: the range array, the parameter array and a pool of
 * NUL-terminated strings copied out of the header. Sizes are bounded before parsing (a range
 * per comma, a parameter per semicolon, and at most one NUL per input byte plus the input), so
 * parsing itself never allocates and never fails for lack of room. */
#include "negotiate.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- characters */

static int
is_ows(int c)
{
    return c == ' ' || c == '\t';
}

/* RFC 7230 3.2.6 tchar. */
static int
is_tchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int
lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static int
ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        if (lower((unsigned char)*a) != lower((unsigned char)*b)) {
            return 0;
        }
    }
    return *a == *b;
}

/* Copies at most 48 characters of `s` for an error message, replacing anything unprintable, so
 * that a hostile header cannot put control characters into a response. */
static void
quote_input(char dst[52], const char *s)
{
    size_t i = 0;
    for (; s[i] && i < 48; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (s[i]) {
        memcpy(dst + i, "...", 3);
        i += 3;
    }
    dst[i] = '\0';
}

/* ---------------------------------------------------------------- parser */

typedef struct parser {
    const char *s; /* the whole input, for messages */
    const char *p; /* cursor */
    char *pool;    /* string pool, `left` bytes free */
    size_t left;
    neg_range *ranges;
    int n_ranges;
    neg_parameter *params;
    int n_params, max_params;
    const char *what; /* "Accept" or "accept parameter" */
    tsr_err *err;
} parser;

static int
fail(parser *ps, const char *why)
{
    char q[52];
    quote_input(q, ps->s);
    return tsr_err_set(ps->err, TSR_EINVAL, "%s: %s at offset %d in '%s'", ps->what, why,
                       (int)(ps->p - ps->s), q);
}

static void
skip_ows(parser *ps)
{
    while (is_ows((unsigned char)*ps->p)) {
        ps->p++;
    }
}

/* Copies [a, b) into the pool, lowercased when asked, and returns the copy. */
static const char *
intern(parser *ps, const char *a, const char *b, int lowercase)
{
    size_t n = (size_t)(b - a);
    char *out = ps->pool;
    assert(n + 1 <= ps->left);
    for (size_t i = 0; i < n; i++) {
        out[i] = lowercase ? (char)lower((unsigned char)a[i]) : a[i];
    }
    out[n] = '\0';
    ps->pool += n + 1;
    ps->left -= n + 1;
    return out;
}

/* A token (RFC 7230 tchar+); when `slash` also '/', for unquoted media types as values. */
static const char *
token(parser *ps, int slash, int lowercase)
{
    const char *a = ps->p;
    while (is_tchar((unsigned char)*ps->p) || (slash && *ps->p == '/')) {
        ps->p++;
    }
    return ps->p == a ? NULL : intern(ps, a, ps->p, lowercase);
}

/* A quoted-string (RFC 7230 3.2.6) at the cursor, unescaped into the pool. */
static const char *
quoted(parser *ps)
{
    ps->p++; /* past the opening quote */
    char *out = ps->pool;
    size_t n = 0;
    for (;;) {
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c == '\\') {
            c = (unsigned char)*++ps->p;
            if (c == '\0' || (c < 0x20 && c != '\t') || c == 0x7f) {
                return NULL;
            }
        } else if (c == '\0' || (c < 0x20 && c != '\t') || c == 0x7f) {
            return NULL; /* unterminated, or a control character */
        }
        out[n++] = (char)c;
        ps->p++;
    }
    assert(n + 1 <= ps->left);
    out[n] = '\0';
    ps->pool += n + 1;
    ps->left -= n + 1;
    return out;
}

/* RFC 7231 5.3.1 qvalue: "0" ["." 0*3DIGIT] / "1" ["." 0*3("0")], in thousandths. */
static int
qvalue(const char *v, int *q)
{
    if ((v[0] != '0' && v[0] != '1') || (v[1] != '\0' && v[1] != '.')) {
        return -1;
    }
    int r = (v[0] - '0') * 1000;
    if (v[1] == '.') {
        int scale = 100, digits = 0;
        for (const char *d = v + 2; *d; d++, digits++) {
            if (*d < '0' || *d > '9' || digits == 3) {
                return -1;
            }
            r += (*d - '0') * scale;
            scale /= 10;
        }
    }
    if (r > 1000) {
        return -1;
    }
    *q = r;
    return 0;
}

/* One list element: media-range *(OWS ";" OWS parameter), q and accept-ext. The cursor is at
 * the element's first non-blank character and is left at the ',' or NUL that ends it. */
static int
element(parser *ps)
{
    if (ps->n_ranges == NEG_MAX_RANGES) {
        return fail(ps, "too many media ranges");
    }
    neg_range *r = &ps->ranges[ps->n_ranges];
    memset(r, 0, sizeof *r);
    r->q = 1000;
    r->params = ps->params + ps->n_params;

    r->type = token(ps, 0, 1);
    if (!r->type || *ps->p != '/') {
        return fail(ps, "expected a media type such as image/jpeg");
    }
    ps->p++;
    r->subtype = token(ps, 0, 1);
    if (!r->subtype) {
        return fail(ps, "expected a media subtype");
    }
    if (strcmp(r->type, "*") == 0 && strcmp(r->subtype, "*") != 0) {
        return fail(ps, "a wildcard type needs a wildcard subtype");
    }

    int after_q = 0; /* parameters after q are accept-ext: parsed, not kept */
    for (;;) {
        skip_ows(ps);
        if (*ps->p == ',' || *ps->p == '\0') {
            break;
        }
        if (*ps->p != ';') {
            return fail(ps, "unexpected character");
        }
        ps->p++;
        skip_ows(ps);
        if (*ps->p == ';' || *ps->p == ',' || *ps->p == '\0') {
            continue; /* an empty parameter ("text/html;"), seen in the wild */
        }
        const char *name = token(ps, 0, 1);
        if (!name) {
            return fail(ps, "expected a parameter name");
        }
        skip_ows(ps);
        const char *value = NULL;
        if (*ps->p == '=') {
            ps->p++;
            skip_ows(ps);
            value = *ps->p == '"' ? quoted(ps) : token(ps, 1, 0);
            if (!value) {
                return fail(ps, "malformed parameter value");
            }
        } else if (!after_q) {
            return fail(ps, "a media type parameter needs a value");
        }
        if (after_q) {
            continue;
        }
        if (strcmp(name, "q") == 0) {
            if (qvalue(value, &r->q) != 0) {
                return fail(ps, "q must be 0..1 with at most three decimals");
            }
            after_q = 1;
            continue;
        }
        if (r->n_params == NEG_MAX_PARAMS || ps->n_params == ps->max_params) {
            return fail(ps, "too many parameters");
        }
        ps->params[ps->n_params].name = name;
        ps->params[ps->n_params].value = value;
        ps->n_params++;
        r->n_params++;
    }
    if (r->n_params == 0) {
        r->params = NULL;
    }
    ps->n_ranges++;
    return TSR_OK;
}

static int
parse_list(const char *s, const char *what, neg_list *out, tsr_err *err)
{
    memset(out, 0, sizeof *out);
    if (!s) {
        return TSR_OK;
    }
    size_t len = strlen(s);
    if (len > 65536) { /* far beyond any real header; CivetWeb's own limit is lower */
        return tsr_err_set(err, TSR_EINVAL, "%s: value too long (%zu bytes)", what, len);
    }
    size_t commas = 0, semis = 0;
    for (size_t i = 0; i < len; i++) {
        commas += s[i] == ',';
        semis += s[i] == ';';
    }
    size_t max_ranges = commas + 1 < NEG_MAX_RANGES ? commas + 1 : NEG_MAX_RANGES;
    size_t max_params = semis + 1;
    /* Every string copied out is a stretch of the input plus a NUL, and stretches do not
     * overlap, so 2 * len + 2 bytes always suffice. */
    size_t pool = 2 * len + 2;
    size_t bytes = max_ranges * sizeof(neg_range) + max_params * sizeof(neg_parameter) + pool;
    void *mem = malloc(bytes);
    if (!mem) {
        return tsr_err_set(err, TSR_ENOMEM, "%s: out of memory", what);
    }
    parser ps = {
        .s = s,
        .p = s,
        .ranges = mem,
        .params = (neg_parameter *)((neg_range *)mem + max_ranges),
        .max_params = (int)max_params,
        .what = what,
        .err = err,
    };
    ps.pool = (char *)(ps.params + max_params);
    ps.left = pool;

    int rc = TSR_OK;
    for (;;) {
        skip_ows(&ps);
        if (*ps.p == '\0') {
            break;
        }
        if (*ps.p == ',') { /* an empty element (RFC 7230 7) */
            ps.p++;
            continue;
        }
        if ((rc = element(&ps)) != TSR_OK) {
            break;
        }
    }
    if (rc != TSR_OK) {
        free(mem);
        return rc;
    }
    if (ps.n_ranges == 0) {
        free(mem);
        return TSR_OK;
    }
    out->n = ps.n_ranges;
    out->ranges = ps.ranges;
    out->mem_ = mem;
    return TSR_OK;
}

int
neg_parse(const char *header, neg_list *out, tsr_err *err)
{
    return parse_list(header, "Accept", out, err);
}

int
neg_parse_request(const char *header, const char *query, neg_list *out, tsr_err *err)
{
    if (!query) {
        return neg_parse(header, out, err);
    }
    int rc = parse_list(query, "accept parameter", out, err);
    if (rc == TSR_OK && out->n == 0) {
        return tsr_err_set(err, TSR_EINVAL, "accept parameter: expected at least one media type");
    }
    return rc;
}

void
neg_list_free(neg_list *l)
{
    if (!l) {
        return;
    }
    free(l->mem_);
    memset(l, 0, sizeof *l);
}

/* ---------------------------------------------------------------- matching */

const char *
neg_param(const neg_range *r, const char *name)
{
    if (!r || !name) {
        return NULL;
    }
    for (int i = 0; i < r->n_params; i++) {
        if (ieq(r->params[i].name, name)) {
            return r->params[i].value;
        }
    }
    return NULL;
}

const char *
neg_transfer_syntax(const neg_range *r)
{
    return neg_param(r, "transfer-syntax");
}

/* Parameters that describe a variant the server can produce on demand rather than a different
 * kind of resource: an offer that does not name them accepts any value. */
static int
open_param(const char *name)
{
    return strcmp(name, "transfer-syntax") == 0 || strcmp(name, "charset") == 0;
}

static int
matches(const neg_range *r, const neg_range *offer)
{
    if (strcmp(r->type, "*") != 0 && strcmp(r->type, offer->type) != 0) {
        return 0;
    }
    if (strcmp(r->subtype, "*") != 0 && strcmp(r->subtype, offer->subtype) != 0) {
        return 0;
    }
    for (int i = 0; i < r->n_params; i++) {
        const neg_parameter *p = &r->params[i];
        const char *v = neg_param(offer, p->name);
        if (!v) {
            if (open_param(p->name)) {
                continue;
            }
            return 0;
        }
        if (strcmp(p->name, "transfer-syntax") == 0 && strcmp(p->value, "*") == 0) {
            continue;
        }
        if (!ieq(v, p->value)) {
            return 0;
        }
    }
    return 1;
}

/* Specificity: wildcard level first, then the number of parameters. */
static int
specificity(const neg_range *r)
{
    int level = strcmp(r->type, "*") == 0 ? 0 : strcmp(r->subtype, "*") == 0 ? 1 : 2;
    return level * (NEG_MAX_PARAMS + 1) + r->n_params;
}

/* The deciding range for a parsed offer, or NULL. */
static const neg_range *
best_for(const neg_list *l, const neg_range *offer)
{
    const neg_range *best = NULL;
    int best_spec = -1;
    for (int i = 0; i < l->n; i++) {
        const neg_range *r = &l->ranges[i];
        if (!matches(r, offer)) {
            continue;
        }
        int s = specificity(r);
        if (!best || s > best_spec || (s == best_spec && r->q > best->q)) {
            best = r;
            best_spec = s;
        }
    }
    return best;
}

const neg_range *
neg_best_range(const neg_list *l, const char *offered)
{
    neg_list o;
    if (!l || l->n == 0 || !offered || neg_parse(offered, &o, NULL) != TSR_OK) {
        return NULL;
    }
    const neg_range *r = o.n == 1 ? best_for(l, &o.ranges[0]) : NULL;
    neg_list_free(&o);
    return r;
}

int
neg_choose(const neg_list *l, const char *const *offered, int n_offered, int *chosen)
{
    int win = -1, win_q = 0, win_spec = -1;
    for (int i = 0; i < n_offered; i++) {
        neg_list o;
        if (!offered[i] || neg_parse(offered[i], &o, NULL) != TSR_OK) {
            continue;
        }
        if (o.n != 1) { /* an offer is one media type */
            neg_list_free(&o);
            continue;
        }
        int q = 1000, spec = -1;
        if (l && l->n > 0) {
            const neg_range *r = best_for(l, &o.ranges[0]);
            q = r ? r->q : 0;
            spec = r ? specificity(r) : -1;
        }
        neg_list_free(&o);
        if (q > win_q || (q == win_q && q > 0 && spec > win_spec)) {
            win = i;
            win_q = q;
            win_spec = spec;
        }
    }
    if (win < 0) {
        return -1;
    }
    *chosen = win;
    return 0;
}

/* ---------------------------------------------------------------- DICOM vs rendered */

static int
is_dicom_type(const char *type, const char *subtype)
{
    return strcmp(type, "application") == 0 &&
           (strcmp(subtype, "dicom") == 0 || strcmp(subtype, "octet-stream") == 0);
}

static int
is_rendered_type(const char *type, const char *subtype)
{
    return strcmp(type, "image") == 0 || strcmp(type, "video") == 0 || strcmp(type, "text") == 0 ||
           (strcmp(type, "application") == 0 && strcmp(subtype, "pdf") == 0);
}

/* Splits a media type value such as "application/dicom" into lowercased type and subtype.
 * Returns 0, or -1 when it is not type/subtype or does not fit. */
static int
split_type(const char *v, char type[64], char subtype[64])
{
    const char *slash = strchr(v, '/');
    if (!slash || slash == v || slash - v >= 64 || strlen(slash + 1) >= 64 || !slash[1]) {
        return -1;
    }
    size_t i = 0;
    for (; v + i < slash; i++) {
        type[i] = (char)lower((unsigned char)v[i]);
    }
    type[i] = '\0';
    for (i = 0; slash[1 + i]; i++) {
        subtype[i] = (char)lower((unsigned char)slash[1 + i]);
    }
    subtype[i] = '\0';
    return 0;
}

int
neg_has_dicom_and_rendered(const neg_list *l)
{
    int dicom = 0, rendered = 0;
    for (int i = 0; l && i < l->n; i++) {
        const neg_range *r = &l->ranges[i];
        if (r->q == 0) {
            continue;
        }
        const char *t = r->type, *s = r->subtype;
        char ct[64], cs[64];
        if (strcmp(t, "multipart") == 0 && strcmp(s, "related") == 0) {
            const char *inner = neg_param(r, "type");
            if (!inner || split_type(inner, ct, cs) != 0) {
                continue;
            }
            t = ct;
            s = cs;
        }
        dicom |= is_dicom_type(t, s);
        rendered |= is_rendered_type(t, s);
    }
    return dicom && rendered;
}
