/**
 * The diagonal approximation of the Hessian (Becker and LeCun; PRML 5.79–5.81).
 */
import { backward, outputMatrices, type LayerSize } from './backprop.ts';
import { linalg } from './linalg/index.ts';
import { forward, type Problem } from './network.ts';

/** Bytes besides the answer and the passes: the output curvatures (N·K²) and two N × width arrays per layer. */
export function diagonalApproximationScratchBytes(layers: readonly LayerSize[], n: number): number {
  let widest = 0;
  for (const l of layers) widest = Math.max(widest, l.in, l.out);
  const k = layers[layers.length - 1]?.out ?? 0;
  return 8 * n * (k * k + 3 * widest);
}

/**
 * Second derivatives backpropagated with the off-diagonal terms dropped, the h″ term kept:
 *   ∂²E_n/∂w_ji² = ∂²E_n/∂a_j² · z_i²                                                  (5.79)
 *   ∂²E_n/∂a_j² = h′(a_j)² Σ_k w_kj² ∂²E_n/∂a_k² + h″(a_j) Σ_k w_kj ∂E_n/∂a_k          (5.81)
 * starting at the output from the exact δ_n = ∂E_n/∂a_out and the exact diagonal of
 * ∂²E_n/∂a_out²; bias entries take z = 1. Summed over n. Cost O(NW) in GEMMs.
 */
export function diagonalApproximation(p: Problem): Float64Array {
  const net = p.network;
  const L = net.layers.length;
  const f = forward(net, p.inputs);
  const b = backward(p, f);
  const n = f.n, k = net.outputSize;
  const la = linalg();
  const out = new Float64Array(net.parameterCount);
  // exact diagonal of L_n at the output
  let second = new Float64Array(n * k);
  const curv = outputMatrices(p, f, 'curvature', 0, n);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) second[i * k + j] = curv[i * k * k + j * k + j];
  for (let l = L - 1; l >= 0; l--) {
    const layer = net.layers[l];
    const z2 = f.zs[l].map((v) => v * v);
    // Σ_n ∂²E_n/∂a_j² z_i² for the weights (out × in), then the bias
    la.gemm(true, false, layer.out, layer.in, n, 1, second, layer.out, z2, layer.in, 0, out.subarray(layer.offset), layer.in);
    const biasAt = layer.offset + layer.out * layer.in;
    for (let i = 0; i < n; i++) for (let j = 0; j < layer.out; j++) out[biasAt + j] += second[i * layer.out + j];
    if (l === 0) break;
    const w2 = layer.weights.map((v) => v * v);
    const back2 = new Float64Array(n * layer.in);
    la.gemm(false, false, n, layer.in, layer.out, 1, second, layer.out, w2, layer.in, 0, back2, layer.in);
    const back1 = b.gs[l - 1]!; // Σ_k w_kj δ_k
    const d1 = f.d1[l - 1]!, d2 = f.d2[l - 1]!;
    second = new Float64Array(n * layer.in);
    for (let i = 0; i < second.length; i++) second[i] = d1[i] * d1[i] * back2[i] + d2[i] * back1[i];
  }
  return out;
}
