// SPDX-License-Identifier: MIT
// clipboard.js: copies the text of a read-only input (a share link, a new API token) and says
// how it went in `note`. Without clipboard permission (or outside a secure context) the text is
// selected instead, so that the user can copy it by hand.
export async function copyFromInput(input, note, what) {
  try {
    await navigator.clipboard.writeText(input.value);
    note.textContent = 'Copied to the clipboard.';
    return;
  } catch { /* no clipboard permission (or not a secure context): select the text */ }
  input.focus();
  input.select();
  input.setSelectionRange(0, input.value.length);
  let ok = false;
  try { ok = document.execCommand('copy'); } catch { ok = false; }
  note.textContent = ok ? 'Copied to the clipboard.' : `The ${what} is selected: copy it with Ctrl+C (or long-press and Copy).`;
}
