/* SPDX-License-Identifier: MIT */
/* dcm_json.h: reads a stored DICOM instance once at ingest and produces (1) the attributes the
 * index needs and (2) the instance's DICOM JSON model (PS3.18 F.2), so that WADO-RS metadata is
 * served from the index without re-parsing files. Also locates bulk data values for WADO-RS
 * bulkdata requests. Pure functions over a buffer: no I/O, no global state, thread-safe.
 *
 * The dataset is walked by the render core's own reader (rnd.h, "dataset reader"), not by GDCM:
 * every length is checked against the buffer, so hostile files fail with a message naming the
 * element and its offset. The JSON model:
 *   - keys are the 8 uppercase hex digits of the tag, in tag order; each element is
 *     {"vr":"XX"} plus "Value", "InlineBinary" or "BulkDataURI"; an empty value has "vr" only;
 *   - the file meta group, group lengths (gggg,0000) and Data Set Trailing Padding are left out;
 *     private elements are kept (VR from the file, or UN in implicit VR; LO for creators);
 *   - strings are split on backslash (not LT, ST, UT, UR), trailing spaces and NULs trimmed
 *     (leading spaces too except for LT, ST, UT, UR), empty values among several are null;
 *   - PN values are {"Alphabetic", "Ideographic", "Phonetic"} (empty groups left out);
 *   - DS and IS are JSON numbers (a DS without fraction prints as an integer); a value that is
 *     not a number is kept as a string rather than failing the instance;
 *   - FL prints as the shortest decimal that reads back as the same float, FD with 16
 *     significant digits; NaN and infinities are the strings "NaN", "Infinity", "-Infinity";
 *     UV/SV beyond 2^53 are decimal strings;
 *   - binary VRs (OB OD OF OL OV OW UN) up to bulk_threshold bytes are "InlineBinary" (base64 of
 *     the little endian bytes, big endian files swapped); longer ones, and Pixel Data, Float
 *     Pixel Data and Double Float Pixel Data always, are "BulkDataURI";
 *   - text of PN LO SH ST LT UT UC is converted to UTF-8 from Specific Character Set (0008,0005)
 *     (items inherit it and may override it): ISO_IR 6/100/101/109/110/126/127/138/144/148/
 *     166/192/203, ISO_IR 13, GB18030, GBK, and ISO 2022 code extensions (IR 6, 13, 58, 87,
 *     100-series, 149, 159); the set's own value is kept as written (DCMTK rewrites it to
 *     ISO_IR 192; the store keeps the file's). Bytes that are invalid in the declared set
 *     become U+FFFD; high bytes without a declared set, or in VRs that allow no character set,
 *     are read as ISO 8859-1. The output is always valid UTF-8 without NUL characters.
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
    char modality[17], series_description[65], body_part[17], pps_start_date[9], pps_start_time[17],
        frame_of_reference_uid[65];
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

/* Options; a zero field means its default. */
typedef struct dcm_json_opts {
    size_t bulk_threshold; /* binary values longer than this become BulkDataURI (0: 1024;
                            * SIZE_MAX: all inline except pixel data) */
    int max_depth;         /* sequence nesting limit, at most 256 (0: 16) */
} dcm_json_opts;

/* Parses a Part 10 file in `buf` (len bytes; borrowed for the call only). Requires the File Meta
 * Information (preamble, "DICM", group 0002 with a Transfer Syntax UID), a structurally valid
 * dataset (every element inside the buffer, sequences closed, depth limited) and the four UIDs
 * (SOP Class, SOP Instance, Study, Series). Supports implicit/explicit VR little endian,
 * explicit big endian and deflated explicit LE; encapsulated pixel data is skipped, not decoded.
 *
 * The four UIDs and the Transfer Syntax UID must be 1 to 64 digits and dots (trailing NUL/space
 * padding aside): the store uses them as file names and URL parts. Invalid optional UIDs
 * (FrameOfReferenceUID) are dropped from the summary.
 *
 * On success fills *sum and, when json_out is not NULL, stores in *json_out a compact UTF-8 JSON
 * object (the DICOM JSON model of the dataset, file meta group excluded) that the caller owns
 * and frees with free(); *json_len (may be NULL) gets its length. With json_out NULL only the
 * summary is made (about 20 times faster). `opts` may be NULL for the defaults. Out-parameters
 * are written only on success. A deflated dataset is inflated into memory first, at most 64
 * times its compressed size and 2 GiB.
 * Returns TSR_OK, TSR_ECORRUPT (malformed, message says what and where), TSR_EINVAL (missing
 * meta or required UID, invalid UID), TSR_ELIMIT (sequences nested deeper than max_depth, or a
 * decompression bomb), TSR_ENOMEM. */
int dcm_parse(const uint8_t *buf, size_t len, const dcm_json_opts *opts, dcm_summary *sum,
              char **json_out, size_t *json_len, tsr_err *err);

/* Finds the value at `path` (the {path} form above; hex digits in either case) in a Part 10
 * file. For datasets that are not deflated, *off and *vlen give the value's place in `buf`; for
 * deflated ones returns TSR_EUNSUPP. *vr receives the two VR letters (from the dictionary for
 * implicit VR, UN when unknown) and *big_endian whether the value bytes are big endian.
 * Encapsulated pixel data is reported with vlen = 0xFFFFFFFF and *off at its first item (the
 * Basic Offset Table). Returns TSR_OK, TSR_EINVAL (malformed path, no meta), TSR_ENOTFOUND
 * (no such element or item, or the path names a sequence), TSR_EUNSUPP, TSR_ECORRUPT (the file
 * is malformed before the value is reached). Thread-safe. */
int dcm_find_value(const uint8_t *buf, size_t len, const char *path, size_t *off, uint32_t *vlen,
                   char vr[3], int *big_endian, tsr_err *err);

/* Keyword or 8-hex-digit tag to tag ("PatientName" or "00100010" -> 0x00100010), through the
 * dictionary of rnd.h. Returns 0 and writes *tag, or -1 for an unknown keyword / malformed tag.
 * Thread-safe. */
int dcm_tag_parse(const char *s, uint32_t *tag);

/* Whether s[0..len) is a UID as PS3.5 9.1 has it: 1..64 characters, components of digits
 * separated by single dots. The store uses UIDs as folder names and the HTTP layer as URL parts,
 * so both check them with this one function. */
int dcm_uid_valid(const char *s, size_t len);

/* The dictionary VR of a tag ("PN"; one VR where the dictionary allows several, see
 * rnd_dict_lookup), "UN" when unknown or private. Static string. Thread-safe. */
const char *dcm_tag_vr(uint32_t tag);

#ifdef __cplusplus
}
#endif

#endif
