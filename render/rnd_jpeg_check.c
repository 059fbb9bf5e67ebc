/* SPDX-License-Identifier: MIT */
/* rnd_jpeg_check.c: a strict scan of a JPEG codestream's headers (ITU-T T.81 Annex B), from SOI
 * up to the first SOS, before any codec sees the data.
 *
 * Why: the IJG decoders treat several header violations as warnings. GDCM's bundled IJG prints
 * them to stderr (which no per-request error can capture) and decodes anyway, so a malformed
 * codestream would be served as if it were fine and leave noise in the server log. Checking the
 * few bytes of header ourselves lets a bad frame fail with a message in the caller's tsr_err,
 * the same way whichever codec decodes it. Only headers are read: the entropy-coded data after
 * SOS is left to the codec. */
#include "rnd_internal.h"

#include <stdio.h>
#include <string.h>

/* Marker codes (T.81 Table B.1). */
#define M_SOF0 0xC0 /* SOF0..SOF15 are 0xC0..0xCF, less DHT, JPG and DAC */
#define M_DHT  0xC4
#define M_JPG  0xC8
#define M_DAC  0xCC
#define M_SOI  0xD8
#define M_EOI  0xD9
#define M_SOS  0xDA
#define M_DQT  0xDB
#define M_DRI  0xDD
#define M_APP0 0xE0
#define M_APPF 0xEF
#define M_COM  0xFE

#define MAX_COMPS 4 /* DICOM uses 1 or 3; progressive JPEG allows at most 4 */

typedef enum process { PROC_SEQUENTIAL, PROC_PROGRESSIVE, PROC_LOSSLESS } process;

typedef struct frame_hdr {
    int seen;
    unsigned sof; /* marker number, 0..15 */
    process proc;
    unsigned precision;
    unsigned nf;
    uint8_t id[MAX_COMPS], h[MAX_COMPS], v[MAX_COMPS];
} frame_hdr;

static unsigned
be16(const uint8_t *p)
{
    return ((unsigned)p[0] << 8) | p[1];
}

static int
parse_sof(unsigned m, const uint8_t *s, unsigned len, frame_hdr *f, tsr_err *err)
{
    unsigned n = m - M_SOF0;
    if (f->seen) {
        return tsr_err_set(err, TSR_ECORRUPT,
                           "JPEG: more than one SOF marker before the first scan");
    }
    /* SOF5-7 and SOF13-15 are differential frames of the hierarchical process, which no
     * transfer syntax we decode allows (PS3.5 A.4.1). */
    if ((n >= 5 && n <= 7) || n >= 13) {
        return tsr_err_set(err, TSR_EUNSUPP,
                           "JPEG: hierarchical (differential) process SOF%u is not supported", n);
    }
    f->seen = 1;
    f->sof = n;
    f->proc = (n == 2 || n == 10)   ? PROC_PROGRESSIVE
              : (n == 3 || n == 11) ? PROC_LOSSLESS
                                    : PROC_SEQUENTIAL;
    if (len < 6) {
        return tsr_err_set(err, TSR_ECORRUPT, "JPEG: SOF%u segment is too short", n);
    }
    unsigned p = s[0], y = be16(s + 1), x = be16(s + 3), nf = s[5];
    int p_ok = f->proc == PROC_LOSSLESS ? (p >= 2 && p <= 16)
               : n == 0                 ? p == 8
                                        : (p == 8 || p == 12);
    if (!p_ok) {
        return tsr_err_set(err, TSR_ECORRUPT, "JPEG: sample precision %u is invalid for SOF%u", p,
                           n);
    }
    if (x == 0 || y == 0) {
        /* Y = 0 defers the height to a DNL marker, which the IJG decoders do not support. */
        return tsr_err_set(err, TSR_ECORRUPT, "JPEG: frame size %ux%u is invalid", x, y);
    }
    if (nf == 0 || nf > MAX_COMPS) {
        return tsr_err_set(err, TSR_ECORRUPT, "JPEG: %u components in SOF%u (expected 1..%u)", nf,
                           n, MAX_COMPS);
    }
    if (len != 6 + 3 * nf) {
        return tsr_err_set(err, TSR_ECORRUPT, "JPEG: SOF%u length %u does not match %u components",
                           n, len + 2, nf);
    }
    for (unsigned i = 0; i < nf; i++) {
        const uint8_t *c = s + 6 + 3 * i;
        unsigned h = c[1] >> 4, v = c[1] & 15, tq = c[2];
        for (unsigned j = 0; j < i; j++) {
            if (f->id[j] == c[0]) {
                return tsr_err_set(err, TSR_ECORRUPT, "JPEG: component id %u appears twice in SOF",
                                   c[0]);
            }
        }
        if (h < 1 || h > 4 || v < 1 || v > 4) {
            return tsr_err_set(err, TSR_ECORRUPT,
                               "JPEG: component %u has invalid sampling factors %ux%u", c[0], h, v);
        }
        if (tq > 3) {
            return tsr_err_set(err, TSR_ECORRUPT,
                               "JPEG: component %u uses quantization table %u (max 3)", c[0], tq);
        }
        f->id[i] = c[0];
        f->h[i] = (uint8_t)h;
        f->v[i] = (uint8_t)v;
    }
    f->precision = p;
    f->nf = nf;
    return TSR_OK;
}

/* Writes "(Ss=.., Se=..)" into buf, adding Ah and Al when either is set. */
static void
sos_params(char *buf, size_t cap, unsigned ss, unsigned se, unsigned ah, unsigned al)
{
    if (ah || al) {
        snprintf(buf, cap, "(Ss=%u, Se=%u, Ah=%u, Al=%u)", ss, se, ah, al);
    } else {
        snprintf(buf, cap, "(Ss=%u, Se=%u)", ss, se);
    }
}

static int
parse_sos(const uint8_t *s, unsigned len, const frame_hdr *f, tsr_err *err)
{
    if (!f->seen) {
        return tsr_err_set(err, TSR_ECORRUPT, "JPEG: SOS marker before any SOF marker");
    }
    if (len < 1) {
        return tsr_err_set(err, TSR_ECORRUPT, "JPEG: SOS segment is too short");
    }
    unsigned ns = s[0];
    if (ns == 0 || ns > f->nf) {
        return tsr_err_set(err, TSR_ECORRUPT, "JPEG: SOS has %u components, the frame has %u", ns,
                           f->nf);
    }
    if (len != 4 + 2 * ns) {
        return tsr_err_set(err, TSR_ECORRUPT, "JPEG: SOS length %u does not match %u components",
                           len + 2, ns);
    }
    unsigned blocks = 0;
    uint8_t used[MAX_COMPS] = {0};
    for (unsigned i = 0; i < ns; i++) {
        const uint8_t *c = s + 1 + 2 * i;
        unsigned k = 0;
        while (k < f->nf && f->id[k] != c[0]) {
            k++;
        }
        if (k == f->nf || used[k]) {
            return tsr_err_set(err, TSR_ECORRUPT, "JPEG: SOS names component %u %s", c[0],
                               k == f->nf ? "that is not in the frame" : "twice");
        }
        used[k] = 1;
        blocks += (unsigned)f->h[k] * f->v[k];
        if ((c[1] >> 4) > 3 || (c[1] & 15) > 3) {
            return tsr_err_set(err, TSR_ECORRUPT, "JPEG: SOS component %u has invalid tables %u/%u",
                               c[0], c[1] >> 4, c[1] & 15);
        }
    }
    const uint8_t *t = s + 1 + 2 * ns;
    unsigned ss = t[0], se = t[1], ah = t[2] >> 4, al = t[2] & 15;
    char prm[64];
    sos_params(prm, sizeof prm, ss, se, ah, al);

    switch (f->proc) {
    case PROC_SEQUENTIAL:
        /* T.81 B.2.3: a sequential DCT scan codes the whole band, without approximation. The
         * IJG decoders only warn about anything else ("Invalid SOS parameters for sequential
         * JPEG") and decode as if Se were 63; PVRG-written files (e.g. the NEMA *_JPLY set) have
         * Se = 0 here. Both reference toolkits (DCMTK, GDCM) decode those, and archives hold
         * them, so Se = 0 is tolerated as that known encoder quirk; anything else is refused. */
        if (ss != 0 || (se != 63 && se != 0) || ah != 0 || al != 0) {
            return tsr_err_set(err, TSR_ECORRUPT,
                               "JPEG: invalid SOS parameters for a sequential DCT process %s", prm);
        }
        break;
    case PROC_PROGRESSIVE:
        /* T.81 G.1.1.1: a DC scan has Ss = Se = 0, an AC scan 1 <= Ss <= Se <= 63 and one
         * component; a refinement scan lowers the point transform by exactly one. */
        if ((ss == 0 && se != 0) || ss > se || se > 63 || (ss > 0 && ns != 1) || al > 13 ||
            (ah != 0 && al != ah - 1)) {
            return tsr_err_set(err, TSR_ECORRUPT,
                               "JPEG: invalid SOS parameters for a progressive DCT process %s",
                               prm);
        }
        break;
    case PROC_LOSSLESS:
        /* T.81 H.1.2.3 / H.2.1: Ss is the predictor (1..7 outside hierarchical mode), Se and
         * Ah are unused and zero, Al is the point transform. */
        if (ss < 1 || ss > 7 || se != 0 || ah != 0 || al >= f->precision) {
            return tsr_err_set(err, TSR_ECORRUPT,
                               "JPEG: invalid SOS parameters for a lossless process %s", prm);
        }
        break;
    }
    /* T.81 B.2.3: at most 10 data units in the MCU of an interleaved DCT scan. */
    if (f->proc != PROC_LOSSLESS && ns > 1 && blocks > 10) {
        return tsr_err_set(err, TSR_ECORRUPT,
                           "JPEG: %u blocks per MCU in an interleaved scan (max 10)", blocks);
    }
    return TSR_OK;
}

int
rnd__jpeg_check(const uint8_t *data, size_t len, tsr_err *err)
{
    frame_hdr f;
    memset(&f, 0, sizeof f);
    if (!data || len < 4 || data[0] != 0xFF || data[1] != M_SOI) {
        return tsr_err_set(err, TSR_ECORRUPT, "JPEG: the data does not start with an SOI marker");
    }
    size_t i = 2;
    for (;;) {
        if (i >= len) {
            return tsr_err_set(err, TSR_ECORRUPT, "JPEG: the data ends before the first scan");
        }
        if (data[i] != 0xFF) {
            return tsr_err_set(err, TSR_ECORRUPT,
                               "JPEG: expected a marker at byte %zu, found 0x%02X", i, data[i]);
        }
        while (i < len && data[i] == 0xFF) { /* fill bytes (T.81 B.1.1.2) */
            i++;
        }
        if (i >= len) {
            return tsr_err_set(err, TSR_ECORRUPT, "JPEG: the data ends before the first scan");
        }
        unsigned m = data[i++];
        if (m == M_EOI) {
            return tsr_err_set(err, TSR_ECORRUPT, "JPEG: EOI marker before the first scan");
        }
        int known = (m >= M_SOF0 && m <= 0xCF && m != M_JPG) || m == M_SOS || m == M_DQT ||
                    m == M_DRI || (m >= M_APP0 && m <= M_APPF) || m == M_COM;
        if (!known) {
            /* SOI again, RSTn, TEM, DNL before a scan, reserved and JPEG-LS markers: the IJG
             * decoders reject these too. */
            return tsr_err_set(err, TSR_ECORRUPT,
                               "JPEG: unexpected marker 0x%02X before the first scan", m);
        }
        if (len - i < 2) {
            return tsr_err_set(err, TSR_ECORRUPT, "JPEG: the data ends inside marker 0x%02X", m);
        }
        unsigned seg = be16(data + i);
        if (seg < 2 || seg > len - i) {
            return tsr_err_set(err, TSR_ECORRUPT,
                               "JPEG: marker 0x%02X has length %u, %zu bytes are left", m, seg,
                               len - i);
        }
        const uint8_t *body = data + i + 2;
        unsigned blen = seg - 2;
        i += seg;
        int rc = TSR_OK;
        if (m == M_SOS) {
            return parse_sos(body, blen, &f, err);
        }
        if (m >= M_SOF0 && m <= 0xCF && m != M_DHT && m != M_DAC) {
            rc = parse_sof(m, body, blen, &f, err);
        } else if (m == M_DRI && blen != 2) {
            rc = tsr_err_set(err, TSR_ECORRUPT, "JPEG: DRI segment has length %u", seg);
        }
        if (rc != TSR_OK) {
            return rc;
        }
    }
}
