import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  exactHessian, outerProductHessian, hessianDiagonal, diagonalApproximation, finiteDifferenceHessian, hessianVectorProduct,
  woodburyInverse, choleskyInverse, gradient, errorValue, inputJacobian, parameterJacobian, parameterVector,
  withParameters, curvatureBlocks, curvatureRows, curvatureForm, type Problem,
} from '../../src/core/index.ts';
import { linalg } from '../../src/core/linalg/index.ts';
import { relativeError } from '../helpers/cases.ts';
import { RANDOM_SPECS, describe, randomProblem, type RandomProblemSpec } from '../helpers/networks.ts';
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
    const scale = p.reduction === 'mean' ? 1 / n : 1;
    if (p.loss === 'sum-of-squares') {
      // the split at the outputs, whatever their activation: Σ_n (∂y/∂w)ᵀ(∂y/∂w)
      const { jacobian } = parameterJacobian(p.network, p.inputs);
      for (let i = 0; i < n; i++) la.gemm(true, false, W, W, k, scale, jacobian.subarray(i * k * W), W, jacobian.subarray(i * k * W), W, 1, want, W);
    } else {
      // the split at a_out: B = ∂a_out/∂w is the parameter Jacobian of the same network with identity outputs,
      // and L = diag(p(1 − p)) (cross-entropy) or diag(p) − ppᵀ (softmax-cross-entropy), p the probabilities
      // (the outputs, or σ / softmax of the logits of an identity output layer)
      const last = p.network.layers.length - 1;
      const linearOut = { ...p.network, layers: p.network.layers.map((l, i) => (i === last ? { ...l, activation: 'identity' as const } : l)) };
      const b = parameterJacobian(linearOut, p.inputs).jacobian;
      const a = inputJacobian(linearOut, p.inputs).outputs.data;
      const lb = new Float64Array(k * W);
      const L = new Float64Array(k * k);
      const prob = new Float64Array(k);
      for (let i = 0; i < n; i++) {
        const ai = a.subarray(i * k, (i + 1) * k);
        if (p.loss === 'cross-entropy') for (let r = 0; r < k; r++) prob[r] = 1 / (1 + Math.exp(-ai[r]));
        else { let mx = -Infinity; for (const v of ai) mx = Math.max(mx, v); let z = 0; for (let r = 0; r < k; r++) { prob[r] = Math.exp(ai[r] - mx); z += prob[r]; } for (let r = 0; r < k; r++) prob[r] /= z; }
        for (let r = 0; r < k; r++) for (let c = 0; c < k; c++) {
          L[r * k + c] = p.loss === 'cross-entropy' ? (r === c ? prob[r] * (1 - prob[r]) : 0) : (r === c ? prob[r] : 0) - prob[r] * prob[c];
        }
        la.gemm(false, false, k, W, k, scale, L, k, b.subarray(i * k * W), W, 0, lb, W);
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
  // the output curvature is diagonal but for softmax outputs and the softmax cross-entropy on logits
  if (spec.sizes.length === 3 && lastAct !== 'softmax' && spec.loss !== 'softmax-cross-entropy' && !spec.selection) {
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

test('the three forms (blocks, Jacobian stack Uᵀ U, columns H e_j) agree on the whole matrix, the layer blocks and row slabs, in one chunk and in many', () => {
  for (const spec of RANDOM_SPECS) {
    const p = randomProblem(spec);
    const W = p.network.parameterCount;
    for (const exact of [false, true]) {
      const what = `${describe(spec)} ${exact ? 'exact' : 'outer product'}`;
      const reference = exact ? exactHessian(p, { form: 'blocks' }) : outerProductHessian(p, { form: 'blocks' });
      const own = curvatureBlocks(p, exact, { form: 'blocks' });
      const forms = ['stack', 'columns'] as const;
      for (const form of forms) {
        // chunk 1: one point (stack) or one direction (columns) at a time
        for (const budgets of [{ form }, { form, chunk: 1 }]) {
          if (exact && form === 'stack' && spec.loss === 'sum-of-squares' && spec.activations.at(-1) === 'softmax') {
            assert.throws(() => exactHessian(p, budgets), /no stack form|only for the whole matrix/);
            continue;
          }
          const h = exact ? exactHessian(p, budgets) : outerProductHessian(p, budgets);
          const err = relativeError(h, reference);
          assert.ok(err <= 1e-13, `${what} ${JSON.stringify(budgets)}: relative error ${err}`);
          for (let i = 0; i < W; i++) for (let j = 0; j < i; j++) assert.equal(h[i * W + j], h[j * W + i], `${what} ${form}: exactly symmetric`);
          if (exact && form === 'stack') continue; // the exact stack form is for the whole matrix only
          curvatureBlocks(p, exact, budgets).forEach((b, i) => {
            assert.equal(b.layer, own[i].layer);
            assert.ok(relativeError(b.block, own[i].block) <= 1e-13, `${what} ${form}: block of layer ${b.layer}`);
          });
          const start = Math.floor(W / 3), end = Math.min(W, start + Math.max(1, Math.floor(W / 4)));
          assert.ok(relativeError(curvatureRows(p, exact, start, end, budgets), reference.subarray(start * W, end * W)) <= 1e-13, `${what} ${form}: rows ${start}–${end}`);
        }
      }
    }
  }
});

test('the cost model picks the Jacobian stack where N·K is small against W or a layer is much wider than the output, the blocks where N·K ≫ W, the columns for deep narrow exact Hessians', () => {
  const shape = (sizes: number[]) => sizes.slice(1).map((out, l) => ({ in: sizes[l], out }));
  const cases: [number[], number, 'blocks' | 'stack'][] = [
    [[32, 64, 10], 1000, 'blocks'], // the benchmark: N·K = 10⁴ > W = 2762, K = 10
    [[10, 20, 100], 1000, 'blocks'], // K = 100
    [[1, 965, 1], 1000, 'stack'], // a 965 × 965 matrix per point for a rank-1 curvature
    [[1, ...Array<number>(200).fill(1), 1], 10, 'stack'], // 20,100 blocks
    [[10, 50, 1], 20, 'stack'], // N·K = 20 ≪ W = 601
  ];
  const label = (sizes: number[]) => (sizes.length > 6 ? `${sizes.length - 2} layers of width 1` : sizes.join('-'));
  for (const [sizes, n, want] of cases) {
    const f = curvatureForm(shape(sizes), n, false);
    assert.equal(f.form, want, `${label(sizes)}, N = ${n}: blocks ${f.blockSeconds.toExponential(2)} s, stack ${f.stackSeconds.toExponential(2)} s`);
    assert.notEqual(curvatureForm(shape(sizes), n, true).form, 'stack', 'no stack form for the exact Hessian unless asked whether it applies');
  }
  // the exact Hessian: columns for deep narrow networks, blocks for the benchmark
  const exactCases: [number[], number, 'blocks' | 'stack' | 'columns'][] = [
    [[32, 64, 10], 1000, 'blocks'], [[1, ...Array<number>(1000).fill(1), 1], 10, 'columns'],
    [[1, 965, 1], 1000, 'stack'],
    // W = 101 and N = 10,000: the stack's per-point loops cost more than the blocks (measured 84–89 ms against 41–59 ms, 2026-12-01)
    [[8, 10, 1], 10000, 'blocks'],
  ];
  for (const [sizes, n, want] of exactCases) {
    const f = curvatureForm(shape(sizes), n, true, { exactStack: 'canonical' });
    assert.equal(f.form, want, `exact ${label(sizes)}, N = ${n}: blocks ${f.blockSeconds.toExponential(2)} s, stack ${f.stackSeconds.toExponential(2)} s, columns ${f.columnSeconds.toExponential(2)} s`);
  }
});

/** The problem of `spec` with its output layer's activation replaced (the same weights and data). */
function withOutput(spec: RandomProblemSpec, activation: string, loss: RandomProblemSpec['loss']): Problem {
  return randomProblem({ ...spec, activations: [...spec.activations.slice(0, -1), activation], loss });
}

test('logits with the loss applying the softmax or sigmoid give the Hessians of an explicit softmax or sigmoid output layer', () => {
  for (const [explicit, loss] of [['softmax', 'softmax-cross-entropy'], ['sigmoid', 'cross-entropy']] as const) {
    for (const reduction of ['sum', 'mean'] as const) {
      const spec: RandomProblemSpec = { sizes: [3, 5, 4], activations: ['tanh', 'identity'], loss, n: 6, seed: 40, reduction };
      const logits = withOutput(spec, 'identity', loss);
      const layer = withOutput(spec, explicit, loss);
      assert.ok(Math.abs(errorValue(logits) - errorValue(layer)) <= 1e-12 * Math.abs(errorValue(layer)), `${loss} ${reduction}: the same error`);
      for (const [what, f] of [['exact', exactHessian], ['outer product', outerProductHessian]] as const) {
        const err = relativeError(f(logits), f(layer));
        assert.ok(err <= 1e-12, `${loss} ${reduction} ${what}: relative error ${err}`);
      }
    }
  }
});

test('mean reduction is the sum divided by N, for every method', () => {
  for (const spec of [RANDOM_SPECS[4], RANDOM_SPECS[8], RANDOM_SPECS[12]]) {
    const sum = randomProblem({ ...spec, reduction: 'sum' });
    const mean = randomProblem({ ...spec, reduction: 'mean' });
    const n = sum.inputs.rows;
    const W = sum.network.parameterCount;
    const v = Float64Array.from({ length: W }, (_, i) => Math.sin(i + 1));
    const scaled = (x: Float64Array) => x.map((y) => y / n);
    for (const [what, f] of [
      ['gradient', gradient], ['exact', (p: Problem) => exactHessian(p)], ['outer product', (p: Problem) => outerProductHessian(p)],
      ['diagonal', hessianDiagonal], ['diagonal approximation', diagonalApproximation], ['H·v', (p: Problem) => hessianVectorProduct(p, v)],
    ] as const) {
      const err = relativeError(f(mean), scaled(f(sum)));
      assert.ok(err <= 1e-13, `${describe(spec)} ${what}: relative error ${err}`);
    }
    assert.ok(Math.abs(errorValue(mean) - errorValue(sum) / n) <= 1e-13 * Math.abs(errorValue(sum)));
  }
});

test('a selected layer\'s Hessian is the sub-block of the full one, for every method, and its parameter Jacobian the columns', () => {
  const spec: RandomProblemSpec = { sizes: [3, 4, 3, 2], activations: ['tanh', 'gelu', 'identity'], loss: 'sum-of-squares', n: 5, seed: 41, noBias: [1] };
  const full = randomProblem(spec);
  const H = exactHessian(full), G = outerProductHessian(full);
  const W = full.network.parameterCount;
  for (const selection of [[-1], [0], [2, 0], [1]]) {
    const sub = randomProblem({ ...spec, selection });
    const idx: number[] = [];
    for (const l of full.network.layers) {
      const i = full.network.layers.indexOf(l);
      const chosen = selection.map((s) => (s < 0 ? full.network.layers.length + s : s));
      if (chosen.includes(i)) for (let j = 0; j < l.size; j++) idx.push(l.offset + j);
    }
    const block = (M: Float64Array) => Float64Array.from(idx.flatMap((r) => idx.map((c) => M[r * W + c])));
    assert.equal(sub.network.parameterCount, idx.length);
    for (const [what, got, want] of [
      ['exact', exactHessian(sub), block(H)], ['outer product', outerProductHessian(sub), block(G)],
      ['diagonal', hessianDiagonal(sub), Float64Array.from(idx.map((r) => H[r * W + r]))],
      ['gradient', gradient(sub), Float64Array.from(idx.map((r) => gradient(full)[r]))],
    ] as const) {
      const err = relativeError(got, want);
      assert.ok(err <= 1e-13, `layers ${selection}: ${what} relative error ${err}`);
    }
    const v = Float64Array.from(idx, (_, i) => Math.cos(i));
    const dense = Float64Array.from(idx, (_, i) => idx.reduce((s, c, j) => s + H[idx[i] * W + c] * v[j], 0));
    assert.ok(relativeError(hessianVectorProduct(sub, v), dense) <= 1e-12, `layers ${selection}: H·v of the sub-block`);
    const jf = parameterJacobian(full.network, full.inputs).jacobian, js = parameterJacobian(sub.network, sub.inputs).jacobian;
    const rows = full.inputs.rows * full.network.outputSize;
    const cols = Float64Array.from({ length: rows * idx.length }, (_, q) => jf[Math.floor(q / idx.length) * W + idx[q % idx.length]]);
    assert.ok(relativeError(js, cols) <= 1e-14, `layers ${selection}: Jacobian columns`);
  }
});

test('Woodbury agrees with Cholesky at small damping (G + αI with a condition number over 1e6), in blocks of 1 to all rows at once', () => {
  // N·K = 120 rows for W = 160 parameters: G is singular and G + αI's condition is λ_max/α
  const p = randomProblem({ sizes: [8, 12, 4], activations: ['tanh', 'identity'], loss: 'sum-of-squares', n: 30, seed: 42 });
  const W = p.network.parameterCount;
  const damping = 1e-4;
  const G = outerProductHessian(p);
  const ev = new Float64Array(W);
  linalg().syevr(W, new Float64Array(G), W, 0, W, ev, null, 0);
  assert.ok((ev[W - 1] + damping) / (ev[0] + damping) > 1e6, `condition ${(ev[W - 1] + damping) / (ev[0] + damping)}`);
  const chol = choleskyInverse(G, W, damping);
  for (const block of [1, 16, 128, 30 * 4]) {
    const w = woodburyInverse(p, damping, block);
    const err = relativeError(w.inverse, chol.inverse);
    assert.ok(err <= 1e-10, `block ${block}: relative difference ${err.toExponential(2)}`);
    assert.ok(Math.abs(w.logDeterminant - chol.logDeterminant) <= 1e-10 * Math.abs(chol.logDeterminant), `block ${block}: log det`);
    for (let i = 0; i < W; i++) for (let j = 0; j < i; j++) assert.equal(w.inverse[i * W + j], w.inverse[j * W + i]);
  }
});
