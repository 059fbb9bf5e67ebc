/* SPDX-License-Identifier: MIT */
/* test_negotiate.c: Accept header parsing (RFC 7231 5.3.2), the DICOMweb accept query
 * parameter (PS3.18 8.3.3.1) and media type selection. */
#include "tsr_test.h"

#include "negotiate.h"

static neg_list
parse_ok(const char *h)
{
    neg_list l;
    tsr_err err = {0};
    if (neg_parse(h, &l, &err) != TSR_OK) {
        fail_msg("'%s' rejected: %s", h, err.msg);
    }
    return l;
}

/* Index chosen among `offers` (NULL-terminated) for header `h`; -1 when none is acceptable. */
static int
choose(const char *h, const char *const *offers)
{
    neg_list l = parse_ok(h);
    int n = 0;
    while (offers[n]) {
        n++;
    }
    int chosen = -7;
    int rc = neg_choose(&l, offers, n, &chosen);
    neg_list_free(&l);
    if (rc != 0) {
        assert_int_equal(rc, -1);
        assert_int_equal(chosen, -7); /* untouched */
        return -1;
    }
    assert_true(chosen >= 0 && chosen < n);
    return chosen;
}

/* ---------------------------------------------------------------- parsing */

static void
parse_ranges_params_and_q(void **state)
{
    (void)state;
    neg_list l = parse_ok("Image/JPEG;q=0.8 ,\timage/*; Q=0.5, */*;q=0.1, "
                          "multipart/related; type=\"application/dicom\";"
                          " transfer-syntax=1.2.840.10008.1.2.4.50; q=1.000; ext=1; flag");
    assert_int_equal(l.n, 4);
    assert_string_equal(l.ranges[0].type, "image");
    assert_string_equal(l.ranges[0].subtype, "jpeg");
    assert_int_equal(l.ranges[0].q, 800);
    assert_int_equal(l.ranges[0].n_params, 0);
    assert_string_equal(l.ranges[1].subtype, "*");
    assert_int_equal(l.ranges[1].q, 500);
    assert_string_equal(l.ranges[2].type, "*");
    assert_int_equal(l.ranges[2].q, 100);

    const neg_range *m = &l.ranges[3];
    assert_string_equal(m->type, "multipart");
    assert_string_equal(m->subtype, "related");
    assert_int_equal(m->q, 1000);
    assert_int_equal(m->n_params, 2); /* accept-ext after q is not a media type parameter */
    assert_string_equal(m->params[0].name, "type");
    assert_string_equal(m->params[0].value, "application/dicom");
    assert_string_equal(neg_param(m, "TYPE"), "application/dicom");
    assert_string_equal(neg_transfer_syntax(m), "1.2.840.10008.1.2.4.50");
    assert_null(neg_param(m, "ext"));
    assert_null(neg_param(m, "q"));
    assert_null(neg_param(NULL, "type"));
    assert_null(neg_transfer_syntax(&l.ranges[0]));
    neg_list_free(&l);
    neg_list_free(&l); /* twice is harmless */
    assert_int_equal(l.n, 0);
    neg_list_free(NULL);
}

static void
parse_quoting_and_whitespace(void **state)
{
    (void)state;
    /* Quoted values with escapes, commas and semicolons inside; spaces around '='. */
    neg_list l = parse_ok("  text/plain ; a = \"x, y; \\\"z\\\"\" ;b=tok , , ,"
                          "multipart/related;type=application/dicom;q=0");
    assert_int_equal(l.n, 2);
    assert_string_equal(neg_param(&l.ranges[0], "a"), "x, y; \"z\"");
    assert_string_equal(neg_param(&l.ranges[0], "b"), "tok");
    /* Unquoted media type as a value: common in DICOMweb clients. */
    assert_string_equal(neg_param(&l.ranges[1], "type"), "application/dicom");
    assert_int_equal(l.ranges[1].q, 0);
    neg_list_free(&l);

    /* Case of values is kept; of names and types it is folded. */
    l = parse_ok("Multipart/Related; Type=\"Application/DICOM\"");
    assert_string_equal(l.ranges[0].type, "multipart");
    assert_string_equal(l.ranges[0].params[0].name, "type");
    assert_string_equal(l.ranges[0].params[0].value, "Application/DICOM");
    neg_list_free(&l);

    /* A trailing empty parameter is tolerated. */
    l = parse_ok("text/html;, image/png;;q=0.5");
    assert_int_equal(l.n, 2);
    assert_int_equal(l.ranges[1].q, 500);
    neg_list_free(&l);
}

static void
parse_q_values(void **state)
{
    (void)state;
    static const struct {
        const char *q;
        int want;
    } good[] = {{"0", 0},       {"0.", 0},   {"0.5", 500}, {"0.05", 50},  {"0.001", 1},
                {"0.999", 999}, {"1", 1000}, {"1.", 1000}, {"1.0", 1000}, {"1.000", 1000}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char h[64];
        snprintf(h, sizeof h, "image/png;q=%s", good[i].q);
        neg_list l = parse_ok(h);
        assert_int_equal(l.ranges[0].q, good[i].want);
        neg_list_free(&l);
    }
    static const char *const bad[] = {"2",  "1.001", "1.5", "0.1234", "x",    "",   "-0",
                                      ".5", "01",    "0,5", "1e0",    "0.5x", "+1", "0..1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char h[64];
        snprintf(h, sizeof h, "image/png;q=%s", bad[i]);
        neg_list l = {.n = 99};
        tsr_err err = {0};
        if (neg_parse(h, &l, &err) != TSR_EINVAL) {
            fail_msg("'%s' accepted", h);
        }
        assert_int_equal(err.code, TSR_EINVAL);
        assert_int_equal(l.n, 0); /* an empty list, safe to free */
        neg_list_free(&l);
        assert_int_equal(neg_parse(h, &l, NULL), TSR_EINVAL);
    }
    tsr_err err = {0};
    neg_list l;
    assert_int_equal(neg_parse("image/png;q=2", &l, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "q must be 0..1"));
    assert_non_null(strstr(err.msg, "Accept"));
}

static void
parse_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "image",                /* no subtype */
        "image/",               /*  */
        "/png",                 /*  */
        "*/png",                /* wildcard type with a concrete subtype */
        "image/png extra",      /* stray token */
        "image/png;=x",         /* no parameter name */
        "image/png;a",          /* a media type parameter without a value */
        "image/png;a=",         /* an empty value */
        "image/png;a=\"open",   /* unterminated quote */
        "image/png;a=\"x\ny\"", /* a control character */
        "image/png;a=b c",      /* two tokens */
        "image/p\xc3\xa9ng",    /* not a token */
        "image/png;q=0.5 x",    /*  */
        "image/png/x",          /*  */
        "\"image/png\"",        /*  */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        neg_list l;
        tsr_err err = {0};
        if (neg_parse(bad[i], &l, &err) != TSR_EINVAL) {
            fail_msg("'%s' accepted", bad[i]);
        }
        assert_true(strncmp(err.msg, "Accept: ", 8) == 0);
        assert_null(strchr(err.msg, '\n')); /* input is not echoed raw */
        neg_list_free(&l);
    }

    /* Limits. */
    char big[4096] = "";
    for (int i = 0; i <= NEG_MAX_RANGES; i++) {
        strcat(big, "image/png,");
    }
    neg_list l;
    tsr_err err = {0};
    assert_int_equal(neg_parse(big, &l, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "too many media ranges"));
    strcpy(big, "image/png");
    for (int i = 0; i <= NEG_MAX_PARAMS; i++) {
        strcat(big, ";p=1");
    }
    assert_int_equal(neg_parse(big, &l, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "too many parameters"));
    char *huge = malloc(70000);
    assert_non_null(huge);
    memset(huge, ' ', 69999);
    huge[69999] = '\0';
    assert_int_equal(neg_parse(huge, &l, &err), TSR_EINVAL);
    free(huge);
}

static void
parse_empty_and_request(void **state)
{
    (void)state;
    neg_list l = parse_ok(NULL);
    assert_int_equal(l.n, 0);
    neg_list_free(&l);
    l = parse_ok(" , ,\t");
    assert_int_equal(l.n, 0);
    neg_list_free(&l);

    /* The accept query parameter overrides the header. */
    tsr_err err = {0};
    assert_int_equal(neg_parse_request("image/png", "image/jpeg,image/gif;q=0.5", &l, &err),
                     TSR_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.ranges[0].subtype, "jpeg");
    assert_int_equal(l.ranges[1].q, 500);
    neg_list_free(&l);
    /* Without it, the header counts; without both, anything goes. */
    assert_int_equal(neg_parse_request("image/png", NULL, &l, &err), TSR_OK);
    assert_string_equal(l.ranges[0].subtype, "png");
    neg_list_free(&l);
    assert_int_equal(neg_parse_request(NULL, NULL, &l, &err), TSR_OK);
    assert_int_equal(l.n, 0);
    /* An empty or malformed query parameter is an error even with a good header. */
    assert_int_equal(neg_parse_request("image/png", "", &l, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "accept parameter"));
    assert_int_equal(neg_parse_request("image/png", "jpeg", &l, &err), TSR_EINVAL);
    assert_true(strncmp(err.msg, "accept parameter: ", 18) == 0);
    neg_list_free(&l);
}

/* ---------------------------------------------------------------- choosing */

static void
choose_by_q_and_order(void **state)
{
    (void)state;
    static const char *const img[] = {"image/jpeg", "image/png", "image/gif", NULL};
    assert_int_equal(choose("image/png", img), 1);
    assert_int_equal(choose("image/png;q=0.5, image/gif", img), 2);
    assert_int_equal(choose("image/gif;q=0.2, image/png;q=0.4", img), 1);
    /* Equal q and equal specificity: the server's order decides. */
    assert_int_equal(choose("image/gif, image/png", img), 1);
    assert_int_equal(choose("*/*", img), 0);
    assert_int_equal(choose("", img), 0);
    assert_int_equal(choose("image/*", img), 0);
    assert_int_equal(choose("text/html", img), -1);
    assert_int_equal(choose("image/webp, text/*", img), -1);
    /* Matching is case-insensitive on both sides. */
    static const char *const mixed[] = {"Image/PNG", NULL};
    assert_int_equal(choose("IMAGE/png", mixed), 0);

    neg_list l = parse_ok("image/png");
    int chosen = 5;
    assert_int_equal(neg_choose(&l, img, 0, &chosen), -1);
    assert_int_equal(chosen, 5);
    neg_list_free(&l);
    /* An empty list (no Accept) takes the first offer. */
    neg_list none = {0};
    assert_int_equal(neg_choose(&none, img, 3, &chosen), 0);
    assert_int_equal(chosen, 0);
    assert_int_equal(neg_choose(NULL, img, 3, &chosen), 0);
}

static void
choose_q0_means_not_acceptable(void **state)
{
    (void)state;
    static const char *const img[] = {"image/jpeg", "image/png", NULL};
    assert_int_equal(choose("image/jpeg;q=0", img), -1);
    /* The more specific q=0 range overrides a broader one that accepts. */
    assert_int_equal(choose("*/*, image/jpeg;q=0", img), 1);
    assert_int_equal(choose("image/*;q=0.1, image/jpeg;q=0", img), 1);
    assert_int_equal(choose("image/jpeg;q=0, image/png;q=0", img), -1);
    assert_int_equal(choose("*/*;q=0", img), -1);
    /* ... and a more specific q>0 range rescues a type from a broad q=0. */
    assert_int_equal(choose("image/*;q=0, image/png;q=0.01", img), 1);
}

static void
choose_specificity(void **state)
{
    (void)state;
    /* image/png is more specific than the image wildcard, so its q (0.3) is png's, not 1.0. */
    static const char *const img[] = {"image/png", "image/jpeg", NULL};
    assert_int_equal(choose("image/*, image/png;q=0.3", img), 1);
    /* Equal q: the offer matched by the more specific range wins over server order. */
    assert_int_equal(choose("image/*, image/jpeg", img), 1);
    assert_int_equal(choose("*/*, image/jpeg", img), 1);
    assert_int_equal(choose("*/*;q=0.5, image/*;q=0.5, image/jpeg;q=0.5", img), 1);
    /* A parameterised range beats the bare type for the offer it matches. */
    static const char *const txt[] = {"text/plain; format=flowed", "text/plain", NULL};
    assert_int_equal(choose("text/plain;q=0.5, text/plain;format=flowed;q=0.9", txt), 0);
    assert_int_equal(choose("text/plain;q=0.9, text/plain;format=flowed;q=0.5", txt), 1);
    assert_int_equal(choose("text/plain;format=fixed", txt), -1);
}

static void
choose_multipart_type_param(void **state)
{
    (void)state;
    static const char *const offers[] = {
        "multipart/related; type=\"application/dicom\"",
        "multipart/related; type=\"application/octet-stream\"",
        "application/dicom",
        NULL,
    };
    assert_int_equal(choose("multipart/related; type=\"application/dicom\"", offers), 0);
    assert_int_equal(choose("multipart/related; type=application/octet-stream", offers), 1);
    assert_int_equal(choose("multipart/related; type=\"Application/DICOM\"", offers), 0);
    /* The type parameter must match: image/jpeg parts are not on offer. */
    assert_int_equal(choose("multipart/related; type=\"image/jpeg\"", offers), -1);
    assert_int_equal(choose("multipart/related; type=\"application/dicom+json\"", offers), -1);
    /* Without a type any multipart offer matches. */
    assert_int_equal(choose("multipart/related", offers), 0);
    assert_int_equal(choose("multipart/related;q=0.5, application/dicom", offers), 2);
    /* A parameter the offer lacks (other than transfer-syntax/charset) does not match. */
    static const char *const bare[] = {"multipart/related", NULL};
    assert_int_equal(choose("multipart/related; type=\"application/dicom\"", bare), -1);
}

static void
choose_transfer_syntax(void **state)
{
    (void)state;
    static const char *const offers[] = {"multipart/related; type=\"application/dicom\"", NULL};
    const char *h = "multipart/related; type=\"application/dicom\"; "
                    "transfer-syntax=1.2.840.10008.1.2.4.50";
    /* The offer does not name a syntax: the range matches and the handler reads the syntax. */
    assert_int_equal(choose(h, offers), 0);
    neg_list l = parse_ok(h);
    const neg_range *r = neg_best_range(&l, offers[0]);
    assert_non_null(r);
    assert_string_equal(neg_transfer_syntax(r), "1.2.840.10008.1.2.4.50");
    assert_null(neg_best_range(&l, "image/jpeg"));
    assert_null(neg_best_range(&l, "not a type"));
    neg_list_free(&l);

    /* Offers that do name a syntax are matched against it; "*" matches any. */
    static const char *const ts[] = {
        "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.1",
        "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.50",
        NULL,
    };
    assert_int_equal(choose(h, ts), 1);
    assert_int_equal(choose("multipart/related; type=\"application/dicom\"; "
                            "transfer-syntax=1.2.840.10008.1.2.4.90",
                            ts),
                     -1);
    assert_int_equal(choose("multipart/related; type=\"application/dicom\"; transfer-syntax=*", ts),
                     0);
    assert_int_equal(choose("multipart/related; type=\"application/dicom\"; "
                            "transfer-syntax=1.2.840.10008.1.2.1;q=0.4, "
                            "multipart/related; type=\"application/dicom\"; "
                            "transfer-syntax=1.2.840.10008.1.2.4.50;q=0.6",
                            ts),
                     1);

    /* Among equally specific ranges the highest q is the one a handler gets. */
    l = parse_ok("multipart/related; type=application/dicom; transfer-syntax=A; q=0.2, "
                 "multipart/related; type=application/dicom; transfer-syntax=B; q=0.9");
    r = neg_best_range(&l, offers[0]);
    assert_non_null(r);
    assert_string_equal(neg_transfer_syntax(r), "B");
    assert_int_equal(r->q, 900);
    neg_list_free(&l);

    /* charset behaves the same way. */
    static const char *const json[] = {"application/dicom+json", NULL};
    assert_int_equal(choose("application/dicom+json; charset=utf-8", json), 0);
    static const char *const json8[] = {"application/dicom+json; charset=utf-8", NULL};
    assert_int_equal(choose("application/dicom+json; charset=UTF-8", json8), 0);
    assert_int_equal(choose("application/dicom+json; charset=iso-8859-1", json8), -1);
}

static void
choose_skips_bad_offers(void **state)
{
    (void)state;
    static const char *const offers[] = {"not a type", "image/png, image/gif", "image/jpeg", NULL};
    assert_int_equal(choose("*/*", offers), 2);
    const char *const with_null[] = {NULL, "image/png"};
    neg_list l = {0};
    int chosen = -1;
    assert_int_equal(neg_choose(&l, with_null, 2, &chosen), 0);
    assert_int_equal(chosen, 1);
}

/* ---------------------------------------------------------------- DICOM vs rendered */

static void
dicom_and_rendered_mix(void **state)
{
    (void)state;
    static const struct {
        const char *h;
        int mixed;
    } cases[] = {
        {"image/jpeg", 0},
        {"application/dicom", 0},
        {"application/dicom, application/octet-stream", 0},
        {"image/jpeg, application/dicom", 1},
        {"image/*, application/octet-stream", 1},
        {"video/mp4, multipart/related; type=\"application/dicom\"", 1},
        {"text/html, multipart/related; type=application/octet-stream", 1},
        {"application/pdf, application/dicom", 1},
        {"multipart/related; type=\"image/jpeg\", application/dicom", 1},
        {"multipart/related; type=\"image/jpeg\", multipart/related; type=\"image/png\"", 0},
        {"*/*, application/dicom", 0}, /* a wildcard is neither */
        {"*/*, image/png", 0},
        {"multipart/related, image/png", 0},      /* no type: neither */
        {"image/jpeg, application/dicom;q=0", 0}, /* q=0 asks for nothing */
        {"image/jpeg;q=0, application/dicom", 0},
        {"application/dicom+json, image/png", 0}, /* metadata, not a DICOM payload type */
        {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        neg_list l = parse_ok(cases[i].h);
        if (neg_has_dicom_and_rendered(&l) != cases[i].mixed) {
            fail_msg("'%s': expected %d", cases[i].h, cases[i].mixed);
        }
        neg_list_free(&l);
    }
    assert_int_equal(neg_has_dicom_and_rendered(NULL), 0);
}

TSR_TEST_MAIN(cmocka_unit_test(parse_ranges_params_and_q),
              cmocka_unit_test(parse_quoting_and_whitespace), cmocka_unit_test(parse_q_values),
              cmocka_unit_test(parse_malformed), cmocka_unit_test(parse_empty_and_request),
              cmocka_unit_test(choose_by_q_and_order),
              cmocka_unit_test(choose_q0_means_not_acceptable),
              cmocka_unit_test(choose_specificity), cmocka_unit_test(choose_multipart_type_param),
              cmocka_unit_test(choose_transfer_syntax), cmocka_unit_test(choose_skips_bad_offers),
              cmocka_unit_test(dicom_and_rendered_mix))
