/* SPDX-License-Identifier: MIT */
/* dcm_read.c: the Part 10 framing shared by dcm_parse and dcm_find_value (meta group, the
 * deflated transfer syntax), bulk data lookup by tag path, and the tag/keyword helpers. */
#include "dcm_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define TS_DEFLATED "1.2.840.10008.1.2.1.99"

/* A deflated dataset may inflate to this many times its compressed size, and never past
 * INFLATE_MAX. Real DICOM deflates 3-10x; zeros deflate about 1000x, which is the bomb. */
#define INFLATE_RATIO 64
#define INFLATE_MAX   ((size_t)2 << 30)

void
dcm__printable(const uint8_t *s, size_t len, char *dst, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < len && i < 64 && k + 1 < cap; i++) {
        dst[k++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
    }
    if (len > 64 && k + 4 < cap) {
        memcpy(dst + k, "...", 3);
        k += 3;
    }
    dst[k] = '\0';
}

int
dcm__uid_valid(const uint8_t *s, size_t len, char out[65])
{
    while (len > 0 && (s[len - 1] == '\0' || s[len - 1] == ' ')) {
        len--;
    }
    size_t n = len < 64 ? len : 64;
    memcpy(out, s, n);
    out[n] = '\0';
    return dcm_uid_valid((const char *)s, len);
}

int
dcm_uid_valid(const char *s, size_t len)
{
    if (len == 0 || len > 64 || s[0] == '.' || s[len - 1] == '.') {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.' ? s[i + 1] == '.' : !(s[i] >= '0' && s[i] <= '9')) {
            return 0;
        }
    }
    return 1;
}

/* Inflates the raw deflate stream in[0, n) (PS3.5 A.5: no zlib header) into a new buffer. */
static int
inflate_all(const uint8_t *in, size_t n, uint8_t **out, size_t *out_len, tsr_err *err)
{
    size_t limit = n > INFLATE_MAX / INFLATE_RATIO ? INFLATE_MAX : n * INFLATE_RATIO;
    size_t cap = n * 4 < limit ? n * 4 + 1024 : limit;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory inflating the dataset");
    }
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK) {
        free(buf);
        return tsr_err_set(err, TSR_ENOMEM, "out of memory inflating the dataset");
    }
    int rc = TSR_OK;
    size_t used = 0, in_used = 0;
    for (;;) {
        /* zlib counts in uInt: feed and drain at most 1 GiB at a time. */
        size_t in_left = n - in_used, room = cap - used;
        z.next_in = (Bytef *)(in + in_used);
        z.avail_in = (uInt)(in_left < (1u << 30) ? in_left : (1u << 30));
        z.next_out = buf + used;
        z.avail_out = (uInt)(room < (1u << 30) ? room : (1u << 30));
        uInt give_in = z.avail_in, give_out = z.avail_out;
        int zr = inflate(&z, Z_NO_FLUSH);
        in_used += give_in - z.avail_in;
        used += give_out - z.avail_out;
        if (zr == Z_STREAM_END) {
            break;
        }
        if (zr == Z_BUF_ERROR && in_used == n && used < cap) {
            /* No progress possible: the input ends inside the stream. Some writers stop
             * short of the final block; what was inflated is kept and walked as is. */
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = tsr_err_set(err, TSR_ECORRUPT, "the deflated dataset is corrupt (%s)",
                             z.msg ? z.msg : "zlib error");
            break;
        }
        if (used == cap) {
            if (cap >= limit) {
                rc = tsr_err_set(err, TSR_ELIMIT,
                                 "decompression bomb: the deflated dataset of %zu bytes inflates "
                                 "past %zu bytes",
                                 n, limit);
                break;
            }
            size_t ncap = cap > limit / 2 ? limit : cap * 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                rc = tsr_err_set(err, TSR_ENOMEM, "out of memory inflating the dataset");
                break;
            }
            buf = nb;
            cap = ncap;
        }
    }
    inflateEnd(&z);
    if (rc != TSR_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = used;
    return TSR_OK;
}

int
dcm__source_open(const uint8_t *buf, size_t len, int inflate, dcm__source *src, tsr_err *err)
{
    rnd_ds_meta meta;
    int rc = rnd_ds_read_meta(buf, len, &meta, err);
    if (rc == TSR_ENOTFOUND) {
        return tsr_err_set(err, TSR_EINVAL,
                           "no DICOM File Meta Information (preamble and DICM prefix)");
    }
    if (rc != TSR_OK) {
        return rc;
    }
    if (!meta.transfer_syntax[0]) {
        return tsr_err_set(err, TSR_EINVAL,
                           "no Transfer Syntax UID (0002,0010) in the File Meta Information");
    }
    memset(src, 0, sizeof *src);
    memcpy(src->transfer_syntax, meta.transfer_syntax, sizeof src->transfer_syntax);
    src->data = buf;
    src->len = len;
    src->start = meta.dataset_offset;
    src->enc = rnd_ds_encoding_of(meta.transfer_syntax);
    if (strcmp(meta.transfer_syntax, TS_DEFLATED) != 0) {
        return TSR_OK;
    }
    if (!inflate) {
        return tsr_err_set(err, TSR_EUNSUPP, "values of a deflated dataset have no file offset");
    }
    rc = inflate_all(buf + meta.dataset_offset, len - meta.dataset_offset, &src->owned, &src->len,
                     err);
    if (rc != TSR_OK) {
        return rc;
    }
    src->data = src->owned;
    src->start = 0;
    src->deflated = 1;
    return TSR_OK;
}

/* ---------------------------------------------------------------- bulk data lookup */

#define PATH_MAX_PARTS 64

/* Parses "7FE00010" or "00540016/0/00181072" into tags[] and items[] (items[i] follows tags[i]).
 * Returns the number of tags, or -1. */
static int
parse_path(const char *path, uint32_t *tags, int *items)
{
    int n = 0;
    const char *p = path;
    for (;;) {
        if (n == PATH_MAX_PARTS) {
            return -1;
        }
        char hex[9];
        if (strcspn(p, "/") != 8 || strspn(p, "0123456789abcdefABCDEF") < 8) {
            return -1;
        }
        memcpy(hex, p, 8);
        hex[8] = '\0';
        tags[n] = (uint32_t)strtoul(hex, NULL, 16);
        p += 8;
        if (!*p) {
            return n + 1;
        }
        p++; /* '/' */
        size_t k = strcspn(p, "/");
        if (k == 0 || k > 9 || strspn(p, "0123456789") != k || !p[k]) {
            return -1; /* an item number, then more of the path */
        }
        items[n++] = atoi(p);
        p += k + 1;
    }
}

int
dcm_find_value(const uint8_t *buf, size_t len, const char *path, size_t *off, uint32_t *vlen,
               char vr[3], int *big_endian, tsr_err *err)
{
    uint32_t tags[PATH_MAX_PARTS];
    int items[PATH_MAX_PARTS];
    int n = parse_path(path, tags, items);
    if (n < 0) {
        return tsr_err_set(err, TSR_EINVAL, "malformed bulk data path");
    }
    dcm__source src;
    int rc = dcm__source_open(buf, len, 0, &src, err);
    if (rc != TSR_OK) {
        return rc;
    }
    rnd_ds_reader *r = NULL;
    rc = rnd_ds_reader_new(src.data, src.len, src.start, src.enc, PATH_MAX_PARTS, &r, err);
    int level = 0; /* the path component looked for, at depth `level` */
    while (rc == TSR_OK) {
        rnd_ds_event ev;
        rnd_ds_elem e;
        rc = rnd_ds_next(r, &ev, &e, err);
        if (rc != TSR_OK) {
            break;
        }
        if (ev == RND_DS_END || ev == RND_DS_ITEM_END || ev == RND_DS_SEQUENCE_END) {
            /* The item or sequence on the path closed without the next component. */
            rc = tsr_err_set(err, TSR_ENOTFOUND, "no value at bulk data path %s", path);
            break;
        }
        if (ev == RND_DS_ITEM) {
            rc = e.item == items[level - 1] ? TSR_OK : rnd_ds_skip(r, err);
            continue;
        }
        if (e.tag != tags[level]) {
            rc = ev == RND_DS_SEQUENCE ? rnd_ds_skip(r, err) : TSR_OK;
            continue;
        }
        if (ev == RND_DS_SEQUENCE) {
            if (level + 1 == n) {
                rc = tsr_err_set(err, TSR_ENOTFOUND, "bulk data path %s names a sequence", path);
                break;
            }
            level++;
            continue;
        }
        if (level + 1 != n) {
            rc = tsr_err_set(err, TSR_ENOTFOUND, "no value at bulk data path %s", path);
            break;
        }
        *off = e.offset;
        *vlen = e.length;
        memcpy(vr, e.vr, 3);
        *big_endian = e.big_endian;
        break;
    }
    rnd_ds_reader_free(r);
    free(src.owned);
    return rc;
}

/* ---------------------------------------------------------------- tags */

int
dcm_tag_parse(const char *s, uint32_t *tag)
{
    if (!s) {
        return -1;
    }
    if (strlen(s) == 8 && strspn(s, "0123456789abcdefABCDEF") == 8) {
        *tag = (uint32_t)strtoul(s, NULL, 16);
        return 0;
    }
    return rnd_dict_find_keyword(s, tag);
}

const char *
dcm_tag_vr(uint32_t tag)
{
    /* Static strings for the two letters rnd_dict_lookup writes into a caller's buffer. */
    static const char *const k_vrs[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL",
                                        "IS", "LO", "LT", "OB", "OD", "OF", "OL", "OV", "OW",
                                        "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC",
                                        "UI", "UL", "UN", "UR", "US", "UT", "UV"};
    char vr[3];
    if (rnd_dict_lookup(tag, vr, NULL) == 0) {
        for (size_t i = 0; i < sizeof k_vrs / sizeof k_vrs[0]; i++) {
            if (k_vrs[i][0] == vr[0] && k_vrs[i][1] == vr[1]) {
                return k_vrs[i];
            }
        }
    }
    return "UN";
}
