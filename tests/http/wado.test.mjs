// WADO-RS (PS3.18 10.4): instances as stored, metadata with BulkDataURIs, frames, bulk data,
// rendered resources and their parameters, content negotiation, errors and path safety.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import fs from 'node:fs';
import {
  useServer, client, demo, tempDir, runTessera, parseMultipart, parseContentType, first, warningOf, assertJsonError, T,
} from './harness.mjs';
import { readUids, nativePixelData, isJpeg, isPng, pngSize, jpegSize, decodePng } from './dicom.mjs';

describe('WADO-RS', () => {
  let d;
  const srv = useServer(async () => {
    d = await demo();
    const dataDir = tempDir('tessera-wado-data-');
    const r = await runTessera(['import', '--data', dataDir, d.dir]);
    assert.equal(r.code, 0, `import: ${r.stdout}${r.stderr}`);
    return { dataDir };
  });
  let c;
  let ct; // a CT slice in the middle of the series
  let us;
  let cr;
  const url = (u, rest = '') => `/dicomweb/studies/${u.study}/series/${u.series}/instances/${u.sop}${rest}`;

  before(() => {
    c = client(srv);
    ct = { file: d.ct[60], ...readUids(fs.readFileSync(d.ct[60])) };
    us = { file: d.us[0], ...readUids(fs.readFileSync(d.us[0])) };
    cr = { file: d.cr[0], ...readUids(fs.readFileSync(d.cr[0])) };
  });

  const png = async (p, extra = {}) => {
    const r = await c.get(p, { Accept: 'image/png', ...extra });
    assert.equal(r.status, 200, `GET ${p}: ${r.status} ${r.text().slice(0, 300)}`);
    assert.match(r.headers['content-type'], /^image\/png/);
    assert.ok(isPng(r.body), 'PNG signature');
    return r.body;
  };
  const jpeg = async (p) => {
    const r = await c.get(p, { Accept: 'image/jpeg' });
    assert.equal(r.status, 200, `GET ${p}: ${r.status} ${r.text().slice(0, 300)}`);
    assert.match(r.headers['content-type'], /^image\/jpeg/);
    assert.ok(isJpeg(r.body), 'JPEG magic');
    return r.body;
  };
  const maxDiff = (a, b) => {
    assert.equal(a.length, b.length);
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
    return m;
  };
  const countDiff = (a, b) => {
    let n = 0;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
    return n;
  };

  describe('HTTP caching of rendered images', () => {
    test('strong ETag, 304 on If-None-Match, immutable for an instance, revalidated for a series', async () => {
      const p = url(ct, '/rendered?window=40,400');
      const a = await c.get(p, { Accept: 'image/jpeg' });
      assert.equal(a.status, 200);
      const etag = a.headers.etag;
      assert.match(etag, /^"[^"]+"$/, 'a strong entity tag');
      assert.match(a.headers['cache-control'], /immutable/);
      assert.match(a.headers.vary, /Accept/);
      const b = await c.get(p, { Accept: 'image/jpeg', 'If-None-Match': etag });
      assert.equal(b.status, 304);
      assert.equal(b.body.length, 0);
      assert.equal(b.headers.etag, etag);
      const weak = await c.get(p, { Accept: 'image/jpeg', 'If-None-Match': `"x", W/${etag}` });
      assert.equal(weak.status, 304, 'weak comparison for If-None-Match');
      const other = await c.get(url(ct, '/rendered?window=40,401'), { Accept: 'image/jpeg', 'If-None-Match': etag });
      assert.equal(other.status, 200, 'another window is another image');
      assert.notEqual(other.headers.etag, etag);
      const pngr = await c.get(p, { Accept: 'image/png', 'If-None-Match': etag });
      assert.equal(pngr.status, 200, 'another format is another image');
      const th = await c.get(`/dicomweb/studies/${ct.study}/series/${ct.series}/thumbnail`, { Accept: 'image/jpeg' });
      assert.equal(th.status, 200);
      assert.match(th.headers['cache-control'], /no-cache/);
      assert.ok(th.headers.etag);
    });
  });

  describe('instances, metadata, bulk data, frames', () => {
    test('instance retrieve: multipart/related application/dicom with the stored bytes', async () => {
      const r = await c.get(url(ct), { Accept: 'multipart/related; type="application/dicom"' });
      assert.equal(r.status, 200);
      const ctype = parseContentType(r.headers['content-type']);
      assert.equal(ctype.type, 'multipart/related');
      assert.equal(ctype.params.type, 'application/dicom');
      const parts = parseMultipart(r.body, r.headers['content-type']);
      assert.equal(parts.length, 1);
      assert.match(parts[0].headers['content-type'], /^application\/dicom/);
      assert.ok(parts[0].body.equals(fs.readFileSync(ct.file)), 'byte-identical');
    });

    test('series retrieve returns all 120 CT files', async () => {
      const r = await c.get(`/dicomweb/studies/${ct.study}/series/${ct.series}`);
      assert.equal(r.status, 200);
      const parts = parseMultipart(r.body, r.headers['content-type']);
      assert.equal(parts.length, 120);
      const want = d.ct.map((f) => fs.readFileSync(f).toString('base64')).sort();
      assert.deepEqual(parts.map((p) => p.body.toString('base64')).sort(), want);
    });

    test('JSON is gzip-compressed when the client accepts it, and identical once inflated', async () => {
      const p = `/dicomweb/studies/${ct.study}/series/${ct.series}/metadata`;
      const plain = await c.get(p, { Accept: 'application/dicom+json' });
      assert.equal(plain.status, 200);
      assert.equal(plain.headers['content-encoding'], undefined);
      assert.match(plain.headers.vary || '', /Accept-Encoding/);
      const gz = await c.get(p, { Accept: 'application/dicom+json', 'Accept-Encoding': 'br, gzip;q=0.8' });
      assert.equal(gz.status, 200);
      assert.equal(gz.headers['content-encoding'], 'gzip');
      assert.equal(Number(gz.headers['content-length']), gz.body.length);
      assert.ok(gz.body.length * 4 < plain.body.length, `${gz.body.length} vs ${plain.body.length} bytes`);
      assert.ok(zlib.gunzipSync(gz.body).equals(plain.body), 'the same JSON');
      // q=0 refuses gzip; images are never re-compressed
      const no = await c.get(p, { Accept: 'application/dicom+json', 'Accept-Encoding': 'gzip;q=0' });
      assert.equal(no.headers['content-encoding'], undefined);
      const img = await c.get(`/dicomweb/studies/${ct.study}/series/${ct.series}/instances/${ct.sop}/rendered`,
        { 'Accept-Encoding': 'gzip' });
      assert.equal(img.headers['content-encoding'], undefined);
    });

    test('metadata: attributes and absolute BulkDataURI whose bytes are the pixel data', async () => {
      for (const x of [us, ct]) {
        const md = await c.json(url(x, '/metadata'));
        assert.equal(md.length, 1);
        const m = md[0];
        assert.equal(first(m, T.SOPInstanceUID), x.sop);
        const px = nativePixelData(fs.readFileSync(x.file));
        assert.equal(Number(first(m, T.Rows)), px.rows);
        assert.equal(Number(first(m, T.Columns)), px.cols);
        assert.equal(m[T.PixelData]?.InlineBinary, undefined, 'pixel data is not inlined');
        const uri = m[T.PixelData]?.BulkDataURI;
        assert.ok(uri, 'PixelData has a BulkDataURI');
        assert.ok(uri.startsWith(`${srv.base}/studies/${x.study}/series/${x.series}/instances/${x.sop}/`), `absolute URI: ${uri}`);
        const r = await c.get(uri);
        assert.equal(r.status, 200, `GET ${uri}: ${r.text().slice(0, 200)}`);
        const body = r.headers['content-type'].startsWith('multipart/')
          ? parseMultipart(r.body, r.headers['content-type'])[0].body
          : r.body;
        assert.ok(body.equals(px.pixels), `bulk data bytes (${body.length} vs ${px.pixels.length})`);
      }
      const usMd = (await c.json(url(us, '/metadata')))[0];
      assert.equal(Number(first(usMd, T.NumberOfFrames)), 30);
    });

    test('study and series metadata cover every instance', async () => {
      const sm = await c.json(`/dicomweb/studies/${ct.study}/metadata`);
      assert.equal(sm.length, 120);
      const se = await c.json(`/dicomweb/studies/${ct.study}/series/${ct.series}/metadata`);
      assert.equal(se.length, 120);
      assert.equal(new Set(se.map((m) => first(m, T.SOPInstanceUID))).size, 120);
    });

    test('frames 1,3,5 of the US cine equal the native frame bytes', async () => {
      const r = await c.get(url(us, '/frames/1,3,5'), { Accept: 'multipart/related; type="application/octet-stream"' });
      assert.equal(r.status, 200);
      const ctype = parseContentType(r.headers['content-type']);
      assert.equal(ctype.type, 'multipart/related');
      assert.equal(ctype.params.type, 'application/octet-stream');
      const parts = parseMultipart(r.body, r.headers['content-type']);
      assert.equal(parts.length, 3);
      const px = nativePixelData(fs.readFileSync(us.file));
      [1, 3, 5].forEach((n, i) => {
        assert.match(parts[i].headers['content-type'] || '', /^application\/octet-stream/);
        assert.equal(parts[i].body.length, 640 * 480 * 3);
        assert.ok(parts[i].body.equals(px.frame(n)), `frame ${n}`);
      });
    });

    test('frame 0 is 400, frame 31 of 30 is 404, garbage frame lists are 400', async () => {
      assertJsonError(await c.get(url(us, '/frames/0')), 400, 'frame 0');
      assertJsonError(await c.get(url(us, '/frames/31')), 404, 'frame 31');
      assertJsonError(await c.get(url(us, '/frames/1,31')), 404, 'frames 1,31');
      assertJsonError(await c.get(url(us, '/frames/abc')), 400, 'frame abc');
      assertJsonError(await c.get(url(us, '/frames/-1')), 400, 'frame -1');
    });
  });

  describe('rendered', () => {
    test('window changes the pixels (and the VOI function too)', async () => {
      const a = decodePng(await png(url(ct, '/rendered?window=40,400')));
      const b = decodePng(await png(url(ct, '/rendered?window=1000,4000')));
      const s = decodePng(await png(url(ct, '/rendered?window=40,400,sigmoid')));
      assert.equal(a.width, 512);
      assert.ok(countDiff(a.data, b.data) > 10000, 'different windows give different images');
      assert.ok(countDiff(a.data, s.data) > 1000, 'sigmoid differs from linear');
      // a narrow window saturates more pixels to black or white than a wide one
      const extremes = (img) => img.data.reduce((n, v) => n + (v === 0 || v === 255 ? 1 : 0), 0);
      assert.ok(extremes(a) > extremes(b), 'narrow window saturates more');
    });

    test('viewport scales: 64,64 gives a 64x64 image; aspect ratio is kept', async () => {
      assert.deepEqual(pngSize(await png(url(ct, '/rendered?viewport=64,64'))).width, 64);
      const p = pngSize(await png(url(ct, '/rendered?viewport=64,64')));
      assert.deepEqual([p.width, p.height], [64, 64]);
      const q = pngSize(await png(url(ct, '/rendered?viewport=100,50')));
      assert.deepEqual([q.width, q.height], [50, 50]);
      const j = jpegSize(await jpeg(url(cr, '/rendered?viewport=88,1000')));
      assert.equal(j.width, 88);
      assert.equal(j.height, Math.round((88 * 2140) / 1760));
    });

    test('viewport with negative width/height flips the image', async () => {
      const plain = decodePng(await png(url(ct, '/rendered?viewport=64,64')));
      const hflip = decodePng(await png(url(ct, '/rendered?viewport=64,64,512,0,-512,512')));
      const vflip = decodePng(await png(url(ct, '/rendered?viewport=64,64,0,512,512,-512')));
      const mirrorH = Buffer.alloc(plain.data.length);
      const mirrorV = Buffer.alloc(plain.data.length);
      for (let y = 0; y < 64; y++) {
        for (let x = 0; x < 64; x++) {
          mirrorH[y * 64 + x] = plain.data[y * 64 + (63 - x)];
          mirrorV[y * 64 + x] = plain.data[(63 - y) * 64 + x];
        }
      }
      assert.ok(countDiff(plain.data, mirrorH) > 100, 'the slice is not left-right symmetric (test is meaningful)');
      assert.ok(maxDiff(hflip.data, mirrorH) <= 1, 'horizontal flip');
      assert.ok(maxDiff(vflip.data, mirrorV) <= 1, 'vertical flip');
    });

    test('viewport source region crops', async () => {
      const full = decodePng(await png(url(ct, '/rendered')));
      const crop = decodePng(await png(url(ct, '/rendered?viewport=128,128,256,256,128,128')));
      assert.deepEqual([crop.width, crop.height], [128, 128]);
      let m = 0;
      for (let y = 0; y < 128; y++) for (let x = 0; x < 128; x++) m = Math.max(m, Math.abs(crop.data[y * 128 + x] - full.data[(256 + y) * 512 + 256 + x]));
      assert.ok(m <= 1, `1:1 crop equals the region of the full render (max diff ${m})`);
    });

    test('lower quality gives a smaller JPEG', async () => {
      const lo = await jpeg(url(cr, '/rendered?quality=10'));
      const hi = await jpeg(url(cr, '/rendered?quality=95'));
      assert.ok(lo.length * 1.5 < hi.length, `quality 10: ${lo.length} bytes, quality 95: ${hi.length} bytes`);
    });

    test('annotation draws on the image', async () => {
      const plain = decodePng(await png(url(ct, '/rendered')));
      const ann = decodePng(await png(url(ct, '/rendered?annotation=patient,technique')));
      assert.deepEqual([ann.width, ann.height], [plain.width, plain.height]);
      assert.ok(countDiff(plain.data, ann.data) > 50, 'annotated render differs');
      const pat = decodePng(await png(url(ct, '/rendered?annotation=patient')));
      assert.ok(countDiff(plain.data, pat.data) > 50, 'patient annotation differs');
      assert.ok(countDiff(ann.data, pat.data) > 50, 'technique adds more text');
    });

    test('rendered frames of the cine differ; frame out of range is 404', async () => {
      const f1 = decodePng(await png(url(us, '/frames/1/rendered')));
      const f10 = decodePng(await png(url(us, '/frames/10/rendered')));
      assert.deepEqual([f1.width, f1.height, f1.channels], [640, 480, 3]);
      assert.ok(countDiff(f1.data, f10.data) > 1000);
      assertJsonError(await c.get(url(us, '/frames/31/rendered')), 404, 'rendered frame 31');
      assertJsonError(await c.get(url(us, '/frames/0/rendered')), 400, 'rendered frame 0');
    });

    test('series rendered: one image per instance', async () => {
      const r = await c.get(`/dicomweb/studies/${ct.study}/series/${ct.series}/rendered?viewport=32,32`);
      assert.equal(r.status, 200);
      const parts = parseMultipart(r.body, r.headers['content-type']);
      assert.equal(parts.length, 120);
      for (const p of parts) {
        assert.ok(isJpeg(p.body));
        assert.equal(jpegSize(p.body).width, 32);
      }
    });

    test('thumbnails fit the default 192 box', async () => {
      for (const p of [url(ct, '/thumbnail'), `/dicomweb/studies/${ct.study}/series/${ct.series}/thumbnail`, `/dicomweb/studies/${ct.study}/thumbnail`, url(cr, '/thumbnail')]) {
        const r = await c.get(p);
        assert.equal(r.status, 200, `${p}: ${r.text().slice(0, 200)}`);
        assert.ok(isJpeg(r.body), `${p} is JPEG`);
        const s = jpegSize(r.body);
        assert.ok(s.width <= 192 && s.height <= 192 && Math.max(s.width, s.height) === 192, `${p}: ${s.width}x${s.height}`);
      }
      const t = pngSize(await png(url(ct, '/thumbnail?viewport=50,50')));
      assert.deepEqual([t.width, t.height], [50, 50]);
    });

    test('invalid rendering parameters are 400', async () => {
      for (const q of ['window=abc', 'window=40,0', 'window=40,400,cubic', 'viewport=0,0', 'viewport=64,64,0,0,-512,512', 'quality=0', 'quality=101', 'annotation=everything']) {
        assertJsonError(await c.get(url(ct, `/rendered?${q}`)), 400, q);
      }
    });

    test('unknown parameters are ignored with a Warning 299', async () => {
      const r = await c.get(url(ct, '/rendered?foo=1&viewport=16,16'));
      assert.equal(r.status, 200);
      assert.ok(isJpeg(r.body));
      assert.equal(jpegSize(r.body).width, 16, 'the other parameters still apply');
      assert.match(warningOf(r), /^299 .*foo/);
      const plain = await c.get(url(ct, '/rendered?viewport=16,16'));
      assert.doesNotMatch(warningOf(plain), /299/);
    });
  });

  describe('content negotiation', () => {
    test('no Accept gives image/jpeg; Accept image/png gives PNG; */* and image/* work', async () => {
      let r = await c.get(url(ct, '/rendered'));
      assert.equal(r.status, 200);
      assert.match(r.headers['content-type'], /^image\/jpeg/);
      assert.ok(isJpeg(r.body));
      r = await c.get(url(ct, '/rendered'), { Accept: 'image/png' });
      assert.match(r.headers['content-type'], /^image\/png/);
      assert.ok(isPng(r.body));
      r = await c.get(url(ct, '/rendered'), { Accept: '*/*' });
      assert.ok(isJpeg(r.body));
      r = await c.get(url(ct, '/rendered'), { Accept: 'image/*' });
      assert.equal(r.status, 200);
      assert.ok(isJpeg(r.body) || isPng(r.body));
      r = await c.get(url(ct, '/rendered'), { Accept: 'image/jpeg;q=0.5, image/png' });
      assert.ok(isPng(r.body), 'q-values are honoured');
    });

    test('Accept image/gif only is 406', async () => {
      assertJsonError(await c.get(url(ct, '/rendered'), { Accept: 'image/gif' }), 406, 'image/gif');
    });

    test('Accept mixing DICOM and image types is 400', async () => {
      assertJsonError(await c.get(url(ct, '/rendered'), { Accept: 'application/dicom, image/jpeg' }), 400, 'mixed Accept');
    });

    test('accept query parameter overrides the header', async () => {
      const r = await c.get(url(ct, '/rendered?accept=image/png'), { Accept: 'image/jpeg' });
      assert.equal(r.status, 200);
      assert.match(r.headers['content-type'], /^image\/png/);
      assert.ok(isPng(r.body));
      const r2 = await c.get(url(ct, '/rendered?accept=image%2Fpng'));
      assert.ok(isPng(r2.body));
    });

    test('metadata as application/json too; instance retrieve refuses image/jpeg', async () => {
      const r = await c.get(url(ct, '/metadata'), { Accept: 'application/json' });
      assert.equal(r.status, 200);
      assert.equal(first(r.json()[0], T.SOPInstanceUID), ct.sop);
      assertJsonError(await c.get(url(ct), { Accept: 'image/jpeg' }), 406, 'instance as image/jpeg');
    });
  });

  describe('errors and path safety', () => {
    test('unknown study, series or instance: 404 JSON', async () => {
      assertJsonError(await c.get(`/dicomweb/studies/${ct.study}/series/${ct.series}/instances/1.2.3.4`), 404, 'unknown instance');
      assertJsonError(await c.get(`/dicomweb/studies/${ct.study}/series/${ct.series}/instances/1.2.3.4/metadata`), 404, 'unknown instance metadata');
      assertJsonError(await c.get(`/dicomweb/studies/${ct.study}/series/${ct.series}/instances/1.2.3.4/rendered`), 404, 'unknown instance rendered');
      assertJsonError(await c.get(`/dicomweb/studies/${ct.study}/series/${ct.series}/instances/1.2.3.4/frames/1`), 404, 'unknown instance frames');
      assertJsonError(await c.get(`/dicomweb/studies/${ct.study}/series/1.2.3.4`), 404, 'unknown series');
      assertJsonError(await c.get('/dicomweb/studies/1.2.3.4'), 404, 'unknown study');
      assertJsonError(await c.get('/dicomweb/studies/1.2.3.4/metadata'), 404, 'unknown study metadata');
      // an instance that exists, but under another series
      assertJsonError(await c.get(`/dicomweb/studies/${ct.study}/series/${us.series}/instances/${ct.sop}`), 404, 'instance under the wrong series');
    });

    test('invalid UIDs in the path: 400 JSON', async () => {
      assertJsonError(await c.get('/dicomweb/studies/abc'), 400, 'study abc');
      assertJsonError(await c.get('/dicomweb/studies/abc/metadata'), 400, 'study abc metadata');
      assertJsonError(await c.get(`/dicomweb/studies/${ct.study}/series/${ct.series}/instances/1.2.x/rendered`), 400, 'instance 1.2.x');
      assertJsonError(await c.get(`/dicomweb/studies/1.${'2'.repeat(70)}`), 400, 'UID longer than 64');
      // PS3.5 9.1: components are non-empty
      assertJsonError(await c.get(`/dicomweb/studies/${ct.study}/series/1..2`), 400, 'series 1..2 (empty component)');
      assertJsonError(await c.get(`/dicomweb/studies/${ct.study}/series/.1.2`), 400, 'series .1.2 (leading dot)');
    });

    test('path traversal never returns file contents', async () => {
      const attempts = [
        '/dicomweb/studies/..%2F..%2Fetc',
        '/dicomweb/studies/..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd',
        '/dicomweb/studies/../../../../etc/passwd',
        '/dicomweb/../../../../etc/passwd',
        '/dicomweb/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
        '/dicomweb/studies/%2e%2e%2f%2e%2e%2findex.sqlite',
        `/dicomweb/studies/${ct.study}/series/${ct.series}/instances/..%2F..%2F..%2F..%2Findex.sqlite`,
        `/dicomweb/studies/${ct.study}/series/${ct.series}/instances/${ct.sop}/bulkdata/..%2F..%2F..%2Fetc%2Fpasswd`,
        `/dicomweb/studies/${ct.study}/series/${ct.series}/instances/${ct.sop}/bulkdata/../../../../../../etc/passwd`,
        '/index.sqlite',
        '/../index.sqlite',
        '/objects',
      ];
      for (const p of attempts) {
        const r = await c.get(p);
        const body = r.body.toString('latin1');
        assert.ok(r.status >= 400 && r.status < 500, `${p}: status ${r.status}`);
        assert.ok(!body.includes('root:'), `${p}: /etc/passwd content`);
        assert.ok(!body.includes('SQLite format 3'), `${p}: index content`);
        assert.ok(!body.includes('DICM'), `${p}: DICOM content`);
      }
      // the server still works
      assert.equal((await c.get(url(ct, '/metadata'))).status, 200);
    });
  });
});
