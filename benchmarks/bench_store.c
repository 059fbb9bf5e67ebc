/* SPDX-License-Identifier: MIT */
/* bench_store.c: throughput and latency of the study store and the DICOMweb server, and the same
 * HTTP client against any other DICOMweb server (the peer, Orthanc), so that ratios are quoted
 * against a peer measured in the same run. A program, never a test.
 *
 *   bench_store gen GEN [--small N] [--copies N]
 *                                             synthetic data, generated once: GEN/ct600 (one CT
 *                                             series, 600 slices 512x512 16-bit), ct600-copyK
 *                                             (the same with other UIDs, one per STOW run) and
 *                                             GEN/small (N one-instance studies, 16x16, varied
 *                                             names, IDs, dates, modalities, accessions)
 *   bench_store import GEN WORK               store API ingest: batch 64/256, sync on/off, tiny
 *                                             instances, and the raw disk ceiling
 *   bench_store tessera GEN WORK              Tessera in-process (http_start on port 0, one
 *                                             store): STOW runs, load (ct600 + small over STOW),
 *                                             QIDO, series metadata
 *   bench_store http --base URL GEN TEST      the same HTTP tests against any server;
 *                                             TEST = stow | load | qido | metadata
 *                                             (a bearer token from TESSERA_TOKEN when set)
 *   bench_store report TSV                    the comparison table of the rows in TSV
 *
 * Every measuring command appends rows to --tsv FILE (label, section, name, n, median, p90,
 * rate, MB/s, bytes, count) and prints them. `report` joins the rows of the labels `tessera`
 * and the peer and prints the ratios. benchmarks/bench_store.sh runs everything in order. */
#define _GNU_SOURCE
#include "demo.h"
#include "http.h"
#define BENCH_NAME "bench_store"
#include "bench_util.h"
#include "httpc.h"
#include "store.h"
#include "tsr_base.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* ---------------------------------------------------------------- options */

typedef struct opts {
    const char *base;      /* http: base URL of the DICOMweb root */
    const char *label;     /* server label in the TSV ("tessera", "orthanc") */
    const char *tsv;       /* rows appended here (NULL: printed only) */
    const char *only;      /* tessera: comma-separated subset of stow,load,qido,metadata */
    int runs;              /* repetitions of a whole-series run */
    int small;             /* studies in GEN/small */
    int copies;            /* copies of ct600 with other UIDs, one per STOW run */
    int per_request;       /* instances per STOW request (ct600) */
    int small_per_request; /* instances per STOW request (small) */
    int clients[4];        /* STOW client counts */
    int n_clients;
    int qido_n, qido_warm;
    int meta_n, meta_warm;
} opts;

static opts g_o = {
    .label = "tessera",
    .runs = 5,
    .small = 10000,
    .copies = 6,
    .per_request = 60,
    .small_per_request = 100,
    .clients = {1, 2},
    .n_clients = 2,
    .qido_n = 200,
    .qido_warm = 20,
    .meta_n = 50,
    .meta_warm = 3,
};

/* ---------------------------------------------------------------- helpers */

typedef struct stats {
    int n;
    double med, p90, min, max;
} stats;

/* Sorts v. Median (mean of the middle two when n is even) and nearest-rank p90. */
static stats
stats_of(double *v, int n)
{
    stats s = {0};
    if (n <= 0) {
        return s;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    s.n = n;
    s.med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    int k = (int)ceil(0.9 * n) - 1;
    s.p90 = v[k < 0 ? 0 : k];
    s.min = v[0];
    s.max = v[n - 1];
    return s;
}

/* One result row: times in ms (per run or per request), rate in items/s at the median. */
typedef struct row {
    const char *section, *name;
    stats st;
    double rate, mbps;
    double bytes, count;
} row;

static void
emit(const row *r)
{
    printf("  %-34s n=%-4d median %9.2f ms  p90 %9.2f ms", r->name, r->st.n, r->st.med, r->st.p90);
    if (r->rate > 0) {
        printf("  %8.1f /s", r->rate);
    }
    if (r->mbps > 0) {
        printf("  %7.1f MB/s", r->mbps);
    }
    if (r->bytes > 0) {
        printf("  %9.0f B", r->bytes);
    }
    if (r->count >= 0) {
        printf("  %5.0f results", r->count);
    }
    printf("\n");
    fflush(stdout);
    if (!g_o.tsv) {
        return;
    }
    FILE *f = fopen(g_o.tsv, "a");
    if (!f) {
        die("cannot append to %s: %s", g_o.tsv, strerror(errno));
    }
    fprintf(f, "%s\t%s\t%s\t%d\t%.3f\t%.3f\t%.2f\t%.2f\t%.0f\t%.0f\n", g_o.label, r->section,
            r->name, r->st.n, r->st.med, r->st.p90, r->rate, r->mbps, r->bytes, r->count);
    fclose(f);
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT) {
        fprintf(stderr, "bench_store: cannot remove %s: %s\n", path, strerror(errno));
    }
    return 0;
}

/* rm -rf, refused for short paths (a typo must not remove anything important). */
static void
rm_rf(const char *path)
{
    if (strlen(path) < 8 || strcmp(path, "/tmp") == 0 || strstr(path, "..")) {
        die("refusing to remove '%s'", path);
    }
    nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

static void
mkdirs(const char *path)
{
    tsr_err err = {0};
    if (demo_mkdirs(path, &err) != TSR_OK) {
        die("%s", err.msg);
    }
}

static int
exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* A list of instance files with their sizes. */
typedef struct flist {
    char **path;
    uint64_t *size;
    int n, cap;
    uint64_t bytes;
} flist;

static void
flist_add(flist *l, const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        die("cannot stat %s: %s", path, strerror(errno));
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->path = realloc(l->path, (size_t)l->cap * sizeof *l->path);
        l->size = realloc(l->size, (size_t)l->cap * sizeof *l->size);
        if (!l->path || !l->size) {
            die("out of memory");
        }
    }
    l->path[l->n] = strdup(path);
    l->size[l->n] = (uint64_t)sb.st_size;
    l->bytes += (uint64_t)sb.st_size;
    l->n++;
}

static int
dcm_filter(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return n > 4 && strcmp(e->d_name + n - 4, ".dcm") == 0;
}

static int
subdir_filter(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* The .dcm files of `dir` (sorted by name), or of its subfolders one level down when `nested`. */
static void
flist_dir(flist *l, const char *dir, int nested)
{
    struct dirent **ents;
    int n = scandir(dir, &ents, nested ? subdir_filter : dcm_filter, alphasort);
    if (n < 0) {
        die("cannot list %s: %s (run `bench_store gen` first)", dir, strerror(errno));
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
        if (nested) {
            flist_dir(l, path, 0);
        } else {
            flist_add(l, path);
        }
        free(ents[i]);
    }
    free(ents);
}

static void
flist_free(flist *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->path[i]);
    }
    free(l->path);
    free(l->size);
    memset(l, 0, sizeof *l);
}

/* ---------------------------------------------------------------- generator */

/* GEN/info holds what the queries need: the CT series' UIDs and the small-set size. */
typedef struct gen_info {
    char ct_study[DEMO_UID_MAX + 1], ct_series[DEMO_UID_MAX + 1];
    int small, copies;
} gen_info;

static void
info_read(const char *gen, gen_info *gi)
{
    char path[4096], line[256];
    snprintf(path, sizeof path, "%s/info", gen);
    FILE *f = fopen(path, "r");
    if (!f) {
        die("%s missing: run `bench_store gen %s` first", path, gen);
    }
    memset(gi, 0, sizeof *gi);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "ct_study=", 9) == 0) {
            snprintf(gi->ct_study, sizeof gi->ct_study, "%.64s", line + 9);
        } else if (strncmp(line, "ct_series=", 10) == 0) {
            snprintf(gi->ct_series, sizeof gi->ct_series, "%.64s", line + 10);
        } else if (strncmp(line, "small=", 6) == 0) {
            gi->small = atoi(line + 6);
        } else if (strncmp(line, "copies=", 7) == 0) {
            gi->copies = atoi(line + 7);
        }
    }
    fclose(f);
    if (!gi->ct_study[0] || !gi->ct_series[0] || gi->small <= 0) {
        die("%s is incomplete: remove %s and run `bench_store gen` again", path, gen);
    }
}

static const char *const k_surnames[40] = {
    "SMITH",    "JOHNSON",   "WILLIAMS", "BROWN",     "JONES",   "GARCIA",   "MILLER",
    "DAVIS",    "RODRIGUEZ", "MARTINEZ", "HERNANDEZ", "LOPEZ",   "GONZALEZ", "WILSON",
    "ANDERSON", "THOMAS",    "TAYLOR",   "MOORE",     "JACKSON", "MARTIN",   "LEE",
    "PEREZ",    "THOMPSON",  "WHITE",    "HARRIS",    "SANCHEZ", "CLARK",    "RAMIREZ",
    "LEWIS",    "ROBINSON",  "WALKER",   "YOUNG",     "ALLEN",   "KING",     "WRIGHT",
    "SCOTT",    "TORRES",    "NGUYEN",   "HILL",      "SMITHERS"};
static const char *const k_given[25] = {
    "JAMES",  "MARY",    "ROBERT",    "PATRICIA", "JOHN",    "JENNIFER", "MICHAEL",
    "LINDA",  "DAVID",   "ELIZABETH", "WILLIAM",  "BARBARA", "RICHARD",  "SUSAN",
    "JOSEPH", "JESSICA", "THOMAS",    "SARAH",    "CHARLES", "KAREN",    "CHRISTOPHER",
    "LISA",   "DANIEL",  "NANCY",     "MATTHEW"};

/* Patients: study i belongs to patient i % N_PATIENTS, so most patients have 3-4 studies. */
#define N_PATIENTS 3000

static void
small_patient_id(int i, char out[16])
{
    snprintf(out, 16, "BP%05d", i % N_PATIENTS);
}

static void
small_accession(int i, char out[16])
{
    snprintf(out, 16, "A%07d", i);
}

static uint32_t
mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

#define T_(g, e) DEMO_TAG(0x##g, 0x##e)

/* One study with one 16x16 8-bit Secondary Capture instance; attributes vary with i. */
static int
gen_small_one(const char *dir, int i, tsr_err *err)
{
    static const struct {
        const char *modality, *part;
        int weight;
    } k_mod[] = {{"CT", "CHEST", 30},   {"MR", "HEAD", 25}, {"CR", "CHEST", 15},
                 {"US", "ABDOMEN", 10}, {"DX", "HAND", 10}, {"MG", "BREAST", 5},
                 {"PT", "WHOLEBODY", 5}};
    uint32_t h = mix32((uint32_t)i * 2654435761U + 12345U);
    int p = i % N_PATIENTS;
    int w = (int)(h % 100), m = 0;
    while (w >= k_mod[m].weight) {
        w -= k_mod[m].weight;
        m++;
    }
    char name[128], uid_st[DEMO_UID_MAX + 1], uid_se[DEMO_UID_MAX + 1], uid_sop[DEMO_UID_MAX + 1],
        s[128], pid[16], acc[16];
    snprintf(name, sizeof name, "tessera-bench/small/%d/study", i);
    demo_uid_from_name(name, uid_st);
    snprintf(name, sizeof name, "tessera-bench/small/%d/series", i);
    demo_uid_from_name(name, uid_se);
    snprintf(name, sizeof name, "tessera-bench/small/%d/instance", i);
    demo_uid_from_name(name, uid_sop);
    small_patient_id(i, pid);
    small_accession(i, acc);

    demo_ds *ds = NULL;
    int rc = demo_ds_create(&ds, err);
    if (rc != TSR_OK) {
        return rc;
    }
    demo_ds_put_str(ds, T_(0008, 0016), "UI", "1.2.840.10008.5.1.4.1.1.7");
    demo_ds_put_str(ds, T_(0008, 0018), "UI", uid_sop);
    snprintf(s, sizeof s, "%04u%02u%02u", 2010 + (h >> 8) % 15, 1 + (h >> 12) % 12,
             1 + (h >> 16) % 28);
    demo_ds_put_str(ds, T_(0008, 0020), "DA", s);
    demo_ds_put_str(ds, T_(0008, 0021), "DA", s);
    snprintf(s, sizeof s, "%02u%02u%02u", 7 + (h >> 20) % 12, (h >> 4) % 60, (h >> 24) % 60);
    demo_ds_put_str(ds, T_(0008, 0030), "TM", s);
    demo_ds_put_str(ds, T_(0008, 0050), "SH", acc);
    demo_ds_put_str(ds, T_(0008, 0060), "CS", k_mod[m].modality);
    demo_ds_put_str(ds, T_(0008, 0064), "CS", "WSD");
    demo_ds_put_str(ds, T_(0008, 0070), "LO", "TESSERA BENCH");
    snprintf(s, sizeof s, "%s^%s", k_surnames[(p * 7 + 3) % 40], "REF");
    demo_ds_put_str(ds, T_(0008, 0090), "PN", s);
    snprintf(s, sizeof s, "%s %s bench study %d", k_mod[m].modality, k_mod[m].part, i);
    demo_ds_put_str(ds, T_(0008, 1030), "LO", s);
    snprintf(s, sizeof s, "%s %s", k_mod[m].modality, k_mod[m].part);
    demo_ds_put_str(ds, T_(0008, 103E), "LO", s);
    snprintf(s, sizeof s, "%s^%s", k_surnames[p % 40], k_given[(p / 40) % 25]);
    demo_ds_put_str(ds, T_(0010, 0010), "PN", s);
    demo_ds_put_str(ds, T_(0010, 0020), "LO", pid);
    snprintf(s, sizeof s, "%04d%02d%02d", 1930 + p % 80, 1 + p % 12, 1 + p % 28);
    demo_ds_put_str(ds, T_(0010, 0030), "DA", s);
    demo_ds_put_str(ds, T_(0010, 0040), "CS", p % 2 ? "F" : "M");
    demo_ds_put_str(ds, T_(0018, 0015), "CS", k_mod[m].part);
    demo_ds_put_str(ds, T_(0020, 000D), "UI", uid_st);
    demo_ds_put_str(ds, T_(0020, 000E), "UI", uid_se);
    snprintf(s, sizeof s, "%d", i);
    demo_ds_put_str(ds, T_(0020, 0010), "SH", s);
    demo_ds_put_is(ds, T_(0020, 0011), 1);
    demo_ds_put_is(ds, T_(0020, 0013), 1);
    demo_ds_put_us(ds, T_(0028, 0002), 1);
    demo_ds_put_str(ds, T_(0028, 0004), "CS", "MONOCHROME2");
    demo_ds_put_us(ds, T_(0028, 0010), 16);
    demo_ds_put_us(ds, T_(0028, 0011), 16);
    demo_ds_put_us(ds, T_(0028, 0100), 8);
    demo_ds_put_us(ds, T_(0028, 0101), 8);
    demo_ds_put_us(ds, T_(0028, 0102), 7);
    demo_ds_put_us(ds, T_(0028, 0103), 0);
    uint8_t px[256];
    for (int k = 0; k < 256; k++) {
        px[k] = (uint8_t)(k + i);
    }
    demo_ds_put_bytes(ds, T_(7FE0, 0010), "OB", px, sizeof px);
    char path[4096];
    snprintf(path, sizeof path, "%s/%02d/S_%06d.dcm", dir, i / 1000, i);
    rc = demo_ds_write(ds, path, err);
    demo_ds_free(ds);
    return rc;
}

typedef struct gen_job {
    const char *dir;
    int n;
    atomic_int next;
    atomic_int failed;
    tsr_err err;
} gen_job;

static void *
gen_small_thread(void *arg)
{
    gen_job *j = arg;
    tsr_err err = {0};
    for (;;) {
        int i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n || atomic_load(&j->failed)) {
            break;
        }
        if (gen_small_one(j->dir, i, &err) != TSR_OK) {
            if (atomic_exchange(&j->failed, 1) == 0) {
                j->err = err;
            }
            break;
        }
    }
    return NULL;
}

/* Writes copy `k` of the series in `src` into `dir`: the same bytes except one digit in the
 * middle of every "2.25." UID of the header (study, series, SOP instance, frame of reference),
 * so each copy is a new series that every server stores afresh. The digit changes keep each
 * UID's length, so the file's element lengths stay valid; copies 1..9 all differ. */
static void
gen_copy(const flist *src, const char *dir, int k)
{
    mkdirs(dir);
    const size_t pixels = (size_t)DEMO_CT_SIZE * DEMO_CT_SIZE * 2;
    for (int i = 0; i < src->n; i++) {
        size_t size = (size_t)src->size[i];
        uint8_t *b = malloc(size);
        FILE *f = fopen(src->path[i], "rb");
        if (!b || !f || fread(b, 1, size, f) != size) {
            die("cannot read %s", src->path[i]);
        }
        fclose(f);
        /* (7FE0,0010) OW, 4-byte length: the pixel data is the file's tail */
        static const uint8_t k_px[] = {0xE0, 0x7F, 0x10, 0x00, 'O', 'W', 0, 0};
        if (size < pixels + 12 || memcmp(b + size - pixels - 12, k_px, sizeof k_px) != 0) {
            die("%s: not a demo CT slice (pixel data not at the end)", src->path[i]);
        }
        size_t hdr = size - pixels - 12;
        for (size_t at = 0; at + 5 < hdr; at++) {
            if (memcmp(b + at, "2.25.", 5) != 0) {
                continue;
            }
            uint8_t *q = b + at + 5;
            size_t digits = 0;
            while (at + 5 + digits < hdr && q[digits] >= '0' && q[digits] <= '9') {
                digits++;
            }
            if (digits >= 20) {
                q[10] = (uint8_t)('0' + (q[10] - '0' + k) % 10);
            }
            at += 5 + digits;
        }
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, strrchr(src->path[i], '/') + 1);
        f = fopen(path, "wb");
        if (!f || fwrite(b, 1, size, f) != size || fclose(f) != 0) {
            die("cannot write %s", path);
        }
        free(b);
    }
}

static int
cmd_gen(const char *gen)
{
    char path[4096], ct[3000], small[3000];
    if (strlen(gen) > 2900) {
        die("path too long: %s", gen);
    }
    snprintf(path, sizeof path, "%s/info", gen);
    snprintf(ct, sizeof ct, "%s/ct600", gen);
    snprintf(small, sizeof small, "%s/small", gen);
    if (exists(path)) {
        gen_info gi;
        info_read(gen, &gi);
        if (gi.small == g_o.small && gi.copies == g_o.copies) {
            printf("gen: %s already holds ct600, %d copies and %d small studies\n", gen, gi.copies,
                   gi.small);
            return 0;
        }
    }
    rm_rf(ct);
    rm_rf(small);
    for (int k = 1; k <= 9; k++) {
        snprintf(path, sizeof path, "%s-copy%d", ct, k);
        rm_rf(path);
    }
    snprintf(path, sizeof path, "%s/info", gen);
    unlink(path);
    mkdirs(gen);
    tsr_err err = {0};
    demo_summary sum;
    double t0 = now_s();
    if (demo_ct_series(ct, 600, &sum, &err) != TSR_OK) {
        die("ct600: %s", err.msg);
    }
    printf("gen: %s: %u files, %.1f MB, study %s (%.1f s)\n", ct, sum.files, sum.bytes / 1e6,
           sum.study_uid, now_s() - t0);
    t0 = now_s();
    flist l = {0};
    flist_dir(&l, ct, 0);
    for (int k = 1; k <= g_o.copies; k++) {
        snprintf(path, sizeof path, "%s-copy%d", ct, k);
        gen_copy(&l, path, k);
    }
    flist_free(&l);
    sync();
    printf("gen: %d copies of ct600 with other UIDs (%.1f s)\n", g_o.copies, now_s() - t0);
    t0 = now_s();
    for (int d = 0; d <= (g_o.small - 1) / 1000; d++) {
        snprintf(path, sizeof path, "%s/%02d", small, d);
        mkdirs(path);
    }
    gen_job j = {.dir = small, .n = g_o.small};
    pthread_t th[2];
    for (int k = 0; k < 2; k++) {
        pthread_create(&th[k], NULL, gen_small_thread, &j);
    }
    for (int k = 0; k < 2; k++) {
        pthread_join(th[k], NULL);
    }
    if (j.failed) {
        die("small: %s", j.err.msg);
    }
    printf("gen: %s: %d one-instance studies (%.1f s)\n", small, g_o.small, now_s() - t0);
    snprintf(path, sizeof path, "%s/info", gen);
    FILE *f = fopen(path, "w");
    if (!f) {
        die("cannot write %s: %s", path, strerror(errno));
    }
    fprintf(f, "ct_study=%s\nct_series=%s\nsmall=%d\ncopies=%d\n", sum.study_uid, sum.series_uid,
            g_o.small, g_o.copies);
    fclose(f);
    return 0;
}

/* ---------------------------------------------------------------- store API import */

/* Imports every file of `l` into a fresh store under `dir` in batches of `batch`. Returns the
 * seconds from the first part to the last commit (store_open excluded). The store is left in
 * place: removing hundreds of files right before the next run makes ext4 without a journal
 * (this VM) scan the recently freed inodes on every file creation (find_inode_bit ->
 * recently_deleted, 20% of the server's CPU in a profile), which no steady-state server sees.
 * bench_store.sh removes WORK at the very end. */
static double
import_run(const flist *l, const char *dir, int batch, int no_sync)
{
    if (exists(dir)) {
        die("%s exists: remove WORK's leftovers first", dir);
    }
    sync(); /* start each run with no dirty pages of an earlier one */
    store_opts so = {.dir = dir, .no_sync = no_sync};
    store *st = NULL;
    tsr_err err = {0};
    if (store_open(&so, &st, &err) != TSR_OK) {
        die("store_open %s: %s", dir, err.msg);
    }
    double t0 = now_s();
    for (int i = 0; i < l->n; i += batch) {
        store_batch *b = NULL;
        if (store_batch_begin(st, NULL, &b, &err) != TSR_OK) {
            die("batch: %s", err.msg);
        }
        int end = i + batch < l->n ? i + batch : l->n;
        for (int k = i; k < end; k++) {
            if (store_part_file(b, l->path[k], &err) != TSR_OK) {
                die("%s: %s", l->path[k], err.msg);
            }
        }
        if (store_batch_commit(b, &err) != TSR_OK) {
            die("commit: %s", err.msg);
        }
        int n;
        const store_result *res = store_batch_results(b, &n);
        for (int k = 0; k < n; k++) {
            if (res[k].kind != STORE_STORED) {
                die("%s: not stored: %s", res[k].name, res[k].message);
            }
        }
        store_batch_free(b);
    }
    double t = now_s() - t0;
    store_close(st);
    return t;
}

static void
row_runs(const char *section, const char *name, double *t_s, int runs, int items, uint64_t bytes)
{
    double ms[64];
    for (int r = 0; r < runs; r++) {
        ms[r] = t_s[r] * 1e3;
    }
    row rw = {section, name, stats_of(ms, runs), 0, 0, 0, -1};
    rw.rate = items / (rw.st.med / 1e3);
    rw.mbps = (double)bytes / 1e6 / (rw.st.med / 1e3);
    emit(&rw);
}

/* Raw disk ceiling for the same bytes: (a) one file, write + fdatasync; (b) one file per
 * instance, syncfs after every `batch` files, as the store syncs a batch. Bytes come from
 * memory, so reading the sources is not counted. */
static double
disk_run(const flist *l, uint8_t **data, const char *dir, int per_file_batch)
{
    if (exists(dir)) {
        die("%s exists: remove WORK's leftovers first", dir);
    }
    mkdirs(dir);
    sync();
    char path[4200];
    double t0 = now_s();
    int fd = -1;
    if (!per_file_batch) {
        snprintf(path, sizeof path, "%s/all.bin", dir);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            die("cannot create %s: %s", path, strerror(errno));
        }
    }
    for (int i = 0; i < l->n; i++) {
        if (per_file_batch) {
            snprintf(path, sizeof path, "%s/%06d", dir, i);
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0) {
                die("cannot create %s: %s", path, strerror(errno));
            }
        }
        for (uint64_t off = 0; off < l->size[i];) {
            ssize_t w = write(fd, data[i] + off, (size_t)(l->size[i] - off));
            if (w < 0) {
                die("write: %s", strerror(errno));
            }
            off += (uint64_t)w;
        }
        if (per_file_batch) {
            close(fd);
            if ((i + 1) % per_file_batch == 0 || i + 1 == l->n) {
                int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0 || syncfs(dfd) != 0) {
                    die("syncfs: %s", strerror(errno));
                }
                close(dfd);
            }
        }
    }
    if (!per_file_batch) {
        if (fdatasync(fd) != 0) {
            die("fdatasync: %s", strerror(errno));
        }
        close(fd);
    }
    double t = now_s() - t0;
    if (!per_file_batch) {
        unlink(path); /* one inode: no cost for the next creations */
    }
    return t;
}

static int
cmd_import(const char *gen, const char *work)
{
    flist l = {0};
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/ct600", gen);
    flist_dir(&l, dir, 0);
    if (l.n < 600) {
        die("%s holds %d files, expected 600", dir, l.n);
    }
    char root[3000];
    snprintf(root, sizeof root, "%.2900s/import", work);
    if (exists(root)) {
        printf("import: removing leftovers in %s (file creation may be slower for a few "
               "minutes)\n",
               root);
        rm_rf(root);
    }
    mkdirs(root);
    int runs = g_o.runs > 64 ? 64 : g_o.runs;
    printf("import: %d instances, %.1f MB, through the store API (store_part_file), %d runs "
           "each, fresh store per run\n",
           l.n, (double)l.bytes / 1e6, runs);
    /* warm the page cache with the sources so every run reads them from memory */
    for (int i = 0; i < l.n; i++) {
        int fd = open(l.path[i], O_RDONLY | O_CLOEXEC);
        static uint8_t buf[1 << 16];
        while (fd >= 0 && read(fd, buf, sizeof buf) > 0) {
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    static const int batches[] = {64, 256};
    for (int ns = 0; ns <= 1; ns++) {
        for (int bi = 0; bi < 2; bi++) {
            double t[64];
            for (int r = 0; r < runs; r++) {
                snprintf(dir, sizeof dir, "%s/b%d-%s-%d", root, batches[bi], ns ? "nosync" : "sync",
                         r);
                t[r] = import_run(&l, dir, batches[bi], ns);
            }
            char name[96];
            snprintf(name, sizeof name, "store ct600 batch %d %s", batches[bi],
                     ns ? "no_sync" : "sync");
            row_runs("import", name, t, runs, l.n, l.bytes);
        }
    }
    /* Tiny instances (one study each): the per-instance cost that the big ones hide. */
    flist sm = {0};
    snprintf(dir, sizeof dir, "%s/small", gen);
    flist_dir(&sm, dir, 1);
    for (int ns = 0; ns <= 1; ns++) {
        double t;
        snprintf(dir, sizeof dir, "%s/small-b256-%s", root, ns ? "nosync" : "sync");
        t = import_run(&sm, dir, 256, ns);
        char name[96];
        snprintf(name, sizeof name, "store %d small batch 256 %s", sm.n, ns ? "no_sync" : "sync");
        row_runs("import", name, &t, 1, sm.n, sm.bytes);
    }
    flist_free(&sm);
    /* disk ceiling */
    uint8_t **data = calloc((size_t)l.n, sizeof *data);
    for (int i = 0; i < l.n; i++) {
        data[i] = malloc(l.size[i]);
        FILE *f = fopen(l.path[i], "rb");
        if (!data[i] || !f || fread(data[i], 1, l.size[i], f) != l.size[i]) {
            die("cannot read %s", l.path[i]);
        }
        fclose(f);
    }
    double t[64];
    for (int r = 0; r < runs; r++) {
        snprintf(dir, sizeof dir, "%s/disk1-%d", root, r);
        t[r] = disk_run(&l, data, dir, 0);
    }
    row_runs("import", "disk: 1 file write+fdatasync", t, runs, l.n, l.bytes);
    for (int r = 0; r < runs; r++) {
        snprintf(dir, sizeof dir, "%s/disk600-%d", root, r);
        t[r] = disk_run(&l, data, dir, 64);
    }
    row_runs("import", "disk: 600 files, syncfs per 64", t, runs, l.n, l.bytes);
    for (int i = 0; i < l.n; i++) {
        free(data[i]);
    }
    free(data);
    flist_free(&l);
    return 0;
}

/* ---------------------------------------------------------------- HTTP client (httpc.c) */

/* The size of the array at key (or of `Value` inside it, for DICOM JSON); 0 if absent. */
static int
value_count(json_t *root, const char *key)
{
    json_t *e = key ? json_object_get(root, key) : root;
    if (key && e) {
        e = json_object_get(e, "Value");
    }
    return json_is_array(e) ? (int)json_array_size(e) : 0;
}

/* Store Instances Response: ReferencedSOPSequence and FailedSOPSequence item counts. */
static void
stow_counts(const char *body, size_t len, int *stored, int *failed)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    if (json_is_object(root)) {
        *stored = value_count(root, "00081199");
        *failed = value_count(root, "00081198");
    }
    json_decref(root);
}

/* Items of a JSON array response (QIDO results, metadata instances), -1 if not an array. */
static int
array_count(const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    int n = json_is_array(root) ? (int)json_array_size(root) : -1;
    json_decref(root);
    return n;
}

/* ---------------------------------------------------------------- STOW load */

typedef struct stow_job {
    const char *base;
    const flist *l;
    int per_req, n_req;
    atomic_int next;
    double *lat_ms; /* per request */
    atomic_int failed;
    char err[512];
    pthread_mutex_t mu;
} stow_job;

static void stow_fail(stow_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
stow_fail(stow_job *j, const char *fmt, ...)
{
    pthread_mutex_lock(&j->mu);
    if (!atomic_exchange(&j->failed, 1)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(j->err, sizeof j->err, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&j->mu);
}

static void *
stow_thread(void *arg)
{
    stow_job *j = arg;
    hc c;
    if (hc_init(&c, j->base) != 0) {
        die("bad base URL %s", j->base);
    }
    hc_resp r = {0};
    for (;;) {
        int k = atomic_fetch_add(&j->next, 1);
        if (k >= j->n_req || atomic_load(&j->failed)) {
            break;
        }
        int lo = k * j->per_req, n = j->l->n - lo < j->per_req ? j->l->n - lo : j->per_req;
        double t0 = now_s();
        int rc = hc_stow(&c, "/studies", j->l->path + lo, j->l->size + lo, n, &r);
        j->lat_ms[k] = (now_s() - t0) * 1e3;
        if (rc != 0) {
            stow_fail(j, "request %d: connection failed", k);
        } else if (r.status != 200) {
            stow_fail(j, "request %d: HTTP %d: %.300s", k, r.status, r.body);
        } else {
            int stored = -1, failed = -1;
            stow_counts(r.body, r.len, &stored, &failed);
            if (stored != n || failed != 0) {
                stow_fail(j, "request %d: %d of %d instances stored, %d failed: %.300s", k, stored,
                          n, failed, r.body);
            }
        }
    }
    free(r.body);
    hc_free(&c);
    return NULL;
}

/* Sends every file of `l`, per_req per request, over `clients` connections. Returns the
 * seconds taken; appends per-request latencies to lat (n_req of them). */
static double
stow_once(const char *base, const flist *l, int per_req, int clients, double *lat)
{
    stow_job j = {.base = base, .l = l, .per_req = per_req, .lat_ms = lat};
    j.n_req = (l->n + per_req - 1) / per_req;
    pthread_mutex_init(&j.mu, NULL);
    pthread_t th[8];
    double t0 = now_s();
    for (int k = 0; k < clients; k++) {
        pthread_create(&th[k], NULL, stow_thread, &j);
    }
    for (int k = 0; k < clients; k++) {
        pthread_join(th[k], NULL);
    }
    double t = now_s() - t0;
    pthread_mutex_destroy(&j.mu);
    if (j.failed) {
        die("STOW to %s: %s", base, j.err);
    }
    return t;
}

/* STOW of the 600-instance series: each run sends another copy (GEN/ct600-copyK, other UIDs),
 * so every run stores a new series into the same server, and nothing is deleted in between. */
static void
bench_stow(const char *base, const char *gen, const gen_info *gi)
{
    int runs = g_o.runs > 32 ? 32 : g_o.runs;
    if (runs * g_o.n_clients > gi->copies) {
        die("%d runs x %d client counts need %d copies of ct600; GEN has %d (bench_store gen "
            "--copies N)",
            runs, g_o.n_clients, runs * g_o.n_clients, gi->copies);
    }
    int n_req = (600 + g_o.per_request - 1) / g_o.per_request;
    printf("stow: 600 instances (315 MB) per run, %d per request (%d requests), %d runs, a new "
           "series (copy) per run\n",
           g_o.per_request, n_req, runs);
    for (int ci = 0; ci < g_o.n_clients; ci++) {
        int clients = g_o.clients[ci];
        double t[32];
        double *lat = calloc((size_t)(runs * n_req), sizeof *lat);
        uint64_t bytes = 0;
        for (int r = 0; r < runs; r++) {
            char dir[4200];
            snprintf(dir, sizeof dir, "%s/ct600-copy%d", gen, 1 + ci * runs + r);
            flist l = {0};
            flist_dir(&l, dir, 0);
            if (l.n != 600) {
                die("%s holds %d files, expected 600", dir, l.n);
            }
            sync();
            t[r] = stow_once(base, &l, g_o.per_request, clients, lat + r * n_req);
            bytes = l.bytes;
            flist_free(&l);
        }
        char name[96];
        snprintf(name, sizeof name, "STOW ct600 %d/req, %d client%s", g_o.per_request, clients,
                 clients > 1 ? "s" : "");
        row_runs("stow", name, t, runs, 600, bytes);
        snprintf(name, sizeof name, "  per request (%d inst), %d client%s", g_o.per_request,
                 clients, clients > 1 ? "s" : "");
        row rw = {"stow", name, stats_of(lat, runs * n_req), 0, 0, 0, -1};
        rw.rate = g_o.per_request / (rw.st.med / 1e3);
        emit(&rw);
        free(lat);
    }
}

/* Loads ct600 and the small studies over STOW (2 clients), timed, for the query tests. */
static void
bench_load(const char *base, const char *gen)
{
    char dir[4096];
    flist ct = {0}, small = {0};
    snprintf(dir, sizeof dir, "%s/ct600", gen);
    flist_dir(&ct, dir, 0);
    snprintf(dir, sizeof dir, "%s/small", gen);
    flist_dir(&small, dir, 1);
    printf("load: STOW of ct600 (%d/req) and %d small studies (%d/req), 2 clients\n",
           g_o.per_request, small.n, g_o.small_per_request);
    int n_req = (small.n + g_o.small_per_request - 1) / g_o.small_per_request;
    double *lat = calloc((size_t)n_req + ct.n, sizeof *lat);
    double t = stow_once(base, &ct, g_o.per_request, 2, lat);
    row_runs("load", "STOW ct600 (once)", &t, 1, ct.n, ct.bytes);
    t = stow_once(base, &small, g_o.small_per_request, 2, lat);
    char name[96];
    snprintf(name, sizeof name, "STOW %d small studies (once)", small.n);
    row_runs("load", name, &t, 1, small.n, small.bytes);
    snprintf(name, sizeof name, "  per request (%d inst)", g_o.small_per_request);
    row rw = {"load", name, stats_of(lat, n_req), 0, 0, 0, -1};
    rw.rate = g_o.small_per_request / (rw.st.med / 1e3);
    emit(&rw);
    free(lat);
    flist_free(&ct);
    flist_free(&small);
}

/* ---------------------------------------------------------------- QIDO and metadata */

/* Runs GET rel `warm` + `n` times on one keep-alive connection; emits one row. Also checks that
 * every response is 200 and gives the same number of results. */
static void
bench_get(hc *c, const char *section, const char *name, const char *rel, int warm, int n)
{
    double *lat = calloc((size_t)n, sizeof *lat);
    hc_resp r = {0};
    double bytes = 0, count = -1;
    for (int i = 0; i < warm + n; i++) {
        double t0 = now_s();
        if (hc_get(c, rel, "application/dicom+json", &r) != 0) {
            die("GET %s: connection failed", rel);
        }
        double ms = (now_s() - t0) * 1e3;
        if (r.status != 200) {
            die("GET %s%s: HTTP %d: %.300s", c->prefix, rel, r.status, r.body ? r.body : "");
        }
        int k = array_count(r.body, r.len);
        if (count >= 0 && k != count) {
            die("GET %s: %d results, earlier %.0f", rel, k, count);
        }
        count = k;
        bytes = (double)r.len;
        if (i >= warm) {
            lat[i - warm] = ms;
        }
    }
    row rw = {section, name, stats_of(lat, n), 0, 0, bytes, count};
    rw.rate = 1e3 / rw.st.med;
    emit(&rw);
    free(r.body);
    free(lat);
}

static void
bench_qido(const char *base, const gen_info *gi)
{
    char pid[16], acc[16];
    small_patient_id(1234, pid);
    small_accession(1234, acc);
    struct {
        const char *name;
        char rel[256];
    } q[] = {
        {"QIDO studies?limit=25", "/studies?limit=25"},
        {"QIDO PatientName=SMITH*", "/studies?PatientName=SMITH*&limit=25"},
        {"QIDO StudyDate=2020 range", "/studies?StudyDate=20200101-20201231&limit=25"},
        {"QIDO ModalitiesInStudy=MR", "/studies?ModalitiesInStudy=MR&limit=25"},
        {"QIDO PatientID=<exact>", ""},
        {"QIDO AccessionNumber=<exact>", ""},
        {"QIDO includefield=all&limit=25", "/studies?includefield=all&limit=25"},
        {"QIDO limit=25&offset=5000", "/studies?limit=25&offset=5000"},
    };
    snprintf(q[4].rel, sizeof q[4].rel, "/studies?PatientID=%s", pid);
    snprintf(q[5].rel, sizeof q[5].rel, "/studies?AccessionNumber=%s", acc);
    int nq = (int)(sizeof q / sizeof q[0]);
    if (gi->small <= 5000) {
        nq--; /* the offset query needs more studies */
    }
    printf("qido: %d studies indexed (+1 CT study), one keep-alive connection, %d warm-up + %d "
           "requests per query\n",
           gi->small, g_o.qido_warm, g_o.qido_n);
    hc c;
    if (hc_init(&c, base) != 0) {
        die("bad base URL %s", base);
    }
    for (int i = 0; i < nq; i++) {
        bench_get(&c, "qido", q[i].name, q[i].rel, g_o.qido_warm, g_o.qido_n);
    }
    if (c.reconnects) {
        printf("  (client reconnected %d times)\n", c.reconnects);
    }
    hc_free(&c);
}

static void
bench_metadata(const char *base, const gen_info *gi)
{
    char rel[512];
    snprintf(rel, sizeof rel, "/studies/%s/series/%s/metadata", gi->ct_study, gi->ct_series);
    printf("metadata: series of 600 instances, one keep-alive connection, %d warm-up + %d "
           "requests\n",
           g_o.meta_warm, g_o.meta_n);
    hc c;
    if (hc_init(&c, base) != 0) {
        die("bad base URL %s", base);
    }
    bench_get(&c, "metadata", "WADO series metadata (600 inst)", rel, g_o.meta_warm, g_o.meta_n);
    hc_free(&c);
}

/* ---------------------------------------------------------------- Tessera in-process */

typedef struct tess {
    char dir[4096];
    char token[65]; /* the admin bearer token every request carries (the authenticated path) */
    store *st;
    http_server *srv;
} tess;

static void
tess_open(tess *t, char *base, size_t cap)
{
    store_opts so = {.dir = t->dir};
    tsr_err err = {0};
    if (store_open(&so, &t->st, &err) != TSR_OK) {
        die("store_open %s: %s", t->dir, err.msg);
    }
    unsigned char rnd[32];
    FILE *ur = fopen("/dev/urandom", "rb");
    if (!ur || fread(rnd, 1, sizeof rnd, ur) != sizeof rnd) {
        die("cannot read /dev/urandom");
    }
    fclose(ur);
    for (size_t i = 0; i < sizeof rnd; i++) {
        snprintf(t->token + 2 * i, 3, "%02x", rnd[i]);
    }
    hc_set_bearer(t->token);
    http_opts ho = {.listen = "127.0.0.1:0", .admin_token = t->token};
    if (http_start(&ho, t->st, &t->srv, &err) != TSR_OK) {
        die("http_start: %s", err.msg);
    }
    snprintf(base, cap, "http://127.0.0.1:%d/dicomweb", http_port(t->srv));
}

static void
tess_close(tess *t)
{
    http_stop(t->srv);
    store_close(t->st);
    t->srv = NULL;
    t->st = NULL;
}

static int
want(const char *test)
{
    if (!g_o.only) {
        return 1;
    }
    size_t n = strlen(test);
    for (const char *p = g_o.only; *p;) {
        size_t k = strcspn(p, ",");
        if (k == n && strncmp(p, test, n) == 0) {
            return 1;
        }
        p += k + (p[k] == ',');
    }
    return 0;
}

static int
cmd_tessera(const char *gen, const char *work)
{
    gen_info gi;
    info_read(gen, &gi);
    mkdirs(work);
    tess t = {0};
    snprintf(t.dir, sizeof t.dir, "%.2900s/serve-store", work);
    if (exists(t.dir)) {
        printf("tessera: removing leftovers in %s (file creation may be slower for a few "
               "minutes)\n",
               t.dir);
        rm_rf(t.dir);
    }
    char base[512];
    tess_open(&t, base, sizeof base);
    printf("tessera: in-process server (http_start, 127.0.0.1 port 0, 16 threads, sync on), "
           "one store for every test, requests with the admin bearer token\n");
    if (want("stow")) {
        bench_stow(base, gen, &gi);
    }
    if (want("load") || want("qido") || want("metadata")) {
        bench_load(base, gen); /* the query tests need it */
    }
    if (want("qido")) {
        bench_qido(base, &gi);
    }
    if (want("metadata")) {
        bench_metadata(base, &gi);
    }
    tess_close(&t);
    return 0;
}

static int
cmd_http(const char *gen, const char *test)
{
    if (!g_o.base) {
        die("http needs --base URL (the DICOMweb root, e.g. http://127.0.0.1:8042/dicom-web)");
    }
    gen_info gi;
    info_read(gen, &gi);
    if (strcmp(test, "stow") == 0) {
        bench_stow(g_o.base, gen, &gi);
    } else if (strcmp(test, "load") == 0) {
        bench_load(g_o.base, gen);
    } else if (strcmp(test, "qido") == 0) {
        bench_qido(g_o.base, &gi);
    } else if (strcmp(test, "metadata") == 0) {
        bench_metadata(g_o.base, &gi);
    } else {
        die("unknown test '%s' (stow, load, qido, metadata)", test);
    }
    return 0;
}

/* ---------------------------------------------------------------- report */

typedef struct trow {
    char label[32], section[32], name[96];
    int n;
    double med, p90, rate, mbps, bytes, count;
} trow;

static int
cmd_report(const char *tsv, const char *peer)
{
    FILE *f = fopen(tsv, "r");
    if (!f) {
        die("cannot read %s: %s", tsv, strerror(errno));
    }
    trow *v = NULL;
    int n = 0, cap = 0;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            v = realloc(v, (size_t)cap * sizeof *v);
        }
        trow *r = &v[n];
        char *fld[10];
        int k = 0;
        line[strcspn(line, "\n")] = '\0';
        for (char *p = line; k < 10; k++) {
            fld[k] = p;
            char *tab = strchr(p, '\t');
            if (!tab) {
                k++;
                break;
            }
            *tab = '\0';
            p = tab + 1;
        }
        if (k != 10) {
            continue;
        }
        snprintf(r->label, sizeof r->label, "%.31s", fld[0]);
        snprintf(r->section, sizeof r->section, "%.31s", fld[1]);
        snprintf(r->name, sizeof r->name, "%.95s", fld[2]);
        r->n = atoi(fld[3]);
        r->med = atof(fld[4]);
        r->p90 = atof(fld[5]);
        r->rate = atof(fld[6]);
        r->mbps = atof(fld[7]);
        r->bytes = atof(fld[8]);
        r->count = atof(fld[9]);
        n++;
    }
    fclose(f);
    printf("\n%-36s %5s %10s %10s %10s %9s | %10s %10s %10s | %s\n", "", "n", "median ms", "p90 ms",
           "rate /s", "MB/s", peer, "p90 ms", "rate /s", "Tessera speed-up");
    const char *section = "";
    for (int i = 0; i < n; i++) {
        trow *r = &v[i];
        if (strcmp(r->label, "tessera") != 0) {
            continue;
        }
        if (strcmp(section, r->section) != 0) {
            section = r->section;
            printf("[%s]\n", section);
        }
        char mbps[32] = "-";
        if (r->mbps > 0) {
            snprintf(mbps, sizeof mbps, "%.1f", r->mbps);
        }
        printf("%-36s %5d %10.2f %10.2f %10.1f %9s", r->name, r->n, r->med, r->p90, r->rate, mbps);
        const trow *o = NULL;
        for (int j = 0; j < n; j++) {
            if (strcmp(v[j].label, peer) == 0 && strcmp(v[j].section, r->section) == 0 &&
                strcmp(v[j].name, r->name) == 0) {
                o = &v[j];
            }
        }
        if (o) {
            printf(" | %10.2f %10.2f %10.1f | x%.2f", o->med, o->p90, o->rate,
                   r->med > 0 ? o->med / r->med : 0);
            if (r->count >= 0 && o->count >= 0 && r->count != o->count) {
                printf("  (results differ: %.0f vs %.0f)", r->count, o->count);
            }
            if (r->bytes > 0 && o->bytes > 0) {
                printf("  [%.0f vs %.0f B]", r->bytes, o->bytes);
            }
        }
        printf("\n");
    }
    printf("\nspeed-up = %s median time / Tessera median time (same work, same client, same "
           "run); >1: Tessera faster\n",
           peer);
    free(v);
    return 0;
}

/* ---------------------------------------------------------------- main */

static const char k_usage[] =
    "usage: bench_store gen GEN [--small N]\n"
    "       bench_store import GEN WORK [--runs N] [--tsv FILE]\n"
    "       bench_store tessera GEN WORK [--runs N] [--tsv FILE] [--qido-n N] [--meta-n N]\n"
    "                        [--only stow,load,qido,metadata]\n"
    "       bench_store http --base URL [--label NAME] [--tsv FILE] GEN stow|load|qido|metadata\n"
    "                        [--runs N] [--clients 1,2] [--per-request N]\n"
    "       bench_store report TSV [--peer NAME]\n"
    "GEN: generated data (ct600/, small/, info); WORK: scratch space on the disk under test.\n"
    "See benchmarks/bench_store.sh for the whole comparison with Orthanc.\n";

int
main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    tsr_log_level = TSR_LOG_WARN;
    const char *pos[4] = {0};
    const char *peer = "orthanc";
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] == '-' && a[1] == '-') {
            if (strcmp(a, "--help") == 0) {
                fputs(k_usage, stdout);
                return 0;
            }
            if (!v) {
                die("%s needs a value", a);
            }
            i++;
            if (strcmp(a, "--base") == 0) {
                g_o.base = v;
            } else if (strcmp(a, "--label") == 0) {
                g_o.label = v;
            } else if (strcmp(a, "--tsv") == 0) {
                g_o.tsv = v;
            } else if (strcmp(a, "--only") == 0) {
                g_o.only = v;
            } else if (strcmp(a, "--peer") == 0) {
                peer = v;
            } else if (strcmp(a, "--runs") == 0) {
                g_o.runs = atoi(v);
            } else if (strcmp(a, "--copies") == 0) {
                g_o.copies = atoi(v);
            } else if (strcmp(a, "--small") == 0) {
                g_o.small = atoi(v);
            } else if (strcmp(a, "--per-request") == 0) {
                g_o.per_request = atoi(v);
            } else if (strcmp(a, "--small-per-request") == 0) {
                g_o.small_per_request = atoi(v);
            } else if (strcmp(a, "--qido-n") == 0) {
                g_o.qido_n = atoi(v);
            } else if (strcmp(a, "--meta-n") == 0) {
                g_o.meta_n = atoi(v);
            } else if (strcmp(a, "--clients") == 0) {
                g_o.n_clients = 0;
                for (const char *p = v; *p && g_o.n_clients < 4;) {
                    g_o.clients[g_o.n_clients++] = atoi(p);
                    p += strcspn(p, ",");
                    p += *p == ',';
                }
            } else {
                die("unknown option %s\n%s", a, k_usage);
            }
        } else if (n_pos < 4) {
            pos[n_pos++] = a;
        } else {
            die("too many arguments\n%s", k_usage);
        }
    }
    if (g_o.runs < 1 || g_o.small < 1 || g_o.small > 100000 || g_o.copies < 0 || g_o.copies > 9 ||
        g_o.per_request < 1 || g_o.small_per_request < 1 || g_o.qido_n < 1 || g_o.meta_n < 1 ||
        g_o.n_clients < 1) {
        die("option out of range");
    }
    for (int i = 0; i < g_o.n_clients; i++) {
        if (g_o.clients[i] < 1 || g_o.clients[i] > 8) {
            die("--clients: 1..8");
        }
    }
    const char *cmd = pos[0] ? pos[0] : "";
    if (strcmp(cmd, "gen") == 0 && n_pos == 2) {
        return cmd_gen(pos[1]);
    }
    if (strcmp(cmd, "import") == 0 && n_pos == 3) {
        return cmd_import(pos[1], pos[2]);
    }
    if (strcmp(cmd, "tessera") == 0 && n_pos == 3) {
        return cmd_tessera(pos[1], pos[2]);
    }
    if (strcmp(cmd, "http") == 0 && n_pos == 3) {
        return cmd_http(pos[1], pos[2]);
    }
    if (strcmp(cmd, "report") == 0 && n_pos == 2) {
        return cmd_report(pos[1], peer);
    }
    fputs(k_usage, stderr);
    return 2;
}
