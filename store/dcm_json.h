/* SPDX-License-Identifier: MIT */
/* dcm_json.h: reads a stored DICOM instance once at ingest and produces (1) the attributes the
 * index needs and (2) the instance's DICOM JSON model (PS3.18 F.2), so that WADO-RS metadata is
 * served from the index without re-parsing files. Also locates bulk data values for WADO-RS
 * bulkdata requests. Pure functions over a buffer: no I/O, no global state, thread-safe.
 *
 * BulkDataURI values in the JSON are relative to the DICOMweb root and start with "/studies/":
 *   /studies/{study}/series/{series}/instances/{sop}/bulkdata/{path}
 * where {path} is the tag path of the value: "7FE00010" at top level, "00540016/0/00181072" for
 * element 0018,1072 in item 0 of sequence 0054,0016. The JSON is compact (no spaces), so the
 * server makes these absolute by inserting its base URL after each `"BulkDataURI":"`. */
#ifndef TSR_DCM_JSON_H
#define TSR_DCM_JSON_H

#include "tsr_base.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Attributes kept as index columns. Strings are UTF-8 (converted from SpecificCharacterSet),
 * trailing padding removed, NUL-terminated, "" when absent. Numbers: has_* says present. */
typedef struct dcm_summary {
    char transfer_syntax[65];
    char sop_class_uid[65], sop_instance_uid[65];
    char study_uid[65], series_uid[65];
    char specific_charset[65];
    /* patient */
    char patient_id[65], issuer_of_patient_id[65], patient_name[325], patient_birth_date[9],
        patient_sex[17];
    /* study */
    char study_date[9], study_time[17], accession_number[17], referring_physician[325],
        study_id[17], study_description[65], timezone_offset[6];
    /* series */
    char modality[17], series_description[65], body_part[17], pps_start_date[9],
        pps_start_time[17], frame_of_reference_uid[65];
    int has_series_number;
    int series_number;
    /* instance */
    int has_instance_number;
    int instance_number;
    uint32_t rows, columns, frames; /* 0 when absent; frames = NumberOfFrames or 1 with pixels */
    uint16_t bits_allocated;
    int has_pixel_data;
    char photometric[17];
    int has_position, has_orientation, has_pixel_spacing, has_slice_thickness;
    double position[3], orientation[6], pixel_spacing[2], slice_thickness;
} dcm_summary;

typedef struct dcm_json_opts {
    size_t bulk_threshold; /* binary values longer than this become BulkDataURI (default 1024) */
    int max_depth;         /* sequence nesting limit (default 16) */
} dcm_json_opts;

/* Parses a Part 10 file in `buf` (len bytes; borrowed for the call only). Requires the File Meta
 * Information (preamble, "DICM", group 0002 with a Transfer Syntax UID), a structurally valid
 * dataset (every element inside the buffer, sequences closed, depth limited) and the four UIDs
 * (SOP Class, SOP Instance, Study, Series). Supports implicit/explicit VR little endian,
 * explicit big endian and deflated explicit LE; encapsulated pixel data is skipped, not decoded.
 *
 * On success fills *sum and, when json_out is not NULL, stores in *json_out a compact UTF-8 JSON
 * object (the DICOM JSON model of the dataset, file meta group excluded) that the caller owns
 * and frees with free(); *json_len gets its length. `opts` may be NULL for the defaults.
 * Returns TSR_OK, TSR_ECORRUPT (malformed, message says what and where), TSR_EINVAL (missing
 * meta or required UID), TSR_ENOMEM. */
int dcm_parse(const uint8_t *buf, size_t len, const dcm_json_opts *opts, dcm_summary *sum,
              char **json_out, size_t *json_len, tsr_err *err);

/* Finds the value at `path` (the {path} form above) in a Part 10 file. For datasets that are not
 * deflated, *off and *vlen give the value's place in `buf`; for deflated ones returns
 * TSR_EUNSUPP. *vr receives the two VR letters (from the dictionary for implicit VR) and
 * *big_endian whether the value bytes are big endian. TSR_ENOTFOUND when absent. Encapsulated
 * pixel data is reported with vlen = 0xFFFFFFFF and *off at its first item. */
int dcm_find_value(const uint8_t *buf, size_t len, const char *path, size_t *off, uint32_t *vlen,
                   char vr[3], int *big_endian, tsr_err *err);

/* Keyword or 8-hex-digit tag to tag ("PatientName" or "00100010" -> 0x00100010).
 * Returns 0 and writes *tag, or -1 for an unknown keyword / malformed tag. */
int dcm_tag_parse(const char *s, uint32_t *tag);

/* The dictionary VR of a tag ("PN"), "UN" when unknown. Static string. */
const char *dcm_tag_vr(uint32_t tag);

#ifdef __cplusplus
}
#endif

#endif
