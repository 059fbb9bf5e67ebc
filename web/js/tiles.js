// SPDX-License-Identifier: MIT
// tiles.js: fetching server images (tiles, rendered planes) as ImageBitmaps, with a small shared
// LRU of decoded bitmaps, cancellation (AbortController) and low-priority prefetch.
import { HttpError, apiFetch } from './dicom.js';

// Decoded bitmaps kept: a budget in bytes (RGBA), smaller on small devices.
const MAX_BYTES = ((navigator.deviceMemory || 4) >= 8 ? 256 : 96) << 20;
const bitmaps = new Map(); // url -> {bitmap, meta}
let heldBytes = 0;
const sizeOf = (e) => e.bitmap.width * e.bitmap.height * 4;

export const stats = { requests: 0, bytes: 0, hits: 0, aborted: 0 };

export function cachedImage(url) {
  const e = bitmaps.get(url);
  if (e) {
    bitmaps.delete(url);
    bitmaps.set(url, e);
    stats.hits++;
  }
  return e || null;
}

function put(url, e) {
  bitmaps.set(url, e);
  heldBytes += sizeOf(e);
  while (heldBytes > MAX_BYTES && bitmaps.size > 1) {
    const k = bitmaps.keys().next().value;
    heldBytes -= sizeOf(bitmaps.get(k));
    bitmaps.delete(k);
  }
}

const shared = new Map(); // url -> {promise, ctrls:Set, users}

// Fetches url as {bitmap, meta: headers}; several callers of one URL share one request, which is
// aborted only when every caller's signal has aborted.
export function loadImage(url, { signal, priority = 'high', headers = [] } = {}) {
  const hit = cachedImage(url);
  if (hit) return Promise.resolve(hit);
  let s = shared.get(url);
  if (!s) {
    const ctrl = new AbortController();
    s = { users: 0, ctrl };
    s.promise = (async () => {
      stats.requests++;
      const r = await apiFetch(url, { signal: ctrl.signal, priority });
      if (!r.ok) {
        let msg = `${r.status} ${r.statusText}`;
        try {
          const j = await r.json();
          if (j.message) msg = `${r.status}: ${j.message}`;
        } catch { /* not JSON */ }
        throw new HttpError(url, r.status, msg);
      }
      const meta = {};
      for (const h of headers) meta[h] = r.headers.get(h);
      meta.quality = r.headers.get('X-Tessera-Quality');
      const blob = await r.blob();
      stats.bytes += blob.size;
      const bitmap = await createImageBitmap(blob);
      const e = { bitmap, meta };
      put(url, e);
      return e;
    })();
    s.promise.then(() => shared.delete(url), () => shared.delete(url));
    shared.set(url, s);
  }
  s.users++;
  if (!signal) return s.promise;
  return new Promise((resolve, reject) => {
    let done = false;
    const onAbort = () => {
      if (done) return;
      done = true;
      if (--s.users === 0 && shared.get(url) === s) {
        s.ctrl.abort();
        shared.delete(url);
        stats.aborted++;
      }
      reject(new DOMException('aborted', 'AbortError'));
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    s.promise.then((v) => {
      if (done) return;
      done = true;
      s.users--;
      signal.removeEventListener('abort', onAbort);
      resolve(v);
    }, (e) => {
      if (done) return;
      done = true;
      s.users--;
      signal.removeEventListener('abort', onAbort);
      reject(e);
    });
  });
}

// Prefetch queue: at most four low-priority requests at a time; replace() drops what is queued.
const queue = [];
let running = 0;
export function prefetch(urls) {
  queue.length = 0;
  for (const u of urls) if (!bitmaps.has(u) && !shared.has(u)) queue.push(u);
  pump();
}
function pump() {
  while (running < 4 && queue.length) {
    const u = queue.shift();
    running++;
    loadImage(u, { priority: 'low' }).catch(() => {}).finally(() => {
      running--;
      pump();
    });
  }
}
