/* SPDX-License-Identifier: MIT */
/* cmd_import.c: `tessera import`: files and folders (recursive) into the store, in batches of
 * one transaction each, with progress on a terminal and a summary of every refused file. */
#define _GNU_SOURCE
#include "cli.h"
#include "config.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char k_usage[] =
    "usage: tessera import --data DIR PATH...\n"
    "\n"
    "Stores DICOM files into the store under DIR. Each PATH is a file or a folder, walked\n"
    "recursively. Files already stored with the same bytes are counted as such; files that are\n"
    "not valid DICOM images are refused and listed at the end with the reason. A DICOMDIR\n"
    "is an index, not an instance: its folder is walked instead.\n"
    "\n"
    "Exit status: 0 when every file was stored, 1 when some were refused, 2 for bad options.\n";

typedef struct imp {
    store *st;
    store_batch *b;
    int batch_n, batch_max;
    long files, stored, already, refused;
    uint64_t bytes;
    uint64_t t0, last_print;
    int tty;
    FILE *refusals; /* a temporary file of "path\treason" lines */
    int fatal;
    char fatal_msg[300];
} imp;

static void
progress(imp *m, int final)
{
    uint64_t now = tsr_now_ns();
    if (!final && (!m->tty || now - m->last_print < 250000000ull)) {
        return;
    }
    m->last_print = now;
    double s = (double)(now - m->t0) / 1e9;
    fprintf(stderr, "%s%ld files, %.1f MB, %.0f files/s, %.1f MB/s, %ld refused%s",
            m->tty ? "\r" : "", m->files, (double)m->bytes / 1e6, s > 0 ? (double)m->files / s : 0,
            s > 0 ? (double)m->bytes / 1e6 / s : 0, m->refused, m->tty && !final ? "   " : "\n");
}

static void
flush_batch(imp *m)
{
    if (!m->b) {
        return;
    }
    tsr_err err = {0};
    int rc = store_batch_commit(m->b, &err);
    int n;
    const store_result *r = store_batch_results(m->b, &n);
    for (int i = 0; i < n; i++) {
        if (r[i].kind == STORE_STORED) {
            m->stored++;
        } else if (r[i].kind == STORE_ALREADY) {
            m->already++;
        } else {
            m->refused++;
            fprintf(m->refusals, "%s\t%s\n", r[i].name, r[i].message);
        }
    }
    if (rc != TSR_OK) {
        m->fatal = 1;
        snprintf(m->fatal_msg, sizeof m->fatal_msg, "%s", err.msg);
    }
    m->bytes += store_batch_bytes(m->b);
    store_batch_free(m->b);
    m->b = NULL;
    m->batch_n = 0;
}

static void
import_file(imp *m, const char *path)
{
    if (m->fatal) {
        return;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strcmp(base, "DICOMDIR") == 0) {
        return; /* the folder walk finds the files it lists */
    }
    tsr_err err = {0};
    if (!m->b && store_batch_begin(m->st, NULL, &m->b, &err) != TSR_OK) {
        m->fatal = 1;
        snprintf(m->fatal_msg, sizeof m->fatal_msg, "%s", err.msg);
        return;
    }
    m->files++;
    if (store_part_file(m->b, path, &err) != TSR_OK) {
        if (err.code == TSR_ENOSPACE || err.code == TSR_ENOMEM) {
            m->fatal = 1;
            snprintf(m->fatal_msg, sizeof m->fatal_msg, "%s", err.msg);
            return;
        }
        m->refused++;
        fprintf(m->refusals, "%s\t%s\n", path, err.msg);
    }
    if (++m->batch_n >= m->batch_max) {
        flush_batch(m);
    }
    progress(m, 0);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
walk(imp *m, const char *path, int depth)
{
    struct stat sb;
    if (m->fatal || depth > 64) {
        return;
    }
    if (stat(path, &sb) != 0) {
        m->files++;
        m->refused++;
        fprintf(m->refusals, "%s\t%s\n", path, strerror(errno));
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        if (S_ISREG(sb.st_mode)) {
            import_file(m, path);
        }
        return;
    }
    DIR *d = opendir(path);
    if (!d) {
        m->refused++;
        fprintf(m->refusals, "%s\t%s\n", path, strerror(errno));
        return;
    }
    /* sorted, so that an import is reproducible */
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                break;
            }
            names = nn;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char child[4096];
        if (names[i] && snprintf(child, sizeof child, "%s/%s", path, names[i]) < (int)sizeof child) {
            walk(m, child, depth + 1);
        }
        free(names[i]);
    }
    free(names);
}

int
cli_import(int argc, char **argv)
{
    cfg_option opts[] = {
        CFG("data", CFG_STRING, "", 0, 0, "data directory of the store; required"),
        CFG("batch", CFG_LONG, "256", 1, 100000, "files per index transaction"),
        CFG("max-instance-mb", CFG_LONG, "1024", 1, 1 << 20, "largest single instance, MiB"),
    };
    int n = (int)(sizeof opts / sizeof opts[0]);
    char *pos[4096];
    int n_pos;
    int rc = cfg_parse(opts, n, argc, argv, k_usage, pos, 4096, &n_pos);
    if (rc) {
        return rc == 1 ? 0 : 2;
    }
    if (!cfg_get(opts, n, "data")->value[0] || n_pos == 0) {
        fprintf(stderr, "tessera import: --data DIR and at least one PATH are required\n");
        return 2;
    }
    store_opts so = {0};
    so.dir = cfg_get(opts, n, "data")->value;
    so.max_instance = (uint64_t)cfg_get(opts, n, "max-instance-mb")->num << 20;
    so.read_connections = 1;
    imp m;
    memset(&m, 0, sizeof m);
    tsr_err err = {0};
    if (store_open(&so, &m.st, &err) != TSR_OK) {
        fprintf(stderr, "tessera import: %s\n", err.msg);
        return 1;
    }
    m.batch_max = (int)cfg_get(opts, n, "batch")->num;
    m.tty = isatty(2);
    m.t0 = tsr_now_ns();
    m.refusals = tmpfile();
    if (!m.refusals) {
        fprintf(stderr, "tessera import: cannot create a temporary file\n");
        store_close(m.st);
        return 1;
    }
    for (int i = 0; i < n_pos; i++) {
        walk(&m, pos[i], 0);
    }
    flush_batch(&m);
    progress(&m, 1);
    store_close(m.st);
    printf("imported %ld file(s): %ld stored, %ld already stored, %ld refused\n", m.files,
           m.stored, m.already, m.refused);
    if (m.refused) {
        printf("refused:\n");
        rewind(m.refusals);
        char line[1024];
        while (fgets(line, sizeof line, m.refusals)) {
            char *tab = strchr(line, '\t');
            if (tab) {
                *tab = '\0';
                printf("  %s: %s", line, tab + 1);
            }
        }
    }
    fclose(m.refusals);
    if (m.fatal) {
        fprintf(stderr, "tessera import: stopped: %s\n", m.fatal_msg);
        return 1;
    }
    return m.refused ? 1 : 0;
}
