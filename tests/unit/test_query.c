/* SPDX-License-Identifier: MIT */
/* test_query.c: QIDO-RS over the store (store_query_parse + store_query_run). The matching cases
 * run against a store of 30 generated studies (cli/demo.h writer, 4x4 MONOCHROME2 images) whose
 * attributes come from one table, g_st; each case derives the expected result set from that
 * table and compares it with the StudyInstanceUIDs (or series/instance UIDs) returned. Each case
 * works in its own mkdtemp folder, removed by the teardown even when the case fails. */
#define _GNU_SOURCE
#include "tsr_test.h"

#include "demo.h"
#include "store.h"

#include <ctype.h>
#include <jansson.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define BASE     "http://h.example:8080/dicomweb"
#define UID_ROOT "1.2.826.0.1.3680043.9.7778"
#define NS       30
#define BIG      2000 /* bytes of the binary values that must become BulkDataURIs */

/* ---------------------------------------------------------------- the studies */

typedef struct sdef {
    char uid[65];
    const char *name;
    char pid[8], date[9], time[20], time_n[14], acc[17], desc[32], proc[32];
    int n_series;
    const char *mod[2];
    int n_inst[2];
    char series_uid[2][65];
} sdef;

static sdef g_st[NS];

static const char *const k_names[10] = {
    "SMITH^JOHN", "smith^anna",  "DOE^JANE",      "O'NEIL^X",   "SMITHERS^WAYLON",
    "JONES^BOB",  "BROWN^ALICE", "GOLDSMITH^EVE", "SMYTH^JOHN", "WHITE^WALTER",
};
static const char *const k_mods[3] = {"CT", "MR", "US"};

/* Study k = i + 1: names cycle over k_names (so each patient has three studies), years cycle
 * 2019..2023, times are HHMMSS, HHMMSS.5 (k % 4 == 0) or HHMM (k % 5 == 0), every seventh
 * study has no accession number, and k % 4 == 1 studies have a second series of another
 * modality. */
static void
build_table(void)
{
    memset(g_st, 0, sizeof g_st);
    for (int i = 0; i < NS; i++) {
        sdef *s = &g_st[i];
        int k = i + 1;
        snprintf(s->uid, sizeof s->uid, UID_ROOT ".%d", k);
        s->name = k_names[i % 10];
        snprintf(s->pid, sizeof s->pid, "P%02d", i % 10);
        snprintf(s->date, sizeof s->date, "%04d%02d%02d", 2019 + i % 5, 1 + (k * 5) % 12,
                 1 + (k * 7) % 28);
        int hh = 7 + k % 12, mm = (k * 13) % 60, ss = (k * 17) % 60;
        if (k % 5 == 0) {
            snprintf(s->time, sizeof s->time, "%02d%02d", hh, mm);
            snprintf(s->time_n, sizeof s->time_n, "%02d%02d00.000000", hh, mm);
        } else if (k % 4 == 0) {
            snprintf(s->time, sizeof s->time, "%02d%02d%02d.5", hh, mm, ss);
            snprintf(s->time_n, sizeof s->time_n, "%02d%02d%02d.500000", hh, mm, ss);
        } else {
            snprintf(s->time, sizeof s->time, "%02d%02d%02d", hh, mm, ss);
            snprintf(s->time_n, sizeof s->time_n, "%02d%02d%02d.000000", hh, mm, ss);
        }
        if (k % 7 != 0) {
            snprintf(s->acc, sizeof s->acc, "ACC%04d", k);
        }
        snprintf(s->desc, sizeof s->desc, "DESC %d", k);
        snprintf(s->proc, sizeof s->proc, "PROC %d", k);
        s->n_series = k % 4 == 1 ? 2 : 1;
        s->mod[0] = k_mods[k % 3];
        s->mod[1] = k_mods[(k + 1) % 3];
        s->n_inst[0] = 1 + k % 3;
        s->n_inst[1] = 2;
        for (int j = 0; j < 2; j++) {
            snprintf(s->series_uid[j], sizeof s->series_uid[j], UID_ROOT ".%d.%d", k, j + 1);
        }
    }
}

static int
study_instances(const sdef *s)
{
    return s->n_inst[0] + (s->n_series > 1 ? s->n_inst[1] : 0);
}

static int
study_has_modality(const sdef *s, const char *m)
{
    for (int j = 0; j < s->n_series; j++) {
        if (!strcmp(s->mod[j], m)) {
            return 1;
        }
    }
    return 0;
}

static int
find_study(const char *uid)
{
    for (int i = 0; uid && i < NS; i++) {
        if (!strcmp(g_st[i].uid, uid)) {
            return i;
        }
    }
    return -1;
}

/* An OtherPatientIDsSequence (0010,1002) item holding a large OB value: group 0010, so a study
 * query with includefield=all copies the sequence, and the nested value is bulk data. The demo
 * writer has no SQ, so the element is written as UN and its VR patched to SQ afterwards (both
 * use the 4-byte length form). */
static void
put_nested_bulk(demo_ds *ds)
{
    size_t n = 8 + 12 + BIG;
    uint8_t *item = calloc(1, n);
    assert_non_null(item);
    const uint8_t head[8] = {
        0xFE, 0xFF, 0x00, 0xE0, (uint8_t)((12 + BIG) & 0xFF), (uint8_t)((12 + BIG) >> 8), 0, 0};
    const uint8_t elem[12] = {
        0x42, 0x00, 0x11, 0x00, 'O', 'B', 0, 0, (uint8_t)(BIG & 0xFF), (uint8_t)(BIG >> 8), 0, 0};
    memcpy(item, head, 8);
    memcpy(item + 8, elem, 12);
    for (size_t i = 0; i < BIG; i++) {
        item[20 + i] = (uint8_t)(i * 31);
    }
    demo_ds_put_bytes_owned(ds, DEMO_TAG(0x0010, 0x1002), "UN", item, n);
}

static void
patch_un_to_sq(const char *path)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    uint8_t buf[1 << 15];
    size_t n = fread(buf, 1, sizeof buf, f);
    const uint8_t pat[6] = {0x10, 0x00, 0x02, 0x10, 'U', 'N'};
    size_t at = 0;
    for (size_t i = 132; i + 6 <= n && !at; i++) {
        if (!memcmp(buf + i, pat, 6)) {
            at = i;
        }
    }
    assert_true(at > 0);
    assert_int_equal(fseek(f, (long)at + 4, SEEK_SET), 0);
    assert_int_equal(fwrite("SQ", 1, 2, f), 2);
    assert_int_equal(fclose(f), 0);
}

static void
write_instance(const sdef *s, int series, int inst, const char *path)
{
    demo_ds *ds = NULL;
    tsr_err err = {0};
    assert_int_equal(demo_ds_create(&ds, &err), TSR_OK);
    char sop[80];
    snprintf(sop, sizeof sop, "%s.%d", s->series_uid[series], inst);
    demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x0016), "UI", "1.2.840.10008.5.1.4.1.1.7");
    demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x0018), "UI", sop);
    demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x0020), "DA", s->date);
    demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x0030), "TM", s->time);
    demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x0050), "SH", s->acc);
    demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x0060), "CS", s->mod[series]);
    demo_ds_put_str(ds, DEMO_TAG(0x0008, 0x1030), "LO", s->desc);
    const uint8_t priv[BIG] = {1, 2, 3};
    demo_ds_put_bytes(ds, DEMO_TAG(0x0009, 0x1010), "OB", priv, sizeof priv);
    demo_ds_put_str(ds, DEMO_TAG(0x0010, 0x0010), "PN", s->name);
    demo_ds_put_str(ds, DEMO_TAG(0x0010, 0x0020), "LO", s->pid);
    demo_ds_put_str(ds, DEMO_TAG(0x0010, 0x0030), "DA", "19700101");
    demo_ds_put_str(ds, DEMO_TAG(0x0010, 0x1010), "AS", "045Y");
    put_nested_bulk(ds);
    demo_ds_put_bytes(ds, DEMO_TAG(0x0010, 0x9999), "UN", priv, sizeof priv);
    demo_ds_put_str(ds, DEMO_TAG(0x0020, 0x000D), "UI", s->uid);
    demo_ds_put_str(ds, DEMO_TAG(0x0020, 0x000E), "UI", s->series_uid[series]);
    demo_ds_put_is(ds, DEMO_TAG(0x0020, 0x0011), series + 1);
    demo_ds_put_is(ds, DEMO_TAG(0x0020, 0x0013), inst);
    demo_ds_put_us(ds, DEMO_TAG(0x0028, 0x0002), 1);
    demo_ds_put_str(ds, DEMO_TAG(0x0028, 0x0004), "CS", "MONOCHROME2");
    demo_ds_put_us(ds, DEMO_TAG(0x0028, 0x0010), 4);
    demo_ds_put_us(ds, DEMO_TAG(0x0028, 0x0011), 4);
    demo_ds_put_us(ds, DEMO_TAG(0x0028, 0x0100), 16);
    demo_ds_put_us(ds, DEMO_TAG(0x0028, 0x0101), 16);
    demo_ds_put_us(ds, DEMO_TAG(0x0028, 0x0102), 15);
    demo_ds_put_us(ds, DEMO_TAG(0x0028, 0x0103), 0);
    demo_ds_put_str(ds, DEMO_TAG(0x0032, 0x1060), "LO", s->proc);
    uint16_t px[16];
    for (int i = 0; i < 16; i++) {
        px[i] = (uint16_t)(i * 1000 + inst);
    }
    demo_ds_put_words(ds, DEMO_TAG(0x7FE0, 0x0010), px, 16);
    int rc = demo_ds_write(ds, path, &err);
    demo_ds_free(ds);
    if (rc != TSR_OK) {
        fail_msg("demo_ds_write(%s): %s", path, err.msg);
    }
    patch_un_to_sq(path);
}

/* ---------------------------------------------------------------- fixture */

typedef struct fixture {
    char root[256];
    store *s;
} fixture;

static int
setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) {
        return -1;
    }
    if (tsr_test_tmpdir(fx->root, sizeof fx->root, "query") != 0) {
        free(fx);
        return -1;
    }
    build_table();
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

/* Opens the store and ingests the 30 studies, one batch each, in table order. */
static store *
populate(fixture *fx)
{
    char dir[400], in[400];
    snprintf(dir, sizeof dir, "%s/store", fx->root);
    snprintf(in, sizeof in, "%s/in", fx->root);
    assert_int_equal(mkdir(in, 0755), 0);
    store_opts o = {.dir = dir, .no_sync = 1};
    tsr_err err = {0};
    if (store_open(&o, &fx->s, &err) != TSR_OK) {
        fail_msg("store_open: %s", err.msg);
    }
    for (int i = 0; i < NS; i++) {
        const sdef *s = &g_st[i];
        store_batch *b = NULL;
        assert_int_equal(store_batch_begin(fx->s, NULL, &b, &err), TSR_OK);
        for (int j = 0; j < s->n_series; j++) {
            for (int k = 1; k <= s->n_inst[j]; k++) {
                char path[600];
                snprintf(path, sizeof path, "%s/%d_%d_%d.dcm", in, i + 1, j + 1, k);
                write_instance(s, j, k, path);
                if (store_part_file(b, path, &err) != TSR_OK) {
                    fail_msg("store_part_file(%s): %s", path, err.msg);
                }
            }
        }
        if (store_batch_commit(b, &err) != TSR_OK) {
            fail_msg("commit: %s", err.msg);
        }
        int n;
        const store_result *r = store_batch_results(b, &n);
        assert_int_equal(n, study_instances(s));
        for (int k = 0; k < n; k++) {
            if (r[k].kind != STORE_STORED) {
                fail_msg("%s not stored: %s", r[k].name, r[k].message);
            }
        }
        store_batch_free(b);
    }
    return fx->s;
}

/* ---------------------------------------------------------------- running queries */

/* Parses `qs` at `level`, scopes it, runs it and returns the parsed JSON array (caller decrefs).
 * `remaining` and `warning` (512 bytes) may be NULL. */
static json_t *
query(fixture *fx, store_level level, const char *qs, const char *study, const char *series,
      long max, long *remaining, char *warning)
{
    store_query q;
    tsr_err err = {0};
    int rc = store_query_parse(level, qs, &q, &err);
    if (rc != TSR_OK) {
        fail_msg("store_query_parse(%s): %d %s", qs, rc, err.msg);
    }
    if (study) {
        snprintf(q.study, sizeof q.study, "%s", study);
    }
    if (series) {
        snprintf(q.series, sizeof q.series, "%s", series);
    }
    char *js = NULL;
    size_t len = 0;
    long rem = -1;
    rc = store_query_run(fx->s, &q, BASE, max, &js, &len, &rem, &err);
    if (warning) {
        snprintf(warning, 512, "%s", q.warning);
    }
    store_query_free(&q);
    if (rc != TSR_OK) {
        fail_msg("store_query_run(%s): %d %s", qs, rc, err.msg);
    }
    assert_non_null(js);
    assert_int_equal(strlen(js), len);
    json_error_t je;
    json_t *arr = json_loads(js, 0, &je);
    if (!json_is_array(arr)) {
        fail_msg("query %s: not a JSON array: %s", qs, je.text);
    }
    free(js);
    if (remaining) {
        *remaining = rem;
    }
    return arr;
}

static json_t *
qstudies(fixture *fx, const char *qs)
{
    return query(fx, STORE_STUDY, qs, NULL, NULL, 1000, NULL, NULL);
}

static json_t *
jval(json_t *o, const char *tag)
{
    return json_array_get(json_object_get(json_object_get(o, tag), "Value"), 0);
}

static const char *
jstr(json_t *o, const char *tag)
{
    return json_string_value(jval(o, tag));
}

static const char *
jpn(json_t *o, const char *tag)
{
    return json_string_value(json_object_get(jval(o, tag), "Alphabetic"));
}

static long
jint(json_t *o, const char *tag)
{
    json_t *v = jval(o, tag);
    if (!json_is_integer(v)) {
        fail_msg("%s is not an integer value", tag);
    }
    return (long)json_integer_value(v);
}

/* The returned studies are exactly those with want[i] set, each once. */
static void
assert_study_set(json_t *arr, const int want[NS], const char *what)
{
    int seen[NS] = {0}, n_want = 0;
    for (int i = 0; i < NS; i++) {
        n_want += want[i] != 0;
    }
    size_t idx;
    json_t *o;
    json_array_foreach(arr, idx, o)
    {
        const char *uid = jstr(o, "0020000D");
        int i = find_study(uid);
        if (i < 0) {
            fail_msg("%s: result %zu has unknown study %s", what, idx, uid ? uid : "(none)");
        }
        if (!want[i]) {
            fail_msg("%s: study %d (%s, %s, %s, %s) returned but should not match", what, i + 1,
                     g_st[i].name, g_st[i].date, g_st[i].time, g_st[i].acc);
        }
        if (seen[i]++) {
            fail_msg("%s: study %d returned twice", what, i + 1);
        }
    }
    for (int i = 0; i < NS; i++) {
        if (want[i] && !seen[i]) {
            fail_msg("%s: study %d (%s, %s, %s, %s) missing", what, i + 1, g_st[i].name,
                     g_st[i].date, g_st[i].time, g_st[i].acc);
        }
    }
    assert_int_equal(json_array_size(arr), (size_t)n_want);
}

static void
expect_studies(fixture *fx, const char *qs, const int want[NS])
{
    json_t *arr = qstudies(fx, qs);
    assert_study_set(arr, want, qs);
    json_decref(arr);
}

static int
parse_fails(store_level level, const char *qs)
{
    store_query q;
    tsr_err err = {0};
    int rc = store_query_parse(level, qs, &q, &err);
    if (rc == TSR_OK) {
        store_query_free(&q);
        fail_msg("store_query_parse(%s) accepted malformed input", qs);
    }
    if (rc != TSR_EINVAL) {
        fail_msg("store_query_parse(%s): %d, expected TSR_EINVAL", qs, rc);
    }
    if (!err.msg[0]) {
        fail_msg("store_query_parse(%s): no message", qs);
    }
    /* and without an error struct */
    assert_int_equal(store_query_parse(level, qs, &q, NULL), TSR_EINVAL);
    return 1;
}

/* Any object anywhere in `v` with a BulkDataURI member? Writes where into `at` (may be NULL). */
static int
find_bulk(json_t *v, char *at, size_t cap)
{
    if (json_is_object(v)) {
        if (json_object_get(v, "BulkDataURI")) {
            return 1;
        }
        const char *k;
        json_t *c;
        json_object_foreach(v, k, c)
        {
            if (find_bulk(c, at, cap)) {
                if (at) {
                    size_t n = strlen(at);
                    char tail[400];
                    snprintf(tail, sizeof tail, "%s", at);
                    snprintf(at, cap, "%s%s%s", k, n ? "/" : "", tail);
                }
                return 1;
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c)
        {
            if (find_bulk(c, at, cap)) {
                return 1;
            }
        }
    }
    return 0;
}

static int
has_bulk(json_t *v)
{
    return find_bulk(v, NULL, 0);
}

/* Appends to `report` where a result of `arr` holds a BulkDataURI, if one does. */
static void
note_bulk(json_t *arr, const char *what, char *report, size_t cap)
{
    char at[400] = "";
    if (find_bulk(arr, at, sizeof at)) {
        size_t n = strlen(report);
        snprintf(report + n, cap - n, "%s%s: at %s", n ? "; " : "", what, at);
    }
}

/* ---------------------------------------------------------------- parsing */

static void
test_parse_keywords_and_tags(void **state)
{
    (void)state;
    store_query q;
    tsr_err err = {0};
    const char *forms[3] = {"PatientName=SMITH%5EJOHN", "00100010=SMITH^JOHN",
                            "&&PatientName=SMITH%5eJOHN&"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(store_query_parse(STORE_STUDY, forms[i], &q, &err), TSR_OK);
        assert_int_equal(q.level, STORE_STUDY);
        assert_int_equal(q.n_match, 1);
        assert_int_equal(q.match[0].tag, 0x00100010);
        assert_int_equal(q.match[0].kind, STORE_M_SINGLE);
        assert_string_equal(q.match[0].value, "SMITH^JOHN");
        assert_int_equal(q.limit, -1);
        assert_int_equal(q.offset, 0);
        assert_int_equal(q.fuzzy, 0);
        assert_int_equal(q.include_all, 0);
        assert_string_equal(q.warning, "");
        store_query_free(&q);
    }

    assert_int_equal(store_query_parse(STORE_SERIES,
                                       "StudyDate=20200101-20201231&StudyTime=1015&"
                                       "StudyInstanceUID=1.2.3,1.2.4%5C1.2.5&PatientName=SM?TH*&"
                                       "AccessionNumber&Modality=&fuzzymatching=true&"
                                       "00080020=20200315",
                                       &q, &err),
                     TSR_OK);
    assert_int_equal(q.level, STORE_SERIES);
    assert_int_equal(q.n_match, 7);
    assert_int_equal(q.fuzzy, 1);
    store_match *m = q.match;
    assert_int_equal(m[0].tag, 0x00080020);
    assert_int_equal(m[0].kind, STORE_M_RANGE);
    assert_string_equal(m[0].lo, "20200101");
    assert_string_equal(m[0].hi, "20201231");
    assert_int_equal(m[1].tag, 0x00080030);
    assert_int_equal(m[1].kind, STORE_M_RANGE); /* "1015" is the minute 10:15 */
    assert_string_equal(m[1].lo, "101500.000000");
    assert_string_equal(m[1].hi, "101559.999999");
    assert_int_equal(m[2].tag, 0x0020000D);
    assert_int_equal(m[2].kind, STORE_M_LIST);
    assert_int_equal(m[2].n_list, 3);
    assert_string_equal(m[2].list[0], "1.2.3");
    assert_string_equal(m[2].list[1], "1.2.4");
    assert_string_equal(m[2].list[2], "1.2.5");
    assert_int_equal(m[3].kind, STORE_M_WILDCARD);
    assert_string_equal(m[3].value, "SM?TH*");
    assert_int_equal(m[4].tag, 0x00080050);
    assert_int_equal(m[4].kind, STORE_M_UNIVERSAL);
    assert_int_equal(m[5].tag, 0x00080060);
    assert_int_equal(m[5].kind, STORE_M_UNIVERSAL);
    assert_int_equal(m[6].kind, STORE_M_SINGLE);
    assert_string_equal(m[6].value, "20200315");
    store_query_free(&q);
    assert_int_equal(q.n_match, 0);

    /* open ranges, and the old YYYY.MM.DD form */
    assert_int_equal(
        store_query_parse(STORE_STUDY, "StudyDate=-20191231&00080030=093000-", &q, &err), TSR_OK);
    assert_int_equal(q.match[0].kind, STORE_M_RANGE);
    assert_string_equal(q.match[0].lo, "");
    assert_string_equal(q.match[0].hi, "20191231");
    assert_string_equal(q.match[1].lo, "093000.000000");
    assert_string_equal(q.match[1].hi, "");
    store_query_free(&q);
    assert_int_equal(store_query_parse(STORE_STUDY, "StudyDate=2020.01.01-2020.12.31", &q, &err),
                     TSR_OK);
    assert_string_equal(q.match[0].lo, "20200101");
    assert_string_equal(q.match[0].hi, "20201231");
    store_query_free(&q);
}

static void
test_parse_includefield(void **state)
{
    (void)state;
    store_query q;
    tsr_err err = {0};
    assert_int_equal(store_query_parse(STORE_STUDY,
                                       "includefield=PatientAge,00280010&"
                                       "includefield=StudyDescription",
                                       &q, &err),
                     TSR_OK);
    assert_int_equal(q.n_include, 3);
    assert_int_equal(q.include[0], 0x00101010);
    assert_int_equal(q.include[1], 0x00280010);
    assert_int_equal(q.include[2], 0x00081030);
    assert_int_equal(q.include_all, 0);
    assert_int_equal(q.n_match, 0);
    store_query_free(&q);
    assert_int_equal(store_query_parse(STORE_INSTANCE, "includefield=all", &q, &err), TSR_OK);
    assert_int_equal(q.include_all, 1);
    assert_int_equal(q.n_include, 0);
    store_query_free(&q);
    assert_int_equal(store_query_parse(STORE_STUDY, "includefield=00101010%2Call", &q, &err),
                     TSR_OK);
    assert_int_equal(q.include_all, 1);
    assert_int_equal(q.n_include, 1);
    store_query_free(&q);
    parse_fails(STORE_STUDY, "includefield=NoSuchKeyword");
    parse_fails(STORE_STUDY, "includefield=PatientAge,,StudyDate");
    parse_fails(STORE_STUDY, "includefield=0010101");
}

static void
test_parse_limit_offset(void **state)
{
    (void)state;
    store_query q;
    tsr_err err = {0};
    assert_int_equal(store_query_parse(STORE_STUDY, "limit=5&offset=10", &q, &err), TSR_OK);
    assert_int_equal(q.limit, 5);
    assert_int_equal(q.offset, 10);
    store_query_free(&q);
    assert_int_equal(store_query_parse(STORE_STUDY, "limit=0&offset=0", &q, &err), TSR_OK);
    assert_int_equal(q.limit, 0);
    store_query_free(&q);
    const char *bad[] = {"limit=-1",
                         "limit=abc",
                         "offset=-3",
                         "limit=",
                         "limit=5x",
                         "limit=+5",
                         "offset=1e3",
                         "limit=%205",
                         "limit=99999999999999999999",
                         "fuzzymatching=yes",
                         "PatientName=X&limit=-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        parse_fails(STORE_STUDY, bad[i]);
    }
    memset(&err, 0, sizeof err);
    assert_int_equal(store_query_parse(STORE_STUDY, "limit=abc", &q, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "limit"));
}

static void
test_parse_rejects_malformed(void **state)
{
    (void)state;
    store_query q;
    tsr_err err = {0};
    assert_int_equal(store_query_parse(STORE_STUDY, "PatientNam=x", &q, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "PatientNam"));
    const char *bad[] = {
        "PatientNam=x",
        "StudyDate=2020",
        "StudyDate=2020-2021",
        "StudyDate=-",
        "StudyDate=20200101-2021",
        "StudyDate=2020010a",
        "StudyTime=1a",
        "StudyTime=1",
        "PatientName=%G1",
        "PatientName=%2",
        "PatientName=abc%",
        "PatientName=%00x",
        "Patient%ZZName=x",
        "StudyInstanceUID=1.2,abc",
        "StudyInstanceUID=1.2.3%27",
        "PatientName=SMITH&StudyDate=2020&AccessionNumber=A", /* earlier matches are freed */
        "StudyInstanceUID=1.2&StudyDate=20201",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        parse_fails(STORE_STUDY, bad[i]);
    }
    memset(&err, 0, sizeof err);
    assert_int_equal(store_query_parse(STORE_STUDY, "StudyDate=2020", &q, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "2020"));
}

/* A value that has the right shape but is not a date (month 13, day 40) or time (hour 25) is
 * as malformed as "2020": 400 rather than a silent empty result. */
static void
test_parse_rejects_impossible_values(void **state)
{
    (void)state;
    parse_fails(STORE_STUDY, "StudyDate=20201340");
    parse_fails(STORE_STUDY, "StudyDate=20200101-20201399");
    parse_fails(STORE_STUDY, "StudyTime=250000");
}

static void
test_parse_unsupported_attribute(void **state)
{
    fixture *fx = *state;
    store_query q;
    tsr_err err = {0};
    /* (0018,1030) ProtocolName: a known keyword that QIDO does not match on */
    assert_int_equal(store_query_parse(STORE_STUDY, "00181030=HEAD&orderby=StudyDate", &q, &err),
                     TSR_OK);
    assert_int_equal(q.n_match, 0);
    assert_non_null(strstr(q.warning, "00181030"));
    assert_non_null(strstr(q.warning, "orderby"));
    store_query_free(&q);
    assert_int_equal(store_query_parse(STORE_STUDY, "ProtocolName=HEAD", &q, &err), TSR_OK);
    assert_int_equal(q.n_match, 0);
    assert_non_null(strstr(q.warning, "ProtocolName"));
    store_query_free(&q);

    /* ignored at execution: every study, with the warning kept */
    populate(fx);
    char warning[512];
    json_t *arr = query(fx, STORE_STUDY, "00181030=HEAD", NULL, NULL, 1000, NULL, warning);
    assert_int_equal(json_array_size(arr), NS);
    assert_non_null(strstr(warning, "00181030"));
    json_decref(arr);
}

/* ---------------------------------------------------------------- matching */

static void
test_match_pn_exact(void **state)
{
    fixture *fx = *state;
    populate(fx);
    int want[NS];
    const char *forms[3] = {"PatientName=SMITH%5EJOHN", "PatientName=smith^john",
                            "00100010=Smith%5EJohn"};
    for (int f = 0; f < 3; f++) {
        for (int i = 0; i < NS; i++) {
            want[i] = !strcmp(g_st[i].name, "SMITH^JOHN");
        }
        expect_studies(fx, forms[f], want);
    }
    for (int i = 0; i < NS; i++) {
        want[i] = !strcmp(g_st[i].name, "smith^anna");
    }
    expect_studies(fx, "PatientName=SMITH^ANNA", want);
    for (int i = 0; i < NS; i++) {
        want[i] = !strcmp(g_st[i].name, "O'NEIL^X");
    }
    expect_studies(fx, "PatientName=O%27NEIL%5EX", want);
    expect_studies(fx, "PatientName=o'neil^x", want);
    /* exact means exact: a prefix is no match */
    memset(want, 0, sizeof want);
    expect_studies(fx, "PatientName=SMITH", want);
    expect_studies(fx, "PatientName=SMIT_^JOHN", want);

    /* the stored spelling comes back */
    json_t *arr = qstudies(fx, "PatientName=SMITH^ANNA");
    assert_true(json_array_size(arr) > 0);
    assert_string_equal(jpn(json_array_get(arr, 0), "00100010"), "smith^anna");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(arr, 0), "00100010"), "vr")),
                        "PN");
    json_decref(arr);
}

static int
istarts(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static void
test_match_wildcard(void **state)
{
    fixture *fx = *state;
    populate(fx);
    int want[NS];
    for (int i = 0; i < NS; i++) {
        want[i] = istarts(g_st[i].name, "SMITH");
    }
    expect_studies(fx, "PatientName=SMITH*", want);
    expect_studies(fx, "PatientName=smith*", want);
    for (int i = 0; i < NS; i++) {
        want[i] = istarts(g_st[i].name, "SMITH") || istarts(g_st[i].name, "SMYTH");
    }
    expect_studies(fx, "PatientName=SM%3FTH*", want);
    for (int i = 0; i < NS; i++) {
        size_t n = strlen(g_st[i].name);
        want[i] = n >= 4 && !strcmp(g_st[i].name + n - 4, "JOHN");
    }
    expect_studies(fx, "PatientName=*JOHN", want);
    for (int i = 0; i < NS; i++) {
        want[i] = !strcmp(g_st[i].name, "DOE^JANE");
    }
    expect_studies(fx, "PatientName=D?E%5EJ*", want);
    for (int i = 0; i < NS; i++) {
        want[i] = !strcmp(g_st[i].name, "O'NEIL^X");
    }
    expect_studies(fx, "PatientName=O'*", want);
    for (int i = 0; i < NS; i++) {
        want[i] = 1;
    }
    expect_studies(fx, "PatientName=*", want);

    /* SQL LIKE's own wildcards are literal characters in DICOM */
    memset(want, 0, sizeof want);
    expect_studies(fx, "PatientName=SMIT_*", want);
    expect_studies(fx, "PatientName=%25*", want);
    expect_studies(fx, "PatientName=*%25", want);
    expect_studies(fx, "PatientName=%5C*", want);

    /* other VRs: GLOB, case-sensitive; '[' is not a character class */
    for (int i = 0; i < NS; i++) {
        want[i] = g_st[i].acc[0] && i + 1 >= 10 && i + 1 <= 19;
    }
    expect_studies(fx, "AccessionNumber=ACC001*", want);
    for (int i = 0; i < NS; i++) {
        want[i] = g_st[i].acc[0] && (i + 1) % 10 == 2;
    }
    expect_studies(fx, "AccessionNumber=ACC00?2", want);
    memset(want, 0, sizeof want);
    expect_studies(fx, "AccessionNumber=acc001*", want);
    expect_studies(fx, "AccessionNumber=ACC00[12]*", want);
    for (int i = 0; i < NS; i++) {
        want[i] = istarts(g_st[i].name, "SMITH") && !strncmp(g_st[i].date, "2020", 4);
    }
    expect_studies(fx, "PatientName=SMITH*&StudyDate=20200101-20201231", want);
}

static void
test_match_date_range(void **state)
{
    fixture *fx = *state;
    populate(fx);
    int want[NS];
    for (int i = 0; i < NS; i++) {
        want[i] = !strncmp(g_st[i].date, "2020", 4);
    }
    expect_studies(fx, "StudyDate=20200101-20201231", want);
    expect_studies(fx, "StudyDate=2020.01.01-2020.12.31", want);
    for (int i = 0; i < NS; i++) {
        want[i] = strcmp(g_st[i].date, "20191231") <= 0;
    }
    expect_studies(fx, "StudyDate=-20191231", want);
    for (int i = 0; i < NS; i++) {
        want[i] = strcmp(g_st[i].date, "20230101") >= 0;
    }
    expect_studies(fx, "StudyDate=20230101-", want);
    for (int i = 0; i < NS; i++) {
        want[i] = !strcmp(g_st[i].date, g_st[6].date);
    }
    char qs[64];
    snprintf(qs, sizeof qs, "StudyDate=%s", g_st[6].date);
    expect_studies(fx, qs, want);
    /* a one-day range includes its bounds */
    snprintf(qs, sizeof qs, "StudyDate=%s-%s", g_st[6].date, g_st[6].date);
    expect_studies(fx, qs, want);
    /* inverted: nothing */
    memset(want, 0, sizeof want);
    expect_studies(fx, "StudyDate=20231231-20190101", want);
}

static void
test_match_time_range(void **state)
{
    fixture *fx = *state;
    populate(fx);
    int want[NS];
    for (int i = 0; i < NS; i++) {
        want[i] = strcmp(g_st[i].time_n, "090000.000000") >= 0 &&
                  strcmp(g_st[i].time_n, "120000.999999") <= 0;
    }
    expect_studies(fx, "StudyTime=090000-120000", want);
    for (int i = 0; i < NS; i++) {
        want[i] = !strncmp(g_st[i].time_n, "10", 2);
    }
    expect_studies(fx, "StudyTime=10", want);
    expect_studies(fx, "StudyTime=1000-1059", want);
    for (int i = 0; i < NS; i++) {
        want[i] = strcmp(g_st[i].time_n, "090059.999999") <= 0;
    }
    expect_studies(fx, "StudyTime=-0900", want);
    for (int i = 0; i < NS; i++) {
        want[i] = strcmp(g_st[i].time_n, "150000.000000") >= 0;
    }
    expect_studies(fx, "StudyTime=15:00:00-", want);
    /* single values against stored HHMMSS.F and HHMM values */
    for (int k = 4; k <= 5; k++) {
        const sdef *s = &g_st[k - 1];
        char qs[64];
        snprintf(qs, sizeof qs, "StudyTime=%.6s", s->time_n);
        for (int i = 0; i < NS; i++) {
            want[i] = !strncmp(g_st[i].time_n, s->time_n, 6);
        }
        assert_true(want[k - 1]);
        expect_studies(fx, qs, want);
    }
}

static void
test_match_uid_list(void **state)
{
    fixture *fx = *state;
    populate(fx);
    int want[NS] = {0};
    want[2] = want[11] = want[29] = 1;
    char qs[400];
    snprintf(qs, sizeof qs, "StudyInstanceUID=%s,%s", g_st[2].uid, g_st[11].uid);
    want[29] = 0;
    expect_studies(fx, qs, want);
    want[29] = 1;
    snprintf(qs, sizeof qs, "StudyInstanceUID=%s%%5C%s%%5C%s%%5C" UID_ROOT ".404", g_st[2].uid,
             g_st[11].uid, g_st[29].uid);
    expect_studies(fx, qs, want);
    snprintf(qs, sizeof qs, "0020000D=%s%%2C%s%%2C%s", g_st[2].uid, g_st[11].uid, g_st[29].uid);
    expect_studies(fx, qs, want);
    memset(want, 0, sizeof want);
    want[7] = 1;
    snprintf(qs, sizeof qs, "StudyInstanceUID=%s", g_st[7].uid);
    expect_studies(fx, qs, want);
    /* a UID is matched whole, not as a prefix */
    memset(want, 0, sizeof want);
    expect_studies(fx, "StudyInstanceUID=" UID_ROOT ".1", (want[0] = 1, want));
}

static void
assert_modalities(json_t *o, const sdef *s)
{
    const char *m[2] = {s->mod[0], s->mod[1]};
    int n = s->n_series;
    if (n == 2 && strcmp(m[0], m[1]) > 0) {
        const char *t = m[0];
        m[0] = m[1];
        m[1] = t;
    }
    json_t *v = json_object_get(json_object_get(o, "00080061"), "Value");
    if (json_array_size(v) != (size_t)n) {
        fail_msg("study %s: ModalitiesInStudy has %zu values, expected %d", s->uid,
                 json_array_size(v), n);
    }
    for (int j = 0; j < n; j++) {
        assert_string_equal(json_string_value(json_array_get(v, (size_t)j)), m[j]);
    }
}

static void
test_match_modalities_in_study(void **state)
{
    fixture *fx = *state;
    populate(fx);
    int want[NS], two = 0;
    for (int i = 0; i < NS; i++) {
        want[i] = study_has_modality(&g_st[i], "MR");
        two += want[i] && g_st[i].n_series == 2;
    }
    assert_true(two > 0); /* the data have MR as a second series */
    json_t *arr = qstudies(fx, "ModalitiesInStudy=MR");
    assert_study_set(arr, want, "ModalitiesInStudy=MR");
    size_t idx;
    json_t *o;
    json_array_foreach(arr, idx, o)
    {
        assert_modalities(o, &g_st[find_study(jstr(o, "0020000D"))]);
    }
    json_decref(arr);
    for (int i = 0; i < NS; i++) {
        want[i] = study_has_modality(&g_st[i], "CT") || study_has_modality(&g_st[i], "US");
    }
    expect_studies(fx, "ModalitiesInStudy=CT,US", want);
    expect_studies(fx, "ModalitiesInStudy=CT%5CUS", want);
    memset(want, 0, sizeof want);
    expect_studies(fx, "ModalitiesInStudy=XA", want);
    expect_studies(fx, "ModalitiesInStudy=mr", want); /* CS is case-sensitive */

    /* series level, Modality */
    arr = query(fx, STORE_SERIES, "Modality=MR", NULL, NULL, 1000, NULL, NULL);
    int n_mr = 0;
    for (int i = 0; i < NS; i++) {
        for (int j = 0; j < g_st[i].n_series; j++) {
            n_mr += !strcmp(g_st[i].mod[j], "MR");
        }
    }
    assert_int_equal(json_array_size(arr), (size_t)n_mr);
    json_array_foreach(arr, idx, o)
    {
        assert_string_equal(jstr(o, "00080060"), "MR");
    }
    json_decref(arr);
}

static void
test_match_accession(void **state)
{
    fixture *fx = *state;
    populate(fx);
    int want[NS] = {0};
    want[4] = 1;
    expect_studies(fx, "AccessionNumber=ACC0005", want);
    json_t *arr = qstudies(fx, "AccessionNumber=ACC0005");
    assert_string_equal(jstr(json_array_get(arr, 0), "00080050"), "ACC0005");
    json_decref(arr);
    memset(want, 0, sizeof want);
    expect_studies(fx, "AccessionNumber=acc0005", want);
    expect_studies(fx, "AccessionNumber=ACC000", want);
}

static void
test_match_fuzzy(void **state)
{
    fixture *fx = *state;
    populate(fx);
    json_t *arr = qstudies(fx, "PatientName=smi&fuzzymatching=true");
    int seen[NS] = {0};
    size_t idx;
    json_t *o;
    json_array_foreach(arr, idx, o)
    {
        int i = find_study(jstr(o, "0020000D"));
        assert_true(i >= 0);
        seen[i] = 1;
        const char *name = g_st[i].name;
        int has = 0;
        for (const char *p = name; *p && !has; p++) {
            has = istarts(p, "smi");
        }
        if (!has) {
            fail_msg("fuzzy 'smi' matched %s", name);
        }
    }
    for (int i = 0; i < NS; i++) {
        if (istarts(g_st[i].name, "SMITH") && !seen[i]) {
            fail_msg("fuzzy 'smi' missed %s (study %d)", g_st[i].name, i + 1);
        }
    }
    json_decref(arr);
    int want[NS] = {0};
    expect_studies(fx, "PatientName=smi", want);
    expect_studies(fx, "PatientName=smi&fuzzymatching=false", want);
    /* fuzzy does not loosen other attributes */
    want[4] = 1;
    expect_studies(fx, "AccessionNumber=ACC0005&fuzzymatching=true", want);
    memset(want, 0, sizeof want);
    expect_studies(fx, "AccessionNumber=ACC000&fuzzymatching=true", want);
}

static void
test_match_universal(void **state)
{
    fixture *fx = *state;
    populate(fx);
    int want[NS];
    for (int i = 0; i < NS; i++) {
        want[i] = 1;
    }
    expect_studies(fx, "PatientName=", want);
    expect_studies(fx, "AccessionNumber=", want);
    expect_studies(fx, "", want);
    json_t *arr = qstudies(fx, "AccessionNumber=&PatientName=");
    size_t idx;
    json_t *o;
    json_array_foreach(arr, idx, o)
    {
        const sdef *s = &g_st[find_study(jstr(o, "0020000D"))];
        assert_non_null(json_object_get(o, "00080050"));
        if (s->acc[0]) {
            assert_string_equal(jstr(o, "00080050"), s->acc);
        } else {
            assert_null(json_object_get(json_object_get(o, "00080050"), "Value"));
        }
        assert_string_equal(jpn(o, "00100010"), s->name);
    }
    json_decref(arr);

    /* a series query scoped to a study leaves PatientName out unless asked for */
    arr = query(fx, STORE_SERIES, "", g_st[0].uid, NULL, 1000, NULL, NULL);
    assert_int_equal(json_array_size(arr), 2);
    assert_null(json_object_get(json_array_get(arr, 0), "00100010"));
    json_decref(arr);
    arr = query(fx, STORE_SERIES, "PatientName=", g_st[0].uid, NULL, 1000, NULL, NULL);
    assert_int_equal(json_array_size(arr), 2);
    assert_string_equal(jpn(json_array_get(arr, 0), "00100010"), g_st[0].name);
    json_decref(arr);
}

/* ---------------------------------------------------------------- results */

static void
test_computed_counts(void **state)
{
    fixture *fx = *state;
    populate(fx);
    json_t *arr = qstudies(fx, "");
    assert_int_equal(json_array_size(arr), NS);
    size_t idx;
    json_t *o;
    json_array_foreach(arr, idx, o)
    {
        const sdef *s = &g_st[find_study(jstr(o, "0020000D"))];
        assert_int_equal(jint(o, "00201206"), s->n_series);
        assert_int_equal(jint(o, "00201208"), study_instances(s));
        assert_modalities(o, s);
        assert_string_equal(jstr(o, "00080020"), s->date);
        assert_string_equal(jstr(o, "00080030"), s->time);
        assert_string_equal(jstr(o, "00081030"), s->desc);
        assert_string_equal(jstr(o, "00100020"), s->pid);
        assert_string_equal(jstr(o, "00080056"), "ONLINE");
    }
    json_decref(arr);

    arr = query(fx, STORE_SERIES, "", NULL, NULL, 1000, NULL, NULL);
    int n_series = 0;
    for (int i = 0; i < NS; i++) {
        n_series += g_st[i].n_series;
    }
    assert_int_equal(json_array_size(arr), (size_t)n_series);
    json_array_foreach(arr, idx, o)
    {
        const sdef *s = &g_st[find_study(jstr(o, "0020000D"))];
        const char *se = jstr(o, "0020000E");
        int j = !strcmp(se, s->series_uid[0]) ? 0 : 1;
        assert_string_equal(se, s->series_uid[j]);
        assert_int_equal(jint(o, "00201209"), s->n_inst[j]);
        assert_int_equal(jint(o, "00200011"), j + 1);
        assert_string_equal(jstr(o, "00080060"), s->mod[j]);
    }
    json_decref(arr);
}

static void
collect_uids(json_t *arr, const char *tag, char (*out)[65], int *n, int cap)
{
    size_t idx;
    json_t *o;
    json_array_foreach(arr, idx, o)
    {
        assert_true(*n < cap);
        const char *u = jstr(o, tag);
        assert_non_null(u);
        snprintf(out[*n], 65, "%s", u);
        (*n)++;
    }
}

static void
test_paging(void **state)
{
    fixture *fx = *state;
    populate(fx);
    long rem = -1;
    json_t *all = query(fx, STORE_STUDY, "", NULL, NULL, 1000, &rem, NULL);
    assert_int_equal(json_array_size(all), NS);
    assert_int_equal(rem, 0);
    char full[NS][65], paged[NS + 8][65];
    int nf = 0, np = 0;
    collect_uids(all, "0020000D", full, &nf, NS);
    json_decref(all);

    for (int off = 0; off < NS; off += 5) {
        char qs[64];
        snprintf(qs, sizeof qs, "limit=5&offset=%d", off);
        char warning[512];
        json_t *page = query(fx, STORE_STUDY, qs, NULL, NULL, 1000, &rem, warning);
        assert_int_equal(json_array_size(page), 5);
        assert_int_equal(rem, NS - off - 5);
        assert_string_equal(warning, "");
        collect_uids(page, "0020000D", paged, &np, NS + 8);
        json_decref(page);
    }
    /* the pages are the full list, in order: nothing lost, nothing twice */
    assert_int_equal(np, NS);
    for (int i = 0; i < NS; i++) {
        assert_string_equal(paged[i], full[i]);
    }
    json_t *page = query(fx, STORE_STUDY, "limit=5&offset=28", NULL, NULL, 1000, &rem, NULL);
    assert_int_equal(json_array_size(page), 2);
    assert_int_equal(rem, 0);
    json_decref(page);
    page = query(fx, STORE_STUDY, "offset=30", NULL, NULL, 1000, &rem, NULL);
    assert_int_equal(json_array_size(page), 0);
    assert_int_equal(rem, 0);
    json_decref(page);

    /* with a filter: 9 SMITH* studies */
    page =
        query(fx, STORE_STUDY, "PatientName=SMITH*&limit=4&offset=4", NULL, NULL, 1000, &rem, NULL);
    assert_int_equal(json_array_size(page), 4);
    assert_int_equal(rem, 1);
    json_decref(page);

    /* the server maximum caps a page; the rest is counted */
    char warning[512];
    page = query(fx, STORE_STUDY, "", NULL, NULL, 7, &rem, warning);
    assert_int_equal(json_array_size(page), 7);
    assert_int_equal(rem, NS - 7);
    json_decref(page);
    page = query(fx, STORE_STUDY, "limit=100", NULL, NULL, 7, &rem, warning);
    assert_int_equal(json_array_size(page), 7);
    assert_int_equal(rem, NS - 7);
    assert_non_null(strstr(warning, "7"));
    json_decref(page);
    page = query(fx, STORE_STUDY, "limit=3&offset=27", NULL, NULL, 7, &rem, warning);
    assert_int_equal(json_array_size(page), 3);
    assert_int_equal(rem, 0);
    assert_string_equal(warning, "");
    json_decref(page);

    /* instance level paging partitions too */
    int n_inst = 0;
    for (int i = 0; i < NS; i++) {
        n_inst += study_instances(&g_st[i]);
    }
    int got = 0;
    for (int off = 0; off < n_inst; off += 9) {
        char qs[64];
        snprintf(qs, sizeof qs, "limit=9&offset=%d", off);
        page = query(fx, STORE_INSTANCE, qs, NULL, NULL, 1000, &rem, NULL);
        int n = (int)json_array_size(page);
        assert_int_equal(n, n_inst - off < 9 ? n_inst - off : 9);
        assert_int_equal(rem, n_inst - off - n);
        got += n;
        json_decref(page);
    }
    assert_int_equal(got, n_inst);
}

static void
test_levels(void **state)
{
    fixture *fx = *state;
    populate(fx);
    const sdef *s = &g_st[4]; /* k = 5: two series */
    assert_int_equal(s->n_series, 2);

    /* series of one study */
    json_t *arr = query(fx, STORE_SERIES, "", s->uid, NULL, 1000, NULL, NULL);
    assert_int_equal(json_array_size(arr), 2);
    for (int j = 0; j < 2; j++) {
        json_t *o = json_array_get(arr, (size_t)j);
        assert_string_equal(jstr(o, "0020000D"), s->uid);
        assert_string_equal(jstr(o, "0020000E"), s->series_uid[j]);
        assert_string_equal(jstr(o, "00080060"), s->mod[j]);
        assert_null(json_object_get(o, "00100010"));
    }
    json_decref(arr);
    arr = query(fx, STORE_SERIES, "Modality=ZZ", s->uid, NULL, 1000, NULL, NULL);
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);
    arr = query(fx, STORE_SERIES, "", UID_ROOT ".404", NULL, 1000, NULL, NULL);
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);

    /* all series (flat): study and patient attributes included */
    arr = query(fx, STORE_SERIES, "SeriesNumber=2", NULL, NULL, 1000, NULL, NULL);
    int n2 = 0;
    for (int i = 0; i < NS; i++) {
        n2 += g_st[i].n_series == 2;
    }
    assert_int_equal(json_array_size(arr), (size_t)n2);
    size_t idx;
    json_t *o;
    json_array_foreach(arr, idx, o)
    {
        const sdef *t = &g_st[find_study(jstr(o, "0020000D"))];
        assert_string_equal(jstr(o, "0020000E"), t->series_uid[1]);
        assert_string_equal(jpn(o, "00100010"), t->name);
        assert_string_equal(jstr(o, "00080020"), t->date);
    }
    json_decref(arr);

    /* instances of one series */
    arr = query(fx, STORE_INSTANCE, "", s->uid, s->series_uid[1], 1000, NULL, NULL);
    assert_int_equal(json_array_size(arr), (size_t)s->n_inst[1]);
    json_array_foreach(arr, idx, o)
    {
        char sop[80];
        snprintf(sop, sizeof sop, "%s.%d", s->series_uid[1], (int)idx + 1);
        assert_string_equal(jstr(o, "00080018"), sop);
        assert_int_equal(jint(o, "00200013"), (long)idx + 1);
        assert_string_equal(jstr(o, "0020000D"), s->uid);
        assert_string_equal(jstr(o, "0020000E"), s->series_uid[1]);
        assert_string_equal(jstr(o, "00080016"), "1.2.840.10008.5.1.4.1.1.7");
        assert_null(json_object_get(o, "00100010"));
        assert_null(json_object_get(o, "00080060"));
    }
    json_decref(arr);
    /* a series UID under the wrong study: nothing */
    arr = query(fx, STORE_INSTANCE, "", g_st[0].uid, s->series_uid[1], 1000, NULL, NULL);
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);

    /* instances of one study: series attributes included */
    arr = query(fx, STORE_INSTANCE, "", s->uid, NULL, 1000, NULL, NULL);
    assert_int_equal(json_array_size(arr), (size_t)study_instances(s));
    json_array_foreach(arr, idx, o)
    {
        assert_non_null(jstr(o, "00080060"));
        assert_null(json_object_get(o, "00100010"));
    }
    json_decref(arr);

    /* all instances (flat) of the DOE studies */
    arr = query(fx, STORE_INSTANCE, "PatientName=DOE%5EJANE", NULL, NULL, 1000, NULL, NULL);
    int n_doe = 0;
    for (int i = 0; i < NS; i++) {
        n_doe += !strcmp(g_st[i].name, "DOE^JANE") ? study_instances(&g_st[i]) : 0;
    }
    assert_true(n_doe > 0);
    assert_int_equal(json_array_size(arr), (size_t)n_doe);
    json_array_foreach(arr, idx, o)
    {
        const sdef *t = &g_st[find_study(jstr(o, "0020000D"))];
        assert_string_equal(t->name, "DOE^JANE");
        assert_string_equal(jpn(o, "00100010"), "DOE^JANE");
        assert_non_null(jstr(o, "0020000E"));
        assert_non_null(jstr(o, "00080060"));
        assert_non_null(jstr(o, "00080018"));
    }
    json_decref(arr);
}

typedef struct meta_probe {
    int n, bulk_top, bulk_nested;
} meta_probe;

static int
probe_meta(void *user, const char *json, size_t len)
{
    meta_probe *p = user;
    json_t *o = json_loadb(json, len, 0, NULL);
    p->n++;
    p->bulk_top += json_object_get(json_object_get(o, "00109999"), "BulkDataURI") != NULL;
    p->bulk_nested += has_bulk(json_object_get(o, "00101002"));
    json_decref(o);
    return 0;
}

static void
test_includefield_all(void **state)
{
    fixture *fx = *state;
    populate(fx);
    const sdef *s = &g_st[0];
    /* precondition: the stored metadata holds group 0010 bulk data, top level and nested */
    meta_probe p = {0};
    assert_int_equal(store_each_metadata(fx->s, s->uid, NULL, NULL, probe_meta, &p, NULL), TSR_OK);
    assert_int_equal(p.n, study_instances(s));
    assert_int_equal(p.bulk_top, p.n);
    assert_int_equal(p.bulk_nested, p.n);

    char qs[200];
    snprintf(qs, sizeof qs, "StudyInstanceUID=%s", s->uid);
    json_t *arr = qstudies(fx, qs);
    assert_int_equal(json_array_size(arr), 1);
    assert_null(json_object_get(json_array_get(arr, 0), "00101010"));
    assert_null(json_object_get(json_array_get(arr, 0), "00321060"));
    json_decref(arr);

    snprintf(qs, sizeof qs, "StudyInstanceUID=%s&includefield=all", s->uid);
    arr = qstudies(fx, qs);
    assert_int_equal(json_array_size(arr), 1);
    json_t *o = json_array_get(arr, 0);
    assert_string_equal(jstr(o, "00101010"), "045Y");
    assert_string_equal(jstr(o, "00321060"), s->proc);
    assert_string_equal(jstr(o, "00100030"), "19700101");
    assert_int_equal(jint(o, "00201208"), study_instances(s));
    assert_null(json_object_get(o, "7FE00010"));
    assert_null(json_object_get(o, "00280010")); /* instance level */
    json_decref(arr);

    /* never a BulkDataURI, at any level, top level or nested */
    char report[1200] = "";
    arr = qstudies(fx, "includefield=all");
    assert_int_equal(json_array_size(arr), NS);
    note_bulk(arr, "study level", report, sizeof report);
    json_decref(arr);
    arr = query(fx, STORE_SERIES, "includefield=all", s->uid, NULL, 1000, NULL, NULL);
    assert_int_equal(json_array_size(arr), 2);
    note_bulk(arr, "series level", report, sizeof report);
    json_decref(arr);
    arr = query(fx, STORE_INSTANCE, "includefield=all", s->uid, s->series_uid[0], 1000, NULL, NULL);
    assert_int_equal(json_array_size(arr), (size_t)s->n_inst[0]);
    o = json_array_get(arr, 0);
    assert_string_equal(jstr(o, "00101010"), "045Y");
    assert_null(json_object_get(o, "7FE00010"));
    assert_null(json_object_get(o, "00091010"));
    note_bulk(arr, "instance level", report, sizeof report);
    json_decref(arr);
    if (report[0]) {
        fail_msg("includefield=all copied a BulkDataURI into QIDO results: %s", report);
    }
}

static void
test_includefield_rows(void **state)
{
    fixture *fx = *state;
    populate(fx);
    const sdef *s = &g_st[1];
    json_t *arr = query(fx, STORE_INSTANCE, "includefield=00280010", s->uid, s->series_uid[0], 1000,
                        NULL, NULL);
    assert_int_equal(json_array_size(arr), (size_t)s->n_inst[0]);
    size_t idx;
    json_t *o;
    json_array_foreach(arr, idx, o)
    {
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(o, "00280010"), "vr")), "US");
        assert_int_equal(jint(o, "00280010"), 4);
    }
    json_decref(arr);
    /* from the stored JSON, at series level */
    arr = query(fx, STORE_SERIES, "includefield=Rows&includefield=Columns", s->uid, NULL, 1000,
                NULL, NULL);
    assert_int_equal(json_array_size(arr), (size_t)s->n_series);
    assert_int_equal(jint(json_array_get(arr, 0), "00280010"), 4);
    assert_int_equal(jint(json_array_get(arr, 0), "00280011"), 4);
    json_decref(arr);
    /* an attribute only the instance JSON holds, at study level */
    arr = query(fx, STORE_STUDY, "includefield=PatientAge&AccessionNumber=ACC0002", NULL, NULL,
                1000, NULL, NULL);
    assert_int_equal(json_array_size(arr), 1);
    assert_string_equal(jstr(json_array_get(arr, 0), "00101010"), "045Y");
    json_decref(arr);
}

static void
test_retrieve_url(void **state)
{
    fixture *fx = *state;
    populate(fx);
    const sdef *s = &g_st[8];
    char qs[200], url[600];
    snprintf(qs, sizeof qs, "StudyInstanceUID=%s", s->uid);
    json_t *arr = qstudies(fx, qs);
    assert_int_equal(json_array_size(arr), 1);
    snprintf(url, sizeof url, BASE "/studies/%s", s->uid);
    assert_string_equal(jstr(json_array_get(arr, 0), "00081190"), url);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(arr, 0), "00081190"), "vr")),
                        "UR");
    json_decref(arr);

    arr = query(fx, STORE_SERIES, "", s->uid, NULL, 1000, NULL, NULL);
    assert_int_equal(json_array_size(arr), (size_t)s->n_series);
    snprintf(url, sizeof url, BASE "/studies/%s/series/%s", s->uid, s->series_uid[0]);
    assert_string_equal(jstr(json_array_get(arr, 0), "00081190"), url);
    json_decref(arr);

    arr = query(fx, STORE_INSTANCE, "", s->uid, s->series_uid[0], 1000, NULL, NULL);
    assert_true(json_array_size(arr) >= 1);
    snprintf(url, sizeof url, BASE "/studies/%s/series/%s/instances/%s.1", s->uid, s->series_uid[0],
             s->series_uid[0]);
    assert_string_equal(jstr(json_array_get(arr, 0), "00081190"), url);
    json_decref(arr);

    /* flat queries and includefield=all keep the URL pointing at the row's own UIDs */
    arr = query(fx, STORE_INSTANCE, "includefield=all&limit=200", NULL, NULL, 1000, NULL, NULL);
    size_t idx;
    json_t *o;
    json_array_foreach(arr, idx, o)
    {
        snprintf(url, sizeof url, BASE "/studies/%s/series/%s/instances/%s", jstr(o, "0020000D"),
                 jstr(o, "0020000E"), jstr(o, "00080018"));
        assert_string_equal(jstr(o, "00081190"), url);
    }
    json_decref(arr);
}

static void
test_sql_injection(void **state)
{
    fixture *fx = *state;
    populate(fx);
    int none[NS] = {0};
    const char *attempts[] = {
        "PatientName=x'%20OR%20'1'='1",
        "PatientName=x%27%20OR%20%271%27%3D%271",
        "PatientName=x'%20OR%201=1%20--*",
        "PatientName=*'%20OR%20''='",
        "PatientName=x%22%20OR%20%221%22=%221&fuzzymatching=true",
        "PatientID=%27%20OR%20%27%27%3D%27",
        "AccessionNumber=%27%3B%20DROP%20TABLE%20studies%3B%20--",
        "AccessionNumber=*')%20OR%20('a'='a",
        "StudyDescription=x')%20UNION%20SELECT%20uid%20FROM%20studies--",
        "ModalitiesInStudy=CT')%20OR%20('1'='1",
        "ModalitiesInStudy=CT'%20OR%201=1--",
        "PatientName=%25",
        "PatientName=_",
    };
    for (size_t i = 0; i < sizeof attempts / sizeof attempts[0]; i++) {
        expect_studies(fx, attempts[i], none);
    }
    /* UIDs are checked at parse time: refused, not run */
    parse_fails(STORE_INSTANCE, "SOPClassUID=1.2'%20OR%20'1'='1");
    parse_fails(STORE_STUDY, "StudyDate=20200101'%20OR%20'1'='1");
    /* still all there */
    long studies = 0;
    assert_int_equal(store_counts(fx->s, &studies, NULL, NULL, NULL), TSR_OK);
    assert_int_equal(studies, NS);
    int all[NS];
    for (int i = 0; i < NS; i++) {
        all[i] = 1;
    }
    expect_studies(fx, "", all);
}

TSR_TEST_MAIN(cmocka_unit_test_setup_teardown(test_parse_keywords_and_tags, setup, teardown),
              cmocka_unit_test_setup_teardown(test_parse_includefield, setup, teardown),
              cmocka_unit_test_setup_teardown(test_parse_limit_offset, setup, teardown),
              cmocka_unit_test_setup_teardown(test_parse_rejects_malformed, setup, teardown),
              cmocka_unit_test_setup_teardown(test_parse_rejects_impossible_values, setup,
                                              teardown),
              cmocka_unit_test_setup_teardown(test_parse_unsupported_attribute, setup, teardown),
              cmocka_unit_test_setup_teardown(test_match_pn_exact, setup, teardown),
              cmocka_unit_test_setup_teardown(test_match_wildcard, setup, teardown),
              cmocka_unit_test_setup_teardown(test_match_date_range, setup, teardown),
              cmocka_unit_test_setup_teardown(test_match_time_range, setup, teardown),
              cmocka_unit_test_setup_teardown(test_match_uid_list, setup, teardown),
              cmocka_unit_test_setup_teardown(test_match_modalities_in_study, setup, teardown),
              cmocka_unit_test_setup_teardown(test_match_accession, setup, teardown),
              cmocka_unit_test_setup_teardown(test_match_fuzzy, setup, teardown),
              cmocka_unit_test_setup_teardown(test_match_universal, setup, teardown),
              cmocka_unit_test_setup_teardown(test_computed_counts, setup, teardown),
              cmocka_unit_test_setup_teardown(test_paging, setup, teardown),
              cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
              cmocka_unit_test_setup_teardown(test_includefield_all, setup, teardown),
              cmocka_unit_test_setup_teardown(test_includefield_rows, setup, teardown),
              cmocka_unit_test_setup_teardown(test_retrieve_url, setup, teardown),
              cmocka_unit_test_setup_teardown(test_sql_injection, setup, teardown))
