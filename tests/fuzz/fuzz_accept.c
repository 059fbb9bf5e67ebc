/* SPDX-License-Identifier: MIT */
/* fuzz_accept.c: content negotiation (http/negotiate.h) on hostile Accept headers and `accept`
 * query parameters. Input: the header, then optionally a NUL byte and the query parameter.
 * Checked: a failed parse leaves an empty list, safe to free; every range is lowercased type and
 * subtype with q in 0..1000; neg_choose returns an index among the offers and agrees with
 * neg_best_range (the chosen offer's range has q > 0). */
#include "negotiate.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

static const char *const k_offers[] = {
    "multipart/related; type=\"application/dicom\"",
    "application/dicom",
    "multipart/related; type=\"application/octet-stream\"; transfer-syntax=1.2.840.10008.1.2.1",
    "application/octet-stream",
    "image/jpeg",
    "image/png",
    "application/dicom+json",
    "application/json",
};
#define N_OFFERS ((int)(sizeof k_offers / sizeof k_offers[0]))

static void
check_list(const neg_list *l)
{
    CHECK(l->n >= 0 && l->n <= NEG_MAX_RANGES);
    for (int i = 0; i < l->n; i++) {
        const neg_range *r = &l->ranges[i];
        CHECK(r->q >= 0 && r->q <= 1000);
        CHECK(r->n_params >= 0 && r->n_params <= NEG_MAX_PARAMS);
        for (const char *c = r->type; *c; c++) {
            CHECK(!isupper((unsigned char)*c));
        }
        for (const char *c = r->subtype; *c; c++) {
            CHECK(!isupper((unsigned char)*c));
        }
        for (int k = 0; k < r->n_params; k++) {
            CHECK(r->params[k].name && r->params[k].value);
            CHECK(neg_param(r, r->params[k].name) != NULL);
        }
        (void)neg_transfer_syntax(r);
    }
    (void)neg_has_dicom_and_rendered(l);
    for (int start = 0; start < N_OFFERS; start += 2) {
        int chosen = -1;
        if (neg_choose(l, k_offers + start, N_OFFERS - start, &chosen) == 0) {
            CHECK(chosen >= 0 && chosen < N_OFFERS - start);
            if (l->n > 0) {
                const neg_range *r = neg_best_range(l, k_offers[start + chosen]);
                CHECK(r != NULL && r->q > 0);
            }
        } else {
            CHECK(chosen == -1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    CHECK(s);
    memcpy(s, data, size);
    s[size] = '\0';
    size_t hl = strlen(s);
    const char *query = hl < size ? s + hl + 1 : NULL;

    neg_list l;
    tsr_err err = {0};
    if (neg_parse(s, &l, &err) == TSR_OK) {
        check_list(&l);
    } else {
        CHECK(l.n == 0 && err.msg[0]);
    }
    neg_list_free(&l);
    neg_list_free(&l); /* documented as harmless */

    memset(&err, 0, sizeof err);
    if (neg_parse_request(s, query, &l, &err) == TSR_OK) {
        check_list(&l);
    } else {
        CHECK(l.n == 0 && err.msg[0]);
    }
    neg_list_free(&l);
    free(s);
    return 0;
}
