// The server through a real third-party DICOMweb client: the `dicomweb-client` npm package
// (as used by OHIF and others), running on Node with an XMLHttpRequest polyfill.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import XHR2 from 'xhr2';
import { useServer, demo, first, value, uidsOf, T, authHeaders } from './harness.mjs';
import { readUids, nativePixelData, isJpeg, isPng, pngSize, jpegSize } from './dicom.mjs';

// dicomweb-client creates XMLHttpRequest objects from the global scope.
globalThis.XMLHttpRequest = XHR2;
const dwc = (await import('dicomweb-client')).default;
const { DICOMwebClient } = dwc.api;

const toBuf = (x) => {
  const ab = Array.isArray(x) ? x[0] : x;
  if (Buffer.isBuffer(ab)) return ab;
  if (ab instanceof ArrayBuffer) return Buffer.from(ab);
  if (ArrayBuffer.isView(ab)) return Buffer.from(ab.buffer, ab.byteOffset, ab.byteLength);
  throw new Error(`unexpected response type ${Object.prototype.toString.call(ab)}`);
};
const arrayBufferOf = (b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);

describe('dicomweb-client', () => {
  const srv = useServer();
  let client;
  let d;
  const files = {};
  const uids = {};

  before(async () => {
    d = await demo();
    // the server's admin token on every request (access control)
    client = new DICOMwebClient({ url: srv.base, verbose: false, headers: authHeaders(srv) });
    files.ct = d.ct.slice(0, 5);
    files.cr = d.cr[0];
    files.us = d.us[0];
    for (const f of [...files.ct, files.cr, files.us]) uids[f] = readUids(fs.readFileSync(f));
  });

  test('storeInstances: demo CT subset, CR and US', async () => {
    const paths = [...files.ct, files.cr, files.us];
    const datasets = paths.map((f) => arrayBufferOf(fs.readFileSync(f)));
    const res = await client.storeInstances({ datasets });
    const j = typeof res === 'string' ? JSON.parse(res) : res;
    const refs = value(j, T.ReferencedSOPSequence);
    assert.ok(Array.isArray(refs), `ReferencedSOPSequence in ${JSON.stringify(j).slice(0, 400)}`);
    assert.deepEqual(uidsOf(refs, T.ReferencedSOPInstanceUID), paths.map((f) => uids[f].sop).sort());
    assert.equal(value(j, T.FailedSOPSequence)?.length ?? 0, 0);
    for (const r of refs) {
      const u = Object.values(uids).find((x) => x.sop === first(r, T.ReferencedSOPInstanceUID));
      assert.equal(first(r, T.RetrieveURL), `${srv.base}/studies/${u.study}/series/${u.series}/instances/${u.sop}`);
    }
  });

  test('searchForStudies / searchForSeries / searchForInstances', async () => {
    const studies = await client.searchForStudies();
    const wantStudies = [...new Set(Object.values(uids).map((u) => u.study))].sort();
    assert.deepEqual(uidsOf(studies, T.StudyInstanceUID), wantStudies);
    const ctStudy = uids[files.ct[0]].study;
    const ctSeries = uids[files.ct[0]].series;
    const byName = await client.searchForStudies({ queryParams: { ModalitiesInStudy: 'CT' } });
    assert.deepEqual(uidsOf(byName, T.StudyInstanceUID), [ctStudy]);
    assert.equal(Number(first(byName[0], T.NumberOfStudyRelatedInstances)), 5);

    const series = await client.searchForSeries({ studyInstanceUID: ctStudy });
    assert.deepEqual(uidsOf(series, T.SeriesInstanceUID), [ctSeries]);
    const allSeries = await client.searchForSeries();
    assert.equal(allSeries.length, 3);

    const inst = await client.searchForInstances({ studyInstanceUID: ctStudy, seriesInstanceUID: ctSeries });
    assert.deepEqual(uidsOf(inst, T.SOPInstanceUID), files.ct.map((f) => uids[f].sop).sort());
    const studyInst = await client.searchForInstances({ studyInstanceUID: uids[files.us].study });
    assert.deepEqual(uidsOf(studyInst, T.SOPInstanceUID), [uids[files.us].sop]);
    const allInst = await client.searchForInstances({ queryParams: { limit: 3 } });
    assert.equal(allInst.length, 3);
    const everything = await client.searchForInstances();
    assert.equal(everything.length, 7);
  });

  test('retrieveStudyMetadata / retrieveSeriesMetadata / retrieveInstanceMetadata', async () => {
    const u = uids[files.ct[2]];
    const sm = await client.retrieveStudyMetadata({ studyInstanceUID: u.study });
    assert.equal(sm.length, 5);
    assert.deepEqual(uidsOf(sm, T.SOPInstanceUID), files.ct.map((f) => uids[f].sop).sort());
    const se = await client.retrieveSeriesMetadata({ studyInstanceUID: u.study, seriesInstanceUID: u.series });
    assert.equal(se.length, 5);
    const im = await client.retrieveInstanceMetadata({ studyInstanceUID: u.study, seriesInstanceUID: u.series, sopInstanceUID: u.sop });
    assert.equal(im.length, 1);
    assert.equal(first(im[0], T.SOPInstanceUID), u.sop);
    assert.equal(Number(first(im[0], T.Rows)), 512);
    assert.equal(Number(first(im[0], T.Columns)), 512);
    const bulk = im[0][T.PixelData]?.BulkDataURI;
    assert.ok(bulk, 'PixelData has a BulkDataURI');
    assert.ok(bulk.startsWith(`${srv.base}/`), `absolute BulkDataURI: ${bulk}`);
  });

  test('retrieveInstance returns the stored bytes', async () => {
    for (const f of [files.ct[1], files.cr]) {
      const u = uids[f];
      const got = await client.retrieveInstance({ studyInstanceUID: u.study, seriesInstanceUID: u.series, sopInstanceUID: u.sop });
      assert.ok(toBuf(got).equals(fs.readFileSync(f)), `retrieveInstance of ${f} is byte-identical`);
    }
  });

  test('retrieveSeries returns every instance of the series', async () => {
    const u = uids[files.ct[0]];
    const parts = await client.retrieveSeries({ studyInstanceUID: u.study, seriesInstanceUID: u.series });
    assert.equal(parts.length, 5);
    const want = files.ct.map((f) => fs.readFileSync(f).toString('base64')).sort();
    assert.deepEqual(parts.map((p) => toBuf(p).toString('base64')).sort(), want);
  });

  test('retrieveInstanceFrames equals the native pixel data of each frame', async () => {
    const u = uids[files.us];
    const px = nativePixelData(fs.readFileSync(files.us));
    assert.equal(px.frames, 30);
    const frames = await client.retrieveInstanceFrames({
      studyInstanceUID: u.study, seriesInstanceUID: u.series, sopInstanceUID: u.sop, frameNumbers: [2, 17],
    });
    assert.equal(frames.length, 2);
    assert.ok(toBuf(frames[0]).equals(px.frame(2)), 'frame 2 bytes');
    assert.ok(toBuf(frames[1]).equals(px.frame(17)), 'frame 17 bytes');
    assert.ok(!px.frame(2).equals(px.frame(17)), 'the cine frames differ (the test can tell them apart)');

    const ct = uids[files.ct[3]];
    const ctPx = nativePixelData(fs.readFileSync(files.ct[3]));
    const [f1] = await client.retrieveInstanceFrames({
      studyInstanceUID: ct.study, seriesInstanceUID: ct.series, sopInstanceUID: ct.sop, frameNumbers: [1],
    });
    assert.equal(toBuf(f1).length, 512 * 512 * 2);
    assert.ok(toBuf(f1).equals(ctPx.frame(1)), 'CT frame 1 bytes');
  });

  test('retrieveInstanceRendered: JPEG by default, PNG on request', async () => {
    const u = uids[files.cr];
    const jpeg = toBuf(await client.retrieveInstanceRendered({ studyInstanceUID: u.study, seriesInstanceUID: u.series, sopInstanceUID: u.sop }));
    assert.ok(isJpeg(jpeg), 'JPEG magic FF D8');
    const png = toBuf(await client.retrieveInstanceRendered({
      studyInstanceUID: u.study, seriesInstanceUID: u.series, sopInstanceUID: u.sop, mediaTypes: [{ mediaType: 'image/png' }],
    }));
    assert.ok(isPng(png), 'PNG signature');
    // the CR is 1760 x 2140 with square pixels: the full render keeps that size
    assert.deepEqual([pngSize(png).width, pngSize(png).height], [1760, 2140]);
    const small = toBuf(await client.retrieveInstanceRendered({
      studyInstanceUID: u.study, seriesInstanceUID: u.series, sopInstanceUID: u.sop,
      mediaTypes: [{ mediaType: 'image/jpeg' }], queryParams: { viewport: '176,214' },
    }));
    assert.deepEqual([jpegSize(small).width, jpegSize(small).height], [176, 214]);
  });

  test('retrieveInstanceFramesRendered renders the requested frame', async () => {
    const u = uids[files.us];
    const get = async (n) => toBuf(await client.retrieveInstanceFramesRendered({
      studyInstanceUID: u.study, seriesInstanceUID: u.series, sopInstanceUID: u.sop, frameNumbers: [n],
      mediaTypes: [{ mediaType: 'image/png' }],
    }));
    const f1 = await get(1);
    const f15 = await get(15);
    assert.ok(isPng(f1) && isPng(f15));
    assert.deepEqual([pngSize(f1).width, pngSize(f1).height], [640, 480]);
    assert.ok(!f1.equals(f15), 'different frames render differently');
    const jpeg = toBuf(await client.retrieveInstanceFramesRendered({
      studyInstanceUID: u.study, seriesInstanceUID: u.series, sopInstanceUID: u.sop, frameNumbers: [3],
      queryParams: { quality: '80' },
    }));
    assert.ok(isJpeg(jpeg), 'default rendered frame is JPEG');
  });

  test('retrieveInstanceThumbnail fits the thumbnail box', async () => {
    const u = uids[files.ct[0]];
    const t = toBuf(await client.retrieveInstanceThumbnail({ studyInstanceUID: u.study, seriesInstanceUID: u.series, sopInstanceUID: u.sop }));
    assert.ok(isJpeg(t), 'thumbnail is JPEG by default');
    const { width, height } = jpegSize(t);
    assert.ok(width <= 192 && height <= 192 && Math.max(width, height) >= 100, `thumbnail size ${width}x${height}`);
    const p = toBuf(await client.retrieveInstanceThumbnail({
      studyInstanceUID: u.study, seriesInstanceUID: u.series, sopInstanceUID: u.sop, mediaTypes: [{ mediaType: 'image/png' }],
    }));
    assert.ok(isPng(p));
  });
});
