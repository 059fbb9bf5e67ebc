/* SPDX-License-Identifier: MIT */
/* test_access.c: the access store (store/access.h): users and sign-in lockout, sessions, API
 * tokens, share links (PIN, lockout, opens, expiry, revocation, scope, concurrent opens), that
 * no secret is stored in clear, and the append-only audit log. Each case works in its own
 * mkdtemp folder. */
#define _GNU_SOURCE
#include "tsr_test.h"

#include "access.h"
#include "store.h"

#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct fixture {
    char root[256];
    store *s;
} fixture;

static int
setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (tsr_test_tmpdir(fx->root, sizeof fx->root, "access") != 0) {
        free(fx);
        return -1;
    }
    store_opts o = {0};
    o.dir = fx->root;
    tsr_err err = {0};
    if (store_open(&o, &fx->s, &err) != TSR_OK) {
        fprintf(stderr, "store_open: %s\n", err.msg);
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

/* Whether `needle` occurs in any file of the store's index (database, WAL). */
static int
index_contains(const fixture *fx, const char *needle)
{
    static const char *const files[] = {"index.sqlite", "index.sqlite-wal"};
    size_t nl = strlen(needle);
    for (size_t f = 0; f < 2; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", fx->root, files[f]);
        FILE *fp = fopen(path, "rb");
        if (!fp) {
            continue;
        }
        fseek(fp, 0, SEEK_END);
        long n = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        char *buf = malloc((size_t)n + 1);
        size_t got = fread(buf, 1, (size_t)n, fp);
        fclose(fp);
        int hit = memmem(buf, got, needle, nl) != NULL;
        free(buf);
        if (hit) {
            return 1;
        }
    }
    return 0;
}

#define STUDY  "1.2.826.0.1.3680043.9.7777.1"
#define SERIES "1.2.826.0.1.3680043.9.7777.1.1"

static access_share
share_spec(time_t expires, long max_opens)
{
    access_share sh;
    memset(&sh, 0, sizeof sh);
    snprintf(sh.study, sizeof sh.study, STUDY);
    snprintf(sh.created_by, sizeof sh.created_by, "user:admin");
    sh.expires = expires;
    sh.max_opens = max_opens;
    return sh;
}

/* ---------------------------------------------------------------- users */

static void
test_users_and_login(void **state)
{
    fixture *fx = *state;
    tsr_err err = {0};
    assert_int_equal(access_user_count(fx->s), 0);
    assert_int_equal(access_user_put(fx->s, "alice", "correct horse", ACCESS_ADMIN, 0, &err), TSR_OK);
    assert_int_equal(access_user_put(fx->s, "alice", "another one", ACCESS_READER, 0, &err),
                     TSR_EEXIST);
    assert_int_equal(access_user_put(fx->s, "bad name", "correct horse", ACCESS_READER, 0, &err),
                     TSR_EINVAL);
    assert_int_equal(access_user_put(fx->s, "bob", "short", ACCESS_READER, 0, &err), TSR_EINVAL);
    assert_int_equal(access_user_put(fx->s, "bob", "long enough", ACCESS_READER, 0, &err), TSR_OK);
    assert_int_equal(access_user_count(fx->s), 2);
    assert_false(index_contains(fx, "correct horse"));

    access_user u;
    long retry = 0;
    assert_int_equal(access_login(fx->s, "alice", "correct horse", &u, &retry, &err), TSR_OK);
    assert_string_equal(u.name, "alice");
    assert_int_equal(u.role, ACCESS_ADMIN);
    /* a wrong password and an unknown name get the same answer */
    char msg_wrong[256], msg_unknown[256];
    assert_int_equal(access_login(fx->s, "alice", "wrong horse", &u, &retry, &err), TSR_EINVAL);
    snprintf(msg_wrong, sizeof msg_wrong, "%s", err.msg);
    assert_int_equal(access_login(fx->s, "nobody", "wrong horse", &u, &retry, &err), TSR_EINVAL);
    snprintf(msg_unknown, sizeof msg_unknown, "%s", err.msg);
    assert_string_equal(msg_wrong, msg_unknown);

    /* a success resets the count: four more failures do not lock, the fifth in a row does */
    assert_int_equal(access_login(fx->s, "alice", "correct horse", &u, &retry, &err), TSR_OK);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(access_login(fx->s, "alice", "nope nope", &u, &retry, &err), TSR_EINVAL);
    }
    assert_int_equal(access_login(fx->s, "alice", "correct horse", &u, &retry, &err), TSR_OK);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(access_login(fx->s, "alice", "nope nope", &u, &retry, &err), TSR_EINVAL);
    }
    assert_int_equal(access_login(fx->s, "alice", "correct horse", &u, &retry, &err), TSR_ELIMIT);
    assert_true(retry > 0 && retry <= 30);
    /* an unknown name locks the same way: a lock does not tell which names exist */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(access_login(fx->s, "nobody2", "nope nope", &u, &retry, &err), TSR_EINVAL);
    }
    assert_int_equal(access_login(fx->s, "nobody2", "nope nope", &u, &retry, &err), TSR_ELIMIT);
    assert_true(retry > 0 && retry <= 30);
    /* the other user is not affected */
    assert_int_equal(access_login(fx->s, "bob", "long enough", &u, &retry, &err), TSR_OK);
    assert_int_equal(u.role, ACCESS_READER);
    /* a new password lifts the lock */
    assert_int_equal(access_user_put(fx->s, "alice", "new password", ACCESS_NONE, 1, &err), TSR_OK);
    assert_int_equal(access_login(fx->s, "alice", "new password", &u, &retry, &err), TSR_OK);
    assert_int_equal(u.role, ACCESS_ADMIN); /* kept */
    assert_int_equal(access_user_put(fx->s, "carol", "new password", ACCESS_NONE, 1, &err),
                     TSR_ENOTFOUND);
}

static void
test_sessions(void **state)
{
    fixture *fx = *state;
    tsr_err err = {0};
    assert_int_equal(access_user_put(fx->s, "alice", "correct horse", ACCESS_READER, 0, &err), TSR_OK);
    char tok[ACCESS_TOKEN_LEN + 1], tok2[ACCESS_TOKEN_LEN + 1];
    assert_int_equal(access_session_create_user(fx->s, "alice", 3600, tok, &err), TSR_OK);
    assert_int_equal(access_session_create_user(fx->s, "alice", 3600, tok2, &err), TSR_OK);
    assert_int_equal(strlen(tok), ACCESS_TOKEN_LEN);
    assert_string_not_equal(tok, tok2);
    assert_false(index_contains(fx, tok));
    access_principal p;
    assert_int_equal(access_session_get(fx->s, tok, &p, &err), TSR_OK);
    assert_int_equal(p.kind, ACCESS_K_USER);
    assert_int_equal(p.role, ACCESS_READER);
    assert_string_equal(p.name, "alice");
    /* a token one character off, and garbage */
    char off[ACCESS_TOKEN_LEN + 1];
    memcpy(off, tok, sizeof off);
    off[5] = off[5] == 'A' ? 'B' : 'A';
    assert_int_equal(access_session_get(fx->s, off, &p, &err), TSR_ENOTFOUND);
    assert_int_equal(access_session_get(fx->s, "x", &p, &err), TSR_ENOTFOUND);
    /* sign-out ends one session */
    assert_int_equal(access_session_delete(fx->s, tok, &err), TSR_OK);
    assert_int_equal(access_session_get(fx->s, tok, &p, &err), TSR_ENOTFOUND);
    assert_int_equal(access_session_get(fx->s, tok2, &p, &err), TSR_OK);
    /* a password change ends the others; so does deleting the user */
    assert_int_equal(access_user_put(fx->s, "alice", "changed pass", ACCESS_NONE, 1, &err), TSR_OK);
    assert_int_equal(access_session_get(fx->s, tok2, &p, &err), TSR_ENOTFOUND);
    assert_int_equal(access_session_create_user(fx->s, "alice", 3600, tok, &err), TSR_OK);
    assert_int_equal(access_user_delete(fx->s, "alice", &err), TSR_OK);
    assert_int_equal(access_session_get(fx->s, tok, &p, &err), TSR_ENOTFOUND);
    /* expiry */
    assert_int_equal(access_user_put(fx->s, "bob", "long enough", ACCESS_READER, 0, &err), TSR_OK);
    assert_int_equal(access_session_create_user(fx->s, "bob", 1, tok, &err), TSR_OK);
    assert_int_equal(access_session_get(fx->s, tok, &p, &err), TSR_OK);
    sleep(2);
    assert_int_equal(access_session_get(fx->s, tok, &p, &err), TSR_ENOTFOUND);
}

/* ---------------------------------------------------------------- tokens */

static void
test_api_tokens(void **state)
{
    fixture *fx = *state;
    tsr_err err = {0};
    access_token t, c;
    char tok[ACCESS_TOKEN_LEN + 1];
    assert_int_equal(access_token_create(fx->s, "pacs bridge", ACCESS_WRITER, "user:admin", &t, tok,
                                         &err),
                     TSR_OK);
    assert_int_equal(strlen(t.id), ACCESS_ID_LEN);
    assert_false(index_contains(fx, tok));
    assert_int_equal(access_token_check(fx->s, tok, &c, &err), TSR_OK);
    assert_string_equal(c.id, t.id);
    assert_int_equal(c.scope, ACCESS_WRITER);
    assert_int_equal(access_token_create(fx->s, "", ACCESS_READER, "user:admin", &t, tok, &err),
                     TSR_EINVAL);
    assert_int_equal(access_token_create(fx->s, "x", ACCESS_NONE, "user:admin", &t, tok, &err),
                     TSR_EINVAL);
    assert_int_equal(access_token_revoke(fx->s, c.id, &err), TSR_OK);
    assert_int_equal(access_token_check(fx->s, tok, &c, &err), TSR_ENOTFOUND);
    assert_int_equal(access_token_revoke(fx->s, c.id, &err), TSR_ENOTFOUND);
}

/* ---------------------------------------------------------------- share links */

static void
test_share_pin_and_opens(void **state)
{
    fixture *fx = *state;
    tsr_err err = {0};
    access_share sh = share_spec(time(NULL) + 3600, 2), out;
    char tok[ACCESS_TOKEN_LEN + 1], sess[ACCESS_TOKEN_LEN + 1];
    assert_int_equal(access_share_create(fx->s, &sh, "12a4", tok, &err), TSR_EINVAL);
    assert_int_equal(access_share_create(fx->s, &sh, "123", tok, &err), TSR_EINVAL);
    assert_int_equal(access_share_create(fx->s, &sh, "482913", tok, &err), TSR_OK);
    assert_false(index_contains(fx, tok));
    assert_false(index_contains(fx, "482913"));
    int tries = 0;
    /* no PIN, a wrong PIN, an unknown token */
    assert_int_equal(access_share_open(fx->s, tok, NULL, 3600, &out, &tries, sess, &err), TSR_EINVAL);
    assert_int_equal(tries, -1);
    assert_int_equal(access_share_open(fx->s, tok, "000000", 3600, &out, &tries, sess, &err),
                     TSR_EINVAL);
    assert_int_equal(tries, ACCESS_PIN_TRIES - 1);
    char other[ACCESS_TOKEN_LEN + 1];
    access_random_secret(other);
    assert_int_equal(access_share_open(fx->s, other, "482913", 3600, &out, &tries, sess, &err),
                     TSR_ENOTFOUND);
    /* the right PIN: a share session */
    assert_int_equal(access_share_open(fx->s, tok, "482913", 3600, &out, &tries, sess, &err), TSR_OK);
    assert_int_equal(out.opens, 1);
    assert_int_equal(out.pin_failures, 0 + 1); /* the wrong one is still counted */
    access_principal p;
    assert_int_equal(access_session_get(fx->s, sess, &p, &err), TSR_OK);
    assert_int_equal(p.kind, ACCESS_K_SHARE);
    assert_string_equal(p.share.study, STUDY);
    assert_int_equal(p.share.state, ACCESS_SHARE_ACTIVE);
    assert_true(p.expires <= sh.expires);
    /* the second open is the last one */
    char sess2[ACCESS_TOKEN_LEN + 1];
    assert_int_equal(access_share_open(fx->s, tok, "482913", 3600, &out, &tries, sess2, &err),
                     TSR_OK);
    assert_int_equal(access_share_open(fx->s, tok, "482913", 3600, &out, &tries, sess2, &err),
                     TSR_ELIMIT);
    assert_int_equal(out.state, ACCESS_SHARE_USED_UP);
    /* sessions already opened stay usable */
    assert_int_equal(access_session_get(fx->s, sess, &p, &err), TSR_OK);
    assert_int_equal(p.share.state, ACCESS_SHARE_ACTIVE);
    /* revocation: the next lookup of the session says so */
    assert_int_equal(access_share_revoke(fx->s, sh.id, &err), TSR_OK);
    assert_int_equal(access_session_get(fx->s, sess, &p, &err), TSR_OK);
    assert_int_equal(p.share.state, ACCESS_SHARE_REVOKED);
    assert_int_equal(access_share_open(fx->s, tok, "482913", 3600, &out, &tries, sess2, &err),
                     TSR_ELIMIT);
    assert_int_equal(out.state, ACCESS_SHARE_REVOKED);
    assert_int_equal(access_share_revoke(fx->s, sh.id, &err), TSR_ENOTFOUND);
}

static void
test_share_lockout(void **state)
{
    fixture *fx = *state;
    tsr_err err = {0};
    access_share sh = share_spec(time(NULL) + 3600, 0), out;
    char tok[ACCESS_TOKEN_LEN + 1], sess[ACCESS_TOKEN_LEN + 1];
    assert_int_equal(access_share_create(fx->s, &sh, "2468", tok, &err), TSR_OK);
    int tries = 0;
    for (int i = 1; i <= ACCESS_PIN_TRIES; i++) {
        assert_int_equal(access_share_open(fx->s, tok, "1357", 3600, &out, &tries, sess, &err),
                         TSR_EINVAL);
        assert_int_equal(tries, ACCESS_PIN_TRIES - i);
    }
    assert_int_equal(out.state, ACCESS_SHARE_LOCKED);
    /* locked: the right PIN does not open it any more */
    assert_int_equal(access_share_open(fx->s, tok, "2468", 3600, &out, &tries, sess, &err),
                     TSR_ELIMIT);
    assert_int_equal(out.state, ACCESS_SHARE_LOCKED);
    access_share got;
    assert_int_equal(access_share_get(fx->s, sh.id, &got, &err), TSR_OK);
    assert_int_equal(got.state, ACCESS_SHARE_LOCKED);
    assert_int_equal(got.opens, 0);
}

static int
list_states(void *user, const access_share *sh)
{
    char *out = user;
    size_t n = strlen(out);
    snprintf(out + n, 256 - n, "%s;", access_share_state_name(sh->state));
    return 0;
}

static void
test_share_expiry_and_scope(void **state)
{
    fixture *fx = *state;
    tsr_err err = {0};
    access_share sh = share_spec(time(NULL) - 1, 0), out;
    char tok[ACCESS_TOKEN_LEN + 1], sess[ACCESS_TOKEN_LEN + 1];
    assert_int_equal(access_share_create(fx->s, &sh, NULL, tok, &err), TSR_OK);
    int tries = 0;
    assert_int_equal(access_share_open(fx->s, tok, NULL, 3600, &out, &tries, sess, &err),
                     TSR_ELIMIT);
    assert_int_equal(out.state, ACCESS_SHARE_EXPIRED);

    /* a session never outlives its link */
    access_share sh2 = share_spec(time(NULL) + 1, 0);
    sh2.n_series = 1;
    snprintf(sh2.series[0], sizeof sh2.series[0], SERIES);
    assert_int_equal(access_share_create(fx->s, &sh2, NULL, tok, &err), TSR_OK);
    assert_int_equal(access_share_open(fx->s, tok, NULL, 3600, &out, &tries, sess, &err), TSR_OK);
    assert_int_equal(out.n_series, 1);
    assert_true(access_share_covers(&out, STUDY, SERIES));
    assert_true(access_share_covers(&out, STUDY, NULL));
    assert_false(access_share_covers(&out, STUDY, SERIES ".9"));
    assert_false(access_share_covers(&out, STUDY ".9", SERIES));
    assert_false(access_share_covers(&out, STUDY "1", NULL));
    access_principal p;
    assert_int_equal(access_session_get(fx->s, sess, &p, &err), TSR_OK);
    assert_int_equal(p.share.state, ACCESS_SHARE_ACTIVE);
    sleep(2);
    /* the session is still found, so that its requests can be told why they fail */
    assert_int_equal(access_session_get(fx->s, sess, &p, &err), TSR_OK);
    assert_int_equal(p.share.state, ACCESS_SHARE_EXPIRED);

    /* listing, per study: both links, with their states */
    char got[256] = "";
    assert_int_equal(access_share_each(fx->s, STUDY, list_states, got, &err), TSR_OK);
    assert_true(strcmp(got, "expired;expired;") == 0);
    got[0] = '\0';
    assert_int_equal(access_share_each(fx->s, STUDY ".2", list_states, got, &err), TSR_OK);
    assert_string_equal(got, "");
}

typedef struct open_race {
    store *s;
    const char *tok;
    int ok;
} open_race;

static void *
open_thread(void *arg)
{
    open_race *o = arg;
    access_share out;
    int tries;
    char sess[ACCESS_TOKEN_LEN + 1];
    tsr_err err = {0};
    o->ok = access_share_open(o->s, o->tok, "9999", 3600, &out, &tries, sess, &err) == TSR_OK;
    return NULL;
}

static void
test_share_concurrent_opens(void **state)
{
    fixture *fx = *state;
    tsr_err err = {0};
    access_share sh = share_spec(time(NULL) + 3600, 3);
    char tok[ACCESS_TOKEN_LEN + 1];
    assert_int_equal(access_share_create(fx->s, &sh, "9999", tok, &err), TSR_OK);
    enum { N = 8 };
    pthread_t th[N];
    open_race o[N];
    for (int i = 0; i < N; i++) {
        o[i] = (open_race){fx->s, tok, 0};
        assert_int_equal(pthread_create(&th[i], NULL, open_thread, &o[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += o[i].ok;
    }
    assert_int_equal(ok, 3);
    access_share got;
    assert_int_equal(access_share_get(fx->s, sh.id, &got, &err), TSR_OK);
    assert_int_equal(got.opens, 3);
}

/* ---------------------------------------------------------------- audit */

static int
collect_audit(void *user, const access_audit_row *a)
{
    char *out = user;
    size_t n = strlen(out);
    snprintf(out + n, 1024 - n, "%s|%s|%s|%s|%d;", a->actor, a->client, a->action, a->target,
             a->status);
    return 0;
}

static void
test_audit_append_only(void **state)
{
    fixture *fx = *state;
    tsr_err err = {0};
    access_audit_add(fx->s, "user:admin", "127.0.0.1", "share.create", "abc study 1.2", 201);
    access_audit_add(fx->s, "share:abc", "10.0.0.7", "GET", "/dicomweb/studies", 200);
    char got[1024] = "";
    assert_int_equal(access_audit_each(fx->s, 0, 0, 0, collect_audit, got, &err), TSR_OK);
    assert_string_equal(got, "user:admin|127.0.0.1|share.create|abc study 1.2|201;"
                             "share:abc|10.0.0.7|GET|/dicomweb/studies|200;");
    got[0] = '\0';
    assert_int_equal(access_audit_each(fx->s, 0, 1, 1, collect_audit, got, &err), TSR_OK);
    assert_string_equal(got, "share:abc|10.0.0.7|GET|/dicomweb/studies|200;");

    /* the table refuses changes, even from a direct connection */
    char path[512];
    snprintf(path, sizeof path, "%s/index.sqlite", fx->root);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_not_equal(sqlite3_exec(db, "UPDATE audit SET status=200", NULL, NULL, NULL), SQLITE_OK);
    assert_string_equal(sqlite3_errmsg(db), "the audit log is append-only");
    assert_int_not_equal(sqlite3_exec(db, "DELETE FROM audit", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    got[0] = '\0';
    assert_int_equal(access_audit_each(fx->s, 0, 0, 0, collect_audit, got, &err), TSR_OK);
    assert_non_null(strstr(got, "|201;"));

    /* entries queued at close are written */
    access_audit_add(fx->s, "user:admin", "127.0.0.1", "logout", "", 204);
    store_close(fx->s);
    store_opts o = {0};
    o.dir = fx->root;
    assert_int_equal(store_open(&o, &fx->s, &err), TSR_OK);
    got[0] = '\0';
    assert_int_equal(access_audit_each(fx->s, 0, 0, 0, collect_audit, got, &err), TSR_OK);
    assert_non_null(strstr(got, "logout||204;"));
}

TSR_TEST_MAIN(cmocka_unit_test_setup_teardown(test_users_and_login, setup, teardown),
              cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
              cmocka_unit_test_setup_teardown(test_api_tokens, setup, teardown),
              cmocka_unit_test_setup_teardown(test_share_pin_and_opens, setup, teardown),
              cmocka_unit_test_setup_teardown(test_share_lockout, setup, teardown),
              cmocka_unit_test_setup_teardown(test_share_expiry_and_scope, setup, teardown),
              cmocka_unit_test_setup_teardown(test_share_concurrent_opens, setup, teardown),
              cmocka_unit_test_setup_teardown(test_audit_append_only, setup, teardown))
