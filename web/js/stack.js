// SPDX-License-Identifier: MIT
// stack.js: a series as a stack of frames (every frame of every instance, in instance order),
// drawn from the server's tile pyramids. The first image needs four small requests (the first
// instance, its metadata, its pyramid, its visible tiles); the whole instance list with the
// positions comes after the first paint.
import {
  TAG, val, vals, str, personName, dicomDate, getInstances, getInstanceMetadata, getPyramid, getJson,
  instanceUrl, windowSeg, apiFetch,
} from './dicom.js';
import { prefetch } from './tiles.js';
import { frameValues, roiStats } from './values.js';
import { clamp } from './viewport.js';

export const CT_PRESETS = [
  ['Brain', 40, 80], ['Subdural', 75, 215], ['Stroke', 40, 40], ['Lung', -600, 1500], ['Mediastinum', 50, 350],
  ['Abdomen', 60, 400], ['Liver', 60, 160], ['Bone', 400, 1800],
].map(([name, center, width]) => ({ name, center, width }));

const LOSSY_Q = 85;
const LIST_FIELDS = ['00200032', '00200037', '00201041'];

function imagesOf(inst) {
  const n = Math.max(1, Number(val(inst, TAG.NumberOfFrames)) || 1);
  const base = {
    sop: val(inst, TAG.SOPInstanceUID), number: val(inst, TAG.InstanceNumber), frames: n,
    rows: val(inst, TAG.Rows), cols: val(inst, TAG.Columns), ipp: vals(inst, TAG.ImagePositionPatient),
    iop: vals(inst, TAG.ImageOrientationPatient), loc: val(inst, TAG.SliceLocation),
  };
  return Array.from({ length: n }, (_, i) => ({ ...base, frame: i + 1 }));
}

export class StackSource {
  constructor({ study, series, st, se }) {
    this.study = study;
    this.series = series;
    this.st = st;
    this.se = se;
    this.images = [];
    this.index = 0;
    this.pyramids = new Map(); // "rows x cols" -> pyramid
    this.window = null;
    this.listLoaded = false;
    this.lastStep = 1;
    this.ctrl = new AbortController();
  }

  destroy() {
    this.ctrl.abort();
  }

  get count() {
    return this.images.length;
  }

  label() {
    return `Series ${str(this.series, TAG.SeriesNumber)} ${str(this.series, TAG.SeriesDescription)}, ${this.count} images`;
  }

  imageId() {
    const im = this.images[this.index];
    return im ? `${im.sop}/${im.frame}` : '';
  }

  async init() {
    const opts = { signal: this.ctrl.signal };
    const first = await getInstances(this.st, this.se, { limit: 1 }, opts);
    if (!first.length) throw new Error('this series has no instances');
    this.images = imagesOf(first[0]);
    const im = this.images[0];
    const [meta, pyr] = await Promise.all([
      getInstanceMetadata(this.st, this.se, im.sop, opts),
      getPyramid(this.st, this.se, im.sop, 1, opts),
    ]);
    this.meta = meta;
    this.pyramids.set(`${im.rows}x${im.cols}`, pyr);
    this.colour = (Number(val(meta, TAG.SamplesPerPixel)) || 1) > 1;
    this.images = imagesOf({ ...first[0], ...meta });
    this.fileWindows = vals(meta, TAG.WindowCenter).map((c, i) => ({
      name: str(meta, TAG.WindowExplanation) && vals(meta, TAG.WindowExplanation)[i] ? vals(meta, TAG.WindowExplanation)[i] : `File ${i + 1}`,
      center: Number(c), width: Number(vals(meta, TAG.WindowWidth)[i]),
    })).filter((w) => Number.isFinite(w.center) && w.width > 0);
    this.resetWindow();
    if (!this.window && !this.colour) {
      // no window in the file: the server's default (min-max) is in X-Tessera-Window
      try {
        const r = await apiFetch(`${instanceUrl(this.st, this.se, im.sop)}/frames/1/rendered?viewport=1,1`, opts);
        const m = /^(-?[\d.e+-]+),([\d.e+-]+)/.exec(r.headers.get('X-Tessera-Window') || '');
        if (m) this.defaultWindow = { center: Number(m[1]), width: Number(m[2]) };
      } catch (e) { if (e.name === 'AbortError') throw e; }
    }
    return this;
  }

  resetWindow() {
    this.window = this.fileWindows?.[0] ? { center: this.fileWindows[0].center, width: this.fileWindows[0].width } : null;
  }

  presets() {
    if (this.colour) return [];
    const out = [...(this.fileWindows || [])];
    if (str(this.meta, TAG.Modality) === 'CT') out.push(...CT_PRESETS);
    return out;
  }

  setWindow(w) {
    if (this.colour) return;
    this.window = w ? { center: w.center, width: w.width } : null;
  }

  windowDrag(dx, dy) {
    if (this.colour) return;
    const w = this.window || this.defaultWindow || { center: 128, width: 256 };
    const k = Math.max(0.05, w.width / 300);
    let width = Math.max(1, w.width + dx * k);
    let center = w.center + dy * k;
    if (width > 20) {
      width = Math.round(width);
      center = Math.round(center);
    }
    this.window = { center, width };
  }

  // The full list (with positions), sorted; after the first paint.
  async loadList() {
    if (this.listLoading) return;
    this.listLoading = true;
    const vp = this.viewport;
    try {
      if (Number(val(this.series, TAG.NumberOfSeriesRelatedInstances)) > 1 || !this.series) {
        vp?.setProgress(0.3);
        const all = await getInstances(this.st, this.se, { fields: LIST_FIELDS }, { signal: this.ctrl.signal });
        all.sort((a, b) => (Number(val(a, TAG.InstanceNumber)) || 0) - (Number(val(b, TAG.InstanceNumber)) || 0));
        const cur = this.images[this.index];
        this.images = all.flatMap(imagesOf);
        const i = this.images.findIndex((x) => x.sop === cur.sop && x.frame === cur.frame);
        this.index = Math.max(0, i);
      }
      this.listLoaded = true;
      if (vp && vp.src === this) {
        vp.setProgress(null);
        vp.updateSlider();
        vp.host.setAttribute('aria-label', this.label());
        vp.host.dataset.count = String(this.count);
        vp.drawOverlay();
        vp.onChange(vp);
      }
    } catch (e) {
      if (e.name !== 'AbortError') vp?.fail(e);
    }
  }

  pyr(im) {
    return this.pyramids.get(`${im.rows}x${im.cols}`);
  }

  ready(i) {
    const im = this.images[i];
    return !!im && !!this.pyr(im);
  }

  async ensure(i) {
    if (!this.meta) await (this.initP ||= this.init());
    const im = this.images[i];
    if (!im) throw new Error('no such image');
    if (!this.pyr(im)) {
      this.pyramids.set(`${im.rows}x${im.cols}`, await getPyramid(this.st, this.se, im.sop, im.frame, { signal: this.ctrl.signal }));
    }
  }

  size() {
    const im = this.images[this.index];
    const p = im && this.pyr(im);
    return p ? { width: p.width, height: p.height } : null;
  }

  // The tiles of image i that cover the viewport, at the level that matches its zoom.
  spec(i, vp, quality) {
    const im = this.images[i];
    const p = this.pyr(im);
    const T = p.tileSize;
    const L = clamp(Math.floor(Math.log2(1 / vp.view.scale) + 0.5), 0, p.levels - 1);
    const f = 2 ** L;
    const lw = Math.ceil(p.width / f);
    const lh = Math.ceil(p.height / f);
    const sx = p.width / lw;
    const sy = p.height / lh;
    const r = vp.visibleRect();
    const ntx = Math.ceil(lw / T);
    const nty = Math.ceil(lh / T);
    const c0 = clamp(Math.floor(r.x0 / sx / T), 0, ntx - 1);
    const c1 = clamp(Math.ceil(r.x1 / sx / T) - 1, c0, ntx - 1);
    const r0 = clamp(Math.floor(r.y0 / sy / T), 0, nty - 1);
    const r1 = clamp(Math.ceil(r.y1 / sy / T) - 1, r0, nty - 1);
    const win = this.colour ? 'default' : windowSeg(this.window);
    const q = quality === 'lossless' ? 'lossless' : String(LOSSY_Q);
    const ext = quality === 'lossless' ? 'png' : 'jpg';
    const base = `${instanceUrl(this.st, this.se, im.sop)}/frames/${im.frame}/tiles/${win}/${q}/${L}`;
    const items = [];
    for (let row = r0; row <= r1; row++) {
      for (let col = c0; col <= c1; col++) {
        items.push({ url: `${base}/${col}/${row}.${ext}`, lx: (col - c0) * T, ly: (row - r0) * T });
      }
    }
    const pw = Math.min(lw, (c1 + 1) * T) - c0 * T;
    const ph = Math.min(lh, (r1 + 1) * T) - r0 * T;
    return {
      image: `${im.sop}/${im.frame}`, key: `${im.sop}/${im.frame}/${win}/${L}`, tiles: `${c0},${c1},${r0},${r1}`,
      quality, level: L, items, pw, ph, rect: { x: c0 * T * sx, y: r0 * T * sy, w: pw * sx, h: ph * sy },
      tileBase: (j) => {
        const o = this.images[j];
        return `${instanceUrl(this.st, this.se, o.sop)}/frames/${o.frame}/tiles/${win}/${LOSSY_Q}/${L}`;
      },
    };
  }

  onShown() {
    if (!this.listLoaded) this.loadList();
  }

  // Neighbours in the direction of travel first, as lossy tiles (what scrolling shows).
  prefetch(vp) {
    const spec = vp.wanted;
    if (!spec || !this.listLoaded) return;
    const same = (j) => this.images[j] && this.pyr(this.images[j]) === this.pyr(this.images[this.index]);
    const order = [1, 2, -1, 3, 4, -2, 5, 6, 7, 8, 9, 10].map((d) => this.index + d * this.lastStep).filter(same);
    const urls = [];
    const [c0, c1, r0, r1] = spec.tiles.split(',').map(Number);
    for (const j of order) {
      const b = spec.tileBase(j);
      for (let row = r0; row <= r1; row++) for (let col = c0; col <= c1; col++) urls.push(`${b}/${col}/${row}.jpg`);
    }
    prefetch(urls);
  }

  mmPerPixel() {
    const p = this.size();
    const im = this.images[this.index];
    let ps = vals(this.meta, TAG.PixelSpacing);
    let note = '';
    if (ps.length < 2) {
      ps = vals(this.meta, TAG.ImagerPixelSpacing);
      note = ' (detector)';
    }
    if (ps.length < 2 || !p) return null;
    return { x: (im.cols * ps[1]) / p.width, y: (im.rows * ps[0]) / p.height, note };
  }

  pixelScale() {
    return this.mmPerPixel();
  }

  // Statistics of a rectangle or ellipse ROI in modality values: the image coordinates (square
  // pixels of the pyramid's level 0) are mapped to the frame's native pixels, whose values come
  // from the server (values.js).
  async roiValues(m) {
    const im = this.images.find((x) => `${x.sop}/${x.frame}` === m.imageId);
    const p = im && this.pyr(im);
    if (!p) throw new Error('image not loaded');
    const fv = await frameValues(this.st, this.se, im.sop, im.frame, { signal: this.ctrl.signal });
    if (fv.unavailable) return { unavailable: true };
    if (fv.error) return { error: fv.error };
    const fx = fv.cols / p.width;
    const fy = fv.rows / p.height;
    const [a, b] = m.pts.map(([x, y]) => [x * fx, y * fy]);
    const st = roiStats(fv.values, fv.cols, fv.rows, m.type, a, b);
    return { ...st, unit: fv.unit, native: [a, b] };
  }

  lengthLabel(a, b) {
    const mm = this.mmPerPixel();
    const dx = b[0] - a[0];
    const dy = b[1] - a[1];
    if (!mm) return `${Math.hypot(dx, dy).toFixed(1)} px`;
    return `${Math.hypot(dx * mm.x, dy * mm.y).toFixed(1)} mm${mm.note}`;
  }

  directions() {
    const im = this.images[this.index];
    const iop = im?.iop?.length === 6 ? im.iop : vals(this.meta, TAG.ImageOrientationPatient);
    if (iop.length !== 6) return null;
    return { row: iop.slice(0, 3).map(Number), col: iop.slice(3, 6).map(Number) };
  }

  overlay(vp) {
    const m = this.meta;
    const im = this.images[this.index];
    if (!m || !im) return {};
    const w = this.window;
    const d = this.directions();
    let pos = '';
    if (im.loc != null) pos = `Loc ${Number(im.loc).toFixed(2)} mm`;
    else if (d && im.ipp?.length === 3) {
      const n = [d.row[1] * d.col[2] - d.row[2] * d.col[1], d.row[2] * d.col[0] - d.row[0] * d.col[2], d.row[0] * d.col[1] - d.row[1] * d.col[0]];
      pos = `Pos ${(im.ipp[0] * n[0] + im.ipp[1] * n[1] + im.ipp[2] * n[2]).toFixed(2)} mm`;
    }
    const thk = val(m, TAG.SliceThickness);
    return {
      tl: [personName(m), str(m, TAG.PatientID) && `ID ${str(m, TAG.PatientID)}`,
        [dicomDate(str(m, TAG.StudyDate)), str(m, TAG.StudyDescription)].filter(Boolean).join(' ')],
      tr: [`Se ${str(this.series, TAG.SeriesNumber) || str(m, TAG.SeriesNumber)} ${str(m, TAG.SeriesDescription)}`,
        `Im ${im.number ?? ''} (${this.index + 1}/${this.listLoaded ? this.count : '…'})`,
        im.frames > 1 ? `Frame ${im.frame}/${im.frames}` : ''],
      bl: [this.colour ? '' : (w ? `W ${+w.width.toFixed(2)} L ${+w.center.toFixed(2)}` : 'W/L default'),
        `Zoom ${Math.round(vp.view.scale * 100)}%`, vp.comp?.quality === 'lossy' ? 'lossy' : ''],
      br: [pos, thk != null ? `Thk ${Number(thk).toFixed(2)} mm` : ''],
    };
  }

  // Cine frame rate from the file (frames per second).
  frameRate() {
    const r = Number(val(this.meta, TAG.RecommendedDisplayFrameRate)) || Number(val(this.meta, TAG.CineRate));
    if (r > 0) return r;
    const ft = Number(val(this.meta, TAG.FrameTime));
    return ft > 0 ? Math.round(1000 / ft) : 10;
  }
}

export { getJson };
