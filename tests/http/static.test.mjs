// The viewer's own files (web/: HTML, CSS, JavaScript, SVG) as tessera serve --web-root sends
// them: gzip when the client takes it (byte-identical after gunzip), ETag + Cache-Control:
// no-cache with 304 on If-None-Match, the security headers, a new ETag after a change, and
// nothing outside the web root or hidden (dot files are never served).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { useServer, client, tempDir, TEST_DIR } from './harness.mjs';

const WEB = path.resolve(TEST_DIR, '../../web');

describe('the viewer files', () => {
  let root;
  const srv = useServer(() => {
    // a copy of web/ so that a file can be changed during the test, and a secret next to it
    const base = tempDir('tessera-static-');
    root = path.join(base, 'web');
    fs.cpSync(WEB, root, { recursive: true });
    fs.writeFileSync(path.join(base, 'secret.js'), 'secret');
    fs.writeFileSync(path.join(root, 'js', '.hidden.js'), 'hidden');
    return { args: ['--web-root', root] };
  });

  test('JavaScript, CSS and HTML are gzipped for clients that take it, and byte-identical after gunzip', async () => {
    const c = client(srv, { auth: false });
    for (const p of ['/js/app.js', '/js/viewport.js', '/viewer.css', '/', '/index.html', '/login.html', '/share.html', '/favicon.svg']) {
      const file = path.join(root, p === '/' ? 'index.html' : p.slice(1));
      const want = fs.readFileSync(file);
      const gz = await c.get(p, { 'Accept-Encoding': 'gzip, deflate' });
      assert.equal(gz.status, 200, p);
      if (want.length >= 1024) {
        assert.equal(gz.headers['content-encoding'], 'gzip', `${p} gzipped`);
        assert.ok(gz.body.length < want.length * 0.6, `${p}: ${gz.body.length} of ${want.length} bytes`);
        assert.deepEqual(zlib.gunzipSync(gz.body), want, `${p} after gunzip`);
        assert.match(String(gz.headers.vary || ''), /Accept-Encoding/i, `${p} Vary`);
      }
      const plain = await c.get(p);
      assert.equal(plain.headers['content-encoding'], undefined, `${p} plain without Accept-Encoding`);
      assert.deepEqual(plain.body, want, `${p} plain bytes`);
      assert.match(String(plain.headers['content-security-policy'] || ''), /default-src 'self'/, `${p} CSP`);
      assert.equal(plain.headers['x-content-type-options'], 'nosniff');
    }
    assert.match(String((await c.get('/js/app.js')).headers['content-type']), /^text\/javascript/);
    assert.match(String((await c.get('/viewer.css')).headers['content-type']), /^text\/css/);
  });

  test('ETag with Cache-Control: no-cache; 304 when unchanged, a new ETag after a change', async () => {
    const c = client(srv, { auth: false });
    const r = await c.get('/js/dicom.js');
    assert.equal(r.headers['cache-control'], 'no-cache');
    const etag = r.headers.etag;
    assert.match(String(etag), /^"[^"]+"$/);
    const again = await c.get('/js/dicom.js', { 'If-None-Match': etag });
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);
    const f = path.join(root, 'js', 'dicom.js');
    fs.appendFileSync(f, '\n// changed\n');
    const changed = await c.get('/js/dicom.js', { 'If-None-Match': etag });
    assert.equal(changed.status, 200);
    assert.notEqual(changed.headers.etag, etag);
    assert.ok(changed.body.toString().endsWith('// changed\n'));
  });

  test('nothing outside the web root, no hidden files, 404 for unknown files', async () => {
    const c = client(srv, { auth: false });
    for (const p of ['/js/.hidden.js', '/js/nonexistent.js', '/js/%2e%2e/secret.js', '/js/..%2fsecret.js', '/..%2fsecret.js', '/%2e%2e/secret.js']) {
      const r = await c.get(p);
      assert.notEqual(r.status, 200, `${p}: ${r.status}`);
      assert.ok(!r.body.toString().includes('secret') && !r.body.toString().includes('hidden'), `${p} leaks a file`);
    }
  });
});
