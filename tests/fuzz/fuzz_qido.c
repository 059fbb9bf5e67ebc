/* SPDX-License-Identifier: MIT */
/* fuzz_qido.c: QIDO-RS query strings (store_query_parse, store/query.c): matching keys and
 * values (wildcards, ranges, UID lists), includefield, limit, offset, fuzzymatching, percent
 * escapes, at the three levels. Checked: counts stay within the arrays, a range has both ends,
 * a list has its values, strings are NUL-terminated, and store_query_free releases everything
 * (LeakSanitizer). */
#include "store.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

static volatile size_t g_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    CHECK(s);
    memcpy(s, data, size);
    s[size] = '\0';
    static const store_level levels[] = {STORE_STUDY, STORE_SERIES,
                                         STORE_INSTANCE};
    for (size_t li = 0; li < 3; li++) {
        store_query q;
        memset(&q, 0xA5, sizeof q); /* parse must set what it uses */
        tsr_err err = {0};
        if (store_query_parse(levels[li], s, &q, &err) != TSR_OK) {
            CHECK(err.msg[0]);
            continue;
        }
        CHECK(q.n_match >= 0 && q.n_match <= STORE_MAX_MATCH);
        CHECK(q.n_include >= 0 && q.n_include <= STORE_MAX_INCLUDE);
        CHECK(memchr(q.warning, '\0', sizeof q.warning) != NULL);
        size_t n = 0;
        for (int i = 0; i < q.n_match; i++) {
            const store_match *m = &q.match[i];
            switch (m->kind) {
            case STORE_M_SINGLE:
            case STORE_M_WILDCARD:
                CHECK(m->value);
                n += strlen(m->value);
                break;
            case STORE_M_RANGE:
                CHECK(m->lo && m->hi);
                n += strlen(m->lo) + strlen(m->hi);
                break;
            case STORE_M_LIST:
                CHECK(m->n_list >= 0 && m->list); /* 0: only separators, matches nothing */
                for (int k = 0; k < m->n_list; k++) {
                    CHECK(m->list[k]);
                    n += strlen(m->list[k]);
                }
                break;
            default:
                break;
            }
        }
        g_sink += n;
        store_query_free(&q);
    }
    free(s);
    return 0;
}
