// SPDX-License-Identifier: MIT
// sharedialog.js: the "Share this study" dialog (loaded on first use). Creates a share link
// (POST /api/shares: expiry, optional access code and maximum opens, view or view + download,
// whole study or selected series), shows the link once with a Copy button and its QR code (the
// server's SVG, shown as an image so that nothing in it can run), and lists the study's links
// (GET /api/shares?study=) with their state and a Revoke button (DELETE /api/shares/{id}).
import { apiFetch, TAG, val, str, personName, dicomDate } from './dicom.js';
import { when, jsonOf } from './session.js';
import { copyFromInput } from './clipboard.js';

const $ = (s) => document.querySelector(s);
const dlg = $('#share');
const form = $('#share-form');
let ctx = null; // {st, study, series}
let qrUrl = null;
let listCtrl = null;
let bound = false;

function el(tag, props, ...kids) {
  const e = Object.assign(document.createElement(tag), props || {});
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

// A random code of n digits, uniform (rejection sampling over 32-bit values).
export function randomPin(n = 6) {
  const lim = 10 ** n;
  const top = Math.floor(2 ** 32 / lim) * lim;
  const a = new Uint32Array(1);
  do crypto.getRandomValues(a); while (a[0] >= top);
  return String(a[0] % lim).padStart(n, '0');
}

function setError(text) {
  $('#share-error').textContent = text || '';
}

function clearResult() {
  if (qrUrl) URL.revokeObjectURL(qrUrl);
  qrUrl = null;
  $('#share-qr').replaceChildren();
  $('#share-url').value = '';
  $('#share-copied').textContent = '';
  $('#share-result').hidden = true;
  form.hidden = false;
}

function resetForm() {
  form.reset();
  setError('');
  $('#share-series').replaceChildren(...ctx.series.map((s) => {
    const se = val(s, TAG.SeriesInstanceUID);
    const cb = el('input', { type: 'checkbox', name: 'series', value: se, checked: true, disabled: true });
    const label = `${str(s, TAG.Modality)} #${str(s, TAG.SeriesNumber)} ${str(s, TAG.SeriesDescription)}`.trim();
    return el('label', {}, cb, ` ${label}`);
  }));
  scopeChanged();
}

function scopeChanged() {
  const series = form.elements.scope.value === 'series';
  for (const cb of $('#share-series').querySelectorAll('input')) cb.disabled = !series;
}

function bind() {
  if (bound) return;
  bound = true;
  $('#share-pin-gen').addEventListener('click', () => {
    $('#share-pin').value = randomPin(6);
    $('#share-pin').focus();
  });
  for (const r of form.querySelectorAll('input[name=scope]')) r.addEventListener('change', scopeChanged);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    create();
  });
  $('#share-copy').addEventListener('click', copy);
  $('#share-another').addEventListener('click', () => {
    clearResult();
    resetForm();
    $('#share-create').focus();
  });
  dlg.addEventListener('close', () => {
    clearResult();
    listCtrl?.abort();
  });
}

async function create() {
  setError('');
  const f = form.elements;
  const body = { study: ctx.st, expires_in_hours: Number(f.expiry.value) || 168, permissions: ['view'] };
  const pin = $('#share-pin').value.replace(/\s+/g, '');
  if (pin) {
    if (!/^[0-9]{4,12}$/.test(pin)) {
      setError('The access code must be 4 to 12 digits (or empty for none).');
      $('#share-pin').focus();
      return;
    }
    body.pin = pin;
  }
  const max = $('#share-max').value.trim();
  if (max) {
    const n = Number(max);
    if (!Number.isInteger(n) || n < 1) {
      setError('Maximum opens must be a whole number of at least 1 (or empty for no limit).');
      $('#share-max').focus();
      return;
    }
    body.max_opens = n;
  }
  if ($('#share-download').checked) body.permissions.push('download');
  if (f.scope.value === 'series') {
    const se = [...$('#share-series').querySelectorAll('input:checked')].map((c) => c.value);
    if (!se.length) {
      setError('Select at least one series, or share the whole study.');
      return;
    }
    if (se.length < ctx.series.length) body.series = se;
  }
  const btn = $('#share-create');
  btn.disabled = true;
  let r;
  try {
    r = await apiFetch('/api/shares', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
    });
  } catch {
    btn.disabled = false;
    setError('The server cannot be reached. Try again.');
    return;
  }
  btn.disabled = false;
  const j = await jsonOf(r);
  if (!r.ok) {
    if (r.status === 403) setError('You are not allowed to share studies with this account.');
    else if (r.status !== 401) setError(`The link was not created: ${j.message || `${r.status} ${r.statusText}`}.`);
    return;
  }
  showResult(j, pin);
  loadLinks(j.id);
}

function showResult(j, pin) {
  form.hidden = true;
  const res = $('#share-result');
  res.hidden = false;
  res.dataset.id = j.id || '';
  $('#share-url').value = j.url || '';
  $('#share-result-expires').textContent = when(j.expires);
  $('#share-result-pin-note').textContent = pin ? ' and the access code' : '';
  $('#share-result-pin').hidden = !pin;
  $('#share-pin-value').textContent = pin || '';
  // The QR code: the server's SVG shown through an <img> (an SVG image never runs scripts and
  // needs no inline style; CSP allows blob: images).
  if (j.qr_svg) {
    qrUrl = URL.createObjectURL(new Blob([j.qr_svg], { type: 'image/svg+xml' }));
    $('#share-qr').replaceChildren(el('img', { src: qrUrl, alt: 'QR code of the link: scan it with a phone camera' }));
  }
  $('#share-url').focus();
  $('#share-url').select();
}

function copy() {
  return copyFromInput($('#share-url'), $('#share-copied'), 'link');
}

const STATE_WORDS = { active: 'active', expired: 'expired', revoked: 'revoked', 'used up': 'used up', locked: 'locked (wrong codes)' };

async function loadLinks(highlight) {
  const status = $('#share-links-status');
  const tbody = $('#share-links tbody');
  listCtrl?.abort();
  listCtrl = new AbortController();
  status.className = 'status';
  status.textContent = 'Loading the links…';
  let r;
  try {
    r = await apiFetch(`/api/shares?study=${encodeURIComponent(ctx.st)}`, { headers: { Accept: 'application/json' }, signal: listCtrl.signal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') return;
    status.className = 'status error';
    status.textContent = 'The links cannot be loaded: the server cannot be reached.';
    return;
  }
  const j = await jsonOf(r);
  if (!r.ok || !Array.isArray(j)) {
    status.className = 'status error';
    status.textContent = `The links cannot be loaded: ${j.message || `${r.status} ${r.statusText}`}.`;
    return;
  }
  const active = j.filter((l) => l.state === 'active').length;
  status.textContent = j.length ? `${j.length} link${j.length > 1 ? 's' : ''}, ${active} active.` : 'No link to this study yet.';
  tbody.replaceChildren(...j.map((l) => row(l, l.id === highlight)));
  $('#share-links').dataset.count = String(j.length);
}

function row(l, isNew) {
  const tr = el('tr', { className: isNew ? 'new' : '' });
  tr.dataset.id = l.id;
  tr.dataset.state = l.state;
  const access = [
    l.pin ? 'PIN' : 'no PIN',
    (l.permissions || []).includes('download') ? 'view + download' : 'view only',
    l.series?.length ? `${l.series.length} series` : 'whole study',
  ].join(', ');
  const opens = l.max_opens ? `${l.opens ?? 0} / ${l.max_opens}` : String(l.opens ?? 0);
  const action = el('td', { className: 'act' });
  if (l.state === 'active' || l.state === 'locked') {
    const b = el('button', { type: 'button', className: 'revoke', textContent: 'Revoke' });
    b.addEventListener('click', () => confirmRevoke(action, l));
    action.append(b);
  }
  tr.append(
    el('td', { textContent: `${when(l.created)}${l.created_by ? ` by ${l.created_by}` : ''}` }),
    el('td', { textContent: when(l.expires) }),
    el('td', { textContent: opens }),
    el('td', { textContent: access }),
    el('td', { className: `state state-${String(l.state).replace(/\s+/g, '-')}`, textContent: STATE_WORDS[l.state] || l.state }),
    action,
  );
  return tr;
}

// Two steps: "Revoke" asks, "Yes, revoke" does it.
function confirmRevoke(cell, l) {
  const yes = el('button', { type: 'button', className: 'danger confirm-revoke', textContent: 'Yes, revoke' });
  const no = el('button', { type: 'button', className: 'keep', textContent: 'Keep' });
  const q = el('span', { className: 'q', textContent: 'Revoke this link? ' });
  cell.replaceChildren(q, yes, no);
  no.addEventListener('click', () => loadLinks());
  yes.addEventListener('click', async () => {
    yes.disabled = true;
    no.disabled = true;
    let r;
    try {
      r = await apiFetch(`/api/shares/${encodeURIComponent(l.id)}`, { method: 'DELETE' });
    } catch {
      q.textContent = 'The server cannot be reached. ';
      yes.disabled = false;
      no.disabled = false;
      return;
    }
    if (!r.ok && r.status !== 401) {
      const j = await jsonOf(r);
      q.textContent = `Not revoked: ${j.message || r.status}. `;
      yes.disabled = false;
      no.disabled = false;
      return;
    }
    loadLinks();
  });
  yes.focus();
}

// Opens the dialog for a study: {st, study (QIDO JSON), series (QIDO JSON list)}.
export function openShareDialog(c) {
  ctx = c;
  bind();
  clearResult();
  resetForm();
  const s = c.study;
  $('#share-study').textContent = s ? [personName(s), dicomDate(str(s, TAG.StudyDate)), str(s, TAG.StudyDescription)].filter(Boolean).join(' · ') : c.st;
  $('#share-links tbody').replaceChildren();
  if (!dlg.open) dlg.showModal();
  loadLinks();
}
