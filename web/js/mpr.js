// SPDX-License-Identifier: MIT
// mpr.js: axial, coronal and sagittal reformats of a volume series, sharing one point in patient
// coordinates (LPS, mm). Each plane is the server's mpr/rendered image; its geometry (origin =
// centre of the top-left pixel, row and column directions, spacing) maps pixels to the patient.
// Cross-reference lines are where the other planes cut this one; clicking or dragging in a plane
// moves the point, and so the other planes.
//
// Oblique planes: rotating the crosshair in one plane (Shift+drag, or a drag of a handle on a
// line) turns the other two about that plane's normal through the point; they are then asked for
// as plane=oblique with row and col directions. The three planes stay mutually orthogonal, and
// the lines are always computed from the planes' current normals. An oblique plane is requested
// through the projection of the volume's centre onto it, so its pixel grid (and size) depends
// only on its orientation: moving the point within it changes nothing, moving it along the
// normal moves the origin along the normal.
import { TAG, str, personName, getJson, seriesUrl, windowSeg } from './dicom.js';
import { CT_PRESETS } from './stack.js';

const AXIS = { axial: 2, coronal: 1, sagittal: 0 };
export const PLANE_COLOUR = { axial: '#ff5c5c', coronal: '#4cd964', sagittal: '#5ab0ff' };
const STANDARD = {
  axial: { row: [1, 0, 0], col: [0, 1, 0] },
  coronal: { row: [1, 0, 0], col: [0, 0, -1] },
  sagittal: { row: [0, 1, 0], col: [0, 0, -1] },
};
const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const add = (a, b, k = 1) => [a[0] + k * b[0], a[1] + k * b[1], a[2] + k * b[2]];
const unit = (a) => { const n = Math.hypot(...a) || 1; return a.map((x) => x / n); };
const r2 = (x) => Math.round(x * 100) / 100;
const fmt = (v, d) => v.map((x) => String(+x.toFixed(d) || 0)).join(',');
// Rotation of v about the unit axis k by angle t (Rodrigues).
function rotate(v, k, t) {
  const c = Math.cos(t);
  const s = Math.sin(t);
  const kv = cross(k, v);
  const kd = dot(k, v) * (1 - c);
  return [0, 1, 2].map((i) => v[i] * c + kv[i] * s + k[i] * kd);
}

export class MprGroup {
  constructor({ st, se, study, series }) {
    this.st = st;
    this.se = se;
    this.study = study;
    this.series = series;
    this.slab = { thickness: 0, mode: 'mip' };
    this.planes = ['axial', 'coronal', 'sagittal'].map((p) => new MprSource(this, p));
    this.ctrl = new AbortController();
    this.geoCache = new Map(); // oblique orientation key -> Promise<geometry JSON>
  }

  get oblique() {
    return this.planes.some((p) => p.oblique);
  }

  // Rotates the crosshair of plane `from` by t radians (from its row towards its column
  // direction): the other planes turn about its normal, through the point.
  rotate(from, t) {
    if (!t) return;
    const k = from.orient().normal;
    for (const p of this.planes) {
      if (p === from) continue;
      const o = p.orient();
      const row = unit(rotate(o.row, k, t));
      const col = unit(add(rotate(o.col, k, t), row, -dot(rotate(o.col, k, t), row)));
      p.setOrient({ row, col });
    }
    for (const p of this.planes) {
      const vp = p.viewport;
      if (!vp) continue;
      if (p !== from) vp.touch();
      vp.updateSlider();
      vp.refresh();
    }
  }

  resetPlanes() {
    if (!this.oblique) return;
    for (const p of this.planes) p.setOrient(null);
    for (const p of this.planes) {
      if (!p.viewport) continue;
      p.viewport.updateSlider();
      p.viewport.refresh();
    }
  }

  // Geometry of an oblique orientation (the plane through the centre's projection).
  obliqueGeometry(key, params) {
    let g = this.geoCache.get(key);
    if (!g) {
      g = getJson(`${seriesUrl(this.st, this.se)}/mpr/geometry?${params}`, { signal: this.ctrl.signal, accept: 'application/json' });
      g.then((x) => { g.value = x; }, () => this.geoCache.delete(key));
      this.geoCache.set(key, g);
      if (this.geoCache.size > 200) this.geoCache.delete(this.geoCache.keys().next().value);
    }
    return g;
  }

  centre() {
    const e = this.volume.extent;
    return [0, 1, 2].map((i) => (e.min[i] + e.max[i]) / 2);
  }

  // The point, kept inside the volume's box (so that every plane through it meets the volume).
  clampPoint(p) {
    const e = this.volume?.extent;
    return e ? p.map((x, i) => Math.min(e.max[i], Math.max(e.min[i], x))) : p;
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
    this.point = this.clampPoint(p);
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
    this.rot = null; // {row, col} when oblique
  }

  get colour() { return PLANE_COLOUR[this.plane]; }

  get oblique() { return !!this.rot; }

  // Current orientation: row and column directions, normal = row x col.
  orient() {
    const o = this.rot || STANDARD[this.plane];
    return { row: o.row, col: o.col, normal: cross(o.row, o.col) };
  }

  setOrient(o) {
    const s = STANDARD[this.plane];
    const same = o && [0, 1, 2].every((i) => Math.abs(o.row[i] - s.row[i]) < 1e-9 && Math.abs(o.col[i] - s.col[i]) < 1e-9);
    this.rot = o && !same ? o : null;
  }

  orientKey() {
    const o = this.orient();
    return `${fmt(o.row, 6)};${fmt(o.col, 6)}`;
  }

  // Request parameters of the oblique plane through the point: the point given is the projection
  // of the volume's centre onto the plane (see the top of this file).
  obliqueParams() {
    const o = this.orient();
    const C = this.group.centre();
    const anchor = add(C, o.normal, dot(this.group.point, o.normal) - dot(C, o.normal));
    return { plane: 'oblique', point: fmt(anchor, 3), row: fmt(o.row, 6), col: fmt(o.col, 6) };
  }

  // The geometry JSON of the current orientation (standard: from init; oblique: fetched).
  baseGeo() {
    if (!this.rot) return this.geo;
    const g = this.group.geoCache.get(this.orientKey())?.value;
    if (g) this.lastGeo = g;
    return g;
  }

  label() {
    return `${this.plane} reformat of series ${str(this.group.series, TAG.SeriesNumber)}`;
  }

  async ensure() {
    await this.group.init();
    if (this.rot && !this.baseGeo()) {
      const q = this.obliqueParams();
      await this.group.obliqueGeometry(this.orientKey(), new URLSearchParams({ ...q, point: fmt(this.group.centre(), 3) }));
    }
  }

  ready() { return !!this.geo && !!this.baseGeo(); }

  // Scrolling range along the normal: standard planes along their axis (slices of the volume
  // for axial), oblique ones over the projection of the volume's box, a pixel spacing a step.
  range() {
    const e = this.group.volume.extent;
    if (!this.rot) {
      const lo = e.min[this.axis];
      const hi = e.max[this.axis];
      const step = this.axis === 2 ? (this.group.volume.minGap || 1) : this.geo.spacing;
      return { lo, hi, step };
    }
    const n = this.orient().normal;
    const d = [];
    for (let k = 0; k < 8; k++) d.push(dot([k & 1 ? e.max[0] : e.min[0], k & 2 ? e.max[1] : e.min[1], k & 4 ? e.max[2] : e.min[2]], n));
    const step = this.geo.spacing;
    return { lo: Math.min(...d) + step / 2, hi: Math.max(...d) - step / 2, step };
  }

  // Where the point is along this plane's scrolling direction.
  depth() {
    return this.rot ? dot(this.group.point, this.orient().normal) : this.group.point[this.axis];
  }

  get count() {
    if (!this.geo || !this.group.volume) return 0;
    const { lo, hi, step } = this.range();
    return Math.max(1, Math.floor((hi - lo) / step + 1e-6) + 1);
  }

  get index() {
    if (!this.geo || !this.group.volume) return 0;
    const { lo, step } = this.range();
    return Math.max(0, Math.min(this.count - 1, Math.round((this.depth() - lo) / step)));
  }

  set index(i) {
    const { lo, step } = this.range();
    let p = [...this.group.point];
    if (this.rot) {
      const n = this.orient().normal;
      p = add(p, n, lo + i * step - dot(p, n));
    } else p[this.axis] = lo + i * step;
    this.group.point = p;
    this.group.changed(this);
  }

  position() {
    return r2(this.depth());
  }

  imageId() {
    return this.rot ? `${this.plane}/${this.orientKey()}/${this.position()}` : `${this.plane}/${this.position()}`;
  }

  size() {
    const g = this.baseGeo() || this.lastGeo;
    return g ? { width: g.width, height: g.height } : null;
  }

  // Geometry of the plane through the current point: standard planes move their origin along
  // their axis, oblique ones along their normal.
  geometry() {
    const g = this.baseGeo() || this.lastGeo || this.geo;
    const o = this.rot ? this.orient() : { row: g.rowDirection, col: g.columnDirection, normal: g.normal };
    let origin = [...g.origin];
    if (this.rot) origin = add(origin, o.normal, dot(this.group.point, o.normal) - dot(origin, o.normal));
    else origin[this.axis] = this.position();
    return { origin, row: o.row, col: o.col, normal: o.normal, spacing: g.spacing, width: g.width, height: g.height };
  }

  spec(i, vp, quality) {
    const gr = this.group;
    const p = new URLSearchParams(this.rot ? this.obliqueParams() : { plane: this.plane, position: String(this.position()) });
    p.set('window', windowSeg(gr.window));
    if (gr.slab.thickness > 0) p.set('slab', `${gr.slab.thickness},${gr.slab.mode}`);
    const key = `${p}`;
    if (quality === 'lossless') p.set('accept', 'image/png');
    else p.set('quality', '85');
    const url = `${seriesUrl(gr.st, gr.se)}/mpr/rendered?${p}`;
    const { width, height } = this.size();
    return {
      image: this.imageId(), key, tiles: 'all', quality, level: 0,
      items: [{ url, lx: 0, ly: 0 }], pw: width, ph: height,
      rect: { x: 0, y: 0, w: width, h: height },
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

  // Patient position -> image coordinates (projected onto the plane).
  toImage(P) {
    const g = this.geometry();
    const d = add(P, g.origin, -1);
    return [dot(d, g.row) / g.spacing + 0.5, dot(d, g.col) / g.spacing + 0.5];
  }

  // With the crosshair tool: Shift+drag or a drag from a handle rotates, any other drag moves
  // the point.
  pointerDown(vp, kind, e) {
    if (kind !== 'cross') return;
    this.rotating = null;
    const [x, y] = vp.eventCanvas(e);
    const dpr = window.devicePixelRatio || 1;
    const r = (e.pointerType === 'touch' ? 22 : 12) * dpr;
    if (e.shiftKey || (this.handles || []).some((h) => Math.hypot(h[0] - x, h[1] - y) <= r)) {
      this.rotating = { last: this.angleAt(vp, e) };
      vp.host.dataset.rotating = 'true';
      return;
    }
    this.movePoint(vp, e);
  }

  pointerMove(vp, kind, e) {
    if (kind !== 'cross') return;
    if (this.rotating) {
      const a = this.angleAt(vp, e);
      let d = a - this.rotating.last;
      while (d > Math.PI) d -= 2 * Math.PI;
      while (d < -Math.PI) d += 2 * Math.PI;
      this.rotating.last = a;
      this.group.rotate(this, d);
    } else this.movePoint(vp, e);
  }

  pointerUp(vp) {
    if (!this.rotating) return;
    this.rotating = null;
    delete vp.host.dataset.rotating;
    vp.refresh();
  }

  // Angle of the pointer around the point, in image coordinates (row towards column direction).
  angleAt(vp, e) {
    const [u, v] = vp.toImage(...vp.eventCanvas(e));
    const [pu, pv] = this.toImage(this.group.point);
    return Math.atan2(v - pv, u - pu);
  }

  movePoint(vp, e) {
    const [u, v] = vp.toImage(...vp.eventCanvas(e));
    const p = this.toPatient(u, v);
    const n = this.orient().normal;
    // stay in this plane (its depth is unchanged)
    this.group.setPoint(add(p, n, dot(this.group.point, n) - dot(p, n)), this);
  }

  directions() {
    const g = this.geometry();
    return { row: g.row, col: g.col };
  }

  pixelScale() {
    const s = this.geometry().spacing;
    return { x: s, y: s };
  }

  lengthLabel(a, b) {
    return `${(Math.hypot(b[0] - a[0], b[1] - a[1]) * this.geometry().spacing).toFixed(1)} mm`;
  }

  overlay(vp) {
    const gr = this.group;
    const w = gr.window;
    const name = `${this.plane[0].toUpperCase()}${this.plane.slice(1)}`;
    return {
      tl: [personName(gr.study), str(gr.study, TAG.PatientID) && `ID ${str(gr.study, TAG.PatientID)}`],
      tr: [this.rot ? `${name} (oblique)` : name,
        this.rot ? `depth ${this.position().toFixed(2)} mm` : `${'xyz'[this.axis]} = ${this.position().toFixed(2)} mm`,
        `${this.index + 1}/${this.count}`],
      bl: [w ? `W ${w.width} L ${w.center}` : '', `Zoom ${Math.round(vp.view.scale * 100)}%`],
      br: [gr.slab.thickness > 0 ? `Slab ${gr.slab.thickness} mm ${gr.slab.mode.toUpperCase()}` : 'Thin'],
    };
  }

  // Where the other planes cut this one, through the shared point, with a rotation handle on
  // each line on either side of the point.
  drawExtra(vp, ctx) {
    const g = this.geometry();
    const P = this.group.point;
    const W = g.width;
    const H = g.height;
    const dpr = window.devicePixelRatio || 1;
    const [pu, pv] = this.toImage(P);
    const centre = vp.toCanvas(pu, pv);
    const reach = 0.38 * Math.min(vp.canvas.width, vp.canvas.height);
    this.handles = [];
    ctx.lineWidth = 1.5 * dpr;
    for (const o of this.group.planes) {
      if (o === this || !o.geo) continue;
      const n = o.orient().normal;
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
      const len = Math.hypot(q[0] - p[0], q[1] - p[1]) || 1;
      const dir = [(q[0] - p[0]) / len, (q[1] - p[1]) / len];
      for (const sgn of [1, -1]) {
        const h = [centre[0] + sgn * reach * dir[0], centre[1] + sgn * reach * dir[1]];
        this.handles.push(h);
        ctx.beginPath();
        ctx.arc(h[0], h[1], 5 * dpr, 0, 2 * Math.PI);
        ctx.stroke();
      }
    }
    const r = vp.canvas.width / (vp.canvas.getBoundingClientRect().width || 1);
    vp.host.dataset.handles = this.handles.map((h) => `${(h[0] / r).toFixed(1)},${(h[1] / r).toFixed(1)}`).join(';');
    vp.host.dataset.point = P.map((x) => x.toFixed(2)).join(',');
    const o = this.orient();
    vp.host.dataset.oblique = String(!!this.rot);
    vp.host.dataset.orient = `${fmt(o.row, 5)};${fmt(o.col, 5)}`;
  }
}
