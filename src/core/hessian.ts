/**
 * The exact Hessian, the outer-product (Gauss–Newton) Hessian and the exact diagonal of a
 * multilayer perceptron of any depth, through the block structure of extended backpropagation
 * (PRML §5.4.5, 5.93–5.95, generalised beyond two layers).
 *
 * Per data point, write the parameters of layer l in the augmented layout θ_l[i][j], j ≤ in_l
 * (j = in_l is the bias b_l[i]; a layer without bias has j < in_l only), z̃_{l−1} = (z_{l−1}, 1)
 * (z̃ = z without a bias), and R_{l,m} = ∂a_l/∂a_m (R_{m,m} = I,
 * R_{l,m} = W_l diag(h′_{l−1}) R_{l−1,m}). Then ∂a_l/∂θ_m[p][q] = R_{l,m}[·][p] z̃_{m−1}[q] and,
 * with δ_l = ∂E_n/∂a_l and g_l = ∂E_n/∂z_l, the second derivatives are, for l ≥ m:
 *
 *   ∂²E_n / ∂θ_l[i][j] ∂θ_m[p][q]
 *       = A^{l,m}[i][p] · z̃_{l−1}[j] · z̃_{m−1}[q]                     (curvature term)
 *       + [m < l, j < in_l] δ_l[i] · S_{l,m}[j][p] · z̃_{m−1}[q]        (cross term, 5.95)
 *
 *   A^{L,L} = L_n = ∂²E_n/∂a_out²;  A^{l,l} = diag(g_l ⊙ h″_l) + diag(h′_l) W_{l+1}ᵀ A^{l+1,l+1} W_{l+1} diag(h′_l)
 *   A^{l,m} = A^{l,l} R_{l,m};  S_{l,m} = ∂z_{l−1}/∂a_m = diag(h′_{l−1}) R_{l−1,m}.
 *
 * The recursion for A^{l,l} is that of 5.93–5.94 carried through every layer. For the outer
 * product (5.84–5.85) L_n becomes the Gauss–Newton G_n and the h″ and cross terms vanish.
 *
 * Summed over n, each block is a matrix product: Σ_n A_n[(i,p)] (z̃_{l−1} ⊗ z̃_{m−1})_n[(j,q)]
 * is one GEMM of the N × (out_l·out_m) stack of A^{l,m} against the N × ((in_l+1)(in_m+1))
 * Khatri–Rao product of the layer inputs; the cross term is one GEMM of (δ_l ⊗ z̃_{m−1})
 * against the stack of S_{l,m}. A layer's own block (l = m) needs only a quarter of that:
 * A^{l,l}_n and z̃z̃ᵀ are symmetric, so the products run over packed pairs p ≤ i and q ≤ j.
 * The total is 2·N·W_l·W_m flops for each block l > m, twice that with its cross term, and
 * ≈ N·W_l²/2 for each diagonal block, in a few large GEMMs (W = Σ W_l), with memory W² for the
 * answer, at most W² more for block sums when the data come in several chunks, and bounded
 * chunks of data points for the rest.
 *
 * Only the blocks asked for are computed: those of the selected layers (the parameters of the
 * others held fixed), and of those only the diagonal blocks for a block-diagonal answer, or those
 * that reach a slab of rows. The pull-backs stop at the lowest layer needed.
 */
import { linalg, newMatrix, Rows } from './linalg/index.ts';
import type { BlockTarget } from './linalg/types.ts';
import { augmentedInputs, backward, chunkSize, outputMatrices, parameterIndexMap, pullBack, type BackwardPass } from './backprop.ts';
import { forward, type ForwardPass, type Layer, type LayerSize, type Problem } from './network.ts';
import { addStackOuterProduct, exactStackChunk, exactStackHessian, exactStackKind, exactStackScratchBytes, stackChunk, stackScratchBytes, type ExactStackKind } from './stack.ts';
import { columnsWork, curvatureWork, stackWork, type CurvatureTarget, type Work } from './work.ts';
import { blocksByProducts, columnsBatch, columnsScratchBytes, hessianByProducts, hessianRowsByProducts } from './columns.ts';

/** Doubles of temporary block product kept at once (32 MB). */
const TILE_BUDGET = 1 << 22;

/** Working-memory bounds, in doubles, and the form; tests shrink the bounds to exercise the chunked and tiled paths, and force each form. */
export interface CurvatureBudgets {
  /** Per-chunk working arrays (default 2²⁴, 128 MB; for the stack form, its chunk of rows). */
  readonly chunk?: number;
  /** One temporary block product (default 2²², 32 MB). */
  readonly tile?: number;
  /** The form (default: the cost model's choice, `curvatureForm`); the exact Hessian has no stack form. */
  readonly form?: 'blocks' | 'stack' | 'columns';
}
/** Doubles of per-chunk working arrays (128 MB): large chunks keep the GEMMs' inner dimension long. */
const CHUNK_BUDGET = 1 << 24;

/**
 * Per chunk of data points, A^{l,l} for the layers l ≥ `lowest` (c × out_l × out_l), from the
 * output curvature down: A^{l,l} = D_l + diag(h′_l) W_{l+1}ᵀ A^{l+1,l+1} W_{l+1} diag(h′_l), with
 * D_l = diag(g_l ⊙ h″_l) when `exact` (the h″ term of 5.94), zero for the outer product (then
 * A^{l,l} = R_{out,l}ᵀ G_n R_{out,l}, the factor Λ_{l,n} of KFAC). Cost O(c · Σ out_{l+1} · out_l²).
 */
export function selfCurvatures(p: Problem, f: ForwardPass, b: BackwardPass | undefined, exact: boolean, n0: number, c: number, lowest = 0): Float64Array[] {
  const net = p.network;
  const L = net.layers.length;
  const as: Float64Array[] = new Array(L);
  as[L - 1] = outputMatrices(p, f, exact ? 'curvature' : 'gaussNewton', n0, c);
  for (let l = L - 2; l >= lowest; l--) {
    const outNext = net.layers[l + 1].out;
    const w = net.layers[l].out;
    // X_n = A^{l+1} W diag(h′) (out_{l+1} × out_l); its transpose is diag(h′) Wᵀ A^{l+1} (A symmetric)
    const x = pullBack(net, f, l, as[l + 1], c, outNext, n0);
    const xt = new Float64Array(c * w * outNext);
    linalg().transposeEach(x, c, outNext, w, xt);
    const a = pullBack(net, f, l, xt, c, w, n0);
    if (exact) {
      const g = b!.gs[l]!, d2 = f.d2[l]!;
      for (let i = 0; i < c; i++) {
        for (let j = 0; j < w; j++) a[i * w * w + j * w + j] += g[(n0 + i) * w + j] * d2[(n0 + i) * w + j];
      }
    }
    as[l] = a;
  }
  return as;
}

/** Khatri–Rao rows: out[n][(j,q)] = x[n][j]·y[n][q] for c points (the backend's khatriRao). Cost c·nx·ny. */
function khatriRao(x: Float64Array, nx: number, y: Float64Array, ny: number, c: number, rows: Rows): Float64Array {
  const out = rows.take(c * nx * ny);
  linalg().khatriRao(x, nx, y, ny, c, out);
  return out;
}

/**
 * Where the entries of H go (types.ts BlockTarget): the whole matrix, a slab of rows, or one
 * layer's own block. With `mirror`, a block between two layers is written with its transpose as
 * it is scattered (a slab needs rows of both); otherwise only its lower half is, and
 * `symmetrizeBlocks` copies it over.
 */
type Target = BlockTarget;

/**
 * T[(i,p),(j,q)] (+)= Σ_n X[n][(i,p)] · Y[n][(j,q)] over one chunk of c points, for rows
 * i0 … i0 + ti − 1: the curvature term of block (l, m) in product layout, one GEMM.
 */
function curvatureProduct(ll: Layer, lm: Layer, x: Float64Array, y: Float64Array, c: number, i0: number, ti: number, beta: number, t: Float64Array): void {
  const yCols = ll.aug * lm.aug;
  linalg().gemm(true, false, ti * lm.out, yCols, c, 1, x.subarray(i0 * lm.out), ll.out * lm.out, y, yCols, beta, t, yCols);
}

/**
 * H[θ_l[i][j]][θ_m[p][q]] += T[(i,p),(j,q)] for rows i0 … i0 + ti − 1 (and the transposed
 * entries with a mirroring target): the backend's scatterBlock, inner loops over contiguous q.
 */
function scatterCurvature(h: Target, ll: Layer, lm: Layer, t: Float64Array, i0: number, ti: number): void {
  linalg().scatterBlock(h, ll, lm, t, i0, ti, ll.aug, true);
}

/** Packed lower pairs of c symmetric r × r matrices: out[n][i(i+1)/2 + p] = x[n][i][p], p ≤ i (the backend's packLower). */
function packLower(x: Float64Array, r: number, c: number, rows: Rows): Float64Array {
  const out = rows.take((c * r * (r + 1)) / 2);
  linalg().packLower(x, r, c, out);
  return out;
}

/** Symmetric Khatri–Rao rows: out[n][j(j+1)/2 + q] = z[n][j]·z[n][q], q ≤ j (the backend's symmetricKhatriRao). */
function symmetricKhatriRao(z: Float64Array, nz: number, c: number, rows: Rows): Float64Array {
  const out = rows.take((c * nz * (nz + 1)) / 2);
  linalg().symmetricKhatriRao(z, nz, c, out);
  return out;
}

/**
 * A layer's own block (l = m), a quarter of the work: A^{l,l}_n and z̃z̃ᵀ are both symmetric,
 * so T[(i,p),(j,q)] = Σ_n A_n[i][p]·z̃_j·z̃_q for p ≤ i and q ≤ j (packed) holds every distinct
 * entry. Rows i0 … i1 − 1 of i, one GEMM.
 */
function diagonalProduct(ll: Layer, x: Float64Array, y: Float64Array, c: number, i0: number, i1: number, beta: number, t: Float64Array): void {
  const yCols = (ll.aug * (ll.aug + 1)) / 2;
  const r0 = (i0 * (i0 + 1)) / 2, r1 = (i1 * (i1 + 1)) / 2;
  linalg().gemm(true, false, r1 - r0, yCols, c, 1, x.subarray(r0), (ll.out * (ll.out + 1)) / 2, y, yCols, beta, t, yCols);
}

/**
 * H[θ(i,j)][θ(p,q)] += T[(i,p),(max(j,q),min(j,q))] and, for p < i, the mirrored
 * H[θ(p,j)][θ(i,q)] by the same value: the whole block, exactly symmetric (the backend's
 * scatterOwnBlock, contiguous inner loops over q).
 */
function scatterDiagonal(h: Target, ll: Layer, t: Float64Array, i0: number, i1: number): void {
  linalg().scatterOwnBlock(h, ll, t, i0, i1);
}

/** Ends of the tiles of i for a layer's own block, each within the tile budget. */
function diagonalTiles(ll: Layer, budget: number): number[] {
  const yCols = (ll.aug * (ll.aug + 1)) / 2;
  const ends: number[] = [];
  let i0 = 0;
  while (i0 < ll.out) {
    let i1 = i0 + 1;
    while (i1 < ll.out && (((i1 + 1) * (i1 + 2)) / 2 - (i0 * (i0 + 1)) / 2) * yCols <= budget) i1++;
    ends.push(i1);
    i0 = i1;
  }
  return ends;
}

/** The rows of i per tile so that a tile of block (l, m) stays within the tile budget. */
function curvatureTile(ll: Layer, lm: Layer, budget: number): number {
  return Math.max(1, Math.min(ll.out, Math.floor(budget / (lm.out * ll.aug * lm.aug))));
}

/**
 * H[θ_l[i][j]][θ_m[p][q]] += Σ_n S[n][(j,p)] · DZ[n][(i,q)] for j < in_l over one chunk (the
 * cross term of 5.95, m < l), as one GEMM per tile of j and a scatter over contiguous q.
 */
function addCrossBlock(h: Target, ll: Layer, lm: Layer, s: Float64Array, dz: Float64Array, c: number, budget: number): void {
  const outM = lm.out;
  const zCols = ll.out * lm.aug;
  const tileJ = Math.max(1, Math.min(ll.in, Math.floor(budget / (outM * zCols))));
  const t = new Float64Array(tileJ * outM * zCols);
  for (let j0 = 0; j0 < ll.in; j0 += tileJ) {
    const tj = Math.min(tileJ, ll.in - j0);
    linalg().gemm(true, false, tj * outM, zCols, c, 1, s.subarray(j0 * outM), ll.in * outM, dz, zCols, 0, t, zCols);
    linalg().scatterBlock(h, ll, lm, t, j0, tj, ll.out, false);
  }
}

/**
 * The cross term for m = l − 1, where S_{l,l−1} = diag(h′_{l−1}) leaves only p = j:
 * T[(j,j),(i,q)] = Σ_n h′_{l−1,n}[j] · DZ[n][(i,q)] is one GEMM of in_l × (out_l·aug_m) over the
 * chunk, 2c·in_l·out_l·aug_m flops (out_m = in_l times fewer than addCrossBlock's with S dense),
 * laid into addCrossBlock's (j, p) tiles (zero for p ≠ j) and scattered the same way.
 */
function addAdjacentCrossBlock(h: Target, ll: Layer, lm: Layer, d1: Float64Array, dz: Float64Array, c: number, budget: number): void {
  const outM = lm.out;
  const zCols = ll.out * lm.aug;
  const product = new Float64Array(ll.in * zCols);
  linalg().gemm(true, false, ll.in, zCols, c, 1, d1, ll.in, dz, zCols, 0, product, zCols);
  const tileJ = Math.max(1, Math.min(ll.in, Math.floor(budget / (outM * zCols))));
  const t = new Float64Array(tileJ * outM * zCols);
  for (let j0 = 0; j0 < ll.in; j0 += tileJ) {
    const tj = Math.min(tileJ, ll.in - j0);
    for (let dj = 0; dj < tj; dj++) t.set(product.subarray((j0 + dj) * zCols, (j0 + dj + 1) * zCols), (dj * outM + j0 + dj) * zCols);
    linalg().scatterBlock(h, ll, lm, t, j0, tj, ll.out, false);
    for (let dj = 0; dj < tj; dj++) t.fill(0, (dj * outM + j0 + dj) * zCols, (dj * outM + j0 + dj + 1) * zCols);
  }
}

/** S_{l,l−1} = diag(h′) for c points, dense: c × r × r with the c rows of `d1` (c × r) on the diagonals. */
function diagonalStack(d1: Float64Array, c: number, r: number): Float64Array {
  const s = new Float64Array(c * r * r);
  for (let i = 0; i < c; i++) for (let j = 0; j < r; j++) s[i * r * r + j * r + j] = d1[i * r + j];
  return s;
}

/**
 * Fills the upper triangle of the blocks between two different selected layers from the lower;
 * a layer's own block is written whole and exactly symmetric by `scatterDiagonal`. Cost W²/2, in
 * tiles.
 */
function symmetrizeBlocks(h: Float64Array, W: number, layers: readonly Layer[]): void {
  const selected = layers.filter((l) => l.offset >= 0);
  for (let l = 1; l < selected.length; l++) {
    const rStart = selected[l].offset;
    linalg().mirrorLower(h, W, rStart, rStart + selected[l].size, 0, rStart);
  }
}

/** Doubles of a block's sum over chunks: packed pairs for a layer's own block, the full product layout otherwise. */
function blockSumLength(ll: Required<LayerSize>, lm: Required<LayerSize>, own: boolean): number {
  const aL = ll.in + (ll.hasBias ? 1 : 0), aM = lm.in + (lm.hasBias ? 1 : 0);
  return own ? ((ll.out * (ll.out + 1)) / 2) * ((aL * (aL + 1)) / 2) : ll.out * lm.out * aL * aM;
}

/** Which blocks (l, m), l ≥ m, an answer needs: both layers selected, and only l = m for a block-diagonal one. */
export type BlockFilter = (l: number, m: number) => boolean;

/** The sizes with their defaults, one array per input array (layer sizes are never changed in place), so that the pair totals below are computed once a request. */
const sizesOf = new WeakMap<readonly LayerSize[], readonly Required<LayerSize>[]>();

function sizes(layers: readonly LayerSize[]): readonly Required<LayerSize>[] {
  let ls = sizesOf.get(layers);
  if (!ls) {
    ls = layers.map((l) => ({ in: l.in, out: l.out, hasBias: l.hasBias !== false, selected: l.selected !== false }));
    sizesOf.set(layers, ls);
    sizesOf.set(ls, ls);
  }
  return ls;
}

/** The layer sizes as typed arrays, for the loops over all pairs of layers. */
function sizeArrays(ls: readonly Required<LayerSize>[]): { outs: Float64Array; ins: Float64Array; augs: Float64Array; selected: Uint8Array } {
  const outs = new Float64Array(ls.length), ins = new Float64Array(ls.length), augs = new Float64Array(ls.length), selected = new Uint8Array(ls.length);
  ls.forEach((l, i) => { outs[i] = l.out; ins[i] = l.in; augs[i] = l.in + (l.hasBias ? 1 : 0); selected[i] = l.selected ? 1 : 0; });
  return { outs, ins, augs, selected };
}

/** The default blocks: every pair of selected layers. */
function allSelected(layers: readonly Required<LayerSize>[]): BlockFilter {
  return (l, m) => layers[l].selected && layers[m].selected;
}

/**
 * How the data are split: doubles per data point held at once (the A's, one pulled-back A and
 * S, the Khatri–Rao rows), points per chunk, the doubles of the block sums kept when there is
 * more than one chunk, and the lowest layer any needed block reaches.
 */
/** The pair loop's totals for the default blocks (every selected pair), by the layers array: sizing a request asks for them several times. */
const pairTotalsOf = new WeakMap<readonly LayerSize[], PairTotals>();

interface PairTotals {
  readonly blockSize: number;
  /** The block sums' doubles: packed pairs for a layer's own block, the full product layout otherwise (blockSumLength). */
  readonly sumDoubles: number;
  readonly lowest: number;
  readonly tileDoubles: number;
  /** The needed blocks. */
  readonly blocks: number;
  /** The block form's GEMM flops per data point, for the outer product and for the exact Hessian (with its cross terms). */
  readonly outerFlopsPerPoint: number;
  readonly exactFlopsPerPoint: number;
}

/**
 * Over the needed pairs of layers: the per-point doubles of the largest pair, the block sums'
 * doubles, the lowest layer reached, the largest temporary tile, and the block form's count and
 * flops (for the cost model). Plain loops over typed arrays:
 * a network of 1,000 layers has 500,500 pairs.
 */
function pairTotals(layers: readonly LayerSize[], need?: BlockFilter): PairTotals {
  const known = need ? undefined : pairTotalsOf.get(layers);
  if (known) return known;
  const ls = sizes(layers);
  const { outs, ins, augs, selected } = sizeArrays(ls);
  let blockSize = 0;
  let sumDoubles = 0;
  let lowest = ls.length;
  // the largest temporary tile: a block's product (or its cross term's), cut to TILE_BUDGET unless one row is larger
  let tileDoubles = 0;
  let blocks = 0, outerFlopsPerPoint = 0, crossFlopsPerPoint = 0;
  for (let l = 0; l < ls.length; l++) {
    const oL = outs[l], iL = ins[l], aL = augs[l], wl = oL * aL;
    for (let m = 0; m <= l; m++) {
      if (need ? !need(l, m) : !(selected[l] && selected[m])) continue;
      if (m < lowest) lowest = m;
      const oM = outs[m], iM = ins[m], aM = augs[m], wm = oM * aM;
      blocks++;
      // own: a quarter of 2N·W_l²; between layers 2N·W_l·W_m, and for the exact Hessian the cross term's 2N·out_l·in_l·W_m (·aug_m/W_m for m = l − 1, where S = diag(h′))
      outerFlopsPerPoint += (m === l ? 0.5 : 2) * wl * wm;
      if (m < l) crossFlopsPerPoint += 2 * oL * iL * (m === l - 1 ? aM : wm);
      blockSize = Math.max(blockSize, 2 * oL * oM + 2 * iL * oM + (iL + 1) * (iM + 1) + oL * (iM + 1));
      const product = m === l ? ((oL * (oL + 1)) / 2) * ((aL * (aL + 1)) / 2) : oL * oM * aL * aM; // blockSumLength
      sumDoubles += product;
      const cross = m < l ? iL * oM * oL * aM : 0;
      const row = Math.max(product / oL, m < l ? oM * oL * aM : 0);
      tileDoubles = Math.max(tileDoubles, Math.min(Math.max(product, cross), Math.max(TILE_BUDGET, row)));
    }
  }
  const totals = { blockSize, sumDoubles, lowest, tileDoubles, blocks, outerFlopsPerPoint, exactFlopsPerPoint: outerFlopsPerPoint + crossFlopsPerPoint };
  if (!need) pairTotalsOf.set(layers, totals);
  return totals;
}

function curvaturePlan(layers: readonly LayerSize[], n: number, budget: number, need?: BlockFilter): { chunk: number; chunked: boolean; perPoint: number; sumDoubles: number; lowest: number; tileDoubles: number } {
  const ls = sizes(layers);
  const { blockSize, sumDoubles, lowest, tileDoubles } = pairTotals(layers, need);
  let selfSize = 0;
  ls.forEach((ll, l) => { if (l >= lowest) selfSize += ll.out * ll.out + (ll.in + 1); });
  const perPoint = selfSize + blockSize;
  const chunk = chunkSize(n, perPoint, budget);
  return { chunk, chunked: chunk < n, perPoint, sumDoubles, lowest, tileDoubles };
}

/**
 * The ways to form a curvature matrix, with their estimated seconds: `blocks` (this module's block
 * form), `stack` (the outer product as Uᵀ U by syrk, stack.ts) and `columns` (rows H e_j by the
 * R-operator, m directions at a time, columns.ts). The outer product has blocks and stack; the
 * exact Hessian blocks and columns.
 */
export interface CurvatureForm {
  readonly form: 'blocks' | 'stack' | 'columns';
  /** The estimate, or a lower bound where that alone rules the block form out (blockFormSeconds). */
  readonly blockSeconds: number;
  readonly stackSeconds: number;
  readonly columnSeconds: number;
}

/**
 * The cost model that picks the form. Each form's time is its BLAS flops at a GEMM rate, plus the
 * doubles its JavaScript loops and short-inner-dimension GEMMs move at a memory rate, plus fixed
 * costs per step:
 *
 *   blocks:  flops Σ_{(l,m) needed} 2N·W_l·W_m (a quarter for l = m, packed; twice with the
 *            exact cross terms), doubles moved N·(per-point arrays: the A^{l,m}, their pull-backs,
 *            the Khatri–Rao rows) + the block products written per chunk and scattered into H
 *            once, and a fixed cost per block and chunk;
 *   stack:   flops N·K·W_sel² (syrk: half of N·K·W·(W+1) multiply-adds, counted as the GEMM rate
 *            sees it), doubles N·K·(W + Σ out_l) for the rows and their pull-backs + W² to mirror;
 *   columns: flops ≈ 8·N·D·W for D directions (forward, backward and result GEMMs over all
 *            directions), N·D·Σ(2 out_l + 2 in_l) doubles through in-cache loops a few times,
 *            the D × W rows through a few passes, and a fixed cost per layer and batch of
 *            directions (≈ 3L steps of a few GEMM calls);
 *   exact stack: the outer product's stack, then per layer with a d_k (every hidden layer, the
 *            output with a residual) 2N·out_k·W_{<k}² for V_kᵀDV_k and 2N·W_k·W_{<k} for its rows
 *            against the layers below, the cross terms' 2N·W_l·W_{<l−1}, L(L+1)/2 pull-back
 *            steps per chunk for the V_k, the per-point loops' N·(2W_k + in_k·aug_{k−1}) doubles,
 *            and the output head's matrices per point.
 *
 * The rates were fitted to the benchmark sweep's shapes on a 2-core Xeon with OpenBLAS's
 * SkylakeX kernels (2026-12-01, under load from other work, so rough): what matters is the ratio,
 * which picks the stack where N·K is small against W or a layer is much wider than the output,
 * and the columns for deep narrow networks (many blocks, little work in each).
 */
const GEMM_FLOPS_PER_SECOND = 6e10;
const MOVED_DOUBLES_PER_SECOND = 1.5e8;
/** Doubles per second through the columns form's loops, which work on arrays that stay in cache. */
const CACHED_DOUBLES_PER_SECOND = 1e9;
/** Seconds of fixed work per block and chunk (its GEMM calls, tiles and loops): 1,000 layers of width 1 have 500,500 blocks. */
const SECONDS_PER_BLOCK = 5e-6;
/** Seconds of fixed work per layer step of the columns form (a few GEMM calls and loops). */
const SECONDS_PER_LAYER_STEP = 2e-5;
/**
 * Seconds per data point of the exact stack form's three output-head matrices: 8-10-1 at
 * N = 10,000 took 60–90 ms in that form against its 27 ms estimate without this and the
 * per-point loops' doubles, and 41 ms in the block form (estimated 45), 2026-12-01.
 */
const SECONDS_PER_POINT_HEADS = 1e-6;

/** What the cost model is asked about beyond the sizes. */
export interface FormQuestion {
  /** The blocks wanted (default: every pair of selected layers, the whole matrix). */
  readonly need?: BlockFilter;
  /** The rows the columns form would compute (default W, all of them). */
  readonly directions?: number;
  /**
   * Whether the exact Hessian's stack form applies (the whole matrix, and a head whose L_n − G_n
   * is diagonal, stack.ts): 'canonical' where L_n = G_n, 'residual' where the diagonal is not zero
   * (sum-of-squares on an elementwise output other than identity); undefined where it does not.
   */
  readonly exactStack?: ExactStackKind;
}

export function curvatureForm(layers: readonly LayerSize[], n: number, exact: boolean, { need, directions, exactStack }: FormQuestion = {}): CurvatureForm {
  const ls = sizes(layers);
  let w = 0, units = 0, through = 0;
  for (const l of ls) if (l.selected) w += l.out * (l.in + (l.hasBias ? 1 : 0));
  for (const l of ls) { units += l.out; through += 2 * l.out + 2 * l.in; }
  const k = ls[ls.length - 1]?.out ?? 0;
  let stackSeconds = Infinity, columnSeconds = Infinity;
  if (exact) {
    const d = directions ?? w;
    const batches = Math.ceil(d / Math.max(1, columnsBatch(layers, n, w)));
    // and the rows themselves, D × W, through a few passes (the unit directions, their stacks, the products, the mirror)
    columnSeconds = (8 * n * d * w) / GEMM_FLOPS_PER_SECOND + (3 * n * d * through) / CACHED_DOUBLES_PER_SECOND + (6 * d * w) / MOVED_DOUBLES_PER_SECOND +
      batches * 3 * ls.length * SECONDS_PER_LAYER_STEP;
    if (exactStack) {
      // the outer product's syrk, then per layer V_kᵀDV_k, its (k, <k) rows and the cross terms below k − 1
      let flops = n * k * w * w, moved = n * k * (w + units) + w * w, below = 0, belowPrevious = 0;
      ls.forEach((l, i) => {
        const wl = l.out * (l.in + (l.hasBias ? 1 : 0));
        // V_kᵀ D V_k and the (k, <k) rows where layer k has a d_k: every hidden layer, the output with a residual
        const withD = i < ls.length - 1 || exactStack === 'residual';
        if (withD) flops += 2 * n * l.out * below * below + (l.selected ? 2 * n * wl * below : 0);
        if (l.selected) flops += 2 * n * wl * belowPrevious;
        moved += 3 * n * l.out * below;
        // its per-point loops: d ⊗ z̃ for each unit's rows and own block (out·aug, twice), and the cross term's h′ ⊗ z̃ (in·aug of the layer below)
        const augBelow = i > 0 ? ls[i - 1].in + (ls[i - 1].hasBias ? 1 : 0) : 0;
        if (withD) moved += 2 * n * wl;
        if (i > 0) moved += n * l.in * augBelow;
        belowPrevious = below;
        if (l.selected) below += wl;
      });
      // each layer's V_k is its own pull-back through the layers below: L(L − 1)/2 steps per chunk
      const steps = (ls.length * (ls.length + 1)) / 2;
      const chunks = Math.ceil(n / exactStackChunk(ls, n, w));
      // and the output head's three matrices per point (G's factor, L_n and G_n)
      stackSeconds = flops / GEMM_FLOPS_PER_SECOND + moved / MOVED_DOUBLES_PER_SECOND + chunks * steps * SECONDS_PER_LAYER_STEP + n * SECONDS_PER_POINT_HEADS;
    }
  } else {
    stackSeconds = (n * k * w * w) / GEMM_FLOPS_PER_SECOND + (n * k * (w + units) + w * w) / MOVED_DOUBLES_PER_SECOND;
  }
  const blockSeconds = blockFormSeconds(layers, n, exact, need, Math.min(stackSeconds, columnSeconds));
  const best = Math.min(blockSeconds, stackSeconds, columnSeconds);
  const form = best === blockSeconds ? 'blocks' : best === stackSeconds ? 'stack' : 'columns';
  return { form, blockSeconds, stackSeconds, columnSeconds };
}

/**
 * The block form's seconds (curvatureForm's model), or, for the whole matrix, where its fixed
 * cost per block alone over the S(S + 1)/2 pairs of S selected layers already exceeds `other`,
 * that lower bound, without the pass over the pairs: 1,000 layers have 500,500 of them, which
 * took 14–23 ms of every such request (twice: sized in the main thread, chosen in the worker).
 */
function blockFormSeconds(layers: readonly LayerSize[], n: number, exact: boolean, need: BlockFilter | undefined, other: number): number {
  if (!need) {
    let selected = 0;
    for (const l of sizes(layers)) if (l.selected) selected++;
    const atLeast = ((selected * (selected + 1)) / 2) * SECONDS_PER_BLOCK;
    if (atLeast > other) return atLeast;
  }
  const plan = curvaturePlan(layers, n, CHUNK_BUDGET, need);
  const chunks = Math.ceil(n / plan.chunk);
  const totals = pairTotals(layers, need);
  const flops = n * (exact ? totals.exactFlopsPerPoint : totals.outerFlopsPerPoint);
  return flops / GEMM_FLOPS_PER_SECOND + (n * plan.perPoint + (chunks + 1) * totals.sumDoubles) / MOVED_DOUBLES_PER_SECOND + chunks * totals.blocks * SECONDS_PER_BLOCK;
}

/** What of a curvature matrix an answer holds: all of it, each selected layer's own block, or rows start … end − 1. */
export type CurvatureAnswer = CurvatureTarget;

/** The blocks a row slab needs, from layer sizes alone (for the estimate). */
function sizeSlabFilter(layers: readonly Required<LayerSize>[], start: number, end: number): BlockFilter {
  let offset = 0;
  const placed = layers.map((l) => {
    const size = l.out * (l.in + (l.hasBias ? 1 : 0));
    const at = l.selected ? offset : -1;
    if (l.selected) offset += size;
    return { offset: at, size };
  });
  return slabFilter(placed, start, end);
}

/**
 * Bytes an exact or outer-product Hessian (all of it, its blocks or a slab of rows) of a network
 * with these layer sizes needs for N data points besides its answer and the forward/backward
 * passes, in the form the cost model picks: in the block form the per-chunk working arrays and
 * either the block sums (several chunks) or two temporary tiles (one chunk); in the stack form one
 * chunk of rows; in the columns form one batch of directions (and, for blocks, a layer's whole
 * rows, W_l × W, the largest kept at once). `exactStack`: whether the head allows the exact
 * Hessian's stack form (stack.ts hasExactStack). For sizing requests before work.
 */
export function curvatureScratchBytes(layers: readonly LayerSize[], n: number, exact: boolean, answer: CurvatureAnswer = 'matrix', exactStack?: ExactStackKind): number {
  const ls = sizes(layers);
  const { need, form } = answerForm(ls, n, exact, answer, exactStack);
  if (form !== 'blocks') {
    let w = 0, widest = 0;
    for (const l of ls) if (l.selected) { const wl = l.out * (l.in + (l.hasBias ? 1 : 0)); w += wl; widest = Math.max(widest, wl); }
    if (form === 'stack') return exact ? exactStackScratchBytes(layers, n, w) : stackScratchBytes(layers, n, w);
    return columnsScratchBytes(layers, n, w) + (answer === 'blocks' ? 8 * widest * w : 0);
  }
  const plan = curvaturePlan(layers, n, CHUNK_BUDGET, need);
  return 8 * (plan.chunk * plan.perPoint + (plan.chunked ? plan.sumDoubles : 2 * plan.tileDoubles));
}

/** The blocks an answer needs (undefined: all of them) and the form the cost model picks for it. */
function answerForm(ls: readonly Required<LayerSize>[], n: number, exact: boolean, answer: CurvatureAnswer, exactStack: ExactStackKind | undefined): { need: BlockFilter | undefined; directions: number | undefined; form: CurvatureForm['form'] } {
  const need: BlockFilter | undefined = answer === 'blocks' ? (l, m) => l === m && ls[l].selected : answer === 'matrix' ? undefined : sizeSlabFilter(ls, answer[0], answer[1]);
  const directions = typeof answer === 'string' ? undefined : answer[1] - answer[0];
  const form = curvatureForm(ls, n, exact, { need, directions, exactStack: answer === 'matrix' ? exactStack : undefined }).form;
  return { need, directions, form };
}

/**
 * The work (src/core/work.ts) of an exact or outer-product Hessian, all of it, its blocks or a
 * slab of rows, in the form the cost model picks, as curvatureScratchBytes sizes it: the block
 * form's loops, the stack form's rows and syrk, or the columns form's batches of directions. For
 * admission's estimate of seconds (src/cost.ts) and a job's progress, before work. `head`: the
 * loss head's own K × K GEMM per point (sum-of-squares on softmax).
 */
export function curvatureWorkOf(layers: readonly LayerSize[], n: number, exact: boolean, answer: CurvatureAnswer = 'matrix', exactStack?: ExactStackKind, head = false): Work {
  const ls = sizes(layers);
  const { need, directions, form } = answerForm(ls, n, exact, answer, exactStack);
  let w = 0, blockDoubles = 0;
  for (const l of ls) if (l.selected) { const wl = l.out * (l.in + (l.hasBias ? 1 : 0)); w += wl; blockDoubles += wl * wl; }
  const answerDoubles = answer === 'matrix' ? w * w : answer === 'blocks' ? blockDoubles : (directions ?? w) * w;
  if (form === 'stack') {
    const stack = exact && answer === 'matrix' ? exactStack : undefined;
    const chunk = stack ? exactStackChunk(ls, n, w) : stackChunk(ls, n, w);
    return stackWork(ls, n, w, Math.ceil(n / chunk), stack, answer, head);
  }
  if (form === 'columns') {
    // the rows asked for; for the blocks, each selected layer's own rows
    const ranges: (readonly [number, number])[] = [];
    if (answer === 'matrix') ranges.push([0, w]);
    else if (answer === 'blocks') {
      let at = 0;
      for (const l of ls) if (l.selected) { const wl = l.out * (l.in + (l.hasBias ? 1 : 0)); ranges.push([at, at + wl]); at += wl; }
    } else ranges.push(answer);
    return columnsWork(ls, n, w, ranges, columnsBatch(ls, n, w), exact, head);
  }
  const filter = need ?? allSelected(ls);
  return curvatureWork(ls, n, exact, filter, curvatureChunking(ls, n, filter), answerDoubles, answer === 'matrix', head);
}

/** The chunking an exact or outer-product Hessian (or the blocks `need` picks) will use, for its work estimate. */
export function curvatureChunking(layers: readonly LayerSize[], n: number, need?: BlockFilter): { chunk: number; chunked: boolean; lowest: number } {
  const { chunk, chunked, lowest } = curvaturePlan(layers, n, CHUNK_BUDGET, need);
  return { chunk, chunked, lowest };
}

/** A built layer's sizes. */
function sizeOf(l: Layer): Required<LayerSize> {
  return { in: l.in, out: l.out, hasBias: l.bias !== null, selected: l.offset >= 0 };
}

/** A built network's layer sizes, for the plans and estimates. */
export function layerSizes(layers: readonly Layer[]): Required<LayerSize>[] {
  return layers.map(sizeOf);
}

/** Adds the curvature blocks `need` picks, summed over the data, into `h`. */
function addCurvature(p: Problem, exact: boolean, h: Target | ((l: number) => Target), need: BlockFilter, budgets: CurvatureBudgets): void {
  const target = typeof h === 'function' ? h : () => h;
  const tileBudget = budgets.tile ?? TILE_BUDGET;
  const net = p.network;
  const L = net.layers.length;
  const f = forward(net, p.inputs);
  const b = exact ? backward(p, f) : undefined;
  const { chunk, chunked, lowest } = curvaturePlan(layerSizes(net.layers), f.n, budgets.chunk ?? CHUNK_BUDGET, need);
  if (lowest === L) return;
  // With several chunks, each curvature block is summed over all of them in its product layout
  // and scattered once rather than scattered per chunk.
  const sums = chunked
    ? net.layers.map((ll, l) => net.layers.slice(0, l + 1).map((lm, m) => (need(l, m) ? new Float64Array(blockSumLength(
      sizeOf(ll), sizeOf(lm), m === l)) : undefined)))
    : undefined;
  // the rows of the GEMMs' second factor (Khatri–Rao), of the packed A's, and of the cross terms' δ ⊗ z̃
  // and the block products of one tile (each GEMM with β = 0 overwrites its tile, scattered before the next)
  const krRows = new Rows(), packedRows = new Rows(), crossRows = new Rows(), tiles = new Rows();
  for (let n0 = 0; n0 < f.n; n0 += chunk) {
    const c = Math.min(chunk, f.n - n0);
    const aSelf = selfCurvatures(p, f, b, exact, n0, c, lowest);
    const zt = net.layers.map((layer, l) => (l >= lowest ? augmentedInputs(f, layer, l, n0, c) : new Float64Array(0)));
    for (let l = lowest; l < L; l++) {
      const ll = net.layers[l];
      let low = l + 1;
      for (let m = lowest; m <= l; m++) if (need(l, m)) { low = m; break; }
      if (low > l) continue;
      let pm = aSelf[l]; // A^{l,m}, c × out_l × out_m, for m = l first
      let s: Float64Array | undefined; // S_{l,m}, c × in_l × out_m
      for (let m = l; m >= low; m--) {
        const lm = net.layers[m];
        if (m === l) {
          if (!need(l, l)) continue;
          const packed = packLower(pm, ll.out, c, packedRows);
          const kr = symmetricKhatriRao(zt[l], ll.aug, c, krRows);
          const sum = sums?.[l][l];
          if (sum) {
            diagonalProduct(ll, packed, kr, c, 0, ll.out, n0 === 0 ? 0 : 1, sum);
          } else {
            let i0 = 0;
            for (const i1 of diagonalTiles(ll, tileBudget)) {
              const t = tiles.take(((i1 * (i1 + 1)) / 2 - (i0 * (i0 + 1)) / 2) * ((ll.aug * (ll.aug + 1)) / 2));
              diagonalProduct(ll, packed, kr, c, i0, i1, 0, t);
              scatterDiagonal(target(l), ll, t, i0, i1);
              i0 = i1;
            }
          }
          continue;
        }
        pm = pullBack(net, f, m, pm, c, ll.out, n0);
        if (exact) {
          if (m === l - 1) {
            // S_{l,l−1} = diag(h′_{l−1}), held densely only for the pull-backs to the layers further down
            s = m > low ? diagonalStack(f.d1[m]!.subarray(n0 * ll.in), c, ll.in) : undefined;
          } else {
            s = pullBack(net, f, m, s!, c, ll.in, n0);
          }
        }
        if (!need(l, m)) continue;
        const kr = khatriRao(zt[l], ll.aug, zt[m], lm.aug, c, krRows);
        const sum = sums?.[l][m];
        if (sum) {
          curvatureProduct(ll, lm, pm, kr, c, 0, ll.out, n0 === 0 ? 0 : 1, sum);
        } else {
          const tile = curvatureTile(ll, lm, tileBudget);
          const t = tiles.take(tile * lm.out * ll.aug * lm.aug);
          for (let i0 = 0; i0 < ll.out; i0 += tile) {
            const ti = Math.min(tile, ll.out - i0);
            curvatureProduct(ll, lm, pm, kr, c, i0, ti, 0, t);
            scatterCurvature(target(l), ll, lm, t, i0, ti);
          }
        }
        if (exact) {
          const dz = khatriRao(b!.deltas[l].subarray(n0 * ll.out), ll.out, zt[m], lm.aug, c, crossRows);
          if (m === l - 1) addAdjacentCrossBlock(target(l), ll, lm, f.d1[m]!.subarray(n0 * ll.in), dz, c, tileBudget);
          else addCrossBlock(target(l), ll, lm, s!, dz, c, tileBudget);
        }
      }
    }
  }
  if (sums) {
    sums.forEach((row, l) => row.forEach((t, m) => {
      if (!t) return;
      const ll = net.layers[l];
      if (m === l) scatterDiagonal(target(l), ll, t, 0, ll.out);
      else scatterCurvature(target(l), ll, net.layers[m], t, 0, ll.out);
    }));
  }
}

function selectedFilter(p: Problem): BlockFilter {
  const layers = p.network.layers;
  return (l, m) => layers[l].offset >= 0 && layers[m].offset >= 0;
}

/** The form for the blocks `need` picks of `p` (directions: the rows the columns form would compute): the caller's, or the cost model's. */
function formOf(p: Problem, exact: boolean, budgets: CurvatureBudgets, need?: BlockFilter, directions?: number): CurvatureForm['form'] {
  const exactStack = exact && need === undefined ? exactStackKind(p.head.loss, p.head.activation) : undefined;
  if (budgets.form === 'stack' && exact && !exactStack) throw new Error('the exact Hessian has a stack form only for the whole matrix, and not for sum-of-squares on softmax outputs');
  return budgets.form ?? curvatureForm(layerSizes(p.network.layers), p.inputs.rows, exact, { need, directions, exactStack }).form;
}

/** The whole (selected) matrix, W × W. */
function curvatureMatrix(p: Problem, exact: boolean, budgets: CurvatureBudgets): Float64Array {
  const W = p.network.parameterCount;
  const form = formOf(p, exact, budgets);
  if (form === 'stack' && exact) return exactStackHessian(p, budgets.chunk);
  if (form === 'columns') return hessianByProducts(p, exact, budgets.chunk);
  const h = newMatrix(W * W);
  if (form === 'stack') {
    addStackOuterProduct(p, { kind: 'matrix', h }, budgets.chunk);
    return h;
  }
  addCurvature(p, exact, { data: h, stride: W, rowStart: 0, rowEnd: W, colOffset: 0, mirror: false }, selectedFilter(p), budgets);
  symmetrizeBlocks(h, W, p.network.layers);
  return h;
}

/**
 * The exact Hessian H = ∂²E/∂w∂wᵀ (W × W, row-major, symmetric) by extended backpropagation
 * (PRML 5.93–5.95 generalised to any depth; see the module comment for the block formulas).
 * Cost ≤ 2·N·W² flops in GEMMs (see the module comment) plus O(N·Σ out_l²·out_{l+1});
 * memory W² (2W² with several chunks) + bounded chunks.
 */
export function exactHessian(p: Problem, budgets: CurvatureBudgets = {}): Float64Array {
  return curvatureMatrix(p, true, budgets);
}

/**
 * The outer-product (Levenberg–Marquardt / Gauss–Newton) Hessian Σ_n B_nᵀ G_n B_n
 * (PRML 5.84–5.85): B_n = ∂a_out/∂w and G_n = L_n for the canonical pairings, and for
 * sum-of-squares with another output activation B_n = ∂y_n/∂w with L = I (G_n = J_yᵀJ_y at
 * a_out). Positive semi-definite. Cost ≤ N·W² flops; memory W² (2W² with several chunks)
 * + bounded chunks.
 */
export function outerProductHessian(p: Problem, budgets: CurvatureBudgets = {}): Float64Array {
  return curvatureMatrix(p, false, budgets);
}

/**
 * The diagonal blocks of the exact or outer-product Hessian, one W_l × W_l matrix per selected
 * layer in layer order (the layer's parameter order): Σ W_l² memory and the blocks' own work
 * alone, in one pass over the data.
 */
export function curvatureBlocks(p: Problem, exact: boolean, budgets: CurvatureBudgets = {}): { layer: number; block: Float64Array }[] {
  const layers = p.network.layers;
  const blocks = layers.map((l) => (l.offset >= 0 ? new Float64Array(l.size * l.size) : undefined));
  const own: BlockFilter = (l, m) => l === m && layers[l].offset >= 0;
  const form = formOf(p, exact, budgets, own);
  if (form === 'columns') return blocksByProducts(p, exact, budgets.chunk);
  if (form === 'stack') {
    const stacked = layers.flatMap((l, i) => (blocks[i] ? [{ offset: l.offset, size: l.size, block: blocks[i] }] : []));
    addStackOuterProduct(p, { kind: 'blocks', blocks: stacked }, budgets.chunk);
  } else {
    const targets = layers.map((l, i) => ({ data: blocks[i] ?? new Float64Array(0), stride: l.size, rowStart: l.offset, rowEnd: l.offset + l.size, colOffset: l.offset, mirror: false }));
    addCurvature(p, exact, (l) => targets[l], own, budgets);
  }
  const out: { layer: number; block: Float64Array }[] = [];
  blocks.forEach((block, layer) => { if (block) out.push({ layer, block }); });
  return out;
}

/** The blocks a row slab of layers needs: those between two selected layers of which one holds some of the rows. */
export function slabFilter(layers: readonly { offset: number; size: number }[], start: number, end: number): BlockFilter {
  const touches = (l: number) => layers[l].offset >= 0 && layers[l].offset < end && layers[l].offset + layers[l].size > start;
  return (l, m) => layers[l].offset >= 0 && layers[m].offset >= 0 && (touches(l) || touches(m));
}

/**
 * Rows start … end − 1 of the exact or outer-product Hessian, (end − start) × W: memory
 * (end − start)·W besides bounded tiles; the blocks between layers are scattered with their
 * transposes as they come, so no row outside the slab is ever stored.
 */
export function curvatureRows(p: Problem, exact: boolean, start: number, end: number, budgets: CurvatureBudgets = {}): Float64Array {
  const W = p.network.parameterCount;
  const h = newMatrix((end - start) * W);
  const need = slabFilter(p.network.layers, start, end);
  const form = formOf(p, exact, budgets, need, end - start);
  if (form === 'stack') addStackOuterProduct(p, { kind: 'rows', h, start, end }, budgets.chunk);
  else if (form === 'columns') hessianRowsByProducts(p, exact, start, end, h, W, budgets.chunk);
  else addCurvature(p, exact, { data: h, stride: W, rowStart: start, rowEnd: end, colOffset: 0, mirror: true }, need, budgets);
  return h;
}

/** Doubles per data point of the exact diagonal's chunks: the A^{l,l} and their pull-backs, the squared inputs. */
function diagonalPerPoint(layers: readonly LayerSize[]): number {
  let s = 0;
  for (const l of layers) s += 2 * l.out * l.out + 2 * (l.in + 1);
  return s;
}

/** Bytes of the exact diagonal's chunks for N points, besides the answer and the passes. */
/** Points per chunk of the exact diagonal, for its work estimate. */
export function hessianDiagonalChunk(layers: readonly LayerSize[], n: number): number {
  return chunkSize(n, diagonalPerPoint(layers));
}

export function hessianDiagonalScratchBytes(layers: readonly LayerSize[], n: number): number {
  const perPoint = diagonalPerPoint(layers);
  return 8 * chunkSize(n, perPoint) * perPoint;
}

/**
 * The exact diagonal of the Hessian: H[θ_l[i][j]][θ_l[i][j]] = Σ_n A_n^{l,l}[i][i] z̃_{l−1}[j]²
 * (the cross terms of 5.95 are off-diagonal); with `exact` false, the diagonal of the outer
 * product (the same with the Gauss–Newton A^{l,l}). One GEMM per selected layer of N × out_l by
 * N × aug_l. Cost O(N·Σ out_l²·out_{l+1} + N·W).
 */
export function hessianDiagonal(p: Problem, exact = true): Float64Array {
  const net = p.network;
  const f = forward(net, p.inputs);
  const b = exact ? backward(p, f) : undefined;
  const diag = new Float64Array(net.parameterCount);
  const la = linalg();
  const perPoint = diagonalPerPoint(layerSizes(net.layers));
  const chunk = chunkSize(f.n, perPoint);
  const lowest = net.layers.findIndex((l) => l.offset >= 0);
  if (lowest < 0) return diag;
  const maps = net.layers.map((l, i) => (l.offset >= 0 ? parameterIndexMap(net, i) : undefined));
  for (let n0 = 0; n0 < f.n; n0 += chunk) {
    const c = Math.min(chunk, f.n - n0);
    const aSelf = selfCurvatures(p, f, b, exact, n0, c, lowest);
    net.layers.forEach((layer, l) => {
      const map = maps[l];
      if (!map) return;
      const { out, aug } = layer;
      const d = new Float64Array(c * out);
      for (let i = 0; i < c; i++) for (let j = 0; j < out; j++) d[i * out + j] = aSelf[l][i * out * out + j * out + j];
      const z2 = augmentedInputs(f, layer, l, n0, c).map((v) => v * v);
      const t = new Float64Array(out * aug);
      la.gemm(true, false, out, aug, c, 1, d, out, z2, aug, 0, t, aug);
      for (let i = 0; i < t.length; i++) diag[map[i]] += t[i];
    });
  }
  return diag;
}
