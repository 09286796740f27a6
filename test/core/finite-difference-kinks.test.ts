/**
 * The finite-difference Hessian's note on kinks (finiteDifferenceKinks): it names the columns whose
 * differences cross the kink of relu or leaky-relu at 0, and only those. Checked against the exact
 * Hessian, which needs no differences: every entry outside the rows and columns the note names
 * agrees with it; a network with a pre-activation placed exactly on the kink gets the note.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compute, principalArray, type ComputeResult } from '../../src/core/index.ts';
import { taskFromJson } from '../helpers/tasks.ts';
import { seededNormal } from '../helpers/random.ts';

type Layer = { weights: number[][]; bias: number[]; activation: string };

function randomProblem(seed: number, activation: string, onKink: boolean) {
  const g = seededNormal(seed);
  const d = 3, m = 4, n = 5;
  const inputs = Array.from({ length: n }, () => Array.from({ length: d }, () => g()));
  const first: Layer = { weights: Array.from({ length: m }, () => Array.from({ length: d }, () => g())), bias: Array.from({ length: m }, () => g()), activation };
  if (onKink) {
    // unit 2's pre-activation at data point 0 exactly 0 (up to rounding): its bias is −w·x
    first.bias[2] = -first.weights[2].reduce((s, w, j) => s + w * inputs[0][j], 0);
  }
  const network = { layers: [first, { weights: [Array.from({ length: m }, () => g())], bias: [0.1], activation: 'identity' }] };
  return { network, inputs, targets: inputs.map(() => [g()]), loss: 'sum-of-squares' };
}

function hessians(body: object): { fd: Float64Array; exact: Float64Array; w: number; result: ComputeResult } {
  const result = compute(taskFromJson('/hessian', { ...body, method: 'finite-difference' }));
  const fd = principalArray(result)!;
  const exact = principalArray(compute(taskFromJson('/hessian', { ...body, method: 'exact' })))!.data;
  return { fd: fd.data, exact, w: fd.shape[0], result };
}

/** Entries (i, j) where the two disagree by more than the differences' own error (about 1e-9 here). */
function offEntries(fd: Float64Array, exact: Float64Array, w: number): [number, number][] {
  const off: [number, number][] = [];
  for (let i = 0; i < w; i++) for (let j = 0; j < w; j++) if (Math.abs(fd[i * w + j] - exact[i * w + j]) > 1e-4) off.push([i, j]);
  return off;
}

for (const activation of ['relu', 'leaky-relu']) {
  test(`${activation}: a pre-activation on the kink gets the note, naming every column whose entries disagree with the exact Hessian; off the kink, no note and agreement`, () => {
    for (let seed = 1; seed <= 6; seed++) {
      const on = hessians(randomProblem(seed, activation, true));
      const warning = on.result.warnings?.[0];
      assert.equal(warning?.code, 'FINITE_DIFFERENCE_KINK', `seed ${seed}`);
      const { count, columns, w } = warning!.params;
      assert.equal(w, on.w);
      assert.equal(warning!.params.activation, activation);
      assert.ok(count >= 1 && count === columns.length, `seed ${seed}: ${count} columns, all listed`);
      // the symmetrised H mixes column i into row i: every entry that is off has its row or its column named
      const off = offEntries(on.fd, on.exact, on.w);
      assert.ok(off.length >= 1, `seed ${seed}: crossing the kink puts entries off`);
      const named = new Set(columns);
      const unexplained = off.filter(([i, j]) => !named.has(i) && !named.has(j));
      assert.deepEqual(unexplained, [], `seed ${seed}: entries off outside the named columns ${columns.join(', ')}`);
      // and they are exactly the parameters of the unit on the kink: moving its weights by ±ε moves a by ±ε·x_j, its bias by ±ε
      // (in the parameter order: the first layer's weights row-major, 4 × 3, then its 4 biases; unit 2's are 6, 7, 8 and 12 + 2)
      assert.deepEqual(columns, [6, 7, 8, 14], `seed ${seed}`);
      const clear = hessians(randomProblem(seed, activation, false));
      // random pre-activations are ~1 away from 0, far beyond ε = 1e-5
      assert.equal(clear.result.warnings, undefined, `seed ${seed}`);
      assert.deepEqual(offEntries(clear.fd, clear.exact, clear.w), [], `seed ${seed}`);
    }
  });
}

test('smooth activations (tanh, elu, gelu) never get the note', () => {
  for (const activation of ['tanh', 'elu', 'gelu']) {
    const r = hessians(randomProblem(3, activation, true));
    assert.equal(r.result.warnings, undefined, activation);
  }
});
