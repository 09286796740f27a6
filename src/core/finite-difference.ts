/**
 * The Hessian by finite differences (PRML §5.4.4), as a check on the other methods.
 */
import { gradient, passesBytes, type LayerSize } from './backprop.ts';
import { symmetrizeByAveraging } from './linalg/index.ts';
import { parameterVector, withParameters, type Problem } from './network.ts';

/** The default step ε of the central differences: near the optimum (machine ε)^{1/3} for O(1) weights. */
export const FINITE_DIFFERENCE_STEP = 1e-5;

/** Bytes besides the W × W answer: the parameter vector, two gradients and a perturbed copy of the network, and one more pass. */
export function finiteDifferenceScratchBytes(layers: readonly LayerSize[], n: number, w: number): number {
  return 8 * 4 * w + passesBytes(layers, n);
}

/**
 * Central differences of backpropagated gradients (PRML 5.91):
 *   H[:, i] ≈ (∇E(w + ε e_i) − ∇E(w − ε e_i)) / 2ε,      error O(ε²),
 * then symmetrised, (H + Hᵀ)/2. Cost 2W gradient evaluations, O(N·W²).
 */
export function finiteDifferenceHessian(p: Problem, step = FINITE_DIFFERENCE_STEP): Float64Array {
  const W = p.network.parameterCount;
  const w = parameterVector(p.network);
  const h = new Float64Array(W * W);
  const at = (v: Float64Array) => gradient({ ...p, network: withParameters(p.network, v) });
  for (let i = 0; i < W; i++) {
    const wi = w[i];
    w[i] = wi + step;
    const gp = at(w);
    w[i] = wi - step;
    const gm = at(w);
    w[i] = wi;
    for (let j = 0; j < W; j++) h[j * W + i] = (gp[j] - gm[j]) / (2 * step);
  }
  symmetrizeByAveraging(W, h);
  return h;
}
