/* SPDX-License-Identifier: MIT */
/* multipart.h: a streaming parser for multipart bodies (RFC 2046, multipart/related as used by
 * DICOMweb STOW-RS, PS3.18 8.6). The body is fed in chunks of any size, as it arrives from the
 * socket; part bodies are handed to a callback in pieces, never buffered whole, so an upload of
 * any size needs a fixed amount of memory. No I/O, no global state; one parser per request. */
#ifndef TSR_MULTIPART_H
#define TSR_MULTIPART_H

#include "tsr_base.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Callbacks; any of them may be NULL. Returning non-zero from any of them stops the parser:
 * mp_feed then returns TSR_EINVAL with the message "stopped by callback", unless the callback
 * filled the error itself: mp_feed clears the `err` it was given on entry, so a callback that
 * writes a failure into that same tsr_err (reached through `user`) has its code and message
 * returned instead. No callback is made after a stop.
 *  - part_begin: a part's headers are complete. `content_type` is the part's Content-Type value
 *    ("" when the part has none; the caller applies the default), `content_location` likewise,
 *    both trimmed; folded lines are unfolded and the first of repeated headers wins. Both are
 *    borrowed for the call only.
 *  - part_data: `len` > 0 bytes of the current part's body (may be called many times per part,
 *    never for an empty part). Fewer than |boundary| + 4 bytes are held back between calls.
 *  - part_end: the current part's body is complete (its closing delimiter was seen). */
typedef struct mp_callbacks {
    int (*part_begin)(void *user, const char *content_type, const char *content_location);
    int (*part_data)(void *user, const uint8_t *data, size_t len);
    int (*part_end)(void *user);
} mp_callbacks;

typedef struct mp_parser mp_parser;

/* Extracts a parameter (e.g. "boundary", "type") from a Content-Type header value such as
 * `multipart/related; type="application/dicom"; boundary=abc` (RFC 7231 3.1.1.1). Parameter
 * names are case-insensitive and the first occurrence wins; whitespace around ';' and '=' is
 * skipped; quoted values are unquoted (backslash escapes honoured, ';' inside quotes is not a
 * separator); values keep their case. Returns 0 and writes a NUL-terminated value into out (cap
 * bytes), or -1 when absent, too long, or in an unterminated quoted-string. Thread-safe. */
int mp_header_param(const char *content_type, const char *name, char *out, size_t cap);

/* Media type of a Content-Type value, lowercased and without parameters, into out (cap bytes):
 * `Multipart/Related; boundary=x` -> "multipart/related"; whitespace is dropped, an empty value
 * gives "". Returns 0, or -1 if it does not fit. Thread-safe. */
int mp_media_type(const char *content_type, char *out, size_t cap);

/* Creates a parser for `boundary` (1..70 RFC 2046 bchars, not ending in a space).
 * `max_header_bytes` bounds the header block of one part, its blank line included (0: 16 KiB);
 * the buffer grows on demand up to it. `cb` is copied and may be NULL; `user` is borrowed until
 * mp_free. Returns NULL for an invalid boundary or no memory. A parser is used by one thread at a
 * time; different parsers are independent. */
mp_parser *mp_new(const char *boundary, const mp_callbacks *cb, void *user,
                  size_t max_header_bytes);
void mp_free(mp_parser *p); /* NULL: no-op */

/* Feeds the next `len` bytes of the body (`data` is borrowed for the call). Returns TSR_OK, or
 * TSR_EINVAL with a message naming what is malformed: the opening boundary does not start within
 * the first 64 KiB ("no multipart boundary ... in the first 65536 bytes"), "part headers exceed
 * N bytes", a malformed header line or NUL byte in headers, anything but "--", transport padding
 * or a line end after a boundary (including "--boundaryX" inside data, which RFC 2046 forbids),
 * TSR_ENOMEM for the header buffer, or a callback's error. The result does not depend on how the
 * body is split into calls.
 * The opening boundary may start the body without a leading CRLF; header lines may end in a bare
 * LF; the blank line after a part's headers may double as the CRLF of the next delimiter, so
 * "--b\r\n\r\n--b--" holds one empty part. After the closing boundary further input is
 * ignored (epilogue) and TSR_OK returned; after an error every call returns that error again. */
int mp_feed(mp_parser *p, const uint8_t *data, size_t len, tsr_err *err);

/* Ends the body. Returns TSR_OK when the closing boundary was seen after at least one part,
 * else TSR_EINVAL ("truncated multipart body: no closing boundary", "multipart body has no
 * parts", or that followed by the missing boundary), or the earlier error. No callbacks. */
int mp_finish(mp_parser *p, tsr_err *err);

/* Number of parts begun so far (counted when a part's headers are complete); 0 for NULL. */
int mp_part_count(const mp_parser *p);

#ifdef __cplusplus
}
#endif

#endif
