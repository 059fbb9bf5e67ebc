/* SPDX-License-Identifier: MIT */
/* cache_text.c: the statistics of a budget and its pools as JSON and as Prometheus text. One
 * table names every per-pool field once for both formats. */
#define _POSIX_C_SOURCE 200809L
#include "cache_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct field {
    const char *json; /* key in the JSON object of a pool */
    const char *prom; /* Prometheus metric name */
    const char *type; /* "counter" or "gauge" */
    const char *help;
    size_t off; /* offset of the uint64_t in cache_stats */
} field;

/* clang-format off */
#define F(json, prom, type, help, member) {json, prom, type, help, offsetof(cache_stats, member)}
/* clang-format on */

static const field k_fields[] = {
    F("hits", "tessera_cache_hits_total", "counter", "Lookups that found a ready value.", hits),
    F("misses", "tessera_cache_misses_total", "counter",
      "Lookups that found nothing (and computed, for get-or-compute).", misses),
    F("coalesced", "tessera_cache_coalesced_total", "counter",
      "Lookups that waited for another caller's computation of the same key.", coalesced),
    F("inserts", "tessera_cache_inserts_total", "counter", "Values added to the cache.", inserts),
    F("evictions", "tessera_cache_evictions_total", "counter", "Values evicted to make room.",
      evictions),
    F("removals", "tessera_cache_removals_total", "counter",
      "Values removed or replaced by their callers.", removals),
    F("compute_failures", "tessera_cache_compute_failures_total", "counter",
      "Computations that failed.", compute_failures),
    F("uncached", "tessera_cache_uncached_total", "counter",
      "Computed values handed back without being cached (too large or no unpinned room).",
      uncached),
    F("bytes", "tessera_cache_bytes", "gauge", "Bytes charged for the cached values.", bytes),
    F("entries", "tessera_cache_entries", "gauge", "Cached values.", entries),
    F("pinned_bytes", "tessera_cache_pinned_bytes", "gauge",
      "Bytes of cached values pinned by readers (not evictable).", pinned_bytes),
};
#define NFIELDS (sizeof k_fields / sizeof k_fields[0])

/* ------------------------------------------------------------------ growable string */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sb_printf(sbuf *s, const char *fmt, ...)
{
    if (s->oom) {
        return;
    }
    for (;;) {
        size_t room = s->cap - s->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(s->p ? s->p + s->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            s->oom = 1;
            return;
        }
        if ((size_t)n < room) {
            s->len += (size_t)n;
            return;
        }
        size_t cap = s->cap ? s->cap : 1024;
        while (cap - s->len <= (size_t)n) {
            cap *= 2;
        }
        char *p = realloc(s->p, cap);
        if (!p) {
            s->oom = 1;
            return;
        }
        s->p = p;
        s->cap = cap;
    }
}

static int
sb_finish(sbuf *s, char **out)
{
    if (s->oom || !s->p) {
        free(s->p);
        return TSR_ENOMEM;
    }
    *out = s->p;
    return TSR_OK;
}

/* ------------------------------------------------------------------ snapshot */

typedef struct snapshot {
    size_t limit, used;
    uint64_t pinned;
    size_t n;
    char (*names)[CACHE_NAME_MAX + 1];
    cache_stats *stats;
} snapshot;

static int
snapshot_take(const cache_budget *cb, snapshot *s)
{
    cache_budget *b = (cache_budget *)cb; /* only its pool-list lock is taken */
    memset(s, 0, sizeof *s);
    pthread_mutex_lock(&b->pools_mu);
    for (const cache *c = b->pools; c; c = c->next) {
        s->n++;
    }
    s->names = calloc(s->n ? s->n : 1, sizeof *s->names);
    s->stats = calloc(s->n ? s->n : 1, sizeof *s->stats);
    if (!s->names || !s->stats) {
        pthread_mutex_unlock(&b->pools_mu);
        free(s->names);
        free(s->stats);
        return TSR_ENOMEM;
    }
    size_t i = 0;
    for (const cache *c = b->pools; c; c = c->next, i++) {
        memcpy(s->names[i], c->name, sizeof s->names[i]);
        cache_get_stats(c, &s->stats[i]);
        s->pinned += s->stats[i].pinned_bytes;
    }
    pthread_mutex_unlock(&b->pools_mu);
    s->limit = cache_budget_limit(b);
    s->used = cache_budget_used(b);
    return TSR_OK;
}

static void
snapshot_free(snapshot *s)
{
    free(s->names);
    free(s->stats);
}

static uint64_t
stat_at(const cache_stats *st, size_t off)
{
    uint64_t v;
    memcpy(&v, (const char *)st + off, sizeof v);
    return v;
}

/* ------------------------------------------------------------------ formats */

int
cache_stats_json(const cache_budget *b, char **out)
{
    if (!b || !out) {
        return TSR_EINVAL;
    }
    snapshot s;
    if (snapshot_take(b, &s) != TSR_OK) {
        return TSR_ENOMEM;
    }
    sbuf sb = {0};
    sb_printf(&sb,
              "{\"budget_bytes\":%zu,\"used_bytes\":%zu,\"pinned_bytes\":%" PRIu64 ",\"caches\":[",
              s.limit, s.used, s.pinned);
    for (size_t i = 0; i < s.n; i++) {
        /* Pool names are restricted to [A-Za-z0-9_.-]: nothing to escape. */
        sb_printf(&sb, "%s{\"name\":\"%s\"", i ? "," : "", s.names[i]);
        for (size_t f = 0; f < NFIELDS; f++) {
            sb_printf(&sb, ",\"%s\":%" PRIu64, k_fields[f].json,
                      stat_at(&s.stats[i], k_fields[f].off));
        }
        sb_printf(&sb, "}");
    }
    sb_printf(&sb, "]}");
    snapshot_free(&s);
    return sb_finish(&sb, out);
}

int
cache_stats_prometheus(const cache_budget *b, char **out)
{
    if (!b || !out) {
        return TSR_EINVAL;
    }
    snapshot s;
    if (snapshot_take(b, &s) != TSR_OK) {
        return TSR_ENOMEM;
    }
    sbuf sb = {0};
    sb_printf(&sb,
              "# HELP tessera_cache_budget_bytes Memory budget shared by every cache.\n"
              "# TYPE tessera_cache_budget_bytes gauge\n"
              "tessera_cache_budget_bytes %zu\n"
              "# HELP tessera_cache_used_bytes Bytes charged for all cached values.\n"
              "# TYPE tessera_cache_used_bytes gauge\n"
              "tessera_cache_used_bytes %zu\n",
              s.limit, s.used);
    for (size_t f = 0; f < NFIELDS; f++) {
        const field *fd = &k_fields[f];
        sb_printf(&sb, "# HELP %s %s\n# TYPE %s %s\n", fd->prom, fd->help, fd->prom, fd->type);
        for (size_t i = 0; i < s.n; i++) {
            sb_printf(&sb, "%s{cache=\"%s\"} %" PRIu64 "\n", fd->prom, s.names[i],
                      stat_at(&s.stats[i], fd->off));
        }
    }
    snapshot_free(&s);
    return sb_finish(&sb, out);
}

void
cache_text_free(char *text)
{
    free(text);
}
