/**
 * Kernel benchmark of the linear-algebra backends (not a test; nothing here is timed in `npm test`):
 * GEMM GFLOP/s for n = 1000 and 2000, and Cholesky inverse (potrf + potri) of an n = 2762 SPD
 * matrix, the W of the 2-layer network. Run: `node --import tsx scripts/bench-linalg.ts
 * [typescript|openblas ...]`; CURVATURE_BLAS_THREADS applies to OpenBLAS as in the service.
 */
import { linalgInfo, openBlasBackend, typescriptBackend, type LinalgBackend } from '../src/core/linalg/index.ts';
import { seededRandom } from '../test/helpers/random.ts';

const wanted = process.argv.slice(2);
const all: LinalgBackend[] = [typescriptBackend];
try {
  all.push(openBlasBackend());
} catch (e) {
  console.log(`openblas skipped: ${(e as Error).message}`);
}
const backends = wanted.length ? all.filter((b) => wanted.includes(b.name)) : all;

const random = (len: number, seed: number): Float64Array => {
  const r = seededRandom(seed);
  return new Float64Array(len).map(() => r() - 0.5);
};
const seconds = (f: () => void): number => {
  const t = performance.now();
  f();
  return (performance.now() - t) / 1000;
};

const info = linalgInfo();
console.log(`OpenBLAS threads: ${info.backend === 'openblas' ? info.threads : 'n/a'}; ${info.openblas ?? ''}`);
console.log('backend      kernel              n     seconds   GFLOP/s');
const row = (be: string, kernel: string, n: number, s: number, flops: number) =>
  console.log(`${be.padEnd(12)} ${kernel.padEnd(18)} ${String(n).padStart(5)} ${s.toFixed(3).padStart(10)} ${(flops / s / 1e9).toFixed(2).padStart(9)}`);

for (const be of backends) {
  for (const n of [1000, 2000]) {
    const a = random(n * n, 1), b = random(n * n, 2), c = new Float64Array(n * n);
    be.gemm(false, false, 64, 64, 64, 1, a, n, b, n, 0, c, n); // warm-up (JIT, OpenBLAS threads)
    const reps = be.name === 'openblas' ? 5 : 1;
    let best = Infinity;
    for (let r = 0; r < reps; r++) best = Math.min(best, seconds(() => be.gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n)));
    row(be.name, 'gemm', n, best, 2 * n ** 3);
  }
  const n = 2762;
  // SPD: G·Gᵀ/n + I, built by the fast backend, lower triangle mirrored
  const g = random(n * n, 3);
  const spd = new Float64Array(n * n);
  all[all.length - 1].syrk(false, n, n, 1 / n, g, n, 0, spd, n);
  for (let i = 0; i < n; i++) {
    spd[i * n + i] += 1;
    for (let j = 0; j < i; j++) spd[j * n + i] = spd[i * n + j];
  }
  const a = new Float64Array(spd);
  let info1 = -1, info2 = -1;
  const tf = seconds(() => { info1 = be.potrf(n, a, n); });
  const ti = seconds(() => { info2 = be.potri(n, a, n); });
  if (info1 !== 0 || info2 !== 0) throw new Error(`${be.name}: potrf ${info1}, potri ${info2}`);
  row(be.name, 'potrf', n, tf, n ** 3 / 3);
  row(be.name, 'potri', n, ti, (2 * n ** 3) / 3);
  row(be.name, 'potrf+potri', n, tf + ti, n ** 3);
  // check: row 0 of A⁻¹·A = e₀ (lower triangle of A⁻¹ mirrored)
  let err = 0;
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < n; p++) s += a[p * n] * spd[p * n + j]; // A⁻¹[0][p] = A⁻¹[p][0], in the lower triangle
    err = Math.max(err, Math.abs(s - (j === 0 ? 1 : 0)));
  }
  console.log(`${be.name.padEnd(12)} check: max |(A⁻¹A)[0][j] − δ0j| = ${err.toExponential(1)}`);
}
