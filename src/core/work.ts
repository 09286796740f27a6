/**
 * How much work a task is, before it runs: counts of three kinds of work that take time at
 * different rates, which the edge turns into seconds with rates measured on the machine
 * (src/cost.ts; how they were measured: docs/admission.md). Each estimate walks the same loops
 * as the method it prices, over layer sizes alone (microseconds, nothing allocated):
 *
 * - `flops`: floating-point operations inside BLAS/LAPACK kernels (a GEMM of m × n × k is
 *   2mnk), which run near the kernels' peak when the operands are large;
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

  /** One GEMM (or SYMM, SYRK-like kernel) of m × n × k, `times` over. */
  gemm(m: number, n: number, k: number, times = 1): this {
    if (m <= 0 || n <= 0 || k <= 0 || times <= 0) { this.calls += times; return this; }
    this.flops += 2 * m * n * k * times;
    this.elements += (m * k + k * n + m * n) * times;
    this.calls += times;
    return this;
  }

  /** A kernel of `flops` over `elements` operands (LAPACK factorisations). */
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

/** Per-point output matrices (c × K × K) from the loss head. */
export function outputMatricesWork(k: number, c: number, meter: WorkMeter): WorkMeter {
  return meter.touch(c * (2 * k * k + HEAD_ELEMENTS)).call(1);
}

/** One batched pull-back of c·r rows through layer m + 1 (a GEMM and the h′ scaling). */
export function pullBackWork(layers: Sizes, m: number, c: number, r: number, meter: WorkMeter): WorkMeter {
  const next = layers[m + 1];
  return meter.gemm(c * r, next.in, next.out).touch(2 * c * r * next.in).call(1);
}

/** A^{l,l} for the layers ≥ lowest over c points (selfCurvatures in hessian.ts). */
export function selfCurvaturesWork(layers: Sizes, c: number, lowest: number, meter: WorkMeter): WorkMeter {
  const L = layers.length;
  outputMatricesWork(layers[L - 1].out, c, meter);
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
export function curvatureWork(layers: Sizes, n: number, exact: boolean, need: BlockNeed, plan: CurvaturePlanSizes, answerDoubles: number, full: boolean): Work {
  const meter = new WorkMeter();
  const L = layers.length;
  forwardWork(layers, n, meter);
  if (exact) backwardWork(layers, n, meter);
  meter.touch(2 * answerDoubles).call(1);
  if (plan.lowest >= L) return meter.work();
  const chunks = Math.ceil(n / plan.chunk);
  const per = new WorkMeter();
  const scatter = new WorkMeter();
  const c = Math.min(plan.chunk, n);
  selfCurvaturesWork(layers, c, plan.lowest, per);
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
        if (m === l - 1) per.touch(2 * c * ll.in * lm.out).call(1);
        else pullBackWork(layers, m, c, ll.in, per);
      }
      per.call(BLOCK_CALLS);
      if (!need(l, m)) continue;
      per.touch(c * aL * aM).gemm(ll.out * lm.out, aL * aM, c).call(2);
      scatter.touch(2 * paramsOf(ll) * paramsOf(lm)).call(1);
      if (exact) {
        // the cross term: its Khatri–Rao rows, one GEMM and a scatter of in_l·out_m × out_l·aug_m, every chunk
        per.touch(c * ll.out * aM + 2 * ll.in * lm.out * ll.out * aM).gemm(ll.in * lm.out, ll.out * aM, c).call(2);
      }
    }
  }
  meter.add(per.work(), chunks).add(scatter.work());
  if (full) meter.touch(answerDoubles); // symmetrizeBlocks: W²/2 reads and writes
  return meter.work();
}

/** The exact (or outer-product) diagonal over n points in chunks (hessianDiagonal in hessian.ts). */
export function diagonalWork(layers: Sizes, n: number, exact: boolean, chunk: number, lowest: number): Work {
  const meter = forwardWork(layers, n);
  if (exact) backwardWork(layers, n, meter);
  if (lowest >= layers.length) return meter.work();
  const c = Math.min(chunk, n);
  const per = selfCurvaturesWork(layers, c, lowest, new WorkMeter());
  for (const l of layers) if (l.selected) per.touch(c * l.out + 3 * c * aug(l) + 2 * l.out * aug(l)).gemm(l.out, aug(l), c).call(3);
  return meter.add(per.work(), Math.ceil(n / chunk)).work();
}

/** Becker–LeCun's diagonal over n points (diagonalApproximation). */
export function diagonalApproximationWork(layers: Sizes, n: number): Work {
  const meter = forwardWork(layers, n);
  backwardWork(layers, n, meter);
  const k = layers[layers.length - 1]?.out ?? 0;
  outputMatricesWork(k, n, meter).touch(n * k);
  // the squares by typed-array map (a closure call per element: tens of elements' time each, measured)
  for (const l of layers) meter.gemm(l.out, l.in, n).gemm(n, l.in, l.out).touch(30 * n * l.in + 6 * n * l.in + n * l.out + 30 * l.out * l.in).call(6);
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
  const c = Math.min(chunk, n);
  const per = outputMatricesWork(k, c, new WorkMeter());
  for (let m = L - 2; m >= 0; m--) pullBackWork(layers, m, c, k, per);
  per.gemm(c * k, d, layers[0].out);
  return meter.add(per.work(), Math.ceil(n / chunk)).touch(n * k * d).work();
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

/** Building the curvature operator (passes, output curvatures) and applying it `products` times (the R-operator). */
export function curvatureOperatorWork(layers: Sizes, n: number, w: number, products: number): Work {
  const meter = forwardWork(layers, n);
  backwardWork(layers, n, meter);
  const k = layers[layers.length - 1].out;
  outputMatricesWork(k, n, meter);
  const apply = new WorkMeter().touch(2 * n * k * k + 2 * w).call(2);
  for (const l of layers) {
    apply.gemm(n, l.out, l.in, 2).gemm(n, l.in, l.out, 2).gemm(l.out, l.in, n, 2).touch(8 * n * (l.out + l.in)).call(6);
  }
  return meter.add(apply.work(), products).work();
}

/** The Woodbury inverse: the Jacobian rows of each chunk, then per block of kMax rows a SYMM, GEMM, POTRF, TRSM and SYRK on W × W. */
export function woodburyWork(layers: Sizes, n: number, w: number, k: number, chunk: number, kMax: number): Work {
  const meter = forwardWork(layers, n);
  meter.touch(2 * w * w).call(1);
  const chunks = Math.ceil(n / chunk);
  const c = Math.min(chunk, n);
  const rowsMeter = jacobianRowsWork(layers, c, c * k, w, new WorkMeter());
  meter.add(rowsMeter.work(), chunks);
  const blocks = Math.ceil((n * k) / kMax);
  const b = Math.min(kMax, n * k);
  // symm and syrk each read M (W × W): the blocks are bound by that traffic for small K
  meter.gemm(b, w, w, blocks).gemm(b, b, w, blocks).kernel(b * b * b / 3, b * b, blocks).kernel(b * b * w, b * w + b * b, blocks).kernel(b * w * w, w * w / 2 + b * w, blocks);
  return meter.touch(w * w).work();
}

/** Cholesky's factorisation and inverse of W × W (dpotrf + dpotri, W³ flops) and the symmetrising around them. */
export function choleskyWork(w: number): Work {
  return new WorkMeter().kernel(w * w * w, 2 * w * w, 2).touch(3 * w * w).work();
}

/** A symmetric eigen-decomposition of n × n (syevr): the tridiagonal reduction (4n³/3, half of it in BLAS-2) and the back-transformation of `vectors` vectors. */
export function eigenWork(n: number, vectors: number): Work {
  return new WorkMeter().kernel((4 / 3) * n * n * n + 2 * n * n * vectors, 4 * n * n + n * n * n / 8, 1).touch(2 * n * n).work();
}

/** KFAC's factors over n points in chunks: the self curvatures summed per layer and A = Z̃ᵀZ̃/N by SYRK. */
export function kfacFactorsWork(layers: Sizes, n: number, chunk: number, lowest: number): Work {
  const meter = forwardWork(layers, n);
  if (lowest >= layers.length) return meter.work();
  const c = Math.min(chunk, n);
  const per = selfCurvaturesWork(layers, c, lowest, new WorkMeter());
  for (const l of layers) if (l.selected) per.touch(c * l.out * l.out);
  meter.add(per.work(), Math.ceil(n / chunk));
  for (const l of layers) if (l.selected) meter.gemm(aug(l), aug(l), n).touch(n * aug(l) + 2 * aug(l) * aug(l) + 2 * l.out * l.out).call(3);
  return meter.work();
}

/** The factors' eigen-decompositions. */
export function kfacEigenWork(layers: Sizes): Work {
  const meter = new WorkMeter();
  for (const l of layers) if (l.selected) meter.add(eigenWork(aug(l), aug(l))).add(eigenWork(l.out, l.out));
  return meter.work();
}

/** Solving (or applying) the KFAC matrix for m vectors: per layer and vector two products each side of out × aug. */
export function kfacSolveWork(layers: Sizes, m: number): Work {
  const meter = new WorkMeter();
  for (const l of layers) if (l.selected) meter.gemm(l.out, aug(l), l.out, 2 * m).gemm(l.out, aug(l), aug(l), 2 * m).touch(6 * m * l.out * aug(l)).call(4 * m);
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

/**
 * The outer product (or, with `exactStack`, the exact Hessian) in the stack form (stack.ts), over
 * n points in `chunks` chunks: the rows U = C_n B_n (N·K of them pulled back through the layers,
 * jacobianRowsWork),
 * H = UᵀU by syrk (N·K·W² flops as a GEMM rate sees it), mirrored; for the exact Hessian per
 * layer with a d_k V_kᵀ D V_k and its rows against the layers below, the cross terms, and the
 * L(L+1)/2 pull-back steps per chunk (curvatureForm's 'stack' and 'exact stack').
 */
export function stackWork(layers: Sizes, n: number, w: number, chunks: number, exactStack?: 'canonical' | 'residual'): Work {
  const meter = forwardWork(layers, n);
  const k = layers[layers.length - 1]?.out ?? 0;
  let units = 0;
  for (const l of layers) units += l.out;
  jacobianRowsWork(layers, n, n * k, w, meter);
  // H zeroed (twice where the exact form makes its own), written by syrk, mirrored, checked finite
  meter.kernel(n * k * w * w, n * k * (w + units) + w * w).call(chunks).touch((exactStack ? 4 : 3) * w * w).call(2);
  if (exactStack) {
    backwardWork(layers, n, meter);
    let below = 0, belowPrevious = 0;
    layers.forEach((l, i) => {
      const wl = paramsOf(l);
      const withD = i < layers.length - 1 || exactStack === 'residual';
      if (withD) meter.kernel(2 * n * l.out * below * below + (l.selected ? 2 * n * wl * below : 0), 3 * n * l.out * below).call(chunks);
      if (l.selected) meter.kernel(2 * n * wl * belowPrevious, n * wl).call(chunks);
      belowPrevious = below;
      if (l.selected) below += wl;
    });
    meter.call(chunks * ((layers.length * (layers.length + 1)) / 2) * STACK_STEP_CALLS);
  }
  return meter.work();
}

/**
 * `directions` rows H e_j of the exact or outer-product Hessian by the batched R-operator
 * (columns.ts), `batch` directions at a time: building the operator (passes, output curvatures),
 * then ≈ 8·N·W flops per direction in GEMMs over the batch, N·Σ(2 out_l + 2 in_l) doubles per
 * direction through in-cache loops three times, the rows through a few passes, and 3L layer steps
 * (curvatureForm's 'columns'; their measured weight above).
 */
export function columnsWork(layers: Sizes, n: number, w: number, directions: number, batch: number): Work {
  const meter = forwardWork(layers, n);
  backwardWork(layers, n, meter);
  outputMatricesWork(layers[layers.length - 1]?.out ?? 0, n, meter);
  let through = 0;
  for (const l of layers) through += 2 * l.out + 2 * l.in;
  const batches = Math.ceil(directions / Math.max(1, batch));
  meter.kernel(8 * n * directions * w, 0).call(batches).touch(CACHED_ELEMENT * 3 * n * directions * through + 6 * directions * w);
  meter.call(3 * layers.length * (batches * STACK_STEP_CALLS + (COLUMNS_STEP_CALLS * directions) / Math.max(1, w)));
  return meter.work();
}
