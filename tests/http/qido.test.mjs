// QIDO-RS (PS3.18 10.6): matching, includefield, paging, computed attributes, flat resources
// and errors, on the demo studies (imported with `tessera import`) plus synthetic patients.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  useServer, client, demo, tempDir, runTessera, first, value, pn, uidsOf, warningOf, assertJsonError, T,
} from './harness.mjs';
import { syntheticInstance, readUids } from './dicom.mjs';

const R = '2.25.7346001';
// Synthetic patients: [patient, id, study, date, [[series, modality, instances]]]
const PATIENTS = [
  { name: 'DOE^JOHN', id: 'QIDO-P1', study: `${R}.1`, date: '20200315', desc: 'Head CT', series: [[`${R}.1.1`, 'CT', 2]] },
  { name: 'Doe^Jane', id: 'QIDO-P2', study: `${R}.2`, date: '20201231', desc: 'Brain MR', series: [[`${R}.2.1`, 'MR', 2], [`${R}.2.2`, 'OT', 1]] },
  { name: 'SMITH^ANNA', id: 'QIDO-P3', study: `${R}.3`, date: '20210101', desc: 'Echo', series: [[`${R}.3.1`, 'US', 1]] },
  { name: 'MCDOE^PETER', id: 'QIDO-P4', study: `${R}.4`, date: '20191231', desc: 'Chest CT', series: [[`${R}.4.1`, 'CT', 1]] },
];
// Stored through STOW-RS instead of the import.
const STOWED = { name: 'DOEBLE^X', id: 'QIDO-P5', study: `${R}.5`, date: '20200601', desc: 'Knee MR', series: [[`${R}.5.1`, 'MR', 1]] };

function instancesOf(p) {
  const out = [];
  p.series.forEach(([series, modality, n], si) => {
    for (let i = 1; i <= n; i++) {
      out.push(syntheticInstance({
        patientName: p.name, patientId: p.id, study: p.study, studyDate: p.date, studyDescription: p.desc,
        series, modality, seriesNumber: si + 1, instanceNumber: i, sop: `${series}.${i}`, seed: i,
      }));
    }
  });
  return out;
}

describe('QIDO-RS', () => {
  let dataDir;
  let d;
  let importResult;
  const srv = useServer(async () => {
    d = await demo();
    dataDir = tempDir('tessera-qido-data-');
    const synth = tempDir('tessera-qido-synth-');
    PATIENTS.forEach((p) => instancesOf(p).forEach((b, i) => fs.writeFileSync(path.join(synth, `${p.id}_${i}.dcm`), b)));
    importResult = await runTessera(['import', '--data', dataDir, d.dir, synth]);
    return { dataDir };
  });

  const demoStudy = {};
  let c;
  before(async () => {
    c = client(srv);
    for (const k of ['ct', 'cr', 'us']) demoStudy[k] = readUids(fs.readFileSync(d[k][0])).study;
    const r = await c.stow(instancesOf(STOWED));
    assert.equal(r.status, 200, `STOW of the synthetic patient: ${r.text()}`);
  });

  const ALL_STUDIES = () => [...PATIENTS.map((p) => p.study), STOWED.study, demoStudy.ct, demoStudy.cr, demoStudy.us].sort();
  const studies = async (qs) => uidsOf(await c.json(`/dicomweb/studies${qs}`), T.StudyInstanceUID);

  describe('import', () => {
    test('tessera import stored the demo and the synthetic files (exit 0)', () => {
      assert.equal(importResult.code, 0, `import exit: ${importResult.stdout}${importResult.stderr}`);
      assert.match(importResult.stdout + importResult.stderr, /\b129 stored/);
    });

    test('tessera import exits 1 and names a refused file', async () => {
      const dir = tempDir('tessera-import-bad-');
      const bad = path.join(dir, 'not_dicom.dcm');
      fs.writeFileSync(bad, 'this is not DICOM at all, just text that is long enough to matter');
      fs.writeFileSync(path.join(dir, 'good.dcm'), instancesOf(PATIENTS[2])[0]);
      const r = await runTessera(['import', '--data', tempDir('tessera-import-bad-data-'), dir]);
      assert.equal(r.code, 1, `exit code: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout + r.stderr, /not_dicom\.dcm/);
      assert.match(r.stdout + r.stderr, /\b1 stored/);
      assert.match(r.stdout + r.stderr, /\b1 refused/);
    });
  });

  describe('QIDO-RS studies matching', () => {
    test('all studies, as application/dicom+json with absolute RetrieveURLs', async () => {
      const r = await c.get('/dicomweb/studies');
      assert.equal(r.status, 200);
      assert.match(r.headers['content-type'], /^application\/dicom\+json/);
      const j = r.json();
      assert.deepEqual(uidsOf(j, T.StudyInstanceUID), ALL_STUDIES());
      for (const s of j) {
        assert.equal(first(s, T.RetrieveURL), `${srv.base}/studies/${first(s, T.StudyInstanceUID)}`);
        assert.equal(s[T.StudyInstanceUID].vr, 'UI');
      }
    });

    test('PatientName wildcards are case-insensitive', async () => {
      const want = [PATIENTS[0].study, PATIENTS[1].study, STOWED.study].sort();
      assert.deepEqual(await studies('?PatientName=DOE*'), want);
      assert.deepEqual(await studies('?PatientName=doe*'), want);
      assert.deepEqual(await studies('?PatientName=*DOE*'), [...want, PATIENTS[3].study].sort());
      assert.deepEqual(await studies('?PatientName=D%3FE%5EJ*'), [PATIENTS[0].study, PATIENTS[1].study].sort());
      assert.deepEqual(await studies('?PatientName=NOBODY*'), []);
      const j = await c.json('/dicomweb/studies?PatientName=SMITH*');
      assert.equal(j.length, 1);
      assert.equal(pn(j[0]), 'SMITH^ANNA');
      assert.equal(first(j[0], T.PatientID), 'QIDO-P3');
    });

    test('exact PatientID and single-value matching', async () => {
      assert.deepEqual(await studies('?PatientID=QIDO-P2'), [PATIENTS[1].study]);
      assert.deepEqual(await studies('?PatientID=QIDO-P'), []);
    });

    test('StudyDate ranges (inclusive, open-ended) and single dates', async () => {
      assert.deepEqual(await studies('?StudyDate=20200101-20201231'), [PATIENTS[0].study, PATIENTS[1].study, STOWED.study].sort());
      assert.deepEqual(await studies('?StudyDate=20201231'), [PATIENTS[1].study]);
      assert.deepEqual(await studies('?StudyDate=-20200101'), [PATIENTS[3].study]);
      assert.deepEqual(await studies('?StudyDate=20210101-'), [PATIENTS[2].study, demoStudy.ct, demoStudy.cr, demoStudy.us].sort());
      assert.deepEqual(await studies('?00080020=20200315'), [PATIENTS[0].study], 'tag as the key');
    });

    test('StudyInstanceUID list matching', async () => {
      assert.deepEqual(await studies(`?StudyInstanceUID=${PATIENTS[0].study},${PATIENTS[2].study}`), [PATIENTS[0].study, PATIENTS[2].study].sort());
      assert.deepEqual(await studies(`?StudyInstanceUID=${PATIENTS[0].study}`), [PATIENTS[0].study]);
      assert.deepEqual(await studies('?StudyInstanceUID=1.2.3.999'), []);
    });

    test('ModalitiesInStudy matches any series modality', async () => {
      assert.deepEqual(await studies('?ModalitiesInStudy=CT'), [PATIENTS[0].study, PATIENTS[3].study, demoStudy.ct].sort());
      assert.deepEqual(await studies('?ModalitiesInStudy=OT'), [PATIENTS[1].study]);
      assert.deepEqual(await studies('?ModalitiesInStudy=MR'), [PATIENTS[1].study, STOWED.study].sort());
    });

    test('combined keys are ANDed', async () => {
      assert.deepEqual(await studies('?PatientName=DOE*&ModalitiesInStudy=MR'), [PATIENTS[1].study, STOWED.study].sort());
      assert.deepEqual(await studies('?PatientName=DOE*&StudyDate=20200601'), [STOWED.study]);
    });
  });

  describe('QIDO-RS computed attributes', () => {
    test('study: NumberOfStudyRelatedSeries/Instances and ModalitiesInStudy', async () => {
      const [s2] = await c.json(`/dicomweb/studies?StudyInstanceUID=${PATIENTS[1].study}`);
      assert.equal(Number(first(s2, T.NumberOfStudyRelatedSeries)), 2);
      assert.equal(Number(first(s2, T.NumberOfStudyRelatedInstances)), 3);
      assert.deepEqual([...value(s2, T.ModalitiesInStudy)].sort(), ['MR', 'OT']);
      assert.equal(first(s2, T.StudyDate), '20201231');
      assert.equal(first(s2, T.StudyDescription), 'Brain MR');
      const [ct] = await c.json(`/dicomweb/studies?StudyInstanceUID=${demoStudy.ct}`);
      assert.equal(Number(first(ct, T.NumberOfStudyRelatedSeries)), 1);
      assert.equal(Number(first(ct, T.NumberOfStudyRelatedInstances)), 120);
      assert.deepEqual(value(ct, T.ModalitiesInStudy), ['CT']);
    });

    test('series: NumberOfSeriesRelatedInstances', async () => {
      const series = await c.json(`/dicomweb/studies/${PATIENTS[1].study}/series`);
      assert.equal(series.length, 2);
      const byUid = Object.fromEntries(series.map((s) => [first(s, T.SeriesInstanceUID), s]));
      assert.equal(Number(first(byUid[`${R}.2.1`], T.NumberOfSeriesRelatedInstances)), 2);
      assert.equal(first(byUid[`${R}.2.1`], T.Modality), 'MR');
      assert.equal(Number(first(byUid[`${R}.2.2`], T.NumberOfSeriesRelatedInstances)), 1);
      assert.equal(first(byUid[`${R}.2.2`], T.Modality), 'OT');
      const [ctSeries] = await c.json(`/dicomweb/studies/${demoStudy.ct}/series`);
      assert.equal(Number(first(ctSeries, T.NumberOfSeriesRelatedInstances)), 120);
    });
  });

  describe('QIDO-RS hierarchy and flat resources', () => {
    test('study/series/instances and study/instances', async () => {
      const inst = await c.json(`/dicomweb/studies/${PATIENTS[1].study}/series/${R}.2.1/instances`);
      assert.deepEqual(uidsOf(inst, T.SOPInstanceUID), [`${R}.2.1.1`, `${R}.2.1.2`]);
      for (const i of inst) {
        assert.equal(first(i, T.SOPClassUID), '1.2.840.10008.5.1.4.1.1.7');
        assert.equal(first(i, T.RetrieveURL), `${srv.base}/studies/${PATIENTS[1].study}/series/${R}.2.1/instances/${first(i, T.SOPInstanceUID)}`);
      }
      const all = await c.json(`/dicomweb/studies/${PATIENTS[1].study}/instances`);
      assert.deepEqual(uidsOf(all, T.SOPInstanceUID), [`${R}.2.1.1`, `${R}.2.1.2`, `${R}.2.2.1`]);
      const ct = await c.json(`/dicomweb/studies/${demoStudy.ct}/instances`);
      assert.equal(ct.length, 120);
    });

    test('flat /series and /instances with matching', async () => {
      const series = await c.json('/dicomweb/series');
      assert.equal(series.length, 9);
      const mr = await c.json('/dicomweb/series?Modality=MR');
      assert.deepEqual(uidsOf(mr, T.SeriesInstanceUID), [`${R}.2.1`, `${R}.5.1`]);
      const instances = await c.json('/dicomweb/instances');
      assert.equal(instances.length, 122 + 8);
      const p2 = await c.json('/dicomweb/instances?PatientID=QIDO-P2');
      assert.equal(p2.length, 3);
      const one = await c.json(`/dicomweb/instances?SOPInstanceUID=${R}.4.1.1`);
      assert.equal(one.length, 1);
      assert.equal(first(one[0], T.StudyInstanceUID), PATIENTS[3].study);
      const bySeries = await c.json(`/dicomweb/studies/${PATIENTS[1].study}/instances?SeriesInstanceUID=${R}.2.2`);
      assert.deepEqual(uidsOf(bySeries, T.SOPInstanceUID), [`${R}.2.2.1`]);
    });
  });

  describe('QIDO-RS includefield', () => {
    const path1 = () => `/dicomweb/studies/${demoStudy.ct}/instances`;
    test('default instance results leave out non-required attributes', async () => {
      const [i] = await c.json(`${path1()}?limit=1`);
      assert.equal(i['00200032'], undefined, 'ImagePositionPatient not in the default set');
      assert.equal(i['00280030'], undefined, 'PixelSpacing not in the default set');
    });

    test('includefield by keyword, by tag, repeated and comma-separated', async () => {
      let [i] = await c.json(`${path1()}?limit=1&includefield=ImagePositionPatient`);
      assert.equal(value(i, '00200032')?.length, 3, 'ImagePositionPatient has 3 values');
      [i] = await c.json(`${path1()}?limit=1&includefield=00280030`);
      assert.equal(value(i, '00280030')?.length, 2, 'PixelSpacing by tag');
      [i] = await c.json(`${path1()}?limit=1&includefield=ImagePositionPatient&includefield=00280030`);
      assert.ok(i['00200032'] && i['00280030'], 'repeated includefield');
      [i] = await c.json(`${path1()}?limit=1&includefield=ImagePositionPatient,PixelSpacing`);
      assert.ok(i['00200032'] && i['00280030'], 'comma-separated includefield');
    });

    test('includefield=all returns every indexed attribute', async () => {
      const [def] = await c.json(`${path1()}?limit=1`);
      const [all] = await c.json(`${path1()}?limit=1&includefield=all`);
      for (const k of Object.keys(def)) assert.ok(k in all, `includefield=all keeps ${k}`);
      for (const k of ['00200032', '00200037', '00280030', '00281050', '00281051', '00281052', '00281053']) {
        assert.ok(k in all, `includefield=all has ${k}`);
      }
      assert.ok(!(T.PixelData in all), 'no PixelData in QIDO results');
      const series = await c.json(`/dicomweb/studies/${demoStudy.ct}/series?includefield=all`);
      assert.equal(series.length, 1);
    });
  });

  describe('QIDO-RS paging', () => {
    test('limit and offset with the Warning header', async () => {
      const p = `/dicomweb/studies/${demoStudy.ct}/instances`;
      let r = await c.get(`${p}?limit=10`);
      assert.equal(r.status, 200);
      assert.equal(r.json().length, 10);
      assert.match(warningOf(r), /^299 .*There are 110 additional results/);
      r = await c.get(`${p}?limit=10&offset=115`);
      assert.equal(r.json().length, 5);
      assert.doesNotMatch(warningOf(r), /additional results/);
      r = await c.get(`${p}?offset=120`);
      assert.deepEqual(r.json(), []);
      r = await c.get(`${p}`);
      assert.equal(r.json().length, 120);
      assert.doesNotMatch(warningOf(r), /additional results/);
    });

    test('pages partition the result set', async () => {
      const p = `/dicomweb/studies/${demoStudy.ct}/instances`;
      const seen = [];
      for (let off = 0; off < 120; off += 50) {
        const page = await c.json(`${p}?limit=50&offset=${off}`);
        assert.equal(page.length, Math.min(50, 120 - off));
        seen.push(...page.map((i) => first(i, T.SOPInstanceUID)));
      }
      assert.equal(new Set(seen).size, 120, 'no instance on two pages');
      const all = await c.json(p);
      assert.deepEqual([...seen].sort(), uidsOf(all, T.SOPInstanceUID));
    });

    test('study-level paging', async () => {
      const r = await c.get('/dicomweb/studies?limit=3&offset=2');
      assert.equal(r.json().length, 3);
      assert.match(warningOf(r), /There are 3 additional results/);
    });
  });

  describe('QIDO-RS errors', () => {
    test('unknown study or series in the path: 404 JSON', async () => {
      assertJsonError(await c.get('/dicomweb/studies/1.2.3.4.5/series'), 404, 'unknown study series');
      assertJsonError(await c.get('/dicomweb/studies/1.2.3.4.5/instances'), 404, 'unknown study instances');
      assertJsonError(await c.get(`/dicomweb/studies/${PATIENTS[0].study}/series/1.2.3.4.5/instances`), 404, 'unknown series');
    });

    for (const [qs, what] of [
      ['limit=-1', 'negative limit'],
      ['limit=abc', 'non-numeric limit'],
      ['offset=-5', 'negative offset'],
      ['StudyDate=2020', 'StudyDate=2020'],
      ['StudyDate=20200101-20191301', 'invalid month in range'],
      ['FooBar=1', 'unknown attribute name'],
      ['includefield=NotAKeyword', 'unknown includefield keyword'],
      ['PatientName=%ZZ', 'malformed percent-encoding'],
    ]) {
      test(`400 for ${what} (${qs})`, async () => {
        assertJsonError(await c.get(`/dicomweb/studies?${qs}`), 400, qs);
      });
    }

    test('406 when JSON is not acceptable', async () => {
      const r = await c.get('/dicomweb/studies', { Accept: 'application/xml' });
      assertJsonError(r, 406, 'Accept: application/xml');
    });
  });
});
