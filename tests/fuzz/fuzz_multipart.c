/* SPDX-License-Identifier: MIT */
/* fuzz_multipart.c: the streaming multipart/STOW-RS body parser (http/multipart.h) and its
 * Content-Type helpers on hostile bodies.
 *
 * Input: a first line (up to '\n') used as a Content-Type header value, from which the boundary
 * is taken as the STOW handler takes it (mp_header_param), falling back to a fixed boundary;
 * the rest is the body. The body is parsed twice: in one call, and in chunks whose sizes come
 * from the body's own bytes. multipart.h promises that the result does not depend on the split,
 * so both runs must give the same status, part count, callback sequence and data hash. */
#include "multipart.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

typedef struct rec {
    uint64_t hash; /* FNV-1a over the callback sequence and every byte handed out */
    int begins, ends;
    size_t bytes;
    int in_part;
} rec;

static void
mix(rec *r, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        r->hash ^= b[i];
        r->hash *= 0x100000001b3ull;
    }
}

static int
on_begin(void *user, const char *ct, const char *cl)
{
    rec *r = user;
    CHECK(!r->in_part);
    r->in_part = 1;
    r->begins++;
    mix(r, "B", 1);
    mix(r, ct, strlen(ct) + 1);
    mix(r, cl, strlen(cl) + 1);
    return 0;
}

static int
on_data(void *user, const uint8_t *d, size_t n)
{
    rec *r = user;
    CHECK(r->in_part && n > 0);
    r->bytes += n;
    mix(r, d, n); /* data only: how it is cut into calls may differ */
    return 0;
}

static int
on_end(void *user)
{
    rec *r = user;
    CHECK(r->in_part);
    r->in_part = 0;
    r->ends++;
    mix(r, "E", 1);
    /* Stop on the 5th part, as the STOW handler stops on a callback error. */
    return r->ends == 5;
}

static int
run(const char *boundary, const uint8_t *body, size_t len, int split, rec *r, int *part_count)
{
    memset(r, 0, sizeof *r);
    r->hash = 0xcbf29ce484222325ull;
    mp_callbacks cb = {on_begin, on_data, on_end};
    mp_parser *p = mp_new(boundary, &cb, r, 256);
    if (!p) {
        return 1000;
    }
    tsr_err err = {0};
    int rc = TSR_OK;
    size_t at = 0, k = 0;
    while (at < len && rc == TSR_OK) {
        size_t n = len - at;
        if (split) {
            n = 1 + (size_t)(body[k++ % len] % 37);
            if (n > len - at) {
                n = len - at;
            }
        }
        /* An exact-size copy, so a read past the chunk is caught. */
        uint8_t *chunk = malloc(n);
        CHECK(chunk);
        memcpy(chunk, body + at, n);
        rc = mp_feed(p, chunk, n, &err);
        free(chunk);
        at += n;
    }
    if (rc == TSR_OK) {
        rc = mp_finish(p, &err);
    }
    if (rc != TSR_OK) {
        CHECK(err.msg[0]);
    }
    *part_count = mp_part_count(p);
    mp_free(p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size < 512 ? size : 512);
    char ct[513] = "";
    size_t hl = nl ? (size_t)(nl - data) : 0;
    memcpy(ct, data, hl);
    ct[hl] = '\0';
    const uint8_t *body = nl ? nl + 1 : data;
    size_t len = size - (size_t)(body - data);

    char media[64], boundary[128], type[128];
    if (mp_media_type(ct, media, sizeof media) == 0) {
        CHECK(strlen(media) < sizeof media);
    }
    if (mp_header_param(ct, "type", type, sizeof type) == 0) {
        CHECK(strlen(type) < sizeof type);
    }
    mp_parser *probe = NULL; /* a boundary mp_new refuses falls back to a fixed one */
    if (mp_header_param(ct, "boundary", boundary, sizeof boundary) != 0 ||
        (probe = mp_new(boundary, NULL, NULL, 0)) == NULL) {
        strcpy(boundary, "b0uNd");
    }
    mp_free(probe);

    rec a, b;
    int pa = 0, pb = 0;
    int ra = run(boundary, body, len, 0, &a, &pa);
    int rb = run(boundary, body, len, 1, &b, &pb);
    CHECK(ra == rb);
    CHECK(pa == pb && a.begins == b.begins && a.ends == b.ends);
    CHECK(a.bytes == b.bytes && a.hash == b.hash);
    CHECK(pa == a.begins);
    return 0;
}
