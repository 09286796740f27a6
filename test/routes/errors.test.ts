import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertProblem, build, post, referenceCases } from '../helpers/http.ts';

const cases = referenceCases();
const small = cases.find((c) => c.name === 'two-layer-tanh-regression') ?? cases[0];
const net = { layers: [
  { weights: [[0.1, -0.2], [0.3, 0.4], [0.5, -0.6]], bias: [0, 0.1, -0.1], activation: 'tanh' },
  { weights: [[0.2, -0.1, 0.3]], bias: [0.05], activation: 'identity' },
] };
const body = { network: net, inputs: [[0.5, -1], [1.5, 0.2]], targets: [[0.3], [-0.2]], loss: 'sum-of-squares' };

test('a body that is not JSON is refused with 400', async (t) => {
  const app = await build(t);
  assertProblem(await post(app, '/hessian', '{"network": ', { 'content-type': 'application/json' }), 400, 'MALFORMED_BODY', /not valid JSON: .*JSON/);
  assertProblem(await post(app, '/hessian', '{"network": {]}', { 'content-type': 'application/json' }), 400, 'MALFORMED_BODY', /position|token/);
  assertProblem(await post(app, '/hessian', '', { 'content-type': 'application/json' }), 400, 'MALFORMED_BODY', /empty/);
  const polluted = JSON.stringify(body).replace('{"network"', '{"__proto__":{"polluted":true},"network"');
  assertProblem(await post(app, '/hessian', polluted, { 'content-type': 'application/json' }), 400, 'INVALID_REQUEST', /__proto__/);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('a missing, mistyped or unknown field is refused with 400 naming the field', async (t) => {
  const app = await build(t);
  const { targets: _t, ...noTargets } = body;
  assertProblem(await post(app, '/hessian', noTargets), 400, 'INVALID_REQUEST', /^targets: /);
  const mistyped = { ...body, network: { layers: [net.layers[0], { ...net.layers[1], weights: [[0.2, '-0.1', 0.3]] }] } };
  assertProblem(await post(app, '/hessian', mistyped), 400, 'INVALID_REQUEST', /network\.layers\[1\]\.weights\[0\]\[1\]: .*number/);
  assertProblem(await post(app, '/hessian', { ...body, metod: 'exact' }), 400, 'INVALID_REQUEST', /metod/);
  assertProblem(await post(app, '/hessian', { ...body, method: 'newton' }), 400, 'INVALID_REQUEST', /method: .*exact/);
  assertProblem(await post(app, '/hessian', { ...body, loss: 'hinge' }), 400, 'INVALID_REQUEST', /loss/);
  const badActivation = { ...body, network: { layers: [{ ...net.layers[0], activation: 'swish' }, net.layers[1]] } };
  assertProblem(await post(app, '/hessian', badActivation), 400, 'INVALID_REQUEST', /network\.layers\[0\]\.activation/);
  assertProblem(await post(app, '/hessian/inverse', { ...body, damping: 0 }), 400, 'INVALID_REQUEST', /damping/);
  assertProblem(await post(app, '/hessian/vector-product', body), 400, 'INVALID_REQUEST', /vector/);
  assertProblem(await post(app, '/jacobian', { network: net, inputs: [] }), 400, 'INVALID_REQUEST', /inputs/);
  assertProblem(await post(app, '/hessian', [1, 2]), 400, 'INVALID_REQUEST', /body/);
});

test('a number that overflows to Infinity in JSON (1e999) is refused with 400 naming where it is', async (t) => {
  const app = await build(t);
  const text = JSON.stringify(body).replace('[[0.5,-1]', '[[1e999,-1]');
  assertProblem(await post(app, '/hessian', text, { 'content-type': 'application/json' }), 400, 'INVALID_REQUEST', /inputs\[0\]\[0\]/);
});

test('a body that is not application/json is refused with 415', async (t) => {
  const app = await build(t);
  assertProblem(await post(app, '/hessian', 'network=1', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA_TYPE', /application\/json/);
  assertProblem(await post(app, '/hessian', JSON.stringify(body), { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  const ok = await post(app, '/hessian', JSON.stringify(body), { 'content-type': 'application/json; charset=utf-8' });
  assert.equal(ok.statusCode, 200);
});

test('a body over the configured limit is refused with 413 quoting the limit', async (t) => {
  const app = await build(t, { config: { bodyLimit: 2048 } });
  const big = { ...body, inputs: Array.from({ length: 200 }, () => [0.5, -1]), targets: Array.from({ length: 200 }, () => [0.1]) };
  assertProblem(await post(app, '/hessian', big), 413, 'PAYLOAD_TOO_LARGE', /2048 bytes.*BODY_LIMIT/);
});

test('an answer over the memory limit is refused with 413 before it is computed, suggesting the O(W) methods', async (t) => {
  const app = await build(t, { config: { maxResultBytes: 1024 } });
  assertProblem(await post(app, '/hessian', body), 413, 'RESULT_TOO_LARGE', /W = 13 .*MAX_RESULT_BYTES.*diagonal/);
  assertProblem(await post(app, '/hessian/inverse', { ...body, damping: 0.1 }), 413, 'RESULT_TOO_LARGE', /MAX_RESULT_BYTES/);
  const diag = await post(app, '/hessian', { ...body, method: 'diagonal' });
  assert.equal(diag.statusCode, 200);
});

test('an Accept header that asks for no form we give is refused with 406', async (t) => {
  const app = await build(t);
  assertProblem(await post(app, '/hessian', body, { accept: 'text/html' }), 406, 'NOT_ACCEPTABLE', /application\/x-npy/);
  assertProblem(await post(app, '/jacobian', { network: net, inputs: body.inputs }, { accept: 'application/json;q=0' }), 406, 'NOT_ACCEPTABLE');
});

test('sizes that do not fit together are refused with 422 saying which sizes', async (t) => {
  const app = await build(t);
  assertProblem(await post(app, '/hessian', { ...body, inputs: [[1, 2, 3], [4, 5, 6]] }), 422, 'SHAPE_MISMATCH', /inputs have 3 columns.*2 inputs/);
  assertProblem(await post(app, '/hessian', { ...body, targets: [[0.3]] }), 422, 'SHAPE_MISMATCH', /targets have 1 rows but inputs have 2/);
  assertProblem(await post(app, '/hessian', { ...body, inputs: [[1, 2], [3]] }), 422, 'SHAPE_MISMATCH', /inputs\[1\]/);
  assertProblem(await post(app, '/hessian/vector-product', { ...body, vector: [1, 2, 3] }), 422, 'SHAPE_MISMATCH', /vector has 3 entries.*W = 13/);
  const ragged = { ...body, network: { layers: [net.layers[0], { ...net.layers[1], weights: [[0.2, -0.1]] }] } };
  assertProblem(await post(app, '/hessian', ragged), 422, 'SHAPE_MISMATCH', /network\.layers\[1\]/);
});

test('an unsupported loss and output pairing is refused with 422 naming the pairing', async (t) => {
  const app = await build(t);
  const tanhOut = { layers: [net.layers[0], { ...net.layers[1], activation: 'tanh' }] };
  assertProblem(await post(app, '/hessian', { ...body, network: tanhOut, loss: 'cross-entropy', targets: [[0.3], [0.2]] }), 422, 'UNSUPPORTED_PAIRING', /cross-entropy.*tanh.*'sigmoid', 'identity'/);
  const hiddenSoftmax = { ...body, network: { layers: [{ ...net.layers[0], activation: 'softmax' }, net.layers[1]] } };
  assertProblem(await post(app, '/hessian', hiddenSoftmax), 422, 'SOFTMAX_NOT_AT_OUTPUT');
});

test('targets outside the loss domain are refused with 422', async (t) => {
  const app = await build(t);
  const sigmoid = { layers: [net.layers[0], { ...net.layers[1], activation: 'sigmoid' }] };
  assertProblem(await post(app, '/hessian', { ...body, network: sigmoid, loss: 'cross-entropy', targets: [[2], [0]] }), 422, 'TARGET_OUT_OF_DOMAIN', /\[0, 1\]/);
});

test('a Cholesky inverse of a Hessian that is not positive definite is refused with 422', async (t) => {
  const app = await build(t);
  const indefinite = cases.find((c) => c.exactDamping > 1) ?? cases[0];
  const r = await post(app, '/hessian/inverse', { ...indefinite.request, damping: 1e-9, method: 'cholesky', hessian: 'exact' });
  assertProblem(r, 422, 'NOT_POSITIVE_DEFINITE');
  assertProblem(await post(app, '/hessian/inverse', { ...small.request, damping: 0.1, method: 'woodbury', hessian: 'exact' }), 422, 'UNSUPPORTED_METHOD', /cholesky/);
});

test('a result that overflows float64 is refused with 422 rather than sent as null or garbage', async (t) => {
  const app = await build(t);
  const huge = { layers: [{ weights: [[1e300]], bias: [0], activation: 'identity' }] };
  assertProblem(await post(app, '/jacobian', { network: huge, inputs: [[1e300]] }), 422, 'NON_FINITE_RESULT', /outputs/);
  assertProblem(await post(app, '/jacobian', { network: huge, inputs: [[1e300]] }, { accept: 'application/x-npy' }), 422, 'NON_FINITE_RESULT');
  assertProblem(await post(app, '/hessian', { network: huge, inputs: [[1e300]], targets: [[0]], loss: 'sum-of-squares' }), 422, 'NON_FINITE_RESULT');
});

test('an unknown path answers 404 as problem+json listing the endpoints; a known path with another method 405 with Allow', async (t) => {
  const app = await build(t);
  const missing = await app.inject({ method: 'GET', url: '/hessians' });
  assertProblem(missing, 404, 'NOT_FOUND', /POST \/jacobian, POST \/hessian, POST \/hessian\/vector-product, POST \/hessian\/inverse, POST \/hessian\/kfac, POST \/hessian\/eigen, POST \/hessian\/inverse-vector-product, GET \/docs, GET \/openapi\.json, GET \/metrics, GET \/health, GET \/health\/live, GET \/health\/ready$/);
  const wrong = await app.inject({ method: 'GET', url: '/hessian' });
  assertProblem(wrong, 405, 'METHOD_NOT_ALLOWED', /\/hessian does not take GET; it takes POST/);
  assert.equal(wrong.headers.allow, 'POST');
  assertProblem(await app.inject({ method: 'DELETE', url: '/health' }), 405, 'METHOD_NOT_ALLOWED');
  const slash = await app.inject({ method: 'POST', url: '/hessian/', payload: body });
  assert.equal(slash.statusCode, 200, 'a trailing slash is ignored');
});

test('a failure inside the service is a 500 problem that does not leak internals', async (t) => {
  const app = await build(t, { runTask: async () => { throw new Error('secret internal state'); } });
  const r = await post(app, '/hessian', body);
  assertProblem(r, 500, 'INTERNAL');
  assert.doesNotMatch(r.body, /secret/);
});
