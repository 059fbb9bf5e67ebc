// Durability: (a) a clean restart (SIGTERM) answers every QIDO query exactly as before;
// (b) SIGKILL while a large STOW-RS body is being received loses nothing that was acknowledged,
// shows nothing that was not, and leaves no stray files behind.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  startServer, authHeaders, assertNoSanitizerReport, client, stow, demo, tempDir, listFiles, parseMultipart, multipartBody, first, uidsOf, T,
} from './harness.mjs';
import { readUids } from './dicom.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// QIDO answers with the server's origin (which changes with the port) masked.
async function snapshot(s, queries) {
  const c = client(s);
  const out = {};
  for (const q of queries) {
    const r = await c.get(q);
    assert.equal(r.status, 200, `${q}: ${r.text().slice(0, 200)}`);
    out[q] = { body: r.text().split(s.origin).join('ORIGIN'), warning: (r.headers.warning || '').toString() };
  }
  return out;
}

describe('restart and crash', () => {
  test('(a) QIDO answers are identical after SIGTERM and restart', async () => {
    const d = await demo();
    const dataDir = tempDir('tessera-restart-');
    let s = await startServer({ dataDir });
    let restarted = null;
    try {
      const r = await stow(s, [...d.ct.slice(0, 30), d.cr[0], d.us[0]]);
      assert.equal(r.status, 200, r.text());
      const ct = readUids(fs.readFileSync(d.ct[0]));
      const queries = [
        '/dicomweb/studies?includefield=all',
        '/dicomweb/series?includefield=all',
        '/dicomweb/instances?includefield=all',
        `/dicomweb/studies/${ct.study}/series?includefield=all`,
        `/dicomweb/studies/${ct.study}/instances?includefield=all`,
        `/dicomweb/studies/${ct.study}/series/${ct.series}/instances?includefield=all&limit=7&offset=3`,
        `/dicomweb/studies/${ct.study}/series/${ct.series}/instances/${ct.sop}/metadata`,
        `/dicomweb/studies/${ct.study}/metadata`,
      ];
      const before = await snapshot(s, queries);
      assert.equal(JSON.parse(before['/dicomweb/instances?includefield=all'].body).length, 32);
      const e = await s.stop();
      assert.equal(e.code, 0, `exit after SIGTERM: ${JSON.stringify(e)} ${s.stderr()}`);
      assert.match(s.stdout(), /tessera: stopped/);
      assertNoSanitizerReport(s);
      restarted = await startServer({ dataDir });
      s = restarted;
      const after = await snapshot(s, queries);
      for (const q of queries) assert.deepEqual(JSON.parse(after[q].body), JSON.parse(before[q].body), q);
      for (const q of queries) assert.equal(after[q].warning, before[q].warning, `${q} Warning`);
      // and the bytes are still there
      const inst = await client(s).get(`/dicomweb/studies/${ct.study}/series/${ct.series}/instances/${ct.sop}`);
      assert.ok(parseMultipart(inst.body, inst.headers['content-type'])[0].body.equals(fs.readFileSync(d.ct[0])));
    } finally {
      const e = await s.stop();
      assert.equal(e.code, 0);
      assertNoSanitizerReport(s);
    }
  });

  test('(b) SIGKILL during a large STOW keeps exactly the acknowledged instances', async () => {
    const d = await demo();
    const dataDir = tempDir('tessera-crash-');
    const s = await startServer({ dataDir });
    const acked = new Map(); // SOP UID -> file
    let killedFiles;
    let s2 = null;
    try {
      // acknowledged requests
      const batches = [d.ct.slice(0, 20), d.ct.slice(20, 40), d.ct.slice(40, 60), d.ct.slice(60, 80), [d.cr[0]]];
      for (const b of batches) {
        const r = await stow(s, b);
        assert.equal(r.status, 200, r.text());
        for (const f of b) acked.set(readUids(fs.readFileSync(f)).sop, f);
      }
      assert.equal(acked.size, 81);

      // the request that is killed: 40 CT slices and the 27 MB US cine, ~48 MB
      killedFiles = [...d.ct.slice(80, 120), d.us[0]];
      const mp = multipartBody(killedFiles.map((f) => fs.readFileSync(f)));
      const whole = Buffer.concat(mp.body);
      const half = Math.floor(whole.length / 2);
      const req = http.request({
        host: '127.0.0.1', port: s.port, path: '/dicomweb/studies', method: 'POST',
        headers: { ...authHeaders(s), 'Content-Type': mp.contentType, 'Content-Length': String(whole.length), Accept: 'application/dicom+json' },
      });
      const outcome = new Promise((resolve) => {
        req.on('response', (res) => resolve({ status: res.statusCode }));
        req.on('error', (e) => resolve({ error: e.code || e.message }));
      });
      // send the first half in 1 MB chunks, waiting for each to be flushed
      for (let off = 0; off < half; off += 1 << 20) {
        await new Promise((resolve, reject) => req.write(whole.subarray(off, Math.min(off + (1 << 20), half)), (e) => (e ? reject(e) : resolve())));
      }
      // wait until the server has parts of this upload in tmp/ (it is mid-request), then kill it
      const tmpDir = path.join(dataDir, 'tmp');
      let inTmp = 0;
      for (let i = 0; i < 100 && inTmp === 0; i++) {
        await sleep(50);
        inTmp = listFiles(tmpDir).length;
      }
      await sleep(200);
      inTmp = Math.max(inTmp, listFiles(tmpDir).length);
      await s.kill();
      const o = await outcome;
      assert.ok(!('status' in o), `the killed request was not answered (got ${JSON.stringify(o)})`);
      assert.ok(inTmp > 0, 'the server had upload data in DATADIR/tmp when it was killed');

      // restart on the same data dir
      s2 = await startServer({ dataDir });
      const c = client(s2);
      const instances = await c.json('/dicomweb/instances?limit=1000');
      assert.deepEqual(uidsOf(instances, T.SOPInstanceUID), [...acked.keys()].sort(), 'exactly the acknowledged instances are indexed');
      const killedUids = new Set(killedFiles.map((f) => readUids(fs.readFileSync(f)).sop));
      assert.ok(!instances.some((i) => killedUids.has(first(i, T.SOPInstanceUID))), 'nothing of the killed request is visible');
      const usStudy = readUids(fs.readFileSync(d.us[0])).study;
      assert.equal((await c.get(`/dicomweb/studies/${usStudy}`)).status, 404, 'the killed request\'s US study does not exist');

      // every acknowledged instance comes back byte-identical
      const ct = readUids(fs.readFileSync(d.ct[0]));
      const series = await c.get(`/dicomweb/studies/${ct.study}/series/${ct.series}`);
      assert.equal(series.status, 200);
      const parts = parseMultipart(series.body, series.headers['content-type']);
      assert.equal(parts.length, 80);
      const want = d.ct.slice(0, 80).map((f) => fs.readFileSync(f).toString('base64')).sort();
      assert.deepEqual(parts.map((p) => p.body.toString('base64')).sort(), want, 'CT bytes after the crash');
      const cr = readUids(fs.readFileSync(d.cr[0]));
      const crr = await c.get(`/dicomweb/studies/${cr.study}/series/${cr.series}/instances/${cr.sop}`);
      assert.ok(parseMultipart(crr.body, crr.headers['content-type'])[0].body.equals(fs.readFileSync(d.cr[0])), 'CR bytes after the crash');

      // no leftovers: tmp/ is empty and objects/ holds one file per indexed instance
      assert.deepEqual(listFiles(tmpDir).map((f) => path.relative(dataDir, f)), [], 'DATADIR/tmp is empty');
      assert.equal(listFiles(path.join(dataDir, 'objects')).length, instances.length, 'files under DATADIR/objects = indexed instances');

      // the interrupted upload can simply be sent again
      const again = await stow(s2, killedFiles);
      assert.equal(again.status, 200, again.text());
      assert.equal((await c.json('/dicomweb/instances?limit=1000')).length, 81 + killedFiles.length);
      assert.equal(listFiles(path.join(dataDir, 'objects')).length, 81 + killedFiles.length);
    } finally {
      await s.kill();
      if (s2) {
        const e = await s2.stop();
        assert.equal(e.code, 0, `restarted server exit: ${JSON.stringify(e)}`);
        assertNoSanitizerReport(s2);
      }
    }
  });
});
