#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the tiny, self-made DICOM seeds of corpus/dicom and corpus/dataset (a few hundred
bytes each): every dataset encoding, sequences (defined and undefined length), native and
encapsulated (RLE, 12-bit JPEG through DCMTK) pixel data, a deflated dataset, character sets. Run once; the files are
committed. Larger, real seeds come from ../shared/dicom at run time (scripts/fuzz.sh, and the
fuzz.*.shared ctest entries), never copied into the repository."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

LE_EXPL, LE_IMPL, BE_EXPL = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2"
RLE, DEFLATE = "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.1.99"
LONG_VR = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"}


def pad(v, vr):
    if len(v) % 2:
        v += b"\0" if vr in ("UI", "OB", "UN") else b" "
    return v


def elem(tag, vr, value, enc="le", undefined=False):
    g, e = tag >> 16, tag & 0xFFFF
    big = enc == "be"
    if vr not in ("SQ", "OB", "OW", "UN") and not isinstance(value, bytes):
        value = str(value).encode("latin-1")
    if vr == "SQ":
        body = value
    else:
        body = pad(value, vr)
    length = 0xFFFFFFFF if undefined else len(body)
    h = struct.pack(">HH" if big else "<HH", g, e)
    if enc == "implicit":
        return h + struct.pack("<I", length) + body
    if vr in LONG_VR:
        return h + vr.encode() + b"\0\0" + struct.pack(">I" if big else "<I", length) + body
    return h + vr.encode() + struct.pack(">H" if big else "<H", length) + body


def us(tag, v, enc="le"):
    return elem(tag, "US", struct.pack(">H" if enc == "be" else "<H", v), enc)


def item(body, undefined=False, big=False):
    f = ">HHI" if big else "<HHI"
    if undefined:
        return struct.pack(f, 0xFFFE, 0xE000, 0xFFFFFFFF) + body + struct.pack(f, 0xFFFE, 0xE00D, 0)
    return struct.pack(f, 0xFFFE, 0xE000, len(body)) + body


def seq_end(big=False):
    return struct.pack(">HHI" if big else "<HHI", 0xFFFE, 0xE0DD, 0)


def meta(ts):
    body = elem(0x00020001, "OB", b"\0\1") + elem(0x00020002, "UI", "1.2.840.10008.5.1.4.1.1.2")
    body += elem(0x00020003, "UI", "1.2.3.4.5.6") + elem(0x00020010, "UI", ts)
    return b"\0" * 128 + b"DICM" + elem(0x00020000, "UL", struct.pack("<I", len(body))) + body


def image(enc, rows=4, cols=4, bits=16, signed=1, pixels=None, extra=(), spp=1):
    """A small CT-like image (RGB when spp is 3); `extra` is a list of (tag, encoded element)
    merged in tag order."""
    big = enc == "be"
    if spp == 3:
        extra = list(extra) + [(0x00280006, us(0x00280006, 0, enc))]
    els = [
        (0x00080005, elem(0x00080005, "CS", "ISO_IR 100", enc)),
        (0x00080016, elem(0x00080016, "UI", "1.2.840.10008.5.1.4.1.1.2", enc)),
        (0x00080018, elem(0x00080018, "UI", "1.2.3.4.5.6", enc)),
        (0x00080060, elem(0x00080060, "CS", "CT", enc)),
        (0x00100010, elem(0x00100010, "PN", "Doe^J\xf6rg", enc)),
        (0x0020000D, elem(0x0020000D, "UI", "1.2.3.4", enc)),
        (0x0020000E, elem(0x0020000E, "UI", "1.2.3.4.5", enc)),
        (0x00200032, elem(0x00200032, "DS", "0\\0\\0", enc)),
        (0x00200037, elem(0x00200037, "DS", "1\\0\\0\\0\\1\\0", enc)),
        (0x00280002, us(0x00280002, spp, enc)),
        (0x00280004, elem(0x00280004, "CS", "RGB" if spp == 3 else "MONOCHROME2", enc)),
        (0x00280010, us(0x00280010, rows, enc)),
        (0x00280011, us(0x00280011, cols, enc)),
        (0x00280030, elem(0x00280030, "DS", "0.5\\0.5", enc)),
        (0x00280100, us(0x00280100, bits, enc)),
        (0x00280101, us(0x00280101, 12 if bits == 16 else 8, enc)),
        (0x00280102, us(0x00280102, 11 if bits == 16 else 7, enc)),
        (0x00280103, us(0x00280103, signed, enc)),
        (0x00281050, elem(0x00281050, "DS", "40", enc)),
        (0x00281051, elem(0x00281051, "DS", "400", enc)),
        (0x00281052, elem(0x00281052, "DS", "-1024", enc)),
        (0x00281053, elem(0x00281053, "DS", "1", enc)),
    ]
    if pixels is None:
        n = rows * cols * spp
        fmt = (">" if big else "<") + ("h" if bits == 16 else "B") * n
        vals = [(i * 97) % 2000 - 1000 if bits == 16 else (i * 37) % 256 for i in range(n)]
        pixels = elem(0x7FE00010, "OW" if bits == 16 else "OB", struct.pack(fmt, *vals), enc)
    els += list(extra) + [(0x7FE00010, pixels)]
    return b"".join(e for _, e in sorted(els, key=lambda t: t[0]))


def sequences(enc):
    """A defined-length sequence and an undefined-length one with an undefined-length item."""
    big = enc == "be"
    seq = elem(0x00540016, "SQ", item(elem(0x00181072, "TM", "120000", enc) +
                                      elem(0x00181074, "DS", "370", enc), big=big), enc)
    useq = elem(0x00400275, "SQ", item(elem(0x00321060, "LO", "step", enc), undefined=True, big=big)
                + seq_end(big), enc, undefined=True)
    return [(0x00540016, seq), (0x00400275, useq)]


def rle_frame(data):
    # One segment, literal runs of up to 128 bytes.
    seg = b""
    for i in range(0, len(data), 128):
        chunk = data[i:i + 128]
        seg += bytes([len(chunk) - 1]) + chunk
    if len(seg) % 2:
        seg += b"\0"
    hdr = struct.pack("<16I", 1, 64, *([0] * 14))
    return hdr + seg


def jpeg12_seeds():
    """12-bit lossy JPEG (.4.51), grey and colour, as DCMTK's dcmcjpeg writes them (our decoder,
    render/rnd_codec_jpeg12.c, and GDCM's colour conversion after it). Skipped without DCMTK."""
    if not shutil.which("dcmcjpeg"):
        print("dcmcjpeg not found: no 12-bit JPEG seeds", file=sys.stderr)
        return {}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, raw, opts in (
            ("jpeg12_grey.dcm", image("le", rows=16, cols=24, signed=0), ["+ee"]),
            ("jpeg12_rgb.dcm", image("le", rows=16, cols=16, bits=8, signed=0, spp=3),
             ["+ee", "+bt"]),
        ):
            src, dst = os.path.join(tmp, "in.dcm"), os.path.join(tmp, "out.dcm")
            with open(src, "wb") as f:
                f.write(meta(LE_EXPL) + raw)
            subprocess.run(["dcmcjpeg", *opts, src, dst], check=True)
            with open(dst, "rb") as f:
                out[name] = f.read()
    return out


def first_fragment(dcm):
    """The first fragment of a file's encapsulated Pixel Data (explicit VR little endian)."""
    i = dcm.rindex(b"\xe0\x7f\x10\x00") + 12  # tag, VR, reserved, undefined length
    frags = []
    while dcm[i:i + 4] == b"\xfe\xff\x00\xe0":
        n = struct.unpack("<I", dcm[i + 4:i + 8])[0]
        frags.append(dcm[i + 8:i + 8 + n])
        i += 8 + n
    return frags[1]  # after the Basic Offset Table


def codec_seeds(files):
    """corpus/codec: one byte choosing the decoder (fuzz_codec.c), then a frame taken from the
    encapsulated seeds: 12-bit JPEG grey and colour, lossless JPEG (DCMTK), RLE."""
    out = {}
    if "jpeg12_grey.dcm" in files:
        out["jpeg12_grey"] = b"\x04" + first_fragment(files["jpeg12_grey.dcm"])
        out["jpeg12_rgb"] = b"\x04" + first_fragment(files["jpeg12_rgb.dcm"])
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = os.path.join(tmp, "in.dcm"), os.path.join(tmp, "out.dcm")
            with open(src, "wb") as f:
                f.write(meta(LE_EXPL) + image("le", rows=16, cols=24, signed=0))
            subprocess.run(["dcmcjpeg", "+e1", src, dst], check=True)
            with open(dst, "rb") as f:
                out["ljpeg_sv1"] = b"\x05" + first_fragment(f.read())
    rle = first_fragment(files["rle_2frames.dcm"])
    out["rle_4x4"] = b"\x02" + bytes([3, 3, 0, 0]) + rle
    return out


def main(out):
    files = {
        "explicit_le_ct.dcm": meta(LE_EXPL) + image("le", extra=sequences("le")),
        "implicit_le_ct.dcm": meta(LE_IMPL) + image("implicit", extra=sequences("implicit")),
        "explicit_be_ct.dcm": meta(BE_EXPL) + image("be", extra=sequences("be")),
        "explicit_le_8bit.dcm": meta(LE_EXPL) + image("le", bits=8, signed=0),
    }
    # RLE, two frames of 4x4 8-bit.
    frame = bytes((i * 37) % 256 for i in range(16))
    frags = item(b"") + item(rle_frame(frame)) + item(rle_frame(frame[::-1])) + seq_end()
    px = elem(0x7FE00010, "OB", frags, undefined=True)
    files["rle_2frames.dcm"] = meta(RLE) + image("le", bits=8, signed=0, pixels=px,
                                                 extra=[(0x00280008, elem(0x00280008, "IS", "2"))])
    # Deflated explicit little endian.
    raw = image("le")
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    files["deflated_ct.dcm"] = meta(DEFLATE) + c.compress(raw) + c.flush()
    # A bare dataset without Part 10 header (GDCM reads those; the store refuses them).
    files["bare_implicit.dcm"] = image("implicit")
    files.update(jpeg12_seeds())
    for sub in ("dicom", "dataset"):
        d = os.path.join(out, sub)
        os.makedirs(d, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
    d = os.path.join(out, "codec")
    os.makedirs(d, exist_ok=True)
    for name, data in codec_seeds(files).items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus"))
