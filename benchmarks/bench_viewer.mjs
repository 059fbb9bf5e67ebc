#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// bench_viewer.mjs: the zero-footprint viewer (web/) in Debian's headless Chromium against a
// local `tessera serve` with the demo studies. Not a test. Per run (a fresh server, so its caches
// are cold, and a fresh browser context, so the browser cache is empty):
//   - time from navigation (a shared link to the demo CT study) to its first image painted;
//   - bytes transferred until then (Resource Timing transferSize: headers + bodies, page included);
//   - stack-scroll rate through the 120 slices: pass 1 right after opening (server warming up),
//     pass 2 with warm caches; each slice counts once it is on screen (lossy tiles while moving);
//   - the OHIF-style comparison: the series' metadata and the whole series through WADO-RS
//     retrieve (multipart/related DICOM), bytes and download time, in the same browser.
// Prints the median (and min-max) of the runs. The server gets a random admin token
// (TESSERA_ADMIN_TOKEN), which the browser contexts send as a bearer token (extraHTTPHeaders).
//
//   node benchmarks/bench_viewer.mjs [--runs N] [--tessera build/tessera] [--chromium /usr/bin/chromium]
// playwright-core is resolved from tests/http/node_modules (npm ci there first).
import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const RUNS = Number(opt('runs', 5));
const TESSERA = path.resolve(opt('tessera', process.env.TESSERA_BIN || path.join(ROOT, 'build/tessera')));
const CHROMIUM = opt('chromium', process.env.CHROMIUM_BIN || '/usr/bin/chromium');
const require = createRequire(path.join(ROOT, 'tests/http/package.json'));
const { chromium } = require('playwright-core');

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-bench-viewer-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

const TOKEN = crypto.randomBytes(32).toString('base64url');
const AUTH = { Authorization: `Bearer ${TOKEN}` };

function startServer(dataDir) {
  return new Promise((resolve, reject) => {
    const p = spawn(TESSERA, ['serve', '--data', dataDir, '--listen', '127.0.0.1:0', '--web-root', path.join(ROOT, 'web')],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TESSERA_ADMIN_TOKEN: TOKEN } });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
      if (m) resolve({ proc: p, origin: m[1] });
    });
    p.on('exit', (c) => reject(new Error(`tessera serve exited ${c}: ${out}`)));
  });
}
const stop = (s) => new Promise((r) => { s.proc.removeAllListeners('exit'); s.proc.on('exit', r); s.proc.kill('SIGTERM'); });

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  console.error(`demo studies and import into ${work} ...`);
  execFileSync(TESSERA, ['demo', path.join(work, 'demo')], { stdio: 'ignore' });
  const dataDir = path.join(work, 'data');
  execFileSync(TESSERA, ['import', '--data', dataDir, path.join(work, 'demo')], { stdio: 'ignore' });
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const rows = [];
  for (let run = 0; run < RUNS; run++) {
    const srv = await startServer(dataDir);
    const j = await (await fetch(`${srv.origin}/dicomweb/studies?ModalitiesInStudy=CT`, { headers: AUTH })).json();
    const st = j[0]['0020000D'].Value[0];
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1, extraHTTPHeaders: AUTH });
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${srv.origin}/#/study/${st}`);
    await page.waitForFunction(() => performance.getEntriesByName('tessera-first-image').length > 0, null, { timeout: 30000 });
    const first = await page.evaluate(() => {
      const t = performance.getEntriesByName('tessera-first-image')[0].startTime;
      const nav = performance.getEntriesByType('navigation')[0];
      let bytes = nav.transferSize;
      let n = 1;
      for (const r of performance.getEntriesByType('resource')) {
        if (r.responseEnd <= t) { bytes += r.transferSize; n++; }
      }
      return { ms: t, bytes, requests: n };
    });
    await page.waitForSelector('#grid > .viewport[data-count="120"]', { timeout: 30000 });
    const scroll = () => page.evaluate(async () => {
      const vp = window.tessera.active;
      const n = vp.src.count;
      vp.setIndex(0);
      await new Promise((res) => { const c = () => (vp.comp?.image === vp.src.imageId() ? res() : requestAnimationFrame(c)); c(); });
      const t0 = performance.now();
      for (let i = 1; i < n; i++) {
        vp.setIndex(i);
        // on screen: checked after each animation frame, where the viewport paints first
        await new Promise((res) => { const c = () => (vp.shownImage === vp.src.imageId() ? res() : requestAnimationFrame(c)); requestAnimationFrame(c); });
      }
      return (n - 1) / ((performance.now() - t0) / 1000);
    });
    const pass1 = await scroll();
    const pass2 = await scroll();
    // OHIF-style: series metadata, then every instance of the series (WADO-RS retrieve), fresh context
    const ohifCtx = await browser.newContext({ extraHTTPHeaders: AUTH });
    const ohif = await ohifCtx.newPage();
    await ohif.goto(`${srv.origin}/favicon.svg`);
    const full = await ohif.evaluate(async (study) => {
      const t0 = performance.now();
      const series = await (await fetch(`/dicomweb/studies/${study}/series`)).json();
      const se = series[0]['0020000E'].Value[0];
      const meta = await (await fetch(`/dicomweb/studies/${study}/series/${se}/metadata`)).arrayBuffer();
      const tMeta = performance.now() - t0;
      const r = await fetch(`/dicomweb/studies/${study}/series/${se}`, { headers: { Accept: 'multipart/related; type="application/dicom"' } });
      const body = await r.arrayBuffer();
      return { metaBytes: meta.byteLength, metaMs: tMeta, bytes: body.byteLength, ms: performance.now() - t0 };
    }, st);
    await ohifCtx.close();
    await ctx.close();
    await stop(srv);
    if (errors.length) console.error('page errors:', errors);
    const row = { firstMs: first.ms, firstKB: first.bytes / 1024, firstReq: first.requests, pass1, pass2,
      ohifMetaKB: full.metaBytes / 1024, ohifMetaMs: full.metaMs, ohifMB: full.bytes / 1048576, ohifMs: full.ms };
    rows.push(row);
    console.error(`run ${run + 1}: ${JSON.stringify(Object.fromEntries(Object.entries(row).map(([k, v]) => [k, +v.toFixed(1)])))}`);
  }
  await browser.close();
  const f = (k, d = 0) => `${median(rows.map((r) => r[k])).toFixed(d)} (${Math.min(...rows.map((r) => r[k])).toFixed(d)}–${Math.max(...rows.map((r) => r[k])).toFixed(d)})`;
  console.log(`\nTessera viewer, demo CT (120 x 512x512), headless Chromium 1280x800, ${RUNS} runs, median (min–max)`);
  console.log(`  navigation -> first image painted     ${f('firstMs')} ms          target < 1000 ms`);
  console.log(`  bytes until the first image           ${f('firstKB', 1)} KB   (${f('firstReq')} requests)  target < 150 KB`);
  console.log(`  stack scroll, pass 1 (server warming) ${f('pass1', 1)} slices/s`);
  console.log(`  stack scroll, pass 2 (warm caches)    ${f('pass2', 1)} slices/s   target >= 30`);
  console.log('OHIF-style full download of the same series (WADO-RS), cold server');
  console.log(`  series metadata                       ${f('ohifMetaKB', 1)} KB in ${f('ohifMetaMs')} ms`);
  console.log(`  metadata + all DICOM instances        ${f('ohifMB', 2)} MB in ${f('ohifMs')} ms`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
