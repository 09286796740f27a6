/**
 * Rows of the exact (or outer-product) Hessian as products with unit vectors, m at a time:
 * H[j][·] = (H e_j)ᵀ by the R-operator's applyMany (forward-over-reverse, PRML §5.4.6), for m
 * consecutive directions j at once (across layers; the forward pass starts at the first one's).
 *
 * Per direction the products cost O(N·W) in GEMMs over all m directions at once, ≈ 8·N·W·W flops
 * for the whole matrix against the block form's ≈ 2·N·W² (hessian.ts); but they have no per-block
 * work, which the block form has for each of the L(L+1)/2 pairs of layers: for deep narrow
 * networks (1,000 layers of width 1: 500,500 blocks of 2 × 2) this is the faster form (the cost
 * model is `curvatureForm` in hessian.ts). The rows are exact to rounding; the whole matrix is made
 * exactly symmetric by averaging H and Hᵀ.
 */
import { curvatureOperator, operatorDoublesPerDirection } from './r-operator.ts';
import { newMatrix, symmetrizeByAveraging } from './linalg/index.ts';
import type { LayerSize, Problem } from './network.ts';

/** Doubles of one batch of directions' working arrays and rows (128 MB). */
export const COLUMNS_BUDGET = 1 << 24;

/** Directions per batch for W (selected) parameters. */
export function columnsBatch(layers: readonly LayerSize[], n: number, w: number, budget = COLUMNS_BUDGET): number {
  return Math.max(1, Math.floor(budget / (operatorDoublesPerDirection(layers, n) + 2 * w)));
}

/** Bytes the columns form holds besides its answer and the passes: one batch. */
export function columnsScratchBytes(layers: readonly LayerSize[], n: number, w: number): number {
  const m = Math.min(w, columnsBatch(layers, n, w));
  return 8 * m * (operatorDoublesPerDirection(layers, n) + 2 * w);
}

/**
 * Rows start … end − 1 of H (exact, or the outer product with `exact` false) into `out`, row r
 * at (r − start)·stride.
 */
export function hessianRowsByProducts(p: Problem, exact: boolean, start: number, end: number, out: Float64Array, stride: number, budget = COLUMNS_BUDGET): void {
  const net = p.network;
  const W = net.parameterCount;
  const op = curvatureOperator(p, !exact);
  const m = columnsBatch(net.layers, p.inputs.rows, W, budget);
  // batches of m consecutive directions, across layers: the forward pass starts at the first one's
  for (let j0 = start; j0 < end; j0 += m) {
    const c = Math.min(m, end - j0);
    const from = net.layers.findIndex((layer) => layer.offset >= 0 && j0 < layer.offset + layer.size);
    const v = new Float64Array(c * W);
    for (let j = 0; j < c; j++) v[j * W + j0 + j] = 1;
    const rows = op.applyMany(v, c, from);
    for (let j = 0; j < c; j++) out.set(rows.subarray(j * W, (j + 1) * W), (j0 + j - start) * stride);
  }
}

/** The whole matrix by products, W × W, exactly symmetric. */
export function hessianByProducts(p: Problem, exact: boolean, budget = COLUMNS_BUDGET): Float64Array {
  const W = p.network.parameterCount;
  const h = newMatrix(W * W);
  hessianRowsByProducts(p, exact, 0, W, h, W, budget);
  symmetrizeByAveraging(W, h);
  return h;
}

/** Each selected layer's own block by products (its rows, then its columns of them), exactly symmetric. */
export function blocksByProducts(p: Problem, exact: boolean, budget = COLUMNS_BUDGET): { layer: number; block: Float64Array }[] {
  const W = p.network.parameterCount;
  const out: { layer: number; block: Float64Array }[] = [];
  p.network.layers.forEach((layer, l) => {
    if (layer.offset < 0) return;
    const s = layer.size;
    const rows = new Float64Array(s * W);
    hessianRowsByProducts(p, exact, layer.offset, layer.offset + s, rows, W, budget);
    const block = new Float64Array(s * s);
    for (let i = 0; i < s; i++) block.set(rows.subarray(i * W + layer.offset, i * W + layer.offset + s), i * s);
    symmetrizeByAveraging(s, block);
    out.push({ layer: l, block });
  });
  return out;
}
