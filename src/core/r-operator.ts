/**
 * Fast multiplication by the Hessian: Pearlmutter's R-operator (PRML §5.4.6), and the same
 * passes without their second-order terms for the Gauss–Newton (outer-product) matrix.
 */
import { backward, outputMatrices, passesBytes, type BackwardPass } from './backprop.ts';
import { checkParameterVector, lowestSelected } from './jacobian.ts';
import { linalg, Rows } from './linalg/index.ts';
import { forward, type ForwardPass, type LayerSize, type Problem } from './network.ts';

/**
 * Bytes an operator keeps besides the ordinary passes: R{a}, R{z}, R{δ} and R{g} per unit and
 * point (the ordinary passes again, and some), the output curvatures (N·K²) and two W-vectors.
 */
export function hessianVectorProductScratchBytes(layers: readonly LayerSize[], n: number, w: number): number {
  const k = layers[layers.length - 1]?.out ?? 0;
  return passesBytes(layers, n) + 8 * (n * k * k + 2 * w);
}

/** H·v (or G·v), sharing the passes over the data between products. */
export interface CurvatureOperator {
  /** W, the (selected) parameters. */
  readonly size: number;
  /** The product with v (W entries); `out` (W) receives it when given. */
  apply(v: Float64Array, out?: Float64Array): Float64Array;
  /**
   * The products with the m rows of `v` (m × W) at once, m × W: every step of the passes below
   * is then one GEMM over all m directions. `from`: the lowest layer where any row of v is
   * non-zero (the forward pass starts there; default the lowest selected layer).
   */
  applyMany(v: Float64Array, m: number, from?: number): Float64Array;
}

/**
 * Doubles per direction and data point that applyMany holds: R{a}, R{z}, R{δ} and R{g} per unit.
 * For choosing m.
 */
export function operatorDoublesPerDirection(layers: readonly LayerSize[], n: number): number {
  let units = 0;
  for (const l of layers) units += 2 * l.out + 2 * l.in;
  return n * units;
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
 *
 * For m directions at once every R{·} is held as N × m × units (point, direction, unit), so that
 * W_l R{z} is one GEMM of (N·m) × in_l × out_l, V_l z one GEMM of N × in_l × (m·out_l) against
 * the m V_l stacked, and the result's Σ_n R{δ_l} z_{l−1}ᵀ one GEMM of (m·out_l) × N × in_l.
 */
export function curvatureOperator(p: Problem, gaussNewton: boolean): CurvatureOperator {
  const net = p.network;
  const L = net.layers.length;
  const W = net.parameterCount;
  const f: ForwardPass = forward(net, p.inputs);
  const b: BackwardPass = backward(p, f);
  const n = f.n;
  const k = net.outputSize;
  const curv = outputMatrices(p, f, gaussNewton ? 'gaussNewton' : 'curvature', 0, n);
  const lowest = lowestSelected(net);
  const la = linalg();
  // working arrays kept between calls (a product allocates only its answer): per kind and layer
  const cache: Rows[][] = Array.from({ length: 8 }, () => Array.from({ length: L + 1 }, () => new Rows()));
  const work = (kind: number, l: number, length: number): Float64Array => cache[kind][l].take(length);
  const [STACKED, BY_ROW, RA, RZ, RD, RG, T1, T2] = [0, 1, 2, 3, 4, 5, 6, 7];
  const applyMany = (v: Float64Array, m: number, from = lowest): Float64Array => {
    if (v.length !== m * W) throw new Error(`applyMany: ${v.length} entries for ${m} directions of W = ${W}`);
    const hv = new Float64Array(m * W);
    if (lowest === L || m === 0) return hv;
    const start = Math.max(from, lowest);
    // each selected layer's slices of the m directions: V stacked (m·out × in), and for V_lᵀδ_l by rows (out × m·in)
    const stacked: (Float64Array | undefined)[] = new Array(L);
    const byRow: (Float64Array | undefined)[] = new Array(L);
    // (a layer whose slices are all zero, as for most layers when v holds unit vectors, gets none)
    const hasBias: boolean[] = new Array(L).fill(false);
    for (let l = start; l < L; l++) {
      const layer = net.layers[l];
      if (layer.offset < 0) continue;
      const { out: o, in: inL, offset } = layer;
      const wl = o * inL;
      let any = false;
      for (let j = 0; j < m && !any; j++) for (let i = j * W + offset, e = i + layer.size; i < e; i++) if (v[i] !== 0) { any = true; break; }
      if (!any) continue;
      const st = work(STACKED, l, m * wl);
      for (let j = 0; j < m; j++) for (let i = 0, src = j * W + offset, dst = j * wl; i < wl; i++) st[dst + i] = v[src + i];
      stacked[l] = st;
      if (layer.bias) for (let j = 0; j < m && !hasBias[l]; j++) for (let i = j * W + offset + wl, e = j * W + offset + layer.size; i < e; i++) if (v[i] !== 0) { hasBias[l] = true; break; }
      if (!gaussNewton && l > lowest) {
        const br = work(BY_ROW, l, o * m * inL);
        for (let r = 0; r < o; r++) for (let j = 0; j < m; j++) for (let c = 0, src = (j * o + r) * inL, dst = (r * m + j) * inL; c < inL; c++) br[dst + c] = st[src + c];
        byRow[l] = br;
      }
    }
    // forward: R{a_l} and R{z_l}, zero below the lowest layer the directions reach
    const ra: Float64Array[] = new Array(L);
    const rz: (Float64Array | undefined)[] = new Array(L + 1).fill(undefined);
    for (let l = start; l < L; l++) {
      const layer = net.layers[l];
      const { out: o, in: inL, weights } = layer;
      const r = work(RA, l, n * m * o);
      const st = stacked[l];
      const below = rz[l];
      if (!st && !below) r.fill(0);
      if (st) {
        la.gemm(false, true, n, m * o, inL, 1, f.zs[l], inL, st, inL, 0, r, m * o);
        if (hasBias[l]) {
          const off = layer.offset + o * inL;
          for (let j = 0; j < m; j++) {
            const beta = v.subarray(j * W + off, j * W + off + o);
            for (let i = 0; i < n; i++) {
              const dst = (i * m + j) * o;
              for (let q = 0; q < o; q++) r[dst + q] += beta[q];
            }
          }
        }
      }
      if (below) la.gemm(false, true, n * m, o, inL, 1, below, inL, weights, inL, st ? 1 : 0, r, o);
      ra[l] = r;
      if (l < L - 1) {
        const d1 = f.d1[l]!;
        const z = work(RZ, l + 1, r.length);
        broadcastProduct(z, d1, r, n, m, o);
        rz[l + 1] = z;
      }
    }
    // output: R{δ_out} = L_n R{a_out}
    const rd: Float64Array[] = new Array(L);
    const rOut = work(RD, L - 1, n * m * k);
    const aOut = ra[L - 1];
    // per point, (m × K) · L_n (L_n symmetric): one GEMM each where K and m make it worth a call
    if (k >= 8 && m >= 8) {
      for (let i = 0; i < n; i++) la.gemm(false, false, m, k, k, 1, aOut.subarray(i * m * k), k, curv.subarray(i * k * k), k, 0, rOut.subarray(i * m * k), k);
    } else for (let i = 0; i < n; i++) {
      const c = i * k * k;
      for (let j = 0; j < m; j++) {
        const s = (i * m + j) * k;
        for (let r = 0; r < k; r++) {
          let acc = 0;
          for (let q = 0; q < k; q++) acc += curv[c + r * k + q] * aOut[s + q];
          rOut[s + r] = acc;
        }
      }
    }
    rd[L - 1] = rOut;
    // backward down to the lowest selected layer
    for (let l = L - 1; l > lowest; l--) {
      const layer = net.layers[l];
      const { out: o, in: inL, weights } = layer;
      const rg = work(RG, l, n * m * inL);
      la.gemm(false, false, n * m, inL, o, 1, rd[l], o, weights, inL, 0, rg, inL);
      const br = byRow[l];
      if (br) la.gemm(false, false, n, m * inL, o, 1, b.deltas[l], o, br, m * inL, 1, rg, m * inL);
      const d1 = f.d1[l - 1]!;
      const r = work(RD, l - 1, n * m * inL);
      const rap = ra[l - 1];
      const g = b.gs[l - 1]!, d2 = f.d2[l - 1]!;
      broadcastProduct(r, d1, rg, n, m, inL);
      if (!gaussNewton && rap) {
        // the h″ term: R{δ} += (h″ ⊙ g) ⊙ R{a}
        const hg = new Float64Array(n * inL);
        for (let i = 0; i < hg.length; i++) hg[i] = d2[i] * g[i];
        broadcastProduct(r, hg, rap, n, m, inL, true);
      }
      rd[l - 1] = r;
    }
    // the products' entries, layer by layer
    for (let l = lowest; l < L; l++) {
      const layer = net.layers[l];
      if (layer.offset < 0) continue;
      const { out: o, in: inL, offset } = layer;
      const t1 = work(T1, 0, m * o * inL); // [j][r][c] = Σ_n R{δ_l}[n][j][r] z[n][c]
      la.gemm(true, false, m * o, inL, n, 1, rd[l], m * o, f.zs[l], inL, 0, t1, inL);
      const wl = o * inL;
      for (let j = 0; j < m; j++) for (let i = 0, dst = j * W + offset, src = j * wl; i < wl; i++) hv[dst + i] = t1[src + i];
      const below = rz[l];
      if (!gaussNewton && below) {
        const t2 = work(T2, 0, o * m * inL); // [r][j][c] = Σ_n δ_l[n][r] R{z}[n][j][c]
        la.gemm(true, false, o, m * inL, n, 1, b.deltas[l], o, below, m * inL, 0, t2, m * inL);
        for (let r = 0; r < o; r++) for (let j = 0; j < m; j++) {
          const dst = j * W + offset + r * inL, src = (r * m + j) * inL;
          for (let c = 0; c < inL; c++) hv[dst + c] += t2[src + c];
        }
      }
      if (layer.bias) {
        const rdl = rd[l];
        for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) {
          const dst = j * W + offset + o * inL, src = (i * m + j) * o;
          for (let q = 0; q < o; q++) hv[dst + q] += rdl[src + q];
        }
      }
    }
    return hv;
  };
  return {
    size: W,
    apply(v: Float64Array, out?: Float64Array): Float64Array {
      checkParameterVector(net, v, 'vector');
      const hv = applyMany(v, 1);
      if (!out) return hv;
      out.set(hv);
      return out;
    },
    applyMany,
  };
}

/**
 * out[i][j][q] (+)= f[i][q] · x[i][j][q] for i < n, j < m, q < u (the N × m × units layout of
 * applyMany), the inner loop over whichever of j and q is longer.
 */
function broadcastProduct(out: Float64Array, f: Float64Array, x: Float64Array, n: number, m: number, u: number, add = false): void {
  for (let i = 0; i < n; i++) {
    const h = i * u, base = i * m * u;
    if (m > u) {
      for (let q = 0; q < u; q++) {
        const fq = f[h + q];
        if (add) for (let j = 0, at = base + q; j < m; j++, at += u) out[at] += fq * x[at];
        else for (let j = 0, at = base + q; j < m; j++, at += u) out[at] = fq * x[at];
      }
    } else {
      for (let j = 0; j < m; j++) {
        const at = base + j * u;
        if (add) for (let q = 0; q < u; q++) out[at + q] += f[h + q] * x[at + q];
        else for (let q = 0; q < u; q++) out[at + q] = f[h + q] * x[at + q];
      }
    }
  }
}

/** H·v by the R-operator (see curvatureOperator). Cost O(N·W). */
export function hessianVectorProduct(p: Problem, v: Float64Array): Float64Array {
  return curvatureOperator(p, false).apply(v);
}
