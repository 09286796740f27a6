/**
 * The benchmark's workloads (issue 4): the networks and data, the request bodies sent to the
 * service, the flop model of each workload and the targets it is judged against. Pure functions,
 * so the smoke test (test/bench/) can run them at toy sizes.
 *
 * Flop models, W = Σ_l W_l with W_l = out_l·(in_l + 1) (see src/core/hessian.ts and inverse.ts):
 * - exact Hessian: the curvature GEMMs of the lower block triangle, Σ_{l≥m} 2·N·W_l·W_m, plus
 *   the cross-term GEMMs Σ_{l>m} 2·N·W_l·W_m: together exactly 2·N·W²;
 * - outer product: the lower block triangle only, Σ_{l≥m} 2·N·W_l·W_m = N·(W² + Σ_l W_l²);
 * - Cholesky inverse of the damped outer product: the outer product, then potrf (W³/3) and
 *   potri (2W³/3): N·(W² + Σ_l W_l²) + W³;
 * - Woodbury inverse: two W × W × k GEMMs per block of k rows of the N·K rows: 4·N·K·W².
 *
 * The exact Hessian's model counts each layer's own block in full; the core computes it from
 * packed symmetric pairs, a quarter of that, so its GFLOP/s column overstates the work done.
 */
import { seededRandom } from '../../test/helpers/random.ts';
import { suggestedCoreType } from '../../src/core/linalg/openblas.ts';

export interface LayerSpec {
  readonly weights: number[][];
  readonly bias: number[];
  readonly activation: 'tanh' | 'identity';
}

export interface Problem {
  /** Input size D, hidden size M, output size K, data points N. */
  readonly d: number;
  readonly m: number;
  readonly k: number;
  readonly n: number;
  readonly layers: LayerSpec[];
  readonly inputs: number[][];
  readonly targets: number[][];
}

export type Kind = 'exact' | 'outer-product' | 'cholesky' | 'woodbury';

export interface Workload {
  /** Row label in the table. */
  readonly name: string;
  readonly kind: Kind;
  /** Which problem (network and data) it runs on. */
  readonly problem: 'small' | 'large';
  /** Extra environment for the service process (e.g. CURVATURE_LINALG=typescript). */
  readonly env?: Readonly<Record<string, string>>;
  /** The PyTorch reference this row is compared with and timed against (the kind's own by default). */
  readonly torchKind?: Kind;
  /** What the row is judged on. */
  readonly target: Target;
}

export type Target =
  | { readonly kind: 'ratio'; readonly min: number; readonly label: string }
  | { readonly kind: 'stream'; readonly minMBps: number; readonly label: string }
  | { readonly kind: 'none' };

/** The inverse workloads' damping α in (H + αI)⁻¹. */
export const DAMPING = 0.1;

/**
 * The environment for the service and for numpy/torch, the same for both sides: OPENBLAS_L2_SIZE
 * unset, and OPENBLAS_CORETYPE the kernels the service itself picks from this CPU's flags
 * (suggestedCoreType; unset where it picks none). A Debian numpy or torch 1.13 on the system
 * OpenBLAS would otherwise run its Prescott fallback on CPUs newer than OpenBLAS 0.3.21 knows.
 */
export function blasEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const core = suggestedCoreType();
  if (core) env.OPENBLAS_CORETYPE = core;
  return env;
}

/** A 2-layer tanh network D → M (tanh) → K (identity) with N points, for sum-of-squares. */
export function makeProblem(d: number, m: number, k: number, n: number, seed = 1): Problem {
  const r = seededRandom(seed);
  const u = (scale: number) => (2 * r() - 1) * scale;
  const matrix = (rows: number, cols: number, scale: number) => Array.from({ length: rows }, () => Array.from({ length: cols }, () => u(scale)));
  const layers: LayerSpec[] = [
    { weights: matrix(m, d, 1 / Math.sqrt(d)), bias: Array.from({ length: m }, () => u(0.1)), activation: 'tanh' },
    { weights: matrix(k, m, 1 / Math.sqrt(m)), bias: Array.from({ length: k }, () => u(0.1)), activation: 'identity' },
  ];
  return { d, m, k, n, layers, inputs: matrix(n, d, 1), targets: matrix(n, k, 1) };
}

/**
 * An MLP of any depth for the sweep: `sizes` = [D, M_1, …, K], tanh on every hidden layer, identity
 * outputs, sum-of-squares; weights uniform in ±1/√in, biases in ±0.1, inputs and targets in ±1,
 * all from one seeded stream, so that every run (and every peer) sees the same float64 numbers.
 * For two layers the numbers are those of makeProblem(D, M, K, N, seed).
 */
export function makeNetwork(sizes: readonly number[], n: number, seed = 1): Problem {
  if (sizes.length < 2) throw new Error('a network needs an input and an output size');
  const r = seededRandom(seed);
  const u = (scale: number) => (2 * r() - 1) * scale;
  const matrix = (rows: number, cols: number, scale: number) => Array.from({ length: rows }, () => Array.from({ length: cols }, () => u(scale)));
  const layers: LayerSpec[] = [];
  for (let l = 1; l < sizes.length; l++) {
    const [inp, out] = [sizes[l - 1], sizes[l]];
    layers.push({ weights: matrix(out, inp, 1 / Math.sqrt(inp)), bias: Array.from({ length: out }, () => u(0.1)), activation: l === sizes.length - 1 ? 'identity' : 'tanh' });
  }
  const d = sizes[0], k = sizes[sizes.length - 1];
  return { d, m: sizes.length > 2 ? sizes[1] : 0, k, n, layers, inputs: matrix(n, d, 1), targets: matrix(n, k, 1) };
}

/** Parameters per layer, W_l = out·(in + 1). */
export function layerParameterCounts(p: Problem): number[] {
  return p.layers.map((l) => l.weights.length * (l.weights[0].length + 1));
}

export function parameterCount(p: Problem): number {
  return layerParameterCounts(p).reduce((a, b) => a + b, 0);
}

/** The flop model of a workload (module comment). */
export function flops(kind: Kind, p: Problem): number {
  const ws = layerParameterCounts(p);
  const W = ws.reduce((a, b) => a + b, 0);
  const sumSq = ws.reduce((a, b) => a + b * b, 0);
  const outer = p.n * (W * W + sumSq);
  switch (kind) {
    case 'exact':
      return 2 * p.n * W * W;
    case 'outer-product':
      return outer;
    case 'cholesky':
      return outer + W ** 3;
    case 'woodbury':
      return 4 * p.n * p.k * W * W;
  }
}

/** The HTTP request of a workload: path and JSON body. */
export function request(kind: Kind, p: Problem): { path: string; body: Record<string, unknown> } {
  const base = { network: { layers: p.layers }, inputs: p.inputs, targets: p.targets, loss: 'sum-of-squares' };
  switch (kind) {
    case 'exact':
      return { path: '/hessian', body: { ...base, method: 'exact' } };
    case 'outer-product':
      return { path: '/hessian', body: { ...base, method: 'outer-product' } };
    case 'cholesky':
      return { path: '/hessian/inverse', body: { ...base, method: 'cholesky', hessian: 'outer-product', damping: DAMPING } };
    case 'woodbury':
      return { path: '/hessian/inverse', body: { ...base, method: 'woodbury', damping: DAMPING } };
  }
}

/** The sizes: W = 2762 (D = 32, M = 64, K = 10, N = 1000) and W = 9580 (D = 128, M = 72, K = 4, N = 200). */
export const SIZES = {
  small: { d: 32, m: 64, k: 10, n: 1000 },
  large: { d: 128, m: 72, k: 4, n: 200 },
} as const;

export const WORKLOADS: readonly Workload[] = [
  { name: 'exact Hessian', kind: 'exact', problem: 'small', target: { kind: 'ratio', min: 30, label: '>= 30x (aim 100x)' } },
  { name: 'outer product', kind: 'outer-product', problem: 'small', target: { kind: 'ratio', min: 20, label: '>= 20x' } },
  { name: 'Cholesky inverse', kind: 'cholesky', problem: 'small', target: { kind: 'ratio', min: 1, label: '>= 1x' } },
  { name: 'Woodbury inverse', kind: 'woodbury', problem: 'small', torchKind: 'cholesky', target: { kind: 'none' } },
  {
    name: 'exact, TS backend', kind: 'exact', problem: 'small', env: { CURVATURE_LINALG: 'typescript' },
    target: { kind: 'ratio', min: 1, label: '> 1x' },
  },
  { name: 'outer product W~9600', kind: 'outer-product', problem: 'large', target: { kind: 'stream', minMBps: 300, label: '>= 300 MB/s, RSS < 2x+300MB' } },
];

/** max|a − b| / max(1, max|b|): b is the reference. */
export function relativeDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0, scale = 1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return Infinity;
    if (d > diff) diff = d;
    const s = Math.abs(b[i]);
    if (s > scale) scale = s;
  }
  return diff / scale;
}

/** One network shape of the sweep (issue 13): layer sizes [D, M_1, …, K] and data points N. */
export interface SweepShape {
  /** Short id for --shapes=… */
  readonly id: string;
  readonly sizes: readonly number[];
  readonly n: number;
  /** Why the shape is in the sweep. */
  readonly note: string;
}

const ones = (count: number) => Array.from({ length: count }, () => 1);

/**
 * The sweep: N·K ≪ W to N·K ≫ W, depths (weight layers) 2–5 and deep narrow nets, W from 10² to
 * 10⁴, K from 1 to 100. The first seven are the named shapes.
 */
export const SWEEP: readonly SweepShape[] = [
  { id: 'benchmark', sizes: [32, 64, 10], n: 1000, note: 'the benchmark shape' },
  { id: 'deep4', sizes: [20, 30, 30, 30, 5], n: 500, note: 'depth 4' },
  { id: 'wide', sizes: [128, 72, 4], n: 200, note: 'few points, many parameters' },
  { id: 'small', sizes: [10, 50, 1], n: 20, note: 'small, N·K ≪ W' },
  { id: 'one-input', sizes: [1, 965, 1], n: 1000, note: 'one input, one output, a wide layer' },
  { id: 'narrow200', sizes: [1, ...ones(200), 1], n: 10, note: '200 tanh layers of width 1' },
  { id: 'narrow1000', sizes: [1, ...ones(1000), 1], n: 10, note: '1000 tanh layers of width 1' },
  { id: 'tiny-many', sizes: [8, 10, 1], n: 10000, note: 'W ≈ 10², N·K ≫ W' },
  { id: 'k100-few', sizes: [20, 40, 100], n: 10, note: 'K = 100, N·K ≪ W' },
  { id: 'k100-many', sizes: [10, 20, 100], n: 1000, note: 'K = 100, N·K ≫ W' },
  { id: 'deep3-many', sizes: [5, 10, 10, 1], n: 5000, note: 'depth 3, N·K ≫ W' },
  { id: 'deep5', sizes: [10, 20, 20, 20, 20, 10], n: 200, note: 'depth 5, N·K ≈ W' },
  { id: 'deep3-10k', sizes: [50, 100, 50, 10], n: 50, note: 'depth 3, W ≈ 10⁴' },
];

/** A shape as the table prints it: 32-64-10, or 1-(1×200)-1 for runs of equal widths. */
export function shapeLabel(sizes: readonly number[]): string {
  const hidden = sizes.slice(1, -1);
  const parts: string[] = [String(sizes[0])];
  for (let i = 0; i < hidden.length; ) {
    let j = i;
    while (j < hidden.length && hidden[j] === hidden[i]) j++;
    if (j - i >= 4) parts.push(`(${hidden[i]}×${j - i})`);
    else for (let r = i; r < j; r++) parts.push(String(hidden[r]));
    i = j;
  }
  parts.push(String(sizes[sizes.length - 1]));
  return parts.join('-');
}

/** Weight layers' sizes of a shape: in and out per layer. */
export function layersOf(sizes: readonly number[]): { in: number; out: number }[] {
  return sizes.slice(1).map((out, l) => ({ in: sizes[l], out }));
}

export function shapeParameterCount(sizes: readonly number[]): number {
  return layersOf(sizes).reduce((s, l) => s + l.out * (l.in + 1), 0);
}

/** The flop models of the floor (the GEMM work a method needs), and which applies. */
export interface FloorModel { flops: number; model: string }

/**
 * The GEMM flops a method needs for N points (src/core/hessian.ts's block form), P(r) = r(r+1)/2,
 * W_l = out_l·(in_l + 1):
 * - own blocks, from packed symmetric pairs: Σ_l 2·N·P(out_l)·P(in_l + 1);
 * - blocks between layers l > m (lower triangle): Σ_{l>m} 2·N·W_l·W_m;
 * - cross terms of 5.95 (exact only): Σ_{l>m} 2·N·(out_l·in_l)·W_m, but 2·N·(out_l·in_l)·(in_m + 1)
 *   for m = l − 1, whose S_{l,l−1} = diag(h′_{l−1}) leaves one product per unit of layer m.
 * exact = own + lower + cross. outer product = the smaller of own + lower and N·K·W(W+1) (one
 * SYRK of the N·K × W Jacobian, the way a Jacobian-based peer would form it).
 */
export function floorFlops(kind: 'exact' | 'outer-product', sizes: readonly number[], n: number): FloorModel {
  const layers = layersOf(sizes);
  const P = (r: number) => (r * (r + 1)) / 2;
  const ws = layers.map((l) => l.out * (l.in + 1));
  let own = 0, lower = 0, cross = 0;
  layers.forEach((l, i) => {
    own += 2 * n * P(l.out) * P(l.in + 1);
    for (let m = 0; m < i; m++) {
      lower += 2 * n * ws[i] * ws[m];
      cross += 2 * n * l.out * l.in * (m === i - 1 ? layers[m].in + 1 : ws[m]);
    }
  });
  if (kind === 'exact') return { flops: own + lower + cross, model: 'blocks' };
  const W = ws.reduce((a, b) => a + b, 0);
  const k = sizes[sizes.length - 1];
  const syrk = n * k * W * (W + 1);
  return own + lower <= syrk ? { flops: own + lower, model: 'blocks' } : { flops: syrk, model: 'syrk' };
}
