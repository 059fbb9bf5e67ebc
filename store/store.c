/* SPDX-License-Identifier: MIT */
/* store.c: opening the store, crash recovery, and ingest (atomic file writes + index commits).
 *
 * Life of an uploaded instance:
 *   1. streamed into tmp/up-XXXXXX (store_part_*), never held whole in memory;
 *   2. parsed and validated (dcm_parse for structure, UIDs and the DICOM JSON; the render core
 *      for image attributes and the first frame of compressed pixel data);
 *   3. at commit: fdatasync of the batch's temporary files (write-back started when each part
 *      ended), BEGIN IMMEDIATE, duplicate check, an intent file naming the final paths (synced),
 *      rename into objects/, directory syncs, the index rows, COMMIT; then the intent is
 *      removed.
 * A process killed anywhere leaves either a committed instance or, after the next open, nothing:
 * tmp/ is emptied and files named by a leftover intent but absent from the index are removed. */
#define _GNU_SOURCE
#include "access.h"
#include "rnd.h"
#include "store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- files */

static int
fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Creates each missing folder of `path`; a folder created here has its parent synced, so the
 * new entry survives a crash on file systems that do not order metadata (sync = 1). */
static int
mkdir_sync(const char *path, int sync, tsr_err *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s", path);
    size_t n = strlen(tmp);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0') {
            continue;
        }
        char c = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, 0755) == 0) {
            char *slash = strrchr(tmp, '/');
            if (sync && slash && slash != tmp) {
                *slash = '\0';
                fsync_dir(tmp);
                *slash = '/';
            }
        } else if (errno != EEXIST) {
            return tsr_err_set(err, TSR_EIO, "cannot create %s: %s", tmp, strerror(errno));
        }
        tmp[i] = c;
    }
    return TSR_OK;
}

static int
mkdir_p(const char *path, tsr_err *err)
{
    return mkdir_sync(path, 0, err);
}

static int
io_err(tsr_err *err, int e, const char *what, const char *path)
{
    int code = (e == ENOSPC || e == EDQUOT || e == EFBIG) ? TSR_ENOSPACE : TSR_EIO;
    return tsr_err_set(err, code, "%s %s: %s", what, path, strerror(e));
}

/* objects/HH/<study>/<series>/<sop>: the instances of a series share a folder, so a batch syncs
 * one directory per series; HH (a hash of the study UID) spreads studies over 256 folders. The
 * UIDs were checked by dcm_parse (digits and dots only), so the path cannot leave DIR. */
static void
object_relpath(const dcm_summary *m, char *out, size_t cap)
{
    uint32_t h = 2166136261u;
    for (const char *p = m->study_uid; *p; p++) {
        h = (h ^ (uint8_t)*p) * 16777619u;
    }
    snprintf(out, cap, "objects/%02x/%s/%s/%s", (h ^ (h >> 8) ^ (h >> 16) ^ (h >> 24)) & 0xff,
             m->study_uid, m->series_uid, m->sop_instance_uid);
}

/* Removes files that a crashed commit renamed into objects/ without recording them. */
static void
recover(store *s)
{
    DIR *d = opendir(s->tmp_dir);
    if (!d) {
        return;
    }
    struct dirent *e;
    int removed = 0, orphans = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char path[4600];
        snprintf(path, sizeof path, "%s/%s", s->tmp_dir, e->d_name);
        size_t n = strlen(e->d_name);
        if (n > 7 && strcmp(e->d_name + n - 7, ".intent") == 0) {
            FILE *f = fopen(path, "r");
            char line[4200];
            while (f && fgets(line, sizeof line, f)) {
                line[strcspn(line, "\n")] = '\0';
                if (line[0] && !store__index_has_path(s->pool.writer, line)) {
                    char full[8400];
                    snprintf(full, sizeof full, "%s/%s", s->dir, line);
                    if (unlink(full) == 0) {
                        orphans++;
                    }
                }
            }
            if (f) {
                fclose(f);
            }
        }
        if (unlink(path) == 0) {
            removed++;
        }
    }
    closedir(d);
    if (removed || orphans) {
        TSR_LOG(TSR_LOG_WARN,
                "store: removed %d leftover temporary file(s) and %d uncommitted object(s) "
                "of an interrupted ingest",
                removed, orphans);
    }
}

int
store_open(const store_opts *opts, store **out, tsr_err *err)
{
    if (!opts || !opts->dir || !opts->dir[0]) {
        return tsr_err_set(err, TSR_EINVAL, "store: no data directory given");
    }
    store *s = calloc(1, sizeof *s);
    if (!s) {
        return tsr_err_set(err, TSR_ENOMEM, "store: out of memory");
    }
    if (!realpath(opts->dir, s->dir)) {
        if (mkdir_p(opts->dir, err) != TSR_OK || !realpath(opts->dir, s->dir)) {
            free(s);
            return err && err->code ? err->code
                                    : tsr_err_set(err, TSR_EIO, "cannot use %s", opts->dir);
        }
    }
    if (strlen(s->dir) > 2000) {
        free(s);
        return tsr_err_set(err, TSR_EINVAL, "store: data directory path too long");
    }
    snprintf(s->tmp_dir, sizeof s->tmp_dir, "%s/tmp", s->dir);
    s->max_instance = opts->max_instance ? opts->max_instance : (uint64_t)4 << 30;
    s->no_sync = opts->no_sync;
    char objects[4200];
    snprintf(objects, sizeof objects, "%s/objects", s->dir);
    int rc = mkdir_p(s->tmp_dir, err);
    if (rc == TSR_OK) {
        rc = mkdir_p(objects, err);
    }
    if (rc == TSR_OK) {
        rc = store__index_open(s, opts->read_connections > 0 ? opts->read_connections : 8, err);
        if (rc == TSR_OK) {
            rc = access__init(s, err);
            if (rc != TSR_OK) {
                store__index_close(s);
            }
        }
    }
    if (rc != TSR_OK) {
        free(s);
        return rc;
    }
    recover(s);
    *out = s;
    return TSR_OK;
}

void
store_close(store *s)
{
    if (!s) {
        return;
    }
    access__shutdown(s); /* writes the audit entries still queued */
    /* refresh the planner's statistics (cheap when nothing changed) */
    if (s->pool.writer) {
        store__exec(s->pool.writer, "PRAGMA optimize", NULL);
    }
    store__index_close(s);
    free(s);
}

const char *
store_dir(const store *s)
{
    return s->dir;
}

/* ---------------------------------------------------------------- batches */

typedef struct pending {
    char tmp[4300];
    char rel[256];
    dcm_summary sum;
    char *json;
    size_t json_len;
    uint64_t size;
    int result; /* index into results */
} pending;

struct store_batch {
    store *s;
    char required_study[65];
    store_result *results;
    int n_results, cap_results;
    pending *pend;
    int n_pend, cap_pend;
    /* the part being received */
    int fd;
    char part_tmp[4300];
    char part_name[128];
    uint64_t part_bytes;
    int part_failed; /* limit exceeded: data is drained, result already recorded */
    uint64_t total_bytes;
    int committed;
};

int
store_batch_begin(store *s, const char *required_study, store_batch **out, tsr_err *err)
{
    store_batch *b = calloc(1, sizeof *b);
    if (!b) {
        return tsr_err_set(err, TSR_ENOMEM, "store: out of memory");
    }
    b->s = s;
    b->fd = -1;
    if (required_study) {
        snprintf(b->required_study, sizeof b->required_study, "%s", required_study);
    }
    *out = b;
    return TSR_OK;
}

static store_result *
add_result(store_batch *b, tsr_err *err)
{
    if (b->n_results == b->cap_results) {
        int cap = b->cap_results ? b->cap_results * 2 : 16;
        store_result *r = realloc(b->results, (size_t)cap * sizeof *r);
        if (!r) {
            tsr_err_set(err, TSR_ENOMEM, "store: out of memory");
            return NULL;
        }
        b->results = r;
        b->cap_results = cap;
    }
    store_result *r = &b->results[b->n_results++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", b->part_name);
    return r;
}

static void
fail(store_result *r, uint16_t reason, const char *msg)
{
    r->kind = STORE_FAILED;
    r->reason = reason;
    snprintf(r->message, sizeof r->message, "%s", msg);
}

int
store_part_begin(store_batch *b, const char *name, tsr_err *err)
{
    if (b->fd >= 0) {
        return tsr_err_set(err, TSR_EINTERNAL, "store: part already open");
    }
    if (b->committed) {
        return tsr_err_set(err, TSR_EINTERNAL, "store: batch already committed");
    }
    snprintf(b->part_name, sizeof b->part_name, "%s", name ? name : "");
    snprintf(b->part_tmp, sizeof b->part_tmp, "%s/up-XXXXXX", b->s->tmp_dir);
    b->fd = mkostemp(b->part_tmp, O_CLOEXEC);
    if (b->fd < 0) {
        return io_err(err, errno, "cannot create a temporary file in", b->s->tmp_dir);
    }
    b->part_bytes = 0;
    b->part_failed = 0;
    return TSR_OK;
}

int
store_part_write(store_batch *b, const void *data, size_t len, tsr_err *err)
{
    if (b->fd < 0) {
        return tsr_err_set(err, TSR_EINTERNAL, "store: no part open");
    }
    b->total_bytes += len;
    if (b->part_failed) {
        return TSR_OK;
    }
    if (b->part_bytes + len > b->s->max_instance) {
        /* Refuse this instance, keep reading the others. */
        b->part_failed = 1;
        if (ftruncate(b->fd, 0) != 0) {
            /* the file is removed at part end anyway */
        }
        return TSR_OK;
    }
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = write(b->fd, p, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return io_err(err, errno, "cannot write", b->part_tmp);
        }
        p += w;
        len -= (size_t)w;
        b->part_bytes += (uint64_t)w;
    }
    return TSR_OK;
}

/* Checks that the render core can read the image attributes and decode the first and last
 * frames of compressed pixel data, so that nothing is acknowledged that can never be shown. */
static int
validate_pixels(const uint8_t *buf, size_t len, const dcm_summary *sum, tsr_err *err)
{
    rnd_dicom *d = NULL;
    int rc = rnd_dicom_open_mem(buf, len, NULL, &d, err);
    if (rc != TSR_OK) {
        return rc;
    }
    const rnd_info *info = rnd_dicom_info(d);
    int native = strcmp(sum->transfer_syntax, "1.2.840.10008.1.2") == 0 ||
                 strcmp(sum->transfer_syntax, "1.2.840.10008.1.2.1") == 0 ||
                 strcmp(sum->transfer_syntax, "1.2.840.10008.1.2.2") == 0 ||
                 strcmp(sum->transfer_syntax, "1.2.840.10008.1.2.1.99") == 0;
    /* Native data: decoding the last frame checks that the pixel data is as long as the
     * attributes say (the render core refuses short data). Compressed: the first and last. */
    uint32_t idx[2] = {info->frames - 1, 0};
    int n = native || info->frames == 1 ? 1 : 2;
    for (int i = 0; i < n && rc == TSR_OK; i++) {
        rnd_frame *f = NULL;
        rc = rnd_dicom_decode_frame(d, idx[i], &f, err);
        if (rc != TSR_OK) {
            tsr_err_prefix(err, rc, "frame %u: ", idx[i] + 1);
        }
        rnd_frame_free(f);
    }
    rnd_dicom_close(d);
    return rc;
}

static int
map_file(int fd, uint64_t size, const uint8_t **out)
{
    if (size == 0) {
        *out = NULL;
        return 0;
    }
    void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        return -1;
    }
    *out = p;
    return 0;
}

int
store_part_end(store_batch *b, tsr_err *err)
{
    if (b->fd < 0) {
        return tsr_err_set(err, TSR_EINTERNAL, "store: no part open");
    }
    int fd = b->fd;
    b->fd = -1;
    store_result *r = add_result(b, err);
    if (!r) {
        close(fd);
        unlink(b->part_tmp);
        return TSR_ENOMEM;
    }
    if (b->part_failed) {
        char msg[128];
        snprintf(msg, sizeof msg, "instance larger than the limit of %llu bytes",
                 (unsigned long long)b->s->max_instance);
        fail(r, 0xA700, msg);
        close(fd);
        unlink(b->part_tmp);
        return TSR_OK;
    }
    const uint8_t *buf = NULL;
    if (map_file(fd, b->part_bytes, &buf) != 0) {
        int e = errno;
        close(fd);
        unlink(b->part_tmp);
        b->n_results--;
        return io_err(err, e, "cannot map", b->part_tmp);
    }
    pending pd;
    memset(&pd, 0, sizeof pd);
    tsr_err perr = {0};
    int rc = buf ? dcm_parse(buf, (size_t)b->part_bytes, NULL, &pd.sum, &pd.json, &pd.json_len,
                             &perr)
                 : tsr_err_set(&perr, TSR_ECORRUPT, "empty part");
    if (rc == TSR_OK) {
        snprintf(r->sop_class_uid, sizeof r->sop_class_uid, "%s", pd.sum.sop_class_uid);
        snprintf(r->sop_instance_uid, sizeof r->sop_instance_uid, "%s", pd.sum.sop_instance_uid);
        snprintf(r->study_uid, sizeof r->study_uid, "%s", pd.sum.study_uid);
        snprintf(r->series_uid, sizeof r->series_uid, "%s", pd.sum.series_uid);
        if (b->required_study[0] && strcmp(b->required_study, pd.sum.study_uid) != 0) {
            char msg[200];
            snprintf(msg, sizeof msg, "StudyInstanceUID %s differs from the study %s of the request",
                     pd.sum.study_uid, b->required_study);
            fail(r, 0xA900, msg);
            rc = TSR_EINVAL;
        } else if (pd.sum.has_pixel_data) {
            rc = validate_pixels(buf, (size_t)b->part_bytes, &pd.sum, &perr);
            if (rc == TSR_EUNSUPP) {
                /* Valid DICOM that the render core cannot show (yet): stored all the same, so
                 * nothing sent is lost; rendering it answers 422 with the reason. */
                TSR_LOG(TSR_LOG_WARN, "store: %s stored, but not renderable: %s",
                        pd.sum.sop_instance_uid, perr.msg);
                rc = TSR_OK;
            } else if (rc != TSR_OK) {
                fail(r, 0xC000, perr.msg);
            }
        }
    } else {
        fail(r, rc == TSR_ENOMEM ? 0xA700 : 0xC000, perr.msg);
    }
    if (buf) {
        munmap((void *)buf, (size_t)b->part_bytes);
    }
    if (rc == TSR_OK && !b->s->no_sync) {
        /* start writing it out now; the commit's fdatasync then has little left to wait for */
        sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    }
    close(fd);
    if (rc != TSR_OK) {
        free(pd.json);
        unlink(b->part_tmp);
        return TSR_OK;
    }
    if (b->n_pend == b->cap_pend) {
        int cap = b->cap_pend ? b->cap_pend * 2 : 16;
        pending *np = realloc(b->pend, (size_t)cap * sizeof *np);
        if (!np) {
            free(pd.json);
            unlink(b->part_tmp);
            fail(r, 0xA700, "out of memory");
            return TSR_OK;
        }
        b->pend = np;
        b->cap_pend = cap;
    }
    snprintf(pd.tmp, sizeof pd.tmp, "%s", b->part_tmp);
    object_relpath(&pd.sum, pd.rel, sizeof pd.rel);
    pd.size = b->part_bytes;
    pd.result = b->n_results - 1;
    r->kind = STORE_STORED;
    b->pend[b->n_pend++] = pd;
    return TSR_OK;
}

int
store_part_file(store_batch *b, const char *path, tsr_err *err)
{
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        return io_err(err, errno, "cannot open", path);
    }
    int rc = store_part_begin(b, path, err);
    /* heap, not TLS: CivetWeb workers run on small stacks that static TLS would eat */
    enum { CHUNK = 1 << 16 };
    uint8_t *chunk = malloc(CHUNK);
    if (!chunk) {
        rc = tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    while (rc == TSR_OK) {
        ssize_t n = read(in, chunk, CHUNK);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = io_err(err, errno, "cannot read", path);
            break;
        }
        if (n == 0) {
            break;
        }
        rc = store_part_write(b, chunk, (size_t)n, err);
    }
    close(in);
    free(chunk);
    if (rc != TSR_OK) {
        if (b->fd >= 0) {
            close(b->fd);
            b->fd = -1;
            unlink(b->part_tmp);
        }
        return rc;
    }
    return store_part_end(b, err);
}

/* Same bytes as the stored file? */
static int
same_content(const char *a, const char *b_path, uint64_t size)
{
    int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b_path, O_RDONLY | O_CLOEXEC);
    enum { CHUNK = 1 << 16 };
    uint8_t *ba = malloc(2 * CHUNK), *bb = ba ? ba + CHUNK : NULL;
    int same = fa >= 0 && fb >= 0 && ba;
    uint64_t left = size;
    while (same && left > 0) {
        size_t want = left < CHUNK ? (size_t)left : CHUNK;
        ssize_t na = read(fa, ba, want), nb = read(fb, bb, want);
        same = na == (ssize_t)want && nb == (ssize_t)want && memcmp(ba, bb, want) == 0;
        left -= want;
    }
    if (fa >= 0) {
        close(fa);
    }
    if (fb >= 0) {
        close(fb);
    }
    free(ba);
    return same;
}

static void
drop_pending(store_batch *b, uint16_t reason, const char *msg)
{
    for (int i = 0; i < b->n_pend; i++) {
        unlink(b->pend[i].tmp);
        free(b->pend[i].json);
        store_result *r = &b->results[b->pend[i].result];
        if (r->kind == STORE_STORED) {
            fail(r, reason, msg);
        }
    }
    b->n_pend = 0;
}

static int
write_intent(const char *path, store_batch *b, const uint8_t *use, int no_sync, tsr_err *err)
{
    FILE *f = fopen(path, "we");
    if (!f) {
        return io_err(err, errno, "cannot create", path);
    }
    for (int i = 0; i < b->n_pend; i++) {
        if (use[i]) {
            fprintf(f, "%s\n", b->pend[i].rel);
        }
    }
    int bad = fflush(f) != 0 || (!no_sync && fsync(fileno(f)) != 0);
    int e = errno;
    fclose(f);
    return bad ? io_err(err, e, "cannot write", path) : TSR_OK;
}

int
store_batch_commit(store_batch *b, tsr_err *err)
{
    store *s = b->s;
    if (b->committed) {
        return TSR_OK;
    }
    b->committed = 1;
    if (b->n_pend == 0) {
        return TSR_OK;
    }
    for (int i = 0; i < b->n_pend && !s->no_sync; i++) {
        /* Only this batch's files (syncfs would also wait for every other writer on the disk);
         * their write-back was started when each part ended, so this mostly waits. */
        int fd = open(b->pend[i].tmp, O_RDONLY | O_CLOEXEC);
        int rc = fd >= 0 ? fdatasync(fd) : -1;
        int e = errno;
        if (fd >= 0) {
            close(fd);
        }
        if (rc != 0) {
            drop_pending(b, 0xA700, "cannot sync the uploaded data to disk");
            return io_err(err, e, "cannot sync", b->pend[i].tmp);
        }
    }
    uint8_t *use = calloc((size_t)b->n_pend, 1);
    if (!use) {
        drop_pending(b, 0xA700, "out of memory");
        return tsr_err_set(err, TSR_ENOMEM, "store: out of memory");
    }
    pthread_mutex_lock(&s->pool.writer_mu);
    sqlite3 *db = s->pool.writer;
    int rc = store__exec(db, "BEGIN IMMEDIATE", err);
    /* Pass 1: duplicates (also within this batch: the same UID twice). */
    for (int i = 0; rc == TSR_OK && i < b->n_pend; i++) {
        pending *p = &b->pend[i];
        store_result *r = &b->results[p->result];
        char rel[256];
        uint64_t size = 0;
        int found = store__index_lookup(db, p->sum.sop_instance_uid, rel, sizeof rel, &size, err);
        int earlier = -1;
        for (int j = 0; j < i; j++) {
            if (use[j] && strcmp(b->pend[j].sum.sop_instance_uid, p->sum.sop_instance_uid) == 0) {
                earlier = j;
            }
        }
        if (found != TSR_OK && found != TSR_ENOTFOUND) {
            rc = found;
            break;
        }
        const char *other = NULL;
        char full[4400];
        if (found == TSR_OK) {
            snprintf(full, sizeof full, "%s/%s", s->dir, rel);
            other = full;
        } else if (earlier >= 0) {
            other = b->pend[earlier].tmp;
            size = b->pend[earlier].size;
        }
        if (!other) {
            use[i] = 1;
        } else if (size == p->size && same_content(p->tmp, other, size)) {
            r->kind = STORE_ALREADY;
        } else {
            fail(r, 0x0111,
                 "a different instance with this SOPInstanceUID is already stored "
                 "(first write wins)");
        }
    }
    char intent[4400];
    snprintf(intent, sizeof intent, "%s/commit-%ld-%p.intent", s->tmp_dir, (long)getpid(),
             (void *)b);
    int have_intent = 0;
    if (rc == TSR_OK) {
        rc = write_intent(intent, b, use, s->no_sync, err);
        have_intent = rc == TSR_OK;
    }
    /* Pass 2: rename into place and record. */
    for (int i = 0; rc == TSR_OK && i < b->n_pend; i++) {
        if (!use[i]) {
            continue;
        }
        pending *p = &b->pend[i];
        char full[4400], dir[4400];
        snprintf(full, sizeof full, "%s/%s", s->dir, p->rel);
        snprintf(dir, sizeof dir, "%s", full);
        *strrchr(dir, '/') = '\0';
        rc = mkdir_sync(dir, !s->no_sync, err);
        if (rc == TSR_OK && rename(p->tmp, full) != 0) {
            rc = io_err(err, errno, "cannot rename into", dir);
        }
        if (rc == TSR_OK) {
            rc = store__index_insert(db, &p->sum, p->json, p->json_len, p->rel, p->size, err);
            if (rc == TSR_EINVAL) {
                /* a conflict of this instance only (series under another study) */
                fail(&b->results[p->result], 0xA900, err ? err->msg : "conflicting series");
                unlink(full);
                use[i] = 0;
                rc = TSR_OK;
            }
        }
    }
    /* Each folder that received a file, once, before the commit makes the files visible. */
    for (int i = 0; rc == TSR_OK && !s->no_sync && i < b->n_pend; i++) {
        if (!use[i]) {
            continue;
        }
        const char *slash = strrchr(b->pend[i].rel, '/');
        size_t dl = (size_t)(slash - b->pend[i].rel);
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) {
            seen = use[j] && strncmp(b->pend[j].rel, b->pend[i].rel, dl + 1) == 0 &&
                   strchr(b->pend[j].rel + dl + 1, '/') == NULL;
        }
        if (!seen) {
            char dir[4400];
            snprintf(dir, sizeof dir, "%s/%.*s", s->dir, (int)dl, b->pend[i].rel);
            if (fsync_dir(dir) != 0) {
                rc = io_err(err, errno, "cannot sync", dir);
            }
        }
    }
    if (rc == TSR_OK) {
        rc = store__exec(db, "COMMIT", err);
    }
    if (rc != TSR_OK) {
        store__exec(db, "ROLLBACK", NULL);
        for (int i = 0; i < b->n_pend; i++) {
            if (use[i]) {
                char full[4400];
                snprintf(full, sizeof full, "%s/%s", s->dir, b->pend[i].rel);
                unlink(full);
            }
        }
    }
    pthread_mutex_unlock(&s->pool.writer_mu);
    if (have_intent) {
        unlink(intent);
    }
    free(use);
    if (rc != TSR_OK) {
        drop_pending(b, rc == TSR_ENOSPACE ? 0xA700 : 0x0110,
                     rc == TSR_ENOSPACE ? "out of disk space" : "the index could not record it");
        return rc;
    }
    for (int i = 0; i < b->n_pend; i++) {
        unlink(b->pend[i].tmp); /* ALREADY and FAILED temporaries; renamed ones are gone */
        free(b->pend[i].json);
    }
    b->n_pend = 0;
    return TSR_OK;
}

const store_result *
store_batch_results(const store_batch *b, int *n)
{
    *n = b->n_results;
    return b->results;
}

uint64_t
store_batch_bytes(const store_batch *b)
{
    return b->total_bytes;
}

void
store_batch_free(store_batch *b)
{
    if (!b) {
        return;
    }
    if (b->fd >= 0) {
        close(b->fd);
        unlink(b->part_tmp);
    }
    for (int i = 0; i < b->n_pend; i++) {
        unlink(b->pend[i].tmp);
        free(b->pend[i].json);
    }
    free(b->pend);
    free(b->results);
    free(b);
}
