/* SPDX-License-Identifier: MIT */
/* rnd_precheck.c: a structural walk over a DICOM buffer before GDCM parses it.
 *
 * Debian's GDCM is built with assertions, and truncated or inconsistent lengths reach assert()
 * calls inside its readers that abort the whole process. The walk checks that the file meta
 * group and every element, item and fragment of the dataset lie inside the buffer and that
 * sequences are closed; input that passes keeps GDCM's readers on their checked paths. It also
 * reads the Transfer Syntax UID, so that a file GDCM refuses for an unknown syntax can be named
 * as such. */
#include "rnd_internal.h"

#include <string.h>

typedef struct walker {
    const uint8_t *p;
    int explicit_vr, big_endian;
} walker;

static uint32_t
w16(const walker *w, size_t i)
{
    return w->big_endian ? (uint32_t)(w->p[i] << 8 | w->p[i + 1])
                         : (uint32_t)(w->p[i] | w->p[i + 1] << 8);
}

static uint32_t
w32(const walker *w, size_t i)
{
    return w->big_endian ? (w16(w, i) << 16 | w16(w, i + 2)) : (w16(w, i) | w16(w, i + 2) << 16);
}

static int
long_vr(const uint8_t *vr)
{
    static const char *k[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV",
                              "UC", "UN", "UR", "UT", "UV"};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        if (vr[0] == k[i][0] && vr[1] == k[i][1]) {
            return 1;
        }
    }
    return 0;
}

/* Reads one element header at `i` (explicit VR as `w` says): its tag, value length and header
 * size. Returns -1 when the header itself does not fit below `limit`. */
static int
element_header(const walker *w, size_t i, size_t limit, uint32_t *tag, uint32_t *len,
               size_t *hdr, int *is_sq)
{
    if (i + 8 > limit) {
        return -1;
    }
    *tag = w16(w, i) << 16 | w16(w, i + 2);
    *is_sq = 0;
    if (w->explicit_vr && (*tag >> 16) != 0xfffe) {
        const uint8_t *vr = w->p + i + 4;
        if (long_vr(vr)) {
            if (i + 12 > limit) {
                return -1;
            }
            *len = w32(w, i + 8);
            *hdr = 12;
            *is_sq = vr[0] == 'S' && vr[1] == 'Q';
            return 0;
        }
        *len = w16(w, i + 6);
        *hdr = 8;
        return 0;
    }
    *len = w32(w, i + 4);
    *hdr = 8;
    return 0;
}

/* Walks elements from *pos up to `limit`, or up to the delimiter `stop` (0 = none). */
static int
walk_elements(const walker *w, size_t *pos, size_t limit, uint32_t stop, int depth)
{
    if (depth > 32) {
        return -1;
    }
    while (*pos < limit) {
        size_t i = *pos;
        uint32_t tag, len;
        size_t hdr;
        int is_sq;
        if (element_header(w, i, limit, &tag, &len, &hdr, &is_sq) != 0) {
            return -1; /* a partial header: GDCM would assert on it */
        }
        if (tag == 0xfffee00d || tag == 0xfffee0dd) {
            *pos = i + 8;
            return tag == stop ? 0 : -1;
        }
        i += hdr;
        if (len != 0xffffffffu) {
            if (len > limit - i) {
                return -1;
            }
            *pos = i + len;
            continue;
        }
        /* Undefined length: a sequence of items, or encapsulated pixel data (fragments). */
        int encapsulated = tag == 0x7fe00010u && !is_sq;
        for (;;) {
            if (i + 8 > limit) {
                return -1;
            }
            uint32_t itag = w16(w, i) << 16 | w16(w, i + 2), ilen = w32(w, i + 4);
            i += 8;
            if (itag == 0xfffee0dd) {
                break;
            }
            if (itag != 0xfffee000) {
                return -1;
            }
            if (ilen == 0xffffffffu) {
                if (encapsulated || walk_elements(w, &i, limit, 0xfffee00d, depth + 1) != 0) {
                    return -1;
                }
            } else if (ilen > limit - i) {
                return -1;
            } else {
                i += ilen;
            }
        }
        *pos = i;
    }
    return stop ? -1 : 0;
}

int
rnd__precheck(const uint8_t *p, size_t len, char *ts, size_t cap, tsr_err *err)
{
    walker w = {p, 1, 0};
    size_t start = 0;
    ts[0] = '\0';
    if (len >= 132 && memcmp(p + 128, "DICM", 4) == 0) {
        /* The file meta group: explicit VR little endian, group 0002, whatever follows. */
        size_t i = 132;
        while (i + 8 <= len && p[i] == 0x02 && p[i + 1] == 0x00) {
            uint32_t tag, vlen;
            size_t hdr;
            int is_sq;
            if (element_header(&w, i, len, &tag, &vlen, &hdr, &is_sq) != 0 ||
                vlen > len - i - hdr) {
                return tsr_err_set(err, TSR_ECORRUPT, "truncated file meta information");
            }
            if (tag == 0x00020010u) {
                size_t n = vlen < cap - 1 ? vlen : cap - 1;
                memcpy(ts, p + i + hdr, n);
                while (n > 0 && (ts[n - 1] == '\0' || ts[n - 1] == ' ')) {
                    n--;
                }
                ts[n] = '\0';
            }
            i += hdr + vlen;
        }
        if (i + 8 > len) {
            return tsr_err_set(err, TSR_ECORRUPT, "truncated: no dataset after the meta group");
        }
        start = i;
    } else if (len < 132) {
        /* Too short for Part 10, and a bare dataset this small holds no image anyway. */
        return tsr_err_set(err, TSR_ECORRUPT, "not a readable DICOM file (%zu bytes)", len);
    }

    if (strcmp(ts, TS_DEFLATED) == 0) {
        return TSR_OK; /* compressed: GDCM inflates it; the inflated form is not at hand here */
    }
    if (strcmp(ts, TS_IMPLICIT_LE) == 0) {
        w.explicit_vr = 0;
    } else if (strcmp(ts, TS_EXPLICIT_BE) == 0) {
        w.big_endian = 1;
    } else if (!ts[0]) {
        /* No meta: guess the encoding as GDCM does, from whether a VR follows the first tag. */
        w.explicit_vr = start + 6 <= len && p[start + 4] >= 'A' && p[start + 4] <= 'Z' &&
                        p[start + 5] >= 'A' && p[start + 5] <= 'Z';
    }
    size_t pos = start;
    if (walk_elements(&w, &pos, len, 0, 0) != 0) {
        return tsr_err_set(err, TSR_ECORRUPT,
                           "truncated or malformed: an element runs past the end of the data");
    }
    return TSR_OK;
}
