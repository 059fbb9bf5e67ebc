/* SPDX-License-Identifier: MIT */
/* dcm_internal.h: cross-file internals of the DICOM JSON code (prefix dcm__): growable byte
 * buffers, character set conversion (dcm_charset.c) and the Part 10 framing shared by dcm_parse
 * and dcm_find_value (dcm_read.c). Not a public API: only store sources and tests include it. */
#ifndef TSR_DCM_INTERNAL_H
#define TSR_DCM_INTERNAL_H

#include "dcm_json.h"
#include "rnd.h"

#include <stddef.h>
#include <stdint.h>

/* ================================================================ byte buffer */

/* A growable byte buffer, always NUL-terminated once anything was appended (p may be NULL while
 * empty). Free with dcm__buf_free. */
typedef struct dcm__buf {
    char *p;
    size_t len, cap;
} dcm__buf;

/* Appends n bytes. Returns TSR_OK or TSR_ENOMEM (the buffer is unchanged). */
int dcm__buf_add(dcm__buf *b, const void *data, size_t n);
void dcm__buf_free(dcm__buf *b);

/* ================================================================ character sets (dcm_charset.c)
 * PS3.5 6.1 and PS3.3 C.12.1.1.2: Specific Character Set (0008,0005) to UTF-8. */

/* A parsed Specific Character Set. Plain data, copied freely (items inherit their parent's). */
typedef struct dcm__charset {
    uint8_t mode;   /* internal: default repertoire, one single-byte/multi-byte set, ISO 2022 */
    uint8_t set;    /* internal: the set of a one-set mode */
    uint8_t g0, g1; /* internal: initial ISO 2022 designations */
} dcm__charset;

/* The default repertoire (no Specific Character Set, or ISO_IR 6). */
void dcm__charset_default(dcm__charset *cs);

/* Parses the raw value of Specific Character Set (backslash-separated defined terms, any
 * padding). Unknown terms are ignored (those values are then read as the default repertoire).
 * Never fails. */
void dcm__charset_parse(dcm__charset *cs, const uint8_t *value, size_t len);

/* Converts from character sets to UTF-8 for one parse; caches iconv descriptors. Not
 * thread-safe: one converter per thread (per dcm_parse call). */
typedef struct dcm__conv dcm__conv;

/* A new converter, or NULL when out of memory. */
dcm__conv *dcm__conv_new(void);
void dcm__conv_free(dcm__conv *c); /* NULL: no-op */

/* Appends the UTF-8 form of the string value `s` (len bytes, encoded in `cs`; NULL means the
 * default repertoire) to `out`. ISO 2022 escape sequences switch sets and are dropped; the
 * designations return to their initial state at each value delimiter (backslash) and, for
 * person names (`pn` set), at '^' and '='. Bytes that are invalid or not convertible become
 * U+FFFD; bytes above 0x7F in the default repertoire are read as ISO 8859-1, the most common
 * undeclared set. The result is always valid UTF-8. Returns TSR_OK or TSR_ENOMEM. */
int dcm__to_utf8(dcm__conv *c, const dcm__charset *cs, const uint8_t *s, size_t len, int pn,
                 dcm__buf *out);

/* Appends `s` to `out` replacing every byte that is not part of a valid UTF-8 sequence (RFC 3629:
 * no overlong forms, no surrogates, nothing above U+10FFFF) with U+FFFD. Returns TSR_OK or
 * TSR_ENOMEM. */
int dcm__utf8_sanitize(const uint8_t *s, size_t len, dcm__buf *out);

/* ================================================================ Part 10 framing (dcm_read.c) */

/* A dataset ready to walk: in the caller's buffer, or inflated into `owned`. */
typedef struct dcm__source {
    const uint8_t *data; /* the bytes the offsets of events refer to */
    size_t len, start;   /* the dataset is data[start, len) */
    rnd_ds_encoding enc;
    int deflated;   /* data is `owned`, inflated from a deflated transfer syntax */
    uint8_t *owned; /* free with free() */
    char transfer_syntax[65];
} dcm__source;

/* Reads the File Meta Information of a Part 10 buffer and, for the deflated transfer syntax
 * when `inflate` is set, inflates the dataset (refusing more than 64 times the input or 2 GiB:
 * TSR_ELIMIT). Returns TSR_OK, TSR_EINVAL (no meta, no Transfer Syntax UID), TSR_ECORRUPT,
 * TSR_ELIMIT, TSR_EUNSUPP (deflated and `inflate` not set), TSR_ENOMEM. On success the caller
 * frees src->owned. */
int dcm__source_open(const uint8_t *buf, size_t len, int inflate, dcm__source *src, tsr_err *err);

/* Whether `s` (len bytes, trailing NUL/space padding allowed) is a UID the store accepts: 1 to 64
 * characters, digits and dots only. Writes the unpadded form into out[65] either way (truncated
 * to 64 characters). */
int dcm__uid_valid(const uint8_t *s, size_t len, char out[65]);

/* Writes `s` into `dst` (cap bytes) for an error message: printable ASCII kept, every other byte
 * shown as '?', at most 64 characters and "..." after. */
void dcm__printable(const uint8_t *s, size_t len, char *dst, size_t cap);

#endif
