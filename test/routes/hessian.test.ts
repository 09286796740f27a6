import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answer, assertClose, build, FORMS, referenceCases, type Form } from '../helpers/http.ts';

const cases = referenceCases();
const forms = Object.keys(FORMS) as Form[];

const METHODS = [
  { method: 'exact', field: 'hessian', expected: 'hessian', tolerance: 1e-10 },
  { method: 'outer-product', field: 'hessian', expected: 'outerProduct', tolerance: 1e-10 },
  { method: 'diagonal', field: 'diagonal', expected: 'hessianDiagonal', tolerance: 1e-10 },
  { method: 'diagonal-approximation', field: 'diagonal', expected: 'diagonalApproximation', tolerance: 1e-10 },
  { method: 'finite-difference', field: 'hessian', expected: 'hessian', tolerance: 1e-6 },
] as const;

for (const m of METHODS) {
  test(`POST /hessian with method ${m.method} matches every reference case in JSON, .npy and raw float64`, async (t) => {
    const app = await build(t);
    for (const c of cases) {
      for (const form of forms) {
        const a = await answer(app, '/hessian', { ...c.request, method: m.method }, form, m.field);
        assertClose(a.array, c.expected[m.expected], m.tolerance, `${c.name} ${m.method} ${form}`);
        assert.equal(a.scalars.parameterCount, c.expected.parameterCount, `${c.name} parameterCount`);
      }
    }
  });
}

test('POST /hessian without a method gives the exact Hessian', async (t) => {
  const app = await build(t);
  const c = cases[0];
  const a = await answer(app, '/hessian', c.request, 'json', 'hessian');
  assertClose(a.array, c.expected.hessian, 1e-10, c.name);
});

test('POST /hessian/vector-product matches H v of every reference case in JSON, .npy and raw float64', async (t) => {
  const app = await build(t);
  for (const c of cases) {
    for (const form of forms) {
      const a = await answer(app, '/hessian/vector-product', { ...c.request, vector: c.vector }, form, 'product');
      assertClose(a.array, c.expected.hessianVectorProduct, 1e-10, `${c.name} ${form}`);
      assert.equal(a.scalars.parameterCount, c.expected.parameterCount);
    }
  }
});

const INVERSES = [
  { method: 'woodbury', hessian: 'outer-product', expected: 'inverseOuterProduct', logdet: 'logDeterminant', damping: 'damping' },
  { method: 'cholesky', hessian: 'outer-product', expected: 'inverseOuterProduct', logdet: 'logDeterminant', damping: 'damping' },
  { method: 'cholesky', hessian: 'exact', expected: 'inverseExact', logdet: 'logDeterminantExact', damping: 'exactDamping' },
] as const;

for (const inv of INVERSES) {
  test(`POST /hessian/inverse by ${inv.method} of the ${inv.hessian} Hessian matches every reference case in JSON, .npy and raw float64`, async (t) => {
    const app = await build(t);
    for (const c of cases) {
      for (const form of forms) {
        const body = { ...c.request, damping: c[inv.damping], method: inv.method, hessian: inv.hessian };
        const a = await answer(app, '/hessian/inverse', body, form, 'inverse');
        assertClose(a.array, c.expected[inv.expected], 1e-10, `${c.name} ${inv.method} ${form}`);
        const ld = c.expected[inv.logdet] as number;
        assert.ok(Math.abs((a.scalars.logDeterminant ?? NaN) - ld) <= 1e-10 * Math.max(1, Math.abs(ld)), `${c.name} logDeterminant ${a.scalars.logDeterminant} vs ${ld}`);
        assert.equal(a.scalars.parameterCount, c.expected.parameterCount);
      }
    }
  });
}

test('POST /hessian/inverse defaults to Woodbury on the outer-product Hessian', async (t) => {
  const app = await build(t);
  const c = cases[0];
  const a = await answer(app, '/hessian/inverse', { ...c.request, damping: c.damping }, 'json', 'inverse');
  assertClose(a.array, c.expected.inverseOuterProduct, 1e-10, c.name);
});
