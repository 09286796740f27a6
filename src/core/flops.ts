/**
 * How many flops a task's kernel calls will do, before it runs: the total against which a job's
 * progress is measured (the worker adds up each call's nominal flops, linalg/flops.ts). Each
 * estimate walks the loops of the method it prices over layer sizes alone (microseconds, nothing
 * allocated) and counts the kernel calls they make, in the same nominal flops (a GEMM of
 * m × n × k is 2mnk, a SYRK n²k, dpotrf n³/3, …). Chunks and tiles do not change a sum over the
 * data, so the estimate needs no chunk sizes; it does follow the cost model's choice of form for
 * a curvature matrix (curvatureForm), whose forms differ by factors.
 *
 * Exact up to what depends on the numbers themselves: whether the exact Hessian's output has a
 * residual term (taken from the pairing), how many passes a Lanczos reorthogonalisation takes
 * (two counted) and when an iterative method stops. For Lanczos and CG the estimate is their bound:
 * every product up to maxIterations; they usually stop sooner, when the tolerance is met.
 */
import { columnsBatch } from './columns.ts';
import { curvatureForm, slabFilter, type BlockFilter } from './hessian.ts';
import { lanczosBasis, EIGEN_DENSE_MAX } from './eigen.ts';
import type { LayerSize } from './network.ts';
import { SOLVE_DENSE_MAX } from './solve.ts';
import { exactStackKind } from './stack.ts';
import type { CurvatureTask, ProblemData } from './tasks.ts';

type Sizes = readonly Required<LayerSize>[];

const aug = (l: Required<LayerSize>): number => l.in + (l.hasBias ? 1 : 0);
const size = (l: Required<LayerSize>): number => l.out * aug(l);

/** Each layer's first parameter index, −1 where it is not selected. */
function offsets(layers: Sizes): number[] {
  let at = 0;
  return layers.map((l) => {
    if (!l.selected) return -1;
    const o = at;
    at += size(l);
    return o;
  });
}

function lowestSelected(layers: Sizes): number {
  const l = layers.findIndex((x) => x.selected);
  return l < 0 ? layers.length : l;
}

function parameters(layers: Sizes): number {
  let w = 0;
  for (const l of layers) if (l.selected) w += size(l);
  return w;
}

/** The forward pass over n points: a GEMM per layer. */
function forwardFlops(layers: Sizes, n: number): number {
  let f = 0;
  for (const l of layers) f += 2 * n * l.out * l.in;
  return f;
}

/** The backward pass: a GEMM per layer above the first. */
function backwardFlops(layers: Sizes, n: number): number {
  let f = 0;
  for (let l = 1; l < layers.length; l++) f += 2 * n * layers[l].in * layers[l].out;
  return f;
}

/** One pull-back of `rows` rows through layer m + 1 (backprop.ts pullBack). */
function pullBackFlops(layers: Sizes, m: number, rows: number): number {
  const next = layers[m + 1];
  return 2 * rows * next.in * next.out;
}

/** A^{l,l} for the layers ≥ lowest over n points (selfCurvatures): the output curvatures, two pull-backs per layer below the output. */
function selfCurvaturesFlops(layers: Sizes, n: number, lowest: number, head: number): number {
  let f = n * head;
  for (let l = layers.length - 2; l >= lowest; l--) f += pullBackFlops(layers, l, n * layers[l + 1].out) + pullBackFlops(layers, l, n * layers[l].out);
  return f;
}

/** Rows of ∂a_top/∂w for n points, r rows a point (jacobianRows): the pull-backs from top down to the lowest selected layer. */
function jacobianRowsFlops(layers: Sizes, n: number, r: number, top = layers.length - 1): number {
  let f = 0;
  for (let m = top - 1; m >= lowestSelected(layers); m--) f += pullBackFlops(layers, m, n * r);
  return f;
}

/** The gradient: forward, backward and a GEMM per selected layer. */
function gradientFlops(layers: Sizes, n: number): number {
  let f = forwardFlops(layers, n) + backwardFlops(layers, n);
  for (const l of layers) if (l.selected) f += 2 * l.out * l.in * n;
  return f;
}

/** Building a curvature operator (r-operator.ts): its forward and backward passes, the output curvatures. */
function operatorFlops(layers: Sizes, n: number, head: number): number {
  return forwardFlops(layers, n) + backwardFlops(layers, n) + n * head;
}

/**
 * One applyMany of m directions starting at layer `from`, whose non-zero slices are in the layers
 * `touched` (r-operator.ts): per layer the forward GEMMs (V z where touched, W R{z} above the
 * first), the output's per-point GEMMs (K, m ≥ 8), the backward GEMMs (and Vᵀδ where touched,
 * exact) and the result's (and δ R{z}ᵀ above the first, exact).
 */
function applyFlops(layers: Sizes, n: number, m: number, exact: boolean, from: number, touched: (l: number) => boolean): number {
  const L = layers.length;
  const lowest = lowestSelected(layers);
  if (lowest === L || m === 0) return 0;
  const start = Math.max(from, lowest);
  const k = layers[L - 1].out;
  let f = 0;
  const gemm = (l: number) => 2 * n * m * layers[l].out * layers[l].in;
  const has = (l: number) => l >= start && layers[l].selected && touched(l);
  for (let l = start; l < L; l++) {
    if (has(l)) f += gemm(l);
    if (l > start) f += gemm(l);
  }
  if (k >= 8 && m >= 8) f += n * 2 * m * k * k;
  for (let l = L - 1; l > lowest; l--) {
    f += gemm(l);
    if (exact && has(l)) f += gemm(l);
  }
  for (let l = lowest; l < L; l++) {
    if (!layers[l].selected) continue;
    f += gemm(l);
    if (exact && l > start) f += gemm(l);
  }
  return f;
}

/** One product H v (or G v) of a general v: every selected layer touched. */
function productFlops(layers: Sizes, n: number, exact: boolean): number {
  return applyFlops(layers, n, 1, exact, 0, () => true);
}

/** Rows start … end − 1 by products, m directions a batch (columns.ts hessianRowsByProducts), with the operator built once. */
function rowsByProductsFlops(layers: Sizes, n: number, exact: boolean, start: number, end: number, head: number): number {
  const w = parameters(layers);
  const at = offsets(layers);
  const m = columnsBatch(layers, n, w);
  let f = operatorFlops(layers, n, head);
  for (let j0 = start; j0 < end; j0 += m) {
    const c = Math.min(m, end - j0);
    const from = layers.findIndex((l, i) => at[i] >= 0 && j0 < at[i] + size(l));
    f += applyFlops(layers, n, c, exact, from, (l) => at[l] < j0 + c && at[l] + size(layers[l]) > j0);
  }
  return f;
}

/** The block form (hessian.ts addCurvature) of the blocks `need` picks. */
function blockFormFlops(layers: Sizes, n: number, exact: boolean, need: BlockFilter, head: number): number {
  const L = layers.length;
  let f = forwardFlops(layers, n) + (exact ? backwardFlops(layers, n) : 0);
  let lowest = L;
  for (let l = 0; l < L; l++) for (let m = 0; m <= l; m++) if (need(l, m)) lowest = Math.min(lowest, m);
  if (lowest === L) return f;
  f += selfCurvaturesFlops(layers, n, lowest, head);
  for (let l = lowest; l < L; l++) {
    const ll = layers[l];
    let low = l + 1;
    for (let m = lowest; m <= l; m++) if (need(l, m)) { low = m; break; }
    for (let m = l; m >= low; m--) {
      const lm = layers[m];
      if (m === l) {
        if (need(l, l)) f += 2 * n * ((ll.out * (ll.out + 1)) / 2) * ((aug(ll) * (aug(ll) + 1)) / 2);
        continue;
      }
      f += pullBackFlops(layers, m, n * ll.out);
      if (exact && m !== l - 1) f += pullBackFlops(layers, m, n * ll.in);
      if (!need(l, m)) continue;
      f += 2 * n * ll.out * lm.out * aug(ll) * aug(lm);
      if (exact) f += 2 * n * ll.in * lm.out * ll.out * aug(lm);
    }
  }
  return f;
}

/** The outer product's stack form (stack.ts addStackOuterProduct) into the whole matrix, the selected layers' blocks or rows. */
function stackFlops(layers: Sizes, n: number, target: 'matrix' | 'blocks' | readonly [number, number]): number {
  const k = layers[layers.length - 1].out;
  const w = parameters(layers);
  let f = forwardFlops(layers, n) + jacobianRowsFlops(layers, n, k);
  if (target === 'matrix') f += w * w * n * k;
  else if (target === 'blocks') for (const l of layers) f += l.selected ? size(l) ** 2 * n * k : 0;
  else f += 2 * (target[1] - target[0]) * w * n * k;
  return f;
}

/** The exact Hessian's stack form (stack.ts exactStackHessian). */
function exactStackFlops(layers: Sizes, n: number, residual: boolean, head: number): number {
  const L = layers.length;
  const k = layers[L - 1].out;
  const w = parameters(layers);
  const lowest = lowestSelected(layers);
  let f = forwardFlops(layers, n) + backwardFlops(layers, n);
  if (lowest === L) return f;
  // the rows and their syrk; the output's curvature and Gauss–Newton matrices, for the residual
  f += jacobianRowsFlops(layers, n, k) + w * w * n * k + 2 * n * head;
  const below: number[] = [];
  let acc = 0;
  for (const l of layers) { below.push(acc); if (l.selected) acc += size(l); }
  const hasD = (l: number) => l >= lowest && (l < L - 1 || residual);
  const hasV = layers.map((_, l) => l > lowest && below[l] > 0 && (hasD(l) || (l + 1 < L && layers[l + 1].selected)));
  for (let l = lowest + 1; l < L; l++) if (hasV[l]) f += jacobianRowsFlops(layers, n, layers[l].out, l);
  for (let l = lowest; l < L; l++) {
    const layer = layers[l];
    const o = layer.out, a = aug(layer), wl = below[l];
    if (hasD(l)) {
      if (hasV[l]) f += 2 * wl * wl * n * o;
      if (layer.selected) f += o * ((hasV[l] ? 2 * layer.in * wl * n + (layer.hasBias ? 2 * wl * n : 0) : 0) + 2 * a * a * n);
    }
    if (l > lowest && layer.selected) {
      if (layers[l - 1].selected) f += 2 * o * layer.in * aug(layers[l - 1]) * n;
      if (hasV[l - 1] && below[l - 1] > 0) f += layer.in * 2 * o * below[l - 1] * n;
    }
  }
  return f;
}

/** What of a curvature matrix is computed: all of it, the selected layers' own blocks, or rows start … end − 1. */
type CurvatureAnswer = 'matrix' | 'blocks' | readonly [number, number];

/** The exact or outer-product curvature in the form the cost model picks (as hessian.ts's curvatureMatrix, curvatureBlocks and curvatureRows do). */
function curvatureFlops(layers: Sizes, n: number, exact: boolean, answer: CurvatureAnswer, problem: ProblemData): number {
  const at = offsets(layers);
  const placed = layers.map((l, i) => ({ offset: at[i], size: size(l) }));
  const need: BlockFilter = answer === 'blocks' ? (l, m) => l === m && layers[l].selected
    : answer === 'matrix' ? (l, m) => layers[l].selected && layers[m].selected : slabFilter(placed, answer[0], answer[1]);
  const stackKind = exact && answer === 'matrix' ? exactStackOf(problem) : undefined;
  const directions = typeof answer === 'string' ? undefined : answer[1] - answer[0];
  const form = curvatureForm(layers, n, exact, { need: answer === 'matrix' ? undefined : need, directions, exactStack: stackKind }).form;
  const head = headFlops(problem);
  if (form === 'stack') return exact ? exactStackFlops(layers, n, stackKind === 'residual', head) : stackFlops(layers, n, answer);
  if (form === 'columns') {
    if (answer === 'blocks') {
      let f = 0;
      layers.forEach((l, i) => { if (at[i] >= 0) f += rowsByProductsFlops(layers, n, exact, at[i], at[i] + size(l), head); });
      return f;
    }
    const [start, end] = answer === 'matrix' ? [0, parameters(layers)] : answer;
    return rowsByProductsFlops(layers, n, exact, start, end, head);
  }
  return blockFormFlops(layers, n, exact, need, head);
}

/**
 * One point's output curvature (or Gauss–Newton matrix) by the head: a K × K GEMM for sum-of-squares
 * on softmax outputs (losses.ts), loops elsewhere.
 */
function headFlops(problem: ProblemData): number {
  const out = problem.network.layers[problem.network.layers.length - 1];
  return problem.loss === 'sum-of-squares' && out?.activation === 'softmax' ? 2 * out.weights.rows ** 3 : 0;
}

function exactStackOf(problem: ProblemData) {
  return exactStackKind(problem.loss, problem.network.layers[problem.network.layers.length - 1]?.activation ?? '');
}

/** The exact diagonal (hessianDiagonal): the self curvatures and a GEMM per selected layer. */
function diagonalFlops(layers: Sizes, n: number, exact: boolean, head: number): number {
  const lowest = lowestSelected(layers);
  let f = forwardFlops(layers, n) + (exact ? backwardFlops(layers, n) : 0);
  if (lowest === layers.length) return f;
  f += selfCurvaturesFlops(layers, n, lowest, head);
  for (const l of layers) if (l.selected) f += 2 * l.out * aug(l) * n;
  return f;
}

/** KFAC's factors (kfacFactors), and with `eigen` their eigen-decompositions (kfacEigen). */
function kfacFlops(layers: Sizes, n: number, eigen: boolean, head: number): number {
  const lowest = lowestSelected(layers);
  let f = forwardFlops(layers, n);
  if (lowest === layers.length) return f;
  f += selfCurvaturesFlops(layers, n, lowest, head);
  for (const l of layers) {
    if (!l.selected) continue;
    f += aug(l) ** 2 * n;
    if (eigen) f += syevrFlops(aug(l), aug(l)) + syevrFlops(l.out, l.out);
  }
  return f;
}

/** One KFAC solve or product with m vectors: per layer and vector two or four products of out × aug. */
function kfacVectorsFlops(layers: Sizes, m: number, solve: boolean): number {
  let f = 0;
  for (const l of layers) if (l.selected) f += (solve ? 2 : 1) * m * (2 * l.out * aug(l) * l.out + 2 * l.out * aug(l) * aug(l));
  return f;
}

function syevrFlops(n: number, vectors: number): number {
  return (4 * n * n * n) / 3 + 2 * n * n * vectors;
}

/** Lanczos (eigen.ts lanczosEigen) for k pairs at most maxIterations products, and the k residual products. */
function lanczosFlops(layers: Sizes, n: number, exact: boolean, k: number, which: string, maxIterations: number, head: number): number {
  const w = parameters(layers);
  const m = Math.min(w, Math.max(k + 2, lanczosBasis(k, w)));
  const product = productFlops(layers, n, exact);
  if (m >= w) {
    // W within the basis: H's columns by W products of unit vectors (each touching one layer), then the dense solver
    const at = offsets(layers);
    let f = operatorFlops(layers, n, head) + denseEigenFlops(w, k, which);
    layers.forEach((l, i) => { if (at[i] >= 0) f += size(l) * applyFlops(layers, n, 1, exact, 0, (j) => j === i); });
    return f;
  }
  // each product: two passes of Gram–Schmidt against the basis (two GEMMs of 1 × rows × W each); per restart T's eigenpairs and the Ritz vectors
  const restarts = Math.ceil(maxIterations / Math.max(1, Math.floor(m / 2)));
  return operatorFlops(layers, n, head) + (maxIterations + k) * product + maxIterations * 2 * 2 * 2 * m * w + restarts * (syevrFlops(m, m) + 2 * m * w * m);
}

/** The dense solver's decompositions (one index range, two for magnitude) and the residuals' GEMM. */
function denseEigenFlops(w: number, k: number, which: string): number {
  const ranges = which === 'magnitude' ? (2 * k >= w ? [w] : [k, k]) : [k];
  let f = 2 * w * k * w;
  for (const m of ranges) f += syevrFlops(w, m);
  return f;
}

/** The estimate of a task's kernel work: its flops, and whether they are a bound (an iterative method's, at maxIterations). */
export interface KernelFlops {
  readonly flops: number;
  readonly bound: boolean;
}

/** The nominal flops of a task's kernel calls (see the module comment). */
export function taskKernelFlops(task: CurvatureTask, layers: Sizes, n: number): KernelFlops {
  const w = parameters(layers);
  // Lanczos on W within its basis is W products and the dense solver, exactly
  const lanczos = task.endpoint === 'hessian-eigen' && !(task.method === 'dense' || (task.method === 'auto' && w <= EIGEN_DENSE_MAX)) &&
    Math.max(task.count + 2, lanczosBasis(task.count, w)) < w;
  const cg = task.endpoint === 'hessian-inverse-vector-product' && task.hessian !== 'kfac' && !(task.method === 'cholesky' || (task.method === 'auto' && w <= SOLVE_DENSE_MAX));
  const iterative = lanczos || cg;
  return { flops: flopsOf(task, layers, n), bound: iterative };
}

function flopsOf(task: CurvatureTask, layers: Sizes, n: number): number {
  const w = parameters(layers);
  const head = task.endpoint === 'jacobian' ? 0 : headFlops(task.problem);
  switch (task.endpoint) {
    case 'jacobian': {
      const k = layers[layers.length - 1].out;
      if (task.wrt === 'parameters') return forwardFlops(layers, n) + jacobianRowsFlops(layers, n, k);
      let f = forwardFlops(layers, n) + 2 * n * k * layers[0].in * layers[0].out;
      for (let m = layers.length - 2; m >= 0; m--) f += pullBackFlops(layers, m, n * k);
      return f;
    }
    case 'hessian':
      switch (task.method) {
        case 'diagonal': return diagonalFlops(layers, n, true, head);
        case 'diagonal-approximation': {
          let f = forwardFlops(layers, n) + backwardFlops(layers, n) + n * head;
          for (let l = layers.length - 1; l >= lowestSelected(layers); l--) {
            if (layers[l].selected) f += 2 * layers[l].out * layers[l].in * n;
            if (l !== lowestSelected(layers)) f += 2 * n * layers[l].in * layers[l].out;
          }
          return f;
        }
        case 'finite-difference': return 2 * w * gradientFlops(layers, n);
        case 'exact':
        case 'outer-product':
          return curvatureFlops(layers, n, task.method === 'exact', task.structure === 'block-diagonal' ? 'blocks' : task.rows ?? 'matrix', task.problem);
      }
      break;
    case 'hessian-vector-product':
      return operatorFlops(layers, n, head) + productFlops(layers, n, true);
    case 'hessian-inverse': {
      if (task.method === 'woodbury') {
        // per block of k ≤ kMax Jacobian rows: SYMM and SYRK on W × W (3kW²), the k × k GEMM and TRSM (3k²W), POTRF (k³/3);
        // every chunk holds whole blocks (inverse.ts woodburyPlan), so only the last block is short
        const k = layers[layers.length - 1].out;
        const rows = n * k;
        const kMax = Math.max(1, Math.floor(128 / k)) * k;
        const full = Math.floor(rows / kMax), rest = rows % kMax;
        const blocks = (e: number) => full * kMax ** e + rest ** e;
        return forwardFlops(layers, n) + jacobianRowsFlops(layers, n, k) + 3 * w * w * rows + 3 * w * blocks(2) + blocks(3) / 3;
      }
      return curvatureFlops(layers, n, task.hessian === 'exact', 'matrix', task.problem) + w * w * w;
    }
    case 'hessian-kfac':
      return kfacFlops(layers, n, task.damping !== undefined, head);
    case 'hessian-eigen': {
      const exact = task.hessian === 'exact';
      const k = Math.min(task.count, w);
      const dense = task.method === 'dense' || (task.method === 'auto' && w <= EIGEN_DENSE_MAX);
      if (dense) return curvatureFlops(layers, n, exact, 'matrix', task.problem) + denseEigenFlops(w, k, task.which);
      return lanczosFlops(layers, n, exact, k, task.which, task.maxIterations, head);
    }
    case 'hessian-inverse-vector-product': {
      const m = task.vectors.rows;
      if (task.hessian === 'kfac') return kfacFlops(layers, n, true, head) + kfacVectorsFlops(layers, m, true) + kfacVectorsFlops(layers, m, false);
      const exact = task.hessian === 'exact';
      const op = operatorFlops(layers, n, head);
      const product = productFlops(layers, n, exact);
      if (task.method === 'cholesky' || (task.method === 'auto' && w <= SOLVE_DENSE_MAX)) {
        return op + curvatureFlops(layers, n, exact, 'matrix', task.problem) + (w * w * w) / 3 + 2 * w * w * m + m * product;
      }
      // CG: at most maxIterations products a vector, each with the preconditioner's solve
      let setup = 0, perProduct = product;
      if (task.preconditioner === 'diagonal') setup = diagonalFlops(layers, n, exact, head);
      if (task.preconditioner === 'kfac') { setup = kfacFlops(layers, n, true, head); perProduct += kfacVectorsFlops(layers, 1, true); }
      return op + setup + m * task.maxIterations * perProduct;
    }
  }
}

