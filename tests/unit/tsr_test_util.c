/* SPDX-License-Identifier: MIT */
/* tsr_test_util.c: helpers of tsr_test.h that need POSIX (linked into every unit test). */
#define _XOPEN_SOURCE 700
#include "tsr_test.h"

#include <ftw.h>
#include <sys/stat.h>

int
tsr_test_tmpdir(char *out, size_t cap, const char *tag)
{
    const char *base = getenv("TMPDIR");
    int n = snprintf(out, cap, "%s/tsr-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (n < 0 || (size_t)n >= cap || !mkdtemp(out)) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int
tsr_test_rmtree(const char *path)
{
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
