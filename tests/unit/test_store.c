/* SPDX-License-Identifier: MIT */
/* test_store.c: the study store (store/store.h): opening and its failure paths, batch ingest,
 * idempotency and conflicts, refused inputs, limits, rollback of uncommitted batches, crash
 * recovery, lookups, WADO-RS metadata and concurrent commits. Every instance is generated in
 * the test with the demo writer (cli/demo.h): small 4x4 MONOCHROME2 16-bit images. Each case
 * works in its own mkdtemp folder, removed by the teardown even when the case fails. */
#define _GNU_SOURCE
#include "tsr_test.h"

#include "demo.h"
#include "store.h"

#include <dirent.h>
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- fixture */

typedef struct fixture {
    char root[256]; /* mkdtemp folder */
    char dir[320];  /* the store's folder (root/store) */
    char in[320];   /* generated input files (root/in) */
    store *s;       /* the open store, closed by the teardown when a case fails */
} fixture;

static int
setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) {
        return -1;
    }
    if (tsr_test_tmpdir(fx->root, sizeof fx->root, "store") != 0) {
        free(fx);
        return -1;
    }
    snprintf(fx->dir, sizeof fx->dir, "%s/store", fx->root);
    snprintf(fx->in, sizeof fx->in, "%s/in", fx->root);
    if (mkdir(fx->in, 0755) != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fixture *fx = *state;
    store_close(fx->s);
    int rc = tsr_test_rmtree(fx->root);
    free(fx);
    return rc == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- instances */

#define UID_ROOT "1.2.826.0.1.3680043.9.7777"

/* What one generated instance holds. NULL strings are left out of the dataset. */
typedef struct spec {
    char study[65], series[65], sop[65];
    const char *patient_name, *patient_id, *study_date, *modality;
    int series_number, instance_number; /* < 0: absent */
    uint16_t rows, cols;                /* 0: 4 */
    uint16_t seed;                      /* pixel values start here: different bytes */
    size_t pixel_words;                 /* 0: rows * cols (fewer: pixel data too short) */
} spec;

/* A spec for instance `i` of series `se` of study `st` (all >= 1). */
static spec
mk(int st, int se, int i)
{
    spec s;
    memset(&s, 0, sizeof s);
    snprintf(s.study, sizeof s.study, UID_ROOT ".%d", st);
    snprintf(s.series, sizeof s.series, UID_ROOT ".%d.%d", st, se);
    snprintf(s.sop, sizeof s.sop, UID_ROOT ".%d.%d.%d", st, se, i);
    s.patient_name = "TEST^PATIENT";
    s.patient_id = "PID1";
    s.study_date = "20210304";
    s.modality = "CT";
    s.series_number = se;
    s.instance_number = i;
    return s;
}

/* Writes the instance to `path` (explicit VR little endian Part 10). */
static void
write_spec(const spec *s, const char *path)
{
    demo_ds *ds = NULL;
    tsr_err err = {0};
    assert_int_equal(demo_ds_create(&ds, &err), TSR_OK);
    uint16_t rows = s->rows ? s->rows : 4, cols = s->cols ? s->cols : 4;
    demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x0016), "UI", "1.2.840.10008.5.1.4.1.1.7");
    demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x0018), "UI", s->sop);
    demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x0020), "DA", s->study_date);
    demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x0030), "TM", "101500");
    demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x0050), "SH", "ACC1");
    demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x0060), "CS", s->modality);
    demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x1030), "LO", "Store test");
    demo_ds_put_str(ds, DEMO_TAG(0x0010, 0x0010), "PN", s->patient_name);
    demo_ds_put_str(ds, DEMO_TAG(0x0010, 0x0020), "LO", s->patient_id);
    demo_ds_put_str(ds, DEMO_TAG(0x0020, 0x000D), "UI", s->study);
    demo_ds_put_str(ds, DEMO_TAG(0x0020, 0x000E), "UI", s->series);
    if (s->series_number >= 0) {
        demo_ds_put_is(ds, DEMO_TAG(0x0020, 0x0011), s->series_number);
    }
    if (s->instance_number >= 0) {
        demo_ds_put_is(ds, DEMO_TAG(0x0020, 0x0013), s->instance_number);
    }
    demo_ds_put_us(ds, DEMO_TAG(0x0028, 0x0002), 1);
    demo_ds_put_str(ds, DEMO_TAG(0x0028, 0x0004), "CS", "MONOCHROME2");
    demo_ds_put_us(ds, DEMO_TAG(0x0028, 0x0010), rows);
    demo_ds_put_us(ds, DEMO_TAG(0x0028, 0x0011), cols);
    demo_ds_put_us(ds, DEMO_TAG(0x0028, 0x0100), 16);
    demo_ds_put_us(ds, DEMO_TAG(0x0028, 0x0101), 16);
    demo_ds_put_us(ds, DEMO_TAG(0x0028, 0x0102), 15);
    demo_ds_put_us(ds, DEMO_TAG(0x0028, 0x0103), 0);
    size_t n = s->pixel_words ? s->pixel_words : (size_t)rows * cols;
    uint16_t *px = malloc(n * sizeof *px);
    assert_non_null(px);
    for (size_t k = 0; k < n; k++) {
        px[k] = (uint16_t)(s->seed + k * 100);
    }
    demo_ds_put_words(ds, DEMO_TAG(0x7FE0, 0x0010), px, n);
    free(px);
    int rc = demo_ds_write(ds, path, &err);
    demo_ds_free(ds);
    if (rc != TSR_OK) {
        fail_msg("demo_ds_write(%s): %s", path, err.msg);
    }
}

/* Writes the spec as fx->in/<name> and returns the path in `buf`. */
static const char *
gen(const fixture *fx, const spec *s, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", fx->in, name);
    write_spec(s, buf);
    return buf;
}

static uint8_t *
read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail_msg("cannot open %s", path);
    }
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void
write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len) {
        assert_int_equal(fwrite(data, 1, len, f), len);
    }
    assert_int_equal(fclose(f), 0);
}

static void
assert_same_file(const char *a, const char *b)
{
    size_t na, nb;
    uint8_t *ba = read_all(a, &na), *bb = read_all(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(ba, bb, na);
    free(ba);
    free(bb);
}

static long
file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_size;
}

/* Entries of a folder other than . and .. (-1 when it cannot be read). */
static int
count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        return -1;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            n++;
        }
    }
    closedir(d);
    return n;
}

static int g_regular_files;

static int
count_regular(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)st;
    (void)ftw;
    g_regular_files += flag == FTW_F;
    return 0;
}

/* Regular files anywhere under `dir`. */
static int
count_files_under(const char *dir)
{
    g_regular_files = 0;
    assert_int_equal(nftw(dir, count_regular, 16, FTW_PHYS), 0);
    return g_regular_files;
}

static void
assert_tmp_empty(const fixture *fx)
{
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s/tmp", fx->dir);
    assert_int_equal(count_entries(tmp), 0);
}

static store *
open_store(fixture *fx, int no_sync, uint64_t max_instance)
{
    store_opts o = {.dir = fx->dir, .no_sync = no_sync, .max_instance = max_instance};
    store *s = NULL;
    tsr_err err = {0};
    int rc = store_open(&o, &s, &err);
    if (rc != TSR_OK) {
        fail_msg("store_open(%s): %s", fx->dir, err.msg);
    }
    assert_non_null(s);
    assert_null(fx->s);
    fx->s = s;
    return s;
}

static void
close_store(fixture *fx)
{
    store_close(fx->s);
    fx->s = NULL;
}

static void
assert_counts(store *s, long studies, long series, long instances)
{
    long a = -1, b = -1, c = -1;
    tsr_err err = {0};
    assert_int_equal(store_counts(s, &a, &b, &c, &err), TSR_OK);
    assert_int_equal(a, studies);
    assert_int_equal(b, series);
    assert_int_equal(c, instances);
}

/* Ingests files as one batch and commits; returns the batch (caller frees) for its results. */
static store_batch *
ingest(store *s, const char *required_study, const char *const *paths, int n)
{
    store_batch *b = NULL;
    tsr_err err = {0};
    assert_int_equal(store_batch_begin(s, required_study, &b, &err), TSR_OK);
    for (int i = 0; i < n; i++) {
        int rc = store_part_file(b, paths[i], &err);
        if (rc != TSR_OK) {
            fail_msg("store_part_file(%s): %s", paths[i], err.msg);
        }
    }
    int rc = store_batch_commit(b, &err);
    if (rc != TSR_OK) {
        fail_msg("store_batch_commit: %s", err.msg);
    }
    return b;
}

/* Streams `len` bytes as one part, in chunks of `chunk` bytes. */
static void
add_part(store_batch *b, const char *name, const void *data, size_t len, size_t chunk)
{
    tsr_err err = {0};
    assert_int_equal(store_part_begin(b, name, &err), TSR_OK);
    const uint8_t *p = data;
    for (size_t at = 0; at < len; at += chunk) {
        size_t n = len - at < chunk ? len - at : chunk;
        assert_int_equal(store_part_write(b, p + at, n, &err), TSR_OK);
    }
    assert_int_equal(store_part_end(b, &err), TSR_OK);
}

static const char *
kind_name(store_result_kind k)
{
    return k == STORE_STORED ? "STORED" : k == STORE_ALREADY ? "ALREADY" : "FAILED";
}

static void
assert_result(const store_result *r, store_result_kind kind, uint16_t reason)
{
    if (r->kind != kind || (kind == STORE_FAILED && r->reason != reason)) {
        fail_msg("result '%s': got %s 0x%04X (%s), expected %s 0x%04X", r->name, kind_name(r->kind),
                 r->reason, r->message, kind_name(kind), reason);
    }
    if (kind == STORE_FAILED) {
        assert_true(r->message[0] != '\0');
    }
}

/* ---------------------------------------------------------------- open */

static void
test_open_creates_layout(void **state)
{
    fixture *fx = *state;
    char p[512];
    /* a nested folder that does not exist yet */
    snprintf(fx->dir, sizeof fx->dir, "%s/a/b/store", fx->root);
    store *s = open_store(fx, 0, 0);
    struct stat st;
    snprintf(p, sizeof p, "%s/index.sqlite", fx->dir);
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    snprintf(p, sizeof p, "%s/objects", fx->dir);
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    snprintf(p, sizeof p, "%s/tmp", fx->dir);
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    char real[4096];
    assert_non_null(realpath(fx->dir, real));
    assert_string_equal(store_dir(s), real);
    assert_counts(s, 0, 0, 0);

    /* store something, close, reopen: still there */
    spec sp = mk(1, 1, 1);
    const char *in[1] = {gen(fx, &sp, "a.dcm", p, sizeof p)};
    store_batch_free(ingest(s, NULL, in, 1));
    close_store(fx);
    s = open_store(fx, 0, 0);
    assert_counts(s, 1, 1, 1);
    close_store(fx);
    /* and once more with err NULL */
    store_opts o = {.dir = fx->dir};
    s = NULL;
    assert_int_equal(store_open(&o, &s, NULL), TSR_OK);
    assert_non_null(s);
    fx->s = s;
    assert_counts(s, 1, 1, 1);
    close_store(fx);
    store_close(NULL); /* no-op */
}

static void
test_open_bad_arguments(void **state)
{
    (void)state;
    store *sentinel = (store *)(uintptr_t)0x1;
    store *s = sentinel;
    tsr_err err = {0};
    assert_int_equal(store_open(NULL, &s, &err), TSR_EINVAL);
    assert_true(err.msg[0] != '\0');
    assert_ptr_equal(s, sentinel);
    store_opts o = {.dir = ""};
    memset(&err, 0, sizeof err);
    assert_int_equal(store_open(&o, &s, &err), TSR_EINVAL);
    assert_ptr_equal(s, sentinel);
    o.dir = NULL;
    assert_int_equal(store_open(&o, &s, NULL), TSR_EINVAL);
    assert_ptr_equal(s, sentinel);
}

static void
test_open_garbage_index(void **state)
{
    fixture *fx = *state;
    assert_int_equal(mkdir(fx->dir, 0755), 0);
    char p[512];
    snprintf(p, sizeof p, "%s/index.sqlite", fx->dir);
    uint8_t junk[8192];
    uint32_t x = 0x9E3779B9u;
    for (size_t i = 0; i < sizeof junk; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        junk[i] = (uint8_t)x;
    }
    write_bytes(p, junk, sizeof junk);

    store_opts o = {.dir = fx->dir};
    store *sentinel = (store *)(uintptr_t)0x1;
    store *s = sentinel;
    tsr_err err = {0};
    assert_int_equal(store_open(&o, &s, &err), TSR_ECORRUPT);
    assert_int_equal(err.code, TSR_ECORRUPT);
    assert_non_null(strstr(err.msg, "index.sqlite"));
    assert_ptr_equal(s, sentinel);
    assert_int_equal(store_open(&o, &s, NULL), TSR_ECORRUPT);
    assert_ptr_equal(s, sentinel);
    /* the damaged file is left for the operator, not overwritten */
    size_t n;
    uint8_t *back = read_all(p, &n);
    assert_int_equal(n, sizeof junk);
    assert_memory_equal(back, junk, n);
    free(back);
}

static void
test_open_damaged_index(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, 1, 0);
    char p[512];
    const char *in[6];
    char paths[6][512];
    for (int i = 0; i < 6; i++) {
        spec sp = mk(1, 1, i + 1);
        char name[32];
        snprintf(name, sizeof name, "f%d.dcm", i);
        in[i] = gen(fx, &sp, name, paths[i], sizeof paths[i]);
    }
    store_batch_free(ingest(s, NULL, in, 6));
    close_store(fx);
    /* a valid header, but every page after the first overwritten with junk */
    snprintf(p, sizeof p, "%s/index.sqlite", fx->dir);
    size_t n;
    uint8_t *db = read_all(p, &n);
    assert_true(n > 4096);
    uint32_t page = (uint32_t)db[16] << 8 | db[17];
    if (page == 1) {
        page = 65536;
    }
    assert_true(n > page);
    for (size_t i = page; i < n; i++) {
        db[i] = (uint8_t)(i * 7 + 3);
    }
    write_bytes(p, db, n);
    free(db);
    store_opts o = {.dir = fx->dir};
    s = NULL;
    tsr_err err = {0};
    int rc = store_open(&o, &s, &err);
    fx->s = s;
    assert_int_equal(rc, TSR_ECORRUPT);
    assert_null(s);
    assert_non_null(strstr(err.msg, "index.sqlite"));
}

static void
test_open_future_schema(void **state)
{
    fixture *fx = *state;
    open_store(fx, 1, 0);
    close_store(fx);
    char p[512];
    snprintf(p, sizeof p, "%s/index.sqlite", fx->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "UPDATE meta SET value='99' WHERE key='schema_version'", NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_close(db);

    store_opts o = {.dir = fx->dir};
    store *sentinel = (store *)(uintptr_t)0x1;
    store *s = sentinel;
    tsr_err err = {0};
    int rc = store_open(&o, &s, &err);
    assert_int_not_equal(rc, TSR_OK);
    assert_int_equal(err.code, rc);
    assert_ptr_equal(s, sentinel);
    assert_non_null(strstr(err.msg, "99"));
    assert_non_null(strstr(err.msg, "schema"));
    assert_int_equal(store_open(&o, &s, NULL), rc);
    assert_ptr_equal(s, sentinel);

    /* the refused index was not rewritten to our version */
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema_version'", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "99");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* ---------------------------------------------------------------- ingest */

static void
test_ingest_batch(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, 0, 0); /* the default, synced path */
    enum { N = 5 };
    spec sp[N];
    char paths[N][512];
    const char *in[N];
    long total = 0;
    for (int i = 0; i < N; i++) {
        sp[i] = mk(1, i < 3 ? 1 : 2, i + 1);
        sp[i].seed = (uint16_t)i;
        char name[32];
        snprintf(name, sizeof name, "in%d.dcm", i);
        in[i] = gen(fx, &sp[i], name, paths[i], sizeof paths[i]);
        total += file_size(in[i]);
    }
    store_batch *b = ingest(s, NULL, in, N);
    assert_int_equal(store_batch_bytes(b), (uint64_t)total);
    int n = 0;
    const store_result *r = store_batch_results(b, &n);
    assert_int_equal(n, N);
    for (int i = 0; i < N; i++) {
        assert_result(&r[i], STORE_STORED, 0);
        assert_string_equal(r[i].sop_instance_uid, sp[i].sop);
        assert_string_equal(r[i].study_uid, sp[i].study);
        assert_string_equal(r[i].series_uid, sp[i].series);
        assert_string_equal(r[i].sop_class_uid, "1.2.840.10008.5.1.4.1.1.7");
        assert_string_equal(r[i].name, in[i]);
    }
    store_batch_free(b);
    assert_counts(s, 1, 2, N);
    assert_tmp_empty(fx);

    char objects[600];
    snprintf(objects, sizeof objects, "%s/objects/", store_dir(s));
    for (int i = 0; i < N; i++) {
        store_instance inst;
        tsr_err err = {0};
        assert_int_equal(store_find_instance(s, sp[i].study, sp[i].series, sp[i].sop, &inst, &err),
                         TSR_OK);
        assert_int_equal(strncmp(inst.path, objects, strlen(objects)), 0);
        assert_same_file(inst.path, in[i]);
        assert_int_equal(inst.size, (uint64_t)file_size(in[i]));
        assert_string_equal(inst.sop_instance_uid, sp[i].sop);
        assert_string_equal(inst.study_uid, sp[i].study);
        assert_string_equal(inst.series_uid, sp[i].series);
        assert_string_equal(inst.transfer_syntax, "1.2.840.10008.1.2.1");
        assert_int_equal(inst.rows, 4);
        assert_int_equal(inst.columns, 4);
        assert_int_equal(inst.frames, 1);
        assert_int_equal(inst.instance_number, i + 1);
        assert_string_equal(inst.patient_name, "TEST^PATIENT");
        assert_string_equal(inst.patient_id, "PID1");
        assert_string_equal(inst.study_date, "20210304");
        assert_string_equal(inst.modality, "CT");
    }
    assert_int_equal(count_files_under(objects), N);

    /* committing again, and committing an empty batch, change nothing */
    b = NULL;
    tsr_err err = {0};
    assert_int_equal(store_batch_begin(s, NULL, &b, &err), TSR_OK);
    assert_int_equal(store_batch_commit(b, &err), TSR_OK);
    assert_int_equal(store_batch_commit(b, &err), TSR_OK);
    store_batch_results(b, &n);
    assert_int_equal(n, 0);
    store_batch_free(b);
    assert_counts(s, 1, 2, N);
    close_store(fx);
}

static void
test_ingest_streamed_parts(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, 1, 0);
    spec sp = mk(2, 1, 1);
    char p[512];
    gen(fx, &sp, "s.dcm", p, sizeof p);
    size_t len;
    uint8_t *data = read_all(p, &len);
    store_batch *b = NULL;
    tsr_err err = {0};
    assert_int_equal(store_batch_begin(s, NULL, &b, &err), TSR_OK);
    /* writing or ending with no part open is the caller's bug, reported, not a crash */
    assert_int_equal(store_part_write(b, data, 4, &err), TSR_EINTERNAL);
    assert_int_equal(store_part_end(b, &err), TSR_EINTERNAL);
    add_part(b, "part 1", data, len, 7); /* odd chunks that split every element */
    assert_int_equal(store_part_begin(b, "second", &err), TSR_OK);
    assert_int_equal(store_part_begin(b, "third", &err), TSR_EINTERNAL); /* one at a time */
    assert_int_equal(store_part_end(b, &err), TSR_OK);                   /* "second": empty */
    assert_int_equal(store_batch_bytes(b), (uint64_t)len);
    /* before commit: not visible */
    store_instance inst;
    assert_int_equal(store_find_instance(s, NULL, NULL, sp.sop, &inst, NULL), TSR_ENOTFOUND);
    assert_int_equal(store_batch_commit(b, &err), TSR_OK);
    int n;
    const store_result *r = store_batch_results(b, &n);
    assert_int_equal(n, 2);
    assert_result(&r[0], STORE_STORED, 0);
    assert_string_equal(r[0].name, "part 1");
    assert_result(&r[1], STORE_FAILED, 0xC000);
    assert_string_equal(r[1].name, "second");
    store_batch_free(b);
    assert_int_equal(store_find_instance(s, NULL, NULL, sp.sop, &inst, &err), TSR_OK);
    size_t len2;
    uint8_t *back = read_all(inst.path, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(back, data, len);
    free(back);
    free(data);
    assert_tmp_empty(fx);
    close_store(fx);
}

/* "After TSR_OK every STORED result is durable": a part added after a commit must either be
 * refused or be committed by the next commit, never reported STORED and then dropped. */
static void
test_parts_after_commit(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, 1, 0);
    spec a = mk(30, 1, 1), c = mk(30, 1, 2);
    char pa[512], pc[512];
    gen(fx, &a, "a.dcm", pa, sizeof pa);
    gen(fx, &c, "c.dcm", pc, sizeof pc);
    store_batch *b = NULL;
    tsr_err err = {0};
    assert_int_equal(store_batch_begin(s, NULL, &b, &err), TSR_OK);
    assert_int_equal(store_part_file(b, pa, &err), TSR_OK);
    assert_int_equal(store_batch_commit(b, &err), TSR_OK);
    int late = store_part_file(b, pc, &err);
    int rc = store_batch_commit(b, &err);
    int n;
    const store_result *r = store_batch_results(b, &n);
    char lost[200] = "";
    for (int i = 0; rc == TSR_OK && i < n; i++) {
        store_instance inst;
        if (r[i].kind == STORE_STORED &&
            store_find_instance(s, NULL, NULL, r[i].sop_instance_uid, &inst, NULL) != TSR_OK) {
            snprintf(lost, sizeof lost, "%s", r[i].name);
        }
    }
    store_batch_free(b);
    if (lost[0]) {
        fail_msg("part '%s' reported STORED after a successful commit (late part_file: %d) but "
                 "is not in the store",
                 lost, late);
    }
    assert_tmp_empty(fx);
    close_store(fx);
}

static void
test_idempotent_same_bytes(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, 1, 0);
    spec sp = mk(3, 1, 1);
    char p[512];
    const char *in[1] = {gen(fx, &sp, "a.dcm", p, sizeof p)};
    store_batch_free(ingest(s, NULL, in, 1));
    assert_counts(s, 1, 1, 1);
    store_batch *b = ingest(s, NULL, in, 1);
    int n;
    const store_result *r = store_batch_results(b, &n);
    assert_int_equal(n, 1);
    assert_result(&r[0], STORE_ALREADY, 0);
    assert_string_equal(r[0].sop_instance_uid, sp.sop);
    assert_string_equal(r[0].study_uid, sp.study);
    store_batch_free(b);
    assert_counts(s, 1, 1, 1);
    assert_tmp_empty(fx);
    char objects[600];
    snprintf(objects, sizeof objects, "%s/objects", fx->dir);
    assert_int_equal(count_files_under(objects), 1);
    close_store(fx);
}

static void
test_conflict_different_bytes(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, 1, 0);
    spec a = mk(4, 1, 1);
    spec c = a; /* same SOP Instance UID, other content */
    c.patient_name = "OTHER^NAME";
    c.seed = 77;
    char pa[512], pc[512];
    const char *in_a[1] = {gen(fx, &a, "a.dcm", pa, sizeof pa)};
    const char *in_c[1] = {gen(fx, &c, "c.dcm", pc, sizeof pc)};
    store_batch_free(ingest(s, NULL, in_a, 1));

    store_batch *b = ingest(s, NULL, in_c, 1);
    int n;
    const store_result *r = store_batch_results(b, &n);
    assert_int_equal(n, 1);
    assert_result(&r[0], STORE_FAILED, 0x0111);
    store_batch_free(b);
    assert_counts(s, 1, 1, 1);

    store_instance inst;
    tsr_err err = {0};
    assert_int_equal(store_find_instance(s, NULL, NULL, a.sop, &inst, &err), TSR_OK);
    assert_same_file(inst.path, pa);
    assert_string_equal(inst.patient_name, "TEST^PATIENT");
    assert_tmp_empty(fx);
    close_store(fx);
}

static void
test_duplicate_within_batch(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, 1, 0);
    spec a = mk(5, 1, 1), c = a, d = mk(5, 1, 2);
    c.seed = 9;
    char pa[512], pc[512], pd[512];
    const char *in[4] = {gen(fx, &a, "a.dcm", pa, sizeof pa), pa,
                         gen(fx, &c, "c.dcm", pc, sizeof pc), gen(fx, &d, "d.dcm", pd, sizeof pd)};
    store_batch *b = ingest(s, NULL, in, 4);
    int n;
    const store_result *r = store_batch_results(b, &n);
    assert_int_equal(n, 4);
    assert_result(&r[0], STORE_STORED, 0);
    assert_result(&r[1], STORE_ALREADY, 0);
    assert_result(&r[2], STORE_FAILED, 0x0111);
    assert_result(&r[3], STORE_STORED, 0);
    store_batch_free(b);
    assert_counts(s, 1, 1, 2);
    store_instance inst;
    assert_int_equal(store_find_instance(s, NULL, NULL, a.sop, &inst, NULL), TSR_OK);
    assert_same_file(inst.path, pa);
    assert_tmp_empty(fx);
    char objects[600];
    snprintf(objects, sizeof objects, "%s/objects", fx->dir);
    assert_int_equal(count_files_under(objects), 2);
    close_store(fx);
}

static void
test_required_study_mismatch(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, 1, 0);
    spec a = mk(6, 1, 1), o = mk(7, 1, 1);
    char pa[512], po[512];
    const char *in[2] = {gen(fx, &o, "o.dcm", po, sizeof po), gen(fx, &a, "a.dcm", pa, sizeof pa)};
    store_batch *b = ingest(s, a.study, in, 2);
    int n;
    const store_result *r = store_batch_results(b, &n);
    assert_int_equal(n, 2);
    assert_result(&r[0], STORE_FAILED, 0xA900);
    assert_non_null(strstr(r[0].message, o.study));
    assert_string_equal(r[0].study_uid, o.study);
    assert_result(&r[1], STORE_STORED, 0);
    store_batch_free(b);
    assert_counts(s, 1, 1, 1);
    assert_int_equal(store_exists(s, o.study, NULL, NULL), TSR_ENOTFOUND);
    assert_int_equal(store_exists(s, a.study, NULL, NULL), TSR_OK);
    assert_tmp_empty(fx);
    close_store(fx);
}

/* A series UID that already belongs to another study is refused for that instance only, and
 * the refused instance leaves nothing behind in the index (no study row without series). */
static void
test_series_of_other_study(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, 1, 0);
    spec a = mk(8, 1, 1);
    spec x = mk(9, 1, 1);
    snprintf(x.series, sizeof x.series, "%s", a.series); /* study 9 claims study 8's series */
    x.patient_id = "PID-OTHER";
    spec ok = mk(10, 1, 1);
    char pa[512], px[512], pok[512];
    const char *in_a[1] = {gen(fx, &a, "a.dcm", pa, sizeof pa)};
    store_batch_free(ingest(s, NULL, in_a, 1));
    const char *in[2] = {gen(fx, &x, "x.dcm", px, sizeof px),
                         gen(fx, &ok, "ok.dcm", pok, sizeof pok)};
    store_batch *b = ingest(s, NULL, in, 2);
    int n;
    const store_result *r = store_batch_results(b, &n);
    assert_int_equal(n, 2);
    assert_result(&r[0], STORE_FAILED, 0xA900);
    assert_result(&r[1], STORE_STORED, 0);
    store_batch_free(b);
    store_instance inst;
    assert_int_equal(store_find_instance(s, NULL, NULL, x.sop, &inst, NULL), TSR_ENOTFOUND);
    char objects[600];
    snprintf(objects, sizeof objects, "%s/objects", fx->dir);
    assert_int_equal(count_files_under(objects), 2);
    /* the refused instance's study must not exist */
    long studies = -1;
    assert_int_equal(store_counts(s, &studies, NULL, NULL, NULL), TSR_OK);
    if (store_exists(s, x.study, NULL, NULL) != TSR_ENOTFOUND) {
        fail_msg("the refused instance left its study %s in the index (%ld studies, expected 2)",
                 x.study, studies);
    }
    assert_counts(s, 2, 2, 2);
    close_store(fx);
}

/* Offset of the first dataset byte after the file meta group of a demo file. */
static size_t
meta_end(const uint8_t *buf, size_t len)
{
    assert_true(len > 144);
    assert_memory_equal(buf + 128, "DICM", 4);
    /* (0002,0000) UL 4 at 132: value at 140 */
    assert_int_equal(buf[132], 0x02);
    assert_int_equal(buf[134], 0x00);
    uint32_t gl = (uint32_t)buf[140] | (uint32_t)buf[141] << 8 | (uint32_t)buf[142] << 16 |
                  (uint32_t)buf[143] << 24;
    assert_true(144 + gl < len);
    return 144 + gl;
}

static void
test_refused_inputs(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, 1, 0);
    spec a = mk(11, 1, 1), z = mk(11, 1, 2), t = mk(11, 1, 3), sh = mk(11, 1, 4);
    sh.pixel_words = 8; /* a well-formed element, half the pixels the attributes promise */
    char pa[512], pz[512], pt[512], psh[512];
    gen(fx, &sh, "sh.dcm", psh, sizeof psh);
    gen(fx, &a, "a.dcm", pa, sizeof pa);
    gen(fx, &z, "z.dcm", pz, sizeof pz);
    gen(fx, &t, "t.dcm", pt, sizeof pt);
    size_t len;
    uint8_t *valid = read_all(pt, &len);
    char junk[1000];
    for (size_t i = 0; i < sizeof junk; i++) {
        junk[i] = "not a DICOM file at all\n"[i % 24];
    }
    size_t ds_at = meta_end(valid, len);
    uint8_t *no_dicm = malloc(len);
    assert_non_null(no_dicm);
    memcpy(no_dicm, valid, len);
    memcpy(no_dicm + 128, "DICX", 4);

    store_batch *b = NULL;
    tsr_err err = {0};
    assert_int_equal(store_batch_begin(s, NULL, &b, &err), TSR_OK);
    assert_int_equal(store_part_file(b, pa, &err), TSR_OK);
    add_part(b, "empty", "", 0, 1);
    add_part(b, "junk", junk, sizeof junk, 256);
    add_part(b, "half", valid, len / 2, 4096);
    add_part(b, "short pixels", valid, len - 8, 4096);
    add_part(b, "no meta", valid + ds_at, len - ds_at, 4096);
    add_part(b, "no DICM", no_dicm, len, 4096);
    add_part(b, "preamble only", valid, 132, 4096);
    assert_int_equal(store_part_file(b, psh, &err), TSR_OK);
    assert_int_equal(store_part_file(b, pz, &err), TSR_OK);
    assert_int_equal(store_batch_commit(b, &err), TSR_OK);
    int n;
    const store_result *r = store_batch_results(b, &n);
    assert_int_equal(n, 10);
    assert_result(&r[0], STORE_STORED, 0);
    for (int i = 1; i <= 8; i++) {
        assert_result(&r[i], STORE_FAILED, 0xC000);
    }
    assert_string_equal(r[1].name, "empty");
    assert_string_equal(r[4].name, "short pixels");
    assert_string_equal(r[8].name, psh);
    assert_result(&r[9], STORE_STORED, 0);
    store_batch_free(b);
    free(valid);
    free(no_dicm);
    assert_counts(s, 1, 1, 2);
    store_instance inst;
    assert_int_equal(store_find_instance(s, NULL, NULL, t.sop, &inst, NULL), TSR_ENOTFOUND);
    assert_int_equal(store_find_instance(s, NULL, NULL, sh.sop, &inst, NULL), TSR_ENOTFOUND);
    assert_tmp_empty(fx);
    close_store(fx);
}

static void
test_max_instance_limit(void **state)
{
    fixture *fx = *state;
    spec small = mk(12, 1, 1), big = mk(12, 1, 2), after = mk(12, 1, 3);
    big.rows = big.cols = 64;
    char ps[512], pb[512], pa[512];
    gen(fx, &small, "small.dcm", ps, sizeof ps);
    gen(fx, &big, "big.dcm", pb, sizeof pb);
    gen(fx, &after, "after.dcm", pa, sizeof pa);
    long limit = file_size(ps); /* exactly the small file: allowed */
    assert_int_equal(file_size(pa), limit);
    assert_true(file_size(pb) > limit);
    store *s = open_store(fx, 1, (uint64_t)limit);

    size_t len;
    uint8_t *bigdata = read_all(pb, &len);
    store_batch *b = NULL;
    tsr_err err = {0};
    assert_int_equal(store_batch_begin(s, NULL, &b, &err), TSR_OK);
    assert_int_equal(store_part_file(b, ps, &err), TSR_OK);
    assert_int_equal(store_part_file(b, pb, &err), TSR_OK);
    add_part(b, "big streamed", bigdata, len, 100);
    assert_int_equal(store_part_file(b, pa, &err), TSR_OK);
    assert_int_equal(store_batch_bytes(b), (uint64_t)(2 * limit + 2 * (long)len));
    assert_int_equal(store_batch_commit(b, &err), TSR_OK);
    int n;
    const store_result *r = store_batch_results(b, &n);
    assert_int_equal(n, 4);
    assert_result(&r[0], STORE_STORED, 0);
    assert_result(&r[1], STORE_FAILED, 0xA700);
    assert_result(&r[2], STORE_FAILED, 0xA700);
    assert_result(&r[3], STORE_STORED, 0);
    store_batch_free(b);
    free(bigdata);
    assert_counts(s, 1, 1, 2);
    assert_tmp_empty(fx);
    close_store(fx);
}

static void
test_uncommitted_batch_freed(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, 1, 0);
    char paths[3][512];
    spec sp[3];
    store_batch *b = NULL;
    tsr_err err = {0};
    assert_int_equal(store_batch_begin(s, NULL, &b, &err), TSR_OK);
    for (int i = 0; i < 3; i++) {
        sp[i] = mk(13, 1, i + 1);
        char name[32];
        snprintf(name, sizeof name, "u%d.dcm", i);
        gen(fx, &sp[i], name, paths[i], sizeof paths[i]);
        assert_int_equal(store_part_file(b, paths[i], &err), TSR_OK);
    }
    /* and a part left open */
    assert_int_equal(store_part_begin(b, "open", &err), TSR_OK);
    assert_int_equal(store_part_write(b, "DICM", 4, &err), TSR_OK);
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s/tmp", fx->dir);
    assert_int_equal(count_entries(tmp), 4);
    store_batch_free(b);
    store_batch_free(NULL);
    assert_counts(s, 0, 0, 0);
    assert_int_equal(count_entries(tmp), 0);
    char objects[600];
    snprintf(objects, sizeof objects, "%s/objects", fx->dir);
    assert_int_equal(count_files_under(objects), 0);
    for (int i = 0; i < 3; i++) {
        store_instance inst;
        assert_int_equal(store_find_instance(s, NULL, NULL, sp[i].sop, &inst, NULL), TSR_ENOTFOUND);
    }
    assert_int_equal(store_exists(s, sp[0].study, NULL, NULL), TSR_ENOTFOUND);
    close_store(fx);
}

static void
test_crash_recovery(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, 1, 0);
    spec a = mk(14, 1, 1);
    char pa[512];
    const char *in[1] = {gen(fx, &a, "a.dcm", pa, sizeof pa)};
    store_batch_free(ingest(s, NULL, in, 1));
    store_instance inst;
    assert_int_equal(store_find_instance(s, NULL, NULL, a.sop, &inst, NULL), TSR_OK);
    char real[4096];
    snprintf(real, sizeof real, "%s", store_dir(s));
    size_t dl = strlen(real);
    assert_int_equal(strncmp(inst.path, real, dl), 0);
    char indexed_rel[4096];
    snprintf(indexed_rel, sizeof indexed_rel, "%s", inst.path + dl + 1);
    close_store(fx);

    /* A commit killed after its renames: files in objects/ that the index never recorded, an
     * intent naming them (and an indexed file, which must survive), and a stray upload. */
    char orphan_dir[4200], orphan[4300], orphan2[4300], p[4400];
    snprintf(orphan_dir, sizeof orphan_dir, "%s/objects/ab/" UID_ROOT ".99/" UID_ROOT ".99.1",
             real);
    tsr_err err = {0};
    assert_int_equal(demo_mkdirs(orphan_dir, &err), TSR_OK);
    snprintf(orphan, sizeof orphan, "%s/" UID_ROOT ".99.1.1", orphan_dir);
    snprintf(orphan2, sizeof orphan2, "%s/" UID_ROOT ".99.1.2", orphan_dir);
    write_bytes(orphan, "orphan bytes", 12);
    write_bytes(orphan2, "orphan bytes 2", 14);
    snprintf(p, sizeof p, "%s/tmp/commit-x.intent", real);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "objects/ab/" UID_ROOT ".99/" UID_ROOT ".99.1/" UID_ROOT ".99.1.1\n");
    fprintf(f, "%s\n", indexed_rel);
    fprintf(f, "objects/ab/" UID_ROOT ".99/" UID_ROOT ".99.1/" UID_ROOT ".99.1.2\n");
    fprintf(f, "objects/ab/never/written\n");
    assert_int_equal(fclose(f), 0);
    snprintf(p, sizeof p, "%s/tmp/up-Ab12Cd", real);
    write_bytes(p, "partial upload", 14);

    s = open_store(fx, 1, 0);
    assert_int_not_equal(access(orphan, F_OK), 0);
    assert_int_not_equal(access(orphan2, F_OK), 0);
    assert_tmp_empty(fx);
    assert_int_equal(store_find_instance(s, NULL, NULL, a.sop, &inst, NULL), TSR_OK);
    assert_same_file(inst.path, pa);
    assert_counts(s, 1, 1, 1);
    char objects[4200];
    snprintf(objects, sizeof objects, "%s/objects", real);
    assert_int_equal(count_files_under(objects), 1);
    close_store(fx);
}

/* ---------------------------------------------------------------- lookups */

static void
test_find_instance_scope(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, 1, 0);
    spec a = mk(15, 1, 1), o = mk(16, 1, 1);
    char pa[512], po[512];
    const char *in[2] = {gen(fx, &a, "a.dcm", pa, sizeof pa), gen(fx, &o, "o.dcm", po, sizeof po)};
    store_batch_free(ingest(s, NULL, in, 2));
    store_instance inst;
    tsr_err err = {0};
    assert_int_equal(store_find_instance(s, a.study, a.series, a.sop, &inst, &err), TSR_OK);
    assert_int_equal(store_find_instance(s, a.study, NULL, a.sop, &inst, &err), TSR_OK);
    assert_int_equal(store_find_instance(s, NULL, a.series, a.sop, &inst, &err), TSR_OK);
    assert_string_equal(inst.sop_instance_uid, a.sop);

    memset(&err, 0, sizeof err);
    assert_int_equal(store_find_instance(s, o.study, NULL, a.sop, &inst, &err), TSR_ENOTFOUND);
    assert_int_equal(err.code, TSR_ENOTFOUND);
    assert_non_null(strstr(err.msg, a.sop));
    assert_int_equal(store_find_instance(s, a.study, o.series, a.sop, &inst, &err), TSR_ENOTFOUND);
    assert_int_equal(store_find_instance(s, o.study, o.series, a.sop, &inst, NULL), TSR_ENOTFOUND);
    assert_int_equal(store_find_instance(s, NULL, NULL, UID_ROOT ".404", &inst, &err),
                     TSR_ENOTFOUND);

    assert_int_equal(store_exists(s, a.study, NULL, &err), TSR_OK);
    assert_int_equal(store_exists(s, a.study, a.series, &err), TSR_OK);
    memset(&err, 0, sizeof err);
    assert_int_equal(store_exists(s, a.study, o.series, &err), TSR_ENOTFOUND);
    assert_non_null(strstr(err.msg, o.series));
    assert_int_equal(store_exists(s, UID_ROOT ".404", NULL, &err), TSR_ENOTFOUND);
    assert_non_null(strstr(err.msg, UID_ROOT ".404"));
    close_store(fx);
}

typedef struct seen {
    char sop[16][65];
    int series_number[16], instance_number[16];
    int n, stop_after, calls;
} seen;

static int
collect_instance(void *user, const store_instance *inst)
{
    seen *v = user;
    v->calls++;
    if (v->n < 16) {
        snprintf(v->sop[v->n], sizeof v->sop[v->n], "%s", inst->sop_instance_uid);
        v->instance_number[v->n] = inst->instance_number;
        v->n++;
    }
    return v->stop_after && v->calls >= v->stop_after ? 7 : 0;
}

/* Ingests study 17: series number 2 (UID ending .1) with instance 1, series number 1 (UID
 * ending .2) with instances 10, 2, 3, in scrambled order over two batches. Returns the specs
 * in the expected order. */
static void
ordered_study(fixture *fx, store *s, spec out[4])
{
    spec se2_1 = mk(17, 1, 1);
    se2_1.series_number = 2;
    spec i10 = mk(17, 2, 10), i2 = mk(17, 2, 2), i3 = mk(17, 2, 3);
    i10.series_number = i2.series_number = i3.series_number = 1;
    char p[4][512];
    const char *b1[2] = {gen(fx, &i10, "i10.dcm", p[0], sizeof p[0]),
                         gen(fx, &se2_1, "se2.dcm", p[1], sizeof p[1])};
    const char *b2[2] = {gen(fx, &i3, "i3.dcm", p[2], sizeof p[2]),
                         gen(fx, &i2, "i2.dcm", p[3], sizeof p[3])};
    store_batch_free(ingest(s, NULL, b1, 2));
    store_batch_free(ingest(s, NULL, b2, 2));
    out[0] = i2;
    out[1] = i3;
    out[2] = i10;
    out[3] = se2_1;
}

static void
test_each_instance_order(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, 1, 0);
    spec want[4];
    ordered_study(fx, s, want);
    seen v;
    memset(&v, 0, sizeof v);
    tsr_err err = {0};
    assert_int_equal(store_each_instance(s, want[0].study, NULL, collect_instance, &v, &err),
                     TSR_OK);
    assert_int_equal(v.n, 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(v.sop[i], want[i].sop);
        assert_int_equal(v.instance_number[i], want[i].instance_number);
    }
    /* one series */
    memset(&v, 0, sizeof v);
    assert_int_equal(
        store_each_instance(s, want[0].study, want[3].series, collect_instance, &v, &err), TSR_OK);
    assert_int_equal(v.n, 1);
    assert_string_equal(v.sop[0], want[3].sop);
    /* a non-zero return stops the walk and is returned */
    memset(&v, 0, sizeof v);
    v.stop_after = 2;
    assert_int_equal(store_each_instance(s, want[0].study, NULL, collect_instance, &v, &err), 7);
    assert_int_equal(v.calls, 2);
    /* unknown study / series in another study: not found, callback never called */
    memset(&v, 0, sizeof v);
    assert_int_equal(store_each_instance(s, UID_ROOT ".404", NULL, collect_instance, &v, &err),
                     TSR_ENOTFOUND);
    assert_int_equal(
        store_each_instance(s, want[0].study, UID_ROOT ".404", collect_instance, &v, NULL),
        TSR_ENOTFOUND);
    assert_int_equal(v.calls, 0);
    close_store(fx);
}

/* store_neighbours: instances of the same series around one, nearest first, after then
 * before; other series never appear. Series 1 holds instances 2, 3, 10 (in that order). */
static void
test_neighbours(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, 1, 0);
    spec want[4];
    ordered_study(fx, s, want);
    tsr_err err = {0};
    store_instance mid;
    assert_int_equal(store_find_instance(s, NULL, NULL, want[1].sop, &mid, &err), TSR_OK);
    seen v;
    memset(&v, 0, sizeof v);
    assert_int_equal(store_neighbours(s, &mid, 3, collect_instance, &v, &err), TSR_OK);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.sop[0], want[2].sop); /* after: 10 */
    assert_string_equal(v.sop[1], want[0].sop); /* before: 2 */
    /* at the end of the series: only the ones before, nearest first */
    store_instance last;
    assert_int_equal(store_find_instance(s, NULL, NULL, want[2].sop, &last, &err), TSR_OK);
    memset(&v, 0, sizeof v);
    assert_int_equal(store_neighbours(s, &last, 1, collect_instance, &v, &err), TSR_OK);
    assert_int_equal(v.n, 1);
    assert_string_equal(v.sop[0], want[1].sop);
    /* the only instance of its series: none */
    store_instance alone;
    assert_int_equal(store_find_instance(s, NULL, NULL, want[3].sop, &alone, &err), TSR_OK);
    memset(&v, 0, sizeof v);
    assert_int_equal(store_neighbours(s, &alone, 4, collect_instance, &v, &err), TSR_OK);
    assert_int_equal(v.n, 0);
    close_store(fx);
}

typedef struct metas {
    json_t *arr;
    int bad;
} metas;

static int
collect_json(void *user, const char *json, size_t len)
{
    metas *m = user;
    json_error_t e;
    json_t *o = json_loadb(json, len, 0, &e);
    if (!o || !json_is_object(o) || strlen(json) != len) {
        m->bad++;
        json_decref(o);
        return 0;
    }
    json_array_append_new(m->arr, o);
    return 0;
}

static const char *
json_first_string(json_t *obj, const char *tag)
{
    json_t *v = json_array_get(json_object_get(json_object_get(obj, tag), "Value"), 0);
    return json_string_value(v);
}

static void
test_each_metadata_json(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, 1, 0);
    spec want[4];
    ordered_study(fx, s, want);
    metas m = {json_array(), 0};
    tsr_err err = {0};
    assert_int_equal(store_each_metadata(s, want[0].study, NULL, NULL, collect_json, &m, &err),
                     TSR_OK);
    assert_int_equal(m.bad, 0);
    assert_int_equal(json_array_size(m.arr), 4);
    for (int i = 0; i < 4; i++) {
        json_t *o = json_array_get(m.arr, (size_t)i);
        assert_non_null(json_first_string(o, "0020000D"));
        assert_string_equal(json_first_string(o, "0020000D"), want[i].study);
        assert_string_equal(json_first_string(o, "0020000E"), want[i].series);
        assert_string_equal(json_first_string(o, "00080018"), want[i].sop);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(o, "00080060"), "vr")), "CS");
        /* the file meta group is not part of the metadata */
        assert_null(json_object_get(o, "00020010"));
        json_t *px = json_object_get(o, "7FE00010");
        assert_non_null(px);
        const char *uri = json_string_value(json_object_get(px, "BulkDataURI"));
        assert_non_null(uri);
        assert_int_equal(strncmp(uri, "/studies/", 9), 0);
        char expect[400];
        snprintf(expect, sizeof expect, "/studies/%s/series/%s/instances/%s/bulkdata/7FE00010",
                 want[i].study, want[i].series, want[i].sop);
        assert_string_equal(uri, expect);
        assert_null(json_object_get(px, "InlineBinary"));
    }
    json_decref(m.arr);

    /* series scope, one instance, and failures */
    m.arr = json_array();
    assert_int_equal(
        store_each_metadata(s, want[0].study, want[0].series, NULL, collect_json, &m, &err),
        TSR_OK);
    assert_int_equal(json_array_size(m.arr), 3);
    assert_int_equal(
        store_each_metadata(s, want[0].study, NULL, want[3].sop, collect_json, &m, &err), TSR_OK);
    assert_int_equal(json_array_size(m.arr), 4);
    assert_string_equal(json_first_string(json_array_get(m.arr, 3), "00080018"), want[3].sop);
    json_decref(m.arr);
    m.arr = json_array();
    assert_int_equal(store_each_metadata(s, UID_ROOT ".404", NULL, NULL, collect_json, &m, &err),
                     TSR_ENOTFOUND);
    assert_int_equal(
        store_each_metadata(s, want[0].study, NULL, UID_ROOT ".404", collect_json, &m, &err),
        TSR_ENOTFOUND);
    /* an instance of the study, asked for under another series */
    assert_int_equal(
        store_each_metadata(s, want[0].study, want[3].series, want[0].sop, collect_json, &m, NULL),
        TSR_ENOTFOUND);
    assert_int_equal(json_array_size(m.arr), 0);
    json_decref(m.arr);
    close_store(fx);
}

/* ---------------------------------------------------------------- concurrency */

enum { THREADS = 4, BATCHES = 3, PER_BATCH = 5 };

typedef struct worker {
    store *s;
    char paths[BATCHES][PER_BATCH][512];
    int rc_fail, not_stored;
    char msg[512];
} worker;

static void *
worker_main(void *arg)
{
    worker *w = arg;
    for (int k = 0; k < BATCHES; k++) {
        store_batch *b = NULL;
        tsr_err err = {0};
        if (store_batch_begin(w->s, NULL, &b, &err) != TSR_OK) {
            w->rc_fail++;
            continue;
        }
        for (int i = 0; i < PER_BATCH; i++) {
            if (store_part_file(b, w->paths[k][i], &err) != TSR_OK) {
                w->rc_fail++;
                snprintf(w->msg, sizeof w->msg, "%s", err.msg);
            }
        }
        if (store_batch_commit(b, &err) != TSR_OK) {
            w->rc_fail++;
            snprintf(w->msg, sizeof w->msg, "%s", err.msg);
        }
        int n;
        const store_result *r = store_batch_results(b, &n);
        for (int i = 0; i < n; i++) {
            if (r[i].kind != STORE_STORED) {
                w->not_stored++;
                snprintf(w->msg, sizeof w->msg, "%s: %s", r[i].name, r[i].message);
            }
        }
        w->not_stored += PER_BATCH - n;
        store_batch_free(b);
    }
    return NULL;
}

static void
test_concurrent_batches(void **state)
{
    fixture *fx = *state;
    store *s = open_store(fx, 0, 0);
    worker *w = calloc(THREADS, sizeof *w);
    assert_non_null(w);
    /* threads t and t+2 share a study (its row is created by whichever commits first); each
     * thread has its own series */
    for (int t = 0; t < THREADS; t++) {
        w[t].s = s;
        for (int k = 0; k < BATCHES; k++) {
            for (int i = 0; i < PER_BATCH; i++) {
                spec sp = mk(20 + t % 2, t + 1, k * PER_BATCH + i + 1);
                char name[64];
                snprintf(name, sizeof name, "t%d_%d_%d.dcm", t, k, i);
                gen(fx, &sp, name, w[t].paths[k][i], sizeof w[t].paths[k][i]);
            }
        }
    }
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        if (w[t].rc_fail || w[t].not_stored) {
            fail_msg("thread %d: %d call failures, %d not stored (%s)", t, w[t].rc_fail,
                     w[t].not_stored, w[t].msg);
        }
    }
    free(w);
    assert_counts(s, 2, THREADS, THREADS * BATCHES * PER_BATCH);
    char objects[600];
    snprintf(objects, sizeof objects, "%s/objects", fx->dir);
    assert_int_equal(count_files_under(objects), THREADS * BATCHES * PER_BATCH);
    assert_tmp_empty(fx);
    close_store(fx);
    /* and durable across a reopen */
    s = open_store(fx, 0, 0);
    assert_counts(s, 2, THREADS, THREADS * BATCHES * PER_BATCH);
    close_store(fx);
}

TSR_TEST_MAIN(cmocka_unit_test_setup_teardown(test_open_creates_layout, setup, teardown),
              cmocka_unit_test_setup_teardown(test_open_bad_arguments, setup, teardown),
              cmocka_unit_test_setup_teardown(test_open_garbage_index, setup, teardown),
              cmocka_unit_test_setup_teardown(test_open_damaged_index, setup, teardown),
              cmocka_unit_test_setup_teardown(test_open_future_schema, setup, teardown),
              cmocka_unit_test_setup_teardown(test_ingest_batch, setup, teardown),
              cmocka_unit_test_setup_teardown(test_ingest_streamed_parts, setup, teardown),
              cmocka_unit_test_setup_teardown(test_parts_after_commit, setup, teardown),
              cmocka_unit_test_setup_teardown(test_idempotent_same_bytes, setup, teardown),
              cmocka_unit_test_setup_teardown(test_conflict_different_bytes, setup, teardown),
              cmocka_unit_test_setup_teardown(test_duplicate_within_batch, setup, teardown),
              cmocka_unit_test_setup_teardown(test_required_study_mismatch, setup, teardown),
              cmocka_unit_test_setup_teardown(test_series_of_other_study, setup, teardown),
              cmocka_unit_test_setup_teardown(test_refused_inputs, setup, teardown),
              cmocka_unit_test_setup_teardown(test_max_instance_limit, setup, teardown),
              cmocka_unit_test_setup_teardown(test_uncommitted_batch_freed, setup, teardown),
              cmocka_unit_test_setup_teardown(test_crash_recovery, setup, teardown),
              cmocka_unit_test_setup_teardown(test_find_instance_scope, setup, teardown),
              cmocka_unit_test_setup_teardown(test_each_instance_order, setup, teardown),
              cmocka_unit_test_setup_teardown(test_neighbours, setup, teardown),
              cmocka_unit_test_setup_teardown(test_each_metadata_json, setup, teardown),
              cmocka_unit_test_setup_teardown(test_concurrent_batches, setup, teardown))
