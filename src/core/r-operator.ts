/**
 * Fast multiplication by the Hessian: Pearlmutter's R-operator (PRML §5.4.6).
 */
import { addColumnSums, backward, outputMatrices, passesBytes, type LayerSize } from './backprop.ts';
import { checkParameterVector } from './jacobian.ts';
import { linalg } from './linalg/index.ts';
import { forward, type Problem } from './network.ts';

/**
 * Bytes of the R-operator's passes besides the ordinary ones: R{a}, R{z}, R{δ} and R{g} per unit
 * and point (the ordinary passes again, and some), the output curvatures (N·K²) and two W-vectors.
 */
export function hessianVectorProductScratchBytes(layers: readonly LayerSize[], n: number, w: number): number {
  const k = layers[layers.length - 1]?.out ?? 0;
  return passesBytes(layers, n) + 8 * (n * k * k + 2 * w);
}

/**
 * H·v without forming H, R{·} = v·∇_w{·} applied to forward and back propagation
 * (PRML 5.97–5.110), over all N points at once (V_l, β_l are v's slices for W_l, b_l):
 *   forward   R{a_l} = V_l z_{l−1} + β_l + W_l R{z_{l−1}},  R{z_l} = h′(a_l) ⊙ R{a_l},  R{z_0} = 0
 *   output    R{δ_out} = L_n R{a_out}          (L_n = ∂²E_n/∂a_out², exact)
 *   backward  g_{l−1} = W_lᵀ δ_l,  R{g_{l−1}} = W_lᵀ R{δ_l} + V_lᵀ δ_l,
 *             R{δ_{l−1}} = h″(a_{l−1}) ⊙ R{a_{l−1}} ⊙ g_{l−1} + h′(a_{l−1}) ⊙ R{g_{l−1}}
 *   result    R{∂E/∂W_l} = Σ_n R{δ_l} z_{l−1}ᵀ + δ_l R{z_{l−1}}ᵀ,  R{∂E/∂b_l} = Σ_n R{δ_l}.
 * Cost O(N·W) (a few GEMMs per layer) plus O(N·K²) at the output; never W².
 */
export function hessianVectorProduct(p: Problem, v: Float64Array): Float64Array {
  const net = p.network;
  checkParameterVector(net, v, 'vector');
  const L = net.layers.length;
  const f = forward(net, p.inputs);
  const b = backward(p, f);
  const n = f.n;
  const la = linalg();
  const vw = (l: number) => v.subarray(net.layers[l].offset, net.layers[l].offset + net.layers[l].out * net.layers[l].in);
  const vb = (l: number) => { const ly = net.layers[l]; return v.subarray(ly.offset + ly.out * ly.in, ly.offset + ly.out * (ly.in + 1)); };

  const ra: Float64Array[] = new Array(L);
  const rz: Float64Array[] = [new Float64Array(n * net.inputSize)];
  for (let l = 0; l < L; l++) {
    const { out, in: inL, weights } = net.layers[l];
    const r = new Float64Array(n * out);
    const beta = vb(l);
    for (let i = 0; i < n; i++) r.set(beta, i * out);
    la.gemm(false, true, n, out, inL, 1, f.zs[l], inL, vw(l), inL, 1, r, out);
    if (l > 0) la.gemm(false, true, n, out, inL, 1, rz[l], inL, weights, inL, 1, r, out);
    ra[l] = r;
    if (l < L - 1) {
      const d1 = f.d1[l]!;
      rz.push(r.map((x, i) => d1[i] * x));
    }
  }

  const k = net.outputSize;
  const rd: Float64Array[] = new Array(L);
  const rOut = new Float64Array(n * k);
  const curv = outputMatrices(p, f, 'curvature', 0, n);
  for (let i = 0; i < n; i++) {
    la.gemm(false, false, k, 1, k, 1, curv.subarray(i * k * k), k, ra[L - 1].subarray(i * k), 1, 0, rOut.subarray(i * k), 1);
  }
  rd[L - 1] = rOut;
  for (let l = L - 1; l > 0; l--) {
    const { out, in: inL, weights } = net.layers[l];
    const rg = new Float64Array(n * inL);
    la.gemm(false, false, n, inL, out, 1, rd[l], out, weights, inL, 0, rg, inL);
    la.gemm(false, false, n, inL, out, 1, b.deltas[l], out, vw(l), inL, 1, rg, inL);
    const g = b.gs[l - 1]!, d1 = f.d1[l - 1]!, d2 = f.d2[l - 1]!, rap = ra[l - 1];
    const r = new Float64Array(n * inL);
    for (let i = 0; i < r.length; i++) r[i] = d2[i] * rap[i] * g[i] + d1[i] * rg[i];
    rd[l - 1] = r;
  }

  const hv = new Float64Array(net.parameterCount);
  for (let l = 0; l < L; l++) {
    const { out, in: inL, offset } = net.layers[l];
    const dst = hv.subarray(offset, offset + out * inL);
    la.gemm(true, false, out, inL, n, 1, rd[l], out, f.zs[l], inL, 0, dst, inL);
    if (l > 0) la.gemm(true, false, out, inL, n, 1, b.deltas[l], out, rz[l], inL, 1, dst, inL);
    addColumnSums(rd[l], n, out, hv, offset + out * inL);
  }
  return hv;
}
