/* SPDX-License-Identifier: MIT */
/* tsr_test.h: common includes and main() for cmocka unit tests.
 *
 * Each test file ends with TSR_TEST_MAIN(tests...). ctest runs the executable once per case with
 * the case name as argv[1] (see tests/CMakeLists.txt); without an argument it runs every case. */
#ifndef TSR_TEST_H
#define TSR_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define TSR_TEST_MAIN(...)                                                                         \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        const struct CMUnitTest tests[] = {__VA_ARGS__};                                           \
        if (argc > 1) {                                                                            \
            cmocka_set_test_filter(argv[1]);                                                       \
        }                                                                                          \
        return cmocka_run_group_tests(tests, NULL, NULL);                                          \
    }

/* A new folder "$TMPDIR/tsr-<tag>-XXXXXX" (default /tmp) in out; 0, or -1 with out "". */
int tsr_test_tmpdir(char *out, size_t cap, const char *tag);
/* Removes a folder and everything in it (symbolic links are not followed); 0 when done. */
int tsr_test_rmtree(const char *path);

/* Path of a file in the shared corpus. Skips the test when the corpus is missing, except under
 * CI (environment variable CI set), where a missing corpus is a failure. */
static inline const char *
tsr_test_data(const char *rel)
{
    static __thread char path[4096];
    snprintf(path, sizeof path, "%s/%s", TSR_DICOM_DIR, rel);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (getenv("CI")) {
            fail_msg("shared corpus file missing under CI: %s", path);
        }
        skip();
    }
    fclose(f);
    return path;
}

#endif
