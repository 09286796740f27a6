/**
 * (H + αI)⁻¹ applied to a few vectors, without the inverse: conjugate gradients on
 * curvature-vector products (matrix-free), or a Cholesky solve of the dense matrix.
 */
import { CoreError } from './errors.ts';
import { checkDamping } from './inverse.ts';
import { linalg } from './linalg/index.ts';
import type { CurvatureOperator } from './r-operator.ts';

export interface SolveResult {
  /** m × W, row i = (H + αI)⁻¹ v_i. */
  readonly solutions: Float64Array;
  /** Per vector: curvature-vector products used (0 for a dense solve). */
  readonly iterations: Float64Array;
  /** Per vector: ‖(H + αI) x − v‖ / ‖v‖, recomputed from x. */
  readonly residuals: Float64Array;
}

/** Where auto solves by Cholesky rather than conjugate gradients: W at most this. */
export const SOLVE_DENSE_MAX = 3000;

export interface CgOptions {
  readonly tolerance: number;
  readonly maxIterations: number;
  /** z = M⁻¹ r for a symmetric positive definite M ≈ H + αI; absent: none (M = I). */
  readonly precondition?: Preconditioner;
}

/** z ← M⁻¹ r. */
export type Preconditioner = (r: Float64Array, z: Float64Array) => void;

/** Jacobi: M = diag(H) + αI, each entry kept ≥ α (an exact Hessian's diagonal can be negative). */
export function jacobiPreconditioner(diagonal: Float64Array, damping: number): Preconditioner {
  const inv = Float64Array.from(diagonal, (d) => 1 / Math.max(d + damping, damping));
  return (r, z) => {
    for (let i = 0; i < inv.length; i++) z[i] = inv[i] * r[i];
  };
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** (H + αI) x by one product. */
function applyDamped(op: CurvatureOperator, damping: number, x: Float64Array, out: Float64Array): Float64Array {
  op.apply(x, out);
  for (let i = 0; i < x.length; i++) out[i] += damping * x[i];
  return out;
}

/**
 * Preconditioned conjugate gradients (Hestenes & Stiefel) on (H + αI) x = v for each row v of
 * `vectors` (m × W), the products sharing the operator's passes over the data. Each step: one
 * product, q = (H + αI) p; a direction with pᵀq ≤ 0 means H + αI is not positive definite
 * (refused as Cholesky refuses it). Stops when the recursive residual ‖r‖ ≤ tolerance·‖v‖ and the
 * true residual, recomputed from x by one more product, is too (else it goes on from the true
 * one). Memory O(W) per vector beyond the operator; cost O(N·W) per product.
 */
export function conjugateGradient(op: CurvatureOperator, damping: number, vectors: Float64Array, m: number, options: CgOptions): SolveResult {
  checkDamping(damping);
  const w = op.size;
  const solutions = new Float64Array(m * w);
  const iterations = new Float64Array(m);
  const residuals = new Float64Array(m);
  const precondition: Preconditioner = options.precondition ?? ((r, z) => z.set(r));
  const q = new Float64Array(w), z = new Float64Array(w), p = new Float64Array(w);
  for (let v = 0; v < m; v++) {
    const b = vectors.subarray(v * w, (v + 1) * w);
    const x = solutions.subarray(v * w, (v + 1) * w);
    const bNorm = Math.sqrt(dot(b, b));
    if (bNorm === 0) continue;
    const goal = options.tolerance * bNorm;
    const r = new Float64Array(b);
    let used = 0;
    let trueResidual = bNorm;
    for (;;) {
      precondition(r, z);
      p.set(z);
      let rz = dot(r, z);
      let rNorm = Math.sqrt(dot(r, r));
      while (rNorm > goal) {
        if (used >= options.maxIterations) {
          throw new CoreError('NOT_CONVERGED', { method: 'cg', iterations: used, residual: rNorm / bNorm, tolerance: options.tolerance, wanted: m });
        }
        applyDamped(op, damping, p, q);
        used++;
        const pq = dot(p, q);
        if (!(pq > 0)) {
          throw new CoreError('NOT_POSITIVE_DEFINITE', { source: 'cg', what: 'the Hessian', damping, curvature: pq / dot(p, p) });
        }
        const alpha = rz / pq;
        for (let i = 0; i < w; i++) { x[i] += alpha * p[i]; r[i] -= alpha * q[i]; }
        precondition(r, z);
        const rzNext = dot(r, z);
        const beta = rzNext / rz;
        rz = rzNext;
        for (let i = 0; i < w; i++) p[i] = z[i] + beta * p[i];
        rNorm = Math.sqrt(dot(r, r));
      }
      // the recursive residual can drift from the true one near 1e-10: check it, go on if needed
      applyDamped(op, damping, x, q);
      used++;
      for (let i = 0; i < w; i++) r[i] = b[i] - q[i];
      trueResidual = Math.sqrt(dot(r, r));
      if (trueResidual <= goal || used >= options.maxIterations) break;
    }
    if (trueResidual > goal) {
      throw new CoreError('NOT_CONVERGED', { method: 'cg', iterations: used, residual: trueResidual / bNorm, tolerance: options.tolerance, wanted: m });
    }
    iterations[v] = used;
    residuals[v] = trueResidual / bNorm;
  }
  return { solutions, iterations, residuals };
}

/**
 * (H + αI)⁻¹ v for each row of `vectors` by Cholesky: H + αI = L Lᵀ (dpotrf), then the m
 * right-hand sides at once (dpotrs). `h` (W × W) is overwritten. Residuals by the operator (m
 * products, O(N·W) each). Refused, as the inverse is, where H + αI is not positive definite.
 * Cost W³/3 + 2W²·m flops; memory W².
 */
export function choleskySolve(h: Float64Array, w: number, damping: number, vectors: Float64Array, m: number, op: CurvatureOperator, what = 'the Hessian'): SolveResult {
  checkDamping(damping);
  const la = linalg();
  for (let i = 0; i < w; i++) h[i * w + i] += damping;
  const info = la.potrf(w, h, w);
  if (info !== 0) throw new CoreError('NOT_POSITIVE_DEFINITE', { source: 'cholesky', what, damping, minor: info });
  const solutions = new Float64Array(vectors);
  la.potrs(w, m, h, w, solutions, w);
  const residuals = dampedResiduals(op, damping, vectors, solutions, m);
  return { solutions, iterations: new Float64Array(m), residuals };
}

/** ‖(H + αI) x_i − v_i‖ / ‖v_i‖ for each row, by the operator (m products). */
export function dampedResiduals(op: CurvatureOperator, damping: number, vectors: Float64Array, solutions: Float64Array, m: number): Float64Array {
  const w = op.size;
  const out = new Float64Array(m);
  const q = new Float64Array(w);
  for (let v = 0; v < m; v++) {
    const b = vectors.subarray(v * w, (v + 1) * w);
    applyDamped(op, damping, solutions.subarray(v * w, (v + 1) * w), q);
    let s = 0;
    for (let i = 0; i < w; i++) { const d = q[i] - b[i]; s += d * d; }
    const bn = Math.sqrt(dot(b, b));
    out[v] = bn === 0 ? Math.sqrt(s) : Math.sqrt(s) / bn;
  }
  return out;
}
