/* SPDX-License-Identifier: MIT */
/* api.c: the /api resources -- login, logout, me, users, tokens, share links, opening a share
 * link, the audit log -- and the first admin account. Who may call which is decided in auth.c;
 * accounts, tokens, links and the audit table are kept through access.h. */
#define _GNU_SOURCE
#include "http_internal.h"

#include "access.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define API_BODY_MAX (64 * 1024)

/* ---------------------------------------------------------------- JSON helpers */

static void
send_json(http_req *r, int status, json_t *j, const char *extra)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s) {
        http__error(r, 503, "out of memory");
        return;
    }
    char hdr[1024];
    snprintf(hdr, sizeof hdr, "Cache-Control: no-store\r\n%s", extra ? extra : "");
    size_t n = strlen(s);
    http__send(r, status, "application/json", s, n, hdr);
    free(s);
}

/* 204 after a change that succeeded (rc), else its error. */
static void
send_done(http_req *r, int rc, const tsr_err *err)
{
    if (rc != TSR_OK) {
        http__error_status(r, rc, err);
    } else {
        http__head(r, 204, NULL, -1, NULL);
    }
}

/* Sends the array a list function filled (rc its result), or the error it met. */
static void
send_list(http_req *r, int rc, json_t *a, const tsr_err *err)
{
    if (rc != TSR_OK) {
        json_decref(a);
        http__error_status(r, rc, err);
        return;
    }
    send_json(r, 200, a, NULL);
}

static void
iso_time(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *
json_time(time_t t)
{
    char b[32];
    iso_time(t, b);
    return json_string(b);
}

/* The request body as JSON (an object), or NULL after a 4xx. */
static json_t *
read_json(http_req *r)
{
    const char *ct = mg_get_header(r->conn, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
        http__error(r, 415, "send the body as application/json");
        return NULL;
    }
    long long len = r->ri->content_length;
    if (len > API_BODY_MAX) {
        http__error(r, 413, "a request body here is at most %d bytes", API_BODY_MAX);
        return NULL;
    }
    char *buf = malloc(API_BODY_MAX + 1);
    if (!buf) {
        http__error(r, 503, "out of memory");
        return NULL;
    }
    size_t n = 0;
    for (;;) {
        int k = mg_read(r->conn, buf + n, API_BODY_MAX + 1 - n);
        if (k <= 0) {
            break;
        }
        n += (size_t)k;
        if (n > API_BODY_MAX) {
            free(buf);
            http__error(r, 413, "a request body here is at most %d bytes", API_BODY_MAX);
            return NULL;
        }
    }
    json_error_t je;
    json_t *j = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        http__error(r, 400, "the body is not a JSON object%s%s", j ? "" : ": ", j ? "" : je.text);
        return NULL;
    }
    return j;
}

const char *
http__jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_t *
me_json(const http_req *r)
{
    const access_principal *w = &r->who;
    if (w->kind == ACCESS_K_USER) {
        return json_pack("{s:s,s:s,s:s}", "kind", "user", "username", w->name, "role",
                         access_role_name(w->role));
    }
    if (w->kind == ACCESS_K_TOKEN) {
        return json_pack("{s:s,s:s,s:s,s:s}", "kind", "token", "id", w->id, "name", w->name,
                         "scope", w->role == ACCESS_READER ? "read" : access_role_name(w->role));
    }
    const access_share *sh = &w->share;
    json_t *series = json_array();
    for (int i = 0; i < sh->n_series; i++) {
        json_array_append_new(series, json_string(sh->series[i]));
    }
    json_t *perm = json_array();
    json_array_append_new(perm, json_string("view"));
    if (sh->download) {
        json_array_append_new(perm, json_string("download"));
    }
    return json_pack("{s:s,s:s,s:s,s:o,s:o,s:o}", "kind", "share", "id", sh->id, "study",
                     sh->study, "series", series, "permissions", perm, "expires",
                     json_time(sh->expires));
}

static void
set_cookie(http_req *r, char *out, size_t cap, const char *token, long max_age)
{
    /* Secure under our own TLS, and behind a TLS-terminating proxy (--public-url https://...) */
    int secure = r->ri->is_ssl || strncasecmp(r->srv->public_url, "https://", 8) == 0;
    snprintf(out, cap, "Set-Cookie: " HTTP_COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict%s; "
             "Max-Age=%ld\r\n",
             token, secure ? "; Secure" : "", max_age);
}

/* ---------------------------------------------------------------- QR code */

/* An SVG of a QR code of `text`: one path of unit squares, a quiet zone of 4 modules, no
 * scripts and no style attributes. */
static char *
qr_svg(const char *text)
{
    QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (!qr) {
        return NULL;
    }
    int w = qr->width;
    size_t cap = 256 + (size_t)w * (size_t)w * 16;
    char *svg = malloc(cap);
    if (svg) {
        size_t at = (size_t)snprintf(svg, cap,
                                     "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d "
                                     "%d\" shape-rendering=\"crispEdges\"><rect width=\"%d\" "
                                     "height=\"%d\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
                                     w + 8, w + 8, w + 8, w + 8);
        for (int y = 0; y < w; y++) {
            for (int x = 0; x < w; x++) {
                if (qr->data[y * w + x] & 1) {
                    at += (size_t)snprintf(svg + at, cap - at, "M%d %dh1v1h-1z", x + 4, y + 4);
                }
            }
        }
        snprintf(svg + at, cap - at, "\"/></svg>");
    }
    QRcode_free(qr);
    return svg;
}

/* ---------------------------------------------------------------- /api resources */

static void
api_login(http_req *r)
{
    json_t *b = read_json(r);
    if (!b) {
        return;
    }
    const char *user = http__jstr(b, "username");
    const char *pw = http__jstr(b, "password");
    if (!user || !pw) {
        json_decref(b);
        http__error(r, 400, "send {\"username\": ..., \"password\": ...}");
        return;
    }
    access_user u;
    long retry = 0;
    tsr_err err = {0};
    int rc = access_login(r->srv->st, user, pw, &u, &retry, &err);
    char target[80];
    snprintf(target, sizeof target, "%.64s", user);
    if (rc == TSR_ELIMIT) {
        char extra[64];
        snprintf(extra, sizeof extra, "Retry-After: %ld\r\n", retry);
        char body[256];
        int n = snprintf(body, sizeof body,
                         "{\"status\":429,\"error\":\"Too Many Requests\",\"message\":\"too many "
                         "failed sign-ins: try again in %ld s\",\"retry_after\":%ld}\n",
                         retry, retry);
        http__send(r, 429, "application/json", body, (size_t)n, extra);
        http__audit(r, "login", target, 429);
    } else if (rc != TSR_OK) {
        http__error(r, rc == TSR_EINVAL ? 401 : tsr_status_http(rc), "%s", err.msg);
        http__audit(r, "login", target, r->status);
    } else {
        char tok[ACCESS_TOKEN_LEN + 1];
        long ttl = (long)r->srv->opts.session_hours * 3600;
        rc = access_session_create_user(r->srv->st, u.name, ttl, tok, &err);
        if (rc != TSR_OK) {
            http__error_status(r, rc, &err);
        } else {
            r->who.kind = ACCESS_K_USER;
            r->who.role = u.role;
            snprintf(r->who.name, sizeof r->who.name, "%s", u.name);
            char cookie[256];
            set_cookie(r, cookie, sizeof cookie, tok, ttl);
            send_json(r, 200, me_json(r), cookie);
        }
        http__audit(r, "login", target, r->status);
    }
    json_decref(b);
}

static void
api_logout(http_req *r)
{
    char tok[128];
    http__session_cookie(r, tok, sizeof tok);
    http__resolve(r, 1);
    if (tok[0]) {
        access_session_delete(r->srv->st, tok, NULL);
    }
    char cookie[256];
    set_cookie(r, cookie, sizeof cookie, "", 0);
    http__head(r, 204, NULL, -1, cookie);
    if (r->who.kind != ACCESS_K_NONE) {
        http__audit(r, "logout", "", 204);
    }
}

static int
user_item(void *user, const access_user *u)
{
    json_array_append_new(user, json_pack("{s:s,s:s,s:o}", "username", u->name, "role",
                                          access_role_name(u->role), "created",
                                          json_time(u->created)));
    return 0;
}

static void
api_users(http_req *r, const char *name)
{
    tsr_err err = {0};
    if (!name && (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)) {
        json_t *a = json_array();
        send_list(r, access_user_each(r->srv->st, user_item, a, &err), a, &err);
        return;
    }
    if (!name && strcmp(r->method, "POST") == 0) {
        json_t *b = read_json(r);
        if (!b) {
            return;
        }
        const char *user = http__jstr(b, "username");
        const char *role = http__jstr(b, "role");
        access_role ro = role ? access_role_parse(role) : ACCESS_READER;
        if (ro != ACCESS_ADMIN && ro != ACCESS_READER) {
            http__error(r, 400, "role is admin or reader");
        } else {
            int rc = access_user_put(r->srv->st, user ? user : "", http__jstr(b, "password"), ro, 0,
                                     &err);
            if (rc != TSR_OK) {
                http__error_status(r, rc, &err);
            } else {
                send_json(r, 201,
                          json_pack("{s:s,s:s}", "username", user, "role", access_role_name(ro)),
                          NULL);
            }
        }
        char target[80];
        snprintf(target, sizeof target, "%.64s", user ? user : "");
        http__audit(r, "user.create", target, r->status);
        json_decref(b);
        return;
    }
    if (name && strcmp(r->method, "DELETE") == 0) {
        if (r->who.kind == ACCESS_K_USER && strcmp(name, r->who.name) == 0) {
            http__error(r, 409, "you cannot delete your own account");
        } else {
            send_done(r, access_user_delete(r->srv->st, name, &err), &err);
        }
        http__audit(r, "user.delete", name, r->status);
        return;
    }
    http__error(r, 405, "use GET or POST on /api/users, DELETE on /api/users/{name}");
}

static int
token_item(void *user, const access_token *t)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:b}", "id", t->id, "name", t->name, "scope",
                          t->scope == ACCESS_READER ? "read" : access_role_name(t->scope),
                          "created_by", t->created_by, "created", json_time(t->created),
                          "revoked", t->revoked != 0);
    json_array_append_new(user, o);
    return 0;
}

static void
api_tokens(http_req *r, const char *id)
{
    tsr_err err = {0};
    char who[96];
    http__actor(r, who, sizeof who);
    if (!id && (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)) {
        json_t *a = json_array();
        send_list(r, access_token_each(r->srv->st, token_item, a, &err), a, &err);
        return;
    }
    if (!id && strcmp(r->method, "POST") == 0) {
        json_t *b = read_json(r);
        if (!b) {
            return;
        }
        const char *scope = http__jstr(b, "scope");
        access_role sc = access_role_parse(scope ? scope : "read");
        access_token t;
        char tok[ACCESS_TOKEN_LEN + 1];
        int rc = sc == ACCESS_NONE ? tsr_err_set(&err, TSR_EINVAL, "scope is read, write or admin")
                                   : access_token_create(r->srv->st, http__jstr(b, "name"), sc, who,
                                                         &t, tok, &err);
        if (rc != TSR_OK) {
            http__error_status(r, rc, &err);
        } else {
            json_t *o = json_array();
            token_item(o, &t);
            json_t *item = json_incref(json_array_get(o, 0));
            json_decref(o);
            json_object_set_new(item, "token", json_string(tok));
            send_json(r, 201, item, NULL);
        }
        http__audit(r, "token.create", rc == TSR_OK ? t.id : "", r->status);
        json_decref(b);
        return;
    }
    if (id && strcmp(r->method, "DELETE") == 0) {
        send_done(r, access_token_revoke(r->srv->st, id, &err), &err);
        http__audit(r, "token.revoke", id, r->status);
        return;
    }
    http__error(r, 405, "use GET or POST on /api/tokens, DELETE on /api/tokens/{id}");
}

static json_t *
share_json(const access_share *sh)
{
    json_t *series = json_array();
    for (int i = 0; i < sh->n_series; i++) {
        json_array_append_new(series, json_string(sh->series[i]));
    }
    json_t *perm = json_array();
    json_array_append_new(perm, json_string("view"));
    if (sh->download) {
        json_array_append_new(perm, json_string("download"));
    }
    json_t *o = json_pack("{s:s,s:s,s:o,s:o,s:o,s:s,s:o,s:I,s:I,s:b,s:s}", "id", sh->id, "study",
                          sh->study, "series", series, "permissions", perm, "created",
                          json_time(sh->created), "created_by", sh->created_by, "expires",
                          json_time(sh->expires), "max_opens", (json_int_t)sh->max_opens, "opens",
                          (json_int_t)sh->opens, "pin", sh->has_pin, "state",
                          access_share_state_name(sh->state));
    return o;
}

static int
share_item(void *user, const access_share *sh)
{
    json_array_append_new(user, share_json(sh));
    return 0;
}

int
http__share_request(json_t *b, double max_hours, access_share *sh, const char **pin, char *msg,
                    size_t cap)
{
    const char *study = http__jstr(b, "study");
    json_t *series = json_object_get(b, "series");
    json_t *hours = json_object_get(b, "expires_in_hours");
    json_t *max_opens = json_object_get(b, "max_opens");
    json_t *perm = json_object_get(b, "permissions");
    json_t *jpin = json_object_get(b, "pin");
    double h = hours && !json_is_null(hours) ? json_number_value(hours) : 168.0;
    msg[0] = '\0';
    *pin = NULL;
    if (!study || !dcm_uid_valid(study, strlen(study))) {
        snprintf(msg, cap, "study: a valid Study Instance UID is required");
    } else if (hours && !json_is_null(hours) && !json_is_number(hours)) {
        snprintf(msg, cap, "expires_in_hours is a number");
    } else if (!(h > 0) || h > max_hours || !isfinite(h)) {
        snprintf(msg, cap, "expires_in_hours must be above 0 and at most %.0f (%.0f days)",
                 max_hours, max_hours / 24);
    } else if (max_opens && !json_is_null(max_opens) &&
               (!json_is_integer(max_opens) || json_integer_value(max_opens) < 1 ||
                json_integer_value(max_opens) > 1000000)) {
        snprintf(msg, cap, "max_opens is a whole number from 1 (or absent: unlimited)");
    } else if (jpin && !json_is_null(jpin) && !json_is_string(jpin)) {
        snprintf(msg, cap, "pin is a string of 4 to 12 digits");
    } else if (series && !json_is_null(series) &&
               (!json_is_array(series) || json_array_size(series) > ACCESS_MAX_SERIES)) {
        snprintf(msg, cap, "series is a list of at most %d Series Instance UIDs",
                 ACCESS_MAX_SERIES);
    } else if (perm && !json_is_null(perm) && !json_is_array(perm)) {
        snprintf(msg, cap, "permissions is a list: [\"view\"] or [\"view\",\"download\"]");
    }
    size_t i;
    json_t *v;
    if (!msg[0] && json_is_array(perm)) {
        json_array_foreach(perm, i, v)
        {
            const char *p = json_string_value(v);
            if (p && strcmp(p, "download") == 0) {
                sh->download = 1;
            } else if (!p || strcmp(p, "view") != 0) {
                snprintf(msg, cap, "unknown permission (view, download)");
            }
        }
    }
    if (!msg[0] && json_is_array(series)) {
        json_array_foreach(series, i, v)
        {
            const char *u = json_string_value(v);
            if (!u || !dcm_uid_valid(u, strlen(u))) {
                snprintf(msg, cap, "series: not a valid Series Instance UID");
                break;
            }
            snprintf(sh->series[sh->n_series++], 65, "%s", u);
        }
    }
    if (msg[0]) {
        return -1;
    }
    snprintf(sh->study, sizeof sh->study, "%s", study);
    sh->expires = time(NULL) + (time_t)ceil(h * 3600.0);
    sh->max_opens = json_is_integer(max_opens) ? (long)json_integer_value(max_opens) : 0;
    *pin = json_string_value(jpin);
    return 0;
}

static void
share_create(http_req *r)
{
    json_t *b = read_json(r);
    if (!b) {
        return;
    }
    tsr_err err = {0};
    access_share sh;
    memset(&sh, 0, sizeof sh);
    http__actor(r, sh.created_by, sizeof sh.created_by);
    const char *pin = NULL;
    char msg[200];
    if (http__share_request(b, (double)r->srv->opts.share_max_days * 24.0, &sh, &pin, msg,
                            sizeof msg) != 0) {
        json_decref(b);
        http__error(r, 400, "%s", msg);
        return;
    }
    const char *study = sh.study;
    int rc = store_exists(r->srv->st, sh.study, NULL, &err);
    for (int k = 0; rc == TSR_OK && k < sh.n_series; k++) {
        rc = store_exists(r->srv->st, sh.study, sh.series[k], &err);
    }
    char tok[ACCESS_TOKEN_LEN + 1];
    if (rc == TSR_OK) {
        rc = access_share_create(r->srv->st, &sh, pin, tok, &err);
    }
    json_decref(b);
    if (rc != TSR_OK) {
        http__error_status(r, rc, &err);
        http__audit(r, "share.create", study, r->status);
        return;
    }
    json_t *o = share_json(&sh);
    char url[1200];
    snprintf(url, sizeof url, "%.600s/share.html#%s", r->origin, tok);
    json_object_set_new(o, "token", json_string(tok));
    json_object_set_new(o, "url", json_string(url));
    char *svg = qr_svg(url);
    json_object_set_new(o, "qr_svg", svg ? json_string(svg) : json_null());
    free(svg);
    send_json(r, 201, o, NULL);
    char target[120];
    snprintf(target, sizeof target, "%s study %s", sh.id, sh.study);
    http__audit(r, "share.create", target, r->status);
}

static void
api_shares(http_req *r, const char *id)
{
    tsr_err err = {0};
    if (!id && (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)) {
        char study[80];
        int have = http__param(r->query, "study", study, sizeof study);
        if (have < 0 || (have == 1 && !dcm_uid_valid(study, strlen(study)))) {
            http__error(r, 400, "study: not a valid Study Instance UID");
            return;
        }
        json_t *a = json_array();
        send_list(r, access_share_each(r->srv->st, have == 1 ? study : NULL, share_item, a, &err), a, &err);
        return;
    }
    if (!id && strcmp(r->method, "POST") == 0) {
        share_create(r);
        return;
    }
    if (id && strcmp(r->method, "DELETE") == 0) {
        send_done(r, access_share_revoke(r->srv->st, id, &err), &err);
        http__audit(r, "share.revoke", id, r->status);
        return;
    }
    http__error(r, 405, "use GET or POST on /api/shares, DELETE on /api/shares/{id}");
}

static void
api_share_open(http_req *r)
{
    json_t *b = read_json(r);
    if (!b) {
        return;
    }
    const char *tok = http__jstr(b, "token");
    const char *pin = http__jstr(b, "pin");
    access_share sh;
    int tries = -1;
    char session[ACCESS_TOKEN_LEN + 1];
    tsr_err err = {0};
    long ttl = (long)r->srv->opts.session_hours * 3600;
    int rc = access_share_open(r->srv->st, tok ? tok : "", pin, ttl, &sh, &tries, session, &err);
    json_decref(b);
    /* the audit names the link by its id, never by its token */
    r->who.kind = ACCESS_K_SHARE;
    r->who.share = sh;
    if (!sh.id[0]) {
        r->who.kind = ACCESS_K_NONE;
    }
    char body[400];
    int n;
    if (rc == TSR_OK) {
        char cookie[256];
        set_cookie(r, cookie, sizeof cookie, session,
                   (long)(sh.expires - time(NULL) < ttl ? sh.expires - time(NULL) : ttl));
        send_json(r, 200, me_json(r), cookie);
    } else if (rc == TSR_ENOTFOUND) {
        http__error(r, 404, "no such link");
    } else if (rc == TSR_ELIMIT) {
        if (sh.state == ACCESS_SHARE_LOCKED) {
            http__error(r, 423, "link locked after %d wrong access codes", ACCESS_PIN_TRIES);
        } else {
            http__error(r, 410, "%s", http__share_refusal(sh.state));
        }
    } else if (rc == TSR_EINVAL && tries == -1) {
        n = snprintf(body, sizeof body,
                     "{\"status\":401,\"error\":\"Unauthorized\",\"message\":\"access code "
                     "required\",\"pin_required\":true}\n");
        http__send(r, 401, "application/json", body, (size_t)n, "Cache-Control: no-store\r\n");
    } else if (rc == TSR_EINVAL && tries == 0) {
        http__error(r, 423, "link locked after %d wrong access codes", ACCESS_PIN_TRIES);
    } else if (rc == TSR_EINVAL) {
        n = snprintf(body, sizeof body,
                     "{\"status\":401,\"error\":\"Unauthorized\",\"message\":\"wrong access code; "
                     "%d attempt%s left\",\"pin_required\":true,\"attempts_left\":%d}\n",
                     tries, tries == 1 ? "" : "s", tries);
        http__send(r, 401, "application/json", body, (size_t)n, "Cache-Control: no-store\r\n");
    } else {
        http__error_status(r, rc, &err);
    }
    http__audit(r, "share.open", sh.id[0] ? sh.study : "unknown link", r->status);
}

static int
audit_item(void *user, const access_audit_row *a)
{
    char t[32];
    iso_time((time_t)(a->time_ms / 1000), t);
    char ts[40];
    snprintf(ts, sizeof ts, "%.19s.%03dZ", t, (int)(a->time_ms % 1000));
    json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:i}", "seq", (json_int_t)a->seq, "time", ts,
                          "actor", a->actor, "client", a->client, "action", a->action, "target",
                          a->target, "status", a->status);
    json_array_append_new(user, o);
    return 0;
}

typedef struct jsonl_out {
    http_req *r;
    char *buf;
    size_t len, cap;
    int oom;
} jsonl_out;

static int
audit_line(void *user, const access_audit_row *a)
{
    jsonl_out *o = user;
    json_t *arr = json_array();
    audit_item(arr, a);
    char *s = json_dumps(json_array_get(arr, 0), JSON_COMPACT);
    json_decref(arr);
    size_t n = s ? strlen(s) : 0;
    if (!s || (o->len + n + 1 > o->cap && !(o->buf = realloc(o->buf, o->cap = (o->len + n + 1) * 2)))) {
        free(s);
        o->oom = 1;
        return TSR_ENOMEM;
    }
    memcpy(o->buf + o->len, s, n);
    o->buf[o->len + n] = '\n';
    o->len += n + 1;
    free(s);
    return 0;
}

static void
api_audit(http_req *r)
{
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
        http__error(r, 405, "the audit log is read-only (GET)");
        return;
    }
    char v[32];
    long limit = 1000;
    if (http__param(r->query, "limit", v, sizeof v) == 1) {
        char *end;
        limit = strtol(v, &end, 10);
        if (*end || limit < 1 || limit > 100000) {
            http__error(r, 400, "limit is a whole number from 1 to 100000");
            return;
        }
    }
    tsr_err err = {0};
    if (http__param(r->query, "format", v, sizeof v) == 1) {
        if (strcmp(v, "jsonl") != 0) {
            http__error(r, 400, "format is jsonl (or absent: a JSON array)");
            return;
        }
        jsonl_out o = {r, NULL, 0, 0, 0};
        int rc = access_audit_each(r->srv->st, 0, 0, 0, audit_line, &o, &err);
        if (rc != TSR_OK) {
            free(o.buf);
            http__error_status(r, rc, &err);
            return;
        }
        http__send(r, 200, "application/x-ndjson", o.buf ? o.buf : "", o.len,
                   "Cache-Control: no-store\r\nContent-Disposition: attachment; "
                   "filename=\"tessera-audit.jsonl\"\r\n");
        free(o.buf);
        return;
    }
    json_t *a = json_array();
    send_list(r, access_audit_each(r->srv->st, 0, limit, 1, audit_item, a, &err), a, &err);
}

static int
valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && !strchr("._@-", s[i])) {
            return 0;
        }
    }
    return 1;
}

int
http__api_handler(struct mg_connection *conn, void *cbdata)
{
    http_req r;
    http__req_init(&r, conn, cbdata);
    const char *uri = r.ri->local_uri_raw ? r.ri->local_uri_raw : r.ri->local_uri;
    if (strcmp(r.method, "OPTIONS") == 0) {
        http__preflight(&r);
        return 1;
    }
    if (strncmp(uri, "/api/", 5) != 0) {
        http__error(&r, 404, "no resource here");
        return 1;
    }
    const char *p = uri + 5;
    char res[32] = "", id[80] = "";
    size_t k = strcspn(p, "/");
    if (k >= sizeof res) {
        http__error(&r, 404, "no resource /api/%.40s", p);
        return 1;
    }
    memcpy(res, p, k);
    res[k] = '\0';
    if (p[k] == '/') {
        const char *rest = p + k + 1;
        if (strlen(rest) >= sizeof id || !valid_id(rest)) {
            http__error(&r, 404, "no resource /api/%s/%.40s", res, rest);
            return 1;
        }
        snprintf(id, sizeof id, "%s", rest);
    }
    int post = strcmp(r.method, "POST") == 0;
    /* public: signing in and out, opening a share link, asking who one is */
    if (strcmp(res, "login") == 0 && !id[0]) {
        post ? api_login(&r) : http__error(&r, 405, "POST your user name and password");
    } else if (strcmp(res, "logout") == 0 && !id[0]) {
        post ? api_logout(&r) : http__error(&r, 405, "POST to sign out");
    } else if (strcmp(res, "share") == 0 && strcmp(id, "open") == 0) {
        post ? api_share_open(&r) : http__error(&r, 405, "POST the link's token (and access code)");
    } else if (strcmp(res, "me") == 0 && !id[0]) {
        if (http__resolve(&r, 0) == 0) {
            send_json(&r, 200, me_json(&r), NULL);
        }
    } else if (strcmp(res, "users") == 0) {
        if (http__authorize(&r, HTTP_RIGHT_ADMIN) == 0) {
            api_users(&r, id[0] ? id : NULL);
        }
    } else if (strcmp(res, "tokens") == 0) {
        if (http__authorize(&r, HTTP_RIGHT_ADMIN) == 0) {
            api_tokens(&r, id[0] ? id : NULL);
        }
    } else if (strcmp(res, "shares") == 0) {
        /* listing: any user or token; creating and revoking: the right to share */
        int list = strcmp(r.method, "GET") == 0 || strcmp(r.method, "HEAD") == 0;
        if (http__authorize(&r, list ? HTTP_RIGHT_STAFF : HTTP_RIGHT_SHARE) == 0) {
            api_shares(&r, id[0] ? id : NULL);
        }
    } else if (strcmp(res, "audit") == 0 && !id[0]) {
        if (http__authorize(&r, HTTP_RIGHT_ADMIN) == 0) {
            api_audit(&r);
        }
    } else {
        http__error(&r, 404, "no resource /api/%.40s", p);
    }
    http__audit_request(&r);
    return 1;
}

/* ---------------------------------------------------------------- first start */

int
http_bootstrap_admin(store *st, char *password_out, size_t cap, tsr_err *err)
{
    password_out[0] = '\0';
    if (access_user_count(st) != 0) {
        return TSR_OK;
    }
    char tok[ACCESS_TOKEN_LEN + 1];
    /* 24 characters of a random token: 144 bits */
    access_random_secret(tok);
    snprintf(password_out, cap, "%.24s", tok);
    return access_user_put(st, "admin", password_out, ACCESS_ADMIN, 0, err);
}
