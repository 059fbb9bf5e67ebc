/* SPDX-License-Identifier: MIT */
/* fuzz_dataset.c: our own dataset reader (render/rnd_dataset.c) and the store's DICOM JSON
 * (store/dcm_read.c, dcm_json.c, dcm_charset.c) on hostile bytes.
 *
 *  - rnd_ds_read_meta, then a walk of every event with rnd_ds_next (in the file's encoding, or
 *    in an encoding the first byte picks when there is no Part 10 header), skipping some
 *    sequences and items with rnd_ds_skip. Checked: every value lies inside the buffer, depth
 *    stays within the limit, events nest (no ITEM_END without an ITEM), and an error is sticky.
 *  - dcm_parse with JSON: the JSON must be valid JSON that Jansson reads back (so valid UTF-8
 *    without NUL characters) of exactly json_len bytes, as dcm_json.h promises.
 *  - dcm_find_value on a few tag paths: a value it returns lies inside the buffer. */
#include "dcm_json.h"
#include "rnd.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

#define MAX_DEPTH 16

static volatile uint8_t g_sink;

static void
walk(const uint8_t *data, size_t size, size_t start, rnd_ds_encoding enc)
{
    rnd_ds_reader *r = NULL;
    if (rnd_ds_reader_new(data, size, start, enc, MAX_DEPTH, &r, NULL) != TSR_OK) {
        CHECK(start > size);
        return;
    }
    int open_items = 0, open_seqs = 0;
    uint8_t x = 0;
    for (int n = 0; n < 1000000; n++) {
        rnd_ds_event ev;
        rnd_ds_elem e;
        tsr_err err = {0};
        int rc = rnd_ds_next(r, &ev, &e, &err);
        if (rc != TSR_OK) {
            CHECK(err.msg[0]);
            tsr_err again = {0};
            CHECK(rnd_ds_next(r, &ev, &e, &again) == rc); /* errors are sticky */
            break;
        }
        if (ev == RND_DS_END) {
            CHECK(open_items == 0 && open_seqs == 0);
            CHECK(rnd_ds_next(r, &ev, &e, NULL) == TSR_OK && ev == RND_DS_END);
            break;
        }
        CHECK(e.depth >= 0 && e.depth <= MAX_DEPTH);
        CHECK(e.position <= size && e.offset <= size);
        switch (ev) {
        case RND_DS_ELEMENT:
            CHECK(e.length <= size - e.offset);
            for (uint32_t i = 0; i < e.length; i++) {
                x ^= data[e.offset + i];
            }
            break;
        case RND_DS_SEQUENCE:
            open_seqs++;
            /* Skip some sequences (the check still runs over what is skipped). */
            if ((e.tag ^ e.position) % 5 == 0) {
                if (rnd_ds_skip(r, NULL) != TSR_OK) {
                    goto done;
                }
                open_seqs--;
            }
            break;
        case RND_DS_ITEM:
            open_items++;
            if ((e.position >> 2) % 7 == 3) {
                if (rnd_ds_skip(r, NULL) != TSR_OK) {
                    goto done;
                }
                open_items--;
            }
            break;
        case RND_DS_ITEM_END:
            CHECK(open_items > 0);
            open_items--;
            break;
        case RND_DS_SEQUENCE_END:
            CHECK(open_seqs > 0);
            open_seqs--;
            break;
        case RND_DS_FRAGMENTS:
        case RND_DS_END:
            break;
        }
    }
done:
    g_sink ^= x;
    rnd_ds_reader_free(r);
}

static void
check_json(const char *json, size_t len)
{
    CHECK(strlen(json) == len);
    /* Jansson refuses invalid UTF-8 and, without JSON_ALLOW_NUL, a \u0000 in a string. */
    json_error_t jerr;
    json_t *j = json_loadb(json, len, 0, &jerr);
    CHECK(j != NULL && json_is_object(j));
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rnd_ds_meta meta;
    tsr_err err = {0};
    int rc = rnd_ds_read_meta(data, size, &meta, &err);
    if (rc == TSR_OK) {
        CHECK(meta.dataset_offset <= size);
        CHECK(strlen(meta.transfer_syntax) <= 64);
        walk(data, size, meta.dataset_offset, rnd_ds_encoding_of(meta.transfer_syntax));
    } else if (rc == TSR_ENOTFOUND && size > 0) {
        walk(data, size, 1, (rnd_ds_encoding)(data[0] % 3));
    } else {
        CHECK(rc == TSR_ENOTFOUND || err.msg[0]);
    }

    dcm_json_opts opts = {0};
    opts.bulk_threshold = size > 0 && (data[size - 1] & 1) ? 16 : 0;
    dcm_summary sum;
    char *json = NULL;
    size_t json_len = 0;
    tsr_err jerr = {0};
    if (dcm_parse(data, size, &opts, &sum, &json, &json_len, &jerr) == TSR_OK) {
        check_json(json, json_len);
        free(json);
        CHECK(dcm_uid_valid(sum.sop_instance_uid, strlen(sum.sop_instance_uid)));
        CHECK(dcm_uid_valid(sum.study_uid, strlen(sum.study_uid)));
    } else {
        CHECK(jerr.msg[0]);
    }

    static const char *const paths[] = {"7FE00010", "00100010", "00540016/0/00181072",
                                        "00400275/1/0040A730/0/0040A043", "00080005"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        size_t off = 0;
        uint32_t vlen = 0;
        char vr[3];
        int be = 0;
        if (dcm_find_value(data, size, paths[i], &off, &vlen, vr, &be, NULL) == TSR_OK) {
            CHECK(off <= size);
            CHECK(vlen == 0xFFFFFFFFu || vlen <= size - off);
        }
    }
    return 0;
}
