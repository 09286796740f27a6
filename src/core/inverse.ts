/**
 * Inverses of damped Hessians, (H + αI)⁻¹, with log det(H + αI) (PRML §5.4.3 and the Laplace
 * approximation's needs).
 */
import { EigenvalueDecomposition, Matrix as MlMatrix } from 'ml-matrix';
import { chunkSize, outputMatrices } from './backprop.ts';
import { CoreError } from './errors.ts';
import { jacobianRows } from './jacobian.ts';
import { linalg, newMatrix, symmetrizeFromLower } from './linalg/index.ts';
import { forward, type Problem } from './network.ts';

export interface InverseResult {
  /** (H + αI)⁻¹, W × W row-major, symmetric. */
  readonly inverse: Float64Array;
  /** log det(H + αI). */
  readonly logDeterminant: number;
}

/** Up to this order a refusal for a matrix that is not positive definite names its smallest eigenvalue. */
const EIGEN_HINT_MAX = 800;

/**
 * The damping α of H + αI: positive, finite and a normal float64. A subnormal α (below 2^−1022)
 * is refused as such: 1/α overflows (the Woodbury start (αI)⁻¹ is infinite) and α vanishes next to
 * any entry of H, so an answer would be infinite or that of H alone.
 */
export function checkDamping(damping: number): void {
  if (!(damping > 0) || !Number.isFinite(damping)) {
    throw new CoreError('INVALID_DAMPING', { damping, reason: 'notPositive' });
  }
  if (damping < 2 ** -1022) throw new CoreError('INVALID_DAMPING', { damping, reason: 'subnormal' });
}

/** Jacobian rows per Woodbury update (k of the rank-k form). */
const WOODBURY_BLOCK = 128;
/** Doubles of Jacobian rows held at once (32 MiB). */
const WOODBURY_ROWS_BUDGET = 1 << 22;

/** Points per block of rows, points per chunk of Jacobian rows (a whole number of blocks), rows per block. */
/** Points per chunk and rows per block of the Woodbury updates. */
export function woodburyPlan(w: number, k: number, n: number, blockSize = WOODBURY_BLOCK): { pointsPerBlock: number; chunk: number; kMax: number } {
  const pointsPerBlock = Math.max(1, Math.floor(blockSize / k));
  const fits = chunkSize(n, k * w, WOODBURY_ROWS_BUDGET);
  const chunk = Math.max(pointsPerBlock, fits - (fits % pointsPerBlock));
  return { pointsPerBlock, chunk, kMax: pointsPerBlock * k };
}

/** Bytes the Woodbury inverse needs for W parameters, K outputs and N points besides its W × W answer and the forward pass. */
export function woodburyScratchBytes(w: number, k: number, n: number): number {
  const { chunk, kMax } = woodburyPlan(w, k, n, WOODBURY_BLOCK);
  const c = Math.min(chunk, n);
  return 8 * (c * k * w + c * k * k + kMax * w + kMax * kMax);
}

/** Bytes the Cholesky inverse of an n × n matrix needs besides the matrix itself: a copy for the eigenvalue hint where n ≤ EIGEN_HINT_MAX. */
export function choleskyScratchBytes(n: number): number {
  return n <= EIGEN_HINT_MAX ? 8 * n * n : 0;
}

/**
 * The inverse of the damped outer-product Hessian by Woodbury updates from αI (PRML 5.86–5.89).
 * The outer product is a sum of rank-one terms b bᵀ, one per data point n and output k: the
 * rows of C_n B_n with C_nᵀ C_n = G_n (5.86). In blocks of k rows U (k × W), with M = A⁻¹:
 *   M ← M − M Uᵀ (I + U M Uᵀ)⁻¹ U M                                      (5.89 for k = 1)
 *   log det(A + UᵀU) = log det A + log det(I + U M Uᵀ)            (determinant lemma)
 * computed as V = U M (symm), S = I + V Uᵀ = L Lᵀ (potrf), Y = L⁻¹ V (trsm: S is never
 * inverted, which keeps the update accurate at small damping), M ← M − YᵀY (syrk, the lower
 * triangle, which is all the next V needs). `blockSize` 1 is the sequential update of 5.89
 * exactly; larger blocks do the same arithmetic as matrix products. Cost ≈ 3·N·K·W² flops
 * (symm and syrk of W × W × k per block) + W² memory.
 */
export function woodburyInverse(p: Problem, damping: number, blockSize = WOODBURY_BLOCK): InverseResult {
  checkDamping(damping);
  const net = p.network;
  const W = net.parameterCount;
  const K = net.outputSize;
  const la = linalg();
  const m = newMatrix(W * W);
  for (let i = 0; i < W; i++) m[i * W + i] = 1 / damping;
  let logDet = W * Math.log(damping);
  const f = forward(net, p.inputs);
  const { chunk, kMax } = woodburyPlan(W, K, f.n, blockSize);
  const v = new Float64Array(kMax * W);
  const s = new Float64Array(kMax * kMax);
  for (let n0 = 0; n0 < f.n; n0 += chunk) {
    const c = Math.min(chunk, f.n - n0);
    const rows = jacobianRows(net, f, outputMatrices(p, f, 'gaussNewtonFactor', n0, c), n0, c);
    for (let r0 = 0; r0 < c * K; r0 += kMax) {
      const k = Math.min(kMax, c * K - r0);
      const u = rows.subarray(r0 * W, (r0 + k) * W);
      la.symm(false, k, W, 1, m, W, u, W, 0, v, W); // V = U M (M's lower triangle)
      s.fill(0, 0, k * k);
      for (let i = 0; i < k; i++) s[i * k + i] = 1;
      la.gemm(false, true, k, k, W, 1, v, W, u, W, 1, s, k); // S = I + V Uᵀ
      const info = la.potrf(k, s, k); // S = L Lᵀ
      if (info !== 0) throw new CoreError('NON_FINITE_RESULT', { reason: 'woodbury' });
      for (let i = 0; i < k; i++) logDet += 2 * Math.log(s[i * k + i]);
      la.trsm(true, false, k, W, s, k, v, W); // Y = L⁻¹ V, so that Vᵀ S⁻¹ V = YᵀY
      la.syrk(true, W, k, -1, v, W, 1, m, W); // M ← M − YᵀY (lower triangle)
    }
  }
  // only M's lower triangle was kept up to date: it is the answer's
  symmetrizeFromLower(W, m);
  return { inverse: m, logDeterminant: logDet };
}

/**
 * (H + αI)⁻¹ and log det(H + αI) by Cholesky: H + αI = L Lᵀ (LAPACK dpotrf),
 * log det = 2 Σ_i log L_ii, the inverse L⁻ᵀ L⁻¹ (dpotri). `h` (n × n, symmetric) is overwritten
 * and returned as the inverse. A matrix that is not positive definite is refused (422) with its
 * smallest eigenvalue where n is small enough to find it. Cost n³ flops (n³/3 + 2n³/3).
 */
export function choleskyInverse(h: Float64Array, n: number, damping: number, what = 'the Hessian'): InverseResult {
  checkDamping(damping);
  const la = linalg();
  for (let i = 0; i < n; i++) h[i * n + i] += damping;
  const original = n <= EIGEN_HINT_MAX ? new Float64Array(h) : undefined;
  const info = la.potrf(n, h, n);
  if (info !== 0) {
    let smallestEigenvalue: number | undefined;
    if (original) {
      const rows = Array.from({ length: n }, (_, i) => Array.from(original.subarray(i * n, (i + 1) * n)));
      try {
        const ev = new EigenvalueDecomposition(new MlMatrix(rows), { assumeSymmetric: true }).realEigenvalues;
        let least = Infinity;
        for (const e of ev) least = Math.min(least, e);
        if (Number.isFinite(least - damping)) smallestEigenvalue = least - damping;
      } catch {
        // entries near the float64 range overflow inside the eigensolver (found by fuzzing): refuse without the hint
      }
    }
    throw new CoreError('NOT_POSITIVE_DEFINITE', { source: 'cholesky', what, damping, minor: info, smallestEigenvalue });
  }
  let logDet = 0;
  for (let i = 0; i < n; i++) logDet += 2 * Math.log(h[i * n + i]);
  la.potri(n, h, n);
  symmetrizeFromLower(n, h);
  return { inverse: h, logDeterminant: logDet };
}
