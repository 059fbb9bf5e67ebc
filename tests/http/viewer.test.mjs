// The zero-footprint viewer (web/, served by `tessera serve --web-root`) in Debian's headless
// Chromium driven by playwright-core, against a real server with the demo studies, in a desktop
// viewport and in an emulated phone (touch, 390x844, device scale factor 3): the study list and
// its search, a study's first image, stack scroll, a window/level drag whose pixels equal the
// server's rendering of that window, zoom (pinch on the phone) loading a finer pyramid level,
// a length measurement in mm, an angle on a known geometry, rectangle and ellipse ROIs whose
// area and mean/SD (in HU) are checked against values computed here from the WADO-RS frame bytes
// and metadata, editing (a handle or the whole of a length or an ROI dragged, select and
// delete), the MPR layout (three planes; a click in one moves the others), oblique MPR by
// rotating the crosshair (oblique requests, consistent planes, reset to the standard planes),
// and no console errors. Each profile first meets the login page (the server requires a
// credential) and logs in there as the admin. Share links are in share.test.mjs. Screenshots go to tests/http/artifacts/ (git-ignored; TSR_ARTIFACTS
// overrides).
//
// Needs /usr/bin/chromium (Debian package `chromium`; never downloaded): skips without it,
// fails when CI is set. Override with CHROMIUM_BIN.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ARTIFACTS, browserSuiteOpts as suiteOpts, launchChromium, useViewerServer } from './browser.mjs';

const PROFILES = [
  { name: 'desktop', viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1, hasTouch: false, isMobile: false },
  { name: 'phone', viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, hasTouch: true, isMobile: true },
];

describe('the viewer in Chromium', suiteOpts, () => {
  const { srv, password: adminPasswordOf } = useViewerServer('tessera-viewer-data-');
  const auth = () => (srv.token ? { Authorization: `Bearer ${srv.token}` } : {});

  let browser;
  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    if (browser) await browser.close();
  });

  for (const profile of PROFILES) {
    describe(profile.name, () => {
      let page;
      let cdp;
      const errors = [];
      const requests = [];
      const shot = (name) => page.screenshot({ path: path.join(ARTIFACTS, `viewer-${profile.name}-${name}.png`) });

      before(async () => {
        const ctx = await browser.newContext({
          viewport: profile.viewport, deviceScaleFactor: profile.deviceScaleFactor,
          hasTouch: profile.hasTouch, isMobile: profile.isMobile,
        });
        page = await ctx.newPage();
        cdp = await ctx.newCDPSession(page);
        page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
        page.on('pageerror', (e) => errors.push(`page error: ${e}`));
        page.on('request', (r) => requests.push(r.url()));
        page.on('response', (r) => { if (r.status() >= 400) errors.push(`HTTP ${r.status()} ${r.url()}`); });
        page.on('requestfailed', (r) => {
          // cancelled stale requests are the design; anything else is an error
          if (!/ERR_ABORTED/.test(r.failure()?.errorText || '')) errors.push(`failed: ${r.url()} ${r.failure()?.errorText}`);
        });
        // Without a session the viewer sends the user to the login page, and back after it.
        const password = await adminPasswordOf();
        await page.goto(`${srv.origin}/`);
        await page.waitForURL(/\/login\.html$/, { timeout: 20000 });
        await page.fill('#username', 'admin');
        await page.fill('#password', password);
        if (profile.hasTouch) await page.tap('#login-submit');
        else await page.press('#password', 'Enter');
        await page.waitForURL((u) => u.pathname === '/', { timeout: 20000 });
        await page.waitForSelector('#logout-btn:not([hidden])');
        // the browser logs the 401 of GET /api/me before the login; nothing else may have failed
        const unexpected = errors.filter((e) => !/\/api\/me\b/.test(e) && !/status of 401/.test(e));
        assert.deepEqual(unexpected, [], 'no errors while logging in but the 401 of /api/me');
        errors.length = 0;
      });
      after(async () => {
        if (page) await page.context().close();
      });

      // ------------------------------------------------------------ helpers
      const vpSel = (i = 0) => `#grid > .viewport:nth-child(${i + 1})`;
      const data = (i = 0) => page.$eval(vpSel(i), (e) => ({ ...e.dataset }));
      // The viewport shows the lossless image of its current state and loads nothing.
      const still = (i = 0) => page.waitForSelector(`${vpSel(i)}[data-state="still"]`, { timeout: 20000 });
      const box = async (i = 0) => (await page.$(vpSel(i))).boundingBox();
      const canvasStats = (i = 0) => page.$eval(`${vpSel(i)} canvas.image`, (c) => {
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; let s = 0; let s2 = 0; let h = 0;
        for (let k = 0; k < px.length; k += 4) {
          n++; s += px[k]; s2 += px[k] * px[k];
          h = (h * 31 + px[k]) >>> 0;
        }
        return { w: c.width, h: c.height, mean: s / n, variance: s2 / n - (s / n) ** 2, hash: h };
      });
      const touch = (type, pts) => cdp.send('Input.dispatchTouchEvent', {
        type, touchPoints: pts.map(([x, y], id) => ({ x, y, id, radiusX: 1, radiusY: 1, force: 1 })),
      });
      // A one-finger drag (touch) or a mouse drag with the given button.
      async function drag(x0, y0, x1, y1, { button = 'left', steps = 10 } = {}) {
        if (profile.hasTouch) {
          await touch('touchStart', [[x0, y0]]);
          for (let k = 1; k <= steps; k++) await touch('touchMove', [[x0 + ((x1 - x0) * k) / steps, y0 + ((y1 - y0) * k) / steps]]);
          await touch('touchEnd', []);
        } else {
          await page.mouse.move(x0, y0);
          await page.mouse.down({ button });
          for (let k = 1; k <= steps; k++) await page.mouse.move(x0 + ((x1 - x0) * k) / steps, y0 + ((y1 - y0) * k) / steps);
          await page.mouse.up({ button });
        }
      }
      // A click (mouse) or a tap (touch) at page coordinates.
      async function point(x, y, { shift = false } = {}) {
        if (profile.hasTouch) {
          await touch('touchStart', [[x, y]]);
          await touch('touchEnd', []);
        } else {
          if (shift) await page.keyboard.down('Shift');
          await page.mouse.click(x, y);
          if (shift) await page.keyboard.up('Shift');
        }
      }
      async function tap(sel) {
        if (profile.hasTouch) await page.tap(sel);
        else await page.click(sel);
      }
      async function openStudy(desc) {
        await page.goto(`${srv.origin}/`);
        await page.waitForSelector('#studies tbody tr');
        await tap(`#studies tbody tr:has-text("${desc}") a`);
        await page.waitForSelector(`${vpSel(0)}[data-painted]:not([data-painted="0"])`, { timeout: 20000 });
        await still(0);
      }

      // The modality values (HU) of the frame of a measurement, read here from WADO-RS (the
      // frame's bytes and the instance metadata), and the pyramid that gives image coordinates.
      async function frameTruth({ st, se, imageId }) {
        const [sop, frame] = imageId.split('/');
        const inst = `${srv.origin}/dicomweb/studies/${st}/series/${se}/instances/${sop}`;
        const meta = (await (await fetch(`${inst}/metadata`, { headers: auth() })).json())[0];
        const v = (tag) => meta[tag]?.Value?.[0];
        const rows = v('00280010');
        const cols = v('00280011');
        const slope = Number(v('00281053') ?? 1);
        const icpt = Number(v('00281052') ?? 0);
        const spacing = meta['00280030'].Value.map(Number);
        assert.equal(v('00280100'), 16);
        const fr = await fetch(`${inst}/frames/${frame}`, { headers: { Accept: 'application/octet-stream', ...auth() } });
        assert.equal(fr.headers.get('content-type'), 'application/octet-stream');
        const bytes = Buffer.from(await fr.arrayBuffer());
        assert.equal(bytes.length, rows * cols * 2);
        const hu = (i) => (v('00280103') === 1 ? bytes.readInt16LE(i * 2) : bytes.readUInt16LE(i * 2)) * slope + icpt;
        const pyr = await (await fetch(`${inst}/frames/${frame}/tiles`, { headers: { Accept: 'application/json', ...auth() } })).json();
        return { rows, cols, spacing, hu, pyr };
      }
      // n, mean and SD of the pixels of that frame whose centres lie inside the ROI m ({type, pts}).
      function roiTruth({ rows, cols, hu, pyr }, m) {
        // image coordinates (the pyramid's level 0) -> native pixels; pixel centres inside
        const [a, c] = m.pts.map(([x, y]) => [x * (cols / pyr.width), y * (rows / pyr.height)]);
        const [lx, hx] = [Math.min(a[0], c[0]), Math.max(a[0], c[0])];
        const [ly, hy] = [Math.min(a[1], c[1]), Math.max(a[1], c[1])];
        const [ex, ey, rx, ry] = [(lx + hx) / 2, (ly + hy) / 2, (hx - lx) / 2, (hy - ly) / 2];
        let n = 0; let s = 0; let s2 = 0;
        for (let j = 0; j < rows; j++) {
          for (let i = 0; i < cols; i++) {
            const x = i + 0.5; const y = j + 0.5;
            if (x < lx || x > hx || y < ly || y > hy) continue;
            if (m.type === 'ellipse' && ((x - ex) / rx) ** 2 + ((y - ey) / ry) ** 2 > 1) continue;
            const val = hu(j * cols + i);
            n++; s += val; s2 += val * val;
          }
        }
        const mean = s / n;
        return { n, mean, sd: Math.sqrt(s2 / n - mean * mean) };
      }

      // ------------------------------------------------------------ tests
      test('the study list searches through QIDO-RS, sorts, and opens a study', async () => {
        await page.goto(`${srv.origin}/`);
        await page.waitForSelector('#studies tbody tr');
        assert.equal(await page.$$eval('#studies tbody tr', (r) => r.length), 3);
        // no horizontal page scrolling, on the phone too
        assert.ok(await page.evaluate((w) => window.innerWidth === w && document.documentElement.scrollWidth <= w, profile.viewport.width), 'no horizontal scroll (a phone widens its layout viewport to the content)');
        await page.selectOption('#search select[name=modality]', 'CT');
        await tap('#search button[type=submit]');
        await page.waitForFunction(() => document.querySelectorAll('#studies tbody tr').length === 1);
        assert.ok(requests.some((u) => /\/dicomweb\/studies\?.*ModalitiesInStudy=CT/.test(u)), 'QIDO with ModalitiesInStudy');
        await page.selectOption('#search select[name=modality]', '');
        await page.fill('#search input[name=name]', 'demo');
        await page.fill('#search input[name=accession]', 'DEMOCR0001');
        await tap('#search button[type=submit]');
        // the CT row of the last search is also one row: wait for the answer to this search
        await page.waitForFunction(() => {
          const rows = document.querySelectorAll('#studies tbody tr');
          return rows.length === 1 && rows[0].textContent.includes('DEMOCR0001');
        });
        assert.ok(requests.some((u) => /\/dicomweb\/studies\?.*AccessionNumber=DEMOCR0001/.test(u)), 'QIDO with AccessionNumber');
        await page.fill('#search input[name=accession]', '');
        await page.fill('#search input[name=name]', 'nobody');
        await tap('#search button[type=submit]');
        await page.waitForFunction(() => document.querySelector('#list-status').textContent.includes('No study'));
        await page.fill('#search input[name=name]', '');
        await tap('#search button[type=submit]');
        await page.waitForFunction(() => document.querySelectorAll('#studies tbody tr').length === 3);
        // sorting by patient ID, then by images descending
        await tap('#studies th[data-key=images] button');
        await tap('#studies th[data-key=images] button');
        const imgs = await page.$$eval('#studies tbody tr td:last-child', (t) => t.map((x) => Number(x.textContent)));
        assert.deepEqual(imgs, [...imgs].sort((a, b) => b - a));
        await shot('list');
        await tap('#studies tbody tr:has-text("Tessera demo CT") a');
        await page.waitForSelector(`${vpSel(0)}[data-painted]:not([data-painted="0"])`, { timeout: 20000 });
        await still(0);
        const s = await canvasStats(0);
        assert.ok(s.variance > 100, `first image painted (canvas variance ${s.variance.toFixed(1)})`);
        assert.equal(await page.$$eval('#series .thumb', (t) => t.length), 1, 'one series thumbnail');
        await page.waitForFunction(() => {
          const i = document.querySelector('#series .thumb img');
          return i && i.complete && i.naturalWidth > 0;
        }, null, { timeout: 20000 });
        const ov = await page.textContent(vpSel(0));
        assert.match(ov, /Demo, Phantom/);
        assert.match(ov, /W 400 L 40/);
        assert.match(ov, /Thk 2\.50 mm/);
        // orientation markers of an axial slice seen from the feet
        const mk = await page.$$eval(`${vpSel(0)} .mk`, (m) => m.map((x) => `${x.classList[1]}=${x.textContent}`).sort());
        assert.deepEqual(mk, ['bottom=P', 'left=R', 'right=L', 'top=A']);
        assert.ok(await page.evaluate((w) => window.innerWidth === w && document.documentElement.scrollWidth <= w, profile.viewport.width), 'no horizontal scroll (a phone widens its layout viewport to the content)');
        await shot('study');
      });

      test('scrolling changes the slice (wheel, keys, swipe)', async () => {
        await page.waitForSelector(`${vpSel(0)}[data-count="120"]`);
        const before0 = await canvasStats(0);
        const b = await box(0);
        if (profile.hasTouch) {
          await drag(b.x + b.width / 2, b.y + b.height * 0.3, b.x + b.width / 2, b.y + b.height * 0.7, { steps: 20 });
        } else {
          await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2);
          for (let k = 0; k < 20; k++) await page.mouse.wheel(0, 100);
        }
        await page.waitForFunction((sel) => Number(document.querySelector(sel).dataset.index) >= 10, vpSel(0));
        await still(0);
        const d = await data(0);
        const after0 = await canvasStats(0);
        assert.notEqual(after0.hash, before0.hash, `the image changed with the slice (index ${d.index})`);
        assert.match(await page.textContent(vpSel(0)), new RegExp(`\\(${Number(d.index) + 1}/120\\)`));
        if (!profile.hasTouch) {
          await page.keyboard.press('PageDown');
          await page.waitForFunction(([sel, i]) => Number(document.querySelector(sel).dataset.index) === i, [vpSel(0), Number(d.index) + 10]);
          await page.keyboard.press('ArrowUp');
          await page.waitForFunction(([sel, i]) => Number(document.querySelector(sel).dataset.index) === i, [vpSel(0), Number(d.index) + 9]);
        }
        // the stack moves towards the head: 60 slices of 2.5 mm from -148.75
        await page.evaluate(() => window.tessera.active.setIndex(60));
        await still(0);
        assert.match(await page.textContent(vpSel(0)), /Loc 1\.25 mm/);
        assert.ok(requests.some((u) => /\/tiles\/40,400\/85\/0\/\d\/\d\.jpg$/.test(u)), 'lossy tiles while scrolling');
        assert.ok(requests.some((u) => /\/tiles\/40,400\/lossless\/0\/\d\/\d\.png$/.test(u)), 'lossless tiles when still');
        await shot('scrolled');
      });

      test('a W/L drag changes the pixels exactly as the server renders that window', async () => {
        const b = await box(0);
        if (profile.hasTouch) await tap('[data-tool=wl]');
        await drag(b.x + b.width * 0.3, b.y + b.height * 0.5, b.x + b.width * 0.3 + 80, b.y + b.height * 0.5 - 40, { button: 'right' });
        if (profile.hasTouch) await tap('[data-tool=scroll]');
        await tap('[data-act=actual]');
        await page.waitForFunction(() => window.tessera.active.view.scale === 1);
        await still(0);
        const cmp = await page.evaluate(async () => {
          const vp = window.tessera.active;
          const src = vp.src;
          const w = src.window;
          const im = src.images[src.index];
          const url = `/dicomweb/studies/${src.st}/series/${src.se}/instances/${im.sop}/frames/${im.frame}/rendered?window=${w.center},${w.width}&accept=image/png`;
          const bm = await createImageBitmap(await (await fetch(url)).blob());
          const ref = new OffscreenCanvas(bm.width, bm.height).getContext('2d');
          ref.drawImage(bm, 0, 0);
          const [ox, oy] = vp.toCanvas(0, 0);
          const c = vp.canvas;
          const x0 = Math.max(0, -ox);
          const y0 = Math.max(0, -oy);
          const cw = Math.min(bm.width - x0, c.width - ox - x0);
          const ch = Math.min(bm.height - y0, c.height - oy - y0);
          const a = c.getContext('2d').getImageData(ox + x0, oy + y0, cw, ch).data;
          const r = ref.getImageData(x0, y0, cw, ch).data;
          let max = 0; let diff = 0;
          for (let k = 0; k < a.length; k += 4) {
            const d = Math.abs(a[k] - r[k]);
            if (d > max) max = d;
            if (d > 1) diff++;
          }
          return { window: w, origin: [ox, oy], size: [cw, ch], max, diff, scale: vp.view.scale };
        });
        assert.notDeepEqual(cmp.window, { center: 40, width: 400 }, 'the drag changed the window');
        assert.ok(cmp.window.width > 400 && cmp.window.center < 40, `wider and lower: ${JSON.stringify(cmp.window)}`);
        assert.equal(cmp.scale, 1);
        assert.ok(Number.isInteger(cmp.origin[0]) && Number.isInteger(cmp.origin[1]), `whole-pixel origin ${cmp.origin}`);
        assert.ok(cmp.size[0] >= 256 && cmp.size[1] >= 256, `compared ${cmp.size}`);
        assert.ok(cmp.max <= 1, `canvas vs server rendering at ${JSON.stringify(cmp.window)}: max difference ${cmp.max}`);
        const ov = await page.textContent(vpSel(0));
        assert.match(ov, new RegExp(`W ${cmp.window.width} L ${cmp.window.center}`));
        await shot('window');
      });

      test('a length measurement shows millimetres from the pixel spacing', async () => {
        await tap('[data-tool=length]');
        const b = await box(0);
        const dx = 100;
        await drag(b.x + b.width / 2 - 50, b.y + b.height / 2, b.x + b.width / 2 - 50 + dx, b.y + b.height / 2, { steps: 5 });
        await tap('[data-tool=scroll]');
        const d = await data(0);
        // 1:1 (one image pixel per device pixel), demo CT pixel spacing 0.7 mm
        const expected = ((dx * profile.deviceScaleFactor) * 0.7).toFixed(1);
        assert.equal(d.measures, `${expected} mm`);
        await shot('length');
        await tap('[data-act=clear]');
        assert.equal((await data(0)).measures, '');
      });

      test('an angle measures 90.0° on a right angle and survives zoom and pan', async () => {
        await tap('[data-tool=angle]');
        const b = await box(0);
        const cx = Math.round(b.x + b.width / 2);
        const cy = Math.round(b.y + b.height / 2);
        if (profile.hasTouch) {
          // three taps: end of the first side, vertex, end of the second side
          await point(cx - 60, cy);
          await point(cx, cy);
          await point(cx, cy - 50);
        } else {
          // drag the first side, then click the end of the second
          await drag(cx - 60, cy, cx, cy, { steps: 4 });
          await point(cx, cy - 50);
        }
        await page.waitForFunction((sel) => document.querySelector(sel).dataset.measures !== '', vpSel(0));
        assert.equal((await data(0)).measures, '90.0°');
        if (!profile.hasTouch) {
          // three clicks, 45°
          await point(cx + 40, cy + 60);
          await point(cx - 20, cy + 60);
          await point(cx + 40, cy);
          await page.waitForFunction((sel) => document.querySelector(sel).dataset.measures.includes(';'), vpSel(0));
          assert.equal((await data(0)).measures, '90.0°;45.0°');
        }
        // stored in image coordinates: a zoom and a pan move the drawing, not the values
        const before = await page.evaluate(() => {
          const vp = window.tessera.active;
          return { pts: vp.measures.map((m) => m.pts), canvas: vp.toCanvas(...vp.measures[0].pts[1]) };
        });
        await page.evaluate(() => {
          const vp = window.tessera.active;
          vp.zoomAt(1.6, vp.canvas.width / 3, vp.canvas.height / 3);
          vp.panBy(37, -21);
        });
        const after = await page.evaluate(() => {
          const vp = window.tessera.active;
          return { pts: vp.measures.map((m) => m.pts), canvas: vp.toCanvas(...vp.measures[0].pts[1]), measures: vp.host.dataset.measures };
        });
        assert.deepEqual(after.pts, before.pts);
        assert.notDeepEqual(after.canvas, before.canvas);
        assert.equal(after.measures, profile.hasTouch ? '90.0°' : '90.0°;45.0°');
        await shot('angle');
        if (!profile.hasTouch) {
          await page.keyboard.press('Backspace');
          assert.equal((await data(0)).measures, '90.0°');
          await page.keyboard.press('Delete');
        } else await tap('[data-act=clear]');
        assert.equal((await data(0)).measures, '');
        await tap('[data-tool=scroll]');
        // centred again, at 1:1
        await tap('[data-act=reset]');
        await tap('[data-act=actual]');
        await page.waitForFunction(() => window.tessera.active.view.scale === 1);
        await still(0);
      });

      test('rectangle and ellipse ROIs: area in mm² and mean/SD in HU from the WADO-RS frame', async () => {
        const b = await box(0);
        const cx = Math.round(b.x + b.width / 2);
        const cy = Math.round(b.y + b.height / 2);
        const dpr = profile.deviceScaleFactor;
        const from = requests.length;
        const got = [];
        for (const [tool, x0, y0, w, h] of [['rect', cx - 70, cy - 20, 80, 50], ['ellipse', cx + 5, cy - 45, 60, 90]]) {
          await tap(`[data-tool=${tool}]`);
          await drag(x0, y0, x0 + w, y0 + h, { steps: 6 });
          await page.waitForFunction(([sel, n]) => {
            const m = document.querySelector(sel).dataset.measures;
            return m.split(';').length === n && /Mean -?\d/.test(m.split(';')[n - 1]);
          }, [vpSel(0), got.length + 1]);
          const m = await page.evaluate(() => {
            const vp = window.tessera.active;
            const x = vp.measures[vp.measures.length - 1];
            return { type: x.type, pts: x.pts, imageId: x.imageId, stats: x.stats, st: vp.src.st, se: vp.src.se };
          });
          got.push({ ...m, w, h });
        }
        await tap('[data-tool=scroll]');
        const labels = (await data(0)).measures.split(';');
        assert.ok(requests.slice(from).some((u) => /\/instances\/[\d.]+\/frames\/\d+$/.test(u)), 'the WADO-RS frame was fetched');

        // The values, computed here from the same frame and its metadata.
        const f = await frameTruth(got[0]);
        const { spacing } = f;
        for (const [k, m] of got.entries()) {
          const { n, mean, sd } = roiTruth(f, m);
          assert.ok(n > 100, `${m.type}: ${n} pixels`);
          assert.equal(m.stats.n, n, `${m.type}: pixel count`);
          assert.ok(Math.abs(m.stats.mean - mean) < 1e-6, `${m.type}: mean ${m.stats.mean} vs ${mean}`);
          assert.ok(Math.abs(m.stats.sd - sd) < 1e-6, `${m.type}: SD ${m.stats.sd} vs ${sd}`);
          // the drag at 1:1: one image pixel per device pixel
          const dw = Math.abs(m.pts[1][0] - m.pts[0][0]);
          const dh = Math.abs(m.pts[1][1] - m.pts[0][1]);
          assert.ok(Math.abs(dw - m.w * dpr) < 0.01 * m.w * dpr && Math.abs(dh - m.h * dpr) < 0.01 * m.h * dpr,
            `${m.type}: ${dw}x${dh} image pixels for ${m.w}x${m.h} CSS pixels at 1:1`);
          const [wmm, hmm] = [dw * spacing[1], dh * spacing[0]];
          const area = m.type === 'rect' ? wmm * hmm : (Math.PI / 4) * wmm * hmm;
          assert.equal(labels[k], `Area ${area.toFixed(1)} mm² Mean ${mean.toFixed(1)} SD ${sd.toFixed(1)} HU`);
        }
        await shot('roi');
        // measurements follow the image they were drawn on
        await page.evaluate(() => window.tessera.active.setIndex(window.tessera.active.src.index + 1));
        await page.waitForFunction((sel) => document.querySelector(sel).dataset.measures === '', vpSel(0));
        await page.evaluate(() => window.tessera.active.setIndex(window.tessera.active.src.index - 1));
        await page.waitForFunction((sel) => document.querySelector(sel).dataset.measures.split(';').length === 2, vpSel(0));
        await tap('[data-act=clear]');
        assert.equal((await data(0)).measures, '');
      });

      test('measurements are edited: a handle or the whole dragged, values live, select and delete', async () => {
        // still 1:1 (one image pixel per device pixel) on the CT slice of the ROI test
        assert.equal(await page.evaluate(() => window.tessera.active.view.scale), 1);
        const b = await box(0);
        const cx = Math.round(b.x + b.width / 2);
        const cy = Math.round(b.y + b.height / 2);
        const dpr = profile.deviceScaleFactor;
        const mm = (dx, dy) => `${(Math.hypot(dx, dy) * dpr * 0.7).toFixed(1)} mm`; // CSS px -> mm
        const state = () => page.evaluate(() => {
          const vp = window.tessera.active;
          const shown = vp.shownMeasures();
          return {
            ...vp.host.dataset, n: vp.measures.length, hover: vp.host.classList.contains('edit-hover'),
            list: shown.map((m) => ({ type: m.type, pts: m.pts, stats: m.stats, imageId: m.imageId, final: vp.statsFinal(m) })),
            st: vp.src.st, se: vp.src.se, deleteDisabled: document.querySelector('#delete-btn').disabled,
          };
        });
        const waitMeasures = (want) => page.waitForFunction(([sel, w]) => document.querySelector(sel).dataset.measures === w,
          [vpSel(0), want], { timeout: 20000 }).catch(async () => assert.fail(`measures ${JSON.stringify((await data(0)).measures)}, wanted ${JSON.stringify(want)}`));
        // a drag in steps whose label can be read with the pointer still down
        async function press(x, y) {
          if (profile.hasTouch) await touch('touchStart', [[x, y]]);
          else {
            await page.mouse.move(x, y);
            await page.mouse.down();
          }
        }
        async function moveTo(x0, y0, x1, y1, steps = 5) {
          for (let k = 1; k <= steps; k++) {
            const [x, y] = [x0 + ((x1 - x0) * k) / steps, y0 + ((y1 - y0) * k) / steps];
            if (profile.hasTouch) await touch('touchMove', [[x, y]]);
            else await page.mouse.move(x, y);
          }
        }
        const release = () => (profile.hasTouch ? touch('touchEnd', []) : page.mouse.up());
        const near = (p, q, what) => assert.ok(Math.abs(p[0] - q[0]) < 0.01 && Math.abs(p[1] - q[1]) < 0.01, `${what}: ${p} vs ${q}`);
        const add = (p, dx, dy) => [p[0] + dx * dpr, p[1] + dy * dpr];
        // Chrome drops the click of a tap that stops the fling of a touch drag just made (its
        // tap suppression): a tap on the page title, where a click does nothing, stops it first.
        async function tapUi(sel) {
          if (profile.hasTouch) await page.tap('#title');
          await tap(sel);
          if (sel.startsWith('[data-tool=')) await page.waitForSelector(`${sel}[aria-pressed=true]`, { timeout: 5000 });
        }

        // a length of 100 CSS px
        await tapUi('[data-tool=length]');
        await drag(cx - 50, cy - 30, cx + 50, cy - 30, { steps: 5 });
        await waitMeasures(mm(100, 0));
        const s0 = await state();
        assert.equal(s0.list.length, 1);
        const [p0, p1] = s0.list[0].pts;
        if (!profile.hasTouch) {
          // a move cursor over a handle, none away from it
          await page.mouse.move(cx, cy + 100);
          await page.waitForFunction((sel) => !document.querySelector(sel).classList.contains('edit-hover'), vpSel(0));
          await page.mouse.move(cx + 52, cy - 27);
          await page.waitForFunction((sel) => document.querySelector(sel).classList.contains('edit-hover'), vpSel(0), { timeout: 10000 })
            .catch(() => assert.fail('no move cursor over the handle'));
          assert.equal(await page.$eval(vpSel(0), (e) => getComputedStyle(e).cursor), 'move');
        }
        // the end handle dragged by (40, -30) with the length tool still on: an edit, not a new
        // length; the label follows while the pointer is down
        await press(cx + 50, cy - 30);
        await moveTo(cx + 50, cy - 30, cx + 70, cy - 45);
        await waitMeasures(mm(120, -15));
        await moveTo(cx + 70, cy - 45, cx + 90, cy - 60);
        await release();
        await waitMeasures(mm(140, -30));
        const s1 = await state();
        assert.equal(s1.n, 1, 'no new measurement');
        near(s1.list[0].pts[0], p0, 'the other end stays');
        near(s1.list[0].pts[1], add(p1, 40, -30), 'the end moved by the drag');
        assert.equal(s1.selected, '0', 'an edited measurement is selected');
        // the whole length dragged by its middle by (-30, -20) in the scroll mode: the slice stays
        await tapUi('[data-tool=scroll]');
        await drag(cx + 20, cy - 45, cx - 10, cy - 65, { steps: 6 });
        await page.waitForFunction(([sel, x]) => window.tessera.active.measures[0].pts[0][0] !== x, [vpSel(0), p0[0]]);
        const s2 = await state();
        assert.equal(s2.measures, mm(140, -30), 'the same length');
        assert.equal(s2.index, s1.index, 'no scrolling');
        near(s2.list[0].pts[0], add(p0, -30, -20), 'first end moved');
        near(s2.list[0].pts[1], add(p1, 10, -50), 'second end moved');

        // a rectangle ROI; its lower right corner moved by (24, 16) with the rectangle tool on
        await tapUi('[data-tool=rect]');
        await drag(cx - 70, cy + 10, cx - 10, cy + 50, { steps: 6 });
        await page.waitForFunction((sel) => /;Area .* Mean -?\d/.test(document.querySelector(sel).dataset.measures), vpSel(0), { timeout: 20000 })
          .catch(async () => assert.fail(`no rectangle with values: ${JSON.stringify(await state())}`));
        const r0 = await state();
        assert.equal(r0.list.length, 2);
        const f = await frameTruth({ st: r0.st, se: r0.se, imageId: r0.list[1].imageId });
        const { spacing } = f;
        const label = (m) => {
          const { n, mean, sd } = roiTruth(f, m);
          assert.ok(n > 100, `${n} pixels`);
          assert.equal(m.stats.n, n, 'pixel count');
          assert.ok(Math.abs(m.stats.mean - mean) < 1e-6, `mean ${m.stats.mean} vs ${mean}`);
          assert.ok(Math.abs(m.stats.sd - sd) < 1e-6, `SD ${m.stats.sd} vs ${sd}`);
          const area = Math.abs(m.pts[1][0] - m.pts[0][0]) * spacing[1] * Math.abs(m.pts[1][1] - m.pts[0][1]) * spacing[0];
          return `Area ${area.toFixed(1)} mm² Mean ${mean.toFixed(1)} SD ${sd.toFixed(1)} HU`;
        };
        const before = label(r0.list[1]);
        assert.equal(r0.measures.split(';')[1], before);
        const roiDone = () => page.waitForFunction(() => {
          const vp = window.tessera.active;
          const m = vp.measures[vp.measures.length - 1];
          return vp.statsFinal(m) && /Mean -?\d/.test(vp.host.dataset.measures.split(';')[1]);
        }, null, { timeout: 20000 }).catch(async () => assert.fail(`no values of the moved rectangle: ${JSON.stringify(await state())}`));
        await press(cx - 10, cy + 50);
        await moveTo(cx - 10, cy + 50, cx + 2, cy + 58);
        // live: the values of the points of the moment, the pointer still down
        await page.waitForFunction(([x]) => window.tessera.active.measures[1].pts[1][0] > x, [r0.list[1].pts[1][0] + 11 * dpr]);
        await roiDone();
        const r1 = await state();
        near(r1.list[1].pts[1], add(r0.list[1].pts[1], 12, 8), 'the corner half way');
        assert.equal(r1.measures.split(';')[1], label(r1.list[1]), 'values while dragging');
        await moveTo(cx + 2, cy + 58, cx + 14, cy + 66);
        await release();
        await page.waitForFunction(([x]) => window.tessera.active.measures[1].pts[1][0] > x, [r0.list[1].pts[1][0] + 23 * dpr]);
        await roiDone();
        const r2 = await state();
        assert.equal(r2.n, 2, 'no new rectangle');
        near(r2.list[1].pts[0], r0.list[1].pts[0], 'the opposite corner stays');
        near(r2.list[1].pts[1], add(r0.list[1].pts[1], 24, 16), 'the corner moved by the drag');
        const after = label(r2.list[1]);
        assert.equal(r2.measures, `${mm(140, -30)};${after}`);
        assert.notEqual(after.split(' Mean')[0], before.split(' Mean')[0], 'the area changed');
        assert.notEqual(r2.list[1].stats.mean, r0.list[1].stats.mean, 'the mean changed');
        assert.notEqual(r2.list[1].stats.sd, r0.list[1].stats.sd, 'the SD changed');
        await shot('edit');

        // a tap on empty ground deselects; a tap on the length's line selects it; Delete deletes
        // that one (not the last one)
        await point(cx + 40, cy + 100);
        await page.waitForFunction((sel) => document.querySelector(sel).dataset.selected === '', vpSel(0));
        assert.equal((await state()).deleteDisabled, true, 'nothing to delete');
        await point(cx - 10, cy - 65);
        await page.waitForFunction((sel) => document.querySelector(sel).dataset.selected === '0', vpSel(0));
        const s3 = await state();
        assert.equal(s3.list[0].pts[0][0], s2.list[0].pts[0][0], 'a tap does not move it');
        assert.equal(s3.deleteDisabled, false);
        if (profile.hasTouch) await tapUi('#delete-btn');
        else await page.keyboard.press('Delete');
        await waitMeasures(after);
        const s4 = await state();
        assert.equal(s4.n, 1);
        assert.equal(s4.list[0].type, 'rect');
        assert.equal(s4.selected, '');
        assert.equal(s4.deleteDisabled, true);
        assert.ok(await page.evaluate((w) => window.innerWidth === w && document.documentElement.scrollWidth <= w, profile.viewport.width), 'no horizontal scroll');
        await tapUi('[data-tool=scroll]');
        await tap('[data-act=clear]');
        assert.equal((await data(0)).measures, '');
      });

      test('zooming (pinch on the phone) loads a finer pyramid level', async () => {
        await openStudy('Tessera demo CR');
        const d0 = await data(0);
        assert.ok(Number(d0.level) >= 1, `the radiograph opens on a reduced level (${d0.level})`);
        const from = requests.length;
        const b = await box(0);
        const cx = b.x + b.width / 2;
        const cy = b.y + b.height / 2;
        if (profile.hasTouch) {
          await touch('touchStart', [[cx - 20, cy], [cx + 20, cy]]);
          for (let k = 1; k <= 10; k++) await touch('touchMove', [[cx - 20 - 10 * k, cy], [cx + 20 + 10 * k, cy]]);
          await touch('touchEnd', []);
        } else {
          await page.mouse.move(cx, cy);
          await page.keyboard.down('Control');
          for (let k = 0; k < 5; k++) await page.mouse.wheel(0, -100);
          await page.keyboard.up('Control');
        }
        await page.waitForFunction(([sel, l]) => Number(document.querySelector(sel).dataset.level) < l, [vpSel(0), Number(d0.level)]);
        await still(0);
        const d1 = await data(0);
        const finer = requests.slice(from).filter((u) => new RegExp(`/tiles/[^/]+/lossless/${d1.level}/`).test(u));
        assert.ok(finer.length >= 1, `level ${d1.level} tiles requested`);
        const s = await canvasStats(0);
        assert.ok(s.variance > 10, `zoomed canvas variance ${s.variance}`);
        await shot('zoom');
        if (profile.hasTouch) {
          // double tap fits again
          await touch('touchStart', [[cx, cy]]);
          await touch('touchEnd', []);
          await touch('touchStart', [[cx, cy]]);
          await touch('touchEnd', []);
          await page.waitForFunction(([sel, l]) => Number(document.querySelector(sel).dataset.level) === l, [vpSel(0), Number(d0.level)]);
        }
      });

      test('MPR shows three planes; clicking in one moves the others', async () => {
        await openStudy('Tessera demo CT');
        await tap('[data-layout=mpr]');
        for (const i of [0, 1, 2]) await still(i);
        const planes = await page.$$eval('#grid > .viewport', (v) => v.map((x) => x.dataset.plane));
        assert.deepEqual(planes, ['axial', 'coronal', 'sagittal']);
        for (const i of [0, 1, 2]) {
          const s = await canvasStats(i);
          assert.ok(s.variance > 100, `plane ${planes[i]} painted (variance ${s.variance.toFixed(1)})`);
        }
        const before0 = await Promise.all([0, 1, 2].map(data));
        const b = await box(0);
        // a click left of and above the centre of the axial plane
        const from = requests.length;
        if (profile.hasTouch) {
          await touch('touchStart', [[b.x + b.width * 0.35, b.y + b.height * 0.4]]);
          await touch('touchEnd', []);
        } else {
          await page.mouse.click(b.x + b.width * 0.35, b.y + b.height * 0.4);
        }
        await page.waitForFunction((idx) => [1, 2].every((i) => document.querySelector(`#grid > .viewport:nth-child(${i + 1})`).dataset.index !== idx[i]),
          before0.map((d) => d.index));
        for (const i of [0, 1, 2]) await still(i);
        const after0 = await Promise.all([0, 1, 2].map(data));
        assert.equal(after0[0].index, before0[0].index, 'the axial plane stays');
        const p0 = before0[0].point.split(',').map(Number);
        const p1 = after0[0].point.split(',').map(Number);
        assert.ok(p1[0] < p0[0] - 10 && p1[1] < p0[1] - 10 && p1[2] === p0[2], `point moved right-anterior in the axial plane: ${p0} -> ${p1}`);
        const reqs = requests.slice(from);
        assert.ok(reqs.some((u) => u.includes('plane=coronal') && u.includes(`position=${p1[1]}`)), 'coronal plane at the new y');
        assert.ok(reqs.some((u) => u.includes('plane=sagittal') && u.includes(`position=${p1[0]}`)), 'sagittal plane at the new x');
        // the three share one point
        assert.equal(after0[1].point, after0[0].point);
        assert.equal(after0[2].point, after0[0].point);
        // a MIP slab
        await page.selectOption('#slab', '10');
        for (const i of [0, 1, 2]) await page.waitForFunction((i2) => document.querySelector(`#grid > .viewport:nth-child(${i2 + 1})`).textContent.includes('Slab 10 mm MIP'), i);
        for (const i of [0, 1, 2]) await still(i);
        assert.ok(requests.some((u) => u.includes('slab=10%2Cmip')), 'slab requested');
        await shot('mpr');
      });

      test('rotating the crosshair turns the other planes oblique; a reset restores them', async () => {
        await page.selectOption('#slab', '0');
        for (const i of [0, 1, 2]) await page.waitForFunction((i2) => document.querySelector(`#grid > .viewport:nth-child(${i2 + 1})`).textContent.includes('Thin'), i);
        for (const i of [0, 1, 2]) await still(i);
        const std = await Promise.all([1, 2].map(canvasStats));
        const d0 = await data(0);
        const cb = await (await page.$(`${vpSel(0)} canvas.image`)).boundingBox();
        // the crosshair centre: midway between the two handles of the coronal line
        const hs = d0.handles.split(';').map((h) => h.split(',').map(Number));
        const c = [cb.x + (hs[0][0] + hs[1][0]) / 2, cb.y + (hs[0][1] + hs[1][1]) / 2];
        const R = Math.hypot(hs[0][0] - hs[1][0], hs[0][1] - hs[1][1]) / 2;
        const ang0 = Math.atan2(hs[0][1] - hs[1][1], hs[0][0] - hs[1][0]);
        const turn = (30 * Math.PI) / 180;
        const at = (t) => [c[0] + R * Math.cos(ang0 + t), c[1] + R * Math.sin(ang0 + t)];
        const from = requests.length;
        // phone: drag the handle; desktop: Shift+drag from the same place
        const steps = 8;
        if (profile.hasTouch) {
          await touch('touchStart', [at(0)]);
          for (let k = 1; k <= steps; k++) await touch('touchMove', [at((turn * k) / steps)]);
          await touch('touchEnd', []);
        } else {
          await page.keyboard.down('Shift');
          await page.mouse.move(...at(0));
          await page.mouse.down();
          for (let k = 1; k <= steps; k++) await page.mouse.move(...at((turn * k) / steps));
          await page.mouse.up();
          await page.keyboard.up('Shift');
        }
        await page.waitForFunction(() => [2, 3].every((i) => document.querySelector(`#grid > .viewport:nth-child(${i})`).dataset.oblique === 'true'));
        for (const i of [0, 1, 2]) await still(i);
        const d = await Promise.all([0, 1, 2].map(data));
        assert.equal(d[0].oblique, 'false', 'the plane rotated in stays');
        assert.equal(d[0].point, d0.point, 'a rotation does not move the point');
        assert.ok(d.every((x) => x.point === d0.point), 'the three planes share the point');
        const or = d.map((x) => x.orient.split(';').map((v) => v.split(',').map(Number)));
        const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
        const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
        assert.deepEqual(or[0], [[1, 0, 0], [0, 1, 0]], 'axial unchanged');
        // coronal and sagittal turned 30° about the axial normal (z), from row towards column
        const near = (a, b, tol, what) => assert.ok(a.every((x, i) => Math.abs(x - b[i]) < tol), `${what}: ${a} vs ${b}`);
        const cs = [Math.cos(turn), Math.sin(turn)];
        near(or[1][0], [cs[0], cs[1], 0], 0.02, 'coronal row');
        near(or[1][1], [0, 0, -1], 1e-4, 'coronal column');
        near(or[2][0], [-cs[1], cs[0], 0], 0.02, 'sagittal row');
        // still mutually orthogonal
        const nrm = or.map(([r, col]) => cross(r, col));
        for (const [i, j] of [[0, 1], [0, 2], [1, 2]]) assert.ok(Math.abs(dot(nrm[i], nrm[j])) < 1e-4, `planes ${i} and ${j} orthogonal`);
        // the cross-reference line of the coronal plane in the axial one turned with the drag
        const h1 = (await data(0)).handles.split(';').map((h) => h.split(',').map(Number));
        const lineAng = Math.atan2(h1[0][1] - h1[1][1], h1[0][0] - h1[1][0]);
        let dAng = ((lineAng - ang0) * 180) / Math.PI;
        dAng = ((dAng % 180) + 180) % 180;
        assert.ok(Math.abs(dAng - 30) < 1.5, `coronal line turned ${dAng.toFixed(2)}°`);
        // oblique requests, through the point, with the rotated directions
        const obl = requests.slice(from).filter((u) => u.includes('/mpr/rendered?') && u.includes('plane=oblique'))
          .map((u) => new URL(u).searchParams);
        const P = d0.point.split(',').map(Number);
        for (const [name, o] of [['coronal', or[1]], ['sagittal', or[2]]]) {
          const mine = obl.filter((q) => {
            const row = q.get('row').split(',').map(Number);
            return Math.abs(dot(row, o[0]) - 1) < 1e-4 && q.get('accept') === 'image/png';
          });
          assert.ok(mine.length >= 1, `a lossless oblique ${name} request with row ${o[0]} among ${obl.map((q) => `${q}`).join(' ')}`);
          const q = mine[mine.length - 1];
          const pt = q.get('point').split(',').map(Number);
          const n = cross(q.get('row').split(',').map(Number), q.get('col').split(',').map(Number));
          assert.ok(Math.abs(dot(pt, n) - dot(P, n)) < 0.02, `the oblique ${name} plane passes through the point`);
        }
        const obliq = await Promise.all([1, 2].map(canvasStats));
        for (const k of [0, 1]) {
          assert.notEqual(obliq[k].hash, std[k].hash, `plane ${k + 1} pixels changed`);
          assert.ok(obliq[k].variance > 100, `oblique plane ${k + 1} painted (variance ${obliq[k].variance.toFixed(1)})`);
        }
        assert.match(await page.textContent(vpSel(1)), /Coronal \(oblique\)/);
        await shot('mpr-oblique');
        // back to the standard planes: the standard requests, the same pixels
        const from2 = requests.length;
        if (profile.hasTouch) await tap('[data-act=planes]');
        else await page.keyboard.press('o');
        await page.waitForFunction(() => [1, 2, 3].every((i) => document.querySelector(`#grid > .viewport:nth-child(${i})`).dataset.oblique === 'false'));
        for (const i of [0, 1, 2]) await still(i);
        const after = await Promise.all([1, 2].map(canvasStats));
        assert.equal(after[0].hash, std[0].hash, 'coronal as before');
        assert.equal(after[1].hash, std[1].hash, 'sagittal as before');
        const later = requests.slice(from2).filter((u) => u.includes('/mpr/'));
        assert.ok(!later.some((u) => u.includes('plane=oblique')), 'no oblique request after the reset');
        // what the planes show now (possibly from the viewer's bitmap cache): the standard planes
        const wanted = await page.evaluate(() => window.tessera.viewports.map((v) => v.wanted.items[0].url));
        assert.match(wanted[1], new RegExp(`plane=coronal&position=${P[1]}&`));
        assert.match(wanted[2], new RegExp(`plane=sagittal&position=${P[0]}&`));
      });

      test('an unknown study says so in words; no console errors', async () => {
        assert.deepEqual(errors, [], 'no console errors, failed requests or HTTP errors');
        await page.goto(`${srv.origin}/#/study/1.2.3.4`);
        await page.waitForSelector(`${vpSel(0)}[data-state="error"]`);
        assert.match(await page.textContent(vpSel(0)), /cannot be shown.*(no study|404)/i);
        await shot('error');
        // the browser logs the 404 of the unknown study; nothing else
        const unexpected = errors.filter((e) => !e.includes('1.2.3.4') && !/status of 404/.test(e));
        assert.deepEqual(unexpected, [], 'no errors but the 404 of the unknown study');
      });

      test('Log out ends the session and returns to the login page', async () => {
        await page.goto(`${srv.origin}/`);
        await page.waitForSelector('#studies tbody tr');
        await tap('#logout-btn');
        await page.waitForURL(/\/login\.html$/, { timeout: 20000 });
        const me = await page.evaluate(async () => (await fetch('/api/me')).status);
        assert.equal(me, 401, 'no session after logging out');
        // the study list needs a login again
        await page.goto(`${srv.origin}/#/study/1.2.3.4`);
        await page.waitForURL(/\/login\.html\?next=%2F%23%2Fstudy%2F1\.2\.3\.4$/, { timeout: 20000 });
        await shot('logged-out');
      });
    });
  }
});
