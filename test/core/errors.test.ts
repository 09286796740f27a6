import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  makeProblem, hessianVectorProduct, choleskyInverse, woodburyInverse, exactHessian, assertFinite, CoreError,
} from '../../src/core/index.ts';
import { ServiceError } from '../../src/errors.ts';
import { parseJson } from '../../src/http/json.ts';
import { matrixOf, networkOf } from '../helpers/cases.ts';
import { randomProblem, RANDOM_SPECS } from '../helpers/networks.ts';

const layer = (rows: number, cols: number, activation = 'tanh') => ({
  weights: Array.from({ length: rows }, () => new Array<number>(cols).fill(0.1)), bias: new Array<number>(rows).fill(0), activation,
});
const buildNetwork = networkOf;

/** The core throws its typed error (code and parameters); the catalogue's message for it matches `pattern`. */
function refuses(fn: () => unknown, code: string, pattern: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CoreError || e instanceof ServiceError, `a CoreError, got ${String(e)}`);
    const s = e instanceof CoreError ? ServiceError.fromCore(e) : e;
    assert.equal(s.code, code);
    assert.match(s.detail, pattern);
    return true;
  });
}

test('layers whose sizes do not chain are refused, naming both layers', () => {
  refuses(() => buildNetwork({ layers: [layer(3, 2), layer(1, 4)] }), 'SHAPE_MISMATCH', /layers\[1\].*4 columns.*layer 0 has 3 outputs/);
});

test('ragged weights and a bias of the wrong length are refused', () => {
  const ragged = layer(2, 3);
  ragged.weights[1] = [1, 2];
  const json = (x: unknown) => () => parseJson(Buffer.from(JSON.stringify(x)));
  refuses(json({ network: { layers: [ragged] } }), 'SHAPE_MISMATCH', /network\.layers\[0\]\.weights\[1\] has 2 entries but network\.layers\[0\]\.weights\[0\] has 3/);
  refuses(() => buildNetwork({ layers: [{ ...layer(2, 3), bias: [0, 0, 0] }] }), 'SHAPE_MISMATCH', /2 rows but bias has 3/);
  refuses(json({ inputs: [[1, 2], [3]] }), 'SHAPE_MISMATCH', /inputs\[1\] has 1 entries/);
});

test('an unknown activation is refused with the list of known ones', () => {
  refuses(() => buildNetwork({ layers: [layer(2, 2, 'swish')] }), 'UNKNOWN_ACTIVATION', /'swish'.*'identity', 'tanh'/);
});

test('softmax on a hidden layer is refused', () => {
  refuses(() => buildNetwork({ layers: [layer(2, 2, 'softmax'), layer(1, 2, 'identity')] }), 'SOFTMAX_NOT_AT_OUTPUT', /layer 0/);
});

test('unsupported loss and output pairings are refused, naming the pairing', () => {
  const x = matrixOf([[1, 2]]);
  const t = matrixOf([[0, 1]]);
  refuses(() => makeProblem(buildNetwork({ layers: [layer(2, 2, 'tanh')] }), x, t, 'cross-entropy'), 'UNSUPPORTED_PAIRING', /'cross-entropy'.*'tanh'.*'sigmoid', 'identity'.*use 'sum-of-squares'/);
  refuses(() => makeProblem(buildNetwork({ layers: [layer(2, 2, 'sigmoid')] }), x, t, 'softmax-cross-entropy'), 'UNSUPPORTED_PAIRING', /'softmax-cross-entropy'.*'sigmoid'.*'softmax', 'identity'.*'sum-of-squares', 'cross-entropy'/);
  refuses(() => makeProblem(buildNetwork({ layers: [layer(2, 2, 'softmax')] }), x, t, 'cross-entropy'), 'UNSUPPORTED_PAIRING', /'cross-entropy'.*'softmax'/);
});

test('inputs and targets of the wrong size are refused with the sizes expected', () => {
  const net = buildNetwork({ layers: [layer(2, 3, 'identity')] });
  refuses(() => makeProblem(net, matrixOf([[1, 2]]), matrixOf([[0, 1]]), 'sum-of-squares'), 'SHAPE_MISMATCH', /inputs have 2 columns.*N × 3/);
  refuses(() => makeProblem(net, matrixOf([[1, 2, 3]]), matrixOf([[0, 1, 2]]), 'sum-of-squares'), 'SHAPE_MISMATCH', /targets have 3 columns.*N × 2/);
  refuses(() => makeProblem(net, matrixOf([[1, 2, 3]]), matrixOf([[0, 1], [1, 0]]), 'sum-of-squares'), 'SHAPE_MISMATCH', /2 rows but inputs have 1/);
});

test('targets outside their domain are refused', () => {
  const sig = buildNetwork({ layers: [layer(2, 2, 'sigmoid')] });
  const soft = buildNetwork({ layers: [layer(2, 2, 'softmax')] });
  const x = matrixOf([[1, 2]]);
  refuses(() => makeProblem(sig, x, matrixOf([[0, 1.5]]), 'cross-entropy'), 'TARGET_OUT_OF_DOMAIN', /targets\[0\]\[1\] = 1.5.*\[0, 1\]/);
  refuses(() => makeProblem(soft, x, matrixOf([[0.5, 0.6]]), 'softmax-cross-entropy'), 'TARGET_OUT_OF_DOMAIN', /sums to 1.1/);
  refuses(() => makeProblem(soft, x, matrixOf([[-0.5, 1.5]]), 'softmax-cross-entropy'), 'TARGET_OUT_OF_DOMAIN', /non-negative/);
});

test('a vector of the wrong length is refused', () => {
  const p = randomProblem(RANDOM_SPECS[2]);
  refuses(() => hessianVectorProduct(p, new Float64Array(3)), 'SHAPE_MISMATCH', /vector has 3 entries but the network has W = 26 parameters/);
});

test('damping must be positive and finite', () => {
  const p = randomProblem(RANDOM_SPECS[2]);
  for (const d of [0, -1, NaN, Infinity]) refuses(() => woodburyInverse(p, d), 'INVALID_DAMPING', /greater than 0/);
});

test('a Hessian that is not positive definite is refused with its smallest eigenvalue, never NaN', () => {
  const p = randomProblem(RANDOM_SPECS[2]);
  const h = exactHessian(p);
  refuses(() => choleskyInverse(h, p.network.parameterCount, 1e-6), 'NOT_POSITIVE_DEFINITE', /not positive definite.*smallest eigenvalue of the Hessian is -\d.*damping above/);
});

test('non-finite results are refused', () => {
  refuses(() => assertFinite('hessian', Float64Array.of(1, 2, Infinity, NaN), [2, 2]), 'NON_FINITE_RESULT', /hessian has 2 non-finite entries, the first hessian\[1\]\[0\] = Infinity/);
  assert.doesNotThrow(() => assertFinite('hessian', Float64Array.of(1, 2), [2]));
});

test('the finiteness pass finds one bad entry at every position (each of the four running sums and the tail) and passes the extremes of the finite doubles', () => {
  for (const n of [1, 3, 4, 7, 8, 13]) {
    for (let at = 0; at < n; at++) {
      for (const bad of [Infinity, -Infinity, NaN]) {
        const a = Float64Array.from({ length: n }, (_, i) => (i % 2 ? -1.7976931348623157e308 : 5e-324));
        a[at] = bad;
        assert.throws(() => assertFinite('v', a, [n]), (e: unknown) => e instanceof CoreError && e.code === 'NON_FINITE_RESULT', `n ${n}, ${bad} at ${at}`);
      }
    }
    assert.doesNotThrow(() => assertFinite('v', Float64Array.from({ length: n }, (_, i) => [1.7976931348623157e308, -0, -1.7976931348623157e308, 5e-324][i % 4]), [n]));
  }
  assert.doesNotThrow(() => assertFinite('v', new Float64Array(0), [0]));
});
