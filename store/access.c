/* SPDX-License-Identifier: MIT */
/* access.c: users, sessions, API tokens, share links and the audit log in the index database
 * (see access.h). Every check reads the database, so a revocation or a lock made through one
 * node is seen by all on their next request. */
#define _GNU_SOURCE
#include "access.h"
#include "store_internal.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char k_access_schema[] =
    "CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY, role TEXT NOT NULL,"
    " pwhash TEXT NOT NULL, created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS login_failures(name TEXT PRIMARY KEY,"
    " failures INTEGER NOT NULL, locked_until INTEGER NOT NULL, updated INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS sessions(hash BLOB PRIMARY KEY, kind TEXT NOT NULL,"
    " subject TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS sessions_subject ON sessions(kind, subject);"
    "CREATE TABLE IF NOT EXISTS tokens(id TEXT PRIMARY KEY, hash BLOB NOT NULL UNIQUE,"
    " name TEXT NOT NULL, scope TEXT NOT NULL, created_by TEXT NOT NULL,"
    " created INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS shares(id TEXT PRIMARY KEY, hash BLOB NOT NULL UNIQUE,"
    " study TEXT NOT NULL, series TEXT NOT NULL, download INTEGER NOT NULL,"
    " pin_hash TEXT NOT NULL, max_opens INTEGER NOT NULL, opens INTEGER NOT NULL DEFAULT 0,"
    " pin_failures INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL,"
    " created_by TEXT NOT NULL, expires INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS shares_study ON shares(study, created);"
    "CREATE TABLE IF NOT EXISTS audit(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " time_ms INTEGER NOT NULL, actor TEXT NOT NULL, client TEXT NOT NULL,"
    " action TEXT NOT NULL, target TEXT NOT NULL, status INTEGER NOT NULL);"
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;";

/* Argon2id costs libsodium calls "interactive": about 64 MiB and 0.1 s per hash. At most two
 * hashes run at once, so a burst of logins cannot take gigabytes. */
#define PWHASH_SLOTS 2

typedef struct audit_queue {
    access_audit_row *rows;
    size_t n, cap;
} audit_queue;

struct access__state {
    pthread_mutex_t mu;
    pthread_cond_t cv, slot_cv;
    int slots;
    audit_queue q;
    int stop;
    int have_thread;
    pthread_t thread;
    pthread_mutex_t dummy_mu;
    char dummy_hash[crypto_pwhash_STRBYTES];
};

/* ---------------------------------------------------------------- names */

const char *
access_role_name(access_role r)
{
    switch (r) {
    case ACCESS_ADMIN: return "admin";
    case ACCESS_WRITER: return "write";
    case ACCESS_READER: return "reader";
    default: return "none";
    }
}

access_role
access_role_parse(const char *s)
{
    if (!s) {
        return ACCESS_NONE;
    }
    if (strcmp(s, "admin") == 0) {
        return ACCESS_ADMIN;
    }
    if (strcmp(s, "write") == 0) {
        return ACCESS_WRITER;
    }
    if (strcmp(s, "reader") == 0 || strcmp(s, "read") == 0) {
        return ACCESS_READER;
    }
    return ACCESS_NONE;
}

const char *
access_share_state_name(access_share_state st)
{
    switch (st) {
    case ACCESS_SHARE_ACTIVE: return "active";
    case ACCESS_SHARE_EXPIRED: return "expired";
    case ACCESS_SHARE_REVOKED: return "revoked";
    case ACCESS_SHARE_USED_UP: return "used up";
    case ACCESS_SHARE_LOCKED: return "locked";
    }
    return "unknown";
}

int
access_user_valid_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 64) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("._@-", c))) {
            return 0;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------- secrets */

static void
new_token(char out[ACCESS_TOKEN_LEN + 1], uint8_t hash[32])
{
    uint8_t raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(out, ACCESS_TOKEN_LEN + 1, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    access_token_hash(out, hash);
}

static void
new_id(char out[ACCESS_ID_LEN + 1])
{
    uint8_t raw[ACCESS_ID_LEN / 2];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(out, ACCESS_ID_LEN + 1, raw, sizeof raw);
}

void
access_random_secret(char out[ACCESS_TOKEN_LEN + 1])
{
    uint8_t h[32];
    new_token(out, h);
}

void
access_token_hash(const char *token, uint8_t out[32])
{
    static const uint8_t domain[] = "tessera token v1";
    crypto_generichash(out, 32, (const uint8_t *)token, strlen(token), domain, sizeof domain - 1);
}

static void
slot_take(struct access__state *a)
{
    pthread_mutex_lock(&a->mu);
    while (a->slots == 0) {
        pthread_cond_wait(&a->slot_cv, &a->mu);
    }
    a->slots--;
    pthread_mutex_unlock(&a->mu);
}

static void
slot_give(struct access__state *a)
{
    pthread_mutex_lock(&a->mu);
    a->slots++;
    pthread_cond_signal(&a->slot_cv);
    pthread_mutex_unlock(&a->mu);
}

static int
pw_hash(store *s, const char *secret, char out[crypto_pwhash_STRBYTES], tsr_err *err)
{
    slot_take(s->access);
    int rc = crypto_pwhash_str(out, secret, strlen(secret), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                               crypto_pwhash_MEMLIMIT_INTERACTIVE);
    slot_give(s->access);
    return rc == 0 ? TSR_OK : tsr_err_set(err, TSR_ENOMEM, "out of memory hashing a secret");
}

static int
pw_verify(store *s, const char *hash, const char *secret)
{
    slot_take(s->access);
    int ok = crypto_pwhash_str_verify(hash, secret, strlen(secret)) == 0;
    slot_give(s->access);
    return ok;
}

/* ---------------------------------------------------------------- SQL helpers */

static int
prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, tsr_err *err)
{
    int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? TSR_OK : store__sql_err(db, rc, "prepare", err);
}

static void
copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", v ? (const char *)v : "");
}

/* The write connection, locked, inside BEGIN IMMEDIATE. */
static sqlite3 *
write_begin(store *s, tsr_err *err)
{
    pthread_mutex_lock(&s->pool.writer_mu);
    if (store__exec(s->pool.writer, "BEGIN IMMEDIATE", err) != TSR_OK) {
        pthread_mutex_unlock(&s->pool.writer_mu);
        return NULL;
    }
    return s->pool.writer;
}

static int
write_end(store *s, int rc, tsr_err *err)
{
    if (rc == TSR_OK) {
        rc = store__exec(s->pool.writer, "COMMIT", err);
    }
    if (rc != TSR_OK) {
        store__exec(s->pool.writer, "ROLLBACK", NULL);
    }
    pthread_mutex_unlock(&s->pool.writer_mu);
    return rc;
}

/* One statement with bound values: 't' text, 'i' int64, 'b' 32-byte blob. Returns TSR_OK, or
 * TSR_ENOTFOUND when it changed no row and `need_change`. */
static int
run(sqlite3 *db, const char *sql, int need_change, tsr_err *err, const char *types, ...)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db, sql, &st, err);
    if (rc != TSR_OK) {
        return rc;
    }
    va_list ap;
    va_start(ap, types);
    for (int i = 0; types[i]; i++) {
        if (types[i] == 't') {
            sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        } else if (types[i] == 'i') {
            sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
        } else {
            sqlite3_bind_blob(st, i + 1, va_arg(ap, const uint8_t *), 32, SQLITE_TRANSIENT);
        }
    }
    va_end(ap);
    int r = sqlite3_step(st);
    if (r != SQLITE_DONE && r != SQLITE_ROW) {
        rc = store__sql_err(db, r, "write", err);
    } else if (need_change && sqlite3_changes(db) == 0) {
        rc = tsr_err_set(err, TSR_ENOTFOUND, "not found");
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---------------------------------------------------------------- audit writer */

static void
audit_write(store *s, access_audit_row *rows, size_t n)
{
    tsr_err err = {0};
    sqlite3 *db = write_begin(s, &err);
    if (!db) {
        TSR_LOG(TSR_LOG_ERROR, "audit: %s (%zu entries lost)", err.msg, n);
        return;
    }
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "INSERT INTO audit(time_ms,actor,client,action,target,status)"
                     " VALUES(?,?,?,?,?,?)",
                     &st, &err);
    for (size_t i = 0; rc == TSR_OK && i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, rows[i].time_ms);
        sqlite3_bind_text(st, 2, rows[i].actor, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, rows[i].client, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, rows[i].action, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, rows[i].target, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 6, rows[i].status);
        int r = sqlite3_step(st);
        if (r != SQLITE_DONE) {
            rc = store__sql_err(db, r, "audit", &err);
        }
    }
    sqlite3_finalize(st);
    if (write_end(s, rc, &err) != TSR_OK) {
        TSR_LOG(TSR_LOG_ERROR, "audit: %s (%zu entries lost)", err.msg, n);
    }
}

/* Takes what is queued and writes it; returns whether anything was written. */
static int
audit_drain(store *s)
{
    struct access__state *a = s->access;
    pthread_mutex_lock(&a->mu);
    audit_queue q = a->q;
    memset(&a->q, 0, sizeof a->q);
    pthread_mutex_unlock(&a->mu);
    if (q.n) {
        audit_write(s, q.rows, q.n);
    }
    free(q.rows);
    return q.n > 0;
}

static void *
audit_thread(void *arg)
{
    store *s = arg;
    struct access__state *a = s->access;
    for (;;) {
        pthread_mutex_lock(&a->mu);
        if (!a->stop && a->q.n < 256) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 500 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&a->cv, &a->mu, &ts);
        }
        int stop = a->stop;
        pthread_mutex_unlock(&a->mu);
        audit_drain(s);
        if (stop) {
            return NULL;
        }
    }
}

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
access_audit_add(store *s, const char *actor, const char *client, const char *action,
             const char *target, int status)
{
    struct access__state *a = s->access;
    access_audit_row row;
    memset(&row, 0, sizeof row);
    row.time_ms = now_ms();
    snprintf(row.actor, sizeof row.actor, "%s", actor ? actor : "anonymous");
    snprintf(row.client, sizeof row.client, "%s", client ? client : "");
    snprintf(row.action, sizeof row.action, "%s", action ? action : "");
    snprintf(row.target, sizeof row.target, "%s", target ? target : "");
    row.status = status;
    /* printable ASCII only: what a client sent must not break the log's JSON (UTF-8) export */
    char *fields[] = {row.actor, row.client, row.action, row.target};
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        for (char *c = fields[f]; *c; c++) {
            if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e) {
                *c = '?';
            }
        }
    }
    pthread_mutex_lock(&a->mu);
    if (a->q.n == a->q.cap) {
        size_t cap = a->q.cap ? a->q.cap * 2 : 64;
        access_audit_row *rows = cap < 100000 ? realloc(a->q.rows, cap * sizeof *rows) : NULL;
        if (!rows) {
            pthread_mutex_unlock(&a->mu);
            TSR_LOG(TSR_LOG_ERROR, "audit: queue full, entry lost: %s %s", row.action, row.target);
            return;
        }
        a->q.rows = rows;
        a->q.cap = cap;
    }
    a->q.rows[a->q.n++] = row;
    if (a->q.n >= 256) {
        pthread_cond_signal(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
}

void
access_audit_flush(store *s)
{
    audit_drain(s);
}

int
access_audit_each(store *s, int64_t after, long limit, int newest_first, access_audit_fn fn,
                  void *user, tsr_err *err)
{
    access_audit_flush(s);
    sqlite3 *db = store__reader(s);
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     newest_first ? "SELECT seq,time_ms,actor,client,action,target,status FROM audit"
                                    " WHERE seq > ? ORDER BY seq DESC LIMIT ?"
                                  : "SELECT seq,time_ms,actor,client,action,target,status FROM audit"
                                    " WHERE seq > ? ORDER BY seq LIMIT ?",
                     &st, err);
    if (rc == TSR_OK) {
        sqlite3_bind_int64(st, 1, after);
        sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
        int r;
        while (rc == TSR_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
            access_audit_row a;
            memset(&a, 0, sizeof a);
            a.seq = sqlite3_column_int64(st, 0);
            a.time_ms = sqlite3_column_int64(st, 1);
            copy_col(a.actor, sizeof a.actor, st, 2);
            copy_col(a.client, sizeof a.client, st, 3);
            copy_col(a.action, sizeof a.action, st, 4);
            copy_col(a.target, sizeof a.target, st, 5);
            a.status = sqlite3_column_int(st, 6);
            rc = fn(user, &a);
        }
    }
    sqlite3_finalize(st);
    store__reader_put(s, db);
    return rc;
}

/* ---------------------------------------------------------------- init */

int
access__init(store *s, tsr_err *err)
{
    if (sodium_init() < 0) {
        return tsr_err_set(err, TSR_EINTERNAL, "libsodium cannot initialise");
    }
    struct access__state *a = calloc(1, sizeof *a);
    if (!a) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->dummy_mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    pthread_cond_init(&a->slot_cv, NULL);
    a->slots = PWHASH_SLOTS;
    s->access = a;
    pthread_mutex_lock(&s->pool.writer_mu);
    int rc = store__exec(s->pool.writer, k_access_schema, err);
    pthread_mutex_unlock(&s->pool.writer_mu);
    if (rc == TSR_OK) {
        if (pthread_create(&a->thread, NULL, audit_thread, s) != 0) {
            rc = tsr_err_set(err, TSR_EINTERNAL, "cannot start the audit writer");
        } else {
            a->have_thread = 1;
        }
    }
    if (rc != TSR_OK) {
        access__shutdown(s);
    }
    return rc;
}

void
access__shutdown(store *s)
{
    struct access__state *a = s->access;
    if (!a) {
        return;
    }
    if (a->have_thread) {
        pthread_mutex_lock(&a->mu);
        a->stop = 1;
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    audit_drain(s);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->dummy_mu);
    pthread_cond_destroy(&a->cv);
    pthread_cond_destroy(&a->slot_cv);
    free(a->q.rows);
    free(a);
    s->access = NULL;
}

/* ---------------------------------------------------------------- users */

int
access_user_put(store *s, const char *name, const char *password, access_role role,
                int replace, tsr_err *err)
{
    if (!access_user_valid_name(name)) {
        return tsr_err_set(err, TSR_EINVAL,
                           "a user name is 1 to 64 letters, digits, '.', '_', '@' or '-'");
    }
    size_t pl = password ? strlen(password) : 0;
    if (pl < 8 || pl > 1024) {
        return tsr_err_set(err, TSR_EINVAL, "a password has 8 to 1024 characters");
    }
    if (role != ACCESS_ADMIN && role != ACCESS_READER && !(replace && role == ACCESS_NONE)) {
        return tsr_err_set(err, TSR_EINVAL, "a user's role is admin or reader");
    }
    char hash[crypto_pwhash_STRBYTES];
    int rc = pw_hash(s, password, hash, err);
    if (rc != TSR_OK) {
        return rc;
    }
    sqlite3 *db = write_begin(s, err);
    if (!db) {
        return err ? err->code : TSR_EIO;
    }
    if (replace) {
        rc = role == ACCESS_NONE
                 ? run(db, "UPDATE users SET pwhash=? WHERE name=?", 1, err, "tt", hash, name)
                 : run(db, "UPDATE users SET pwhash=?, role=? WHERE name=?", 1, err, "ttt", hash,
                       access_role_name(role), name);
        if (rc == TSR_OK) {
            /* a new password lifts a lock */
            rc = run(db, "DELETE FROM login_failures WHERE name=?", 0, err, "t", name);
        }
        if (rc == TSR_OK) {
            /* a new password ends the sessions signed in with the old one */
            rc = run(db, "DELETE FROM sessions WHERE kind='user' AND subject=?", 0, err, "t", name);
        }
        if (rc == TSR_ENOTFOUND) {
            tsr_err_set(err, rc, "no user '%s'", name);
        }
    } else {
        sqlite3_stmt *st = NULL;
        rc = prepare(db, "SELECT 1 FROM users WHERE name=?", &st, err);
        if (rc == TSR_OK) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW) {
                rc = tsr_err_set(err, TSR_EEXIST, "user '%s' exists already", name);
            }
        }
        sqlite3_finalize(st);
        if (rc == TSR_OK) {
            rc = run(db, "INSERT INTO users(name,role,pwhash,created) VALUES(?,?,?,?)", 0, err,
                     "ttti", name, access_role_name(role), hash, (int64_t)time(NULL));
        }
    }
    sodium_memzero(hash, sizeof hash);
    return write_end(s, rc, err);
}

int
access_user_delete(store *s, const char *name, tsr_err *err)
{
    sqlite3 *db = write_begin(s, err);
    if (!db) {
        return err ? err->code : TSR_EIO;
    }
    int rc = run(db, "DELETE FROM users WHERE name=?", 1, err, "t", name);
    if (rc == TSR_ENOTFOUND) {
        tsr_err_set(err, rc, "no user '%s'", name);
    }
    if (rc == TSR_OK) {
        rc = run(db, "DELETE FROM sessions WHERE kind='user' AND subject=?", 0, err, "t", name);
    }
    return write_end(s, rc, err);
}

long
access_user_count(store *s)
{
    sqlite3 *db = store__reader(s);
    sqlite3_stmt *st = NULL;
    long n = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM users", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        n = (long)sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    store__reader_put(s, db);
    return n;
}

int
access_user_each(store *s, access_user_fn fn, void *user, tsr_err *err)
{
    sqlite3 *db = store__reader(s);
    sqlite3_stmt *st = NULL;
    int rc = prepare(db, "SELECT name, role, created FROM users ORDER BY name", &st, err);
    while (rc == TSR_OK && sqlite3_step(st) == SQLITE_ROW) {
        access_user u;
        memset(&u, 0, sizeof u);
        copy_col(u.name, sizeof u.name, st, 0);
        u.role = access_role_parse((const char *)sqlite3_column_text(st, 1));
        u.created = (time_t)sqlite3_column_int64(st, 2);
        rc = fn(user, &u);
    }
    sqlite3_finalize(st);
    store__reader_put(s, db);
    return rc;
}

int
access_login(store *s, const char *name, const char *password, access_user *out,
             long *retry_after, tsr_err *err)
{
    *retry_after = 0;
    char hash[crypto_pwhash_STRBYTES] = "";
    access_user u;
    memset(&u, 0, sizeof u);
    int64_t locked_until = 0;
    int found = 0;
    if (access_user_valid_name(name)) {
        sqlite3 *db = store__reader(s);
        sqlite3_stmt *st = NULL;
        if (prepare(db, "SELECT role, pwhash, created FROM users WHERE name=?", &st, NULL) ==
            TSR_OK) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW) {
                found = 1;
                snprintf(u.name, sizeof u.name, "%s", name);
                u.role = access_role_parse((const char *)sqlite3_column_text(st, 0));
                copy_col(hash, sizeof hash, st, 1);
                u.created = (time_t)sqlite3_column_int64(st, 2);
            }
        }
        sqlite3_finalize(st);
        st = NULL;
        /* failures are counted per name, whether it exists or not: a lock tells nothing */
        if (prepare(db, "SELECT locked_until FROM login_failures WHERE name=?", &st, NULL) ==
            TSR_OK) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW) {
                locked_until = sqlite3_column_int64(st, 0);
            }
        }
        sqlite3_finalize(st);
        store__reader_put(s, db);
    }
    int64_t now = (int64_t)time(NULL);
    if (locked_until > now) {
        *retry_after = (long)(locked_until - now);
        return tsr_err_set(err, TSR_ELIMIT, "too many failed sign-ins: try again in %ld s",
                           *retry_after);
    }
    if (!found) {
        /* an unknown name is checked against a hash of a random password, so that it takes as
         * long as a known one */
        struct access__state *a = s->access;
        pthread_mutex_lock(&a->dummy_mu);
        if (!a->dummy_hash[0]) {
            char pw[ACCESS_TOKEN_LEN + 1];
            uint8_t h[32];
            new_token(pw, h);
            pw_hash(s, pw, a->dummy_hash, NULL);
        }
        snprintf(hash, sizeof hash, "%s", a->dummy_hash);
        pthread_mutex_unlock(&a->dummy_mu);
    }
    int ok = pw_verify(s, hash, password ? password : "");
    ok = ok && found;
    sodium_memzero(hash, sizeof hash);
    /* Record the outcome: five failures in a row lock the name for 30 s, doubling with each
     * further failure up to 15 minutes. Names that are not even valid are not recorded (their
     * sign-in can never succeed); rows of names quiet for a day are dropped. */
    tsr_err werr = {0};
    sqlite3 *db = access_user_valid_name(name) ? write_begin(s, &werr) : NULL;
    if (db) {
        int rc;
        if (ok) {
            rc = run(db, "DELETE FROM login_failures WHERE name=?", 0, &werr, "t", name);
        } else {
            rc = run(db, "DELETE FROM login_failures WHERE updated < ? AND locked_until < ?", 0,
                     &werr, "ii", now - 86400, now);
            if (rc == TSR_OK) {
                rc = run(db,
                         "INSERT INTO login_failures(name,failures,locked_until,updated)"
                         " VALUES(?1,1,0,?2) ON CONFLICT(name) DO UPDATE SET"
                         " failures=failures+1, updated=?2, locked_until=CASE"
                         " WHEN failures+1 >= 5 THEN ?2+min(900, 30 << min(failures+1-5, 5))"
                         " ELSE 0 END",
                         0, &werr, "ti", name, now);
            }
        }
        write_end(s, rc, &werr);
    }
    if (!ok) {
        return tsr_err_set(err, TSR_EINVAL, "wrong user name or password");
    }
    *out = u;
    return TSR_OK;
}

/* ---------------------------------------------------------------- sessions */

static int
session_insert(sqlite3 *db, const char *kind, const char *subject, long ttl, char *token_out,
               tsr_err *err)
{
    uint8_t h[32];
    new_token(token_out, h);
    int64_t now = (int64_t)time(NULL);
    /* expired sessions go as new ones come (a week late: until then a share session can
     * still be told that its link expired) */
    run(db, "DELETE FROM sessions WHERE expires <= ?", 0, NULL, "i", now - 7 * 86400);
    return run(db, "INSERT INTO sessions(hash,kind,subject,created,expires) VALUES(?,?,?,?,?)", 0,
               err, "bttii", h, kind, subject, now, now + (int64_t)ttl);
}

int
access_session_create_user(store *s, const char *name, long ttl_seconds,
                           char token_out[ACCESS_TOKEN_LEN + 1], tsr_err *err)
{
    sqlite3 *db = write_begin(s, err);
    if (!db) {
        return err ? err->code : TSR_EIO;
    }
    int rc = session_insert(db, "user", name, ttl_seconds, token_out, err);
    return write_end(s, rc, err);
}

static const char k_share_cols[] =
    "id, study, series, download, pin_hash <> '', max_opens, opens, pin_failures, created,"
    " created_by, expires, revoked";

static void
share_state(access_share *sh, int64_t now)
{
    sh->state = sh->revoked ? ACCESS_SHARE_REVOKED
                : sh->pin_failures >= ACCESS_PIN_TRIES ? ACCESS_SHARE_LOCKED
                : sh->expires <= now                   ? ACCESS_SHARE_EXPIRED
                : sh->max_opens > 0 && sh->opens >= sh->max_opens ? ACCESS_SHARE_USED_UP
                                                                   : ACCESS_SHARE_ACTIVE;
}

/* Reads a share row selected with k_share_cols starting at column `c`. */
static void
share_row(sqlite3_stmt *st, int c, access_share *sh)
{
    memset(sh, 0, sizeof *sh);
    copy_col(sh->id, sizeof sh->id, st, c);
    copy_col(sh->study, sizeof sh->study, st, c + 1);
    const char *series = (const char *)sqlite3_column_text(st, c + 2);
    for (const char *p = series ? series : ""; *p && sh->n_series < ACCESS_MAX_SERIES;) {
        size_t k = strcspn(p, "\\");
        if (k > 0 && k < 65) {
            memcpy(sh->series[sh->n_series], p, k);
            sh->series[sh->n_series++][k] = '\0';
        }
        p += k + (p[k] == '\\');
    }
    sh->download = sqlite3_column_int(st, c + 3);
    sh->has_pin = sqlite3_column_int(st, c + 4);
    sh->max_opens = (long)sqlite3_column_int64(st, c + 5);
    sh->opens = (long)sqlite3_column_int64(st, c + 6);
    sh->pin_failures = sqlite3_column_int(st, c + 7);
    sh->created = (time_t)sqlite3_column_int64(st, c + 8);
    copy_col(sh->created_by, sizeof sh->created_by, st, c + 9);
    sh->expires = (time_t)sqlite3_column_int64(st, c + 10);
    sh->revoked = (time_t)sqlite3_column_int64(st, c + 11);
    share_state(sh, (int64_t)time(NULL));
}

int
access_session_get(store *s, const char *token, access_principal *out, tsr_err *err)
{
    memset(out, 0, sizeof *out);
    if (!token || strlen(token) != ACCESS_TOKEN_LEN) {
        return tsr_err_set(err, TSR_ENOTFOUND, "no such session");
    }
    uint8_t h[32];
    access_token_hash(token, h);
    int64_t now = (int64_t)time(NULL);
    static const char sql[] =
        "SELECT s.kind, s.subject, s.expires, u.role, sh.id, sh.study, sh.series, sh.download,"
        " sh.pin_hash <> '', sh.max_opens, sh.opens, sh.pin_failures, sh.created, sh.created_by,"
        " sh.expires, sh.revoked FROM sessions s"
        " LEFT JOIN users u ON s.kind='user' AND u.name=s.subject"
        " LEFT JOIN shares sh ON s.kind='share' AND sh.id=s.subject"
        " WHERE s.hash=? AND (s.expires > ? OR s.kind='share')";
    sqlite3 *db = store__reader(s);
    sqlite3_stmt *st = NULL;
    int rc = store__stmt(db, sql, &st, err); /* on every request with a cookie */
    if (rc == TSR_OK) {
        sqlite3_bind_blob(st, 1, h, 32, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        rc = tsr_err_set(err, TSR_ENOTFOUND, "no such session");
        if (sqlite3_step(st) == SQLITE_ROW) {
            const char *kind = (const char *)sqlite3_column_text(st, 0);
            out->expires = (time_t)sqlite3_column_int64(st, 2);
            if (kind && strcmp(kind, "user") == 0 && sqlite3_column_type(st, 3) != SQLITE_NULL) {
                out->kind = ACCESS_K_USER;
                copy_col(out->name, sizeof out->name, st, 1);
                out->role = access_role_parse((const char *)sqlite3_column_text(st, 3));
                rc = TSR_OK;
            } else if (kind && strcmp(kind, "share") == 0 &&
                       sqlite3_column_type(st, 4) != SQLITE_NULL) {
                out->kind = ACCESS_K_SHARE;
                share_row(st, 4, &out->share);
                /* opening used the last allowed open; the session itself stays good */
                if (out->share.state == ACCESS_SHARE_USED_UP) {
                    out->share.state = ACCESS_SHARE_ACTIVE;
                }
                snprintf(out->id, sizeof out->id, "%s", out->share.id);
                /* a share session outlives its own expiry only to say why the link no longer
                 * works (revoked, expired, locked); an active link's session has just ended */
                rc = out->share.state != ACCESS_SHARE_ACTIVE || out->expires > now
                         ? TSR_OK
                         : tsr_err_set(err, TSR_ENOTFOUND, "no such session");
            }
        }
    }
    store__stmt_done(st);
    store__reader_put(s, db);
    return rc;
}

int
access_session_delete(store *s, const char *token, tsr_err *err)
{
    uint8_t h[32];
    access_token_hash(token ? token : "", h);
    sqlite3 *db = write_begin(s, err);
    if (!db) {
        return err ? err->code : TSR_EIO;
    }
    int rc = run(db, "DELETE FROM sessions WHERE hash=?", 0, err, "b", h);
    return write_end(s, rc, err);
}

/* ---------------------------------------------------------------- API tokens */

static void
token_row(sqlite3_stmt *st, access_token *t)
{
    memset(t, 0, sizeof *t);
    copy_col(t->id, sizeof t->id, st, 0);
    copy_col(t->name, sizeof t->name, st, 1);
    t->scope = access_role_parse((const char *)sqlite3_column_text(st, 2));
    copy_col(t->created_by, sizeof t->created_by, st, 3);
    t->created = (time_t)sqlite3_column_int64(st, 4);
    t->revoked = (time_t)sqlite3_column_int64(st, 5);
}

int
access_token_create(store *s, const char *name, access_role scope, const char *created_by,
                    access_token *out, char token_out[ACCESS_TOKEN_LEN + 1], tsr_err *err)
{
    if (scope != ACCESS_READER && scope != ACCESS_WRITER && scope != ACCESS_ADMIN) {
        return tsr_err_set(err, TSR_EINVAL, "a token's scope is read, write or admin");
    }
    size_t nl = name ? strlen(name) : 0;
    if (nl == 0 || nl > 64) {
        return tsr_err_set(err, TSR_EINVAL, "a token needs a name of 1 to 64 characters");
    }
    memset(out, 0, sizeof *out);
    new_id(out->id);
    snprintf(out->name, sizeof out->name, "%s", name);
    out->scope = scope;
    snprintf(out->created_by, sizeof out->created_by, "%s", created_by);
    out->created = time(NULL);
    uint8_t h[32];
    new_token(token_out, h);
    sqlite3 *db = write_begin(s, err);
    if (!db) {
        return err ? err->code : TSR_EIO;
    }
    int rc = run(db,
                 "INSERT INTO tokens(id,hash,name,scope,created_by,created) VALUES(?,?,?,?,?,?)",
                 0, err, "tbttti", out->id, h, name,
                 scope == ACCESS_READER ? "read" : access_role_name(scope), created_by,
                 (int64_t)out->created);
    return write_end(s, rc, err);
}

int
access_token_check(store *s, const char *token, access_token *out, tsr_err *err)
{
    if (!token || strlen(token) != ACCESS_TOKEN_LEN) {
        return tsr_err_set(err, TSR_ENOTFOUND, "unknown token");
    }
    uint8_t h[32];
    access_token_hash(token, h);
    sqlite3 *db = store__reader(s);
    sqlite3_stmt *st = NULL;
    int rc = store__stmt(db,
                         "SELECT id,name,scope,created_by,created,revoked FROM tokens"
                         " WHERE hash=? AND revoked=0",
                         &st, err); /* on every request with a bearer token */
    if (rc == TSR_OK) {
        sqlite3_bind_blob(st, 1, h, 32, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            token_row(st, out);
        } else {
            rc = tsr_err_set(err, TSR_ENOTFOUND, "unknown or revoked token");
        }
    }
    store__stmt_done(st);
    store__reader_put(s, db);
    return rc;
}

/* Marks row `id` of `table` (tokens, shares) revoked now; TSR_ENOTFOUND ("no active <what>")
 * when there is no such row or it is revoked already. */
static int
revoke(store *s, const char *table, const char *what, const char *id, tsr_err *err)
{
    char sql[96];
    snprintf(sql, sizeof sql, "UPDATE %s SET revoked=? WHERE id=? AND revoked=0", table);
    sqlite3 *db = write_begin(s, err);
    if (!db) {
        return err ? err->code : TSR_EIO;
    }
    int rc = run(db, sql, 1, err, "it", (int64_t)time(NULL), id);
    if (rc == TSR_ENOTFOUND) {
        tsr_err_set(err, rc, "no active %s '%.40s'", what, id);
    }
    return write_end(s, rc, err);
}

int
access_token_revoke(store *s, const char *id, tsr_err *err)
{
    return revoke(s, "tokens", "token", id, err);
}

int
access_token_each(store *s, access_token_fn fn, void *user, tsr_err *err)
{
    sqlite3 *db = store__reader(s);
    sqlite3_stmt *st = NULL;
    int rc = prepare(db,
                     "SELECT id,name,scope,created_by,created,revoked FROM tokens"
                     " ORDER BY created DESC, id",
                     &st, err);
    while (rc == TSR_OK && sqlite3_step(st) == SQLITE_ROW) {
        access_token t;
        token_row(st, &t);
        rc = fn(user, &t);
    }
    sqlite3_finalize(st);
    store__reader_put(s, db);
    return rc;
}

/* ---------------------------------------------------------------- share links */

int
access_share_covers(const access_share *sh, const char *study, const char *series)
{
    if (!study || strcmp(study, sh->study) != 0) {
        return 0;
    }
    if (!series || !series[0] || sh->n_series == 0) {
        return 1;
    }
    for (int i = 0; i < sh->n_series; i++) {
        if (strcmp(series, sh->series[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

int
access_share_create(store *s, access_share *in, const char *pin,
                    char token_out[ACCESS_TOKEN_LEN + 1], tsr_err *err)
{
    char pin_hash[crypto_pwhash_STRBYTES] = "";
    if (pin && pin[0]) {
        size_t n = strlen(pin);
        int ok = n >= 4 && n <= 12;
        for (size_t i = 0; ok && i < n; i++) {
            ok = pin[i] >= '0' && pin[i] <= '9';
        }
        if (!ok) {
            return tsr_err_set(err, TSR_EINVAL, "an access code (PIN) is 4 to 12 digits");
        }
        int rc = pw_hash(s, pin, pin_hash, err);
        if (rc != TSR_OK) {
            return rc;
        }
    }
    char series[ACCESS_MAX_SERIES * 66] = "";
    size_t at = 0;
    for (int i = 0; i < in->n_series && i < ACCESS_MAX_SERIES; i++) {
        at += (size_t)snprintf(series + at, sizeof series - at, "%s%s", i ? "\\" : "",
                               in->series[i]);
    }
    new_id(in->id);
    in->created = time(NULL);
    in->has_pin = pin_hash[0] != '\0';
    in->opens = 0;
    in->pin_failures = 0;
    in->revoked = 0;
    in->state = ACCESS_SHARE_ACTIVE;
    uint8_t h[32];
    new_token(token_out, h);
    sqlite3 *db = write_begin(s, err);
    if (!db) {
        return err ? err->code : TSR_EIO;
    }
    int rc = run(db,
                 "INSERT INTO shares(id,hash,study,series,download,pin_hash,max_opens,created,"
                 "created_by,expires) VALUES(?,?,?,?,?,?,?,?,?,?)",
                 0, err, "tbttitiiti", in->id, h, in->study, series, (int64_t)in->download,
                 pin_hash, (int64_t)in->max_opens, (int64_t)in->created, in->created_by,
                 (int64_t)in->expires);
    sodium_memzero(pin_hash, sizeof pin_hash);
    return write_end(s, rc, err);
}

/* The share row with this hash (or id), and its PIN hash. */
static int
share_find(store *s, const uint8_t *hash, const char *id, access_share *out, char *pin_hash,
           tsr_err *err)
{
    char sql[400];
    snprintf(sql, sizeof sql, "SELECT %s, pin_hash FROM shares WHERE %s", k_share_cols,
             hash ? "hash=?" : "id=?");
    sqlite3 *db = store__reader(s);
    sqlite3_stmt *st = NULL;
    int rc = prepare(db, sql, &st, err);
    if (rc == TSR_OK) {
        if (hash) {
            sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
        } else {
            sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        }
        if (sqlite3_step(st) == SQLITE_ROW) {
            share_row(st, 0, out);
            if (pin_hash) {
                copy_col(pin_hash, crypto_pwhash_STRBYTES, st, 12);
            }
        } else {
            rc = tsr_err_set(err, TSR_ENOTFOUND, "no such link");
        }
    }
    sqlite3_finalize(st);
    store__reader_put(s, db);
    return rc;
}

int
access_share_get(store *s, const char *id, access_share *out, tsr_err *err)
{
    return share_find(s, NULL, id, out, NULL, err);
}

int
access_share_open(store *s, const char *token, const char *pin, long ttl_seconds,
                  access_share *out, int *tries_left, char session_out[ACCESS_TOKEN_LEN + 1],
                  tsr_err *err)
{
    memset(out, 0, sizeof *out);
    *tries_left = -1;
    if (!token || strlen(token) != ACCESS_TOKEN_LEN) {
        return tsr_err_set(err, TSR_ENOTFOUND, "no such link");
    }
    uint8_t h[32];
    access_token_hash(token, h);
    char pin_hash[crypto_pwhash_STRBYTES] = "";
    int rc = share_find(s, h, NULL, out, pin_hash, err);
    if (rc != TSR_OK) {
        return rc;
    }
    if (out->state != ACCESS_SHARE_ACTIVE) {
        return tsr_err_set(err, TSR_ELIMIT, "link %s", access_share_state_name(out->state));
    }
    int pin_ok = 1;
    if (out->has_pin) {
        if (!pin || !pin[0]) {
            return tsr_err_set(err, TSR_EINVAL, "access code required");
        }
        pin_ok = strlen(pin) <= 12 && pw_verify(s, pin_hash, pin);
    }
    sodium_memzero(pin_hash, sizeof pin_hash);
    /* The state is checked again inside the transaction: a revocation, a lock or the last open
     * that happened while the PIN was being checked wins. */
    sqlite3 *db = write_begin(s, err);
    if (!db) {
        return err ? err->code : TSR_EIO;
    }
    int64_t now = (int64_t)time(NULL);
    if (!pin_ok) {
        rc = run(db, "UPDATE shares SET pin_failures=pin_failures+1 WHERE id=? AND revoked=0", 0,
                 err, "t", out->id);
    } else {
        rc = run(db,
                 "UPDATE shares SET opens=opens+1 WHERE id=? AND revoked=0 AND expires>? AND"
                 " pin_failures<? AND (max_opens=0 OR opens<max_opens)",
                 1, err, "tii", out->id, now, (int64_t)ACCESS_PIN_TRIES);
        if (rc == TSR_OK) {
            long ttl = ttl_seconds;
            if (out->expires - now < ttl) {
                ttl = (long)(out->expires - now);
            }
            rc = session_insert(db, "share", out->id, ttl, session_out, err);
        }
    }
    int changed = rc == TSR_OK;
    int wrc = write_end(s, rc == TSR_ENOTFOUND ? TSR_OK : rc, err);
    if (wrc != TSR_OK) {
        return wrc;
    }
    /* the row as it is now */
    access_share now_sh;
    if (share_find(s, NULL, out->id, &now_sh, NULL, NULL) == TSR_OK) {
        *out = now_sh;
    }
    if (!pin_ok) {
        *tries_left = ACCESS_PIN_TRIES - out->pin_failures;
        if (*tries_left < 0) {
            *tries_left = 0;
        }
        return tsr_err_set(err, TSR_EINVAL, "wrong access code");
    }
    if (!changed) {
        if (out->state == ACCESS_SHARE_ACTIVE) {
            out->state = ACCESS_SHARE_USED_UP;
        }
        return tsr_err_set(err, TSR_ELIMIT, "link %s", access_share_state_name(out->state));
    }
    out->state = ACCESS_SHARE_ACTIVE;
    return TSR_OK;
}

int
access_share_revoke(store *s, const char *id, tsr_err *err)
{
    /* its sessions stay, so that their next request is told "link revoked" */
    return revoke(s, "shares", "link", id, err);
}

int
access_share_each(store *s, const char *study, access_share_fn fn, void *user, tsr_err *err)
{
    char sql[400];
    snprintf(sql, sizeof sql, "SELECT %s FROM shares %s ORDER BY created DESC, id", k_share_cols,
             study ? "WHERE study=?" : "");
    sqlite3 *db = store__reader(s);
    sqlite3_stmt *st = NULL;
    int rc = prepare(db, sql, &st, err);
    if (rc == TSR_OK && study) {
        sqlite3_bind_text(st, 1, study, -1, SQLITE_STATIC);
    }
    while (rc == TSR_OK && sqlite3_step(st) == SQLITE_ROW) {
        access_share sh;
        share_row(st, 0, &sh);
        rc = fn(user, &sh);
    }
    sqlite3_finalize(st);
    store__reader_put(s, db);
    return rc;
}
