/**
 * Multilayer perceptrons and their batched forward pass.
 *
 * Layer l maps z_{l−1} (size `in`) to a_l = W_l z_{l−1} + b_l (W_l is out × in, as
 * torch.nn.Linear.weight), then z_l = h_l(a_l). The parameter vector is layer by layer, W_l
 * row-major, then b_l: the order of torch.nn.utils.parameters_to_vector.
 * Batches are N × width row-major matrices, one data point a row.
 */
import { ACTIVATION_NAMES, elementwise, isActivationName, type ActivationName } from './activations.ts';
import { CoreError, shapeError } from './errors.ts';
import { linalg } from './linalg/index.ts';
import { applyOutputActivation, outputHead, type LossName, type OutputHead } from './losses.ts';

/** A dense row-major matrix. */
export interface Matrix {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float64Array;
}

export interface Layer {
  readonly in: number;
  readonly out: number;
  /** out × in, row-major. */
  readonly weights: Float64Array;
  readonly bias: Float64Array;
  readonly activation: ActivationName;
  /** Offset of this layer's first parameter (its W[0][0]) in the parameter vector. */
  readonly offset: number;
}

export interface Network {
  readonly layers: readonly Layer[];
  /** W, the number of parameters. */
  readonly parameterCount: number;
  readonly inputSize: number;
  readonly outputSize: number;
}

/** A network as the edge hands it over: per layer its weights (out × in), bias and activation's name. */
export interface NetworkSpec {
  readonly layers: readonly { readonly weights: Matrix; readonly bias: Float64Array; readonly activation: string }[];
}

/** A network with data and an error function: everything a Hessian needs. */
export interface Problem {
  readonly network: Network;
  readonly inputs: Matrix;
  readonly targets: Matrix;
  readonly loss: LossName;
  readonly head: OutputHead;
}

/** The number of parameters of layers with these (out, in) sizes: Σ out·(in + 1). */
export function countParameters(sizes: readonly { out: number; in: number }[]): number {
  let w = 0;
  for (const l of sizes) w += l.out * (l.in + 1);
  return w;
}

/**
 * Builds a network from its spec, checking that each layer's weights have one row per bias
 * entry, that consecutive layers fit and that every activation is known; softmax only at the
 * output. The arrays are used as they are (not copied).
 */
export function buildNetwork(spec: NetworkSpec): Network {
  if (spec.layers.length === 0) throw shapeError({ reason: 'noLayers' });
  const layers: Layer[] = [];
  let offset = 0;
  for (let i = 0; i < spec.layers.length; i++) {
    const l = spec.layers[i];
    const out = l.bias.length;
    if (out === 0) throw shapeError({ reason: 'emptyBias', layer: i });
    if (l.weights.rows !== out) throw shapeError({ reason: 'weightRows', layer: i, rows: l.weights.rows, out });
    const inSize = l.weights.cols;
    if (inSize === 0) throw shapeError({ reason: 'emptyWeights', layer: i });
    if (i > 0 && inSize !== layers[i - 1].out) {
      throw shapeError({ reason: 'layerChain', layer: i, columns: inSize, previousOut: layers[i - 1].out });
    }
    if (!isActivationName(l.activation)) {
      throw new CoreError('UNKNOWN_ACTIVATION', { layer: i, activation: l.activation, known: ACTIVATION_NAMES });
    }
    if (l.activation === 'softmax' && i !== spec.layers.length - 1) {
      throw new CoreError('SOFTMAX_NOT_AT_OUTPUT', { layer: i, layers: spec.layers.length });
    }
    layers.push({ in: inSize, out, weights: l.weights.data, bias: l.bias, activation: l.activation, offset });
    offset += out * (inSize + 1);
  }
  return { layers, parameterCount: offset, inputSize: layers[0].in, outputSize: layers[layers.length - 1].out };
}

/** Checks that inputs fit the network (N × D, N ≥ 1). */
export function checkInputs(net: Network, inputs: Matrix): void {
  if (inputs.rows === 0) throw shapeError({ reason: 'noData', field: 'inputs' });
  if (inputs.cols !== net.inputSize) throw shapeError({ reason: 'inputColumns', columns: inputs.cols, d: net.inputSize });
}

/**
 * Checks and bundles a network, data and loss: sizes (inputs N × D, targets N × K), the
 * loss/output pairing, and the targets' domain (cross-entropy: [0, 1]; softmax-cross-entropy:
 * non-negative rows summing to 1).
 */
export function makeProblem(network: Network, inputs: Matrix, targets: Matrix, loss: LossName): Problem {
  checkInputs(network, inputs);
  const k = network.outputSize;
  if (targets.cols !== k) throw shapeError({ reason: 'targetColumns', columns: targets.cols, k });
  if (targets.rows !== inputs.rows) throw shapeError({ reason: 'targetRows', rows: targets.rows, n: inputs.rows });
  const head = outputHead(loss, network.layers[network.layers.length - 1].activation);
  const t = targets.data;
  if (loss === 'cross-entropy') {
    for (let i = 0; i < t.length; i++) {
      if (!(t[i] >= 0 && t[i] <= 1)) {
        throw new CoreError('TARGET_OUT_OF_DOMAIN', { reason: 'probability', row: Math.floor(i / k), column: i % k, value: t[i] });
      }
    }
  } else if (loss === 'softmax-cross-entropy') {
    for (let n = 0; n < targets.rows; n++) {
      let s = 0;
      for (let j = 0; j < k; j++) {
        const v = t[n * k + j];
        if (!(v >= 0)) throw new CoreError('TARGET_OUT_OF_DOMAIN', { reason: 'negative', row: n, column: j, value: v });
        s += v;
      }
      if (Math.abs(s - 1) > 1e-6) throw new CoreError('TARGET_OUT_OF_DOMAIN', { reason: 'rowSum', row: n, sum: s });
    }
  }
  return { network, inputs, targets, loss, head };
}

/** What the forward pass keeps for backpropagation: per layer, a_l and z_l (N × out). */
export interface ForwardPass {
  readonly n: number;
  /** zs[0] = inputs, zs[l+1] = h_l(a_l). */
  readonly zs: Float64Array[];
  readonly as: Float64Array[];
  /** h′_l(a_l), elementwise layers only (undefined for softmax). */
  readonly d1: (Float64Array | undefined)[];
  /** h″_l(a_l), elementwise layers only. */
  readonly d2: (Float64Array | undefined)[];
}

/**
 * Batched forward pass: a_l = Z_{l−1} W_lᵀ + 1 b_lᵀ (one GEMM per layer), z_l = h_l(a_l),
 * with h′ and h″ kept for the derivatives. Cost 2·N·Σ out·in = O(NW).
 */
export function forward(net: Network, inputs: Matrix): ForwardPass {
  const n = inputs.rows;
  const zs: Float64Array[] = [inputs.data];
  const as: Float64Array[] = [];
  const d1: (Float64Array | undefined)[] = [];
  const d2: (Float64Array | undefined)[] = [];
  const la = linalg();
  for (const layer of net.layers) {
    const zin = zs[zs.length - 1];
    const a = new Float64Array(n * layer.out);
    for (let i = 0; i < n; i++) a.set(layer.bias, i * layer.out);
    la.gemm(false, true, n, layer.out, layer.in, 1, zin, layer.in, layer.weights, layer.in, 1, a, layer.out);
    const z = new Float64Array(n * layer.out);
    applyOutputActivation(layer.activation, a, z, layer.out);
    as.push(a);
    zs.push(z);
    if (layer.activation === 'softmax') {
      d1.push(undefined);
      d2.push(undefined);
    } else {
      const act = elementwise(layer.activation);
      const g1 = new Float64Array(a.length);
      const g2 = new Float64Array(a.length);
      for (let i = 0; i < a.length; i++) { g1[i] = act.d1(a[i], z[i]); g2[i] = act.d2(a[i], z[i]); }
      d1.push(g1);
      d2.push(g2);
    }
  }
  return { n, zs, as, d1, d2 };
}

/** Flattens the network's parameters in the API order (per layer: W row-major, then b). */
export function parameterVector(net: Network): Float64Array {
  const w = new Float64Array(net.parameterCount);
  for (const l of net.layers) {
    w.set(l.weights, l.offset);
    w.set(l.bias, l.offset + l.out * l.in);
  }
  return w;
}

/** The same architecture with parameters taken from the vector `w` (API order). */
export function withParameters(net: Network, w: Float64Array): Network {
  const layers = net.layers.map((l) => ({
    ...l,
    weights: w.slice(l.offset, l.offset + l.out * l.in),
    bias: w.slice(l.offset + l.out * l.in, l.offset + l.out * (l.in + 1)),
  }));
  return { ...net, layers };
}
