/* SPDX-License-Identifier: MIT */
/* bench_access.c: what checking a credential costs. Every request that carries one makes the
 * server read the index (a token, or a session joined with its share link), so that a
 * revocation on any node counts on the next request everywhere; this puts a number on that
 * read, next to the whole request it is part of.
 *
 *   bench_access [--n N] [--runs R] [--threads T]
 *
 * A store in a temporary folder with 1,000 user sessions, 1,000 API tokens and 1,000 share
 * sessions; then R runs of N lookups of each kind, on T threads at once (each looking up
 * its own random credentials), median of the runs in microseconds per lookup and lookups per
 * second. The store is the embedded SQLite one, as `tessera serve` opens it. */
#define _XOPEN_SOURCE 700
#define BENCH_NAME "bench_access"
#include "access.h"
#include "bench_util.h"
#include "store.h"

#include <ftw.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#define N_CRED 1000

typedef enum kind { K_TOKEN, K_USER_SESSION, K_SHARE_SESSION, K_COUNT } kind;
static const char *const k_names[K_COUNT] = {"API token (access_token_check)",
                                              "user session (access_session_get)",
                                              "share session (access_session_get)"};

static store *g_st;
static char g_tok[K_COUNT][N_CRED][ACCESS_TOKEN_LEN + 1];
static int g_n = 20000;

typedef struct job {
    kind k;
    unsigned seed;
    int failures;
} job;

static void *
run(void *arg)
{
    job *j = arg;
    tsr_err err = {0};
    for (int i = 0; i < g_n; i++) {
        const char *t = g_tok[j->k][rand_r(&j->seed) % N_CRED];
        int rc;
        if (j->k == K_TOKEN) {
            access_token out;
            rc = access_token_check(g_st, t, &out, &err);
        } else {
            access_principal out;
            rc = access_session_get(g_st, t, &out, &err);
        }
        j->failures += rc != TSR_OK;
    }
    return NULL;
}

static int
rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int
main(int argc, char **argv)
{
    int runs = 7, threads = 1;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--n") == 0) {
            g_n = atoi(argv[++i]);
        } else if (i + 1 < argc && strcmp(argv[i], "--runs") == 0) {
            runs = atoi(argv[++i]);
        } else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0) {
            threads = atoi(argv[++i]);
        } else {
            die("usage: bench_access [--n N] [--runs R] [--threads T]");
        }
    }
    if (g_n < 1 || runs < 1 || threads < 1 || threads > 64) {
        die("--n, --runs and --threads must be positive (threads at most 64)");
    }
    char dir[] = "/tmp/tsr-bench-access-XXXXXX";
    if (!mkdtemp(dir)) {
        die("mkdtemp failed");
    }
    store_opts o = {0};
    o.dir = dir;
    tsr_err err = {0};
    if (store_open(&o, &g_st, &err) != TSR_OK) {
        die("store_open: %s", err.msg);
    }
    /* one user (Argon2id hashing is the cost of a login, not of a request) with N_CRED sessions */
    if (access_user_put(g_st, "bench", "correct horse battery staple", ACCESS_READER, 0, &err) !=
        TSR_OK) {
        die("access_user_put: %s", err.msg);
    }
    for (int i = 0; i < N_CRED; i++) {
        char name[32];
        snprintf(name, sizeof name, "user%04d", i);
        access_token t;
        access_share sh;
        memset(&sh, 0, sizeof sh);
        snprintf(sh.study, sizeof sh.study, "1.2.3.%d", i);
        snprintf(sh.created_by, sizeof sh.created_by, "user:%s", name);
        sh.expires = time(NULL) + 3600;
        char link[ACCESS_TOKEN_LEN + 1];
        int tries = 0;
        if (access_session_create_user(g_st, "bench", 3600, g_tok[K_USER_SESSION][i], &err) !=
                TSR_OK ||
            access_token_create(g_st, name, ACCESS_READER, "bench", &t, g_tok[K_TOKEN][i],
                                &err) != TSR_OK ||
            access_share_create(g_st, &sh, NULL, link, &err) != TSR_OK ||
            access_share_open(g_st, link, NULL, 3600, &sh, &tries, g_tok[K_SHARE_SESSION][i],
                              &err) != TSR_OK) {
            die("set-up %d: %s", i, err.msg);
        }
    }
    printf("bench_access: %d lookups per run, %d run(s), %d thread(s), %d credentials of each "
           "kind\n\n",
           g_n, runs, threads, N_CRED);
    printf("%-38s %12s %14s\n", "lookup", "median us", "lookups/s");
    double *t = malloc(sizeof *t * (size_t)runs);
    job *jobs = calloc((size_t)threads, sizeof *jobs);
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    if (!t || !jobs || !th) {
        die("out of memory");
    }
    for (int k = 0; k < K_COUNT; k++) {
        int failures = 0;
        for (int r = 0; r < runs; r++) {
            double t0 = now_s();
            for (int i = 0; i < threads; i++) {
                jobs[i] = (job){.k = (kind)k, .seed = (unsigned)(r * 131 + i * 7 + k)};
                if (pthread_create(&th[i], NULL, run, &jobs[i]) != 0) {
                    die("pthread_create failed");
                }
            }
            for (int i = 0; i < threads; i++) {
                pthread_join(th[i], NULL);
                failures += jobs[i].failures;
            }
            t[r] = now_s() - t0;
        }
        if (failures) {
            die("%s: %d lookups failed", k_names[k], failures);
        }
        qsort(t, (size_t)runs, sizeof *t, cmp_double);
        double med = pct(t, (size_t)runs, 0.5);
        /* per lookup as one thread sees it; throughput over all threads */
        printf("%-38s %12.2f %14.0f\n", k_names[k], med / g_n * 1e6,
               (double)g_n * threads / med);
    }
    free(t);
    free(jobs);
    free(th);
    store_close(g_st);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
