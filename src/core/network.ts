/**
 * Multilayer perceptrons and their batched forward pass.
 *
 * Layer l maps z_{l−1} (size `in`) to a_l = W_l z_{l−1} + b_l (W_l is out × in, as
 * torch.nn.Linear.weight; a layer may have no bias, as nn.Linear(bias=False)), then
 * z_l = h_l(a_l). The parameter vector is layer by layer, W_l row-major, then b_l: the order of
 * torch.nn.utils.parameters_to_vector. A request may select some layers' parameters (the others
 * are held fixed): the vector is then theirs alone, in the same order.
 * Batches are N × width row-major matrices, one data point a row.
 */
import { ACTIVATION_NAMES, elementwise, isActivationName, type ActivationName } from './activations.ts';
import { CoreError, shapeError } from './errors.ts';
import { linalg } from './linalg/index.ts';
import { applyOutputActivation, outputHead, scaledHead, type LossName, type OutputHead, type Reduction } from './losses.ts';

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
  /** out entries, or null for a layer without bias. */
  readonly bias: Float64Array | null;
  readonly activation: ActivationName;
  /** The width of the augmented input z̃ = (z, 1): in + 1 with a bias, in without. */
  readonly aug: number;
  /** W_l = out · aug, this layer's parameters. */
  readonly size: number;
  /** Offset of this layer's first parameter (its W[0][0]) in the parameter vector; −1 when it is not selected (held fixed). */
  readonly offset: number;
}

export interface Network {
  readonly layers: readonly Layer[];
  /** W, the number of (selected) parameters. */
  readonly parameterCount: number;
  readonly inputSize: number;
  readonly outputSize: number;
}

/** A network as the edge hands it over: per layer its weights (out × in), bias (or null) and activation's name. */
export interface NetworkSpec {
  readonly layers: readonly { readonly weights: Matrix; readonly bias: Float64Array | null; readonly activation: string }[];
}

/** A network with data and an error function: everything a Hessian needs. */
export interface Problem {
  readonly network: Network;
  readonly inputs: Matrix;
  /** N × K (labels become their one-hot rows). */
  readonly targets: Matrix;
  readonly loss: LossName;
  readonly reduction: Reduction;
  /** The output head, scaled by 1/N for the mean. */
  readonly head: OutputHead;
}

/** Targets as rows (N × K), or, for softmax-cross-entropy, N class labels in [0, K) standing for one-hot rows. */
export type Targets = Matrix | { readonly labels: Float64Array };

/** Layer sizes, all that memory estimates need; `hasBias` and `selected` default to true. */
export interface LayerSize {
  readonly in: number;
  readonly out: number;
  readonly hasBias?: boolean;
  readonly selected?: boolean;
}

/** The number of (selected) parameters of layers with these sizes: Σ out·(in + 1), or out·in for a layer without bias. */
export function countParameters(sizes: readonly LayerSize[]): number {
  let w = 0;
  for (const l of sizes) if (l.selected !== false) w += l.out * (l.in + (l.hasBias === false ? 0 : 1));
  return w;
}

/**
 * The selected layers as indices in 0 … L − 1: a negative index counts from the end (−1 is the
 * output layer); an index out of range or given twice is refused. Absent: every layer.
 */
export function selectedLayers(layers: number, selection: readonly number[] | undefined): boolean[] {
  const selected = new Array<boolean>(layers).fill(selection === undefined);
  for (const given of selection ?? []) {
    const l = given < 0 ? layers + given : given;
    if (!Number.isInteger(given) || l < 0 || l >= layers) throw new CoreError('INVALID_SELECTION', { reason: 'range', index: given, layers });
    if (selected[l]) throw new CoreError('INVALID_SELECTION', { reason: 'duplicate', index: given, layers });
    selected[l] = true;
  }
  return selected;
}

/**
 * Builds a network from its spec, checking that each layer's weights have one row per bias
 * entry, that consecutive layers fit and that every activation is known; softmax only at the
 * output. `selection` chooses the layers whose parameters make the parameter vector (all by
 * default; see selectedLayers). The arrays are used as they are (not copied).
 */
export function buildNetwork(spec: NetworkSpec, selection?: readonly number[]): Network {
  if (spec.layers.length === 0) throw shapeError({ reason: 'noLayers' });
  const selected = selectedLayers(spec.layers.length, selection);
  const layers: Layer[] = [];
  let offset = 0;
  for (let i = 0; i < spec.layers.length; i++) {
    const l = spec.layers[i];
    const out = l.weights.rows;
    if (out === 0) throw shapeError({ reason: 'emptyBias', layer: i });
    if (l.bias !== null && l.bias.length !== out) throw shapeError({ reason: 'weightRows', layer: i, rows: l.weights.rows, out: l.bias.length });
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
    const aug = inSize + (l.bias === null ? 0 : 1);
    layers.push({ in: inSize, out, weights: l.weights.data, bias: l.bias, activation: l.activation, aug, size: out * aug, offset: selected[i] ? offset : -1 });
    if (selected[i]) offset += out * aug;
  }
  return { layers, parameterCount: offset, inputSize: layers[0].in, outputSize: layers[layers.length - 1].out };
}

/** Checks that inputs fit the network (N × D, N ≥ 1). */
export function checkInputs(net: Network, inputs: Matrix): void {
  if (inputs.rows === 0) throw shapeError({ reason: 'noData', field: 'inputs' });
  if (inputs.cols !== net.inputSize) throw shapeError({ reason: 'inputColumns', columns: inputs.cols, d: net.inputSize });
}

/** Labels (integers in [0, K), one per data point) as their one-hot rows, or a refusal naming the row. */
function oneHot(labels: Float64Array, n: number, k: number, loss: LossName): Matrix {
  if (loss !== 'softmax-cross-entropy') throw new CoreError('TARGET_OUT_OF_DOMAIN', { reason: 'labelsLoss', loss });
  if (labels.length !== n) throw shapeError({ reason: 'labelCount', count: labels.length, n });
  const data = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    const c = labels[i];
    if (!(Number.isInteger(c) && c >= 0 && c < k)) throw new CoreError('TARGET_OUT_OF_DOMAIN', { reason: 'label', row: i, value: c, k });
    data[i * k + c] = 1;
  }
  return { rows: n, cols: k, data };
}

/**
 * Checks and bundles a network, data and loss: sizes (inputs N × D, targets N × K or N labels),
 * the loss/output pairing, and the targets' domain (cross-entropy: [0, 1]; softmax-cross-entropy:
 * non-negative rows summing to 1, or labels in [0, K)). With reduction 'mean' the error is E/N.
 */
export function makeProblem(network: Network, inputs: Matrix, given: Targets, loss: LossName, reduction: Reduction = 'sum'): Problem {
  checkInputs(network, inputs);
  const k = network.outputSize;
  const targets = 'labels' in given ? oneHot(given.labels, inputs.rows, k, loss) : given;
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
  return { network, inputs, targets, loss, reduction, head: reduction === 'mean' ? scaledHead(head, 1 / inputs.rows) : head };
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
    if (layer.bias) for (let i = 0; i < n; i++) a.set(layer.bias, i * layer.out);
    la.gemm(false, true, n, layer.out, layer.in, 1, zin, layer.in, layer.weights, layer.in, layer.bias ? 1 : 0, a, layer.out);
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

/** Flattens the (selected) parameters in the API order (per layer: W row-major, then b). */
export function parameterVector(net: Network): Float64Array {
  const w = new Float64Array(net.parameterCount);
  for (const l of net.layers) {
    if (l.offset < 0) continue;
    w.set(l.weights, l.offset);
    if (l.bias) w.set(l.bias, l.offset + l.out * l.in);
  }
  return w;
}

/** The same architecture with the (selected) parameters taken from the vector `w` (API order). */
export function withParameters(net: Network, w: Float64Array): Network {
  const layers = net.layers.map((l) => (l.offset < 0 ? l : {
    ...l,
    weights: w.slice(l.offset, l.offset + l.out * l.in),
    bias: l.bias ? w.slice(l.offset + l.out * l.in, l.offset + l.size) : null,
  }));
  return { ...net, layers };
}
