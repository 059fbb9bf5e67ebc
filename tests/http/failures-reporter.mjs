// SPDX-License-Identifier: MIT
// A node:test reporter that prints nothing until the end, then every failed test with its error
// and the first lines of its stack. It runs next to the TAP reporter (package.json) so that the
// reason of a failure is in the last lines of a long CI log, where it is read.
export default async function* failures(source) {
  const failed = [];
  for await (const ev of source) {
    if (ev.type !== 'test:fail') continue;
    const err = ev.data.details?.error;
    const cause = err?.cause ?? err;
    // a suite fails because its tests did; those are listed on their own
    if (err?.failureType === 'subtestsFailed') continue;
    const where = ev.data.file ? `${ev.data.file.split('/').pop()}:${ev.data.line}` : '';
    const msg = String(cause?.message ?? cause ?? 'failed').split('\n').slice(0, 12).join('\n    ');
    const stack = String(cause?.stack ?? '').split('\n').filter((l) => /^\s+at .*file:\/\//.test(l)).slice(0, 4);
    failed.push(`✖ ${ev.data.name} (${where})\n    ${msg}${stack.length ? `\n${stack.join('\n')}` : ''}`);
  }
  if (failed.length) yield `\n# ${failed.length} failed:\n${failed.join('\n')}\n`;
}
