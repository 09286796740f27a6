import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { ADDON_PACKAGE, openBlasAddon } from '../../src/core/linalg/openblas.ts';

/**
 * Each worker loads the addon itself (context-aware: a raw-V8 addon fails here with "Cannot find
 * module" in the second thread), multiplies a seeded 200 × 150 by a 150 × 170 matrix a few times
 * and sends back the largest difference from a plain triple loop.
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
parentPort.postMessage({ maxDiff: d, threads: blas.getNumThreads() });
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
    new Promise<{ maxDiff: number; threads: number }>((resolve, reject) => {
      const w = new Worker(workerSource, { eval: true, workerData: { addon: addonPath, seed } });
      w.once('message', resolve);
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`worker ${seed} exited with ${code} before answering`)));
    });
  const results = await Promise.all([1, 2, 3].map(run));
  for (const r of results) {
    assert.ok(r.maxDiff < 1e-11, `max difference ${r.maxDiff}`);
    assert.ok(r.threads >= 1);
  }
});
