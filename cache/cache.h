/* SPDX-License-Identifier: MIT */
/* cache.h: byte-budgeted, scan-resistant, single-flight caches of opaque values (tsr_cache).
 *
 * One `cache_budget` holds the memory budget (`--cache-mb`). Several named caches ("pools":
 * decoded frames, downscaled levels, encoded tiles, MPR volumes) are created on it; each pool
 * has its own key space and statistics, and all of them compete for the one budget.
 *
 * Accounting. Every cached value is charged cache_charge(value size, key length) bytes: the
 * size the caller declares for the value plus the entry's own bookkeeping. The sum of the
 * charges of all cached values never exceeds the budget, at any instant and under any
 * concurrency (admission is checked under the budget's lock). A value that is pinned by a
 * handle cannot be evicted; when the rest of the budget is pinned, a newly computed value is
 * handed to its caller *uncached* (see cache_get_or_compute) instead of overshooting the
 * budget. So the memory in use is at most the budget plus the values handed out uncached and
 * still held; `pinned_bytes` in the statistics shows how much of the budget is held by readers.
 *
 * Eviction is S3-FIFO over all pools together (one global policy, no per-pool shares, so an
 * idle pool's memory goes to a busy one): new values enter a small FIFO (10% of the budget);
 * a value read at least twice while there moves to the main FIFO, the others leave and their
 * key hashes are remembered in a ghost table; a value whose key is in the ghost table enters
 * the main FIFO directly. The main FIFO gives each value up to three second chances (a 2-bit
 * read counter). Reading one long series once only cycles the small FIFO, so what is read
 * repeatedly (what is on screen) stays.
 *
 * Concurrency. Every function is thread-safe unless its comment says otherwise. Lookups take
 * one of 64 per-pool shard locks chosen by the key's hash, never a global lock; inserts and
 * evictions also take the budget's lock (they follow a miss, i.e. a decode or an encode).
 * Handles are reference-counted: an entry that is evicted, removed or replaced while pinned
 * stays valid and is destroyed at its last cache_release.
 *
 * Keys are opaque byte strings (at most CACHE_KEY_MAX bytes) compared in full; values are
 * opaque: a pointer, a size and a destroy callback. Status codes are tsr_status values; an
 * out-parameter is written only on success. */
#ifndef TSR_CACHE_H
#define TSR_CACHE_H

#include "tsr_base.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The longest key accepted (longer keys are TSR_EINVAL). */
#define CACHE_KEY_MAX 4096

/* The longest pool name; names are 1..CACHE_NAME_MAX characters from [A-Za-z0-9_.-], so that
 * they need no escaping in JSON or Prometheus labels. */
#define CACHE_NAME_MAX 63

typedef struct cache_budget cache_budget; /* one memory budget shared by several pools */
typedef struct cache cache;               /* one named pool (key space + statistics) */
typedef struct cache_entry cache_entry;   /* a pinned handle on one value */

/* Destroys a value: called exactly once per value the cache took over, on whichever thread drops
 * the last reference (an evicting insert, cache_release, cache_remove, cache_destroy), with no
 * cache lock held, so it may call cache functions (e.g. release handles the value holds). */
typedef void (*cache_destroy_fn)(void *data, void *ctx);

/* An opaque value. `size` is the memory the value really holds (e.g. pixel buffer + struct),
 * which the budget is charged for. `destroy` (may be NULL: nothing to free) receives `data` and
 * `ctx`. */
typedef struct cache_value {
    void *data;
    size_t size;
    cache_destroy_fn destroy;
    void *ctx;
} cache_value;

/* Computes the value for a key, for cache_get_or_compute. Returns TSR_OK after filling *out
 * (the cache takes the value over: it will call out->destroy, even when it hands the value back
 * uncached), or a negative status after describing the failure in `err` (never NULL); on
 * failure *out is ignored and must hold nothing that needs freeing. Runs on the calling thread
 * with no cache lock held. It may use any cache, but must not wait for its own key in its own
 * pool (cache_get / cache_get_or_compute of that key would wait for itself forever). */
typedef int (*cache_compute_fn)(const void *key, size_t keylen, void *user, cache_value *out,
                                tsr_err *err);

/* Statistics of one pool. Counters only grow; gauges are current values. Lookups are counted by
 * cache_get and cache_get_or_compute (cache_try_get is a silent peek):
 * lookups = hits + misses + coalesced. */
typedef struct cache_stats {
    uint64_t hits;             /* found a ready value */
    uint64_t misses;           /* found nothing (cache_get_or_compute then computed) */
    uint64_t coalesced;        /* waited for another caller's computation of the same key */
    uint64_t inserts;          /* values that entered the cache (computed or cache_put) */
    uint64_t evictions;        /* values dropped to make room */
    uint64_t removals;         /* values dropped by cache_remove or replaced by cache_put */
    uint64_t compute_failures; /* computations that failed (each counted once, not per waiter) */
    uint64_t uncached;         /* computed values handed back without being cached */
    uint64_t bytes;            /* gauge: bytes charged for this pool's cached values */
    uint64_t entries;          /* gauge: cached values */
    uint64_t pinned_bytes;     /* gauge: charged bytes of cached values that handles pin */
} cache_stats;

/* ------------------------------------------------------------------ budget */

/* Creates a budget of `limit_bytes` (0 is allowed: nothing is ever cached, but single-flight
 * still coalesces concurrent computations). On success *out receives the budget, owned by the
 * caller (cache_budget_destroy). Fails with TSR_ENOMEM; *out is then unchanged and `err` (may be
 * NULL) says why. Thread-safe. */
int cache_budget_create(size_t limit_bytes, cache_budget **out, tsr_err *err);

/* Destroys a budget. Every pool created on it must have been destroyed first. NULL: no-op. */
void cache_budget_destroy(cache_budget *b);

/* The budget's limit, and the bytes currently charged for all its pools' cached values (never
 * more than the limit). Lock-free. */
size_t cache_budget_limit(const cache_budget *b);
size_t cache_budget_used(const cache_budget *b);

/* The bytes charged for a value of `value_size` bytes under a key of `keylen` bytes: the value,
 * the entry with its key copy, and its share of the hash and ghost tables (about 160 + keylen
 * bytes of bookkeeping on 64-bit hosts), saturating at SIZE_MAX. Pure function. */
size_t cache_charge(size_t value_size, size_t keylen);

/* ------------------------------------------------------------------ pools */

/* Creates a pool named `name` (borrowed; copied) on budget `b`. On success *out receives the
 * pool, owned by the caller (cache_destroy). TSR_EINVAL for a bad or duplicate name, TSR_ENOMEM;
 * on failure *out is unchanged and `err` (may be NULL) says why. Thread-safe. */
int cache_create(cache_budget *b, const char *name, cache **out, tsr_err *err);

/* Destroys a pool: its cached values are dropped (destroyed now if unpinned). Handles still out
 * stay valid and may be released later; their values are destroyed at their last release. Must
 * not run concurrently with any other call on this pool or its handles (including
 * cache_release). NULL: no-op. */
void cache_destroy(cache *c);

/* The pool's name, borrowed for the pool's lifetime. */
const char *cache_name(const cache *c);

/* ------------------------------------------------------------------ lookups */

/* Looks a key up. A ready value: *out receives a new handle (TSR_OK). A value being computed by
 * another caller: waits for it, then returns the same value, or the computation's error (code
 * and message). Nothing: TSR_ENOTFOUND. TSR_EINVAL for bad arguments. The caller owns the
 * handle and must release it with cache_release. Thread-safe; may block on a computation. */
int cache_get(cache *c, const void *key, size_t keylen, cache_entry **out, tsr_err *err);

/* Non-blocking peek, for prefetchers: a ready value gives TSR_OK and a new handle in *out (the
 * caller releases it); a value absent or still being computed gives TSR_ENOTFOUND at once. It
 * counts neither as a hit nor as a miss and does not raise the value's read frequency, so that
 * probing ahead does not make values look popular. Thread-safe. */
int cache_try_get(cache *c, const void *key, size_t keylen, cache_entry **out);

/* Gets the value of a key, computing it with `compute(key, keylen, user, ...)` on a miss.
 * Single-flight: concurrent callers for one key run one computation; the others wait and get
 * the same entry (the same handle pointer and data), or the same error. A failed computation
 * caches nothing, so a later call computes again.
 *
 * On TSR_OK *out receives a new handle owned by the caller (cache_release). The value may have
 * been handed back *uncached* ("computed but not cached"): when its charge is larger than the
 * whole budget, when the rest of the budget is pinned, or when the key was removed or replaced
 * while it was being computed. The handle works the same (cache_entry_cached tells which); the
 * value is destroyed at its last release, and the pool's `uncached` counter counts these.
 * On failure (the computation's status and message, TSR_ENOMEM, TSR_EINVAL) *out is unchanged
 * and `err` (may be NULL) says why. `compute` is not called when the value is found. Thread-safe;
 * may block on another caller's computation. */
int cache_get_or_compute(cache *c, const void *key, size_t keylen, cache_compute_fn compute,
                         void *user, cache_entry **out, tsr_err *err);

/* Inserts or replaces the value of a key. On TSR_OK the value is consumed (the cache calls
 * v->destroy at the end) and, if `out` is not NULL, *out receives a handle on the new entry. A
 * replaced value stays valid for the handles that pin it; a computation in progress for the key
 * then returns its value uncached. On failure the value is NOT consumed (the caller still owns
 * it): TSR_ELIMIT when its charge exceeds the whole budget or when the rest of the budget is
 * pinned, TSR_EINVAL, TSR_ENOMEM; `err` (may be NULL) says why. Thread-safe. */
int cache_put(cache *c, const void *key, size_t keylen, const cache_value *v, cache_entry **out,
              tsr_err *err);

/* Removes a key: its cached value is dropped (destroyed now, or at the last release of the
 * handles that pin it); a computation in progress for it returns its value uncached. Returns
 * TSR_OK when something was removed, TSR_ENOTFOUND otherwise. Thread-safe. */
int cache_remove(cache *c, const void *key, size_t keylen);

/* ------------------------------------------------------------------ handles */

/* The value's data and declared size, valid until the handle is released. The data is shared
 * with other readers: treat it as read-only unless the value synchronises itself. */
void *cache_entry_data(const cache_entry *e);
size_t cache_entry_size(const cache_entry *e);

/* 1 while the value is in the cache, 0 once it is not (handed back uncached, or since evicted,
 * removed or replaced; a 0 never turns back into 1). */
int cache_entry_cached(const cache_entry *e);

/* Drops a handle. The value is destroyed when it is no longer cached and this was its last
 * handle. Lock-free; NULL: no-op. */
void cache_release(cache_entry *e);

/* ------------------------------------------------------------------ statistics */

/* Copies a pool's statistics into *out. Counters are read without locks, so under concurrent
 * use they may be a few operations apart from one another. Thread-safe. */
void cache_get_stats(const cache *c, cache_stats *out);

/* The budget and every pool's statistics as one JSON object:
 * {"budget_bytes":N,"used_bytes":N,"pinned_bytes":N,"caches":[{"name":"frames","hits":N,...}]}
 * (the cache_stats fields, pools in creation order). On TSR_OK *out receives a NUL-terminated
 * string owned by the caller (cache_text_free); TSR_ENOMEM leaves *out unchanged. Thread-safe. */
int cache_stats_json(const cache_budget *b, char **out);

/* The same in the Prometheus text exposition format (version 0.0.4): for each metric a `# HELP`
 * and a `# TYPE` line, then one sample per pool, e.g.
 * `tessera_cache_hits_total{cache="frames"} 123`; counters end in _total; gauges are
 * tessera_cache_bytes, tessera_cache_entries, tessera_cache_pinned_bytes, and per budget
 * tessera_cache_budget_bytes and tessera_cache_used_bytes. Ownership as cache_stats_json. */
int cache_stats_prometheus(const cache_budget *b, char **out);

/* Frees a string from cache_stats_json or cache_stats_prometheus. NULL: no-op. */
void cache_text_free(char *text);

/* ------------------------------------------------------------------ hashing */

/* A fast 64-bit hash of `len` bytes (xxHash64-style word mixing with a murmur3 finaliser), the
 * same on every platform for the same bytes and seed. The cache hashes keys with seed 0;
 * callers may use it for ETags and digests of render parameters. Pure function. */
uint64_t cache_hash(const void *data, size_t len, uint64_t seed);

#ifdef __cplusplus
}
#endif

#endif
