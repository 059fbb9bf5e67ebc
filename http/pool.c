/* SPDX-License-Identifier: MIT */
/* pool.c: the render pool. Decoding, rendering and encoding run on a fixed set of threads, one
 * per core, separate from CivetWeb's connection threads (which may be many and mostly wait on
 * the network). Two queues: interactive work, which a person waits for, always goes first;
 * prefetch work (decoding the neighbours of what is on screen) runs only when no interactive job
 * waits, and is dropped when its queue is full, so it can never delay a click. */
#define _GNU_SOURCE
#include "http_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct job {
    http__job_fn fn;
    void *user;
    int done;
    int rc;
    struct job *next;
    int owned; /* prefetch jobs are freed by the pool */
    void (*free_user)(void *user);
    pthread_cond_t cv; /* interactive jobs: signalled when done (only its waiter sleeps on it) */
} job;

struct http_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;  /* a job was queued, or stop */
    job *hi_head, *hi_tail, *lo_head, *lo_tail;
    int n_lo, max_lo;
    int stop;
    int n_threads;
    pthread_t *threads;
};

static job *
pop(job **head, job **tail)
{
    job *j = *head;
    if (j) {
        *head = j->next;
        if (!*head) {
            *tail = NULL;
        }
    }
    return j;
}

static void *
worker(void *arg)
{
    http_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && !p->hi_head && !p->lo_head) {
            pthread_cond_wait(&p->work, &p->mu);
        }
        job *j = pop(&p->hi_head, &p->hi_tail);
        if (!j) {
            j = pop(&p->lo_head, &p->lo_tail);
            if (j) {
                p->n_lo--;
            }
        }
        if (!j) {
            break; /* stop, and nothing left */
        }
        pthread_mutex_unlock(&p->mu);
        int rc = j->fn(j->user);
        pthread_mutex_lock(&p->mu);
        if (j->owned) {
            if (j->free_user) {
                j->free_user(j->user);
            }
            free(j);
        } else {
            j->rc = rc;
            j->done = 1;
            /* Each waiter sleeps on its own job's condition: one shared condition broadcast on
             * every completion woke all waiting connection threads for one to proceed, which
             * cost about a tenth of the CPU at 16 concurrent requests. */
            pthread_cond_signal(&j->cv);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int
http__pool_create(int threads, int max_prefetch, http_pool **out, tsr_err *err)
{
    http_pool *p = calloc(1, sizeof *p);
    if (!p) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 2;
    }
    p->max_lo = max_prefetch > 0 ? max_prefetch : 64;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    p->threads = calloc((size_t)threads, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    /* 8 MiB stacks: decoders (OpenJPEG, GDCM) need more than CivetWeb's 100 KiB */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, (size_t)8 << 20);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], &attr, worker, p) != 0) {
            break;
        }
        p->n_threads++;
    }
    pthread_attr_destroy(&attr);
    if (p->n_threads == 0) {
        free(p->threads);
        free(p);
        return tsr_err_set(err, TSR_EINTERNAL, "cannot start the render pool");
    }
    *out = p;
    return TSR_OK;
}

void
http__pool_destroy(http_pool *p)
{
    if (!p) {
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    /* queued prefetch is not worth finishing */
    job *j;
    while ((j = pop(&p->lo_head, &p->lo_tail)) != NULL) {
        if (j->free_user) {
            j->free_user(j->user);
        }
        free(j);
    }
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads; i++) {
        pthread_join(p->threads[i], NULL);
    }
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    free(p);
}

int
http__pool_run(http_pool *p, http__job_fn fn, void *user)
{
    job j;
    memset(&j, 0, sizeof j);
    j.fn = fn;
    j.user = user;
    pthread_mutex_lock(&p->mu);
    if (p->stop) {
        pthread_mutex_unlock(&p->mu);
        return fn(user);
    }
    pthread_cond_init(&j.cv, NULL);
    if (p->hi_tail) {
        p->hi_tail->next = &j;
    } else {
        p->hi_head = &j;
    }
    p->hi_tail = &j;
    pthread_cond_signal(&p->work);
    while (!j.done) {
        pthread_cond_wait(&j.cv, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    pthread_cond_destroy(&j.cv);
    return j.rc;
}

int
http__pool_prefetch(http_pool *p, http__job_fn fn, void *user, void (*free_user)(void *))
{
    job *j = calloc(1, sizeof *j);
    if (!j) {
        return -1;
    }
    j->fn = fn;
    j->user = user;
    j->owned = 1;
    j->free_user = free_user;
    pthread_mutex_lock(&p->mu);
    if (p->stop || p->n_lo >= p->max_lo) {
        pthread_mutex_unlock(&p->mu);
        free(j);
        return -1; /* dropped: the caller frees `user` */
    }
    if (p->lo_tail) {
        p->lo_tail->next = j;
    } else {
        p->lo_head = j;
    }
    p->lo_tail = j;
    p->n_lo++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
    return 0;
}
