import { makeProblem, type LossName, type Problem } from '../../src/core/index.ts';
import { networkOf } from './cases.ts';
import { seededNormal, seededRandom } from './random.ts';

export interface RandomProblemSpec {
  sizes: number[];
  activations: string[];
  loss: LossName;
  n: number;
  seed: number;
  scale?: number;
  /** Layers without bias. */
  noBias?: number[];
  reduction?: 'sum' | 'mean';
  /** Layers whose parameters are selected (default: all). */
  selection?: number[];
}

/** A seeded random network with data whose targets lie in the loss's domain. */
export function randomProblem(spec: RandomProblemSpec): Problem {
  const normal = seededNormal(spec.seed);
  const uniform = seededRandom(spec.seed + 7);
  const scale = spec.scale ?? 0.6;
  const layers = spec.activations.map((activation, l) => ({
    weights: Array.from({ length: spec.sizes[l + 1] }, () => Array.from({ length: spec.sizes[l] }, () => normal() * scale)),
    bias: spec.noBias?.includes(l) ? null : Array.from({ length: spec.sizes[l + 1] }, () => normal() * scale),
    activation,
  }));
  const net = networkOf({ layers }, spec.selection);
  const d = spec.sizes[0], k = spec.sizes[spec.sizes.length - 1], n = spec.n;
  const inputs = { rows: n, cols: d, data: Float64Array.from({ length: n * d }, () => normal()) };
  const t = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    if (spec.loss === 'sum-of-squares') for (let j = 0; j < k; j++) t[i * k + j] = normal();
    else if (spec.loss === 'cross-entropy') for (let j = 0; j < k; j++) t[i * k + j] = uniform();
    else t[i * k + Math.floor(uniform() * k)] = 1;
  }
  return makeProblem(net, inputs, { rows: n, cols: k, data: t }, spec.loss, spec.reduction ?? 'sum');
}

/** Networks of several depths covering every activation and every loss/output pairing. */
export const RANDOM_SPECS: RandomProblemSpec[] = [
  { sizes: [3, 2], activations: ['identity'], loss: 'sum-of-squares', n: 5, seed: 11 },
  { sizes: [2, 3], activations: ['softmax'], loss: 'softmax-cross-entropy', n: 6, seed: 12 },
  { sizes: [3, 4, 2], activations: ['tanh', 'identity'], loss: 'sum-of-squares', n: 7, seed: 13 },
  { sizes: [3, 5, 2], activations: ['relu', 'sigmoid'], loss: 'cross-entropy', n: 8, seed: 14 },
  { sizes: [4, 3, 3], activations: ['softplus', 'softmax'], loss: 'softmax-cross-entropy', n: 6, seed: 15 },
  { sizes: [2, 4, 3], activations: ['sigmoid', 'tanh'], loss: 'sum-of-squares', n: 5, seed: 16 },
  { sizes: [3, 4, 3], activations: ['tanh', 'softmax'], loss: 'sum-of-squares', n: 6, seed: 17 },
  { sizes: [3, 4, 3, 2], activations: ['tanh', 'relu', 'softplus'], loss: 'sum-of-squares', n: 6, seed: 18 },
  { sizes: [2, 3, 4, 3, 2], activations: ['sigmoid', 'tanh', 'softplus', 'sigmoid'], loss: 'cross-entropy', n: 5, seed: 19 },
  { sizes: [3, 3, 2, 4], activations: ['softplus', 'identity', 'softmax'], loss: 'softmax-cross-entropy', n: 7, seed: 20 },
  { sizes: [2, 3, 3, 2], activations: ['identity', 'tanh', 'tanh'], loss: 'sum-of-squares', n: 4, seed: 21 },
  // 2026-12: logits, mean reduction, layers without bias, the new activations
  { sizes: [3, 5, 4], activations: ['gelu', 'identity'], loss: 'softmax-cross-entropy', n: 7, seed: 22, reduction: 'mean' },
  { sizes: [4, 4, 3, 2], activations: ['silu', 'leaky-relu', 'identity'], loss: 'cross-entropy', n: 6, seed: 23, noBias: [1] },
  { sizes: [2, 5, 3], activations: ['elu', 'gelu'], loss: 'sum-of-squares', n: 5, seed: 24, noBias: [0], reduction: 'mean' },
  { sizes: [3, 4, 4, 3], activations: ['leaky-relu', 'elu', 'softmax'], loss: 'softmax-cross-entropy', n: 6, seed: 25, noBias: [2] },
  { sizes: [3, 4, 3, 2], activations: ['tanh', 'silu', 'identity'], loss: 'sum-of-squares', n: 5, seed: 26, selection: [-1, 0] },
];

export function describe(spec: RandomProblemSpec): string {
  return `${spec.sizes.join('-')} ${spec.activations.join('/')} ${spec.loss}`;
}
