// Multiplanar reformats over HTTP (.../series/{uid}/volume, .../mpr/rendered, .../mpr/geometry):
// the volume description, reformats that must reproduce stored pixels exactly where a plane runs
// through voxel centres (compared with the instance's own /rendered image, same window), cross
// plane consistency, the real tilted and sagittal series, caching headers and bad requests.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  useServer, client, demo, tempDir, runTessera, assertJsonError, corpusOpts, requireCorpus,
  corpusAvailable, CORPUS_DIR,
} from './harness.mjs';
import { readUids, isPng, decodePng } from './dicom.mjs';

const uidsOf = (file) => readUids(fs.readFileSync(file));
const seriesUrl = (u) => `/dicomweb/studies/${u.study}/series/${u.series}`;
const instUrl = (u, sop) => `${seriesUrl(u)}/instances/${sop}`;
const GE = path.join(CORPUS_DIR, 'series/ct_ge_head_tilt_varspacing');
const MR = path.join(CORPUS_DIR, 'series/mr_siemens_t1_sag_hfs');
const BRMULTI = path.join(CORPUS_DIR, 'multiframe/enhanced_mr_12f__BRMULTI.dcm');

const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];

describe('reformats (MPR)', () => {
  let d;
  const srv = useServer(async () => {
    d = await demo();
    const dataDir = tempDir('tessera-mpr-');
    let r = await runTessera(['import', '--data', dataDir, d.dir]);
    assert.equal(r.code, 0, `import: ${r.stdout}${r.stderr}`);
    if (corpusAvailable()) {
      r = await runTessera(['import', '--data', dataDir, GE, MR, BRMULTI]);
      assert.equal(r.code, 0, `import series: ${r.stdout}${r.stderr}`);
    }
    return { dataDir };
  });

  let c; let ct;
  before(() => {
    c = client(srv);
    ct = uidsOf(d.ct[0]);
  });
  const png = async (p) => {
    const r = await c.get(p, { Accept: 'image/png' });
    assert.equal(r.status, 200, `GET ${p}: ${r.status} ${r.text().slice(0, 300)}`);
    assert.ok(isPng(r.body));
    return { img: decodePng(r.body), headers: r.headers };
  };
  const json = async (p) => {
    const r = await c.get(p);
    assert.equal(r.status, 200, `GET ${p}: ${r.status} ${r.text().slice(0, 300)}`);
    return r.json();
  };
  // Pixel (x, y) of the plane at patient point P: must be a whole pixel.
  const pixelOf = (g, P) => {
    const v = sub(P, g.origin);
    const x = dot(v, g.rowDirection) / g.spacing;
    const y = dot(v, g.columnDirection) / g.spacing;
    assert.ok(Math.abs(x - Math.round(x)) < 1e-6 && Math.abs(y - Math.round(y)) < 1e-6, `P at ${x},${y}`);
    return [Math.round(x), Math.round(y)];
  };
  // Compares the w x h image `src` with the same-size window of `big` at (x0, y0).
  const sameWindow = (big, x0, y0, src, what) => {
    assert.ok(x0 >= 0 && y0 >= 0 && x0 + src.width <= big.width && y0 + src.height <= big.height,
      `${what}: window ${x0},${y0} ${src.width}x${src.height} inside ${big.width}x${big.height}`);
    let diffs = 0; let first = null;
    for (let y = 0; y < src.height; y++) {
      for (let x = 0; x < src.width; x++) {
        const a = big.data[(y0 + y) * big.width + x0 + x];
        const b = src.data[y * src.width + x];
        if (a !== b) { diffs++; if (!first) first = { x, y, got: a, want: b }; }
      }
    }
    assert.equal(diffs, 0, `${what}: ${diffs} pixels differ, first ${JSON.stringify(first)}`);
  };

  test('the volume of the demo CT: 120 uniform slices in order, every instance once', async () => {
    const v = await json(`${seriesUrl(ct)}/volume`);
    assert.equal(v.slices, 120);
    assert.equal(v.rows, 512);
    assert.equal(v.columns, 512);
    assert.equal(v.uniform, true);
    assert.equal(v.sheared, false);
    assert.equal(v.dropped, 0);
    assert.ok(Math.abs(v.minGap - 2.5) < 1e-6 && Math.abs(v.maxGap - 2.5) < 1e-6, `gaps ${v.minGap} ${v.maxGap}`);
    assert.equal(v.sliceList.length, 120);
    for (let k = 1; k < 120; k++) assert.ok(v.sliceList[k].offset > v.sliceList[k - 1].offset, 'sorted along the normal');
    const sops = new Set(d.ct.map((f) => uidsOf(f).sop));
    assert.deepEqual(new Set(v.sliceList.map((s) => s.sopInstanceUID)), sops);
    assert.ok(v.windows.length >= 1 && v.windows[0].center === 40 && v.windows[0].width === 400);
  });

  test('a plane through slice k in its own orientation is that slice, pixel for pixel', async () => {
    const v = await json(`${seriesUrl(ct)}/volume`);
    for (const k of [0, 37, 119]) {
      const s = v.sliceList[k];
      const q = `plane=oblique&point=${s.position.join(',')}&row=${v.rowDirection.join(',')}&col=${v.columnDirection.join(',')}&spacing=${v.pixelSpacing[1]}&window=40,400`;
      const g = await json(`${seriesUrl(ct)}/mpr/geometry?${q}`);
      const { img: mpr, headers } = await png(`${seriesUrl(ct)}/mpr/rendered?${q}`);
      assert.equal(mpr.width, g.width);
      assert.equal(headers['x-tessera-plane-size'], `${g.width},${g.height}`);
      const { img: own } = await png(`${instUrl(ct, s.sopInstanceUID)}/rendered?window=40,400`);
      const [x0, y0] = pixelOf(g, s.position);
      sameWindow(mpr, x0, y0, own, `slice ${k}`);
    }
  });

  test('a sagittal plane through a voxel column crosses every 7th slice on its voxels', async () => {
    const v = await json(`${seriesUrl(ct)}/volume`);
    const s0 = v.sliceList[0];
    const col = 300; // the voxel column x = x0 + 300 * 0.7
    const P = [s0.position[0] + col * v.pixelSpacing[1], s0.position[1], s0.position[2]];
    // sagittal orientation: row +y (anterior left), col -z (head up); 0.7 mm pixels, so rows hit
    // z0 + 2.5 k exactly when 2.5 k / 0.7 is whole: k = 0, 7, 14, ...
    const q = `plane=oblique&point=${P.join(',')}&row=0,1,0&col=0,0,-1&spacing=0.7&window=40,400`;
    const g = await json(`${seriesUrl(ct)}/mpr/geometry?${q}`);
    const { img: sag } = await png(`${seriesUrl(ct)}/mpr/rendered?${q}`);
    let rows = 0;
    for (let k = 0; k < 120; k += 7) {
      const s = v.sliceList[k];
      const [x0, y0] = pixelOf(g, [P[0], s.position[1], s.position[2]]);
      const { img: ax } = await png(`${instUrl(ct, s.sopInstanceUID)}/rendered?window=40,400`);
      // voxel (col, i) of slice k is sagittal pixel (x0 + i, y0)
      const column = { width: 512, height: 1, data: Buffer.from(Array.from({ length: 512 }, (_, i) => ax.data[i * 512 + col])) };
      sameWindow(sag, x0, y0, column, `slice ${k} in the sagittal`);
      rows++;
    }
    assert.equal(rows, 18);
  });

  test('standard planes, slabs and geometry headers; the ETag revalidates; one volume build', async () => {
    const vstats = async () => (await json('/stats')).caches.find((x) => x.name === 'volumes');
    const v0 = await vstats();
    for (const p of ['axial', 'coronal', 'sagittal']) {
      const r = await c.get(`${seriesUrl(ct)}/mpr/rendered?plane=${p}`);
      assert.equal(r.status, 200, `${p}: ${r.text().slice(0, 200)}`);
      assert.match(r.headers['content-type'], /^image\/jpeg/);
      assert.match(r.headers['x-tessera-window'], /^40,400,LINEAR$/, 'the series default window');
      assert.match(r.headers['x-tessera-plane-origin'], /^-?[\d.e+-]+,-?[\d.e+-]+,-?[\d.e+-]+$/);
      const etag = r.headers.etag;
      assert.match(etag, /^"m[0-9a-f]{16}"$/);
      assert.equal(r.headers['cache-control'], 'private, no-cache');
      const again = await c.get(`${seriesUrl(ct)}/mpr/rendered?plane=${p}`, { 'If-None-Match': etag });
      assert.equal(again.status, 304);
    }
    const v1 = await vstats();
    assert.equal(v1.misses - v0.misses, 0, 'the volume was built by an earlier test and kept');
    assert.ok(v1.hits - v0.hits >= 3, `volume hits ${v1.hits - v0.hits}`);
    assert.ok(v1.bytes >= 512 * 512 * 120 * 2, `the volume is charged to the budget (${v1.bytes} B)`);
    // the demo CT declares 16-bit unsigned values with a -1024 intercept, a range int16 cannot
    // hold, but its values fit: 2-byte voxels, not 4
    assert.ok(v1.bytes < 512 * 512 * 120 * 3, `int16 voxels (${v1.bytes} B)`);
    // a thick MIP is brighter than or equal to the thin plane everywhere (same window, lossless)
    const thin = (await png(`${seriesUrl(ct)}/mpr/rendered?plane=coronal&window=40,400`)).img;
    const mip = (await png(`${seriesUrl(ct)}/mpr/rendered?plane=coronal&slab=20,mip&window=40,400`)).img;
    const minip = (await png(`${seriesUrl(ct)}/mpr/rendered?plane=coronal&slab=20,minip&window=40,400`)).img;
    let up = 0;
    for (let i = 0; i < thin.data.length; i++) {
      assert.ok(mip.data[i] >= thin.data[i] && minip.data[i] <= thin.data[i], `pixel ${i}`);
      up += mip.data[i] > thin.data[i];
    }
    assert.ok(up > 1000, `the slab changes the image (${up} pixels brighter)`);
    const g = await json(`${seriesUrl(ct)}/mpr/geometry?plane=coronal&slab=20,mip`);
    assert.deepEqual(g.slab, { thickness: 20, mode: 'mip' });
    const r0 = (a) => a.map((x) => Math.round(x) + 0); // + 0: no -0
    assert.deepEqual(r0(g.rowDirection), [1, 0, 0], 'coronal: patient left to the right');
    assert.deepEqual(r0(g.columnDirection), [0, 0, -1], 'coronal: head at the top');
    assert.deepEqual(r0(g.normal), [0, 1, 0]);
  });

  test('tiles of a reformat: the pyramid, and level-0 tiles stitched equal the whole plane', async () => {
    const q = 'plane=coronal&slab=8,average';
    const pyr = await json(`${seriesUrl(ct)}/mpr/tiles?${q}`);
    const g = await json(`${seriesUrl(ct)}/mpr/geometry?${q}`);
    assert.equal(pyr.width, g.width);
    assert.equal(pyr.height, g.height);
    assert.equal(pyr.tileSize, 256);
    assert.equal(pyr.levels, 2 + (Math.max(g.width, g.height) > 512 ? 1 : 0));
    assert.match(pyr.template, /\/mpr\/tiles\/\{window\}\/\{quality\}\/\{level\}\/\{col\}\/\{row\}\.\{format\}\?plane=coronal/);
    const { img: whole } = await png(`${seriesUrl(ct)}/mpr/rendered?${q}&window=-600,1500`);
    const T = 256;
    for (let row = 0; row * T < g.height; row++) {
      for (let col = 0; col * T < g.width; col++) {
        const url = `${seriesUrl(ct)}/mpr/tiles/-600,1500/lossless/0/${col}/${row}.png?${q}`;
        const r = await c.get(url);
        assert.equal(r.status, 200, `${url}: ${r.text().slice(0, 200)}`);
        assert.equal(r.headers['x-tessera-quality'], 'lossless');
        const t = decodePng(r.body);
        assert.equal(t.width, Math.min(T, g.width - col * T));
        sameWindow(whole, col * T, row * T, t, `tile ${col},${row}`);
      }
    }
    const lossy = await c.get(`${seriesUrl(ct)}/mpr/tiles/default/70/1/0/0.jpg?${q}`);
    assert.equal(lossy.status, 200);
    assert.equal(lossy.headers['x-tessera-quality'], 'lossy');
    assertJsonError(await c.get(`${seriesUrl(ct)}/mpr/tiles/default/70/0/99/0.jpg?${q}`), 404, 'tile past the grid');
    assertJsonError(await c.get(`${seriesUrl(ct)}/mpr/tiles/default/101/0/0/0.jpg?${q}`), 400, 'bad quality');
  });

  test('bad requests get a clear 4xx', async () => {
    const S = seriesUrl(ct);
    const cases = [
      ['plane=oblique&normal=0,0,0&up=0,1,0', 400, /zero vector/],
      ['plane=oblique&row=1,0,0&col=2,0,0', 400, /parallel/],
      ['plane=oblique&row=1,0', 400, /three numbers/],
      ['plane=oblique', 400, /row and col, or normal and up/],
      ['plane=axial&row=1,0,0', 400, /belong to plane=oblique/],
      ['plane=axial&position=5000', 404, /outside the volume/],
      ['plane=sagittal&slab=100000', 400, /slab too thick/],
      ['plane=coronal&slab=5,max', 400, /slab must be/],
      ['plane=axial&spacing=-1', 400, /spacing/],
      ['plane=axial&spacing=0.0001', 422, /exceeds 4096/],
      ['plane=bogus', 400, /plane must be/],
      ['plane=axial&interpolation=cubic', 400, /interpolation/],
      ['plane=axial&window=40,0', 400, /width/],
    ];
    for (const [q, status, re] of cases) {
      const r = await c.get(`${S}/mpr/rendered?${q}`);
      assertJsonError(r, status, q);
      assert.match(r.json().message, re, q);
    }
    // not volumes: a single CR, a colour cine; a series that does not exist
    const cr = uidsOf(d.cr[0]);
    const us = uidsOf(d.us[0]);
    for (const [u, re] of [[cr, /not a volume/], [us, /colour/]]) {
      const r = await c.get(`${seriesUrl(u)}/mpr/rendered?plane=axial`);
      assertJsonError(r, 422, 'not a volume');
      assert.match(r.json().message, re);
      assertJsonError(await c.get(`${seriesUrl(u)}/volume`), 422, 'volume of a non-volume');
    }
    assertJsonError(await c.get(`/dicomweb/studies/${ct.study}/series/1.2.3.4/volume`), 404, 'unknown series');
    assertJsonError(await c.get(`${S}/mpr/other`), 404, 'unknown mpr resource');
  });

  test('the tilted, unevenly spaced GE head CT: each slice re-sliced in its own plane is that slice', corpusOpts(), async () => {
    requireCorpus();
    const ge = uidsOf(path.join(GE, '01.dcm'));
    const v = await json(`${seriesUrl(ge)}/volume`);
    assert.equal(v.slices, 28);
    assert.equal(v.sheared, true);
    assert.equal(v.uniform, false);
    assert.ok(Math.abs(v.tiltDegrees - 18.5) < 0.1, `tilt ${v.tiltDegrees}`);
    assert.ok(v.minGap < 1.2 && v.maxGap > 6.9, `gaps ${v.minGap}..${v.maxGap}`);
    for (const k of [0, 5, 13, 27]) {
      const s = v.sliceList[k];
      const q = `plane=oblique&point=${s.position.join(',')}&row=${v.rowDirection.join(',')}&col=${v.columnDirection.join(',')}&spacing=${v.pixelSpacing[1]}&window=40,120`;
      const g = await json(`${seriesUrl(ge)}/mpr/geometry?${q}`);
      const { img: mpr } = await png(`${seriesUrl(ge)}/mpr/rendered?${q}`);
      const { img: own } = await png(`${instUrl(ge, s.sopInstanceUID)}/rendered?window=40,120`);
      const [x0, y0] = pixelOf(g, s.position);
      sameWindow(mpr, x0, y0, own, `GE slice ${k}`);
    }
    // a sagittal through the middle exists and has the head's extent
    const { img: sag } = await png(`${seriesUrl(ge)}/mpr/rendered?plane=sagittal&window=40,120`);
    assert.ok(sag.width > 300 && sag.height > 300, `${sag.width}x${sag.height}`);
  });

  test('an enhanced multi-frame MR: slices from per-frame positions and orientations', corpusOpts(), async () => {
    requireCorpus();
    // BRMULTI: 12 frames, 9 axial (several echoes at 4 positions) and 3 coronal
    const u = uidsOf(BRMULTI);
    const v = await json(`${seriesUrl(u)}/volume`);
    assert.equal(v.slices, 4, 'the 4 axial positions');
    assert.equal(v.dropped, 3, 'the coronal frames are another stack');
    assert.equal(v.duplicates, 5, 'further echoes at the same positions');
    assert.deepEqual(v.normal.map((x) => Math.round(x) + 0), [0, 0, 1]);
    assert.equal(v.uniform, true);
    assert.ok(Math.abs(v.minGap - 7.5) < 1e-6, `gap ${v.minGap}`);
    assert.ok(v.sliceList.every((s) => s.sopInstanceUID === u.sop && s.frame >= 1 && s.frame <= 12));
    const r = await c.get(`${seriesUrl(u)}/mpr/rendered?plane=coronal`);
    assert.equal(r.status, 200);
  });

  test('the sagittal MR stack: an axial reformat crosses it, its own planes give its slices back', corpusOpts(), async () => {
    requireCorpus();
    const files = fs.readdirSync(MR).filter((f) => !f.startsWith('.')).map((f) => path.join(MR, f));
    const mr = uidsOf(files[0]);
    const v = await json(`${seriesUrl(mr)}/volume`);
    assert.equal(v.slices, 35);
    assert.equal(v.uniform, true);
    assert.ok(Math.abs(Math.abs(v.normal[0]) - 1) < 1e-3, `normal ${v.normal}`);
    const k = 17;
    const s = v.sliceList[k];
    const q = `plane=oblique&point=${s.position.join(',')}&row=${v.rowDirection.join(',')}&col=${v.columnDirection.join(',')}&spacing=${v.pixelSpacing[1]}&window=300,600`;
    const g = await json(`${seriesUrl(mr)}/mpr/geometry?${q}`);
    const { img: mpr } = await png(`${seriesUrl(mr)}/mpr/rendered?${q}`);
    const { img: own } = await png(`${instUrl(mr, s.sopInstanceUID)}/rendered?window=300,600`);
    const [x0, y0] = pixelOf(g, s.position);
    sameWindow(mpr, x0, y0, own, `MR slice ${k}`);
    const ax = await c.get(`${seriesUrl(mr)}/mpr/rendered?plane=axial`);
    assert.equal(ax.status, 200);
  });
});
