// SPDX-License-Identifier: MIT
// admin.js: the administration page (/admin.html). It first asks who is using it (GET /api/me):
// nobody -> the login page (coming back here afterwards); a user or token that is not an admin ->
// "Administrators only", and no other request is made; an admin -> four sections:
//   Audit log    GET /api/audit?limit=N (newest first): a filter over the rows (in the page),
//                "Load more" (a bigger limit), and the export /api/audit?format=jsonl (a download);
//   Users        GET /api/users, POST /api/users, DELETE /api/users/{name};
//   API tokens   GET /api/tokens, POST /api/tokens (the token is shown once, with Copy),
//                DELETE /api/tokens/{id} (revoke);
//   Share links  GET /api/shares (every study), DELETE /api/shares/{id} (revoke).
// Every request is same-origin with the session cookie (or whatever credential the browser
// sends); state-changing ones send Content-Type: application/json (the browser adds Origin,
// which the server checks). Refusals are shown in the server's words (its JSON "message").
// Deleting and revoking ask first, in the row itself ("Yes, …" / "Keep").
import { whoAmI, loginUrl, jsonOf } from './session.js';
import { copyFromInput } from './clipboard.js';

const $ = (s) => document.querySelector(s);
const SELF = '/admin.html';

function el(tag, props, ...kids) {
  const e = Object.assign(document.createElement(tag), props || {});
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

const state = { me: null, lost: false, tab: null };

// ---------------------------------------------------------------- requests

// One /api request. Resolves {ok, status, j (the JSON body or {}), msg (the refusal in words)};
// never rejects except on abort. A 401 means the session has ended: the page says so.
async function api(url, { method = 'GET', body, signal } = {}) {
  const opts = { method, headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin', signal };
  if (method !== 'GET' && method !== 'HEAD') {
    opts.headers['Content-Type'] = 'application/json';
    if (body !== undefined) opts.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(url, opts);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    return { ok: false, status: 0, j: {}, msg: 'the server cannot be reached; check the connection and try again' };
  }
  const j = r.status === 204 || method === 'HEAD' ? {} : await jsonOf(r);
  if (r.status === 401) sessionLost();
  let msg = '';
  if (!r.ok) {
    msg = j.message || `${r.status} ${r.statusText}`;
    if (r.status === 401) msg = 'your session has ended: log in again';
  }
  return { ok: r.ok, status: r.status, j, msg };
}

function sessionLost() {
  if (state.lost) return;
  state.lost = true;
  $('#session-login').href = loginUrl(SELF + location.hash);
  $('#session-lost').hidden = false;
}

function say(node, text, kind = '') {
  node.className = `status${kind ? ` ${kind}` : ''}`;
  node.textContent = text || '';
}

// ---------------------------------------------------------------- formatting

const pad = (n, w = 2) => String(n).padStart(w, '0');

// Local time "2026-03-05 14:07:09" (the reader's time zone), and the UTC time for a tooltip.
function localTime(iso, seconds = true) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return iso || '';
  const s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return seconds ? `${s}:${pad(d.getSeconds())}` : s;
}
function utcTitle(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return '';
  return `${d.toISOString().replace('T', ' ').replace(/\.000Z$/, 'Z').replace(/Z$/, ' UTC')}`;
}
function timeCell(iso, seconds = true) {
  return el('td', { className: 'time', textContent: localTime(iso, seconds), title: utcTitle(iso) });
}

function shortUid(uid) {
  const u = String(uid || '');
  return u.length > 22 ? `${u.slice(0, 10)}…${u.slice(-8)}` : u;
}

function statusClass(code) {
  const c = Number(code);
  if (c >= 200 && c < 300) return 'code-2xx';
  if (c >= 300 && c < 400) return 'code-3xx';
  if (c >= 400 && c < 500) return 'code-4xx';
  if (c >= 500) return 'code-5xx';
  return 'code-other';
}

// ---------------------------------------------------------------- two-step confirmation

// Replaces an action cell with "question [Yes, …] [Keep]"; run() does the change and resolves
// {ok, msg}; on success done() reloads, on failure the message stays in the cell and in `status`.
function confirmIn(cell, { question, yesText, run, done, status }) {
  const old = [...cell.childNodes];
  const q = el('span', { className: 'q', textContent: `${question} ` });
  const yes = el('button', { type: 'button', className: 'danger confirm', textContent: yesText });
  const no = el('button', { type: 'button', className: 'keep', textContent: 'Keep' });
  cell.replaceChildren(q, yes, no);
  no.addEventListener('click', () => {
    cell.replaceChildren(...old);
    old.find((n) => n.tagName === 'BUTTON')?.focus();
  });
  yes.addEventListener('click', async () => {
    yes.disabled = true;
    no.disabled = true;
    const res = await run();
    if (res.ok) {
      done();
      return;
    }
    say(status, `Not done: ${res.msg}.`, 'error');
    cell.replaceChildren(...old);
  });
  yes.focus();
}

// ---------------------------------------------------------------- 1. audit log

const audit = { limit: 100, rows: [], busy: false, loads: 0 };
const AUDIT_STEP = 100;
const AUDIT_MAX = 100000;

async function loadAudit() {
  const table = $('#audit');
  const status = $('#audit-status');
  audit.busy = true;
  table.dataset.state = 'loading';
  $('#audit-more').disabled = true;
  $('#audit-refresh').disabled = true;
  say(status, 'Loading the audit log…');
  const res = await api(`/api/audit?limit=${audit.limit}`);
  audit.busy = false;
  $('#audit-refresh').disabled = false;
  if (!res.ok || !Array.isArray(res.j)) {
    table.dataset.state = 'error';
    say(status, `The audit log cannot be loaded: ${res.msg || 'the answer is not a list'}.`, 'error');
    $('#audit-more').disabled = false;
    return;
  }
  audit.rows = res.j;
  audit.loads++;
  $('#audit-more').disabled = false;
  $('#audit-more').hidden = audit.rows.length < audit.limit || audit.limit >= AUDIT_MAX;
  renderAudit();
  table.dataset.state = 'ready';
  table.dataset.loads = String(audit.loads);
}

function auditText(a) {
  return [localTime(a.time), a.time, a.actor, a.client, a.action, a.target, a.status].join(' ').toLowerCase();
}

function renderAudit() {
  const words = $('#audit-filter').value.trim().toLowerCase().split(/\s+/).filter(Boolean);
  const shown = words.length ? audit.rows.filter((a) => { const t = auditText(a); return words.every((w) => t.includes(w)); }) : audit.rows;
  $('#audit tbody').replaceChildren(...shown.map((a) => {
    const tr = el('tr');
    tr.dataset.seq = String(a.seq ?? '');
    tr.dataset.action = a.action || '';
    tr.append(
      timeCell(a.time),
      el('td', { className: 'actor', textContent: a.actor || '' }),
      el('td', { className: 'client', textContent: a.client || '' }),
      el('td', { className: 'action', textContent: a.action || '' }),
      el('td', { className: 'target', textContent: a.target || '' }),
      el('td', { className: `code ${statusClass(a.status)}`, textContent: String(a.status ?? '') }),
    );
    return tr;
  }));
  const n = audit.rows.length;
  const newest = n ? ` (newest first${n >= audit.limit ? `; the latest ${n}` : ''})` : '';
  let text = n ? `${n} entr${n === 1 ? 'y' : 'ies'}${newest}.` : 'The audit log is empty.';
  if (words.length) text = `${shown.length} of ${n} entr${n === 1 ? 'y matches' : 'ies match'} the filter.`;
  say($('#audit-status'), text);
  $('#audit').dataset.shown = String(shown.length);
}

function bindAudit() {
  $('#audit-filter').addEventListener('input', renderAudit);
  $('#audit-refresh').addEventListener('click', loadAudit);
  $('#audit-more').addEventListener('click', () => {
    audit.limit = Math.min(AUDIT_MAX, audit.limit + Math.max(AUDIT_STEP, audit.limit));
    loadAudit();
  });
}

// ---------------------------------------------------------------- 2. users

async function loadUsers() {
  const table = $('#users');
  table.dataset.state = 'loading';
  const res = await api('/api/users');
  if (!res.ok || !Array.isArray(res.j)) {
    table.dataset.state = 'error';
    say($('#users-status'), `The users cannot be loaded: ${res.msg || 'the answer is not a list'}.`, 'error');
    return;
  }
  const users = res.j.slice().sort((a, b) => String(a.username).localeCompare(String(b.username)));
  $('#users tbody').replaceChildren(...users.map(userRow));
  table.dataset.state = 'ready';
  table.dataset.count = String(users.length);
}

function userRow(u) {
  const you = state.me?.kind === 'user' && state.me.username === u.username;
  const tr = el('tr');
  tr.dataset.username = u.username;
  const name = el('td', { className: 'name', textContent: u.username });
  if (you) name.append(el('span', { className: 'dim you', textContent: ' (you)' }));
  const act = el('td', { className: 'act' });
  const del = el('button', { type: 'button', className: 'delete', textContent: 'Delete' });
  del.addEventListener('click', () => confirmIn(act, {
    question: `Delete ${u.username}?`,
    yesText: 'Yes, delete',
    status: $('#users-status'),
    run: () => api(`/api/users/${encodeURIComponent(u.username)}`, { method: 'DELETE' }),
    done: () => {
      say($('#users-status'), `User ${u.username} deleted.`, 'ok');
      loadUsers();
    },
  }));
  act.append(del);
  tr.append(name, el('td', { className: `role role-${u.role}`, textContent: u.role }), timeCell(u.created, false), act);
  return tr;
}

function bindUsers() {
  const form = $('#user-form');
  const err = $('#user-error');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const username = $('#user-name').value.trim();
    const role = $('#user-role').value;
    const password = $('#user-pw').value;
    const again = $('#user-pw2').value;
    const fail = (text, field) => { say(err, text, 'error'); field.focus(); };
    if (!username) return fail('Enter a user name.', $('#user-name'));
    if (!/^[A-Za-z0-9._@-]{1,64}$/.test(username)) return fail('A user name is 1 to 64 letters, digits, ".", "_", "@" or "-".', $('#user-name'));
    if (password.length < 8) return fail('The password needs at least 8 characters.', $('#user-pw'));
    if (password !== again) return fail('The two passwords differ: type the same password twice.', $('#user-pw2'));
    say(err, '');
    const btn = $('#user-add');
    btn.disabled = true;
    form.setAttribute('aria-busy', 'true');
    const res = await api('/api/users', { method: 'POST', body: { username, role, password } });
    btn.disabled = false;
    form.removeAttribute('aria-busy');
    $('#user-pw').value = '';
    $('#user-pw2').value = '';
    if (!res.ok) {
      say(err, `The user was not added: ${res.msg}.`, 'error');
      return;
    }
    form.reset();
    say($('#users-status'), `User ${res.j.username || username} (${res.j.role || role}) added.`, 'ok');
    loadUsers();
  });
}

// ---------------------------------------------------------------- 3. API tokens

async function loadTokens() {
  const table = $('#tokens');
  table.dataset.state = 'loading';
  const res = await api('/api/tokens');
  if (!res.ok || !Array.isArray(res.j)) {
    table.dataset.state = 'error';
    say($('#tokens-status'), `The tokens cannot be loaded: ${res.msg || 'the answer is not a list'}.`, 'error');
    return;
  }
  // active first, then newest first
  const list = res.j.slice().sort((a, b) => (a.revoked - b.revoked) || String(b.created).localeCompare(String(a.created)));
  $('#tokens tbody').replaceChildren(...list.map(tokenRow));
  if (!list.length) $('#tokens tbody').append(el('tr', {}, el('td', { colSpan: 6, className: 'dim', textContent: 'No API token yet.' })));
  table.dataset.state = 'ready';
  table.dataset.count = String(list.length);
}

function tokenRow(t) {
  const tr = el('tr', { className: t.revoked ? 'revoked' : '' });
  tr.dataset.id = t.id;
  tr.dataset.state = t.revoked ? 'revoked' : 'active';
  const act = el('td', { className: 'act' });
  if (!t.revoked) {
    const b = el('button', { type: 'button', className: 'revoke', textContent: 'Revoke' });
    b.addEventListener('click', () => confirmIn(act, {
      question: `Revoke ${t.name}?`,
      yesText: 'Yes, revoke',
      status: $('#tokens-status'),
      run: () => api(`/api/tokens/${encodeURIComponent(t.id)}`, { method: 'DELETE' }),
      done: () => {
        say($('#tokens-status'), `Token ${t.name} revoked: it no longer works.`, 'ok');
        loadTokens();
      },
    }));
    act.append(b);
  }
  tr.append(
    el('td', { className: 'name', textContent: t.name, title: `id ${t.id}` }),
    el('td', { textContent: t.scope }),
    el('td', { textContent: t.created_by || '' }),
    timeCell(t.created, false),
    el('td', { className: `state state-${t.revoked ? 'revoked' : 'active'}`, textContent: t.revoked ? 'revoked' : 'active' }),
    act,
  );
  return tr;
}

function hideToken() {
  $('#token-value').value = '';
  $('#token-copied').textContent = '';
  $('#token-result').hidden = true;
}

function copyToken() {
  return copyFromInput($('#token-value'), $('#token-copied'), 'token');
}

function bindTokens() {
  const form = $('#token-form');
  const err = $('#token-error');
  $('#token-copy').addEventListener('click', copyToken);
  $('#token-done').addEventListener('click', () => {
    hideToken();
    $('#token-name').focus();
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = $('#token-name').value.trim();
    const scope = $('#token-scope').value;
    if (!name) {
      say(err, 'Give the token a name (what or who it is for).', 'error');
      $('#token-name').focus();
      return;
    }
    say(err, '');
    hideToken();
    const btn = $('#token-create');
    btn.disabled = true;
    const res = await api('/api/tokens', { method: 'POST', body: { name, scope } });
    btn.disabled = false;
    if (!res.ok || !res.j.token) {
      say(err, `The token was not created: ${res.msg || 'the answer has no token'}.`, 'error');
      return;
    }
    form.reset();
    const box = $('#token-result');
    box.dataset.id = res.j.id || '';
    $('#token-value').value = res.j.token;
    box.hidden = false;
    say($('#tokens-status'), `Token ${res.j.name || name} (${res.j.scope || scope}) created.`, 'ok');
    $('#token-value').focus();
    $('#token-value').select();
    loadTokens();
  });
}

// ---------------------------------------------------------------- 4. share links

const shares = { list: [] };
const STATE_WORDS = { active: 'active', expired: 'expired', revoked: 'revoked', 'used up': 'used up', locked: 'locked (wrong codes)' };

async function loadShares() {
  const table = $('#shares');
  table.dataset.state = 'loading';
  $('#shares-refresh').disabled = true;
  const res = await api('/api/shares');
  $('#shares-refresh').disabled = false;
  if (!res.ok || !Array.isArray(res.j)) {
    table.dataset.state = 'error';
    say($('#shares-status'), `The share links cannot be loaded: ${res.msg || 'the answer is not a list'}.`, 'error');
    return;
  }
  shares.list = res.j.slice().sort((a, b) => String(b.created).localeCompare(String(a.created)));
  renderShares();
  table.dataset.state = 'ready';
  table.dataset.count = String(shares.list.length);
}

function renderShares() {
  const onlyActive = $('#shares-active').checked;
  const list = onlyActive ? shares.list.filter((l) => l.state === 'active') : shares.list;
  const tbody = $('#shares tbody');
  tbody.replaceChildren(...list.map(shareRow));
  const active = shares.list.filter((l) => l.state === 'active').length;
  const n = shares.list.length;
  say($('#shares-status'), n ? `${n} link${n === 1 ? '' : 's'}, ${active} active.` : 'No study has been shared yet.');
  if (!list.length && n) tbody.append(el('tr', {}, el('td', { colSpan: 9, className: 'dim', textContent: 'No active link.' })));
}

function shareRow(l) {
  const tr = el('tr');
  tr.dataset.id = l.id;
  tr.dataset.state = l.state;
  tr.dataset.study = l.study;
  const scope = l.series?.length ? `${l.series.length} series of study ${l.study}` : `whole study ${l.study}`;
  const perms = (l.permissions || ['view']).join(' + ');
  const opens = `${l.opens ?? 0} / ${l.max_opens ? l.max_opens : '∞'}`;
  const act = el('td', { className: 'act' });
  if (l.state === 'active') {
    const b = el('button', { type: 'button', className: 'revoke', textContent: 'Revoke' });
    b.addEventListener('click', () => confirmIn(act, {
      question: 'Revoke this link?',
      yesText: 'Yes, revoke',
      status: $('#shares-status'),
      run: () => api(`/api/shares/${encodeURIComponent(l.id)}`, { method: 'DELETE' }),
      done: async () => {
        await loadShares();
        say($('#shares-status'), 'Link revoked: whoever holds it can no longer open the study.', 'ok');
      },
    }));
    act.append(b);
  }
  tr.append(
    el('td', { className: 'uid', textContent: shortUid(l.study) + (l.series?.length ? ` (${l.series.length} series)` : ''), title: scope }),
    el('td', { textContent: l.created_by || '' }),
    timeCell(l.created, false),
    timeCell(l.expires, false),
    el('td', { className: 'num', textContent: opens }),
    el('td', { textContent: l.pin ? 'yes' : 'no' }),
    el('td', { textContent: perms }),
    el('td', { className: `state state-${String(l.state).replace(/\s+/g, '-')}`, textContent: STATE_WORDS[l.state] || l.state }),
    act,
  );
  return tr;
}

function bindShares() {
  $('#shares-refresh').addEventListener('click', loadShares);
  $('#shares-active').addEventListener('change', () => renderShares());
}

// ---------------------------------------------------------------- tabs

const TABS = ['audit', 'users', 'tokens', 'shares'];
const LOADERS = { audit: loadAudit, users: loadUsers, tokens: loadTokens, shares: loadShares };

// Shows a section; its data is (re)loaded each time it is shown (audit entries and link states
// change by themselves), except the audit log while a load is in flight.
function show(tab, { focus = false } = {}) {
  if (!TABS.includes(tab)) tab = 'audit';
  for (const t of TABS) {
    const b = $(`#tab-${t}`);
    const on = t === tab;
    b.setAttribute('aria-selected', String(on));
    b.tabIndex = on ? 0 : -1;
    $(`#panel-${t}`).hidden = !on;
  }
  if (focus) $(`#tab-${tab}`).focus();
  state.tab = tab;
  if (location.hash !== `#${tab}`) history.replaceState(null, '', `#${tab}`);
  if (tab === 'audit' && audit.busy) return;
  LOADERS[tab]();
}

function bindTabs() {
  for (const t of TABS) $(`#tab-${t}`).addEventListener('click', () => show(t));
  $('.admin-tabs').addEventListener('keydown', (e) => {
    const i = TABS.indexOf(state.tab);
    let j = -1;
    if (e.key === 'ArrowRight') j = (i + 1) % TABS.length;
    else if (e.key === 'ArrowLeft') j = (i + TABS.length - 1) % TABS.length;
    else if (e.key === 'Home') j = 0;
    else if (e.key === 'End') j = TABS.length - 1;
    if (j < 0) return;
    e.preventDefault();
    show(TABS[j], { focus: true });
  });
  window.addEventListener('hashchange', () => {
    const t = location.hash.slice(1);
    if (TABS.includes(t) && t !== state.tab) show(t);
  });
}

// ---------------------------------------------------------------- start

async function logout() {
  $('#logout-btn').disabled = true;
  try {
    await fetch('/api/logout', { method: 'POST', headers: { 'Content-Type': 'application/json' }, cache: 'no-store', credentials: 'same-origin' });
  } catch { /* the cookie ends with the session anyway */ }
  location.replace('/login.html');
}

function deny(me, status) {
  $('#admin-loading').hidden = true;
  const msg = $('#admin-denied-msg');
  if (status === 410) msg.textContent = `This page is for administrators. ${me?.message ? `The server says: ${me.message}.` : ''}`.trim();
  else if (me?.kind === 'user') msg.textContent = `This page is for administrators. You are signed in as ${me.username}, with the ${me.role} role.`;
  else if (me?.kind === 'token') msg.textContent = `This page is for administrators. The API token in use (${me.name}) has the ${me.scope} scope, not admin.`;
  else if (me?.kind === 'share') msg.textContent = 'This page is for administrators. You are viewing a shared study, which gives access to that study only.';
  $('#admin-denied').hidden = false;
  document.body.dataset.state = 'denied';
}

async function start() {
  $('#logout-btn').addEventListener('click', logout);
  const { status, me } = await whoAmI();
  if (status === 401) {
    document.body.dataset.state = 'login';
    location.replace(loginUrl(SELF + location.hash));
    return;
  }
  if (status === 410) return deny(me, status);
  if (status !== 200 || !me) {
    say($('#admin-loading-msg'), status
      ? `The server answered ${status} to "who am I": ${me?.message || 'try again later'}.`
      : 'The server cannot be reached. Reload the page to try again.', 'error');
    document.body.dataset.state = 'error';
    return;
  }
  state.me = me;
  if (me.kind === 'user') {
    $('#who').textContent = me.username;
    $('#who').title = `Logged in as ${me.username} (${me.role})`;
    $('#who').hidden = false;
    $('#logout-btn').hidden = false;
  }
  const isAdmin = (me.kind === 'user' && me.role === 'admin') || (me.kind === 'token' && me.scope === 'admin');
  if (!isAdmin) return deny(me, status);
  $('#admin-loading').hidden = true;
  $('#admin').hidden = false;
  document.body.dataset.state = 'admin';
  bindTabs();
  bindAudit();
  bindUsers();
  bindTokens();
  bindShares();
  show(location.hash.slice(1));
}

start();
