// CORS (off by default, an allow-list with --cors-origins, preflight) and the HTTP-level errors
// of STOW-RS and of the router: 415, 400, 413 (with and without Content-Length), 405; the
// --qido-max page limit; STOW-RS outcomes (200/202/409, idempotence, first write wins, also under
// concurrent requests) and keep-alive connections surviving error responses.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { useServer, client, demo, multipartBody, assertJsonError, warningOf, first, value, T, authHeaders } from './harness.mjs';
import { syntheticInstance } from './dicom.mjs';

const ALLOWED = 'https://a.example';
const ALLOWED2 = 'https://b.example';
const EVIL = 'https://evil.example';

const headerList = (v) => String(v || '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
const preflight = (c, origin, method = 'POST', headers = 'content-type') =>
  c.request('/dicomweb/studies', {
    method: 'OPTIONS',
    headers: { Origin: origin, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': headers },
  });

describe('CORS off (default)', () => {
  const srv = useServer();
  let c;
  before(() => { c = client(srv); });

  test('no Access-Control-Allow-Origin on a cross-origin GET', async () => {
    const r = await c.get('/dicomweb/studies', { Origin: ALLOWED });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], undefined);
  });

  test('a preflight is not approved for any origin', async () => {
    const r = await preflight(c, EVIL);
    assert.equal(r.headers['access-control-allow-origin'], undefined,
      `preflight answered ${r.status} with Access-Control-Allow-Origin: ${r.headers['access-control-allow-origin']}`);
  });
});

describe('CORS with --cors-origins, upload and page limits', () => {
  const srv = useServer({ args: ['--cors-origins', `${ALLOWED},${ALLOWED2}`, '--max-upload-mb', '1', '--qido-max', '2'] });
  let c;
  let d;
  before(async () => {
    c = client(srv);
    d = await demo();
  });

  test('an allowed origin gets Access-Control-Allow-Origin and exposed headers', async () => {
    for (const origin of [ALLOWED, ALLOWED2]) {
      const r = await c.get('/dicomweb/studies', { Origin: origin });
      assert.equal(r.status, 200);
      assert.equal(r.headers['access-control-allow-origin'], origin);
      const exposed = headerList(r.headers['access-control-expose-headers']);
      assert.ok(exposed.includes('warning'), `exposes Warning: ${exposed}`);
      assert.ok(exposed.includes('content-location'), `exposes Content-Location: ${exposed}`);
      assert.ok(headerList(r.headers.vary).includes('origin'), 'Vary: Origin');
    }
  });

  test('error responses carry CORS headers too (the browser can read them)', async () => {
    const r = await c.get('/dicomweb/studies/1.2.3.4', { Origin: ALLOWED });
    assertJsonError(r, 404);
    assert.equal(r.headers['access-control-allow-origin'], ALLOWED);
  });

  test('another origin gets no Access-Control-Allow-Origin', async () => {
    const r = await c.get('/dicomweb/studies', { Origin: EVIL });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    const r2 = await c.get('/dicomweb/studies');
    assert.equal(r2.headers['access-control-allow-origin'], undefined, 'no Origin, no CORS headers');
  });

  test('preflight from an allowed origin: 204 with the allowed methods and headers', async () => {
    const r = await preflight(c, ALLOWED, 'POST', 'content-type, accept');
    assert.equal(r.status, 204, `preflight status ${r.status}`);
    assert.equal(r.headers['access-control-allow-origin'], ALLOWED);
    const methods = headerList(r.headers['access-control-allow-methods']).map((m) => m.toUpperCase());
    for (const m of ['GET', 'POST']) assert.ok(methods.includes(m), `Allow-Methods has ${m}: ${methods}`);
    const allowedHeaders = headerList(r.headers['access-control-allow-headers']);
    assert.ok(allowedHeaders.includes('content-type'), `Allow-Headers has content-type: ${allowedHeaders}`);
    assert.equal(r.body.length, 0, 'no body');
  });

  test('preflight from another origin is not approved', async () => {
    const r = await preflight(c, EVIL);
    const acao = r.headers['access-control-allow-origin'];
    assert.ok(acao === undefined, `preflight from ${EVIL} answered ${r.status} with Access-Control-Allow-Origin: ${acao}`);
  });

  test('STOW with a wrong content type: 415', async () => {
    const file = fs.readFileSync(d.cr[0]);
    for (const ct of ['application/json', 'text/plain', 'application/dicom', 'multipart/form-data; boundary=x']) {
      const r = await c.request('/dicomweb/studies', { method: 'POST', headers: { 'Content-Type': ct }, body: file.subarray(0, 1000) });
      assertJsonError(r, 415, ct);
    }
    const none = await c.request('/dicomweb/studies', { method: 'POST', body: Buffer.from('x') });
    assert.ok([400, 415].includes(none.status), `no Content-Type: ${none.status}`);
  });

  test('STOW of a body without its closing boundary: 400, nothing stored', async () => {
    const small = syntheticInstance({ study: '2.25.55501', series: '2.25.55501.1', sop: '2.25.55501.1.1' });
    const mp = multipartBody([small, small], { closing: false });
    // cut inside the second part
    const whole = Buffer.concat(mp.body);
    const r = await c.request('/dicomweb/studies', { method: 'POST', headers: { 'Content-Type': mp.contentType }, body: whole.subarray(0, whole.length - 300) });
    assertJsonError(r, 400, 'truncated multipart');
    const r2 = await c.request('/dicomweb/studies', { method: 'POST', headers: { 'Content-Type': 'multipart/related; type="application/dicom"' }, body: whole });
    assertJsonError(r2, 400, 'no boundary parameter');
    const r3 = await c.request('/dicomweb/studies', { method: 'POST', headers: { 'Content-Type': mp.contentType }, body: Buffer.from('this is no multipart body at all') });
    assertJsonError(r3, 400, 'garbage body');
    assert.equal((await c.json('/dicomweb/studies?StudyInstanceUID=2.25.55501')).length, 0, 'nothing stored');
  });

  test('STOW larger than --max-upload-mb: 413 (Content-Length and chunked), nothing stored', async () => {
    const parts = d.ct.slice(0, 4).map((f) => fs.readFileSync(f)); // ~2 MB
    const mp = multipartBody(parts);
    assert.ok(mp.length > 2 * 1000 * 1000);
    const r = await c.request('/dicomweb/studies', { method: 'POST', headers: { 'Content-Type': mp.contentType, 'Content-Length': String(mp.length) }, body: mp.body });
    assertJsonError(r, 413, 'Content-Length 2 MB');
    const r2 = await c.request('/dicomweb/studies', { method: 'POST', headers: { 'Content-Type': mp.contentType, 'Transfer-Encoding': 'chunked' }, body: mp.body });
    assertJsonError(r2, 413, 'chunked 2 MB');
    assert.equal((await c.json('/dicomweb/instances')).length, 0, 'nothing stored');
    // a body under the limit still works on the same server
    const ok = await c.stow([parts[0]]);
    assert.equal(ok.status, 200, ok.text());
  });

  test('--qido-max caps a page and says how many more there are', async () => {
    const batch = [1, 2, 3, 4, 5].map((i) => syntheticInstance({ study: '2.25.55502', series: '2.25.55502.1', sop: `2.25.55502.1.${i}`, instanceNumber: i }));
    assert.equal((await c.stow(batch)).status, 200);
    const r = await c.get('/dicomweb/studies/2.25.55502/instances');
    assert.equal(r.status, 200);
    assert.equal(r.json().length, 2);
    assert.match(warningOf(r), /There are 3 additional results/);
    const r2 = await c.get('/dicomweb/studies/2.25.55502/instances?limit=100&offset=4');
    assert.equal(r2.json().length, 1);
    assert.equal(first(r2.json()[0], T.StudyInstanceUID), '2.25.55502');
  });

  test('methods other than GET/HEAD/POST (and OPTIONS): 405 JSON with Allow', async () => {
    for (const [method, p] of [['DELETE', '/dicomweb/studies'], ['DELETE', '/dicomweb/studies/2.25.55502'], ['PUT', '/dicomweb/studies'], ['PATCH', '/dicomweb/studies/2.25.55502']]) {
      const r = await c.request(p, { method });
      assertJsonError(r, 405, `${method} ${p}`);
      assert.ok(r.headers.allow, `${method} ${p}: Allow header`);
      assert.ok(!headerList(r.headers.allow).map((m) => m.toUpperCase()).includes(method), `${method} not in Allow`);
    }
    const post = await c.request('/dicomweb/series', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: Buffer.from('x') });
    assertJsonError(post, 405, 'POST /dicomweb/series');
    // the study is still there
    assert.equal((await c.json('/dicomweb/studies?StudyInstanceUID=2.25.55502')).length, 1);
  });

  test('HEAD answers like GET without a body', async () => {
    const r = await c.request('/dicomweb/studies', { method: 'HEAD' });
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /application\/dicom\+json/);
    assert.equal(r.body.length, 0);
  });
});

describe('STOW-RS outcomes and connections', () => {
  const srv = useServer();
  let c;
  before(() => { c = client(srv); });
  const inst = (n, seed = 0, study = '2.25.66601') => syntheticInstance({ study, series: `${study}.1`, sop: `${study}.1.${n}`, instanceNumber: n, seed });
  const refs = (r) => (value(r.json(), T.ReferencedSOPSequence) || []).map((x) => first(x, T.ReferencedSOPInstanceUID));
  const fails = (r) => (value(r.json(), T.FailedSOPSequence) || []).map((x) => [first(x, T.ReferencedSOPInstanceUID), first(x, T.FailureReason)]);

  test('200 all stored; identical bytes again: 200; a different file with the same UID: 409 with 0x0111; mixed: 202', async () => {
    let r = await c.stow([inst(1), inst(2)]);
    assert.equal(r.status, 200, r.text());
    assert.match(r.headers['content-type'], /^application\/dicom\+json/);
    assert.deepEqual(refs(r).sort(), ['2.25.66601.1.1', '2.25.66601.1.2']);
    assert.equal(first(r.json(), T.RetrieveURL), `${srv.base}/studies/2.25.66601`, 'study RetrieveURL');
    r = await c.stow([inst(1)]);
    assert.equal(r.status, 200, `identical re-send: ${r.text()}`);
    assert.deepEqual(refs(r), ['2.25.66601.1.1']);
    r = await c.stow([inst(1, 99)]);
    assert.equal(r.status, 409, r.text());
    assert.deepEqual(fails(r), [['2.25.66601.1.1', 0x0111]]);
    assert.deepEqual(refs(r), []);
    r = await c.stow([inst(3), inst(2, 99)]);
    assert.equal(r.status, 202, r.text());
    assert.deepEqual(refs(r), ['2.25.66601.1.3']);
    assert.deepEqual(fails(r), [['2.25.66601.1.2', 0x0111]]);
    // the first write won: the stored bytes are the original ones
    const got = await c.get('/dicomweb/studies/2.25.66601/series/2.25.66601.1/instances/2.25.66601.1.2', { Accept: 'multipart/related; type="application/dicom"' });
    assert.ok(got.body.includes(inst(2)), 'the original bytes are kept');
    assert.equal((await c.json('/dicomweb/studies/2.25.66601/instances')).length, 3);
  });

  test('STOW to /studies/{uid} refuses instances of another study', async () => {
    const r = await c.stow([inst(4), inst(1, 0, '2.25.66602')], { path: '/dicomweb/studies/2.25.66601' });
    assert.equal(r.status, 202, r.text());
    assert.deepEqual(refs(r), ['2.25.66601.1.4']);
    const f = fails(r);
    assert.equal(f.length, 1);
    assert.equal(f[0][0], '2.25.66602.1.1');
    assert.equal((await c.get('/dicomweb/studies/2.25.66602')).status, 404, 'the other study was not stored');
  });

  test('concurrent STOWs of different files with one UID: exactly one wins', async () => {
    const variants = [...Array(6)].map((_, i) => inst(1, 10 + i, '2.25.66603'));
    const rs = await Promise.all(variants.map((v) => c.stow([v])));
    const statuses = rs.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 1, `statuses ${statuses}`);
    assert.equal(statuses.filter((s) => s === 409).length, 5, `statuses ${statuses}`);
    const winner = variants[statuses.indexOf(200)];
    const got = await c.get('/dicomweb/studies/2.25.66603/series/2.25.66603.1/instances/2.25.66603.1.1');
    assert.equal(got.status, 200);
    assert.ok(got.body.includes(winner), 'the stored bytes are those of the acknowledged request');
    assert.equal((await c.json('/dicomweb/studies/2.25.66603/instances')).length, 1);
  });

  test('one keep-alive connection survives error responses (bodies are drained)', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set();
    const send = (path, { method = 'GET', headers = {}, body } = {}) => new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: srv.port, path, method, headers: { ...authHeaders(srv), ...headers }, agent }, (res) => {
        sockets.add(res.socket);
        const ch = [];
        res.on('data', (x) => ch.push(x));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(ch) }));
      });
      req.on('error', reject);
      if (body) req.write(body);
      req.end();
    });
    try {
      const junk = Buffer.alloc(300000, 0x41);
      const mp = multipartBody([inst(5)]);
      const seq = [
        [send('/dicomweb/studies/1.2.3.4'), 404],
        [send('/dicomweb/studies', { method: 'POST', headers: { 'Content-Type': 'text/plain', 'Content-Length': junk.length }, body: junk }), 415],
        [send('/dicomweb/studies?limit=-1'), 400],
        [send('/dicomweb/studies', { method: 'DELETE', headers: { 'Content-Length': 5 }, body: 'hello' }), 405],
        [send('/dicomweb/studies', { method: 'POST', headers: { 'Content-Type': mp.contentType, 'Content-Length': mp.length }, body: Buffer.concat(mp.body) }), 200],
        [send('/dicomweb/studies/2.25.66601/instances'), 200],
      ];
      for (const [p, want] of seq) {
        const r = await p;
        assert.equal(r.status, want, r.body.toString().slice(0, 200));
      }
      const last = await send('/dicomweb/studies/2.25.66601/instances');
      assert.equal(JSON.parse(last.body.toString()).length, 5);
      assert.equal(sockets.size, 1, 'all requests went over one connection');
    } finally {
      agent.destroy();
    }
  });
});
