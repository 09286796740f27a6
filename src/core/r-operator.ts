/**
 * Fast multiplication by the Hessian: Pearlmutter's R-operator (PRML §5.4.6), and the same
 * passes without their second-order terms for the Gauss–Newton (outer-product) matrix.
 */
import { addColumnSums, backward, outputMatrices, passesBytes, type BackwardPass } from './backprop.ts';
import { checkParameterVector, lowestSelected } from './jacobian.ts';
import { linalg } from './linalg/index.ts';
import { forward, type ForwardPass, type LayerSize, type Problem } from './network.ts';

/**
 * Bytes an operator keeps besides the ordinary passes: R{a}, R{z}, R{δ} and R{g} per unit and
 * point (the ordinary passes again, and some), the output curvatures (N·K²) and two W-vectors.
 */
export function hessianVectorProductScratchBytes(layers: readonly LayerSize[], n: number, w: number): number {
  const k = layers[layers.length - 1]?.out ?? 0;
  return passesBytes(layers, n) + 8 * (n * k * k + 2 * w);
}

/** H·v (or G·v) for one vector at a time, sharing the passes over the data between products. */
export interface CurvatureOperator {
  /** W, the (selected) parameters. */
  readonly size: number;
  /** The product with v (W entries); `out` (W) receives it when given. */
  apply(v: Float64Array, out?: Float64Array): Float64Array;
}

/**
 * The operator v ↦ H v, R{·} = v·∇_w{·} applied to forward and back propagation
 * (PRML 5.97–5.110), over all N points at once (V_l, β_l are v's slices for W_l, b_l; zero for a
 * layer that is not selected):
 *   forward   R{a_l} = V_l z_{l−1} + β_l + W_l R{z_{l−1}},  R{z_l} = h′(a_l) ⊙ R{a_l},  R{z_0} = 0
 *   output    R{δ_out} = L_n R{a_out}          (L_n = ∂²E_n/∂a_out², exact)
 *   backward  g_{l−1} = W_lᵀ δ_l,  R{g_{l−1}} = W_lᵀ R{δ_l} + V_lᵀ δ_l,
 *             R{δ_{l−1}} = h″(a_{l−1}) ⊙ R{a_{l−1}} ⊙ g_{l−1} + h′(a_{l−1}) ⊙ R{g_{l−1}}
 *   result    R{∂E/∂W_l} = Σ_n R{δ_l} z_{l−1}ᵀ + δ_l R{z_{l−1}}ᵀ,  R{∂E/∂b_l} = Σ_n R{δ_l}.
 * With `gaussNewton` the second-order terms go (L_n becomes the Gauss–Newton G_n, the h″ and
 * V_lᵀδ_l and δ_l R{z}ᵀ terms vanish): v ↦ Σ_n B_nᵀ G_n B_n v = G v, the outer-product matrix
 * (5.84–5.85) without forming it. The passes over the data are done once; each product costs
 * O(N·W) (a few GEMMs per layer) plus O(N·K²) at the output; never W².
 */
export function curvatureOperator(p: Problem, gaussNewton: boolean): CurvatureOperator {
  const net = p.network;
  const L = net.layers.length;
  const f: ForwardPass = forward(net, p.inputs);
  const b: BackwardPass = backward(p, f);
  const n = f.n;
  const k = net.outputSize;
  const curv = outputMatrices(p, f, gaussNewton ? 'gaussNewton' : 'curvature', 0, n);
  const lowest = lowestSelected(net);
  const la = linalg();
  return {
    size: net.parameterCount,
    apply(v: Float64Array, out?: Float64Array): Float64Array {
      checkParameterVector(net, v, 'vector');
      const vw = (l: number) => { const ly = net.layers[l]; return v.subarray(ly.offset, ly.offset + ly.out * ly.in); };
      const hv = out ?? new Float64Array(net.parameterCount);
      if (lowest === L) return hv.fill(0);
      // forward: R{a_l} and R{z_l}, zero below the lowest selected layer
      const ra: Float64Array[] = new Array(L);
      const rz: (Float64Array | undefined)[] = new Array(L + 1).fill(undefined);
      for (let l = lowest; l < L; l++) {
        const layer = net.layers[l];
        const { out: o, in: inL, weights } = layer;
        const r = new Float64Array(n * o);
        if (layer.offset >= 0) {
          if (layer.bias) { const beta = v.subarray(layer.offset + o * inL, layer.offset + layer.size); for (let i = 0; i < n; i++) r.set(beta, i * o); }
          la.gemm(false, true, n, o, inL, 1, f.zs[l], inL, vw(l), inL, 1, r, o);
        }
        const below = rz[l];
        if (below) la.gemm(false, true, n, o, inL, 1, below, inL, weights, inL, 1, r, o);
        ra[l] = r;
        if (l < L - 1) {
          const d1 = f.d1[l]!;
          const z = new Float64Array(r.length);
          for (let i = 0; i < r.length; i++) z[i] = d1[i] * r[i];
          rz[l + 1] = z;
        }
      }
      // output: R{δ_out} = L_n R{a_out}
      const rd: Float64Array[] = new Array(L);
      const rOut = new Float64Array(n * k);
      const aOut = ra[L - 1];
      for (let i = 0; i < n; i++) {
        const c = i * k * k, s = i * k;
        for (let r = 0; r < k; r++) {
          let acc = 0;
          for (let q = 0; q < k; q++) acc += curv[c + r * k + q] * aOut[s + q];
          rOut[s + r] = acc;
        }
      }
      rd[L - 1] = rOut;
      // backward down to the lowest selected layer
      for (let l = L - 1; l > lowest; l--) {
        const layer = net.layers[l];
        const { out: o, in: inL, weights } = layer;
        const rg = new Float64Array(n * inL);
        la.gemm(false, false, n, inL, o, 1, rd[l], o, weights, inL, 0, rg, inL);
        if (!gaussNewton && layer.offset >= 0) la.gemm(false, false, n, inL, o, 1, b.deltas[l], o, vw(l), inL, 1, rg, inL);
        const d1 = f.d1[l - 1]!;
        const r = new Float64Array(n * inL);
        if (gaussNewton) {
          for (let i = 0; i < r.length; i++) r[i] = d1[i] * rg[i];
        } else {
          const g = b.gs[l - 1]!, d2 = f.d2[l - 1]!, rap = ra[l - 1];
          for (let i = 0; i < r.length; i++) r[i] = d2[i] * rap[i] * g[i] + d1[i] * rg[i];
        }
        rd[l - 1] = r;
      }
      // the products' entries, layer by layer
      for (let l = lowest; l < L; l++) {
        const layer = net.layers[l];
        if (layer.offset < 0) continue;
        const { out: o, in: inL, offset } = layer;
        const dst = hv.subarray(offset, offset + o * inL);
        la.gemm(true, false, o, inL, n, 1, rd[l], o, f.zs[l], inL, 0, dst, inL);
        const below = rz[l];
        if (!gaussNewton && below) la.gemm(true, false, o, inL, n, 1, b.deltas[l], o, below, inL, 1, dst, inL);
        if (layer.bias) {
          hv.fill(0, offset + o * inL, offset + layer.size);
          addColumnSums(rd[l], n, o, hv, offset + o * inL);
        }
      }
      return hv;
    },
  };
}

/** H·v by the R-operator (see curvatureOperator). Cost O(N·W). */
export function hessianVectorProduct(p: Problem, v: Float64Array): Float64Array {
  return curvatureOperator(p, false).apply(v);
}
