/**
 * The core's work estimate of a task's kernel flops (src/core/work.ts, TaskFootprint.workBound: what admission prices and
 * a job's progress is measured against) against the flops its kernel calls really make, counted call by call by a backend that
 * wraps the one in use with the same per-call formula the worker adds up (linalg/flops.ts). Every
 * endpoint and method, every form of the curvature matrix (blocks, stack, exact stack with and
 * without a residual, columns), layer selections, layers without bias and the softmax head's own
 * GEMMs: the estimate equals the count; for Lanczos and CG it is their bound and the count stays
 * under it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compute, curvatureForm, kernelFlops, lanczosBasis, taskFootprint, type CurvatureTask, type ProblemData } from '../../src/core/index.ts';
import { linalg, useBackend, type LinalgBackend } from '../../src/core/linalg/index.ts';
import { exactStackKind } from '../../src/core/stack.ts';
import { seededNormal } from '../helpers/random.ts';

/** The footprint's estimate of a task's kernel flops, what a job's progress is measured against: the bound, and whether it is an iterative method's. */
function estimateOf(task: CurvatureTask): { flops: number; bound: boolean } {
  const f = taskFootprint(task);
  return { flops: f.workBound.flops, bound: f.iterative };
}

/** Runs `fn` on a backend that adds up every kernel call's nominal flops; returns them. */
function countFlops(fn: () => void): number {
  const base = linalg();
  let flops = 0;
  const wrapped: Record<string, unknown> = { name: base.name };
  for (const [name, kernel] of Object.entries(base)) {
    if (typeof kernel !== 'function') continue;
    wrapped[name] = (...args: unknown[]) => { flops += kernelFlops(name, args); return (kernel as (...a: unknown[]) => unknown)(...args); };
  }
  useBackend(wrapped as unknown as LinalgBackend);
  try {
    fn();
  } catch {
    // a refusal midway (a matrix not positive definite): what ran is counted, and is below the estimate
    flops = -flops;
  } finally {
    useBackend(base);
  }
  return flops;
}

function problem(sizes: number[], activations: string[], loss: ProblemData['loss'], n: number, seed: number, opts: { selection?: number[]; noBias?: number[] } = {}): ProblemData {
  const r = seededNormal(seed);
  const layers = activations.map((activation, l) => ({
    weights: { rows: sizes[l + 1], cols: sizes[l], data: Float64Array.from({ length: sizes[l + 1] * sizes[l] }, () => 0.5 * r()) },
    bias: opts.noBias?.includes(l) ? null : Float64Array.from({ length: sizes[l + 1] }, () => 0.5 * r()),
    activation: activation as never,
  }));
  const d = sizes[0], k = sizes[sizes.length - 1];
  const t = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    if (loss === 'softmax-cross-entropy') t[i * k + (i % k)] = 1;
    else for (let j = 0; j < k; j++) t[i * k + j] = loss === 'cross-entropy' ? 0.5 + 0.3 * Math.tanh(r()) : r();
  }
  return {
    network: { layers, parameters: opts.selection },
    inputs: { rows: n, cols: d, data: Float64Array.from({ length: n * d }, () => r()) },
    targets: { rows: n, cols: k, data: t },
    loss,
    reduction: 'sum',
  };
}

const PROBLEMS: Record<string, ProblemData> = {
  'blocks (many points)': problem([3, 8, 4], ['tanh', 'identity'], 'sum-of-squares', 200, 1),
  'stack (wide, few points)': problem([3, 60, 1], ['tanh', 'identity'], 'sum-of-squares', 5, 2),
  'exact stack with a residual': problem([3, 60, 1], ['tanh', 'sigmoid'], 'sum-of-squares', 5, 3),
  'columns (deep, narrow)': problem([1, ...Array<number>(80).fill(1), 1], [...Array<string>(80).fill('tanh'), 'identity'], 'sum-of-squares', 2, 4),
  'four layers, cross-entropy': problem([3, 6, 5, 4, 2], ['tanh', 'sigmoid', 'softplus', 'sigmoid'], 'cross-entropy', 50, 5),
  'softmax cross-entropy': problem([4, 7, 5], ['tanh', 'softmax'], 'softmax-cross-entropy', 40, 6),
  'sum-of-squares on softmax (head GEMMs)': problem([3, 9, 4], ['tanh', 'softmax'], 'sum-of-squares', 20, 7),
  'selected layers': problem([3, 6, 5, 2], ['tanh', 'tanh', 'identity'], 'sum-of-squares', 30, 8, { selection: [0, -1] }),
  'a layer without bias': problem([4, 5, 3, 2], ['silu', 'gelu', 'identity'], 'cross-entropy', 12, 9, { noBias: [1] }),
};

function tasks(p: ProblemData): [string, CurvatureTask][] {
  const w = taskFootprint({ endpoint: 'hessian', problem: p, method: 'diagonal', structure: 'full' }).summary.w;
  const vectors = { rows: 2, cols: w, data: Float64Array.from({ length: 2 * w }, (_, i) => Math.cos(i)) };
  const out: [string, CurvatureTask][] = [
    ['jacobian wrt inputs', { endpoint: 'jacobian', network: p.network, inputs: p.inputs, wrt: 'inputs' }],
    ['jacobian wrt parameters', { endpoint: 'jacobian', network: p.network, inputs: p.inputs, wrt: 'parameters' }],
    ['hessian-vector product', { endpoint: 'hessian-vector-product', problem: p, vector: Float64Array.from({ length: w }, (_, i) => Math.sin(i)) }],
    ['cholesky inverse', { endpoint: 'hessian-inverse', problem: p, damping: 1, method: 'cholesky', hessian: 'outer-product' }],
    ['cholesky inverse of the exact Hessian', { endpoint: 'hessian-inverse', problem: p, damping: 100, method: 'cholesky', hessian: 'exact' }],
    ['woodbury inverse', { endpoint: 'hessian-inverse', problem: p, damping: 1, method: 'woodbury', hessian: 'outer-product' }],
    ['kfac with damping', { endpoint: 'hessian-kfac', problem: p, damping: 1 }],
    ['kfac', { endpoint: 'hessian-kfac', problem: p }],
    ['kfac solve', { endpoint: 'hessian-inverse-vector-product', problem: p, damping: 10, vectors, hessian: 'kfac', method: 'auto', tolerance: 1e-10, maxIterations: 1000, preconditioner: 'none' }],
    ['cholesky solve', { endpoint: 'hessian-inverse-vector-product', problem: p, damping: 10, vectors, hessian: 'outer-product', method: 'cholesky', tolerance: 1e-10, maxIterations: 1000, preconditioner: 'none' }],
  ];
  for (const method of ['exact', 'outer-product', 'diagonal', 'diagonal-approximation', 'finite-difference'] as const) {
    out.push([`hessian ${method}`, { endpoint: 'hessian', problem: p, method, structure: 'full' }]);
  }
  for (const method of ['exact', 'outer-product'] as const) {
    out.push([`hessian ${method} block-diagonal`, { endpoint: 'hessian', problem: p, method, structure: 'block-diagonal' }]);
    out.push([`hessian ${method} rows 2-9`, { endpoint: 'hessian', problem: p, method, structure: 'full', rows: [2, 9] }]);
  }
  for (const which of ['largest', 'smallest', 'magnitude'] as const) {
    out.push([`dense eigen ${which}`, { endpoint: 'hessian-eigen', problem: p, hessian: 'exact', count: 2, which, method: 'dense', tolerance: 1e-8, maxIterations: 1000 }]);
  }
  return out;
}

/** Iterative tasks: the estimate is their bound. */
function iterative(p: ProblemData): [string, CurvatureTask][] {
  const w = taskFootprint({ endpoint: 'hessian', problem: p, method: 'diagonal', structure: 'full' }).summary.w;
  const vectors = { rows: 2, cols: w, data: Float64Array.from({ length: 2 * w }, (_, i) => Math.cos(i)) };
  const out: [string, CurvatureTask][] = [
    ['lanczos', { endpoint: 'hessian-eigen', problem: p, hessian: 'outer-product', count: 2, which: 'largest', method: 'lanczos', tolerance: 1e-8, maxIterations: 1000 }],
    ['lanczos, few iterations', { endpoint: 'hessian-eigen', problem: p, hessian: 'exact', count: 1, which: 'magnitude', method: 'lanczos', tolerance: 1e-14, maxIterations: 30 }],
  ];
  for (const preconditioner of ['none', 'diagonal', 'kfac'] as const) {
    out.push([`cg, ${preconditioner} preconditioner`, { endpoint: 'hessian-inverse-vector-product', problem: p, damping: 10, vectors, hessian: 'outer-product', method: 'cg', tolerance: 1e-10, maxIterations: 1000, preconditioner }]);
  }
  out.push(['cg stopped at maxIterations', { endpoint: 'hessian-inverse-vector-product', problem: p, damping: 1e-3, vectors, hessian: 'outer-product', method: 'cg', tolerance: 1e-15, maxIterations: 3, preconditioner: 'none' }]);
  return out;
}

for (const [name, p] of Object.entries(PROBLEMS)) {
  test(`the kernel flops of every task on ${name} are as estimated`, () => {
    for (const [what, task] of tasks(p)) {
      const estimate = estimateOf(task);
      const counted = countFlops(() => compute(structuredClone(task)));
      assert.equal(estimate.bound, false, `${what}: an exact estimate`);
      if (counted < 0) {
        assert.ok(-counted <= estimate.flops, `${what}: refused after ${-counted} flops, within the estimate ${estimate.flops}`);
        continue;
      }
      assert.ok(estimate.flops > 0, `${what}: some work`);
      assert.ok(Math.abs(counted - estimate.flops) <= 1e-9 * estimate.flops, `${what}: counted ${counted}, estimated ${estimate.flops}`);
    }
  });

  test(`the kernel flops of Lanczos and CG on ${name} stay within their bound`, () => {
    for (const [what, task] of iterative(p)) {
      const estimate = estimateOf(task);
      const counted = Math.abs(countFlops(() => compute(structuredClone(task))));
      assert.ok(counted > 0 && counted <= estimate.flops, `${what}: counted ${counted}, bound ${estimate.flops}`);
      // a bound where the method may stop early (Lanczos on W within its basis is W products, exact)
      const w = taskFootprint(task).summary.w;
      const exact = task.endpoint === 'hessian-eigen' && lanczosBasis(task.count, w) >= w;
      assert.equal(estimate.bound, !exact, `${what}: bound ${estimate.bound}`);
      if (exact) assert.ok(Math.abs(counted - estimate.flops) <= 1e-9 * counted, `${what}: counted ${counted}, estimated ${estimate.flops}`);
    }
  });
}

test('CG stopped at maxIterations uses its whole bound for the vectors it reached', () => {
  const p = PROBLEMS['blocks (many points)'];
  const w = taskFootprint({ endpoint: 'hessian', problem: p, method: 'diagonal', structure: 'full' }).summary.w;
  const one: CurvatureTask = {
    endpoint: 'hessian-inverse-vector-product', problem: p, damping: 1e-6, vectors: { rows: 1, cols: w, data: Float64Array.from({ length: w }, (_, i) => Math.cos(i)) },
    hessian: 'outer-product', method: 'cg', tolerance: 1e-16, maxIterations: 5, preconditioner: 'none',
  };
  const counted = -countFlops(() => compute(structuredClone(one)));
  assert.ok(counted > 0, 'refused as not converged');
  assert.ok(Math.abs(counted - estimateOf(one).flops) <= 1e-9 * counted, `counted ${counted}, bound ${estimateOf(one).flops}`);
});

test('the problems cover every form of the curvature matrix', () => {
  const forms = new Set<string>();
  for (const p of Object.values(PROBLEMS)) {
    const layers = p.network.layers.map((l) => ({ in: l.weights.cols, out: l.weights.rows, hasBias: l.bias !== null, selected: true }));
    const kind = exactStackKind(p.loss, p.network.layers.at(-1)!.activation);
    forms.add(`exact ${curvatureForm(layers, p.inputs.rows, true, { exactStack: kind }).form}${kind === 'residual' ? ' residual' : ''}`);
    forms.add(`outer-product ${curvatureForm(layers, p.inputs.rows, false).form}`);
  }
  for (const f of ['exact blocks', 'exact stack', 'exact stack residual', 'exact columns', 'outer-product blocks', 'outer-product stack']) assert.ok(forms.has(f), `${f} in ${[...forms].join(', ')}`);
});
