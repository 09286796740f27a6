/**
 * The outer-product Hessian in its Jacobian-stack form (PRML 5.84–5.85 read as one product):
 *
 *   H = Σ_n B_nᵀ G_n B_n = Σ_n (C_n B_n)ᵀ (C_n B_n) = Uᵀ U,
 *
 * with C_n the K × K factor of the Gauss–Newton output curvature (C_nᵀ C_n = G_n, the head's
 * `gaussNewtonFactor`), B_n = ∂a_out/∂w (K × W), and U the (N·K) × W stack of the rows C_n B_n,
 * each one a backpropagated Jacobian row (jacobianRows). H is then one symmetric rank-(N·K)
 * update, syrk, in chunks of points: N·K·W² flops (half of that as syrk fills one triangle), all
 * in a single large BLAS call per chunk whose inner dimension is the chunk's c·K rows.
 *
 * The block form (hessian.ts) does ≈ N·W² flops, K times fewer, but in GEMMs whose inner
 * dimension is the number of points, around per-point out_l × out_m matrices and a scatter into
 * H: where N·K is small against W, or a layer is far wider than the output (a 1-965-1 network
 * forms a 965 × 965 matrix per point for a rank-1 curvature), the stack is the faster of the two
 * (the cost model is `curvatureForm` in hessian.ts).
 */
import { augmentedInputs, backward, chunkSize, outputMatrices, parameterIndexMap } from './backprop.ts';
import { jacobianRows } from './jacobian.ts';
import { linalg, newMatrix, symmetrizeFromLower } from './linalg/index.ts';
import { forward, type Layer, type LayerSize, type Problem } from './network.ts';

/** Doubles of one chunk of stacked rows (128 MB): long enough for syrk's inner dimension. */
export const STACK_BUDGET = 1 << 24;

/** Doubles per data point of a chunk: its K rows of W, the K × K factors and the pull-back blocks. */
function stackPerPoint(layers: readonly LayerSize[], w: number): number {
  const k = layers[layers.length - 1]?.out ?? 0;
  let widest = 0;
  for (const l of layers) widest = Math.max(widest, l.out);
  return k * w + k * k + 2 * k * widest;
}

/** Points per chunk of the stack for W (selected) parameters. */
export function stackChunk(layers: readonly LayerSize[], n: number, w: number, budget = STACK_BUDGET): number {
  return chunkSize(n, stackPerPoint(layers, w), budget);
}

/** Bytes the stack form needs besides its answer and the forward pass: one chunk. */
export function stackScratchBytes(layers: readonly LayerSize[], n: number, w: number): number {
  return 8 * stackChunk(layers, n, w) * stackPerPoint(layers, w);
}

/** What of H the stack forms: all of it, each selected layer's own block, or rows start … end − 1. */
export type StackTarget =
  | { readonly kind: 'matrix'; readonly h: Float64Array }
  | { readonly kind: 'blocks'; readonly blocks: readonly { readonly offset: number; readonly size: number; readonly block: Float64Array }[] }
  | { readonly kind: 'rows'; readonly h: Float64Array; readonly start: number; readonly end: number };

/**
 * Adds Uᵀ U into the target, chunk by chunk: the matrix by syrk into its lower triangle and then
 * mirrored; a layer's own block by syrk of its columns of U; a slab of rows by GEMM of those
 * columns of U against all of U ((end − start)·W·N·K·2 flops).
 */
export function addStackOuterProduct(p: Problem, target: StackTarget, budget = STACK_BUDGET): void {
  const net = p.network;
  const w = net.parameterCount;
  const k = net.outputSize;
  const f = forward(net, p.inputs);
  const chunk = stackChunk(net.layers, f.n, w, budget);
  const la = linalg();
  const rows = new Float64Array(chunk * k * w);
  for (let n0 = 0; n0 < f.n; n0 += chunk) {
    const c = Math.min(chunk, f.n - n0);
    const u = jacobianRows(net, f, outputMatrices(p, f, 'gaussNewtonFactor', n0, c), n0, c, rows.subarray(0, c * k * w));
    const beta = n0 === 0 ? 0 : 1;
    if (target.kind === 'matrix') la.syrk(true, w, c * k, 1, u, w, beta, target.h, w);
    else if (target.kind === 'blocks') for (const b of target.blocks) la.syrk(true, b.size, c * k, 1, u.subarray(b.offset), w, beta, b.block, b.size);
    else la.gemm(true, false, target.end - target.start, w, c * k, 1, u.subarray(target.start), w, u, w, beta, target.h, w);
  }
  if (target.kind === 'matrix') symmetrizeFromLower(w, target.h);
  else if (target.kind === 'blocks') for (const b of target.blocks) symmetrizeFromLower(b.size, b.block);
}

/**
 * Whether the exact Hessian has a stack form for this pairing: its output curvature must be the
 * Gauss–Newton one plus a diagonal, L_n = G_n + diag(r_n). That holds for every pairing but
 * sum-of-squares on softmax outputs: 'canonical' where r = 0 (identity + sum-of-squares, sigmoid
 * + cross-entropy, softmax + softmax-cross-entropy, the logits heads), 'residual' for
 * sum-of-squares on another elementwise output, r = (y − t) ⊙ h″(a).
 */
export type ExactStackKind = 'canonical' | 'residual';

export function exactStackKind(loss: string, outputActivation: string): ExactStackKind | undefined {
  if (loss !== 'sum-of-squares') return 'canonical';
  if (outputActivation === 'softmax') return undefined;
  return outputActivation === 'identity' ? 'canonical' : 'residual';
}

/** Columns of the selected layers below layer k: they come first in the parameter order. */
function widthBelow(layers: readonly Layer[], k: number): number {
  let w = 0;
  for (let m = 0; m < k; m++) if (layers[m].offset >= 0) w += layers[m].size;
  return w;
}

/**
 * Doubles per data point of the exact stack's chunk: the output rows (K × W), each layer's rows
 * of ∂a_k/∂θ_{<k} (out_k × W_{<k}), and the per-layer scratch.
 */
function exactStackPerPoint(layers: readonly LayerSize[], w: number): number {
  const k = layers[layers.length - 1]?.out ?? 0;
  let below = 0, s = k * w + k * k;
  for (const l of layers) {
    s += l.out * below + 2 * l.out + l.in + 1;
    if (l.selected !== false) below += l.out * (l.in + (l.hasBias === false ? 0 : 1));
  }
  return 2 * s;
}

/** Data points per chunk of the exact stack form. */
export function exactStackChunk(layers: readonly LayerSize[], n: number, w: number, budget = STACK_BUDGET): number {
  return chunkSize(n, exactStackPerPoint(layers, w), budget);
}

/** Bytes the exact stack form needs besides its answer and the passes: one chunk. */
export function exactStackScratchBytes(layers: readonly LayerSize[], n: number, w: number): number {
  return 8 * exactStackChunk(layers, n, w) * exactStackPerPoint(layers, w);
}

/**
 * The exact Hessian, W × W, in stack form, written as the module comment's outer product plus
 * the second-order terms of 5.93–5.95 in their own products. With J_k = ∂a_k/∂w for each layer
 * (V_k its part on the layers below k; on layer k itself ∂a_k[i]/∂θ_k[i][j] = z̃_{k−1}[j]) and
 * d_k = g_k ⊙ h″_k (the output's d the residual r_n of L_n − G_n):
 *
 *   H = Σ_n B_nᵀ G_n B_n                                        (syrk of the stacked rows C_n B_n)
 *     + Σ_n Σ_k J_kᵀ diag(d_k) J_k                               (per k: V_kᵀ D V_k by GEMM, the
 *                                                                 (k, <k) rows per unit, and
 *                                                                 Σ_n d_k[i] z̃z̃ᵀ on layer k's own block)
 *     + Σ_n Σ_l δ_l[i] ∂z_{l−1}[j]/∂w  at rows θ_l[i][j], j < in_l (the cross term of 5.95:
 *                                                                 on layer l − 1 diag(h′) ⊗ z̃, below it h′ ⊙ V_{l−1})
 *
 * and the mirror of the lower triangle. Only the selected layers' entries are formed. Flops
 * N·K·W² (syrk) + Σ_k 2N·out_k·W_{<k}² + 2N·W_k·W_{<k} (+ the cross terms' 2N·W_l·W_{<l−1}),
 * all in GEMMs whose inner dimension is the chunk of points; for a network of two layers the
 * second-order terms are the cheap own-block and adjacent ones alone.
 */
export function exactStackHessian(p: Problem, budget = STACK_BUDGET): Float64Array {
  const net = p.network;
  const layers = net.layers;
  const L = layers.length;
  const w = net.parameterCount;
  const k = net.outputSize;
  const h = newMatrix(w * w);
  const f = forward(net, p.inputs);
  const b = backward(p, f);
  const la = linalg();
  const lowest = layers.findIndex((l) => l.offset >= 0);
  if (lowest < 0) return h;
  const chunk = chunkSize(f.n, exactStackPerPoint(layers.map((l) => ({ in: l.in, out: l.out, hasBias: l.bias !== null, selected: l.offset >= 0 })), w), budget);
  const maps = layers.map((l, i) => (l.offset >= 0 ? parameterIndexMap(net, i) : undefined));
  for (let n0 = 0; n0 < f.n; n0 += chunk) {
    const c = Math.min(chunk, f.n - n0);
    const beta = n0 === 0 ? 0 : 1;
    // 1. the outer product: H (lower) += Uᵀ U
    const u = jacobianRows(net, f, outputMatrices(p, f, 'gaussNewtonFactor', n0, c), n0, c);
    la.syrk(true, w, c * k, 1, u, w, beta, h, w);
    // 2. d_k per layer: g ⊙ h″ for the hidden layers, L_n − G_n's diagonal at the output
    const d: (Float64Array | undefined)[] = new Array(L);
    for (let l = lowest; l < L - 1; l++) {
      const o = layers[l].out, g = b.gs[l]!, d2 = f.d2[l]!;
      const dl = new Float64Array(c * o);
      for (let i = 0; i < c * o; i++) dl[i] = g[n0 * o + i] * d2[n0 * o + i];
      d[l] = dl;
    }
    const lc = outputMatrices(p, f, 'curvature', n0, c), gc = outputMatrices(p, f, 'gaussNewton', n0, c);
    const r = new Float64Array(c * k);
    let residual = false;
    for (let i = 0; i < c; i++) for (let q = 0; q < k; q++) {
      const at = i * k * k + q * k + q;
      r[i * k + q] = lc[at] - gc[at];
      if (r[i * k + q] !== 0) residual = true;
    }
    if (residual) d[L - 1] = r;
    // 3. V_k = ∂a_k/∂θ_{<k} (c·out_k × W_{<k}) where needed: for d_k, and for the cross terms of layer k + 1
    const v: (Float64Array | undefined)[] = new Array(L);
    for (let l = lowest + 1; l < L; l++) {
      const wl = widthBelow(layers, l);
      const crossNeeds = l + 1 < L && layers[l + 1].offset >= 0;
      if (wl === 0 || (!d[l] && !crossNeeds)) continue;
      const o = layers[l].out;
      const seed = new Float64Array(c * o * o);
      for (let i = 0; i < c; i++) for (let q = 0; q < o; q++) seed[i * o * o + q * o + q] = 1;
      v[l] = jacobianRows(net, f, seed, n0, c, undefined, { top: l, own: false, width: wl });
    }
    for (let l = lowest; l < L; l++) {
      const layer = layers[l];
      const dl = d[l];
      const o = layer.out, aug = layer.aug, inL = layer.in;
      const zt = augmentedInputs(f, layer, l, n0, c);
      const vl = v[l];
      const wl = widthBelow(layers, l);
      if (dl) {
        // Σ_n V_lᵀ diag(d) V_l on the layers below
        if (vl) {
          const dv = new Float64Array(vl.length);
          for (let i = 0; i < c * o; i++) for (let q = 0, at = i * wl; q < wl; q++) dv[at + q] = dl[i] * vl[at + q];
          la.gemm(true, false, wl, wl, c * o, 1, vl, wl, dv, wl, 1, h, w);
        }
        if (layer.offset >= 0) {
          // rows θ_l[i][·] against the layers below: Σ_n d[n][i] z̃[n][j] V_l[n][i][·]
          const x = new Float64Array(c * aug);
          for (let i = 0; i < o; i++) {
            for (let n = 0; n < c; n++) for (let j = 0; j < aug; j++) x[n * aug + j] = dl[n * o + i] * zt[n * aug + j];
            if (vl) {
              la.gemm(true, false, inL, wl, c, 1, x, aug, vl.subarray(i * wl), o * wl, 1, h.subarray((layer.offset + i * inL) * w), w);
              if (layer.bias) la.gemm(true, false, 1, wl, c, 1, x.subarray(inL), aug, vl.subarray(i * wl), o * wl, 1, h.subarray((layer.offset + o * inL + i) * w), w);
            }
            // the own block: Σ_n d[n][i] z̃ z̃ᵀ at (θ_l[i][j], θ_l[i][q])
            const t = new Float64Array(aug * aug);
            la.gemm(true, false, aug, aug, c, 1, x, aug, zt, aug, 0, t, aug);
            const map = maps[l]!;
            for (let j = 0; j < aug; j++) for (let q = 0; q <= j; q++) {
              const a = map[i * aug + j], bq = map[i * aug + q];
              h[Math.max(a, bq) * w + Math.min(a, bq)] += t[j * aug + q];
            }
          }
        }
      }
      // the cross terms at rows θ_l[i][j], j < in_l: δ_l[i] ∂z_{l−1}[j]/∂w
      if (l > lowest && layer.offset >= 0) {
        const below = layers[l - 1];
        const delta = b.deltas[l].subarray(n0 * o, (n0 + c) * o);
        const h1 = f.d1[l - 1]!;
        // on layer l − 1: H[θ_l[i][j]][θ_{l−1}[j][q]] = Σ_n δ[n][i] h′[n][j] z̃_{l−2}[n][q]
        if (below.offset >= 0) {
          const zb = augmentedInputs(f, below, l - 1, n0, c);
          const ab = below.aug;
          const kr = new Float64Array(c * inL * ab);
          for (let n = 0; n < c; n++) for (let j = 0; j < inL; j++) {
            const s = h1[(n0 + n) * inL + j];
            for (let q = 0; q < ab; q++) kr[(n * inL + j) * ab + q] = s * zb[n * ab + q];
          }
          const t = new Float64Array(o * inL * ab);
          la.gemm(true, false, o, inL * ab, c, 1, delta, o, kr, inL * ab, 0, t, inL * ab);
          const mapB = maps[l - 1]!;
          for (let i = 0; i < o; i++) for (let j = 0; j < inL; j++) {
            const row = (layer.offset + i * inL + j) * w;
            for (let q = 0; q < ab; q++) h[row + mapB[j * ab + q]] += t[(i * inL + j) * ab + q];
          }
        }
        // below layer l − 1: H[θ_l[i][j]][·] += Σ_n δ[n][i] h′[n][j] V_{l−1}[n][j][·]
        const vb = v[l - 1];
        const wb = widthBelow(layers, l - 1);
        if (vb && wb > 0) {
          const a = new Float64Array(c * o);
          for (let j = 0; j < inL; j++) {
            for (let n = 0; n < c; n++) { const s = h1[(n0 + n) * inL + j]; for (let i = 0; i < o; i++) a[n * o + i] = delta[n * o + i] * s; }
            la.gemm(true, false, o, wb, c, 1, a, o, vb.subarray(j * wb), inL * wb, 1, h.subarray((layer.offset + j) * w), inL * w);
          }
        }
      }
    }
  }
  symmetrizeFromLower(w, h);
  return h;
}
