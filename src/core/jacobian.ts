/**
 * Jacobians of the network outputs y (PRML §5.3.4), per data point, by backpropagation.
 */
import { shapeError } from './errors.ts';
import { augmentedInputs, chunkSize, outputMatrices, pullBack } from './backprop.ts';
import type { LayerSize } from './network.ts';
import { linalg } from './linalg/index.ts';
import { checkInputs, forward, type ForwardPass, type Matrix, type Network, type Problem } from './network.ts';
import { outputHead } from './losses.ts';

export interface JacobianResult {
  readonly outputs: Matrix;
  /** Row-major, of shape `shape`. */
  readonly jacobian: Float64Array;
  readonly shape: readonly [number, number, number];
}

/** A problem whose head gives ∂y/∂a_out (any loss accepts the output activation for that). */
function jacobianProblem(net: Network, inputs: Matrix): Problem {
  const act = net.layers[net.layers.length - 1].activation;
  const zeros: Matrix = { rows: inputs.rows, cols: net.outputSize, data: new Float64Array(inputs.rows * net.outputSize) };
  return { network: net, inputs, targets: zeros, loss: 'sum-of-squares', reduction: 'sum', head: outputHead('sum-of-squares', act) };
}

/** Doubles per point of the input Jacobian's chunks: two K × (widest layer) pull-back blocks. */
function inputJacobianPerPoint(layers: readonly LayerSize[], k: number): number {
  let widest = layers[0]?.in ?? 0;
  for (const l of layers) widest = Math.max(widest, l.out);
  return 2 * k * widest;
}

/** Doubles per point of the parameter Jacobian's chunks: pull-back blocks and the augmented inputs. */
function parameterJacobianPerPoint(layers: readonly LayerSize[], k: number): number {
  let widest = 0;
  for (const l of layers) widest = Math.max(widest, l.out + l.in + 1);
  return 4 * k * widest;
}

/** Points per chunk of the input Jacobian, for its work estimate. */
export function inputJacobianChunk(layers: readonly LayerSize[], n: number): number {
  return chunkSize(n, inputJacobianPerPoint(layers, layers[layers.length - 1]?.out ?? 0));
}

/** Bytes of the Jacobians' chunks for K outputs and N points, besides the answer and the forward pass. */
export function jacobianScratchBytes(layers: readonly LayerSize[], n: number, wrt: 'inputs' | 'parameters'): number {
  const k = layers[layers.length - 1]?.out ?? 0;
  const perPoint = wrt === 'inputs' ? inputJacobianPerPoint(layers, k) : parameterJacobianPerPoint(layers, k);
  return 8 * chunkSize(n, perPoint) * perPoint;
}

/**
 * The input Jacobian J_ki = ∂y_k/∂x_i for every data point (N × K × D), by backpropagation
 * (PRML 5.73–5.74): start from ∂y/∂a_out (diag(h′) or, for softmax, diag(y) − yyᵀ), pull back
 * through each layer (∂y/∂a_{l−1} = ∂y/∂a_l W_l diag(h′_{l−1}), 5.74), and finish with
 * ∂y/∂x = ∂y/∂a_1 W_1 (5.73). Cost O(N·K·Σ out_l·in_l) = O(NKW), in GEMMs.
 */
export function inputJacobian(net: Network, inputs: Matrix): JacobianResult {
  checkInputs(net, inputs);
  const p = jacobianProblem(net, inputs);
  const f = forward(net, inputs);
  const n = inputs.rows, k = net.outputSize, d = net.inputSize, L = net.layers.length;
  const jac = new Float64Array(n * k * d);
  const chunk = chunkSize(n, inputJacobianPerPoint(net.layers, k));
  for (let n0 = 0; n0 < n; n0 += chunk) {
    const c = Math.min(chunk, n - n0);
    let x = outputMatrices(p, f, 'outputJacobian', n0, c);
    for (let m = L - 2; m >= 0; m--) x = pullBack(net, f, m, x, c, k, n0);
    const first = net.layers[0];
    linalg().gemm(false, false, c * k, d, first.out, 1, x, first.out, first.weights, d, 0, jac.subarray(n0 * k * d), d);
  }
  return { outputs: { rows: n, cols: k, data: f.zs[L] }, jacobian: jac, shape: [n, k, d] };
}

/**
 * Rows of a parameter Jacobian for points n0 … n0 + c − 1, (c·r) × width: given per-point
 * r × out_top matrices C_n (derivatives with respect to a_top, the last layer's by default), the
 * rows of C_n ∂a_top/∂w, where ∂a_top/∂θ_m[p][q] = R_{top,m}[·][p] z̃_{m−1}[q], for the selected
 * layers m ≤ top (m < top without `own`; the pull-back stops at the lowest). Columns are the
 * parameter indices, of which the first `width` are kept (those of the layers below top when
 * `own` is false). Cost O(c·r·(W + Σ out_l·out_{l+1})).
 */
export function jacobianRows(
  net: Network, f: ForwardPass, start: Float64Array, n0: number, c: number, out?: Float64Array,
  { top = net.layers.length - 1, own = true, width = net.parameterCount }: { top?: number; own?: boolean; width?: number } = {},
): Float64Array {
  const k = start.length / (c * net.layers[top].out);
  const W = width;
  const rows = out ?? new Float64Array(c * k * W);
  const lowest = lowestSelected(net);
  let x = start;
  for (let m = top; m >= lowest; m--) {
    if (m < top) x = pullBack(net, f, m, x, c, k, n0);
    const layer = net.layers[m];
    if (layer.offset < 0 || (m === top && !own)) continue;
    linalg().layerRows(x, c, k, layer, augmentedInputs(f, layer, m, n0, c), rows, W);
  }
  return rows;
}

/** The index of the first selected layer (the layers below it need no pull-back). */
export function lowestSelected(net: Network): number {
  const l = net.layers.findIndex((layer) => layer.offset >= 0);
  return l < 0 ? net.layers.length : l;
}

/**
 * The parameter Jacobian ∂y_k/∂w for every data point (N × K × W, parameters in the API order):
 * ∂y/∂a_out pulled back to each layer's a_m, times its augmented input (5.74 with 5.53's
 * ∂a/∂w = z). Cost O(N·K·W).
 */
export function parameterJacobian(net: Network, inputs: Matrix): JacobianResult {
  checkInputs(net, inputs);
  const p = jacobianProblem(net, inputs);
  const f = forward(net, inputs);
  const n = inputs.rows, k = net.outputSize, W = net.parameterCount;
  const jac = new Float64Array(n * k * W);
  const chunk = chunkSize(n, parameterJacobianPerPoint(net.layers, k));
  for (let n0 = 0; n0 < n; n0 += chunk) {
    const c = Math.min(chunk, n - n0);
    jacobianRows(net, f, outputMatrices(p, f, 'outputJacobian', n0, c), n0, c, jac.subarray(n0 * k * W, (n0 + c) * k * W));
  }
  return { outputs: { rows: n, cols: k, data: f.zs[net.layers.length] }, jacobian: jac, shape: [n, k, W] };
}

/** Checks that a vector has one entry per parameter. */
export function checkParameterVector(net: Network, v: Float64Array, field: string): void {
  if (v.length !== net.parameterCount) {
    throw shapeError({ reason: 'vectorLength', field, length: v.length, w: net.parameterCount });
  }
}
