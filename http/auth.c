/* SPDX-License-Identifier: MIT */
/* auth.c: who is asking and what they may reach -- credentials (a session cookie, a bearer token,
 * the configured admin token), rights per role and scope, a share session's confinement to its
 * study, the security headers and the audit trail of share sessions. The /api resources that
 * manage all of this are in api.c.
 *
 * The decisions are made here and stored through access.h; nothing is remembered by the node,
 * so a revocation made on any node applies to the next request everywhere. */
#define _GNU_SOURCE
#include "http_internal.h"

#include "access.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- credentials */

static int
ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++) {
        d |= (uint8_t)(a[i] ^ b[i]);
    }
    return d == 0;
}

void
http__auth_configure(http_server *s, const char *admin_token)
{
    s->have_admin_token = 0;
    if (admin_token && admin_token[0]) {
        access_token_hash(admin_token, s->admin_token_hash);
        s->have_admin_token = 1;
    }
}

/* The session token from the Cookie header, or "" */
void
http__session_cookie(http_req *r, char *out, size_t cap)
{
    out[0] = '\0';
    const char *cookie = mg_get_header(r->conn, "Cookie");
    if (cookie && mg_get_cookie(cookie, HTTP_COOKIE_NAME, out, cap) <= 0) {
        out[0] = '\0';
    }
}

const char *
http__share_refusal(access_share_state st)
{
    switch (st) {
    case ACCESS_SHARE_REVOKED: return "link revoked";
    case ACCESS_SHARE_EXPIRED: return "link expired";
    case ACCESS_SHARE_USED_UP: return "link used up";
    case ACCESS_SHARE_LOCKED: return "link locked";
    default: return "link not usable";
    }
}

static void
unauthorized(http_req *r, const char *msg)
{
    char body[512];
    int n = snprintf(body, sizeof body,
                     "{\"status\":401,\"error\":\"Unauthorized\",\"message\":\"%s\"}\n", msg);
    http__send(r, 401, "application/json", body, (size_t)n,
               "WWW-Authenticate: Bearer realm=\"tessera\"\r\nCache-Control: no-store\r\n");
}

/* Resolves the request's credential into r->who. 0 when there is one; otherwise -1 after a 401
 * (none, unknown) or a 410 (a share session whose link was revoked or has expired). */
int
http__resolve(http_req *r, int quiet)
{
    memset(&r->who, 0, sizeof r->who);
    const char *authz = mg_get_header(r->conn, "Authorization");
    tsr_err err = {0};
    if (authz && authz[0]) {
        if (strncasecmp(authz, "Bearer ", 7) != 0) {
            if (!quiet) {
                unauthorized(r, "only bearer tokens are accepted (Authorization: Bearer ...)");
            }
            return -1;
        }
        const char *tok = authz + 7;
        while (*tok == ' ') {
            tok++;
        }
        uint8_t h[32];
        access_token_hash(tok, h);
        if (r->srv->have_admin_token && ct_equal(h, r->srv->admin_token_hash, 32)) {
            r->who.kind = ACCESS_K_TOKEN;
            r->who.role = ACCESS_ADMIN;
            snprintf(r->who.name, sizeof r->who.name, "TESSERA_ADMIN_TOKEN");
            snprintf(r->who.id, sizeof r->who.id, "env");
            return 0;
        }
        access_token t;
        if (access_token_check(r->srv->st, tok, &t, &err) != TSR_OK) {
            if (!quiet) {
                unauthorized(r, "unknown or revoked token");
            }
            return -1;
        }
        r->who.kind = ACCESS_K_TOKEN;
        r->who.role = t.scope;
        snprintf(r->who.name, sizeof r->who.name, "%s", t.name);
        snprintf(r->who.id, sizeof r->who.id, "%s", t.id);
        return 0;
    }
    char tok[128];
    http__session_cookie(r, tok, sizeof tok);
    if (!tok[0] || access_session_get(r->srv->st, tok, &r->who, &err) != TSR_OK) {
        memset(&r->who, 0, sizeof r->who);
        if (!quiet) {
            unauthorized(r, tok[0] ? "your session has ended: sign in again"
                                   : "sign in, open a share link, or send an API token "
                                     "(Authorization: Bearer ...)");
        }
        return -1;
    }
    if (r->who.kind == ACCESS_K_SHARE && r->who.share.state != ACCESS_SHARE_ACTIVE) {
        if (!quiet) {
            http__error(r, 410, "%s", http__share_refusal(r->who.share.state));
        }
        return -1;
    }
    return 0;
}

/* Who, for the audit: "user:NAME", "token:ID", "share:ID". */
void
http__actor(const http_req *r, char *out, size_t cap)
{
    switch (r->who.kind) {
    case ACCESS_K_USER: snprintf(out, cap, "user:%s", r->who.name); break;
    case ACCESS_K_TOKEN: snprintf(out, cap, "token:%s", r->who.id); break;
    case ACCESS_K_SHARE: snprintf(out, cap, "share:%s", r->who.share.id); break;
    default: snprintf(out, cap, "anonymous"); break;
    }
}

void
http__audit(http_req *r, const char *action, const char *target, int status)
{
    char who[96];
    http__actor(r, who, sizeof who);
    access_audit_add(r->srv->st, who, r->ri->remote_addr, action, target, status);
    r->audited = 1;
}

int
http__can(const http_req *r, http_right right)
{
    const access_principal *w = &r->who;
    if (w->kind == ACCESS_K_SHARE) {
        return right == HTTP_RIGHT_READ || (right == HTTP_RIGHT_DOWNLOAD && w->share.download);
    }
    if (w->kind != ACCESS_K_USER && w->kind != ACCESS_K_TOKEN) {
        return 0;
    }
    switch (right) {
    case HTTP_RIGHT_READ:
    case HTTP_RIGHT_DOWNLOAD:
    case HTTP_RIGHT_STAFF:
        return w->role >= ACCESS_READER;
    case HTTP_RIGHT_SHARE:
        /* readers share what they can read; a read-only token cannot create anything */
        return w->kind == ACCESS_K_USER ? w->role >= ACCESS_READER : w->role >= ACCESS_WRITER;
    case HTTP_RIGHT_WRITE:
        return w->kind == ACCESS_K_USER ? w->role == ACCESS_ADMIN : w->role >= ACCESS_WRITER;
    case HTTP_RIGHT_ADMIN: return w->role == ACCESS_ADMIN;
    }
    return 0;
}

int
http__require(http_req *r, http_right right)
{
    if (http__can(r, right)) {
        return 0;
    }
    static const char *const what[] = {
        [HTTP_RIGHT_READ] = "reading studies",
        [HTTP_RIGHT_DOWNLOAD] = "downloading DICOM: this link allows viewing only",
        [HTTP_RIGHT_STAFF] = "it needs a user or an API token",
        [HTTP_RIGHT_SHARE] = "sharing studies",
        [HTTP_RIGHT_WRITE] = "storing studies: it needs an admin or a write token",
        [HTTP_RIGHT_ADMIN] = "administration: it needs an admin",
    };
    http__error(r, 403, "not allowed: %s", what[right]);
    return -1;
}

/* Cross-site request forgery: a state-changing request carried by a cookie must come from our
 * own pages (SameSite=Strict already keeps other sites' requests from carrying it; this is the
 * second lock). */
static int
csrf_ok(http_req *r)
{
    if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0 ||
        strcmp(r->method, "OPTIONS") == 0) {
        return 1;
    }
    if (r->who.kind != ACCESS_K_USER && r->who.kind != ACCESS_K_SHARE) {
        return 1; /* a bearer token is not sent by a browser on its own */
    }
    const char *origin = mg_get_header(r->conn, "Origin");
    if (!origin) {
        const char *fetch_site = mg_get_header(r->conn, "Sec-Fetch-Site");
        return !fetch_site || strcmp(fetch_site, "same-origin") == 0 ||
               strcmp(fetch_site, "none") == 0;
    }
    return strcmp(origin, r->origin) == 0;
}

int
http__authorize(http_req *r, http_right right)
{
    if (http__resolve(r, 0) != 0) {
        return -1;
    }
    if (!csrf_ok(r)) {
        http__error(r, 403, "cross-site request refused: the Origin is not this server");
        return -1;
    }
    return http__require(r, right);
}

void
http__audit_request(http_req *r)
{
    /* every request of a share session, and every change (STOW) by anyone; the reads of
     * users and tokens are not audited one by one */
    int change = strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0 &&
                 strcmp(r->method, "OPTIONS") != 0;
    if (r->audited || (r->who.kind != ACCESS_K_SHARE && !(change && r->who.kind != ACCESS_K_NONE))) {
        return;
    }
    const char *uri = r->ri->local_uri_raw ? r->ri->local_uri_raw : r->ri->local_uri;
    char target[512];
    snprintf(target, sizeof target, "%.400s%s%.100s", uri ? uri : "", r->query[0] ? "?" : "",
             r->query);
    http__audit(r, r->method, target, r->status);
}

/* The answer a UID outside a share's scope gets: the words of the lookup that finds nothing. */
int
http__scope(http_req *r, const char *study, const char *series, const char *instance)
{
    if (r->who.kind != ACCESS_K_SHARE || !study || !study[0]) {
        return 0;
    }
    if (access_share_covers(&r->who.share, study, series)) {
        return 0;
    }
    if (instance && instance[0]) {
        http__error(r, 404, "no instance %s in series %s of study %s", instance, series, study);
    } else if (series && series[0]) {
        http__error(r, 404, "no series %s in study %s", series, study);
    } else {
        http__error(r, 404, "no study %s", study);
    }
    return -1;
}

int
http__scope_query(http_req *r, store_query *q)
{
    if (r->who.kind != ACCESS_K_SHARE) {
        return 0;
    }
    const access_share *sh = &r->who.share;
    int need = 1 + (sh->n_series > 0 && q->level != STORE_STUDY);
    if (q->n_match + need > STORE_MAX_MATCH) {
        http__error(r, 400, "too many matching attributes");
        return -1;
    }
    store_match *m = &q->match[q->n_match];
    memset(m, 0, sizeof *m);
    m->tag = 0x0020000D;
    m->kind = STORE_M_SINGLE;
    m->value = strdup(sh->study);
    if (!m->value) {
        http__error(r, 503, "out of memory");
        return -1;
    }
    q->n_match++;
    if (need == 2) {
        m = &q->match[q->n_match];
        memset(m, 0, sizeof *m);
        m->tag = 0x0020000E;
        m->kind = STORE_M_LIST;
        m->list = calloc((size_t)sh->n_series, sizeof *m->list);
        if (!m->list) {
            http__error(r, 503, "out of memory");
            return -1;
        }
        q->n_match++;
        for (int i = 0; i < sh->n_series; i++) {
            m->list[i] = strdup(sh->series[i]);
            if (!m->list[i]) {
                http__error(r, 503, "out of memory");
                return -1;
            }
            m->n_list++;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- headers */

const char *
http__security_headers(void)
{
    return "X-Content-Type-Options: nosniff\r\n"
           "Referrer-Policy: no-referrer\r\n"
           "X-Frame-Options: DENY\r\n"
           "Content-Security-Policy: " HTTP_CSP "\r\n";
}
