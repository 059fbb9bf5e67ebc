// SPDX-License-Identifier: MIT
// app.js: the viewer's entry point. Routes (#/ the study list, #/study/{uid} a study), the study
// list (QIDO-RS search, sort, pages), the study view (series thumbnails, layouts, toolbar,
// keyboard) and the MPR layout. At start it asks who is using it (GET /api/me): nobody -> the
// login page; a user -> the full viewer with Share and Log out; a share link's session ->
// restricted mode (that study only: no study list, no search, no sharing, a banner saying until
// when). A 401 later (the session expired) goes back to the login page; a 410 (the shared link
// was revoked or has expired) replaces the view with that message in words.
import {
  TAG, val, str, personName, dicomDate, searchStudies, getSeries, getStudy, seriesUrl, setResponseHook, access,
} from './dicom.js';
import {
  whoAmI, loginUrl, isShareTab, markShareTab, goneText, when, jsonOf,
} from './session.js';
import { Viewport } from './viewport.js';
import { StackSource } from './stack.js';

const $ = (s) => document.querySelector(s);
const app = {
  tool: 'scroll', viewports: [], active: null, layout: '1x1', study: null, series: [], mpr: null,
  me: null, share: null, canShare: false, gone: false, leaving: false,
};
window.tessera = app; // for tests and debugging

function el(tag, props, ...kids) {
  const e = Object.assign(document.createElement(tag), props || {});
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

function showError(text) {
  const e = $('#error');
  e.textContent = text;
  e.hidden = !text;
}

// ---------------------------------------------------------------- routing

function route() {
  if (app.gone || app.leaving) return;
  const m = /^#\/study\/([0-9.]+)(?:\/(mpr))?/.exec(location.hash);
  showError('');
  if (app.share) {
    // restricted mode: the shared study is the only place to go
    if (!m || m[1] !== app.share.study) location.replace(`#/study/${app.share.study}`);
    else openStudy(m[1]);
    return;
  }
  if (m) openStudy(m[1]);
  else showList();
}

// ---------------------------------------------------------------- session

function toLogin() {
  if (app.leaving) return;
  app.leaving = true;
  location.replace(loginUrl());
}

// The page is replaced by a message (a share link that was revoked, expired, used up...).
function showGone(title, text, state = 'gone') {
  if (app.gone) return;
  app.gone = true;
  cine(false);
  closeStudy();
  if ($('#share')?.open) $('#share').close();
  $('#list-view')?.remove();
  for (const id of ['#study-view', '#share-btn', '#logout-btn', '#who', '#admin-link', '#share-banner']) {
    const e = $(id);
    if (e) e.hidden = true;
  }
  $('#title').textContent = 'Shared study';
  $('#gone-title').textContent = title;
  $('#gone-text').textContent = text;
  $('#gone-view').hidden = false;
  $('#gone-view').dataset.state = state;
  document.title = `Tessera — ${title}`;
}

function linkGone(message) {
  const g = goneText(message);
  showGone(g.title, g.text);
}

// No credential any more: a link recipient is told to open the link again, a user logs in.
function sessionLost() {
  if (app.share || isShareTab()) {
    showGone('This shared session has ended.', 'Open the link you were sent again to view the study.', 'ended');
  } else toLogin();
}

async function checkSession() {
  if (app.gone || app.leaving) return;
  const { status, me } = await whoAmI();
  if (status === 410) linkGone(me?.message);
  else if (status === 401) sessionLost();
}

setResponseHook(async (r) => {
  if (r.status === 401) sessionLost();
  else if (r.status === 410 && (app.share || isShareTab())) linkGone((await jsonOf(r)).message);
});

function enterRestricted(me) {
  app.share = me;
  markShareTab(true);
  access.rawFrames = (me.permissions || []).includes('download');
  document.body.classList.add('restricted');
  $('#list-view').remove(); // no study list, no search: not even hidden
  $('.brand').href = `#/study/${me.study}`;
  const b = $('#share-banner');
  const perm = access.rawFrames ? 'view and download' : 'view only';
  const until = new Date(me.expires);
  const short = Number.isNaN(until.getTime()) ? ''
    : until.toLocaleString(undefined, { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' });
  b.textContent = `Shared study (${perm})${short ? `, available until ${short}` : ''}.`;
  b.title = me.expires ? `This shared link is valid until ${when(me.expires)}.` : '';
  b.hidden = false;
  // notice an expiry or a revocation without waiting for the next image request
  const ms = Date.parse(me.expires) - Date.now();
  if (ms > 0 && ms < 2 ** 31 - 1000) setTimeout(checkSession, ms + 1000);
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') checkSession(); });
}

function enterUser(me) {
  markShareTab(false);
  app.canShare = me.kind === 'user' || (me.kind === 'token' && ['write', 'admin'].includes(me.scope));
  if (me.kind === 'user') {
    $('#who').textContent = me.username;
    $('#who').title = `Logged in as ${me.username} (${me.role})`;
    $('#who').hidden = false;
    $('#logout-btn').hidden = false;
    // the administration page (users, tokens, links, audit) is for admins only
    $('#admin-link').hidden = me.role !== 'admin';
  }
}

async function logout() {
  $('#logout-btn').disabled = true;
  try {
    await fetch('/api/logout', { method: 'POST', cache: 'no-store' });
  } catch { /* the cookie goes with the session anyway */ }
  app.leaving = true;
  location.replace('/login.html');
}

async function openShare() {
  if (!app.canShare || !app.study?.json) return;
  const { openShareDialog } = await import('./sharedialog.js');
  openShareDialog({ st: app.study.uid, study: app.study.json, series: app.series });
}

async function start() {
  bindList();
  bindToolbar();
  bindKeys();
  $('#logout-btn').addEventListener('click', logout);
  $('#share-btn').addEventListener('click', openShare);
  const { status, me } = await whoAmI();
  if (status === 401) return sessionLost();
  if (status === 410) return linkGone(me?.message);
  if (status === 200 && me?.kind === 'share') enterRestricted(me);
  else if (status === 200 && me) enterUser(me);
  else if (status !== 404) { // 404: a server without access control
    showError(status ? `The server answered ${status} to "who am I": ${me?.message || 'try again later'}.`
      : 'The server cannot be reached. Reload the page to try again.');
    return;
  }
  app.me = me;
  window.addEventListener('hashchange', route);
  route();
}

// ---------------------------------------------------------------- study list

const list = { q: {}, offset: 0, limit: 25, rows: [], sort: { key: 'date', dir: -1 }, more: 0, ctrl: null };

function rowOf(s) {
  return {
    uid: val(s, TAG.StudyInstanceUID), name: personName(s), id: str(s, TAG.PatientID),
    date: dicomDate(str(s, TAG.StudyDate)), time: str(s, TAG.StudyTime),
    mod: (s[TAG.ModalitiesInStudy]?.Value || []).join(', '), desc: str(s, TAG.StudyDescription),
    acc: str(s, TAG.AccessionNumber), series: Number(val(s, TAG.NumberOfStudyRelatedSeries)) || 0,
    images: Number(val(s, TAG.NumberOfStudyRelatedInstances)) || 0,
  };
}

async function loadList() {
  const status = $('#list-status');
  status.className = 'status';
  status.textContent = 'Searching…';
  list.ctrl?.abort();
  list.ctrl = new AbortController();
  try {
    const res = await searchStudies({ ...list.q, limit: list.limit, offset: list.offset }, { signal: list.ctrl.signal });
    list.rows = res.map(rowOf);
    list.more = res.more;
    renderList();
    const from = list.rows.length ? list.offset + 1 : 0;
    status.textContent = list.rows.length
      ? `Studies ${from}–${list.offset + list.rows.length}${list.more ? ` of ${list.offset + list.rows.length + list.more}` : ''}`
      : 'No study matches.';
  } catch (e) {
    if (e.name === 'AbortError') return;
    status.className = 'status error';
    status.textContent = `The study list cannot be loaded: ${e.message}`;
  }
}

function renderList() {
  const { key, dir } = list.sort;
  const rows = [...list.rows].sort((a, b) => {
    const x = key === 'date' ? a.date + a.time : a[key];
    const y = key === 'date' ? b.date + b.time : b[key];
    return (typeof x === 'number' ? x - y : String(x).localeCompare(String(y))) * dir;
  });
  for (const th of document.querySelectorAll('#studies th')) {
    th.setAttribute('aria-sort', th.dataset.key === key ? (dir > 0 ? 'ascending' : 'descending') : 'none');
  }
  $('#studies tbody').replaceChildren(...rows.map((r) => {
    const tr = el('tr', { tabIndex: 0 });
    tr.dataset.uid = r.uid;
    const a = el('a', { href: `#/study/${r.uid}`, textContent: r.name || '(no name)' });
    tr.append(el('td', {}, a), el('td', { textContent: r.id }), el('td', { textContent: r.date }),
      el('td', { textContent: r.mod }), el('td', { className: 'wide', textContent: r.desc }),
      el('td', { className: 'wide', textContent: r.acc }), el('td', { className: 'wide', textContent: String(r.series) }),
      el('td', { textContent: String(r.images) }));
    tr.addEventListener('click', (e) => { if (e.target !== a) location.hash = `#/study/${r.uid}`; });
    tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') location.hash = `#/study/${r.uid}`; });
    return tr;
  }));
  $('#prev').disabled = list.offset === 0;
  $('#next').disabled = !list.more;
  $('#page').textContent = `Page ${Math.floor(list.offset / list.limit) + 1}`;
}

function showList() {
  closeStudy();
  $('#share-btn').hidden = true;
  $('#study-view').hidden = true;
  $('#list-view').hidden = false;
  $('#title').textContent = 'Studies';
  document.title = 'Tessera — studies';
  loadList();
}

function bindList() {
  const form = $('#search');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    list.q = Object.fromEntries(new FormData(form));
    list.offset = 0;
    loadList();
  });
  form.addEventListener('reset', () => setTimeout(() => form.requestSubmit(), 0));
  for (const th of document.querySelectorAll('#studies th')) {
    th.querySelector('button').addEventListener('click', () => {
      const k = th.dataset.key;
      list.sort = { key: k, dir: list.sort.key === k ? -list.sort.dir : 1 };
      renderList();
    });
  }
  $('#prev').addEventListener('click', () => { list.offset = Math.max(0, list.offset - list.limit); loadList(); });
  $('#next').addEventListener('click', () => { list.offset += list.limit; loadList(); });
  $('#per-page').addEventListener('change', (e) => { list.limit = Number(e.target.value); list.offset = 0; loadList(); });
}

// ---------------------------------------------------------------- study view

function closeStudy() {
  cine(false);
  for (const v of app.viewports) v.destroy();
  app.viewports = [];
  app.mpr?.destroy();
  app.mpr = null;
  app.study = null;
  $('#grid').replaceChildren();
  $('#series').replaceChildren();
}

async function openStudy(uid) {
  if (app.study?.uid === uid) return;
  closeStudy();
  app.study = { uid };
  const lv = $('#list-view');
  if (lv) lv.hidden = true;
  $('#study-view').hidden = false;
  $('#share-btn').hidden = true;
  $('#title').textContent = 'Loading study…';
  setLayout('1x1');
  const vp = app.viewports[0];
  vp.setMessage('Loading study…');
  try {
    const [study, series] = await Promise.all([getStudy(uid), getSeries(uid)]);
    if (app.study?.uid !== uid) return;
    if (!study) throw new Error(`no study ${uid} is stored`);
    app.study.json = study;
    series.sort((a, b) => (Number(val(a, TAG.SeriesNumber)) || 0) - (Number(val(b, TAG.SeriesNumber)) || 0));
    app.series = series;
    const title = `${personName(study) || '(no name)'} · ${str(study, TAG.PatientID)} · ${dicomDate(str(study, TAG.StudyDate))} · ${str(study, TAG.StudyDescription)}`;
    $('#title').textContent = title;
    document.title = `Tessera — ${personName(study)}`;
    renderSeries(uid, series);
    $('#share-btn').hidden = !app.canShare;
    if (!series.length) {
      vp.setMessage('This study has no series.', true);
      return;
    }
    // The first image first: the first series goes into the first viewport at once.
    loadSeries(vp, series[0]);
  } catch (e) {
    if (app.study?.uid !== uid) return;
    $('#title').textContent = 'Study not available';
    vp.setMessage(`This study cannot be shown: ${e.message}`, true);
    vp.host.dataset.state = 'error';
  }
}

function renderSeries(st, series) {
  $('#series').replaceChildren(...series.map((s) => {
    const se = val(s, TAG.SeriesInstanceUID);
    const n = val(s, TAG.NumberOfSeriesRelatedInstances);
    const label = `${str(s, TAG.Modality)} #${str(s, TAG.SeriesNumber)} ${str(s, TAG.SeriesDescription)} (${n})`;
    const b = el('button', { type: 'button', className: 'thumb', draggable: true, title: label },
      el('img', { src: `${seriesUrl(st, se)}/thumbnail?viewport=128,128`, alt: '', loading: 'lazy', draggable: false }),
      el('span', { textContent: label }));
    b.setAttribute('aria-label', `Show series ${label}`);
    b.dataset.series = se;
    b.addEventListener('click', () => loadSeries(app.active || app.viewports[0], s));
    b.addEventListener('dragstart', (e) => {
      e.dataTransfer.setData('application/x-tessera-series', se);
      e.dataTransfer.effectAllowed = 'copy';
    });
    return b;
  }));
}

function markSeries() {
  const uid = app.active?.src?.se;
  for (const b of document.querySelectorAll('.thumb')) b.classList.toggle('active', b.dataset.series === uid);
}

function loadSeries(vp, series) {
  if (app.layout === 'mpr') setLayout('1x1');
  if (!app.viewports.includes(vp)) vp = app.viewports[0];
  const se = val(series, TAG.SeriesInstanceUID);
  const src = new StackSource({ study: app.study.json, series, st: app.study.uid, se });
  activate(vp);
  vp.setSource(src).then(() => { updateToolbar(); markSeries(); });
}

function makeViewport() {
  const host = el('div');
  const vp = new Viewport(host, {
    onActivate: (v) => activate(v),
    onChange: (v) => { if (v === app.active) updateToolbar(); },
    tool: () => app.tool,
  });
  host.addEventListener('dragover', (e) => {
    if (e.dataTransfer.types.includes('application/x-tessera-series')) {
      e.preventDefault();
      host.classList.add('drop');
    }
  });
  host.addEventListener('dragleave', () => host.classList.remove('drop'));
  host.addEventListener('drop', (e) => {
    host.classList.remove('drop');
    const se = e.dataTransfer.getData('application/x-tessera-series');
    const s = app.series.find((x) => val(x, TAG.SeriesInstanceUID) === se);
    if (s) {
      e.preventDefault();
      loadSeries(vp, s);
    }
  });
  return vp;
}

function activate(vp) {
  if (app.active === vp) return;
  app.active = vp;
  for (const v of app.viewports) v.host.classList.toggle('active', v === vp);
  updateToolbar();
  markSeries();
}

function setLayout(layout) {
  const grid = $('#grid');
  const wasMpr = app.layout === 'mpr';
  const keep = wasMpr ? [] : app.viewports;
  if (layout === 'mpr') return openMpr();
  if (wasMpr) {
    for (const v of app.viewports) v.destroy();
    app.viewports = [];
    app.mpr?.destroy();
    app.mpr = null;
  }
  const n = { '1x1': 1, '1x2': 2, '2x2': 4 }[layout];
  const vps = keep.slice(0, n);
  for (const v of keep.slice(n)) v.destroy();
  while (vps.length < n) vps.push(makeViewport());
  app.viewports = vps;
  app.layout = layout;
  grid.className = `layout-${layout}`;
  grid.replaceChildren(...vps.map((v) => v.host));
  $('#viewer').classList.remove('mpr');
  if (!vps.includes(app.active)) { app.active = null; activate(vps[0]); }
  // fill new empty viewports with the next series
  vps.forEach((v, i) => {
    if (!v.src && app.series[i] && i > 0) loadSeries(v, app.series[i]);
    else if (!v.src && i > 0) v.setMessage('Drag a series here, or select the viewport and tap a series');
  });
  updateToolbar();
}

async function openMpr() {
  const { MprGroup } = await import('./mpr.js');
  const cur = app.active?.src;
  const series = cur?.series || app.series[0];
  if (!series) return;
  const se = val(series, TAG.SeriesInstanceUID);
  for (const v of app.viewports) v.destroy();
  app.mpr?.destroy();
  const group = new MprGroup({ st: app.study.uid, se, study: app.study.json, series });
  app.mpr = group;
  app.layout = 'mpr';
  app.viewports = group.planes.map(() => makeViewport());
  const grid = $('#grid');
  grid.className = 'layout-mpr';
  grid.replaceChildren(...app.viewports.map((v) => v.host));
  $('#viewer').classList.add('mpr');
  app.active = null;
  activate(app.viewports[0]);
  await Promise.all(group.planes.map((p, i) => {
    app.viewports[i].host.classList.add(`plane-${p.plane}`);
    app.viewports[i].host.dataset.plane = p.plane;
    return app.viewports[i].setSource(p);
  }));
  updateToolbar();
}

// ---------------------------------------------------------------- toolbar and keys

function updateToolbar() {
  for (const b of document.querySelectorAll('[data-layout]')) b.setAttribute('aria-pressed', String(b.dataset.layout === app.layout));
  for (const b of document.querySelectorAll('[data-tool]')) b.setAttribute('aria-pressed', String(b.dataset.tool === app.tool));
  const src = app.active?.src;
  const sel = $('#preset');
  const presets = src?.presets ? src.presets() : [];
  const sig = presets.map((p) => `${p.name}${p.center}${p.width}`).join('|');
  if (sel.dataset.sig !== sig) {
    sel.dataset.sig = sig;
    sel.replaceChildren(el('option', { value: '', textContent: 'W/L preset' }),
      ...presets.map((p, i) => el('option', { value: String(i), textContent: `${p.name} ${p.center}/${p.width}` })));
  }
  sel.disabled = !presets.length;
  app.presets = presets;
  $('#delete-btn').disabled = !app.active?.selection();
  const multi = src instanceof StackSource && src.count > 1;
  $('#cine').disabled = !multi;
  if (src instanceof StackSource) $('#fps').value = String(app.fpsSet ? $('#fps').value : src.frameRate());
}

function act(name) {
  const vp = app.active;
  if (name === 'fullscreen') {
    if (document.fullscreenElement) document.exitFullscreen();
    else $('#viewer').requestFullscreen?.().catch(() => {});
    return;
  }
  if (!vp) return;
  switch (name) {
    case 'invert': vp.toggleInvert(); break;
    case 'rotate': vp.rotate(90); break;
    case 'fliph': vp.flip(true); break;
    case 'flipv': vp.flip(false); break;
    case 'fit': vp.fit(); break;
    case 'actual': vp.actualSize(); break;
    case 'reset': vp.clearMeasures(); vp.reset(); break;
    case 'clear': vp.clearMeasures(); break;
    case 'undo': vp.deleteLast(); break;
    case 'delete': vp.deleteSelected(); break;
    case 'cancel':
      if (vp.editing) vp.cancelEdit();
      else if (vp.draft) vp.cancelDraft();
      else vp.select(null);
      break;
    case 'planes': app.mpr?.resetPlanes(); break;
    default:
  }
}

function setTool(t) {
  if (t !== app.tool) for (const v of app.viewports) v.cancelDraft();
  app.tool = t;
  updateToolbar();
}

let cineTimer = null;
function cine(on) {
  clearInterval(cineTimer);
  cineTimer = null;
  const b = $('#cine');
  b.textContent = on ? 'Pause' : 'Play';
  b.setAttribute('aria-pressed', String(!!on));
  if (!on) return;
  const fps = Math.max(1, Math.min(60, Number($('#fps').value) || 10));
  cineTimer = setInterval(() => {
    const vp = app.active;
    if (!vp?.src?.count) return;
    vp.setIndex((vp.src.index + 1) % vp.src.count);
  }, 1000 / fps);
}

function bindToolbar() {
  for (const b of document.querySelectorAll('[data-layout]')) b.addEventListener('click', () => setLayout(b.dataset.layout));
  for (const b of document.querySelectorAll('[data-tool]')) b.addEventListener('click', () => setTool(b.dataset.tool));
  for (const b of document.querySelectorAll('[data-act]')) b.addEventListener('click', () => act(b.dataset.act));
  $('#preset').addEventListener('change', (e) => {
    const p = app.presets[Number(e.target.value)];
    const vp = app.active;
    if (p && vp?.src?.setWindow) {
      vp.src.setWindow(p);
      vp.refresh();
    }
    e.target.value = '';
  });
  $('#cine').addEventListener('click', () => cine(!cineTimer));
  $('#fps').addEventListener('change', () => { app.fpsSet = true; if (cineTimer) cine(true); });
  const slab = () => {
    if (!app.mpr) return;
    app.mpr.slab = { thickness: Number($('#slab').value), mode: $('#slab-mode').value };
    for (const v of app.viewports) v.refresh();
  };
  $('#slab').addEventListener('change', slab);
  $('#slab-mode').addEventListener('change', slab);
  $('#help-btn').addEventListener('click', () => $('#help').showModal());
}

function bindKeys() {
  document.addEventListener('keydown', (e) => {
    if (e.target.closest('input, select, textarea, dialog') && e.key !== 'Escape') return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === '?') { $('#help').showModal(); e.preventDefault(); return; }
    if ($('#study-view').hidden) return;
    const vp = app.active;
    if (e.key === 'Escape') { // not prevented: it also closes the help
      if (!$('#help').open) act('cancel');
      return;
    }
    const keys = {
      ArrowUp: () => vp?.step(-1), ArrowLeft: () => vp?.step(-1), ArrowDown: () => vp?.step(1), ArrowRight: () => vp?.step(1),
      PageUp: () => vp?.step(-10), PageDown: () => vp?.step(10), Home: () => vp?.setIndex(0),
      End: () => vp?.setIndex((vp.src?.count || 1) - 1),
      s: () => setTool('scroll'), w: () => setTool('wl'), p: () => setTool('pan'), z: () => setTool('zoom'), l: () => setTool('length'),
      a: () => setTool('angle'), b: () => setTool('rect'), e: () => setTool('ellipse'),
      // the selected measurement, else the last one (Backspace) or all of them (Delete)
      Backspace: () => act(vp?.selection() ? 'delete' : 'undo'), o: () => act('planes'),
      i: () => act('invert'), r: () => act('rotate'), h: () => act('fliph'), v: () => act('flipv'), f: () => act('fit'),
      F: () => act('fullscreen'), 1: () => act('actual'), 0: () => act('reset'),
      Delete: () => act(vp?.selection() ? 'delete' : 'clear'),
      ' ': () => { if (!$('#cine').disabled) cine(!cineTimer); }, m: () => setLayout('mpr'),
    };
    const fn = keys[e.key];
    if (fn) {
      e.preventDefault();
      fn();
    }
  });
}

start();
