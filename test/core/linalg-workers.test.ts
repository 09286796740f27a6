import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { ADDON_PACKAGE, openBlasAddon } from '../../src/core/linalg/openblas.ts';

/**
 * Each worker loads the addon itself (context-aware: a raw-V8 addon fails here with "Cannot find
 * module" in the second thread), multiplies a seeded 200 × 150 by a 150 × 170 matrix a few times
 * and sends back the largest difference from a plain triple loop; then the LAPACK kernels
 * (dsyevr both ways, dpotrs) with their residuals.
 */
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const blas = require(workerData.addon);
let s = workerData.seed >>> 0;
const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296) - 0.5;
const [m, n, k] = [200, 170, 150];
const a = new Float64Array(m * k).map(rand), b = new Float64Array(k * n).map(rand);
const c = new Float64Array(m * n);
for (let r = 0; r < 20; r++) blas.dgemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n);
let d = 0;
for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
  let t = 0;
  for (let p = 0; p < k; p++) t += a[i * k + p] * b[p * n + j];
  d = Math.max(d, Math.abs(t - c[i * n + j]));
}
// dsyevr (all pairs: dsyevd; the top 5: dsyevr) and dpotrs on a 120 × 120 matrix, a few times
const e = 120;
const sym = new Float64Array(e * e);
for (let i = 0; i < e; i++) for (let j = 0; j <= i; j++) sym[i * e + j] = sym[j * e + i] = rand() + (i === j ? e : 0);
let eigenResidual = 0;
for (let r = 0; r < 5; r++) for (const [lo, hi] of [[0, e], [e - 5, e]]) {
  const k = hi - lo, w = new Float64Array(k), zz = new Float64Array(e * k);
  const res = blas.dsyevr(e, new Float64Array(sym), e, lo, hi, w, zz, k);
  if (res.info !== 0 || res.m !== k) throw new Error('dsyevr info ' + res.info + ', m ' + res.m);
  for (let i = 0; i < e; i++) for (let j = 0; j < k; j++) {
    let t = 0;
    for (let p = 0; p < e; p++) t += sym[i * e + p] * zz[p * k + j];
    eigenResidual = Math.max(eigenResidual, Math.abs(t - zz[i * k + j] * w[j]));
  }
}
const l = new Float64Array(sym);
if (blas.dpotrf(e, l, e) !== 0) throw new Error('dpotrf failed');
const x = new Float64Array(3 * e).map(rand);
const bx = new Float64Array(x);
for (let r = 0; r < 5; r++) { bx.set(x); blas.dpotrs(e, 3, l, e, bx, e); }
let solveResidual = 0;
for (let r = 0; r < 3; r++) for (let i = 0; i < e; i++) {
  let t = 0;
  for (let p = 0; p < e; p++) t += sym[i * e + p] * bx[r * e + p];
  solveResidual = Math.max(solveResidual, Math.abs(t - x[r * e + i]));
}
parentPort.postMessage({ maxDiff: d, eigenResidual, solveResidual, threads: blas.getNumThreads() });
`;

test('the OpenBLAS addon loads and computes in concurrent worker threads', async (t) => {
  let addonPath: string;
  try {
    openBlasAddon(); // loaded on the main thread too, so the workers are its 2nd and 3rd instances
    addonPath = createRequire(import.meta.url).resolve(ADDON_PACKAGE);
  } catch (e) {
    t.skip(`native backend not tested: ${(e as Error).message}`);
    return;
  }
  const run = (seed: number) =>
    new Promise<{ maxDiff: number; eigenResidual: number; solveResidual: number; threads: number }>((resolve, reject) => {
      const w = new Worker(workerSource, { eval: true, workerData: { addon: addonPath, seed } });
      w.once('message', resolve);
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`worker ${seed} exited with ${code} before answering`)));
    });
  const results = await Promise.all([1, 2, 3].map(run));
  for (const r of results) {
    assert.ok(r.maxDiff < 1e-11, `max difference ${r.maxDiff}`);
    assert.ok(r.eigenResidual < 1e-11, `dsyevr: max |A·Z − Z·Λ| = ${r.eigenResidual}`);
    assert.ok(r.solveResidual < 1e-12, `dpotrs: max |A·X − B| = ${r.solveResidual}`);
    assert.ok(r.threads >= 1);
  }
});
