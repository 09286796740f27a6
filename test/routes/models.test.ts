/**
 * Pipelines' own models through HTTP (test/fixtures/models, PyTorch autograd in float64): logits
 * with CrossEntropyLoss and BCEWithLogitsLoss, labels (JSON and integer .npy parts), the mean
 * reduction, layers without bias, gelu/silu/leaky-relu/elu; and the refusals of labels.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answer, assertClose, assertProblem, build, post, postParts } from '../helpers/http.ts';
import { loadCases, type ModelCase } from '../helpers/cases.ts';
import { npyFile, npyOf } from '../helpers/npy.ts';

const cases = loadCases<ModelCase>('models');
const TOL = 1e-10;

for (const c of cases) {
  test(`${c.name}: every Hessian method, H·v, the inverse and the parameter Jacobian match PyTorch through HTTP`, async (t) => {
    const app = await build(t, { config: { workers: 0 } });
    const r = c.request, e = c.expected;
    const exact = await answer(app, '/hessian', { ...r, method: 'exact' }, 'npy', 'hessian');
    assertClose(exact.array, e.hessian, TOL, 'exact');
    assert.equal(exact.scalars.parameterCount, e.parameterCount);
    assertClose((await answer(app, '/hessian', { ...r, method: 'outer-product' }, 'raw', 'hessian')).array, e.outerProduct, TOL, 'outer product');
    assertClose((await answer(app, '/hessian', { ...r, method: 'diagonal' }, 'json', 'diagonal')).array, e.hessianDiagonal, TOL, 'diagonal');
    assertClose((await answer(app, '/hessian', { ...r, method: 'diagonal-approximation' }, 'json', 'diagonal')).array, e.diagonalApproximation, TOL, 'diagonal approximation');
    assertClose((await answer(app, '/hessian/vector-product', { ...r, vector: c.vector }, 'json', 'product')).array, e.hessianVectorProduct, TOL, 'H·v');
    const inv = await answer(app, '/hessian/inverse', { ...r, damping: c.damping }, 'npy', 'inverse');
    assertClose(inv.array, e.inverseOuterProduct, TOL, 'the default (Cholesky) inverse');
    assert.ok(Math.abs(inv.scalars.logDeterminant! - e.logDeterminant) <= TOL * Math.max(1, Math.abs(e.logDeterminant)), 'log det');
    const invExact = await answer(app, '/hessian/inverse', { ...r, damping: c.exactDamping, hessian: 'exact' }, 'npy', 'inverse');
    assertClose(invExact.array, e.inverseExact, TOL, 'the inverse of the exact Hessian');
    const jac = await answer(app, '/jacobian', { network: r.network, inputs: r.inputs, wrt: 'parameters' }, 'npy', 'jacobian');
    assertClose(jac.array, e.parameterJacobian, TOL, 'parameter Jacobian');
  });
}

const labelled = cases.find((c) => c.request.labels && c.request.reduction === 'mean')!;
const { labels, ...withoutLabels } = labelled.request;
const K = labelled.request.network.layers.at(-1)!.weights.length;

test('labels may come as an integer .npy part (int64 or int32) and give the JSON answer', async (t) => {
  const app = await build(t, { config: { workers: 0 } });
  const { inputs, ...request } = withoutLabels;
  for (const descr of ['<i8', '<i4']) {
    const r = await postParts(app, '/hessian', { request, inputs: npyOf(inputs), labels: npyFile([labels!.length], labels!, descr) }, 'application/x-npy');
    assert.equal(r.statusCode, 200, r.body);
  }
  const h = await answer(app, '/hessian', labelled.request, 'json', 'hessian');
  assertClose(h.array, labelled.expected.hessian, TOL, 'labels in JSON');
  const floatParts = await postParts(app, '/hessian', { request, inputs: npyOf(inputs), labels: npyOf(labels!) }, 'application/json');
  assert.equal(floatParts.statusCode, 200, 'labels as float64 integers are read too');
});

test('labels out of range, not integers, beside targets, with another loss or missing altogether are refused naming the field and the row', async (t) => {
  const app = await build(t, { config: { workers: 0 } });
  const bad = (at: number, value: number) => labels!.map((l, i) => (i === at ? value : l));
  assertProblem(await post(app, '/hessian', { ...withoutLabels, labels: bad(2, K) }), 422, 'TARGET_OUT_OF_DOMAIN', new RegExp(`labels\\[2\\] = ${K}; a label must be an integer class index from 0 to ${K - 1}`));
  assertProblem(await post(app, '/hessian', { ...withoutLabels, labels: bad(0, -1) }), 422, 'TARGET_OUT_OF_DOMAIN', /labels\[0\] = -1/);
  assertProblem(await post(app, '/hessian', { ...withoutLabels, labels: bad(1, 0.5) }), 422, 'TARGET_OUT_OF_DOMAIN', /labels\[1\] = 0\.5/);
  const oneHot = labels!.map((l) => Array.from({ length: K }, (_, j) => (j === l ? 1 : 0)));
  assertProblem(await post(app, '/hessian', { ...labelled.request, targets: oneHot }), 400, 'INVALID_REQUEST', /^labels: give targets or labels, not both/);
  assertProblem(await post(app, '/hessian', withoutLabels), 400, 'INVALID_REQUEST', /^targets: give targets/);
  assertProblem(await post(app, '/hessian', { ...labelled.request, loss: 'sum-of-squares' }), 400, 'INVALID_REQUEST', /^labels: labels are class indices for loss 'softmax-cross-entropy'/);
  assertProblem(await post(app, '/hessian', { ...withoutLabels, labels: labels!.slice(1) }), 422, 'SHAPE_MISMATCH', /labels has \d+ entries but inputs have \d+ rows/);
  assertProblem(await post(app, '/hessian', { ...withoutLabels, labels: labels!.map(String) }), 400, 'INVALID_REQUEST', /labels\[0\]: expected a number/);
  const { inputs, ...request } = withoutLabels;
  const floatLabels = await postParts(app, '/hessian', { request, inputs: npyOf(inputs), labels: npyFile([labels!.length], labels!.map((l) => l + 0.5)) });
  assertProblem(floatLabels, 422, 'TARGET_OUT_OF_DOMAIN', /labels\[0\] = \d\.5/);
  const wrongDtype = await postParts(app, '/hessian', { request: withoutLabels, inputs: npyFile([2, 2], [1, 2, 3, 4], '<i8') });
  assertProblem(wrongDtype, 400, 'INVALID_ARRAY_PART', /inputs: .*dtype '<i8'.*float64/);
});

test('a layer without bias may give null or leave bias out, and has out·in parameters', async (t) => {
  const app = await build(t, { config: { workers: 0 } });
  const c = cases.find((x) => x.request.network.layers.some((l) => l.bias === null))!;
  const omitted = { ...c.request, network: { layers: c.request.network.layers.map(({ bias, ...l }) => (bias === null ? l : { ...l, bias })) } };
  for (const request of [c.request, omitted]) {
    const h = await answer(app, '/hessian', { ...request, method: 'exact' }, 'npy', 'hessian');
    assert.equal(h.scalars.parameterCount, c.expected.parameterCount);
    assertClose(h.array, c.expected.hessian, TOL, 'exact');
  }
});
