/* SPDX-License-Identifier: MIT */
/* test_cache.c: the byte-budgeted caches (cache/cache.h): argument checks, hits and misses,
 * replacement and removal, the budget checked after every operation and under an 8-thread random
 * load, pinning (ASan catches a value freed while pinned), eviction, exactly-once destruction,
 * single-flight success and failure, values handed back uncached, S3-FIFO scan resistance
 * (across pools too), exact statistics, the JSON and Prometheus texts, and the hash.
 *
 * Values are small heap structs carrying a magic number and a tag derived from their key, with
 * a declared size that the budget is charged for; every destroy is counted per value. Code that
 * runs on other threads (computations, destroy callbacks, load workers) never calls cmocka: it
 * records failures that the test thread then asserts on. */
#define _GNU_SOURCE
#include "tsr_test.h"

#include "cache.h"

#include <jansson.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <time.h>

/* ---------------------------------------------------------------- values */

#define MAGIC_LIVE 0x4C495645u
#define MAGIC_DEAD 0xDEADDEADu
#define MAX_IDS    65536

/* cache_hash("", 0, 0) and cache_hash("frame|1.2.840.10008|1", 21, 0), pinned. */
#define HASH_EMPTY 0xf490368aba8bfeacull
#define HASH_FRAME 0x337be8266939e5a0ull

typedef struct tval {
    uint32_t magic;
    uint32_t id;
    uint64_t tag;
} tval;

static atomic_long g_created, g_destroyed;
static atomic_int g_destroys_of[MAX_IDS]; /* destroy calls per value id */
static atomic_int g_bad;                  /* failures seen off the test thread */
static char g_bad_msg[256];

static void
record_bad(const char *msg)
{
    if (atomic_fetch_add(&g_bad, 1) == 0) {
        snprintf(g_bad_msg, sizeof g_bad_msg, "%s", msg);
    }
}

static int
reset(void **state)
{
    (void)state;
    atomic_store(&g_created, 0);
    atomic_store(&g_destroyed, 0);
    atomic_store(&g_bad, 0);
    g_bad_msg[0] = '\0';
    for (int i = 0; i < MAX_IDS; i++) {
        atomic_store(&g_destroys_of[i], 0);
    }
    return 0;
}

static void
tval_destroy(void *data, void *ctx)
{
    (void)ctx;
    tval *v = data;
    if (v->magic != MAGIC_LIVE) {
        record_bad("a value was destroyed twice");
    }
    v->magic = MAGIC_DEAD;
    if (v->id < MAX_IDS) {
        atomic_fetch_add(&g_destroys_of[v->id], 1);
    }
    atomic_fetch_add(&g_destroyed, 1);
    free(v);
}

static uint64_t
key_tag(const void *key, size_t keylen)
{
    return cache_hash(key, keylen, 42);
}

static int
make_value(uint64_t tag, size_t size, cache_value *out)
{
    tval *v = malloc(sizeof *v);
    if (!v) {
        return TSR_ENOMEM;
    }
    v->magic = MAGIC_LIVE;
    v->id = (uint32_t)atomic_fetch_add(&g_created, 1);
    v->tag = tag;
    *out = (cache_value){v, size, tval_destroy, NULL};
    return TSR_OK;
}

/* The value of a handle, checked to belong to `key`. */
static const tval *
check_value(const cache_entry *h, const char *key)
{
    const tval *v = cache_entry_data(h);
    assert_non_null(v);
    assert_int_equal(v->magic, MAGIC_LIVE);
    assert_int_equal(v->tag, key_tag(key, strlen(key)));
    return v;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* ---------------------------------------------------------------- computations */

typedef struct cctx {
    atomic_int calls;
    atomic_int started;
    atomic_int go; /* with `block`: the computation waits for this */
    int block;
    int sleep_ms;
    int fail;    /* status to fail with; 0 succeeds */
    size_t size; /* declared size of the value */
} cctx;

static int
compute(const void *key, size_t keylen, void *user, cache_value *out, tsr_err *err)
{
    cctx *cx = user;
    atomic_fetch_add(&cx->calls, 1);
    atomic_store(&cx->started, 1);
    while (cx->block && !atomic_load(&cx->go)) {
        sleep_ms(1);
    }
    if (cx->sleep_ms) {
        sleep_ms(cx->sleep_ms);
    }
    if (cx->fail) {
        return tsr_err_set(err, cx->fail, "disk %d on fire", 7);
    }
    return make_value(key_tag(key, keylen), cx->size, out);
}

static int
goc(cache *c, const char *key, cctx *cx, cache_entry **out, tsr_err *err)
{
    return cache_get_or_compute(c, key, strlen(key), compute, cx, out, err);
}

/* get-or-compute and release at once; fails the test unless it succeeds. */
static void
touch(cache *c, const char *key, cctx *cx)
{
    cache_entry *h = NULL;
    tsr_err err = {0};
    int rc = goc(c, key, cx, &h, &err);
    if (rc != TSR_OK) {
        fail_msg("get_or_compute %s: %d %s", key, rc, err.msg);
    }
    check_value(h, key);
    cache_release(h);
}

static void
put_value(cache *c, const char *key, size_t size, cache_entry **out)
{
    cache_value v;
    assert_int_equal(make_value(key_tag(key, strlen(key)), size, &v), TSR_OK);
    tsr_err err = {0};
    int rc = cache_put(c, key, strlen(key), &v, out, &err);
    if (rc != TSR_OK) {
        tval_destroy(v.data, NULL);
        fail_msg("put %s: %d %s", key, rc, err.msg);
    }
}

static int
cached(cache *c, const char *key)
{
    cache_entry *h = NULL;
    int rc = cache_try_get(c, key, strlen(key), &h);
    if (rc == TSR_OK) {
        check_value(h, key);
        cache_release(h);
        return 1;
    }
    assert_int_equal(rc, TSR_ENOTFOUND);
    return 0;
}

/* The budget invariants, single-threaded: used <= limit and = the sum of the pools' bytes. */
static void
check_budget(const cache_budget *b, cache *const *pools, int n)
{
    size_t used = cache_budget_used(b);
    assert_true(used <= cache_budget_limit(b));
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
        cache_stats st;
        cache_get_stats(pools[i], &st);
        assert_true(st.pinned_bytes <= st.bytes);
        sum += st.bytes;
    }
    assert_int_equal(sum, used);
}

static cache_budget *
new_budget(size_t limit)
{
    cache_budget *b = NULL;
    tsr_err err = {0};
    assert_int_equal(cache_budget_create(limit, &b, &err), TSR_OK);
    assert_non_null(b);
    return b;
}

static cache *
new_pool(cache_budget *b, const char *name)
{
    cache *c = NULL;
    tsr_err err = {0};
    assert_int_equal(cache_create(b, name, &c, &err), TSR_OK);
    assert_string_equal(cache_name(c), name);
    return c;
}

/* ---------------------------------------------------------------- API and failure paths */

static void
test_create_failures(void **state)
{
    (void)state;
    tsr_err err = {0};
    assert_int_equal(cache_budget_create(100, NULL, &err), TSR_EINVAL);
    assert_int_equal(err.code, TSR_EINVAL);
    assert_true(err.msg[0] != '\0');
    assert_int_equal(cache_budget_create(100, NULL, NULL), TSR_EINVAL);

    cache_budget *b = new_budget(1 << 20);
    cache *const sentinel = (cache *)&err;
    char toolong[CACHE_NAME_MAX + 2];
    memset(toolong, 'a', sizeof toolong - 1);
    toolong[sizeof toolong - 1] = '\0';
    const char *bad[] = {"", "has space", "quo\"te", "slash/", "\xc3\xa9", toolong};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cache *c = sentinel;
        memset(&err, 0, sizeof err);
        assert_int_equal(cache_create(b, bad[i], &c, &err), TSR_EINVAL);
        assert_int_equal(err.code, TSR_EINVAL);
        assert_non_null(strstr(err.msg, "cache name"));
        assert_ptr_equal(c, sentinel);
        assert_int_equal(cache_create(b, bad[i], &c, NULL), TSR_EINVAL);
        assert_ptr_equal(c, sentinel);
    }
    cache *frames = new_pool(b, "frames");
    cache *c = sentinel;
    assert_int_equal(cache_create(b, "frames", &c, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "already exists"));
    assert_ptr_equal(c, sentinel);
    assert_int_equal(cache_create(NULL, "x", &c, NULL), TSR_EINVAL);
    assert_int_equal(cache_create(b, NULL, &c, NULL), TSR_EINVAL);
    assert_int_equal(cache_create(b, "x", NULL, NULL), TSR_EINVAL);
    cache *ok = new_pool(b, "A-z_0.9");

    /* Lookups with bad arguments. */
    cctx cx = {.size = 10};
    cache_entry *h = (cache_entry *)sentinel;
    char longkey[CACHE_KEY_MAX + 1];
    memset(longkey, 'k', sizeof longkey);
    assert_int_equal(cache_get_or_compute(frames, longkey, sizeof longkey, compute, &cx, &h, &err),
                     TSR_EINVAL);
    assert_int_equal(cache_get_or_compute(frames, NULL, 3, compute, &cx, &h, NULL), TSR_EINVAL);
    assert_int_equal(cache_get_or_compute(frames, "k", 1, NULL, &cx, &h, &err), TSR_EINVAL);
    assert_int_equal(cache_get_or_compute(frames, "k", 1, compute, &cx, NULL, &err), TSR_EINVAL);
    assert_int_equal(cache_get(frames, "k", 1, NULL, &err), TSR_EINVAL);
    assert_int_equal(cache_try_get(NULL, "k", 1, &h), TSR_EINVAL);
    assert_int_equal(cache_put(frames, "k", 1, NULL, &h, &err), TSR_EINVAL);
    assert_int_equal(cache_remove(frames, NULL, 1), TSR_EINVAL);
    assert_ptr_equal(h, sentinel);
    assert_int_equal(atomic_load(&cx.calls), 0);

    /* Destroying NULL does nothing; an empty key is a key. */
    cache_destroy(NULL);
    cache_budget_destroy(NULL);
    cache_release(NULL);
    cache_text_free(NULL);
    assert_int_equal(cache_get_or_compute(frames, "", 0, compute, &cx, &h, &err), TSR_OK);
    assert_int_equal(cache_entry_size(h), 10);
    cache_release(h);
    assert_int_equal(cache_try_get(frames, NULL, 0, &h), TSR_OK);
    cache_release(h);

    cache_destroy(ok);
    cache_destroy(frames);
    cache_budget_destroy(b);
    assert_int_equal(atomic_load(&g_created), atomic_load(&g_destroyed));
}

static void
test_hit_miss(void **state)
{
    (void)state;
    cache_budget *b = new_budget(1 << 20);
    cache *c = new_pool(b, "frames");
    cctx cx = {.size = 100};
    tsr_err err = {0};
    cache_entry *h1 = NULL, *h2 = NULL, *h3 = NULL;

    assert_int_equal(cache_get(c, "frame|1.2.3|1", 13, &h1, &err), TSR_ENOTFOUND);
    assert_int_equal(err.code, TSR_ENOTFOUND);
    assert_null(h1);
    assert_int_equal(goc(c, "frame|1.2.3|1", &cx, &h1, &err), TSR_OK);
    assert_int_equal(atomic_load(&cx.calls), 1);
    assert_int_equal(cache_entry_cached(h1), 1);
    assert_int_equal(cache_entry_size(h1), 100);
    check_value(h1, "frame|1.2.3|1");
    assert_int_equal(goc(c, "frame|1.2.3|1", &cx, &h2, &err), TSR_OK);
    assert_int_equal(atomic_load(&cx.calls), 1);
    assert_ptr_equal(h1, h2);
    assert_ptr_equal(cache_entry_data(h1), cache_entry_data(h2));
    assert_int_equal(cache_get(c, "frame|1.2.3|1", 13, &h3, &err), TSR_OK);
    assert_ptr_equal(h3, h1);

    /* Keys are compared in full: a prefix or an extension is another key. */
    assert_int_equal(cache_get(c, "frame|1.2.3|", 12, &h3, &err), TSR_ENOTFOUND);
    assert_int_equal(cache_get(c, "frame|1.2.3|10", 14, &h3, &err), TSR_ENOTFOUND);
    touch(c, "frame|1.2.3|10", &cx);
    assert_int_equal(atomic_load(&cx.calls), 2);
    assert_int_equal(cached(c, "frame|1.2.3|1"), 1);
    assert_int_equal(cached(c, "frame|1.2.3|10"), 1);
    assert_int_equal(cached(c, "frame|1.2.3|2"), 0);

    cache_stats st;
    cache_get_stats(c, &st);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.misses, 5);
    assert_int_equal(st.inserts, 2);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.bytes, cache_charge(100, 13) + cache_charge(100, 14));
    assert_int_equal(st.pinned_bytes, cache_charge(100, 13));
    cache_release(h1);
    cache_release(h2);
    cache_release(h3);
    cache_get_stats(c, &st);
    assert_int_equal(st.pinned_bytes, 0);
    assert_int_equal(atomic_load(&g_destroyed), 0);
    cache_destroy(c);
    assert_int_equal(atomic_load(&g_destroyed), 2);
    cache_budget_destroy(b);
}

static void
test_put_replace_remove(void **state)
{
    (void)state;
    cache_budget *b = new_budget(1 << 20);
    cache *c = new_pool(b, "tiles");
    cache_entry *ha = NULL, *hb = NULL;
    put_value(c, "k", 10, &ha);
    const tval *a = cache_entry_data(ha);
    uint32_t a_id = a->id;
    put_value(c, "k", 20, NULL); /* replaces a, which stays valid while pinned */
    assert_int_equal(cache_entry_cached(ha), 0);
    assert_int_equal(a->magic, MAGIC_LIVE);
    assert_int_equal(atomic_load(&g_destroys_of[a_id]), 0);
    assert_int_equal(cache_get(c, "k", 1, &hb, NULL), TSR_OK);
    assert_ptr_not_equal(hb, ha);
    assert_int_equal(cache_entry_size(hb), 20);
    cache_release(ha);
    assert_int_equal(atomic_load(&g_destroys_of[a_id]), 1);

    uint32_t b_id = ((const tval *)cache_entry_data(hb))->id;
    assert_int_equal(cache_remove(c, "k", 1), TSR_OK);
    assert_int_equal(cache_entry_cached(hb), 0);
    assert_int_equal(atomic_load(&g_destroys_of[b_id]), 0);
    assert_int_equal(cache_remove(c, "k", 1), TSR_ENOTFOUND);
    cache_release(hb);
    assert_int_equal(atomic_load(&g_destroys_of[b_id]), 1);

    cache_stats st;
    cache_get_stats(c, &st);
    assert_int_equal(st.inserts, 2);
    assert_int_equal(st.removals, 2);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(cache_budget_used(b), 0);
    cache_destroy(c);
    cache_budget_destroy(b);
    assert_int_equal(atomic_load(&g_created), atomic_load(&g_destroyed));
}

/* ---------------------------------------------------------------- budget and pinning */

static uint32_t
lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void
test_budget_never_exceeded(void **state)
{
    (void)state;
    const size_t limit = 64 * 1024;
    cache_budget *b = new_budget(limit);
    cache *pools[2] = {new_pool(b, "frames"), new_pool(b, "tiles")};
    cache_entry *held[4] = {0};
    uint32_t seed = 12345;
    char key[32];
    int elimit = 0, uncached = 0;
    for (int op = 0; op < 20000; op++) {
        uint32_t r = lcg(&seed);
        cache *c = pools[r & 1];
        snprintf(key, sizeof key, "k%u", (unsigned)(lcg(&seed) % 300));
        size_t size = lcg(&seed) % 4000;
        if (lcg(&seed) % 500 == 0) {
            size = limit; /* larger than the budget once charged */
        }
        cache_entry *h = NULL;
        switch (r % 10) {
        case 0:
        case 1:
        case 2:
        case 3: {
            cctx cx = {.size = size, .fail = (lcg(&seed) % 20 == 0) ? TSR_EIO : 0};
            int rc = goc(c, key, &cx, &h, NULL);
            if (cx.fail && atomic_load(&cx.calls) == 1) {
                assert_int_equal(rc, TSR_EIO);
                assert_null(h);
                break;
            }
            assert_int_equal(rc, TSR_OK); /* computed, or a hit that needed no computation */
            check_value(h, key);
            uncached += !cache_entry_cached(h);
            break;
        }
        case 4:
        case 5: {
            cache_value v;
            assert_int_equal(make_value(key_tag(key, strlen(key)), size, &v), TSR_OK);
            int rc = cache_put(c, key, strlen(key), &v, (r & 2) ? &h : NULL, NULL);
            if (rc != TSR_OK) {
                assert_int_equal(rc, TSR_ELIMIT);
                assert_null(h);
                tval_destroy(v.data, NULL);
                elimit++;
            }
            break;
        }
        case 6:
            if (cache_try_get(c, key, strlen(key), &h) == TSR_OK) {
                check_value(h, key);
            }
            break;
        case 7:
            if (cache_get(c, key, strlen(key), &h, NULL) == TSR_OK) {
                check_value(h, key);
            }
            break;
        case 8:
            cache_remove(c, key, strlen(key));
            break;
        default:
            break;
        }
        if (h) {
            size_t slot = lcg(&seed) % 4;
            cache_release(held[slot]);
            held[slot] = h;
        }
        check_budget(b, pools, 2);
    }
    assert_true(elimit > 0);
    assert_true(uncached > 0);
    for (int i = 0; i < 4; i++) {
        cache_release(held[i]);
    }
    cache_stats st;
    cache_get_stats(pools[0], &st);
    assert_true(st.evictions > 100);
    cache_destroy(pools[0]);
    cache_destroy(pools[1]);
    assert_int_equal(cache_budget_used(b), 0);
    cache_budget_destroy(b);
    assert_int_equal(atomic_load(&g_created), atomic_load(&g_destroyed));
}

/* A budget holding exactly `n` values of 1000 bytes under 4-byte keys. */
static cache_budget *
budget_for(int n)
{
    return new_budget((size_t)n * cache_charge(1000, 4));
}

static void
test_eviction_of_unpinned(void **state)
{
    (void)state;
    cache_budget *b = budget_for(4);
    cache *c = new_pool(b, "frames");
    cctx cx = {.size = 1000};
    char key[8];
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "k%03d", i);
        touch(c, key, &cx);
    }
    cache_stats st;
    cache_get_stats(c, &st);
    assert_int_equal(st.entries, 4);
    assert_int_equal(st.evictions, 0);
    assert_int_equal(cache_budget_used(b), cache_budget_limit(b));
    assert_int_equal(atomic_load(&g_destroyed), 0);
    touch(c, "k004", &cx);
    cache_get_stats(c, &st);
    assert_int_equal(st.entries, 4);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(atomic_load(&g_destroyed), 1);
    /* FIFO order among values never read: the oldest went. */
    assert_int_equal(atomic_load(&g_destroys_of[0]), 1);
    assert_int_equal(cached(c, "k000"), 0);
    assert_int_equal(cached(c, "k004"), 1);
    for (int i = 5; i < 40; i++) {
        snprintf(key, sizeof key, "k%03d", i);
        touch(c, key, &cx);
        check_budget(b, &c, 1);
    }
    cache_get_stats(c, &st);
    assert_int_equal(st.evictions, 36);
    assert_int_equal(atomic_load(&g_destroyed), 36);
    cache_destroy(c);
    cache_budget_destroy(b);
    assert_int_equal(atomic_load(&g_destroyed), 40);
}

static void
test_pinned_not_freed(void **state)
{
    (void)state;
    cache_budget *b = budget_for(4);
    cache *c = new_pool(b, "frames");
    cctx cx = {.size = 1000};
    cache_entry *pa = NULL, *pb = NULL;
    assert_int_equal(goc(c, "pinA", &cx, &pa, NULL), TSR_OK);
    assert_int_equal(goc(c, "pinB", &cx, &pb, NULL), TSR_OK);
    const tval *a = cache_entry_data(pa), *bv = cache_entry_data(pb);
    uint32_t a_id = a->id, b_id = bv->id;

    /* Far more than the budget passes through: the pinned values stay cached and alive. */
    char key[8];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "k%03d", i);
        touch(c, key, &cx);
        check_budget(b, &c, 1);
    }
    assert_int_equal(a->magic, MAGIC_LIVE); /* a use-after-free here is ASan's to report */
    check_value(pa, "pinA");
    assert_int_equal(atomic_load(&g_destroys_of[a_id]), 0);
    assert_int_equal(cache_entry_cached(pa), 1);
    assert_int_equal(cached(c, "pinA"), 1);
    cache_stats st;
    cache_get_stats(c, &st);
    assert_int_equal(st.pinned_bytes, 2 * cache_charge(1000, 4));

    /* Removed while pinned: alive until the last release, then destroyed once. */
    assert_int_equal(cache_remove(c, "pinB", 4), TSR_OK);
    assert_int_equal(atomic_load(&g_destroys_of[b_id]), 0);
    check_value(pb, "pinB");
    cache_get_stats(c, &st);
    assert_int_equal(st.pinned_bytes, cache_charge(1000, 4));
    cache_release(pb);
    assert_int_equal(atomic_load(&g_destroys_of[b_id]), 1);

    /* Released: evictable again. pinA went round to the main FIFO when it could not be
     * evicted; values read three times follow it there and push it out. */
    cache_release(pa);
    for (int i = 40; i < 60; i++) {
        snprintf(key, sizeof key, "k%03d", i);
        for (int j = 0; j < 3; j++) {
            touch(c, key, &cx);
        }
    }
    assert_int_equal(atomic_load(&g_destroys_of[a_id]), 1);
    assert_int_equal(cached(c, "pinA"), 0);
    cache_destroy(c);
    cache_budget_destroy(b);
    assert_int_equal(atomic_load(&g_created), atomic_load(&g_destroyed));
}

static void
test_all_pinned_returns_uncached(void **state)
{
    (void)state;
    cache_budget *b = budget_for(4);
    cache *c = new_pool(b, "frames");
    cctx cx = {.size = 1000};
    cache_entry *pins[4];
    char key[8];
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "k%03d", i);
        assert_int_equal(goc(c, key, &cx, &pins[i], NULL), TSR_OK);
    }
    /* No unpinned room: the new value comes back uncached, the budget holds. */
    cache_entry *h = NULL;
    assert_int_equal(goc(c, "k100", &cx, &h, NULL), TSR_OK);
    check_value(h, "k100");
    assert_int_equal(cache_entry_cached(h), 0);
    assert_true(cache_budget_used(b) <= cache_budget_limit(b));
    cache_stats st;
    cache_get_stats(c, &st);
    assert_int_equal(st.uncached, 1);
    assert_int_equal(st.entries, 4);
    assert_int_equal(st.pinned_bytes, cache_budget_limit(b));
    uint32_t id = ((const tval *)cache_entry_data(h))->id;
    cache_release(h);
    assert_int_equal(atomic_load(&g_destroys_of[id]), 1);

    /* cache_put refuses, and the value stays the caller's. */
    cache_value v;
    assert_int_equal(make_value(1, 1000, &v), TSR_OK);
    tsr_err err = {0};
    assert_int_equal(cache_put(c, "k101", 4, &v, NULL, &err), TSR_ELIMIT);
    assert_non_null(strstr(err.msg, "pinned"));
    assert_int_equal(atomic_load(&g_destroyed), 1);
    tval_destroy(v.data, NULL);

    for (int i = 0; i < 4; i++) {
        cache_release(pins[i]);
    }
    touch(c, "k102", &cx);
    cache_get_stats(c, &st);
    assert_int_equal(st.evictions, 1);
    cache_destroy(c);
    cache_budget_destroy(b);
    assert_int_equal(atomic_load(&g_created), atomic_load(&g_destroyed));
}

static void
test_destroy_callback_once(void **state)
{
    (void)state;
    cache_budget *b = budget_for(16);
    cache *c = new_pool(b, "frames");
    cctx cx = {.size = 1000};
    cache_entry *held[8] = {0};
    uint32_t seed = 7;
    char key[8];
    for (int op = 0; op < 3000; op++) {
        snprintf(key, sizeof key, "k%03u", (unsigned)(lcg(&seed) % 64));
        uint32_t r = lcg(&seed) % 8;
        cache_entry *h = NULL;
        if (r < 4) {
            assert_int_equal(goc(c, key, &cx, &h, NULL), TSR_OK);
        } else if (r < 6) {
            put_value(c, key, 1000, (r & 1) ? &h : NULL);
        } else if (r == 6) {
            cache_remove(c, key, strlen(key));
        } else {
            cache_try_get(c, key, strlen(key), &h);
        }
        if (h) {
            cache_release(held[op % 8]);
            held[op % 8] = h;
        }
    }
    long created = atomic_load(&g_created);
    assert_true(created > 500 && created < MAX_IDS);
    /* The pool goes with handles still out; they stay valid and are released afterwards. */
    cache_destroy(c);
    for (int i = 0; i < 8; i++) {
        if (held[i]) {
            assert_int_equal(((const tval *)cache_entry_data(held[i]))->magic, MAGIC_LIVE);
            assert_int_equal(cache_entry_cached(held[i]), 0);
        }
        cache_release(held[i]);
    }
    assert_int_equal(cache_budget_used(b), 0);
    cache_budget_destroy(b);
    for (long i = 0; i < created; i++) {
        if (atomic_load(&g_destroys_of[i]) != 1) {
            fail_msg("value %ld destroyed %d times", i, atomic_load(&g_destroys_of[i]));
        }
    }
    assert_int_equal(atomic_load(&g_bad), 0);
}

/* ---------------------------------------------------------------- single-flight */

#define FLIGHT_THREADS 16

typedef struct flight {
    cache *c;
    cctx *cx;
    pthread_barrier_t *bar;
    const char *key;
    cache_entry *h;
    int rc;
    tsr_err err;
} flight;

static void *
flight_main(void *arg)
{
    flight *f = arg;
    pthread_barrier_wait(f->bar);
    f->rc = goc(f->c, f->key, f->cx, &f->h, &f->err);
    return NULL;
}

/* Runs n threads asking for one key at once. */
static void
run_flight(cache *c, cctx *cx, const char *key, flight *fl, int n)
{
    pthread_t th[FLIGHT_THREADS];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        fl[i] = (flight){.c = c, .cx = cx, .bar = &bar, .key = key};
        assert_int_equal(pthread_create(&th[i], NULL, flight_main, &fl[i]), 0);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
    }
    pthread_barrier_destroy(&bar);
}

static void
test_single_flight(void **state)
{
    (void)state;
    cache_budget *b = new_budget(1 << 20);
    cache *c = new_pool(b, "frames");
    cctx cx = {.size = 1000, .sleep_ms = 50};
    flight fl[FLIGHT_THREADS];
    uint64_t t0 = tsr_now_ns();
    run_flight(c, &cx, "frame|1.2.3|7", fl, FLIGHT_THREADS);
    uint64_t ms = (tsr_now_ns() - t0) / 1000000;
    assert_int_equal(atomic_load(&cx.calls), 1);
    assert_true(ms < 8 * 50); /* nobody computed again after the first */
    for (int i = 0; i < FLIGHT_THREADS; i++) {
        assert_int_equal(fl[i].rc, TSR_OK);
        assert_ptr_equal(fl[i].h, fl[0].h);
        assert_ptr_equal(cache_entry_data(fl[i].h), cache_entry_data(fl[0].h));
    }
    check_value(fl[0].h, "frame|1.2.3|7");
    cache_stats st;
    cache_get_stats(c, &st);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.hits + st.coalesced, FLIGHT_THREADS - 1);
    assert_true(st.coalesced > 0);
    assert_int_equal(st.inserts, 1);
    assert_int_equal(st.pinned_bytes, cache_charge(1000, 13));
    for (int i = 0; i < FLIGHT_THREADS; i++) {
        cache_release(fl[i].h);
    }
    cache_get_stats(c, &st);
    assert_int_equal(st.pinned_bytes, 0);
    assert_int_equal(atomic_load(&g_destroyed), 0);
    cache_destroy(c);
    cache_budget_destroy(b);
    assert_int_equal(atomic_load(&g_destroyed), 1);
}

static void
test_single_flight_failure(void **state)
{
    (void)state;
    cache_budget *b = new_budget(1 << 20);
    cache *c = new_pool(b, "frames");
    cctx cx = {.size = 1000, .sleep_ms = 50, .fail = TSR_EIO};
    flight fl[8];
    run_flight(c, &cx, "frame|bad|1", fl, 8);
    assert_int_equal(atomic_load(&cx.calls), 1);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(fl[i].rc, TSR_EIO);
        assert_int_equal(fl[i].err.code, TSR_EIO);
        assert_string_equal(fl[i].err.msg, "disk 7 on fire");
        assert_null(fl[i].h);
    }
    cache_stats st;
    cache_get_stats(c, &st);
    assert_int_equal(st.compute_failures, 1);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.coalesced, 7);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.inserts, 0);
    assert_int_equal(cache_budget_used(b), 0);

    /* Nothing was cached: the next call computes again, and now succeeds. */
    cache_entry *h = NULL;
    assert_int_equal(cache_get(c, "frame|bad|1", 11, &h, NULL), TSR_ENOTFOUND);
    cx.fail = 0;
    cx.sleep_ms = 0;
    assert_int_equal(goc(c, "frame|bad|1", &cx, &h, NULL), TSR_OK);
    assert_int_equal(atomic_load(&cx.calls), 2);
    assert_int_equal(cache_entry_cached(h), 1);
    cache_release(h);

    /* A computation that fails without a message gets the status's message. */
    cx.fail = TSR_ECORRUPT;
    tsr_err err = {0};
    assert_int_equal(cache_get_or_compute(c, "x", 1, compute, &cx, &h, &err), TSR_ECORRUPT);
    assert_int_equal(err.code, TSR_ECORRUPT);
    cache_destroy(c);
    cache_budget_destroy(b);
    assert_int_equal(atomic_load(&g_created), atomic_load(&g_destroyed));
}

typedef struct waiter {
    cache *c;
    cctx *cx;
    const char *key;
    int use_get; /* cache_get instead of get-or-compute */
    cache_entry *h;
    int rc;
} waiter;

static void *
waiter_main(void *arg)
{
    waiter *w = arg;
    w->rc = w->use_get ? cache_get(w->c, w->key, strlen(w->key), &w->h, NULL)
                       : goc(w->c, w->key, w->cx, &w->h, NULL);
    return NULL;
}

static void
wait_started(cctx *cx)
{
    for (int i = 0; i < 5000 && !atomic_load(&cx->started); i++) {
        sleep_ms(1);
    }
    assert_int_equal(atomic_load(&cx->started), 1);
}

static void
test_remove_while_computing(void **state)
{
    (void)state;
    cache_budget *b = new_budget(1 << 20);
    cache *c = new_pool(b, "frames");
    cctx cx = {.size = 1000, .block = 1};
    waiter owner = {c, &cx, "k", 0, NULL, -100}, other = {c, &cx, "k", 1, NULL, -100};
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, waiter_main, &owner), 0);
    wait_started(&cx);
    /* cache_get waits for the computation in progress. */
    assert_int_equal(pthread_create(&t2, NULL, waiter_main, &other), 0);
    cache_stats st;
    for (int i = 0; i < 5000; i++) {
        cache_get_stats(c, &st);
        if (st.coalesced == 1) {
            break;
        }
        sleep_ms(1);
    }
    assert_int_equal(st.coalesced, 1);
    /* Removing the key while it is computed: the result must not be cached. */
    assert_int_equal(cache_remove(c, "k", 1), TSR_OK);
    atomic_store(&cx.go, 1);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(owner.rc, TSR_OK);
    assert_int_equal(other.rc, TSR_OK);
    assert_ptr_equal(owner.h, other.h);
    assert_int_equal(cache_entry_cached(owner.h), 0);
    check_value(owner.h, "k");
    assert_int_equal(cached(c, "k"), 0);
    cache_get_stats(c, &st);
    assert_int_equal(st.uncached, 1);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.removals, 0);
    cache_release(owner.h);
    assert_int_equal(atomic_load(&g_destroyed), 0);
    cache_release(other.h);
    assert_int_equal(atomic_load(&g_destroyed), 1);
    assert_int_equal(atomic_load(&cx.calls), 1);
    cache_destroy(c);
    cache_budget_destroy(b);
}

static void
test_try_get_never_blocks(void **state)
{
    (void)state;
    cache_budget *b = new_budget(1 << 20);
    cache *c = new_pool(b, "frames");
    cctx cx = {.size = 1000, .block = 1};
    waiter owner = {c, &cx, "k", 0, NULL, -100};
    pthread_t t1;
    assert_int_equal(pthread_create(&t1, NULL, waiter_main, &owner), 0);
    wait_started(&cx);
    cache_entry *h = NULL;
    uint64_t t0 = tsr_now_ns();
    assert_int_equal(cache_try_get(c, "k", 1, &h), TSR_ENOTFOUND);
    assert_true(tsr_now_ns() - t0 < 500000000ull);
    assert_null(h);
    atomic_store(&cx.go, 1);
    pthread_join(t1, NULL);
    assert_int_equal(owner.rc, TSR_OK);
    assert_int_equal(cache_try_get(c, "k", 1, &h), TSR_OK);
    assert_ptr_equal(h, owner.h);
    cache_release(h);
    cache_release(owner.h);
    /* A peek is neither a hit nor a miss. */
    cache_stats st;
    cache_get_stats(c, &st);
    assert_int_equal(st.hits, 0);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.coalesced, 0);
    cache_destroy(c);
    cache_budget_destroy(b);
}

/* A computation that uses other caches (a tile from a frame), and a value whose destroy callback
 * releases a handle it holds: neither may deadlock. */
typedef struct tile_ctx {
    cache *frames;
    cctx *fx;
} tile_ctx;

typedef struct tile_val {
    tval base; /* first, so check_value works */
    cache_entry *frame;
} tile_val;

static void
tile_destroy(void *data, void *ctx)
{
    tile_val *t = data;
    cache_release(t->frame);
    t->frame = NULL;
    tval_destroy(data, ctx); /* frees t */
}

static int
tile_compute(const void *key, size_t keylen, void *user, cache_value *out, tsr_err *err)
{
    tile_ctx *tc = user;
    char fkey[16] = "frame|";
    memcpy(fkey + 6, key, keylen > 6 ? 6 : keylen); /* the tile's first 6 bytes */
    cache_entry *frame = NULL;
    int rc = goc(tc->frames, fkey, tc->fx, &frame, err);
    if (rc != TSR_OK) {
        return rc;
    }
    /* Another key of the same pool, from inside a computation. */
    char other[CACHE_KEY_MAX + 8];
    memcpy(other, key, keylen);
    memcpy(other + keylen, "|aux", 5);
    cache_entry *aux = NULL;
    if (cache_get(tc->frames, other, strlen(other), &aux, NULL) == TSR_OK) {
        cache_release(aux);
    }
    tile_val *t = malloc(sizeof *t);
    if (!t) {
        cache_release(frame);
        return TSR_ENOMEM;
    }
    t->base.magic = MAGIC_LIVE;
    t->base.id = (uint32_t)atomic_fetch_add(&g_created, 1);
    t->base.tag = key_tag(key, keylen);
    t->frame = frame;
    *out = (cache_value){t, 1000, tile_destroy, NULL};
    return TSR_OK;
}

static void
test_nested_compute_and_destroy(void **state)
{
    (void)state;
    cache_budget *b = budget_for(8);
    cache *frames = new_pool(b, "frames"), *tiles = new_pool(b, "tiles");
    cctx fx = {.size = 1000};
    tile_ctx tc = {frames, &fx};
    char key[16];
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "t%05d", i % 20);
        cache_entry *h = NULL;
        assert_int_equal(cache_get_or_compute(tiles, key, strlen(key), tile_compute, &tc, &h, NULL),
                         TSR_OK);
        check_value(h, key);
        const tile_val *t = cache_entry_data(h);
        assert_int_equal(((const tval *)cache_entry_data(t->frame))->magic, MAGIC_LIVE);
        cache_release(h);
        cache *both[2] = {frames, tiles};
        check_budget(b, both, 2);
    }
    /* Frames pinned by tiles are freed when the tiles go. */
    cache_destroy(tiles);
    cache_destroy(frames);
    cache_budget_destroy(b);
    assert_int_equal(atomic_load(&g_created), atomic_load(&g_destroyed));
    assert_int_equal(atomic_load(&g_bad), 0);
}

/* ---------------------------------------------------------------- uncached values */

static void
test_oversize_returned_uncached(void **state)
{
    (void)state;
    cache_budget *b = new_budget(10000);
    cache *c = new_pool(b, "volumes");
    cctx cx = {.size = 20000};
    cache_entry *h = NULL;
    tsr_err err = {0};
    assert_int_equal(goc(c, "vol|1", &cx, &h, &err), TSR_OK);
    check_value(h, "vol|1");
    assert_int_equal(cache_entry_size(h), 20000);
    assert_int_equal(cache_entry_cached(h), 0);
    assert_int_equal(cache_budget_used(b), 0);
    cache_stats st;
    cache_get_stats(c, &st);
    assert_int_equal(st.uncached, 1);
    assert_int_equal(st.inserts, 0);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.pinned_bytes, 0);
    cache_release(h);
    assert_int_equal(atomic_load(&g_destroyed), 1);
    /* Not cached, so computed again. */
    assert_int_equal(goc(c, "vol|1", &cx, &h, &err), TSR_OK);
    assert_int_equal(atomic_load(&cx.calls), 2);
    cache_release(h);

    /* Concurrent callers share the one uncached value. */
    cx.sleep_ms = 50;
    flight fl[4];
    run_flight(c, &cx, "vol|2", fl, 4);
    assert_int_equal(atomic_load(&cx.calls), 3);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(fl[i].rc, TSR_OK);
        assert_ptr_equal(fl[i].h, fl[0].h);
    }
    for (int i = 0; i < 4; i++) {
        cache_release(fl[i].h);
    }
    assert_int_equal(atomic_load(&g_destroyed), 3);

    /* cache_put refuses with TSR_ELIMIT (err NULL or not) and leaves the value to the caller. */
    cache_value v;
    assert_int_equal(make_value(5, 20000, &v), TSR_OK);
    assert_int_equal(cache_put(c, "vol|3", 5, &v, &h, &err), TSR_ELIMIT);
    assert_int_equal(err.code, TSR_ELIMIT);
    assert_non_null(strstr(err.msg, "does not fit"));
    assert_int_equal(cache_put(c, "vol|3", 5, &v, NULL, NULL), TSR_ELIMIT);
    assert_int_equal(atomic_load(&g_destroyed), 3);
    tval_destroy(v.data, NULL);

    /* A value that fits only without its bookkeeping is oversize too. */
    cx.sleep_ms = 0;
    cx.size = 10000;
    assert_int_equal(goc(c, "vol|4", &cx, &h, &err), TSR_OK);
    assert_int_equal(cache_entry_cached(h), 0);
    cache_release(h);
    cache_destroy(c);
    cache_budget_destroy(b);
    assert_int_equal(atomic_load(&g_created), atomic_load(&g_destroyed));
}

static void
test_zero_budget(void **state)
{
    (void)state;
    cache_budget *b = new_budget(0);
    cache *c = new_pool(b, "frames");
    cctx cx = {.size = 0, .sleep_ms = 30};
    flight fl[4];
    run_flight(c, &cx, "k", fl, 4);
    assert_int_equal(atomic_load(&cx.calls), 1); /* still single-flight */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(fl[i].rc, TSR_OK);
        assert_int_equal(cache_entry_cached(fl[i].h), 0);
        cache_release(fl[i].h);
    }
    assert_int_equal(cache_budget_used(b), 0);
    cache_value v;
    assert_int_equal(make_value(1, 0, &v), TSR_OK);
    assert_int_equal(cache_put(c, "k", 1, &v, NULL, NULL), TSR_ELIMIT);
    tval_destroy(v.data, NULL);
    cache_destroy(c);
    cache_budget_destroy(b);
    assert_int_equal(atomic_load(&g_created), atomic_load(&g_destroyed));
}

/* ---------------------------------------------------------------- scan resistance */

/* Hot values (read 3 times), cold ones (read once) and peeked ones (read once, then only
 * cache_try_get) are followed by a one-pass scan of ten times the budget. A FIFO or an LRU
 * cache ends the scan holding nothing but its tail; S3-FIFO keeps every hot value. */
static void
test_scan_resistance(void **state)
{
    (void)state;
    const int cap = 200;
    size_t charge = cache_charge(1000, 10);
    cache_budget *b = new_budget((size_t)cap * charge);
    cache *c = new_pool(b, "frames");
    cctx cx = {.size = 1000};
    char key[16];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 20; i++) {
            snprintf(key, sizeof key, "hot|%06d", i);
            touch(c, key, &cx);
        }
    }
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "cld|%06d", i);
        touch(c, key, &cx);
        snprintf(key, sizeof key, "pek|%06d", i);
        touch(c, key, &cx);
        for (int j = 0; j < 5; j++) {
            assert_int_equal(cached(c, key), 1);
        }
    }
    int calls_before = atomic_load(&cx.calls);
    for (int i = 0; i < 10 * cap; i++) {
        snprintf(key, sizeof key, "scn|%06d", i);
        touch(c, key, &cx);
        check_budget(b, &c, 1);
    }
    assert_int_equal(atomic_load(&cx.calls), calls_before + 10 * cap);
    int hot = 0, cold = 0, peeked = 0;
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "hot|%06d", i);
        hot += cached(c, key);
        snprintf(key, sizeof key, "cld|%06d", i);
        cold += cached(c, key);
        snprintf(key, sizeof key, "pek|%06d", i);
        peeked += cached(c, key);
    }
    assert_int_equal(hot, 20);
    assert_int_equal(cold, 0);
    assert_int_equal(peeked, 0); /* peeks do not make a value popular */
    snprintf(key, sizeof key, "scn|%06d", 10 * cap - 1);
    assert_int_equal(cached(c, key), 1); /* the scan's newest are cached too */
    cache_stats st;
    cache_get_stats(c, &st);
    assert_true(st.evictions >= (uint64_t)(10 * cap - cap + 40));
    cache_destroy(c);
    cache_budget_destroy(b);
}

/* What is on screen is read again now and then during a scroll through a long series: here half
 * the budget, re-read once every 150 new frames. Under LRU each pass of 150 new frames plus the
 * 100 hot ones overflows the 200-value budget, evicting hot values before their next read. */
static void
test_scan_resistance_interleaved(void **state)
{
    (void)state;
    const int cap = 200, nhot = 100;
    cache_budget *b = new_budget((size_t)cap * cache_charge(1000, 10));
    cache *c = new_pool(b, "frames");
    cctx cx = {.size = 1000};
    char key[16];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < nhot; i++) {
            snprintf(key, sizeof key, "hot|%06d", i);
            touch(c, key, &cx);
        }
    }
    int hot_calls = atomic_load(&cx.calls);
    assert_int_equal(hot_calls, nhot);
    for (int i = 0; i < 10 * cap; i++) {
        snprintf(key, sizeof key, "scn|%06d", i);
        touch(c, key, &cx);
        if (i % 150 == 149) {
            for (int j = 0; j < nhot; j++) {
                snprintf(key, sizeof key, "hot|%06d", j);
                touch(c, key, &cx);
            }
        }
    }
    /* Every hot read was a hit: only the scan computed. */
    assert_int_equal(atomic_load(&cx.calls), hot_calls + 10 * cap);
    cache_destroy(c);
    cache_budget_destroy(b);
}

/* A value evicted from the small FIFO after one read, and asked for again soon after, was
 * evicted too early: its key is in the ghost table, so it comes back straight into the main
 * FIFO and then survives a scan. Without the ghost it would re-enter the small FIFO and go. */
static void
test_ghost_readmits(void **state)
{
    (void)state;
    const int cap = 100;
    cache_budget *b = new_budget((size_t)cap * cache_charge(1000, 10));
    cache *c = new_pool(b, "frames");
    cctx cx = {.size = 1000};
    char key[16];
    touch(c, "reu|000000", &cx);
    for (int i = 0; i < cap + 10; i++) {
        snprintf(key, sizeof key, "sc1|%06d", i);
        touch(c, key, &cx);
    }
    assert_int_equal(cached(c, "reu|000000"), 0);
    int calls = atomic_load(&cx.calls);
    touch(c, "reu|000000", &cx); /* a miss: computed again, readmitted by the ghost */
    assert_int_equal(atomic_load(&cx.calls), calls + 1);
    for (int i = 0; i < 10 * cap; i++) {
        snprintf(key, sizeof key, "sc2|%06d", i);
        touch(c, key, &cx);
    }
    assert_int_equal(cached(c, "reu|000000"), 1);
    /* A key evicted long ago (beyond the ghost's memory) is just a new key. */
    assert_int_equal(cached(c, "sc1|000000"), 0);
    touch(c, "sc1|000000", &cx);
    for (int i = 0; i < 2 * cap; i++) {
        snprintf(key, sizeof key, "sc3|%06d", i);
        touch(c, key, &cx);
    }
    assert_int_equal(cached(c, "sc1|000000"), 0);
    cache_destroy(c);
    cache_budget_destroy(b);
}

/* ---------------------------------------------------------------- pools */

static void
test_pools_share_budget(void **state)
{
    (void)state;
    const int cap = 100;
    size_t charge = cache_charge(1000, 10);
    cache_budget *b = new_budget((size_t)cap * charge);
    cache *frames = new_pool(b, "frames"), *tiles = new_pool(b, "tiles");
    cache *both[2] = {frames, tiles};
    cctx cx = {.size = 1000};
    char key[16];

    /* The same key in two pools is two values. */
    touch(frames, "same|00000", &cx);
    touch(tiles, "same|00000", &cx);
    assert_int_equal(atomic_load(&cx.calls), 2);

    /* An idle pool's memory goes to a busy one: one global budget, no fixed shares. */
    for (int i = 0; i < cap; i++) {
        snprintf(key, sizeof key, "til|%06d", i);
        touch(tiles, key, &cx);
        check_budget(b, both, 2);
    }
    for (int i = 0; i < 3 * cap; i++) {
        snprintf(key, sizeof key, "frm|%06d", i);
        touch(frames, key, &cx);
        check_budget(b, both, 2);
    }
    cache_stats fs, ts;
    cache_get_stats(frames, &fs);
    cache_get_stats(tiles, &ts);
    assert_int_equal(fs.inserts, 3 * cap + 1);
    assert_int_equal(ts.inserts, cap + 1);
    assert_true(ts.evictions > (uint64_t)(cap * 9 / 10));
    assert_true(fs.entries > (uint64_t)(cap * 9 / 10));
    assert_int_equal(fs.bytes + ts.bytes, cache_budget_used(b));
    assert_true(cache_budget_used(b) <= cache_budget_limit(b));

    /* Hot tiles survive a scan of frames ten times the budget: eviction is global. */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 10; i++) {
            snprintf(key, sizeof key, "hot|%06d", i);
            touch(tiles, key, &cx);
        }
    }
    for (int i = 0; i < 10 * cap; i++) {
        snprintf(key, sizeof key, "scn|%06d", i);
        touch(frames, key, &cx);
    }
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "hot|%06d", i);
        assert_int_equal(cached(tiles, key), 1);
    }
    check_budget(b, both, 2);
    cache_destroy(frames);
    check_budget(b, &tiles, 1);
    cache_get_stats(tiles, &ts);
    assert_int_equal(ts.bytes, cache_budget_used(b));
    cache_destroy(tiles);
    assert_int_equal(cache_budget_used(b), 0);
    cache_budget_destroy(b);
    assert_int_equal(atomic_load(&g_created), atomic_load(&g_destroyed));
}

/* ---------------------------------------------------------------- statistics */

/* One deterministic sequence with every counter predicted. */
static cache_budget *
stats_fixture(cache **frames, cache **tiles)
{
    size_t c2 = cache_charge(100, 2);
    cache_budget *b = new_budget(3 * c2);
    *frames = new_pool(b, "frames");
    *tiles = new_pool(b, "tiles");
    cctx ok = {.size = 100}, bad = {.size = 100, .fail = TSR_EIO}, big = {.size = 1 << 20};
    cache_entry *h0 = NULL, *h = NULL;
    cache *c = *frames;

    assert_int_equal(cache_get(c, "k0", 2, &h, NULL), TSR_ENOTFOUND); /* miss 1 */
    touch(c, "k0", &ok);                                              /* miss 2, insert 1 */
    touch(c, "k0", &ok);                                              /* hit 1 */
    assert_int_equal(cache_get(c, "k0", 2, &h0, NULL), TSR_OK);       /* hit 2, pins k0 */
    assert_int_equal(cached(c, "k0"), 1);                             /* a peek: nothing */
    put_value(c, "k1", 100, NULL);                                    /* insert 2 */
    put_value(c, "k1", 100, NULL);                                    /* insert 3, removal 1 */
    assert_int_equal(goc(c, "k2", &bad, &h, NULL), TSR_EIO);          /* miss 3, failure 1 */
    touch(c, "k2", &ok);                                              /* miss 4, insert 4 */
    touch(c, "k3", &ok);                                /* miss 5, insert 5, eviction 1 (k1) */
    assert_int_equal(cache_remove(c, "k3", 2), TSR_OK); /* removal 2 */
    touch(c, "k4", &big);                               /* miss 6, uncached 1 */

    cache_stats st;
    cache_get_stats(c, &st);
    assert_int_equal(st.pinned_bytes, c2);
    cache_release(h0);
    touch(*tiles, "t0", &ok);
    touch(*tiles, "t0", &ok);
    return b;
}

static void
test_stats_exact(void **state)
{
    (void)state;
    cache *frames, *tiles;
    cache_budget *b = stats_fixture(&frames, &tiles);
    size_t c2 = cache_charge(100, 2);
    cache_stats st;
    cache_get_stats(frames, &st);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.misses, 6);
    assert_int_equal(st.coalesced, 0);
    assert_int_equal(st.inserts, 5);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(st.removals, 2);
    assert_int_equal(st.compute_failures, 1);
    assert_int_equal(st.uncached, 1);
    /* k3's eviction went past k0 (read twice: promoted) to k1, the oldest value never read. */
    assert_int_equal(cached(frames, "k0"), 1);
    assert_int_equal(cached(frames, "k1"), 0);
    assert_int_equal(cached(frames, "k2"), 1);
    cache_get_stats(frames, &st);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.bytes, 2 * c2);
    assert_int_equal(st.pinned_bytes, 0);
    cache_stats ts;
    cache_get_stats(tiles, &ts);
    assert_int_equal(ts.hits, 1);
    assert_int_equal(ts.misses, 1);
    assert_int_equal(ts.inserts, 1);
    assert_int_equal(ts.entries, 1);
    assert_int_equal(cache_budget_used(b), 3 * c2);
    cache_destroy(frames);
    cache_destroy(tiles);
    cache_budget_destroy(b);
    assert_int_equal(atomic_load(&g_created), atomic_load(&g_destroyed));
}

static void
test_stats_json(void **state)
{
    (void)state;
    cache *frames, *tiles;
    cache_budget *b = stats_fixture(&frames, &tiles);
    char *text = (char *)"sentinel";
    assert_int_equal(cache_stats_json(NULL, &text), TSR_EINVAL);
    assert_string_equal(text, "sentinel");
    assert_int_equal(cache_stats_json(b, &text), TSR_OK);
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    if (!root) {
        fail_msg("invalid JSON (%s) in: %s", jerr.text, text);
    }
    assert_true(json_is_object(root));
    assert_int_equal(json_integer_value(json_object_get(root, "budget_bytes")),
                     cache_budget_limit(b));
    assert_int_equal(json_integer_value(json_object_get(root, "used_bytes")), cache_budget_used(b));
    assert_true(json_is_integer(json_object_get(root, "pinned_bytes")));
    json_t *arr = json_object_get(root, "caches");
    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), 2);
    cache *pools[2] = {frames, tiles};
    static const char *fields[] = {"hits",      "misses",   "coalesced",        "inserts",
                                   "evictions", "removals", "compute_failures", "uncached",
                                   "bytes",     "entries",  "pinned_bytes"};
    for (size_t i = 0; i < 2; i++) {
        json_t *o = json_array_get(arr, i);
        assert_string_equal(json_string_value(json_object_get(o, "name")), cache_name(pools[i]));
        assert_int_equal(json_object_size(o), 1 + sizeof fields / sizeof fields[0]);
        cache_stats st;
        cache_get_stats(pools[i], &st);
        const uint64_t want[] = {st.hits,      st.misses,   st.coalesced,        st.inserts,
                                 st.evictions, st.removals, st.compute_failures, st.uncached,
                                 st.bytes,     st.entries,  st.pinned_bytes};
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            json_t *v = json_object_get(o, fields[f]);
            if (!json_is_integer(v)) {
                fail_msg("%s.%s missing in %s", cache_name(pools[i]), fields[f], text);
            }
            assert_int_equal(json_integer_value(v), want[f]);
        }
    }
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "hits")), 2);
    json_decref(root);
    cache_text_free(text);
    cache_destroy(frames);
    cache_destroy(tiles);

    /* No pools: an empty list. */
    assert_int_equal(cache_stats_json(b, &text), TSR_OK);
    root = json_loads(text, 0, &jerr);
    assert_non_null(root);
    assert_int_equal(json_array_size(json_object_get(root, "caches")), 0);
    json_decref(root);
    cache_text_free(text);
    cache_budget_destroy(b);
}

/* Copies regex submatch `m` of `line` into dst (truncated to fit). */
static void
copy_match(char *dst, size_t size, const char *line, regmatch_t m)
{
    size_t n = m.rm_so < 0 ? 0 : (size_t)(m.rm_eo - m.rm_so);
    if (n >= size) {
        n = size - 1;
    }
    memcpy(dst, line + (m.rm_so < 0 ? 0 : m.rm_so), n);
    dst[n] = '\0';
}

static void
test_stats_prometheus(void **state)
{
    (void)state;
    cache *frames, *tiles;
    cache_budget *b = stats_fixture(&frames, &tiles);
    char *text = NULL;
    assert_int_equal(cache_stats_prometheus(b, &text), TSR_OK);
    size_t len = strlen(text);
    assert_true(len > 0 && text[len - 1] == '\n');

    regex_t help, type, sample;
    assert_int_equal(regcomp(&help, "^# HELP ([a-z_]+) [^ ].*$", REG_EXTENDED), 0);
    assert_int_equal(regcomp(&type, "^# TYPE ([a-z_]+) (counter|gauge)$", REG_EXTENDED), 0);
    assert_int_equal(
        regcomp(&sample, "^([a-z_]+)([{]cache=\"([A-Za-z0-9_.-]+)\"[}])? ([0-9]+)$", REG_EXTENDED),
        0);
    char helped[64] = "", typed[64] = "", kind[16] = "";
    int samples = 0, metrics = 0, found_hits = 0, found_budget = 0, found_bytes = 0;
    cache_stats fs;
    cache_get_stats(frames, &fs);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        regmatch_t m[5];
        if (regexec(&help, line, 5, m, 0) == 0) {
            copy_match(helped, sizeof helped, line, m[1]);
            metrics++;
        } else if (regexec(&type, line, 5, m, 0) == 0) {
            copy_match(typed, sizeof typed, line, m[1]);
            copy_match(kind, sizeof kind, line, m[2]);
            assert_string_equal(typed, helped); /* TYPE follows its HELP */
        } else if (regexec(&sample, line, 5, m, 0) == 0) {
            char name[64], pool[64] = "";
            copy_match(name, sizeof name, line, m[1]);
            copy_match(pool, sizeof pool, line, m[3]);
            unsigned long long v = strtoull(line + m[4].rm_so, NULL, 10);
            assert_string_equal(name, typed); /* every sample under its own HELP and TYPE */
            size_t n = strlen(name);
            int is_total = n > 6 && strcmp(name + n - 6, "_total") == 0;
            assert_int_equal(is_total, strcmp(kind, "counter") == 0);
            samples++;
            if (strcmp(name, "tessera_cache_hits_total") == 0 && strcmp(pool, "frames") == 0) {
                assert_int_equal(v, fs.hits);
                found_hits = 1;
            }
            if (strcmp(name, "tessera_cache_budget_bytes") == 0) {
                assert_string_equal(pool, "");
                assert_int_equal(v, cache_budget_limit(b));
                found_budget = 1;
            }
            if (strcmp(name, "tessera_cache_bytes") == 0 && strcmp(pool, "tiles") == 0) {
                cache_stats ts;
                cache_get_stats(tiles, &ts);
                assert_int_equal(v, ts.bytes);
                found_bytes = 1;
            }
        } else {
            fail_msg("not a Prometheus line: \"%s\"", line);
        }
    }
    assert_true(found_hits && found_budget && found_bytes);
    /* 2 budget gauges + 11 per-pool metrics with a sample for each of the 2 pools */
    assert_int_equal(metrics, 13);
    assert_int_equal(samples, 2 + 11 * 2);
    regfree(&help);
    regfree(&type);
    regfree(&sample);
    cache_text_free(text);
    cache_destroy(frames);
    cache_destroy(tiles);
    cache_budget_destroy(b);
}

/* ---------------------------------------------------------------- hash */

static void
test_hash(void **state)
{
    (void)state;
    /* Fixed values: the hash may serve as an ETag, so it must not change between builds. */
    assert_int_equal(cache_hash("", 0, 0), HASH_EMPTY);
    assert_int_equal(cache_hash("frame|1.2.840.10008|1", 21, 0), HASH_FRAME);
    assert_true(cache_hash("a", 1, 0) != cache_hash("a", 1, 1));
    assert_true(cache_hash("a", 1, 0) != cache_hash("a\0", 2, 0));
    assert_true(cache_hash("", 0, 0) != cache_hash("\0", 1, 0));
    /* Unaligned input hashes like aligned input. */
    char buf[64];
    memcpy(buf + 3, "frame|1.2.840.10008|1", 21);
    assert_int_equal(cache_hash(buf + 3, 21, 0), HASH_FRAME);

    /* Avalanche: flipping one input bit flips about half the output bits. */
    unsigned char in[40];
    for (size_t i = 0; i < sizeof in; i++) {
        in[i] = (unsigned char)(i * 37 + 1);
    }
    uint64_t h0 = cache_hash(in, sizeof in, 0);
    long total = 0;
    for (size_t bit = 0; bit < sizeof in * 8; bit++) {
        in[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        uint64_t d = h0 ^ cache_hash(in, sizeof in, 0);
        in[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        int n = __builtin_popcountll(d);
        assert_true(n >= 12 && n <= 52);
        total += n;
    }
    double mean = (double)total / (double)(sizeof in * 8);
    assert_true(mean > 29.0 && mean < 35.0);

    /* Sequential keys spread evenly over the top bits (shards) and low bits (buckets). */
    int top[64] = {0}, low[64] = {0};
    char key[32];
    for (int i = 0; i < 64000; i++) {
        int n = snprintf(key, sizeof key, "tile|%d", i);
        uint64_t h = cache_hash(key, (size_t)n, 0);
        top[h >> 58]++;
        low[h & 63]++;
    }
    for (int i = 0; i < 64; i++) {
        assert_true(top[i] > 800 && top[i] < 1200);
        assert_true(low[i] > 800 && low[i] < 1200);
    }
}

/* ---------------------------------------------------------------- concurrency */

#define LOAD_THREADS 8
#define LOAD_KEYS    600

typedef struct load {
    cache_budget *b;
    cache *pools[2];
    atomic_int stop;
    atomic_long ops;
    size_t max_used;
} load;

typedef struct load_thread {
    load *ld;
    uint32_t seed;
} load_thread;

static int
load_compute(const void *key, size_t keylen, void *user, cache_value *out, tsr_err *err)
{
    (void)user;
    uint64_t tag = key_tag(key, keylen);
    if (tag % 17 == 0) {
        return tsr_err_set(err, TSR_EIO, "synthetic failure");
    }
    size_t size = (size_t)(tag >> 20) % 3000;
    if (tag % 97 == 0) {
        size = 1 << 20; /* larger than the budget */
    }
    return make_value(tag, size, out);
}

static int
load_check(const cache_entry *h, const char *key)
{
    const tval *v = cache_entry_data(h);
    if (v->magic != MAGIC_LIVE || v->tag != key_tag(key, strlen(key))) {
        record_bad("a handle holds a dead or wrong value");
        return 0;
    }
    return 1;
}

static void *
load_main(void *arg)
{
    load_thread *lt = arg;
    load *ld = lt->ld;
    cache_entry *held[6] = {0};
    char key[32];
    long ops = 0;
    while (!atomic_load_explicit(&ld->stop, memory_order_relaxed)) {
        uint32_t r = lcg(&lt->seed);
        cache *c = ld->pools[r & 1];
        /* Skewed: small key numbers are much more frequent. */
        uint32_t span = lcg(&lt->seed) % LOAD_KEYS + 1;
        snprintf(key, sizeof key, "key|%u", (unsigned)(lcg(&lt->seed) % span));
        size_t klen = strlen(key);
        cache_entry *h = NULL;
        switch ((r >> 1) % 20) {
        case 10:
        case 11:
        case 12: {
            cache_value v;
            if (make_value(key_tag(key, klen), (size_t)(r >> 8) % 4000, &v) != TSR_OK) {
                break;
            }
            if (cache_put(c, key, klen, &v, (r & 2) ? &h : NULL, NULL) != TSR_OK) {
                tval_destroy(v.data, NULL);
            }
            break;
        }
        case 13:
        case 14:
            if (cache_try_get(c, key, klen, &h) == TSR_OK) {
                load_check(h, key);
            }
            break;
        case 15:
            if (cache_get(c, key, klen, &h, NULL) == TSR_OK) {
                load_check(h, key);
            }
            break;
        case 16:
            cache_remove(c, key, klen);
            break;
        case 17: {
            size_t slot = lcg(&lt->seed) % 6;
            cache_release(held[slot]);
            held[slot] = NULL;
            break;
        }
        default: {
            int rc = cache_get_or_compute(c, key, klen, load_compute, NULL, &h, NULL);
            if (rc == TSR_OK) {
                load_check(h, key);
            } else if (rc != TSR_EIO) {
                record_bad("get_or_compute failed unexpectedly");
            }
            break;
        }
        }
        if (h) {
            size_t slot = lcg(&lt->seed) % 6;
            cache_release(held[slot]);
            held[slot] = h;
        }
        if (cache_budget_used(ld->b) > cache_budget_limit(ld->b)) {
            record_bad("budget exceeded");
        }
        ops++;
    }
    for (int i = 0; i < 6; i++) {
        cache_release(held[i]);
    }
    atomic_fetch_add(&ld->ops, ops);
    return NULL;
}

static void *
monitor_main(void *arg)
{
    load *ld = arg;
    while (!atomic_load(&ld->stop)) {
        size_t used = cache_budget_used(ld->b);
        if (used > ld->max_used) {
            ld->max_used = used;
        }
        char *text = NULL;
        if ((used & 7) == 0 && cache_stats_json(ld->b, &text) == TSR_OK) {
            cache_text_free(text);
        }
    }
    return NULL;
}

static void
test_concurrent_random_load(void **state)
{
    (void)state;
    load ld = {.b = new_budget(256 * 1024)};
    ld.pools[0] = new_pool(ld.b, "frames");
    ld.pools[1] = new_pool(ld.b, "tiles");
    pthread_t th[LOAD_THREADS], mon;
    load_thread lt[LOAD_THREADS];
    for (int i = 0; i < LOAD_THREADS; i++) {
        lt[i] = (load_thread){&ld, (uint32_t)(i * 7919 + 1)};
        assert_int_equal(pthread_create(&th[i], NULL, load_main, &lt[i]), 0);
    }
    assert_int_equal(pthread_create(&mon, NULL, monitor_main, &ld), 0);
    sleep_ms(2500);
    atomic_store(&ld.stop, 1);
    for (int i = 0; i < LOAD_THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    pthread_join(mon, NULL);
    if (atomic_load(&g_bad)) {
        fail_msg("%d failures, first: %s", atomic_load(&g_bad), g_bad_msg);
    }
    assert_true(ld.max_used <= cache_budget_limit(ld.b));
    assert_true(atomic_load(&ld.ops) > 10000);

    /* Quiet again: the accounting adds up and nothing is pinned. */
    check_budget(ld.b, ld.pools, 2);
    uint64_t evictions = 0, coalesced = 0, failures = 0;
    for (int i = 0; i < 2; i++) {
        cache_stats st;
        cache_get_stats(ld.pools[i], &st);
        assert_int_equal(st.pinned_bytes, 0);
        evictions += st.evictions;
        coalesced += st.coalesced;
        failures += st.compute_failures;
    }
    assert_true(evictions > 0);
    assert_true(failures > 0);
    print_message("load: %ld ops, %llu evictions, %llu coalesced, max used %zu of %zu\n",
                  atomic_load(&ld.ops), (unsigned long long)evictions,
                  (unsigned long long)coalesced, ld.max_used, cache_budget_limit(ld.b));
    cache_destroy(ld.pools[0]);
    cache_destroy(ld.pools[1]);
    assert_int_equal(cache_budget_used(ld.b), 0);
    cache_budget_destroy(ld.b);
    assert_int_equal(atomic_load(&g_created), atomic_load(&g_destroyed));
}

TSR_TEST_MAIN(cmocka_unit_test_setup(test_create_failures, reset),
              cmocka_unit_test_setup(test_hit_miss, reset),
              cmocka_unit_test_setup(test_put_replace_remove, reset),
              cmocka_unit_test_setup(test_budget_never_exceeded, reset),
              cmocka_unit_test_setup(test_eviction_of_unpinned, reset),
              cmocka_unit_test_setup(test_pinned_not_freed, reset),
              cmocka_unit_test_setup(test_all_pinned_returns_uncached, reset),
              cmocka_unit_test_setup(test_destroy_callback_once, reset),
              cmocka_unit_test_setup(test_single_flight, reset),
              cmocka_unit_test_setup(test_single_flight_failure, reset),
              cmocka_unit_test_setup(test_remove_while_computing, reset),
              cmocka_unit_test_setup(test_try_get_never_blocks, reset),
              cmocka_unit_test_setup(test_nested_compute_and_destroy, reset),
              cmocka_unit_test_setup(test_oversize_returned_uncached, reset),
              cmocka_unit_test_setup(test_zero_budget, reset),
              cmocka_unit_test_setup(test_scan_resistance, reset),
              cmocka_unit_test_setup(test_scan_resistance_interleaved, reset),
              cmocka_unit_test_setup(test_ghost_readmits, reset),
              cmocka_unit_test_setup(test_pools_share_budget, reset),
              cmocka_unit_test_setup(test_stats_exact, reset),
              cmocka_unit_test_setup(test_stats_json, reset),
              cmocka_unit_test_setup(test_stats_prometheus, reset),
              cmocka_unit_test_setup(test_hash, reset),
              cmocka_unit_test_setup(test_concurrent_random_load, reset))
