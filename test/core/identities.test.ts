import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  exactHessian, outerProductHessian, hessianDiagonal, diagonalApproximation, finiteDifferenceHessian, hessianVectorProduct,
  woodburyInverse, choleskyInverse, gradient, errorValue, inputJacobian, parameterJacobian, parameterVector,
  withParameters, type Problem,
} from '../../src/core/index.ts';
import { linalg } from '../../src/core/linalg/index.ts';
import { relativeError } from '../helpers/cases.ts';
import { RANDOM_SPECS, describe, randomProblem } from '../helpers/networks.ts';
import { seededNormal } from '../helpers/random.ts';

const EXACT = 1e-10;
const FD = 1e-6;

function matmul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const c = new Float64Array(n * n);
  linalg().gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n);
  return c;
}

function identity(n: number, alpha = 1): Float64Array {
  const i = new Float64Array(n * n);
  for (let j = 0; j < n; j++) i[j * n + j] = alpha;
  return i;
}

/** Central differences of a vector function of the parameters, column i = ∂f/∂w_i. */
function numericJacobian(p: Problem, fn: (q: Problem) => Float64Array, eps = 1e-6): Float64Array[] {
  const w = parameterVector(p.network);
  const cols: Float64Array[] = [];
  for (let i = 0; i < w.length; i++) {
    const wi = w[i];
    w[i] = wi + eps;
    const fp = fn({ ...p, network: withParameters(p.network, w) });
    w[i] = wi - eps;
    const fm = fn({ ...p, network: withParameters(p.network, w) });
    w[i] = wi;
    cols.push(fp.map((v, j) => (v - fm[j]) / (2 * eps)));
  }
  return cols;
}

for (const spec of RANDOM_SPECS) {
  const name = describe(spec);
  const p = randomProblem(spec);
  const W = p.network.parameterCount;
  const H = exactHessian(p);

  test(`exact Hessian is symmetric for ${name}`, () => {
    for (let i = 0; i < W; i++) for (let j = 0; j < i; j++) assert.equal(H[i * W + j], H[j * W + i]);
  });

  test(`finite differences agree with the exact Hessian for ${name}`, () => {
    const err = relativeError(finiteDifferenceHessian(p), H);
    assert.ok(err <= FD, `relative error ${err}`);
  });

  test(`gradient agrees with central differences of the error for ${name}`, () => {
    const num = numericJacobian(p, (q) => Float64Array.of(errorValue(q))).map((c) => c[0]);
    const err = relativeError(gradient(p), num);
    assert.ok(err <= FD, `relative error ${err}`);
  });

  test(`R-operator product equals the dense product H·v for ${name}`, () => {
    const normal = seededNormal(spec.seed + 100);
    const v = Float64Array.from({ length: W }, () => normal());
    const dense = new Float64Array(W);
    for (let i = 0; i < W; i++) for (let j = 0; j < W; j++) dense[i] += H[i * W + j] * v[j];
    const err = relativeError(hessianVectorProduct(p, v), dense);
    assert.ok(err <= EXACT, `relative error ${err}`);
  });

  test(`exact diagonal equals the diagonal of the exact Hessian for ${name}`, () => {
    const err = relativeError(hessianDiagonal(p), H.filter((_, i) => i % (W + 1) === 0));
    assert.ok(err <= EXACT, `relative error ${err}`);
  });

  test(`outer product equals Σ Bᵀ L B built from parameter Jacobians (${p.loss}) for ${name}`, () => {
    const G = outerProductHessian(p);
    const k = p.network.outputSize;
    const n = p.inputs.rows;
    const want = new Float64Array(W * W);
    const la = linalg();
    if (p.loss === 'sum-of-squares') {
      // the split at the outputs, whatever their activation: Σ_n (∂y/∂w)ᵀ(∂y/∂w)
      const { jacobian } = parameterJacobian(p.network, p.inputs);
      for (let i = 0; i < n; i++) la.gemm(true, false, W, W, k, 1, jacobian.subarray(i * k * W), W, jacobian.subarray(i * k * W), W, 1, want, W);
    } else {
      // the split at a_out: B = ∂a_out/∂w is the parameter Jacobian of the same network with identity outputs,
      // and L = diag(y(1 − y)) (sigmoid) or diag(y) − yyᵀ (softmax), from the outputs y
      const last = p.network.layers.length - 1;
      const linearOut = { ...p.network, layers: p.network.layers.map((l, i) => (i === last ? { ...l, activation: 'identity' as const } : l)) };
      const b = parameterJacobian(linearOut, p.inputs).jacobian;
      const y = inputJacobian(p.network, p.inputs).outputs.data;
      const lb = new Float64Array(k * W);
      const L = new Float64Array(k * k);
      for (let i = 0; i < n; i++) {
        const yi = y.subarray(i * k, (i + 1) * k);
        for (let r = 0; r < k; r++) for (let c = 0; c < k; c++) {
          L[r * k + c] = p.loss === 'cross-entropy' ? (r === c ? yi[r] * (1 - yi[r]) : 0) : (r === c ? yi[r] : 0) - yi[r] * yi[c];
        }
        la.gemm(false, false, k, W, k, 1, L, k, b.subarray(i * k * W), W, 0, lb, W);
        la.gemm(true, false, W, W, k, 1, b.subarray(i * k * W), W, lb, W, 1, want, W);
      }
    }
    const err = relativeError(G, want);
    assert.ok(err <= EXACT, `relative error ${err}`);
  });

  test(`outer product is positive semi-definite for ${name}`, () => {
    const G = outerProductHessian(p);
    const damped = new Float64Array(G);
    for (let i = 0; i < W; i++) damped[i * W + i] += 1e-8 * Math.max(1, Math.abs(G[i * W + i]));
    assert.equal(linalg().potrf(W, damped, W), 0, 'G + 1e-8·I factorises');
  });

  test(`sequential, blocked Woodbury and Cholesky inverses agree, and the inverse times the matrix is I, for ${name}`, () => {
    const damping = 0.1;
    const sequential = woodburyInverse(p, damping, 1);
    const blocked = woodburyInverse(p, damping, 5);
    const cholesky = choleskyInverse(outerProductHessian(p), W, damping);
    assert.ok(relativeError(blocked.inverse, sequential.inverse) <= 1e-9);
    assert.ok(relativeError(cholesky.inverse, sequential.inverse) <= 1e-9);
    assert.ok(Math.abs(blocked.logDeterminant - cholesky.logDeterminant) <= 1e-9 * Math.max(1, Math.abs(cholesky.logDeterminant)));
    const a = outerProductHessian(p);
    for (let i = 0; i < W; i++) a[i * W + i] += damping;
    assert.ok(relativeError(matmul(sequential.inverse, a, W), identity(W)) <= 1e-9, 'Woodbury inverse × (G + αI) = I');
    assert.ok(relativeError(matmul(cholesky.inverse, a, W), identity(W)) <= 1e-9, 'Cholesky inverse × (G + αI) = I');
  });

  test(`Cholesky inverse of the damped exact Hessian times that matrix is I for ${name}`, () => {
    let least = 0;
    for (let i = 0; i < W; i++) { let off = 0; for (let j = 0; j < W; j++) if (j !== i) off += Math.abs(H[i * W + j]); least = Math.min(least, H[i * W + i] - off); }
    const damping = 1 - least; // Gershgorin: H + damping·I is positive definite
    const r = choleskyInverse(new Float64Array(H), W, damping);
    const a = new Float64Array(H);
    for (let i = 0; i < W; i++) a[i * W + i] += damping;
    assert.ok(relativeError(matmul(r.inverse, a, W), identity(W)) <= 1e-9);
  });

  test(`parameter and input Jacobians agree with central differences for ${name}`, () => {
    const { jacobian, shape } = parameterJacobian(p.network, p.inputs);
    const [n, k] = shape;
    const cols = numericJacobian(p, (q) => inputJacobian(q.network, q.inputs).outputs.data);
    const num = new Float64Array(n * k * W);
    cols.forEach((col, i) => col.forEach((v, r) => { num[r * W + i] = v; }));
    assert.ok(relativeError(jacobian, num) <= FD);
    // input Jacobian: perturb the inputs
    const x = p.inputs.data;
    const d = p.inputs.cols;
    const ij = inputJacobian(p.network, p.inputs).jacobian;
    for (let pt = 0; pt < n; pt++) for (let i = 0; i < d; i++) {
      const xi = x[pt * d + i];
      x[pt * d + i] = xi + 1e-6;
      const yp = inputJacobian(p.network, p.inputs).outputs.data;
      x[pt * d + i] = xi - 1e-6;
      const ym = inputJacobian(p.network, p.inputs).outputs.data;
      x[pt * d + i] = xi;
      for (let j = 0; j < k; j++) {
        const want = (yp[pt * k + j] - ym[pt * k + j]) / 2e-6;
        assert.ok(Math.abs(ij[(pt * k + j) * d + i] - want) <= FD * Math.max(1, Math.abs(want)), `∂y${j}/∂x${i} at point ${pt}`);
      }
    }
  });

  const lastAct = spec.activations[spec.activations.length - 1];
  if (spec.sizes.length === 3 && lastAct !== 'softmax') {
    test(`diagonal approximation equals the exact diagonal for the two-layer ${name} (diagonal output curvature, 5.81)`, () => {
      const err = relativeError(diagonalApproximation(p), hessianDiagonal(p));
      assert.ok(err <= EXACT, `relative error ${err}`);
    });
  }
}

test('the diagonal approximation differs from the exact diagonal for a three-layer network (it is an approximation)', () => {
  const p = randomProblem(RANDOM_SPECS[7]);
  assert.ok(relativeError(diagonalApproximation(p), hessianDiagonal(p)) > 1e-6);
});

test('chunked and tiled block products give the same exact and outer-product Hessians as one chunk', () => {
  for (const spec of [RANDOM_SPECS[3], RANDOM_SPECS[7], RANDOM_SPECS[8], RANDOM_SPECS[9]]) {
    const p = randomProblem(spec);
    for (const budgets of [{ chunk: 1 }, { tile: 1 }, { chunk: 3000, tile: 50 }]) {
      const errExact = relativeError(exactHessian(p, budgets), exactHessian(p));
      const errOuter = relativeError(outerProductHessian(p, budgets), outerProductHessian(p));
      assert.ok(errExact <= 1e-13 && errOuter <= 1e-13, `${describe(spec)} with ${JSON.stringify(budgets)}: ${errExact}, ${errOuter}`);
      const h = exactHessian(p, budgets);
      const W = p.network.parameterCount;
      for (let i = 0; i < W; i++) for (let j = 0; j < i; j++) assert.equal(h[i * W + j], h[j * W + i]);
    }
  }
});
