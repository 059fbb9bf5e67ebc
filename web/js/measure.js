// SPDX-License-Identifier: MIT
// measure.js: measurements kept in image coordinates (so they follow zoom, pan, rotation and
// flips), drawn on the viewport's annotation canvas. A measurement is
// {type: 'length'|'angle'|'rect'|'ellipse', imageId, pts: [[x, y], ...], stats?}; pixel sizes
// come from the source's pixelScale() (mm per image pixel along x and y), ROI values from its
// roiValues() (modality values from the server, see values.js; {unavailable: true} when the
// credential may not read raw frames: the label is then the area alone). A drawn measurement can
// be edited: its handles (a length's ends, an angle's three points, the four corners of a
// rectangle's or an ellipse's box) move one point, its line or outline moves it whole
// (hitTest, moveHandle, moveBody; the viewport runs the gesture).

export const MEASURE_TOOLS = ['length', 'angle', 'rect', 'ellipse'];
const COLOUR = '#ffd24d';
const SELECTED = '#4de1ff';
// corner k of a rectangle or ellipse box: x of pts[i], y of pts[j]
const CORNERS = [[0, 0], [1, 0], [1, 1], [0, 1]];
const isRoi = (m) => m.type === 'rect' || m.type === 'ellipse';

// Angle at b between b->a and b->c, in degrees, measured in mm (pixels may not be square).
export function angleDeg(a, b, c, sx = 1, sy = 1) {
  const u = [(a[0] - b[0]) * sx, (a[1] - b[1]) * sy];
  const v = [(c[0] - b[0]) * sx, (c[1] - b[1]) * sy];
  const nu = Math.hypot(...u);
  const nv = Math.hypot(...v);
  if (!nu || !nv) return NaN;
  const cos = Math.max(-1, Math.min(1, (u[0] * v[0] + u[1] * v[1]) / (nu * nv)));
  return (Math.acos(cos) * 180) / Math.PI;
}

export const complete = (m) => (m.type === 'angle' ? m.pts.length === 3 : m.pts.length === 2);

// The handles of m in image coordinates: its points, or the four corners of an ROI's box.
export function handlesOf(m) {
  if (isRoi(m)) return CORNERS.map(([i, j]) => [m.pts[i][0], m.pts[j][1]]);
  return m.pts;
}

// Handle k dragged by d (image coordinates) from the points orig that m had at the press.
export function moveHandle(m, orig, k, d) {
  const pts = orig.map((p) => [...p]);
  if (isRoi(m)) {
    const [i, j] = CORNERS[k];
    pts[i][0] = orig[i][0] + d[0];
    pts[j][1] = orig[j][1] + d[1];
  } else pts[k] = [orig[k][0] + d[0], orig[k][1] + d[1]];
  m.pts = pts;
}

// The whole of m dragged by d.
export function moveBody(m, orig, d) {
  m.pts = orig.map(([x, y]) => [x + d[0], y + d[1]]);
}

// The drawn lines of m in image coordinates, as polylines (an ellipse as 72 segments).
function outlineOf(m) {
  if (!isRoi(m)) return [m.pts];
  const [a, b] = m.pts;
  if (m.type === 'rect') return [[...handlesOf(m), [a[0], a[1]]]];
  const cx = (a[0] + b[0]) / 2;
  const cy = (a[1] + b[1]) / 2;
  const rx = Math.abs(b[0] - a[0]) / 2;
  const ry = Math.abs(b[1] - a[1]) / 2;
  const pts = [];
  for (let k = 0; k <= 72; k++) {
    const t = (k / 72) * 2 * Math.PI;
    pts.push([cx + rx * Math.cos(t), cy + ry * Math.sin(t)]);
  }
  return [pts];
}

function segDist(p, a, b) {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const l2 = dx * dx + dy * dy;
  const t = l2 ? Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / l2)) : 0;
  return Math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy);
}

// What of the measurements list lies under the canvas point p (device pixels) within r device
// pixels: {m, handle: k} for a handle, {m, handle: -1} for a line or an outline (the body), or
// null. Any handle wins over any body (the nearest one); among bodies the newest measurement.
export function hitTest(vp, list, p, r) {
  let best = null;
  for (const m of list) {
    handlesOf(m).forEach((h, k) => {
      const d = Math.hypot(...vp.toCanvas(...h).map((v, i) => v - p[i]));
      if (d <= r && (!best || d < best.d)) best = { m, handle: k, d };
    });
  }
  if (best) return { m: best.m, handle: best.handle };
  for (let n = list.length - 1; n >= 0; n--) {
    const m = list[n];
    for (const line of outlineOf(m)) {
      const P = line.map((q) => vp.toCanvas(...q));
      for (let k = 1; k < P.length; k++) if (segDist(p, P[k - 1], P[k]) <= r) return { m, handle: -1 };
    }
  }
  return null;
}

// The label's lines.
export function measureLabel(src, m) {
  const sc = src.pixelScale ? src.pixelScale() : null;
  const sx = sc ? sc.x : 1;
  const sy = sc ? sc.y : 1;
  const unit = sc ? 'mm' : 'px';
  const note = sc?.note || '';
  const [a, b, c] = m.pts;
  switch (m.type) {
    case 'length':
      if (src.lengthLabel) return [src.lengthLabel(a, b)];
      return [`${Math.hypot((b[0] - a[0]) * sx, (b[1] - a[1]) * sy).toFixed(1)} ${unit}${note}`];
    case 'angle': {
      if (!c) return [];
      const d = angleDeg(a, b, c, sx, sy);
      return [Number.isFinite(d) ? `${d.toFixed(1)}°` : ''];
    }
    case 'rect':
    case 'ellipse': {
      const w = Math.abs(b[0] - a[0]) * sx;
      const h = Math.abs(b[1] - a[1]) * sy;
      const area = m.type === 'rect' ? w * h : (Math.PI / 4) * w * h;
      const lines = [`Area ${area.toFixed(1)} ${unit}²${note}`];
      const s = m.stats;
      if (!s) { if (src.roiValues && m.done) lines.push('Mean …'); } else if (s.unavailable) { /* area only */ } else if (s.error) lines.push(s.error);
      else if (!s.n) lines.push('no pixel inside');
      else lines.push(`Mean ${s.mean.toFixed(1)} SD ${s.sd.toFixed(1)}${s.unit ? ` ${s.unit}` : ''}`);
      return lines;
    }
    default:
      return [];
  }
}

// Draws m (with an optional floating point for an angle being placed) and returns its label.
// state: {selected, hot} (hot: under the mouse or being edited): another colour for the selected
// one, a thicker line and the box corners of an ROI for either.
export function drawMeasure(vp, ctx, m, hover, state = {}) {
  const dpr = window.devicePixelRatio || 1;
  const P = m.pts.map((p) => vp.toCanvas(...p));
  const colour = state.selected ? SELECTED : COLOUR;
  const lw0 = ctx.lineWidth;
  if (state.selected || state.hot) ctx.lineWidth = lw0 * 1.6;
  ctx.strokeStyle = colour;
  ctx.fillStyle = colour;
  const handle = (p) => {
    if (state.selected) ctx.fillRect(p[0] - 3.5 * dpr, p[1] - 3.5 * dpr, 7 * dpr, 7 * dpr);
    else ctx.strokeRect(p[0] - 3 * dpr, p[1] - 3 * dpr, 6 * dpr, 6 * dpr);
  };
  let anchor = P[0];
  if (m.type === 'length' || m.type === 'angle') {
    const pts = [...P];
    if (m.type === 'angle' && hover && pts.length < 3) pts.push(vp.toCanvas(...hover));
    ctx.beginPath();
    pts.forEach((p, i) => (i ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1])));
    ctx.stroke();
    for (const p of P) handle(p);
    if (m.type === 'angle' && P.length === 3) {
      // a small arc at the vertex
      const a0 = Math.atan2(P[0][1] - P[1][1], P[0][0] - P[1][0]);
      const a1 = Math.atan2(P[2][1] - P[1][1], P[2][0] - P[1][0]);
      let d = a1 - a0;
      while (d > Math.PI) d -= 2 * Math.PI;
      while (d < -Math.PI) d += 2 * Math.PI;
      ctx.beginPath();
      ctx.arc(P[1][0], P[1][1], 14 * dpr, a0, a0 + d, d < 0);
      ctx.stroke();
      anchor = P[1];
    } else anchor = P.reduce((q, p) => (p[0] > q[0] ? p : q), P[0]);
  } else {
    // rect/ellipse: axis-aligned in image coordinates, drawn through the view transform
    const [a, b] = m.pts;
    const corners = [[a[0], a[1]], [b[0], a[1]], [b[0], b[1]], [a[0], b[1]]].map((p) => vp.toCanvas(...p));
    ctx.beginPath();
    if (m.type === 'rect') {
      corners.forEach((p, i) => (i ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1])));
      ctx.closePath();
    } else {
      const c = vp.toCanvas((a[0] + b[0]) / 2, (a[1] + b[1]) / 2);
      const ex = vp.toCanvas(Math.max(a[0], b[0]), (a[1] + b[1]) / 2);
      const ey = vp.toCanvas((a[0] + b[0]) / 2, Math.max(a[1], b[1]));
      const rx = Math.hypot(ex[0] - c[0], ex[1] - c[1]);
      const ry = Math.hypot(ey[0] - c[0], ey[1] - c[1]);
      // rotations are multiples of 90°: the image x axis is horizontal or vertical on screen
      const swapped = Math.abs(ex[0] - c[0]) < Math.abs(ex[1] - c[1]);
      ctx.ellipse(c[0], c[1], swapped ? ry : rx, swapped ? rx : ry, 0, 0, 2 * Math.PI);
    }
    ctx.stroke();
    if (state.selected || state.hot) for (const p of corners) handle(p);
    anchor = corners.reduce((q, p) => (p[0] + p[1] > q[0] + q[1] ? p : q), corners[0]);
  }
  const lines = measureLabel(vp.src, m);
  const lh = 16 * dpr;
  ctx.lineWidth = 3 * dpr; // a dark outline keeps the text legible over bright tissue
  ctx.strokeStyle = '#000';
  lines.forEach((t, i) => {
    const x = Math.max(2 * dpr, Math.min(anchor[0] + 6 * dpr, vp.ann.width - ctx.measureText(t).width - 4 * dpr));
    ctx.strokeText(t, x, anchor[1] + i * lh);
    ctx.fillText(t, x, anchor[1] + i * lh);
  });
  ctx.lineWidth = lw0;
  return lines.filter(Boolean).join(' ');
}
