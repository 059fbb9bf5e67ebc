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
#include <string.h>

/* Sequences nest this deep at most before the walk gives up (real files stay below 10). */
#define PRECHECK_MAX_DEPTH 32

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
            return TSR_OK; /* compressed: GDCM inflates it; the inflated form is not at hand */
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
    rnd_ds_reader *r = NULL;
    rc = rnd_ds_reader_new(p, len, start, enc, PRECHECK_MAX_DEPTH, &r, err);
    rnd_ds_event ev = RND_DS_ELEMENT;
    rnd_ds_elem e;
    while (rc == TSR_OK && ev != RND_DS_END) {
        rc = rnd_ds_next(r, &ev, &e, err);
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
