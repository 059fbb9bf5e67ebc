// SPDX-License-Identifier: MIT
// mpr.js: axial, coronal and sagittal reformats of a volume series, sharing one point in patient
// coordinates (LPS, mm). Each plane is the server's mpr/rendered image; its geometry (origin =
// centre of the top-left pixel, row and column directions, spacing) maps pixels to the patient.
// Cross-reference lines are where the other planes cut this one; clicking or dragging in a plane
// moves the point, and so the other planes.
import { TAG, str, personName, getJson, seriesUrl, windowSeg } from './dicom.js';
import { CT_PRESETS } from './stack.js';

const AXIS = { axial: 2, coronal: 1, sagittal: 0 };
export const PLANE_COLOUR = { axial: '#ff5c5c', coronal: '#4cd964', sagittal: '#5ab0ff' };
const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const r2 = (x) => Math.round(x * 100) / 100;

export class MprGroup {
  constructor({ st, se, study, series }) {
    this.st = st;
    this.se = se;
    this.study = study;
    this.series = series;
    this.slab = { thickness: 0, mode: 'mip' };
    this.planes = ['axial', 'coronal', 'sagittal'].map((p) => new MprSource(this, p));
    this.ctrl = new AbortController();
  }

  init() {
    if (!this.initP) {
      this.initP = (async () => {
        const base = seriesUrl(this.st, this.se);
        const o = { signal: this.ctrl.signal, accept: 'application/json' };
        const [vol, ...geo] = await Promise.all([
          getJson(`${base}/volume`, o),
          ...this.planes.map((p) => getJson(`${base}/mpr/geometry?plane=${p.plane}`, o)),
        ]);
        this.volume = vol;
        this.point = [...geo[0].center];
        this.planes.forEach((p, i) => { p.geo = geo[i]; });
        const w = vol.windows?.[0];
        this.fileWindows = (vol.windows || []).map((x, i) => ({ name: `File ${i + 1}`, center: x.center, width: x.width }));
        this.window = w ? { center: w.center, width: w.width } : null;
        if (!this.window && vol.valueRange) {
          this.window = { center: (vol.valueRange[0] + vol.valueRange[1]) / 2, width: Math.max(1, vol.valueRange[1] - vol.valueRange[0]) };
        }
      })();
    }
    return this.initP;
  }

  destroy() {
    this.ctrl.abort();
  }

  // Moves the shared point; every plane that passes elsewhere reloads, every plane redraws its lines.
  setPoint(p, from) {
    this.point = p;
    for (const s of this.planes) {
      const vp = s.viewport;
      if (!vp) continue;
      if (s !== from) vp.touch();
      vp.slider.value = String(s.index);
      vp.refresh();
    }
  }

  changed(from) {
    for (const s of this.planes) {
      if (s === from || !s.viewport) continue;
      s.viewport.slider.value = String(s.index);
      s.viewport.refresh();
    }
  }
}

export class MprSource {
  constructor(group, plane) {
    this.group = group;
    this.plane = plane;
    this.axis = AXIS[plane];
  }

  get colour() { return PLANE_COLOUR[this.plane]; }

  label() {
    return `${this.plane} reformat of series ${str(this.group.series, TAG.SeriesNumber)}`;
  }

  ensure() { return this.group.init(); }

  ready() { return !!this.geo; }

  range() {
    const e = this.group.volume.extent;
    const lo = e.min[this.axis];
    const hi = e.max[this.axis];
    const step = this.axis === 2 ? (this.group.volume.minGap || 1) : this.geo.spacing;
    return { lo, hi, step };
  }

  get count() {
    if (!this.geo) return 0;
    const { lo, hi, step } = this.range();
    return Math.floor((hi - lo) / step + 1e-6) + 1;
  }

  get index() {
    if (!this.geo) return 0;
    const { lo, step } = this.range();
    return Math.round((this.group.point[this.axis] - lo) / step);
  }

  set index(i) {
    const { lo, step } = this.range();
    const p = [...this.group.point];
    p[this.axis] = lo + i * step;
    this.group.point = p;
    this.group.changed(this);
  }

  position() {
    return r2(this.group.point[this.axis]);
  }

  imageId() {
    return `${this.plane}/${this.position()}`;
  }

  size() {
    return this.geo ? { width: this.geo.width, height: this.geo.height } : null;
  }

  // Geometry of the plane at the current position (the origin moves along the axis only).
  geometry() {
    const g = this.geo;
    const origin = [...g.origin];
    origin[this.axis] = this.position();
    return { origin, row: g.rowDirection, col: g.columnDirection, normal: g.normal, spacing: g.spacing };
  }

  spec(i, vp, quality) {
    const gr = this.group;
    const p = new URLSearchParams({ plane: this.plane, position: String(this.position()), window: windowSeg(gr.window) });
    if (gr.slab.thickness > 0) p.set('slab', `${gr.slab.thickness},${gr.slab.mode}`);
    if (quality === 'lossless') p.set('accept', 'image/png');
    else p.set('quality', '85');
    const url = `${seriesUrl(gr.st, gr.se)}/mpr/rendered?${p}`;
    const key = `${this.plane}/${p.get('position')}/${p.get('window')}/${p.get('slab') || ''}`;
    return {
      image: `${this.plane}/${p.get('position')}`, key, tiles: 'all', quality, level: 0,
      items: [{ url, lx: 0, ly: 0 }], pw: this.geo.width, ph: this.geo.height,
      rect: { x: 0, y: 0, w: this.geo.width, h: this.geo.height },
      headers: ['X-Tessera-Plane-Origin', 'X-Tessera-Plane-Size'],
    };
  }

  presets() {
    const out = [...(this.group.fileWindows || [])];
    if (this.group.volume?.modality === 'CT') out.push(...CT_PRESETS);
    return out;
  }

  setWindow(w) {
    this.group.window = w ? { ...w } : null;
    this.group.changed(this);
  }

  resetWindow() {
    const w = this.group.fileWindows?.[0];
    if (w) this.setWindow(w);
  }

  windowDrag(dx, dy) {
    const w = this.group.window || { center: 0, width: 400 };
    const k = Math.max(0.05, w.width / 300);
    this.group.window = { center: Math.round(w.center + dy * k), width: Math.max(1, Math.round(w.width + dx * k)) };
    this.group.changed(this);
  }

  mapTool(kind) {
    return kind === 'scroll' ? 'cross' : kind;
  }

  // Image coordinates (pixel x covers [x, x+1)) -> patient position.
  toPatient(u, v) {
    const g = this.geometry();
    return [0, 1, 2].map((k) => g.origin[k] + (u - 0.5) * g.spacing * g.row[k] + (v - 0.5) * g.spacing * g.col[k]);
  }

  pointerDown(vp, kind, e) {
    if (kind !== 'cross') return;
    this.movePoint(vp, e);
  }

  pointerMove(vp, kind, e) {
    if (kind === 'cross') this.movePoint(vp, e);
  }

  movePoint(vp, e) {
    const [u, v] = vp.toImage(...vp.eventCanvas(e));
    const p = this.toPatient(u, v);
    p[this.axis] = this.group.point[this.axis];
    this.group.setPoint(p, this);
  }

  directions() {
    const g = this.geometry();
    return { row: g.row, col: g.col };
  }

  lengthLabel(a, b) {
    return `${(Math.hypot(b[0] - a[0], b[1] - a[1]) * this.geo.spacing).toFixed(1)} mm`;
  }

  overlay(vp) {
    const gr = this.group;
    const w = gr.window;
    return {
      tl: [personName(gr.study), str(gr.study, TAG.PatientID) && `ID ${str(gr.study, TAG.PatientID)}`],
      tr: [`${this.plane[0].toUpperCase()}${this.plane.slice(1)}`, `${'xyz'[this.axis]} = ${this.position().toFixed(2)} mm`,
        `${this.index + 1}/${this.count}`],
      bl: [w ? `W ${w.width} L ${w.center}` : '', `Zoom ${Math.round(vp.view.scale * 100)}%`],
      br: [gr.slab.thickness > 0 ? `Slab ${gr.slab.thickness} mm ${gr.slab.mode.toUpperCase()}` : 'Thin'],
    };
  }

  // Where the other planes cut this one, through the shared point.
  drawExtra(vp, ctx) {
    const g = this.geometry();
    const P = this.group.point;
    const W = this.geo.width;
    const H = this.geo.height;
    const dpr = window.devicePixelRatio || 1;
    ctx.lineWidth = 1.5 * dpr;
    for (const o of this.group.planes) {
      if (o === this || !o.geo) continue;
      const n = o.geo.normal;
      // (origin + x s row + y s col - P) . n = 0, with x = u - 0.5, y = v - 0.5
      const A = g.spacing * dot(g.row, n);
      const B = g.spacing * dot(g.col, n);
      const C = dot([g.origin[0] - P[0], g.origin[1] - P[1], g.origin[2] - P[2]], n);
      let pts;
      if (Math.abs(A) > Math.abs(B)) {
        const u = (v) => (-C - B * (v - 0.5)) / A + 0.5;
        pts = [[u(0), 0], [u(H), H]];
      } else if (Math.abs(B) > 1e-9) {
        const v = (u) => (-C - A * (u - 0.5)) / B + 0.5;
        pts = [[0, v(0)], [W, v(W)]];
      } else continue;
      const [p, q] = pts.map(([x, y]) => vp.toCanvas(x, y));
      ctx.strokeStyle = o.colour;
      ctx.beginPath();
      ctx.moveTo(p[0], p[1]);
      ctx.lineTo(q[0], q[1]);
      ctx.stroke();
    }
    vp.host.dataset.point = P.map((x) => x.toFixed(2)).join(',');
  }
}
