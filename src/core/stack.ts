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
import { chunkSize, outputMatrices } from './backprop.ts';
import { jacobianRows } from './jacobian.ts';
import { linalg, symmetrizeFromLower } from './linalg/index.ts';
import { forward, type LayerSize, type Problem } from './network.ts';

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
