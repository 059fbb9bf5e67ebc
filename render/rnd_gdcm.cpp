// SPDX-License-Identifier: MIT
// rnd_gdcm.cpp: the one C++ file. Wraps GDCM behind the narrow C API declared in rnd_internal.h:
// parsing a file into a dataset, raw element access, fragment access, and one-frame decoding with
// GDCM's codecs. Every entry point catches all exceptions; GDCM's console output is switched off
// and failures are reported through tsr_err.

#include "rnd_internal.h"

#include <gdcmBitmap.h>
#include <gdcmDataSet.h>
#include <gdcmFileMetaInformation.h>
#include <gdcmFragment.h>
#include <gdcmImage.h>
#include <gdcmReader.h>
#include <gdcmSequenceOfFragments.h>
#include <gdcmSequenceOfItems.h>
#include <gdcmTrace.h>
#include <gdcmTransferSyntax.h>

#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <new>
#include <string>
#include <vector>

namespace {

// GDCM prints warnings and errors to std::cerr by default. Switch that off once, process-wide
// (GDCM's trace flags are global).
void
quiet_gdcm()
{
    static std::once_flag once;
    std::call_once(once, [] {
        gdcm::Trace::SetDebug(false);
        gdcm::Trace::SetWarning(false);
        gdcm::Trace::SetError(false);
    });
}

// An std::streambuf over memory, so GDCM can parse a buffer in place.
struct mem_streambuf : std::streambuf {
    mem_streambuf(const char *p, size_t n)
    {
        char *b = const_cast<char *>(p);
        setg(b, b, b + n);
    }
    pos_type
    seekoff(off_type off, std::ios_base::seekdir dir, std::ios_base::openmode) override
    {
        char *base = dir == std::ios_base::beg ? eback() : dir == std::ios_base::cur ? gptr() : egptr();
        if (off < eback() - base || off > egptr() - base) {
            return pos_type(off_type(-1));
        }
        setg(eback(), base + off, egptr());
        return pos_type(gptr() - eback());
    }
    pos_type
    seekpos(pos_type pos, std::ios_base::openmode mode) override
    {
        return seekoff(off_type(pos), std::ios_base::beg, mode);
    }
    // A read that finds some but not all of the bytes it asks for means the input ends inside
    // a value: the file is truncated. (A read at the very end finding nothing is how a parser
    // meets the normal end of a dataset.)
    std::streamsize
    xsgetn(char *s, std::streamsize n) override
    {
        std::streamsize avail = egptr() - gptr();
        if (avail > 0 && avail < n) {
            truncated = true;
        }
        return std::streambuf::xsgetn(s, n);
    }
    bool truncated = false;
};

} // namespace

// A dataset reference handed to C: the handle it belongs to plus GDCM's dataset.
struct rnd__ds {
    rnd__gdcm *g;
    const gdcm::DataSet *ds;
};

struct rnd__gdcm {
    gdcm::Reader reader;
    std::string ts;
    rnd__ds root{};
    const gdcm::SequenceOfFragments *frags = nullptr;
    // Sequences GDCM parses on access (implicit VR with defined length) and the references to
    // their items live as long as the handle, so pointers handed to C stay valid. Only filled
    // while parsing attributes (single-threaded), but guarded anyway.
    std::mutex mu;
    std::vector<gdcm::SmartPointer<gdcm::SequenceOfItems>> seqs;
    std::deque<rnd__ds> refs;
};

static int
finish_open(rnd__gdcm *g, tsr_err *err)
{
    const gdcm::File &file = g->reader.GetFile();
    g->ts = file.GetHeader().GetDataSetTransferSyntax().GetString()
                ? file.GetHeader().GetDataSetTransferSyntax().GetString()
                : "";
    while (!g->ts.empty() && (g->ts.back() == ' ' || g->ts.back() == '\0')) {
        g->ts.pop_back();
    }
    g->root.g = g;
    g->root.ds = &file.GetDataSet();
    const gdcm::Tag pixel(0x7fe0, 0x0010);
    if (g->root.ds->FindDataElement(pixel)) {
        g->frags = g->root.ds->GetDataElement(pixel).GetSequenceOfFragments();
    }
    (void)err;
    return TSR_OK;
}

extern "C" int
rnd__gdcm_open_mem(const void *buf, size_t len, rnd__gdcm **out, tsr_err *err)
{
    quiet_gdcm();
    rnd__gdcm *g = nullptr;
    try {
        g = new rnd__gdcm;
        // GDCM copies every value out of the stream while reading, so `buf` is only borrowed
        // for this call; the reader's stream pointer is never used after Read().
        mem_streambuf sb(static_cast<const char *>(buf), len);
        std::istream is(&sb);
        g->reader.SetStream(is);
        if (!g->reader.Read()) {
            delete g;
            return tsr_err_set(err, TSR_ECORRUPT, "not a readable DICOM dataset");
        }
        // GDCM's inflater reads deflated datasets in whole blocks, so a short last block is
        // normal there.
        const char *ts = g->reader.GetFile().GetHeader().GetDataSetTransferSyntax().GetString();
        bool deflated = ts && std::strncmp(ts, "1.2.840.10008.1.2.1.99", 22) == 0;
        if (sb.truncated && !deflated) {
            delete g;
            return tsr_err_set(err, TSR_ECORRUPT, "truncated: the data ends inside a value");
        }
        int rc = finish_open(g, err);
        if (rc != TSR_OK) {
            delete g;
            return rc;
        }
    } catch (const std::bad_alloc &) {
        delete g;
        return tsr_err_set(err, TSR_ENOMEM, "out of memory while parsing");
    } catch (...) {
        delete g;
        return tsr_err_set(err, TSR_ECORRUPT, "not a readable DICOM dataset");
    }
    *out = g;
    return TSR_OK;
}

extern "C" void
rnd__gdcm_close(rnd__gdcm *g)
{
    delete g;
}

extern "C" const char *
rnd__gdcm_transfer_syntax(const rnd__gdcm *g)
{
    return g->ts.c_str();
}

extern "C" const rnd__ds *
rnd__gdcm_root(const rnd__gdcm *g)
{
    return &g->root;
}

extern "C" int
rnd__ds_get(const rnd__ds *ds, uint32_t tag, rnd__elem *e)
{
    try {
        const gdcm::Tag t(uint16_t(tag >> 16), uint16_t(tag & 0xffff));
        if (!ds->ds->FindDataElement(t)) {
            return 0;
        }
        const gdcm::DataElement &de = ds->ds->GetDataElement(t);
        const gdcm::ByteValue *bv = de.GetByteValue();
        e->data = bv ? reinterpret_cast<const uint8_t *>(bv->GetPointer()) : nullptr;
        e->len = bv ? uint32_t(bv->GetLength()) : 0;
        const char *vr = gdcm::VR::GetVRStringFromFile(de.GetVR());
        if (!vr || std::strlen(vr) != 2) {
            vr = "??";
        }
        std::memcpy(e->vr, vr, 2);
        e->vr[2] = '\0';
        if (!e->data) {
            e->len = 0;
        }
        return 1;
    } catch (...) {
        return 0;
    }
}

static gdcm::SmartPointer<gdcm::SequenceOfItems>
seq_of(const rnd__ds *ds, uint32_t tag)
{
    const gdcm::Tag t(uint16_t(tag >> 16), uint16_t(tag & 0xffff));
    if (!ds->ds->FindDataElement(t)) {
        return nullptr;
    }
    const gdcm::DataElement &de = ds->ds->GetDataElement(t);
    if (de.IsEmpty()) {
        return nullptr;
    }
    gdcm::SmartPointer<gdcm::SequenceOfItems> sq = de.GetValueAsSQ();
    if (sq) {
        std::lock_guard<std::mutex> lk(ds->g->mu);
        ds->g->seqs.push_back(sq);
    }
    return sq;
}

extern "C" int
rnd__ds_seq_count(const rnd__ds *ds, uint32_t tag)
{
    try {
        gdcm::SmartPointer<gdcm::SequenceOfItems> sq = seq_of(ds, tag);
        return sq ? int(sq->GetNumberOfItems()) : 0;
    } catch (...) {
        return 0;
    }
}

extern "C" const rnd__ds *
rnd__ds_seq_item(const rnd__ds *ds, uint32_t tag, int i)
{
    try {
        gdcm::SmartPointer<gdcm::SequenceOfItems> sq = seq_of(ds, tag);
        if (!sq || i < 0 || size_t(i) >= sq->GetNumberOfItems()) {
            return nullptr;
        }
        // GDCM numbers items from 1.
        const gdcm::Item &item = sq->GetItem(size_t(i) + 1);
        std::lock_guard<std::mutex> lk(ds->g->mu);
        ds->g->refs.push_back(rnd__ds{ds->g, &item.GetNestedDataSet()});
        return &ds->g->refs.back();
    } catch (...) {
        return nullptr;
    }
}

extern "C" int
rnd__gdcm_fragment_count(const rnd__gdcm *g)
{
    return g->frags ? int(g->frags->GetNumberOfFragments()) : -1;
}

extern "C" int
rnd__gdcm_fragment(const rnd__gdcm *g, int i, const uint8_t **data, uint32_t *len)
{
    try {
        if (!g->frags || i < 0 || size_t(i) >= g->frags->GetNumberOfFragments()) {
            return TSR_EINVAL;
        }
        const gdcm::ByteValue *bv = g->frags->GetFragment(size_t(i)).GetByteValue();
        *data = bv ? reinterpret_cast<const uint8_t *>(bv->GetPointer()) : nullptr;
        *len = bv ? uint32_t(bv->GetLength()) : 0;
        return TSR_OK;
    } catch (...) {
        return TSR_ECORRUPT;
    }
}

extern "C" void
rnd__gdcm_offset_table(const rnd__gdcm *g, const uint8_t **data, uint32_t *len)
{
    *data = nullptr;
    *len = 0;
    try {
        if (g->frags) {
            const gdcm::ByteValue *bv = g->frags->GetTable().GetByteValue();
            if (bv) {
                *data = reinterpret_cast<const uint8_t *>(bv->GetPointer());
                *len = uint32_t(bv->GetLength());
            }
        }
    } catch (...) {
    }
}

extern "C" int
rnd__gdcm_decode_frame(const rnd_info *info, const uint8_t *data, size_t len, void *out,
                       size_t out_len, rnd_photometric *out_pi, int *out_planar, tsr_err *err)
{
    quiet_gdcm();
    try {
        gdcm::Image img;
        img.SetNumberOfDimensions(2);
        img.SetDimension(0, info->columns);
        img.SetDimension(1, info->rows);
        gdcm::PixelFormat pf(info->samples_per_pixel, info->bits_allocated, info->bits_stored,
                             info->high_bit, info->pixel_representation);
        img.SetPixelFormat(pf);
        const char *pi_name = rnd_photometric_name(info->photometric);
        img.SetPhotometricInterpretation(gdcm::PhotometricInterpretation::GetPIType(pi_name));
        img.SetPlanarConfiguration(info->planar_configuration);
        gdcm::TransferSyntax ts = gdcm::TransferSyntax::GetTSType(info->transfer_syntax);
        if (ts == gdcm::TransferSyntax::TS_END) {
            return tsr_err_set(err, TSR_EUNSUPP, "unsupported transfer syntax %s",
                               info->transfer_syntax);
        }
        img.SetTransferSyntax(ts);

        gdcm::SmartPointer<gdcm::SequenceOfFragments> sq = new gdcm::SequenceOfFragments;
        gdcm::Fragment frag;
        frag.SetByteValue(reinterpret_cast<const char *>(data), gdcm::VL(uint32_t(len)));
        sq->AddFragment(frag);
        gdcm::DataElement de(gdcm::Tag(0x7fe0, 0x0010));
        de.SetVLToUndefined(); // GDCM asserts unless this comes before the VR is set
        de.SetVR(gdcm::VR::OB);
        de.SetValue(*sq);
        img.SetDataElement(de);

        size_t need = img.GetBufferLength();
        if (need != out_len) {
            return tsr_err_set(err, TSR_EINTERNAL, "decoded frame size %zu differs from %zu",
                               need, out_len);
        }
        if (!img.GetBuffer(static_cast<char *>(out))) {
            return tsr_err_set(err, TSR_ECORRUPT, "%s pixel data could not be decoded",
                               gdcm::TransferSyntax::GetTSString(ts));
        }
        *out_pi = rnd_photometric_parse(
            gdcm::PhotometricInterpretation::GetPIString(img.GetPhotometricInterpretation()));
        *out_planar = int(img.GetPlanarConfiguration());
        return TSR_OK;
    } catch (const std::bad_alloc &) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory while decoding");
    } catch (...) {
        return tsr_err_set(err, TSR_ECORRUPT, "pixel data could not be decoded");
    }
}
