/* SPDX-License-Identifier: MIT */
/* bench_render_http.c: rendered frames and tiles over HTTP under N concurrent keep-alive
 * connections, against Tessera or any other server (the peer, Orthanc), with the client shared
 * with bench_store (httpc.c). A program, never a test.
 *
 *   bench_render_http run --base URL --urls FILE --scenario NAME --conc N
 *                         [--duration S | --requests N] [--warm] [--mode rotate|window|same]
 *                         [--inm] [--pid PID] [--label NAME] [--tsv FILE] [--accept TYPE]
 *       URL = base + one line of FILE (paths relative to the base, e.g. the DICOMweb root).
 *       rotate: request k (over all threads) fetches line k mod lines;
 *       window: the same, plus "window=40,W,linear", appended with '?' or '&', where W cycles
 *               through the realistic widths 200..1999 and carries a fraction that is unique
 *               to this run and cycle (run id from the clock): W = 200 + k mod 1800 +
 *               (run * 1000 + k / 1800) * 1e-9. So no request of this run nor of an earlier
 *               run on the same server reuses a window, and the images stay ordinary CT
 *               images. (An earlier version used W = 100 + k from 0 in every run: a second
 *               run on the same server hit the encoded cache of the first, and widths grew
 *               into flat, cheap-to-encode images.)
 *       same:   the first line, every time; with --inm the ETag of a first response is sent
 *               back as If-None-Match and every response must be 304.
 *       --warm: one unrecorded pass over every line first (the frames are then decoded and
 *               cached by a server that caches); --requests N stops after N requests (the
 *               cold scenario uses one pass), else --duration S seconds (default 5).
 *       --pid PID: the server's process; its peak RSS (VmHWM) is reset before the point
 *               (/proc/PID/clear_refs, 5) when allowed and read after it.
 *       The environment variable TESSERA_TOKEN, when set, is sent as a bearer token with every
 *       request (Tessera's access control; the scripts set it for Tessera only).
 *   bench_render_http report TSV [--svg FILE] [--peer NAME]
 *       one table of every scenario x concurrency, Tessera and the peer side by side with the
 *       ratio Tessera/peer of requests/s and of p99; the SVG chart (requests/s and p99 against
 *       concurrency, one line per server and scenario).
 *
 * TSV rows: label, scenario, conc, requests, seconds, req/s, p50 ms, p99 ms, mean bytes,
 * errors, peak RSS kB (VmHWM, -1 unknown), RSS kB after. benchmarks/bench_render_http.sh runs
 * everything, Tessera and Orthanc, in one run. */
#define _GNU_SOURCE
#define BENCH_NAME "bench_render_http"
#include "bench_util.h"
#include "httpc.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- run */

enum { MODE_ROTATE, MODE_WINDOW, MODE_SAME };

typedef struct cfg {
    const char *base, *urls_file, *scenario, *label, *tsv, *accept;
    int conc, mode, inm, warm;
    long requests; /* > 0: stop after this many */
    double duration;
    long pid;
    long run_id; /* window mode: makes this run's windows unique */
    char **urls;
    size_t n_urls;
    char etag[160];
} cfg;

typedef struct worker {
    const cfg *c;
    pthread_t th;
    double *lat;
    size_t n, cap;
    double bytes;
    long errors;
    char first_error[256];
} worker;

static atomic_long g_next;
static double g_deadline;

static void
read_lines(cfg *c)
{
    FILE *f = fopen(c->urls_file, "r");
    if (!f) {
        die("cannot read %s: %s", c->urls_file, strerror(errno));
    }
    char line[4096];
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#') {
            continue;
        }
        if (c->n_urls == cap) {
            cap = cap ? 2 * cap : 256;
            c->urls = realloc(c->urls, cap * sizeof *c->urls);
            if (!c->urls) {
                die("out of memory");
            }
        }
        c->urls[c->n_urls++] = strdup(line);
    }
    fclose(f);
    if (c->n_urls == 0) {
        die("%s holds no URL", c->urls_file);
    }
}

/* The relative URL of request k. */
static void
url_of(const cfg *c, long k, char *out, size_t cap)
{
    if (c->mode == MODE_SAME) {
        snprintf(out, cap, "%s", c->urls[0]);
        return;
    }
    const char *u = c->urls[(size_t)k % c->n_urls];
    if (c->mode == MODE_WINDOW) {
        double w = 200.0 + (double)(k % 1800) + (double)(c->run_id * 1000 + k / 1800) * 1e-9;
        snprintf(out, cap, "%s%swindow=40,%.9f,linear", u, strchr(u, '?') ? "&" : "?", w);
    } else {
        snprintf(out, cap, "%s", u);
    }
}

static void
worker_fail(worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
worker_fail(worker *w, const char *fmt, ...)
{
    if (w->errors++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->first_error, sizeof w->first_error, fmt, ap);
        va_end(ap);
    }
}

static void *
worker_main(void *arg)
{
    worker *w = arg;
    const cfg *c = w->c;
    hc h;
    if (hc_init(&h, c->base) != 0) {
        die("bad base URL %s", c->base);
    }
    hc_resp r = {0};
    char hdr[256] = "";
    if (c->inm) {
        snprintf(hdr, sizeof hdr, "If-None-Match: %s\r\n", c->etag);
    }
    int want = c->inm ? 304 : 200;
    for (;;) {
        long k = atomic_fetch_add(&g_next, 1);
        if (c->requests > 0 ? k >= c->requests : now_s() >= g_deadline) {
            break;
        }
        char rel[4096];
        url_of(c, k, rel, sizeof rel);
        double t0 = now_s();
        int rc = hc_get_h(&h, rel, c->accept, c->inm ? hdr : NULL, &r);
        double ms = (now_s() - t0) * 1e3;
        if (rc != 0) {
            worker_fail(w, "GET %s: connection failed", rel);
            hc_close(&h);
            usleep(10000);
            continue;
        }
        if (r.status != want) {
            worker_fail(w, "GET %s: HTTP %d (want %d): %.120s", rel, r.status, want,
                        r.body ? r.body : "");
            continue;
        }
        if (want == 200 && strncasecmp(r.ctype, "image/", 6) != 0) {
            worker_fail(w, "GET %s: Content-Type %s", rel, r.ctype);
            continue;
        }
        if (w->n == w->cap) {
            w->cap = w->cap ? 2 * w->cap : 4096;
            w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
            if (!w->lat) {
                die("out of memory");
            }
        }
        w->lat[w->n++] = ms;
        w->bytes += (double)r.len;
    }
    hc_resp_free(&r);
    hc_free(&h);
    return NULL;
}

/* VmHWM / VmRSS of pid in kB, -1 when unknown. */
static void
proc_mem(long pid, long *hwm, long *rss)
{
    *hwm = *rss = -1;
    if (pid <= 0) {
        return;
    }
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        return;
    }
    while (fgets(line, sizeof line, f)) {
        sscanf(line, "VmHWM: %ld", hwm);
        sscanf(line, "VmRSS: %ld", rss);
    }
    fclose(f);
}

/* Resets the peak RSS of pid to its current RSS (Linux >= 4.0, needs ptrace rights). */
static int
reset_hwm(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/clear_refs", pid);
    FILE *f = fopen(path, "w");
    if (!f) {
        return -1;
    }
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Fetches every line once on `conc` connections (unrecorded), to decode and cache them. */
static void
warm_pass(cfg *c)
{
    cfg w = *c;
    w.mode = MODE_ROTATE;
    w.inm = 0;
    w.requests = (long)c->n_urls;
    worker *ws = calloc((size_t)c->conc, sizeof *ws);
    atomic_store(&g_next, 0);
    int conc = c->conc < 16 ? c->conc : 16;
    for (int i = 0; i < conc; i++) {
        ws[i].c = &w;
        pthread_create(&ws[i].th, NULL, worker_main, &ws[i]);
    }
    long errors = 0;
    for (int i = 0; i < conc; i++) {
        pthread_join(ws[i].th, NULL);
        errors += ws[i].errors;
        if (ws[i].errors) {
            fprintf(stderr, "  warm-up: %s\n", ws[i].first_error);
        }
        free(ws[i].lat);
    }
    free(ws);
    if (errors) {
        die("warm-up: %ld errors", errors);
    }
}

static int
cmd_run(cfg *c)
{
    if (!c->base || !c->urls_file || !c->scenario) {
        die("run needs --base, --urls and --scenario");
    }
    read_lines(c);
    if (c->warm) {
        warm_pass(c);
    }
    if (c->inm) {
        hc h;
        hc_resp r = {0};
        if (hc_init(&h, c->base) != 0 || hc_get(&h, c->urls[0], c->accept, &r) != 0 ||
            r.status != 200 || !r.etag[0]) {
            die("--inm: GET %s gave no ETag (HTTP %d)", c->urls[0], r.status);
        }
        snprintf(c->etag, sizeof c->etag, "%s", r.etag);
        hc_resp_free(&r);
        hc_free(&h);
    }
    int hwm_reset = c->pid > 0 && reset_hwm(c->pid) == 0;
    worker *ws = calloc((size_t)c->conc, sizeof *ws);
    atomic_store(&g_next, 0);
    double t0 = now_s();
    g_deadline = t0 + c->duration;
    for (int i = 0; i < c->conc; i++) {
        ws[i].c = c;
        if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) != 0) {
            die("pthread_create failed");
        }
    }
    size_t n = 0;
    double bytes = 0;
    long errors = 0;
    for (int i = 0; i < c->conc; i++) {
        pthread_join(ws[i].th, NULL);
        n += ws[i].n;
    }
    double secs = now_s() - t0;
    double *lat = malloc((n ? n : 1) * sizeof *lat);
    size_t k = 0;
    for (int i = 0; i < c->conc; i++) {
        memcpy(lat + k, ws[i].lat, ws[i].n * sizeof *lat);
        k += ws[i].n;
        bytes += ws[i].bytes;
        if (ws[i].errors && errors == 0) {
            fprintf(stderr, "  %s/%s c=%d: first error: %s\n", c->label, c->scenario, c->conc,
                    ws[i].first_error);
        }
        errors += ws[i].errors;
        free(ws[i].lat);
    }
    free(ws);
    qsort(lat, n, sizeof *lat, cmp_double);
    double rps = (double)n / secs, p50 = pct(lat, n, 0.5), p99 = pct(lat, n, 0.99);
    long hwm, rss;
    proc_mem(c->pid, &hwm, &rss);
    printf("  %-9s %-22s c=%-3d n=%-6zu %6.2f s %9.1f req/s  p50 %8.2f ms  p99 %8.2f ms  "
           "%7.0f B",
           c->label, c->scenario, c->conc, n, secs, rps, p50, p99, n ? bytes / (double)n : 0);
    if (hwm >= 0) {
        printf("  peak RSS %ld MB%s", hwm >> 10, hwm_reset ? "" : " (since start)");
    }
    if (errors) {
        printf("  ERRORS %ld", errors);
    }
    printf("\n");
    fflush(stdout);
    if (c->tsv) {
        FILE *f = fopen(c->tsv, "a");
        if (!f) {
            die("cannot append to %s: %s", c->tsv, strerror(errno));
        }
        fprintf(f, "%s\t%s\t%d\t%zu\t%.3f\t%.2f\t%.3f\t%.3f\t%.0f\t%ld\t%ld\t%ld\n", c->label,
                c->scenario, c->conc, n, secs, rps, p50, p99, n ? bytes / (double)n : 0, errors,
                hwm, rss);
        fclose(f);
    }
    free(lat);
    return errors ? 3 : 0;
}

/* ---------------------------------------------------------------- report */

typedef struct trow {
    char label[32], scenario[48];
    int conc;
    long n, errors, hwm;
    double secs, rps, p50, p99, bytes;
} trow;

static trow *
read_tsv(const char *path, int *count)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        die("cannot read %s: %s", path, strerror(errno));
    }
    trow *v = NULL;
    int n = 0, cap = 0;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            v = realloc(v, (size_t)cap * sizeof *v);
            if (!v) {
                die("out of memory");
            }
        }
        trow *r = &v[n];
        long rss;
        if (sscanf(line, "%31[^\t]\t%47[^\t]\t%d\t%ld\t%lf\t%lf\t%lf\t%lf\t%lf\t%ld\t%ld\t%ld",
                   r->label, r->scenario, &r->conc, &r->n, &r->secs, &r->rps, &r->p50, &r->p99,
                   &r->bytes, &r->errors, &r->hwm, &rss) == 12) {
            n++;
        }
    }
    fclose(f);
    *count = n;
    return v;
}

static const trow *
find_row(const trow *v, int n, const char *label, const char *scenario, int conc)
{
    const trow *hit = NULL;
    for (int i = 0; i < n; i++) {
        if (strcmp(v[i].label, label) == 0 && strcmp(v[i].scenario, scenario) == 0 &&
            v[i].conc == conc) {
            hit = &v[i]; /* the last one wins */
        }
    }
    return hit;
}

/* Scenarios in order of first appearance. */
static int
scenarios(const trow *v, int n, const char *out[], int max)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < k; j++) {
            seen |= strcmp(out[j], v[i].scenario) == 0;
        }
        if (!seen && k < max) {
            out[k++] = v[i].scenario;
        }
    }
    return k;
}

static void
svg_chart(FILE *f, const trow *v, int n, const char *peer, const char *sc[], int nsc)
{
    static const char *const colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                          "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                          "#bcbd22", "#17becf", "#393b79", "#637939"};
    static const int concs[] = {1, 16, 64};
    const char *labels[2] = {"tessera", peer};
    const int W = 560, H = 420, ML = 70, MR = 20, MT = 40, MB = 50;
    int legend_h = 18 * (nsc * 2 + 1);
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            2 * W + 20, H + legend_h + 20);
    for (int panel = 0; panel < 2; panel++) {
        int x0 = panel * (W + 20);
        double lo = INFINITY, hi = 0;
        for (int i = 0; i < n; i++) {
            double y = panel == 0 ? v[i].rps : v[i].p99;
            if (y > 0) {
                lo = fmin(lo, y);
                hi = fmax(hi, y);
            }
        }
        if (!(hi > 0)) {
            lo = 1, hi = 10;
        }
        double llo = floor(log10(lo)), lhi = ceil(log10(hi));
        if (lhi <= llo) {
            lhi = llo + 1;
        }
        int pw = W - ML - MR, ph = H - MT - MB;
        fprintf(f, "<g transform=\"translate(%d,0)\">\n", x0);
        fprintf(f, "<text x=\"%d\" y=\"22\" font-size=\"15\" font-weight=\"bold\">%s</text>\n", ML,
                panel == 0 ? "requests/s vs concurrency (log scale)"
                           : "p99 latency (ms) vs concurrency (log scale)");
        fprintf(f,
                "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
                "stroke=\"#444\"/>\n",
                ML, MT, pw, ph);
        for (double e = llo; e <= lhi + 1e-9; e += 1) {
            for (int m = 1; m < 10; m++) {
                double lv = e + log10(m);
                if (lv > lhi + 1e-9) {
                    break;
                }
                double y = MT + ph - (lv - llo) / (lhi - llo) * ph;
                fprintf(f,
                        "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", ML,
                        ML + pw, y, y, m == 1 ? "#bbb" : "#eee");
                if (m == 1) {
                    fprintf(f,
                            "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", ML - 6,
                            y + 4, pow(10, e));
                }
            }
        }
        for (int ci = 0; ci < 3; ci++) {
            double x = ML + pw * (0.08 + 0.84 * ci / 2.0);
            fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", x,
                    MT + ph + 18, concs[ci]);
        }
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">concurrent connections</text>\n",
                ML + pw / 2, MT + ph + 38);
        for (int s = 0; s < nsc; s++) {
            for (int l = 0; l < 2; l++) {
                char pts[512] = "";
                size_t used = 0;
                for (int ci = 0; ci < 3; ci++) {
                    const trow *r = find_row(v, n, labels[l], sc[s], concs[ci]);
                    double y = r ? (panel == 0 ? r->rps : r->p99) : 0;
                    if (!(y > 0)) {
                        continue;
                    }
                    double px = ML + pw * (0.08 + 0.84 * ci / 2.0);
                    double py = MT + ph - (log10(y) - llo) / (lhi - llo) * ph;
                    used += (size_t)snprintf(pts + used, sizeof pts - used, "%.1f,%.1f ", px, py);
                    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", px, py,
                            colours[s % 12]);
                }
                if (used) {
                    fprintf(f,
                            "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" "
                            "stroke-width=\"2\"%s/>\n",
                            pts, colours[s % 12], l ? " stroke-dasharray=\"6,4\"" : "");
                }
            }
        }
        fprintf(f, "</g>\n");
    }
    int y = H + 10;
    fprintf(f, "<text x=\"%d\" y=\"%d\">solid: Tessera, dashed: %s</text>\n", ML, y, peer);
    for (int s = 0; s < nsc; s++) {
        y += 18;
        fprintf(f,
                "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"%s\" "
                "stroke-width=\"3\"/><text x=\"%d\" y=\"%d\">%s</text>\n",
                ML, ML + 30, y - 4, y - 4, colours[s % 12], ML + 38, y, sc[s]);
    }
    fprintf(f, "</svg>\n");
}

static int
cmd_report(const char *tsv, const char *svg, const char *peer)
{
    int n;
    trow *v = read_tsv(tsv, &n);
    const char *sc[32];
    int nsc = scenarios(v, n, sc, 32);
    printf("\n%-24s %4s | %9s %8s %8s %6s | %9s %8s %8s %6s | %7s %7s\n", "scenario", "conc",
           "tessera/s", "p50 ms", "p99 ms", "RSS MB", "peer/s", "p50 ms", "p99 ms", "RSS MB",
           "rps T/P", "p99 T/P");
    for (int s = 0; s < nsc; s++) {
        int concs[16], nc = 0;
        for (int i = 0; i < n; i++) {
            if (strcmp(v[i].scenario, sc[s]) != 0) {
                continue;
            }
            int seen = 0;
            for (int j = 0; j < nc; j++) {
                seen |= concs[j] == v[i].conc;
            }
            if (!seen && nc < 16) {
                concs[nc++] = v[i].conc;
            }
        }
        for (int ci = 0; ci < nc; ci++) {
            const trow *t = find_row(v, n, "tessera", sc[s], concs[ci]);
            const trow *o = find_row(v, n, peer, sc[s], concs[ci]);
            long te = t ? t->errors : 0, oe = o ? o->errors : 0;
            t = t && t->n > 0 ? t : NULL; /* a point that failed entirely shows as "-" */
            o = o && o->n > 0 ? o : NULL;
            printf("%-24s %4d |", sc[s], concs[ci]);
            if (t) {
                printf(" %9.1f %8.2f %8.2f %6ld |", t->rps, t->p50, t->p99,
                       t->hwm >= 0 ? t->hwm >> 10 : -1);
            } else {
                printf(" %9s %8s %8s %6s |", "-", "-", "-", "-");
            }
            if (o) {
                printf(" %9.1f %8.2f %8.2f %6ld |", o->rps, o->p50, o->p99,
                       o->hwm >= 0 ? o->hwm >> 10 : -1);
            } else {
                printf(" %9s %8s %8s %6s |", "-", "-", "-", "-");
            }
            if (t && o && o->rps > 0 && o->p99 > 0) {
                printf(" %7.2f %7.2f", t->rps / o->rps, t->p99 / o->p99);
            } else {
                printf(" %7s %7s", "-", "-");
            }
            if (te || oe) {
                printf("  errors %ld/%ld", te, oe);
            }
            printf("\n");
        }
    }
    printf("rps T/P: Tessera requests/s over %s's (>1: Tessera faster); p99 T/P: Tessera p99 over "
           "%s's (<1: Tessera better). RSS: server VmHWM during the point.\n",
           peer, peer);
    if (svg) {
        FILE *f = fopen(svg, "w");
        if (!f) {
            die("cannot write %s: %s", svg, strerror(errno));
        }
        svg_chart(f, v, n, peer, sc, nsc);
        fclose(f);
        printf("chart: %s\n", svg);
    }
    free(v);
    return 0;
}

/* ---------------------------------------------------------------- main */

static const char k_usage[] =
    "usage: bench_render_http run --base URL --urls FILE --scenario NAME --conc N\n"
    "                         [--duration S | --requests N] [--warm] [--mode rotate|window|same]\n"
    "                         [--inm] [--pid PID] [--label NAME] [--tsv FILE] [--accept TYPE]\n"
    "       bench_render_http report TSV [--svg FILE] [--peer NAME]\n"
    "Environment: TESSERA_TOKEN, a bearer token sent with every request (unset: none).\n"
    "See the comment at the top of bench_render_http.c and benchmarks/bench_render_http.sh.\n";

int
main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    cfg c = {.label = "tessera", .accept = "image/jpeg", .conc = 1, .duration = 5};
    c.run_id = (long)(now_s() * 10.0) % 100000; /* tenths of a second: one id per run */
    const char *pos[2] = {0}, *svg = NULL, *peer = "orthanc";
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0) {
            fputs(k_usage, stdout);
            return 0;
        }
        if (strcmp(a, "--warm") == 0) {
            c.warm = 1;
            continue;
        }
        if (strcmp(a, "--inm") == 0) {
            c.inm = 1;
            continue;
        }
        if (a[0] == '-' && a[1] == '-') {
            const char *v = i + 1 < argc ? argv[++i] : NULL;
            if (!v) {
                die("%s needs a value", a);
            }
            if (strcmp(a, "--base") == 0) {
                c.base = v;
            } else if (strcmp(a, "--urls") == 0) {
                c.urls_file = v;
            } else if (strcmp(a, "--scenario") == 0) {
                c.scenario = v;
            } else if (strcmp(a, "--label") == 0) {
                c.label = v;
            } else if (strcmp(a, "--tsv") == 0) {
                c.tsv = v;
            } else if (strcmp(a, "--accept") == 0) {
                c.accept = v;
            } else if (strcmp(a, "--conc") == 0) {
                c.conc = atoi(v);
            } else if (strcmp(a, "--duration") == 0) {
                c.duration = atof(v);
            } else if (strcmp(a, "--requests") == 0) {
                c.requests = atol(v);
            } else if (strcmp(a, "--pid") == 0) {
                c.pid = atol(v);
            } else if (strcmp(a, "--svg") == 0) {
                svg = v;
            } else if (strcmp(a, "--peer") == 0) {
                peer = v;
            } else if (strcmp(a, "--mode") == 0) {
                c.mode = strcmp(v, "window") == 0 ? MODE_WINDOW
                         : strcmp(v, "same") == 0 ? MODE_SAME
                         : strcmp(v, "rotate") == 0
                             ? MODE_ROTATE
                             : (die("--mode: rotate, window or same"), 0);
            } else {
                die("unknown option %s\n%s", a, k_usage);
            }
        } else if (n_pos < 2) {
            pos[n_pos++] = a;
        } else {
            die("too many arguments\n%s", k_usage);
        }
    }
    if (c.conc < 1 || c.conc > 1024 || !(c.duration > 0) || c.requests < 0) {
        die("option out of range");
    }
    if (c.inm && c.mode != MODE_SAME) {
        die("--inm needs --mode same");
    }
    const char *cmd = pos[0] ? pos[0] : "";
    if (strcmp(cmd, "run") == 0 && n_pos == 1) {
        return cmd_run(&c);
    }
    if (strcmp(cmd, "report") == 0 && n_pos == 2) {
        return cmd_report(pos[1], svg, peer);
    }
    fputs(k_usage, stderr);
    return 2;
}
