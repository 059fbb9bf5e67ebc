/* SPDX-License-Identifier: MIT */
/* cache.c: budgets and pools, sharded lookups with single-flight computation, and S3-FIFO
 * eviction of all pools under one byte budget. Lock order and the reference word are described
 * in cache_internal.h. */
#define _POSIX_C_SOURCE 200809L
#include "cache_internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* A value leaves the small FIFO for the main one when it was read at least this often while
 * there (S3-FIFO's "accessed more than once"). A frame shown once and scrolled past is read
 * once (twice with a prefetch peek, which does not count); a frame that stays on screen is read
 * again at every window change, and a hot tile at every pan. */
#define PROMOTE_FREQ 2
#define FREQ_MAX     3
/* The small FIFO's share of the budget, in percent (S3-FIFO's 10%). */
#define SMALL_PERCENT 10
#define BUCKETS_MIN   16
#define GHOST_MIN     ((size_t)1024)
#define GHOST_MAX     ((size_t)1 << 22)

/* ------------------------------------------------------------------ hashing */

#define H_P1 0x9E3779B185EBCA87ull
#define H_P2 0xC2B2AE3D27D4EB4Full
#define H_P3 0x165667B19E3779F9ull

static inline uint64_t
rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t
load_le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline uint64_t
mix_word(uint64_t h, uint64_t w)
{
    w *= H_P2;
    w = rotl64(w, 31) * H_P1;
    h ^= w;
    return rotl64(h, 27) * H_P1 + H_P3;
}

static inline uint64_t
fmix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

uint64_t
cache_hash(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed + H_P3 + (uint64_t)len * H_P1;
    while (len >= 8) {
        h = mix_word(h, load_le64(p));
        p += 8;
        len -= 8;
    }
    if (len > 0) {
        uint64_t w = 0;
        for (size_t i = 0; i < len; i++) {
            w |= (uint64_t)p[i] << (8 * i);
        }
        h = mix_word(h, w);
    }
    return fmix64(h);
}

/* Per value, besides its entry: about one hash bucket pointer (load factor <= 1, doubling) and
 * two ghost slots (the ghost table has up to twice as many slots as there are values). */
#define CHARGE_TABLES (2 * sizeof(cache_entry *) + 2 * sizeof(cache__ghost_slot))

size_t
cache_charge(size_t value_size, size_t keylen)
{
    if (keylen > SIZE_MAX - sizeof(cache_entry) - CHARGE_TABLES) {
        return SIZE_MAX;
    }
    size_t fixed = sizeof(cache_entry) + CHARGE_TABLES + keylen;
    return value_size > SIZE_MAX - fixed ? SIZE_MAX : value_size + fixed;
}

/* ------------------------------------------------------------------ small helpers */

/* Counters written under a lock: a plain load and store, no locked instruction on the hit path.
 * They are atomics only so that statistics can be read without the lock. */
static inline void
count_locked(atomic_uint_least64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static inline void
gauge_add_locked(atomic_size_t *g, size_t v)
{
    atomic_store_explicit(g, atomic_load_explicit(g, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

static inline void
gauge_sub_locked(atomic_size_t *g, size_t v)
{
    atomic_store_explicit(g, atomic_load_explicit(g, memory_order_relaxed) - v,
                          memory_order_relaxed);
}

static inline cache__shard *
shard_of(cache *c, uint64_t h)
{
    return &c->shards[h >> (64 - CACHE__SHARD_BITS)];
}

static int
check_key(const cache *c, const void *key, size_t keylen, tsr_err *err)
{
    if (!c || (!key && keylen > 0)) {
        return tsr_err_set(err, TSR_EINVAL, "cache: missing pool or key");
    }
    if (keylen > CACHE_KEY_MAX) {
        return tsr_err_set(err, TSR_EINVAL, "cache key of %zu bytes is longer than %d", keylen,
                           CACHE_KEY_MAX);
    }
    return TSR_OK;
}

/* ------------------------------------------------------------------ budget */

int
cache_budget_create(size_t limit_bytes, cache_budget **out, tsr_err *err)
{
    if (!out) {
        return tsr_err_set(err, TSR_EINVAL, "cache_budget_create: no output pointer");
    }
    cache_budget *b = calloc(1, sizeof *b);
    if (!b) {
        return tsr_err_set(err, TSR_ENOMEM, "cache budget: out of memory");
    }
    b->ghost = calloc(GHOST_MIN, sizeof *b->ghost);
    if (!b->ghost) {
        free(b);
        return tsr_err_set(err, TSR_ENOMEM, "cache budget: out of memory");
    }
    b->ghost_mask = GHOST_MIN - 1;
    if (pthread_mutex_init(&b->mu, NULL) != 0) {
        free(b->ghost);
        free(b);
        return tsr_err_set(err, TSR_ENOMEM, "cache budget: cannot create a mutex");
    }
    if (pthread_mutex_init(&b->pools_mu, NULL) != 0) {
        pthread_mutex_destroy(&b->mu);
        free(b->ghost);
        free(b);
        return tsr_err_set(err, TSR_ENOMEM, "cache budget: cannot create a mutex");
    }
    b->limit = limit_bytes;
    atomic_init(&b->used, 0);
    *out = b;
    return TSR_OK;
}

void
cache_budget_destroy(cache_budget *b)
{
    if (!b) {
        return;
    }
    assert(!b->pools && "destroy every pool before its budget");
    assert(atomic_load(&b->used) == 0);
    pthread_mutex_destroy(&b->pools_mu);
    pthread_mutex_destroy(&b->mu);
    free(b->ghost);
    free(b);
}

size_t
cache_budget_limit(const cache_budget *b)
{
    return b->limit;
}

size_t
cache_budget_used(const cache_budget *b)
{
    return atomic_load_explicit(&b->used, memory_order_relaxed);
}

/* ------------------------------------------------------------------ pools */

static void
pool_free(cache *c, unsigned nshards)
{
    for (unsigned i = 0; i < nshards; i++) {
        pthread_cond_destroy(&c->shards[i].cond);
        pthread_mutex_destroy(&c->shards[i].mu);
        free(c->shards[i].buckets);
    }
    free(c);
}

static void
pool_unref(cache *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) {
        pool_free(c, CACHE__SHARDS);
    }
}

static int
name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CACHE_NAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-')) {
            return 0;
        }
    }
    return 1;
}

int
cache_create(cache_budget *b, const char *name, cache **out, tsr_err *err)
{
    if (!b || !name || !out) {
        return tsr_err_set(err, TSR_EINVAL, "cache_create: missing budget, name or output");
    }
    if (!name_ok(name)) {
        return tsr_err_set(err, TSR_EINVAL,
                           "cache name \"%.*s\" must be 1 to %d characters from [A-Za-z0-9_.-]",
                           CACHE_NAME_MAX, name, CACHE_NAME_MAX);
    }
    /* The shards are aligned to cache lines, so the pool is too. */
    size_t size = (sizeof(cache) + 63) / 64 * 64;
    cache *c = aligned_alloc(64, size);
    if (!c) {
        return tsr_err_set(err, TSR_ENOMEM, "cache %s: out of memory", name);
    }
    memset(c, 0, size);
    for (unsigned i = 0; i < CACHE__SHARDS; i++) {
        cache__shard *sh = &c->shards[i];
        sh->buckets = calloc(BUCKETS_MIN, sizeof *sh->buckets);
        if (!sh->buckets || pthread_mutex_init(&sh->mu, NULL) != 0) {
            free(sh->buckets);
            pool_free(c, i);
            return tsr_err_set(err, TSR_ENOMEM, "cache %s: out of memory", name);
        }
        if (pthread_cond_init(&sh->cond, NULL) != 0) {
            pthread_mutex_destroy(&sh->mu);
            free(sh->buckets);
            pool_free(c, i);
            return tsr_err_set(err, TSR_ENOMEM, "cache %s: out of memory", name);
        }
        sh->nbuckets = BUCKETS_MIN;
    }
    memcpy(c->name, name, strlen(name) + 1);
    c->budget = b;
    atomic_init(&c->refs, 1);

    pthread_mutex_lock(&b->pools_mu);
    cache **tail = &b->pools;
    for (; *tail; tail = &(*tail)->next) {
        if (strcmp((*tail)->name, name) == 0) {
            pthread_mutex_unlock(&b->pools_mu);
            pool_free(c, CACHE__SHARDS);
            return tsr_err_set(err, TSR_EINVAL, "a cache named %s already exists", name);
        }
    }
    c->salt = fmix64(++b->pool_serial * H_P1);
    *tail = c;
    pthread_mutex_unlock(&b->pools_mu);
    *out = c;
    return TSR_OK;
}

const char *
cache_name(const cache *c)
{
    return c->name;
}

/* ------------------------------------------------------------------ entries */

static cache_entry *
entry_new(cache *c, uint64_t h, const void *key, size_t keylen)
{
    cache_entry *e = malloc(sizeof *e + keylen);
    if (!e) {
        return NULL;
    }
    memset(e, 0, sizeof *e);
    atomic_init(&e->ref, 0);
    atomic_init(&e->freq, 0);
    e->pool = c;
    e->hash = h;
    e->keylen = keylen;
    if (keylen > 0) {
        memcpy(e->key, key, keylen);
    }
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return e;
}

/* Destroys the value (if the entry holds one) and the entry. No lock held: the destroy callback
 * may call back into the cache. */
static void
entry_free(cache_entry *e)
{
    if (e->has_value && e->val.destroy) {
        e->val.destroy(e->val.data, e->val.ctx);
    }
    cache *c = e->pool;
    free(e->err);
    free(e);
    pool_unref(c);
}

static void
free_victims(cache_entry *v)
{
    while (v) {
        cache_entry *next = v->qnext;
        entry_free(v);
        v = next;
    }
}

void *
cache_entry_data(const cache_entry *e)
{
    return e->val.data;
}

size_t
cache_entry_size(const cache_entry *e)
{
    return e->val.size;
}

int
cache_entry_cached(const cache_entry *e)
{
    return (atomic_load_explicit(&e->ref, memory_order_acquire) & CACHE__LINKED) != 0;
}

/* Pins a linked entry. Shard lock held (pins are only ever added under it, which is what lets
 * an evictor holding the lock trust an unpinned reference word). */
static void
pin_locked(cache__shard *sh, cache_entry *e)
{
    size_t old = atomic_fetch_add_explicit(&e->ref, CACHE__PIN, memory_order_relaxed);
    if ((old >> 1) == 0 && e->charge > 0) {
        atomic_fetch_add_explicit(&sh->pinned_bytes, e->charge, memory_order_relaxed);
    }
}

void
cache_release(cache_entry *e)
{
    if (!e) {
        return;
    }
    /* Read before dropping the pin: afterwards an evictor may free the entry at any moment. */
    size_t charge = e->charge;
    cache__shard *sh = shard_of(e->pool, e->hash);
    size_t old = atomic_fetch_sub_explicit(&e->ref, CACHE__PIN, memory_order_acq_rel);
    assert(old >= CACHE__PIN);
    if (old == CACHE__PIN) {
        entry_free(e);
    } else if (old == (CACHE__LINKED | CACHE__PIN) && charge > 0) {
        atomic_fetch_sub_explicit(&sh->pinned_bytes, charge, memory_order_relaxed);
    }
}

/* ------------------------------------------------------------------ hash table (shard lock) */

static cache_entry *
shard_find(const cache__shard *sh, uint64_t h, const void *key, size_t keylen)
{
    for (cache_entry *e = sh->buckets[h & (sh->nbuckets - 1)]; e; e = e->hnext) {
        if (e->hash == h && e->keylen == keylen &&
            (keylen == 0 || memcmp(e->key, key, keylen) == 0)) {
            return e;
        }
    }
    return NULL;
}

static void
shard_link(cache__shard *sh, cache_entry *e)
{
    if (sh->count >= sh->nbuckets && sh->nbuckets < ((size_t)1 << 40)) {
        size_t n = sh->nbuckets * 2;
        cache_entry **nb = calloc(n, sizeof *nb);
        /* Without memory the chains just get longer. */
        if (nb) {
            for (size_t i = 0; i < sh->nbuckets; i++) {
                for (cache_entry *x = sh->buckets[i], *next; x; x = next) {
                    next = x->hnext;
                    x->hnext = nb[x->hash & (n - 1)];
                    nb[x->hash & (n - 1)] = x;
                }
            }
            free(sh->buckets);
            sh->buckets = nb;
            sh->nbuckets = n;
        }
    }
    cache_entry **slot = &sh->buckets[e->hash & (sh->nbuckets - 1)];
    e->hnext = *slot;
    *slot = e;
    sh->count++;
}

static void
shard_unlink(cache__shard *sh, cache_entry *e)
{
    cache_entry **p = &sh->buckets[e->hash & (sh->nbuckets - 1)];
    while (*p != e) {
        assert(*p);
        p = &(*p)->hnext;
    }
    *p = e->hnext;
    e->hnext = NULL;
    sh->count--;
}

/* ------------------------------------------------------------ FIFOs and ghost (budget lock) */

static void
q_push(cache__queue *q, cache_entry *e)
{
    e->qnext = NULL;
    e->qprev = q->tail;
    if (q->tail) {
        q->tail->qnext = e;
    } else {
        q->head = e;
    }
    q->tail = e;
    q->count++;
    q->bytes += e->charge;
}

static void
q_unlink(cache__queue *q, cache_entry *e)
{
    if (e->qprev) {
        e->qprev->qnext = e->qnext;
    } else {
        q->head = e->qnext;
    }
    if (e->qnext) {
        e->qnext->qprev = e->qprev;
    } else {
        q->tail = e->qprev;
    }
    e->qprev = e->qnext = NULL;
    q->count--;
    q->bytes -= e->charge;
}

static cache__queue *
q_of(cache_budget *b, const cache_entry *e)
{
    return e->queue == CACHE__Q_SMALL ? &b->small : &b->main;
}

/* Moves an entry to the newest end of the main FIFO. */
static void
q_to_main(cache_budget *b, cache_entry *e)
{
    q_unlink(q_of(b, e), e);
    e->queue = CACHE__Q_MAIN;
    q_push(&b->main, e);
}

/* The ghost table remembers the key hashes of values recently evicted from the small FIFO:
 * about as many as the cache holds values (S3-FIFO sizes its ghost FIFO like the main FIFO).
 * It is direct-mapped; a collision forgets the older key, which only costs one value a trip
 * through the small FIFO. Age is measured in ghost insertions. */
static size_t
ghost_window(const cache_budget *b)
{
    size_t n = b->small.count + b->main.count;
    return n < 64 ? 64 : n;
}

static void
ghost_grow(cache_budget *b)
{
    size_t n = (b->ghost_mask + 1) * 2;
    cache__ghost_slot *g = calloc(n, sizeof *g);
    if (!g) {
        return;
    }
    size_t window = ghost_window(b);
    for (size_t i = 0; i <= b->ghost_mask; i++) {
        cache__ghost_slot s = b->ghost[i];
        if (s.seq != 0 && b->ghost_seq - s.seq < window && s.seq > g[s.hash & (n - 1)].seq) {
            g[s.hash & (n - 1)] = s;
        }
    }
    free(b->ghost);
    b->ghost = g;
    b->ghost_mask = n - 1;
}

static void
ghost_add(cache_budget *b, uint64_t h)
{
    if ((b->small.count + b->main.count) * 2 > b->ghost_mask + 1 && b->ghost_mask + 1 < GHOST_MAX) {
        ghost_grow(b);
    }
    cache__ghost_slot *s = &b->ghost[h & b->ghost_mask];
    s->hash = h;
    s->seq = ++b->ghost_seq;
}

static int
ghost_take(cache_budget *b, uint64_t h)
{
    cache__ghost_slot *s = &b->ghost[h & b->ghost_mask];
    if (s->seq != 0 && s->hash == h && b->ghost_seq - s->seq < ghost_window(b)) {
        s->seq = 0;
        return 1;
    }
    return 0;
}

static uint64_t
ghost_hash(const cache_entry *e)
{
    return e->hash ^ e->pool->salt;
}

/* ------------------------------------------------------------------ accounting and eviction */

/* Makes a READY entry count: budget lock and its shard lock held, e->charge set. */
static void
admit_locked(cache_budget *b, cache_entry *e)
{
    cache *c = e->pool;
    gauge_add_locked(&b->used, e->charge);
    gauge_add_locked(&c->bytes, e->charge);
    gauge_add_locked(&c->entries, 1);
    count_locked(&c->inserts);
    if (ghost_take(b, ghost_hash(e))) {
        e->queue = CACHE__Q_MAIN;
        q_push(&b->main, e);
    } else {
        e->queue = CACHE__Q_SMALL;
        q_push(&b->small, e);
    }
}

/* Takes a READY entry out of its FIFO and the accounting. Budget lock held. */
static void
discharge_locked(cache_budget *b, cache_entry *e)
{
    cache *c = e->pool;
    q_unlink(q_of(b, e), e);
    e->queue = CACHE__Q_NONE;
    gauge_sub_locked(&b->used, e->charge);
    gauge_sub_locked(&c->bytes, e->charge);
    gauge_sub_locked(&c->entries, 1);
}

/* Drops the cache's reference on a linked entry (READY or PENDING): out of the hash table and,
 * if READY, out of its FIFO and the accounting. An unpinned entry is chained on *victims, to be
 * freed once every lock is dropped; a pinned one lives on until its last cache_release. Budget
 * lock and the entry's shard lock held. */
static void
unlink_locked(cache_budget *b, cache__shard *sh, cache_entry *e, cache_entry **victims)
{
    shard_unlink(sh, e);
    if (e->queue != CACHE__Q_NONE) {
        discharge_locked(b, e);
    }
    /* Once the bit is gone, the last pin's release may free the entry at any moment. */
    size_t charge = e->charge;
    size_t old = atomic_fetch_and_explicit(&e->ref, ~CACHE__LINKED, memory_order_acq_rel);
    if (old == CACHE__LINKED) {
        e->qnext = *victims;
        *victims = e;
    } else if (charge > 0) {
        /* Still pinned, but no longer in the cache: no longer part of the pinned budget. */
        atomic_fetch_sub_explicit(&sh->pinned_bytes, charge, memory_order_relaxed);
    }
}

/* Evicts `e` if nothing pins it. Budget lock held; takes the entry's shard lock, which is what
 * makes "unpinned" stable: pins are only added under it. */
static int
try_evict(cache_budget *b, cache_entry *e, cache_entry **victims)
{
    cache__shard *sh = shard_of(e->pool, e->hash);
    pthread_mutex_lock(&sh->mu);
    size_t expect = CACHE__LINKED;
    int ok = atomic_compare_exchange_strong_explicit(&e->ref, &expect, 0, memory_order_acq_rel,
                                                     memory_order_relaxed);
    if (ok) {
        shard_unlink(sh, e);
    }
    pthread_mutex_unlock(&sh->mu);
    if (!ok) {
        return 0;
    }
    int from_small = e->queue == CACHE__Q_SMALL;
    discharge_locked(b, e);
    count_locked(&e->pool->evictions);
    if (from_small) {
        ghost_add(b, ghost_hash(e));
    }
    e->qnext = *victims;
    *victims = e;
    return 1;
}

/* Evicts one value by S3-FIFO: from the small FIFO while it holds at least its share of the
 * budget (promoting what was read twice), else from the main FIFO (a value read since its last
 * turn gets another round with its counter lowered). A pinned value is in use, i.e. as good as
 * read: it goes round the main FIFO again. Returns 0 when every value is pinned. Budget lock
 * held. */
static int
evict_one(cache_budget *b, cache_entry **victims)
{
    /* Each value is looked at about five times at most (promotion, three second chances, its
     * eviction); the bound only matters when readers keep raising counters concurrently. */
    size_t steps = 5 * (b->small.count + b->main.count) + 1;
    while (steps-- > 0 && (b->small.count > 0 || b->main.count > 0)) {
        int small = b->small.count > 0 &&
                    (b->small.bytes >= b->limit / 100 * SMALL_PERCENT || b->main.count == 0);
        cache_entry *e = small ? b->small.head : b->main.head;
        unsigned f = atomic_load_explicit(&e->freq, memory_order_relaxed);
        if (small && f >= PROMOTE_FREQ) {
            q_to_main(b, e);
            continue;
        }
        if (!small && f > 0) {
            atomic_store_explicit(&e->freq, (unsigned char)(f - 1), memory_order_relaxed);
            q_to_main(b, e);
            continue;
        }
        if (try_evict(b, e, victims)) {
            return 1;
        }
        q_to_main(b, e);
    }
    /* Out of steps: take the oldest value that nothing pins. */
    cache__queue *qs[2] = {&b->small, &b->main};
    for (int i = 0; i < 2; i++) {
        for (cache_entry *e = qs[i]->head, *next; e; e = next) {
            next = e->qnext;
            if (try_evict(b, e, victims)) {
                return 1;
            }
        }
    }
    return 0;
}

/* Evicts until `charge` more bytes fit in the budget. Returns 0 when they cannot (too large, or
 * the rest is pinned). Budget lock held. */
static int
make_room(cache_budget *b, size_t charge, cache_entry **victims)
{
    if (charge > b->limit) {
        return 0;
    }
    while (atomic_load_explicit(&b->used, memory_order_relaxed) > b->limit - charge) {
        if (!evict_one(b, victims)) {
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------ lookups */

/* A hit on a READY entry. Shard lock held. */
static void
hit_locked(cache__shard *sh, cache_entry *e)
{
    pin_locked(sh, e);
    unsigned f = atomic_load_explicit(&e->freq, memory_order_relaxed);
    if (f < FREQ_MAX) {
        atomic_store_explicit(&e->freq, (unsigned char)(f + 1), memory_order_relaxed);
    }
    count_locked(&sh->hits);
}

/* Waits for another caller's computation of `e` (PENDING). Called with the shard lock held;
 * returns with it dropped. */
static int
wait_locked(cache__shard *sh, cache_entry *e, cache_entry **out, tsr_err *err)
{
    atomic_fetch_add_explicit(&e->ref, CACHE__PIN, memory_order_relaxed); /* charge is 0 */
    count_locked(&sh->coalesced);
    while (e->state == CACHE__PENDING) {
        pthread_cond_wait(&sh->cond, &sh->mu);
    }
    if (e->state == CACHE__FAILED) {
        int code = e->err_code;
        if (e->err) {
            if (err) {
                *err = *e->err;
            }
        } else {
            tsr_err_set(err, code, "%s", tsr_status_message(code));
        }
        pthread_mutex_unlock(&sh->mu);
        cache_release(e);
        return code;
    }
    pthread_mutex_unlock(&sh->mu);
    *out = e;
    return TSR_OK;
}

int
cache_get(cache *c, const void *key, size_t keylen, cache_entry **out, tsr_err *err)
{
    int rc = check_key(c, key, keylen, err);
    if (rc != TSR_OK || !out) {
        return rc != TSR_OK ? rc : tsr_err_set(err, TSR_EINVAL, "cache_get: no output pointer");
    }
    uint64_t h = cache_hash(key, keylen, 0);
    cache__shard *sh = shard_of(c, h);
    pthread_mutex_lock(&sh->mu);
    cache_entry *e = shard_find(sh, h, key, keylen);
    if (e && e->state == CACHE__READY) {
        hit_locked(sh, e);
        pthread_mutex_unlock(&sh->mu);
        *out = e;
        return TSR_OK;
    }
    if (e) {
        return wait_locked(sh, e, out, err);
    }
    count_locked(&sh->misses);
    pthread_mutex_unlock(&sh->mu);
    return tsr_err_set(err, TSR_ENOTFOUND, "not in the %s cache", c->name);
}

int
cache_try_get(cache *c, const void *key, size_t keylen, cache_entry **out)
{
    if (check_key(c, key, keylen, NULL) != TSR_OK || !out) {
        return TSR_EINVAL;
    }
    uint64_t h = cache_hash(key, keylen, 0);
    cache__shard *sh = shard_of(c, h);
    pthread_mutex_lock(&sh->mu);
    cache_entry *e = shard_find(sh, h, key, keylen);
    if (!e || e->state != CACHE__READY) {
        pthread_mutex_unlock(&sh->mu);
        return TSR_ENOTFOUND;
    }
    pin_locked(sh, e);
    pthread_mutex_unlock(&sh->mu);
    *out = e;
    return TSR_OK;
}

/* The computation failed: unlink the entry so that a later call computes again, and hand the
 * error to the waiters. */
static void
flight_fail(cache__shard *sh, cache_entry *e, const tsr_err *cerr)
{
    tsr_err *copy = malloc(sizeof *copy);
    if (copy) {
        *copy = *cerr;
    }
    pthread_mutex_lock(&sh->mu);
    if (atomic_load_explicit(&e->ref, memory_order_relaxed) & CACHE__LINKED) {
        shard_unlink(sh, e);
        atomic_fetch_and_explicit(&e->ref, ~CACHE__LINKED, memory_order_acq_rel);
    }
    e->state = CACHE__FAILED;
    e->err_code = cerr->code;
    e->err = copy;
    count_locked(&sh->failures);
    pthread_cond_broadcast(&sh->cond);
    pthread_mutex_unlock(&sh->mu);
}

/* The computation succeeded: cache the value if it fits (evicting as needed), else hand it back
 * uncached; wake the waiters either way. The caller's pin stays. */
static void
flight_done(cache *c, cache__shard *sh, cache_entry *e, const cache_value *v)
{
    cache_budget *b = c->budget;
    cache_entry *victims = NULL;
    size_t charge = cache_charge(v->size, e->keylen);
    pthread_mutex_lock(&b->mu);
    /* Apart from its owner (this thread), only holders of the budget lock unlink a PENDING
     * entry, so the bit is stable here. */
    int linked = (atomic_load_explicit(&e->ref, memory_order_relaxed) & CACHE__LINKED) != 0;
    int room = linked && make_room(b, charge, &victims);
    pthread_mutex_lock(&sh->mu);
    e->val = *v;
    e->has_value = 1;
    if (room) {
        e->charge = charge;
        e->state = CACHE__READY;
        admit_locked(b, e);
        /* Pinned by this caller at least. */
        atomic_fetch_add_explicit(&sh->pinned_bytes, charge, memory_order_relaxed);
    } else {
        if (linked) {
            shard_unlink(sh, e);
            atomic_fetch_and_explicit(&e->ref, ~CACHE__LINKED, memory_order_acq_rel);
        }
        e->state = CACHE__DETACHED;
        count_locked(&c->uncached);
    }
    pthread_cond_broadcast(&sh->cond);
    pthread_mutex_unlock(&sh->mu);
    pthread_mutex_unlock(&b->mu);
    free_victims(victims);
}

int
cache_get_or_compute(cache *c, const void *key, size_t keylen, cache_compute_fn compute, void *user,
                     cache_entry **out, tsr_err *err)
{
    int rc = check_key(c, key, keylen, err);
    if (rc != TSR_OK) {
        return rc;
    }
    if (!compute || !out) {
        return tsr_err_set(err, TSR_EINVAL, "cache_get_or_compute: no compute or output");
    }
    uint64_t h = cache_hash(key, keylen, 0);
    cache__shard *sh = shard_of(c, h);
    pthread_mutex_lock(&sh->mu);
    cache_entry *e = shard_find(sh, h, key, keylen);
    if (e && e->state == CACHE__READY) {
        hit_locked(sh, e);
        pthread_mutex_unlock(&sh->mu);
        *out = e;
        return TSR_OK;
    }
    if (e) {
        return wait_locked(sh, e, out, err);
    }
    e = entry_new(c, h, key, keylen);
    if (!e) {
        pthread_mutex_unlock(&sh->mu);
        return tsr_err_set(err, TSR_ENOMEM, "cache %s: out of memory", c->name);
    }
    e->state = CACHE__PENDING;
    atomic_store_explicit(&e->ref, CACHE__LINKED | CACHE__PIN, memory_order_relaxed);
    shard_link(sh, e);
    count_locked(&sh->misses);
    pthread_mutex_unlock(&sh->mu);

    /* No lock is held while computing: the computation may take long and use other caches. */
    cache_value v = {0};
    tsr_err cerr = {0};
    rc = compute(key, keylen, user, &v, &cerr);
    if (rc != TSR_OK) {
        if (rc > 0) {
            rc = tsr_err_set(&cerr, TSR_EINTERNAL, "cache %s: compute returned %d", c->name, rc);
        } else if (cerr.code != rc || cerr.msg[0] == '\0') {
            if (cerr.msg[0] == '\0') {
                tsr_err_set(&cerr, rc, "%s", tsr_status_message(rc));
            }
            cerr.code = rc;
        }
        flight_fail(sh, e, &cerr);
        if (err) {
            *err = cerr;
        }
        cache_release(e);
        return rc;
    }
    flight_done(c, sh, e, &v);
    *out = e;
    return TSR_OK;
}

int
cache_put(cache *c, const void *key, size_t keylen, const cache_value *v, cache_entry **out,
          tsr_err *err)
{
    int rc = check_key(c, key, keylen, err);
    if (rc != TSR_OK) {
        return rc;
    }
    if (!v) {
        return tsr_err_set(err, TSR_EINVAL, "cache_put: no value");
    }
    cache_budget *b = c->budget;
    size_t charge = cache_charge(v->size, keylen);
    if (charge > b->limit) {
        return tsr_err_set(err, TSR_ELIMIT,
                           "a value of %zu bytes does not fit in the cache budget of %zu bytes",
                           v->size, b->limit);
    }
    uint64_t h = cache_hash(key, keylen, 0);
    cache__shard *sh = shard_of(c, h);
    cache_entry *e = entry_new(c, h, key, keylen);
    if (!e) {
        return tsr_err_set(err, TSR_ENOMEM, "cache %s: out of memory", c->name);
    }
    cache_entry *victims = NULL;
    pthread_mutex_lock(&b->mu);
    /* The old value goes first, so that its bytes count as room. */
    pthread_mutex_lock(&sh->mu);
    cache_entry *old = shard_find(sh, h, key, keylen);
    if (old) {
        if (old->state == CACHE__READY) {
            count_locked(&c->removals);
        }
        unlink_locked(b, sh, old, &victims);
    }
    pthread_mutex_unlock(&sh->mu);
    if (!make_room(b, charge, &victims)) {
        pthread_mutex_unlock(&b->mu);
        free_victims(victims);
        entry_free(e); /* holds no value yet: the caller keeps it */
        return tsr_err_set(err, TSR_ELIMIT,
                           "no room for %zu bytes in the %s cache: the rest of the budget is "
                           "pinned by readers",
                           charge, c->name);
    }
    pthread_mutex_lock(&sh->mu);
    /* Meanwhile a computation may have started for the key (that takes only the shard lock):
     * this value replaces it, and the computation will return its own uncached. */
    old = shard_find(sh, h, key, keylen);
    if (old) {
        assert(old->state == CACHE__PENDING);
        unlink_locked(b, sh, old, &victims);
    }
    e->val = *v;
    e->has_value = 1;
    e->charge = charge;
    e->state = CACHE__READY;
    atomic_store_explicit(&e->ref, CACHE__LINKED | (out ? CACHE__PIN : 0), memory_order_relaxed);
    shard_link(sh, e);
    admit_locked(b, e);
    if (out) {
        atomic_fetch_add_explicit(&sh->pinned_bytes, charge, memory_order_relaxed);
    }
    pthread_mutex_unlock(&sh->mu);
    pthread_mutex_unlock(&b->mu);
    free_victims(victims);
    if (out) {
        *out = e;
    }
    return TSR_OK;
}

int
cache_remove(cache *c, const void *key, size_t keylen)
{
    if (check_key(c, key, keylen, NULL) != TSR_OK) {
        return TSR_EINVAL;
    }
    cache_budget *b = c->budget;
    uint64_t h = cache_hash(key, keylen, 0);
    cache__shard *sh = shard_of(c, h);
    cache_entry *victims = NULL;
    pthread_mutex_lock(&b->mu);
    pthread_mutex_lock(&sh->mu);
    cache_entry *e = shard_find(sh, h, key, keylen);
    if (e) {
        if (e->state == CACHE__READY) {
            count_locked(&c->removals);
        }
        unlink_locked(b, sh, e, &victims);
    }
    pthread_mutex_unlock(&sh->mu);
    pthread_mutex_unlock(&b->mu);
    free_victims(victims);
    return e ? TSR_OK : TSR_ENOTFOUND;
}

void
cache_destroy(cache *c)
{
    if (!c) {
        return;
    }
    cache_budget *b = c->budget;
    pthread_mutex_lock(&b->pools_mu);
    for (cache **p = &b->pools; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    pthread_mutex_unlock(&b->pools_mu);

    cache_entry *victims = NULL;
    pthread_mutex_lock(&b->mu);
    for (unsigned i = 0; i < CACHE__SHARDS; i++) {
        cache__shard *sh = &c->shards[i];
        pthread_mutex_lock(&sh->mu);
        for (size_t j = 0; j < sh->nbuckets; j++) {
            while (sh->buckets[j]) {
                assert(sh->buckets[j]->state == CACHE__READY &&
                       "cache_destroy while a computation is in progress");
                unlink_locked(b, sh, sh->buckets[j], &victims);
            }
        }
        pthread_mutex_unlock(&sh->mu);
    }
    pthread_mutex_unlock(&b->mu);
    free_victims(victims);
    pool_unref(c);
}

/* ------------------------------------------------------------------ statistics */

void
cache_get_stats(const cache *c, cache_stats *out)
{
    memset(out, 0, sizeof *out);
    for (unsigned i = 0; i < CACHE__SHARDS; i++) {
        const cache__shard *sh = &c->shards[i];
        out->hits += atomic_load_explicit(&sh->hits, memory_order_relaxed);
        out->misses += atomic_load_explicit(&sh->misses, memory_order_relaxed);
        out->coalesced += atomic_load_explicit(&sh->coalesced, memory_order_relaxed);
        out->compute_failures += atomic_load_explicit(&sh->failures, memory_order_relaxed);
        out->pinned_bytes += atomic_load_explicit(&sh->pinned_bytes, memory_order_relaxed);
    }
    out->inserts = atomic_load_explicit(&c->inserts, memory_order_relaxed);
    out->evictions = atomic_load_explicit(&c->evictions, memory_order_relaxed);
    out->removals = atomic_load_explicit(&c->removals, memory_order_relaxed);
    out->uncached = atomic_load_explicit(&c->uncached, memory_order_relaxed);
    out->bytes = atomic_load_explicit(&c->bytes, memory_order_relaxed);
    out->entries = atomic_load_explicit(&c->entries, memory_order_relaxed);
}
