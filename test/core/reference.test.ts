import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  errorValue, gradient, inputJacobian, parameterJacobian, exactHessian, outerProductHessian,
  hessianDiagonal, diagonalApproximation, finiteDifferenceHessian, hessianVectorProduct, woodburyInverse, choleskyInverse,
} from '../../src/core/index.ts';
import { loadCases, flat, problemOf, relativeError, type ModelCase, type ReferenceCase } from '../helpers/cases.ts';

const EXACT = 1e-10;
const FINITE_DIFFERENCE = 1e-6;

// the public and held-out cases, and the models of 2026-12 (logits, labels, mean, no-bias layers, gelu/silu/leaky-relu/elu)
const cases: (ReferenceCase | ModelCase)[] = [...loadCases(), ...loadCases('held-out'), ...loadCases<ModelCase>('models')];
for (const c of cases) {
  const p = problemOf(c);
  const net = p.network, inputs = p.inputs;
  const e = c.expected;
  const close = (what: string, actual: ArrayLike<number>, expected: unknown, tol = EXACT) => {
    const err = relativeError(actual, flat(expected));
    assert.ok(err <= tol, `${what}: relative error ${err} > ${tol}`);
  };

  test(`${c.name}: outputs, error and gradient match the reference`, () => {
    assert.equal(net.parameterCount, e.parameterCount);
    close('outputs', inputJacobian(net, inputs).outputs.data, e.outputs);
    close('error', [errorValue(p)], [e.error]);
    close('gradient', gradient(p), e.gradient);
  });

  test(`${c.name}: input Jacobian matches the reference`, () => {
    close('input Jacobian', inputJacobian(net, inputs).jacobian, e.inputJacobian);
  });

  if ('parameterJacobian' in e) {
    test(`${c.name}: parameter Jacobian matches the reference`, () => {
      close('parameter Jacobian', parameterJacobian(net, inputs).jacobian, e.parameterJacobian);
    });
  }

  test(`${c.name}: exact Hessian matches the reference in each form (blocks, stack, columns by the R-operator)`, () => {
    close('exact Hessian', exactHessian(p), e.hessian);
    close('exact Hessian (blocks)', exactHessian(p, { form: 'blocks' }), e.hessian);
    close('exact Hessian (columns)', exactHessian(p, { form: 'columns' }), e.hessian);
    if (p.head.loss !== 'sum-of-squares' || p.head.activation !== 'softmax') close('exact Hessian (stack)', exactHessian(p, { form: 'stack' }), e.hessian);
  });
  test(`${c.name}: outer-product Hessian matches the reference in each form (blocks, Jacobian stack, columns)`, () => {
    close('outer product', outerProductHessian(p), e.outerProduct);
    close('outer product (columns)', outerProductHessian(p, { form: 'columns' }), e.outerProduct);
    close('outer product (blocks)', outerProductHessian(p, { form: 'blocks' }), e.outerProduct);
    close('outer product (stack)', outerProductHessian(p, { form: 'stack' }), e.outerProduct);
  });
  test(`${c.name}: exact diagonal matches the reference`, () => close('diagonal', hessianDiagonal(p), e.hessianDiagonal));
  test(`${c.name}: diagonal approximation matches the reference`, () => close('diagonal approximation', diagonalApproximation(p), e.diagonalApproximation));
  test(`${c.name}: finite-difference Hessian matches the reference to 1e-6`, () => close('finite differences', finiteDifferenceHessian(p), e.hessian, FINITE_DIFFERENCE));
  test(`${c.name}: R-operator product matches the reference`, () => close('H·v', hessianVectorProduct(p, Float64Array.from(c.vector)), e.hessianVectorProduct));

  test(`${c.name}: Woodbury inverse (sequential and blocked) matches the reference`, () => {
    for (const block of [1, 7, 128]) {
      const r = woodburyInverse(p, c.damping, block);
      close(`Woodbury inverse, block ${block}`, r.inverse, e.inverseOuterProduct);
      close(`Woodbury log det, block ${block}`, [r.logDeterminant], [e.logDeterminant]);
    }
  });

  test(`${c.name}: Cholesky inverses of the outer product and of the exact Hessian match the reference`, () => {
    const g = choleskyInverse(outerProductHessian(p), net.parameterCount, c.damping);
    close('Cholesky inverse (outer product)', g.inverse, e.inverseOuterProduct);
    close('Cholesky log det (outer product)', [g.logDeterminant], [e.logDeterminant]);
    const h = choleskyInverse(exactHessian(p), net.parameterCount, c.exactDamping);
    close('Cholesky inverse (exact)', h.inverse, e.inverseExact);
    close('Cholesky log det (exact)', [h.logDeterminant], [e.logDeterminantExact]);
  });
}
