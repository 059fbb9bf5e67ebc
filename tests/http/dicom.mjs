// dicom.mjs: the little DICOM the HTTP tests need, written independently of the server:
// a Part 10 reader that walks the top-level data set (explicit/implicit VR little endian,
// explicit VR big endian, deflated) to find UIDs and the PixelData element, a minimal Part 10
// writer for synthetic patients, and PNG/JPEG header readers for rendered responses.
import { inflateRawSync, inflateSync } from 'node:zlib';

export const TS = {
  IMPLICIT_LE: '1.2.840.10008.1.2',
  EXPLICIT_LE: '1.2.840.10008.1.2.1',
  DEFLATED: '1.2.840.10008.1.2.1.99',
  EXPLICIT_BE: '1.2.840.10008.1.2.2',
};

// VRs whose explicit-VR header is 2+2 reserved+4 bytes long.
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const UNDEFINED = 0xffffffff;

export const tagOf = (group, element) => ((group << 16) | element) >>> 0;
export const TAG = {
  TransferSyntaxUID: tagOf(0x0002, 0x0010),
  MediaStorageSOPInstanceUID: tagOf(0x0002, 0x0003),
  SOPClassUID: tagOf(0x0008, 0x0016),
  SOPInstanceUID: tagOf(0x0008, 0x0018),
  StudyInstanceUID: tagOf(0x0020, 0x000d),
  SeriesInstanceUID: tagOf(0x0020, 0x000e),
  PatientName: tagOf(0x0010, 0x0010),
  NumberOfFrames: tagOf(0x0028, 0x0008),
  Rows: tagOf(0x0028, 0x0010),
  Columns: tagOf(0x0028, 0x0011),
  SamplesPerPixel: tagOf(0x0028, 0x0002),
  BitsAllocated: tagOf(0x0028, 0x0100),
  PixelData: tagOf(0x7fe0, 0x0010),
  ItemDelimitation: tagOf(0xfffe, 0xe00d),
  SequenceDelimitation: tagOf(0xfffe, 0xe0dd),
  Item: tagOf(0xfffe, 0xe000),
};

// Reads elements of one data set level from buf[pos, end). Calls visit(el) for each element
// ({tag, vr, valueOffset, length}); visit returning false stops. Returns the end position.
// Nested sequences of undefined length are skipped by walking their items.
function walk(buf, pos, end, syntax, visit, stopAtItemDelim = false) {
  const le = !syntax.bigEndian;
  const u16 = (o) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  while (pos + 8 <= end) {
    const group = u16(pos);
    const element = u16(pos + 2);
    const tag = tagOf(group, element);
    let vr = null;
    let length;
    let valueOffset;
    if (group === 0xfffe) {
      // item / delimiters: never have a VR
      length = u32(pos + 4);
      valueOffset = pos + 8;
      if (tag === TAG.ItemDelimitation && stopAtItemDelim) return valueOffset;
      if (tag === TAG.SequenceDelimitation) return valueOffset;
    } else if (syntax.explicit && group !== 0x0000) {
      vr = buf.toString('latin1', pos + 4, pos + 6);
      if (!/^[A-Z]{2}$/.test(vr)) throw new Error(`bad VR at offset ${pos}`);
      if (LONG_VRS.has(vr)) {
        if (pos + 12 > end) throw new Error('truncated element header');
        length = u32(pos + 8);
        valueOffset = pos + 12;
      } else {
        length = u16(pos + 6);
        valueOffset = pos + 8;
      }
    } else {
      length = u32(pos + 4);
      valueOffset = pos + 8;
    }
    let next;
    if (length === UNDEFINED) {
      // sequence (or encapsulated pixel data): walk items until the sequence delimiter
      next = skipUndefined(buf, valueOffset, end, syntax, vr);
    } else {
      next = valueOffset + length;
      if (next > end) throw new Error(`element (${group.toString(16)},${element.toString(16)}) runs past the end`);
    }
    if (visit({ tag, vr, valueOffset, length: length === UNDEFINED ? -1 : length, end: next }) === false) {
      return next;
    }
    pos = next;
  }
  return pos;
}

function skipUndefined(buf, pos, end, syntax, vr) {
  const le = !syntax.bigEndian;
  const u16 = (o) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  // Encapsulated pixel data and UN/SQ of undefined length are all items + sequence delimiter.
  // UN of undefined length is implicit VR little endian inside (PS3.5 6.2.2).
  const inner = vr === 'UN' ? { explicit: false, bigEndian: false } : syntax;
  while (pos + 8 <= end) {
    const tag = tagOf(u16(pos), u16(pos + 2));
    const length = u32(pos + 4);
    pos += 8;
    if (tag === TAG.SequenceDelimitation) return pos;
    if (tag !== TAG.Item) throw new Error(`expected an item at ${pos - 8}`);
    if (length === UNDEFINED) {
      pos = walk(buf, pos, end, inner, () => true, true);
    } else {
      pos += length;
    }
  }
  throw new Error('sequence of undefined length not closed');
}

// Parses a Part 10 file. Returns { hasMeta, transferSyntax, metaSopInstanceUID, dataset: Buffer,
// datasetOffset (in buf, -1 when inflated), syntax }.
export function parsePart10(buf) {
  const hasMeta = buf.length >= 132 && buf.toString('latin1', 128, 132) === 'DICM';
  let transferSyntax = TS.IMPLICIT_LE;
  let metaSopInstanceUID = null;
  let pos = 0;
  if (hasMeta) {
    // File Meta: explicit VR little endian, group 0002 only
    pos = 132;
    while (pos + 8 <= buf.length && buf.readUInt16LE(pos) === 0x0002) {
      const element = buf.readUInt16LE(pos + 2);
      const vr = buf.toString('latin1', pos + 4, pos + 6);
      const long = LONG_VRS.has(vr);
      const length = long ? buf.readUInt32LE(pos + 8) : buf.readUInt16LE(pos + 6);
      const valueOffset = pos + (long ? 12 : 8);
      if (valueOffset + length > buf.length) throw new Error('truncated File Meta');
      const el = { valueOffset, length };
      if (element === 0x0010) transferSyntax = str(buf, el);
      if (element === 0x0003) metaSopInstanceUID = str(buf, el);
      pos = valueOffset + length;
    }
  }
  let dataset = buf;
  let datasetOffset = pos;
  const syntax = {
    explicit: transferSyntax !== TS.IMPLICIT_LE,
    bigEndian: transferSyntax === TS.EXPLICIT_BE,
  };
  if (transferSyntax === TS.DEFLATED) {
    dataset = inflateRawSync(buf.subarray(pos));
    datasetOffset = -1;
    pos = 0;
  }
  return { hasMeta, transferSyntax, metaSopInstanceUID, dataset, start: pos, datasetOffset, syntax };
}

function str(buf, el) {
  return buf.toString('latin1', el.valueOffset, el.valueOffset + el.length).replace(/[\0 ]+$/, '');
}

// Top-level elements of a Part 10 file: Map tag -> {vr, valueOffset, length} (offsets into
// p.dataset). Stops after `stopAfter` when given.
export function topLevel(buf, stopAfter = 0xffffffff) {
  const p = parsePart10(buf);
  const els = new Map();
  walk(p.dataset, p.start, p.dataset.length, p.syntax, (el) => {
    if (el.tag > stopAfter) return false;
    els.set(el.tag, el);
    return true;
  });
  return { ...p, els };
}

// The study/series/SOP instance UIDs of a file (null for each one that cannot be read).
export function readUids(buf) {
  const out = { sopClass: null, sop: null, study: null, series: null, metaSop: null, error: null };
  try {
    const t = topLevel(buf, TAG.SeriesInstanceUID);
    const get = (tag) => {
      const el = t.els.get(tag);
      return el && el.length > 0 ? str(t.dataset, el) : null;
    };
    out.sopClass = get(TAG.SOPClassUID);
    out.sop = get(TAG.SOPInstanceUID);
    out.study = get(TAG.StudyInstanceUID);
    out.series = get(TAG.SeriesInstanceUID);
    out.metaSop = t.metaSopInstanceUID;
  } catch (e) {
    out.error = e.message;
  }
  return out;
}

// Native (uncompressed, explicit VR little endian) pixel data of a file, and the geometry
// needed to cut it into frames.
export function nativePixelData(buf) {
  const t = topLevel(buf);
  if (t.transferSyntax !== TS.EXPLICIT_LE) throw new Error(`not explicit VR LE: ${t.transferSyntax}`);
  const pd = t.els.get(TAG.PixelData);
  if (!pd || pd.length < 0) throw new Error('no native PixelData');
  const us = (tag) => t.dataset.readUInt16LE(t.els.get(tag).valueOffset);
  const rows = us(TAG.Rows);
  const cols = us(TAG.Columns);
  const spp = us(TAG.SamplesPerPixel);
  const bits = us(TAG.BitsAllocated);
  const nfEl = t.els.get(TAG.NumberOfFrames);
  const frames = nfEl ? parseInt(str(t.dataset, nfEl), 10) : 1;
  const frameBytes = (rows * cols * spp * bits) / 8;
  const pixels = t.dataset.subarray(pd.valueOffset, pd.valueOffset + pd.length);
  return {
    rows, cols, spp, bits, frames, frameBytes, pixels, offset: pd.valueOffset,
    frame: (n) => pixels.subarray((n - 1) * frameBytes, n * frameBytes),
  };
}

// ---------------------------------------------------------------- writer

// Elements: [[tag, vr, value]] where value is a string (padded here), a Buffer, or a number
// (US). Written sorted, explicit VR little endian, with File Meta.
export function writePart10(elements, { sopClass, sopInstance }) {
  const enc = (tag, vr, value) => {
    let v;
    if (Buffer.isBuffer(value)) v = value;
    else if (typeof value === 'number') {
      v = Buffer.alloc(2);
      v.writeUInt16LE(value);
    } else {
      v = Buffer.from(String(value), 'latin1');
    }
    if (v.length % 2) v = Buffer.concat([v, Buffer.from(vr === 'UI' || vr === 'OB' ? [0] : [0x20])]);
    const long = LONG_VRS.has(vr);
    const h = Buffer.alloc(long ? 12 : 8);
    h.writeUInt16LE(tag >>> 16, 0);
    h.writeUInt16LE(tag & 0xffff, 2);
    h.write(vr, 4, 'latin1');
    if (long) h.writeUInt32LE(v.length, 8);
    else h.writeUInt16LE(v.length, 6);
    return Buffer.concat([h, v]);
  };
  const metaBody = Buffer.concat([
    enc(tagOf(2, 1), 'OB', Buffer.from([0, 1])),
    enc(tagOf(2, 2), 'UI', sopClass),
    enc(tagOf(2, 3), 'UI', sopInstance),
    enc(tagOf(2, 0x10), 'UI', TS.EXPLICIT_LE),
    enc(tagOf(2, 0x12), 'UI', '1.2.826.0.1.3680043.10.1'),
  ]);
  const glen = Buffer.alloc(4);
  glen.writeUInt32LE(metaBody.length);
  const sorted = [...elements].sort((a, b) => a[0] - b[0]);
  return Buffer.concat([
    Buffer.alloc(128),
    Buffer.from('DICM', 'latin1'),
    enc(tagOf(2, 0), 'UL', glen),
    metaBody,
    ...sorted.map(([tag, vr, value]) => enc(tag, vr, value)),
  ]);
}

// A small valid Secondary-Capture-like image with patient/study/series attributes.
export function syntheticInstance(o) {
  const rows = o.rows ?? 8;
  const cols = o.cols ?? 8;
  const pixels = Buffer.alloc(rows * cols);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7 + (o.seed ?? 0)) & 0xff;
  const sopClass = o.sopClass ?? '1.2.840.10008.5.1.4.1.1.7';
  const els = [
    [tagOf(0x0008, 0x0016), 'UI', sopClass],
    [tagOf(0x0008, 0x0018), 'UI', o.sop],
    [tagOf(0x0008, 0x0020), 'DA', o.studyDate ?? ''],
    [tagOf(0x0008, 0x0030), 'TM', o.studyTime ?? '120000'],
    [tagOf(0x0008, 0x0050), 'SH', o.accession ?? ''],
    [tagOf(0x0008, 0x0060), 'CS', o.modality ?? 'OT'],
    [tagOf(0x0008, 0x0090), 'PN', ''],
    [tagOf(0x0008, 0x1030), 'LO', o.studyDescription ?? ''],
    [tagOf(0x0008, 0x103e), 'LO', o.seriesDescription ?? ''],
    [tagOf(0x0010, 0x0010), 'PN', o.patientName ?? ''],
    [tagOf(0x0010, 0x0020), 'LO', o.patientId ?? ''],
    [tagOf(0x0010, 0x0030), 'DA', o.birthDate ?? ''],
    [tagOf(0x0010, 0x0040), 'CS', o.sex ?? ''],
    [tagOf(0x0020, 0x000d), 'UI', o.study],
    [tagOf(0x0020, 0x000e), 'UI', o.series],
    [tagOf(0x0020, 0x0010), 'SH', o.studyId ?? '1'],
    [tagOf(0x0020, 0x0011), 'IS', String(o.seriesNumber ?? 1)],
    [tagOf(0x0020, 0x0013), 'IS', String(o.instanceNumber ?? 1)],
    [tagOf(0x0028, 0x0002), 'US', 1],
    [tagOf(0x0028, 0x0004), 'CS', 'MONOCHROME2'],
    [tagOf(0x0028, 0x0010), 'US', rows],
    [tagOf(0x0028, 0x0011), 'US', cols],
    [tagOf(0x0028, 0x0100), 'US', 8],
    [tagOf(0x0028, 0x0101), 'US', 8],
    [tagOf(0x0028, 0x0102), 'US', 7],
    [tagOf(0x0028, 0x0103), 'US', 0],
    [tagOf(0x7fe0, 0x0010), 'OB', pixels],
  ];
  return writePart10(els, { sopClass, sopInstance: o.sop });
}

// ---------------------------------------------------------------- images

export const isJpeg = (b) => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
export const isPng = (b) =>
  b.length > 24 && b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));

export function pngSize(b) {
  if (!isPng(b) || b.toString('latin1', 12, 16) !== 'IHDR') throw new Error('not a PNG');
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20), bitDepth: b[24], colorType: b[25] };
}

export function jpegSize(b) {
  if (!isJpeg(b)) throw new Error('not a JPEG');
  let p = 2;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) throw new Error(`bad JPEG marker at ${p}`);
    const m = b[p + 1];
    if (m === 0xff) { p++; continue; }
    const len = b.readUInt16BE(p + 2);
    if ((m >= 0xc0 && m <= 0xcf) && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      return { height: b.readUInt16BE(p + 5), width: b.readUInt16BE(p + 7), components: b[p + 9] };
    }
    p += 2 + len;
  }
  throw new Error('no SOF in JPEG');
}

// Decodes an 8-bit, non-interlaced PNG into { width, height, channels, data }.
export function decodePng(b) {
  const { width, height, bitDepth, colorType } = pngSize(b);
  if (bitDepth !== 8) throw new Error(`PNG bit depth ${bitDepth} not supported here`);
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[colorType];
  if (!channels) throw new Error(`PNG colour type ${colorType} not supported here`);
  if (b[28] !== 0) throw new Error('interlaced PNG not supported here');
  const idat = [];
  let p = 8;
  while (p < b.length) {
    const len = b.readUInt32BE(p);
    const type = b.toString('latin1', p + 4, p + 8);
    if (type === 'IDAT') idat.push(b.subarray(p + 8, p + 8 + len));
    if (type === 'IEND') break;
    p += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? out[y * stride + x - channels] : 0;
      const up = y > 0 ? out[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? out[(y - 1) * stride + x - channels] : 0;
      let v = line[x];
      if (f === 1) v += a;
      else if (f === 2) v += up;
      else if (f === 3) v += (a + up) >> 1;
      else if (f === 4) {
        const pp = a + up - c;
        const pa = Math.abs(pp - a);
        const pb = Math.abs(pp - up);
        const pc = Math.abs(pp - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? up : c;
      } else if (f !== 0) throw new Error(`bad PNG filter ${f}`);
      out[y * stride + x] = v & 0xff;
    }
  }
  return { width, height, channels, data: out };
}
