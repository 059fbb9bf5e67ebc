/* SPDX-License-Identifier: MIT */
/* access.h: who may see what -- users, sessions, API tokens, share links and the audit log,
 * kept in the index database next to the studies they grant access to.
 *
 * Like store.h this is a narrow interface: the embedded default is SQLite; a shared index
 * (PostgreSQL) would implement the same functions, so a node keeps no access state of its own
 * and every node sees a revocation on the next request.
 *
 * Secrets cross this interface only in clear text going in (a password, a PIN, a presented
 * token) or coming out once (a new token). What is stored is a hash: Argon2id (libsodium's
 * crypto_pwhash) for passwords and PINs, which are guessable, and BLAKE2b-256 for random tokens
 * of 256 bits, which are not. Tokens are base64url without padding (43 characters). */
#ifndef TSR_ACCESS_H
#define TSR_ACCESS_H

#include "store.h"

#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ACCESS_TOKEN_LEN  43 /* characters of a token, without the terminating NUL */
#define ACCESS_ID_LEN     16 /* characters of a token or share id (hex) */
#define ACCESS_MAX_SERIES 64 /* series in one share link at most */

typedef enum access_role { ACCESS_NONE = 0, ACCESS_READER, ACCESS_WRITER, ACCESS_ADMIN } access_role;

const char *access_role_name(access_role r); /* "reader", "write", ... as stored */
access_role access_role_parse(const char *s); /* "admin", "reader", "read", "write"; else NONE */

/* Initialises libsodium and creates the access tables (idempotent). Called by store_open. */
int access__init(store *s, tsr_err *err);

/* ---------------------------------------------------------------- users */

typedef struct access_user {
    char name[65];
    access_role role; /* ACCESS_ADMIN or ACCESS_READER */
    time_t created;
} access_user;

/* Names are 1..64 of [A-Za-z0-9._@-]. Passwords 8..1024 bytes. */
int access_user_valid_name(const char *name);
/* Creates a user (TSR_EEXIST when the name is taken) or, with `replace`, sets the password and
 * role (ACCESS_NONE: kept) of an existing one (TSR_ENOTFOUND when absent) and ends its
 * sessions. */
int access_user_put(store *s, const char *name, const char *password, access_role role,
                    int replace, tsr_err *err);
int access_user_delete(store *s, const char *name, tsr_err *err); /* and its sessions */
long access_user_count(store *s);
typedef int (*access_user_fn)(void *user, const access_user *u);
int access_user_each(store *s, access_user_fn fn, void *user, tsr_err *err);

/* A login attempt. TSR_OK: *out filled. TSR_EINVAL: wrong name or password (one answer for
 * both; the time taken does not tell them apart). TSR_ELIMIT: locked after repeated failures,
 * *retry_after seconds to wait. Failures and locks are stored, so every node sees them. */
int access_login(store *s, const char *name, const char *password, access_user *out,
                 long *retry_after, tsr_err *err);

/* ---------------------------------------------------------------- sessions */

typedef enum access_kind { ACCESS_K_NONE = 0, ACCESS_K_USER, ACCESS_K_TOKEN, ACCESS_K_SHARE } access_kind;

typedef enum access_share_state {
    ACCESS_SHARE_ACTIVE = 0,
    ACCESS_SHARE_EXPIRED,
    ACCESS_SHARE_REVOKED,
    ACCESS_SHARE_USED_UP,
    ACCESS_SHARE_LOCKED,
} access_share_state;
const char *access_share_state_name(access_share_state st); /* "active", "link expired"... */

typedef struct access_share {
    char id[ACCESS_ID_LEN + 1];
    char study[65];
    char series[ACCESS_MAX_SERIES][65];
    int n_series; /* 0: the whole study */
    int download; /* permission to retrieve DICOM, raw frames and bulk data */
    int has_pin;
    long max_opens; /* 0: unlimited */
    long opens;
    int pin_failures;
    time_t created, expires, revoked; /* revoked: 0 when not */
    char created_by[80];
    access_share_state state; /* computed at read time */
} access_share;

/* Who a request is. */
typedef struct access_principal {
    access_kind kind;
    access_role role;            /* USER: the user's role; TOKEN: its scope; SHARE: NONE */
    char name[80];               /* user name, or token name */
    char id[ACCESS_ID_LEN + 1];  /* token or share id */
    access_share share;          /* SHARE */
    time_t expires;              /* of the session */
} access_principal;

/* New sessions: a user's (after access_login), or a share link's (access_share_open). The token
 * (for the cookie) is written to token_out. */
int access_session_create_user(store *s, const char *name, long ttl_seconds,
                               char token_out[ACCESS_TOKEN_LEN + 1], tsr_err *err);
/* Resolves a session token. TSR_OK with *out filled (a share session whose link is no longer
 * active comes back with out->share.state saying why); TSR_ENOTFOUND when unknown or expired. */
int access_session_get(store *s, const char *token, access_principal *out, tsr_err *err);
int access_session_delete(store *s, const char *token, tsr_err *err);

/* ---------------------------------------------------------------- API tokens */

typedef struct access_token {
    char id[ACCESS_ID_LEN + 1];
    char name[65];
    access_role scope; /* ACCESS_READER (read), ACCESS_WRITER (write), ACCESS_ADMIN */
    char created_by[80];
    time_t created, revoked;
} access_token;

int access_token_create(store *s, const char *name, access_role scope, const char *created_by,
                        access_token *out, char token_out[ACCESS_TOKEN_LEN + 1], tsr_err *err);
/* TSR_OK and *out for a valid token, TSR_ENOTFOUND for an unknown or revoked one. */
int access_token_check(store *s, const char *token, access_token *out, tsr_err *err);
int access_token_revoke(store *s, const char *id, tsr_err *err);
typedef int (*access_token_fn)(void *user, const access_token *t);
int access_token_each(store *s, access_token_fn fn, void *user, tsr_err *err);

/* A fresh random token (256 bits, base64url), e.g. for a generated password. */
void access_random_secret(char out[ACCESS_TOKEN_LEN + 1]);

/* The 32-byte hash tokens are stored under (for comparing a configured token in memory). */
void access_token_hash(const char *token, uint8_t out[32]);

/* ---------------------------------------------------------------- share links */

#define ACCESS_PIN_TRIES 5 /* wrong PINs before a link locks */

/* Creates a link from `in` (study, series, download, max_opens, expires, created_by); pin may
 * be NULL. Fills in->id and returns the token once. */
int access_share_create(store *s, access_share *in, const char *pin,
                        char token_out[ACCESS_TOKEN_LEN + 1], tsr_err *err);
/* Opening a link: checks the token, its state and the PIN, counts one open and creates a share
 * session (token in session_out, lifetime: until the link expires, at most ttl_seconds).
 * Returns TSR_OK with *out the link; otherwise out->id/state are filled when the link exists
 * and the result says why:
 *   TSR_ENOTFOUND  no such link
 *   TSR_ELIMIT     state is not active (expired, revoked, used up, locked)
 *   TSR_EINVAL     a PIN is required (pin NULL/empty: *tries_left = -1) or wrong
 *                  (*tries_left left; 0 means it is now locked) */
int access_share_open(store *s, const char *token, const char *pin, long ttl_seconds,
                      access_share *out, int *tries_left,
                      char session_out[ACCESS_TOKEN_LEN + 1], tsr_err *err);
int access_share_get(store *s, const char *id, access_share *out, tsr_err *err);
int access_share_revoke(store *s, const char *id, tsr_err *err);
typedef int (*access_share_fn)(void *user, const access_share *sh);
/* Links of a study (NULL: all), newest first. */
int access_share_each(store *s, const char *study, access_share_fn fn, void *user, tsr_err *err);
/* Whether a share grants a study/series (series may be NULL or ""). */
int access_share_covers(const access_share *sh, const char *study, const char *series);

/* ---------------------------------------------------------------- audit */

typedef struct access_audit_row {
    int64_t seq;
    int64_t time_ms; /* Unix time, milliseconds */
    char actor[96];  /* "user:admin", "token:<id>", "share:<id>", "anonymous" */
    char client[64]; /* remote address */
    char action[32]; /* "login", "share.open", "GET", ... */
    char target[512];
    int status;      /* the HTTP status answered */
} access_audit_row;

/* Appends a row. Rows are written in batches by a background thread (at most ~0.5 s later), in
 * one transaction each; access__flush (store_close) writes what is queued. The table refuses
 * UPDATE and DELETE (triggers). */
void access_audit_add(store *s, const char *actor, const char *client, const char *action,
                  const char *target, int status);
void access_audit_flush(store *s);
typedef int (*access_audit_fn)(void *user, const access_audit_row *a);
/* Rows oldest first from seq > after (limit <= 0: all), or newest first when newest_first. */
int access_audit_each(store *s, int64_t after, long limit, int newest_first, access_audit_fn fn,
                      void *user, tsr_err *err);

/* store_close calls this: stops the audit writer after flushing. */
void access__shutdown(store *s);

#ifdef __cplusplus
}
#endif

#endif
