/* SPDX-License-Identifier: MIT */
/* demo.h: synthetic demo studies, so that Tessera can be shown and tested without downloading
 * patient data. Two layers:
 *
 *     demo_ds_*        a minimal DICOM Part 10 writer: an in-memory element list, written in
 *                      ascending tag order as explicit VR little endian, atomically (temp file
 *                      in the same folder, fsync, rename)
 *     demo_ct_series   generators of phantom studies built on that writer: a CT series, a
 *     demo_cr_mono1    MONOCHROME1 radiograph and a colour ultrasound cine
 *     demo_us_cine
 *     demo_all
 *
 * Everything is deterministic: the same arguments always produce byte-identical files (fixed
 * dates, UIDs derived from names, seeded noise), so the demo is reproducible and its files can
 * be compared across runs. Depends on tsr_base and libm only.
 *
 * Conventions: functions return TSR_OK or a negative TSR_E* code and fill the optional tsr_err;
 * out-parameters are written only on success. */
#ifndef DEMO_H
#define DEMO_H

#include "tsr_base.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- UIDs */

#define DEMO_UID_MAX 64 /* PS3.5 9.1: at most 64 characters */

/* Writes into `out` the UID "2.25.<decimal>" derived from `name`: the 128-bit FNV-1a hash of the
 * bytes of `name`, with the version nibble set to 8 and the variant bits to 10 so that the value
 * is a well-formed RFC 9562 UUID (version 8, custom), written as one unsigned decimal integer as
 * PS3.5 B.2 prescribes for the 2.25 root. The result has at most 44 characters. Generators name
 * their UIDs "tessera-demo/<study>/<series>/<instance>", so repeated runs give identical UIDs.
 * Pure and thread-safe. */
void demo_uid_from_name(const char *name, char out[DEMO_UID_MAX + 1]);

/* Returns 1 when `s` is a valid UID (PS3.5 9.1): 1..64 characters, components of digits
 * separated by single dots, no empty component and no component with a leading zero (a
 * component "0" is allowed). Returns 0 otherwise, and for NULL. */
int demo_uid_valid(const char *s);

/* ---------------------------------------------------------------- dataset writer */

#define DEMO_TAG(group, element) (((uint32_t)(group) << 16) | (uint32_t)(element))

/* A dataset under construction: a list of elements kept in memory and written sorted by tag.
 * Values are copied when they are put. A put to a tag already present replaces its value.
 *
 * Errors are sticky: the first failing put records its message in the dataset, later puts do
 * nothing and return the same code, and demo_ds_write returns that error. A generator can
 * therefore put a whole list of attributes and check once. Not thread-safe (one thread per
 * dataset); distinct datasets are independent. */
typedef struct demo_ds demo_ds;

/* Creates an empty dataset. On success *out receives a dataset the caller owns (free with
 * demo_ds_free). Returns TSR_OK or TSR_ENOMEM. */
int demo_ds_create(demo_ds **out, tsr_err *err);

/* Frees the dataset and every value it holds. NULL is a no-op. */
void demo_ds_free(demo_ds *ds);

/* Puts a string-valued element. `vr` is one of AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR
 * UT; `value` is the whole value, multiple values separated by '\\' ("" gives an empty, zero
 * length element). The value is padded to even length (UI with NUL, the others with a space).
 * Checked: each value fits the VR's maximum length, UI values are valid UIDs, and nothing
 * outside printable ASCII (plus CR/LF in LT, ST, UT) is used. Group 0002 (written by
 * demo_ds_write) and group 0000 are refused. Returns TSR_OK, TSR_EINVAL or TSR_ENOMEM. */
int demo_ds_put_str(demo_ds *ds, uint32_t tag, const char *vr, const char *value);

/* Puts a DS (decimal string) element with `n` values (1..16), each formatted with the most
 * significant digits that fit the 16-character limit. Non-finite values are refused. */
int demo_ds_put_ds(demo_ds *ds, uint32_t tag, const double *values, size_t n);

/* Puts an IS (integer string) element with one value in [-2^31, 2^31 - 1]. */
int demo_ds_put_is(demo_ds *ds, uint32_t tag, long value);

/* Puts a US element (one unsigned 16-bit value), a UL element (one unsigned 32-bit value) or an
 * AT element (one attribute tag, e.g. FrameIncrementPointer), little endian. */
int demo_ds_put_us(demo_ds *ds, uint32_t tag, uint16_t value);
int demo_ds_put_ul(demo_ds *ds, uint32_t tag, uint32_t value);
int demo_ds_put_at(demo_ds *ds, uint32_t tag, uint32_t value_tag);

/* Puts a binary element of VR OB or UN: `len` bytes copied from `data` (borrowed for the call),
 * padded with one zero byte when `len` is odd. At most 0xFFFFFFFE bytes after padding. */
int demo_ds_put_bytes(demo_ds *ds, uint32_t tag, const char *vr, const void *data, size_t len);

/* The same, but consumes `data`: the dataset takes over the malloc'd buffer (and frees it with
 * free, even when the put fails), which avoids copying large pixel data. */
int demo_ds_put_bytes_owned(demo_ds *ds, uint32_t tag, const char *vr, void *data, size_t len);

/* Puts an OW element from `n` host-order 16-bit words (borrowed for the call), stored little
 * endian whatever the host. Signed pixel data is passed through a uint16_t view of the same
 * two's complement bits. */
int demo_ds_put_words(demo_ds *ds, uint32_t tag, const uint16_t *words, size_t n);

/* Writes the dataset to `path` as a DICOM Part 10 file: 128-byte zero preamble, "DICM", the
 * group 0002 file meta information (group length, version 00\01, the media storage SOP class
 * and instance UIDs copied from the dataset's SOPClassUID (0008,0016) and SOPInstanceUID
 * (0008,0018), which must be present, transfer syntax 1.2.840.10008.1.2.1 explicit VR little
 * endian, the implementation class UID and the version name "TESSERA_0.1"), then the elements in
 * ascending tag order, explicit VR little endian, with the 4-byte length form for OB OD OF OL OV
 * OW SQ SV UC UN UR UT UV and the 2-byte form otherwise.
 *
 * The file is written to a temporary file in the same folder, flushed with fsync and renamed
 * over `path`, and the folder is synced: a reader sees either the old file or the complete new
 * one, never a partial file. On failure the temporary file is removed and `path` is untouched.
 * Returns TSR_OK, the dataset's recorded error, TSR_EINVAL or TSR_EIO (with the file name and
 * the system's reason in `err`). Thread-safe for distinct paths. */
int demo_ds_write(const demo_ds *ds, const char *path, tsr_err *err);

/* Creates folder `path` and any missing parents (mode 0777 before umask), like `mkdir -p`.
 * An existing folder is fine. Returns TSR_OK, or TSR_EIO naming the component that failed. */
int demo_mkdirs(const char *path, tsr_err *err);

/* ---------------------------------------------------------------- phantom studies */

/* CT series geometry. Slices are axial (ImageOrientationPatient 1\0\0\0\1\0, patient LPS
 * coordinates in mm), DEMO_CT_SIZE x DEMO_CT_SIZE pixels of DEMO_CT_SPACING mm centred on the
 * z axis, DEMO_CT_THICKNESS mm thick and contiguous, centred on z = 0: slice k of n (0-based) is
 * at z = (k - (n - 1) / 2) * DEMO_CT_THICKNESS, so the default 120 slices cover the whole
 * phantom (z = -148.75 .. 148.75). InstanceNumber k + 1 increases with z. */
#define DEMO_CT_SLICES_DEFAULT 120
#define DEMO_CT_SLICES_MAX     1000
#define DEMO_CT_SIZE           512
#define DEMO_CT_SPACING        0.7
#define DEMO_CT_THICKNESS      2.5
#define DEMO_CT_NOISE_HU       10 /* the added noise is an integer in [-10, 10] HU */

/* Stored value = HU - DEMO_CT_INTERCEPT (RescaleSlope 1, RescaleIntercept -1024). */
#define DEMO_CT_INTERCEPT (-1024)

/* Radiograph and ultrasound sizes. */
#define DEMO_CR_COLUMNS        1760
#define DEMO_CR_ROWS           2140
#define DEMO_US_COLUMNS        640
#define DEMO_US_ROWS           480
#define DEMO_US_FRAMES_DEFAULT 30
#define DEMO_US_FRAMES_MAX     300
#define DEMO_US_FRAME_RATE     30 /* frames per second; one heartbeat (60/min) = 30 frames */

/* What a generator wrote, for reports. */
typedef struct demo_summary {
    const char *name;        /* "ct", "cr" or "us": static string */
    const char *description; /* one line, static string */
    const char *modality;    /* "CT", "CR", "US": static string */
    uint32_t files;          /* DICOM files written */
    uint32_t columns, rows;  /* of one frame */
    uint32_t frames;         /* frames in total, over all files */
    uint64_t bytes;          /* bytes written */
    char study_uid[DEMO_UID_MAX + 1];
    char series_uid[DEMO_UID_MAX + 1];
} demo_summary;

/* The noise-free Hounsfield value of the CT phantom at patient point (x, y, z), in mm, LPS
 * (x to the patient's left, y posterior, z head-wards). The phantom is a head, neck and upper
 * torso built from ellipsoids and elliptic cylinders: air -1000 outside; skin 40, subcutaneous
 * fat -100 and muscle 40 in layers; lungs -850; heart 45; liver 60 with a hypodense lesion 15;
 * a contrast-filled aorta and carotids 250; ribs and sternum 700; vertebrae and skull of
 * cortical bone 1000 around marrow 300, discs 80; brain 35 with ventricles 5; eyes 10; a table
 * top 150 under the patient. The CT files hold exactly this value
 * plus noise in [-DEMO_CT_NOISE_HU, DEMO_CT_NOISE_HU] at each pixel centre. Pure, thread-safe. */
double demo_ct_phantom_hu(double x, double y, double z);

/* Writes a CT series of `n_slices` slices (0 means DEMO_CT_SLICES_DEFAULT; at most
 * DEMO_CT_SLICES_MAX) of the phantom into folder `dir` (created if missing) as
 * CT_0001.dcm, CT_0002.dcm, ... (CT Image Storage, 1.2.840.10008.5.1.4.1.1.2): 512x512 signed
 * 16-bit (BitsStored 16, PixelRepresentation 1), RescaleIntercept -1024, RescaleSlope 1, two
 * windows 40/400 "SOFT TISSUE" and 600/2000 "BONE", true geometry as described above, patient
 * position HFS. Files of an earlier run with more slices are not removed. `sum` may be NULL.
 * Returns TSR_OK, TSR_EINVAL (bad count), TSR_EIO or TSR_ENOMEM with a message. */
int demo_ct_series(const char *dir, int n_slices, demo_summary *sum, tsr_err *err);

/* Writes one chest radiograph into `dir` (created if missing) as CR_0001.dcm (Computed
 * Radiography Image Storage, 1.2.840.10008.5.1.4.1.1.1): DEMO_CR_COLUMNS x DEMO_CR_ROWS,
 * MONOCHROME1 (high values display dark: direct exposure is about 3800, bone and collimated
 * borders are low), unsigned 16-bit with BitsStored 12, PixelSpacing and ImagerPixelSpacing
 * 0.2 mm, a PA view of a projected chest phantom, one window. `sum` may be NULL. */
int demo_cr_mono1(const char *dir, demo_summary *sum, tsr_err *err);

/* Writes one ultrasound cine into `dir` (created if missing) as US_0001.dcm (Ultrasound
 * Multi-frame Image Storage, 1.2.840.10008.5.1.4.1.1.3.1): `n_frames` frames (0 means
 * DEMO_US_FRAMES_DEFAULT; at most DEMO_US_FRAMES_MAX) of DEMO_US_COLUMNS x DEMO_US_ROWS RGB,
 * 8 bits, PlanarConfiguration 0, at DEMO_US_FRAME_RATE frames per second (FrameTime, CineRate):
 * a grey B-mode sector with speckle, a beating two-chamber heart and a red/blue colour Doppler
 * box over the valve. `sum` may be NULL. */
int demo_us_cine(const char *dir, int n_frames, demo_summary *sum, tsr_err *err);

/* Options of demo_all; zero fields mean the defaults. */
typedef struct demo_opts {
    int ct_slices;
    int us_frames;
} demo_opts;

#define DEMO_N_STUDIES 3

/* Writes the three studies under `dir` (created if missing): dir/ct, dir/cr and dir/us, in that
 * order. `opts` may be NULL for the defaults. On success out[0..2] (may be NULL) describe what
 * was written, in that order. On failure the message names the study that failed; studies
 * written before it stay on disk. */
int demo_all(const char *dir, const demo_opts *opts, demo_summary out[DEMO_N_STUDIES],
             tsr_err *err);

#ifdef __cplusplus
}
#endif

#endif
