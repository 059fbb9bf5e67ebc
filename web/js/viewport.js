// SPDX-License-Identifier: MIT
// viewport.js: one image viewport. It draws what a source (a stack of frames, or an MPR plane)
// gives it: server-rendered tiles of the pyramid level that matches the zoom, composed into one
// offscreen canvas (no seams) and drawn with the view transform (zoom, pan, rotation, flips).
// Lossy tiles while the user interacts, lossless when still; the previous image stays on screen
// until the next one is complete.
//
// Measurements (measure.js) are drawn with the measurement tools and edited with any tool: a
// press of the primary button or of one finger on a measurement's handle or line (within 8 CSS
// px, 22 on touch) edits it instead of doing what the tool does, except while an angle is being
// placed (its next point) and with Shift held (the tool acts: draw over a measurement, rotate
// the MPR crosshair). A press selects it; dragging a handle moves that point, dragging the line
// or outline moves it whole; ROI values are recomputed while dragging.
import { loadImage } from './tiles.js';
import {
  MEASURE_TOOLS, complete, drawMeasure, hitTest, moveHandle, moveBody,
} from './measure.js';

const dprOf = () => window.devicePixelRatio || 1;
export const clamp = (x, a, b) => Math.max(a, Math.min(b, x));
const STILL_MS = 220;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

// Patient direction letters of a vector (LPS).
export function orientationLabel(v) {
  const names = [['L', 'R'], ['P', 'A'], ['S', 'I']];
  const parts = v.map((x, i) => ({ i, x, a: Math.abs(x) })).filter((p) => p.a > 0.25).sort((p, q) => q.a - p.a);
  return parts.slice(0, 2).map((p) => names[p.i][p.x > 0 ? 0 : 1]).join('');
}

export class Viewport {
  constructor(host, { onActivate, onChange, tool } = {}) {
    this.host = host;
    this.onActivate = onActivate || (() => {});
    this.onChange = onChange || (() => {});
    this.tool = tool || (() => 'scroll');
    this.src = null;
    this.view = null; // {scale, cx, cy, rot, flipH, flipV}
    this.invert = false;
    this.comp = null; // shown composite
    this.inflight = null;
    this.wanted = null;
    this.interacting = false;
    this.painted = 0;
    this.measures = []; // {type, imageId, pts: [[x, y], ...], stats?} in image coordinates (measure.js)
    this.draft = null; // the measurement being drawn
    this.selected = null; // the selected measurement (deleteSelected)
    this.hot = null; // the measurement under the mouse
    this.editing = null; // {m, handle, orig, start, changed}: the measurement being edited
    this.build();
  }

  build() {
    const h = this.host;
    h.classList.add('viewport');
    h.tabIndex = 0;
    h.setAttribute('role', 'img');
    h.setAttribute('aria-label', 'Empty viewport: choose a series');
    this.canvas = el('canvas', 'image');
    this.ann = el('canvas', 'ann');
    this.ov = {};
    for (const c of ['tl', 'tr', 'bl', 'br']) this.ov[c] = el('div', `ov ${c}`);
    this.mk = {};
    for (const c of ['top', 'bottom', 'left', 'right']) this.mk[c] = el('div', `mk ${c}`);
    this.msg = el('div', 'msg', 'Drop or choose a series');
    this.progress = el('div', 'progress');
    this.progressBar = el('div', 'bar');
    this.progress.append(this.progressBar);
    this.slider = el('input', 'slider');
    this.slider.type = 'range';
    this.slider.min = '0';
    this.slider.max = '0';
    this.slider.setAttribute('aria-label', 'Slice');
    this.slider.hidden = true;
    this.slider.addEventListener('input', () => this.setIndex(Number(this.slider.value), true));
    h.replaceChildren(this.canvas, this.ann, ...Object.values(this.ov), ...Object.values(this.mk), this.msg,
      this.progress, this.slider);
    this.ctx = this.canvas.getContext('2d');
    this.actx = this.ann.getContext('2d');
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(h);
    this.bindInput();
  }

  destroy() {
    this.ro.disconnect();
    if (this.inflight) this.inflight.ctrl.abort();
    if (this.src?.destroy) this.src.destroy();
    this.src = null;
  }

  setMessage(text, isError = false) {
    this.msg.textContent = text || '';
    this.msg.hidden = !text;
    this.msg.classList.toggle('error', !!isError);
    if (isError) this.host.dataset.error = text;
  }

  setProgress(f) {
    this.progress.hidden = f == null || f >= 1;
    this.progressBar.style.width = `${Math.round(clamp(f || 0, 0, 1) * 100)}%`;
  }

  // ---------------------------------------------------------------- source

  async setSource(src) {
    this.cancelEdit();
    if (this.inflight) this.inflight.ctrl.abort();
    this.inflight = null;
    if (this.src?.destroy) this.src.destroy();
    this.src = src;
    this.comp = null;
    this.view = null;
    this.invert = false;
    this.canvas.classList.remove('inverted');
    delete this.host.dataset.error;
    this.setMessage('Loading…');
    this.host.dataset.state = 'loading';
    src.viewport = this;
    try {
      await src.ensure(src.index);
    } catch (e) {
      this.fail(e);
      return;
    }
    if (this.src !== src) return;
    this.setMessage('');
    this.host.setAttribute('aria-label', src.label());
    this.updateSlider();
    this.fit();
  }

  fail(e) {
    if (e?.name === 'AbortError') return;
    console.warn('viewport:', e);
    this.host.dataset.state = 'error';
    this.setMessage(`This image cannot be shown: ${e?.message || e}`, true);
  }

  updateSlider() {
    const n = this.src?.count || 0;
    this.slider.hidden = n <= 1;
    this.slider.max = String(Math.max(0, n - 1));
    this.slider.value = String(this.src?.index || 0);
  }

  setIndex(i, fromSlider = false) {
    if (!this.src || !this.src.count) return;
    i = clamp(Math.round(i), 0, this.src.count - 1);
    if (i === this.src.index) return;
    if (this.hot) this.setHot(null); // the highlight belongs to the image left
    this.src.lastStep = Math.sign(i - this.src.index);
    this.src.index = i;
    if (!fromSlider) this.slider.value = String(i);
    this.touch();
    this.refresh();
    this.onChange(this);
  }

  step(d) {
    if (this.src) this.setIndex(this.src.index + d);
  }

  // ---------------------------------------------------------------- geometry

  resize() {
    const dpr = dprOf();
    const w = Math.max(1, Math.round(this.host.clientWidth * dpr));
    const h = Math.max(1, Math.round(this.host.clientHeight * dpr));
    if (this.canvas.width === w && this.canvas.height === h) return;
    const had = this.view && this.view.fitted;
    for (const c of [this.canvas, this.ann]) {
      c.width = w;
      c.height = h;
    }
    if (had) this.fit();
    else this.refresh();
  }

  size() {
    return this.src?.size() || null;
  }

  fit() {
    const s = this.size();
    if (!s) return;
    const v = this.view || { rot: 0, flipH: false, flipV: false };
    const swap = v.rot % 180 !== 0;
    const iw = swap ? s.height : s.width;
    const ih = swap ? s.width : s.height;
    v.scale = Math.min(this.canvas.width / iw, this.canvas.height / ih) || 1;
    v.cx = s.width / 2;
    v.cy = s.height / 2;
    v.w = s.width;
    v.h = s.height;
    v.fitted = true;
    this.view = v;
    this.refresh();
  }

  // One image pixel per device pixel, translation on whole pixels (so tiles are drawn exactly).
  actualSize() {
    if (!this.view) return;
    this.view.scale = 1;
    this.view.fitted = false;
    this.snap();
    this.refresh();
  }

  snap() {
    const v = this.view;
    if (v.scale !== 1) return;
    v.cx = this.canvas.width / 2 - Math.round(this.canvas.width / 2 - v.cx);
    v.cy = this.canvas.height / 2 - Math.round(this.canvas.height / 2 - v.cy);
  }

  reset() {
    if (!this.view) return;
    this.view = { rot: 0, flipH: false, flipV: false };
    this.invert = false;
    this.canvas.classList.remove('inverted');
    if (this.src?.resetWindow) this.src.resetWindow();
    this.fit();
  }

  // A fitted view of a source whose size changed (an MPR plane turned oblique) fits again.
  refit() {
    const s = this.size();
    if (!s || !this.view?.fitted || (s.width === this.view.w && s.height === this.view.h)) return false;
    this.fit();
    return true;
  }

  // The linear part of image -> canvas: scale * R(rot) * F.
  matrix() {
    const v = this.view;
    const t = (v.rot * Math.PI) / 180;
    const c = Math.round(Math.cos(t));
    const s = Math.round(Math.sin(t));
    const fx = v.flipH ? -1 : 1;
    const fy = v.flipV ? -1 : 1;
    // R = [c -s; s c], F = diag(fx, fy)
    return [v.scale * c * fx, v.scale * s * fx, -v.scale * s * fy, v.scale * c * fy];
  }

  toCanvas(x, y) {
    const [a, b, c, d] = this.matrix();
    const v = this.view;
    const dx = x - v.cx;
    const dy = y - v.cy;
    return [this.canvas.width / 2 + a * dx + c * dy, this.canvas.height / 2 + b * dx + d * dy];
  }

  toImage(px, py) {
    const [a, b, c, d] = this.matrix();
    const v = this.view;
    const det = a * d - b * c;
    const X = px - this.canvas.width / 2;
    const Y = py - this.canvas.height / 2;
    return [v.cx + (d * X - c * Y) / det, v.cy + (-b * X + a * Y) / det];
  }

  // Event (client) coordinates -> canvas device pixels.
  eventCanvas(e) {
    const r = this.canvas.getBoundingClientRect();
    const dpr = this.canvas.width / (r.width || 1);
    return [(e.clientX - r.left) * dpr, (e.clientY - r.top) * dpr];
  }

  // Visible region in image coordinates (clipped to the image).
  visibleRect() {
    const s = this.size();
    const W = this.canvas.width;
    const H = this.canvas.height;
    const pts = [[0, 0], [W, 0], [0, H], [W, H]].map(([x, y]) => this.toImage(x, y));
    const xs = pts.map((p) => p[0]);
    const ys = pts.map((p) => p[1]);
    return {
      x0: clamp(Math.min(...xs), 0, s.width), x1: clamp(Math.max(...xs), 0, s.width),
      y0: clamp(Math.min(...ys), 0, s.height), y1: clamp(Math.max(...ys), 0, s.height),
    };
  }

  zoomAt(f, px, py) {
    const v = this.view;
    if (!v) return;
    const before = this.toImage(px, py);
    v.scale = clamp(v.scale * f, 0.02, 64);
    v.fitted = false;
    const after = this.toImage(px, py);
    v.cx += before[0] - after[0];
    v.cy += before[1] - after[1];
    this.touch();
    this.refresh();
  }

  panBy(dx, dy) {
    const v = this.view;
    if (!v) return;
    const [a, b, c, d] = this.matrix();
    const det = a * d - b * c;
    v.cx -= (d * dx - c * dy) / det;
    v.cy -= (-b * dx + a * dy) / det;
    v.fitted = false;
    this.touch();
    this.refresh();
  }

  rotate(deg) {
    if (!this.view) return;
    this.view.rot = (((this.view.rot + deg) % 360) + 360) % 360;
    if (this.view.fitted) this.fit();
    else this.refresh();
  }

  flip(h) {
    if (!this.view) return;
    if (h) this.view.flipH = !this.view.flipH;
    else this.view.flipV = !this.view.flipV;
    this.refresh();
  }

  toggleInvert() {
    this.invert = !this.invert;
    this.canvas.classList.toggle('inverted', this.invert);
    this.drawOverlay();
  }

  // Marks the user as interacting: lossy images until STILL_MS after the last input.
  touch() {
    this.interacting = true;
    clearTimeout(this.stillTimer);
    this.stillTimer = setTimeout(() => {
      this.interacting = false;
      this.refresh();
    }, STILL_MS);
  }

  // ---------------------------------------------------------------- loading and drawing

  refresh() {
    if (!this.src || !this.view) return;
    if (this.refit()) return;
    this.draw();
    this.pump();
  }

  async pump() {
    const src = this.src;
    if (!src || !this.view) return;
    const idx = src.index;
    try {
      if (!src.ready(idx)) await src.ensure(idx);
    } catch (e) {
      if (this.src === src && src.index === idx) this.fail(e);
      return;
    }
    // a source that changed while loading (an MPR plane rotated) has been refreshed again
    if (this.src !== src || src.index !== idx || !src.ready(idx) || this.refit()) return;
    const spec = src.spec(idx, this, this.interacting || !this.comp ? 'lossy' : 'lossless');
    this.wanted = spec;
    if (this.satisfied(spec)) {
      if (!this.inflight) this.settle();
      this.draw();
      return;
    }
    if (this.inflight) {
      const f = this.inflight;
      if (f.spec.key === spec.key && f.spec.quality === spec.quality && f.spec.tiles === spec.tiles) return;
      // Stale: a lossless load the user no longer waits for is cancelled at once, any other once
      // it has taken 150 ms (until then it still shows the motion); its successor starts then.
      const age = performance.now() - f.started;
      if ((f.spec.quality === 'lossless' && spec.quality !== 'lossless') || age > 150) {
        f.ctrl.abort();
        this.inflight = null;
      } else {
        return;
      }
    }
    this.start(spec);
  }

  satisfied(spec) {
    const c = this.comp;
    return !!c && c.key === spec.key && c.tiles === spec.tiles && (c.quality === spec.quality || c.quality === 'lossless');
  }

  start(spec) {
    const ctrl = new AbortController();
    const f = { spec, ctrl, started: performance.now() };
    this.inflight = f;
    this.host.dataset.state = 'loading';
    let done = 0;
    const n = spec.items.length;
    const slow = setTimeout(() => { if (this.inflight === f) this.setProgress(done / n); }, 120);
    Promise.all(spec.items.map((it) => loadImage(it.url, { signal: ctrl.signal, headers: spec.headers })
      .then((r) => { done++; if (!this.progress.hidden) this.setProgress(done / n); return r; })))
      .then((imgs) => {
        if (this.inflight !== f) return;
        this.inflight = null;
        this.comp = this.compose(spec, imgs);
        if (this.src?.onShown) this.src.onShown(spec, imgs);
        if (this.src?.prefetch) this.src.prefetch(this);
        this.painted++;
        this.draw();
        this.pump();
      }, (e) => {
        if (this.inflight === f) this.inflight = null;
        if (e.name === 'AbortError') { this.pump(); return; }
        this.fail(e);
      })
      .finally(() => {
        clearTimeout(slow);
        if (!this.inflight) this.setProgress(null);
      });
  }

  compose(spec, imgs) {
    let canvas;
    if (imgs.length === 1 && spec.items[0].lx === 0 && spec.items[0].ly === 0) {
      canvas = imgs[0].bitmap;
    } else {
      canvas = document.createElement('canvas');
      canvas.width = spec.pw;
      canvas.height = spec.ph;
      const c = canvas.getContext('2d');
      spec.items.forEach((it, i) => c.drawImage(imgs[i].bitmap, it.lx, it.ly));
    }
    return { key: spec.key, image: spec.image, tiles: spec.tiles, quality: spec.quality, level: spec.level,
      rect: spec.rect, canvas, meta: imgs[0]?.meta || {} };
  }

  // Called when the wanted image is on screen and nothing is loading.
  settle() {
    const still = !this.interacting && this.comp && this.comp.quality === 'lossless';
    this.host.dataset.state = still ? 'still' : 'moving';
    if (this.src?.prefetch) this.src.prefetch(this);
  }

  // One paint per animation frame, of the latest state.
  draw() {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.paint();
    });
  }

  paint() {
    const ctx = this.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    const c = this.comp;
    if (c && this.view) {
      const [a, b, cc, d] = this.matrix();
      const v = this.view;
      const e = this.canvas.width / 2 - a * v.cx - cc * v.cy;
      const f = this.canvas.height / 2 - b * v.cx - d * v.cy;
      ctx.setTransform(a, b, cc, d, e, f);
      ctx.imageSmoothingEnabled = true;
      ctx.imageSmoothingQuality = 'high';
      ctx.drawImage(c.canvas, c.rect.x, c.rect.y, c.rect.w, c.rect.h);
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      if (!performance.getEntriesByName('tessera-first-image').length) performance.mark('tessera-first-image');
    }
    this.shownImage = c?.image || '';
    this.host.dataset.index = String(this.src?.index ?? '');
    this.host.dataset.level = String(c?.level ?? '');
    this.host.dataset.quality = c?.quality || '';
    this.host.dataset.painted = String(this.painted);
    this.drawOverlay();
  }

  // Text corners, orientation markers, measurements, and whatever the source adds (MPR lines).
  drawOverlay() {
    const a = this.actx;
    a.setTransform(1, 0, 0, 1, 0, 0);
    a.clearRect(0, 0, this.ann.width, this.ann.height);
    if (!this.src || !this.view) return;
    const o = this.src.overlay ? this.src.overlay(this) : {};
    for (const k of ['tl', 'tr', 'bl', 'br']) {
      const t = (o[k] || []).filter(Boolean).join('\n');
      if (this.ov[k].textContent !== t) this.ov[k].textContent = t;
    }
    // Orientation markers: the patient direction of each screen edge.
    const dirs = this.src.directions ? this.src.directions() : null;
    const set = (k, t) => { if (this.mk[k].textContent !== t) this.mk[k].textContent = t; };
    if (dirs) {
      const [ma, mb, mc, md] = this.matrix();
      const det = ma * md - mb * mc;
      const imgDir = (sx, sy) => [(md * sx - mc * sy) / det, (-mb * sx + ma * sy) / det];
      const pat = ([x, y]) => [0, 1, 2].map((i) => x * dirs.row[i] + y * dirs.col[i]);
      set('right', orientationLabel(pat(imgDir(1, 0))));
      set('left', orientationLabel(pat(imgDir(-1, 0))));
      set('bottom', orientationLabel(pat(imgDir(0, 1))));
      set('top', orientationLabel(pat(imgDir(0, -1))));
    } else for (const k of Object.keys(this.mk)) set(k, '');
    const dpr = dprOf();
    a.lineWidth = 1.5 * dpr;
    a.font = `${Math.round(13 * dpr)}px system-ui, sans-serif`;
    const id = this.src.imageId ? this.src.imageId() : '';
    const texts = [];
    let sel = '';
    for (const m of this.measures) {
      if (m.imageId !== id) continue;
      const t = drawMeasure(this, a, m, m === this.draft ? this.hover : null,
        { selected: m === this.selected, hot: m === this.hot || m === this.editing?.m });
      if (complete(m) && m !== this.draft) {
        if (m === this.selected) sel = String(texts.length);
        texts.push(t);
      }
    }
    this.host.dataset.measures = texts.join(';');
    this.host.dataset.selected = sel; // index of the selected measurement in data-measures
    if (this.src.drawExtra) this.src.drawExtra(this, a);
  }

  // ---------------------------------------------------------------- measurements

  // A press with a measurement tool: a new measurement, or the next point of an angle.
  measureDown(kind, p) {
    const d = this.draft;
    const id = this.src.imageId ? this.src.imageId() : '';
    if (d && d.type === 'angle' && kind === 'angle' && d.imageId === id) {
      d.pts.push(p);
      this.drawOverlay();
      return;
    }
    this.cancelDraft();
    this.select(null);
    this.draft = { type: kind, imageId: id, pts: [p, p], first: true };
    this.measures.push(this.draft);
    this.drawOverlay();
  }

  // The press ends. Length, rectangle, ellipse: done (dropped when empty). Angle: a click places
  // a point, a drag places the first segment; the third point completes it.
  measureUp(moved) {
    const m = this.draft;
    const [a, b] = m.pts;
    if (m.type === 'angle') {
      if (m.first && !moved) m.pts.length = 1; // a click: the first point only
      m.first = false;
      this.hover = null;
      if (m.pts.length === 3) this.finishDraft();
      else this.drawOverlay();
      return;
    }
    const empty = m.type === 'length' ? Math.hypot(a[0] - b[0], a[1] - b[1]) < 1e-6
      : Math.abs(a[0] - b[0]) < 0.5 || Math.abs(a[1] - b[1]) < 0.5;
    if (empty) {
      this.cancelDraft();
      return;
    }
    this.finishDraft();
  }

  finishDraft() {
    const m = this.draft;
    this.draft = null;
    this.hover = null;
    m.done = true;
    delete m.first;
    this.updateStats(m);
    this.drawOverlay();
    this.onChange(this);
  }

  // ROI statistics of m's current points, from the source (modality values of the frame). One
  // request at a time per measurement: points that change meanwhile (an edit) are computed once
  // it has answered, so the label follows a drag and ends with the values of the final points.
  updateStats(m) {
    const src = this.src;
    if ((m.type !== 'rect' && m.type !== 'ellipse') || !src?.roiValues) return;
    if (m.statsBusy) {
      m.statsAgain = true;
      return;
    }
    m.statsBusy = true;
    const pts = m.pts.map((q) => [...q]);
    src.roiValues({ type: m.type, imageId: m.imageId, pts }).then((st) => {
      m.stats = st;
      m.statsPts = pts;
    }, (e) => {
      if (e?.name === 'AbortError') return;
      m.stats = { error: `values: ${e?.message || e}` };
      m.statsPts = pts;
    }).finally(() => {
      m.statsBusy = false;
      if (this.src !== src) return;
      if (m.statsAgain) {
        m.statsAgain = false;
        this.updateStats(m);
      }
      this.drawOverlay();
      if (!m.statsBusy) this.onChange(this);
    });
  }

  // Whether m's statistics are those of its current points (ROIs; true for other measurements).
  statsFinal(m) {
    if (m.type !== 'rect' && m.type !== 'ellipse') return true;
    return !m.statsBusy && !m.statsAgain && !!m.statsPts
      && m.statsPts.every((p, i) => p[0] === m.pts[i][0] && p[1] === m.pts[i][1]);
  }

  cancelDraft() {
    const m = this.draft;
    this.draft = null;
    this.hover = null;
    if (!m) return;
    const i = this.measures.indexOf(m);
    if (i >= 0) this.measures.splice(i, 1);
    this.drawOverlay();
  }

  clearMeasures() {
    this.cancelEdit();
    this.draft = null;
    this.hover = null;
    this.selected = null;
    this.setHot(null);
    this.measures = [];
    this.drawOverlay();
    this.onChange(this);
  }

  // Deletes the measurement being drawn, else the last one of the image shown.
  deleteLast() {
    if (this.draft) {
      this.cancelDraft();
      return;
    }
    this.cancelEdit();
    const id = this.src?.imageId ? this.src.imageId() : '';
    for (let i = this.measures.length - 1; i >= 0; i--) {
      if (this.measures[i].imageId === id) {
        const [m] = this.measures.splice(i, 1);
        if (m === this.selected) this.selected = null;
        if (m === this.hot) this.setHot(null);
        break;
      }
    }
    this.drawOverlay();
    this.onChange(this);
  }

  // ---------------------------------------------------------------- editing measurements

  // The finished measurements of the image shown.
  shownMeasures() {
    const id = this.src?.imageId ? this.src.imageId() : '';
    return this.measures.filter((m) => m.imageId === id && m !== this.draft && complete(m));
  }

  // The selected measurement when it is on the image shown, else null.
  selection() {
    const m = this.selected;
    return m && this.shownMeasures().includes(m) ? m : null;
  }

  select(m) {
    if (this.selected === m) return;
    this.selected = m;
    this.drawOverlay();
    this.onChange(this);
  }

  // Deletes the selected measurement; false when there is none on the image shown.
  deleteSelected() {
    const m = this.selection();
    if (!m) return false;
    if (this.editing?.m === m) this.cancelEdit();
    this.measures.splice(this.measures.indexOf(m), 1);
    this.selected = null;
    if (this.hot === m) this.setHot(null);
    this.drawOverlay();
    this.onChange(this);
    return true;
  }

  // The measurement handle or line under a pointer event, or null; nothing while an angle is
  // being placed (a press places its next point).
  hitAt(e) {
    if (!this.view || !this.src || this.draft) return null;
    const r = this.canvas.getBoundingClientRect();
    const dpr = this.canvas.width / (r.width || 1);
    const radius = (e.pointerType === 'touch' ? 22 : 8) * dpr;
    return hitTest(this, this.shownMeasures(), this.eventCanvas(e), radius);
  }

  // The measurement under the mouse: highlighted, with a move cursor.
  setHot(m) {
    this.host.classList.toggle('edit-hover', !!m);
    if (this.hot === m) return;
    this.hot = m;
    this.drawOverlay();
  }

  beginEdit(hit, p) {
    this.editing = { m: hit.m, handle: hit.handle, orig: hit.m.pts.map((q) => [...q]), start: p, changed: false };
    this.host.classList.add('editing');
    this.selected = hit.m;
    this.drawOverlay();
    this.onChange(this);
  }

  // The pointer of the edit is at p (image coordinates): the handle or the whole measurement
  // moves by the same offset as the pointer since the press.
  editMove(p) {
    const ed = this.editing;
    if (!ed) return;
    const d = [p[0] - ed.start[0], p[1] - ed.start[1]];
    if (ed.handle >= 0) moveHandle(ed.m, ed.orig, ed.handle, d);
    else moveBody(ed.m, ed.orig, d);
    ed.changed = true;
    this.updateStats(ed.m);
    this.drawOverlay();
  }

  // The edit ends: kept, or (a second finger, Esc) the measurement goes back to where it was.
  endEdit(keep = true) {
    const ed = this.editing;
    if (!ed) return;
    this.editing = null;
    this.host.classList.remove('editing');
    if (!keep) ed.m.pts = ed.orig;
    if (ed.changed) this.updateStats(ed.m);
    this.drawOverlay();
    this.onChange(this);
  }

  cancelEdit() {
    this.endEdit(false);
  }

  // ---------------------------------------------------------------- input

  bindInput() {
    const h = this.host;
    const ptrs = new Map(); // pointerId -> {x, y, type}
    let gesture = null;
    let lastTap = 0;
    h.addEventListener('contextmenu', (e) => e.preventDefault());
    h.addEventListener('pointerdown', (e) => {
      if (e.target === this.slider) return;
      this.onActivate(this);
      h.focus({ preventScroll: true });
      if (!this.view) return;
      h.setPointerCapture?.(e.pointerId);
      ptrs.set(e.pointerId, { x: e.clientX, y: e.clientY, type: e.pointerType });
      e.preventDefault();
      if (ptrs.size === 2) {
        // two fingers: pinch zoom and pan
        const [p, q] = [...ptrs.values()];
        gesture = { kind: 'pinch', d: Math.hypot(p.x - q.x, p.y - q.y), mx: (p.x + q.x) / 2, my: (p.y + q.y) / 2 };
        this.cancelDraft();
        this.cancelEdit();
        return;
      }
      if (ptrs.size > 2) return;
      if (e.button === 0 && !e.shiftKey) {
        // a press on a measurement edits it, whatever the tool (see the top of this file)
        const hit = this.hitAt(e);
        if (hit) {
          gesture = { kind: 'edit', x: e.clientX, y: e.clientY, sx: e.clientX, sy: e.clientY, moved: false, t: performance.now() };
          this.beginEdit(hit, this.toImage(...this.eventCanvas(e)));
          return;
        }
        if (this.selected && !this.draft) this.select(null);
      }
      let kind = this.tool();
      if (e.button === 2) kind = 'wl';
      else if (e.button === 1) kind = 'pan';
      else if (this.src.mapTool) kind = this.src.mapTool(kind);
      const measuring = MEASURE_TOOLS.includes(kind);
      if (e.pointerType === 'touch' && !measuring && performance.now() - lastTap < 300) {
        lastTap = 0;
        this.fit();
        gesture = { kind: 'none' };
        return;
      }
      gesture = { kind, x: e.clientX, y: e.clientY, sx: e.clientX, sy: e.clientY, acc: 0, moved: false, t: performance.now() };
      if (measuring) this.measureDown(kind, this.toImage(...this.eventCanvas(e)));
      if (this.src.pointerDown) this.src.pointerDown(this, kind, e);
    });
    h.addEventListener('pointermove', (e) => {
      const p = ptrs.get(e.pointerId);
      if (!p && this.draft && this.view) {
        // a mouse hovering while an angle is being placed: the next point follows it
        this.hover = this.toImage(...this.eventCanvas(e));
        this.drawOverlay();
        return;
      }
      if (!p && e.pointerType === 'mouse' && ptrs.size === 0) {
        // a mouse over a measurement: a move cursor, the measurement highlighted
        this.setHot(this.hitAt(e)?.m || null);
        return;
      }
      if (!p || !gesture) return;
      p.x = e.clientX;
      p.y = e.clientY;
      const dpr = this.canvas.width / (this.canvas.getBoundingClientRect().width || 1);
      if (gesture.kind === 'pinch') {
        if (ptrs.size < 2) return;
        const [a, b] = [...ptrs.values()];
        const d = Math.hypot(a.x - b.x, a.y - b.y);
        const mx = (a.x + b.x) / 2;
        const my = (a.y + b.y) / 2;
        const r = this.canvas.getBoundingClientRect();
        if (gesture.d > 0 && d > 0) this.zoomAt(d / gesture.d, (mx - r.left) * dpr, (my - r.top) * dpr);
        this.panBy((mx - gesture.mx) * dpr, (my - gesture.my) * dpr);
        Object.assign(gesture, { d, mx, my });
        return;
      }
      const dx = e.clientX - gesture.x;
      const dy = e.clientY - gesture.y;
      gesture.x = e.clientX;
      gesture.y = e.clientY;
      if (Math.abs(e.clientX - gesture.sx) + Math.abs(e.clientY - gesture.sy) > 3) gesture.moved = true;
      switch (gesture.kind) {
        case 'pan': this.panBy(dx * dpr, dy * dpr); break;
        case 'zoom': {
          const r = this.canvas.getBoundingClientRect();
          this.zoomAt(Math.exp(-dy / 150), (gesture.sx - r.left) * dpr, (gesture.sy - r.top) * dpr);
          break;
        }
        case 'wl': if (this.src.windowDrag) { this.src.windowDrag(dx, dy); this.touch(); this.refresh(); } break;
        case 'scroll': {
          gesture.acc += dy;
          const stepPx = Math.max(4, Math.min(20, (this.host.clientHeight || 400) / Math.max(this.src.count, 1)));
          while (Math.abs(gesture.acc) >= stepPx) {
            const s = Math.sign(gesture.acc);
            this.step(s);
            gesture.acc -= s * stepPx;
          }
          break;
        }
        case 'edit':
          if (gesture.moved) this.editMove(this.toImage(...this.eventCanvas(e)));
          break;
        case 'length': case 'angle': case 'rect': case 'ellipse':
          if (this.draft) {
            this.draft.pts[this.draft.pts.length - 1] = this.toImage(...this.eventCanvas(e));
            this.drawOverlay();
          }
          break;
        default:
          if (this.src.pointerMove) this.src.pointerMove(this, gesture.kind, e);
      }
    });
    const end = (e) => {
      if (!ptrs.has(e.pointerId)) return;
      ptrs.delete(e.pointerId);
      if (gesture?.kind === 'edit') {
        this.endEdit(e.type !== 'pointercancel');
        lastTap = 0; // a tap on a measurement selects it: not the first of a double tap
        gesture = ptrs.size ? { kind: 'none' } : null;
        return;
      }
      if (gesture && gesture.kind !== 'pinch' && this.src?.pointerUp) this.src.pointerUp(this, gesture, e);
      if (MEASURE_TOOLS.includes(gesture?.kind) && this.draft) this.measureUp(gesture.moved);
      if (e.pointerType === 'touch' && gesture && gesture.kind !== 'pinch' && gesture.kind !== 'none') {
        lastTap = !gesture.moved && performance.now() - gesture.t < 250 ? performance.now() : 0;
      }
      if (ptrs.size === 0) gesture = null;
      else if (gesture?.kind === 'pinch') gesture = { kind: 'none' }; // lift of one finger ends the pinch
    };
    h.addEventListener('pointerup', end);
    h.addEventListener('pointercancel', end);
    h.addEventListener('pointerleave', (e) => { if (e.pointerType === 'mouse' && !ptrs.size) this.setHot(null); });
    h.addEventListener('wheel', (e) => {
      if (!this.view) return;
      e.preventDefault();
      if (e.ctrlKey) {
        const [x, y] = this.eventCanvas(e);
        this.zoomAt(Math.exp(-e.deltaY / 300), x, y);
        return;
      }
      this.wheelAcc = (this.wheelAcc || 0) + (e.deltaMode === 1 ? e.deltaY * 40 : e.deltaY);
      while (Math.abs(this.wheelAcc) >= 50) {
        const s = Math.sign(this.wheelAcc);
        this.step(s);
        this.wheelAcc -= s * 50;
      }
    }, { passive: false });
  }
}
