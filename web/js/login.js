// SPDX-License-Identifier: MIT
// login.js: the login page. POST /api/login with the user name and password; on success the
// server sets its HttpOnly session cookie and the page goes back to where the user was going
// (?next=, same-origin paths only). Refusals in words: wrong credentials (401, one answer for a
// wrong name or password), too many attempts (429, with the wait from Retry-After).
import { safeNext, jsonOf, markShareTab } from './session.js';

const $ = (s) => document.querySelector(s);
const next = safeNext(new URLSearchParams(location.search).get('next') || '/');
const form = $('#login');
const err = $('#login-error');
const submit = $('#login-submit');
let lockTimer = null;

function say(text) {
  err.textContent = text;
}

// A lock-out countdown: the button stays disabled until Retry-After has passed.
function lockFor(seconds) {
  clearInterval(lockTimer);
  let left = Math.max(1, Math.ceil(seconds));
  const tick = () => {
    if (left <= 0) {
      clearInterval(lockTimer);
      submit.disabled = false;
      say('You can try again now.');
      return;
    }
    submit.disabled = true;
    say(`Too many attempts: try again in ${left} s.`);
    left--;
  };
  tick();
  lockTimer = setInterval(tick, 1000);
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const username = $('#username').value.trim();
  const password = $('#password').value;
  if (!username || !password) {
    say(!username ? 'Enter your user name.' : 'Enter your password.');
    (!username ? $('#username') : $('#password')).focus();
    return;
  }
  submit.disabled = true;
  say('');
  form.setAttribute('aria-busy', 'true');
  let r;
  try {
    r = await fetch('/api/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ username, password }),
      cache: 'no-store',
    });
  } catch {
    submit.disabled = false;
    form.removeAttribute('aria-busy');
    say('The server cannot be reached. Check the connection and try again.');
    return;
  }
  form.removeAttribute('aria-busy');
  if (r.ok) {
    markShareTab(false);
    say('');
    form.dataset.state = 'done';
    location.replace(next);
    return;
  }
  const j = await jsonOf(r);
  submit.disabled = false;
  $('#password').value = '';
  if (r.status === 401) {
    say('Wrong user name or password.');
    $('#password').focus();
  } else if (r.status === 429) {
    const ra = Number(r.headers.get('Retry-After'));
    if (Number.isFinite(ra) && ra > 0) lockFor(ra);
    else say('Too many attempts: try again later.');
  } else {
    say(`Logging in failed: ${j.message || `${r.status} ${r.statusText}`}.`);
  }
});

$('#username').focus();
