/**
 * Backpropagation (PRML §5.3.1) and the batched pull-back that every curvature method shares.
 *
 * Notation, per data point n and layer l (0-based, L layers): a_l = W_l z_{l−1} + b_l,
 * z_l = h_l(a_l), δ_l = ∂E_n/∂a_l, g_l = ∂E_n/∂z_l = W_{l+1}ᵀ δ_{l+1} (PRML 5.56).
 */
import { linalg } from './linalg/index.ts';
import { forward, type ForwardPass, type Layer, type LayerSize, type Network, type Problem } from './network.ts';

export interface BackwardPass {
  /** deltas[l] (N × out_l) = ∂E_n/∂a_l. */
  readonly deltas: Float64Array[];
  /** gs[l] (N × out_l) = ∂E_n/∂z_l for l < L − 1 (undefined at the output). */
  readonly gs: (Float64Array | undefined)[];
  /** E = Σ_n E_n. */
  readonly error: number;
}


/**
 * Bytes of one forward and backward pass over N points (a, z, h′, h″, δ per unit and point, plus
 * the inputs and targets), for sizing requests before work.
 */
export function passesBytes(layers: readonly LayerSize[], n: number): number {
  let units = 0;
  for (const l of layers) units += l.out;
  const d = layers[0]?.in ?? 0, k = layers[layers.length - 1]?.out ?? 0;
  return 8 * n * (d + 5 * units + 2 * k);
}

/**
 * Error signals by backpropagation (PRML 5.54–5.56): δ_out = ∂E_n/∂a_out from the output head,
 * then g_{l−1} = δ_l W_l (one GEMM per layer over the batch) and δ_{l−1} = h′(a_{l−1}) ⊙ g_{l−1}.
 * Cost O(NW).
 */
export function backward(p: Problem, f: ForwardPass): BackwardPass {
  const net = p.network;
  const L = net.layers.length;
  const n = f.n;
  const k = net.outputSize;
  const deltas: Float64Array[] = new Array(L);
  const gs: (Float64Array | undefined)[] = new Array(L).fill(undefined);
  const aOut = f.as[L - 1];
  const yOut = f.zs[L];
  const t = p.targets.data;
  const dOut = new Float64Array(n * k);
  let error = 0;
  for (let i = 0; i < n; i++) {
    const s = i * k, e = s + k;
    const a = aOut.subarray(s, e), y = yOut.subarray(s, e), ti = t.subarray(s, e);
    error += p.head.error(a, y, ti);
    p.head.delta(a, y, ti, dOut.subarray(s, e));
  }
  deltas[L - 1] = dOut;
  const la = linalg();
  for (let l = L - 1; l > 0; l--) {
    const layer = net.layers[l];
    const g = new Float64Array(n * layer.in);
    la.gemm(false, false, n, layer.in, layer.out, 1, deltas[l], layer.out, layer.weights, layer.in, 0, g, layer.in);
    gs[l - 1] = g;
    const d1 = f.d1[l - 1]!;
    const d = new Float64Array(g.length);
    for (let i = 0; i < g.length; i++) d[i] = d1[i] * g[i];
    deltas[l - 1] = d;
  }
  return { deltas, gs, error };
}

/** E = Σ_n E_n. Cost O(NW). */
export function errorValue(p: Problem): number {
  return backward(p, forward(p.network, p.inputs)).error;
}

/**
 * ∇E in the API's parameter order: ∂E/∂W_l = Σ_n δ_l z_{l−1}ᵀ, ∂E/∂b_l = Σ_n δ_l (PRML 5.53),
 * one GEMM per layer. Cost O(NW).
 */
export function gradient(p: Problem): Float64Array {
  const f = forward(p.network, p.inputs);
  return gradientFrom(p.network, f, backward(p, f).deltas);
}

/** ∇E from a forward pass and the deltas (shared with the R-operator). */
export function gradientFrom(net: Network, f: ForwardPass, deltas: Float64Array[]): Float64Array {
  const grad = new Float64Array(net.parameterCount);
  const la = linalg();
  net.layers.forEach((layer, l) => {
    if (layer.offset < 0) return;
    const gw = grad.subarray(layer.offset, layer.offset + layer.out * layer.in);
    la.gemm(true, false, layer.out, layer.in, f.n, 1, deltas[l], layer.out, f.zs[l], layer.in, 0, gw, layer.in);
    if (layer.bias) addColumnSums(deltas[l], f.n, layer.out, grad, layer.offset + layer.out * layer.in);
  });
  return grad;
}

/** out[offset + j] += Σ_i x[i][j] for an n × k matrix x. */
export function addColumnSums(x: Float64Array, n: number, k: number, out: Float64Array, offset: number): void {
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) out[offset + j] += x[i * k + j];
}

/**
 * The batched pull-back through layer m+1: for each of c data points (from n0), a block
 * X_n (r × out_{m+1}) of derivatives with respect to a_{m+1} becomes X_n W_{m+1} diag(h′_m(a_m))
 * (r × out_m), derivatives with respect to a_m (the chain rule of PRML 5.74 and 5.94).
 * One GEMM of (c·r) × out_{m+1} × out_m plus the scaling. With `scale` false the h′ factor is
 * left out (the last step of an input Jacobian, where z_{−1} = x).
 */
export function pullBack(
  net: Network, f: ForwardPass, m: number, x: Float64Array, c: number, r: number, n0: number, scale = true,
): Float64Array {
  const layer = net.layers[m + 1];
  const w = layer.in;
  const out = new Float64Array(c * r * w);
  linalg().gemm(false, false, c * r, w, layer.out, 1, x, layer.out, layer.weights, w, 0, out, w);
  if (scale) linalg().scaleColumns(out, c, r, w, f.d1[m]!.subarray(n0 * w, (n0 + c) * w));
  return out;
}

/**
 * z̃_{l−1} for points n0 … n0 + c − 1, c × aug_l: the input of layer l, with a trailing 1 for
 * its bias when it has one (z̃ = z without).
 */
export function augmentedInputs(f: ForwardPass, layer: Layer, l: number, n0: number, c: number): Float64Array {
  const z = f.zs[l];
  const w = layer.in, a = layer.aug;
  if (a === w) return z.subarray(n0 * w, (n0 + c) * w);
  const out = new Float64Array(c * a);
  for (let i = 0; i < c; i++) {
    out.set(z.subarray((n0 + i) * w, (n0 + i + 1) * w), i * a);
    out[i * a + w] = 1;
  }
  return out;
}

/**
 * For layer l, the map from the augmented index (i, j), j < aug (j = in is the bias), to the
 * API's parameter index: offset + i·in + j for weights, offset + out·in + i for the bias.
 */
export function parameterIndexMap(net: Network, l: number): Int32Array {
  const layer = net.layers[l];
  const map = new Int32Array(layer.out * layer.aug);
  for (let i = 0; i < layer.out; i++) for (let j = 0; j < layer.aug; j++) map[i * layer.aug + j] = thetaIndex(layer, i, j);
  return map;
}

/** Index in the API's parameter vector of θ_l[i][j] (j = in is the bias b_l[i]); for a selected layer only. */
export function thetaIndex(layer: Layer, i: number, j: number): number {
  return j < layer.in ? layer.offset + i * layer.in + j : layer.offset + layer.out * layer.in + i;
}

/** Doubles of per-chunk working arrays of the Jacobians and the diagonal (64 MiB). */
export const CHUNK_DOUBLES = 1 << 23;

/**
 * How many data points to process at once so that `perPoint` doubles per point stay within
 * `budget`: the fewest chunks that fit, of equal sizes (1,000 points at 848 a chunk become two of
 * 500, not 848 and a short tail whose GEMMs have a short inner dimension).
 */
export function chunkSize(n: number, perPoint: number, budget = CHUNK_DOUBLES): number {
  const most = Math.max(1, Math.min(n, Math.floor(budget / Math.max(1, perPoint))));
  return Math.max(1, Math.ceil(n / Math.ceil(n / most)));
}

/**
 * Per-point output matrices for points n0 … n0 + c − 1 (c × K × K): `which` selects the exact
 * output curvature L_n, the Gauss–Newton G_n, or ∂y/∂a.
 */
export function outputMatrices(
  p: Problem, f: ForwardPass, which: 'curvature' | 'gaussNewton' | 'outputJacobian' | 'gaussNewtonFactor', n0: number, c: number,
): Float64Array {
  const L = p.network.layers.length;
  const k = p.network.outputSize;
  const out = new Float64Array(c * k * k);
  const aOut = f.as[L - 1], yOut = f.zs[L], t = p.targets.data;
  for (let i = 0; i < c; i++) {
    const s = (n0 + i) * k, e = s + k;
    const dst = out.subarray(i * k * k, (i + 1) * k * k);
    if (which === 'outputJacobian') p.head.outputJacobian(aOut.subarray(s, e), yOut.subarray(s, e), dst);
    else p.head[which](aOut.subarray(s, e), yOut.subarray(s, e), t.subarray(s, e), dst);
  }
  return out;
}
