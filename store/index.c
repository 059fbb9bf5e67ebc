/* SPDX-License-Identifier: MIT */
/* index.c: the SQLite index (WAL): schema, connection pool, inserts and lookups.
 *
 * One row per patient, study, series and instance. Each instance row keeps the columns QIDO
 * matches on, the geometry MPR needs, where the file is, and the instance's DICOM JSON, so that
 * WADO-RS metadata is a range scan that concatenates stored text. */
#include "store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char k_schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS patients("
    " pk INTEGER PRIMARY KEY, patient_id TEXT NOT NULL, issuer TEXT NOT NULL,"
    " name TEXT NOT NULL, birth_date TEXT NOT NULL, sex TEXT NOT NULL,"
    " UNIQUE(patient_id, issuer));"
    "CREATE TABLE IF NOT EXISTS studies("
    " pk INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, patient_pk INTEGER NOT NULL,"
    " date TEXT NOT NULL, time TEXT NOT NULL, time_n TEXT NOT NULL, accession TEXT NOT NULL,"
    " referring TEXT NOT NULL, study_id TEXT NOT NULL, description TEXT NOT NULL,"
    " tz TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS studies_patient ON studies(patient_pk);"
    "CREATE INDEX IF NOT EXISTS studies_date ON studies(date, time_n);"
    "CREATE INDEX IF NOT EXISTS studies_accession ON studies(accession);"
    "CREATE INDEX IF NOT EXISTS patients_name ON patients(name COLLATE NOCASE);"
    "CREATE TABLE IF NOT EXISTS series("
    " pk INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, study_pk INTEGER NOT NULL,"
    " modality TEXT NOT NULL, number INTEGER, description TEXT NOT NULL,"
    " body_part TEXT NOT NULL, pps_date TEXT NOT NULL, pps_time TEXT NOT NULL,"
    " pps_time_n TEXT NOT NULL, frame_of_reference TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS series_study ON series(study_pk, number);"
    "CREATE INDEX IF NOT EXISTS series_modality ON series(modality, study_pk);"
    "CREATE TABLE IF NOT EXISTS instances("
    " pk INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, series_pk INTEGER NOT NULL,"
    " sop_class TEXT NOT NULL, number INTEGER, transfer_syntax TEXT NOT NULL,"
    " rows INTEGER NOT NULL, columns INTEGER NOT NULL, frames INTEGER NOT NULL,"
    " bits_allocated INTEGER NOT NULL, photometric TEXT NOT NULL,"
    " position TEXT, orientation TEXT, pixel_spacing TEXT, slice_thickness REAL,"
    " path TEXT NOT NULL, size INTEGER NOT NULL, meta TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS instances_series ON instances(series_pk, number);"
    "CREATE INDEX IF NOT EXISTS instances_path ON instances(path);";

int
store__sql_err(sqlite3 *db, int rc, const char *what, tsr_err *err)
{
    int code = TSR_EIO;
    if (rc == SQLITE_FULL) {
        code = TSR_ENOSPACE;
    } else if (rc == SQLITE_NOMEM) {
        code = TSR_ENOMEM;
    } else if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) {
        code = TSR_ECORRUPT;
    }
    return tsr_err_set(err, code, "index: %s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

int
store__exec(sqlite3 *db, const char *sql, tsr_err *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        tsr_err_set(err, rc == SQLITE_FULL ? TSR_ENOSPACE : TSR_EIO, "index: %s",
                    msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return err ? err->code : TSR_EIO;
    }
    return TSR_OK;
}

int
store__stmt(sqlite3 *db, const char *sql, sqlite3_stmt **out, tsr_err *err)
{
    for (sqlite3_stmt *st = sqlite3_next_stmt(db, NULL); st; st = sqlite3_next_stmt(db, st)) {
        const char *text = sqlite3_sql(st);
        if (!sqlite3_stmt_busy(st) && text && strcmp(text, sql) == 0) {
            sqlite3_clear_bindings(st);
            *out = st;
            return TSR_OK;
        }
    }
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    return rc == SQLITE_OK ? TSR_OK : store__sql_err(db, rc, "prepare", err);
}

void
store__stmt_done(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
    }
}

/* Closes a connection and the statements store__stmt kept on it. */
static void
disconnect(sqlite3 *db)
{
    sqlite3_stmt *st;
    while ((st = sqlite3_next_stmt(db, NULL)) != NULL) {
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
}

static int
connect(const char *path, int readonly, sqlite3 **out, tsr_err *err)
{
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_NOMUTEX |
                (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        store__sql_err(db, rc, "open", err);
        sqlite3_close(db);
        return err ? err->code : TSR_EIO;
    }
    sqlite3_busy_timeout(db, 30000);
    sqlite3_extended_result_codes(db, 0);
    *out = db;
    return TSR_OK;
}

/* Schema check: a new file gets the schema; an existing one must carry our version and pass
 * quick_check, so a damaged index is named at start rather than failing requests later. */
static int
check_schema(sqlite3 *db, const char *path, tsr_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return tsr_err_set(err, TSR_ECORRUPT,
                           "index %s is not a readable SQLite database (%s); move it away and "
                           "re-import the objects/ folder",
                           path, sqlite3_errmsg(db));
    }
    rc = sqlite3_step(st);
    const char *res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    int ok = res && strcmp(res, "ok") == 0;
    char what[128];
    snprintf(what, sizeof what, "%s", res ? res : sqlite3_errmsg(db));
    sqlite3_finalize(st);
    if (!ok) {
        return tsr_err_set(err, TSR_ECORRUPT, "index %s is damaged (%s)", path, what);
    }
    if (store__exec(db, "PRAGMA journal_mode=WAL", err) != TSR_OK ||
        store__exec(db, "BEGIN IMMEDIATE", err) != TSR_OK) {
        return err ? err->code : TSR_EIO;
    }
    int version = 0;
    rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema_version'", -1, &st,
                            NULL);
    if (rc == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            version = atoi((const char *)sqlite3_column_text(st, 0));
        }
        sqlite3_finalize(st);
    }
    if (version != 0 && version != STORE_SCHEMA_VERSION) {
        store__exec(db, "ROLLBACK", NULL);
        return tsr_err_set(err, TSR_EUNSUPP,
                           "index %s has schema version %d; this tessera reads version %d", path,
                           version, STORE_SCHEMA_VERSION);
    }
    if (version == 0) {
        char sql[128];
        snprintf(sql, sizeof sql,
                 "INSERT OR REPLACE INTO meta VALUES('schema_version','%d')",
                 STORE_SCHEMA_VERSION);
        if (store__exec(db, k_schema, err) != TSR_OK || store__exec(db, sql, err) != TSR_OK) {
            store__exec(db, "ROLLBACK", NULL);
            return err ? err->code : TSR_EIO;
        }
    }
    return store__exec(db, "COMMIT", err);
}

int
store__index_open(store *s, int n_readers, tsr_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/index.sqlite", s->dir);
    store__pool *p = &s->pool;
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_mutex_init(&p->writer_mu, NULL);

    int rc = connect(path, 0, &p->writer, err);
    if (rc == TSR_OK) {
        rc = check_schema(p->writer, path, err);
    }
    if (rc == TSR_OK) {
        /* FULL: a commit is on disk when it returns, so an acknowledged upload survives power
         * loss, not only a killed process. */
        rc = store__exec(p->writer, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;", err);
    }
    if (rc == TSR_OK) {
        /* planner statistics: without them SQLite guesses join orders for QIDO counts */
        sqlite3_stmt *st = NULL;
        int have = sqlite3_prepare_v2(p->writer, "SELECT 1 FROM sqlite_stat1 LIMIT 1", -1, &st,
                                      NULL) == SQLITE_OK &&
                   sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        store__exec(p->writer, have ? "PRAGMA optimize" : "ANALYZE", NULL);
    }
    if (rc == TSR_OK) {
        p->free_conns = calloc((size_t)n_readers, sizeof *p->free_conns);
        if (!p->free_conns) {
            rc = tsr_err_set(err, TSR_ENOMEM, "index: out of memory");
        }
    }
    for (int i = 0; rc == TSR_OK && i < n_readers; i++) {
        rc = connect(path, 1, &p->free_conns[i], err);
        if (rc == TSR_OK) {
            p->n_free = p->n_total = i + 1;
            store__exec(p->free_conns[i], "PRAGMA query_only=1", NULL);
        }
    }
    if (rc != TSR_OK) {
        store__index_close(s);
    }
    return rc;
}

void
store__index_close(store *s)
{
    store__pool *p = &s->pool;
    for (int i = 0; i < p->n_free; i++) {
        disconnect(p->free_conns[i]);
    }
    free(p->free_conns);
    p->free_conns = NULL;
    p->n_free = p->n_total = 0;
    if (p->writer) {
        disconnect(p->writer);
        p->writer = NULL;
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->writer_mu);
}

sqlite3 *
store__reader(store *s)
{
    store__pool *p = &s->pool;
    pthread_mutex_lock(&p->mu);
    while (p->n_free == 0) {
        pthread_cond_wait(&p->cv, &p->mu);
    }
    sqlite3 *db = p->free_conns[--p->n_free];
    pthread_mutex_unlock(&p->mu);
    return db;
}

void
store__reader_put(store *s, sqlite3 *db)
{
    store__pool *p = &s->pool;
    pthread_mutex_lock(&p->mu);
    p->free_conns[p->n_free++] = db;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* ---------------------------------------------------------------- writes */

static void
bind_text(sqlite3_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

/* Runs `sql` with the text parameters in `vals` (n of them) and returns the single integer it
 * selects, or 0 when there is no row, or -1 on error. */
static int64_t
select_pk(sqlite3 *db, const char *sql, const char *const *vals, int n, tsr_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        store__sql_err(db, rc, "prepare", err);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        bind_text(st, i + 1, vals[i]);
    }
    rc = sqlite3_step(st);
    int64_t pk = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        store__sql_err(db, rc, "select", err);
        pk = -1;
    }
    sqlite3_finalize(st);
    return pk;
}

static int
step_done(sqlite3 *db, sqlite3_stmt *st, const char *what, tsr_err *err)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? TSR_OK : store__sql_err(db, rc, what, err);
}

static int
prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, tsr_err *err)
{
    int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? TSR_OK : store__sql_err(db, rc, "prepare", err);
}

static void
format_doubles(char *out, size_t cap, const double *v, int n)
{
    size_t at = 0;
    out[0] = '\0';
    for (int i = 0; i < n && at < cap; i++) {
        at += (size_t)snprintf(out + at, cap - at, i ? "\\%.17g" : "%.17g", v[i]);
    }
}

static int64_t
ensure_patient(sqlite3 *db, const dcm_summary *m, tsr_err *err)
{
    const char *key[2] = {m->patient_id, m->issuer_of_patient_id};
    int64_t pk = select_pk(db, "SELECT pk FROM patients WHERE patient_id=?1 AND issuer=?2", key,
                           2, err);
    if (pk != 0) {
        return pk;
    }
    sqlite3_stmt *st;
    if (prepare(db, "INSERT INTO patients(patient_id,issuer,name,birth_date,sex) "
                    "VALUES(?1,?2,?3,?4,?5)",
                &st, err) != TSR_OK) {
        return -1;
    }
    bind_text(st, 1, m->patient_id);
    bind_text(st, 2, m->issuer_of_patient_id);
    bind_text(st, 3, m->patient_name);
    bind_text(st, 4, m->patient_birth_date);
    bind_text(st, 5, m->patient_sex);
    return step_done(db, st, "insert patient", err) == TSR_OK ? sqlite3_last_insert_rowid(db)
                                                              : -1;
}

static int64_t
ensure_study(sqlite3 *db, const dcm_summary *m, tsr_err *err)
{
    const char *key[1] = {m->study_uid};
    int64_t pk = select_pk(db, "SELECT pk FROM studies WHERE uid=?1", key, 1, err);
    if (pk != 0) {
        return pk;
    }
    int64_t patient = ensure_patient(db, m, err);
    if (patient < 0) {
        return -1;
    }
    char tn[14] = "";
    store__time_norm(m->study_time, 0, tn);
    sqlite3_stmt *st;
    if (prepare(db, "INSERT INTO studies(uid,patient_pk,date,time,time_n,accession,referring,"
                    "study_id,description,tz) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                &st, err) != TSR_OK) {
        return -1;
    }
    bind_text(st, 1, m->study_uid);
    sqlite3_bind_int64(st, 2, patient);
    bind_text(st, 3, m->study_date);
    bind_text(st, 4, m->study_time);
    bind_text(st, 5, tn);
    bind_text(st, 6, m->accession_number);
    bind_text(st, 7, m->referring_physician);
    bind_text(st, 8, m->study_id);
    bind_text(st, 9, m->study_description);
    bind_text(st, 10, m->timezone_offset);
    return step_done(db, st, "insert study", err) == TSR_OK ? sqlite3_last_insert_rowid(db) : -1;
}

static int64_t
ensure_series(sqlite3 *db, const dcm_summary *m, int64_t study, tsr_err *err)
{
    const char *key[1] = {m->series_uid};
    int64_t pk = select_pk(db, "SELECT pk FROM series WHERE uid=?1", key, 1, err);
    if (pk != 0) {
        return pk;
    }
    char tn[14] = "";
    store__time_norm(m->pps_start_time, 0, tn);
    sqlite3_stmt *st;
    if (prepare(db, "INSERT INTO series(uid,study_pk,modality,number,description,body_part,"
                    "pps_date,pps_time,pps_time_n,frame_of_reference) "
                    "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
                &st, err) != TSR_OK) {
        return -1;
    }
    bind_text(st, 1, m->series_uid);
    sqlite3_bind_int64(st, 2, study);
    bind_text(st, 3, m->modality);
    if (m->has_series_number) {
        sqlite3_bind_int(st, 4, m->series_number);
    }
    bind_text(st, 5, m->series_description);
    bind_text(st, 6, m->body_part);
    bind_text(st, 7, m->pps_start_date);
    bind_text(st, 8, m->pps_start_time);
    bind_text(st, 9, tn);
    bind_text(st, 10, m->frame_of_reference_uid);
    return step_done(db, st, "insert series", err) == TSR_OK ? sqlite3_last_insert_rowid(db) : -1;
}

int
store__index_insert(sqlite3 *db, const dcm_summary *m, const char *json, size_t json_len,
                    const char *relpath, uint64_t size, tsr_err *err)
{
    /* A series that appears under another study would silently merge two studies; checked
     * before anything is written, so a refused instance leaves no study or patient row. */
    const char *key[2] = {m->series_uid, m->study_uid};
    int64_t other = select_pk(db,
                              "SELECT se.pk FROM series se JOIN studies st ON se.study_pk=st.pk "
                              "WHERE se.uid=?1 AND st.uid<>?2",
                              key, 2, err);
    if (other != 0) {
        return other < 0 ? (err ? err->code : TSR_EIO)
                         : tsr_err_set(err, TSR_EINVAL,
                                       "series %s already belongs to another study",
                                       m->series_uid);
    }
    int64_t study = ensure_study(db, m, err);
    if (study < 0) {
        return err ? err->code : TSR_EIO;
    }
    int64_t series = ensure_series(db, m, study, err);
    if (series < 0) {
        return err ? err->code : TSR_EIO;
    }
    sqlite3_stmt *st;
    if (prepare(db, "INSERT INTO instances(uid,series_pk,sop_class,number,transfer_syntax,rows,"
                    "columns,frames,bits_allocated,photometric,position,orientation,"
                    "pixel_spacing,slice_thickness,path,size,meta) "
                    "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)",
                &st, err) != TSR_OK) {
        return err ? err->code : TSR_EIO;
    }
    char buf[160];
    bind_text(st, 1, m->sop_instance_uid);
    sqlite3_bind_int64(st, 2, series);
    bind_text(st, 3, m->sop_class_uid);
    if (m->has_instance_number) {
        sqlite3_bind_int(st, 4, m->instance_number);
    }
    bind_text(st, 5, m->transfer_syntax);
    sqlite3_bind_int64(st, 6, m->rows);
    sqlite3_bind_int64(st, 7, m->columns);
    sqlite3_bind_int64(st, 8, m->frames);
    sqlite3_bind_int(st, 9, m->bits_allocated);
    bind_text(st, 10, m->photometric);
    if (m->has_position) {
        format_doubles(buf, sizeof buf, m->position, 3);
        bind_text(st, 11, buf);
    }
    if (m->has_orientation) {
        format_doubles(buf, sizeof buf, m->orientation, 6);
        bind_text(st, 12, buf);
    }
    if (m->has_pixel_spacing) {
        format_doubles(buf, sizeof buf, m->pixel_spacing, 2);
        bind_text(st, 13, buf);
    }
    if (m->has_slice_thickness) {
        sqlite3_bind_double(st, 14, m->slice_thickness);
    }
    bind_text(st, 15, relpath);
    sqlite3_bind_int64(st, 16, (sqlite3_int64)size);
    sqlite3_bind_text(st, 17, json, (int)json_len, SQLITE_STATIC);
    return step_done(db, st, "insert instance", err);
}

int
store__index_lookup(sqlite3 *db, const char *sop, char *relpath, size_t cap, uint64_t *size,
                    tsr_err *err)
{
    sqlite3_stmt *st;
    if (prepare(db, "SELECT path,size FROM instances WHERE uid=?1", &st, err) != TSR_OK) {
        return err ? err->code : TSR_EIO;
    }
    bind_text(st, 1, sop);
    int rc = sqlite3_step(st);
    int ret = TSR_ENOTFOUND;
    if (rc == SQLITE_ROW) {
        snprintf(relpath, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        *size = (uint64_t)sqlite3_column_int64(st, 1);
        ret = TSR_OK;
    } else if (rc != SQLITE_DONE) {
        ret = store__sql_err(db, rc, "lookup", err);
    }
    sqlite3_finalize(st);
    return ret;
}

int
store__index_has_path(sqlite3 *db, const char *relpath)
{
    const char *key[1] = {relpath};
    return select_pk(db, "SELECT 1 FROM instances WHERE path=?1", key, 1, NULL) != 0;
}

/* ---------------------------------------------------------------- reads */

static void
fill_instance(store *s, sqlite3_stmt *st, store_instance *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->sop_instance_uid, sizeof o->sop_instance_uid, "%s", sqlite3_column_text(st, 0));
    snprintf(o->sop_class_uid, sizeof o->sop_class_uid, "%s", sqlite3_column_text(st, 1));
    snprintf(o->study_uid, sizeof o->study_uid, "%s", sqlite3_column_text(st, 2));
    snprintf(o->series_uid, sizeof o->series_uid, "%s", sqlite3_column_text(st, 3));
    snprintf(o->transfer_syntax, sizeof o->transfer_syntax, "%s", sqlite3_column_text(st, 4));
    snprintf(o->path, sizeof o->path, "%.2000s/%.2000s", s->dir, sqlite3_column_text(st, 5));
    o->size = (uint64_t)sqlite3_column_int64(st, 6);
    o->frames = (uint32_t)sqlite3_column_int64(st, 7);
    o->rows = (uint32_t)sqlite3_column_int64(st, 8);
    o->columns = (uint32_t)sqlite3_column_int64(st, 9);
    o->instance_number = sqlite3_column_int(st, 10);
    snprintf(o->patient_name, sizeof o->patient_name, "%s", sqlite3_column_text(st, 11));
    snprintf(o->patient_id, sizeof o->patient_id, "%s", sqlite3_column_text(st, 12));
    snprintf(o->study_date, sizeof o->study_date, "%s", sqlite3_column_text(st, 13));
    snprintf(o->study_description, sizeof o->study_description, "%s", sqlite3_column_text(st, 14));
    snprintf(o->modality, sizeof o->modality, "%s", sqlite3_column_text(st, 15));
}

#define INSTANCE_COLUMNS                                                                           \
    "i.uid, i.sop_class, st.uid, se.uid, i.transfer_syntax, i.path, i.size, i.frames, i.rows, "   \
    "i.columns, i.number, p.name, p.patient_id, st.date, st.description, se.modality"
#define INSTANCE_JOIN                                                                              \
    " FROM instances i JOIN series se ON i.series_pk=se.pk JOIN studies st ON se.study_pk=st.pk "  \
    "JOIN patients p ON st.patient_pk=p.pk "
#define INSTANCE_ORDER " ORDER BY se.number, se.uid, i.number, i.uid"

int
store_find_instance(store *s, const char *study, const char *series, const char *sop,
                    store_instance *out, tsr_err *err)
{
    sqlite3 *db = store__reader(s);
    sqlite3_stmt *st;
    int ret = prepare(db,
                      "SELECT " INSTANCE_COLUMNS INSTANCE_JOIN
                      "WHERE i.uid=?1 AND (?2 IS NULL OR st.uid=?2) AND (?3 IS NULL OR se.uid=?3)",
                      &st, err);
    if (ret == TSR_OK) {
        bind_text(st, 1, sop);
        bind_text(st, 2, study);
        bind_text(st, 3, series);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            fill_instance(s, st, out);
        } else if (rc == SQLITE_DONE) {
            ret = tsr_err_set(err, TSR_ENOTFOUND, "no instance %s%s%s%s%s", sop,
                              series ? " in series " : "", series ? series : "",
                              study ? " of study " : "", study ? study : "");
        } else {
            ret = store__sql_err(db, rc, "find instance", err);
        }
        sqlite3_finalize(st);
    }
    store__reader_put(s, db);
    return ret;
}

/* Whether the study (and series) exist, so that an empty result can be told from a 404. */
static int
scope_exists(sqlite3 *db, const char *study, const char *series, tsr_err *err)
{
    const char *key[2] = {study, series};
    int64_t pk = series ? select_pk(db,
                                    "SELECT se.pk FROM series se JOIN studies st ON "
                                    "se.study_pk=st.pk WHERE st.uid=?1 AND se.uid=?2",
                                    key, 2, err)
                        : select_pk(db, "SELECT pk FROM studies WHERE uid=?1", key, 1, err);
    if (pk < 0) {
        return err ? err->code : TSR_EIO;
    }
    if (pk == 0) {
        return series ? tsr_err_set(err, TSR_ENOTFOUND, "no series %s in study %s", series, study)
                      : tsr_err_set(err, TSR_ENOTFOUND, "no study %s", study);
    }
    return TSR_OK;
}

int
store_exists(store *s, const char *study, const char *series, tsr_err *err)
{
    sqlite3 *db = store__reader(s);
    int rc = scope_exists(db, study, series, err);
    store__reader_put(s, db);
    return rc;
}

int
store_each_instance(store *s, const char *study, const char *series, store_instance_fn fn,
                    void *user, tsr_err *err)
{
    sqlite3 *db = store__reader(s);
    int ret = scope_exists(db, study, series, err);
    sqlite3_stmt *st = NULL;
    if (ret == TSR_OK) {
        ret = prepare(db,
                      "SELECT " INSTANCE_COLUMNS INSTANCE_JOIN
                      "WHERE st.uid=?1 AND (?2 IS NULL OR se.uid=?2)" INSTANCE_ORDER,
                      &st, err);
    }
    if (ret == TSR_OK) {
        bind_text(st, 1, study);
        bind_text(st, 2, series);
        store_instance inst;
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            fill_instance(s, st, &inst);
            if ((ret = fn(user, &inst)) != 0) {
                break;
            }
        }
        if (ret == 0 && rc != SQLITE_DONE) {
            ret = store__sql_err(db, rc, "list instances", err);
        }
        sqlite3_finalize(st);
    }
    store__reader_put(s, db);
    return ret;
}

int
store_neighbours(store *s, const store_instance *inst, int n, store_instance_fn fn, void *user,
                 tsr_err *err)
{
    /* Two short index walks from the instance's place in (number, uid) order: before it,
     * nearest first, and after it. Instances without a number sort first, as in listings. */
    static const char *const sql[2] = {
        "SELECT " INSTANCE_COLUMNS INSTANCE_JOIN
        "WHERE i.series_pk=(SELECT series_pk FROM instances WHERE uid=?1) AND "
        "(ifnull(i.number,-2147483649), i.uid) < (ifnull(?2,-2147483649), ?1) "
        "ORDER BY ifnull(i.number,-2147483649) DESC, i.uid DESC LIMIT ?3",
        "SELECT " INSTANCE_COLUMNS INSTANCE_JOIN
        "WHERE i.series_pk=(SELECT series_pk FROM instances WHERE uid=?1) AND "
        "(ifnull(i.number,-2147483649), i.uid) > (ifnull(?2,-2147483649), ?1) "
        "ORDER BY ifnull(i.number,-2147483649), i.uid LIMIT ?3"};
    sqlite3 *db = store__reader(s);
    int ret = TSR_OK;
    /* nearest first, alternating sides */
    store_instance *side[2] = {calloc((size_t)n, sizeof(store_instance)),
                               calloc((size_t)n, sizeof(store_instance))};
    int count[2] = {0, 0};
    for (int k = 0; k < 2 && ret == TSR_OK && side[0] && side[1]; k++) {
        sqlite3_stmt *st;
        ret = prepare(db, sql[k], &st, err);
        if (ret != TSR_OK) {
            break;
        }
        bind_text(st, 1, inst->sop_instance_uid);
        sqlite3_bind_int(st, 2, inst->instance_number);
        sqlite3_bind_int(st, 3, n);
        while (count[k] < n && sqlite3_step(st) == SQLITE_ROW) {
            fill_instance(s, st, &side[k][count[k]++]);
        }
        sqlite3_finalize(st);
    }
    store__reader_put(s, db);
    if (!side[0] || !side[1]) {
        ret = tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    for (int i = 0; ret == TSR_OK && i < n; i++) {
        for (int k = 1; k >= 0 && ret == TSR_OK; k--) {
            if (i < count[k]) {
                ret = fn(user, &side[k][i]);
            }
        }
    }
    free(side[0]);
    free(side[1]);
    return ret;
}

int
store_each_metadata(store *s, const char *study, const char *series, const char *sop,
                    store_json_fn fn, void *user, tsr_err *err)
{
    sqlite3 *db = store__reader(s);
    int ret = sop ? TSR_OK : scope_exists(db, study, series, err);
    sqlite3_stmt *st = NULL;
    if (ret == TSR_OK) {
        ret = prepare(db,
                      "SELECT i.meta" INSTANCE_JOIN
                      "WHERE st.uid=?1 AND (?2 IS NULL OR se.uid=?2) AND "
                      "(?3 IS NULL OR i.uid=?3)" INSTANCE_ORDER,
                      &st, err);
    }
    if (ret == TSR_OK) {
        bind_text(st, 1, study);
        bind_text(st, 2, series);
        bind_text(st, 3, sop);
        int rc, n = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            n++;
            const char *j = (const char *)sqlite3_column_text(st, 0);
            if ((ret = fn(user, j, (size_t)sqlite3_column_bytes(st, 0))) != 0) {
                break;
            }
        }
        if (ret == 0 && rc != SQLITE_DONE) {
            ret = store__sql_err(db, rc, "metadata", err);
        } else if (ret == 0 && n == 0) {
            ret = tsr_err_set(err, TSR_ENOTFOUND, "no instance %s", sop ? sop : "");
        }
        sqlite3_finalize(st);
    }
    store__reader_put(s, db);
    return ret;
}

int
store_counts(store *s, long *studies, long *series, long *instances, tsr_err *err)
{
    sqlite3 *db = store__reader(s);
    const char *sql[3] = {"SELECT COUNT(*) FROM studies", "SELECT COUNT(*) FROM series",
                          "SELECT COUNT(*) FROM instances"};
    long *out[3] = {studies, series, instances};
    int ret = TSR_OK;
    for (int i = 0; i < 3 && ret == TSR_OK; i++) {
        int64_t n = select_pk(db, sql[i], NULL, 0, err);
        if (n < 0) {
            ret = err ? err->code : TSR_EIO;
        } else if (out[i]) {
            *out[i] = (long)n;
        }
    }
    store__reader_put(s, db);
    return ret;
}
