/**
 * Networks not in the fixtures, checked through HTTP by identities that need no oracle: finite
 * differences agree with the exact Hessian, H v with the dense product, the exact diagonal with
 * the Hessian's, Woodbury with Cholesky, and the inverse times the damped matrix is I.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answer, build, relativeError } from '../helpers/http.ts';
import { seededNormal, seededRandom } from '../helpers/random.ts';

interface Case { name: string; sizes: number[]; activations: string[]; loss: string; n: number }

const CASES: Case[] = [
  { name: 'relu–softplus–identity regression', sizes: [3, 6, 4, 2], activations: ['relu', 'softplus', 'identity'], loss: 'sum-of-squares', n: 9 },
  { name: 'sigmoid hidden, softmax classifier', sizes: [4, 5, 3], activations: ['sigmoid', 'softmax'], loss: 'softmax-cross-entropy', n: 7 },
  { name: 'tanh hidden, sigmoid multi-label', sizes: [2, 7, 3], activations: ['tanh', 'sigmoid'], loss: 'cross-entropy', n: 5 },
  { name: 'one data point, one output, tanh output with sum-of-squares', sizes: [5, 3, 1], activations: ['tanh', 'tanh'], loss: 'sum-of-squares', n: 1 },
];

function requestFor(c: Case, seed: number) {
  const g = seededNormal(seed);
  const u = seededRandom(seed + 1);
  const layers = c.activations.map((activation, l) => ({
    weights: Array.from({ length: c.sizes[l + 1] }, () => Array.from({ length: c.sizes[l] }, () => g() / Math.sqrt(c.sizes[l]))),
    bias: Array.from({ length: c.sizes[l + 1] }, () => 0.2 * g()),
    activation,
  }));
  const k = c.sizes[c.sizes.length - 1];
  const targets = Array.from({ length: c.n }, () => {
    if (c.loss === 'softmax-cross-entropy') { const r = Array.from({ length: k }, () => u()); const s = r.reduce((a, b) => a + b); return r.map((x) => x / s); }
    if (c.loss === 'cross-entropy') return Array.from({ length: k }, () => (u() < 0.5 ? 0 : 1));
    return Array.from({ length: k }, () => g());
  });
  return { network: { layers }, inputs: Array.from({ length: c.n }, () => Array.from({ length: c.sizes[0] }, () => g())), targets, loss: c.loss };
}

for (const [i, c] of CASES.entries()) {
  test(`identities hold through HTTP for a ${c.name} network`, async (t) => {
    const app = await build(t);
    const req = requestFor(c, 100 + i);
    const h = await answer(app, '/hessian', { ...req, method: 'exact' }, 'npy', 'hessian');
    const w = h.array.shape[0];
    assert.equal(w, c.activations.reduce((s, _a, l) => s + c.sizes[l + 1] * (c.sizes[l] + 1), 0), 'W = Σ out·(in + 1)');
    const H = h.array.data;
    for (let r = 0; r < w; r++) for (let s = 0; s < r; s++) assert.ok(Math.abs(H[r * w + s] - H[s * w + r]) <= 1e-12 * Math.max(1, Math.abs(H[r * w + s])), 'symmetric');

    const fd = await answer(app, '/hessian', { ...req, method: 'finite-difference' }, 'raw', 'hessian');
    assert.ok(relativeError(fd.array.data, H) <= 1e-6, 'finite differences agree with the exact Hessian');

    const diag = await answer(app, '/hessian', { ...req, method: 'diagonal' }, 'json', 'diagonal');
    assert.ok(relativeError(diag.array.data, Array.from({ length: w }, (_, r) => H[r * w + r])) <= 1e-10, 'the diagonal is the Hessian’s');

    const g = seededNormal(7 + i);
    const v = Array.from({ length: w }, () => g());
    const hv = await answer(app, '/hessian/vector-product', { ...req, vector: v }, 'json', 'product');
    const dense = Array.from({ length: w }, (_, r) => v.reduce((s, x, j) => s + H[r * w + j] * x, 0));
    assert.ok(relativeError(hv.array.data, dense) <= 1e-10, 'H v by the R-operator equals the dense product');

    const damping = 0.05;
    const wood = await answer(app, '/hessian/inverse', { ...req, damping }, 'npy', 'inverse');
    const chol = await answer(app, '/hessian/inverse', { ...req, damping, method: 'cholesky' }, 'npy', 'inverse');
    assert.ok(relativeError(wood.array.data, chol.array.data) <= 1e-8, 'Woodbury agrees with Cholesky');
    assert.ok(Math.abs((wood.scalars.logDeterminant ?? NaN) - (chol.scalars.logDeterminant ?? NaN)) <= 1e-8 * Math.max(1, Math.abs(chol.scalars.logDeterminant ?? 0)), 'and so do their log determinants');

    const gn = await answer(app, '/hessian', { ...req, method: 'outer-product' }, 'npy', 'hessian');
    const A = gn.array.data;
    const inv = chol.array.data;
    let worst = 0;
    for (let r = 0; r < w; r++) for (let s = 0; s < w; s++) {
      let p = 0;
      for (let j = 0; j < w; j++) p += inv[r * w + j] * (A[j * w + s] + (j === s ? damping : 0));
      worst = Math.max(worst, Math.abs(p - (r === s ? 1 : 0)));
    }
    assert.ok(worst <= 1e-8, `the inverse times (H + αI) is I (worst entry off by ${worst})`);
  });
}
