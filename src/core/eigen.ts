/**
 * A few eigenpairs of the Hessian or its outer-product (Gauss–Newton) matrix: from the dense
 * matrix by a LAPACK symmetric eigensolver, or matrix-free by Lanczos on curvature-vector
 * products, never forming W².
 */
import { CoreError } from './errors.ts';
import { curvatureOperator, type CurvatureOperator } from './r-operator.ts';
import { exactHessian, outerProductHessian } from './hessian.ts';
import { linalg } from './linalg/index.ts';
import type { Problem } from './network.ts';

/** Which eigenvalues: algebraically largest, algebraically smallest, or largest in magnitude. */
export const EIGEN_WHICH = ['largest', 'smallest', 'magnitude'] as const;
export type EigenWhich = (typeof EIGEN_WHICH)[number];

export interface EigenResult {
  /** k eigenvalues, descending for largest and magnitude (by |λ| for magnitude), ascending for smallest. */
  readonly eigenvalues: Float64Array;
  /** W × k, row-major: column j is the unit eigenvector of eigenvalues[j], in the parameter order. */
  readonly eigenvectors: Float64Array;
  /** k, ‖H v − λ v‖ of each pair, computed after the fact. */
  readonly residuals: Float64Array;
  /** Curvature-vector products used (0 for the dense solver). */
  readonly iterations: number;
}

/** The order in which eigenvalues are wanted: a key that sorts the wanted ones first. */
function wantKey(which: EigenWhich): (x: number) => number {
  return which === 'largest' ? (x) => -x : which === 'smallest' ? (x) => x : (x) => -Math.abs(x);
}

/** The indices of the k wanted among `values`, best first. */
function pick(values: ArrayLike<number>, k: number, which: EigenWhich): number[] {
  const key = wantKey(which);
  const idx = Array.from({ length: values.length }, (_, i) => i);
  idx.sort((a, b) => key(values[a]) - key(values[b]) || a - b);
  return idx.slice(0, k);
}

/** ‖H v − λ v‖ for each column of V (W × k), with H given by its operator; k products. */
function operatorResiduals(op: CurvatureOperator, w: number, values: Float64Array, vectors: Float64Array, k: number): Float64Array {
  const res = new Float64Array(k);
  const v = new Float64Array(w);
  for (let j = 0; j < k; j++) {
    for (let i = 0; i < w; i++) v[i] = vectors[i * k + j];
    const hv = op.apply(v);
    let s = 0;
    for (let i = 0; i < w; i++) { const r = hv[i] - values[j] * v[i]; s += r * r; }
    res[j] = Math.sqrt(s);
  }
  return res;
}

/**
 * The k wanted eigenpairs of the dense W × W symmetric matrix `h` (LAPACK dsyevr/dsyevd through
 * the linear-algebra interface): the k largest or smallest as one index range; for magnitude,
 * the k largest and the k smallest, of which the k largest |λ| are kept. Residuals by one GEMM.
 * Cost 4W³/3 for the reduction plus 2W²k (more when k > W/4); memory W² and W·k.
 */
export function denseEigen(h: Float64Array, w: number, k: number, which: EigenWhich): EigenResult {
  const la = linalg();
  const ranges: [number, number][] = which === 'largest' ? [[w - k, w]] : which === 'smallest' ? [[0, k]]
    : 2 * k >= w ? [[0, w]] : [[0, k], [w - k, w]];
  const vals: number[] = [];
  const cols: Float64Array[] = [];
  for (const [lo, hi] of ranges) {
    const m = hi - lo;
    const ev = new Float64Array(m);
    const z = new Float64Array(w * m);
    const r = la.syevr(w, new Float64Array(h), w, lo, hi, ev, z, m);
    if (r.info !== 0) throw new CoreError('NON_FINITE_RESULT', { reason: 'eigen', info: r.info });
    for (let j = 0; j < m; j++) {
      vals.push(ev[j]);
      const col = new Float64Array(w);
      for (let i = 0; i < w; i++) col[i] = z[i * m + j];
      cols.push(col);
    }
  }
  const chosen = pick(vals, k, which);
  const eigenvalues = Float64Array.from(chosen, (i) => vals[i]);
  const eigenvectors = new Float64Array(w * k);
  chosen.forEach((c, j) => { const col = cols[c]; for (let i = 0; i < w; i++) eigenvectors[i * k + j] = col[i]; });
  // R = H V − V Λ
  const hv = new Float64Array(w * k);
  la.gemm(false, false, w, k, w, 1, h, w, eigenvectors, k, 0, hv, k);
  const residuals = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    let s = 0;
    for (let i = 0; i < w; i++) { const r = hv[i * k + j] - eigenvalues[j] * eigenvectors[i * k + j]; s += r * r; }
    residuals[j] = Math.sqrt(s);
  }
  return { eigenvalues, eigenvectors, residuals, iterations: 0 };
}

/** A repeatable unit vector (a fixed seed per use): the same request gives the same answer. */
function seededUnitVector(w: number, seed: number): Float64Array {
  let s = seed >>> 0;
  const v = new Float64Array(w);
  let norm = 0;
  for (let i = 0; i < w; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    v[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
    norm += v[i] * v[i];
  }
  norm = Math.sqrt(norm);
  for (let i = 0; i < w; i++) v[i] /= norm;
  return v;
}

export interface LanczosOptions {
  readonly tolerance: number;
  readonly maxIterations: number;
  /** Lanczos vectors kept (the basis size between restarts); default lanczosBasis(k, W). */
  readonly basis?: number;
}

/** Lanczos vectors kept by default for k wanted pairs: max(2k + 20, 40), at most W. */
export function lanczosBasis(k: number, w: number): number {
  return Math.min(w, Math.max(2 * k + 20, 40));
}

function norm(u: Float64Array): number {
  let s = 0;
  for (let i = 0; i < u.length; i++) s += u[i] * u[i];
  return Math.sqrt(s);
}

/**
 * u ← u − Vᵀ(V u) against the first `rows` rows of V, by classical Gram–Schmidt repeated while a
 * pass removes most of what is left (Daniel–Gragg–Kaufman–Stewart: twice is enough unless u was
 * nearly in the span; at most four passes); returns the coefficients summed, V u of the original u.
 */
function orthogonalize(V: Float64Array, rows: number, w: number, u: Float64Array): Float64Array {
  const la = linalg();
  const total = new Float64Array(rows);
  if (rows === 0) return total;
  const h = new Float64Array(rows);
  let before = norm(u);
  for (let pass = 0; pass < 4; pass++) {
    la.gemm(false, true, 1, rows, w, 1, u, w, V, w, 0, h, rows); // h = (V u)ᵀ
    la.gemm(false, false, 1, w, rows, -1, h, rows, V, w, 1, u, w); // u −= hᵀ V
    for (let i = 0; i < rows; i++) total[i] += h[i];
    const after = norm(u);
    if (pass >= 1 && after > 0.5 * before) break;
    before = after;
  }
  return total;
}

function normalize(u: Float64Array): number {
  let s = 0;
  for (let i = 0; i < u.length; i++) s += u[i] * u[i];
  const n = Math.sqrt(s);
  if (n > 0) for (let i = 0; i < u.length; i++) u[i] /= n;
  return n;
}

/** How many restarts with the leading wanted pairs converged but not all before those are locked and a fresh start is made. */
const STALL_RESTARTS = 3;

interface LanczosState {
  iterations: number;
  normEstimate: number;
  worst: number;
  seed: number;
}

/**
 * One thick-restart Lanczos run for the `want` best pairs of H restricted to the complement of
 * the `locked` rows (the deflated operator: every new vector is orthogonalised against them too).
 * Returns the leading wanted pairs that converged: all `want` of them, or, when only the leading
 * ones have converged for STALL_RESTARTS restarts (a multiple eigenvalue: one start vector's
 * Krylov space holds one direction of each eigenspace), those leading ones.
 */
function lanczosRun(
  op: CurvatureOperator, want: number, which: EigenWhich, locked: Float64Array, lockedRows: number,
  options: LanczosOptions, state: LanczosState,
): { values: number[]; vectors: Float64Array[] } {
  const w = op.size;
  const la = linalg();
  const m = Math.min(w - lockedRows, Math.max(want + 2, options.basis ?? lanczosBasis(want, w)));
  const V = new Float64Array(m * w); // row i is basis vector i
  const T = new Float64Array(m * m);
  const start = seededUnitVector(w, 0x9e3779b9 + state.seed++);
  orthogonalize(locked, lockedRows, w, start);
  normalize(start);
  V.set(start, 0);
  let j = 0;
  let stalled = 0;
  for (;;) {
    let beta = 0;
    let remainder: Float64Array = new Float64Array(0);
    while (j < m) {
      if (state.iterations >= options.maxIterations) {
        throw new CoreError('NOT_CONVERGED', { method: 'lanczos', iterations: state.iterations, residual: state.worst, tolerance: options.tolerance, wanted: want });
      }
      const u = op.apply(V.subarray(j * w, (j + 1) * w));
      state.iterations++;
      const productNorm = norm(u);
      orthogonalize(locked, lockedRows, w, u);
      const h = orthogonalize(V, j + 1, w, u);
      for (let i = 0; i <= j; i++) { T[j * m + i] = h[i]; T[i * m + j] = h[i]; }
      beta = norm(u);
      // the product lies in the span (an invariant subspace) to within rounding: what is left is
      // noise, not a direction; it is dropped (an error of at most 1e-10·‖H v‖ in V's relation)
      const invariant = beta <= 1e-10 * Math.max(productNorm, 1e-300);
      if (invariant) { beta = 0; u.fill(0); }
      if (j + 1 === m) { remainder = u; break; }
      if (invariant) {
        // an invariant subspace: go on from a vector orthogonal to the basis (T's coupling is 0)
        const r = seededUnitVector(w, 0x9e3779b9 + state.seed++);
        orthogonalize(locked, lockedRows, w, r);
        orthogonalize(V, j + 1, w, r);
        normalize(r);
        V.set(r, (j + 1) * w);
      } else {
        for (let i = 0; i < w; i++) V[(j + 1) * w + i] = u[i] / beta;
      }
      j++;
    }
    // Ritz pairs of T (m × m, small: all of them)
    const theta = new Float64Array(m);
    const Y = new Float64Array(m * m);
    const r = la.syevr(m, new Float64Array(T), m, 0, m, theta, Y, m);
    if (r.info !== 0) throw new CoreError('NON_FINITE_RESULT', { reason: 'eigen', info: r.info });
    for (let i = 0; i < m; i++) state.normEstimate = Math.max(state.normEstimate, Math.abs(theta[i]));
    const order = pick(theta, m, which);
    const relative = (c: number) => Math.abs(beta * Y[(m - 1) * m + c]) / Math.max(Math.abs(theta[c]), state.normEstimate, 1e-300);
    let leading = 0;
    while (leading < want && relative(order[leading]) <= options.tolerance) leading++;
    state.worst = 0;
    for (let q = 0; q < want; q++) state.worst = Math.max(state.worst, relative(order[q]));
    stalled = leading > 0 && leading < want ? stalled + 1 : 0;

    const done = leading === want || stalled >= STALL_RESTARTS;
    // keep the wanted and about half of the rest (or, done, the converged leading ones)
    const p = done ? leading : Math.min(m - 1, want + Math.max(1, Math.floor((m - want) / 2)));
    const keep = order.slice(0, p);
    const Yk = new Float64Array(m * p);
    keep.forEach((c, q) => { for (let i = 0; i < m; i++) Yk[i * p + q] = Y[i * m + c]; });
    const ritz = new Float64Array(p * w); // rows: (V ᵀ Y_keep)ᵀ = Y_keepᵀ V
    la.gemm(true, false, p, w, m, 1, Yk, p, V, w, 0, ritz, w);
    if (done) {
      return { values: keep.map((c) => theta[c]), vectors: keep.map((_, q) => ritz.slice(q * w, (q + 1) * w)) };
    }
    // restart: the kept Ritz vectors (T diagonal on them), then the remainder, whose product comes next
    V.fill(0);
    V.set(ritz, 0);
    T.fill(0);
    keep.forEach((c, q) => { T[q * m + q] = theta[c]; });
    if (beta > 0) {
      for (let i = 0; i < w; i++) V[p * w + i] = remainder[i] / beta;
    } else {
      const fresh = seededUnitVector(w, 0x9e3779b9 + state.seed++);
      orthogonalize(locked, lockedRows, w, fresh);
      orthogonalize(V, p, w, fresh);
      normalize(fresh);
      V.set(fresh, p * w);
    }
    j = p;
  }
}

/**
 * The k wanted eigenpairs by thick-restart Lanczos (Wu & Simon 2000) on the operator v ↦ H v.
 * An orthonormal basis V of up to m vectors grows one curvature-vector product at a time; the
 * product of each new vector is orthogonalised against the whole basis twice (full
 * reorthogonalisation), and its coefficients are that vector's row of T = VᵀHV. T's eigenpairs
 * (θ, y) are Ritz pairs (θ, V y) whose residual ‖H V y − θ V y‖ is |β·y_m|, β the norm of the last
 * product's remainder. When the basis is full, the best p ≥ k Ritz vectors and the remainder are
 * kept (T becomes diagonal plus the couplings the next product finds) and the iteration goes on.
 * A pair has converged when ‖H v − θ v‖ ≤ tolerance · max(|θ|, ‖H‖ estimate), the estimate being
 * the largest |θ| seen. Converged leading pairs that the rest cannot join (a multiple eigenvalue,
 * such as the null space of an outer product) are locked, and a fresh run from a new start vector
 * goes on in their complement. Memory O(m·W); each step one product (O(N·W)) and O(m·W) of
 * orthogonalisation. The residuals returned are recomputed (k more products). Refused
 * (NOT_CONVERGED) past maxIterations products, saying how far it got.
 */
export function lanczosEigen(op: CurvatureOperator, k: number, which: EigenWhich, options: LanczosOptions): EigenResult {
  const w = op.size;
  const m = Math.min(w, Math.max(k + 2, options.basis ?? lanczosBasis(k, w)));
  // a basis of the whole space would just build H: do that, by W products
  if (m >= w) return smallProblem(op, w, k, which);
  const locked = new Float64Array(k * w);
  const values: number[] = [];
  const state: LanczosState = { iterations: 0, normEstimate: 0, worst: Infinity, seed: 0 };
  while (values.length < k) {
    const run = lanczosRun(op, k - values.length, which, locked, values.length, options, state);
    run.vectors.forEach((v, q) => locked.set(v, (values.length + q) * w));
    for (const v of run.values) values.push(v);
  }
  const order = pick(values, k, which);
  const eigenvalues = Float64Array.from(order, (c) => values[c]);
  const eigenvectors = new Float64Array(w * k);
  order.forEach((c, q) => { for (let i = 0; i < w; i++) eigenvectors[i * k + q] = locked[c * w + i]; });
  const residuals = operatorResiduals(op, w, eigenvalues, eigenvectors, k);
  return { eigenvalues, eigenvectors, residuals, iterations: state.iterations + k };
}

/** W ≤ the basis: H's columns by W products, then the dense solver (O(W²) memory, W small). */
function smallProblem(op: CurvatureOperator, w: number, k: number, which: EigenWhich): EigenResult {
  const h = new Float64Array(w * w);
  const e = new Float64Array(w);
  for (let i = 0; i < w; i++) {
    e.fill(0);
    e[i] = 1;
    const col = op.apply(e);
    for (let r = 0; r < w; r++) h[r * w + i] = col[r];
  }
  // symmetric up to rounding
  for (let i = 0; i < w; i++) for (let c = 0; c < i; c++) { const v = 0.5 * (h[i * w + c] + h[c * w + i]); h[i * w + c] = v; h[c * w + i] = v; }
  return { ...denseEigen(h, w, k, which), iterations: w };
}

/** Where auto chooses the dense solver: W at most this (the dense matrix, 8·W² bytes, and 4W³/3 flops). */
export const EIGEN_DENSE_MAX = 2000;

/** The eigenpairs of the exact or outer-product Hessian by `method`. */
export function curvatureEigen(
  p: Problem, exact: boolean, k: number, which: EigenWhich, method: 'dense' | 'lanczos', options: LanczosOptions,
): EigenResult {
  const w = p.network.parameterCount;
  if (k > w) throw new CoreError('INVALID_COUNT', { count: k, w });
  if (method === 'dense') return denseEigen(exact ? exactHessian(p) : outerProductHessian(p), w, k, which);
  return lanczosEigen(curvatureOperator(p, !exact), k, which, options);
}
