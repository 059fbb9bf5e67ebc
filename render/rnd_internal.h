/* SPDX-License-Identifier: MIT */
/* rnd_internal.h: cross-file internals of the render core (prefix rnd__). Not a public API: only
 * the render sources, tests and benchmarks include it. */
#ifndef RND_INTERNAL_H
#define RND_INTERNAL_H

#include "rnd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Transfer Syntax UIDs the render core tells apart (PS3.5 A, PS3.6 A). */
#define TS_IMPLICIT_LE   "1.2.840.10008.1.2"
#define TS_EXPLICIT_LE   "1.2.840.10008.1.2.1"
#define TS_DEFLATED      "1.2.840.10008.1.2.1.99"
#define TS_EXPLICIT_BE   "1.2.840.10008.1.2.2"
#define TS_DEFLATED_IFC  "1.2.840.10008.1.2.8.1"
#define TS_RLE           "1.2.840.10008.1.2.5"
#define TS_JPEG_BASELINE "1.2.840.10008.1.2.4.50"
#define TS_JPEG_EXTENDED "1.2.840.10008.1.2.4.51"
#define TS_JPEG_LL14     "1.2.840.10008.1.2.4.57"
#define TS_JPEG_LL14SV1  "1.2.840.10008.1.2.4.70"
#define TS_JPEGLS_LL     "1.2.840.10008.1.2.4.80"
#define TS_JPEGLS_NEAR   "1.2.840.10008.1.2.4.81"
#define TS_J2K_LL        "1.2.840.10008.1.2.4.90"
#define TS_J2K           "1.2.840.10008.1.2.4.91"
#define TS_J2K_P2_LL     "1.2.840.10008.1.2.4.92"
#define TS_J2K_P2        "1.2.840.10008.1.2.4.93"
#define TS_HTJ2K_LL      "1.2.840.10008.1.2.4.201"
#define TS_HTJ2K_LL_RPCL "1.2.840.10008.1.2.4.202"
#define TS_HTJ2K         "1.2.840.10008.1.2.4.203"
#define TS_HTJ2K_PREFIX  "1.2.840.10008.1.2.4.20"

/* ================================================================ GDCM wrapper (rnd_gdcm.cpp)
 * The only code that touches GDCM. No C++ exception crosses these functions; GDCM's console
 * output is silenced and failures come back as tsr_err messages. */

typedef struct rnd__gdcm rnd__gdcm; /* a parsed file (gdcm::Reader) */
typedef struct rnd__ds rnd__ds;     /* a borrowed gdcm::DataSet, valid while its rnd__gdcm lives */

/* One element's raw value as held in memory. `vr` is the two-letter VR ("??" when unknown, as
 * in implicit VR files). Binary values are in little-endian order whatever the file's transfer
 * syntax (the wrapper swaps big-endian files when it reads them). */
typedef struct rnd__elem {
    const uint8_t *data;
    uint32_t len;
    char vr[3];
} rnd__elem;

/* Parses a DICOM file held in memory with GDCM. `buf` is borrowed for the call only (GDCM
 * copies every value). A buffer that ends inside a value is refused as truncated. */
int rnd__gdcm_open_mem(const void *buf, size_t len, rnd__gdcm **out, tsr_err *err);
void rnd__gdcm_close(rnd__gdcm *g);

/* Transfer syntax UID from the file meta information ("" when absent). */
const char *rnd__gdcm_transfer_syntax(const rnd__gdcm *g);
const rnd__ds *rnd__gdcm_root(const rnd__gdcm *g);

/* Element `tag` ((group << 16) | element) of dataset `ds`. Returns 1 and fills *e when present
 * with a value (possibly empty), 0 when absent. */
int rnd__ds_get(const rnd__ds *ds, uint32_t tag, rnd__elem *e);
/* Number of items of sequence `tag` (0 when absent or not a sequence), and item i's dataset. */
int rnd__ds_seq_count(const rnd__ds *ds, uint32_t tag);
const rnd__ds *rnd__ds_seq_item(const rnd__ds *ds, uint32_t tag, int i);

/* Encapsulated pixel data: number of fragments (excluding the Basic Offset Table item), or -1
 * when the pixel data is native or absent. */
int rnd__gdcm_fragment_count(const rnd__gdcm *g);
/* Fragment i (borrowed). */
int rnd__gdcm_fragment(const rnd__gdcm *g, int i, const uint8_t **data, uint32_t *len);
/* The Basic Offset Table's bytes (len 0 when empty). */
void rnd__gdcm_offset_table(const rnd__gdcm *g, const uint8_t **data, uint32_t *len);

/* Decodes one compressed frame (`data`, the concatenated fragments of that frame) with GDCM's
 * codecs into `out` (`out_len` bytes: rows*columns*samples*bits_allocated/8, planar as stored
 * by the codec). *out_pi receives the photometric interpretation of the decoded bytes (codecs
 * may convert YBR to RGB), *out_planar the planar configuration of the output. */
int rnd__gdcm_decode_frame(const rnd_info *info, const uint8_t *data, size_t len, void *out,
                           size_t out_len, rnd_photometric *out_pi, int *out_planar,
                           tsr_err *err);

/* Whether the dictionary gives `tag` the VRs "US or SS" (PS3.5 A.1 c: which one applies in
 * implicit VR data depends on PixelRepresentation). rnd_dict_lookup reports such tags as US. */
int rnd__dict_us_or_ss(uint32_t tag);

/* ================================================================ pre-check (rnd_precheck.c) */

/* Checks that the file meta group and every element, item and fragment of the dataset in `p`
 * lie inside the buffer and that sequences are closed, before GDCM (whose assertions abort on
 * such input) parses it. Writes the Transfer Syntax UID of the meta group into `ts` ("" when
 * there is none). Returns TSR_OK or TSR_ECORRUPT with a message. */
int rnd__precheck(const uint8_t *p, size_t len, char *ts, size_t cap, tsr_err *err);

/* ================================================================ attributes (rnd_attrs.c) */

/* Fills `info` from the parsed dataset, checking limits. Frees partial allocations on failure. */
int rnd__info_parse(const rnd__gdcm *g, const rnd_limits *lim, rnd_info *info, tsr_err *err);
void rnd__info_free(rnd_info *info);
void rnd__lut_free(rnd_lut *lut);

/* Parses a LUT from a dataset item holding LUT Descriptor `desc_tag` and LUT Data `data_tag`.
 * `first_signed` says whether descriptor[1] is to be read as signed (PS3.3 C.11.1.1.1: it is
 * for Modality and VOI LUTs when the input values are signed). Returns TSR_OK, TSR_ENOTFOUND
 * when the item is empty (such items are ignored), or an error. */
int rnd__lut_parse(const rnd__elem *desc, const rnd__elem *data, int first_signed, rnd_lut *lut,
                   tsr_err *err);

/* ================================================================ codecs (rnd_codec_*.c)
 * Each decodes one frame's compressed bytes into `out` laid out as rnd_frame expects
 * (interleaved, native type for the info's BitsAllocated). */

int rnd__rle_decode(const rnd_info *info, const uint8_t *data, size_t len, rnd_frame *out,
                    tsr_err *err);
/* JPEG-LS (lossless, near-lossless) through CharLS. *planar is set when colour samples came out
 * as planes (interleave mode 0) and still need interleaving. Sets out->photometric. */
int rnd__jls_decode(const rnd_info *info, const uint8_t *data, size_t len, rnd_frame *out,
                    int *planar, tsr_err *err);
/* Lossless JPEG (process 14, Huffman) by our own decoder (rnd_codec_ljpeg.c). Sets
 * out->photometric. TSR_EUNSUPP for arithmetic coding or subsampled components. */
int rnd__ljpeg_decode(const rnd_info *info, const uint8_t *data, size_t len, rnd_frame *out,
                      tsr_err *err);
/* 12-bit (and 8-bit) sequential DCT JPEG by our own decoder (rnd_codec_jpeg12.c), bit for bit
 * IJG's for grey and 4:4:4 / 4:2:2 colour (converted to RGB). Sets out->photometric. */
int rnd__jpeg12_decode(const rnd_info *info, const uint8_t *data, size_t len, rnd_frame *out,
                       tsr_err *err);
/* 8-bit JPEG baseline/extended through libjpeg-turbo. Sets out->photometric. */
int rnd__jpeg8_decode(const rnd_info *info, const uint8_t *data, size_t len, rnd_frame *out,
                      tsr_err *err);
/* JPEG 2000 (J2K codestream or JP2) through OpenJPEG. `reduce` discards that many resolution
 * levels (0 = full size; out must then have the reduced size). Sets out->photometric. */
/* The number of resolution levels a decode of this J2K codestream (or JP2 file) may discard,
 * at most `want`: the smallest number of decomposition levels in its main header (COD and COC
 * markers); 0 when the header cannot be read. */
int rnd__j2k_reduce_levels(const uint8_t *data, size_t len, int want);
/* Threads OpenJPEG may use for one decode: the online cores, at most 8. */
int rnd__j2k_threads(void);
int rnd__j2k_decode(const rnd_info *info, const uint8_t *data, size_t len, int reduce,
                    rnd_frame *out, tsr_err *err);

/* Strict scan of a JPEG codestream's headers (rnd_jpeg_check.c), SOI up to the first SOS: one
 * SOF with a sane precision, size, component count and sampling; an SOS whose components are in
 * the frame and whose Ss/Se/Ah/Al fit the frame's process (sequential DCT: 0, 63, 0, 0;
 * progressive and lossless per T.81 G.1.1.1 and H.1.2.3); segment lengths inside `len`. The
 * entropy-coded data is not read. Returns TSR_OK, TSR_EUNSUPP for hierarchical frames, else
 * TSR_ECORRUPT with a "JPEG: ..." message. Pure and thread-safe. */
int rnd__jpeg_check(const uint8_t *data, size_t len, tsr_err *err);

/* The compressed bytes of frame `index` of an encapsulated file: borrowed from the handle when
 * the frame is one fragment, else joined into *joined (caller frees). Thread-safe. */
int rnd__dicom_frame_data(const rnd_dicom *d, uint32_t index, const uint8_t **data, size_t *len,
                          uint8_t **joined, tsr_err *err);

/* Masks integer samples to info->bits_stored and sign-extends when signed, in place. */
void rnd__frame_normalize(rnd_frame *f);

/* ================================================================ display pipeline
 * (rnd_pipeline.c) */

/* PS3.3 C.11.2.1.2 / C.11.2.1.3: maps modality value x through window `w` to [ymin, ymax]
 * (real-valued, not rounded). Callers validate the width (LINEAR >= 1, others > 0); a width
 * below that is treated as a threshold (LINEAR at c - 0.5, the others at c: x at or below it
 * gives ymin, above it ymax), so nothing divides by zero. NaN x gives ymin. Pure and
 * thread-safe. */
double rnd__voi_apply(double x, const rnd_window *w, double ymin, double ymax);

/* ================================================================ geometry (rnd_resample.c) */

/* ================================================================ encode (rnd_encode.c) */

/* The encoders behind rnd_encode, with the knobs exposed for tests and benchmarks. `img` must
 * be valid (rnd_encode checks it). rnd__jpeg_encode takes quality 1..100; rnd__png_encode takes
 * a zlib level (0..9) and a mask of PNG_FILTER_* values. On success `out` owns new malloc'd
 * bytes (free with rnd_buf_free); on failure it is untouched. Thread-safe. */
int rnd__jpeg_encode(const rnd_image *img, int quality, rnd_buf *out, tsr_err *err);
int rnd__png_encode(const rnd_image *img, int zlevel, int filters, rnd_buf *out, tsr_err *err);

/* PNG settings used by rnd_encode: zlib level 1 and the UP filter alone (PNG_FILTER_UP is 0x20;
 * png.h is not included here). Chosen by measurement, see rnd_encode.c. */
#define RND__PNG_ZLEVEL  1
#define RND__PNG_FILTERS 0x20

#ifdef __cplusplus
}
#endif

/* 3-vectors (patient coordinates) for rnd_volume.c and rnd_mpr.c. */
static inline double
rnd__dot3(const double *a, const double *b)
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static inline void
rnd__cross3(const double *a, const double *b, double *out)
{
    out[0] = a[1] * b[2] - a[2] * b[1];
    out[1] = a[2] * b[0] - a[0] * b[2];
    out[2] = a[0] * b[1] - a[1] * b[0];
}

#endif
