/**
 * Networks as deep as a request can describe (issue 14's failure 2: 600,000 identity layers gave a
 * 500, a RangeError from Math.max(...layers.map(...))): the core goes over layers in loops, with no
 * recursion and no argument spreading, so 10⁶ layers of 1 × 1 compute. The network alternates the
 * weights 2 and 0.5, so every product of consecutive weights is exact and the oracle is a loop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compute, taskFootprint, type ArrayResult, type CurvatureTask, type LayerData } from '../../src/core/index.ts';

const m = (v: number) => ({ rows: 1, cols: 1, data: Float64Array.of(v) });
const weight = (l: number) => (l % 2 === 0 ? 2 : 0.5);
/** L identity layers of 1 × 1: weights 2, 0.5, 2, ...; biases `bias(l)`. */
function deep(layersCount: number, bias: (l: number) => number): LayerData[] {
  return Array.from({ length: layersCount }, (_, l) => ({ weights: m(weight(l)), bias: Float64Array.of(bias(l)), activation: 'identity' as const }));
}
const inputs = { rows: 2, cols: 1, data: Float64Array.of(0.75, -3) };

test('10⁶ identity layers of 1 × 1: sized, and the input Jacobian and outputs computed (no RangeError, no recursion)', { timeout: 300_000 }, () => {
  const L = 1_000_000;
  const task: CurvatureTask = { endpoint: 'jacobian', network: { layers: deep(L, () => 0) }, inputs, wrt: 'inputs' };
  const size = taskFootprint(task);
  assert.ok(size.totalBytes > 0 && Number.isFinite(size.totalBytes));
  const r = compute(task);
  // an even number of layers alternating 2 and 0.5: y = x, dy/dx = 1, exactly
  assert.deepEqual(Array.from((r.fields.jacobian as ArrayResult).data), [1, 1]);
  assert.deepEqual(Array.from((r.fields.outputs as ArrayResult).data), [0.75, -3]);
});

test('10⁵ layers: the parameter Jacobian and both Hessian diagonals equal their closed forms, y linear in each parameter', { timeout: 300_000 }, () => {
  const L = 100_000;
  const bias = (l: number) => (l % 1000 === 0 ? 0.25 : 0);
  const layers = deep(L, bias);
  // the oracle, by a loop: z_l = w_l z_{l−1} + b_l; ∂y/∂w_l = (Π_{k>l} w_k) z_{l−1}, ∂y/∂b_l = Π_{k>l} w_k
  const after = new Float64Array(L + 1);
  after[L] = 1;
  for (let l = L - 1; l >= 0; l--) after[l] = after[l + 1] * weight(l);
  const oracle = (x: number) => {
    const j = new Float64Array(2 * L);
    let z = x;
    for (let l = 0; l < L; l++) {
      j[2 * l] = after[l + 1] * z;
      j[2 * l + 1] = after[l + 1];
      z = weight(l) * z + bias(l);
    }
    return { j, y: z };
  };
  const points = [oracle(0.75), oracle(-3)];
  const pj = compute({ endpoint: 'jacobian', network: { layers }, inputs, wrt: 'parameters' });
  const got = (pj.fields.jacobian as ArrayResult).data;
  assert.equal(got.length, 2 * 2 * L);
  for (let n = 0; n < 2; n++) for (let i = 0; i < 2 * L; i++) {
    if (got[n * 2 * L + i] !== points[n].j[i]) assert.fail(`point ${n}, parameter ${i}: ${got[n * 2 * L + i]} vs ${points[n].j[i]}`);
  }
  // E = Σ ½(y − t)², y linear in each parameter: ∂²E/∂θ_i² = Σ_n (∂y_n/∂θ_i)², for both diagonal methods
  const targets = { rows: 2, cols: 1, data: Float64Array.of(0.5, 0.5) };
  for (const method of ['diagonal', 'diagonal-approximation'] as const) {
    const r = compute({ endpoint: 'hessian', problem: { network: { layers }, inputs, targets, loss: 'sum-of-squares', reduction: 'sum' }, method, structure: 'full' });
    const d = (r.fields.diagonal as ArrayResult).data;
    for (let i = 0; i < 2 * L; i++) {
      const want = points[0].j[i] ** 2 + points[1].j[i] ** 2;
      if (Math.abs(d[i] - want) > 1e-12 * Math.max(1, want)) assert.fail(`${method}: diagonal[${i}] ${d[i]} vs ${want}`);
    }
  }
});
