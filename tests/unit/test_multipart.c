/* SPDX-License-Identifier: MIT */
/* test_multipart.c: the streaming multipart parser (http/multipart.h).
 *
 * Every body is fed through chunks that are separate heap copies of exactly the chunk's size,
 * so ASan reports any read past a chunk. A recorder callback keeps each part's headers and data;
 * results of one body fed in different splits are compared part by part. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "tsr_test.h"

#include "multipart.h"

#include <stdbool.h>

/* ---------------------------------------------------------------- recorder */

typedef struct rec_part {
    char *ct, *cl;
    uint8_t *data;
    size_t len, cap;
    bool ended;
} rec_part;

typedef struct rec {
    rec_part *parts;
    int n, cap;
    int begins, datas, ends;
    /* Stop (return 1) at the Nth call of a callback (1-based); 0: never. */
    int stop_begin, stop_data, stop_end;
    /* When set, a stopping callback writes this error (as a STOW handler would). */
    tsr_err *fill;
    /* Streaming mode for large bodies: hash the data instead of keeping it. */
    bool hash_only;
    uint64_t hash;
    size_t total;
    int after_stop; /* callbacks made after a stop: must stay 0 */
    bool stopped;
} rec;

static uint64_t
fnv1a(uint64_t h, const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= d[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

static int
stop_now(rec *r)
{
    r->stopped = true;
    if (r->fill) {
        tsr_err_set(r->fill, TSR_EIO, "disk full while storing part %d", r->n);
    }
    return 1;
}

static int
on_begin(void *user, const char *ct, const char *cl)
{
    rec *r = user;
    if (r->stopped) {
        r->after_stop++;
    }
    r->begins++;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 4;
        r->parts = realloc(r->parts, (size_t)r->cap * sizeof *r->parts);
        assert_non_null(r->parts);
    }
    rec_part *p = &r->parts[r->n++];
    memset(p, 0, sizeof *p);
    p->ct = strdup(ct);
    p->cl = strdup(cl);
    if (r->stop_begin && r->begins == r->stop_begin) {
        return stop_now(r);
    }
    return 0;
}

static int
on_data(void *user, const uint8_t *d, size_t n)
{
    rec *r = user;
    if (r->stopped) {
        r->after_stop++;
    }
    r->datas++;
    assert_true(n > 0); /* empty pieces are never delivered */
    assert_true(r->n > 0);
    rec_part *p = &r->parts[r->n - 1];
    assert_false(p->ended);
    r->total += n;
    if (r->hash_only) {
        r->hash = fnv1a(r->hash, d, n);
    } else {
        if (p->len + n > p->cap) {
            p->cap = (p->len + n) * 2;
            p->data = realloc(p->data, p->cap);
            assert_non_null(p->data);
        }
        memcpy(p->data + p->len, d, n);
        p->len += n;
    }
    if (r->stop_data && r->datas == r->stop_data) {
        return stop_now(r);
    }
    return 0;
}

static int
on_end(void *user)
{
    rec *r = user;
    if (r->stopped) {
        r->after_stop++;
    }
    r->ends++;
    assert_true(r->n > 0);
    assert_false(r->parts[r->n - 1].ended);
    r->parts[r->n - 1].ended = true;
    if (r->stop_end && r->ends == r->stop_end) {
        return stop_now(r);
    }
    return 0;
}

static const mp_callbacks k_cb = {on_begin, on_data, on_end};

static void
rec_free(rec *r)
{
    for (int i = 0; i < r->n; i++) {
        free(r->parts[i].ct);
        free(r->parts[i].cl);
        free(r->parts[i].data);
    }
    free(r->parts);
    r->parts = NULL;
    r->n = r->cap = 0;
}

/* ---------------------------------------------------------------- driver */

typedef struct result {
    int rc;      /* first failing mp_feed, else mp_finish */
    int feed_rc; /* TSR_OK when every mp_feed succeeded */
    tsr_err err;
    int count; /* mp_part_count at the end */
    rec r;
} result;

/* Feeds body[0..len) in pieces ending at cuts[0..ncuts) (increasing, each <= len), then the
 * rest, then finishes. Each piece is a separate exact-size heap copy. */
static result
run_cuts(const char *boundary, const void *body, size_t len, const size_t *cuts, size_t ncuts,
         size_t max_hdr, const rec *proto)
{
    result res;
    memset(&res, 0, sizeof res);
    if (proto) {
        res.r = *proto;
    }
    mp_parser *p = mp_new(boundary, &k_cb, &res.r, max_hdr);
    assert_non_null(p);
    size_t at = 0;
    res.rc = TSR_OK;
    for (size_t k = 0; k <= ncuts && res.rc == TSR_OK; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        assert_true(end >= at && end <= len);
        size_t n = end - at;
        uint8_t *chunk = malloc(n ? n : 1);
        assert_non_null(chunk);
        memcpy(chunk, (const uint8_t *)body + at, n);
        res.rc = mp_feed(p, n ? chunk : NULL, n, &res.err);
        free(chunk);
        at = end;
    }
    res.feed_rc = res.rc;
    if (res.rc == TSR_OK) {
        res.rc = mp_finish(p, &res.err);
    }
    assert_int_equal(res.err.code, res.rc);
    res.count = mp_part_count(p);
    mp_free(p);
    assert_int_equal(res.r.after_stop, 0);
    return res;
}

static result
run_whole(const char *boundary, const void *body, size_t len)
{
    return run_cuts(boundary, body, len, NULL, 0, 0, NULL);
}

/* Fixed-size chunks of `step` bytes. */
static result
run_step(const char *boundary, const void *body, size_t len, size_t step, size_t max_hdr,
         const rec *proto)
{
    size_t ncuts = len / step;
    size_t *cuts = calloc(ncuts + 1, sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 0; i < ncuts; i++) {
        cuts[i] = (i + 1) * step;
    }
    result r = run_cuts(boundary, body, len, cuts, ncuts, max_hdr, proto);
    free(cuts);
    return r;
}

static uint64_t
xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Random chunk sizes, mostly small, some up to `maxchunk`. */
static result
run_random(const char *boundary, const void *body, size_t len, uint64_t seed, size_t maxchunk,
           size_t max_hdr, const rec *proto)
{
    size_t cap = 16, ncuts = 0;
    size_t *cuts = malloc(cap * sizeof *cuts);
    assert_non_null(cuts);
    size_t at = 0;
    while (at < len) {
        uint64_t x = xorshift(&seed);
        size_t step = (x & 3) == 0 ? (size_t)(x >> 8) % maxchunk + 1 : (size_t)(x >> 8) % 80;
        at = at + step > len ? len : at + step;
        if (ncuts == cap) {
            cap *= 2;
            cuts = realloc(cuts, cap * sizeof *cuts);
            assert_non_null(cuts);
        }
        cuts[ncuts++] = at; /* zero-length pieces (step 0) are fed too */
    }
    result r = run_cuts(boundary, body, len, cuts, ncuts, max_hdr, proto);
    free(cuts);
    return r;
}

static void
assert_same(const result *a, const result *b)
{
    assert_int_equal(a->rc, b->rc);
    assert_int_equal(a->feed_rc, b->feed_rc);
    assert_string_equal(a->err.msg, b->err.msg);
    assert_int_equal(a->count, b->count);
    assert_int_equal(a->r.n, b->r.n);
    assert_int_equal(a->r.begins, b->r.begins);
    assert_int_equal(a->r.ends, b->r.ends);
    for (int i = 0; i < a->r.n; i++) {
        const rec_part *x = &a->r.parts[i], *y = &b->r.parts[i];
        assert_string_equal(x->ct, y->ct);
        assert_string_equal(x->cl, y->cl);
        assert_int_equal(x->len, y->len);
        if (x->len) {
            assert_memory_equal(x->data, y->data, x->len);
        }
        assert_int_equal(x->ended, y->ended);
    }
}

static void
assert_part(const result *res, int i, const char *ct, const char *cl, const void *data, size_t len)
{
    assert_true(i < res->r.n);
    const rec_part *p = &res->r.parts[i];
    assert_string_equal(p->ct, ct);
    assert_string_equal(p->cl, cl);
    assert_int_equal(p->len, len);
    if (len) {
        assert_memory_equal(p->data, data, len);
    }
    assert_true(p->ended);
}

static void
assert_msg_has(const result *res, const char *needle)
{
    if (!strstr(res->err.msg, needle)) {
        fail_msg("error message \"%s\" lacks \"%s\"", res->err.msg, needle);
    }
}

#define S(lit) (lit), (sizeof(lit) - 1)

/* ---------------------------------------------------------------- basic bodies */

static void
test_single_part(void **state)
{
    (void)state;
    result r = run_whole("b0undary", S("--b0undary\r\n"
                                       "Content-Type: application/dicom\r\n"
                                       "\r\n"
                                       "HELLO\r\n"
                                       "--b0undary--\r\n"));
    assert_int_equal(r.rc, TSR_OK);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.r.n, 1);
    assert_part(&r, 0, "application/dicom", "", S("HELLO"));
    assert_int_equal(r.r.datas, 1);
    rec_free(&r.r);
}

/* Preamble, transport padding, header case, ignored headers, binary data, a part without
 * headers, padding after the closing delimiter and an epilogue holding a boundary. */
static const char k_multi[] = "This is the preamble --abc, to be ignored.\r\n"
                              "--abc \t \r\n"
                              "content-type:   application/dicom  \r\n"
                              "CONTENT-LOCATION: /studies/1/series/2\r\n"
                              "X-Other: y\r\n"
                              "\r\n"
                              "\x00\x01\r\n-\r\n--\r\n--ab\n\r\x00\xff"
                              "\r\n--abc\r\n"
                              "Content-Type:application/dicom\r\n"
                              "Content-Type: text/plain\r\n"
                              "\r\n"
                              "second"
                              "\r\n--abc\r\n"
                              "\r\n"
                              "third, no headers\r\n"
                              "\r\n--abc--  \r\n"
                              "epilogue\r\n--abc\r\nnot: a part\r\n\r\nx\r\n--abc--\r\n";

static void
check_multi(const result *r)
{
    assert_int_equal(r->rc, TSR_OK);
    assert_int_equal(r->count, 3);
    assert_int_equal(r->r.n, 3);
    assert_part(r, 0, "application/dicom", "/studies/1/series/2",
                S("\x00\x01\r\n-\r\n--\r\n--ab\n\r\x00\xff"));
    assert_part(r, 1, "application/dicom", "", S("second")); /* first Content-Type wins */
    assert_part(r, 2, "", "", S("third, no headers\r\n"));
}

static void
test_multiple_parts(void **state)
{
    (void)state;
    result r = run_whole("abc", k_multi, sizeof k_multi - 1);
    check_multi(&r);
    rec_free(&r.r);
}

/* The same body in every 1- and 2-piece split, and in 1-byte pieces, parses identically. */
static void
check_all_splits(const char *boundary, const char *body, size_t len)
{
    result ref = run_whole(boundary, body, len);
    result one = run_step(boundary, body, len, 1, 0, NULL);
    assert_same(&ref, &one);
    rec_free(&one.r);
    for (size_t cut = 0; cut <= len; cut++) {
        result two = run_cuts(boundary, body, len, &cut, 1, 0, NULL);
        assert_same(&ref, &two);
        rec_free(&two.r);
    }
    /* and a sample of 3-piece splits */
    for (size_t a = 0; a <= len; a += 3) {
        for (size_t b = a; b <= len; b += 5) {
            size_t cuts[2] = {a, b};
            result three = run_cuts(boundary, body, len, cuts, 2, 0, NULL);
            assert_same(&ref, &three);
            rec_free(&three.r);
        }
    }
    rec_free(&ref.r);
}

static void
test_split_every_position(void **state)
{
    (void)state;
    check_all_splits("abc", k_multi, sizeof k_multi - 1);
    result one = run_step("abc", k_multi, sizeof k_multi - 1, 1, 0, NULL);
    check_multi(&one);
    assert_true(one.r.datas > 3); /* pieces really were streamed, not buffered */
    rec_free(&one.r);
}

/* Near-delimiters inside part data: a CRLF "--" plus a proper prefix of the boundary, the
 * boundary after bare CR or bare LF or without line break, and a prefix directly before the
 * real delimiter. */
static const char k_tricky[] = "--boundary\r\n"
                               "\r\n"
                               "a\r\n--boundar"
                               "b--boundary--"
                               "c\n--boundary\r\n"
                               "d\r--boundary\r\n"
                               "e\r\n-boundary"
                               "f\r\r\n--bound\r\r\n"
                               "\r\n--boundar"
                               "\r\n--boundary\r\n"
                               "Content-Type: a/b\r\n"
                               "\r\n"
                               "\r\n--boundar\r\n--boundary--";

static void
test_boundary_like_data(void **state)
{
    (void)state;
    result r = run_whole("boundary", k_tricky, sizeof k_tricky - 1);
    assert_int_equal(r.rc, TSR_OK);
    assert_int_equal(r.r.n, 2);
    assert_part(&r, 0, "", "",
                S("a\r\n--boundar"
                  "b--boundary--"
                  "c\n--boundary\r\n"
                  "d\r--boundary\r\n"
                  "e\r\n-boundary"
                  "f\r\r\n--bound\r\r\n"
                  "\r\n--boundar"));
    assert_part(&r, 1, "a/b", "", S("\r\n--boundar"));
    rec_free(&r.r);
    check_all_splits("boundary", k_tricky, sizeof k_tricky - 1);
}

static void
test_first_boundary_position(void **state)
{
    (void)state;
    /* at the very start, after a preamble line, and not when glued to preamble text */
    static const char *bodies[] = {
        "--q\r\n\r\nX\r\n--q--",         "pre\r\n--q\r\n\r\nX\r\n--q--",
        "\r\n--q\r\n\r\nX\r\n--q--",     "x--q\r\n--q\r\n\r\nX\r\n--q--",
        "\r\n\r\n--q\r\n\r\nX\r\n--q--",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        result r = run_whole("q", bodies[i], strlen(bodies[i]));
        assert_int_equal(r.rc, TSR_OK);
        assert_int_equal(r.r.n, 1);
        assert_part(&r, 0, "", "", S("X"));
        rec_free(&r.r);
        check_all_splits("q", bodies[i], strlen(bodies[i]));
    }
}

static void
test_empty_parts(void **state)
{
    (void)state;
    /* empty body after an empty header block; RFC 2046 also allows the part's blank line to be
     * the delimiter's CRLF, with or without headers */
    static const char body[] = "--b\r\n\r\n\r\n--b\r\n"
                               "\r\n--b\r\n"
                               "Content-Type: a/b\r\n\r\n--b\r\n"
                               "\r\n\r\n\r\n--b\r\n"
                               "\r\nX\r\n--b--";
    result r = run_whole("b", S(body));
    assert_int_equal(r.rc, TSR_OK);
    assert_int_equal(r.r.n, 5);
    assert_part(&r, 0, "", "", NULL, 0);
    assert_part(&r, 1, "", "", NULL, 0);
    assert_part(&r, 2, "a/b", "", NULL, 0);
    assert_part(&r, 3, "", "", S("\r\n")); /* a part whose data is one CRLF */
    assert_part(&r, 4, "", "", S("X"));
    assert_int_equal(r.r.datas, 2);
    rec_free(&r.r);
    check_all_splits("b", S(body));
}

static void
test_bare_lf(void **state)
{
    (void)state;
    static const char body[] = "--b\n"
                               "Content-Type: application/dicom\n"
                               "Content-Location: x\r\n"
                               "\n"
                               "DATA\nmore\r\n--b  \n"
                               "content-type: a/b\n\n"
                               "2\r\n--b--";
    result r = run_whole("b", S(body));
    assert_int_equal(r.rc, TSR_OK);
    assert_int_equal(r.r.n, 2);
    assert_part(&r, 0, "application/dicom", "x", S("DATA\nmore"));
    assert_part(&r, 1, "a/b", "", S("2"));
    rec_free(&r.r);
    check_all_splits("b", S(body));
}

static void
test_folded_header(void **state)
{
    (void)state;
    static const char body[] = "--b\r\n"
                               "Content-Type: multipart/related;\r\n"
                               " \t type=\"application/dicom\"\r\n"
                               "\tX\r\n"
                               "Content-Location: y\r\n"
                               "\r\n"
                               "D\r\n--b--";
    result r = run_whole("b", S(body));
    assert_int_equal(r.rc, TSR_OK);
    assert_part(&r, 0, "multipart/related; type=\"application/dicom\" X", "y", S("D"));
    rec_free(&r.r);
    check_all_splits("b", S(body));

    result bad = run_whole("b", S("--b\r\n continuation first\r\n\r\nD\r\n--b--"));
    assert_int_equal(bad.rc, TSR_EINVAL);
    assert_msg_has(&bad, "continuation");
    assert_int_equal(bad.r.begins, 0);
    rec_free(&bad.r);
}

static void
test_malformed_headers(void **state)
{
    (void)state;
    result r = run_whole("b", S("--b\r\nNo colon here\r\n\r\nD\r\n--b--"));
    assert_int_equal(r.rc, TSR_EINVAL);
    assert_int_equal(r.feed_rc, TSR_EINVAL);
    assert_msg_has(&r, "no ':'");
    assert_int_equal(r.r.begins, 0);
    rec_free(&r.r);

    r = run_whole("b", S("--b\r\n: empty name\r\n\r\nD\r\n--b--"));
    assert_int_equal(r.rc, TSR_EINVAL);
    assert_msg_has(&r, "empty name");
    rec_free(&r.r);

    r = run_whole("b", S("--b\r\nContent-Type: a\0b\r\n\r\nD\r\n--b--"));
    assert_int_equal(r.rc, TSR_EINVAL);
    assert_msg_has(&r, "NUL");
    rec_free(&r.r);
}

/* ---------------------------------------------------------------- errors */

static void
test_garbage_after_boundary(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int parts_begun;
    } cases[] = {
        {"--bX\r\n\r\nD\r\n--b--", 0},
        {"--b\r\n\r\nD\r\n--bX\r\n--b--", 1},    /* the boundary must not occur in data */
        {"--b\r\n\r\nD\r\n--b-x\r\n", 1},        /* one dash */
        {"--b\r\n\r\nD\r\n--b \tx\r\n--b--", 1}, /* text after padding */
        {"--b\r\n\r\nD\r\n--b\rx\r\n--b--", 1},  /* CR without LF */
        {"--b\r\n\r\nD\r\n--b\r\r\n--b--", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *b = cases[i].body;
        result r = run_whole("b", b, strlen(b));
        assert_int_equal(r.rc, TSR_EINVAL);
        assert_int_equal(r.feed_rc, TSR_EINVAL);
        assert_msg_has(&r, "after multipart boundary");
        assert_int_equal(r.count, cases[i].parts_begun);
        rec_free(&r.r);
        check_all_splits("b", b, strlen(b));
    }
}

static void
test_truncated(void **state)
{
    (void)state;
    static const char *bodies[] = {
        "--b\r\n\r\nDATA",            /* in data */
        "--b\r\n\r\nDATA\r\n--",      /* in a held delimiter prefix */
        "--b\r\n\r\nDATA\r\n--b",     /* right after a delimiter */
        "--b\r\n\r\nDATA\r\n--b-",    /* half a closing delimiter */
        "--b\r\n\r\nDATA\r\n--b\r\n", /* after the delimiter line */
        "--b\r\nContent-Type: a",     /* in headers */
        "--b",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        result r = run_whole("b", bodies[i], strlen(bodies[i]));
        assert_int_equal(r.feed_rc, TSR_OK);
        assert_int_equal(r.rc, TSR_EINVAL);
        assert_string_equal(r.err.msg, "truncated multipart body: no closing boundary");
        rec_free(&r.r);
        check_all_splits("b", bodies[i], strlen(bodies[i]));
    }
    /* err may be NULL, and the result is stable */
    mp_parser *p = mp_new("b", NULL, NULL, 0);
    assert_non_null(p);
    assert_int_equal(mp_feed(p, (const uint8_t *)"--b\r\n\r\nD", 8, NULL), TSR_OK);
    assert_int_equal(mp_finish(p, NULL), TSR_EINVAL);
    tsr_err e = {0};
    assert_int_equal(mp_finish(p, &e), TSR_EINVAL);
    assert_string_equal(e.msg, "truncated multipart body: no closing boundary");
    assert_int_equal(mp_part_count(p), 1);
    mp_free(p);
}

static void
test_zero_parts(void **state)
{
    (void)state;
    result r = run_whole("b", S("--b--\r\n"));
    assert_int_equal(r.feed_rc, TSR_OK);
    assert_int_equal(r.rc, TSR_EINVAL);
    assert_string_equal(r.err.msg, "multipart body has no parts");
    rec_free(&r.r);

    r = run_whole("b", S("just text, no boundary\r\n"));
    assert_int_equal(r.rc, TSR_EINVAL);
    assert_msg_has(&r, "no parts");
    assert_msg_has(&r, "--b");
    rec_free(&r.r);

    r = run_whole("b", "", 0);
    assert_int_equal(r.rc, TSR_EINVAL);
    assert_msg_has(&r, "no parts");
    rec_free(&r.r);
}

/* The opening boundary must start within the first 64 KiB. */
static void
test_preamble_limit(void **state)
{
    (void)state;
    const size_t lim = 64 * 1024;
    static const char tail[] = "\r\n--b\r\n\r\nX\r\n--b--";
    char *body = malloc(lim + 1 + sizeof tail);
    assert_non_null(body);
    memset(body, 'x', lim + 1);
    /* preamble of exactly 64 KiB, then the delimiter's CRLF */
    memcpy(body + lim, tail, sizeof tail);
    result r = run_whole("b", body, lim + sizeof tail - 1);
    assert_int_equal(r.rc, TSR_OK);
    assert_int_equal(r.r.n, 1);
    rec_free(&r.r);
    r = run_step("b", body, lim + sizeof tail - 1, 1, 0, NULL);
    assert_int_equal(r.rc, TSR_OK);
    rec_free(&r.r);
    /* one byte more */
    memcpy(body + lim + 1, tail, sizeof tail);
    for (size_t step = 1; step <= 65537; step = step * 16 + 1) {
        r = run_step("b", body, lim + sizeof tail, step, 0, NULL);
        assert_int_equal(r.feed_rc, TSR_EINVAL);
        assert_string_equal(r.err.msg,
                            "no multipart boundary \"--b\" in the first 65536 bytes of the body");
        assert_int_equal(r.r.begins, 0);
        rec_free(&r.r);
    }
    free(body);
}

static void
test_header_limit(void **state)
{
    (void)state;
    /* a 64-byte header block (lines plus blank line) fits max_header_bytes = 64 */
    char hdr[65];
    memset(hdr, 'v', sizeof hdr);
    memcpy(hdr, "X-Pad: ", 7);
    memcpy(hdr + 60, "\r\n\r\n", 4);
    char body[256];
    int n = snprintf(body, sizeof body, "--b\r\n%.*s0\r\n--b--", 64, hdr);
    result r = run_cuts("b", body, (size_t)n, NULL, 0, 64, NULL);
    assert_int_equal(r.rc, TSR_OK);
    assert_part(&r, 0, "", "", S("0"));
    rec_free(&r.r);

    /* 65 bytes do not */
    memset(hdr, 'v', sizeof hdr);
    memcpy(hdr, "X-Pad: ", 7);
    memcpy(hdr + 61, "\r\n\r\n", 4);
    n = snprintf(body, sizeof body, "--b\r\n%.*s0\r\n--b--", 65, hdr);
    for (size_t step = 1; step <= (size_t)n; step++) {
        r = run_step("b", body, (size_t)n, step, 64, NULL);
        assert_int_equal(r.rc, TSR_EINVAL);
        assert_int_equal(r.feed_rc, TSR_EINVAL);
        assert_string_equal(r.err.msg, "part headers exceed 64 bytes");
        assert_int_equal(r.r.begins, 0);
        rec_free(&r.r);
    }

    /* default limit: 16 KiB; a single header line that never ends */
    size_t big = 20000;
    char *b2 = malloc(big);
    assert_non_null(b2);
    memset(b2, 'a', big);
    memcpy(b2, "--b\r\nX-Long: ", 13);
    r = run_step("b", b2, big, 1000, 0, NULL);
    assert_int_equal(r.rc, TSR_EINVAL);
    assert_string_equal(r.err.msg, "part headers exceed 16384 bytes");
    rec_free(&r.r);
    free(b2);
}

static void
test_callback_stop(void **state)
{
    (void)state;
    static const char body[] = "--b\r\n\r\nfirst\r\n--b\r\n\r\nsecond\r\n--b--";
    /* stop in each callback, at its first or second call */
    for (int which = 0; which < 3; which++) {
        for (int nth = 1; nth <= 2; nth++) {
            rec proto = {0};
            if (which == 0) {
                proto.stop_begin = nth;
            } else if (which == 1) {
                proto.stop_data = nth;
            } else {
                proto.stop_end = nth;
            }
            result r = run_cuts("b", S(body), NULL, 0, 0, &proto);
            assert_int_equal(r.feed_rc, TSR_EINVAL);
            assert_string_equal(r.err.msg, "stopped by callback");
            assert_int_equal(r.r.n, nth); /* after_stop == 0 is checked by run_cuts */
            rec_free(&r.r);
        }
    }

    /* the callback's own error wins; later calls return it again, callbacks stay silent */
    tsr_err e = {0};
    rec rr = {0};
    rr.stop_data = 1;
    rr.fill = &e;
    mp_parser *p = mp_new("b", &k_cb, &rr, 0);
    assert_non_null(p);
    int rc = mp_feed(p, (const uint8_t *)body, sizeof body - 1, &e);
    assert_int_equal(rc, TSR_EIO);
    assert_int_equal(e.code, TSR_EIO);
    assert_string_equal(e.msg, "disk full while storing part 1");
    tsr_err e2 = {0};
    assert_int_equal(mp_feed(p, (const uint8_t *)"x", 1, &e2), TSR_EIO);
    assert_string_equal(e2.msg, "disk full while storing part 1");
    memset(&e2, 0, sizeof e2);
    assert_int_equal(mp_finish(p, &e2), TSR_EIO);
    assert_string_equal(e2.msg, "disk full while storing part 1");
    assert_int_equal(rr.after_stop, 0);
    assert_int_equal(rr.datas, 1);
    mp_free(p);
    rec_free(&rr);

    /* a stale error in `err` from earlier use is not mistaken for the callback's */
    rec r3 = {0};
    r3.stop_end = 1;
    p = mp_new("b", &k_cb, &r3, 0);
    assert_non_null(p);
    tsr_err stale;
    tsr_err_set(&stale, TSR_ENOTFOUND, "old");
    assert_int_equal(mp_feed(p, (const uint8_t *)body, sizeof body - 1, &stale), TSR_EINVAL);
    assert_string_equal(stale.msg, "stopped by callback");
    mp_free(p);
    rec_free(&r3);

    /* err NULL */
    rec r4 = {0};
    r4.stop_begin = 1;
    p = mp_new("b", &k_cb, &r4, 0);
    assert_non_null(p);
    assert_int_equal(mp_feed(p, (const uint8_t *)body, sizeof body - 1, NULL), TSR_EINVAL);
    assert_int_equal(mp_finish(p, NULL), TSR_EINVAL);
    mp_free(p);
    rec_free(&r4);
}

static void
test_epilogue_and_sticky(void **state)
{
    (void)state;
    rec r = {0};
    mp_parser *p = mp_new("b", &k_cb, &r, 0);
    assert_non_null(p);
    tsr_err e;
    assert_int_equal(mp_feed(p, (const uint8_t *)S("--b\r\n\r\nD\r\n--b--"), &e), TSR_OK);
    assert_int_equal(e.code, TSR_OK);
    /* epilogue, even one that looks like more parts or garbage, is ignored */
    assert_int_equal(mp_feed(p, (const uint8_t *)S("\r\n--b\r\n\r\nE\r\n--b--\x00"), &e), TSR_OK);
    assert_int_equal(mp_finish(p, &e), TSR_OK);
    assert_int_equal(mp_finish(p, &e), TSR_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.datas, 1);
    assert_int_equal(mp_part_count(p), 1);
    mp_free(p);
    rec_free(&r);

    /* after a parse error every call repeats it */
    memset(&r, 0, sizeof r);
    p = mp_new("b", &k_cb, &r, 0);
    assert_non_null(p);
    assert_int_equal(mp_feed(p, (const uint8_t *)S("--bZ"), &e), TSR_EINVAL);
    tsr_err e2;
    assert_int_equal(mp_feed(p, (const uint8_t *)S("\r\n\r\nD\r\n--b--"), &e2), TSR_EINVAL);
    assert_string_equal(e.msg, e2.msg);
    assert_int_equal(mp_finish(p, &e2), TSR_EINVAL);
    assert_string_equal(e.msg, e2.msg);
    assert_int_equal(r.begins, 0);
    mp_free(p);
    rec_free(&r);

    /* NULL callbacks are allowed: the parser still validates and counts */
    p = mp_new("b", NULL, NULL, 0);
    assert_non_null(p);
    assert_int_equal(mp_feed(p, (const uint8_t *)S("--b\r\n\r\nD\r\n--b\r\n\r\n\r\n--b--"), NULL),
                     TSR_OK);
    assert_int_equal(mp_finish(p, NULL), TSR_OK);
    assert_int_equal(mp_part_count(p), 2);
    mp_free(p);
    mp_free(NULL);
    assert_int_equal(mp_part_count(NULL), 0);
}

static void
test_boundary_validation(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "ends with space ",
        "semi;colon",
        "quote\"",
        "crlf\r\n",
        "at@sign",
        "0123456789012345678901234567890123456789012345678901234567890123456789X", /* 71 */
        NULL,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_null(mp_new(bad[i], &k_cb, NULL, 0));
    }
    const char *good[] = {
        "x",
        "0123456789012345678901234567890123456789012345678901234567890123456789", /* 70 */
        "gc0p4Jq0M2Yt08jU534c0p",
        "----=_Part_1_2.3?'(),+/:",
        "with inner space",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        mp_parser *p = mp_new(good[i], &k_cb, NULL, 0);
        assert_non_null(p);
        mp_free(p);
    }
    /* a 70-char boundary with spaces works end to end */
    const char *b70 = "0123456789 123456789 123456789 123456789 123456789 123456789 12345678x";
    assert_int_equal(strlen(b70), 70);
    char body[512];
    int n = snprintf(body, sizeof body, "--%s\r\n\r\nP\r\n--%s--", b70, b70);
    result r = run_whole(b70, body, (size_t)n);
    assert_int_equal(r.rc, TSR_OK);
    assert_part(&r, 0, "", "", S("P"));
    rec_free(&r.r);
    check_all_splits(b70, body, (size_t)n);
}

/* ---------------------------------------------------------------- large data */

/* 10 MB of random bytes with near-delimiters sprinkled in, fed in random pieces (1 byte to
 * 1 MiB): the emitted data hashes to the input's hash, and nothing was held back. */
static void
test_large_part(void **state)
{
    (void)state;
    const char *bnd = "MIMEBoundary7f3a9c2e5b";
    const size_t dlen = 10u * 1000u * 1000u;
    static const char head[] =
        "--MIMEBoundary7f3a9c2e5b\r\nContent-Type: application/dicom\r\n\r\n";
    static const char tail[] = "\r\n--MIMEBoundary7f3a9c2e5b--\r\n";
    size_t total = sizeof head - 1 + dlen + sizeof tail - 1;
    uint8_t *body = malloc(total);
    assert_non_null(body);
    memcpy(body, head, sizeof head - 1);
    uint8_t *data = body + sizeof head - 1;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < dlen; i += 8) {
        uint64_t x = xorshift(&s);
        memcpy(data + i, &x, dlen - i < 8 ? dlen - i : 8);
    }
    for (size_t i = 1000; i + 64 < dlen; i += 99991) {
        memcpy(data + i, "\r\n--MIMEBoundary7f3a9c2e5", 25); /* one byte short */
    }
    memcpy(data + dlen - 25, "\r\n--MIMEBoundary7f3a9c2e5", 25); /* right before the end */
    memcpy(body + sizeof head - 1 + dlen, tail, sizeof tail - 1);
    uint64_t want = fnv1a(FNV_INIT, data, dlen);

    for (uint64_t seed = 1; seed <= 3; seed++) {
        rec proto = {0};
        proto.hash_only = true;
        proto.hash = FNV_INIT;
        result r = run_random(bnd, body, total, seed, seed == 1 ? 1u << 20 : 1u << 14, 0, &proto);
        assert_int_equal(r.rc, TSR_OK);
        assert_int_equal(r.r.n, 1);
        assert_string_equal(r.r.parts[0].ct, "application/dicom");
        assert_true(r.r.parts[0].ended);
        assert_int_equal(r.r.total, dlen);
        assert_true(r.r.hash == want);
        rec_free(&r.r);
    }
    free(body);
}

/* ---------------------------------------------------------------- fuzz */

/* Mutates valid bodies thousands of times. Each mutant is parsed whole, in 1-byte pieces and
 * in random pieces (sometimes with a tiny header limit, sometimes stopping at a part): the
 * parser must not crash (ASan/UBSan) and every split must give the same result. */
static void
test_fuzz_mutations(void **state)
{
    (void)state;
    static const char *seeds[] = {
        k_multi,
        k_tricky,
        "--b\r\n\r\n\r\n--b\r\n\r\n--b\r\nContent-Type: a/b\r\n\r\n--b\r\n\r\nX\r\n--b--",
        "--b\nContent-Type: x\n\nDATA\r\n--b \t\r\n\r\n2\r\n--b--\r\nepi",
        "pre\r\n--b\r\nContent-Type: multipart/related;\r\n type=x\r\n\r\nD\r\n--b--",
    };
    static const char *bounds[] = {"abc", "boundary", "b", "b", "b"};
    static const char *frags[] = {"\r\n", "--", "\r\n--",   "\r",
                                  "\n",   ":",  " ",        "\t",
                                  "\0",   "-",  "\r\n\r\n", "Content-Type: q/r\r\n"};
    uint64_t rng = 0x1234567887654321ull;
    uint8_t buf[1024];
    for (int it = 0; it < 4000; it++) {
        size_t si = (size_t)(xorshift(&rng) % (sizeof seeds / sizeof seeds[0]));
        const char *bd = bounds[si];
        size_t len = strlen(seeds[si]);
        memcpy(buf, seeds[si], len);
        int nmut = 1 + (int)(xorshift(&rng) % 4);
        for (int m = 0; m < nmut; m++) {
            uint64_t x = xorshift(&rng);
            size_t pos = len ? (size_t)(x >> 16) % (len + 1) : 0;
            switch (x % 6) {
            case 0: /* flip a byte */
                if (pos < len) {
                    buf[pos] = (uint8_t)(x >> 40);
                }
                break;
            case 1: { /* insert a fragment or the boundary */
                const char *f =
                    (x >> 8) % 3 == 0 ? bd : frags[(x >> 10) % (sizeof frags / sizeof frags[0])];
                size_t fl = f[0] ? strlen(f) : 1;
                if (len + fl <= sizeof buf) {
                    memmove(buf + pos + fl, buf + pos, len - pos);
                    memcpy(buf + pos, f, fl);
                    len += fl;
                }
                break;
            }
            case 2: { /* delete a range */
                size_t dl = (size_t)(x >> 50) % 8 + 1;
                if (pos + dl <= len) {
                    memmove(buf + pos, buf + pos + dl, len - pos - dl);
                    len -= dl;
                }
                break;
            }
            case 3: /* truncate */
                len = pos;
                break;
            case 4: { /* duplicate a range */
                size_t dl = (size_t)(x >> 50) % 16 + 1;
                if (pos + dl <= len && len + dl <= sizeof buf) {
                    memmove(buf + pos + dl, buf + pos, len - pos);
                    len += dl;
                }
                break;
            }
            default: /* change case of a byte */
                if (pos < len) {
                    buf[pos] ^= 0x20;
                }
                break;
            }
        }
        rec proto = {0};
        size_t max_hdr = 0;
        uint64_t opt = xorshift(&rng);
        if (opt % 4 == 0) {
            max_hdr = 1 + (size_t)(opt >> 8) % 48;
        }
        if (opt % 5 == 0) {
            proto.stop_begin = 1 + (int)((opt >> 16) % 3);
        } else if (opt % 7 == 0) {
            proto.stop_end = 1 + (int)((opt >> 16) % 3);
        }
        result ref = run_cuts(bd, buf, len, NULL, 0, max_hdr, &proto);
        assert_true(ref.rc == TSR_OK || ref.rc == TSR_EINVAL);
        assert_true(ref.rc != TSR_OK || ref.count > 0);
        assert_int_equal(ref.count, ref.r.begins);
        result one = run_step(bd, buf, len, 1, max_hdr, &proto);
        assert_same(&ref, &one);
        rec_free(&one.r);
        result rnd = run_random(bd, buf, len, xorshift(&rng), 64, max_hdr, &proto);
        assert_same(&ref, &rnd);
        rec_free(&rnd.r);
        result again = run_cuts(bd, buf, len, NULL, 0, max_hdr, &proto);
        assert_same(&ref, &again);
        rec_free(&again.r);
        rec_free(&ref.r);
    }
}

/* ---------------------------------------------------------------- Content-Type helpers */

static void
check_param(const char *ct, const char *name, const char *want)
{
    char out[128];
    memset(out, 'Z', sizeof out);
    int rc = mp_header_param(ct, name, out, sizeof out);
    if (!want) {
        if (rc != -1) {
            fail_msg("%s in [%s]: expected absent, got \"%s\"", name, ct, out);
        }
        return;
    }
    if (rc != 0) {
        fail_msg("%s in [%s]: expected \"%s\", got absent", name, ct, want);
    }
    assert_string_equal(out, want);
}

static void
test_header_param(void **state)
{
    (void)state;
    const char *stow = "multipart/related; type=\"application/dicom\"; boundary=abc";
    check_param(stow, "type", "application/dicom");
    check_param(stow, "boundary", "abc");
    check_param(stow, "BOUNDARY", "abc");
    check_param(stow, "start", NULL);
    /* names are case-insensitive, values are kept as they are */
    check_param("multipart/related;Boundary=AbC;TYPE=application/dicom", "boundary", "AbC");
    check_param("multipart/related;Boundary=AbC;TYPE=application/dicom", "type",
                "application/dicom");
    /* whitespace around ';' and '=' */
    check_param("multipart/related ;  boundary =  \"x y\"  ; type\t=\tz", "boundary", "x y");
    check_param("multipart/related ;  boundary =  \"x y\"  ; type\t=\tz", "type", "z");
    /* quoted-string: escapes, and ';' '=' inside do not start parameters */
    check_param("a/b; type=\"application/dicom; boundary=fake\"; boundary=real", "boundary",
                "real");
    check_param("a/b; type=\"application/dicom; boundary=fake\"; boundary=real", "type",
                "application/dicom; boundary=fake");
    check_param("a/b; x=\"q\\\"uo\\\\te\\d\"", "x", "q\"uo\\ted");
    check_param("a/b; x=\"\"", "x", "");
    check_param("a/b; x=", "x", "");
    /* a name that is a prefix or suffix of another is not confused */
    check_param("a/b; xboundary=1; boundaryx=2", "boundary", NULL);
    check_param("a/b; xboundary=1; boundaryx=2; boundary=3", "boundary", "3");
    /* no parameters, parameters without '=', empty parameters, the media type itself */
    check_param("multipart/related", "boundary", NULL);
    check_param("boundary=x", "boundary", NULL);
    check_param("a/b; flag; ; boundary=y", "boundary", "y");
    check_param("a/b;;;boundary=y;;", "boundary", "y");
    check_param("", "boundary", NULL);
    /* the first occurrence wins */
    check_param("a/b; boundary=1; boundary=2", "boundary", "1");
    /* unterminated quotes */
    check_param("a/b; boundary=\"abc", "boundary", NULL);
    check_param("a/b; boundary=\"abc\\", "boundary", NULL);

    /* too long for the buffer; exact fit */
    char small[4];
    assert_int_equal(mp_header_param("a/b; x=abcd", "x", small, sizeof small), -1);
    assert_int_equal(mp_header_param("a/b; x=\"abcd\"", "x", small, sizeof small), -1);
    assert_int_equal(mp_header_param("a/b; x=abc", "x", small, sizeof small), 0);
    assert_string_equal(small, "abc");
    assert_int_equal(mp_header_param("a/b; x=\"a\\bc\"", "x", small, sizeof small), 0);
    assert_string_equal(small, "abc");
    assert_int_equal(mp_header_param("a/b; x=abc", "x", small, 0), -1);
    assert_int_equal(mp_header_param(NULL, "x", small, sizeof small), -1);
}

static void
test_media_type(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(mp_media_type("Multipart/Related; boundary=x", out, sizeof out), 0);
    assert_string_equal(out, "multipart/related");
    assert_int_equal(mp_media_type("  application/DICOM  ", out, sizeof out), 0);
    assert_string_equal(out, "application/dicom");
    assert_int_equal(mp_media_type("application/dicom ;transfer-syntax=*", out, sizeof out), 0);
    assert_string_equal(out, "application/dicom");
    assert_int_equal(mp_media_type("", out, sizeof out), 0);
    assert_string_equal(out, "");
    char small[11];
    assert_int_equal(mp_media_type("text/plain", small, sizeof small), 0); /* 10 chars + NUL */
    assert_int_equal(mp_media_type("text/plain", small, sizeof small - 1), -1);
    assert_int_equal(mp_media_type("multipart/related", small, sizeof small), -1);
}

TSR_TEST_MAIN(cmocka_unit_test(test_single_part), cmocka_unit_test(test_multiple_parts),
              cmocka_unit_test(test_split_every_position),
              cmocka_unit_test(test_boundary_like_data),
              cmocka_unit_test(test_first_boundary_position), cmocka_unit_test(test_empty_parts),
              cmocka_unit_test(test_bare_lf), cmocka_unit_test(test_folded_header),
              cmocka_unit_test(test_malformed_headers),
              cmocka_unit_test(test_garbage_after_boundary), cmocka_unit_test(test_truncated),
              cmocka_unit_test(test_zero_parts), cmocka_unit_test(test_preamble_limit),
              cmocka_unit_test(test_header_limit), cmocka_unit_test(test_callback_stop),
              cmocka_unit_test(test_epilogue_and_sticky),
              cmocka_unit_test(test_boundary_validation), cmocka_unit_test(test_large_part),
              cmocka_unit_test(test_fuzz_mutations), cmocka_unit_test(test_header_param),
              cmocka_unit_test(test_media_type))
