// SPDX-License-Identifier: MIT
// dicom.js: DICOMweb access for the viewer (QIDO-RS, metadata, tiles, rendered, MPR) and DICOM
// JSON helpers. Every request goes to the server that served the page.

export const BASE = '/dicomweb';

export const TAG = {
  PatientName: '00100010', PatientID: '00100020', PatientBirthDate: '00100030', PatientSex: '00100040',
  StudyDate: '00080020', StudyTime: '00080030', AccessionNumber: '00080050', StudyDescription: '00081030',
  ModalitiesInStudy: '00080061', StudyInstanceUID: '0020000D', SeriesInstanceUID: '0020000E',
  SOPInstanceUID: '00080018', Modality: '00080060', SeriesDescription: '0008103E', SeriesNumber: '00200011',
  InstanceNumber: '00200013', NumberOfStudyRelatedSeries: '00201206', NumberOfStudyRelatedInstances: '00201208',
  NumberOfSeriesRelatedInstances: '00201209', NumberOfFrames: '00280008', Rows: '00280010', Columns: '00280011',
  PixelSpacing: '00280030', ImagerPixelSpacing: '00181164', ImagePositionPatient: '00200032',
  ImageOrientationPatient: '00200037', SliceLocation: '00201041', SliceThickness: '00180050',
  WindowCenter: '00281050', WindowWidth: '00281051', WindowExplanation: '00281055',
  PhotometricInterpretation: '00280004', SamplesPerPixel: '00280002', FrameTime: '00181063',
  RecommendedDisplayFrameRate: '00082144', CineRate: '00180040', BodyPartExamined: '00180015',
  InstitutionName: '00080080',
};

export const val = (o, tag, i = 0) => o?.[tag]?.Value?.[i];
export const vals = (o, tag) => o?.[tag]?.Value || [];
export function str(o, tag) {
  const v = val(o, tag);
  if (v == null) return '';
  if (typeof v === 'object') return v.Alphabetic || v.Ideographic || '';
  return String(v);
}
// "Demo^Phantom" -> "Demo, Phantom"
export function personName(o, tag = TAG.PatientName) {
  const s = str(o, tag);
  const p = s.split('^').filter(Boolean);
  return p.length > 1 ? `${p[0]}, ${p.slice(1).join(' ')}` : p[0] || '';
}
// 20240301 -> 2024-03-01
export function dicomDate(s) {
  return /^\d{8}$/.test(s || '') ? `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}` : s || '';
}

export class HttpError extends Error {
  constructor(url, status, message) {
    super(message || `HTTP ${status}`);
    this.url = url;
    this.status = status;
  }
}

// Every request of the viewer goes through apiFetch, so that the answers that concern the whole
// session are handled in one place (app.js sets the hook): 401 (the session has expired: log in
// again) and 410 (a shared link was revoked or has expired while it is being viewed).
let responseHook = null;
export function setResponseHook(fn) { responseHook = fn; }

export async function apiFetch(url, opts) {
  const r = await fetch(url, opts);
  if (responseHook && (r.status === 401 || r.status === 410)) responseHook(r.clone(), url);
  return r;
}

// What the current credential allows beyond viewing (a share link without the download
// permission gets 403 for raw frames; app.js clears rawFrames for such sessions).
export const access = { rawFrames: true };

// The server's JSON error message when it sent one.
async function errorOf(url, r) {
  let msg = `${r.status} ${r.statusText}`;
  try {
    const j = await r.json();
    if (j && j.message) msg = `${r.status}: ${j.message}`;
  } catch { /* not JSON */ }
  return new HttpError(url, r.status, msg);
}

export async function getJson(url, { signal, accept = 'application/dicom+json' } = {}) {
  let r;
  try {
    r = await apiFetch(url, { headers: { Accept: accept }, signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new HttpError(url, 0, 'the server cannot be reached');
  }
  if (!r.ok) throw await errorOf(url, r);
  const total = /(\d+) additional results/.exec(r.headers.get('Warning') || '');
  const j = await r.json();
  if (Array.isArray(j)) j.more = total ? Number(total[1]) : 0;
  return j;
}

export const studyUrl = (st) => `${BASE}/studies/${st}`;
export const seriesUrl = (st, se) => `${studyUrl(st)}/series/${se}`;
export const instanceUrl = (st, se, sop) => `${seriesUrl(st, se)}/instances/${sop}`;

// QIDO-RS study search. q: {name, id, from, to, modality, accession, limit, offset, fuzzy}
export function searchStudies(q, opts) {
  const p = new URLSearchParams();
  if (q.name) p.set('PatientName', /[*?]/.test(q.name) ? q.name : `${q.name}*`);
  if (q.id) p.set('PatientID', /[*?]/.test(q.id) ? q.id : `${q.id}*`);
  if (q.accession) p.set('AccessionNumber', q.accession);
  if (q.modality) p.set('ModalitiesInStudy', q.modality);
  const d = (s) => (s || '').replace(/-/g, '');
  if (q.from || q.to) p.set('StudyDate', q.from === q.to ? d(q.from) : `${d(q.from)}-${d(q.to)}`);
  if (q.fuzzy) p.set('fuzzymatching', 'true');
  p.set('limit', String(q.limit || 25));
  p.set('offset', String(q.offset || 0));
  p.append('includefield', '00081030');
  return getJson(`${BASE}/studies?${p}`, opts);
}

export const getSeries = (st, opts) => getJson(`${studyUrl(st)}/series`, opts);
export const getStudy = (st, opts) =>
  getJson(`${BASE}/studies?StudyInstanceUID=${st}&includefield=00081030`, opts).then((a) => a[0] || null);
export const getInstances = (st, se, { limit, fields = [] } = {}, opts) => {
  const p = new URLSearchParams();
  for (const f of fields) p.append('includefield', f);
  if (limit) p.set('limit', String(limit));
  return getJson(`${seriesUrl(st, se)}/instances?${p}`, opts);
};
export const getInstanceMetadata = (st, se, sop, opts) =>
  getJson(`${instanceUrl(st, se, sop)}/metadata`, opts).then((a) => a[0]);
export const getPyramid = (st, se, sop, frame, opts) =>
  getJson(`${instanceUrl(st, se, sop)}/frames/${frame}/tiles`, { ...opts, accept: 'application/json' });

// A window as the server's URL segment: "c,w" (rounded to 0.01) or "default".
export function windowSeg(w) {
  if (!w) return 'default';
  const f = (x) => String(Math.round(x * 100) / 100);
  return `${f(w.center)},${f(w.width)}`;
}
