/**
 * Hostile requests through a real socket: each is refused with its documented 4xx, a problem+json
 * body with a readable detail, fast; and the service answers a good request afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { listen, layer } from '../helpers/heavy.ts';

const net = { layers: [
  { weights: [[0.1, -0.2], [0.3, 0.4], [0.5, -0.6]], bias: [0, 0.1, -0.1], activation: 'tanh' },
  { weights: [[0.2, -0.1, 0.3]], bias: [0.05], activation: 'identity' },
] };
const good = { network: net, inputs: [[0.5, -1], [1.5, 0.2]], targets: [[0.3], [-0.2]], loss: 'sum-of-squares' };
const sigmoidNet = { layers: [net.layers[0], { ...net.layers[1], activation: 'sigmoid' }] };
const softmaxNet = { layers: [net.layers[0], { weights: [[0.2, -0.1, 0.3], [0.1, 0.1, 0.1]], bias: [0.05, 0], activation: 'softmax' }] };
const json = (x: unknown) => JSON.stringify(x);
const zeros = (n: number) => `[${new Array(n).fill(0).join(',')}]`;

/** A network of W = 200·1001 + 10·201 = 202,210 parameters, written compactly (zeros). */
const hugeNetwork = `{"layers":[{"weights":[${new Array(200).fill(zeros(1000)).join(',')}],"bias":${zeros(200)},"activation":"tanh"},` +
  `{"weights":[${new Array(10).fill(zeros(200)).join(',')}],"bias":${zeros(10)},"activation":"identity"}]}`;
const hugeW = `{"network":${hugeNetwork},"inputs":[${zeros(1000)}],"targets":[${zeros(10)}],"loss":"sum-of-squares"}`;
const manyPoints = (n: number) => `{"network":{"layers":[{"weights":[[1]],"bias":[0],"activation":"tanh"}]},"inputs":[${new Array(n).fill('[0]').join(',')}],` +
  `"targets":[${new Array(n).fill('[0]').join(',')}],"loss":"sum-of-squares"}`;

interface Case {
  name: string;
  url?: string;
  body: string;
  headers?: Record<string, string>;
  status: number;
  code?: string;
  detail?: RegExp;
}

const CASES: Case[] = [
  { name: 'truncated JSON', body: '{"network": ', status: 400, code: 'MALFORMED_BODY', detail: /JSON/ },
  { name: 'an empty body', body: '', status: 400, code: 'MALFORMED_BODY' },
  { name: 'JSON with a trailing comma', body: json(good).replace(/}$/, ',}'), status: 400, code: 'MALFORMED_BODY' },
  { name: 'a NaN literal', body: json(good).replace('0.5,-1', 'NaN,-1'), status: 400, code: 'MALFORMED_BODY' },
  { name: 'an Infinity literal', body: json(good).replace('0.5,-1', 'Infinity,-1'), status: 400, code: 'MALFORMED_BODY' },
  { name: '1e999 in the inputs (JSON.parse makes it Infinity)', body: json(good).replace('0.5,-1', '1e999,-1'), status: 400, code: 'INVALID_REQUEST', detail: /inputs\[0\]\[0\]/ },
  { name: '-1e999 in the weights', body: json(good).replace('0.1,-0.2', '-1e999,-0.2'), status: 400, code: 'INVALID_REQUEST', detail: /network\.layers\[0\]\.weights\[0\]\[0\]/ },
  { name: 'arrays nested 100,000 deep', body: `{"network":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, status: 400 },
  { name: 'objects nested 10,000 deep', body: `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`, status: 400 },
  { name: 'a top-level array', body: '[1,2,3]', status: 400, code: 'INVALID_REQUEST' },
  { name: 'a top-level null', body: 'null', status: 400 },
  { name: 'a network that is a string', body: json({ ...good, network: 'mlp' }), status: 400, code: 'INVALID_REQUEST', detail: /network/ },
  { name: 'a weight that is a string', body: json(good).replace('0.1,-0.2', '"0.1",-0.2'), status: 400, code: 'INVALID_REQUEST', detail: /weights\[0\]\[0\]/ },
  { name: 'a number given as "NaN"', body: json(good).replace('0.5,-1', '"NaN",-1'), status: 400, code: 'INVALID_REQUEST', detail: /inputs\[0\]\[0\]/ },
  { name: 'an unknown field', body: json({ ...good, hesian: true }), status: 400, code: 'INVALID_REQUEST', detail: /hesian/ },
  { name: 'a __proto__ key', body: json(good).replace('{"network"', '{"__proto__":{"x":1},"network"'), status: 400 },
  { name: 'an unknown method', body: json({ ...good, method: 'newton' }), status: 400, code: 'INVALID_REQUEST', detail: /method/ },
  { name: 'empty inputs', body: json({ ...good, inputs: [], targets: [] }), status: 400, code: 'INVALID_REQUEST', detail: /inputs/ },
  { name: 'ragged inputs', body: json({ ...good, inputs: [[0.5, -1], [1.5]] }), status: 422, code: 'SHAPE_MISMATCH', detail: /inputs\[1\] has 1 entries/ },
  { name: 'ragged weights', body: json({ ...good, network: { layers: [{ ...net.layers[0], weights: [[0.1, -0.2], [0.3], [0.5, -0.6]] }, net.layers[1]] } }), status: 422, code: 'SHAPE_MISMATCH', detail: /weights\[1\]/ },
  { name: 'inputs of the wrong width', body: json({ ...good, inputs: [[0.5, -1, 2], [1.5, 0.2, 1]] }), status: 422, code: 'SHAPE_MISMATCH', detail: /3 columns.*2 inputs/ },
  { name: 'targets of the wrong width', body: json({ ...good, targets: [[0.3, 1], [-0.2, 1]] }), status: 422, code: 'SHAPE_MISMATCH', detail: /targets/ },
  { name: 'fewer targets than inputs', body: json({ ...good, targets: [[0.3]] }), status: 422, code: 'SHAPE_MISMATCH', detail: /1 rows but inputs have 2/ },
  { name: 'layers that do not chain', body: json({ ...good, network: { layers: [net.layers[0], { ...net.layers[1], weights: [[0.2, -0.1]] }] } }), status: 422, code: 'SHAPE_MISMATCH' },
  { name: 'cross-entropy with labels instead of targets', body: json({ ...good, targets: undefined, labels: [0, 1], loss: 'cross-entropy' }), status: 400, code: 'INVALID_REQUEST', detail: /labels: .*softmax-cross-entropy/ },
  { name: 'cross-entropy on logits with targets outside [0, 1]', body: json({ ...good, loss: 'cross-entropy' }), status: 422, code: 'TARGET_OUT_OF_DOMAIN', detail: /\[0, 1\]/ },
  { name: 'a cross-entropy target of 1.5', body: json({ ...good, network: sigmoidNet, loss: 'cross-entropy', targets: [[1.5], [0]] }), status: 422, code: 'TARGET_OUT_OF_DOMAIN', detail: /\[0, 1\]/ },
  { name: 'softmax targets not summing to 1', body: json({ ...good, network: softmaxNet, loss: 'softmax-cross-entropy', targets: [[0.5, 0.2], [1, 0]] }), status: 422, code: 'TARGET_OUT_OF_DOMAIN', detail: /sums to/ },
  { name: 'softmax on a hidden layer', body: json({ ...good, network: { layers: [{ ...net.layers[0], activation: 'softmax' }, net.layers[1]] } }), status: 422, code: 'SOFTMAX_NOT_AT_OUTPUT' },
  { name: 'zero damping', url: '/hessian/inverse', body: json({ ...good, damping: 0 }), status: 400, code: 'INVALID_REQUEST', detail: /damping/ },
  { name: 'negative damping', url: '/hessian/inverse', body: json({ ...good, damping: -1 }), status: 400, code: 'INVALID_REQUEST', detail: /damping/ },
  { name: 'woodbury with the exact Hessian', url: '/hessian/inverse', body: json({ ...good, damping: 0.1, method: 'woodbury', hessian: 'exact' }), status: 422, code: 'UNSUPPORTED_METHOD', detail: /cholesky/ },
  { name: 'a vector of the wrong length', url: '/hessian/vector-product', body: json({ ...good, vector: [1, 2, 3] }), status: 422, code: 'SHAPE_MISMATCH', detail: /3 entries.*W = 13/ },
  {
    name: 'an exact Hessian for W = 202,210 parameters', body: hugeW, status: 413, code: 'RESULT_TOO_LARGE',
    detail: /exact Hessian for W = 202,210 parameters needs 327 GB .*allows .* per answer \(MAX_RESULT_BYTES\); use method 'diagonal'.*vector-product/,
  },
  { name: 'an inverse for W = 202,210 parameters', url: '/hessian/inverse', body: hugeW.replace(/}$/, ',"damping":1}'), status: 413, code: 'RESULT_TOO_LARGE', detail: /W = 202,210.*vector-product/ },
  { name: 'a finite-difference Hessian over the cost limit', body: json({ ...good, method: 'finite-difference', network: { layers: [layer(300, 50, 'tanh'), layer(1, 300, 'identity')] }, inputs: Array(60).fill(new Array(50).fill(0.1)), targets: Array(60).fill([0]) }), status: 413, code: 'LIMIT_EXCEEDED', detail: /MAX_FINITE_DIFFERENCE_COST.*'exact'/ },
  { name: 'more data points than MAX_POINTS', body: manyPoints(20_001), status: 413, code: 'LIMIT_EXCEEDED', detail: /N = 20,001 .*MAX_POINTS/ },
  { name: 'a parameter Jacobian over the answer limit', url: '/jacobian', body: `{"network":${hugeNetwork},"inputs":[${new Array(300).fill(zeros(1000)).join(',')}],"wrt":"parameters"}`, status: 413, code: 'RESULT_TOO_LARGE', detail: /N × K × W = 300 × 10 × 202,210/ },
  { name: 'a body over BODY_LIMIT', body: manyPoints(600_000), status: 413, code: 'PAYLOAD_TOO_LARGE', detail: /BODY_LIMIT/ },
  { name: 'text/plain', body: json(good), headers: { 'content-type': 'text/plain' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', detail: /application\/json/ },
  { name: 'a form body', body: 'network=1', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'no content type', body: json(good), headers: { 'content-type': '' }, status: 415 },
  { name: 'an Accept nothing offered matches', body: json(good), headers: { accept: 'text/html' }, status: 406, code: 'NOT_ACCEPTABLE', detail: /application\/x-npy/ },
];

/** POSTs raw bytes over a fresh connection; returns status, headers and body text. */
function post(base: string, path: string, body: string, headers: Record<string, string>): Promise<{ status: number; type: string; text: string }> {
  const url = new URL(path, base);
  const hs: Record<string, string> = { 'content-type': 'application/json', ...headers, 'content-length': String(Buffer.byteLength(body)), connection: 'close' };
  if (hs['content-type'] === '') delete hs['content-type'];
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: hs }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; }).on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('hostile requests each get their documented 4xx with a readable detail, fast, and a good request succeeds afterwards', async (t) => {
  const { base } = await listen(t, { config: { workers: 1, bodyLimit: 4 * 1024 * 1024, maxPoints: 20_000 } });
  const timings: string[] = [];
  for (const c of CASES) {
    const started = performance.now();
    const r = await post(base, c.url ?? '/hessian', c.body, c.headers ?? {});
    const ms = performance.now() - started;
    timings.push(`${Math.round(ms)} ms  ${c.status}  ${c.name}`);
    assert.equal(r.status, c.status, `${c.name}: ${r.text.slice(0, 300)}`);
    assert.match(r.type, /^application\/problem\+json/, c.name);
    const p = JSON.parse(r.text) as { status: number; code?: string; detail: string; title: string; type: string };
    assert.equal(p.status, c.status, c.name);
    if (c.code) assert.equal(p.code, c.code, `${c.name}: ${p.detail}`);
    assert.ok(p.detail.length >= 10 && !/\[object /.test(p.detail), `${c.name}: a readable detail, got ${JSON.stringify(p.detail)}`);
    if (c.detail) assert.match(p.detail, c.detail, c.name);
    assert.ok(ms < 1500, `${c.name} took ${Math.round(ms)} ms`);
  }
  t.diagnostic(timings.join('\n'));
  const ok = await post(base, '/hessian', json(good), {});
  assert.equal(ok.status, 200, ok.text);
  assert.equal((JSON.parse(ok.text) as { parameterCount: number }).parameterCount, 13);
});
