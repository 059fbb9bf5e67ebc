/* SPDX-License-Identifier: MIT */
/* fuzz_config.c: the option table's parsers (cli/config.c): a hostile config file through
 * `--config FILE`, then the same bytes, one argument per line, as a command line. The file is a
 * memfd read through /proc/self/fd, so no disk is touched. The table mirrors `tessera serve`'s
 * kinds (strings, bounded integers, flags). Checked: a successful parse leaves every option set
 * (default, file or command line), integers within their bounds and values NUL-terminated.
 * cfg_parse reports errors on stderr and --help on stdout; run the fuzzer with
 * -close_fd_mask=3 to keep its output readable. */
#define _GNU_SOURCE /* memfd_create */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

static void
table(cfg_option *o)
{
    const cfg_option t[] = {
        CFG("data", CFG_STRING, "", 0, 0, "data directory"),
        CFG("listen", CFG_STRING, "127.0.0.1:8080", 0, 0, "address:port"),
        CFG("threads", CFG_LONG, "128", 1, 4096, "connection threads"),
        CFG("max-upload-mb", CFG_LONG, "2048", 1, 1 << 20, "largest STOW-RS body"),
        CFG("log-level", CFG_LONG, "2", 0, 3, "log level"),
        CFG("cache-mb", CFG_LONG, "512", 0, 1 << 20, "cache budget"),
        CFG("verbose", CFG_FLAG, "no", 0, 0, "a flag"),
    };
    memcpy(o, t, sizeof t);
}
#define N_OPTS 7

static void
check(cfg_option *o, int rc)
{
    CHECK(rc == 0 || rc == 1 || rc == 2);
    if (rc != 0) {
        return;
    }
    for (int i = 0; i < N_OPTS; i++) {
        CHECK(memchr(o[i].value, '\0', sizeof o[i].value) != NULL);
        CHECK(o[i].set_by >= 0 && o[i].set_by <= 2);
        if (o[i].kind == CFG_LONG) {
            CHECK(o[i].num >= o[i].lo && o[i].num <= o[i].hi);
        } else if (o[i].kind == CFG_FLAG) {
            CHECK(o[i].num == 0 || o[i].num == 1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cfg_option o[N_OPTS];
    char *pos[4];
    int n_pos = 0;

    /* 1. The bytes as a config file. */
    int fd = memfd_create("fuzz_config", 0);
    CHECK(fd >= 0);
    CHECK(write(fd, data, size) == (ssize_t)size);
    char path[64], arg0[] = "serve", arg1[] = "--config";
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    char *argv[] = {arg0, arg1, path, NULL};
    table(o);
    check(o, cfg_parse(o, N_OPTS, 3, argv, "usage", pos, 4, &n_pos));
    close(fd);

    /* 2. The bytes as a command line, one argument per line ("--config" lines dropped: they
     * would name arbitrary files). */
    char *s = malloc(size + 1);
    CHECK(s);
    memcpy(s, data, size);
    s[size] = '\0';
    char *args[66];
    int argc = 0;
    args[argc++] = arg0;
    for (char *line = s; line && argc < 65;) {
        char *nl = strchr(line, '\n');
        if (nl) {
            *nl = '\0';
        }
        if (!strstr(line, "config")) {
            args[argc++] = line;
        }
        line = nl ? nl + 1 : NULL;
    }
    args[argc] = NULL;
    table(o);
    n_pos = 0;
    int rc = cfg_parse(o, N_OPTS, argc, args, "usage", pos, 4, &n_pos);
    check(o, rc);
    CHECK(n_pos >= 0 && n_pos <= 4);
    free(s);
    return 0;
}
