// SPDX-License-Identifier: MIT
// share.js: the landing page of a shared link. The token comes from location.hash and is removed
// from the address bar (and the history entry) at once; it stays only in this script's memory.
// POST /api/share/open {token[, pin]}: 200 sets the share session cookie and the viewer opens
// the study in restricted mode; 401 pin_required asks for the access code (the server's message
// says how many attempts are left); 404, 410 and 423 say in words why the link cannot be opened.
import { goneText, jsonOf, markShareTab } from './session.js';

const $ = (s) => document.querySelector(s);
const page = $('#share-page');
const heading = $('#share-heading');
const msg = $('#share-msg');
const form = $('#pin-form');
const pinInput = $('#pin');
const pinError = $('#pin-error');
const pinSubmit = $('#pin-submit');

const token = decodeURIComponent(location.hash.replace(/^#/, '')).trim();
// The token must not linger in the address bar, the history or a bookmark.
history.replaceState(null, '', location.pathname);

function state(s) {
  page.dataset.state = s;
}

function finalRefusal(j, status) {
  form.hidden = true;
  const g = goneText(j.message || (status === 404 ? 'no such link' : ''));
  heading.textContent = g.title;
  msg.textContent = g.text;
  state(status === 423 ? 'locked' : status === 404 ? 'unknown' : 'gone');
}

async function open(pin) {
  const body = { token };
  if (pin != null) body.pin = pin;
  let r;
  try {
    r = await fetch('/api/share/open', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
      cache: 'no-store',
    });
  } catch {
    msg.textContent = 'The server cannot be reached. Check the connection and try again.';
    state('offline');
    pinSubmit.disabled = false;
    return;
  }
  const j = await jsonOf(r);
  if (r.ok) {
    markShareTab(true);
    state('open');
    heading.textContent = 'Opening the shared study…';
    msg.textContent = '';
    form.hidden = true;
    const study = /^[0-9.]+$/.test(j.study || '') ? j.study : '';
    location.replace(study ? `/#/study/${study}` : '/');
    return;
  }
  pinSubmit.disabled = false;
  if (r.status === 401 && j.pin_required) {
    heading.textContent = 'This shared study is protected by an access code';
    msg.textContent = '';
    form.hidden = false;
    pinInput.value = '';
    // the first answer is "access code required"; later ones say the code was wrong
    pinError.textContent = pin == null ? '' : `${(j.message || 'wrong access code').replace(/^./, (c) => c.toUpperCase())}.`;
    state(pin == null ? 'pin' : 'pin-wrong');
    pinInput.focus();
    return;
  }
  if ([404, 410, 423].includes(r.status)) {
    finalRefusal(j, r.status);
    return;
  }
  heading.textContent = 'The shared study cannot be opened';
  msg.textContent = j.message ? `The server says: ${j.message}.` : `The server answered ${r.status} ${r.statusText}.`;
  state('error');
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const pin = pinInput.value.replace(/\s+/g, '');
  if (!/^[0-9]{4,12}$/.test(pin)) {
    pinError.textContent = 'The access code is 4 to 12 digits.';
    pinInput.focus();
    return;
  }
  pinSubmit.disabled = true;
  pinError.textContent = '';
  open(pin);
});

if (!/^[A-Za-z0-9_-]{16,}$/.test(token)) {
  heading.textContent = 'This page needs the whole link you were sent.';
  msg.textContent = 'Open the link from the message again (the address must end with # and a long code).';
  state('no-token');
} else {
  open(null);
}
