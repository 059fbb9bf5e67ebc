/* SPDX-License-Identifier: MIT */
/* bench_cache.c: throughput of the byte-budgeted cache (cache/cache.h), medians over runs.
 *
 * usage: bench_cache [MS_PER_RUN] [RUNS]        (defaults 300 ms, 7 runs)
 *
 *   hits       get_or_compute + release on 10,000 prefilled keys (uniform), every call a hit;
 *              1 and 2 threads, so the 2-thread line shows how the shard locks scale
 *   hot key    the same, every thread on one key (the reference count's cache line bounces)
 *   mixed      2 threads, 100,000 keys with a skewed (cubic) popularity, a budget holding
 *              about 10% of them: 80% get_or_compute (the compute allocates a value), 10%
 *              try_get, 5% put, 5% remove; reports the hit ratio too
 *
 * Keys look like the server's ("frame|<SOP UID>|<n>", ~40 bytes); values are declared as
 * 4 KiB (the budget's charge) but allocate only a small struct, so the figures measure the
 * cache, not malloc. */
#define _POSIX_C_SOURCE 200809L
#define BENCH_NAME "bench_cache"
#include "bench_util.h"
#include "cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 8
#define VALUE_SIZE  4096

static int g_ms = 300;
static int g_runs = 7;

typedef struct workload {
    cache *c;
    int nkeys;   /* key space */
    int mixed;   /* 0: hits only; 1: mixed operations */
    int hot_key; /* every thread on key 0 */
    pthread_barrier_t *bar;
    atomic_int *stop;
} workload;

typedef struct worker {
    const workload *w;
    uint64_t seed;
    long ops;
} worker;

static uint64_t
rng(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#define MAX_KEYS 100000
#define KEY_CAP  48

/* Keys are formatted once, so that the loops time the cache and not snprintf. */
static char g_keys[MAX_KEYS][KEY_CAP];
static size_t g_keylen[MAX_KEYS];

static void
make_keys(void)
{
    for (int i = 0; i < MAX_KEYS; i++) {
        int n = snprintf(g_keys[i], KEY_CAP, "frame|1.2.840.113619.2.55.3.604688|%d", i);
        g_keylen[i] = n;
    }
}

static void
free_value(void *data, void *ctx)
{
    (void)ctx;
    free(data);
}

static int
compute(const void *key, size_t keylen, void *user, cache_value *out, tsr_err *err)
{
    (void)user;
    uint64_t *v = malloc(sizeof *v);
    if (!v) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    *v = cache_hash(key, keylen, 1);
    *out = (cache_value){v, VALUE_SIZE, free_value, NULL};
    return TSR_OK;
}

static void *
worker_main(void *arg)
{
    worker *wk = arg;
    const workload *w = wk->w;
    pthread_barrier_wait(w->bar);
    while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
        for (int i = 0; i < 256; i++) {
            uint64_t r = rng(&wk->seed);
            int k;
            if (w->hot_key) {
                k = 0;
            } else if (w->mixed) {
                double u = (double)(r >> 11) / 9007199254740992.0;
                k = (int)((double)w->nkeys * u * u * u);
            } else {
                k = (int)(r % (uint64_t)w->nkeys);
            }
            const char *key = g_keys[k];
            size_t n = g_keylen[k];
            cache_entry *h = NULL;
            unsigned op = w->mixed ? (unsigned)((r >> 40) % 100) : 0;
            if (op < 80) {
                if (cache_get_or_compute(w->c, key, n, compute, NULL, &h, NULL) == TSR_OK) {
                    cache_release(h);
                }
            } else if (op < 90) {
                if (cache_try_get(w->c, key, n, &h) == TSR_OK) {
                    cache_release(h);
                }
            } else if (op < 95) {
                cache_value v;
                if (compute(key, n, NULL, &v, NULL) == TSR_OK &&
                    cache_put(w->c, key, n, &v, NULL, NULL) != TSR_OK) {
                    free(v.data);
                }
            } else {
                cache_remove(w->c, key, n);
            }
            wk->ops++;
        }
    }
    return NULL;
}

/* One run: `threads` workers for g_ms milliseconds. Returns ops/s; *hit_ratio gets the share of
 * get_or_compute calls that were hits. */
static double
run_once(cache *c, int threads, int nkeys, int mixed, int hot_key, double *hit_ratio)
{
    pthread_t th[MAX_THREADS];
    worker wk[MAX_THREADS];
    pthread_barrier_t bar;
    atomic_int stop = 0;
    workload w = {c, nkeys, mixed, hot_key, &bar, &stop};
    cache_stats before, after;
    cache_get_stats(c, &before);
    pthread_barrier_init(&bar, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        wk[i] = (worker){&w, (uint64_t)i * 7919 + tsr_now_ns(), 0};
        pthread_create(&th[i], NULL, worker_main, &wk[i]);
    }
    pthread_barrier_wait(&bar);
    uint64_t t0 = tsr_now_ns();
    struct timespec ts = {g_ms / 1000, (long)(g_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
    long ops = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        ops += wk[i].ops;
    }
    uint64_t t1 = tsr_now_ns();
    pthread_barrier_destroy(&bar);
    cache_get_stats(c, &after);
    uint64_t hits = after.hits - before.hits;
    uint64_t looks = hits + (after.misses - before.misses) + (after.coalesced - before.coalesced);
    if (hit_ratio) {
        *hit_ratio = looks ? (double)hits / (double)looks : 0.0;
    }
    return (double)ops / ((double)(t1 - t0) / 1e9);
}

static void
report(const char *name, cache *c, int threads, int nkeys, int mixed, int hot_key)
{
    double r[64], h[64];
    for (int i = 0; i < g_runs; i++) {
        r[i] = run_once(c, threads, nkeys, mixed, hot_key, &h[i]);
    }
    qsort(r, (size_t)g_runs, sizeof r[0], cmp_double);
    qsort(h, (size_t)g_runs, sizeof h[0], cmp_double);
    double med = g_runs % 2 ? r[g_runs / 2] : 0.5 * (r[g_runs / 2 - 1] + r[g_runs / 2]);
    printf("%-22s %d thread%s  %8.2f Mops/s  (%6.1f ns/op/thread)", name, threads,
           threads > 1 ? "s" : " ", med / 1e6, 1e9 * threads / med);
    if (mixed) {
        printf("  hit ratio %.1f%%", 100.0 * h[g_runs / 2]);
    }
    printf("\n");
}

static cache_budget *
make_budget(size_t values, cache **c)
{
    cache_budget *b = NULL;
    tsr_err err = {0};
    if (cache_budget_create(values * cache_charge(VALUE_SIZE, 40), &b, &err) != TSR_OK ||
        cache_create(b, "frames", c, &err) != TSR_OK) {
        fprintf(stderr, "bench_cache: %s\n", err.msg);
        exit(1);
    }
    return b;
}

int
main(int argc, char **argv)
{
    if (argc > 1) {
        g_ms = atoi(argv[1]);
    }
    if (argc > 2) {
        g_runs = atoi(argv[2]);
    }
    if (g_ms < 10 || g_runs < 1 || g_runs > 64) {
        fprintf(stderr, "usage: bench_cache [MS_PER_RUN >= 10] [RUNS 1..64]\n");
        return 2;
    }
    printf("bench_cache: medians of %d runs of %d ms\n", g_runs, g_ms);

    make_keys();

    /* Hits: 10,000 values, all cached. */
    cache *c = NULL;
    cache_budget *b = make_budget(20000, &c);
    for (int i = 0; i < 10000; i++) {
        cache_entry *h = NULL;
        if (cache_get_or_compute(c, g_keys[i], g_keylen[i], compute, NULL, &h, NULL) != TSR_OK) {
            fprintf(stderr, "bench_cache: prefill failed\n");
            return 1;
        }
        cache_release(h);
    }
    report("hits", c, 1, 10000, 0, 0);
    report("hits", c, 2, 10000, 0, 0);
    report("hits, one hot key", c, 1, 1, 0, 1);
    report("hits, one hot key", c, 2, 1, 0, 1);
    cache_destroy(c);
    cache_budget_destroy(b);

    /* Mixed: 100,000 keys, room for 10,000. */
    b = make_budget(10000, &c);
    report("mixed", c, 1, 100000, 1, 0);
    report("mixed", c, 2, 100000, 1, 0);
    cache_stats st;
    cache_get_stats(c, &st);
    printf("mixed totals: %llu hits, %llu misses, %llu coalesced, %llu evictions, %llu entries\n",
           (unsigned long long)st.hits, (unsigned long long)st.misses,
           (unsigned long long)st.coalesced, (unsigned long long)st.evictions,
           (unsigned long long)st.entries);
    cache_destroy(c);
    cache_budget_destroy(b);
    return 0;
}
