/**
 * The output head: output activation and error function together, per data point n.
 *
 * For each n it gives, as functions of the output pre-activations a = a_out:
 *   E_n                              the error (a sum over data points makes E);
 *   δ_n = ∂E_n/∂a                    the output error signal that backpropagation starts from;
 *   L_n = ∂²E_n/∂a²                  the exact output curvature (K × K), for the exact Hessian;
 *   G_n                              the Gauss–Newton output curvature of the outer product
 *                                    (PRML 5.84–5.85): L_n itself for the canonical pairings
 *                                    (identity + SSE: I; sigmoid + CE: diag(y(1−y));
 *                                    softmax + CE: diag(y) − yyᵀ), and J_yᵀJ_y with J_y = ∂y/∂a
 *                                    for sum-of-squares with any other output activation (the
 *                                    split at the outputs: B_n = ∂y_n/∂w, L = I).
 * One entry per loss; each entry handles the output activations its pairing allows.
 */
import { elementwise, softplus, type ActivationName, type ElementwiseName } from './activations.ts';
import { CoreError } from './errors.ts';
import { linalg } from './linalg/index.ts';

/** Output values y = h(a) for a whole batch (N × K, row-major), in place into `y`. Cost NK. */
export function applyOutputActivation(activation: ActivationName, a: Float64Array, y: Float64Array, k: number): void {
  if (activation === 'softmax') {
    for (let o = 0; o < a.length; o += k) {
      let max = -Infinity;
      for (let j = 0; j < k; j++) max = Math.max(max, a[o + j]);
      let s = 0;
      for (let j = 0; j < k; j++) { const e = Math.exp(a[o + j] - max); y[o + j] = e; s += e; }
      for (let j = 0; j < k; j++) y[o + j] /= s;
    }
    return;
  }
  const h = elementwise(activation).h;
  for (let i = 0; i < a.length; i++) y[i] = h(a[i]);
}

/**
 * Per-point output terms for one data point, written into caller-provided buffers:
 * `delta` (K) = ∂E_n/∂a, and, when asked, `curv` (K × K) = L_n or G_n.
 * `a`, `y`, `t` are the point's pre-activations, outputs and targets (length K).
 */
export interface OutputHead {
  readonly loss: LossName;
  readonly activation: ActivationName;
  /** E_n. */
  error(a: Float64Array, y: Float64Array, t: Float64Array): number;
  /** δ_n = ∂E_n/∂a. */
  delta(a: Float64Array, y: Float64Array, t: Float64Array, out: Float64Array): void;
  /** L_n = ∂²E_n/∂a² (exact), K × K row-major. */
  curvature(a: Float64Array, y: Float64Array, t: Float64Array, out: Float64Array): void;
  /** G_n, the outer-product (Gauss–Newton) output curvature, K × K row-major. */
  gaussNewton(a: Float64Array, y: Float64Array, t: Float64Array, out: Float64Array): void;
  /** A factor C_n with C_nᵀ C_n = G_n, K × K row-major (the rows of the outer product's B_n, 5.86). */
  gaussNewtonFactor(a: Float64Array, y: Float64Array, t: Float64Array, out: Float64Array): void;
  /** ∂y/∂a, K × K row-major (for Jacobians of the outputs). */
  outputJacobian(a: Float64Array, y: Float64Array, out: Float64Array): void;
}

/** J_s = diag(y) − yyᵀ, the Jacobian of softmax. */
function softmaxJacobian(y: Float64Array, out: Float64Array): void {
  const k = y.length;
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) out[i * k + j] = (i === j ? y[i] : 0) - y[i] * y[j];
}

/** ∂y/∂a for an elementwise activation: diag(h′(a)). */
function elementwiseJacobian(activation: ElementwiseName, a: Float64Array, y: Float64Array, out: Float64Array): void {
  const k = a.length;
  const d1 = elementwise(activation).d1;
  out.fill(0);
  for (let i = 0; i < k; i++) out[i * k + i] = d1(a[i], y[i]);
}

function outputJacobianOf(activation: ActivationName) {
  return (a: Float64Array, y: Float64Array, out: Float64Array) =>
    activation === 'softmax' ? softmaxJacobian(y, out) : elementwiseJacobian(activation, a, y, out);
}

/**
 * E_n = ½‖y − t‖², any output activation. With r = y − t and J = ∂y/∂a:
 * δ = Jᵀr; L = JᵀJ + Σ_k r_k ∇²y_k; G = JᵀJ.
 * Elementwise h: L = diag(h′² + r h″). Softmax (∇²y_k = y_k[(e_k − y)(e_k − y)ᵀ − J]), with
 * u = r ⊙ y and c = Σu: L = J² + diag(u) − u yᵀ − y uᵀ + c yyᵀ − cJ.
 */
function sumOfSquares(activation: ActivationName): OutputHead {
  const jac = outputJacobianOf(activation);
  const gaussNewton = (a: Float64Array, y: Float64Array, _t: Float64Array, out: Float64Array) => {
    const k = y.length;
    if (activation !== 'softmax') {
      const d1 = elementwise(activation).d1;
      out.fill(0);
      for (let i = 0; i < k; i++) { const g = d1(a[i], y[i]); out[i * k + i] = g * g; }
      return;
    }
    const j = new Float64Array(k * k);
    softmaxJacobian(y, j);
    linalg().gemm(true, false, k, k, k, 1, j, k, j, k, 0, out, k);
  };
  return {
    loss: 'sum-of-squares',
    activation,
    error(_a, y, t) {
      let s = 0;
      for (let i = 0; i < y.length; i++) { const r = y[i] - t[i]; s += r * r; }
      return 0.5 * s;
    },
    delta(a, y, t, out) {
      const k = y.length;
      if (activation === 'softmax') {
        // Jᵀr = y ⊙ r − y (yᵀr)
        let yr = 0;
        for (let i = 0; i < k; i++) yr += y[i] * (y[i] - t[i]);
        for (let i = 0; i < k; i++) out[i] = y[i] * (y[i] - t[i]) - y[i] * yr;
        return;
      }
      const d1 = elementwise(activation).d1;
      for (let i = 0; i < k; i++) out[i] = (y[i] - t[i]) * d1(a[i], y[i]);
    },
    curvature(a, y, t, out) {
      const k = y.length;
      if (activation !== 'softmax') {
        const { d1, d2 } = elementwise(activation);
        out.fill(0);
        for (let i = 0; i < k; i++) {
          const g = d1(a[i], y[i]);
          out[i * k + i] = g * g + (y[i] - t[i]) * d2(a[i], y[i]);
        }
        return;
      }
      gaussNewton(a, y, t, out);
      const u = new Float64Array(k);
      let c = 0;
      for (let i = 0; i < k; i++) { u[i] = (y[i] - t[i]) * y[i]; c += u[i]; }
      for (let p = 0; p < k; p++) for (let q = 0; q < k; q++) {
        const js = (p === q ? y[p] : 0) - y[p] * y[q];
        out[p * k + q] += (p === q ? u[p] : 0) - u[p] * y[q] - y[p] * u[q] + c * y[p] * y[q] - c * js;
      }
    },
    gaussNewton,
    // G = JᵀJ, so C = J = ∂y/∂a.
    gaussNewtonFactor: (a, y, _t, out) => jac(a, y, out),
    outputJacobian: jac,
  };
}

/**
 * E_n = −Σ_k [t_k ln y_k + (1 − t_k) ln(1 − y_k)] with sigmoid outputs (PRML 5.21):
 * δ = y − t; L = G = diag(y(1 − y)). ln y is computed from a as −softplus(−a) for accuracy.
 */
const crossEntropy: OutputHead = {
  loss: 'cross-entropy',
  activation: 'sigmoid',
  error(a, _y, t) {
    let s = 0;
    // −[t ln σ(a) + (1−t) ln(1−σ(a))] = softplus(a) − t·a, computed stably
    for (let i = 0; i < a.length; i++) s += softplus(a[i]) - t[i] * a[i];
    return s;
  },
  delta(_a, y, t, out) {
    for (let i = 0; i < y.length; i++) out[i] = y[i] - t[i];
  },
  curvature(_a, y, _t, out) {
    const k = y.length;
    out.fill(0);
    for (let i = 0; i < k; i++) out[i * k + i] = y[i] * (1 - y[i]);
  },
  gaussNewton(a, y, t, out) {
    crossEntropy.curvature(a, y, t, out);
  },
  gaussNewtonFactor(_a, y, _t, out) {
    const k = y.length;
    out.fill(0);
    for (let i = 0; i < k; i++) out[i * k + i] = Math.sqrt(y[i] * (1 - y[i]));
  },
  outputJacobian: outputJacobianOf('sigmoid'),
};

/**
 * E_n = −Σ_k t_k ln y_k with softmax outputs (PRML 5.24). With s = Σ_k t_k (1 for valid targets):
 * δ = s·y − t; L = G = s·(diag(y) − yyᵀ).
 */
const softmaxCrossEntropy: OutputHead = {
  loss: 'softmax-cross-entropy',
  activation: 'softmax',
  error(a, _y, t) {
    const k = a.length;
    let max = -Infinity;
    for (let j = 0; j < k; j++) max = Math.max(max, a[j]);
    let se = 0;
    for (let j = 0; j < k; j++) se += Math.exp(a[j] - max);
    const lse = max + Math.log(se);
    let e = 0;
    for (let j = 0; j < k; j++) if (t[j] !== 0) e -= t[j] * (a[j] - lse);
    return e;
  },
  delta(_a, y, t, out) {
    let s = 0;
    for (let i = 0; i < t.length; i++) s += t[i];
    for (let i = 0; i < y.length; i++) out[i] = s * y[i] - t[i];
  },
  curvature(_a, y, t, out) {
    let s = 0;
    for (let i = 0; i < t.length; i++) s += t[i];
    softmaxJacobian(y, out);
    if (s !== 1) for (let i = 0; i < out.length; i++) out[i] *= s;
  },
  gaussNewton(a, y, t, out) {
    softmaxCrossEntropy.curvature(a, y, t, out);
  },
  // C = √s·diag(√y)(I − 1yᵀ): CᵀC = s[(I − y1ᵀ)diag(y)(I − 1yᵀ)] = s[diag(y) − yyᵀ] since Σy = 1.
  gaussNewtonFactor(_a, y, t, out) {
    const k = y.length;
    let s = 0;
    for (let i = 0; i < k; i++) s += t[i];
    const r = Math.sqrt(s);
    for (let i = 0; i < k; i++) {
      const si = r * Math.sqrt(y[i]);
      for (let j = 0; j < k; j++) out[i * k + j] = si * ((i === j ? 1 : 0) - y[j]);
    }
  },
  outputJacobian: outputJacobianOf('softmax'),
};

/**
 * The losses, one entry each: the output activations it pairs with (API: any other pairing is a
 * 422 naming it) and its head. The API's loss names derive from this table.
 */
interface LossEntry {
  /** The output activations this loss accepts: a list, or every one. */
  readonly outputs: readonly ActivationName[] | 'any';
  head(activation: ActivationName): OutputHead;
}

export const LOSSES = {
  'sum-of-squares': { outputs: 'any', head: sumOfSquares },
  'cross-entropy': { outputs: ['sigmoid'], head: () => crossEntropy },
  'softmax-cross-entropy': { outputs: ['softmax'], head: () => softmaxCrossEntropy },
} as const satisfies Record<string, LossEntry>;

export type LossName = keyof typeof LOSSES;
export const LOSS_NAMES = Object.keys(LOSSES) as LossName[];

function accepts(entry: LossEntry, activation: ActivationName): boolean {
  return entry.outputs === 'any' || entry.outputs.includes(activation);
}

/** The head for a loss and output activation, or a refusal naming the pairing and what would pair. */
export function outputHead(loss: LossName, activation: ActivationName): OutputHead {
  const entry: LossEntry = LOSSES[loss];
  if (accepts(entry, activation)) return entry.head(activation);
  throw new CoreError('UNSUPPORTED_PAIRING', {
    loss,
    activation,
    needs: entry.outputs === 'any' ? [] : entry.outputs,
    losses: LOSS_NAMES.filter((l) => accepts(LOSSES[l], activation)),
  });
}
