/**
 * The TypeScript backend's symmetric eigensolver ({@link LinalgBackend.syevr}), in the steps of
 * LAPACK's drivers, row-major throughout:
 *
 * 1. Householder reduction of the lower triangle to tridiagonal form, A = Q·T·Qᵀ (dsytd2),
 *    4n³/3 flops, its reflectors left in the lower triangle of A.
 * 2. T splits where an off-diagonal entry is negligible (dstedc's test); each unreduced block:
 *    - eigenvalues only: implicit QL with shifts (EISPACK tql1/tql2, LAPACK dsterf), O(n²);
 *    - all eigenvectors (or a large subset): Cuppen's divide and conquer (dstedc, dlaed0–dlaed4)
 *      with Gu and Eisenstat's recomputed z, so the vectors are orthogonal to working accuracy;
 *      its work is in GEMM, at most 4n³/3 flops and much less where the problem deflates;
 *    - a small subset: QL eigenvalues, then inverse iteration (dstein) with the vectors of close
 *      eigenvalues orthogonalised during the iteration, and all of a block's vectors once more
 *      at the end, O(n·m²).
 * 3. Back-transformation Z ← Q·Z by blocks of reflectors I − V·T·Vᵀ (dlarft, dlarfb), 2n²m flops
 *    in GEMM.
 *
 * The backend's GEMM is passed in (`gemm` below), so that this file needs nothing from
 * typescript.ts and typescript.ts nothing from here but {@link syevr}.
 */
import type { LinalgBackend, SyevrResult } from './types.ts';

type Gemm = LinalgBackend['gemm'];

/** LAPACK's dlamch('E'): the unit roundoff, half the distance from 1 to the next double. */
const EPS = 2 ** -53;
/** LAPACK's dlamch('S'): the smallest normal double. */
const SAFMIN = 2 ** -1022;
/** Blocks of T at most this large are solved by QL, not divided further (LAPACK: 25). */
const LEAF = 32;
/** Reflectors applied together in the back-transformation. */
const NB = 32;
/** QL iterations allowed per eigenvalue before giving up (LAPACK dsteqr: 30). */
const MAX_QL_ITERATIONS = 30;
/** Inverse iteration: iterations per vector, and how many more after the growth test is met (dstein). */
const MAX_INVERSE_ITERATIONS = 5;
const EXTRA_INVERSE_ITERATIONS = 2;

/**
 * See {@link LinalgBackend.syevr}: eigenpairs lo..hi−1 (0-based, ascending) of the symmetric
 * matrix in the lower triangle of `a` (destroyed); z (n × m row-major, eigenvectors as columns)
 * or null.
 */
export function syevr(
  gemm: Gemm, n: number, a: Float64Array, lda: number, lo: number, hi: number,
  w: Float64Array, z: Float64Array | null, ldz: number,
): SyevrResult {
  const m = hi - lo;
  if (m <= 0) return { info: 0, m: 0 };
  let anrm = 0;
  for (let i = 0; i < n; i++) {
    const ri = i * lda;
    for (let j = 0; j <= i; j++) {
      const v = a[ri + j];
      if (!Number.isFinite(v)) return { info: -2, m: 0 };
      const av = Math.abs(v);
      if (av > anrm) anrm = av;
    }
  }
  if (n === 1) {
    w[0] = a[0];
    if (z) z[0] = 1;
    return { info: 0, m: 1 };
  }
  // Scale into the range where squares neither overflow nor vanish (dsyevr's bounds).
  const smlnum = SAFMIN / EPS;
  const rmin = Math.sqrt(smlnum);
  const rmax = Math.min(Math.sqrt(1 / smlnum), 1 / Math.sqrt(Math.sqrt(SAFMIN)));
  let sigma = 1;
  if (anrm > 0 && anrm < rmin) sigma = rmin / anrm;
  else if (anrm > rmax) sigma = rmax / anrm;
  if (sigma !== 1) {
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * lda + j] *= sigma;
  }

  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const tau = new Float64Array(n);
  tridiagonalize(n, a, lda, d, e, tau);
  const blocks = splitBlocks(n, d, e);

  let info: number;
  if (z === null) info = valuesOnly(d, e, blocks, lo, hi, w);
  else if (useInverseIteration(n, m)) info = subsetVectors(n, d, e, blocks, lo, hi, w, z, ldz);
  else info = allVectors(gemm, n, d, e, blocks, lo, hi, w, z, ldz);
  if (info !== 0) return { info, m: 0 };
  if (z !== null) applyQ(gemm, n, a, lda, tau, m, z, ldz);
  if (sigma !== 1) for (let j = 0; j < m; j++) w[j] /= sigma;
  return { info: 0, m };
}

/**
 * Inverse iteration for m of n eigenvectors costs O(n·m²) in level-1 loops, divide and conquer
 * at most 4n³/3 in GEMM for all n. Measured at n = 2000 on a random spectrum (with the
 * reduction and back-transformation): m = 500 7.1 s vs 8.4 s, m = 700 8.9 s vs 10.4 s; the
 * crossover is nearer n/2.5, but clustered spectra (Hessians have many eigenvalues near zero)
 * make inverse iteration's orthogonalisation dearer and divide and conquer cheaper (deflation).
 */
function useInverseIteration(n: number, m: number): boolean {
  return m * 4 <= n;
}

/**
 * Householder reduction of the symmetric A (lower triangle, n × n) to tridiagonal T = Qᵀ·A·Q
 * (LAPACK dsytd2, 'L'): d gets T's diagonal, e[0..n−1) its subdiagonal (e[n−1] = 0). Q is
 * H_0·H_1·…·H_{n−2}, H_j = I − tau[j]·v_j·v_jᵀ with v_j zero above row j + 1, one in it, and
 * below it in column j of `a` (rows j + 2..n−1). Each step is a symmetric matrix-vector product
 * and a rank-2 update of the trailing lower triangle: 4n³/3 flops in all.
 */
function tridiagonalize(n: number, a: Float64Array, lda: number, d: Float64Array, e: Float64Array, tau: Float64Array): void {
  const v = new Float64Array(n);
  const p = new Float64Array(n);
  for (let j = 0; j < n - 1; j++) {
    d[j] = a[j * lda + j];
    const r = j + 1;
    const len = n - r;
    const alpha = a[r * lda + j];
    let scale = 0;
    for (let i = 1; i < len; i++) scale = Math.max(scale, Math.abs(a[(r + i) * lda + j]));
    let xnorm = 0;
    if (scale > 0) {
      let ss = 0;
      for (let i = 1; i < len; i++) {
        const t = a[(r + i) * lda + j] / scale;
        ss += t * t;
      }
      xnorm = scale * Math.sqrt(ss);
    }
    if (xnorm === 0) {
      // already reduced: H_j = I
      tau[j] = 0;
      e[j] = alpha;
      continue;
    }
    const beta = alpha >= 0 ? -Math.hypot(alpha, xnorm) : Math.hypot(alpha, xnorm);
    const t = (beta - alpha) / beta;
    const s = 1 / (alpha - beta);
    v[0] = 1;
    for (let i = 1; i < len; i++) {
      const o = (r + i) * lda + j;
      a[o] *= s;
      v[i] = a[o];
    }
    e[j] = beta;
    tau[j] = t;
    const off = r * lda + r;
    // p = t·A22·v, then w = p − (t/2)(pᵀv)·v (kept in p), then A22 ← A22 − v·wᵀ − w·vᵀ
    symvLower(len, a, off, lda, v, p);
    let pv = 0;
    for (let i = 0; i < len; i++) {
      p[i] *= t;
      pv += p[i] * v[i];
    }
    const c = -0.5 * t * pv;
    for (let i = 0; i < len; i++) p[i] += c * v[i];
    syr2Lower(len, a, off, lda, v, p);
  }
  d[n - 1] = a[(n - 1) * lda + n - 1];
  e[n - 1] = 0;
  tau[n - 1] = 0;
}

/**
 * y ← A·x for the len × len symmetric A in the lower triangle of a[off..] (ld lda), in one pass
 * over the triangle: row i contributes A[i][k]·x[k] to y[i] and A[i][k]·x[i] to y[k]. Four rows
 * at a time, so that each x[k] and y[k] is loaded once for four matrix entries (3 GFLOP/s here
 * against 1–1.6 row by row).
 */
function symvLower(len: number, a: Float64Array, off: number, lda: number, x: Float64Array, y: Float64Array): void {
  y.fill(0, 0, len);
  let i = 0;
  for (; i + 3 < len; i += 4) {
    const r0 = off + i * lda;
    const r1 = r0 + lda;
    const r2 = r1 + lda;
    const r3 = r2 + lda;
    const x0 = x[i];
    const x1 = x[i + 1];
    const x2 = x[i + 2];
    const x3 = x[i + 3];
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let k = 0; k < i; k++) {
      const a0 = a[r0 + k];
      const a1 = a[r1 + k];
      const a2 = a[r2 + k];
      const a3 = a[r3 + k];
      const xk = x[k];
      s0 += a0 * xk;
      s1 += a1 * xk;
      s2 += a2 * xk;
      s3 += a3 * xk;
      y[k] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3;
    }
    // the 4 × 4 diagonal block
    const a10 = a[r1 + i];
    const a20 = a[r2 + i];
    const a21 = a[r2 + i + 1];
    const a30 = a[r3 + i];
    const a31 = a[r3 + i + 1];
    const a32 = a[r3 + i + 2];
    y[i] += s0 + a[r0 + i] * x0 + a10 * x1 + a20 * x2 + a30 * x3;
    y[i + 1] += s1 + a10 * x0 + a[r1 + i + 1] * x1 + a21 * x2 + a31 * x3;
    y[i + 2] += s2 + a20 * x0 + a21 * x1 + a[r2 + i + 2] * x2 + a32 * x3;
    y[i + 3] += s3 + a30 * x0 + a31 * x1 + a32 * x2 + a[r3 + i + 3] * x3;
  }
  for (; i < len; i++) {
    const ri = off + i * lda;
    const xi = x[i];
    let s = 0;
    for (let k = 0; k < i; k++) {
      const aik = a[ri + k];
      s += aik * x[k];
      y[k] += aik * xi;
    }
    y[i] += s + a[ri + i] * xi;
  }
}

/**
 * Lower triangle of A ← A − v·wᵀ − w·vᵀ for the len × len A at a[off..] (ld lda); four rows at
 * a time like {@link symvLower}.
 */
function syr2Lower(len: number, a: Float64Array, off: number, lda: number, v: Float64Array, w: Float64Array): void {
  let i = 0;
  for (; i + 3 < len; i += 4) {
    const r0 = off + i * lda;
    const r1 = r0 + lda;
    const r2 = r1 + lda;
    const r3 = r2 + lda;
    const v0 = v[i];
    const v1 = v[i + 1];
    const v2 = v[i + 2];
    const v3 = v[i + 3];
    const w0 = w[i];
    const w1 = w[i + 1];
    const w2 = w[i + 2];
    const w3 = w[i + 3];
    for (let k = 0; k < i; k++) {
      const vk = v[k];
      const wk = w[k];
      a[r0 + k] -= v0 * wk + w0 * vk;
      a[r1 + k] -= v1 * wk + w1 * vk;
      a[r2 + k] -= v2 * wk + w2 * vk;
      a[r3 + k] -= v3 * wk + w3 * vk;
    }
    for (let r = 0; r < 4; r++) {
      const ro = r0 + r * lda;
      const vr = v[i + r];
      const wr = w[i + r];
      for (let k = i; k <= i + r; k++) a[ro + k] -= vr * w[k] + wr * v[k];
    }
  }
  for (; i < len; i++) {
    const ri = off + i * lda;
    const vi = v[i];
    const wi = w[i];
    for (let k = 0; k <= i; k++) a[ri + k] -= vi * w[k] + wi * v[k];
  }
}

/** An unreduced block T[start..start+size) of the tridiagonal. */
interface Block {
  readonly start: number;
  readonly size: number;
}

/**
 * Splits T where |e_i| ≤ ε·√|d_i|·√|d_{i+1}| (LAPACK dstedc), a perturbation below the
 * rounding of the reduction; such e_i are set to 0.
 */
function splitBlocks(n: number, d: Float64Array, e: Float64Array): Block[] {
  const blocks: Block[] = [];
  let start = 0;
  for (let i = 0; i < n - 1; i++) {
    const tiny = EPS * Math.sqrt(Math.abs(d[i])) * Math.sqrt(Math.abs(d[i + 1]));
    if (Math.abs(e[i]) <= tiny) {
      e[i] = 0;
      blocks.push({ start, size: i + 1 - start });
      start = i + 1;
    }
  }
  blocks.push({ start, size: n - start });
  return blocks;
}

/**
 * Implicit QL with shifts on the symmetric tridiagonal of order s with diagonal d and
 * off-diagonal e (e[i] couples i and i + 1; e needs s entries, e[s−1] is set to 0): d gets the
 * eigenvalues, unsorted; e is destroyed. With vt (s × s, ld ldv), each plane rotation is applied
 * to rows i, i + 1 of vt: started from the identity, ROW k of vt ends as the eigenvector of d[k].
 * The EISPACK tql2 scheme (Bowdler, Martin, Reinsch and Wilkinson), with LAPACK's limit of 30
 * iterations per eigenvalue. Returns 0, or l + 1 when eigenvalue l did not converge. Cost about
 * 30s² flops, and about 6s³ more with vectors.
 */
function tql(s: number, d: Float64Array, e: Float64Array, vt: Float64Array | null, ldv: number): number {
  const eps = 2 * EPS;
  e[s - 1] = 0;
  let f = 0;
  let tst1 = 0;
  for (let l = 0; l < s; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < s - 1 && Math.abs(e[m]) > eps * tst1) m++;
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > MAX_QL_ITERATIONS) return l + 1;
        // shift from the leading 2 × 2 (Wilkinson's choice)
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < s; i++) d[i] -= h;
        f += h;
        // the QL sweep from m − 1 up to l
        p = d[m];
        let c = 1;
        let c2 = 1;
        let c3 = 1;
        const el1 = e[l + 1];
        let sn = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = sn;
          g = c * e[i];
          h = c * p;
          r = Math.hypot(p, e[i]);
          e[i + 1] = sn * r;
          sn = e[i] / r;
          c = p / r;
          p = c * d[i] - sn * g;
          d[i + 1] = h + sn * (c * g + sn * d[i]);
          if (vt !== null) {
            const ri = i * ldv;
            const rj = ri + ldv;
            for (let k = 0; k < s; k++) {
              const x = vt[ri + k];
              const y = vt[rj + k];
              vt[rj + k] = sn * x + c * y;
              vt[ri + k] = c * x - sn * y;
            }
          }
        }
        p = (-sn * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = sn * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
  return 0;
}

/** The eigenvalues of one block, by QL on copies of its d and e. */
function blockValues(d: Float64Array, e: Float64Array, b: Block): { values: Float64Array; info: number } {
  const values = d.slice(b.start, b.start + b.size);
  if (b.size === 1) return { values, info: 0 };
  const off = new Float64Array(b.size);
  off.set(e.subarray(b.start, b.start + b.size - 1));
  const info = tql(b.size, values, off, null, 0);
  return { values, info: info === 0 ? 0 : info + b.start };
}

/** One eigenvalue of T: its value, its block and its place among that block's (ascending) values. */
interface Eigenvalue {
  readonly value: number;
  readonly block: number;
  readonly local: number;
}

/** All eigenvalues of T with their blocks, ascending (QL per block); or the failing info. */
function allValues(d: Float64Array, e: Float64Array, blocks: readonly Block[]): Eigenvalue[] | number {
  const out: Eigenvalue[] = [];
  for (let b = 0; b < blocks.length; b++) {
    const { values, info } = blockValues(d, e, blocks[b]);
    if (info !== 0) return info;
    values.sort();
    for (let k = 0; k < values.length; k++) out.push({ value: values[k], block: b, local: k });
  }
  return out.sort((x, y) => x.value - y.value);
}

function valuesOnly(d: Float64Array, e: Float64Array, blocks: readonly Block[], lo: number, hi: number, w: Float64Array): number {
  const all = allValues(d, e, blocks);
  if (typeof all === 'number') return all;
  for (let j = lo; j < hi; j++) w[j - lo] = all[j].value;
  return 0;
}

/**
 * Eigenpairs lo..hi−1 of T by divide and conquer on each block: values into w, the vectors of T
 * (columns, zero outside their block) into z. When all n are wanted z itself holds the n × n
 * block-diagonal eigenvector matrix while it is built; otherwise a scratch n × n does.
 */
function allVectors(
  gemm: Gemm, n: number, d: Float64Array, e: Float64Array, blocks: readonly Block[], lo: number, hi: number,
  w: Float64Array, z: Float64Array, ldz: number,
): number {
  const whole = lo === 0 && hi === n;
  const q = whole ? z : new Float64Array(n * n);
  const ldq = whole ? ldz : n;
  for (let i = 0; i < n; i++) q.fill(0, i * ldq, i * ldq + n);
  for (const b of blocks) {
    const info = blockVectors(gemm, d, e, b, q, ldq);
    if (info !== 0) return info;
  }
  // d now holds each block's eigenvalues ascending, q's columns their vectors: order them all
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[x] - d[y]);
  for (let j = lo; j < hi; j++) w[j - lo] = d[order[j]];
  if (whole) permuteColumns(n, n, q, ldq, order);
  else {
    for (let i = 0; i < n; i++) {
      const rq = i * ldq;
      const rz = i * ldz;
      for (let j = lo; j < hi; j++) z[rz + j - lo] = q[rq + order[j]];
    }
  }
  return 0;
}

/**
 * Eigenpairs of one unreduced block of T by divide and conquer, scaled to max-norm 1 as dstedc
 * does (the deflation tolerances are absolute): d[start..start+size) gets the eigenvalues in
 * ascending order, the block's diagonal window of q their eigenvectors as columns.
 */
function blockVectors(gemm: Gemm, d: Float64Array, e: Float64Array, b: Block, q: Float64Array, ldq: number): number {
  const { start, size } = b;
  const qb = q.subarray(start * ldq + start);
  if (size === 1) {
    qb[0] = 1;
    return 0;
  }
  const db = d.subarray(start, start + size);
  const eb = e.slice(start, start + size - 1);
  let norm = 0;
  for (let i = 0; i < size; i++) norm = Math.max(norm, Math.abs(db[i]));
  for (let i = 0; i < size - 1; i++) norm = Math.max(norm, Math.abs(eb[i]));
  if (norm === 0) {
    for (let i = 0; i < size; i++) qb[i * ldq + i] = 1;
    return 0;
  }
  for (let i = 0; i < size; i++) db[i] /= norm;
  for (let i = 0; i < size - 1; i++) eb[i] /= norm;
  const info = divideAndConquer(gemm, size, db, eb, qb, ldq);
  for (let i = 0; i < size; i++) db[i] *= norm;
  return info === 0 ? 0 : info + start;
}

/**
 * Cuppen's divide and conquer on the unreduced tridiagonal of order s (d, e[0..s−1)): T is torn
 * at its middle into two halves and a rank-one term (dlaed0), each half solved recursively, then
 * merged ({@link merge}). d gets the eigenvalues ascending, the s × s window q (ld ldq) the
 * eigenvectors as columns. Returns 0 or a QL failure's info.
 */
function divideAndConquer(gemm: Gemm, s: number, d: Float64Array, e: Float64Array, q: Float64Array, ldq: number): number {
  if (s <= LEAF) return leaf(s, d, e, q, ldq);
  const n1 = s >> 1;
  const rho = e[n1 - 1];
  d[n1 - 1] -= Math.abs(rho);
  d[n1] -= Math.abs(rho);
  const info1 = divideAndConquer(gemm, n1, d.subarray(0, n1), e.subarray(0, n1 - 1), q, ldq);
  if (info1 !== 0) return info1;
  const info2 = divideAndConquer(gemm, s - n1, d.subarray(n1), e.subarray(n1), q.subarray(n1 * ldq + n1), ldq);
  if (info2 !== 0) return info2 + n1;
  merge(gemm, s, n1, d, q, ldq, rho);
  return 0;
}

/** A small block by QL from the identity; eigenvalues ascending, eigenvectors into q's columns. */
function leaf(s: number, d: Float64Array, e: Float64Array, q: Float64Array, ldq: number): number {
  const vt = new Float64Array(s * s);
  for (let i = 0; i < s; i++) vt[i * s + i] = 1;
  const off = new Float64Array(s);
  off.set(e.subarray(0, s - 1));
  const info = tql(s, d, off, vt, s);
  if (info !== 0) return info;
  const order = Array.from({ length: s }, (_, i) => i).sort((x, y) => d[x] - d[y]);
  const values = Float64Array.from(order, (k) => d[k]);
  d.set(values);
  for (let j = 0; j < s; j++) {
    const rv = order[j] * s;
    for (let i = 0; i < s; i++) q[i * ldq + j] = vt[rv + i];
  }
  return 0;
}

/**
 * Merges two solved halves (LAPACK dlaed1–dlaed3): T = diag(T1, T2) + |ρ|·u·uᵀ with
 * u = e_{n1−1} ± e_{n1}, so with Q = diag(Q1, Q2) the problem is D + ρ'·z·zᵀ, z = Qᵀu/√2 and
 * ρ' = 2|ρ|. Components of z that are negligible, and pairs of nearly equal d (rotated so that
 * one component vanishes), deflate: their eigenpairs are those of D. The remaining K form the
 * secular equation 1 + ρ'·Σ z_i²/(d_i − λ) = 0, one root between consecutive d_i; each root's
 * vector (ẑ_i/(d_i − λ))_i uses Gu and Eisenstat's ẑ recomputed from all roots, which keeps the
 * vectors orthogonal; they multiply Q's columns in two GEMMs, one per half, each over only the
 * columns with support in that half (dlaed2's column types). Cost ≤ s³ flops + O(s²·K).
 */
function merge(gemm: Gemm, s: number, n1: number, d: Float64Array, q: Float64Array, ldq: number, rhoSigned: number): void {
  const n2 = s - n1;
  // Q = diag(Q1, Q2): clear the off-diagonal blocks, so that every column is a full column.
  for (let i = 0; i < n1; i++) q.fill(0, i * ldq + n1, i * ldq + s);
  for (let i = n1; i < s; i++) q.fill(0, i * ldq, i * ldq + n1);
  const z = new Float64Array(s);
  const half = Math.SQRT1_2;
  const flip = rhoSigned < 0 ? -half : half;
  for (let j = 0; j < n1; j++) z[j] = half * q[(n1 - 1) * ldq + j];
  for (let j = n1; j < s; j++) z[j] = flip * q[n1 * ldq + j];
  const rho = 2 * Math.abs(rhoSigned);

  // ascending order of d: a merge of the two sorted halves
  const order = new Int32Array(s);
  for (let i = 0, j = n1, k = 0; k < s; k++) order[k] = j >= s || (i < n1 && d[i] <= d[j]) ? i++ : j++;

  let dmax = 0;
  let zmax = 0;
  for (let i = 0; i < s; i++) {
    dmax = Math.max(dmax, Math.abs(d[i]));
    zmax = Math.max(zmax, Math.abs(z[i]));
  }
  const tol = 64 * EPS * Math.max(dmax, zmax);
  if (rho * zmax <= tol) {
    // the coupling is negligible: D's eigenpairs are T's
    const values = Float64Array.from(order, (k) => d[k]);
    d.set(values);
    permuteColumns(s, s, q, ldq, Array.from(order));
    return;
  }

  // Deflation, in ascending order of d (dlaed2). Column types: 1 support in the top half only,
  // 2 both halves, 3 bottom only, 4 deflated.
  const type = new Uint8Array(s);
  for (let j = 0; j < s; j++) type[j] = j < n1 ? 1 : 3;
  const kept: number[] = [];
  const deflated: number[] = [];
  let pj = -1;
  for (let jj = 0; jj < s; jj++) {
    const nj = order[jj];
    if (rho * Math.abs(z[nj]) <= tol) {
      type[nj] = 4;
      deflated.push(nj);
      continue;
    }
    if (pj < 0) {
      pj = nj;
      continue;
    }
    const zp = z[pj];
    const zn = z[nj];
    const r = Math.hypot(zn, zp);
    const c = zn / r;
    const sn = -zp / r;
    const gap = d[nj] - d[pj];
    if (Math.abs(gap * c * sn) <= tol) {
      // rotate columns pj, nj so that z[pj] vanishes; pj deflates
      z[nj] = r;
      z[pj] = 0;
      if (type[nj] !== type[pj]) type[nj] = 2;
      type[pj] = 4;
      for (let i = 0; i < s; i++) {
        const o = i * ldq;
        const x = q[o + pj];
        const y = q[o + nj];
        q[o + pj] = c * x + sn * y;
        q[o + nj] = c * y - sn * x;
      }
      const dp = d[pj];
      const dn = d[nj];
      d[pj] = dp * c * c + dn * sn * sn;
      d[nj] = dp * sn * sn + dn * c * c;
      deflated.push(pj);
    } else {
      kept.push(pj);
    }
    pj = nj;
  }
  if (pj >= 0) kept.push(pj);
  const K = kept.length;

  // the kept columns grouped by type 1, 2, 3: grouped[g] is an index into kept
  const grouped: number[] = [];
  for (const t of [1, 2, 3]) for (let k = 0; k < K; k++) if (type[kept[k]] === t) grouped.push(k);
  let c1 = 0;
  let c3 = 0;
  for (const k of kept) {
    if (type[k] === 1) c1++;
    else if (type[k] === 3) c3++;
  }
  const c12 = K - c3; // columns with support in the top half
  const c23 = K - c1; // and in the bottom half

  // secular equation: roots lam[j], and row j of delta = (dl_i − lam_j)_i
  const dl = Float64Array.from(kept, (k) => d[k]);
  const zz = Float64Array.from(kept, (k) => z[k] * z[k]);
  const lam = new Float64Array(K);
  const delta = new Float64Array(K * K);
  const prod = new Float64Array(K).fill(1);
  for (let j = 0; j < K; j++) {
    const row = delta.subarray(j * K, j * K + K);
    lam[j] = secularRoot(K, dl, zz, rho, j, row);
    // Gu–Eisenstat: ẑ_i² ∝ −Π_j (dl_i − lam_j) / Π_{j≠i} (dl_i − dl_j), as a product of ratios
    for (let i = 0; i < K; i++) prod[i] *= i === j ? row[i] : row[i] / (dl[i] - dl[j]);
  }
  const zhat = new Float64Array(K);
  for (let i = 0; i < K; i++) {
    const v = Math.sqrt(Math.abs(prod[i]));
    zhat[i] = z[kept[i]] < 0 ? -v : v;
  }
  // row j of ut: root j's vector over the kept components, in grouped order, unit norm
  const ut = delta;
  const tmp = new Float64Array(K);
  for (let j = 0; j < K; j++) {
    const o = j * K;
    let ss = 0;
    for (let g = 0; g < K; g++) {
      const i = grouped[g];
      const v = zhat[i] / ut[o + i];
      tmp[g] = v;
      ss += v * v;
    }
    const inv = 1 / Math.sqrt(ss);
    for (let g = 0; g < K; g++) ut[o + g] = tmp[g] * inv;
  }

  // gather the old columns: top rows of types 1, 2; bottom rows of types 2, 3; deflated whole
  const qtop = new Float64Array(n1 * c12);
  for (let i = 0; i < n1; i++) {
    const o = i * ldq;
    for (let g = 0; g < c12; g++) qtop[i * c12 + g] = q[o + kept[grouped[g]]];
  }
  const qbot = new Float64Array(n2 * c23);
  for (let i = 0; i < n2; i++) {
    const o = (n1 + i) * ldq;
    for (let g = 0; g < c23; g++) qbot[i * c23 + g] = q[o + kept[grouped[c1 + g]]];
  }
  const nd = deflated.length;
  const qdef = new Float64Array(s * nd);
  for (let i = 0; i < s; i++) {
    const o = i * ldq;
    for (let t = 0; t < nd; t++) qdef[i * nd + t] = q[o + deflated[t]];
  }
  const dDef = Float64Array.from(deflated, (k) => d[k]);

  // new vectors into columns 0..K−1, deflated ones into K..s−1
  if (c12 > 0) gemm(false, true, n1, K, c12, 1, qtop, c12, ut, K, 0, q, ldq);
  else for (let i = 0; i < n1; i++) q.fill(0, i * ldq, i * ldq + K);
  if (c23 > 0) gemm(false, true, n2, K, c23, 1, qbot, c23, ut.subarray(c1), K, 0, q.subarray(n1 * ldq), ldq);
  else for (let i = n1; i < s; i++) q.fill(0, i * ldq, i * ldq + K);
  for (let i = 0; i < s; i++) {
    const o = i * ldq + K;
    for (let t = 0; t < nd; t++) q[o + t] = qdef[i * nd + t];
  }
  d.set(lam);
  d.set(dDef, K);
  const final = Array.from({ length: s }, (_, i) => i).sort((x, y) => d[x] - d[y]);
  const values = Float64Array.from(final, (k) => d[k]);
  d.set(values);
  permuteColumns(s, s, q, ldq, final);
}

/**
 * Root j (0-based) of the secular equation 1 + ρ·Σ_i zz_i/(dl_i − λ) = 0, dl ascending, ρ > 0,
 * zz_i = z_i² > 0: λ_j lies in (dl_j, dl_{j+1}), or in (dl_{K−1}, dl_{K−1} + ρ·Σzz) for the last.
 * It is found as λ = dl_o + τ from the nearer pole dl_o, so that out[i] = dl_i − λ_j, computed as
 * (dl_i − dl_o) − τ, is accurate even next to a pole (what the eigenvectors need). Each step
 * solves a model with the two neighbouring poles exact and the rest matched in value and slope
 * (the "middle way" of LAPACK dlaed4), safeguarded by bisection on the bracketing interval.
 */
function secularRoot(K: number, dl: Float64Array, zz: Float64Array, rho: number, j: number, out: Float64Array): number {
  if (K === 1) {
    out[0] = -rho * zz[0];
    return dl[0] + rho * zz[0];
  }
  const last = j === K - 1;
  let origin: number;
  let lo: number;
  let hi: number;
  if (!last) {
    const mid = (dl[j + 1] - dl[j]) / 2;
    let f = 1;
    for (let i = 0; i < K; i++) f += (rho * zz[i]) / (dl[i] - dl[j] - mid);
    if (f >= 0) {
      origin = j;
      lo = 0;
      hi = mid;
    } else {
      origin = j + 1;
      lo = -mid;
      hi = 0;
    }
  } else {
    origin = j;
    let sum = 0;
    for (let i = 0; i < K; i++) sum += zz[i];
    lo = 0;
    hi = rho * sum;
  }
  const d0 = dl[origin];
  for (let i = 0; i < K; i++) out[i] = dl[i] - d0; // δ_i, poles relative to the origin
  // the interval's two poles relative to the origin (the last root has none on its right)
  const pl = out[j];
  const pr = last ? 0 : out[j + 1];
  let tau = (lo + hi) / 2;
  for (let iter = 0; iter < 100; iter++) {
    // g(τ) = 1 + ψ(τ) + φ(τ): ψ over the poles at or left of dl_j, φ over those right of it
    let psi = 0;
    let dpsi = 0;
    let phi = 0;
    let dphi = 0;
    for (let i = 0; i <= j; i++) {
      const t = 1 / (out[i] - tau);
      const u = rho * zz[i] * t;
      psi += u;
      dpsi += u * t;
    }
    for (let i = j + 1; i < K; i++) {
      const t = 1 / (out[i] - tau);
      const u = rho * zz[i] * t;
      phi += u;
      dphi += u * t;
    }
    const g = 1 + psi + phi;
    if (g === 0) break;
    if (g < 0) lo = tau;
    else hi = tau;
    // |g| within the rounding error of its own evaluation (dlaed4's test)
    if (Math.abs(g) <= EPS * (8 * (1 + Math.abs(psi) + Math.abs(phi)) + Math.abs(tau) * (dpsi + dphi))) break;
    // model: C + a/(pl − x) + b/(pr − x), a and b matching ψ and φ in slope at τ
    const hl = pl - tau;
    const a = dpsi * hl * hl;
    let next: number;
    if (last) {
      const C = 1 + psi - a / hl;
      next = C > 0 ? pl + a / C : NaN;
    } else {
      const hr = pr - tau;
      const b = dphi * hr * hr;
      const C = 1 + psi - a / hl + phi - b / hr;
      // C·(pl − x)(pr − x) + a·(pr − x) + b·(pl − x) = 0, a root between pl and pr
      const A2 = C;
      const B = C * (pl + pr) + a + b;
      const C0 = C * pl * pr + a * pr + b * pl;
      next = quadraticRootBetween(A2, B, C0, pl, pr);
    }
    if (!(next > lo && next < hi)) next = (lo + hi) / 2;
    if (next === tau || hi - lo <= 2 * EPS * Math.max(Math.abs(lo), Math.abs(hi))) {
      tau = next;
      break;
    }
    tau = next;
  }
  for (let i = 0; i < K; i++) out[i] -= tau;
  return d0 + tau;
}

/** The root in (pl, pr) of A·x² − B·x + C = 0 (A may be 0), or NaN, computed without cancellation. */
function quadraticRootBetween(A: number, B: number, C: number, pl: number, pr: number): number {
  const inside = (x: number) => x > Math.min(pl, pr) && x < Math.max(pl, pr);
  if (A === 0) return B !== 0 ? C / B : NaN;
  const disc = B * B - 4 * A * C;
  const sq = Math.sqrt(Math.max(disc, 0));
  const big = B >= 0 ? (B + sq) / (2 * A) : (B - sq) / (2 * A);
  const small = big !== 0 ? C / (A * big) : 0;
  if (inside(small)) return small;
  if (inside(big)) return big;
  return NaN;
}

/**
 * Eigenpairs lo..hi−1 by QL eigenvalues and inverse iteration on T (LAPACK dstein): for each
 * wanted eigenvalue λ of a block, solve (T_b − λ·I)·y = x a few times from a pseudo-random x,
 * with LU and partial pivoting, orthogonalising y against the vectors of eigenvalues within
 * 10⁻³‖T_b‖ (a cluster) while iterating; at the end each vector is orthogonalised once more
 * against all earlier ones of its block, which brings orthogonality to rounding level without
 * moving a converged vector off its eigenvalue. The vectors of T go into z's columns.
 */
function subsetVectors(
  n: number, d: Float64Array, e: Float64Array, blocks: readonly Block[], lo: number, hi: number,
  w: Float64Array, z: Float64Array, ldz: number,
): number {
  const all = allValues(d, e, blocks);
  if (typeof all === 'number') return all;
  const m = hi - lo;
  for (let j = 0; j < m; j++) w[j] = all[lo + j].value;
  for (let i = 0; i < n; i++) z.fill(0, i * ldz, i * ldz + m);
  // the wanted eigenvalues of each block, ascending, with their columns in z
  const byBlock = new Map<number, number[]>();
  for (let j = 0; j < m; j++) {
    const b = all[lo + j].block;
    const list = byBlock.get(b);
    if (list) list.push(j);
    else byBlock.set(b, [j]);
  }
  let seed = 0x2545f491;
  const random = () => {
    // xorshift32: a fixed sequence, so the results are reproducible
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 4294967296 - 0.5;
  };
  for (const [b, cols] of byBlock) {
    const { start, size } = blocks[b];
    if (size === 1) {
      for (const j of cols) z[start * ldz + j] = 1;
      continue;
    }
    const vecs = new Float64Array(cols.length * size);
    const values = cols.map((j) => w[j]);
    const info = inverseIteration(size, d.subarray(start, start + size), e.subarray(start, start + size - 1), values, vecs, random);
    if (info !== 0) return cols[info - 1] + lo + 1;
    for (let k = 0; k < cols.length; k++) {
      const j = cols[k];
      for (let i = 0; i < size; i++) z[(start + i) * ldz + j] = vecs[k * size + i];
    }
  }
  return 0;
}

/**
 * Inverse iteration for the eigenvectors of the unreduced tridiagonal (d, e) of order s
 * belonging to the ascending `values`: row k of vecs (values.length × s) gets the unit vector
 * of values[k]. Returns 0, or k + 1 when the k-th vector did not pass the growth test.
 */
function inverseIteration(
  s: number, d: Float64Array, e: Float64Array, values: readonly number[], vecs: Float64Array, random: () => number,
): number {
  let onenrm = Math.max(Math.abs(d[0]) + Math.abs(e[0]), Math.abs(d[s - 1]) + Math.abs(e[s - 2]));
  for (let i = 1; i < s - 1; i++) onenrm = Math.max(onenrm, Math.abs(d[i]) + Math.abs(e[i - 1]) + Math.abs(e[i]));
  const ortol = 1e-3 * onenrm;
  const growth = Math.sqrt(0.1 / s); // dstein's stopping criterion on the scaled iterate
  const lu = new TridiagonalLu(s);
  const x = new Float64Array(s);
  let failed = 0;
  let group = 0; // first vector of the current cluster
  let prev = 0;
  for (let k = 0; k < values.length; k++) {
    let shift = values[k];
    if (k > 0) {
      // equal shifts would give equal vectors: separate them a little
      const pertol = 10 * Math.abs(EPS * shift);
      if (shift - prev < pertol) shift = prev + pertol;
      if (Math.abs(shift - prev) > ortol) group = k;
    } else {
      group = 0;
    }
    for (let i = 0; i < s; i++) x[i] = random();
    lu.factor(d, e, shift);
    let checks = 0;
    let converged = false;
    for (let its = 0; its < MAX_INVERSE_ITERATIONS; its++) {
      // scale the right-hand side so that a converged solution has norm about 1 (dstein)
      let xmax = 0;
      for (let i = 0; i < s; i++) xmax = Math.max(xmax, Math.abs(x[i]));
      const scl = (s * onenrm * Math.max(EPS, Math.abs(lu.lastPivot()))) / xmax;
      for (let i = 0; i < s; i++) x[i] *= scl;
      lu.solve(x);
      for (let g = group; g < k; g++) orthogonalise(x, vecs, g * s, s);
      let nrm = 0;
      for (let i = 0; i < s; i++) nrm = Math.max(nrm, Math.abs(x[i]));
      if (nrm < growth) continue;
      if (++checks >= EXTRA_INVERSE_ITERATIONS + 1) {
        converged = true;
        break;
      }
    }
    if (!converged && failed === 0) failed = k + 1;
    for (let g = 0; g < k; g++) orthogonalise(x, vecs, g * s, s);
    let ss = 0;
    let imax = 0;
    for (let i = 0; i < s; i++) {
      ss += x[i] * x[i];
      if (Math.abs(x[i]) > Math.abs(x[imax])) imax = i;
    }
    // sign as dstein: the largest component positive
    const inv = (x[imax] < 0 ? -1 : 1) / Math.sqrt(ss);
    for (let i = 0; i < s; i++) vecs[k * s + i] = x[i] * inv;
    prev = shift;
  }
  return failed;
}

/** x ← x − (x·v)·v for the unit vector v = vecs[off..off+s). */
function orthogonalise(x: Float64Array, vecs: Float64Array, off: number, s: number): void {
  let dot = 0;
  for (let i = 0; i < s; i++) dot += x[i] * vecs[off + i];
  for (let i = 0; i < s; i++) x[i] -= dot * vecs[off + i];
}

/**
 * LU factorisation with partial pivoting of T − λ·I for a symmetric tridiagonal T (LAPACK
 * dlagtf), and solves with it that perturb a pivot which would overflow the division
 * (dlagts, job −1), as inverse iteration needs: U has three diagonals u0, u1, u2.
 */
class TridiagonalLu {
  private readonly u0: Float64Array;
  private readonly u1: Float64Array;
  private readonly u2: Float64Array;
  private readonly mult: Float64Array;
  private readonly swap: Uint8Array;
  private readonly s: number;
  private tol = 0;

  constructor(s: number) {
    this.s = s;
    this.u0 = new Float64Array(s);
    this.u1 = new Float64Array(s);
    this.u2 = new Float64Array(s);
    this.mult = new Float64Array(s);
    this.swap = new Uint8Array(s);
  }

  factor(d: Float64Array, e: Float64Array, lambda: number): void {
    const { s, u0, u1, u2, mult, swap } = this;
    // row k while eliminating: (diag, sup, sup2) = (u0[k], u1[k], u2[k]); row k+1 is (e[k], d[k+1] − λ, e[k+1])
    let diag = d[0] - lambda;
    let sup = s > 1 ? e[0] : 0;
    let tol = 0;
    for (let k = 0; k < s - 1; k++) {
      const sub = e[k];
      const nextDiag = d[k + 1] - lambda;
      const nextSup = k + 1 < s - 1 ? e[k + 1] : 0;
      if (Math.abs(diag) >= Math.abs(sub)) {
        const l = diag === 0 ? 0 : sub / diag;
        u0[k] = diag;
        u1[k] = sup;
        u2[k] = 0;
        mult[k] = l;
        swap[k] = 0;
        diag = nextDiag - l * sup;
        sup = nextSup;
      } else {
        const l = diag / sub;
        u0[k] = sub;
        u1[k] = nextDiag;
        u2[k] = nextSup;
        mult[k] = l;
        swap[k] = 1;
        diag = sup - l * nextDiag;
        sup = -l * nextSup;
      }
      tol = Math.max(tol, Math.abs(u0[k]), Math.abs(u1[k]), Math.abs(u2[k]));
    }
    u0[s - 1] = diag;
    u1[s - 1] = 0;
    u2[s - 1] = 0;
    tol = Math.max(tol, Math.abs(diag)) * 2 * EPS;
    this.tol = tol === 0 ? 2 * EPS : tol;
  }

  lastPivot(): number {
    return this.u0[this.s - 1];
  }

  /** x ← (T − λI)⁻¹·x, tiny pivots perturbed so that nothing overflows. */
  solve(x: Float64Array): void {
    const { s, u0, u1, u2, mult, swap, tol } = this;
    for (let k = 0; k < s - 1; k++) {
      if (swap[k]) {
        const t = x[k];
        x[k] = x[k + 1];
        x[k + 1] = t - mult[k] * x[k];
      } else {
        x[k + 1] -= mult[k] * x[k];
      }
    }
    const big = 1 / SAFMIN;
    for (let k = s - 1; k >= 0; k--) {
      let t = x[k];
      if (k + 1 < s) t -= u1[k] * x[k + 1];
      if (k + 2 < s) t -= u2[k] * x[k + 2];
      let pivot = u0[k];
      let pert = pivot < 0 ? -tol : tol;
      // dlagts: grow the perturbation until the quotient is representable
      while (Math.abs(pivot) < 1 && (pivot === 0 || Math.abs(t) > Math.abs(pivot) * big)) {
        pivot += pert;
        pert *= 2;
      }
      x[k] = t / pivot;
    }
  }
}

/**
 * Reorders the first `cols` columns of the rows × cols window q (ld ldq) in place so that new
 * column j is old column order[j]: cycle by cycle, one column held aside.
 */
function permuteColumns(rows: number, cols: number, q: Float64Array, ldq: number, order: readonly number[]): void {
  const done = new Uint8Array(cols);
  const held = new Float64Array(rows);
  for (let start = 0; start < cols; start++) {
    if (done[start] || order[start] === start) {
      done[start] = 1;
      continue;
    }
    for (let i = 0; i < rows; i++) held[i] = q[i * ldq + start];
    let j = start;
    for (;;) {
      done[j] = 1;
      const from = order[j];
      if (from === start) {
        for (let i = 0; i < rows; i++) q[i * ldq + j] = held[i];
        break;
      }
      for (let i = 0; i < rows; i++) q[i * ldq + j] = q[i * ldq + from];
      j = from;
    }
  }
}

/**
 * z ← Q·z for the Q = H_0·…·H_{n−2} that {@link tridiagonalize} left in `a` and `tau` (z is
 * n × m row-major, ld ldz), by blocks of NB reflectors taken last to first: each block's
 * product is I − V·T·Vᵀ (T upper triangular, LAPACK dlarft forward columnwise), applied as
 * W = Vᵀ·z, W ← T·W, z ← z − V·W (dlarfb). Cost 2n²m flops, in GEMM.
 */
function applyQ(gemm: Gemm, n: number, a: Float64Array, lda: number, tau: Float64Array, m: number, z: Float64Array, ldz: number): void {
  const reflectors = n - 1;
  if (reflectors <= 0 || m === 0) return;
  const v = new Float64Array(n * NB);
  const t = new Float64Array(NB * NB);
  const wk = new Float64Array(NB * m);
  const wk2 = new Float64Array(NB * m);
  const col = new Float64Array(NB);
  for (let j0 = Math.floor((reflectors - 1) / NB) * NB; j0 >= 0; j0 -= NB) {
    const nb = Math.min(NB, reflectors - j0);
    const r0 = j0 + 1;
    const rows = n - r0;
    // V (rows × nb): column c is reflector j0 + c, zero above its unit entry at row c
    for (let i = 0; i < rows; i++) {
      const o = i * nb;
      const ra = (r0 + i) * lda + j0;
      for (let c = 0; c < nb; c++) v[o + c] = i < c ? 0 : i === c ? 1 : a[ra + c];
    }
    // T: T[c][c] = τ_c, T[0:c, c] = −τ_c·T[0:c, 0:c]·(V[:, 0:c]ᵀ·v_c)
    t.fill(0, 0, nb * nb);
    for (let c = 0; c < nb; c++) {
      const tc = tau[j0 + c];
      if (tc === 0) continue;
      col.fill(0, 0, c);
      for (let i = c; i < rows; i++) {
        const o = i * nb;
        const vic = v[o + c];
        for (let r = 0; r < c; r++) col[r] += v[o + r] * vic;
      }
      for (let r = 0; r < c; r++) {
        let acc = 0;
        for (let k = r; k < c; k++) acc += t[r * nb + k] * col[k];
        t[r * nb + c] = -tc * acc;
      }
      t[c * nb + c] = tc;
    }
    const zs = z.subarray(r0 * ldz);
    gemm(true, false, nb, m, rows, 1, v, nb, zs, ldz, 0, wk, m);
    gemm(false, false, nb, m, nb, 1, t, nb, wk, m, 0, wk2, m);
    gemm(false, false, rows, m, nb, -1, v, nb, wk2, m, 1, zs, ldz);
  }
}
