// SPDX-License-Identifier: MIT
// session.js: who is using the viewer (GET /api/me), where to log in, and share links as words.
// Used by the viewer (app.js), the login page (login.js) and the share landing page (share.js).
// Credentials are the server's HttpOnly session cookie (or a bearer token added by a client):
// nothing secret is kept in scripts or storage.

// GET /api/me -> {status, me}: status 200 with the credential's description, 401 without one,
// 410 when a share session's link was revoked or has expired (me.message says which).
export async function whoAmI() {
  let r;
  try {
    r = await fetch('/api/me', { headers: { Accept: 'application/json' }, cache: 'no-store' });
  } catch {
    return { status: 0, me: null };
  }
  let me = null;
  try { me = await r.json(); } catch { /* not JSON */ }
  return { status: r.status, me };
}

// A same-origin path to return to after logging in ("/", "/#/study/1.2.3"); anything else
// (another origin, "//host", a scheme) becomes "/".
export function safeNext(s) {
  if (typeof s !== 'string' || !s.startsWith('/') || s.startsWith('//') || /[\\\u0000-\u001f]/.test(s)) return '/';
  return s;
}

export function loginUrl(next = location.pathname + location.search + location.hash) {
  const n = safeNext(next);
  return n === '/' ? '/login.html' : `/login.html?next=${encodeURIComponent(n)}`;
}

// A share session remembers (for this tab only) that it came from a link, so that a lost
// session says "open the link again" instead of showing a login form to a link recipient.
const SHARE_KEY = 'tessera-share-session';
export function markShareTab(on) {
  try {
    if (on) sessionStorage.setItem(SHARE_KEY, '1');
    else sessionStorage.removeItem(SHARE_KEY);
  } catch { /* storage disabled */ }
}
export function isShareTab() {
  try { return sessionStorage.getItem(SHARE_KEY) === '1'; } catch { return false; }
}

// The server's refusal message of a share link in words for the person holding it.
export function goneText(message) {
  const m = String(message || '').toLowerCase();
  if (m.includes('revoked')) return { title: 'This link has been revoked.', text: 'The person who shared the study has withdrawn it. Ask them for a new link if you still need it.' };
  if (m.includes('expired')) return { title: 'This link has expired.', text: 'Shared links are valid for a limited time. Ask the person who shared the study for a new link.' };
  if (m.includes('used up')) return { title: 'This link has been used up.', text: 'It could be opened only a limited number of times. Ask the person who shared the study for a new link.' };
  if (m.includes('locked')) return { title: 'This link is locked.', text: 'A wrong access code was entered too many times. Ask the person who shared the study for a new link.' };
  if (m.includes('no such link')) return { title: 'This link does not exist.', text: 'Check that the whole link was copied, or ask the person who shared the study for a new one.' };
  return { title: 'This shared study is no longer available.', text: message ? `The server says: ${message}.` : '' };
}

// "Thu, 5 Dec 2026, 10:00" in the reader's locale and time zone.
export function when(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso || '';
  return d.toLocaleString(undefined, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' });
}

// The JSON body of an answer ({} when there is none).
export async function jsonOf(r) {
  try { return (await r.json()) || {}; } catch { return {}; }
}
