/** Size before work: answer and working-set bytes by endpoint and method, and refusals that name the sizes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CONFIG } from '../../src/config.ts';
import { bytes, ServiceError } from '../../src/errors.ts';
import { checkTaskSize } from '../../src/sizing.ts';
import { taskFootprint } from '../../src/core/index.ts';
import type { CurvatureTask, ProblemData } from '../../src/core/index.ts';

/** A task over a network D → M → K (tanh, identity) with N points, without the numbers mattering. */
function problem(d: number, m: number, k: number, n: number): ProblemData {
  const mat = (rows: number, cols: number) => ({ rows, cols, data: new Float64Array(rows * cols) });
  return {
    network: { layers: [
      { weights: mat(m, d), bias: new Float64Array(m), activation: 'tanh' },
      { weights: mat(k, m), bias: new Float64Array(k), activation: 'identity' },
    ] },
    inputs: mat(n, d),
    targets: mat(n, k),
    loss: 'sum-of-squares',
    reduction: 'sum',
  };
}
const hessian = (method: 'exact' | 'outer-product' | 'diagonal' | 'finite-difference', ...dims: [number, number, number, number]): CurvatureTask =>
  ({ endpoint: 'hessian', problem: problem(...dims), method, structure: 'full' });
const inverse = (method: 'woodbury' | 'cholesky', ...dims: [number, number, number, number]): CurvatureTask =>
  ({ endpoint: 'hessian-inverse', problem: problem(...dims), method, damping: 1, hessian: 'outer-product' });
const jacobian = (wrt: 'inputs' | 'parameters', d: number, m: number, k: number, n: number): CurvatureTask => {
  const p = problem(d, m, k, n);
  return { endpoint: 'jacobian', network: p.network, inputs: p.inputs, wrt };
};

test('the answer of each endpoint and method is sized from the task alone', () => {
  const w = 4 * (2 + 1) + 2 * (4 + 1); // 22
  const dims = [2, 4, 2, 5] as const;
  assert.equal(taskFootprint(hessian('exact', ...dims)).answerBytes, 8 * w * w);
  assert.equal(taskFootprint(hessian('outer-product', ...dims)).answerBytes, 8 * w * w);
  assert.equal(taskFootprint(hessian('finite-difference', ...dims)).answerBytes, 8 * w * w);
  assert.equal(taskFootprint(hessian('diagonal', ...dims)).answerBytes, 8 * w);
  assert.equal(taskFootprint({ endpoint: 'hessian-vector-product', problem: problem(...dims), vector: new Float64Array(w) }).answerBytes, 8 * w);
  assert.equal(taskFootprint(inverse('cholesky', ...dims)).answerBytes, 8 * w * w);
  assert.equal(taskFootprint(jacobian('parameters', ...dims)).answerBytes, 8 * (5 * 2 * w + 5 * 2));
  assert.equal(taskFootprint(jacobian('inputs', ...dims)).answerBytes, 8 * (5 * 2 * 2 + 5 * 2));
  for (const t of [hessian('exact', ...dims), inverse('woodbury', ...dims)]) {
    const s = taskFootprint(t);
    assert.ok(s.totalBytes > s.answerBytes, 'the working set comes on top of the answer');
  }
});

test('an exact Hessian for W = 204,019 parameters is refused, naming 333 GB, the limit and the O(W) alternatives', () => {
  const t = hessian('exact', 1000, 200, 19, 1);
  assert.equal(taskFootprint(t).summary.w, 204_019);
  assert.throws(() => checkTaskSize(taskFootprint(t), DEFAULT_CONFIG), (err: unknown) => {
    assert.ok(err instanceof ServiceError);
    assert.equal(err.code, 'RESULT_TOO_LARGE');
    assert.equal(err.status, 413);
    assert.match(err.detail, /^the exact Hessian for W = 204,019 parameters needs 333 GB \(310 GiB\); this service allows 4\.29 GB \(4\.00 GiB\) per answer \(MAX_RESULT_BYTES\); use method 'diagonal' or 'diagonal-approximation', structure 'block-diagonal', parameters: \{layers: \[...\]\} for some layers, rows for a slab, or POST \/hessian\/vector-product, \/hessian\/eigen or \/hessian\/kfac/);
    return true;
  });
});

test('the working-set limit, N, W and the finite-difference cost are each refused with the variable that sets them', () => {
  const cases: [CurvatureTask, Partial<typeof DEFAULT_CONFIG>, string, RegExp][] = [
    [hessian('exact', 10, 20, 2, 3), { maxTaskBytes: 1024 }, 'WORKING_SET_TOO_LARGE', /MAX_TASK_BYTES/],
    [hessian('diagonal', 10, 20, 2, 30), { maxPoints: 10 }, 'LIMIT_EXCEEDED', /N = 30 .*MAX_POINTS/],
    [hessian('diagonal', 10, 20, 2, 3), { maxParameters: 100 }, 'LIMIT_EXCEEDED', /W = 262 .*MAX_PARAMETERS/],
    [hessian('finite-difference', 10, 20, 2, 3), { maxFiniteDifferenceCost: 1000 }, 'LIMIT_EXCEEDED', /MAX_FINITE_DIFFERENCE_COST.*'exact'/],
    [inverse('woodbury', 10, 20, 2, 3), { maxResultBytes: 1024 }, 'RESULT_TOO_LARGE', /inverse.*conjugate gradients/],
  ];
  for (const [t, limits, code, detail] of cases) {
    assert.throws(() => checkTaskSize(taskFootprint(t), { ...DEFAULT_CONFIG, ...limits }), (e: ServiceError) => e.code === code && detail.test(e.detail));
  }
  assert.doesNotThrow(() => checkTaskSize(taskFootprint(hessian('exact', 10, 20, 2, 3)), DEFAULT_CONFIG));
});

test('sizes read as a person would: GB and GiB for large, MiB for middling', () => {
  assert.equal(bytes(333e9), '333 GB (310 GiB)');
  assert.equal(bytes(4 * 2 ** 30), '4.29 GB (4.00 GiB)');
  assert.equal(bytes(64 * 2 ** 20), '64.0 MiB');
  assert.equal(bytes(512), '512 bytes');
});

test('a tiny task of every endpoint and method is sized as tiny (the working set follows the problem, not a fixed tile)', () => {
  // A worker collects garbage in full after a task estimated over 32 MiB (src/worker.ts), ≈ 10 ms:
  // a fixed 64 MB tile in the exact Hessian's estimate once made every tiny POST /hessian pay that.
  const p = problem(2, 3, 1, 2);
  const W = 13;
  const tasks: [string, CurvatureTask][] = [
    ...(['exact', 'outer-product', 'diagonal', 'diagonal-approximation', 'finite-difference'] as const).map((method): [string, CurvatureTask] => [`hessian ${method}`, { endpoint: 'hessian', problem: p, method, structure: 'full' }]),
    ['hessian exact block-diagonal', { endpoint: 'hessian', problem: p, method: 'exact', structure: 'block-diagonal' }],
    ['hessian outer-product rows', { endpoint: 'hessian', problem: p, method: 'outer-product', structure: 'full', rows: [2, 5] }],
    ['vector product', { endpoint: 'hessian-vector-product', problem: p, vector: new Float64Array(W) }],
    ...(['cholesky', 'woodbury'] as const).map((method): [string, CurvatureTask] => [`inverse ${method}`, { endpoint: 'hessian-inverse', problem: p, method, damping: 1, hessian: 'outer-product' }]),
    ['kfac', { endpoint: 'hessian-kfac', problem: p }],
    ['eigen', { endpoint: 'hessian-eigen', problem: p, count: 2, which: 'largest', method: 'auto', hessian: 'exact', tolerance: 1e-10, maxIterations: 100 }],
    ...(['cg', 'cholesky'] as const).map((method): [string, CurvatureTask] => [`inverse-vector product ${method}`, { endpoint: 'hessian-inverse-vector-product', problem: p, damping: 1, vectors: { rows: 1, cols: W, data: new Float64Array(W) }, hessian: 'outer-product', method, tolerance: 1e-10, maxIterations: 100, preconditioner: 'kfac' }]),
    ['jacobian', jacobian('parameters', 2, 3, 1, 2)],
  ];
  for (const [what, task] of tasks) {
    const size = taskFootprint(task);
    assert.ok(size.totalBytes < 1024 * 1024, `${what}: ${size.totalBytes} bytes estimated for W = ${W}, N = 2`);
  }
});
