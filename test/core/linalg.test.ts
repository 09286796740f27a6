import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Matrix, inverse } from 'ml-matrix';
import { typescriptBackend, openBlasBackend, linalgInfo, type LinalgBackend } from '../../src/core/linalg/index.ts';
import { seededRandom } from '../helpers/random.ts';

/** Why the native backend could not load, or undefined when it did. */
export let nativeMissing: string | undefined;

/** The backends to test; the native one joins when it loads. */
export const backends: LinalgBackend[] = [typescriptBackend];
try {
  backends.push(openBlasBackend());
} catch (e) {
  nativeMissing = (e as Error).message;
}

test('the OpenBLAS backend loads, or the reason it does not is shown', (t) => {
  const info = linalgInfo();
  t.diagnostic(`linalg: ${info.backend} (${info.threads} thread(s)): ${info.reason}${info.openblas ? `; ${info.openblas}` : ''}`);
  if (nativeMissing !== undefined) {
    t.skip(`native backend not tested: ${nativeMissing}`);
    return;
  }
  assert.equal(backends.at(-1)?.name, 'openblas');
});

function naiveGemm(tA: boolean, tB: boolean, m: number, n: number, k: number, alpha: number, a: Float64Array, lda: number, b: Float64Array, ldb: number, beta: number, c: Float64Array, ldc: number): Float64Array {
  const out = new Float64Array(c);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += (tA ? a[p * lda + i] : a[i * lda + p]) * (tB ? b[j * ldb + p] : b[p * ldb + j]);
    out[i * ldc + j] = alpha * s + (beta === 0 ? 0 : beta * c[i * ldc + j]);
  }
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

function randomSpd(n: number, rand: () => number): Float64Array {
  const g = new Float64Array(n * n).map(() => rand() - 0.5);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < n; p++) s += g[i * n + p] * g[j * n + p];
    a[i * n + j] = s + (i === j ? n * 0.1 : 0);
  }
  return a;
}

for (const be of backends) {
  test(`${be.name}: gemm agrees with a naive triple loop for every transpose, odd sizes and strides`, () => {
    const rand = seededRandom(1);
    for (const [m, n, k] of [[1, 1, 1], [3, 5, 7], [17, 9, 300], [70, 65, 3], [130, 1030, 5]]) {
      for (const tA of [false, true]) for (const tB of [false, true]) {
        const lda = (tA ? m : k) + 2, ldb = (tB ? k : n) + 1, ldc = n + 3;
        const a = new Float64Array((tA ? k : m) * lda).map(() => rand() - 0.5);
        const b = new Float64Array((tB ? n : k) * ldb).map(() => rand() - 0.5);
        const c = new Float64Array(m * ldc).map(() => rand());
        const want = naiveGemm(tA, tB, m, n, k, 0.7, a, lda, b, ldb, -1.3, c, ldc);
        be.gemm(tA, tB, m, n, k, 0.7, a, lda, b, ldb, -1.3, c, ldc);
        assert.ok(maxAbsDiff(c, want) < 1e-12 * k, `m=${m} n=${n} k=${k} tA=${tA} tB=${tB}`);
      }
    }
  });

  test(`${be.name}: gemm and syrk with k = 0 scale C by beta (beta 0 zeroes it)`, () => {
    const c = new Float64Array([NaN, 1, 2, 3]);
    be.gemm(false, false, 2, 2, 0, 1, new Float64Array(0), 0, new Float64Array(0), 2, 0, c, 2);
    assert.deepEqual([...c], [0, 0, 0, 0]);
    const s = new Float64Array([1, 7, 2, 3]);
    be.syrk(false, 2, 0, 1, new Float64Array(0), 0, 2, s, 2);
    assert.deepEqual([...s], [2, 7, 4, 6]);
  });

  test(`${be.name}: kernels honour subarray views (byteOffset) of larger buffers`, () => {
    const rand = seededRandom(6);
    const [m, n, k] = [33, 29, 41];
    const big = new Float64Array(10_000).map(() => rand() - 0.5);
    const a = big.subarray(7, 7 + m * k), b = big.subarray(3001, 3001 + k * n);
    const cBuf = new Float64Array(m * n + 13).fill(NaN);
    const c = cBuf.subarray(11, 11 + m * n);
    be.gemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n);
    const want = naiveGemm(false, false, m, n, k, 1, a, k, b, n, 0, new Float64Array(m * n), n);
    assert.ok(maxAbsDiff(c, want) < 1e-12 * k);
    assert.ok(Number.isNaN(cBuf[10]) && Number.isNaN(cBuf[11 + m * n]), 'nothing written outside the view');
    // Cholesky of the trailing 40 × 40 block of a 50 × 50 SPD matrix, in place through a view
    const spd = randomSpd(50, rand);
    const full = new Float64Array(spd);
    assert.equal(be.potrf(40, full.subarray(10 * 50 + 10), 50), 0);
    const sub = new Float64Array(40 * 40);
    for (let i = 0; i < 40; i++) for (let j = 0; j < 40; j++) sub[i * 40 + j] = spd[(i + 10) * 50 + j + 10];
    assert.equal(be.potrf(40, sub, 40), 0);
    for (let i = 0; i < 40; i++) for (let j = 0; j <= i; j++) {
      assert.ok(Math.abs(full[(i + 10) * 50 + j + 10] - sub[i * 40 + j]) < 1e-12);
    }
    for (let i = 0; i < 10; i++) for (let j = 0; j < 50; j++) assert.equal(full[i * 50 + j], spd[i * 50 + j]);
  });

  test(`${be.name}: gemm with beta 0 ignores NaN already in C`, () => {
    const c = new Float64Array([NaN, NaN, NaN, NaN]);
    be.gemm(false, false, 2, 2, 1, 1, new Float64Array([1, 2]), 1, new Float64Array([3, 4]), 2, 0, c, 2);
    assert.deepEqual([...c], [3, 4, 6, 8]);
  });

  test(`${be.name}: syrk fills the lower triangle only, both orientations`, () => {
    const rand = seededRandom(2);
    for (const [n, k] of [[5, 3], [61, 40], [130, 17]]) for (const trans of [false, true]) {
      const lda = (trans ? n : k) + 1;
      const a = new Float64Array((trans ? k : n) * lda).map(() => rand() - 0.5);
      const c = new Float64Array(n * n).map(() => rand());
      const before = new Float64Array(c);
      const full = naiveGemm(trans, !trans, n, n, k, 2, a, lda, a, lda, 0.5, c, n);
      be.syrk(trans, n, k, 2, a, lda, 0.5, c, n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
        const want = j <= i ? full[i * n + j] : before[i * n + j];
        assert.ok(Math.abs(c[i * n + j] - want) < 1e-12 * k, `n=${n} k=${k} trans=${trans} (${i},${j})`);
      }
    }
  });

  test(`${be.name}: potrf and potri invert SPD matrices as ml-matrix does`, () => {
    const rand = seededRandom(3);
    for (const n of [1, 4, 47, 50, 131]) {
      const a = randomSpd(n, rand);
      const f = new Float64Array(a);
      assert.equal(be.potrf(n, f, n), 0);
      // L·Lᵀ = A
      const l = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) l[i * n + j] = f[i * n + j];
      const llt = naiveGemm(false, true, n, n, n, 1, l, n, l, n, 0, new Float64Array(n * n), n);
      assert.ok(maxAbsDiff(llt, a) < 1e-10 * n, `L·Lᵀ = A for n=${n}`);
      assert.equal(be.potri(n, f, n), 0);
      const want = inverse(new Matrix(Array.from({ length: n }, (_, i) => [...a.subarray(i * n, i * n + n)])));
      for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) {
        assert.ok(Math.abs(f[i * n + j] - want.get(i, j)) < 1e-9, `inverse n=${n} (${i},${j})`);
      }
    }
  });

  test(`${be.name}: potrf reports the order of the first non-positive leading minor`, () => {
    const n = 100;
    const a = randomSpd(n, seededRandom(4));
    a[70 * n + 70] = -1e6;
    assert.equal(be.potrf(n, new Float64Array(a), n), 71);
    const nan = randomSpd(n, seededRandom(5));
    nan[3 * n + 3] = NaN;
    assert.equal(be.potrf(n, nan, n), 4);
  });
}

test('openblas: the binding refuses wrong argument counts, types and too-short buffers', (t) => {
  const be = backends.find((b) => b.name === 'openblas');
  if (!be) {
    t.skip(`native backend not tested: ${nativeMissing}`);
    return;
  }
  const x = new Float64Array(4);
  const call = (f: unknown, ...args: unknown[]) => () => (f as (...a: unknown[]) => unknown)(...args);
  assert.throws(call(be.potrf, 2, x), TypeError);
  assert.throws(call(be.potrf, 2, new Float32Array(4), 2), TypeError);
  assert.throws(call(be.potrf, 2, [1, 0, 0, 1], 2), TypeError);
  assert.throws(call(be.potrf, -1, x, 2), TypeError);
  assert.throws(call(be.potrf, 1.5, x, 2), TypeError);
  assert.throws(call(be.gemm, 1, false, 1, 1, 1, 1, x, 1, x, 1, 0, x, 1), TypeError);
  assert.throws(call(be.potrf, 3, x, 3), RangeError);
  assert.throws(call(be.potrf, 2, x, 1), RangeError);
  assert.throws(call(be.gemm, false, false, 2, 2, 3, 1, x, 3, x, 2, 0, x, 2), RangeError);
  assert.throws(call(be.syrk, true, 2, 3, 1, x, 2, 0, x, 2), RangeError);
});
