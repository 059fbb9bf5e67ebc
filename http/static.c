/* SPDX-License-Identifier: MIT */
/* static.c: the viewer's own text files (HTML, CSS, JavaScript, SVG) from --web-root, gzipped.
 *
 * CivetWeb serves static files without compression (it only substitutes a ready-made file.gz
 * when the file itself is missing), so the viewer's 140 KB of modules went over the wire as
 * they are: more than half of what a phone downloads before its first image. These few paths
 * are served here instead, through http__send (gzip when the client takes it, the security
 * headers) with a validator: ETag from size and modification time, Cache-Control: no-cache, so
 * a new deployment is seen at once and an unchanged file costs a 304. Everything else under
 * the web root is still CivetWeb's.
 *
 * Only names of one path segment of [A-Za-z0-9_.-] (no leading dot) are mapped to files, so
 * no URI can leave the web root. */
#define _GNU_SOURCE
#include "http_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATIC_MAX_BYTES (4u << 20)

static const char *
content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot) {
        return NULL;
    }
    if (strcmp(dot, ".js") == 0 || strcmp(dot, ".mjs") == 0) {
        return "text/javascript; charset=utf-8";
    }
    if (strcmp(dot, ".css") == 0) {
        return "text/css; charset=utf-8";
    }
    if (strcmp(dot, ".html") == 0) {
        return "text/html; charset=utf-8";
    }
    if (strcmp(dot, ".svg") == 0) {
        return "image/svg+xml";
    }
    return NULL;
}

static int
safe_segment(const char *s, size_t n)
{
    if (n == 0 || n > 128 || s[0] == '.') {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.')) {
            return 0;
        }
    }
    return 1;
}

/* The file under the web root a URI names ("" = index.html), or -1. */
static int
map_uri(const char *uri, char *rel, size_t cap)
{
    if (strcmp(uri, "/") == 0) {
        snprintf(rel, cap, "index.html");
        return 0;
    }
    const char *name = uri + 1;
    int in_js = strncmp(uri, "/js/", 4) == 0;
    if (in_js) {
        name = uri + 4;
    }
    size_t n = strlen(name);
    if (!safe_segment(name, n) || !content_type(name)) {
        return -1;
    }
    snprintf(rel, cap, "%s%s", in_js ? "js/" : "", name);
    return 0;
}

int
http__static_handler(struct mg_connection *conn, void *cbdata)
{
    http_server *s = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *uri = ri->local_uri ? ri->local_uri : "";
    char rel[200];
    if ((strcmp(ri->request_method, "GET") != 0 && strcmp(ri->request_method, "HEAD") != 0) ||
        !s->opts.web_root || !s->opts.web_root[0] || map_uri(uri, rel, sizeof rel) != 0) {
        return 0; /* CivetWeb's own handling (404, 405, other files) */
    }
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", s->opts.web_root, rel);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > STATIC_MAX_BYTES) {
        if (fd >= 0) {
            close(fd);
        }
        return 0;
    }
    http_req r;
    http__req_init(&r, conn, s);
    char etag[64];
    snprintf(etag, sizeof etag, "\"w%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ull + (unsigned long long)st.st_mtim.tv_nsec);
    char hdr[256];
    snprintf(hdr, sizeof hdr, "ETag: %s\r\nCache-Control: no-cache\r\n", etag);
    const char *inm = mg_get_header(conn, "If-None-Match");
    if (inm && http__etag_matches(inm, etag)) {
        close(fd);
        http__head(&r, 304, NULL, -1, hdr);
        return 1;
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n ? n : 1);
    size_t got = 0;
    while (buf && got < n) {
        ssize_t k = read(fd, buf + got, n - got);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            break;
        }
        got += (size_t)k;
    }
    close(fd);
    if (!buf || got != n) {
        free(buf);
        http__error(&r, 500, "cannot read %s", rel);
        return 1;
    }
    http__send(&r, 200, content_type(rel), buf, n, hdr);
    free(buf);
    return 1;
}
