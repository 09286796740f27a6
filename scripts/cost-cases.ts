/**
 * Tasks of known shape for the cost model (src/core/work.ts, src/cost.ts): the calibration
 * (scripts/calibrate-cost.ts) times them to fit the rates, and test/service/cost.test.ts checks
 * the estimates against a few of them. They span the three kinds of work: large GEMMs (W ≈ 2762,
 * N = 1000), thin ones bound by memory (1-965-1), deep narrow networks bound by per-block calls
 * (hundreds of layers of width 1), and the cheap requests that admission must never hold up.
 */
import type { ActivationName, CurvatureTask, LossName, ProblemData } from '../src/core/index.ts';

export interface CostCase {
  readonly name: string;
  readonly task: () => CurvatureTask;
}

/** A deterministic network of these widths (D, hidden..., K), tanh hidden layers, identity outputs. */
export function network(widths: readonly number[], activation: ActivationName = 'tanh'): ProblemData['network'] {
  let seed = 1;
  const rnd = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647 - 0.5; };
  const layers = [];
  for (let l = 0; l + 1 < widths.length; l++) {
    const inp = widths[l], out = widths[l + 1];
    const weights = { rows: out, cols: inp, data: Float64Array.from({ length: out * inp }, () => (2 * rnd()) / Math.sqrt(inp)) };
    const bias = Float64Array.from({ length: out }, () => 0.1 * rnd());
    layers.push({ weights, bias, activation: l + 2 === widths.length ? 'identity' as const : activation });
  }
  return { layers };
}

/** A sum-of-squares problem with N points on that network. */
export function problem(widths: readonly number[], n: number, activation: ActivationName = 'tanh', loss: LossName = 'sum-of-squares'): ProblemData {
  const d = widths[0], k = widths[widths.length - 1];
  const inputs = { rows: n, cols: d, data: Float64Array.from({ length: n * d }, (_, i) => Math.sin(0.37 * i)) };
  const targets = { rows: n, cols: k, data: Float64Array.from({ length: n * k }, (_, i) => Math.cos(0.11 * i)) };
  return { network: network(widths, activation), inputs, targets, loss, reduction: 'sum' };
}

/** D → 1 → 1 → … → 1 → K: `depth` layers of width 1. */
export function deepNarrow(depth: number): number[] {
  return [1, ...Array.from({ length: depth - 1 }, () => 1), 1];
}

const hessian = (widths: readonly number[], n: number, method: 'exact' | 'outer-product' | 'diagonal' | 'diagonal-approximation' | 'finite-difference', structure: 'full' | 'block-diagonal' = 'full'): CurvatureTask =>
  ({ endpoint: 'hessian', problem: problem(widths, n), method, structure });

export const COST_CASES: readonly CostCase[] = [
  { name: 'jacobian inputs 2-3-1 N=1 (tiny)', task: () => { const p = problem([2, 3, 1], 1); return { endpoint: 'jacobian', network: p.network, inputs: p.inputs, wrt: 'inputs' }; } },
  { name: 'jacobian inputs 10-20-2 N=20 (small)', task: () => { const p = problem([10, 20, 2], 20); return { endpoint: 'jacobian', network: p.network, inputs: p.inputs, wrt: 'inputs' }; } },
  { name: 'hessian exact 2-3-1 N=2 (tiny)', task: () => hessian([2, 3, 1], 2, 'exact') },
  { name: 'jacobian inputs 100-200-10 N=2000', task: () => { const p = problem([100, 200, 10], 2000); return { endpoint: 'jacobian', network: p.network, inputs: p.inputs, wrt: 'inputs' }; } },
  { name: 'jacobian parameters 20-50-5 N=200', task: () => { const p = problem([20, 50, 5], 200); return { endpoint: 'jacobian', network: p.network, inputs: p.inputs, wrt: 'parameters' }; } },
  { name: 'hessian exact 32-64-10 N=1000', task: () => hessian([32, 64, 10], 1000, 'exact') },
  { name: 'hessian outer-product 32-64-10 N=1000', task: () => hessian([32, 64, 10], 1000, 'outer-product') },
  { name: 'hessian exact 20-200-10 N=300', task: () => hessian([20, 200, 10], 300, 'exact') },
  { name: 'hessian exact 8 layers of 24, N=500', task: () => hessian([8, 24, 24, 24, 24, 24, 24, 24, 4], 500, 'exact') },
  { name: 'hessian exact 40 layers of 6, N=50', task: () => hessian([6, ...Array.from({ length: 39 }, () => 6), 2], 50, 'exact') },
  { name: 'hessian exact 300 tanh layers of width 1, N=1', task: () => hessian(deepNarrow(300), 1, 'exact') },
  { name: 'hessian exact 500 tanh layers of width 1, N=1', task: () => hessian(deepNarrow(500), 1, 'exact') },
  { name: 'hessian outer-product 300 tanh layers of width 1, N=20', task: () => hessian(deepNarrow(300), 20, 'outer-product') },
  { name: 'hessian outer-product 1-965-1 N=100', task: () => hessian([1, 965, 1], 100, 'outer-product') },
  { name: 'hessian outer-product 1-500-1 N=300', task: () => hessian([1, 500, 1], 300, 'outer-product') },
  { name: 'hessian exact 1-400-1 N=100', task: () => hessian([1, 400, 1], 100, 'exact') },
  { name: 'hessian exact block-diagonal 32-64-64-10 N=1000', task: () => hessian([32, 64, 64, 10], 1000, 'exact', 'block-diagonal') },
  { name: 'hessian diagonal 100-200-10 N=2000', task: () => hessian([100, 200, 10], 2000, 'diagonal') },
  { name: 'hessian diagonal-approximation 100-200-10 N=2000', task: () => hessian([100, 200, 10], 2000, 'diagonal-approximation') },
  { name: 'hessian finite-difference 5-60-1 N=200', task: () => hessian([5, 60, 1], 200, 'finite-difference') },
  { name: 'vector product 784-128-10 N=2000', task: () => { const p = problem([784, 128, 10], 2000); return { endpoint: 'hessian-vector-product', problem: p, vector: new Float64Array(784 * 128 + 128 + 1290).fill(0.01) }; } },
  { name: 'inverse woodbury 32-64-10 N=100', task: () => ({ endpoint: 'hessian-inverse', problem: problem([32, 64, 10], 100), damping: 0.1, method: 'woodbury', hessian: 'outer-product' }) },
  { name: 'inverse cholesky 32-64-10 N=300', task: () => ({ endpoint: 'hessian-inverse', problem: problem([32, 64, 10], 300), damping: 0.1, method: 'cholesky', hessian: 'outer-product' }) },
  { name: 'kfac 784-128-10 N=1000 with damping', task: () => ({ endpoint: 'hessian-kfac', problem: problem([784, 128, 10], 1000), damping: 0.1 }) },
];
