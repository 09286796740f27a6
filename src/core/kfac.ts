/**
 * Kronecker-factored curvature (KFAC, Martens & Grosse 2015) of the outer-product Hessian, with the
 * output factors exact (the Gauss–Newton L_n pulled back, no sampling), its log-determinant and its
 * exact solve. For the selected layers l, with z̃ = (z_{l−1}, 1) the layer's input (z̃ = z for a
 * layer without bias):
 *
 *   A_l = (1/N) Σ_n z̃_n z̃_nᵀ   (aug_l × aug_l),     G_l = Σ_n R_{l,n}ᵀ L_n R_{l,n}   (out_l × out_l)
 *
 * where L_n and its split point are those of the outer product and R_{l,n} the Jacobian of that
 * split point with respect to a_l (the A^{l,l} of the outer product, hessian.ts). Layer l's block
 * of the outer product, Σ_n Λ_{l,n} ⊗ z̃_n z̃_nᵀ, is approximated by G_l ⊗ A_l in the augmented
 * layout (entry (i,j),(p,q) of [W_l | b_l] is G_l[i][p]·A_l[j][q]); with N = 1 it is exact. With
 * the mean reduction the head carries 1/N, so G_l does (A_l is a mean either way).
 */
import { augmentedInputs, chunkSize, thetaIndex } from './backprop.ts';
import { CoreError } from './errors.ts';
import { selfCurvatures } from './hessian.ts';
import { linalg, symmetrizeFromLower } from './linalg/index.ts';
import { forward, type Layer, type LayerSize, type Problem } from './network.ts';

export interface KfacFactor {
  /** The layer's index in the network. */
  readonly layer: number;
  /** A_l, aug × aug, row-major (symmetric). */
  readonly inputFactor: Float64Array;
  /** G_l, out × out, row-major (symmetric). */
  readonly outputFactor: Float64Array;
  readonly aug: number;
  readonly out: number;
}

/** Doubles per data point of the output factors' chunks: every layer's out², twice (the A's and a pull-back). */
function kfacPerPoint(layers: readonly LayerSize[]): number {
  let s = 0;
  for (const l of layers) s += 2 * l.out * l.out + l.in + 1;
  return s;
}

/** Points per chunk of the factors, for their work estimate. */
export function kfacChunk(layers: readonly LayerSize[], n: number): number {
  return chunkSize(n, kfacPerPoint(layers));
}

/** Bytes KFAC needs besides its answer (the factors) and the forward pass: the chunks of pull-backs. */
export function kfacScratchBytes(layers: readonly LayerSize[], n: number): number {
  const perPoint = kfacPerPoint(layers);
  return 8 * chunkSize(n, perPoint) * perPoint;
}

/**
 * The factors of every selected layer, in layer order. One forward pass, then per chunk of data
 * points the pulled-back output curvatures. Cost O(N·Σ_l ((in_l + 1)² + out_l²·out_{l+1})):
 * no W² anywhere.
 */
export function kfacFactors(p: Problem): KfacFactor[] {
  const net = p.network;
  const f = forward(net, p.inputs);
  const n = f.n;
  const la = linalg();
  const lowest = net.layers.findIndex((l) => l.offset >= 0);
  if (lowest < 0) return [];
  const out: KfacFactor[] = [];
  const gs = net.layers.map((l) => (l.offset >= 0 ? new Float64Array(l.out * l.out) : undefined));
  const chunk = chunkSize(n, kfacPerPoint(net.layers));
  for (let n0 = 0; n0 < n; n0 += chunk) {
    const c = Math.min(chunk, n - n0);
    const a = selfCurvatures(p, f, undefined, false, n0, c, lowest);
    net.layers.forEach((l, i) => {
      const g = gs[i];
      if (!g) return;
      const ai = a[i];
      const o2 = l.out * l.out;
      for (let q = 0; q < c; q++) for (let e = 0; e < o2; e++) g[e] += ai[q * o2 + e];
    });
  }
  net.layers.forEach((l, i) => {
    const g = gs[i];
    if (!g) return;
    const z = augmentedInputs(f, l, i, 0, n);
    const A = new Float64Array(l.aug * l.aug);
    la.syrk(true, l.aug, n, 1 / n, z, l.aug, 0, A, l.aug);
    symmetrizeFromLower(l.aug, A);
    // G is symmetric up to rounding: make it exactly so
    for (let r = 0; r < l.out; r++) for (let s = 0; s < r; s++) { const v = 0.5 * (g[r * l.out + s] + g[s * l.out + r]); g[r * l.out + s] = v; g[s * l.out + r] = v; }
    out.push({ layer: i, inputFactor: A, outputFactor: g, aug: l.aug, out: l.out });
  });
  return out;
}

/** A symmetric matrix's eigen-decomposition: ascending values and the vectors as columns (n × n). */
function eigh(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  const r = linalg().syevr(n, new Float64Array(a), n, 0, n, values, vectors, n);
  if (r.info !== 0) throw new CoreError('NON_FINITE_RESULT', { reason: 'eigen', info: r.info });
  return { values, vectors };
}

/** The eigen-decompositions of the factors, for the log-determinant and the solve. */
export interface KfacEigen {
  readonly factor: KfacFactor;
  /** A's eigenvalues μ and vectors (columns). */
  readonly a: { values: Float64Array; vectors: Float64Array };
  /** G's eigenvalues λ and vectors (columns). */
  readonly g: { values: Float64Array; vectors: Float64Array };
}

export function kfacEigen(factors: readonly KfacFactor[]): KfacEigen[] {
  return factors.map((factor) => ({ factor, a: eigh(factor.inputFactor, factor.aug), g: eigh(factor.outputFactor, factor.out) }));
}

/**
 * log det(K + αI) for the block-diagonal K of the factors: the eigenvalues of G ⊗ A are the
 * products λ_i μ_j, so it is Σ_l Σ_{i,j} log(λ_{l,i} μ_{l,j} + α). Refused (NOT_POSITIVE_DEFINITE)
 * where some λμ + α is not positive. Cost O(Σ_l out_l³ + aug_l³) for the eigenvalues.
 */
export function kfacLogDeterminant(eig: readonly KfacEigen[], damping: number): number {
  let logDet = 0;
  for (const { g, a } of eig) {
    for (const lam of g.values) for (const mu of a.values) {
      const x = lam * mu + damping;
      if (!(x > 0)) throw new CoreError('NOT_POSITIVE_DEFINITE', { source: 'kfac', what: 'the KFAC matrix', damping, smallestEigenvalue: lam * mu });
      logDet += Math.log(x);
    }
  }
  return logDet;
}

/**
 * (K + αI)⁻¹ v for each row of `vectors` (m × W), exactly, from the factors' eigenvectors: per
 * layer, with V the layer's part of v in the augmented layout (out × aug, column in_l the bias),
 * (G ⊗ A) vec V = vec(G V A), so X = Q_G [(Q_Gᵀ V Q_A) ⊘ (λ_i μ_j + α)] Q_Aᵀ. Cost per vector
 * O(Σ_l out_l·aug_l·(out_l + aug_l)).
 */
export function kfacSolve(layers: readonly Layer[], eig: readonly KfacEigen[], damping: number, vectors: Float64Array, m: number, w: number): Float64Array {
  const la = linalg();
  const out = new Float64Array(m * w);
  for (const { factor, a, g } of eig) {
    const layer = layers[factor.layer];
    const o = factor.out, q = factor.aug;
    const V = new Float64Array(o * q), T = new Float64Array(o * q), X = new Float64Array(o * q);
    for (let r = 0; r < m; r++) {
      for (let i = 0; i < o; i++) for (let j = 0; j < q; j++) V[i * q + j] = vectors[r * w + thetaIndex(layer, i, j)];
      la.gemm(true, false, o, q, o, 1, g.vectors, o, V, q, 0, T, q); // Q_Gᵀ V
      la.gemm(false, false, o, q, q, 1, T, q, a.vectors, q, 0, X, q); // (Q_Gᵀ V) Q_A
      for (let i = 0; i < o; i++) for (let j = 0; j < q; j++) {
        const d = g.values[i] * a.values[j] + damping;
        if (!(d > 0)) throw new CoreError('NOT_POSITIVE_DEFINITE', { source: 'kfac', what: 'the KFAC matrix', damping, smallestEigenvalue: g.values[i] * a.values[j] });
        X[i * q + j] /= d;
      }
      la.gemm(false, false, o, q, o, 1, g.vectors, o, X, q, 0, T, q); // Q_G X̂
      la.gemm(false, true, o, q, q, 1, T, q, a.vectors, q, 0, X, q); // (Q_G X̂) Q_Aᵀ
      for (let i = 0; i < o; i++) for (let j = 0; j < q; j++) out[r * w + thetaIndex(layer, i, j)] = X[i * q + j];
    }
  }
  return out;
}

/**
 * (K + αI)⁻¹ as a preconditioner for CG on the outer product or the exact Hessian (+ αI): one
 * kfacSolve per step, O(Σ_l out_l·aug_l·(out_l + aug_l)), after the factors' eigenvectors.
 */
export function kfacPreconditioner(layers: readonly Layer[], eig: readonly KfacEigen[], damping: number, w: number): (r: Float64Array, z: Float64Array) => void {
  return (r, z) => z.set(kfacSolve(layers, eig, damping, r, 1, w));
}

/**
 * (K + αI) x for each row of `x` (m × W), K block-diagonal with blocks G_l ⊗ A_l: per layer
 * vec(G X A) + α vec X in the augmented layout. For the residuals of the KFAC solve.
 */
export function kfacApply(layers: readonly Layer[], factors: readonly KfacFactor[], damping: number, x: Float64Array, m: number, w: number): Float64Array {
  const la = linalg();
  const out = new Float64Array(m * w);
  for (const f of factors) {
    const layer = layers[f.layer];
    const o = f.out, q = f.aug;
    const X = new Float64Array(o * q), T = new Float64Array(o * q), Y = new Float64Array(o * q);
    for (let r = 0; r < m; r++) {
      for (let i = 0; i < o; i++) for (let j = 0; j < q; j++) X[i * q + j] = x[r * w + thetaIndex(layer, i, j)];
      la.gemm(false, false, o, q, o, 1, f.outputFactor, o, X, q, 0, T, q); // G X
      la.gemm(false, false, o, q, q, 1, T, q, f.inputFactor, q, 0, Y, q); // (G X) A
      for (let i = 0; i < o; i++) for (let j = 0; j < q; j++) out[r * w + thetaIndex(layer, i, j)] = Y[i * q + j] + damping * X[i * q + j];
    }
  }
  return out;
}
