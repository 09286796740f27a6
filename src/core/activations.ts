/**
 * Activation functions, one table entry each: h, h′ and h″ as functions of the pre-activation a
 * (the value z = h(a) is passed too, since most derivatives are cheapest from it). Adding an
 * activation is one entry here: its name, its types and the API's enum all derive from this table.
 * `softmax` is not elementwise: its entry only names it, and the output heads in `losses.ts` hold
 * its derivatives.
 */
import { normalCdf, normalDensity } from './special.ts';

export interface ElementwiseActivation {
  readonly kind: 'elementwise';
  h(a: number): number;
  /** h′(a), given z = h(a). */
  d1(a: number, z: number): number;
  /** h″(a), given z = h(a). */
  d2(a: number, z: number): number;
  /**
   * h′ jumps at a = 0 (where d1 switches on a > 0): h is not twice differentiable there, the
   * Hessian is that of either side, and a difference quotient across 0 means nothing.
   */
  readonly kink?: true;
}

/** softmax(a)_k = e^{a_k} / Σ_j e^{a_j}, across a layer's units; output layer only. */
export interface SoftmaxActivation {
  readonly kind: 'softmax';
}

/** softplus(a) = log(1 + eᵃ), computed without overflow. */
export function softplus(a: number): number {
  return a > 0 ? a + Math.log1p(Math.exp(-a)) : Math.log1p(Math.exp(a));
}

/** σ(a) = 1 / (1 + e⁻ᵃ), computed without overflow. */
export function sigmoid(a: number): number {
  if (a >= 0) return 1 / (1 + Math.exp(-a));
  const e = Math.exp(a);
  return e / (1 + e);
}

export const ACTIVATIONS = {
  identity: { kind: 'elementwise', h: (a) => a, d1: () => 1, d2: () => 0 },
  tanh: { kind: 'elementwise', h: Math.tanh, d1: (_a, z) => 1 - z * z, d2: (_a, z) => -2 * z * (1 - z * z) },
  sigmoid: { kind: 'elementwise', h: sigmoid, d1: (_a, z) => z * (1 - z), d2: (_a, z) => z * (1 - z) * (1 - 2 * z) },
  // relu′ at 0 is taken as 0, as PyTorch does; relu″ is 0 almost everywhere.
  relu: { kind: 'elementwise', h: (a) => (a > 0 ? a : 0), d1: (a) => (a > 0 ? 1 : 0), d2: () => 0, kink: true },
  softplus: { kind: 'elementwise', h: softplus, d1: (a) => sigmoid(a), d2: (a) => { const s = sigmoid(a); return s * (1 - s); } },
  // nn.GELU(), the exact form: h = a·Φ(a), h′ = Φ(a) + a·φ(a), h″ = φ(a)·(2 − a²).
  gelu: { kind: 'elementwise', h: (a) => a * normalCdf(a), d1: (a) => normalCdf(a) + a * normalDensity(a), d2: (a) => normalDensity(a) * (2 - a * a) },
  // nn.SiLU: h = a·σ(a), h′ = σ(1 + a(1 − σ)), h″ = σ(1 − σ)(2 + a(1 − 2σ)).
  silu: {
    kind: 'elementwise',
    h: (a) => a * sigmoid(a),
    d1: (a) => { const s = sigmoid(a); return s * (1 + a * (1 - s)); },
    d2: (a) => { const s = sigmoid(a); return s * (1 - s) * (2 + a * (1 - 2 * s)); },
  },
  // nn.LeakyReLU() (negative slope 0.01); h′(0) = 0.01, as PyTorch takes it.
  'leaky-relu': { kind: 'elementwise', h: (a) => (a > 0 ? a : 0.01 * a), d1: (a) => (a > 0 ? 1 : 0.01), d2: () => 0, kink: true },
  // nn.ELU() (α = 1): h = eᵃ − 1 for a ≤ 0, whose h′ = h″ = eᵃ there.
  elu: { kind: 'elementwise', h: (a) => (a > 0 ? a : Math.expm1(a)), d1: (a) => (a > 0 ? 1 : Math.exp(a)), d2: (a) => (a > 0 ? 0 : Math.exp(a)) },
  softmax: { kind: 'softmax' },
} as const satisfies Record<string, ElementwiseActivation | SoftmaxActivation>;

export type ActivationName = keyof typeof ACTIVATIONS;
export type ElementwiseName = { [K in ActivationName]: (typeof ACTIVATIONS)[K] extends ElementwiseActivation ? K : never }[ActivationName];

/** Every activation name the service knows, in the table's order (the documentation's). */
export const ACTIVATION_NAMES = Object.keys(ACTIVATIONS) as ActivationName[];

export function isActivationName(name: string): name is ActivationName {
  return Object.hasOwn(ACTIVATIONS, name);
}

/** The table entry of an elementwise activation. */
export function elementwise(name: ElementwiseName): ElementwiseActivation {
  return ACTIVATIONS[name];
}
