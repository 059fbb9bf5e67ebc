// Tile pyramids (/frames/{f}/tiles), the IIIF Image API 3.0 (/iiif/3/) and the image caches
// (/stats, /metrics): pyramid arithmetic, seamless stitching, windows, qualities, HTTP caching,
// the IIIF grammar over HTTP, request coalescing and the memory budget.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  useServer, client, demo, tempDir, runTessera, assertJsonError, first, request, startServer,
  corpusAvailable, corpusOpts, requireCorpus, CORPUS_DIR, assertNoSanitizerReport,
} from './harness.mjs';
import { readUids, isJpeg, isPng, pngSize, jpegSize, decodePng } from './dicom.mjs';

const MAMMO = 'large/mammo_j2k_lossy__MG1_J2KI.dcm'; // 3064 columns x 4664 rows, J2K lossy
const mammoPath = () => path.join(CORPUS_DIR, MAMMO);
const haveMammo = () => corpusAvailable() && fs.existsSync(mammoPath());

const uidsOf = (file) => readUids(fs.readFileSync(file));
const frameUrl = (u, f = 1) => `/dicomweb/studies/${u.study}/series/${u.series}/instances/${u.sop}/frames/${f}`;
const tileUrl = (u, { f = 1, win = 'default', q = 'lossless', level, col, row, fmt } = {}) =>
  `${frameUrl(u, f)}/tiles/${win}/${q}/${level}/${col}/${row}.${fmt || (q === 'lossless' ? 'png' : 'jpg')}`;
const iiifId = (u, f = 1, win = 'default') => `${u.sop}:${f}:${win}`;

// Expected pyramid for a W0 x H0 level 0 and a tile side T.
function expectedLevels(w, h, t = 256) {
  const out = [];
  for (let k = 0; ; k++) {
    const lw = Math.ceil(w / 2 ** k);
    const lh = Math.ceil(h / 2 ** k);
    out.push({ w: lw, h: lh });
    if (lw <= t && lh <= t) return out;
  }
}

// Stitches decoded PNG tiles (same channel count) into one image.
function stitch(tiles, width, height, channels) {
  const data = Buffer.alloc(width * height * channels);
  for (const { x, y, img } of tiles) {
    assert.equal(img.channels, channels, 'tile channel count');
    for (let r = 0; r < img.height; r++) {
      img.data.copy(data, ((y + r) * width + x) * channels, r * img.width * channels, (r + 1) * img.width * channels);
    }
  }
  return { width, height, channels, data };
}

function firstDiff(a, b) {
  const n = Math.min(a.data.length, b.data.length);
  let count = 0;
  let at = -1;
  for (let i = 0; i < n; i++) {
    if (a.data[i] !== b.data[i]) {
      if (at < 0) at = i;
      count++;
    }
  }
  if (at < 0) return null;
  const px = Math.floor(at / a.channels);
  return { count, x: px % a.width, y: Math.floor(px / a.width), got: a.data[at], want: b.data[at] };
}

async function getOk(c, p, type) {
  const r = await c.get(p);
  assert.equal(r.status, 200, `GET ${p}: ${r.status} ${r.text().slice(0, 300)}`);
  if (type) assert.match(r.headers['content-type'] || '', type, `content-type of ${p}`);
  return r;
}
async function pngAt(c, p) {
  const r = await getOk(c, p, /^image\/png/);
  assert.ok(isPng(r.body), `PNG signature: ${p}`);
  return decodePng(r.body);
}

// Fetches every lossless tile of a level, stitches them and compares them pixel for pixel with
// the whole level from IIIF (full/{levelW},{levelH}); checks the (clipped) tile sizes on the way.
async function checkSeamless(c, u, level, win, T) {
  const j = (await getOk(c, `${frameUrl(u)}/tiles`, /json/)).json();
  assert.equal(j.tileSize, T);
  const lw = Math.ceil(j.width / 2 ** level);
  const lh = Math.ceil(j.height / 2 ** level);
  const cols = Math.ceil(lw / T);
  const rows = Math.ceil(lh / T);
  const jobs = [];
  for (let row = 0; row < rows; row++) {
    for (let col = 0; col < cols; col++) {
      jobs.push((async () => {
        const img = await pngAt(c, tileUrl(u, { win, level, col, row }));
        assert.equal(img.width, Math.min(T, lw - col * T), `tile ${level}/${col}/${row} width`);
        assert.equal(img.height, Math.min(T, lh - row * T), `tile ${level}/${col}/${row} height`);
        return { x: col * T, y: row * T, img };
      })());
    }
  }
  const tiles = await Promise.all(jobs);
  const whole = await pngAt(c, `/iiif/3/${iiifId(u, 1, win)}/full/${lw},${lh}/0/default.png`);
  assert.equal(whole.width, lw);
  assert.equal(whole.height, lh);
  const st = stitch(tiles, lw, lh, whole.channels);
  const diff = firstDiff(st, whole);
  assert.equal(diff, null, `level ${level} (${lw}x${lh}, window ${win}, tile ${T}): stitched tiles differ from IIIF full/${lw},${lh}: ${JSON.stringify(diff)}`);
}

// Statistics once background prefetch has gone quiet (no new frame decodes for 300 ms).
async function settled(c) {
  let prev = await stats(c);
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 300));
    const cur = await stats(c);
    const m = (s) => s.caches.find((x) => x.name === 'frames').misses;
    if (m(cur) === m(prev)) return cur;
    prev = cur;
  }
  return prev;
}

async function stats(c) {
  const r = await c.get('/stats');
  assert.equal(r.status, 200, `/stats: ${r.status} ${r.text().slice(0, 200)}`);
  assert.match(r.headers['content-type'] || '', /json/);
  const j = r.json();
  const by = Object.fromEntries(j.caches.map((x) => [x.name, x]));
  return { ...j, by };
}
const delta = (a, b, cache, field) => b.by[cache][field] - a.by[cache][field];

describe('tile pyramid, IIIF and caches', () => {
  let d;
  const srv = useServer(async () => {
    d = await demo();
    const dataDir = tempDir('tessera-tiles-data-');
    let r = await runTessera(['import', '--data', dataDir, d.dir]);
    assert.equal(r.code, 0, `import: ${r.stdout}${r.stderr}`);
    if (haveMammo()) {
      r = await runTessera(['import', '--data', dataDir, mammoPath()]);
      assert.equal(r.code, 0, `import mammo: ${r.stdout}${r.stderr}`);
    }
    // prefetch off, so that the cache counters below count only what the requests cause
    return { dataDir, args: ['--prefetch', '0'] };
  });
  let c;
  let ct; let ct2; let ct3; let cr; let us; let mg;
  before(() => {
    c = client(srv);
    ct = uidsOf(d.ct[60]);
    ct2 = uidsOf(d.ct[20]); // untouched until the coalescing test
    ct3 = uidsOf(d.ct[90]); // untouched until the window-reuse test
    cr = uidsOf(d.cr[0]);
    us = uidsOf(d.us[0]);
    if (haveMammo()) mg = uidsOf(mammoPath());
  });

  const getOk = async (p, type, headers = {}) => {
    const r = await c.get(p, headers);
    assert.equal(r.status, 200, `GET ${p}: ${r.status} ${r.text().slice(0, 300)}`);
    if (type) assert.match(r.headers['content-type'] || '', type, `content-type of ${p}`);
    return r;
  };
  const pyramid = async (u, f = 1) => (await getOk(`${frameUrl(u, f)}/tiles`, /json/)).json();
  const pngOf = async (p) => {
    const r = await getOk(p, /^image\/png/);
    assert.ok(isPng(r.body), `PNG signature: ${p}`);
    return decodePng(r.body);
  };

  // ------------------------------------------------------------------ pyramid JSON

  describe('pyramid JSON', () => {
    const check = async (u, w, h, frames) => {
      const j = await pyramid(u);
      assert.equal(j.width, w, 'width');
      assert.equal(j.height, h, 'height');
      assert.equal(j.tileSize, 256);
      assert.equal(j.frames, frames, 'frames');
      const lv = expectedLevels(w, h);
      assert.equal(j.levels, lv.length, `levels for ${w}x${h}`);
      assert.ok(j.template.endsWith(`${frameUrl(u)}/tiles/{window}/{quality}/{level}/{col}/{row}.{format}`), j.template);
      assert.match(j.template, /^http:\/\/127\.0\.0\.1:\d+\//);
      assert.equal(j.iiif, `${srv.origin}/iiif/3/${u.sop}:1:default`);
      // The smallest level fits one tile, the one above it does not.
      const last = lv[lv.length - 1];
      assert.ok(last.w <= 256 && last.h <= 256);
      // Each level's tile grid: the last tile of each row/column exists and has the clipped
      // size, one past it is 404.
      for (let k = 0; k < j.levels; k++) {
        const cols = Math.ceil(lv[k].w / 256);
        const rows = Math.ceil(lv[k].h / 256);
        const r = await getOk(tileUrl(u, { level: k, col: cols - 1, row: rows - 1 }), /^image\/png/);
        assert.deepEqual(
          { w: pngSize(r.body).width, h: pngSize(r.body).height },
          { w: lv[k].w - 256 * (cols - 1), h: lv[k].h - 256 * (rows - 1) },
          `level ${k} last tile size`,
        );
        assertJsonError(await c.get(tileUrl(u, { level: k, col: cols, row: 0 })), 404, `level ${k} col ${cols}`);
        assertJsonError(await c.get(tileUrl(u, { level: k, col: 0, row: rows })), 404, `level ${k} row ${rows}`);
      }
      assertJsonError(await c.get(tileUrl(u, { level: j.levels, col: 0, row: 0 })), 404, `level ${j.levels}`);
      return j;
    };
    test('demo CT 512x512: 2 levels', async () => {
      const j = await check(ct, 512, 512, 1);
      assert.equal(j.levels, 2);
    });
    test('demo CR (sizes not multiples of 256)', async () => {
      const j = await pyramid(cr);
      assert.ok(j.width % 256 !== 0 || j.height % 256 !== 0, `CR ${j.width}x${j.height}`);
      await check(cr, j.width, j.height, 1);
    });
    test('demo US 640x480 multi-frame: 3 levels, frames count', async () => {
      const j = await check(us, 640, 480, (await pyramid(us)).frames);
      assert.equal(j.levels, 3);
      assert.ok(j.frames > 1);
      // a later frame has its own pyramid; one past the last frame is 404
      await getOk(`${frameUrl(us, j.frames)}/tiles`, /json/);
      assertJsonError(await c.get(`${frameUrl(us, j.frames + 1)}/tiles`), 404, 'frame past the end');
      assertJsonError(await c.get(tileUrl(us, { f: j.frames + 1, level: 0, col: 0, row: 0 })), 404, 'tile of a frame past the end');
    });
    test('mammogram 3064x4664: 6 levels', corpusOpts(), async () => {
      requireCorpus();
      const j = await check(mg, 3064, 4664, 1);
      assert.equal(j.levels, 6);
      assert.deepEqual(expectedLevels(3064, 4664).map((l) => `${l.w}x${l.h}`),
        ['3064x4664', '1532x2332', '766x1166', '383x583', '192x292', '96x146']);
    });
  });

  // ------------------------------------------------------------------ seams

  describe('no seams: stitched lossless tiles equal the whole level from IIIF', () => {
    const seamless = (u, level, win = 'default') => checkSeamless(c, u, level, win, 256);
    test('CT levels 0 and 1', async () => {
      await seamless(ct, 0);
      await seamless(ct, 1);
      await seamless(ct, 0, '40,400');
    });
    test('CR levels 0..2 (clipped edge tiles)', async () => {
      for (const k of [0, 1, 2]) await seamless(cr, k);
    });
    test('US (colour) levels 0 and 1', async () => {
      await seamless(us, 0);
      await seamless(us, 1);
    });
    test('mammogram levels 2, 1 and 0', corpusOpts(), async () => {
      requireCorpus();
      await seamless(mg, 2);
      await seamless(mg, 1, '2000,3000');
      await seamless(mg, 0);
    });
  });

  // ------------------------------------------------------------------ windows, qualities

  describe('windows and qualities', () => {
    test('a tile says which window it shows (X-Tessera-Window)', async () => {
      const meta = await c.json(`/dicomweb/studies/${ct.study}/series/${ct.series}/instances/${ct.sop}/metadata`);
      const wc = first(meta[0], '00281050');
      const ww = first(meta[0], '00281051');
      const def = await getOk(tileUrl(ct, { q: 80, level: 1, col: 0, row: 0 }));
      assert.equal(def.headers['x-tessera-window'], `${wc},${ww},LINEAR`);
      const ex = await getOk(tileUrl(ct, { win: '-500,1400,sigmoid', q: 80, level: 1, col: 0, row: 0 }));
      assert.equal(ex.headers['x-tessera-window'], '-500,1400,SIGMOID');
      // again, from the encoded cache: the same header
      const again = await getOk(tileUrl(ct, { win: '-500,1400,sigmoid', q: 80, level: 1, col: 0, row: 0 }));
      assert.equal(again.headers['x-tessera-window'], '-500,1400,SIGMOID');
    });

    test('the window changes the pixels; default equals the explicit file window', async () => {
      const meta = await c.json(`/dicomweb/studies/${ct.study}/series/${ct.series}/instances/${ct.sop}/metadata`);
      const wc = first(meta[0], '00281050');
      const ww = first(meta[0], '00281051');
      assert.ok(wc != null && ww != null, 'the demo CT carries a window');
      const def = await pngOf(tileUrl(ct, { level: 0, col: 0, row: 1 }));
      const expl = await pngOf(tileUrl(ct, { win: `${wc},${ww}`, level: 0, col: 0, row: 1 }));
      assert.equal(firstDiff(def, expl), null, `default window vs explicit ${wc},${ww}`);
      const other = await pngOf(tileUrl(ct, { win: `${wc + 300},${ww / 4}`, level: 0, col: 0, row: 1 }));
      assert.ok(firstDiff(def, other)?.count > 1000, 'another window changes many pixels');
      const sig = await pngOf(tileUrl(ct, { win: `${wc},${ww},sigmoid`, level: 0, col: 0, row: 1 }));
      assert.notEqual(firstDiff(def, sig), null, 'sigmoid differs from linear');
      await pngOf(tileUrl(ct, { win: `${wc},${ww},linear-exact`, level: 0, col: 0, row: 1 }));
      // the same through IIIF identifiers
      const a = await pngOf(`/iiif/3/${iiifId(ct)}/0,256,256,256/max/0/default.png`);
      const b = await pngOf(`/iiif/3/${iiifId(ct, 1, `${wc},${ww}`)}/0,256,256,256/max/0/default.png`);
      assert.equal(firstDiff(a, def), null, 'IIIF region equals the tile');
      assert.equal(firstDiff(a, b), null, 'IIIF default vs explicit window');
    });

    test('jpg quality changes the size; X-Tessera-Quality and headers', async () => {
      const t = (q) => tileUrl(ct, { q, level: 0, col: 0, row: 0 });
      const lo = await getOk(t(10), /^image\/jpeg/);
      const hi = await getOk(t(95), /^image\/jpeg/);
      assert.ok(isJpeg(lo.body) && isJpeg(hi.body));
      assert.deepEqual(jpegSize(lo.body).width, 256);
      assert.ok(hi.body.length > lo.body.length * 1.3, `q95 ${hi.body.length} bytes vs q10 ${lo.body.length}`);
      assert.notEqual(lo.headers.etag, hi.headers.etag);
      const png = await getOk(tileUrl(ct, { level: 0, col: 0, row: 0 }), /^image\/png/);
      for (const [r, q] of [[lo, 'lossy'], [hi, 'lossy'], [png, 'lossless']]) {
        assert.equal(r.headers['x-tessera-quality'], q);
        assert.match(r.headers.etag || '', /^"[^"]+"$/, 'strong ETag');
        assert.equal(r.headers['cache-control'], 'private, max-age=31536000, immutable');
      }
      const i1 = await getOk(`/iiif/3/${iiifId(ct)}/full/max/0/default.jpg`, /^image\/jpeg/);
      assert.equal(i1.headers['x-tessera-quality'], 'lossy');
      const i2 = await getOk(`/iiif/3/${iiifId(ct)}/full/max/0/default.png`, /^image\/png/);
      assert.equal(i2.headers['x-tessera-quality'], 'lossless');
    });

    test('malformed tile requests are 400 JSON', async () => {
      const base = `${frameUrl(ct)}/tiles`;
      for (const p of [
        'default/0/0/0/0.jpg', 'default/101/0/0/0.jpg', 'default/abc/0/0/0.jpg', 'default/lossless/0/0/0.jpg',
        'default/80/0/0/0.png', 'default/80/0/0/0.gif', 'default/80/-1/0/0.jpg', 'default/80/x/0/0.jpg',
        'default/80/0/0/0', 'bogus/80/0/0/0.jpg', '40/80/0/0/0.jpg', '40,0/80/0/0/0.jpg', '40,400,cubic/80/0/0/0.jpg',
        'default/80/0/0/1e1.jpg',
      ]) {
        const r = await c.get(`${base}/${p}`);
        assert.ok([400, 404].includes(r.status), `${p}: ${r.status}`);
        assertJsonError(r, 400, `tiles/${p}`);
      }
    });
  });

  // ------------------------------------------------------------------ HTTP caching

  describe('ETag and 304', () => {
    test('tiles and IIIF answer 304 to If-None-Match; a one-tile IIIF request shares the tile ETag', async () => {
      const t = tileUrl(ct, { q: 80, level: 1, col: 0, row: 0 });
      const r1 = await getOk(t, /^image\/jpeg/);
      const et = r1.headers.etag;
      const r2 = await c.get(t, { 'If-None-Match': et });
      assert.equal(r2.status, 304);
      assert.equal(r2.body.length, 0);
      assert.equal(r2.headers.etag, et);
      assert.equal((await c.get(t, { 'If-None-Match': '"nope"' })).status, 200);
      assert.equal((await c.get(t, { 'If-None-Match': `"nope", ${et}` })).status, 304);

      // level 1 tile 0/0 of a 512x512 image = region 0,0,512,512 scaled to 256x256
      const lossy = await c.get(tileUrl(ct, { q: 80, level: 0, col: 1, row: 1 }));
      const lossyEt = lossy.headers.etag;
      const pc = await pyramid(cr);
      assert.deepEqual([pc.width, pc.height], [1760, 2140], 'the demo CR size the regions below assume');
      for (const [tile, iiif] of [
        [tileUrl(ct, { level: 0, col: 1, row: 1 }), `/iiif/3/${iiifId(ct)}/256,256,256,256/max/0/default.png`],
        [tileUrl(ct, { level: 1, col: 0, row: 0 }), `/iiif/3/${iiifId(ct)}/full/256,/0/default.png`],
        // CR 1760x2140: the bottom-right edge tile is 224x92, as OpenSeadragon asks for it
        [tileUrl(cr, { level: 0, col: 6, row: 8 }), `/iiif/3/${iiifId(cr)}/1536,2048,224,92/224,/0/default.png`],
        [tileUrl(cr, { level: 1, col: 1, row: 1 }), `/iiif/3/${iiifId(cr)}/512,512,512,512/256,/0/default.png`],
        [tileUrl(cr, { level: 1, col: 3, row: 4 }), `/iiif/3/${iiifId(cr)}/1536,2048,224,92/112,/0/default.png`],
      ]) {
        const a = await getOk(tile);
        const b = await getOk(iiif);
        assert.equal(b.headers.etag, a.headers.etag, `${iiif} vs ${tile}`);
        assert.ok(b.body.equals(a.body), `same bytes: ${iiif}`);
        const n = await c.get(iiif, { 'If-None-Match': a.headers.etag });
        assert.equal(n.status, 304, `IIIF 304 with the tile's ETag: ${iiif}`);
        assert.notEqual(a.headers.etag, lossyEt);
      }
      // a non-tile IIIF request: its own ETag, also 304
      const odd = `/iiif/3/${iiifId(ct)}/10,20,300,200/150,/0/gray.jpg`;
      const o1 = await getOk(odd, /^image\/jpeg/);
      assert.equal(jpegSize(o1.body).width, 150);
      assert.equal(jpegSize(o1.body).height, 100);
      assert.match(o1.headers.etag || '', /^"[^"]+"$/);
      assert.equal((await c.get(odd, { 'If-None-Match': o1.headers.etag })).status, 304);
      // info.json
      const info = await getOk(`/iiif/3/${iiifId(ct)}/info.json`, /json/);
      if (info.headers.etag) assert.equal((await c.get(`/iiif/3/${iiifId(ct)}/info.json`, { 'If-None-Match': info.headers.etag })).status, 304);
    });
  });

  // ------------------------------------------------------------------ IIIF

  describe('IIIF Image API 3.0', () => {
    test('info.json', async () => {
      for (const [u, w, h] of [[ct, 512, 512], [cr, null, null]]) {
        const r = await getOk(`/iiif/3/${iiifId(u, 1, '40,400')}/info.json`, /json/);
        const j = r.json();
        assert.equal(j['@context'], 'http://iiif.io/api/image/3/context.json');
        assert.equal(j.id, `${srv.origin}/iiif/3/${u.sop}:1:40,400`);
        assert.equal(j.type, 'ImageService3');
        assert.equal(j.protocol, 'http://iiif.io/api/image');
        assert.equal(j.profile, 'level1');
        const p = await pyramid(u);
        assert.equal(j.width, w ?? p.width);
        assert.equal(j.height, h ?? p.height);
        assert.equal(j.tiles.length, 1);
        assert.equal(j.tiles[0].width, 256);
        assert.deepEqual(j.tiles[0].scaleFactors, Array.from({ length: p.levels }, (_, k) => 2 ** k));
      }
      // the bare identifier redirects to info.json (IIIF 3.0 §2.2) or is at least not a 500
      const bare = await c.get(`/iiif/3/${iiifId(ct)}`);
      assert.ok(bare.status < 500, `bare identifier: ${bare.status}`);
    });

    test('valid requests: region and size arithmetic', async () => {
      const base = `/iiif/3/${iiifId(cr)}`;
      const p = await pyramid(cr);
      const W = p.width;
      const H = p.height;
      const m = Math.min(W, H);
      const cases = [
        ['full/max', W, H],
        ['square/max', m, m],
        ['full/200,', 200, Math.round((H * 200) / W)],
        ['full/,100', Math.round((W * 100) / H), 100],
        ['full/pct:10', Math.round(W / 10), Math.round(H / 10)],
        ['full/!300,300', W >= H ? 300 : Math.round((W * 300) / H), W >= H ? Math.round((H * 300) / W) : 300],
        ['100,200,300,400/max', 300, 400],
        ['100,200,300,400/150,200', 150, 200],
        ['100,200,300,400/^600,', 600, 800],
        ['100,200,300,400/^pct:150', 450, 600],
        [`${W - 10},${H - 20},100,100/max`, 10, 20], // clipped at the image edge
        ['pct:0,0,50,50/max', Math.round(W / 2), Math.round(H / 2)],
      ];
      for (const [rs, w, h] of cases) {
        for (const fmt of ['png', 'jpg']) {
          const r = await getOk(`${base}/${rs}/0/default.${fmt}`, fmt === 'png' ? /^image\/png/ : /^image\/jpeg/);
          const s = fmt === 'png' ? pngSize(r.body) : jpegSize(r.body);
          assert.ok(Math.abs(s.width - w) <= 1 && Math.abs(s.height - h) <= 1, `${rs}.${fmt}: got ${s.width}x${s.height}, want ${w}x${h}`);
        }
      }
      // mirroring and gray are accepted
      await getOk(`${base}/full/100,/!0/default.png`, /^image\/png/);
      await getOk(`${base}/full/100,/0/gray.png`, /^image\/png/);
      // !0 mirrors: the first column of the mirrored image is the last of the plain one
      const a = await pngOf(`/iiif/3/${iiifId(ct)}/0,0,64,64/max/0/default.png`);
      const b = await pngOf(`/iiif/3/${iiifId(ct)}/0,0,64,64/max/!0/default.png`);
      let same = true;
      for (let y = 0; y < 64 && same; y++) {
        for (let x = 0; x < 64; x++) {
          for (let ch = 0; ch < a.channels; ch++) {
            if (a.data[(y * 64 + x) * a.channels + ch] !== b.data[(y * 64 + 63 - x) * b.channels + ch]) { same = false; break; }
          }
        }
      }
      assert.ok(same, '!0 is a horizontal mirror');
    });

    test('bad requests are 400 JSON with a message; unknown identifiers 404', async () => {
      const base = `/iiif/3/${iiifId(ct)}`;
      const bad = [
        'full/max/90/default.jpg', // rotation other than 0 (level 1)
        'full/max/45.5/default.jpg',
        'full/max/0/bitonal.jpg',
        'full/max/0/color2.jpg',
        'full/max/0/default.gif',
        'full/max/0/default.webp',
        'full/max/0/default',
        '600,0,10,10/max/0/default.jpg', // region entirely outside (512x512)
        '0,600,10,10/max/0/default.jpg',
        '0,0,0,10/max/0/default.jpg', // zero width
        '0,0,10/max/0/default.jpg',
        'a,0,10,10/max/0/default.jpg',
        '-1,0,10,10/max/0/default.jpg',
        '0,0,1e2,10/max/0/default.jpg',
        'pct:0,0,0,50/max/0/default.jpg',
        'pct:200,0,10,10/max/0/default.jpg',
        'fulll/max/0/default.jpg',
        '0,0,100,100/200,/0/default.jpg', // larger than the region without ^
        '0,0,100,100/,200/0/default.jpg',
        '0,0,100,100/200,200/0/default.jpg',
        'full/pct:150/0/default.jpg', // pct > 100 without ^
        'full/pct:0/0/default.jpg',
        'full/pct:abc/0/default.jpg',
        'full/0,/0/default.jpg',
        'full/,/0/default.jpg',
        'full/x,/0/default.jpg',
        'full/!100/0/default.jpg',
        'full/max,/0/default.jpg',
        'full/^/0/default.jpg',
        'full/100,100,100/0/default.jpg',
        'full/max/0/default.jpg/extra',
      ];
      for (const p of bad) {
        const r = await c.get(`${base}/${p}`);
        assertJsonError(r, 400, p);
      }
      assertJsonError(await c.get(`/iiif/3/1.2.3.4.5.6.7:1:default/info.json`), 404, 'unknown SOP info.json');
      assertJsonError(await c.get(`/iiif/3/1.2.3.4.5.6.7:1:default/full/max/0/default.jpg`), 404, 'unknown SOP image');
      assertJsonError(await c.get(`/iiif/3/${ct.sop}:2:default/info.json`), 404, 'frame 2 of a single-frame CT');
      assertJsonError(await c.get(`/iiif/3/${ct.sop}:2:default/full/max/0/default.jpg`), 404, 'frame 2 image');
      // an identifier that does not parse names no image: 404 (by design, like an unknown one)
      assertJsonError(await c.get(`/iiif/3/${ct.sop}:0:default/info.json`), 404, 'frame 0');
      assertJsonError(await c.get(`/iiif/3/${ct.sop}:x:default/info.json`), 404, 'frame x');
      assertJsonError(await c.get(`/iiif/3/${ct.sop}:1:40/info.json`), 404, 'window without width');
      assertJsonError(await c.get(`/iiif/3/${ct.sop}/info.json`), 404, 'no frame or window');
      assertJsonError(await c.get(`/iiif/3/${ct.sop}:1:40,400,cubic/full/max/0/default.jpg`), 404, 'unknown window function');
    });
  });

  // ------------------------------------------------------------------ caches

  describe('caches', () => {
    test('16 concurrent first requests: one encode, one decode, the rest coalesced or hits', async () => {
      const t = tileUrl(ct2, { q: 77, level: 0, col: 1, row: 0 });
      const s0 = await settled(c);
      const rs = await Promise.all(Array.from({ length: 16 }, () => c.get(t)));
      const s1 = await stats(c);
      for (const r of rs) assert.equal(r.status, 200);
      assert.equal(new Set(rs.map((r) => r.headers.etag)).size, 1, 'one ETag');
      assert.ok(rs.every((r) => r.body.equals(rs[0].body)), 'identical bodies');
      assert.equal(delta(s0, s1, 'encoded', 'misses'), 1, 'encoded misses');
      assert.equal(delta(s0, s1, 'encoded', 'hits') + delta(s0, s1, 'encoded', 'coalesced'), 15, 'encoded hits+coalesced');
      assert.equal(delta(s0, s1, 'frames', 'misses'), 1, 'exactly one decode');
      assert.equal(delta(s0, s1, 'rendered', 'misses'), 1, 'exactly one render');
      assert.equal(delta(s0, s1, 'handles', 'misses'), 1, 'the file parsed once');
    });

    test('a window change re-uses the decoded frame', async () => {
      await getOk(tileUrl(ct3, { level: 0, col: 0, row: 0 }));
      // the first view also queued its neighbours' decoding at prefetch priority: let it finish
      const s0 = await settled(c);
      await getOk(tileUrl(ct3, { win: '50,350', level: 0, col: 0, row: 0 }));
      await getOk(tileUrl(ct3, { win: '-600,1500', level: 0, col: 0, row: 0 }));
      const s1 = await stats(c);
      assert.equal(delta(s0, s1, 'frames', 'misses'), 0, 'no further decode');
      assert.ok(delta(s0, s1, 'frames', 'hits') >= 2, 'the decoded frame is hit');
      assert.equal(delta(s0, s1, 'rendered', 'misses'), 2, 'one render per window');
      assert.equal(delta(s0, s1, 'encoded', 'misses'), 2);
      // and the same tile again is an encoded hit, nothing else
      const s2 = await stats(c);
      await getOk(tileUrl(ct3, { win: '50,350', level: 0, col: 0, row: 0 }));
      const s3 = await stats(c);
      assert.equal(delta(s2, s3, 'encoded', 'hits'), 1);
      assert.equal(delta(s2, s3, 'encoded', 'misses'), 0);
      assert.equal(delta(s2, s3, 'frames', 'misses') + delta(s2, s3, 'rendered', 'misses'), 0);
    });

    test('the index row of a viewed instance is read once, and a wrong study is still a 404', async () => {
      const u = tileUrl(ct3, { win: '41,401', level: 0, col: 0, row: 0 });
      await getOk(u);
      const s0 = await settled(c);
      await getOk(tileUrl(ct3, { win: '42,402', level: 0, col: 0, row: 0 }));
      await getOk(tileUrl(ct3, { win: '43,403', level: 0, col: 0, row: 0 }));
      const s1 = await stats(c);
      assert.equal(delta(s0, s1, 'instances', 'misses'), 0, 'no index query');
      assert.ok(delta(s0, s1, 'instances', 'hits') >= 2, 'the cached row is used');
      // the cached row must not let a UID through under another study or series
      const bad = u.replace(/\/studies\/[^/]+\//, '/studies/1.2.3.999/');
      assert.notEqual(bad, u);
      const r = await c.get(bad);
      assert.equal(r.status, 404);
      assert.match(r.json().message, /no instance .* of study 1\.2\.3\.999/);
    });

    test('/stats shape and /metrics', async () => {
      const s = await stats(c);
      assert.ok(s.budget_bytes === 512 * 1024 * 1024, `default budget ${s.budget_bytes}`);
      assert.ok(s.used_bytes > 0 && s.used_bytes <= s.budget_bytes);
      assert.deepEqual(s.caches.map((x) => x.name).sort(), ['encoded', 'frames', 'handles', 'instances', 'rendered', 'volumes']);
      const m = await getOk('/metrics', /^text\/plain/);
      const txt = m.text();
      assert.match(txt, /^tessera_cache_budget_bytes 536870912$/m);
      assert.match(txt, /^tessera_cache_used_bytes \d+$/m);
      for (const name of ['instances', 'handles', 'frames', 'rendered', 'encoded', 'volumes']) {
        for (const ctr of ['hits', 'misses', 'coalesced']) {
          assert.match(txt, new RegExp(`^tessera_cache_${ctr}_total\\{cache="${name}"\\} \\d+$`, 'm'), `${ctr} ${name}`);
        }
      }
      assert.match(txt, /^# TYPE tessera_cache_hits_total counter$/m);
      assert.match(txt, /^# TYPE tessera_cache_used_bytes gauge$/m);
    });
  });
});

// A fresh server holding only the mammogram (J2K lossy), so that no earlier request has decoded
// anything: what a zoomed-out level or a thumbnail decodes shows in the frames cache's bytes.
describe('JPEG 2000 reduced decoding', () => {
  const srv = useServer(async () => {
    const dataDir = tempDir('tessera-tiles-j2k-');
    if (haveMammo()) {
      const r = await runTessera(['import', '--data', dataDir, mammoPath()]);
      assert.equal(r.code, 0, `import mammo: ${r.stdout}${r.stderr}`);
    }
    return { dataDir, args: [] };
  });

  test('zoomed-out levels and thumbnails decode only the resolution they show', corpusOpts(), async () => {
    requireCorpus();
    const c = client(srv);
    const mg = uidsOf(mammoPath());
    const full = 3064 * 4664 * 2; // bytes of the full 16-bit frame
    const decoded = async (p) => {
      const s0 = await settled(c);
      await getOk(c, p);
      const s1 = await stats(c);
      return { misses: delta(s0, s1, 'frames', 'misses'), bytes: delta(s0, s1, 'frames', 'bytes') };
    };
    for (const level of [5, 3, 1]) {
      const r = await decoded(tileUrl(mg, { level, col: 0, row: 0 }));
      assert.equal(r.misses, 1, `level ${level}: one decode`);
      assert.ok(r.bytes > 0 && r.bytes < full / 4 ** level + 65536,
        `level ${level}: ${r.bytes} bytes decoded (full frame ${full})`);
    }
    // a 128x128 thumbnail of 3064x4664 (shown at 84x128) is decoded 16 times smaller
    // (192x292): 32 times (96x146) would be smaller than it is shown
    const th = await decoded(`/dicomweb/studies/${mg.study}/series/${mg.series}/instances/${mg.sop}/thumbnail?viewport=128,128`);
    assert.equal(th.misses, 1, 'the thumbnail decodes once');
    assert.ok(th.bytes > 0 && th.bytes < full / 4 ** 4 + 65536, `thumbnail: ${th.bytes} bytes decoded`);
    // level 0 needs the whole frame
    const l0 = await decoded(tileUrl(mg, { level: 0, col: 0, row: 0 }));
    assert.equal(l0.misses, 1);
    assert.ok(l0.bytes >= full, `level 0: ${l0.bytes} bytes`);
  });
});

describe('--cache-mb 8 --tile-size 200', () => {
  let d;
  const srv = useServer(async () => {
    d = await demo();
    const dataDir = tempDir('tessera-tiles-small-');
    let r = await runTessera(['import', '--data', dataDir, d.dir]);
    assert.equal(r.code, 0, `import: ${r.stdout}${r.stderr}`);
    if (haveMammo()) {
      r = await runTessera(['import', '--data', dataDir, mammoPath()]);
      assert.equal(r.code, 0, `import mammo: ${r.stdout}${r.stderr}`);
    }
    return { dataDir, args: ['--cache-mb', '8', '--tile-size', '200'] };
  });

  test('pyramid, info.json and seams follow --tile-size', async () => {
    const c = client(srv);
    const ct = uidsOf(d.ct[5]);
    const cr = uidsOf(d.cr[0]);
    const j = (await getOk(c, `${frameUrl(ct)}/tiles`, /json/)).json();
    assert.equal(j.tileSize, 200);
    assert.equal(j.levels, expectedLevels(512, 512, 200).length); // 512, 256, 128
    assert.equal(j.levels, 3);
    const info = (await getOk(c, `/iiif/3/${iiifId(ct)}/info.json`, /json/)).json();
    assert.equal(info.tiles[0].width, 200);
    assert.deepEqual(info.tiles[0].scaleFactors, [1, 2, 4]);
    for (const k of [0, 1, 2]) await checkSeamless(c, ct, k, '40,400', 200);
    await checkSeamless(c, cr, 1, 'default', 200);
    // a 200-pixel tile and the IIIF request for exactly that region share the cache entry
    const a = await getOk(c, tileUrl(ct, { level: 0, col: 2, row: 1 }));
    const b = await getOk(c, `/iiif/3/${iiifId(ct)}/400,200,112,200/max/0/default.png`);
    assert.equal(b.headers.etag, a.headers.etag);
  });

  test('an image larger than the whole budget is still served', corpusOpts(), async () => {
    requireCorpus();
    const c = client(srv);
    const mg = uidsOf(mammoPath());
    // 3064x4664 rendered is ~14 MB, over the 8 MB budget
    const r = await getOk(c, `/iiif/3/${iiifId(mg)}/full/max/0/default.png`, /^image\/png/);
    assert.deepEqual([pngSize(r.body).width, pngSize(r.body).height], [3064, 4664]);
    const t = await getOk(c, tileUrl(mg, { level: 0, col: 15, row: 23 }), /^image\/png/);
    assert.deepEqual([pngSize(t.body).width, pngSize(t.body).height], [64, 64]);
    const s = await stats(c);
    assert.ok(s.used_bytes <= s.budget_bytes, `used ${s.used_bytes} > budget ${s.budget_bytes}`);
  });

  test('used_bytes never exceeds budget_bytes while many distinct tiles are fetched', async () => {
    const c = client(srv);
    const s0 = await stats(c);
    assert.equal(s0.budget_bytes, 8 * 1024 * 1024);
    let polling = true;
    let maxUsed = 0;
    let polls = 0;
    const over = [];
    const poller = (async () => {
      while (polling) {
        const s = await stats(c);
        polls++;
        maxUsed = Math.max(maxUsed, s.used_bytes);
        if (s.used_bytes > s.budget_bytes) over.push(s.used_bytes);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    // 40 CT slices x 2 windows x 4 tiles (each slice decode is 0.5 MB, each rendered ~0.25 MB)
    const urls = [];
    for (let i = 0; i < 40; i++) {
      const u = readUids(fs.readFileSync(d.ct[i * 3]));
      for (const win of ['default', '40,400']) {
        for (let t = 0; t < 4; t++) urls.push(tileUrl(u, { win, q: 70, level: 0, col: t & 1, row: t >> 1 })); // 200-pixel tiles
      }
    }
    let failed = [];
    for (let i = 0; i < urls.length; i += 8) {
      const rs = await Promise.all(urls.slice(i, i + 8).map((u) => c.get(u)));
      failed = failed.concat(rs.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.text().slice(0, 200)}`));
    }
    polling = false;
    await poller;
    const s1 = await stats(c);
    assert.deepEqual(failed, [], 'every tile served under the small budget');
    assert.deepEqual(over, [], `used_bytes above the budget in ${over.length} of ${polls} polls (max ${maxUsed})`);
    assert.ok(s1.used_bytes <= s1.budget_bytes);
    const evictions = s1.caches.reduce((n, x) => n + x.evictions, 0);
    assert.ok(evictions > 0, 'the load forced evictions');
    assert.ok(polls > 3, `polled ${polls} times`);
  });
});

describe('prefetch of series neighbours', () => {
  let d;
  const srv = useServer(async () => {
    d = await demo();
    const dataDir = tempDir('tessera-prefetch-data-');
    const r = await runTessera(['import', '--data', dataDir, d.dir]);
    assert.equal(r.code, 0, `import: ${r.stdout}${r.stderr}`);
    return { dataDir, args: ['--prefetch', '3'] };
  });

  test('viewing a slice decodes its 3 neighbours on each side in the background', async () => {
    const c = client(srv);
    const u = (f) => {
      const x = readUids(fs.readFileSync(f));
      return `/dicomweb/studies/${x.study}/series/${x.series}/instances/${x.sop}/rendered`;
    };
    const s0 = await settled(c);
    let r = await c.get(u(d.ct[60]), { Accept: 'image/jpeg' });
    assert.equal(r.status, 200);
    const s1 = await settled(c);
    assert.equal(delta(s0, s1, 'frames', 'misses'), 7, 'the viewed slice and 3 + 3 neighbours');
    // scrolling to a neighbour finds it decoded: a frames hit, no new decode of it
    r = await c.get(u(d.ct[61]), { Accept: 'image/jpeg' });
    assert.equal(r.status, 200);
    const s2 = await stats(c);
    assert.ok(delta(s1, s2, 'frames', 'hits') >= 1, 'the neighbour was already decoded');
    // a whole-frame image is cached encoded; its 8-bit pixels are not kept in the rendered pool
    assert.equal(delta(s1, s2, 'encoded', 'misses'), 1);
    assert.equal(delta(s1, s2, 'rendered', 'misses'), 0);
    assert.equal(delta(s1, s2, 'rendered', 'bytes'), 0);
  });

  test('the same rendered URL again is served from the encoded cache, with its headers', async () => {
    const c = client(srv);
    const x = readUids(fs.readFileSync(d.ct[20]));
    const p = `/dicomweb/studies/${x.study}/series/${x.series}/instances/${x.sop}/rendered?window=30,350`;
    const a = await c.get(p, { Accept: 'image/jpeg' });
    assert.equal(a.status, 200);
    const s0 = await settled(c);
    const b = await c.get(p, { Accept: 'image/jpeg' });
    const s1 = await stats(c);
    assert.equal(b.status, 200);
    assert.ok(b.body.equals(a.body), 'the same bytes');
    assert.equal(b.headers['x-tessera-window'], a.headers['x-tessera-window']);
    assert.match(b.headers['x-tessera-window'], /^30,350,/);
    assert.equal(delta(s0, s1, 'encoded', 'hits'), 1, 'an encoded hit');
    assert.equal(delta(s0, s1, 'rendered', 'misses') + delta(s0, s1, 'rendered', 'hits'), 0,
      'nothing rendered or even looked up again');
  });
});
