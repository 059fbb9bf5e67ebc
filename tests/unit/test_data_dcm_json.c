/* SPDX-License-Identifier: MIT */
/* test_data_dcm_json.c: DICOM JSON of every file in the shared corpus (../shared/dicom) against
 * DCMTK's dcm2json, which nobody on the team wrote.
 *
 * Every file is parsed (bad/ ones may fail, never crash); every other file must parse unless it
 * is on the short list below of files the store refuses on purpose. For each parsed file the
 * JSON is compared with dcm2json's, element by element and recursively through sequences: the
 * same tags (except what the store leaves out on purpose: group lengths, the meta group,
 * trailing padding), the same VRs, the same values (numbers as numbers, strings after DCMTK's
 * NUL padding, base64 of inline binaries), and the summary's UIDs and image size equal
 * DCMTK's. Bulk data paths are resolved with dcm_find_value and the bytes found there equal
 * DCMTK's InlineBinary of the same element. dcm2json refuses to write compressed pixel data, so
 * for those files it reads a copy whose Pixel Data dcmodify removed. */
#define _XOPEN_SOURCE 700
#include "tsr_test.h"

#include "dcm_json.h"
#include "rnd.h"

#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <unistd.h>

/* Files outside bad/ that the store refuses, and why (a substring of the message). */
static const struct {
    const char *rel;
    const char *expect;
} k_refused[] = {
    {"color/jpegls_lossless_rgb__JLSL_RGB_ILV1.dcm", "no DICOM File Meta Information"},
    {"large/wsi_tiled_jpeg_140f__fo-dicom-multiframe.dcm", "StudyInstanceUID '' is not a valid"},
    {"syntax/htj2k_lossless__HTJ2KLossless_08_RGB.dcm", "no StudyInstanceUID"},
    {"syntax/jpegls_lossless_signed15__JLSL_16_15_1_1F.dcm", "no StudyInstanceUID"},
    {"syntax/rle_gray16__leadtools-flowers-16-mono2-rle.dcm", "SOPInstanceUID '' is not a valid"},
};

/* ---------------------------------------------------------------- corpus listing */

typedef struct file_list {
    char **paths;
    size_t n, cap;
} file_list;

static file_list *g_list; /* nftw has no user pointer; set only around the nftw call */

static int
collect(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    size_t n = strlen(path);
    if (flag != FTW_F || (n > 3 && strcmp(path + n - 3, ".md") == 0) ||
        (n > 4 && strcmp(path + n - 4, ".tsv") == 0)) {
        return 0;
    }
    if (g_list->n == g_list->cap) {
        g_list->cap = g_list->cap ? g_list->cap * 2 : 256;
        g_list->paths = realloc(g_list->paths, g_list->cap * sizeof *g_list->paths);
    }
    g_list->paths[g_list->n++] = strdup(path);
    return 0;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The corpus files under `sub` ("" for all), sorted. Skips when the corpus is missing. */
static file_list
corpus(const char *sub)
{
    file_list l = {0};
    char root[4096];
    tsr_test_data("README.md"); /* skips (or fails under CI) when the corpus is absent */
    snprintf(root, sizeof root, "%s/%s", TSR_DICOM_DIR, sub);
    g_list = &l;
    assert_int_equal(nftw(root, collect, 16, FTW_PHYS), 0);
    g_list = NULL;
    qsort(l.paths, l.n, sizeof *l.paths, cmp_str);
    assert_true(l.n > 0);
    return l;
}

static void
list_free(file_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->paths[i]);
    }
    free(l->paths);
}

static const char *
rel_of(const char *path)
{
    return path + strlen(TSR_DICOM_DIR) + 1;
}

static uint8_t *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* ---------------------------------------------------------------- DCMTK */

/* Runs a shell command and returns its standard output (NULL when it fails). */
static char *
run(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p) {
        return NULL;
    }
    size_t len = 0, cap = 1 << 16;
    char *out = malloc(cap);
    size_t got;
    while ((got = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 4096) {
            cap *= 2;
            out = realloc(out, cap);
        }
    }
    out[len] = '\0';
    if (pclose(p) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static int
have_dcmtk(void)
{
    char *v = run("dcm2json --version 2>/dev/null && dcmodify --version >/dev/null 2>&1");
    free(v);
    if (!v && getenv("CI")) {
        fail_msg("dcm2json/dcmodify (DCMTK) missing under CI");
    }
    return v != NULL;
}

/* dcm2json's model of `path`; for files with compressed pixel data, of a copy in `tmpdir`
 * without Pixel Data (*stripped set). NULL when dcm2json cannot read the file at all. */
static json_t *
dcmtk_json(const char *path, const char *tmpdir, int *stripped)
{
    char cmd[8192];
    *stripped = 0;
    snprintf(cmd, sizeof cmd, "dcm2json -q -fc '%s' 2>/dev/null", path);
    char *out = run(cmd);
    if (!out) {
        snprintf(cmd, sizeof cmd,
                 "cp '%s' '%s/s.dcm' && chmod u+w '%s/s.dcm' && "
                 "dcmodify -q -nb -ie -e '(7fe0,0010)' '%s/s.dcm' && "
                 "dcm2json -q -fc '%s/s.dcm' 2>/dev/null",
                 path, tmpdir, tmpdir, tmpdir, tmpdir);
        out = run(cmd);
        *stripped = 1;
    }
    if (!out) {
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loads(out, JSON_ALLOW_NUL, &je);
    free(out);
    return j;
}

/* ---------------------------------------------------------------- comparison */

typedef struct diffs {
    char text[2048];
    size_t len;
    int n;
} diffs;

static void diff(diffs *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
diff(diffs *d, const char *fmt, ...)
{
    d->n++;
    if (d->len + 200 >= sizeof d->text) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    d->len += (size_t)vsnprintf(d->text + d->len, sizeof d->text - d->len, fmt, ap);
    va_end(ap);
    d->len += (size_t)snprintf(d->text + d->len, sizeof d->text - d->len, "\n");
}

/* DCMTK keeps NUL padding and trailing spaces in some values; the store removes them. */
static size_t
unpadded_len(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == '\0' || s[n - 1] == ' ')) {
        n--;
    }
    return n;
}

static int
same_number(double a, double b)
{
    return a == b || fabs(a - b) <= 1e-12 * fmax(fabs(a), fabs(b));
}

/* Values of one element. FL values are compared as floats: the store writes the shortest decimal
 * of the float (0.1), DCMTK the double it widens to (0.100000001). */
static void
cmp_value(diffs *d, const char *where, size_t i, json_t *a, json_t *b, int is_float)
{
    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);
        if (is_float ? (float)x != (float)y : !same_number(x, y)) {
            diff(d, "%s[%zu]: %.17g != DCMTK %.17g", where, i, json_number_value(a),
                 json_number_value(b));
        }
    } else if (json_is_number(a) && json_is_string(b)) {
        /* DCMTK leaves a DS/IS with NUL padding as a string */
        if (!same_number(json_number_value(a), strtod(json_string_value(b), NULL))) {
            diff(d, "%s[%zu]: %.17g != DCMTK '%s'", where, i, json_number_value(a),
                 json_string_value(b));
        }
    } else if (json_is_string(a) && json_is_string(b)) {
        const char *sa = json_string_value(a), *sb = json_string_value(b);
        size_t nb = unpadded_len(sb, json_string_length(b));
        if (strlen(sa) != nb || memcmp(sa, sb, nb) != 0) {
            diff(d, "%s[%zu]: '%s' != DCMTK '%.*s'", where, i, sa, (int)nb, sb);
        }
    } else if (json_is_object(a) && json_is_object(b)) {
        /* a person name */
        const char *key;
        json_t *v;
        json_object_foreach(b, key, v)
        {
            json_t *mine = json_object_get(a, key);
            if (!mine || strcmp(json_string_value(mine), json_string_value(v)) != 0) {
                diff(d, "%s[%zu].%s: '%s' != DCMTK '%s'", where, i, key,
                     mine ? json_string_value(mine) : "(none)", json_string_value(v));
            }
        }
        if (json_object_size(a) != json_object_size(b)) {
            diff(d, "%s[%zu]: %zu name groups, DCMTK %zu", where, i, json_object_size(a),
                 json_object_size(b));
        }
    } else if (!(json_is_null(a) && json_is_null(b))) {
        /* an empty DCMTK string after padding is removed is our null */
        int padding = json_is_null(a) && json_is_string(b) &&
                      unpadded_len(json_string_value(b), json_string_length(b)) == 0;
        if (!padding) {
            diff(d, "%s[%zu]: JSON types differ (%d, DCMTK %d)", where, i, json_typeof(a),
                 json_typeof(b));
        }
    }
}

static int
skipped_key(const char *key, int top, int stripped)
{
    return strncmp(key, "0002", 4) == 0 || strcmp(key + 4, "0000") == 0 ||
           strcmp(key, "FFFCFFFC") == 0 || (top && stripped && strcmp(key, "7FE00010") == 0);
}

static void cmp_dataset(diffs *d, const char *where, json_t *a, json_t *b, int top, int stripped);

static void
cmp_element(diffs *d, const char *where, json_t *a, json_t *b)
{
    const char *vra = json_string_value(json_object_get(a, "vr"));
    const char *vrb = json_string_value(json_object_get(b, "vr"));
    if (!vra || !vrb || strcmp(vra, vrb) != 0) {
        diff(d, "%s: vr %s != DCMTK %s", where, vra ? vra : "?", vrb ? vrb : "?");
        return;
    }
    if (json_object_get(a, "BulkDataURI")) {
        return; /* compared through dcm_find_value */
    }
    json_t *ia = json_object_get(a, "InlineBinary"), *ib = json_object_get(b, "InlineBinary");
    if (ia || ib) {
        if (!ia || !ib || strcmp(json_string_value(ia), json_string_value(ib)) != 0) {
            diff(d, "%s: InlineBinary differs", where);
        }
        return;
    }
    json_t *va = json_object_get(a, "Value"), *vb = json_object_get(b, "Value");
    if (strcmp(vra, "SQ") == 0) {
        if (json_array_size(va) != json_array_size(vb)) {
            diff(d, "%s: %zu items, DCMTK %zu", where, json_array_size(va), json_array_size(vb));
            return;
        }
        for (size_t i = 0; i < json_array_size(va); i++) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s/%zu", where, i);
            cmp_dataset(d, sub, json_array_get(va, i), json_array_get(vb, i), 0, 0);
        }
        return;
    }
    if (!va && vb) {
        /* DCMTK writes values that are only padding (NULs) */
        for (size_t i = 0; i < json_array_size(vb); i++) {
            json_t *v = json_array_get(vb, i);
            if (!json_is_string(v) || unpadded_len(json_string_value(v), json_string_length(v))) {
                diff(d, "%s: no value, DCMTK has %zu", where, json_array_size(vb));
                return;
            }
        }
        return;
    }
    if (json_array_size(va) != json_array_size(vb)) {
        diff(d, "%s: %zu values, DCMTK %zu", where, json_array_size(va), json_array_size(vb));
        return;
    }
    for (size_t i = 0; i < json_array_size(va); i++) {
        cmp_value(d, where, i, json_array_get(va, i), json_array_get(vb, i),
                  strcmp(vra, "FL") == 0);
    }
}

static void
cmp_dataset(diffs *d, const char *where, json_t *a, json_t *b, int top, int stripped)
{
    const char *key;
    json_t *v;
    json_object_foreach(b, key, v)
    {
        if (skipped_key(key, top, stripped)) {
            continue;
        }
        char sub[512];
        snprintf(sub, sizeof sub, "%s/%s", where, key);
        json_t *mine = json_object_get(a, key);
        if (!mine) {
            diff(d, "%s: only in DCMTK", sub);
        } else if (strcmp(key, "00080005") == 0) {
            /* DCMTK rewrites the character set to ISO_IR 192 (its output is UTF-8); the store
             * keeps the file's value */
        } else {
            cmp_element(d, sub, mine, v);
        }
    }
    json_object_foreach(a, key, v)
    {
        if (!json_object_get(b, key) && !(top && stripped && strcmp(key, "7FE00010") == 0)) {
            diff(d, "%s/%s: only in ours", where, key);
        }
    }
}

/* The first value of element `key` of DCMTK's model as a string ("" when absent). */
static const char *
dcmtk_str(json_t *j, const char *key)
{
    const char *s =
        json_string_value(json_array_get(json_object_get(json_object_get(j, key), "Value"), 0));
    return s ? s : "";
}

static long long
dcmtk_int(json_t *j, const char *key)
{
    json_t *v = json_array_get(json_object_get(json_object_get(j, key), "Value"), 0);
    return json_is_string(v) ? atoll(json_string_value(v)) : json_integer_value(v);
}

/* ---------------------------------------------------------------- bulk data */

static size_t
base64_decode(const char *s, uint8_t *out)
{
    static const char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *s && *s != '='; s++) {
        const char *p = strchr(k, *s);
        assert_non_null(p);
        acc = acc << 6 | (uint32_t)(p - k);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return n;
}

/* For every BulkDataURI in `ours` (at `where`, a tag path prefix), finds the value with
 * dcm_find_value and compares its little endian bytes with DCMTK's InlineBinary. Returns the
 * number of values compared. */
static int
check_bulk(diffs *d, const uint8_t *buf, size_t len, json_t *ours, json_t *theirs,
           const char *prefix, int deflated)
{
    int compared = 0;
    const char *key;
    json_t *el;
    json_object_foreach(ours, key, el)
    {
        char path[512];
        snprintf(path, sizeof path, "%s%s", prefix, key);
        json_t *them = json_object_get(theirs, key);
        json_t *items = json_object_get(el, "Value");
        if (strcmp(json_string_value(json_object_get(el, "vr")), "SQ") == 0) {
            for (size_t i = 0; i < json_array_size(items); i++) {
                char sub[600];
                snprintf(sub, sizeof sub, "%s/%zu/", path, i);
                compared +=
                    check_bulk(d, buf, len, json_array_get(items, i),
                               json_array_get(json_object_get(them, "Value"), i), sub, deflated);
            }
            continue;
        }
        const char *uri = json_string_value(json_object_get(el, "BulkDataURI"));
        if (!uri) {
            continue;
        }
        const char *at = strstr(uri, "/bulkdata/");
        if (!at || strcmp(at + 10, path) != 0 || strncmp(uri, "/studies/", 9) != 0) {
            diff(d, "%s: BulkDataURI %s", path, uri);
            continue;
        }
        size_t off;
        uint32_t vlen;
        char vr[3];
        int be;
        tsr_err err = {0};
        int rc = dcm_find_value(buf, len, at + 10, &off, &vlen, vr, &be, &err);
        if (deflated) {
            if (rc != TSR_EUNSUPP) {
                diff(d, "%s: deflated, dcm_find_value gave %d", path, rc);
            }
            continue;
        }
        if (rc != TSR_OK) {
            diff(d, "%s: dcm_find_value: %s", path, err.msg);
            continue;
        }
        const char *b64 = json_string_value(json_object_get(them, "InlineBinary"));
        if (!b64 || vlen == 0xffffffffu) {
            continue; /* DCMTK wrote no bytes for it (stripped or encapsulated pixel data) */
        }
        uint8_t *want = malloc(strlen(b64) / 4 * 3 + 3);
        size_t n = base64_decode(b64, want);
        size_t word = !be                                              ? 1
                      : strcmp(vr, "OW") == 0                          ? 2
                      : strcmp(vr, "OF") == 0 || strcmp(vr, "OL") == 0 ? 4
                      : strcmp(vr, "OD") == 0 || strcmp(vr, "OV") == 0 ? 8
                                                                       : 1;
        int same = n == vlen;
        for (size_t i = 0; same && i < n; i++) {
            same = want[i] == buf[off + i / word * word + (word - 1 - i % word)];
        }
        if (!same) {
            diff(d, "%s: %u bytes at offset %zu differ from DCMTK's %zu", path, vlen, off, n);
        }
        free(want);
        compared++;
    }
    return compared;
}

/* ---------------------------------------------------------------- the cases */

static int
is_refused(const char *rel, const char **expect)
{
    for (size_t i = 0; i < sizeof k_refused / sizeof k_refused[0]; i++) {
        if (strcmp(rel, k_refused[i].rel) == 0) {
            *expect = k_refused[i].expect;
            return 1;
        }
    }
    return 0;
}

/* Parses every file under `sub` and compares with DCMTK; at least `min_compared` files must be
 * compared when DCMTK is installed. */
static void
check_folder(const char *sub, int min_compared)
{
    int dcmtk = have_dcmtk();
    char tmpdir[] = "/tmp/tsr-dcmjson-XXXXXX";
    assert_non_null(mkdtemp(tmpdir));
    file_list l = corpus(sub);
    int compared = 0, skipped = 0, bulk = 0;
    diffs all = {0};
    for (size_t f = 0; f < l.n; f++) {
        const char *rel = rel_of(l.paths[f]);
        size_t len;
        uint8_t *buf = slurp(l.paths[f], &len);
        dcm_summary s;
        char *text = NULL;
        size_t text_len = 0;
        tsr_err err = {0};
        /* everything inline (pixel data excepted) so that DCMTK's InlineBinary compares */
        dcm_json_opts all_inline = {SIZE_MAX, 16};
        int rc = dcm_parse(buf, len, &all_inline, &s, &text, &text_len, &err);
        const char *expect = NULL;
        int bad = strncmp(rel, "bad/", 4) == 0;
        if (rc != TSR_OK) {
            assert_null(text);
            if (!err.msg[0]) {
                fail_msg("%s: rc %d without a message", rel, rc);
            }
            if (!bad && !(is_refused(rel, &expect) && strstr(err.msg, expect))) {
                fail_msg("%s: %s", rel, err.msg);
            }
            free(buf);
            continue;
        }
        if (is_refused(rel, &expect)) {
            fail_msg("%s parsed, but is expected to be refused (%s)", rel, expect);
        }
        json_error_t je;
        json_t *ours = json_loads(text, 0, &je);
        if (!ours) {
            fail_msg("%s: our JSON does not load: %s", rel, je.text);
        }
        /* the default threshold: bulk data URIs resolved in the file */
        char *text2 = NULL;
        assert_int_equal(dcm_parse(buf, len, NULL, &s, &text2, &text_len, &err), TSR_OK);
        json_t *ours_bulk = json_loads(text2, 0, &je);
        assert_non_null(ours_bulk);
        int stripped = 0;
        json_t *theirs = dcmtk ? dcmtk_json(l.paths[f], tmpdir, &stripped) : NULL;
        if (!theirs) {
            skipped++;
        } else {
            diffs d = {0};
            cmp_dataset(&d, "", ours, theirs, 1, stripped);
            if (strcmp(s.sop_instance_uid, dcmtk_str(theirs, "00080018")) != 0 ||
                strcmp(s.study_uid, dcmtk_str(theirs, "0020000D")) != 0 ||
                strcmp(s.series_uid, dcmtk_str(theirs, "0020000E")) != 0 ||
                strcmp(s.sop_class_uid, dcmtk_str(theirs, "00080016")) != 0) {
                diff(&d, "summary UIDs differ from DCMTK's");
            }
            if (s.rows != (uint32_t)dcmtk_int(theirs, "00280010") ||
                s.columns != (uint32_t)dcmtk_int(theirs, "00280011")) {
                diff(&d, "summary size %ux%u differs from DCMTK's", s.columns, s.rows);
            }
            long long nf = dcmtk_int(theirs, "00280008");
            uint32_t want_frames = !s.has_pixel_data ? 0 : nf > 0 ? (uint32_t)nf : 1;
            if (s.frames != want_frames) {
                diff(&d, "summary frames %u, expected %u", s.frames, want_frames);
            }
            int deflated = strcmp(s.transfer_syntax, "1.2.840.10008.1.2.1.99") == 0;
            bulk += check_bulk(&d, buf, len, ours_bulk, theirs, "", deflated);
            if (d.n) {
                char head[80];
                snprintf(head, sizeof head, "%s: %d differences\n", rel, d.n);
                diff(&all, "%s%s", head, d.text);
            }
            compared++;
            json_decref(theirs);
        }
        json_decref(ours);
        json_decref(ours_bulk);
        free(text);
        free(text2);
        free(buf);
    }
    list_free(&l);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
    if (all.n) {
        fail_msg("%s", all.text);
    }
    if (dcmtk) {
        print_message("%s: %d files compared with dcm2json, %d skipped, %d bulk values checked\n",
                      sub[0] ? sub : "corpus", compared, skipped, bulk);
        assert_true(compared >= min_compared);
        assert_true(skipped <= 1); /* ISO 2022 IR 87: DCMTK's iconv setup refuses it */
    }
}

static void
syntax_files_match_dcmtk(void **state)
{
    (void)state;
    check_folder("syntax", 15);
}

static void
series_files_match_dcmtk(void **state)
{
    (void)state;
    check_folder("series", 120);
}

static void
other_files_match_dcmtk(void **state)
{
    (void)state;
    static const char *k_folders[] = {"color", "edge", "grayscale", "large", "multiframe"};
    for (size_t i = 0; i < sizeof k_folders / sizeof k_folders[0]; i++) {
        check_folder(k_folders[i], 3);
    }
}

/* bad/ files: nothing crashes; what fails says why; truncated ones name the place. */
static void
bad_files_fail_cleanly(void **state)
{
    (void)state;
    file_list l = corpus("bad");
    int failed = 0;
    for (size_t f = 0; f < l.n; f++) {
        size_t len;
        uint8_t *buf = slurp(l.paths[f], &len);
        dcm_summary s;
        char *text = NULL;
        tsr_err err = {0};
        int rc = dcm_parse(buf, len, NULL, &s, &text, NULL, &err);
        if (rc != TSR_OK) {
            failed++;
            assert_true(err.msg[0] != '\0');
            if (strstr(l.paths[f], "truncated")) {
                assert_int_equal(rc, TSR_ECORRUPT);
                assert_non_null(strstr(err.msg, "runs past the end of the data"));
            }
        }
        free(text);
        free(buf);
    }
    assert_true(failed >= 6);
    list_free(&l);
}

/* The enhanced multi-frame files take their geometry from the functional groups. */
static void
enhanced_multiframe_summary(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = slurp(tsr_test_data("multiframe/enhanced_mr_12f__BRMULTI.dcm"), &len);
    dcm_summary s;
    tsr_err err = {0};
    assert_int_equal(dcm_parse(buf, len, NULL, &s, NULL, NULL, &err), TSR_OK);
    assert_int_equal(s.frames, 12);
    assert_true(s.has_position);
    assert_true(s.has_orientation);
    assert_true(s.has_pixel_spacing);
    assert_string_equal(s.modality, "MR");
    free(buf);
}

TSR_TEST_MAIN(cmocka_unit_test(syntax_files_match_dcmtk),
              cmocka_unit_test(series_files_match_dcmtk), cmocka_unit_test(other_files_match_dcmtk),
              cmocka_unit_test(bad_files_fail_cleanly),
              cmocka_unit_test(enhanced_multiframe_summary))
