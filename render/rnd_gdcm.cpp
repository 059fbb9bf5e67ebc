// SPDX-License-Identifier: MIT
// rnd_gdcm.cpp: the one C++ file. Wraps GDCM behind the narrow C API declared in rnd_internal.h:
// parsing a file into a dataset, raw element access, fragment access, one-frame decoding with
// GDCM's codecs, and the data dictionary (rnd.h). Every entry point catches all exceptions; GDCM's
// console output is switched off and failures are reported through tsr_err.

#include "rnd_internal.h"

#include <gdcmBitmap.h>
#include <gdcmDataSet.h>
#include <gdcmDict.h>
#include <gdcmDicts.h>
#include <gdcmFileMetaInformation.h>
#include <gdcmFragment.h>
#include <gdcmGlobal.h>
#include <gdcmImage.h>
#include <gdcmReader.h>
#include <gdcmSequenceOfFragments.h>
#include <gdcmSequenceOfItems.h>
#include <gdcmTrace.h>
#include <gdcmTransferSyntax.h>
#include <gdcmVR.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
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

// ---------------------------------------------------------------- dictionary
//
// GDCM's public dictionary is a std::map keyed by tag (with the repeating groups 50xx/60xx
// already expanded, 13,756 entries) whose keyword lookup is a linear scan with strcmp. Both
// directions are served instead from two sorted arrays built once, on first use, from that map:
// one entry per tag (the repeating groups folded back onto 5000/6000) and an index by keyword.

namespace {

struct dict_entry {
    uint32_t tag;
    char vr[3];
    bool us_or_ss;       // the dictionary says "US or SS"
    const char *keyword; // points into dict_table::names
};

struct dict_table {
    std::vector<dict_entry> by_tag;   // sorted by tag
    std::vector<uint32_t> by_keyword; // indexes into by_tag, sorted by keyword then tag
    std::unique_ptr<char[]> names;    // every keyword, NUL-terminated
};

// Repeating groups (PS3.5 7.6): the even groups 5000-501E (curves) and 6000-601E (overlays)
// share one dictionary entry, stored under group 5000/6000.
uint32_t
fold_repeating(uint32_t tag)
{
    uint32_t g = tag >> 16;
    if (((g & 0xff00) == 0x5000 || (g & 0xff00) == 0x6000) && (g & 1) == 0 && (g & 0xff) <= 0x1e) {
        return (tag & 0xff00ffffu);
    }
    return tag;
}

// The one VR used for a tag whose dictionary entry allows several: OW where OW is among them
// (OB or OW, US or OW, US or SS or OW: what implicit VR data holds), else US (US or SS; the
// reader switches to SS from PixelRepresentation).
bool
pick_vr(gdcm::VR::VRType v, char out[3])
{
    const char *s = nullptr;
    if (v == gdcm::VR::INVALID || v == gdcm::VR::VR_END) {
        return false;
    }
    if (v & gdcm::VR::OW) {
        s = "OW";
    } else if ((v & gdcm::VR::US) && (v & gdcm::VR::SS)) {
        s = "US";
    } else {
        s = gdcm::VR::GetVRString(v);
    }
    if (!s || std::strlen(s) != 2 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z') {
        return false; // "??": the item tags, and a few retired entries GDCM gives no VR
    }
    out[0] = s[0];
    out[1] = s[1];
    out[2] = '\0';
    return true;
}

dict_table *
dict_build()
{
    quiet_gdcm();
    const gdcm::Dict &pub = gdcm::Global::GetInstance().GetDicts().GetPublicDict();
    std::unique_ptr<dict_table> t(new dict_table);
    size_t chars = 0;
    for (auto it = pub.Begin(); it != pub.End(); ++it) {
        chars += std::strlen(it->second.GetKeyword()) + 1;
    }
    t->names.reset(new char[chars]);
    char *next = t->names.get();
    for (auto it = pub.Begin(); it != pub.End(); ++it) {
        uint32_t tag = uint32_t(it->first.GetGroup()) << 16 | it->first.GetElement();
        gdcm::VR::VRType v = gdcm::VR::VRType(it->second.GetVR());
        dict_entry e{};
        if (fold_repeating(tag) != tag || (it->first.GetGroup() & 1) != 0 || !pick_vr(v, e.vr)) {
            continue; // a copy of a repeating group, or not a data element
        }
        e.us_or_ss = v == gdcm::VR::US_SS;
        const char *kw = it->second.GetKeyword();
        size_t n = std::strlen(kw) + 1;
        std::memcpy(next, kw, n);
        e.tag = tag;
        e.keyword = next;
        next += n;
        t->by_tag.push_back(e);
    }
    // std::map iterates in tag order, so by_tag is already sorted.
    t->by_keyword.resize(t->by_tag.size());
    for (uint32_t i = 0; i < t->by_keyword.size(); i++) {
        t->by_keyword[i] = i;
    }
    const std::vector<dict_entry> &v = t->by_tag;
    std::stable_sort(t->by_keyword.begin(), t->by_keyword.end(), [&v](uint32_t a, uint32_t b) {
        return std::strcmp(v[a].keyword, v[b].keyword) < 0;
    });
    return t.release();
}

// The table, built on first use. A function-local static is initialised once even when threads
// race to it (C++11); it is never freed, so lookups from other static destructors stay valid.
const dict_table *
dict()
{
    static const dict_table *const t = dict_build();
    return t;
}

} // namespace

// The entry of `tag`, or nullptr.
static const dict_entry *
find_entry(uint32_t tag)
{
    const dict_table *t = dict();
    uint32_t key = fold_repeating(tag);
    auto it = std::lower_bound(t->by_tag.begin(), t->by_tag.end(), key,
                               [](const dict_entry &e, uint32_t k) { return e.tag < k; });
    return it == t->by_tag.end() || it->tag != key ? nullptr : &*it;
}

extern "C" int
rnd_dict_lookup(uint32_t tag, char vr[3], const char **keyword)
{
    try {
        uint16_t g = uint16_t(tag >> 16), el = uint16_t(tag & 0xffff);
        if (g == 0xfffe || (g & 1) != 0) {
            return -1; // items and delimiters have no VR; odd groups are private
        }
        if (el == 0) {
            // Group length (PS3.5 7.2), retired except in groups 0000 and 0002.
            if (vr) {
                std::memcpy(vr, "UL", 3);
            }
            if (keyword) {
                *keyword = g == 0x0000   ? "CommandGroupLength"
                           : g == 0x0002 ? "FileMetaInformationGroupLength"
                                         : "GenericGroupLength";
            }
            return 0;
        }
        const dict_entry *it = find_entry(tag);
        if (!it) {
            return -1;
        }
        if (vr) {
            std::memcpy(vr, it->vr, 3);
        }
        if (keyword) {
            *keyword = it->keyword;
        }
        return 0;
    } catch (...) {
        return -1;
    }
}

extern "C" int
rnd_dict_find_keyword(const char *keyword, uint32_t *tag)
{
    if (!keyword || !*keyword) {
        return -1;
    }
    try {
        const dict_table *t = dict();
        const std::vector<dict_entry> &v = t->by_tag;
        auto it = std::lower_bound(
            t->by_keyword.begin(), t->by_keyword.end(), keyword,
            [&v](uint32_t i, const char *k) { return std::strcmp(v[i].keyword, k) < 0; });
        if (it == t->by_keyword.end() || std::strcmp(v[*it].keyword, keyword) != 0) {
            return -1;
        }
        *tag = v[*it].tag;
        return 0;
    } catch (...) {
        return -1;
    }
}

extern "C" int
rnd__dict_us_or_ss(uint32_t tag)
{
    try {
        const dict_entry *e = (tag >> 16) & 1 ? nullptr : find_entry(tag);
        return e && e->us_or_ss;
    } catch (...) {
        return 0;
    }
}
