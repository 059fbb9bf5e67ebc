/* SPDX-License-Identifier: MIT */
/* negotiate.h: HTTP content negotiation for DICOMweb. Parses an Accept header (RFC 7231 5.3.2)
 * or the DICOMweb `accept` query parameter (PS3.18 8.3.3.1) into media ranges, and picks the
 * best of the media types a resource can produce. No I/O, no global state; thread-safe.
 *
 *     neg_list l;
 *     if (neg_parse_request(accept_header, accept_query, &l, &err) != TSR_OK) -> 400
 *     static const char *const offers[] = {"image/jpeg", "image/png"};
 *     int i;
 *     if (neg_choose(&l, offers, 2, &i) != 0) -> 406
 *     neg_list_free(&l);
 */
#ifndef TSR_NEGOTIATE_H
#define TSR_NEGOTIATE_H

#include "tsr_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One parameter of a media range: `name` lowercased, `value` unquoted (backslash escapes
 * resolved) with its case kept. */
typedef struct neg_parameter {
    const char *name;
    const char *value;
} neg_parameter;

/* One media range. `type` and `subtype` are lowercased and may be "*" ("*" / "*" or type/"*").
 * `params` are the media-type parameters, those before "q"; accept-ext parameters after q are
 * dropped. `q` is the weight in thousandths (0..1000, 1000 when absent); 0 means "not
 * acceptable". */
typedef struct neg_range {
    const char *type;
    const char *subtype;
    int q;
    int n_params;
    const neg_parameter *params;
} neg_range;

/* A parsed list, in header order. Read-only for callers; every pointer in it is owned by the
 * list and valid until neg_list_free. n == 0 means no preference (any type is acceptable). */
typedef struct neg_list {
    int n;
    const neg_range *ranges;
    void *mem_; /* the one allocation behind everything above */
} neg_list;

/* At most this many ranges, and parameters per range, are accepted (more is TSR_EINVAL). */
#define NEG_MAX_RANGES 64
#define NEG_MAX_PARAMS 16

/* Parses an Accept header value. NULL or a value with only whitespace and commas gives an empty
 * list (RFC 7231: no Accept header means any type). Whitespace around separators and empty list
 * elements are tolerated; parameter values may be quoted. As many DICOMweb clients send
 * `type=application/dicom` unquoted, an unquoted value may also contain '/'. Errors (TSR_EINVAL,
 * with a message safe to return to the client): a malformed range ("*" / "png", "image",
 * "image/"), a malformed or out-of-range q ("q=2", "q=0.1234", "q=x"), a stray character, or
 * more than NEG_MAX_RANGES / NEG_MAX_PARAMS. On success *out owns new memory (free with
 * neg_list_free); on failure *out is set to an empty list, safe to free. */
int neg_parse(const char *header, neg_list *out, tsr_err *err);

/* Parses what a DICOMweb request accepts: the `accept` query parameter (PS3.18 8.3.3.1: a
 * comma-separated list of media types, already percent-decoded by the caller) when `query` is
 * not NULL, else the Accept header `header` (may be NULL). The query parameter overrides the
 * header entirely; an empty one is an error (the standard requires at least one media type).
 * Returns as neg_parse. */
int neg_parse_request(const char *header, const char *query, neg_list *out, tsr_err *err);

/* Frees the list's memory and empties it. NULL: no-op; freeing twice is harmless. */
void neg_list_free(neg_list *l);

/* Chooses among `offered` (n_offered media types the resource can produce, each a media type
 * with optional parameters, e.g. `multipart/related; type="application/dicom"`), best first
 * when the client does not say otherwise. Each offer gets the q of the most specific range that
 * matches it ("*" / "*" < type/"*" < type/subtype < type/subtype with more parameters; among
 * equally specific ones the highest q). The offer with the highest q wins; ties go to the offer
 * whose range is more specific, then to the earlier offer. An offer whose q is 0, or that no
 * range matches, is not acceptable. A range matches an offer when type and subtype are equal or
 * "*" and each range parameter is in the offer with an equal value (case-insensitive), except
 * `transfer-syntax` and `charset`: those are only compared when the offer has them, so
 * `multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50`
 * matches the offer `multipart/related; type="application/dicom"`, and the handler reads the
 * syntax with neg_best_range and neg_param; `transfer-syntax=*` matches any offered syntax.
 * An empty list accepts offer 0. Offers that do not parse are never chosen.
 * Returns 0 and writes *chosen (an index into offered), or -1 when nothing offered is
 * acceptable (the caller answers 406); *chosen is then untouched. */
int neg_choose(const neg_list *l, const char *const *offered, int n_offered, int *chosen);

/* The range that gives `offered` its q in neg_choose (most specific match, then highest q, then
 * first), borrowed from the list; NULL when no range matches, the list is empty or `offered` does
 * not parse. Its q may be 0. */
const neg_range *neg_best_range(const neg_list *l, const char *offered);

/* Value of parameter `name` (case-insensitive) of range `r`, borrowed from the list; NULL when
 * absent or r is NULL. neg_transfer_syntax(r) is neg_param(r, "transfer-syntax"). */
const char *neg_param(const neg_range *r, const char *name);
const char *neg_transfer_syntax(const neg_range *r);

/* 1 when the list, ignoring ranges with q = 0, asks for both a DICOM type (application/dicom,
 * application/octet-stream, or multipart/related with a type parameter of either) and a
 * rendered type (image/..., video/..., text/..., application/pdf, or multipart/related with a
 * type parameter of those), which a DICOMweb rendered resource answers with 400; else 0.
 * Wildcards "*" / "*" and multipart/related without a type belong to neither group. */
int neg_has_dicom_and_rendered(const neg_list *l);

#ifdef __cplusplus
}
#endif

#endif
