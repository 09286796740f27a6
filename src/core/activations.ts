/**
 * Activation functions, one table entry each: h, h′ and h″ as functions of the pre-activation a
 * (the value z = h(a) is passed too, since most derivatives are cheapest from it).
 * Adding an activation is one entry here. `softmax` is not elementwise and lives in `losses.ts`
 * with the output layer; it is listed so that names are checked in one place.
 */
export interface ElementwiseActivation {
  h(a: number): number;
  /** h′(a), given z = h(a). */
  d1(a: number, z: number): number;
  /** h″(a), given z = h(a). */
  d2(a: number, z: number): number;
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

export const ELEMENTWISE: Record<string, ElementwiseActivation> = {
  identity: { h: (a) => a, d1: () => 1, d2: () => 0 },
  tanh: { h: Math.tanh, d1: (_a, z) => 1 - z * z, d2: (_a, z) => -2 * z * (1 - z * z) },
  sigmoid: { h: sigmoid, d1: (_a, z) => z * (1 - z), d2: (_a, z) => z * (1 - z) * (1 - 2 * z) },
  // relu′ at 0 is taken as 0, as PyTorch does; relu″ is 0 almost everywhere.
  relu: { h: (a) => (a > 0 ? a : 0), d1: (a) => (a > 0 ? 1 : 0), d2: () => 0 },
  softplus: { h: softplus, d1: (a) => sigmoid(a), d2: (a) => { const s = sigmoid(a); return s * (1 - s); } },
};

export type ActivationName = 'identity' | 'tanh' | 'sigmoid' | 'relu' | 'softplus' | 'softmax';

/** Every activation name the service knows, in the order the documentation lists them. */
export const ACTIVATION_NAMES: readonly ActivationName[] = ['identity', 'tanh', 'sigmoid', 'relu', 'softplus', 'softmax'];
