import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answer, assertClose, build, flatten, FORMS, referenceCases, type Form } from '../helpers/http.ts';

const cases = referenceCases();
const forms = Object.keys(FORMS) as Form[];

test('POST /jacobian matches the input Jacobian and outputs of every reference case in JSON, .npy and raw float64', async (t) => {
  const app = await build(t);
  for (const c of cases) {
    const body = { network: c.request.network, inputs: c.request.inputs };
    for (const form of forms) {
      const a = await answer(app, '/jacobian', body, form, 'jacobian');
      assertClose(a.array, c.expected.inputJacobian, 1e-10, `${c.name} ${form}`);
      if (a.json) assertClose(flatten(a.json.outputs as number[][]), c.expected.outputs, 1e-10, `${c.name} outputs`);
    }
  }
});

test('POST /jacobian with wrt parameters gives N × K × W whose Gram sum is the sum-of-squares outer-product Hessian', async (t) => {
  // For sum-of-squares the outer-product Hessian is Σ_n J_nᵀ J_n with J_n = ∂y_n/∂w (PRML 5.84), an oracle that needs no new reference.
  const app = await build(t);
  const sse = cases.filter((c) => c.request.loss === 'sum-of-squares');
  assert.ok(sse.length >= 2);
  for (const c of sse) {
    for (const form of forms) {
      const a = await answer(app, '/jacobian', { network: c.request.network, inputs: c.request.inputs, wrt: 'parameters' }, form, 'jacobian');
      const [n, k, w] = a.array.shape;
      assert.equal(w, c.expected.parameterCount);
      assert.equal(n, c.request.inputs.length);
      const g = new Float64Array(w * w);
      const j = a.array.data;
      for (let p = 0; p < n; p++) for (let o = 0; o < k; o++) {
        const row = (p * k + o) * w;
        for (let r = 0; r < w; r++) for (let s = 0; s < w; s++) g[r * w + s] += j[row + r] * j[row + s];
      }
      assertClose({ data: g, shape: [w, w] }, c.expected.outerProduct, 1e-10, `${c.name} ${form}`);
    }
  }
});
