/**
 * The Hessian by finite differences (PRML §5.4.4), as a check on the other methods.
 */
import { ACTIVATIONS } from './activations.ts';
import { gradient, passesBytes } from './backprop.ts';
import type { CoreWarningParams } from './errors.ts';
import type { LayerSize } from './network.ts';
import { symmetrizeByAveraging } from './linalg/index.ts';
import { forward, parameterVector, withParameters, type Problem } from './network.ts';

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

/** Columns named in the note on kinks, at most. */
export const KINK_COLUMNS_LISTED = 20;

/**
 * The columns of the finite-difference Hessian that straddle a kink: column i is the difference
 * of gradients at w + εe_i and w − εe_i, and where some pre-activation of a layer whose h′ jumps
 * at 0 (relu, leaky-relu: h′ switches on a > 0) is on different sides of 0 at the two points, the
 * gradient jumps between them and the column is off by about the jump over 2ε (relu at a = 0 with
 * ε = 1e-5: −49999.5 where the Hessian of either side is 0). Exact, by one forward pass per point
 * (2W passes, O(N·W) each, a third of the differences' own cost); undefined when the network has
 * no such layer or no column straddles.
 */
export function finiteDifferenceKinks(p: Problem, step = FINITE_DIFFERENCE_STEP): CoreWarningParams['FINITE_DIFFERENCE_KINK'] | undefined {
  const kinked = p.network.layers.flatMap((l, i) => {
    const act = ACTIVATIONS[l.activation];
    return act.kind === 'elementwise' && 'kink' in act ? [i] : [];
  });
  if (kinked.length === 0) return undefined;
  const W = p.network.parameterCount;
  const w = parameterVector(p.network);
  const sides = (v: Float64Array) => {
    const pass = forward(withParameters(p.network, v), p.inputs);
    return kinked.map((l) => pass.as[l]);
  };
  let count = 0;
  const columns: number[] = [];
  let activation = p.network.layers[kinked[0]].activation as string;
  for (let i = 0; i < W; i++) {
    const wi = w[i];
    w[i] = wi + step;
    const plus = sides(w);
    w[i] = wi - step;
    const minus = sides(w);
    w[i] = wi;
    let straddles = -1;
    for (let k = 0; k < kinked.length && straddles < 0; k++) {
      const ap = plus[k], am = minus[k];
      for (let j = 0; j < ap.length; j++) if ((ap[j] > 0) !== (am[j] > 0)) { straddles = kinked[k]; break; }
    }
    if (straddles >= 0) {
      if (count === 0) activation = p.network.layers[straddles].activation;
      if (count < KINK_COLUMNS_LISTED) columns.push(i);
      count++;
    }
  }
  return count === 0 ? undefined : { activation, count, columns, w: W, step };
}
