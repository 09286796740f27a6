#!/usr/bin/env node
// Install step of the optional OpenBLAS addon: builds it with node-gyp where a C++ compiler and
// the CBLAS/LAPACKE headers are present, and otherwise says why it did not and exits 0, so that
// `npm install` / `npm ci` succeed everywhere and the service runs on its TypeScript kernels.
// CURVATURE_OPENBLAS_REQUIRED=1 makes this script exit 1 on a failed build. Mind that npm treats
// a failed OPTIONAL dependency as absent: it removes the package and `npm ci` still exits 0. To
// fail a CI run or an image build, check afterwards: node -e "require('curvature-openblas')".
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const required = process.env.CURVATURE_OPENBLAS_REQUIRED === '1';
const tag = '[curvature-openblas]';

function giveUp(reason) {
  const msg = `${tag} native OpenBLAS backend NOT built: ${reason}\n` +
    `${tag} the service will use its TypeScript kernels. To get the native backend: ` +
    'apt-get install -y g++ make python3 libopenblas-dev liblapacke-dev, then npm rebuild curvature-openblas';
  console.warn(msg);
  process.exit(required ? 1 : 0);
}

// 1. A compiler that finds both headers (and the libraries, at link time).
const cxx = process.env.CXX || 'c++';
const probe = spawnSync(cxx, ['-x', 'c++', '-E', '-o', '/dev/null', '-'], {
  input: '#include <cblas.h>\n#include <lapacke.h>\n',
  encoding: 'utf8',
});
if (probe.error) giveUp(`no C++ compiler (${cxx}: ${probe.error.message})`);
if (probe.status !== 0) {
  giveUp(`cblas.h / lapacke.h not found (libopenblas-dev, liblapacke-dev): ${probe.stderr.trim().split('\n')[0]}`);
}

// 2. Node's headers: use the ones installed beside this node when they match its version, since
// node-gyp would otherwise download them, and only package registries are reachable here.
// node-gyp lets an npm_config_nodedir in its environment (an npmrc's `nodedir`, e.g. set for
// another Node on the same machine) override --nodedir, so that one is dropped then.
const args = ['rebuild', '--release'];
const env = { ...process.env };
const prefix = resolve(dirname(process.execPath), '..');
const versionH = join(prefix, 'include', 'node', 'node_version.h');
if (existsSync(join(prefix, 'include', 'node', 'common.gypi')) && existsSync(versionH)) {
  const h = readFileSync(versionH, 'utf8');
  const v = ['MAJOR', 'MINOR', 'PATCH'].map((p) => h.match(new RegExp(`#define NODE_${p}_VERSION (\\d+)`))?.[1]).join('.');
  if (`v${v}` === process.version) {
    args.push(`--nodedir=${prefix}`);
    for (const k of Object.keys(env)) if (k.toLowerCase() === 'npm_config_nodedir') delete env[k];
  }
}

// 3. node-gyp: the one npm runs scripts with, else the one bundled with npm, else PATH.
const bundled = join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const gypJs = process.env.npm_config_node_gyp || (existsSync(bundled) ? bundled : '');
const cmd = gypJs ? process.execPath : 'node-gyp';
const r = spawnSync(cmd, gypJs ? [gypJs, ...args] : args, { cwd: here, stdio: 'inherit', env });
if (r.error || r.status !== 0) giveUp(`node-gyp ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})`);

// 4. It must load and compute here, or it is not worth keeping.
const check = spawnSync(process.execPath, ['-e', `
  const b = require(${JSON.stringify(join(here, 'index.cjs'))});
  const c = new Float64Array(1);
  b.dgemm(false, false, 1, 1, 1, 1, new Float64Array([2]), 1, new Float64Array([3]), 1, 0, c, 1);
  if (c[0] !== 6) throw new Error('dgemm 2*3 gave ' + c[0]);
  console.log(b.config());
`], { encoding: 'utf8' });
if (check.status !== 0) giveUp(`the built addon does not load: ${check.stderr.trim().split('\n').slice(0, 3).join(' ')}`);
console.log(`${tag} built: ${check.stdout.trim()}`);
