/** Size before work: answer and working-set bytes by endpoint and method, and refusals that name the sizes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytes, checkTaskSize, taskSize } from '../../src/limits.ts';
import { DEFAULT_CONFIG } from '../../src/config.ts';
import type { ComputeTask } from '../../src/compute.ts';
import { ServiceError } from '../../src/errors.ts';

/** A task over a network D → M → K (tanh, identity) with N points, without the numbers mattering. */
function task(endpoint: ComputeTask['endpoint'], extra: Record<string, unknown>, d: number, m: number, k: number, n: number): ComputeTask {
  const row = (len: number) => new Array<number>(len).fill(0);
  const request = {
    network: { layers: [
      { weights: Array.from({ length: m }, () => row(d)), bias: row(m), activation: 'tanh' },
      { weights: Array.from({ length: k }, () => row(m)), bias: row(k), activation: 'identity' },
    ] },
    inputs: Array.from({ length: n }, () => row(d)),
    targets: Array.from({ length: n }, () => row(k)),
    loss: 'sum-of-squares',
    ...extra,
  };
  return { endpoint, request, limits: DEFAULT_CONFIG } as unknown as ComputeTask;
}

test('the answer of each endpoint and method is sized from the request alone', () => {
  const w = 4 * (2 + 1) + 2 * (4 + 1); // 22
  assert.equal(taskSize(task('hessian', { method: 'exact' }, 2, 4, 2, 5)).answerBytes, 8 * w * w);
  assert.equal(taskSize(task('hessian', { method: 'outer-product' }, 2, 4, 2, 5)).answerBytes, 8 * w * w);
  assert.equal(taskSize(task('hessian', { method: 'finite-difference' }, 2, 4, 2, 5)).answerBytes, 8 * w * w);
  assert.equal(taskSize(task('hessian', { method: 'diagonal' }, 2, 4, 2, 5)).answerBytes, 8 * w);
  assert.equal(taskSize(task('hessian-vector-product', { vector: [] }, 2, 4, 2, 5)).answerBytes, 8 * w);
  assert.equal(taskSize(task('hessian-inverse', { method: 'cholesky', damping: 1 }, 2, 4, 2, 5)).answerBytes, 8 * w * w);
  assert.equal(taskSize(task('jacobian', { wrt: 'parameters' }, 2, 4, 2, 5)).answerBytes, 8 * (5 * 2 * w + 5 * 2));
  assert.equal(taskSize(task('jacobian', { wrt: 'inputs' }, 2, 4, 2, 5)).answerBytes, 8 * (5 * 2 * 2 + 5 * 2));
  for (const t of [task('hessian', { method: 'exact' }, 2, 4, 2, 5), task('hessian-inverse', { method: 'woodbury', damping: 1 }, 2, 4, 2, 5)]) {
    const s = taskSize(t);
    assert.ok(s.totalBytes > s.answerBytes, 'the working set comes on top of the answer');
  }
});

test('an exact Hessian for W = 204,019 parameters is refused in well under a millisecond, naming 333 GB, the limit and the O(W) alternatives', () => {
  const t = task('hessian', { method: 'exact' }, 1000, 200, 19, 1);
  const w = 200 * 1001 + 19 * 201;
  assert.equal(w, 204_019);
  const started = performance.now();
  let err: unknown;
  for (let i = 0; i < 100; i++) {
    try { checkTaskSize(t, DEFAULT_CONFIG); } catch (e) { err = e; }
  }
  const perCheck = (performance.now() - started) / 100;
  assert.ok(err instanceof ServiceError);
  assert.equal(err.code, 'RESULT_TOO_LARGE');
  assert.equal(err.status, 413);
  assert.match(err.detail, /^the exact Hessian for W = 204,019 parameters needs 333 GB \(310 GiB\); this service allows 4\.29 GB \(4\.00 GiB\) per answer \(MAX_RESULT_BYTES\); use method 'diagonal' or 'diagonal-approximation', or POST \/hessian\/vector-product/);
  assert.ok(perCheck < 1, `${perCheck} ms a check`);
});

test('the working-set limit, N, W and the finite-difference cost are each refused with the variable that sets them', () => {
  const cases: [ComputeTask, Partial<typeof DEFAULT_CONFIG>, string, RegExp][] = [
    [task('hessian', { method: 'exact' }, 10, 20, 2, 3), { maxTaskBytes: 1024 }, 'RESULT_TOO_LARGE', /MAX_TASK_BYTES/],
    [task('hessian', { method: 'diagonal' }, 10, 20, 2, 30), { maxPoints: 10 }, 'LIMIT_EXCEEDED', /N = 30 .*MAX_POINTS/],
    [task('hessian', { method: 'diagonal' }, 10, 20, 2, 3), { maxParameters: 100 }, 'LIMIT_EXCEEDED', /W = 262 .*MAX_PARAMETERS/],
    [task('hessian', { method: 'finite-difference' }, 10, 20, 2, 3), { maxFiniteDifferenceCost: 1000 }, 'LIMIT_EXCEEDED', /MAX_FINITE_DIFFERENCE_COST.*'exact'/],
    [task('hessian-inverse', { method: 'woodbury', damping: 1 }, 10, 20, 2, 3), { maxResultBytes: 1024 }, 'RESULT_TOO_LARGE', /inverse.*conjugate gradients/],
  ];
  for (const [t, limits, code, detail] of cases) {
    assert.throws(() => checkTaskSize(t, { ...DEFAULT_CONFIG, ...limits }), (e: ServiceError) => e.code === code && detail.test(e.detail));
  }
  assert.doesNotThrow(() => checkTaskSize(task('hessian', { method: 'exact' }, 10, 20, 2, 3), DEFAULT_CONFIG));
});

test('sizes read as a person would: GB and GiB for large, MiB for middling', () => {
  assert.equal(bytes(333e9), '333 GB (310 GiB)');
  assert.equal(bytes(4 * 2 ** 30), '4.29 GB (4.00 GiB)');
  assert.equal(bytes(64 * 2 ** 20), '64.0 MiB');
  assert.equal(bytes(512), '512 bytes');
});
