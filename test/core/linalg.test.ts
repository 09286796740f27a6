import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Matrix, inverse } from 'ml-matrix';
import { typescriptBackend, openBlasBackend, linalgInfo, type LinalgBackend } from '../../src/core/linalg/index.ts';
import { openBlasAddon, suggestedCoreType } from '../../src/core/linalg/openblas.ts';
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

test('the kernel set follows the CPU flags Linux reports', () => {
  const cpu = (flags: string) => `processor\t: 0\nmodel\t\t: 207\nflags\t\t: ${flags}\nbugs\t\t: spectre_v1\n`;
  assert.equal(suggestedCoreType(cpu('fpu sse sse2 avx avx2 fma avx512f avx512dq avx512bw avx512vl avx512cd')), 'SkylakeX');
  assert.equal(suggestedCoreType(cpu('fpu sse sse2 avx avx2 fma avx512f')), 'Haswell', 'AVX-512 without BW/DQ/VL is not SkylakeX');
  assert.equal(suggestedCoreType(cpu('fpu sse sse2 avx avx2')), undefined, 'AVX2 without FMA');
  assert.equal(suggestedCoreType(cpu('fpu sse sse2 pni ssse3')), undefined);
  assert.equal(suggestedCoreType('no flags line here'), undefined);
});

test('OpenBLAS runs the kernels this CPU allows, not an older fallback', (t) => {
  if (nativeMissing !== undefined) {
    t.skip(`native backend not tested: ${nativeMissing}`);
    return;
  }
  const wanted = process.env.OPENBLAS_CORETYPE ?? suggestedCoreType();
  if (wanted === undefined) {
    t.skip('this CPU reports neither AVX-512 nor AVX2+FMA; OpenBLAS chooses its own kernels');
    return;
  }
  assert.equal(openBlasAddon().corename().toLowerCase(), wanted.toLowerCase());
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
    // (300 × 1 × 1: the scaled column both backends do in a loop of their own)
    for (const [m, n, k] of [[1, 1, 1], [300, 1, 1], [3, 5, 7], [17, 9, 300], [70, 65, 3], [130, 1030, 5]]) {
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

  test(`${be.name}: a scaled column (k = n = 1) with beta 0 overwrites C, NaN included, and writes nothing between its strided entries`, () => {
    for (const tA of [false, true]) {
      const m = 200, lda = tA ? m : 3, ldc = 2;
      const a = Float64Array.from({ length: tA ? m : m * lda }, (_, i) => Math.sin(i));
      const c = new Float64Array(m * ldc).fill(NaN);
      be.gemm(tA, false, m, 1, 1, 2, a, lda, new Float64Array([0.5]), 1, 0, c, ldc);
      for (let i = 0; i < m; i++) {
        assert.equal(c[i * ldc], a[tA ? i : i * lda], `tA=${tA}: entry ${i}`);
        assert.ok(Number.isNaN(c[i * ldc + 1]), `tA=${tA}: the gap after entry ${i} untouched`);
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

/** A random symmetric n × n matrix, entries uniform on [−0.5, 0.5), both triangles stored. */
function randomSymmetric(n: number, rand: () => number): Float64Array {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = rand() - 0.5;
  return a;
}

/** A random orthogonal n × n matrix: Gram–Schmidt, twice, on random columns. */
function randomOrthogonal(n: number, rand: () => number): Float64Array {
  const q = new Float64Array(n * n).map(() => rand() - 0.5);
  for (let j = 0; j < n; j++) {
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < j; k++) {
        let d = 0;
        for (let i = 0; i < n; i++) d += q[i * n + j] * q[i * n + k];
        for (let i = 0; i < n; i++) q[i * n + j] -= d * q[i * n + k];
      }
    }
    let s = 0;
    for (let i = 0; i < n; i++) s += q[i * n + j] ** 2;
    for (let i = 0; i < n; i++) q[i * n + j] /= Math.sqrt(s);
  }
  return q;
}

/** Q·diag(λ)·Qᵀ, made exactly symmetric. */
function withSpectrum(q: Float64Array, lambda: readonly number[]): Float64Array {
  const n = lambda.length;
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) {
    let s = 0;
    for (let k = 0; k < n; k++) s += q[i * n + k] * lambda[k] * q[j * n + k];
    a[i * n + j] = a[j * n + i] = s;
  }
  return a;
}

function frobenius(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

interface Eigen {
  w: Float64Array;
  z: Float64Array;
  ldz: number;
}

/**
 * Runs syevr on a copy of the symmetric n × n `a` (lower triangle in a buffer with lda = n + 3
 * whose strict upper triangle and padding hold NaN, which must be neither read nor written),
 * into z with ldz = m + 2 inside a NaN-padded buffer, and checks: info 0 and m, w ascending,
 * max|A·Z − Z·Λ| ≤ 1e-13·‖A‖_F, max|ZᵀZ − I| ≤ 1e-12, the padding untouched.
 */
function checkedEigen(be: LinalgBackend, n: number, a: Float64Array, lo: number, hi: number, what: string): Eigen {
  const m = hi - lo;
  const lda = n + 3;
  const aBuf = new Float64Array(n * lda + 5).fill(NaN);
  const av = aBuf.subarray(2, 2 + (n - 1) * lda + n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) av[i * lda + j] = a[i * n + j];
  const ldz = m + 2;
  const zBuf = new Float64Array(n * ldz + 4).fill(NaN);
  const z = zBuf.subarray(3, 3 + (n - 1) * ldz + m);
  const wBuf = new Float64Array(m + 2).fill(NaN);
  const w = wBuf.subarray(1, 1 + m);
  const r = be.syevr(n, av, lda, lo, hi, w, z, ldz);
  assert.deepEqual(r, { info: 0, m }, what);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < lda && i * lda + j < av.length; j++) {
    assert.ok(Number.isNaN(av[i * lda + j]), `${what}: a[${i}][${j}] (upper or padding) was written`);
  }
  assert.ok(Number.isNaN(wBuf[0]) && Number.isNaN(wBuf[m + 1]), `${what}: written outside w`);
  assert.ok(Number.isNaN(zBuf[2]) && Number.isNaN(zBuf[zBuf.length - 1]), `${what}: written outside z`);
  for (let i = 0; i < n; i++) for (let j = m; j < ldz && i * ldz + j < z.length; j++) {
    assert.ok(Number.isNaN(z[i * ldz + j]), `${what}: z padding (${i}, ${j}) written`);
  }
  for (let j = 1; j < m; j++) assert.ok(w[j - 1] <= w[j], `${what}: eigenvalues not ascending at ${j}`);
  const scale = frobenius(a) || 1;
  let res = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) {
    let s = 0;
    for (let k = 0; k < n; k++) s += a[i * n + k] * z[k * ldz + j];
    res = Math.max(res, Math.abs(s - z[i * ldz + j] * w[j]));
  }
  assert.ok(res <= 1e-13 * scale, `${what}: max |A·Z − Z·Λ| = ${res.toExponential(2)} > 1e-13·‖A‖_F`);
  let orth = 0;
  for (let p = 0; p < m; p++) for (let q = 0; q <= p; q++) {
    let s = 0;
    for (let k = 0; k < n; k++) s += z[k * ldz + p] * z[k * ldz + q];
    orth = Math.max(orth, Math.abs(s - (p === q ? 1 : 0)));
  }
  assert.ok(orth <= 1e-12, `${what}: max |ZᵀZ − I| = ${orth.toExponential(2)}`);
  return { w: new Float64Array(w), z: new Float64Array(z), ldz };
}

/** max_j (1 − |z_j·y_j|) over the columns of two eigenvector matrices: 0 when equal up to sign. */
function columnMismatch(n: number, m: number, z: Eigen, y: Eigen): number {
  let worst = 0;
  for (let j = 0; j < m; j++) {
    let d = 0;
    for (let i = 0; i < n; i++) d += z.z[i * z.ldz + j] * y.z[i * y.ldz + j];
    worst = Math.max(worst, 1 - Math.abs(d));
  }
  return worst;
}

for (const be of backends) {
  test(`${be.name}: trsm solves with a lower-triangular factor on either side, transposed or not, strided views`, () => {
    const rand = seededRandom(31);
    for (const [m, n] of [[1, 1], [5, 3], [60, 47], [3, 130]] as const) {
      for (const left of [true, false]) for (const trans of [false, true]) {
        const order = left ? m : n;
        const lda = order + 2, ldb = n + 3;
        const l = new Float64Array(order * lda).fill(NaN); // the strict upper triangle must not be read
        for (let i = 0; i < order; i++) for (let j = 0; j <= i; j++) l[i * lda + j] = i === j ? 1 + rand() : rand() - 0.5;
        const dense = new Float64Array(order * order);
        for (let i = 0; i < order; i++) for (let j = 0; j <= i; j++) dense[(trans ? j : i) * order + (trans ? i : j)] = l[i * lda + j];
        const x = new Float64Array(m * n).map(() => rand() - 0.5);
        const b = new Float64Array(m * ldb);
        // b = op(L)·x (left) or x·op(L) (right), then solve back for x
        const prod = left ? naiveGemm(false, false, m, n, m, 1, dense, m, x, n, 0, new Float64Array(m * n), n)
          : naiveGemm(false, false, m, n, n, 1, x, n, dense, n, 0, new Float64Array(m * n), n);
        for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) b[i * ldb + j] = prod[i * n + j];
        be.trsm(left, trans, m, n, l, lda, b, ldb);
        let err = 0;
        for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) err = Math.max(err, Math.abs(b[i * ldb + j] - x[i * n + j]));
        assert.ok(err <= 1e-12, `${m}×${n} left=${left} trans=${trans}: max error ${err.toExponential(2)}`);
      }
    }
  });

  test(`${be.name}: symm multiplies by a symmetric matrix given its lower triangle, on either side`, () => {
    const rand = seededRandom(32);
    for (const [m, n] of [[1, 1], [7, 4], [40, 65]] as const) {
      for (const left of [true, false]) {
        const order = left ? m : n;
        const sym = randomSymmetric(order, rand);
        const a = new Float64Array(sym);
        for (let i = 0; i < order; i++) for (let j = i + 1; j < order; j++) a[i * order + j] = NaN; // upper triangle not read
        const b = new Float64Array(m * n).map(() => rand() - 0.5);
        const c0 = new Float64Array(m * n).map(() => rand() - 0.5);
        const want = left ? naiveGemm(false, false, m, n, m, 0.7, sym, m, b, n, -0.3, new Float64Array(c0), n)
          : naiveGemm(false, false, m, n, n, 0.7, b, n, sym, n, -0.3, new Float64Array(c0), n);
        const c = new Float64Array(c0);
        be.symm(left, m, n, 0.7, a, order, b, n, -0.3, c, n);
        assert.ok(maxAbsDiff(c, want) <= 1e-12 * order, `${m}×${n} left=${left}: ${maxAbsDiff(c, want)}`);
      }
    }
  });

  test(`${be.name}: potrs solves A·X = B for the rows of B, several nrhs, strided views`, () => {
    const rand = seededRandom(21);
    for (const n of [1, 5, 47, 130]) for (const nrhs of [1, 3, 17]) {
      const spd = randomSpd(n, rand);
      const lda = n + 3, ldb = n + 2;
      const aBuf = new Float64Array(n * lda + 7).fill(NaN);
      const a = aBuf.subarray(4, 4 + (n - 1) * lda + n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * lda + j] = spd[i * n + j];
      assert.equal(be.potrf(n, a, lda), 0);
      const factor = new Float64Array(aBuf);
      const bBuf = new Float64Array(nrhs * ldb + 6).fill(NaN);
      const b = bBuf.subarray(3, 3 + (nrhs - 1) * ldb + n);
      const rhs = new Float64Array(nrhs * n).map(() => rand() - 0.5);
      for (let r = 0; r < nrhs; r++) for (let j = 0; j < n; j++) b[r * ldb + j] = rhs[r * n + j];
      assert.equal(be.potrs(n, nrhs, a, lda, b, ldb), 0);
      assert.deepEqual(aBuf, factor, `n=${n} nrhs=${nrhs}: potrs changed A`);
      // A·x_r − b_r for each row r, relative to ‖A‖·‖x‖
      let res = 0, xmax = 0, amax = 0;
      for (const v of spd) amax = Math.max(amax, Math.abs(v));
      for (let r = 0; r < nrhs; r++) for (let i = 0; i < n; i++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += spd[i * n + k] * b[r * ldb + k];
        res = Math.max(res, Math.abs(s - rhs[r * n + i]));
        xmax = Math.max(xmax, Math.abs(b[r * ldb + i]));
      }
      assert.ok(res <= 1e-12 * amax * xmax * n, `n=${n} nrhs=${nrhs}: max |A·X − B| = ${res.toExponential(2)}`);
      for (let r = 0; r < nrhs; r++) for (let j = n; j < ldb && r * ldb + j < b.length; j++) {
        assert.ok(Number.isNaN(b[r * ldb + j]), `n=${n} nrhs=${nrhs}: B padding written`);
      }
      assert.ok(Number.isNaN(bBuf[2]) && Number.isNaN(bBuf[bBuf.length - 1]), 'nothing written outside the view');
    }
    assert.equal(be.potrs(0, 3, new Float64Array(0), 1, new Float64Array(0), 1), 0);
    assert.equal(be.potrs(3, 0, new Float64Array([1, 0, 0, 0, 1, 0, 0, 0, 1]), 3, new Float64Array(0), 3), 0);
  });

  test(`${be.name}: syevr on random symmetric matrices: A·Z = Z·Λ, ZᵀZ = I, ascending, only the lower triangle read`, () => {
    const rand = seededRandom(22);
    for (const n of [3, 31, 33, 65, 150]) checkedEigen(be, n, randomSymmetric(n, rand), 0, n, `n=${n}`);
  });

  test(`${be.name}: syevr finds known spectra: diagonal matrices and Q·diag(λ)·Qᵀ`, () => {
    const rand = seededRandom(23);
    const n = 40;
    const diag = Array.from({ length: n }, (_, i) => Math.sin(3 * i) * 10);
    const a = new Float64Array(n * n);
    diag.forEach((v, i) => (a[i * n + i] = v));
    const sorted = [...diag].sort((x, y) => x - y);
    const d = checkedEigen(be, n, a, 0, n, 'diagonal');
    for (let j = 0; j < n; j++) {
      assert.equal(d.w[j], sorted[j], `diagonal: eigenvalue ${j}`);
      const i = diag.indexOf(sorted[j]);
      assert.equal(Math.abs(d.z[i * d.ldz + j]), 1, `diagonal: eigenvector ${j} is ±e_${i}`);
    }
    for (const m of [7, 100]) {
      const lambda = Array.from({ length: m }, () => 4 * (rand() - 0.5));
      const q = randomOrthogonal(m, rand);
      const e = checkedEigen(be, m, withSpectrum(q, lambda), 0, m, `Q·diag(λ)·Qᵀ, n=${m}`);
      const want = [...lambda].sort((x, y) => x - y);
      for (let j = 0; j < m; j++) assert.ok(Math.abs(e.w[j] - want[j]) <= 1e-13 * 2, `n=${m}: λ_${j} ${e.w[j]} vs ${want[j]}`);
      // each eigenvector is ± the column of Q with that eigenvalue (the λ are distinct)
      for (let j = 0; j < m; j++) {
        const k = lambda.indexOf(want[j]);
        let dot = 0;
        for (let i = 0; i < m; i++) dot += e.z[i * e.ldz + j] * q[i * m + k];
        assert.ok(1 - Math.abs(dot) <= 1e-10, `n=${m}: eigenvector ${j} vs column ${k} of Q: |dot| = ${Math.abs(dot)}`);
      }
    }
  });

  test(`${be.name}: syevr's index ranges equal the slices of the full decomposition`, () => {
    const rand = seededRandom(24);
    const n = 120;
    const a = randomSymmetric(n, rand);
    const full = checkedEigen(be, n, a, 0, n, 'all');
    // top 10, bottom 3, middle, a single one, and subsets over n/4 (divide and conquer, sliced)
    for (const [lo, hi] of [[n - 10, n], [0, 3], [50, 57], [n - 1, n], [0, 1], [2, n - 3], [20, 80]]) {
      const part = checkedEigen(be, n, a, lo, hi, `[${lo}, ${hi})`);
      const m = hi - lo;
      for (let j = 0; j < m; j++) {
        assert.ok(Math.abs(part.w[j] - full.w[lo + j]) <= 1e-13 * frobenius(a), `[${lo}, ${hi}): eigenvalue ${lo + j}`);
      }
      const slice: Eigen = { w: full.w.subarray(lo, hi), z: full.z.subarray(lo), ldz: full.ldz };
      const mismatch = columnMismatch(n, m, part, slice);
      assert.ok(mismatch <= 1e-10, `[${lo}, ${hi}): eigenvectors differ from the full ones beyond sign: ${mismatch}`);
      // eigenvalues only, same range
      const w = new Float64Array(m);
      assert.deepEqual(be.syevr(n, new Float64Array(a), n, lo, hi, w, null, 0), { info: 0, m });
      for (let j = 0; j < m; j++) assert.ok(Math.abs(w[j] - full.w[lo + j]) <= 1e-13 * frobenius(a), `values only [${lo}, ${hi}): ${j}`);
    }
    // an empty range writes nothing
    const w = new Float64Array(2).fill(7);
    const z = new Float64Array(4).fill(7);
    assert.deepEqual(be.syevr(n, new Float64Array(a), n, 5, 5, w, z, 0), { info: 0, m: 0 });
    assert.deepEqual([...w, ...z], [7, 7, 7, 7, 7, 7]);
  });

  test(`${be.name}: syevr on 1 × 1 and 2 × 2 matrices`, () => {
    const w1 = new Float64Array(1), z1 = new Float64Array(1);
    assert.deepEqual(be.syevr(1, new Float64Array([-2.5]), 1, 0, 1, w1, z1, 1), { info: 0, m: 1 });
    assert.deepEqual([w1[0], z1[0]], [-2.5, 1]);
    const e = checkedEigen(be, 2, new Float64Array([2, 1, 1, 2]), 0, 2, '[[2, 1], [1, 2]]');
    assert.ok(Math.abs(e.w[0] - 1) < 1e-15 && Math.abs(e.w[1] - 3) < 1e-15, `eigenvalues ${e.w}`);
    const h = Math.SQRT1_2;
    assert.ok(Math.abs(Math.abs(e.z[0]) - h) < 1e-15 && Math.abs(e.z[0] + e.z[e.ldz]) < 1e-15, 'first vector ±(1, −1)/√2');
    assert.ok(Math.abs(Math.abs(e.z[1]) - h) < 1e-15 && Math.abs(e.z[1] - e.z[e.ldz + 1]) < 1e-15, 'second vector ±(1, 1)/√2');
    const top = checkedEigen(be, 2, new Float64Array([2, 1, 1, 2]), 1, 2, 'top of [[2, 1], [1, 2]]');
    assert.ok(Math.abs(top.w[0] - 3) < 1e-15);
    const diag = checkedEigen(be, 2, new Float64Array([4, 0, 0, -1]), 0, 2, 'diag(4, −1)');
    assert.deepEqual([...diag.w], [-1, 4]);
    checkedEigen(be, 2, new Float64Array([5, 0, 0, 5]), 0, 2, '5·I');
  });

  test(`${be.name}: syevr with repeated eigenvalues gives an orthonormal basis of each eigenspace`, () => {
    const rand = seededRandom(25);
    for (const n of [30, 90]) {
      // multiplicities 1..5 and a cluster 1e-12 wide
      const lambda = Array.from({ length: n }, (_, i) => (i < n - 6 ? Math.floor(Math.sqrt(2 * i)) : 10 + 1e-12 * i));
      const a = withSpectrum(randomOrthogonal(n, rand), lambda);
      const e = checkedEigen(be, n, a, 0, n, `repeated, n=${n}`);
      const want = [...lambda].sort((x, y) => x - y);
      for (let j = 0; j < n; j++) assert.ok(Math.abs(e.w[j] - want[j]) <= 1e-13 * n, `repeated n=${n}: λ_${j}`);
      checkedEigen(be, n, a, n - 8, n, `repeated, n=${n}, top 8 (the cluster)`);
      checkedEigen(be, n, a, 0, 5, `repeated, n=${n}, bottom 5`);
    }
    const three = new Float64Array(20 * 20);
    for (let i = 0; i < 20; i++) three[i * 20 + i] = 3;
    const e = checkedEigen(be, 20, three, 0, 20, '3·I');
    assert.ok(e.w.every((v) => v === 3));
  });

  test(`${be.name}: syevr on a symmetric tridiagonal (a Lanczos T) and a Hessian-like spectrum`, () => {
    const rand = seededRandom(26);
    const k = 60;
    const t = new Float64Array(k * k);
    for (let i = 0; i < k; i++) {
      t[i * k + i] = rand();
      if (i > 0) t[i * k + i - 1] = t[(i - 1) * k + i] = rand() * 0.5;
    }
    checkedEigen(be, k, t, 0, k, 'tridiagonal');
    checkedEigen(be, k, t, k - 5, k, 'tridiagonal, top 5');
    // most eigenvalues within 1e-9 of 0, a few large: where MRRR lost orthogonality
    const n = 100;
    const lambda = Array.from({ length: n }, (_, i) => (i < n - 8 ? 1e-9 * (rand() - 0.5) : 10 + i));
    const a = withSpectrum(randomOrthogonal(n, rand), lambda);
    checkedEigen(be, n, a, 0, n, 'Hessian-like');
    checkedEigen(be, n, a, n - 8, n, 'Hessian-like, top 8');
    checkedEigen(be, n, a, 3, 20, 'Hessian-like, inside the bulk');
  });

  test(`${be.name}: syevr returns info −2 for NaN or infinity in the lower triangle, writing nothing`, () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      for (const [lo, hi, vectors] of [[0, 4, true], [3, 4, true], [0, 4, false]] as const) {
        const a = randomSymmetric(4, seededRandom(27));
        a[2 * 4 + 1] = bad;
        const w = new Float64Array(hi - lo).fill(7);
        const z = new Float64Array(4 * (hi - lo)).fill(7);
        assert.deepEqual(be.syevr(4, a, 4, lo, hi, w, vectors ? z : null, hi - lo), { info: -2, m: 0 }, `${bad} [${lo}, ${hi})`);
        assert.ok(w.every((v) => v === 7) && z.every((v) => v === 7), `${bad}: nothing written`);
      }
    }
    const upper = randomSymmetric(4, seededRandom(28));
    upper[1 * 4 + 2] = NaN; // strict upper: not read
    assert.deepEqual(be.syevr(4, upper, 4, 0, 4, new Float64Array(4), new Float64Array(16), 4), { info: 0, m: 4 });
  });
}

test('syevr: the TypeScript and OpenBLAS eigenvalues agree', (t) => {
  const native = backends.find((b) => b.name === 'openblas');
  if (!native) {
    t.skip(`native backend not tested: ${nativeMissing}`);
    return;
  }
  const rand = seededRandom(29);
  for (const [n, lo, hi] of [[150, 0, 150], [150, 140, 150], [64, 10, 40]]) {
    const a = randomSymmetric(n, rand);
    const ours = new Float64Array(hi - lo), theirs = new Float64Array(hi - lo);
    assert.equal(typescriptBackend.syevr(n, new Float64Array(a), n, lo, hi, ours, null, 0).info, 0);
    assert.equal(native.syevr(n, new Float64Array(a), n, lo, hi, theirs, null, 0).info, 0);
    const d = maxAbsDiff(ours, theirs);
    assert.ok(d <= 1e-13 * frobenius(a), `n=${n} [${lo}, ${hi}): max difference ${d.toExponential(2)}`);
  }
});

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
  // potrs: A n × n, B nrhs × n
  assert.throws(call(be.potrs, 2, 1, x, 2, x), TypeError);
  assert.throws(call(be.potrs, 2, 1, x, 2, new Float32Array(2), 2), TypeError);
  assert.throws(call(be.potrs, 3, 1, x, 3, new Float64Array(3), 3), RangeError);
  assert.throws(call(be.potrs, 2, 3, x, 2, new Float64Array(5), 2), RangeError);
  assert.throws(call(be.potrs, 2, 2, x, 2, x, 1), RangeError);
  // syevr: A n × n, w ≥ hi − lo, z n × (hi − lo) or null, 0 ≤ lo ≤ hi ≤ n
  const w2 = new Float64Array(2);
  assert.throws(call(be.syevr, 2, x, 2, 0, 2, w2, x), TypeError);
  assert.throws(call(be.syevr, 2, x, 2, 0, 2, w2, undefined, 2), TypeError);
  assert.throws(call(be.syevr, 2, x, 2, 0, 2, w2, new Float32Array(4), 2), TypeError);
  assert.throws(call(be.syevr, 2, x, 2, 0, 2, w2, [1, 0, 0, 1], 2), TypeError);
  assert.throws(call(be.syevr, 2, x, 2, 1.5, 2, w2, x, 2), TypeError);
  assert.throws(call(be.syevr, 3, x, 3, 0, 3, new Float64Array(3), new Float64Array(9), 3), RangeError);
  assert.throws(call(be.syevr, 2, x, 1, 0, 2, w2, x, 2), RangeError);
  assert.throws(call(be.syevr, 2, x, 2, 0, 3, new Float64Array(3), new Float64Array(6), 3), RangeError);
  assert.throws(call(be.syevr, 2, x, 2, 2, 1, w2, x, 2), RangeError);
  assert.throws(call(be.syevr, 2, x, 2, 0, 2, new Float64Array(1), x, 2), RangeError);
  assert.throws(call(be.syevr, 2, x, 2, 0, 2, w2, new Float64Array(3), 2), RangeError);
  assert.throws(call(be.syevr, 2, x, 2, 0, 2, w2, x, 1), RangeError);
  assert.throws(call(be.syevr, 2, x, 2, 0, 1, w2, new Float64Array(1), 1), RangeError);
  // the checks come before LAPACK runs: the arguments are untouched
  const a = new Float64Array([2, 0, 1, 2]);
  assert.throws(call(be.syevr, 2, a, 2, 0, 2, w2, new Float64Array(3), 2), RangeError);
  assert.deepEqual([...a, ...w2], [2, 0, 1, 2, 0, 0]);
});
