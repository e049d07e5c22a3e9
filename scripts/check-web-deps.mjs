// Checks that web/node_modules holds exactly what web/package-lock.json pins
// (and that the lock file matches web/package.json). Exits 0 when it does,
// 1 with the first difference on stderr otherwise. It compares contents, not
// file times, so a fresh clone, a pull or a rebase that changes the lock file
// is always caught. Used by scripts/install-deps.sh (to decide whether to run
// `npm ci`) and by web/test/run-e2e.sh (which installs nothing).
//
//   node scripts/check-web-deps.mjs [web-dir]

import { readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = process.argv[2] || join(dirname(fileURLToPath(import.meta.url)), '..', 'web');

function fail(msg) {
  process.stderr.write(`${msg}\n`);
  process.exit(1);
}

const readJSON = (p) => JSON.parse(readFileSync(p, 'utf8'));

const pkg = readJSON(join(web, 'package.json'));
const lockPath = join(web, 'package-lock.json');
if (!existsSync(lockPath)) fail('web/package-lock.json is missing');
const lock = readJSON(lockPath);
const packages = lock.packages || {};

// package.json and the lock file must declare the same dependencies.
const root = packages[''] || {};
for (const field of ['dependencies', 'devDependencies', 'optionalDependencies']) {
  const want = pkg[field] || {};
  const have = root[field] || {};
  for (const name of new Set([...Object.keys(want), ...Object.keys(have)])) {
    if (want[name] !== have[name]) {
      fail(`web/package-lock.json is out of sync with web/package.json (${field}.${name}: ` +
        `${want[name] || 'absent'} in package.json, ${have[name] || 'absent'} in the lock); run \`npm install\` in web/`);
    }
  }
}

// Every package the lock file pins must be installed at its pinned version.
if (!existsSync(join(web, 'node_modules'))) fail('web/node_modules is missing');
for (const [path, entry] of Object.entries(packages)) {
  if (!path.startsWith('node_modules/') || entry.link) continue;
  const manifest = join(web, path, 'package.json');
  if (!existsSync(manifest)) {
    if (entry.optional) continue; // platform-specific optional packages are not installed everywhere
    fail(`web/${path} is missing (web/package-lock.json pins ${entry.version})`);
  }
  const installed = readJSON(manifest).version;
  if (installed !== entry.version) fail(`web/${path} is ${installed}, web/package-lock.json pins ${entry.version}`);
}
