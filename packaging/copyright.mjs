// Writes the packages' copyright file (machine-readable Debian format) to stdout: the agent's own
// license, the bundled Node runtime's, and the license text of every npm package the bundle holds
// (read from the bundle's source map, so it follows the code) or the addon compiles in.
//   usage: node packaging/copyright.mjs <bundle.js.map> <package compiled into the addon>...
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const [mapPath, ...addonPackages] = process.argv.slice(2);
if (!mapPath) {
  console.error('usage: node packaging/copyright.mjs <bundle.js.map> <addon package>...');
  process.exit(2);
}

function fail(msg) {
  console.error(`copyright: ${msg}`);
  process.exit(1);
}

/** Package directories (…/node_modules/<name> or …/node_modules/@scope/<name>) the bundle was built from. */
function bundledPackageDirs(map) {
  let sources;
  try {
    sources = JSON.parse(readFileSync(map, 'utf8')).sources;
  } catch (err) {
    fail(`cannot read the source map ${map}: ${err.message} (run npm run build)`);
  }
  const dirs = new Set();
  for (const src of sources) {
    const at = src.lastIndexOf('node_modules/');
    if (at < 0) continue;
    const rest = src.slice(at + 'node_modules/'.length).split('/');
    const name = rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
    // Source maps of a package's own build (e.g. @js-sdsl/.build-data/copied-source/…) point into
    // hidden directories that are not packages; the package itself appears under its real name too.
    if (name.split('/').some((part) => part.startsWith('.'))) continue;
    dirs.add(resolve(dirname(map), src.slice(0, at), 'node_modules', name));
  }
  return [...dirs];
}

function licenseText(dir, license) {
  const files = readdirSync(dir);
  // LICENSE, LICENSE.md, COPYING…, or for dual-licensed packages the file named after the license used (LICENSE.MIT).
  const file =
    files.find((f) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(f)) ??
    files.find((f) => license !== undefined && f.toLowerCase() === `license.${license.toLowerCase()}`);
  return file ? readFileSync(join(dir, file), 'utf8') : undefined;
}

/** A DEP-5 multi-line value: each line indented by one space, empty lines as " .". */
function block(text) {
  return text
    .replace(/\r/g, '')
    .trimEnd()
    .split('\n')
    .map((l) => (l.trim() === '' ? ' .' : ` ${l.trimEnd()}`))
    .join('\n');
}

function copyrightHolders(text, pkg) {
  const lines = (text ?? '').split('\n').filter((l) => /^\s*copyright\s+(\(c\)|©|\d{4})/i.test(l));
  if (lines.length) return lines.map((l) => l.trim().replace(/^copyright\s+/i, '')).join('\n ');
  const author = typeof pkg.author === 'string' ? pkg.author : pkg.author?.name;
  return author ?? `the ${pkg.name} authors`;
}

// Packages whose package.json names no license, with the license their LICENSE file states (reviewed
// by hand; the text itself is copied from that file). A new version must be reviewed again.
const REVIEWED_LICENSES = {
  '@nornagon/put': 'MIT', // 0.0.8, a dbus-next dependency: LICENSE says "released under the MIT/X11 license"
  jsbi: 'Apache-2.0', // 2.0.5, a dbus-next dependency: LICENSE is the Apache License 2.0 text
  'map-stream': 'MIT', // 0.1.0, via dbus-next's event-stream: LICENCE is the MIT text
  // 0.0.11, via event-stream: dual MIT/Apache-2.0 with both texts in one LICENSE file; Apache-2.0 is used so the
  // copyright file refers to the common licence instead of repeating its full text.
  'pause-stream': 'Apache-2.0',
};

function packageParagraph(dir, usedIn) {
  const manifest = join(dir, 'package.json');
  if (!existsSync(manifest)) fail(`${manifest} is missing (run npm ci)`);
  const pkg = JSON.parse(readFileSync(manifest, 'utf8'));
  const license = typeof pkg.license === 'string' ? pkg.license : REVIEWED_LICENSES[pkg.name];
  if (!license) fail(`${manifest} names no license; check the package before shipping it`);
  const text = licenseText(dir, license);
  const lines = [
    `Files: node_modules/${pkg.name}/*`,
    `Copyright: ${copyrightHolders(text, pkg)}`,
    `Comment: ${pkg.name} ${pkg.version}, ${usedIn}`,
  ];
  // Apache-2.0 section 4(d): a NOTICE file travels with the code.
  const notice = readdirSync(dir).find((f) => /^notice(\.(md|txt))?$/i.test(f));
  if (notice) lines.push(` .\n NOTICE:\n${block(readFileSync(join(dir, notice), 'utf8'))}`);
  // Apache-2.0 texts carry no copyright line of their own: the shared paragraph below has the terms.
  if (license === 'Apache-2.0' || !text) {
    if (!text && license !== 'Apache-2.0') fail(`${dir} has no license file for ${license}; check it before shipping`);
    lines.push(`License: ${license}`);
  } else {
    lines.push(`License: ${license}`, block(text));
  }
  return lines.join('\n');
}

const paragraphs = [
  [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    'Upstream-Name: node-health-agent',
  ].join('\n'),
  [
    'Files: *',
    'Copyright: the node-health-agent authors',
    'License: Apache-2.0',
  ].join('\n'),
  [
    'Files: usr/lib/node-health-agent/node',
    'Copyright: Node.js contributors and the authors of the libraries Node.js includes',
    'Comment: The Node.js runtime, unmodified apart from stripped symbols. Node.js is under the MIT',
    ' license; the libraries it includes are under the licenses listed, with their texts, in',
    ' /usr/share/doc/node-health-agent/LICENSE.node.',
    'License: MIT-and-bundled',
    ' See /usr/share/doc/node-health-agent/LICENSE.node.',
  ].join('\n'),
];

const seen = new Set();
for (const dir of bundledPackageDirs(mapPath).sort()) {
  if (seen.has(dir)) continue;
  seen.add(dir);
  paragraphs.push(packageParagraph(dir, 'bundled into /usr/lib/node-health-agent/node-health-agent.js'));
}
for (const dir of addonPackages) {
  paragraphs.push(packageParagraph(resolve(dir), 'compiled into /usr/lib/node-health-agent/node_health_native.node'));
}

paragraphs.push(
  [
    'License: Apache-2.0',
    ' Licensed under the Apache License, Version 2.0 (the "License"); you may not use',
    ' this software except in compliance with the License. You may obtain a copy of the',
    ' License at https://www.apache.org/licenses/LICENSE-2.0',
    ' .',
    ' Unless required by applicable law or agreed to in writing, software distributed',
    ' under the License is distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR',
    ' CONDITIONS OF ANY KIND, either express or implied. See the License for the',
    ' specific language governing permissions and limitations under the License.',
    ' .',
    ' On Debian systems, the complete text of the Apache License, Version 2.0 is in',
    ' /usr/share/common-licenses/Apache-2.0.',
  ].join('\n'),
);

process.stdout.write(`${paragraphs.join('\n\n')}\n`);
