/* SPDX-License-Identifier: MIT */
/* test_pool.c: the render pool: jobs run on pool threads and return their value, interactive
 * jobs overtake queued prefetch jobs, a full prefetch queue drops work, and destroying the pool
 * frees what was never run. */
#define _GNU_SOURCE
#include "http_internal.h"
#include "tsr_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

static int
return_seven(void *user)
{
    *(pthread_t *)user = pthread_self();
    return 7;
}

static void
runs_on_a_pool_thread(void **state)
{
    (void)state;
    http_pool *p = NULL;
    assert_int_equal(http__pool_create(2, 8, &p, NULL), TSR_OK);
    pthread_t who = pthread_self();
    assert_int_equal(http__pool_run(p, return_seven, &who), 7);
    assert_false(pthread_equal(who, pthread_self()));
    http__pool_destroy(p);
}

/* A gate that blocks the only worker until opened, so the queue order can be observed. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open, entered;
} gate;

static int
wait_gate(void *user)
{
    gate *g = user;
    pthread_mutex_lock(&g->mu);
    g->entered = 1;
    pthread_cond_broadcast(&g->cv);
    while (!g->open) {
        pthread_cond_wait(&g->cv, &g->mu);
    }
    pthread_mutex_unlock(&g->mu);
    return 0;
}

typedef struct order {
    atomic_int next;
    int seen[8];
} order;

typedef struct tagged {
    order *o;
    int tag;
} tagged;

static int
record(void *user)
{
    tagged *t = user;
    int i = atomic_fetch_add(&t->o->next, 1);
    if (i < 8) {
        t->o->seen[i] = t->tag;
    }
    return 0;
}

static void
noop_free(void *p)
{
    (void)p;
}

typedef struct runner {
    http_pool *p;
    tagged *t;
} runner;

static void *
run_interactive(void *arg)
{
    runner *r = arg;
    http__pool_run(r->p, record, r->t);
    return NULL;
}

static void *
run_gate(void *arg)
{
    runner *r = arg;
    http__pool_run(r->p, wait_gate, (void *)r->t);
    return NULL;
}

static void
interactive_overtakes_prefetch(void **state)
{
    (void)state;
    http_pool *p = NULL;
    assert_int_equal(http__pool_create(1, 8, &p, NULL), TSR_OK);
    gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    runner rg = {p, (tagged *)&g};
    pthread_t tg;
    pthread_create(&tg, NULL, run_gate, &rg);
    pthread_mutex_lock(&g.mu);
    while (!g.entered) {
        pthread_cond_wait(&g.cv, &g.mu);
    }
    pthread_mutex_unlock(&g.mu);

    /* the worker is busy: queue two prefetch jobs, then one interactive job */
    order o = {0};
    tagged pre1 = {&o, 1}, pre2 = {&o, 2}, inter = {&o, 9};
    assert_int_equal(http__pool_prefetch(p, record, &pre1, noop_free), 0);
    assert_int_equal(http__pool_prefetch(p, record, &pre2, noop_free), 0);
    runner ri = {p, &inter};
    pthread_t ti;
    pthread_create(&ti, NULL, run_interactive, &ri);
    usleep(50000); /* let it queue */
    pthread_mutex_lock(&g.mu);
    g.open = 1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    pthread_join(tg, NULL);
    pthread_join(ti, NULL);
    for (int i = 0; i < 500 && atomic_load(&o.next) < 3; i++) {
        usleep(10000); /* the prefetch jobs run after the interactive one */
    }
    http__pool_destroy(p);
    assert_int_equal(atomic_load(&o.next), 3);
    assert_int_equal(o.seen[0], 9);
    assert_int_equal(o.seen[1], 1);
    assert_int_equal(o.seen[2], 2);
}

static atomic_int g_freed;

static void
count_free(void *p)
{
    (void)p;
    atomic_fetch_add(&g_freed, 1);
}

static void
full_prefetch_queue_drops_and_destroy_frees(void **state)
{
    (void)state;
    http_pool *p = NULL;
    assert_int_equal(http__pool_create(1, 2, &p, NULL), TSR_OK);
    gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    runner rg = {p, (tagged *)&g};
    pthread_t tg;
    pthread_create(&tg, NULL, run_gate, &rg);
    pthread_mutex_lock(&g.mu);
    while (!g.entered) {
        pthread_cond_wait(&g.cv, &g.mu);
    }
    pthread_mutex_unlock(&g.mu);
    order o = {0};
    tagged t = {&o, 1};
    atomic_store(&g_freed, 0);
    assert_int_equal(http__pool_prefetch(p, record, &t, count_free), 0);
    assert_int_equal(http__pool_prefetch(p, record, &t, count_free), 0);
    assert_int_equal(http__pool_prefetch(p, record, &t, count_free), -1); /* full: dropped */
    /* open the gate from another thread after destroy has started: queued prefetch is freed,
     * not run */
    pthread_mutex_lock(&g.mu);
    g.open = 1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    pthread_join(tg, NULL);
    http__pool_destroy(p);
    /* every accepted job was either run (and freed) or freed unrun: exactly two frees */
    assert_int_equal(atomic_load(&g_freed), 2);
}

TSR_TEST_MAIN(cmocka_unit_test(runs_on_a_pool_thread), cmocka_unit_test(interactive_overtakes_prefetch),
              cmocka_unit_test(full_prefetch_queue_drops_and_destroy_frees))
