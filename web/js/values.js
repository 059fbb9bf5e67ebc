// SPDX-License-Identifier: MIT
// values.js: modality values of a frame, for ROI statistics. The viewer only ever receives
// 8-bit rendered pixels; the real values come from WADO-RS on demand: the frame's uncompressed
// little-endian native bytes (`…/frames/{n}`, Accept application/octet-stream) with the instance
// metadata (Rows, Columns, Bits*, PixelRepresentation, Rescale*), cached per frame. A credential
// that may only view (a share link without the download permission) gets 403 for raw frames:
// then the values are {unavailable: true} and the ROI shows its area only.
import { instanceUrl, getInstanceMetadata, HttpError, val, apiFetch, access } from './dicom.js';

const T = {
  Rows: '00280010', Columns: '00280011', SamplesPerPixel: '00280002', BitsAllocated: '00280100',
  BitsStored: '00280101', HighBit: '00280102', PixelRepresentation: '00280103',
  RescaleIntercept: '00281052', RescaleSlope: '00281053', RescaleType: '00281054', Modality: '00080060',
  ModalityLUTSequence: '00283000', SharedGroups: '52009229', PerFrameGroups: '52009230',
  PixelValueTransformation: '00289145',
};

const MAX_FRAMES = 8; // decoded frames kept (a 512x512 CT frame is 1 MiB as Float32)
const frames = new Map(); // "st/se/sop/frame" -> Promise<{values, rows, cols, unit, error?}>
const metas = new Map(); // "st/se/sop" -> Promise<metadata>

function metadata(st, se, sop, signal) {
  const k = `${st}/${se}/${sop}`;
  let p = metas.get(k);
  if (!p) {
    p = getInstanceMetadata(st, se, sop, { signal });
    metas.set(k, p);
    p.catch(() => metas.delete(k));
    if (metas.size > 64) metas.delete(metas.keys().next().value);
  }
  return p;
}

// Rescale of one frame: per-frame functional group, then shared, then the top level.
function rescaleOf(meta, frame) {
  const fromItem = (item) => {
    const pvt = item?.[T.PixelValueTransformation]?.Value?.[0];
    const b = Number(val(pvt, T.RescaleIntercept));
    const m = Number(val(pvt, T.RescaleSlope));
    return pvt && Number.isFinite(b) && Number.isFinite(m) ? { slope: m, intercept: b, type: val(pvt, T.RescaleType) } : null;
  };
  const r = fromItem(meta?.[T.PerFrameGroups]?.Value?.[frame - 1]) || fromItem(meta?.[T.SharedGroups]?.Value?.[0]);
  if (r) return r;
  const b = Number(val(meta, T.RescaleIntercept));
  const m = Number(val(meta, T.RescaleSlope));
  return {
    slope: Number.isFinite(m) && val(meta, T.RescaleSlope) != null ? m : 1,
    intercept: Number.isFinite(b) && val(meta, T.RescaleIntercept) != null ? b : 0,
    type: val(meta, T.RescaleType),
  };
}

// The body of a single-part response, or the first part of a multipart/related one.
function firstPart(buf, contentType) {
  const m = /boundary="?([^";]+)"?/i.exec(contentType || '');
  if (!/^multipart\//i.test(contentType || '') || !m) return buf;
  const bytes = new Uint8Array(buf);
  const find = (pat, from) => {
    outer: for (let i = from; i <= bytes.length - pat.length; i++) {
      for (let j = 0; j < pat.length; j++) if (bytes[i + j] !== pat[j]) continue outer;
      return i;
    }
    return -1;
  };
  const enc = new TextEncoder();
  const start = find(enc.encode(`--${m[1]}`), 0);
  const head = find(enc.encode('\r\n\r\n'), start);
  const end = find(enc.encode(`\r\n--${m[1]}`), head + 4);
  if (start < 0 || head < 0 || end < 0) throw new Error('malformed multipart frame response');
  return buf.slice(head + 4, end);
}

// Modality values of a frame as Float32Array (rows*cols), with the unit.
async function load(st, se, sop, frame, signal) {
  if (!access.rawFrames) return { unavailable: true };
  const meta = await metadata(st, se, sop, signal);
  const rows = Number(val(meta, T.Rows));
  const cols = Number(val(meta, T.Columns));
  const spp = Number(val(meta, T.SamplesPerPixel)) || 1;
  const bitsAlloc = Number(val(meta, T.BitsAllocated)) || 16;
  const bitsStored = Number(val(meta, T.BitsStored)) || bitsAlloc;
  const highBit = val(meta, T.HighBit) != null ? Number(val(meta, T.HighBit)) : bitsStored - 1;
  const signed = Number(val(meta, T.PixelRepresentation)) === 1;
  if (spp !== 1) return { error: 'colour image: no modality values' };
  if (![8, 16, 32].includes(bitsAlloc)) return { error: `${bitsAlloc}-bit pixels are not supported` };
  const url = `${instanceUrl(st, se, sop)}/frames/${frame}`;
  const r = await apiFetch(url, { headers: { Accept: 'application/octet-stream' }, signal });
  if (r.status === 403) {
    access.rawFrames = false; // the same answer for every frame: do not ask again
    return { unavailable: true };
  }
  if (!r.ok) throw new HttpError(url, r.status, `${r.status} ${r.statusText}`);
  const buf = firstPart(await r.arrayBuffer(), r.headers.get('Content-Type'));
  const n = rows * cols;
  const bytes = bitsAlloc / 8;
  if (buf.byteLength < n * bytes) throw new Error(`frame ${frame}: ${buf.byteLength} bytes for ${rows}x${cols} pixels`);
  const dv = new DataView(buf);
  const shift = Math.max(0, highBit - bitsStored + 1);
  const mask = bitsStored >= 32 ? 0xffffffff : (2 ** bitsStored) - 1;
  const rs = rescaleOf(meta, frame);
  const useLut = !!meta?.[T.ModalityLUTSequence];
  const slope = useLut ? 1 : rs.slope;
  const icpt = useLut ? 0 : rs.intercept;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v = bytes === 1 ? dv.getUint8(i) : bytes === 2 ? dv.getUint16(i * 2, true) : dv.getUint32(i * 4, true);
    if (bitsStored < bitsAlloc) v = Math.floor(v / 2 ** shift) % (mask + 1);
    if (signed && v >= 2 ** (bitsStored - 1)) v -= 2 ** bitsStored;
    out[i] = v * slope + icpt;
  }
  const modality = val(meta, T.Modality);
  let unit = useLut ? '(stored values)' : rs.type || (modality === 'CT' ? 'HU' : '');
  if (unit === 'US') unit = ''; // "unspecified"
  return { values: out, rows, cols, unit };
}

export function frameValues(st, se, sop, frame, { signal } = {}) {
  const k = `${st}/${se}/${sop}/${frame}`;
  let p = frames.get(k);
  if (p) {
    frames.delete(k);
    frames.set(k, p);
    return p;
  }
  p = load(st, se, sop, frame, signal);
  frames.set(k, p);
  p.catch(() => frames.delete(k));
  while (frames.size > MAX_FRAMES) frames.delete(frames.keys().next().value);
  return p;
}

// Statistics of the pixels whose centres lie inside a rectangle or an axis-aligned ellipse given
// in native pixel coordinates (pixel (i, j) covers [i, i+1) x [j, j+1)): {n, mean, sd, min, max}
// with the population standard deviation.
export function roiStats(values, cols, rows, type, [x0, y0], [x1, y1]) {
  const lx = Math.min(x0, x1);
  const hx = Math.max(x0, x1);
  const ly = Math.min(y0, y1);
  const hy = Math.max(y0, y1);
  const cx = (lx + hx) / 2;
  const cy = (ly + hy) / 2;
  const rx = (hx - lx) / 2;
  const ry = (hy - ly) / 2;
  let n = 0;
  let s = 0;
  let s2 = 0;
  let min = Infinity;
  let max = -Infinity;
  const i0 = Math.max(0, Math.floor(lx - 0.5));
  const i1 = Math.min(cols - 1, Math.ceil(hx));
  const j0 = Math.max(0, Math.floor(ly - 0.5));
  const j1 = Math.min(rows - 1, Math.ceil(hy));
  for (let j = j0; j <= j1; j++) {
    const y = j + 0.5;
    if (y < ly || y > hy) continue;
    for (let i = i0; i <= i1; i++) {
      const x = i + 0.5;
      if (x < lx || x > hx) continue;
      if (type === 'ellipse' && ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 > 1) continue;
      const v = values[j * cols + i];
      n++;
      s += v;
      s2 += v * v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  if (!n) return { n: 0 };
  const mean = s / n;
  return { n, mean, sd: Math.sqrt(Math.max(0, s2 / n - mean * mean)), min, max };
}
