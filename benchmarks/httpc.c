/* SPDX-License-Identifier: MIT */
/* httpc.c: the benchmarks' minimal HTTP/1.1 keep-alive client (see httpc.h). */
#define _GNU_SOURCE
#include "httpc.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

static void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "httpc: out of memory\n");
        abort();
    }
    return q;
}

/* "Authorization: Bearer T\r\n", or "" (see hc_set_bearer) */
static char g_auth[512];
static int g_auth_set;

void
hc_set_bearer(const char *token)
{
    g_auth[0] = '\0';
    if (token && token[0]) {
        if (strlen(token) > sizeof g_auth - 32 || strpbrk(token, "\r\n")) {
            fprintf(stderr, "httpc: unusable bearer token\n");
            abort();
        }
        snprintf(g_auth, sizeof g_auth, "Authorization: Bearer %s\r\n", token);
    }
    g_auth_set = 1;
}

static const char *
auth_header(void)
{
    if (!g_auth_set) {
        hc_set_bearer(getenv("TESSERA_TOKEN"));
    }
    return g_auth;
}

int
hc_init(hc *c, const char *base)
{
    auth_header(); /* read the environment before any thread runs */
    memset(c, 0, sizeof *c);
    c->fd = -1;
    if (strncmp(base, "http://", 7) != 0) {
        fprintf(stderr, "httpc: the base URL must start with http:// (got %s)\n", base);
        return -1;
    }
    const char *p = base + 7;
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof c->host) {
        fprintf(stderr, "httpc: bad host in %s\n", base);
        return -1;
    }
    memcpy(c->host, p, hl);
    p += hl;
    if (*p == ':') {
        size_t pl = strcspn(p + 1, "/");
        snprintf(c->port, sizeof c->port, "%.*s", (int)pl, p + 1);
        p += 1 + pl;
    } else {
        snprintf(c->port, sizeof c->port, "80");
    }
    snprintf(c->prefix, sizeof c->prefix, "%s", p);
    size_t n = strlen(c->prefix);
    while (n > 0 && c->prefix[n - 1] == '/') {
        c->prefix[--n] = '\0';
    }
    c->cap = 1 << 16;
    c->buf = xrealloc(NULL, c->cap);
    return 0;
}

void
hc_close(hc *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->beg = c->end = 0;
}

void
hc_free(hc *c)
{
    hc_close(c);
    free(c->buf);
}

static int
hc_connect(hc *c)
{
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(c->host, c->port, &hints, &ai) != 0) {
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            break;
        }
        if (fd >= 0) {
            close(fd);
        }
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->beg = c->end = 0;
    return 0;
}

static int
hc_send(hc *c, const void *p, size_t n, int more)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads more bytes into the buffer. Returns the count, 0 at EOF, -1 on error. */
static ssize_t
hc_fill(hc *c)
{
    if (c->beg > 0 && c->beg == c->end) {
        c->beg = c->end = 0;
    }
    if (c->end == c->cap) {
        if (c->beg > 0) {
            memmove(c->buf, c->buf + c->beg, c->end - c->beg);
            c->end -= c->beg;
            c->beg = 0;
        } else {
            c->cap *= 2;
            c->buf = xrealloc(c->buf, c->cap);
        }
    }
    for (;;) {
        ssize_t r = recv(c->fd, c->buf + c->end, c->cap - c->end, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r > 0) {
            c->end += (size_t)r;
        }
        return r;
    }
}

/* One line without its CRLF into `line`. Returns 0, or -1 on EOF/error/overlong. */
static int
hc_line(hc *c, char *line, size_t cap)
{
    for (;;) {
        char *nl = memchr(c->buf + c->beg, '\n', c->end - c->beg);
        if (nl) {
            size_t n = (size_t)(nl - (c->buf + c->beg));
            size_t k = n > 0 && c->buf[c->beg + n - 1] == '\r' ? n - 1 : n;
            if (k >= cap) {
                return -1;
            }
            memcpy(line, c->buf + c->beg, k);
            line[k] = '\0';
            c->beg += n + 1;
            return 0;
        }
        if (c->end - c->beg > 65536 || hc_fill(c) <= 0) {
            return -1;
        }
    }
}

static void
body_reserve(hc_resp *r, size_t extra)
{
    if (r->len + extra + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 1 << 16;
        while (cap < r->len + extra + 1) {
            cap *= 2;
        }
        r->body = xrealloc(r->body, cap);
        r->cap = cap;
    }
}

/* Appends `n` body bytes (n == SIZE_MAX: until EOF). */
static int
hc_body(hc *c, hc_resp *r, size_t n)
{
    size_t left = n;
    while (left > 0) {
        if (c->beg == c->end) {
            ssize_t got = hc_fill(c);
            if (got == 0 && n == SIZE_MAX) {
                return 0;
            }
            if (got <= 0) {
                return -1;
            }
        }
        size_t take = c->end - c->beg;
        if (take > left) {
            take = left;
        }
        body_reserve(r, take);
        memcpy(r->body + r->len, c->buf + c->beg, take);
        r->len += take;
        r->body[r->len] = '\0';
        c->beg += take;
        if (n != SIZE_MAX) {
            left -= take;
        }
    }
    return 0;
}

/* Reads one response. Returns 0, 1 when the connection closed before a status line (a stale
 * keep-alive connection: the caller may retry), or -1. */
static int
hc_response(hc *c, hc_resp *r)
{
    char line[8192];
    r->len = 0;
    r->ctype[0] = '\0';
    r->etag[0] = '\0';
    body_reserve(r, 0);
    r->body[0] = '\0';
    long long clen = -1;
    int chunked = 0, close_after = 0;
    for (;;) {
        if (hc_line(c, line, sizeof line) != 0) {
            return 1;
        }
        if (sscanf(line, "HTTP/1.%*d %d", &r->status) != 1) {
            return -1;
        }
        close_after = strncmp(line, "HTTP/1.0", 8) == 0;
        for (;;) {
            if (hc_line(c, line, sizeof line) != 0) {
                return -1;
            }
            if (!line[0]) {
                break;
            }
            char *v = strchr(line, ':');
            if (!v) {
                continue;
            }
            *v++ = '\0';
            while (*v == ' ' || *v == '\t') {
                v++;
            }
            if (strcasecmp(line, "Content-Length") == 0) {
                clen = atoll(v);
            } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
                chunked = strcasestr(v, "chunked") != NULL;
            } else if (strcasecmp(line, "Connection") == 0) {
                close_after = strcasestr(v, "close") != NULL;
            } else if (strcasecmp(line, "Content-Type") == 0) {
                snprintf(r->ctype, sizeof r->ctype, "%s", v);
            } else if (strcasecmp(line, "ETag") == 0) {
                snprintf(r->etag, sizeof r->etag, "%s", v);
            }
        }
        if (r->status >= 200) {
            break;
        }
    }
    int rc = 0;
    if (r->status == 204 || r->status == 304) {
        /* no body */
    } else if (chunked) {
        for (;;) {
            if (hc_line(c, line, sizeof line) != 0) {
                return -1;
            }
            size_t n = (size_t)strtoull(line, NULL, 16);
            if (n == 0) {
                while (hc_line(c, line, sizeof line) == 0 && line[0]) {
                }
                break;
            }
            if (hc_body(c, r, n) != 0 || hc_line(c, line, sizeof line) != 0) {
                return -1;
            }
        }
    } else if (clen >= 0) {
        rc = clen > 0 ? hc_body(c, r, (size_t)clen) : 0;
    } else {
        rc = hc_body(c, r, SIZE_MAX);
        close_after = 1;
    }
    if (close_after) {
        hc_close(c);
    }
    return rc;
}

int
hc_get(hc *c, const char *rel, const char *accept, hc_resp *r)
{
    return hc_get_h(c, rel, accept, NULL, r);
}

int
hc_get_h(hc *c, const char *rel, const char *accept, const char *headers, hc_resp *r)
{
    char req[4096];
    int n =
        snprintf(req, sizeof req,
                 "GET %s%s HTTP/1.1\r\nHost: %s:%s\r\nAccept: %s\r\n"
                 "User-Agent: tessera-bench\r\n%s%s\r\n",
                 c->prefix, rel, c->host, c->port, accept, auth_header(), headers ? headers : "");
    if (n <= 0 || (size_t)n >= sizeof req) {
        return -1;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        if (c->fd < 0) {
            if (hc_connect(c) != 0) {
                return -1;
            }
            if (attempt > 0) {
                c->reconnects++;
            }
        }
        int rc = hc_send(c, req, (size_t)n, 0);
        if (rc == 0) {
            rc = hc_response(c, r);
        } else {
            rc = 1;
        }
        if (rc == 0) {
            return 0;
        }
        hc_close(c);
        if (rc < 0) {
            return -1;
        }
    }
    return -1;
}

#define BOUNDARY "bench-store-5f0c2a9e6b7d4c31a8e2"

int
hc_stow(hc *c, const char *rel, char **files, const uint64_t *sizes, int n, hc_resp *r)
{
    static const char part_hdr[] = "--" BOUNDARY "\r\nContent-Type: application/dicom\r\n\r\n";
    static const char tail[] = "--" BOUNDARY "--\r\n";
    uint64_t total = sizeof tail - 1;
    for (int i = 0; i < n; i++) {
        total += sizeof part_hdr - 1 + sizes[i] + 2;
    }
    char req[2048];
    int hn = snprintf(req, sizeof req,
                      "POST %s%s HTTP/1.1\r\nHost: %s:%s\r\n"
                      "Content-Type: multipart/related; type=\"application/dicom\"; "
                      "boundary=" BOUNDARY "\r\n"
                      "Accept: application/dicom+json\r\nUser-Agent: tessera-bench\r\n"
                      "%sContent-Length: %llu\r\n\r\n",
                      c->prefix, rel, c->host, c->port, auth_header(), (unsigned long long)total);
    if (hn <= 0 || (size_t)hn >= sizeof req) {
        return -1;
    }
    if (c->fd < 0 && hc_connect(c) != 0) {
        return -1;
    }
    if (hc_send(c, req, (size_t)hn, 1) != 0) {
        /* a stale keep-alive connection: reconnect once, nothing of the body was sent */
        hc_close(c);
        if (hc_connect(c) != 0 || hc_send(c, req, (size_t)hn, 1) != 0) {
            return -1;
        }
        c->reconnects++;
    }
    for (int i = 0; i < n; i++) {
        if (hc_send(c, part_hdr, sizeof part_hdr - 1, 1) != 0) {
            return -1;
        }
        int fd = open(files[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "httpc: cannot open %s: %s\n", files[i], strerror(errno));
            return -1;
        }
        off_t off = 0;
        while ((uint64_t)off < sizes[i]) {
            ssize_t w = sendfile(c->fd, fd, &off, (size_t)(sizes[i] - (uint64_t)off));
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w <= 0) {
                close(fd);
                return -1;
            }
        }
        close(fd);
        if (hc_send(c, "\r\n", 2, 1) != 0) {
            return -1;
        }
    }
    if (hc_send(c, tail, sizeof tail - 1, 0) != 0) {
        return -1;
    }
    int rc = hc_response(c, r);
    if (rc != 0) {
        hc_close(c);
        return -1;
    }
    return 0;
}

void
hc_resp_free(hc_resp *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}
