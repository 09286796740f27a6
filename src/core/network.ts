/**
 * Multilayer perceptrons and their batched forward pass.
 *
 * Layer l maps z_{l−1} (size `in`) to a_l = W_l z_{l−1} + b_l (W_l is out × in, as
 * torch.nn.Linear.weight), then z_l = h_l(a_l). The parameter vector is layer by layer, W_l
 * row-major, then b_l: the order of torch.nn.utils.parameters_to_vector.
 * Batches are N × width row-major matrices, one data point a row.
 */
import { ServiceError, shapeError } from '../errors.ts';
import { ACTIVATION_NAMES, ELEMENTWISE, type ActivationName } from './activations.ts';
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

/** A network in the API's JSON form. */
export interface NetworkSpec {
  layers: readonly { weights: ArrayLike<ArrayLike<number>> | Float64Array; bias: ArrayLike<number>; activation: string; in?: number }[];
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
  return sizes.reduce((s, l) => s + l.out * (l.in + 1), 0);
}

/**
 * Builds a network from its JSON form, checking that consecutive layers fit, that each row of
 * weights has the same length and that every activation is known; softmax only at the output.
 * `weights` may also be given flat (a Float64Array of out·in values) when `in` is given.
 */
export function buildNetwork(spec: NetworkSpec): Network {
  if (spec.layers.length === 0) throw shapeError('network.layers is empty; give at least one layer');
  const layers: Layer[] = [];
  let offset = 0;
  spec.layers.forEach((l, i) => {
    const where = `network.layers[${i}]`;
    const out = l.bias.length;
    if (out === 0) throw shapeError(`${where}.bias is empty; a layer needs at least one output`);
    let weights: Float64Array;
    let inSize: number;
    if (l.weights instanceof Float64Array) {
      inSize = l.in ?? 0;
      if (inSize <= 0 || l.weights.length !== out * inSize) {
        throw shapeError(`${where}.weights has ${l.weights.length} values; expected ${out} × ${inSize}`);
      }
      weights = l.weights;
    } else {
      const rows = l.weights as ArrayLike<ArrayLike<number>>;
      if (rows.length !== out) {
        throw shapeError(`${where}.weights has ${rows.length} rows but bias has ${out} entries; W must be out × in with one row per bias entry`);
      }
      inSize = rows[0].length;
      if (inSize === 0) throw shapeError(`${where}.weights[0] is empty; a layer needs at least one input`);
      weights = new Float64Array(out * inSize);
      for (let r = 0; r < out; r++) {
        const row = rows[r];
        if (row.length !== inSize) {
          throw shapeError(`${where}.weights[${r}] has ${row.length} entries but weights[0] has ${inSize}; every row of W must have the same length`);
        }
        for (let c = 0; c < inSize; c++) weights[r * inSize + c] = row[c];
      }
    }
    if (i > 0 && inSize !== layers[i - 1].out) {
      throw shapeError(`${where}.weights has ${inSize} columns but layer ${i - 1} has ${layers[i - 1].out} outputs; a layer's input size must equal the previous layer's output size`);
    }
    if (!(ACTIVATION_NAMES as readonly string[]).includes(l.activation)) {
      throw new ServiceError('UNKNOWN_ACTIVATION', { layer: i, activation: l.activation, known: ACTIVATION_NAMES.map((a) => `'${a}'`).join(', ') });
    }
    if (l.activation === 'softmax' && i !== spec.layers.length - 1) {
      throw new ServiceError('SOFTMAX_NOT_AT_OUTPUT', { layer: i, layers: spec.layers.length });
    }
    layers.push({ in: inSize, out, weights, bias: Float64Array.from(l.bias), activation: l.activation as ActivationName, offset });
    offset += out * (inSize + 1);
  });
  return { layers, parameterCount: offset, inputSize: layers[0].in, outputSize: layers[layers.length - 1].out };
}

/** A rectangular matrix from rows, or a refusal naming the field and the first bad row. */
export function toMatrix(rows: ArrayLike<ArrayLike<number>>, field: string, cols?: number): Matrix {
  const n = rows.length;
  if (n === 0) throw shapeError(`${field} is empty; give at least one data point`);
  const c = rows[0].length;
  if (cols !== undefined && c !== cols) {
    throw shapeError(`${field}[0] has ${c} entries; expected ${cols}`);
  }
  const data = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    const row = rows[i];
    if (row.length !== c) throw shapeError(`${field}[${i}] has ${row.length} entries but ${field}[0] has ${c}; every row must have the same length`);
    for (let j = 0; j < c; j++) data[i * c + j] = row[j];
  }
  return { rows: n, cols: c, data };
}

/** Checks that inputs fit the network (N × D). */
export function checkInputs(net: Network, inputs: Matrix): void {
  if (inputs.cols !== net.inputSize) {
    throw shapeError(`inputs have ${inputs.cols} columns but the first layer takes ${net.inputSize} inputs; inputs must be N × ${net.inputSize}`);
  }
}

/**
 * Checks and bundles a network, data and loss: sizes (inputs N × D, targets N × K), the
 * loss/output pairing, and the targets' domain (cross-entropy: [0, 1]; softmax-cross-entropy:
 * non-negative rows summing to 1).
 */
export function makeProblem(network: Network, inputs: Matrix, targets: Matrix, loss: LossName): Problem {
  checkInputs(network, inputs);
  const k = network.outputSize;
  if (targets.cols !== k) {
    throw shapeError(`targets have ${targets.cols} columns but the last layer has ${k} outputs; targets must be N × ${k}`);
  }
  if (targets.rows !== inputs.rows) {
    throw shapeError(`targets have ${targets.rows} rows but inputs have ${inputs.rows}; give one target row per input row`);
  }
  const head = outputHead(loss, network.layers[network.layers.length - 1].activation);
  const t = targets.data;
  if (loss === 'cross-entropy') {
    for (let i = 0; i < t.length; i++) {
      if (!(t[i] >= 0 && t[i] <= 1)) {
        throw new ServiceError('TARGET_OUT_OF_DOMAIN', { detail: `targets[${Math.floor(i / k)}][${i % k}] = ${t[i]}; cross-entropy targets must lie in [0, 1]` });
      }
    }
  } else if (loss === 'softmax-cross-entropy') {
    for (let n = 0; n < targets.rows; n++) {
      let s = 0;
      for (let j = 0; j < k; j++) {
        const v = t[n * k + j];
        if (!(v >= 0)) throw new ServiceError('TARGET_OUT_OF_DOMAIN', { detail: `targets[${n}][${j}] = ${v}; softmax-cross-entropy targets must be non-negative` });
        s += v;
      }
      if (Math.abs(s - 1) > 1e-6) {
        throw new ServiceError('TARGET_OUT_OF_DOMAIN', { detail: `targets[${n}] sums to ${s}; softmax-cross-entropy targets must be probabilities summing to 1 in each row` });
      }
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
      const act = ELEMENTWISE[layer.activation];
      const g1 = new Float64Array(a.length);
      const g2 = new Float64Array(a.length);
      for (let i = 0; i < a.length; i++) { g1[i] = act.d1(a[i], z[i]); g2[i] = act.d2(a[i], z[i]); }
      d1.push(g1);
      d2.push(g2);
    }
  }
  return { n, zs, as, d1, d2 };
}

/** The network's outputs y = z_L (N × K). Cost O(NW). */
export function outputs(net: Network, inputs: Matrix): Matrix {
  checkInputs(net, inputs);
  const f = forward(net, inputs);
  return { rows: inputs.rows, cols: net.outputSize, data: f.zs[f.zs.length - 1] };
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
