/* SPDX-License-Identifier: MIT */
/* stow.c: STOW-RS (PS3.18 10.5): a multipart/related body of application/dicom parts streamed
 * into the store, one batch per request, answered with the Store Instances Response (dicom+json)
 * after the batch is durable. */
#include "http_internal.h"
#include "multipart.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct stow_ctx {
    store_batch *b;
    int part;
    int in_part;
    int skip; /* the current part is not application/dicom */
    tsr_err err; /* a server-side failure (disk full...) */
    int fatal;
} stow_ctx;

static int
on_begin(void *user, const char *content_type, const char *content_location)
{
    (void)content_location;
    stow_ctx *c = user;
    char name[64];
    snprintf(name, sizeof name, "part %d", ++c->part);
    char mt[96] = "";
    if (content_type[0] && mp_media_type(content_type, mt, sizeof mt) != 0) {
        mt[0] = '?';
    }
    /* A part without Content-Type takes the type of the request (application/dicom). */
    c->skip = mt[0] && strcmp(mt, "application/dicom") != 0;
    if (store_part_begin(c->b, name, &c->err) != TSR_OK) {
        c->fatal = 1;
        return 1;
    }
    c->in_part = 1;
    return 0;
}

static int
on_data(void *user, const uint8_t *data, size_t len)
{
    stow_ctx *c = user;
    if (c->skip) {
        return 0;
    }
    if (store_part_write(c->b, data, len, &c->err) != TSR_OK) {
        c->fatal = 1;
        return 1;
    }
    return 0;
}

static int
on_end(void *user)
{
    stow_ctx *c = user;
    c->in_part = 0;
    if (c->skip) {
        /* an empty part fails parsing with "empty part"; say what was wrong instead */
        if (store_part_end(c->b, &c->err) != TSR_OK) {
            c->fatal = 1;
            return 1;
        }
        int n;
        store_result *res = (store_result *)store_batch_results(c->b, &n);
        res[n - 1].kind = STORE_FAILED;
        res[n - 1].reason = 0xC000;
        snprintf(res[n - 1].message, sizeof res[n - 1].message,
                 "part is not application/dicom");
        return 0;
    }
    if (store_part_end(c->b, &c->err) != TSR_OK) {
        c->fatal = 1;
        return 1;
    }
    return 0;
}

static json_t *
elem(const char *vr, json_t *value)
{
    json_t *e = json_object();
    json_object_set_new(e, "vr", json_string(vr));
    if (value) {
        json_t *arr = json_array();
        json_array_append_new(arr, value);
        json_object_set_new(e, "Value", arr);
    }
    return e;
}

static char *
response_json(http_req *r, const store_result *res, int n, int *stored, int *failed)
{
    json_t *root = json_object(), *ok = json_array(), *bad = json_array();
    const char *study = NULL;
    int same_study = 1;
    *stored = *failed = 0;
    for (int i = 0; i < n; i++) {
        const store_result *x = &res[i];
        json_t *item = json_object();
        if (x->sop_class_uid[0]) {
            json_object_set_new(item, "00081150", elem("UI", json_string(x->sop_class_uid)));
        }
        if (x->sop_instance_uid[0]) {
            json_object_set_new(item, "00081155", elem("UI", json_string(x->sop_instance_uid)));
        }
        if (x->kind == STORE_FAILED) {
            json_object_set_new(item, "00081197", elem("US", json_integer(x->reason)));
            char text[400];
            snprintf(text, sizeof text, "%s: %s", x->name, x->message);
            /* ErrorComment: the reason in words, for people reading the response */
            json_object_set_new(item, "00000902", elem("LO", json_string(text)));
            json_array_append_new(bad, item);
            (*failed)++;
        } else {
            char url[1024];
            snprintf(url, sizeof url, "%s/studies/%s/series/%s/instances/%s", r->base,
                     x->study_uid, x->series_uid, x->sop_instance_uid);
            json_object_set_new(item, "00081190", elem("UR", json_string(url)));
            json_array_append_new(ok, item);
            (*stored)++;
            if (study && strcmp(study, x->study_uid) != 0) {
                same_study = 0;
            }
            study = x->study_uid;
        }
    }
    if (study && same_study) {
        char url[1024];
        snprintf(url, sizeof url, "%s/studies/%s", r->base, study);
        json_object_set_new(root, "00081190", elem("UR", json_string(url)));
    }
    if (json_array_size(bad)) {
        json_t *e = json_object();
        json_object_set_new(e, "vr", json_string("SQ"));
        json_object_set_new(e, "Value", bad);
        json_object_set_new(root, "00081198", e);
    } else {
        json_decref(bad);
    }
    json_t *e = json_object();
    json_object_set_new(e, "vr", json_string("SQ"));
    if (json_array_size(ok)) {
        json_object_set_new(e, "Value", ok);
    } else {
        json_decref(ok);
    }
    json_object_set_new(root, "00081199", e);
    char *s = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    return s;
}

void
http__stow(http_req *r)
{
    const char *ct = mg_get_header(r->conn, "Content-Type");
    char mt[96] = "", type[96] = "", boundary[80] = "";
    if (!ct || mp_media_type(ct, mt, sizeof mt) != 0 || strcmp(mt, "multipart/related") != 0) {
        http__error(r, 415, "STOW-RS takes multipart/related; type=\"application/dicom\" "
                            "(got %.80s)",
                    ct ? ct : "no Content-Type");
        return;
    }
    if (mp_header_param(ct, "type", type, sizeof type) == 0) {
        for (char *c = type; *c; c++) {
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        }
        if (strcmp(type, "application/dicom") != 0) {
            http__error(r, 415, "only application/dicom parts are accepted (type=%.80s); "
                                "the JSON/XML metadata form of STOW-RS is not supported",
                        type);
            return;
        }
    }
    if (mp_header_param(ct, "boundary", boundary, sizeof boundary) != 0) {
        http__error(r, 400, "multipart/related without a boundary parameter");
        return;
    }
    uint64_t max = r->srv->opts.max_upload;
    if (r->ri->content_length > 0 && (uint64_t)r->ri->content_length > max) {
        http__error(r, 413, "request body of %lld bytes exceeds the limit of %llu bytes",
                    r->ri->content_length, (unsigned long long)max);
        return;
    }
    stow_ctx c;
    memset(&c, 0, sizeof c);
    tsr_err err = {0};
    if (store_batch_begin(r->srv->st, r->study[0] ? r->study : NULL, &c.b, &err) != TSR_OK) {
        http__error_status(r, err.code, &err);
        return;
    }
    mp_callbacks cb = {on_begin, on_data, on_end};
    mp_parser *mp = mp_new(boundary, &cb, &c, 0);
    if (!mp) {
        store_batch_free(c.b);
        http__error(r, 400, "invalid multipart boundary");
        return;
    }
    enum { CHUNK = 1 << 16 };
    uint8_t *buf = malloc(CHUNK); /* not on the small worker stack, not in TLS */
    uint64_t total = 0;
    int rc = buf ? TSR_OK : tsr_err_set(&err, TSR_ENOMEM, "out of memory"), too_big = 0;
    while (rc == TSR_OK) {
        int n = mg_read(r->conn, buf, CHUNK);
        if (n < 0) {
            rc = tsr_err_set(&err, TSR_EINVAL, "connection failed while reading the body");
            break;
        }
        if (n == 0) {
            break;
        }
        total += (uint64_t)n;
        if (total > max) {
            too_big = 1;
            break;
        }
        rc = mp_feed(mp, buf, (size_t)n, &err);
        if (rc != TSR_OK) {
            break;
        }
    }
    if (rc == TSR_OK && !too_big) {
        rc = mp_finish(mp, &err);
    }
    mp_free(mp);
    free(buf);
    if (c.fatal) {
        store_batch_free(c.b);
        http__error_status(r, c.err.code, &c.err);
        return;
    }
    if (too_big) {
        store_batch_free(c.b);
        http__error(r, 413, "request body exceeds the limit of %llu bytes",
                    (unsigned long long)max);
        return;
    }
    if (rc != TSR_OK) {
        store_batch_free(c.b);
        http__error(r, 400, "malformed multipart body: %s", err.msg);
        return;
    }
    rc = store_batch_commit(c.b, &err);
    if (rc != TSR_OK) {
        store_batch_free(c.b);
        http__error_status(r, rc, &err);
        return;
    }
    int n, stored, failed;
    const store_result *res = store_batch_results(c.b, &n);
    char *body = response_json(r, res, n, &stored, &failed);
    store_batch_free(c.b);
    if (!body) {
        http__error(r, 503, "out of memory");
        return;
    }
    int status = failed == 0 ? 200 : stored == 0 ? 409 : 202;
    http__send(r, status, "application/dicom+json", body, strlen(body), NULL);
    free(body);
}
