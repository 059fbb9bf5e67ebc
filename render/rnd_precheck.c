/* SPDX-License-Identifier: MIT */
/* rnd_precheck.c: a structural walk over a DICOM buffer before GDCM parses it.
 *
 * Debian's GDCM is built with assertions, and truncated or inconsistent lengths reach assert()
 * calls inside its readers that abort the whole process. The walk checks that the file meta
 * group and every element, item and fragment of the dataset lie inside the buffer and that
 * sequences are closed; input that passes keeps GDCM's readers on their checked paths. It also
 * reads the Transfer Syntax UID, so that a file GDCM refuses for an unknown syntax can be named
 * as such. The walk itself is the dataset reader's (rnd_dataset.c), the same one the store uses
 * for DICOM JSON. */
#include "rnd_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Sequences nest this deep at most before the walk gives up (real files stay below 10). */
#define PRECHECK_MAX_DEPTH 32

/* A deflated dataset is inflated for the walk up to this many times its compressed size (the
 * store's ingest bound too): beyond it the file is a decompression bomb. */
#define PRECHECK_INFLATE_RATIO 64

static int walk(const uint8_t *p, size_t len, size_t start, rnd_ds_encoding enc, tsr_err *err);

/* Whether the two bytes at `vr` are a VR of PS3.5 6.2. */
static int
known_vr(const uint8_t *vr)
{
    static const char k_vrs[] =
        "AEASATCSDADSDTFDFLISLOLTPNSHSLSSSTTMUIULUSOBODOFOLOVOWSQSVUCUNURUTUV";
    for (const char *v = k_vrs; *v; v += 2) {
        if (vr[0] == (uint8_t)v[0] && vr[1] == (uint8_t)v[1]) {
            return 1;
        }
    }
    return 0;
}

/* Inflates the raw deflate stream p[0, len) (PS3.5 A.5) into *out (malloc'd, caller frees).
 * Whatever inflates before a truncated end is kept: GDCM reads that much too. */
static int
inflate_dataset(const uint8_t *p, size_t len, uint8_t **out, size_t *out_len, tsr_err *err)
{
    uint64_t cap64 = (uint64_t)len * PRECHECK_INFLATE_RATIO + 4096;
    size_t cap = cap64 > ((size_t)1 << 31) ? (size_t)1 << 31 : (size_t)cap64;
    size_t have = len * 4 + 4096 < cap ? len * 4 + 4096 : cap;
    uint8_t *buf = malloc(have);
    if (!buf) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK) {
        free(buf);
        return tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    z.next_in = (Bytef *)p;
    int rc = TSR_OK, zr = Z_OK;
    size_t in_left = len;
    while (zr == Z_OK) {
        if (z.total_out == have) {
            if (have == cap) {
                rc = tsr_err_set(err, TSR_ECORRUPT,
                                 "the deflated dataset inflates to more than %d times its size",
                                 PRECHECK_INFLATE_RATIO);
                break;
            }
            size_t grow = have * 2 < cap ? have * 2 : cap;
            uint8_t *nb = realloc(buf, grow);
            if (!nb) {
                rc = tsr_err_set(err, TSR_ENOMEM, "out of memory");
                break;
            }
            buf = nb;
            have = grow;
        }
        uInt in_chunk = in_left > 1u << 30 ? 1u << 30 : (uInt)in_left;
        uInt out_chunk = have - z.total_out > 1u << 30 ? 1u << 30 : (uInt)(have - z.total_out);
        z.avail_in = in_chunk;
        z.next_out = buf + z.total_out;
        z.avail_out = out_chunk;
        zr = inflate(&z, Z_NO_FLUSH);
        in_left -= in_chunk - z.avail_in;
        if (zr == Z_BUF_ERROR) {
            if (z.avail_out > 0 && in_left == 0) {
                break; /* the stream is cut short: keep what came out */
            }
            zr = Z_OK; /* more room, or more input, is needed */
        }
    }
    if (rc == TSR_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
        rc = tsr_err_set(err, TSR_ECORRUPT, "the deflated dataset is not a valid deflate stream");
    }
    size_t n = z.total_out;
    inflateEnd(&z);
    if (rc != TSR_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = n;
    return TSR_OK;
}

int
rnd__precheck(const uint8_t *p, size_t len, char *ts, size_t cap, tsr_err *err)
{
    size_t start = 0;
    rnd_ds_encoding enc = RND_DS_EXPLICIT_LE;
    rnd_ds_meta meta;
    ts[0] = '\0';
    int rc = rnd_ds_read_meta(p, len, &meta, err);
    if (rc == TSR_OK) {
        snprintf(ts, cap, "%s", meta.transfer_syntax);
        start = meta.dataset_offset;
        if (len - start < 8) {
            return tsr_err_set(err, TSR_ECORRUPT, "truncated: no dataset after the meta group");
        }
        if (strcmp(ts, TS_DEFLATED) == 0) {
            /* GDCM inflates it and then reads it with the same asserting readers. */
            uint8_t *raw = NULL;
            size_t raw_len = 0;
            rc = inflate_dataset(p + start, len - start, &raw, &raw_len, err);
            if (rc == TSR_OK) {
                rc = walk(raw, raw_len, 0, RND_DS_EXPLICIT_LE, err);
                free(raw);
            }
            return rc == TSR_OK ? rc : tsr_err_prefix(err, rc, "deflated dataset: ");
        }
        enc = rnd_ds_encoding_of(ts);
    } else if (rc != TSR_ENOTFOUND) {
        return rc;
    } else if (len < 132) {
        /* Too short for Part 10, and a bare dataset this small holds no image anyway. */
        return tsr_err_set(err, TSR_ECORRUPT, "not a readable DICOM file (%zu bytes)", len);
    } else {
        /* No meta: guess the encoding as GDCM does, from whether a VR follows the first tag. */
        int letters = p[4] >= 'A' && p[4] <= 'Z' && p[5] >= 'A' && p[5] <= 'Z';
        enc = letters ? RND_DS_EXPLICIT_LE : RND_DS_IMPLICIT_LE;
    }
    return walk(p, len, start, enc, err);
}

/* Walks the dataset p[start, len) with the reader; GDCM may read what passes. */
static int
walk(const uint8_t *p, size_t len, size_t start, rnd_ds_encoding enc, tsr_err *err)
{
    rnd_ds_reader *r = NULL;
    int rc = rnd_ds_reader_new(p, len, start, enc, PRECHECK_MAX_DEPTH, &r, err);
    rnd_ds_event ev = RND_DS_ELEMENT;
    rnd_ds_elem e;
    while (rc == TSR_OK && ev != RND_DS_END) {
        rc = rnd_ds_next(r, &ev, &e, err);
        /* The reader takes any OB/OW value of undefined length as encapsulated; GDCM accepts
         * that only for Pixel Data and asserts (aborting the process) on any other tag. */
        if (rc == TSR_OK && e.explicit_vr && ev != RND_DS_ITEM && ev != RND_DS_ITEM_END &&
            ev != RND_DS_SEQUENCE_END && ev != RND_DS_END && e.position + 6 <= len &&
            !known_vr(p + e.position + 4)) {
            /* The reader reads an unknown VR code with the short header; GDCM (and DCMTK) with
             * the long one, so GDCM would take other bytes for a 32-bit length and allocate
             * that much (up to 4 GiB from a 3 KB file) before finding out. */
            rc = tsr_err_set(err, TSR_ECORRUPT,
                             "element (%04X,%04X) at offset %zu has the unknown VR "
                             "'%c%c'",
                             (unsigned)(e.tag >> 16), (unsigned)(e.tag & 0xffff), e.position,
                             p[e.position + 4], p[e.position + 5]);
        }
        if (rc == TSR_OK && ev == RND_DS_FRAGMENTS && e.tag != 0x7fe00010u) {
            rc = tsr_err_set(err, TSR_ECORRUPT,
                             "element (%04X,%04X) at offset %zu has an undefined length, which "
                             "only Pixel Data (7FE0,0010) may have with VR %s",
                             (unsigned)(e.tag >> 16), (unsigned)(e.tag & 0xffff), e.position, e.vr);
        }
    }
    rnd_ds_reader_free(r);
    if (rc == TSR_ECORRUPT || rc == TSR_ELIMIT) {
        if (err) {
            err->code = TSR_ECORRUPT; /* too deep is malformed as far as rendering goes */
        }
        return tsr_err_prefix(err, TSR_ECORRUPT, "truncated or malformed: ");
    }
    return rc;
}
