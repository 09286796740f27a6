/**
 * How much work a task is, before it runs: counts of three kinds of work that take time at
 * different rates, which the edge turns into seconds with rates measured on the machine
 * (src/cost.ts; how they were measured: docs/admission.md). Each estimate walks the same loops
 * as the method it prices, over layer sizes alone (microseconds, nothing allocated):
 *
 * - `flops`: floating-point operations inside BLAS/LAPACK kernels, counted call by call as the
 *   kernels count them (linalg/flops.ts: a GEMM of m × n × k is 2mnk, a SYRK n²k, dpotrf n³/3),
 *   which run near the kernels' peak when the operands are large. For the direct methods this is
 *   exactly what the calls will add up to (test/core/flops.test.ts counts them one by one); for
 *   Lanczos and CG, `workBound` has every product up to maxIterations. The same count is what a
 *   job's progress is measured against (the worker adds up each call's flops, src/worker.ts);
 * - `elements`: array elements touched outside the kernels' arithmetic: JavaScript loops
 *   (scatters, Khatri–Rao rows, packing, scaling, activations), zeroing new arrays, and each
 *   kernel call's operands read and written (m·k + k·n + m·n), which is what a thin GEMM
 *   (1-965-1: n = 3 columns) costs, since it is bound by memory rather than by arithmetic;
 * - `calls`: fixed costs per kernel call, array allocation and block pair, whatever its size,
 *   which is what a deep narrow network costs (1,000 layers of width 1: half a million block
 *   pairs of a few calls each, at N = 1).
 *
 * The three are kept apart so that the rates stay few and measurable, and so that a refusal can
 * say which one is large. `perPoint` is the share of the work that grows with the data points N
 * (the rest is fixed by the network: its depth, its W² answer): a refusal advises fewer data
 * points only where that share dominates.
 */
import { FLOPS } from './linalg/flops.ts';
import type { LayerSize } from './network.ts';

export interface Work {
  readonly flops: number;
  readonly elements: number;
  readonly calls: number;
}

export const NO_WORK: Work = { flops: 0, elements: 0, calls: 0 };

/**
 * Elements an activation's h, h′ and h″ cost per unit and point, relative to one array element
 * touched (tanh, erf and exp are tens of nanoseconds, a multiply-add about one).
 */
const ACTIVATION_ELEMENTS = 12;
/** Elements a loss head costs per point beyond its K² entries (a function call and its locals). */
const HEAD_ELEMENTS = 20;
/** Calls one block pair (l, m) of the curvature costs beyond its kernel calls: allocations, closures, plan checks. */
const BLOCK_CALLS = 4;

/** A running total of work; methods add to it as their loops would run. */
export class WorkMeter {
  flops = 0;
  elements = 0;
  calls = 0;

  /** One GEMM of m × n × k, `times` over. */
  gemm(m: number, n: number, k: number, times = 1): this {
    if (m <= 0 || n <= 0 || k <= 0 || times <= 0) { this.calls += Math.max(0, times); return this; }
    return this.kernel(FLOPS.gemm(m, n, k), m * k + k * n + m * n, times);
  }

  /** One SYRK of an n × n triangle from n × k, `times` over. */
  syrk(n: number, k: number, times = 1): this {
    return this.kernel(FLOPS.syrk(n, k), n * k + (n * n) / 2, times);
  }

  /** One SYMM of a symmetric order-m matrix with m × n, `times` over. */
  symm(m: number, n: number, times = 1): this {
    return this.kernel(FLOPS.symm(m, n), m * m + 2 * m * n, times);
  }

  /** One TRSM of a triangular order-m matrix against m × n, `times` over. */
  trsm(m: number, n: number, times = 1): this {
    return this.kernel(FLOPS.trsm(m, n), m * m + m * n, times);
  }

  potrf(n: number, times = 1): this {
    return this.kernel(FLOPS.potrf(n), n * n, times);
  }

  potri(n: number, times = 1): this {
    return this.kernel(FLOPS.potri(n), n * n, times);
  }

  potrs(n: number, nrhs: number, times = 1): this {
    return this.kernel(FLOPS.potrs(n, nrhs), n * n + n * nrhs, times);
  }

  /** A symmetric eigen-decomposition of order n with `vectors` eigenvectors (half its reduction in BLAS-2, hence the elements). */
  syevr(n: number, vectors: number, times = 1): this {
    return this.kernel(FLOPS.syevr(n, vectors), 4 * n * n + (n * n * n) / 8, times);
  }

  /** A kernel call of `flops` over `elements` operands (the kernels above; a sum of several calls' flops, as one). */
  kernel(flops: number, elements: number, times = 1): this {
    this.flops += flops * times;
    this.elements += elements * times;
    this.calls += times;
    return this;
  }

  /** `elements` array elements touched in JavaScript (or zeroed when allocated). */
  touch(elements: number): this {
    this.elements += elements;
    return this;
  }

  /** Fixed-cost calls (allocations, function calls, block pairs). */
  call(times = 1): this {
    this.calls += times;
    return this;
  }

  add(w: Work, times = 1): this {
    this.flops += w.flops * times;
    this.elements += w.elements * times;
    this.calls += w.calls * times;
    return this;
  }

  work(): Work {
    return { flops: this.flops, elements: this.elements, calls: this.calls };
  }
}

type Sizes = readonly Required<LayerSize>[];
const aug = (l: Required<LayerSize>): number => l.in + (l.hasBias ? 1 : 0);
const paramsOf = (l: Required<LayerSize>): number => l.out * aug(l);

/** The lowest selected layer (the layers' count when none is). */
export function lowestSelected(layers: Sizes): number {
  const l = layers.findIndex((x) => x.selected);
  return l < 0 ? layers.length : l;
}

/**
 * A loop over n points in chunks of `chunk`, `per(points)` the work of one chunk: its elements
 * and calls once per chunk, its flops those of all n points at once (every per-point kernel is
 * linear in the points, so the last, shorter chunk is counted as it is).
 */
export function chunkedWork(n: number, chunk: number, per: (points: number) => WorkMeter): Work {
  const chunks = Math.ceil(n / Math.max(1, chunk));
  const one = per(Math.min(chunk, n)).work();
  return { flops: chunks > 1 ? per(n).flops : one.flops, elements: one.elements * chunks, calls: one.calls * chunks };
}

/** The forward pass over n points: a GEMM per layer, the bias rows, the activations with h′ and h″. */
export function forwardWork(layers: Sizes, n: number, meter = new WorkMeter()): WorkMeter {
  for (const l of layers) {
    meter.gemm(n, l.out, l.in).touch(n * l.out * (4 + ACTIVATION_ELEMENTS)).call(4);
  }
  return meter;
}

/** The backward pass (the deltas of every layer) over n points, after a forward pass. */
export function backwardWork(layers: Sizes, n: number, meter = new WorkMeter()): WorkMeter {
  const k = layers[layers.length - 1]?.out ?? 0;
  meter.touch(n * (k + HEAD_ELEMENTS)).call(1);
  for (let l = layers.length - 1; l > 0; l--) meter.gemm(n, layers[l].in, layers[l].out).touch(3 * n * layers[l].in).call(2);
  return meter;
}

/**
 * Per-point output matrices (c × K × K) from the loss head; `head`: the head makes them by a K × K
 * GEMM per point (sum-of-squares on softmax outputs, losses.ts), elsewhere by loops.
 */
export function outputMatricesWork(k: number, c: number, meter: WorkMeter, head = false): WorkMeter {
  meter.touch(c * (2 * k * k + HEAD_ELEMENTS)).call(1);
  return head ? meter.gemm(k, k, k, c) : meter;
}

/** One batched pull-back of c·r rows through layer m + 1 (a GEMM and the h′ scaling). */
export function pullBackWork(layers: Sizes, m: number, c: number, r: number, meter: WorkMeter): WorkMeter {
  const next = layers[m + 1];
  return meter.gemm(c * r, next.in, next.out).touch(2 * c * r * next.in).call(1);
}

/** A^{l,l} for the layers ≥ lowest over c points (selfCurvatures in hessian.ts). */
export function selfCurvaturesWork(layers: Sizes, c: number, lowest: number, meter: WorkMeter, head = false): WorkMeter {
  const L = layers.length;
  outputMatricesWork(layers[L - 1].out, c, meter, head);
  for (let l = L - 2; l >= lowest; l--) {
    const w = layers[l].out, outNext = layers[l + 1].out;
    pullBackWork(layers, l, c, outNext, meter);
    meter.touch(2 * c * w * outNext).call(1); // the transpose
    pullBackWork(layers, l, c, w, meter);
    meter.touch(c * w);
  }
  return meter;
}

/** Which blocks (l, m), l ≥ m, are needed (hessian.ts's BlockFilter). */
export type BlockNeed = (l: number, m: number) => boolean;

export interface CurvaturePlanSizes {
  readonly chunk: number;
  readonly chunked: boolean;
  readonly lowest: number;
}

/**
 * The exact or outer-product curvature blocks `need` picks (addCurvature in hessian.ts), over n
 * points in chunks of `plan.chunk`: per chunk the self curvatures, every layer input, and per
 * block pair its pull-backs, Khatri–Rao rows, product GEMM and (exact) cross term; each block
 * scattered once (the cross terms per chunk); `answerDoubles` zeroed, symmetrised and checked.
 */
export function curvatureWork(layers: Sizes, n: number, exact: boolean, need: BlockNeed, plan: CurvaturePlanSizes, answerDoubles: number, full: boolean, head = false): Work {
  const meter = new WorkMeter();
  const L = layers.length;
  forwardWork(layers, n, meter);
  if (exact) backwardWork(layers, n, meter);
  meter.touch(2 * answerDoubles).call(1);
  if (plan.lowest >= L) return meter.work();
  const scatter = new WorkMeter();
  const perChunk = (c: number): WorkMeter => {
  const per = new WorkMeter();
  scatter.flops = scatter.elements = scatter.calls = 0;
  selfCurvaturesWork(layers, c, plan.lowest, per, head);
  for (let l = plan.lowest; l < L; l++) per.touch(c * aug(layers[l])).call(1);
  for (let l = plan.lowest; l < L; l++) {
    const ll = layers[l];
    let low = l + 1;
    for (let m = plan.lowest; m <= l; m++) if (need(l, m)) { low = m; break; }
    if (low > l) continue;
    const aL = aug(ll);
    if (need(l, l)) {
      const packed = (ll.out * (ll.out + 1)) / 2, pairs = (aL * (aL + 1)) / 2;
      per.touch(2 * c * packed + 2 * c * pairs).gemm(packed, pairs, c).call(BLOCK_CALLS);
      scatter.touch(3 * paramsOf(ll) * paramsOf(ll)).call(1);
    }
    for (let m = l - 1; m >= low; m--) {
      const lm = layers[m];
      const aM = aug(lm);
      pullBackWork(layers, m, c, ll.out, per);
      if (exact) {
        // S_{l,l−1} = diag(h′) is held densely only for the layers further down
        if (m === l - 1) { if (m > low) per.touch(2 * c * ll.in * lm.out).call(1); } else pullBackWork(layers, m, c, ll.in, per);
      }
      per.call(BLOCK_CALLS);
      if (!need(l, m)) continue;
      per.touch(c * aL * aM).gemm(ll.out * lm.out, aL * aM, c).call(2);
      scatter.touch(2 * paramsOf(ll) * paramsOf(lm)).call(1);
      if (exact) {
        // the cross term: its Khatri–Rao rows, one GEMM (in_l rows for m = l − 1, where S is diagonal; in_l·out_m below) and a scatter of in_l·out_m × out_l·aug_m, every chunk
        per.touch(c * ll.out * aM + 2 * ll.in * lm.out * ll.out * aM).gemm(m === l - 1 ? ll.in : ll.in * lm.out, ll.out * aM, c).call(2);
      }
    }
  }
  return per;
  };
  meter.add(chunkedWork(n, plan.chunk, perChunk)).add(scatter.work());
  if (full) meter.touch(answerDoubles); // symmetrizeBlocks: W²/2 reads and writes
  return meter.work();
}

/** The exact (or outer-product) diagonal over n points in chunks (hessianDiagonal in hessian.ts). */
export function diagonalWork(layers: Sizes, n: number, exact: boolean, chunk: number, lowest: number, head = false): Work {
  const meter = forwardWork(layers, n);
  if (exact) backwardWork(layers, n, meter);
  if (lowest >= layers.length) return meter.work();
  return meter.add(chunkedWork(n, chunk, (c) => {
    const per = selfCurvaturesWork(layers, c, lowest, new WorkMeter(), head);
    for (const l of layers) if (l.selected) per.touch(c * l.out + 3 * c * aug(l) + 2 * l.out * aug(l)).gemm(l.out, aug(l), c).call(3);
    return per;
  })).work();
}

/** Becker–LeCun's diagonal over n points (diagonalApproximation). */
export function diagonalApproximationWork(layers: Sizes, n: number, head = false): Work {
  const meter = forwardWork(layers, n);
  backwardWork(layers, n, meter);
  const k = layers[layers.length - 1]?.out ?? 0;
  outputMatricesWork(k, n, meter, head).touch(n * k);
  // from the output down to the lowest selected layer: the squared inputs against the second
  // derivatives where selected, and those pulled back below every layer but the lowest; the squares
  // by typed-array map (a closure call per element: tens of elements' time each, measured)
  const lowest = lowestSelected(layers);
  for (let i = layers.length - 1; i >= lowest; i--) {
    const l = layers[i];
    if (l.selected) meter.gemm(l.out, l.in, n);
    if (i !== lowest) meter.gemm(n, l.in, l.out);
    meter.touch(30 * n * l.in + 6 * n * l.in + n * l.out + 30 * l.out * l.in).call(6);
  }
  return meter.work();
}

/** The gradient over n points (forward, backward, a GEMM per layer). */
export function gradientWork(layers: Sizes, n: number): Work {
  const meter = forwardWork(layers, n);
  backwardWork(layers, n, meter);
  for (const l of layers) if (l.selected) meter.gemm(l.out, l.in, n).touch(n * l.out).call(2);
  return meter.work();
}

/** The input Jacobian over n points in chunks: the output Jacobians pulled back through every layer. */
export function inputJacobianWork(layers: Sizes, n: number, chunk: number): Work {
  const meter = forwardWork(layers, n);
  const L = layers.length, k = layers[L - 1].out, d = layers[0].in;
  return meter.add(chunkedWork(n, chunk, (c) => {
    const per = outputMatricesWork(k, c, new WorkMeter());
    for (let m = L - 2; m >= 0; m--) pullBackWork(layers, m, c, k, per);
    return per.gemm(c * k, d, layers[0].out);
  })).touch(n * k * d).work();
}

/** The rows of ∂a_out/∂w (or ∂y/∂w) for n points (jacobianRows): pull-backs and a scatter per selected layer, into c·K × W. */
export function jacobianRowsWork(layers: Sizes, n: number, rows: number, w: number, meter: WorkMeter): WorkMeter {
  const L = layers.length;
  let lowest = layers.findIndex((l) => l.selected);
  if (lowest < 0) lowest = L;
  outputMatricesWork(layers[L - 1].out, n, meter);
  for (let m = L - 1; m >= lowest; m--) {
    if (m < L - 1) pullBackWork(layers, m, n, rows / Math.max(1, n), meter);
    const l = layers[m];
    if (l.selected) meter.touch(3 * rows * l.out * aug(l) + n * aug(l) + l.out * aug(l)).call(3);
  }
  return meter.touch(rows * w);
}

/** The parameter Jacobian over n points: N·K × W rows. */
export function parameterJacobianWork(layers: Sizes, n: number, w: number): Work {
  const meter = forwardWork(layers, n);
  const k = layers[layers.length - 1].out;
  return jacobianRowsWork(layers, n, n * k, w, meter).work();
}

/**
 * One applyMany of m directions of the R-operator (r-operator.ts) that start at layer `from` and
 * are non-zero in the layers `touched`: per layer the forward GEMMs (V z where touched, W R{z} above
 * the first), the output's per-point GEMMs (for K, m ≥ 8), the backward GEMMs (and Vᵀδ where
 * touched, for the exact Hessian) and the result's (and δ R{z}ᵀ above the first, exact); the
 * loops around them over n·m rows.
 */
export function applyWork(layers: Sizes, n: number, m: number, exact: boolean, from: number, touched: (l: number) => boolean, meter = new WorkMeter()): WorkMeter {
  const L = layers.length;
  const lowest = lowestSelected(layers);
  if (lowest === L || m === 0) return meter;
  const start = Math.max(from, lowest);
  const k = layers[L - 1].out;
  const has = (l: number) => l >= start && layers[l].selected && touched(l);
  const forward = (l: number) => meter.gemm(n * m, layers[l].out, layers[l].in);
  const back = (l: number) => meter.gemm(n * m, layers[l].in, layers[l].out);
  const result = (l: number) => meter.gemm(layers[l].out, layers[l].in, n * m);
  meter.touch(2 * n * m * k * k).call(2);
  for (let l = start; l < L; l++) {
    if (has(l)) forward(l);
    if (l > start) forward(l);
    meter.touch(4 * n * m * (layers[l].out + layers[l].in)).call(3);
  }
  if (k >= 8 && m >= 8) meter.gemm(m, k, k, n);
  for (let l = L - 1; l > lowest; l--) {
    back(l);
    if (exact && has(l)) back(l);
  }
  for (let l = lowest; l < L; l++) {
    meter.touch(4 * n * m * (layers[l].out + layers[l].in)).call(3);
    if (!layers[l].selected) continue;
    result(l);
    if (exact && l > start) result(l);
  }
  return meter;
}

/** Building the curvature operator (r-operator.ts curvatureOperator): its forward and backward passes and the output curvatures. */
export function operatorWork(layers: Sizes, n: number, head = false, meter = new WorkMeter()): WorkMeter {
  forwardWork(layers, n, meter);
  backwardWork(layers, n, meter);
  return outputMatricesWork(layers[layers.length - 1].out, n, meter, head);
}

/** Building the curvature operator and applying it `products` times to one general vector each (every selected layer touched). */
export function curvatureOperatorWork(layers: Sizes, n: number, w: number, products: number, exact = true, head = false): Work {
  const meter = operatorWork(layers, n, head);
  const apply = applyWork(layers, n, 1, exact, 0, () => true).touch(2 * w);
  return meter.add(apply.work(), products).work();
}

/** The Woodbury inverse: the Jacobian rows of each chunk, then per block of kMax rows a SYMM, GEMM, POTRF, TRSM and SYRK on W × W. */
export function woodburyWork(layers: Sizes, n: number, w: number, k: number, chunk: number, kMax: number): Work {
  const meter = forwardWork(layers, n);
  meter.touch(2 * w * w).call(1);
  meter.add(chunkedWork(n, chunk, (c) => jacobianRowsWork(layers, c, c * k, w, new WorkMeter())));
  // whole blocks of kMax rows (every chunk holds whole blocks: inverse.ts woodburyPlan), the last one shorter;
  // symm and syrk each read M (W × W): the blocks are bound by that traffic for small K
  const rows = n * k;
  const block = (b: number, times: number) => {
    if (b > 0 && times > 0) meter.symm(w, b, times).gemm(b, b, w, times).potrf(b, times).trsm(b, w, times).syrk(w, b, times);
  };
  block(kMax, Math.floor(rows / kMax));
  block(rows % kMax, 1);
  return meter.touch(w * w).work();
}

/** Cholesky's factorisation and inverse of W × W (dpotrf + dpotri, W³ flops) and the symmetrising around them. */
export function choleskyWork(w: number): Work {
  // the factor's and the inverse's operands, then the symmetrising
  return new WorkMeter().potrf(w).potri(w).touch(2 * w * w + 3 * w * w).work();
}

/** A symmetric eigen-decomposition of n × n (syevr): the tridiagonal reduction (4n³/3, half of it in BLAS-2) and the back-transformation of `vectors` vectors. */
export function eigenWork(n: number, vectors: number): Work {
  return new WorkMeter().syevr(n, vectors).touch(2 * n * n).work();
}

/** The dense solver's k eigenpairs of W × W (eigen.ts denseEigen): one index range (two for 'magnitude', unless 2k ≥ W) and the residuals' GEMM. */
export function denseEigenWork(w: number, k: number, which: string): Work {
  const meter = new WorkMeter().gemm(w, k, w);
  const ranges = which === 'magnitude' ? (2 * k >= w ? [w] : [k, k]) : [k];
  for (const m of ranges) meter.add(eigenWork(w, m));
  return meter.work();
}

/** KFAC's factors over n points in chunks: the self curvatures summed per layer and A = Z̃ᵀZ̃/N by SYRK. */
export function kfacFactorsWork(layers: Sizes, n: number, chunk: number, lowest: number, head = false): Work {
  const meter = forwardWork(layers, n);
  if (lowest >= layers.length) return meter.work();
  meter.add(chunkedWork(n, chunk, (c) => {
    const per = selfCurvaturesWork(layers, c, lowest, new WorkMeter(), head);
    for (const l of layers) if (l.selected) per.touch(c * l.out * l.out);
    return per;
  }));
  for (const l of layers) if (l.selected) meter.syrk(aug(l), n).touch(n * aug(l) + 2 * aug(l) * aug(l) + 2 * l.out * l.out).call(3);
  return meter.work();
}

/** The factors' eigen-decompositions. */
export function kfacEigenWork(layers: Sizes): Work {
  const meter = new WorkMeter();
  for (const l of layers) if (l.selected) meter.add(eigenWork(aug(l), aug(l))).add(eigenWork(l.out, l.out));
  return meter.work();
}

/**
 * Solving the KFAC matrix for m vectors (kfacSolve: into the factors' eigenbases and back, per
 * layer and vector two products each side of out × aug) or, `apply`, multiplying by it (kfacApply:
 * one product each side).
 */
export function kfacSolveWork(layers: Sizes, m: number, apply = false): Work {
  const meter = new WorkMeter();
  const times = apply ? m : 2 * m;
  for (const l of layers) if (l.selected) meter.gemm(l.out, aug(l), l.out, times).gemm(l.out, aug(l), aug(l), times).touch(3 * times * l.out * aug(l)).call(2 * times);
  return meter.work();
}

/**
 * Thick-restart Lanczos (eigen.ts lanczosEigen) for k pairs in a basis of `basis` vectors,
 * `iterations` products: the operator built once; per product H v and two passes of
 * Gram–Schmidt against the basis (two GEMMs of 1 × basis × W each); per restart (every basis/2
 * products) T's eigenpairs and the Ritz vectors (a basis × W × basis GEMM); the k residuals' products
 * at the end. With W within the basis, H's columns by W products of unit vectors (each touching one
 * layer) and the dense solver instead.
 */
export function lanczosWork(layers: Sizes, n: number, w: number, exact: boolean, k: number, which: string, basis: number, iterations: number, head = false): Work {
  const m = Math.min(w, Math.max(k + 2, basis));
  const meter = operatorWork(layers, n, head);
  if (m >= w) {
    layers.forEach((l, i) => {
      if (l.selected) meter.add(applyWork(layers, n, 1, exact, 0, (j) => j === i).touch(w).work(), paramsOf(l));
    });
    return meter.add(denseEigenWork(w, k, which)).work();
  }
  const restarts = Math.ceil(iterations / Math.max(1, Math.floor(m / 2)));
  meter.add(applyWork(layers, n, 1, exact, 0, () => true).touch(2 * w).work(), iterations + k);
  meter.gemm(1, m, w, 4 * iterations);
  meter.add(eigenWork(m, m), restarts).gemm(m, w, m, restarts).touch(2 * m * w * restarts);
  return meter.work();
}

/** Work that grows with the data points: `at(n) − at(1)`, as a share of at(n) in seconds by `seconds`. */
export function perPointShare(atN: Work, atOne: Work, seconds: (w: Work) => number): number {
  const total = seconds(atN);
  if (!(total > 0)) return 0;
  return Math.max(0, Math.min(1, (total - seconds(atOne)) / total));
}

/**
 * Per unit of curvatureForm's prices (hessian.ts), in this module's counts: its moved doubles are
 * elements; its doubles through in-cache loops are cheaper, by its own ratio of the two rates
 * (1.5e8 against 1e9 a second); a layer step (2e-5 s there) is a few kernel calls, loops and
 * allocations, counted as STACK_STEP_CALLS calls (at the calibrated 5e-7 s a call, src/cost.ts).
 * The columns form's layer steps were measured heavier than that price (which only has to rank
 * the forms), and in proportion to the depth rather than to the batches: 300, 1,000 and 2,000 tanh
 * layers of width 1 at N = 1 (W = D = 600, 2,000, 4,000; 1, 1 and 4 batches) took 0.42, 1.7 and
 * 2.4 s here at load 10–12 (about 3x the unloaded times), ≈ 0.15 ms unloaded per step of 3L, so
 * each of the 3L steps over all W directions counts COLUMNS_STEP_CALLS (1.5e-4 s), pro rata for
 * fewer directions, beside STACK_STEP_CALLS per batch.
 */
const CACHED_ELEMENT = 0.15;
const STACK_STEP_CALLS = 40;
const COLUMNS_STEP_CALLS = 300;

/** What of a curvature matrix is computed: all of it, the selected layers' own blocks, or rows start … end − 1. */
export type CurvatureTarget = 'matrix' | 'blocks' | readonly [number, number];

/**
 * The outer product (or, with `exactStack`, the exact Hessian) in the stack form (stack.ts), over
 * n points in `chunks` chunks: the rows U = C_n B_n (N·K of them pulled back through the layers,
 * jacobianRowsWork), H = UᵀU by syrk (or its blocks, or a slab of rows by GEMM), mirrored;
 * for the exact Hessian (the whole matrix only) the output's curvature and Gauss–Newton matrices,
 * per layer below the top its rows V_l, d_l V_lᵀ D V_l and its rows against the layers below, the
 * layer's own block and the cross terms with layer l − 1 and below, and the L(L+1)/2 pull-back
 * steps per chunk (curvatureForm's 'stack' and 'exact stack').
 */
export function stackWork(layers: Sizes, n: number, w: number, chunks: number, exactStack?: 'canonical' | 'residual', target: CurvatureTarget = 'matrix', head = false): Work {
  const meter = forwardWork(layers, n);
  const L = layers.length;
  const k = layers[L - 1]?.out ?? 0;
  let units = 0;
  for (const l of layers) units += l.out;
  jacobianRowsWork(layers, n, n * k, w, meter);
  const rowsElements = n * k * (w + units) + w * w;
  if (target === 'matrix') meter.kernel(FLOPS.syrk(w, n * k), rowsElements);
  else if (target === 'blocks') { for (const l of layers) if (l.selected) meter.kernel(FLOPS.syrk(paramsOf(l), n * k), rowsElements / L); }
  else meter.kernel(FLOPS.gemm(target[1] - target[0], w, n * k), rowsElements);
  // H zeroed (twice where the exact form makes its own), written, mirrored, checked finite
  meter.call(chunks).touch((exactStack ? 4 : 3) * w * w).call(2);
  if (exactStack && target === 'matrix') {
    backwardWork(layers, n, meter);
    if (head) meter.gemm(k, k, k, 2 * n);
    const lowest = lowestSelected(layers);
    const below: number[] = [];
    let acc = 0;
    for (const l of layers) { below.push(acc); if (l.selected) acc += paramsOf(l); }
    const hasD = (l: number) => l >= lowest && (l < L - 1 || exactStack === 'residual');
    const hasV = layers.map((_, l) => l > lowest && below[l] > 0 && (hasD(l) || (l + 1 < L && layers[l + 1].selected)));
    // the rows V_l of the layers below each layer l that needs them, pulled back from l
    for (let l = lowest + 1; l < L; l++) if (hasV[l]) for (let m = l - 1; m >= lowest; m--) pullBackWork(layers, m, n, layers[l].out, meter);
    for (let l = lowest; l < L; l++) {
      const layer = layers[l];
      const o = layer.out, a = aug(layer), wl = below[l], own = paramsOf(layer);
      if (hasD(l)) {
        // d_l V_lᵀ D V_l, its rows against the layer's own parameters, and the own block's d z zᵀ
        const flops = (hasV[l] ? 2 * wl * wl * n * o : 0) + (layer.selected ? o * ((hasV[l] ? 2 * layer.in * wl * n + (layer.hasBias ? 2 * wl * n : 0) : 0) + 2 * a * a * n) : 0);
        meter.kernel(flops, 3 * n * o * (wl + (layer.selected ? a : 0))).call(chunks);
      }
      if (l > lowest && layer.selected) {
        // the cross terms on layer l − 1 (its own parameters) and on the layers below it (through V_{l−1})
        let flops = 0;
        if (layers[l - 1].selected) flops += 2 * o * layer.in * aug(layers[l - 1]) * n;
        if (hasV[l - 1] && below[l - 1] > 0) flops += layer.in * 2 * o * below[l - 1] * n;
        meter.kernel(flops, n * own).call(chunks);
      }
    }
    meter.call(chunks * ((L * (L + 1)) / 2) * STACK_STEP_CALLS);
  }
  return meter.work();
}

/**
 * Rows of the exact or outer-product Hessian by the batched R-operator (columns.ts), for each of
 * `ranges` (rows start … end − 1; the blocks are one range per layer): the operator built per
 * range, then `batch` directions at a time one applyMany from the batch's first layer, touching the
 * layers the batch spans; N·Σ(2 out_l + 2 in_l) doubles per direction through in-cache loops three
 * times, the rows through a few passes, and 3L layer steps (curvatureForm's 'columns'; their
 * measured weight above).
 */
export function columnsWork(layers: Sizes, n: number, w: number, ranges: readonly (readonly [number, number])[], batch: number, exact: boolean, head = false): Work {
  const meter = new WorkMeter();
  const offsets: number[] = [];
  let at = 0;
  for (const l of layers) { offsets.push(l.selected ? at : -1); if (l.selected) at += paramsOf(l); }
  const m = Math.max(1, batch);
  let through = 0, directions = 0, batches = 0;
  for (const l of layers) through += 2 * l.out + 2 * l.in;
  for (const [start, end] of ranges) {
    operatorWork(layers, n, head, meter);
    for (let j0 = start; j0 < end; j0 += m) {
      const c = Math.min(m, end - j0);
      const from = layers.findIndex((l, i) => offsets[i] >= 0 && j0 < offsets[i] + paramsOf(l));
      const spans = (i: number) => offsets[i] >= 0 && offsets[i] < j0 + c && offsets[i] + paramsOf(layers[i]) > j0;
      const apply = applyWork(layers, n, c, exact, from, spans);
      meter.kernel(apply.flops, 0);
      batches++;
    }
    directions += end - start;
  }
  meter.touch(CACHED_ELEMENT * 3 * n * directions * through + 6 * directions * w);
  meter.call(3 * layers.length * (batches * STACK_STEP_CALLS + (COLUMNS_STEP_CALLS * directions) / Math.max(1, w)));
  return meter.work();
}
