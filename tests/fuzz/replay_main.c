/* SPDX-License-Identifier: MIT */
/* replay_main.c: the main() of a fuzz target built without libFuzzer (the libvips
 * "fuzzing_engine=none" trick). It runs LLVMFuzzerTestOneInput once on every file named on the
 * command line, descending into directories (sorted, so runs are reproducible), so a corpus and
 * every crash reproducer saved into it replay as an ordinary ctest regression, in the normal
 * build and under ASan + UBSan.
 *
 *     fuzz_X_replay [--max-len N] [--optional] PATH...
 *
 * --max-len truncates inputs as libFuzzer's -max_len does (the DICOM targets read the shared
 * corpus, whose large files would only repeat what their first bytes exercise). A PATH after
 * --optional may be missing: then it is skipped with a note, unless CI is set (the rule of the
 * data tests: skip locally, fail in CI). Exits 0 when every input ran (a crash aborts the
 * process, which ctest reports), 1 on an unreadable path or when no input at all was found,
 * 2 on bad usage. */
#define _DEFAULT_SOURCE /* DT_DIR, DT_UNKNOWN */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Under AddressSanitizer a single allocation above 2 GiB is a failure, as in libFuzzer runs
 * (-malloc_limit_mb defaults to the RSS limit): a small input that makes a library allocate
 * gigabytes is a bug even when the machine has the memory (regress_seq_delimiter_length.dcm).
 * ASAN_OPTIONS in the environment still override these defaults key by key. */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
    return "max_allocation_size_mb=2048:allocator_may_return_null=0";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static size_t g_max_len = 0; /* 0: whole files */
static unsigned long g_runs = 0;

static int
run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (g_max_len && len >= g_max_len) {
            len = g_max_len;
            break;
        }
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "replay: out of memory reading %s\n", path);
        return -1;
    }
    /* An exact-size heap copy, so ASan catches a read one byte past the input. */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    g_runs++;
    return 0;
}

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: cannot stat %s\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        return S_ISREG(st.st_mode) ? run_file(path) : 0;
    }
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "replay: cannot open directory %s\n", path);
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue; /* ., .., and hidden files such as .gitkeep */
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) {
                rc = -1;
                break;
            }
            names = nn;
        }
        size_t l = strlen(path) + strlen(e->d_name) + 2;
        if ((names[n] = malloc(l)) == NULL) {
            rc = -1;
            break;
        }
        snprintf(names[n++], l, "%s/%s", path, e->d_name);
    }
    closedir(d);
    if (n) {
        qsort(names, n, sizeof *names, cmp_names);
    }
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) {
            rc = run_path(names[i]);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int
main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize) {
        LLVMFuzzerInitialize(&argc, &argv);
    }
    int optional = 0, n_paths = 0, skipped = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--max-len") == 0 && i + 1 < argc) {
            g_max_len = strtoul(argv[++i], NULL, 10);
            continue;
        }
        if (strcmp(a, "--optional") == 0) {
            optional = 1;
            continue;
        }
        n_paths++;
        struct stat st;
        if (optional && stat(a, &st) != 0) {
            const char *ci = getenv("CI");
            if (ci && *ci) {
                fprintf(stderr, "replay: %s is missing (required when CI is set)\n", a);
                return 1;
            }
            printf("replay: %s is missing, skipped\n", a);
            skipped++;
            continue;
        }
        if (run_path(a) != 0) {
            return 1;
        }
    }
    if (n_paths == 0) {
        fprintf(stderr, "usage: %s [--max-len N] [--optional] PATH...\n", argv[0]);
        return 2;
    }
    if (g_runs == 0 && !skipped) {
        fprintf(stderr, "replay: no inputs found (an empty corpus is a mistake)\n");
        return 1;
    }
    printf("replay: %lu inputs ran without a crash\n", g_runs);
    return 0;
}
