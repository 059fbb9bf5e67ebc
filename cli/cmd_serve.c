/* SPDX-License-Identifier: MIT */
/* cmd_serve.c: `tessera serve`: opens the store and serves DICOMweb until SIGINT/SIGTERM. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "config.h"
#include "http.h"
#include "store.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char k_usage[] =
    "usage: tessera serve --data DIR [options]\n"
    "\n"
    "Serves the studies stored under DIR over DICOMweb (QIDO-RS, WADO-RS, STOW-RS, rendered and\n"
    "thumbnail resources) at /dicomweb, and the viewer's static files. Stops cleanly on SIGINT or\n"
    "SIGTERM, letting requests in flight finish.\n"
    "\n"
    "Every study is behind a sign-in, a share link or an API token. At the first start of a data\n"
    "directory the user \"admin\" is created and its password printed once. The environment\n"
    "variable TESSERA_ADMIN_TOKEN, when set, is a bearer token with the admin scope (for\n"
    "automation; it is read at start and removed from the environment).\n";

int
cli_serve(int argc, char **argv)
{
    cfg_option opts[] = {
        CFG("data", CFG_STRING, "", 0, 0, "data directory (index and instance files); required"),
        CFG("listen", CFG_STRING, "127.0.0.1:8080", 0, 0,
            "address:port to listen on (CivetWeb syntax; port 0 picks a free port)"),
        CFG("web-root", CFG_STRING, "", 0, 0, "folder of static files served at / (the viewer)"),
        CFG("public-url", CFG_STRING, "", 0, 0,
            "base URL of /dicomweb in responses (default: from each request's Host header)"),
        CFG("cors-origins", CFG_STRING, "", 0, 0,
            "comma-separated origins allowed to call the API from a browser, or * (default: none)"),
        CFG("threads", CFG_LONG, "128", 1, 4096,
            "connection threads: a keep-alive connection holds one, so this bounds the clients "
            "served at once (rendering itself runs on one thread per core)"),
        CFG("max-upload-mb", CFG_LONG, "2048", 1, 1 << 20, "largest STOW-RS request body, MiB"),
        CFG("max-instance-mb", CFG_LONG, "1024", 1, 1 << 20, "largest single instance, MiB"),
        CFG("qido-max", CFG_LONG, "1000", 1, 1000000, "most results in one QIDO-RS response"),
        CFG("thumbnail-size", CFG_LONG, "192", 16, 1024, "thumbnail box in pixels"),
        CFG("request-timeout-ms", CFG_LONG, "30000", 100, 3600000,
            "time a connection may stay silent"),
        CFG("cache-mb", CFG_LONG, "512", 0, 1 << 20,
            "one memory budget for every image cache (parsed files, decoded frames, rendered "
            "frames, encoded tiles), MiB"),
        CFG("tile-size", CFG_LONG, "256", 16, 4096, "tile side in pixels"),
        CFG("prefetch", CFG_LONG, "4", 0, 64,
            "instances decoded ahead on each side of a newly viewed one (0: off)"),
        CFG("tls-cert", CFG_STRING, "", 0, 0,
            "PEM file holding the server certificate and its private key: serve HTTPS only "
            "(with HSTS and Secure cookies)"),
        CFG("session-hours", CFG_LONG, "12", 1, 24 * 30, "lifetime of a sign-in, hours"),
        CFG("share-max-days", CFG_LONG, "30", 1, 3650, "longest expiry of a share link, days"),
        CFG("log-level", CFG_LONG, "2", 0, 3, "0 errors, 1 warnings, 2 info, 3 debug"),
    };
    int n = (int)(sizeof opts / sizeof opts[0]);
    char *pos[1];
    int n_pos;
    int rc = cfg_parse(opts, n, argc, argv, k_usage, pos, 0, &n_pos);
    if (rc) {
        return rc == 1 ? 0 : 2;
    }
    if (!cfg_get(opts, n, "data")->value[0]) {
        fprintf(stderr, "tessera serve: --data DIR is required (try --help)\n");
        return 2;
    }
    tsr_log_level = (int)cfg_get(opts, n, "log-level")->num;

    /* Signals are taken by sigwait below, so no thread is interrupted by them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* past a file-size limit a write must fail (EFBIG -> 507), not kill the server */
    signal(SIGXFSZ, SIG_IGN);

    store_opts so = {0};
    so.dir = cfg_get(opts, n, "data")->value;
    so.max_instance = (uint64_t)cfg_get(opts, n, "max-instance-mb")->num << 20;
    store *st = NULL;
    tsr_err err = {0};
    if (store_open(&so, &st, &err) != TSR_OK) {
        fprintf(stderr, "tessera serve: %s\n", err.msg);
        return 1;
    }
    char first_pw[64];
    if (http_bootstrap_admin(st, first_pw, sizeof first_pw, &err) != TSR_OK) {
        fprintf(stderr, "tessera serve: cannot create the first user: %s\n", err.msg);
        store_close(st);
        return 1;
    }
    http_opts ho = {0};
    /* the admin token lives in this process only as a hash (http_start) */
    char *env_token = getenv("TESSERA_ADMIN_TOKEN");
    char admin_token[256] = "";
    if (env_token && env_token[0]) {
        if (strlen(env_token) < 16 || strlen(env_token) >= sizeof admin_token) {
            fprintf(stderr, "tessera serve: TESSERA_ADMIN_TOKEN must have 16 to 255 characters\n");
            store_close(st);
            return 2;
        }
        snprintf(admin_token, sizeof admin_token, "%s", env_token);
        unsetenv("TESSERA_ADMIN_TOKEN");
        ho.admin_token = admin_token;
    }
    ho.tls_cert =
        cfg_get(opts, n, "tls-cert")->value[0] ? cfg_get(opts, n, "tls-cert")->value : NULL;
    ho.session_hours = (int)cfg_get(opts, n, "session-hours")->num;
    ho.share_max_days = cfg_get(opts, n, "share-max-days")->num;
    ho.listen = cfg_get(opts, n, "listen")->value;
    ho.web_root = cfg_get(opts, n, "web-root")->value;
    ho.public_url = cfg_get(opts, n, "public-url")->value[0] ? cfg_get(opts, n, "public-url")->value
                                                             : NULL;
    ho.cors_origins = cfg_get(opts, n, "cors-origins")->value;
    ho.threads = (int)cfg_get(opts, n, "threads")->num;
    ho.max_upload = (uint64_t)cfg_get(opts, n, "max-upload-mb")->num << 20;
    ho.qido_max = cfg_get(opts, n, "qido-max")->num;
    ho.thumbnail_size = (int)cfg_get(opts, n, "thumbnail-size")->num;
    ho.request_timeout_ms = (int)cfg_get(opts, n, "request-timeout-ms")->num;
    ho.cache_bytes = (size_t)cfg_get(opts, n, "cache-mb")->num << 20;
    ho.tile_size = (int)cfg_get(opts, n, "tile-size")->num;
    ho.prefetch = (int)cfg_get(opts, n, "prefetch")->num;
    http_server *srv = NULL;
    rc = http_start(&ho, st, &srv, &err);
    memset(admin_token, 0, sizeof admin_token);
    if (rc != TSR_OK) {
        fprintf(stderr, "tessera serve: %s\n", err.msg);
        store_close(st);
        return 1;
    }
    if (first_pw[0]) {
        printf("tessera: first start: user \"admin\" created with password %s (shown once; "
               "change it with 'tessera user passwd --data DIR admin')\n",
               first_pw);
        memset(first_pw, 0, sizeof first_pw);
    }
    long studies = 0, instances = 0;
    store_counts(st, &studies, NULL, &instances, NULL);
    const char *listen = ho.listen;
    const char *colon = strrchr(listen, ':');
    char host[256];
    snprintf(host, sizeof host, "%.*s", colon ? (int)(colon - listen) : 0, listen);
    if (!host[0] || strcmp(host, "0.0.0.0") == 0) {
        snprintf(host, sizeof host, "127.0.0.1");
    }
    const char *scheme = ho.tls_cert ? "https" : "http";
    printf("tessera: serving %ld studies (%ld instances) from %s\n"
           "tessera: listening on %s://%s:%d/  (DICOMweb at %s://%s:%d/dicomweb)\n",
           studies, instances, store_dir(st), scheme, host, http_port(srv), scheme, host,
           http_port(srv));
    fflush(stdout);

    int sig = 0;
    sigwait(&set, &sig);
    printf("tessera: %s received, finishing requests in flight\n",
           sig == SIGINT ? "SIGINT" : "SIGTERM");
    fflush(stdout);
    /* requests in handlers (an upload half sent, a render) finish; new ones get 503 */
    int left = http_drain(srv, 30000);
    if (left > 0) {
        printf("tessera: %d request(s) still running after 30 s; stopping anyway\n", left);
    }
    http_stop(srv);
    store_close(st);
    printf("tessera: stopped\n");
    return 0;
}
