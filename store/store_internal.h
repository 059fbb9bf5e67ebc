/* SPDX-License-Identifier: MIT */
/* store_internal.h: cross-file internals of the study store (prefix store__). */
#ifndef TSR_STORE_INTERNAL_H
#define TSR_STORE_INTERNAL_H

#include "store.h"

#include <pthread.h>
#include <sqlite3.h>

#define STORE_SCHEMA_VERSION 1

/* A pool of read connections plus one write connection (SQLite allows one writer at a time; the
 * mutex keeps our own threads from queueing inside SQLite's busy handler). */
typedef struct store__pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sqlite3 **free_conns;
    int n_free, n_total;
    sqlite3 *writer;
    pthread_mutex_t writer_mu;
} store__pool;

struct store {
    char dir[4096];
    char tmp_dir[4200];
    uint64_t max_instance;
    int no_sync;
    store__pool pool;
    struct access__state *access; /* access.c */
};

/* index.c */
int store__index_open(store *s, int n_readers, tsr_err *err);
void store__index_close(store *s);
sqlite3 *store__reader(store *s);
void store__reader_put(store *s, sqlite3 *db);
int store__sql_err(sqlite3 *db, int rc, const char *what, tsr_err *err);
/* Runs one statement without results. */
int store__exec(sqlite3 *db, const char *sql, tsr_err *err);
/* A statement for the hot path, kept prepared on its connection: an idle one with the same SQL
 * is reset and reused, else a new one is prepared (SQLITE_PREPARE_PERSISTENT). Give it back
 * with store__stmt_done (which resets it), never sqlite3_finalize; store__index_close finalizes
 * them. Only for a few fixed SQL texts: the lookup walks the connection's statements. */
int store__stmt(sqlite3 *db, const char *sql, sqlite3_stmt **out, tsr_err *err);
void store__stmt_done(sqlite3_stmt *st);

/* Within a write transaction on `db`: the stored path and size of `sop`, or TSR_ENOTFOUND. */
int store__index_lookup(sqlite3 *db, const char *sop, char *relpath, size_t cap, uint64_t *size,
                        tsr_err *err);
/* Within a write transaction: records one instance (patient, study, series rows created or
 * reused). */
int store__index_insert(sqlite3 *db, const dcm_summary *sum, const char *json, size_t json_len,
                        const char *relpath, uint64_t size, tsr_err *err);
/* Whether any instance row has this relative path (intent recovery). */
int store__index_has_path(sqlite3 *db, const char *relpath);

/* query.c: the attributes QIDO knows, per level. */
typedef struct store__attr {
    uint32_t tag;
    const char *vr;
    store_level level;  /* the level the attribute belongs to */
    const char *column; /* SQL expression in the joined query (p, st, se, i aliases) */
    int time_norm;      /* TM matched on a normalised column */
    int computed;       /* not matchable through `column` directly */
} store__attr;
const store__attr *store__attr_find(uint32_t tag);

/* Normalises a DICOM TM ("HHMM", "HHMMSS.FFF", "HH:MM:SS") to "HHMMSS.FFFFFF", padding missing
 * parts with `pad_hi` ? maxima : zeros. Returns 0, or -1 when malformed. out: 14 bytes. */
int store__time_norm(const char *tm, int pad_hi, char out[14]);

#endif
