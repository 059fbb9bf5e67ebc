// OpenSeadragon against the IIIF Image API, in Debian's Chromium driven by playwright-core:
// the viewer (served from another origin, so CORS is exercised) opens the mammogram's info.json
// (the demo CT without the corpus), loads JPEG tiles from /iiif/3/, draws a non-blank canvas,
// requests deeper levels when zoomed, and the window in the identifier changes the pixels.
// The browser sends the server's admin token (Authorization: Bearer, the browser context's
// extraHTTPHeaders), as an application embedding OpenSeadragon with an API token would.
//
// Needs /usr/bin/chromium (Debian package `chromium`; never downloaded): skips without it,
// fails when CI is set. Override with CHROMIUM_BIN. Writes a screenshot to /tmp/osd.png.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import {
  useServer, demo, tempDir, runTessera, corpusAvailable, CORPUS_DIR,
} from './harness.mjs';
import { browserSuiteOpts as suiteOpts, launchChromium } from './browser.mjs';
import { readUids } from './dicom.mjs';

const MAMMO = path.join(CORPUS_DIR, 'large/mammo_j2k_lossy__MG1_J2KI.dcm');
const SCREENSHOT = process.env.TSR_OSD_SCREENSHOT || '/tmp/osd.png';
const require = createRequire(import.meta.url);

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>tessera osd</title>
<script src="/openseadragon.min.js"></script>
<style>html,body{margin:0;background:#000}#v{width:800px;height:600px;background:#000}</style>
</head><body><div id="v"></div><script>
window.tileEvents = { loaded: 0, failed: [] };
window.openViewer = (infoUrl, w, h) => new Promise((resolve, reject) => {
  if (window.viewer) window.viewer.destroy();
  const div = document.getElementById('v');
  div.innerHTML = '';
  div.style.width = w + 'px';
  div.style.height = h + 'px';
  const v = window.viewer = OpenSeadragon({
    id: 'v', tileSources: infoUrl, drawer: 'canvas', crossOriginPolicy: 'Anonymous',
    showNavigationControl: false, animationTime: 0, blendTime: 0, springStiffness: 100,
  });
  v.addHandler('open-failed', (e) => reject(new Error('open-failed: ' + e.message)));
  v.addHandler('tile-loaded', () => { window.tileEvents.loaded++; });
  v.addHandler('tile-load-failed', (e) => { window.tileEvents.failed.push(String(e.message)); });
  v.addHandler('open', () => resolve(v.drawer.getType ? v.drawer.getType() : 'unknown'));
});
window.fullyLoaded = () => {
  const it = window.viewer && window.viewer.world.getItemAt(0);
  return !!it && it.getFullyLoaded() && !window.viewer.world.needsDraw();
};
// Mean and variance of the luminance over the canvas, and the mean over a centred 21x21 patch.
window.canvasStats = () => {
  const c = window.viewer.drawer.canvas;
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0, s = 0, s2 = 0;
  for (let i = 0; i < px.length; i += 4) {
    const y = 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
    n++; s += y; s2 += y * y;
  }
  const cx = c.width >> 1, cy = c.height >> 1;
  const patch = c.getContext('2d').getImageData(cx - 10, cy - 10, 21, 21).data;
  let cs = 0;
  for (let i = 0; i < patch.length; i += 4) cs += 0.299 * patch[i] + 0.587 * patch[i + 1] + 0.114 * patch[i + 2];
  return { width: c.width, height: c.height, mean: s / n, variance: s2 / n - (s / n) ** 2, center: cs / 441 };
};
</script></body></html>`;

// The scale factor of a IIIF image request: region width / size width.
function scaleOf(url, imgW) {
  const m = /\/iiif\/3\/[^/]+\/([^/]+)\/([^/]+)\/0\/default\.jpg$/.exec(new URL(url).pathname);
  if (!m) return null;
  const rw = m[1] === 'full' ? imgW : Number(m[1].split(',')[2]);
  const sw = Number(m[2].split(',')[0]);
  if (!rw || !sw) return null;
  return rw / sw;
}

describe('OpenSeadragon over IIIF in Chromium', suiteOpts, () => {
  // A static server for the page and OpenSeadragon, on its own origin.
  let staticSrv;
  let pageOrigin;
  before(async () => {
    const osdJs = fs.readFileSync(require.resolve('openseadragon/build/openseadragon/openseadragon.min.js'));
    staticSrv = http.createServer((req, res) => {
      if (req.url === '/' || req.url.startsWith('/?')) {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end(PAGE);
      } else if (req.url === '/openseadragon.min.js') {
        res.writeHead(200, { 'Content-Type': 'text/javascript' });
        res.end(osdJs);
      } else if (req.url === '/favicon.ico') {
        res.writeHead(204);
        res.end();
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise((r) => staticSrv.listen(0, '127.0.0.1', r));
    pageOrigin = `http://127.0.0.1:${staticSrv.address().port}`;
  });
  after(() => new Promise((r) => (staticSrv ? staticSrv.close(r) : r())));

  let target; // {sop, width, height, name}
  const srv = useServer(async () => {
    const dataDir = tempDir('tessera-osd-data-');
    if (corpusAvailable() && fs.existsSync(MAMMO)) {
      const r = await runTessera(['import', '--data', dataDir, MAMMO]);
      assert.equal(r.code, 0, `import: ${r.stdout}${r.stderr}`);
      target = { sop: readUids(fs.readFileSync(MAMMO)).sop, width: 3064, height: 4664, name: 'mammogram', view: [800, 600] };
    } else {
      const d = await demo();
      const r = await runTessera(['import', '--data', dataDir, path.dirname(d.ct[60])]);
      assert.equal(r.code, 0, `import: ${r.stdout}${r.stderr}`);
      // a small viewer, so that the home view shows level 1 and a zoom needs level 0
      target = { sop: readUids(fs.readFileSync(d.ct[60])).sop, width: 512, height: 512, name: 'demo CT', view: [160, 120] };
    }
    return { dataDir, args: ['--cors-origins', pageOrigin] };
  });

  let browser;
  let page;
  const responses = [];
  const failures = [];
  const consoleErrors = [];
  before(async () => {
    browser = await launchChromium(['--disable-gpu']);
    assert.ok(srv.token, 'the harness gives the server an admin token');
    page = await browser.newPage({
      viewport: { width: 800, height: 600 }, deviceScaleFactor: 1,
      extraHTTPHeaders: { Authorization: `Bearer ${srv.token}` },
    });
    page.on('response', (r) => {
      if (r.url().includes('/iiif/3/')) {
        responses.push({ url: r.url(), status: r.status(), type: r.headers()['content-type'] || '', acao: r.headers()['access-control-allow-origin'] });
      }
    });
    page.on('requestfailed', (r) => failures.push(`${r.url()}: ${r.failure()?.errorText}`));
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    await page.goto(`${pageOrigin}/`);
  });
  after(async () => {
    if (browser) await browser.close();
  });

  const infoUrl = (win) => `${srv.origin}/iiif/3/${target.sop}:1:${win}/info.json`;
  const open = async (win) => {
    const drawer = await page.evaluate(([u, w, h]) => window.openViewer(u, w, h), [infoUrl(win), ...target.view]);
    assert.equal(drawer, 'canvas', 'the canvas drawer (pixels readable)');
    await page.waitForFunction(() => window.fullyLoaded(), null, { timeout: 60000, polling: 100 });
  };
  const imageResponses = (from = 0) => responses.slice(from).filter((r) => !r.url.endsWith('/info.json'));

  test('opens the IIIF info.json, loads JPEG tiles, draws a non-blank canvas', async () => {
    const from = responses.length;
    await open('default'); // the file's window 2047,4095 (the mammogram): texture everywhere
    const info = responses.slice(from).find((r) => r.url.endsWith('/info.json'));
    assert.ok(info, 'info.json fetched');
    assert.equal(info.status, 200);
    assert.equal(info.acao, pageOrigin, 'CORS on info.json');
    const tiles = imageResponses(from);
    assert.ok(tiles.length >= 1, 'tiles requested from /iiif/3/');
    for (const t of tiles) {
      assert.equal(t.status, 200, `${t.url}`);
      assert.match(t.type, /^image\/jpeg/, `${t.url}`);
      assert.equal(t.acao, pageOrigin, `CORS on ${t.url}`);
      assert.ok(t.url.startsWith(`${srv.origin}/iiif/3/${target.sop}:1:default/`), t.url);
    }
    const ev = await page.evaluate(() => window.tileEvents);
    assert.ok(ev.loaded >= tiles.length, `tile-loaded events ${ev.loaded} for ${tiles.length} tiles`);
    assert.deepEqual(ev.failed, []);
    const s = await page.evaluate(() => window.canvasStats());
    await page.screenshot({ path: SCREENSHOT });
    assert.deepEqual([s.width, s.height], target.view, 'canvas size');
    assert.ok(s.variance > 100, `canvas luminance variance ${s.variance.toFixed(1)} (mean ${s.mean.toFixed(1)}): blank?`);
    assert.deepEqual(failures, []);
  });

  test('zooming in requests deeper levels', async (t) => {
    const before0 = imageResponses();
    const coarsest = Math.min(...before0.map((r) => scaleOf(r.url, target.width)).filter((x) => x));
    const from = responses.length;
    const loaded0 = await page.evaluate(() => window.tileEvents.loaded);
    await page.evaluate(() => {
      const vp = window.viewer.viewport;
      vp.zoomTo(vp.getHomeZoom() * 8, null, true);
      vp.applyConstraints(true);
    });
    await page.waitForFunction((n) => window.tileEvents.loaded > n, loaded0, { timeout: 30000 });
    await page.waitForFunction(() => window.fullyLoaded(), null, { timeout: 60000, polling: 100 });
    const deeper = imageResponses(from);
    assert.ok(deeper.length >= 1, 'tiles requested after the zoom');
    for (const t of deeper) {
      assert.equal(t.status, 200, t.url);
      assert.match(t.type, /^image\/jpeg/);
    }
    const finest = Math.min(...deeper.map((r) => scaleOf(r.url, target.width)).filter((x) => x));
    assert.ok(finest < coarsest, `deeper level after zoom: scale factor ${finest} vs ${coarsest} before`);
    const s = await page.evaluate(() => window.canvasStats());
    assert.ok(s.variance > 10, `zoomed canvas variance ${s.variance.toFixed(1)}`);
    t.diagnostic(`scale factors: ${coarsest} before, ${finest} after the zoom; ${deeper.length} tiles`);
    await page.screenshot({ path: SCREENSHOT.replace(/\.png$/, '-zoom.png') });
  });

  test('the window in the identifier changes the drawn pixels', async (t) => {
    await open('40,400');
    const narrow = await page.evaluate(() => window.canvasStats());
    const from = responses.length;
    await open('32768,65536');
    const wide = await page.evaluate(() => window.canvasStats());
    const tiles = imageResponses(from);
    assert.ok(tiles.length >= 1 && tiles.every((t) => t.url.includes(':1:32768,65536/') && t.status === 200),
      'the wide window tiles were fetched with their own identifier');
    // 40,400 saturates the mammogram's (and the CT's soft tissue) to near white; a 65536 wide
    // window centred at 32768 maps the 12-bit data to near black.
    assert.ok(narrow.center - wide.center > 60,
      `centre brightness: window 40,400 ${narrow.center.toFixed(1)} vs 32768,65536 ${wide.center.toFixed(1)}`);
    t.diagnostic(`centre: ${narrow.center.toFixed(1)} (40,400) vs ${wide.center.toFixed(1)} (32768,65536)`);
    assert.ok(narrow.mean > wide.mean, `mean: ${narrow.mean.toFixed(1)} vs ${wide.mean.toFixed(1)}`);
    assert.deepEqual(failures, []);
    assert.deepEqual(consoleErrors, [], 'no console errors in the page');
  });
});
