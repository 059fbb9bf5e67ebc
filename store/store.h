/* SPDX-License-Identifier: MIT */
/* store.h: the study store. Instance files live on a local disk under DIR, an SQLite index
 * (WAL) under DIR describes patients, studies, series and instances, and QIDO-RS queries and
 * WADO-RS metadata are answered from that index, never by re-reading files.
 *
 * This header is the narrow interface the rest of Tessera sees. The embedded default is SQLite
 * and the local disk; the planned scale-out (PostgreSQL for the index, shared storage for the
 * files) replaces store.c/index.c behind the same functions, so a node keeps no state of its own.
 *
 * Layout under DIR:
 *   index.sqlite (+ -wal, -shm)      the index; schema version in table `meta`
 *   objects/XX/YY/<SOPInstanceUID>   one file per instance, exactly the bytes received
 *   tmp/                             uploads in progress and commit intents; cleared at open
 *
 * Durability: an instance file is written to tmp/, synced, and renamed into objects/ inside the
 * index write transaction that records it; the transaction commits (synchronous=FULL) before the
 * caller acknowledges. A commit intent lists the renamed paths, so files renamed by a transaction
 * that never committed (process killed) are removed at the next open. A different file with an
 * existing SOP Instance UID is refused (first write wins); the same bytes again succeed. */
#ifndef TSR_STORE_H
#define TSR_STORE_H

#include "dcm_json.h"
#include "tsr_base.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct store store;

typedef struct store_opts {
    const char *dir;          /* required; created if missing */
    uint64_t max_instance;    /* bytes of one instance (0: 4 GiB) */
    int no_sync;              /* 1: skip fsync (benchmarks of the CPU path only; never default) */
    int read_connections;     /* SQLite read connections in the pool (0: 8) */
} store_opts;

/* Opens (creating when needed) the store under opts->dir: checks the index schema version and
 * integrity (quick_check), removes leftovers of interrupted uploads and uncommitted renames.
 * On success *out owns a handle (store_close). Thread-safe after open: every function below may
 * be called from many threads at once. */
int store_open(const store_opts *opts, store **out, tsr_err *err);
void store_close(store *s); /* NULL: no-op */
const char *store_dir(const store *s);

/* ---------------------------------------------------------------- ingest */

typedef enum store_result_kind {
    STORE_STORED = 0,  /* new instance stored and indexed */
    STORE_ALREADY,     /* the same bytes were already stored: success */
    STORE_FAILED,      /* refused; reason and message say why */
} store_result_kind;

/* One instance's outcome, as STOW-RS reports it. */
typedef struct store_result {
    store_result_kind kind;
    uint16_t reason;   /* FailureReason (0008,1197) when FAILED: 0xC000 cannot understand,
                          0xA900 data set does not match the request (study), 0x0111 duplicate
                          SOP instance with different content, 0xA700 out of resources,
                          0x0110 processing failure, 0xC122 transfer syntax not supported */
    char message[256];
    char sop_class_uid[65], sop_instance_uid[65], study_uid[65], series_uid[65];
    char name[128];    /* caller's label (file name, part number), for reports */
} store_result;

/* A batch of instances committed together: one index transaction and one sync for all its
 * files. Not thread-safe: one batch per thread; several batches may run at once. */
typedef struct store_batch store_batch;

/* Starts a batch. `required_study` (may be NULL) refuses instances of any other study (STOW-RS
 * to /studies/{study}). */
int store_batch_begin(store *s, const char *required_study, store_batch **out, tsr_err *err);

/* Streams one instance into the batch: begin, write any number of times, end. `name` labels the
 * result. store_part_end parses and validates the instance (structure, UIDs, that its pixel data
 * decodes) and appends its result to the batch; a refused instance does not stop the batch.
 * Returns TSR_OK when the instance was accepted into the batch or refused with a result, or a
 * negative code for a failure of the server itself (disk full: TSR_EIO, message says so). */
int store_part_begin(store_batch *b, const char *name, tsr_err *err);
int store_part_write(store_batch *b, const void *data, size_t len, tsr_err *err);
int store_part_end(store_batch *b, tsr_err *err);
/* Convenience for import: the whole file at `path` as one part. */
int store_part_file(store_batch *b, const char *path, tsr_err *err);

/* Commits: syncs the new files, renames them into place and records them in one transaction.
 * After TSR_OK every STORED result is durable. On failure nothing of the batch is visible and
 * every result that was STORED becomes FAILED (0xA700 / 0x0110). */
int store_batch_commit(store_batch *b, tsr_err *err);

/* Results so far (borrowed until store_batch_free), in part order. */
const store_result *store_batch_results(const store_batch *b, int *n);
uint64_t store_batch_bytes(const store_batch *b); /* bytes received so far */

/* Frees the batch; an uncommitted batch is rolled back (temporary files removed). */
void store_batch_free(store_batch *b);

/* ---------------------------------------------------------------- lookups */

/* Where an instance is. Paths are absolute, inside DIR. */
typedef struct store_instance {
    char sop_instance_uid[65], sop_class_uid[65], study_uid[65], series_uid[65];
    char transfer_syntax[65];
    char path[4096];
    uint64_t size;
    uint32_t frames, rows, columns;
    int instance_number;
    /* for burned-in annotations */
    char patient_name[325], patient_id[65], study_date[9], study_description[65], modality[17];
} store_instance;

/* Finds an instance. study/series may be NULL (not checked); when given they must match, else
 * TSR_ENOTFOUND, as for an unknown UID. */
int store_find_instance(store *s, const char *study, const char *series, const char *sop,
                        store_instance *out, tsr_err *err);

/* TSR_OK when the study (and, when not NULL, the series within it) exists, else TSR_ENOTFOUND
 * with a message naming it. */
int store_exists(store *s, const char *study, const char *series, tsr_err *err);

/* Calls `fn` for every instance of a study (series NULL) or series, ordered by series number,
 * instance number, then UID. Returns TSR_ENOTFOUND when the study/series does not exist, or the
 * first non-zero value `fn` returns. */
typedef int (*store_instance_fn)(void *user, const store_instance *inst);
int store_each_instance(store *s, const char *study, const char *series, store_instance_fn fn,
                        void *user, tsr_err *err);

/* Calls `fn` for up to `n` instances on each side of `inst` in its series (in the order of
 * store_each_instance), nearest first, alternating after/before. For prefetching. */
int store_neighbours(store *s, const store_instance *inst, int n, store_instance_fn fn,
                     void *user, tsr_err *err);

/* WADO-RS metadata: the instances' stored DICOM JSON objects, in the order above, each passed
 * to `fn` (borrowed for the call). study required; series and sop may be NULL. */
typedef int (*store_json_fn)(void *user, const char *json, size_t len);
int store_each_metadata(store *s, const char *study, const char *series, const char *sop,
                        store_json_fn fn, void *user, tsr_err *err);

/* ---------------------------------------------------------------- QIDO-RS */

typedef enum store_level { STORE_STUDY = 0, STORE_SERIES, STORE_INSTANCE } store_level;

typedef enum store_match_kind {
    STORE_M_SINGLE = 0, /* exact (PN: case-insensitive) */
    STORE_M_WILDCARD,   /* '*' and '?' */
    STORE_M_RANGE,      /* DA/TM/DT: lo-hi, -hi, lo- */
    STORE_M_LIST,       /* UID list or multi-valued CS: any of the values */
    STORE_M_UNIVERSAL,  /* empty value: matches everything, attribute returned */
} store_match_kind;

typedef struct store_match {
    uint32_t tag;
    store_match_kind kind;
    char *value;   /* SINGLE, WILDCARD */
    char *lo, *hi; /* RANGE; either may be "" for open-ended */
    char **list;   /* LIST */
    int n_list;
} store_match;

#define STORE_MAX_MATCH   32
#define STORE_MAX_INCLUDE 64

typedef struct store_query {
    store_level level;
    char study[65], series[65]; /* scope from the URL path ("" = none) */
    store_match match[STORE_MAX_MATCH];
    int n_match;
    uint32_t include[STORE_MAX_INCLUDE];
    int n_include;
    int include_all;
    int fuzzy;
    long limit;  /* -1: none given */
    long offset;
    char warning[512]; /* set by parse and execute: what was ignored, for `Warning: 299` */
} store_query;

/* Parses a QIDO-RS query string (the part after '?', percent-encoded) for `level`. Known keys:
 * attribute keywords or tags (matching), includefield, limit, offset, fuzzymatching. Unknown
 * matching attributes are accepted and named in q->warning (they are ignored at execution).
 * Returns TSR_EINVAL with a message for malformed input. On success the caller owns *q's
 * strings: free with store_query_free. */
int store_query_parse(store_level level, const char *query_string, store_query *q, tsr_err *err);
void store_query_free(store_query *q);

/* Runs the query. On success *json_out (caller frees with free()) holds the JSON array of
 * results, *remaining how many more matches exist after this page (for `Warning: 299`), and
 * q->warning what was ignored. `base_url` prefixes RetrieveURL values ("http://host/dicomweb").
 * `max_results` caps a page when q->limit is absent or larger. */
int store_query_run(store *s, store_query *q, const char *base_url, long max_results,
                    char **json_out, size_t *json_len, long *remaining, tsr_err *err);

/* Counts, for status pages and tests. */
int store_counts(store *s, long *studies, long *series, long *instances, tsr_err *err);

#ifdef __cplusplus
}
#endif

#endif
