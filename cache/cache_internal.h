/* SPDX-License-Identifier: MIT */
/* cache_internal.h: the structures shared by cache.c (entries, shards, eviction) and
 * cache_text.c (JSON and Prometheus statistics). Not part of the public API.
 *
 * Locks, in the only order they are ever nested:
 *   1. cache_budget.mu   the S3-FIFO queues, the ghost table, admission and the byte gauges;
 *                        taken by inserts, removals and evictions, never by a hit.
 *   2. cache__shard.mu   one shard's hash chains, entry states and lookup counters; a lookup
 *                        takes only this lock. An evictor holding 1 takes the shard lock of
 *                        its victim, one shard at a time.
 * cache_budget.pools_mu (the list of pools) is never nested with either.
 * An entry's reference word and read frequency are atomics, so cache_release takes no lock. */
#ifndef TSR_CACHE_INTERNAL_H
#define TSR_CACHE_INTERNAL_H

#include "cache.h"

#include <pthread.h>
#include <stdatomic.h>

#define CACHE__SHARD_BITS 6
#define CACHE__SHARDS     (1u << CACHE__SHARD_BITS)

/* Entry states (under the shard lock). */
enum { CACHE__PENDING, CACHE__READY, CACHE__FAILED, CACHE__DETACHED };

/* Which FIFO an entry is in (under the budget lock). */
enum { CACHE__Q_NONE, CACHE__Q_SMALL, CACHE__Q_MAIN };

/* The reference word: bit 0 says the entry is linked in its shard's hash table (the cache's own
 * reference); the rest counts pins (handles), in units of CACHE__PIN. The entry is freed when
 * the word drops to 0. */
#define CACHE__LINKED ((size_t)1)
#define CACHE__PIN    ((size_t)2)

struct cache_entry {
    cache_entry *hnext;         /* hash chain (shard lock) */
    cache_entry *qprev, *qnext; /* S3-FIFO queue (budget lock); qnext also chains victims */
    cache *pool;
    uint64_t hash;
    atomic_size_t ref;
    atomic_uchar freq;   /* 0..3, raised by hits, lowered by the main FIFO's second chances */
    unsigned char state; /* CACHE__PENDING... */
    unsigned char queue; /* CACHE__Q_... */
    unsigned char has_value;
    int err_code; /* CACHE__FAILED: the computation's status ... */
    tsr_err *err; /* ... and message for the waiters (NULL if it could not be allocated) */
    cache_value val;
    size_t charge; /* bytes charged to the budget; set when the entry becomes READY */
    size_t keylen;
    unsigned char key[];
};

typedef struct cache__shard {
    _Alignas(64) pthread_mutex_t mu; /* own cache line: shards are taken by different threads */
    pthread_cond_t cond;             /* broadcast when a computation in this shard ends */
    cache_entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
    /* Written under mu (so plain load+store suffices); atomic so that stats need no lock. */
    atomic_uint_least64_t hits, misses, coalesced, failures;
    /* Also lowered by cache_release without the lock. */
    atomic_size_t pinned_bytes;
} cache__shard;

typedef struct cache__queue {
    cache_entry *head, *tail; /* head = oldest */
    size_t count, bytes;
} cache__queue;

typedef struct cache__ghost_slot {
    uint64_t hash;
    uint64_t seq; /* 0 = empty */
} cache__ghost_slot;

struct cache {
    cache__shard shards[CACHE__SHARDS];
    cache_budget *budget;
    cache *next; /* the budget's pool list, in creation order (pools_mu) */
    char name[CACHE_NAME_MAX + 1];
    uint64_t salt;      /* mixed into ghost hashes so pools do not share ghosts */
    atomic_size_t refs; /* 1 while not destroyed + 1 per allocated entry */
    /* Written under the budget lock; atomic for lock-free stats. */
    atomic_uint_least64_t inserts, evictions, removals, uncached;
    atomic_size_t bytes, entries;
};

struct cache_budget {
    pthread_mutex_t mu;
    size_t limit;
    atomic_size_t used; /* written under mu, read anywhere */
    cache__queue small, main;
    cache__ghost_slot *ghost;
    size_t ghost_mask;
    uint64_t ghost_seq;
    pthread_mutex_t pools_mu;
    cache *pools;
    uint64_t pool_serial;
};

#endif
